-- Ownership: which target accounts and groups the bridge manages, and how it came to.
-- A row in target_ids means the bridge manages that account; `adopted_by` names the
-- matching rule that adopted an account that existed before (NULL: the bridge created it).
ALTER TABLE target_ids ADD COLUMN adopted_by TEXT;
-- "Who at the bridge holds this target account?": adoption must never link one
-- account to two people.
CREATE INDEX target_ids_by_target_id ON target_ids (target, kind, target_id);
-- 1 while the mass-deprovisioning guard holds the row's change back, so the admin can
-- list (`approve --list`) and reject what it holds.
ALTER TABLE delivery_queue ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
