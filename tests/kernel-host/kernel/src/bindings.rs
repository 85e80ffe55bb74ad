// SPDX-License-Identifier: GPL-2.0

//! `kernel::bindings`: what the data structures name of C directly: the page size, `struct
//! page` and `get_random_u32()`.

use core::cell::Cell;

/// `PAGE_SIZE` (x86-64's).
pub const PAGE_SIZE: usize = 4096;

/// `struct page`, opaque. On the host a page's `struct page *` is the address of its memory
/// (see `kernel::page`).
#[repr(C)]
pub struct page {
    _opaque: [u8; 0],
}

thread_local! {
    static NEXT_RANDOM: Cell<u32> = const { Cell::new(0x9e37_79b9) };
}

/// Makes `get_random_u32` return `value` on this thread from now on.
pub fn set_random_u32(value: u32) {
    NEXT_RANDOM.with(|next| next.set(value));
}

/// `get_random_u32()`: the value [`set_random_u32`] chose (by default the golden ratio's
/// 32-bit multiplier).
///
/// # Safety
///
/// None: `unsafe` only because the kernel's binding is.
pub unsafe fn get_random_u32() -> u32 {
    NEXT_RANDOM.with(Cell::get)
}
