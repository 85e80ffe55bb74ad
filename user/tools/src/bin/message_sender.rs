// SPDX-License-Identifier: GPL-2.0

//! `message_sender <device> <channel> <message>`: stores a message in a message-slot channel.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use message_slot::Slot;
use message_slot_tools::{parse_channel, Failure};

/// Replaces the message of a message-slot channel.
#[derive(Parser)]
#[command(name = "message_sender", version)]
struct Args {
    /// Message-slot device file, e.g. /dev/slot0.
    device: PathBuf,
    /// Channel id, a decimal number from 1 to 4294967295.
    #[arg(value_parser = parse_channel, allow_hyphen_values = true)]
    channel: u32,
    /// Message to store: the argument's bytes, without a trailing NUL (1 to 128 bytes).
    #[arg(allow_hyphen_values = true)]
    message: OsString,
}

fn send(args: Args) -> Result<u8, Failure> {
    let message = args.message.as_bytes();
    let slot = Slot::open_write_only(&args.device)?;
    slot.set_channel(args.channel)?;
    let written = slot.send(message)?;
    if written != message.len() {
        return Err(Failure::ShortWrite {
            written,
            len: message.len(),
        });
    }
    Ok(0)
}

fn main() -> ExitCode {
    message_slot_tools::run(send)
}
