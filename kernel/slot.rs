// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only index (lock-free lookups); a channel is
//! created by the first write to it and lives as long as the slot. An [`OpenSlot`] (one open
//! file) holds its channel id and remembers the channel itself, so that reads and writes on a
//! bound file take no lock and skip the index. Safe Rust only: the unsafe code lives in the
//! data structures (`message`, `channel_index`) and the kernel wrappers (`compat`).
#![forbid(unsafe_code)]

use crate::channel_index::{KeyedMap, MapCursor};
use crate::compat::{error::emsgsize, rcu, uaccess::copy_to_user_nofault};
use crate::max_channels;
use crate::message::{Message, MessageCell};
use crate::uapi::MAX_MESSAGE_LEN;
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    alloc::{flags, Flags},
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

/// Allocation flags for memory that a user's request makes the driver allocate: charged to
/// the caller's memory cgroup (`__GFP_ACCOUNT`) and without direct reclaim, so that at the
/// cgroup's `memory.max` the request fails with `ENOMEM` instead of invoking the OOM killer
/// (the memcg charge path only fails gracefully for non-blocking or `__GFP_RETRY_MAYFAIL`
/// requests, and 6.12's Rust `Flags` cannot express the latter). Also `__GFP_NOWARN`.
pub(crate) fn user_memory() -> Flags {
    (flags::GFP_KERNEL_ACCOUNT & !flags::GFP_KERNEL) | flags::GFP_NOWAIT
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

/// One message slot (one minor): its channels, created by their first write.
///
/// # Invariants
///
/// `channels` holds at most `reserved <= max_channels()` entries, each under its own id.
pub(crate) struct Slot {
    channels: Arc<KeyedMap<MessageCell>>,
    reserved: AtomicU32,
}

impl Slot {
    /// An empty slot.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            channels: Arc::pin_init(KeyedMap::new(), GFP_KERNEL)?,
            reserved: AtomicU32::new(0),
        })
    }

    /// Creates channel `id`, which a lookup just found missing, holding `message` (or, if
    /// another writer created it meanwhile, makes `message` its message).
    ///
    /// On error nothing changes: `ENOSPC` if a new channel would exceed `max_channels`,
    /// `ENOMEM` if it cannot be allocated.
    fn create(&self, id: ChannelId, message: KBox<Message>) -> Result {
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
            .get_or_insert(id.get(), MessageCell::new(message), user_memory())
        {
            Ok((_, None)) => Ok(()),
            Ok((channel, Some(ours))) => {
                // Another writer created the channel first; this write comes after its message.
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                channel.replace(ours.into_message());
                Ok(())
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
/// that id (a stale memo, left by a concurrent `ioctl`, only costs a lookup). The file holds
/// no message memory: closing it frees all it allocated.
///
/// # Invariants
///
/// `channel` is 0 (unbound) or a valid channel id.
pub(crate) struct OpenSlot {
    cursor: MapCursor<MessageCell>,
    slot: Arc<Slot>,
    channel: AtomicU32,
}

impl OpenSlot {
    /// A file of `slot`, not bound to any channel yet.
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        // INVARIANT: 0 means unbound.
        Self {
            cursor: MapCursor::new(slot.channels.clone()),
            slot,
            channel: AtomicU32::new(0),
        }
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
    fn channel(&self, id: ChannelId) -> Option<&MessageCell> {
        self.cursor.get(id.get())
    }

    /// Replaces the bound channel's message with the `len` bytes at `source` and returns
    /// `len`.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EMSGSIZE` (`len` not in 1..=128), `ENOMEM`,
    /// `EFAULT`, `ENOSPC` (a new channel beyond `max_channels`), `ENOMEM` (the new channel).
    /// The message is allocated before any lock is taken and no lock is held while user memory
    /// is read; on error the channel keeps its message.
    #[inline]
    pub(crate) fn write(&self, source: UserPtr, len: usize) -> Result<usize> {
        let id = self.bound()?;
        if !(1..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(emsgsize());
        }
        let message = Message::from_user(UserSlice::new(source, len).reader(), user_memory())?;
        match self.channel(id) {
            Some(channel) => channel.replace(message),
            None => self.slot.create(id, message)?,
        }
        Ok(len)
    }

    /// Copies the bound channel's message to the `len` bytes at `destination` and returns its
    /// length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EWOULDBLOCK` (no message), `ENOSPC` (`len` is
    /// too small; nothing is copied), `EFAULT`. Allocates nothing.
    #[inline]
    pub(crate) fn read(&self, destination: UserPtr, len: usize) -> Result<usize> {
        let id = self.bound()?;
        let channel = self.channel(id).ok_or(EAGAIN)?;
        let guard = rcu::read_lock();
        let message = channel.load(&guard).bytes();
        if len < message.len() {
            return Err(ENOSPC);
        }
        if copy_to_user_nofault(destination, message).is_ok() {
            return Ok(message.len());
        }
        // The destination is not mapped in right now: copy through the stack, so that the copy
        // to user memory may fault pages in (and sleep) after the critical section.
        let mut bounce = [0u8; MAX_MESSAGE_LEN];
        let bounce = bounce.get_mut(..message.len()).ok_or(EINVAL)?;
        for (to, from) in bounce.iter_mut().zip(message) {
            *to = *from;
        }
        drop(guard);
        UserSlice::new(destination, bounce.len())
            .writer()
            .write_slice(bounce)?;
        Ok(bounce.len())
    }
}
