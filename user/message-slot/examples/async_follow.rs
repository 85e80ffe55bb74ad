// SPDX-License-Identifier: GPL-2.0

//! Follows a message-slot channel from async code: tokio's `AsyncFd` waits for the device to
//! report the file readable (a message it has not received), then the message is received
//! without blocking. Ctrl-C ends it.
//!
//! ```text
//! cargo run -p message-slot --example async_follow -- /dev/slot0 7
//! ```
//!
//! `AsyncFd` registers the descriptor with epoll, edge-triggered, once: a file's epoll
//! registration follows the channel bound when it was made, so bind first (re-binding
//! needs a new registration).

use std::io;

use message_slot::Slot;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(device), Some(channel)) = (args.next(), args.next()) else {
        eprintln!("usage: async_follow <device> <channel>");
        std::process::exit(1);
    };
    let channel: u32 = channel
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let slot = Slot::open_read_only(&device)?;
    slot.set_channel(channel)?;
    // SAFETY: A `Slot` owns its descriptor, which stays open and the same until the `Slot` is
    // dropped (with the `AsyncFd`).
    let slot = unsafe { AsyncFd::register_with_interest(slot, Interest::READABLE) }
        .map_err(io::Error::from)?;
    loop {
        let mut ready = tokio::select! {
            ready = slot.readable() => ready?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        // Readable: the channel holds a message (a channel never loses its message).
        let message = ready.get_inner().receive_message()?;
        println!("{}", String::from_utf8_lossy(&message));
        // The message is received, so the file is not readable until the next write: clear
        // the readiness (tokio keeps a readiness that arrived after `readable()` returned).
        ready.clear_ready();
    }
}
