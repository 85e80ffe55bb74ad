// SPDX-License-Identifier: GPL-2.0

//! The library's mapped reader against the real module: `Slot::map_channel` and
//! `MappedChannel` (reads, sequence numbers, waiting for a change, errors, re-binding).

use std::thread;
use std::time::{Duration, Instant};

use message_slot::{ErrorKind, Operation, Slot, Wake, MAX_MESSAGE_LEN, RECORD_SIZE};

use crate::util::{
    expect_errno, fresh_channel, open, open_bound, scaled, send_all, show, slot_path, Context,
    TestResult,
};

/// A mapped channel reads what `read(2)` returns, without consuming it, at every length; the
/// sequence number starts at 0 and every write adds 2; a short buffer is `ENOSPC` with
/// nothing copied; `try_read` agrees; a write-only file cannot be mapped (`EACCES`), nor an
/// unbound one (`EINVAL`).
pub fn library_mapped_reads() -> TestResult {
    let path = slot_path(2)?;
    let ch = fresh_channel();
    let slot = open_bound(&path, ch)?;
    let mapped = slot.map_channel().ctx("map_channel")?;
    ensure!(
        mapped.record_offset() % RECORD_SIZE == 0,
        "record offset {} is not a record's",
        mapped.record_offset()
    );
    let error = mapped.read_message().unwrap_err();
    ensure!(
        error.kind() == ErrorKind::NoMessage && mapped.sequence() == 0,
        "a new channel: {error}, sequence {}",
        mapped.sequence()
    );
    for len in 1..=MAX_MESSAGE_LEN {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        send_all(&slot, &msg, "write")?;
        let from_map = mapped.read_message().ctx("mapped read")?;
        let from_read = slot.receive_message().ctx("read(2)")?;
        ensure!(
            from_map == msg && from_read == msg,
            "{len} bytes: mapped {}, read(2) {}",
            show(&from_map),
            show(&from_read)
        );
        ensure!(
            mapped.sequence() == 2 * len as u32 && !mapped.changed_since(2 * len as u32),
            "after {len} writes the sequence is {}",
            mapped.sequence()
        );
        let mut exact = vec![0; len];
        match mapped.try_read(&mut exact) {
            Some(Ok(n)) if n == len && exact == msg => {}
            other => return Err(format!("{len} bytes: try_read gave {other:?}")),
        }
        let mut short = vec![0xEE; len - 1];
        let error = mapped.read(&mut short).unwrap_err();
        ensure!(
            error.kind() == ErrorKind::BufferTooSmall && short.iter().all(|&b| b == 0xEE),
            "{len} bytes into {}: {error}",
            len - 1
        );
    }

    let write_only = Slot::open_write_only(&path).ctx("open O_WRONLY")?;
    write_only.set_channel(ch).ctx("bind")?;
    expect_errno(
        write_only.map_channel(),
        libc::EACCES,
        "map_channel of an O_WRONLY file",
    )?;
    let unbound = open(&path)?;
    let error = unbound.map_channel().unwrap_err();
    ensure!(
        error.operation() == &Operation::Map && error.kind() == ErrorKind::InvalidArgument,
        "map_channel of an unbound file: {error}"
    );
    Ok(())
}

/// `wait_for_change` times out while nothing is written, and returns `Wake::Message` for a
/// write from another thread, with a sequence 2 higher; after re-binding the slot, the
/// mapping still shows its channel.
pub fn library_mapped_wait_and_rebind() -> TestResult {
    let path = slot_path(2)?;
    let ch = fresh_channel();
    let slot = open_bound(&path, ch)?;
    let writer = open_bound(&path, ch)?;
    send_all(&writer, b"before", "write")?;
    let mapped = slot.map_channel().ctx("map_channel")?;
    let sequence = mapped.sequence();

    let started = Instant::now();
    let wake = mapped
        .wait_for_change(sequence, Some(Duration::from_millis(300)), None)
        .ctx("wait_for_change")?;
    ensure!(
        wake == Wake::TimedOut && started.elapsed() >= Duration::from_millis(300),
        "nothing written: {wake:?} after {:?}",
        started.elapsed()
    );
    // Twice: the first wait made the epoll instance; the second reuses it.
    for round in 0..2 {
        let sequence = mapped.sequence();
        let message = format!("after {round}");
        let (wake, written) = thread::scope(|scope| {
            let writing = scope.spawn(|| {
                thread::sleep(Duration::from_millis(200));
                send_all(&writer, message.as_bytes(), "write")
            });
            let wake =
                mapped.wait_for_change(sequence, Some(scaled(Duration::from_secs(30))), None);
            (wake, writing.join())
        });
        written.map_err(|_| "the writer thread panicked")??;
        let wake = wake.ctx("wait_for_change")?;
        let read = mapped.read_message().ctx("mapped read")?;
        ensure!(
            wake == Wake::Message
                && mapped.sequence() == sequence + 2
                && read == message.as_bytes(),
            "round {round}: {wake:?}, sequence {} from {sequence}, read {}",
            mapped.sequence(),
            show(&read)
        );
    }

    // Re-bound, the slot reads another channel; the mapping still shows its own.
    let other = fresh_channel();
    slot.set_channel(other).ctx("re-bind")?;
    send_all(&slot, b"other channel", "write")?;
    let mut buf = [0; MAX_MESSAGE_LEN];
    match mapped.try_read(&mut buf) {
        Some(Ok(n)) if &buf[..n] == b"after 1" => Ok(()),
        result => Err(format!(
            "after re-binding, the mapping read {result:?} ({}), expected \"after 1\"",
            show(&buf)
        )),
    }
}
