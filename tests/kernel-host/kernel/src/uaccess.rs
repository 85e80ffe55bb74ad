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
