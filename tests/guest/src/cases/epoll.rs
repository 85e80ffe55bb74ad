// SPDX-License-Identifier: GPL-2.0

//! epoll on slot files: `EPOLLEXCLUSIVE` waiters wake only for their own channel (a wait
//! queue per channel), and level- and edge-triggered registrations report a file as `poll`
//! says (the harness is `crate::polling`).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::polling::{spawn_waiters, stop_waiters, wait_started, Epoll, EventFd, ExclusiveWaiter};
use crate::util::{
    expect_message, fresh_channel, open, open_bound, raw_fd, scaled, send_all, show, slot_path,
    Context, TestResult,
};

/// 200 `EPOLLEXCLUSIVE` waiters, one per channel of one slot, each in its own thread on its
/// own epoll instance, all registered before any message: a write to each channel in turn
/// (the last registered first) wakes that channel's waiter, which reads the message within
/// 1 s (scaled) of the write. With a wait queue per channel the exclusive wake-up can only
/// go to a waiter of the written channel; in a module with queues shared by channels (64
/// hashed queues per slot) it goes to the first exclusive waiter of the queue, maybe another
/// channel's, which finds nothing and sleeps on, while the written channel's waiter never
/// hears of its message (most of the 200 never read theirs).
pub fn epoll_exclusive_200_channels() -> TestResult {
    const WAITERS: usize = 200;
    let path = slot_path(1)?;
    let stop = EventFd::new()?;
    let mut channels = Vec::new();
    let mut waiters = Vec::new();
    for _ in 0..WAITERS {
        let ch = fresh_channel();
        waiters.push(ExclusiveWaiter::new(open_bound(&path, ch)?, &stop)?);
        channels.push(ch);
    }
    // Every write may wait its full second.
    let limit = scaled(Duration::from_secs(WAITERS as u64 + 60));
    let (threads, rx, started, result) = spawn_waiters(waiters, &stop, limit);
    let mut woke_late = 0;
    let result = result.and_then(|()| {
        wait_started(&started, WAITERS, scaled(Duration::from_secs(30)))?;
        let writer = open(&path)?;
        let mut reported = [false; WAITERS];
        let mut missed = Vec::new();
        let mut worst = Duration::ZERO;
        for i in (0..WAITERS).rev() {
            writer.set_channel(channels[i]).ctx("bind the writer")?;
            let sent = Instant::now();
            send_all(&writer, format!("to waiter {i}").as_bytes(), "write")?;
            let deadline = sent + scaled(Duration::from_secs(1));
            loop {
                let (j, got) =
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(report) => report,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            missed.push(i);
                            break;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            return Err("every waiter thread ended".to_string())
                        }
                    };
                ensure!(
                    got == format!("to waiter {j}").as_bytes() && !reported[j],
                    "waiter {j} read {} (read before: {})",
                    show(&got),
                    reported[j]
                );
                reported[j] = true;
                if j == i {
                    worst = worst.max(sent.elapsed());
                    break;
                }
                // Otherwise a waiter that missed its deadline, woken late.
                woke_late += 1;
            }
        }
        ensure!(
            missed.is_empty(),
            "{} of {WAITERS} EPOLLEXCLUSIVE waiters woke within {:?} of their channel's \
             write; not woken: waiters {:?}{}",
            WAITERS - missed.len(),
            scaled(Duration::from_secs(1)),
            &missed[..missed.len().min(10)],
            if missed.len() > 10 { " ..." } else { "" }
        );
        println!("  {WAITERS} exclusive waiters on their own channels: all woke, worst {worst:?}");
        Ok(())
    });
    let reads = stop_waiters(&stop, threads);
    // Waiters that woke only after their deadline (or after the end) are reported above.
    let late = woke_late + rx.try_iter().count();
    result.map_err(|e| format!("{e}; {late} woke later"))?;
    let reads = reads?;
    ensure!(
        reads.iter().all(|&n| n == 1),
        "a waiter read more than once: {:?}",
        reads
            .iter()
            .enumerate()
            .filter(|(_, &n)| n != 1)
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// The wait queue channel `id` shares in a module with 64 wait queues per slot (Fibonacci hash
/// of the id) instead of one per channel: the decoys of
/// [`epoll_exclusive_four_waiters_one_channel`] are chosen to share it.
fn shared_queue(id: u32) -> u32 {
    id.wrapping_mul(0x9e37_79b9) >> (u32::BITS - 6)
}

/// Four `EPOLLEXCLUSIVE` waiters on one channel, each with its own file, thread and epoll
/// instance: each of 100 writes wakes at least one of them, which reads that message within
/// 2 s (scaled), before the next write; so every message is read. Four exclusive waiters on
/// four other channels of the slot, registered first, never read anything (their channels
/// are never written). They are channels whose waiters share the written channel's queue in
/// a module with queues shared by hashed ids ([`shared_queue`]), where the exclusive wake-up
/// goes to the first of them (asleep, so it counts as the one exclusive wake-up) and none of
/// the four hears of the message.
pub fn epoll_exclusive_four_waiters_one_channel() -> TestResult {
    const DECOYS: usize = 4;
    const WAITERS: usize = 4;
    const WRITES: usize = 100;
    let path = slot_path(2)?;
    let ch = fresh_channel();
    let mut decoy_channels = Vec::new();
    for _ in 0..4096 {
        let other = fresh_channel();
        if shared_queue(other) == shared_queue(ch) {
            decoy_channels.push(other);
            if decoy_channels.len() == DECOYS {
                break;
            }
        }
    }
    ensure!(
        decoy_channels.len() == DECOYS,
        "found only {} decoy channels",
        decoy_channels.len()
    );
    let stop = EventFd::new()?;
    let limit = scaled(Duration::from_secs(60));
    let mut waiters = Vec::new();
    for &id in decoy_channels.iter().chain([ch; WAITERS].iter()) {
        waiters.push(ExclusiveWaiter::new(open_bound(&path, id)?, &stop)?);
    }
    let (threads, rx, started, result) = spawn_waiters(waiters, &stop, limit);
    let result = result.and_then(|()| {
        wait_started(&started, DECOYS + WAITERS, scaled(Duration::from_secs(30)))?;
        let writer = open_bound(&path, ch)?;
        let mut first_reads = [0usize; WAITERS];
        for i in 0..WRITES {
            let msg = format!("message {i}");
            send_all(&writer, msg.as_bytes(), "write")?;
            let deadline = Instant::now() + scaled(Duration::from_secs(2));
            loop {
                let (j, got) = rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .map_err(|_| {
                        format!(
                            "write {i}: none of the {WAITERS} exclusive waiters read it within \
                             {:?}",
                            scaled(Duration::from_secs(2))
                        )
                    })?;
                ensure!(
                    j >= DECOYS,
                    "a waiter of another channel read {}",
                    show(&got)
                );
                // Reads of earlier messages by the waiters not woken first are fine.
                if got == msg.as_bytes() {
                    first_reads[j - DECOYS] += 1;
                    break;
                }
            }
        }
        println!("  {WRITES} writes: first read by waiter 0..3: {first_reads:?}");
        Ok(())
    });
    let reads = stop_waiters(&stop, threads);
    result?;
    let reads = reads?;
    ensure!(
        reads[..DECOYS].iter().all(|&n| n == 0),
        "waiters of other channels read: {:?}",
        &reads[..DECOYS]
    );
    Ok(())
}

/// epoll, level- and edge-triggered: a level-triggered file is reported until it reads the
/// message, an edge-triggered one once per write; a blocked `epoll_wait` wakes on a write.
pub fn epoll_level_and_edge_triggered() -> TestResult {
    let path = slot_path(2)?;
    let ch = fresh_channel();
    let writer = open_bound(&path, ch)?;
    let level = open_bound(&path, ch)?;
    let edge = open_bound(&path, ch)?;
    let (lfd, efd) = (raw_fd(&level), raw_fd(&edge));
    let ep = Epoll::new()?;
    ep.ctl(libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32)?;
    ep.ctl(
        libc::EPOLL_CTL_ADD,
        efd,
        (libc::EPOLLIN | libc::EPOLLET) as u32,
    )?;
    ensure!(ep.wait(0)?.is_empty(), "ready before any write");

    // A blocked epoll_wait wakes on a write.
    let epfd = ep.0;
    let blocked = thread::spawn(move || {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `events` has room for 4 events.
        unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 4, 30_000) }
    });
    thread::sleep(Duration::from_millis(200));
    send_all(&writer, b"one", "write")?;
    let n = blocked
        .join()
        .map_err(|_| "epoll thread panicked".to_string())?;
    ensure!(n >= 1, "blocked epoll_wait returned {n} after a write");

    let both = {
        let mut v = vec![lfd, efd];
        v.sort();
        v
    };
    // The edge was consumed by the blocked wait (or is reported now, once).
    let first = ep.wait(0)?;
    ensure!(
        first == both || first == vec![lfd],
        "after the write: ready {first:?}"
    );
    ensure!(
        ep.wait(0)? == vec![lfd],
        "level-triggered not reported again"
    );
    expect_message(&level, b"one", "level read")?;
    ensure!(
        ep.wait(0)?.is_empty(),
        "level-triggered ready after reading"
    );
    send_all(&writer, b"two", "write two")?;
    ensure!(
        ep.wait(1000)? == both,
        "both not ready after the second write"
    );
    ensure!(
        ep.wait(0)? == vec![lfd],
        "edge-triggered reported twice for one write"
    );
    expect_message(&edge, b"two", "edge read")?;
    expect_message(&level, b"two", "level read two")?;
    ensure!(ep.wait(0)?.is_empty(), "ready after both read");
    Ok(())
}
