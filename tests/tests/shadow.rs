//! Shadowing a candidate plugin version on a Kafka pipeline's live batches, against the real
//! broker and S3 server: the candidate's differences are counted exactly as the records imply
//! and sampled under the dead letters' `shadow/` prefix (which `sluice sweep` leaves alone),
//! the sinks get only the current version's results, and the candidate is promoted or
//! discarded through the admin API and the plugins directory. A candidate that traps on every
//! batch is counted as trapped and changes nothing else.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_e2e::artifacts::{install_plugin, plugin_path, repo_pipeline};
use sluice_e2e::host::{HostSpec, SluiceHost};
use sluice_e2e::table::{TableRow, read_table, table_objects};
use sluice_e2e::{ProducedRecord, TestScope, eventually, require_services};

const TOKEN: &str = "admin-token-shadow-41c2";
const PLUGIN: &str = "fixture-hostile";
const NORMALIZE: &str = "normalize-sendgrid-events";

fn kafka_source(topic: &str, group: &str) -> String {
    format!(
        "[source]\nkind = \"kafka\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\nbatch_records = 100\nbatch_max_ms = 300"
    )
}

/// Sends an admin request with the token; the status and the JSON body (`null` when none).
async fn admin(
    host: &SluiceHost,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().request(method, format!("{}/v1/admin/{path}", host.url)).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("admin request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn shadow_view(host: &SluiceHost, plugin: &str) -> (u16, Value) {
    admin(host, reqwest::Method::GET, &format!("plugins/{plugin}/shadow"), None).await
}

/// Polls `GET .../shadow` until `check` holds, or panics with the last view and the host log.
async fn wait_for_shadow(
    host: &SluiceHost,
    plugin: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let held = eventually(Duration::from_secs(60), || async {
        let (status, view) = shadow_view(host, plugin).await;
        let holds = status == 200 && check(&view);
        *last.lock().expect("view") = view;
        holds
    })
    .await;
    let view = last.lock().expect("view").clone();
    assert!(held, "{what}; last view {view:#}\n{}", host.log());
    view
}

/// The admin view of `plugin` in `GET /v1/admin/plugins`.
async fn plugin_view(host: &SluiceHost, plugin: &str) -> Value {
    let (status, body) = admin(host, reqwest::Method::GET, "plugins", None).await;
    assert_eq!(status, 200, "{body}");
    body["plugins"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == plugin))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Every dead letter under `prefix`, neither swept nor a shadow sample.
async fn dead_letters(scope: &TestScope, prefix: &str) -> Vec<Value> {
    let mut letters = Vec::new();
    for key in scope.s3().list_keys(scope.bucket(), prefix).await.expect("list dead letters") {
        if !key.ends_with(".jsonl") || key.contains("/swept/") || key.contains("/shadow/") {
            continue;
        }
        let body = scope.s3().get_object(scope.bucket(), &key).await.expect("get dead letters");
        for line in body.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            letters.push(serde_json::from_slice(line).expect("a dead letter is JSON"));
        }
    }
    letters
}

/// Every object under `prefix` with its bytes, in key order.
async fn objects(scope: &TestScope, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut objects = Vec::new();
    for key in scope.s3().list_keys(scope.bucket(), prefix).await.expect("list") {
        let body = scope.s3().get_object(scope.bucket(), &key).await.expect("get");
        objects.push((key, body));
    }
    objects.sort();
    objects
}

fn lines(objects: &[(String, Vec<u8>)]) -> Vec<Value> {
    objects
        .iter()
        .flat_map(|(_, body)| body.split(|b| *b == b'\n').filter(|line| !line.is_empty()))
        .map(|line| serde_json::from_slice(line).expect("a sample line is JSON"))
        .collect()
}

async fn table_rows(scope: &TestScope, prefix: &str) -> Vec<TableRow> {
    read_table(scope.s3(), scope.bucket(), prefix).await.expect("read table")
}

fn texts(rows: &[TableRow], column: &str) -> Vec<String> {
    let mut texts: Vec<String> = rows.iter().filter_map(|row| row.text(column).map(str::to_owned)).collect();
    texts.sort();
    texts
}

/// Puts `component` into `dir` as `file` by temporary file and rename, as a deploy should.
fn place(dir: &Path, component: &Path, file: &str) {
    let temporary = dir.join(format!(".{file}.tmp"));
    std::fs::copy(component, &temporary).expect("copy component");
    std::fs::rename(&temporary, dir.join(file)).expect("rename component");
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list plugins dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn num(view: &Value, pointer: &str) -> u64 {
    view.pointer(pointer).and_then(Value::as_u64).unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_is_compared_on_live_batches_then_promoted_and_another_discarded() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "shadow_promote").await.expect("scope");
    let topic = scope.create_topic("records", 1).await.expect("topic");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}")), PLUGIN);
    let (prefix, bucket) = (scope.prefix(), scope.bucket().to_owned());
    // `fail-before-v2`: version 1 fails every record on `value`; versions 2 and 3 turn each
    // `{"id", "n"}` into a row and fail a record without `id` for another reason.
    let pipeline = format!(
        "name = \"records\"\n{}\n\
         [[steps]]\nplugin = \"{PLUGIN}\"\nconfig = {{ behavior = \"fail-before-v2\" }}\n\
         [[sinks]]\nfrom = \"{PLUGIN}.rows\"\nkind = \"parquet-s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}table\"\n\
         rotate_ms = 1000\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        kafka_source(&topic, &scope.group_id("shadow"))
    );
    let mut env = services.host_env();
    env.push(("SLUICE_ADMIN_TOKEN", TOKEN.to_owned()));
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("records", pipeline)],
        env: &env,
        plugins_dir: Some(plugins.path()),
    })
    .await;
    let table = format!("{prefix}table/");
    let letters_prefix = format!("{prefix}dead-letters/");
    let samples_prefix = format!("{letters_prefix}shadow/{PLUGIN}/2.0.0/");

    let (status, body) = shadow_view(&host, PLUGIN).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "no candidate yet: {body}");
    let version_2 = std::fs::read(plugin_path(&format!("fixtures/{PLUGIN}-v2"))).expect("read version 2");
    let path = format!("plugins/{PLUGIN}/shadow");
    let (status, body) = admin(&host, reqwest::Method::PUT, &path, Some(version_2.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["version"], &body["current_version"]), (&json!("2.0.0"), &json!("1.0.0")), "{body}");
    assert_eq!(
        std::fs::read(plugins.path().join(format!("{PLUGIN}.shadow.wasm"))).expect("the candidate is kept"),
        version_2
    );
    assert_eq!(plugin_view(&host, PLUGIN).await["shadow"]["candidate"]["version"], json!("2.0.0"));

    // One record at a time, so the candidate is never still busy when the next batch comes.
    let good: Vec<String> = (0..10).map(|n| json!({"id": format!("r-{n:02}"), "n": n}).to_string()).collect();
    let bad: Vec<String> = (0..3).map(|n| json!({"n": n}).to_string()).collect();
    for (sent, record) in good.iter().chain(&bad).enumerate() {
        scope.produce(&topic, &[ProducedRecord::new(record.clone())]).await.expect("produce");
        let seen = sent as u64 + 1;
        wait_for_shadow(&host, PLUGIN, &format!("record {seen} compared"), |view| {
            num(view, "/rows/extra") + num(view, "/failures/changed") == seen
        })
        .await;
    }
    let view = shadow_view(&host, PLUGIN).await.1;
    assert_eq!(view["batches"], json!({"compared": 13, "skipped": 0, "trapped": 0}), "{view:#}");
    assert_eq!(view["rows"], json!({"equal": 0, "changed": 0, "missing": 0, "extra": 10}), "{view:#}");
    assert_eq!(
        (
            num(&view, "/failures/appeared"),
            num(&view, "/failures/disappeared"),
            num(&view, "/failures/changed")
        ),
        (0, 10, 3),
        "version 2 fixes the ten good records; the three without `id` fail for another reason: {view:#}"
    );
    let reasons = view["failures"]["by_reason"].as_object().cloned().unwrap_or_default();
    assert_eq!(reasons.len(), 1, "{view:#}");
    assert_eq!(reasons.values().next(), Some(&json!(3)), "{view:#}");
    assert!(view["ms_per_batch"]["current"].is_number() && view["ms_per_batch"]["candidate"].is_number());
    assert_eq!(
        (&view["current"]["version"], &view["candidate"]["version"]),
        (&json!("1.0.0"), &json!("2.0.0"))
    );
    // Each good record differs twice (its failure went, a row came), each bad one once.
    assert_eq!(view["samples"]["kept"], json!(23), "{view:#}");
    let metric = |name: &'static str, labels: &'static str| host.metric_sum(name, labels);
    assert_eq!(metric("sluice_shadow_batches_total", "outcome=\"compared\"").await, 13.0);
    assert_eq!(metric("sluice_shadow_rows_total", "outcome=\"extra\"").await, 10.0);
    assert_eq!(metric("sluice_shadow_failures_total", "change=\"disappeared\"").await, 10.0);

    // The sinks got the current version's results only: every record a dead letter of 1.0.0.
    let all_dead = eventually(Duration::from_secs(60), || async {
        dead_letters(&scope, &letters_prefix).await.len() >= 13
    })
    .await;
    assert!(all_dead, "version 1 fails every record:\n{}", host.log());
    let letters = dead_letters(&scope, &letters_prefix).await;
    assert_eq!(letters.len(), 13);
    assert!(letters.iter().all(|l| l["plugin_version"] == json!(format!("{PLUGIN}@1.0.0"))), "{letters:?}");
    assert!(table_objects(scope.s3(), &bucket, &table).await.expect("list").is_empty(), "no candidate rows");

    let samples_written = eventually(Duration::from_secs(30), || async {
        lines(&objects(&scope, &samples_prefix).await).len() == 23
    })
    .await;
    assert!(samples_written, "23 sample lines under {samples_prefix}:\n{}", host.log());
    let samples = objects(&scope, &samples_prefix).await;
    let sample_lines = lines(&samples);
    let extra_rows: Vec<&Value> =
        sample_lines.iter().filter(|line| line["what"] == "row only in new").collect();
    assert_eq!(extra_rows.len(), 10, "{sample_lines:#?}");
    for line in &sample_lines {
        assert_eq!(
            (&line["current_version"], &line["candidate_version"]),
            (&json!("1.0.0"), &json!("2.0.0"))
        );
        let value: Value =
            serde_json::from_str(line["record"]["value"].as_str().expect("the record's value"))
                .expect("JSON");
        if line["what"] == "row only in new" {
            assert_eq!(line["candidate"]["id"], value["id"], "the row made of this record: {line}");
            assert!(line["current"].is_null(), "{line}");
        }
    }

    // A sweep re-runs the dead letters through version 1 and leaves the samples alone.
    let swept = host.cli(&["sweep", "--pipeline", "records"]);
    let swept_out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{swept_out}{}", String::from_utf8_lossy(&swept.stderr));
    assert!(swept_out.contains("13 records: 0 passed"), "{swept_out}");
    assert_eq!(objects(&scope, &samples_prefix).await, samples, "sweep does not touch shadow samples");
    assert!(
        scope.s3().list_keys(&bucket, &format!("{letters_prefix}swept/")).await.expect("list").is_empty(),
        "nothing was swept"
    );

    let failed_before = metric("sluice_plugin_failed_records_total", "plugin=\"fixture-hostile\"").await;
    let path = format!("plugins/{PLUGIN}/shadow/promote");
    let (status, body) = admin(&host, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["version"], &body["previous_version"]), (&json!("2.0.0"), &json!("1.0.0")), "{body}");
    assert_eq!(body["counts"]["rows_extra"], json!(10), "{body}");
    assert_eq!(
        file_names(plugins.path()),
        [format!("{PLUGIN}.wasm")],
        "the candidate's file became the plugin"
    );
    assert_eq!(std::fs::read(plugins.path().join(format!("{PLUGIN}.wasm"))).expect("read"), version_2);
    assert_eq!(shadow_view(&host, PLUGIN).await.0, 404);
    let view = plugin_view(&host, PLUGIN).await;
    assert_eq!((&view["version"], &view["shadow"]), (&json!("2.0.0"), &Value::Null), "{view}");

    let promoted: Vec<String> = (10..15).map(|n| format!("r-{n:02}")).collect();
    let records: Vec<ProducedRecord> =
        promoted.iter().map(|id| ProducedRecord::new(json!({"id": id, "n": 1}).to_string())).collect();
    scope.produce(&topic, &records).await.expect("produce");
    let loaded = eventually(Duration::from_secs(60), || async {
        texts(&table_rows(&scope, &table).await, "id") == promoted
    })
    .await;
    assert!(loaded, "version 2 loads the new records:\n{}", host.log());
    assert_eq!(dead_letters(&scope, &letters_prefix).await.len(), 13, "no new dead letter");
    let failed_after = metric("sluice_plugin_failed_records_total", "plugin=\"fixture-hostile\"").await;
    assert_eq!(failed_after, failed_before, "no record failed after the promotion");

    // Another candidate, from the plugins directory, that makes the same rows; then discarded.
    place(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}-v3")), &format!("{PLUGIN}.shadow.wasm"));
    wait_for_shadow(&host, PLUGIN, "version 3 shadows", |view| view["candidate"]["version"] == "3.0.0").await;
    for (sent, id) in ["r-15", "r-16"].iter().enumerate() {
        scope
            .produce(&topic, &[ProducedRecord::new(json!({"id": id, "n": 2}).to_string())])
            .await
            .expect("produce");
        let seen = sent as u64 + 1;
        wait_for_shadow(&host, PLUGIN, "equal rows", |view| num(view, "/rows/equal") == seen).await;
    }
    let view = shadow_view(&host, PLUGIN).await.1;
    assert_eq!(view["rows"], json!({"equal": 2, "changed": 0, "missing": 0, "extra": 0}), "{view:#}");
    assert_eq!(view["samples"]["kept"], json!(0), "{view:#}");
    let (status, body) =
        admin(&host, reqwest::Method::DELETE, &format!("plugins/{PLUGIN}/shadow"), None).await;
    assert_eq!((status, &body["discarded"]), (200, &json!("3.0.0")), "{body}");
    assert_eq!(file_names(plugins.path()), [format!("{PLUGIN}.wasm")], "the candidate's file is removed");
    assert_eq!(shadow_view(&host, PLUGIN).await.0, 404);
    assert_eq!(plugin_view(&host, PLUGIN).await["version"], json!("2.0.0"), "discarding changes no version");
    let mut all: Vec<String> = promoted.clone();
    all.extend(["r-15".to_owned(), "r-16".to_owned()]);
    let loaded = eventually(Duration::from_secs(60), || async {
        texts(&table_rows(&scope, &table).await, "id") == all
    })
    .await;
    assert!(loaded, "the table holds each record once, from the current version:\n{}", host.log());
    assert!(
        scope
            .s3()
            .list_keys(&bucket, &format!("{letters_prefix}shadow/{PLUGIN}/3.0.0/"))
            .await
            .expect("list")
            .is_empty(),
        "a candidate that never differed keeps no samples"
    );
}

/// The repository's SendGrid events pipeline reading `topic`, its table and dead letters under
/// `prefix`.
fn events_pipeline(topic: &str, group: &str, bucket: &str, prefix: &str) -> String {
    let quoted = |text: &str| format!("\"{text}\"");
    repo_pipeline(
        "sendgrid-events",
        &[
            ("name", quoted("events")),
            ("source.topic", quoted(topic)),
            ("source.group", quoted(group)),
            ("source.batch_records", "100".into()),
            ("source.batch_max_ms", "300".into()),
            ("sinks.bucket", quoted(bucket)),
            ("sinks.prefix", quoted(&format!("{prefix}table"))),
            ("sinks.rotate_ms", "1000".into()),
            ("dead_letters.bucket", quoted(bucket)),
            ("dead_letters.prefix", quoted(&format!("{prefix}dead-letters"))),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_traps_on_every_batch_is_counted_and_changes_nothing() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "shadow_trap").await.expect("scope");
    let topic = scope.create_topic("events", 1).await.expect("topic");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(NORMALIZE), NORMALIZE);
    // Left in the plugins directory before the start: it shadows from the start.
    place(
        plugins.path(),
        &plugin_path("fixtures/fixture-trapping-normalize"),
        &format!("{NORMALIZE}.shadow.wasm"),
    );
    let (prefix, bucket) = (scope.prefix(), scope.bucket().to_owned());
    let mut env = services.host_env();
    env.push(("SLUICE_ADMIN_TOKEN", TOKEN.to_owned()));
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("events", events_pipeline(&topic, &scope.group_id("trap"), &bucket, &prefix))],
        env: &env,
        plugins_dir: Some(plugins.path()),
    })
    .await;
    let view = wait_for_shadow(&host, NORMALIZE, "the candidate shadows from the start", |_| true).await;
    assert!(
        view["candidate"]["version"].as_str().is_some_and(|version| version.ends_with("-trapping")),
        "{view:#}"
    );

    let ids = ["e-1", "e-2", "e-3"];
    for (sent, id) in ids.iter().enumerate() {
        let event = json!([{"email": format!("{id}@example.com"), "timestamp": 1_700_000_000, "event": "delivered",
                            "sg_event_id": id, "sg_message_id": "msg.1", "category": ["news"], "mail_id": "m-1"}]);
        scope.produce(&topic, &[ProducedRecord::new(event.to_string())]).await.expect("produce");
        let seen = sent as u64 + 1;
        wait_for_shadow(&host, NORMALIZE, "trapped batch counted", |view| {
            num(view, "/batches/trapped") == seen
        })
        .await;
    }
    let view = shadow_view(&host, NORMALIZE).await.1;
    assert_eq!(view["batches"], json!({"compared": 0, "skipped": 0, "trapped": 3}), "{view:#}");
    assert_eq!(view["rows"], json!({"equal": 0, "changed": 0, "missing": 0, "extra": 0}), "{view:#}");
    let reasons = view["failures"]["by_reason"].as_object().cloned().unwrap_or_default();
    assert_eq!(reasons.values().filter_map(Value::as_u64).sum::<u64>(), 3, "{view:#}");
    assert_eq!(host.metric_sum("sluice_shadow_batches_total", "outcome=\"trapped\"").await, 3.0);
    assert_eq!(
        host.metric_sum("sluice_plugin_traps_total", "").await,
        0.0,
        "the current version never trapped"
    );

    let table = format!("{prefix}table/");
    let expected: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let loaded = eventually(Duration::from_secs(60), || async {
        texts(&table_rows(&scope, &table).await, "sg_event_id") == expected
    })
    .await;
    assert!(loaded, "the current version's rows, as without a candidate:\n{}", host.log());
    let letters_prefix = format!("{prefix}dead-letters/");
    assert!(dead_letters(&scope, &letters_prefix).await.is_empty(), "no record failed");
    assert!(
        scope.s3().list_keys(&bucket, &format!("{letters_prefix}shadow/")).await.expect("list").is_empty(),
        "a trapped batch has nothing to compare, so no samples"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_cannot_keep_up_skips_batches_and_says_so() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "shadow_skip").await.expect("scope");
    let topic = scope.create_topic("records", 1).await.expect("topic");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}-v2")), PLUGIN);
    // `slow-from-v3`: versions 2 and 3 make the same rows, version 3 half a second later.
    place(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}-v3")), &format!("{PLUGIN}.shadow.wasm"));
    let (prefix, bucket) = (scope.prefix(), scope.bucket().to_owned());
    // One record per batch, so batches come far faster than the candidate answers.
    let pipeline = format!(
        "name = \"records\"\n[source]\nkind = \"kafka\"\ntopic = \"{topic}\"\ngroup = \"{}\"\n\
         batch_records = 1\nbatch_max_ms = 50\n\
         [[steps]]\nplugin = \"{PLUGIN}\"\nconfig = {{ behavior = \"slow-from-v3\" }}\n\
         [[sinks]]\nfrom = \"{PLUGIN}.rows\"\nkind = \"parquet-s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}table\"\n\
         rotate_ms = 1000\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        scope.group_id("skip")
    );
    let mut env = services.host_env();
    env.push(("SLUICE_ADMIN_TOKEN", TOKEN.to_owned()));
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &services.host_config(),
        pipelines: &[("records", pipeline)],
        env: &env,
        plugins_dir: Some(plugins.path()),
    })
    .await;
    wait_for_shadow(&host, PLUGIN, "version 3 shadows from the start", |view| {
        view["candidate"]["version"] == "3.0.0"
    })
    .await;

    let ids: Vec<String> = (0..20).map(|n| format!("s-{n:02}")).collect();
    let records: Vec<ProducedRecord> =
        ids.iter().map(|id| ProducedRecord::new(json!({"id": id, "n": 1}).to_string())).collect();
    scope.produce(&topic, &records).await.expect("produce");
    let table = format!("{prefix}table/");
    let loaded = eventually(Duration::from_secs(60), || async {
        texts(&table_rows(&scope, &table).await, "id") == ids
    })
    .await;
    assert!(loaded, "every record loads once, whatever the candidate does:\n{}", host.log());
    let view = wait_for_shadow(&host, PLUGIN, "each batch compared or skipped", |view| {
        num(view, "/batches/compared") + num(view, "/batches/skipped") == 20
    })
    .await;
    let (compared, skipped) = (num(&view, "/batches/compared"), num(&view, "/batches/skipped"));
    assert!(compared >= 1 && skipped >= 1, "a busy candidate skips batches: {view:#}");
    assert_eq!(view["batches"]["trapped"], json!(0), "{view:#}");
    assert_eq!(
        view["rows"],
        json!({"equal": compared, "changed": 0, "missing": 0, "extra": 0}),
        "the batches it saw are compared whole: {view:#}"
    );
    let skipped_metric = host.metric_sum("sluice_shadow_batches_total", "outcome=\"skipped\"").await;
    assert_eq!(skipped_metric, skipped as f64, "the metric says so too");
    let ms = |who: &str| view["ms_per_batch"][who].as_f64().unwrap_or_default();
    assert!(ms("candidate") >= 500.0 && ms("candidate") > ms("current"), "{view:#}");
    let letters = dead_letters(&scope, &format!("{prefix}dead-letters/")).await;
    assert!(letters.is_empty(), "no record failed: {letters:?}");
}
