-- userNames are compared by a comparison key (src/scim/username.rs); the store
-- recomputes stored keys in Rust when it opens (see SQLite's 0011 for the rules).
-- A user whose key collides with an older user's after the recomputation keeps its
-- own seq in `user_name_dup`; the unique index still leads with the looked-up column
-- (0003), and lookups by key use its prefix.
ALTER TABLE resources ADD COLUMN user_name_dup bigint NOT NULL DEFAULT 0;
DROP INDEX resources_user_name;
CREATE UNIQUE INDEX resources_user_name ON resources (user_name_ci, provider, kind, user_name_dup);
DELETE FROM meta WHERE key = 'user_name_key';
