// SPDX-License-Identifier: GPL-2.0

//! RCU: the read-side critical section as a guard, and freeing memory after a grace period.
//!
//! [`Guard`] and [`read_lock`] are upstream's `kernel::sync::rcu` on 7.x and stand in for it
//! on 6.12; [`kvfree_call_rcu`] is C's `kvfree_call_rcu()`, what `kfree_rcu()` expands to,
//! for which there is no Rust abstraction upstream yet.

use kernel::bindings;

#[cfg(not(kernel_6_12))]
pub(crate) use kernel::sync::rcu::{read_lock, Guard};

#[cfg(kernel_6_12)]
pub(crate) use v6_12::{read_lock, Guard};

/// 6.12: upstream's guard, on `compat/helpers.c` (`rcu_read_lock()` and `rcu_read_unlock()`
/// are static inline functions, and 6.12's Rust helpers lack them).
#[cfg(kernel_6_12)]
mod v6_12 {
    use core::marker::PhantomData;

    extern "C" {
        fn message_slot_rcu_read_lock();
        fn message_slot_rcu_read_unlock();
    }

    /// An RCU read-side critical section (not `Send`: it ends on the thread that began it):
    /// objects freed with RCU that were reachable when it began stay allocated until it is
    /// dropped. Must not sleep while it exists.
    ///
    /// # Invariants
    ///
    /// The RCU read-side lock is held on this thread while the guard exists.
    pub(crate) struct Guard(PhantomData<*mut ()>);

    impl Drop for Guard {
        #[inline]
        fn drop(&mut self) {
            // SAFETY: By the type invariant the read-side lock is held, by this thread (the
            // guard is not `Send`), so this ends the critical section that `read_lock` began.
            unsafe { message_slot_rcu_read_unlock() };
        }
    }

    /// Begins an RCU read-side critical section, which lasts as long as the returned guard.
    #[inline]
    pub(crate) fn read_lock() -> Guard {
        // SAFETY: `rcu_read_lock` may be called from any context; the guard ends the section.
        unsafe { message_slot_rcu_read_lock() };
        // INVARIANT: The read-side lock was just taken.
        Guard(PhantomData)
    }
}

/// Frees `ptr`, a `kmalloc`/`vmalloc` allocation, after an RCU grace period, using `head`
/// (inside the allocation) to queue it. Never sleeps.
///
/// # Safety
///
/// `ptr` is the start of a live `kmalloc` or `vmalloc` allocation that the caller owns and
/// gives up, `head` points into it (within its first 4096 bytes), and after the call nothing
/// uses the allocation except readers inside RCU read-side critical sections that began
/// before the call.
#[inline]
pub(crate) unsafe fn kvfree_call_rcu(head: *mut bindings::callback_head, ptr: *mut u8) {
    // SAFETY: Guaranteed by the caller. 7.x declares `head` as the `kvfree_rcu_head` that
    // `kfree_rcu()` casts any `rcu_head` field to (it uses at most an `rcu_head`'s bytes).
    unsafe { bindings::kvfree_call_rcu(head.cast(), ptr.cast()) };
}
