// SPDX-License-Identifier: GPL-2.0

//! `abstractions::poll`: a wait queue head (nobody waits on the host) that records where the
//! live heads are, so tests can see when one is freed.

use core::{marker::PhantomPinned, ptr};
use kernel::prelude::*;
use std::{collections::HashSet, sync::Mutex};

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

/// A wait queue head.
#[pin_data(PinnedDrop)]
pub(crate) struct WaitQueueHead {
    #[pin]
    _pinned: PhantomPinned,
}

impl WaitQueueHead {
    /// An empty head.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(&this in Self {
            _pinned: {
                live(|live| live.insert(this.as_ptr() as usize));
                PhantomPinned
            },
        })
    }
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
