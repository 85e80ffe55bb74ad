// SPDX-License-Identifier: GPL-2.0

//! A writers' lock: C's `spinlock_t`, taken and released by the thread that holds it, whose
//! release can wake a wait queue's pollers in the same call into C.
//!
//! Stands in for `kernel::sync::SpinLock` (6.12 and 7.x), which does not give its
//! `spinlock_t` to C: the write path ends with one C call that releases the lock and then
//! checks for pollers to wake ([`SpinLockGuard::unlock_and_wake_up_poll`]), where upstream's
//! guard would release it in one call and a wake-up check would take another. With
//! `CONFIG_PREEMPT_RT` a `spinlock_t` is a sleeping lock with priority inheritance: a thread
//! that waits for it boosts a preempted holder. The C side is in `helpers.c`.

use super::poll::{PollEvents, WaitQueueHead};
use core::{marker::PhantomData, sync::atomic::AtomicPtr};
use kernel::{bindings, prelude::*, types::Opaque};

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_spin_lock_init(lock: *mut bindings::spinlock_t);
    fn message_slot_spin_unlock_wake_up_poll(
        lock: *mut bindings::spinlock_t,
        queue: *const *mut bindings::wait_queue_head,
        events: u32,
    );
}

/// A `spinlock_t` that protects nothing of its own: its holder's accesses are the caller's.
///
/// # Invariants
///
/// `inner` is an initialised `spinlock_t` (pinned: lockdep and PREEMPT_RT keep its address).
#[pin_data]
pub(crate) struct SpinLock {
    #[pin]
    inner: Opaque<bindings::spinlock_t>,
}

// SAFETY: A `spinlock_t` is made to be used from any thread; it synchronises its own accesses.
unsafe impl Send for SpinLock {}
// SAFETY: As above: every operation takes `&self` and is safe to run concurrently.
unsafe impl Sync for SpinLock {}

impl SpinLock {
    /// An unlocked lock.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `lock` is valid for writes; `spin_lock_init` initialises all of it.
            inner <- Opaque::ffi_init(|lock| unsafe { message_slot_spin_lock_init(lock) }),
        })
    }

    /// Takes the lock (`spin_lock`) until the guard is dropped. Spins, or with PREEMPT_RT
    /// sleeps, while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> SpinLockGuard<'_> {
        // SAFETY: `inner` is initialised (type invariant); the guard releases it.
        unsafe { bindings::spin_lock(self.inner.get()) };
        // INVARIANT: This thread now holds the lock.
        SpinLockGuard(self, PhantomData)
    }
}

/// Makes a guard not `Send`: a spinlock is released by the thread that took it.
type NotSend = PhantomData<*mut ()>;

/// A held [`SpinLock`].
///
/// # Invariants
///
/// This thread holds the lock through `spin_lock`.
pub(crate) struct SpinLockGuard<'a>(&'a SpinLock, NotSend);

impl SpinLockGuard<'_> {
    /// Releases the lock (`spin_unlock`), then wakes the interruptible waiters of the head
    /// `queue` points to, if it points to one that has any, with `events` as the wake-up key:
    /// the write path's wake-up of its pollers, in the same call into C as the unlock. That C
    /// function orders it all in the kernel's memory model: a full barrier after the unlock
    /// (ordering the holder's stores before the loads, paired with the one after `poll_wait()`
    /// in [`super::poll::PollTable::register_wait`]), the load of the pointer,
    /// `waitqueue_active()` and `wake_up_interruptible_poll()`. Without waiters (or without a
    /// head) this costs that barrier and two loads: either the waker finds a poller that
    /// registered before the write, or that poller sees the write after registering.
    ///
    /// Upstream has no counterpart (`PollCondVar::notify_all` wakes unconditionally). One call
    /// instead of an unlock and a wake-up check: the write path's cost is its calls into C.
    ///
    /// # Safety
    ///
    /// `queue` holds null or a pointer to an initialised [`WaitQueueHead`], published with a
    /// release store (or stronger), that stays alive for the duration of the call.
    #[inline]
    pub(crate) unsafe fn unlock_and_wake_up_poll(
        self,
        queue: &AtomicPtr<WaitQueueHead>,
        events: PollEvents,
    ) {
        let lock = self.0.inner.get();
        // The unlock is below: the guard must not unlock again.
        core::mem::forget(self);
        // `AtomicPtr<T>` has the layout of `*mut T`, and `WaitQueueHead` (`repr(transparent)`
        // over an `Opaque`) that of `wait_queue_head`.
        let queue = queue.as_ptr().cast::<*mut bindings::wait_queue_head>();
        // SAFETY: This thread holds the lock through `spin_lock` (type invariant), which the
        // call releases; `queue` is valid for reads and what it points to, if anything, is a
        // live, initialised head (the caller's guarantee); the C side loads it atomically.
        unsafe { message_slot_spin_unlock_wake_up_poll(lock, queue, events.bits()) };
    }
}

impl Drop for SpinLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: This thread holds the lock through `spin_lock` (type invariant).
        unsafe { bindings::spin_unlock(self.0.inner.get()) };
    }
}
