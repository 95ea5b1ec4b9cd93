//! The one wasmtime `Engine` the host uses, and the clock that enforces call deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::PluginError;
use super::sandbox::SandboxState;

/// How often the deadline clock ticks; call deadlines are rounded up to whole ticks.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Wasmtime settings that bear on guest speed. The host always runs with the default;
/// the others exist so `plugin-ratio --engines` can measure each against it side by side
/// (docs/performance.md says what each gave).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineTuning {
    /// Cranelift at `speed`, the pooling allocator, wasmtime's default memory reservation and
    /// guard (bounds checks on 32-bit memories elided), epoch deadlines.
    #[default]
    Default,
    /// Cranelift without optimisation.
    OptNone,
    /// Cranelift at `speed_and_size`.
    OptSpeedAndSize,
    /// No reservation or guard beyond the memory cap, so every load and store checks its bounds.
    BoundsChecked,
    /// Memories and instances allocated on demand instead of from the pool.
    OnDemand,
    /// No epoch checks in guest code (and so no call deadlines): what the deadlines cost.
    NoEpochChecks,
}

impl EngineTuning {
    /// Every setting, default first.
    pub const ALL: [EngineTuning; 6] = [
        EngineTuning::Default,
        EngineTuning::OptNone,
        EngineTuning::OptSpeedAndSize,
        EngineTuning::BoundsChecked,
        EngineTuning::OnDemand,
        EngineTuning::NoEpochChecks,
    ];

    /// The name `plugin-ratio --engines` takes and prints.
    pub fn name(self) -> &'static str {
        match self {
            EngineTuning::Default => "default",
            EngineTuning::OptNone => "opt-none",
            EngineTuning::OptSpeedAndSize => "opt-speed-and-size",
            EngineTuning::BoundsChecked => "bounds-checked",
            EngineTuning::OnDemand => "on-demand",
            EngineTuning::NoEpochChecks => "no-epoch-checks",
        }
    }

    /// The setting called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tuning| tuning.name() == name)
    }
}

/// The shared compiler, instance pool and linker for every plugin.
///
/// Cheap to clone. Dropping the last clone stops the deadline clock.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<SandboxState>,
    max_memory_bytes: u64,
    stop_clock: Arc<AtomicBool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.stop_clock.store(true, Ordering::Relaxed);
    }
}

impl PluginEngine {
    /// Builds the engine with a pooling allocator sized for `max_memory_bytes` per instance
    /// (the largest memory cap any plugin may be given) and starts the deadline clock.
    ///
    /// # Errors
    /// When wasmtime rejects the configuration or the WASI linker cannot be built.
    pub fn new(max_memory_bytes: u64) -> Result<Self, PluginError> {
        Self::with_tuning(max_memory_bytes, EngineTuning::Default)
    }

    /// [`PluginEngine::new`] with other wasmtime settings, for measuring them.
    ///
    /// # Errors
    /// As [`PluginEngine::new`].
    pub fn with_tuning(max_memory_bytes: u64, tuning: EngineTuning) -> Result<Self, PluginError> {
        let max_memory = usize::try_from(max_memory_bytes).unwrap_or(usize::MAX);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(2048)
            .total_memories(256)
            .total_tables(1024)
            .max_memory_size(max_memory);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(tuning != EngineTuning::NoEpochChecks)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match tuning {
            EngineTuning::Default | EngineTuning::NoEpochChecks => {}
            EngineTuning::OptNone => {
                config.cranelift_opt_level(OptLevel::None);
            }
            EngineTuning::OptSpeedAndSize => {
                config.cranelift_opt_level(OptLevel::SpeedAndSize);
            }
            EngineTuning::BoundsChecked => {
                config
                    .memory_reservation(max_memory_bytes)
                    .memory_guard_size(0)
                    .memory_reservation_for_growth(0);
            }
            EngineTuning::OnDemand => {
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            }
        }
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        let stop_clock = Arc::new(AtomicBool::new(false));
        spawn_deadline_clock(engine.clone(), stop_clock.clone())?;

        Ok(PluginEngine { inner: Arc::new(EngineInner { engine, linker, max_memory_bytes, stop_clock }) })
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(super) fn linker(&self) -> &Linker<SandboxState> {
        &self.inner.linker
    }

    /// The largest memory cap a plugin may be given; larger requests are clamped to it.
    pub fn max_memory_bytes(&self) -> u64 {
        self.inner.max_memory_bytes
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so running calls meet their deadlines.
fn spawn_deadline_clock(engine: Engine, stop: Arc<AtomicBool>) -> Result<(), PluginError> {
    std::thread::Builder::new()
        .name("sluice-plugin-clock".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("cannot start the deadline clock: {e}")))
}
