// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/channel.rs`: a message's way from user memory into a channel and back,
//! errors and what they leave, the sequence numbers, the pollers' queue, and reads racing
//! writes.

use crate::{
    abstractions::{
        poll::{is_live, take_last_wake, PollEvents, WaitQueueHead},
        seqlock::force_overlaps,
        uaccess::user_ptr,
    },
    channel::{Channel, MessageBuffer, MessageBytes},
    uapi::MAX_MESSAGE_LEN,
};
use core::pin::Pin;
use kernel::{
    alloc::{fail_allocations, flags::GFP_KERNEL, KBoxInit},
    error::{
        code::{EAGAIN, EFAULT, EMSGSIZE, ENOMEM, ENOSPC},
        Result,
    },
    uaccess::UserPtr,
};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
};

/// A user address in the unmapped first page.
fn bad_address() -> UserPtr {
    UserPtr::from_ptr(16 as *mut _)
}

/// Asserts that `channel` holds exactly `message`.
fn assert_holds(channel: &Channel, message: &[u8]) {
    let (result, buffer) = read(channel, message.len());
    assert_eq!(result.map(|(len, _)| len), Ok(message.len()));
    assert_eq!(buffer, message);
}

/// A channel on the heap, holding `message` if given.
fn channel(message: Option<&[u8]>) -> Pin<Box<Channel>> {
    let mut buffer = MessageBuffer::new();
    let bytes = message.map(|message| {
        MessageBytes::from_user(user_ptr(message.as_ptr()), message.len(), &mut buffer)
            .expect("a valid message")
    });
    Box::pin_init(Channel::new(bytes.as_ref(), None), GFP_KERNEL).expect("no allocation failure")
}

/// Writes `message` to `channel` as a write(2) would; returns the replaced message's length.
fn write(channel: &Channel, message: &[u8]) -> Result<usize> {
    write_at(channel, user_ptr(message.as_ptr()), message.len())
}

fn write_at(channel: &Channel, source: UserPtr, len: usize) -> Result<usize> {
    let mut buffer = MessageBuffer::new();
    let bytes = MessageBytes::from_user(source, len, &mut buffer)?;
    assert_eq!(bytes.len(), len);
    Ok(channel.replace(&bytes, PollEvents(1)))
}

/// Reads the channel into a buffer of `capacity` bytes (filled with 0xAA first); returns the
/// result and the buffer.
fn read(channel: &Channel, capacity: usize) -> (Result<(usize, u32)>, Vec<u8>) {
    let mut buffer = vec![0xAA; capacity];
    let result = channel.read(user_ptr(buffer.as_mut_ptr()), capacity);
    (result, buffer)
}

/// A message of `len` bytes that differs from its neighbours in every byte.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn every_length_round_trips() {
    let channel = channel(None);
    for len in 1..=MAX_MESSAGE_LEN {
        let message = pattern(len, len as u8);
        write(&channel, &message).unwrap();
        let (result, buffer) = read(&channel, MAX_MESSAGE_LEN);
        assert_eq!(result.unwrap().0, len);
        assert_eq!(&buffer[..len], &message[..], "length {len}");
        assert!(
            buffer[len..].iter().all(|&byte| byte == 0xAA),
            "wrote past the message"
        );
    }
}

#[test]
fn a_shorter_message_replaces_a_longer_one() {
    let channel = channel(Some(&pattern(MAX_MESSAGE_LEN, 1)));
    assert_eq!(write(&channel, b"hi").unwrap(), MAX_MESSAGE_LEN);
    assert_holds(&channel, b"hi");
    assert_eq!(write(&channel, b"hello").unwrap(), 2, "the replaced length");
}

#[test]
fn created_with_a_message_or_without() {
    let with = channel(Some(b"first"));
    assert_holds(&with, b"first");
    assert!(with.current().is_some());

    let without = channel(None);
    assert_eq!(read(&without, MAX_MESSAGE_LEN).0, Err(EAGAIN));
    assert_eq!(without.current(), None);
    assert_eq!(write(&without, b"x").unwrap(), 0, "no message replaced");
}

#[test]
fn bad_lengths_are_emsgsize_and_change_nothing() {
    let channel = channel(Some(b"kept"));
    let long = [7u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(write(&channel, &[]), Err(EMSGSIZE));
    assert_eq!(write(&channel, &long), Err(EMSGSIZE));
    // Even a bad address: the length is checked before user memory is touched.
    assert_eq!(
        write_at(&channel, bad_address(), usize::MAX).unwrap_err(),
        EMSGSIZE
    );
    assert_holds(&channel, b"kept");
}

#[test]
fn a_faulting_write_leaves_the_old_message() {
    let channel = channel(Some(b"kept"));
    let before = channel.current();
    assert_eq!(write_at(&channel, bad_address(), 8), Err(EFAULT));
    assert_eq!(
        channel.current(),
        before,
        "a failed write is no new message"
    );
    assert_holds(&channel, b"kept");
}

#[test]
fn a_small_buffer_is_enospc_and_gets_nothing() {
    let channel = channel(Some(&pattern(64, 3)));
    let (result, buffer) = read(&channel, 63);
    assert_eq!(result, Err(ENOSPC));
    assert!(
        buffer.iter().all(|&byte| byte == 0xAA),
        "copied into a buffer too small"
    );
    let (result, _) = read(&channel, 64);
    assert_eq!(result.unwrap().0, 64);
}

#[test]
fn a_read_to_a_bad_address_is_efault_and_keeps_the_message() {
    let channel = channel(Some(b"kept"));
    let result = channel.read(bad_address(), 4);
    assert_eq!(result, Err(EFAULT));
    assert_holds(&channel, b"kept");
}

#[test]
fn every_write_is_a_new_message_number() {
    let channel = channel(Some(b"one"));
    let mut seen = vec![channel.current().unwrap()];
    for round in 0..10u8 {
        write(&channel, &[round]).unwrap();
        let current = channel.current().unwrap();
        assert!(
            !seen.contains(&current),
            "message number {current} repeated"
        );
        let (result, _) = read(&channel, 1);
        assert_eq!(
            result.unwrap().1,
            current,
            "a read returns the number of what it copied"
        );
        seen.push(current);
    }
}

#[test]
fn a_reader_overtaken_by_writers_excludes_them_once() {
    let channel = channel(Some(&pattern(100, 9)));
    let current = channel.current().unwrap();
    // Every lock-free attempt "overlaps" a write: the read falls back to excluding writers.
    force_overlaps(usize::MAX);
    let (result, buffer) = read(&channel, 100);
    force_overlaps(0);
    assert_eq!(result.unwrap(), (100, current));
    assert_eq!(buffer, pattern(100, 9));
    // The fallback checks the length and the buffer too.
    force_overlaps(usize::MAX);
    let (small, untouched) = read(&channel, 99);
    let (empty, _) = read(&self::channel(None), 128);
    force_overlaps(0);
    assert_eq!(small, Err(ENOSPC));
    assert!(untouched.iter().all(|&byte| byte == 0xAA));
    assert_eq!(empty, Err(EAGAIN));
}

/// What the wake-up of a write ([`Channel::replace`]) found: the queue's address, or null
/// for none.
fn woken(channel: &Channel) -> *const WaitQueueHead {
    take_last_wake();
    write(channel, b"wake").unwrap();
    take_last_wake().expect("the write checked for a queue")
}

#[test]
fn the_poll_queue_is_made_once_and_freed_with_the_channel() {
    let channel = channel(Some(b"x"));
    assert!(woken(&channel).is_null(), "never polled: no queue");
    fail_allocations(0, 1);
    assert_eq!(channel.poll_queue(GFP_KERNEL).err(), Some(ENOMEM));
    assert!(
        woken(&channel).is_null(),
        "a failed allocation installs nothing"
    );
    let first: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    let second: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    assert_eq!(first, second);
    assert_eq!(woken(&channel), first);
    assert!(is_live(first));
    drop(channel);
    assert!(!is_live(first), "the channel frees its queue");
}

#[test]
fn a_queue_given_at_creation_is_the_channels_and_freed_with_it() {
    let queue = Box::pin_init(WaitQueueHead::new(), GFP_KERNEL).unwrap();
    let given: *const WaitQueueHead = &*queue;
    let channel = Box::pin_init(Channel::new(None, Some(queue)), GFP_KERNEL).unwrap();
    assert_eq!(woken(&channel), given, "created with its queue");
    let polled: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    assert_eq!(polled, given, "the first poll allocates no other");
    drop(channel);
    assert!(!is_live(given), "the channel frees the queue it was given");
}

#[test]
fn a_channel_that_is_never_made_frees_the_queue_it_was_given() {
    let queue = Box::pin_init(WaitQueueHead::new(), GFP_KERNEL).unwrap();
    let given: *const WaitQueueHead = &*queue;
    fail_allocations(0, 1);
    let channel = Box::pin_init(Channel::new(None, Some(queue)), GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(channel.err(), Some(ENOMEM));
    assert!(!is_live(given), "the unused initialiser frees the queue");
}

#[test]
fn racing_pollers_install_one_queue() {
    let channel: Arc<Pin<Box<Channel>>> = Arc::new(channel(None));
    let queues: Vec<usize> = thread::scope(|scope| {
        let pollers: Vec<_> = (0..4)
            .map(|_| {
                let channel = &channel;
                scope.spawn(move || {
                    let queue: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
                    queue as usize
                })
            })
            .collect();
        pollers
            .into_iter()
            .map(|poller| poller.join().unwrap())
            .collect()
    });
    assert!(
        queues.windows(2).all(|pair| pair[0] == pair[1]),
        "{queues:x?}"
    );
    let queue = queues[0] as *const WaitQueueHead;
    assert!(is_live(queue));
    drop(channel);
    assert!(!is_live(queue), "the channel frees the queue it installed");
}

/// A message whose length and every byte are derived from `value`: a torn one is detectable.
fn self_checking(value: u8) -> Vec<u8> {
    vec![value; 1 + usize::from(value) % MAX_MESSAGE_LEN]
}

#[test]
fn readers_never_see_a_torn_message() {
    let channel = Arc::new(channel(Some(&self_checking(0))));
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (channel, done) = (channel.clone(), done.clone());
            thread::spawn(move || {
                let mut value = writer as u8;
                while !done.load(Ordering::Relaxed) {
                    write(&channel, &self_checking(value)).unwrap();
                    value = value.wrapping_add(2);
                }
            })
        })
        .collect();
    let mut last = 0;
    for _ in 0..200_000 {
        let (result, buffer) = read(&channel, MAX_MESSAGE_LEN);
        let (len, number) = result.unwrap();
        let message = &buffer[..len];
        assert_eq!(message, &self_checking(message[0])[..], "torn: {message:?}");
        assert_eq!(number % 2, 0, "a number read while a write was in progress");
        assert!(
            number.wrapping_sub(last) < u32::MAX / 2,
            "message numbers went back"
        );
        last = number;
    }
    done.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
}
