// SPDX-License-Identifier: GPL-2.0

//! `abstractions::xarray`: the insert-only map as a `BTreeMap` under a mutex, with the
//! module's reserve-then-fill protocol (a reservation is an allocation, which tests can make
//! fail; reservations of one index are one, given back by the first dropped unused), and a
//! count of the reserved indices for tests to check that none is left behind.

use core::{marker::PhantomPinned, pin::Pin};
use kernel::{
    alloc::{allocation_allowed, Flags},
    prelude::*,
};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

thread_local! {
    /// The reserved (not yet filled, not given back) indices of the maps made on this thread.
    static RESERVED: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
}

/// The indices reserved and neither filled nor given back, in all maps made on this thread.
pub(crate) fn reserved_indices() -> usize {
    RESERVED.with(|reserved| reserved.load(Ordering::SeqCst))
}

/// A heap-owned value the map can hand out borrows of (`ForeignOwnable`, for what the channel
/// index and the record pages store).
pub(crate) trait Owned {
    /// What a lookup returns.
    type Borrowed<'a>
    where
        Self: 'a;

    /// A borrow of the value for as long as the map is borrowed.
    ///
    /// # Safety
    ///
    /// The value is not moved, dropped or mutated for `'a`.
    unsafe fn borrow<'a>(&self) -> Self::Borrowed<'a>;
}

impl<T> Owned for Pin<KBox<T>> {
    type Borrowed<'a>
        = Pin<&'a T>
    where
        T: 'a;

    unsafe fn borrow<'a>(&self) -> Pin<&'a T> {
        // SAFETY: The box's contents stay where they are while it lives, which is for `'a`
        // (the caller's guarantee), and are pinned.
        unsafe { Pin::new_unchecked(&*core::ptr::from_ref::<T>(self)) }
    }
}

impl<T> Owned for KBox<T> {
    type Borrowed<'a>
        = &'a T
    where
        T: 'a;

    unsafe fn borrow<'a>(&self) -> &'a T {
        // SAFETY: The box's contents stay where they are while it lives, which is for `'a`
        // (the caller's guarantee).
        unsafe { &*core::ptr::from_ref::<T>(self) }
    }
}

/// An index's state: reserved (lookups find nothing) or holding a value.
enum Slot<T> {
    Reserved,
    Present(T),
}

/// The map.
#[pin_data(PinnedDrop)]
pub(crate) struct InsertOnlyXArray<T: Owned> {
    slots: Mutex<BTreeMap<u32, Slot<T>>>,
    /// [`RESERVED`] of the thread that made the map.
    reserved: Arc<AtomicUsize>,
    #[pin]
    _pinned: PhantomPinned,
}

impl<T: Owned> InsertOnlyXArray<T> {
    /// An empty map.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            slots: Mutex::new(BTreeMap::new()),
            reserved: RESERVED.with(Arc::clone),
            _pinned: PhantomPinned,
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Slot<T>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value at `index`, if any.
    pub(crate) fn get(&self, index: u32) -> Option<T::Borrowed<'_>> {
        match self.slots().get(&index) {
            // SAFETY: Values are only dropped with the map, never moved or replaced.
            Some(Slot::Present(value)) => Some(unsafe { value.borrow() }),
            _ => None,
        }
    }

    /// Reserves `index`: `ENOMEM` if an allocation was made to fail.
    pub(crate) fn reserve(&self, index: u32, _flags: Flags) -> Result<Reservation<'_, T>> {
        allocation_allowed()?;
        self.slots().entry(index).or_insert_with(|| {
            self.reserved.fetch_add(1, Ordering::SeqCst);
            Slot::Reserved
        });
        Ok(Reservation { map: self, index })
    }

    /// Stores `value` at the reserved index unless a value is there; returns the value there
    /// afterwards and `value` if it was not stored. `ENOMEM` if the index is no longer
    /// reserved (another reservation of it was given back).
    pub(crate) fn get_or_insert(
        &self,
        reservation: Reservation<'_, T>,
        value: T,
    ) -> Result<(T::Borrowed<'_>, Option<T>), (Error, T)> {
        let index = reservation.index;
        core::mem::forget(reservation);
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(&index) else {
            return Err((ENOMEM, value));
        };
        let unstored = match slot {
            Slot::Present(_) => Some(value),
            Slot::Reserved => {
                *slot = Slot::Present(value);
                self.reserved.fetch_sub(1, Ordering::SeqCst);
                None
            }
        };
        let Slot::Present(current) = slot else {
            unreachable!("the slot was just filled")
        };
        // SAFETY: Values are only dropped with the map, never moved or replaced.
        Ok((unsafe { current.borrow() }, unstored))
    }
}

#[pinned_drop]
impl<T: Owned> PinnedDrop for InsertOnlyXArray<T> {
    fn drop(self: Pin<&mut Self>) {
        let reserved = self
            .slots()
            .values()
            .filter(|slot| matches!(slot, Slot::Reserved))
            .count();
        self.reserved.fetch_sub(reserved, Ordering::SeqCst);
    }
}

/// A reserved index, given back (`xa_release`) when dropped unused.
pub(crate) struct Reservation<'a, T: Owned> {
    map: &'a InsertOnlyXArray<T>,
    index: u32,
}

impl<T: Owned> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        let mut slots = self.map.slots();
        if let Some(Slot::Reserved) = slots.get(&self.index) {
            slots.remove(&self.index);
            self.map.reserved.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
