//! Several tables' binary `COPY` on the one connection whose transaction commits a load.
//!
//! Rows written inside the load's transaction are written once and become visible with its
//! commit, with nothing to move afterwards; but a connection runs one `COPY` at a time. So each
//! sink copied that way encodes its rows on its own task and sends them here, and
//! [`SharedCopies::run`] copies them in segments: a `COPY` into one table for as long as it has
//! rows waiting, then, once another table has [`SWITCH_BYTES`] waiting, a `COPY` into that one.
//! A switch costs two round trips per few megabytes of rows.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyInSink};

use super::TablePlan;
use super::staging::{COPY_HEADER, COPY_TRAILER, LoadError};
use crate::database::DatabaseError;

/// Rows a table waits with before the connection switches its `COPY` to it.
const SWITCH_BYTES: usize = 4 << 20;
/// Messages in flight from the sinks' tasks.
const CHANNEL_MESSAGES: usize = 8;

/// What a sink's writer sends the load's connection.
enum Segment {
    /// Encoded rows of the `sink`-th shared table, without header or trailer.
    Rows { sink: usize, rows: Bytes },
    /// The sink wrote its last row.
    Done { sink: usize },
}

/// A sink's end of the load's connection.
pub struct SegmentSender {
    sink: usize,
    table: String,
    sender: mpsc::Sender<Segment>,
}

impl SegmentSender {
    /// Sends encoded rows (whole rows, no header).
    ///
    /// # Errors
    /// [`LoadError::SharedCopyStopped`] when the load's connection stopped copying.
    pub async fn rows(&self, rows: Bytes) -> Result<(), LoadError> {
        self.send(Segment::Rows { sink: self.sink, rows }).await
    }

    /// Says the sink wrote its last row.
    ///
    /// # Errors
    /// [`LoadError::SharedCopyStopped`] when the load's connection stopped copying.
    pub async fn done(&self) -> Result<(), LoadError> {
        self.send(Segment::Done { sink: self.sink }).await
    }

    async fn send(&self, segment: Segment) -> Result<(), LoadError> {
        self.sender
            .send(segment)
            .await
            .map_err(|_| LoadError::SharedCopyStopped { table: self.table.clone() })
    }
}

/// One table copied through the load's connection.
struct SharedTable {
    table: String,
    statement: String,
    waiting: VecDeque<Bytes>,
    waiting_bytes: usize,
    done: bool,
}

/// The tables whose rows the load's connection copies, and the rows they wait with.
pub struct SharedCopies {
    tables: Vec<SharedTable>,
    /// The senders' original, dropped when the copies start, so they end when the sinks' do.
    sender: Option<mpsc::Sender<Segment>>,
    receiver: mpsc::Receiver<Segment>,
}

/// The `COPY` running on the load's connection.
struct Running {
    table: usize,
    sink: Pin<Box<CopyInSink<Bytes>>>,
}

impl Default for SharedCopies {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedCopies {
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL_MESSAGES);
        SharedCopies { tables: Vec::new(), sender: Some(sender), receiver }
    }

    /// Adds `plan`'s table; returns the sender for its rows, or `None` when its rows cannot be
    /// copied straight into it (see [`TablePlan::table_copy_statement`]).
    pub fn add(&mut self, plan: &TablePlan) -> Option<SegmentSender> {
        let statement = plan.table_copy_statement()?;
        let sender = self.sender.clone()?;
        let sink = self.tables.len();
        self.tables.push(SharedTable {
            table: plan.table.clone(),
            statement,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            done: false,
        });
        Some(SegmentSender { sink, table: plan.table.clone(), sender })
    }

    /// Copies the rows the senders send until every sender is gone; `Ok(true)` when every
    /// sink said it was done, `Ok(false)` when one went away without (the attempt was
    /// abandoned: the running `COPY` is aborted, which fails the transaction).
    ///
    /// # Errors
    /// [`LoadError::Database`] when the server refuses a `COPY` (a constraint of the table,
    /// say) or the connection fails.
    pub async fn run(mut self, transaction: &Client) -> Result<bool, LoadError> {
        self.sender = None;
        let mut running: Option<Running> = None;
        let mut senders_gone = false;
        loop {
            if let Some(copy) = running.as_mut()
                && let Some(rows) = self.take_waiting(copy.table)
            {
                let table = &self.tables[copy.table].table;
                copy.sink
                    .send(rows)
                    .await
                    .map_err(DatabaseError::query(format!("copying rows into `{table}`")))?;
                continue;
            }
            if let Some(next) = self.next_table(running.as_ref().map(|copy| copy.table), senders_gone) {
                if let Some(copy) = running.take() {
                    self.end(copy).await?;
                }
                running = Some(self.start(transaction, next).await?);
                continue;
            }
            if senders_gone {
                break;
            }
            match self.receiver.recv().await {
                Some(Segment::Rows { sink, rows }) => {
                    if let Some(table) = self.tables.get_mut(sink) {
                        table.waiting_bytes += rows.len();
                        table.waiting.push_back(rows);
                    }
                }
                Some(Segment::Done { sink }) => {
                    if let Some(table) = self.tables.get_mut(sink) {
                        table.done = true;
                    }
                }
                None => senders_gone = true,
            }
        }
        if !self.tables.iter().all(|table| table.done) {
            return Ok(false);
        }
        if let Some(copy) = running.take() {
            self.end(copy).await?;
        }
        Ok(true)
    }

    fn take_waiting(&mut self, table: usize) -> Option<Bytes> {
        let table = self.tables.get_mut(table)?;
        let rows = table.waiting.pop_front()?;
        table.waiting_bytes -= rows.len();
        Some(rows)
    }

    /// The table to copy next, once `running` has nothing waiting: with no `COPY` running, the
    /// one with the most rows waiting; otherwise one with [`SWITCH_BYTES`] waiting, or with
    /// all its rows in, or any with rows once no more can come.
    fn next_table(&self, running: Option<usize>, senders_gone: bool) -> Option<usize> {
        self.tables
            .iter()
            .enumerate()
            .filter(|(index, table)| {
                Some(*index) != running
                    && !table.waiting.is_empty()
                    && (running.is_none()
                        || senders_gone
                        || table.done
                        || table.waiting_bytes >= SWITCH_BYTES)
            })
            .max_by_key(|(_, table)| table.waiting_bytes)
            .map(|(index, _)| index)
    }

    async fn start(&self, transaction: &Client, index: usize) -> Result<Running, LoadError> {
        let table = &self.tables[index];
        let mut sink = Box::pin(
            transaction
                .copy_in(&table.statement)
                .await
                .map_err(DatabaseError::query(format!("starting the COPY into `{}`", table.table)))?,
        );
        sink.send(Bytes::from_static(COPY_HEADER))
            .await
            .map_err(DatabaseError::query(format!("copying rows into `{}`", table.table)))?;
        Ok(Running { table: index, sink })
    }

    async fn end(&self, mut copy: Running) -> Result<(), LoadError> {
        let table = &self.tables[copy.table].table;
        copy.sink
            .send(Bytes::from_static(COPY_TRAILER))
            .await
            .map_err(DatabaseError::query(format!("copying rows into `{table}`")))?;
        copy.sink
            .as_mut()
            .finish()
            .await
            .map_err(DatabaseError::query(format!("finishing the COPY into `{table}`")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(waiting: &[(usize, bool)]) -> SharedCopies {
        let mut copies = SharedCopies::new();
        for (index, (bytes, done)) in waiting.iter().enumerate() {
            let mut table = SharedTable {
                table: format!("t{index}"),
                statement: String::new(),
                waiting: VecDeque::new(),
                waiting_bytes: 0,
                done: *done,
            };
            if *bytes > 0 {
                table.waiting.push_back(Bytes::from(vec![0; *bytes]));
                table.waiting_bytes = *bytes;
            }
            copies.tables.push(table);
        }
        copies
    }

    #[test]
    fn with_no_copy_running_the_table_with_most_rows_waiting_goes_first() {
        assert_eq!(copies(&[(10, false), (30, false), (0, false)]).next_table(None, false), Some(1));
        assert_eq!(copies(&[(0, false), (0, true)]).next_table(None, false), None, "nothing waits");
    }

    #[test]
    fn a_running_copy_gives_way_only_to_a_full_segment_a_finished_sink_or_the_end() {
        assert_eq!(copies(&[(0, false), (SWITCH_BYTES - 1, false)]).next_table(Some(0), false), None);
        assert_eq!(copies(&[(0, false), (SWITCH_BYTES, false)]).next_table(Some(0), false), Some(1));
        assert_eq!(copies(&[(0, false), (1, true)]).next_table(Some(0), false), Some(1), "its last rows");
        assert_eq!(copies(&[(0, false), (1, false)]).next_table(Some(0), true), Some(1), "no more can come");
        assert_eq!(copies(&[(SWITCH_BYTES, false)]).next_table(Some(0), false), None, "not to itself");
    }

    #[test]
    fn rows_taken_leave_the_count_of_bytes_waiting() {
        let mut waiting = copies(&[(5, false)]);
        assert_eq!(waiting.take_waiting(0).map(|rows| rows.len()), Some(5));
        assert_eq!(waiting.tables[0].waiting_bytes, 0);
        assert!(waiting.take_waiting(0).is_none() && waiting.take_waiting(3).is_none());
    }
}
