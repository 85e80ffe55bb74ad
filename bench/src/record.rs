// SPDX-License-Identifier: GPL-2.0

//! The mapped record's sequence protocol (`uapi::Record`): one reader, shared by the
//! `mapped` cases (a channel's record mapped from the device) and the `shm_reference` case
//! (the same protocol on a memfd page, no kernel), and the writer the reference publishes
//! with.
//!
//! TODO(issue 26): once the library's `Slot::map_channel()` / `MappedChannel::read()` is
//! merged, read the device's mapping through `MappedChannel` and the reference through the
//! library's reader over a `&Record` (whichever it exports; both cases should keep running
//! one reader, see `mapped::MappedReader`), and drop this module's reader and the `#[path]`
//! include of uapi.rs below (the library does not export `Record` yet). The writer
//! ([`publish`]) stays: only the kernel writes a device's record.

use std::sync::atomic::{fence, Ordering};

use rustix::io::Errno;

// The ABI itself rather than a copy of it (as the kernel and the host tests include it).
#[allow(dead_code)]
#[path = "../../uapi/uapi.rs"]
mod uapi;

pub use uapi::{Record, MAPPED_READ_ATTEMPTS, MSG_SLOT_RECORD_OFFSET, RECORD_SIZE, RECORD_WORDS};

use crate::sys::MAX_MESSAGE_LEN;

/// Bytes of one message word.
const WORD: usize = std::mem::size_of::<u64>();

/// What one attempt at reading a record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// A whole message of this many bytes, copied out.
    Read(usize),
    /// The record was being written (odd sequence) or changed during the attempt.
    Torn,
    /// A whole record and no message yet (length 0): `EAGAIN`.
    Empty,
    /// A whole message longer than the buffer: `ENOSPC`, nothing copied.
    TooLong,
}

/// One attempt of the reader protocol: the sequence (acquire), the length and the words it
/// needs (relaxed atomic loads), an acquire fence, the sequence again (relaxed); only when
/// both sequences are the same even number is the message copied to `buf`.
#[inline]
pub fn attempt(record: &Record, buf: &mut [u8]) -> Attempt {
    let before = record.sequence.load(Ordering::Acquire);
    if before & 1 != 0 {
        return Attempt::Torn;
    }
    // Clamped so that a torn length never indexes past the words; checked after the fence.
    let len = (record.length.load(Ordering::Relaxed) as usize).min(MAX_MESSAGE_LEN);
    let mut words = [0u64; RECORD_WORDS];
    for (word, mapped) in words
        .iter_mut()
        .zip(&record.message)
        .take(len.div_ceil(WORD))
    {
        *word = mapped.load(Ordering::Relaxed);
    }
    fence(Ordering::Acquire);
    if record.sequence.load(Ordering::Relaxed) != before {
        return Attempt::Torn;
    }
    if len == 0 {
        return Attempt::Empty;
    }
    let Some(out) = buf.get_mut(..len) else {
        return Attempt::TooLong;
    };
    // Whole words as 8-byte stores (a copy of a part-word's length per word would be a
    // `memcpy` call each), the last part-word (if any) byte by byte.
    let mut whole = out.chunks_exact_mut(WORD);
    for (chunk, word) in (&mut whole).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    if let Some(word) = words.get(len / WORD) {
        for (byte, value) in whole.into_remainder().iter_mut().zip(word.to_ne_bytes()) {
            *byte = value;
        }
    }
    Attempt::Read(len)
}

/// Reads the message of `record` into `buf`: at most [`MAPPED_READ_ATTEMPTS`] attempts, then
/// `fallback` once (the device's `read(2)` on the bound fd, which takes the writer's lock
/// instead of spinning). `Ok(len)`, or `EAGAIN` (no message yet), `ENOSPC` (longer than
/// `buf`), or the fallback's error.
#[inline]
pub fn read(
    record: &Record,
    buf: &mut [u8],
    fallback: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    for _ in 0..MAPPED_READ_ATTEMPTS {
        match attempt(record, buf) {
            Attempt::Read(len) => return Ok(len),
            Attempt::Empty => return Err(Errno::AGAIN),
            Attempt::TooLong => return Err(Errno::NOSPC),
            Attempt::Torn => std::hint::spin_loop(),
        }
    }
    fallback(buf)
}

/// Stores `message` (1..=[`MAX_MESSAGE_LEN`] bytes) in `record` with the kernel's writer
/// protocol: sequence odd, release fence, every word (the message, then zeros) and the
/// length, sequence even (release). One writer at a time; allocates nothing (it runs in a
/// forked child).
pub fn publish(record: &Record, message: &[u8]) {
    assert!((1..=MAX_MESSAGE_LEN).contains(&message.len()));
    let sequence = record.sequence.load(Ordering::Relaxed);
    record
        .sequence
        .store(sequence.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    for (index, word) in record.message.iter().enumerate() {
        let mut bytes = [0u8; WORD];
        if let Some(chunk) = message.chunks(WORD).nth(index) {
            bytes[..chunk.len()].copy_from_slice(chunk);
        }
        word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    record.length.store(message.len() as u32, Ordering::Relaxed);
    record
        .sequence
        .store(sequence.wrapping_add(2), Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

    fn zeroed() -> Record {
        Record {
            sequence: AtomicU32::new(0),
            length: AtomicU32::new(0),
            message: [const { AtomicU64::new(0) }; RECORD_WORDS],
        }
    }

    fn no_fallback(_: &mut [u8]) -> Result<usize, Errno> {
        panic!("the reader fell back on a stable record");
    }

    #[test]
    fn reads_what_was_published() {
        let record = zeroed();
        for message in [
            &b"x"[..],
            b"12345678",
            b"123456789",
            &[0xa5; MAX_MESSAGE_LEN],
        ] {
            publish(&record, message);
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            assert_eq!(read(&record, &mut buf, no_fallback), Ok(message.len()));
            assert_eq!(&buf[..message.len()], message);
        }
        assert_eq!(record.sequence.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_shorter_message_clears_the_longer_ones_bytes() {
        let record = zeroed();
        publish(&record, &[0xff; MAX_MESSAGE_LEN]);
        publish(&record, b"abc");
        let words: Vec<u64> = record
            .message
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .collect();
        let mut first = [0u8; WORD];
        first[..3].copy_from_slice(b"abc");
        assert_eq!(words[0], u64::from_ne_bytes(first));
        assert!(words[1..].iter().all(|&w| w == 0));
    }

    #[test]
    fn empty_and_too_long() {
        let record = zeroed();
        let mut buf = [0u8; 4];
        assert_eq!(read(&record, &mut buf, no_fallback), Err(Errno::AGAIN));
        publish(&record, b"12345");
        assert_eq!(read(&record, &mut buf, no_fallback), Err(Errno::NOSPC));
        assert_eq!(buf, [0; 4], "ENOSPC copied bytes");
    }

    #[test]
    fn a_record_being_written_falls_back_after_the_attempts() {
        let record = zeroed();
        publish(&record, b"stale");
        record.sequence.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let fallback = |buf: &mut [u8]| {
            buf[..4].copy_from_slice(b"read");
            Ok(4)
        };
        assert_eq!(read(&record, &mut buf, fallback), Ok(4));
        assert_eq!(&buf[..4], b"read");
        assert_eq!(attempt(&record, &mut buf), Attempt::Torn);
    }

    /// Message `generation`: 1..=128 bytes, byte `i` is `generation + i`, so that bytes of
    /// two messages mixed (or a length of another message) show.
    fn message(generation: u32, buf: &mut [u8; MAX_MESSAGE_LEN]) -> &[u8] {
        let len = 1 + generation as usize % MAX_MESSAGE_LEN;
        for (i, b) in buf[..len].iter_mut().enumerate() {
            *b = (generation as usize + i) as u8;
        }
        &buf[..len]
    }

    /// Reads `record` for half a second: the reads that got a message, the messages seen, or
    /// the first torn one.
    fn read_while_written(record: &Record) -> Result<(u32, usize), String> {
        let (mut reads, mut seen) = (0u32, std::collections::HashSet::new());
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(500) {
            match read(record, &mut buf, |_| Err(Errno::BUSY)) {
                Ok(len) => {
                    // The first byte gives the generation modulo 256, which says the length.
                    let mut want = [0u8; MAX_MESSAGE_LEN];
                    if &buf[..len] != message(u32::from(buf[0]), &mut want) {
                        return Err(format!("torn read: {:?}", &buf[..len]));
                    }
                    reads += 1;
                    seen.insert(buf[0]);
                }
                Err(Errno::AGAIN) | Err(Errno::BUSY) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok((reads, seen.len()))
    }

    #[test]
    fn a_reader_racing_a_writer_sees_whole_messages_only() {
        let record = zeroed();
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                let mut generation = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    publish(&record, message(generation, &mut buf));
                    generation = generation.wrapping_add(1);
                }
            });
            let result = read_while_written(&record);
            stop.store(true, Ordering::Relaxed);
            result
        });
        let (reads, messages) = result.unwrap();
        assert!(reads > 0, "no read got a whole message");
        assert!(
            messages > 1,
            "the reader saw {messages} message(s): no race"
        );
    }
}
