-- The audit chain without writes to the log's rows (docs/provisioning-log.md §3).
-- SQLite gives `audit_log.id`s in commit order (AUTOINCREMENT, one writer at a
-- time), so the chain's order is the id order: a record's seq, `prev` and line
-- follow from its row and the nearest mark before it, and are rebuilt at export.
-- Chaining now moves the head (`last_id`: the newest id chained) and adds a mark
-- every 256 records, instead of rewriting every row with its seq, hash and line,
-- which doubled the log's WAL volume and cost SCIM writes ~10% of their rate.
--
-- A mark: record `seq` is the row `log_id`, and links to `prev`. Marks are where
-- rebuilding starts; pruning places one at its cut.
CREATE TABLE audit_marks (
    seq    INTEGER PRIMARY KEY,
    log_id INTEGER NOT NULL,
    prev   TEXT    NOT NULL
);
CREATE INDEX audit_marks_log_id ON audit_marks (log_id);

ALTER TABLE audit_head ADD COLUMN last_id INTEGER NOT NULL DEFAULT 0;

-- What was chained before: rows chained in id order from the oldest kept.
INSERT INTO audit_marks (seq, log_id, prev)
    SELECT seq, id, prev FROM audit_log
    WHERE seq = (SELECT min(seq) FROM audit_log);
UPDATE audit_head SET last_id = coalesce(
    (SELECT max(id) FROM audit_log WHERE seq IS NOT NULL),
    (SELECT min(id) - 1 FROM audit_log WHERE seq IS NULL),
    (SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'),
    0);
-- Everything chained was pruned: the chain resumes at the head.
INSERT INTO audit_marks (seq, log_id, prev)
    SELECT next_seq, last_id + 1, prev FROM audit_head
    WHERE next_seq > 0 AND NOT EXISTS (SELECT 1 FROM audit_marks);

-- The log without its chain columns and their two indexes (SQLite cannot drop a
-- UNIQUE column in place).
CREATE TABLE audit_log_v2 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    kind            TEXT    NOT NULL,   -- scim.change | delivery.action | operator.action
    body            TEXT    NOT NULL,
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
INSERT INTO audit_log_v2 (id, at, kind, body, provider, resource_kind, resource_id,
        user_name_key, display_name, target, action, outcome, change_seq,
        change_seq_last, request_id)
    SELECT id, at, kind, body, provider, resource_kind, resource_id, user_name_key,
        display_name, target, action, outcome, change_seq, change_seq_last, request_id
    FROM audit_log;
-- Ids are never reused, even when every row was pruned: a reused id below
-- `last_id` would never be chained.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'audit_log_v2', seq FROM sqlite_sequence
    WHERE name = 'audit_log'
      AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'audit_log_v2');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'), 0))
    WHERE name = 'audit_log_v2';
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
CREATE INDEX audit_log_resource ON audit_log (resource_id, id);
CREATE INDEX audit_log_user ON audit_log (user_name_key, id);
CREATE INDEX audit_log_display ON audit_log (display_name, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);
