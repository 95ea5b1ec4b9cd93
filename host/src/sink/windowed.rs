//! What a connector and `sluice sweep` write through, whatever the sink's kind: windows of rows
//! per Kafka partition, stored before the partition's offsets are committed.
//!
//! A window's life, as the connector drives it (`pipeline::connector`):
//! 1. [`SinkWindow::push`] each row of the partition's records as they are routed;
//! 2. at the end of each batch, [`SinkWindow::encode`] the rows pushed since the last batch:
//!    the sink reports the rows it cannot take, whose records then become dead letters whole;
//! 3. [`SinkWindow::settle`] with every record that became a dead letter in any sink, so no
//!    sink keeps a row of a record another refused;
//! 4. when the window closes, [`SinkWindow::store`]: once it resolves everything the window
//!    holds is durable, and the offsets after it may be committed.
//!
//! Stores are named from the window's partition and first offset ([`WindowName`]), so a
//! replay after a crash writes the same objects again, or, for a sink that appends (a topic),
//! writes its records again: at least once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::config::HostConfig;
use crate::kafka::SourceRecord;
use crate::object_store::{LocationError, ObjectStores};
use crate::plugin::PluginRegistry;
use crate::plugin::rows::RowRef;

/// What building a windowed sink may need.
pub struct BuildContext<'a> {
    pub pipeline: &'a str,
    pub registry: &'a PluginRegistry,
    pub stores: &'a ObjectStores,
    pub host: &'a HostConfig,
}

/// Why a windowed sink cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum WindowedSinkError {
    #[error("sink `{from}` is `{kind}`, which a connector cannot write")]
    NotWindowed { from: String, kind: &'static str },
    #[error("sink `{from}` names an output no loaded plugin declares")]
    UnknownOutput { from: String },
    #[error("sink `{from}`: {problem}")]
    Setup { from: String, problem: String },
    #[error("sink `{from}`: {source}")]
    Store {
        from: String,
        #[source]
        source: LocationError,
    },
}

/// Why a window could not be written or stored.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{from}`: {problem}")]
    Write { from: String, problem: String },
    /// Shutdown came before the window was stored; the replay stores it.
    #[error("sink `{from}` stopped before its window was stored")]
    Interrupted { from: String },
}

/// When a sink's windows close: whichever limit comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub records: usize,
    pub bytes: usize,
    pub age: Duration,
}

/// The window a store belongs to, which names what it writes.
#[derive(Debug, Clone, Copy)]
pub struct WindowName<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub first_offset: i64,
    /// Tells what `sluice sweep` writes apart from the connector's (empty for the connector).
    pub suffix: &'a str,
}

/// What storing a window wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredWindow {
    pub rows: usize,
    /// Objects or records written.
    pub objects: usize,
    pub bytes: usize,
}

/// A row a sink refused, by the offset of its source record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub offset: i64,
    pub reason: String,
    pub plugin_version: Arc<str>,
}

/// One configured sink a connector writes.
pub trait WindowedSink: Send + Sync {
    /// The `<plugin>.<output>` it takes rows from.
    fn from(&self) -> &str;

    /// When its windows close.
    fn rotation(&self) -> Rotation;

    /// A new, empty window.
    fn open(&self) -> Box<dyn SinkWindow>;
}

/// One window of one sink; see the module documentation for the order of the calls.
pub trait SinkWindow: Send {
    /// Adds a row made from `source` (most sinks need only its offset; a sink that passes
    /// records on as they came takes its key, value and headers); false when the sink leaves
    /// it out (a key the window already holds, for a sink that dedupes).
    fn push(&mut self, row: RowRef, source: &SourceRecord, plugin_version: Arc<str>) -> bool;

    /// Rows taken so far.
    fn rows(&self) -> usize;

    /// About the bytes those rows take in memory.
    fn bytes(&self) -> usize;

    /// Rows left out as duplicates.
    fn duplicates(&self) -> usize;

    /// Encodes the rows pushed since the last call; returns the rows the sink cannot take.
    ///
    /// # Errors
    /// [`SinkError`] when the rows cannot be encoded at all (a bug, not bad data).
    fn encode(&mut self, topic: &str, partition: i32) -> Result<Vec<RejectedRow>, SinkError>;

    /// Keeps the encoded rows, except those of the records at the offsets in `dead`, which
    /// became dead letters.
    ///
    /// # Errors
    /// [`SinkError`] when the rows cannot be written (a bug, not bad data).
    fn settle(&mut self, dead: &HashSet<i64>) -> Result<(), SinkError>;

    /// Stores the window; once it resolves, everything the window holds is durable.
    fn store<'a>(
        self: Box<Self>,
        name: WindowName<'a>,
        shutdown: &'a watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<StoredWindow, SinkError>>;
}
