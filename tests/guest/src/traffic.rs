// SPDX-License-Identifier: GPL-2.0

//! The concurrency tests' traffic: the writer and reader loops (shared by the thread and the
//! process variants) and the self-checking messages they exchange.
//!
//! Messages are the shared codec's ([`message_slot_test_support::message_codec`]): a message
//! names its minor, channel, writer and sequence number and carries a checksum, so any torn,
//! mixed or misplaced message is caught. Here a message is fully determined by
//! `(minor, channel, writer, seq)`: its length `1..=128` varies with `seq` and the nonce is
//! the suite's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use message_slot::Slot;
use message_slot_test_support::message_codec::{self as codec, Decoded, Meta};

use crate::util::{send_all, show, Context, TestResult, MAX_MESSAGE_LEN};

/// The nonce of every message the suite's concurrency tests write.
const NONCE: u32 = 0x5EED_0001;

/// Length of message `seq` of `writer`: cycles through every length `1..=MAX_MESSAGE_LEN`.
pub fn msg_len(writer: u32, seq: u32) -> usize {
    let mix = seq.wrapping_mul(37).wrapping_add(writer.wrapping_mul(11));
    1 + (mix % MAX_MESSAGE_LEN as u32) as usize
}

/// Encodes message `seq` of `writer` for `channel` of `minor` into `buf` and returns it.
pub fn encode(
    minor: u32,
    channel: u32,
    writer: u32,
    seq: u32,
    buf: &mut [u8; MAX_MESSAGE_LEN],
) -> &[u8] {
    let meta = Meta {
        minor,
        channel,
        nonce: NONCE,
        writer,
        seq,
    };
    codec::encode(&meta, msg_len(writer, seq), buf)
}

/// Checks a message read from `channel` of `minor`. Returns `(writer, seq)` for full
/// messages (short ones carry no header).
pub fn verify(got: &[u8], minor: u32, channel: u32) -> Result<Option<(u32, u32)>, String> {
    match codec::decode(got, minor, channel, NONCE)? {
        Decoded::Short => Ok(None),
        Decoded::ShortForeign => Err(format!(
            "corrupt short message on channel {channel}: {}",
            show(got)
        )),
        Decoded::Full(m) => {
            ensure!(
                m.nonce == NONCE && got.len() == msg_len(m.writer, m.seq),
                "foreign message on channel {channel} (header says nonce {:#x} writer {} seq {}): {}",
                m.nonce,
                m.writer,
                m.seq,
                show(got)
            );
            Ok(Some((m.writer, m.seq)))
        }
    }
}

/// Loops yield the CPU this often so that writers and readers interleave finely even when
/// there are more of them than CPUs.
const YIELD_EVERY: u32 = 16;

/// Writer id of the end-of-test marker.
pub const STOP_WRITER: u32 = 255;
/// Sequence number of the end-of-test marker (a full message, see the unit tests).
pub const STOP_SEQ: u32 = u32::MAX;

/// Writes messages `1..=count` of `writer` to `channels` of `minor`. With one channel the
/// descriptor must already be bound to it; with several it is re-bound before every write,
/// cycling through them.
pub fn writer_loop(
    slot: &Slot,
    minor: u32,
    writer: u32,
    count: u32,
    channels: &[u32],
) -> Result<(), String> {
    for seq in 1..=count {
        let channel = channels[seq as usize % channels.len()];
        if channels.len() > 1 {
            slot.set_channel(channel)
                .ctx(&format!("writer {writer}: bind {channel}"))?;
        }
        send_message(slot, minor, channel, writer, seq)?;
    }
    Ok(())
}

/// Writes message `seq` of `writer` through `slot`, bound to `channel` of `minor` (yielding
/// the CPU every [`YIELD_EVERY`] sequence numbers first).
fn send_message(slot: &Slot, minor: u32, channel: u32, writer: u32, seq: u32) -> TestResult {
    if seq.is_multiple_of(YIELD_EVERY) {
        std::thread::yield_now();
    }
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let msg = encode(minor, channel, writer, seq, &mut buf);
    send_all(
        slot,
        msg,
        &format!("writer {writer}: write seq {seq} to channel {channel}"),
    )
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
/// cycling through `channels` of `minor` (with one channel the descriptor must already be
/// bound; with several it is re-bound before every read). Verifies every message and that,
/// per writer and channel, the sequence numbers seen never go backwards.
pub fn reader_loop(
    slot: &Slot,
    minor: u32,
    channels: &[u32],
    limit: Duration,
) -> Result<ReadStats, String> {
    let start = Instant::now();
    let mut last: HashMap<(u32, u32), u32> = HashMap::new();
    let mut stopped = vec![false; channels.len()];
    let mut stats = ReadStats::default();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
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
        match verify(&buf[..n], minor, channel)? {
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

/// Stores message `seq` of `writer` on each of `channels` of `minor` (re-binding `slot`).
pub fn store_on_all(
    slot: &Slot,
    minor: u32,
    writer: u32,
    seq: u32,
    channels: &[u32],
) -> Result<(), String> {
    for &channel in channels {
        slot.set_channel(channel).ctx("bind")?;
        send_message(slot, minor, channel, writer, seq)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::MIN_FULL;

    const MINOR: u32 = 3;

    #[test]
    fn every_length_round_trips() {
        let mut lengths = [false; MAX_MESSAGE_LEN + 1];
        for writer in [0, 1, 7, 254, STOP_WRITER] {
            for seq in (0..300u32).chain([u32::MAX - 1, u32::MAX]) {
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                let msg = encode(MINOR, 0xABCD, writer, seq, &mut buf).to_vec();
                lengths[msg.len()] = true;
                let got = verify(&msg, MINOR, 0xABCD).unwrap();
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
    fn detects_mixing_and_wrong_place() {
        let (mut a, mut b) = ([0u8; MAX_MESSAGE_LEN], [0u8; MAX_MESSAGE_LEN]);
        let seq_a = (1..).find(|&s| msg_len(1, s) == MAX_MESSAGE_LEN).unwrap();
        let seq_b = (seq_a + 1..)
            .find(|&s| msg_len(2, s) == MAX_MESSAGE_LEN)
            .unwrap();
        let a = encode(MINOR, 5, 1, seq_a, &mut a).to_vec();
        let b = encode(MINOR, 5, 2, seq_b, &mut b).to_vec();
        let mut torn = a.clone();
        torn[64..].copy_from_slice(&b[64..]);
        assert!(verify(&torn, MINOR, 5).is_err());
        assert!(verify(&a, MINOR, 6).is_err());
        assert!(verify(&a, MINOR + 1, 5).is_err());
        assert!(verify(&a[..MAX_MESSAGE_LEN - 1], MINOR, 5).is_err());
        assert!(verify(&[], MINOR, 5).is_err());
    }

    #[test]
    fn rejects_other_runs_and_lengths() {
        let seq = (1..).find(|&s| msg_len(1, s) == MAX_MESSAGE_LEN).unwrap();
        let meta = Meta {
            minor: MINOR,
            channel: 5,
            nonce: NONCE ^ 1,
            writer: 1,
            seq,
        };
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        assert!(verify(codec::encode(&meta, MAX_MESSAGE_LEN, &mut buf), MINOR, 5).is_err());
        let meta = Meta {
            nonce: NONCE,
            ..meta
        };
        assert!(verify(
            codec::encode(&meta, MAX_MESSAGE_LEN - 1, &mut buf),
            MINOR,
            5
        )
        .is_err());
        assert!(verify(codec::encode(&meta, MAX_MESSAGE_LEN, &mut buf), MINOR, 5).is_ok());
    }
}
