//! The user-status ETL end to end against real SeaweedFS, Kafka and PostgreSQL: a request names
//! an S3 object, the job topic hands the job to a host, and the plugins' rows land in three
//! tables of the test's own schema in one transaction.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_e2e::artifacts::{install_plugin, plugin_path, plugin_port, repo_pipeline};
use sluice_e2e::host::{HostSpec, SluiceHost};
use sluice_e2e::{TestScope, eventually, require_services};

const PATH: &str = "/v1/jobs/user-status";

/// `pipelines/user-status.toml` itself, with this scope's job topic, group and dead-letter
/// prefix.
fn pipeline(scope: &TestScope) -> String {
    let topic = scope.topic("jobs");
    repo_pipeline(
        "user-status",
        &[
            ("source.job_topic", format!("\"{topic}\"")),
            ("source.group", format!("\"g-{topic}\"")),
            ("dead_letters.bucket", format!("\"{}\"", scope.bucket())),
            ("dead_letters.prefix", format!("\"{}dead-letters\"", scope.prefix())),
        ],
    )
}

/// A host serving the pipeline, its tables in the scope's schema (`search_path` in the URL).
async fn start_host(scope: &TestScope) -> SluiceHost {
    start_host_with(scope, ("user-status", pipeline(scope)), None).await
}

/// A host serving `pipeline` (name, TOML) with the built plugins or those in `plugins_dir`,
/// its tables in the scope's schema.
async fn start_host_with(
    scope: &TestScope,
    pipeline: (&str, String),
    plugins_dir: Option<&std::path::Path>,
) -> SluiceHost {
    let services = scope.services();
    let config = services.host_config();
    let mut env: Vec<(&str, String)> = services.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    env.push(("DATABASE_URL", scope.database_url()));
    SluiceHost::start_with(HostSpec { extra_config: &config, pipelines: &[pipeline], env: &env, plugins_dir })
        .await
}

async fn post(host: &SluiceHost, body: &Value) -> (u16, Value) {
    let response =
        reqwest::Client::new().post(format!("{}{PATH}", host.url)).json(body).send().await.expect("post job");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(host: &SluiceHost, path_and_query: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path_and_query}", host.url)).await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the job until `done` holds for it, or panics with the last answer and the host log.
async fn wait_for_job(
    host: &SluiceHost,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let reached = eventually(timeout, || async {
        let (status, job) = get(host, &format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        let holds = done(&job);
        *last.lock().expect("job") = job;
        holds
    })
    .await;
    let job = last.into_inner().expect("job");
    assert!(reached, "job {id} did not get there in {timeout:?}: {job}\n{}", host.log());
    job
}

fn finished(job: &Value) -> bool {
    matches!(job["state"].as_str(), Some("succeeded" | "failed"))
}

/// Asks for `key` and waits for the job to finish; returns the job.
async fn load(host: &SluiceHost, bucket: &str, key: &str) -> Value {
    let (status, accepted) = post(host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let job = wait_for_job(host, &id, Duration::from_secs(120), finished).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", host.log());
    job
}

type UserStatusRow = (String, String, String, i32, bool);
type LogRow = (String, Option<String>, Option<String>);

async fn user_status(client: &tokio_postgres::Client) -> Vec<UserStatusRow> {
    let rows = client
        .query(
            "SELECT userid, createdat, status, lastvisitedat, isblacklisted FROM user_status ORDER BY userid",
            &[],
        )
        .await
        .expect("user_status");
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
}

async fn user_status_log(client: &tokio_postgres::Client) -> Vec<LogRow> {
    let rows = client
        .query(
            "SELECT userid, updatedon, status FROM user_status_log ORDER BY userid, updatedon, status",
            &[],
        )
        .await
        .expect("user_status_log");
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

async fn error_recs(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query("SELECT error_rec FROM user_status_error_rec ORDER BY error_rec", &[])
        .await
        .expect("error_rec");
    rows.iter().map(|r| r.get(0)).collect()
}

/// Staging tables left in the scope's schema.
async fn staging_tables(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'sluice_stage_%'",
            &[],
        )
        .await
        .expect("staging tables")
        .get(0)
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0)
}

fn status_row(user: &str, created: &str, status: &str, visited: i32, blacklisted: bool) -> UserStatusRow {
    (user.into(), created.into(), status.into(), visited, blacklisted)
}

fn log_row(user: &str, updated: &str, status: &str) -> LogRow {
    (user.into(), Some(updated.into()), Some(status.into()))
}

/// Valid records, a null in each field, an empty status, an empty `statusLogs` and a missing
/// field, as JSON lines.
const RECORDS: &str = r#"{"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[{"status":"INITIATED","updatedOn":1644527391},{"status":"VERIFIED","updatedOn":"1644527400"}]}
{"userId":null,"createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[{"status":"INITIATED","updatedOn":1644527391}]}
{"userId":"0001","createdAt":null,"lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}
{"userId":"0002","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":null,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}
{"userId":"0003","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":null,"isBlacklisted":false,"statusLogs":[]}
{"userId":"0004","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":null,"statusLogs":[]}
{"userId":"0005","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":null}
{"userId":"0006","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"","isBlacklisted":false,"statusLogs":[{"status":"INITIATED","updatedOn":1644527391}]}
{"userId":"0007","createdAt":"2022-01-05T08:00:00Z","lastVisitedAt":1644600000,"status":"BLOCKED","isBlacklisted":true,"statusLogs":[]}
{"userId":"0008","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","statusLogs":[{"status":"INITIATED","updatedOn":1644527391}]}
{"userId":"0009","createdAt":"2022-03-01T10:00:00Z","lastVisitedAt":1646128800,"status":"INITIATED","isBlacklisted":false,"statusLogs":[{"status":"INITIATED","updatedOn":"2022-03-01T10:00:00Z"}]}
"#;

fn expected_error_recs() -> Vec<String> {
    let mut recs: Vec<String> = [
        r#"userid:null,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[{"status":"INITIATED","updatedOn":1644527391}],isBlacklisted:false"#,
        "userid:0001,createdAt:null,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[],isBlacklisted:false",
        "userid:0002,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:null,status:VERIFIED,statusLogs:[],isBlacklisted:false",
        "userid:0003,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:null,statusLogs:[],isBlacklisted:false",
        "userid:0004,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[],isBlacklisted:null",
        "userid:0005,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:null,isBlacklisted:false",
        r#"userid:0006,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:,statusLogs:[{"status":"INITIATED","updatedOn":1644527391}],isBlacklisted:false"#,
        r#"userid:0008,createdAt:2022-02-10T21:09:51Z,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[{"status":"INITIATED","updatedOn":1644527391}],isBlacklisted:null"#,
    ]
    .map(str::to_owned)
    .to_vec();
    recs.sort();
    recs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_do_not_name_exactly_one_object_are_refused_with_400() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_refused").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("users.jsonl");
    scope.s3().put_object(bucket, &key, RECORDS).await.expect("put");
    // `…/dup` is also the prefix of `…/dup.jsonl`: the original refused such keys too.
    let ambiguous = scope.key("dup");
    scope.s3().put_object(bucket, &ambiguous, RECORDS).await.expect("put");
    scope.s3().put_object(bucket, &format!("{ambiguous}.jsonl"), RECORDS).await.expect("put");
    let host = start_host(&scope).await;
    // A job pipeline needs all three services; /readyz checks each.
    let (status, ready) = get(&host, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["services"], json!({"kafka": "ok", "s3": "ok", "postgres": "ok"}), "{ready}");
    let missing_bucket = format!("no-such-bucket-{}", scope.suffix().replace('_', "-"));

    let posts = [
        (json!({"key": key}), "bucket", "`bucket` is missing or empty"),
        (json!({"bucket": "", "key": key}), "bucket", "`bucket` is missing or empty"),
        (json!({"bucket": bucket}), "key", "`key` is missing or empty"),
        (json!({"bucket": bucket, "key": ""}), "key", "`key` is missing or empty"),
        (json!({"bucket": bucket, "key": 42}), "key", "`key` must be a string"),
        (json!({"bucket": missing_bucket, "key": key}), "bucket", "does not exist"),
        (json!({"bucket": bucket, "key": scope.key("absent.jsonl")}), "key", "key not found"),
        (json!({"bucket": bucket, "key": ambiguous}), "key", "matches 2 objects"),
    ];
    for (body, field, reason) in posts {
        let (status, answer) = post(&host, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], "bad_request", "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(answer["reason"].as_str().is_some_and(|r| r.contains(reason)), "{body}: {answer}");
    }
    let queries = [
        (format!("{PATH}?key={key}"), "bucket"),
        (format!("{PATH}?bucket={bucket}"), "key"),
        (format!("{PATH}?bucket={bucket}&key="), "key"),
        (format!("{PATH}?bucket={bucket}&key={}", scope.key("absent.jsonl")), "key"),
    ];
    for (query, field) in queries {
        let (status, answer) = get(&host, &query).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{query}: {answer}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}{PATH}", host.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("json body");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("JSON object")), "{answer}");
    let (status, unknown) = get(&host, "/v1/jobs/00000000-0000-0000-0000-000000000000").await;
    assert_eq!((status, unknown["error"].as_str()), (404, Some("not_found")), "{unknown}");

    let client = scope.postgres().await.expect("postgres");
    let jobs: i64 = client.query_one("SELECT count(*) FROM sluice_jobs", &[]).await.expect("jobs").get(0);
    assert_eq!(jobs, 0, "refused requests create no job");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_file_loads_the_three_tables_exactly_once() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_tables").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("users.jsonl");
    scope.s3().put_object(bucket, &key, RECORDS).await.expect("put");
    let host = start_host(&scope).await;

    let (status, accepted) = post(&host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!((accepted["state"].as_str(), accepted["duplicate"].as_bool()), (Some("queued"), Some(false)));
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let job = wait_for_job(&host, &id, Duration::from_secs(60), finished).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", host.log());
    assert_eq!((job["bucket"].as_str(), job["key"].as_str()), (Some(bucket), Some(key.as_str())));
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["error"], Value::Null);
    assert_eq!(job["counts"]["records_read"], 11);
    assert_eq!(job["counts"]["records_failed"], 0);
    assert_eq!(job["counts"]["bytes_read"], RECORDS.len());
    assert_eq!(
        job["counts"]["rows"],
        json!({"user_status": 3, "user_status_log": 3, "user_status_error_rec": 8})
    );
    assert!(
        job["started_at"].is_string() && job["finished_at"].is_string() && job["duration_ms"].is_i64(),
        "{job}"
    );

    let client = scope.postgres().await.expect("postgres");
    assert_eq!(
        user_status(&client).await,
        [
            status_row("0000", "2022-02-10T21:09:51Z", "VERIFIED", 1_644_527_391, false),
            status_row("0007", "2022-01-05T08:00:00Z", "BLOCKED", 1_644_600_000, true),
            status_row("0009", "2022-03-01T10:00:00Z", "INITIATED", 1_646_128_800, false),
        ]
    );
    assert_eq!(
        user_status_log(&client).await,
        [
            log_row("0000", "1644527391", "INITIATED"),
            log_row("0000", "1644527400", "VERIFIED"),
            log_row("0009", "2022-03-01T10:00:00Z", "INITIATED"),
        ]
    );
    assert_eq!(error_recs(&client).await, expected_error_recs());
    // One load time for the whole job, in UTC, on every row of both tables that have one.
    let times: i64 = client
        .query_one(
            "SELECT count(DISTINCT ingested_at) FROM (SELECT ingested_at FROM user_status \
             UNION ALL SELECT ingested_at FROM user_status_log) AS loaded",
            &[],
        )
        .await
        .expect("ingested_at")
        .get(0);
    assert_eq!(times, 1);
    let recent: bool = client
        .query_one(
            "SELECT bool_and(ingested_at BETWEEN (now() AT TIME ZONE 'UTC') - interval '5 minutes' \
             AND (now() AT TIME ZONE 'UTC')) FROM user_status",
            &[],
        )
        .await
        .expect("recent")
        .get(0);
    assert!(recent, "ingested_at is the job's time in UTC");

    // The same object again, by POST or by the original API's GET: the same job, no new rows.
    let (status, again) = post(&host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(
        (status, again["job_id"].as_str(), again["duplicate"].as_bool()),
        (202, Some(id.as_str()), Some(true))
    );
    assert_eq!(again["state"], "succeeded");
    let (status, by_get) = get(&host, &format!("{PATH}?bucket={bucket}&key={key}")).await;
    assert_eq!(
        (status, by_get["job_id"].as_str()),
        (200, Some(id.as_str())),
        "the original API's 200: {by_get}"
    );
    assert_eq!(
        by_get["message"].as_str(),
        Some(format!("File {key} found in the bucket {bucket}. Job status: SUCCEEDED").as_str()),
        "{by_get}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (
            count(&client, "user_status").await,
            count(&client, "user_status_log").await,
            count(&client, "user_status_error_rec").await
        ),
        (3, 3, 8)
    );
    let staging = staging_tables(&client).await;
    assert_eq!(staging, 0, "staging tables are dropped with the load");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_file_updates_the_latest_status_and_appends_logs() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_upsert").await.expect("scope");
    let bucket = scope.bucket();
    let first = scope.key("day1.jsonl");
    scope.s3().put_object(bucket, &first, RECORDS).await.expect("put");
    // A JSON array this time; 0000 appears twice and the later record wins.
    let second = scope.key("day2.json");
    let later = r#"[
      {"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644600001,"status":"SUSPENDED","isBlacklisted":false,"statusLogs":[{"status":"SUSPENDED","updatedOn":1644600001}]},
      {"userId":"0010","createdAt":"2022-04-01T00:00:00Z","lastVisitedAt":1648771200,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]},
      {"userId":"0000","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644700000,"status":"BLOCKED","isBlacklisted":true,"statusLogs":[{"status":"BLOCKED","updatedOn":1644700000}]}
    ]"#;
    scope.s3().put_object(bucket, &second, later).await.expect("put");
    let host = start_host(&scope).await;

    load(&host, bucket, &first).await;
    let job = load(&host, bucket, &second).await;
    assert_eq!(
        job["counts"]["rows"],
        json!({"user_status": 3, "user_status_log": 2, "user_status_error_rec": 0})
    );

    let client = scope.postgres().await.expect("postgres");
    assert_eq!(
        user_status(&client).await,
        [
            status_row("0000", "2022-02-10T21:09:51Z", "BLOCKED", 1_644_700_000, true),
            status_row("0007", "2022-01-05T08:00:00Z", "BLOCKED", 1_644_600_000, true),
            status_row("0009", "2022-03-01T10:00:00Z", "INITIATED", 1_646_128_800, false),
            status_row("0010", "2022-04-01T00:00:00Z", "VERIFIED", 1_648_771_200, false),
        ]
    );
    assert_eq!(
        user_status_log(&client).await,
        [
            log_row("0000", "1644527391", "INITIATED"),
            log_row("0000", "1644527400", "VERIFIED"),
            log_row("0000", "1644600001", "SUSPENDED"),
            log_row("0000", "1644700000", "BLOCKED"),
            log_row("0009", "2022-03-01T10:00:00Z", "INITIATED"),
        ]
    );
    let loads: i64 = client
        .query_one("SELECT count(DISTINCT ingested_at) FROM user_status_log", &[])
        .await
        .expect("loads")
        .get(0);
    assert_eq!(loads, 2, "appended rows keep their own job's time");

    // Every key once (the load moves its rows without sorting them): earlier rows of those
    // keys are still replaced, the others kept.
    let third = scope.key("day3.jsonl");
    let each_once = concat!(
        r#"{"userId":"0007","createdAt":"2022-01-05T08:00:00Z","lastVisitedAt":1644800000,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}"#,
        "\n",
        r#"{"userId":"0011","createdAt":"2022-05-01T00:00:00Z","lastVisitedAt":1651363200,"status":"INITIATED","isBlacklisted":false,"statusLogs":[]}"#,
        "\n"
    );
    scope.s3().put_object(bucket, &third, each_once).await.expect("put");
    let job = load(&host, bucket, &third).await;
    assert_eq!(job["counts"]["rows"]["user_status"], 2, "{job}");
    assert_eq!(
        user_status(&client).await,
        [
            status_row("0000", "2022-02-10T21:09:51Z", "BLOCKED", 1_644_700_000, true),
            status_row("0007", "2022-01-05T08:00:00Z", "VERIFIED", 1_644_800_000, false),
            status_row("0009", "2022-03-01T10:00:00Z", "INITIATED", 1_646_128_800, false),
            status_row("0010", "2022-04-01T00:00:00Z", "VERIFIED", 1_648_771_200, false),
            status_row("0011", "2022-05-01T00:00:00Z", "INITIATED", 1_651_363_200, false),
        ]
    );
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_repeat_in_a_file_loaded_into_an_empty_table_keep_their_last_row() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_repeat").await.expect("scope");
    let bucket = scope.bucket();
    // Into an empty table the rows are copied straight in until a key repeats (0020, fourth
    // record); from there on they are staged, and the move replaces the rows copied in before
    // for the keys it brings, keeping the last row of each key.
    let user = |id: &str, visited: i32, status: &str| {
        format!(
            r#"{{"userId":"{id}","createdAt":"2022-01-01T00:00:00Z","lastVisitedAt":{visited},"status":"{status}","isBlacklisted":false,"statusLogs":[{{"status":"{status}","updatedOn":{visited}}}]}}"#
        )
    };
    let lines = [
        user("0020", 1, "A"),
        user("0021", 2, "A"),
        user("0022", 3, "A"),
        user("0020", 4, "B"),
        user("0023", 5, "A"),
        user("0021", 6, "B"),
        user("0020", 7, "C"),
        user("0024", 8, "A"),
    ];
    let key = scope.key("repeats.jsonl");
    scope.s3().put_object(bucket, &key, lines.join("\n")).await.expect("put");
    let host = start_host(&scope).await;

    let job = load(&host, bucket, &key).await;
    assert_eq!(
        job["counts"]["rows"],
        json!({"user_status": 8, "user_status_log": 8, "user_status_error_rec": 0}),
        "{job}"
    );
    let client = scope.postgres().await.expect("postgres");
    let created = "2022-01-01T00:00:00Z";
    assert_eq!(
        user_status(&client).await,
        [
            status_row("0020", created, "C", 7, false),
            status_row("0021", created, "B", 6, false),
            status_row("0022", created, "A", 3, false),
            status_row("0023", created, "A", 5, false),
            status_row("0024", created, "A", 8, false),
        ]
    );
    assert_eq!(count(&client, "user_status_log").await, 8, "every status log is appended");
    let staging = staging_tables(&client).await;
    assert_eq!(staging, 0, "the staging table the repeats went to is dropped");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// Lines no validation can read as a user: not JSON, or JSON that is not an object.
const UNREADABLE: [&str; 4] = ["not json at all", "[1, 2]", "42", "{\"userId\": \"0010\""];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_plugins_refuse_become_dead_letters_so_every_record_is_accounted_for() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_refused_records").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("mixed.jsonl");
    let body = format!("{}\n{}\n", RECORDS.trim_end(), UNREADABLE.join("\n"));
    scope.s3().put_object(bucket, &key, body.clone()).await.expect("put");
    let host = start_host(&scope).await;

    let job = load(&host, bucket, &key).await;
    let id = job["job_id"].as_str().expect("id").to_owned();
    let read = 11 + UNREADABLE.len();
    assert_eq!(job["counts"]["records_read"], read, "{job}");
    assert_eq!(job["counts"]["records_failed"], UNREADABLE.len(), "{job}");
    assert_eq!(job["counts"]["dead_letters"], UNREADABLE.len(), "{job}");
    let folder = format!("{}dead-letters/{id}/", scope.prefix());
    assert_eq!(job["dead_letters"].as_str(), Some(format!("s3://{bucket}/{folder}").as_str()), "{job}");

    let client = scope.postgres().await.expect("postgres");
    let status_rows = count(&client, "user_status").await;
    let error_rows = count(&client, "user_status_error_rec").await;
    let letters = read_letters(&scope, &folder).await;
    // Every record that entered left as exactly one row, error row or dead letter.
    assert_eq!((status_rows, error_rows), (3, 8));
    assert_eq!(status_rows as usize + error_rows as usize + letters.len(), read);
    let kept: Vec<(u64, &str)> = letters
        .iter()
        .map(|letter| (letter["record"].as_u64().expect("record"), letter["value"].as_str().expect("value")))
        .collect();
    let expected: Vec<(u64, &str)> = (12..).zip(UNREADABLE).collect();
    assert_eq!(kept, expected);
    for letter in &letters {
        assert_eq!(letter["job_id"], id.as_str());
        assert_eq!((letter["bucket"].as_str(), letter["key"].as_str()), (Some(bucket), Some(key.as_str())));
        assert_eq!(letter["step"], "validate-user-status");
        assert!(letter["plugin_version"].as_str().is_some_and(|v| v.starts_with("validate-user-status@")));
        assert!(letter["reason"].as_str().is_some_and(|r| !r.is_empty()), "{letter}");
        assert_eq!(letter["trapped"], false);
    }
    let offset = body.find(UNREADABLE[1]).expect("in the file");
    assert_eq!(
        letters[1]["reason"],
        format!("record 13 at byte {offset}: expected a JSON object, found an array"),
        "the reason says where the reader found the record"
    );
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_invalid_utf8_even_in_a_field_nobody_reads_is_a_dead_letter_kept_byte_for_byte() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_invalid_utf8").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("utf8.jsonl");
    let valid = RECORDS.lines().next().expect("a valid record");
    // `note` is no field of the record's, so only the check of the whole record sees the byte.
    let mut broken = valid.replacen("\"userId\":\"0000\"", "\"userId\":\"0100\"", 1).into_bytes();
    let at = broken.len() - 1;
    broken.splice(at..at, *b",\"note\":\"\x80\"");
    let mut body = format!("{valid}\n").into_bytes();
    body.extend_from_slice(&broken);
    body.push(b'\n');
    scope.s3().put_object(bucket, &key, body.clone()).await.expect("put");
    let host = start_host(&scope).await;

    let job = load(&host, bucket, &key).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["records_read"], 2, "{job}");
    assert_eq!(job["counts"]["dead_letters"], 1, "{job}");
    let client = scope.postgres().await.expect("postgres");
    assert_eq!(user_status(&client).await.len(), 1, "only the valid record is loaded");
    assert_eq!(count(&client, "user_status_error_rec").await, 0);

    let id = job["job_id"].as_str().expect("id");
    let letters = read_letters(&scope, &format!("{}dead-letters/{id}/", scope.prefix())).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let offset = valid.len() + 1;
    let byte = broken.iter().position(|&b| b == 0x80).expect("the byte");
    assert_eq!(
        letters[0]["reason"],
        format!("record 2 at byte {offset}: not valid JSON: invalid UTF-8 at byte {byte}")
    );
    let kept = letters[0]["value"]["base64"].as_str().expect("a value that is not UTF-8 is kept as base64");
    use base64::Engine as _;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(kept).expect("base64"), broken);
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_queued_by_a_host_that_stopped_before_queueing_it_runs_when_requested_again() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_stranded").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("stranded.jsonl");
    scope.s3().put_object(bucket, &key, RECORDS).await.expect("put");
    let host = start_host(&scope).await;

    // What a host leaves when it stops after creating the job row and before producing the
    // job message: a job `queued` a while ago that no message names.
    let head = scope.s3().client().head_object().bucket(bucket).key(&key).send().await.expect("head");
    let etag = head.e_tag().expect("etag").trim_matches('"').to_owned();
    let size = head.content_length().expect("size");
    let client = scope.postgres().await.expect("postgres");
    let stranded: String = client
        .query_one(
            "INSERT INTO sluice_jobs (id, pipeline, bucket, object_key, etag, size_bytes, state, queued_at) \
             VALUES (gen_random_uuid(), 'user-status', $1, $2, $3, $4, 'queued', now() - interval '5 minutes') \
             RETURNING id::text",
            &[&bucket, &key, &etag, &size],
        )
        .await
        .expect("insert the stranded job")
        .get(0);

    let (status, again) = post(&host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (again["job_id"].as_str(), again["duplicate"].as_bool()),
        (Some(stranded.as_str()), Some(true))
    );
    let job = wait_for_job(&host, &stranded, Duration::from_secs(60), finished).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", host.log());
    assert_eq!(job["attempts"], 1);
    assert_eq!((count(&client, "user_status").await, count(&client, "user_status_error_rec").await), (3, 8));
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// `records` user-status lines: every tenth invalid (empty status), the rest with two logs.
fn large_file(records: usize) -> (String, usize) {
    let mut text = String::with_capacity(records * 260);
    let mut invalid = 0;
    for n in 0..records {
        let status = if n % 10 == 9 {
            invalid += 1;
            ""
        } else {
            "VERIFIED"
        };
        text.push_str(&format!(
            "{{\"userId\":\"u{n:07}\",\"createdAt\":\"2022-02-10T21:09:51Z\",\"lastVisitedAt\":1644527391,\"status\":\"{status}\",\
             \"isBlacklisted\":false,\"statusLogs\":[{{\"status\":\"INITIATED\",\"updatedOn\":1644527391}},{{\"status\":\"VERIFIED\",\"updatedOn\":1644527400}}]}}\n"
        ));
    }
    (text, invalid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_job_leaves_no_rows_and_the_retry_loads_once() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_killed").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("large.jsonl");
    let records = 200_000;
    let (file, invalid) = large_file(records);
    scope.s3().put_object(bucket, &key, file).await.expect("put");
    let mut host = start_host(&scope).await;

    let (status, accepted) = post(&host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let running = wait_for_job(&host, &id, Duration::from_secs(60), |job| {
        finished(job) || job["counts"]["records_read"].as_u64().is_some_and(|read| read > 0)
    })
    .await;
    assert_eq!(running["state"], "running", "the job must still run when the host is killed: {running}");
    host.kill();

    let client = scope.postgres().await.expect("postgres");
    for table in ["user_status", "user_status_log", "user_status_error_rec"] {
        assert_eq!(count(&client, table).await, 0, "{table} has rows of a job that never finished");
    }

    host.restart().await;
    let loading = wait_for_job(&host, &id, Duration::from_secs(180), |job| {
        finished(job)
            || (job["attempts"] == 2 && job["counts"]["records_read"].as_u64().is_some_and(|read| read > 0))
    })
    .await;
    let seen_loading: String =
        client.query_one("SELECT clock_timestamp()::text", &[]).await.expect("clock").get(0);
    let job = wait_for_job(&host, &id, Duration::from_secs(180), finished).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", host.log());
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(loading["state"], "running", "the retry was seen reading: {loading}");
    let finished_after: bool = client
        .query_one(
            "SELECT finished_at >= $1::text::timestamptz FROM sluice_jobs WHERE id = $2::text::uuid",
            &[&seen_loading, &id],
        )
        .await
        .expect("finished_at")
        .get(0);
    assert!(finished_after, "finished_at is when the load committed, after rows were read: {job}");
    let valid = records - invalid;
    assert_eq!(job["counts"]["records_read"], records);
    assert_eq!(
        job["counts"]["rows"],
        json!({"user_status": valid, "user_status_log": valid * 2, "user_status_error_rec": invalid})
    );
    let loaded = (
        count(&client, "user_status").await,
        count(&client, "user_status_log").await,
        count(&client, "user_status_error_rec").await,
    );
    let expected = (
        i64::try_from(valid).expect("count"),
        i64::try_from(valid * 2).expect("count"),
        i64::try_from(invalid).expect("count"),
    );
    assert_eq!(loaded, expected);
    let staging = staging_tables(&client).await;
    assert_eq!(staging, 0, "the crashed attempt's staging tables are gone");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_job_run_loads_a_file_once_from_the_command_line() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_cli").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("users.jsonl");
    scope.s3().put_object(bucket, &key, RECORDS).await.expect("put");
    let host = start_host(&scope).await;

    let output = host.cli(&["job", "run", "--bucket", bucket, "--key", &key]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let job: Value = serde_json::from_slice(&output.stdout).expect("job JSON on stdout");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["counts"]["rows"],
        json!({"user_status": 3, "user_status_log": 3, "user_status_error_rec": 8})
    );

    let again = host.cli(&["job", "run", "--bucket", bucket, "--key", &key]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already loaded"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let same: Value = serde_json::from_slice(&again.stdout).expect("job JSON on stdout");
    assert_eq!(same["job_id"], job["job_id"]);

    let missing = host.cli(&["job", "run", "--bucket", bucket, "--key", &scope.key("absent.jsonl")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("key not found"));

    let client = scope.postgres().await.expect("postgres");
    assert_eq!(error_recs(&client).await, expected_error_recs());
    assert_eq!(count(&client, "user_status_log").await, 3);
    // The host sees the CLI's job too: the job store is shared.
    let (status, seen) = get(&host, &format!("/v1/jobs/{}", job["job_id"].as_str().expect("id"))).await;
    assert_eq!((status, seen["state"].as_str()), (200, Some("succeeded")));
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// The original system's valid sample: one pretty-printed object.
const PRETTY_VALID: &str = r#"{
    "userId": "0000",
    "createdAt": "2022-02-10T21:09:51Z",
    "lastVisitedAt": 1644527391,
    "status": "VERIFIED",
    "statusLogs": [
        {
            "status": "INITIATED",
            "updatedOn": 1644527391
        },
        {
            "status": "PENDING_VERIFICATION",
            "updatedOn": 1644528391
        },
        {
            "status": "VERIFIED",
            "updatedOn": 1644529391
        }
    ],
    "isBlacklisted": false
 }
"#;

/// The original system's invalid sample: nulls and an empty status.
const PRETTY_INVALID: &str = r#"{
    "userId": null,
    "createdAt": null,
    "lastVisitedAt": null,
    "status": "",
    "statusLogs": [
        {
            "status": "INITIATED",
            "updatedOn": 1644527391
        }
    ],
    "isBlacklisted": false
 }
"#;

/// Three records (valid; invalid; valid with a log entry that lacks `updatedOn`), to be
/// written in every shape.
fn shape_records() -> Vec<Value> {
    vec![
        json!({"userId": "0100", "createdAt": "2022-02-10T21:09:51Z", "lastVisitedAt": 1644527391,
               "status": "VERIFIED", "isBlacklisted": false,
               "statusLogs": [{"status": "INITIATED", "updatedOn": 1644527391}, {"status": "VERIFIED", "updatedOn": "1644527400"}]}),
        json!({"userId": "0101", "createdAt": null, "lastVisitedAt": 1644527391,
               "status": "VERIFIED", "isBlacklisted": false, "statusLogs": []}),
        json!({"userId": "0102", "createdAt": "2022-03-01T10:00:00Z", "lastVisitedAt": 1646128800,
               "status": "BLOCKED", "isBlacklisted": true,
               "statusLogs": [{"status": "INITIATED"}, {"updatedOn": 1646128800, "status": "BLOCKED"}]}),
    ]
}

async fn truncate_tables(client: &tokio_postgres::Client) {
    client
        .batch_execute("TRUNCATE user_status, user_status_log, user_status_error_rec")
        .await
        .expect("truncate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_of_user_status_file_loads_the_same_rows() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_shapes").await.expect("scope");
    let bucket = scope.bucket();
    let host = start_host(&scope).await;
    let client = scope.postgres().await.expect("postgres");

    // The original's own samples: one pretty-printed object per `.json` file.
    let valid = scope.key("user_status_valid.json");
    scope.s3().put_object(bucket, &valid, PRETTY_VALID).await.expect("put");
    let job = load(&host, bucket, &valid).await;
    assert_eq!(job["counts"]["records_read"], 1, "{job}");
    assert_eq!(
        user_status(&client).await,
        [status_row("0000", "2022-02-10T21:09:51Z", "VERIFIED", 1_644_527_391, false)]
    );
    assert_eq!(
        user_status_log(&client).await,
        [
            log_row("0000", "1644527391", "INITIATED"),
            log_row("0000", "1644528391", "PENDING_VERIFICATION"),
            log_row("0000", "1644529391", "VERIFIED"),
        ]
    );
    assert!(error_recs(&client).await.is_empty());
    truncate_tables(&client).await;

    let invalid = scope.key("user_status_invalid.json");
    scope.s3().put_object(bucket, &invalid, PRETTY_INVALID).await.expect("put");
    let job = load(&host, bucket, &invalid).await;
    assert_eq!(
        (job["counts"]["records_read"].as_u64(), job["counts"]["dead_letters"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        error_recs(&client).await,
        [
            r#"userid:null,createdAt:null,lastVisitedAt:null,status:,statusLogs:[{"status":"INITIATED","updatedOn":1644527391}],isBlacklisted:false"#
        ]
    );
    assert!(user_status(&client).await.is_empty() && user_status_log(&client).await.is_empty());
    truncate_tables(&client).await;

    let records = shape_records();
    let pretty: Vec<String> =
        records.iter().map(|r| serde_json::to_string_pretty(r).expect("json")).collect();
    let compact: Vec<String> = records.iter().map(Value::to_string).collect();
    let lines = compact.join("\n") + "\n";
    let array = serde_json::to_string_pretty(&records).expect("json");
    let gzip = |text: &str| sluice_e2e::gzip(text.as_bytes());
    // Two gzip members one after another, as `cat a.gz b.gz > all.gz` makes them.
    let (first_line, other_lines) = lines.split_at(compact[0].len() + 1);
    let mut gzip_members = gzip(first_line);
    gzip_members.extend(gzip(other_lines));
    // (name, bytes, the object's Content-Encoding)
    let shapes: [(&str, Vec<u8>, Option<&str>); 9] = [
        ("concatenated.json", pretty.join("\n").into_bytes(), None),
        ("concatenated-bom.json", format!("\u{feff}{}\n", pretty.join("")).into_bytes(), None),
        ("lines.jsonl", lines.clone().into_bytes(), None),
        ("crlf-lines.json", compact.join("\r\n").into_bytes(), None),
        ("array.json", array.clone().into_bytes(), None),
        // Compressed files are told by their first bytes, whatever their names say.
        ("lines.jsonl.gz", gzip_members, None),
        ("concatenated.json.zst", zstd::encode_all(pretty.join("\n").as_bytes(), 3).expect("zstd"), None),
        ("array-gzipped-under-a-plain-name.json", gzip(&array), None),
        // As `aws s3 cp --content-encoding gzip` stores it: S3 hands the body back as stored.
        ("lines-content-encoding.jsonl", gzip(&lines), Some("gzip")),
    ];
    for (name, bytes, content_encoding) in shapes {
        let key = scope.key(name);
        scope
            .s3()
            .client()
            .put_object()
            .bucket(bucket)
            .key(&key)
            .set_content_encoding(content_encoding.map(str::to_owned))
            .body(bytes.into())
            .send()
            .await
            .expect("put");
        let job = load(&host, bucket, &key).await;
        assert_eq!(
            (job["counts"]["records_read"].as_u64(), job["counts"]["dead_letters"].as_u64()),
            (Some(3), Some(0)),
            "{name}: {job}"
        );
        assert_eq!(
            user_status(&client).await,
            [
                status_row("0100", "2022-02-10T21:09:51Z", "VERIFIED", 1_644_527_391, false),
                status_row("0102", "2022-03-01T10:00:00Z", "BLOCKED", 1_646_128_800, true),
            ],
            "{name}"
        );
        assert_eq!(
            user_status_log(&client).await,
            [
                log_row("0100", "1644527391", "INITIATED"),
                log_row("0100", "1644527400", "VERIFIED"),
                log_row("0102", "1646128800", "BLOCKED"),
                // The original's explode keeps an entry without `updatedOn`, with a null there.
                ("0102".to_owned(), None, Some("INITIATED".to_owned())),
            ],
            "{name}"
        );
        assert_eq!(
            error_recs(&client).await,
            [
                "userid:0101,createdAt:null,lastVisitedAt:1644527391,status:VERIFIED,statusLogs:[],isBlacklisted:false"
            ],
            "{name}"
        );
        truncate_tables(&client).await;
    }
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// The original system's DDL, as it creates the tables (no schema: the scope's search_path).
const ORIGINAL_DDL: &str = "create table user_status (userId varchar, createdAt varchar, status varchar, lastVisitedAt int, isBlacklisted boolean, ingested_at timestamp);
create table user_status_log (userId varchar, updatedon varchar, status varchar, ingested_at timestamp);
create table user_status_error_rec (error_rec varchar);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_insensitive_key_column_keeps_one_row_for_keys_that_differ_only_in_case() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_ci_key").await.expect("scope");
    let bucket = scope.bucket();
    let client = scope.postgres().await.expect("postgres");
    // Equal keys in other bytes: the load must still keep only the last row of the key.
    client
        .batch_execute(&format!(
            "CREATE COLLATION case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             {}",
            ORIGINAL_DDL.replacen("userId varchar,", "userId varchar COLLATE case_blind,", 1)
        ))
        .await
        .expect("a case-insensitive key column");
    let key = scope.key("users.jsonl");
    let records = concat!(
        r#"{"userId":"AB1","createdAt":"2022-01-01T00:00:00Z","lastVisitedAt":1,"status":"INITIATED","isBlacklisted":false,"statusLogs":[]}"#,
        "\n",
        r#"{"userId":"ab1","createdAt":"2022-01-01T00:00:00Z","lastVisitedAt":2,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[]}"#,
        "\n"
    );
    scope.s3().put_object(bucket, &key, records).await.expect("put");
    let host = start_host(&scope).await;
    load(&host, bucket, &key).await;
    assert_eq!(
        user_status(&client).await,
        [status_row("ab1", "2022-01-01T00:00:00Z", "VERIFIED", 2, false)],
        "the column calls AB1 and ab1 one key, so the later record wins"
    );
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_made_by_the_original_ddl_are_used_as_they_are() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_original_ddl").await.expect("scope");
    let bucket = scope.bucket();
    let client = scope.postgres().await.expect("postgres");
    client.batch_execute(ORIGINAL_DDL).await.expect("the original DDL");
    // What the original's appending loads leave: the same user twice. A lineage column the
    // operator added to one table only.
    client
        .batch_execute(
            "INSERT INTO user_status VALUES ('0000', 'old', 'INITIATED', 1, false, now()), ('0000', 'old', 'PENDING', 2, false, now());
             ALTER TABLE user_status_log ADD COLUMN plugin_version varchar;",
        )
        .await
        .expect("earlier rows");
    let key = scope.key("users.jsonl");
    scope.s3().put_object(bucket, &key, RECORDS).await.expect("put");
    let host = start_host(&scope).await;
    load(&host, bucket, &key).await;

    let rows = client
        .query(
            "SELECT userid, createdat, status, lastvisitedat, isblacklisted FROM user_status ORDER BY userid",
            &[],
        )
        .await
        .expect("the original's SELECT");
    let loaded: Vec<UserStatusRow> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    assert_eq!(
        loaded,
        [
            status_row("0000", "2022-02-10T21:09:51Z", "VERIFIED", 1_644_527_391, false),
            status_row("0007", "2022-01-05T08:00:00Z", "BLOCKED", 1_644_600_000, true),
            status_row("0009", "2022-03-01T10:00:00Z", "INITIATED", 1_646_128_800, false),
        ],
        "one row per user: the load replaced both earlier rows of 0000"
    );
    let camel: i64 =
        client.query_one("SELECT count(userId) FROM user_status", &[]).await.expect("camelCase SQL").get(0);
    assert_eq!(camel, 3);
    let constraints: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             WHERE t.relnamespace = current_schema()::regnamespace AND t.relname LIKE 'user_status%'",
            &[],
        )
        .await
        .expect("constraints")
        .get(0);
    assert_eq!(constraints, 0, "no key was added to the original's tables");
    let versions: Vec<Option<String>> = client
        .query("SELECT DISTINCT plugin_version FROM user_status_log", &[])
        .await
        .expect("lineage")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert!(
        versions[0].as_deref().is_some_and(|v| v.starts_with("explode-status-logs@")),
        "the table that has a plugin_version column gets it filled: {versions:?}"
    );
    assert_eq!(error_recs(&client).await, expected_error_recs());
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM sluice_pipeline_sql WHERE pipeline = 'user-status'", &[])
        .await
        .expect("recorded")
        .get(0);
    assert_eq!(recorded, 1, "the pipeline's table SQL is recorded once applied");

    // A column an output needs and the table lacks is refused when the pipeline is prepared,
    // naming the table and the column, before anything is read.
    client.batch_execute("ALTER TABLE user_status_log DROP COLUMN status").await.expect("drop a column");
    let refused = host.cli(&["job", "run", "--bucket", bucket, "--key", &key]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("`status`") && stderr.contains("table `user_status_log`"), "{stderr}");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_read_is_one_row_one_error_row_or_one_dead_letter_and_sweep_keeps_it_so() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_accounting").await.expect("scope");
    let bucket = scope.bucket();
    let lines = [
        // valid, with a log entry lacking `status`: a row with a null status
        r#"{"userId":"a1","createdAt":"c","lastVisitedAt":1,"status":"S","isBlacklisted":false,"statusLogs":[{"updatedOn":5},{"status":"X","updatedOn":6}]}"#,
        // valid, no logs
        r#"{"userId":"a2","createdAt":"c","lastVisitedAt":2,"status":"S","isBlacklisted":true,"statusLogs":[]}"#,
        // invalid: a null, an empty status, a wrong type, a log entry that is not an object
        r#"{"userId":"b1","createdAt":null,"lastVisitedAt":1,"status":"S","isBlacklisted":false,"statusLogs":[]}"#,
        r#"{"userId":"b2","createdAt":"c","lastVisitedAt":1,"status":"","isBlacklisted":false,"statusLogs":[]}"#,
        r#"{"userId":"b3","createdAt":"c","lastVisitedAt":"1","status":"S","isBlacklisted":false,"statusLogs":[]}"#,
        r#"{"userId":"b4","createdAt":"c","lastVisitedAt":1,"status":"S","isBlacklisted":false,"statusLogs":[{"status":"A","updatedOn":1},"B"]}"#,
        // not a user at all
        "not json at all",
        "[1, 2]",
        "42",
        r#"{"userId": "d4""#,
    ];
    let body = lines.join("\n") + "\n";
    let key = scope.key("mixed.jsonl");
    scope.s3().put_object(bucket, &key, body.clone()).await.expect("put");
    let host = start_host(&scope).await;
    let job = load(&host, bucket, &key).await;
    let id = job["job_id"].as_str().expect("id").to_owned();
    let counts = &job["counts"];
    let read = counts["records_read"].as_u64().expect("read");
    let valid = counts["rows"]["user_status"].as_u64().expect("valid");
    let errors = counts["rows"]["user_status_error_rec"].as_u64().expect("errors");
    let dead = counts["dead_letters"].as_u64().expect("dead letters");
    assert_eq!((read, valid, errors, dead), (10, 2, 4, 4), "{job}");
    assert_eq!(read, valid + errors + dead, "records_read = valid + error rows + dead letters");
    assert_eq!(counts["records_failed"], dead, "{job}");

    let client = scope.postgres().await.expect("postgres");
    assert_eq!((count(&client, "user_status").await, count(&client, "user_status_error_rec").await), (2, 4));
    assert_eq!(
        user_status_log(&client).await,
        [("a1".to_owned(), Some("5".to_owned()), None), log_row("a1", "6", "X")],
        "every entry of a valid record is a row; b4's entries load nothing, it is an error row"
    );
    let folder = format!("{}dead-letters/{id}/", scope.prefix());
    let letters = read_letters(&scope, &folder).await;
    assert_eq!(letters.len(), 4);
    // Each letter says where the reader found the record.
    for (letter, line) in letters.iter().zip(&lines[6..]) {
        let number = lines.iter().position(|l| l == line).expect("line") + 1;
        let offset = body.find(line).expect("offset");
        assert_eq!(letter["value"], *line);
        assert_eq!(
            (letter["record"].as_u64(), letter["byte_offset"].as_u64()),
            (Some(number as u64), Some(offset as u64))
        );
        let at = format!("record {number} at byte {offset}: ");
        assert!(letter["reason"].as_str().is_some_and(|r| r.starts_with(&at)), "{at}: {letter}");
    }

    // Sweeping with the same plugins loads nothing, keeps every letter, and moves the swept
    // object aside: still one letter per refused record.
    let swept = host.cli(&["sweep", "--pipeline", "user-status"]);
    let out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{out}{}", String::from_utf8_lossy(&swept.stderr));
    assert!(
        out.contains(
            "1 dead-letter objects, 4 records: 0 passed (0 rows), 4 still failing; 1 objects moved to swept/"
        ),
        "{out}"
    );
    assert!(read_letters(&scope, &folder).await.is_empty(), "the swept object moved away");
    let all = read_letters(&scope, &format!("{}dead-letters/", scope.prefix())).await;
    assert_eq!(all.len(), 8, "the swept copy and the sweep job's own letters");
    // The sweep job's letters name the dead-letter object they came from, and keep the
    // record's place in the original file.
    let again: Vec<(&Value, &Value, &Value)> = all
        .iter()
        .filter(|l| l["key"].as_str().is_some_and(|k| k.contains("dead-letters/")))
        .map(|l| (&l["value"], &l["record"], &l["byte_offset"]))
        .collect();
    let first: Vec<(&Value, &Value, &Value)> =
        letters.iter().map(|l| (&l["value"], &l["record"], &l["byte_offset"])).collect();
    assert_eq!(again, first);
    assert_eq!((count(&client, "user_status").await, count(&client, "user_status_error_rec").await), (2, 4));
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// Every dead letter under `prefix`, in key order.
async fn read_letters(scope: &TestScope, prefix: &str) -> Vec<Value> {
    let mut letters = Vec::new();
    for object in scope.s3().list_keys(scope.bucket(), prefix).await.expect("list") {
        let text = scope.s3().get_object(scope.bucket(), &object).await.expect("get");
        for line in text.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            letters.push(serde_json::from_slice::<Value>(line).expect("a dead letter is JSON"));
        }
    }
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_nobody_can_read_fails_and_loads_nothing() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_unreadable").await.expect("scope");
    let bucket = scope.bucket();
    let key = scope.key("users.csv.json");
    scope
        .s3()
        .put_object(bucket, &key, "userId,createdAt,status\n0000,2022-02-10T21:09:51Z,VERIFIED\n")
        .await
        .expect("put");
    let host = start_host(&scope).await;
    let client = scope.postgres().await.expect("postgres");
    client.batch_execute("INSERT INTO user_status_error_rec VALUES ('before')").await.expect("a row before");
    let (status, accepted) = post(&host, &json!({"bucket": bucket, "key": key})).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let job = wait_for_job(&host, &id, Duration::from_secs(60), finished).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        (job["counts"]["records_read"].as_u64(), job["counts"]["dead_letters"].as_u64()),
        (Some(2), Some(2))
    );
    let error = job["error"].as_str().expect("error");
    assert!(error.contains("2 of the 2 records are dead letters"), "{error}");
    assert!(error.contains("read as JSON lines"), "names the shape: {error}");
    assert!(error.contains("record 1 at byte 0: not valid JSON"), "names the first dead letter: {error}");
    assert_eq!(error_recs(&client).await, ["before"], "the tables are untouched");
    assert_eq!((count(&client, "user_status").await, count(&client, "user_status_log").await), (0, 0));

    // A gzip file cut short fails whole: its records up to the cut are not loaded either.
    let lines: String = (0..2000)
        .map(|n| {
            let line = json!({"userId": format!("{n:04}"), "createdAt": "2022-02-10T21:09:51Z", "status": "VERIFIED",
                "lastVisitedAt": 1_644_527_391, "isBlacklisted": false,
                "statusLogs": [{"status": "VERIFIED", "updatedOn": 1_644_527_391}]});
            format!("{line}\n")
        })
        .collect();
    let mut cut = sluice_e2e::gzip(lines.as_bytes());
    cut.truncate(cut.len() / 2);
    let cut_key = scope.key("users.jsonl.gz");
    scope.s3().put_object(bucket, &cut_key, cut).await.expect("put");
    let (status, accepted) = post(&host, &json!({"bucket": bucket, "key": cut_key})).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let job = wait_for_job(&host, &id, Duration::from_secs(60), finished).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().expect("error");
    assert!(error.contains("reading the input failed"), "names the read: {error}");
    assert_eq!(error_recs(&client).await, ["before"], "the tables are untouched");
    assert_eq!((count(&client, "user_status").await, count(&client, "user_status_log").await), (0, 0));
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_loads_a_jobs_dead_letters_once_the_plugin_is_fixed() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_sweep").await.expect("scope");
    let bucket = scope.bucket();
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-hostile"), "fixture-hostile");
    let tables = plugins.path().join("records.sql");
    std::fs::write(&tables, "CREATE TABLE IF NOT EXISTS records (id text, n bigint, raw jsonb);\n")
        .expect("sql");
    let topic = scope.topic("jobs");
    // Version 1 of the fixture refuses every record; a job that keeps them all as dead
    // letters still succeeds when the pipeline allows it.
    let pipeline = format!(
        "name = \"records\"\ntables_sql = \"{tables}\"\n\
         [source]\nkind = \"s3-job\"\npath = \"/v1/jobs/records\"\njob_topic = \"{topic}\"\ngroup = \"g-{topic}\"\n\
         job_partitions = 1\nmax_dead_letter_ratio = 1.0\n\
         [[steps]]\nplugin = \"fixture-hostile\"\nconfig = {{ behavior = \"fail-before-v2\" }}\n\
         [[sinks]]\nfrom = \"fixture-hostile.rows\"\nkind = \"postgres\"\ntable = \"records\"\n\
         [dead_letters]\nkind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}dead-letters\"\n",
        tables = tables.display(),
        prefix = scope.prefix(),
    );
    let host = start_host_with(&scope, ("records", pipeline), Some(plugins.path())).await;
    let key = scope.key("records.json");
    let records: Vec<Value> = (0..5).map(|n| json!({"id": format!("r{n}"), "n": n})).collect();
    scope.s3().put_object(bucket, &key, Value::Array(records).to_string()).await.expect("put");
    let output = host.cli(&["job", "run", "--pipeline", "records", "--bucket", bucket, "--key", &key]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let job: Value = serde_json::from_slice(&output.stdout).expect("job JSON");
    assert_eq!(
        (job["state"].as_str(), job["counts"]["dead_letters"].as_u64()),
        (Some("succeeded"), Some(5)),
        "{job}"
    );
    let client = scope.postgres().await.expect("postgres");
    assert_eq!(count(&client, "records").await, 0);

    // Letters archived with gzip are swept as they are: compression is told by content.
    let letters_prefix = format!("{}dead-letters/", scope.prefix());
    let letter_keys = scope.s3().list_keys(bucket, &letters_prefix).await.expect("list");
    let letter_keys: Vec<&String> = letter_keys.iter().filter(|key| key.ends_with(".jsonl")).collect();
    assert_eq!(letter_keys.len(), 1, "{letter_keys:?}");
    let plain = scope.s3().get_object(bucket, letter_keys[0]).await.expect("get");
    let gzipped_key = format!("{}.gz", letter_keys[0]);
    scope.s3().put_object(bucket, &gzipped_key, sluice_e2e::gzip(&plain)).await.expect("put");
    scope.s3().client().delete_object().bucket(bucket).key(letter_keys[0]).send().await.expect("delete");

    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-hostile-v2"), "fixture-hostile");
    let dry = host.cli(&["sweep", "--pipeline", "records", "--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{dry_out}{}", String::from_utf8_lossy(&dry.stderr));
    assert!(dry_out.contains("5 records: 5 would pass (5 rows), 0 still failing"), "{dry_out}");
    assert_eq!(count(&client, "records").await, 0, "a dry run loads nothing");

    let swept = host.cli(&["sweep", "--pipeline", "records"]);
    let out = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.status.success(), "{out}{}", String::from_utf8_lossy(&swept.stderr));
    assert!(
        out.contains("5 records: 5 passed (5 rows), 0 still failing; 1 objects moved to swept/"),
        "{out}"
    );
    let ids: Vec<String> = client
        .query("SELECT id FROM records ORDER BY id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4"]);
    let again = host.cli(&["sweep", "--pipeline", "records"]);
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success() && again_out.contains("0 dead-letter objects"), "{again_out}");
    assert_eq!(count(&client, "records").await, 5, "a second sweep loads nothing twice");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// A plugin built for contract 0.2.0 (rows as JSON) runs as a step beside the 0.3.0 plugins
/// (typed rows): the host reads its rows into typed ones, and a row whose value has the wrong
/// type fails only its own record, as a dead letter naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_for_contract_0_2_runs_beside_0_3_plugins_and_a_wrong_type_fails_only_its_record() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "etl_contract_0_2").await.expect("scope");
    let bucket = scope.bucket();
    let lines = [
        r#"{"userId":"a1","createdAt":"c","lastVisitedAt":1,"status":"S","isBlacklisted":false,"statusLogs":[{"updatedOn":"5","status":"X"},{"updatedOn":"6"}]}"#,
        // The 0.2.0 fixture passes a number through, into a text column.
        r#"{"userId":"a2","createdAt":"c","lastVisitedAt":2,"status":"S","isBlacklisted":true,"statusLogs":[{"updatedOn":7,"status":"Y"}]}"#,
        r#"{"userId":"b1","createdAt":null,"lastVisitedAt":1,"status":"S","isBlacklisted":false,"statusLogs":[]}"#,
    ];
    let key = scope.key("contract-0-2.jsonl");
    scope.s3().put_object(bucket, &key, lines.join("\n")).await.expect("put");
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path("validate-user-status"), "validate-user-status");
    install_plugin(plugins.path(), &plugin_path("fixtures/fixture-contract-0-2"), "fixture-contract-0-2");
    let toml = pipeline(&scope).replace("explode-status-logs", "fixture-contract-0-2");
    let host = start_host_with(&scope, ("user-status", toml), Some(plugins.path())).await;

    let (status, listed) = get(&host, "/v1/plugins").await;
    let contracts: Vec<(String, String)> = listed["plugins"]
        .as_array()
        .map(|plugins| {
            plugins
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_owned(),
                        p["contract"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(status, 200, "{listed}");
    assert!(contracts.contains(&("fixture-contract-0-2".to_owned(), "0.2.0".to_owned())), "{listed}");
    assert!(contracts.contains(&("validate-user-status".to_owned(), "0.3.0".to_owned())), "{listed}");

    let job = load(&host, bucket, &key).await;
    let id = job["job_id"].as_str().expect("id").to_owned();
    let counts = &job["counts"];
    let summary = (
        counts["records_read"].as_u64(),
        counts["rows"]["user_status"].as_u64(),
        counts["rows"]["user_status_error_rec"].as_u64(),
        counts["dead_letters"].as_u64(),
    );
    assert_eq!(summary, (Some(3), Some(1), Some(1), Some(1)), "{job}");

    let client = scope.postgres().await.expect("postgres");
    assert_eq!(user_status(&client).await, [status_row("a1", "c", "S", 1, false)]);
    assert_eq!(
        user_status_log(&client).await,
        [log_row("a1", "5", "X"), ("a1".to_owned(), Some("6".to_owned()), None)],
        "the 0.2.0 plugin's rows load like the 0.3.0 plugin's"
    );
    let letters = read_letters(&scope, &format!("{}dead-letters/{id}/", scope.prefix())).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["value"], lines[1]);
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("updatedOn") && reason.contains("expected a string, found 7"), "{reason}");
    drop(host);
    scope.cleanup().await.expect("cleanup");
}

/// Everything a load leaves in the three tables, in a stable order, load times left out.
async fn tables(client: &tokio_postgres::Client) -> (Vec<UserStatusRow>, Vec<LogRow>, Vec<String>) {
    let mut errors = error_recs(client).await;
    errors.sort();
    (user_status(client).await, user_status_log(client).await, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_and_javascript_ports_load_a_file_into_the_tables_exactly_as_the_rust_plugins_do() {
    let Some(services) = require_services!() else { return };
    let (Some(validate), Some(explode)) =
        (plugin_port("python", "validate-user-status"), plugin_port("js", "explode-status-logs"))
    else {
        return;
    };
    // Both plugins' samples: valid users, every kind of invalid one, lines that are not JSON
    // objects (dead letters), entries of every shape.
    let mut file = std::fs::read_to_string(
        sluice_e2e::artifacts::repo_root().join("plugins/validate-user-status/samples/input.jsonl"),
    )
    .expect("validate samples");
    file.push_str(r#"{"userId":"0100","createdAt":"2022-02-10T21:09:51Z","lastVisitedAt":1644527391,"status":"VERIFIED","isBlacklisted":false,"statusLogs":[{"status":"A","updatedOn":1.6445274e9},{"updatedOn":{"at": 1}},{"status":null,"by":"x"},{}]}"#);
    file.push('\n');
    let ports = tempfile::tempdir().expect("plugins dir");
    install_plugin(ports.path(), &validate, "validate-user-status");
    install_plugin(ports.path(), &explode, "explode-status-logs");

    let mut loaded = Vec::new();
    for (name, plugins) in [("etl_rust", None), ("etl_ports", Some(ports.path()))] {
        let scope = TestScope::new(services, name).await.expect("scope");
        let key = scope.key("users.jsonl");
        scope.s3().put_object(scope.bucket(), &key, file.clone().into_bytes()).await.expect("put");
        let host = start_host_with(&scope, ("user-status", pipeline(&scope)), plugins).await;
        let (_, listed) = get(&host, "/v1/plugins").await;
        let job = load(&host, scope.bucket(), &key).await;
        let client = scope.postgres().await.expect("postgres");
        loaded.push((listed, job, tables(&client).await));
        drop(host);
        scope.cleanup().await.expect("cleanup");
    }
    let [(rust_plugins, rust_job, rust_tables), (port_plugins, port_job, port_tables)] =
        <[_; 2]>::try_from(loaded).expect("two loads");
    assert_ne!(rust_plugins, port_plugins, "the second host ran other components: {port_plugins}");
    assert!(
        !rust_tables.0.is_empty() && !rust_tables.1.is_empty() && !rust_tables.2.is_empty(),
        "{rust_tables:?}"
    );
    assert_eq!(port_tables, rust_tables, "the same rows in all three tables");
    for count in ["records_read", "records_failed", "dead_letters", "rows"] {
        assert_eq!(port_job["counts"][count], rust_job["counts"][count], "{count}: {port_job}");
    }
    assert!(rust_job["counts"]["dead_letters"].as_u64() > Some(0), "{rust_job}");
    assert_eq!(port_job["failures"], rust_job["failures"], "the same refusals, reasons included");
}
