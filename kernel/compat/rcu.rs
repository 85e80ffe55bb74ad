// SPDX-License-Identifier: GPL-2.0

//! RCU: the read-side critical section as a guard, and freeing memory after a grace period.
//!
//! [`Guard`] and [`read_lock`] stand in for upstream's `kernel::sync::rcu` (not in 6.12);
//! [`kvfree_call_rcu`] is C's `kvfree_call_rcu()`, what `kfree_rcu()` expands to, for which
//! there is no Rust abstraction upstream yet.

use core::marker::PhantomData;
use kernel::bindings;

extern "C" {
    // `compat/helpers.c`: `rcu_read_lock()` and `rcu_read_unlock()` are static inline
    // functions.
    fn message_slot_rcu_read_lock();
    fn message_slot_rcu_read_unlock();
}

/// An RCU read-side critical section (not `Send`: it ends on the thread that began it): objects freed with RCU that were reachable when it
/// began stay allocated until it is dropped. Must not sleep while it exists.
pub(crate) struct Guard(PhantomData<*mut ()>);

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The guard was created by `read_lock` on this thread (it is not `Send`), so
        // this ends the critical section that it began.
        unsafe { message_slot_rcu_read_unlock() };
    }
}

/// Begins an RCU read-side critical section, which lasts as long as the returned guard.
#[inline]
pub(crate) fn read_lock() -> Guard {
    // SAFETY: `rcu_read_lock` may be called from any context; the guard ends the section.
    unsafe { message_slot_rcu_read_lock() };
    Guard(PhantomData)
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
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::kvfree_call_rcu(head, ptr.cast()) };
}
