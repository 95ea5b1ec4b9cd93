//! A window: the records of one Kafka partition since the last commit, and when it closes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::config::TableSinkSettings;
use crate::sink::dead_letter::DeadLetter;
use crate::sink::table::TableWindow;

/// When a window closes: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    pub rows: usize,
    pub bytes: usize,
    pub age: Duration,
}

impl WindowLimits {
    /// The tightest of the tables' `rotate_records`, `rotate_bytes` and `rotate_ms`: a window
    /// feeds every table at once, so it closes when the first of them would rotate its file.
    pub fn of<'a>(tables: impl Iterator<Item = &'a TableSinkSettings> + Clone) -> Self {
        let settings = tables;
        WindowLimits {
            rows: settings.clone().map(|s| s.rotate_records).min().unwrap_or(usize::MAX).max(1),
            bytes: settings.clone().map(|s| s.rotate_bytes).min().unwrap_or(usize::MAX).max(1),
            age: Duration::from_millis(settings.map(|s| s.rotate_ms).min().unwrap_or(60_000)),
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
    /// Per table, in sink order.
    pub tables: Vec<TableWindow>,
    pub dead_letters: Vec<DeadLetter>,
    /// Offsets that became dead letters whole, so their rows are left out of every table.
    pub dead_offsets: HashSet<i64>,
}

impl Window {
    /// A window for `tables` tables opening at `first_offset`, which an earlier attempt closed
    /// at `planned_end` if it had a marker.
    pub fn open(first_offset: i64, tables: usize, planned_end: Option<i64>) -> Self {
        Window {
            first_offset,
            last_offset: first_offset,
            opened_at: Instant::now(),
            planned_end,
            tables: (0..tables).map(|_| TableWindow::default()).collect(),
            dead_letters: Vec::new(),
            dead_offsets: HashSet::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn bytes(&self) -> usize {
        self.tables.iter().map(|t| t.bytes).sum()
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
    use super::*;

    const LIMITS: WindowLimits = WindowLimits { rows: 3, bytes: 100, age: Duration::from_secs(60) };

    fn window_with(rows: usize, bytes: usize, planned_end: Option<i64>) -> Window {
        let mut window = Window::open(10, 2, planned_end);
        window.tables[0].rows = rows;
        window.tables[1].bytes = bytes;
        window
    }

    fn table(rotate_records: usize, rotate_bytes: usize, rotate_ms: u64) -> TableSinkSettings {
        TableSinkSettings {
            location: crate::config::StoreLocation::Local { dir: "tables".into() },
            partition_by: Vec::new(),
            rotate_records,
            rotate_bytes,
            rotate_ms,
            dedupe_by_key: false,
        }
    }

    #[test]
    fn the_tightest_table_limit_is_the_windows() {
        let tables = [table(1_000, 64, 5_000), table(10, 1 << 20, 60_000)];
        let limits = WindowLimits::of(tables.iter());
        assert_eq!(limits, WindowLimits { rows: 10, bytes: 64, age: Duration::from_secs(5) });
    }

    #[test]
    fn zero_limits_still_close_after_one_row() {
        let limits = WindowLimits::of([table(0, 0, 0)].iter());
        assert_eq!((limits.rows, limits.bytes), (1, 1));
    }

    #[test]
    fn a_new_window_is_neither_full_nor_expired() {
        let window = Window::open(10, 1, None);
        assert_eq!((window.first_offset, window.last_offset, window.rows(), window.bytes()), (10, 10, 0, 0));
        assert!(!window.is_full(LIMITS) && !window.is_expired(LIMITS));
    }

    #[test]
    fn rows_or_bytes_of_every_table_together_fill_it() {
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
        replay.tables[0].rows = 0;
        assert!(!replay.is_full(LIMITS));
    }

    #[test]
    fn age_expires_a_window_but_never_a_replay() {
        let aged = WindowLimits { age: Duration::ZERO, ..LIMITS };
        assert!(Window::open(0, 1, None).is_expired(aged));
        assert!(!Window::open(0, 1, Some(5)).is_expired(aged));
    }
}
