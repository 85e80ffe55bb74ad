// SPDX-License-Identifier: GPL-2.0

//! A channel's record mapped read-only, as the tests of mapped reads need it: the mapping
//! itself with any arguments ([`Mapping::new`], the errno on failure), the record's offset
//! (`MSG_SLOT_RECORD_OFFSET`, [`record_offset`]), reads of it by the library's reader
//! ([`message_slot::read_record`]: [`MappedRecord::try_read`], and [`MappedRecord::read`],
//! which then falls back to `read(2)` and tells which answered) and the whole page as words
//! for the tests that account for every byte of it ([`Mapping::words`]). What the library's
//! `MappedChannel` does not offer: any mapping arguments, raw errnos, the page itself.
//!
//! Every load of mapped memory is an atomic load (through [`Record`] and `AtomicU64`), never
//! a plain read of memory the kernel writes.

use std::os::fd::{BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

pub use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use crate::sys::{raw_ioctl, raw_read};
pub use message_slot::{Record, MAPPED_READ_ATTEMPTS, MSG_SLOT_RECORD_OFFSET, RECORD_SIZE};

use message_slot::MAX_MESSAGE_LEN;

/// The system's page size: the one length a slot can be mapped with.
pub fn page_size() -> usize {
    crate::sys::page_size().unwrap_or(4096)
}

/// Records a page holds (30 on 4 KiB pages).
pub fn records_per_page() -> usize {
    page_size() / RECORD_SIZE
}

/// `ioctl(fd, MSG_SLOT_RECORD_OFFSET)`: the offset of the bound channel's record within a
/// mapping of it (creating the channel without a message if it does not exist), or the errno.
pub fn record_offset(fd: RawFd) -> Result<usize, i32> {
    raw_ioctl(fd, MSG_SLOT_RECORD_OFFSET, 0).map(|offset| offset as usize)
}

/// A mapping of a slot file, unmapped when dropped. It does not borrow the file: as the ABI
/// says, a mapping outlives `close` of the file it was made from.
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` is an address range; it is read only through atomics, from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, prot, flags, fd, offset)`, or the errno.
    pub fn new(
        fd: RawFd,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
        offset: u64,
    ) -> Result<Mapping, i32> {
        if fd < 0 {
            return Err(libc::EBADF);
        }
        // SAFETY: the caller's descriptor stays open for the duration of the call (a closed
        // or foreign one only makes mmap fail).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        // SAFETY: a new mapping at an address of the kernel's choice aliases nothing.
        let base = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, fd, offset) }
            .map_err(|e| e.raw_os_error())?;
        let base = NonNull::new(base.cast()).ok_or(libc::EINVAL)?;
        Ok(Mapping { base, len })
    }

    /// The ABI's mapping of the file `fd` (bound to a channel): one page, `PROT_READ`,
    /// `MAP_SHARED`, offset 0.
    pub fn of_channel(fd: RawFd) -> Result<Mapping, i32> {
        Mapping::new(fd, page_size(), ProtFlags::READ, MapFlags::SHARED, 0)
    }

    /// The first byte of the mapping (for a test that writes to it, expecting `SIGSEGV`).
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: `mmap` refuses length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `mprotect` of the whole mapping, or the errno.
    pub fn protect(&self, flags: MprotectFlags) -> Result<(), i32> {
        // SAFETY: changes the protection of our own mapping only; nothing in this process
        // writes through it.
        unsafe { rustix::mm::mprotect(self.base.as_ptr().cast(), self.len, flags) }
            .map_err(|e| e.raw_os_error())
    }

    /// The mapping as native-endian words, each loaded atomically.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, `len` bytes long and mapped while `self`
        // lives; all bit patterns are valid `AtomicU64`s, and the memory is only ever loaded
        // through them (the kernel writes it with its own atomic stores).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast(), self.len / 8) }
    }

    /// The record at byte `offset` (a multiple of [`RECORD_SIZE`] inside the mapping).
    pub fn record_at(&self, offset: usize) -> Option<&Record> {
        if !offset.is_multiple_of(RECORD_SIZE) || offset + RECORD_SIZE > self.len {
            return None;
        }
        // SAFETY: in bounds and 8-aligned (page-aligned base, offset a multiple of 136);
        // a `Record` is atomics only, valid for any bits, loaded only through them; the
        // reference lives no longer than `self`, which keeps the memory mapped.
        Some(unsafe { &*self.base.as_ptr().add(offset).cast::<Record>() })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly our own mapping; no reference to it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A channel's record in a mapping of its page: what [`MappedRecord::map`] made for the
/// channel the file was bound to then (re-binding the file later does not change it).
pub struct MappedRecord {
    mapping: Mapping,
    offset: usize,
}

/// What one mapped read gave, and whether `read(2)` gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedRead {
    /// The message's length, or the errno (`EAGAIN`: no message; `ENOSPC`: longer than the
    /// buffer), as `read(2)` answers.
    pub result: Result<usize, i32>,
    /// Every attempt overlapped a write, so `read(2)` answered.
    pub fell_back: bool,
}

impl MappedRecord {
    /// Maps the page of the channel `fd` is bound to and finds its record
    /// (`MSG_SLOT_RECORD_OFFSET`); the errno of the failing call otherwise.
    pub fn map(fd: RawFd) -> Result<MappedRecord, i32> {
        let mapping = Mapping::of_channel(fd)?;
        let offset = record_offset(fd)?;
        MappedRecord::at(mapping, offset)
    }

    /// The record at `offset` of `mapping` (`EINVAL` if it is not a record's place).
    pub fn at(mapping: Mapping, offset: usize) -> Result<MappedRecord, i32> {
        mapping.record_at(offset).ok_or(libc::EINVAL)?;
        Ok(MappedRecord { mapping, offset })
    }

    /// The record.
    pub fn record(&self) -> &Record {
        self.mapping
            .record_at(self.offset)
            .expect("checked when made")
    }

    /// The mapping it is in.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Its offset in the mapping.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The record's sequence (acquire), e.g. for a "changed since" check.
    pub fn sequence(&self) -> u32 {
        self.record().sequence.load(Ordering::Acquire)
    }

    /// The library's reader protocol ([`message_slot::read_record`]: at most
    /// [`MAPPED_READ_ATTEMPTS`] attempts, no system call): `None` if a write overlapped every
    /// attempt; else what `read(2)` would answer, the message copied to `buf`.
    pub fn try_read(&self, buf: &mut [u8]) -> Option<Result<usize, i32>> {
        message_slot::read_record(self.record(), buf)
            .map(|(_, result)| result.map_err(|errno| errno.raw_os_error()))
    }

    /// A mapped read as the ABI specifies it: at most [`MAPPED_READ_ATTEMPTS`] attempts, then
    /// `read(2)` on `fd` (which must be bound to the record's channel: the file it was mapped
    /// from, not re-bound since, or another file bound to the channel).
    pub fn read(&self, fd: RawFd, buf: &mut [u8]) -> MappedRead {
        match self.try_read(buf) {
            Some(result) => MappedRead {
                result,
                fell_back: false,
            },
            None => MappedRead {
                result: raw_read(fd, buf.as_mut_ptr(), buf.len()),
                fell_back: true,
            },
        }
    }
}

/// One record as its words say: `(sequence, length)` from its first word and its message
/// bytes, all loaded atomically (no protocol: for tests that read a page nobody writes).
pub fn record_words(words: &[AtomicU64]) -> (u32, u32, [u8; MAX_MESSAGE_LEN]) {
    let head = words[0].load(Ordering::Acquire).to_ne_bytes();
    let sequence = u32::from_ne_bytes(head[..4].try_into().unwrap_or_default());
    let length = u32::from_ne_bytes(head[4..].try_into().unwrap_or_default());
    let mut message = [0u8; MAX_MESSAGE_LEN];
    for (chunk, word) in message.chunks_mut(8).zip(&words[1..]) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    (sequence, length, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_whole_words() {
        assert_eq!(RECORD_SIZE % 8, 0);
        assert_eq!(records_per_page(), page_size() / 136);
    }

    #[test]
    fn mapping_a_file_that_is_no_slot_fails_with_its_errno() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        assert!(Mapping::of_channel(fd).is_err());
        assert_eq!(record_offset(fd).err(), Some(libc::ENOTTY));
        assert_eq!(Mapping::of_channel(-1).err(), Some(libc::EBADF));
    }

    /// A shared-memory page (a memfd mapped read-write) in which the test plays the kernel.
    fn memfd_page() -> (std::fs::File, Mapping) {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: a valid NUL-terminated name; the new descriptor is owned by the `File`.
        let file = unsafe {
            let fd = libc::memfd_create(c"record".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            std::fs::File::from_raw_fd(fd)
        };
        file.set_len(page_size() as u64).unwrap();
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        let mapping = Mapping::new(file.as_raw_fd(), page_size(), prot, MapFlags::SHARED, 0);
        (file, mapping.unwrap())
    }

    #[test]
    fn the_protocol_reads_what_the_writer_stored() {
        use std::os::fd::AsRawFd;
        let (file, page) = memfd_page();
        let offset = 3 * RECORD_SIZE;
        let words = &page.words()[offset / 8..offset / 8 + RECORD_SIZE / 8];
        let read_only = Mapping::new(
            file.as_raw_fd(),
            page_size(),
            ProtFlags::READ,
            MapFlags::SHARED,
            0,
        );
        let record = MappedRecord::at(read_only.unwrap(), offset).unwrap();
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        // A new record: no message.
        assert_eq!(record.try_read(&mut buf), Some(Err(libc::EAGAIN)));
        // The writer's protocol: odd, words and length, even.
        let msg = b"hello, mapped world";
        words[0].store(1, Ordering::Release);
        assert_eq!(record.try_read(&mut buf), None);
        let mut bytes = [0u8; MAX_MESSAGE_LEN];
        bytes[..msg.len()].copy_from_slice(msg);
        for (word, chunk) in words[1..].iter().zip(bytes.chunks(8)) {
            word.store(
                u64::from_ne_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        let head = |sequence: u32| {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&sequence.to_ne_bytes());
            b[4..].copy_from_slice(&(msg.len() as u32).to_ne_bytes());
            u64::from_ne_bytes(b)
        };
        words[0].store(head(1), Ordering::Relaxed);
        assert_eq!(record.try_read(&mut buf), None);
        words[0].store(head(2), Ordering::Release);
        assert_eq!(record.try_read(&mut buf), Some(Ok(msg.len())));
        assert_eq!(&buf[..msg.len()], msg);
        assert_eq!(record.sequence(), 2);
        assert_eq!(
            record.try_read(&mut buf[..msg.len() - 1]),
            Some(Err(libc::ENOSPC))
        );
        assert_eq!(record_words(words), (2, msg.len() as u32, bytes));
        // A write in progress for good: the attempts run out and read(2) answers (a memfd
        // reads as the page's bytes).
        words[0].store(head(3), Ordering::Release);
        let read = record.read(file.as_raw_fd(), &mut buf);
        assert!(read.fell_back);
        assert_eq!(read.result, Ok(MAX_MESSAGE_LEN));
    }
}
