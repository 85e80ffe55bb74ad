// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/record_pages.rs`: records given out in creation order, 30 to a page at
//! `k * RECORD_SIZE`, pages that hold nothing but records, a page allocated only for the record
//! that starts it, what a missing, stale or failed page preparation does and leaves, and that
//! the pages are freed with the records.

use crate::{
    abstractions::xarray::reserved_indices,
    record,
    record_pages::{offset_in_page, PreparedPage, RecordPages, RECORDS_PER_PAGE},
    record_tests::{bytes_of, message, pattern, record_bytes},
    uapi::{Record, RECORD_SIZE},
};
use core::{pin::Pin, ptr::NonNull, sync::atomic::Ordering};
use kernel::{
    alloc::{fail_allocations, flags::GFP_KERNEL, Allocations, KBox},
    bindings::PAGE_SIZE,
    error::{code::ENOMEM, Result},
    page,
};
use std::collections::HashSet;

/// Empty record pages.
fn record_pages() -> Pin<KBox<RecordPages>> {
    KBox::pin_init(RecordPages::new(), GFP_KERNEL).expect("no allocation failure")
}

/// The next record's index.
fn next_index(pages: &RecordPages) -> u32 {
    pages.lock().next_index()
}

/// Gives out the next record as a slot does: its page prepared first if it starts one.
fn give_out(pages: &RecordPages) -> Result<NonNull<Record>> {
    let mut prepared = pages.prepare(next_index(pages), GFP_KERNEL)?;
    let record = pages.lock().give_out(&mut prepared)?;
    assert!(prepared.is_none(), "a page prepared for it and not taken");
    Ok(record.expect("its page prepared").into_raw())
}

/// The address of the page `record` is in.
fn page_of(record: NonNull<Record>) -> usize {
    record.as_ptr() as usize / PAGE_SIZE * PAGE_SIZE
}

/// The bytes of the page at `page`.
fn page_bytes(page: usize) -> Vec<u8> {
    assert!(page::is_live(page as *const _), "a freed page");
    // SAFETY: A live page: `PAGE_SIZE` bytes that only records' atomics write, and none is
    // written while the test reads.
    unsafe { core::slice::from_raw_parts(page as *const u8, PAGE_SIZE) }.to_vec()
}

#[test]
fn thirty_records_to_a_page() {
    assert_eq!(RECORD_SIZE, 136, "a sequence, a length and 128 bytes");
    assert_eq!(RECORDS_PER_PAGE as usize, PAGE_SIZE / RECORD_SIZE);
    assert_eq!(RECORDS_PER_PAGE, 30);
    for index in [0, 1, 29, 30, 31, 59, 60, 1000, u32::MAX] {
        let offset = offset_in_page(index);
        assert_eq!(
            offset,
            (index % 30) as usize * RECORD_SIZE,
            "record {index}"
        );
        assert!(offset + RECORD_SIZE <= PAGE_SIZE);
    }
}

#[test]
fn records_are_given_out_in_order_a_page_for_every_thirtieth() {
    let pages = record_pages();
    let live_pages = page::allocations();
    let mut page_addresses: Vec<usize> = Vec::new();
    let mut records = Vec::new();
    for k in 0..95u32 {
        assert_eq!(next_index(&pages), k);
        let prepared = pages.prepare(k, GFP_KERNEL).unwrap();
        assert_eq!(
            prepared.is_some(),
            k % RECORDS_PER_PAGE == 0,
            "record {k}: a page prepared only for the first record of a page"
        );
        drop(prepared);
        let record = give_out(&pages).unwrap();
        assert_eq!(
            live_pages.live(),
            (k / RECORDS_PER_PAGE + 1) as usize,
            "record {k}"
        );
        let page = page_of(record);
        assert!(page::is_live(page as *const _));
        assert_eq!(
            record.as_ptr() as usize - page,
            offset_in_page(k),
            "record {k}"
        );
        assert_eq!(record.as_ptr() as usize % 8, 0, "aligned for its atomics");
        if k % RECORDS_PER_PAGE == 0 {
            assert!(!page_addresses.contains(&page), "record {k}: a new page");
            page_addresses.push(page);
        } else {
            assert_eq!(page_addresses.last(), Some(&page), "record {k}: its page's");
        }
        // SAFETY: The record was given out just now and lives as long as `pages`.
        let record_ref = unsafe { record.as_ref() };
        assert_eq!(record_ref.sequence.load(Ordering::Relaxed), 0);
        assert_eq!(record_ref.length.load(Ordering::Relaxed), 0);
        assert!(
            record_bytes(record_ref).iter().all(|&byte| byte == 0),
            "record {k} is zero"
        );
        records.push(record);
    }
    assert_eq!(page_addresses.len(), 4);
    // Every record is its own: a message in each, each loads its own.
    for (k, record) in records.iter().enumerate() {
        // SAFETY: As above; this test is each record's only writer.
        record::store(
            unsafe { record.as_ref() },
            &message(&pattern(1 + k, k as u8)),
        );
    }
    for (k, record) in records.iter().enumerate() {
        // SAFETY: As above.
        let (_, loaded) = record::load(unsafe { record.as_ref() }).unwrap();
        assert_eq!(bytes_of(&loaded), pattern(1 + k, k as u8), "record {k}");
    }
    // Pages hold nothing but records: the bytes after a page's last record, and the records
    // not given out yet, are zero.
    for (number, &page) in page_addresses.iter().enumerate() {
        let bytes = page_bytes(page);
        let used = records
            .len()
            .saturating_sub(number * RECORDS_PER_PAGE as usize);
        let used = used.min(RECORDS_PER_PAGE as usize);
        assert!(
            bytes[used * RECORD_SIZE..].iter().all(|&byte| byte == 0),
            "page {number}: written after its records"
        );
    }
}

#[test]
fn only_the_first_record_of_a_page_prepares_it() {
    let pages = record_pages();
    let live_pages = page::allocations();
    for index in [1, 29, 31, 59, 61] {
        assert!(
            pages.prepare(index, GFP_KERNEL).unwrap().is_none(),
            "record {index}"
        );
    }
    assert_eq!(live_pages.live(), 0);
    assert_eq!(reserved_indices(), 0);
    for index in [0, 30, 60, RECORDS_PER_PAGE * 1000] {
        assert!(
            pages.prepare(index, GFP_KERNEL).unwrap().is_some(),
            "record {index}"
        );
    }
    assert_eq!(live_pages.live(), 0, "each dropped unused");
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn give_out_without_the_page_prepared_returns_none() {
    let pages = record_pages();
    let live_pages = page::allocations();
    {
        let mut cursor = pages.lock();
        let mut none = None;
        assert!(cursor.give_out(&mut none).unwrap().is_none(), "no page 0");
        assert_eq!(cursor.next_index(), 0, "no record given out");
    }
    for _ in 0..RECORDS_PER_PAGE {
        give_out(&pages).unwrap();
    }
    let mut cursor = pages.lock();
    let mut none = None;
    assert!(cursor.give_out(&mut none).unwrap().is_none(), "no page 1");
    assert_eq!(cursor.next_index(), RECORDS_PER_PAGE, "no record given out");
    assert_eq!(live_pages.live(), 1);
}

#[test]
fn a_page_prepared_twice_is_inserted_once_and_the_other_kept_and_freed() {
    let pages = record_pages();
    let live_pages = page::allocations();
    for _ in 0..RECORDS_PER_PAGE {
        give_out(&pages).unwrap();
    }
    // Two creations both saw record 30 next: both prepare page 1.
    let mut first = pages.prepare(RECORDS_PER_PAGE, GFP_KERNEL).unwrap();
    let mut second = pages.prepare(RECORDS_PER_PAGE, GFP_KERNEL).unwrap();
    assert!(first.is_some() && second.is_some());
    assert_eq!(live_pages.live(), 3);
    let record_30 = pages
        .lock()
        .give_out(&mut first)
        .unwrap()
        .unwrap()
        .into_raw();
    assert!(first.is_none(), "its page taken");
    // The second finds the page there: it gives out record 31 in it and keeps its own page.
    let record_31 = pages
        .lock()
        .give_out(&mut second)
        .unwrap()
        .unwrap()
        .into_raw();
    assert!(second.is_some(), "a prepared page not needed is kept");
    assert_eq!(page_of(record_30), page_of(record_31));
    assert_eq!(
        record_31.as_ptr() as usize - page_of(record_31),
        RECORD_SIZE
    );
    assert_eq!(live_pages.live(), 3);
    drop(second);
    assert_eq!(live_pages.live(), 2, "the unused page is freed");
    assert!(
        page::is_live(page_of(record_30) as *const _),
        "the used one is not"
    );
    assert_eq!(reserved_indices(), 0);
    give_out(&pages).unwrap();
}

#[test]
fn a_stale_prepared_page_is_kept_and_a_fresh_one_needed() {
    let pages = record_pages();
    let live_pages = page::allocations();
    for _ in 0..RECORDS_PER_PAGE {
        give_out(&pages).unwrap();
    }
    // Prepared for record 30 (page 1); meanwhile others fill page 1.
    let mut stale = pages.prepare(RECORDS_PER_PAGE, GFP_KERNEL).unwrap();
    for _ in 0..RECORDS_PER_PAGE {
        give_out(&pages).unwrap();
    }
    assert_eq!(live_pages.live(), 3);
    let mut cursor = pages.lock();
    assert_eq!(cursor.next_index(), 2 * RECORDS_PER_PAGE);
    assert!(
        cursor.give_out(&mut stale).unwrap().is_none(),
        "record 60 needs page 2, not the page prepared for page 1"
    );
    assert!(
        stale.is_some(),
        "the stale page is given back to the caller"
    );
    assert_eq!(
        cursor.next_index(),
        2 * RECORDS_PER_PAGE,
        "no record given out"
    );
    drop(cursor);
    drop(stale);
    assert_eq!(live_pages.live(), 2, "the stale page is freed");
    assert_eq!(reserved_indices(), 0, "its reservation changes nothing");
    let record_60 = give_out(&pages).unwrap();
    assert_eq!(record_60.as_ptr() as usize % PAGE_SIZE, 0);
    assert_eq!(live_pages.live(), 3);
}

#[test]
fn a_page_whose_reservation_was_given_back_is_prepared_again() {
    let pages = record_pages();
    let live_pages = page::allocations();
    // Two preparations of page 0; the first is dropped while the page is missing, which gives
    // back the reservation both share.
    let first = pages.prepare(0, GFP_KERNEL).unwrap();
    let mut second = pages.prepare(0, GFP_KERNEL).unwrap();
    drop(first);
    assert!(
        pages.lock().give_out(&mut second).unwrap().is_none(),
        "the page cannot be inserted without its reservation"
    );
    assert!(second.is_none(), "the page was taken (and freed)");
    assert_eq!(live_pages.live(), 0);
    assert_eq!(reserved_indices(), 0);
    assert_eq!(next_index(&pages), 0, "no record given out");
    give_out(&pages).unwrap();
    assert_eq!(live_pages.live(), 1);
}

#[test]
fn a_failed_preparation_leaves_nothing() {
    let pages = record_pages();
    let boxes = Allocations::of_boxes();
    let boxes_before = boxes.live();
    let live_pages = page::allocations();
    // The page, the box of the page, the reservation of its place: each can fail.
    for allocation in 0..3 {
        fail_allocations(allocation, 1);
        let prepared = pages.prepare(0, GFP_KERNEL);
        fail_allocations(0, 0);
        assert_eq!(prepared.err(), Some(ENOMEM), "allocation {allocation}");
        assert_eq!(live_pages.live(), 0, "allocation {allocation}: a page left");
        assert_eq!(
            boxes.live(),
            boxes_before,
            "allocation {allocation}: a box left"
        );
        assert_eq!(
            reserved_indices(),
            0,
            "allocation {allocation}: a reservation left"
        );
    }
    assert_eq!(next_index(&pages), 0);
    // Those were all: with the fourth allocation made to fail, the preparation succeeds.
    fail_allocations(3, 1);
    let prepared: Result<Option<PreparedPage<'_>>> = pages.prepare(0, GFP_KERNEL);
    fail_allocations(0, 0);
    let prepared = prepared.unwrap();
    assert!(prepared.is_some());
    drop(prepared);
    assert_eq!(live_pages.live(), 0, "an unused preparation frees its page");
    assert_eq!(boxes.live(), boxes_before);
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn pages_are_allocated_zeroed() {
    // The stand-in fills a page allocated without `__GFP_ZERO` with garbage: the records must
    // be zero all the same, and so must the rest of the page.
    let pages = record_pages();
    let record = give_out(&pages).unwrap();
    let bytes = page_bytes(page_of(record));
    assert!(!bytes.contains(&page::GARBAGE) && bytes.iter().all(|&byte| byte == 0));
}

#[test]
fn the_pages_are_freed_with_the_records() {
    let live_pages = page::allocations();
    let boxes = Allocations::of_boxes();
    let boxes_before = boxes.live();
    let pages = record_pages();
    let mut addresses = HashSet::new();
    for _ in 0..3 * RECORDS_PER_PAGE + 1 {
        addresses.insert(page_of(give_out(&pages).unwrap()));
    }
    assert_eq!(addresses.len(), 4);
    assert_eq!(live_pages.live(), 4);
    drop(pages);
    assert_eq!(live_pages.live(), 0);
    assert_eq!(boxes.live(), boxes_before);
    assert!(addresses
        .iter()
        .all(|&page| !page::is_live(page as *const _)));
}
