-- The mass-deprovisioning guard: when a target saw too many deactivations and deletions
-- in its window, destructive deliveries pause until an admin approves.
CREATE TABLE delivery_guard (
    target         TEXT PRIMARY KEY,
    tripped_at     TEXT,
    reason         TEXT,
    approved_at    TEXT,
    -- Destructive deliveries go ahead without counting until then.
    approved_until TEXT
) WITHOUT ROWID;
