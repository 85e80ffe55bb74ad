// SPDX-License-Identifier: GPL-2.0

//! A channel's record (`uapi::Record`: a sequence, a length and 128 bytes, in a page that user
//! space may map read-only) and the protocol the kernel writes and reads it with.
//!
//! The kernel is a record's only writer, under its channel's writer lock ([`store`]): the
//! sequence becomes odd, then (after a release fence) every word of the message and the
//! length are stored, then the sequence becomes even again with a release store. A reader
//! ([`load`]) loads the sequence with acquire, then the length and the words, then (after an
//! acquire fence) the sequence again; if both gave the same even value, what it loaded is one
//! message, whole. These are the orderings of the kernel's `write_seqcount_begin()`/`_end()`
//! (`smp_wmb()`, then a store that `smp_store_release()` orders) and `read_seqcount_begin()`/
//! `_retry()` (`smp_load_acquire()`-like, `smp_rmb()`), written as the C11 atomics that user
//! space's readers use on the same memory (`message_slot.h`), which on x86-64 and arm64 are
//! the same instructions. `kernel/DESIGN.md` ("Records mapped into user space") gives the
//! argument.
//!
//! Every access to a record is atomic, here and in user space, so none is a data race: safe
//! code only.
#![forbid(unsafe_code)]

use crate::abstractions::{
    error::emsgsize,
    uaccess::{copy_words_to_user, read_words_from_user},
};
use crate::uapi::{Record, MAX_MESSAGE_LEN, RECORD_WORDS};
use core::sync::atomic::{fence, Ordering};
use kernel::{prelude::*, uaccess::UserPtr};

/// A message as a record holds it: its length and [`RECORD_WORDS`] native-endian words, its
/// bytes in memory order (then, in a writer's copy, zeros). A writer's copy of the user's
/// bytes, or a reader's of a record, on the stack.
///
/// # Invariants
///
/// `len <= MAX_MESSAGE_LEN`, the size of `words`.
pub(crate) struct Message {
    len: u32,
    words: [u64; RECORD_WORDS],
}

impl Message {
    /// The `len` bytes at user address `source`, then zeros: `EMSGSIZE` unless `len` is
    /// 1..=`MAX_MESSAGE_LEN`, `EFAULT` if user memory cannot be read. User memory is read
    /// once, with no lock held.
    #[inline]
    pub(crate) fn from_user(source: UserPtr, len: usize) -> Result<Self> {
        if !(1..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(emsgsize());
        }
        let words = read_words_from_user(source, len)?;
        // INVARIANT: `len <= MAX_MESSAGE_LEN`.
        Ok(Self {
            len: len as u32,
            words,
        })
    }

    /// The message's length in bytes (0: no message).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Copies the message to user address `destination`: `EFAULT` unless all of it was
    /// copied (some may have been).
    #[inline]
    pub(crate) fn copy_to_user(&self, destination: UserPtr) -> Result {
        copy_words_to_user(destination, &self.words, self.len())
    }
}

/// Makes `message` `record`'s message (every word: the bytes past its length are zero) and
/// returns the length of the one it replaces (0 if none).
///
/// The caller holds the writer lock of the record's channel: it is the record's only writer,
/// and the record's sequence is even.
#[inline]
pub(crate) fn store(record: &Record, message: &Message) -> usize {
    let sequence = record.sequence.load(Ordering::Relaxed);
    record
        .sequence
        .store(sequence.wrapping_add(1), Ordering::Relaxed);
    // `smp_wmb()`: a reader that loads a word stored below also sees the odd sequence when it
    // loads the sequence after its acquire fence.
    fence(Ordering::Release);
    // Spelled out: the compiler would leave a loop of atomic stores rolled.
    let [to0, to1, to2, to3, to4, to5, to6, to7, to8, to9, to10, to11, to12, to13, to14, to15] =
        &record.message;
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15] = message.words;
    to0.store(w0, Ordering::Relaxed);
    to1.store(w1, Ordering::Relaxed);
    to2.store(w2, Ordering::Relaxed);
    to3.store(w3, Ordering::Relaxed);
    to4.store(w4, Ordering::Relaxed);
    to5.store(w5, Ordering::Relaxed);
    to6.store(w6, Ordering::Relaxed);
    to7.store(w7, Ordering::Relaxed);
    to8.store(w8, Ordering::Relaxed);
    to9.store(w9, Ordering::Relaxed);
    to10.store(w10, Ordering::Relaxed);
    to11.store(w11, Ordering::Relaxed);
    to12.store(w12, Ordering::Relaxed);
    to13.store(w13, Ordering::Relaxed);
    to14.store(w14, Ordering::Relaxed);
    to15.store(w15, Ordering::Relaxed);
    let previous = record.length.load(Ordering::Relaxed);
    record.length.store(message.len, Ordering::Relaxed);
    // `smp_store_release()`: a reader that loads this sequence sees every store above.
    record
        .sequence
        .store(sequence.wrapping_add(2), Ordering::Release);
    previous as usize
}

/// `record`'s message and its sequence, unless a write was in progress or overlapped the
/// loads (`None`: try again, or exclude writers and [`load_stable`]).
#[inline]
pub(crate) fn load(record: &Record) -> Option<(u32, Message)> {
    let start = record.sequence.load(Ordering::Acquire);
    if start & 1 != 0 {
        return None;
    }
    let message = load_words(record);
    // `smp_rmb()`: if a write's stores were loaded above, the load below sees its odd
    // sequence (or a later one).
    fence(Ordering::Acquire);
    (record.sequence.load(Ordering::Relaxed) == start).then_some((start, message))
}

/// `record`'s message and its sequence, for a caller that excludes writers (holds the writer
/// lock of the record's channel): nothing changes the record meanwhile.
#[inline]
pub(crate) fn load_stable(record: &Record) -> (u32, Message) {
    let sequence = record.sequence.load(Ordering::Relaxed);
    (sequence, load_words(record))
}

/// The sequence of `record`'s current message, if it has one: it changes with every write
/// (odd while one is in progress), and is the one [`load`] returns with that message.
#[inline]
pub(crate) fn sequence_of_message(record: &Record) -> Option<u32> {
    let sequence = record.sequence.load(Ordering::Acquire);
    // A length loaded after a later write began only comes with a message newer than
    // `sequence`.
    (record.length.load(Ordering::Relaxed) != 0).then_some(sequence)
}

/// The length and words of `record`, each loaded atomically (relaxed): one message only if no
/// write overlaps.
#[inline]
fn load_words(record: &Record) -> Message {
    let len = record.length.load(Ordering::Relaxed);
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15] = &record.message;
    let words = [
        w0.load(Ordering::Relaxed),
        w1.load(Ordering::Relaxed),
        w2.load(Ordering::Relaxed),
        w3.load(Ordering::Relaxed),
        w4.load(Ordering::Relaxed),
        w5.load(Ordering::Relaxed),
        w6.load(Ordering::Relaxed),
        w7.load(Ordering::Relaxed),
        w8.load(Ordering::Relaxed),
        w9.load(Ordering::Relaxed),
        w10.load(Ordering::Relaxed),
        w11.load(Ordering::Relaxed),
        w12.load(Ordering::Relaxed),
        w13.load(Ordering::Relaxed),
        w14.load(Ordering::Relaxed),
        w15.load(Ordering::Relaxed),
    ];
    // INVARIANT: The kernel never stores a length above `MAX_MESSAGE_LEN`; clamped all the
    // same, so that no value of the shared word breaks the invariant.
    Message {
        len: len.min(MAX_MESSAGE_LEN as u32),
        words,
    }
}
