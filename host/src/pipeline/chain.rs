//! A pipeline's steps resolved to plugin handles, run over one batch of source records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{HostConfig, Pipeline, StepInput};
use crate::plugin::canary::{BatchOutcome, Canary};
use crate::plugin::rows::RowRef;
use crate::plugin::{
    LoadedPlugin, PluginCall, PluginError, PluginHandle, PluginRegistry, RecordIn, SampleSink, Transformed,
};

/// A row a step emitted to a named output, traced back to its source record.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// Index of the source record in the batch it came from.
    pub source_index: usize,
    /// The typed row, shared with the rest of the batch it came in.
    pub row: RowRef,
    /// `name@version` of the plugin that produced it.
    pub plugin_version: Arc<str>,
}

impl OutputRecord {
    pub fn key(&self) -> Option<&[u8]> {
        self.row.key()
    }
}

/// A source record that a step rejected, or that was in a batch a step failed as a whole.
#[derive(Debug, Clone)]
pub struct ChainFailure {
    pub source_index: usize,
    pub step: String,
    /// What went wrong, with the field in front when the plugin named one.
    pub reason: String,
    /// The field the plugin named, if it named one.
    pub field: Option<String>,
    /// Whether the sandbox stopped the call (timeout, memory, trap) rather than the plugin.
    pub trapped: bool,
    pub plugin_version: Arc<str>,
    /// The part of source record `source_index` that failed, as a source record of its own (for
    /// example one event of a webhook body): dead-letter it instead of the whole record, and keep
    /// the outputs made from the rest. `None` when the whole source record failed; then none of
    /// its outputs may be kept, or a re-run of the dead letter would emit them a second time.
    pub part: Option<Vec<u8>>,
}

/// Everything one batch produced, by `<plugin>.<output>`.
#[derive(Debug, Default)]
pub struct ChainOutput {
    pub outputs: BTreeMap<String, Vec<OutputRecord>>,
    pub failures: Vec<ChainFailure>,
}

impl ChainOutput {
    /// Makes each source record one thing: a record with a whole failure at any step keeps
    /// none of its rows (an earlier step's rows would otherwise load beside its dead letter,
    /// and again when the dead letter is re-run) and has one failure, its reasons joined in
    /// step order. Failures of parts are left as they are: the rest of their record loads.
    pub fn settle_failures(&mut self) {
        let mut whole: Vec<usize> =
            self.failures.iter().filter(|f| f.part.is_none()).map(|f| f.source_index).collect();
        if whole.is_empty() {
            return;
        }
        whole.sort_unstable();
        whole.dedup();
        let failed = |index: &usize| whole.binary_search(index).is_ok();
        for rows in self.outputs.values_mut() {
            rows.retain(|row| !failed(&row.source_index));
        }
        let mut settled: Vec<ChainFailure> = Vec::with_capacity(self.failures.len());
        for failure in std::mem::take(&mut self.failures) {
            if !failed(&failure.source_index) {
                settled.push(failure);
                continue;
            }
            match settled.iter_mut().find(|kept| kept.source_index == failure.source_index) {
                Some(kept) => {
                    kept.reason = format!("{}; {}: {}", kept.reason, failure.step, failure.reason);
                    kept.trapped |= failure.trapped;
                }
                None => settled.push(ChainFailure { part: None, ..failure }),
            }
        }
        self.failures = settled;
    }
}

struct ChainStep {
    plugin: String,
    handle: PluginHandle,
    call: Arc<PluginCall>,
    input: StepInput,
}

/// The steps of one pipeline, ready to run. Cloning is cheap (the steps are shared), so a
/// batch can run on a task of its own while the next one is read.
#[derive(Clone)]
pub struct Chain {
    steps: Arc<[ChainStep]>,
    /// Where a step's shadowing candidate keeps the records it differs on; without it the
    /// differences are only counted.
    samples: Option<Arc<dyn SampleSink>>,
    /// Requests run so far, shared by the clones: picks the requests a canary serves.
    requests: Arc<AtomicU64>,
}

impl Chain {
    /// Resolves the pipeline's steps; the pipeline must already be validated.
    ///
    /// # Errors
    /// [`PluginError::NotLoaded`] when a step's plugin is not in the registry.
    pub fn new(
        pipeline: &Pipeline,
        registry: &PluginRegistry,
        host: &HostConfig,
    ) -> Result<Self, PluginError> {
        let steps = pipeline
            .steps
            .iter()
            .map(|step| {
                let handle =
                    registry.get(&step.plugin).ok_or_else(|| PluginError::NotLoaded(step.plugin.clone()))?;
                let call = step.call(host.plugins.limits_for(&step.plugin));
                Ok(ChainStep {
                    plugin: step.plugin.clone(),
                    handle,
                    call: Arc::new(call),
                    input: step.input.clone(),
                })
            })
            .collect::<Result<Vec<_>, PluginError>>()?;
        Ok(Chain { steps: steps.into(), samples: None, requests: Arc::default() })
    }

    /// The same chain, keeping shadow samples in `samples`.
    #[must_use]
    pub fn with_samples(mut self, samples: Arc<dyn SampleSink>) -> Self {
        self.samples = Some(samples);
        self
    }

    /// Runs every step over `records`. A step's failure of one record, or of its whole batch,
    /// becomes a [`ChainFailure`] of the source records involved; the other records go on.
    /// Every record runs on the current versions: no canary serves without partitions.
    pub async fn run(&self, records: Arc<[RecordIn]>) -> ChainOutput {
        self.run_partitioned(records, None).await
    }

    /// As [`Chain::run`] for the records of one request: the requests are numbered, and request
    /// `n` goes to a serving canary as Kafka partition `n mod 100` would, so over every 100
    /// requests exactly `share_percent` of them do.
    pub async fn run_request(&self, records: Arc<[RecordIn]>) -> ChainOutput {
        let number = self.requests.fetch_add(1, Ordering::Relaxed) % 100;
        let slot = i32::try_from(number).unwrap_or_default();
        let partitions = vec![slot; records.len()];
        self.run_partitioned(records, Some(&partitions)).await
    }

    /// As [`Chain::run`], with `partitions[i]` the Kafka partition of record `i`: a step whose
    /// plugin has a serving canary runs the records of the canary's partitions on its candidate.
    pub async fn run_partitioned(&self, records: Arc<[RecordIn]>, partitions: Option<&[i32]>) -> ChainOutput {
        let mut output = ChainOutput::default();
        for step in self.steps.iter() {
            let (lineage, batch): (Vec<usize>, Arc<[RecordIn]>) = match &step.input {
                StepInput::Source => ((0..records.len()).collect(), records.clone()),
                StepInput::Output { plugin, output: name } => {
                    let emitted = output.outputs.get(&format!("{plugin}.{name}"));
                    let (lineage, batch): (Vec<usize>, Vec<RecordIn>) = emitted
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            // A chained step reads a row as a JSON object.
                            let record = RecordIn {
                                key: r.key().map(<[u8]>::to_vec),
                                value: r.row.json(),
                                headers: Vec::new(),
                            };
                            (r.source_index, record)
                        })
                        .unzip();
                    (lineage, batch.into())
                }
            };
            if batch.is_empty() {
                continue;
            }
            self.run_step(step, &lineage, batch, partitions, &mut output).await;
        }
        output.settle_failures();
        output
    }

    async fn run_step(
        &self,
        step: &ChainStep,
        lineage: &[usize],
        batch: Arc<[RecordIn]>,
        partitions: Option<&[i32]>,
        output: &mut ChainOutput,
    ) {
        if let (Some(canary), Some(partitions)) = (step.handle.serving_canary(), partitions) {
            self.run_canary_step(step, &canary, lineage, &batch, partitions, output).await;
            return;
        }
        let outcome = step.handle.transform_shadowed(step.call.clone(), batch, self.samples.clone()).await;
        let current = step.handle.current();
        absorb(step, lineage, outcome, &current, output);
    }

    /// Splits the step's batch by partition between the canary's candidate and the current
    /// version, runs both and judges them. A batch the sandbox stopped on the candidate runs
    /// again on the current version, so it loses nothing.
    async fn run_canary_step(
        &self,
        step: &ChainStep,
        canary: &Canary,
        lineage: &[usize],
        batch: &[RecordIn],
        partitions: &[i32],
        output: &mut ChainOutput,
    ) {
        let (mut on_candidate, mut on_current): (Vec<usize>, Vec<usize>) =
            (0..lineage.len()).partition(|&at| {
                lineage
                    .get(at)
                    .and_then(|&source| partitions.get(source))
                    .is_some_and(|&partition| canary.serves(partition))
            });
        let pick = |positions: &[usize]| -> (Vec<usize>, Arc<[RecordIn]>) {
            let (lineage, records): (Vec<usize>, Vec<RecordIn>) =
                positions.iter().filter_map(|&at| Some((*lineage.get(at)?, batch.get(at)?.clone()))).unzip();
            (lineage, records.into())
        };
        if !on_candidate.is_empty() {
            let (sub_lineage, sub_batch) = pick(&on_candidate);
            let outcome = step.handle.transform_on_candidate(canary, step.call.clone(), sub_batch).await;
            if outcome.as_ref().is_err_and(PluginError::is_trap) {
                let trapped = BatchOutcome { records: 0, failed: 0, trapped: true };
                step.handle.judge_canary(canary, true, trapped);
                on_current.append(&mut on_candidate);
                on_current.sort_unstable();
            } else {
                let records = sub_lineage.len() as u64;
                let failed = absorb(step, &sub_lineage, outcome, canary.candidate(), output);
                step.handle.judge_canary(canary, true, BatchOutcome { records, failed, trapped: false });
            }
        }
        if !on_current.is_empty() {
            let (sub_lineage, sub_batch) = pick(&on_current);
            let outcome =
                step.handle.transform_shadowed(step.call.clone(), sub_batch, self.samples.clone()).await;
            let trapped = outcome.as_ref().is_err_and(PluginError::is_trap);
            let current = step.handle.current();
            let records = sub_lineage.len() as u64;
            let failed = absorb(step, &sub_lineage, outcome, &current, output);
            step.handle.judge_canary(canary, false, BatchOutcome { records, failed, trapped });
        }
    }
}

/// Adds a step's answer for the records of `lineage` to `output`: its rows, and its failures
/// (every record, when the whole call failed, naming `called`); returns how many of the
/// step's input records failed.
fn absorb(
    step: &ChainStep,
    lineage: &[usize],
    outcome: Result<Transformed, PluginError>,
    called: &LoadedPlugin,
    output: &mut ChainOutput,
) -> u64 {
    match outcome {
        Ok(done) => {
            let version: Arc<str> = format!("{}@{}", done.plugin.name(), done.plugin.version()).into();
            for batch in done.result.outputs {
                let rows =
                    output.outputs.entry(format!("{}.{}", step.plugin, batch.schema().name)).or_default();
                rows.reserve(batch.len());
                for (row, &input) in batch.inputs().iter().enumerate() {
                    let Some(&source_index) = lineage.get(input as usize) else { continue };
                    let Some(row) = RowRef::new(batch.clone(), row) else { continue };
                    rows.push(OutputRecord { source_index, row, plugin_version: version.clone() });
                }
            }
            // A later step's part is a part of another step's output, not of the source record,
            // so re-running it from the source is impossible: the source record fails whole.
            let parts_are_of_the_source = step.input == StepInput::Source;
            let mut failed: Vec<u32> = Vec::with_capacity(done.result.failures.len());
            for failure in done.result.failures {
                let Some(&source_index) = lineage.get(failure.index as usize) else { continue };
                failed.push(failure.index);
                output.failures.push(ChainFailure {
                    source_index,
                    step: step.plugin.clone(),
                    reason: failure.describe(),
                    field: failure.field,
                    trapped: false,
                    plugin_version: version.clone(),
                    part: failure.part.filter(|_| parts_are_of_the_source),
                });
            }
            failed.sort_unstable();
            failed.dedup();
            failed.len() as u64
        }
        Err(error) => {
            let version: Arc<str> = format!("{}@{}", called.name(), called.version()).into();
            let mut sources: Vec<usize> = lineage.to_vec();
            sources.dedup();
            for source_index in sources {
                output.failures.push(ChainFailure {
                    source_index,
                    step: step.plugin.clone(),
                    reason: error.to_string(),
                    field: None,
                    trapped: error.is_trap(),
                    plugin_version: version.clone(),
                    part: None,
                });
            }
            lineage.len() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source_index: usize) -> OutputRecord {
        use crate::plugin::rows::{RowBatch, Value};
        use crate::plugin::schema::{ColumnSpec, ColumnType, OutputSchema};
        let column = ColumnSpec { name: "n".into(), column_type: ColumnType::Int64, nullable: false };
        let schema = OutputSchema::new("rows".into(), vec![column]).expect("schema");
        let mut batch = RowBatch::empty(Arc::new(schema));
        batch.push_row(0, None, &[Value::Int64(7)]).expect("row");
        let row = RowRef::new(Arc::new(batch), 0).expect("row 0");
        OutputRecord { source_index, row, plugin_version: Arc::from("p@1") }
    }

    fn failure(source_index: usize, step: &str, part: Option<&[u8]>) -> ChainFailure {
        ChainFailure {
            source_index,
            step: step.into(),
            reason: format!("bad at {step}"),
            field: None,
            trapped: false,
            plugin_version: Arc::from(format!("{step}@1")),
            part: part.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn a_record_failed_at_a_later_step_keeps_none_of_the_earlier_rows() {
        let mut output = ChainOutput::default();
        output.outputs.insert("a.users".into(), vec![row(0), row(1), row(2)]);
        output.outputs.insert("b.logs".into(), vec![row(0), row(2)]);
        output.failures = vec![failure(1, "b", None), failure(2, "a", Some(b"x"))];
        output.settle_failures();
        let sources = |name: &str| output.outputs[name].iter().map(|r| r.source_index).collect::<Vec<_>>();
        assert_eq!(sources("a.users"), [0, 2], "record 1 failed whole; record 2 only in part");
        assert_eq!(sources("b.logs"), [0, 2]);
        assert_eq!(output.failures.len(), 2);
    }

    #[test]
    fn several_failures_of_one_record_become_one() {
        let mut output = ChainOutput {
            failures: vec![failure(3, "a", Some(b"p")), failure(3, "b", None), failure(4, "b", None)],
            ..ChainOutput::default()
        };
        output.settle_failures();
        let settled: Vec<(usize, &str, bool)> =
            output.failures.iter().map(|f| (f.source_index, f.reason.as_str(), f.part.is_none())).collect();
        assert_eq!(settled, [(3, "bad at a; b: bad at b", true), (4, "bad at b", true)]);
    }
}
