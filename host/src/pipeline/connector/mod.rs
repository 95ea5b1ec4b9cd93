//! The Kafka connector: a consumer group member that runs a pipeline's plugin chain over
//! batches and writes the results to its sinks, committing offsets only after they are stored.
//!
//! Records of each Kafka partition are gathered in a *window* from the last committed offset
//! on. A window closes when the first of its sinks would rotate (rows, bytes or age, see
//! [`window`]); closing it writes, in this order: a marker naming the window's last offset,
//! every sink's window (objects named after the window's first offset, or records produced and
//! acknowledged), the dead letters, then the offset commit, and finally removes the marker.
//! After a crash anywhere in that sequence the next owner of the partition starts again at the
//! committed offset, finds the marker and closes the window at the same last offset: a file
//! sink rewrites exactly the same objects, so a replay never duplicates rows and never leaves a
//! stale object beside a new one; a topic sink produces the window's records again (at least
//! once). The connector names no sink kind: it writes through [`crate::sink::windowed`].
//!
//! The parts: this module is the member loop (read a batch, run the chain on a task while the
//! previous batch is written, close full and expired windows); [`window`] holds when a window
//! closes, [`marker`] what a marker records and where, [`retry`] how an object is stored
//! through an outage. Routing rows and failures back to their records is shared with `sluice
//! sweep` ([`crate::pipeline::routing`]), as are the sinks ([`crate::pipeline::outputs`]).

mod marker;
mod window;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{HostConfig, Pipeline};
use crate::kafka::{ConsumeError, GroupConsumer, SourceRecord, TopicPartition};
use crate::object_store::ObjectStores;
use crate::object_store::StoreError;
use crate::object_store::retry::put_with_retry;
use crate::pipeline::chain::{Chain, ChainFailure, ChainOutput};
use crate::pipeline::outputs::{Outputs, OutputsError};
use crate::pipeline::routing::{push_rows, record_in, refused_by_sink, route};
use crate::pipeline::shadow_samples::DeadLetterSamples;
use crate::plugin::{PluginError, PluginRegistry, SampleSink};
use crate::sink::dead_letter::{DeadLetter, KafkaOrigin, Origin, RawBytes, dead_letter_key, encode_lines};
use crate::sink::windowed::{SinkError, WindowName};
use crate::telemetry;
use marker::Marker;
use window::{Window, WindowLimits};

/// Why a connector cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("pipeline `{pipeline}`: {problem}")]
    Setup { pipeline: String, problem: String },
    #[error("pipeline `{0}`: a plugin task stopped unexpectedly")]
    TaskLost(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outputs(#[from] OutputsError),
    #[error("stopped before the window of {topic}/{partition} at offset {first_offset} was stored")]
    Interrupted { topic: String, partition: i32, first_offset: i64 },
}

/// Partitions of a topic the connector creates because it did not exist yet: enough for a few
/// hosts to share the work.
const DEFAULT_PARTITIONS: i32 = 4;

/// What the member loop asks of its membership in the consumer group: [`GroupConsumer`] in
/// production; the tests script one to check the order of stores and commits, rebalances and
/// replays without a broker.
pub trait MemberConsumer: Send + Sync {
    /// The group's id, for logs.
    fn group(&self) -> &str;

    /// Up to `max_records` records, waiting at most `max_wait`; empty when none arrived.
    fn next_batch(
        &self,
        max_records: usize,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Vec<SourceRecord>, ConsumeError>> + Send;

    /// Partitions taken away since the last call; their open windows are dropped.
    fn take_revoked(&self) -> Vec<TopicPartition>;

    /// The partitions this member owns now.
    fn assigned(&self) -> Vec<TopicPartition>;

    /// Commits, per partition, the offset of the next record to read.
    fn commit(
        &self,
        next_offsets: &[(TopicPartition, i64)],
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send;
}

impl MemberConsumer for GroupConsumer {
    fn group(&self) -> &str {
        GroupConsumer::group(self)
    }

    fn next_batch(
        &self,
        max_records: usize,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Vec<SourceRecord>, ConsumeError>> + Send {
        GroupConsumer::next_batch(self, max_records, max_wait)
    }

    fn take_revoked(&self) -> Vec<TopicPartition> {
        GroupConsumer::take_revoked(self)
    }

    fn assigned(&self) -> Vec<TopicPartition> {
        GroupConsumer::assigned(self)
    }

    fn commit(
        &self,
        next_offsets: &[(TopicPartition, i64)],
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send {
        GroupConsumer::commit(self, next_offsets)
    }
}

/// One pipeline's consumer group member.
pub struct Connector<C: MemberConsumer = GroupConsumer> {
    pipeline: String,
    consumer: C,
    chain: Chain,
    /// The pipeline's sinks, shared by this host's members of the group.
    outputs: Arc<Outputs>,
    limits: WindowLimits,
    batch_records: usize,
    batch_wait: Duration,
    windows: HashMap<TopicPartition, Window>,
    /// Per partition, the offset after the last window this member stored: a window opening
    /// there cannot have been attempted before, so it needs no marker lookup.
    stored_up_to: HashMap<TopicPartition, i64>,
}

/// The dead letter of `record` as `failure` refused it (the failed part of it, if it names one).
fn dead_letter(record: &SourceRecord, failure: &ChainFailure) -> DeadLetter {
    let origin = Origin::Kafka(KafkaOrigin {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
        key: record.key.as_deref().map(RawBytes::from_bytes),
        headers: record.headers.iter().map(|(k, v)| (k.clone(), RawBytes::from_bytes(v))).collect(),
    });
    DeadLetter::new(origin, &record.value, failure, None)
}

/// A batch whose plugin chain runs on a task of its own.
struct Transforming {
    batch: Vec<SourceRecord>,
    output: tokio::task::JoinHandle<ChainOutput>,
}

impl Transforming {
    fn start(chain: &Chain, batch: Vec<SourceRecord>) -> Self {
        let records = batch.iter().map(record_in).collect();
        // A canary serves by partition; see [`crate::plugin::canary::serves_partition`].
        let partitions: Vec<i32> = batch.iter().map(|record| record.partition).collect();
        let chain = chain.clone();
        let output = tokio::spawn(async move { chain.run_partitioned(records, Some(&partitions)).await });
        Transforming { batch, output }
    }
}

impl Connector<GroupConsumer> {
    /// Prepares the pipeline's sinks and topic once, then joins its consumer group with the
    /// source's `members` members, which share the sinks and each run their own plugins.
    ///
    /// # Errors
    /// [`ConnectorError`] when the pipeline is not Kafka-fed, a sink is not one a connector
    /// writes, a plugin is missing, or a consumer cannot be created.
    pub async fn group_members(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
        stores: &ObjectStores,
    ) -> Result<Vec<Self>, ConnectorError> {
        let source = consumer_settings(pipeline)?;
        GroupConsumer::ensure_topic(&host.kafka, source.topic, DEFAULT_PARTITIONS).await?;
        let consumers = (0..source.members)
            .map(|_| GroupConsumer::new(&host.kafka, source.group, source.topic))
            .collect::<Result<Vec<_>, _>>()?;
        Connector::members(pipeline, registry, host, stores, consumers).await
    }
}

/// The Kafka side of a connector pipeline's source.
fn consumer_settings(pipeline: &Pipeline) -> Result<crate::source::ConsumerSettings<'_>, ConnectorError> {
    pipeline.source.consumer().ok_or_else(|| ConnectorError::Setup {
        pipeline: pipeline.name.clone(),
        problem: format!("source `{}` is not read from Kafka", pipeline.source.kind()),
    })
}

impl<C: MemberConsumer> Connector<C> {
    /// One member per consumer in `consumers`, sharing the pipeline's sinks (built once), each
    /// with its own plugin chain.
    ///
    /// # Errors
    /// [`ConnectorError`] when the pipeline is not Kafka-fed, a sink is not one a connector
    /// writes, or a plugin is missing.
    pub async fn members(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
        stores: &ObjectStores,
        consumers: Vec<C>,
    ) -> Result<Vec<Self>, ConnectorError> {
        let source = consumer_settings(pipeline)?;
        let outputs = Arc::new(Outputs::build(pipeline, registry, stores, host).await?);
        let limits = WindowLimits::of(outputs.sinks.iter().map(|sink| sink.rotation()));
        let samples: Arc<dyn SampleSink> =
            Arc::new(DeadLetterSamples::new(outputs.dead_letters.clone(), &outputs.dead_letter_prefix));
        consumers
            .into_iter()
            .map(|consumer| {
                Ok(Connector {
                    pipeline: pipeline.name.clone(),
                    consumer,
                    chain: Chain::new(pipeline, registry, host)?.with_samples(samples.clone()),
                    outputs: outputs.clone(),
                    limits,
                    batch_records: source.batch_records.max(1),
                    batch_wait: Duration::from_millis(source.batch_max_ms),
                    windows: HashMap::new(),
                    stored_up_to: HashMap::new(),
                })
            })
            .collect()
    }

    /// Consumes until `shutdown` turns true, then stores every open window and returns.
    ///
    /// # Errors
    /// [`ConnectorError`] when a batch cannot be processed for a reason other than bad data
    /// (a bug or an unrecoverable client error).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), ConnectorError> {
        tracing::info!(pipeline = %self.pipeline, group = self.consumer.group(), "connector started");
        let mut transforming: Option<Transforming> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let batch = tokio::select! {
                batch = self.consumer.next_batch(self.batch_records, self.batch_wait) => batch,
                _ = shutdown.changed() => break,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(pipeline = %self.pipeline, "{error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let revoked = self.consumer.take_revoked();
            for partition in &revoked {
                // The next owner starts again from the committed offset.
                self.windows.remove(partition);
                self.stored_up_to.remove(partition);
            }
            // This batch's plugins run while the one before it is written; that one was read
            // before the revocations above, so its records of those partitions are skipped.
            let next = (!batch.is_empty()).then(|| Transforming::start(&self.chain, batch));
            if let Some(previous) = std::mem::replace(&mut transforming, next) {
                let output =
                    previous.output.await.map_err(|_| ConnectorError::TaskLost(self.pipeline.clone()))?;
                self.process(&previous.batch, output, &revoked, &shutdown).await?;
            }
            let expired: Vec<TopicPartition> = self
                .windows
                .iter()
                .filter(|(_, window)| window.is_expired(self.limits))
                .map(|(partition, _)| partition.clone())
                .collect();
            for partition in expired {
                self.close(&partition, &shutdown).await?;
            }
        }
        // A batch still in the plugins is in no window, so its offsets are not committed: the
        // next owner reads it again.
        if let Some(abandoned) = transforming {
            abandoned.output.abort();
        }
        let open: Vec<TopicPartition> = self.windows.keys().cloned().collect();
        for partition in open {
            // On shutdown a store failure is not retried for long: the replay rewrites it.
            if let Err(error) = self.close(&partition, &shutdown).await {
                tracing::warn!(pipeline = %self.pipeline, "{error}");
            }
        }
        tracing::info!(pipeline = %self.pipeline, "connector stopped");
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &[SourceRecord],
        output: ChainOutput,
        revoked: &[TopicPartition],
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ConnectorError> {
        let mut routed = route(output, batch.len(), &self.outputs.sources());
        let mut touched: HashSet<TopicPartition> = HashSet::new();
        // A batch read while a rebalance happened holds records of partitions that moved to
        // another member; that member starts again from the committed offset, so storing them
        // here too would write their rows twice (bench/faults.sh, fault `group`).
        let owned: HashSet<TopicPartition> = self.consumer.assigned().into_iter().collect();
        for (index, record) in batch.iter().enumerate() {
            let partition: TopicPartition = (record.topic.clone(), record.partition);
            if revoked.contains(&partition) || !owned.contains(&partition) {
                continue;
            }
            self.ensure_window(&partition, record.offset).await?;
            let Some(window) = self.windows.get_mut(&partition) else { continue };
            window.last_offset = record.offset;
            touched.insert(partition.clone());
            let source = std::mem::take(&mut routed[index]);
            if let Some(whole) = source.whole_failure() {
                window.dead_letters.push(dead_letter(record, &whole));
                window.dead_offsets.insert(record.offset);
            } else {
                for failure in &source.failures {
                    window.dead_letters.push(dead_letter(record, failure));
                }
                push_rows(&mut window.sinks, source.rows, record);
            }
            if window.is_full(self.limits) {
                self.encode(&partition, batch)?;
                touched.remove(&partition);
                self.close(&partition, shutdown).await?;
            }
        }
        for partition in touched {
            self.encode(&partition, batch)?;
        }
        Ok(())
    }

    /// Opens the partition's window at `offset` unless one is open; a window that starts where
    /// this member did not store the previous one may have been attempted before, so its
    /// marker is looked up. A record at or before the open window's last offset means the
    /// partition was rewound (revoked and assigned again): the window starts over there.
    async fn ensure_window(&mut self, partition: &TopicPartition, offset: i64) -> Result<(), ConnectorError> {
        if let Some(window) = self.windows.get(partition) {
            if offset > window.last_offset {
                return Ok(());
            }
            tracing::info!(pipeline = %self.pipeline, topic = %partition.0, partition = partition.1, offset, "partition rewound; the window starts over");
            self.windows.remove(partition);
        }
        let planned_end = if self.stored_up_to.get(partition) == Some(&offset) {
            None
        } else {
            self.marker(partition, offset).read().await?
        };
        if let Some(end) = planned_end {
            tracing::info!(pipeline = %self.pipeline, topic = %partition.0, partition = partition.1, first_offset = offset, last_offset = end, "replaying a window an earlier attempt did not commit");
        }
        self.windows.insert(partition.clone(), Window::open(offset, &self.outputs.sinks, planned_end));
        Ok(())
    }

    /// The marker of the window opening at `first_offset`, kept under the dead letters.
    fn marker(&self, partition: &TopicPartition, first_offset: i64) -> Marker {
        let outputs = &self.outputs;
        Marker::new(
            outputs.dead_letters.clone(),
            &outputs.dead_letter_prefix,
            &partition.0,
            partition.1,
            first_offset,
        )
    }

    /// Encodes the window's pending rows in every sink; rows a sink refuses make their whole
    /// source record a dead letter, and that record's rows leave every sink.
    fn encode(&mut self, partition: &TopicPartition, batch: &[SourceRecord]) -> Result<(), ConnectorError> {
        let Some(window) = self.windows.get_mut(partition) else { return Ok(()) };
        let mut refused: HashMap<i64, ChainFailure> = HashMap::new();
        for (sink, sink_window) in self.outputs.sinks.iter().zip(window.sinks.iter_mut()) {
            for row in sink_window.encode(&partition.0, partition.1)? {
                refused.entry(row.offset).or_insert_with(|| refused_by_sink(sink.from(), row));
            }
        }
        for (offset, failure) in refused {
            window.dead_offsets.insert(offset);
            window.dead_letters.retain(|letter| letter.kafka().is_none_or(|at| at.offset != offset));
            let Some(record) = batch.iter().find(|r| r.partition == partition.1 && r.offset == offset) else {
                continue;
            };
            window.dead_letters.push(dead_letter(record, &failure));
        }
        for sink_window in &mut window.sinks {
            sink_window.settle(&window.dead_offsets)?;
        }
        Ok(())
    }

    /// Stores the window and commits past it (see the module documentation for the order).
    async fn close(
        &mut self,
        partition: &TopicPartition,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ConnectorError> {
        let Some(window) = self.windows.remove(partition) else { return Ok(()) };
        let (topic, number) = (partition.0.as_ref(), partition.1);
        let interrupted = || ConnectorError::Interrupted {
            topic: topic.to_owned(),
            partition: number,
            first_offset: window.first_offset,
        };
        let marker = self.marker(partition, window.first_offset);
        if window.planned_end.is_none()
            && !put_with_retry(marker.store(), marker.key(), Marker::body(window.last_offset), shutdown).await
        {
            return Err(interrupted());
        }
        let duplicates: usize = window.sinks.iter().map(|sink| sink.duplicates()).sum();
        let name = WindowName { topic, partition: number, first_offset: window.first_offset, suffix: "" };
        let stored =
            futures::future::join_all(window.sinks.into_iter().map(|sink| sink.store(name, shutdown))).await;
        let (mut rows, mut objects, mut bytes) = (0, 0, 0);
        for stored in stored {
            match stored {
                Ok(stored) => {
                    rows += stored.rows;
                    objects += stored.objects;
                    bytes += stored.bytes;
                }
                Err(SinkError::Interrupted { .. }) => return Err(interrupted()),
                Err(error) => return Err(error.into()),
            }
        }
        if !window.dead_letters.is_empty() {
            let key = dead_letter_key(&self.outputs.dead_letter_prefix, topic, number, window.first_offset);
            if !put_with_retry(&self.outputs.dead_letters, &key, encode_lines(&window.dead_letters), shutdown)
                .await
            {
                return Err(interrupted());
            }
        }
        let pipeline = self.pipeline.clone();
        metrics::counter!(telemetry::OBJECTS_WRITTEN, "pipeline" => pipeline.clone())
            .increment(objects as u64);
        metrics::counter!(telemetry::OBJECT_BYTES_WRITTEN, "pipeline" => pipeline.clone())
            .increment(bytes as u64);
        metrics::counter!(telemetry::TABLE_ROWS, "pipeline" => pipeline.clone()).increment(rows as u64);
        metrics::counter!(telemetry::DEAD_LETTERS, "pipeline" => pipeline)
            .increment(window.dead_letters.len() as u64);
        let next = window.last_offset + 1;
        if let Err(error) = self.consumer.commit(&[(partition.clone(), next)]).await {
            // The objects are stored; a replay from the older offset rewrites the same ones.
            tracing::warn!(pipeline = %self.pipeline, topic, partition = number, "{error}");
        }
        self.stored_up_to.insert(partition.clone(), next);
        if let Err(error) = marker.store().delete(marker.key()).await {
            tracing::warn!(pipeline = %self.pipeline, "cannot remove the window marker: {error}");
        }
        tracing::info!(
            pipeline = %self.pipeline,
            topic,
            partition = number,
            first_offset = window.first_offset,
            last_offset = window.last_offset,
            rows,
            objects,
            dead_letters = window.dead_letters.len(),
            duplicates,
            "window stored"
        );
        Ok(())
    }
}
