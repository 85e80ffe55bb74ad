// SPDX-License-Identifier: GPL-2.0

//! The channel index: an insert-only map from any `u32` key to `T`, with lock-free lookups,
//! and a memo of the last lookup of one of its keys.
//!
//! Keys below [`BUCKETS`] are their own bucket in an [`InsertOnlyXArray`] (an XArray); larger
//! keys are hashed into the same range with a per-map random multiplier. Each bucket holds an
//! insert-only chain of entries, appended to with a compare-and-swap. The XArray therefore
//! spans at most `BUCKETS` indices: four levels of nodes and dense leaves however the keys
//! are spread over `u32` (a key spread over all of `u32` would need six levels, nearly one
//! leaf node per entry).

use crate::abstractions::xarray::{InsertOnlyXArray, Reservation};
use core::{
    marker::PhantomData,
    mem::MaybeUninit,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{alloc::Flags, bindings, prelude::*, sync::Arc};

/// Buckets of a map: keys `0..BUCKETS` map to themselves.
const BUCKETS: u32 = 1 << BUCKET_BITS;
const BUCKET_BITS: u32 = 20;

/// A map's value: it carries its own key (so that an entry needs no key field of its own,
/// which a value's alignment would pad: a channel's entry fits 32 bytes).
pub(crate) trait Keyed {
    /// The value's key: never changes.
    fn key(&self) -> u32;
}

/// One entry, and the link to the next of its bucket. Pinned: an entry never moves from
/// where it was initialised until it is freed, so its value may hold a lock.
///
/// # Invariants
///
/// `next` is null or a pinned entry from `KBox::into_raw`, owned by this entry.
#[pin_data(PinnedDrop)]
struct Entry<T> {
    next: AtomicPtr<Entry<T>>,
    #[pin]
    value: T,
}

impl<T> Entry<T> {
    /// The next entry of the bucket, if any.
    #[inline]
    fn next(&self) -> Option<&Entry<T>> {
        // SAFETY: A non-null `next` is an entry owned by `self` (type invariant), which drops it
        // only when dropped itself, so it lives as long as `self` is borrowed. The acquire load
        // pairs with the release compare-and-swap that published it.
        unsafe { self.next.load(Ordering::Acquire).as_ref() }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for Entry<T> {
    fn drop(self: Pin<&mut Self>) {
        // The rest of the chain, one entry at a time (no recursion however long the chain).
        let mut next = self.next.swap(ptr::null_mut(), Ordering::Relaxed);
        while !next.is_null() {
            // SAFETY: `next` came from `KBox::into_raw` and was owned by the entry it was
            // taken from (type invariant), which no longer refers to it. Dropping the box drops
            // the entry where it is (pinned) and then frees it.
            let entry = unsafe { KBox::from_raw(next) };
            next = entry.next.swap(ptr::null_mut(), Ordering::Relaxed);
        }
    }
}

/// An insert-only hash map from `u32` keys to `T`: keys hashed into the buckets of an
/// [`InsertOnlyXArray`], each bucket a chain of entries (see the module documentation); and a
/// context `C` that the values may depend on, which outlives them.
///
/// # Invariants
///
/// Every entry reachable from bucket `b` has a key that [`HashedChainMap::bucket`] maps to `b`, and
/// no two entries have the same key. `multiplier` is odd. `context` is dropped after every
/// entry (fields drop in declaration order).
#[pin_data]
pub(crate) struct HashedChainMap<T: Keyed + 'static, C: 'static = ()> {
    #[pin]
    buckets: InsertOnlyXArray<Pin<KBox<Entry<T>>>>,
    multiplier: u32,
    #[pin]
    context: C,
}

impl<T: Keyed + 'static, C: 'static> HashedChainMap<T, C> {
    /// An empty map with the context `context` initialises.
    pub(crate) fn new(context: impl PinInit<C>) -> impl PinInit<Self> {
        // SAFETY: `get_random_u32` has no preconditions.
        let random = unsafe { bindings::get_random_u32() };
        // INVARIANT: The multiplier is odd; `context` is the last field.
        pin_init!(Self {
            buckets <- InsertOnlyXArray::new(),
            multiplier: random | 1,
            context <- context,
        })
    }

    /// The map's context: it lives longer than every value of the map.
    #[inline]
    pub(crate) fn context(&self) -> &C {
        &self.context
    }

    /// The bucket of `key`.
    #[inline]
    fn bucket(&self, key: u32) -> u32 {
        if key < BUCKETS {
            key
        } else {
            key.wrapping_mul(self.multiplier) >> (u32::BITS - BUCKET_BITS)
        }
    }

    /// The value under `key`, if any.
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<&T> {
        self.entry(key).map(|entry| &entry.value)
    }

    /// The entry with `key`, if any.
    #[inline]
    fn entry(&self, key: u32) -> Option<&Entry<T>> {
        let mut entry = self.buckets.get(self.bucket(key)).map(Pin::get_ref);
        while let Some(candidate) = entry {
            if candidate.value.key() == key {
                return Some(candidate);
            }
            entry = candidate.next();
        }
        None
    }

    /// Prepares the insertion of a value under `key`: allocates its entry (uninitialised: the
    /// value is made by [`HashedChainMap::insert`]) and, if the key's bucket is empty, reserves
    /// it (allocating the XArray's nodes), all with `flags` (`ENOMEM`, leaving nothing
    /// allocated). Call it before taking any lock that serialises inserts:
    /// [`HashedChainMap::insert`] allocates nothing. A prepared entry dropped without being
    /// inserted frees the entry and gives its bucket's reservation back.
    pub(crate) fn prepare(&self, key: u32, flags: Flags) -> Result<PreparedEntry<'_, T, C>> {
        let entry = KBox::new_uninit(flags)?;
        let bucket = self.bucket(key);
        let place = match self.buckets.get(bucket) {
            Some(head) => Place::Chain(head.get_ref()),
            None => Place::Bucket(self.buckets.reserve(bucket, flags)?),
        };
        Ok(PreparedEntry {
            key,
            entry,
            place,
            _map: PhantomData,
        })
    }

    /// Makes the value `init` initialises, in `prepared`'s entry, and inserts it unless its key
    /// is present (the value is then dropped); returns the value under the key afterwards and
    /// whether it is the one inserted now. Allocates nothing.
    ///
    /// Errors: `EINVAL` if the value's key is not the one `prepared` was prepared for (the
    /// value is dropped); `ENOMEM` if the key's bucket was reserved and another prepared entry
    /// with that bucket gave the reservation back meanwhile (dropped without being inserted
    /// while the bucket was still empty). A caller that drops a prepared entry unused only when
    /// the key is present (so its bucket holds an entry) or when no insert can succeed any
    /// more never sees it.
    pub(crate) fn insert<'a>(
        &'a self,
        prepared: PreparedEntry<'a, T, C>,
        init: impl PinInit<T>,
    ) -> Result<(&'a T, bool)> {
        let entry = match prepared.entry.write_pin_init(pin_init!(Entry {
            next: AtomicPtr::new(ptr::null_mut()),
            value <- init,
        })) {
            Ok(entry) => entry,
            Err(never) => match never {},
        };
        if entry.value.key() != prepared.key {
            return Err(EINVAL);
        }
        match prepared.place {
            Place::Chain(head) => Ok(self.append(head, entry)),
            Place::Bucket(reservation) => match self.buckets.get_or_insert(reservation, entry) {
                Ok((head, None)) => Ok((&head.get_ref().value, true)),
                Ok((head, Some(entry))) => Ok(self.append(head.get_ref(), entry)),
                Err((error, _)) => Err(error),
            },
        }
    }

    /// Appends `created` to the chain from `entry`, the head of its key's bucket, unless its key
    /// is in the chain; returns the value under the key and whether it is `created`'s.
    fn append<'a>(
        &'a self,
        mut entry: &'a Entry<T>,
        created: Pin<KBox<Entry<T>>>,
    ) -> (&'a T, bool) {
        let key = created.value.key();
        // SAFETY: The entry is not moved out of its allocation: the chain only hands out shared
        // references to it and frees it with `KBox::from_raw` (dropping it in place).
        let created = KBox::into_raw(unsafe { Pin::into_inner_unchecked(created) });
        // INVARIANT: `created` goes into the bucket of its key, after every entry of the chain
        // was checked not to have its key; the compare-and-swap only succeeds on the last
        // entry, so no entry with the key can have been appended after the check.
        loop {
            if entry.value.key() == key {
                // SAFETY: `created` came from `KBox::into_raw` and was never published; dropping
                // the box drops the entry in place.
                drop(unsafe { KBox::from_raw(created) });
                return (&entry.value, false);
            }
            match entry.next.compare_exchange(
                ptr::null_mut(),
                created,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                // INVARIANT: `entry` now owns `created`, a pinned entry from `KBox::into_raw`.
                // SAFETY: `created` is now owned by the chain, which keeps it until the map is
                // dropped, which cannot happen while `self` is borrowed.
                Ok(_) => return (unsafe { &(*created).value }, true),
                // SAFETY: A non-null `next` is an entry owned by `entry` (type invariant of
                // `Entry`), alive while `self` is borrowed.
                Err(next) => entry = unsafe { &*next },
            }
        }
    }
}

/// Room for an entry, ready to be filled and inserted by [`HashedChainMap::insert`], and where
/// it goes. Dropped unused, it frees the room and gives back its bucket's reservation.
pub(crate) struct PreparedEntry<'a, T: Keyed + 'static, C: 'static = ()> {
    key: u32,
    entry: KBox<MaybeUninit<Entry<T>>>,
    place: Place<'a, T>,
    _map: PhantomData<&'a HashedChainMap<T, C>>,
}

/// Where a prepared entry goes: after the head its bucket had (a chain only grows), or into
/// its bucket, reserved.
enum Place<'a, T: Keyed + 'static> {
    Chain(&'a Entry<T>),
    Bucket(Reservation<'a, Pin<KBox<Entry<T>>>>),
}

/// A shared [`HashedChainMap`] with a lock-free memo of one of its entries.
///
/// Reading the memo takes no lock and no reference count: the memo is a plain pointer, valid
/// because the memo keeps the map alive and the map never removes entries while alive.
///
/// # Invariants
///
/// `memo` is null or points to an entry of `map`.
pub(crate) struct LookupMemo<T: Keyed + 'static, C: 'static = ()> {
    map: Arc<HashedChainMap<T, C>>,
    memo: AtomicPtr<Entry<T>>,
}

impl<T: Keyed + Send + Sync + 'static, C: Send + Sync + 'static> LookupMemo<T, C> {
    /// A memo of lookups in `map`, remembering nothing yet.
    pub(crate) fn new(map: Arc<HashedChainMap<T, C>>) -> Self {
        // INVARIANT: The memo is null.
        Self {
            map,
            memo: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The value with `key`, if any: the remembered entry if it has `key`, else a lookup
    /// (which is then remembered).
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<&T> {
        // SAFETY: A non-null memo points to an entry of `self.map` (type invariant), which `self`
        // keeps alive and which removes no entry while alive, so the entry lives at least as
        // long as `self` is borrowed. The acquire load pairs with the release store in
        // `remember`, which published a pointer to an initialised entry.
        match unsafe { self.memo.load(Ordering::Acquire).as_ref() } {
            Some(entry) if entry.value.key() == key => Some(&entry.value),
            _ => self.remember(key),
        }
    }

    /// Looks up `key`, remembers its entry (or forgets the memo if there is none) and returns
    /// its value.
    pub(crate) fn remember(&self, key: u32) -> Option<&T> {
        let entry = self.map.entry(key);
        // INVARIANT: The memo is null or an entry of `self.map`.
        self.memo.store(
            entry.map_or(ptr::null_mut(), |entry| ptr::from_ref(entry).cast_mut()),
            Ordering::Release,
        );
        entry.map(|entry| &entry.value)
    }
}
