// SPDX-License-Identifier: GPL-2.0

//! Raw system calls that return the `errno`, for what the library's [`message_slot::Slot`]
//! cannot express: bad pointers, any size, ids above `u32::MAX`, other ioctl commands, raw
//! descriptors in forked children. Also guard pages, device nodes, memory shared with
//! forked children and pinning a thread to a CPU.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::ptr::NonNull;

pub use message_slot::MSG_SLOT_CHANNEL;

/// The calling thread's `errno`.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The symbolic name of an errno value (0 is `success`), for messages.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        0 => "success",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN/EWOULDBLOCK",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOVERFLOW => "EOVERFLOW",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// `Ok(rc)` for a non-negative system call result, else `Err(errno)`.
fn check(rc: isize) -> Result<usize, i32> {
    usize::try_from(rc).map_err(|_| last_errno())
}

/// Pins the calling thread to CPU `cpu`, best effort: on a machine without that CPU the
/// thread stays where it may run (callers only get less overlap or noisier numbers).
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: `cpu_set_t` is plain data (all zeroes is the empty set), `CPU_SET` stays inside
    // it for any `cpu` below `CPU_SETSIZE` (it checks), and `set` is valid for the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// `write(2)` of `len` bytes from an arbitrary (possibly invalid) pointer.
#[inline]
pub fn raw_write(fd: RawFd, buf: *const u8, len: usize) -> Result<usize, i32> {
    // SAFETY: the kernel only reads from `buf` and validates it (EFAULT); passing bad
    // pointers is the point of the callers.
    check(unsafe { libc::write(fd, buf.cast(), len) })
}

/// `read(2)` into an arbitrary (possibly invalid) pointer.
///
/// The kernel stores up to `len` bytes at `buf`: pass memory the caller owns and no
/// reference points to (or memory that is unmapped, inaccessible or read-only, which the
/// kernel refuses with EFAULT).
#[inline]
pub fn raw_read(fd: RawFd, buf: *mut u8, len: usize) -> Result<usize, i32> {
    // SAFETY: the kernel validates `buf`; by this function's contract it is either writable
    // memory of the caller that nothing else refers to, or memory the kernel cannot write.
    check(unsafe { libc::read(fd, buf.cast(), len) })
}

/// `ioctl(2)` with an arbitrary command and a by-value argument.
#[inline]
pub fn raw_ioctl(fd: RawFd, cmd: u32, arg: u64) -> Result<i32, i32> {
    // SAFETY: no memory is passed to the kernel, only integers.
    let rc = unsafe { libc::ioctl(fd, cmd as _, arg as libc::c_ulong) };
    check(rc as isize).map(|_| rc)
}

/// `ioctl(fd, MSG_SLOT_CHANNEL, channel)` on a raw descriptor.
#[inline]
pub fn bind(fd: RawFd, channel: u32) -> Result<(), i32> {
    raw_ioctl(fd, MSG_SLOT_CHANNEL, u64::from(channel)).map(drop)
}

/// `close(2)`.
pub fn close(fd: RawFd) -> Result<(), i32> {
    // SAFETY: closing a descriptor touches no memory; the caller gives up `fd`.
    check(unsafe { libc::close(fd) } as isize).map(drop)
}

/// Makes `path` the character device `major:minor` (a message slot's major is
/// [`message_slot::MAJOR_NUM`]) with mode 0666, keeping a node that already is that device
/// and replacing anything else.
pub fn char_node(path: &Path, major: u32, minor: u32) -> Result<(), String> {
    let dev = libc::makedev(major, minor);
    if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == dev) {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: `c_path` is a valid NUL-terminated string.
    if unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, dev) } != 0 {
        return Err(format!(
            "mknod {} c {major} {minor}: {}",
            path.display(),
            errno_name(last_errno())
        ));
    }
    // mknod's mode is filtered by the umask; make the node usable by anyone.
    // SAFETY: as above.
    unsafe { libc::chmod(c_path.as_ptr(), 0o666) };
    Ok(())
}

/// The system's page size.
pub fn page_size() -> Result<usize, String> {
    // SAFETY: sysconf has no memory-safety preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .map_err(|_| "sysconf(_SC_PAGESIZE) failed".to_string())
}

/// An anonymous mapping of `len` bytes with `prot` and `flags` (`MAP_PRIVATE` or
/// `MAP_SHARED`, and others but `MAP_FIXED`), wherever the kernel places it.
fn map_anonymous(len: usize, prot: libc::c_int, flags: libc::c_int) -> Result<NonNull<u8>, String> {
    assert_eq!(flags & libc::MAP_FIXED, 0);
    // SAFETY: without `MAP_FIXED` the mapping is a fresh one that aliases nothing.
    unsafe { map_anonymous_at(std::ptr::null_mut(), len, prot, flags) }
}

/// An anonymous mapping of `len` bytes with `prot` and `flags`; at `addr` if `flags` has
/// `MAP_FIXED`.
///
/// # Safety
///
/// With `MAP_FIXED`, `addr..addr + len` must lie in a mapping of the caller's own that nothing
/// refers to: the new mapping replaces it.
unsafe fn map_anonymous_at(
    addr: *mut u8,
    len: usize,
    prot: libc::c_int,
    flags: libc::c_int,
) -> Result<NonNull<u8>, String> {
    // SAFETY: a fresh anonymous mapping, or (`MAP_FIXED`) one that replaces memory nothing
    // refers to, by the caller's contract.
    let p = unsafe { libc::mmap(addr.cast(), len, prot, flags | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap of {len} bytes: {}", errno_name(last_errno())));
    }
    NonNull::new(p.cast()).ok_or_else(|| "mmap returned NULL".to_string())
}

/// Three anonymous pages: read-write, `PROT_NONE`, read-only. Buffers that end in (or lie
/// in) the middle page fault; the last page is valid to read but not to write.
pub struct GuardPages {
    base: NonNull<u8>,
    page: usize,
}

impl GuardPages {
    /// Maps the pages.
    pub fn new() -> Result<Self, String> {
        let page = page_size()?;
        let pages = GuardPages {
            base: map_anonymous(
                3 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
            )?,
            page,
        };
        for (ptr, prot) in [
            (pages.inaccessible(), libc::PROT_NONE),
            (pages.read_only(), libc::PROT_READ),
        ] {
            // SAFETY: both pages belong to the mapping created above.
            if unsafe { libc::mprotect(ptr.cast(), page, prot) } != 0 {
                return Err(format!("mprotect: {}", errno_name(last_errno())));
            }
        }
        Ok(pages)
    }

    /// Start of the `PROT_NONE` page.
    pub fn inaccessible(&self) -> *mut u8 {
        self.base.as_ptr().wrapping_add(self.page)
    }

    /// Start of the read-only page.
    pub fn read_only(&self) -> *mut u8 {
        self.base.as_ptr().wrapping_add(2 * self.page)
    }

    /// A pointer `accessible` bytes (at most a page) before the `PROT_NONE` page; those bytes
    /// are filled from `fill` (cycled; left as they are if `fill` is empty), so a buffer
    /// longer than `accessible` runs into the inaccessible page.
    pub fn before_guard(&self, accessible: usize, fill: &[u8]) -> *mut u8 {
        let start = self.inaccessible().wrapping_sub(accessible.min(self.page));
        if !fill.is_empty() {
            for i in 0..accessible.min(self.page) {
                // SAFETY: `start + i` is inside the read-write first page, which only this
                // object refers to.
                unsafe { *start.add(i) = fill[i % fill.len()] };
            }
        }
        start
    }

    /// Copies `bytes` (at most a page) to the start of the read-only page.
    pub fn fill_read_only(&self, bytes: &[u8]) -> Result<(), String> {
        let (ro, len) = (self.read_only(), bytes.len().min(self.page));
        // SAFETY: the third page of our mapping, made writable just for the copy.
        unsafe {
            if libc::mprotect(ro.cast(), self.page, libc::PROT_READ | libc::PROT_WRITE) != 0 {
                return Err(format!("mprotect: {}", errno_name(last_errno())));
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ro, len);
            libc::mprotect(ro.cast(), self.page, libc::PROT_READ);
        }
        Ok(())
    }
}

impl Drop for GuardPages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), 3 * self.page) };
    }
}

/// One zero-filled `T` in a `MAP_SHARED` anonymous mapping: a process and the children it
/// forks afterwards see the same `T` (use atomics only). Unmapped when dropped, unless
/// [leaked](SharedMemory::leak).
pub struct SharedMemory<T> {
    ptr: NonNull<T>,
    /// What `drop` unmaps: the mapping, or the region reserved around it.
    region: NonNull<u8>,
    region_len: usize,
}

/// What one last-level page table maps on x86-64 (and the alignment of
/// [`SharedMemory::new_alone`]).
const PAGE_TABLE_SPAN: usize = 2 << 20;

impl<T> SharedMemory<T> {
    /// Maps a zero-filled `T`.
    ///
    /// # Safety
    ///
    /// All-zero bytes must be a valid `T`, and `T` must be safe to use concurrently from
    /// several processes through `&T` (atomics only: no pointers, no locks of one process).
    pub unsafe fn new() -> Result<Self, String> {
        let len = std::mem::size_of::<T>().max(1);
        assert!(std::mem::align_of::<T>() <= page_size()?);
        let region = map_anonymous(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED)?;
        Ok(SharedMemory {
            ptr: region.cast(),
            region,
            region_len: len,
        })
    }

    /// Like [`new`](Self::new), but alone in a 2 MiB-aligned region kept reserved
    /// (`PROT_NONE`) around it, so no other mapping shares its page table. Fork copies no
    /// page-table entries of a shared mapping, so a child's first touch of the `T` needs a
    /// page table of its own, every time: where that allocation is charged never depends on
    /// where the mapping happened to land.
    ///
    /// # Safety
    ///
    /// As for [`new`](Self::new).
    pub unsafe fn new_alone() -> Result<Self, String> {
        let len = std::mem::size_of::<T>().max(1);
        assert!(len <= PAGE_TABLE_SPAN && std::mem::align_of::<T>() <= page_size()?);
        let region_len = 2 * PAGE_TABLE_SPAN;
        let region = map_anonymous(
            region_len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_NORESERVE,
        )?;
        let start = region.as_ptr().addr().next_multiple_of(PAGE_TABLE_SPAN);
        // SAFETY: `start..start + len` lies in the reservation just made (`len` is at most
        // `PAGE_TABLE_SPAN`), which nothing refers to.
        let mapped = unsafe {
            map_anonymous_at(
                region.as_ptr().with_addr(start),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
            )
        };
        let ptr = match mapped {
            Ok(ptr) => ptr.cast(),
            Err(e) => {
                // SAFETY: unmaps exactly the reservation made above.
                unsafe { libc::munmap(region.as_ptr().cast(), region_len) };
                return Err(e);
            }
        };
        Ok(SharedMemory {
            ptr,
            region,
            region_len,
        })
    }

    /// Keeps the mapping for the rest of the process (and its children).
    pub fn leak(self) -> &'static T {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: the mapping is never unmapped now; `new`'s contract makes it a valid `T`.
        unsafe { ptr.as_ref() }
    }
}

impl<T> std::ops::Deref for SharedMemory<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: mapped (page-aligned, large enough) until `self` is dropped; `new`'s
        // contract makes the zeroed bytes a valid `T` usable through shared references.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for SharedMemory<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` or `new_alone` mapped; no reference outlives
        // `self`.
        unsafe { libc::munmap(self.region.as_ptr().cast(), self.region_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn raw_calls_return_errno() {
        assert_eq!(raw_ioctl(-1, MSG_SLOT_CHANNEL, 1), Err(libc::EBADF));
        assert_eq!(bind(-1, 1), Err(libc::EBADF));
        assert_eq!(raw_write(-1, b"x".as_ptr(), 1), Err(libc::EBADF));
        assert_eq!(close(-1), Err(libc::EBADF));
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        assert_eq!(bind(fd, 1), Err(libc::ENOTTY));
        let mut buf = [0u8; 4];
        assert_eq!(raw_read(fd, buf.as_mut_ptr(), buf.len()), Ok(4));
        assert_eq!(raw_read(fd, std::ptr::null_mut(), 4), Err(libc::EFAULT));
    }

    #[test]
    fn guard_pages_fault() {
        let pages = GuardPages::new().unwrap();
        let (mut p, mut fds) = (pages.before_guard(3, b"ab"), [0i32; 2]);
        // SAFETY: `fds` has room for two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert_eq!(raw_write(fds[1], p, 3), Ok(3));
        assert_eq!(raw_write(fds[1], p, 4), Err(libc::EFAULT));
        let mut got = [0u8; 3];
        assert_eq!(raw_read(fds[0], got.as_mut_ptr(), 3), Ok(3));
        assert_eq!(&got, b"aba");
        pages.fill_read_only(b"ro").unwrap();
        p = pages.read_only();
        assert_eq!(raw_write(fds[1], p, 2), Ok(2));
        assert_eq!(raw_read(fds[0], p, 2), Err(libc::EFAULT));
        assert_eq!(raw_read(fds[0], got.as_mut_ptr(), 3), Ok(2));
        assert_eq!(&got[..2], b"ro");
        for fd in fds {
            close(fd).unwrap();
        }
    }

    #[test]
    fn shared_memory_is_shared_with_children() {
        // SAFETY: zero is a valid `AtomicU64`, usable from several processes.
        let shared = unsafe { SharedMemory::<AtomicU64>::new() }.unwrap();
        // SAFETY: as above.
        let alone = unsafe { SharedMemory::<AtomicU64>::new_alone() }.unwrap();
        let addr = &*alone as *const AtomicU64 as usize;
        assert_eq!(addr % PAGE_TABLE_SPAN, 0);
        // Nothing else is mapped in its page table's span: the reservation around it.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let (range, rest) = line.split_once(' ').unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let (start, end) = (
                usize::from_str_radix(start, 16).unwrap(),
                usize::from_str_radix(end, 16).unwrap(),
            );
            if start < addr + PAGE_TABLE_SPAN && end > addr && start != addr {
                assert!(rest.starts_with("---p"), "{line} shares the page table");
            }
        }
        // SAFETY: the child only stores to the shared atomics and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            shared.store(42, Ordering::SeqCst);
            alone.store(43, Ordering::SeqCst);
            // SAFETY: ends the child without running the test harness's code.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(shared.load(Ordering::SeqCst), 42);
        assert_eq!(alone.load(Ordering::SeqCst), 43);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(0), "success");
        assert_eq!(errno_name(libc::EMSGSIZE), "EMSGSIZE");
        assert_eq!(errno_name(4095), "errno 4095");
    }
}
