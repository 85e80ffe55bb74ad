// SPDX-License-Identifier: GPL-2.0

//! Hardening: allocation failure (failslab), module load/unload cycles without slab growth,
//! file permissions for unprivileged users and two slots of 2^20 channels each (the memory
//! cgroup tests are in `memcg.rs`, which uses the helpers here).
//!
//! Options (after the test filters, `--key=value` form, or the environment variable in
//! brackets):
//! - `--debug-kernel` (`MSG_SLOT_DEBUG_KERNEL=1`): the kernel is the debug variant, so
//!   failslab, debugfs and the memory cgroup must exist (their absence fails instead of
//!   skipping).
//! - `--cycles=N` (`MSG_SLOT_CYCLES`): load/unload cycles (100).
//! - `--cycle-channels=N` (`MSG_SLOT_CYCLE_CHANNELS`): channels filled per minor and cycle
//!   (1000).
//! - `--scale-channels=N` (`MSG_SLOT_SCALE_CHANNELS`): channels per slot in the large-scale
//!   test (2^20).
//!
//! A test whose kernel feature is missing on a non-debug kernel is reported as skipped. The
//! last two tests unload the module (and load it again), so they run last.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libc::{EACCES, EAGAIN, EBADF, ENOMEM};
use message_slot::Slot;

use crate::util::{
    bind, ensure_node, errno_name, expect_errno, expect_message, fresh_channel, last_errno,
    open_bound, open_minor_bound, raw_fd, raw_read, raw_write, send_all, slot_path, Context,
    TestResult, MAJOR, MAX_MSG, MODULE_FILE, MODULE_NAME,
};

/// Minors used here (the rest of the suite uses 0..=3, 100, 200, 205, 209..=212 and 255).
const MINOR_SCALE: [u32; 2] = [201, 202];
const MINOR_FAILSLAB: u32 = 203;
const MINOR_PERMS: u32 = 204;
const MINOR_CYCLES: [u32; 3] = [206, 207, 208];

/// How far `/proc/meminfo`'s `Slab` may end above its starting value.
const SLAB_TOLERANCE_KIB: u64 = 256;

fn has_arg(flag: &str) -> bool {
    std::env::args().skip(1).any(|a| a == flag)
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The kernel is the debug variant: missing features are failures.
pub(super) fn debug_kernel() -> bool {
    has_arg("--debug-kernel") || env_set("MSG_SLOT_DEBUG_KERNEL")
}

/// `--name=N` or `MSG_SLOT_<NAME>=N`, else `default`.
pub(super) fn count_arg(name: &str, default: u64) -> Result<u64, String> {
    let prefix = format!("--{name}=");
    let env = format!("MSG_SLOT_{}", name.replace('-', "_").to_uppercase());
    let value = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
        .or_else(|| std::env::var(&env).ok());
    match value {
        Some(v) => v
            .parse()
            .map_err(|_| format!("bad value {v:?} for --{name} / {env}")),
        None => Ok(default),
    }
}

/// A missing kernel feature: a failure on the debug kernel, a skip otherwise.
pub(super) fn missing(feature: &str) -> TestResult {
    if debug_kernel() {
        Err(format!("{feature} is missing on the debug kernel"))
    } else {
        crate::skip(format!("{feature} is not available in this kernel"))
    }
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

pub(super) fn write_file(path: &Path, value: &str) -> TestResult {
    std::fs::write(path, value).ctx(&format!("write {value:?} to {}", path.display()))
}

pub(super) fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).ctx(&format!("read {}", path.display()))
}

/// Mounts `fstype` at `target` unless `probe` (a file inside it) already exists.
pub(super) fn mount_if_needed(fstype: &str, target: &str, probe: &str) {
    if Path::new(probe).exists() {
        return;
    }
    let _ = std::fs::create_dir_all(target);
    let (Ok(src), Ok(dst), Ok(fs)) = (
        CString::new(fstype),
        CString::new(target),
        CString::new(fstype),
    ) else {
        return;
    };
    // SAFETY: valid C strings, no data argument.
    unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
}

/// A message of `len` bytes that identifies `(minor, id)`.
fn message(minor: u32, id: u32, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len);
    let key = id.wrapping_mul(0x9E37_79B9) ^ minor.wrapping_mul(0x85EB_CA6B);
    for i in 0..len {
        let x = key ^ (i as u32).wrapping_mul(0xC2B2_AE35);
        m.push((x ^ (x >> 15) ^ (x >> 24)) as u8);
    }
    m[..4].copy_from_slice(&id.to_le_bytes());
    m
}

/// Binds `fd` and writes; the errno on failure.
fn bind_write(fd: i32, id: u32, msg: &[u8]) -> Result<(), (&'static str, i32)> {
    bind(fd, id).map_err(|e| ("ioctl", e))?;
    match raw_write(fd, msg.as_ptr(), msg.len()) {
        Ok(n) if n == msg.len() => Ok(()),
        Ok(_) => Err(("short write", 0)),
        Err(e) => Err(("write", e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Slab accounting and module loading.

/// `Slab` and `SUnreclaim` of `/proc/meminfo`, in KiB, after asking SLUB to release empty
/// slabs (where `/sys/kernel/slab/*/shrink` exists).
/// [`slab_kib`] once it is back within tolerance of `start` KiB, or after 5 s of waiting
/// (freed slabs and RCU-deferred frees take a moment to show).
pub(super) fn slab_kib_settled(start: u64) -> Result<(u64, u64), String> {
    let mut now = slab_kib()?;
    for _ in 0..10 {
        if now.0 <= start + SLAB_TOLERANCE_KIB {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        now = slab_kib()?;
    }
    Ok(now)
}

pub(super) fn slab_kib() -> Result<(u64, u64), String> {
    if let Ok(dir) = std::fs::read_dir("/sys/kernel/slab") {
        for entry in dir.flatten() {
            let _ = std::fs::write(entry.path().join("shrink"), "1");
        }
    }
    let info = read_file(Path::new("/proc/meminfo"))?;
    let field = |name: &str| -> Result<u64, String> {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/meminfo"))
    };
    Ok((field("Slab:")?, field("SUnreclaim:")?))
}

/// `/proc/slabinfo`: cache name -> active bytes (empty if unavailable).
fn slabinfo() -> Vec<(String, i64)> {
    let Ok(text) = std::fs::read_to_string("/proc/slabinfo") else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let active: i64 = f.get(1)?.parse().ok()?;
            let size: i64 = f.get(3)?.parse().ok()?;
            Some((f[0].to_string(), active * size))
        })
        .collect()
}

/// The caches that grew most between two [`slabinfo`] snapshots.
fn slab_growth(before: &[(String, i64)], after: &[(String, i64)]) -> String {
    let mut grew: Vec<(i64, &str)> = after
        .iter()
        .map(|(name, bytes)| {
            let old = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| *b);
            (bytes - old, name.as_str())
        })
        .filter(|(d, _)| *d > 0)
        .collect();
    grew.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<String> = grew
        .iter()
        .take(6)
        .map(|(d, n)| format!("{n} +{} KiB", d / 1024))
        .collect();
    if top.is_empty() {
        "no /proc/slabinfo growth".into()
    } else {
        format!("slabinfo growth: {}", top.join(", "))
    }
}

/// `finit_module` of the rig's module file.
fn load_module() -> TestResult {
    let file = std::fs::File::open(MODULE_FILE).ctx(&format!("open {MODULE_FILE}"))?;
    // SAFETY: a valid descriptor and an empty NUL-terminated parameter string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            c"".as_ptr(),
            0,
        )
    };
    ensure!(rc == 0, "finit_module: {}", errno_name(last_errno()));
    Ok(())
}

/// `delete_module(O_NONBLOCK)`; the errno on failure.
fn unload_module() -> Result<(), i32> {
    let name = CString::new(MODULE_NAME).map_err(|_| libc::EINVAL)?;
    // SAFETY: a valid NUL-terminated module name.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Unloads the module, retrying briefly while a descriptor of an earlier test or child is
/// still being closed.
fn unload_module_settled() -> TestResult {
    let mut last = 0;
    for _ in 0..50 {
        match unload_module() {
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
pub(super) fn module_ready() -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(300);
    let path = slot_path(0)?;
    loop {
        match Slot::open(&path) {
            Ok(_) => return Ok(()),
            Err(e) if e.errno() == libc::ENXIO || e.errno() == libc::ENODEV => {
                if load_module().is_ok() {
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
fn ensure_loaded() -> TestResult {
    if Slot::open(slot_path(0)?).is_err() {
        load_module()?;
    }
    let ch = fresh_channel();
    send_all(&open_minor_bound(0, ch)?, b"reloaded", "write after insmod")?;
    expect_message(&open_minor_bound(0, ch)?, b"reloaded", "read after insmod")
}

// ---------------------------------------------------------------------------------------------
// a. failslab.

/// Restores failslab to "never fail" when dropped.
struct FailslabOff(PathBuf);

impl Drop for FailslabOff {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("probability"), "0");
        let _ = std::fs::write(self.0.join("times"), "1");
    }
}

/// What the fault-injected thread saw.
#[derive(Default)]
struct FaultResults {
    new_writes: Vec<Result<(), (&'static str, i32)>>,
    old_writes: Vec<Result<(), (&'static str, i32)>>,
    old_reads: Vec<Result<usize, i32>>,
}

/// With failslab failing every slab allocation of one thread, writes to new channels fail
/// with ENOMEM and change nothing, writes to existing channels (no allocation) still
/// succeed, reads work; with fault injection off again, the new channels can be written.
pub fn failslab_enomem() -> TestResult {
    module_ready()?;
    mount_if_needed("debugfs", "/sys/kernel/debug", "/sys/kernel/debug/failslab");
    let dir = PathBuf::from("/sys/kernel/debug/failslab");
    if !dir.join("probability").exists() || !Path::new("/proc/self/make-it-fail").exists() {
        return missing("failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
    }
    let path = ensure_node(MINOR_FAILSLAB)?;
    let old: Vec<u32> = (0..4).map(|_| fresh_channel()).collect();
    let new: Vec<u32> = (0..64).map(|_| fresh_channel()).collect();
    for (i, &id) in old.iter().enumerate() {
        send_all(
            &open_bound(&path, id)?,
            &message(MINOR_FAILSLAB, id, 40 + i),
            "write an existing channel",
        )?;
    }

    let off = FailslabOff(dir.clone());
    for (file, value) in [
        ("probability", "0"),
        ("interval", "1"),
        ("times", "-1"),
        ("space", "0"),
        ("verbose", "0"),
        ("task-filter", "Y"),
        ("ignore-gfp-wait", "N"),
    ] {
        write_file(&dir.join(file), value)?;
    }
    if dir.join("cache-filter").exists() {
        write_file(&dir.join("cache-filter"), "N")?;
    }
    write_file(&dir.join("probability"), "100")?;

    let slot = Slot::open(&path).ctx("open")?;
    let fd = raw_fd(&slot);
    let (new_c, old_c) = (new.clone(), old.clone());
    let worker = std::thread::spawn(move || -> Result<FaultResults, String> {
        // Everything that allocates in the kernel happens before make-it-fail is set.
        let flag = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/make-it-fail")
            .ctx("open /proc/thread-self/make-it-fail")?;
        let flag_fd = std::os::fd::AsRawFd::as_raw_fd(&flag);
        let new_msgs: Vec<Vec<u8>> = new_c
            .iter()
            .map(|&id| message(MINOR_FAILSLAB, id, MAX_MSG))
            .collect();
        let old_msgs: Vec<Vec<u8>> = old_c
            .iter()
            .map(|&id| message(MINOR_FAILSLAB, id, 100))
            .collect();
        let mut r = FaultResults {
            new_writes: Vec::with_capacity(new_c.len()),
            old_writes: Vec::with_capacity(old_c.len()),
            old_reads: Vec::with_capacity(old_c.len()),
        };
        let mut buf = [0u8; MAX_MSG];
        // Pre-fault this thread's stack so no page fault allocates under fault injection.
        let mut scratch = [0u8; 32 * 1024];
        for b in scratch.iter_mut().step_by(1024) {
            // SAFETY: a plain volatile store into a local array.
            unsafe { std::ptr::write_volatile(b, 1) };
        }
        // SAFETY: writes a literal to our descriptor.
        if unsafe { libc::write(flag_fd, b"1".as_ptr().cast(), 1) } != 1 {
            return Err(format!("set make-it-fail: {}", errno_name(last_errno())));
        }
        for (&id, msg) in new_c.iter().zip(&new_msgs) {
            r.new_writes.push(bind_write(fd, id, msg));
        }
        for (&id, msg) in old_c.iter().zip(&old_msgs) {
            r.old_writes.push(bind_write(fd, id, msg));
            r.old_reads
                .push(raw_read(fd, buf.as_mut_ptr(), buf.len()).and_then(|n| {
                    if buf[..n] == msg[..] {
                        Ok(n)
                    } else {
                        Err(-1)
                    }
                }));
        }
        // SAFETY: as above.
        let rc = unsafe { libc::write(flag_fd, b"0".as_ptr().cast(), 1) };
        std::hint::black_box(&scratch);
        ensure!(rc == 1, "clear make-it-fail: {}", errno_name(last_errno()));
        Ok(r)
    });
    let results = worker
        .join()
        .map_err(|_| "fault-injected thread panicked".to_string())??;
    drop(off);

    let mut enomem = 0;
    for (&id, r) in new.iter().zip(&results.new_writes) {
        match r {
            Err(("write", e)) if *e == ENOMEM => enomem += 1,
            Ok(()) => {}
            Err((what, e)) => {
                return Err(format!(
                    "new channel {id:#x} under failslab: {what} failed with {} (expected \
                     ENOMEM or success)",
                    errno_name(*e)
                ))
            }
        }
    }
    ensure!(
        enomem > 0,
        "no write to a new channel failed under failslab (probability 100): the message \
         allocation does not go through the slab allocator?"
    );
    // A channel owns its message memory: an overwrite allocates nothing, so it succeeds even
    // though every slab allocation fails, and the read (which allocates nothing either)
    // returns the new message.
    for (i, &id) in old.iter().enumerate() {
        if let Err((what, e)) = results.old_writes[i] {
            return Err(format!(
                "overwriting existing channel {id:#x} under failslab (probability 100): {what} \
                 failed with {} (an overwrite must allocate nothing)",
                errno_name(e)
            ));
        }
        if let Err(e) = results.old_reads[i] {
            return Err(format!(
                "reading existing channel {id:#x} under failslab: {}",
                if e < 0 {
                    "not the message just written".to_string()
                } else {
                    errno_name(e)
                }
            ));
        }
    }
    // Nothing of the failed writes is visible; the overwrites are.
    let check = Slot::open(&path).ctx("open")?;
    for (&id, r) in new.iter().zip(&results.new_writes) {
        check.set_channel(id).ctx("bind")?;
        if r.is_err() {
            expect_errno(
                check.receive_message(),
                EAGAIN,
                &format!("new channel {id:#x} after its write failed with ENOMEM"),
            )?;
        }
    }
    for &id in &old {
        check.set_channel(id).ctx("bind")?;
        expect_message(
            &check,
            &message(MINOR_FAILSLAB, id, 100),
            &format!("existing channel {id:#x} after its overwrite under failslab"),
        )?;
        // Fault injection off: overwrites still succeed.
        let msg = message(MINOR_FAILSLAB, id, 101);
        bind_write(fd, id, &msg).map_err(|(what, e)| {
            format!(
                "overwriting channel {id:#x} after failslab was turned off: {what}: {}",
                errno_name(e)
            )
        })?;
        expect_message(
            &check,
            &msg,
            &format!("existing channel {id:#x} after failslab"),
        )?;
    }
    // Fault injection off: the new channels can be created now.
    for &id in &new {
        let msg = message(MINOR_FAILSLAB, id, MAX_MSG);
        bind_write(fd, id, &msg).map_err(|(what, e)| {
            format!(
                "new channel {id:#x} after failslab was turned off: {what}: {}",
                errno_name(e)
            )
        })?;
        check.set_channel(id).ctx("bind")?;
        expect_message(&check, &msg, &format!("new channel {id:#x} after failslab"))?;
    }
    eprintln!(
        "  (failslab: {enomem}/{} new-channel writes got ENOMEM)",
        new.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// c. Permissions.

/// Creates `path` as char `MAJOR:minor`, owned by root, with exactly `mode`.
fn make_node(path: &Path, minor: u32, mode: u32) -> TestResult {
    let _ = std::fs::remove_file(path);
    let c = c_path(path)?;
    // SAFETY: valid C string.
    let rc = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(MAJOR, minor),
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
    make_node(&p600, MINOR_PERMS, 0o600)?;
    make_node(&p644, MINOR_PERMS, 0o644)?;
    let ch = fresh_channel();
    let msg = message(MINOR_PERMS, ch, 77);
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
            let mut buf = [0u8; MAX_MSG];
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

// ---------------------------------------------------------------------------------------------
// b. Load/unload cycles.

/// Loads, fills and unloads the module many times; `Slab` must come back to where it started
/// (no leak per cycle), `rmmod` must fail while a descriptor is open (the device keeps
/// working) and the device must stop opening once unloaded. Leaves the module loaded.
pub fn load_unload_cycles() -> TestResult {
    module_ready()?;
    let cycles = count_arg("cycles", 100)?;
    let per_minor = count_arg("cycle-channels", 1000)?.clamp(1, 1 << 20) as u32;
    let paths: Vec<PathBuf> = MINOR_CYCLES
        .iter()
        .map(|&m| ensure_node(m))
        .collect::<Result<_, _>>()?;
    let result = cycles_inner(cycles, per_minor, &paths);
    // Whatever happened, leave the module loaded.
    let loaded = ensure_loaded();
    result.and(loaded)
}

fn cycles_inner(cycles: u64, per_minor: u32, paths: &[PathBuf]) -> TestResult {
    let fill = |cycle: u64| -> TestResult {
        for (path, &minor) in paths.iter().zip(&MINOR_CYCLES) {
            let slot = Slot::open(path).ctx(&format!("cycle {cycle}: open {}", path.display()))?;
            let fd = raw_fd(&slot);
            for id in 1..=per_minor {
                let msg = message(minor, id ^ cycle as u32, MAX_MSG);
                bind_write(fd, id, &msg).map_err(|(what, e)| {
                    format!(
                        "cycle {cycle}: minor {minor} channel {id}: {what}: {}",
                        errno_name(e)
                    )
                })?;
            }
            for id in [1, per_minor / 2 + 1, per_minor] {
                slot.set_channel(id).ctx("bind")?;
                expect_message(
                    &slot,
                    &message(minor, id ^ cycle as u32, MAX_MSG),
                    &format!("cycle {cycle}: minor {minor} channel {id}"),
                )?;
            }
        }
        Ok(())
    };

    unload_module_settled()?;
    // Two warm-up cycles so that caches the first load creates do not count as growth.
    for warm in 0..2 {
        load_module()?;
        fill(1000 + warm)?;
        unload_module_settled()?;
    }
    let (slab0, unrec0) = slab_kib()?;
    let info0 = slabinfo();
    let started = Instant::now();
    for cycle in 0..cycles {
        load_module().map_err(|e| format!("cycle {cycle}: {e}"))?;
        fill(cycle)?;
        if cycle % 10 == 0 {
            let held = open_minor_bound(MINOR_CYCLES[0], 1)?;
            match unload_module() {
                Ok(()) => {
                    drop(held);
                    return Err(format!(
                        "cycle {cycle}: delete_module succeeded with /dev node of minor {} open",
                        MINOR_CYCLES[0]
                    ));
                }
                Err(e) if e == libc::EBUSY || e == EAGAIN => {}
                Err(e) => {
                    return Err(format!(
                        "cycle {cycle}: delete_module with an open fd: {} (expected EBUSY or \
                         EWOULDBLOCK)",
                        errno_name(e)
                    ))
                }
            }
            send_all(
                &held,
                b"still here",
                "write on the held fd after a refused rmmod",
            )?;
            expect_message(
                &held,
                b"still here",
                "read on the held fd after a refused rmmod",
            )?;
        }
        unload_module_settled().map_err(|e| format!("cycle {cycle}: {e}"))?;
        if let Ok(slot) = Slot::open(&paths[1]) {
            drop(slot);
            return Err(format!(
                "cycle {cycle}: a slot opened while the module was unloaded"
            ));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = slab_kib_settled(slab0)?;
    eprintln!(
        "  (load/unload: {cycles} cycles x 3 minors x {per_minor} channels in {secs:.1}s; \
         Slab {slab0} -> {} KiB, SUnreclaim {unrec0} -> {} KiB)",
        after.0, after.1
    );
    ensure!(
        after.0 <= slab0 + SLAB_TOLERANCE_KIB,
        "Slab grew from {slab0} to {} KiB (SUnreclaim {unrec0} -> {} KiB) over {cycles} \
         load/fill/unload cycles (tolerance {SLAB_TOLERANCE_KIB} KiB); {}",
        after.0,
        after.1,
        slab_growth(&info0, &slabinfo())
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// e. Large scale.

/// Fills `ids` of `minor` with 128-byte messages through one descriptor.
fn fill_range(minor: u32, ids: std::ops::RangeInclusive<u32>) -> TestResult {
    let slot = open_minor_bound(minor, *ids.start())?;
    let fd = raw_fd(&slot);
    for id in ids {
        bind_write(fd, id, &message(minor, id, MAX_MSG)).map_err(|(what, e)| {
            format!("minor {minor} channel {id}: {what}: {}", errno_name(e))
        })?;
    }
    Ok(())
}

/// 2^20 channels of 128-byte messages in each of two slots, filled
/// by two threads per slot; spot-checked reads; then the module is unloaded and `Slab` must
/// return near its value before the fill. The module is loaded again at the end.
pub fn large_scale_two_slots() -> TestResult {
    module_ready()?;
    let per_slot = count_arg("scale-channels", 1 << 20)?.clamp(2, 1 << 20) as u32;
    // The nodes exist before the filler threads (two per minor) start.
    for &minor in &MINOR_SCALE {
        ensure_node(minor)?;
    }
    let (slab0, unrec0) = slab_kib()?;
    let info0 = slabinfo();
    let started = Instant::now();
    let half = per_slot / 2;
    let fillers: Vec<_> = MINOR_SCALE
        .iter()
        .flat_map(|&m| [(m, 1..=half), (m, half + 1..=per_slot)])
        .map(|(m, ids)| std::thread::spawn(move || fill_range(m, ids)))
        .collect();
    let mut filled = Ok(());
    for f in fillers {
        let r = f
            .join()
            .unwrap_or_else(|_| Err("filler thread panicked".into()));
        filled = filled.and(r);
    }
    filled?;
    let fill_secs = started.elapsed().as_secs_f64();
    let (slab_full, _) = slab_kib()?;

    for &minor in &MINOR_SCALE {
        let slot = open_minor_bound(minor, 1)?;
        let checks =
            (1..=per_slot)
                .step_by(4099)
                .chain([2, half, half + 1, per_slot - 1, per_slot]);
        for id in checks {
            slot.set_channel(id).ctx("bind")?;
            expect_message(
                &slot,
                &message(minor, id, MAX_MSG),
                &format!("minor {minor} channel {id}"),
            )?;
        }
        slot.set_channel(per_slot + 1).ctx("bind")?;
        expect_errno(
            slot.receive_message(),
            EAGAIN,
            &format!("minor {minor} channel {} (never written)", per_slot + 1),
        )?;
    }

    unload_module_settled()?;
    let after = slab_kib_settled(slab0)?;
    let info1 = slabinfo();
    let loaded = ensure_loaded();
    eprintln!(
        "  (large scale: 2 x {per_slot} channels filled in {fill_secs:.1}s; Slab {slab0} -> \
         {slab_full} (full) -> {} KiB after rmmod, SUnreclaim {unrec0} -> {} KiB)",
        after.0, after.1
    );
    ensure!(
        after.0 <= slab0 + SLAB_TOLERANCE_KIB,
        "Slab {slab0} KiB before filling 2 x {per_slot} channels, {} KiB after rmmod \
         (tolerance {SLAB_TOLERANCE_KIB} KiB); {}",
        after.0,
        slab_growth(&info0, &info1)
    );
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_identify_minor_and_id() {
        assert_eq!(message(201, 7, MAX_MSG).len(), MAX_MSG);
        assert_ne!(message(201, 7, MAX_MSG), message(202, 7, MAX_MSG));
        assert_ne!(message(201, 7, MAX_MSG), message(201, 8, MAX_MSG));
        assert_eq!(message(201, 7, 40), message(201, 7, MAX_MSG)[..40]);
    }
}
