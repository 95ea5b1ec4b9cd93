//! Canary rollouts: a candidate version serves a share of the live traffic (whole Kafka
//! partitions) while the current version serves the rest, and a judge over a sliding window of
//! batches puts the current version back on everything when the candidate fails records
//! noticeably more often than the current version, or traps repeatedly.
//!
//! The candidate's rows reach the sinks and its failures become dead letters naming its
//! version, so a rolled-back candidate's dead letters can be re-run with `sluice sweep`. A batch
//! the sandbox stopped on the candidate (trap, timeout, memory) is run again on the current
//! version, so a trapping candidate loses and dead-letters nothing.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::loaded::LoadedPlugin;

/// How a canary is shared and judged: `[plugins.canary]` in the host config, or the query of
/// an upload.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanarySettings {
    /// The share of partitions the candidate serves, 0 to 100 (see [`serves_partition`]).
    pub share_percent: u8,
    /// Batches of each version the judge looks back over.
    pub window_batches: usize,
    /// Records the candidate must have run in the window before its failure ratio is judged,
    /// so one bad record early on does not end a rollout.
    pub min_records: u64,
    /// How much higher than the current version's the candidate's failure ratio may be.
    pub max_failure_ratio_margin: f64,
    /// Trapped candidate batches in the window that end the rollout.
    pub max_traps: u32,
}

impl Default for CanarySettings {
    fn default() -> Self {
        CanarySettings {
            share_percent: 10,
            window_batches: 20,
            min_records: 50,
            max_failure_ratio_margin: 0.05,
            max_traps: 3,
        }
    }
}

impl CanarySettings {
    /// Why these settings cannot run a canary, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.share_percent > 100 {
            return Some(format!("share_percent must be 0 to 100, got {}", self.share_percent));
        }
        if self.window_batches == 0 {
            return Some("window_batches must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.max_failure_ratio_margin) {
            return Some(format!(
                "max_failure_ratio_margin must be 0 to 1, got {}",
                self.max_failure_ratio_margin
            ));
        }
        if self.max_traps == 0 {
            return Some("max_traps must be at least 1".into());
        }
        None
    }
}

/// Whether records of Kafka partition `partition` go to the candidate under `share_percent`.
///
/// Partition `p` is in the share when `(p × 37) mod 100 < share_percent`: stable across hosts
/// and restarts, partition 0 is in any share above 0 (so a candidate always serves something),
/// and the first partitions spread evenly over the range. The share is by whole partitions, so
/// with few partitions the share of records is coarse.
pub fn serves_partition(partition: i32, share_percent: u8) -> bool {
    let bucket = (i64::from(partition).rem_euclid(100) * 37) % 100;
    bucket < i64::from(share_percent)
}

/// Where a canary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    Serving,
    RolledBack,
    Promoted,
}

/// Why a canary was rolled back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollback {
    /// `failure_ratio` or `traps`, the metric label.
    pub kind: &'static str,
    /// What the judge saw, for people.
    pub reason: String,
    #[serde(skip)]
    pub at: SystemTime,
}

/// What one version did while the canary ran.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct VersionCounts {
    pub batches: u64,
    pub records: u64,
    /// Records that became dead letters (failed whole or in part).
    pub failed: u64,
    /// Batches the sandbox stopped; the candidate's were run again on the current version.
    pub trapped: u64,
}

impl VersionCounts {
    fn add(&mut self, batch: BatchOutcome) {
        self.batches += 1;
        self.records += batch.records;
        self.failed += batch.failed;
        self.trapped += u64::from(batch.trapped);
    }
}

/// One batch's outcome on one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub records: u64,
    pub failed: u64,
    pub trapped: bool,
}

/// The last batches of each version, judged together.
#[derive(Debug, Default)]
pub struct JudgeWindow {
    candidate: VecDeque<BatchOutcome>,
    current: VecDeque<BatchOutcome>,
}

impl JudgeWindow {
    /// Adds a batch of the candidate (`on_candidate`) or the current version, forgetting the
    /// oldest of that version beyond `settings.window_batches`.
    pub fn push(&mut self, on_candidate: bool, batch: BatchOutcome, settings: &CanarySettings) {
        let side = if on_candidate { &mut self.candidate } else { &mut self.current };
        side.push_back(batch);
        while side.len() > settings.window_batches {
            side.pop_front();
        }
    }

    /// The rollback the window calls for, if any: `max_traps` trapped candidate batches, or a
    /// candidate failure ratio above the current version's by more than the margin once the
    /// candidate has run `min_records` records (the current version counts as 0 when it ran none).
    pub fn judge(&self, settings: &CanarySettings) -> Option<(&'static str, String)> {
        let traps = self.candidate.iter().filter(|b| b.trapped).count();
        if traps >= settings.max_traps as usize {
            return Some((
                "traps",
                format!("{traps} of the candidate's last {} batches trapped", self.candidate.len()),
            ));
        }
        let (records, failed) = totals(&self.candidate);
        if records == 0 || records < settings.min_records {
            return None;
        }
        let candidate_ratio = failed as f64 / records as f64;
        let (current_records, current_failed) = totals(&self.current);
        let current_ratio =
            if current_records == 0 { 0.0 } else { current_failed as f64 / current_records as f64 };
        (candidate_ratio - current_ratio > settings.max_failure_ratio_margin).then(|| {
            (
                "failure_ratio",
                format!(
                    "the candidate failed {failed} of {records} records ({:.1}%), the current version \
                     {current_failed} of {current_records} ({:.1}%); the margin is {:.1} points",
                    candidate_ratio * 100.0,
                    current_ratio * 100.0,
                    settings.max_failure_ratio_margin * 100.0
                ),
            )
        })
    }
}

fn totals(batches: &VecDeque<BatchOutcome>) -> (u64, u64) {
    batches.iter().fold((0, 0), |(records, failed), b| (records + b.records, failed + b.failed))
}

/// A snapshot of a canary for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryView {
    pub state: CanaryState,
    pub candidate: VersionCounts,
    pub current: VersionCounts,
    pub rollback: Option<Rollback>,
}

struct Judged {
    state: CanaryState,
    window: JudgeWindow,
    candidate: VersionCounts,
    current: VersionCounts,
    rollback: Option<Rollback>,
}

/// A candidate version serving a share of a plugin's traffic.
pub struct Canary {
    candidate: Arc<LoadedPlugin>,
    bytes: Arc<[u8]>,
    settings: CanarySettings,
    since: SystemTime,
    /// The candidate's file in the plugins directory, renamed on rollback so a restart does not
    /// serve it again.
    file: Option<PathBuf>,
    /// Read on every batch without the lock.
    serving: AtomicBool,
    judged: Mutex<Judged>,
}

impl Canary {
    pub fn new(
        candidate: LoadedPlugin,
        bytes: Arc<[u8]>,
        settings: CanarySettings,
        file: Option<PathBuf>,
    ) -> Self {
        Canary {
            candidate: Arc::new(candidate),
            bytes,
            settings,
            since: SystemTime::now(),
            file,
            serving: AtomicBool::new(true),
            judged: Mutex::new(Judged {
                state: CanaryState::Serving,
                window: JudgeWindow::default(),
                candidate: VersionCounts::default(),
                current: VersionCounts::default(),
                rollback: None,
            }),
        }
    }

    pub fn candidate(&self) -> &Arc<LoadedPlugin> {
        &self.candidate
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn settings(&self) -> &CanarySettings {
        &self.settings
    }

    pub fn since(&self) -> SystemTime {
        self.since
    }

    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Whether records of `partition` go to the candidate.
    pub fn serves(&self, partition: i32) -> bool {
        serves_partition(partition, self.settings.share_percent)
    }

    pub fn view(&self) -> CanaryView {
        let judged = self.judged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        CanaryView {
            state: judged.state,
            candidate: judged.candidate,
            current: judged.current,
            rollback: judged.rollback.clone(),
        }
    }

    /// Counts a batch and judges the window; the rollback it decided, returned to exactly one
    /// caller, which then reports it. A batch finishing after the canary ended is still counted.
    pub fn record(&self, on_candidate: bool, batch: BatchOutcome) -> Option<Rollback> {
        let mut judged = self.judged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if on_candidate {
            judged.candidate.add(batch);
        } else {
            judged.current.add(batch);
        }
        if judged.state != CanaryState::Serving {
            return None;
        }
        judged.window.push(on_candidate, batch, &self.settings);
        let (kind, reason) = judged.window.judge(&self.settings)?;
        let rollback = Rollback { kind, reason, at: SystemTime::now() };
        judged.state = CanaryState::RolledBack;
        judged.rollback = Some(rollback.clone());
        self.serving.store(false, Ordering::Release);
        Some(rollback)
    }

    /// Ends a serving canary as promoted; false when it no longer serves (rolled back meanwhile).
    pub fn mark_promoted(&self) -> bool {
        let mut judged = self.judged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if judged.state != CanaryState::Serving {
            return false;
        }
        judged.state = CanaryState::Promoted;
        self.serving.store(false, Ordering::Release);
        true
    }
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("candidate", &self.candidate.version())
            .field("settings", &self.settings)
            .field("view", &self.view())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: u64, failed: u64) -> BatchOutcome {
        BatchOutcome { records, failed, trapped: false }
    }

    const TRAPPED: BatchOutcome = BatchOutcome { records: 0, failed: 0, trapped: true };

    fn settings() -> CanarySettings {
        CanarySettings {
            share_percent: 30,
            window_batches: 4,
            min_records: 20,
            max_failure_ratio_margin: 0.1,
            max_traps: 2,
        }
    }

    #[test]
    fn the_share_is_stable_whole_partitions_and_starts_at_partition_zero() {
        assert!(!serves_partition(0, 0));
        assert!(serves_partition(0, 1));
        let served: Vec<i32> = (0..4).filter(|p| serves_partition(*p, 30)).collect();
        assert_eq!(served, [0, 3]);
        assert!((0..1000).all(|p| serves_partition(p, 100)));
        let half = (0..100).filter(|p| serves_partition(*p, 50)).count();
        assert_eq!(half, 50, "over 100 partitions the share is exact");
        assert!(!serves_partition(-1, 50) || serves_partition(-1, 100), "negative partitions do not panic");
    }

    #[test]
    fn a_failure_ratio_above_the_margin_rolls_back_once_enough_records_ran() {
        let settings = settings();
        let mut window = JudgeWindow::default();
        window.push(false, batch(100, 5), &settings);
        window.push(true, batch(10, 10), &settings);
        assert_eq!(window.judge(&settings), None, "10 records are below min_records");
        window.push(true, batch(10, 0), &settings);
        let (kind, reason) = window.judge(&settings).expect("50% against 5%");
        assert_eq!(kind, "failure_ratio");
        assert!(reason.contains("10 of 20 records"), "{reason}");
    }

    #[test]
    fn a_failure_ratio_within_the_margin_is_kept() {
        let settings = settings();
        let mut window = JudgeWindow::default();
        window.push(false, batch(100, 10), &settings);
        window.push(true, batch(100, 19), &settings);
        assert_eq!(window.judge(&settings), None, "19% against 10% is within 10 points");
        window.push(true, batch(100, 40), &settings);
        assert!(window.judge(&settings).is_some(), "29.5% against 10% is not");
    }

    #[test]
    fn old_batches_leave_the_window() {
        let settings = settings();
        let mut window = JudgeWindow::default();
        window.push(true, batch(100, 100), &settings);
        for _ in 0..settings.window_batches {
            window.push(true, batch(100, 0), &settings);
        }
        assert_eq!(window.judge(&settings), None, "the failing batch was forgotten");
        window.push(true, TRAPPED, &settings);
        assert_eq!(window.judge(&settings), None, "one trap of two allowed");
        window.push(true, TRAPPED, &settings);
        assert_eq!(window.judge(&settings).map(|(kind, _)| kind), Some("traps"));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        assert_eq!(CanarySettings::default().problem(), None);
        assert!(CanarySettings { share_percent: 101, ..CanarySettings::default() }.problem().is_some());
        assert!(CanarySettings { window_batches: 0, ..CanarySettings::default() }.problem().is_some());
        assert!(CanarySettings { max_traps: 0, ..CanarySettings::default() }.problem().is_some());
        assert!(
            CanarySettings { max_failure_ratio_margin: 1.5, ..CanarySettings::default() }.problem().is_some()
        );
    }
}
