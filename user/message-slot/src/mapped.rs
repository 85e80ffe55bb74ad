// SPDX-License-Identifier: GPL-2.0

//! The mapped reader: a channel's [`Record`] mapped read-only into this process
//! ([`Slot::map_channel`]), read without a system call.
//!
//! The kernel is the record's only writer (message_slot(4) and [`Record`] give the protocol).
//! The reader's side is [`read_record`], a function over `&Record` so that the host's unit
//! tests run it against a record in ordinary memory with a thread writing as the kernel does.
//! Every load of mapped memory goes through the record's atomics, each a relaxed load of at
//! most 8 bytes: the loads the standard library guarantees on read-only memory (on the 64-bit
//! targets this module is built for); the acquire orderings come from fences.

use std::ffi::c_void;
use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::event::{epoll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{MapFlags, ProtFlags};

use crate::uapi::{Record, MAPPED_READ_ATTEMPTS, MAX_MESSAGE_LEN, RECORD_SIZE, RECORD_WORDS};
use crate::{Error, Operation, Result, Slot, Wake, MSG_SLOT_RECORD_OFFSET};

/// The bytes of one message word.
const WORD_BYTES: usize = std::mem::size_of::<u64>();

/// One attempt of the reader protocol on `record`: `None` if a write overlapped it (the
/// sequence was odd, or changed while the attempt loaded the record); else the record's
/// sequence and what `read(2)` would return (the length, the message copied into `buf`;
/// `EWOULDBLOCK` without a message; `ENOSPC` if `buf` is too short, nothing copied).
fn attempt(record: &Record, buf: &mut [u8]) -> Option<(u32, std::result::Result<usize, Errno>)> {
    let before = record.sequence.load(Ordering::Relaxed);
    // Orders the loads below after the sequence's (the kernel's release store made it even).
    fence(Ordering::Acquire);
    if before % 2 == 1 {
        return None;
    }
    // Clamped: a length over MAX_MESSAGE_LEN can only be a torn one, which the sequence check
    // below rejects.
    let length = (record.length.load(Ordering::Relaxed) as usize).min(MAX_MESSAGE_LEN);
    let mut words = [0u64; RECORD_WORDS];
    for (word, mapped) in words
        .iter_mut()
        .zip(&record.message)
        .take(length.div_ceil(WORD_BYTES))
    {
        *word = mapped.load(Ordering::Relaxed);
    }
    // Orders the loads above before the sequence's second load.
    fence(Ordering::Acquire);
    if record.sequence.load(Ordering::Relaxed) != before {
        return None;
    }
    let result = if length == 0 {
        Err(Errno::WOULDBLOCK)
    } else if let Some(out) = buf.get_mut(..length) {
        // Whole words as 8-byte stores, the last part-word byte by byte (a copy of a
        // part-word's length per word would be a `memcpy` call each).
        let mut whole = out.chunks_exact_mut(WORD_BYTES);
        for (bytes, word) in (&mut whole).zip(words) {
            bytes.copy_from_slice(&word.to_ne_bytes());
        }
        if let Some(word) = words.get(length / WORD_BYTES) {
            for (byte, value) in whole.into_remainder().iter_mut().zip(word.to_ne_bytes()) {
                *byte = value;
            }
        }
        Ok(length)
    } else {
        Err(Errno::NOSPC)
    };
    Some((before, result))
}

/// The reader protocol on `record`: a channel's record mapped from the device
/// ([`Slot::map_channel`] does this for you), or the same protocol on memory of the caller's
/// own. At most [`MAPPED_READ_ATTEMPTS`] attempts, each two loads of the sequence around the
/// length's and the words' (all atomic); `None` if a write overlapped every one (then call
/// `read(2)`, which waits for the writer instead of spinning); else the record's sequence and
/// what `read(2)` would return: the length, the message copied into `buf`; `EWOULDBLOCK`
/// without a message; `ENOSPC` if `buf` is shorter than the message (nothing copied). No
/// system call.
pub fn read_record(
    record: &Record,
    buf: &mut [u8],
) -> Option<(u32, std::result::Result<usize, Errno>)> {
    (0..MAPPED_READ_ATTEMPTS).find_map(|_| attempt(record, buf))
}

/// `MSG_SLOT_RECORD_OFFSET` as rustix's ioctl: no argument, the offset as the return value.
struct RecordOffsetRequest;

// SAFETY: the request takes no argument (a null pointer, nothing read or written in this
// process), and its output is the ioctl's non-negative return value, nothing else.
unsafe impl Ioctl for RecordOffsetRequest {
    type Output = usize;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        MSG_SLOT_RECORD_OFFSET as Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut c_void,
    ) -> rustix::io::Result<Self::Output> {
        usize::try_from(out).map_err(|_| Errno::PROTO)
    }
}

/// A channel's [`Record`], mapped read-only: what [`Slot::map_channel`] returns. Reads the
/// channel's message from memory ([`read`](Self::read), [`try_read`](Self::try_read)) and
/// tells whether it changed ([`changed_since`](Self::changed_since),
/// [`wait_for_change`](Self::wait_for_change)). It keeps showing the channel the slot was
/// bound to when it was made, even if the slot is re-bound; dropping it unmaps the page.
#[derive(Debug)]
pub struct MappedChannel<'slot> {
    slot: &'slot Slot,
    /// The mapped page: `page_size` bytes, `PROT_READ`, `MAP_SHARED`.
    page: *mut c_void,
    page_size: usize,
    /// Where the channel's record is in the page (a multiple of 8, at most
    /// `page_size - RECORD_SIZE`).
    record_offset: usize,
    /// An edge-triggered epoll instance watching the slot, made by the first
    /// [`wait_for_change`](Self::wait_for_change).
    changes: OnceLock<OwnedFd>,
}

// SAFETY: the page is shared, read-only memory that stays mapped until drop; every access to
// it is an atomic load through `&Record`, which any thread may do at any time. `&Slot` and
// `OnceLock<OwnedFd>` are `Send` and `Sync`.
unsafe impl Send for MappedChannel<'_> {}
// SAFETY: as for `Send`: nothing in it is tied to a thread or written through `&self`
// except the `OnceLock`, which is `Sync`.
unsafe impl Sync for MappedChannel<'_> {}

impl Slot {
    /// Maps the bound channel's record read-only (`mmap` of one page, `PROT_READ`,
    /// `MAP_SHARED`, then `MSG_SLOT_RECORD_OFFSET` for where the record is in it), creating
    /// the channel without a message if it does not exist yet. The mapping shows this channel
    /// until it is dropped (re-binding the slot does not change it).
    ///
    /// # Errors
    ///
    /// The device's, as message_slot(4) gives them for `mmap` and `MSG_SLOT_RECORD_OFFSET`
    /// ([`Operation::Map`]):
    /// - `EINVAL` ([`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument)): the file
    ///   is bound to no channel;
    /// - `EACCES` ([`ErrorKind::Other`](crate::ErrorKind::Other)): the file was opened
    ///   write-only ([`Slot::open_write_only`]);
    /// - `ENOSPC` ([`ErrorKind::SlotFull`](crate::ErrorKind::SlotFull)): the channel is new and
    ///   the slot already holds `max_channels` channels;
    /// - `ENOMEM` ([`ErrorKind::Other`](crate::ErrorKind::Other)): the channel or its record
    ///   page is new and there is no memory for it.
    pub fn map_channel(&self) -> Result<MappedChannel<'_>> {
        let error = |errno: Errno| Error::new(Operation::Map, errno.raw_os_error());
        let page_size = rustix::param::page_size();
        // SAFETY: a new mapping (null address, no MAP_FIXED) replaces no memory of this
        // process; it is unmapped only by the `MappedChannel` that owns it.
        let page = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                page_size,
                ProtFlags::READ,
                MapFlags::SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(error)?;
        // Owned from here: dropped (unmapped) on every error below.
        let mut mapped = MappedChannel {
            slot: self,
            page,
            page_size,
            record_offset: 0,
            changes: OnceLock::new(),
        };
        // SAFETY: MSG_SLOT_RECORD_OFFSET takes no argument and touches no memory of ours.
        let offset =
            unsafe { rustix::ioctl::ioctl(&self.fd, RecordOffsetRequest) }.map_err(error)?;
        if offset % WORD_BYTES != 0 || offset > page_size.saturating_sub(RECORD_SIZE) {
            return Err(error(Errno::PROTO));
        }
        mapped.record_offset = offset;
        Ok(mapped)
    }
}

impl MappedChannel<'_> {
    /// The channel's record.
    fn record(&self) -> &Record {
        // SAFETY: `page` is a live mapping of `page_size` readable bytes until `self` is
        // dropped, which the returned borrow of `self` outlasts no longer. `record_offset` is
        // a multiple of 8 (the record's alignment; the page is page-aligned) with the whole
        // record inside the page, as `map_channel` checked. `Record` is nothing but atomics,
        // so the kernel writing it meanwhile is allowed (atomics are `UnsafeCell`s), every
        // byte pattern is a valid value, and the only accesses made through the reference are
        // relaxed loads of at most 8 bytes, which work on read-only memory on the 64-bit
        // targets this module is compiled for (`core::sync::atomic`, "Atomic accesses to
        // read-only memory").
        unsafe {
            &*self
                .page
                .cast::<u8>()
                .add(self.record_offset)
                .cast::<Record>()
        }
    }

    /// Copies the channel's message into `buf` without a system call, as
    /// [`Slot::receive`] would: at most [`MAPPED_READ_ATTEMPTS`] attempts, then (if a write
    /// overlapped every one) one `read(2)` on the slot, which waits for the writer.
    ///
    /// Returns the message length.
    ///
    /// # Errors
    ///
    /// As [`Slot::receive`]'s ([`Operation::Receive`]):
    /// - `EWOULDBLOCK` ([`ErrorKind::NoMessage`](crate::ErrorKind::NoMessage)): the channel
    ///   holds no message;
    /// - `ENOSPC` ([`ErrorKind::BufferTooSmall`](crate::ErrorKind::BufferTooSmall)): `buf` is
    ///   shorter than the message.
    ///
    /// The fallback reads the channel the slot is bound to: if the slot was re-bound since
    /// the mapping was made, that is another channel (map a slot that stays bound instead).
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        match self.try_read(buf) {
            Some(result) => result,
            None => self.slot.receive(buf),
        }
    }

    /// Returns the channel's message ([`read`](Self::read) into a buffer of
    /// [`MAX_MESSAGE_LEN`] bytes).
    pub fn read_message(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0; MAX_MESSAGE_LEN];
        let len = self.read(&mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Like [`read`](Self::read) without the fallback: no system call at all; `None` if a
    /// write overlapped every attempt.
    pub fn try_read(&self, buf: &mut [u8]) -> Option<Result<usize>> {
        self.try_read_with_sequence(buf).map(|(result, _)| result)
    }

    /// Like [`try_read`](Self::try_read), with the record's sequence number at the message it
    /// read (or found missing): pass it to [`changed_since`](Self::changed_since) or
    /// [`wait_for_change`](Self::wait_for_change) to learn of the next write.
    pub fn try_read_with_sequence(&self, buf: &mut [u8]) -> Option<(Result<usize>, u32)> {
        let (sequence, result) = read_record(self.record(), buf)?;
        let result = result.map_err(|errno| Error::new(Operation::Receive, errno.raw_os_error()));
        Some((result, sequence))
    }

    /// The record's sequence number: even when stable, odd while the kernel writes it; every
    /// write adds 2. One atomic load.
    pub fn sequence(&self) -> u32 {
        let sequence = self.record().sequence.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        sequence
    }

    /// Whether the channel was written (or is being written) since its sequence number was
    /// `sequence` ([`sequence`](Self::sequence),
    /// [`try_read_with_sequence`](Self::try_read_with_sequence)). One atomic load.
    pub fn changed_since(&self, sequence: u32) -> bool {
        self.sequence() != sequence
    }

    /// Where the record is in the mapped page (`MSG_SLOT_RECORD_OFFSET`'s answer), in bytes.
    pub fn record_offset(&self) -> usize {
        self.record_offset
    }

    /// Waits until [`changed_since(sequence)`](Self::changed_since), until `other` becomes
    /// readable (or reports an error or hang-up) or until `timeout` passes (`None`: no
    /// limit), and says which happened first (a change wins a tie): [`Wake::Message`],
    /// [`Wake::Other`], [`Wake::TimedOut`].
    ///
    /// Mapped reads do not clear the slot's `POLLIN` (only `read(2)` does), so this waits
    /// with `poll(2)` on an edge-triggered epoll instance that reports each write's wake-up.
    /// The instance is made by the first call and, as epoll does, follows the channel the
    /// slot is bound to then: do not re-bind the slot before it.
    ///
    /// # Errors
    ///
    /// [`Operation::Wait`]: the system's, creating the epoll instance or polling;
    /// `EINTR` ([`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted)): a signal came.
    pub fn wait_for_change(
        &self,
        sequence: u32,
        timeout: Option<Duration>,
        other: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<Wake> {
        let error = |errno: Errno| Error::new(Operation::Wait, errno.raw_os_error());
        let changes = match self.changes.get() {
            Some(changes) => changes,
            None => {
                let changes = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(error)?;
                epoll::add(
                    &changes,
                    self.slot,
                    epoll::EventData::new_u64(0),
                    epoll::EventFlags::IN | epoll::EventFlags::ET,
                )
                .map_err(error)?;
                // Another thread's instance, registered as early, may have won the race.
                let _ = self.changes.set(changes);
                self.changes.get().expect("set above")
            }
        };
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            // Registered before this load: a write after it wakes the instance.
            if self.changed_since(sequence) {
                return Ok(Wake::Message);
            }
            let left = deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            let mut fds = vec![PollFd::new(changes, PollFlags::IN)];
            if let Some(other) = &other {
                fds.push(PollFd::new(other, PollFlags::IN));
            }
            let ready = rustix::event::poll(&mut fds, left.as_ref()).map_err(error)?;
            let woken = !fds[0].revents().is_empty();
            let other_ready = fds.get(1).is_some_and(|fd| !fd.revents().is_empty());
            if woken {
                // Take the wake-ups off the instance (edge-triggered: until the next write).
                let mut events = [std::mem::MaybeUninit::uninit(); 4];
                epoll::wait(changes, &mut events[..], Some(&Timespec::default())).map_err(error)?;
            }
            if self.changed_since(sequence) {
                return Ok(Wake::Message);
            }
            if other_ready {
                return Ok(Wake::Other);
            }
            if ready == 0 && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(Wake::TimedOut);
            }
        }
    }
}

impl Drop for MappedChannel<'_> {
    fn drop(&mut self) {
        // SAFETY: `page` is the mapping of `page_size` bytes that `map_channel` made and only
        // `self` owns; no reference into it outlives `self` (`record` borrows `self`).
        // munmap of a whole live mapping does not fail.
        let _ = unsafe { rustix::mm::munmap(self.page, self.page_size) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
    use std::thread;

    fn record() -> Record {
        Record {
            sequence: AtomicU32::new(0),
            length: AtomicU32::new(0),
            message: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The kernel's writer protocol: sequence odd, the words (message, then zeros) and the
    /// length, sequence even.
    fn write(record: &Record, message: &[u8]) {
        let sequence = record.sequence.load(Ordering::Relaxed);
        record.sequence.store(sequence + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let mut bytes = [0u8; MAX_MESSAGE_LEN];
        bytes[..message.len()].copy_from_slice(message);
        for (word, chunk) in record.message.iter().zip(bytes.chunks(WORD_BYTES)) {
            word.store(
                u64::from_ne_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        record.length.store(message.len() as u32, Ordering::Relaxed);
        record.sequence.store(sequence + 2, Ordering::Release);
    }

    /// `/dev/zero` maps, but has no `MSG_SLOT_RECORD_OFFSET`: the error names the mapping, and
    /// the page mapped before the ioctl is unmapped again.
    #[test]
    fn a_failed_map_leaves_nothing_mapped() {
        let zero_mappings = || {
            std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .filter(|line| line.ends_with(" /dev/zero"))
                .count()
        };
        let file = std::fs::File::open("/dev/zero").unwrap();
        let slot = Slot::from_fd(file.into());
        let before = zero_mappings();
        let error = slot.map_channel().unwrap_err();
        assert_eq!(error.operation(), &Operation::Map);
        assert_eq!(error.errno(), Errno::NOTTY.raw_os_error());
        assert_eq!(zero_mappings(), before, "the page stayed mapped");
        // A file that cannot be mapped at all fails at mmap.
        let slot = Slot::from_fd(std::fs::File::open("/proc/self/stat").unwrap().into());
        assert_eq!(
            slot.map_channel().unwrap_err().errno(),
            Errno::NODEV.raw_os_error()
        );
    }

    #[test]
    fn a_new_record_holds_no_message() {
        let record = record();
        let mut buf = [0; MAX_MESSAGE_LEN];
        assert_eq!(
            read_record(&record, &mut buf),
            Some((0, Err(Errno::WOULDBLOCK)))
        );
        // Even into an empty buffer, as read(2): no message comes before ENOSPC.
        assert_eq!(
            read_record(&record, &mut []),
            Some((0, Err(Errno::WOULDBLOCK)))
        );
    }

    #[test]
    fn reads_every_length_with_its_sequence() {
        let record = record();
        for len in 1..=MAX_MESSAGE_LEN {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            write(&record, &message);
            let mut buf = [0xEE; MAX_MESSAGE_LEN];
            assert_eq!(
                read_record(&record, &mut buf),
                Some((2 * len as u32, Ok(len)))
            );
            assert_eq!(&buf[..len], message, "length {len}");
            assert!(buf[len..].iter().all(|&b| b == 0xEE), "wrote past {len}");
            // Exactly as long as the message is enough.
            let mut exact = vec![0; len];
            assert_eq!(read_record(&record, &mut exact).map(|r| r.1), Some(Ok(len)));
            assert_eq!(exact, message);
        }
    }

    #[test]
    fn short_buffer_enospc_copies_nothing() {
        let record = record();
        write(&record, b"twelve bytes");
        let mut buf = [0xEE; 11];
        assert_eq!(read_record(&record, &mut buf), Some((2, Err(Errno::NOSPC))));
        assert_eq!(buf, [0xEE; 11]);
    }

    #[test]
    fn odd_sequence_fails_every_attempt() {
        let record = record();
        write(&record, b"old");
        // A writer stopped half-way (or preempted): the reader gives up, never spins.
        record.sequence.store(3, Ordering::Relaxed);
        let mut buf = [0; MAX_MESSAGE_LEN];
        assert_eq!(read_record(&record, &mut buf), None);
        record.sequence.store(4, Ordering::Relaxed);
        assert_eq!(read_record(&record, &mut buf).map(|r| r.1), Some(Ok(3)));
    }

    #[test]
    fn a_torn_length_is_clamped_and_rejected() {
        let record = record();
        write(&record, b"m");
        record.length.store(u32::MAX, Ordering::Relaxed);
        // A stable record with an impossible length: clamped, never read past the record.
        let mut buf = [0; MAX_MESSAGE_LEN];
        assert_eq!(
            read_record(&record, &mut buf).map(|r| r.1),
            Some(Ok(MAX_MESSAGE_LEN))
        );
    }

    /// Sets the flag when dropped, also when the reader's assertion unwinds: the writer
    /// thread stops and the scope ends (and the test fails rather than hangs).
    struct StopOnDrop<'a>(&'a AtomicBool);

    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// A writer thread doing the kernel's protocol with messages whose every byte and length
    /// say which write they belong to; the reader must never return a mix of two, nor a
    /// length that is not its message's, and must see overlapped attempts.
    #[test]
    fn concurrent_writer_never_yields_a_torn_message() {
        const WHOLE_READS: u64 = 200_000;
        let record = record();
        let done = AtomicBool::new(false);
        let (mut whole, mut overlapped) = (0u64, 0u64);
        thread::scope(|scope| {
            scope.spawn(|| {
                let mut n = 0u32;
                while !done.load(Ordering::Relaxed) {
                    n += 1;
                    let len = 1 + (n as usize % MAX_MESSAGE_LEN);
                    write(&record, &vec![(n % 251) as u8; len]);
                }
            });
            let _stop = StopOnDrop(&done);
            let mut buf = [0; MAX_MESSAGE_LEN];
            let mut last = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while (whole < WHOLE_READS || overlapped == 0) && Instant::now() < deadline {
                match read_record(&record, &mut buf) {
                    None => overlapped += 1,
                    Some((sequence, Err(errno))) => {
                        assert_eq!((sequence, errno), (0, Errno::WOULDBLOCK));
                    }
                    Some((sequence, Ok(len))) => {
                        whole += 1;
                        assert_eq!(sequence % 2, 0);
                        assert!(sequence >= last, "sequence went back");
                        last = sequence;
                        let n = sequence / 2;
                        assert_eq!(len, 1 + (n as usize % MAX_MESSAGE_LEN), "length of {n}");
                        assert!(
                            buf[..len].iter().all(|&b| b == (n % 251) as u8),
                            "torn message {n}: {:?}",
                            &buf[..len]
                        );
                    }
                }
            }
        });
        assert!(
            whole >= WHOLE_READS && overlapped > 0,
            "{whole} whole reads, {overlapped} overlapped attempts"
        );
    }
}
