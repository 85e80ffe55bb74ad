// SPDX-License-Identifier: GPL-2.0

//! `abstractions::spinlock`: the writers' lock as a host mutex, whose guard's
//! `unlock_and_wake_up_poll` releases it, issues a full fence and records what the wake-up of
//! the pollers found ([`super::poll::take_last_wake`]).
//!
//! Like lockdep, it panics when a thread takes a lock it holds (which would deadlock). For
//! tests, it counts the locks each thread takes ([`locks_taken`]) and can stop a thread
//! at two points: holding a lock it just took ([`pause_after_next_lock`]), and before it waits
//! for a lock another thread holds ([`signal_before_next_wait`]). So a test can hold a
//! channel's lock in a writer and see a reader wait for it.

use super::poll::{record_wake, PollEvents, WaitQueueHead};
use core::{
    cell::{Cell, RefCell},
    marker::PhantomPinned,
    sync::atomic::{fence, AtomicPtr, Ordering},
};
use kernel::prelude::*;
use std::sync::{
    mpsc::{Receiver, Sender},
    Mutex, MutexGuard, TryLockError,
};

thread_local! {
    /// The addresses of the locks this thread holds.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Locks this thread took.
    static TAKEN: Cell<usize> = const { Cell::new(0) };
    /// Where to say that this thread holds the next lock it takes, and where to wait then.
    static PAUSE_AFTER: RefCell<Option<(Sender<()>, Receiver<()>)>> = const { RefCell::new(None) };
    /// Where to say that this thread waits for the next lock it takes, if it has to.
    static SIGNAL_BEFORE_WAIT: RefCell<Option<Sender<()>>> = const { RefCell::new(None) };
}

/// The number of locks this thread took so far.
pub(crate) fn locks_taken() -> usize {
    TAKEN.with(Cell::get)
}

/// Makes this thread, once it holds the next lock it takes, send on `locked` and then wait
/// for a message on `resume` (or for its sender to be dropped) before it goes on.
pub(crate) fn pause_after_next_lock(locked: Sender<()>, resume: Receiver<()>) {
    PAUSE_AFTER.with(|pause| *pause.borrow_mut() = Some((locked, resume)));
}

/// Makes this thread, if the next lock it takes is held by another, send on `waiting` before
/// it waits for it.
pub(crate) fn signal_before_next_wait(waiting: Sender<()>) {
    SIGNAL_BEFORE_WAIT.with(|signal| *signal.borrow_mut() = Some(waiting));
}

/// A lock that protects nothing of its own: its holder's accesses are the caller's.
#[pin_data]
pub(crate) struct SpinLock {
    inner: Mutex<()>,
    #[pin]
    _pinned: PhantomPinned,
}

impl SpinLock {
    /// An unlocked lock.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            inner: Mutex::new(()),
            _pinned: PhantomPinned,
        })
    }

    /// Takes the lock until the guard is dropped; waits while another thread holds it.
    pub(crate) fn lock(&self) -> SpinLockGuard<'_> {
        let address = core::ptr::from_ref(self) as usize;
        HELD.with(|held| {
            assert!(
                !held.borrow().contains(&address),
                "a thread takes a lock it holds"
            );
        });
        let guard = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                if let Some(waiting) = SIGNAL_BEFORE_WAIT.with(|signal| signal.borrow_mut().take())
                {
                    // A test that stopped listening lets this thread just wait.
                    let _ = waiting.send(());
                }
                self.inner
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        };
        TAKEN.with(|taken| taken.set(taken.get() + 1));
        if let Some((locked, resume)) = PAUSE_AFTER.with(|pause| pause.borrow_mut().take()) {
            // Either may fail only if the test stopped listening: then go on.
            let _ = locked.send(());
            let _ = resume.recv();
        }
        HELD.with(|held| held.borrow_mut().push(address));
        SpinLockGuard {
            address,
            _held: guard,
        }
    }
}

/// A held [`SpinLock`] (not `Send`: released by the thread that took it).
pub(crate) struct SpinLockGuard<'a> {
    address: usize,
    _held: MutexGuard<'a, ()>,
}

impl Drop for SpinLockGuard<'_> {
    fn drop(&mut self) {
        HELD.with(|held| held.borrow_mut().retain(|&address| address != self.address));
    }
}

impl SpinLockGuard<'_> {
    /// Releases the lock, then records what the wake-up of `queue`'s pollers found
    /// ([`super::poll::take_last_wake`]), after a full fence as the kernel's.
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
