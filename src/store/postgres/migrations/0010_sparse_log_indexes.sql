-- Index only the provisioning-log rows a query by target can find: a change received
-- has no target, yet every insert put an entry for its NULL into the index.
-- `target = $n` implies IS NOT NULL, so those queries use the partial index as they
-- used the whole one.
DROP INDEX audit_log_target;
CREATE INDEX audit_log_target ON audit_log (target, id) WHERE target IS NOT NULL;
