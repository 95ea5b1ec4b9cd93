-- Records a job's plugins refused are kept as dead letters; the job says how many and where.
ALTER TABLE sluice_jobs
    ADD COLUMN dead_letters         bigint NOT NULL DEFAULT 0,
    ADD COLUMN dead_letter_location text;
