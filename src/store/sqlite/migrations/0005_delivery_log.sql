-- Every delivery attempt with its outcome and timing, for `scim-bridge trace`.
-- Pruned after 30 days by the running daemon.
CREATE TABLE delivery_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT,
    duration_ms INTEGER NOT NULL,
    at          TEXT    NOT NULL
);
CREATE INDEX delivery_log_resource ON delivery_log (provider, kind, resource_id, id);
CREATE INDEX delivery_log_at ON delivery_log (at);
