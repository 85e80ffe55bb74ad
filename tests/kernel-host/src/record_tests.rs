// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/record.rs`: a message read from user memory ([`Message::from_user`]: its
//! errors), and the sequence protocol a record is written ([`record::store`]) and read
//! ([`record::load`], [`record::load_stable`], [`record::sequence_of_message`]) with.

use crate::{
    abstractions::uaccess::user_ptr,
    record::{self, Message},
    uapi::{Record, MAX_MESSAGE_LEN, RECORD_WORDS},
};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::{
    error::code::{EFAULT, EMSGSIZE},
    uaccess::UserPtr,
};

/// A user address in the unmapped first page.
pub(crate) fn bad_address() -> UserPtr {
    UserPtr::from_ptr(16 as *mut _)
}

/// A message of `len` bytes that differs from its neighbours in every byte.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// `bytes` as a message read from user memory.
pub(crate) fn message(bytes: &[u8]) -> Message {
    Message::from_user(user_ptr(bytes.as_ptr()), bytes.len()).expect("a valid message")
}

/// `message`'s bytes, as a read copies them to user memory (checking that the copy writes no
/// byte past them).
pub(crate) fn bytes_of(message: &Message) -> Vec<u8> {
    let mut buffer = vec![0xaa; MAX_MESSAGE_LEN + 8];
    message
        .copy_to_user(user_ptr(buffer.as_mut_ptr()))
        .expect("a valid address");
    assert!(
        buffer[message.len()..].iter().all(|&byte| byte == 0xaa),
        "copied past the message: {buffer:x?}"
    );
    buffer.truncate(message.len());
    buffer
}

/// A record with no message, as a channel gets it.
fn empty_record() -> Box<Record> {
    Box::new(Record {
        sequence: AtomicU32::new(0),
        length: AtomicU32::new(0),
        message: [const { AtomicU64::new(0) }; RECORD_WORDS],
    })
}

/// The bytes of `record`'s message words, in memory order, all of them.
pub(crate) fn record_bytes(record: &Record) -> Vec<u8> {
    record
        .message
        .iter()
        .flat_map(|word| word.load(Ordering::Relaxed).to_ne_bytes())
        .collect()
}

#[test]
fn a_message_is_read_from_user_memory_once_with_its_length() {
    for len in [1, 2, 7, 8, 9, 64, MAX_MESSAGE_LEN - 1, MAX_MESSAGE_LEN] {
        let bytes = pattern(len, len as u8);
        let message = message(&bytes);
        assert_eq!(message.len(), len);
        assert_eq!(bytes_of(&message), bytes);
    }
}

#[test]
fn bad_lengths_are_emsgsize_before_user_memory_is_read() {
    let long = [7u8; MAX_MESSAGE_LEN + 1];
    let empty = Message::from_user(user_ptr(long.as_ptr()), 0);
    let too_long = Message::from_user(user_ptr(long.as_ptr()), MAX_MESSAGE_LEN + 1);
    assert_eq!(empty.err(), Some(EMSGSIZE));
    assert_eq!(too_long.err(), Some(EMSGSIZE));
    // Even from a bad address: the length is checked before user memory is touched.
    for len in [0, MAX_MESSAGE_LEN + 1, usize::MAX] {
        let result = Message::from_user(bad_address(), len);
        assert_eq!(result.err(), Some(EMSGSIZE), "length {len}");
    }
}

#[test]
fn a_bad_address_is_efault_and_gives_no_message() {
    for len in [1, 8, MAX_MESSAGE_LEN] {
        assert_eq!(
            Message::from_user(bad_address(), len).err(),
            Some(EFAULT),
            "length {len}"
        );
    }
}

#[test]
fn a_message_copied_to_a_bad_address_is_efault() {
    let message = message(&pattern(10, 1));
    assert_eq!(message.copy_to_user(bad_address()).err(), Some(EFAULT));
    // It is still there to copy.
    assert_eq!(bytes_of(&message), pattern(10, 1));
}

#[test]
fn every_write_adds_two_to_the_sequence_and_a_load_returns_it() {
    let record = empty_record();
    let mut previous_len = 0;
    for len in 1..=MAX_MESSAGE_LEN {
        let before = record.sequence.load(Ordering::Relaxed);
        let bytes = pattern(len, len as u8);
        assert_eq!(
            record::store(&record, &message(&bytes)),
            previous_len,
            "store returns the replaced length"
        );
        let after = record.sequence.load(Ordering::Relaxed);
        assert_eq!(after, before.wrapping_add(2), "length {len}");
        assert_eq!(record.length.load(Ordering::Relaxed) as usize, len);
        let (sequence, loaded) = record::load(&record).expect("no write in progress");
        assert_eq!(sequence, after);
        assert_eq!(bytes_of(&loaded), bytes, "length {len}");
        assert_eq!(record::sequence_of_message(&record), Some(after));
        previous_len = len;
    }
}

#[test]
fn a_record_without_a_message_loads_as_length_zero() {
    let record = empty_record();
    assert_eq!(record::sequence_of_message(&record), None);
    let (sequence, loaded) = record::load(&record).expect("no write in progress");
    assert_eq!(sequence, 0);
    assert_eq!(loaded.len(), 0);
    assert!(bytes_of(&loaded).is_empty());
}

#[test]
fn bytes_past_the_length_are_zero_after_a_shorter_write() {
    let record = empty_record();
    record::store(&record, &message(&[0xff; MAX_MESSAGE_LEN]));
    for len in [MAX_MESSAGE_LEN - 1, 64, 9, 8, 3, 1] {
        let bytes = pattern(len, 5);
        record::store(&record, &message(&bytes));
        let stored = record_bytes(&record);
        assert_eq!(&stored[..len], &bytes[..]);
        assert!(
            stored[len..].iter().all(|&byte| byte == 0),
            "length {len}: the longer message's bytes are left: {stored:x?}"
        );
        let (_, loaded) = record::load(&record).unwrap();
        assert_eq!(bytes_of(&loaded), bytes);
    }
}

#[test]
fn a_write_in_progress_fails_a_load_and_not_a_stable_one() {
    let record = empty_record();
    let bytes = pattern(40, 2);
    record::store(&record, &message(&bytes));
    let stable = record.sequence.load(Ordering::Relaxed);
    // As while a writer stores: the sequence is odd.
    record.sequence.store(stable + 1, Ordering::Relaxed);
    assert!(record::load(&record).is_none(), "loaded during a write");
    // A caller that excludes writers loads what is there.
    let (sequence, loaded) = record::load_stable(&record);
    assert_eq!(sequence, stable + 1);
    assert_eq!(bytes_of(&loaded), bytes);
    // The write ends: the load succeeds again.
    record.sequence.store(stable + 2, Ordering::Relaxed);
    assert_eq!(
        record::load(&record).map(|(sequence, _)| sequence),
        Some(stable + 2)
    );
}

#[test]
fn the_sequence_wraps_and_stays_even() {
    let record = empty_record();
    record.sequence.store(u32::MAX - 1, Ordering::Relaxed);
    record::store(&record, &message(b"wrapped"));
    assert_eq!(record.sequence.load(Ordering::Relaxed), 0);
    let (sequence, loaded) = record::load(&record).expect("0 is even: no write in progress");
    assert_eq!((sequence, bytes_of(&loaded)), (0, b"wrapped".to_vec()));
    assert_eq!(record::sequence_of_message(&record), Some(0));
}

#[test]
fn a_length_beyond_the_message_is_clamped() {
    let record = empty_record();
    let bytes = pattern(MAX_MESSAGE_LEN, 4);
    record::store(&record, &message(&bytes));
    // Not what the kernel stores; a record is shared memory, so its loads do not trust it.
    for length in [MAX_MESSAGE_LEN as u32 + 1, 4096, u32::MAX] {
        record.length.store(length, Ordering::Relaxed);
        let (_, loaded) = record::load(&record).unwrap();
        assert_eq!(loaded.len(), MAX_MESSAGE_LEN, "length {length}");
        assert_eq!(bytes_of(&loaded), bytes);
        let (_, stable) = record::load_stable(&record);
        assert_eq!(stable.len(), MAX_MESSAGE_LEN, "length {length}");
    }
}
