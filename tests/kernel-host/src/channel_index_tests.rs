// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/channel_index.rs`: keys anywhere in `u32`, colliding keys chained in one
//! bucket, duplicate inserts, racing inserts, what an allocation failure leaves, the lookup
//! memo, and that dropping the map frees every entry.

use crate::{
    abstractions::xarray::reserved_indices,
    channel_index::{KeyedMap, LookupMemo},
};
use kernel::{
    alloc::{fail_allocations, flags::GFP_KERNEL},
    bindings::set_random_u32,
    error::code::ENOMEM,
    sync::Arc,
};
use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc as StdArc,
    },
    thread,
};

/// Keys below this are their own bucket (`channel_index::BUCKETS`).
const BUCKETS: u32 = 1 << 20;

/// A value, counted in the `live` counter it was made with (if any) while it exists.
struct Value(u32, Option<StdArc<AtomicUsize>>);

impl Value {
    fn new(id: u32) -> Self {
        Self(id, None)
    }

    fn counted(id: u32, live: &StdArc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(id, Some(live.clone()))
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if let Some(live) = &self.1 {
            live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A map whose hash multiplier is `random | 1`.
fn map(random: u32) -> Arc<KeyedMap<Value>> {
    set_random_u32(random);
    Arc::pin_init(KeyedMap::new(), GFP_KERNEL).unwrap()
}

/// Inserts `Value::new(value)` under `key`; returns the value under the key and whether it
/// is the new one.
fn insert(map: &KeyedMap<Value>, key: u32, value: u32) -> (u32, bool) {
    insert_value(map, key, Value::new(value))
}

/// Inserts `value` under `key`; returns the id of the value under the key and whether it is
/// `value`.
fn insert_value(map: &KeyedMap<Value>, key: u32, value: Value) -> (u32, bool) {
    let prepared = map.prepare(key, value, GFP_KERNEL).unwrap();
    let (value, inserted) = map.insert(prepared).unwrap();
    (value.0, inserted)
}

#[test]
fn keys_anywhere_in_u32() {
    let map = map(0x1234_5677);
    let keys = [
        0,
        1,
        2,
        BUCKETS - 1,
        BUCKETS,
        BUCKETS + 1,
        0x8000_0000,
        u32::MAX - 1,
        u32::MAX,
    ];
    for (value, &key) in keys.iter().enumerate() {
        assert!(map.get(key).is_none());
        assert_eq!(insert(&map, key, value as u32), (value as u32, true));
    }
    for (value, &key) in keys.iter().enumerate() {
        assert_eq!(
            map.get(key).map(|found| found.0),
            Some(value as u32),
            "key {key:#x}"
        );
    }
    assert!(map.get(3).is_none());
    assert!(map.get(BUCKETS + 2).is_none());
}

#[test]
fn colliding_keys_share_a_bucket_and_stay_apart() {
    // Multiplier 1: keys from BUCKETS on map to their top 20 bits, so BUCKETS..BUCKETS + 4096
    // all land in bucket 256, the bucket of the small key 256 as well.
    let map = map(0);
    let colliding: Vec<u32> = (BUCKETS..BUCKETS + 4096).chain([256]).collect();
    for &key in &colliding {
        assert_eq!(insert(&map, key, key ^ 0x5a5a), (key ^ 0x5a5a, true));
    }
    for &key in &colliding {
        assert_eq!(
            map.get(key).map(|found| found.0),
            Some(key ^ 0x5a5a),
            "key {key:#x}"
        );
    }
    assert!(
        map.get(BUCKETS + 4096).is_none(),
        "next bucket, never inserted"
    );
}

#[test]
fn only_a_key_in_an_empty_bucket_reserves() {
    let map = map(0);
    insert(&map, 256, 1);
    insert(&map, BUCKETS, 2); // bucket 256 again: appended to the chain
    insert(&map, 257, 3);
    assert_eq!(map.get(BUCKETS).map(|found| found.0), Some(2));
    // A key of a non-empty bucket needs no reservation: only its entry is allocated.
    fail_allocations(1, 1);
    let prepared = map.prepare(BUCKETS + 1, Value::new(4), GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(map.insert(prepared.unwrap()).unwrap().0 .0, 4);
    // A key of an empty bucket allocates a reservation after its entry.
    fail_allocations(1, 1);
    let prepared = map.prepare(258, Value::new(5), GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(prepared.err(), Some(ENOMEM));
}

#[test]
fn a_duplicate_insert_keeps_the_first_value_and_drops_the_second() {
    let live = StdArc::new(AtomicUsize::new(0));
    {
        let map = map(0);
        for key in [5, BUCKETS + 5, 5 << 12] {
            assert_eq!(insert_value(&map, key, Value::counted(1, &live)), (1, true));
            let again = insert_value(&map, key, Value::counted(2, &live));
            assert_eq!(again, (1, false), "key {key:#x}");
        }
        assert_eq!(
            live.load(Ordering::Relaxed),
            3,
            "the second values were dropped"
        );
    }
    assert_eq!(
        live.load(Ordering::Relaxed),
        0,
        "dropping the map drops its values"
    );
}

#[test]
fn inserts_prepared_before_either_lands_both_land() {
    // Two keys of one empty bucket, both prepared (each reserving the bucket) before either is
    // inserted: the second finds the first at the head and is chained after it.
    let map = map(0);
    let first = map.prepare(BUCKETS + 7, Value::new(1), GFP_KERNEL).unwrap();
    let second = map.prepare(BUCKETS + 8, Value::new(2), GFP_KERNEL).unwrap();
    let same_key = map.prepare(BUCKETS + 7, Value::new(3), GFP_KERNEL).unwrap();
    assert_eq!(map.insert(first).unwrap().0 .0, 1);
    assert_eq!(
        map.insert(second)
            .map(|(value, new)| (value.0, new))
            .unwrap(),
        (2, true)
    );
    assert_eq!(
        map.insert(same_key)
            .map(|(value, new)| (value.0, new))
            .unwrap(),
        (1, false)
    );
    assert_eq!(map.get(BUCKETS + 7).map(|found| found.0), Some(1));
    assert_eq!(map.get(BUCKETS + 8).map(|found| found.0), Some(2));
}

#[test]
fn a_failed_prepare_leaves_nothing() {
    let live = StdArc::new(AtomicUsize::new(0));
    let map = map(0);
    // The entry's allocation fails.
    fail_allocations(0, 1);
    let entry_failed = map.prepare(9, Value::counted(1, &live), GFP_KERNEL);
    // The entry is made, the reservation of its empty bucket fails: the entry is freed.
    fail_allocations(1, 1);
    let reservation_failed = map.prepare(10, Value::counted(2, &live), GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(entry_failed.err(), Some(ENOMEM));
    assert_eq!(reservation_failed.err(), Some(ENOMEM));
    assert!(map.get(9).is_none() && map.get(10).is_none());
    assert_eq!(
        live.load(Ordering::Relaxed),
        0,
        "the failed preparations freed their values"
    );
    assert_eq!(reserved_indices(), 0, "no reservation is left behind");
    // Nothing half-made stays behind: both keys insert normally afterwards.
    assert_eq!(insert(&map, 9, 3), (3, true));
    assert_eq!(insert(&map, 10, 4), (4, true));
    assert_eq!(reserved_indices(), 0, "inserts use up their reservations");
}

#[test]
fn a_prepared_entry_dropped_unused_gives_everything_back() {
    let live = StdArc::new(AtomicUsize::new(0));
    let map = map(0);
    // With multiplier 1, a key from `BUCKETS` on is in bucket `key >> 12`.
    let hashed = |bucket: u32| BUCKETS + ((bucket - 256) << 12);
    insert(&map, hashed(300), 1);
    // Empty buckets (a small key, a hashed one), and a key chained into a used bucket.
    for key in [12, hashed(301), hashed(300) + 1] {
        let prepared = map.prepare(key, Value::counted(key, &live), GFP_KERNEL);
        assert!(prepared.is_ok());
        drop(prepared);
        assert!(map.get(key).is_none(), "key {key:#x}");
        assert_eq!(live.load(Ordering::Relaxed), 0, "key {key:#x}: value freed");
        assert_eq!(
            reserved_indices(),
            0,
            "key {key:#x}: reservation given back"
        );
    }
    // Two preparations of one empty bucket share its reservation: once the bucket holds an
    // entry, dropping the other's changes nothing.
    let first = map.prepare(hashed(302), Value::new(2), GFP_KERNEL).unwrap();
    let second = map.prepare(hashed(302), Value::new(3), GFP_KERNEL).unwrap();
    assert_eq!(map.insert(first).unwrap().0 .0, 2);
    drop(second);
    assert_eq!(map.get(hashed(302)).map(|found| found.0), Some(2));
    // While it is still empty, dropping one gives the bucket back for both: the other's insert
    // fails, leaving nothing (the documented case no serialised caller meets).
    let first = map
        .prepare(hashed(303), Value::counted(4, &live), GFP_KERNEL)
        .unwrap();
    let second = map
        .prepare(hashed(303), Value::counted(5, &live), GFP_KERNEL)
        .unwrap();
    drop(first);
    assert_eq!(map.insert(second).err(), Some(ENOMEM));
    assert!(map.get(hashed(303)).is_none());
    assert_eq!(live.load(Ordering::Relaxed), 0);
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn racing_inserts_of_the_same_keys_agree() {
    let map = map(0x0bad_cafe);
    let keys: Vec<u32> = (0..2_000u32)
        .map(|i| i.wrapping_mul(0x9e37_79b9) | 1)
        .collect();
    let winners: Vec<Vec<(u32, bool)>> = thread::scope(|scope| {
        let threads: Vec<_> = (0..4u32)
            .map(|thread| {
                let (map, keys) = (&map, &keys);
                scope.spawn(move || {
                    keys.iter()
                        .map(|&key| insert(map, key, thread))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    });
    for (index, &key) in keys.iter().enumerate() {
        let stored = map.get(key).unwrap().0;
        let inserted: Vec<_> = winners.iter().filter(|results| results[index].1).collect();
        assert_eq!(
            inserted.len(),
            1,
            "key {key:#x} inserted {} times",
            inserted.len()
        );
        assert!(
            winners.iter().all(|results| results[index].0 == stored),
            "key {key:#x}"
        );
    }
}

#[test]
fn the_memo_remembers_the_last_lookup() {
    let map = map(0);
    insert(&map, 1, 10);
    insert(&map, BUCKETS + 1, 11);
    let memo = LookupMemo::new(map.clone());
    assert_eq!(memo.get(1).map(|found| found.0), Some(10));
    assert_eq!(memo.get(1).map(|found| found.0), Some(10), "from the memo");
    assert_eq!(
        memo.get(BUCKETS + 1).map(|found| found.0),
        Some(11),
        "another key looks up"
    );
    assert!(memo.get(2).is_none());
    // A key missing when looked up is found once inserted: the memo forgot the miss.
    insert(&map, 2, 12);
    assert_eq!(memo.get(2).map(|found| found.0), Some(12));
    assert_eq!(memo.remember(1).map(|found| found.0), Some(10));
}

#[test]
fn dropping_the_map_frees_long_chains() {
    let live = StdArc::new(AtomicUsize::new(0));
    {
        let map = map(0);
        // 20,000 keys in five buckets: chains of 4,096, freed without recursion.
        for key in BUCKETS..BUCKETS + 20_000 {
            insert_value(&map, key, Value::counted(key, &live));
        }
        assert_eq!(live.load(Ordering::Relaxed), 20_000);
        let keys: HashSet<u32> = (BUCKETS..BUCKETS + 20_000)
            .filter(|&key| map.get(key).map(|found| found.0) == Some(key))
            .collect();
        assert_eq!(keys.len(), 20_000);
    }
    assert_eq!(live.load(Ordering::Relaxed), 0);
}
