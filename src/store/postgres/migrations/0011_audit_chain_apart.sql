-- The audit chain's links move out of the log's rows, as SQLite's did (its 0013).
-- Linking a record used to rewrite its row with its seq, prev, hash and line: a
-- second, wider version of every record (compressed into TOAST once the line made
-- it over 2 kB), new entries in each of the row's indexes (a changed seq rules out
-- a HOT update) and a dead version for vacuum to clear, on PostgreSQL's share of
-- the CPU every SCIM write needs. A record now waits in `audit_unchained` (its id
-- alone, inserted with it), and the chainer moves it from there to a narrow
-- `audit_chain` row; the record itself is written once and never changed.
CREATE TABLE audit_chain (
    seq    BIGINT PRIMARY KEY,
    log_id BIGINT NOT NULL UNIQUE,   -- audit_log.id
    prev   TEXT   NOT NULL,
    hash   TEXT   NOT NULL,
    line   TEXT
);
INSERT INTO audit_chain (seq, log_id, prev, hash, line)
    SELECT seq, id, prev, hash, line FROM audit_log WHERE seq IS NOT NULL;

CREATE TABLE audit_unchained (
    id BIGINT PRIMARY KEY            -- audit_log.id, not yet linked
);
INSERT INTO audit_unchained (id) SELECT id FROM audit_log WHERE seq IS NULL;

-- Dropping seq drops its unique index with it.
DROP INDEX audit_log_unchained;
ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN prev, DROP COLUMN hash, DROP COLUMN line;
