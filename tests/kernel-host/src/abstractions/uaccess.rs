// SPDX-License-Identifier: GPL-2.0

//! `abstractions::uaccess`: user copies between host buffers, `EFAULT` for the first page
//! (see `kernel::uaccess`).
//!
//! The kernel's `copy_to_user` reads a source that writers may be changing (a seqlock reader
//! retries then); here that read is done with atomic loads of the words the writers store,
//! so it is no data race on the host either (and no mixed-size atomic access).

use core::{
    mem::MaybeUninit,
    sync::atomic::{AtomicU64, Ordering},
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
/// `source` is aligned to 8 bytes and valid for reads of `len` rounded up to a multiple of 8
/// bytes, written concurrently only by atomic stores of whole aligned `u64` words (as a
/// channel's message words are); `destination`, if accessible, is a host buffer of `len` bytes
/// that nothing else accesses.
pub(crate) unsafe fn copy_to_user(destination: UserPtr, source: *const u8, len: usize) -> Result {
    destination.accessible(len)?;
    let destination = destination.as_mut_ptr().cast::<u8>();
    let words = source.cast::<AtomicU64>();
    for (index, offset) in (0..len).step_by(8).enumerate() {
        // SAFETY: The word is aligned and within the source (the caller's guarantee); it is
        // loaded with the size and atomicity of the writers' stores.
        let word = unsafe { (*words.add(index)).load(Ordering::Relaxed) }.to_ne_bytes();
        let count = (len - offset).min(8);
        // SAFETY: `destination` is valid for `len` bytes (the caller's guarantee) and
        // `offset + count <= len`.
        unsafe { core::ptr::copy_nonoverlapping(word.as_ptr(), destination.add(offset), count) };
    }
    Ok(())
}
