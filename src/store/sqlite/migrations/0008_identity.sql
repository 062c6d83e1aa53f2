-- Users delivered before the manager their document names: once the manager reaches
-- the target, each waiting user is delivered again with the manager linked.
CREATE TABLE link_waits (
    target      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    awaited_id  TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (target, provider, awaited_id, resource_id)
) WITHOUT ROWID;
