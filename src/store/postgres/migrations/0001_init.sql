-- scim-bridge schema v1 (PostgreSQL): the same shape as SQLite's schema v6, in
-- PostgreSQL's own types. Timestamps are timestamptz truncated to milliseconds on
-- write, as SQLite's text timestamps are; documents stay text so their key order
-- (which SCIM answers keep) survives, which jsonb would not.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Users and groups of every provider. `seq` gives creation order for keyset paging
-- and is the compact key member rows point at.
CREATE TABLE resources (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        text   NOT NULL,
    kind            text   NOT NULL CHECK (kind IN ('User', 'Group')),
    id              text   NOT NULL,
    version         bigint NOT NULL,
    created         timestamptz NOT NULL,
    last_modified   timestamptz NOT NULL,
    user_name_ci    text,
    external_id     text,
    display_name_ci text,
    doc             text   NOT NULL
);
-- Full indexes, not SQLite's partial ones: lookups compare with `= ANY($n)`, from
-- which the planner cannot prove `IS NOT NULL` for a prepared (generic) plan, so a
-- partial index would be skipped for a sequential scan. A unique index admits any
-- number of NULLs, so userName uniqueness is the same.
CREATE UNIQUE INDEX resources_id ON resources (provider, kind, id);
CREATE UNIQUE INDEX resources_user_name ON resources (provider, kind, user_name_ci);
CREATE INDEX resources_external_id ON resources (provider, kind, external_id);
CREATE INDEX resources_display_name ON resources (provider, kind, display_name_ci);

CREATE TABLE resource_emails (
    value_ci     text   NOT NULL,
    resource_seq bigint NOT NULL,
    PRIMARY KEY (value_ci, resource_seq)
);
CREATE INDEX resource_emails_seq ON resource_emails (resource_seq);

-- Members relationally, so adding k members to a group of n costs O(k log n).
-- `pos` keeps insertion order for listings.
CREATE TABLE group_members (
    group_seq   bigint NOT NULL,
    member_id   text   NOT NULL,
    member_type text,
    display     text,
    pos         bigint NOT NULL,
    PRIMARY KEY (group_seq, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);
CREATE INDEX group_members_pos ON group_members (group_seq, pos);

-- The outbox: written in the same transaction as the change it records. Per
-- resource, seq order is commit order (see write.rs); across resources it need not be.
CREATE TABLE change_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text   NOT NULL,
    kind        text   NOT NULL,
    resource_id text   NOT NULL,
    op          text   NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     bigint NOT NULL,
    at          timestamptz NOT NULL,
    detail      text   NOT NULL,
    request_id  text
);
CREATE INDEX change_events_resource ON change_events (provider, kind, resource_id, seq);
CREATE INDEX change_events_at ON change_events (at);

CREATE TABLE api_tokens (
    id          text PRIMARY KEY,
    provider    text,
    scope       text  NOT NULL,
    secret_hash bytea NOT NULL,
    created     timestamptz NOT NULL,
    expires     timestamptz,
    last_used   timestamptz,
    revoked     timestamptz
);

-- The vault: one header (salt, Argon2 costs, key check) and the sealed secrets.
CREATE TABLE vault (
    id      integer PRIMARY KEY CHECK (id = 1),
    header  text NOT NULL,
    created timestamptz NOT NULL,
    rotated timestamptz
);

CREATE TABLE secrets (
    name    text PRIMARY KEY,
    sealed  bytea NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

-- Which targets receive which provider's changes; replaced from the config at start.
CREATE TABLE delivery_routes (
    target   text NOT NULL,
    provider text NOT NULL,
    PRIMARY KEY (provider, target)
);

-- One row per (target, resource) with undelivered changes; see SQLite's 0003 for the
-- coalescing and lease rules, which are the same here. Instances claim rows with
-- FOR UPDATE SKIP LOCKED, so one resource is in flight at one instance at a time.
CREATE TABLE delivery_queue (
    target      text    NOT NULL,
    provider    text    NOT NULL,
    kind        text    NOT NULL,
    resource_id text    NOT NULL,
    from_seq    bigint  NOT NULL,
    last_seq    bigint  NOT NULL,
    queued_at   timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL,
    last_error  text,
    lease_owner text,
    lease_until timestamptz,
    resync      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (target, provider, kind, resource_id)
);
CREATE INDEX delivery_queue_due ON delivery_queue (target, next_at);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text    NOT NULL,
    provider    text    NOT NULL,
    kind        text    NOT NULL,
    resource_id text    NOT NULL,
    from_seq    bigint  NOT NULL,
    last_seq    bigint  NOT NULL,
    queued_at   timestamptz NOT NULL,
    attempts    integer NOT NULL,
    error       text    NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX dead_letters_target ON dead_letters (target, id);

CREATE TABLE target_ids (
    target      text NOT NULL,
    provider    text NOT NULL,
    kind        text NOT NULL,
    resource_id text NOT NULL,
    target_id   text NOT NULL,
    PRIMARY KEY (target, provider, kind, resource_id)
);

CREATE TABLE delivery_guard (
    target         text PRIMARY KEY,
    tripped_at     timestamptz,
    reason         text,
    approved_at    timestamptz,
    approved_until timestamptz
);

CREATE TABLE delivery_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      text   NOT NULL,
    provider    text   NOT NULL,
    kind        text   NOT NULL,
    resource_id text   NOT NULL,
    from_seq    bigint NOT NULL,
    last_seq    bigint NOT NULL,
    outcome     text   NOT NULL,
    detail      text,
    duration_ms bigint NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX delivery_log_resource ON delivery_log (provider, kind, resource_id, id);
CREATE INDEX delivery_log_at ON delivery_log (at);

-- Scheduled work (reconciliation) done once per tick across instances: the instance
-- that moves `tick` forward runs it; the tick doubles as the fencing token.
CREATE TABLE schedule_runs (
    name  text PRIMARY KEY,
    tick  timestamptz NOT NULL,
    owner text NOT NULL
);
