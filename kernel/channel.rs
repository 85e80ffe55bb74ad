// SPDX-License-Identifier: GPL-2.0

//! A channel: the last message written to it, readable without locks.
//!
//! The message is guarded by a sequence lock built from atomics: writers serialise on a
//! spinlock and make the sequence odd while they store; readers copy the message with relaxed
//! atomic loads and retry if the sequence was odd or changed meanwhile. Readers therefore
//! never write shared memory (two readers of one channel do not slow each other down), never
//! see a torn message, and everything is safe Rust.

use crate::ffi::{Word, WordBuffer, WORD};
use crate::uapi::MAX_MESSAGE_LEN;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    prelude::*,
    sync::SpinLock,
    uaccess::{UserSliceReader, UserSliceWriter},
};

const WORDS: usize = MAX_MESSAGE_LEN / WORD;

const _: () = assert!(MAX_MESSAGE_LEN <= u8::MAX as usize && MAX_MESSAGE_LEN % WORD == 0);

/// `EMSGSIZE`, which 6.12's `kernel::error::code` does not declare.
fn emsgsize() -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

/// Stack space for one message, filled by [`Message::from_user`] or [`Channel::load`]
/// without being zeroed first.
pub(crate) struct MessageBuffer(WordBuffer<WORDS>);

impl MessageBuffer {
    /// Space for one message.
    pub(crate) const fn new() -> Self {
        Self(WordBuffer::new())
    }
}

/// One message: `1..=MAX_MESSAGE_LEN` arbitrary bytes, held in a [`MessageBuffer`].
///
/// On the fast paths the only copies of the bytes are the user copy and the channel's word
/// stores or loads.
///
/// # Invariants
///
/// `1 <= len <= MAX_MESSAGE_LEN` and `words` holds `len.div_ceil(WORD)` words, the message's
/// bytes first.
pub(crate) struct Message<'a> {
    words: &'a [Word],
    len: u8,
}

impl<'a> Message<'a> {
    /// Copies a whole message from user space into `buf` and returns it: `EMSGSIZE` for a
    /// length of 0 or above the maximum, `EFAULT` for a bad buffer. User memory is read once.
    #[inline]
    pub(crate) fn from_user(
        buf: &'a mut MessageBuffer,
        mut reader: UserSliceReader,
    ) -> Result<Self> {
        let len = reader.len();
        if len == 0 || len > MAX_MESSAGE_LEN {
            return Err(emsgsize());
        }
        buf.0.read_user(&mut reader, len)?;
        // INVARIANT: `len` was checked to be in `1..=MAX_MESSAGE_LEN`, and `read_user` filled
        // `len.div_ceil(WORD)` words with it.
        Ok(Self {
            words: buf.0.words(),
            len: len as u8,
        })
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Copies the message to user space and returns its length: `ENOSPC` (before touching user
    /// memory) if the buffer is too small, `EFAULT` for a bad buffer.
    #[inline]
    pub(crate) fn to_user(&self, mut writer: UserSliceWriter) -> Result<usize> {
        let bytes = self.words.as_flattened();
        let bytes = &bytes[..self.len().min(bytes.len())];
        if writer.len() < bytes.len() {
            return Err(ENOSPC);
        }
        writer.write_slice(bytes)?;
        Ok(bytes.len())
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
    pub(crate) fn new(id: u32, message: &Message<'_>) -> impl PinInit<Self> {
        // INVARIANT: The sequence is even and the stored message is whole.
        let len = message.len;
        let mut words = [const { AtomicU64::new(0) }; WORDS];
        for (word, value) in words.iter_mut().zip(message.words) {
            *word.get_mut() = u64::from_ne_bytes(*value);
        }
        pin_init!(Self {
            writer <- kernel::new_spinlock!((), "Channel::writer"),
            sequence: AtomicU32::new(0),
            id,
            len: AtomicU8::new(len),
            words,
        })
    }

    /// The channel's id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Replaces the message.
    #[inline]
    pub(crate) fn store(&self, message: &Message<'_>) {
        let _writer = self.writer.lock();
        let sequence = self.sequence.load(Ordering::Relaxed);
        // INVARIANT: Odd while storing; only the holder of `writer` changes `sequence`.
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd sequence before the data stores (pairs with `load`'s acquire fence).
        fence(Ordering::Release);
        self.len.store(message.len, Ordering::Relaxed);
        for (word, value) in self.words.iter().zip(message.words) {
            word.store(u64::from_ne_bytes(*value), Ordering::Relaxed);
        }
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of the message, made in `buf`.
    ///
    /// Copies to kernel memory only, so a concurrent `store` can neither tear the copy nor
    /// wait for a user copy.
    #[inline]
    pub(crate) fn load<'a>(&self, buf: &'a mut MessageBuffer) -> Message<'a> {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let len = self.len.load(Ordering::Relaxed);
            buf.0.fill(usize::from(len).div_ceil(WORD), |i| {
                self.words[i].load(Ordering::Relaxed).to_ne_bytes()
            });
            // Orders the data loads before re-reading the sequence.
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                // INVARIANT: The sequence was even and unchanged, so no store overlapped the
                // copy: `1 <= len <= MAX_MESSAGE_LEN` and `buf` holds its `len.div_ceil(WORD)`
                // words (type invariant of `Channel`).
                return Message {
                    words: buf.0.words(),
                    len,
                };
            }
        }
    }
}
