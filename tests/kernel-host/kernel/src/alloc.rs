// SPDX-License-Identifier: GPL-2.0

//! `kernel::alloc`: GFP flags, `AllocError` and `KBox`, a box whose allocation can fail on
//! purpose and is counted while it lives.

use crate::error::{code::ENOMEM, Error, Result};
use core::{
    cell::Cell,
    mem::MaybeUninit,
    ops::{BitOr, Deref, DerefMut},
    pin::Pin,
};
use pinned_init::{pin_init_from_closure, InPlaceWrite, Init, PinInit};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

/// GFP flags: carried, and only `__GFP_ZERO` interpreted (host allocations do not reclaim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// Whether every flag of `flags` is set in `self`.
    pub fn contains(self, flags: Flags) -> bool {
        self.0 & flags.0 == flags.0
    }
}

impl BitOr for Flags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// The GFP flag constants the module's code names.
pub mod flags {
    use super::Flags;

    /// `GFP_KERNEL`.
    pub const GFP_KERNEL: Flags = Flags(1);
    /// `__GFP_ZERO`: the allocation is zeroed.
    #[allow(non_upper_case_globals)]
    pub const __GFP_ZERO: Flags = Flags(1 << 8);
}

/// An allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

thread_local! {
    /// Allocations to let through, then allocations to fail, on this thread.
    static FAILURES: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// The live boxes allocated on this thread.
    static LIVE: Allocations = Allocations::new();
}

/// Lets the next `after` allocations on this thread succeed and makes the `count` after them
/// fail with `ENOMEM` (like failslab); `(0, 0)` ends it.
pub fn fail_allocations(after: usize, count: usize) {
    FAILURES.with(|failures| failures.set((after, count)));
}

/// `ENOMEM` if this allocation is one [`fail_allocations`] asked to fail.
pub fn allocation_allowed() -> Result {
    FAILURES.with(|failures| match failures.get() {
        (0, 0) => Ok(()),
        (0, count) => {
            failures.set((0, count - 1));
            Err(ENOMEM)
        }
        (after, count) => {
            failures.set((after - 1, count));
            Ok(())
        }
    })
}

/// A count of live allocations of one thread: those made there and not freed yet (wherever
/// they are freed).
#[derive(Clone, Debug)]
pub struct Allocations(Arc<AtomicUsize>);

impl Allocations {
    /// The count of the [`KBox`]es allocated on this thread.
    pub fn of_boxes() -> Self {
        LIVE.with(Self::clone)
    }

    /// A new count, at 0 (for another kind of allocation).
    pub(crate) fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(0)))
    }

    /// Allocations counted and not freed yet.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts one allocation.
    pub(crate) fn allocated(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts one allocation freed.
    pub(crate) fn freed(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `init` with its error converted to an [`Error`].
pub(crate) fn with_error<T, E>(init: impl PinInit<T, E>) -> impl PinInit<T, Error>
where
    Error: From<E>,
{
    // SAFETY: The closure initialises `slot` exactly as `init` does, pinned, and fails exactly
    // when it fails, leaving `slot` as `init` leaves it.
    unsafe {
        pin_init_from_closure(move |slot: *mut T| init.__pinned_init(slot).map_err(Error::from))
    }
}

/// A box's allocation: the value first (so that a pointer to it is one to the allocation),
/// then the count it is counted in.
#[repr(C)]
struct Counted<T> {
    value: T,
    owner: Allocations,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.owner.freed();
    }
}

/// `KBox<T>`: a heap allocation (the kernel's `Box<T, Kmalloc>`) with the kernel's fallible
/// constructors, counted in [`Allocations::of_boxes`] of the thread that made it while it
/// lives.
pub struct KBox<T>(Box<Counted<T>>);

impl<T> KBox<T> {
    /// `value` in a new box: `AllocError` if an allocation was made to fail.
    pub fn new(value: T, _flags: Flags) -> Result<Self, AllocError> {
        allocation_allowed().map_err(|_| AllocError)?;
        let owner = Allocations::of_boxes();
        owner.allocated();
        Ok(Self(Box::new(Counted { value, owner })))
    }

    /// An uninitialised box.
    pub fn new_uninit(flags: Flags) -> Result<KBox<MaybeUninit<T>>, AllocError> {
        KBox::new(MaybeUninit::uninit(), flags)
    }

    /// Allocates and pin-initialises a `T` (`InPlaceInit::pin_init`).
    pub fn pin_init<E>(init: impl PinInit<T, E>, flags: Flags) -> Result<Pin<Self>>
    where
        Error: From<E>,
    {
        Self::new_uninit(flags)?.write_pin_init(with_error(init))
    }

    /// The box as a raw pointer to its value, which [`KBox::from_raw`] turns back into it.
    pub fn into_raw(this: Self) -> *mut T {
        // The value is the first field of a `repr(C)` struct: at the allocation's address.
        Box::into_raw(this.0).cast::<T>()
    }

    /// The box [`KBox::into_raw`] gave `raw` for.
    ///
    /// # Safety
    ///
    /// `raw` came from [`KBox::into_raw`] and is not used afterwards.
    pub unsafe fn from_raw(raw: *mut T) -> Self {
        // SAFETY: `raw` points to the first field of the `Counted<T>` that `into_raw` leaked
        // (the caller's guarantee), at its address, with its provenance.
        Self(unsafe { Box::from_raw(raw.cast::<Counted<T>>()) })
    }
}

impl<T> KBox<MaybeUninit<T>> {
    /// The box, its value initialised.
    ///
    /// # Safety
    ///
    /// The value is initialised.
    unsafe fn assume_init(self) -> KBox<T> {
        let raw = Box::into_raw(self.0).cast::<Counted<T>>();
        // SAFETY: `Counted<MaybeUninit<T>>` and `Counted<T>` have the same layout (`repr(C)`,
        // `MaybeUninit<T>` has `T`'s); the value is initialised (the caller's guarantee).
        KBox(unsafe { Box::from_raw(raw) })
    }
}

impl<T> InPlaceWrite<T> for KBox<MaybeUninit<T>> {
    type Initialized = KBox<T>;

    fn write_init<E>(mut self, init: impl Init<T, E>) -> Result<KBox<T>, E> {
        let slot = self.0.value.as_mut_ptr();
        // SAFETY: `slot` is valid for writes; if `init` fails, the box is freed without
        // dropping its value.
        unsafe { init.__init(slot)? };
        // SAFETY: `init` succeeded: the value is initialised.
        Ok(unsafe { self.assume_init() })
    }

    fn write_pin_init<E>(mut self, init: impl PinInit<T, E>) -> Result<Pin<KBox<T>>, E> {
        let slot = self.0.value.as_mut_ptr();
        // SAFETY: `slot` is valid for writes and never moves (the box is pinned below); if
        // `init` fails, the box is freed without dropping its value.
        unsafe { init.__pinned_init(slot)? };
        // SAFETY: `init` succeeded: the value is initialised, and it stays where it is until the
        // box is freed.
        Ok(unsafe { Pin::new_unchecked(self.assume_init()) })
    }
}

impl<T> Deref for KBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T> DerefMut for KBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.value
    }
}
