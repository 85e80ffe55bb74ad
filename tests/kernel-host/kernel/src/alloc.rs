// SPDX-License-Identifier: GPL-2.0

//! `kernel::alloc`: GFP flags and `KBox`, a `Box` whose allocation can fail on purpose.

use crate::error::{code::ENOMEM, Error, Result};
use core::{cell::Cell, pin::Pin};
use pinned_init::{pin_init_from_closure, InPlaceInit, PinInit};

/// GFP flags: carried, not interpreted (host allocations do not reclaim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u32);

/// The GFP flag constants the module's code names.
pub mod flags {
    use super::Flags;

    /// `GFP_KERNEL`.
    pub const GFP_KERNEL: Flags = Flags(1);
}

thread_local! {
    /// Allocations to let through, then allocations to fail, on this thread.
    static FAILURES: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
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

/// `KBox<T>`: a `Box` (the kernel's carries its allocator; the host has one).
pub type KBox<T> = Box<T>;

/// `KBox`'s fallible constructor that takes GFP flags.
pub trait KBoxInit<T>: Sized {
    /// Allocates and pin-initialises a `T` (`KBox::pin_init`).
    fn pin_init<E>(init: impl PinInit<T, E>, flags: Flags) -> Result<Pin<Self>>
    where
        Error: From<E>;
}

impl<T> KBoxInit<T> for Box<T> {
    fn pin_init<E>(init: impl PinInit<T, E>, _flags: Flags) -> Result<Pin<Self>>
    where
        Error: From<E>,
    {
        allocation_allowed()?;
        <Box<T> as InPlaceInit<T>>::try_pin_init(with_error(init))
    }
}
