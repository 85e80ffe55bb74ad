// SPDX-License-Identifier: GPL-2.0

//! Host stand-ins of the module's abstractions layer (`kernel/abstractions/`), with the same
//! names and signatures as far as the data structures use them; and its user copies
//! (`uaccess.rs`) themselves, compiled unchanged over the `kernel` stand-in's
//! `copy_from_user()` and `copy_to_user()`.

pub(crate) mod error;
pub(crate) mod page;
pub(crate) mod poll;
pub(crate) mod spinlock;
#[path = "../../../kernel/abstractions/uaccess.rs"]
pub(crate) mod uaccess;
pub(crate) mod xarray;
