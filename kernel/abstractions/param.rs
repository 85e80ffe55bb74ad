// SPDX-License-Identifier: GPL-2.0

//! Read-only `uint` module parameters.
//!
//! Stands in for the `params` section of upstream's `module!`: 6.12 has none, and 7.x's
//! registers its parameters with permissions 0, so they do not show in
//! `/sys/module/*/parameters/`, where this driver documents its limit. [`uint_param!`]
//! declares one the way C's `module_param(name, uint, 0444)` plus `MODULE_PARM_DESC` do: a
//! `kernel_param` in the `__param` section pointing at the value, and its `.modinfo` strings.
//! The kernel parses `insmod MODULE.ko name=N` into the value before the module's init runs;
//! afterwards the value is read-only (sysfs mode 0444), so plain atomic loads read it.

use kernel::bindings;

/// A `kernel_param` the kernel may read from any thread.
#[repr(transparent)]
pub(crate) struct KernelParam(pub(crate) bindings::kernel_param);

// SAFETY: The kernel only reads the descriptor; the value it points to is an atomic.
unsafe impl Sync for KernelParam {}

/// Declares `static $value: AtomicU32` (initially `$default`) as the read-only module
/// parameter `$name` of type `uint`, described by `$description` in `modinfo`.
///
/// `#[used(compiler)]` keeps the statics in sections with the same flags as the `.modinfo`
/// strings `module!` emits, as modpost requires.
macro_rules! uint_param {
    ($value:ident, $name:literal, $default:expr, $description:literal) => {
        static $value: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new($default);

        const _: () = {
            #[used(compiler)]
            #[link_section = "__param"]
            static PARAM: $crate::abstractions::param::KernelParam =
                $crate::abstractions::param::KernelParam(kernel::bindings::kernel_param {
                    name: concat!($name, "\0").as_ptr().cast(),
                    mod_: core::ptr::addr_of_mut!(kernel::bindings::__this_module),
                    ops: core::ptr::addr_of!(kernel::bindings::param_ops_uint),
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: kernel::bindings::kernel_param__bindgen_ty_1 {
                        // `AtomicU32` has the layout of the `unsigned int` that
                        // `param_ops_uint` writes.
                        arg: $value.as_ptr().cast(),
                    },
                });

            const TYPE: &str = concat!("parmtype=", $name, ":uint\0");
            #[used(compiler)]
            #[link_section = ".modinfo"]
            static PARM_TYPE: [u8; TYPE.len()] = *$crate::abstractions::param::as_array(TYPE);

            const DESCRIPTION: &str = concat!("parm=", $name, ":", $description, "\0");
            #[used(compiler)]
            #[link_section = ".modinfo"]
            static PARM_DESCRIPTION: [u8; DESCRIPTION.len()] =
                *$crate::abstractions::param::as_array(DESCRIPTION);
        };
    };
}
pub(crate) use uint_param;

/// The bytes of `text` as an array of its length (for `.modinfo` statics); evaluated at
/// compile time, where a wrong `N` fails the build.
pub(crate) const fn as_array<const N: usize>(text: &'static str) -> &'static [u8; N] {
    match text.as_bytes().first_chunk::<N>() {
        Some(array) => array,
        None => panic!("length mismatch"),
    }
}
