// SPDX-License-Identifier: GPL-2.0

//! Mapped reads: a channel's record mapped read-only from the device (`mapped`), and the
//! same sequence protocol on a plain shared-memory page with no kernel involved
//! (`shm_reference`: a memfd page a forked writer process published a message in), both
//! read by [`record::read`]. No system call per read unless the
//! reader falls back to `read(2)`, which a stable message never makes it do: the bodies
//! fail if it happens (fallbacks are counted; the reference has no `read(2)` to fall back on).

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::MemfdFlags;
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use message_slot_test_support::sys::{raw_ioctl, raw_read};

use crate::measure::Body;
use crate::record::{self, Record, MSG_SLOT_RECORD_OFFSET, RECORD_SIZE};
use crate::sys::{open_bound, os_err, write_all, MAX_MESSAGE_LEN, PAYLOAD};

/// One page of a file mapped `MAP_SHARED`, unmapped when dropped, and the record in it that
/// is read.
struct MappedRecord {
    base: NonNull<c_void>,
    len: usize,
    record: NonNull<Record>,
}

// SAFETY: the page is only ever accessed through the record's atomics, and the pointers are
// not tied to the thread that made them.
unsafe impl Send for MappedRecord {}
// SAFETY: as for Send: shared access is atomic loads only.
unsafe impl Sync for MappedRecord {}

impl MappedRecord {
    /// `mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0)`, and the record at byte `offset`.
    fn new(fd: impl AsFd, offset: usize) -> Result<Self, String> {
        let len = rustix::param::page_size();
        if !offset.is_multiple_of(std::mem::align_of::<Record>()) || offset + RECORD_SIZE > len {
            return Err(format!("record offset {offset} out of a {len}-byte page"));
        }
        // SAFETY: a new mapping at an address the kernel picks overlaps nothing of ours.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| format!("mmap of one page (PROT_READ, MAP_SHARED): {e}"))?;
        let base = NonNull::new(base).ok_or("mmap returned a null mapping")?;
        // SAFETY: `offset` is inside the mapping (checked above).
        let record = unsafe { base.cast::<u8>().add(offset).cast() };
        Ok(Self { base, len, record })
    }

    /// The mapped record.
    #[inline]
    fn get(&self) -> &Record {
        // SAFETY: the record lies inside the mapping, aligned (checked in `new`), valid for as
        // long as `self`; a `Record` is atomics only, which any bytes are, and every access to
        // it is atomic (the kernel or another process writes it concurrently).
        unsafe { self.record.as_ref() }
    }
}

impl Drop for MappedRecord {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are the mapping made in `new`; nothing borrows it once
        // `self` is dropped (`get` borrows `self`).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr(), self.len) };
    }
}

/// A mapped record and what its reader falls back on: the device's `read(2)` on the bound fd
/// (`mapped`), or nothing (`shm_reference`: `EBUSY`). Both cases read through this one type,
/// so that they run the same code and differ only in the page they read.
pub struct MappedReader {
    mapped: MappedRecord,
    fallback: Option<OwnedFd>,
    /// Reads that fell back.
    fallbacks: AtomicU64,
}

impl MappedReader {
    /// Maps the record of the channel `fd` is bound to: its offset from
    /// `ioctl(MSG_SLOT_RECORD_OFFSET)`, one page `PROT_READ`, `MAP_SHARED`, offset 0.
    pub fn channel(fd: OwnedFd) -> Result<Self, String> {
        let offset = raw_ioctl(fd.as_raw_fd(), MSG_SLOT_RECORD_OFFSET, 0).map_err(|e| {
            format!(
                "ioctl(MSG_SLOT_RECORD_OFFSET): {}",
                std::io::Error::from_raw_os_error(e)
            )
        })?;
        Ok(Self {
            mapped: MappedRecord::new(&fd, offset as usize)?,
            fallback: Some(fd),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// Reads the record's message into `buf` (see [`record::read`]).
    #[inline]
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        record::read(self.mapped.get(), buf, |buf| {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            match &self.fallback {
                Some(fd) => raw_read(fd.as_raw_fd(), buf.as_mut_ptr(), buf.len())
                    .map_err(Errno::from_raw_os_error),
                None => Err(Errno::BUSY),
            }
        })
    }

    /// Reads that fell back so far.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// A memfd page whose record at offset 0 a forked writer process published the payload
    /// in (it maps the page read-write), mapped read-only here; no fallback.
    pub fn shm_reference() -> Result<Self, String> {
        let memfd = rustix::fs::memfd_create(c"message-slot-bench-shm", MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd_create: {e}"))?;
        let page = rustix::param::page_size();
        rustix::fs::ftruncate(&memfd, page as u64).map_err(|e| format!("ftruncate(memfd): {e}"))?;
        // SAFETY: the child only maps, stores atomically and exits: no allocation and no
        // locks, as the parent may have other threads (it does under `cargo test`).
        match unsafe { libc::fork() } {
            -1 => return Err(os_err("fork")),
            0 => {
                // SAFETY: a new mapping at an address the kernel picks overlaps nothing.
                let status = match unsafe {
                    rustix::mm::mmap(
                        std::ptr::null_mut(),
                        page,
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::SHARED,
                        &memfd,
                        0,
                    )
                } {
                    Ok(base) => {
                        // SAFETY: the page is mapped, page-aligned and bigger than a record,
                        // and only accessed atomically.
                        record::publish(unsafe { &*base.cast::<Record>() }, &PAYLOAD);
                        0
                    }
                    Err(_) => 1,
                };
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(status) }
            }
            child => {
                let mut status = 0;
                // SAFETY: `status` is writable; `child` is our child.
                if unsafe { libc::waitpid(child, &mut status, 0) } != child {
                    return Err(os_err("waitpid(shm writer)"));
                }
                if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                    return Err(format!(
                        "the shm writer process failed (wait status {status:#x})"
                    ));
                }
            }
        }
        // The mapping keeps the memfd's file (and page) alive.
        Ok(Self {
            mapped: MappedRecord::new(&memfd, 0)?,
            fallback: None,
            fallbacks: AtomicU64::new(0),
        })
    }

    /// One read must return the payload.
    fn check(&self, what: &str) -> Result<(), String> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        match self.read(&mut buf) {
            Ok(MAX_MESSAGE_LEN) if buf == PAYLOAD => Ok(()),
            Ok(len) => Err(format!("{what} read returned {len} bytes, not the payload")),
            Err(e) => Err(format!("{what} read: {e}")),
        }
    }

    /// An error unless no read fell back.
    pub fn check_no_fallback(&self, what: &str) -> Result<(), String> {
        match self.fallbacks() {
            0 => Ok(()),
            fallbacks => Err(format!(
                "{fallbacks} {what} reads fell back with no writer running"
            )),
        }
    }
}

/// Opens an fd bound to `channel` of `minor`, stores the payload through `write(2)` and maps
/// the channel's record; checks one mapped read.
pub fn mapped_channel(minor: u32, channel: u32) -> Result<MappedReader, String> {
    let fd = open_bound(minor, channel)?;
    write_all(fd.as_raw_fd(), &PAYLOAD, "slot write")?;
    let reader = MappedReader::channel(fd)?;
    reader.check("mapped")?;
    Ok(reader)
}

/// A body of `n` reads of a stable 128-byte message through `reader`; fails if any read
/// fell back.
fn reads(what: &'static str, reader: MappedReader) -> Body<'static> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    Box::new(move |n| {
        for _ in 0..n {
            match reader.read(&mut buf) {
                Ok(MAX_MESSAGE_LEN) => {}
                Ok(len) => return Err(format!("{what} read returned {len} bytes")),
                Err(e) => return Err(format!("{what} read: {e}")),
            }
            std::hint::black_box(&buf);
        }
        reader.check_no_fallback(what)
    })
}

/// The `mapped` case: mapped reads of channel `channel` of `minor`, which holds the payload.
pub fn mapped(minor: u32, channel: u32) -> Result<Body<'static>, String> {
    Ok(reads("mapped", mapped_channel(minor, channel)?))
}

/// The `shm_reference` case: mapped reads of a memfd page (no kernel).
pub fn shm_reference() -> Result<Body<'static>, String> {
    let reader = MappedReader::shm_reference()?;
    reader.check("shm_reference")?;
    Ok(reads("shm_reference", reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_reference_reads_the_writer_processes_message() {
        let reader = MappedReader::shm_reference().expect("shm_reference setup");
        let record = reader.mapped.get();
        assert_eq!(record.sequence.load(Ordering::Relaxed), 2, "one publish");
        reader.check("shm_reference").unwrap();
        let mut body = reads("shm_reference", reader);
        body(1000).expect("shm_reference reads");
    }
}
