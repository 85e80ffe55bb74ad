// SPDX-License-Identifier: GPL-2.0

//! The mapped record's sequence protocol (`uapi::Record`): one reader, shared by the
//! `mapped` cases (a channel's record mapped from the device) and the `shm_reference` case
//! (the same protocol on a memfd page, no kernel), and the writer the reference publishes
//! with.
//!
//! The reader is the library's ([`message_slot::read_record`]): the one implementation of the
//! protocol, which `MappedChannel` runs too. The writer ([`publish`]) is the bench's: only the
//! kernel writes a device's record.

use std::sync::atomic::{fence, Ordering};

use message_slot::Errno;

pub use message_slot::{Record, MSG_SLOT_RECORD_OFFSET, RECORD_SIZE};

use crate::sys::MAX_MESSAGE_LEN;

/// Bytes of one message word.
const WORD: usize = std::mem::size_of::<u64>();

/// Reads the message of `record` into `buf` with the library's reader
/// ([`message_slot::read_record`]: at most `MAPPED_READ_ATTEMPTS` attempts), then, if a write
/// overlapped every attempt, `fallback` once (the device's `read(2)` on the bound fd, which
/// takes the writer's lock instead of spinning). `Ok(len)`, or `EAGAIN` (no message yet),
/// `ENOSPC` (longer than `buf`), or the fallback's error.
#[inline]
pub fn read(
    record: &Record,
    buf: &mut [u8],
    fallback: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    match message_slot::read_record(record, buf) {
        Some((_, result)) => result,
        None => fallback(buf),
    }
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

    use message_slot::RECORD_WORDS;
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
        assert_eq!(message_slot::read_record(&record, &mut buf), None);
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
