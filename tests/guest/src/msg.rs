// SPDX-License-Identifier: GPL-2.0

//! Self-checking messages for the concurrency tests, and the writer/reader loops that use
//! them (shared by the thread and the process variants).
//!
//! A message is fully determined by `(writer, seq, channel)`; its length `1..=128` varies
//! with `seq`. Messages of at least [`MIN_FULL`] bytes carry a header
//! `writer u8 | seq u32 LE | channel u32 LE | len u8`, a payload derived from the header
//! (with NUL bytes) and a trailing FNV-1a checksum; a reader re-encodes the message from
//! the header and compares every byte, so any torn or mixed message is caught. Shorter
//! messages are a fill byte derived from `(len, channel)`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use message_slot::Slot;

use crate::util::{show, Context, MAX_MSG};

/// Header bytes of a full message.
const HEADER: usize = 10;
/// Shortest message that carries header and checksum.
pub const MIN_FULL: usize = HEADER + 4;

/// Length of message `seq` of `writer`: cycles through every length `1..=MAX_MSG`.
pub fn msg_len(writer: u8, seq: u32) -> usize {
    let mix = seq.wrapping_mul(37).wrapping_add(u32::from(writer) * 11);
    1 + (mix % MAX_MSG as u32) as usize
}

fn short_fill(len: usize, channel: u32) -> u8 {
    0xA5 ^ (len as u8).wrapping_mul(3) ^ channel.to_le_bytes()[0]
}

fn payload_byte(writer: u8, seq: u32, i: usize) -> u8 {
    if i.is_multiple_of(7) {
        return 0;
    }
    let x = seq.wrapping_mul(0x9E37_79B9) ^ u32::from(writer).wrapping_mul(97) ^ (i as u32 * 13);
    (x ^ (x >> 11) ^ (x >> 23)) as u8
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Encodes message `seq` of `writer` for `channel` into `buf` and returns it.
pub fn encode(writer: u8, seq: u32, channel: u32, buf: &mut [u8; MAX_MSG]) -> &[u8] {
    let len = msg_len(writer, seq);
    if len < MIN_FULL {
        buf[..len].fill(short_fill(len, channel));
        return &buf[..len];
    }
    buf[0] = writer;
    buf[1..5].copy_from_slice(&seq.to_le_bytes());
    buf[5..9].copy_from_slice(&channel.to_le_bytes());
    buf[9] = len as u8;
    for (i, b) in buf.iter_mut().enumerate().take(len - 4).skip(HEADER) {
        *b = payload_byte(writer, seq, i);
    }
    let sum = fnv1a(&buf[..len - 4]);
    buf[len - 4..len].copy_from_slice(&sum.to_le_bytes());
    &buf[..len]
}

/// Checks a message read from `channel`. Returns `(writer, seq)` for full messages.
pub fn verify(got: &[u8], channel: u32) -> Result<Option<(u8, u32)>, String> {
    let len = got.len();
    ensure!(
        (1..=MAX_MSG).contains(&len),
        "read returned length {len} on channel {channel}"
    );
    if len < MIN_FULL {
        let fill = short_fill(len, channel);
        ensure!(
            got.iter().all(|&b| b == fill),
            "corrupt short message on channel {channel}: {}",
            show(got)
        );
        return Ok(None);
    }
    let writer = got[0];
    let seq = u32::from_le_bytes([got[1], got[2], got[3], got[4]]);
    let mut buf = [0u8; MAX_MSG];
    let want = encode(writer, seq, channel, &mut buf);
    ensure!(
        got == want,
        "torn or foreign message on channel {channel} (header says writer {writer} seq {seq}): \
         got {}, expected {}",
        show(got),
        show(want)
    );
    Ok(Some((writer, seq)))
}

/// Loops yield the CPU this often so that writers and readers interleave finely even when
/// there are more of them than CPUs.
const YIELD_EVERY: u32 = 16;

/// Writer id of the end-of-test marker.
pub const STOP_WRITER: u8 = 255;
/// Sequence number of the end-of-test marker (a full message, see the unit tests).
pub const STOP_SEQ: u32 = u32::MAX;

/// Writes messages `1..=count` of `writer`. With one channel the descriptor must already be
/// bound to it; with several it is re-bound before every write, cycling through them.
pub fn writer_loop(slot: &Slot, writer: u8, count: u32, channels: &[u32]) -> Result<(), String> {
    let mut buf = [0u8; MAX_MSG];
    for seq in 1..=count {
        let channel = channels[seq as usize % channels.len()];
        if channels.len() > 1 {
            slot.set_channel(channel)
                .ctx(&format!("writer {writer}: bind {channel}"))?;
        }
        if seq.is_multiple_of(YIELD_EVERY) {
            std::thread::yield_now();
        }
        let msg = encode(writer, seq, channel, &mut buf);
        let n = slot
            .send(msg)
            .ctx(&format!("writer {writer}: write seq {seq}"))?;
        ensure!(
            n == msg.len(),
            "writer {writer}: write seq {seq} returned {n}, expected {}",
            msg.len()
        );
    }
    Ok(())
}

/// What a reader saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadStats {
    /// Successful reads.
    pub reads: u64,
    /// Reads that returned a full message newer than the previous one of its writer.
    pub new_messages: u64,
}

/// Reads until the stop marker has been seen on every channel (or fails after `limit`),
/// cycling through `channels` (with one channel the descriptor must already be bound; with
/// several it is re-bound before every read). Verifies every message and that, per writer
/// and channel, the sequence numbers seen never go backwards.
pub fn reader_loop(slot: &Slot, channels: &[u32], limit: Duration) -> Result<ReadStats, String> {
    let start = Instant::now();
    let mut last: HashMap<(u8, u32), u32> = HashMap::new();
    let mut stopped = vec![false; channels.len()];
    let mut stats = ReadStats::default();
    let mut buf = [0u8; MAX_MSG];
    for i in 0u64.. {
        if i % 64 == 0 && start.elapsed() > limit {
            return Err(format!(
                "reader: no stop marker on all channels after {}s ({stats:?})",
                limit.as_secs()
            ));
        }
        if i.is_multiple_of(u64::from(YIELD_EVERY)) {
            std::thread::yield_now();
        }
        let idx = (i % channels.len() as u64) as usize;
        let channel = channels[idx];
        if channels.len() > 1 {
            slot.set_channel(channel)
                .ctx(&format!("reader: bind {channel}"))?;
        }
        let n = slot
            .receive(&mut buf)
            .ctx(&format!("reader: read #{i} on channel {channel}"))?;
        stats.reads += 1;
        match verify(&buf[..n], channel)? {
            Some((STOP_WRITER, STOP_SEQ)) => {
                stopped[idx] = true;
                if stopped.iter().all(|&s| s) {
                    break;
                }
            }
            Some((writer, seq)) => {
                let prev = last.entry((writer, channel)).or_insert(0);
                ensure!(
                    seq >= *prev,
                    "channel {channel}: writer {writer} went back from seq {} to {seq}",
                    *prev
                );
                if seq > *prev {
                    stats.new_messages += 1;
                }
                *prev = seq;
            }
            None => {}
        }
    }
    Ok(stats)
}

/// Stores message `seq` of `writer` on each channel (re-binding `slot`).
pub fn store_on_all(slot: &Slot, writer: u8, seq: u32, channels: &[u32]) -> Result<(), String> {
    let mut buf = [0u8; MAX_MSG];
    for &channel in channels {
        slot.set_channel(channel).ctx("bind")?;
        if seq.is_multiple_of(YIELD_EVERY) {
            std::thread::yield_now();
        }
        let msg = encode(writer, seq, channel, &mut buf);
        let n = slot.send(msg).ctx("write")?;
        ensure!(n == msg.len(), "write returned {n}, expected {}", msg.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_round_trips() {
        let mut lengths = [false; MAX_MSG + 1];
        for writer in [0u8, 1, 7, 254, 255] {
            for seq in (0..300u32).chain([u32::MAX - 1, u32::MAX]) {
                let mut buf = [0u8; MAX_MSG];
                let msg = encode(writer, seq, 0xABCD, &mut buf).to_vec();
                lengths[msg.len()] = true;
                let got = verify(&msg, 0xABCD).unwrap();
                if msg.len() >= MIN_FULL {
                    assert_eq!(got, Some((writer, seq)));
                } else {
                    assert_eq!(got, None);
                }
            }
        }
        assert!(lengths[1..].iter().all(|&l| l));
    }

    #[test]
    fn stop_marker_is_full() {
        assert!(msg_len(STOP_WRITER, STOP_SEQ) >= MIN_FULL);
    }

    #[test]
    fn detects_mixing_and_wrong_channel() {
        let (mut a, mut b) = ([0u8; MAX_MSG], [0u8; MAX_MSG]);
        let seq_a = (1..).find(|&s| msg_len(1, s) == MAX_MSG).unwrap();
        let seq_b = (seq_a + 1..).find(|&s| msg_len(2, s) == MAX_MSG).unwrap();
        let a = encode(1, seq_a, 5, &mut a).to_vec();
        let b = encode(2, seq_b, 5, &mut b).to_vec();
        let mut torn = a.clone();
        torn[64..].copy_from_slice(&b[64..]);
        assert!(verify(&torn, 5).is_err());
        assert!(verify(&a, 6).is_err());
        assert!(verify(&a[..MAX_MSG - 1], 5).is_err());
        assert!(verify(&[], 5).is_err());
    }
}
