// SPDX-License-Identifier: GPL-2.0

//! `abstractions::poll`: a wait queue head (nobody waits on the host) that records where the
//! live heads are, so tests can see when one is freed, and what the wake-up after a write
//! found (the spinlock stand-in's unlock records it here).

use core::{cell::Cell, marker::PhantomPinned, ptr};
use kernel::prelude::*;
use std::{collections::HashSet, sync::Mutex};

/// Poll events (only carried).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PollEvents(pub(crate) u32);

thread_local! {
    /// The head the last wake-up after a write on this thread found (null for none), if one
    /// ran.
    static LAST_WAKE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// What the last wake-up after a write on this thread found: `Some(head)` (null: no queue),
/// or `None` if none ran since the last call of this function.
pub(crate) fn take_last_wake() -> Option<*const WaitQueueHead> {
    LAST_WAKE
        .with(|last| last.take())
        .map(|head| head as *const WaitQueueHead)
}

/// The addresses of the heads initialised and not yet dropped.
static LIVE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn live(change: impl FnOnce(&mut HashSet<usize>) -> bool) -> bool {
    let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    change(live.get_or_insert_with(HashSet::new))
}

/// Whether `head` is an initialised head that was not dropped.
pub(crate) fn is_live(head: *const WaitQueueHead) -> bool {
    live(|live| live.contains(&(head as usize)))
}

/// A wait queue head. Not zero-sized (as the kernel's is not): every head has an address of
/// its own (boxes of a zero-sized type all have the same), which tells live heads apart.
#[pin_data(PinnedDrop)]
pub(crate) struct WaitQueueHead {
    _lock: u64,
    #[pin]
    _pinned: PhantomPinned,
}

impl WaitQueueHead {
    /// An empty head.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(&this in Self {
            _lock: 0,
            _pinned: {
                let head = this.as_ptr() as usize;
                assert!(live(|live| live.insert(head)), "two live heads at one address");
                PhantomPinned
            },
        })
    }
}

/// Records `head`, which must be null or live, as found by a wake-up on this thread.
pub(crate) fn record_wake(head: *mut WaitQueueHead) {
    assert!(head.is_null() || is_live(head), "woke a freed head");
    LAST_WAKE.with(|last| last.set(Some(head as usize)));
}

#[pinned_drop]
impl PinnedDrop for WaitQueueHead {
    fn drop(self: Pin<&mut Self>) {
        let head = ptr::from_ref::<Self>(&self) as usize;
        assert!(
            live(|live| live.remove(&head)),
            "a head dropped twice or never initialised"
        );
    }
}
