// SPDX-License-Identifier: GPL-2.0

//! Capacity: 2^20 channels in one slot, through a single descriptor; ids spread over the
//! whole `u32` range; and two slots of 2^20 channels of 128 bytes each, after whose unload
//! `Slab` is back where it started (`--scale-channels=N`, [`crate::options::scale_channels`]:
//! channels per slot, 2^20 unless the suite is told fewer, as on the debug kernel). The last
//! unloads the module, so it runs among the last tests.

use std::collections::HashSet;
use std::time::Instant;

use libc::EAGAIN;

use crate::module_loading::{ensure_loaded, module_ready, unload_module};
use crate::options::scale_channels;
use crate::slab::{slab_growth, slab_kib, slab_kib_settled, slabinfo, SLAB_TOLERANCE_KIB};
use crate::util::{
    bind_write, channel_message, ensure_node, errno_name, expect_errno, expect_message,
    open_minor_bound, raw_fd, Context, TestResult, MAX_MESSAGE_LEN, MINORS_LARGE_SCALE,
    MINOR_MANY_CHANNELS, MINOR_SPARSE_IDS,
};

fn message(id: u32) -> [u8; 4] {
    id.to_le_bytes()
}

/// Binds and writes channels `1..=2^20` (`--scale-channels`) on a dedicated minor, then
/// spot-checks reads (every 4099th channel plus the first and last) and that the next id is
/// still empty.
pub fn million_channels() -> TestResult {
    let count = scale_channels()?;
    let slot = open_minor_bound(MINOR_MANY_CHANNELS, 1)?;
    for id in 1..=count {
        slot.set_channel(id).ctx(&format!("bind channel {id}"))?;
        let n = slot
            .send(&message(id))
            .ctx(&format!("write channel {id}"))?;
        ensure!(n == 4, "write on channel {id} returned {n}");
    }
    let checks = (1..=count).step_by(4099).chain([2, count - 1, count]);
    for id in checks {
        slot.set_channel(id).ctx(&format!("rebind channel {id}"))?;
        expect_message(&slot, &message(id), &format!("read channel {id}"))?;
    }
    let fresh = open_minor_bound(MINOR_MANY_CHANNELS, count)?;
    expect_message(&fresh, &message(count), "last channel on a new fd")?;
    fresh.set_channel(count + 1).ctx("bind the next channel")?;
    expect_errno(
        fresh.receive_message(),
        EAGAIN,
        &format!("channel {} (never written)", count + 1),
    )
}

/// Writes 2^16 channels with pseudo-random ids spread over the whole `u32` range (the module
/// hashes ids from 2^20 up into shared buckets, so thousands of them share one with another),
/// reads every one back, and checks that 4096 other pseudo-random ids are still empty.
pub fn sparse_channel_ids() -> TestResult {
    const COUNT: usize = 1 << 16;
    const UNWRITTEN: usize = 4096;
    // xorshift32: a fixed, well-spread sequence of non-zero ids.
    let mut state = 0x2545_F491_u32;
    let mut next_id = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut written = HashSet::with_capacity(COUNT);
    let mut ids = Vec::with_capacity(COUNT);
    while ids.len() < COUNT {
        let id = next_id();
        if written.insert(id) {
            ids.push(id);
        }
    }
    let slot = open_minor_bound(MINOR_SPARSE_IDS, ids[0])?;
    for &id in &ids {
        slot.set_channel(id).ctx(&format!("bind channel {id}"))?;
        let n = slot
            .send(&message(id))
            .ctx(&format!("write channel {id}"))?;
        ensure!(n == 4, "write on channel {id} returned {n}");
    }
    for &id in &ids {
        slot.set_channel(id).ctx(&format!("rebind channel {id}"))?;
        expect_message(&slot, &message(id), &format!("read channel {id}"))?;
    }
    let mut checked = 0;
    while checked < UNWRITTEN {
        let id = next_id();
        if written.contains(&id) {
            continue;
        }
        slot.set_channel(id).ctx(&format!("bind channel {id}"))?;
        expect_errno(
            slot.receive_message(),
            EAGAIN,
            &format!("channel {id} (never written)"),
        )?;
        checked += 1;
    }
    Ok(())
}

/// Fills `ids` of `minor` with 128-byte messages through one descriptor.
fn fill_range(minor: u32, ids: std::ops::RangeInclusive<u32>) -> TestResult {
    let slot = open_minor_bound(minor, *ids.start())?;
    let fd = raw_fd(&slot);
    for id in ids {
        bind_write(fd, id, &channel_message(minor, id, MAX_MESSAGE_LEN)).map_err(|(what, e)| {
            format!("minor {minor} channel {id}: {what}: {}", errno_name(e))
        })?;
    }
    Ok(())
}

/// 2^20 channels (`--scale-channels`) of 128-byte messages in each of two slots, filled
/// by two threads per slot; spot-checked reads; then the module is unloaded (it prints how
/// long that took: on the debug kernel long enough that freeing without yielding the CPU is
/// a soft lockup, which the log scan fails) and `Slab` must return near its value before the
/// fill. The module is loaded again at the end.
pub fn large_scale_two_slots() -> TestResult {
    module_ready()?;
    let per_slot = scale_channels()?;
    // The nodes exist before the filler threads (two per minor) start.
    for &minor in &MINORS_LARGE_SCALE {
        ensure_node(minor)?;
    }
    let (slab0, unrec0) = slab_kib()?;
    let info0 = slabinfo();
    let started = Instant::now();
    let half = per_slot / 2;
    let fillers: Vec<_> = MINORS_LARGE_SCALE
        .iter()
        .flat_map(|&m| [(m, 1..=half), (m, half + 1..=per_slot)])
        .map(|(m, ids)| std::thread::spawn(move || fill_range(m, ids)))
        .collect();
    let mut filled = Ok(());
    for f in fillers {
        let r = f
            .join()
            .unwrap_or_else(|_| Err("filler thread panicked".into()));
        filled = filled.and(r);
    }
    filled?;
    let fill_secs = started.elapsed().as_secs_f64();
    let (slab_full, _) = slab_kib()?;

    for &minor in &MINORS_LARGE_SCALE {
        let slot = open_minor_bound(minor, 1)?;
        let checks =
            (1..=per_slot)
                .step_by(4099)
                .chain([2, half, half + 1, per_slot - 1, per_slot]);
        for id in checks {
            slot.set_channel(id).ctx("bind")?;
            expect_message(
                &slot,
                &channel_message(minor, id, MAX_MESSAGE_LEN),
                &format!("minor {minor} channel {id}"),
            )?;
        }
        slot.set_channel(per_slot + 1).ctx("bind")?;
        expect_errno(
            slot.receive_message(),
            EAGAIN,
            &format!("minor {minor} channel {} (never written)", per_slot + 1),
        )?;
    }

    let unloading = Instant::now();
    unload_module()?;
    let unload_secs = unloading.elapsed().as_secs_f64();
    let after = slab_kib_settled(slab0)?;
    let info1 = slabinfo();
    let loaded = ensure_loaded();
    eprintln!(
        "  (large scale: 2 x {per_slot} channels filled in {fill_secs:.1}s; Slab {slab0} -> \
         {slab_full} (full) -> {} KiB after rmmod, SUnreclaim {unrec0} -> {} KiB; rmmod took \
         {unload_secs:.1}s)",
        after.0, after.1
    );
    ensure!(
        after.0 <= slab0 + SLAB_TOLERANCE_KIB,
        "Slab {slab0} KiB before filling 2 x {per_slot} channels, {} KiB after rmmod \
         (tolerance {SLAB_TOLERANCE_KIB} KiB); {}",
        after.0,
        slab_growth(&info0, &info1)
    );
    loaded
}
