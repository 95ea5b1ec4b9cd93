//! The `postgres` sink's settings.

use serde::Deserialize;

/// `kind = "postgres"`: rows of a PostgreSQL table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkSettings {
    pub table: String,
    /// Columns that identify a row; a later record with the same key replaces it.
    #[serde(default)]
    pub upsert_key: Vec<String>,
    /// A column to fill with the job's start time.
    pub ingested_at_column: Option<String>,
}
