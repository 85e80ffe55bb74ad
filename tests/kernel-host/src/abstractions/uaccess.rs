// SPDX-License-Identifier: GPL-2.0

//! `abstractions::uaccess`: user copies between host buffers, `EFAULT` for the first page
//! (see `kernel::uaccess`).
//!
//! The kernel's `copy_to_user` reads a source that writers may be changing (a seqlock reader
//! retries then); here that read is done with atomic loads, so it is no data race on the host
//! either.

use core::{
    mem::MaybeUninit,
    sync::atomic::{AtomicU8, Ordering},
};
use kernel::{error::Result, uaccess::UserPtr};

/// The user address of a host buffer.
pub(crate) fn user_ptr<T>(ptr: *const T) -> UserPtr {
    UserPtr::from_ptr(ptr.cast_mut().cast())
}

/// `copy_from_user`: `EFAULT` (and `destination` zeroed) unless `source` is accessible.
pub(crate) fn copy_from_user(destination: &mut [MaybeUninit<u8>], source: UserPtr) -> Result {
    if let Err(error) = source.accessible(destination.len()) {
        destination.fill(MaybeUninit::new(0));
        return Err(error);
    }
    // SAFETY: A test passes the address of a host buffer of at least this length, which nothing
    // writes meanwhile; `MaybeUninit<u8>` has the layout of `u8`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            source.as_mut_ptr().cast::<MaybeUninit<u8>>(),
            destination.as_mut_ptr(),
            destination.len(),
        )
    };
    Ok(())
}

/// `copy_to_user` from memory that may be written concurrently: `EFAULT` unless
/// `destination` is accessible.
///
/// # Safety
///
/// `source` is valid for reads of `len` bytes, written concurrently only by atomic stores;
/// `destination`, if accessible, is a host buffer of `len` bytes that nothing else accesses.
pub(crate) unsafe fn copy_to_user(destination: UserPtr, source: *const u8, len: usize) -> Result {
    destination.accessible(len)?;
    let destination = destination.as_mut_ptr().cast::<u8>();
    for offset in 0..len {
        // SAFETY: Both are valid for `len` bytes (the caller's guarantee); the source is read
        // atomically because writers may store into it.
        unsafe {
            let byte = (*source.add(offset).cast::<AtomicU8>()).load(Ordering::Relaxed);
            destination.add(offset).write(byte);
        }
    }
    Ok(())
}
