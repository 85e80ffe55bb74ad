// SPDX-License-Identifier: GPL-2.0

//! State shared by every fuzzer process and thread, in one `MAP_SHARED` anonymous mapping
//! created before the first fork: outcome histograms, the failure count with the first few
//! failure descriptions, and which (minor, channel) pairs this run has written successfully.
//! Only atomics live here, so it is usable from forked children without locks.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use message_slot_test_support::minors::{MINORS_FUZZ, MINORS_RIG};
use message_slot_test_support::sys::SharedMemory;

/// Operation kinds.
pub const KINDS: [&str; 7] = ["open", "close", "ioctl", "write", "read", "fork", "mapped"];
/// Kind indexes.
pub const OPEN: usize = 0;
/// See [`KINDS`].
pub const CLOSE: usize = 1;
/// See [`KINDS`].
pub const IOCTL: usize = 2;
/// See [`KINDS`].
pub const WRITE: usize = 3;
/// See [`KINDS`].
pub const READ: usize = 4;
/// See [`KINDS`].
pub const FORK: usize = 5;
/// See [`KINDS`]: a mapped read (mapping the descriptor's channel first if needed).
pub const MAPPED: usize = 6;
/// Outcome slots: index 0 is success, otherwise the errno (the last slot collects the rest).
pub const OUTCOMES: usize = 134;
/// Minors the fuzzer uses: the rig's, then its own (`message_slot_test_support::minors`).
pub const MINORS: [u32; 6] = [
    MINORS_RIG[0],
    MINORS_RIG[1],
    MINORS_RIG[2],
    MINORS_RIG[3],
    MINORS_FUZZ[0],
    MINORS_FUZZ[1],
];
/// Channel pool size (see `main::pool`).
pub const POOL: usize = 6;
/// Failures described in full.
pub const REPORTED: usize = 8;
const TEXT: usize = 600;

/// One failure description.
pub struct FailText {
    ready: AtomicU32,
    len: AtomicU32,
    text: [AtomicU8; TEXT],
}

/// The shared block.
pub struct Shared {
    outcomes: [[AtomicU64; OUTCOMES]; KINDS.len()],
    failures: AtomicU64,
    texts: [FailText; REPORTED],
    written: [[AtomicU8; POOL]; MINORS.len()],
}

impl Shared {
    /// Maps a zeroed shared block (all-zero atomics are valid); it is never unmapped.
    pub fn map() -> &'static Shared {
        // SAFETY: `Shared` holds only atomics (and arrays of them): all-zero is a valid value
        // and they work across processes.
        let shared = unsafe { SharedMemory::<Shared>::new() };
        shared.expect("mmap of the shared block").leak()
    }

    /// Counts one operation of `kind` with outcome `errno` (0 = success).
    pub fn count(&self, kind: usize, errno: i32) {
        let slot = usize::try_from(errno)
            .unwrap_or(OUTCOMES - 1)
            .min(OUTCOMES - 1);
        self.outcomes[kind][slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Operations of `kind` with outcome slot `slot`.
    pub fn outcome(&self, kind: usize, slot: usize) -> u64 {
        self.outcomes[kind][slot].load(Ordering::Relaxed)
    }

    /// Total operations of `kind`.
    pub fn total(&self, kind: usize) -> u64 {
        (0..OUTCOMES).map(|s| self.outcome(kind, s)).sum()
    }

    /// Records a failure; the first [`REPORTED`] keep their description.
    pub fn fail(&self, text: &str) {
        let idx = self.failures.fetch_add(1, Ordering::SeqCst) as usize;
        if idx < REPORTED {
            let t = &self.texts[idx];
            let bytes = &text.as_bytes()[..text.len().min(TEXT)];
            for (dst, &b) in t.text.iter().zip(bytes) {
                dst.store(b, Ordering::Relaxed);
            }
            t.len.store(bytes.len() as u32, Ordering::Relaxed);
            t.ready.store(1, Ordering::Release);
        }
    }

    /// Failures so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The recorded failure descriptions.
    pub fn failure_texts(&self) -> Vec<String> {
        self.texts
            .iter()
            .filter(|t| t.ready.load(Ordering::Acquire) != 0)
            .map(|t| {
                let len = t.len.load(Ordering::Relaxed) as usize;
                let bytes: Vec<u8> = t.text[..len]
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect()
    }

    /// Whether a write of this run to (minor index, pool index) has completed.
    pub fn written(&self, minor: usize, channel: usize) -> bool {
        self.written[minor][channel].load(Ordering::Acquire) != 0
    }

    /// Marks (minor index, pool index) as written (after the write returned success).
    pub fn set_written(&self, minor: usize, channel: usize) {
        self.written[minor][channel].store(1, Ordering::Release);
    }
}
