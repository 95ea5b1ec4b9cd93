//! A window: the records of one Kafka partition since the last commit, and when it closes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::sink::dead_letter::DeadLetter;
use crate::sink::windowed::{Rotation, SinkWindow, WindowedSink};

/// When a window closes: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    pub rows: usize,
    pub bytes: usize,
    pub age: Duration,
}

impl WindowLimits {
    /// The tightest of the sinks' rotations: a window feeds every sink at once, so it closes
    /// when the first of them would close its own.
    pub fn of(rotations: impl Iterator<Item = Rotation> + Clone) -> Self {
        WindowLimits {
            rows: rotations.clone().map(|r| r.records).min().unwrap_or(usize::MAX).max(1),
            bytes: rotations.clone().map(|r| r.bytes).min().unwrap_or(usize::MAX).max(1),
            age: rotations.map(|r| r.age).min().unwrap_or(Duration::from_secs(60)),
        }
    }
}

/// Records of one partition since the last commit.
pub struct Window {
    pub first_offset: i64,
    pub last_offset: i64,
    opened_at: Instant,
    /// The last offset an earlier attempt closed this window at; the window closes there again.
    pub planned_end: Option<i64>,
    /// Per sink, in sink order.
    pub sinks: Vec<Box<dyn SinkWindow>>,
    pub dead_letters: Vec<DeadLetter>,
    /// Offsets that became dead letters whole, so their rows are left out of every table.
    pub dead_offsets: HashSet<i64>,
}

impl Window {
    /// A window of every one of `sinks` opening at `first_offset`, which an earlier attempt
    /// closed at `planned_end` if it had a marker.
    pub fn open(first_offset: i64, sinks: &[Box<dyn WindowedSink>], planned_end: Option<i64>) -> Self {
        Window {
            first_offset,
            last_offset: first_offset,
            opened_at: Instant::now(),
            planned_end,
            sinks: sinks.iter().map(|sink| sink.open()).collect(),
            dead_letters: Vec::new(),
            dead_offsets: HashSet::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.sinks.iter().map(|sink| sink.rows()).sum()
    }

    pub fn bytes(&self) -> usize {
        self.sinks.iter().map(|sink| sink.bytes()).sum()
    }

    /// A replayed window is full at its planned end and only there, so it rewrites exactly the
    /// objects of the earlier attempt; any other window when its rows or bytes reach a limit.
    pub fn is_full(&self, limits: WindowLimits) -> bool {
        match self.planned_end {
            Some(end) => self.last_offset >= end,
            None => self.rows() >= limits.rows || self.bytes() >= limits.bytes,
        }
    }

    /// A window open longer than the age limit closes, unless it is a replay (which waits for
    /// its planned end, however long the records take to come back).
    pub fn is_expired(&self, limits: WindowLimits) -> bool {
        self.planned_end.is_none() && self.opened_at.elapsed() >= limits.age
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::future::BoxFuture;
    use tokio::sync::watch;

    use super::*;
    use crate::kafka::SourceRecord;
    use crate::plugin::rows::RowRef;
    use crate::sink::windowed::{RejectedRow, SinkError, StoredWindow, WindowName};

    const LIMITS: WindowLimits = WindowLimits { rows: 3, bytes: 100, age: Duration::from_secs(60) };

    /// A sink window that only counts what it was told it holds.
    #[derive(Default)]
    struct Counted {
        rows: usize,
        bytes: usize,
    }

    impl SinkWindow for Counted {
        fn push(&mut self, _row: RowRef, _source: &SourceRecord, _plugin_version: Arc<str>) -> bool {
            self.rows += 1;
            true
        }
        fn rows(&self) -> usize {
            self.rows
        }
        fn bytes(&self) -> usize {
            self.bytes
        }
        fn duplicates(&self) -> usize {
            0
        }
        fn encode(&mut self, _topic: &str, _partition: i32) -> Result<Vec<RejectedRow>, SinkError> {
            Ok(Vec::new())
        }
        fn settle(&mut self, _dead: &HashSet<i64>) -> Result<(), SinkError> {
            Ok(())
        }
        fn store<'a>(
            self: Box<Self>,
            _name: WindowName<'a>,
            _shutdown: &'a watch::Receiver<bool>,
        ) -> BoxFuture<'a, Result<StoredWindow, SinkError>> {
            Box::pin(async move { Ok(StoredWindow::default()) })
        }
    }

    fn window(sinks: usize, planned_end: Option<i64>) -> Window {
        Window {
            first_offset: 10,
            last_offset: 10,
            opened_at: Instant::now(),
            planned_end,
            sinks: (0..sinks).map(|_| Box::new(Counted::default()) as Box<dyn SinkWindow>).collect(),
            dead_letters: Vec::new(),
            dead_offsets: HashSet::new(),
        }
    }

    fn window_with(rows: usize, bytes: usize, planned_end: Option<i64>) -> Window {
        let mut window = window(0, planned_end);
        window.sinks = vec![Box::new(Counted { rows, bytes: 0 }), Box::new(Counted { rows: 0, bytes })];
        window
    }

    fn rotation(records: usize, bytes: usize, age_ms: u64) -> Rotation {
        Rotation { records, bytes, age: Duration::from_millis(age_ms) }
    }

    #[test]
    fn the_tightest_sink_limit_is_the_windows() {
        let rotations = [rotation(1_000, 64, 5_000), rotation(10, 1 << 20, 60_000)];
        let limits = WindowLimits::of(rotations.into_iter());
        assert_eq!(limits, WindowLimits { rows: 10, bytes: 64, age: Duration::from_secs(5) });
    }

    #[test]
    fn zero_limits_still_close_after_one_row() {
        let limits = WindowLimits::of([rotation(0, 0, 0)].into_iter());
        assert_eq!((limits.rows, limits.bytes), (1, 1));
    }

    #[test]
    fn a_new_window_is_neither_full_nor_expired() {
        let window = window(1, None);
        assert_eq!((window.first_offset, window.last_offset, window.rows(), window.bytes()), (10, 10, 0, 0));
        assert!(!window.is_full(LIMITS) && !window.is_expired(LIMITS));
    }

    #[test]
    fn rows_or_bytes_of_every_sink_together_fill_it() {
        assert!(!window_with(2, 99, None).is_full(LIMITS));
        assert!(window_with(3, 0, None).is_full(LIMITS), "rows reached");
        assert!(window_with(0, 100, None).is_full(LIMITS), "bytes reached");
    }

    #[test]
    fn a_replay_is_full_at_its_planned_end_only() {
        let mut replay = window_with(50, 5_000, Some(14));
        assert!(!replay.is_full(LIMITS), "past the limits but before the planned end");
        replay.last_offset = 14;
        assert!(replay.is_full(LIMITS));
        replay.last_offset = 13;
        replay.sinks = vec![Box::new(Counted::default())];
        assert!(!replay.is_full(LIMITS));
    }

    #[test]
    fn age_expires_a_window_but_never_a_replay() {
        let aged = WindowLimits { age: Duration::ZERO, ..LIMITS };
        assert!(window(1, None).is_expired(aged));
        assert!(!window(1, Some(5)).is_expired(aged));
    }
}
