//! Sorting what the plugin chain made of a batch back to the source records it came from: each
//! record's failures, and its rows for each sink. The connector and `sluice sweep` route alike,
//! so a dead letter swept into a sink lands where it would have in the first place.

use crate::kafka::SourceRecord;
use crate::pipeline::chain::{ChainFailure, ChainOutput, OutputRecord};
use crate::plugin::{Header, RecordIn};
use crate::sink::windowed::{RejectedRow, SinkWindow};

/// A Kafka record as a plugin's input.
pub fn record_in(record: &SourceRecord) -> RecordIn {
    RecordIn {
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record
            .headers
            .iter()
            .map(|(key, value)| Header { key: key.clone(), value: value.clone() })
            .collect(),
    }
}

/// What the chain made of one source record.
#[derive(Debug, Default)]
pub struct Routed {
    pub failures: Vec<ChainFailure>,
    /// Rows for each sink, in sink order.
    pub rows: Vec<Vec<OutputRecord>>,
}

impl Routed {
    /// The failure that makes the whole record a dead letter (every reason joined), if any
    /// failure is not about a part.
    pub fn whole_failure(&self) -> Option<ChainFailure> {
        let whole = self.failures.iter().find(|f| f.part.is_none())?;
        let mut failure = whole.clone();
        if self.failures.len() > 1 {
            failure.reason = self.failures.iter().map(|f| f.reason.as_str()).collect::<Vec<_>>().join("; ");
        }
        Some(failure)
    }
}

/// Sorts a batch's chain output by source record: its failures, and its rows per sink, where
/// `tables[i]` is the `<plugin>.<output>` sink `i` reads (a second sink of the same output
/// gets a copy). Rows and failures naming a source index past `sources` are dropped.
pub fn route(mut output: ChainOutput, sources: usize, tables: &[&str]) -> Vec<Routed> {
    let mut routed: Vec<Routed> = (0..sources)
        .map(|_| Routed { failures: Vec::new(), rows: tables.iter().map(|_| Vec::new()).collect() })
        .collect();
    for (table_index, from) in tables.iter().enumerate() {
        let emitted = match output.outputs.remove(*from) {
            Some(emitted) => emitted,
            None => match tables[..table_index].iter().position(|earlier| earlier == from) {
                Some(earlier) => routed.iter().flat_map(|r| r.rows[earlier].iter().cloned()).collect(),
                None => Vec::new(),
            },
        };
        for record in emitted {
            if let Some(source) = routed.get_mut(record.source_index) {
                source.rows[table_index].push(record);
            }
        }
    }
    for failure in output.failures {
        if let Some(source) = routed.get_mut(failure.source_index) {
            source.failures.push(failure);
        }
    }
    routed
}

/// Adds one source record's rows (per sink, in sink order) to the sinks' windows.
pub fn push_rows(windows: &mut [Box<dyn SinkWindow>], rows: Vec<Vec<OutputRecord>>, source: &SourceRecord) {
    for (window, rows) in windows.iter_mut().zip(rows) {
        for row in rows {
            window.push(row.row, source, row.plugin_version);
        }
    }
}

/// The failure of a source record whose row sink `from` refused: the whole record becomes a
/// dead letter, its step named `sink <from>`.
pub fn refused_by_sink(from: &str, row: RejectedRow) -> ChainFailure {
    ChainFailure {
        source_index: 0,
        step: format!("sink {from}"),
        reason: row.reason,
        field: None,
        trapped: false,
        plugin_version: row.plugin_version,
        part: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plugin::rows::{RowBatch, RowRef, Value};
    use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};

    fn version() -> Arc<str> {
        Arc::from("p@1")
    }

    fn row(source_index: usize, value: i64) -> OutputRecord {
        let column = ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: false };
        let schema = OutputSchema::new("rows".into(), vec![column]).expect("schema");
        let mut batch = RowBatch::empty(Arc::new(schema));
        batch.push_row(0, None, &[Value::Int64(value)]).expect("row");
        let row = RowRef::new(Arc::new(batch), 0).expect("row 0");
        OutputRecord { source_index, row, plugin_version: version() }
    }

    fn failure(source_index: usize, reason: &str, part: Option<&[u8]>) -> ChainFailure {
        ChainFailure {
            source_index,
            step: "normalize".into(),
            reason: reason.into(),
            field: None,
            trapped: false,
            plugin_version: version(),
            part: part.map(<[u8]>::to_vec),
        }
    }

    fn sources(routed: &[Routed], table: usize) -> Vec<Vec<usize>> {
        routed.iter().map(|r| r.rows[table].iter().map(|row| row.source_index).collect()).collect()
    }

    #[test]
    fn rows_go_to_their_source_record_and_table() {
        let mut output = ChainOutput::default();
        output.outputs.insert("p.events".into(), vec![row(0, 1), row(2, 2), row(2, 3)]);
        output.outputs.insert("p.logs".into(), vec![row(1, 4)]);
        let routed = route(output, 3, &["p.events", "p.logs"]);
        assert_eq!(sources(&routed, 0), [vec![0], vec![], vec![2, 2]]);
        assert_eq!(sources(&routed, 1), [vec![], vec![1], vec![]]);
    }

    #[test]
    fn a_second_table_of_the_same_output_gets_a_copy() {
        let mut output = ChainOutput::default();
        output.outputs.insert("p.events".into(), vec![row(0, 1), row(1, 2)]);
        let routed = route(output, 2, &["p.events", "p.other", "p.events"]);
        assert_eq!(sources(&routed, 0), [vec![0], vec![1]]);
        assert_eq!(sources(&routed, 1), [Vec::<usize>::new(), Vec::new()], "nothing was emitted to p.other");
        assert_eq!(sources(&routed, 2), sources(&routed, 0));
    }

    #[test]
    fn a_whole_failure_joins_every_reason_of_its_record() {
        let output = ChainOutput {
            failures: vec![failure(1, "email: missing", Some(b"[{}]")), failure(1, "not JSON", None)],
            ..ChainOutput::default()
        };
        let routed = route(output, 2, &["p.events"]);
        assert!(routed[0].whole_failure().is_none(), "record 0 did not fail");
        let whole = routed[1].whole_failure().expect("record 1 failed whole");
        assert_eq!(whole.reason, "email: missing; not JSON");
        assert!(whole.part.is_none());
    }

    #[test]
    fn a_failed_part_leaves_the_record_its_rows() {
        let mut output = ChainOutput::default();
        output.outputs.insert("p.events".into(), vec![row(0, 1)]);
        output.failures = vec![failure(0, "timestamp: not a number", Some(b"[{\"event\":\"open\"}]"))];
        let routed = route(output, 1, &["p.events"]);
        assert!(routed[0].whole_failure().is_none());
        assert_eq!(routed[0].failures.len(), 1);
        assert_eq!(sources(&routed, 0), [vec![0]]);
    }

    #[test]
    fn indexes_past_the_batch_are_dropped() {
        let mut output = ChainOutput::default();
        output.outputs.insert("p.events".into(), vec![row(5, 1)]);
        output.failures = vec![failure(7, "x", None)];
        let routed = route(output, 1, &["p.events"]);
        assert_eq!(sources(&routed, 0), [Vec::<usize>::new()]);
        assert!(routed[0].failures.is_empty());
    }

    #[test]
    fn a_table_refusal_fails_the_whole_record_at_the_sink() {
        let failure = refused_by_sink(
            "p.events",
            RejectedRow { offset: 9, reason: "timestamp: not whole ms".into(), plugin_version: version() },
        );
        assert_eq!(
            (failure.step.as_str(), failure.reason.as_str()),
            ("sink p.events", "timestamp: not whole ms")
        );
        assert!(failure.part.is_none() && !failure.trapped);
    }
}
