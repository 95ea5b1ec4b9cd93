//! Fuzzing a plugin's `transform` natively: batches made from its `samples/`, and the contract
//! every batch result keeps.
//!
//! A plugin runs on input nobody checked before it (webhook bodies, lines of uploaded files),
//! so `transform` must give rows or failures for any bytes and never trap. The batches here
//! mix arbitrary bytes, the plugin's own sample records as they are, broken byte-wise, with one
//! JSON node replaced or removed, and JSON values keyed by the plugin's field names.

use std::fmt;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use sluice_plugin_sdk::render::check_batch;
use sluice_plugin_sdk::{BatchResult, OutputInfo, RecordIn};

use crate::json::{json_value, with_node_replaced};
use crate::{Bytes, corrupted, json_ish_bytes};

/// The record values of a plugin's sample batch: the non-empty lines of `input.jsonl` in
/// `samples_dir` (see `sluice_plugin_sdk::samples`).
fn sample_values(samples_dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let text = std::fs::read(samples_dir.join("input.jsonl"))?;
    Ok(text.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()).map(<[u8]>::to_vec).collect())
}

/// One record value: arbitrary bytes, a sample as it is, a sample broken byte-wise or with one
/// JSON node replaced or removed, or a JSON value keyed by `keys`.
///
/// # Panics
/// When `samples` is empty.
fn record_value(samples: Vec<Vec<u8>>, keys: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    let sample = select(samples);
    prop_oneof![
        json_ish_bytes(96).prop_map(|bytes| bytes.0),
        sample.clone(),
        sample.clone().prop_flat_map(corrupted).prop_map(|(bytes, _)| bytes.0),
        sample.prop_flat_map(move |sample| match serde_json::from_slice::<Value>(&sample) {
            Ok(value) =>
                with_node_replaced(value, keys).prop_map(|value| value.to_string().into_bytes()).boxed(),
            Err(_) => Just(sample).boxed(),
        }),
        json_value(keys).prop_map(|value| value.to_string().into_bytes()),
    ]
    .boxed()
}

/// A batch of records as a plugin receives it.
#[derive(Clone)]
pub struct Batch(pub Vec<RecordIn>);

impl fmt::Debug for Batch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records =
            self.0.iter().map(|record| (record.key.clone().map(Bytes), Bytes(record.value.clone())));
        formatter.debug_list().entries(records).finish()
    }
}

/// Batches of up to eight records, some with a key, made from the plugin's sample batch in
/// `samples_dir` and its field names `keys`: each value is arbitrary bytes, a sample as it is, a
/// sample broken byte-wise or with one JSON node replaced or removed, or a JSON value.
///
/// # Panics
/// When `samples_dir/input.jsonl` cannot be read or holds no record.
pub fn sample_batches(
    samples_dir: impl AsRef<Path>,
    keys: &'static [&'static str],
) -> impl Strategy<Value = Batch> {
    let samples_dir = samples_dir.as_ref();
    let samples = sample_values(samples_dir)
        .unwrap_or_else(|error| panic!("{}/input.jsonl: {error}", samples_dir.display()));
    assert!(!samples.is_empty(), "{}/input.jsonl holds no record", samples_dir.display());
    let key = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8));
    let record = (key, record_value(samples, keys)).prop_map(|(key, value)| RecordIn {
        key,
        value,
        headers: Vec::new(),
    });
    proptest::collection::vec(record, 0..8).prop_map(Batch)
}

/// What one input record of a batch gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputAccount {
    /// Rows made from it, on any output.
    pub rows: usize,
    /// Failures of the whole record.
    pub whole_failures: usize,
    /// Failures of a part of it.
    pub part_failures: usize,
}

/// Checks the contract every plugin of this workspace keeps, and returns what each input gave.
///
/// Every batch of rows is of a declared output in `outputs`, one batch per output, and well
/// formed for that output's columns (`sluice_plugin_sdk::render::check_batch`); every row and
/// failure names an input of the batch, each output's rows follow the batch's order, and a
/// record that fails whole fails once and alone: no rows and no part failures beside it, so its
/// dead letter, re-run, gives each row exactly once.
///
/// # Errors
/// The first broken rule, as a test failure.
pub fn check_contract(
    batch: &[RecordIn],
    outputs: &[OutputInfo],
    result: &BatchResult,
) -> Result<Vec<InputAccount>, TestCaseError> {
    let mut accounts = vec![InputAccount::default(); batch.len()];
    for (position, rows) in result.outputs.iter().enumerate() {
        let info = outputs.iter().find(|info| info.name == rows.output);
        prop_assert!(info.is_some(), "rows for output `{}`, which is not declared", rows.output);
        prop_assert!(
            result.outputs[..position].iter().all(|earlier| earlier.output != rows.output),
            "two batches for output `{}`",
            rows.output
        );
        if let Some(info) = info
            && let Err(problem) = check_batch(info, rows)
        {
            return Err(TestCaseError::fail(format!("output `{}`: {problem}", rows.output)));
        }
        let mut previous_input = 0;
        for &input in &rows.inputs {
            let index = usize::try_from(input).unwrap_or(usize::MAX);
            prop_assert!(index < batch.len(), "row for input {} of a batch of {}", input, batch.len());
            prop_assert!(input >= previous_input, "row for input {input} after input {previous_input}");
            previous_input = input;
            accounts[index].rows += 1;
        }
    }
    for failure in &result.failures {
        let index = usize::try_from(failure.index).unwrap_or(usize::MAX);
        prop_assert!(index < batch.len(), "failure of input {} of a batch of {}", failure.index, batch.len());
        match failure.part {
            None => accounts[index].whole_failures += 1,
            Some(_) => accounts[index].part_failures += 1,
        }
    }
    for (index, account) in accounts.iter().enumerate() {
        if account.whole_failures > 0 {
            prop_assert_eq!(
                *account,
                InputAccount { rows: 0, whole_failures: 1, part_failures: 0 },
                "input {} failed whole, so it must fail once and give nothing else",
                index
            );
        }
    }
    Ok(accounts)
}
