// SPDX-License-Identifier: GPL-2.0

//! File permissions: the module leaves access control to the node's mode, so an unprivileged
//! user cannot open a 0600 root node at all and opens a 0644 one read-only (reading, not
//! writing).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::{EACCES, EBADF};

use crate::module_loading::module_ready;
use crate::util::{
    bind, channel_message, errno_name, expect_message, fresh_channel, last_errno, open_bound,
    raw_read, raw_write, send_all, TestResult, MAJOR_NUM, MAX_MESSAGE_LEN, MINOR_PERMISSIONS,
};

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

/// Creates `path` as char `MAJOR_NUM:minor`, owned by root, with exactly `mode`.
fn make_node(path: &Path, minor: u32, mode: u32) -> TestResult {
    let _ = std::fs::remove_file(path);
    let c = c_path(path)?;
    // SAFETY: valid C string.
    let rc = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(MAJOR_NUM, minor),
        )
    };
    ensure!(
        rc == 0,
        "mknod {}: {}",
        path.display(),
        errno_name(last_errno())
    );
    // SAFETY: valid C string.
    let rc = unsafe { libc::chown(c.as_ptr(), 0, 0) | libc::chmod(c.as_ptr(), mode) };
    ensure!(
        rc == 0,
        "chown/chmod {}: {}",
        path.display(),
        errno_name(last_errno())
    );
    Ok(())
}

/// As uid/gid 65534: a 0600 root node cannot be opened at all; a 0644 one opens read-only
/// (and reads the message) but not for writing.
pub fn permissions_unprivileged() -> TestResult {
    module_ready()?;
    let p600 = PathBuf::from("/dev/slot_perm_600");
    let p644 = PathBuf::from("/dev/slot_perm_644");
    make_node(&p600, MINOR_PERMISSIONS, 0o600)?;
    make_node(&p644, MINOR_PERMISSIONS, 0o644)?;
    let ch = fresh_channel();
    let msg = channel_message(MINOR_PERMISSIONS, ch, 77);
    // Root can use both.
    send_all(
        &open_bound(&p600, ch)?,
        &msg,
        "root writes via the 0600 node",
    )?;
    expect_message(
        &open_bound(&p644, ch)?,
        &msg,
        "root reads via the 0644 node",
    )?;

    // The child works relative to /dev: the initramfs root itself may not be searchable by
    // other users, which would turn every open into EACCES regardless of the node's mode.
    let (c600, c644) = (c"slot_perm_600", c"slot_perm_644");
    let dev = c"/dev";
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` has room for two descriptors.
    ensure!(unsafe { libc::pipe(pipe.as_mut_ptr()) } == 0, "pipe failed");
    // SAFETY: the child only makes raw system calls on data prepared before the fork and
    // leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    ensure!(pid >= 0, "fork: {}", errno_name(last_errno()));
    if pid == 0 {
        // Reports (step, errno) through the pipe and exits.
        let report = |step: i32, e: i32| -> ! {
            let rec = [step, e];
            // SAFETY: writes 8 bytes from `rec` to our pipe, then exits.
            unsafe {
                libc::write(pipe[1], rec.as_ptr().cast(), 8);
                libc::_exit(if step == 0 { 0 } else { 1 })
            }
        };
        // SAFETY: raw system calls on prepared data.
        unsafe {
            if libc::chdir(dev.as_ptr()) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
                || libc::geteuid() != 65534
            {
                report(1, last_errno());
            }
            let expect_eacces = |step: i32, path: &std::ffi::CStr, flags: i32| {
                let fd = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                if fd >= 0 {
                    report(step, 0);
                } else if last_errno() != EACCES {
                    report(step, last_errno());
                }
            };
            // Control: a world-writable node in the same directory opens.
            let null = libc::open(c"null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if null < 0 {
                report(12, last_errno());
            }
            libc::close(null);
            expect_eacces(2, c600, libc::O_RDWR);
            expect_eacces(3, c600, libc::O_RDONLY);
            expect_eacces(4, c600, libc::O_WRONLY);
            expect_eacces(5, c644, libc::O_WRONLY);
            expect_eacces(6, c644, libc::O_RDWR);
            let fd = libc::open(c644.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                report(7, last_errno());
            }
            if let Err(e) = bind(fd, ch) {
                report(8, e);
            }
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let n = match raw_read(fd, buf.as_mut_ptr(), buf.len()) {
                Ok(n) => n,
                Err(e) => report(9, e),
            };
            if buf[..n] != msg[..] {
                report(10, 0);
            }
            match raw_write(fd, buf.as_ptr(), 4) {
                Err(EBADF) => {}
                Ok(_) => report(11, 0),
                Err(e) => report(11, e),
            }
            report(0, 0);
        }
    }
    // SAFETY: closes our copy of the write end.
    unsafe { libc::close(pipe[1]) };
    let mut rec = [0i32; 2];
    // SAFETY: reads at most 8 bytes into `rec`.
    let n = unsafe { libc::read(pipe[0], rec.as_mut_ptr().cast(), 8) };
    let mut status = 0;
    // SAFETY: our pipe and our child.
    unsafe {
        libc::close(pipe[0]);
        libc::waitpid(pid, &mut status, 0);
    }
    ensure!(
        n == 8 && libc::WIFEXITED(status),
        "unprivileged child ended without a report (wait status {status:#x})"
    );
    let (step, e) = (rec[0], rec[1]);
    let steps = [
        "all checks passed",
        "chdir /dev, setgroups/setgid/setuid(65534)",
        "open 0600 root node O_RDWR as uid 65534 (expected EACCES)",
        "open 0600 root node O_RDONLY as uid 65534 (expected EACCES)",
        "open 0600 root node O_WRONLY as uid 65534 (expected EACCES)",
        "open 0644 node O_WRONLY as uid 65534 (expected EACCES)",
        "open 0644 node O_RDWR as uid 65534 (expected EACCES)",
        "open 0644 node O_RDONLY as uid 65534 (expected success)",
        "bind the O_RDONLY fd",
        "read via the O_RDONLY fd",
        "message read via the O_RDONLY fd differs",
        "write via the O_RDONLY fd (expected EBADF)",
        "control: open /dev/null O_RDWR as uid 65534 (expected success)",
    ];
    ensure!(
        step == 0,
        "{}: got {}",
        steps.get(step as usize).copied().unwrap_or("unknown step"),
        if e == 0 && step != 9 {
            "success".to_string()
        } else {
            errno_name(e)
        }
    );
    expect_message(&open_bound(&p600, ch)?, &msg, "message after the child")
}
