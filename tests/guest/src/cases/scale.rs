// SPDX-License-Identifier: GPL-2.0

//! Capacity: 2^20 channels in one slot, through a single descriptor, and ids spread over the
//! whole `u32` range.

use libc::EAGAIN;

use std::collections::HashSet;

use crate::util::{
    expect_errno, expect_message, open_minor_bound, Context, TestResult, CHANNELS_PER_SLOT,
    MINOR_MANY_CHANNELS, MINOR_SPARSE_IDS,
};

fn message(id: u32) -> [u8; 4] {
    id.to_le_bytes()
}

/// Binds and writes channels `1..=2^20` on a dedicated minor, then spot-checks reads (every
/// 4099th channel plus the first and last) and that the next id is still empty.
pub fn million_channels() -> TestResult {
    let count = u32::try_from(CHANNELS_PER_SLOT).map_err(|e| e.to_string())?;
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
    fresh.set_channel(count + 1).ctx("bind 2^20 + 1")?;
    expect_errno(
        fresh.receive_message(),
        EAGAIN,
        "channel 2^20 + 1 (never written)",
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
