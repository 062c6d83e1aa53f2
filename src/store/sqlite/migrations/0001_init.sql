-- scim-bridge schema v1 (SQLite). PostgreSQL has its own copy of the same shape.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Users and groups of every provider. `seq` gives creation order for keyset paging
-- and is the compact key member rows point at.
CREATE TABLE resources (
    seq            INTEGER PRIMARY KEY,
    provider       TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('User', 'Group')),
    id             TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    created        TEXT    NOT NULL,
    last_modified  TEXT    NOT NULL,
    user_name_ci   TEXT,
    external_id    TEXT,
    display_name_ci TEXT,
    doc            TEXT    NOT NULL
);
CREATE UNIQUE INDEX resources_id ON resources (provider, kind, id);
CREATE UNIQUE INDEX resources_user_name ON resources (provider, kind, user_name_ci)
    WHERE user_name_ci IS NOT NULL;
CREATE INDEX resources_external_id ON resources (provider, kind, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX resources_display_name ON resources (provider, kind, display_name_ci)
    WHERE display_name_ci IS NOT NULL;

CREATE TABLE resource_emails (
    value_ci     TEXT    NOT NULL,
    resource_seq INTEGER NOT NULL,
    PRIMARY KEY (value_ci, resource_seq)
) WITHOUT ROWID;
CREATE INDEX resource_emails_seq ON resource_emails (resource_seq);

-- Members relationally, so adding k members to a group of n costs O(k log n).
-- `pos` keeps insertion order for listings.
CREATE TABLE group_members (
    group_seq   INTEGER NOT NULL,
    member_id   TEXT    NOT NULL,
    member_type TEXT,
    display     TEXT,
    pos         INTEGER NOT NULL,
    PRIMARY KEY (group_seq, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members (member_id);
CREATE INDEX group_members_pos ON group_members (group_seq, pos);

-- The outbox: written in the same transaction as the change it records.
CREATE TABLE change_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    provider    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    op          TEXT    NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    request_id  TEXT
);
CREATE INDEX change_events_resource ON change_events (provider, kind, resource_id, seq);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    provider    TEXT,
    scope       TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created     TEXT NOT NULL,
    expires     TEXT,
    last_used   TEXT,
    revoked     TEXT
) WITHOUT ROWID;
