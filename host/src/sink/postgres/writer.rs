//! A `postgres` sink's writer in a load: rows straight into the table (through the load's
//! connection) or into a staging table, and the fallback of an upsert copied straight in to
//! its staging table at the first key that may repeat an earlier one.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Copied, CopyWriter, LoadError, RowOrigin, TablePlan};
use crate::database::Database;
use crate::plugin::rows::RowRef;
use crate::sink::transactional::LoadMessage;

/// Where a sink's rows are copied: a [`CopyWriter`] in a load; the tests script one.
pub(super) trait RowCopy: Send + Sized {
    /// Whether the rows go into a staging table rather than the table itself.
    fn is_staged(&self) -> bool;

    /// The table, for errors.
    fn table(&self) -> &str;

    fn write(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> impl Future<Output = Result<(), LoadError>> + Send;

    /// Writes the row unless its key may repeat one written before; false when it did not.
    fn write_new_key(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> impl Future<Output = Result<bool, LoadError>> + Send;

    fn finish(self) -> impl Future<Output = Result<Copied, LoadError>> + Send;
}

/// Opens the staging table an upsert copied straight in goes on in.
pub(super) trait OpenStage: Send {
    type Copy: RowCopy;

    fn open(&self, stage: &str) -> impl Future<Output = Result<Self::Copy, LoadError>> + Send;
}

impl RowCopy for CopyWriter {
    fn is_staged(&self) -> bool {
        CopyWriter::is_staged(self)
    }

    fn table(&self) -> &str {
        &self.plan().table
    }

    fn write(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> impl Future<Output = Result<(), LoadError>> + Send {
        CopyWriter::write(self, record, row, origin)
    }

    fn write_new_key(
        &mut self,
        record: i64,
        row: &RowRef,
        origin: RowOrigin<'_>,
    ) -> impl Future<Output = Result<bool, LoadError>> + Send {
        CopyWriter::write_new_key(self, record, row, origin)
    }

    fn finish(self) -> impl Future<Output = Result<Copied, LoadError>> + Send {
        CopyWriter::finish(self)
    }
}

/// A staging table of the load's database, on a connection of its own.
pub(super) struct StagingTables {
    pub(super) database: Database,
    pub(super) plan: Arc<TablePlan>,
}

impl OpenStage for StagingTables {
    type Copy = CopyWriter;

    async fn open(&self, stage: &str) -> Result<CopyWriter, LoadError> {
        CopyWriter::open(&self.database, self.plan.clone(), stage).await
    }
}

/// A sink's writers for one attempt: its rows straight into the table, through the load's
/// connection, or into its staging table; an upsert copied straight in goes on in its staging
/// table from the first row whose key may repeat an earlier one, so the move at the commit
/// keeps the last row per key, replacing the rows copied in before.
pub(super) struct SinkWriter<C: RowCopy, O: OpenStage<Copy = C>> {
    /// The writer the sink starts with: into the table, or into the staging table.
    first: C,
    /// The staging table's name: where `first` copies, or where rows go on after a repeat.
    stage: String,
    /// For an upsert copied straight in: how to open the staging table, and once opened, it.
    fallback: Option<Fallback<O>>,
}

/// The staging table an upsert copied straight in opens at its first repeated key.
struct Fallback<O: OpenStage> {
    opener: O,
    staged: Option<O::Copy>,
}

/// What a sink leaves for the commit.
#[derive(Debug)]
pub(super) struct SinkLoad {
    /// Rows copied straight into the table.
    pub(super) copied_in: u64,
    /// The staging table to move, and what was staged in it.
    pub(super) staged: Option<(String, Copied)>,
}

impl<C: RowCopy, O: OpenStage<Copy = C>> SinkWriter<C, O> {
    /// Every row into the staging table `stage`, which `writer` copies into.
    pub(super) fn staged(writer: C, stage: String) -> Self {
        SinkWriter { first: writer, stage, fallback: None }
    }

    /// Rows straight into the table through `writer`; for an upsert (`fallback` given), into
    /// the staging table `stage` from the first key that may repeat.
    pub(super) fn straight_in(writer: C, stage: String, fallback: Option<O>) -> Self {
        SinkWriter {
            first: writer,
            stage,
            fallback: fallback.map(|opener| Fallback { opener, staged: None }),
        }
    }

    /// Writes the rows it receives; `Ok(None)` when the attempt was abandoned (the `COPY`s are
    /// aborted by dropping them).
    pub(super) async fn run(
        mut self,
        mut messages: mpsc::Receiver<LoadMessage>,
        job_id: String,
    ) -> Result<Option<SinkLoad>, LoadError> {
        while let Some(message) = messages.recv().await {
            match message {
                LoadMessage::Rows(rows) => {
                    for row in rows {
                        let origin = RowOrigin { plugin_version: &row.plugin_version, job_id: &job_id };
                        self.write(row.record, &row.row, origin).await?;
                    }
                }
                LoadMessage::Finish => return self.finish().await.map(Some),
            }
        }
        Ok(None)
    }

    async fn write(&mut self, record: i64, row: &RowRef, origin: RowOrigin<'_>) -> Result<(), LoadError> {
        if let Some(staged) = self.fallback.as_mut().and_then(|fallback| fallback.staged.as_mut()) {
            return staged.write(record, row, origin).await;
        }
        if self.first.write_new_key(record, row, origin).await? {
            return Ok(());
        }
        // Only an upsert copied straight in refuses a row, and it has a fallback.
        let Some(fallback) = self.fallback.as_mut() else {
            return Err(LoadError::SharedCopyStopped { table: self.first.table().to_owned() });
        };
        let mut staged = fallback.opener.open(&self.stage).await?;
        staged.write(record, row, origin).await?;
        fallback.staged = Some(staged);
        Ok(())
    }

    async fn finish(self) -> Result<SinkLoad, LoadError> {
        let staged_first = self.first.is_staged();
        let first = self.first.finish().await?;
        if staged_first {
            return Ok(SinkLoad { copied_in: 0, staged: Some((self.stage, first)) });
        }
        let staged = match self.fallback.and_then(|fallback| fallback.staged) {
            Some(writer) => Some((self.stage, writer.finish().await?)),
            None => None,
        };
        Ok(SinkLoad { copied_in: first.rows, staged })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;
    use crate::plugin::rows::{RowBatch, Value};
    use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};
    use crate::sink::transactional::LoadRow;

    /// Where each row went, as `(target, record)`.
    type Log = Arc<Mutex<Vec<(String, i64)>>>;

    /// Copies into `target`; straight into a table it refuses a key it has seen.
    struct ScriptedCopy {
        target: String,
        staged: bool,
        keys: HashSet<Vec<u8>>,
        log: Log,
        finished: Arc<Mutex<Vec<String>>>,
    }

    impl RowCopy for ScriptedCopy {
        fn is_staged(&self) -> bool {
            self.staged
        }

        fn table(&self) -> &str {
            "users"
        }

        async fn write(
            &mut self,
            record: i64,
            _row: &RowRef,
            _origin: RowOrigin<'_>,
        ) -> Result<(), LoadError> {
            self.log.lock().expect("log").push((self.target.clone(), record));
            Ok(())
        }

        async fn write_new_key(
            &mut self,
            record: i64,
            row: &RowRef,
            _origin: RowOrigin<'_>,
        ) -> Result<bool, LoadError> {
            // A staging table takes every row: the move at the commit keeps the last per key.
            if !self.staged && !self.keys.insert(row.key().unwrap_or_default().to_vec()) {
                return Ok(false);
            }
            self.log.lock().expect("log").push((self.target.clone(), record));
            Ok(true)
        }

        async fn finish(self) -> Result<Copied, LoadError> {
            let rows =
                self.log.lock().expect("log").iter().filter(|(target, _)| *target == self.target).count();
            self.finished.lock().expect("finished").push(self.target.clone());
            Ok(Copied { rows: rows as u64, keys_unique: true })
        }
    }

    #[derive(Clone)]
    struct Harness {
        log: Log,
        finished: Arc<Mutex<Vec<String>>>,
        opened: Arc<Mutex<Vec<String>>>,
    }

    struct ScriptedStage {
        harness: Harness,
    }

    impl OpenStage for ScriptedStage {
        type Copy = ScriptedCopy;

        async fn open(&self, stage: &str) -> Result<ScriptedCopy, LoadError> {
            self.harness.opened.lock().expect("opened").push(stage.to_owned());
            Ok(self.harness.copy(stage, true))
        }
    }

    impl Harness {
        fn new() -> Self {
            Harness { log: Log::default(), finished: Arc::default(), opened: Arc::default() }
        }

        fn copy(&self, target: &str, staged: bool) -> ScriptedCopy {
            ScriptedCopy {
                target: target.to_owned(),
                staged,
                keys: HashSet::new(),
                log: self.log.clone(),
                finished: self.finished.clone(),
            }
        }

        fn stage(&self) -> ScriptedStage {
            ScriptedStage { harness: self.clone() }
        }

        fn log(&self) -> Vec<(String, i64)> {
            self.log.lock().expect("log").clone()
        }
    }

    /// One row per key, record numbers from 1, in a batch of their own.
    fn rows(keys: &[&str]) -> Vec<LoadRow> {
        let schema = Arc::new(
            OutputSchema::new(
                "users".into(),
                vec![ColumnSpec { name: "id".into(), column_type: ColumnType::Text, nullable: false }],
            )
            .expect("schema"),
        );
        let mut batch = RowBatch::empty(schema);
        for (index, key) in keys.iter().enumerate() {
            batch.push_row(index as u32, Some(key.as_bytes()), &[Value::Text(key)]).expect("row");
        }
        let batch = Arc::new(batch);
        (0..keys.len())
            .map(|index| LoadRow {
                record: index as i64 + 1,
                row: RowRef::new(batch.clone(), index).expect("row"),
                plugin_version: Arc::from("p@1"),
            })
            .collect()
    }

    async fn run(
        writer: SinkWriter<ScriptedCopy, ScriptedStage>,
        batches: Vec<Vec<LoadRow>>,
        finish: bool,
    ) -> Result<Option<SinkLoad>, LoadError> {
        let (sender, receiver) = mpsc::channel(8);
        for rows in batches {
            sender.send(LoadMessage::Rows(rows)).await.expect("send");
        }
        if finish {
            sender.send(LoadMessage::Finish).await.expect("send");
        }
        drop(sender);
        writer.run(receiver, "job".into()).await
    }

    fn entries(target: &str, records: &[i64]) -> Vec<(String, i64)> {
        records.iter().map(|record| (target.to_owned(), *record)).collect()
    }

    #[tokio::test]
    async fn a_staged_sink_copies_every_row_into_its_staging_table_for_the_commit_to_move() {
        let harness = Harness::new();
        let writer = SinkWriter::staged(harness.copy("stage_1", true), "stage_1".into());
        let load = run(writer, vec![rows(&["a", "b", "a"])], true).await.expect("load").expect("finished");
        assert_eq!(harness.log(), entries("stage_1", &[1, 2, 3]), "staged rows may repeat keys");
        assert_eq!(load.copied_in, 0);
        let (stage, copied) = load.staged.expect("a staging table to move");
        assert_eq!((stage.as_str(), copied.rows), ("stage_1", 3));
    }

    #[tokio::test]
    async fn an_upsert_copied_straight_in_goes_on_in_its_staging_table_from_the_first_repeated_key() {
        let harness = Harness::new();
        let writer =
            SinkWriter::straight_in(harness.copy("users", false), "stage_2".into(), Some(harness.stage()));
        let batches = vec![rows(&["a", "b", "c"]), rows(&["d", "b", "e"])];
        let load = run(writer, batches, true).await.expect("load").expect("finished");
        let mut expected = entries("users", &[1, 2, 3, 1]);
        // From the repeated `b` on, every row is staged, new keys included: the move keeps
        // the last row per key in input order.
        expected.extend(entries("stage_2", &[2, 3]));
        assert_eq!(harness.log(), expected);
        assert_eq!(*harness.opened.lock().expect("opened"), ["stage_2"], "the staging table opens once");
        assert_eq!(load.copied_in, 4);
        let (stage, copied) = load.staged.expect("the staged rows to move");
        assert_eq!((stage.as_str(), copied.rows), ("stage_2", 2));
        assert_eq!(*harness.finished.lock().expect("finished"), ["users", "stage_2"], "both copies end");
    }

    #[tokio::test]
    async fn an_upsert_whose_keys_never_repeat_opens_no_staging_table() {
        let harness = Harness::new();
        let writer =
            SinkWriter::straight_in(harness.copy("users", false), "stage_3".into(), Some(harness.stage()));
        let load =
            run(writer, vec![rows(&["a", "b"]), rows(&["c"])], true).await.expect("load").expect("done");
        assert_eq!(load.copied_in, 3);
        assert!(load.staged.is_none());
        assert!(harness.opened.lock().expect("opened").is_empty());
    }

    #[tokio::test]
    async fn a_sink_copied_straight_in_without_a_fallback_fails_on_a_refused_row() {
        let harness = Harness::new();
        let writer: SinkWriter<_, ScriptedStage> =
            SinkWriter::straight_in(harness.copy("users", false), "stage_4".into(), None);
        let error = run(writer, vec![rows(&["a", "a"])], true).await.expect_err("refused");
        assert!(matches!(error, LoadError::SharedCopyStopped { ref table } if table == "users"), "{error}");
    }

    #[tokio::test]
    async fn an_abandoned_attempt_finishes_no_copy() {
        let harness = Harness::new();
        let writer =
            SinkWriter::straight_in(harness.copy("users", false), "stage_5".into(), Some(harness.stage()));
        let outcome = run(writer, vec![rows(&["a", "a"])], false).await.expect("no error");
        assert!(outcome.is_none(), "closed without Finish: abandoned");
        assert!(harness.finished.lock().expect("finished").is_empty(), "nothing is committed");
    }
}
