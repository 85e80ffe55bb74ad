// SPDX-License-Identifier: GPL-2.0

//! `abstractions::uaccess`: copies from user memory into host buffers, `EFAULT` for the first
//! page (see `kernel::uaccess`).

use kernel::{error::Result, uaccess::UserPtr};

/// The user address of a host buffer.
pub(crate) fn user_ptr<T>(ptr: *const T) -> UserPtr {
    UserPtr::from_ptr(ptr.cast_mut().cast())
}

/// `copy_from_user`: `EFAULT` (and `destination` zeroed) unless `source` is accessible.
pub(crate) fn copy_from_user(destination: &mut [u8], source: UserPtr) -> Result {
    if let Err(error) = source.accessible(destination.len()) {
        destination.fill(0);
        return Err(error);
    }
    // SAFETY: A test passes the address of a host buffer of at least this length, which nothing
    // writes meanwhile.
    unsafe {
        core::ptr::copy_nonoverlapping(
            source.as_mut_ptr().cast::<u8>(),
            destination.as_mut_ptr(),
            destination.len(),
        )
    };
    Ok(())
}
