//! The `postgres` sink (its settings in [`PostgresSinkSettings`]): a job's rows loaded into
//! tables of the host's database ([`crate::database`]).
//!
//! A load is one transaction. Each sink streams its rows with binary `COPY` ([`CopyWriter`]):
//! straight into its table inside that transaction, through the transaction's own connection
//! ([`SharedCopies`]), when nothing needs replacing: an append, or an upsert into a table that
//! holds no rows ([`TablePlan::try_lock_replace`]); otherwise into an unlogged staging table on
//! a connection of its own, which the transaction then moves into the real table
//! ([`TablePlan::move_statement`]). A crash before the commit leaves only staging tables
//! behind, which the next attempt drops.
//!
//! Column names come from the plugin's declared output schema and the table's own catalog,
//! never from host code ([`TablePlan::resolve`]).

mod cell;
mod config;
mod load;
mod shared_copy;
mod staging;
mod table;
mod writer;

pub use cell::{Cell, CellKind};
pub use config::PostgresSinkSettings;
pub use load::PostgresSinks;
pub use shared_copy::{SegmentSender, SharedCopies};
pub use staging::{Copied, CopyWriter, LoadError, drop_staging_tables, staging_table_name};
pub use table::{
    Lineage, LineageColumn, RowOrigin, TablePlan, TablePlanError, TableSinkSpec, quote_identifier,
};
