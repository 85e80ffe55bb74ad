// SPDX-License-Identifier: GPL-2.0

//! `abstractions::seqlock`: the `seqlock_t` protocol on the host (a sequence counter that is
//! odd while a writer holds the mutex; readers check it before and after), after Boehm's
//! "Can seqlocks get along with programming language memory models?".
//!
//! [`force_overlaps`] makes the next reads on this thread see an overlapping write, so tests
//! reach a reader's fallback without a race.

use super::poll::{record_wake, PollEvents, WaitQueueHead};
use core::{
    cell::Cell,
    hint::spin_loop,
    marker::PhantomPinned,
    sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering},
};
use kernel::prelude::*;
use std::sync::{Mutex, MutexGuard};

thread_local! {
    static FORCED_OVERLAPS: Cell<usize> = const { Cell::new(0) };
}

/// Makes the next `count` calls of [`SeqLock::read_retry`] on this thread report an overlap.
pub(crate) fn force_overlaps(count: usize) {
    FORCED_OVERLAPS.with(|forced| forced.set(count));
}

/// A seqlock.
#[pin_data]
pub(crate) struct SeqLock {
    sequence: AtomicU32,
    writers: Mutex<()>,
    #[pin]
    _pinned: PhantomPinned,
}

impl SeqLock {
    /// Sequence 0, no writer.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            sequence: AtomicU32::new(0),
            writers: Mutex::new(()),
            _pinned: PhantomPinned,
        })
    }

    /// The sequence once no write is in progress (`read_seqbegin`).
    pub(crate) fn read_begin(&self) -> u32 {
        loop {
            let sequence = self.sequence.load(Ordering::Acquire);
            if sequence & 1 == 0 {
                return sequence;
            }
            spin_loop();
        }
    }

    /// Whether a read begun at `start` overlapped a write (`read_seqretry`).
    pub(crate) fn read_retry(&self, start: u32) -> bool {
        fence(Ordering::Acquire);
        let forced = FORCED_OVERLAPS.with(|forced| {
            let left = forced.get();
            forced.set(left.saturating_sub(1));
            left > 0
        });
        forced || self.sequence.load(Ordering::Relaxed) != start
    }

    /// Takes the writers' lock and makes the sequence odd until the guard drops
    /// (`write_seqlock`).
    pub(crate) fn write(&self) -> SeqLockWriteGuard<'_> {
        let writers = self
            .writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.sequence.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        SeqLockWriteGuard {
            lock: self,
            _writers: writers,
        }
    }

    /// Takes the writers' lock without touching the sequence (`read_seqlock_excl`).
    pub(crate) fn read_exclusive(&self) -> MutexGuard<'_, ()> {
        self.writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A write section: the sequence is odd until it drops (`write_sequnlock`).
pub(crate) struct SeqLockWriteGuard<'a> {
    lock: &'a SeqLock,
    _writers: MutexGuard<'a, ()>,
}

impl SeqLockWriteGuard<'_> {
    /// Ends the write section, then records what the wake-up of `queue`'s pollers found
    /// ([`super::poll::take_last_wake`]).
    ///
    /// # Safety
    ///
    /// `queue` holds null or a live head.
    pub(crate) unsafe fn unlock_and_wake_up_poll(
        self,
        queue: &AtomicPtr<WaitQueueHead>,
        _events: PollEvents,
    ) {
        drop(self);
        fence(Ordering::SeqCst);
        record_wake(queue.load(Ordering::Acquire));
    }
}

impl Drop for SeqLockWriteGuard<'_> {
    fn drop(&mut self) {
        self.lock.sequence.fetch_add(1, Ordering::Release);
    }
}
