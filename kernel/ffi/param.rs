// SPDX-License-Identifier: GPL-2.0

//! The module's one parameter, `max_channels` (6.12's `module!` has no `params`).
//!
//! Declared the way C's `module_param(max_channels, uint, 0444)` is: a `kernel_param` in the
//! `__param` section pointing at the value, plus its `.modinfo` strings. The kernel parses
//! `insmod message_slot.ko max_channels=N` into the value before the module's init runs, and
//! the value is read-only afterwards (sysfs mode 0444), so plain atomic loads read it.

use crate::uapi::CHANNELS_PER_SLOT;
use core::{
    ptr::{addr_of, addr_of_mut},
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::bindings;

static MAX_CHANNELS: AtomicU32 = AtomicU32::new(CHANNELS_PER_SLOT as u32);

/// A `kernel_param` the kernel may read from any thread.
///
/// `#[used(compiler)]` below keeps these statics in sections with the same flags as the
/// `.modinfo` strings `module!` emits, as modpost requires.
#[repr(transparent)]
struct KernelParam(bindings::kernel_param);

// SAFETY: The kernel only reads the descriptor; the value it points to is an atomic.
unsafe impl Sync for KernelParam {}

#[used(compiler)]
#[link_section = "__param"]
static MAX_CHANNELS_PARAM: KernelParam = KernelParam(bindings::kernel_param {
    name: c"max_channels".as_ptr().cast(),
    mod_: addr_of_mut!(bindings::__this_module),
    ops: addr_of!(bindings::param_ops_uint),
    perm: 0o444,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        // `AtomicU32` has the layout of the `unsigned int` that `param_ops_uint` writes.
        arg: MAX_CHANNELS.as_ptr().cast(),
    },
});

#[used(compiler)]
#[link_section = ".modinfo"]
static MAX_CHANNELS_TYPE: [u8; 27] = *b"parmtype=max_channels:uint\0";

#[used(compiler)]
#[link_section = ".modinfo"]
static MAX_CHANNELS_DESC: [u8; 65] =
    *b"parm=max_channels:most channels per slot (default 1048576, >= 1)\0";

/// The most channels a slot may hold (`max_channels=`, default [`CHANNELS_PER_SLOT`]).
pub(crate) fn max_channels() -> u32 {
    MAX_CHANNELS.load(Ordering::Relaxed)
}
