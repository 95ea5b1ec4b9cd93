//! `sluice samples capture` against the real broker and S3 server: a pipeline's topic, its dead
//! letters and an S3 object written byte for byte into files `sluice plugin test` reads, which
//! then give the same results as the records did where they were.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value, json};
use sluice_e2e::artifacts::{plugin_path, plugins_dir, repo_pipeline, repo_root, sluice_bin};
use sluice_e2e::host::SluiceHost;
use sluice_e2e::{ProducedRecord, Services, TestScope, eventually, gzip, require_services};

const PLUGIN: &str = "normalize-sendgrid-events";

/// A host configuration and pipelines directory for running `sluice` commands, with no host
/// serving them.
struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Workspace {
    fn new(services: &Services, pipelines: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pipelines_dir = dir.path().join("pipelines");
        std::fs::create_dir(&pipelines_dir).expect("pipelines dir");
        for (name, text) in pipelines {
            std::fs::write(pipelines_dir.join(format!("{name}.toml")), text).expect("write pipeline");
        }
        let config = dir.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!(
                "{}[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\n[pipelines]\ndir = \"{}\"\n",
                services.host_config(),
                plugins_dir().display(),
                dir.path().join("cache").display(),
                pipelines_dir.display()
            ),
        )
        .expect("write config");
        Workspace { dir, config, env: services.host_env() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sluice samples capture ARGS --config …`.
    fn capture(&self, args: &[&str]) -> Output {
        Command::new(sluice_bin())
            .args(["samples", "capture"])
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(key, value)| (*key, value.as_str())))
            .output()
            .expect("run sluice samples capture")
    }
}

/// The summary a successful `--json` capture printed.
fn summary(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "capture failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}{stderr}", String::from_utf8_lossy(&output.stdout)))
}

/// A failed command's stderr, checked to be an error and not a crash.
fn refused(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Bytes as an envelope holds them, the way the samples format defines it (not the host's code).
fn json_bytes(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!({"base64": BASE64.encode(bytes)}),
    }
}

fn bytes_of(value: &Value) -> Vec<u8> {
    match value {
        Value::String(text) => text.as_bytes().to_vec(),
        Value::Object(object) => {
            BASE64.decode(object["base64"].as_str().expect("base64 text")).expect("valid base64")
        }
        other => panic!("not bytes: {other}"),
    }
}

/// One line of a captured envelopes file, decoded.
#[derive(Debug)]
struct Envelope {
    key: Option<Vec<u8>>,
    raw: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    origin: Value,
}

fn read_envelopes(path: &Path) -> Vec<Envelope> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines()
        .map(|line| {
            let envelope: Value = serde_json::from_str(line).expect("an envelope is JSON");
            assert!(envelope.get("value").is_none(), "captured records are raw: {line}");
            let headers = envelope.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
            Envelope {
                key: envelope.get("key").filter(|key| !key.is_null()).map(bytes_of),
                raw: bytes_of(&envelope["raw"]),
                headers: headers.iter().map(|(name, value)| (name.clone(), bytes_of(value))).collect(),
                origin: envelope["origin"].clone(),
            }
        })
        .collect()
}

/// `record`'s headers as an envelope holds them: by name.
fn sorted_headers(record: &ProducedRecord) -> Vec<(String, Vec<u8>)> {
    let mut headers = record.headers.clone();
    headers.sort();
    headers
}

/// `sluice plugin test` of the plugin on `input`: its exit status and report.
fn plugin_test(input: &Path, expect: Option<&Path>) -> (Output, Value) {
    let mut command = Command::new(sluice_bin());
    command.args(["plugin", "test"]).arg(plugin_path(PLUGIN)).arg("--input").arg(input);
    if let Some(expect) = expect {
        command.arg("--expect").arg(expect);
    }
    let output = command.output().expect("run sluice plugin test");
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// The offsets consumer group `group` has committed on `topic`'s partitions.
async fn committed(services: &Services, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let (brokers, group, topic) = (services.kafka_brokers.clone(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = sluice_e2e::kafka::client_config(&brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("offsets consumer");
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(&topic, partition);
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
        committed.elements().iter().map(|element| element.offset()).collect()
    })
    .await
    .expect("offsets task")
}

/// The repository's SendGrid pipeline on `topic` as `group`, its outputs under the scope.
fn events_pipeline(scope: &TestScope, topic: &str, group: &str) -> String {
    let quoted = |text: &str| format!("\"{text}\"");
    let prefix = scope.prefix();
    repo_pipeline(
        "sendgrid-events",
        &[
            ("source.topic", quoted(topic)),
            ("source.group", quoted(group)),
            ("source.batch_records", "50".into()),
            ("source.batch_max_ms", "300".into()),
            ("source.members", "1".into()),
            ("sinks.bucket", quoted(scope.bucket())),
            ("sinks.prefix", quoted(&format!("{prefix}table"))),
            ("sinks.rotate_ms", "2000".into()),
            ("dead_letters.bucket", quoted(scope.bucket())),
            ("dead_letters.prefix", quoted(&format!("{prefix}dead-letters"))),
        ],
    )
}

/// The webhook bodies of the plugin's own samples, one per line.
fn sample_bodies() -> Vec<String> {
    let path = repo_root().join("plugins").join(PLUGIN).join("samples/input.jsonl");
    let text = std::fs::read_to_string(&path).expect("sample input");
    text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_records_are_captured_byte_for_byte_and_replay_like_the_originals() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "samples_capture_topic").await.expect("scope");
    let topic = scope.create_topic("events", 3).await.expect("topic");
    let group = scope.group_id("pipeline");
    let workspace = Workspace::new(services, &[("events", events_pipeline(&scope, &topic, &group))]);

    // The samples two per partition in file order, so partition-then-offset order is the file's;
    // then, in partition 2, the first body pretty-printed and a body that is not UTF-8.
    let bodies = sample_bodies();
    assert_eq!(bodies.len(), 6, "the plugin's samples changed");
    let mut records: Vec<ProducedRecord> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            ProducedRecord::new(body.as_bytes())
                .with_key(format!("body-{index}"))
                .with_header("source", "samples")
                .with_header("n", index.to_string())
                .to_partition((index / 2) as i32)
        })
        .collect();
    let first: Value = serde_json::from_str(&bodies[0]).expect("sample body is JSON");
    let pretty = serde_json::to_string_pretty(&first).expect("pretty");
    assert!(pretty.contains('\n'));
    records.push(
        ProducedRecord::new(pretty.as_bytes())
            .with_key("pretty")
            .with_header("bin", b"\xff\x00".to_vec())
            .to_partition(2),
    );
    records.push(
        ProducedRecord::new(b"\xc3\x28\xff\x00".to_vec()).with_key(b"\xfe\x01".to_vec()).to_partition(2),
    );
    let positions = scope.produce(&topic, &records).await.expect("produce");
    let mut produced: Vec<((i32, i64), &ProducedRecord)> = positions.iter().copied().zip(&records).collect();
    produced.sort_by_key(|(position, _)| *position);

    // Everything, in partition order then offset.
    let all = workspace.path("all.envelopes.jsonl");
    let report = summary(&workspace.capture(&[
        "--pipeline",
        "sendgrid-events",
        "--out",
        all.to_str().expect("path"),
        "--json",
    ]));
    assert_eq!(report["records"], 8, "{report}");
    assert_eq!(report["format"], "envelopes");
    assert_eq!(report["from"]["topic"], topic.as_str());
    let ranges = report["from"]["partitions"].as_array().expect("partitions");
    assert_eq!(
        ranges.iter().map(|range| range["records"].as_u64()).collect::<Vec<_>>(),
        [Some(2), Some(2), Some(4)]
    );
    let captured = read_envelopes(&all);
    assert_eq!(captured.len(), produced.len());
    for (envelope, ((partition, offset), record)) in captured.iter().zip(&produced) {
        assert_eq!(envelope.raw, record.value, "value at {partition}/{offset}");
        assert_eq!(envelope.key, record.key, "key at {partition}/{offset}");
        assert_eq!(envelope.headers, sorted_headers(record), "headers at {partition}/{offset}");
        assert_eq!(envelope.origin["topic"], topic.as_str());
        assert_eq!(
            (envelope.origin["partition"].as_i64(), envelope.origin["offset"].as_i64()),
            (Some(i64::from(*partition)), Some(*offset))
        );
        assert!(
            envelope.origin["timestamp_ms"].as_i64().is_some_and(|stamp| stamp > 0),
            "{:?}",
            envelope.origin
        );
    }
    assert_eq!(captured[6].raw, pretty.as_bytes(), "the pretty-printed body keeps its spacing");

    // Capturing joined no group and committed nothing: the pipeline's group has no offsets.
    let offsets = committed(services, &group, &topic, 3).await;
    assert!(
        offsets.iter().all(|offset| *offset == Offset::Invalid),
        "the pipeline's group has commits: {offsets:?}"
    );

    // The plugin gives the same result on the captured file as on the records as produced.
    let originals = workspace.path("originals.envelopes.jsonl");
    let lines: Vec<String> = produced
        .iter()
        .map(|(_, record)| {
            let headers: Map<String, Value> =
                record.headers.iter().map(|(name, value)| (name.clone(), json_bytes(value))).collect();
            let key = record.key.as_deref().map_or(Value::Null, json_bytes);
            json!({"key": key, "raw": json_bytes(&record.value), "headers": headers}).to_string()
        })
        .collect();
    std::fs::write(&originals, lines.join("\n") + "\n").expect("write originals");
    let (on_captured, captured_report) = plugin_test(&all, None);
    let (on_originals, originals_report) = plugin_test(&originals, None);
    assert!(
        on_captured.status.success() && on_originals.status.success(),
        "{}",
        String::from_utf8_lossy(&on_captured.stderr)
    );
    assert_eq!(captured_report, originals_report);
    let failures = captured_report["failures"].as_array().expect("failures");
    assert!(
        failures.iter().any(|failure| failure["index"] == 7 && failure.get("part").is_none()),
        "the body that is not UTF-8 fails whole: {captured_report}"
    );

    // The first six are the plugin's samples: captured, they match its expected result.
    let six = workspace.path("six.envelopes.jsonl");
    let report = summary(&workspace.capture(&[
        "--pipeline",
        "sendgrid-events",
        "--out",
        six.to_str().expect("path"),
        "--limit",
        "6",
        "--json",
    ]));
    assert_eq!(report["records"], 6, "{report}");
    let expected = repo_root().join("plugins").join(PLUGIN).join("samples/expected.json");
    let (matched, _) = plugin_test(&six, Some(&expected));
    let stderr = String::from_utf8_lossy(&matched.stderr);
    assert!(matched.status.success() && stderr.contains("matches"), "{stderr}");

    // One partition from an offset on.
    let fifth_offset = positions[5].1;
    let tail = workspace.path("tail.envelopes.jsonl");
    let offset = fifth_offset.to_string();
    let report = summary(&workspace.capture(&[
        "--pipeline",
        "sendgrid-events",
        "--out",
        tail.to_str().expect("path"),
        "--partition",
        "2",
        "--offset",
        &offset,
        "--json",
    ]));
    let expected_tail: Vec<&ProducedRecord> = produced
        .iter()
        .filter(|((p, o), _)| *p == 2 && *o >= fifth_offset)
        .map(|(_, record)| *record)
        .collect();
    assert_eq!(report["records"], expected_tail.len(), "{report}");
    let values: Vec<Vec<u8>> = read_envelopes(&tail).into_iter().map(|envelope| envelope.raw).collect();
    assert_eq!(values, expected_tail.iter().map(|record| record.value.clone()).collect::<Vec<_>>());

    // Two partitions, limited: the first records in partition order.
    let some = workspace.path("some.envelopes.jsonl");
    let report = summary(&workspace.capture(&[
        "--pipeline",
        "sendgrid-events",
        "--out",
        some.to_str().expect("path"),
        "--partition",
        "2",
        "--partition",
        "0",
        "--limit",
        "3",
        "--json",
    ]));
    assert_eq!(report["records"], 3, "{report}");
    let keys: Vec<Option<Vec<u8>>> = read_envelopes(&some).into_iter().map(|envelope| envelope.key).collect();
    assert_eq!(keys, [Some(b"body-0".to_vec()), Some(b"body-1".to_vec()), Some(b"body-4".to_vec())]);

    // Plain lines for records a line holds exactly; timestamps filter.
    let plain = workspace.path("p0.jsonl");
    let output = workspace.capture(&[
        "--pipeline",
        "sendgrid-events",
        "--out",
        plain.to_str().expect("path"),
        "--partition",
        "0",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.starts_with("captured 2 records from topic ")
            && stdout.contains(plain.to_str().expect("path")),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&plain).expect("plain"), format!("{}\n{}\n", bodies[0], bodies[1]));
    let since = |time: &str, name: &str| {
        let out = workspace.path(name);
        summary(&workspace.capture(&[
            "--pipeline",
            "sendgrid-events",
            "--out",
            out.to_str().expect("path"),
            "--since",
            time,
            "--json",
        ]))
    };
    assert_eq!(since("2000-01-01T00:00:00Z", "old.envelopes.jsonl")["records"], 8);
    assert_eq!(since("2100-01-01T00:00:00+02:00", "future.envelopes.jsonl")["records"], 0);

    scope.cleanup().await.expect("cleanup");
}

/// The dead letters under `prefix`, parsed (swept ones left out).
async fn dead_letters(scope: &TestScope, prefix: &str) -> Vec<Value> {
    let mut letters = Vec::new();
    for key in scope.s3().list_keys(scope.bucket(), prefix).await.expect("list dead letters") {
        if !key.ends_with(".jsonl") || key.contains("/swept/") {
            continue;
        }
        let body = scope.s3().get_object(scope.bucket(), &key).await.expect("get dead letters");
        for line in body.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            letters.push(serde_json::from_slice(line).expect("a dead letter is JSON"));
        }
    }
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_captured_once_each_with_why_and_fail_again_in_plugin_test() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "samples_capture_dead").await.expect("scope");
    let topic = scope.create_topic("events", 2).await.expect("topic");
    let group = scope.group_id("pipeline");
    let pipeline = events_pipeline(&scope, &topic, &group);
    let host =
        SluiceHost::start(&services.host_config(), &[("events", pipeline)], &services.host_env()).await;

    let event = |id: &str, kind: &str| {
        json!({"email": format!("{id}@example.com"), "timestamp": 1_700_000_000, "event": kind, "sg_event_id": id,
               "sg_message_id": "msg.1", "category": ["news"], "mail_id": "m-1"})
    };
    let bad_event = event("bad-1", "teleported");
    let mixed = serde_json::to_vec(&json!([event("ok-1", "open"), bad_event])).expect("body");
    let refused = [
        ProducedRecord::new(&b"{\"not\": \"an array\"}"[..])
            .with_key("object")
            .with_header("tenant", "eu")
            .to_partition(0),
        ProducedRecord::new(b"\xff\xfe\x00".to_vec())
            .with_key(b"\x01\xff".to_vec())
            .with_header("bin", b"\x80".to_vec())
            .to_partition(1),
        ProducedRecord::new(mixed).with_key("mixed").to_partition(0),
    ];
    let valid = ProducedRecord::new(serde_json::to_vec(&json!([event("ok-2", "delivered")])).expect("body"))
        .to_partition(1);
    let mut records = refused.to_vec();
    records.push(valid);
    let positions = scope.produce(&topic, &records).await.expect("produce");

    let letters_prefix = format!("{}dead-letters/", scope.prefix());
    let stored = eventually(Duration::from_secs(90), || async {
        dead_letters(&scope, &letters_prefix).await.len() >= refused.len()
            && scope.group_caught_up(&group, &topic).await
    })
    .await;
    assert!(stored, "the dead letters were not written:\n{}", host.log());
    let letters_before = dead_letters(&scope, &letters_prefix).await;
    assert_eq!(letters_before.len(), refused.len(), "{letters_before:?}");

    let out = host.dir().join("refused.envelopes.jsonl");
    let output = host.cli(&[
        "samples",
        "capture",
        "--pipeline",
        "sendgrid-events",
        "--dead-letters",
        "--out",
        out.to_str().expect("path"),
        "--json",
    ]);
    let report = summary(&output);
    assert_eq!(report["records"], 3, "{report}");
    assert_eq!(report["from"]["kind"], "dead-letters");
    assert_eq!(report["from"]["failed_parts"], 1, "{report}");
    let captured = read_envelopes(&out);
    let coordinates: BTreeSet<(i64, i64)> = captured
        .iter()
        .map(|envelope| {
            (
                envelope.origin["partition"].as_i64().expect("partition"),
                envelope.origin["offset"].as_i64().expect("offset"),
            )
        })
        .collect();
    let expected: BTreeSet<(i64, i64)> = positions[..3].iter().map(|(p, o)| (i64::from(*p), *o)).collect();
    assert_eq!((coordinates, captured.len()), (expected, 3), "each refused record once");
    for (record, (partition, offset)) in refused.iter().zip(&positions) {
        let envelope = captured
            .iter()
            .find(|e| {
                e.origin["partition"].as_i64() == Some(i64::from(*partition))
                    && e.origin["offset"].as_i64() == Some(*offset)
            })
            .expect("captured");
        assert_eq!(envelope.key, record.key);
        assert_eq!(envelope.headers, sorted_headers(record));
        assert_eq!(envelope.origin["topic"], topic.as_str());
        assert_eq!(envelope.origin["step"], PLUGIN);
        assert!(
            envelope.origin["reason"].as_str().is_some_and(|reason| !reason.is_empty()),
            "{:?}",
            envelope.origin
        );
        assert!(envelope.origin["plugin_version"].as_str().is_some_and(|v| v.starts_with(PLUGIN)));
        assert!(envelope.origin["failed_at"].is_string());
        if record.key.as_deref() == Some(b"mixed") {
            // Only the failed event of the body was a dead letter: that part is the record.
            assert_eq!(envelope.origin["part"], true);
            let part: Value = serde_json::from_slice(&envelope.raw).expect("the part is JSON");
            assert_eq!(part, json!([bad_event]));
        } else {
            assert_eq!(envelope.origin["part"], false);
            assert_eq!(envelope.raw, record.value, "a whole record's exact bytes");
        }
    }

    // The plugin refuses each captured record again.
    let (output, result) = plugin_test(&out, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let failed: BTreeSet<u64> =
        result["failures"].as_array().expect("failures").iter().filter_map(|f| f["index"].as_u64()).collect();
    assert_eq!(failed, BTreeSet::from([0, 1, 2]), "{result}");
    assert_eq!(result["outputs"]["events"], json!([]), "{result}");

    // Capturing moves nothing, and a step filter takes only that step's letters.
    assert_eq!(dead_letters(&scope, &letters_prefix).await, letters_before);
    let other = host.dir().join("other.envelopes.jsonl");
    let output = host.cli(&[
        "samples",
        "capture",
        "--pipeline",
        "sendgrid-events",
        "--dead-letters",
        "--step",
        "sink x",
        "--out",
        other.to_str().expect("path"),
        "--json",
    ]);
    assert_eq!(summary(&output)["records"], 0);
    let output = host.cli(&[
        "samples",
        "capture",
        "--pipeline",
        "sendgrid-events",
        "--dead-letters",
        "--step",
        PLUGIN,
        "--out",
        other.to_str().expect("path"),
        "--force",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("captured 3 records from ")
            && stdout.contains("(1 of them only the failed part of a record)"),
        "{stdout}"
    );

    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_is_captured_as_a_job_reads_it() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "samples_capture_object").await.expect("scope");
    let workspace = Workspace::new(services, &[]);
    let elements = [r#"{"id": 1, "name": "a  b"}"#, r#"{"id":2}"#, r#""text""#, "42", "[1,\n    2]"];
    let array = format!(
        "\u{feff}[\n  {},\n  {} ,{}, {}\n,  {}\n]\n",
        elements[0], elements[1], elements[2], elements[3], elements[4]
    );
    let key = scope.key("input/records.json.gz");
    scope.s3().put_object(scope.bucket(), &key, gzip(array.as_bytes())).await.expect("put object");
    let url = format!("s3://{}/{key}", scope.bucket());

    let out = workspace.path("object.envelopes.jsonl");
    let report =
        summary(&workspace.capture(&["--object", &url, "--out", out.to_str().expect("path"), "--json"]));
    assert_eq!(report["records"], elements.len(), "{report}");
    assert_eq!(report["from"]["compression"], "gzip");
    assert_eq!(report["from"]["shape"], "a JSON array");
    let captured = read_envelopes(&out);
    let values: Vec<&[u8]> = captured.iter().map(|envelope| envelope.raw.as_slice()).collect();
    assert_eq!(values, elements.iter().map(|element| element.as_bytes()).collect::<Vec<_>>());
    for (number, envelope) in captured.iter().enumerate() {
        assert_eq!(envelope.origin["bucket"], scope.bucket());
        assert_eq!(envelope.origin["key"], key.as_str());
        assert_eq!(envelope.origin["record"], number + 1);
        assert!(envelope.key.is_none() && envelope.headers.is_empty());
    }

    let some = workspace.path("some.jsonl");
    let output = workspace.capture(&[
        "--object",
        &url,
        "--out",
        some.to_str().expect("path"),
        "--skip",
        "1",
        "--limit",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("records 2-3"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&some).expect("plain"), format!("{}\n{}\n", elements[1], elements[2]));

    let missing = format!("s3://{}/{}", scope.bucket(), scope.key("input/missing.json"));
    let stderr = refused(
        &workspace.capture(&[
            "--object",
            &missing,
            "--out",
            workspace.path("m.jsonl").to_str().expect("path"),
        ]),
        1,
    );
    assert!(stderr.contains(&format!("there is no object {missing}")), "{stderr}");

    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_that_cannot_be_written_exactly_or_read_at_all_are_refused() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "samples_capture_refusals").await.expect("scope");
    let topic = scope.create_topic("events", 2).await.expect("topic");
    let group = scope.group_id("pipeline");
    let no_letters =
        format!("name = \"bare\"\n[source]\nkind = \"kafka\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\n");
    let job = repo_pipeline("user-status", &[]);
    let ghost = format!(
        "name = \"ghost\"\n[source]\nkind = \"kafka\"\ntopic = \"{}\"\ngroup = \"{group}\"\n",
        scope.topic("never-created")
    );
    let workspace = Workspace::new(
        services,
        &[
            ("events", events_pipeline(&scope, &topic, &group)),
            ("bare", no_letters),
            ("user-status", job),
            ("ghost", ghost),
        ],
    );
    let pretty = "{\n  \"a\": 1\n}";
    let records =
        [ProducedRecord::new(pretty).to_partition(0), ProducedRecord::new("{\"a\": 2}").to_partition(0)];
    scope.produce(&topic, &records).await.expect("produce");
    let path = |name: &str| workspace.path(name).to_str().expect("path").to_owned();

    // A multi-line value cannot be a plain line: nothing is written, and the message says why.
    let plain = path("lines.jsonl");
    let stderr = refused(&workspace.capture(&["--pipeline", "sendgrid-events", "--out", &plain]), 1);
    assert!(
        stderr.contains("offset 0 cannot be a line of") && stderr.contains("it holds a line break"),
        "{stderr}"
    );
    assert!(stderr.contains(&path("lines.envelopes.jsonl")), "{stderr}");
    assert!(!Path::new(&plain).exists(), "nothing is written");

    let stderr = refused(&workspace.capture(&["--pipeline", "nope", "--out", &path("x.jsonl")]), 1);
    assert!(stderr.contains("no pipeline named `nope`") && stderr.contains("sendgrid-events"), "{stderr}");
    let stderr = refused(&workspace.capture(&["--pipeline", "user-status", "--out", &path("x.jsonl")]), 1);
    assert!(stderr.contains("has a `s3-job` source, which reads no topic"), "{stderr}");
    let stderr =
        refused(&workspace.capture(&["--pipeline", "bare", "--dead-letters", "--out", &path("x.jsonl")]), 1);
    assert!(stderr.contains("pipeline `bare` has no [dead_letters]"), "{stderr}");

    let taken = path("taken.envelopes.jsonl");
    std::fs::write(&taken, "kept\n").expect("write");
    let stderr = refused(&workspace.capture(&["--pipeline", "sendgrid-events", "--out", &taken]), 1);
    assert!(stderr.contains("exists; pass --force to replace it"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&taken).expect("read"), "kept\n");
    let output = workspace.capture(&["--pipeline", "sendgrid-events", "--out", &taken, "--force"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(read_envelopes(Path::new(&taken)).len(), 2);

    // A start past the end captures nothing (the broker reports no end there, so the partition is
    // read until it was silent for --wait-ms); an empty partition is read to its end; partitions
    // and topics that do not exist are named.
    let past = summary(&workspace.capture(&[
        "--pipeline",
        "bare",
        "--offset",
        "100",
        "--out",
        &path("past.jsonl"),
        "--json",
        "--wait-ms",
        "500",
    ]));
    assert_eq!(past["records"], 0, "{past}");
    let full = summary(&workspace.capture(&[
        "--pipeline",
        "bare",
        "--out",
        &path("full.envelopes.jsonl"),
        "--json",
    ]));
    let per_partition: Vec<(Option<u64>, Option<u64>)> = full["from"]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|range| (range["partition"].as_u64(), range["records"].as_u64()))
        .collect();
    assert_eq!(per_partition, [(Some(0), Some(2)), (Some(1), Some(0))], "{full}");
    let stderr = refused(
        &workspace.capture(&["--pipeline", "bare", "--partition", "2", "--out", &path("x.jsonl")]),
        1,
    );
    assert!(stderr.contains("has no partition 2 (it has 2, from 0)"), "{stderr}");
    let stderr = refused(&workspace.capture(&["--pipeline", "ghost", "--out", &path("x.jsonl")]), 1);
    assert!(stderr.contains("does not exist"), "{stderr}");

    let stderr = refused(&workspace.capture(&["--object", "s3:/bucket/key", "--out", &path("x.jsonl")]), 2);
    assert!(stderr.contains("not an S3 object URL"), "{stderr}");
    let stderr = refused(
        &workspace.capture(&["--pipeline", "bare", "--since", "last tuesday", "--out", &path("x.jsonl")]),
        2,
    );
    assert!(stderr.contains("not an RFC 3339 time"), "{stderr}");

    scope.cleanup().await.expect("cleanup");
}
