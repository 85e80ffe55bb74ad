// SPDX-License-Identifier: GPL-2.0

//! Message slots: channels indexed by id, and the per-file binding to one of them.
//!
//! A [`Slot`] owns its channels in an insert-only map (lock-free lookups); a channel is created
//! by the first write to it and lives as long as the slot. An [`OpenSlot`] (one open file)
//! remembers its channel id and, once the channel exists, the channel itself, so that reads
//! and writes on a bound file skip the index entirely.

use crate::channel::{Channel, Message, MessageBuffer};
use crate::ffi::{max_channels, user_memory, InsertOnlyMap};
use core::{
    num::NonZeroU32,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    prelude::*,
    sync::{Arc, SpinLock},
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// A channel id: any non-zero `u32`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelId(NonZeroU32);

impl ChannelId {
    /// Validates the raw `ioctl` argument: `EINVAL` unless it is a non-zero `u32`.
    pub(crate) fn from_ioctl_arg(arg: usize) -> Result<Self> {
        let id = u32::try_from(arg).map_err(|_| EINVAL)?;
        NonZeroU32::new(id).map(Self).ok_or(EINVAL)
    }
}

/// One message slot (one minor): its channels, created by their first write.
///
/// # Invariants
///
/// `channels` holds at most `reserved <= max_channels()` entries.
#[pin_data]
pub(crate) struct Slot {
    #[pin]
    channels: InsertOnlyMap<Arc<Channel>>,
    reserved: AtomicU32,
}

impl Slot {
    /// An empty slot.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            channels <- InsertOnlyMap::new(),
            reserved: AtomicU32::new(0),
        })
    }

    /// The channel `id`, if a message was ever written to it.
    fn channel(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels.get(id.0.get()).map(Arc::from)
    }

    /// Replaces the message of channel `id`, creating the channel if needed, and returns it.
    ///
    /// On error nothing changes: `ENOSPC` if a new channel would exceed `max_channels`,
    /// `ENOMEM` if it cannot be allocated.
    fn store(&self, id: ChannelId, message: &Message) -> Result<Arc<Channel>> {
        if let Some(channel) = self.channel(id) {
            channel.store(message);
            return Ok(channel);
        }
        let limit = max_channels();
        // INVARIANT: A place is reserved before the channel is inserted and given back if it
        // is not.
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(1).filter(|&reserved| reserved <= limit)
            })
            .map_err(|_| ENOSPC)?;
        let inserted = Arc::pin_init(Channel::new(message), user_memory())
            .map_err(|_| ENOMEM)
            .and_then(|created| {
                self.channels
                    .get_or_insert(id.0.get(), created)
                    .map_err(|(error, _)| error)
            });
        match inserted {
            Ok((channel, None)) => Ok(channel.into()),
            Ok((channel, Some(_unused))) => {
                // Another writer created the channel first; this write comes after its message.
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                channel.store(message);
                Ok(channel.into())
            }
            Err(error) => {
                self.reserved.fetch_sub(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }
}

/// What an open file is bound to.
struct Binding {
    id: ChannelId,
    /// The channel, once it exists (cached so that reads and writes skip the index).
    channel: Option<Arc<Channel>>,
}

/// One open file of a slot.
///
/// Its binding is behind a spinlock that only calls on this file take (uncontended unless
/// threads share the file) and that is never held across a user copy or an allocation.
#[pin_data]
pub(crate) struct OpenSlot {
    slot: Arc<Slot>,
    #[pin]
    binding: SpinLock<Option<Binding>>,
}

impl OpenSlot {
    /// A file of `slot`, not bound to any channel yet.
    pub(crate) fn new(slot: Arc<Slot>) -> impl PinInit<Self> {
        pin_init!(Self {
            slot,
            binding <- kernel::new_spinlock!(None, "OpenSlot::binding"),
        })
    }

    /// Binds the file to channel `id`. Allocates nothing.
    pub(crate) fn bind(&self, id: ChannelId) {
        let channel = self.slot.channel(id);
        // The old binding is dropped after the lock is released.
        let old = self.binding.lock().replace(Binding { id, channel });
        drop(old);
    }

    /// Replaces the bound channel's message with `buf` and returns its length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EMSGSIZE`, `EFAULT`, `ENOSPC` (the slot holds
    /// `max_channels` channels), `ENOMEM`. User memory is read and the channel allocated
    /// without any lock held.
    pub(crate) fn write(&self, buf: UserSliceReader) -> Result<usize> {
        let mut space = MessageBuffer::new();
        let message = match Message::from_user(&mut space, buf) {
            Ok(message) => message,
            // An unbound file fails with `EINVAL` whatever the buffer.
            Err(error) => return Err(if self.is_bound() { error } else { EINVAL }),
        };
        let id = {
            let binding = self.binding.lock();
            let binding = binding.as_ref().ok_or(EINVAL)?;
            if let Some(channel) = &binding.channel {
                channel.store(message);
                return Ok(message.len());
            }
            binding.id
        };
        // Declared before the guard below, so that an unused `channel` is dropped unlocked.
        let channel = self.slot.store(id, message)?;
        let mut binding = self.binding.lock();
        if let Some(binding) = binding.as_mut() {
            if binding.id == id && binding.channel.is_none() {
                binding.channel = Some(channel);
            }
        }
        Ok(message.len())
    }

    /// Copies the bound channel's message into `buf` and returns its length.
    ///
    /// Errors, in order: `EINVAL` (not bound), `EWOULDBLOCK` (no message), `ENOSPC`, `EFAULT`.
    pub(crate) fn read(&self, buf: UserSliceWriter) -> Result<usize> {
        let mut space = MessageBuffer::new();
        let message = {
            let mut binding = self.binding.lock();
            let binding = binding.as_mut().ok_or(EINVAL)?;
            if binding.channel.is_none() {
                binding.channel = self.slot.channel(binding.id);
            }
            binding.channel.as_ref().ok_or(EAGAIN)?.load(&mut space)
        };
        message.to_user(buf)
    }

    fn is_bound(&self) -> bool {
        self.binding.lock().is_some()
    }
}
