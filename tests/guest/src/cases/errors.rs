// SPDX-License-Identifier: GPL-2.0

//! Every documented error: rejected ioctls, unbound descriptors (the channel is checked
//! before size and pointer), bad sizes, empty channels, short buffers and bad pointers —
//! and that no failed call changes state.

use libc::{EAGAIN, EFAULT, EINVAL, EMSGSIZE, ENOSPC};
use message_slot_test_support::requests::unknown_requests;

use crate::util::{
    errno_name, expect_errno, expect_message, expect_raw, fresh_channel, open, open_bound,
    open_minor_bound, raw_fd, raw_ioctl, raw_read, raw_write, send_all, slot_path, Context,
    GuardPages, TestResult, CHANNEL_CMD, MAX_MSG, MINOR_FIXED_IDS,
};

/// Channel id 0 is rejected and neither binds nor unbinds the descriptor.
pub fn ioctl_channel_zero_einval() -> TestResult {
    let path = slot_path(0)?;
    let slot = open_bound(&path, fresh_channel())?;
    send_all(&slot, b"kept across ioctl 0", "write")?;
    expect_errno(slot.set_channel(0), EINVAL, "ioctl(MSG_SLOT_CHANNEL, 0)")?;
    expect_raw(
        raw_ioctl(raw_fd(&slot), CHANNEL_CMD, 0),
        EINVAL,
        "raw ioctl(MSG_SLOT_CHANNEL, 0)",
    )?;
    expect_message(&slot, b"kept across ioctl 0", "read after rejected id 0")?;

    let unbound = open(&path)?;
    expect_errno(unbound.set_channel(0), EINVAL, "ioctl 0 on a new fd")?;
    let mut buf = [0u8; MAX_MSG];
    expect_errno(
        unbound.receive(&mut buf),
        EINVAL,
        "read after a rejected first ioctl (fd must stay unbound)",
    )
}

/// An argument that does not fit in 32 bits is rejected, not truncated.
pub fn ioctl_arg_over_u32_einval() -> TestResult {
    let path = slot_path(0)?;
    let (a, b) = (fresh_channel(), fresh_channel());
    send_all(&open_bound(&path, b)?, b"channel b", "write b")?;
    let slot = open_bound(&path, a)?;
    send_all(&slot, b"channel a", "write a")?;
    let fd = raw_fd(&slot);
    for arg in [
        1u64 << 32,
        (1u64 << 32) | u64::from(b),
        (0xFFu64 << 32) | u64::from(b),
        u64::MAX,
        (1u64 << 63) | 1,
    ] {
        expect_raw(
            raw_ioctl(fd, CHANNEL_CMD, arg),
            EINVAL,
            &format!("ioctl(MSG_SLOT_CHANNEL, {arg:#x})"),
        )?;
        expect_message(
            &slot,
            b"channel a",
            &format!("read after rejected arg {arg:#x} (fd must keep channel a)"),
        )?;
    }
    // The same id by value, within range, does bind.
    raw_ioctl(fd, CHANNEL_CMD, u64::from(b))
        .map_err(|e| format!("raw ioctl with a valid id: {}", errno_name(e)))?;
    expect_message(&slot, b"channel b", "read after raw bind to b")
}

/// Requests the device does not have (derived from its list of ioctls: each one's neighbours,
/// and unrelated numbers) are rejected with EINVAL and leave the binding alone.
pub fn ioctl_other_cmds_einval_keep_channel() -> TestResult {
    let path = slot_path(0)?;
    let (a, b) = (fresh_channel(), fresh_channel());
    send_all(&open_bound(&path, b)?, b"other channel", "write b")?;
    let slot = open_bound(&path, a)?;
    send_all(&slot, b"own channel", "write a")?;
    let cmds = unknown_requests();
    for (name, cmd) in &cmds {
        let cmd = *cmd;
        expect_raw(
            raw_ioctl(raw_fd(&slot), cmd, u64::from(b)),
            EINVAL,
            &format!("ioctl cmd {name} ({cmd:#x})"),
        )?;
        expect_message(
            &slot,
            b"own channel",
            &format!("read after ioctl {name} (fd must keep its channel)"),
        )?;
    }
    let unbound = open(&path)?;
    for (name, cmd) in &cmds {
        expect_raw(
            raw_ioctl(raw_fd(&unbound), *cmd, u64::from(b)),
            EINVAL,
            &format!("ioctl cmd {name} ({cmd:#x}) on a new fd"),
        )?;
    }
    let mut buf = [0u8; MAX_MSG];
    expect_errno(
        unbound.receive(&mut buf),
        EINVAL,
        "read after wrong cmd (fd must stay unbound)",
    )
}

/// Ids 1, 2^20, 2^20 + 1, 2^31 and `u32::MAX` are valid and distinct channels.
pub fn ioctl_extreme_ids() -> TestResult {
    let ids = [
        1u32,
        1 << 20,
        (1 << 20) + 1,
        1 << 31,
        u32::MAX - 1,
        u32::MAX,
    ];
    let slot = open_minor_bound(MINOR_FIXED_IDS, 1)?;
    for id in ids {
        slot.set_channel(id).ctx(&format!("bind {id:#x}"))?;
        send_all(&slot, format!("id {id:#x}").as_bytes(), "write")?;
    }
    for id in ids {
        slot.set_channel(id).ctx(&format!("rebind {id:#x}"))?;
        expect_message(&slot, format!("id {id:#x}").as_bytes(), "read back")?;
        let other = open_minor_bound(MINOR_FIXED_IDS, id)?;
        expect_message(&other, format!("id {id:#x}").as_bytes(), "read on new fd")?;
    }
    Ok(())
}

/// A new descriptor is unbound even while others on the same slot are bound.
pub fn new_fd_starts_unbound() -> TestResult {
    let path = slot_path(0)?;
    let ch = fresh_channel();
    let bound = open_bound(&path, ch)?;
    send_all(&bound, b"bound fd's message", "write")?;
    let fresh = open(&path)?;
    let mut buf = [0u8; MAX_MSG];
    expect_errno(fresh.receive(&mut buf), EINVAL, "read on a new fd")?;
    expect_errno(fresh.send(b"x"), EINVAL, "write on a new fd")?;
    expect_message(&bound, b"bound fd's message", "other fd after failed write")?;
    fresh.set_channel(ch).ctx("bind the new fd")?;
    expect_message(&fresh, b"bound fd's message", "new fd after binding")
}

/// Without a channel every read and write fails with EINVAL, whatever size or pointer.
pub fn unbound_checks_channel_first() -> TestResult {
    let slot = open(&slot_path(0)?)?;
    let fd = raw_fd(&slot);
    let guard = GuardPages::new()?;
    let big = vec![0x42u8; 4096];
    let writes: [(&str, *const u8, usize); 6] = [
        ("len 0", big.as_ptr(), 0),
        ("len 129", big.as_ptr(), MAX_MSG + 1),
        ("len 1 GiB", big.as_ptr(), 1 << 30),
        ("NULL", std::ptr::null(), 5),
        ("PROT_NONE page", guard.inaccessible(), 5),
        (
            "half-inaccessible buffer",
            guard.before_guard(MAX_MSG / 2, b"x"),
            MAX_MSG,
        ),
    ];
    for (name, ptr, len) in writes {
        expect_raw(
            raw_write(fd, ptr, len),
            EINVAL,
            &format!("unbound write, {name}"),
        )?;
    }
    let mut buf = [0u8; MAX_MSG];
    let reads: [(&str, *mut u8, usize); 4] = [
        ("len 0", buf.as_mut_ptr(), 0),
        ("len 128", buf.as_mut_ptr(), MAX_MSG),
        ("NULL", std::ptr::null_mut(), MAX_MSG),
        ("PROT_NONE page", guard.inaccessible(), MAX_MSG),
    ];
    for (name, ptr, len) in reads {
        expect_raw(
            raw_read(fd, ptr, len),
            EINVAL,
            &format!("unbound read, {name}"),
        )?;
    }
    Ok(())
}

/// Lengths 0, 129, 4096 and 1 GiB fail with EMSGSIZE and keep the old message.
pub fn write_bad_sizes_emsgsize() -> TestResult {
    let slot = open_minor_bound(0, fresh_channel())?;
    let old = [0xC3u8, 0, 0x11, 0];
    send_all(&slot, &old, "write old message")?;
    let fd = raw_fd(&slot);
    let big = vec![0x5Au8; 4096];
    for (name, len) in [
        ("0", 0usize),
        ("129", MAX_MSG + 1),
        ("4096", 4096),
        ("1 GiB", 1 << 30),
    ] {
        expect_raw(
            raw_write(fd, big.as_ptr(), len),
            EMSGSIZE,
            &format!("write of length {name}"),
        )?;
        expect_message(&slot, &old, &format!("read after write of length {name}"))?;
    }
    expect_errno(slot.send(&[]), EMSGSIZE, "library send of an empty message")?;
    expect_errno(
        slot.send(&big[..MAX_MSG + 1]),
        EMSGSIZE,
        "library send of 129 bytes",
    )?;
    expect_message(&slot, &old, "read at the end")
}

/// Writes from NULL, a `PROT_NONE` page or a buffer running into one fail with EFAULT and
/// leave the old message intact (no partial update).
pub fn write_efault_keeps_old() -> TestResult {
    let slot = open_minor_bound(0, fresh_channel())?;
    let old: Vec<u8> = (0..MAX_MSG as u8).map(|i| i.wrapping_mul(7)).collect();
    send_all(&slot, &old, "write old message")?;
    let fd = raw_fd(&slot);
    let guard = GuardPages::new()?;
    let cases: [(&str, *const u8, usize); 5] = [
        ("NULL, 5 bytes", std::ptr::null(), 5),
        ("NULL, 128 bytes", std::ptr::null(), MAX_MSG),
        ("PROT_NONE page", guard.inaccessible(), 16),
        (
            "128 bytes, last 64 inaccessible",
            guard.before_guard(MAX_MSG / 2, b"NEW!"),
            MAX_MSG,
        ),
        ("2 bytes, last inaccessible", guard.before_guard(1, b"Z"), 2),
    ];
    for (name, ptr, len) in cases {
        expect_raw(
            raw_write(fd, ptr, len),
            EFAULT,
            &format!("write from {name}"),
        )?;
        expect_message(&slot, &old, &format!("read after write from {name}"))?;
    }
    Ok(())
}

/// Reading a channel that never got a message fails with EWOULDBLOCK.
pub fn read_no_message_ewouldblock() -> TestResult {
    let ch = fresh_channel();
    let slot = open_minor_bound(0, ch)?;
    let mut buf = [0u8; MAX_MSG];
    expect_errno(slot.receive(&mut buf), EAGAIN, "read of an empty channel")?;
    expect_errno(slot.receive_message(), EAGAIN, "receive_message")?;
    // A message on a neighbouring channel does not change that.
    send_all(
        &open_minor_bound(0, ch + 1)?,
        b"neighbour",
        "write neighbour",
    )?;
    expect_errno(
        slot.receive(&mut buf),
        EAGAIN,
        "read after a neighbour got a message",
    )?;
    let other = open_minor_bound(2, ch)?;
    expect_errno(other.receive(&mut buf), EAGAIN, "same id on slot 2")
}

/// A buffer one byte short (or empty) fails with ENOSPC; exact and larger buffers work.
pub fn read_small_buffer_enospc() -> TestResult {
    let slot = open_minor_bound(0, fresh_channel())?;
    let fd = raw_fd(&slot);
    for len in [1usize, 5, MAX_MSG] {
        let msg: Vec<u8> = (0..len).map(|i| (i as u8) ^ 0xA0).collect();
        send_all(&slot, &msg, &format!("write {len} bytes"))?;
        let mut buf = vec![0u8; 4096];
        expect_raw(
            raw_read(fd, buf.as_mut_ptr(), len - 1),
            ENOSPC,
            &format!("read of {len}-byte message into {} bytes", len - 1),
        )?;
        expect_raw(
            raw_read(fd, buf.as_mut_ptr(), 0),
            ENOSPC,
            &format!("read of {len}-byte message into 0 bytes"),
        )?;
        for size in [len, len + 1, 4096] {
            let n = slot
                .receive(&mut buf[..size])
                .ctx(&format!("read of {len}-byte message into {size} bytes"))?;
            ensure!(
                buf[..n] == msg[..],
                "read into {size} bytes returned {n} bytes that differ from the {len}-byte message"
            );
        }
    }
    Ok(())
}

/// Reads into NULL, a `PROT_NONE` page or a buffer running into one fail with EFAULT and
/// the message stays readable.
pub fn read_efault_keeps_message() -> TestResult {
    let slot = open_minor_bound(0, fresh_channel())?;
    let msg: Vec<u8> = (0..MAX_MSG as u8).map(|i| !i).collect();
    send_all(&slot, &msg, "write")?;
    let fd = raw_fd(&slot);
    let guard = GuardPages::new()?;
    let cases: [(&str, *mut u8, usize); 4] = [
        ("NULL", std::ptr::null_mut(), MAX_MSG),
        ("PROT_NONE page", guard.inaccessible(), MAX_MSG),
        (
            "128 bytes, last 64 inaccessible",
            guard.before_guard(64, b"."),
            MAX_MSG,
        ),
        (
            "4096 bytes, all but 64 inaccessible",
            guard.before_guard(64, b"."),
            4096,
        ),
    ];
    for (name, ptr, len) in cases {
        expect_raw(raw_read(fd, ptr, len), EFAULT, &format!("read into {name}"))?;
        expect_message(&slot, &msg, &format!("read after read into {name}"))?;
    }
    Ok(())
}
