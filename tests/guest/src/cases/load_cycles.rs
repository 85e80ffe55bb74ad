// SPDX-License-Identifier: GPL-2.0

//! Load/unload cycles: the module loaded, filled and unloaded many times gives back all it
//! took (`Slab` ends where it started), refuses to unload while a file is open and stops
//! opening once unloaded. Sizes: `--cycles=N` and `--cycle-channels=N` ([`crate::options`]).
//! Unloads the module, so it runs among the last tests.

use std::path::PathBuf;
use std::time::Instant;

use libc::EAGAIN;
use message_slot::Slot;

use crate::module_loading::{
    ensure_loaded, load_module, module_ready, try_unload_module, unload_module,
};
use crate::options::count_arg;
use crate::slab::{slab_growth, slab_kib, slab_kib_settled, slabinfo, SLAB_TOLERANCE_KIB};
use crate::util::{
    bind_write, channel_message, ensure_node, errno_name, expect_message, open_minor_bound, raw_fd,
    send_all, Context, TestResult, MAX_MESSAGE_LEN, MINORS_LOAD_CYCLES,
};

/// Loads, fills and unloads the module many times; `Slab` must come back to where it started
/// (no leak per cycle), `rmmod` must fail while a descriptor is open (the device keeps
/// working) and the device must stop opening once unloaded. Leaves the module loaded.
pub fn load_unload_cycles() -> TestResult {
    module_ready()?;
    let cycles = count_arg("cycles", 100)?;
    let per_minor = count_arg("cycle-channels", 1000)?.clamp(1, 1 << 20) as u32;
    let paths: Vec<PathBuf> = MINORS_LOAD_CYCLES
        .iter()
        .map(|&m| ensure_node(m))
        .collect::<Result<_, _>>()?;
    let result = cycles_inner(cycles, per_minor, &paths);
    // Whatever happened, leave the module loaded.
    let loaded = ensure_loaded();
    result.and(loaded)
}

fn cycles_inner(cycles: u64, per_minor: u32, paths: &[PathBuf]) -> TestResult {
    let fill = |cycle: u64| -> TestResult {
        for (path, &minor) in paths.iter().zip(&MINORS_LOAD_CYCLES) {
            let slot = Slot::open(path).ctx(&format!("cycle {cycle}: open {}", path.display()))?;
            let fd = raw_fd(&slot);
            for id in 1..=per_minor {
                let msg = channel_message(minor, id ^ cycle as u32, MAX_MESSAGE_LEN);
                bind_write(fd, id, &msg).map_err(|(what, e)| {
                    format!(
                        "cycle {cycle}: minor {minor} channel {id}: {what}: {}",
                        errno_name(e)
                    )
                })?;
            }
            for id in [1, per_minor / 2 + 1, per_minor] {
                slot.set_channel(id).ctx("bind")?;
                expect_message(
                    &slot,
                    &channel_message(minor, id ^ cycle as u32, MAX_MESSAGE_LEN),
                    &format!("cycle {cycle}: minor {minor} channel {id}"),
                )?;
            }
        }
        Ok(())
    };

    unload_module()?;
    // Two warm-up cycles so that caches the first load creates do not count as growth.
    for warm in 0..2 {
        load_module(&[])?;
        fill(1000 + warm)?;
        unload_module()?;
    }
    let (slab0, unrec0) = slab_kib()?;
    let info0 = slabinfo();
    let started = Instant::now();
    for cycle in 0..cycles {
        load_module(&[]).map_err(|e| format!("cycle {cycle}: {e}"))?;
        fill(cycle)?;
        if cycle % 10 == 0 {
            let held = open_minor_bound(MINORS_LOAD_CYCLES[0], 1)?;
            match try_unload_module() {
                Ok(()) => {
                    drop(held);
                    return Err(format!(
                        "cycle {cycle}: delete_module succeeded with /dev node of minor {} open",
                        MINORS_LOAD_CYCLES[0]
                    ));
                }
                Err(e) if e == libc::EBUSY || e == EAGAIN => {}
                Err(e) => {
                    return Err(format!(
                        "cycle {cycle}: delete_module with an open fd: {} (expected EBUSY or \
                         EWOULDBLOCK)",
                        errno_name(e)
                    ))
                }
            }
            send_all(
                &held,
                b"still here",
                "write on the held fd after a refused rmmod",
            )?;
            expect_message(
                &held,
                b"still here",
                "read on the held fd after a refused rmmod",
            )?;
        }
        unload_module().map_err(|e| format!("cycle {cycle}: {e}"))?;
        if let Ok(slot) = Slot::open(&paths[1]) {
            drop(slot);
            return Err(format!(
                "cycle {cycle}: a slot opened while the module was unloaded"
            ));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = slab_kib_settled(slab0)?;
    eprintln!(
        "  (load/unload: {cycles} cycles x 3 minors x {per_minor} channels in {secs:.1}s; \
         Slab {slab0} -> {} KiB, SUnreclaim {unrec0} -> {} KiB)",
        after.0, after.1
    );
    ensure!(
        after.0 <= slab0 + SLAB_TOLERANCE_KIB,
        "Slab grew from {slab0} to {} KiB (SUnreclaim {unrec0} -> {} KiB) over {cycles} \
         load/fill/unload cycles (tolerance {SLAB_TOLERANCE_KIB} KiB); {}",
        after.0,
        after.1,
        slab_growth(&info0, &slabinfo())
    );
    Ok(())
}
