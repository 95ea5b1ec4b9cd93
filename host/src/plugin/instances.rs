//! Instances kept warm between calls, so a batch skips instantiation, `init` and the page
//! faults of a fresh linear memory.
//!
//! An instance is reused only for the same [`PluginCall`] (the `init` config and limits it was
//! set up with), only after a call that ended without a trap, and only while its memory stays
//! under half its cap; it is retired after [`MAX_CALLS_PER_INSTANCE`] calls. A plugin's
//! statics may therefore carry from one batch to the next of the same pipeline step, which the
//! WIT contract states; a trap or a limit always drops the instance with its `Store`.

use std::sync::{Mutex, PoisonError};

use wasmtime::Store;

use super::loaded::{PluginCall, PluginInstance};
use super::sandbox::SandboxState;

/// Calls one instance serves before it is dropped, so a slow leak in a plugin (or heap
/// fragmentation) cannot build up without bound.
pub(super) const MAX_CALLS_PER_INSTANCE: u32 = 1000;

/// An instantiated plugin whose `init` has run with `call`'s config, and its store.
pub(super) struct WarmInstance {
    pub call: PluginCall,
    pub store: Store<SandboxState>,
    pub plugin: PluginInstance,
    pub calls: u32,
}

impl WarmInstance {
    /// Whether the instance may serve another call: under the call limit, and its linear
    /// memory no more than half its cap (a big one would sit resident while idle).
    fn worth_keeping(&self) -> bool {
        let memory = self.store.data().memory_grown_bytes();
        let cap = self.store.data().memory_cap_bytes();
        self.calls < MAX_CALLS_PER_INSTANCE && memory <= cap / 2
    }
}

/// The idle instances of one plugin version. Dropped with the version, so after a hot swap
/// the old version's instances go once its last call ends.
pub(super) struct WarmInstances {
    idle: Mutex<Vec<WarmInstance>>,
    max_idle: usize,
}

impl WarmInstances {
    /// Keeps at most `max_idle` instances (one per thread that calls at once is enough).
    pub fn new(max_idle: usize) -> Self {
        WarmInstances { idle: Mutex::new(Vec::new()), max_idle: max_idle.max(1) }
    }

    /// An idle instance set up for `call`, if one is waiting.
    pub fn take(&self, call: &PluginCall) -> Option<WarmInstance> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let position = idle.iter().rposition(|warm| &warm.call == call)?;
        Some(idle.remove(position))
    }

    /// The linear memory of the idle instance that grew furthest, in bytes.
    pub fn largest_memory_bytes(&self) -> Option<usize> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.iter().map(|warm| warm.store.data().memory_grown_bytes()).max()
    }

    /// Returns an instance after a call that ended without a trap; it is dropped instead when
    /// it is not worth keeping. When `max_idle` are idle already, the one idle longest goes,
    /// so instances set up for a call nobody makes any more (a pipeline edited and reloaded)
    /// cannot hold the places.
    pub fn give_back(&self, warm: WarmInstance) {
        if !warm.worth_keeping() {
            return;
        }
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let evicted = (idle.len() >= self.max_idle).then(|| idle.remove(0));
            idle.push(warm);
            evicted
        };
        // Dropped here, outside the lock: freeing an instance's memory takes a while.
        drop(evicted);
    }
}
