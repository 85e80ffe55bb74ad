// SPDX-License-Identifier: GPL-2.0

//! A channel's message: immutable once published, replaced by swapping one pointer, freed
//! after an RCU grace period.
//!
//! A write allocates a new [`Message`], fills it straight from user space (reading user
//! memory once) and swaps it into the channel's [`MessageCell`]; the previous message is
//! freed with `kfree_rcu`, once every reader that may still be copying from it is done. A
//! reader copies the current message inside an RCU read-side critical section.
//!
//! A published message is never written, so a reader cannot see a torn message and needs no
//! retry loop; readers write no shared memory; a failed write never touches the channel; and
//! the memory held is exactly the channels' current messages (plus replaced ones until the
//! next grace period). Nothing is kept per open file.

use crate::compat::rcu;
use crate::uapi::MAX_MESSAGE_LEN;
use core::{
    mem::MaybeUninit,
    sync::atomic::{AtomicPtr, AtomicU32, Ordering},
};
use kernel::{alloc::Flags, bindings, prelude::*, types::Opaque, uaccess::UserSliceReader};

/// One message: 1..=[`MAX_MESSAGE_LEN`] bytes.
///
/// # Invariants
///
/// `1 <= len <= MAX_MESSAGE_LEN`, and `bytes[..len]` are initialised and never written again.
/// `rcu` is only used to free the message.
pub(crate) struct Message {
    /// Queues the message for `kfree_rcu`.
    rcu: Opaque<bindings::callback_head>,
    len: usize,
    /// The message's number in its channel, stamped by the [`MessageCell`] just before the
    /// message is published.
    seq: u32,
    bytes: [MaybeUninit<u8>; MAX_MESSAGE_LEN],
}

impl Message {
    /// A message holding all the bytes of `source`, allocated with `flags`: `EINVAL` unless
    /// they are 1..=[`MAX_MESSAGE_LEN`], `ENOMEM`, or `EFAULT` if user memory cannot be read.
    /// User memory is read once.
    #[inline]
    pub(crate) fn from_user(mut source: UserSliceReader, flags: Flags) -> Result<KBox<Self>> {
        let len = source.len();
        if len == 0 {
            return Err(EINVAL);
        }
        // Initialised in place, and the bytes not at all: `read_raw` fills those the message
        // uses.
        let mut message = KBox::init(
            init!(Self {
                rcu: Opaque::uninit(),
                len: 0,
                seq: 0,
                bytes: [const { MaybeUninit::uninit() }; MAX_MESSAGE_LEN],
            }),
            flags,
        )?;
        source.read_raw(message.bytes.get_mut(..len).ok_or(EINVAL)?)?;
        // INVARIANT: `read_raw` succeeded, so `bytes[..len]` are initialised; `len` is in range.
        message.len = len;
        Ok(message)
    }

    /// The message's number in its channel: the channel's first message is 1, and each
    /// replacement takes the next number (modulo 2^32; concurrent writers may publish theirs
    /// out of order). Two messages published one after the other in a channel always differ.
    #[inline]
    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    /// The message's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `bytes[..len]` are initialised and never written again (type invariant), and
        // `MaybeUninit<u8>` has the layout of `u8`.
        unsafe { core::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }
}

/// The current message of a channel: read under RCU without locks, replaced atomically.
///
/// # Invariants
///
/// `current` is non-null, comes from `KBox::<Message>::into_raw` and is owned by the cell.
/// A message the cell has given up is only freed after an RCU grace period.
pub(crate) struct MessageCell {
    current: AtomicPtr<Message>,
    /// The number stamped into the last message given to the cell (see [`Message::seq`]).
    /// Fits in the entry's padding: a channel-index entry stays 32 bytes (kmalloc-32).
    last_seq: AtomicU32,
}

// `MessageCell` is `Send` and `Sync` through its `AtomicPtr`, which is right: readers on any
// thread get `&Message` (bytes that nobody writes), and any thread may free kmalloc memory.

impl MessageCell {
    /// A cell holding `message`.
    pub(crate) fn new(mut message: KBox<Message>) -> Self {
        message.seq = 1;
        // INVARIANT: `into_raw` gives a non-null pointer, which the cell now owns.
        Self {
            current: AtomicPtr::new(KBox::into_raw(message)),
            last_seq: AtomicU32::new(1),
        }
    }

    /// The cell's message, owned again (the cell was never shared).
    pub(crate) fn into_message(self) -> KBox<Message> {
        let cell = core::mem::ManuallyDrop::new(self);
        // SAFETY: The cell owned `current`, from `KBox::into_raw` (type invariant), and is not
        // dropped, so ownership moves to the returned box.
        unsafe { KBox::from_raw(cell.current.load(Ordering::Relaxed)) }
    }

    /// Makes `message` the cell's message and returns the length of the previous one, which
    /// is freed after a grace period.
    #[inline]
    pub(crate) fn replace(&self, mut message: KBox<Message>) -> usize {
        // Only the numbers need to be distinct, not ordered with the publication: relaxed.
        message.seq = self
            .last_seq
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        // Release: the new message's bytes are visible before the pointer to it. Acquire: the
        // previous message was fully written before it is queued (through its `rcu` field).
        let previous = self.current.swap(KBox::into_raw(message), Ordering::AcqRel);
        // SAFETY: The cell owned `previous` until the swap and it is freed only below: it is
        // live and its `len` is never written after publication.
        let previous_len = unsafe { (*previous).len };
        // INVARIANT: The cell owns the new message; it gave up `previous`, freed below after a
        // grace period.
        // SAFETY: `previous` came from `KBox::into_raw` (kmalloc) and the cell owned it; the
        // swap unpublished it, so only readers that loaded it before, inside RCU read-side
        // critical sections begun before this call (`load` ties every `&Message` to a
        // guard), can still use it. `rcu` is inside it.
        unsafe { rcu::kvfree_call_rcu((*previous).rcu.get(), previous.cast()) };
        previous_len
    }

    /// The current message, valid while `guard`'s critical section lasts.
    #[inline]
    pub(crate) fn load<'a>(&'a self, _guard: &'a rcu::Guard) -> &'a Message {
        // SAFETY: `current` is a live message owned by the cell (type invariant), published by
        // the release in `new` or `replace` (paired with this acquire). A message given up later
        // is freed only after a grace period, which cannot end before `_guard`'s critical
        // section does; and it is never written while published or after.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }
}

impl Drop for MessageCell {
    fn drop(&mut self) {
        // SAFETY: The cell owns `current`, from `KBox::into_raw` (type invariant). No reader
        // can be using it: every `&Message` from `load` borrows the cell, which `&mut self`
        // excludes.
        drop(unsafe { KBox::from_raw(*self.current.get_mut()) });
    }
}
