//! Per-call resource limits for a plugin.

use std::time::Duration;

use serde::Deserialize;

/// How long one call may run and how much linear memory it may grow to.
///
/// A call past `timeout` is interrupted (wasmtime epoch deadline); a memory grow past
/// `memory_bytes` traps. Both end the call with a typed error and drop its `Store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    pub timeout: Duration,
    pub memory_bytes: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits { timeout: Duration::from_secs(5), memory_bytes: 256 << 20 }
    }
}

/// Limits as written in TOML (`timeout_ms`, `memory_mb`); unset keys fall back to a base.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginLimitsConfig {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
}

impl PluginLimitsConfig {
    /// These settings over `base`.
    pub fn over(&self, base: PluginLimits) -> PluginLimits {
        PluginLimits {
            timeout: self.timeout_ms.map(Duration::from_millis).unwrap_or(base.timeout),
            memory_bytes: self.memory_mb.map(|mb| mb.saturating_mul(1 << 20)).unwrap_or(base.memory_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_size_past_what_bytes_can_count_is_the_most_not_zero() {
        // 2^44 MiB shifted into bytes would wrap to 0: no memory at all.
        let huge = PluginLimitsConfig { timeout_ms: None, memory_mb: Some(1 << 44) };
        assert_eq!(huge.over(PluginLimits::default()).memory_bytes, u64::MAX);
        let small = PluginLimitsConfig { timeout_ms: None, memory_mb: Some(3) };
        assert_eq!(small.over(PluginLimits::default()).memory_bytes, 3 << 20);
    }
}
