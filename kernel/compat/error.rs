// SPDX-License-Identifier: GPL-2.0

//! Error codes the `kernel` crate does not declare.

use kernel::{bindings, error::Error};

/// `EMSGSIZE` ("Message too long"), missing from `kernel::error::code`.
pub(crate) fn emsgsize() -> Error {
    Error::from_errno(-(bindings::EMSGSIZE as i32))
}
