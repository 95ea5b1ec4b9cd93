-- Tables a pipeline owns are created by SQL files the pipeline names (`tables_sql`), not by
-- the host; each file version applied is recorded here, per pipeline, so it runs once.
CREATE TABLE sluice_pipeline_sql (
    pipeline   text        NOT NULL,
    file       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, file, checksum)
);

-- What a job reads: an object as the user wrote it, or a dead-letter object of an earlier job
-- (`sluice sweep`), whose lines carry the refused records.
ALTER TABLE sluice_jobs
    ADD COLUMN input text NOT NULL DEFAULT 'object' CHECK (input IN ('object', 'dead-letters'));
