// SPDX-License-Identifier: GPL-2.0

//! Parallel readers: throughput of one reader thread against two, each thread with its own
//! descriptor, either all on the same channel or each on its own channel of one slot, and
//! reading the same channel through mappings of its record (each thread its own fd and
//! mapping; no system call per read). The same is measured on `/dev/zero` as a reference for
//! how well the VM itself scales.
//!
//! Each repetition starts the threads together (pinned to CPU `i % cpus`), lets them read
//! 128-byte messages for the repetition's duration and divides their total reads by the
//! time from start to stop. The configurations take turns repetition by repetition, so that
//! a change in the host's load affects the 1-thread and 2-thread runs alike, and every
//! repetition reads through fresh descriptors, the earlier ones kept open (placement
//! matters under TCG, see `Timer::run_fresh`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::Instant;

use serde_json::{json, Value};

use message_slot_test_support::minors::MINOR_BENCH_PARALLEL;
use message_slot_test_support::sys::pin_to_cpu;

use crate::mapped::{mapped_channel, MappedReader};
use crate::measure::{median, ratio, round, Timer};
use crate::sys::{open, open_bound, read_exact, write_all, MAX_MESSAGE_LEN, PAYLOAD};

/// Minor used by the parallel cases.
const MINOR: u32 = MINOR_BENCH_PARALLEL;
/// Reads between two looks at the stop flag.
const BATCH: u64 = 32;

/// Where the readers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/dev/zero` (the reference).
    Zero,
    /// One channel for every thread.
    SameChannel,
    /// Channel `i + 1` for thread `i`.
    OwnChannel,
    /// One channel for every thread, read through mappings of its record.
    MappedSameChannel,
}

/// One reader thread's source of messages.
enum Reader {
    /// `read(2)` on a descriptor.
    Fd(OwnedFd),
    /// Mapped reads of a channel's record.
    Mapped(MappedReader),
}

impl Reader {
    /// Reads one 128-byte message into `buf`.
    #[inline]
    fn read(&self, buf: &mut [u8; MAX_MESSAGE_LEN]) -> Result<(), String> {
        match self {
            Self::Fd(fd) => read_exact(fd.as_raw_fd(), buf, MAX_MESSAGE_LEN, "parallel read"),
            Self::Mapped(mapped) => match mapped.read(buf) {
                Ok(MAX_MESSAGE_LEN) => Ok(()),
                Ok(len) => Err(format!("parallel mapped read returned {len} bytes")),
                Err(e) => Err(format!("parallel mapped read: {e}")),
            },
        }
    }
}

/// One configuration's result.
pub struct Run {
    /// Where the threads read.
    pub target: Target,
    /// Reader threads.
    pub threads: usize,
    /// Total reads per second of each repetition.
    pub ops_per_sec: Vec<f64>,
}

impl Run {
    /// Median total reads per second.
    pub fn median(&self) -> f64 {
        median(&self.ops_per_sec)
    }
}

/// One fresh descriptor (and mapping) per reader thread.
fn open_readers(target: Target, threads: usize) -> Result<Vec<Reader>, String> {
    (0..threads)
        .map(|i| match target {
            Target::Zero => open("/dev/zero", libc::O_RDONLY).map(Reader::Fd),
            Target::SameChannel => open_bound(MINOR, 1).map(Reader::Fd),
            Target::OwnChannel => open_bound(MINOR, i as u32 + 1).map(Reader::Fd),
            Target::MappedSameChannel => mapped_channel(MINOR, 1).map(Reader::Mapped),
        })
        .collect()
}

/// One repetition: `readers.len()` threads read until the repetition's time is up.
fn rep(timer: &Timer, readers: &[Reader], cpus: usize) -> Result<f64, String> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(readers.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .iter()
            .enumerate()
            .map(|(i, reader)| {
                let (stop, start) = (&stop, &start);
                s.spawn(move || -> Result<u64, String> {
                    pin_to_cpu(i % cpus);
                    let mut buf = [0u8; MAX_MESSAGE_LEN];
                    let mut ops = 0u64;
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..BATCH {
                            reader.read(&mut buf)?;
                        }
                        ops += BATCH;
                    }
                    Ok(ops)
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        std::thread::sleep(timer.rep);
        stop.store(true, Ordering::Relaxed);
        let window = t.elapsed().as_secs_f64();
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|_| "reader thread panicked")??;
        }
        for reader in readers {
            if let Reader::Mapped(mapped) = reader {
                mapped.check_no_fallback("parallel mapped")?;
            }
        }
        Ok(total as f64 / window)
    })
}

/// Runs 1 and 2 readers on each target.
pub fn run_all(timer: &Timer, log: &mut dyn FnMut(&Run)) -> Result<Vec<Run>, String> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    for channel in [1, 2] {
        write_all(
            open_bound(MINOR, channel)?.as_raw_fd(),
            &PAYLOAD,
            "parallel setup write",
        )?;
    }
    let configs = [
        (Target::Zero, 1),
        (Target::Zero, 2),
        (Target::SameChannel, 1),
        (Target::SameChannel, 2),
        (Target::OwnChannel, 2),
        (Target::MappedSameChannel, 1),
        (Target::MappedSameChannel, 2),
    ];
    let mut kept = Vec::new();
    let mut runs = Vec::new();
    for (target, threads) in configs {
        let open = open_readers(target, threads)?;
        rep(timer, &open, cpus)?; // warm-up
        kept.push(open);
        runs.push(Run {
            target,
            threads,
            ops_per_sec: Vec::with_capacity(timer.reps),
        });
    }
    for _ in 0..timer.reps {
        for run in runs.iter_mut() {
            let open = open_readers(run.target, run.threads)?;
            let ops = rep(timer, &open, cpus)
                .map_err(|e| format!("parallel {:?} x{}: {e}", run.target, run.threads))?;
            run.ops_per_sec.push(ops);
            kept.push(open);
        }
    }
    for run in &runs {
        log(run);
    }
    Ok(runs)
}

/// Median total reads per second of `target` with `threads` readers.
pub fn ops(runs: &[Run], target: Target, threads: usize) -> f64 {
    runs.iter()
        .find(|r| r.target == target && r.threads == threads)
        .map_or(0.0, Run::median)
}

/// The throughput ratios reported: (key, what, 2-thread target, 1-thread target).
pub const RATIOS: [(&str, &str, Target, Target); 4] = [
    (
        "same_channel",
        "2 readers, same channel",
        Target::SameChannel,
        Target::SameChannel,
    ),
    (
        "different_channels",
        "2 readers, own channels",
        Target::OwnChannel,
        Target::SameChannel,
    ),
    (
        "mapped_same_channel",
        "2 mapped readers, same channel",
        Target::MappedSameChannel,
        Target::MappedSameChannel,
    ),
    (
        "dev_zero_reference",
        "2 readers of /dev/zero",
        Target::Zero,
        Target::Zero,
    ),
];

/// The JSON object `parallel`.
pub fn json(runs: &[Run]) -> Value {
    let mut v = serde_json::Map::new();
    v.insert(
        "method".into(),
        json!("reader threads with their own fds, 128-byte reads, configurations interleaved; ratio = 2-thread total ops/s / 1-thread ops/s"),
    );
    for (key, _, two, one) in RATIOS {
        let (t2, t1) = (ops(runs, two, 2), ops(runs, one, 1));
        v.insert(
            key.into(),
            json!({
                "ops_per_sec_1_thread": round(t1),
                "ops_per_sec_2_threads": round(t2),
                "ns_per_read_1_thread": round(1e9 / t1),
                "throughput_ratio": ratio(t2, t1),
            }),
        );
    }
    v.insert(
        "runs".into(),
        runs.iter()
            .map(|r| {
                json!({
                    "target": format!("{:?}", r.target),
                    "threads": r.threads,
                    "ops_per_sec_median": round(r.median()),
                    "ops_per_sec_reps": r.ops_per_sec.iter().map(|&x| round(x)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    );
    Value::Object(v)
}
