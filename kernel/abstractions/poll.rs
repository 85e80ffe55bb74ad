// SPDX-License-Identifier: GPL-2.0

//! `poll`/`select`/`epoll` support: wait queue heads, the poll table handed to a file's `poll`
//! operation, and the poll event bits.
//!
//! Stands in for upstream's `kernel::sync::poll::{PollTable, PollCondVar}` (since 6.13, for
//! Rust binder), which 6.12 lacks. Upstream's `PollCondVar` makes its `Drop` safe against
//! waiters that outlive it (`__wake_up_pollfree` plus `synchronize_rcu`); [`WaitQueueHead`]
//! instead relies on the caller's guarantee, stated at [`PollTable::register_wait`], that a
//! queue a file is polled on lives as long as the file. The C side (`poll_wait()` and
//! `init_waitqueue_head()` are static inline functions or macros) is in `helpers.c`; waking a
//! queue after a write is part of ending the write ([`super::seqlock`]).

use core::marker::PhantomData;
use kernel::{bindings, ffi::c_void, prelude::*, types::Opaque};

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_init_waitqueue_head(head: *mut bindings::wait_queue_head);
    // `struct file *` and `poll_table *`, as opaque pointers: bindgen's `file` (and in 7.x its
    // `poll_table_struct`) holds a field type with no members, which the FFI-safety lint
    // rejects.
    fn message_slot_poll_wait(
        file: *mut c_void,
        head: *mut bindings::wait_queue_head,
        table: *mut c_void,
    );
    fn message_slot_poll_does_not_wait(table: *const c_void) -> bool;
}

/// A set of poll events (C's `__poll_t`), as a file's `poll` operation returns them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollEvents(u32);

impl PollEvents {
    /// `EPOLLIN`: there is data to read.
    pub(crate) const IN: Self = Self(0x001);
    /// `EPOLLOUT`: writing does not block.
    pub(crate) const OUT: Self = Self(0x004);
    /// `EPOLLERR`: an error condition.
    pub(crate) const ERR: Self = Self(0x008);
    /// `EPOLLRDNORM`: there is normal data to read.
    pub(crate) const RDNORM: Self = Self(0x040);
    /// `EPOLLWRNORM`: normal data can be written.
    pub(crate) const WRNORM: Self = Self(0x100);

    /// The events of `self` and of `other`.
    #[inline]
    pub(crate) const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The `__poll_t` value.
    #[inline]
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }
}

/// A wait queue head (C's `struct wait_queue_head`, with its layout: a pointer to one is a
/// pointer to the C head) that files can be polled on.
///
/// # Invariants
///
/// `inner` is initialised by `init_waitqueue_head()` and pinned.
#[repr(transparent)]
#[pin_data]
pub(crate) struct WaitQueueHead {
    #[pin]
    inner: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue head is made to be used from any thread: its list is protected by its
// own spinlock.
unsafe impl Send for WaitQueueHead {}
// SAFETY: As above; every operation on a shared head takes its spinlock (or, for the lockless
// `waitqueue_active` check, is documented by the kernel as safe against concurrent updates).
unsafe impl Sync for WaitQueueHead {}

impl WaitQueueHead {
    /// An empty wait queue head. All heads share one lockdep class (their locks never nest).
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_waitqueue_head` initialises the head in place (it is pinned, so the
            // list pointing at itself stays valid); it cannot fail.
            inner <- Opaque::ffi_init(|head| unsafe { message_slot_init_waitqueue_head(head) }),
        })
    }
}

/// The poll table of one call of a file's `poll` operation, and the file it is for.
///
/// `'a` is at most the time until that file is released: a [`WaitQueueHead`] the file is
/// registered on must live at least that long.
///
/// # Invariants
///
/// `file` is the file being polled, `table` is null or the `poll_table` of this call, and
/// the queue entries `table` adds are removed no later than the release of `file` (`poll` and
/// `select` remove theirs before the system call returns, while holding a file reference;
/// epoll removes its entries in `eventpoll_release()`, before `__fput()` calls `release`).
pub(crate) struct PollTable<'a> {
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
    _file: PhantomData<&'a bindings::file>,
}

impl<'a> PollTable<'a> {
    /// The poll table of a `poll` call on `file`.
    ///
    /// # Safety
    ///
    /// `file` and `table` are the arguments of a `poll` file operation in progress, and `'a`
    /// ends no later than the release of `file`.
    pub(crate) unsafe fn from_raw(
        file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> Self {
        // INVARIANT: Guaranteed by the caller; the kernel removes its queue entries as stated.
        Self {
            file,
            table,
            _file: PhantomData,
        }
    }

    /// Whether the caller may wait (6.12's `!poll_does_not_wait()`, the test `poll_wait()`
    /// makes): a poll table that registers on queues. `poll` with a zero timeout, `select`'s
    /// and `poll`'s passes after an event was found, and epoll's re-checks of ready files (a
    /// level-triggered file on every `epoll_wait`) pass none; [`PollTable::register_wait`]
    /// does nothing then.
    #[inline]
    pub(crate) fn will_wait(&self) -> bool {
        // SAFETY: `table` is null or the poll table of the current `poll` call (type
        // invariant), valid for reads during it.
        !unsafe { message_slot_poll_does_not_wait(self.table.cast()) }
    }

    /// Registers the caller on `head` (`poll_wait()`), so that a wake-up of `head` makes the
    /// poll, select or epoll call re-evaluate the file's events. Followed by a full memory
    /// barrier (`helpers.c` issues it: `poll_wait()` has it only in newer 6.12.y releases),
    /// paired with the one of [`SeqLockWriteGuard::unlock_and_wake_up_poll`]: check the
    /// condition after registering.
    ///
    /// [`SeqLockWriteGuard::unlock_and_wake_up_poll`]: super::seqlock::SeqLockWriteGuard::unlock_and_wake_up_poll
    #[inline]
    pub(crate) fn register_wait(&mut self, head: &'a WaitQueueHead) {
        // SAFETY: `file` and `table` are those of the current `poll` call (type invariant) and
        // `head` is an initialised, pinned wait queue head. It lives for `'a`, which ends no
        // later than the release of `file`, and the entry `poll_wait` may add to it is removed
        // by then (type invariant), so the head outlives every entry on it.
        unsafe { message_slot_poll_wait(self.file.cast(), head.inner.get(), self.table.cast()) };
    }
}
