// SPDX-License-Identifier: GPL-2.0

//! Capacity: 2^20 channels in one slot, through a single descriptor.

use libc::EAGAIN;

use crate::util::{
    expect_errno, expect_message, open_minor_bound, Context, TestResult, CHANNELS_PER_SLOT,
    MINOR_MANY_CHANNELS,
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
