-- Delivery to downstream targets.
--
-- A change is queued for every target routed from its provider in the same
-- transaction as the change event (fan-out at write time). This needs no global
-- reading cursor over change_events, which PostgreSQL could not offer: its sequences
-- commit out of order.

-- Which targets receive which provider's changes; replaced from the config at start.
CREATE TABLE delivery_routes (
    target   TEXT NOT NULL,
    provider TEXT NOT NULL,
    PRIMARY KEY (provider, target)
) WITHOUT ROWID;

-- One row per (target, resource) with undelivered changes. Later changes coalesce into
-- the row: events in (from_seq, last_seq] are still to deliver, and a delivery always
-- pushes the resource's latest state. A lease marks the row in flight, so one resource
-- is never delivered twice at once (per-resource order) and a dead instance's work is
-- taken over when its lease runs out.
CREATE TABLE delivery_queue (
    target      TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    queued_at   TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT    NOT NULL,
    last_error  TEXT,
    lease_owner TEXT,
    lease_until TEXT,
    PRIMARY KEY (target, provider, kind, resource_id)
) WITHOUT ROWID;
CREATE INDEX delivery_queue_due ON delivery_queue (target, next_at);

-- Changes a target refused for good, or that failed too often; kept with the answer.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    resource_id TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    queued_at   TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    at          TEXT    NOT NULL
);
CREATE INDEX dead_letters_target ON dead_letters (target, id);

-- The target's own id for each resource, so every operation is idempotent.
CREATE TABLE target_ids (
    target      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    PRIMARY KEY (target, provider, kind, resource_id)
) WITHOUT ROWID;
