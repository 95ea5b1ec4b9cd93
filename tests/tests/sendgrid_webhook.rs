//! The SendGrid event webhook against the real broker: signed bodies are stored byte for byte
//! before the 200, everything else is refused and stores nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sluice_e2e::broker::PrivateBroker;
use sluice_e2e::host::SluiceHost;
use sluice_e2e::{TestScope, require_services};

const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";
const KEY_ENV: &str = "SENDGRID_WEBHOOK_PUBLIC_KEY";

/// A P-256 key pair, with the public key encoded as SendGrid shows it (base64 DER).
struct Signer {
    key_pair: EcdsaKeyPair,
}

impl Signer {
    fn new() -> Self {
        Signer { key_pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("generate key") }
    }

    fn public_key_base64(&self) -> String {
        BASE64.encode(self.key_pair.public_key().as_der().expect("DER public key").as_ref())
    }

    /// Signature and timestamp headers for `body`, signed at `timestamp`.
    fn headers(&self, timestamp: u64, body: &[u8]) -> [(&'static str, String); 2] {
        let mut message = timestamp.to_string().into_bytes();
        message.extend_from_slice(body);
        let signature = self.key_pair.sign(&SystemRandom::new(), &message).expect("sign");
        [(SIGNATURE, BASE64.encode(signature.as_ref())), (TIMESTAMP, timestamp.to_string())]
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn pipeline(topic: &str, body_limit: usize) -> String {
    format!(
        "name = \"sendgrid-events\"\n[source]\nkind = \"webhook\"\npath = \"/v1/webhooks/sendgrid\"\n\
         topic = \"{topic}\"\ngroup = \"g-{topic}\"\nbody_format = \"json-array\"\nbody_limit_bytes = {body_limit}\n\
         delivery_timeout_ms = 3000\n\
         [source.signature]\nscheme = \"ecdsa-p256-sha256\"\npublic_key_env = \"{KEY_ENV}\"\n\
         signature_header = \"{SIGNATURE}\"\ntimestamp_header = \"{TIMESTAMP}\"\ntolerance_secs = 300\n"
    )
}

fn event_body(n: usize) -> Vec<u8> {
    format!(
        "[{{\"email\":\"u{n}@example.com\",\"timestamp\":1700000000,\"event\":\"delivered\",\"sg_event_id\":\"ev-{n}\",\"sg_message_id\":\"m{n}\"}}]"
    )
    .into_bytes()
}

async fn start_host(
    scope: &TestScope,
    brokers: &str,
    topic: &str,
    signer: &Signer,
    body_limit: usize,
) -> SluiceHost {
    let config = format!("[kafka]\nbrokers = \"{brokers}\"\n");
    let env = [(KEY_ENV, signer.public_key_base64())];
    let _ = scope;
    SluiceHost::start(&config, &[("sendgrid-events", pipeline(topic, body_limit))], &env).await
}

async fn post(
    client: &reqwest::Client,
    host: &SluiceHost,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = client.post(format!("{}/v1/webhooks/sendgrid", host.url)).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("post webhook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_signed_posts_are_each_stored_once_byte_for_byte() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "webhook_thousand").await.expect("scope");
    let topic = scope.create_topic("sendgrid-events", 3).await.expect("topic");
    let signer = Arc::new(Signer::new());
    let host = start_host(&scope, &services.kafka_brokers, &topic, &signer, 5 << 20).await;

    let client = reqwest::Client::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let (client, signer, limit, url) = (client.clone(), signer.clone(), limit.clone(), host.url.clone());
        posts.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let body = event_body(n);
            let mut request = client.post(format!("{url}/v1/webhooks/sendgrid")).body(body.clone());
            for (name, value) in signer.headers(now(), &body) {
                request = request.header(name, value);
            }
            let status = request.send().await.expect("post").status();
            (status, body)
        });
    }
    let mut sent = Vec::new();
    while let Some(done) = posts.join_next().await {
        let (status, body) = done.expect("post task");
        assert_eq!(status, 200, "{}", host.log());
        sent.push(body);
    }

    let records = scope.consume(&topic, 1000, Duration::from_secs(60)).await.expect("read topic");
    let mut stored: Vec<Vec<u8>> = records.into_iter().map(|r| r.value).collect();
    stored.sort();
    sent.sort();
    assert_eq!(stored.len(), 1000);
    assert_eq!(stored, sent, "the topic holds exactly the bodies posted, byte for byte");
}

/// A refused post: what it is, its headers, its body and the expected status.
type RefusalCase = (&'static str, Vec<(&'static str, String)>, Vec<u8>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_posts_get_their_status_and_store_nothing() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "webhook_refusals").await.expect("scope");
    let topic = scope.create_topic("sendgrid-events", 1).await.expect("topic");
    let signer = Signer::new();
    let host = start_host(&scope, &services.kafka_brokers, &topic, &signer, 4096).await;
    let client = reqwest::Client::new();
    let body = event_body(1);

    let other = Signer::new();
    let cases: Vec<RefusalCase> = vec![
        ("no signature", vec![], body.clone(), 401),
        ("signed by another key", other.headers(now(), &body).to_vec(), body.clone(), 401),
        ("body changed after signing", signer.headers(now(), &body).to_vec(), event_body(2), 401),
        ("stale timestamp", signer.headers(now() - 3600, &body).to_vec(), body.clone(), 401),
        (
            "not an array",
            signer.headers(now(), b"{\"event\":\"open\"}").to_vec(),
            b"{\"event\":\"open\"}".to_vec(),
            400,
        ),
        ("empty body", signer.headers(now(), b"").to_vec(), Vec::new(), 400),
        ("over the body limit", vec![], vec![b' '; 8192], 413),
    ];
    for (case, headers, body, expected) in cases {
        let response = post(&client, &host, &headers, body).await;
        assert_eq!(response.status().as_u16(), expected, "{case}");
        let answer: serde_json::Value = response.json().await.expect("JSON error body");
        assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()), "{case}: {answer}");
    }

    // A good post after the refusals: it must be the only record in the topic.
    let sentinel = event_body(99);
    let response = post(&client, &host, &signer.headers(now(), &sentinel), sentinel.clone()).await;
    assert_eq!(response.status(), 200);
    let records = scope
        .consume_until_idle(&topic, Duration::from_secs(3), Duration::from_secs(30))
        .await
        .expect("read topic");
    let values: Vec<Vec<u8>> = records.into_iter().map(|r| r.value).collect();
    assert_eq!(values, vec![sentinel]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_body_is_verified_and_stored_decompressed() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "webhook_gzip").await.expect("scope");
    let topic = scope.create_topic("sendgrid-events", 1).await.expect("topic");
    let signer = Signer::new();
    let host = start_host(&scope, &services.kafka_brokers, &topic, &signer, 5 << 20).await;
    let body = event_body(7);
    let compressed = sluice_e2e::gzip(&body);
    let mut headers = signer.headers(now(), &body).to_vec();
    headers.push(("Content-Encoding", "gzip".into()));
    let response = post(&reqwest::Client::new(), &host, &headers, compressed).await;
    assert_eq!(response.status(), 200, "{}", host.log());
    let records = scope.consume(&topic, 1, Duration::from_secs(30)).await.expect("read topic");
    assert_eq!(records[0].value, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_gets_503_and_a_restarted_one_200_without_restarting_the_host() {
    let Some(_services) = require_services!() else { return };
    let mut broker = PrivateBroker::start().await;
    let topic = "webhook-outage";
    sluice_e2e::kafka::create_topic(&broker.brokers(), topic, 1).await.expect("topic");
    let signer = Signer::new();
    let config = format!("[kafka]\nbrokers = \"{}\"\n", broker.brokers());
    let host = SluiceHost::start(
        &config,
        &[("sendgrid-events", pipeline(topic, 5 << 20))],
        &[(KEY_ENV, signer.public_key_base64())],
    )
    .await;
    let client = reqwest::Client::new();
    let body = event_body(1);
    assert_eq!(post(&client, &host, &signer.headers(now(), &body), body.clone()).await.status(), 200);
    let ready = |client: reqwest::Client, url: String| async move {
        let response = client.get(format!("{url}/readyz")).send().await.expect("readyz");
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap_or_default())
    };
    let (status, body_ready) = ready(client.clone(), host.url.clone()).await;
    assert_eq!((status, &body_ready["services"]["kafka"]), (200, &serde_json::json!("ok")), "{body_ready}");

    broker.stop();
    let response = post(&client, &host, &signer.headers(now(), &body), body.clone()).await;
    assert_eq!(response.status(), 503, "{}", host.log());
    assert!(response.headers().contains_key("retry-after"));
    let (status, body_ready) = ready(client.clone(), host.url.clone()).await;
    assert_eq!(status, 503, "{body_ready}");
    let kafka = body_ready["services"]["kafka"].as_str().unwrap_or_default();
    assert!(kafka.contains("broker unreachable"), "{body_ready}");

    broker.restart().await;
    sluice_e2e::kafka::create_topic(&broker.brokers(), topic, 1).await.expect("topic again");
    let recovered = sluice_e2e::eventually(Duration::from_secs(30), || async {
        post(&client, &host, &signer.headers(now(), &body), body.clone()).await.status() == 200
    })
    .await;
    assert!(recovered, "the host recovers once the broker is back:\n{}", host.log());
    let (status, body_ready) = ready(client.clone(), host.url.clone()).await;
    assert_eq!(status, 200, "ready again once the broker is back: {body_ready}");
    let records = sluice_e2e::kafka::read_topic(
        &broker.brokers(),
        "outage-reader",
        topic,
        sluice_e2e::kafka::ReadUntil::Count(1),
        Duration::from_secs(30),
    )
    .await
    .expect("read topic");
    assert_eq!(records[0].value, body);
}
