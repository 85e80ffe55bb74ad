// SPDX-License-Identifier: GPL-2.0

//! Character-device registration with a safe, trait-based interface.
//!
//! A range of minors of a fixed major, which upstream has no abstraction for:
//! `kernel::miscdevice` (not in 6.12) registers one dynamic minor of the misc major. This is
//! modelled on it: a driver implements [`CharDevice`] and holds a pinned [`Registration`],
//! which owns the `file_operations` table and the registered device numbers.
//!
//! The table is embedded in the [`Registration`], and `chrdev_open` installs it as the file's
//! `f_op`, so `open` finds the driver's data with `container_of` (no global state). The
//! per-open state returned by [`CharDevice::open`] lives in `file->private_data` until
//! `release`.

use super::poll::{PollEvents, PollTable};
use super::uaccess::user_ptr;
use super::vma::VmaNew;
use core::marker::PhantomData;
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    prelude::*,
    str::CStr,
    sync::Arc,
    types::{ForeignOwnable, Opaque},
    uaccess::UserPtr,
    ThisModule,
};

/// The minor of device number `devt` (C's `MINOR()`).
#[inline]
pub(crate) const fn minor_of(devt: bindings::dev_t) -> u32 {
    devt & ((1 << bindings::MINORBITS) - 1)
}

/// The device number of `major`:`minor` (C's `MKDEV()`).
#[inline]
pub(crate) const fn device_number(major: u32, minor: u32) -> bindings::dev_t {
    (major << bindings::MINORBITS) | minor
}

/// Borrowed form of a device's per-open-file state, as passed to the file operations.
pub(crate) type OpenFileRef<'a, T> = <<T as CharDevice>::OpenFile as ForeignOwnable>::Borrowed<'a>;

/// A character device driver: the file operations, in safe Rust.
pub(crate) trait CharDevice: Sync + Sized {
    /// State of one open file, owned by `file->private_data` from `open` until `release`.
    type OpenFile: ForeignOwnable + Send + Sync;

    /// Opens minor `minor` (below the registered count).
    fn open(&self, minor: u32) -> Result<Self::OpenFile>;

    /// Reads into the `len` bytes of user memory at `buf`; returns the number of bytes written
    /// to it.
    fn read(file: OpenFileRef<'_, Self>, buf: UserPtr, len: usize) -> Result<usize>;

    /// Writes from the `len` bytes of user memory at `buf`; returns the number of bytes
    /// consumed.
    fn write(file: OpenFileRef<'_, Self>, buf: UserPtr, len: usize) -> Result<usize>;

    /// Handles `ioctl(fd, cmd, arg)`.
    fn ioctl(file: OpenFileRef<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;

    /// Handles `poll`, `select` and `epoll`: registers on the wait queues whose wake-ups may
    /// change the file's events (through `table`, whose lifetime ends no later than the
    /// file's release, as the open file state's borrow does) and returns the events now.
    fn poll<'a>(file: OpenFileRef<'a, Self>, table: PollTable<'a>) -> PollEvents;

    /// Handles `mmap`: sets up `vma` (a new mapping of the file) or refuses it.
    fn mmap(file: OpenFileRef<'_, Self>, vma: &VmaNew) -> Result;
}

/// A registered range of character-device minors served by a [`CharDevice`].
///
/// # Invariants
///
/// While the registration exists, minors `0..count` of `major` are registered with the kernel
/// under `name` with the operations table `fops`, served by `data`. Every file opened
/// through it holds a reference on `fops.owner` (the module), so the registration, dropped at
/// module exit, outlives all its files.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: CharDevice> {
    data: Arc<T>,
    #[pin]
    fops: Opaque<bindings::file_operations>,
    major: u32,
    count: u32,
    name: &'static CStr,
}

// SAFETY: `fops` is written once before registration and only read afterwards (by the kernel
// and by `container_of`); `data` is `Sync` by the `CharDevice` bound.
unsafe impl<T: CharDevice> Sync for Registration<T> {}

// SAFETY: Registering and unregistering may happen on any thread, and `data` is `Send`.
unsafe impl<T: CharDevice + Send> Send for Registration<T> {}

impl<T: CharDevice> Registration<T> {
    /// Registers minors `0..count` of `major` under `name`, serving them with `data`: the
    /// device is live (may be opened) as soon as this succeeds, so make it the last fallible
    /// step of a module's initialisation.
    ///
    /// Fails with the kernel's error (e.g. `EBUSY`) if the numbers are already taken.
    pub(crate) fn new(
        name: &'static CStr,
        major: u32,
        count: u32,
        module: &'static ThisModule,
        data: Arc<T>,
    ) -> impl PinInit<Self, Error> {
        let register = move |fops: *mut bindings::file_operations| {
            // SAFETY: `fops` is valid for writes; it is pinned inside the registration, so the
            // pointer the kernel keeps stays valid until `drop` unregisters it.
            unsafe { fops.write(FileOperationsVTable::<T>::build(module)) };
            // SAFETY: `name` is NUL-terminated and `'static`; `fops` is initialised.
            let ret =
                unsafe { bindings::__register_chrdev(major, 0, count, name.as_char_ptr(), fops) };
            to_result(ret.min(0))
        };
        try_pin_init!(Self {
            // Before the registration: the device may be opened as soon as it is registered.
            data,
            // `register` initialises the table and only then registers it; on failure nothing
            // is registered and an `Opaque` needs no cleanup.
            fops <- super::init::opaque_try_ffi_init(register),
            major,
            count,
            name,
        })
    }

    /// The registration whose operations table `file` uses.
    ///
    /// # Safety
    ///
    /// `file` is a valid file opened through a live `Registration<T>` (so `f_op` points to its
    /// `fops`), and the returned reference is not used after that registration is dropped.
    unsafe fn from_file<'a>(file: *mut bindings::file) -> &'a Self {
        // SAFETY: By the caller's guarantee `f_op` points to the `fops` field of a live
        // registration; `Opaque<T>` is `repr(transparent)` over `T`.
        unsafe {
            let fops = (*file).f_op.cast::<Opaque<bindings::file_operations>>();
            &*kernel::container_of!(fops, Self, fops)
        }
    }
}

#[pinned_drop]
impl<T: CharDevice> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants the minors are registered by us. After this call no
        // new file can be opened; existing files hold a module reference, so none exist when
        // the registration is dropped at module exit.
        unsafe {
            bindings::__unregister_chrdev(self.major, 0, self.count, self.name.as_char_ptr())
        };
    }
}

/// The `file_operations` callbacks of a [`CharDevice`].
struct FileOperationsVTable<T: CharDevice>(PhantomData<T>);

impl<T: CharDevice> FileOperationsVTable<T> {
    fn build(module: &'static ThisModule) -> bindings::file_operations {
        bindings::file_operations {
            owner: module.as_ptr(),
            open: Some(Self::open),
            release: Some(Self::release),
            read: Some(Self::read),
            write: Some(Self::write),
            unlocked_ioctl: Some(Self::ioctl),
            // The argument is a value, not a pointer, so 32-bit callers need no translation.
            compat_ioctl: Some(Self::ioctl),
            poll: Some(Self::poll),
            mmap: Some(Self::mmap),
            llseek: Some(bindings::noop_llseek),
            // SAFETY: All-zero is a valid `file_operations` (every other callback absent).
            ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
        }
    }

    /// # Safety
    ///
    /// Called by the VFS with a valid `inode` of one of our device numbers (so `i_cdev` is our
    /// registration's cdev) and a valid, not yet shared `file`.
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        from_result(|| {
            // SAFETY: `chrdev_open` installed the `fops` of the registration that owns this
            // device number into `file` before calling us, and holds a module reference.
            let registration = unsafe { Registration::<T>::from_file(file) };
            // SAFETY: `inode` is valid for the duration of this call.
            let minor = minor_of(unsafe { (*inode).i_rdev });
            let open_file = registration.data.open(minor)?;
            // SAFETY: `file` is valid and not yet visible to other threads.
            unsafe { (*file).private_data = super::init::foreign_ptr(open_file.into_foreign()) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS once per successful `open`, after all other operations on `file`.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `private_data` was set by `open` from `into_foreign` and, as this is the last
        // operation on the file, ownership can be taken back.
        drop(unsafe { T::OpenFile::from_foreign((*file).private_data) });
        0
    }

    /// # Safety
    ///
    /// `file` was opened by [`Self::open`] and has not been released.
    unsafe fn open_file<'a>(file: *mut bindings::file) -> OpenFileRef<'a, T> {
        // SAFETY: `private_data` came from `into_foreign` in `open`, and `release` (which takes
        // it back) cannot run while the VFS is inside another operation on this file.
        unsafe { T::OpenFile::borrow((*file).private_data) }
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`].
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut c_char,
        len: usize,
        _pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Guaranteed by the caller.
        let open_file = unsafe { Self::open_file(file) };
        byte_count_or_errno(T::read(open_file, user_ptr(buf), len))
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`].
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const c_char,
        len: usize,
        _pos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Guaranteed by the caller.
        let open_file = unsafe { Self::open_file(file) };
        byte_count_or_errno(T::write(open_file, user_ptr(buf), len))
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: Guaranteed by the caller.
        let open_file = unsafe { Self::open_file(file) };
        match T::ioctl(open_file, cmd, arg) {
            Ok(value) => value as c_long,
            Err(error) => error.to_errno() as c_long,
        }
    }
}

impl<T: CharDevice> FileOperationsVTable<T> {
    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`], with `table` null or the poll
    /// table of this call.
    unsafe extern "C" fn poll(
        file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> bindings::__poll_t {
        // SAFETY: Guaranteed by the caller. The borrow's lifetime is chosen to be the
        // table's, and both end no later than `release` (which drops the open file state):
        // `poll`/`select` finish with the file before the reference they hold is dropped, and
        // `__fput()` removes epoll's entries (`eventpoll_release()`) before calling `release`.
        let (open_file, table) =
            unsafe { (Self::open_file(file), PollTable::from_raw(file, table)) };
        T::poll(open_file, table).bits()
    }

    /// `mmap`.
    ///
    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`], with `vma` a new mapping of it
    /// being set up (the mmap lock held for writing).
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: Guaranteed by the caller: the file is open, and the vma is being set up for
        // the duration of this call.
        let (open_file, vma) = unsafe { (Self::open_file(file), VmaNew::from_raw(vma)) };
        match T::mmap(open_file, vma) {
            Ok(()) => 0,
            Err(error) => error.to_errno(),
        }
    }
}

/// What a read or write operation returns for `result`: the byte count or a negative errno.
///
/// Inlined into the operations, unlike the closure-taking `from_result` (`ioctl` matches the
/// same way).
#[inline(always)]
fn byte_count_or_errno(result: Result<usize>) -> isize {
    match result {
        // A count is at most the request's length, which the VFS caps at `MAX_RW_COUNT`.
        Ok(count) => count as isize,
        Err(error) => error.to_errno() as isize,
    }
}
