// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only map (lock-free lookups); a channel is created
//! by the first write to it and lives as long as the slot. An [`OpenSlot`] (one open file)
//! holds its channel id and remembers the channel itself, so that reads and writes on a bound
//! file take no lock and skip the index.

use crate::channel::{check_message_len, Channel};
use crate::ffi::{
    max_channels, user_memory, BufferPool, KeyedMap, MapCursor, MessageCell, SpareBuffer,
    SpareHolder, UserDestination, UserSource,
};
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{prelude::*, sync::Arc};

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
    pub(crate) fn get(self) -> u32 {
        self.0.get()
    }
}

/// One message slot (one minor): its channels, created by their first write, and the pool of
/// message buffers its channels and files share.
///
/// # Invariants
///
/// `channels` holds at most `reserved <= max_channels()` entries, each under its own id.
pub(crate) struct Slot {
    channels: Arc<KeyedMap<Channel>>,
    buffers: Arc<BufferPool>,
    reserved: AtomicU32,
}

impl Slot {
    /// An empty slot.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            channels: Arc::pin_init(KeyedMap::new(), GFP_KERNEL)?,
            buffers: Arc::pin_init(BufferPool::new(), GFP_KERNEL)?,
            reserved: AtomicU32::new(0),
        })
    }

    /// Creates channel `id`, which a lookup just found missing, holding the message filled
    /// into `spare` (or, if another writer created it meanwhile, stores the message there).
    ///
    /// On error nothing changes: `ENOSPC` if a new channel would exceed `max_channels`,
    /// `ENOMEM` if it cannot be allocated.
    fn create(&self, id: ChannelId, spare: &mut SpareBuffer<'_>) -> Result {
        let limit = max_channels();
        // INVARIANT: A place is reserved before the channel is inserted and given back if it
        // is not.
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(1).filter(|&reserved| reserved <= limit)
            })
            .map_err(|_| ENOSPC)?;
        let inserted = MessageCell::new(&self.buffers, spare, user_memory()).and_then(|message| {
            self.channels
                .get_or_insert(id.get(), Channel::new(message), user_memory())
        });
        match inserted {
            Ok((_, true)) => Ok(()),
            Ok((channel, false)) => {
                // Another writer created the channel first; this write comes after its message.
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                channel.store(spare)
            }
            Err(error) => {
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }
}

/// One open file of a slot.
///
/// Reads and writes take no per-file lock: the binding is an atomic channel id, and the
/// bound channel is remembered in a lock-free [`MapCursor`] that every use checks against
/// that id (a stale memo, left by a concurrent `ioctl`, only costs a lookup). A write fills
/// the file's spare buffer and swaps it into the channel (see [`crate::channel`]).
///
/// # Invariants
///
/// `channel` is 0 (unbound) or a valid channel id.
pub(crate) struct OpenSlot {
    slot: Arc<Slot>,
    channel: AtomicU32,
    cursor: MapCursor<Channel>,
    spare: SpareHolder,
}

impl OpenSlot {
    /// A file of `slot`, not bound to any channel yet, with a spare buffer for its writes.
    pub(crate) fn new(slot: Arc<Slot>) -> Result<Self> {
        // INVARIANT: 0 means unbound.
        Ok(Self {
            cursor: MapCursor::new(slot.channels.clone()),
            spare: SpareHolder::new(slot.buffers.clone(), user_memory())?,
            slot,
            channel: AtomicU32::new(0),
        })
    }

    /// Binds the file to channel `id`. Allocates nothing.
    pub(crate) fn bind(&self, id: ChannelId) {
        // INVARIANT: `id` is non-zero.
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

    /// Replaces the bound channel's message with the one in `source` and returns its length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EMSGSIZE`, `EFAULT`, `ENOSPC` (the slot holds
    /// `max_channels` channels), `ENOMEM`. No lock is held while user memory is read.
    #[inline]
    pub(crate) fn write(&self, source: UserSource) -> Result<usize> {
        let id = self.bound()?;
        let len = check_message_len(&source)?;
        let mut spare = self.spare.take(user_memory())?;
        let stored = spare
            .fill_from_user(source)
            .and_then(|()| match self.channel(id) {
                Some(channel) => channel.store(&mut spare),
                None => self.slot.create(id, &mut spare),
            });
        self.spare.give_back(spare);
        stored.map(|()| len)
    }

    /// Copies the bound channel's message into `destination` and returns its length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EWOULDBLOCK` (no message), `ENOSPC`, `EFAULT`.
    #[inline]
    pub(crate) fn read(&self, destination: UserDestination) -> Result<usize> {
        let id = self.bound()?;
        self.channel(id).ok_or(EAGAIN)?.load(destination)
    }
}
