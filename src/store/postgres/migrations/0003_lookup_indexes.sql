-- Lookup indexes lead with the column looked up, and no index on `resources` starts
-- with (provider, kind). Lookups run as prepared statements, so after five runs they
-- use a generic plan, planned without the parameter values. Until a table is first
-- analysed, the planner takes `provider = $1 AND kind = $2` for a very selective
-- condition, so any index starting with (provider, kind) looks as good as the right
-- one, and it may pick the wrong one: then every lookup read all of the provider's
-- users through that index and filtered them (measured: 2.5k userName lookups/s
-- instead of 9k+, 1 ms per lookup at 3,000 users). With the looked-up column first,
-- the right index is the only one whose leading column the query constrains.
-- Paging (`seq > $n ORDER BY seq`) walks the primary key instead.
DROP INDEX resources_id;
DROP INDEX resources_user_name;
DROP INDEX resources_external_id;
DROP INDEX resources_display_name;
CREATE UNIQUE INDEX resources_id ON resources (id, provider, kind);
CREATE UNIQUE INDEX resources_user_name ON resources (user_name_ci, provider, kind);
CREATE INDEX resources_external_id ON resources (external_id, provider, kind);
CREATE INDEX resources_display_name ON resources (display_name_ci, provider, kind);
