//! The Kafka connector: a consumer group member that runs a pipeline's plugin chain over
//! batches and writes the results as tables, committing offsets only after they are stored.
//!
//! Records of each Kafka partition are gathered in a *window* from the last committed offset
//! on. A window closes when its rows reach `rotate_records` or `rotate_bytes`, or it has been
//! open for `rotate_ms`; closing it writes, in this order: a marker naming the window's last
//! offset, the table objects (named after the window's first offset), the dead letters, then
//! the offset commit, and finally removes the marker. After a crash anywhere in that sequence
//! the next owner of the partition starts again at the committed offset, finds the marker and
//! closes the window at the same last offset: it rewrites exactly the same objects, so a replay
//! never duplicates rows and never leaves a stale object beside a new one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{HostConfig, Pipeline, SourceConfig};
use crate::kafka::{ConsumeError, GroupConsumer, SourceRecord, TopicPartition};
use crate::object_store::{ObjectStore, StoreError, join_key};
use crate::pipeline::chain::{Chain, ChainFailure, ChainOutput, OutputRecord};
use crate::pipeline::stores::{StoreResolver, StoreSetupError};
use crate::plugin::schema::OutputSchema;
use crate::plugin::{Header, PluginError, PluginRegistry, RecordIn};
use crate::sink::dead_letter::{DeadLetter, RawBytes, dead_letter_key, encode_lines, now_rfc3339};
use crate::sink::table::{TableError, TableSink, TableWindow};
use crate::telemetry;

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
    Table(#[from] TableError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Stores(#[from] StoreSetupError),
    #[error("stopped before the window of {topic}/{partition} at offset {first_offset} was stored")]
    Interrupted { topic: String, partition: i32, first_offset: i64 },
}

/// Partitions of a topic the connector creates because it did not exist yet: enough for a few
/// hosts to share the work.
const DEFAULT_PARTITIONS: i32 = 4;

/// When a window closes: whichever limit is reached first.
#[derive(Debug, Clone, Copy)]
struct WindowLimits {
    rows: usize,
    bytes: usize,
    age: Duration,
}

/// Where a window ended in an earlier attempt.
#[derive(Debug, Serialize, Deserialize)]
struct WindowMarker {
    last_offset: i64,
}

/// Records of one partition since the last commit.
struct Window {
    first_offset: i64,
    last_offset: i64,
    opened_at: Instant,
    /// The last offset an earlier attempt closed this window at; the window closes there again.
    planned_end: Option<i64>,
    tables: Vec<TableWindow>,
    dead_letters: Vec<DeadLetter>,
    /// Offsets that became dead letters whole, so their rows are left out of every table.
    dead_offsets: HashSet<i64>,
}

impl Window {
    fn rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows).sum()
    }

    fn bytes(&self) -> usize {
        self.tables.iter().map(|t| t.bytes).sum()
    }

    fn is_full(&self, limits: WindowLimits) -> bool {
        match self.planned_end {
            Some(end) => self.last_offset >= end,
            None => self.rows() >= limits.rows || self.bytes() >= limits.bytes,
        }
    }

    fn is_expired(&self, limits: WindowLimits) -> bool {
        self.planned_end.is_none() && self.opened_at.elapsed() >= limits.age
    }
}

/// The table sinks and dead-letter store of one pipeline.
pub(crate) struct Outputs {
    pub(crate) tables: Vec<TableSink>,
    pub(crate) dead_letters: ObjectStore,
    pub(crate) dead_letter_prefix: String,
    limits: WindowLimits,
}

/// One pipeline's consumer group member.
pub struct Connector {
    pipeline: String,
    consumer: GroupConsumer,
    chain: Chain,
    /// The pipeline's sinks, shared by this host's members of the group.
    outputs: Arc<Outputs>,
    batch_records: usize,
    batch_wait: Duration,
    windows: HashMap<TopicPartition, Window>,
    /// Per partition, the offset after the last window this member stored: a window opening
    /// there cannot have been attempted before, so it needs no marker lookup.
    stored_up_to: HashMap<TopicPartition, i64>,
}

/// What a connector reads: a pipeline's topic, group, batching and members per host.
pub struct KafkaSource<'a> {
    pub topic: &'a str,
    pub group: &'a str,
    pub batch_records: usize,
    pub batch_max_ms: u64,
    pub members: usize,
}

/// The Kafka side of a pipeline whose source is read from Kafka.
pub fn kafka_source(pipeline: &Pipeline) -> Option<KafkaSource<'_>> {
    match &pipeline.source {
        SourceConfig::Kafka { topic, group, batch_records, batch_max_ms, members }
        | SourceConfig::Webhook { topic, group, batch_records, batch_max_ms, members, .. } => {
            Some(KafkaSource {
                topic,
                group,
                batch_records: *batch_records,
                batch_max_ms: *batch_max_ms,
                members: *members,
            })
        }
        SourceConfig::Http { .. } | SourceConfig::S3Job { .. } => None,
    }
}

/// Builds the table sinks of `pipeline` (every sink must be a table) and its dead-letter store.
pub(crate) async fn build_outputs(
    pipeline: &Pipeline,
    registry: &PluginRegistry,
    stores: &StoreResolver,
) -> Result<Outputs, ConnectorError> {
    let setup = |problem: String| ConnectorError::Setup { pipeline: pipeline.name.clone(), problem };
    if pipeline.sinks.is_empty() {
        return Err(setup("a Kafka-fed pipeline needs at least one parquet-s3 or parquet-local sink".into()));
    }
    let Some(dead_letters) = &pipeline.dead_letters else {
        return Err(setup("a Kafka-fed pipeline needs [dead_letters], so failed records are kept".into()));
    };
    let mut tables = Vec::new();
    for sink in &pipeline.sinks {
        let Some(settings) = sink.kind.table() else {
            return Err(setup(format!(
                "sink `{}` is `{}`; a Kafka-fed pipeline writes parquet-s3 or parquet-local sinks",
                sink.from,
                sink.kind.name()
            )));
        };
        let schema = output_schema(registry, &sink.from).ok_or_else(|| {
            setup(format!("sink `{}` names an output no loaded plugin declares", sink.from))
        })?;
        let store = stores.store(&settings.location).await?;
        tables.push(TableSink::new(&sink.from, settings, store, schema)?);
    }
    let limits = WindowLimits {
        rows: tables.iter().map(|t| t.settings.rotate_records).min().unwrap_or(usize::MAX).max(1),
        bytes: tables.iter().map(|t| t.settings.rotate_bytes).min().unwrap_or(usize::MAX).max(1),
        age: Duration::from_millis(tables.iter().map(|t| t.settings.rotate_ms).min().unwrap_or(60_000)),
    };
    let location = dead_letters.location();
    Ok(Outputs {
        tables,
        dead_letters: stores.store(&location).await?,
        dead_letter_prefix: location.prefix().to_owned(),
        limits,
    })
}

/// The columns `<plugin>.<output>` declares, from the plugin loaded now.
pub fn output_schema(registry: &PluginRegistry, from: &str) -> Option<Arc<OutputSchema>> {
    let (plugin, output) = from.split_once('.')?;
    let handle = registry.get(plugin)?;
    let current = handle.current();
    current.info().output(output).cloned()
}

pub(crate) fn record_in(record: &SourceRecord) -> RecordIn {
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
pub(crate) struct Routed {
    pub(crate) failures: Vec<ChainFailure>,
    /// Rows for each table sink, in sink order.
    pub(crate) rows: Vec<Vec<OutputRecord>>,
}

impl Routed {
    /// The failure that makes the whole record a dead letter (every reason joined), if any
    /// failure is not about a part.
    pub(crate) fn whole_failure(&self) -> Option<ChainFailure> {
        let whole = self.failures.iter().find(|f| f.part.is_none())?;
        let mut failure = whole.clone();
        if self.failures.len() > 1 {
            failure.reason = self.failures.iter().map(|f| f.reason.as_str()).collect::<Vec<_>>().join("; ");
        }
        Some(failure)
    }
}

/// Sorts a batch's chain output by source record: its failures, and its rows per table (a
/// second table of the same output gets a copy).
pub(crate) fn route(mut output: ChainOutput, sources: usize, tables: &[TableSink]) -> Vec<Routed> {
    let mut routed: Vec<Routed> = (0..sources)
        .map(|_| Routed { failures: Vec::new(), rows: tables.iter().map(|_| Vec::new()).collect() })
        .collect();
    for (table_index, table) in tables.iter().enumerate() {
        let emitted = match output.outputs.remove(&table.from) {
            Some(emitted) => emitted,
            None => match tables[..table_index].iter().position(|earlier| earlier.from == table.from) {
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

/// Adds one source record's rows (per table, in sink order) to the tables' windows.
pub(crate) fn push_rows(
    tables: &[TableSink],
    windows: &mut [TableWindow],
    rows: Vec<Vec<OutputRecord>>,
    offset: i64,
) {
    for ((table, window), rows) in tables.iter().zip(windows.iter_mut()).zip(rows) {
        for row in rows {
            table.push(window, row.row, offset, row.plugin_version);
        }
    }
}

/// A dead letter for `record` (or the failed `part` of it).
fn dead_letter(record: &SourceRecord, part: Option<&[u8]>, failure: &ChainFailure) -> DeadLetter {
    DeadLetter {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
        key: record.key.as_deref().map(RawBytes::from_bytes),
        value: RawBytes::from_bytes(part.unwrap_or(&record.value)),
        headers: record.headers.iter().map(|(k, v)| (k.clone(), RawBytes::from_bytes(v))).collect(),
        part: part.is_some(),
        reason: failure.reason.clone(),
        step: failure.step.clone(),
        plugin_version: failure.plugin_version.to_string(),
        trapped: failure.trapped,
        failed_at: now_rfc3339(),
    }
}

/// How long to wait before retrying a failed store call: doubling from 500 ms, at most 30 s.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)).min(30_000))
}

/// A batch whose plugin chain runs on a task of its own.
struct Transforming {
    batch: Vec<SourceRecord>,
    output: tokio::task::JoinHandle<ChainOutput>,
}

impl Transforming {
    fn start(chain: &Chain, batch: Vec<SourceRecord>) -> Self {
        let records = batch.iter().map(record_in).collect();
        let chain = chain.clone();
        Transforming { batch, output: tokio::spawn(async move { chain.run(records).await }) }
    }
}

impl Connector {
    /// Prepares the pipeline's sinks and topic once, then joins its consumer group with the
    /// source's `members` members, which share the sinks and each run their own plugins.
    ///
    /// # Errors
    /// [`ConnectorError`] when the pipeline is not Kafka-fed, its sinks are not tables, a
    /// plugin is missing, or a consumer cannot be created.
    pub async fn group_members(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
        stores: &StoreResolver,
    ) -> Result<Vec<Self>, ConnectorError> {
        let Some(source) = kafka_source(pipeline) else {
            return Err(ConnectorError::Setup {
                pipeline: pipeline.name.clone(),
                problem: format!("source `{}` is not read from Kafka", pipeline.source.kind()),
            });
        };
        let outputs = Arc::new(build_outputs(pipeline, registry, stores).await?);
        GroupConsumer::ensure_topic(&host.kafka, source.topic, DEFAULT_PARTITIONS).await?;
        (0..source.members)
            .map(|_| {
                Ok(Connector {
                    pipeline: pipeline.name.clone(),
                    consumer: GroupConsumer::new(&host.kafka, source.group, source.topic)?,
                    chain: Chain::new(pipeline, registry, host)?,
                    outputs: outputs.clone(),
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
                .filter(|(_, window)| window.is_expired(self.outputs.limits))
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
        let mut routed = route(output, batch.len(), &self.outputs.tables);
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
                window.dead_letters.push(dead_letter(record, None, &whole));
                window.dead_offsets.insert(record.offset);
            } else {
                for failure in &source.failures {
                    window.dead_letters.push(dead_letter(record, failure.part.as_deref(), failure));
                }
                push_rows(&self.outputs.tables, &mut window.tables, source.rows, record.offset);
            }
            if window.is_full(self.outputs.limits) {
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
            match self.marker_key(partition, offset) {
                Some((store, key)) => read_marker(&store, &key).await?,
                None => None,
            }
        };
        if let Some(end) = planned_end {
            tracing::info!(pipeline = %self.pipeline, topic = %partition.0, partition = partition.1, first_offset = offset, last_offset = end, "replaying a window an earlier attempt did not commit");
        }
        self.windows.insert(
            partition.clone(),
            Window {
                first_offset: offset,
                last_offset: offset,
                opened_at: Instant::now(),
                planned_end,
                tables: self.outputs.tables.iter().map(|_| TableWindow::default()).collect(),
                dead_letters: Vec::new(),
                dead_offsets: HashSet::new(),
            },
        );
        Ok(())
    }

    fn marker_key(&self, partition: &TopicPartition, first_offset: i64) -> Option<(ObjectStore, String)> {
        let table = self.outputs.tables.first()?;
        let name = dead_letter_key("", &partition.0, partition.1, first_offset);
        let name = format!("{}.json", name.trim_end_matches(".jsonl"));
        Some((table.store.clone(), join_key(&table.prefix, &format!("_sluice/windows/{name}"))))
    }

    /// Moves the window's pending rows into its files; rows a table refuses make their whole
    /// source record a dead letter, and that record's rows leave every table.
    fn encode(&mut self, partition: &TopicPartition, batch: &[SourceRecord]) -> Result<(), ConnectorError> {
        let Some(window) = self.windows.get_mut(partition) else { return Ok(()) };
        let mut encoded = Vec::with_capacity(self.outputs.tables.len());
        let mut refused: HashMap<i64, (String, String, Arc<str>)> = HashMap::new();
        for (table, rows) in self.outputs.tables.iter().zip(window.tables.iter_mut()) {
            let (pending, rejected) = table.encode_pending(rows, &partition.0, partition.1)?;
            for row in rejected {
                refused.entry(row.offset).or_insert((row.reason, table.from.clone(), row.plugin_version));
            }
            encoded.push(pending);
        }
        for (offset, (reason, from, plugin_version)) in refused {
            window.dead_offsets.insert(offset);
            window.dead_letters.retain(|letter| letter.offset != offset);
            let Some(record) = batch.iter().find(|r| r.partition == partition.1 && r.offset == offset) else {
                continue;
            };
            let failure = ChainFailure {
                source_index: 0,
                step: format!("sink {from}"),
                reason,
                field: None,
                trapped: false,
                plugin_version,
                part: None,
            };
            window.dead_letters.push(dead_letter(record, None, &failure));
        }
        let dead = &window.dead_offsets;
        for ((table, rows), pending) in self.outputs.tables.iter().zip(window.tables.iter_mut()).zip(encoded)
        {
            if let Some(pending) = pending {
                table.write_encoded(rows, pending, dead)?;
            }
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
        let marker = self.marker_key(partition, window.first_offset);
        if window.planned_end.is_none()
            && let Some((store, key)) = &marker
        {
            let body =
                serde_json::to_vec(&WindowMarker { last_offset: window.last_offset }).unwrap_or_default();
            if !put_with_retry(store, key, body, shutdown).await {
                return Err(interrupted());
            }
        }
        let mut uploads = Vec::new();
        let mut rows = 0;
        let duplicates: usize = window.tables.iter().map(|t| t.duplicates).sum();
        for (table, table_window) in self.outputs.tables.iter().zip(window.tables) {
            for object in table.finish(table_window, topic, number, window.first_offset, "")? {
                rows += object.rows;
                uploads.push((table.store.clone(), object.key, object.body));
            }
        }
        let objects = uploads.len();
        let bytes: usize = uploads.iter().map(|(_, _, body)| body.len()).sum();
        let stored = futures::future::join_all(
            uploads
                .into_iter()
                .map(|(store, key, body)| async move { put_with_retry(&store, &key, body, shutdown).await }),
        )
        .await;
        if stored.iter().any(|ok| !ok) {
            return Err(interrupted());
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
        if let Some((store, key)) = &marker
            && let Err(error) = store.delete(key).await
        {
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

/// The last offset recorded by an earlier attempt at the window whose marker is `key`.
async fn read_marker(store: &ObjectStore, key: &str) -> Result<Option<i64>, ConnectorError> {
    let Some(bytes) = store.get(key).await? else { return Ok(None) };
    match serde_json::from_slice::<WindowMarker>(&bytes) {
        Ok(marker) => Ok(Some(marker.last_offset)),
        Err(error) => {
            tracing::warn!(marker = %store.describe(key), "ignoring an unreadable window marker: {error}");
            Ok(None)
        }
    }
}

/// Puts `body`, retrying with backoff until it is stored or shutdown is asked for; returns
/// whether it was stored.
async fn put_with_retry(
    store: &ObjectStore,
    key: &str,
    body: impl Into<bytes::Bytes>,
    shutdown: &watch::Receiver<bool>,
) -> bool {
    let body: bytes::Bytes = body.into();
    let mut attempt = 0;
    loop {
        match store.put(key, body.clone()).await {
            Ok(()) => return true,
            Err(error) => {
                tracing::error!(object = %store.describe(key), attempt, "cannot store: {error}");
                if *shutdown.borrow() && attempt >= 2 {
                    return false;
                }
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}
