// SPDX-License-Identifier: GPL-2.0

//! Where an exchange's time goes: single system calls, timed side by side.
//!
//! The floor is `write(/dev/null)` (no copy) + `read(/dev/zero)` (a 128-byte clear); a slot
//! exchange copies 128 bytes in and out of user space. Timing the slot's `write` and `read`
//! with 8- and 128-byte messages, a `write` that fails with `EMSGSIZE` before any copy, and a
//! bare `getppid`, separates the system-call entry, the driver's own work and the user copies.

use std::os::fd::AsRawFd;

use crate::measure::{paired_difference, Body, Sample, Timer};
use crate::sys::{open, open_bound, os_err, read_exact, write_all, MSG, PAYLOAD};

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
const MINOR: u32 = 244;
const SHORT_CHANNEL: u32 = 10;
const LONG_CHANNEL: u32 = 11;
/// The short message's length.
const SHORT: usize = 8;

/// A body repeating `call`, which performs one system call.
fn repeat<'a>(mut call: impl FnMut() -> Result<(), String> + 'a) -> Body<'a> {
    Box::new(move |n| (0..n).try_for_each(|_| call()))
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

/// Times every call, interleaved.
pub fn run(timer: &Timer) -> Result<Vec<Call>, String> {
    let owners = [
        open("/dev/null", libc::O_WRONLY)?,
        open("/dev/zero", libc::O_RDONLY)?,
        open_bound(MINOR, SHORT_CHANNEL)?,
        open_bound(MINOR, LONG_CHANNEL)?,
    ];
    let [null, zero, short, long] = owners.each_ref().map(AsRawFd::as_raw_fd);
    write_all(short, &PAYLOAD[..SHORT], "slot write")?;
    write_all(long, &PAYLOAD, "slot write")?;
    let (mut zero_buf, mut short_buf, mut long_buf) = ([0u8; MSG], [0u8; MSG], [0u8; MSG]);
    let calls: [(&'static str, &'static str, Body); 8] = [
        (
            "getppid",
            "getppid (system call entry and exit)",
            repeat(|| {
                // SAFETY: getppid has no arguments and cannot fail.
                unsafe { libc::getppid() };
                Ok(())
            }),
        ),
        (
            "null_write",
            "write /dev/null, 128 B (no copy)",
            repeat(|| write_all(null, &PAYLOAD, "write /dev/null")),
        ),
        (
            "zero_read",
            "read /dev/zero, 128 B (clear_user)",
            repeat(|| read_exact(zero, &mut zero_buf, MSG, "read /dev/zero")),
        ),
        (
            "slot_write_emsgsize",
            "slot write, 0 B (EMSGSIZE, no copy)",
            repeat(|| write_empty(short)),
        ),
        (
            "slot_write_8",
            "slot write, 8 B",
            repeat(|| write_all(short, &PAYLOAD[..SHORT], "slot write")),
        ),
        (
            "slot_write_128",
            "slot write, 128 B",
            repeat(|| write_all(long, &PAYLOAD, "slot write")),
        ),
        (
            "slot_read_8",
            "slot read, 8 B message",
            repeat(|| read_exact(short, &mut short_buf, SHORT, "slot read")),
        ),
        (
            "slot_read_128",
            "slot read, 128 B message",
            repeat(|| read_exact(long, &mut long_buf, MSG, "slot read")),
        ),
    ];
    let (names, mut bodies): (Vec<_>, Vec<_>) = calls
        .into_iter()
        .map(|(name, what, body)| ((name, what), body))
        .unzip();
    let samples = timer.run_interleaved(&mut bodies)?;
    drop(bodies);
    drop(owners);
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
            "clear_128",
            "read /dev/zero - write /dev/null: the floor's clear_user",
            diff("zero_read", "null_write"),
        ),
    ]
}
