// SPDX-License-Identifier: GPL-2.0

//! Where an exchange's time goes: single system calls, timed side by side.
//!
//! The floor is `write(/dev/null)` (no copy) + `read(/dev/zero)` (a 128-byte clear); a slot
//! exchange copies 128 bytes in and out of user space. Timing the slot's `write` and `read`
//! with 8- and 128-byte messages, a `write` that fails with `EMSGSIZE` before any copy, and a
//! bare `getppid`, separates the system-call entry, the driver's own work and the user copies;
//! a mapped read of the 128-byte message (no system call) shows what the mapping saves.
//! [`cold_page`] (a `getppid` and a load from a random page of a large buffer) prices one
//! cold page for the scale section.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use message_slot_test_support::minors::MINOR_BENCH_IPC;

use crate::mapped::mapped;
use crate::measure::{paired_difference, Body, Sample, Setup, Timer};
use crate::sys::{open, open_bound, os_err, read_exact, write_all, MAX_MESSAGE_LEN, PAYLOAD};

/// One timed system call.
pub struct Call {
    /// Short stable key (JSON `name`).
    pub name: &'static str,
    /// What the call is, for the table.
    pub what: &'static str,
    /// The timings (one call per exchange).
    pub sample: Sample,
}

/// Minor and channels used (the same minor as the `ipc` cases, other channels).
const MINOR: u32 = MINOR_BENCH_IPC;
const SHORT_CHANNEL: u32 = 10;
const LONG_CHANNEL: u32 = 11;
const MAPPED_CHANNEL: u32 = 12;
/// The short message's length.
const SHORT: usize = 8;
/// The buffer [`cold_page`] picks its pages from: far larger than any TLB's reach.
pub const COLD_BYTES: usize = 256 << 20;
const PAGE: usize = 4096;

/// A body repeating `call`, which performs one system call.
fn repeat(mut call: impl FnMut() -> Result<(), String> + 'static) -> Body<'static> {
    Box::new(move |n| (0..n).try_for_each(|_| call()))
}

/// `getppid` per exchange: the bare system-call entry and exit.
pub fn getppid() -> Body<'static> {
    repeat(|| {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::getppid() };
        Ok(())
    })
}

/// [`getppid`] plus one load from a random page of `cold` (every page of which was written
/// beforehand, so that it is mapped): one cold page more than `getppid`, which under TCG
/// is a miss in QEMU's software TLB.
pub fn cold_page(cold: Arc<Vec<u8>>) -> Body<'static> {
    // Each setup walks its own sequence of pages.
    static SETUPS: AtomicU64 = AtomicU64::new(1);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ SETUPS.fetch_add(1, Ordering::Relaxed) << 32;
    let pages = cold.len() / PAGE;
    repeat(move || {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::getppid() };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let page = (rng >> 16) as usize % pages;
        std::hint::black_box(cold[page * PAGE + (rng as usize & (PAGE - 1))]);
        Ok(())
    })
}

/// `write(fd, 0 bytes)`, which must fail with `EMSGSIZE`.
fn write_empty(fd: i32) -> Result<(), String> {
    // SAFETY: a zero-length write reads no memory.
    let n = unsafe { libc::write(fd, PAYLOAD.as_ptr().cast(), 0) };
    if n == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EMSGSIZE) {
        return Ok(());
    }
    Err(os_err(&format!(
        "empty slot write returned {n}, not EMSGSIZE"
    )))
}

/// A body writing the first `len` bytes of the payload to `fd` (a fresh copy of them).
fn writes(fd: OwnedFd, len: usize, what: &'static str) -> Body<'static> {
    let out = PAYLOAD;
    repeat(move || write_all(fd.as_raw_fd(), &out[..len], what))
}

/// A body reading `len`-byte messages from `fd` into a fresh buffer.
fn reads(fd: OwnedFd, len: usize, what: &'static str) -> Body<'static> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    repeat(move || read_exact(fd.as_raw_fd(), &mut buf, len, what))
}

/// A fresh fd bound to `channel` of the benchmark minor, holding a `len`-byte message.
fn slot_with_message(channel: u32, len: usize) -> Result<OwnedFd, String> {
    let fd = open_bound(MINOR, channel)?;
    write_all(fd.as_raw_fd(), &PAYLOAD[..len], "slot write")?;
    Ok(fd)
}

/// Times every call, interleaved, each repetition on a fresh setup (see
/// [`Timer::run_fresh`]).
pub fn run(timer: &Timer) -> Result<Vec<Call>, String> {
    let calls: [(&'static str, &'static str, Setup); 9] = [
        (
            "getppid",
            "getppid (system call entry and exit)",
            Box::new(|| Ok(getppid())),
        ),
        (
            "null_write",
            "write /dev/null, 128 B (no copy)",
            Box::new(|| {
                let fd = open("/dev/null", libc::O_WRONLY)?;
                Ok(writes(fd, MAX_MESSAGE_LEN, "write /dev/null"))
            }),
        ),
        (
            "zero_read",
            "read /dev/zero, 128 B (clear_user)",
            Box::new(|| {
                Ok(reads(
                    open("/dev/zero", libc::O_RDONLY)?,
                    MAX_MESSAGE_LEN,
                    "read /dev/zero",
                ))
            }),
        ),
        (
            "slot_write_emsgsize",
            "slot write, 0 B (EMSGSIZE, no copy)",
            Box::new(|| {
                let fd = open_bound(MINOR, SHORT_CHANNEL)?;
                Ok(repeat(move || write_empty(fd.as_raw_fd())))
            }),
        ),
        (
            "slot_write_8",
            "slot write, 8 B",
            Box::new(|| {
                Ok(writes(
                    open_bound(MINOR, SHORT_CHANNEL)?,
                    SHORT,
                    "slot write",
                ))
            }),
        ),
        (
            "slot_write_128",
            "slot write, 128 B",
            Box::new(|| {
                Ok(writes(
                    open_bound(MINOR, LONG_CHANNEL)?,
                    MAX_MESSAGE_LEN,
                    "slot write",
                ))
            }),
        ),
        (
            "slot_read_8",
            "slot read, 8 B message",
            Box::new(|| {
                Ok(reads(
                    slot_with_message(SHORT_CHANNEL, SHORT)?,
                    SHORT,
                    "slot read",
                ))
            }),
        ),
        (
            "slot_read_128",
            "slot read, 128 B message",
            Box::new(|| {
                Ok(reads(
                    slot_with_message(LONG_CHANNEL, MAX_MESSAGE_LEN)?,
                    MAX_MESSAGE_LEN,
                    "slot read",
                ))
            }),
        ),
        (
            "mapped_read_128",
            "mapped read, 128 B message (no syscall)",
            Box::new(|| mapped(MINOR, MAPPED_CHANNEL)),
        ),
    ];
    let (names, setups): (Vec<_>, Vec<_>) = calls
        .into_iter()
        .map(|(name, what, setup)| ((name, what), (name, setup)))
        .unzip();
    let samples = timer.run_fresh(&setups)?;
    Ok(names
        .into_iter()
        .zip(samples)
        .map(|((name, what), sample)| Call { name, what, sample })
        .collect())
}

/// Derived costs, each the median over turns of a difference between two calls.
pub fn derived(calls: &[Call]) -> Vec<(&'static str, &'static str, f64)> {
    let diff = |a: &str, b: &str| {
        let get = |name: &str| calls.iter().find(|c| c.name == name).map(|c| &c.sample);
        match (get(a), get(b)) {
            (Some(a), Some(b)) => paired_difference(a, b),
            _ => f64::NAN,
        }
    };
    vec![
        (
            "dispatch_to_driver",
            "slot write EMSGSIZE - getppid: VFS + driver entry",
            diff("slot_write_emsgsize", "getppid"),
        ),
        (
            "write_driver_work_8",
            "slot write 8 B - slot write EMSGSIZE: copy-in + store, 8 B",
            diff("slot_write_8", "slot_write_emsgsize"),
        ),
        (
            "copy_in_120",
            "slot write 128 B - 8 B: 120 more bytes in",
            diff("slot_write_128", "slot_write_8"),
        ),
        (
            "copy_out_120",
            "slot read 128 B - 8 B: 120 more bytes out",
            diff("slot_read_128", "slot_read_8"),
        ),
        (
            "mapped_read_saves",
            "slot read 128 B - mapped read 128 B: saved per read",
            diff("slot_read_128", "mapped_read_128"),
        ),
        (
            "clear_128",
            "read /dev/zero - write /dev/null: the floor's clear_user",
            diff("zero_read", "null_write"),
        ),
    ]
}
