// SPDX-License-Identifier: GPL-2.0

//! `kernel::uaccess`: user addresses are host addresses, except that the first page is
//! "unmapped": a copy that touches it fails with `EFAULT`, as a bad user pointer does.

use crate::error::{code::EFAULT, Result};

/// A user address (7.x: a pointer newtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPtr(usize);

impl UserPtr {
    /// The user address of `ptr`.
    pub fn from_ptr(ptr: *mut core::ffi::c_void) -> Self {
        Self(ptr as usize)
    }

    /// The address as a pointer.
    pub fn as_mut_ptr(self) -> *mut core::ffi::c_void {
        self.0 as *mut core::ffi::c_void
    }

    /// Whether `len` bytes from here can be copied: not in the first page, no wrap-around.
    pub fn accessible(self, len: usize) -> Result {
        match self.0.checked_add(len) {
            Some(_) if self.0 >= 4096 => Ok(()),
            _ => Err(EFAULT),
        }
    }
}

/// `len` bytes of user memory at an address.
pub struct UserSlice {
    ptr: UserPtr,
    len: usize,
}

impl UserSlice {
    /// The `len` bytes at `ptr`.
    pub fn new(ptr: UserPtr, len: usize) -> Self {
        Self { ptr, len }
    }

    /// A writer of the slice.
    pub fn writer(self) -> UserSliceWriter {
        UserSliceWriter(self)
    }
}

/// Writes into a [`UserSlice`].
pub struct UserSliceWriter(UserSlice);

impl UserSliceWriter {
    /// Copies `data` to the start of the slice: `EFAULT` if it does not fit or the memory is
    /// "unmapped".
    pub fn write_slice(self, data: &[u8]) -> Result {
        if data.len() > self.0.len {
            return Err(EFAULT);
        }
        self.0.ptr.accessible(data.len())?;
        // SAFETY: A test passes the address of host memory it owns, valid for `len` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.0.ptr.as_mut_ptr().cast(),
                data.len(),
            )
        };
        Ok(())
    }
}
