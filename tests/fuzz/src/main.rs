// SPDX-License-Identifier: GPL-2.0

//! Model-based random-operation fuzzer for the message-slot device, run inside the guest.
//!
//! ```text
//! message-slot-fuzz [--ops N] [--seed S] [--procs P] [--threads T] [--timeout SECONDS]
//! ```
//!
//! `P` forked processes × `T` threads each perform about `N / (P·T)` random operations on
//! their own descriptors: open (minors 0..=3 and two extra nodes, read-only, write-only or
//! read-write), close, `ioctl` (pool ids that collide between workers, 0, ids above
//! `u32::MAX`, wrong commands), write and read (sizes 0..=300; valid, NULL, unmapped,
//! `PROT_NONE`, straddling, read-only and kernel pointers), mapped reads (the descriptor's
//! channel mapped read-only, read with the record's sequence protocol, through mappings that
//! outlive a re-bind or `close` of their descriptor) and fork (the child performs a few
//! operations and exits). Every result is checked against the model in [`worker`]; every
//! message read is verified whole (the shared codec,
//! [`message_slot_test_support::message_codec`]) and per reader, channel and writer the
//! sequence numbers never go backwards. The seed is printed first; a summary (operations per
//! kind, errno histogram, the first failures) follows and the last line is `fuzz: N ops, M failures`. Exits 1 on any failure.

mod rng;
mod shared;
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use message_slot_test_support::minors::MINORS_RIG;
use message_slot_test_support::sys::{char_node, errno_name};
use shared::{Shared, KINDS, MINORS, OUTCOMES, POOL};
use worker::{Config, Worker};

/// Default operation count: over 10^6 for the debug run, which takes minutes on the debug
/// kernel under TCG (docs/results.md has its rate) and seconds on the base kernel.
const DEFAULT_OPS: u64 = 1_200_000;

struct Args {
    ops: u64,
    seed: u64,
    procs: u32,
    threads: u32,
    timeout: u64,
}

fn usage(why: &str) -> ! {
    eprintln!("message-slot-fuzz: {why}");
    eprintln!(
        "usage: message-slot-fuzz [--ops N] [--seed S] [--procs P] [--threads T] [--timeout SECONDS]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut a = Args {
        ops: DEFAULT_OPS,
        seed: nanos ^ u64::from(std::process::id()).rotate_left(32),
        procs: 3,
        threads: 3,
        timeout: 1800,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("bad value {value:?} for {flag}")))
        };
        match flag.as_str() {
            "--ops" => a.ops = num(),
            "--seed" => a.seed = num(),
            "--procs" => a.procs = num().clamp(1, 64) as u32,
            "--threads" => a.threads = num().clamp(1, 64) as u32,
            "--timeout" => a.timeout = num(),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    a
}

/// Path of the node for `minor`: the rig's `/dev/slotN` for its minors, else a node created
/// here.
fn node(minor: u32) -> PathBuf {
    if MINORS_RIG.contains(&minor) {
        return PathBuf::from(format!("/dev/slot{minor}"));
    }
    let path = PathBuf::from(format!("/dev/slot_fuzz_{minor}"));
    if let Err(e) = char_node(&path, message_slot::MAJOR_NUM, minor) {
        eprintln!("fuzz: {e}");
        std::process::exit(1);
    }
    path
}

/// The channel pool: four ids unique to this run (above the guest suite's fresh ids), then
/// the extremes 1 and `u32::MAX` (used only on the fuzzer's own minors).
fn pool(nonce: u32) -> [u32; POOL] {
    let base = 0xE000_0000 + ((nonce % 0x0FFF_FF00) & !7);
    [base, base + 1, base + 2, base + 3, 1, u32::MAX]
}

fn run_process(cfg: &'static Config, proc: u32, threads: u32, ops: u64) -> i32 {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let share =
                ops / u64::from(threads) + u64::from(u64::from(t) < ops % u64::from(threads));
            std::thread::spawn(move || Worker::new(cfg, proc, t).run(share))
        })
        .collect();
    let mut status = 0;
    for h in handles {
        if h.join().is_err() {
            status = 1;
        }
    }
    status
}

fn total_ops(shared: &Shared) -> u64 {
    (0..KINDS.len()).map(|k| shared.total(k)).sum()
}

fn main() {
    let args = parse_args();
    let nonce = (args.seed as u32)
        ^ (Instant::now().elapsed().subsec_nanos())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos().rotate_left(13) ^ d.as_secs() as u32)
            .unwrap_or(0);
    println!(
        "fuzz: seed {} (replay with --seed {} --ops {} --procs {} --threads {}), nonce {nonce:#x}",
        args.seed, args.seed, args.ops, args.procs, args.threads
    );
    let cfg: &'static Config = Box::leak(Box::new(Config {
        seed: args.seed,
        nonce,
        pool: pool(nonce),
        paths: MINORS.iter().map(|&m| node(m)).collect(),
        shared: Shared::map(),
    }));
    let shared = cfg.shared;

    // Fork the worker processes before any thread exists.
    let start = Instant::now();
    let mut pids = Vec::new();
    for p in 0..args.procs {
        let share = args.ops / u64::from(args.procs)
            + u64::from(u64::from(p) < args.ops % u64::from(args.procs));
        // SAFETY: single-threaded here; the child runs its workers and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            eprintln!("fuzz: fork: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
        if pid == 0 {
            let status = run_process(cfg, p, args.threads, share);
            // SAFETY: ends the worker process.
            unsafe { libc::_exit(status) };
        }
        pids.push((p, pid));
    }

    let deadline = start + Duration::from_secs(args.timeout);
    let mut next_report = start + Duration::from_secs(30);
    let mut left = pids.clone();
    while !left.is_empty() {
        left.retain(|&(p, pid)| {
            let mut status = 0;
            // SAFETY: polls our own child.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == 0 {
                return true;
            }
            if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                shared.fail(&format!(
                    "worker process {p} (pid {pid}) ended abnormally: wait status {status:#x} (seed {})",
                    args.seed
                ));
            }
            false
        });
        let now = Instant::now();
        if now > deadline {
            shared.fail(&format!(
                "timed out after {}s with {} ops done (seed {})",
                args.timeout,
                total_ops(shared),
                args.seed
            ));
            for &(_, pid) in &left {
                // SAFETY: kills our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            break;
        }
        if now > next_report {
            let done = total_ops(shared);
            eprintln!(
                "fuzz: {done} ops after {:.0}s ({:.0} ops/s)",
                start.elapsed().as_secs_f64(),
                done as f64 / start.elapsed().as_secs_f64()
            );
            next_report = now + Duration::from_secs(30);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    Worker::sweep(cfg);

    let total = total_ops(shared);
    println!(
        "fuzz: {total} ops in {secs:.1}s ({:.0} ops/s), {} processes x {} threads",
        total as f64 / secs,
        args.procs,
        args.threads
    );
    let mut overall = [0u64; OUTCOMES];
    for (k, kind) in KINDS.iter().enumerate() {
        let mut parts = Vec::new();
        for (slot, sum) in overall.iter_mut().enumerate() {
            let n = shared.outcome(k, slot);
            *sum += n;
            if n > 0 {
                parts.push(format!("{} {n}", errno_name(slot as i32)));
            }
        }
        println!(
            "fuzz:   {kind:<6} {:>9}  {}",
            shared.total(k),
            parts.join(", ")
        );
    }
    let hist: Vec<String> = overall
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(slot, n)| format!("{} {n}", errno_name(slot as i32)))
        .collect();
    println!("fuzz: errno histogram: {}", hist.join(", "));
    let failures = shared.failures();
    for text in shared.failure_texts() {
        println!("fuzz: FAIL {text}");
    }
    if failures > shared::REPORTED as u64 {
        println!(
            "fuzz: ... {} more failures not shown",
            failures - shared::REPORTED as u64
        );
    }
    println!("fuzz: {total} ops, {failures} failures");
    std::process::exit(if failures == 0 { 0 } else { 1 });
}
