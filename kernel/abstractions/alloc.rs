// SPDX-License-Identifier: GPL-2.0

//! GFP flags as the raw `gfp_t` that C allocation APIs take, and the flags the `kernel` crate
//! does not declare.
//!
//! Stands in for `kernel::alloc::Flags::as_raw`, which is crate-private in 6.12 (public
//! upstream from 6.13), and for the constructor of `Flags` from raw bits, which is
//! crate-private in 6.12 and 7.x alike; [`__GFP_RETRY_MAYFAIL`] for a constant that neither kernel
//! crate declares.

use kernel::{alloc::Flags, bindings};

// `Flags` is a struct whose only field is the `u32` of its raw `gfp_t` bits (`rust/kernel/
// alloc.rs`, 6.12 and 7.x); with equal sizes, that field covers all of its bytes.
const _: () = assert!(core::mem::size_of::<Flags>() == core::mem::size_of::<bindings::gfp_t>());

/// The raw `gfp_t` of `flags`.
#[inline]
pub(crate) fn raw_gfp(flags: Flags) -> bindings::gfp_t {
    // SAFETY: `Flags` holds exactly one `u32` (see the assertion above), which is its `gfp_t`
    // value; every `u32` is a valid `gfp_t`.
    unsafe { core::mem::transmute::<Flags, bindings::gfp_t>(flags) }
}

/// The `Flags` of the raw `gfp_t` bits `raw`.
const fn from_raw(raw: bindings::gfp_t) -> Flags {
    // SAFETY: `Flags` holds exactly one `u32`, its `gfp_t` bits (see the assertion above), and
    // any bits are a valid `Flags` (the kernel crate builds them with `|` and `!` freely).
    unsafe { core::mem::transmute::<bindings::gfp_t, Flags>(raw) }
}

/// `__GFP_RETRY_MAYFAIL`: the allocator (and the memory cgroup charge) reclaims and retries
/// as long as that makes progress, then fails rather than invoking the OOM killer.
pub(crate) const __GFP_RETRY_MAYFAIL: Flags = from_raw(1 << bindings::___GFP_RETRY_MAYFAIL_BIT);
