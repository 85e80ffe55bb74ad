// SPDX-License-Identifier: GPL-2.0

//! A host stand-in for the parts of Rust-for-Linux's `kernel` crate that `kernel/channel.rs`
//! and `kernel/channel_index.rs` use, in the shape of 7.x's: `prelude` (the `pinned-init` crate's (upstream's `pin-init` on crates.io)
//! macros, which upstream's are), `KBox`, `Arc`, `alloc::Flags`, `Error` and its codes,
//! `uaccess` and `bindings::get_random_u32`.
//!
//! It exists so that `tests/kernel-host` can compile the module's own source files on the
//! host and test their logic (see that crate). Allocation can be made to fail
//! ([`alloc::fail_allocations`]), user addresses are host addresses with the first page
//! unmapped ([`uaccess`]), and the "random" numbers are chosen by the test
//! ([`bindings::set_random_u32`]).

pub mod alloc;
pub mod bindings;
pub mod error;
pub mod sync;
pub mod uaccess;

/// What the module's files import with `use kernel::prelude::*`.
pub mod prelude {
    pub use crate::alloc::{KBox, KBoxInit as _};
    pub use crate::error::{code::*, Error, Result};
    pub use core::pin::Pin;
    pub use pinned_init::{pin_data, pin_init, pinned_drop, PinInit};
}
