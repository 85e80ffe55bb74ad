// SPDX-License-Identifier: GPL-2.0

//! `poll`/`select`/`epoll` on slot files: a bound file is readable (`POLLIN | POLLRDNORM`)
//! while its channel holds a message it has not read since it was bound, always writable
//! (`POLLOUT | POLLWRNORM`); an unbound file reports `POLLERR`. A write wakes the pollers of
//! its channel only; a read makes the file not readable until the next write. The
//! `EPOLLEXCLUSIVE` and epoll trigger tests are in `epoll.rs`, the harness of both in
//! `crate::polling`.

use std::os::fd::RawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use message_slot::{Slot, Statistic};

use super::nodes::stats;
use crate::module_loading::{try_unload_module, MODULE_NAME};
use crate::polling::{
    expect_events, millis, poll_fd, thread_sleeps, wait_readable, wait_started, Epoll, EventFd,
    READABLE, WRITABLE,
};
use crate::util::{
    expect_errno, expect_message, fresh_channel, last_errno, open, open_bound, raw_fd, scaled,
    send_all, slot_path, Context, TestResult, MAX_MESSAGE_LEN,
};

/// An unbound file reports `POLLERR` (and neither readable nor writable); binding it makes it
/// writable.
pub fn poll_unbound_pollerr() -> TestResult {
    let path = slot_path(0)?;
    let slot = open(&path)?;
    expect_events(&slot, libc::POLLERR, "unbound file")?;
    slot.set_channel(fresh_channel()).ctx("bind")?;
    expect_events(&slot, WRITABLE, "bound to an empty channel")
}

/// Readable exactly while the file has a message it has not read: a read clears it, the next
/// write (by any file, this one included) sets it again, and a bind starts afresh.
pub fn poll_readable_until_read() -> TestResult {
    let path = slot_path(0)?;
    let ch = fresh_channel();
    let reader = open_bound(&path, ch)?;
    let writer = open_bound(&path, ch)?;
    expect_events(&reader, WRITABLE, "empty channel")?;
    send_all(&writer, b"first", "write")?;
    expect_events(&reader, READABLE | WRITABLE, "after a write")?;
    expect_events(&writer, READABLE | WRITABLE, "the writer's own file")?;
    expect_message(&reader, b"first", "read after poll")?;
    expect_events(&reader, WRITABLE, "after the read")?;
    expect_message(&reader, b"first", "second read")?;
    expect_events(&reader, WRITABLE, "after the second read")?;
    send_all(&writer, b"first", "the same bytes again")?;
    expect_events(&reader, READABLE | WRITABLE, "after an identical write")?;
    expect_message(&reader, b"first", "read")?;
    send_all(&reader, b"own", "write on the reader")?;
    expect_events(&reader, READABLE | WRITABLE, "after its own write")?;
    expect_message(&reader, b"own", "read own")?;
    expect_events(&reader, WRITABLE, "after reading its own")?;

    // A bind forgets what was read, also when re-binding to the same channel.
    reader.set_channel(ch).ctx("re-bind")?;
    expect_events(
        &reader,
        READABLE | WRITABLE,
        "after re-binding the same channel",
    )?;
    let other = fresh_channel();
    reader.set_channel(other).ctx("bind other")?;
    expect_events(&reader, WRITABLE, "bound to an empty channel")?;
    send_all(&open_bound(&path, other)?, b"other", "write other")?;
    expect_events(&reader, READABLE | WRITABLE, "other channel written")?;
    expect_message(&reader, b"other", "read other")?;
    reader.set_channel(ch).ctx("bind back")?;
    expect_events(&reader, READABLE | WRITABLE, "back on the first channel")?;

    // A failed read (buffer too small) does not count as reading.
    let mut small = [0u8; 1];
    ensure!(
        reader.receive(&mut small).is_err(),
        "1-byte read of 3 bytes succeeded"
    );
    expect_events(&reader, READABLE | WRITABLE, "after a failed read")?;
    // A failed write leaves the file's state alone.
    ensure!(
        writer.send(&[0u8; MAX_MESSAGE_LEN + 1]).is_err(),
        "129-byte write succeeded"
    );
    expect_message(&reader, b"own", "read")?;
    expect_events(&reader, WRITABLE, "after a failed write")?;
    // The library waits the same way.
    ensure!(
        !reader
            .wait_for_message(Some(Duration::from_millis(50)))
            .ctx("wait_for_message")?,
        "wait_for_message found a message already read"
    );
    send_all(&writer, b"next", "write")?;
    ensure!(
        reader
            .wait_for_message(Some(Duration::ZERO))
            .ctx("wait_for_message")?,
        "wait_for_message missed a new message"
    );
    expect_message(&reader, b"next", "read after wait_for_message")
}

/// Wake-up latency under load: a poller blocked in `poll` wakes for each of 50 writes while
/// two processes spin on the CPUs; every wake-up comes within a second (scaled) and carries
/// the new message.
pub fn poll_wakeup_latency_under_load() -> TestResult {
    let path = slot_path(1)?;
    let ch = fresh_channel();
    let writer = open_bound(&path, ch)?;
    let poller = open_bound(&path, ch)?;
    let mut hogs = Vec::new();
    for _ in 0..2 {
        hogs.push(
            Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .ctx("spawn a CPU hog")?,
        );
    }
    let result = (|| -> TestResult {
        let mut latencies = Vec::new();
        for i in 0..50u32 {
            let (tx, rx) = mpsc::channel();
            let fd = raw_fd(&poller);
            let waiter = thread::spawn(move || {
                let woke = wait_readable(fd, scaled(Duration::from_secs(30)));
                let _ = tx.send(Instant::now());
                woke
            });
            // Let the poller block (whether it did or not, the write must reach it).
            thread::sleep(Duration::from_millis(20));
            let sent = Instant::now();
            let msg = format!("latency {i}");
            send_all(&writer, msg.as_bytes(), "write")?;
            let woke = waiter.join().map_err(|_| "poller panicked".to_string())??;
            ensure!(woke, "write {i}: the poller timed out");
            let at = rx.recv().ctx("poller time")?;
            latencies.push(at.saturating_duration_since(sent));
            expect_message(&poller, msg.as_bytes(), "read after the wake-up")?;
        }
        latencies.sort();
        let worst = latencies[latencies.len() - 1];
        println!(
            "  wake-up latency under load: median {:?}, worst {:?}",
            latencies[latencies.len() / 2],
            worst
        );
        ensure!(
            worst < scaled(Duration::from_secs(1)),
            "a wake-up took {worst:?}"
        );
        Ok(())
    })();
    for mut hog in hogs {
        let _ = hog.kill();
        let _ = hog.wait();
    }
    result
}

/// No lost wake-up: 3000 times, a writer publishes the next message as soon as the poller
/// has read the previous one, racing the poller's next `poll`; the poller must never wait
/// out its 10-second timeout.
pub fn poll_no_lost_wakeup() -> TestResult {
    let path = slot_path(1)?;
    let ch = fresh_channel();
    let writer = open_bound(&path, ch)?;
    let poller = open_bound(&path, ch)?;
    const ROUNDS: u32 = 3000;
    let (ack_tx, ack_rx) = mpsc::channel::<u32>();
    let fd = raw_fd(&poller);
    let reader = thread::spawn(move || -> TestResult {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        for i in 0..ROUNDS {
            ensure!(
                wait_readable(fd, scaled(Duration::from_secs(10)))?,
                "round {i}: no wake-up within 10 s (lost wake-up)"
            );
            // SAFETY: `buf` is valid for `MAX_MESSAGE_LEN` bytes.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), MAX_MESSAGE_LEN) };
            ensure!(n == 4, "round {i}: read returned {n}");
            let got = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            ensure!(got == i, "round {i}: read message {got}");
            ack_tx.send(i).ctx("ack")?;
        }
        Ok(())
    });
    let mut result = Ok(());
    for i in 0..ROUNDS {
        if let Err(e) = send_all(&writer, &i.to_le_bytes(), "write") {
            result = Err(e);
            break;
        }
        if ack_rx
            .recv_timeout(scaled(Duration::from_secs(20)))
            .is_err()
        {
            break;
        }
    }
    let read = reader.join().map_err(|_| "poller panicked".to_string())?;
    drop(poller);
    result.and(read)
}

/// Many pollers: 6 threads poll one channel and 6 poll 6 other channels of the same slot; a
/// write to the first channel wakes exactly its 6 pollers (the others time out).
pub fn poll_many_pollers_right_ones_wake() -> TestResult {
    let path = slot_path(2)?;
    let hot = fresh_channel();
    let writer = open_bound(&path, hot)?;
    let mut files = Vec::new();
    for i in 0..12 {
        let ch = if i < 6 { hot } else { fresh_channel() };
        files.push((i < 6, open_bound(&path, ch)?));
    }
    let start = Arc::new(Barrier::new(files.len() + 1));
    let woken = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (is_hot, slot) in &files {
        let (fd, is_hot) = (raw_fd(slot), *is_hot);
        let (start, woken, wrong) = (start.clone(), woken.clone(), wrong.clone());
        threads.push(thread::spawn(move || -> TestResult {
            start.wait();
            // The hot pollers wait long; the others long enough to see a stray wake-up.
            let limit = if is_hot {
                scaled(Duration::from_secs(30))
            } else {
                Duration::from_secs(2)
            };
            let readable = wait_readable(fd, limit)?;
            if readable {
                woken.fetch_add(1, Ordering::Relaxed);
            }
            if readable != is_hot {
                wrong.store(true, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    start.wait();
    thread::sleep(Duration::from_millis(300));
    send_all(&writer, b"to the hot channel", "write")?;
    for t in threads {
        t.join().map_err(|_| "poller panicked".to_string())??;
    }
    ensure!(
        !wrong.load(Ordering::Relaxed),
        "a poller of another channel became readable, or a hot one did not ({} woke)",
        woken.load(Ordering::Relaxed)
    );
    ensure!(
        woken.load(Ordering::Relaxed) == 6,
        "not all 6 hot pollers woke"
    );
    for (is_hot, slot) in &files {
        let want = if *is_hot {
            READABLE | WRITABLE
        } else {
            WRITABLE
        };
        expect_events(slot, want, "after the write")?;
    }
    Ok(())
}

/// No herd: 100 pollers wait on 100 channels of a slot (50 in `poll`, 50 in `epoll_wait`)
/// while a writer cycles twice over 1,000 other channels of that slot. A wake-up that finds
/// nothing is invisible to the caller (the kernel polls again and sleeps on), so a poller
/// counts its wake-ups as its thread's voluntary context switches during the call beyond
/// the one sleep the call needs. No write is for their channels, so no poller wakes more
/// than twice and all of them together at most once each on average (zero expected on the
/// rig's kernels; on PREEMPT_RT a thread also switches when it blocks on a sleeping
/// spinlock, such as epoll's or a wait queue's, which stays within the bounds). A module with
/// 64 queues shared by every channel of the slot wakes the pollers of a write's queue, up to
/// 2,000 x 100 / 64 = 3,125 wake-ups, far above the bounds.
pub fn poll_no_herd() -> TestResult {
    const POLLERS: usize = 100;
    const CHANNELS: usize = 1000;
    const CYCLES: usize = 2;
    // At most once per poller on average, twice for any one.
    const BOUND: i64 = POLLERS as i64;
    const BOUND_ONE: i64 = 2;
    let path = slot_path(1)?;
    let stop = EventFd::new()?;
    let stop_fd = stop.0;
    let started = Arc::new(AtomicUsize::new(0));
    let limit = scaled(Duration::from_secs(60));
    let mut threads = Vec::new();
    let mut result = Ok(());
    for i in 0..POLLERS {
        let slot = open_bound(&path, fresh_channel())?;
        // Create the channel and its wait queue now (memory allocation may sleep).
        ensure!(
            poll_fd(raw_fd(&slot), 0)? == WRITABLE,
            "poller {i}: readable"
        );
        let ep = if i % 2 == 1 {
            let ep = Epoll::new()?;
            ep.ctl(libc::EPOLL_CTL_ADD, raw_fd(&slot), libc::EPOLLIN as u32)?;
            ep.ctl(libc::EPOLL_CTL_ADD, stop_fd, libc::EPOLLIN as u32)?;
            Some(ep)
        } else {
            None
        };
        let started = started.clone();
        let spawned =
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || -> Result<i64, String> {
                    let fd = raw_fd(&slot);
                    started.fetch_add(1, Ordering::SeqCst);
                    let before = thread_sleeps()?;
                    let slot_ready = if let Some(ep) = &ep {
                        let ready = ep.wait(millis(limit))?;
                        ensure!(
                            ready.contains(&stop_fd),
                            "epoll poller {i}: ready {ready:?} within {limit:?}, not the stop"
                        );
                        ready.contains(&fd)
                    } else {
                        let mut pfds = [fd, stop_fd].map(|fd| libc::pollfd {
                            fd,
                            events: libc::POLLIN,
                            revents: 0,
                        });
                        // SAFETY: `pfds` is two valid pollfds.
                        let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, millis(limit)) };
                        ensure!(n >= 0, "poll: errno {}", last_errno());
                        ensure!(
                            pfds[1].revents & libc::POLLIN != 0,
                            "poller {i}: poll returned {n} within {limit:?}, not the stop"
                        );
                        pfds[0].revents & libc::POLLIN != 0
                    };
                    let sleeps = thread_sleeps()? - before;
                    ensure!(!slot_ready, "poller {i}: its channel became readable");
                    ensure!(sleeps >= 1, "poller {i} never slept: started too late");
                    Ok(sleeps - 1)
                });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                result = Err(format!("spawn a poller: {e}"));
                break;
            }
        }
    }
    let result = result.and_then(|()| {
        wait_started(&started, POLLERS, scaled(Duration::from_secs(30)))?;
        let channels: Vec<u32> = (0..CHANNELS).map(|_| fresh_channel()).collect();
        let writer = open(&path)?;
        for cycle in 0..CYCLES {
            for &ch in &channels {
                writer.set_channel(ch).ctx("bind the writer")?;
                send_all(&writer, format!("cycle {cycle}").as_bytes(), "write")?;
            }
        }
        Ok(())
    });
    stop.signal()?;
    let mut wakeups = Vec::new();
    for t in threads {
        wakeups.push(t.join().map_err(|_| "a poller panicked".to_string())??);
    }
    result?;
    let total: i64 = wakeups.iter().sum();
    let most = wakeups.iter().max().copied().unwrap_or(0);
    println!(
        "  {} writes over {CHANNELS} channels: {total} wake-ups of {POLLERS} pollers of other \
         channels (at most {most} for one)",
        CYCLES * CHANNELS
    );
    ensure!(
        total <= BOUND && most <= BOUND_ONE,
        "{POLLERS} pollers of other channels woke {total} times (at most {most} for one) \
         during {} writes; at most {BOUND} in all and {BOUND_ONE} for one expected",
        CYCLES * CHANNELS
    );
    Ok(())
}

/// A poll of a channel that never had a message: not readable, and a read still gives
/// `EWOULDBLOCK`; the poll creates the channel (without a message), so the slot's
/// `channels` statistic counts it (and `bytes` does not change). A write then wakes a
/// blocked poller and makes the file readable, counting bytes but no new channel.
pub fn poll_new_channel_counted() -> TestResult {
    let minor = 3;
    let path = slot_path(minor)?;
    let (channels, bytes) = (Statistic::Channels, Statistic::Bytes);
    let before = stats(minor)?;
    let ch = fresh_channel();
    let poller = open_bound(&path, ch)?;
    expect_events(&poller, WRITABLE, "poll of a channel never written")?;
    expect_errno(
        poller.receive_message(),
        libc::EWOULDBLOCK,
        "read after the poll",
    )?;
    expect_events(&poller, WRITABLE, "poll again after the read")?;
    let polled = stats(minor)?;
    ensure!(
        polled[channels] == before[channels] + 1 && polled[bytes] == before[bytes],
        "after polling a new channel: channels {} -> {}, bytes {} -> {} (expected +1, +0)",
        before[channels],
        polled[channels],
        before[bytes],
        polled[bytes]
    );
    let fd = raw_fd(&poller);
    let waiter = thread::spawn(move || wait_readable(fd, scaled(Duration::from_secs(30))));
    thread::sleep(Duration::from_millis(200));
    let msg = b"after the poll";
    send_all(&open_bound(&path, ch)?, msg, "write")?;
    ensure!(
        waiter.join().map_err(|_| "poller panicked".to_string())??,
        "the blocked poller did not wake on the write"
    );
    expect_events(&poller, READABLE | WRITABLE, "after the write")?;
    expect_message(&poller, msg, "read after the write")?;
    let written = stats(minor)?;
    ensure!(
        written[channels] == polled[channels] && written[bytes] == polled[bytes] + msg.len() as u64,
        "after the write: channels {} -> {}, bytes {} -> {} (expected +0, +{})",
        polled[channels],
        written[channels],
        polled[bytes],
        written[bytes],
        msg.len()
    );
    Ok(())
}

/// Closing while polling: a file closed by another thread during `poll` stays alive until
/// the poll returns (woken by a write, it then reports the descriptor `POLLNVAL`, as Linux
/// does for any file); a file closed while registered with epoll leaves the
/// epoll set, and later writes report nothing for it.
pub fn poll_close_while_polling() -> TestResult {
    let path = slot_path(3)?;
    let ch = fresh_channel();
    let writer = open_bound(&path, ch)?;
    let polled = open_bound(&path, ch)?;
    let fd = slot_into_raw(polled);
    let waiter = thread::spawn(move || {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(scaled(Duration::from_secs(30)).as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        (n, pfd.revents)
    });
    thread::sleep(Duration::from_millis(200));
    // SAFETY: we own `fd`; the polling thread's `poll` holds its own file reference until it
    // returns.
    ensure!(
        unsafe { libc::close(fd) } == 0,
        "close: errno {}",
        last_errno()
    );
    thread::sleep(Duration::from_millis(100));
    send_all(&writer, b"after close", "write")?;
    let (n, revents) = waiter.join().map_err(|_| "poller panicked".to_string())?;
    // Woken by the write, `poll` looks the descriptor up again and finds it closed.
    ensure!(
        n == 1 && revents & (libc::POLLIN | libc::POLLNVAL) != 0,
        "the poll on the closed file returned {n}, revents {revents:#x}"
    );

    let ep = Epoll::new()?;
    let registered = open_bound(&path, ch)?;
    let rfd = slot_into_raw(registered);
    ep.ctl(libc::EPOLL_CTL_ADD, rfd, libc::EPOLLIN as u32)?;
    ensure!(ep.wait(0)? == vec![rfd], "registered file not ready");
    // SAFETY: we own `rfd`.
    ensure!(
        unsafe { libc::close(rfd) } == 0,
        "close: errno {}",
        last_errno()
    );
    ensure!(ep.wait(0)?.is_empty(), "closed file still in the epoll set");
    send_all(&writer, b"after the epoll close", "write")?;
    ensure!(
        ep.wait(200)?.is_empty(),
        "closed file reported after a write"
    );
    Ok(())
}

/// Takes the descriptor out of `slot` (the caller closes it).
fn slot_into_raw(slot: Slot) -> RawFd {
    use std::os::fd::{IntoRawFd, OwnedFd};
    OwnedFd::from(slot).into_raw_fd()
}

/// `rmmod` is refused while a thread is blocked polling a slot file, and the poller still
/// wakes on the next write.
pub fn rmmod_refused_while_polling() -> TestResult {
    let path = slot_path(0)?;
    let ch = fresh_channel();
    let writer = open_bound(&path, ch)?;
    let polled = open_bound(&path, ch)?;
    let fd = slot_into_raw(polled);
    let waiter = thread::spawn(move || wait_readable(fd, scaled(Duration::from_secs(30))));
    thread::sleep(Duration::from_millis(200));
    let unloaded = try_unload_module();
    let write = send_all(&writer, b"wake", "write after rmmod");
    let woke = waiter.join().map_err(|_| "poller panicked".to_string())?;
    // SAFETY: we own `fd`.
    unsafe { libc::close(fd) };
    ensure!(
        unloaded.is_err(),
        "rmmod {MODULE_NAME} succeeded while a file was being polled"
    );
    write?;
    ensure!(woke?, "the poller did not wake after the refused rmmod");
    Ok(())
}
