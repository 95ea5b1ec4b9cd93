//! PostgreSQL: the `postgres` sink, its schema migrations and the connection they share with
//! the job store.
//!
//! A load is staged, never written in place: each sink streams its rows with binary `COPY`
//! into an unlogged staging table of its own ([`StagingWriter`]), and one transaction then
//! moves every staging table into its real table ([`TablePlan::move_statement`]). A crash
//! before that transaction leaves only staging tables behind, which the next attempt drops.
//!
//! Column names come from the plugin's declared output schema and the table's own catalog,
//! never from host code ([`TablePlan::resolve`]).

mod cell;
mod connect;
mod migrations;
mod row;
mod staging;
mod table;

pub use cell::{Cell, CellKind};
pub use connect::{Database, DatabaseError};
pub use migrations::{MIGRATIONS, Migration, MigrationError, migrate};
pub use staging::{LoadError, StagingWriter, drop_staging_tables, staging_table_name};
pub use table::{TablePlan, TablePlanError, TableSinkSpec, quote_identifier};
