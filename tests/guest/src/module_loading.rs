// SPDX-License-Identifier: GPL-2.0

//! Loading and unloading the module under test, with the system calls `insmod` and `rmmod`
//! make (`finit_module` of the rig's module file, `delete_module` with `O_NONBLOCK`), so that
//! a test sees the kernel's own answer (the `errno`) and no tool's checks in front of it.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use message_slot::Slot;

use crate::util::{
    errno_name, expect_message, fresh_channel, last_errno, open_minor_bound, send_all, slot_path,
    Context, TestResult,
};

/// Name of the kernel module (`rmmod message_slot`).
pub const MODULE_NAME: &str = "message_slot";
/// Where the rig puts the module file (`insmod /message_slot.ko`).
pub const MODULE_FILE: &str = "/message_slot.ko";

/// Loads the rig's module file with module parameters `params` (`name=value` each, as
/// `insmod` takes them).
pub fn load_module(params: &[&str]) -> TestResult {
    let file = std::fs::File::open(MODULE_FILE).ctx(&format!("open {MODULE_FILE}"))?;
    let args = CString::new(params.join(" ")).map_err(|e| format!("{params:?}: {e}"))?;
    // SAFETY: a valid descriptor and a NUL-terminated parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), args.as_ptr(), 0) };
    ensure!(
        rc == 0,
        "insmod {MODULE_FILE} {params:?} (finit_module): {}",
        errno_name(last_errno())
    );
    Ok(())
}

/// Asks once to unload the module (`delete_module(O_NONBLOCK)`): refused while any file of
/// it is open. The errno on failure.
pub fn try_unload_module() -> Result<(), i32> {
    let name = CString::new(MODULE_NAME).map_err(|_| libc::EINVAL)?;
    // SAFETY: a valid NUL-terminated module name.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Unloads the module (nothing to do if it is not loaded), retrying for up to 5 s while a
/// descriptor of an earlier test or child is still being closed.
pub fn unload_module() -> TestResult {
    let mut last = 0;
    for _ in 0..50 {
        match try_unload_module() {
            Ok(()) => return Ok(()),
            // Not loaded (an earlier test's unload finished late): nothing to do.
            Err(libc::ENOENT) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "delete_module({MODULE_NAME}) with every fd closed: {}",
        errno_name(last)
    ))
}

/// Waits (up to 5 minutes: unloading millions of channels is slow on the debug kernel) until
/// the module is loaded, loading it if an earlier test left it unloaded.
pub fn module_ready() -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(300);
    let path = slot_path(0)?;
    loop {
        match Slot::open(&path) {
            Ok(_) => return Ok(()),
            Err(e) if e.errno() == libc::ENXIO || e.errno() == libc::ENODEV => {
                if load_module(&[]).is_ok() {
                    eprintln!("  (the module was not loaded: loaded it)");
                }
            }
            Err(e) => return Err(format!("open {}: {e}", path.display())),
        }
        ensure!(
            Instant::now() < deadline,
            "the module could not be loaded within 300s (an earlier unload still running?)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Loads the module unless a slot already opens, and checks `/dev/slot0` works.
pub fn ensure_loaded() -> TestResult {
    if Slot::open(slot_path(0)?).is_err() {
        load_module(&[])?;
    }
    let ch = fresh_channel();
    send_all(&open_minor_bound(0, ch)?, b"reloaded", "write after insmod")?;
    expect_message(&open_minor_bound(0, ch)?, b"reloaded", "read after insmod")
}
