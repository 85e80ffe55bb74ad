// SPDX-License-Identifier: GPL-2.0

//! Initialisation and ownership-transfer APIs of the `kernel` crate whose shape changed
//! between 6.12 and 7.x.

use core::ffi::c_void;
use kernel::{prelude::*, types::Opaque};

/// An initialiser of an `Opaque<T>` that runs `init` on the (pinned) `T` and fails with its
/// error: upstream's `Opaque::try_ffi_init` (7.x).
#[cfg(not(kernel_6_12))]
pub(crate) fn opaque_try_ffi_init<T>(
    init: impl FnOnce(*mut T) -> Result,
) -> impl PinInit<Opaque<T>, Error> {
    Opaque::try_ffi_init(init)
}

/// An initialiser of an `Opaque<T>` that runs `init` on the (pinned) `T` and fails with its
/// error: stands in for upstream's `Opaque::try_ffi_init`, which 6.12 lacks.
#[cfg(kernel_6_12)]
pub(crate) fn opaque_try_ffi_init<T>(
    init: impl FnOnce(*mut T) -> Result,
) -> impl PinInit<Opaque<T>, Error> {
    // SAFETY: The closure initialises the slot exactly when `init` succeeds (an `Opaque` is
    // valid uninitialised, so a failed `init` leaves nothing to clean up), and `init` gets a
    // pointer to the pinned `T` inside the `Opaque` (`repr(transparent)`).
    unsafe {
        kernel::init::pin_init_from_closure(move |slot: *mut Opaque<T>| init(Opaque::raw_get(slot)))
    }
}

/// The C pointer (`void *`) of what `ForeignOwnable::into_foreign` returned: `*const` in 6.12,
/// `*mut` in 7.x.
#[cfg(kernel_6_12)]
#[inline]
pub(crate) fn foreign_ptr(ptr: *const c_void) -> *mut c_void {
    ptr.cast_mut()
}

/// The C pointer (`void *`) of what `ForeignOwnable::into_foreign` returned.
#[cfg(not(kernel_6_12))]
#[inline]
pub(crate) fn foreign_ptr(ptr: *mut c_void) -> *mut c_void {
    ptr
}
