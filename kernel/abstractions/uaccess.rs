// SPDX-License-Identifier: GPL-2.0

//! User addresses, and copies between user memory and kernel memory: C's `copy_from_user()`
//! and `copy_to_user()`, each once, with the kernel's checks (`access_ok`, hardened usercopy).
//!
//! Stands in for `kernel::uaccess::UserSlice{Reader,Writer}`, whose `read_raw` and
//! `write_slice` are out-of-line functions around the same `copy_from_user()` and
//! `copy_to_user()` that these call inline, on paths (every write, every read) where such a
//! call is a tenth of the driver's own code.

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

/// The `len` bytes at user address `source`, then zeros, as `N` native-endian words (the bytes
/// in memory order), read with [`copy_from_user`]: `EFAULT` unless all were copied,
/// `EINVAL` if `len` is 0 or more than `N` words hold.
///
/// Zeroes only the words the copy does not fill whole (the last it reaches into and those
/// after it), not the whole array first: a memset of the array is a `rep stos` on x86-64,
/// one step per word under an emulator.
#[inline]
pub(crate) fn read_words_from_user<const N: usize>(
    source: UserPtr,
    len: usize,
) -> Result<[u64; N]> {
    let mut words = [MaybeUninit::<u64>::uninit(); N];
    // The word holding the last byte, and those after it.
    let last = len.checked_sub(1).ok_or(EINVAL)? / core::mem::size_of::<u64>();
    let (last_word, after) = words
        .get_mut(last..)
        .and_then(<[_]>::split_first_mut)
        .ok_or(EINVAL)?;
    last_word.write(0);
    // Most messages fill the array, or nearly: no call of `memset` for nothing.
    if !after.is_empty() {
        for word in after {
            word.write(0);
        }
    }
    // SAFETY: `words` is valid for writes of `N * 8 >= len` bytes (`last < N`), and writing
    // bytes into a `MaybeUninit<u64>` is valid; the slice borrows `words` mutably for its
    // lifetime.
    let bytes = unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    copy_from_user(bytes, source)?;
    // SAFETY: Words `0..last` are written whole by the copy (their bytes are the first
    // `last * 8 < len`), words `last..N` were zeroed (the copy then overwrote some bytes of
    // word `last`): every word is initialised. `MaybeUninit<u64>` has the layout of `u64`.
    Ok(words.map(|word| unsafe { word.assume_init() }))
}

/// Copies the first `len` bytes of `words` (in memory order) to user address `destination`,
/// with [`copy_to_user`]: `EFAULT` unless all were copied, `EINVAL` if `words` is shorter
/// than `len` bytes.
#[inline]
pub(crate) fn copy_words_to_user<const N: usize>(
    destination: UserPtr,
    words: &[u64; N],
    len: usize,
) -> Result {
    if len > core::mem::size_of_val(words) {
        return Err(EINVAL);
    }
    // SAFETY: `words` is valid for reads of its size, at least `len` bytes, all initialised;
    // the slice borrows `words` for its lifetime.
    let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) };
    copy_to_user(destination, bytes)
}
