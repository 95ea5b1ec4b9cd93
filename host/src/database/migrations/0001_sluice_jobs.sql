-- ETL jobs: one row per (pipeline, object version), shared by every host so any of them can
-- answer GET /v1/jobs/{id} and a file is loaded at most once.
CREATE TABLE sluice_jobs (
    id             uuid        PRIMARY KEY,
    pipeline       text        NOT NULL,
    bucket         text        NOT NULL,
    object_key     text        NOT NULL,
    etag           text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    state          text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts       integer     NOT NULL DEFAULT 0,
    bytes_read     bigint      NOT NULL DEFAULT 0,
    records_read   bigint      NOT NULL DEFAULT 0,
    records_failed bigint      NOT NULL DEFAULT 0,
    rows_by_table  jsonb       NOT NULL DEFAULT '{}',
    failures       jsonb       NOT NULL DEFAULT '[]',
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    queued_at      timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline, bucket, object_key, etag)
);

CREATE INDEX sluice_jobs_state ON sluice_jobs (state) WHERE state IN ('queued', 'running');
