-- The user-status ETL's tables (pipelines/user-status.toml). Column names and types are the
-- original job's; names are quoted so they keep its camelCase.

-- The latest status of each user: a later file with the same userId replaces the row.
CREATE TABLE user_status (
    "userId"        varchar   PRIMARY KEY,
    "createdAt"     varchar,
    status          varchar,
    "lastVisitedAt" int,
    "isBlacklisted" boolean,
    ingested_at     timestamp
);

-- Every status change, appended per load.
CREATE TABLE user_status_log (
    "userId"    varchar,
    "updatedOn" varchar,
    status      varchar,
    ingested_at timestamp
);

CREATE INDEX user_status_log_user ON user_status_log ("userId", "updatedOn");

-- Records that failed validation, as one line of text each.
CREATE TABLE user_status_error_rec (
    error_rec varchar
);
