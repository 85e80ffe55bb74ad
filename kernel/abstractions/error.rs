// SPDX-License-Identifier: GPL-2.0

//! Error codes the `kernel` crate does not declare.

use kernel::error::Error;

/// `EMSGSIZE` ("Message too long"): declared in `kernel::error::code` from 7.x on.
#[cfg(kernel_6_12)]
pub(crate) fn emsgsize() -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

/// `EMSGSIZE` ("Message too long").
#[cfg(not(kernel_6_12))]
pub(crate) fn emsgsize() -> Error {
    kernel::error::code::EMSGSIZE
}
