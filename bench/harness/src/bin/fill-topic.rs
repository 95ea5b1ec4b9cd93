//! `fill-topic`: loads a topic with SendGrid webhook bodies for the Kafka → Parquet benchmark.
//!
//! Creates the topic with `--partitions` partitions through the admin API, then produces
//! `--events` realistic SendGrid events in bodies of `--events-per-body` (each body one Kafka
//! record, as sluice's webhook source stores them) with unique `sg_event_id`s and about
//! `--malformed-per-mille` malformed events (missing `email`, unknown event type) for the
//! dead letters. It measures how long generating and storing them took (acks=all, sluice's
//! producer settings, up to `--in-flight` records unacknowledged) and prints it as one JSON line.
//!
//! ```text
//! fill-topic --brokers 127.0.0.1:9092 --topic rsbench_sendgrid --events 1000000 --partitions 4
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde_json::json;
use sluice_bench::events::{EventGenerator, GeneratorSettings};

/// Fills a Kafka topic with SendGrid webhook bodies and reports how long it took.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to fill; created when missing (use an `rsbench_` prefix).
    #[arg(long)]
    topic: String,
    /// Events in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per body (per Kafka record); the last body holds what is left.
    #[arg(long, default_value_t = 100)]
    events_per_body: u64,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Malformed events per thousand.
    #[arg(long, default_value_t = 10)]
    malformed_per_mille: u64,
    /// Seeds the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Records sent but not yet acknowledged, at most.
    #[arg(long, default_value_t = 2000)]
    in_flight: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.events_per_body == 0 || args.in_flight == 0 {
        bail!("--events-per-body and --in-flight must be at least 1");
    }
    sluice_bench::kafka::ensure_topic(&args.brokers, &args.topic, args.partitions)
        .await
        .with_context(|| format!("cannot create topic {}", args.topic))?;
    let producer: FutureProducer =
        sluice_bench::kafka::durable_producer_config(&args.brokers, Duration::from_secs(60))
            .create()
            .context("cannot create the Kafka producer")?;

    let mut generator = EventGenerator::new(GeneratorSettings::for_run(args.seed, args.malformed_per_mille));
    let started = Instant::now();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(args.in_flight);
    let (mut bodies, mut bytes) = (0u64, 0u64);
    while generator.generated() < args.events {
        let events = args.events_per_body.min(args.events - generator.generated());
        let body = generator.body(usize::try_from(events)?);
        if pending.len() >= args.in_flight
            && let Some(oldest) = pending.pop_front()
        {
            confirm(oldest).await?;
        }
        let delivery = enqueue(&producer, &args.topic, &body, &mut pending).await?;
        pending.push_back(delivery);
        bodies += 1;
        bytes += body.len() as u64;
    }
    for delivery in pending {
        confirm(delivery).await?;
    }
    producer.flush(Timeout::After(Duration::from_secs(30))).context("flush")?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "fill-topic",
            "topic": args.topic,
            "partitions": args.partitions,
            "events": generator.generated(),
            "malformed": generator.malformed(),
            "bodies": bodies,
            "bytes": bytes,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "events_per_s": (generator.generated() as f64 / seconds).round(),
            "mb_per_s": (bytes as f64 / seconds / 1e6 * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

/// Hands `body` to librdkafka; while its queue is full, waits for the oldest delivery first.
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    body: &[u8],
    pending: &mut VecDeque<DeliveryFuture>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(body);
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                let Some(oldest) = pending.pop_front() else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                confirm(oldest).await?;
            }
            Err((error, _)) => return Err(error).context("cannot enqueue a record"),
        }
    }
}

/// Waits for one delivery report.
async fn confirm(delivery: DeliveryFuture) -> anyhow::Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(error).context("the broker did not store a record"),
        Err(_) => bail!("the producer was dropped before a delivery report"),
    }
}
