-- The console's sessions (src/store/console_sessions.rs), keyed by the hex SHA-256 of
-- the session id the browser's cookie holds, shared by every instance on this
-- database. `token` is the API token a session was opened with (NULL for a sign-in
-- through OpenID Connect); `who` names the person in the records of what they do.
CREATE TABLE console_sessions (
    key     text PRIMARY KEY,
    role    text NOT NULL,
    token   text,
    who     text NOT NULL,
    csrf    text NOT NULL,
    expires timestamptz NOT NULL,
    notice  text
);
CREATE INDEX console_sessions_expires ON console_sessions (expires);
CREATE INDEX console_sessions_token ON console_sessions (token) WHERE token IS NOT NULL;
