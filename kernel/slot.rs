// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only index (lock-free lookups), with the pages of
//! their records; a channel is created (without a message) by the first write to it, poll of
//! it or mapping of it, and lives as long as the slot. An [`OpenSlot`] (one open file) holds
//! its channel id and remembers the channel itself, so that reads and writes on a bound file
//! take no lock and skip the index.
//! Safe Rust only: the unsafe code lives in the data structures (`channel`, `channel_index`)
//! and the kernel wrappers (`abstractions`).
#![forbid(unsafe_code)]

use crate::abstractions::{
    alloc::__GFP_RETRY_MAYFAIL,
    percpu::PerCpuCounters,
    poll::{PollEvents, PollTable, WaitQueueHead},
    vma::{flags as vma_flags, pgoff, VmaNew},
};
use crate::channel::{self, Channel, ChannelMap};
use crate::channel_index::{HashedChainMap, LookupMemo};
use crate::record::Message;
use crate::record_pages::RecordPages;
use crate::uapi::Statistic;
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    alloc::{flags, Flags},
    bindings::PAGE_SIZE,
    prelude::*,
    sync::Arc,
    uaccess::UserPtr,
};

/// Allocation flags for memory that a user's request makes the driver allocate (a new
/// channel, an open file, a channel's wait queue, index nodes): charged to the caller's
/// memory cgroup (`GFP_KERNEL_ACCOUNT`), reclaiming and retrying like any allocation a user
/// causes (a cgroup at its limit full of reclaimable memory still gets its channel), but
/// failing with `ENOMEM` once reclaim makes no progress instead of invoking the OOM killer
/// (`__GFP_RETRY_MAYFAIL`, which the memcg charge path honours too), and without a warning
/// (`__GFP_NOWARN`: a user can make it fail at will). May sleep: never used under a lock.
pub(crate) fn user_allocation_flags() -> Flags {
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
/// only inserted with the records' lock (`channels.context().lock()`) held.
#[pin_data]
pub(crate) struct Slot {
    /// The channels, and the pages of their records. The records' lock serialises the creation
    /// of channels (never held by a read, an overwrite or a poll of an existing channel), so
    /// that the check against `max_channels` and the insertion are one step: a writer that
    /// loses the race to create a channel overwrites it, even at the limit.
    channels: Arc<ChannelMap>,
    /// Channels in `channels` (written with the records' lock held, read without).
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
            channels: Arc::pin_init(HashedChainMap::new(RecordPages::new()), GFP_KERNEL)?,
            created: AtomicU32::new(0),
            max_channels,
            counters: PerCpuCounters::new(GFP_KERNEL)?,
            open_files: AtomicU32::new(0),
        })
    }

    /// `statistic` of the slot `slot` of a device whose slots hold up to `max_channels`
    /// channels, or (`None`) of a slot no file has opened yet, whose counts are all 0. Each
    /// value is read on its own: a snapshot while the slot is in use, exact when it is idle.
    /// The one place that says what each [`Statistic`] counts.
    pub(crate) fn statistic(slot: Option<&Self>, max_channels: u32, statistic: Statistic) -> u64 {
        let Some(slot) = slot else {
            return match statistic {
                Statistic::MaxChannels => max_channels.into(),
                _ => 0,
            };
        };
        match statistic {
            Statistic::Channels => slot.created.load(Ordering::Relaxed).into(),
            Statistic::Bytes => {
                // Each write adds its length less the replaced one's on its own CPU, after
                // the replacement, and the sum reads the CPUs one by one: while writes run, it
                // may see a replacement's subtraction without the addition of the write it
                // replaced (the true total is then the sum plus a pending addition). Such a
                // sum is below zero as a signed value; it shows as 0, never as a wrapped
                // `u64`.
                let bytes = slot.counters.sum::<BYTES>();
                if i64::try_from(bytes).is_ok() {
                    bytes
                } else {
                    0
                }
            }
            Statistic::Writes => slot.counters.sum::<WRITES>(),
            Statistic::Reads => slot.counters.sum::<READS>(),
            Statistic::OpenFiles => slot.open_files.load(Ordering::Relaxed).into(),
            Statistic::MaxChannels => slot.max_channels.into(),
        }
    }

    /// Counts a successful write of `len` bytes that replaced a message of `previous` bytes
    /// (0: created the channel).
    #[inline]
    fn count_write(&self, len: usize, previous: usize) {
        self.counters
            .add_both::<WRITES, BYTES>(1, (len as u64).wrapping_sub(previous as u64));
    }

    /// Channel `id`, which a lookup just found missing, created now without a message (with
    /// its pollers' wait queue if `polled`), unless another file created it meanwhile.
    ///
    /// Errors, in order (nothing changes, nothing stays allocated): `ENOSPC` if the channel
    /// does not exist and a new channel would exceed `max_channels` (checked before anything
    /// is allocated, and again under the records' lock), `ENOMEM` if the channel (its entry,
    /// its queue, its record's page) cannot be allocated. Everything is allocated before the
    /// records' lock is taken; a page for the record is allocated only by the channel whose
    /// record starts it.
    fn get_or_create(&self, id: ChannelId, polled: bool) -> Result<&Channel> {
        // The acquire pairs with the release below: a full slot's last channel is in the index
        // by the time the count shows it, so the lookup finds a channel created meanwhile.
        if self.created.load(Ordering::Acquire) >= self.max_channels {
            return self.channels.get(id.get()).ok_or(ENOSPC);
        }
        let flags = user_allocation_flags();
        let waiters = if polled {
            Some(KBox::pin_init(WaitQueueHead::new(), flags)?)
        } else {
            None
        };
        let prepared = self.channels.prepare(id.get(), flags)?;
        let records = self.channels.context();
        // The records given out so far, as of now: the count of channels (each has one).
        let mut page = records.prepare(self.created.load(Ordering::Relaxed), flags)?;
        loop {
            let mut cursor = records.lock();
            if let Some(channel) = self.channels.get(id.get()) {
                // `prepared` is dropped unused: its bucket holds an entry (this one's key is
                // there), so giving back its reservation, if it had one, changes nothing.
                return Ok(channel);
            }
            let created = self.created.load(Ordering::Relaxed);
            if created >= self.max_channels {
                // `prepared` is dropped unused, giving back its reservation: the slot is full
                // for good (channels are never removed), so no insert that shares it can
                // succeed.
                return Err(ENOSPC);
            }
            let Some(record) = cursor.give_out(&mut page)? else {
                // Other files created channels since the page was prepared: the next record
                // starts a page that does not exist yet. Allocate it without the lock.
                let next = cursor.next_index();
                drop(cursor);
                page = records.prepare(next, flags)?;
                continue;
            };
            let (channel, inserted) =
                channel::create(&self.channels, record, id.get(), prepared, waiters)?;
            if inserted {
                // INVARIANT: One more channel, inserted with the records' lock held, within the
                // limit (`created < max_channels`, so the addition cannot wrap). The release
                // publishes the insertion to the check above.
                self.created
                    .store(created.wrapping_add(1), Ordering::Release);
            }
            return Ok(channel);
        }
    }
}

/// Indices of a slot's per-CPU counters: successful writes, successful reads, and the bytes
/// of the channels' current messages (each write adds its length less the replaced one's).
const WRITES: usize = 0;
const READS: usize = 1;
const BYTES: usize = 2;
const COUNTERS: usize = 3;

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
    memo: LookupMemo<Channel, RecordPages>,
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

    /// Channel `id`: [`OpenSlot::channel`], or created now without a message (with its
    /// pollers' wait queue if `polled`) if it does not exist ([`Slot::get_or_create`]: `ENOSPC`,
    /// `ENOMEM`).
    #[inline]
    fn channel_or_create(&self, id: ChannelId, polled: bool) -> Result<&Channel> {
        match self.channel(id) {
            Some(channel) => Ok(channel),
            None => self.slot.get_or_create(id, polled),
        }
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
        let message = Message::from_user(source, len)?;
        // A replacement wakes the channel's pollers (only this channel's) once the message is
        // published; a channel this write creates is created without a message, and then
        // written like any other.
        let channel = self.channel_or_create(id, false)?;
        let previous = channel.replace(&message, READABLE);
        self.slot.count_write(message.len(), previous);
        Ok(message.len())
    }

    /// Copies the bound channel's message to the `len` bytes at `destination` and returns its
    /// length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EWOULDBLOCK` (no message), `ENOSPC` (`len` is
    /// too small; nothing is copied), `EFAULT`. Allocates nothing, takes no lock (unless it
    /// meets a write), never waits for a message. The message is loaded onto the stack first,
    /// whole, and copied to user memory afterwards, with no lock held.
    #[inline]
    pub(crate) fn read(&self, destination: UserPtr, len: usize) -> Result<usize> {
        let id = self.bound()?;
        let channel = self.channel(id).ok_or(EAGAIN)?;
        channel.read(|sequence, message| {
            if message.len() == 0 {
                return Err(EAGAIN);
            }
            if message.len() > len {
                return Err(ENOSPC);
            }
            message.copy_to_user(destination)?;
            // INVARIANT: This read copied message `sequence` of channel `id`.
            self.last_seen.store(seen(id, sequence), Ordering::Relaxed);
            self.slot.counters.add::<READS>(1);
            Ok(message.len())
        })
    }

    /// The bound channel, created (without a message) if it does not exist yet.
    ///
    /// Errors: `EINVAL` (not bound), `ENOSPC` (a new channel beyond `max_channels`), `ENOMEM`
    /// (a new channel).
    fn bound_channel(&self) -> Result<&Channel> {
        self.channel_or_create(self.bound()?, false)
    }

    /// The offset of the bound channel's record in a mapping of it (`MSG_SLOT_RECORD_OFFSET`),
    /// creating the channel (without a message) if need be. Errors: those of mapping it but
    /// the mapping's own.
    pub(crate) fn record_offset(&self) -> Result<usize> {
        Ok(self.bound_channel()?.record_offset())
    }

    /// Maps the page of the bound channel's record into `vma` (`mmap`), read-only, creating the
    /// channel (without a message) if need be.
    ///
    /// Errors, in order (nothing changes): `EINVAL` if the mapping is not one page at offset 0
    /// or not shared (`MAP_PRIVATE`); `EPERM` if it is writable or executable; `EINVAL` (not
    /// bound), `ENOSPC` (a new channel beyond `max_channels`), `ENOMEM` (a new channel); and
    /// those of inserting the page. The mapping may never become writable or executable
    /// (`mprotect` fails with `EACCES`) nor grow; it keeps showing this channel's page after
    /// the file is re-bound or closed.
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        if pgoff(vma) != 0 || vma.end().wrapping_sub(vma.start()) != PAGE_SIZE {
            return Err(EINVAL);
        }
        if vma.flags() & vma_flags::MAYSHARE == 0 {
            return Err(EINVAL);
        }
        if vma.try_clear_maywrite().is_err() || vma.try_clear_mayexec().is_err() {
            return Err(EPERM);
        }
        vma.set_dontexpand();
        let channel = self.bound_channel()?;
        vma.set_mixedmap()
            .vm_insert_page(vma.start(), &channel.record_page())
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
        let Ok(channel) = self.channel_or_create(id, waits) else {
            return PollEvents::ERR;
        };
        if waits {
            let Ok(queue) = channel.poll_queue(user_allocation_flags()) else {
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
