// SPDX-License-Identifier: GPL-2.0

//! `message_sender <device> <channel> <message>`: stores a message in a message-slot channel.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use message_slot::Slot;
use message_slot_tools::{Failure, SenderArgs};

fn send(args: SenderArgs) -> Result<u8, Failure> {
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
