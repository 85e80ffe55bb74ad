// SPDX-License-Identifier: GPL-2.0

//! A channel: its id, its record (its message, in a page of its slot's records that user
//! space may map read-only), the writers' lock of that record, and the wait queue of its
//! pollers (allocated when it is first polled).
//!
//! A write reads the user's bytes once onto its stack ([`Message::from_user`]: this may fault
//! and sleep; no lock is held), then, under the channel's [`SpinLock`], stores them into the
//! record ([`record::store`]) and, in the unlock's call, wakes the pollers. A read loads the
//! record onto its stack without a lock ([`record::load`]); if a write was in progress or
//! overlapped, it takes the writers' lock for one load instead of trying again, so it never
//! spins on a writer (with PREEMPT_RT the lock boosts a preempted one). The caller copies the
//! message to user memory only afterwards, from the stack, with no lock held.
//!
//! So a write to an existing channel allocates nothing and cannot fail for lack of memory, a
//! read allocates nothing and writes no shared memory unless it meets a write, a reader never
//! returns a torn message, and a failed write (`EFAULT`) never touches the record.

use crate::abstractions::{
    page::{page_of, BorrowedPage},
    poll::{PollEvents, WaitQueueHead},
    spinlock::SpinLock,
};
use crate::channel_index::{HashedChainMap, Keyed, PreparedEntry};
use crate::record::{self, Message};
use crate::record_pages::{GivenRecord, RecordPages};
use crate::uapi::Record;
use core::{
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{alloc::Flags, bindings::PAGE_SIZE, prelude::*};

/// A slot's channels by id, with the pages of their records as the map's context (which it
/// drops after its channels).
pub(crate) type ChannelMap = HashedChainMap<Channel, RecordPages>;

/// Creates channel `id`, without a message, with `record`, in `prepared`'s entry of `map`,
/// with `waiters` as its pollers' wait queue; returns the channel and whether it was inserted
/// now (not if `map` holds `id` already: check first, under the records' lock, since channels
/// are only created with it held). Allocates nothing.
///
/// Errors (`record` is then left unused, zero): `EINVAL` if `record` is not one of `map`'s
/// records; those of [`HashedChainMap::insert`].
pub(crate) fn create<'a>(
    map: &'a ChannelMap,
    record: GivenRecord<'a>,
    id: u32,
    prepared: PreparedEntry<'a, Channel, RecordPages>,
    waiters: Option<Pin<KBox<WaitQueueHead>>>,
) -> Result<(&'a Channel, bool)> {
    if !ptr::eq(record.pages(), map.context()) {
        return Err(EINVAL);
    }
    // SAFETY: The record was given out to `record` alone, so it is all zero and nobody else
    // writes it; it is in an order-0 page of the direct map, one of `map`'s context, which
    // `map` drops after its values, the channel among them (it goes into `map` or is dropped
    // now).
    let channel = unsafe { Channel::new(id, record.into_raw(), waiters) };
    map.insert(prepared, channel)
}

/// A channel: its record, the record's writers' lock and the wait queue of its pollers.
///
/// # Invariants
///
/// `record` points to a `Record` in an order-0 page of the direct map, one of the record pages
/// of the channel's map, which live longer than the channel (the map drops them after its
/// channels), given to this channel alone: the channel is its only writer, with `lock` held. `waiters` is null or a
/// pinned, initialised [`WaitQueueHead`] from `KBox::into_raw`, owned by the channel and
/// never replaced.
#[pin_data(PinnedDrop)]
pub(crate) struct Channel {
    id: u32,
    #[pin]
    lock: SpinLock,
    waiters: AtomicPtr<WaitQueueHead>,
    record: NonNull<Record>,
}

// SAFETY: The record is only accessed through atomics (`record`), from any thread; the rest
// is `Send`.
unsafe impl Send for Channel {}
// SAFETY: As above: every operation takes `&self` and is safe to run concurrently.
unsafe impl Sync for Channel {}

impl Keyed for Channel {
    #[inline]
    fn key(&self) -> u32 {
        self.id
    }
}

impl Channel {
    /// Channel `id`, without a message, with `record` and `waiters` as its pollers' wait queue
    /// (or none until it is first polled).
    ///
    /// # Safety
    ///
    /// `record` points to a `Record` with no message (all zero) in an order-0 page of the
    /// direct map that lives longer than the channel, in memory that only this channel writes
    /// (and only with atomics).
    pub(crate) unsafe fn new(
        id: u32,
        record: NonNull<Record>,
        waiters: Option<Pin<KBox<WaitQueueHead>>>,
    ) -> impl PinInit<Self> {
        // INVARIANT: `record` is the caller's; `waiters` becomes null or a pinned, initialised
        // head from `KBox::into_raw`, owned by the channel. (If the initialiser never runs,
        // dropping it drops `waiters` with it.)
        pin_init!(Self {
            id,
            lock <- SpinLock::new(),
            waiters: AtomicPtr::new(waiters.map_or(ptr::null_mut(), head_into_raw)),
            record,
        })
    }

    /// The channel's record.
    #[inline]
    pub(crate) fn record(&self) -> &Record {
        // SAFETY: `record` points to a `Record` that outlives the channel (type invariant).
        unsafe { self.record.as_ref() }
    }

    /// The page the channel's record is in (to map it into user space).
    pub(crate) fn record_page(&self) -> BorrowedPage<'_> {
        // SAFETY: `record` is in an order-0 page of the direct map that outlives the channel
        // (type invariant).
        unsafe { page_of(self.record.cast::<u8>()) }
    }

    /// The offset of the channel's record in its page, in bytes.
    pub(crate) fn record_offset(&self) -> usize {
        self.record.as_ptr() as usize % PAGE_SIZE
    }

    /// Makes `message` the channel's message and then wakes the channel's pollers with
    /// `events`, if any wait; returns the length of the message it replaced (0 if there was
    /// none). Allocates nothing; spins (or, with PREEMPT_RT, sleeps) only on another write or
    /// a reader that a write overtook, never for long.
    ///
    /// The wake-up follows the unlock in the same call into C, after a full barrier: either it
    /// finds a poller that registered before the message was published, or that poller finds
    /// the message. Without a queue or waiters: that barrier and two loads.
    #[inline]
    pub(crate) fn replace(&self, message: &Message, events: PollEvents) -> usize {
        let write = self.lock.lock();
        // The lock is held: this is the record's only writer (type invariant).
        let previous = record::store(self.record(), message);
        // SAFETY: `waiters` is null or a pinned, initialised head owned by the channel (type
        // invariant), published with the channel or by a release compare-and-swap, and freed
        // only when the channel is dropped, which cannot happen while `self` is borrowed.
        unsafe { write.unlock_and_wake_up_poll(&self.waiters, events) };
        previous
    }

    /// The number of the current message, if the channel holds one: it changes with every
    /// write, and is the one a read that loads this message returns (the record's sequence;
    /// see [`Channel::read`]).
    #[inline]
    pub(crate) fn current(&self) -> Option<u32> {
        record::sequence_of_message(self.record())
    }

    /// Calls `deliver` with the channel's message (length 0: none yet), whole, and its number
    /// ([`Channel::current`]), loaded onto the stack; returns what `deliver` returns.
    /// Allocates nothing; without a lock unless it meets a write, then it takes the writers'
    /// lock for one load. `deliver` runs with no lock held. (A callback rather than a returned
    /// message: the message stays where it was loaded, in either path, instead of being
    /// copied into a common place.)
    #[inline]
    pub(crate) fn read<R>(&self, deliver: impl FnOnce(u32, &Message) -> R) -> R {
        match record::load(self.record()) {
            Some((sequence, message)) => deliver(sequence, &message),
            None => {
                let (sequence, message) = self.read_excluding_writers();
                deliver(sequence, &message)
            }
        }
    }

    /// [`Channel::read`] for a reader that met a write: loads the record with writers
    /// excluded.
    #[cold]
    #[inline(never)]
    fn read_excluding_writers(&self) -> (u32, Message) {
        let _exclusive = self.lock.lock();
        // The lock is held: no write runs, the record is stable.
        record::load_stable(self.record())
    }

    /// The wait queue of the channel's pollers, allocated with `flags` on the first call
    /// (`ENOMEM`). Lives as long as the channel.
    pub(crate) fn poll_queue(&self, flags: Flags) -> Result<&WaitQueueHead> {
        if let Some(queue) = self.queue() {
            return Ok(queue);
        }
        let created = head_into_raw(KBox::pin_init(WaitQueueHead::new(), flags)?);
        // INVARIANT: `waiters` goes from null to a pinned, initialised head, once.
        match self.waiters.compare_exchange(
            ptr::null_mut(),
            created,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: The channel owns `created` now and frees it only when dropped, which
            // cannot happen while `self` is borrowed.
            Ok(_) => Ok(unsafe { &*created }),
            Err(existing) => {
                // SAFETY: `created` came from `KBox::into_raw` and was never published.
                drop(unsafe { KBox::from_raw(created) });
                // SAFETY: A non-null `waiters` is a head owned by the channel (type invariant),
                // alive while `self` is borrowed; the acquire pairs with the release that
                // published it.
                Ok(unsafe { &*existing })
            }
        }
    }

    #[inline]
    fn queue(&self) -> Option<&WaitQueueHead> {
        // SAFETY: A non-null `waiters` is a pinned head owned by the channel (type invariant),
        // freed only when the channel is dropped, so it lives while `self` is borrowed; the
        // acquire pairs with the release of the compare-and-swap that published it.
        unsafe { self.waiters.load(Ordering::Acquire).as_ref() }
    }
}

/// The pinned wait queue head `head` as the raw pointer a channel owns it through (freed with
/// `KBox::from_raw`).
fn head_into_raw(head: Pin<KBox<WaitQueueHead>>) -> *mut WaitQueueHead {
    // SAFETY: The head is not moved out of its allocation: a channel only hands out shared
    // references to it and frees it with `KBox::from_raw` (dropping it in place).
    KBox::into_raw(unsafe { Pin::into_inner_unchecked(head) })
}

#[pinned_drop]
impl PinnedDrop for Channel {
    fn drop(self: Pin<&mut Self>) {
        let waiters = self.waiters.swap(ptr::null_mut(), Ordering::Relaxed);
        if !waiters.is_null() {
            // SAFETY: A non-null `waiters` came from `KBox::into_raw` and is owned by the
            // channel (type invariant). Nobody waits on it any more: every poll registration
            // ends before its file is released, and the channel outlives every open file of
            // its slot.
            drop(unsafe { KBox::from_raw(waiters) });
        }
    }
}
