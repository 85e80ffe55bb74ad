// SPDX-License-Identifier: GPL-2.0

//! Memory follows open files: what opening (and writing through) many files takes is given
//! back when they are closed, not kept until the module is unloaded.
//!
//! Option (`--key=value` or the environment variable in brackets): `--churn-files=N`
//! (`MSG_SLOT_CHURN_FILES`): files opened at once (200000).

use message_slot::Slot;

use crate::options::count_arg;
use crate::slab::{slab_kib, slab_kib_settled};
use crate::util::{ensure_node, fresh_channel, send_all, Context, TestResult, MINOR_FILE_CHURN};

/// Slab noise allowed on top of the 10% that may stay.
const NOISE_KIB: u64 = 2 * 1024;

/// Raises this process's open-file limits to at least `files` more descriptors.
fn allow_open_files(files: u64) -> TestResult {
    let want = files + 1024;
    // The system-wide limits must allow it too (root may raise them).
    for (path, minimum) in [
        ("/proc/sys/fs/nr_open", want),
        ("/proc/sys/fs/file-max", want * 2),
    ] {
        let now: u64 = std::fs::read_to_string(path)
            .ctx(path)?
            .trim()
            .parse()
            .map_err(|e| format!("{path}: {e}"))?;
        if now < minimum {
            std::fs::write(path, minimum.to_string()).ctx(path)?;
        }
    }
    let limit = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: `limit` is a valid `rlimit`.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    ensure!(
        rc == 0,
        "setrlimit(RLIMIT_NOFILE, {want}): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Opens `--churn-files` files of one slot, binds them to 16 channels and writes through each
/// (so each file's writes allocated), then closes them all: at least 90% of the `Slab` growth
/// must come back (with 2 MiB of noise allowed), and the 16 channels keep their messages.
pub fn closing_files_frees_their_memory() -> TestResult {
    let files = count_arg("churn-files", 200_000)?;
    allow_open_files(files)?;
    let path = ensure_node(MINOR_FILE_CHURN)?;
    let channels: Vec<u32> = (0..16).map(|_| fresh_channel()).collect();
    let message = |i: usize| format!("churn message of file {i:06}").into_bytes();

    let before = slab_kib()?.0;
    let mut open = Vec::with_capacity(files as usize);
    for i in 0..files as usize {
        let slot = Slot::open(&path).ctx(&format!("open file {i} of {files}"))?;
        slot.set_channel(channels[i % channels.len()])
            .ctx(&format!("bind file {i}"))?;
        send_all(&slot, &message(i), &format!("write through file {i}"))?;
        open.push(slot);
    }
    let peak = slab_kib()?.0;
    drop(open);
    let after = slab_kib_settled(before)?.0;

    let took = peak.saturating_sub(before);
    let returned = peak.saturating_sub(after);
    eprintln!(
        "  ({files} files: Slab {before} KiB -> {peak} KiB open -> {after} KiB closed; \
         {took} KiB taken, {returned} KiB returned)"
    );
    ensure!(
        took > files / 10,
        "opening {files} files grew Slab by only {took} KiB: the measurement sees nothing"
    );
    ensure!(
        returned * 10 + NOISE_KIB * 10 >= took * 9,
        "closing {files} files returned {returned} KiB of the {took} KiB that opening them \
         took (at least 90% must come back, with {NOISE_KIB} KiB of noise)"
    );
    // The messages outlive the files that wrote them: each channel holds its last write.
    let reader = Slot::open(&path).ctx("open a reader")?;
    let total = files as usize;
    for (c, &id) in channels.iter().enumerate() {
        reader.set_channel(id).ctx("bind the reader")?;
        let last = (0..total).rev().find(|i| i % channels.len() == c);
        let want = last.map(message).ok_or("no file wrote channel")?;
        crate::util::expect_message(&reader, &want, &format!("channel {id:#x} after closing"))?;
    }
    Ok(())
}
