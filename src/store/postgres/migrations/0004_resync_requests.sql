-- `resync` counts resync requests instead of flagging one. A request made while the
-- row's delivery is in flight raises the count, and finishing that delivery deletes
-- the row only if the count is what it claimed, so the request is not lost with it.
ALTER TABLE delivery_queue ALTER COLUMN resync DROP DEFAULT;
ALTER TABLE delivery_queue ALTER COLUMN resync TYPE bigint
    USING (CASE WHEN resync THEN 1 ELSE 0 END);
ALTER TABLE delivery_queue ALTER COLUMN resync SET DEFAULT 0;
