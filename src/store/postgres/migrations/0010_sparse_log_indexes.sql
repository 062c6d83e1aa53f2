-- Index only the provisioning-log rows a query can find through the index. A change
-- received has no target, and a record has no seq until the chainer links it, yet
-- every insert put an entry for its NULL into both indexes (and the chainer's update
-- another into the target index). `target = $n` and `seq >= $n` imply IS NOT NULL,
-- so the queries use the partial indexes as they used the whole ones.
DROP INDEX audit_log_target;
CREATE INDEX audit_log_target ON audit_log (target, id) WHERE target IS NOT NULL;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_seq_key;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq) WHERE seq IS NOT NULL;
