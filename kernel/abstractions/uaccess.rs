// SPDX-License-Identifier: GPL-2.0

//! User addresses, and copies between user memory and kernel memory: C's `copy_from_user()`
//! and `copy_to_user()`, each once, with the kernel's checks (`access_ok`, hardened usercopy).
//!
//! Stands in for `kernel::uaccess::UserSlice{Reader,Writer}`, whose `read_raw` and
//! `write_slice` are out-of-line functions around the same `copy_from_user()` and
//! `copy_to_user()` that these call inline, on paths (every write, every read) where such a
//! call is a tenth of the driver's own code.

use kernel::{bindings, ffi::c_void, prelude::*, uaccess::UserPtr};

/// The C pointer of a user address.
#[cfg(kernel_6_12)]
#[inline]
fn user_ptr_to_c(ptr: UserPtr) -> *mut c_void {
    ptr as *mut c_void
}

/// The C pointer of a user address.
#[cfg(not(kernel_6_12))]
#[inline]
fn user_ptr_to_c(ptr: UserPtr) -> *mut c_void {
    ptr.as_mut_ptr()
}

/// A user address from the C pointer the VFS passes (a `UserPtr` is an integer in 6.12, a
/// pointer newtype in 7.x).
#[cfg(kernel_6_12)]
#[inline]
pub(crate) fn user_ptr<T>(ptr: *const T) -> UserPtr {
    ptr as UserPtr
}

/// A user address from the C pointer the VFS passes.
#[cfg(not(kernel_6_12))]
#[inline]
pub(crate) fn user_ptr<T>(ptr: *const T) -> UserPtr {
    UserPtr::from_ptr(ptr.cast_mut().cast())
}

/// Copies `destination.len()` bytes from user address `source` into `destination` with C's
/// `copy_from_user()`: `EFAULT` unless all were copied (the rest is then zeroed). Reads user
/// memory once.
#[inline]
pub(crate) fn copy_from_user(destination: &mut [u8], source: UserPtr) -> Result {
    // SAFETY: `destination` is valid for writes of its length; `copy_from_user` checks the user
    // range itself (`access_ok`) and handles faults.
    let uncopied = unsafe {
        bindings::copy_from_user(
            destination.as_mut_ptr().cast::<c_void>(),
            user_ptr_to_c(source),
            destination.len(),
        )
    };
    if uncopied == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}

/// Copies `source` to user address `destination` with C's `copy_to_user()` (which may fault
/// pages in, and so sleep): `EFAULT` unless all was copied (some may have been).
///
/// Stands in for `UserSliceWriter::write_slice`, which makes the same call through an
/// out-of-line function of the `kernel` crate (a read's only other call into C).
#[inline]
pub(crate) fn copy_to_user(destination: UserPtr, source: &[u8]) -> Result {
    // SAFETY: `source` is valid for reads of its length; `copy_to_user` checks the user range
    // itself (`access_ok`) and handles faults.
    let uncopied = unsafe {
        bindings::copy_to_user(
            user_ptr_to_c(destination),
            source.as_ptr().cast::<c_void>(),
            source.len(),
        )
    };
    if uncopied == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}
