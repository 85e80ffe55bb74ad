// SPDX-License-Identifier: GPL-2.0

//! Copying to user memory without sleeping.
//!
//! `kernel::uaccess::UserSliceWriter` copies with `copy_to_user()`, which may fault pages in
//! and so sleep; inside an RCU read-side critical section only a copy that does not fault may
//! run. This wraps C's `copy_to_user_nofault()` (no Rust abstraction upstream yet).

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

/// Copies `data` to user address `destination` with page faults disabled: `EFAULT` if any of
/// it is not mapped writable right now (it may be after a normal, faulting copy). Never sleeps.
#[inline]
pub(crate) fn copy_to_user_nofault(destination: UserPtr, data: &[u8]) -> Result {
    // SAFETY: `data` is valid for reads of `data.len()` bytes; `copy_to_user_nofault` checks
    // the user range itself (`access_ok`) and does not fault.
    let ret = unsafe {
        bindings::copy_to_user_nofault(
            user_ptr_to_c(destination),
            data.as_ptr().cast::<c_void>(),
            data.len(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(EFAULT)
    }
}
