// SPDX-License-Identifier: GPL-2.0

//! Device classes, class devices (which make devtmpfs and udev create `/dev` nodes) and
//! read-only numeric sysfs attributes of the class's devices.
//!
//! Stands in for C's `class_create()`, `device_create()` and `DEVICE_ATTR_RO()`: the `kernel`
//! crate has no class or sysfs-attribute abstraction (on every kernel of vm/kernels: upstream's
//! `kernel::device` wraps only existing devices; a class abstraction is not upstream yet).

use super::chrdev::{device_number, minor_of};
use core::{ffi::CStr, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::from_err_ptr,
    ffi::{c_char, c_void},
    prelude::*,
    sync::Arc,
};

/// `s` as the kernel's `char` pointer. 7.x's clippy configuration forbids `CStr::as_ptr` (the
/// kernel's `char` is unsigned) in favour of upstream's `as_char_ptr`, whose `const` form this
/// is; 6.12 has neither.
const fn char_ptr(s: &CStr) -> *const c_char {
    #[cfg(kernel_6_12)]
    {
        s.as_ptr().cast()
    }
    #[cfg(not(kernel_6_12))]
    {
        kernel::str::as_char_ptr_in_const_context(s)
    }
}

/// A read-only sysfs attribute of the devices of a [`Class<T>`] whose value is a `u64`,
/// computed by [`U64Attributes::value`] from the device's driver data (a `T`), its minor and
/// the attribute's key.
///
/// # Invariants
///
/// `attr.show` is [`show::<T>`].
#[repr(C)]
pub(crate) struct U64Attribute<T: U64Attributes> {
    attr: bindings::device_attribute,
    key: T::Key,
}

impl<T: U64Attributes> Clone for U64Attribute<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: U64Attributes> Copy for U64Attribute<T> {}

/// The driver data of a class's devices, which computes their `u64` attributes.
pub(crate) trait U64Attributes: Sync + 'static {
    /// What tells the attributes apart (e.g. an enum of them).
    type Key: Copy + Sync;

    /// The value of the attribute with `key` of the device with minor `minor`. May sleep.
    fn value(&self, minor: u32, key: Self::Key) -> u64;
}

/// The `show` callback of a [`U64Attribute`]: prints the value and a newline.
///
/// # Safety
///
/// Called by sysfs with a live device of a [`Class`] whose devices' driver data is a `T` that
/// lives while the device exists, and `attr` inside a [`U64Attribute<T>`].
unsafe extern "C" fn show<T: U64Attributes>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `attr` is the first field of a `repr(C)` `U64Attribute<T>` (guaranteed by the
    // caller), so the pointers are the same.
    let key = unsafe { (*attr.cast::<U64Attribute<T>>()).key };
    // SAFETY: `dev` is live during the callback; `driver_data` is a `T` that outlives it
    // (the device is destroyed, which waits for running `show` callbacks, before the `T`).
    let (data, devt) = unsafe { (&*(*dev).driver_data.cast::<T>(), (*dev).devt) };
    let value = data.value(minor_of(devt), key);
    // SAFETY: `buf` is the page sysfs hands to `show`; the format takes one `u64`.
    unsafe { bindings::sysfs_emit(buf, char_ptr(c"%llu\n").cast(), value) as isize }
}

// SAFETY: The attribute is never written after it is built (the kernel only reads it); its
// pointers are to a `'static` name and a function, and its key is `Sync`.
unsafe impl<T: U64Attributes> Sync for U64Attribute<T> {}

impl<T: U64Attributes> U64Attribute<T> {
    /// Attribute `name` (mode 0440: root and, through the udev rule, the device nodes'
    /// group), the value of [`U64Attributes::value`] of `T` for `key`.
    pub(crate) const fn new(name: &'static CStr, key: T::Key) -> Self {
        // SAFETY: All-zero is a valid `device_attribute` (no callbacks, no lockdep key: the
        // attribute is static, so sysfs uses its static `skey`).
        let mut attr: bindings::device_attribute =
            unsafe { core::mem::MaybeUninit::zeroed().assume_init() };
        attr.attr.name = char_ptr(name).cast();
        attr.attr.mode = 0o440;
        // INVARIANT: `show::<T>` for `T`.
        #[cfg(kernel_6_12)]
        {
            attr.show = Some(show::<T>);
        }
        // 7.x: `show` shares a `__SYSFS_FUNCTION_ALTERNATIVE` with `show_const` (during the
        // sysfs const conversion); the driver core calls whichever is set.
        #[cfg(not(kernel_6_12))]
        {
            attr.__bindgen_anon_1.show = Some(show::<T>);
        }
        Self { attr, key }
    }

    /// The attributes of `keys`, in order, attribute `i` named `names[i]` (at least one: the
    /// first key fills the array before it is overwritten).
    pub(crate) const fn list<const N: usize>(
        keys: [T::Key; N],
        names: [&'static CStr; N],
    ) -> [Self; N] {
        let mut attributes = [Self::new(c"", keys[0]); N];
        let mut index = 0;
        while index < N {
            attributes[index] = Self::new(names[index], keys[index]);
            index += 1;
        }
        attributes
    }
}

/// The attribute pointer table of a group of [`U64Attribute<T>`]s: one pointer to each, then
/// a null (`N1` is the number of attributes plus one). Built at compile time into a `static`
/// (sysfs keeps pointers to it), never written.
///
/// # Invariants
///
/// The first `N1 - 1` pointers point to the `attr.attr` of `'static` [`U64Attribute<T>`]s,
/// the last is null.
pub(crate) struct AttributePointers<T: U64Attributes, const N1: usize> {
    pointers: [*mut bindings::attribute; N1],
    _attributes: PhantomData<T>,
}

// SAFETY: Never written after it is built; it points to `'static` attributes, which are `Sync`.
unsafe impl<T: U64Attributes, const N1: usize> Sync for AttributePointers<T, N1> {}

impl<T: U64Attributes, const N1: usize> AttributePointers<T, N1> {
    /// The table of `attributes` (`N1` is `N + 1`, checked at compile time).
    pub(crate) const fn new<const N: usize>(attributes: &'static [U64Attribute<T>; N]) -> Self {
        assert!(N1 == N + 1);
        let mut pointers = [core::ptr::null_mut(); N1];
        let mut index = 0;
        while index < N {
            pointers[index] = core::ptr::from_ref(&attributes[index].attr.attr).cast_mut();
            index += 1;
        }
        // INVARIANT: A pointer to each attribute, then the null set above.
        Self {
            pointers,
            _attributes: PhantomData,
        }
    }
}

/// An unnamed `attribute_group` of [`U64Attribute<T>`]s, built at compile time into a
/// `static` from their [`AttributePointers`], never written.
///
/// # Invariants
///
/// `group.attrs` points to the pointers of a `'static` [`AttributePointers<T, _>`]; the rest
/// of `group` is zero.
pub(crate) struct AttributeGroup<T: U64Attributes> {
    group: bindings::attribute_group,
    _attributes: PhantomData<T>,
}

// SAFETY: Never written after it is built; it points to `'static`, `Sync` data.
unsafe impl<T: U64Attributes> Sync for AttributeGroup<T> {}

impl<T: U64Attributes> AttributeGroup<T> {
    /// The group of the attributes of `pointers`.
    pub(crate) const fn new<const N1: usize>(pointers: &'static AttributePointers<T, N1>) -> Self {
        // SAFETY: All-zero is a valid `attribute_group` (unnamed, no callbacks).
        let mut group: bindings::attribute_group =
            unsafe { core::mem::MaybeUninit::zeroed().assume_init() };
        let attrs = pointers.pointers.as_ptr().cast_mut();
        #[cfg(kernel_6_12)]
        {
            group.attrs = attrs;
        }
        // 7.x: `attrs` shares a `__SYSFS_FUNCTION_ALTERNATIVE` with `attrs_const`.
        #[cfg(not(kernel_6_12))]
        {
            group.__bindgen_anon_2.attrs = attrs;
        }
        // INVARIANT: `attrs` set to `pointers`', the rest zero.
        Self {
            group,
            _attributes: PhantomData,
        }
    }
}

/// The `attribute_group` list (`class->dev_groups`) of a class whose devices' driver data
/// is a `T`: one [`AttributeGroup<T>`] and a null. Built at compile time into a `static`,
/// never written: complete before anything can read it.
///
/// # Invariants
///
/// `groups[0]` points to the group of a `'static` [`AttributeGroup<T>`], `groups[1]` is null.
pub(crate) struct AttributeGroups<T: U64Attributes> {
    groups: [*const bindings::attribute_group; 2],
    _attributes: PhantomData<T>,
}

// SAFETY: Never written after it is built; it points to `'static`, `Sync` data.
unsafe impl<T: U64Attributes> Sync for AttributeGroups<T> {}

impl<T: U64Attributes> AttributeGroups<T> {
    /// The list of `group`.
    pub(crate) const fn new(group: &'static AttributeGroup<T>) -> Self {
        // INVARIANT: `group`'s, then null.
        Self {
            groups: [core::ptr::from_ref(&group.group), core::ptr::null()],
            _attributes: PhantomData,
        }
    }

    /// The `const struct attribute_group **` to hand to the kernel (which only reads it).
    fn as_ptr(&'static self) -> *mut *const bindings::attribute_group {
        self.groups.as_ptr().cast_mut()
    }
}

/// A device class (`/sys/class/NAME`) whose devices, minors `0..added` of `major`, get
/// their nodes in `/dev/NAME/MINOR`.
///
/// # Invariants
///
/// `class` was returned by `class_create()`; it and its devices (minors `0..added` of
/// `major`) are destroyed on drop; its devices' driver data is `data`'s `T`, which the class
/// keeps alive.
pub(crate) struct Class<T: U64Attributes> {
    class: NonNull<bindings::class>,
    name: &'static CStr,
    data: Arc<T>,
    major: u32,
    added: u32,
}

// SAFETY: The class is only used through the kernel's functions, which may be called from
// any thread; `T` is `Sync`.
unsafe impl<T: U64Attributes> Send for Class<T> {}
// SAFETY: As above.
unsafe impl<T: U64Attributes> Sync for Class<T> {}

/// `class->devnode`: the node of a device is `/dev/CLASS/MINOR`.
///
/// # Safety
///
/// Called by the driver core with a live device of a class created by [`Class::new`].
unsafe extern "C" fn devnode(
    dev: *const bindings::device,
    _mode: *mut bindings::umode_t,
) -> *mut c_char {
    // SAFETY: `dev` is live, and so is its class (the device holds it).
    let (class_name, devt) = unsafe { ((*(*dev).class).name, (*dev).devt) };
    let minor = minor_of(devt);
    // SAFETY: The format takes a string (the class name, NUL-terminated) and an
    // `unsigned int`; the caller frees the result with `kfree`.
    unsafe {
        bindings::kasprintf(
            bindings::GFP_KERNEL,
            char_ptr(c"%s/%u").cast(),
            class_name,
            minor,
        )
    }
}

impl<T: U64Attributes> Class<T> {
    /// Creates class `name`, whose devices are minors of `major` and have the attributes
    /// `groups` and driver data `data` (kept alive by the class).
    pub(crate) fn new(
        name: &'static CStr,
        major: u32,
        groups: &'static AttributeGroups<T>,
        data: Arc<T>,
    ) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated and `'static`.
        let class = from_err_ptr(unsafe { bindings::class_create(char_ptr(name).cast()) })?;
        let class = NonNull::new(class).ok_or(ENOMEM)?;
        // SAFETY: The class is ours and has no devices yet; the groups are `'static` and
        // their `show` callbacks expect a `T` as driver data (`show::<T>`: type invariant of
        // `U64Attribute<T>`), which is what `add` passes.
        unsafe {
            (*class.as_ptr()).devnode = Some(devnode);
            (*class.as_ptr()).dev_groups = groups.as_ptr();
        }
        // INVARIANT: Created above; the class holds `data`.
        Ok(Self {
            class,
            name,
            data,
            major,
            added: 0,
        })
    }

    /// Adds the device of the next minor (0, then 1, ...), named after the class and the
    /// minor (`NAME0`, `NAME1`, ...): devtmpfs and udev create its node. Removed when the
    /// class is dropped.
    pub(crate) fn add_next(&mut self) -> Result {
        let devt = device_number(self.major, self.added);
        // SAFETY: The class is live (type invariant), the format takes a NUL-terminated
        // string (the `'static` class name) and an `unsigned int` (the driver core prints the
        // name into memory of its own), and the driver data is the class's `T`, which the
        // class keeps alive, so it outlives the device.
        let device = unsafe {
            bindings::device_create(
                self.class.as_ptr(),
                core::ptr::null_mut(),
                devt,
                core::ptr::from_ref::<T>(&self.data)
                    .cast_mut()
                    .cast::<c_void>(),
                char_ptr(c"%s%u").cast(),
                char_ptr(self.name),
                self.added,
            )
        };
        from_err_ptr(device)?;
        // INVARIANT: The device of minor `added` exists.
        self.added += 1;
        Ok(())
    }
}

impl<T: U64Attributes> Drop for Class<T> {
    fn drop(&mut self) {
        for minor in 0..self.added {
            // SAFETY: The class is live and has a device for `minor` (type invariant);
            // `device_destroy` waits for its attributes' running `show` callbacks.
            unsafe {
                bindings::device_destroy(self.class.as_ptr(), device_number(self.major, minor))
            };
        }
        // SAFETY: Created by `class_create` (type invariant), now without devices, and
        // destroyed only here.
        unsafe { bindings::class_destroy(self.class.as_ptr()) };
    }
}
