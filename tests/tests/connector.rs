//! The Kafka connector against the real broker and S3 server: SendGrid webhook bodies become
//! a Hive-partitioned Parquet table and dead letters; a crash replays into the same objects;
//! `sluice sweep` brings fixed records into the table; two hosts share a consumer group, and so
//! do the two members one host runs with `members = 2`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value, json};
use sluice_e2e::artifacts::{install_plugin, plugin_path, repo_pipeline};
use sluice_e2e::host::{HostSpec, SluiceHost};
use sluice_e2e::table::{TableRow, read_table, table_objects};
use sluice_e2e::{ProducedRecord, TestScope, eventually, require_services};

/// The repository's `pipelines/sendgrid-events.toml`, named `events`, reading `topic` as
/// `group` with `members` members (the default when `None`), its table and dead letters under
/// `prefix`, windows closing at `rotate_records` rows or `rotate_ms`.
fn events_pipeline(
    topic: &str,
    group: &str,
    members: Option<usize>,
    bucket: &str,
    prefix: &str,
    rotate: (usize, u64),
) -> String {
    let quoted = |text: &str| format!("\"{text}\"");
    let mut overrides = vec![
        ("name", quoted("events")),
        ("source.topic", quoted(topic)),
        ("source.group", quoted(group)),
        ("source.batch_records", "100".into()),
        ("source.batch_max_ms", "300".into()),
        ("sinks.bucket", quoted(bucket)),
        ("sinks.prefix", quoted(&format!("{prefix}table"))),
        ("sinks.rotate_records", rotate.0.to_string()),
        ("sinks.rotate_ms", rotate.1.to_string()),
        ("dead_letters.bucket", quoted(bucket)),
        ("dead_letters.prefix", quoted(&format!("{prefix}dead-letters"))),
    ];
    if let Some(members) = members {
        overrides.push(("source.members", members.to_string()));
    }
    repo_pipeline("sendgrid-events", &overrides)
}

fn kafka_source(topic: &str, group: &str) -> String {
    format!(
        "[source]\nkind = \"kafka\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\nbatch_records = 100\nbatch_max_ms = 300"
    )
}

/// Partitions of `group` the host's members own now, and how many of its members own some.
async fn assigned(host: &SluiceHost, group: &str) -> (f64, usize) {
    let members = host.metric("sluice_kafka_assigned_partitions").await;
    let mine: Vec<f64> = members
        .iter()
        .filter(|(labels, _)| labels.contains(&format!("group=\"{group}\"")))
        .map(|(_, partitions)| *partitions)
        .collect();
    (mine.iter().sum(), mine.iter().filter(|partitions| **partitions > 0.0).count())
}

/// A valid SendGrid event; `day` picks one of two dates so rows land in two `dt` partitions.
fn event(id: &str, kind: &str, day: u32) -> Value {
    let timestamp = 1_700_000_000 + i64::from(day) * 86_400;
    json!({"email": format!("{id}@example.com"), "timestamp": timestamp, "event": kind, "sg_event_id": id,
           "sg_message_id": "msg.1", "category": ["news"], "mail_id": "m-1"})
}

async fn rows(scope: &TestScope, prefix: &str) -> Vec<TableRow> {
    read_table(scope.s3(), scope.bucket(), prefix).await.expect("read table")
}

/// Every dead letter under `prefix` (plain, or gzipped as `.jsonl.gz`), parsed, skipping those
/// already swept.
async fn dead_letters(scope: &TestScope, prefix: &str) -> Vec<Value> {
    let mut letters = Vec::new();
    for key in scope.s3().list_keys(scope.bucket(), prefix).await.expect("list dead letters") {
        if !(key.ends_with(".jsonl") || key.ends_with(".jsonl.gz")) || key.contains("/swept/") {
            continue;
        }
        let mut body = scope.s3().get_object(scope.bucket(), &key).await.expect("get dead letters");
        if key.ends_with(".gz") {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(body.as_slice()), &mut plain)
                .expect("gunzip dead letters");
            body = plain;
        }
        for line in body.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            letters.push(serde_json::from_slice(line).expect("a dead letter is JSON"));
        }
    }
    letters
}

fn ids(rows: &[TableRow]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().filter_map(|r| r.text("sg_event_id").map(str::to_owned)).collect();
    ids.sort();
    ids
}

/// 40 bodies of 10 `delivered` events, ids `{id_prefix}-{body}-{n}`, spread over partitions 0–3.
fn bodies_over_four_partitions(id_prefix: &str) -> Vec<ProducedRecord> {
    (0..40)
        .map(|body| {
            let events: Vec<Value> =
                (0..10).map(|n| event(&format!("{id_prefix}-{body:02}-{n}"), "delivered", 0)).collect();
            ProducedRecord::new(serde_json::to_vec(&events).expect("body")).to_partition(body % 4)
        })
        .collect()
}

/// The table holds `expected` events, none twice, from all four partitions.
fn assert_each_event_once_from_four_partitions(all: &[TableRow], expected: usize) {
    let row_ids = ids(all);
    let unique: BTreeSet<&String> = row_ids.iter().collect();
    assert_eq!(unique.len(), row_ids.len(), "no event stored twice");
    assert_eq!(row_ids.len(), expected, "every event stored");
    let partitions: BTreeSet<i64> =
        all.iter().filter_map(|r| r.columns["kafka_partition"].as_i64()).collect();
    assert_eq!(partitions, BTreeSet::from([0, 1, 2, 3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_become_table_rows_or_dead_letters_and_nothing_else() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_webhook").await.expect("scope");
    let topic = scope.create_topic("events", 2).await.expect("topic");
    let prefix = scope.prefix();
    // One member, so a body and the next one's retry of its event meet in one plugin batch
    // (which drops the repeat) whichever partition each went to. With a member per partition
    // they meet only when they share a partition: rows are deduplicated per file window.
    // `pipelines/sendgrid-events.toml` itself, on this test's topic, group, bucket and prefixes,
    // with small batches and a window that closes after 4 s.
    let quoted = |text: &str| format!("\"{text}\"");
    let group = scope.group_id("connector");
    let pipeline = repo_pipeline(
        "sendgrid-events",
        &[
            ("source.topic", quoted(&topic)),
            ("source.group", quoted(&group)),
            ("source.batch_records", "50".into()),
            ("source.batch_max_ms", "300".into()),
            ("source.members", "1".into()),
            ("sinks.bucket", quoted(scope.bucket())),
            ("sinks.prefix", quoted(&format!("{prefix}table"))),
            ("sinks.rotate_ms", "4000".into()),
            ("dead_letters.bucket", quoted(scope.bucket())),
            ("dead_letters.prefix", quoted(&format!("{prefix}dead-letters"))),
        ],
    );
    let env = services.host_env();
    let host = SluiceHost::start(&services.host_config(), &[("events", pipeline)], &env).await;

    let kinds = ["processed", "delivered", "open", "click", "bounce"];
    let mut valid: BTreeSet<String> = BTreeSet::new();
    let mut malformed: Vec<Value> = Vec::new();
    let mut duplicates = 0;
    let mut posted_events = 0;
    let client = reqwest::Client::new();
    for body_index in 0..20 {
        let mut events = Vec::new();
        for n in 0..8 {
            let id = format!("ev-{body_index}-{n}");
            events.push(event(&id, kinds[(body_index + n) % kinds.len()], (n % 2) as u32));
            valid.insert(id);
        }
        // SendGrid retries: an event of the previous body again.
        if body_index > 0 {
            events.push(event(&format!("ev-{}-0", body_index - 1), kinds[(body_index - 1) % kinds.len()], 0));
            duplicates += 1;
        }
        let bad = match body_index % 4 {
            0 => {
                json!({"timestamp": 1_700_000_000, "event": "open", "sg_event_id": format!("bad-{body_index}")})
            }
            1 => {
                json!({"email": "x@example.com", "timestamp": 1_700_000_000, "event": "teleported", "sg_event_id": format!("bad-{body_index}")})
            }
            2 => {
                json!({"email": "x@example.com", "timestamp": "yesterday", "event": "open", "sg_event_id": format!("bad-{body_index}")})
            }
            _ => json!(42),
        };
        events.push(bad.clone());
        malformed.push(bad);
        posted_events += events.len();
        let response = client
            .post(format!("{}/v1/webhooks/sendgrid", host.url))
            .body(serde_json::to_vec(&events).expect("body"))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200, "{}", host.log());
    }

    let table = format!("{prefix}table/");
    let letters_prefix = format!("{prefix}dead-letters/");
    let done = eventually(Duration::from_secs(90), || async {
        rows(&scope, &table).await.len() >= valid.len()
            && dead_letters(&scope, &letters_prefix).await.len() >= malformed.len()
    })
    .await;
    assert!(done, "the table and dead letters did not fill up:\n{}", host.log());
    // Everything produced is committed, so stored: anything extra would be in the table now.
    let caught_up = eventually(Duration::from_secs(60), || scope.group_caught_up(&group, &topic)).await;
    assert!(caught_up, "the connector did not commit the whole topic:\n{}", host.log());

    let rows = rows(&scope, &table).await;
    let row_ids = ids(&rows);
    assert_eq!(
        row_ids,
        valid.iter().cloned().collect::<Vec<_>>(),
        "each valid event is exactly one row:\n{}",
        host.log()
    );
    for row in &rows {
        let expected_path =
            format!("dt={}/event={}/", row.text("dt").expect("dt"), row.text("event").expect("event"));
        assert!(
            row.object.contains(&expected_path),
            "{} is in its Hive partition {expected_path}",
            row.object
        );
        assert_eq!(row.columns["kafka_topic"], json!(topic));
        assert!(row.columns["kafka_offset"].is_i64());
    }
    let dt_values: BTreeSet<&str> = rows.iter().filter_map(|r| r.text("dt")).collect();
    assert_eq!(dt_values.len(), 2, "two days, two dt partitions");

    let letters = dead_letters(&scope, &letters_prefix).await;
    let mut dead_events: Vec<Value> = letters
        .iter()
        .map(|letter| {
            assert_eq!(letter["part"], json!(true), "a bad event is dead-lettered alone: {letter}");
            assert!(letter["reason"].as_str().is_some_and(|r| !r.is_empty()));
            assert!(
                letter["plugin_version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("normalize-sendgrid-events@"))
            );
            let part: Vec<Value> = serde_json::from_str(letter["value"].as_str().expect("text value"))
                .expect("a one-event body");
            assert_eq!(part.len(), 1);
            part.into_iter().next().expect("one event")
        })
        .collect();
    let key = |v: &Value| v.to_string();
    dead_events.sort_by_key(key);
    malformed.sort_by_key(key);
    assert_eq!(dead_events, malformed, "the dead letters are exactly the malformed events");
    assert_eq!(
        posted_events,
        rows.len() + duplicates + letters.len(),
        "every posted event is a row, a dropped duplicate or a dead letter"
    );

    // The same plugin fails them again: a sweep reports them as still failing and moves nothing.
    let swept = host.cli(&["sweep", "--pipeline", "sendgrid-events"]);
    let swept_out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{swept_out}{}", String::from_utf8_lossy(&swept.stderr));
    let n = letters.len();
    assert!(swept_out.contains(&format!("{n} records: 0 passed (0 rows), {n} still failing")), "{swept_out}");
    assert_eq!(dead_letters(&scope, &letters_prefix).await.len(), n, "every letter stays");
    let swept_keys =
        scope.s3().list_keys(scope.bucket(), &format!("{letters_prefix}swept/")).await.expect("list");
    assert!(swept_keys.is_empty(), "nothing that failed again is filed as swept: {swept_keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connector_replays_into_the_same_objects_without_duplicates() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_kill").await.expect("scope");
    let topic = scope.create_topic("events", 3).await.expect("topic");
    let mut records = Vec::new();
    let mut expected = Vec::new();
    for body in 0..90 {
        let events: Vec<Value> = (0..40)
            .map(|n| {
                let id = format!("k-{body:03}-{n:02}");
                expected.push(id.clone());
                event(&id, if n % 3 == 0 { "open" } else { "delivered" }, (body % 2) as u32)
            })
            .collect();
        records.push(ProducedRecord::new(serde_json::to_vec(&events).expect("body")).to_partition(body % 3));
    }
    expected.sort();
    scope.produce(&topic, &records).await.expect("produce");

    let config = services.host_config();
    let env = services.host_env();
    let crashed_prefix = scope.key("crashed/");
    let crashed_group = scope.group_id("crashed");
    let crashed =
        events_pipeline(&topic, &crashed_group, None, scope.bucket(), &crashed_prefix, (300, 5_000));
    let mut host = SluiceHost::start(&config, &[("events", crashed)], &env).await;
    let crashed_table = format!("{crashed_prefix}table/");
    let some_written = eventually(Duration::from_secs(60), || async {
        table_objects(scope.s3(), scope.bucket(), &crashed_table).await.expect("list").len() >= 3
    })
    .await;
    assert!(some_written, "no objects before the kill:\n{}", host.log());
    host.kill();
    let before_restart = table_objects(scope.s3(), scope.bucket(), &crashed_table).await.expect("list");
    host.restart().await;
    let complete = eventually(Duration::from_secs(90), || async {
        ids(&rows(&scope, &crashed_table).await).len() >= expected.len()
    })
    .await;
    assert!(complete, "the restarted connector did not finish:\n{}", host.log());

    // The same records through a connector that never crashed, for the reference object set.
    let reference_prefix = scope.key("reference/");
    let reference_group = scope.group_id("reference");
    let reference =
        events_pipeline(&topic, &reference_group, None, scope.bucket(), &reference_prefix, (300, 5_000));
    let reference_host = SluiceHost::start(&config, &[("events", reference)], &env).await;
    let reference_table = format!("{reference_prefix}table/");
    let reference_done = eventually(Duration::from_secs(90), || async {
        ids(&rows(&scope, &reference_table).await).len() >= expected.len()
    })
    .await;
    assert!(reference_done, "the reference connector did not finish:\n{}", reference_host.log());
    // Both groups committed the whole topic, so each stored every window it will write.
    let caught_up = eventually(Duration::from_secs(60), || async {
        scope.group_caught_up(&crashed_group, &topic).await
            && scope.group_caught_up(&reference_group, &topic).await
    })
    .await;
    assert!(
        caught_up,
        "a connector did not commit the whole topic:\n{}\n---\n{}",
        host.log(),
        reference_host.log()
    );

    let crashed_rows = rows(&scope, &crashed_table).await;
    assert_eq!(ids(&crashed_rows), expected, "no row missing, none twice:\n{}", host.log());
    let by_object = |rows: &[TableRow], table: &str| -> BTreeMap<String, Vec<String>> {
        let mut objects: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let name = row.object.strip_prefix(table).unwrap_or(&row.object).to_owned();
            objects.entry(name).or_default().push(row.text("sg_event_id").unwrap_or_default().to_owned());
        }
        objects.values_mut().for_each(|ids| ids.sort());
        objects
    };
    let crashed_objects = by_object(&crashed_rows, &crashed_table);
    let reference_objects = by_object(&rows(&scope, &reference_table).await, &reference_table);
    assert_eq!(
        crashed_objects.keys().collect::<Vec<_>>(),
        reference_objects.keys().collect::<Vec<_>>(),
        "the crash left the same object names as a run without one"
    );
    assert_eq!(crashed_objects, reference_objects, "and the same rows in each");
    for key in before_restart {
        let name = key.strip_prefix(&crashed_table).unwrap_or(&key);
        assert!(crashed_objects.contains_key(name), "{name}, written before the kill, was replaced in place");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_brings_dead_letters_into_the_table_once_the_plugin_is_fixed() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_sweep").await.expect("scope");
    let topic = scope.create_topic("records", 2).await.expect("topic");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-hostile"), "fixture-hostile");

    let prefix = scope.prefix();
    let bucket = scope.bucket();
    let pipeline = format!(
        "name = \"records\"\n{}\n\
         [[steps]]\nplugin = \"fixture-hostile\"\nconfig = {{ behavior = \"fail-before-v2\" }}\n\
         [[sinks]]\nfrom = \"fixture-hostile.rows\"\nkind = \"parquet-s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}table\"\n\
         rotate_ms = 1000\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        kafka_source(&topic, &scope.group_id("sweep"))
    );
    let records: Vec<ProducedRecord> = (0..60)
        .map(|n| {
            ProducedRecord::new(json!({"id": format!("r-{n:02}"), "n": n}).to_string()).to_partition(n % 2)
        })
        .collect();
    scope.produce(&topic, &records).await.expect("produce");
    let env = services.host_env();
    let mut host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("records", pipeline)],
        env: &env,
        plugins_dir: Some(plugins.path()),
    })
    .await;
    let letters_prefix = format!("{prefix}dead-letters/");
    let table = format!("{prefix}table/");
    let all_dead = eventually(Duration::from_secs(60), || async {
        dead_letters(&scope, &letters_prefix).await.len() >= 60
    })
    .await;
    assert!(all_dead, "version 1 rejects every record:\n{}", host.log());
    assert_eq!(host.terminate(Duration::from_secs(30)), Some(0), "a clean stop:\n{}", host.log());
    assert!(table_objects(scope.s3(), bucket, &table).await.expect("list").is_empty());
    let letters = dead_letters(&scope, &letters_prefix).await;
    assert_eq!(letters.len(), 60);
    assert!(
        letters.iter().all(|l| l["plugin_version"] == json!("fixture-hostile@1.0.0")),
        "each letter names the version that failed it: {letters:?}"
    );

    // One letter file archived with gzip is swept all the same: it is read by its content.
    let letter_files = scope.s3().list_keys(bucket, &letters_prefix).await.expect("list");
    let first = letter_files.iter().find(|key| key.ends_with(".jsonl")).expect("a letter file");
    let plain = scope.s3().get_object(bucket, first).await.expect("get");
    scope.s3().put_object(bucket, &format!("{first}.gz"), sluice_e2e::gzip(&plain)).await.expect("put");
    scope.s3().client().delete_object().bucket(bucket).key(first).send().await.expect("delete");
    assert_eq!(dead_letters(&scope, &letters_prefix).await.len(), 60, "the gzipped file holds its letters");

    // The fixed version replaces the file; sweep uses what is installed now.
    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-hostile-v2"), "fixture-hostile");
    let dry = host.cli(&["sweep", "--pipeline", "records", "--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{dry_out}{}", String::from_utf8_lossy(&dry.stderr));
    assert!(dry_out.contains("60 records: 60 would pass"), "{dry_out}");
    assert!(
        table_objects(scope.s3(), bucket, &table).await.expect("list").is_empty(),
        "a dry run writes nothing"
    );
    assert_eq!(dead_letters(&scope, &letters_prefix).await.len(), 60, "and moves nothing");

    let swept = host.cli(&["sweep", "--pipeline", "records"]);
    let swept_out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{swept_out}{}", String::from_utf8_lossy(&swept.stderr));
    assert!(swept_out.contains("60 records: 60 passed (60 rows), 0 still failing"), "{swept_out}");
    let table_rows = rows(&scope, &table).await;
    let mut row_ids: Vec<String> =
        table_rows.iter().filter_map(|r| r.text("id").map(str::to_owned)).collect();
    row_ids.sort();
    let expected: Vec<String> = (0..60).map(|n| format!("r-{n:02}")).collect();
    assert_eq!(row_ids, expected, "every dead letter is now one row");
    assert!(dead_letters(&scope, &letters_prefix).await.is_empty(), "nothing is left to sweep");
    let swept_keys = scope.s3().list_keys(bucket, &format!("{letters_prefix}swept/")).await.expect("list");
    assert!(!swept_keys.is_empty(), "the swept objects are kept under swept/");

    let objects_after_first = table_objects(scope.s3(), bucket, &table).await.expect("list");
    let again = host.cli(&["sweep", "--pipeline", "records"]);
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    assert!(again_out.contains("0 dead-letter objects"), "{again_out}");
    assert_eq!(table_objects(scope.s3(), bucket, &table).await.expect("list"), objects_after_first);
    assert_eq!(rows(&scope, &table).await.len(), 60, "a second sweep changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_in_one_group_split_the_partitions_and_take_over_from_each_other() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_group").await.expect("scope");
    let topic = scope.create_topic("events", 4).await.expect("topic");
    let prefix = scope.prefix();
    let group = scope.group_id("shared");
    // One member per host, so each host's share is what its one member is assigned.
    let pipeline = events_pipeline(&topic, &group, Some(1), scope.bucket(), &prefix, (100_000, 1_500));
    let config = services.host_config();
    let env = services.host_env();
    let mut first = SluiceHost::start(&config, &[("events", pipeline.clone())], &env).await;
    let second = SluiceHost::start(&config, &[("events", pipeline)], &env).await;
    // Both members must hold their share before records arrive: each host's latest
    // assignment is two of the four partitions.
    let joined = eventually(Duration::from_secs(60), || async {
        assigned(&first, &group).await.0 == 2.0 && assigned(&second, &group).await.0 == 2.0
    })
    .await;
    assert!(joined, "both hosts join the group:\n{}\n---\n{}", first.log(), second.log());

    scope.produce(&topic, &bodies_over_four_partitions("g1")).await.expect("produce");
    let table = format!("{prefix}table/");
    let first_round =
        eventually(Duration::from_secs(60), || async { rows(&scope, &table).await.len() >= 400 }).await;
    assert!(first_round, "round 1 stored:\n{}\n---\n{}", first.log(), second.log());
    let rows_metric = ("sluice_sink_rows_total", "pipeline=\"events\"");
    assert!(
        first.metric_sum(rows_metric.0, rows_metric.1).await > 0.0,
        "the first host wrote part:\n{}",
        first.log()
    );
    assert!(
        second.metric_sum(rows_metric.0, rows_metric.1).await > 0.0,
        "the second host wrote part:\n{}",
        second.log()
    );

    first.kill();
    scope.produce(&topic, &bodies_over_four_partitions("g2")).await.expect("produce");
    let second_round =
        eventually(Duration::from_secs(90), || async { rows(&scope, &table).await.len() >= 800 }).await;
    assert!(second_round, "the second host took over every partition:\n{}", second.log());
    let caught_up = eventually(Duration::from_secs(60), || scope.group_caught_up(&group, &topic)).await;
    assert!(caught_up, "the group did not commit the whole topic:\n{}", second.log());
    assert_each_event_once_from_four_partitions(&rows(&scope, &table).await, 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_with_two_members_splits_the_partitions_and_stores_every_event_once() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_members").await.expect("scope");
    let topic = scope.create_topic("events", 4).await.expect("topic");
    let prefix = scope.prefix();
    let group = scope.group_id("members");
    let pipeline = events_pipeline(&topic, &group, Some(2), scope.bucket(), &prefix, (100_000, 1_500));
    let host =
        SluiceHost::start(&services.host_config(), &[("events", pipeline)], &services.host_env()).await;
    // Once both members have joined, they hold the four partitions between them.
    let split =
        eventually(Duration::from_secs(60), || async { assigned(&host, &group).await == (4.0, 2) }).await;
    assert!(split, "two members share the four partitions:\n{}", host.log());

    scope.produce(&topic, &bodies_over_four_partitions("m")).await.expect("produce");
    let table = format!("{prefix}table/");
    let stored =
        eventually(Duration::from_secs(60), || async { rows(&scope, &table).await.len() >= 400 }).await;
    assert!(stored, "every event stored:\n{}", host.log());
    let caught_up = eventually(Duration::from_secs(60), || scope.group_caught_up(&group, &topic)).await;
    assert!(caught_up, "the members did not commit the whole topic:\n{}", host.log());
    assert_each_event_once_from_four_partitions(&rows(&scope, &table).await, 400);
    assert!(dead_letters(&scope, &format!("{prefix}dead-letters/")).await.is_empty(), "no dead letters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_directory_sink_writes_the_same_table_without_s3() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_local").await.expect("scope");
    let topic = scope.create_topic("events", 1).await.expect("topic");
    let dir = tempfile::tempdir().expect("table dir");
    let table_dir = dir.path().join("table");
    let letters_dir = dir.path().join("dead-letters");
    let pipeline = format!(
        "name = \"events\"\n{}\n[[steps]]\nplugin = \"normalize-sendgrid-events\"\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"parquet-local\"\ndir = \"{}\"\n\
         partition_by = [\"dt\", \"event\"]\nrotate_ms = 1000\n\
         [dead_letters]\nkind = \"local\"\ndir = \"{}\"\n",
        kafka_source(&topic, &scope.group_id("local")),
        table_dir.display(),
        letters_dir.display()
    );
    let events: Vec<Value> = vec![
        event("l-1", "open", 0),
        event("l-2", "click", 1),
        json!({"event": "open", "sg_event_id": "l-bad"}),
    ];
    scope
        .produce(&topic, &[ProducedRecord::new(serde_json::to_vec(&events).expect("body"))])
        .await
        .expect("produce");
    let host =
        SluiceHost::start(&services.host_config(), &[("events", pipeline)], &services.host_env()).await;
    let stored = eventually(Duration::from_secs(60), || async {
        sluice_e2e::table::read_local_table(&table_dir).expect("read local table").len() >= 2
    })
    .await;
    assert!(stored, "rows in the local table:\n{}", host.log());
    let rows = sluice_e2e::table::read_local_table(&table_dir).expect("read local table");
    assert_eq!(ids(&rows), ["l-1", "l-2"]);
    assert!(rows.iter().all(|r| r.object.starts_with("dt=")), "Hive directories under the sink's dir");
    let letters: Vec<std::path::PathBuf> = std::fs::read_dir(&letters_dir)
        .expect("dead-letter dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(letters.len(), 1, "one dead-letter file for the window");
    let text = std::fs::read_to_string(&letters[0]).expect("read dead letters");
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("l-bad"), "{text}");
}

/// Reads every record of `topic` until none arrived for a few seconds.
async fn topic_records(scope: &TestScope, topic: &str) -> Vec<sluice_e2e::ConsumedRecord> {
    scope
        .consume_until_idle(topic, Duration::from_secs(5), Duration::from_secs(60))
        .await
        .expect("read topic")
}

/// The columns both pipelines write, per event id (lineage columns differ by design).
fn by_event(rows: &[TableRow]) -> BTreeMap<String, Map<String, Value>> {
    rows.iter()
        .map(|row| {
            let mut columns = row.columns.clone();
            columns.retain(|name, _| !name.starts_with("kafka_") && name != "plugin_version");
            (row.text("sg_event_id").expect("sg_event_id").to_owned(), columns)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_sink_feeds_a_second_pipeline_that_stores_the_same_table_and_passes_records_on_as_they_came()
{
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_topic_to_topic").await.expect("scope");
    let bodies_topic = scope.create_topic("bodies", 2).await.expect("topic");
    let rows_topic = scope.topic("rows");
    let passed_topic = scope.topic("passed");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path("normalize-sendgrid-events"), "normalize-sendgrid-events");
    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-json-events"), "fixture-json-events");

    let prefix = scope.prefix();
    let bucket = scope.bucket();
    let dead_letters_of = |name: &str| {
        format!(
            "[dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}{name}-dead-letters\"\n"
        )
    };
    let table_of = |from: &str, name: &str| {
        format!(
            "[[sinks]]\nfrom = \"{from}\"\nkind = \"parquet-s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}{name}\"\n\
             partition_by = [\"dt\", \"event\"]\nrotate_ms = 1000\ndedupe_by_key = true\n"
        )
    };
    // bodies → normalize → the rows topic → fixture-json-events → a table; and, for reference,
    // bodies → normalize → a table directly.
    let (to_topic_group, from_topic_group) = (scope.group_id("to-topic"), scope.group_id("from-topic"));
    let to_topic = format!(
        "name = \"to-topic\"\n{}\n[[steps]]\nplugin = \"normalize-sendgrid-events\"\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"kafka\"\ntopic = \"{rows_topic}\"\n{}",
        kafka_source(&bodies_topic, &to_topic_group),
        dead_letters_of("to-topic"),
    );
    let from_topic = format!(
        "name = \"from-topic\"\n{}\n[[steps]]\nplugin = \"fixture-json-events\"\n{}{}",
        kafka_source(&rows_topic, &from_topic_group),
        table_of("fixture-json-events.events", "chained"),
        dead_letters_of("from-topic"),
    );
    let direct = format!(
        "name = \"direct\"\n{}\n[[steps]]\nplugin = \"normalize-sendgrid-events\"\n{}{}",
        kafka_source(&bodies_topic, &scope.group_id("direct")),
        table_of("normalize-sendgrid-events.events", "direct"),
        dead_letters_of("direct"),
    );

    // bodies → normalize → the passed topic: each body that gave a row, as it came.
    let pass = format!(
        "name = \"pass\"\n{}\n[[steps]]\nplugin = \"normalize-sendgrid-events\"\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"kafka\"\ntopic = \"{passed_topic}\"\n\
         value = \"record\"\n{}",
        kafka_source(&bodies_topic, &scope.group_id("pass")),
        dead_letters_of("pass"),
    );

    let kinds = ["processed", "delivered", "open", "click", "bounce"];
    let mut records = Vec::new();
    let mut valid = BTreeSet::new();
    for body in 0..30 {
        let mut events: Vec<Value> = (0..10)
            .map(|n| {
                let id = format!("t-{body:02}-{n}");
                valid.insert(id.clone());
                event(&id, kinds[(body + n) % kinds.len()], (n % 2) as u32)
            })
            .collect();
        events.push(json!({"event": "open", "sg_event_id": format!("t-bad-{body}")}));
        records.push(
            ProducedRecord::new(serde_json::to_vec(&events).expect("body"))
                .with_key(format!("body-{body}"))
                .with_header("trace", format!("trace-{body}"))
                .to_partition((body % 2) as i32),
        );
    }
    // A body none of whose events is valid gives no row, so it is not passed on.
    let unpassable =
        serde_json::to_vec(&json!([{"event": "open", "sg_event_id": "t-bad-all"}])).expect("body");
    records.push(ProducedRecord::new(unpassable.clone()).with_key("body-bad").to_partition(0));
    scope.produce(&bodies_topic, &records).await.expect("produce");
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("to-topic", to_topic), ("from-topic", from_topic), ("direct", direct), ("pass", pass)],
        env: &services.host_env(),
        plugins_dir: Some(plugins.path()),
    })
    .await;

    let chained_table = format!("{prefix}chained/");
    let direct_table = format!("{prefix}direct/");
    let stored = eventually(Duration::from_secs(90), || async {
        rows(&scope, &chained_table).await.len() >= valid.len()
            && rows(&scope, &direct_table).await.len() >= valid.len()
    })
    .await;
    assert!(stored, "both tables fill up:\n{}", host.log());
    let caught_up = eventually(Duration::from_secs(60), || async {
        scope.group_caught_up(&to_topic_group, &bodies_topic).await
            && scope.group_caught_up(&from_topic_group, &rows_topic).await
    })
    .await;
    assert!(caught_up, "both connectors commit what they read:\n{}", host.log());

    // The rows topic: one JSON object per row, keyed by the row's key (the event id).
    let produced = topic_records(&scope, &rows_topic).await;
    let produced_ids: BTreeSet<String> = produced
        .iter()
        .map(|record| {
            let row: Value = serde_json::from_slice(&record.value).expect("a row is a JSON object");
            let id = row["sg_event_id"].as_str().expect("sg_event_id").to_owned();
            assert_eq!(record.key.as_deref(), Some(id.as_bytes()), "keyed by the row key: {row}");
            id
        })
        .collect();
    assert_eq!(produced_ids, valid, "every valid event reached the rows topic, no bad one");
    assert!(produced.len() >= valid.len(), "at least once");

    let chained = by_event(&rows(&scope, &chained_table).await);
    let reference = by_event(&rows(&scope, &direct_table).await);
    assert_eq!(
        chained.keys().cloned().collect::<BTreeSet<_>>(),
        valid,
        "each event once in the chained table"
    );
    assert_eq!(chained, reference, "the chained table holds the same rows as the direct one");
    // The bad events are dead letters of the first pipeline; the second one failed nothing.
    assert_eq!(dead_letters(&scope, &format!("{prefix}to-topic-dead-letters/")).await.len(), 31);
    assert!(dead_letters(&scope, &format!("{prefix}from-topic-dead-letters/")).await.is_empty());

    // The passed topic: every body that gave a row, byte for byte, with its key and headers;
    // not the one that gave none, which is a dead letter of the pass pipeline.
    let passed_in_time = eventually(Duration::from_secs(60), || async {
        topic_records(&scope, &passed_topic).await.len() >= 30
    })
    .await;
    assert!(passed_in_time, "the bodies pass on:\n{}", host.log());
    let passed = topic_records(&scope, &passed_topic).await;
    let sent: BTreeMap<Vec<u8>, &ProducedRecord> = records
        .iter()
        .filter(|record| record.value != unpassable)
        .map(|record| (record.value.clone(), record))
        .collect();
    for record in &passed {
        let original = sent.get(&record.value).expect("a passed record is one of the bodies, unchanged");
        assert_eq!(record.key, original.key, "the body's own key");
        assert_eq!(record.headers, original.headers, "the body's own headers");
    }
    let passed_values: BTreeSet<&Vec<u8>> = passed.iter().map(|record| &record.value).collect();
    assert_eq!(passed_values.len(), 30, "each of the 30 bodies with a valid event passed");
    assert!(passed.len() >= 30, "at least once");
    assert_eq!(dead_letters(&scope, &format!("{prefix}pass-dead-letters/")).await.len(), 31);
}

/// The JSON lines under `prefix` in S3 (each object gunzipped), with the objects' keys.
async fn s3_lines(scope: &TestScope, prefix: &str) -> (Vec<String>, Vec<Value>) {
    let keys = scope.s3().list_keys(scope.bucket(), prefix).await.expect("list objects");
    let mut lines = Vec::new();
    for key in &keys {
        let body = scope.s3().get_object(scope.bucket(), key).await.expect("get object");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body.as_slice()), &mut text)
            .expect("a gzipped object");
        lines.extend(text.lines().map(|line| serde_json::from_str::<Value>(line).expect("a JSON line")));
    }
    (keys, lines)
}

/// The JSON lines of every file in `dir`.
fn local_lines(dir: &std::path::Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            std::fs::read_to_string(entry.path())
                .expect("read object")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|line| serde_json::from_str::<Value>(&line).expect("a JSON line"))
        .collect()
}

/// The `sg_event_id`s of `lines`, sorted, duplicates kept.
fn line_ids(lines: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> =
        lines.iter().map(|line| line["sg_event_id"].as_str().expect("sg_event_id").to_owned()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_sink_writes_each_row_once_as_a_json_line_in_s3_and_in_a_directory() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "connector_jsonl").await.expect("scope");
    let topic = scope.create_topic("events", 2).await.expect("topic");
    let dir = tempfile::tempdir().expect("lines dir");
    let (bucket, prefix) = (scope.bucket(), scope.prefix());
    let pipeline = format!(
        "name = \"events\"\n{}\n[[steps]]\nplugin = \"normalize-sendgrid-events\"\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"jsonl\"\n\
         bucket = \"{bucket}\"\nprefix = \"{prefix}lines\"\ngzip = true\nrotate_ms = 1000\n\
         [[sinks]]\nfrom = \"normalize-sendgrid-events.events\"\nkind = \"jsonl\"\ndir = \"{}\"\nrotate_ms = 1000\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        kafka_source(&topic, &scope.group_id("jsonl")),
        dir.path().display(),
    );
    let mut valid = Vec::new();
    let records: Vec<ProducedRecord> = (0..20)
        .map(|body| {
            let mut events: Vec<Value> = (0..5)
                .map(|n| {
                    let id = format!("j-{body:02}-{n}");
                    valid.push(id.clone());
                    event(&id, "delivered", (n % 2) as u32)
                })
                .collect();
            events.push(json!({"event": "open", "sg_event_id": format!("j-bad-{body}")}));
            ProducedRecord::new(serde_json::to_vec(&events).expect("body")).to_partition(body % 2)
        })
        .collect();
    valid.sort();
    scope.produce(&topic, &records).await.expect("produce");
    let host =
        SluiceHost::start(&services.host_config(), &[("events", pipeline)], &services.host_env()).await;

    let lines_prefix = format!("{prefix}lines/");
    let stored = eventually(Duration::from_secs(60), || async {
        s3_lines(&scope, &lines_prefix).await.1.len() >= valid.len()
            && local_lines(dir.path()).len() >= valid.len()
    })
    .await;
    assert!(stored, "both sinks hold every row:\n{}", host.log());
    let letters = eventually(Duration::from_secs(30), || async {
        dead_letters(&scope, &format!("{prefix}dead-letters/")).await.len() >= 20
    })
    .await;
    assert!(letters, "the invalid events are dead letters:\n{}", host.log());

    let (keys, lines) = s3_lines(&scope, &lines_prefix).await;
    assert_eq!(line_ids(&lines), valid, "each valid event once, as a line of a gzipped object");
    assert_eq!(line_ids(&local_lines(dir.path())), valid, "the same lines in the directory");
    assert!(
        keys.iter().all(|key| key.ends_with(".jsonl.gz") && key.contains(&format!("{topic}+"))),
        "objects named after their windows: {keys:?}"
    );
    let line = lines.iter().find(|line| line["sg_event_id"] == "j-00-1").expect("a line");
    assert_eq!(
        (line["event"].as_str(), line["email"].as_str()),
        (Some("delivered"), Some("j-00-1@example.com"))
    );
    let dead: Vec<Value> = dead_letters(&scope, &format!("{prefix}dead-letters/")).await;
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .flat_map(|letter| {
            let value: Value =
                serde_json::from_str(letter["value"].as_str().unwrap_or("[]")).unwrap_or_default();
            value.as_array().cloned().unwrap_or_default()
        })
        .filter_map(|event| event["sg_event_id"].as_str().map(str::to_owned))
        .collect();
    let expected_dead: BTreeSet<String> = (0..20).map(|body| format!("j-bad-{body}")).collect();
    assert_eq!(dead_ids, expected_dead, "every invalid event is a dead letter, and only those");
}
