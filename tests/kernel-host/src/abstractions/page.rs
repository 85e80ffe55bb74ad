// SPDX-License-Identifier: GPL-2.0

//! `abstractions::page`: the address of a page and the page of an address, over the host's
//! pages of the `kernel` stand-in (whose `struct page *` is the address of the page's memory),
//! and upstream's `BorrowedPage`.

use core::ptr::NonNull;
use kernel::{bindings::PAGE_SIZE, page::Page};

pub(crate) use kernel::page::BorrowedPage;

/// The address of `page`'s memory (`page_address()`).
pub(crate) fn page_address(page: &Page) -> Option<NonNull<u8>> {
    NonNull::new(page.as_ptr().cast::<u8>())
}

/// The page whose memory `address` is in, borrowed for `'a` (`virt_to_page()`); panics unless
/// that page is live.
///
/// # Safety
///
/// `address` is in the memory of a page that lives for at least `'a`.
pub(crate) unsafe fn page_of<'a>(address: NonNull<u8>) -> BorrowedPage<'a> {
    let offset = address.as_ptr() as usize % PAGE_SIZE;
    let page = address
        .as_ptr()
        .wrapping_sub(offset)
        .cast::<kernel::bindings::page>();
    // SAFETY: The page's address is not null (it holds `address`) and the page lives for `'a`
    // (the caller's guarantee; `from_raw` checks that it is live).
    unsafe { BorrowedPage::from_raw(NonNull::new(page).expect("a page at address 0")) }
}
