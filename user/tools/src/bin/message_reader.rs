// SPDX-License-Identifier: GPL-2.0

//! `message_reader <device> <channel>`: prints the message of a message-slot channel.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use message_slot::{Slot, MAX_MESSAGE_LEN};
use message_slot_tools::{parse_channel, Failure};

/// Writes the last message of a message-slot channel to stdout, exactly as stored.
#[derive(Parser)]
#[command(name = "message_reader", version)]
struct Args {
    /// Message-slot device file, e.g. /dev/slot0.
    device: PathBuf,
    /// Channel id, a decimal number from 1 to 4294967295.
    #[arg(value_parser = parse_channel, allow_hyphen_values = true)]
    channel: u32,
}

fn read(args: Args) -> Result<(), Failure> {
    let slot = Slot::open_read_only(&args.device)?;
    slot.set_channel(args.channel)?;
    let mut buf = [0; MAX_MESSAGE_LEN];
    let len = slot.receive(&mut buf)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&buf[..len])
        .and_then(|()| stdout.flush())
        .map_err(Failure::Stdout)
}

fn main() -> ExitCode {
    message_slot_tools::run(read)
}
