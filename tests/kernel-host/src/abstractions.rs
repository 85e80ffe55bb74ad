// SPDX-License-Identifier: GPL-2.0

//! Host stand-ins of the module's abstractions layer (`kernel/abstractions/`), with the same
//! names and signatures as far as the data structures use them.

pub(crate) mod error;
pub(crate) mod page;
pub(crate) mod poll;
pub(crate) mod spinlock;
pub(crate) mod uaccess;
pub(crate) mod xarray;
