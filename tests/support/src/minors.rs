// SPDX-License-Identifier: GPL-2.0

//! Which minors (slots) the guest tests, the fuzzer and the benchmarks use, in one place. The
//! module keeps a slot's channels until it is unloaded, so a slot that one of them fills, or
//! writes fixed channel ids into, is its own: no other sees its channels or finds it full.
//! The rig's minors [`MINORS_RIG`] are shared, with channel ids fresh to each run; so is
//! [`MINOR_LAST`]. A unit test checks that no minor is owned twice.

use message_slot::SLOT_MINORS;

/// The rig's nodes `/dev/slot0`..`/dev/slot3` (made by the guest's init): shared by the guest
/// tests and the fuzzer, each with channel ids fresh to its run.
pub const MINORS_RIG: [u32; 4] = [0, 1, 2, 3];
/// The last minor, shared like [`MINORS_RIG`] (the guest tests check that it works like
/// minor 0).
pub const MINOR_LAST: u32 = SLOT_MINORS - 1;

// The guest tests' own (`tests/guest`).

/// The fixed (not per-run fresh) channel ids 1, 2^20, 2^20+1 and `u32::MAX`.
pub const MINOR_FIXED_IDS: u32 = 100;
/// Filled with 2^20 channels.
pub const MINOR_MANY_CHANNELS: u32 = 200;
/// The two slots of 2 x 2^20 channels.
pub const MINORS_LARGE_SCALE: [u32; 2] = [201, 202];
/// Written under failslab.
pub const MINOR_FAILSLAB: u32 = 203;
/// The nodes with restricted modes.
pub const MINOR_PERMISSIONS: u32 = 204;
/// Filled until the memory cgroup's limit.
pub const MINOR_MEMCG_ENOMEM: u32 = 205;
/// Filled in every load/unload cycle.
pub const MINORS_LOAD_CYCLES: [u32; 3] = [206, 207, 208];
/// Filled with channels whose ids are spread over the whole `u32` range.
pub const MINOR_SPARSE_IDS: u32 = 209;
/// The many open files that are closed again.
pub const MINOR_FILE_CHURN: u32 = 210;
/// Channels overwritten at the memory cgroup's limit.
pub const MINOR_MEMCG_OVERWRITE: u32 = 211;
/// New channels that need the memory cgroup's reclaim.
pub const MINOR_MEMCG_RECLAIM: u32 = 212;
/// Filled to `max_channels` and written from a full memory cgroup.
pub const MINOR_MEMCG_FULL_SLOT: u32 = 213;
/// The page whose every byte is accounted for, its records made in a known order.
pub const MINOR_MAPPED_PAGE: u32 = 214;
/// Channels created through mappings from a memory cgroup, which their record pages are
/// charged to.
pub const MINOR_MAPPED_MEMCG: u32 = 215;

// The fuzzer's own (`tests/fuzz`), besides the rig's: there it uses the extreme ids too.

/// The fuzzer's own slots.
pub const MINORS_FUZZ: [u32; 2] = [128, 254];

// The benchmarks' (`bench`).

/// The `ipc` slot cases and the `breakdown` cases (on other channels).
pub const MINOR_BENCH_IPC: u32 = 244;
/// The `parallel` cases.
pub const MINOR_BENCH_PARALLEL: u32 = 243;
/// The `scale` cases, one fresh slot per size.
pub const MINORS_BENCH_SCALE: [u32; 4] = [240, 241, 242, 245];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owned_minor_is_owned_once_and_exists() {
        let owned: Vec<u32> = [
            MINOR_FIXED_IDS,
            MINOR_MANY_CHANNELS,
            MINOR_FAILSLAB,
            MINOR_PERMISSIONS,
            MINOR_MEMCG_ENOMEM,
            MINOR_SPARSE_IDS,
            MINOR_FILE_CHURN,
            MINOR_MEMCG_OVERWRITE,
            MINOR_MEMCG_RECLAIM,
            MINOR_MEMCG_FULL_SLOT,
            MINOR_MAPPED_PAGE,
            MINOR_MAPPED_MEMCG,
            MINOR_BENCH_IPC,
            MINOR_BENCH_PARALLEL,
        ]
        .into_iter()
        .chain(MINORS_LARGE_SCALE)
        .chain(MINORS_LOAD_CYCLES)
        .chain(MINORS_FUZZ)
        .chain(MINORS_BENCH_SCALE)
        .collect();
        for (i, minor) in owned.iter().enumerate() {
            assert!(*minor < SLOT_MINORS, "minor {minor} does not exist");
            assert!(
                !MINORS_RIG.contains(minor) && *minor != MINOR_LAST,
                "minor {minor} is shared"
            );
            assert!(!owned[..i].contains(minor), "minor {minor} is owned twice");
        }
    }
}
