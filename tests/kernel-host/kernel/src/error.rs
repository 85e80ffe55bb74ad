// SPDX-License-Identifier: GPL-2.0

//! `kernel::error`: an errno and the codes the module uses.

use crate::alloc::AllocError;
use core::convert::Infallible;

/// A negative errno.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(i32);

impl Error {
    fn name(self) -> &'static str {
        match self {
            code::EFAULT => "EFAULT",
            code::EINVAL => "EINVAL",
            code::ENOMEM => "ENOMEM",
            code::ENOSPC => "ENOSPC",
            code::EMSGSIZE => "EMSGSIZE",
            _ => "errno",
        }
    }
}

impl core::fmt::Debug for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl From<Infallible> for Error {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl From<AllocError> for Error {
    fn from(_: AllocError) -> Self {
        code::ENOMEM
    }
}

/// `Result` with [`Error`] by default.
pub type Result<T = (), E = Error> = core::result::Result<T, E>;

/// The errno constants (x86-64 numbers).
pub mod code {
    use super::Error;

    /// Bad address.
    pub const EFAULT: Error = Error(-14);
    /// Invalid argument.
    pub const EINVAL: Error = Error(-22);
    /// Out of memory.
    pub const ENOMEM: Error = Error(-12);
    /// No space left.
    pub const ENOSPC: Error = Error(-28);
    /// Message too long.
    pub const EMSGSIZE: Error = Error(-90);
}
