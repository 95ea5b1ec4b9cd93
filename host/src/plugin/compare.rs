//! What two versions of a plugin did with the same records, compared row by row: the one
//! comparison behind `sluice plugin diff` (offline, on sample records) and shadowing (on the
//! live batches of a running host), so both count a difference alike.
//!
//! Rows are compared per input record and output, position by position: equal, changed (both
//! versions made a row there, different), only in old, only in new. Failures are compared per
//! input record: appeared, disappeared, changed reason.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{BatchResult, RecordIn};

/// What one version did with each input record: its rows per output, and why it failed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// (output, input record) → rows, in the order the plugin made them.
    pub rows: BTreeMap<(String, u64), Vec<Value>>,
    /// input record → `field: reason` of each failure.
    pub failures: BTreeMap<u64, Vec<String>>,
}

impl Outcome {
    /// Adds the answer to a batch whose first record is record `first` of the whole input.
    pub fn add_result(&mut self, first: u64, result: &BatchResult) {
        for rows in &result.outputs {
            let name = &rows.schema().name;
            for row in 0..rows.len() {
                let input = first + u64::from(rows.input(row).unwrap_or_default());
                let json = rows.json(row);
                // Rows are written as JSON by the host itself; text stands in if one is not.
                let value = serde_json::from_slice(&json)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&json).into_owned()));
                self.rows.entry((name.clone(), input)).or_default().push(value);
            }
        }
        for failure in &result.failures {
            self.failures.entry(first + u64::from(failure.index)).or_default().push(failure.describe());
        }
    }

    /// Fails each of the `len` records from `first` with `reason`: a batch whose call failed.
    pub fn fail_batch(&mut self, first: u64, len: usize, reason: &str) {
        for index in first..first + len as u64 {
            self.failures.entry(index).or_default().push(reason.to_owned());
        }
    }

    /// The outcome of one batch's answer.
    pub fn of_result(result: &BatchResult) -> Self {
        let mut outcome = Outcome::default();
        outcome.add_result(0, result);
        outcome
    }
}

/// Counts of one output's rows.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RowCounts {
    pub equal: usize,
    pub changed: usize,
    pub only_in_old: usize,
    pub only_in_new: usize,
}

impl RowCounts {
    pub fn add(&mut self, other: &RowCounts) {
        self.equal += other.equal;
        self.changed += other.changed;
        self.only_in_old += other.only_in_old;
        self.only_in_new += other.only_in_new;
    }
}

/// Counts of failures.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub unchanged: usize,
    pub appeared: usize,
    pub disappeared: usize,
    pub changed_reason: usize,
}

/// One difference, with the record it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub record: u64,
    /// The output for a row, absent for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub what: &'static str,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// The record's value as text (lossy for bytes that are not UTF-8).
    pub input: String,
}

/// The whole comparison.
#[derive(Debug, Default, Serialize)]
pub struct Comparison {
    pub records: usize,
    pub outputs: BTreeMap<String, RowCounts>,
    pub failures: FailureCounts,
    /// All differences, in record order.
    pub differences: Vec<Difference>,
}

impl Comparison {
    pub fn differs(&self) -> bool {
        !self.differences.is_empty()
    }

    /// The row counts of every output together.
    pub fn row_totals(&self) -> RowCounts {
        let mut totals = RowCounts::default();
        for counts in self.outputs.values() {
            totals.add(counts);
        }
        totals
    }
}

/// Compares what the two versions did with `records`.
pub fn compare(old: &Outcome, new: &Outcome, records: &[RecordIn]) -> Comparison {
    let input = |record: u64| {
        records
            .get(usize::try_from(record).unwrap_or(usize::MAX))
            .map_or_else(String::new, |r| String::from_utf8_lossy(&r.value).into_owned())
    };
    let mut comparison = Comparison { records: records.len(), ..Comparison::default() };
    let keys: BTreeSet<&(String, u64)> = old.rows.keys().chain(new.rows.keys()).collect();
    let none = Vec::new();
    for key in keys {
        let (output, record) = key;
        let counts = comparison.outputs.entry(output.clone()).or_default();
        let (old_rows, new_rows) = (old.rows.get(key).unwrap_or(&none), new.rows.get(key).unwrap_or(&none));
        for position in 0..old_rows.len().max(new_rows.len()) {
            let (before, after) = (old_rows.get(position), new_rows.get(position));
            let what = match (before, after) {
                (Some(a), Some(b)) if a == b => {
                    counts.equal += 1;
                    continue;
                }
                (Some(_), Some(_)) => {
                    counts.changed += 1;
                    "row changed"
                }
                (Some(_), None) => {
                    counts.only_in_old += 1;
                    "row only in old"
                }
                (None, _) => {
                    counts.only_in_new += 1;
                    "row only in new"
                }
            };
            comparison.differences.push(Difference {
                record: *record,
                output: Some(output.clone()),
                what,
                old: before.cloned(),
                new: after.cloned(),
                input: input(*record),
            });
        }
    }
    let records_failed: BTreeSet<u64> = old.failures.keys().chain(new.failures.keys()).copied().collect();
    for record in records_failed {
        let (before, after) = (old.failures.get(&record), new.failures.get(&record));
        let what = match (before, after) {
            (Some(a), Some(b)) if a == b => {
                comparison.failures.unchanged += 1;
                continue;
            }
            (Some(_), Some(_)) => {
                comparison.failures.changed_reason += 1;
                "failure changed reason"
            }
            (Some(_), None) => {
                comparison.failures.disappeared += 1;
                "failure disappeared"
            }
            (None, _) => {
                comparison.failures.appeared += 1;
                "failure appeared"
            }
        };
        let text = |reasons: Option<&Vec<String>>| reasons.map(|reasons| Value::from(reasons.join("; ")));
        comparison.differences.push(Difference {
            record,
            output: None,
            what,
            old: text(before),
            new: text(after),
            input: input(record),
        });
    }
    comparison.differences.sort_by_key(|difference| difference.record);
    comparison
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(value: &str) -> RecordIn {
        RecordIn { key: None, value: value.as_bytes().to_vec(), headers: Vec::new() }
    }

    fn outcome(rows: &[(&str, u64, Value)], failures: &[(u64, &str)]) -> Outcome {
        let mut outcome = Outcome::default();
        for (output, input, row) in rows {
            outcome.rows.entry(((*output).to_owned(), *input)).or_default().push(row.clone());
        }
        for (input, reason) in failures {
            outcome.failures.entry(*input).or_default().push((*reason).to_owned());
        }
        outcome
    }

    #[test]
    fn rows_and_failures_are_compared_per_record_and_counted() {
        let records: Vec<RecordIn> = ["r0", "r1", "r2", "r3", "r4"].map(record).into();
        let old = outcome(
            &[("users", 0, json!({"id": 1})), ("users", 1, json!({"id": 2})), ("users", 1, json!({"id": 3}))],
            &[(2, "bad"), (3, "worse")],
        );
        let new = outcome(
            &[("users", 0, json!({"id": 1})), ("users", 1, json!({"id": 9})), ("users", 2, json!({"id": 4}))],
            &[(3, "other reason"), (4, "new failure")],
        );
        let comparison = compare(&old, &new, &records);
        assert_eq!(
            comparison.outputs["users"],
            RowCounts { equal: 1, changed: 1, only_in_old: 1, only_in_new: 1 }
        );
        assert_eq!(
            comparison.failures,
            FailureCounts { unchanged: 0, appeared: 1, disappeared: 1, changed_reason: 1 }
        );
        let listed: Vec<(u64, &str)> =
            comparison.differences.iter().map(|difference| (difference.record, difference.what)).collect();
        assert_eq!(
            listed,
            [
                (1, "row changed"),
                (1, "row only in old"),
                (2, "row only in new"),
                (2, "failure disappeared"),
                (3, "failure changed reason"),
                (4, "failure appeared"),
            ]
        );
        assert_eq!(comparison.differences[0].input, "r1", "each difference carries its record");
        assert!(comparison.differs());
        assert_eq!(
            comparison.row_totals(),
            RowCounts { equal: 1, changed: 1, only_in_old: 1, only_in_new: 1 }
        );
    }

    #[test]
    fn the_same_results_are_no_difference() {
        let records: Vec<RecordIn> = ["a", "b"].map(record).into();
        let same = || outcome(&[("users", 0, json!({"id": 1}))], &[(1, "bad")]);
        let comparison = compare(&same(), &same(), &records);
        assert!(!comparison.differs());
        assert_eq!(comparison.failures.unchanged, 1);
        assert_eq!(comparison.outputs["users"].equal, 1);
    }

    #[test]
    fn a_failed_batch_fails_each_of_its_records() {
        let mut outcome = Outcome::default();
        outcome.fail_batch(3, 2, "trap");
        assert_eq!(outcome.failures.keys().copied().collect::<Vec<_>>(), [3, 4]);
    }
}
