// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/channel.rs`: a channel created as a slot creates it (its entry and its
//! record's page prepared before the records' lock), its record's place, a message's way from
//! user memory into the record and back, errors and what they leave, the message numbers,
//! the pollers' queue, reads racing writes (and a read that meets a write taking the writers'
//! lock), and that the map frees channels, queues and pages.

use crate::{
    abstractions::{
        poll::{is_live, take_last_wake, PollEvents, WaitQueueHead},
        spinlock::{locks_taken, pause_after_next_lock, signal_before_next_wait},
        uaccess::user_ptr,
        xarray::reserved_indices,
    },
    channel::{self, Channel, ChannelMap},
    channel_index::HashedChainMap,
    record::Message,
    record_pages::{offset_in_page, RecordPages, RECORDS_PER_PAGE},
    record_tests::{bad_address, bytes_of, pattern, record_bytes},
    uapi::MAX_MESSAGE_LEN,
};
use core::{pin::Pin, sync::atomic::Ordering};
use kernel::{
    alloc::{fail_allocations, flags::GFP_KERNEL, Allocations, KBox},
    bindings::PAGE_SIZE,
    error::{
        code::{EFAULT, EINVAL, EMSGSIZE, ENOMEM},
        Result,
    },
    page,
    sync::Arc,
    uaccess::UserPtr,
};
use std::{
    sync::{atomic::AtomicBool, mpsc},
    thread,
    time::{Duration, Instant},
};

/// A slot's channels, with the pages of their records: none yet.
fn channels() -> Arc<ChannelMap> {
    Arc::pin_init(HashedChainMap::new(RecordPages::new()), GFP_KERNEL)
        .expect("no allocation failure")
}

/// Creates channel `id` in `map` as a slot does (`Slot::get_or_create`), with `waiters` as its
/// pollers' queue: its entry and (if its record starts a page) the page prepared first, then,
/// under the records' lock, the lookup repeated, the record given out and the channel
/// inserted. Returns the channel under `id` and whether it is the one created now.
fn create(
    map: &ChannelMap,
    id: u32,
    waiters: Option<Pin<KBox<WaitQueueHead>>>,
) -> Result<(&Channel, bool)> {
    let prepared = map.prepare(id, GFP_KERNEL)?;
    let records = map.context();
    let next = records.lock().next_index();
    let mut page = records.prepare(next, GFP_KERNEL)?;
    loop {
        let mut cursor = records.lock();
        // Channels are created with the records' lock held: one created meanwhile is found.
        if let Some(channel) = map.get(id) {
            return Ok((channel, false));
        }
        let Some(record) = cursor.give_out(&mut page)? else {
            let next = cursor.next_index();
            drop(cursor);
            page = records.prepare(next, GFP_KERNEL)?;
            continue;
        };
        return channel::create(map, record, id, prepared, waiters);
    }
}

/// Channel `id` of `map`, created now.
fn channel(map: &ChannelMap, id: u32) -> &Channel {
    let (channel, created) = create(map, id, None).expect("no allocation failure");
    assert!(created, "channel {id} existed");
    channel
}

/// A poll queue, as a poll that creates a channel allocates it.
fn queue() -> Pin<KBox<WaitQueueHead>> {
    KBox::pin_init(WaitQueueHead::new(), GFP_KERNEL).expect("no allocation failure")
}

/// Writes `message` to `channel` as a write(2) does; returns the replaced message's length.
fn write(channel: &Channel, message: &[u8]) -> Result<usize> {
    write_at(channel, user_ptr(message.as_ptr()), message.len())
}

fn write_at(channel: &Channel, source: UserPtr, len: usize) -> Result<usize> {
    let message = Message::from_user(source, len)?;
    assert_eq!(message.len(), len);
    Ok(channel.replace(&message, PollEvents(1)))
}

/// Reads `channel`: the message's number and its bytes.
fn read(channel: &Channel) -> (u32, Vec<u8>) {
    channel.read(|number, message| (number, bytes_of(message)))
}

/// Everything a write may change: the record's sequence, length and words.
fn snapshot(channel: &Channel) -> (u32, u32, Vec<u8>) {
    let record = channel.record();
    (
        record.sequence.load(Ordering::Relaxed),
        record.length.load(Ordering::Relaxed),
        record_bytes(record),
    )
}

#[test]
fn every_length_round_trips() {
    let map = channels();
    let channel = channel(&map, 1);
    for len in 1..=MAX_MESSAGE_LEN {
        let message = pattern(len, len as u8);
        write(channel, &message).unwrap();
        let (number, bytes) = read(channel);
        assert_eq!(bytes, message, "length {len}");
        assert_eq!(Some(number), channel.current());
    }
}

#[test]
fn a_shorter_message_replaces_a_longer_one() {
    let map = channels();
    let channel = channel(&map, 1);
    assert_eq!(write(channel, &pattern(MAX_MESSAGE_LEN, 1)).unwrap(), 0);
    assert_eq!(write(channel, b"hi").unwrap(), MAX_MESSAGE_LEN);
    assert_eq!(read(channel).1, b"hi");
    let (_, _, words) = snapshot(channel);
    assert!(
        words[2..].iter().all(|&byte| byte == 0),
        "the longer message shows through: {words:x?}"
    );
    assert_eq!(write(channel, b"hello").unwrap(), 2, "the replaced length");
}

#[test]
fn a_new_channel_has_no_message() {
    let map = channels();
    let channel = channel(&map, 7);
    let (_, bytes) = read(channel);
    assert!(bytes.is_empty());
    assert_eq!(channel.current(), None);
    assert_eq!(write(channel, b"x").unwrap(), 0, "no message replaced");
    assert!(channel.current().is_some());
}

#[test]
fn bad_lengths_are_emsgsize_and_change_nothing() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, b"kept").unwrap();
    let before = snapshot(channel);
    let long = [7u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(write(channel, &[]), Err(EMSGSIZE));
    assert_eq!(write(channel, &long), Err(EMSGSIZE));
    // Even a bad address: the length is checked before user memory is touched.
    assert_eq!(
        write_at(channel, bad_address(), usize::MAX).unwrap_err(),
        EMSGSIZE
    );
    assert_eq!(snapshot(channel), before);
    assert_eq!(read(channel).1, b"kept");
}

#[test]
fn a_faulting_write_leaves_the_old_message() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, b"kept").unwrap();
    let before = snapshot(channel);
    let number = channel.current();
    assert_eq!(write_at(channel, bad_address(), 8), Err(EFAULT));
    assert_eq!(
        channel.current(),
        number,
        "a failed write is no new message"
    );
    assert_eq!(snapshot(channel), before, "a failed write touches nothing");
    assert_eq!(read(channel).1, b"kept");
}

#[test]
fn every_write_is_a_new_even_message_number() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, b"one").unwrap();
    let mut seen = vec![channel.current().unwrap()];
    for round in 0..10u8 {
        write(channel, &[round]).unwrap();
        let current = channel.current().unwrap();
        assert!(
            !seen.contains(&current),
            "message number {current} repeated"
        );
        assert_eq!(current % 2, 0, "an odd number: a write in progress");
        let (number, _) = read(channel);
        assert_eq!(
            number, current,
            "a read returns the number of what it loaded"
        );
        seen.push(current);
    }
}

#[test]
fn records_are_the_channels_in_creation_order() {
    let map = channels();
    let live_pages = page::allocations();
    let ids: Vec<u32> = (0..2 * RECORDS_PER_PAGE + 1)
        .map(|k| k.wrapping_mul(0x9e37_79b9) | 1)
        .collect();
    let mut pages = Vec::new();
    for (k, &id) in ids.iter().enumerate() {
        let channel = channel(&map, id);
        let record = channel.record() as *const _ as usize;
        let page = channel.record_page().as_ptr() as usize;
        assert!(page::is_live(page as *const _));
        assert_eq!(page % PAGE_SIZE, 0);
        assert_eq!(record - page, channel.record_offset(), "channel {k}");
        assert_eq!(
            channel.record_offset(),
            offset_in_page(k as u32),
            "channel {k}"
        );
        if k % RECORDS_PER_PAGE as usize == 0 {
            assert!(!pages.contains(&page), "channel {k} starts a page");
            pages.push(page);
        } else {
            assert_eq!(pages.last(), Some(&page), "channel {k}");
        }
    }
    assert_eq!(live_pages.live(), pages.len());
    // Each channel's record is its own.
    for &id in &ids {
        write(
            map.get(id).unwrap(),
            &pattern(1 + id as usize % 128, id as u8),
        )
        .unwrap();
    }
    for &id in &ids {
        let channel = map.get(id).unwrap();
        assert_eq!(read(channel).1, pattern(1 + id as usize % 128, id as u8));
    }
}

#[test]
fn a_read_that_meets_a_write_takes_the_lock_once_instead_of_spinning() {
    let map = channels();
    let channel = channel(&map, 1);
    let message = pattern(100, 9);
    write(channel, &message).unwrap();
    let number = channel.current().unwrap();
    let taken = locks_taken();
    assert_eq!(read(channel), (number, message.clone()));
    assert_eq!(
        locks_taken(),
        taken,
        "a read that meets no write takes no lock"
    );
    // A sequence left odd, as by a writer that never finishes: the read does not spin on it,
    // it takes the writers' lock once and loads what is there.
    let sequence = &channel.record().sequence;
    sequence.store(number + 1, Ordering::Relaxed);
    let (loaded, bytes) = read(channel);
    assert_eq!(locks_taken(), taken + 1, "the read took the writers' lock");
    assert_eq!((loaded, bytes), (number + 1, message));
    sequence.store(number, Ordering::Relaxed);
}

#[test]
fn a_read_delivers_its_message_with_no_lock_held() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, b"first").unwrap();
    // A write from the callback takes the channel's lock (the stand-in panics if the thread
    // holds it already).
    let replaced = channel.read(|_, message| {
        assert_eq!(bytes_of(message), b"first");
        write(channel, b"second").unwrap()
    });
    assert_eq!(replaced, 5);
    // The same after the read met a write and took the lock.
    let number = channel.current().unwrap();
    let sequence = &channel.record().sequence;
    sequence.store(number + 1, Ordering::Relaxed);
    let taken = locks_taken();
    let replaced = channel.read(|loaded, message| {
        assert_eq!(
            (loaded, bytes_of(message)),
            (number + 1, b"second".to_vec())
        );
        assert_eq!(locks_taken(), taken + 1, "the read took the lock");
        sequence.store(number, Ordering::Relaxed);
        write(channel, b"third").unwrap()
    });
    assert_eq!(replaced, 6);
    assert_eq!(read(channel), (number + 2, b"third".to_vec()));
}

#[test]
fn a_read_that_meets_a_write_waits_for_it_and_returns_its_message() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, &pattern(128, 1)).unwrap();
    let number = channel.current().unwrap();
    let new = pattern(50, 2);
    thread::scope(|scope| {
        let (locked, writer_holds) = mpsc::channel();
        let (resume, writer_waits) = mpsc::channel();
        let writer = scope.spawn(|| {
            pause_after_next_lock(locked, writer_waits);
            write(channel, &new).unwrap()
        });
        writer_holds.recv().unwrap();
        // The writer holds the lock and is about to store: as in its store, the sequence is
        // odd.
        let sequence = &channel.record().sequence;
        sequence.store(number + 1, Ordering::Relaxed);
        let (waiting, reader_waits) = mpsc::channel();
        let reader = scope.spawn(|| {
            signal_before_next_wait(waiting);
            let taken = locks_taken();
            let read = read(channel);
            (read, locks_taken() - taken)
        });
        reader_waits.recv().unwrap();
        // The reader met the write and waits for the lock. The store goes on (from the even
        // sequence it began with).
        sequence.store(number, Ordering::Relaxed);
        resume.send(()).unwrap();
        assert_eq!(writer.join().unwrap(), 128);
        let ((loaded, bytes), locks) = reader.join().unwrap();
        assert_eq!(locks, 1, "the reader took the lock once");
        assert_eq!(
            (loaded, bytes),
            (number + 2, new.clone()),
            "the writer's message"
        );
    });
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
    let map = channels();
    let channel = channel(&map, 1);
    assert!(woken(channel).is_null(), "never polled: no queue");
    fail_allocations(0, 1);
    assert_eq!(channel.poll_queue(GFP_KERNEL).err(), Some(ENOMEM));
    assert!(
        woken(channel).is_null(),
        "a failed allocation installs nothing"
    );
    let first: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    let second: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    assert_eq!(first, second);
    assert_eq!(woken(channel), first);
    assert!(is_live(first));
    drop(map);
    assert!(!is_live(first), "the channel frees its queue");
}

#[test]
fn a_queue_given_at_creation_is_the_channels_and_freed_with_it() {
    let map = channels();
    let queue = queue();
    let given: *const WaitQueueHead = &*queue;
    let (channel, created) = create(&map, 1, Some(queue)).unwrap();
    assert!(created);
    assert_eq!(woken(channel), given, "created with its queue");
    let polled: *const _ = channel.poll_queue(GFP_KERNEL).unwrap();
    assert_eq!(polled, given, "the first poll allocates no other");
    drop(map);
    assert!(!is_live(given), "the channel frees the queue it was given");
}

#[test]
fn a_channel_that_is_not_inserted_frees_the_queue_it_was_given() {
    let map = channels();
    let first = channel(&map, 1);
    write(first, b"first").unwrap();
    let boxes = Allocations::of_boxes();
    let before = boxes.live();
    // Found under the records' lock: nothing is given out, the queue and entry are freed.
    let found_queue = queue();
    let given: *const WaitQueueHead = &*found_queue;
    let (channel, created) = create(&map, 1, Some(found_queue)).unwrap();
    assert!(!created, "channel 1 exists");
    assert!(core::ptr::eq(channel, first));
    assert!(
        !is_live(given),
        "the queue of the channel not made is freed"
    );
    assert_eq!(boxes.live(), before, "and its entry");
    assert_eq!(map.context().lock().next_index(), 1, "no record given out");
    // Made and not inserted (a caller that did not look again): the channel is dropped with
    // its queue.
    let queue = queue();
    let given: *const WaitQueueHead = &*queue;
    let prepared = map.prepare(1, GFP_KERNEL).unwrap();
    let record = map.context().lock().give_out(&mut None).unwrap().unwrap();
    let (channel, created) = channel::create(&map, record, 1, prepared, Some(queue)).unwrap();
    assert!(!created);
    assert!(core::ptr::eq(channel, first));
    assert!(!is_live(given), "the channel not inserted freed its queue");
    assert_eq!(boxes.live(), before, "and its entry");
    assert_eq!(read(first).1, b"first");
    assert!(woken(first).is_null(), "the first has no queue");
}

#[test]
fn racing_creations_give_each_channel_its_own_record() {
    let map = channels();
    let ids: Vec<u32> = (0..10 * RECORDS_PER_PAGE)
        .map(|k| k.wrapping_mul(0x9e37_79b9) | 1)
        .collect();
    // Four files create the same channels, each from another place in the list.
    let results: Vec<(Vec<bool>, Allocations, Allocations)> = thread::scope(|scope| {
        let creators: Vec<_> = (0..4)
            .map(|creator| {
                let (map, ids) = (&map, &ids);
                scope.spawn(move || {
                    let start = creator * ids.len() / 4;
                    let created = (0..ids.len())
                        .map(|k| {
                            let id = ids[(start + k) % ids.len()];
                            create(map, id, None).unwrap().1
                        })
                        .collect::<Vec<_>>();
                    (created, Allocations::of_boxes(), page::allocations())
                })
            })
            .collect();
        creators
            .into_iter()
            .map(|creator| creator.join().unwrap())
            .collect()
    });
    let created: usize = results
        .iter()
        .map(|(created, _, _)| created.iter().filter(|&&new| new).count())
        .sum();
    assert_eq!(created, ids.len(), "each channel created once");
    assert_eq!(
        map.context().lock().next_index() as usize,
        ids.len(),
        "a record each"
    );
    let pages: usize = results.iter().map(|(_, _, pages)| pages.live()).sum();
    assert_eq!(
        pages, 10,
        "a page for each thirty; the others prepared are freed"
    );
    assert_eq!(reserved_indices(), 0);
    // The records are records 0..n: thirty to a page, each channel's its own.
    let mut places: Vec<(usize, usize)> = ids
        .iter()
        .map(|&id| {
            let channel = map.get(id).unwrap();
            let page = channel.record_page().as_ptr() as usize;
            (page, channel.record_offset())
        })
        .collect();
    places.sort_unstable();
    places.dedup();
    assert_eq!(places.len(), ids.len(), "two channels share a record");
    for (index, place) in places.chunks(RECORDS_PER_PAGE as usize).enumerate() {
        assert!(
            place.iter().all(|&(page, _)| page == place[0].0),
            "page {index}"
        );
        let offsets: Vec<usize> = place.iter().map(|&(_, offset)| offset).collect();
        let expected: Vec<usize> = (0..RECORDS_PER_PAGE).map(offset_in_page).collect();
        assert_eq!(offsets, expected, "page {index}");
    }
    for &id in &ids {
        write(map.get(id).unwrap(), &id.to_ne_bytes()).unwrap();
    }
    for &id in &ids {
        assert_eq!(read(map.get(id).unwrap()).1, id.to_ne_bytes());
    }
    drop(map);
    for (_, boxes, pages) in &results {
        assert_eq!((boxes.live(), pages.live()), (0, 0), "everything freed");
    }
}

#[test]
fn a_record_of_another_slot_is_einval_and_leaves_nothing() {
    let map = channels();
    let other = channels();
    let boxes = Allocations::of_boxes();
    let live_pages = page::allocations();
    // An empty bucket (its reservation given back) and a used one.
    channel(&map, 2);
    let before = boxes.live();
    let before_pages = live_pages.live();
    for id in [1, (1 << 20) + 2] {
        let prepared = map.prepare(id, GFP_KERNEL).unwrap();
        let mut page = other.context().prepare(0, GFP_KERNEL).unwrap();
        let record = other.context().lock().give_out(&mut page).unwrap().unwrap();
        assert!(core::ptr::eq(record.pages(), other.context()));
        let queue = if id == 1 { Some(queue()) } else { None };
        let queue_address = queue.as_deref().map(|queue| queue as *const WaitQueueHead);
        let result = channel::create(&map, record, id, prepared, queue);
        assert_eq!(result.err(), Some(EINVAL), "channel {id}");
        assert!(map.get(id).is_none(), "channel {id}");
        if let Some(queue) = queue_address {
            assert!(!is_live(queue), "the queue is freed");
        }
        assert_eq!(reserved_indices(), 0, "channel {id}: the bucket given back");
    }
    assert_eq!(
        map.context().lock().next_index(),
        1,
        "only channel 2's record"
    );
    assert_eq!(live_pages.live(), before_pages + 1, "the other slot's page");
    drop(other);
    assert_eq!(live_pages.live(), before_pages);
    assert_eq!(boxes.live(), before, "a box left");
}

#[test]
fn a_failed_creation_leaves_nothing() {
    let map = channels();
    let boxes = Allocations::of_boxes();
    let live_pages = page::allocations();
    let before = boxes.live();
    // The entry, the reservation of its bucket, the page, the page's box, the page's place.
    for allocation in 0..5 {
        let queue = queue();
        let given: *const WaitQueueHead = &*queue;
        fail_allocations(allocation, 1);
        let result = create(&map, 1, Some(queue)).map(|(_, created)| created);
        fail_allocations(0, 0);
        assert_eq!(result, Err(ENOMEM), "allocation {allocation}");
        assert!(map.get(1).is_none());
        assert!(
            !is_live(given),
            "allocation {allocation}: the queue is freed"
        );
        assert_eq!(boxes.live(), before, "allocation {allocation}: a box left");
        assert_eq!(live_pages.live(), 0, "allocation {allocation}: a page left");
        assert_eq!(
            reserved_indices(),
            0,
            "allocation {allocation}: a reservation left"
        );
        assert_eq!(map.context().lock().next_index(), 0, "no record given out");
    }
    // Those were all: with the sixth allocation made to fail, the creation succeeds.
    fail_allocations(5, 1);
    let created = create(&map, 1, None).map(|(_, created)| created);
    fail_allocations(0, 0);
    assert_eq!(created, Ok(true));
}

#[test]
fn the_map_frees_channels_queues_and_pages() {
    let boxes = Allocations::of_boxes();
    let live_pages = page::allocations();
    let before = boxes.live();
    let map = channels();
    let mut queues = Vec::new();
    for id in 1..=2 * RECORDS_PER_PAGE {
        let channel = channel(&map, id);
        write(channel, &pattern(id as usize, 3)).unwrap();
        if id % 3 == 0 {
            queues.push(channel.poll_queue(GFP_KERNEL).unwrap() as *const WaitQueueHead);
        }
    }
    let pages: Vec<usize> = [1, 1 + RECORDS_PER_PAGE]
        .iter()
        .map(|&id| map.get(id).unwrap().record_page().as_ptr() as usize)
        .collect();
    assert_eq!(live_pages.live(), 2);
    assert!(boxes.live() > before);
    drop(map);
    assert_eq!(live_pages.live(), 0, "the pages are freed");
    assert!(pages.iter().all(|&page| !page::is_live(page as *const _)));
    assert!(
        queues.iter().all(|&queue| !is_live(queue)),
        "the queues are freed"
    );
    assert_eq!(boxes.live(), before, "the entries are freed");
}

#[test]
fn racing_pollers_install_one_queue() {
    let map = channels();
    let channel = channel(&map, 1);
    let queues: Vec<usize> = thread::scope(|scope| {
        let pollers: Vec<_> = (0..4)
            .map(|_| {
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
    drop(map);
    assert!(!is_live(queue), "the channel frees the queue it installed");
}

/// A message whose length and every byte are derived from `value`: a torn one is detectable.
fn self_checking(value: u8) -> Vec<u8> {
    vec![value; 1 + usize::from(value) % MAX_MESSAGE_LEN]
}

/// Reads by each reader of the race below, at least (fewer under Miri, which checks the
/// accesses rather than hunting for a tear).
const RACE_READS: usize = if cfg!(miri) { 500 } else { 200_000 };
/// How long the race may go on for a reader to meet a write in progress.
const RACE_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn readers_never_see_a_torn_message() {
    let map = channels();
    let channel = channel(&map, 1);
    write(channel, &self_checking(0)).unwrap();
    let done = AtomicBool::new(false);
    let fallbacks: usize = thread::scope(|scope| {
        for writer in 0..2u8 {
            let done = &done;
            scope.spawn(move || {
                let mut value = writer;
                while !done.load(Ordering::Relaxed) {
                    write(channel, &self_checking(value)).unwrap();
                    value = value.wrapping_add(2);
                }
            });
        }
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || {
                    let start = Instant::now();
                    let taken = locks_taken();
                    let mut last = 0;
                    let mut reads = 0;
                    // Until enough reads, one of them with the writers' lock.
                    while reads < RACE_READS
                        || (locks_taken() == taken && start.elapsed() < RACE_LIMIT)
                    {
                        let (number, message) = read(channel);
                        assert_eq!(message, self_checking(message[0]), "torn: {message:?}");
                        assert_eq!(number % 2, 0, "a number read while a write was in progress");
                        assert!(
                            number.wrapping_sub(last) < u32::MAX / 2,
                            "message numbers went back"
                        );
                        last = number;
                        reads += 1;
                    }
                    locks_taken() - taken
                })
            })
            .collect();
        let fallbacks: Vec<_> = readers.into_iter().map(|reader| reader.join()).collect();
        // The writers stop even if a reader failed.
        done.store(true, Ordering::Relaxed);
        fallbacks
            .into_iter()
            .map(|fallbacks| fallbacks.expect("a reader failed"))
            .sum()
    });
    assert!(fallbacks > 0, "no read met a write in progress");
}
