//! `bare-connector`: the native ceiling of sluice's Kafka → normalize → Parquet-on-S3 connector.
//!
//! The same job as a `kafka`-source pipeline running `normalize-sendgrid-events` into a
//! `parquet-s3` sink, with none of the platform: a consumer-group member per core reads the
//! topic with sluice's consumer settings, calls the plugin's code compiled natively
//! (`normalize_sendgrid_events::transform_batch`) on a blocking thread while the previous batch
//! is written, and writes windows with sluice's own table sink (the same Arrow and Parquet
//! encoding, Hive partitions, dedupe and file names). A window closes at `--window-events` rows
//! or `--window-seconds` of age, like the connector's; its objects and dead letters are stored
//! by a task of their own while the member goes on, and the partition's offset is committed
//! once they are, in window order. No markers, no WASM, no metrics, no chain or routing layer:
//! what sluice adds on top of this is its platform overhead.
//!
//! Stops once `--expected-events` events are stored (rows, dead letters and duplicates
//! skipped), after the windows closed by their own limits, and prints one JSON line:
//! `{events, rows, dead_letters, duplicates, objects, seconds, events_per_s, peak_rss_mb}`,
//! `seconds` from the first record received to the last commit.
//!
//! S3 from the environment as for the Python peer (`AWS_ENDPOINT_URL`, `AWS_REGION` and the
//! standard credentials), path-style addressing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;
use sluice::config::{KafkaConfig, S3Config, StoreLocation};
use sluice::kafka::{GroupConsumer, SourceRecord, TopicPartition};
use sluice::object_store::S3Client;
use sluice::object_store::{ObjectStore, join_key};
use sluice::plugin::rows::RowRef;
use sluice::plugin::schema::OutputSchema;
use sluice::sink::parquet::TableSinkSettings;
use sluice::sink::parquet::sink::{TableSink, TableWindow};
use sluice_bench::native::{host_rows, host_schema};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// The native ceiling of the connector; see the module documentation.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    bucket: String,
    /// Key prefix of the table; dead letters go under `<prefix>-dead-letters`.
    #[arg(long)]
    prefix: String,
    /// Events (elements of bodies) to store before stopping.
    #[arg(long)]
    expected_events: u64,
    /// Consumer-group members (one per core by default, as sluice's connector).
    #[arg(long)]
    members: Option<usize>,
    /// Records per plugin call (the bench pipeline's `batch_records`).
    #[arg(long, default_value_t = 50)]
    batch_records: usize,
    #[arg(long, default_value_t = 100_000)]
    window_events: usize,
    #[arg(long, default_value_t = 2.0)]
    window_seconds: f64,
    /// Windows being stored at once per member before the member waits for the oldest.
    #[arg(long, default_value_t = 2)]
    windows_storing: usize,
}

/// What the members have stored, shared.
#[derive(Default)]
struct Totals {
    events: AtomicU64,
    rows: AtomicU64,
    dead_letters: AtomicU64,
    duplicates: AtomicU64,
    objects: AtomicU64,
}

/// One Kafka partition's records since its last commit.
struct Window {
    first_offset: i64,
    last_offset: i64,
    opened_at: Instant,
    table: TableWindow,
    /// Events read into the window (rows, failures and duplicates alike).
    events: u64,
    dead_letters: Vec<u8>,
    dead_letter_count: u64,
}

/// A closed window whose objects are being stored.
struct Storing {
    partition: TopicPartition,
    next_offset: i64,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Where a member writes.
struct Sinks {
    table: TableSink,
    schema: Arc<OutputSchema>,
    dead_letters: ObjectStore,
    dead_letter_prefix: String,
    plugin_version: Arc<str>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(run(&args))?;
    println!("{result}");
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let s3 = S3Config {
        endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        force_path_style: true,
    };
    let bucket = S3Client::new(&s3).await.bucket(&args.bucket);
    anyhow::ensure!(bucket.exists().await?, "bucket `{}` does not exist", args.bucket);
    let store = ObjectStore::S3(bucket);
    let declared = normalize_sendgrid_events::declared_outputs();
    let info = declared.first().context("the plugin declares no output")?;
    let schema = host_schema(info)?;
    let settings = TableSinkSettings {
        location: StoreLocation::S3 { bucket: args.bucket.clone(), prefix: args.prefix.clone() },
        partition_by: vec!["dt".to_owned(), "event".to_owned()],
        rotate_records: args.window_events,
        rotate_bytes: usize::MAX,
        rotate_ms: (args.window_seconds * 1000.0) as u64,
        dedupe_by_key: true,
    };
    let sinks = Arc::new(Sinks {
        table: TableSink::new(
            &format!("normalize-sendgrid-events.{}", info.name),
            settings,
            store.clone(),
            schema.clone(),
        )?,
        schema,
        dead_letters: store,
        dead_letter_prefix: format!("{}-dead-letters", args.prefix),
        plugin_version: Arc::from("normalize-sendgrid-events@native"),
    });
    let kafka = KafkaConfig { brokers: args.brokers.clone(), ..KafkaConfig::default() };
    let members = args.members.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let totals = Arc::new(Totals::default());
    let first_record: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut tasks = Vec::new();
    for _ in 0..members {
        let consumer = GroupConsumer::new(&kafka, &args.group, &args.topic)?;
        let member = Member {
            consumer,
            sinks: sinks.clone(),
            totals: totals.clone(),
            first_record: first_record.clone(),
            windows: HashMap::new(),
            storing: VecDeque::new(),
            window_events: args.window_events,
            window_age: Duration::from_secs_f64(args.window_seconds),
            windows_storing: args.windows_storing.max(1),
            expected_events: args.expected_events,
        };
        tasks.push(tokio::spawn(member.run(args.batch_records)));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = first_record.lock().await.map_or(0.0, |at| at.elapsed().as_secs_f64());
    let events = totals.events.load(Ordering::Relaxed);
    Ok(json!({
        "events": events,
        "rows": totals.rows.load(Ordering::Relaxed),
        "dead_letters": totals.dead_letters.load(Ordering::Relaxed),
        "duplicates": totals.duplicates.load(Ordering::Relaxed),
        "objects": totals.objects.load(Ordering::Relaxed),
        "members": members,
        "seconds": (seconds * 100.0).round() / 100.0,
        "events_per_s": (events as f64 / seconds.max(1e-9)).round(),
        "peak_rss_mb": peak_rss_mb(),
    }))
}

struct Member {
    consumer: GroupConsumer,
    sinks: Arc<Sinks>,
    totals: Arc<Totals>,
    first_record: Arc<Mutex<Option<Instant>>>,
    windows: HashMap<TopicPartition, Window>,
    storing: VecDeque<Storing>,
    window_events: usize,
    window_age: Duration,
    windows_storing: usize,
    expected_events: u64,
}

/// A batch whose plugin call runs on a blocking thread.
type Transforming = (Vec<SourceRecord>, JoinHandle<sluice_plugin_sdk::BatchResult>);

impl Member {
    async fn run(mut self, batch_records: usize) -> anyhow::Result<()> {
        let mut transforming: Option<Transforming> = None;
        while self.totals.events.load(Ordering::Relaxed) < self.expected_events {
            let batch = self.consumer.next_batch(batch_records, Duration::from_millis(200)).await?;
            if !batch.is_empty() {
                self.first_record.lock().await.get_or_insert_with(Instant::now);
            }
            for revoked in self.consumer.take_revoked() {
                self.windows.remove(&revoked);
            }
            let next = (!batch.is_empty()).then(|| {
                let records: Vec<sluice_plugin_sdk::RecordIn> = batch
                    .iter()
                    .map(|record| sluice_plugin_sdk::RecordIn::from_value(record.value.clone()))
                    .collect();
                let task =
                    tokio::task::spawn_blocking(move || normalize_sendgrid_events::transform_batch(&records));
                (batch, task)
            });
            if let Some((records, task)) = std::mem::replace(&mut transforming, next) {
                let result = task.await?;
                self.write(&records, result)?;
            }
            let due: Vec<TopicPartition> = self
                .windows
                .iter()
                .filter(|(_, window)| {
                    window.table.rows >= self.window_events || window.opened_at.elapsed() >= self.window_age
                })
                .map(|(partition, _)| partition.clone())
                .collect();
            for partition in due {
                self.close(&partition)?;
            }
            self.commit_stored(false).await?;
        }
        self.commit_stored(true).await
    }

    /// Puts a batch's rows and failures into their partitions' windows and encodes them.
    fn write(
        &mut self,
        records: &[SourceRecord],
        result: sluice_plugin_sdk::BatchResult,
    ) -> anyhow::Result<()> {
        let owned: HashSet<TopicPartition> = self.consumer.assigned().into_iter().collect();
        let mut touched: HashSet<TopicPartition> = HashSet::new();
        let whole: HashSet<u32> = result
            .failures
            .iter()
            .filter(|failure| failure.part.is_none())
            .map(|failure| failure.index)
            .collect();
        for failure in &result.failures {
            let Some(record) = records.get(failure.index as usize) else { continue };
            let Some(window) = self.window(record, &owned) else { continue };
            let line = json!({
                "offset": record.offset,
                "reason": failure.reason,
                "field": failure.field,
                "record": String::from_utf8_lossy(failure.part.as_deref().unwrap_or(&record.value)),
            });
            window.dead_letters.extend_from_slice(line.to_string().as_bytes());
            window.dead_letters.push(b'\n');
            window.dead_letter_count += 1;
            window.events += 1;
        }
        for rows in result.outputs {
            let rows = Arc::new(host_rows(&self.sinks.schema, rows)?);
            for row in 0..rows.len() {
                let Some(input) = rows.input(row) else { continue };
                if whole.contains(&input) {
                    continue;
                }
                let Some(record) = records.get(input as usize) else { continue };
                let (partition, offset) = ((record.topic.clone(), record.partition), record.offset);
                let sinks = self.sinks.clone();
                let Some(window) = self.window(record, &owned) else { continue };
                let Some(row) = RowRef::new(rows.clone(), row) else { continue };
                sinks.table.push(&mut window.table, row, offset, sinks.plugin_version.clone());
                window.events += 1;
                touched.insert(partition);
            }
        }
        for partition in touched {
            let Some(window) = self.windows.get_mut(&partition) else { continue };
            let (pending, rejected) =
                self.sinks.table.encode_pending(&mut window.table, &partition.0, partition.1)?;
            anyhow::ensure!(rejected.is_empty(), "rows the table refused: {rejected:?}");
            if let Some(pending) = pending {
                self.sinks.table.write_encoded(&mut window.table, pending, &HashSet::new())?;
            }
        }
        Ok(())
    }

    /// The window of `record`'s partition, opened at it if there is none; `None` when the
    /// partition is not this member's any more.
    fn window(&mut self, record: &SourceRecord, owned: &HashSet<TopicPartition>) -> Option<&mut Window> {
        let partition: TopicPartition = (record.topic.clone(), record.partition);
        if !owned.contains(&partition) {
            return None;
        }
        let window = self.windows.entry(partition).or_insert_with(|| Window {
            first_offset: record.offset,
            last_offset: record.offset,
            opened_at: Instant::now(),
            table: TableWindow::default(),
            events: 0,
            dead_letters: Vec::new(),
            dead_letter_count: 0,
        });
        window.last_offset = window.last_offset.max(record.offset);
        Some(window)
    }

    /// Finishes the partition's window and stores it on a task of its own.
    fn close(&mut self, partition: &TopicPartition) -> anyhow::Result<()> {
        let Some(window) = self.windows.remove(partition) else { return Ok(()) };
        let (topic, number) = (partition.0.as_ref(), partition.1);
        let duplicates = window.table.duplicates as u64;
        let objects = self.sinks.table.finish(window.table, topic, number, window.first_offset, "")?;
        let sinks = self.sinks.clone();
        let totals = self.totals.clone();
        let dead_letter_key = join_key(
            &sinks.dead_letter_prefix,
            &format!("{topic}-{number}-{:020}.jsonl", window.first_offset),
        );
        let (dead_letters, dead_letter_count, events) =
            (window.dead_letters, window.dead_letter_count, window.events);
        let task = tokio::spawn(async move {
            let rows: usize = objects.iter().map(|object| object.rows).sum();
            let count = objects.len() as u64;
            let store = &sinks.table.store;
            let uploads =
                objects.into_iter().map(|object| async move { store.put(&object.key, object.body).await });
            for stored in futures::future::join_all(uploads).await {
                stored?;
            }
            if !dead_letters.is_empty() {
                sinks.dead_letters.put(&dead_letter_key, dead_letters).await?;
            }
            totals.rows.fetch_add(rows as u64, Ordering::Relaxed);
            totals.dead_letters.fetch_add(dead_letter_count, Ordering::Relaxed);
            totals.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            totals.objects.fetch_add(count, Ordering::Relaxed);
            totals.events.fetch_add(events, Ordering::Relaxed);
            Ok(())
        });
        self.storing.push_back(Storing {
            partition: partition.clone(),
            next_offset: window.last_offset + 1,
            task,
        });
        Ok(())
    }

    /// Commits the windows stored so far, oldest first; waits for the oldest while too many
    /// are being stored, or for all of them when `all`.
    async fn commit_stored(&mut self, all: bool) -> anyhow::Result<()> {
        while let Some(front) = self.storing.front() {
            if !(all || front.task.is_finished() || self.storing.len() > self.windows_storing) {
                break;
            }
            let Some(stored) = self.storing.pop_front() else { break };
            stored.task.await??;
            self.consumer.commit(&[(stored.partition, stored.next_offset)]).await?;
        }
        Ok(())
    }
}

/// This process's peak resident set, from `/proc/self/status` (`VmHWM`).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kib / 1024.0 * 10.0).round() / 10.0
}
