// SPDX-License-Identifier: GPL-2.0

//! A host stand-in for the parts of Rust-for-Linux's `kernel` crate that the module's data
//! structures (`kernel/channel.rs`, `kernel/channel_index.rs`, `kernel/record.rs`,
//! `kernel/record_pages.rs`) use, in the shape of 7.x's: `prelude` (the `pinned-init`
//! crate's (upstream's `pin-init` on crates.io) macros and traits, which upstream's are),
//! `KBox`, `Arc`, `Mutex`, `alloc::Flags`, `Error` and its codes, `page::Page`,
//! `uaccess::UserPtr`, `ffi::c_void` and `bindings::{PAGE_SIZE, get_random_u32, copy_from_user,
//! copy_to_user}`.
//!
//! It exists so that `tests/kernel-host` can compile the module's own source files on the
//! host and test their logic (see that crate). Allocation can be made to fail
//! ([`alloc::fail_allocations`]) and boxes and pages are counted while they live
//! ([`alloc::Allocations`]), user addresses are host addresses with the first page unmapped
//! ([`uaccess`]), and the "random" numbers are chosen by the test
//! ([`bindings::set_random_u32`]).

pub mod alloc;
pub mod bindings;
pub mod error;
pub mod page;

/// `kernel::ffi`: C's types.
pub mod ffi {
    pub use core::ffi::c_void;
}

pub mod sync;
pub mod uaccess;

/// What the module's files import with `use kernel::prelude::*`.
pub mod prelude {
    pub use crate::alloc::{flags::*, KBox};
    pub use crate::error::{code::*, Error, Result};
    pub use core::pin::Pin;
    pub use pinned_init::{pin_data, pin_init, pinned_drop, InPlaceWrite, PinInit};
}
