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
//! - `memcg_mapped_records_charged`: channels created through mappings charge their record
//!   pages to the cgroup of the process that created them: `memory.stat`'s `kernel` grows,
//!   beyond its `slab`, by a page per page of records.
//! - `memcg_mapped_enomem_not_oom`: new channels created with `MSG_SLOT_RECORD_OFFSET` until
//!   it fails with ENOMEM (the OOM killer never invoked), then mappings of new channels until
//!   an `mmap` fails with ENOMEM; nobody is OOM-killed, and no failed call left a channel
//!   behind (the slot's `channels` counts exactly the channels created).
//!
//! - `memcg_full_slot_enospc_first`: a slot at `max_channels` (the module loaded with
//!   `max_channels=1`) and the child in a cgroup with `memory.max` 0: a write to a new channel
//!   fails with ENOSPC (the slot is full), not ENOMEM (the cgroup is too), as the documented
//!   order says, and the one channel can still be overwritten.
//!
//! The cgroup, the child and what it shares with the parent are `crate::memcg_harness`'s. A
//! kernel without the memory controller reports the tests skipped (failed on the debug
//! kernel).

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use libc::{EAGAIN, ENOENT, ENOMEM};
use message_slot::Slot;

use message_slot::Statistic;
use message_slot_test_support::mapped::{page_size, record_offset, records_per_page, Mapping};

use super::nodes::stats;
use crate::memcg_harness::{
    count_failure, fill_channels, first_failure, kib, message, pause, put, sleep_ms, stop_name,
    Memcg, MemcgTest, Shared, LIMIT, MAX_FILL_CHANNELS, STOP_COUNTER, STOP_FULL, STOP_IOCTL,
    STOP_LOOKUP, STOP_MAP, STOP_NO_LIMIT, STOP_WRITE,
};
use crate::module_loading::{load_module, unload_module};
use crate::options::missing;
use crate::util::{
    bind, errno_name, expect_errno, last_errno, read_file, scaled, write_file, Context, TestResult,
    MAX_MESSAGE_LEN, MINORS_RIG, MINOR_MAPPED_MEMCG, MINOR_MEMCG_ENOMEM, MINOR_MEMCG_FULL_SLOT,
    MINOR_MEMCG_OVERWRITE, MINOR_MEMCG_RECLAIM,
};

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
        "  (memcg: {written} messages of {MAX_MESSAGE_LEN} bytes before {} failed with {}; \
         memory.current {}, peak {})",
        stop_name(stop),
        errno_name(e),
        kib(memcg.current()?),
        memcg.peak()
    );
    test.check_child(status)?;
    ensure!(
        stop != STOP_NO_LIMIT,
        "{MAX_FILL_CHANNELS} writes all succeeded under memory.max={LIMIT}"
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

// ---------------------------------------------------------------------------------------------
// d. Record pages.

/// Channels the charge test creates through mappings: 100 pages of records on 4 KiB pages.
const MAPPED_CHANNELS: u64 = 3000;

/// In the child: binds `fd` to `base + i` and maps it (and unmaps it again), for `i` from 0
/// until `count` or a failure (recorded as where the fill stopped). True if all succeeded.
fn map_channels(shared: &Shared, fd: i32, base: u32, count: u64) -> bool {
    for i in 0..count {
        if let Err(e) = bind(fd, base + i as u32) {
            shared.stop_errno.store(e, SeqCst);
            shared.stop.store(STOP_IOCTL, SeqCst);
            return false;
        }
        match Mapping::of_channel(fd) {
            Ok(mapping) => drop(mapping),
            Err(e) => {
                shared.stop_errno.store(e, SeqCst);
                shared.stop.store(STOP_MAP, SeqCst);
                return false;
            }
        }
        shared.filled.store(i + 1, SeqCst);
    }
    shared.stop.store(STOP_NO_LIMIT, SeqCst);
    true
}

/// `memory.stat`'s `kernel` less its slab (`slab_reclaimable` and `slab_unreclaimable`): the
/// cgroup's kernel memory in whole pages, which is where record pages are charged.
fn kernel_beyond_slab(memcg: &Memcg) -> Result<(u64, u64), String> {
    let kernel = memcg.keyed("memory.stat", "kernel")?;
    let slab = memcg.keyed("memory.stat", "slab_reclaimable")?
        + memcg.keyed("memory.stat", "slab_unreclaimable")?;
    Ok((kernel, slab))
}

/// A process in a memory cgroup creates 3,000 channels (on a minor of their own) through
/// mappings, each mapped and unmapped again: the record pages that holds them are charged to
/// the cgroup and stay charged after the process exits (the channels live on): `memory.stat`'s
/// `kernel` grows beyond its slab by one page per [`records_per_page`] channels (within 90%
/// and 125% of it, plus 64 KiB for the slab's per-CPU charge stock), and nobody is OOM-killed.
pub fn memcg_mapped_records_charged() -> TestResult {
    let Some(test) = MemcgTest::set_up("mapped_charge", MINOR_MAPPED_MEMCG)? else {
        return missing(NO_MEMCG);
    };
    let (memcg, shared, fd, base) = (&test.memcg, &*test.shared, test.fd(), test.base);
    let (kernel0, slab0) = kernel_beyond_slab(memcg)?;
    let status = test.run_child(
        |sh| {
            map_channels(sh, fd, base, MAPPED_CHANNELS);
        },
        || Ok(()),
    )?;
    test.check_child(status)?;
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    ensure!(
        stop == STOP_NO_LIMIT,
        "mapping {MAPPED_CHANNELS} new channels in the cgroup: {} failed with {} after {}",
        stop_name(stop),
        errno_name(e),
        shared.filled.load(SeqCst)
    );
    // The cgroup's statistics are flushed at least every 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let (kernel1, slab1) = kernel_beyond_slab(memcg)?;
    let pages = (kernel1.saturating_sub(kernel0)).saturating_sub(slab1.saturating_sub(slab0));
    let want = MAPPED_CHANNELS.div_ceil(records_per_page() as u64) * page_size() as u64;
    eprintln!(
        "  (memcg records: {MAPPED_CHANNELS} channels mapped: kernel {} -> {}, slab {} -> {}: \
         {} beyond slab, {} of record pages expected)",
        kib(kernel0),
        kib(kernel1),
        kib(slab0),
        kib(slab1),
        kib(pages),
        kib(want)
    );
    ensure!(
        pages * 10 >= want * 9 && pages <= want * 5 / 4 + (64 << 10),
        "{MAPPED_CHANNELS} channels created through mappings charged {} of kernel memory \
         beyond slab to the cgroup, expected about {} (a page per {} channels)",
        kib(pages),
        kib(want),
        records_per_page()
    );
    Ok(())
}

/// Mappings of new channels tried at the limit until one fails.
const MAPPINGS_AT_LIMIT: u64 = 100;

/// A process in a memory cgroup limited to 8 MiB (on a rig minor, which has statistics), in
/// two steps. First it creates channels with `MSG_SLOT_RECORD_OFFSET` (the module's own
/// allocations only: channels and record pages) until the ioctl fails: it must fail with
/// ENOMEM, and the cgroup's `memory.events` `oom` must not move (the module never invokes
/// the OOM killer). Then, at that limit, it maps new channels until an `mmap` fails: it must
/// fail with ENOMEM. Nobody is OOM-killed, and nothing failed leaves a channel behind: the
/// slot's `channels` grew by exactly the channels created, and the channel whose mapping
/// failed reads `EWOULDBLOCK` and maps from outside the cgroup.
///
/// A mapping also needs the kernel's own memory, charged to the cgroup too (the VMA, page
/// tables), whose allocations do invoke the OOM killer at the limit (in one run of five the
/// child was killed when the fill was made of mappings): the child runs with
/// `oom_score_adj` -1000, so such an allocation fails the `mmap` with ENOMEM instead of
/// killing it, and the first step, whose `oom` count tells, holds the module to its promise.
pub fn memcg_mapped_enomem_not_oom() -> TestResult {
    let minor = MINORS_RIG[3];
    let Some(test) = MemcgTest::set_up("mapped_enomem", minor)? else {
        return missing(NO_MEMCG);
    };
    let (memcg, shared, fd, base) = (&test.memcg, &*test.shared, test.fd(), test.base);
    let channels = || -> Result<u64, String> { Ok(stats(minor)?[Statistic::Channels]) };
    let before = channels()?;
    let oom_before = memcg.keyed("memory.events", "oom")?;
    let mut oom_filled = oom_before;
    // The child inherits this process's oom_score_adj.
    let adj = Path::new("/proc/self/oom_score_adj");
    let previous_adj = read_file(adj)?;
    write_file(adj, "-1000")?;
    let status = test.run_child(
        |sh| {
            if !offset_channels(sh, fd, base, MAX_FILL_CHANNELS) {
                return;
            }
            pause(sh, 1);
            let first = base + sh.filled.load(SeqCst) as u32;
            for k in 0..MAPPINGS_AT_LIMIT {
                let id = first + k as u32;
                if let Err(e) = bind(fd, id) {
                    return count_failure(sh, k, (STOP_IOCTL, e));
                }
                match Mapping::of_channel(fd) {
                    Ok(mapping) => drop(mapping),
                    Err(e) => return count_failure(sh, k, (STOP_MAP, e)),
                }
            }
        },
        || {
            oom_filled = memcg.keyed("memory.events", "oom")?;
            Ok(())
        },
    );
    write_file(adj, previous_adj.trim())?;
    let status = status?;
    let filled = shared.filled.load(SeqCst);
    let (stop, e) = (shared.stop.load(SeqCst), shared.stop_errno.load(SeqCst));
    let mapped = shared.first_index.load(SeqCst);
    let oom_after = memcg.keyed("memory.events", "oom")?;
    eprintln!(
        "  (memcg mapped: {filled} channels by MSG_SLOT_RECORD_OFFSET before {} failed with \
         {}; then {mapped} mapped before {} failed with {}; memory.events oom {oom_before} -> \
         {oom_filled} -> {oom_after}; memory.current {}, peak {})",
        stop_name(stop),
        errno_name(e),
        stop_name(shared.first_step.load(SeqCst)),
        errno_name(shared.first_errno.load(SeqCst)),
        kib(memcg.current()?),
        memcg.peak()
    );
    test.check_child(status)?;
    ensure!(
        stop == STOP_IOCTL && e == ENOMEM,
        "creating channels with MSG_SLOT_RECORD_OFFSET in the 8 MiB cgroup stopped at {} \
         with {}, expected the ioctl to fail with ENOMEM",
        stop_name(stop),
        errno_name(e)
    );
    ensure!(
        oom_filled == oom_before,
        "memory.events oom went from {oom_before} to {oom_filled} while the module's own \
         allocations (channels and record pages) filled the cgroup: they invoked the OOM killer"
    );
    ensure!(
        shared.failures.load(SeqCst) == 1
            && shared.first_step.load(SeqCst) == STOP_MAP
            && shared.first_errno.load(SeqCst) == ENOMEM,
        "at the limit, {MAPPINGS_AT_LIMIT} mappings of new channels: {} (expected an mmap to \
         fail with ENOMEM)",
        if shared.failures.load(SeqCst) == 0 {
            "all succeeded".to_string()
        } else {
            first_failure(shared)
        }
    );
    let after = channels()?;
    ensure!(
        after == before + filled + mapped,
        "channels went from {before} to {after} while {filled} channels were created by the \
         ioctl and {mapped} mapped: a failed call left a channel behind"
    );
    let failed = base + (filled + mapped) as u32;
    test.slot.set_channel(failed).ctx("bind")?;
    expect_errno(
        test.slot.receive_message(),
        EAGAIN,
        "the channel whose mapping failed",
    )?;
    drop(Mapping::of_channel(test.fd()).map_err(|e| {
        format!(
            "mmap of the failed channel outside the cgroup: {}",
            errno_name(e)
        )
    })?);
    ensure!(
        channels()? == after + 1,
        "channels {} after the failed channel was mapped outside the cgroup, expected {}",
        channels()?,
        after + 1
    );
    Ok(())
}

/// In the child: binds `fd` to `base + i` and creates the channel with
/// `MSG_SLOT_RECORD_OFFSET`, for `i` from 0 until `count` or a failure (recorded as where the
/// fill stopped). True if an ioctl failed.
fn offset_channels(shared: &Shared, fd: i32, base: u32, count: u64) -> bool {
    for i in 0..count {
        let id = base + i as u32;
        if let Err(e) = bind(fd, id).and_then(|()| record_offset(fd).map(drop)) {
            shared.stop_errno.store(e, SeqCst);
            shared.stop.store(STOP_IOCTL, SeqCst);
            return true;
        }
        shared.filled.store(i + 1, SeqCst);
    }
    shared.stop.store(STOP_NO_LIMIT, SeqCst);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwritten_channels_are_distinct_and_in_range() {
        for created in [2000, 2001, 4099, 40000] {
            let picked: Vec<u64> = (0..2000).map(|k| overwritten(k, 2000, created)).collect();
            assert!(picked.windows(2).all(|w| w[0] < w[1]));
            assert!(*picked.last().unwrap() < created);
        }
    }
}
