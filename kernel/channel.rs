// SPDX-License-Identifier: GPL-2.0

//! A channel: its message storage (up to 128 bytes held inline from the channel's creation
//! until unload, replaced under a seqlock, read without a lock) and the wait queue of its
//! pollers (allocated when it is first polled).
//!
//! A write reads the user's bytes once into a [`MessageBuffer`] on its stack (this may fault
//! and sleep; no lock is held), then, under the channel's [`SeqLock`], stores them into the
//! channel. A read copies straight from the channel to user memory between
//! [`SeqLock::read_begin`] and [`SeqLock::read_retry`] (the copy may fault and sleep: the
//! channel lives until unload, so nothing it reads can be freed), and copies again if a write
//! overlapped it; after [`OPTIMISTIC_READS`] overlapped attempts it excludes writers for one
//! copy to the stack, so a stream of writes cannot starve it.
//!
//! So a write to an existing channel allocates nothing and cannot fail for lack of memory, a
//! read allocates nothing and writes no shared memory, a reader never returns a torn message,
//! and a failed write (`EFAULT`) never touches the channel. The racy accesses stay outside
//! Rust's memory model: writers store the bytes with atomic stores, lock-free readers load
//! them with the architecture's user-copy routine, and every Rust load of them is atomic too.

use crate::abstractions::{
    error::emsgsize,
    poll::{PollEvents, WaitQueueHead},
    seqlock::SeqLock,
    uaccess::{copy_from_user, copy_to_user},
};
use crate::uapi::MAX_MESSAGE_LEN;
use core::{
    mem::MaybeUninit,
    ptr,
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    alloc::Flags,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// Lock-free attempts a read makes before it excludes writers.
const OPTIMISTIC_READS: usize = 3;

/// Bytes per stored word.
const WORD: usize = core::mem::size_of::<u64>();
/// Words per block: a message is stored block by block, each an unrolled copy of its words.
const BLOCK: usize = 8;
/// Bytes per block.
const BLOCK_BYTES: usize = BLOCK * WORD;
/// Blocks that hold the longest message.
const BLOCKS: usize = MAX_MESSAGE_LEN / BLOCK_BYTES;
const _: () = assert!(BLOCKS * BLOCK_BYTES == MAX_MESSAGE_LEN);

/// A block of a message on a writer's stack.
type Block = [u64; BLOCK];

/// Room on a writer's stack for a message on its way into a channel (left uninitialised:
/// [`MessageBytes::from_user`] initialises what it uses).
pub(crate) struct MessageBuffer([MaybeUninit<Block>; BLOCKS]);

impl MessageBuffer {
    /// An uninitialised buffer.
    #[inline]
    pub(crate) fn new() -> Self {
        Self([MaybeUninit::uninit(); BLOCKS])
    }
}

/// A message read from user memory (once) into a [`MessageBuffer`], on its way into a
/// channel: its bytes in the blocks a channel stores them in.
///
/// # Invariants
///
/// `1 <= len <= MAX_MESSAGE_LEN`, and `blocks` are the first `len.div_ceil(BLOCK_BYTES)`
/// blocks of the buffer: the message's bytes in memory order, then zeros to the end of the
/// last block.
pub(crate) struct MessageBytes<'a> {
    len: usize,
    blocks: &'a [Block],
}

impl<'a> MessageBytes<'a> {
    /// The `len` bytes at user address `source`, read into `buffer`: `EMSGSIZE` unless they are
    /// 1..=[`MAX_MESSAGE_LEN`], `EFAULT` if user memory cannot be read. User memory is read
    /// once.
    #[inline]
    pub(crate) fn from_user(
        source: UserPtr,
        len: usize,
        buffer: &'a mut MessageBuffer,
    ) -> Result<Self> {
        if !(1..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(emsgsize());
        }
        // `len >= 1`: `saturating_sub` only spares the compiler a check it cannot always drop.
        let last = len.saturating_sub(1) / BLOCK_BYTES;
        let used = last + 1;
        // The last block's bytes past the message are zero; the copy fills the rest.
        if let Some(last) = buffer.0.get_mut(last) {
            last.write([0; BLOCK]);
        }
        // SAFETY: The buffer is `BLOCKS * BLOCK_BYTES == MAX_MESSAGE_LEN >= len` bytes, valid for
        // writes, and any bytes are valid `MaybeUninit<u8>`s (alignment 1); the slice borrows
        // the buffer mutably.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(buffer.0.as_mut_ptr().cast::<MaybeUninit<u8>>(), len)
        };
        copy_from_user(bytes, source)?;
        // SAFETY: The copy initialised the first `len` bytes and the zero block the rest of
        // the first `used <= BLOCKS` blocks; `MaybeUninit<Block>` has the layout of `Block`.
        let blocks =
            unsafe { core::slice::from_raw_parts(buffer.0.as_ptr().cast::<Block>(), used) };
        // INVARIANT: As just shown; `len` is in range.
        Ok(Self { len, blocks })
    }

    /// The message's length in bytes (1..=[`MAX_MESSAGE_LEN`]).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A channel: its current message, stored inline, and the wait queue of its pollers.
///
/// # Invariants
///
/// `len` is always in 0..=`MAX_MESSAGE_LEN` and the first `len` bytes of `blocks` (in memory
/// order) are the channel's message; 0 means no message yet (a channel created by a poller),
/// and once a message is stored `len` never returns to 0. Both change only while `lock` is
/// held for writing. `waiters` is null or a pinned, initialised [`WaitQueueHead`] from
/// `KBox::into_raw`, owned by the channel and never replaced.
#[pin_data(PinnedDrop)]
pub(crate) struct Channel {
    #[pin]
    lock: SeqLock,
    len: AtomicU32,
    waiters: AtomicPtr<WaitQueueHead>,
    blocks: [[AtomicU64; BLOCK]; BLOCKS],
}

impl Channel {
    /// A channel holding `message`, or no message yet, and `waiters` as its pollers' wait
    /// queue (or none until it is first polled).
    pub(crate) fn new<'a>(
        message: Option<&'a MessageBytes<'_>>,
        waiters: Option<Pin<KBox<WaitQueueHead>>>,
    ) -> impl PinInit<Self> + 'a {
        let mut blocks = [const { [const { AtomicU64::new(0) }; BLOCK] }; BLOCKS];
        if let Some(message) = message {
            for (to, from) in blocks.iter_mut().zip(message.blocks) {
                for (to, from) in to.iter_mut().zip(from) {
                    *to.get_mut() = *from;
                }
            }
        }
        // INVARIANT: `message` has 1..=MAX_MESSAGE_LEN bytes, stored in `blocks`; without one the
        // length is 0. `waiters` becomes null or a pinned, initialised head from
        // `KBox::into_raw`, owned by the channel. (If the initialiser never runs, dropping it
        // drops `waiters` with it.)
        pin_init!(Self {
            lock <- SeqLock::new(),
            len: AtomicU32::new(message.map_or(0, |message| message.len as u32)),
            waiters: AtomicPtr::new(waiters.map_or(ptr::null_mut(), head_into_raw)),
            blocks,
        })
    }

    /// Makes `message` the channel's message and then wakes the channel's pollers with
    /// `events`, if any wait; returns the length of the message it replaced (0 if there was
    /// none). Allocates nothing; spins (or, with PREEMPT_RT, sleeps) only on another write of
    /// this channel, never on a reader.
    ///
    /// The wake-up follows the unlock in the same call into C, after a full barrier: either it
    /// finds a poller that registered before the message was published, or that poller finds
    /// the message. Without a queue or waiters: that barrier and two loads.
    #[inline]
    pub(crate) fn replace(&self, message: &MessageBytes<'_>, events: PollEvents) -> usize {
        let write = self.lock.write();
        // INVARIANT: Under the write lock: the new length is in range, and the blocks it covers
        // hold the message (blocks beyond it are left as they are: never read).
        for (to, from) in self.blocks.iter().zip(message.blocks) {
            // Spelled out: the compiler leaves a loop of atomic stores rolled.
            let [to0, to1, to2, to3, to4, to5, to6, to7] = to;
            let [from0, from1, from2, from3, from4, from5, from6, from7] = *from;
            to0.store(from0, Ordering::Relaxed);
            to1.store(from1, Ordering::Relaxed);
            to2.store(from2, Ordering::Relaxed);
            to3.store(from3, Ordering::Relaxed);
            to4.store(from4, Ordering::Relaxed);
            to5.store(from5, Ordering::Relaxed);
            to6.store(from6, Ordering::Relaxed);
            to7.store(from7, Ordering::Relaxed);
        }
        let previous = self.len.load(Ordering::Relaxed);
        self.len.store(message.len as u32, Ordering::Relaxed);
        // SAFETY: `waiters` is null or a pinned, initialised head owned by the channel (type
        // invariant), published with the channel or by a release compare-and-swap, and freed
        // only when the channel is dropped, which cannot happen while `self` is borrowed.
        unsafe { write.unlock_and_wake_up_poll(&self.waiters, events) };
        previous as usize
    }

    /// The number of the current message, if the channel holds one: it changes with every
    /// write, and is the one a read that copies this message returns (the seqlock's sequence;
    /// see [`Channel::read`]).
    #[inline]
    pub(crate) fn current(&self) -> Option<u32> {
        let sequence = self.lock.read_begin();
        // A length read after a later write began only comes with a message newer than
        // `sequence`, which that write announces to the pollers when it is done.
        (self.len.load(Ordering::Relaxed) != 0).then_some(sequence)
    }

    /// The wait queue of the channel's pollers, allocated with `flags` on the first call
    /// (`ENOMEM`). Lives as long as the channel.
    pub(crate) fn poll_queue(&self, flags: Flags) -> Result<&WaitQueueHead> {
        if let Some(queue) = self.queue() {
            return Ok(queue);
        }
        let created = head_into_raw(KBox::pin_init(WaitQueueHead::new(), flags)?);
        // INVARIANT: `waiters` goes from null to a pinned, initialised head, once.
        match self.waiters.compare_exchange(
            ptr::null_mut(),
            created,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: The channel owns `created` now and frees it only when dropped, which
            // cannot happen while `self` is borrowed.
            Ok(_) => Ok(unsafe { &*created }),
            Err(existing) => {
                // SAFETY: `created` came from `KBox::into_raw` and was never published.
                drop(unsafe { KBox::from_raw(created) });
                // SAFETY: A non-null `waiters` is a head owned by the channel (type invariant),
                // alive while `self` is borrowed; the acquire pairs with the release that
                // published it.
                Ok(unsafe { &*existing })
            }
        }
    }

    #[inline]
    fn queue(&self) -> Option<&WaitQueueHead> {
        // SAFETY: A non-null `waiters` is a pinned head owned by the channel (type invariant),
        // freed only when the channel is dropped, so it lives while `self` is borrowed; the
        // acquire pairs with the release of the compare-and-swap that published it.
        unsafe { self.waiters.load(Ordering::Acquire).as_ref() }
    }

    /// Copies the message to the `capacity` bytes at user address `destination`; returns its
    /// length and its number ([`Channel::current`]). Never returns a torn message; allocates
    /// nothing, writes no memory of the channel (unless writers keep overlapping, then it
    /// takes the writers' lock once).
    ///
    /// Errors: `EWOULDBLOCK` if there is no message yet, `ENOSPC` if `capacity` is smaller
    /// than the message (nothing is copied), `EFAULT` if `destination` cannot be written (some
    /// bytes may have been).
    #[inline]
    pub(crate) fn read(&self, destination: UserPtr, capacity: usize) -> Result<(usize, u32)> {
        for _ in 0..OPTIMISTIC_READS {
            let start = self.lock.read_begin();
            let len = self.len.load(Ordering::Relaxed) as usize;
            if len == 0 {
                // Never 0 again once a message was stored: there was none at `start`.
                return Err(EAGAIN);
            }
            if len > capacity {
                if self.lock.read_retry(start) {
                    continue;
                }
                return Err(ENOSPC);
            }
            // SAFETY: `blocks` is valid for reads of `MAX_MESSAGE_LEN >= len` bytes (`len` is in
            // range: type invariant) as long as `self` is borrowed. A writer may store into it
            // meanwhile: the copy is the user-copy routine's, and `read_retry` below discards
            // what it copied then.
            unsafe { copy_to_user(destination, self.blocks.as_ptr().cast::<u8>(), len) }?;
            if !self.lock.read_retry(start) {
                return Ok((len, start));
            }
        }
        self.read_excluding_writers(destination, capacity)
    }

    /// [`Channel::read`] for a reader that writers keep overtaking: copies the message to the
    /// stack with writers excluded, then to user memory with no lock held.
    #[cold]
    fn read_excluding_writers(
        &self,
        destination: UserPtr,
        capacity: usize,
    ) -> Result<(usize, u32)> {
        let mut words = [[0u8; WORD]; BLOCK * BLOCKS];
        let (len, sequence) = {
            let _exclusive = self.lock.read_exclusive();
            // No writer runs now, so the sequence is even and stays so until the guard drops.
            let sequence = self.lock.read_begin();
            for (to, from) in words.iter_mut().zip(self.blocks.iter().flatten()) {
                *to = from.load(Ordering::Relaxed).to_ne_bytes();
            }
            (self.len.load(Ordering::Relaxed) as usize, sequence)
        };
        if len == 0 {
            return Err(EAGAIN);
        }
        if len > capacity {
            return Err(ENOSPC);
        }
        // SAFETY: `words` is `MAX_MESSAGE_LEN` contiguous initialised bytes and
        // `len <= MAX_MESSAGE_LEN` (type invariant).
        let message = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) };
        UserSlice::new(destination, len)
            .writer()
            .write_slice(message)?;
        Ok((len, sequence))
    }
}

/// The pinned wait queue head `head` as the raw pointer a channel owns it through (freed with
/// `KBox::from_raw`).
fn head_into_raw(head: Pin<KBox<WaitQueueHead>>) -> *mut WaitQueueHead {
    // SAFETY: The head is not moved out of its allocation: a channel only hands out shared
    // references to it and frees it with `KBox::from_raw` (dropping it in place).
    KBox::into_raw(unsafe { Pin::into_inner_unchecked(head) })
}

#[pinned_drop]
impl PinnedDrop for Channel {
    fn drop(self: Pin<&mut Self>) {
        let waiters = self.waiters.swap(ptr::null_mut(), Ordering::Relaxed);
        if !waiters.is_null() {
            // SAFETY: A non-null `waiters` came from `KBox::into_raw` and is owned by the
            // channel (type invariant). Nobody waits on it any more: every poll registration
            // ends before its file is released, and the channel outlives every open file of
            // its slot.
            drop(unsafe { KBox::from_raw(waiters) });
        }
    }
}
