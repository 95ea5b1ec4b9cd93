//! Shadowing: a candidate version of a plugin runs on the same live batches as the current one,
//! and only its differences are kept. It writes nothing a pipeline reads: its rows and failures
//! are compared with the current version's ([`super::compare`]) and counted, and a bounded
//! sample of the differing records goes wherever the caller keeps samples.
//!
//! The current version never waits for the candidate: each batch is handed to a background task,
//! at most one at a time per candidate. A batch that arrives while the candidate is still busy
//! is skipped and counted, so a slow candidate costs CPU and never throughput or correctness.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::compare::{Comparison, Difference, Outcome, compare};
use super::loaded::{LoadedPlugin, PluginCall};
use super::{BatchResult, PluginError, RecordIn};
use crate::telemetry;

/// Differing records kept as samples per candidate; later differences are only counted.
pub const MAX_SAMPLES: usize = 100;
/// Distinct failure reasons counted per candidate; any further reason is counted as [`OTHER_REASON`],
/// so a plugin that puts record data in its reasons cannot grow the counts without bound.
pub const MAX_REASONS: usize = 20;
/// The bucket of reasons beyond [`MAX_REASONS`].
pub const OTHER_REASON: &str = "other";

/// One differing record of a shadowed batch, for whoever keeps samples.
#[derive(Debug, Clone)]
pub struct ShadowSample {
    /// The record as the step received it.
    pub record: RecordIn,
    /// What differs, `old` being the current version's and `new` the candidate's.
    pub difference: Difference,
}

/// Where the samples of differing records of one pipeline go (its dead-letter store).
pub trait SampleSink: Send + Sync {
    /// Keeps `samples` of `plugin`'s candidate `candidate` against current version `current`.
    fn keep(
        &self,
        plugin: &str,
        current: &str,
        candidate: &str,
        samples: Vec<ShadowSample>,
    ) -> BoxFuture<'static, ()>;
}

/// What a candidate has done so far, against the current version on the same batches.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ShadowCounts {
    /// Batches both versions ran and were compared.
    pub batches_compared: u64,
    /// Batches not given to the candidate because it was still busy with an earlier one.
    pub batches_skipped: u64,
    /// Batches whose candidate call the sandbox stopped (trap, timeout, memory).
    pub batches_trapped: u64,
    pub rows_equal: u64,
    /// Rows both made at the same record and position, with different values.
    pub rows_changed: u64,
    /// Rows only the current version made.
    pub rows_missing: u64,
    /// Rows only the candidate made.
    pub rows_extra: u64,
    pub failures_appeared: u64,
    pub failures_disappeared: u64,
    pub failures_changed: u64,
    /// The candidate's reasons for failures the current version does not have (appeared, or
    /// another reason), and for its trapped batches.
    pub failures_by_reason: BTreeMap<String, u64>,
    /// Batches both versions were timed on (compared and trapped ones).
    pub timed_batches: u64,
    pub current_seconds: f64,
    pub candidate_seconds: f64,
    /// Differing records kept as samples.
    pub samples_kept: u64,
}

impl ShadowCounts {
    fn count_reason(&mut self, reason: &str) {
        let key =
            if self.failures_by_reason.contains_key(reason) || self.failures_by_reason.len() < MAX_REASONS {
                reason
            } else {
                OTHER_REASON
            };
        *self.failures_by_reason.entry(key.to_owned()).or_default() += 1;
    }

    /// Counts one compared batch: `comparison` of the `current` version's outcome with the
    /// `candidate`'s.
    fn add_comparison(&mut self, current: &Outcome, candidate: &Outcome, comparison: &Comparison) {
        let rows = comparison.row_totals();
        let failures = &comparison.failures;
        self.batches_compared += 1;
        self.rows_equal += rows.equal as u64;
        self.rows_changed += rows.changed as u64;
        self.rows_missing += rows.only_in_old as u64;
        self.rows_extra += rows.only_in_new as u64;
        self.failures_appeared += failures.appeared as u64;
        self.failures_disappeared += failures.disappeared as u64;
        self.failures_changed += failures.changed_reason as u64;
        for (record, reasons) in &candidate.failures {
            if current.failures.get(record) != Some(reasons) {
                self.count_reason(&reasons.join("; "));
            }
        }
    }

    /// Mean time per batch of the current version and of the candidate, in milliseconds.
    pub fn mean_ms(&self) -> (Option<f64>, Option<f64>) {
        if self.timed_batches == 0 {
            return (None, None);
        }
        let per_batch = |seconds: f64| Some(seconds * 1000.0 / self.timed_batches as f64);
        (per_batch(self.current_seconds), per_batch(self.candidate_seconds))
    }
}

/// A candidate version shadowing the current one of its plugin name.
pub struct Shadow {
    candidate: Arc<LoadedPlugin>,
    /// The candidate's component, written to the plugins directory when it is promoted.
    bytes: Arc<[u8]>,
    since: SystemTime,
    /// One candidate call at a time: a batch that finds it taken is skipped.
    in_flight: Arc<Semaphore>,
    counts: Mutex<ShadowCounts>,
    samples_left: AtomicUsize,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow").field("candidate", &self.candidate).finish_non_exhaustive()
    }
}

/// What the current version answered to a batch, as the candidate's answer is compared with it.
enum CurrentAnswer {
    Result(BatchResult),
    Failed(String),
}

impl Shadow {
    /// A shadow of `candidate`, loaded from `bytes`.
    pub fn new(candidate: LoadedPlugin, bytes: Arc<[u8]>) -> Self {
        Shadow {
            candidate: Arc::new(candidate),
            bytes,
            since: SystemTime::now(),
            in_flight: Arc::new(Semaphore::new(1)),
            counts: Mutex::new(ShadowCounts::default()),
            samples_left: AtomicUsize::new(MAX_SAMPLES),
        }
    }

    pub fn candidate(&self) -> &Arc<LoadedPlugin> {
        &self.candidate
    }

    /// The candidate's component file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// When the candidate started shadowing.
    pub fn since(&self) -> SystemTime {
        self.since
    }

    pub fn counts(&self) -> ShadowCounts {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn with_counts(&self, update: impl FnOnce(&mut ShadowCounts)) {
        update(&mut self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Hands `batch`, which the current version `current_version` answered with `current` in
    /// `current_time`, to the candidate on a background task, or skips it when the candidate
    /// is still busy. Returns at once; must be called inside the Tokio runtime.
    pub fn offer(
        self: &Arc<Self>,
        call: Arc<PluginCall>,
        batch: Arc<[RecordIn]>,
        current: Result<&BatchResult, &PluginError>,
        current_version: &str,
        current_time: Duration,
        samples: Option<Arc<dyn SampleSink>>,
    ) {
        let plugin = self.candidate.name().to_owned();
        let candidate_version = self.candidate.version().to_owned();
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.with_counts(|counts| counts.batches_skipped += 1);
            metrics::counter!(telemetry::SHADOW_BATCHES, "plugin" => plugin, "candidate_version" => candidate_version, "outcome" => "skipped")
                .increment(1);
            return;
        };
        let current = match current {
            Ok(result) => CurrentAnswer::Result(result.clone()),
            Err(error) => CurrentAnswer::Failed(error.to_string()),
        };
        let current_version = current_version.to_owned();
        let shadow = self.clone();
        tokio::spawn(async move {
            let _one_at_a_time = permit;
            let run = shadow.clone();
            let ran = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let answer = run.candidate.transform(&call, &batch);
                let candidate_time = started.elapsed();
                run.record(&batch, &current, answer, current_time, candidate_time)
            })
            .await;
            match ran {
                Ok(kept) if !kept.is_empty() => {
                    if let Some(sink) = samples {
                        sink.keep(&plugin, &current_version, &candidate_version, kept).await;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(plugin = %plugin, candidate = %candidate_version, "shadow call aborted: {error}")
                }
            }
        });
    }

    /// Compares the candidate's `answer` with `current`, counts the outcome, and returns the
    /// differing records this batch may keep as samples.
    fn record(
        &self,
        batch: &[RecordIn],
        current: &CurrentAnswer,
        answer: Result<BatchResult, PluginError>,
        current_time: Duration,
        candidate_time: Duration,
    ) -> Vec<ShadowSample> {
        let plugin = self.candidate.name().to_owned();
        let version = self.candidate.version().to_owned();
        metrics::histogram!(telemetry::SHADOW_DURATION, "plugin" => plugin.clone(), "candidate_version" => version.clone())
            .record(candidate_time.as_secs_f64());
        let timed = |counts: &mut ShadowCounts| {
            counts.timed_batches += 1;
            counts.current_seconds += current_time.as_secs_f64();
            counts.candidate_seconds += candidate_time.as_secs_f64();
        };
        let candidate = match answer {
            Err(error) if error.is_trap() => {
                self.with_counts(|counts| {
                    counts.batches_trapped += 1;
                    counts.count_reason(&error.to_string());
                    timed(counts);
                });
                metrics::counter!(telemetry::SHADOW_BATCHES, "plugin" => plugin, "candidate_version" => version, "outcome" => "trapped")
                    .increment(1);
                return Vec::new();
            }
            Err(error) => {
                let mut outcome = Outcome::default();
                outcome.fail_batch(0, batch.len(), &error.to_string());
                outcome
            }
            Ok(result) => Outcome::of_result(&result),
        };
        let current = match current {
            CurrentAnswer::Result(result) => Outcome::of_result(result),
            CurrentAnswer::Failed(reason) => {
                let mut outcome = Outcome::default();
                outcome.fail_batch(0, batch.len(), reason);
                outcome
            }
        };
        let comparison = compare(&current, &candidate, batch);
        let rows = comparison.row_totals();
        let failures = &comparison.failures;
        let wanted = comparison.differences.len();
        let keep = self
            .samples_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| Some(left.saturating_sub(wanted)))
            .map_or(0, |left| left.min(wanted));
        self.with_counts(|counts| {
            counts.add_comparison(&current, &candidate, &comparison);
            counts.samples_kept += keep as u64;
            timed(counts);
        });
        let batches = metrics::counter!(telemetry::SHADOW_BATCHES, "plugin" => plugin.clone(), "candidate_version" => version.clone(), "outcome" => "compared");
        batches.increment(1);
        for (outcome, count) in [
            ("equal", rows.equal),
            ("changed", rows.changed),
            ("missing", rows.only_in_old),
            ("extra", rows.only_in_new),
        ] {
            metrics::counter!(telemetry::SHADOW_ROWS, "plugin" => plugin.clone(), "candidate_version" => version.clone(), "outcome" => outcome)
                .increment(count as u64);
        }
        for (change, count) in [
            ("appeared", failures.appeared),
            ("disappeared", failures.disappeared),
            ("changed", failures.changed_reason),
        ] {
            metrics::counter!(telemetry::SHADOW_FAILURES, "plugin" => plugin.clone(), "candidate_version" => version.clone(), "change" => change)
                .increment(count as u64);
        }
        comparison
            .differences
            .into_iter()
            .take(keep)
            .filter_map(|difference| {
                let record = batch.get(usize::try_from(difference.record).ok()?)?.clone();
                Some(ShadowSample { record, difference })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_beyond_the_cap_are_counted_as_other() {
        let mut counts = ShadowCounts::default();
        for n in 0..MAX_REASONS + 5 {
            counts.count_reason(&format!("reason {n}"));
        }
        counts.count_reason("reason 0");
        assert_eq!(counts.failures_by_reason.len(), MAX_REASONS + 1);
        assert_eq!(counts.failures_by_reason[OTHER_REASON], 5);
        assert_eq!(counts.failures_by_reason["reason 0"], 2, "a reason already counted keeps its own count");
    }

    fn outcome(rows: &[(&str, u64, serde_json::Value)], failures: &[(u64, &str)]) -> Outcome {
        let mut outcome = Outcome::default();
        for (output, input, row) in rows {
            outcome.rows.entry(((*output).to_owned(), *input)).or_default().push(row.clone());
        }
        for (input, reason) in failures {
            outcome.failures.entry(*input).or_default().push((*reason).to_owned());
        }
        outcome
    }

    #[test]
    fn batches_add_up_and_only_the_candidates_new_reasons_are_counted() {
        use serde_json::json;
        let records: Vec<RecordIn> = (0..4)
            .map(|n| RecordIn { key: None, value: format!("r{n}").into_bytes(), headers: Vec::new() })
            .collect();
        let current = outcome(&[("out", 0, json!(1)), ("out", 1, json!(2))], &[(2, "bad"), (3, "same")]);
        let candidate =
            outcome(&[("out", 0, json!(1)), ("out", 1, json!(9)), ("out", 2, json!(3))], &[(3, "same")]);
        let mut counts = ShadowCounts::default();
        for _ in 0..2 {
            counts.add_comparison(&current, &candidate, &compare(&current, &candidate, &records));
        }
        let regressed = outcome(&[], &[(0, "x: broken"), (1, "x: broken"), (2, "bad"), (3, "same")]);
        counts.add_comparison(&current, &regressed, &compare(&current, &regressed, &records));
        assert_eq!(
            (
                counts.batches_compared,
                counts.rows_equal,
                counts.rows_changed,
                counts.rows_missing,
                counts.rows_extra
            ),
            (3, 2, 2, 2, 2)
        );
        assert_eq!(
            (counts.failures_appeared, counts.failures_disappeared, counts.failures_changed),
            (2, 2, 0)
        );
        let reasons: Vec<(&str, u64)> =
            counts.failures_by_reason.iter().map(|(reason, n)| (reason.as_str(), *n)).collect();
        assert_eq!(reasons, [("x: broken", 2)], "failures both versions share are not the candidate's doing");
    }

    #[test]
    fn the_mean_time_is_per_timed_batch() {
        let counts = ShadowCounts {
            timed_batches: 4,
            current_seconds: 0.2,
            candidate_seconds: 0.4,
            ..ShadowCounts::default()
        };
        let (current, candidate) = counts.mean_ms();
        assert!(current.is_some_and(|ms| (ms - 50.0).abs() < 1e-9), "{current:?}");
        assert!(candidate.is_some_and(|ms| (ms - 100.0).abs() < 1e-9), "{candidate:?}");
        assert_eq!(ShadowCounts::default().mean_ms(), (None, None));
    }
}
