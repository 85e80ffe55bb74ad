// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only index (lock-free lookups); a channel is
//! created by the first write to it (or the first poll of it, without a message) and lives as
//! long as the slot. An [`OpenSlot`] (one open file) holds its channel id and remembers the
//! channel itself, so that reads and writes on a bound file take no lock and skip the index.
//! Safe Rust only: the unsafe code lives in the data structures (`channel`, `channel_index`)
//! and the kernel wrappers (`abstractions`).
#![forbid(unsafe_code)]

use crate::abstractions::{
    alloc::__GFP_RETRY_MAYFAIL,
    percpu::PerCpuCounters,
    poll::{PollEvents, PollTable, WaitQueueHead},
};
use crate::channel::{Channel, MessageBuffer, MessageBytes};
use crate::channel_index::{KeyedMap, LookupMemo};
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    alloc::{flags, Flags},
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserPtr,
};

/// Allocation flags for memory that a user's request makes the driver allocate (a new
/// channel, an open file, a channel's wait queue, index nodes): charged to the caller's
/// memory cgroup (`GFP_KERNEL_ACCOUNT`), reclaiming and retrying like any allocation a user
/// causes (a cgroup at its limit full of reclaimable memory still gets its channel), but
/// failing with `ENOMEM` once reclaim makes no progress instead of invoking the OOM killer
/// (`__GFP_RETRY_MAYFAIL`, which the memcg charge path honours too), and without a warning
/// (`__GFP_NOWARN`: a user can make it fail at will). May sleep: never used under a lock.
pub(crate) fn user_memory() -> Flags {
    flags::GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | flags::__GFP_NOWARN
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

/// One message slot (one minor): its channels, each created by its first write or poll.
///
/// # Invariants
///
/// `channels` holds `created <= max_channels` entries, each under its own id; channels are
/// only inserted with `creating` held.
#[pin_data]
pub(crate) struct Slot {
    channels: Arc<KeyedMap<Channel>>,
    /// Serialises the creation of channels (never held by a read, an overwrite or a poll of an
    /// existing channel), so that the check against `max_channels` and the insertion are one
    /// step: a writer that loses the race to create a channel overwrites it, even at the limit.
    #[pin]
    creating: Mutex<()>,
    /// Channels in `channels` (written with `creating` held, read without).
    created: AtomicU32,
    /// The most channels the slot may hold (at least 1).
    max_channels: u32,
    /// Per-CPU counters, indexed by [`WRITES`], [`READS`] and [`BYTES`]: updated without
    /// writing memory that other CPUs use.
    counters: PerCpuCounters<COUNTERS>,
    /// Open files of the slot.
    open_files: AtomicU32,
}

impl Slot {
    /// An empty slot that may hold up to `max_channels` channels.
    pub(crate) fn new(max_channels: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            channels: Arc::pin_init(KeyedMap::new(), GFP_KERNEL)?,
            creating <- kernel::new_mutex!((), "Slot::creating"),
            created: AtomicU32::new(0),
            max_channels,
            counters: PerCpuCounters::new(GFP_KERNEL)?,
            open_files: AtomicU32::new(0),
        })
    }

    /// The slot's statistics now (each value read on its own: a snapshot while the slot is
    /// in use, exact when it is idle).
    pub(crate) fn stats(&self) -> SlotStats {
        // Each write adds its length less the replaced one's on its own CPU, after the
        // replacement, and the sum reads the CPUs one by one: while writes run, it may see a
        // replacement's subtraction without the addition of the write it replaced (the true
        // total is then the sum plus a pending addition). Such a sum is below zero as a
        // signed value; it shows as 0, never as a wrapped `u64`.
        let bytes = self.counters.sum::<BYTES>();
        SlotStats {
            channels: self.created.load(Ordering::Relaxed),
            bytes: if i64::try_from(bytes).is_ok() {
                bytes
            } else {
                0
            },
            writes: self.counters.sum::<WRITES>(),
            reads: self.counters.sum::<READS>(),
            open_files: self.open_files.load(Ordering::Relaxed),
        }
    }

    /// Counts a successful write of `len` bytes that replaced a message of `previous` bytes
    /// (0: created the channel).
    #[inline]
    fn count_write(&self, len: usize, previous: usize) {
        self.counters
            .add_both::<WRITES, BYTES>(1, (len as u64).wrapping_sub(previous as u64));
    }

    /// Channel `id`, which a lookup just found missing, created now holding `message` (or no
    /// message), with its pollers' wait queue if `polled`, unless another file created it
    /// meanwhile; and whether it was created now.
    ///
    /// Errors, in order (nothing changes, nothing stays allocated): `ENOSPC` if the channel
    /// does not exist and a new channel would exceed `max_channels` (checked before anything
    /// is allocated, and again under `creating`), `ENOMEM` if the channel (or its queue)
    /// cannot be allocated. Everything is allocated before `creating` is taken.
    fn get_or_create(
        &self,
        id: ChannelId,
        message: Option<&MessageBytes<'_>>,
        polled: bool,
    ) -> Result<(&Channel, bool)> {
        // The acquire pairs with the release below: a full slot's last channel is in the index
        // by the time the count shows it, so the lookup finds a channel created meanwhile.
        if self.created.load(Ordering::Acquire) >= self.max_channels {
            return self
                .channels
                .get(id.get())
                .map(|c| (c, false))
                .ok_or(ENOSPC);
        }
        let waiters = if polled {
            Some(KBox::pin_init(WaitQueueHead::new(), user_memory())?)
        } else {
            None
        };
        let prepared =
            self.channels
                .prepare(id.get(), Channel::new(message, waiters), user_memory())?;
        let _creating = self.creating.lock();
        if let Some(channel) = self.channels.get(id.get()) {
            // `prepared` is dropped unused: its bucket holds an entry (this one's key is
            // there), so giving back its reservation, if it had one, changes nothing.
            return Ok((channel, false));
        }
        let created = self.created.load(Ordering::Relaxed);
        if created >= self.max_channels {
            // `prepared` is dropped unused, giving back its reservation: the slot is full for
            // good (channels are never removed), so no insert that shares it can succeed.
            return Err(ENOSPC);
        }
        let (channel, inserted) = self.channels.insert(prepared)?;
        if inserted {
            // INVARIANT: One more channel, inserted with `creating` held, within the limit
            // (`created < max_channels`, so the addition cannot wrap). The release publishes
            // the insertion to the check above.
            self.created
                .store(created.wrapping_add(1), Ordering::Release);
        }
        Ok((channel, inserted))
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
    /// Channels in use (created by a write or a poll).
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
/// bound channel is remembered in a lock-free [`LookupMemo`] that every use checks against
/// that id (a stale memo, left by a concurrent `ioctl`, only costs a lookup). The file holds
/// no message memory: closing it frees all it allocated.
///
/// # Invariants
///
/// `channel` is 0 (unbound) or a valid channel id. `last_seen` is 0 (nothing read since the
/// last bind) or [`seen`] of a channel id and the number of a message of it that a read on
/// this file copied.
pub(crate) struct OpenSlot {
    memo: LookupMemo<Channel>,
    slot: Arc<Slot>,
    channel: AtomicU32,
    last_seen: AtomicU64,
}

/// What a file remembers of the last message it read: its channel and the message's number
/// ([`Channel::current`]).
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
            memo: LookupMemo::new(slot.channels.clone()),
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
        self.memo.remember(id.get());
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
        self.memo.get(id.get())
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
        let mut buffer = MessageBuffer::new();
        let message = MessageBytes::from_user(source, len, &mut buffer)?;
        // A replacement wakes the channel's pollers (only this channel's) once the message is
        // published. A channel this write creates has none to wake: a poll of a channel that
        // does not exist creates it, so this write would have found it; a poll after the
        // insertion sees the message.
        let previous = match self.channel(id) {
            Some(channel) => channel.replace(&message, READABLE),
            None => match self.slot.get_or_create(id, Some(&message), false)? {
                (_, true) => 0,
                // Another file created it first: this write comes after that.
                (channel, false) => channel.replace(&message, READABLE),
            },
        };
        self.slot.count_write(message.len(), previous);
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
        self.slot.counters.add::<READS>(1);
        Ok(len)
    }

    /// The file's poll events; registers `table`, if it waits, on the bound channel's wait
    /// queue.
    ///
    /// Unbound: `EPOLLERR` (a read or write would fail with `EINVAL`; a later bind does not
    /// wake the poller). Bound: `EPOLLOUT | EPOLLWRNORM` (a write never waits), plus
    /// `EPOLLIN | EPOLLRDNORM` if the channel holds a message that this file has not read
    /// since it was bound. The first poll of a channel creates it if need be (without a
    /// message); the first poll that waits on it creates its wait queue (allocated before the
    /// channel when it creates both). Both are charged to the caller. If the channel or its
    /// queue cannot be created (`max_channels` reached, `ENOMEM`), `EPOLLERR`, and nothing is
    /// left allocated: a channel that does not exist still does not. The registration follows
    /// the channel bound at the time of the call: an epoll registration made before a re-bind
    /// still waits on the old channel's queue.
    pub(crate) fn poll<'a>(&'a self, mut table: PollTable<'a>) -> PollEvents {
        let Ok(id) = self.bound() else {
            return PollEvents::ERR;
        };
        let waits = table.will_wait();
        let channel = match self.channel(id) {
            Some(channel) => channel,
            None => match self.slot.get_or_create(id, None, waits) {
                Ok((channel, _)) => channel,
                Err(_) => return PollEvents::ERR,
            },
        };
        if waits {
            let Ok(queue) = channel.poll_queue(user_memory()) else {
                return PollEvents::ERR;
            };
            table.register_wait(queue);
        }
        // After registering (and the full barrier that follows it): a write that publishes its
        // message after this check finds the queue and wakes it.
        let unread = channel
            .current()
            .is_some_and(|sequence| seen(id, sequence) != self.last_seen.load(Ordering::Relaxed));
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
