// SPDX-License-Identifier: GPL-2.0

//! Concurrent writers and readers (processes and threads) with self-checking messages: no
//! operation may fail, no read may return a torn message, and per writer the sequence
//! numbers a reader sees never go backwards.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libc::EAGAIN;

use crate::traffic::{self, ReadStats, STOP_SEQ, STOP_WRITER};
use crate::util::{
    child_command, describe, expect_message, fresh_channel, open, open_bound, open_minor_bound,
    scaled, send_all, show, slot_path, spawn, Context, Running, TestResult, MAX_MESSAGE_LEN,
};

/// Messages per writer.
const WRITES: u32 = 10_000;
/// Writer and reader processes per scenario.
const PROCS: usize = 4;

/// `PROCS` writer and `PROCS` reader processes on one channel.
pub fn concurrent_processes_one_channel() -> TestResult {
    processes(0, &[fresh_channel()])
}

/// `PROCS` writer and `PROCS` reader processes spread over three channels, re-binding
/// their descriptor before every operation.
pub fn concurrent_processes_many_channels() -> TestResult {
    processes(1, &[fresh_channel(), fresh_channel(), fresh_channel()])
}

fn processes(minor: u32, channels: &[u32]) -> TestResult {
    let path = slot_path(minor)?;
    let path_str = path.to_string_lossy().into_owned();
    let list = channels
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let control = open(&path)?;
    traffic::store_on_all(&control, minor, 0, 0, channels)?;
    // A hang detector, stretched like the test's own timeout on the debug kernel (KASAN and
    // lockdep under TCG, on a possibly busy host).
    let deadline = Instant::now() + scaled(Duration::from_secs(120));

    // Readers first; each announces itself on its own channel before it starts reading.
    // If one fails to start, those already running are still released and collected below.
    let mut readers = Vec::new();
    let mut ready = Vec::new();
    let mut started = Ok(());
    for r in 0..PROCS {
        let ch = fresh_channel();
        let cmd = child_command("reader", &[path_str.clone(), ch.to_string(), list.clone()]);
        match spawn(cmd, &format!("reader {r}")) {
            Ok(p) => {
                readers.push(p);
                ready.push(ch);
            }
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let result = started
        .and_then(|()| wait_ready(&path, &ready, deadline))
        .and_then(|()| {
            let mut writers = Vec::new();
            for w in 1..=PROCS {
                let cmd = child_command(
                    "writer",
                    &[
                        path_str.clone(),
                        w.to_string(),
                        WRITES.to_string(),
                        list.clone(),
                    ],
                );
                writers.push(spawn(cmd, &format!("writer {w}"))?);
            }
            let errors = collect(writers, deadline).1;
            ensure!(errors.is_empty(), "{}", errors.join("; "));
            Ok(())
        });
    // Always release the readers, even if something failed.
    let stop = traffic::store_on_all(&control, minor, STOP_WRITER, STOP_SEQ, channels);
    let (outputs, errors) = collect(readers, deadline);
    result?;
    stop?;
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    let mut total = ReadStats::default();
    for out in outputs {
        let text = String::from_utf8_lossy(&out);
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(reads)), Some(Ok(new))) => {
                total.reads += reads;
                total.new_messages += new;
            }
            _ => return Err(format!("reader printed {text:?}")),
        }
    }
    ensure!(
        total.new_messages > 0,
        "readers never saw a writer's message ({total:?})"
    );
    eprintln!(
        "  ({PROCS} readers: {} reads, {} new messages seen)",
        total.reads, total.new_messages
    );
    for &ch in channels {
        let slot = open_bound(&path, ch)?;
        let last = slot.receive_message().ctx("final read")?;
        ensure!(
            traffic::verify(&last, minor, ch)? == Some((STOP_WRITER, STOP_SEQ)),
            "final message on channel {ch} is not the stop marker"
        );
    }
    Ok(())
}

/// Polls the readers' ready channels until each holds a message.
fn wait_ready(path: &Path, channels: &[u32], deadline: Instant) -> TestResult {
    for &ch in channels {
        let slot = open_bound(path, ch)?;
        loop {
            match slot.receive_message() {
                Ok(_) => break,
                Err(e) if e.errno() == EAGAIN && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("reader never became ready: {e}")),
            }
        }
    }
    Ok(())
}

/// Waits for every process; returns the stdout of those that succeeded and a description
/// of each failure.
fn collect(procs: Vec<Running>, deadline: Instant) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for p in procs {
        match p.wait(deadline) {
            Ok(out) if out.status.success() => outputs.push(out.stdout),
            Ok(out) => errors.push(describe(&out)),
            Err(e) => errors.push(e),
        }
    }
    (outputs, errors)
}

/// Threads in one process: two writers and two readers with their own descriptors on one
/// channel, plus two writers and two readers all sharing a single descriptor on another.
pub fn concurrent_threads() -> TestResult {
    const MINOR: u32 = 2;
    let (own, shared_ch) = (fresh_channel(), fresh_channel());
    let path = slot_path(MINOR)?;
    let control = open(&path)?;
    traffic::store_on_all(&control, MINOR, 0, 0, &[own, shared_ch])?;
    let shared = open_minor_bound(MINOR, shared_ch)?;
    let limit = scaled(Duration::from_secs(90));

    let (writes, reads) = std::thread::scope(|s| {
        let mut readers = Vec::new();
        for _ in 0..2 {
            let path = &path;
            readers.push(s.spawn(move || {
                let slot = open_bound(path, own)?;
                traffic::reader_loop(&slot, MINOR, &[own], limit)
            }));
            let shared = &shared;
            readers.push(s.spawn(move || traffic::reader_loop(shared, MINOR, &[shared_ch], limit)));
        }
        let mut writers = Vec::new();
        for w in 0..2 {
            let path = &path;
            writers.push(s.spawn(move || {
                let slot = open_bound(path, own)?;
                traffic::writer_loop(&slot, MINOR, 11 + w, WRITES, &[own])
            }));
            let shared = &shared;
            writers.push(
                s.spawn(move || traffic::writer_loop(shared, MINOR, 13 + w, WRITES, &[shared_ch])),
            );
        }
        let writes: Vec<Result<(), String>> = writers.into_iter().map(join).collect();
        let stop = traffic::store_on_all(&control, MINOR, STOP_WRITER, STOP_SEQ, &[own, shared_ch]);
        let reads: Vec<Result<ReadStats, String>> = readers.into_iter().map(join).collect();
        (writes.into_iter().chain([stop]).collect::<Vec<_>>(), reads)
    });
    let mut errors: Vec<String> = writes.into_iter().filter_map(Result::err).collect();
    let mut new_messages = 0;
    for r in reads {
        match r {
            Ok(stats) => new_messages += stats.new_messages,
            Err(e) => errors.push(e),
        }
    }
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    ensure!(new_messages > 0, "readers never saw a writer's message");
    eprintln!("  (reader threads saw {new_messages} new messages)");
    Ok(())
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T, String>>) -> Result<T, String> {
    h.join()
        .unwrap_or_else(|_| Err("thread panicked".to_string()))
}

/// One descriptor shared by reader threads while the main thread keeps re-binding it between
/// two channels: every read returns one of the two messages, and after each round the
/// descriptor reads the channel it was bound to last (a channel remembered by a racing
/// read must not outlive the binding it was looked up for).
pub fn shared_fd_rebinding() -> TestResult {
    const ROUNDS: usize = 200;
    const FLIPS: usize = 50;
    let (a, b) = (fresh_channel(), fresh_channel());
    let (msg_a, msg_b) = (b"channel A's message".as_slice(), b"channel B".as_slice());
    let path = slot_path(3)?;
    send_all(&open_bound(&path, a)?, msg_a, "write A")?;
    send_all(&open_bound(&path, b)?, msg_b, "write B")?;
    let shared = open_bound(&path, a)?;
    let mut reads = 0u64;
    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        let counts = std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (shared, stop) = (&shared, &stop);
                    s.spawn(move || {
                        let mut buf = [0u8; MAX_MESSAGE_LEN];
                        let mut n_reads = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let n = shared.receive(&mut buf).ctx("read")?;
                            ensure!(
                                &buf[..n] == msg_a || &buf[..n] == msg_b,
                                "read {} while flipping between A and B",
                                show(&buf[..n])
                            );
                            n_reads += 1;
                        }
                        Ok(n_reads)
                    })
                })
                .collect();
            let mut flips = Ok(());
            for i in 0..FLIPS {
                let channel = if i % 2 == 0 { b } else { a };
                if let Err(e) = shared.set_channel(channel).ctx("re-bind") {
                    flips = Err(e);
                    break;
                }
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
            let counts: Vec<Result<u64, String>> = readers.into_iter().map(join).collect();
            (flips, counts)
        });
        counts.0?;
        for count in counts.1 {
            reads += count?;
        }
        // FLIPS is even: the last binding is A.
        expect_message(
            &shared,
            msg_a,
            &format!("round {round}: read after the last re-bind"),
        )?;
        shared.set_channel(b).ctx("bind B")?;
        expect_message(
            &shared,
            msg_b,
            &format!("round {round}: read after binding B"),
        )?;
        shared.set_channel(a).ctx("bind A")?;
    }
    eprintln!("  ({ROUNDS} rounds of {FLIPS} re-binds, {reads} racing reads)");
    Ok(())
}
