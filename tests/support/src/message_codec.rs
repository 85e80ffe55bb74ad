// SPDX-License-Identifier: GPL-2.0

//! Self-describing messages.
//!
//! A message of at least [`MIN_FULL`] bytes is
//! `len u8 | minor u8 | nonce u32 | channel u32 | writer u32 | seq u32 | payload | fnv1a u32`
//! (little-endian), where the payload (with NUL bytes) is derived from the header; a reader
//! re-encodes the message from its header and compares every byte, so a torn, truncated,
//! mixed or misplaced message (wrong minor or channel) is caught. `nonce` identifies the run,
//! so messages left by an earlier run in the same boot are recognised. Shorter messages are a
//! fill byte derived from `(len, minor, channel, nonce)`.

pub use message_slot::MAX_MESSAGE_LEN;
/// Header bytes of a full message.
const HEADER: usize = 18;
/// Shortest message carrying a header and a checksum.
pub const MIN_FULL: usize = HEADER + 4;

/// Who wrote a message and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Minor of the slot.
    pub minor: u32,
    /// Channel id.
    pub channel: u32,
    /// Run nonce.
    pub nonce: u32,
    /// Writer id.
    pub writer: u32,
    /// Writer's sequence number.
    pub seq: u32,
}

/// What a successfully decoded message is.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A full message with its header (its nonce may be another run's).
    Full(Meta),
    /// A short fill message of this run.
    Short,
    /// A short message whose fill does not match this run's nonce (maybe an earlier run's).
    ShortForeign,
}

fn short_fill(len: usize, minor: u32, channel: u32, nonce: u32) -> u8 {
    let x = (len as u32).wrapping_mul(0x9E37_79B1) ^ minor.wrapping_mul(31) ^ channel ^ nonce;
    (x ^ (x >> 8) ^ (x >> 16) ^ (x >> 24)) as u8 | 1
}

fn payload_byte(meta: &Meta, i: usize) -> u8 {
    if i.is_multiple_of(7) {
        return 0;
    }
    let x = meta.seq.wrapping_mul(0x9E37_79B9)
        ^ meta.writer.wrapping_mul(0x85EB_CA6B)
        ^ meta.nonce
        ^ (i as u32).wrapping_mul(0xC2B2_AE35);
    (x ^ (x >> 13) ^ (x >> 24)) as u8
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Encodes the `len`-byte message (`1..=MAX_MESSAGE_LEN`) described by `meta` into `out[..len]` and
/// returns it.
pub fn encode<'a>(meta: &Meta, len: usize, out: &'a mut [u8]) -> &'a [u8] {
    let out = &mut out[..len];
    if len < MIN_FULL {
        out.fill(short_fill(len, meta.minor, meta.channel, meta.nonce));
        return out;
    }
    out[0] = len as u8;
    out[1] = meta.minor as u8;
    out[2..6].copy_from_slice(&meta.nonce.to_le_bytes());
    out[6..10].copy_from_slice(&meta.channel.to_le_bytes());
    out[10..14].copy_from_slice(&meta.writer.to_le_bytes());
    out[14..18].copy_from_slice(&meta.seq.to_le_bytes());
    for (i, b) in out.iter_mut().enumerate().take(len - 4).skip(HEADER) {
        *b = payload_byte(meta, i);
    }
    let sum = fnv1a(&out[..len - 4]);
    out[len - 4..].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Checks a message read from `channel` of `minor` (this run: `nonce`).
pub fn decode(got: &[u8], minor: u32, channel: u32, nonce: u32) -> Result<Decoded, String> {
    let len = got.len();
    if !(1..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(format!(
            "read returned length {len} on minor {minor} channel {channel:#x}"
        ));
    }
    if len < MIN_FULL {
        let first = got[0];
        if !got.iter().all(|&b| b == first) {
            return Err(format!(
                "corrupt short message on minor {minor} channel {channel:#x}: {}",
                show(got)
            ));
        }
        return Ok(if first == short_fill(len, minor, channel, nonce) {
            Decoded::Short
        } else {
            Decoded::ShortForeign
        });
    }
    let meta = Meta {
        minor: u32::from(got[1]),
        nonce: le32(&got[2..]),
        channel: le32(&got[6..]),
        writer: le32(&got[10..]),
        seq: le32(&got[14..]),
    };
    if usize::from(got[0]) != len {
        return Err(format!(
            "header says length {} but read returned {len}: {}",
            got[0],
            show(got)
        ));
    }
    if meta.minor != minor & 0xFF || meta.channel != channel {
        return Err(format!(
            "message for minor {} channel {:#x} read from minor {minor} channel {channel:#x}",
            meta.minor, meta.channel
        ));
    }
    let mut want = [0u8; MAX_MESSAGE_LEN];
    let want = encode(&meta, len, &mut want);
    if got != want {
        return Err(format!(
            "torn or corrupt message on minor {minor} channel {channel:#x} (header: writer \
             {:#x} seq {}): got {}, expected {}",
            meta.writer,
            meta.seq,
            show(got),
            show(want)
        ));
    }
    Ok(Decoded::Full(meta))
}

/// Short printable form of a byte string for failure messages.
pub fn show(bytes: &[u8]) -> String {
    const LIMIT: usize = 48;
    let hex: String = bytes
        .iter()
        .take(LIMIT)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if bytes.len() > LIMIT { ".." } else { "" };
    format!("{} bytes [{hex}{more}]", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINOR: u32 = 254;
    const CHANNEL: u32 = 0xE000_0001;
    const NONCE: u32 = 0x1234_5678;

    fn meta(writer: u32, seq: u32) -> Meta {
        Meta {
            minor: MINOR,
            channel: CHANNEL,
            nonce: NONCE,
            writer,
            seq,
        }
    }

    #[test]
    fn every_length_round_trips() {
        for writer in [0, 1, 255, 0x0102_0003, u32::MAX] {
            for len in 1..=MAX_MESSAGE_LEN {
                let m = meta(writer, len as u32);
                let mut buf = [0u8; MAX_MESSAGE_LEN];
                let msg = encode(&m, len, &mut buf);
                assert_eq!(msg.len(), len);
                let d = decode(msg, MINOR, CHANNEL, NONCE).unwrap();
                if len >= MIN_FULL {
                    assert_eq!(d, Decoded::Full(m));
                    if len >= HEADER + 4 + 8 {
                        assert!(msg[HEADER..len - 4].contains(&0), "payload has NULs");
                    }
                } else {
                    assert_eq!(d, Decoded::Short);
                }
            }
        }
    }

    #[test]
    fn detects_damage() {
        let (mut a, mut b) = ([0u8; MAX_MESSAGE_LEN], [0u8; MAX_MESSAGE_LEN]);
        encode(&meta(1, 1), MAX_MESSAGE_LEN, &mut a);
        encode(&meta(2, 2), MAX_MESSAGE_LEN, &mut b);
        let mut torn = a;
        torn[64..].copy_from_slice(&b[64..]);
        assert!(decode(&torn, MINOR, CHANNEL, NONCE).is_err());
        assert!(decode(&a, MINOR - 1, CHANNEL, NONCE).is_err());
        assert!(decode(&a, MINOR, CHANNEL + 1, NONCE).is_err());
        assert!(decode(&a[..MAX_MESSAGE_LEN - 1], MINOR, CHANNEL, NONCE).is_err());
        assert!(decode(&[], MINOR, CHANNEL, NONCE).is_err());
        let mut flipped = a;
        flipped[MAX_MESSAGE_LEN - 1] ^= 1;
        assert!(decode(&flipped, MINOR, CHANNEL, NONCE).is_err());
        let mut s = [0u8; 5];
        encode(&meta(1, 1), 5, &mut s);
        s[4] ^= 1;
        assert!(decode(&s, MINOR, CHANNEL, NONCE).is_err());
    }

    #[test]
    fn other_runs_are_recognised() {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let full = encode(&meta(1, 1), MAX_MESSAGE_LEN, &mut buf).to_vec();
        let other = NONCE ^ 0x10;
        match decode(&full, MINOR, CHANNEL, other).unwrap() {
            Decoded::Full(m) => assert_eq!(m.nonce, NONCE),
            d => panic!("{d:?}"),
        }
        let short = encode(&meta(1, 1), 5, &mut buf).to_vec();
        // Another channel's or run's fill is not this run's message.
        assert_eq!(
            decode(&short, MINOR, CHANNEL, other).unwrap(),
            Decoded::ShortForeign
        );
        assert_eq!(
            decode(&short, MINOR, CHANNEL + 1, NONCE).unwrap(),
            Decoded::ShortForeign
        );
    }

    #[test]
    fn show_truncates() {
        assert_eq!(show(&[0, 0xAB]), "2 bytes [00ab]");
        assert!(show(&[0; 100]).ends_with("..]"));
    }
}
