// SPDX-License-Identifier: GPL-2.0

//! `kernel::bindings`: what the data structures and their user copies name of C directly: the
//! page size, `struct page`, `get_random_u32()`, `copy_from_user()` and `copy_to_user()`.

use crate::{ffi::c_void, uaccess::UserPtr};
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

/// `copy_from_user()`: copies `n` bytes from user address `from` to `to`; returns the number
/// of bytes not copied (all of them for an address in the unmapped first page, see
/// `kernel::uaccess`), which are then zeroed.
///
/// # Safety
///
/// `to` is valid for writes of `n` bytes; `from`, if not in the first page, is a host buffer
/// of at least `n` bytes that nothing writes meanwhile.
pub unsafe fn copy_from_user(to: *mut c_void, from: *const c_void, n: usize) -> usize {
    if UserPtr::from_ptr(from.cast_mut()).accessible(n).is_err() {
        // SAFETY: `to` is valid for writes of `n` bytes (the caller's guarantee).
        unsafe { to.cast::<u8>().write_bytes(0, n) };
        return n;
    }
    // SAFETY: Both are valid for `n` bytes (the caller's guarantee) and do not overlap (one is
    // the kernel's, the other the user's).
    unsafe { core::ptr::copy_nonoverlapping(from.cast::<u8>(), to.cast::<u8>(), n) };
    0
}

/// `copy_to_user()`: copies `n` bytes from `from` to user address `to`; returns the number of
/// bytes not copied (all of them for an address in the unmapped first page).
///
/// # Safety
///
/// `from` is valid for reads of `n` bytes; `to`, if not in the first page, is a host buffer of
/// at least `n` bytes that nothing else accesses meanwhile.
pub unsafe fn copy_to_user(to: *mut c_void, from: *const c_void, n: usize) -> usize {
    if UserPtr::from_ptr(to).accessible(n).is_err() {
        return n;
    }
    // SAFETY: Both are valid for `n` bytes (the caller's guarantee) and do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(from.cast::<u8>(), to.cast::<u8>(), n) };
    0
}
