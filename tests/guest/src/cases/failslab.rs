// SPDX-License-Identifier: GPL-2.0

//! Allocation failure: with failslab failing every slab allocation of the writing thread,
//! writes that create a channel fail with `ENOMEM` and leave nothing behind, while overwrites
//! of existing channels (which allocate nothing) succeed; a poll whose channel or wait queue
//! cannot be allocated reports `POLLERR` and leaves no channel behind (`fail-nth` fails each
//! of its allocations in turn); and [`slab_allocations_during`] tells other tests whether a
//! call allocated at all. Needs failslab and its debugfs knobs: skipped without them, failed
//! on the debug kernel ([`crate::options::missing`]).

use std::path::{Path, PathBuf};

use libc::{EAGAIN, ENOMEM};
use message_slot::Slot;

use super::nodes::stats;
use crate::module_loading::module_ready;
use crate::options::missing;
use crate::polling::poll_fd;
use crate::util::{
    bind_write, channel_message, ensure_node, errno_name, expect_errno, expect_message,
    fresh_channel, last_errno, mount_if_needed, open, open_bound, raw_fd, raw_read, send_all,
    slot_path, write_file, Context, TestResult, MAX_MESSAGE_LEN, MINOR_FAILSLAB,
};

/// Restores failslab to "never fail" when dropped.
struct FailslabOff(PathBuf);

impl Drop for FailslabOff {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("probability"), "0");
        let _ = std::fs::write(self.0.join("times"), "1");
    }
}

/// The failslab knobs, set so that slab allocations of any GFP flags and any cache can be
/// made to fail while nothing fails by chance (probability 0), only in tasks marked with
/// `make-it-fail` if `task_filter`; `None` without failslab, `make-it-fail` or `fail-nth`.
/// Restored to "never fail" when the guard is dropped.
fn failslab_configured(task_filter: bool) -> Result<Option<FailslabOff>, String> {
    mount_if_needed("debugfs", "/sys/kernel/debug", "/sys/kernel/debug/failslab");
    let dir = PathBuf::from("/sys/kernel/debug/failslab");
    if !dir.join("probability").exists()
        || !Path::new("/proc/self/make-it-fail").exists()
        || !Path::new("/proc/thread-self/fail-nth").exists()
    {
        return Ok(None);
    }
    let off = FailslabOff(dir.clone());
    for (file, value) in [
        ("probability", "0"),
        ("interval", "1"),
        ("times", "-1"),
        ("space", "0"),
        ("verbose", "0"),
        ("task-filter", if task_filter { "Y" } else { "N" }),
        ("ignore-gfp-wait", "N"),
    ] {
        write_file(&dir.join(file), value)?;
    }
    if dir.join("cache-filter").exists() {
        write_file(&dir.join("cache-filter"), "N")?;
    }
    Ok(Some(off))
}

/// `/proc/thread-self/fail-nth` of the thread that opened it: its next `n`-th
/// fault-injectable call fails (0: none), and reading it back gives 0 once that call has
/// failed. Opened once, and then only written and read at offset 0: no other system call
/// (an `open` allocates) runs between setting it and reading it back.
struct FailNth(std::fs::File);

impl FailNth {
    fn open() -> Result<Self, String> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/thread-self/fail-nth")
            .map(Self)
            .ctx("open /proc/thread-self/fail-nth")
    }

    /// Makes this thread's `n`-th fault-injectable call from now on fail (0: none).
    fn set(&self, n: u32) -> TestResult {
        use std::os::unix::fs::FileExt;
        self.0
            .write_at(n.to_string().as_bytes(), 0)
            .map(drop)
            .ctx("write fail-nth")
    }

    /// Whether the call [`FailNth::set`] chose has failed (then it is cleared too).
    fn fired(&self) -> Result<bool, String> {
        use std::os::unix::fs::FileExt;
        let mut text = [0u8; 16];
        let n = self.0.read_at(&mut text, 0).ctx("read fail-nth")?;
        let fired = std::str::from_utf8(&text[..n]).map(str::trim) == Ok("0");
        self.set(0)?;
        Ok(fired)
    }
}

/// Whether `call` made a slab allocation on this thread: `Some(true)` if it did (the first
/// one was made to fail), `Some(false)` if not, `None` if the kernel has no failslab (the
/// caller then cannot tell, and says so). Everything the caller needs must be set up before
/// (an `open` or `epoll_create` allocates).
pub(super) fn slab_allocations_during<T>(
    call: impl FnOnce() -> T,
) -> Result<Option<(bool, T)>, String> {
    let Some(_failslab) = failslab_configured(false)? else {
        return Ok(None);
    };
    let fail_nth = FailNth::open()?;
    fail_nth.set(1)?;
    let result = call();
    Ok(Some((fail_nth.fired()?, result)))
}

/// A waiting poll of a channel that does not exist, with the `n`-th slab allocation of the
/// thread made to fail (`fail-nth`), for `n` = 1, 2, ... until a poll makes fewer than `n`:
/// a poll that reports `POLLERR` leaves the slot's channel count as it was (the wait queue
/// is allocated before the channel), one that reports `POLLOUT | POLLWRNORM` created the
/// channel, and at least one of the failures made the poll report `POLLERR`. A module that
/// allocates the queue after creating the channel reports `POLLERR` with one more channel.
/// Then a poll that does not wait allocates nothing.
pub fn failslab_poll_error_leaves_nothing() -> TestResult {
    module_ready()?;
    let Some(_failslab) = failslab_configured(false)? else {
        return missing("failslab and fail-nth (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
    };
    let minor = 3;
    let channels = message_slot::Statistic::Channels;
    let file = open(&slot_path(minor)?)?;
    let fd = raw_fd(&file);
    let fail_nth = FailNth::open()?;
    let mut outcomes = Vec::new();
    for nth in 1..=16 {
        let id = fresh_channel();
        file.set_channel(id).ctx("bind")?;
        let before = stats(minor)?[channels];
        fail_nth.set(nth)?;
        let events = poll_fd(fd, 10_000);
        let fired = fail_nth.fired()?;
        let (events, after) = (events?, stats(minor)?[channels]);
        outcomes.push(format!("#{nth}: {events:#x}"));
        match events {
            libc::POLLERR => ensure!(
                after == before,
                "a poll that reported POLLERR (allocation #{nth} failed) left {} new \
                 channel(s): {}",
                after - before,
                outcomes.join(", ")
            ),
            x if x == libc::POLLOUT | libc::POLLWRNORM => ensure!(
                after == before + 1,
                "a poll that reported POLLOUT | POLLWRNORM made {} channels, expected 1",
                after - before
            ),
            _ => return Err(format!("poll of a new channel: events {events:#x}")),
        }
        if !fired {
            ensure!(
                outcomes
                    .iter()
                    .any(|o| o.ends_with(&format!("{:#x}", libc::POLLERR))),
                "no failed allocation made a poll of a new channel report POLLERR: {}",
                outcomes.join(", ")
            );
            eprintln!(
                "  (poll of a new channel, the n-th allocation failed: {})",
                outcomes.join(", ")
            );
            return poll_that_does_not_wait_allocates_nothing(&file, &fail_nth);
        }
    }
    Err(format!(
        "a poll of a new channel made more than 16 allocations: {}",
        outcomes.join(", ")
    ))
}

/// A poll that will not wait (zero timeout) of a channel that was written but never polled
/// makes no allocation (its wait queue is made by the first poll that waits), and reports
/// the message.
fn poll_that_does_not_wait_allocates_nothing(file: &Slot, fail_nth: &FailNth) -> TestResult {
    let id = fresh_channel();
    file.set_channel(id).ctx("bind")?;
    send_all(file, b"written, never polled", "write")?;
    fail_nth.set(1)?;
    let events = poll_fd(raw_fd(file), 0);
    let allocated = fail_nth.fired()?;
    let events = events?;
    ensure!(
        events == libc::POLLIN | libc::POLLRDNORM | libc::POLLOUT | libc::POLLWRNORM,
        "a zero-timeout poll of a written channel: events {events:#x}"
    );
    ensure!(
        !allocated,
        "a zero-timeout poll (which does not wait) of a channel never polled allocated"
    );
    Ok(())
}

/// What the fault-injected thread saw.
#[derive(Default)]
struct FaultResults {
    new_writes: Vec<Result<(), (&'static str, i32)>>,
    old_writes: Vec<Result<(), (&'static str, i32)>>,
    old_reads: Vec<Result<usize, i32>>,
}

/// With failslab failing every slab allocation of one thread, writes to new channels fail
/// with ENOMEM and change nothing, writes to existing channels (no allocation) still
/// succeed, reads work; with fault injection off again, the new channels can be written.
pub fn failslab_enomem() -> TestResult {
    module_ready()?;
    let Some(off) = failslab_configured(true)? else {
        return missing("failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
    };
    let path = ensure_node(MINOR_FAILSLAB)?;
    let old: Vec<u32> = (0..4).map(|_| fresh_channel()).collect();
    let new: Vec<u32> = (0..64).map(|_| fresh_channel()).collect();
    for (i, &id) in old.iter().enumerate() {
        send_all(
            &open_bound(&path, id)?,
            &channel_message(MINOR_FAILSLAB, id, 40 + i),
            "write an existing channel",
        )?;
    }

    write_file(&off.0.join("probability"), "100")?;

    let slot = Slot::open(&path).ctx("open")?;
    let fd = raw_fd(&slot);
    let (new_c, old_c) = (new.clone(), old.clone());
    let worker = std::thread::spawn(move || -> Result<FaultResults, String> {
        // Everything that allocates in the kernel happens before make-it-fail is set.
        let flag = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/make-it-fail")
            .ctx("open /proc/thread-self/make-it-fail")?;
        let flag_fd = std::os::fd::AsRawFd::as_raw_fd(&flag);
        let new_msgs: Vec<Vec<u8>> = new_c
            .iter()
            .map(|&id| channel_message(MINOR_FAILSLAB, id, MAX_MESSAGE_LEN))
            .collect();
        let old_msgs: Vec<Vec<u8>> = old_c
            .iter()
            .map(|&id| channel_message(MINOR_FAILSLAB, id, 100))
            .collect();
        let mut r = FaultResults {
            new_writes: Vec::with_capacity(new_c.len()),
            old_writes: Vec::with_capacity(old_c.len()),
            old_reads: Vec::with_capacity(old_c.len()),
        };
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        // Pre-fault this thread's stack so no page fault allocates under fault injection.
        let mut scratch = [0u8; 32 * 1024];
        for b in scratch.iter_mut().step_by(1024) {
            // SAFETY: a plain volatile store into a local array.
            unsafe { std::ptr::write_volatile(b, 1) };
        }
        // SAFETY: writes a literal to our descriptor.
        if unsafe { libc::write(flag_fd, b"1".as_ptr().cast(), 1) } != 1 {
            return Err(format!("set make-it-fail: {}", errno_name(last_errno())));
        }
        for (&id, msg) in new_c.iter().zip(&new_msgs) {
            r.new_writes.push(bind_write(fd, id, msg));
        }
        for (&id, msg) in old_c.iter().zip(&old_msgs) {
            r.old_writes.push(bind_write(fd, id, msg));
            r.old_reads
                .push(raw_read(fd, buf.as_mut_ptr(), buf.len()).and_then(|n| {
                    if buf[..n] == msg[..] {
                        Ok(n)
                    } else {
                        Err(-1)
                    }
                }));
        }
        // SAFETY: as above.
        let rc = unsafe { libc::write(flag_fd, b"0".as_ptr().cast(), 1) };
        std::hint::black_box(&scratch);
        ensure!(rc == 1, "clear make-it-fail: {}", errno_name(last_errno()));
        Ok(r)
    });
    let results = worker
        .join()
        .map_err(|_| "fault-injected thread panicked".to_string())??;
    drop(off);

    let mut enomem = 0;
    for (&id, r) in new.iter().zip(&results.new_writes) {
        match r {
            Err(("write", e)) if *e == ENOMEM => enomem += 1,
            Ok(()) => {}
            Err((what, e)) => {
                return Err(format!(
                    "new channel {id:#x} under failslab: {what} failed with {} (expected \
                     ENOMEM or success)",
                    errno_name(*e)
                ))
            }
        }
    }
    ensure!(
        enomem > 0,
        "no write to a new channel failed under failslab (probability 100): the message \
         allocation does not go through the slab allocator?"
    );
    // A channel owns its message memory: an overwrite allocates nothing, so it succeeds even
    // though every slab allocation fails, and the read (which allocates nothing either)
    // returns the new message.
    for (i, &id) in old.iter().enumerate() {
        if let Err((what, e)) = results.old_writes[i] {
            return Err(format!(
                "overwriting existing channel {id:#x} under failslab (probability 100): {what} \
                 failed with {} (an overwrite must allocate nothing)",
                errno_name(e)
            ));
        }
        if let Err(e) = results.old_reads[i] {
            return Err(format!(
                "reading existing channel {id:#x} under failslab: {}",
                if e < 0 {
                    "not the message just written".to_string()
                } else {
                    errno_name(e)
                }
            ));
        }
    }
    // Nothing of the failed writes is visible; the overwrites are.
    let check = Slot::open(&path).ctx("open")?;
    for (&id, r) in new.iter().zip(&results.new_writes) {
        check.set_channel(id).ctx("bind")?;
        if r.is_err() {
            expect_errno(
                check.receive_message(),
                EAGAIN,
                &format!("new channel {id:#x} after its write failed with ENOMEM"),
            )?;
        }
    }
    for &id in &old {
        check.set_channel(id).ctx("bind")?;
        expect_message(
            &check,
            &channel_message(MINOR_FAILSLAB, id, 100),
            &format!("existing channel {id:#x} after its overwrite under failslab"),
        )?;
        // Fault injection off: overwrites still succeed.
        let msg = channel_message(MINOR_FAILSLAB, id, 101);
        bind_write(fd, id, &msg).map_err(|(what, e)| {
            format!(
                "overwriting channel {id:#x} after failslab was turned off: {what}: {}",
                errno_name(e)
            )
        })?;
        expect_message(
            &check,
            &msg,
            &format!("existing channel {id:#x} after failslab"),
        )?;
    }
    // Fault injection off: the new channels can be created now.
    for &id in &new {
        let msg = channel_message(MINOR_FAILSLAB, id, MAX_MESSAGE_LEN);
        bind_write(fd, id, &msg).map_err(|(what, e)| {
            format!(
                "new channel {id:#x} after failslab was turned off: {what}: {}",
                errno_name(e)
            )
        })?;
        check.set_channel(id).ctx("bind")?;
        expect_message(&check, &msg, &format!("new channel {id:#x} after failslab"))?;
    }
    eprintln!(
        "  (failslab: {enomem}/{} new-channel writes got ENOMEM)",
        new.len()
    );
    Ok(())
}
