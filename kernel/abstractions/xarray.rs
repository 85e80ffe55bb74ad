// SPDX-License-Identifier: GPL-2.0

//! An insert-only map from `u32` indices to owned values, on the kernel's XArray.
//!
//! Stands in for upstream's `kernel::xarray::XArray` (not in 6.12), restricted to what an
//! insert-only map needs: `xa_load`, `xa_reserve`, a store into a reserved index,
//! `xa_release` of a reservation that was not used, and teardown. Lookups are lock-free
//! (`xa_load` runs under RCU internally); an insert first reserves its index (allocating the
//! nodes, before the caller takes any lock of its own), then stores without allocating.
//! Entries are only removed when the whole map is dropped, which is what makes handing out
//! borrows for `&self` sound.

use super::{alloc::raw_gfp, sched::cond_resched};
use core::{marker::PhantomData, ptr};
use kernel::{
    alloc::Flags,
    bindings,
    error::to_result,
    ffi::{c_ulong, c_void},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};

/// `XA_PRESENT`, the search mark matching every present entry (a cast macro bindgen skips).
const XA_PRESENT: bindings::xa_mark_t = 8;
/// `XA_ZERO_ENTRY`, what a reserved index holds: `xa_mk_internal(257)` (a macro).
const XA_ZERO_ENTRY: *mut c_void = ((257 << 2) | 2) as *mut c_void;

extern "C" {
    // `abstractions/helpers.c`.
    fn message_slot_xa_reserve(
        xa: *mut bindings::xarray,
        index: c_ulong,
        gfp: bindings::gfp_t,
    ) -> i32;
    fn message_slot_xa_release(xa: *mut bindings::xarray, index: c_ulong);
    fn message_slot_xa_fill_reserved(
        xa: *mut bindings::xarray,
        index: c_ulong,
        entry: *mut c_void,
    ) -> *mut c_void;
}

/// Lockdep class of every map's internal spinlock.
struct LockClass(Opaque<bindings::lock_class_key>);

// SAFETY: A `lock_class_key` is only used by lockdep, which synchronises its own accesses.
unsafe impl Sync for LockClass {}

static LOCK_CLASS: LockClass = LockClass(Opaque::uninit());

/// A map from `u32` to `T`, where entries can be added but not removed while it is shared.
///
/// Dropping the map may sleep (it yields the CPU while freeing its entries).
///
/// # Invariants
///
/// `xa` is an initialised XArray. Every entry in it came from `T::into_foreign` and is owned
/// by the map; entries are only removed (and converted back) in `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct InsertOnlyMap<T: ForeignOwnable> {
    #[pin]
    xa: Opaque<bindings::xarray>,
    _owns: PhantomData<T>,
}

// SAFETY: The XArray synchronises its own accesses; the map hands out `T::Borrowed` to several
// threads (so `T: Sync`) and drops `T`s on whichever thread drops the map (so `T: Send`).
unsafe impl<T: ForeignOwnable + Send + Sync> Sync for InsertOnlyMap<T> {}
// SAFETY: As above; moving the map moves ownership of its `T`s.
unsafe impl<T: ForeignOwnable + Send> Send for InsertOnlyMap<T> {}

impl<T: ForeignOwnable> InsertOnlyMap<T> {
    /// An empty map.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            xa <- Opaque::ffi_init(|xa: *mut bindings::xarray| {
                // SAFETY: `xa` is valid for writes. This is `xa_init_flags(xa, 0)`, an inline C
                // function: initialise the lock, no flags, an empty head.
                unsafe {
                    bindings::__spin_lock_init(
                        ptr::addr_of_mut!((*xa).xa_lock),
                        kernel::c_str!("InsertOnlyMap::xa_lock").as_char_ptr(),
                        LOCK_CLASS.0.get(),
                    );
                    ptr::addr_of_mut!((*xa).xa_flags).write(0);
                    ptr::addr_of_mut!((*xa).xa_head).write(ptr::null_mut());
                }
            }),
            _owns: PhantomData,
        })
    }

    /// The entry at `index`, if any.
    pub(crate) fn get(&self, index: u32) -> Option<T::Borrowed<'_>> {
        // SAFETY: `xa` is initialised (type invariant); `xa_load` takes the RCU read lock.
        let entry = unsafe { bindings::xa_load(self.xa.get(), index as c_ulong) };
        if entry.is_null() {
            return None;
        }
        // SAFETY: Non-null entries came from `T::into_foreign` (type invariant) and are only
        // converted back in `drop`, which cannot run while `self` is borrowed.
        Some(unsafe { T::borrow(entry) })
    }

    /// Reserves `index` (`xa_reserve()`): allocates, with `flags`, the nodes an entry there
    /// needs, so that [`InsertOnlyMap::get_or_insert`] allocates nothing. Lookups still find
    /// nothing at a reserved index. A reservation dropped unused is given back
    /// (`xa_release()`): the index is empty again and the nodes it needed alone are freed.
    /// `ENOMEM` if the nodes cannot be allocated.
    ///
    /// Reservations of the same index are one reservation: the first one given back gives it
    /// back for all (a later [`InsertOnlyMap::get_or_insert`] with another of them fails
    /// with `ENOMEM`), unless an entry was stored there meanwhile.
    pub(crate) fn reserve(&self, index: u32, flags: Flags) -> Result<Reservation<'_, T>> {
        // SAFETY: `xa` is initialised (type invariant); `xa_reserve` takes its lock itself.
        to_result(unsafe {
            message_slot_xa_reserve(self.xa.get(), index as c_ulong, raw_gfp(flags))
        })?;
        // INVARIANT: `index` was reserved in `self` just now.
        Ok(Reservation { map: self, index })
    }

    /// Stores `value` at the reserved index unless an entry is there; returns the entry at the
    /// index afterwards and, if `value` was not stored, `value` itself (so that the caller
    /// drops it outside any lock). Allocates nothing. Uses up the reservation.
    ///
    /// Errors: `ENOMEM` (giving `value` back) if the index is no longer reserved (another
    /// reservation of it was given back, see [`InsertOnlyMap::reserve`]), as storing there
    /// would need an allocation.
    pub(crate) fn get_or_insert(
        &self,
        reservation: Reservation<'_, T>,
        value: T,
    ) -> Result<(T::Borrowed<'_>, Option<T>), (Error, T)> {
        let index = reservation.index;
        // Used up here: whatever the store does, the index is not ours to give back (it holds
        // an entry, or nothing).
        core::mem::forget(reservation);
        let entry = super::init::foreign_ptr(value.into_foreign());
        // SAFETY: `xa` is initialised (type invariant); the helper takes the lock itself and
        // stores only into a reserved index, which allocates nothing.
        let current =
            unsafe { message_slot_xa_fill_reserved(self.xa.get(), index as c_ulong, entry) };
        if current == entry {
            // SAFETY: `entry` is now owned by the map, which keeps it until `drop`.
            return Ok((unsafe { T::borrow(entry) }, None));
        }
        // SAFETY: `entry` was not stored, so ownership returns to us.
        let value = unsafe { T::from_foreign(entry) };
        if current.is_null() {
            return Err((ENOMEM, value));
        }
        // SAFETY: A non-null entry other than ours came from `T::into_foreign` (type
        // invariant; the helper returns no reserved entries) and stays until `drop`, which
        // cannot run while `self` is borrowed.
        Ok((unsafe { T::borrow(current) }, Some(value)))
    }
}

/// A reservation of an index of an [`InsertOnlyMap`] (see [`InsertOnlyMap::reserve`]),
/// given back when dropped unused.
///
/// # Invariants
///
/// `index` was reserved in `map` by `xa_reserve()`.
pub(crate) struct Reservation<'a, T: ForeignOwnable> {
    map: &'a InsertOnlyMap<T>,
    index: u32,
}

impl<T: ForeignOwnable> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `xa` is initialised (type invariant of the map, which outlives `self`);
        // `xa_release` takes the lock itself and only empties the index if it still holds
        // the reserved entry (never an entry of the map).
        unsafe { message_slot_xa_release(self.map.xa.get(), self.index as c_ulong) };
    }
}

#[pinned_drop]
impl<T: ForeignOwnable> PinnedDrop for InsertOnlyMap<T> {
    fn drop(self: Pin<&mut Self>) {
        let xa = self.xa.get();
        let mut index: c_ulong = 0;
        // SAFETY: `xa` is initialised and no longer shared. Each entry came from
        // `T::into_foreign` and is converted back exactly once: `xa_find_after` moves past it.
        unsafe {
            let mut entry = bindings::xa_find(xa, &mut index, u32::MAX as c_ulong, XA_PRESENT);
            while !entry.is_null() {
                // Reserved indices hold `XA_ZERO_ENTRY`, which is not ours.
                if entry != XA_ZERO_ENTRY {
                    drop(T::from_foreign(entry));
                }
                // Millions of entries may be freed here (at module unload): let others run.
                cond_resched();
                entry = bindings::xa_find_after(xa, &mut index, u32::MAX as c_ulong, XA_PRESENT);
            }
            bindings::xa_destroy(xa);
        }
    }
}
