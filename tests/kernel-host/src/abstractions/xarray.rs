// SPDX-License-Identifier: GPL-2.0

//! `abstractions::xarray`: the insert-only map as a `BTreeMap` under a mutex, with the
//! module's reserve-then-fill protocol (a reservation is an allocation, which tests can make
//! fail).

use core::{marker::PhantomPinned, pin::Pin};
use kernel::{
    alloc::{allocation_allowed, Flags},
    prelude::*,
};
use std::{collections::BTreeMap, sync::Mutex};

/// A heap-owned value the map can hand out borrows of (`ForeignOwnable`, for what the channel
/// index stores).
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

impl<T> Owned for Pin<Box<T>> {
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

/// An index's state: reserved (lookups find nothing) or holding a value.
enum Slot<T> {
    Reserved,
    Present(T),
}

/// The map.
#[pin_data]
pub(crate) struct InsertOnlyMap<T: Owned> {
    slots: Mutex<BTreeMap<u32, Slot<T>>>,
    #[pin]
    _pinned: PhantomPinned,
}

impl<T: Owned> InsertOnlyMap<T> {
    /// An empty map.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            slots: Mutex::new(BTreeMap::new()),
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
    pub(crate) fn reserve(&self, index: u32, _flags: Flags) -> Result<Reservation> {
        allocation_allowed()?;
        self.slots().entry(index).or_insert(Slot::Reserved);
        Ok(Reservation { index })
    }

    /// Stores `value` at the reserved index unless a value is there; returns the value there
    /// afterwards and `value` if it was not stored.
    pub(crate) fn get_or_insert(
        &self,
        reservation: Reservation,
        value: T,
    ) -> Result<(T::Borrowed<'_>, Option<T>), (Error, T)> {
        let mut slots = self.slots();
        let slot = slots.entry(reservation.index).or_insert(Slot::Reserved);
        let unstored = match slot {
            Slot::Present(_) => Some(value),
            Slot::Reserved => {
                *slot = Slot::Present(value);
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

/// A reserved index.
pub(crate) struct Reservation {
    index: u32,
}
