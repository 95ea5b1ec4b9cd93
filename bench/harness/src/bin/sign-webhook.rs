//! `sign-webhook`: one signed SendGrid event webhook request for wrk to replay.
//!
//! Writes a body of `--events` realistic SendGrid events (unique `sg_event_id`s) to `--out`,
//! signs it as SendGrid does (ECDSA P-256, SHA-256, over the timestamp header's bytes followed by
//! the body; see [`sluice_bench::signing`]) and prints shell `export` lines with the public key
//! for sluice (`SENDGRID_WEBHOOK_PUBLIC_KEY`) and the header values and body path for
//! `bench/wrk/post.lua`. What it measures is nothing by itself: it makes the fixed request the
//! webhook benchmark sends. Sluice refuses timestamps more than 10 minutes from now, so sign
//! just before a run.
//!
//! ```text
//! eval "$(sign-webhook --events 100 --out /tmp/rsbench-100.json --key /tmp/rsbench.p8)"
//! sluice serve ...   # with SENDGRID_WEBHOOK_PUBLIC_KEY from above in its environment
//! wrk -t2 -c32 -d10s -s bench/wrk/post.lua http://127.0.0.1:8080/v1/webhooks/sendgrid
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use sluice_bench::events::{EventGenerator, GeneratorSettings};
use sluice_bench::signing::{PUBLIC_KEY_ENV, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSigner};

/// Writes a signed SendGrid webhook body and prints the headers and key for replaying it.
#[derive(Debug, Parser)]
struct Args {
    /// Events in the body.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Where the body goes.
    #[arg(long)]
    out: PathBuf,
    /// A PKCS#8 DER P-256 private key, created there when missing; without it a new key is made
    /// on every run (and sluice must be given the new public key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The signing time, Unix seconds (default: now).
    #[arg(long)]
    timestamp: Option<u64>,
    /// Malformed events per thousand (the plugin dead-letters them).
    #[arg(long, default_value_t = 0)]
    malformed_per_mille: u64,
    /// Seeds the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the `export` lines to this file.
    #[arg(long)]
    env_out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let signer = match &args.key {
        Some(path) => WebhookSigner::load_or_create(path)?,
        None => WebhookSigner::generate()?,
    };
    let body = EventGenerator::new(GeneratorSettings::for_run(args.seed, args.malformed_per_mille))
        .body(args.events);
    std::fs::write(&args.out, &body).with_context(|| format!("cannot write {}", args.out.display()))?;
    let timestamp = match args.timestamp {
        Some(timestamp) => timestamp,
        None => SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?.as_secs(),
    };
    let signed = signer.sign(timestamp, &body)?;
    let body_path = std::path::absolute(&args.out).unwrap_or_else(|_| args.out.clone());

    let public_key = signer.public_key_base64()?;
    let body_file = body_path.display().to_string();
    let variables: [(&str, &str); 6] = [
        (PUBLIC_KEY_ENV, &public_key),
        ("WRK_BODY_FILE", &body_file),
        ("WRK_SIGNATURE_HEADER", SIGNATURE_HEADER),
        ("WRK_SIGNATURE", &signed.signature),
        ("WRK_TIMESTAMP_HEADER", TIMESTAMP_HEADER),
        ("WRK_TIMESTAMP", &signed.timestamp),
    ];
    let mut exports = String::new();
    for (name, value) in variables {
        let quoted = value.replace('\'', r"'\''");
        writeln!(exports, "export {name}='{quoted}'")?;
    }
    print!("{exports}");
    if let Some(path) = &args.env_out {
        std::fs::write(path, &exports).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "sign-webhook: {} events, {} bytes in {}, signed at {timestamp}",
        args.events,
        body.len(),
        body_path.display()
    );
    Ok(())
}
