//! `sluice sweep`: re-runs a pipeline's dead letters through the plugins loaded now and writes
//! what passes into its sinks, through the same windowed interface as the connector.
//!
//! Per dead-letter object, in this order: the sinks' windows for the letters that pass, then a
//! copy of those letters under `swept/`, then the original object is deleted (all passed) or
//! rewritten with the letters that still fail. Nothing is deleted before it is written
//! elsewhere. Windows are named after the letters' first offset plus a hash of the letters, so
//! a sweep interrupted and run again rewrites the same objects, and a later sweep of letters
//! that failed this time writes new ones beside them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{HostConfig, Pipeline};
use crate::kafka::SourceRecord;
use crate::object_store::ObjectStores;
use crate::object_store::compression::decompress_bytes;
use crate::object_store::join_key;
use crate::pipeline::chain::Chain;
use crate::pipeline::connector::ConnectorError;
use crate::pipeline::outputs::Outputs;
use crate::pipeline::routing::{push_rows, refused_by_sink, route};
use crate::plugin::{Header, PluginRegistry, RecordIn};
use crate::sink::dead_letter::{
    DeadLetter, DeadLetterError, RawBytes, SWEPT_DIR, encode_lines, is_pending_letter, letter_file_stem,
    parse_lines,
};
use crate::sink::windowed::{SinkError, SinkWindow, WindowName};

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Setup(#[from] ConnectorError),
    #[error("{object}: {source}")]
    Unreadable {
        object: String,
        #[source]
        source: DeadLetterError,
    },
    #[error("{object}: cannot decompress it: {source}")]
    Compressed {
        object: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a sweep did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Dead-letter objects read.
    pub objects: usize,
    /// Letters in them.
    pub letters: usize,
    /// Letters that now pass and went to the sinks.
    pub passed: usize,
    /// Letters that still fail and stay where they were.
    pub still_failing: usize,
    /// Rows written from the letters that passed.
    pub rows: usize,
    /// Objects moved whole under `swept/`.
    pub objects_swept: usize,
}

/// The dead letters of one pipeline and what to run them through.
pub struct Sweep {
    chain: Chain,
    outputs: Outputs,
}

impl Sweep {
    /// Prepares the pipeline's chain, sinks and dead-letter store.
    ///
    /// # Errors
    /// [`SweepError::Setup`] when the pipeline has no dead letters or sinks, or a plugin is
    /// missing.
    pub async fn new(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
        stores: &ObjectStores,
    ) -> Result<Self, SweepError> {
        let chain = Chain::new(pipeline, registry, host).map_err(ConnectorError::from)?;
        let outputs = Outputs::build(pipeline, registry, stores, host).await.map_err(ConnectorError::from)?;
        Ok(Sweep { chain, outputs })
    }

    /// The dead-letter objects waiting (those under `swept/` are done, and `shadow/` holds no
    /// dead letters).
    ///
    /// # Errors
    /// [`SweepError::Setup`] when the store cannot be listed.
    pub async fn pending_objects(&self) -> Result<Vec<String>, SweepError> {
        let prefix = join_key(&self.outputs.dead_letter_prefix, "");
        let listed = self.outputs.dead_letters.list(&prefix).await.map_err(ConnectorError::from)?;
        Ok(listed
            .into_iter()
            .map(|meta| meta.key)
            .filter(|key| is_pending_letter(&self.outputs.dead_letter_prefix, key))
            .collect())
    }

    /// Re-runs the letters of `key`; with `dry_run` nothing is written, moved or deleted.
    ///
    /// # Errors
    /// [`SweepError`] when the object is unreadable or a store call fails.
    pub async fn sweep_object(&self, key: &str, dry_run: bool) -> Result<SweepReport, SweepError> {
        let store = &self.outputs.dead_letters;
        let Some(bytes) = store.get(key).await.map_err(ConnectorError::from)? else {
            return Ok(SweepReport::default());
        };
        let bytes = decompress_bytes(bytes)
            .await
            .map_err(|source| SweepError::Compressed { object: store.describe(key), source })?;
        let letters = parse_lines(&bytes)
            .map_err(|source| SweepError::Unreadable { object: store.describe(key), source })?;
        let mut report = SweepReport { objects: 1, letters: letters.len(), ..SweepReport::default() };
        let records: Arc<[RecordIn]> = letters.iter().map(record_of).collect();
        let output = self.chain.run(records.clone()).await;
        let routed = route(output, letters.len(), &self.outputs.sources());

        let mut remaining: Vec<DeadLetter> = Vec::new();
        // Letters that gave rows and are swept (their failed parts stay as letters of their own).
        let mut passing: Vec<usize> = Vec::new();
        let mut failed_in_part: HashSet<usize> = HashSet::new();
        // Rows per (topic, partition), then per sink.
        let mut windows: BTreeMap<(String, i32), Vec<Box<dyn SinkWindow>>> = BTreeMap::new();
        for (index, (letter, source)) in letters.iter().zip(routed).enumerate() {
            // parse_lines let only Kafka records' letters through; any other stays where it was.
            let Some(at) = letter.kafka() else {
                remaining.push(letter.clone());
                continue;
            };
            if let Some(whole) = source.whole_failure() {
                remaining.push(letter.failed_again(&whole));
                continue;
            }
            for failure in &source.failures {
                remaining.push(letter.failed_again(failure));
            }
            // A letter whose every part failed again gave nothing: it stays, and is not swept.
            if !source.failures.is_empty() && source.rows.iter().all(Vec::is_empty) {
                continue;
            }
            if !source.failures.is_empty() {
                failed_in_part.insert(index);
            }
            passing.push(index);
            let window = windows
                .entry((at.topic.clone(), at.partition))
                .or_insert_with(|| self.outputs.sinks.iter().map(|sink| sink.open()).collect());
            let record = &records[index];
            let as_read = SourceRecord {
                topic: Arc::from(at.topic.as_str()),
                partition: at.partition,
                offset: at.offset,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: record
                    .headers
                    .iter()
                    .map(|header| (header.key.clone(), header.value.clone()))
                    .collect(),
                timestamp_ms: None,
            };
            push_rows(window, source.rows, &as_read);
        }

        // Rows a sink refuses keep their letters in the dead letters, whole.
        let mut refused: HashSet<(String, i32, i64)> = HashSet::new();
        for ((topic, partition), window) in &mut windows {
            for (sink, sink_window) in self.outputs.sinks.iter().zip(window.iter_mut()) {
                for row in sink_window.encode(topic, *partition).map_err(ConnectorError::from)? {
                    refused.insert((topic.clone(), *partition, row.offset));
                    let at = |letter: &&DeadLetter| {
                        letter.kafka().is_some_and(|at| {
                            at.topic == *topic && at.partition == *partition && at.offset == row.offset
                        })
                    };
                    if let Some(letter) = letters.iter().find(at) {
                        remaining.push(letter.failed_again(&refused_by_sink(sink.from(), row)));
                    }
                }
            }
        }
        passing.retain(|index| {
            letters
                .get(*index)
                .and_then(DeadLetter::kafka)
                .is_some_and(|at| !refused.contains(&(at.topic.clone(), at.partition, at.offset)))
        });
        let passed: Vec<&DeadLetter> = passing.iter().filter_map(|index| letters.get(*index)).collect();
        // A letter that failed in part counts as still failing: its failed part stays.
        report.passed = passing.iter().filter(|index| !failed_in_part.contains(index)).count();
        report.still_failing = letters.len() - report.passed;
        if passed.is_empty() {
            return Ok(report);
        }
        let suffix = format!("+swept-{}", letters_hash(&passed));

        // A sweep is a command: a store that keeps failing fails it after a few tries.
        let (_, no_long_retries) = tokio::sync::watch::channel(true);
        for ((topic, partition), mut window) in windows {
            let dead: HashSet<i64> = refused
                .iter()
                .filter(|(t, p, _)| *t == topic && *p == partition)
                .map(|(_, _, offset)| *offset)
                .collect();
            let first_offset = passed
                .iter()
                .filter_map(|letter| letter.kafka())
                .filter(|at| at.topic == topic && at.partition == partition)
                .map(|at| at.offset)
                .min()
                .unwrap_or_default();
            for sink_window in &mut window {
                sink_window.settle(&dead).map_err(ConnectorError::from)?;
            }
            if dry_run {
                report.rows += window.iter().map(|sink_window| sink_window.rows()).sum::<usize>();
                continue;
            }
            let name = WindowName { topic: &topic, partition, first_offset, suffix: &suffix };
            for sink_window in window {
                match sink_window.store(name, &no_long_retries).await {
                    Ok(stored) => report.rows += stored.rows,
                    Err(SinkError::Interrupted { from }) => {
                        return Err(SweepError::Setup(ConnectorError::Sink(SinkError::Write {
                            from,
                            problem: "its store failed after retries".into(),
                        })));
                    }
                    Err(error) => return Err(SweepError::Setup(error.into())),
                }
            }
        }
        if dry_run {
            report.objects_swept = usize::from(remaining.is_empty());
            return Ok(report);
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let swept_dir = join_key(&self.outputs.dead_letter_prefix, SWEPT_DIR);
        if remaining.is_empty() {
            store.copy(key, &join_key(&swept_dir, name)).await.map_err(ConnectorError::from)?;
            store.delete(key).await.map_err(ConnectorError::from)?;
            report.objects_swept = 1;
        } else {
            let stem = letter_file_stem(name);
            let swept_part = join_key(&swept_dir, &format!("{stem}{suffix}.jsonl"));
            let passed_lines: Vec<DeadLetter> = passed.into_iter().cloned().collect();
            store.put(&swept_part, encode_lines(&passed_lines)).await.map_err(ConnectorError::from)?;
            store.put(key, encode_lines(&remaining)).await.map_err(ConnectorError::from)?;
        }
        Ok(report)
    }
}

impl SweepReport {
    /// Adds another object's counts.
    pub fn add(&mut self, other: &SweepReport) {
        self.objects += other.objects;
        self.letters += other.letters;
        self.passed += other.passed;
        self.still_failing += other.still_failing;
        self.rows += other.rows;
        self.objects_swept += other.objects_swept;
    }
}

/// The record a letter holds, as a plugin's input: its value, and its Kafka key and headers.
fn record_of(letter: &DeadLetter) -> RecordIn {
    let kafka = letter.kafka();
    RecordIn {
        key: kafka.and_then(|at| at.key.as_ref()).and_then(RawBytes::to_bytes),
        value: letter.value.to_bytes().unwrap_or_default(),
        headers: kafka
            .map(|at| at.headers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|(key, value)| Header { key: key.clone(), value: value.to_bytes().unwrap_or_default() })
            .collect(),
    }
}

/// Eight hex digits identifying a set of letters (their coordinates and values).
fn letters_hash(letters: &[&DeadLetter]) -> String {
    let mut hasher = Sha256::new();
    for letter in letters {
        if let Some(at) = letter.kafka() {
            hasher.update(at.topic.as_bytes());
            hasher.update(at.partition.to_le_bytes());
            hasher.update(at.offset.to_le_bytes());
        }
        hasher.update(letter.value.to_bytes().unwrap_or_default());
        hasher.update([0xff]);
    }
    hex::encode(&hasher.finalize()[..4])
}
