// SPDX-License-Identifier: GPL-2.0

//! The driver's only raw kernel bindings, each behind a safe interface.
//!
//! 6.12's `kernel` crate lacks the file, misc-device, XArray and module-parameter abstractions
//! upstream added later; these modules provide just what the driver needs, in the same style.

mod buffers;
mod chrdev;
mod keyed_map;
mod param;
mod xarray;

pub(crate) use buffers::{
    BufferPool, MessageCell, SpareBuffer, SpareHolder, UserDestination, UserSource,
};
pub(crate) use chrdev::{CharDevice, OpenFileRef, Registration};
pub(crate) use keyed_map::{KeyedMap, MapCursor};
pub(crate) use param::max_channels;
use xarray::InsertOnlyMap;

use kernel::{alloc::flags, alloc::Flags, bindings};

/// Allocation flags for memory that a user's request makes the driver allocate: charged to
/// the caller's memory cgroup (`__GFP_ACCOUNT`) and without direct reclaim, so that at the
/// cgroup's `memory.max` the request fails with `ENOMEM` instead of invoking the OOM killer
/// (the memcg charge path only fails gracefully for non-blocking or `__GFP_RETRY_MAYFAIL`
/// requests, and 6.12's Rust `Flags` cannot express the latter). Also `__GFP_NOWARN`.
pub(crate) fn user_memory() -> Flags {
    (flags::GFP_KERNEL_ACCOUNT & !flags::GFP_KERNEL) | flags::GFP_NOWAIT
}

/// [`user_memory`] as raw `gfp_t`, for the C allocations made on the driver's behalf.
const USER_MEMORY_GFP: bindings::gfp_t =
    (bindings::GFP_KERNEL_ACCOUNT & !bindings::GFP_KERNEL) | bindings::GFP_NOWAIT;

/// Yields the CPU if a reschedule is due (C's `cond_resched()`).
fn cond_resched() {
    // Fully preemptible kernels without dynamic preemption have no `__cond_resched` (and need
    // none).
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: Only called from `drop`s that run in process context without locks held (the
    // map's entries and the pool's buffers are dropped at release or module unload).
    unsafe {
        bindings::__cond_resched();
    }
}
