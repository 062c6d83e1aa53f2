-- userNames are compared by a comparison key (src/scim/username.rs: Unicode
-- compatibility caseless match, NFC, surrounding white space dropped) instead of
-- their lower case. SQL cannot compute it, so the store recomputes every stored key
-- in Rust when it opens and finds `meta.user_name_key` missing or naming another
-- version (see `rekey_user_names`).
--
-- Two users stored before may now have one key ("Straße" and "STRASSE"). Both are
-- kept: the later one is marked with its own seq in `user_name_dup`, which keeps the
-- unique index satisfied while lookups by key (the index's prefix) find both. New
-- names still collide with the unmarked holder (`user_name_dup` = 0).
ALTER TABLE resources ADD COLUMN user_name_dup INTEGER NOT NULL DEFAULT 0;
DROP INDEX resources_user_name;
CREATE UNIQUE INDEX resources_user_name ON resources (provider, kind, user_name_ci, user_name_dup)
    WHERE user_name_ci IS NOT NULL;
DELETE FROM meta WHERE key = 'user_name_key';
