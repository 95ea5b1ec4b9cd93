//! The per-call `Store` state: a WASI context that grants nothing, and a memory cap.

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::{EPOCH_TICK, PluginEngine};
use super::limits::PluginLimits;

/// Store data for one call. WASI is linked only because Rust's standard library imports it;
/// the context has no preopened directories, no environment, no arguments, closed stdio and
/// no network, so a plugin can compute and nothing more.
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
}

/// Refuses memory growth past the cap and remembers that it did.
struct MemoryCap {
    max_bytes: usize,
    hit: bool,
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

/// A fresh store for one call, with its memory cap and wall-time deadline set.
pub(super) fn new_store(engine: &PluginEngine, limits: PluginLimits) -> Store<SandboxState> {
    let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
    let max_bytes = limits.memory_bytes.min(engine.max_memory_bytes());
    let state = SandboxState {
        wasi,
        table: ResourceTable::new(),
        memory: MemoryCap { max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX), hit: false },
    };
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|state| &mut state.memory);
    store.set_epoch_deadline(deadline_ticks(limits));
    store.epoch_deadline_trap();
    store
}

/// The call's timeout in whole clock ticks, at least one.
fn deadline_ticks(limits: PluginLimits) -> u64 {
    let ticks = limits.timeout.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}
