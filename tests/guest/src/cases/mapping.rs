// SPDX-License-Identifier: GPL-2.0

//! Mapped records (issue 26's ABI, `uapi::Record`): a file bound to a channel maps the page
//! that holds the channel's record read-only, and reads the latest message from memory with
//! the sequence protocol, the kernel its only writer. The calls and their errors, a page that
//! holds nothing but records, writes to the mapping refused, no torn message under two
//! writers and two mapped readers, mappings across fork, close, re-bind and munmap, `rmmod`
//! refused while a mapping exists, 2^20 channels created through mappings and `max_channels`.
//! The memory cgroup's share of record memory is in `cases/memcg.rs`; the mapped reader
//! itself is `message_slot_test_support::mapped`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{EACCES, EAGAIN, EINVAL, ENOSPC, EPERM};
use message_slot::{Slot, Statistic};
use message_slot_test_support::mapped::{
    page_size, record_offset, record_words, records_per_page, MapFlags, MappedRecord, Mapping,
    MprotectFlags, ProtFlags, MAPPED_READ_ATTEMPTS, RECORD_SIZE,
};

use super::nodes::stats;
use crate::module_loading::{ensure_loaded, load_module, try_unload_module, unload_module};
use crate::options::{debug_kernel, scale_channels};
use crate::slab::{memfree_kib_settled, meminfo_kib, shrink_slabs};
use crate::util::{
    bind, channel_message, ensure_node, errno_name, expect_errno, expect_message, expect_raw,
    fresh_channel, last_errno, open, open_bound, pin_to_cpu, raw_fd, raw_write, send_all, show,
    slot_path, Context, TestResult, MAX_MESSAGE_LEN, MINOR_MAPPED_PAGE,
};

/// Checks that a mapping was refused with exactly `want`.
fn expect_refused(result: Result<Mapping, i32>, want: i32, what: &str) -> TestResult {
    expect_raw(
        result.map(|m| format!("mapped at {:p}", m.as_ptr())),
        want,
        what,
    )
}

/// Maps the record of the channel `fd` is bound to (mmap, then `MSG_SLOT_RECORD_OFFSET`).
fn map_record(fd: RawFd, what: &str) -> Result<MappedRecord, String> {
    let mapping =
        Mapping::of_channel(fd).map_err(|e| format!("{what}: mmap: {}", errno_name(e)))?;
    let offset = record_offset(fd)
        .map_err(|e| format!("{what}: ioctl(MSG_SLOT_RECORD_OFFSET): {}", errno_name(e)))?;
    MappedRecord::at(mapping, offset).map_err(|_| {
        format!(
            "{what}: MSG_SLOT_RECORD_OFFSET {offset} is not a record's place in a page of {} \
             bytes (a multiple of {RECORD_SIZE}, the record inside the page)",
            page_size()
        )
    })
}

/// What a mapped read gives with nobody writing: the message, or the errno `read(2)` would
/// give. Every attempt overlapping a write is a failure here (no write is in progress).
fn mapped_now(record: &MappedRecord, what: &str) -> Result<Result<Vec<u8>, i32>, String> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    if let Some(result) = record.try_read(&mut buf) {
        return Ok(result.map(|n| buf[..n].to_vec()));
    }
    Err(format!(
        "{what}: {MAPPED_READ_ATTEMPTS} attempts of a mapped read overlapped a write while \
         nobody wrote (sequence {})",
        record.sequence()
    ))
}

/// Checks that the mapping shows `want` (empty: no message, `EAGAIN`).
fn expect_mapped(record: &MappedRecord, want: &[u8], what: &str) -> TestResult {
    let got = mapped_now(record, what)?;
    match got {
        Ok(got) if got == want => Ok(()),
        Err(EAGAIN) if want.is_empty() => Ok(()),
        Ok(got) => Err(format!(
            "{what}: the mapping shows {}, expected {}",
            show(&got),
            if want.is_empty() {
                "no message".to_string()
            } else {
                show(want)
            }
        )),
        Err(e) => Err(format!(
            "{what}: the mapped read gave {}, expected {}",
            errno_name(e),
            show(want)
        )),
    }
}

/// `channels` of minor `minor`.
fn channels(minor: u32) -> Result<u64, String> {
    Ok(stats(minor)?[Statistic::Channels])
}

// ---------------------------------------------------------------------------------------------
// The calls and their errors.

/// The mapping's arguments and its errors: an unbound file (`EINVAL`, also for
/// `MSG_SLOT_RECORD_OFFSET`); offset not 0, length not one page, `MAP_PRIVATE` (`EINVAL`);
/// `PROT_WRITE` or `PROT_EXEC` on a read-write file (`EPERM`); `PROT_WRITE | MAP_SHARED` on a
/// read-only file and any mapping of a write-only one (`EACCES`, the kernel's own checks).
/// A good mapping (also of a read-only file) shows the message at the ioctl's offset, a
/// multiple of the record's size inside the page, with sequence 2 after one write.
pub fn mapping_abi_errors() -> TestResult {
    let path = slot_path(0)?;
    let page = page_size();
    let (read, write, exec) = (ProtFlags::READ, ProtFlags::WRITE, ProtFlags::EXEC);
    let shared = MapFlags::SHARED;

    let unbound = open(&path)?;
    let fd = raw_fd(&unbound);
    expect_refused(Mapping::of_channel(fd), EINVAL, "mmap of an unbound file")?;
    expect_raw(
        record_offset(fd),
        EINVAL,
        "MSG_SLOT_RECORD_OFFSET on an unbound file",
    )?;

    let ch = fresh_channel();
    let slot = open_bound(&path, ch)?;
    send_all(&slot, b"mapped message", "write")?;
    let fd = raw_fd(&slot);
    let refusals: [(usize, ProtFlags, MapFlags, u64, i32, &str); 5] = [
        (
            page,
            read,
            shared,
            page as u64,
            EINVAL,
            "offset of one page",
        ),
        (2 * page, read, shared, 0, EINVAL, "length of two pages"),
        (page, read, MapFlags::PRIVATE, 0, EINVAL, "MAP_PRIVATE"),
        (page, read | write, shared, 0, EPERM, "PROT_WRITE on O_RDWR"),
        (page, read | exec, shared, 0, EPERM, "PROT_EXEC on O_RDWR"),
    ];
    for (len, prot, flags, offset, want, what) in refusals {
        expect_refused(
            Mapping::new(fd, len, prot, flags, offset),
            want,
            &format!("mmap with {what}"),
        )?;
    }

    let record = map_record(fd, "mmap of a bound O_RDWR file")?;
    let offset = record.offset();
    ensure!(
        offset.is_multiple_of(RECORD_SIZE) && offset + RECORD_SIZE <= page,
        "MSG_SLOT_RECORD_OFFSET {offset}: not a multiple of {RECORD_SIZE} inside a page"
    );
    expect_mapped(&record, b"mapped message", "the mapped record")?;
    ensure!(
        record.sequence() == 2,
        "sequence {} after the channel's one write, expected 2",
        record.sequence()
    );

    let read_only = Slot::open_read_only(&path).ctx("open O_RDONLY")?;
    bind(raw_fd(&read_only), ch).map_err(|e| format!("bind O_RDONLY: {}", errno_name(e)))?;
    expect_refused(
        Mapping::new(raw_fd(&read_only), page, read | write, shared, 0),
        EACCES,
        "mmap PROT_WRITE | MAP_SHARED of an O_RDONLY file",
    )?;
    let from_read_only = map_record(raw_fd(&read_only), "mmap of an O_RDONLY file")?;
    ensure!(
        from_read_only.offset() == offset,
        "the O_RDONLY file's offset {} differs from the O_RDWR file's {offset} (same channel)",
        from_read_only.offset()
    );
    expect_mapped(&from_read_only, b"mapped message", "the O_RDONLY mapping")?;

    let write_only = Slot::open_write_only(&path).ctx("open O_WRONLY")?;
    bind(raw_fd(&write_only), ch).map_err(|e| format!("bind O_WRONLY: {}", errno_name(e)))?;
    expect_refused(
        Mapping::of_channel(raw_fd(&write_only)),
        EACCES,
        "mmap PROT_READ of an O_WRONLY file",
    )
}

/// Mapping a channel that does not exist creates it without a message, as a poll does: the
/// slot's `channels` grows by one (and not again for a second mapping), `read(2)` answers
/// `EWOULDBLOCK`, the record is all zero (sequence 0, length 0). `MSG_SLOT_RECORD_OFFSET`
/// creates one the same way. A write then shows in the mapping (sequence 2).
pub fn mapping_creates_channel_without_message() -> TestResult {
    let minor = 1;
    let path = slot_path(minor)?;
    let before = channels(minor)?;
    let (mapped, by_ioctl) = (fresh_channel(), fresh_channel());
    let slot = open_bound(&path, mapped)?;
    let record = map_record(raw_fd(&slot), "mmap of a new channel")?;
    let again = map_record(raw_fd(&slot), "a second mmap of it")?;
    let after_map = channels(minor)?;
    ensure!(
        after_map == before + 1,
        "channels went from {before} to {after_map} when a new channel was mapped (twice), \
         expected +1"
    );
    expect_errno(
        slot.receive_message(),
        EAGAIN,
        "read(2) of a channel created by mmap",
    )?;
    let words = record
        .mapping()
        .words()
        .iter()
        .skip(record.offset() / 8)
        .take(RECORD_SIZE / 8)
        .enumerate()
        .find(|(_, w)| w.load(Ordering::Acquire) != 0);
    if let Some((i, w)) = words {
        return Err(format!(
            "the new channel's record has word {i} = {:#x}: a new record is all zero",
            w.load(Ordering::Relaxed)
        ));
    }
    expect_mapped(&record, b"", "the new channel's record")?;

    let other = open_bound(&path, by_ioctl)?;
    let offset = record_offset(raw_fd(&other))
        .map_err(|e| format!("MSG_SLOT_RECORD_OFFSET of a new channel: {}", errno_name(e)))?;
    ensure!(
        offset.is_multiple_of(RECORD_SIZE) && offset + RECORD_SIZE <= page_size(),
        "MSG_SLOT_RECORD_OFFSET {offset} of a new channel"
    );
    let after_ioctl = channels(minor)?;
    ensure!(
        after_ioctl == before + 2,
        "channels {after_ioctl} after MSG_SLOT_RECORD_OFFSET of another new channel, \
         expected {}",
        before + 2
    );
    expect_errno(
        other.receive_message(),
        EAGAIN,
        "read(2) of a channel created by MSG_SLOT_RECORD_OFFSET",
    )?;

    send_all(&slot, b"now with a message", "write")?;
    expect_mapped(&record, b"now with a message", "after a write")?;
    expect_mapped(
        &again,
        b"now with a message",
        "the second mapping after a write",
    )?;
    ensure!(
        record.sequence() == 2,
        "sequence {} after the first write, expected 2",
        record.sequence()
    );
    Ok(())
}

/// At `max_channels` (2: one channel written, one mapped), mapping a third channel and its
/// `MSG_SLOT_RECORD_OFFSET` fail with `ENOSPC` and leave nothing behind: `channels` stays 2,
/// the refused channel reads `EWOULDBLOCK`, the two channels still map.
pub fn mapping_at_max_channels_enospc() -> TestResult {
    let minor = 0;
    unload_module()?;
    load_module(&["max_channels=2"])?;
    let result = (|| -> TestResult {
        let path = slot_path(minor)?;
        let written = open_bound(&path, 1)?;
        send_all(&written, b"the written channel", "write channel 1")?;
        let mapped = open_bound(&path, 2)?;
        let _record = map_record(raw_fd(&mapped), "mmap of channel 2 (the last place)")?;
        ensure!(
            channels(minor)? == 2,
            "channels {} with one channel written and one mapped",
            channels(minor)?
        );
        let refused = open_bound(&path, 3)?;
        let fd = raw_fd(&refused);
        for _ in 0..100 {
            expect_refused(
                Mapping::of_channel(fd),
                ENOSPC,
                "mmap of a new channel at max_channels",
            )?;
            expect_raw(
                record_offset(fd),
                ENOSPC,
                "MSG_SLOT_RECORD_OFFSET of a new channel at max_channels",
            )?;
        }
        ensure!(
            channels(minor)? == 2,
            "channels {} after refused mappings of a third channel, expected 2",
            channels(minor)?
        );
        expect_errno(
            refused.receive_message(),
            EAGAIN,
            "read(2) of the refused channel",
        )?;
        let again = map_record(raw_fd(&written), "mmap of channel 1 at max_channels")?;
        expect_mapped(&again, b"the written channel", "channel 1")?;
        map_record(raw_fd(&mapped), "mmap of channel 2 again").map(drop)
    })();
    unload_module()?;
    load_module(&[])?;
    result
}

// ---------------------------------------------------------------------------------------------
// Nothing but records.

/// How a channel of [`mapped_page_holds_only_records`] is made.
#[derive(Clone, Copy, Debug)]
enum Made {
    /// `MSG_SLOT_RECORD_OFFSET` only.
    Ioctl,
    /// `mmap` only.
    Mapped,
    /// Written this many times, the last time with a message of this length.
    Written(u32, usize),
}

/// The lengths and write counts of the written channels: short, word-sized, odd, full.
const WRITTEN: [(u32, usize); 8] = [
    (1, 1),
    (3, 7),
    (1, 8),
    (2, 9),
    (5, 63),
    (1, 64),
    (4, 127),
    (2, 128),
];

/// The last message of channel `id` of [`mapped_page_holds_only_records`]: `len` bytes.
fn page_message(id: u32, len: usize) -> Vec<u8> {
    channel_message(MINOR_MAPPED_PAGE, id, MAX_MESSAGE_LEN)[..len].to_vec()
}

/// A page holds records and nothing else (on its own minor): channels made on a fresh page
/// in order (one by `MSG_SLOT_RECORD_OFFSET`, then written ones of lengths 1 to 128 written 1
/// to 5 times, each write before the last 128 bytes of `0xFF`, and ones made by `mmap` only)
/// get the offsets `k * 136` in their creation order; one of them is mapped and every byte of
/// the page is loaded (atomically) and accounted for: each record's sequence (2 per write),
/// length, message bytes and zeros past the length, the records no channel uses yet all zero,
/// the rest of the page zero.
pub fn mapped_page_holds_only_records() -> TestResult {
    let path = ensure_node(MINOR_MAPPED_PAGE)?;
    let file = open(&path)?;
    let fd = raw_fd(&file);
    let per_page = records_per_page();
    let call = |what: &str, e: i32| format!("{what}: {}", errno_name(e));
    // Channels made by the ioctl until one lands at the start of a page (a fresh slot's first
    // channel does): ours are then that page's first records.
    let mut made: Vec<(u32, Made)> = Vec::new();
    for _ in 0..=per_page {
        let id = fresh_channel();
        bind(fd, id).map_err(|e| call("bind", e))?;
        if record_offset(fd).map_err(|e| call("MSG_SLOT_RECORD_OFFSET", e))? == 0 {
            made.push((id, Made::Ioctl));
            break;
        }
    }
    ensure!(
        made.len() == 1,
        "{} new channels made by MSG_SLOT_RECORD_OFFSET, none at offset 0 (a page holds \
         {per_page})",
        per_page + 1
    );
    for (i, &(writes, len)) in WRITTEN.iter().enumerate() {
        made.push((fresh_channel(), Made::Written(writes, len)));
        if i % 2 == 1 {
            made.push((fresh_channel(), Made::Mapped));
        }
    }
    ensure!(made.len() < per_page, "more channels than a page holds");
    for (k, &(id, how)) in made.iter().enumerate().skip(1) {
        bind(fd, id).map_err(|e| call("bind", e))?;
        match how {
            Made::Ioctl => {}
            Made::Mapped => drop(Mapping::of_channel(fd).map_err(|e| call("mmap", e))?),
            Made::Written(writes, len) => {
                for _ in 1..writes {
                    raw_write(fd, [0xFF; MAX_MESSAGE_LEN].as_ptr(), MAX_MESSAGE_LEN)
                        .map_err(|e| call("write", e))?;
                }
                let msg = page_message(id, len);
                raw_write(fd, msg.as_ptr(), len).map_err(|e| call("write", e))?;
            }
        }
        let offset = record_offset(fd).map_err(|e| call("MSG_SLOT_RECORD_OFFSET", e))?;
        ensure!(
            offset == k * RECORD_SIZE,
            "channel #{k} of the page ({how:?}) is at offset {offset}, expected {} (records in \
             creation order)",
            k * RECORD_SIZE
        );
    }
    let (id, _) = made[made.len() / 2];
    bind(fd, id).map_err(|e| call("bind", e))?;
    let record = map_record(fd, "mmap of a channel of the page")?;
    let words = record.mapping().words();
    let record_words_n = RECORD_SIZE / 8;
    for k in 0..per_page {
        let (sequence, length, message) =
            record_words(&words[k * record_words_n..(k + 1) * record_words_n]);
        let (want_sequence, want) = match made.get(k) {
            Some(&(id, Made::Written(writes, len))) => (2 * writes, page_message(id, len)),
            _ => (0, Vec::new()),
        };
        let mut want_message = [0u8; MAX_MESSAGE_LEN];
        want_message[..want.len()].copy_from_slice(&want);
        let what = match made.get(k) {
            Some((id, how)) => format!("record {k} (channel {id:#x}, {how:?})"),
            None => format!("record {k} (no channel yet)"),
        };
        ensure!(
            (sequence, length as usize) == (want_sequence, want.len()),
            "{what}: sequence {sequence}, length {length}; expected {want_sequence}, {}",
            want.len()
        );
        ensure!(
            message == want_message,
            "{what}: message bytes {}, expected {} and zeros",
            show(&message),
            show(&want)
        );
    }
    let tail = per_page * record_words_n;
    if let Some((i, w)) = words[tail..]
        .iter()
        .enumerate()
        .find(|(_, w)| w.load(Ordering::Relaxed) != 0)
    {
        return Err(format!(
            "byte {} of the page (past its {per_page} records) holds {:#018x}",
            (tail + i) * 8,
            w.load(Ordering::Relaxed)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writes refused.

/// Writing to a mapping kills the writer with `SIGSEGV` (a forked child stores to the record),
/// `mprotect` to `PROT_READ | PROT_WRITE` or `PROT_READ | PROT_EXEC` fails with `EACCES`, and
/// the record still holds its message.
pub fn mapping_refuses_writes() -> TestResult {
    let slot = open_bound(&slot_path(0)?, fresh_channel())?;
    send_all(&slot, b"not yours to write", "write")?;
    let record = map_record(raw_fd(&slot), "mmap")?;
    for (offset, what) in [
        (record.offset(), "its sequence"),
        (record.offset() + 8, "its message"),
        (0, "the page's first byte"),
    ] {
        let target = record.mapping().as_ptr().wrapping_add(offset);
        // SAFETY: the child only stores to the mapping (which must kill it) and leaves with
        // `_exit`.
        let pid = unsafe { libc::fork() };
        ensure!(pid >= 0, "fork: {}", errno_name(last_errno()));
        if pid == 0 {
            // SAFETY: a store to our own mapping, which the kernel maps read-only: the point
            // of the test is that it faults.
            unsafe { std::ptr::write_volatile(target, 0x5A) };
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        ensure!(rc == pid, "waitpid: {}", errno_name(last_errno()));
        ensure!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
            "a child that stored to {what} in the mapping ended with wait status {status:#x}, \
             expected death by SIGSEGV"
        );
    }
    for (flags, what) in [
        (
            MprotectFlags::READ | MprotectFlags::WRITE,
            "PROT_READ | PROT_WRITE",
        ),
        (
            MprotectFlags::READ | MprotectFlags::EXEC,
            "PROT_READ | PROT_EXEC",
        ),
    ] {
        expect_raw(
            record.mapping().protect(flags),
            EACCES,
            &format!("mprotect of the mapping to {what}"),
        )?;
    }
    expect_mapped(&record, b"not yours to write", "after the refused writes")?;
    expect_message(
        &slot,
        b"not yours to write",
        "read(2) after the refused writes",
    )
}

// ---------------------------------------------------------------------------------------------
// No torn message.

/// Mapped reads of the torn-read test, in all (half per reader).
const TORN_READS: u64 = 1_000_000;
/// Changes of the message each reader of the torn-read test must see.
const TORN_CHANGES: u64 = 1000;
/// How long the torn-read test's readers may go on for their changes.
const TORN_LIMIT: Duration = Duration::from_secs(90);

/// A message of the torn-read test: writer `writer` (0 or 1), its `counter`-th message, of
/// `len` bytes (1..=128): byte 0 the length, byte 1 the writer, bytes 2..6 the counter (as
/// many as fit), the rest derived from all three, so that bytes of two messages mixed (or a
/// length of one with bytes of another) do not pass [`check_torn`].
fn torn_message(writer: u8, counter: u32, len: usize) -> [u8; MAX_MESSAGE_LEN] {
    let mut m = [0u8; MAX_MESSAGE_LEN];
    m[0] = len as u8;
    m[1] = writer;
    m[2..6].copy_from_slice(&counter.to_le_bytes());
    let mix = torn_mix(writer, counter, len);
    for (i, b) in m.iter_mut().enumerate().skip(6) {
        *b = (mix >> ((i & 3) * 8)) as u8 ^ (i as u8).wrapping_mul(0x9D);
    }
    m[len..].fill(0);
    m
}

/// The hash of a torn-read message's identity (murmur3's finalizer).
fn torn_mix(writer: u8, counter: u32, len: usize) -> u32 {
    let mut h = counter.wrapping_mul(0x9E37_79B9) ^ (u32::from(writer) << 31) ^ (len as u32) << 20;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// Checks a message read in the torn-read test; `(writer, counter)` when it carries its whole
/// counter (6 bytes or more).
fn check_torn(got: &[u8]) -> Result<Option<(u8, u32)>, String> {
    let n = got.len();
    ensure!(
        (1..=MAX_MESSAGE_LEN).contains(&n) && usize::from(got[0]) == n,
        "read {n} bytes whose first byte says {}: {}",
        got.first().copied().unwrap_or(0),
        show(got)
    );
    if n < 2 {
        return Ok(None);
    }
    let writer = got[1];
    ensure!(writer < 2, "writer byte {writer}: {}", show(got));
    if n < 6 {
        return Ok(None);
    }
    let counter = u32::from_le_bytes([got[2], got[3], got[4], got[5]]);
    let want = torn_message(writer, counter, n);
    ensure!(
        got == &want[..n],
        "a torn message: read {}, writer {writer}'s message {counter} of {n} bytes is {}",
        show(got),
        show(&want[..n])
    );
    Ok(Some((writer, counter)))
}

/// What one reader of the torn-read test saw.
#[derive(Default)]
struct ReaderTally {
    reads: u64,
    fell_back: u64,
    changes: u64,
    lengths: u128,
}

/// A writer of the torn-read test on CPU `writer`: writes its messages of every length in
/// turn through `slot` until `stop`, counting them in `writes`.
fn torn_writer(writer: u8, slot: &Slot, stop: &AtomicBool, writes: &AtomicU64) -> TestResult {
    pin_to_cpu(usize::from(writer));
    let fd = raw_fd(slot);
    let mut counter = 0u32;
    while !stop.load(Ordering::Relaxed) {
        counter += 1;
        let len = (counter as usize - 1) % MAX_MESSAGE_LEN + 1;
        let msg = torn_message(writer, counter, len);
        raw_write(fd, msg.as_ptr(), len)
            .map_err(|e| format!("writer {writer}: write: {}", errno_name(e)))?;
        writes.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// A reader of the torn-read test on the other CPU than writer `reader`: maps the channel
/// `slot` is bound to and reads it (falling back to `read(2)` on `slot`) until it has made
/// its share of [`TORN_READS`] and seen [`TORN_CHANGES`] changes, or [`TORN_LIMIT`] passed,
/// or `stop`; checks every message ([`check_torn`]) and that no writer's counter goes back.
fn torn_reader(reader: usize, slot: &Slot, stop: &AtomicBool) -> Result<ReaderTally, String> {
    pin_to_cpu(1 - reader);
    let fd = raw_fd(slot);
    let record = map_record(fd, &format!("reader {reader}"))?;
    let mut tally = ReaderTally::default();
    let mut last = [0u32; 2];
    let mut previous = Vec::new();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let deadline = Instant::now() + TORN_LIMIT;
    while (tally.reads < TORN_READS / 2 || tally.changes < TORN_CHANGES)
        && !stop.load(Ordering::Relaxed)
        && (tally.reads % 1024 != 0 || Instant::now() < deadline)
    {
        let read = record.read(fd, &mut buf);
        tally.reads += 1;
        tally.fell_back += u64::from(read.fell_back);
        let via = if read.fell_back { "read(2)" } else { "mapped" };
        let n = read.result.map_err(|e| {
            format!(
                "reader {reader}: read {} ({via}): {}",
                tally.reads,
                errno_name(e)
            )
        })?;
        let got = &buf[..n];
        let seen = check_torn(got)
            .map_err(|e| format!("reader {reader}, read {} ({via}): {e}", tally.reads))?;
        if let Some((writer, counter)) = seen {
            let last = &mut last[usize::from(writer)];
            ensure!(
                counter >= *last,
                "reader {reader}: writer {writer}'s counter went back from {} to {counter}",
                *last
            );
            *last = counter;
        }
        if got != previous.as_slice() {
            tally.changes += 1;
            tally.lengths |= 1 << (n - 1);
            previous.clear();
            previous.extend_from_slice(got);
        }
    }
    Ok(tally)
}

/// Two writer threads replace one channel's message with messages of every length 1..=128
/// (in turn, each with its counter) while two reader threads read it through their own
/// mappings, [`TORN_READS`] mapped reads in all (the writers on CPUs 0 and 1, the readers on
/// CPUs 1 and 0): no read is ever torn (a length of one message with bytes of another, or
/// bytes of two; [`check_torn`]), and per reader each writer's counter never goes back.
/// How many reads fell back to `read(2)` (every attempt overlapped a write) is printed, and
/// each reader must see the message change at least [`TORN_CHANGES`] times (the reads ran
/// alongside the writes): it reads on past its share until it has, for at most
/// [`TORN_LIMIT`]. Where the vCPUs take turns on one host thread (single-threaded TCG, as for
/// Debian's kernels) a reader sees the writes of the other CPU only when the vCPUs switch, and
/// its own CPU's writer only when the scheduler preempts one of them: fewer changes per read.
pub fn mapped_reads_never_torn() -> TestResult {
    let path = slot_path(2)?;
    let ch = fresh_channel();
    send_all(
        &open_bound(&path, ch)?,
        &torn_message(0, 0, MAX_MESSAGE_LEN),
        "first message",
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..2u8 {
        let slot = open_bound(&path, ch)?;
        let (stop, writes) = (stop.clone(), writes.clone());
        writers.push(std::thread::spawn(move || {
            torn_writer(writer, &slot, &stop, &writes)
        }));
    }
    let started = Instant::now();
    let mut readers = Vec::new();
    for reader in 0..2usize {
        let slot = open_bound(&path, ch)?;
        let stop = stop.clone();
        readers.push(std::thread::spawn(move || {
            torn_reader(reader, &slot, &stop)
        }));
    }
    let mut results = Vec::new();
    for r in readers {
        results.push(r.join().unwrap_or_else(|_| Err("reader panicked".into())));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap_or_else(|_| Err("writer panicked".into()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let tallies = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let reads: u64 = tallies.iter().map(|t| t.reads).sum();
    let fell_back: u64 = tallies.iter().map(|t| t.fell_back).sum();
    let changes: Vec<u64> = tallies.iter().map(|t| t.changes).collect();
    let lengths: Vec<u32> = tallies.iter().map(|t| t.lengths.count_ones()).collect();
    eprintln!(
        "  (torn-read: {reads} mapped reads in {secs:.1}s, {fell_back} fell back to read(2); \
         {} writes; the message changed {changes:?} times under the readers, lengths seen \
         {lengths:?} of 128)",
        writes.load(Ordering::Relaxed)
    );
    ensure!(reads >= TORN_READS, "only {reads} mapped reads");
    ensure!(
        changes.iter().all(|&c| c >= TORN_CHANGES),
        "the readers saw the message change only {changes:?} times in {}s: the reads did not \
         run alongside the writes",
        TORN_LIMIT.as_secs()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fork, close, re-bind, munmap.

/// A mapping across fork, close, re-bind and munmap: a forked child reads through the
/// inherited mapping (and writes through the inherited file, which the parent's mapping
/// shows); after re-binding the file to another channel the old mapping keeps showing the
/// old channel (and its new writes) while `MSG_SLOT_RECORD_OFFSET` and a new mapping follow
/// the new one; after `close` of the file the mappings still show new writes made through
/// other files; after `munmap` of one mapping the record's page still serves another, and
/// a new one.
pub fn mapping_fork_close_rebind_munmap() -> TestResult {
    let path = slot_path(3)?;
    let (a, b) = (fresh_channel(), fresh_channel());
    let file = open_bound(&path, a)?;
    let other_a = open_bound(&path, a)?;
    send_all(&file, b"A1", "write A1")?;
    let mapped_a = map_record(raw_fd(&file), "mmap of channel A")?;

    // A forked child reads the inherited mapping, then writes through the inherited file.
    let fd = raw_fd(&file);
    // SAFETY: the child reads the mapping with atomic loads, writes with a raw call and
    // leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    ensure!(pid >= 0, "fork: {}", errno_name(last_errno()));
    if pid == 0 {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let read = mapped_a.read(fd, &mut buf);
        let status = match read.result {
            Ok(2) if &buf[..2] == b"A1" && !read.fell_back => {
                if raw_write(fd, b"A2".as_ptr(), 2) == Ok(2) {
                    0
                } else {
                    3
                }
            }
            Ok(_) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child.
        unsafe { libc::_exit(status) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child: wait status {status:#x} (exit 1: the inherited mapping showed \
         another message than A1, 2: the mapped read failed, 3: its write failed)"
    );
    expect_mapped(
        &mapped_a,
        b"A2",
        "the parent's mapping after the child's write",
    )?;

    // Re-bind: the old mapping stays with A, the ioctl and new mappings follow B.
    file.set_channel(b).ctx("re-bind to B")?;
    send_all(&file, b"B1", "write B1 through the re-bound file")?;
    expect_mapped(
        &mapped_a,
        b"A2",
        "A's mapping after the re-bind and a write to B",
    )?;
    let offset_b = record_offset(raw_fd(&file)).map_err(|e| {
        format!(
            "MSG_SLOT_RECORD_OFFSET after the re-bind: {}",
            errno_name(e)
        )
    })?;
    let offset_a = record_offset(raw_fd(&other_a))
        .map_err(|e| format!("MSG_SLOT_RECORD_OFFSET of A: {}", errno_name(e)))?;
    ensure!(
        offset_a == mapped_a.offset(),
        "A's offset changed from {} to {offset_a}",
        mapped_a.offset()
    );
    let mapped_b = map_record(raw_fd(&file), "mmap after the re-bind")?;
    ensure!(
        mapped_b.offset() == offset_b,
        "offset {} then {offset_b}",
        mapped_b.offset()
    );
    expect_mapped(&mapped_b, b"B1", "the new mapping after the re-bind")?;
    send_all(&other_a, b"A3", "write A3 through another file")?;
    expect_mapped(&mapped_a, b"A3", "A's mapping after a write to A")?;
    expect_mapped(&mapped_b, b"B1", "B's mapping after a write to A")?;

    // Close: the mappings outlive the file.
    drop(file);
    send_all(&other_a, b"A4", "write A4 after the close")?;
    expect_mapped(&mapped_a, b"A4", "A's mapping after close(fd)")?;
    send_all(&open_bound(&path, b)?, b"B2", "write B2 after the close")?;
    expect_mapped(&mapped_b, b"B2", "B's mapping after close(fd)")?;

    // munmap: another mapping of the page, and a new one, still work.
    let second_a = map_record(raw_fd(&other_a), "a second mapping of A")?;
    drop(mapped_a);
    send_all(&other_a, b"A5", "write A5 after munmap")?;
    expect_mapped(
        &second_a,
        b"A5",
        "the second mapping of A after munmap of the first",
    )?;
    let third_a = map_record(raw_fd(&other_a), "a new mapping of A after munmap")?;
    expect_mapped(&third_a, b"A5", "a new mapping of A after munmap")?;
    expect_message(&other_a, b"A5", "read(2) of A")
}

// ---------------------------------------------------------------------------------------------
// Module lifetime.

/// `rmmod` is refused while a mapping exists, even after its file is closed (the mapping
/// holds the file, which holds the module); the mapping keeps working; after `munmap` the
/// module unloads. The module is loaded again at the end.
pub fn rmmod_refused_while_mapped() -> TestResult {
    let path = slot_path(0)?;
    let ch = fresh_channel();
    let record = {
        let slot = open_bound(&path, ch)?;
        send_all(&slot, b"mapped across rmmod", "write")?;
        map_record(raw_fd(&slot), "mmap")?
    };
    // Every file is closed: only the mapping holds the module.
    if try_unload_module().is_ok() {
        drop(record);
        let restored = load_module(&[])
            .map(|()| "module reloaded".to_string())
            .unwrap_or_else(|e| e);
        return Err(format!(
            "rmmod succeeded while a mapping of a closed slot file existed ({restored})"
        ));
    }
    expect_mapped(
        &record,
        b"mapped across rmmod",
        "the mapping after the refused rmmod",
    )?;
    send_all(
        &open_bound(&path, ch)?,
        b"still loaded",
        "write after the refused rmmod",
    )?;
    expect_mapped(&record, b"still loaded", "the mapping after a new write")?;
    drop(record);
    let unloaded = unload_module().map_err(|e| format!("after munmap: {e}"));
    let loaded = ensure_loaded();
    unloaded.and(loaded)
}

// ---------------------------------------------------------------------------------------------
// Scale.

/// Memory per channel that a slot's channels may take in all (slab and record pages).
const MAX_BYTES_PER_CHANNEL: u64 = 256;

/// 2^20 channels (`--scale-channels=N`) created through mappings on a freshly loaded
/// module's minor 3, each by its own `mmap` (and `munmap`) of a file bound to it in turn:
/// every one rather than a sample, since under TCG a mapping costs about as much as a few
/// system calls (the test prints the time per mapping). On the debug kernel a mapping costs
/// about 1 ms (KASAN, lockdep, the VMA and page-table work): every 64th channel is mapped
/// there, and the others are made by `MSG_SLOT_RECORD_OFFSET`. `channels` counts them all,
/// a sample of them maps to an empty record that then shows a write, and the kernel memory
/// they take (the drop of `MemFree`: slab and whole record pages, which are not slab) is at
/// most 256 bytes per channel (both readings of `MemFree` taken once it has settled: the
/// mappings' VMAs and maple-tree nodes are freed through RCU, in batches up to 5 s late,
/// and counted against the channels otherwise); after `rmmod` `MemFree` comes back (within
/// 1/8 of the drop, and 16 MiB, with the slab caches shrunk, waiting up to 10 s). Neither
/// memory bound is asserted on the debug kernel, whose KASAN redzones and debug objects
/// multiply slab and whose KASAN quarantine and deferred frees keep freed memory a while
/// (both are printed). The module is loaded again at the end.
pub fn mapped_million_channels() -> TestResult {
    let count = scale_channels()?;
    let minor = 3;
    unload_module()?;
    load_module(&[])?;
    let result = (|| -> TestResult {
        let path = slot_path(minor)?;
        let file = open(&path)?;
        let fd = raw_fd(&file);
        ensure!(
            channels(minor)? == 0,
            "minor {minor} holds {} channels after the reload",
            channels(minor)?
        );
        let (free0, slab0) = (memfree_kib_settled()?, meminfo_kib("Slab")?);
        let started = Instant::now();
        let map_every = if debug_kernel() { 64 } else { 1 };
        for id in 1..=count {
            bind(fd, id).map_err(|e| format!("bind channel {id}: {}", errno_name(e)))?;
            if id % map_every == 0 {
                Mapping::of_channel(fd)
                    .map_err(|e| format!("mmap of new channel {id}: {}", errno_name(e)))?;
            } else {
                record_offset(fd).map_err(|e| {
                    format!(
                        "MSG_SLOT_RECORD_OFFSET of new channel {id}: {}",
                        errno_name(e)
                    )
                })?;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let (free1, slab1) = (memfree_kib_settled()?, meminfo_kib("Slab")?);
        let made = channels(minor)?;
        ensure!(
            made == u64::from(count),
            "channels {made} after {count} channels were mapped"
        );
        let per_channel = |kib: u64| kib as f64 * 1024.0 / f64::from(count);
        let dropped = free0.saturating_sub(free1);
        let slab = slab1.saturating_sub(slab0);
        let record_pages = u64::from(count).div_ceil(records_per_page() as u64);
        eprintln!(
            "  (mapped scale: {count} channels made in {secs:.1}s ({:.1} us each, 1 in \
             {map_every} by mmap, the others by MSG_SLOT_RECORD_OFFSET); MemFree \
             drop {:.1} B per channel, Slab growth {:.1} B per channel, record pages \
             {record_pages} = {:.1} B per channel)",
            secs * 1e6 / f64::from(count),
            per_channel(dropped),
            per_channel(slab),
            per_channel(record_pages * page_size() as u64 / 1024)
        );
        for id in (1..=count).step_by(4099).chain([count]) {
            bind(fd, id).map_err(|e| format!("bind channel {id}: {}", errno_name(e)))?;
            let record = map_record(fd, &format!("channel {id}"))?;
            expect_mapped(&record, b"", &format!("channel {id}, never written"))?;
            let msg = channel_message(minor, id, MAX_MESSAGE_LEN);
            raw_write(fd, msg.as_ptr(), msg.len())
                .map_err(|e| format!("write channel {id}: {}", errno_name(e)))?;
            expect_mapped(&record, &msg, &format!("channel {id} after a write"))?;
        }
        ensure!(
            channels(minor)? == u64::from(count),
            "channels {} after writes to existing channels",
            channels(minor)?
        );
        ensure!(
            debug_kernel() || dropped * 1024 <= MAX_BYTES_PER_CHANNEL * u64::from(count),
            "{count} mapped channels took {} B each (MemFree {free0} -> {free1} KiB; Slab \
             {slab0} -> {slab1} KiB): more than {MAX_BYTES_PER_CHANNEL} B",
            per_channel(dropped) as u64
        );
        drop(file);
        unload_module()?;
        let back = |free: u64| free + dropped / 8 + (16 << 10) >= free0;
        let mut free2 = meminfo_kib("MemFree")?;
        for _ in 0..10 {
            if back(free2) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            // Empty slabs go back to the page allocator once their caches are shrunk.
            shrink_slabs();
            free2 = meminfo_kib("MemFree")?;
        }
        eprintln!("  (mapped scale: MemFree {free0} -> {free1} -> {free2} KiB after rmmod)");
        ensure!(
            debug_kernel() || back(free2),
            "after rmmod MemFree is {free2} KiB, {free0} KiB before {count} channels were \
             mapped ({free1} KiB with them): their memory did not come back"
        );
        Ok(())
    })();
    let loaded = ensure_loaded();
    result.and(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_messages_check_whole_and_catch_mixes() {
        for len in 1..=MAX_MESSAGE_LEN {
            let m = torn_message(1, 77, len);
            let seen = check_torn(&m[..len]).unwrap();
            assert_eq!(seen, (len >= 6).then_some((1, 77)));
            if len > 8 {
                // The length of this message with the first word of another (same length).
                let mut mixed = torn_message(0, 78, len);
                mixed[8..len].copy_from_slice(&m[8..len]);
                assert!(check_torn(&mixed[..len]).is_err(), "len {len}");
            }
        }
        // A length of one message with the bytes of another.
        let long = torn_message(0, 5, 100);
        assert!(check_torn(&long[..60]).is_err());
    }
}
