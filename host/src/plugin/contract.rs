//! The contract versions the host runs, and what a plugin's answers become on the host's side
//! whatever version produced them: [`PluginInfo`] with typed [`OutputSchema`]s, and
//! [`BatchResult`]s whose rows are [`RowBatch`]es.
//!
//! 0.3.0 answers are checked and moved over without copying their buffers; 0.2.0 answers are
//! read from JSON by [`super::json_rows`], the only place the host still parses plugin output.

use std::sync::Arc;

use super::bindings::{v0_2, v0_3};
use super::json_rows::push_json_row;
use super::rows::{ColumnData, ColumnValues, RowBatch, RowsContractError, Texts};
use super::schema::{ColumnSpec, ColumnType, OutputSchema, SchemaError};

/// A contract version this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContractVersion {
    /// Rows as JSON text, read by the host.
    V0_2,
    /// Typed rows in column batches.
    V0_3,
}

impl ContractVersion {
    /// Every version this host runs, newest first.
    pub const SUPPORTED: [ContractVersion; 2] = [ContractVersion::V0_3, ContractVersion::V0_2];

    /// The package version, as a component's export names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_2 => "0.2.0",
            ContractVersion::V0_3 => "0.3.0",
        }
    }

    /// The version a component's export names, if this host runs it.
    pub fn parse(version: &str) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|supported| supported.as_str() == version)
    }

    /// The supported versions, for messages: `0.3.0 or 0.2.0`.
    pub fn supported_list() -> String {
        Self::SUPPORTED.map(ContractVersion::as_str).join(" or ")
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Who a plugin is and what it emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The contract version the component was built for.
    pub contract: ContractVersion,
    pub outputs: Vec<Arc<OutputSchema>>,
}

impl PluginInfo {
    /// The declared output `name`.
    pub fn output(&self, name: &str) -> Option<&Arc<OutputSchema>> {
        self.outputs.iter().find(|output| output.name == name)
    }
}

/// Input record `index` (or a part of it) could not be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub index: u32,
    /// The field at fault, when the problem is one field.
    pub field: Option<String>,
    pub reason: String,
    /// The part of the input that failed, when only a part did (see the WIT).
    pub part: Option<Vec<u8>>,
}

impl Failure {
    /// The reason with its field in front (`to[2]: not an email address`), as people read it.
    pub fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("{field}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// What one batch produced: batches of rows (any number per output), and the inputs that failed.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    pub outputs: Vec<Arc<RowBatch>>,
    pub failures: Vec<Failure>,
}

impl BatchResult {
    /// How many rows there are, over every output.
    pub fn row_count(&self) -> usize {
        self.outputs.iter().map(|rows| rows.len()).sum()
    }

    /// Every row as its output's name and its JSON (see [`RowBatch::write_json`]), output by
    /// output, for tools and tests that show rows to people.
    pub fn rows_as_json(&self) -> Vec<(&str, Vec<u8>)> {
        self.outputs
            .iter()
            .flat_map(|rows| (0..rows.len()).map(move |row| (rows.schema().name.as_str(), rows.json(row))))
            .collect()
    }
}

/// Why an answer breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("output `{0}` is not declared")]
    UndeclaredOutput(String),
    #[error(transparent)]
    Rows(#[from] RowsContractError),
}

/// Reads a 0.3.0 `info()`.
///
/// # Errors
/// [`SchemaError`] with the output named when a declaration cannot be used.
pub fn info_from_v0_3(info: v0_3::PluginInfo) -> Result<PluginInfo, (String, SchemaError)> {
    let outputs = info
        .outputs
        .into_iter()
        .map(|output| {
            let columns = output
                .columns
                .into_iter()
                .map(|column| ColumnSpec {
                    name: column.name,
                    column_type: column_type(column.type_),
                    nullable: column.nullable,
                })
                .collect();
            OutputSchema::new(output.name.clone(), columns)
                .map(Arc::new)
                .map_err(|error| (output.name, error))
        })
        .collect::<Result<_, _>>()?;
    Ok(PluginInfo { name: info.name, version: info.version, contract: ContractVersion::V0_3, outputs })
}

/// Reads a 0.2.0 `info()`, whose schemas are JSON text.
///
/// # Errors
/// [`SchemaError`] with the output named when a schema cannot be read.
pub fn info_from_v0_2(info: v0_2::PluginInfo) -> Result<PluginInfo, (String, SchemaError)> {
    let outputs = info
        .outputs
        .into_iter()
        .map(|output| {
            OutputSchema::from_v0_2_json(output.name.clone(), &output.schema)
                .map(Arc::new)
                .map_err(|error| (output.name, error))
        })
        .collect::<Result<_, _>>()?;
    Ok(PluginInfo { name: info.name, version: info.version, contract: ContractVersion::V0_2, outputs })
}

fn column_type(wit: v0_3::ColumnType) -> ColumnType {
    match wit {
        v0_3::ColumnType::Text => ColumnType::Text,
        v0_3::ColumnType::Int32 => ColumnType::Int32,
        v0_3::ColumnType::Int64 => ColumnType::Int64,
        v0_3::ColumnType::Float64 => ColumnType::Float64,
        v0_3::ColumnType::Boolean => ColumnType::Boolean,
        v0_3::ColumnType::TimestampMs => ColumnType::TimestampMs,
        v0_3::ColumnType::TextList => ColumnType::TextList,
        v0_3::ColumnType::Json => ColumnType::Json,
    }
}

/// Moves a 0.3.0 answer over, checking every batch against its declaration. A null in a
/// column that is not nullable fails the row's input record, naming the column.
///
/// # Errors
/// [`AnswerError`] when a batch names an undeclared output or its columns break the contract
/// (wrong type, wrong length, bad offsets or UTF-8): a fault of the plugin, not of a record.
pub fn answer_from_v0_3(info: &PluginInfo, answer: v0_3::BatchResult) -> Result<BatchResult, AnswerError> {
    let mut result = BatchResult {
        outputs: Vec::with_capacity(answer.outputs.len()),
        failures: answer.failures.into_iter().map(failure_from_v0_3).collect(),
    };
    for batch in answer.outputs {
        let schema =
            info.output(&batch.output).ok_or_else(|| AnswerError::UndeclaredOutput(batch.output.clone()))?;
        let fail = |problem: String| RowsContractError { output: batch.output.clone(), problem };
        let keys = batch
            .keys
            .map(|keys| Texts::from_blobs(keys.bytes, keys.offsets))
            .transpose()
            .map_err(|problem| fail(format!("keys: {problem}")))?;
        let columns = batch
            .columns
            .into_iter()
            .zip(&schema.columns)
            .map(|(column, declared)| {
                let in_column = |problem: String| fail(format!("column `{}`: {problem}", declared.name));
                let values = column_values(column.values).map_err(in_column)?;
                ColumnData::new(values, &column.nulls).map_err(in_column)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = RowBatch::new(schema.clone(), batch.inputs, keys, columns)?;
        fail_required_nulls(&rows, &mut result.failures);
        if !rows.is_empty() {
            result.outputs.push(Arc::new(rows));
        }
    }
    Ok(result)
}

fn column_values(values: v0_3::ColumnValues) -> Result<ColumnValues, String> {
    let texts = |blobs: v0_3::Blobs| Texts::from_blobs(blobs.bytes, blobs.offsets);
    Ok(match values {
        v0_3::ColumnValues::Text(blobs) => ColumnValues::Text(texts(blobs)?),
        v0_3::ColumnValues::Json(blobs) => ColumnValues::Json(texts(blobs)?),
        v0_3::ColumnValues::Int32(values) => ColumnValues::Int32(values),
        v0_3::ColumnValues::Int64(values) => ColumnValues::Int64(values),
        v0_3::ColumnValues::Float64(values) => ColumnValues::Float64(values),
        v0_3::ColumnValues::Boolean(values) => ColumnValues::Boolean(values),
        v0_3::ColumnValues::TimestampMs(values) => ColumnValues::TimestampMs(values),
        v0_3::ColumnValues::TextList(lists) => ColumnValues::text_list(texts(lists.items)?, lists.offsets)?,
    })
}

fn failure_from_v0_3(failure: v0_3::Failure) -> Failure {
    Failure { index: failure.index, field: failure.field, reason: failure.reason, part: failure.part }
}

/// Reads a 0.2.0 answer's JSON rows into typed rows. A row that does not fit its schema fails
/// its input record, naming the field; the batch's other rows go on.
///
/// # Errors
/// [`AnswerError::UndeclaredOutput`] when a row names an output the plugin does not declare.
pub fn answer_from_v0_2(info: &PluginInfo, answer: v0_2::BatchResult) -> Result<BatchResult, AnswerError> {
    let mut failures: Vec<Failure> = answer.failures.into_iter().map(failure_from_v0_2).collect();
    let mut batches: Vec<RowBatch> = Vec::new();
    for record in answer.records {
        let position = match batches.iter().position(|batch| batch.schema().name == record.output) {
            Some(position) => position,
            None => {
                let schema = info
                    .output(&record.output)
                    .ok_or_else(|| AnswerError::UndeclaredOutput(record.output.clone()))?;
                batches.push(RowBatch::empty(schema.clone()));
                batches.len() - 1
            }
        };
        let batch = &mut batches[position];
        if let Err(fault) = push_json_row(batch, record.input, record.key.as_deref(), &record.value) {
            failures.push(Failure {
                index: record.input,
                field: fault.field,
                reason: format!("output `{}`: {}", record.output, fault.reason),
                part: None,
            });
        }
    }
    for batch in &batches {
        fail_required_nulls(batch, &mut failures);
    }
    let outputs = batches.into_iter().filter(|batch| !batch.is_empty()).map(Arc::new).collect();
    Ok(BatchResult { outputs, failures })
}

/// Fails the input record of every row that leaves a required column null, naming the column;
/// the chain then keeps none of that record's rows.
fn fail_required_nulls(rows: &RowBatch, failures: &mut Vec<Failure>) {
    for (row, column) in rows.required_nulls() {
        failures.push(Failure {
            index: rows.input(row).unwrap_or(u32::MAX),
            field: Some(column.to_owned()),
            reason: format!(
                "missing or null in output `{}`, whose column `{column}` is required",
                rows.schema().name
            ),
            part: None,
        });
    }
}

/// A 0.2.0 failure, whose reason named its field by a `field: ` prefix (a path without spaces).
fn failure_from_v0_2(failure: v0_2::Failure) -> Failure {
    let named = failure
        .reason
        .split_once(": ")
        .filter(|(field, _)| !field.is_empty() && !field.contains(' '))
        .map(|(field, reason)| (field.to_owned(), reason.to_owned()));
    let (field, reason) = match named {
        Some((field, reason)) => (Some(field), reason),
        None => (None, failure.reason),
    };
    Failure { index: failure.index, field, reason, part: failure.part }
}

/// The 0.2.0 form of an input record.
pub fn record_to_v0_2(record: &v0_3::RecordIn) -> v0_2::RecordIn {
    v0_2::RecordIn {
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record
            .headers
            .iter()
            .map(|header| v0_2::Header { key: header.key.clone(), value: header.value.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(contract: ContractVersion) -> PluginInfo {
        let columns = vec![
            ColumnSpec { name: "id".into(), column_type: ColumnType::Text, nullable: false },
            ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: true },
        ];
        PluginInfo {
            name: "p".into(),
            version: "1.0.0".into(),
            contract,
            outputs: vec![Arc::new(OutputSchema::new("rows".into(), columns).expect("schema"))],
        }
    }

    fn blobs(texts: &[&str]) -> v0_3::Blobs {
        let mut offsets = vec![0u32];
        let mut bytes = Vec::new();
        for text in texts {
            bytes.extend_from_slice(text.as_bytes());
            offsets.push(u32::try_from(bytes.len()).expect("small"));
        }
        v0_3::Blobs { bytes, offsets }
    }

    fn answer(ids: &[&str], nulls: Vec<u32>, numbers: v0_3::ColumnValues) -> v0_3::BatchResult {
        v0_3::BatchResult {
            outputs: vec![v0_3::OutputBatch {
                output: "rows".into(),
                inputs: (0..u32::try_from(ids.len()).expect("small")).collect(),
                keys: None,
                columns: vec![
                    v0_3::ColumnData { values: v0_3::ColumnValues::Text(blobs(ids)), nulls },
                    v0_3::ColumnData { values: numbers, nulls: vec![1] },
                ],
            }],
            failures: vec![v0_3::Failure {
                index: 0,
                field: Some("to[2]".into()),
                reason: "bad".into(),
                part: None,
            }],
        }
    }

    #[test]
    fn a_typed_answer_moves_over_and_required_nulls_fail_their_record() {
        let info = info(ContractVersion::V0_3);
        let result = answer_from_v0_3(
            &info,
            answer(&["a", "", "c"], vec![1], v0_3::ColumnValues::Int64(vec![1, 0, 3])),
        )
        .expect("answer");
        let rows = &result.outputs[0];
        assert_eq!(rows.len(), 3);
        assert_eq!(String::from_utf8(rows.json(2)).unwrap(), r#"{"id":"c","n":3}"#);
        let failures: Vec<(u32, Option<&str>)> =
            result.failures.iter().map(|f| (f.index, f.field.as_deref())).collect();
        assert_eq!(failures, [(0, Some("to[2]")), (1, Some("id"))]);
        assert_eq!(result.failures[0].describe(), "to[2]: bad");
    }

    #[test]
    fn a_column_of_the_wrong_type_or_an_undeclared_output_breaks_the_contract() {
        let info = info(ContractVersion::V0_3);
        let error = answer_from_v0_3(
            &info,
            answer(&["a", "b"], Vec::new(), v0_3::ColumnValues::Text(blobs(&["1", "2"]))),
        )
        .unwrap_err();
        assert!(error.to_string().contains("column `n` is declared int64 but holds text"), "{error}");
        let mut undeclared = answer(&["a"], Vec::new(), v0_3::ColumnValues::Int64(vec![1]));
        undeclared.outputs[0].output = "other".into();
        assert_eq!(
            answer_from_v0_3(&info, undeclared).unwrap_err(),
            AnswerError::UndeclaredOutput("other".into())
        );
        let bad_utf8 = v0_3::Blobs { bytes: vec![0xff], offsets: vec![0, 1] };
        let mut broken = answer(&["a"], Vec::new(), v0_3::ColumnValues::Int64(vec![1]));
        broken.outputs[0].columns[0].values = v0_3::ColumnValues::Text(bad_utf8);
        assert!(answer_from_v0_3(&info, broken).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn a_json_answer_is_read_into_typed_rows_and_a_wrong_type_fails_only_its_record() {
        let info = info(ContractVersion::V0_2);
        let record = |input: u32, value: &str| v0_2::RecordOut {
            output: "rows".into(),
            input,
            key: None,
            value: value.as_bytes().to_vec(),
        };
        let answer = v0_2::BatchResult {
            records: vec![
                record(0, r#"{"id":"a","n":1}"#),
                record(1, r#"{"id":"b","n":"two"}"#),
                record(2, r#"{"id":"c"}"#),
            ],
            failures: Vec::new(),
        };
        let result = answer_from_v0_2(&info, answer).expect("answer");
        assert_eq!(result.outputs[0].inputs(), [0, 2]);
        assert_eq!(result.failures.len(), 1);
        assert_eq!((result.failures[0].index, result.failures[0].field.as_deref()), (1, Some("n")));
        assert!(result.failures[0].reason.contains("\"two\""), "{}", result.failures[0].reason);
    }

    #[test]
    fn versions_parse_and_list() {
        assert_eq!(ContractVersion::parse("0.2.0"), Some(ContractVersion::V0_2));
        assert_eq!(ContractVersion::parse("0.1.0"), None);
        assert_eq!(ContractVersion::supported_list(), "0.3.0 or 0.2.0");
    }
}
