-- The provisioning log (docs/provisioning-log.md): one row per SCIM write received
-- (written in the write's transaction) and per downstream action (written with the
-- delivery's outcome). `body` is the record's JSON; the columns after it are copies
-- the queries filter on. `seq`, `prev`, `hash` and `line` are set when the audit
-- chainer links the row into the hash chain.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    kind            TEXT    NOT NULL,   -- scim.change | delivery.action
    body            TEXT    NOT NULL,
    seq             INTEGER UNIQUE,
    prev            TEXT,
    hash            TEXT,
    line            TEXT,
    provider        TEXT,
    resource_kind   TEXT,
    resource_id     TEXT,
    user_name_key   TEXT,
    display_name    TEXT,
    target          TEXT,
    action          TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    change_seq      INTEGER,
    change_seq_last INTEGER,
    request_id      TEXT
);
CREATE INDEX audit_log_resource ON audit_log (resource_id, id);
CREATE INDEX audit_log_user ON audit_log (user_name_key, id);
CREATE INDEX audit_log_display ON audit_log (display_name, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_unchained ON audit_log (id) WHERE seq IS NULL;

-- The chain's head: the next seq and the hash it links to.
CREATE TABLE audit_head (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    log_id   TEXT    NOT NULL,
    next_seq INTEGER NOT NULL,
    prev     TEXT    NOT NULL
);
-- Signed heads, and the checkpoints that carry the chain past pruned records.
CREATE TABLE audit_seals (
    seq    INTEGER PRIMARY KEY,
    head   TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    key_id TEXT    NOT NULL,
    line   TEXT    NOT NULL
);
CREATE TABLE audit_checkpoints (
    next   INTEGER PRIMARY KEY,
    prev   TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    key_id TEXT    NOT NULL,
    line   TEXT    NOT NULL
);
