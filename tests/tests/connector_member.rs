//! The connector's member loop against a scripted consumer and a local table: no broker, the
//! real plugin and sinks. The consumer checks, at each commit, that everything before the
//! committed offset is already stored; rebalances and replays are played in a chosen order.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sluice::config::{HostConfig, Pipeline, S3Config};
use sluice::kafka::{ConsumeError, SourceRecord, TopicPartition};
use sluice::object_store::ObjectStores;
use sluice::pipeline::{Connector, MemberConsumer};
use sluice::plugin::{CompileCache, PluginEngine, PluginRegistry};
use sluice_e2e::artifacts::plugin_path;
use sluice_e2e::table::{TableRow, read_local_table};
use tokio::sync::watch;

const TOPIC: &str = "events";

/// What the scripted consumer does on its next `next_batch` call.
enum Step {
    /// Hands out these records.
    Batch(Vec<SourceRecord>),
    /// Takes these partitions away (a rebalance), then hands out nothing.
    Revoke(Vec<i32>),
    /// Gives these partitions back, then hands out nothing.
    Assign(Vec<i32>),
}

/// One commit as the consumer saw it, with what the sinks had stored by then.
#[derive(Debug, Clone)]
struct SeenCommit {
    partition: i32,
    next_offset: i64,
    /// Rows of that partition in the table, per source offset.
    stored_rows: BTreeMap<i64, usize>,
    /// Dead letters of that partition, per source offset.
    stored_dead_letters: BTreeMap<i64, usize>,
}

struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    assigned: Mutex<Vec<i32>>,
    revoked: Mutex<Vec<i32>>,
    commits: Arc<Mutex<Vec<SeenCommit>>>,
    /// Commits are seen but not kept by the broker: the next owner starts from the beginning.
    lose_commits: bool,
    dirs: Dirs,
    stop: watch::Sender<bool>,
}

#[derive(Clone)]
struct Dirs {
    table: PathBuf,
    dead_letters: PathBuf,
}

impl MemberConsumer for Scripted {
    fn group(&self) -> &str {
        "scripted"
    }

    async fn next_batch(
        &self,
        _max_records: usize,
        _max_wait: Duration,
    ) -> Result<Vec<SourceRecord>, ConsumeError> {
        let step = self.steps.lock().expect("steps").pop_front();
        match step {
            Some(Step::Batch(records)) => Ok(records),
            Some(Step::Revoke(partitions)) => {
                self.assigned.lock().expect("assigned").retain(|p| !partitions.contains(p));
                self.revoked.lock().expect("revoked").extend(partitions);
                Ok(Vec::new())
            }
            Some(Step::Assign(partitions)) => {
                self.assigned.lock().expect("assigned").extend(partitions);
                Ok(Vec::new())
            }
            None => {
                // The script is played: stop, which stores the open windows.
                let _ = self.stop.send(true);
                Ok(Vec::new())
            }
        }
    }

    fn take_revoked(&self) -> Vec<TopicPartition> {
        std::mem::take(&mut *self.revoked.lock().expect("revoked"))
            .into_iter()
            .map(|p| (TOPIC.into(), p))
            .collect()
    }

    fn assigned(&self) -> Vec<TopicPartition> {
        self.assigned.lock().expect("assigned").iter().map(|p| (TOPIC.into(), *p)).collect()
    }

    async fn commit(&self, next_offsets: &[(TopicPartition, i64)]) -> Result<(), ConsumeError> {
        for ((_, partition), next_offset) in next_offsets {
            let seen = SeenCommit {
                partition: *partition,
                next_offset: *next_offset,
                stored_rows: rows_per_offset(&table(&self.dirs.table), *partition),
                stored_dead_letters: dead_letters_per_offset(&self.dirs.dead_letters, *partition),
            };
            self.commits.lock().expect("commits").push(seen);
        }
        if self.lose_commits {
            return Err(ConsumeError::Commit(rdkafka::error::KafkaError::Canceled));
        }
        Ok(())
    }
}

fn table(dir: &Path) -> Vec<TableRow> {
    if !dir.exists() {
        return Vec::new();
    }
    read_local_table(dir).expect("read the local table")
}

fn rows_per_offset(rows: &[TableRow], partition: i32) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for row in rows.iter().filter(|row| row.columns["kafka_partition"] == json!(partition)) {
        let offset = row.columns["kafka_offset"].as_i64().expect("kafka_offset");
        *counts.entry(offset).or_default() += 1;
    }
    counts
}

/// Dead-letter lines of `partition` per offset, from every `.jsonl` file under `dir`.
fn dead_letters_per_offset(dir: &Path, partition: i32) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for path in walk(dir) {
        if path.extension().is_none_or(|extension| extension != "jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).expect("read dead letters").lines() {
            let letter: Value = serde_json::from_str(line).expect("a dead letter is JSON");
            if letter["partition"] == json!(partition) {
                *counts.entry(letter["offset"].as_i64().expect("offset")).or_default() += 1;
            }
        }
    }
    counts
}

/// Record `offset` of `partition`: a body of two valid events, and every fifth body one more,
/// malformed event (a dead letter of its own).
fn record(partition: i32, offset: i64) -> SourceRecord {
    let event = |n: usize| {
        json!({"email": "a@example.com", "timestamp": 1_700_000_000 + offset, "event": "open",
               "sg_event_id": format!("e-{partition}-{offset}-{n}")})
    };
    let mut events = vec![event(0), event(1)];
    if offset % 5 == 4 {
        events.push(json!({"event": "open", "sg_event_id": format!("bad-{partition}-{offset}")}));
    }
    SourceRecord {
        topic: TOPIC.into(),
        partition,
        offset,
        key: None,
        value: serde_json::to_vec(&events).expect("body"),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

fn records(partition: i32, offsets: std::ops::Range<i64>) -> Vec<SourceRecord> {
    offsets.map(|offset| record(partition, offset)).collect()
}

const VALID_PER_RECORD: usize = 2;

fn is_bad(offset: i64) -> bool {
    offset % 5 == 4
}

/// The events pipeline writing into `dirs`, its windows closing after `rotate_records` rows.
fn pipeline(dirs: &Dirs, rotate_records: usize) -> Pipeline {
    let text = format!(
        "name = \"events\"\n[source]\nkind = \"kafka\"\ntopic = \"{TOPIC}\"\ngroup = \"scripted\"\n\
         [[steps]]\nplugin = \"normalize-sendgrid-events\"\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"parquet-local\"\ndir = \"{}\"\n\
         partition_by = [\"event\"]\nrotate_records = {rotate_records}\nrotate_ms = 600000\n\
         [dead_letters]\nkind = \"local\"\ndir = \"{}\"\n",
        dirs.table.display(),
        dirs.dead_letters.display(),
    );
    let file = tempfile::NamedTempFile::new().expect("pipeline file");
    std::fs::write(file.path(), text).expect("write pipeline");
    sluice::config::load_pipeline_file(file.path()).expect("the pipeline parses")
}

/// Runs one member over `steps` until the script ends; returns the commits it made.
async fn run_member(
    dirs: &Dirs,
    rotate_records: usize,
    assigned: &[i32],
    steps: Vec<Step>,
    lose_commits: bool,
) -> Vec<SeenCommit> {
    let registry =
        PluginRegistry::new(PluginEngine::new(256 << 20).expect("engine"), CompileCache::disabled());
    registry.load_file(&plugin_path("normalize-sendgrid-events")).expect("load plugin");
    let (stop, stopping) = watch::channel(false);
    let commits = Arc::new(Mutex::new(Vec::new()));
    let consumer = Scripted {
        steps: Mutex::new(steps.into()),
        assigned: Mutex::new(assigned.to_vec()),
        revoked: Mutex::new(Vec::new()),
        commits: commits.clone(),
        lose_commits,
        dirs: dirs.clone(),
        stop,
    };
    let stores = ObjectStores::new(S3Config::default());
    let pipeline = pipeline(dirs, rotate_records);
    let mut members =
        Connector::members(&pipeline, &registry, &HostConfig::default(), &stores, vec![consumer])
            .await
            .expect("the member starts");
    let member = members.pop().expect("one member");
    tokio::time::timeout(Duration::from_secs(60), member.run(stopping))
        .await
        .expect("the member stops once its script is played")
        .expect("the member runs without error");
    commits.lock().expect("commits").clone()
}

fn dirs(root: &Path) -> Dirs {
    Dirs { table: root.join("table"), dead_letters: root.join("dead-letters") }
}

/// Every event id in the table, counted.
fn event_counts(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in table(dir) {
        *counts.entry(row.text("sg_event_id").expect("sg_event_id").to_owned()).or_default() += 1;
    }
    counts
}

fn expected_events(partition: i32, offsets: std::ops::Range<i64>) -> BTreeMap<String, usize> {
    offsets
        .flat_map(|offset| (0..VALID_PER_RECORD).map(move |n| (format!("e-{partition}-{offset}-{n}"), 1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_comes_after_the_rows_and_dead_letters_before_it_are_stored() {
    let root = tempfile::tempdir().expect("dir");
    let dirs = dirs(root.path());
    let mut steps = Vec::new();
    for start in (0..30).step_by(5) {
        let mut batch = records(0, start..start + 5);
        batch.extend(records(1, start..start + 5));
        steps.push(Step::Batch(batch));
    }
    // Windows close at 16 rows: mid-batch, several times per partition.
    let commits = run_member(&dirs, 16, &[0, 1], steps, false).await;

    for partition in [0, 1] {
        let mine: Vec<&SeenCommit> = commits.iter().filter(|c| c.partition == partition).collect();
        assert!(mine.len() >= 3, "windows close as they fill: {mine:?}");
        assert_eq!(mine.last().map(|c| c.next_offset), Some(30), "the whole partition is committed");
        let mut previous = 0;
        for commit in mine {
            assert!(commit.next_offset > previous, "commits move forward: {commit:?}");
            previous = commit.next_offset;
            for offset in 0..commit.next_offset {
                assert_eq!(
                    commit.stored_rows.get(&offset).copied().unwrap_or(0),
                    VALID_PER_RECORD,
                    "offset {offset}'s rows are stored before offset {} is committed",
                    commit.next_offset
                );
                assert_eq!(
                    commit.stored_dead_letters.get(&offset).copied().unwrap_or(0),
                    usize::from(is_bad(offset)),
                    "offset {offset}'s dead letter is stored before offset {} is committed",
                    commit.next_offset
                );
            }
        }
    }
    let mut expected = expected_events(0, 0..30);
    expected.extend(expected_events(1, 0..30));
    assert_eq!(event_counts(&dirs.table), expected, "every valid event once");
    let markers: Vec<PathBuf> =
        walk(&dirs.dead_letters).into_iter().filter(|p| p.extension().is_none_or(|e| e != "jsonl")).collect();
    assert!(markers.is_empty(), "no window marker is left once its window is committed: {markers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_open_when_its_partition_is_revoked_is_dropped_and_read_again_from_the_commit() {
    let root = tempfile::tempdir().expect("dir");
    let dirs = dirs(root.path());
    let steps = vec![
        Step::Batch(records(0, 0..5)),
        // Partition 0 moves away mid-window (nothing of it committed yet) and comes back.
        Step::Revoke(vec![0]),
        Step::Batch(records(1, 0..5)),
        Step::Assign(vec![0]),
        // Its new owner starts again from the committed offset: 0.
        Step::Batch(records(0, 0..10)),
    ];
    let commits = run_member(&dirs, 1000, &[0, 1], steps, false).await;
    let partition_0: Vec<i64> = commits.iter().filter(|c| c.partition == 0).map(|c| c.next_offset).collect();
    assert_eq!(partition_0, [10], "the revoked window was never stored nor committed");
    let mut expected = expected_events(0, 0..10);
    expected.extend(expected_events(1, 0..5));
    assert_eq!(event_counts(&dirs.table), expected, "each event once, none from the dropped window twice");
    let letters = dead_letters_per_offset(&dirs.dead_letters, 0);
    assert_eq!(letters, BTreeMap::from([(4, 1), (9, 1)]), "each dead letter once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_lost_commit_rewrites_the_same_objects() {
    let root = tempfile::tempdir().expect("dir");
    let dirs = dirs(root.path());
    let script =
        || (0..30).step_by(6).map(|start| Step::Batch(records(0, start..start + 6))).collect::<Vec<_>>();
    let first = run_member(&dirs, 20, &[0], script(), true).await;
    assert!(first.len() >= 3, "{first:?}");
    let objects_after_first = walk(&dirs.table);
    let events_after_first = event_counts(&dirs.table);
    assert_eq!(events_after_first, expected_events(0, 0..30));

    // The commits never reached the broker: the next member reads everything again.
    let second = run_member(&dirs, 20, &[0], script(), false).await;
    assert_eq!(
        first.iter().map(|c| c.next_offset).collect::<Vec<_>>(),
        second.iter().map(|c| c.next_offset).collect::<Vec<_>>(),
        "the replay closes its windows at the same offsets"
    );
    assert_eq!(
        walk(&dirs.table),
        objects_after_first,
        "the replay writes the same objects, none beside them"
    );
    assert_eq!(event_counts(&dirs.table), events_after_first, "and no row twice");
    let letters = dead_letters_per_offset(&dirs.dead_letters, 0);
    assert!(letters.values().all(|count| *count == 1), "each dead letter once: {letters:?}");
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else { continue };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
