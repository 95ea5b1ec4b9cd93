//! The `kafka` sink under a connector: a window's rows (or, with `value = "record"`, the
//! records they came from) produced as its batches settle, stored once every one is
//! acknowledged.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{KafkaSinkSettings, KafkaValue};
use crate::kafka::{DurableProducer, SourceRecord};
use crate::object_store::retry::retry_delay;
use crate::plugin::rows::RowRef;
use crate::sink::windowed::{
    RejectedRow, Rotation, SinkError, SinkWindow, StoredWindow, WindowName, WindowedSink,
};

/// A configured `kafka` sink.
pub struct KafkaSink {
    from: String,
    rotation: Rotation,
    target: Arc<Target>,
}

/// Where a sink's records go.
struct Target {
    topic: String,
    value: KafkaValue,
    producer: DurableProducer,
}

/// One row, or the record it came from, as a Kafka record.
struct Record {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl KafkaSink {
    pub fn new(from: &str, settings: &KafkaSinkSettings, producer: DurableProducer) -> Self {
        KafkaSink {
            from: from.to_owned(),
            rotation: settings.rotation(),
            target: Arc::new(Target { topic: settings.topic.clone(), value: settings.value, producer }),
        }
    }

    fn window(&self) -> KafkaWindow {
        KafkaWindow {
            from: self.from.clone(),
            target: self.target.clone(),
            pending: Vec::new(),
            passed: Vec::new(),
            encoded: Vec::new(),
            sending: Vec::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

impl WindowedSink for KafkaSink {
    fn from(&self) -> &str {
        &self.from
    }

    fn rotation(&self) -> Rotation {
        self.rotation
    }

    fn open(&self) -> Box<dyn SinkWindow> {
        Box::new(self.window())
    }
}

/// One window of a [`KafkaSink`].
struct KafkaWindow {
    from: String,
    target: Arc<Target>,
    /// Rows pushed since the last batch was encoded.
    pending: Vec<(i64, RowRef)>,
    /// With `value = "record"`: the records pushed since the last batch was encoded, once each.
    passed: Vec<Record>,
    /// The last batch's rows as records, until they settle.
    encoded: Vec<Record>,
    /// Settled batches being produced; each gives back the records the broker did not take.
    sending: Vec<JoinHandle<Vec<Record>>>,
    rows: usize,
    bytes: usize,
}

impl Target {
    /// Produces `records` at once; gives back those the broker did not acknowledge.
    async fn send(self: Arc<Self>, records: Vec<Record>) -> Vec<Record> {
        let sent = futures::future::join_all(records.iter().map(|record| {
            self.producer.send_with_headers(
                &self.topic,
                record.key.as_deref(),
                &record.payload,
                &record.headers,
            )
        }))
        .await;
        let failed: Vec<bool> = sent.iter().map(Result::is_err).collect();
        if let Some(Err(error)) = sent.into_iter().find(Result::is_err) {
            tracing::warn!(topic = %self.topic, "records not stored yet, retrying: {error}");
        }
        records.into_iter().zip(failed).filter(|(_, failed)| *failed).map(|(record, _)| record).collect()
    }
}

impl SinkWindow for KafkaWindow {
    fn push(&mut self, row: RowRef, source: &SourceRecord, _plugin_version: Arc<str>) -> bool {
        match self.target.value {
            KafkaValue::Row => {
                self.rows += 1;
                self.bytes += row.batch().bytes_per_row();
                self.pending.push((source.offset, row));
            }
            // A record's rows arrive one after another; it is passed on once.
            KafkaValue::Record if self.passed.last().is_some_and(|last| last.offset == source.offset) => {}
            KafkaValue::Record => {
                self.rows += 1;
                self.bytes += source.value.len();
                self.passed.push(Record {
                    offset: source.offset,
                    key: source.key.clone(),
                    payload: source.value.clone(),
                    headers: source.headers.clone(),
                });
            }
        }
        true
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn duplicates(&self) -> usize {
        0
    }

    fn encode(&mut self, _topic: &str, _partition: i32) -> Result<Vec<RejectedRow>, SinkError> {
        self.encoded.extend(self.pending.drain(..).map(|(offset, row)| Record {
            offset,
            key: row.key().map(<[u8]>::to_vec),
            payload: row.json(),
            headers: Vec::new(),
        }));
        self.encoded.append(&mut self.passed);
        Ok(Vec::new())
    }

    fn settle(&mut self, dead: &HashSet<i64>) -> Result<(), SinkError> {
        let before = self.encoded.len();
        let records: Vec<Record> =
            self.encoded.drain(..).filter(|record| !dead.contains(&record.offset)).collect();
        self.rows -= before - records.len();
        if !records.is_empty() {
            self.sending.push(tokio::spawn(self.target.clone().send(records)));
        }
        Ok(())
    }

    fn store<'a>(
        self: Box<Self>,
        _name: WindowName<'a>,
        shutdown: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<StoredWindow, SinkError>> {
        Box::pin(async move {
            let KafkaWindow { from, target, sending, rows, .. } = *self;
            let mut failed = Vec::new();
            for batch in sending {
                match batch.await {
                    Ok(records) => failed.extend(records),
                    Err(_) => {
                        return Err(SinkError::Write { from, problem: "a produce task stopped".into() });
                    }
                }
            }
            let mut attempt = 0;
            while !failed.is_empty() {
                if *shutdown.borrow() && attempt >= 2 {
                    return Err(SinkError::Interrupted { from });
                }
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
                failed = target.clone().send(failed).await;
            }
            Ok(StoredWindow { rows, objects: rows, bytes: 0 })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaConfig;
    use crate::plugin::rows::{RowBatch, Value};
    use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};

    fn sink(value: KafkaValue) -> KafkaSink {
        let settings = KafkaSinkSettings { topic: "out".into(), value, rotate_records: 10, rotate_ms: 1000 };
        // No broker listens there: what settles is never actually sent.
        let nowhere = KafkaConfig { brokers: "127.0.0.1:1".into(), ..KafkaConfig::default() };
        let producer = DurableProducer::new(&nowhere, std::time::Duration::from_secs(1))
            .expect("a producer is created without a broker");
        KafkaSink::new("p.rows", &settings, producer)
    }

    /// Rows keyed `k<n>` holding `n`.
    fn rows(values: &[i64]) -> Vec<RowRef> {
        let column = ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: false };
        let schema = OutputSchema::new("rows".into(), vec![column]).expect("schema");
        let mut batch = RowBatch::empty(Arc::new(schema));
        for (input, &value) in values.iter().enumerate() {
            let key = format!("k{value}");
            batch.push_row(input as u32, Some(key.as_bytes()), &[Value::Int64(value)]).expect("row");
        }
        let batch = Arc::new(batch);
        (0..values.len()).map(|row| RowRef::new(batch.clone(), row).expect("row")).collect()
    }

    fn source(offset: i64, value: &str) -> SourceRecord {
        SourceRecord {
            topic: Arc::from("in"),
            partition: 0,
            offset,
            key: Some(format!("in-{offset}").into_bytes()),
            value: value.as_bytes().to_vec(),
            headers: vec![("trace".into(), b"t1".to_vec())],
            timestamp_ms: None,
        }
    }

    /// Encodes what was pushed: (source offset, key, value, header count) per record.
    fn encoded(window: &mut KafkaWindow) -> Vec<(i64, Option<String>, String, usize)> {
        assert!(window.encode("in", 0).expect("encode").is_empty());
        window
            .encoded
            .iter()
            .map(|record| {
                (
                    record.offset,
                    record.key.as_ref().map(|key| String::from_utf8_lossy(key).into_owned()),
                    String::from_utf8_lossy(&record.payload).into_owned(),
                    record.headers.len(),
                )
            })
            .collect()
    }

    /// A window holding rows `k1` and `k2` of record 5 ("body five") and `k3` of record 6.
    fn three_rows_of_two_records(value: KafkaValue) -> KafkaWindow {
        let mut window = sink(value).window();
        let rows = rows(&[1, 2, 3]);
        let (first, second) = (source(5, "body five"), source(6, "body six"));
        let version: Arc<str> = Arc::from("p@1");
        window.push(rows[0].clone(), &first, version.clone());
        window.push(rows[1].clone(), &first, version.clone());
        window.push(rows[2].clone(), &second, version);
        window
    }

    #[tokio::test]
    async fn each_row_is_one_json_record_keyed_by_the_row_key() {
        let mut window = three_rows_of_two_records(KafkaValue::Row);
        assert_eq!(window.rows(), 3);
        assert_eq!(
            encoded(&mut window),
            [
                (5, Some("k1".into()), r#"{"n":1}"#.into(), 0),
                (5, Some("k2".into()), r#"{"n":2}"#.into(), 0),
                (6, Some("k3".into()), r#"{"n":3}"#.into(), 0),
            ]
        );
    }

    #[tokio::test]
    async fn with_value_record_each_record_with_rows_passes_once_as_it_came() {
        let mut window = three_rows_of_two_records(KafkaValue::Record);
        assert_eq!(window.rows(), 2, "one record each, however many rows it gave");
        assert_eq!(
            encoded(&mut window),
            [(5, Some("in-5".into()), "body five".into(), 1), (6, Some("in-6".into()), "body six".into(), 1)]
        );
    }

    #[tokio::test]
    async fn a_record_that_became_a_dead_letter_is_not_passed_on() {
        let sink = sink(KafkaValue::Record);
        let mut window = sink.window();
        let rows = rows(&[1, 2]);
        let version: Arc<str> = Arc::from("p@1");
        window.push(rows[0].clone(), &source(5, "five"), version.clone());
        window.push(rows[1].clone(), &source(6, "six"), version);
        assert_eq!(encoded(&mut window).len(), 2);
        window.settle(&HashSet::from([5])).expect("settle");
        assert_eq!(window.rows(), 1, "only the record that stayed alive is sent");
    }
}
