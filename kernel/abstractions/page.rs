// SPDX-License-Identifier: GPL-2.0

//! Pages of the kernel's direct map: the address of a page, the page of an address, and a
//! borrowed page.
//!
//! `page_address()` and `virt_to_page()` are macros that neither 6.12's nor 7.x's `kernel`
//! crate wraps (upstream maps a page's memory with `kmap_local_page` for the duration of a
//! closure only): memory that stays at one kernel address for its lifetime, as records
//! mapped into user space do, needs the direct map's address. [`BorrowedPage`] stands in on
//! 6.12 for upstream's `kernel::page::BorrowedPage` (from 6.18), which 7.x uses. The C side is
//! in `helpers.c`.

use core::ptr::NonNull;
use kernel::{bindings, ffi::c_void, page::Page};

#[cfg(not(kernel_6_12))]
pub(crate) use kernel::page::BorrowedPage;

extern "C" {
    // `abstractions/helpers.c`. A `struct page *` as an opaque pointer: bindgen's `page` holds
    // a field type with no members (with lockdep), which the FFI-safety lint rejects.
    fn message_slot_page_address(page: *const c_void) -> *mut c_void;
    fn message_slot_virt_to_page(address: *const c_void) -> *mut c_void;
}

/// A page that someone else owns, borrowed for `'a` (6.12's stand-in for upstream's
/// `kernel::page::BorrowedPage`).
///
/// # Invariants
///
/// `page` is a valid order-0 page that lives for at least `'a`.
#[cfg(kernel_6_12)]
pub(crate) struct BorrowedPage<'a>(NonNull<bindings::page>, core::marker::PhantomData<&'a ()>);

#[cfg(kernel_6_12)]
impl BorrowedPage<'_> {
    /// Borrows the page `page`.
    ///
    /// # Safety
    ///
    /// `page` is a valid order-0 page that lives for at least `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw(page: NonNull<bindings::page>) -> Self {
        // INVARIANT: The caller's guarantee.
        Self(page, core::marker::PhantomData)
    }

    /// The C `struct page`.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }
}

/// The kernel address of `page`'s memory in the direct map (`page_address()`): valid as long
/// as the page is. `page` must not be a high-memory page (allocated without `__GFP_HIGHMEM`),
/// which has no such address; `None` for one.
#[inline]
pub(crate) fn page_address(page: &Page) -> Option<NonNull<u8>> {
    // SAFETY: `page` is a valid page (type invariant of `Page`).
    NonNull::new(unsafe { message_slot_page_address(page.as_ptr().cast::<c_void>()) }.cast::<u8>())
}

/// The page whose memory `address` is in, borrowed for `'a` (`virt_to_page()`).
///
/// # Safety
///
/// `address` is in the direct map's memory of an order-0 page (as [`page_address`] gives)
/// that lives for at least `'a`.
#[inline]
pub(crate) unsafe fn page_of<'a>(address: NonNull<u8>) -> BorrowedPage<'a> {
    // SAFETY: `address` is in the direct map (the caller's guarantee), where `virt_to_page` is
    // arithmetic on the address.
    let page = unsafe { message_slot_virt_to_page(address.as_ptr().cast::<c_void>()) }
        .cast::<bindings::page>();
    // SAFETY: `virt_to_page` of a direct-map address is never null: it is its page's `struct
    // page`, which is the caller's order-0 page, alive for `'a`.
    unsafe { BorrowedPage::from_raw(NonNull::new_unchecked(page)) }
}
