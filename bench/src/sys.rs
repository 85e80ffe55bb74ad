// SPDX-License-Identifier: GPL-2.0

//! Thin, checked wrappers over the system calls the benchmarks use.
//!
//! Every benchmark calls the C library directly (never a higher-level wrapper) so that the
//! message slot and the IPC mechanisms it is compared with pay the same user-space cost. The
//! hot-loop wrappers are `#[inline]` and return `Result<_, String>` so that a failing call
//! ends the run with a description instead of producing a meaningless number.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use message_slot_test_support::sys::char_node;

/// Every benchmark moves messages of the largest size the device accepts.
pub use message_slot::{MAJOR_NUM, MAX_MESSAGE_LEN};

/// The message every benchmark writes.
pub const PAYLOAD: [u8; MAX_MESSAGE_LEN] = {
    let mut b = [0u8; MAX_MESSAGE_LEN];
    let mut i = 0;
    while i < MAX_MESSAGE_LEN {
        b[i] = (i as u8).wrapping_mul(31).wrapping_add(7);
        i += 1;
    }
    b
};

/// The current `errno` as an `io::Error`, with `what` in front.
pub fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// `open(path, flags | O_CLOEXEC)`.
pub fn open(path: &str, flags: libc::c_int) -> Result<OwnedFd, String> {
    let c = CString::new(path).map_err(|e| format!("open {path}: {e}"))?;
    // SAFETY: `c` is a valid NUL-terminated string; open has no other memory arguments.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err(&format!("open {path}")));
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `/dev/slot_bench_<minor>` the node of message-slot `minor` and returns its path.
pub fn slot_node(minor: u32) -> Result<String, String> {
    device_node("slot_bench", MAJOR_NUM, minor)
}

/// Makes `/dev/<prefix>_<minor>` the char device `major`:`minor`, mode 0666 (see
/// [`char_node`]), and returns its path.
pub fn device_node(prefix: &str, major: u32, minor: u32) -> Result<String, String> {
    let path = format!("/dev/{prefix}_{minor}");
    char_node(Path::new(&path), major, minor)?;
    Ok(path)
}

/// The major of the char driver registered as `name` (from `/proc/devices`), if any.
pub fn char_driver_major(name: &str) -> Option<u32> {
    let devices = fs::read_to_string("/proc/devices").ok()?;
    // The character devices come first; a block device of the same name would follow them.
    devices
        .lines()
        .take_while(|line| !line.starts_with("Block devices"))
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [major, driver] if driver == name => major.parse().ok(),
                _ => None,
            },
        )
}

/// Opens message-slot `minor` read-write.
pub fn open_slot(minor: u32) -> Result<OwnedFd, String> {
    open(&slot_node(minor)?, libc::O_RDWR)
}

/// `ioctl(fd, MSG_SLOT_CHANNEL, channel)` (the tests' raw helper, inlined).
#[inline]
pub fn bind(fd: RawFd, channel: u32) -> Result<(), String> {
    message_slot_test_support::sys::bind(fd, channel).map_err(|e| {
        let error = io::Error::from_raw_os_error(e);
        format!("ioctl(MSG_SLOT_CHANNEL, {channel}): {error}")
    })
}

/// `write(fd, buf)`, which must write all of `buf`.
#[inline]
pub fn write_all(fd: RawFd, buf: &[u8], what: &str) -> Result<(), String> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n != buf.len() as isize {
        return Err(if n < 0 {
            os_err(what)
        } else {
            format!("{what}: short write of {n} bytes")
        });
    }
    Ok(())
}

/// `read(fd, buf)`, which must return exactly `want` bytes.
#[inline]
pub fn read_exact(fd: RawFd, buf: &mut [u8], want: usize, what: &str) -> Result<(), String> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n != want as isize {
        return Err(if n < 0 {
            os_err(what)
        } else {
            format!("{what}: read {n} bytes, expected {want}")
        });
    }
    Ok(())
}

/// Opens message-slot `minor`, binds it to `channel` and returns the descriptor.
pub fn open_bound(minor: u32, channel: u32) -> Result<OwnedFd, String> {
    let fd = open_slot(minor)?;
    bind(fd.as_raw_fd(), channel)?;
    Ok(fd)
}

/// Whether channel `channel` of `minor` holds no message yet (read fails with `EAGAIN`).
pub fn channel_is_empty(minor: u32, channel: u32) -> Result<bool, String> {
    let fd = open_bound(minor, channel)?;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    // SAFETY: `buf` is valid for writes of `MAX_MESSAGE_LEN` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), MAX_MESSAGE_LEN) };
    Ok(n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN))
}

/// Raises the soft open-file limit to at least `want` (up to the hard limit, which root may
/// raise too).
pub fn raise_fd_limit(want: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(os_err("getrlimit(RLIMIT_NOFILE)"));
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    lim.rlim_cur = want;
    lim.rlim_max = lim.rlim_max.max(want);
    // SAFETY: `lim` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(os_err(&format!("setrlimit(RLIMIT_NOFILE, {want})")));
    }
    Ok(())
}

/// `uname -r`.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
