//! Canary rollouts on a Kafka pipeline against the real broker and S3 server, while a producer
//! keeps producing: a candidate that fails far more records than the current version is rolled
//! back on its own, with the reason in the admin API and the metrics, and its dead letters are
//! swept into rows by the current version; a candidate as good as the current one serves its
//! partitions until it is promoted; a candidate that traps on every batch is rolled back after
//! `max_traps`, its batches re-run on the current version. In each, every acknowledged record
//! ends as exactly one row or one dead letter.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_e2e::artifacts::{install_plugin, plugin_path};
use sluice_e2e::host::{HostSpec, SluiceHost};
use sluice_e2e::table::read_table;
use sluice_e2e::{ProducedRecord, TestScope, eventually, require_services};

const TOKEN: &str = "admin-token-canary-7d1e";
const PLUGIN: &str = "fixture-hostile";
const PARTITIONS: i32 = 4;
/// With a 30% share, partitions 0 and 3 of 4 go to the candidate (see `serves_partition`).
const CANDIDATE_PARTITIONS: [i32; 2] = [0, 3];
/// [`SETTINGS`] as the host's `[plugins.canary]`, for a candidate placed in the plugins directory.
const CONFIG_SETTINGS: &str = "[plugins.canary]\nshare_percent = 30\nwindow_batches = 10\nmin_records = 20\n\
                               max_failure_ratio_margin = 0.05\nmax_traps = 3\n";
const SETTINGS: &str =
    "share_percent=30&window_batches=10&min_records=20&max_failure_ratio_margin=0.05&max_traps=3";

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

async fn canary_view(host: &SluiceHost) -> (u16, Value) {
    admin(host, reqwest::Method::GET, &format!("plugins/{PLUGIN}/canary"), None).await
}

/// Polls `GET .../canary` until `check` holds, or panics with the last view and the host log.
async fn wait_for_canary(host: &SluiceHost, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let held = eventually(Duration::from_secs(90), || async {
        let (status, view) = canary_view(host).await;
        let holds = status == 200 && check(&view);
        *last.lock().expect("view") = view;
        holds
    })
    .await;
    let view = last.lock().expect("view").clone();
    assert!(held, "{what}; last view {view:#}\n{}", host.log());
    view
}

/// The sum of metric `name` over the label sets holding every one of `labels`, in any order.
async fn metric(host: &SluiceHost, name: &str, labels: &[&str]) -> f64 {
    let sets = host.metric(name).await;
    sets.iter()
        .filter(|(set, _)| labels.iter().all(|label| set.contains(label)))
        .map(|(_, value)| value)
        .sum()
}

fn num(view: &Value, pointer: &str) -> u64 {
    view.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list plugins dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Produces records `{"id": "r-<n>", "n": n}` round-robin over the partitions, 20 every 50 ms,
/// until stopped; the ids the broker acknowledged, by the partition they went to.
struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, i32>>,
}

impl Load {
    fn start(scope: &TestScope, topic: &str) -> Self {
        let producer = scope.producer().expect("producer");
        let topic = topic.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut acknowledged = BTreeMap::new();
            let mut n = 0_u64;
            while !stopping.load(Ordering::Relaxed) {
                let records: Vec<(String, i32, ProducedRecord)> = (0..20)
                    .map(|_| {
                        n += 1;
                        let id = format!("r-{n:06}");
                        let partition = (n % PARTITIONS as u64) as i32;
                        let value = json!({"id": id, "n": n}).to_string();
                        (id, partition, ProducedRecord::new(value).to_partition(partition))
                    })
                    .collect();
                let produced: Vec<ProducedRecord> = records.iter().map(|(_, _, r)| r.clone()).collect();
                if sluice_e2e::kafka::produce(&producer, &topic, &produced).await.is_ok() {
                    acknowledged.extend(records.into_iter().map(|(id, partition, _)| (id, partition)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            acknowledged
        });
        Load { stop, task }
    }

    async fn finish(self) -> BTreeMap<String, i32> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("producer task")
    }
}

/// Every dead letter of the pipeline, neither swept nor a shadow sample.
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

/// The id of the record a dead letter holds.
fn letter_id(letter: &Value) -> String {
    let value: Value = serde_json::from_str(letter["value"].as_str().expect("a text value")).expect("JSON");
    value["id"].as_str().expect("an id").to_owned()
}

async fn row_ids(scope: &TestScope, table: &str) -> Vec<String> {
    let rows = read_table(scope.s3(), scope.bucket(), table).await.expect("read table");
    rows.iter().filter_map(|row| row.text("id").map(str::to_owned)).collect()
}

/// Waits until rows and dead letters together account for every acknowledged id, then checks
/// that each id is exactly one of them; the dead letters found.
async fn account_for_every_record(
    scope: &TestScope,
    host: &SluiceHost,
    acknowledged: &BTreeMap<String, i32>,
    table: &str,
    letters: &str,
) -> Vec<Value> {
    let settled = eventually(Duration::from_secs(90), || async {
        row_ids(scope, table).await.len() + dead_letters(scope, letters).await.len() >= acknowledged.len()
    })
    .await;
    let rows = row_ids(scope, table).await;
    let dead = dead_letters(scope, letters).await;
    assert!(
        settled,
        "{} rows and {} dead letters for {} records\n{}",
        rows.len(),
        dead.len(),
        acknowledged.len(),
        host.log()
    );
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for id in rows.iter().cloned().chain(dead.iter().map(letter_id)) {
        *seen.entry(id).or_default() += 1;
    }
    let lost: Vec<&String> = acknowledged.keys().filter(|id| !seen.contains_key(*id)).collect();
    let twice: Vec<(&String, &u32)> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(twice.is_empty(), "records stored twice: {:?}", &twice[..twice.len().min(5)]);
    assert_eq!(seen.len(), acknowledged.len(), "nothing but the produced records");
    dead
}

struct Setup {
    scope: TestScope,
    host: SluiceHost,
    plugins: tempfile::TempDir,
    topic: String,
    table: String,
    letters: String,
}

/// A host whose pipeline runs `fixture-hostile` version 2 with `behavior` over a topic of four
/// partitions into a Parquet table, with dead letters on S3.
/// `extra_config` is added to the host config.
async fn setup(
    services: &'static sluice_e2e::Services,
    name: &str,
    behavior: &str,
    extra_config: &str,
) -> Setup {
    let scope = TestScope::new(services, name).await.expect("scope");
    let topic = scope.create_topic("records", PARTITIONS).await.expect("topic");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}-v2")), PLUGIN);
    let (prefix, bucket) = (scope.prefix(), scope.bucket().to_owned());
    let pipeline = format!(
        "name = \"records\"\n\
         [source]\nkind = \"kafka\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\nbatch_records = 100\nbatch_max_ms = 200\n\
         [[steps]]\nplugin = \"{PLUGIN}\"\nconfig = {{ behavior = \"{behavior}\" }}\n\
         [[sinks]]\nfrom = \"{PLUGIN}.rows\"\nkind = \"parquet-s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}table\"\n\
         rotate_ms = 1000\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        group = scope.group_id("canary")
    );
    let mut env = services.host_env();
    env.push(("SLUICE_ADMIN_TOKEN", TOKEN.to_owned()));
    let host = SluiceHost::start_with(HostSpec {
        extra_config: &format!("{}\n{extra_config}", services.host_config()),
        pipelines: &[("records", pipeline)],
        env: &env,
        plugins_dir: Some(plugins.path()),
    })
    .await;
    let table = format!("{prefix}table/");
    let letters = format!("{prefix}dead-letters/");
    Setup { scope, host, plugins, topic, table, letters }
}

/// Uploads the fixture built as `version` (`v1` is the plain build) as a canary with [`SETTINGS`].
async fn start_canary(host: &SluiceHost, version: &str) -> Value {
    let built =
        if version == "v1" { format!("fixtures/{PLUGIN}") } else { format!("fixtures/{PLUGIN}-{version}") };
    let component = std::fs::read(plugin_path(&built)).expect("read candidate");
    let path = format!("plugins/{PLUGIN}/canary?{SETTINGS}");
    let (status, body) = admin(host, reqwest::Method::PUT, &path, Some(component)).await;
    assert_eq!(status, 200, "{body}\n{}", host.log());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_candidate_is_rolled_back_under_load_and_its_dead_letters_sweep_into_rows() {
    let Some(services) = require_services!() else { return };
    let Setup { scope, host, plugins, topic, table, letters } =
        setup(services, "canary_rollback", "fail-before-v2", "").await;
    assert_eq!(canary_view(&host).await.0, 404, "no canary yet");
    let load = Load::start(&scope, &topic);
    let warm =
        eventually(Duration::from_secs(60), || async { !row_ids(&scope, &table).await.is_empty() }).await;
    assert!(warm, "version 2 loads rows before the canary:\n{}", host.log());

    // Version 1 fails every record on its partitions; version 2 none.
    let started = start_canary(&host, "v1").await;
    assert_eq!(
        (&started["version"], &started["current_version"]),
        (&json!("1.0.0"), &json!("2.0.0")),
        "{started}"
    );
    assert_eq!(started["settings"]["share_percent"], json!(30), "{started}");
    let view =
        wait_for_canary(&host, "the candidate is rolled back", |view| view["state"] == "rolled_back").await;
    assert_eq!(view["rollback"]["reason"], json!("failure_ratio"), "{view:#}");
    assert!(num(&view, "/candidate/counts/batches") <= 10, "rolled back within the window: {view:#}");
    assert!(num(&view, "/candidate/counts/failed") >= 20, "{view:#}");
    assert_eq!(num(&view, "/current/counts/failed"), 0, "{view:#}");
    assert!(host.log().contains("canary rolled back"), "the rollback is logged at warn");
    let labels = ["plugin=\"fixture-hostile\"", "candidate_version=\"1.0.0\"", "reason=\"failure_ratio\""];
    let rollbacks = metric(&host, "sluice_canary_rollbacks_total", &labels).await;
    assert_eq!(rollbacks, 1.0, "{:?}", host.metric("sluice_canary_rollbacks_total").await);
    assert_eq!(
        file_names(plugins.path()),
        [format!("{PLUGIN}.canary.rolled-back.wasm"), format!("{PLUGIN}.wasm")],
        "a restart does not serve the rolled-back candidate"
    );

    // The load goes on after the rollback, all on version 2.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acknowledged = load.finish().await;
    let dead = account_for_every_record(&scope, &host, &acknowledged, &table, &letters).await;
    assert!(!dead.is_empty(), "the candidate failed records");
    for letter in &dead {
        assert_eq!(letter["plugin_version"], json!("fixture-hostile@1.0.0"), "{letter}");
        assert_eq!(letter["trapped"], json!(false), "{letter}");
        let partition = i32::try_from(letter["partition"].as_i64().expect("partition")).expect("i32");
        assert!(CANDIDATE_PARTITIONS.contains(&partition), "only the candidate's partitions: {letter}");
    }
    assert_eq!(canary_view(&host).await.1["state"], json!("rolled_back"), "the verdict is kept");

    // The sweep re-runs the candidate's dead letters with version 2: every record is a row.
    let swept = host.cli(&["sweep", "--pipeline", "records"]);
    let swept_out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{swept_out}{}", String::from_utf8_lossy(&swept.stderr));
    assert!(swept_out.contains(&format!("{n} records: {n} passed", n = dead.len())), "{swept_out}");
    let mut rows = row_ids(&scope, &table).await;
    rows.sort();
    let expected: Vec<String> = acknowledged.keys().cloned().collect();
    assert_eq!(rows, expected, "each acknowledged record is exactly one row after the sweep");
    assert!(dead_letters(&scope, &letters).await.is_empty(), "no dead letter is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_as_good_as_the_current_one_keeps_serving_and_is_promoted() {
    let Some(services) = require_services!() else { return };
    let Setup { scope, host, plugins, topic, table, letters } =
        setup(services, "canary_promote", "fail-before-v2", "").await;
    let load = Load::start(&scope, &topic);
    // Version 3 makes the same rows as version 2 under `fail-before-v2`.
    start_canary(&host, "v3").await;
    let view = wait_for_canary(&host, "the candidate serves its share", |view| {
        num(view, "/candidate/counts/records") >= 200 && num(view, "/current/counts/records") >= 200
    })
    .await;
    assert_eq!(view["state"], json!("serving"), "{view:#}");
    assert_eq!(num(&view, "/candidate/counts/failed"), 0, "{view:#}");
    assert_eq!(view["candidate"]["version"], json!("3.0.0"), "{view:#}");
    assert!(file_names(plugins.path()).contains(&format!("{PLUGIN}.canary.wasm")), "kept for a restart");
    let served =
        metric(&host, "sluice_canary_records_total", &["role=\"candidate\"", "version=\"3.0.0\""]).await;
    assert!(served >= 200.0, "{:?}", host.metric("sluice_canary_records_total").await);

    let (status, body) =
        admin(&host, reqwest::Method::POST, &format!("plugins/{PLUGIN}/canary/promote"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["version"], &body["previous_version"]), (&json!("3.0.0"), &json!("2.0.0")), "{body}");
    assert_eq!(
        file_names(plugins.path()),
        [format!("{PLUGIN}.wasm")],
        "the candidate's file became the plugin"
    );
    assert_eq!(
        std::fs::read(plugins.path().join(format!("{PLUGIN}.wasm"))).expect("read"),
        std::fs::read(plugin_path(&format!("fixtures/{PLUGIN}-v3"))).expect("read v3")
    );
    let (_, view) = canary_view(&host).await;
    assert_eq!(view["state"], json!("promoted"), "{view:#}");
    let (status, body) =
        admin(&host, reqwest::Method::POST, &format!("plugins/{PLUGIN}/canary/promote"), None).await;
    assert_eq!(status, 404, "nothing serves to promote twice: {body}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let acknowledged = load.finish().await;
    let dead = account_for_every_record(&scope, &host, &acknowledged, &table, &letters).await;
    assert!(dead.is_empty(), "neither version failed a record: {dead:?}");
    assert_eq!(
        host.metric_sum("sluice_canary_rollbacks_total", "plugin=\"fixture-hostile\"").await,
        0.0,
        "no rollback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_that_traps_on_every_batch_is_rolled_back_and_loses_nothing() {
    let Some(services) = require_services!() else { return };
    let Setup { scope, mut host, plugins, topic, table, letters } =
        setup(services, "canary_traps", "panic-from-v3", CONFIG_SETTINGS).await;
    let load = Load::start(&scope, &topic);
    // Version 3 panics on every batch under `panic-from-v3`; version 2 makes rows. Placed in the
    // plugins directory, it is judged by the host's `[plugins.canary]`.
    let temporary = plugins.path().join(format!(".{PLUGIN}.canary.wasm.tmp"));
    std::fs::copy(plugin_path(&format!("fixtures/{PLUGIN}-v3")), &temporary).expect("copy candidate");
    std::fs::rename(&temporary, plugins.path().join(format!("{PLUGIN}.canary.wasm")))
        .expect("place candidate");
    let view =
        wait_for_canary(&host, "the candidate is rolled back", |view| view["state"] == "rolled_back").await;
    assert_eq!(view["candidate"]["version"], json!("3.0.0"), "{view:#}");
    assert_eq!((&view["settings"]["share_percent"], &view["settings"]["max_traps"]), (&json!(30), &json!(3)));
    assert_eq!(view["rollback"]["reason"], json!("traps"), "{view:#}");
    assert_eq!(num(&view, "/candidate/counts/trapped"), 3, "max_traps trapped batches: {view:#}");
    assert_eq!(num(&view, "/candidate/counts/records"), 0, "{view:#}");
    let labels = ["plugin=\"fixture-hostile\"", "candidate_version=\"3.0.0\"", "reason=\"traps\""];
    let rollbacks = metric(&host, "sluice_canary_rollbacks_total", &labels).await;
    assert_eq!(rollbacks, 1.0, "{:?}", host.metric("sluice_canary_rollbacks_total").await);
    assert!(file_names(plugins.path()).contains(&format!("{PLUGIN}.canary.rolled-back.wasm")));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let acknowledged = load.finish().await;
    let dead = account_for_every_record(&scope, &host, &acknowledged, &table, &letters).await;
    assert!(dead.is_empty(), "trapped batches re-ran on version 2, nothing was dead-lettered: {dead:?}");
    // Discarding the ended rollout forgets it.
    let (status, body) =
        admin(&host, reqwest::Method::DELETE, &format!("plugins/{PLUGIN}/canary"), None).await;
    assert_eq!((status, &body["state"]), (200, &json!("rolled_back")), "{body}");
    assert_eq!(canary_view(&host).await.0, 404);

    // A restart serves version 2 alone: the rolled-back file is neither a canary nor a plugin.
    host.restart().await;
    let (status, body) = admin(&host, reqwest::Method::GET, "plugins", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], json!([]), "nothing refused at start: {body}");
    let plugin =
        body["plugins"].as_array().and_then(|list| list.iter().find(|p| p["name"] == PLUGIN)).cloned();
    let plugin = plugin.unwrap_or(Value::Null);
    assert_eq!(
        (&plugin["version"], &plugin["canary"], &plugin["rejected"]),
        (&json!("2.0.0"), &Value::Null, &Value::Null),
        "{plugin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_canary_serves_its_share_of_requests_and_is_rolled_back() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}-v2")), PLUGIN);
    // `fail-before-v2`: version 1 answers 400 to every request, version 2 202.
    let pipeline = format!(
        "name = \"rows\"\n[source]\nkind = \"http\"\npath = \"/v1/rows\"\n\
         [[steps]]\nplugin = \"{PLUGIN}\"\n[steps.config]\nbehavior = \"fail-before-v2\"\n"
    );
    let host = SluiceHost::start_with(HostSpec {
        extra_config: "",
        pipelines: &[("rows", pipeline)],
        env: &[("SLUICE_ADMIN_TOKEN", TOKEN.to_owned())],
        plugins_dir: Some(plugins.path()),
    })
    .await;
    let component = std::fs::read(plugin_path(&format!("fixtures/{PLUGIN}"))).expect("read version 1");
    // One record per request, so the window must hold at least `min_records` requests.
    let path = format!("plugins/{PLUGIN}/canary?share_percent=30&window_batches=50&min_records=20");
    let (status, body) = admin(&host, reqwest::Method::PUT, &path, Some(component)).await;
    assert_eq!(status, 200, "{body}");

    let client = reqwest::Client::new();
    let mut statuses: Vec<u16> = Vec::new();
    for n in 0..200 {
        let request =
            client.post(format!("{}/v1/rows", host.url)).json(&json!({"id": format!("q-{n}"), "n": n}));
        statuses.push(request.send().await.map(|r| r.status().as_u16()).unwrap_or(0));
        if canary_view(&host).await.1["state"] == "rolled_back" {
            break;
        }
    }
    let refused = statuses.iter().filter(|status| **status == 400).count();
    let accepted = statuses.iter().filter(|status| **status == 202).count();
    assert_eq!(refused + accepted, statuses.len(), "{statuses:?}");
    assert_eq!(
        refused, 20,
        "the candidate served 30% of the requests until it failed min_records: {statuses:?}"
    );
    assert!((40..=60).contains(&accepted), "the current version served the other 70%: {statuses:?}");
    let (_, view) = canary_view(&host).await;
    assert_eq!(
        (&view["state"], &view["rollback"]["reason"]),
        (&json!("rolled_back"), &json!("failure_ratio"))
    );
    assert_eq!(num(&view, "/candidate/counts/records"), 20, "{view:#}");

    for n in 0..30 {
        let request = client.post(format!("{}/v1/rows", host.url)).json(&json!({"id": format!("after-{n}")}));
        let status = request.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        assert_eq!(status, 202, "the current version serves every request after the rollback");
    }
}
