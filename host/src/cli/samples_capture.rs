//! `sluice samples capture`: records taken from where they really are — a pipeline's source
//! topic, its dead letters, or an S3 object as a job reads it — written byte for byte into a
//! file `sluice plugin test --input` and `plugin diff --input` read, so yesterday's failures
//! become tomorrow's samples in one command.
//!
//! Nothing is changed where the records are read: the topic's partitions are assigned outside
//! any consumer group and no offset is committed, dead letters are read and neither swept nor
//! moved. The file appears whole or not at all (written beside its place, then renamed).

mod dead_letters;
mod object;
mod topic;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_samples::{NotALine, SampleRecord, envelope_line, is_envelopes_file, plain_line};

use super::HostOptions;
use crate::config::defaults::default_max_record_bytes;
use crate::config::{HostConfig, Pipeline, SourceConfig, load_pipeline_file};
use crate::job::reader::ReadError;
use crate::object_store::StoreError;
use object::{ObjectUrl, parse_object_url};

const TOPIC: &str = "From the pipeline's source topic (the default)";
const DEAD_LETTERS: &str = "From the pipeline's dead letters";
const OBJECT: &str = "From an S3 object";

#[derive(Debug, Args)]
#[command(after_help = "\
Reads from one source: the pipeline's source topic (a `kafka` or `webhook` source) unless \
--dead-letters or --object is given. Nothing is changed where records are read: partitions are \
assigned without joining a consumer group and no offset is ever committed; dead letters are \
neither swept nor moved.

An --out ending in `.envelopes.jsonl` gets one envelope per record, {\"key\", \"raw\", \
\"headers\", \"origin\"}, holding its exact bytes; any other name gets one value per line, and \
the command refuses a record a line cannot hold exactly (a line break, not UTF-8, blank).")]
pub struct SamplesCaptureArgs {
    #[command(flatten)]
    host: HostOptions,
    /// The pipeline whose topic or dead letters to capture; with --object it only sets the
    /// largest record the reader accepts (its `max_record_bytes`).
    #[arg(long, value_name = "NAME", required_unless_present = "object")]
    pipeline: Option<String>,
    /// The file to write: `*.envelopes.jsonl` for envelopes, else one value per line.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The most records to capture.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = parse_limit)]
    limit: usize,
    /// Replace --out when it exists.
    #[arg(long)]
    force: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,

    /// A partition to read; repeatable. Default: every partition of the topic.
    #[arg(
        long = "partition",
        value_name = "P",
        value_parser = clap::value_parser!(i32).range(0..),
        conflicts_with_all = ["dead_letters", "object"],
        help_heading = TOPIC
    )]
    partitions: Vec<i32>,
    /// Start at this offset in each partition read. Default: the earliest record kept.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(i64).range(0..),
        conflicts_with_all = ["dead_letters", "object"],
        help_heading = TOPIC
    )]
    offset: Option<i64>,
    /// Only records whose Kafka timestamp is at or after this time (RFC 3339, e.g.
    /// 2026-12-07T09:00:00Z). Filtered as records are read, from the start (or --offset) of
    /// each partition, which works on any broker; records without a timestamp are left out.
    #[arg(
        long,
        value_name = "RFC3339",
        value_parser = parse_since,
        conflicts_with_all = ["dead_letters", "object"],
        help_heading = TOPIC
    )]
    since: Option<i64>,
    /// How long a partition may stay silent before it counts as read to its end, in
    /// milliseconds: a guard beside the broker's end-of-partition signal, which not every
    /// broker gives everywhere (tansu gives none for an --offset past the end).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5000,
        conflicts_with_all = ["dead_letters", "object"],
        help_heading = TOPIC
    )]
    wait_ms: u64,

    /// Capture the pipeline's dead letters not swept yet (its `[dead_letters]` store).
    #[arg(long, conflicts_with = "object", help_heading = DEAD_LETTERS)]
    dead_letters: bool,
    /// Only the letters refused by this step (its plugin's name, or `sink <output>`).
    #[arg(long, value_name = "NAME", requires = "dead_letters", help_heading = DEAD_LETTERS)]
    step: Option<String>,

    /// Capture the records of this object, split as a job splits it (any shape, gzip or zstd).
    #[arg(long, value_name = "s3://BUCKET/KEY", value_parser = parse_object_url, help_heading = OBJECT)]
    object: Option<ObjectUrl>,
    /// Leave out the object's first N records.
    #[arg(long, value_name = "N", requires = "object", help_heading = OBJECT)]
    skip: Option<u64>,
}

/// Why records could not be captured or written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "pipeline `{pipeline}` has a `{kind}` source, which reads no topic; capture its --dead-letters or an --object instead"
    )]
    NoTopic { pipeline: String, kind: &'static str },
    #[error("pipeline `{0}` has no [dead_letters], so it keeps no dead letters to capture")]
    NoDeadLetters(String),
    #[error("topic `{topic}`: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("topic `{0}` does not exist")]
    NoSuchTopic(String),
    #[error("topic `{topic}` has no partition {partition} (it has {count}, from 0)")]
    NoSuchPartition { topic: String, partition: i32, count: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{object}: cannot decompress it: {source}")]
    Compressed {
        object: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{object}:{line}: not a dead letter: {source}")]
    NotALetter {
        object: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{object}:{line}: the letter's `{field}` is not valid base64")]
    Base64 { object: String, line: usize, field: &'static str },
    #[error("there is no object {0}")]
    NoObject(String),
    #[error("{object}: {source}")]
    Read {
        object: String,
        #[source]
        source: ReadError,
    },
    #[error(
        "{place} cannot be a line of {}: {reason}; write to {} instead, whose envelopes keep every record exactly",
        out.display(),
        suggestion.display()
    )]
    NotALine { place: String, out: PathBuf, reason: NotALine, suggestion: PathBuf },
    #[error("{} exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write an envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("the {0} task stopped unexpectedly")]
    TaskLost(&'static str),
}

/// One captured record, where it came from (written as its envelope's `origin`), and how to
/// name it in a message.
#[derive(Debug, Clone, PartialEq)]
struct Captured {
    record: SampleRecord,
    origin: Map<String, Value>,
    place: String,
}

/// A JSON object of `fields`.
fn json_object<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

/// Why reading a partition stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum PartitionEnd {
    /// The broker said the partition ends there.
    Eof,
    /// No record arrived for `--wait-ms`.
    Idle,
    /// `--limit` records were captured.
    Limit,
}

/// What was read of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PartitionRange {
    partition: i32,
    records: usize,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
    end: PartitionEnd,
}

/// Where the records were captured from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum CapturedFrom {
    Topic {
        pipeline: String,
        topic: String,
        partitions: Vec<PartitionRange>,
    },
    DeadLetters {
        pipeline: String,
        store: String,
        step: Option<String>,
        objects: Vec<String>,
        /// Letters holding only the part of a record the plugin named as failed.
        failed_parts: usize,
    },
    Object {
        url: String,
        compression: &'static str,
        shape: Option<String>,
        first_record: Option<u64>,
        last_record: Option<u64>,
    },
}

/// What the command printed: how many records, from where, into which file.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Summary {
    records: usize,
    from: CapturedFrom,
    out: String,
    /// `envelopes` or `lines`.
    format: &'static str,
}

fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("`{text}` is not a number of records of at least 1")),
        Ok(limit) => Ok(limit),
    }
}

/// An RFC 3339 time as milliseconds since the epoch, as Kafka stamps records.
fn parse_since(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|error| format!("`{text}` is not an RFC 3339 time such as 2026-12-07T09:00:00Z: {error}"))
}

pub async fn run(args: SamplesCaptureArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    // Refused before anything is read, so a long capture does not end in this.
    if args.out.exists() && !args.force {
        return Err(CaptureError::Exists(args.out.clone()).into());
    }
    let pipeline = match &args.pipeline {
        Some(name) => Some(find_pipeline(&config, name)?),
        None => None,
    };
    let (captured, from) = capture(&args, &config, pipeline.as_ref()).await?;
    let envelopes = is_envelopes_file(&args.out);
    let text = render(&captured, envelopes, &args.out)?;
    // What the file cannot keep is said, not refused: the records themselves are exact.
    if envelopes {
        let repeated = captured.iter().filter(|c| repeats_a_header(&c.record)).count();
        if repeated > 0 {
            eprintln!(
                "note: {repeated} of the records repeat a header name; an envelope keeps the last \
                 value of each name"
            );
        }
    } else {
        let dropped =
            captured.iter().filter(|c| c.record.key.is_some() || !c.record.headers.is_empty()).count();
        if dropped > 0 {
            eprintln!(
                "note: {dropped} of the records have a key or headers, which plain lines leave out; \
                 an --out named *.envelopes.jsonl keeps them"
            );
        }
    }
    write_atomically(&args.out, text.as_bytes(), args.force)?;
    let summary = Summary {
        records: captured.len(),
        from,
        out: args.out.display().to_string(),
        format: if envelopes { "envelopes" } else { "lines" },
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary_line(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the records from the one source the arguments name.
async fn capture(
    args: &SamplesCaptureArgs,
    config: &HostConfig,
    pipeline: Option<&Pipeline>,
) -> anyhow::Result<(Vec<Captured>, CapturedFrom)> {
    if let Some(url) = &args.object {
        let max_record_bytes = match pipeline.map(|pipeline| &pipeline.source) {
            Some(SourceConfig::S3Job(source)) => source.max_record_bytes,
            _ => default_max_record_bytes(),
        };
        let skip = args.skip.unwrap_or(0);
        let (captured, read) = object::capture(&config.s3, url, max_record_bytes, skip, args.limit).await?;
        let from = CapturedFrom::Object {
            url: url.to_string(),
            compression: read.compression,
            shape: read.shape,
            first_record: read.records.map(|(first, _)| first),
            last_record: read.records.map(|(_, last)| last),
        };
        return Ok((captured, from));
    }
    // clap requires --pipeline unless --object is given.
    let pipeline = pipeline.context("--pipeline is required")?;
    if args.dead_letters {
        let store = dead_letters::store_of(pipeline, &config.s3).await?;
        let (captured, read) = dead_letters::capture(&store, args.step.as_deref(), args.limit).await?;
        let from = CapturedFrom::DeadLetters {
            pipeline: pipeline.name.clone(),
            store: store.location,
            step: args.step.clone(),
            objects: read.objects,
            failed_parts: read.failed_parts,
        };
        return Ok((captured, from));
    }
    let consumer = pipeline.source.consumer().ok_or_else(|| CaptureError::NoTopic {
        pipeline: pipeline.name.clone(),
        kind: pipeline.source.kind(),
    })?;
    let request = topic::TopicRequest {
        kafka: config.kafka.clone(),
        topic: consumer.topic.to_owned(),
        partitions: args.partitions.clone(),
        offset: args.offset,
        since_ms: args.since,
        limit: args.limit,
        wait: Duration::from_millis(args.wait_ms),
    };
    let (captured, partitions) = topic::capture(request).await?;
    let from =
        CapturedFrom::Topic { pipeline: pipeline.name.clone(), topic: consumer.topic.to_owned(), partitions };
    Ok((captured, from))
}

/// The pipeline named `name` in the pipelines directory, read without loading any plugin:
/// capturing needs only where its records are, and works while a plugin it names is broken.
fn find_pipeline(config: &HostConfig, name: &str) -> anyhow::Result<Pipeline> {
    let dir = &config.pipelines.dir;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the pipelines directory {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut names = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        match load_pipeline_file(&file) {
            Ok(pipeline) if pipeline.name == name => return Ok(pipeline),
            Ok(pipeline) => names.push(pipeline.name),
            Err(error) => unreadable.push(error.to_string()),
        }
    }
    let mut message =
        format!("no pipeline named `{name}` in {} (there are: {})", dir.display(), names.join(", "));
    if !unreadable.is_empty() {
        message.push_str(&format!("; files that could not be read:\n{}", unreadable.join("\n")));
    }
    bail!(message)
}

/// The file's text: an envelope per record, or each record's value as a line.
///
/// # Errors
/// [`CaptureError::NotALine`] for the first record a plain line cannot hold exactly.
fn render(captured: &[Captured], envelopes: bool, out: &Path) -> Result<String, CaptureError> {
    let mut text = String::new();
    for record in captured {
        if envelopes {
            text.push_str(
                &envelope_line(&record.record, Some(&record.origin)).map_err(CaptureError::Envelope)?,
            );
        } else {
            let line = plain_line(&record.record.value).map_err(|reason| CaptureError::NotALine {
                place: record.place.clone(),
                out: out.to_owned(),
                reason,
                suggestion: envelopes_name(out),
            })?;
            text.push_str(line);
        }
        text.push('\n');
    }
    Ok(text)
}

/// Whether two of the record's headers have the same name (Kafka allows it).
fn repeats_a_header(record: &SampleRecord) -> bool {
    let mut names: Vec<&str> = record.headers.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// `out` renamed to an envelopes file: `x.jsonl` becomes `x.envelopes.jsonl`.
fn envelopes_name(out: &Path) -> PathBuf {
    let name = out.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    out.with_file_name(format!("{stem}.envelopes.jsonl"))
}

/// Writes `bytes` to a new file beside `out`, then renames it over `out`, so readers see no
/// file or the whole one.
///
/// # Errors
/// [`CaptureError::Exists`] when `out` exists and `force` is off; [`CaptureError::Write`].
fn write_atomically(out: &Path, bytes: &[u8], force: bool) -> Result<(), CaptureError> {
    if out.exists() && !force {
        return Err(CaptureError::Exists(out.to_owned()));
    }
    let name = out.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = out.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = std::fs::File::create_new(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, out));
    written.map_err(|source| {
        // Nothing half-written is left behind; the error that matters is the write's.
        let _ = std::fs::remove_file(&temporary);
        CaptureError::Write { path: out.to_owned(), source }
    })
}

/// The summary as one line for people.
fn summary_line(summary: &Summary) -> String {
    let records = match summary.records {
        1 => "1 record".to_owned(),
        n => format!("{n} records"),
    };
    let from = match &summary.from {
        CapturedFrom::Topic { topic, partitions, .. } => {
            let ranges: Vec<String> = partitions
                .iter()
                .map(|range| match (range.first_offset, range.last_offset) {
                    (Some(first), Some(last)) if first == last => {
                        format!("partition {} offset {first}", range.partition)
                    }
                    (Some(first), Some(last)) => {
                        format!("partition {} offsets {first}-{last}", range.partition)
                    }
                    _ => format!("partition {} none", range.partition),
                })
                .collect();
            format!("topic {topic} ({})", ranges.join(", "))
        }
        CapturedFrom::DeadLetters { pipeline, store, step, objects, failed_parts } => {
            let objects = match objects.len() {
                1 => "1 dead-letter object".to_owned(),
                n => format!("{n} dead-letter objects"),
            };
            let step = step.as_ref().map(|step| format!(" refused by {step}")).unwrap_or_default();
            format!(
                "{objects} of pipeline {pipeline} under {store}{step} ({failed_parts} of them only the failed part of a record)"
            )
        }
        CapturedFrom::Object { url, compression, shape, first_record, last_record } => {
            let numbers = match (first_record, last_record) {
                (Some(first), Some(last)) => format!(", records {first}-{last}"),
                _ => String::new(),
            };
            let shape = shape.as_deref().unwrap_or("no records");
            format!("{url} ({shape}, compression {compression}{numbers})")
        }
    };
    format!("captured {records} from {from} into {}", summary.out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        args: SamplesCaptureArgs,
    }

    fn parse(args: &[&str]) -> Result<SamplesCaptureArgs, clap::Error> {
        let all = ["capture"].iter().chain(args).copied();
        Command::try_parse_from(all).map(|command| command.args)
    }

    fn error_of(args: &[&str]) -> String {
        parse(args).expect_err("refused").to_string()
    }

    #[test]
    fn the_topic_is_the_default_source_and_options_of_another_conflict() {
        let args = parse(&["--pipeline", "p", "--out", "o.jsonl", "--partition", "2", "--partition", "0"])
            .expect("topic capture");
        assert_eq!((args.partitions, args.limit, args.wait_ms), (vec![2, 0], 1000, 5000));
        assert!(!args.dead_letters && args.object.is_none());

        let dead = error_of(&["--pipeline", "p", "--out", "o", "--dead-letters", "--offset", "3"]);
        assert!(dead.contains("--offset") && dead.contains("cannot be used with"), "{dead}");
        let both = error_of(&["--pipeline", "p", "--out", "o", "--dead-letters", "--object", "s3://b/k"]);
        assert!(both.contains("cannot be used with"), "{both}");
        let step = error_of(&["--pipeline", "p", "--out", "o", "--step", "normalize"]);
        assert!(step.contains("--dead-letters"), "{step}");
        let skip = error_of(&["--pipeline", "p", "--out", "o", "--skip", "3"]);
        assert!(skip.contains("--object"), "{skip}");
    }

    #[test]
    fn a_pipeline_is_needed_except_for_an_object() {
        assert!(error_of(&["--out", "o"]).contains("--pipeline"));
        let args =
            parse(&["--out", "o", "--object", "s3://bucket/a/b.json.gz", "--skip", "2"]).expect("object");
        assert_eq!(args.object, Some(ObjectUrl { bucket: "bucket".into(), key: "a/b.json.gz".into() }));
        assert_eq!(args.skip, Some(2));
    }

    #[test]
    fn values_are_checked_where_they_are_given() {
        for (args, expected) in [
            (&["--limit", "0"][..], "at least 1"),
            (&["--offset=-1"], "--offset"),
            (&["--partition", "x"], "--partition"),
            (&["--since", "yesterday"], "not an RFC 3339 time"),
            (&["--object", "https://b/k"], "does not start with s3://"),
            (&["--object", "s3://bucket"], "names no key"),
            (&["--object", "s3://bucket/"], "names no key"),
            (&["--object", "s3://-b/k"], "not a bucket name"),
        ] {
            let all: Vec<&str> = ["--pipeline", "p", "--out", "o"].iter().chain(args).copied().collect();
            let error = error_of(&all);
            assert!(error.contains(expected), "{args:?}: {error}");
        }
        let since =
            parse(&["--pipeline", "p", "--out", "o", "--since", "2026-12-07T10:00:00+01:00"]).expect("since");
        assert_eq!(since.since, Some(1_796_634_000_000));
    }

    fn record(value: &[u8], place: &str) -> Captured {
        Captured {
            record: SampleRecord { key: Some(b"k".to_vec()), value: value.to_vec(), headers: Vec::new() },
            origin: json_object([("offset", 7.into())]),
            place: place.to_owned(),
        }
    }

    #[test]
    fn plain_lines_refuse_what_a_line_cannot_hold_and_name_an_envelopes_file() {
        let records =
            [record(b"{\"a\": 1}", "first"), record(b"{\n  \"a\": 1\n}", "topic t partition 1 offset 4")];
        assert_eq!(render(&records[..1], false, Path::new("x.jsonl")).expect("plain"), "{\"a\": 1}\n");
        let error = render(&records, false, Path::new("dir/x.jsonl")).expect_err("a line break").to_string();
        assert_eq!(
            error,
            "topic t partition 1 offset 4 cannot be a line of dir/x.jsonl: it holds a line break; write to \
             dir/x.envelopes.jsonl instead, whose envelopes keep every record exactly"
        );
        let binary =
            render(&[record(&[0xff], "r")], false, Path::new("x.txt")).expect_err("binary").to_string();
        assert!(binary.contains("not UTF-8") && binary.contains("x.txt.envelopes.jsonl"), "{binary}");

        let text = render(&records, true, Path::new("x.envelopes.jsonl")).expect("envelopes");
        let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        assert_eq!(
            lines[1],
            serde_json::json!({"key": "k", "raw": "{\n  \"a\": 1\n}", "origin": {"offset": 7}})
        );
    }

    #[test]
    fn a_repeated_header_name_is_noticed() {
        let headers = |names: &[&str]| SampleRecord {
            key: None,
            value: Vec::new(),
            headers: names.iter().map(|name| ((*name).to_owned(), Vec::new())).collect(),
        };
        assert!(repeats_a_header(&headers(&["a", "b", "a"])));
        assert!(!repeats_a_header(&headers(&["a", "b"])));
    }

    #[test]
    fn the_file_appears_whole_and_replaces_another_only_when_forced() {
        let dir = tempfile::tempdir().expect("dir");
        let out = dir.path().join("c.envelopes.jsonl");
        write_atomically(&out, b"one\n", false).expect("new file");
        let error = write_atomically(&out, b"two\n", false).expect_err("exists").to_string();
        assert!(error.ends_with("exists; pass --force to replace it"), "{error}");
        assert_eq!(std::fs::read(&out).expect("read"), b"one\n");
        write_atomically(&out, b"two\n", true).expect("forced");
        assert_eq!(std::fs::read(&out).expect("read"), b"two\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        let missing_dir = dir.path().join("no/such/c.jsonl");
        assert!(write_atomically(&missing_dir, b"x", false).is_err());
    }

    #[test]
    fn the_summary_says_how_many_from_where_into_which_file() {
        let range = |partition, first, last, records| PartitionRange {
            partition,
            records,
            first_offset: first,
            last_offset: last,
            end: PartitionEnd::Eof,
        };
        let topic = Summary {
            records: 4,
            from: CapturedFrom::Topic {
                pipeline: "events".into(),
                topic: "t".into(),
                partitions: vec![
                    range(0, Some(3), Some(5), 3),
                    range(1, None, None, 0),
                    range(2, Some(9), Some(9), 1),
                ],
            },
            out: "c.envelopes.jsonl".into(),
            format: "envelopes",
        };
        assert_eq!(
            summary_line(&topic),
            "captured 4 records from topic t (partition 0 offsets 3-5, partition 1 none, partition 2 offset 9) \
             into c.envelopes.jsonl"
        );
        let json = serde_json::to_value(&topic).expect("JSON");
        assert_eq!(json["from"]["kind"], "topic");
        assert_eq!(
            json["from"]["partitions"][0],
            serde_json::json!({"partition": 0, "records": 3, "first_offset": 3, "last_offset": 5, "end": "eof"})
        );

        let letters = Summary {
            records: 1,
            from: CapturedFrom::DeadLetters {
                pipeline: "events".into(),
                store: "s3://b/dl/".into(),
                step: Some("normalize".into()),
                objects: vec!["s3://b/dl/t+0+1.jsonl".into()],
                failed_parts: 1,
            },
            out: "d.jsonl".into(),
            format: "lines",
        };
        assert_eq!(
            summary_line(&letters),
            "captured 1 record from 1 dead-letter object of pipeline events under s3://b/dl/ refused by normalize \
             (1 of them only the failed part of a record) into d.jsonl"
        );
        let file = Summary {
            records: 2,
            from: CapturedFrom::Object {
                url: "s3://b/k.gz".into(),
                compression: "gzip",
                shape: Some("a JSON array".into()),
                first_record: Some(3),
                last_record: Some(4),
            },
            out: "o.jsonl".into(),
            format: "lines",
        };
        assert_eq!(
            summary_line(&file),
            "captured 2 records from s3://b/k.gz (a JSON array, compression gzip, records 3-4) into o.jsonl"
        );
    }

    #[test]
    fn records_are_kept_from_the_start_offset_and_since_time() {
        assert!(topic::keep(0, None, None, None));
        assert!(!topic::keep(2, Some(5), Some(3), None));
        assert!(topic::keep(3, Some(5), Some(3), Some(5)));
        assert!(!topic::keep(3, Some(4), None, Some(5)));
        assert!(!topic::keep(3, None, None, Some(5)), "no timestamp, not known to be recent");
    }

    #[test]
    fn partitions_asked_for_are_read_in_order_once_and_must_exist() {
        assert_eq!(topic::select_partitions("t", &[0, 1, 2], &[]).expect("all"), [0, 1, 2]);
        assert_eq!(topic::select_partitions("t", &[0, 1, 2], &[2, 0, 2]).expect("asked"), [0, 2]);
        let error = topic::select_partitions("t", &[0, 1], &[4]).expect_err("missing").to_string();
        assert_eq!(error, "topic `t` has no partition 4 (it has 2, from 0)");
    }

    #[test]
    fn a_dead_letter_gives_back_its_record_with_key_headers_and_why() {
        let line = br#"{"topic":"events","partition":2,"offset":41,"key":"k","headers":[["h",{"base64":"/w=="}]],"value":"[{\"event\":\"x\"}]","part":true,"reason":"bad","step":"normalize","plugin_version":"normalize@1.0.0","trapped":false,"failed_at":"2026-12-07T09:00:00.000Z"}"#;
        let (letter, captured) = dead_letters::letter_record("s3://b/dl/x.jsonl", 3, line).expect("letter");
        assert!(letter.part);
        assert_eq!(
            captured.record,
            SampleRecord {
                key: Some(b"k".to_vec()),
                value: br#"[{"event":"x"}]"#.to_vec(),
                headers: vec![("h".into(), vec![0xff])],
            }
        );
        assert_eq!(
            Value::Object(captured.origin),
            serde_json::json!({"step": "normalize", "reason": "bad", "plugin_version": "normalize@1.0.0",
                "failed_at": "2026-12-07T09:00:00.000Z", "part": true, "trapped": false,
                "dead_letter": "s3://b/dl/x.jsonl:3", "topic": "events", "partition": 2, "offset": 41})
        );

        let job = br#"{"job_id":"00000000-0000-0000-0000-000000000000","bucket":"b","key":"in.json","etag":"e","record":3,"value":{"base64":"AP8="},"reason":"r","step":"s","plugin_version":"s@1","trapped":false,"failed_at":"2026-01-01T00:00:00Z"}"#;
        let (_, captured) = dead_letters::letter_record("dl/x.jsonl", 1, job).expect("job letter");
        assert_eq!((captured.record.key, captured.record.value), (None, vec![0x00, 0xff]));
        assert_eq!(
            (captured.origin["bucket"].as_str(), captured.origin["record"].as_u64()),
            (Some("b"), Some(3))
        );

        let error = dead_letters::letter_record("dl/x.jsonl", 5, b"{\"value\": 1}").expect_err("no letter");
        assert!(error.to_string().starts_with("dl/x.jsonl:5: not a dead letter"), "{error}");
        let corrupt = String::from_utf8_lossy(line).replace("/w==", "%%");
        let error = dead_letters::letter_record("dl/x.jsonl", 6, corrupt.as_bytes()).expect_err("base64");
        assert_eq!(error.to_string(), "dl/x.jsonl:6: the letter's `headers` is not valid base64");
    }
}
