// SPDX-License-Identifier: GPL-2.0

//! Per-CPU `u64` counters: an update touches only the running CPU's copy (no shared cache
//! line, no atomic read-modify-write), a sum reads every CPU's.
//!
//! Stands in for C's `alloc_percpu()`, `this_cpu_add()` and `per_cpu_ptr()`, which the
//! `kernel` crate does not wrap in 6.12 (a `kernel::percpu` abstraction is not upstream yet).
//! The C side (macros and static inline functions) is in `helpers.c`, but for
//! `this_cpu_add()` on x86-64 SMP kernels: that is the single instruction `add %reg,
//! %gs:(ptr)` (`arch/x86/include/asm/percpu.h`), written here as inline assembly, so an
//! update costs that instruction instead of a call into C (every read and write counts).

use core::ptr::NonNull;
use kernel::{alloc::Flags, prelude::*};

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_percpu_alloc(count: u32, gfp: kernel::bindings::gfp_t) -> *mut u64;
    #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
    fn message_slot_percpu_add(counters: *mut u64, index: u32, delta: u64);
    #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
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
        // SAFETY: Any size and flags may be asked for; the result is zeroed or null.
        let counters = unsafe {
            message_slot_percpu_alloc(
                Index::<0, N>::COUNT,
                crate::abstractions::alloc::raw_gfp(flags),
            )
        };
        // INVARIANT: A zeroed per-CPU allocation of `N` `u64`s, now owned by `self`.
        Ok(Self {
            counters: NonNull::new(counters).ok_or(ENOMEM)?,
        })
    }

    /// Adds `delta` (wrapping: add `x.wrapping_neg()` to subtract `x`) to counter `I` (a
    /// compile-time error unless `I < N`). Never sleeps, takes no lock.
    #[inline]
    pub(crate) fn add<const I: usize>(&self, delta: u64) {
        let () = Index::<I, N>::VALID;
        #[cfg(all(CONFIG_X86_64, CONFIG_SMP))]
        // SAFETY: `counters` is a live per-CPU array of `N` `u64`s (type invariant) and `I < N`.
        unsafe {
            this_cpu_add(self.counters.as_ptr().wrapping_add(I), delta)
        };
        #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
        // SAFETY: `counters` is a live per-CPU array of `N` `u64`s (type invariant) and `I < N`.
        unsafe {
            message_slot_percpu_add(self.counters.as_ptr(), I as u32, delta)
        };
    }

    /// Adds `delta` to counter `I` and `delta2` to counter `J` (both `< N`, checked at compile
    /// time): [`Self::add`] twice (in one call into C where that is what it costs).
    #[inline]
    pub(crate) fn add_both<const I: usize, const J: usize>(&self, delta: u64, delta2: u64) {
        let () = Index::<I, N>::VALID;
        let () = Index::<J, N>::VALID;
        #[cfg(all(CONFIG_X86_64, CONFIG_SMP))]
        {
            self.add::<I>(delta);
            self.add::<J>(delta2);
        }
        #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
        // SAFETY: `counters` is a live per-CPU array of `N` `u64`s (type invariant) and both
        // indices are below `N`.
        unsafe {
            message_slot_percpu_add2(self.counters.as_ptr(), I as u32, delta, J as u32, delta2)
        };
    }

    /// The sum of counter `I` (`< N`, checked at compile time) over all CPUs.
    pub(crate) fn sum<const I: usize>(&self) -> u64 {
        let () = Index::<I, N>::VALID;
        // SAFETY: As in `add`.
        unsafe { message_slot_percpu_sum(self.counters.as_ptr(), I as u32) }
    }
}

/// `this_cpu_add(*counter, delta)` on x86-64 SMP kernels: the running CPU's copy of the
/// per-CPU `u64` `counter` is at `counter` in the `%gs` segment, and one `add` instruction
/// updates it, which neither preemption nor an interrupt can split (what
/// `percpu_add_op()` emits for an 8-byte `this_cpu_add()`).
///
/// # Safety
///
/// `counter` is a per-CPU pointer (from the per-CPU allocator) to a live `u64`.
#[cfg(all(CONFIG_X86_64, CONFIG_SMP))]
#[inline(always)]
unsafe fn this_cpu_add(counter: *mut u64, delta: u64) {
    // SAFETY: `%gs:counter` is this CPU's copy of a live per-CPU `u64` (the caller's
    // guarantee), which only this CPU's `this_cpu_*` operations write: the `add` is a
    // read-modify-write of memory nothing else writes meanwhile. It touches no stack and may
    // change the flags (the default: flags are not preserved).
    unsafe {
        core::arch::asm!(
            "add qword ptr gs:[{counter}], {delta}",
            counter = in(reg) counter,
            delta = in(reg) delta,
            options(nostack),
        )
    };
}

/// Counter index `I` of `N` counters: naming [`Index::VALID`] fails to compile unless `I < N`.
struct Index<const I: usize, const N: usize>;

impl<const I: usize, const N: usize> Index<I, N> {
    const VALID: () = assert!(I < N, "per-CPU counter index out of range");
    /// `N` as the `u32` the C side takes (a compile-time error if it does not fit).
    const COUNT: u32 = {
        assert!(N <= u32::MAX as usize, "too many per-CPU counters");
        N as u32
    };
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: Owned by `self` (type invariant) and freed only here.
        unsafe { message_slot_percpu_free(self.counters.as_ptr()) };
    }
}
