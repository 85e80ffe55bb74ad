// SPDX-License-Identifier: GPL-2.0

//! The memory cgroup bound. Each test runs its work in a forked child moved into a cgroup of
//! its own with `memory.max` 8 MiB and no swap:
//!
//! - `memcg_enomem_not_oom`: new channels until a write fails: it fails with ENOMEM, nobody is
//!   OOM-killed, and everything written before stays readable.
//! - `memcg_overwrite_at_limit`: the cgroup filled with channels up to that ENOMEM, overwriting
//!   2,000 of them 10 times each all succeeds (a channel owns its message memory, so an
//!   overwrite allocates nothing), nobody is OOM-killed, and each reads back its last message.
//! - `memcg_reclaim_makes_room`: the cgroup filled close to its limit with reclaimable memory
//!   (negative dentries of kernfs: slab charged to the cgroup, which the cgroup's reclaim
//!   shrinks), 4,096 new channels are still created: the module's allocations reclaim like any
//!   allocation a user causes, where a non-blocking one fails with ENOMEM. Slab that reclaim
//!   frees comes back after an RCU grace period, so a write that fails with ENOMEM is repeated
//!   for up to a second (a write that reclaimed nothing keeps failing).
//!
//! - `memcg_full_slot_enospc_first`: a slot at `max_channels` (the module loaded with
//!   `max_channels=1`) and the child in a cgroup with `memory.max` 0: a write to a new channel
//!   fails with ENOSPC (the slot is full), not ENOMEM (the cgroup is too), as the documented
//!   order says, and the one channel can still be overwritten.
//!
//! The child makes raw system calls only: no heap allocation after the fork, and no write to
//! memory it has not written before it joined the cgroup (at the limit, with nothing
//! reclaimable, such a page fault would invoke the OOM killer). It pauses at a checkpoint where
//! the parent reads the cgroup's counters. A kernel without the memory controller reports the
//! tests skipped (failed on the debug kernel).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use libc::{EAGAIN, ENOENT, ENOMEM};
use message_slot::Slot;
use message_slot_test_support::sys::SharedMemory;

use crate::module_loading::{load_module, module_ready, unload_module};
use crate::options::missing;
use crate::util::{
    bind, ensure_node, errno_name, expect_errno, fresh_channel, last_errno, mount_if_needed,
    raw_fd, raw_write, read_file, scaled, show, write_file, Context, TestResult, MAX_MSG,
    MINOR_MEMCG_ENOMEM, MINOR_MEMCG_FULL_SLOT, MINOR_MEMCG_OVERWRITE, MINOR_MEMCG_RECLAIM,
};

/// `memory.max` of every test cgroup: 8 MiB.
const LIMIT: u64 = 8 << 20;

/// New channels the fill may create before it counts as "never reached the limit".
const MAX_CHANNELS: u64 = 4 << 20;

// ---------------------------------------------------------------------------------------------
// The cgroup and its child.

/// A cgroup of its own below `/sys/fs/cgroup`, with `memory.max` [`LIMIT`] and no swap;
/// removed when dropped.
struct Memcg {
    dir: PathBuf,
}

impl Memcg {
    /// `None` if the kernel has no memory controller.
    fn new(name: &str) -> Result<Option<Memcg>, String> {
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

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The value of `key` in a flat keyed file (`memory.events`, `memory.stat`).
    fn keyed(&self, file: &str, key: &str) -> Result<u64, String> {
        let path = self.file(file);
        read_file(&path)?
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| format!("no {key} in {}", path.display()))
    }

    fn current(&self) -> Result<u64, String> {
        let path = self.file("memory.current");
        let text = read_file(&path)?;
        text.trim()
            .parse()
            .map_err(|_| format!("{}: {text:?}", path.display()))
    }

    /// `memory.peak` for the log (absent before 5.19).
    fn peak(&self) -> String {
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

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

/// What the cgroup child reports, in shared memory.
struct Shared {
    /// Moving into the cgroup failed with this errno (0: it joined).
    join_errno: AtomicI32,
    /// Where the fill stopped (a `STOP_*` value) and the errno of the call that stopped it.
    stop: AtomicI32,
    stop_errno: AtomicI32,
    /// What the fill made: channels, or lookups.
    filled: AtomicU64,
    /// After the checkpoint: calls that failed, and the index, step and errno of the first.
    failures: AtomicU64,
    first_index: AtomicU64,
    first_step: AtomicI32,
    first_errno: AtomicI32,
    /// Writes repeated after a transient ENOMEM.
    retries: AtomicU64,
    /// The work after the checkpoint ran to its end (set by the work itself).
    done: AtomicI32,
    /// The checkpoint the child waits at, and the last one the parent let it pass.
    checkpoint: AtomicI32,
    resumed: AtomicI32,
}

/// Where a fill stopped, or which call failed.
const STOP_IOCTL: i32 = 1;
const STOP_WRITE: i32 = 2;
const STOP_SHORT_WRITE: i32 = 3;
const STOP_NO_LIMIT: i32 = 4;
const STOP_LOOKUP: i32 = 5;
const STOP_COUNTER: i32 = 6;
const STOP_FULL: i32 = 7;

fn stop_name(stop: i32) -> &'static str {
    match stop {
        0 => "nothing (the child never got there)",
        STOP_IOCTL => "the ioctl",
        STOP_WRITE => "the write",
        STOP_SHORT_WRITE => "a short write",
        STOP_NO_LIMIT => "the fill's end without reaching the limit",
        STOP_LOOKUP => "a lookup that did not fail with ENOENT",
        STOP_COUNTER => "reading memory.current",
        STOP_FULL => "memory.current reaching the fill mark",
        _ => "an unknown step",
    }
}

/// Binds `fd` to `id` and writes `msg` (raw calls only); the failing step and errno otherwise.
fn put(fd: i32, id: u32, msg: &[u8; MAX_MSG]) -> Result<(), (i32, i32)> {
    bind(fd, id).map_err(|e| (STOP_IOCTL, e))?;
    match raw_write(fd, msg.as_ptr(), MAX_MSG) {
        Ok(MAX_MSG) => Ok(()),
        Ok(_) => Err((STOP_SHORT_WRITE, 0)),
        Err(e) => Err((STOP_WRITE, e)),
    }
}

/// In the child, after the checkpoint: counts a failed call (the first is remembered).
fn count_failure(shared: &Shared, index: u64, (step, errno): (i32, i32)) {
    if shared.failures.fetch_add(1, SeqCst) == 0 {
        shared.first_index.store(index, SeqCst);
        shared.first_step.store(step, SeqCst);
        shared.first_errno.store(errno, SeqCst);
    }
}

/// The first failure after the checkpoint, for messages.
fn first_failure(shared: &Shared) -> String {
    format!(
        "the first (#{}) failed in {} with {}",
        shared.first_index.load(SeqCst),
        stop_name(shared.first_step.load(SeqCst)),
        errno_name(shared.first_errno.load(SeqCst))
    )
}

/// The message of channel `id` in `round` (0: its first write): 128 bytes that name the
/// minor, the channel and the round, built without allocating.
fn message(minor: u32, id: u32, round: u32) -> [u8; MAX_MSG] {
    let mut m = [0u8; MAX_MSG];
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

/// Channel ids unique to this run: a random block above 2^30 with room for [`MAX_CHANNELS`].
fn fresh_block() -> u32 {
    0x4000_0000 + (fresh_channel() & 0x0FFF_FFFF) * 2
}

/// In the child: creates channels `base`, `base + 1`, ... with their round-0 message until a
/// call fails (or [`MAX_CHANNELS`]); records where it stopped. True if a write failed.
fn fill_channels(shared: &Shared, fd: i32, minor: u32, base: u32) -> bool {
    for i in 0..MAX_CHANNELS {
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
fn sleep_ms(ms: i64) {
    let t = libc::timespec {
        tv_sec: ms / 1000,
        tv_nsec: ms % 1000 * 1_000_000,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
}

/// In the child: waits at checkpoint `n` until the parent lets it go on.
fn pause(shared: &Shared, n: i32) {
    shared.checkpoint.store(n, SeqCst);
    while shared.resumed.load(SeqCst) < n {
        sleep_ms(1);
    }
}

/// In the child, before it joins the cgroup: writes the stack it will use and errno, so that
/// their copy-on-write faults are charged outside the cgroup.
#[inline(never)]
fn prefault() {
    let mut pad = [0u8; 256 << 10];
    for i in (0..pad.len()).step_by(4096) {
        // SAFETY: in bounds of a local array.
        unsafe { std::ptr::write_volatile(pad.as_mut_ptr().add(i), 1) };
    }
    std::hint::black_box(&mut pad);
    // A failing call writes errno (thread-local storage).
    // SAFETY: closing an invalid descriptor only fails.
    unsafe { libc::close(-1) };
}

/// How long a cgroup child may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);

/// What every test here starts from: its own minor and a slot file of it (the child writes
/// through its raw descriptor), a fresh block of channel ids, the memory shared with the
/// child, the cgroup's OOM kills so far, and the cgroup (the last field: removed last).
struct MemcgTest {
    minor: u32,
    path: PathBuf,
    slot: Slot,
    base: u32,
    shared: SharedMemory<Shared>,
    oom_kills_before: u64,
    memcg: Memcg,
}

impl MemcgTest {
    /// Loads the module if an earlier test left it unloaded, makes the cgroup `name` and the
    /// node of `minor`; `None` if the kernel has no memory controller.
    fn set_up(name: &str, minor: u32) -> Result<Option<MemcgTest>, String> {
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
            // SAFETY: `Shared` is atomics only, valid when zeroed.
            shared: unsafe { SharedMemory::<Shared>::new() }?,
            oom_kills_before: memcg.keyed("memory.events", "oom_kill")?,
            memcg,
        }))
    }

    /// The raw descriptor of the slot file, for the child.
    fn fd(&self) -> i32 {
        raw_fd(&self.slot)
    }

    /// Runs `work` in a forked child moved into the cgroup. Whenever the child waits at a
    /// checkpoint ([`pause`]), the parent calls `checkpoint` and then lets it go on (or kills
    /// it if that fails). Returns the child's wait status; kills it past the [`scaled`]
    /// [`CHILD_TIMEOUT`].
    fn run_child(
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
            prefault();
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
    fn check_child(&self, status: i32) -> TestResult {
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
    fn expect_channel(&self, check: &Slot, i: u64, round: u32, what: &str) -> TestResult {
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

const NO_MEMCG: &str = "the cgroup2 memory controller (CONFIG_MEMCG)";

// ---------------------------------------------------------------------------------------------
// a. New channels until ENOMEM.

/// A process in a memory cgroup limited to 8 MiB fills new channels until a write fails: it
/// must fail with ENOMEM (the module charges what it allocates to the caller's cgroup and
/// never invokes the OOM killer), the process must not be OOM-killed, and everything written
/// before stays readable.
pub fn memcg_enomem_not_oom() -> TestResult {
    let Some(test) = MemcgTest::set_up("enomem", MINOR_MEMCG_ENOMEM)? else {
        return missing(NO_MEMCG);
    };
    let (memcg, shared, path) = (&test.memcg, &*test.shared, &test.path);
    let (fd, base) = (test.fd(), test.base);
    let status = test.run_child(
        |sh| {
            fill_channels(sh, fd, MINOR_MEMCG_ENOMEM, base);
        },
        || Ok(()),
    )?;
    let written = shared.filled.load(SeqCst);
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    eprintln!(
        "  (memcg: {written} messages of {MAX_MSG} bytes before {} failed with {}; \
         memory.current {}, peak {})",
        stop_name(stop),
        errno_name(e),
        kib(memcg.current()?),
        memcg.peak()
    );
    test.check_child(status)?;
    ensure!(
        stop != STOP_NO_LIMIT,
        "{MAX_CHANNELS} writes all succeeded under memory.max={LIMIT}"
    );
    ensure!(
        stop == STOP_WRITE && e == ENOMEM,
        "the first failing call in the 8 MiB cgroup ({}) failed with {}, expected the write \
         to fail with ENOMEM",
        stop_name(stop),
        errno_name(e)
    );
    ensure!(written > 0, "not a single message fitted in 8 MiB");

    // Everything written before the failure is intact; the failed channel is empty.
    let check = Slot::open(path).ctx("open")?;
    let step_by = (written / 4096).max(1) as usize;
    for i in (0..written).step_by(step_by).chain([written - 1]) {
        test.expect_channel(&check, i, 0, "written in the cgroup:")?;
    }
    check.set_channel(base + written as u32).ctx("bind")?;
    expect_errno(
        check.receive_message(),
        EAGAIN,
        "the channel whose write failed with ENOMEM",
    )
}

// ---------------------------------------------------------------------------------------------
// b. Overwrites at the limit.

/// Existing channels overwritten at the limit, and how many times each.
const OVERWRITTEN: u64 = 2000;
const ROUNDS: u32 = 10;

/// The `k`-th of `n` overwritten channels among `created` (spread over all of them).
fn overwritten(k: u64, n: u64, created: u64) -> u64 {
    k * created / n
}

/// Writes the child makes to new channels of the full slot.
const FULL_SLOT_WRITES: u32 = 1_000;

/// A slot at `max_channels` (1) and a child in a cgroup that can charge nothing
/// (`memory.max` 0): each of 1,000 writes to a new channel fails with ENOSPC, before any
/// allocation could fail with ENOMEM; the slot's one channel is overwritten (no allocation),
/// and nobody is OOM-killed. A module that allocates before checking the limit answers ENOMEM.
pub fn memcg_full_slot_enospc_first() -> TestResult {
    unload_module()?;
    load_module(&["max_channels=1"])?;
    let result = memcg_full_slot();
    unload_module()?;
    load_module(&[])?;
    result
}

fn memcg_full_slot() -> TestResult {
    let Some(test) = MemcgTest::set_up("full_slot", MINOR_MEMCG_FULL_SLOT)? else {
        return missing(NO_MEMCG);
    };
    write_file(&test.memcg.file("memory.max"), "0")?;
    let (shared, fd, base) = (&*test.shared, test.fd(), test.base);
    put(fd, base, &message(test.minor, base, 0))
        .map_err(|(step, e)| format!("the one channel: {} {}", stop_name(step), errno_name(e)))?;
    let minor = test.minor;
    let status = test.run_child(
        |sh| {
            for i in 1..=FULL_SLOT_WRITES {
                let id = base + i;
                match put(fd, id, &message(minor, id, 0)) {
                    Err((STOP_WRITE, libc::ENOSPC)) => {
                        sh.filled.fetch_add(1, SeqCst);
                    }
                    Err(failure) => count_failure(sh, u64::from(i), failure),
                    Ok(()) => count_failure(sh, u64::from(i), (STOP_NO_LIMIT, 0)),
                }
            }
            if let Err((step, e)) = put(fd, base, &message(minor, base, 1)) {
                sh.stop.store(step, SeqCst);
                sh.stop_errno.store(e, SeqCst);
            }
        },
        || Ok(()),
    )?;
    test.check_child(status)?;
    let refused = shared.filled.load(SeqCst);
    eprintln!(
        "  (memcg at memory.max 0, slot at max_channels: {refused} of {FULL_SLOT_WRITES} new channels refused with ENOSPC)"
    );
    ensure!(
        shared.failures.load(SeqCst) == 0,
        "{} of {FULL_SLOT_WRITES} writes to a new channel of a full slot in a full cgroup did not fail with ENOSPC: {}",
        shared.failures.load(SeqCst),
        first_failure(shared)
    );
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    ensure!(
        stop == 0,
        "overwriting the slot's one channel in the full cgroup: {} failed with {}",
        stop_name(stop),
        errno_name(e)
    );
    let check = Slot::open(&test.path).ctx("open")?;
    test.expect_channel(&check, 0, 1, "the overwritten")?;
    check.set_channel(base + 1).ctx("bind")?;
    expect_errno(check.receive_message(), EAGAIN, "a refused channel")
}

/// A process in an 8 MiB memory cgroup creates channels until a write fails with ENOMEM,
/// then overwrites 2,000 of them 10 times each: every overwrite succeeds (replacing a message
/// needs no memory), nobody is OOM-killed, and each channel reads back its last message (the
/// others their first).
pub fn memcg_overwrite_at_limit() -> TestResult {
    let Some(test) = MemcgTest::set_up("overwrite", MINOR_MEMCG_OVERWRITE)? else {
        return missing(NO_MEMCG);
    };
    let (memcg, shared, path) = (&test.memcg, &*test.shared, &test.path);
    let (fd, base) = (test.fd(), test.base);
    let mut at_limit = 0;
    let status = test.run_child(
        |sh| {
            if !fill_channels(sh, fd, MINOR_MEMCG_OVERWRITE, base) {
                return;
            }
            pause(sh, 1);
            let created = sh.filled.load(SeqCst);
            let n = OVERWRITTEN.min(created);
            for round in 1..=ROUNDS {
                for k in 0..n {
                    let id = base + overwritten(k, n, created) as u32;
                    if let Err(failed) = put(fd, id, &message(MINOR_MEMCG_OVERWRITE, id, round)) {
                        count_failure(sh, (round as u64 - 1) * n + k, failed);
                    }
                }
            }
            sh.done.store(1, SeqCst);
        },
        || {
            at_limit = memcg.current()?;
            Ok(())
        },
    )?;
    let created = shared.filled.load(SeqCst);
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    let n = OVERWRITTEN.min(created);
    let failures = shared.failures.load(SeqCst);
    eprintln!(
        "  (memcg overwrite: {created} channels before {} failed with {}; memory.current {} \
         then; {failures} of {} overwrites failed; memory.current {} after, peak {})",
        stop_name(stop),
        errno_name(e),
        kib(at_limit),
        n * ROUNDS as u64,
        kib(memcg.current()?),
        memcg.peak()
    );
    test.check_child(status)?;
    ensure!(
        stop == STOP_WRITE && e == ENOMEM,
        "filling the 8 MiB cgroup with channels stopped at {} with {} after {created} \
         channels, expected a write to fail with ENOMEM",
        stop_name(stop),
        errno_name(e)
    );
    ensure!(
        created >= OVERWRITTEN,
        "only {created} channels fitted in 8 MiB (at least {OVERWRITTEN} wanted)"
    );
    ensure!(
        failures == 0,
        "{failures} of {} overwrites of existing channels failed in the cgroup at its limit \
         ({}): replacing a message must not need memory",
        n * ROUNDS as u64,
        first_failure(shared)
    );
    ensure!(
        shared.done.load(SeqCst) == 1,
        "the child did not finish its overwrites"
    );

    // Each overwritten channel holds its last message, the others (sampled) their first.
    let check = Slot::open(path).ctx("open")?;
    let mut is_overwritten = vec![false; created as usize];
    for k in 0..n {
        let i = overwritten(k, n, created);
        is_overwritten[i as usize] = true;
        test.expect_channel(&check, i, ROUNDS, "overwritten")?;
    }
    for i in (0..created)
        .step_by(7)
        .filter(|&i| !is_overwritten[i as usize])
    {
        test.expect_channel(&check, i, 0, "not overwritten")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// c. Reclaim makes room for new channels.

/// New channels created with the cgroup full of reclaimable memory: about twice as many as
/// fit in the room the fill leaves on the base kernel (about 2,100, per-CPU charge stocks
/// included), and half of what fits in 8 MiB on the debug kernel, whose KASAN redzones make
/// a channel about 1 KiB (8,128 fit) once the dentries are gone.
const NEW_CHANNELS: u64 = 4096;
/// The fill stops once `memory.current` is within this of `memory.max` (charges are batched
/// by 64 pages, so it may stop up to that far below; it never reaches the limit itself).
const FILL_MARGIN: u64 = 256 << 10;
/// Lookups the fill may make before it counts as "never reached the mark".
const MAX_LOOKUPS: u64 = 1 << 20;
/// After a write fails with ENOMEM, it is repeated every 10 ms for up to 1 s ([`scaled`]):
/// memory the cgroup's reclaim frees from slab (dentries) comes back only after an RCU grace
/// period, so the write that first meets the limit may fail although the reclaim it ran
/// succeeded. Without reclaim nothing ever comes back and the retries run out.
const RETRY_MS: i64 = 10;
const RETRY_FOR: Duration = Duration::from_secs(1);
/// Length of the names looked up: longer than a dentry's inline name, so each negative
/// dentry also holds an external name (both charged to the cgroup, both reclaimable).
const NAME_LEN: usize = 200;

/// `memory.current` read through `fd` (raw calls, no allocation).
fn read_counter(fd: i32) -> Option<u64> {
    let mut buf = [0u8; 32];
    // SAFETY: reads into a local buffer of that size.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    let digits = buf.get(..usize::try_from(n).ok()?)?;
    let digits = digits.strip_suffix(b"\n").unwrap_or(digits);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &d| {
        d.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
}

/// In the child: looks up names that do not exist in the directory `dir_fd` (a kernfs
/// directory: it keeps negative dentries) until `memory.current` (`current_fd`) is within
/// [`FILL_MARGIN`] of the limit; records where it stopped. True once there.
fn fill_negative_dentries(shared: &Shared, dir_fd: i32, current_fd: i32) -> bool {
    let mut name = [b'n'; NAME_LEN + 1];
    name[NAME_LEN] = 0;
    // SAFETY: all-zero bytes are a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    for i in 0..MAX_LOOKUPS {
        if i % 16 == 0 {
            match read_counter(current_fd) {
                None => {
                    shared.stop_errno.store(last_errno(), SeqCst);
                    shared.stop.store(STOP_COUNTER, SeqCst);
                    return false;
                }
                Some(c) if c + FILL_MARGIN >= LIMIT => {
                    shared.stop.store(STOP_FULL, SeqCst);
                    return true;
                }
                Some(_) => {}
            }
        }
        for (k, b) in name[..16].iter_mut().enumerate() {
            *b = b"0123456789abcdef"[(i >> (4 * k)) as usize & 15];
        }
        // SAFETY: a NUL-terminated name and a local `stat`.
        let rc = unsafe { libc::fstatat(dir_fd, name.as_ptr().cast(), &mut st, 0) };
        let e = if rc == 0 { 0 } else { last_errno() };
        if e != ENOENT {
            shared.stop_errno.store(e, SeqCst);
            shared.stop.store(STOP_LOOKUP, SeqCst);
            return false;
        }
        shared.filled.store(i + 1, SeqCst);
    }
    shared.stop.store(STOP_NO_LIMIT, SeqCst);
    false
}

/// The cgroup's counters at one moment.
#[derive(Default, Clone, Copy)]
struct Usage {
    current: u64,
    slab_reclaimable: u64,
    slab_unreclaimable: u64,
    max_events: u64,
}

impl Usage {
    fn of(memcg: &Memcg) -> Result<Usage, String> {
        Ok(Usage {
            current: memcg.current()?,
            slab_reclaimable: memcg.keyed("memory.stat", "slab_reclaimable")?,
            slab_unreclaimable: memcg.keyed("memory.stat", "slab_unreclaimable")?,
            max_events: memcg.keyed("memory.events", "max")?,
        })
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory.current {}, slab_reclaimable {}, slab_unreclaimable {}, memory.events max {}",
            kib(self.current),
            kib(self.slab_reclaimable),
            kib(self.slab_unreclaimable),
            self.max_events
        )
    }
}

/// A process in an 8 MiB memory cgroup fills it close to its limit with negative dentries
/// (lookups of names that do not exist in a kernfs directory: memory charged to the cgroup
/// that its reclaim can free), then creates 4,096 new channels: all must succeed (a write
/// that fails with ENOMEM is repeated for up to [`RETRY_FOR`]: the dentries reclaim frees
/// come back after an RCU grace period), the cgroup reaching its limit on the way and its
/// reclaimable slab shrinking (the kernel reclaims the dentries to make room), and nobody is
/// OOM-killed. A module allocating without reclaim (`GFP_NOWAIT`) fails with ENOMEM for good
/// once the little room left is used.
pub fn memcg_reclaim_makes_room() -> TestResult {
    let Some(test) = MemcgTest::set_up("reclaim", MINOR_MEMCG_RECLAIM)? else {
        return missing(NO_MEMCG);
    };
    let (memcg, shared, path) = (&test.memcg, &*test.shared, &test.path);
    let (fd, base) = (test.fd(), test.base);
    // The names are looked up in the test cgroup's own directory: its removal drops them.
    let dir = std::fs::File::open(&memcg.dir).ctx(&format!("open {}", memcg.dir.display()))?;
    let current = std::fs::File::open(memcg.file("memory.current")).ctx("open memory.current")?;
    let (dir_fd, current_fd) = (dir.as_raw_fd(), current.as_raw_fd());
    // The first read allocates the file's buffer: here, outside the test cgroup.
    ensure!(
        read_counter(current_fd).is_some(),
        "read memory.current: {}",
        errno_name(last_errno())
    );
    let retries = scaled(RETRY_FOR).as_millis() as i64 / RETRY_MS;
    let mut full = Usage::default();
    let status = test.run_child(
        |sh| {
            if !fill_negative_dentries(sh, dir_fd, current_fd) {
                return;
            }
            pause(sh, 1);
            for i in 0..NEW_CHANNELS {
                let id = base + i as u32;
                let msg = message(MINOR_MEMCG_RECLAIM, id, 0);
                let mut tries = 0;
                loop {
                    match put(fd, id, &msg) {
                        Ok(()) => break,
                        Err((STOP_WRITE, ENOMEM)) if tries < retries => {
                            sh.retries.fetch_add(1, SeqCst);
                            tries += 1;
                            sleep_ms(RETRY_MS);
                        }
                        Err(failed) => {
                            // Decisive: stop here rather than wait for every later channel.
                            count_failure(sh, i, failed);
                            return;
                        }
                    }
                }
            }
            sh.done.store(1, SeqCst);
        },
        || {
            full = Usage::of(memcg)?;
            // The cgroup must be near its limit, mostly with reclaimable slab.
            ensure!(
                full.current + 2 * FILL_MARGIN >= LIMIT && full.slab_reclaimable >= LIMIT / 2,
                "after {} lookups of missing names the cgroup is not near its limit full of \
                 reclaimable slab: {full}",
                shared.filled.load(SeqCst)
            );
            Ok(())
        },
    )?;
    let after = Usage::of(memcg)?;
    let lookups = shared.filled.load(SeqCst);
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    let failures = shared.failures.load(SeqCst);
    let created = if failures == 0 {
        NEW_CHANNELS
    } else {
        shared.first_index.load(SeqCst)
    };
    eprintln!(
        "  (memcg reclaim: {lookups} negative dentries: {full}; then {created} of \
         {NEW_CHANNELS} new channels created, {} writes repeated after ENOMEM: {after}; \
         peak {})",
        shared.retries.load(SeqCst),
        memcg.peak()
    );
    test.check_child(status)?;
    ensure!(
        stop == STOP_FULL,
        "filling the cgroup with negative dentries stopped at {} ({}) after {lookups} lookups",
        stop_name(stop),
        errno_name(e)
    );
    ensure!(
        failures == 0,
        "with the cgroup at its limit full of reclaimable memory ({full}), new channel \
         #{created} could not be created ({}; ENOMEM is repeated for {}s): the module's \
         allocations must reclaim",
        first_failure(shared),
        scaled(RETRY_FOR).as_secs_f64()
    );
    ensure!(
        shared.done.load(SeqCst) == 1,
        "the child did not finish creating channels"
    );
    // The room came from reclaim: the limit was reached and the dentries shrank.
    ensure!(
        after.max_events > full.max_events,
        "creating {NEW_CHANNELS} channels never reached memory.max ({full} before, {after} \
         after): the test did not exercise reclaim"
    );
    ensure!(
        after.slab_reclaimable + (512 << 10) <= full.slab_reclaimable,
        "reclaimable slab went from {} to {} only while {NEW_CHANNELS} channels were created",
        kib(full.slab_reclaimable),
        kib(after.slab_reclaimable)
    );
    let check = Slot::open(path).ctx("open")?;
    for i in (0..NEW_CHANNELS).step_by(61).chain([NEW_CHANNELS - 1]) {
        test.expect_channel(&check, i, 0, "new")?;
    }
    Ok(())
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

    #[test]
    fn overwritten_channels_are_distinct_and_in_range() {
        for created in [2000, 2001, 4099, 40000] {
            let picked: Vec<u64> = (0..2000).map(|k| overwritten(k, 2000, created)).collect();
            assert!(picked.windows(2).all(|w| w[0] < w[1]));
            assert!(*picked.last().unwrap() < created);
        }
    }
}
