// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/channel_index.rs`: keys anywhere in `u32`, colliding keys chained in one
//! bucket, duplicate inserts, a value of the wrong key, racing inserts, what an allocation
//! failure or an unused preparation leaves, the lookup memo, the map's context, and that
//! dropping the map frees every entry (before its context).

use crate::{
    abstractions::xarray::reserved_indices,
    channel_index::{HashedChainMap, Keyed, LookupMemo},
};
use kernel::{
    alloc::{fail_allocations, flags::GFP_KERNEL, Allocations},
    bindings::set_random_u32,
    error::code::{EINVAL, ENOMEM},
    sync::Arc,
};
use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc as StdArc, Mutex,
    },
    thread,
};

/// Keys below this are their own bucket (`channel_index::BUCKETS`).
const BUCKETS: u32 = 1 << 20;

/// A value: its key, a tag that tells values of one key apart, and the `live` counter it was
/// made with (if any), which counts it while it exists.
struct Value {
    key: u32,
    tag: u32,
    live: Option<StdArc<AtomicUsize>>,
}

impl Value {
    fn new(key: u32, tag: u32) -> Self {
        Self {
            key,
            tag,
            live: None,
        }
    }

    fn counted(key: u32, tag: u32, live: &StdArc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self {
            key,
            tag,
            live: Some(live.clone()),
        }
    }
}

impl Keyed for Value {
    fn key(&self) -> u32 {
        self.key
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A map whose hash multiplier is `random | 1`.
fn map(random: u32) -> Arc<HashedChainMap<Value>> {
    set_random_u32(random);
    Arc::pin_init(HashedChainMap::new(()), GFP_KERNEL).unwrap()
}

/// Inserts a value tagged `tag` under `key`; returns the tag of the value under the key and
/// whether it is the new one.
fn insert(map: &HashedChainMap<Value>, key: u32, tag: u32) -> (u32, bool) {
    insert_value(map, Value::new(key, tag))
}

/// Inserts `value` under its key; returns the tag of the value under the key and whether it
/// is `value`.
fn insert_value<C>(map: &HashedChainMap<Value, C>, value: Value) -> (u32, bool) {
    let prepared = map.prepare(value.key, GFP_KERNEL).unwrap();
    let (value, inserted) = map.insert(prepared, value).unwrap();
    (value.tag, inserted)
}

/// The tag of the value under `key`, if any.
fn tag_of<C>(map: &HashedChainMap<Value, C>, key: u32) -> Option<u32> {
    map.get(key).map(|found| found.tag)
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
    for (tag, &key) in keys.iter().enumerate() {
        assert!(map.get(key).is_none());
        assert_eq!(insert(&map, key, tag as u32), (tag as u32, true));
    }
    for (tag, &key) in keys.iter().enumerate() {
        assert_eq!(tag_of(&map, key), Some(tag as u32), "key {key:#x}");
        assert_eq!(map.get(key).map(Keyed::key), Some(key));
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
        assert_eq!(tag_of(&map, key), Some(key ^ 0x5a5a), "key {key:#x}");
    }
    assert!(
        map.get(BUCKETS + 4096).is_none(),
        "next bucket, never inserted"
    );
}

#[test]
fn only_a_key_in_an_empty_bucket_reserves() {
    let map = map(0);
    let boxes = Allocations::of_boxes();
    insert(&map, 256, 1);
    insert(&map, BUCKETS, 2); // bucket 256 again: appended to the chain
    insert(&map, 257, 3);
    assert_eq!(tag_of(&map, BUCKETS), Some(2));
    // A key of a non-empty bucket needs no reservation: only its entry is allocated.
    let before = boxes.live();
    fail_allocations(1, 1);
    let prepared = map.prepare(BUCKETS + 1, GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(boxes.live(), before + 1, "the entry");
    assert_eq!(reserved_indices(), 0);
    let (value, inserted) = map
        .insert(prepared.unwrap(), Value::new(BUCKETS + 1, 4))
        .unwrap();
    assert_eq!((value.tag, inserted), (4, true));
    // A key of an empty bucket allocates a reservation after its entry.
    fail_allocations(1, 1);
    let prepared = map.prepare(258, GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(prepared.err(), Some(ENOMEM));
    let prepared = map.prepare(258, GFP_KERNEL).unwrap();
    assert_eq!(reserved_indices(), 1, "the empty bucket reserved");
    drop(prepared);
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn a_duplicate_insert_keeps_the_first_value_and_frees_the_second() {
    let live = StdArc::new(AtomicUsize::new(0));
    let boxes = Allocations::of_boxes();
    let before = boxes.live();
    {
        let map = map(0);
        for key in [5, BUCKETS + 5, 5 << 12] {
            assert_eq!(insert_value(&map, Value::counted(key, 1, &live)), (1, true));
            let again = insert_value(&map, Value::counted(key, 2, &live));
            assert_eq!(again, (1, false), "key {key:#x}");
        }
        assert_eq!(
            live.load(Ordering::Relaxed),
            3,
            "the second values were dropped"
        );
        assert_eq!(boxes.live(), before + 3, "and their entries freed");
    }
    assert_eq!(
        live.load(Ordering::Relaxed),
        0,
        "dropping the map drops its values"
    );
    assert_eq!(boxes.live(), before, "and frees their entries");
}

#[test]
fn a_value_of_another_key_is_einval_and_leaves_nothing() {
    let live = StdArc::new(AtomicUsize::new(0));
    let boxes = Allocations::of_boxes();
    let map = map(0);
    insert(&map, BUCKETS + 1, 1);
    let before = boxes.live();
    // Into an empty bucket (reserved) and into a chain.
    for (key, other) in [(7, 8), (BUCKETS + 2, BUCKETS + 1), (BUCKETS + 3, 9)] {
        let prepared = map.prepare(key, GFP_KERNEL).unwrap();
        let result = map.insert(prepared, Value::counted(other, 2, &live));
        assert_eq!(result.err(), Some(EINVAL), "key {key:#x}");
        assert!(map.get(key).is_none(), "key {key:#x}");
        assert_eq!(
            live.load(Ordering::Relaxed),
            0,
            "key {key:#x}: the value dropped"
        );
        assert_eq!(boxes.live(), before, "key {key:#x}: the entry freed");
        assert_eq!(reserved_indices(), 0, "key {key:#x}: the bucket given back");
    }
    assert_eq!(
        tag_of(&map, BUCKETS + 1),
        Some(1),
        "the chain's value untouched"
    );
    assert!(map.get(8).is_none() && map.get(9).is_none());
    assert_eq!(insert(&map, 7, 3), (3, true));
}

#[test]
fn an_entry_prepared_by_another_map_is_einval_and_leaves_nothing() {
    let live = StdArc::new(AtomicUsize::new(0));
    let boxes = Allocations::of_boxes();
    let (a, b) = (map(0), map(0));
    // Without the check, the entry would land in `b` (its reserved bucket).
    insert(&b, 3, 1);
    let before = boxes.live();
    let prepared = b.prepare(3 + BUCKETS, GFP_KERNEL).unwrap();
    let result = a.insert(prepared, Value::counted(3 + BUCKETS, 2, &live));
    assert_eq!(result.err(), Some(EINVAL));
    assert!(a.get(3 + BUCKETS).is_none() && b.get(3 + BUCKETS).is_none());
    assert_eq!(live.load(Ordering::Relaxed), 0, "the value was never made");
    assert_eq!(boxes.live(), before, "the entry freed");
    assert_eq!(reserved_indices(), 0);
    assert_eq!(tag_of(&b, 3), Some(1), "b's chain untouched");
}

#[test]
fn inserts_prepared_before_either_lands_both_land() {
    // Two keys of one empty bucket, both prepared (each reserving the bucket) before either is
    // inserted: the second finds the first at the head and is chained after it.
    let map = map(0);
    let first = map.prepare(BUCKETS + 7, GFP_KERNEL).unwrap();
    let second = map.prepare(BUCKETS + 8, GFP_KERNEL).unwrap();
    let same_key = map.prepare(BUCKETS + 7, GFP_KERNEL).unwrap();
    let inserted = |prepared, key, tag| {
        map.insert(prepared, Value::new(key, tag))
            .map(|(value, new)| (value.tag, new))
            .unwrap()
    };
    assert_eq!(inserted(first, BUCKETS + 7, 1), (1, true));
    assert_eq!(inserted(second, BUCKETS + 8, 2), (2, true));
    assert_eq!(inserted(same_key, BUCKETS + 7, 3), (1, false));
    assert_eq!(tag_of(&map, BUCKETS + 7), Some(1));
    assert_eq!(tag_of(&map, BUCKETS + 8), Some(2));
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn a_failed_prepare_leaves_nothing() {
    let boxes = Allocations::of_boxes();
    let map = map(0);
    let before = boxes.live();
    // The entry's allocation fails.
    fail_allocations(0, 1);
    let entry_failed = map.prepare(9, GFP_KERNEL);
    // The entry is made, the reservation of its empty bucket fails: the entry is freed.
    fail_allocations(1, 1);
    let reservation_failed = map.prepare(10, GFP_KERNEL);
    fail_allocations(0, 0);
    assert_eq!(entry_failed.err(), Some(ENOMEM));
    assert_eq!(reservation_failed.err(), Some(ENOMEM));
    assert!(map.get(9).is_none() && map.get(10).is_none());
    assert_eq!(
        boxes.live(),
        before,
        "the failed preparations freed their entries"
    );
    assert_eq!(reserved_indices(), 0, "no reservation is left behind");
    // Those were all: with the third allocation made to fail, the preparation succeeds.
    fail_allocations(2, 1);
    let prepared = map.prepare(11, GFP_KERNEL);
    fail_allocations(0, 0);
    drop(prepared.unwrap());
    // Nothing half-made stays behind: both keys insert normally afterwards.
    assert_eq!(insert(&map, 9, 3), (3, true));
    assert_eq!(insert(&map, 10, 4), (4, true));
    assert_eq!(reserved_indices(), 0, "inserts use up their reservations");
    assert_eq!(boxes.live(), before + 2);
}

#[test]
fn a_prepared_entry_dropped_unused_gives_everything_back() {
    let live = StdArc::new(AtomicUsize::new(0));
    let boxes = Allocations::of_boxes();
    let map = map(0);
    // With multiplier 1, a key from `BUCKETS` on is in bucket `key >> 12`.
    let hashed = |bucket: u32| BUCKETS + ((bucket - 256) << 12);
    insert(&map, hashed(300), 1);
    let before = boxes.live();
    // Empty buckets (a small key, a hashed one), and a key chained into a used bucket.
    for key in [12, hashed(301), hashed(300) + 1] {
        let prepared = map.prepare(key, GFP_KERNEL);
        assert!(prepared.is_ok());
        assert_eq!(boxes.live(), before + 1, "key {key:#x}: its entry");
        drop(prepared);
        assert!(map.get(key).is_none(), "key {key:#x}");
        assert_eq!(boxes.live(), before, "key {key:#x}: entry freed");
        assert_eq!(
            reserved_indices(),
            0,
            "key {key:#x}: reservation given back"
        );
    }
    // Two preparations of one empty bucket share its reservation: once the bucket holds an
    // entry, dropping the other's changes nothing.
    let first = map.prepare(hashed(302), GFP_KERNEL).unwrap();
    let second = map.prepare(hashed(302), GFP_KERNEL).unwrap();
    assert_eq!(
        map.insert(first, Value::new(hashed(302), 2)).unwrap().0.tag,
        2
    );
    drop(second);
    assert_eq!(tag_of(&map, hashed(302)), Some(2));
    // While it is still empty, dropping one gives the bucket back for both: the other's insert
    // fails, leaving nothing (the documented case no serialised caller meets).
    let before = boxes.live();
    let first = map.prepare(hashed(303), GFP_KERNEL).unwrap();
    let second = map.prepare(hashed(303), GFP_KERNEL).unwrap();
    drop(first);
    let result = map.insert(second, Value::counted(hashed(303), 5, &live));
    assert_eq!(result.err(), Some(ENOMEM));
    assert!(map.get(hashed(303)).is_none());
    assert_eq!(live.load(Ordering::Relaxed), 0, "the value dropped");
    assert_eq!(boxes.live(), before, "its entry freed");
    assert_eq!(reserved_indices(), 0);
}

#[test]
fn racing_inserts_of_the_same_keys_agree() {
    let map = map(0x0bad_cafe);
    let keys: Vec<u32> = (0..2_000u32)
        .map(|i| i.wrapping_mul(0x9e37_79b9) | 1)
        .collect();
    let (winners, boxes): (Vec<Vec<(u32, bool)>>, Vec<Allocations>) = thread::scope(|scope| {
        let threads: Vec<_> = (0..4u32)
            .map(|thread| {
                let (map, keys) = (&map, &keys);
                scope.spawn(move || {
                    let results = keys
                        .iter()
                        .map(|&key| insert(map, key, thread))
                        .collect::<Vec<_>>();
                    (results, Allocations::of_boxes())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .unzip()
    });
    for (index, &key) in keys.iter().enumerate() {
        let stored = tag_of(&map, key).unwrap();
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
    let live: usize = boxes.iter().map(Allocations::live).sum();
    assert_eq!(live, keys.len(), "one entry per key; the losers' freed");
    drop(map);
    assert!(boxes.iter().all(|boxes| boxes.live() == 0));
}

#[test]
fn the_memo_remembers_the_last_lookup() {
    let map = map(0);
    insert(&map, 1, 10);
    insert(&map, BUCKETS + 1, 11);
    let memo = LookupMemo::new(map.clone());
    assert_eq!(memo.get(1).map(|found| found.tag), Some(10));
    assert_eq!(
        memo.get(1).map(|found| found.tag),
        Some(10),
        "from the memo"
    );
    assert_eq!(
        memo.get(BUCKETS + 1).map(|found| found.tag),
        Some(11),
        "another key looks up"
    );
    assert!(memo.get(2).is_none());
    // A key missing when looked up is found once inserted: the memo forgot the miss.
    insert(&map, 2, 12);
    assert_eq!(memo.get(2).map(|found| found.tag), Some(12));
    assert_eq!(memo.remember(1).map(|found| found.tag), Some(10));
    // The memo keeps the map alive.
    let boxes = Allocations::of_boxes();
    let entries = boxes.live();
    assert!(entries >= 3);
    drop(map);
    assert_eq!(memo.get(BUCKETS + 1).map(|found| found.tag), Some(11));
    assert_eq!(boxes.live(), entries, "no entry freed");
    drop(memo);
    assert_eq!(boxes.live(), 0);
}

#[test]
fn dropping_the_map_frees_long_chains() {
    let live = StdArc::new(AtomicUsize::new(0));
    let boxes = Allocations::of_boxes();
    let before = boxes.live();
    {
        let map = map(0);
        // 20,000 keys in five buckets: chains of 4,096, freed without recursion.
        for key in BUCKETS..BUCKETS + 20_000 {
            insert_value(&map, Value::counted(key, key, &live));
        }
        assert_eq!(live.load(Ordering::Relaxed), 20_000);
        assert_eq!(boxes.live(), before + 20_000);
        let keys: HashSet<u32> = (BUCKETS..BUCKETS + 20_000)
            .filter(|&key| tag_of(&map, key) == Some(key))
            .collect();
        assert_eq!(keys.len(), 20_000);
    }
    assert_eq!(live.load(Ordering::Relaxed), 0);
    assert_eq!(boxes.live(), before);
}

/// A map's context that records how many values were alive when it was dropped.
struct Context {
    name: &'static str,
    values: StdArc<AtomicUsize>,
    values_at_drop: StdArc<Mutex<Option<usize>>>,
}

impl Drop for Context {
    fn drop(&mut self) {
        *self.values_at_drop.lock().unwrap() = Some(self.values.load(Ordering::SeqCst));
    }
}

#[test]
fn the_context_is_the_maps_and_dropped_after_its_values() {
    let values = StdArc::new(AtomicUsize::new(0));
    let values_at_drop = StdArc::new(Mutex::new(None));
    let context = Context {
        name: "records",
        values: values.clone(),
        values_at_drop: values_at_drop.clone(),
    };
    set_random_u32(0);
    let map = Arc::pin_init(HashedChainMap::new(context), GFP_KERNEL).unwrap();
    assert_eq!(map.context().name, "records");
    for key in [1, 2, BUCKETS, BUCKETS + 1, u32::MAX] {
        assert_eq!(
            insert_value(&map, Value::counted(key, 0, &values)),
            (0, true)
        );
    }
    assert_eq!(values.load(Ordering::SeqCst), 5);
    assert_eq!(*values_at_drop.lock().unwrap(), None);
    drop(map);
    assert_eq!(
        *values_at_drop.lock().unwrap(),
        Some(0),
        "the context was dropped while values were alive"
    );
}
