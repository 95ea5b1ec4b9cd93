//! `bare-ingest`: the ceiling peer of the webhook → Kafka benchmark.
//!
//! A bare axum + rdkafka server. `POST /webhook` checks that the body is a JSON array (400
//! otherwise), produces the raw body with the producer settings of sluice's `DurableProducer`
//! (acks=all, idempotent, lz4, linger 2 ms; see [`sluice_bench::kafka`]) and answers 200 only
//! after the broker's delivery report, 503 when delivery fails. No plugin, no metrics: it does
//! the least a durable webhook receiver must do, so what wrk measures against it (requests/s,
//! p99) is the ceiling sluice's webhook source is held to.
//!
//! With `--verify-key` it first checks the SendGrid signature as sluice does (ECDSA P-256 over
//! the timestamp header and the body, [`sluice_bench::signing::WebhookVerifier`]) and answers 401
//! when it is missing, bad or stale: the ceiling for sluice's signed webhook. Without it no
//! signature is checked, the ceiling of a receiver that trusts its senders.
//!
//! ```text
//! eval "$(sign-webhook --events 100 --out /tmp/rsbench-100.json --key /tmp/rsbench.p8)"
//! bare-ingest --listen 127.0.0.1:8090 --brokers 127.0.0.1:9092 --topic rsbench_ingest \
//!     --verify-key "$SENDGRID_WEBHOOK_PUBLIC_KEY"
//! wrk -t2 -c32 -d10s -s bench/wrk/post.lua http://127.0.0.1:8090/webhook
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::de::IgnoredAny;
use serde_json::json;
use sluice_bench::signing::{VerifyError, WebhookVerifier};
use tracing_subscriber::EnvFilter;

/// A bare axum + rdkafka webhook receiver, the ceiling peer for sluice's webhook source.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic the bodies go to; created when missing (use an `rsbench_` prefix).
    #[arg(long)]
    topic: String,
    /// Partitions of the topic when it is created (sluice creates source topics with 4).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// How long a send may wait for the broker before the request is answered 503 (sluice's
    /// webhook default).
    #[arg(long, default_value_t = 10_000)]
    delivery_timeout_ms: u64,
    /// Largest body accepted (sluice's webhook default, 5 MiB).
    #[arg(long, default_value_t = 5 << 20)]
    body_limit_bytes: usize,
    /// Check every request's SendGrid signature with this P-256 public key (base64 DER, the
    /// SENDGRID_WEBHOOK_PUBLIC_KEY line `sign-webhook` prints) and answer 401 when it is
    /// missing, bad or stale, as sluice does; without it no signature is checked.
    #[arg(long, value_name = "BASE64_DER")]
    verify_key: Option<String>,
    /// How far a signed timestamp may be from now, with `--verify-key` (the benchmark
    /// pipeline's `tolerance_secs`).
    #[arg(long, default_value_t = 600)]
    tolerance_secs: u64,
}

struct Ingest {
    producer: FutureProducer,
    topic: String,
}

/// The state of the signature-checking handler: the check, then the same ingest.
struct SignedIngest {
    verifier: WebhookVerifier,
    ingest: Arc<Ingest>,
}

/// Why a request was not stored.
#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error(transparent)]
    BadSignature(#[from] VerifyError),
    #[error("the body must be a JSON array: {0}")]
    NotAJsonArray(serde_json::Error),
    #[error("the body could not be stored; retry later ({0})")]
    NotStored(KafkaError),
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = match self {
            IngestError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            IngestError::NotAJsonArray(_) => StatusCode::BAD_REQUEST,
            IngestError::NotStored(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Answers as sluice's webhook does, with where the body was stored.
async fn webhook(
    State(ingest): State<Arc<Ingest>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, IngestError> {
    store(&ingest, body).await
}

/// [`webhook`] behind the signature check, in sluice's order: the whole body is read, its
/// signature checked, then its shape.
async fn signed_webhook(
    State(signed): State<Arc<SignedIngest>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, IngestError> {
    signed.verifier.verify(&headers, &body)?;
    store(&signed.ingest, body).await
}

/// Checks that `body` is a JSON array and stores it, answering once the broker has it.
async fn store(ingest: &Ingest, body: Bytes) -> Result<Json<serde_json::Value>, IngestError> {
    serde_json::from_slice::<Vec<IgnoredAny>>(&body).map_err(IngestError::NotAJsonArray)?;
    let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&ingest.topic).payload(&body[..]);
    // delivery.timeout.ms bounds the wait, as in sluice.
    let delivery = ingest
        .producer
        .send(record, Timeout::Never)
        .await
        .map_err(|(error, _)| IngestError::NotStored(error))?;
    Ok(Json(json!({ "stored": true, "partition": delivery.partition, "offset": delivery.offset })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let verifier = args
        .verify_key
        .as_deref()
        .map(|key| WebhookVerifier::new(key, Duration::from_secs(args.tolerance_secs)))
        .transpose()
        .context("--verify-key")?;
    sluice_bench::kafka::ensure_topic(&args.brokers, &args.topic, args.partitions)
        .await
        .with_context(|| format!("cannot create topic {}", args.topic))?;
    let producer: FutureProducer = sluice_bench::kafka::durable_producer_config(
        &args.brokers,
        Duration::from_millis(args.delivery_timeout_ms),
    )
    .create()
    .context("cannot create the Kafka producer")?;
    let ingest = Arc::new(Ingest { producer, topic: args.topic.clone() });
    let signatures_checked = verifier.is_some();
    let app = match verifier {
        Some(verifier) => Router::new()
            .route("/webhook", post(signed_webhook))
            .with_state(Arc::new(SignedIngest { verifier, ingest })),
        None => Router::new().route("/webhook", post(webhook)).with_state(ingest),
    }
    .layer(DefaultBodyLimit::max(args.body_limit_bytes));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        topic = %args.topic,
        signatures_checked,
        "bare-ingest ready: POST /webhook"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the HTTP server stopped")
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use axum::http::HeaderValue;
    use sluice_bench::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSigner};

    use super::*;

    /// The signature-checking state for `signer`'s key, with a producer that is never reached.
    fn signed_ingest(signer: &WebhookSigner) -> Arc<SignedIngest> {
        let public_key = signer.public_key_base64().unwrap();
        let producer = sluice_bench::kafka::durable_producer_config("127.0.0.1:1", Duration::from_secs(1))
            .create()
            .unwrap();
        Arc::new(SignedIngest {
            verifier: WebhookVerifier::new(&public_key, Duration::from_secs(600)).unwrap(),
            ingest: Arc::new(Ingest { producer, topic: "rsbench_unused".into() }),
        })
    }

    async fn status(state: &Arc<SignedIngest>, headers: HeaderMap, body: &'static [u8]) -> StatusCode {
        match signed_webhook(State(Arc::clone(state)), headers, Bytes::from_static(body)).await {
            Ok(_) => StatusCode::OK,
            Err(error) => error.into_response().status(),
        }
    }

    #[tokio::test]
    async fn an_unsigned_or_tampered_request_is_answered_401_before_kafka() {
        let signer = WebhookSigner::generate().unwrap();
        let state = signed_ingest(&signer);
        let body: &[u8] = br#"[{"event":"open"}]"#;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let signed = signer.sign(now, body).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signed.signature).unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&signed.timestamp).unwrap());

        assert_eq!(status(&state, HeaderMap::new(), body).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&state, headers.clone(), br#"[{"event":"opem"}]"#).await, StatusCode::UNAUTHORIZED);
        // A signed body that is not an array passes the check and is refused for its shape.
        let not_an_array: &[u8] = br#"{"event":"open"}"#;
        let signed = signer.sign(now, not_an_array).unwrap();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signed.signature).unwrap());
        assert_eq!(status(&state, headers, not_an_array).await, StatusCode::BAD_REQUEST);
    }
}
