// SPDX-License-Identifier: GPL-2.0

//! The harness of the memory cgroup tests (`cases/memcg.rs`): a cgroup of their own with
//! `memory.max` [`LIMIT`] and no swap ([`Memcg`]), a forked child moved into it
//! ([`MemcgTest::run_child`]) that reports through shared memory ([`Shared`]), and the
//! child's fill of channels with messages that name their minor, channel and round.
//!
//! The child makes raw system calls only: no heap allocation after the fork, and no touch of
//! memory it has not touched before it joined the cgroup (at the limit, with nothing
//! reclaimable, such a page fault would invoke the OOM killer): it writes its stack, errno and
//! the shared page first. It pauses at a checkpoint where
//! the parent reads the cgroup's counters.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use message_slot::Slot;
use message_slot_test_support::sys::SharedMemory;

use crate::module_loading::module_ready;
use crate::util::{
    bind, ensure_node, errno_name, fresh_channel, last_errno, mount_if_needed, raw_fd, raw_write,
    read_file, scaled, show, write_file, Context, TestResult, MAX_MESSAGE_LEN,
};

/// `memory.max` of every test cgroup: 8 MiB.
pub(crate) const LIMIT: u64 = 8 << 20;

/// New channels the fill may create before it counts as "never reached the limit".
pub(crate) const MAX_FILL_CHANNELS: u64 = 4 << 20;

/// A cgroup of its own below `/sys/fs/cgroup`, with `memory.max` [`LIMIT`] and no swap;
/// removed when dropped.
pub(crate) struct Memcg {
    pub(crate) dir: PathBuf,
}

impl Memcg {
    /// `None` if the kernel has no memory controller.
    pub(crate) fn new(name: &str) -> Result<Option<Memcg>, String> {
        let root = Path::new("/sys/fs/cgroup");
        mount_if_needed(
            "cgroup2",
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/cgroup.controllers",
        );
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Ok(None);
        }
        write_file(&root.join("cgroup.subtree_control"), "+memory")?;
        let dir = root.join(format!("msgslot_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).ctx(&format!("mkdir {}", dir.display()))?;
        let memcg = Memcg { dir };
        write_file(&memcg.file("memory.max"), &LIMIT.to_string())?;
        if memcg.file("memory.swap.max").exists() {
            write_file(&memcg.file("memory.swap.max"), "0")?;
        }
        Ok(Some(memcg))
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The value of `key` in a flat keyed file (`memory.events`, `memory.stat`).
    pub(crate) fn keyed(&self, file: &str, key: &str) -> Result<u64, String> {
        let path = self.file(file);
        read_file(&path)?
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| format!("no {key} in {}", path.display()))
    }

    pub(crate) fn current(&self) -> Result<u64, String> {
        let path = self.file("memory.current");
        let text = read_file(&path)?;
        text.trim()
            .parse()
            .map_err(|_| format!("{}: {text:?}", path.display()))
    }

    /// `memory.peak` for the log (absent before 5.19).
    pub(crate) fn peak(&self) -> String {
        std::fs::read_to_string(self.file("memory.peak"))
            .map(|s| kib(s.trim().parse().unwrap_or(0)))
            .unwrap_or_else(|_| "n/a".into())
    }
}

impl Drop for Memcg {
    fn drop(&mut self) {
        // The child has been reaped; its charges may take a moment to be moved to the parent.
        if std::fs::remove_dir(&self.dir).is_err() {
            std::thread::sleep(Duration::from_millis(500));
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

pub(crate) fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

/// What the cgroup child reports, in shared memory.
pub(crate) struct Shared {
    /// Moving into the cgroup failed with this errno (0: it joined).
    pub(crate) join_errno: AtomicI32,
    /// Where the fill stopped (a `STOP_*` value) and the errno of the call that stopped it.
    pub(crate) stop: AtomicI32,
    pub(crate) stop_errno: AtomicI32,
    /// What the fill made: channels, or lookups.
    pub(crate) filled: AtomicU64,
    /// After the checkpoint: calls that failed, and the index, step and errno of the first.
    pub(crate) failures: AtomicU64,
    pub(crate) first_index: AtomicU64,
    pub(crate) first_step: AtomicI32,
    pub(crate) first_errno: AtomicI32,
    /// Writes repeated after a transient ENOMEM.
    pub(crate) retries: AtomicU64,
    /// The work after the checkpoint ran to its end (set by the work itself).
    pub(crate) done: AtomicI32,
    /// The checkpoint the child waits at, and the last one the parent let it pass.
    pub(crate) checkpoint: AtomicI32,
    pub(crate) resumed: AtomicI32,
}

/// Where a fill stopped, or which call failed.
pub(crate) const STOP_IOCTL: i32 = 1;
pub(crate) const STOP_WRITE: i32 = 2;
pub(crate) const STOP_SHORT_WRITE: i32 = 3;
pub(crate) const STOP_NO_LIMIT: i32 = 4;
pub(crate) const STOP_LOOKUP: i32 = 5;
pub(crate) const STOP_COUNTER: i32 = 6;
pub(crate) const STOP_FULL: i32 = 7;
pub(crate) const STOP_MAP: i32 = 8;

pub(crate) fn stop_name(stop: i32) -> &'static str {
    match stop {
        0 => "nothing (the child never got there)",
        STOP_IOCTL => "the ioctl",
        STOP_WRITE => "the write",
        STOP_SHORT_WRITE => "a short write",
        STOP_NO_LIMIT => "the fill's end without reaching the limit",
        STOP_LOOKUP => "a lookup that did not fail with ENOENT",
        STOP_COUNTER => "reading memory.current",
        STOP_FULL => "memory.current reaching the fill mark",
        STOP_MAP => "the mmap",
        _ => "an unknown step",
    }
}

/// Binds `fd` to `id` and writes `msg` (raw calls only); the failing step and errno otherwise.
pub(crate) fn put(fd: i32, id: u32, msg: &[u8; MAX_MESSAGE_LEN]) -> Result<(), (i32, i32)> {
    bind(fd, id).map_err(|e| (STOP_IOCTL, e))?;
    match raw_write(fd, msg.as_ptr(), MAX_MESSAGE_LEN) {
        Ok(MAX_MESSAGE_LEN) => Ok(()),
        Ok(_) => Err((STOP_SHORT_WRITE, 0)),
        Err(e) => Err((STOP_WRITE, e)),
    }
}

/// In the child, after the checkpoint: counts a failed call (the first is remembered).
pub(crate) fn count_failure(shared: &Shared, index: u64, (step, errno): (i32, i32)) {
    if shared.failures.fetch_add(1, SeqCst) == 0 {
        shared.first_index.store(index, SeqCst);
        shared.first_step.store(step, SeqCst);
        shared.first_errno.store(errno, SeqCst);
    }
}

/// The first failure after the checkpoint, for messages.
pub(crate) fn first_failure(shared: &Shared) -> String {
    format!(
        "the first (#{}) failed in {} with {}",
        shared.first_index.load(SeqCst),
        stop_name(shared.first_step.load(SeqCst)),
        errno_name(shared.first_errno.load(SeqCst))
    )
}

/// The message of channel `id` in `round` (0: its first write): 128 bytes that name the
/// minor, the channel and the round, built without allocating.
pub(crate) fn message(minor: u32, id: u32, round: u32) -> [u8; MAX_MESSAGE_LEN] {
    let mut m = [0u8; MAX_MESSAGE_LEN];
    let key = id.wrapping_mul(0x9E37_79B9) ^ round.wrapping_mul(0x85EB_CA6B) ^ minor;
    for (i, b) in m.iter_mut().enumerate() {
        let x = key ^ (i as u32).wrapping_mul(0xC2B2_AE35);
        *b = (x ^ (x >> 15) ^ (x >> 24)) as u8;
    }
    m[..4].copy_from_slice(&id.to_le_bytes());
    m[4..8].copy_from_slice(&round.to_le_bytes());
    m[8..12].copy_from_slice(&minor.to_le_bytes());
    m
}

/// Channel ids unique to this run: a random block above 2^30 with room for [`MAX_FILL_CHANNELS`].
pub(crate) fn fresh_block() -> u32 {
    0x4000_0000 + (fresh_channel() & 0x0FFF_FFFF) * 2
}

/// In the child: creates channels `base`, `base + 1`, ... with their round-0 message until a
/// call fails (or [`MAX_FILL_CHANNELS`]); records where it stopped. True if a write failed.
pub(crate) fn fill_channels(shared: &Shared, fd: i32, minor: u32, base: u32) -> bool {
    for i in 0..MAX_FILL_CHANNELS {
        let id = base + i as u32;
        if let Err((step, e)) = put(fd, id, &message(minor, id, 0)) {
            shared.stop_errno.store(e, SeqCst);
            shared.stop.store(step, SeqCst);
            return step == STOP_WRITE;
        }
        shared.filled.store(i + 1, SeqCst);
    }
    shared.stop.store(STOP_NO_LIMIT, SeqCst);
    false
}

/// Sleeps `ms` milliseconds (a raw call).
pub(crate) fn sleep_ms(ms: i64) {
    let t = libc::timespec {
        tv_sec: ms / 1000,
        tv_nsec: ms % 1000 * 1_000_000,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
}

/// In the child: waits at checkpoint `n` until the parent lets it go on.
pub(crate) fn pause(shared: &Shared, n: i32) {
    shared.checkpoint.store(n, SeqCst);
    while shared.resumed.load(SeqCst) < n {
        sleep_ms(1);
    }
}

/// In the child, before it joins the cgroup: writes the stack it will use, errno and the
/// shared page, so that their faults are charged outside the cgroup. The stack's and errno's
/// are copy-on-write faults. Fork copies no page-table entries of a shared mapping, so the
/// child's first touch of the shared page maps it again, and as no other mapping shares its
/// page table ([`SharedMemory::new_alone`]), the kernel allocates one (in a cgroup of
/// `memory.max` 0, that allocation invoked the OOM killer).
#[inline(never)]
pub(crate) fn prefault(shared: &Shared) {
    let mut pad = [0u8; 256 << 10];
    for i in (0..pad.len()).step_by(4096) {
        // SAFETY: in bounds of a local array.
        unsafe { std::ptr::write_volatile(pad.as_mut_ptr().add(i), 1) };
    }
    std::hint::black_box(&mut pad);
    // A failing call writes errno (thread-local storage).
    // SAFETY: closing an invalid descriptor only fails.
    unsafe { libc::close(-1) };
    shared.join_errno.store(0, SeqCst);
}

/// How long a cgroup child may run.
pub(crate) const CHILD_TIMEOUT: Duration = Duration::from_secs(900);

/// What every test here starts from: its own minor and a slot file of it (the child writes
/// through its raw descriptor), a fresh block of channel ids, the memory shared with the
/// child, the cgroup's OOM kills so far, and the cgroup (the last field: removed last).
pub(crate) struct MemcgTest {
    pub(crate) minor: u32,
    pub(crate) path: PathBuf,
    pub(crate) slot: Slot,
    pub(crate) base: u32,
    pub(crate) shared: SharedMemory<Shared>,
    pub(crate) oom_kills_before: u64,
    pub(crate) memcg: Memcg,
}

impl MemcgTest {
    /// Loads the module if an earlier test left it unloaded, makes the cgroup `name` and the
    /// node of `minor`; `None` if the kernel has no memory controller.
    pub(crate) fn set_up(name: &str, minor: u32) -> Result<Option<MemcgTest>, String> {
        module_ready()?;
        let Some(memcg) = Memcg::new(name)? else {
            return Ok(None);
        };
        let path = ensure_node(minor)?;
        let slot = Slot::open(&path).ctx("open")?;
        Ok(Some(MemcgTest {
            minor,
            path,
            slot,
            base: fresh_block(),
            // SAFETY: `Shared` is atomics only, valid when zeroed. Alone in its page table,
            // so that the child's page-table allocation for it is made on every run (see
            // `prefault`).
            shared: unsafe { SharedMemory::<Shared>::new_alone() }?,
            oom_kills_before: memcg.keyed("memory.events", "oom_kill")?,
            memcg,
        }))
    }

    /// The raw descriptor of the slot file, for the child.
    pub(crate) fn fd(&self) -> i32 {
        raw_fd(&self.slot)
    }

    /// Runs `work` in a forked child moved into the cgroup. Whenever the child waits at a
    /// checkpoint ([`pause`]), the parent calls `checkpoint` and then lets it go on (or kills
    /// it if that fails). Returns the child's wait status; kills it past the [`scaled`]
    /// [`CHILD_TIMEOUT`].
    pub(crate) fn run_child(
        &self,
        work: impl FnOnce(&Shared),
        mut checkpoint: impl FnMut() -> TestResult,
    ) -> Result<i32, String> {
        let procs = OpenOptions::new()
            .write(true)
            .open(self.memcg.file("cgroup.procs"))
            .ctx("open cgroup.procs")?;
        let procs_fd = procs.as_raw_fd();
        let shared = &*self.shared;
        // The shared page is charged when first touched: here, outside the test cgroup.
        shared.checkpoint.store(0, SeqCst);

        // SAFETY: the child makes raw system calls only and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        ensure!(pid >= 0, "fork: {}", errno_name(last_errno()));
        if pid == 0 {
            prefault(shared);
            // SAFETY: a raw write of a constant to a descriptor inherited from the parent.
            if unsafe { libc::write(procs_fd, b"0\n".as_ptr().cast(), 2) } != 2 {
                shared.join_errno.store(last_errno(), SeqCst);
            } else {
                work(shared);
            }
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        drop(procs);
        let kill = |status: &mut i32| {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, status, 0);
            }
        };
        let deadline = Instant::now() + scaled(CHILD_TIMEOUT);
        let mut status = 0;
        let mut passed = 0;
        loop {
            // SAFETY: polls our own child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                return Ok(status);
            }
            let waiting = shared.checkpoint.load(SeqCst);
            if waiting > passed {
                if let Err(e) = checkpoint() {
                    kill(&mut status);
                    return Err(e);
                }
                passed = waiting;
                shared.resumed.store(waiting, SeqCst);
            }
            if Instant::now() > deadline {
                kill(&mut status);
                return Err(format!(
                    "the cgroup child still ran after {}s; killed",
                    scaled(CHILD_TIMEOUT).as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child was not killed and joined the cgroup.
    pub(crate) fn check_child(&self, status: i32) -> TestResult {
        let oom = self.memcg.keyed("memory.events", "oom")?;
        let oom_kills = self.memcg.keyed("memory.events", "oom_kill")?;
        ensure!(
            libc::WIFEXITED(status),
            "the child in the 8 MiB cgroup was killed by signal {} (memory.events oom {oom}, \
             oom_kill {oom_kills}; {} channels or lookups made): reaching memory.max must fail \
             calls with ENOMEM or reclaim, never invoke the OOM killer",
            libc::WTERMSIG(status),
            self.shared.filled.load(SeqCst)
        );
        ensure!(
            oom_kills == self.oom_kills_before,
            "memory.events oom_kill went from {} to {oom_kills}",
            self.oom_kills_before
        );
        let e = self.shared.join_errno.load(SeqCst);
        ensure!(
            e == 0,
            "moving the child into the cgroup: {}",
            errno_name(e)
        );
        Ok(())
    }

    /// Reads the `i`-th channel of the test's block through `check` and compares it with its
    /// message of `round`.
    pub(crate) fn expect_channel(
        &self,
        check: &Slot,
        i: u64,
        round: u32,
        what: &str,
    ) -> TestResult {
        let id = self.base + i as u32;
        let want = message(self.minor, id, round);
        check.set_channel(id).ctx("bind")?;
        let got = check
            .receive_message()
            .ctx(&format!("read {what} channel {id:#x}"))?;
        ensure!(
            got == want,
            "{what} channel {id:#x}: read {}, expected {}",
            show(&got),
            show(&want)
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_minor_channel_and_round() {
        assert_ne!(message(211, 7, 0), message(211, 7, 1));
        assert_ne!(message(211, 7, 0), message(212, 7, 0));
        assert_ne!(message(211, 7, 0), message(211, 8, 0));
        assert_eq!(
            message(211, 7, 3)[..12],
            [7, 0, 0, 0, 3, 0, 0, 0, 211, 0, 0, 0]
        );
    }
}
