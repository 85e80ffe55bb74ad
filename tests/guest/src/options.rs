// SPDX-License-Identifier: GPL-2.0

//! The suite's options besides the test filters (`--key=value` form, or the environment
//! variable in brackets), and what a missing kernel feature means for a test:
//!
//! - `--debug-kernel` (`MSG_SLOT_DEBUG_KERNEL=1`): the kernel is the debug variant, so
//!   failslab, debugfs and the memory cgroup must exist (their absence fails instead of
//!   skipping).
//! - `--cycles=N` (`MSG_SLOT_CYCLES`): load/unload cycles (100).
//! - `--cycle-channels=N` (`MSG_SLOT_CYCLE_CHANNELS`): channels filled per minor and cycle
//!   (1000).
//! - `--scale-channels=N` (`MSG_SLOT_SCALE_CHANNELS`): channels per slot in the scale tests
//!   (2^20, the default `max_channels`; at least 1000): one slot through one descriptor, two
//!   slots by four threads, and one slot through mappings ([`scale_channels`]).
//! - `--churn-files=N` (`MSG_SLOT_CHURN_FILES`): files opened at once (200000).

use crate::util::TestResult;

fn has_arg(flag: &str) -> bool {
    std::env::args().skip(1).any(|a| a == flag)
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The kernel is the debug variant: missing features are failures.
pub fn debug_kernel() -> bool {
    has_arg("--debug-kernel") || env_set("MSG_SLOT_DEBUG_KERNEL")
}

/// `--name=N` or `MSG_SLOT_<NAME>=N`, else `default`.
pub fn count_arg(name: &str, default: u64) -> Result<u64, String> {
    let prefix = format!("--{name}=");
    let env = format!("MSG_SLOT_{}", name.replace('-', "_").to_uppercase());
    let value = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
        .or_else(|| std::env::var(&env).ok());
    match value {
        Some(v) => v
            .parse()
            .map_err(|_| format!("bad value {v:?} for --{name} / {env}")),
        None => Ok(default),
    }
}

/// Channels per slot in the scale tests: `--scale-channels=N`, clamped to 1000..=2^20 (the
/// default `max_channels`, which is also the default).
pub fn scale_channels() -> Result<u32, String> {
    let max = crate::util::DEFAULT_MAX_CHANNELS as u64;
    Ok(count_arg("scale-channels", max)?.clamp(1000, max) as u32)
}

/// A missing kernel feature: a failure on the debug kernel, a skip otherwise.
pub fn missing(feature: &str) -> TestResult {
    if debug_kernel() {
        Err(format!("{feature} is missing on the debug kernel"))
    } else {
        crate::skip(format!("{feature} is not available in this kernel"))
    }
}
