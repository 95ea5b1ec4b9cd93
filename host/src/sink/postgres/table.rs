//! How one plugin output maps onto one table: which field fills which column, and the SQL
//! that stages rows and moves them into the table.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use super::cell::{Cell, CellKind, SUPPORTED_TYPES};
use crate::database::DatabaseError;

/// What a `postgres` sink is asked to do, before the table has been looked at.
#[derive(Debug, Clone)]
pub struct TableSinkSpec {
    /// `<plugin>.<output>`, for messages.
    pub output: String,
    /// The table, optionally `schema.table`; unqualified names follow the `search_path`.
    pub table: String,
    /// The output's fields, from the plugin's declared schema.
    pub fields: Vec<String>,
    /// Columns that identify a row: a load keeps the last row per key and replaces the rows
    /// the table holds for those keys, with or without a unique index.
    pub upsert_key: Vec<String>,
    /// A column to fill with the load's time.
    pub ingested_at_column: Option<String>,
}

/// Why an output cannot be loaded into its table.
#[derive(Debug, thiserror::Error)]
pub enum TablePlanError {
    #[error(
        "table `{table}` (for {output}) does not exist in the database's search_path; \
         the host's migrations create the tables it knows, others must exist before start"
    )]
    MissingTable { table: String, output: String },
    #[error("{output} has field `{field}`, but table `{table}` has no such column (columns: {columns})")]
    NoColumn { output: String, field: String, table: String, columns: String },
    #[error(
        "column `{column}` of table `{table}` has type {found}, which the postgres sink cannot fill \
         (supported: {SUPPORTED_TYPES})"
    )]
    UnsupportedType { table: String, column: String, found: String },
    #[error("{output}: fields `{first}` and `{second}` both match column `{column}` of table `{table}`")]
    SameColumn { output: String, first: String, second: String, column: String, table: String },
    #[error("`ingested_at_column = \"{column}\"`: table `{table}` has no such column")]
    NoIngestedAtColumn { table: String, column: String },
    #[error(
        "`ingested_at_column = \"{column}\"` is also a field of {output}; the sink fills it with the \
         load time, so the plugin must not"
    )]
    IngestedAtIsAField { output: String, column: String },
    #[error("`upsert_key` names `{column}`, which is not a field of {output} in table `{table}`")]
    KeyNotAField { output: String, table: String, column: String },
    #[error(
        "column `{column}` of table `{table}` holds the sink's lineage ({what}) and must be text or \
         varchar, not {found}"
    )]
    LineageType { table: String, column: String, what: &'static str, found: String },
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// One column the sink fills from a plugin field.
#[derive(Debug, Clone)]
pub struct PlannedColumn {
    pub field: String,
    pub column: String,
    pub ty: Type,
    pub kind: CellKind,
}

/// What the sink knows about a row beyond the plugin's fields, written into a column of that
/// name when the table has one and left out when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineage {
    /// `plugin_version`: `name@version` of the plugin that produced the row.
    PluginVersion,
    /// `job_id`: the load's job.
    JobId,
}

impl Lineage {
    const ALL: [Lineage; 2] = [Lineage::PluginVersion, Lineage::JobId];

    /// The column name the sink looks for.
    pub fn column(self) -> &'static str {
        match self {
            Lineage::PluginVersion => "plugin_version",
            Lineage::JobId => "job_id",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Lineage::PluginVersion => "the plugin's name@version",
            Lineage::JobId => "the job id",
        }
    }
}

/// A lineage column of the table.
#[derive(Debug, Clone)]
pub struct LineageColumn {
    pub lineage: Lineage,
    pub column: String,
    pub ty: Type,
}

/// Where a row came from, for the lineage columns.
#[derive(Debug, Clone, Copy)]
pub struct RowOrigin<'a> {
    pub plugin_version: &'a str,
    pub job_id: &'a str,
}

/// A plugin output resolved against its table's catalog.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table as configured, for messages.
    pub table: String,
    pub output: String,
    table_sql: String,
    columns: Vec<PlannedColumn>,
    upsert_key: Vec<String>,
    /// Whether every upsert key column compares by bytes under its collation (see
    /// [`TablePlan::byte_comparable_key`]).
    key_collations_deterministic: bool,
    /// The column filled with the load time, and its type.
    ingested_at: Option<(String, Type)>,
    /// Lineage columns the table has, after the field columns in every row.
    lineage: Vec<LineageColumn>,
}

/// The staging tables' extra column: a row's position in the input, so an upsert keeps the
/// last of several rows with one key and appends keep the input's order.
const SEQUENCE_COLUMN: &str = "sluice_seq";

/// `name` as a quoted SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `table` or `schema.table`, each part quoted.
fn quote_table(table: &str) -> String {
    table.split('.').map(quote_identifier).collect::<Vec<_>>().join(".")
}

/// The column called `name`: the exact name, or else the only one equal ignoring ASCII case,
/// so an unquoted `orderid` column still takes an `orderId` field.
fn find_column<'c>(columns: &'c [(String, Type)], name: &str) -> Option<&'c (String, Type)> {
    columns.iter().find(|(column, _)| column == name).or_else(|| {
        let mut folded = columns.iter().filter(|(column, _)| column.eq_ignore_ascii_case(name));
        match (folded.next(), folded.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    })
}

impl TablePlan {
    /// Looks the table up and matches every field of the output to a column.
    ///
    /// Columns no field fills keep their defaults; every field must find a column, so no data
    /// is dropped silently.
    ///
    /// # Errors
    /// [`TablePlanError`] naming the table, the field or the setting that does not fit.
    pub async fn resolve(client: &Client, spec: &TableSinkSpec) -> Result<Self, TablePlanError> {
        let table_sql = quote_table(&spec.table);
        let statement = match client.prepare(&format!("SELECT * FROM {table_sql}")).await {
            Ok(statement) => statement,
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                return Err(TablePlanError::MissingTable {
                    table: spec.table.clone(),
                    output: spec.output.clone(),
                });
            }
            Err(error) => {
                return Err(DatabaseError::query(format!("looking up table `{}`", spec.table))(error).into());
            }
        };
        let catalog: Vec<(String, Type)> =
            statement.columns().iter().map(|c| (c.name().to_owned(), c.type_().clone())).collect();
        let mut columns: Vec<PlannedColumn> = Vec::with_capacity(spec.fields.len());
        for field in &spec.fields {
            let Some((column, ty)) = find_column(&catalog, field) else {
                return Err(TablePlanError::NoColumn {
                    output: spec.output.clone(),
                    field: field.clone(),
                    table: spec.table.clone(),
                    columns: catalog.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", "),
                });
            };
            let Some(kind) = CellKind::of(ty) else {
                return Err(TablePlanError::UnsupportedType {
                    table: spec.table.clone(),
                    column: column.clone(),
                    found: ty.name().to_owned(),
                });
            };
            if let Some(earlier) = columns.iter().find(|planned| &planned.column == column) {
                return Err(TablePlanError::SameColumn {
                    output: spec.output.clone(),
                    first: earlier.field.clone(),
                    second: field.clone(),
                    column: column.clone(),
                    table: spec.table.clone(),
                });
            }
            columns.push(PlannedColumn {
                field: field.clone(),
                column: column.clone(),
                ty: ty.clone(),
                kind,
            });
        }
        let ingested_at = match &spec.ingested_at_column {
            None => None,
            Some(name) => {
                let Some((column, ty)) = find_column(&catalog, name) else {
                    return Err(TablePlanError::NoIngestedAtColumn {
                        table: spec.table.clone(),
                        column: name.clone(),
                    });
                };
                if columns.iter().any(|planned| &planned.column == column) {
                    return Err(TablePlanError::IngestedAtIsAField {
                        output: spec.output.clone(),
                        column: name.clone(),
                    });
                }
                Some((column.clone(), ty.clone()))
            }
        };
        let mut upsert_key = Vec::with_capacity(spec.upsert_key.len());
        for name in &spec.upsert_key {
            let found = find_column(&catalog, name)
                .and_then(|(column, _)| columns.iter().find(|planned| &planned.column == column));
            let Some(planned) = found else {
                return Err(TablePlanError::KeyNotAField {
                    output: spec.output.clone(),
                    table: spec.table.clone(),
                    column: name.clone(),
                });
            };
            upsert_key.push(planned.column.clone());
        }
        let key_collations_deterministic = upsert_key.is_empty()
            || client
                .query_one(
                    "SELECT coalesce(bool_and(coalesce(c.collisdeterministic, true)), true) \
                     FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation \
                     WHERE a.attrelid = $1::text::regclass AND a.attname::text = ANY($2::text[])",
                    &[&table_sql, &upsert_key],
                )
                .await
                .map_err(DatabaseError::query(format!("reading the key collations of `{}`", spec.table)))?
                .get::<_, bool>(0);
        let mut lineage = Vec::new();
        for kind in Lineage::ALL {
            let Some((column, ty)) = find_column(&catalog, kind.column()) else { continue };
            let taken = columns.iter().any(|planned| &planned.column == column)
                || ingested_at.as_ref().is_some_and(|(ingested, _)| ingested == column);
            if taken {
                continue;
            }
            if CellKind::of(ty) != Some(CellKind::Text) {
                return Err(TablePlanError::LineageType {
                    table: spec.table.clone(),
                    column: column.clone(),
                    what: kind.describe(),
                    found: ty.name().to_owned(),
                });
            }
            lineage.push(LineageColumn { lineage: kind, column: column.clone(), ty: ty.clone() });
        }
        Ok(TablePlan {
            table: spec.table.clone(),
            output: spec.output.clone(),
            table_sql,
            columns,
            upsert_key,
            key_collations_deterministic,
            ingested_at,
            lineage,
        })
    }

    /// The columns filled from plugin fields, in the output schema's order.
    pub fn columns(&self) -> &[PlannedColumn] {
        &self.columns
    }

    /// The lineage columns the table has, in the order rows carry them after the fields.
    pub fn lineage(&self) -> &[LineageColumn] {
        &self.lineage
    }

    /// The lineage cells of one row, in [`TablePlan::lineage`] order.
    pub fn lineage_cells<'a>(&'a self, origin: RowOrigin<'a>) -> impl Iterator<Item = Cell<'a>> + 'a {
        self.lineage.iter().map(move |column| match column.lineage {
            Lineage::PluginVersion => Cell::Text(origin.plugin_version.into()),
            Lineage::JobId => Cell::Text(origin.job_id.into()),
        })
    }

    /// Every column a row fills, quoted: the fields' columns, then the lineage columns.
    fn row_columns(&self) -> Vec<String> {
        let fields = self.columns.iter().map(|c| quote_identifier(&c.column));
        fields.chain(self.lineage.iter().map(|l| quote_identifier(&l.column))).collect()
    }

    fn column_list(&self) -> String {
        self.row_columns().join(", ")
    }

    /// The types of [`TablePlan::row_columns`], in its order.
    fn row_types(&self) -> impl Iterator<Item = Type> + '_ {
        self.columns.iter().map(|c| c.ty.clone()).chain(self.lineage.iter().map(|l| l.ty.clone()))
    }

    /// Creates the staging table `stage`: the table's planned columns with their exact types,
    /// no constraints, unlogged (its rows are moved or dropped within the job).
    pub fn create_staging_statement(&self, stage: &str) -> String {
        format!(
            "CREATE UNLOGGED TABLE {} AS SELECT 0::bigint AS {SEQUENCE_COLUMN}, {} FROM {} WITH NO DATA",
            quote_identifier(stage),
            self.column_list(),
            self.table_sql
        )
    }

    /// The binary `COPY` into `stage`; rows carry the sequence number first.
    pub fn copy_statement(&self, stage: &str) -> String {
        format!(
            "COPY {} ({SEQUENCE_COLUMN}, {}) FROM STDIN (FORMAT binary)",
            quote_identifier(stage),
            self.column_list()
        )
    }

    /// The column types of [`TablePlan::copy_statement`], in its order.
    pub fn copy_types(&self) -> Vec<Type> {
        std::iter::once(Type::INT8).chain(self.row_types()).collect()
    }

    /// The binary `COPY` straight into the table, for rows written inside the load's own
    /// transaction: the table's planned columns, then the load time when there is an
    /// `ingested_at` column. `None` for an `ingested_at` column that is not a timestamp. An
    /// upsert's rows can only be copied so while nothing needs replacing (see
    /// [`TablePlan::try_lock_replace`]).
    pub fn table_copy_statement(&self) -> Option<String> {
        let mut columns = self.column_list();
        if let Some((column, ty)) = &self.ingested_at {
            if *ty != Type::TIMESTAMP && *ty != Type::TIMESTAMPTZ {
                return None;
            }
            columns = format!("{columns}, {}", quote_identifier(column));
        }
        Some(format!("COPY {} ({columns}) FROM STDIN (FORMAT binary)", self.table_sql))
    }

    /// Whether a load keeps one row per key.
    pub fn is_upsert(&self) -> bool {
        !self.upsert_key.is_empty()
    }

    /// The column types of [`TablePlan::table_copy_statement`], in its order.
    pub fn direct_copy_types(&self) -> Vec<Type> {
        let ingested_at = self.ingested_at.iter().map(|(_, ty)| ty.clone());
        self.row_types().chain(ingested_at).collect()
    }

    /// The load time as the `ingested_at` column's cell, when the table has one: the same value
    /// [`TablePlan::move_statement`] writes, UTC wall time for a `timestamp`.
    pub fn ingested_at_cell(&self, loaded_at: DateTime<Utc>) -> Option<Cell<'static>> {
        self.ingested_at.as_ref().map(|(_, ty)| {
            if *ty == Type::TIMESTAMPTZ {
                Cell::TimestampTz(loaded_at)
            } else {
                Cell::Timestamp(loaded_at.naive_utc())
            }
        })
    }

    /// The statement that moves `stage` into the table; `$1` (timestamptz) is the load time
    /// when there is an `ingested_at` column.
    ///
    /// Without an upsert key rows are appended as staged (one writer staged them in input order;
    /// no sort is paid for an order SQL tables do not keep). With one, the last row per key
    /// in the input is inserted, after [`TablePlan::replace_statements`] removed the rows the
    /// table held for those keys; when the writer saw every key once (`keys_unique`), every
    /// staged row is the last of its key and they are appended without the sort that finds it.
    pub fn move_statement(&self, stage: &str, keys_unique: bool) -> String {
        let mut target = self.row_columns();
        let mut selected = target.clone();
        if let Some((column, _)) = &self.ingested_at {
            target.push(quote_identifier(column));
            selected.push("$1::timestamptz".to_owned());
        }
        let stage = quote_identifier(stage);
        if self.upsert_key.is_empty() || keys_unique {
            return format!(
                "INSERT INTO {} ({}) SELECT {} FROM {stage}",
                self.table_sql,
                target.join(", "),
                selected.join(", ")
            );
        }
        let keys = self.quoted_keys().join(", ");
        format!(
            "INSERT INTO {} ({}) SELECT DISTINCT ON ({keys}) {} FROM {stage} ORDER BY {keys}, {SEQUENCE_COLUMN} DESC",
            self.table_sql,
            target.join(", "),
            selected.join(", ")
        )
    }

    /// Where the upsert key's columns are among [`TablePlan::columns`], when equal keys always
    /// encode to equal binary `COPY` bytes (texts, integers, booleans, timestamps), so a writer
    /// can tell from the bytes alone that no key repeats; `None` without a key or for a key
    /// whose values can be equal in other bytes (`-0.0` and `0.0`, JSON with its members in
    /// another order, texts under a nondeterministic collation such as a case-insensitive one).
    pub fn byte_comparable_key(&self) -> Option<Vec<usize>> {
        if self.upsert_key.is_empty() || !self.key_collations_deterministic {
            return None;
        }
        self.upsert_key
            .iter()
            .map(|key| {
                let position = self.columns.iter().position(|planned| &planned.column == key)?;
                let exact = matches!(
                    self.columns.get(position)?.kind,
                    CellKind::Text
                        | CellKind::Int2
                        | CellKind::Int4
                        | CellKind::Int8
                        | CellKind::Bool
                        | CellKind::Timestamp
                        | CellKind::TimestampTz
                );
                exact.then_some(position)
            })
            .collect()
    }

    /// The advisory lock key under which loads replace this table's rows, as SQL.
    fn replace_lock(&self) -> String {
        let lock_name = format!("sluice_replace:{}", self.table_sql).replace('\'', "''");
        format!("hashtext('{lock_name}')")
    }

    /// Whether an upsert's rows may be copied straight into its table while it holds no rows:
    /// its keys compare by bytes, so a repeat is found from the rows' bytes, and its load time
    /// can be copied.
    pub fn copies_into_empty_table(&self) -> bool {
        self.byte_comparable_key().is_some() && self.table_copy_statement().is_some()
    }

    /// Takes the lock under which loads replace this table's rows (the one
    /// [`TablePlan::replace_statements`] takes) without waiting; true when this transaction
    /// holds it now, until it ends. A load that holds it before it reads its object can copy
    /// into a table found empty: no other load can replace rows in it before this one commits.
    ///
    /// # Errors
    /// [`DatabaseError::Query`] when the statement fails.
    pub async fn try_lock_replace(&self, client: &impl GenericClient) -> Result<bool, DatabaseError> {
        let locked = client
            .query_one(&format!("SELECT pg_try_advisory_xact_lock({})", self.replace_lock()), &[])
            .await
            .map_err(DatabaseError::query(format!("taking the replace lock of `{}`", self.table)))?;
        Ok(locked.get(0))
    }

    /// Takes the replace lock, waiting for the load that holds it to end. Loads take these
    /// locks before their job's row, in the sinks' order, so two loads never wait on each other.
    ///
    /// # Errors
    /// [`DatabaseError::Query`] when the statement fails.
    pub async fn lock_replace(&self, client: &impl GenericClient) -> Result<(), DatabaseError> {
        client
            .execute(&format!("SELECT pg_advisory_xact_lock({})", self.replace_lock()), &[])
            .await
            .map_err(DatabaseError::query(format!("taking the replace lock of `{}`", self.table)))?;
        Ok(())
    }

    /// Whether the table holds any row this transaction can see.
    ///
    /// # Errors
    /// [`DatabaseError::Query`] when the statement fails.
    pub async fn holds_rows(&self, client: &impl GenericClient) -> Result<bool, DatabaseError> {
        let row = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", self.table_sql), &[])
            .await
            .map_err(DatabaseError::query(format!("looking whether `{}` holds rows", self.table)))?;
        Ok(row.get(0))
    }

    fn quoted_keys(&self) -> Vec<String> {
        self.upsert_key.iter().map(|key| quote_identifier(key)).collect()
    }

    /// For an upsert key, the statements run before [`TablePlan::move_statement`]: a lock that
    /// makes concurrent loads of the table replace rows one after the other (two transactions
    /// deleting and inserting the same key side by side would both insert), then the delete
    /// of the rows whose key the load brings. No unique index is needed, so a table with
    /// several rows per key (as an append-only loader leaves it) ends with one. A `NULL` key
    /// equals nothing and replaces nothing.
    pub fn replace_statements(&self, stage: &str) -> Option<[String; 2]> {
        if self.upsert_key.is_empty() {
            return None;
        }
        let keys = self.quoted_keys();
        let matches =
            keys.iter().map(|key| format!("{}.{key} = loaded.{key}", self.table_sql)).collect::<Vec<_>>();
        Some([
            format!("SELECT pg_advisory_xact_lock({})", self.replace_lock()),
            format!(
                "DELETE FROM {table} USING (SELECT DISTINCT {list} FROM {stage}) AS loaded WHERE {on}",
                table = self.table_sql,
                list = keys.join(", "),
                stage = quote_identifier(stage),
                on = matches.join(" AND ")
            ),
        ])
    }

    /// Moves the staged rows into the table inside the caller's transaction, replacing the
    /// rows of the keys it brings when there is an upsert key; returns the rows inserted.
    /// `keys_unique` says the staged rows' keys are known to be all different.
    ///
    /// # Errors
    /// [`DatabaseError::Query`] when a statement fails (a constraint, say).
    pub async fn move_staged(
        &self,
        client: &impl GenericClient,
        stage: &str,
        keys_unique: bool,
        ingested_at: DateTime<Utc>,
    ) -> Result<u64, DatabaseError> {
        if let Some(statements) = self.replace_statements(stage) {
            for statement in statements {
                client.execute(&statement, &[]).await.map_err(DatabaseError::query(format!(
                    "replacing the rows of `{}` whose key the load brings",
                    self.table
                )))?;
            }
        }
        let statement = self.move_statement(stage, keys_unique);
        let result = if self.ingested_at.is_some() {
            client.execute(&statement, &[&ingested_at]).await
        } else {
            client.execute(&statement, &[]).await
        };
        result.map_err(DatabaseError::query(format!("moving the staged rows into `{}`", self.table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(upsert_key: &[&str], ingested_at: Option<&str>) -> TablePlan {
        let columns = ["id", "name", "n"]
            .iter()
            .map(|name| PlannedColumn {
                field: (*name).into(),
                column: (*name).into(),
                ty: Type::TEXT,
                kind: CellKind::Text,
            })
            .collect();
        TablePlan {
            table: "t".into(),
            output: "p.o".into(),
            table_sql: quote_table("t"),
            columns,
            upsert_key: upsert_key.iter().map(|k| (*k).to_owned()).collect(),
            key_collations_deterministic: true,
            ingested_at: ingested_at.map(|column| (column.to_owned(), Type::TIMESTAMP)),
            lineage: Vec::new(),
        }
    }

    #[test]
    fn identifiers_are_quoted_and_schemas_split() {
        assert_eq!(quote_identifier("orderId"), "\"orderId\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("s.t"), "\"s\".\"t\"");
    }

    #[test]
    fn columns_match_exactly_then_ignoring_case_when_unambiguous() {
        let catalog = vec![
            ("orderid".to_owned(), Type::TEXT),
            ("Name".to_owned(), Type::TEXT),
            ("name".to_owned(), Type::TEXT),
        ];
        assert_eq!(find_column(&catalog, "orderId").map(|c| c.0.as_str()), Some("orderid"));
        assert_eq!(find_column(&catalog, "name").map(|c| c.0.as_str()), Some("name"));
        assert!(find_column(&catalog, "NAME").is_none(), "two columns fold to NAME");
    }

    #[test]
    fn appends_keep_input_order_and_fill_the_load_time() {
        assert_eq!(
            plan(&[], Some("ingested_at")).move_statement("stage", false),
            "INSERT INTO \"t\" (\"id\", \"name\", \"n\", \"ingested_at\") SELECT \"id\", \"name\", \"n\", \
             $1::timestamptz FROM \"stage\""
        );
    }

    #[test]
    fn upserts_insert_the_last_row_per_key_after_deleting_the_keys_the_load_brings() {
        let plan = plan(&["id"], Some("ingested_at"));
        assert_eq!(
            plan.move_statement("stage", false),
            "INSERT INTO \"t\" (\"id\", \"name\", \"n\", \"ingested_at\") SELECT DISTINCT ON (\"id\") \"id\", \
             \"name\", \"n\", $1::timestamptz FROM \"stage\" ORDER BY \"id\", sluice_seq DESC"
        );
        let [lock, delete] = plan.replace_statements("stage").expect("keyed");
        assert_eq!(lock, "SELECT pg_advisory_xact_lock(hashtext('sluice_replace:\"t\"'))");
        assert_eq!(
            delete,
            "DELETE FROM \"t\" USING (SELECT DISTINCT \"id\" FROM \"stage\") AS loaded WHERE \"t\".\"id\" = loaded.\"id\""
        );
    }

    #[test]
    fn upserts_whose_keys_were_all_different_skip_the_sort() {
        let plan = plan(&["id"], Some("ingested_at"));
        assert_eq!(
            plan.move_statement("stage", true),
            "INSERT INTO \"t\" (\"id\", \"name\", \"n\", \"ingested_at\") SELECT \"id\", \"name\", \"n\", \
             $1::timestamptz FROM \"stage\""
        );
        assert!(plan.replace_statements("stage").is_some(), "the table's earlier rows are still replaced");
    }

    #[test]
    fn only_keys_whose_bytes_compare_as_values_are_told_apart_by_bytes() {
        assert_eq!(plan(&[], None).byte_comparable_key(), None);
        assert_eq!(plan(&["n", "id"], None).byte_comparable_key(), Some(vec![2, 0]));
        let mut float_key = plan(&["n"], None);
        float_key.columns[2].kind = CellKind::Float8;
        assert_eq!(float_key.byte_comparable_key(), None, "-0.0 and 0.0 are one key in other bytes");
        let mut json_key = plan(&["id"], None);
        json_key.columns[0].kind = CellKind::Json;
        assert_eq!(json_key.byte_comparable_key(), None);
        let mut case_blind = plan(&["id"], None);
        case_blind.key_collations_deterministic = false;
        assert_eq!(case_blind.byte_comparable_key(), None, "'A' and 'a' can be one key");
    }

    #[test]
    fn appends_replace_nothing() {
        assert!(plan(&[], Some("ingested_at")).replace_statements("stage").is_none());
    }

    #[test]
    fn a_key_of_several_columns_matches_on_all_of_them() {
        let [_, delete] = plan(&["id", "name"], None).replace_statements("s").expect("keyed");
        assert!(
            delete.ends_with("WHERE \"t\".\"id\" = loaded.\"id\" AND \"t\".\"name\" = loaded.\"name\""),
            "{delete}"
        );
    }

    #[test]
    fn lineage_columns_follow_the_fields_in_every_statement_and_row() {
        let mut plan = plan(&[], Some("ingested_at"));
        plan.lineage = vec![
            LineageColumn {
                lineage: Lineage::PluginVersion,
                column: "plugin_version".into(),
                ty: Type::VARCHAR,
            },
            LineageColumn { lineage: Lineage::JobId, column: "job_id".into(), ty: Type::TEXT },
        ];
        assert_eq!(
            plan.table_copy_statement().as_deref(),
            Some(
                "COPY \"t\" (\"id\", \"name\", \"n\", \"plugin_version\", \"job_id\", \"ingested_at\") FROM STDIN (FORMAT binary)"
            )
        );
        assert_eq!(
            plan.direct_copy_types(),
            [Type::TEXT, Type::TEXT, Type::TEXT, Type::VARCHAR, Type::TEXT, Type::TIMESTAMP]
        );
        assert_eq!(plan.copy_types().len(), 6, "sequence, three fields, two lineage columns");
        let cells: Vec<Cell> =
            plan.lineage_cells(RowOrigin { plugin_version: "p@1.0.0", job_id: "j1" }).collect();
        assert_eq!(cells, [Cell::Text("p@1.0.0".into()), Cell::Text("j1".into())]);
    }

    #[test]
    fn only_rows_with_a_timestamp_load_time_are_copied_straight_into_the_table() {
        assert_eq!(
            plan(&[], Some("ingested_at")).table_copy_statement().as_deref(),
            Some("COPY \"t\" (\"id\", \"name\", \"n\", \"ingested_at\") FROM STDIN (FORMAT binary)")
        );
        assert_eq!(plan(&[], Some("ingested_at")).direct_copy_types().last(), Some(&Type::TIMESTAMP));
        assert_eq!(
            plan(&[], None).table_copy_statement().as_deref(),
            Some("COPY \"t\" (\"id\", \"name\", \"n\") FROM STDIN (FORMAT binary)")
        );
        assert_eq!(
            plan(&["id"], Some("ingested_at")).table_copy_statement(),
            plan(&[], Some("ingested_at")).table_copy_statement(),
            "an upsert copies the same columns, when it may"
        );
        let mut dated = plan(&[], Some("ingested_at"));
        dated.ingested_at = Some(("ingested_at".into(), Type::DATE));
        assert_eq!(dated.table_copy_statement(), None);
    }

    #[test]
    fn staging_copies_the_column_types_and_adds_the_sequence() {
        let plan = plan(&[], None);
        assert_eq!(
            plan.create_staging_statement("s1"),
            "CREATE UNLOGGED TABLE \"s1\" AS SELECT 0::bigint AS sluice_seq, \"id\", \"name\", \"n\" FROM \"t\" WITH NO DATA"
        );
        assert_eq!(
            plan.copy_statement("s1"),
            "COPY \"s1\" (sluice_seq, \"id\", \"name\", \"n\") FROM STDIN (FORMAT binary)"
        );
        assert_eq!(plan.copy_types(), [Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT]);
    }
}
