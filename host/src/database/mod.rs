//! The host's PostgreSQL database: the connection settings every user of it shares (the job
//! store, `postgres` sinks, readiness) and the migrations of the host's own tables
//! (`sluice_jobs`, `sluice_migrations`, `sluice_pipeline_sql`).

mod connect;
mod migrations;

pub use connect::{Database, DatabaseError};
pub use migrations::{MIGRATIONS, Migration, MigrationBody, MigrationError, apply_pipeline_sql, migrate};
