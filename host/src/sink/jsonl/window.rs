//! The `jsonl` sink under a connector: a window's rows as JSON lines, written as the batches
//! settle and stored as one object when the window closes.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::JsonlSinkSettings;
use crate::kafka::SourceRecord;
use crate::object_store::retry::put_with_retry;
use crate::object_store::{ObjectStore, join_key};
use crate::plugin::rows::RowRef;
use crate::sink::window_stem::window_stem;
use crate::sink::windowed::{
    RejectedRow, Rotation, SinkError, SinkWindow, StoredWindow, WindowName, WindowedSink,
};

/// A configured `jsonl` sink.
pub struct JsonlSink {
    from: String,
    rotation: Rotation,
    target: Arc<Target>,
}

/// Where a sink's objects go, and in what form.
struct Target {
    store: ObjectStore,
    prefix: String,
    gzip: bool,
}

impl JsonlSink {
    pub fn new(from: &str, settings: &JsonlSinkSettings, store: ObjectStore) -> Self {
        JsonlSink {
            from: from.to_owned(),
            rotation: settings.rotation(),
            target: Arc::new(Target {
                store,
                prefix: settings.location.prefix().to_owned(),
                gzip: settings.gzip,
            }),
        }
    }

    fn window(&self) -> JsonlWindow {
        JsonlWindow {
            from: self.from.clone(),
            target: self.target.clone(),
            pending: Vec::new(),
            encoded: Vec::new(),
            lines: String::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

impl WindowedSink for JsonlSink {
    fn from(&self) -> &str {
        &self.from
    }

    fn rotation(&self) -> Rotation {
        self.rotation
    }

    fn open(&self) -> Box<dyn SinkWindow> {
        Box::new(self.window())
    }
}

impl Target {
    /// `{prefix}/{stem}{suffix}.jsonl`, `.jsonl.gz` when gzipped.
    fn key(&self, name: &WindowName<'_>) -> String {
        let stem = window_stem(name.topic, name.partition, name.first_offset);
        let extension = if self.gzip { "jsonl.gz" } else { "jsonl" };
        join_key(&self.prefix, &format!("{stem}{}.{extension}", name.suffix))
    }
}

/// One window of a [`JsonlSink`].
struct JsonlWindow {
    from: String,
    target: Arc<Target>,
    /// Rows pushed since the last batch was encoded, by source offset.
    pending: Vec<(i64, RowRef)>,
    /// The last batch's rows as lines, until they settle.
    encoded: Vec<(i64, String)>,
    /// The settled rows: the object's text.
    lines: String,
    rows: usize,
    bytes: usize,
}

impl SinkWindow for JsonlWindow {
    fn push(&mut self, row: RowRef, source: &SourceRecord, _plugin_version: Arc<str>) -> bool {
        self.rows += 1;
        self.bytes += row.batch().bytes_per_row();
        self.pending.push((source.offset, row));
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
        self.encoded.extend(self.pending.drain(..).map(|(offset, row)| {
            let mut line = String::with_capacity(256);
            row.batch().write_json(row.row(), &mut line);
            line.push('\n');
            (offset, line)
        }));
        // Any row is a JSON object, so none is refused.
        Ok(Vec::new())
    }

    fn settle(&mut self, dead: &HashSet<i64>) -> Result<(), SinkError> {
        for (offset, line) in self.encoded.drain(..) {
            if dead.contains(&offset) {
                self.rows -= 1;
            } else {
                self.lines.push_str(&line);
            }
        }
        Ok(())
    }

    fn store<'a>(
        self: Box<Self>,
        name: WindowName<'a>,
        shutdown: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<StoredWindow, SinkError>> {
        Box::pin(async move {
            let JsonlWindow { from, target, lines, rows, .. } = *self;
            if rows == 0 {
                return Ok(StoredWindow::default());
            }
            let body = if target.gzip {
                tokio::task::spawn_blocking(move || gzipped(lines.as_bytes()))
                    .await
                    .map_err(|_| SinkError::Write { from: from.clone(), problem: "gzip stopped".into() })?
                    .map_err(|error| SinkError::Write { from: from.clone(), problem: error.to_string() })?
            } else {
                lines.into_bytes()
            };
            let bytes = body.len();
            if !put_with_retry(&target.store, &target.key(&name), body, shutdown).await {
                return Err(SinkError::Interrupted { from });
            }
            Ok(StoredWindow { rows, objects: 1, bytes })
        })
    }
}

fn gzipped(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreLocation;
    use crate::object_store::LocalDir;
    use crate::plugin::rows::{RowBatch, Value};
    use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};

    fn sink(dir: &std::path::Path, gzip: bool) -> JsonlSink {
        let settings = JsonlSinkSettings {
            location: StoreLocation::Local { dir: dir.to_owned() },
            gzip,
            rotate_records: 10,
            rotate_bytes: 1 << 20,
            rotate_ms: 1000,
        };
        JsonlSink::new("p.rows", &settings, ObjectStore::Local(LocalDir::new(dir)))
    }

    /// Rows holding `n` and, when odd, a name (a null is left out of the line).
    fn rows(values: &[i64]) -> Vec<RowRef> {
        let columns = vec![
            ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: false },
            ColumnSpec { name: "name".into(), column_type: ColumnType::Text, nullable: true },
        ];
        let schema = OutputSchema::new("rows".into(), columns).expect("schema");
        let mut batch = RowBatch::empty(Arc::new(schema));
        for (input, &value) in values.iter().enumerate() {
            let name = format!("row \"{value}\"");
            let name = if value % 2 == 1 { Value::Text(&name) } else { Value::Null };
            batch.push_row(input as u32, None, &[Value::Int64(value), name]).expect("row");
        }
        let batch = Arc::new(batch);
        (0..values.len()).map(|row| RowRef::new(batch.clone(), row).expect("row")).collect()
    }

    fn source(offset: i64) -> SourceRecord {
        SourceRecord {
            topic: Arc::from("in"),
            partition: 2,
            offset,
            key: None,
            value: Vec::new(),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    /// Rows 1 and 2 from offset 7, row 3 from offset 8, pushed, encoded and settled with the
    /// records at `dead` as dead letters; then stored as the window starting at offset 7.
    async fn stored(dir: &std::path::Path, gzip: bool, dead: &[i64]) -> StoredWindow {
        let sink = sink(dir, gzip);
        let mut window = sink.open();
        let rows = rows(&[1, 2, 3]);
        let version: Arc<str> = Arc::from("p@1");
        for (row, offset) in rows.into_iter().zip([7, 7, 8]) {
            assert!(window.push(row, &source(offset), version.clone()));
        }
        assert_eq!(window.rows(), 3);
        assert!(window.encode("in", 2).expect("encode").is_empty());
        window.settle(&dead.iter().copied().collect()).expect("settle");
        let (_, shutdown) = watch::channel(false);
        let name = WindowName { topic: "in", partition: 2, first_offset: 7, suffix: "" };
        window.store(name, &shutdown).await.expect("store")
    }

    const OBJECT: &str = "in+2+00000000000000000007";

    #[tokio::test]
    async fn a_window_is_one_object_of_json_lines_named_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        let stored = stored(dir.path(), false, &[]).await;
        assert_eq!((stored.rows, stored.objects), (3, 1));
        let text = std::fs::read_to_string(dir.path().join(format!("{OBJECT}.jsonl"))).expect("object");
        assert_eq!(
            text,
            "{\"n\":1,\"name\":\"row \\\"1\\\"\"}\n{\"n\":2}\n{\"n\":3,\"name\":\"row \\\"3\\\"\"}\n"
        );
        assert_eq!(stored.bytes, text.len());
    }

    #[tokio::test]
    async fn rows_of_dead_letters_are_left_out_and_a_window_left_empty_stores_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let stored_window = stored(dir.path(), false, &[7]).await;
        assert_eq!(stored_window.rows, 1);
        let text = std::fs::read_to_string(dir.path().join(format!("{OBJECT}.jsonl"))).expect("object");
        assert_eq!(text, "{\"n\":3,\"name\":\"row \\\"3\\\"\"}\n");

        let empty = tempfile::tempdir().expect("dir");
        assert_eq!(stored(empty.path(), false, &[7, 8]).await, StoredWindow::default());
        assert_eq!(std::fs::read_dir(empty.path()).expect("dir").count(), 0);
    }

    #[tokio::test]
    async fn gzipped_objects_hold_the_same_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let stored = stored(dir.path(), true, &[]).await;
        let body = std::fs::read(dir.path().join(format!("{OBJECT}.jsonl.gz"))).expect("object");
        assert_eq!(stored.bytes, body.len());
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body.as_slice()), &mut text)
            .expect("gunzip");
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn what_sweep_writes_carries_its_suffix() {
        let dir = tempfile::tempdir().expect("dir");
        let target = sink(dir.path(), true).target;
        let name = WindowName { topic: "in", partition: 0, first_offset: 3, suffix: "+swept-ab" };
        assert_eq!(target.key(&name), "in+0+00000000000000000003+swept-ab.jsonl.gz");
    }
}
