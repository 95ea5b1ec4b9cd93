//! The `sluice` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use sluice::cli::Cli;
use sluice::config::{HostConfig, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // The command reads the file again itself; logging has to start before it does.
    let format = match HostConfig::load(config_path(&matches).as_deref()) {
        Ok(config) => config.log.format,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    log_subscriber(format, filter, std::io::stderr).init();
    match cli.run().await {
        Ok(code) => code,
        Err(error) if format == LogFormat::Json => {
            // So that a log collector reading stderr sees why the host stopped.
            tracing::error!(error = format!("{error:#}"), "sluice stopped");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The host configuration file the chosen command reads (`--config` or `SLUICE_CONFIG`), if it
/// reads one: the path argument named `config` of the innermost subcommand that has it.
fn config_path(matches: &ArgMatches) -> Option<PathBuf> {
    let mut current = matches;
    loop {
        // `Err` for commands without it, or whose `config` is not a path (`plugin test`'s).
        if let Ok(Some(path)) = current.try_get_one::<PathBuf>("config") {
            return Some(path.clone());
        }
        current = current.subcommand()?.1;
    }
}

/// The subscriber for the host's log lines: events `filter` lets through, written to `writer`
/// as text or as one JSON object per line (event fields flattened next to `message`, the
/// current span's fields under `span`).
fn log_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).finish(),
        ),
    }
}

/// Caps glibc's malloc arenas at one per core and fixes its mmap threshold, before any thread
/// starts.
///
/// glibc's malloc serves the Rust code and the C libraries alike, above all librdkafka, whose
/// prefetched messages are the largest thing a connector holds. glibc gives each thread that contends for the heap an arena of its
/// own, up to eight per core, and freed pages stay with their arena; it also raises its mmap
/// threshold to the largest block freed so far (up to 32 MiB), after which freed buffers stay
/// resident. One arena per core and a fixed 1 MiB threshold kept a connector's peak RSS tens of
/// megabytes lower at the same throughput. `MALLOC_ARENA_MAX` and `GLIBC_TUNABLES` in the
/// environment still win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    /// Blocks from this size up are mapped and unmapped on their own.
    const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: as below.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
    }
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets an allocator tunable; it is called before any other thread
    // exists, and a refused value (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_logs_are_one_object_per_line_with_event_and_span_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = log_subscriber(LogFormat::Json, EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(pipeline = "sendgrid-events", records = 3, "batch stored");
            let span = tracing::info_span!("job", job = "j-1");
            span.in_scope(|| tracing::warn!(topic = "t", "slow"));
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("UTF-8");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "batch stored");
        assert_eq!(lines[0]["pipeline"], "sendgrid-events");
        assert_eq!(lines[0]["records"], 3);
        assert_eq!(lines[0]["target"], "sluice::tests");
        assert!(lines[0]["timestamp"].is_string(), "{text}");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["topic"], "t");
        assert_eq!(lines[1]["span"]["name"], "job");
        assert_eq!(lines[1]["span"]["job"], "j-1");
    }

    #[test]
    fn the_config_path_is_found_under_subcommands_that_take_one() {
        let path = |args: &[&str]| config_path(&Cli::command().get_matches_from(args));
        assert_eq!(
            path(&["sluice", "pipelines", "check", "--config", "a.toml"]),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(path(&["sluice", "serve", "--config=b.toml"]), Some(PathBuf::from("b.toml")));
        assert_eq!(
            path(&["sluice", "plugin", "test", "p.wasm", "--input", "in.jsonl", "--config", "k=v"]),
            None
        );
    }
}
