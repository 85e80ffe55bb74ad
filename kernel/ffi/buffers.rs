// SPDX-License-Identifier: GPL-2.0

//! Message buffers that move between channels and open files, so that a message is copied
//! exactly once on the way in and once on the way out.
//!
//! A write fills a buffer that no channel holds (a [`SpareBuffer`]) straight from user space,
//! then swaps it into the channel's [`MessageCell`]; the channel's previous buffer becomes the
//! writer's spare. A read copies straight from the cell's current buffer to user space and
//! then checks that buffer's generation: a reader that raced with the buffer being swapped
//! out and refilled retries, so it never returns a torn message, and a failed write never
//! touches the channel's message.
//!
//! A reader may still be copying from a buffer after it was swapped out, so buffers are never
//! freed while in use: a [`BufferPool`] recycles them and frees them only when it is dropped,
//! which cannot happen while any cell or spare of the pool (and so any reader) exists.

use core::{
    cell::UnsafeCell,
    ffi::c_void,
    mem::ManuallyDrop,
    ptr::{self, NonNull},
    sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    alloc::Flags,
    bindings,
    prelude::*,
    sync::{Arc, SpinLock},
    uaccess::UserPtr,
};

/// Bytes a buffer holds.
pub(crate) const CAPACITY: usize = crate::uapi::MAX_MESSAGE_LEN;

/// One message buffer.
///
/// # Invariants
///
/// `generation` is odd exactly while the buffer's owner (the holder of its [`SpareBuffer`])
/// writes `len` and `bytes`, and it never decreases. `len <= CAPACITY`.
struct Buffer {
    generation: AtomicU32,
    len: AtomicU32,
    /// Link in the pool's free list; only used under the pool's lock.
    next: AtomicPtr<Buffer>,
    bytes: UnsafeCell<[u8; CAPACITY]>,
}

impl Buffer {
    /// Writes the bytes with `fill`, which returns the message's length, or `None` if it
    /// failed (the bytes are then garbage); returns whether it succeeded. The generation is
    /// odd meanwhile and moves on either way, so concurrent readers retry.
    ///
    /// # Safety
    ///
    /// The caller owns the buffer (nobody else writes it concurrently), and `fill` writes and
    /// returns at most `CAPACITY` bytes.
    #[inline]
    unsafe fn write(&self, fill: impl FnOnce(*mut u8) -> Option<u32>) -> bool {
        let generation = self.generation.load(Ordering::Relaxed);
        // INVARIANT: Odd while writing; only the owner changes it, always upwards.
        self.generation
            .store(generation.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd generation before the byte stores (pairs with the readers' acquire
        // fence before they re-read the generation).
        fence(Ordering::Release);
        let len = fill(self.bytes.get().cast::<u8>());
        if let Some(len) = len {
            // INVARIANT: `len <= CAPACITY` (safety requirement).
            self.len.store(len, Ordering::Relaxed);
        }
        self.generation
            .store(generation.wrapping_add(2), Ordering::Release);
        len.is_some()
    }
}

/// The free list of a [`BufferPool`].
///
/// # Invariants
///
/// `head` is null or the first of a list (linked through `next`) of buffers owned by the list.
struct FreeList {
    head: *mut Buffer,
}

// SAFETY: The list owns its buffers, which may be used and freed on any thread.
unsafe impl Send for FreeList {}

/// Recycles buffers; frees them when dropped.
///
/// # Invariants
///
/// Every buffer the pool allocated is held by exactly one of: its free list, a
/// [`SpareBuffer`] or [`SpareHolder`] borrowing the pool, a [`MessageCell`] holding a
/// reference to the pool. Buffers are allocated as `KBox<Buffer>` and only freed in `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct BufferPool {
    #[pin]
    free: SpinLock<FreeList>,
}

impl BufferPool {
    /// An empty pool.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            free <- kernel::new_spinlock!(FreeList { head: ptr::null_mut() }, "BufferPool::free"),
        })
    }

    /// A buffer from the free list, or a new one allocated with `flags`.
    fn get(&self, flags: Flags) -> Result<NonNull<Buffer>> {
        {
            let mut free = self.free.lock();
            if let Some(buffer) = NonNull::new(free.head) {
                // SAFETY: `buffer` is owned by the free list (type invariant), so it is alive
                // and its `next` is only used under the lock, which is held.
                free.head = unsafe { buffer.as_ref() }.next.load(Ordering::Relaxed);
                return Ok(buffer);
            }
        }
        let buffer = KBox::new(
            Buffer {
                generation: AtomicU32::new(0),
                len: AtomicU32::new(0),
                next: AtomicPtr::new(ptr::null_mut()),
                bytes: UnsafeCell::new([0; CAPACITY]),
            },
            flags,
        )?;
        // SAFETY: `KBox::into_raw` never returns null.
        Ok(unsafe { NonNull::new_unchecked(KBox::into_raw(buffer)) })
    }

    /// Returns `buffer` to the free list.
    ///
    /// # Safety
    ///
    /// The caller owns `buffer`, a buffer of this pool, and gives up ownership.
    unsafe fn put(&self, buffer: NonNull<Buffer>) {
        let mut free = self.free.lock();
        // SAFETY: The caller owns `buffer`, so it is alive.
        unsafe { buffer.as_ref() }
            .next
            .store(free.head, Ordering::Relaxed);
        // INVARIANT: The list takes over the caller's ownership of `buffer`.
        free.head = buffer.as_ptr();
    }
}

#[pinned_drop]
impl PinnedDrop for BufferPool {
    fn drop(self: Pin<&mut Self>) {
        // Millions of buffers may be freed here (at module unload): not under the lock, and
        // letting others run.
        let mut next = core::mem::replace(&mut self.free.lock().head, ptr::null_mut());
        while let Some(buffer) = NonNull::new(next) {
            // SAFETY: The list owned `buffer`, which came from `KBox::into_raw` (type invariant),
            // and now this loop does. Nothing else can reach it: every cell and spare borrows or
            // references the pool, so none exists while the pool is dropped, and without them
            // there is no reader.
            let buffer = unsafe { KBox::from_raw(buffer.as_ptr()) };
            next = buffer.next.load(Ordering::Relaxed);
            drop(buffer);
            super::cond_resched();
        }
    }
}

/// A buffer owned by one writer, which no channel holds; returned to its pool when dropped.
///
/// # Invariants
///
/// `buffer` is a buffer of `pool`, owned by this value. If `filled`, it holds a whole message:
/// its generation is even and `1 <= len <= CAPACITY`.
pub(crate) struct SpareBuffer<'a> {
    buffer: NonNull<Buffer>,
    pool: &'a BufferPool,
    filled: bool,
}

impl<'a> SpareBuffer<'a> {
    /// A spare buffer of `pool`, recycled or allocated with `flags`.
    pub(crate) fn new(pool: &'a BufferPool, flags: Flags) -> Result<Self> {
        // INVARIANT: The buffer comes from `pool` and is owned by the new value.
        Ok(Self {
            buffer: pool.get(flags)?,
            pool,
            filled: false,
        })
    }

    #[inline]
    fn buffer(&self) -> &Buffer {
        // SAFETY: The buffer is owned by `self` (type invariant), so it is alive.
        unsafe { self.buffer.as_ref() }
    }

    /// Fills the buffer with the `source.len()` bytes at `source`: `EINVAL` unless that is
    /// `1..=CAPACITY`, `EFAULT` if user memory cannot be read (the buffer is then unfilled).
    /// User memory is read once.
    #[inline]
    pub(crate) fn fill_from_user(&mut self, source: UserSource) -> Result {
        let len = source.len;
        if len == 0 || len > CAPACITY {
            return Err(EINVAL);
        }
        let copy = |bytes: *mut u8| {
            // SAFETY: `bytes` is valid for writes of `CAPACITY >= len` bytes while the buffer is
            // alive; `_copy_from_user` checks the user range itself.
            let uncopied = unsafe {
                bindings::_copy_from_user(
                    bytes.cast::<c_void>(),
                    source.ptr as *const c_void,
                    len as _,
                )
            };
            (uncopied == 0).then_some(len as u32)
        };
        // SAFETY: `self` owns the buffer (type invariant); `copy` writes and returns
        // `len <= CAPACITY` bytes.
        let copied = unsafe { self.buffer().write(copy) };
        // INVARIANT: Filled only if the whole message was copied; the generation is even again.
        self.filled = copied;
        if copied {
            Ok(())
        } else {
            Err(EFAULT)
        }
    }
}

impl Drop for SpareBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: `self` owns the buffer, which belongs to `self.pool` (type invariant).
        unsafe { self.pool.put(self.buffer) };
    }
}

/// One open file's spare buffer, taken by a write and given back afterwards.
///
/// # Invariants
///
/// `spare` is null or a buffer of `pool` owned by the holder.
pub(crate) struct SpareHolder {
    pool: Arc<BufferPool>,
    spare: AtomicPtr<Buffer>,
}

impl SpareHolder {
    /// A holder with a spare buffer of `pool`, allocated (or recycled) with `flags`.
    pub(crate) fn new(pool: Arc<BufferPool>, flags: Flags) -> Result<Self> {
        let spare = pool.get(flags)?;
        // INVARIANT: `spare` comes from `pool` and is owned by the holder.
        Ok(Self {
            pool,
            spare: AtomicPtr::new(spare.as_ptr()),
        })
    }

    /// The held spare buffer, or a new one allocated with `flags` if another write on the
    /// same file holds it.
    #[inline]
    pub(crate) fn take(&self, flags: Flags) -> Result<SpareBuffer<'_>> {
        match NonNull::new(self.spare.swap(ptr::null_mut(), Ordering::Acquire)) {
            // INVARIANT: The holder's ownership of `buffer`, a buffer of `self.pool`, moves to
            // the `SpareBuffer`.
            Some(buffer) => Ok(SpareBuffer {
                buffer,
                pool: &self.pool,
                filled: false,
            }),
            None => SpareBuffer::new(&self.pool, flags),
        }
    }

    /// Keeps `spare` for the next write (or returns it to the pool if a buffer is held
    /// already).
    #[inline]
    pub(crate) fn give_back(&self, spare: SpareBuffer<'_>) {
        if !ptr::eq(spare.pool, &*self.pool) {
            return;
        }
        let spare = ManuallyDrop::new(spare);
        if self
            .spare
            .compare_exchange(
                ptr::null_mut(),
                spare.buffer.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // SAFETY: `spare` owned its buffer, a buffer of `self.pool`, and is not dropped.
            unsafe { self.pool.put(spare.buffer) };
        }
        // INVARIANT: Otherwise the holder took over the ownership of the buffer.
    }
}

impl Drop for SpareHolder {
    fn drop(&mut self) {
        if let Some(buffer) = NonNull::new(*self.spare.get_mut()) {
            // SAFETY: The holder owns `buffer`, a buffer of `self.pool` (type invariant).
            unsafe { self.pool.put(buffer) };
        }
    }
}

/// A message that readers copy out without locks and writers replace by swapping buffers.
///
/// # Invariants
///
/// `current` is a buffer of `pool` owned by the cell, so nobody writes it: its generation is
/// even and it holds a whole message, `1 <= len <= CAPACITY`. (A reader may still hold a
/// buffer the cell has swapped out since, which its new owner may be writing.)
pub(crate) struct MessageCell {
    pool: Arc<BufferPool>,
    current: AtomicPtr<Buffer>,
}

impl MessageCell {
    /// A cell holding a copy of the message in `filled` (`EINVAL` if it holds none or belongs
    /// to another pool), in a buffer of `pool` allocated (or recycled) with `flags`.
    pub(crate) fn new(
        pool: &Arc<BufferPool>,
        filled: &SpareBuffer<'_>,
        flags: Flags,
    ) -> Result<Self> {
        if !filled.filled || !ptr::eq(filled.pool, &**pool) {
            return Err(EINVAL);
        }
        let source = filled.buffer();
        let len = source.len.load(Ordering::Relaxed);
        let buffer = SpareBuffer::new(pool, flags)?;
        let copy = |bytes: *mut u8| {
            // SAFETY: Both buffers are alive and distinct, and `len <= CAPACITY` (type invariant
            // of `Buffer`); `filled`'s bytes are not written while it is borrowed.
            unsafe {
                ptr::copy_nonoverlapping(source.bytes.get().cast::<u8>(), bytes, len as usize)
            };
            Some(len)
        };
        // SAFETY: `buffer` owns its buffer; `copy` writes and returns `len <= CAPACITY` bytes.
        unsafe { buffer.buffer().write(copy) };
        let buffer = ManuallyDrop::new(buffer);
        // INVARIANT: The cell takes over the ownership of a buffer of `pool` now holding a copy
        // of `filled`'s whole message.
        Ok(Self {
            pool: pool.clone(),
            current: AtomicPtr::new(buffer.buffer.as_ptr()),
        })
    }

    /// Makes the message in `spare` the cell's message; `spare` gets the previous buffer.
    /// `EINVAL` (and no change) if `spare` holds no message or belongs to another pool.
    #[inline]
    pub(crate) fn replace(&self, spare: &mut SpareBuffer<'_>) -> Result {
        if !spare.filled || !ptr::eq(spare.pool, &*self.pool) {
            return Err(EINVAL);
        }
        // Release: the message is visible before the buffer is. Acquire: the previous
        // buffer's last write happened before `spare` writes it again.
        let previous = self.current.swap(spare.buffer.as_ptr(), Ordering::AcqRel);
        // INVARIANT: The cell owns the filled buffer of its pool that `spare` owned; `spare`
        // owns the cell's previous buffer (non-null, of the same pool), which holds a stale
        // message as far as `spare` is concerned.
        // SAFETY: `current` is never null (type invariant).
        spare.buffer = unsafe { NonNull::new_unchecked(previous) };
        spare.filled = false;
        Ok(())
    }

    /// Copies the message to `destination` and returns its length: `ENOSPC` (before touching
    /// user memory) if it is too small, `EFAULT` if user memory cannot be written.
    #[inline]
    pub(crate) fn copy_to_user(&self, destination: UserDestination) -> Result<usize> {
        loop {
            let buffer = self.current.load(Ordering::Acquire);
            // SAFETY: `buffer` is a buffer of `self.pool` (type invariant when loaded), which
            // frees buffers only when dropped; `self` keeps the pool alive, so `buffer` is
            // alive for this whole call even if another thread swaps it out meanwhile.
            let buffer = unsafe { &*buffer };
            let before = buffer.generation.load(Ordering::Acquire);
            // Still current with an even generation: the bytes are this cell's message (a
            // buffer swapped out can only come back after a write, which moves the generation).
            if before % 2 == 1 || !ptr::eq(self.current.load(Ordering::Acquire), buffer) {
                core::hint::spin_loop();
                continue;
            }
            let len = (buffer.len.load(Ordering::Relaxed) as usize).min(CAPACITY);
            let result = if destination.len < len {
                Err(ENOSPC)
            } else {
                // SAFETY: `buffer` is alive (see above) and holds `CAPACITY >= len` bytes, which
                // only its owner writes (never through a Rust reference), and readers discard
                // the copy unless the generation shows no write overlapped it.
                // `_copy_to_user` checks the user range itself.
                let uncopied = unsafe {
                    bindings::_copy_to_user(
                        destination.ptr as *mut c_void,
                        buffer.bytes.get().cast::<c_void>(),
                        len as _,
                    )
                };
                if uncopied == 0 {
                    Ok(len)
                } else {
                    Err(EFAULT)
                }
            };
            // Orders the copy's loads before re-reading the generation.
            fence(Ordering::Acquire);
            if buffer.generation.load(Ordering::Relaxed) == before {
                return result;
            }
        }
    }
}

impl Drop for MessageCell {
    fn drop(&mut self) {
        // SAFETY: The cell owns `current`, a non-null buffer of `self.pool` (type invariant).
        unsafe {
            self.pool
                .put(NonNull::new_unchecked(*self.current.get_mut()))
        };
    }
}

/// A user buffer a message is written from: `len` bytes at `ptr`.
pub(crate) struct UserSource {
    ptr: UserPtr,
    len: usize,
}

impl UserSource {
    /// The `len` bytes at user address `ptr` (checked when copied).
    #[inline]
    pub(crate) fn new(ptr: UserPtr, len: usize) -> Self {
        Self { ptr, len }
    }

    /// The length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A user buffer a message is read into: `len` bytes at `ptr`.
pub(crate) struct UserDestination {
    ptr: UserPtr,
    len: usize,
}

impl UserDestination {
    /// The `len` bytes at user address `ptr` (checked when copied).
    #[inline]
    pub(crate) fn new(ptr: UserPtr, len: usize) -> Self {
        Self { ptr, len }
    }
}
