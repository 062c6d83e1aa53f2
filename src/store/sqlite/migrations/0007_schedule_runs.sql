-- Scheduled work (reconciliation) claimed per tick: the caller that moves `tick`
-- forward runs it. With SQLite there is one instance, so this only guards against a
-- tick being run twice; PostgreSQL's copy is what spreads ticks across instances.
CREATE TABLE schedule_runs (
    name  TEXT PRIMARY KEY,
    tick  TEXT NOT NULL,
    owner TEXT NOT NULL
) WITHOUT ROWID;
