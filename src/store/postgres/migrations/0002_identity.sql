-- Users delivered before the manager their document names: once the manager reaches
-- the target, each waiting user is delivered again with the manager linked.
CREATE TABLE link_waits (
    target      text NOT NULL,
    provider    text NOT NULL,
    awaited_id  text NOT NULL,
    resource_id text NOT NULL,
    PRIMARY KEY (target, provider, awaited_id, resource_id)
);
