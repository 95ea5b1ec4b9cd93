//! The per-call `Store` state: a WASI context that grants nothing, and a memory cap.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::engine::{EPOCH_TICK, PluginEngine};
use super::limits::PluginLimits;

/// Store data for one instance. WASI is linked only because Rust's standard library imports it;
/// the context has no preopened directories, no environment, no arguments, closed stdio, no
/// network and a wall clock stopped at the Unix epoch, so a plugin can compute and nothing
/// more. (The monotonic clock runs, so a plugin may time itself, but it tells no date.)
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl SandboxState {
    /// Whether the call tried to grow memory past its cap (tells a cap trap from others).
    pub fn memory_cap_hit(&self) -> bool {
        self.memory.hit
    }

    /// The size the instance's linear memory has grown to (the largest it asked for).
    pub fn memory_grown_bytes(&self) -> usize {
        self.memory.grown
    }

    /// The most linear memory the instance may have.
    pub fn memory_cap_bytes(&self) -> usize {
        self.memory.max_bytes
    }
}

/// The only time of day a plugin sees: the Unix epoch. Output that cannot depend on when a
/// batch ran is what lets a replay or a sweep write exactly the rows the first run would have.
struct EpochClock;

impl HostWallClock for EpochClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Refuses memory growth past the cap and remembers that it did, and how far memory grew.
struct MemoryCap {
    max_bytes: usize,
    hit: bool,
    grown: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // An error (rather than `Ok(false)`) traps instead of letting the guest see a
            // failed grow, which Rust's allocator would turn into an abort anyway.
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        self.grown = self.grown.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// A fresh store for one instance, with its memory cap and first call's deadline set.
pub(super) fn new_store(engine: &PluginEngine, limits: PluginLimits) -> Store<SandboxState> {
    let wasi = WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(EpochClock)
        .build();
    let max_bytes = limits.memory_bytes.min(engine.max_memory_bytes());
    let state = SandboxState {
        wasi,
        table: ResourceTable::new(),
        memory: MemoryCap {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            hit: false,
            grown: 0,
        },
    };
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|state| &mut state.memory);
    store.epoch_deadline_trap();
    arm_deadline(&mut store, limits);
    store
}

/// Starts the call's wall-time budget from now; done before every call on a reused store.
pub(super) fn arm_deadline(store: &mut Store<SandboxState>, limits: PluginLimits) {
    store.set_epoch_deadline(deadline_ticks(limits));
}

/// The call's timeout in whole clock ticks, at least one.
fn deadline_ticks(limits: PluginLimits) -> u64 {
    let ticks = limits.timeout.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}
