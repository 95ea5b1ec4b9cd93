//! A compiled, checked plugin ready to instantiate, and the call path into it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use wasmtime::Store;
use wasmtime::component::{Component, types::ComponentItem};

use super::bindings::{v0_2, v0_3};
use super::cache::{CompileCache, content_hash};
use super::contract::{
    AnswerError, BatchResult, ContractVersion, PluginInfo, answer_from_v0_2, answer_from_v0_3,
    info_from_v0_2, info_from_v0_3, record_to_v0_2,
};
use super::engine::PluginEngine;
use super::instances::{WarmInstance, WarmInstances};
use super::sandbox::{SandboxState, arm_deadline, new_store};
use super::{PluginError, PluginLimits, RecordIn, WIT_PACKAGE};

/// A component ready to instantiate, with the bindings of the contract version it was built for.
enum ReadyComponent {
    V0_2(v0_2::PluginPre<SandboxState>),
    V0_3(v0_3::PluginPre<SandboxState>),
}

/// An instance of a component, with the bindings of its contract version.
pub(super) enum PluginInstance {
    V0_2(v0_2::Plugin),
    V0_3(v0_3::Plugin),
}

/// What a `transform` call answered, before it is read into the host's types.
enum RawAnswer {
    V0_2(Result<v0_2::BatchResult, String>),
    V0_3(Result<v0_3::BatchResult, String>),
}

impl ReadyComponent {
    fn instantiate(&self, store: &mut Store<SandboxState>) -> wasmtime::Result<PluginInstance> {
        Ok(match self {
            ReadyComponent::V0_2(pre) => PluginInstance::V0_2(pre.instantiate(store)?),
            ReadyComponent::V0_3(pre) => PluginInstance::V0_3(pre.instantiate(store)?),
        })
    }
}

impl PluginInstance {
    fn info(&self, store: &mut Store<SandboxState>) -> wasmtime::Result<Result<PluginInfo, String>> {
        let describe =
            |(output, error): (String, super::schema::SchemaError)| format!("output `{output}`: {error}");
        Ok(match self {
            PluginInstance::V0_2(plugin) => {
                info_from_v0_2(plugin.sluice_transform_transformer().call_info(store)?).map_err(describe)
            }
            PluginInstance::V0_3(plugin) => {
                info_from_v0_3(plugin.sluice_transform_transformer().call_info(store)?).map_err(describe)
            }
        })
    }

    fn init(
        &self,
        store: &mut Store<SandboxState>,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            PluginInstance::V0_2(plugin) => plugin.sluice_transform_transformer().call_init(store, config),
            PluginInstance::V0_3(plugin) => plugin.sluice_transform_transformer().call_init(store, config),
        }
    }

    fn transform(&self, store: &mut Store<SandboxState>, batch: &[RecordIn]) -> wasmtime::Result<RawAnswer> {
        Ok(match self {
            PluginInstance::V0_2(plugin) => {
                let batch: Vec<v0_2::RecordIn> = batch.iter().map(record_to_v0_2).collect();
                RawAnswer::V0_2(plugin.sluice_transform_transformer().call_transform(store, &batch)?)
            }
            PluginInstance::V0_3(plugin) => {
                RawAnswer::V0_3(plugin.sluice_transform_transformer().call_transform(store, batch)?)
            }
        })
    }
}

/// The settings a pipeline step calls a plugin with: its `init` config and its limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginCall {
    pub config: Vec<(String, String)>,
    pub limits: PluginLimits,
}

/// One version of a plugin: compiled, checked against the contract, pre-instantiated.
pub struct LoadedPlugin {
    info: PluginInfo,
    output_names: BTreeSet<String>,
    content_hash: String,
    origin: String,
    loaded_at: SystemTime,
    engine: PluginEngine,
    ready: ReadyComponent,
    warm: WarmInstances,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("content_hash", &self.content_hash)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// Loads a component file; see [`LoadedPlugin::from_bytes`].
    ///
    /// # Errors
    /// When the file cannot be read, or as for [`LoadedPlugin::from_bytes`].
    pub fn from_file(engine: &PluginEngine, cache: &CompileCache, path: &Path) -> Result<Self, PluginError> {
        let bytes =
            std::fs::read(path).map_err(|source| PluginError::Read { path: path.to_path_buf(), source })?;
        Self::from_bytes(engine, cache, &path.display().to_string(), &bytes)
    }

    /// Compiles (or loads from `cache`) a component, checks that it exports this host's
    /// contract version and imports nothing the sandbox does not grant, and asks its `info`.
    ///
    /// # Errors
    /// A [`PluginError`] naming `origin` and what is wrong with the component.
    pub fn from_bytes(
        engine: &PluginEngine,
        cache: &CompileCache,
        origin: &str,
        bytes: &[u8],
    ) -> Result<Self, PluginError> {
        let hash = content_hash(bytes);
        let component = cache.component(engine, origin, bytes, &hash)?;
        let contract = check_contract_version(engine, &component, origin)?;
        let link_error =
            |e: wasmtime::Error| PluginError::Link { origin: origin.to_string(), message: format!("{e:#}") };
        let instance_pre = engine.linker().instantiate_pre(&component).map_err(link_error)?;
        let ready = match contract {
            ContractVersion::V0_2 => {
                ReadyComponent::V0_2(v0_2::PluginPre::new(instance_pre).map_err(link_error)?)
            }
            ContractVersion::V0_3 => {
                ReadyComponent::V0_3(v0_3::PluginPre::new(instance_pre).map_err(link_error)?)
            }
        };

        let info = {
            let mut store = new_store(engine, PluginLimits::default());
            let plugin = ready.instantiate(&mut store).map_err(link_error)?;
            plugin
                .info(&mut store)
                .map_err(|e| PluginError::Trap { plugin: origin.to_string(), message: format!("{e:#}") })?
                .map_err(|message| PluginError::BadInfo { origin: origin.to_string(), message })?
        };
        let output_names = info.outputs.iter().map(|o| o.name.clone()).collect();
        Ok(LoadedPlugin {
            info,
            output_names,
            content_hash: hash,
            origin: origin.to_string(),
            loaded_at: SystemTime::now(),
            engine: engine.clone(),
            ready,
            warm: WarmInstances::new(idle_instances_per_plugin()),
        })
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The contract version the component was built for.
    pub fn contract(&self) -> ContractVersion {
        self.info.contract
    }

    /// Hex SHA-256 of the component file: tells two builds with the same version apart.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// Where the component came from (a path, or an upload).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Whether the plugin declares an output named `name`.
    pub fn has_output(&self, name: &str) -> bool {
        self.output_names.contains(name)
    }

    /// Instantiates the plugin and runs its `init` with `call.config`, to check a pipeline's
    /// configuration at load time rather than on the first batch. The instance is dropped:
    /// checks run with default limits, so batches could not reuse it.
    ///
    /// # Errors
    /// [`PluginError::Init`] when the plugin rejects the configuration, or a trap.
    pub fn check_config(&self, call: &PluginCall) -> Result<(), PluginError> {
        self.instantiate(call).map(drop)
    }

    /// Runs one batch: `transform` on an idle instance already set up for `call`, or on a
    /// fresh one (instantiate, `init`). A batch that hits the memory cap on a reused instance
    /// is run once more on a fresh one, so what an earlier batch left in memory cannot make it
    /// fail.
    ///
    /// Blocking and CPU-bound; async callers go through [`super::PluginHandle::transform`].
    ///
    /// # Errors
    /// A timeout, memory-limit or trap error (the instance and its store are dropped),
    /// [`PluginError::Init`], [`PluginError::BatchRejected`] when the plugin fails the whole
    /// batch, or [`PluginError::UndeclaredOutput`] / a bad index when its answer breaks the
    /// contract.
    pub fn transform(&self, call: &PluginCall, batch: &[RecordIn]) -> Result<BatchResult, PluginError> {
        match self.warm.take(call) {
            Some(warm) => match self.transform_on(warm, call, batch) {
                Err(PluginError::MemoryLimit { .. }) => self.transform_in_fresh_instance(call, batch),
                other => other,
            },
            None => self.transform_in_fresh_instance(call, batch),
        }
    }

    /// How far the linear memory of this plugin's idle instances has grown (the largest of
    /// them), in bytes; `None` when none is idle. Tells what its calls so far needed of the
    /// memory limit, which `plugin-languages` reports per language.
    pub fn idle_memory_bytes(&self) -> Option<usize> {
        self.warm.largest_memory_bytes()
    }

    /// Runs one batch on a new instance, as [`LoadedPlugin::transform`] does when none is idle
    /// (the instance is kept afterwards). `plugin-ratio` uses it to show what reuse saves.
    ///
    /// # Errors
    /// As for [`LoadedPlugin::transform`].
    pub fn transform_in_fresh_instance(
        &self,
        call: &PluginCall,
        batch: &[RecordIn],
    ) -> Result<BatchResult, PluginError> {
        self.transform_on(self.instantiate(call)?, call, batch)
    }

    /// A fresh instance with `init` run on `call.config`.
    fn instantiate(&self, call: &PluginCall) -> Result<WarmInstance, PluginError> {
        let mut store = new_store(&self.engine, call.limits);
        let outcome = (|| {
            let plugin = self.ready.instantiate(&mut store)?;
            let init = plugin.init(&mut store, &call.config)?;
            Ok(init.map(|()| plugin))
        })();
        match outcome {
            Ok(Ok(plugin)) => Ok(WarmInstance { call: call.clone(), store, plugin, calls: 0 }),
            Ok(Err(message)) => Err(PluginError::Init { plugin: self.info.name.clone(), message }),
            Err(error) => Err(self.classify_trap(&store, call.limits, error)),
        }
    }

    /// Calls `transform` on `warm`, keeps the instance for later unless the call trapped, and
    /// checks the answer against the contract.
    fn transform_on(
        &self,
        mut warm: WarmInstance,
        call: &PluginCall,
        batch: &[RecordIn],
    ) -> Result<BatchResult, PluginError> {
        arm_deadline(&mut warm.store, call.limits);
        warm.calls += 1;
        let outcome = warm.plugin.transform(&mut warm.store, batch);
        match outcome {
            Ok(answer) => {
                self.warm.give_back(warm);
                let rejected =
                    |message| PluginError::BatchRejected { plugin: self.info.name.clone(), message };
                let read = match answer {
                    RawAnswer::V0_2(answer) => answer_from_v0_2(&self.info, answer.map_err(rejected)?),
                    RawAnswer::V0_3(answer) => answer_from_v0_3(&self.info, answer.map_err(rejected)?),
                };
                let result = read.map_err(|error| match error {
                    AnswerError::UndeclaredOutput(output) => {
                        PluginError::UndeclaredOutput { plugin: self.info.name.clone(), output }
                    }
                    AnswerError::Rows(error) => rejected(format!("its answer breaks the contract: {error}")),
                })?;
                self.check_answer(&result, batch.len())?;
                Ok(result)
            }
            Err(error) => Err(self.classify_trap(&warm.store, call.limits, error)),
        }
    }

    /// Turns a wasmtime error into the limit it hit, or a plain trap.
    fn classify_trap(
        &self,
        store: &Store<SandboxState>,
        limits: PluginLimits,
        error: wasmtime::Error,
    ) -> PluginError {
        let plugin = self.info.name.clone();
        if store.data().memory_cap_hit() {
            PluginError::MemoryLimit { plugin, limit_mb: limits.memory_bytes >> 20 }
        } else if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            PluginError::Timeout { plugin, limit: limits.timeout }
        } else {
            PluginError::Trap { plugin, message: format!("{error:#}") }
        }
    }

    /// Rejects answers that refer to input indexes outside the batch.
    fn check_answer(&self, result: &BatchResult, batch_len: usize) -> Result<(), PluginError> {
        let plugin = || self.info.name.clone();
        let out_of_range = |index: u32| usize::try_from(index).map_or(true, |i| i >= batch_len);
        let bad_index = result
            .outputs
            .iter()
            .flat_map(|rows| rows.inputs().iter().copied())
            .chain(result.failures.iter().map(|f| f.index))
            .find(|&index| out_of_range(index));
        if let Some(index) = bad_index {
            return Err(PluginError::BatchRejected {
                plugin: plugin(),
                message: format!("answer refers to input {index}, but the batch has {batch_len} records"),
            });
        }
        Ok(())
    }
}

/// Finds the `transformer` export and the contract version it was built for, if this host runs it.
fn check_contract_version(
    engine: &PluginEngine,
    component: &Component,
    origin: &str,
) -> Result<ContractVersion, PluginError> {
    let prefix = format!("{WIT_PACKAGE}/transformer@");
    let component_type = component.component_type();
    let found = component_type
        .exports(engine.engine())
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string));
    match found {
        None => Err(PluginError::NotATransform { origin: origin.to_string(), package: WIT_PACKAGE }),
        Some(version) => ContractVersion::parse(&version).ok_or_else(|| PluginError::WitVersion {
            origin: origin.to_string(),
            package: WIT_PACKAGE,
            found: version,
            supported: ContractVersion::supported_list(),
        }),
    }
}

/// Idle instances kept per plugin version: one per core, as at most that many calls run at once.
fn idle_instances_per_plugin() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
