// SPDX-License-Identifier: GPL-2.0

//! Child-process roles, entered when the binary is re-executed as
//! `message-slot-guest-tests --child <kind> <args...>`. A child exits 0 on success and
//! otherwise prints the reason on stderr and exits 1.
//!
//! Kinds:
//! - `write <path> <channel> <hex>`: store a message and exit.
//! - `expect <path> <channel> <hex>`: read the channel and compare with the message.
//! - `writer <path> <writer-id> <count> <ch,ch,...>`: [`crate::traffic::writer_loop`].
//! - `reader <path> <ready-channel> <ch,ch,...>`: writes `ready` to the ready channel, then
//!   runs [`crate::traffic::reader_loop`] and prints `<reads> <new-messages>` on stdout.

use std::path::Path;
use std::time::Duration;

use message_slot::Slot;

use crate::traffic;
use crate::util::{expect_message, minor_of, open, open_bound, send_all, unhex};

/// The hidden first argument that selects child mode.
pub const FLAG: &str = "--child";

/// Runs the child role described by `args` (the arguments after [`FLAG`]); returns the exit
/// status.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {args:?}: {e}");
            1
        }
    }
}

fn parse<T: std::str::FromStr>(s: Option<&String>, what: &str) -> Result<T, String> {
    s.ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}"))
}

fn parse_channels(s: Option<&String>) -> Result<Vec<u32>, String> {
    let list = s.ok_or("missing channel list")?;
    list.split(',')
        .map(|c| c.parse().map_err(|_| format!("bad channel {c:?}")))
        .collect()
}

/// Longest a reader child waits for the stop marker.
const READER_LIMIT: Duration = Duration::from_secs(90);

/// Opens `path`, bound to the channel if there is only one (loops re-bind otherwise).
fn open_for(path: &Path, channels: &[u32]) -> Result<Slot, String> {
    match channels {
        [only] => open_bound(path, *only),
        _ => open(path),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let kind = args.first().map(String::as_str).unwrap_or("");
    let path = Path::new(args.get(1).ok_or("missing device path")?);
    match kind {
        "write" => {
            let slot = open_bound(path, parse(args.get(2), "channel")?)?;
            send_all(
                &slot,
                &unhex(args.get(3).ok_or("missing message")?)?,
                "write",
            )
        }
        "expect" => {
            let slot = open_bound(path, parse(args.get(2), "channel")?)?;
            let want = unhex(args.get(3).ok_or("missing message")?)?;
            expect_message(&slot, &want, "read")
        }
        "writer" => {
            let writer: u32 = parse(args.get(2), "writer id")?;
            let count: u32 = parse(args.get(3), "count")?;
            let channels = parse_channels(args.get(4))?;
            let slot = open_for(path, &channels)?;
            traffic::writer_loop(&slot, minor_of(path)?, writer, count, &channels)
        }
        "reader" => {
            let ready: u32 = parse(args.get(2), "ready channel")?;
            let channels = parse_channels(args.get(3))?;
            let slot = open_for(path, &channels)?;
            send_all(&open_bound(path, ready)?, b"ready", "announce readiness")?;
            let stats = traffic::reader_loop(&slot, minor_of(path)?, &channels, READER_LIMIT)?;
            println!("{} {}", stats.reads, stats.new_messages);
            Ok(())
        }
        _ => Err(format!("unknown child kind {kind:?}")),
    }
}
