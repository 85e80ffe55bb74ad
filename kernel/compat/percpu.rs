// SPDX-License-Identifier: GPL-2.0

//! Per-CPU `u64` counters: an update touches only the running CPU's copy (no shared cache
//! line, no atomic read-modify-write), a sum reads every CPU's.
//!
//! Stands in for C's `alloc_percpu()`, `this_cpu_add()` and `per_cpu_ptr()`, which the
//! `kernel` crate does not wrap in 6.12 (a `kernel::percpu` abstraction is not upstream yet).
//! The C side (macros and static inline functions) is in `helpers.c`.

use core::ptr::NonNull;
use kernel::{alloc::Flags, prelude::*};

extern "C" {
    // `compat/helpers.c`.
    fn message_slot_percpu_alloc(count: u32, gfp: kernel::bindings::gfp_t) -> *mut u64;
    fn message_slot_percpu_add(counters: *mut u64, index: u32, delta: u64);
    fn message_slot_percpu_add2(
        counters: *mut u64,
        first: u32,
        delta: u64,
        second: u32,
        delta2: u64,
    );
    fn message_slot_percpu_sum(counters: *mut u64, index: u32) -> u64;
    fn message_slot_percpu_free(counters: *mut u64);
}

/// `N` per-CPU `u64` counters, each the (wrapping) sum of its per-CPU copies.
///
/// # Invariants
///
/// `counters` is a per-CPU allocation of `N` zero-initialised `u64`s, owned by `self`.
pub(crate) struct PerCpuCounters<const N: usize> {
    counters: NonNull<u64>,
}

// SAFETY: Per-CPU memory may be updated and summed from any CPU; every update of a copy
// happens on its own CPU with preemption disabled (`this_cpu_add`), and sums tolerate
// concurrent updates (a sum is a snapshot, not a synchronised value).
unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
// SAFETY: As above.
unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

impl<const N: usize> PerCpuCounters<N> {
    /// `N` counters at zero, allocated with `flags`.
    pub(crate) fn new(flags: Flags) -> Result<Self> {
        let count = u32::try_from(N).map_err(|_| EINVAL)?;
        // SAFETY: Any size and flags may be asked for; the result is zeroed or null.
        let counters =
            unsafe { message_slot_percpu_alloc(count, crate::compat::alloc::raw_gfp(flags)) };
        // INVARIANT: A zeroed per-CPU allocation of `N` `u64`s, now owned by `self`.
        Ok(Self {
            counters: NonNull::new(counters).ok_or(ENOMEM)?,
        })
    }

    /// Adds `delta` (wrapping: add `x.wrapping_neg()` to subtract `x`) to counter `index`
    /// (ignored unless `index < N`). Never sleeps, takes no lock.
    #[inline]
    pub(crate) fn add(&self, index: usize, delta: u64) {
        if index < N {
            // SAFETY: `counters` is a live per-CPU array of `N` `u64`s (type invariant) and
            // `index < N`.
            unsafe { message_slot_percpu_add(self.counters.as_ptr(), index as u32, delta) };
        }
    }

    /// Adds `delta` to counter `first` and `delta2` to counter `second` (both `< N`, else
    /// nothing is added): [`Self::add`] twice in one call.
    #[inline]
    pub(crate) fn add2(&self, first: usize, delta: u64, second: usize, delta2: u64) {
        if first < N && second < N {
            // SAFETY: `counters` is a live per-CPU array of `N` `u64`s (type invariant) and
            // both indices are below `N`.
            unsafe {
                message_slot_percpu_add2(
                    self.counters.as_ptr(),
                    first as u32,
                    delta,
                    second as u32,
                    delta2,
                )
            };
        }
    }

    /// The sum of counter `index` over all CPUs (0 unless `index < N`).
    pub(crate) fn sum(&self, index: usize) -> u64 {
        if index >= N {
            return 0;
        }
        // SAFETY: As in `add`.
        unsafe { message_slot_percpu_sum(self.counters.as_ptr(), index as u32) }
    }
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: Owned by `self` (type invariant) and freed only here.
        unsafe { message_slot_percpu_free(self.counters.as_ptr()) };
    }
}
