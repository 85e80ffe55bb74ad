// SPDX-License-Identifier: GPL-2.0

//! Module lifetime: `rmmod` is refused while a slot is open, and unloading then reloading
//! the module empties every slot. These run last because the reload wipes all messages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use libc::{EAGAIN, ENOSPC};
use message_slot::{Slot, Statistic};

use super::failslab::slab_allocations_during;
use super::nodes::stats;
use crate::module_loading::{load_module, try_unload_module, unload_module, MODULE_NAME};
use crate::options::debug_kernel;
use crate::polling::{poll_fd, Epoll};
use crate::slab::{slab_growth, slab_kib, slab_kib_settled, slabinfo, SLAB_TOLERANCE_KIB};
use crate::util::{
    bind, errno_name, expect_errno, expect_message, fresh_channel, open, open_bound,
    open_minor_bound, pin_to_cpu, raw_fd, raw_write, scaled, send_all, show, slot_path, Context,
    TestResult, MINOR_FIXED_IDS, MINOR_LAST, MINOR_MANY_CHANNELS,
};

/// How long the last-place race waits for a racer's write.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `rmmod` fails while a descriptor is open, and the device keeps working afterwards.
pub fn rmmod_refused_while_open() -> TestResult {
    let path = slot_path(0)?;
    let ch = fresh_channel();
    let held = open_bound(&path, ch)?;
    send_all(&held, b"held open", "write")?;
    if try_unload_module().is_ok() {
        drop(held);
        let restored = load_module(&[])
            .map(|()| "module reloaded".to_string())
            .unwrap_or_else(|e| e);
        return Err(format!(
            "rmmod {MODULE_NAME} succeeded while /dev/slot0 was open ({restored})"
        ));
    }
    expect_message(&held, b"held open", "read on the held fd after rmmod")?;
    send_all(&held, b"still alive", "write on the held fd after rmmod")?;
    expect_message(
        &open_bound(&path, ch)?,
        b"still alive",
        "new fd after rmmod",
    )?;
    let other = fresh_channel();
    send_all(
        &open_minor_bound(1, other)?,
        b"minor 1 too",
        "write minor 1",
    )?;
    expect_message(&open_minor_bound(1, other)?, b"minor 1 too", "read minor 1")
}

/// With every descriptor closed, `rmmod` succeeds, the device stops opening, `insmod`
/// succeeds and all slots start empty again.
pub fn reload_wipes_messages() -> TestResult {
    let ch = fresh_channel();
    let mut written = Vec::new();
    for minor in [0, 3, MINOR_LAST] {
        let slot = open_minor_bound(minor, ch)?;
        send_all(&slot, b"before reload", &format!("write minor {minor}"))?;
        written.push((minor, ch));
    }
    // Channels that earlier tests wrote on their dedicated minors.
    written.push((MINOR_MANY_CHANNELS, 1));
    written.push((MINOR_FIXED_IDS, u32::MAX));

    // A child of an earlier test may still be closing its descriptor: retried briefly.
    unload_module()?;

    // Whatever happens next, try to load the module again.
    let opened = Slot::open(slot_path(0)?);
    let reloaded = load_module(&[]);
    if let Ok(slot) = opened {
        drop(slot);
        return Err("open /dev/slot0 succeeded while the module was unloaded".to_string());
    }
    reloaded?;
    if let Err(e) = &Slot::open(slot_path(0)?) {
        return Err(format!(
            "open /dev/slot0 after insmod: {}",
            errno_name(e.errno())
        ));
    }

    for (minor, id) in written {
        let slot = open_minor_bound(minor, id)?;
        expect_errno(
            slot.receive_message(),
            EAGAIN,
            &format!("minor {minor} channel {id} after reload"),
        )?;
    }
    let slot = open_minor_bound(0, ch)?;
    send_all(&slot, b"after reload", "write after reload")?;
    expect_message(&slot, b"after reload", "read after reload")
}

/// `max_channels=N` caps the channels per slot: a write that would create channel N+1 fails
/// with `ENOSPC` and changes nothing, existing channels stay writable, and other slots have
/// their own budget. `max_channels=0` is refused at load time.
pub fn max_channels_param() -> TestResult {
    unload_module()?;
    if load_module(&["max_channels=0"]).is_ok() {
        return Err("insmod max_channels=0 succeeded".to_string());
    }
    load_module(&["max_channels=3"])?;
    let result = (|| {
        let shown = std::fs::read_to_string("/sys/module/message_slot/parameters/max_channels")
            .map_err(|e| format!("read max_channels from sysfs: {e}"))?;
        ensure!(shown.trim() == "3", "sysfs shows max_channels={shown:?}");
        for id in 1..=3 {
            send_all(
                &open_minor_bound(0, id)?,
                format!("c{id}").as_bytes(),
                "fill",
            )?;
        }
        let fourth = open_minor_bound(0, 4)?;
        expect_errno(
            fourth.send(b"one too many"),
            ENOSPC,
            "write to a 4th channel",
        )?;
        expect_errno(fourth.receive_message(), EAGAIN, "read the refused channel")?;
        send_all(
            &open_minor_bound(0, 2)?,
            b"overwrite",
            "overwrite channel 2",
        )?;
        expect_message(&open_minor_bound(0, 2)?, b"overwrite", "channel 2")?;
        expect_message(&open_minor_bound(0, 1)?, b"c1", "channel 1")?;
        send_all(
            &open_minor_bound(1, 4)?,
            b"other slot",
            "channel 4 on minor 1",
        )
    })();
    unload_module()?;
    load_module(&[])?;
    result
}

/// Refusals at `max_channels` leave nothing behind (`max_channels=1`, one channel written):
/// 100,000 writes to ids spread over the whole `u32` range, 20,000 waiting polls of others
/// and 20,000 level-triggered `epoll_wait`s on a file bound to another all fail (`ENOSPC`,
/// `POLLERR`), the slot still holds one channel, and the kernel's slab memory does not grow
/// (a module that reserves the id's XArray index before checking the limit, and never gives
/// the reservation back, keeps XArray nodes for each refused id until unload).
pub fn max_channels_refusals_leave_nothing() -> TestResult {
    const WRITES: u32 = 100_000;
    const POLLS: u32 = 20_000;
    let minor = 0;
    unload_module()?;
    load_module(&["max_channels=1"])?;
    let result = (|| -> TestResult {
        let path = slot_path(minor)?;
        send_all(
            &open_bound(&path, 1)?,
            b"the one channel",
            "the one channel",
        )?;
        let channels = Statistic::Channels;
        let slab_before = slab_kib()?;
        let caches_before = slabinfo();
        // Ids spread over u32 (hashed into buckets all over the index), never 0 or 1.
        let spread = |i: u32| i.wrapping_mul(0x9E37_79B1).max(2);
        let file = open(&path)?;
        let fd = raw_fd(&file);
        let mut refused = 0;
        for i in 0..WRITES {
            let id = spread(i);
            bind(fd, id).map_err(|e| format!("bind {id:#x}: {}", errno_name(e)))?;
            match raw_write(fd, b"x".as_ptr(), 1) {
                Err(libc::ENOSPC) => refused += 1,
                other => return Err(format!("write to new channel {id:#x}: {other:?}")),
            }
        }
        for i in 0..POLLS {
            let id = spread(WRITES + i);
            bind(fd, id).map_err(|e| format!("bind {id:#x}: {}", errno_name(e)))?;
            // A waiting poll (its table registers), which returns at once with the error.
            let events = poll_fd(fd, 10_000)?;
            ensure!(
                events == libc::POLLERR,
                "poll of new channel {id:#x} on a full slot: {events:#x}, expected POLLERR"
            );
        }
        let id = spread(WRITES + POLLS);
        bind(fd, id).map_err(|e| format!("bind {id:#x}: {}", errno_name(e)))?;
        let reported = waits_reporting_error(&level_triggered_epoll(&file)?, POLLS)?;
        ensure!(
            reported == POLLS,
            "level-triggered epoll on new channel {id:#x}: EPOLLERR in {reported} of {POLLS} waits"
        );
        // Where failslab tells: neither a refused write nor a refused poll allocates (at all:
        // allocating and freeing again would leave no trace in the slab counts).
        let id = spread(WRITES + POLLS + 1);
        bind(fd, id).map_err(|e| format!("bind {id:#x}: {}", errno_name(e)))?;
        let epoll = level_triggered_epoll(&file)?;
        let refusals = slab_allocations_during(|| {
            (
                raw_write(fd, b"x".as_ptr(), 1),
                poll_fd(fd, 10_000),
                waits_reporting_error(&epoll, 1),
            )
        })?;
        if let Some((allocated, (write, poll, epoll))) = refusals {
            ensure!(
                matches!(
                    (&write, &poll, &epoll),
                    (Err(libc::ENOSPC), Ok(libc::POLLERR), Ok(1))
                ),
                "refusals under fail-nth: write {write:?}, poll {poll:?}, epoll {epoll:?}"
            );
            ensure!(
                !allocated,
                "a refused write, poll or epoll_wait at max_channels allocated slab memory"
            );
        }
        drop(file);
        let (slab_after, _) = slab_kib_settled(slab_before.0)?;
        println!(
            "  refusals at max_channels: {refused} writes, {POLLS} polls, {POLLS} epoll_waits; Slab {} -> {slab_after} KiB",
            slab_before.0
        );
        ensure!(
            slab_after <= slab_before.0 + SLAB_TOLERANCE_KIB,
            "Slab grew from {} to {slab_after} KiB over {WRITES} refused writes and {} refused polls: a refused call left memory behind ({})",
            slab_before.0,
            2 * POLLS,
            slab_growth(&caches_before, &slabinfo())
        );
        let now = stats(minor)?;
        ensure!(
            now[channels] == 1,
            "the slot holds {} channels after the refusals, expected 1",
            now[channels]
        );
        expect_message(
            &open_bound(&path, 1)?,
            b"the one channel",
            "the one channel",
        )
    })();
    unload_module()?;
    load_module(&[])?;
    result
}

/// A level-triggered epoll instance watching `file` for `EPOLLIN | EPOLLOUT`.
fn level_triggered_epoll(file: &Slot) -> Result<Epoll, String> {
    let epoll = Epoll::new()?;
    epoll.ctl(
        libc::EPOLL_CTL_ADD,
        raw_fd(file),
        (libc::EPOLLIN | libc::EPOLLOUT) as u32,
    )?;
    Ok(epoll)
}

/// Waits `waits` times on `epoll` (each at most 10 s); returns in how many waits its one file
/// was reported with exactly `EPOLLERR`. Allocates nothing in user space.
fn waits_reporting_error(epoll: &Epoll, waits: u32) -> Result<u32, String> {
    let mut reported = 0;
    for _ in 0..waits {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }];
        let n = epoll.wait_into(&mut ready, 10_000)?;
        if n == 1 && ready[0].events == libc::EPOLLERR as u32 {
            reported += 1;
        }
    }
    Ok(reported)
}

/// What one racing write did: its result (or errno) and when it ran.
struct RacedWrite {
    result: Result<usize, i32>,
    start: Instant,
    end: Instant,
}

/// A thread pinned to CPU `cpu` that writes `msg` on each file it is given, released
/// together with the other racer by a spin barrier on `arrived` (the two racers spin on the
/// guest's two CPUs, so the two writes start within microseconds when both vCPUs run), and
/// hands the file back with the outcome.
fn racer(
    cpu: usize,
    msg: &'static [u8],
    files: mpsc::Receiver<Slot>,
    arrived: Arc<AtomicUsize>,
    done: mpsc::Sender<(Slot, RacedWrite)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        // Without the pinning (one CPU), the rounds still run, only with fewer overlapping
        // writes.
        pin_to_cpu(cpu);
        let mut round = 0;
        while let Ok(file) = files.recv() {
            round += 1;
            arrived.fetch_add(1, Ordering::SeqCst);
            // The other racer gets its file within the same round; give up waiting for it
            // after a while (the round then simply does not race).
            let give_up = Instant::now() + Duration::from_secs(1);
            while arrived.load(Ordering::SeqCst) < 2 * round && Instant::now() < give_up {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            let result = file.send(msg).map_err(|e| e.errno());
            let end = Instant::now();
            if done
                .send((file, RacedWrite { result, start, end }))
                .is_err()
            {
                return;
            }
        }
    })
}

/// Two files write the same new channel when the slot has exactly one place left under
/// `max_channels` (2, with one channel written): both writes succeed (the loser of the
/// creation overwrites) and the channel reads back one of the two messages; the limit
/// still holds afterwards (a third channel: `ENOSPC` on write, `POLLERR` on poll). 4096
/// rounds, each on a fresh slot (every minor, in 16 loads of the module: about 5 ms a
/// round); the number of rounds whose two writes overlapped in time (which the race needs)
/// is printed. A module that checks the limit again before looking for the channel the
/// winner created gives the loser of an overlapping round `ENOSPC`, in a few of the rounds
/// that overlap: 4096 rounds make a miss unlikely.
///
/// On the debug kernel 4 loads (1024 rounds): KASAN and lockdep make a round about ten times
/// slower there, and the other kernels' runs carry the race's coverage.
pub fn max_channels_last_place_race() -> TestResult {
    let loads: usize = if debug_kernel() { 4 } else { 16 };
    const MINORS: u32 = 256;
    let (filler, raced, extra_channel) = (1, 2, 3);
    const A: &[u8] = b"written by file A";
    const B: &[u8] = b"written by file B, a longer message";
    let arrived = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    let racers = [
        racer(0, A, a_rx, arrived.clone(), done_tx.clone()),
        racer(1, B, b_rx, arrived, done_tx),
    ];
    let (mut rounds, mut overlapped) = (0usize, 0usize);
    let mut failures = Vec::new();
    let mut poll_failures = Vec::new();
    let mut result = Ok(());
    for _ in 0..loads {
        unload_module()?;
        load_module(&["max_channels=2"])?;
        result = (|| -> TestResult {
            for minor in 0..MINORS {
                send_all(&open_minor_bound(minor, filler)?, b"filler", "fill")?;
                a_tx.send(open_minor_bound(minor, raced)?).ctx("racer A")?;
                b_tx.send(open_minor_bound(minor, raced)?).ctx("racer B")?;
                let mut writes = Vec::new();
                for _ in 0..2 {
                    let (file, write) = done_rx
                        .recv_timeout(scaled(TIMEOUT))
                        .ctx("a racing write")?;
                    drop(file);
                    writes.push(write);
                }
                rounds += 1;
                let (x, y) = (&writes[0], &writes[1]);
                let overlap = x.start < y.end && y.start < x.end;
                overlapped += usize::from(overlap);
                let bad: Vec<String> = writes
                    .iter()
                    .filter_map(|w| w.result.err().map(errno_name))
                    .collect();
                if !bad.is_empty() {
                    failures.push(format!(
                        "minor {minor}{}: {}",
                        if overlap { " (overlapping)" } else { "" },
                        bad.join(", ")
                    ));
                }
                let got = open_minor_bound(minor, raced)?
                    .receive_message()
                    .ctx(&format!("minor {minor}: read the raced channel"))?;
                ensure!(
                    got == A || got == B,
                    "minor {minor}: the raced channel holds {}",
                    show(&got)
                );
                let extra = open_minor_bound(minor, extra_channel)?;
                expect_errno(
                    extra.send(b"third"),
                    ENOSPC,
                    &format!("minor {minor}: a third channel"),
                )?;
                let events = poll_fd(raw_fd(&extra), 0)?;
                if events != libc::POLLERR {
                    poll_failures.push(format!("minor {minor}: {events:#x}"));
                }
                expect_errno(
                    extra.receive_message(),
                    EAGAIN,
                    &format!("minor {minor}: read a third channel"),
                )?;
            }
            Ok(())
        })();
        if result.is_err() {
            break;
        }
    }
    drop((a_tx, b_tx));
    for r in racers {
        let _ = r.join();
    }
    unload_module()?;
    load_module(&[])?;
    result?;
    println!("  last-place race: the two writes overlapped in {overlapped} of {rounds} rounds");
    ensure!(
        failures.is_empty(),
        "a write to the last place failed in {} of {rounds} rounds ({overlapped} \
         overlapping): {}",
        failures.len(),
        failures[..failures.len().min(5)].join("; ")
    );
    ensure!(
        poll_failures.is_empty(),
        "a poll of a new channel on a full slot did not report POLLERR in {} of {rounds} rounds: \
         {}",
        poll_failures.len(),
        poll_failures[..poll_failures.len().min(5)].join("; ")
    );
    Ok(())
}
