//! Versioned schema migrations, applied at start-up in order and recorded in
//! `sluice_migrations`, so every host and every `sluice job run` sees the same tables.
//!
//! The SQL is embedded in the binary, so a host never runs against a schema it does not know.
//! An applied migration must not change: its checksum is recorded and compared, and a changed
//! one stops the start with a message rather than leaving two hosts with different schemas.
//!
//! These are the host's own tables (`sluice_*`) only. A pipeline's tables belong to the
//! pipeline ([`apply_pipeline_sql`]), so the host binary knows no domain table.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::DatabaseError;

/// One migration: a version, a name for people, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub body: MigrationBody,
}

/// What a migration runs.
#[derive(Debug, Clone, Copy)]
pub enum MigrationBody {
    /// SQL to run once.
    Sql(&'static str),
    /// A migration earlier builds applied and this one no longer runs: databases that have it
    /// keep it (its checksum still matches), new ones record it without running anything.
    Retired { checksum: &'static str },
}

impl Migration {
    /// The SQL to run; nothing for a retired migration.
    pub fn sql(&self) -> &'static str {
        match self.body {
            MigrationBody::Sql(sql) => sql,
            MigrationBody::Retired { .. } => "",
        }
    }

    /// The checksum recorded for this migration.
    pub fn checksum(&self) -> String {
        match self.body {
            MigrationBody::Sql(sql) => checksum(sql),
            MigrationBody::Retired { checksum } => checksum.to_owned(),
        }
    }
}

/// Every migration, in version order. Add new ones at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sluice_jobs",
        body: MigrationBody::Sql(include_str!("migrations/0001_sluice_jobs.sql")),
    },
    // Created one pipeline's tables in the host (quoted camelCase names, a key the system they
    // came from never had); a pipeline's tables now come from the pipeline's own SQL file.
    Migration {
        version: 2,
        name: "retired_pipeline_tables",
        body: MigrationBody::Retired {
            checksum: "b8ee4a7c386119fec6ea2653e25566e68c9354b6fc2c54653d67c0a00364c31d",
        },
    },
    Migration {
        version: 3,
        name: "job_dead_letters",
        body: MigrationBody::Sql(include_str!("migrations/0003_job_dead_letters.sql")),
    },
    Migration {
        version: 4,
        name: "pipeline_sql",
        body: MigrationBody::Sql(include_str!("migrations/0004_pipeline_sql.sql")),
    },
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(
        "migration {version} ({name}) was changed after it was applied (checksum {applied} in the \
         database, {embedded} in this build); add a new migration instead of editing one"
    )]
    Changed { version: i32, name: &'static str, applied: String, embedded: String },
    #[error("the database has migration {version}, which this build does not know; run a newer sluice")]
    Unknown { version: i32 },
    #[error("pipeline `{pipeline}`: applying {file}: {source}")]
    PipelineSql { pipeline: String, file: String, source: Box<DatabaseError> },
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies the migrations `sluice_migrations` does not list yet, all in one transaction, and
/// returns the versions applied now.
///
/// Tables are created in the connection's current schema (the first on its `search_path`).
/// A transaction-scoped advisory lock per schema makes concurrent starts wait for each other
/// instead of racing to create the same table.
///
/// # Errors
/// [`MigrationError`] when a statement fails, an applied migration changed, or the database is
/// ahead of this build.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrationError> {
    let transaction =
        client.transaction().await.map_err(DatabaseError::query("starting the migration transaction"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock(hashtext('sluice_migrations:' || current_schema()))", &[])
        .await
        .map_err(DatabaseError::query("taking the migration lock (is the search_path schema missing?)"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sluice_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(DatabaseError::query("creating sluice_migrations"))?;
    let rows = transaction
        .query("SELECT version, checksum FROM sluice_migrations ORDER BY version", &[])
        .await
        .map_err(DatabaseError::query("reading sluice_migrations"))?;
    let mut applied_now = Vec::new();
    for row in &rows {
        let version: i32 = row.get(0);
        let applied: String = row.get(1);
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(MigrationError::Unknown { version });
        };
        let embedded = known.checksum();
        if applied != embedded {
            return Err(MigrationError::Changed { version, name: known.name, applied, embedded });
        }
    }
    for migration in MIGRATIONS {
        if rows.iter().any(|row| row.get::<_, i32>(0) == migration.version) {
            continue;
        }
        transaction.batch_execute(migration.sql()).await.map_err(DatabaseError::query(format!(
            "applying migration {} ({})",
            migration.version, migration.name
        )))?;
        transaction
            .execute(
                "INSERT INTO sluice_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &migration.checksum()],
            )
            .await
            .map_err(DatabaseError::query("recording a migration"))?;
        applied_now.push(migration.version);
    }
    transaction.commit().await.map_err(DatabaseError::query("committing the migrations"))?;
    Ok(applied_now)
}

/// Runs a pipeline's table SQL (its `tables_sql` file) unless this version of the file was
/// applied before, and records it; returns whether it ran now.
///
/// The file is the pipeline's, so the host binary holds no domain table. It is applied in
/// one transaction under the same per-schema lock as the migrations; a changed file is a new
/// version and runs once more, so it should be written to run over tables that exist
/// (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`), as tables made by other tools
/// before sluice are used as they are.
///
/// # Errors
/// [`MigrationError::PipelineSql`] naming the pipeline and file when a statement fails.
pub async fn apply_pipeline_sql(
    client: &mut Client,
    pipeline: &str,
    file: &str,
    sql: &str,
) -> Result<bool, MigrationError> {
    let failed = |source| MigrationError::PipelineSql {
        pipeline: pipeline.to_owned(),
        file: file.to_owned(),
        source: Box::new(source),
    };
    let sum = checksum(sql);
    let transaction =
        client.transaction().await.map_err(DatabaseError::query("starting the pipeline SQL transaction"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock(hashtext('sluice_migrations:' || current_schema()))", &[])
        .await
        .map_err(DatabaseError::query("taking the migration lock"))?;
    let applied = transaction
        .query_opt(
            "SELECT 1 FROM sluice_pipeline_sql WHERE pipeline = $1 AND file = $2 AND checksum = $3",
            &[&pipeline, &file, &sum],
        )
        .await
        .map_err(DatabaseError::query("reading sluice_pipeline_sql"))?;
    if applied.is_some() {
        return Ok(false);
    }
    transaction.batch_execute(sql).await.map_err(DatabaseError::query("running it")).map_err(failed)?;
    transaction
        .execute(
            "INSERT INTO sluice_pipeline_sql (pipeline, file, checksum) VALUES ($1, $2, $3)",
            &[&pipeline, &file, &sum],
        )
        .await
        .map_err(DatabaseError::query("recording it in sluice_pipeline_sql"))?;
    transaction.commit().await.map_err(DatabaseError::query("committing the pipeline SQL"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_by_one_from_one() {
        for (position, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(migration.version).ok(), Some(position + 1), "{}", migration.name);
        }
    }

    #[test]
    fn migrations_are_numbered_in_order_and_each_has_sql() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=MIGRATIONS.len() as i32).collect::<Vec<_>>());
        for migration in MIGRATIONS {
            match migration.body {
                MigrationBody::Sql(sql) => assert!(sql.trim_end().ends_with(';'), "{}", migration.name),
                MigrationBody::Retired { checksum } => assert_eq!(checksum.len(), 64, "{}", migration.name),
            }
        }
    }
}
