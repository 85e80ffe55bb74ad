// SPDX-License-Identifier: GPL-2.0

//! Message slots and their channels, in safe Rust.
//!
//! A [`Slot`] maps channel ids to the last [`Message`] written there. A write copies the user
//! buffer into a [`Message`] on the stack before any lock is taken, allocates a tree node (if
//! the channel is new) also before the lock, then replaces the message under the slot's lock;
//! a read copies the message out under the lock and touches user memory only after unlocking.
//! Either way a reader sees one whole message, and a failed write changes nothing.

use crate::uapi::MAX_MESSAGE_LEN;
use core::num::NonZeroU32;
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    prelude::*,
    rbtree::{Entry, RBTree, RBTreeNodeReservation},
    sync::SpinLock,
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// `EMSGSIZE`, which 6.12's `kernel::error::code` does not declare.
fn emsgsize() -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

/// A channel id: any non-zero `u32`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ChannelId(NonZeroU32);

impl ChannelId {
    /// Validates the raw `ioctl` argument: `EINVAL` unless it is a non-zero `u32`.
    pub(crate) fn from_ioctl_arg(arg: usize) -> Result<Self> {
        let id = u32::try_from(arg).map_err(|_| EINVAL)?;
        NonZeroU32::new(id).map(Self).ok_or(EINVAL)
    }

    /// The id, or `None` for the unbound marker 0.
    pub(crate) fn from_raw(id: u32) -> Option<Self> {
        NonZeroU32::new(id).map(Self)
    }

    /// The raw id (never 0).
    pub(crate) fn get(self) -> u32 {
        self.0.get()
    }
}

/// One message: `1..=MAX_MESSAGE_LEN` arbitrary bytes, stored inline.
///
/// # Invariants
///
/// `1 <= len <= MAX_MESSAGE_LEN`.
#[derive(Clone)]
pub(crate) struct Message {
    len: u8,
    bytes: [u8; MAX_MESSAGE_LEN],
}

const _: () = assert!(MAX_MESSAGE_LEN <= u8::MAX as usize);

impl Message {
    /// Copies a whole message from user space; `EMSGSIZE` for a length of 0 or above the
    /// maximum, `EFAULT` for a bad buffer. User memory is read once.
    pub(crate) fn from_user(mut reader: UserSliceReader) -> Result<Self> {
        let len = reader.len();
        if len == 0 || len > MAX_MESSAGE_LEN {
            return Err(emsgsize());
        }
        let mut bytes = [0u8; MAX_MESSAGE_LEN];
        reader.read_slice(&mut bytes[..len])?;
        // INVARIANT: `len` was checked to be in `1..=MAX_MESSAGE_LEN`.
        Ok(Self {
            len: len as u8,
            bytes,
        })
    }

    /// The message bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Copies the message to user space and returns its length: `ENOSPC` (before touching user
    /// memory) if the buffer is too small, `EFAULT` for a bad buffer.
    pub(crate) fn to_user(&self, mut writer: UserSliceWriter) -> Result<usize> {
        let bytes = self.as_bytes();
        if writer.len() < bytes.len() {
            return Err(ENOSPC);
        }
        writer.write_slice(bytes)?;
        Ok(bytes.len())
    }
}

/// One message slot (one minor): its channels and their last messages.
#[pin_data]
pub(crate) struct Slot {
    #[pin]
    channels: SpinLock<RBTree<ChannelId, Message>>,
}

impl Slot {
    /// An empty slot.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            channels <- kernel::new_spinlock!(RBTree::new(), "Slot::channels"),
        })
    }

    /// Replaces the message of `channel`. On error (`ENOMEM`) the old message is untouched.
    pub(crate) fn store(&self, channel: ChannelId, message: Message) -> Result {
        if let Some(stored) = self.channels.lock().get_mut(&channel) {
            *stored = message;
            return Ok(());
        }
        // A new channel: allocate its node without holding the lock. Declared before the guard,
        // an unused reservation (another writer created the channel meanwhile) is freed after
        // the lock is released.
        let reservation = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut channels = self.channels.lock();
        match channels.entry(channel) {
            Entry::Occupied(mut entry) => *entry.get_mut() = message,
            Entry::Vacant(entry) => {
                entry.insert(message, reservation);
            }
        }
        Ok(())
    }

    /// A copy of the last message of `channel`; `EWOULDBLOCK` if none was written.
    pub(crate) fn load(&self, channel: ChannelId) -> Result<Message> {
        self.channels.lock().get(&channel).cloned().ok_or(EAGAIN)
    }
}
