// SPDX-License-Identifier: GPL-2.0

//! A virtual memory area being set up by a file's `mmap` operation: its flags, its range and
//! offset, and `vm_insert_page()`.
//!
//! On 7.x this is upstream's `kernel::mm::virt` (for Rust binder's mappings); 6.12 lacks it,
//! and the 6.12 code here is the subset of it the driver uses, in its shape, to be deleted
//! with 6.12 support. Neither has the mapping's offset ([`pgoff`]).

#[cfg(kernel_6_12)]
use kernel::bindings;

#[cfg(not(kernel_6_12))]
pub(crate) use kernel::mm::virt::{flags, VmaNew};

/// The offset of the mapping in the file, in pages (`vm_pgoff`).
#[inline]
pub(crate) fn pgoff(vma: &VmaNew) -> usize {
    // SAFETY: The vma is being set up by an `mmap` operation (type invariant of `VmaNew`),
    // with the mmap lock held for writing, so nobody writes its fields meanwhile.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// The vma flags the driver uses (6.12's stand-in for `kernel::mm::virt::flags`).
#[cfg(kernel_6_12)]
pub(crate) mod flags {
    use kernel::bindings;

    /// The integer type of vma flags.
    pub(crate) type VmFlags = bindings::vm_flags_t;

    /// Mapping allows writes.
    pub(crate) const WRITE: VmFlags = bindings::VM_WRITE as VmFlags;
    /// Mapping allows execution.
    pub(crate) const EXEC: VmFlags = bindings::VM_EXEC as VmFlags;
    /// `mprotect()` may make the mapping writable.
    pub(crate) const MAYWRITE: VmFlags = bindings::VM_MAYWRITE as VmFlags;
    /// `mprotect()` may make the mapping executable.
    pub(crate) const MAYEXEC: VmFlags = bindings::VM_MAYEXEC as VmFlags;
    /// The mapping is `MAP_SHARED` (set whether or not it may be written).
    pub(crate) const MAYSHARE: VmFlags = bindings::VM_MAYSHARE as VmFlags;
    /// `mremap()` may not grow the mapping.
    pub(crate) const DONTEXPAND: VmFlags = bindings::VM_DONTEXPAND as VmFlags;
    /// The mapping may hold `struct page`s inserted by the driver.
    pub(crate) const MIXEDMAP: VmFlags = bindings::VM_MIXEDMAP as VmFlags;
}

/// A vma being set up by a file's `mmap` operation (6.12's stand-in for
/// `kernel::mm::virt::VmaNew`).
///
/// # Invariants
///
/// The vma is undergoing its initial setup in an `f_ops->mmap()` hook, for the duration of the
/// borrow (with the mmap lock held for writing).
#[cfg(kernel_6_12)]
#[repr(transparent)]
pub(crate) struct VmaNew {
    vma: kernel::types::Opaque<bindings::vm_area_struct>,
}

#[cfg(kernel_6_12)]
impl VmaNew {
    /// The vma `vma` points to.
    ///
    /// # Safety
    ///
    /// `vma` is undergoing its initial setup in an `mmap` hook for the duration of `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(vma: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `Self` is `repr(transparent)` over the vma; the caller's guarantee is the type
        // invariant.
        unsafe { &*vma.cast::<Self>() }
    }

    /// The C `vm_area_struct`.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut bindings::vm_area_struct {
        self.vma.get()
    }

    /// The vma's flags.
    #[inline]
    pub(crate) fn flags(&self) -> flags::VmFlags {
        // SAFETY: The vma is being set up with the mmap lock held for writing (type invariant):
        // nobody writes its flags meanwhile.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.vm_flags }
    }

    /// The vma's first address.
    #[inline]
    pub(crate) fn start(&self) -> usize {
        // SAFETY: As in `flags`.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_start }
    }

    /// The address after the vma's last.
    #[inline]
    pub(crate) fn end(&self) -> usize {
        // SAFETY: As in `flags`.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_end }
    }

    /// Sets `set` and clears `unset` in the vma's flags.
    ///
    /// # Safety
    ///
    /// The result is a valid combination of flags.
    #[inline]
    unsafe fn update_flags(&self, set: flags::VmFlags, unset: flags::VmFlags) {
        let flags = (self.flags() | set) & !unset;
        // SAFETY: Nobody else accesses the vma while it is set up (type invariant); the
        // caller's guarantee that the flags are valid.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.vm_flags = flags };
    }

    /// Sets `VM_MIXEDMAP`, so that pages may be inserted.
    #[inline]
    pub(crate) fn set_mixedmap(&self) -> &VmaMixedMap {
        // SAFETY: The driver never sets `VM_PFNMAP`, which excludes `VM_MIXEDMAP`.
        unsafe { self.update_flags(flags::MIXEDMAP, 0) };
        // SAFETY: `VmaMixedMap` is `repr(transparent)` over the same vma, which now has
        // `VM_MIXEDMAP` and is still being set up.
        unsafe { &*core::ptr::from_ref(self).cast::<VmaMixedMap>() }
    }

    /// Sets `VM_DONTEXPAND`: `mremap()` may not grow the mapping.
    #[inline]
    pub(crate) fn set_dontexpand(&self) {
        // SAFETY: Setting `VM_DONTEXPAND` is always valid.
        unsafe { self.update_flags(flags::DONTEXPAND, 0) };
    }

    /// Whether the mapping is writable (`VM_WRITE`).
    #[inline]
    pub(crate) fn writable(&self) -> bool {
        self.flags() & flags::WRITE != 0
    }

    /// Whether the mapping is executable (`VM_EXEC`).
    #[inline]
    pub(crate) fn executable(&self) -> bool {
        self.flags() & flags::EXEC != 0
    }

    /// Clears `VM_MAYWRITE` (for good: `mprotect()` cannot make the mapping writable); `EINVAL`
    /// if it is writable.
    #[inline]
    pub(crate) fn try_clear_maywrite(&self) -> kernel::error::Result {
        if self.writable() {
            return Err(kernel::error::code::EINVAL);
        }
        // SAFETY: Clearing `VM_MAYWRITE` is valid without `VM_WRITE`.
        unsafe { self.update_flags(0, flags::MAYWRITE) };
        Ok(())
    }

    /// Clears `VM_MAYEXEC` (for good); `EINVAL` if the mapping is executable.
    #[inline]
    pub(crate) fn try_clear_mayexec(&self) -> kernel::error::Result {
        if self.executable() {
            return Err(kernel::error::code::EINVAL);
        }
        // SAFETY: Clearing `VM_MAYEXEC` is valid without `VM_EXEC`.
        unsafe { self.update_flags(0, flags::MAYEXEC) };
        Ok(())
    }
}

/// A vma with `VM_MIXEDMAP` being set up (6.12's stand-in for `kernel::mm::virt::VmaMixedMap`).
///
/// # Invariants
///
/// As [`VmaNew`]'s, and the vma has `VM_MIXEDMAP`.
#[cfg(kernel_6_12)]
#[repr(transparent)]
pub(crate) struct VmaMixedMap {
    vma: VmaNew,
}

#[cfg(kernel_6_12)]
impl VmaMixedMap {
    /// Maps `page` at `address` of the vma (`vm_insert_page()`, which takes a reference to the
    /// page for as long as it is mapped there).
    #[inline]
    pub(crate) fn vm_insert_page(
        &self,
        address: usize,
        page: &super::page::BorrowedPage<'_>,
    ) -> kernel::error::Result {
        // SAFETY: The vma has `VM_MIXEDMAP` and is set up with the mmap lock held (type
        // invariant); `page` is a valid order-0 page (type invariant of `BorrowedPage`).
        kernel::error::to_result(unsafe {
            bindings::vm_insert_page(self.vma.as_ptr(), address as _, page.as_ptr())
        })
    }
}
