-- The vault: one header (salt, Argon2 costs, key check) and the sealed secrets.
-- Ciphertexts are bound to their name through AES-GCM associated data.

CREATE TABLE vault (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    header  TEXT NOT NULL,
    created TEXT NOT NULL,
    rotated TEXT
);

CREATE TABLE secrets (
    name    TEXT PRIMARY KEY,
    sealed  BLOB NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
) WITHOUT ROWID;
