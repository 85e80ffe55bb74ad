// SPDX-License-Identifier: GPL-2.0

//! `abstractions::error`: `EMSGSIZE`.

use kernel::error::{code::EMSGSIZE, Error};

/// `EMSGSIZE`.
pub(crate) fn emsgsize() -> Error {
    EMSGSIZE
}
