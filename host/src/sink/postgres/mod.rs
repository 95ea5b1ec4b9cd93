//! PostgreSQL: the `postgres` sink, its schema migrations and the connection they share with
//! the job store.
//!
//! A load is one transaction. Each sink streams its rows with binary `COPY` ([`CopyWriter`]):
//! one append straight into its table inside that transaction
//! ([`TablePlan::direct_copy_statement`]), the others into unlogged staging tables of their
//! own, which the transaction then moves into their real tables
//! ([`TablePlan::move_statement`]). A crash before the commit leaves only staging tables
//! behind, which the next attempt drops.
//!
//! Column names come from the plugin's declared output schema and the table's own catalog,
//! never from host code ([`TablePlan::resolve`]).

mod cell;
mod connect;
mod migrations;
mod staging;
mod table;

pub use cell::{Cell, CellKind};
pub use connect::{Database, DatabaseError};
pub use migrations::{MIGRATIONS, Migration, MigrationBody, MigrationError, apply_pipeline_sql, migrate};
pub use staging::{Copied, CopyWriter, LoadError, drop_staging_tables, staging_table_name};
pub use table::{
    Lineage, LineageColumn, RowOrigin, TablePlan, TablePlanError, TableSinkSpec, quote_identifier,
};
