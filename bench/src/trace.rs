// SPDX-License-Identifier: GPL-2.0

//! The guest side of `bench/run --trace`: every single-threaded case that makes system calls
//! ([`ipc::cases`]: not the mapped reads, which make none) runs a few exchanges while QEMU
//! logs each translation block the vCPU executes, so that the host can count the kernel code
//! one exchange runs (repeatable to a block or two, unlike timings under TCG).
//!
//! Protocol with the host (bench/trace.py): print [`READY`], sleep [`ARM_DELAY`] while the
//! host turns the execution log on, then for case `i` make `MARKER_BASE + i` `getppid`
//! calls followed by [`EXCHANGES`] exchanges; a last marker run closes the last case. Then
//! print [`DONE`]. Nothing else runs in the guest meanwhile, and no case calls `getppid`.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::ipc;

/// Printed when the cases are set up and warm; the host then turns the log on.
pub const READY: &str = "bench: trace ready";
/// Printed after the last marker; the host then turns the log off.
pub const DONE: &str = "bench: trace done";
/// How long the guest waits for the host after [`READY`].
const ARM_DELAY: Duration = Duration::from_secs(2);
/// `getppid` calls before case 0 (runs of 1 or 2 can occur in other code paths; none of 3).
const MARKER_BASE: usize = 3;
/// Exchanges traced per case (the host keeps the cheapest, free of timer interrupts).
const EXCHANGES: u64 = 8;
/// Exchanges run per case before tracing, so that caches and lazy state are warm.
const WARMUP: u64 = 1000;

fn marker(calls: usize) {
    for _ in 0..calls {
        // SAFETY: getppid has no arguments and no side effects.
        unsafe { libc::getppid() };
    }
}

/// The load address of a module's `.text`, if the module is loaded.
fn module_text(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/module/{name}/sections/.text"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Runs the traced cases; returns the JSON the host needs to attribute the log.
pub fn run() -> Result<Value, String> {
    let cases = ipc::cases();
    let mut bodies = Vec::new();
    for (name, _, setup) in &cases {
        let mut body = setup().map_err(|e| format!("{name}: {e}"))?;
        body(WARMUP)?;
        bodies.push(body);
    }
    println!("{READY}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    std::thread::sleep(ARM_DELAY);
    for (i, body) in bodies.iter_mut().enumerate() {
        marker(MARKER_BASE + i);
        body(EXCHANGES)?;
    }
    marker(MARKER_BASE + bodies.len());
    std::thread::sleep(Duration::from_millis(500));
    println!("{DONE}");
    let modules: serde_json::Map<String, Value> = ["message_slot", ipc::REFERENCE_DRIVER]
        .iter()
        .filter_map(|m| module_text(m).map(|text| (m.to_string(), json!(text))))
        .collect();
    Ok(json!({
        "marker_base": MARKER_BASE,
        "exchanges": EXCHANGES,
        "cases": cases.iter().map(|(name, what, _)| json!({"name": name, "exchange": what}))
            .collect::<Vec<_>>(),
        "module_text": modules,
    }))
}
