-- The console's sessions (src/store/console_sessions.rs), keyed by the hex SHA-256 of
-- the session id the browser's cookie holds. `token` is the API token a session was
-- opened with (NULL for a sign-in through OpenID Connect); `who` names the person in
-- the records of what they do.
CREATE TABLE console_sessions (
    key     TEXT PRIMARY KEY,
    role    TEXT NOT NULL,
    token   TEXT,
    who     TEXT NOT NULL,
    csrf    TEXT NOT NULL,
    expires TEXT NOT NULL,
    notice  TEXT
) WITHOUT ROWID;
CREATE INDEX console_sessions_expires ON console_sessions (expires);
CREATE INDEX console_sessions_token ON console_sessions (token) WHERE token IS NOT NULL;
