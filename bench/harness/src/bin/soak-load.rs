//! `soak-load`: the chaos soak's load, signed SendGrid webhook bodies sent open-loop at a fixed
//! rate, retried as SendGrid retries them, every attempt logged.
//!
//! The soak injects faults (the broker stopped, the host killed, ...) while this sends, then a
//! checker reads the log and the table and accounts for every event sluice acknowledged. So the
//! load must (a) keep its schedule whatever the host does, (b) send decodable event ids, and
//! (c) log every attempt. It is the fast version of `bench/faults/load.py`, which has the same
//! semantics but cannot sign more than a few hundred bodies a second.
//!
//! - Body `seq` (0, 1, ... up to `round(rate × duration / events)`) is a JSON array of
//!   `--events` realistic SendGrid events (see [`sluice_bench::events`]) with the `sg_event_id`s
//!   `{id-prefix}-{seq:09}-{n:03}`, n = 0..events; about `--malformed-per-mille` of the events
//!   are malformed and end as dead letters rather than rows. Event times fall in the day before
//!   the start. A body is the same bytes every time it is made in a run, so a retry sends the
//!   same events.
//! - It is due at `start + seq × events / rate`, whatever happened before (open loop); when the
//!   load falls behind, bodies go out as fast as the connections allow, and the log shows when
//!   they really went. Body `seq` goes to `url[seq mod count]`.
//! - Each attempt is signed when it is sent (ECDSA P-256 over the timestamp header and the body,
//!   see [`sluice_bench::signing`]). A 2xx answer acknowledges the body; anything else (another
//!   status, no connection, no answer within `--timeout`) sends it again after 1, 2, then every
//!   4 s, as SendGrid does, while the retry time is before the end of the schedule plus
//!   `--retry-grace`; after that the body is given up.
//! - At most `--connections` requests are in flight; first attempts and retries wait in one
//!   queue, earliest due first.
//!
//! The log (`--log`, CSV, replaced when it exists) has the header `seq,attempt,status,t0,t1` and
//! one line per attempt, written as the attempt completes: `status` is the HTTP status, or 0
//! when there was no answer; `t0` and `t1` are the Unix times (seconds, to the millisecond) the
//! attempt was sent and answered. Only whole lines are written, at least once a second, so the
//! log can be read while the load runs. Every 10 s a progress line goes to stderr. When every
//! body is acknowledged or given up, one JSON object with the totals goes to stdout: `bodies`,
//! `events_per_body`, `rate_events_per_s`, `duration_s`, `attempts`, `statuses` (attempts by
//! status, "0" for no answer), `acked_bodies`, `given_up_bodies`, `acked_events_per_s` (over
//! `duration_s`), `max_lateness_s` (the most a first attempt went out after its due time) and
//! `id_prefix`. On SIGINT or SIGTERM the log is flushed and the load stops with an error; the
//! attempts then in flight are not logged.
//!
//! ```text
//! soak-load keygen --key /tmp/soak.p8            # prints SENDGRID_WEBHOOK_PUBLIC_KEY for sluice
//! soak-load run --url http://127.0.0.1:8080/v1/webhooks/sendgrid --key /tmp/soak.p8 \
//!     --log /tmp/soak-attempts.csv --id-prefix soak1 --rate 60000 --duration 1800
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use sluice_bench::events::{EventGenerator, GeneratorSettings};
use sluice_bench::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSigner};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// Open-loop signed SendGrid webhook load that retries like SendGrid and logs every attempt.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the key file when it is missing and prints its public key (base64 DER), the value
    /// of SENDGRID_WEBHOOK_PUBLIC_KEY for sluice.
    Keygen {
        /// A PKCS#8 DER P-256 private key, created there when missing.
        #[arg(long)]
        key: PathBuf,
    },
    /// Sends the load, logs every attempt and prints the totals as JSON.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The webhook's URL; several spread the bodies over them (body seq goes to URL seq mod count).
    #[arg(long, required = true)]
    url: Vec<String>,
    /// The signing key (PKCS#8 DER P-256), made by `soak-load keygen`.
    #[arg(long)]
    key: PathBuf,
    /// The CSV log of attempts (`seq,attempt,status,t0,t1`); replaced when it exists.
    #[arg(long)]
    log: PathBuf,
    /// Starts every event id (`{id-prefix}-{seq:09}-{n:03}`); give each run its own.
    #[arg(long)]
    id_prefix: String,
    /// Events a second over all URLs (bodies a second times --events).
    #[arg(long)]
    rate: f64,
    /// Events per body.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Seconds of schedule; the load sends round(rate × duration / events) bodies.
    #[arg(long)]
    duration: f64,
    /// Requests in flight at most (first attempts and retries together).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds after the end of the schedule until which failed bodies are still retried.
    #[arg(long, default_value_t = 60.0)]
    retry_grace: f64,
    /// Seconds to wait for an answer, connecting included, before counting an attempt as not
    /// answered.
    #[arg(long, default_value_t = 15.0)]
    timeout: f64,
    /// Malformed events per thousand (the plugin dead-letters them).
    #[arg(long, default_value_t = 10)]
    malformed_per_mille: u64,
    /// Seeds the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sends no first attempt after the schedule's end: with a --rate above what the receiver
    /// takes, the connections stay busy for --duration and the acked events/s is its capacity.
    #[arg(long)]
    cut_off: bool,
}

/// Bodies a run may have: the event ids give the body number nine digits.
const MAX_BODIES: u64 = 1_000_000_000;
/// Longest schedule, grace and timeout accepted (30 days): beyond that a typo is more likely.
const MAX_SECONDS: f64 = 30.0 * 86_400.0;
/// How often the progress line is printed, in seconds (the log is flushed every second).
const PROGRESS_EVERY_SECS: u64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Keygen { key } => {
            let signer = WebhookSigner::load_or_create(&key)?;
            println!("{}", signer.public_key_base64()?);
            Ok(())
        }
        Command::Run(args) => run(Plan::new(args)?).await,
    }
}

/// The checked arguments of `run`.
struct Plan {
    urls: Vec<Url>,
    key: PathBuf,
    log: PathBuf,
    id_prefix: String,
    rate: f64,
    events: usize,
    duration: f64,
    bodies: u64,
    /// Seconds between two bodies' due times.
    body_interval: f64,
    connections: usize,
    retry_grace: Duration,
    timeout: Duration,
    malformed_per_mille: u64,
    seed: u64,
    cut_off: bool,
}

impl Plan {
    fn new(args: RunArgs) -> anyhow::Result<Self> {
        let urls = args.url.iter().map(|url| parse_url(url)).collect::<anyhow::Result<Vec<_>>>()?;
        if !(args.rate.is_finite() && args.rate > 0.0) {
            bail!("--rate must be a number of events a second above 0, not {}", args.rate);
        }
        if args.events == 0 {
            bail!("--events must be at least 1");
        }
        if args.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if args.id_prefix.is_empty() {
            bail!("--id-prefix must not be empty");
        }
        if args.malformed_per_mille > 1000 {
            bail!("--malformed-per-mille is at most 1000, not {}", args.malformed_per_mille);
        }
        let seconds = |name: &str, value: f64, zero_allowed: bool| -> anyhow::Result<Duration> {
            let above = if zero_allowed { value >= 0.0 } else { value > 0.0 };
            if !(value.is_finite() && above && value <= MAX_SECONDS) {
                let least = if zero_allowed { "0 or more" } else { "above 0" };
                bail!("--{name} must be seconds, {least} and at most {MAX_SECONDS}, not {value}");
            }
            Ok(Duration::from_secs_f64(value))
        };
        seconds("duration", args.duration, false)?;
        let retry_grace = seconds("retry-grace", args.retry_grace, true)?;
        let timeout = seconds("timeout", args.timeout, false)?;
        let events = args.events as f64;
        let bodies = (args.rate * args.duration / events).round();
        if bodies < 1.0 {
            bail!(
                "--rate {} × --duration {} is less than half a body of {} events",
                args.rate,
                args.duration,
                args.events
            );
        }
        if bodies > MAX_BODIES as f64 {
            bail!(
                "{bodies} bodies are too many: event ids hold at most {MAX_BODIES} (lower --rate or --duration)"
            );
        }
        let body_interval = events / args.rate;
        // The last due time must be a duration too (a tiny rate with few bodies could overflow it).
        seconds("duration (as scheduled)", bodies * body_interval, true)?;
        Ok(Plan {
            urls,
            key: args.key,
            log: args.log,
            id_prefix: args.id_prefix,
            rate: args.rate,
            events: args.events,
            duration: args.duration,
            // In 1..=MAX_BODIES, checked above.
            bodies: bodies as u64,
            body_interval,
            connections: args.connections,
            retry_grace,
            timeout,
            malformed_per_mille: args.malformed_per_mille,
            seed: args.seed,
            cut_off: args.cut_off,
        })
    }
}

fn parse_url(url: &str) -> anyhow::Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("--url {url} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--url {url} is not an http:// URL with a host");
    }
    Ok(parsed)
}

/// What every attempt needs, shared by the tasks that send them.
struct Shared {
    client: reqwest::Client,
    signer: WebhookSigner,
    generator: EventGenerator,
    urls: Vec<Url>,
    events: usize,
}

/// One finished attempt, as the task that sent it reports it.
#[derive(Debug)]
struct Outcome {
    seq: u64,
    attempt: u32,
    /// The HTTP status, 0 when there was no answer.
    status: u16,
    /// Why there was no answer, when there was none.
    no_answer: Option<NoAnswer>,
    sent: SystemTime,
    answered: SystemTime,
    answered_at: Instant,
}

/// Why an attempt got no status.
#[derive(Debug, Clone, Copy)]
enum NoAnswer {
    Connect,
    Timeout,
    Other,
}

/// The bodies still to send: first attempts in order of `seq`, retries by their due time.
struct Schedule {
    start: Instant,
    body_interval: f64,
    bodies: u64,
    /// The next body whose first attempt has not been sent.
    next_seq: u64,
    /// Failed bodies waiting for their next attempt: (due, seq, attempt).
    retries: BinaryHeap<Reverse<(Instant, u64, u32)>>,
}

impl Schedule {
    /// When body `seq`'s first attempt is due (`seq` is at most `bodies`, whose due time
    /// [`Plan::new`] checked fits in a [`Duration`]).
    fn due(&self, seq: u64) -> Instant {
        self.start + Duration::from_secs_f64(seq as f64 * self.body_interval)
    }

    /// The earliest due time of anything waiting.
    fn next_due(&self) -> Option<Instant> {
        let first = (self.next_seq < self.bodies).then(|| self.due(self.next_seq));
        let retry = self.retries.peek().map(|Reverse((due, _, _))| *due);
        match (first, retry) {
            (Some(first), Some(retry)) => Some(first.min(retry)),
            (first, retry) => first.or(retry),
        }
    }

    /// The earliest attempt due by `now`, taken off the schedule: (due, seq, attempt).
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64, u32)> {
        let first = (self.next_seq < self.bodies).then(|| self.due(self.next_seq));
        let retry = self.retries.peek().map(|Reverse((due, _, _))| *due);
        let take_retry = match (first, retry) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(first), Some(retry)) => retry < first,
        };
        if take_retry {
            let Reverse((due, seq, attempt)) = self.retries.peek().copied()?;
            if due > now {
                return None;
            }
            self.retries.pop();
            Some((due, seq, attempt))
        } else {
            let due = first?;
            if due > now {
                return None;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            Some((due, seq, 1))
        }
    }

    /// First attempts due by `now` (sent or not).
    fn due_by(&self, now: Instant) -> u64 {
        if now < self.start {
            return 0;
        }
        let elapsed = now.duration_since(self.start).as_secs_f64();
        // Non-negative and below `bodies` + 1 once capped, so the cast cannot truncate badly.
        ((elapsed / self.body_interval).floor() as u64).saturating_add(1).min(self.bodies)
    }

    /// How far behind the first attempts are at `now`, in seconds (0 when on time or done).
    fn lateness(&self, now: Instant) -> f64 {
        if self.next_seq >= self.bodies {
            return 0.0;
        }
        now.saturating_duration_since(self.due(self.next_seq)).as_secs_f64()
    }

    fn finished(&self) -> bool {
        self.next_seq >= self.bodies && self.retries.is_empty()
    }
}

/// How long SendGrid waits before sending a body again after attempt `attempt` failed:
/// 1, 2, then 4 s.
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(2))
}

/// Counts for the progress lines and the summary.
#[derive(Debug, Default)]
struct Totals {
    attempts: u64,
    /// Attempts by status (0: no answer).
    statuses: BTreeMap<u16, u64>,
    no_answer_connect: u64,
    no_answer_timeout: u64,
    no_answer_other: u64,
    acked_bodies: u64,
    given_up_bodies: u64,
    max_lateness: Duration,
}

async fn run(plan: Plan) -> anyhow::Result<()> {
    // A missing key would be made anew here, and sluice would refuse every body signed with it.
    match std::fs::metadata(&plan.key) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "there is no key at {0}: make one with `soak-load keygen --key {0}` and give sluice its public key",
            plan.key.display()
        ),
        _ => {}
    }
    let signer = WebhookSigner::load_or_create(&plan.key)?;
    let mut log = open_log(&plan.log)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.connections)
        .tcp_nodelay(true)
        .timeout(plan.timeout)
        // The soak talks to sluice directly; a proxy from the environment would be measured too.
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;
    let latest_timestamp =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
    let generator = EventGenerator::new(GeneratorSettings {
        seed: plan.seed,
        id_prefix: plan.id_prefix.clone(),
        malformed_per_mille: plan.malformed_per_mille,
        latest_timestamp: i64::try_from(latest_timestamp).unwrap_or(i64::MAX),
    });
    let shared = Arc::new(Shared { client, signer, generator, urls: plan.urls.clone(), events: plan.events });

    let start = Instant::now();
    let mut schedule = Schedule {
        start,
        body_interval: plan.body_interval,
        bodies: plan.bodies,
        next_seq: 0,
        retries: BinaryHeap::new(),
    };
    let end = start + Duration::from_secs_f64(plan.duration);
    let retry_until = end + plan.retry_grace;
    eprintln!(
        "soak-load: {} bodies of {} events at {} events/s ({:.1} bodies/s) for {} s to {}; {} connections, log {}",
        plan.bodies,
        plan.events,
        plan.rate,
        plan.rate / plan.events as f64,
        plan.duration,
        plan.urls.iter().map(Url::as_str).collect::<Vec<_>>().join(" "),
        plan.connections,
        plan.log.display(),
    );

    let (report, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seconds = 0u64;
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let mut totals = Totals::default();
    let mut in_flight = 0usize;
    let mut line = String::new();
    loop {
        let now = Instant::now();
        if plan.cut_off && now >= end {
            schedule.bodies = schedule.bodies.min(schedule.next_seq);
        }
        while in_flight < plan.connections {
            let Some((due, seq, attempt)) = schedule.pop_due(now) else { break };
            if attempt == 1 {
                totals.max_lateness = totals.max_lateness.max(now.saturating_duration_since(due));
            }
            in_flight += 1;
            tokio::spawn(send(Arc::clone(&shared), seq, attempt, report.clone()));
        }
        if schedule.finished() && in_flight == 0 {
            break;
        }
        let wake = if in_flight < plan.connections { schedule.next_due() } else { None };
        tokio::select! {
            outcome = outcomes.recv() => {
                // The loop holds a sender, so the channel never closes.
                let Some(mut outcome) = outcome else { bail!("the attempts' channel closed") };
                loop {
                    in_flight -= 1;
                    record(&mut log, &mut line, &mut totals, &mut schedule, retry_until, &outcome, &plan.log)?;
                    match outcomes.try_recv() {
                        Ok(next) => outcome = next,
                        Err(_) => break,
                    }
                }
            }
            () = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            _ = tick.tick() => {
                log.flush().with_context(|| format!("cannot write the log {}", plan.log.display()))?;
                seconds += 1;
                if seconds.is_multiple_of(PROGRESS_EVERY_SECS) {
                    progress("", &schedule, &totals, in_flight);
                }
            }
            signal = &mut interrupted => {
                log.flush().with_context(|| format!("cannot write the log {}", plan.log.display()))?;
                progress("stopped at ", &schedule, &totals, in_flight);
                bail!("{signal}: stopped with {in_flight} attempts in flight (not logged); the log holds every finished attempt");
            }
        }
    }
    log.flush().with_context(|| format!("cannot write the log {}", plan.log.display()))?;
    progress("done at ", &schedule, &totals, in_flight);

    let acked_events = totals.acked_bodies.saturating_mul(plan.events as u64);
    let summary = json!({
        "bodies": schedule.bodies,
        "events_per_body": plan.events,
        "rate_events_per_s": plan.rate,
        "duration_s": plan.duration,
        "attempts": totals.attempts,
        "statuses": totals.statuses,
        "acked_bodies": totals.acked_bodies,
        "given_up_bodies": totals.given_up_bodies,
        "acked_events_per_s": acked_events as f64 / plan.duration,
        "max_lateness_s": (totals.max_lateness.as_secs_f64() * 1000.0).round() / 1000.0,
        "id_prefix": plan.id_prefix,
    });
    println!("{summary}");
    Ok(())
}

fn open_log(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot write the log {}", path.display()))?;
    let mut log = BufWriter::with_capacity(1 << 20, file);
    log.write_all(b"seq,attempt,status,t0,t1\n")
        .and_then(|()| log.flush())
        .with_context(|| format!("cannot write the log {}", path.display()))?;
    Ok(log)
}

/// Logs a finished attempt, counts it and puts a failed body back on the schedule, or gives it
/// up when its retry would come after `retry_until`.
fn record(
    log: &mut BufWriter<File>,
    line: &mut String,
    totals: &mut Totals,
    schedule: &mut Schedule,
    retry_until: Instant,
    outcome: &Outcome,
    log_path: &Path,
) -> anyhow::Result<()> {
    line.clear();
    // Writing to a String cannot fail.
    let _ = writeln!(
        line,
        "{},{},{},{},{}",
        outcome.seq,
        outcome.attempt,
        outcome.status,
        UnixMillis(outcome.sent),
        UnixMillis(outcome.answered)
    );
    // One write per whole line: the buffer only ever holds, and so only ever flushes, whole lines.
    log.write_all(line.as_bytes()).with_context(|| format!("cannot write the log {}", log_path.display()))?;

    totals.attempts += 1;
    *totals.statuses.entry(outcome.status).or_default() += 1;
    match outcome.no_answer {
        Some(NoAnswer::Connect) => totals.no_answer_connect += 1,
        Some(NoAnswer::Timeout) => totals.no_answer_timeout += 1,
        Some(NoAnswer::Other) => totals.no_answer_other += 1,
        None => {}
    }
    if (200..300).contains(&outcome.status) {
        totals.acked_bodies += 1;
    } else {
        let retry_at = outcome.answered_at + retry_delay(outcome.attempt);
        if retry_at < retry_until {
            schedule.retries.push(Reverse((retry_at, outcome.seq, outcome.attempt.saturating_add(1))));
        } else {
            totals.given_up_bodies += 1;
        }
    }
    Ok(())
}

/// Sends one attempt of body `seq` and reports how it went.
async fn send(shared: Arc<Shared>, seq: u64, attempt: u32, report: mpsc::UnboundedSender<Outcome>) {
    let body = shared.generator.numbered_body(seq, shared.events);
    // `urls` is not empty (clap requires one), and the index is below its length.
    let url = &shared.urls[(seq % shared.urls.len() as u64) as usize];
    let sent = SystemTime::now();
    let unix = sent.duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
    let (status, no_answer) = match shared.signer.sign(unix, &body) {
        Ok(signed) => {
            let request = shared
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, signed.timestamp)
                .header(SIGNATURE_HEADER, signed.signature)
                .body(body);
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read to the end so the connection goes back to the pool; the status is
                    // the answer whatever happens to the rest.
                    let _ = response.bytes().await;
                    (status, None)
                }
                Err(error) if error.is_timeout() => (0, Some(NoAnswer::Timeout)),
                Err(error) if error.is_connect() => (0, Some(NoAnswer::Connect)),
                Err(_) => (0, Some(NoAnswer::Other)),
            }
        }
        // aws-lc does not fail to sign with a key it loaded; should it, the attempt was not sent.
        Err(error) => {
            eprintln!("soak-load: body {seq} attempt {attempt}: {error}");
            (0, Some(NoAnswer::Other))
        }
    };
    let outcome = Outcome {
        seq,
        attempt,
        status,
        no_answer,
        sent,
        answered: SystemTime::now(),
        answered_at: Instant::now(),
    };
    // The receiver lives until every attempt has reported, unless the run stopped on an error.
    let _ = report.send(outcome);
}

/// One progress line on stderr, the elapsed time preceded by `when`.
fn progress(when: &str, schedule: &Schedule, totals: &Totals, in_flight: usize) {
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(schedule.start).as_secs_f64();
    let failed: Vec<String> = totals
        .statuses
        .iter()
        .filter(|(status, _)| **status != 0 && !(200..300).contains(*status))
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    eprintln!(
        "soak-load: {when}{elapsed:.0} s, {}/{} bodies due, {} attempts, {} acked, {} given up, non-2xx {{{}}}, \
         no answer {} (connect {}, timeout {}, other {}), {} retries waiting, {in_flight} in flight, {:.3} s late",
        schedule.due_by(now),
        schedule.bodies,
        totals.attempts,
        totals.acked_bodies,
        totals.given_up_bodies,
        failed.join(", "),
        totals.statuses.get(&0).copied().unwrap_or(0),
        totals.no_answer_connect,
        totals.no_answer_timeout,
        totals.no_answer_other,
        schedule.retries.len(),
        schedule.lateness(now),
    );
}

/// Completes on Ctrl-C or SIGTERM with the signal's name.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = terminate.recv() => "terminated",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}

/// A time as Unix seconds with milliseconds, as in `1796688000.123`.
struct UnixMillis(SystemTime);

impl std::fmt::Display for UnixMillis {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.0.duration_since(UNIX_EPOCH).map(|since| since.as_millis()).unwrap_or(0);
        write!(formatter, "{}.{:03}", millis / 1000, millis % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_with_three_decimals() {
        let time = UNIX_EPOCH + Duration::from_millis(1_796_688_000_007);
        assert_eq!(UnixMillis(time).to_string(), "1796688000.007");
        assert_eq!(UnixMillis(time + Duration::from_micros(999)).to_string(), "1796688000.007");
    }

    #[test]
    fn retries_wait_one_two_then_four_seconds() {
        let delays: Vec<u64> = (1..=6).map(|attempt| retry_delay(attempt).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 4, 4, 4]);
    }

    #[test]
    fn the_earliest_due_attempt_goes_first() {
        let start = Instant::now();
        let mut schedule =
            Schedule { start, body_interval: 1.0, bodies: 3, next_seq: 0, retries: BinaryHeap::new() };
        assert_eq!(schedule.pop_due(start), Some((start, 0, 1)));
        assert_eq!(schedule.pop_due(start), None);
        schedule.retries.push(Reverse((start + Duration::from_millis(500), 0, 2)));
        let later = start + Duration::from_secs(5);
        assert_eq!(schedule.pop_due(later), Some((start + Duration::from_millis(500), 0, 2)));
        assert_eq!(schedule.pop_due(later), Some((start + Duration::from_secs(1), 1, 1)));
        assert_eq!(schedule.lateness(later), 3.0);
        assert_eq!(schedule.pop_due(later), Some((start + Duration::from_secs(2), 2, 1)));
        assert!(schedule.finished());
        assert_eq!(schedule.due_by(later), 3);
    }

    #[test]
    fn bad_arguments_are_refused() {
        // The arguments of a good run, with `name` given `value` instead.
        let plan = |name: &str, value: &str| -> anyhow::Result<Plan> {
            let mut argv = vec!["soak-load", "run", "--key", "k", "--log", "l", "--id-prefix", "p"];
            for (option, default) in [
                ("--url", "http://127.0.0.1:1/x"),
                ("--rate", "1000"),
                ("--duration", "5"),
                ("--timeout", "1"),
            ] {
                argv.extend([option, if option == name { value } else { default }]);
            }
            if !argv.contains(&name) {
                argv.extend([name, value]);
            }
            // clap refuses some values itself (`-1` is taken for an option).
            let Command::Run(args) = Cli::try_parse_from(argv)?.command else { unreachable!() };
            Plan::new(args)
        };
        assert_eq!(plan("--events", "100").unwrap().bodies, 50);
        assert_eq!(plan("--rate", "1010").unwrap().bodies, 51, "rounded");
        assert!(plan("--rate", "0").is_err());
        assert!(plan("--rate", "NaN").is_err());
        assert!(plan("--events", "0").is_err());
        assert!(plan("--connections", "0").is_err());
        assert!(plan("--url", "not a url").is_err());
        assert!(plan("--url", "ftp://127.0.0.1/").is_err());
        assert!(plan("--duration", "0.01").is_err(), "not half a body");
        assert!(plan("--duration", "inf").is_err());
        assert!(plan("--timeout", "-1").is_err());
        assert!(plan("--malformed-per-mille", "1001").is_err());
    }
}
