//! `bare-ingest`: the ceiling peer of the webhook → Kafka benchmark.
//!
//! A bare axum + rdkafka server. `POST /webhook` checks only that the body is a JSON array
//! (400 otherwise), produces the raw body with the producer settings of sluice's
//! `DurableProducer` (acks=all, idempotent, lz4, linger 2 ms; see [`sluice_bench::kafka`]) and
//! answers 200 only after the broker's delivery report, 503 when delivery fails. No signature
//! check, no plugin, no metrics: it does the least a durable webhook receiver must do, so what
//! wrk measures against it (requests/s, p99) is the ceiling sluice's webhook source is held to.
//!
//! ```text
//! bare-ingest --listen 127.0.0.1:8090 --brokers 127.0.0.1:9092 --topic rsbench_ingest
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
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::de::IgnoredAny;
use serde_json::json;
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
}

struct Ingest {
    producer: FutureProducer,
    topic: String,
}

/// Why a request was not stored.
#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error("the body must be a JSON array: {0}")]
    NotAJsonArray(serde_json::Error),
    #[error("the body could not be stored; retry later ({0})")]
    NotStored(KafkaError),
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = match self {
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
    let app = Router::new()
        .route("/webhook", post(webhook))
        .layer(DefaultBodyLimit::max(args.body_limit_bytes))
        .with_state(ingest);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, topic = %args.topic, "bare-ingest ready: POST /webhook");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the HTTP server stopped")
}
