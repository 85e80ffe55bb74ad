// SPDX-License-Identifier: GPL-2.0

//! `kernel::page`: an owned order-0 page and a borrowed one. On the host a page is a
//! page-aligned block of `PAGE_SIZE` bytes, and its `struct page *` is the block's address (so
//! `page_address()` and `virt_to_page()` are casts); the live pages are registered, so that
//! tests can see which are freed and a borrow of a page that is not live fails.

use crate::{
    alloc::{allocation_allowed, flags::__GFP_ZERO, AllocError, Allocations, Flags},
    bindings::{self, PAGE_SIZE},
};
use core::{marker::PhantomData, mem::ManuallyDrop, ops::Deref, ptr::NonNull};
use std::{
    alloc::{alloc, alloc_zeroed, dealloc, Layout},
    collections::HashMap,
    sync::Mutex,
};

/// The byte a page allocated without `__GFP_ZERO` is filled with (the kernel's holds whatever
/// its last user left).
pub const GARBAGE: u8 = 0xa5;

thread_local! {
    /// The live pages allocated on this thread.
    static LIVE: Allocations = Allocations::new();
}

/// The live pages: their addresses, and the count each is counted in.
static PAGES: Mutex<Option<HashMap<usize, Allocations>>> = Mutex::new(None);

fn pages<R>(change: impl FnOnce(&mut HashMap<usize, Allocations>) -> R) -> R {
    let mut pages = PAGES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    change(pages.get_or_insert_with(HashMap::new))
}

/// The count of the pages allocated on this thread that are not freed yet.
pub fn allocations() -> Allocations {
    LIVE.with(Allocations::clone)
}

/// Whether `page` is a page allocated and not yet freed.
pub fn is_live(page: *const bindings::page) -> bool {
    pages(|pages| pages.contains_key(&(page as usize)))
}

fn layout() -> Layout {
    // Never fails: a power of two, and its size a multiple of it.
    Layout::from_size_align(PAGE_SIZE, PAGE_SIZE).expect("a page's layout")
}

/// An owned order-0 page.
///
/// # Invariants
///
/// `page` is the address of a live block allocated with `layout()`, owned by this value,
/// registered in `PAGES`.
pub struct Page {
    page: NonNull<bindings::page>,
}

// SAFETY: A page is memory that any thread may own and free.
unsafe impl Send for Page {}
// SAFETY: `&Page` only gives out the page's address.
unsafe impl Sync for Page {}

impl Page {
    /// A page (`alloc_page()`), zeroed with `__GFP_ZERO` (else filled with [`GARBAGE`]):
    /// `AllocError` if an allocation was made to fail.
    pub fn alloc_page(flags: Flags) -> Result<Self, AllocError> {
        allocation_allowed().map_err(|_| AllocError)?;
        let zeroed = flags.contains(__GFP_ZERO);
        // SAFETY: The layout's size is not zero.
        let block = unsafe {
            if zeroed {
                alloc_zeroed(layout())
            } else {
                alloc(layout())
            }
        };
        let page = NonNull::new(block.cast::<bindings::page>()).ok_or(AllocError)?;
        if !zeroed {
            // SAFETY: The block is valid for writes of its size.
            unsafe { block.write_bytes(GARBAGE, PAGE_SIZE) };
        }
        let owner = allocations();
        owner.allocated();
        pages(|pages| pages.insert(page.as_ptr() as usize, owner));
        // INVARIANT: Allocated, owned and registered just now.
        Ok(Self { page })
    }

    /// The page's `struct page *` (on the host: the address of its memory).
    pub fn as_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let owner = pages(|pages| pages.remove(&(self.page.as_ptr() as usize)))
            .expect("a page freed twice or never allocated");
        owner.freed();
        // SAFETY: The block was allocated with this layout and is owned by `self` (type
        // invariant).
        unsafe { dealloc(self.page.as_ptr().cast::<u8>(), layout()) };
    }
}

/// A page someone else owns, borrowed for `'a` (upstream's, from 6.18).
///
/// # Invariants
///
/// The page is live for `'a`, and never freed through this value.
pub struct BorrowedPage<'a>(ManuallyDrop<Page>, PhantomData<&'a Page>);

impl BorrowedPage<'_> {
    /// Borrows the page `page`.
    ///
    /// # Safety
    ///
    /// `page` is a live page that lives for at least `'a`.
    pub unsafe fn from_raw(page: NonNull<bindings::page>) -> Self {
        assert!(is_live(page.as_ptr()), "borrowed a page that is not live");
        // INVARIANT: The caller's guarantee; the `Page` is never dropped.
        Self(ManuallyDrop::new(Page { page }), PhantomData)
    }
}

impl Deref for BorrowedPage<'_> {
    type Target = Page;

    fn deref(&self) -> &Page {
        &self.0
    }
}
