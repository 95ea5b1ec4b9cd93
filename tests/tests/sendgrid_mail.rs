//! `POST /v1/mail` end to end: the mail-request plugin, the fake SendGrid, retries, and the
//! mail log in the real broker.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_e2e::artifacts::repo_pipeline;
use sluice_e2e::fake_sendgrid::FakeSendgrid;
use sluice_e2e::host::SluiceHost;
use sluice_e2e::{TestScope, require_services};

const API_KEY: &str = "SG.test-key";

/// `pipelines/mail.toml` itself, logging to this test's topic.
fn pipeline(topic: &str) -> String {
    repo_pipeline("mail", &[("sinks.topic", format!("\"{topic}\""))])
}

async fn start(scope: &TestScope, fake: &FakeSendgrid, topic: &str, max_attempts: u32) -> SluiceHost {
    let config = format!(
        "{}[sendgrid]\napi_url = \"{}\"\nmax_attempts = {max_attempts}\n\
         initial_backoff_ms = 50\nmax_backoff_ms = 200\nretry_budget_ms = 10000\n",
        scope.services().host_config(),
        fake.url
    );
    SluiceHost::start(&config, &[("mail", pipeline(topic))], &[("SENDGRID_API_KEY", API_KEY.to_string())])
        .await
}

fn mail() -> Value {
    json!({
        "from": {"email": "sender@example.com", "name": "Sender"},
        "to": ["a@example.com", {"email": "b@example.com", "name": "B"}],
        "subject": "Hello",
        "text": "Hi there",
        "custom_args": {"campaign": "c1"}
    })
}

async fn send(host: &SluiceHost, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/mail", host.url))
        .json(body)
        .send()
        .await
        .expect("post mail");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_mail_is_sent_with_its_id_and_logged_to_kafka() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_valid").await.expect("scope");
    let topic = scope.create_topic("mail-requests", 1).await.expect("topic");
    let fake = FakeSendgrid::start(API_KEY).await;
    let host = start(&scope, &fake, &topic, 4).await;

    let (status, answer, _) = send(&host, &mail()).await;
    assert_eq!(status, 202, "{answer} {}", host.log());
    let mail_id = answer["mail_id"].as_str().unwrap_or_else(|| panic!("no mail_id: {answer}")).to_string();
    assert!(answer["sendgrid_message_id"].as_str().is_some_and(|id| id.starts_with("fake-")), "{answer}");

    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    let body = &accepted[0];
    assert_eq!(body["custom_args"]["mail_id"], json!(mail_id));
    assert_eq!(body["custom_args"]["campaign"], json!("c1"));
    assert_eq!(body["personalizations"][0]["to"][1]["email"], json!("b@example.com"));
    assert_eq!(body["from"]["email"], json!("sender@example.com"));
    assert_eq!(body["content"][0], json!({"type": "text/plain", "value": "Hi there"}));

    let logged = scope.consume(&topic, 1, Duration::from_secs(30)).await.expect("mail log");
    assert_eq!(logged[0].key.as_deref(), Some(mail_id.as_bytes()));
    let log: Value = serde_json::from_slice(&logged[0].value).expect("JSON mail log");
    assert_eq!(log["recipients"], json!(["a@example.com", "b@example.com"]));
    assert!(!host.log().contains(API_KEY), "the API key must never be logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_field_is_a_400_naming_it_and_sendgrid_is_not_called() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_invalid").await.expect("scope");
    let fake = FakeSendgrid::start(API_KEY).await;
    let host = start(&scope, &fake, &scope.topic("mail-requests"), 4).await;

    let too_many: Vec<String> = (0..1001).map(|i| format!("r{i}@example.com")).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("from", json!({"to": ["a@example.com"], "subject": "s", "text": "t"})),
        ("from.email", {
            let mut m = mail();
            m["from"]["email"] = json!("not-an-address");
            m
        }),
        ("to", {
            let mut m = mail();
            m["to"] = json!([]);
            m
        }),
        ("to[1]", {
            let mut m = mail();
            m["to"][1] = json!("bad address");
            m
        }),
        ("subject", {
            let mut m = mail();
            m["subject"] = json!("");
            m
        }),
        ("to", {
            let mut m = mail();
            m["to"] = json!(too_many);
            m
        }),
        ("custom_args", {
            let mut m = mail();
            m["custom_args"] = json!({"big": "x".repeat(10_000)});
            m
        }),
    ];
    for (field, body) in cases {
        let (status, answer, _) = send(&host, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"], "bad_request");
        let named = answer["field"].as_str().unwrap_or_default();
        assert!(named.starts_with(field), "expected field {field}, got {answer}");
        assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let (status, answer, _) = send(&host, &json!("not an object")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(fake.calls(), 0, "no invalid request reaches SendGrid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_and_retried() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_429").await.expect("scope");
    let fake = FakeSendgrid::start(API_KEY).await;
    let host = start(&scope, &fake, &scope.topic("mail-requests"), 4).await;
    fake.fail_next(429, 1);
    let (status, answer, _) = send(&host, &mail()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(fake.calls(), 2);
    assert_eq!(fake.accepted().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_spends_the_budget_then_answers_503_with_retry_after() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_500").await.expect("scope");
    let fake = FakeSendgrid::start(API_KEY).await;
    let host = start(&scope, &fake, &scope.topic("mail-requests"), 3).await;
    fake.fail_next(500, 10);
    let (status, answer, headers) = send(&host, &mail()).await;
    assert_eq!(status, 503, "{answer}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(fake.calls(), 3, "exactly max_attempts calls");
    assert!(fake.accepted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_from_sendgrid_is_a_502_carrying_its_errors() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_upstream_400").await.expect("scope");
    let fake = FakeSendgrid::start(API_KEY).await;
    let host = start(&scope, &fake, &scope.topic("mail-requests"), 4).await;
    fake.fail_next(400, 1);
    let (status, answer, _) = send(&host, &mail()).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["upstream_status"], 400);
    assert_eq!(answer["upstream_errors"][0]["message"], "scripted failure");
    assert_eq!(fake.calls(), 1, "a 4xx is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_is_refused_by_the_fake_as_sendgrid_would() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "mail_bad_key").await.expect("scope");
    let fake = FakeSendgrid::start("SG.another-key").await;
    let host = start(&scope, &fake, &scope.topic("mail-requests"), 4).await;
    let (status, answer, _) = send(&host, &mail()).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["upstream_status"], 401);
    assert!(!answer.to_string().contains(API_KEY), "the key is never echoed");
}
