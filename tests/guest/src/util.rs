// SPDX-License-Identifier: GPL-2.0

//! Shared helpers: slot opening and binding, errno assertions, extra device nodes and the
//! dedicated minors, fresh channel ids, messages that name their channel, kernel files and
//! child processes with timeouts. The raw system calls for adversarial arguments, guard
//! pages and byte formatting come from the test-support crate (re-exported here).

use std::ffi::CString;
use std::fmt::{Debug, Display};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use message_slot::Slot;
pub use message_slot_test_support::message_codec::show;
pub use message_slot_test_support::sys::{
    bind, errno_name, last_errno, pin_to_cpu, raw_ioctl, raw_read, raw_write, GuardPages,
    MSG_SLOT_CHANNEL,
};

/// What every test returns: `Err` carries the failure reason. A test that cannot run on this
/// kernel returns [`crate::skip`]'s result.
pub type TestResult = Result<(), String>;

pub use message_slot::{DEFAULT_MAX_CHANNELS, MAJOR_NUM, MAX_MESSAGE_LEN};

pub use message_slot_test_support::minors::{
    MINORS_LARGE_SCALE, MINORS_LOAD_CYCLES, MINORS_RIG, MINOR_FAILSLAB, MINOR_FILE_CHURN,
    MINOR_FIXED_IDS, MINOR_LAST, MINOR_MANY_CHANNELS, MINOR_MAPPED_MEMCG, MINOR_MAPPED_PAGE,
    MINOR_MEMCG_ENOMEM, MINOR_MEMCG_FULL_SLOT, MINOR_MEMCG_OVERWRITE, MINOR_MEMCG_RECLAIM,
    MINOR_PERMISSIONS, MINOR_SPARSE_IDS,
};

/// Attaches a description to any `Result` whose error is `Display`.
pub trait Context<T> {
    /// Maps the error to `"<what>: <error>"`.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Checks that a library call failed with exactly `want`.
pub fn expect_errno<T: Debug>(
    result: Result<T, message_slot::Error>,
    want: i32,
    what: &str,
) -> TestResult {
    match result {
        Ok(v) => Err(format!(
            "{what}: expected {}, got success ({v:?})",
            errno_name(want)
        )),
        Err(e) if e.errno() == want => Ok(()),
        Err(e) => Err(format!(
            "{what}: expected {}, got {} ({e})",
            errno_name(want),
            errno_name(e.errno())
        )),
    }
}

/// Checks that a raw system call failed with exactly `want`.
pub fn expect_raw<T: Debug>(result: Result<T, i32>, want: i32, what: &str) -> TestResult {
    match result {
        Ok(v) => Err(format!(
            "{what}: expected {}, got success ({v:?})",
            errno_name(want)
        )),
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!(
            "{what}: expected {}, got {}",
            errno_name(want),
            errno_name(e)
        )),
    }
}

/// A message of `len` bytes that identifies `(minor, id)`: the id in its first four bytes,
/// the rest derived from both.
pub fn channel_message(minor: u32, id: u32, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len);
    let key = id.wrapping_mul(0x9E37_79B9) ^ minor.wrapping_mul(0x85EB_CA6B);
    for i in 0..len {
        let x = key ^ (i as u32).wrapping_mul(0xC2B2_AE35);
        m.push((x ^ (x >> 15) ^ (x >> 24)) as u8);
    }
    m[..4].copy_from_slice(&id.to_le_bytes());
    m
}

/// Binds the raw descriptor `fd` to `id` and writes `msg`; the failing call and its errno
/// otherwise.
pub fn bind_write(fd: RawFd, id: u32, msg: &[u8]) -> Result<(), (&'static str, i32)> {
    bind(fd, id).map_err(|e| ("ioctl", e))?;
    match raw_write(fd, msg.as_ptr(), msg.len()) {
        Ok(n) if n == msg.len() => Ok(()),
        Ok(_) => Err(("short write", 0)),
        Err(e) => Err(("write", e)),
    }
}

/// Hex encoding for passing messages to child processes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inverse of [`hex`].
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    ensure!(s.len().is_multiple_of(2), "odd-length hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex: {e}")))
        .collect()
}

/// A channel id no other test (nor, with high probability, an earlier run of the suite in
/// the same boot) has used: a per-run random block of 65536 ids above 2^28, handed out in
/// order. Fixed ids (1, 2^20, ...) live on dedicated minors instead.
pub fn fresh_channel() -> u32 {
    static BASE: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(7))
            .unwrap_or(0);
        let seed = nanos ^ std::process::id().rotate_left(16);
        0x1000_0000 + (seed % 0xC000) * 0x1_0000
    });
    base + NEXT.fetch_add(1, Ordering::Relaxed) % 0x1_0000
}

/// Path of the node for `minor`: `/dev/slotN` for the rig's minors 0..=3, otherwise a node
/// `/dev/slot_test_N` created (once) by [`ensure_node`].
pub fn slot_path(minor: u32) -> Result<PathBuf, String> {
    if MINORS_RIG.contains(&minor) {
        Ok(PathBuf::from(format!("/dev/slot{minor}")))
    } else {
        ensure_node(minor)
    }
}

/// Makes `/dev/slot_test_<minor>` the node of `minor` (char `MAJOR_NUM:minor`, mode 666).
pub fn ensure_node(minor: u32) -> Result<PathBuf, String> {
    let path = PathBuf::from(format!("/dev/slot_test_{minor}"));
    message_slot_test_support::sys::char_node(&path, MAJOR_NUM, minor)?;
    Ok(path)
}

/// The minor of the device node at `path`.
pub fn minor_of(path: &Path) -> Result<u32, String> {
    let meta = std::fs::metadata(path).ctx(&format!("stat {}", path.display()))?;
    Ok(libc::minor(meta.rdev()))
}

/// Opens a slot read-write.
pub fn open(path: &Path) -> Result<Slot, String> {
    Slot::open(path).ctx(&format!("open {}", path.display()))
}

/// Opens a slot read-write and binds the new descriptor to `channel`.
pub fn open_bound(path: &Path, channel: u32) -> Result<Slot, String> {
    let slot = open(path)?;
    slot.set_channel(channel)
        .ctx(&format!("bind {} to channel {channel}", path.display()))?;
    Ok(slot)
}

/// Opens the slot with minor `minor` and binds it to `channel`.
pub fn open_minor_bound(minor: u32, channel: u32) -> Result<Slot, String> {
    open_bound(&slot_path(minor)?, channel)
}

/// Sends `msg` and checks that the whole message was accepted.
pub fn send_all(slot: &Slot, msg: &[u8], what: &str) -> TestResult {
    let n = slot.send(msg).ctx(what)?;
    ensure!(
        n == msg.len(),
        "{what}: write returned {n}, expected {}",
        msg.len()
    );
    Ok(())
}

/// Reads the current message and checks that it is exactly `want`.
pub fn expect_message(slot: &Slot, want: &[u8], what: &str) -> TestResult {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = slot.receive(&mut buf).ctx(what)?;
    ensure!(
        &buf[..n] == want,
        "{what}: read {}, expected {}",
        show(&buf[..n]),
        show(want)
    );
    Ok(())
}

/// Writes `value` to the kernel file (or any file) `path`.
pub fn write_file(path: &Path, value: &str) -> TestResult {
    std::fs::write(path, value).ctx(&format!("write {value:?} to {}", path.display()))
}

/// The contents of the kernel file (or any file) `path`.
pub fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).ctx(&format!("read {}", path.display()))
}

/// Mounts `fstype` at `target` unless `probe` (a file inside it) already exists.
pub fn mount_if_needed(fstype: &str, target: &str, probe: &str) {
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

/// The raw descriptor of a slot, for raw system calls.
pub fn raw_fd(slot: &Slot) -> RawFd {
    slot.as_fd().as_raw_fd()
}

/// This executable, for re-executing it as a child. Falls back to `argv[0]` (searched in
/// `PATH` when it has no slash) in case `/proc` is not mounted in the guest.
pub fn self_exe() -> PathBuf {
    if let Ok(p) = std::env::current_exe() {
        if p.exists() {
            return p;
        }
    }
    let arg0 = PathBuf::from(std::env::args_os().next().unwrap_or_default());
    if arg0.as_os_str().as_bytes().contains(&b'/') {
        return arg0;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(&arg0))
                .find(|p| p.is_file())
        })
        .unwrap_or(arg0)
}

/// A command that re-executes this binary as a child of kind `kind`.
pub fn child_command<S: AsRef<std::ffi::OsStr>>(kind: &str, args: &[S]) -> Command {
    let mut cmd = Command::new(self_exe());
    cmd.arg(crate::child::FLAG).arg(kind).args(args);
    cmd
}

/// A started process whose output is being collected.
pub struct Running {
    what: String,
    pid: u32,
    rx: mpsc::Receiver<std::io::Result<Output>>,
}

/// Starts `cmd` with stdin closed and stdout/stderr captured.
pub fn spawn(mut cmd: Command, what: &str) -> Result<Running, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().ctx(&format!("spawn {what}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Ok(Running {
        what: what.to_string(),
        pid,
        rx,
    })
}

impl Running {
    /// Waits for the process until `deadline`, killing it if it is still running then.
    pub fn wait(self, deadline: Instant) -> Result<Output, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(r) => r.ctx(&format!("wait for {}", self.what)),
            Err(_) => {
                // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped
                // child (the collector thread reaps it only after it exits).
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
                Err(format!(
                    "{} still running after the deadline; killed",
                    self.what
                ))
            }
        }
    }

    /// Like [`wait`](Self::wait), calling `poke` first and then every `every` while the
    /// process runs (e.g. a write that a waiting reader started too late to see).
    pub fn wait_poking(
        self,
        deadline: Instant,
        every: Duration,
        mut poke: impl FnMut() -> TestResult,
    ) -> Result<Output, String> {
        loop {
            poke()?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(every.min(left)) {
                Ok(r) => return r.ctx(&format!("wait for {}", self.what)),
                Err(_) if Instant::now() < deadline => continue,
                Err(_) => return self.wait(deadline),
            }
        }
    }
}

/// `timeout` stretched by `MSG_SLOT_TIMEOUT_SCALE` (default 1): the debug kernel runs the
/// same work many times slower. Timeouts only catch hangs; they never judge speed.
pub fn scaled(timeout: Duration) -> Duration {
    let scale = std::env::var("MSG_SLOT_TIMEOUT_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u32);
    timeout * scale.max(1)
}

/// Runs `cmd` to completion (at most the [`scaled`] `timeout`) and returns its output.
pub fn run(cmd: Command, what: &str, timeout: Duration) -> Result<Output, String> {
    spawn(cmd, what)?.wait(Instant::now() + scaled(timeout))
}

/// Describes a finished process for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}, stdout {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_identify_minor_and_id() {
        assert_eq!(
            channel_message(201, 7, MAX_MESSAGE_LEN).len(),
            MAX_MESSAGE_LEN
        );
        assert_ne!(
            channel_message(201, 7, MAX_MESSAGE_LEN),
            channel_message(202, 7, MAX_MESSAGE_LEN)
        );
        assert_ne!(
            channel_message(201, 7, MAX_MESSAGE_LEN),
            channel_message(201, 8, MAX_MESSAGE_LEN)
        );
        assert_eq!(
            channel_message(201, 7, 40),
            channel_message(201, 7, MAX_MESSAGE_LEN)[..40]
        );
    }
}
