//! Versioned schema migrations, applied at start-up in order and recorded in
//! `sluice_migrations`, so every host and every `sluice job run` sees the same tables.
//!
//! The SQL is embedded in the binary, so a host never runs against a schema it does not know.
//! An applied migration must not change: its checksum is recorded and compared, and a changed
//! one stops the start with a message rather than leaving two hosts with different schemas.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::DatabaseError;

/// One migration: a version, a name for people, and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in version order. Add new ones at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "sluice_jobs", sql: include_str!("migrations/0001_sluice_jobs.sql") },
    Migration { version: 2, name: "user_status", sql: include_str!("migrations/0002_user_status.sql") },
    Migration {
        version: 3,
        name: "job_dead_letters",
        sql: include_str!("migrations/0003_job_dead_letters.sql"),
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
        let embedded = checksum(known.sql);
        if applied != embedded {
            return Err(MigrationError::Changed { version, name: known.name, applied, embedded });
        }
    }
    for migration in MIGRATIONS {
        if rows.iter().any(|row| row.get::<_, i32>(0) == migration.version) {
            continue;
        }
        transaction.batch_execute(migration.sql).await.map_err(DatabaseError::query(format!(
            "applying migration {} ({})",
            migration.version, migration.name
        )))?;
        transaction
            .execute(
                "INSERT INTO sluice_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &checksum(migration.sql)],
            )
            .await
            .map_err(DatabaseError::query("recording a migration"))?;
        applied_now.push(migration.version);
    }
    transaction.commit().await.map_err(DatabaseError::query("committing the migrations"))?;
    Ok(applied_now)
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
        assert!(MIGRATIONS.iter().all(|m| m.sql.trim_end().ends_with(';')), "every statement is terminated");
    }
}
