//! The `kafka` sink under a connector: a window's rows produced as its batches settle, stored
//! once every one is acknowledged.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::KafkaSinkSettings;
use crate::kafka::DurableProducer;
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
    producer: DurableProducer,
}

/// One row as a Kafka record.
struct Record {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl KafkaSink {
    pub fn new(from: &str, settings: &KafkaSinkSettings, producer: DurableProducer) -> Self {
        KafkaSink {
            from: from.to_owned(),
            rotation: settings.rotation(),
            target: Arc::new(Target { topic: settings.topic.clone(), producer }),
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
        Box::new(KafkaWindow {
            from: self.from.clone(),
            target: self.target.clone(),
            pending: Vec::new(),
            encoded: Vec::new(),
            sending: Vec::new(),
            rows: 0,
            bytes: 0,
        })
    }
}

/// One window of a [`KafkaSink`].
struct KafkaWindow {
    from: String,
    target: Arc<Target>,
    /// Rows pushed since the last batch was encoded.
    pending: Vec<(i64, RowRef)>,
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
        let sent = futures::future::join_all(
            records
                .iter()
                .map(|record| self.producer.send(&self.topic, record.key.as_deref(), &record.payload)),
        )
        .await;
        let failed: Vec<bool> = sent.iter().map(Result::is_err).collect();
        if let Some(Err(error)) = sent.into_iter().find(Result::is_err) {
            tracing::warn!(topic = %self.topic, "records not stored yet, retrying: {error}");
        }
        records.into_iter().zip(failed).filter(|(_, failed)| *failed).map(|(record, _)| record).collect()
    }
}

impl SinkWindow for KafkaWindow {
    fn push(&mut self, row: RowRef, offset: i64, _plugin_version: Arc<str>) -> bool {
        self.rows += 1;
        self.bytes += row.batch().bytes_per_row();
        self.pending.push((offset, row));
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
        }));
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
