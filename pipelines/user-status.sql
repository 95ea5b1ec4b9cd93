-- The user-status pipeline's tables, exactly as the original system's DDL creates them: names
-- unquoted, so PostgreSQL folds them to lower case and SQL written for the original runs
-- unchanged; no keys. `IF NOT EXISTS` keeps tables that the original DDL (or an earlier
-- sluice) already created, which are used as they are.
-- sluice applies this file once per version (recorded in sluice_pipeline_sql) before it looks
-- at the tables. Lineage columns the sink fills when a table has them (`plugin_version`,
-- `job_id`) can be added here or later with ALTER TABLE.
CREATE TABLE IF NOT EXISTS user_status (userId varchar, createdAt varchar, status varchar, lastVisitedAt int, isBlacklisted boolean, ingested_at timestamp);

CREATE TABLE IF NOT EXISTS user_status_log (userId varchar, updatedon varchar, status varchar, ingested_at timestamp);

CREATE TABLE IF NOT EXISTS user_status_error_rec (error_rec varchar);
