//! `sluice job run`: loads one S3 object through an `s3-job` pipeline now, in this process,
//! with a progress bar. The checks, the job record (so a file still loads at most once) and
//! the load are the same as when the host runs a requested job.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::sync::watch;

use super::HostOptions;
use super::serve::{load_pipelines, load_plugins};
use crate::config::Pipeline;
use crate::http::job_view;
use crate::job::{JobCounts, JobRequest, JobServices, JobState, RunOutcome, is_job_pipeline};
use crate::object_store::ObjectStores;

#[derive(Debug, Args)]
pub struct JobRunArgs {
    #[command(flatten)]
    host: HostOptions,
    /// The bucket holding the object.
    #[arg(long)]
    bucket: String,
    /// The object's key.
    #[arg(long)]
    key: String,
    /// The `s3-job` pipeline to run it through; needed only when there are several.
    #[arg(long)]
    pipeline: Option<String>,
}

/// Runs the job and prints its final record as JSON; exits 1 when the load failed.
///
/// # Errors
/// When the configuration, plugins, database or request are not usable.
pub async fn run(args: JobRunArgs) -> anyhow::Result<ExitCode> {
    let config = args.host.load()?;
    let registry = load_plugins(&config)?;
    let pipelines = load_pipelines(&config, &registry)?;
    let pipeline = choose_pipeline(&pipelines, args.pipeline.as_deref())?;
    let stores = ObjectStores::new(config.s3.clone());
    let services = JobServices::start(&config, &stores).await?;
    let job_pipeline = services.prepare(pipeline, &registry, &config).await?;
    let request = JobRequest::from_values(Some(&Value::String(args.bucket)), Some(&Value::String(args.key)))?;
    let submission = job_pipeline.submit(&request).await?;
    let job = submission.job;
    if job.state == JobState::Succeeded {
        eprintln!(
            "s3://{}/{} (ETag {}) was already loaded by job {}",
            job.object.bucket, job.object.key, job.object.etag, job.id
        );
        println!("{}", job_view(&job));
        return Ok(ExitCode::SUCCESS);
    }

    let bar = ProgressBar::new(job.object.size);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}")
            .context("progress bar template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let (progress, mut updates) = watch::channel(JobCounts::default());
    let shown = bar.clone();
    let display = tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let counts = updates.borrow_and_update().clone();
            shown.set_position(counts.bytes_read);
            shown.set_message(format!("{} records, {} refused", counts.records_read, counts.records_failed));
        }
    });
    let outcome = job_pipeline.run(job.id, &progress).await.context("cannot record the job's outcome")?;
    drop(progress);
    let _ = display.await;
    bar.finish_and_clear();

    let (record, code) = match outcome {
        RunOutcome::Succeeded(record) | RunOutcome::AlreadyLoaded(record) => (record, ExitCode::SUCCESS),
        RunOutcome::Failed(record) => (record, ExitCode::FAILURE),
        RunOutcome::Unknown(id) => bail!("job {id} disappeared from the job store while running"),
    };
    match (&record.state, &record.error) {
        (JobState::Failed, Some(error)) => eprintln!("job {} failed: {error}", record.id),
        _ => eprintln!(
            "job {} {}: {} records read, {} refused, rows {:?}",
            record.id,
            record.state.as_str(),
            record.counts.records_read,
            record.counts.records_failed,
            record.counts.rows
        ),
    }
    println!("{}", job_view(&record));
    Ok(code)
}

/// The pipeline named `wanted`, or the only `s3-job` pipeline.
fn choose_pipeline<'p>(pipelines: &'p [Pipeline], wanted: Option<&str>) -> anyhow::Result<&'p Pipeline> {
    let jobs: Vec<&Pipeline> = pipelines.iter().filter(|p| is_job_pipeline(p)).collect();
    let names = || jobs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    match (wanted, jobs.as_slice()) {
        (Some(name), _) => jobs
            .iter()
            .find(|p| p.name == name)
            .copied()
            .with_context(|| format!("no s3-job pipeline is named `{name}` (there are: {})", names())),
        (None, [only]) => Ok(only),
        (None, []) => bail!("no pipeline has an s3-job source"),
        (None, _) => bail!("several pipelines run jobs ({}); choose one with --pipeline", names()),
    }
}
