// SPDX-License-Identifier: GPL-2.0

//! GFP flags as the raw `gfp_t` that C allocation APIs take.
//!
//! Stands in for `kernel::alloc::Flags::as_raw`, which is crate-private in 6.12 (public
//! upstream from 6.13).

use kernel::{alloc::Flags, bindings};

// `Flags` is a struct whose only field is the `u32` of its raw `gfp_t` bits (6.12's
// `rust/kernel/alloc.rs`); with equal sizes, that field covers all of its bytes.
const _: () = assert!(core::mem::size_of::<Flags>() == core::mem::size_of::<bindings::gfp_t>());

/// The raw `gfp_t` of `flags`.
#[inline]
pub(crate) fn raw_gfp(flags: Flags) -> bindings::gfp_t {
    // SAFETY: `Flags` holds exactly one `u32` (see the assertion above), which is its `gfp_t`
    // value; every `u32` is a valid `gfp_t`.
    unsafe { core::mem::transmute::<Flags, bindings::gfp_t>(flags) }
}
