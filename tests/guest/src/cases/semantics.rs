// SPDX-License-Identifier: GPL-2.0

//! Normal behaviour: exact round trips of arbitrary bytes, non-consuming reads, overwrites,
//! per-descriptor channels, persistence across descriptors and processes, independence of
//! minors, and access modes.

use std::os::fd::AsFd;
use std::time::Duration;

use libc::{EAGAIN, EBADF};
use message_slot::Slot;

use crate::util::{
    child_command, describe, errno_name, expect_errno, expect_message, fresh_channel, hex,
    last_errno, open_bound, open_minor_bound, raw_fd, raw_write, run, send_all, show, slot_path,
    Context, TestResult, MAX_MESSAGE_LEN, MINOR_LAST,
};

/// One-byte messages, including a lone NUL, round-trip exactly.
pub fn roundtrip_one_byte_nul() -> TestResult {
    let slot = open_minor_bound(1, fresh_channel())?;
    for byte in [0u8, 0xFF, b'\n', 0] {
        send_all(&slot, &[byte], "write 1 byte")?;
        let mut buf = [0xEEu8; MAX_MESSAGE_LEN];
        let n = slot.receive(&mut buf).ctx("read")?;
        ensure!(
            n == 1 && buf[0] == byte,
            "wrote [{byte:#04x}], read {}",
            show(&buf[..n])
        );
        let mut exact = [0xEEu8; 1];
        let n = slot.receive(&mut exact).ctx("read into 1 byte")?;
        ensure!(n == 1 && exact[0] == byte, "1-byte buffer read {n} bytes");
    }
    Ok(())
}

/// A 128-byte message with NULs at the start, inside and at the end round-trips exactly.
pub fn roundtrip_128_bytes_nuls() -> TestResult {
    let slot = open_minor_bound(1, fresh_channel())?;
    let mut msg: Vec<u8> = (0..MAX_MESSAGE_LEN)
        .map(|i| if i % 3 == 0 { 0 } else { (i as u8) ^ 0x5A })
        .collect();
    msg[MAX_MESSAGE_LEN - 1] = 0;
    send_all(&slot, &msg, "write 128 bytes")?;
    expect_message(&slot, &msg, "read 128 bytes")?;
    let all_nul = [0u8; MAX_MESSAGE_LEN];
    send_all(&slot, &all_nul, "write 128 NULs")?;
    expect_message(&slot, &all_nul, "read 128 NULs")
}

/// Every length 1..=128 is accepted, reported and returned exactly.
pub fn roundtrip_every_length() -> TestResult {
    let slot = open_minor_bound(1, fresh_channel())?;
    for len in 1..=MAX_MESSAGE_LEN {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        send_all(&slot, &msg, &format!("write {len} bytes"))?;
        expect_message(&slot, &msg, &format!("read {len} bytes"))?;
    }
    Ok(())
}

/// Reading does not consume: the same message comes back again, on any descriptor.
pub fn read_does_not_consume() -> TestResult {
    let ch = fresh_channel();
    let slot = open_minor_bound(1, ch)?;
    send_all(&slot, b"read me twice", "write")?;
    for i in 0..3 {
        expect_message(&slot, b"read me twice", &format!("read #{i}"))?;
    }
    let other = open_minor_bound(1, ch)?;
    expect_message(&other, b"read me twice", "read on another fd")?;
    expect_message(&slot, b"read me twice", "read again on the first fd")
}

/// A shorter message fully replaces a longer one, and the kernel copies only the message
/// (the rest of the reader's buffer is left untouched).
pub fn overwrite_shorter_exact() -> TestResult {
    let slot = open_minor_bound(1, fresh_channel())?;
    send_all(&slot, &[0xEEu8; MAX_MESSAGE_LEN], "write 128 bytes")?;
    send_all(&slot, b"abc", "overwrite with 3 bytes")?;
    let mut buf = [0x77u8; MAX_MESSAGE_LEN];
    let n = slot.receive(&mut buf).ctx("read")?;
    ensure!(
        n == 3 && &buf[..3] == b"abc",
        "expected \"abc\", read {}",
        show(&buf[..n])
    );
    ensure!(
        buf[3..].iter().all(|&b| b == 0x77),
        "read wrote past the 3-byte message: {}",
        show(&buf)
    );
    send_all(&slot, b"\0", "overwrite with a NUL")?;
    expect_message(&slot, b"\0", "read the NUL")?;
    send_all(&slot, b"longer again", "overwrite with a longer message")?;
    expect_message(&slot, b"longer again", "read the longer message")
}

/// Two descriptors on one slot have their own channels; re-binding one switches it.
pub fn per_fd_channels() -> TestResult {
    let path = slot_path(1)?;
    let (x, y) = (fresh_channel(), fresh_channel());
    let a = open_bound(&path, x)?;
    let b = open_bound(&path, y)?;
    send_all(&a, b"via a on x", "write a")?;
    send_all(&b, b"via b on y", "write b")?;
    expect_message(&a, b"via a on x", "read a")?;
    expect_message(&b, b"via b on y", "read b")?;
    a.set_channel(y).ctx("rebind a to y")?;
    expect_message(&a, b"via b on y", "read a after rebinding to y")?;
    send_all(&a, b"a wrote y", "write a on y")?;
    expect_message(&b, b"a wrote y", "b sees a's write on y")?;
    let c = open_bound(&path, x)?;
    expect_message(&c, b"via a on x", "x keeps its message")?;
    a.set_channel(x).ctx("rebind a back to x")?;
    expect_message(&a, b"via a on x", "read a back on x")
}

/// A duplicated descriptor and a forked child share the open file, hence its channel.
pub fn dup_and_fork_share_binding() -> TestResult {
    let path = slot_path(1)?;
    let (x, y) = (fresh_channel(), fresh_channel());
    let a = open_bound(&path, x)?;
    send_all(&a, b"dup x", "write x")?;
    let dup = Slot::from_fd(a.as_fd().try_clone_to_owned().ctx("dup")?);
    expect_message(&dup, b"dup x", "read via dup")?;
    dup.set_channel(y).ctx("rebind dup")?;
    expect_errno(
        a.receive_message(),
        EAGAIN,
        "original after rebinding its dup to an empty channel",
    )?;

    let msg = b"written by a forked child";
    let fd = raw_fd(&a);
    // SAFETY: the child only calls the async-signal-safe write(2) and _exit(2).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let written = raw_write(fd, msg.as_ptr(), msg.len());
        // SAFETY: ends the child right away.
        unsafe { libc::_exit(if written == Ok(msg.len()) { 0 } else { 1 }) };
    }
    ensure!(pid > 0, "fork: {}", errno_name(last_errno()));
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    ensure!(rc == pid, "waitpid: {}", errno_name(last_errno()));
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "forked child's write through the inherited fd failed (status {status:#x})"
    );
    expect_message(&a, msg, "parent reads the child's message on y")?;
    expect_message(&open_bound(&path, y)?, msg, "new fd on y")?;
    expect_message(&open_bound(&path, x)?, b"dup x", "x untouched")
}

/// A message outlives the descriptor that wrote it.
pub fn persists_after_close() -> TestResult {
    let path = slot_path(1)?;
    let ch = fresh_channel();
    {
        let w = open_bound(&path, ch)?;
        send_all(&w, b"outlives its fd", "write")?;
    }
    let r = open_bound(&path, ch)?;
    expect_message(&r, b"outlives its fd", "read on a new fd after close")
}

/// A message outlives the process that wrote it, and is visible to other processes.
pub fn persists_across_processes() -> TestResult {
    let path = slot_path(1)?;
    let path_str = path.to_string_lossy().into_owned();
    let ch = fresh_channel();
    let msg = b"from a child\0that exited\xff";
    let out = run(
        child_command("write", &[path_str.clone(), ch.to_string(), hex(msg)]),
        "writer child",
        Duration::from_secs(30),
    )?;
    ensure!(out.status.success(), "writer child: {}", describe(&out));
    expect_message(
        &open_bound(&path, ch)?,
        msg,
        "parent reads after the child exited",
    )?;

    let ch2 = fresh_channel();
    let msg2 = b"from the parent";
    send_all(&open_bound(&path, ch2)?, msg2, "parent writes")?;
    let out = run(
        child_command("expect", &[path_str, ch2.to_string(), hex(msg2)]),
        "reader child",
        Duration::from_secs(30),
    )?;
    ensure!(out.status.success(), "reader child: {}", describe(&out));
    Ok(())
}

/// The same channel id on different minors is a different channel.
pub fn minors_isolated() -> TestResult {
    let ch = fresh_channel();
    let s0 = open_minor_bound(0, ch)?;
    let s1 = open_minor_bound(1, ch)?;
    send_all(&s0, b"minor 0", "write minor 0")?;
    expect_errno(s1.receive_message(), EAGAIN, "minor 1 before its write")?;
    send_all(&s1, b"minor 1!", "write minor 1")?;
    expect_message(&s0, b"minor 0", "minor 0")?;
    expect_message(&s1, b"minor 1!", "minor 1")?;
    for minor in [2, 3] {
        expect_errno(
            open_minor_bound(minor, ch)?.receive_message(),
            EAGAIN,
            &format!("same id on minor {minor}"),
        )?;
    }
    Ok(())
}

/// Minor 255 (the last one) works and is independent of minor 0.
pub fn minor_255() -> TestResult {
    let ch = fresh_channel();
    let top = open_minor_bound(MINOR_LAST, ch)?;
    expect_errno(top.receive_message(), EAGAIN, "minor 255 before any write")?;
    send_all(&top, b"minor 255", "write minor 255")?;
    let zero = open_minor_bound(0, ch)?;
    expect_errno(zero.receive_message(), EAGAIN, "same id on minor 0")?;
    send_all(&zero, b"minor 0", "write minor 0")?;
    expect_message(&top, b"minor 255", "minor 255 after minor 0 was written")?;
    expect_message(
        &open_minor_bound(MINOR_LAST, ch)?,
        b"minor 255",
        "new fd on minor 255",
    )
}

/// A read-only descriptor reads but cannot write (EBADF); a write-only one the reverse.
pub fn rdonly_wronly_fds() -> TestResult {
    let path = slot_path(1)?;
    let ch = fresh_channel();
    send_all(&open_bound(&path, ch)?, b"original", "write via O_RDWR")?;

    let ro = Slot::open_read_only(&path).ctx("open O_RDONLY")?;
    ro.set_channel(ch).ctx("bind the O_RDONLY fd")?;
    expect_message(&ro, b"original", "read via O_RDONLY")?;
    expect_errno(ro.send(b"nope"), EBADF, "write via O_RDONLY")?;

    let wo = Slot::open_write_only(&path).ctx("open O_WRONLY")?;
    wo.set_channel(ch).ctx("bind the O_WRONLY fd")?;
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    expect_errno(wo.receive(&mut buf), EBADF, "read via O_WRONLY")?;
    expect_message(&ro, b"original", "message after the rejected writes")?;
    send_all(&wo, b"via O_WRONLY", "write via O_WRONLY")?;
    expect_message(&ro, b"via O_WRONLY", "read the O_WRONLY write")
}
