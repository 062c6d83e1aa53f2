-- A queued row marked for resync delivers the whole resource (a group's whole member
-- list), as reconciliation needs after drift at the target.
ALTER TABLE delivery_queue ADD COLUMN resync INTEGER NOT NULL DEFAULT 0;
