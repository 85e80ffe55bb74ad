// SPDX-License-Identifier: GPL-2.0

//! Sequential locks: C's `seqlock_t`, a spinlock that serialises writers plus a sequence
//! counter that lets readers run without writing shared memory and detect a concurrent write.
//!
//! Stands in for a `kernel::sync` seqlock abstraction, which upstream does not have yet (on
//! every kernel of vm/kernels). It is the kernel's own type, not a hand-rolled one, so it
//! keeps the kernel's rules: with `CONFIG_PREEMPT_RT` the writer's spinlock is a sleeping
//! lock, and a reader that finds a write in progress takes and releases that lock (boosting
//! the writer) instead of spinning on a preempted writer. The C side (macros and static inline functions) is in
//! `helpers.c`. The protected data is the caller's: this type only orders accesses to it.

use super::poll::{PollEvents, WaitQueueHead};
use core::{marker::PhantomData, sync::atomic::AtomicPtr};
use kernel::{bindings, prelude::*, types::Opaque};

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_seqlock_init(lock: *mut bindings::seqlock_t);
    fn message_slot_read_seqbegin(lock: *const bindings::seqlock_t) -> u32;
    fn message_slot_read_seqretry(lock: *const bindings::seqlock_t, start: u32) -> bool;
    fn message_slot_write_seqlock(lock: *mut bindings::seqlock_t);
    fn message_slot_write_sequnlock(lock: *mut bindings::seqlock_t);
    fn message_slot_write_sequnlock_wake_up_poll(
        lock: *mut bindings::seqlock_t,
        queue: *const *mut bindings::wait_queue_head,
        events: u32,
    );
    fn message_slot_read_seqlock_excl(lock: *mut bindings::seqlock_t);
    fn message_slot_read_sequnlock_excl(lock: *mut bindings::seqlock_t);
}

/// A `seqlock_t`.
///
/// # Invariants
///
/// `inner` is an initialised `seqlock_t` (pinned: with lockdep or PREEMPT_RT its sequence
/// counter points at its spinlock).
#[pin_data]
pub(crate) struct SeqLock {
    #[pin]
    inner: Opaque<bindings::seqlock_t>,
}

// SAFETY: A `seqlock_t` is made to be used from any thread; it synchronises its own accesses.
unsafe impl Send for SeqLock {}
// SAFETY: As above: every operation takes `&self` and is safe to run concurrently.
unsafe impl Sync for SeqLock {}

impl SeqLock {
    /// A seqlock at sequence 0, no writer.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `lock` is valid for writes; `seqlock_init` initialises all of it.
            inner <- Opaque::ffi_init(|lock| unsafe { message_slot_seqlock_init(lock) }),
        })
    }

    /// Begins a read: the sequence once no write is in progress (`read_seqbegin`). Never
    /// fails; with PREEMPT_RT it may sleep briefly on a preempted writer, so do not call it in
    /// atomic context.
    #[inline]
    pub(crate) fn read_begin(&self) -> u32 {
        // SAFETY: `inner` is initialised (type invariant).
        unsafe { message_slot_read_seqbegin(self.inner.get()) }
    }

    /// Whether a read begun at `start` overlapped a write and must be retried
    /// (`read_seqretry`; it orders the read's loads before the check).
    #[inline]
    pub(crate) fn read_retry(&self, start: u32) -> bool {
        // SAFETY: `inner` is initialised (type invariant).
        unsafe { message_slot_read_seqretry(self.inner.get(), start) }
    }

    /// Takes the writers' lock and makes the sequence odd (`write_seqlock`) until the guard
    /// is dropped. Readers that overlap the guard retry.
    #[inline]
    pub(crate) fn write(&self) -> SeqLockWriteGuard<'_> {
        // SAFETY: `inner` is initialised (type invariant); the guard unlocks it.
        unsafe { message_slot_write_seqlock(self.inner.get()) };
        SeqLockWriteGuard(self, PhantomData)
    }

    /// Takes the writers' lock without touching the sequence (`read_seqlock_excl`): a reader
    /// that excludes writers and so cannot be starved by them, until the guard is dropped.
    #[inline]
    pub(crate) fn read_exclusive(&self) -> SeqLockExclusiveGuard<'_> {
        // SAFETY: `inner` is initialised (type invariant); the guard unlocks it.
        unsafe { message_slot_read_seqlock_excl(self.inner.get()) };
        SeqLockExclusiveGuard(self, PhantomData)
    }
}

/// Makes a guard not `Send`: a spinlock is released by the thread that took it.
type NotSend = PhantomData<*mut ()>;

/// A write section of a [`SeqLock`]: no other writer and no exclusive reader runs meanwhile.
///
/// # Invariants
///
/// This thread holds the lock through `write_seqlock`.
pub(crate) struct SeqLockWriteGuard<'a>(&'a SeqLock, NotSend);

impl SeqLockWriteGuard<'_> {
    /// Ends the write section (`write_sequnlock`), then wakes the interruptible waiters of the
    /// head `queue` points to, if it points to one that has any, with `events` as the wake-up
    /// key: the write path's wake-up of its pollers, in the same call into C as the unlock.
    /// That C function orders it all in the kernel's memory model: a full barrier after the
    /// unlock (ordering the write before the loads, paired with the one after `poll_wait()`
    /// in [`super::poll::PollTable::register_wait`]), the load of the pointer,
    /// `waitqueue_active()` and `wake_up_interruptible_poll()`. Without waiters (or without a
    /// head) this costs that barrier and two loads: either the waker finds a poller that
    /// registered before the write, or that poller sees the write after registering.
    ///
    /// Upstream has no counterpart (no seqlock abstraction; `PollCondVar::notify_all` wakes
    /// unconditionally). One call instead of an unlock and a wake-up check: the write path's
    /// cost is its calls into C.
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
        // SAFETY: This thread holds the lock through `write_seqlock` (type invariant), which
        // the call releases; `queue` is valid for reads and what it points to, if anything, is
        // a live, initialised head (the caller's guarantee); the C side loads it atomically.
        unsafe { message_slot_write_sequnlock_wake_up_poll(lock, queue, events.bits()) };
    }
}

impl Drop for SeqLockWriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: This thread holds the lock through `write_seqlock` (type invariant).
        unsafe { message_slot_write_sequnlock(self.0.inner.get()) };
    }
}

/// An exclusive read section of a [`SeqLock`]: no writer runs meanwhile.
///
/// # Invariants
///
/// This thread holds the lock through `read_seqlock_excl`.
pub(crate) struct SeqLockExclusiveGuard<'a>(&'a SeqLock, NotSend);

impl Drop for SeqLockExclusiveGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: This thread holds the lock through `read_seqlock_excl` (type invariant).
        unsafe { message_slot_read_sequnlock_excl(self.0.inner.get()) };
    }
}
