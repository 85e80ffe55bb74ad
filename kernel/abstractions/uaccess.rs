// SPDX-License-Identifier: GPL-2.0

//! User addresses, and copies between user memory and kernel memory: C's `copy_from_user()`
//! and `copy_to_user()`, each once, with the kernel's checks (`access_ok`, hardened usercopy).
//!
//! Stands in for `kernel::uaccess::UserSlice{Reader,Writer}` where their shape does not fit:
//! `UserSliceWriter` copies from a `&[u8]`, which promises that nobody writes the bytes
//! meanwhile, while a seqlock reader copies from memory a writer may be changing and detects
//! that afterwards ([`copy_to_user`]); and `UserSliceReader::read_raw` is an out-of-line
//! function around the same `copy_from_user()` that [`copy_from_user`] calls inline, on a
//! path (every write) where that call is a tenth of the driver's own code.

use core::mem::MaybeUninit;
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
pub(crate) fn copy_from_user(destination: &mut [MaybeUninit<u8>], source: UserPtr) -> Result {
    // SAFETY: `destination` is valid for writes of its length (any bytes are valid
    // `MaybeUninit<u8>`s); `copy_from_user` checks the user range itself (`access_ok`) and
    // handles faults.
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

/// Copies `len` bytes from kernel address `source` to user address `destination` with C's
/// `copy_to_user()` (which may fault pages in, and so sleep): `EFAULT` unless all were copied
/// (some may have been).
///
/// Stands in for `UserSliceWriter::write_slice`, which takes a `&[u8]`: this takes a raw
/// pointer, for a source that other threads may write while it is copied (a seqlock reader,
/// which retries on a concurrent write). The copy is the architecture's user-copy routine, so
/// such a race stays outside Rust's memory model; the bytes copied may then be inconsistent,
/// which the caller detects and repairs.
///
/// # Safety
///
/// `source` is valid for reads of `len` bytes for the duration of the call (it may be written
/// concurrently, but not freed).
#[inline]
pub(crate) unsafe fn copy_to_user(destination: UserPtr, source: *const u8, len: usize) -> Result {
    // SAFETY: `source` is valid for reads of `len` bytes (the caller's guarantee);
    // `copy_to_user` checks the user range itself (`access_ok`) and handles faults.
    let uncopied =
        unsafe { bindings::copy_to_user(user_ptr_to_c(destination), source.cast::<c_void>(), len) };
    if uncopied == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}
