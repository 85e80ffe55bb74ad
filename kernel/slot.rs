// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only index (lock-free lookups); a channel is
//! created by the first write to it and lives as long as the slot. An [`OpenSlot`] (one open
//! file) holds its channel id and remembers the channel itself, so that reads and writes on a
//! bound file take no lock and skip the index. Safe Rust only: the unsafe code lives in the
//! data structures (`message`, `channel_index`) and the kernel wrappers (`compat`).
#![forbid(unsafe_code)]

use crate::channel::{Channel, MessageBytes};
use crate::channel_index::{KeyedMap, MapCursor};
use crate::compat::{
    alloc::__GFP_NORETRY,
    init::pin_init_array_from_fn,
    percpu::PerCpuCounters,
    poll::{PollEvents, PollTable, WaitQueueHead},
};
use crate::max_channels;
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    alloc::{flags, Flags},
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

/// Allocation flags for memory that a user's request makes the driver allocate (a new
/// channel, an open file, index nodes): charged to the caller's memory cgroup
/// (`GFP_KERNEL_ACCOUNT`), reclaiming like any allocation a user causes, but failing with
/// `ENOMEM` after one round of reclaim instead of retrying or invoking the OOM killer
/// (`__GFP_NORETRY`, which the memcg charge path honours too), and without a warning
/// (`__GFP_NOWARN`: a user can make it fail at will). May sleep: never used under a lock.
pub(crate) fn user_memory() -> Flags {
    flags::GFP_KERNEL_ACCOUNT | __GFP_NORETRY | flags::__GFP_NOWARN
}

/// A channel id: any non-zero `u32`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelId(NonZeroU32);

impl ChannelId {
    /// Validates the raw `ioctl` argument: `EINVAL` unless it is a non-zero `u32`.
    pub(crate) fn from_ioctl_arg(arg: usize) -> Result<Self> {
        let id = u32::try_from(arg).map_err(|_| EINVAL)?;
        NonZeroU32::new(id).map(Self).ok_or(EINVAL)
    }

    /// The id as a `u32`.
    fn get(self) -> u32 {
        self.0.get()
    }
}

/// Wait queues of a slot: pollers of channel `id` wait on `heads[WaitQueues::index(id)]`.
const WAIT_QUEUES: usize = 1 << WAIT_QUEUE_BITS;
const WAIT_QUEUE_BITS: u32 = 6;

/// The poll wait queues of a slot, shared by its channels through a hash of the channel id:
/// a write wakes the pollers of its own channel and of the few channels hashed alongside
/// (whose poll then finds nothing new and waits again), never the whole slot, and a channel
/// costs no memory for waiting.
#[pin_data]
struct WaitQueues {
    #[pin]
    heads: [WaitQueueHead; WAIT_QUEUES],
}

impl WaitQueues {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            heads <- pin_init_array_from_fn(|_| WaitQueueHead::new()),
        })
    }

    /// The queue of channel `id` (Fibonacci hashing: consecutive ids get different queues).
    fn of(&self, id: ChannelId) -> &WaitQueueHead {
        let index = id.get().wrapping_mul(0x9e37_79b9) >> (u32::BITS - WAIT_QUEUE_BITS);
        // The shift leaves `index < WAIT_QUEUES`, so the compiler drops the remainder and the
        // bounds check.
        &self.heads[index as usize % WAIT_QUEUES]
    }
}

/// One message slot (one minor): its channels, created by their first write, and the wait
/// queues its files are polled on.
///
/// # Invariants
///
/// `channels` holds at most `reserved <= max_channels()` entries, each under its own id.
#[pin_data]
pub(crate) struct Slot {
    channels: Arc<KeyedMap<Channel>>,
    reserved: AtomicU32,
    /// Per-CPU counters, indexed by [`WRITES`], [`READS`] and [`BYTES`]: updated without
    /// writing memory that other CPUs use.
    counters: PerCpuCounters<COUNTERS>,
    /// Open files of the slot.
    open_files: AtomicU32,
    /// Lives as long as the slot, which every open file of the slot keeps alive (and the
    /// device until unload): every poll registration on it ends before its file's release.
    #[pin]
    waiters: WaitQueues,
}

impl Slot {
    /// An empty slot.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            channels: Arc::pin_init(KeyedMap::new(), GFP_KERNEL)?,
            reserved: AtomicU32::new(0),
            counters: PerCpuCounters::new(GFP_KERNEL)?,
            open_files: AtomicU32::new(0),
            waiters <- WaitQueues::new(),
        })
    }

    /// The slot's statistics now (each value read on its own: a snapshot while the slot is
    /// in use, exact when it is idle).
    pub(crate) fn stats(&self) -> SlotStats {
        SlotStats {
            channels: self.reserved.load(Ordering::Relaxed),
            bytes: self.counters.sum(BYTES),
            writes: self.counters.sum(WRITES),
            reads: self.counters.sum(READS),
            open_files: self.open_files.load(Ordering::Relaxed),
        }
    }

    /// Counts a successful write of `len` bytes that replaced a message of `previous` bytes
    /// (0: created the channel).
    #[inline]
    fn count_write(&self, len: usize, previous: usize) {
        self.counters
            .add2(WRITES, 1, BYTES, (len as u64).wrapping_sub(previous as u64));
    }

    /// Creates channel `id`, which a lookup just found missing, holding `message` (or, if
    /// another writer created it meanwhile, makes `message` its message); returns the length
    /// of the message replaced (0 for a new channel).
    ///
    /// On error nothing changes: `ENOSPC` if a new channel would exceed `max_channels`,
    /// `ENOMEM` if it cannot be allocated.
    fn create(&self, id: ChannelId, message: &MessageBytes) -> Result<usize> {
        let limit = max_channels();
        // INVARIANT: A place is reserved before the channel is inserted and given back if it
        // is not.
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(1).filter(|&reserved| reserved <= limit)
            })
            .map_err(|_| ENOSPC)?;
        match self
            .channels
            .get_or_insert(id.get(), Channel::new(message), user_memory())
        {
            Ok((_, true)) => Ok(0),
            Ok((channel, false)) => {
                // Another writer created the channel first; this write comes after its message.
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                Ok(channel.replace(message))
            }
            Err(error) => {
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }
}

/// Indices of a slot's per-CPU counters: successful writes, successful reads, and the bytes
/// of the channels' current messages (each write adds its length less the replaced one's).
const WRITES: usize = 0;
const READS: usize = 1;
const BYTES: usize = 2;
const COUNTERS: usize = 3;

/// A slot's statistics (the device's sysfs attributes); all 0 for a slot not created yet.
#[derive(Default)]
pub(crate) struct SlotStats {
    /// Channels in use (created, plus those being created right now).
    pub(crate) channels: u32,
    /// Bytes of the channels' current messages.
    pub(crate) bytes: u64,
    /// Successful writes since the slot was created.
    pub(crate) writes: u64,
    /// Successful reads since the slot was created.
    pub(crate) reads: u64,
    /// Open files.
    pub(crate) open_files: u32,
}

/// The events of a file with a message to read.
const READABLE: PollEvents = PollEvents::IN.union(PollEvents::RDNORM);
/// The events of a bound file (a write never waits).
const WRITABLE: PollEvents = PollEvents::OUT.union(PollEvents::WRNORM);

/// One open file of a slot.
///
/// Reads and writes take no per-file lock: the binding is an atomic channel id, and the
/// bound channel is remembered in a lock-free [`MapCursor`] that every use checks against
/// that id (a stale memo, left by a concurrent `ioctl`, only costs a lookup). The file holds
/// no message memory: closing it frees all it allocated.
///
/// # Invariants
///
/// `channel` is 0 (unbound) or a valid channel id. `last_seen` is 0 (nothing read since the
/// last bind) or [`seen`] of a channel id and the number of a message of it that a read on
/// this file copied.
pub(crate) struct OpenSlot {
    cursor: MapCursor<Channel>,
    slot: Arc<Slot>,
    channel: AtomicU32,
    last_seen: AtomicU64,
}

/// What a file remembers of the last message it read: its channel and the message's number
/// ([`Channel::sequence`]).
#[inline]
fn seen(id: ChannelId, sequence: u32) -> u64 {
    (u64::from(id.get()) << 32) | u64::from(sequence)
}

impl OpenSlot {
    /// A file of `slot`, not bound to any channel yet.
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        slot.open_files.fetch_add(1, Ordering::Relaxed);
        // INVARIANT: 0 means unbound.
        Self {
            cursor: MapCursor::new(slot.channels.clone()),
            slot,
            channel: AtomicU32::new(0),
            last_seen: AtomicU64::new(0),
        }
    }

    /// Binds the file to channel `id`. Allocates nothing.
    pub(crate) fn bind(&self, id: ChannelId) {
        // INVARIANT: `id` is non-zero; nothing has been read since this bind.
        self.last_seen.store(0, Ordering::Relaxed);
        self.channel.store(id.get(), Ordering::Release);
        self.cursor.remember(id.get());
    }

    /// The bound channel's id: `EINVAL` if the file is not bound.
    #[inline]
    fn bound(&self) -> Result<ChannelId> {
        NonZeroU32::new(self.channel.load(Ordering::Acquire))
            .map(ChannelId)
            .ok_or(EINVAL)
    }

    /// Channel `id`, if it exists: the remembered channel if it is `id`, else a lookup.
    #[inline]
    fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.cursor.get(id.get())
    }

    /// Replaces the bound channel's message with the `len` bytes at `source` and returns
    /// `len`.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EMSGSIZE` (`len` not in 1..=128), `EFAULT`,
    /// `ENOSPC` (a new channel beyond `max_channels`), `ENOMEM` (a new channel). User memory is
    /// read once, into the stack, before any lock is taken; a write to an existing channel
    /// allocates nothing; on error the channel keeps its message.
    #[inline]
    pub(crate) fn write(&self, source: UserPtr, len: usize) -> Result<usize> {
        let id = self.bound()?;
        let message = MessageBytes::from_user(UserSlice::new(source, len).reader())?;
        let previous = match self.channel(id) {
            Some(channel) => channel.replace(&message),
            None => self.slot.create(id, &message)?,
        };
        self.slot.count_write(message.len(), previous);
        // After the message is published: a poller registered before the check inside sees
        // it (the full barrier there pairs with the one after its registration).
        self.slot.waiters.of(id).wake_up_poll(READABLE);
        Ok(message.len())
    }

    /// Copies the bound channel's message to the `len` bytes at `destination` and returns its
    /// length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EWOULDBLOCK` (no message), `ENOSPC` (`len` is
    /// too small; nothing is copied), `EFAULT`. Allocates nothing, takes no lock (unless
    /// writers keep overtaking it), never waits for a message.
    #[inline]
    pub(crate) fn read(&self, destination: UserPtr, len: usize) -> Result<usize> {
        let id = self.bound()?;
        let channel = self.channel(id).ok_or(EAGAIN)?;
        let (len, sequence) = channel.read(destination, len)?;
        // INVARIANT: This read copied message `sequence` of channel `id`.
        self.last_seen.store(seen(id, sequence), Ordering::Relaxed);
        self.slot.counters.add(READS, 1);
        Ok(len)
    }

    /// The file's poll events; registers `table` on the bound channel's wait queue.
    ///
    /// Unbound: `EPOLLERR` (a read or write would fail with `EINVAL`; a later bind does not
    /// wake the poller). Bound: `EPOLLOUT | EPOLLWRNORM` (a write never waits), plus
    /// `EPOLLIN | EPOLLRDNORM` if the channel holds a message that this file has not read
    /// since it was bound. The registration follows the channel bound now: an epoll
    /// registration made before a re-bind still waits on the old channel's queue.
    pub(crate) fn poll<'a>(&'a self, mut table: PollTable<'a>) -> PollEvents {
        let Ok(id) = self.bound() else {
            return PollEvents::ERR;
        };
        table.register_wait(self.slot.waiters.of(id));
        // After registering (and the full barrier that follows it): a write that publishes its
        // message after this check wakes the queue.
        let unread = self.channel(id).is_some_and(|channel| {
            seen(id, channel.sequence()) != self.last_seen.load(Ordering::Relaxed)
        });
        if unread {
            READABLE.union(WRITABLE)
        } else {
            WRITABLE
        }
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.slot.open_files.fetch_sub(1, Ordering::Relaxed);
    }
}
