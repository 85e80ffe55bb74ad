// SPDX-License-Identifier: GPL-2.0

//! A channel: the last message written to it, readable without locks.
//!
//! The message is guarded by a sequence lock built from atomics: writers serialise on a
//! spinlock and make the sequence odd while they store; readers copy the message with relaxed
//! atomic loads and retry if the sequence was odd or changed meanwhile. Readers therefore
//! never write shared memory (two readers of one channel do not slow each other down), never
//! see a torn message, and everything is safe Rust.

use crate::uapi::MAX_MESSAGE_LEN;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    prelude::*,
    sync::SpinLock,
    uaccess::{UserSliceReader, UserSliceWriter},
};

const WORD: usize = core::mem::size_of::<u64>();
const WORDS: usize = MAX_MESSAGE_LEN / WORD;

const _: () = assert!(MAX_MESSAGE_LEN <= u8::MAX as usize && MAX_MESSAGE_LEN % WORD == 0);

/// `EMSGSIZE`, which 6.12's `kernel::error::code` does not declare.
fn emsgsize() -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

/// A message buffer: up to `MAX_MESSAGE_LEN` bytes, as the words a channel stores.
type Words = [[u8; WORD]; WORDS];

/// One message: `1..=MAX_MESSAGE_LEN` arbitrary bytes, stored inline.
///
/// Messages are filled in place and passed by reference: on the fast paths the only copies of
/// the bytes are the user copy and the channel's word stores or loads.
///
/// # Invariants
///
/// `1 <= len <= MAX_MESSAGE_LEN`.
// Word-aligned, words first: the user copy and the word loads and stores are then aligned.
#[repr(C, align(8))]
pub(crate) struct Message {
    words: Words,
    len: u8,
}

impl Message {
    /// Copies a whole message from user space into `buf` and returns it: `EMSGSIZE` for a
    /// length of 0 or above the maximum, `EFAULT` for a bad buffer. User memory is read once.
    pub(crate) fn from_user(buf: &mut MessageBuffer, mut reader: UserSliceReader) -> Result<&Self> {
        let len = reader.len();
        if len == 0 || len > MAX_MESSAGE_LEN {
            return Err(emsgsize());
        }
        reader.read_slice(&mut buf.0.words.as_flattened_mut()[..len])?;
        // INVARIANT: `len` was checked to be in `1..=MAX_MESSAGE_LEN`.
        buf.0.len = len as u8;
        Ok(&buf.0)
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Copies the message to user space and returns its length: `ENOSPC` (before touching user
    /// memory) if the buffer is too small, `EFAULT` for a bad buffer.
    pub(crate) fn to_user(&self, mut writer: UserSliceWriter) -> Result<usize> {
        let bytes = &self.words.as_flattened()[..self.len().min(MAX_MESSAGE_LEN)];
        if writer.len() < bytes.len() {
            return Err(ENOSPC);
        }
        writer.write_slice(bytes)?;
        Ok(bytes.len())
    }

    /// The words holding the message (the last one padded with whatever followed it).
    fn used_words(&self) -> &[[u8; WORD]] {
        &self.words[..self.len().div_ceil(WORD).min(WORDS)]
    }
}

/// Stack space for a [`Message`], filled by [`Message::from_user`] or [`Channel::load`].
pub(crate) struct MessageBuffer(Message);

impl MessageBuffer {
    /// Space for one message.
    pub(crate) const fn new() -> Self {
        Self(Message {
            words: [[0; WORD]; WORDS],
            len: 1,
        })
    }
}

/// A channel holding a message.
///
/// # Invariants
///
/// `sequence` is odd exactly while a writer holding `writer` is storing; when it is even,
/// `len` and the first `len` bytes of `words` are one message written by a single `store`,
/// and `1 <= len <= MAX_MESSAGE_LEN`.
#[pin_data]
pub(crate) struct Channel {
    #[pin]
    writer: SpinLock<()>,
    sequence: AtomicU32,
    id: u32,
    len: AtomicU8,
    words: [AtomicU64; WORDS],
}

impl Channel {
    /// Channel `id`, holding `message`.
    pub(crate) fn new(id: u32, message: &Message) -> impl PinInit<Self> + '_ {
        // INVARIANT: The sequence is even and the stored message is whole.
        let mut words = [const { AtomicU64::new(0) }; WORDS];
        for (word, value) in words.iter_mut().zip(message.used_words()) {
            *word.get_mut() = u64::from_ne_bytes(*value);
        }
        pin_init!(Self {
            writer <- kernel::new_spinlock!((), "Channel::writer"),
            sequence: AtomicU32::new(0),
            id,
            len: AtomicU8::new(message.len),
            words,
        })
    }

    /// The channel's id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Replaces the message.
    pub(crate) fn store(&self, message: &Message) {
        let _writer = self.writer.lock();
        let sequence = self.sequence.load(Ordering::Relaxed);
        // INVARIANT: Odd while storing; only the holder of `writer` changes `sequence`.
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd sequence before the data stores (pairs with `load`'s acquire fence).
        fence(Ordering::Release);
        self.len.store(message.len, Ordering::Relaxed);
        for (word, value) in self.words.iter().zip(message.used_words()) {
            word.store(u64::from_ne_bytes(*value), Ordering::Relaxed);
        }
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of the message, made in `buf`.
    ///
    /// Copies to kernel memory only, so a concurrent `store` can neither tear the copy nor
    /// wait for a user copy.
    pub(crate) fn load<'a>(&self, buf: &'a mut MessageBuffer) -> &'a Message {
        let message = &mut buf.0;
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let len = self.len.load(Ordering::Relaxed);
            for (word, stored) in message.words.iter_mut().zip(&self.words) {
                *word = stored.load(Ordering::Relaxed).to_ne_bytes();
            }
            // Orders the data loads before re-reading the sequence.
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                // INVARIANT: The sequence was even and unchanged, so no store overlapped the
                // copy and `len` belongs to the copied message (type invariant of `Channel`).
                message.len = len;
                return message;
            }
        }
    }
}
