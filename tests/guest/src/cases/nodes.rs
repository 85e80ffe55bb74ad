// SPDX-License-Identifier: GPL-2.0

//! Device nodes and statistics: the module's class devices (`nodes` parameter, default
//! minors 0..3) make devtmpfs create `/dev/message_slot/N` next to the example's mknod nodes,
//! and their sysfs attributes (mode 0440) count a slot's channels, bytes held, writes, reads
//! and open files (`message_slot_stat`, which prints them, is tested with the other tools in
//! `tools.rs`).

use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::module_loading::{load_module, unload_module};
use crate::util::{
    expect_message, fresh_channel, open, open_bound, pin_to_cpu, send_all, slot_path, Context,
    TestResult, MAJOR_NUM, MAX_MESSAGE_LEN,
};

use message_slot::{Statistic, Statistics, DEFAULT_MAX_CHANNELS};

const CLASS: &str = "/sys/class/message_slot";

/// The statistics of `minor` from sysfs (each file one decimal number and a newline).
pub(super) fn stats(minor: u32) -> Result<Statistics, String> {
    Statistics::try_from_fn(|statistic| {
        let path = format!("{CLASS}/message_slot{minor}/{}", statistic.as_str());
        let text = std::fs::read_to_string(&path).ctx(&format!("read {path}"))?;
        ensure!(text.ends_with('\n'), "{path}: {text:?} lacks a newline");
        text.trim().parse().ctx(&format!("{path}: {text:?}"))
    })
}

/// The default module makes class devices for minors 0..3 only, whose devtmpfs nodes are
/// `/dev/message_slot/N` (char 235:N, root-only without a udev rule) and reach the same slot
/// as the example's `mknod` nodes.
pub fn class_device_nodes() -> TestResult {
    for minor in 0..4u32 {
        let node = format!("/dev/message_slot/{minor}");
        let meta = std::fs::metadata(&node).ctx(&format!("stat {node}"))?;
        ensure!(
            meta.file_type().is_char_device(),
            "{node} is not a char device"
        );
        ensure!(
            (libc::major(meta.rdev()), libc::minor(meta.rdev())) == (MAJOR_NUM, minor),
            "{node} is {}:{}",
            libc::major(meta.rdev()),
            libc::minor(meta.rdev())
        );
        let dev = std::fs::read_to_string(format!("{CLASS}/message_slot{minor}/dev"))
            .ctx("read the class device's dev")?;
        ensure!(
            dev.trim() == format!("{MAJOR_NUM}:{minor}"),
            "dev is {dev:?}"
        );
    }
    ensure!(
        !Path::new("/dev/message_slot/4").exists()
            && !Path::new(&format!("{CLASS}/message_slot4")).exists(),
        "a node for minor 4 exists with the default nodes=4"
    );
    // The class's node and the mknod node are the same slot.
    let ch = fresh_channel();
    send_all(
        &open_bound(Path::new("/dev/message_slot/2"), ch)?,
        b"via the class node",
        "write /dev/message_slot/2",
    )?;
    expect_message(
        &open_bound(&slot_path(2)?, ch)?,
        b"via the class node",
        "read /dev/slot2",
    )
}

/// The statistics count exactly: channels created, bytes of the current messages, successful
/// writes and reads (failed ones not), open files; `max_channels` is the parameter; every
/// attribute is mode 0440 (root; the udev rule gives them the device nodes' group).
pub fn slot_statistics() -> TestResult {
    let minor = 3;
    let path = slot_path(minor)?;
    for statistic in Statistic::ALL {
        let file = format!("{CLASS}/message_slot{minor}/{}", statistic.as_str());
        let mode = std::fs::metadata(&file).ctx(&file)?.permissions().mode() & 0o777;
        ensure!(mode == 0o440, "{file} has mode {mode:o}, not 0440");
    }
    let before = stats(minor)?;
    let (a, b) = (fresh_channel(), fresh_channel());
    let fa = open_bound(&path, a)?;
    let fb = open_bound(&path, b)?;
    let unbound = open(&path)?;
    send_all(&fa, &[1; 100], "write 100 bytes to a")?;
    send_all(&fa, &[2; 10], "replace with 10 bytes")?;
    send_all(&fb, &[3; MAX_MESSAGE_LEN], "write 128 bytes to b")?;
    ensure!(
        fa.send(&[0; MAX_MESSAGE_LEN + 1]).is_err(),
        "129-byte write succeeded"
    );
    ensure!(unbound.send(b"x").is_err(), "unbound write succeeded");
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    for _ in 0..5 {
        fa.receive(&mut buf).ctx("read a")?;
    }
    fb.receive(&mut buf).ctx("read b")?;
    ensure!(fb.receive(&mut buf[..1]).is_err(), "short read succeeded");
    let during = stats(minor)?;
    let expected = [
        (Statistic::Channels, 2),
        (Statistic::Bytes, 10 + MAX_MESSAGE_LEN as i128),
        (Statistic::Writes, 3),
        (Statistic::Reads, 6),
        (Statistic::OpenFiles, 3),
    ];
    let delta = expected.map(|(statistic, _)| {
        (
            statistic,
            i128::from(during[statistic]) - i128::from(before[statistic]),
        )
    });
    ensure!(
        delta == expected,
        "deltas after 2 channels, 3 writes (138 bytes held), 6 reads, 3 files: {delta:?}"
    );
    ensure!(
        during[Statistic::MaxChannels] == DEFAULT_MAX_CHANNELS as u64,
        "max_channels is {}",
        during[Statistic::MaxChannels]
    );
    drop((fa, fb, unbound));
    let after = stats(minor)?;
    ensure!(
        after[Statistic::OpenFiles] == before[Statistic::OpenFiles],
        "open_files {} after closing, {} before",
        after[Statistic::OpenFiles],
        before[Statistic::OpenFiles]
    );
    let kept = [
        Statistic::Channels,
        Statistic::Bytes,
        Statistic::Writes,
        Statistic::Reads,
    ];
    ensure!(
        kept.iter()
            .all(|&statistic| after[statistic] == during[statistic]),
        "closing files changed {:?} to {:?}",
        kept.map(|statistic| (statistic, during[statistic])),
        kept.map(|statistic| (statistic, after[statistic]))
    );
    Ok(())
}

/// `nodes=0` creates no class (the original module's footprint), `nodes=256` a device per
/// minor, `nodes=257` is refused; unloading removes the class and its nodes.
pub fn nodes_param() -> TestResult {
    let check = |params: &[&str], want: Option<u32>| -> TestResult {
        unload_module()?;
        ensure!(!Path::new(CLASS).exists(), "{CLASS} left after rmmod");
        ensure!(
            !Path::new("/dev/message_slot/0").exists(),
            "node left after rmmod"
        );
        let loaded = load_module(params);
        match want {
            None => ensure!(loaded.is_err(), "insmod {params:?} succeeded"),
            Some(n) => {
                loaded?;
                let devices = if n == 0 {
                    ensure!(!Path::new(CLASS).exists(), "{CLASS} exists with nodes=0");
                    0
                } else {
                    std::fs::read_dir(CLASS).ctx(CLASS)?.count() as u32
                };
                ensure!(devices == n, "{devices} class devices with {params:?}");
                let last = n.checked_sub(1).map(|m| format!("/dev/message_slot/{m}"));
                if let Some(last) = last {
                    ensure!(Path::new(&last).exists(), "{last} missing");
                }
                ensure!(
                    !Path::new(&format!("/dev/message_slot/{n}")).exists(),
                    "node {n} exists with {params:?}"
                );
                // mknod nodes keep working in every case.
                let ch = fresh_channel();
                send_all(
                    &open_bound(&slot_path(0)?, ch)?,
                    b"mknod",
                    "write /dev/slot0",
                )?;
                expect_message(
                    &open_bound(&slot_path(0)?, ch)?,
                    b"mknod",
                    "read /dev/slot0",
                )?;
            }
        }
        Ok(())
    };
    let result = check(&["nodes=0"], Some(0))
        .and_then(|()| check(&["nodes=256"], Some(256)))
        .and_then(|()| check(&["nodes=257"], None));
    // Back to the default module.
    if Path::new("/sys/module/message_slot").exists() {
        let _ = unload_module();
    }
    load_module(&[])?;
    result
}

/// The `bytes` statistic never shows a wrapped value: one channel's message is replaced for
/// 3 s by 128-byte writes on CPU 0 and 1-byte writes on CPU 1 (each write counts its length
/// less the replaced one's on its own CPU, after the replacement, and a sum walks the CPUs
/// one by one), while a reader on CPU 0 reads it over and over. Every reading must stay
/// within what the slot can hold then (its other channels' bytes, read before, plus this
/// channel's message and the two writers' uncounted replacements), and once the writers stop
/// it is exact. A module that shows the raw sum shows about 2^64 when the sum catches a
/// subtraction without the addition before it, which needs a writer preempted between its
/// replacement and its count (a preemptible kernel, such as the rt kernel) or a reader
/// stalled between two CPUs' copies while both writers run (more CPUs than the rig's two):
/// on the base kernel (not preemptible, two CPUs) such a module still passes.
pub fn bytes_statistic_never_wraps() -> TestResult {
    let minor = 1;
    let path = slot_path(minor)?;
    let others = stats(minor)?[Statistic::Bytes];
    let bound = others + (3 * MAX_MESSAGE_LEN) as u64;
    let ch = fresh_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(0, MAX_MESSAGE_LEN), (1, 1)]
        .into_iter()
        .map(|(cpu, len)| {
            let (slot, stop) = (open_bound(&path, ch), stop.clone());
            thread::spawn(move || -> Result<u64, String> {
                let slot = slot?;
                pin_to_cpu(cpu);
                let msg = vec![b'a' + cpu as u8; len];
                let mut writes = 0;
                while !stop.load(Ordering::Relaxed) {
                    send_all(&slot, &msg, "replace the message")?;
                    writes += 1;
                }
                Ok(writes)
            })
        })
        .collect();
    let file = std::fs::File::open(format!("{CLASS}/message_slot{minor}/bytes"))
        .ctx("open the bytes statistic")?;
    // The reader shares CPU 0 with the 128-byte writer: on a preemptible kernel it can preempt
    // that writer between its replacement and its count, as the 1-byte writer goes on.
    let reader = thread::spawn(move || -> Result<(u64, u64, Vec<u64>), String> {
        pin_to_cpu(0);
        let (mut reads, mut highest, mut over) = (0u64, 0u64, Vec::new());
        let mut text = [0u8; 32];
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            let n = file.read_at(&mut text, 0).ctx("read the bytes statistic")?;
            let value: u64 = std::str::from_utf8(&text[..n])
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| {
                    format!("bytes statistic {:?}", String::from_utf8_lossy(&text[..n]))
                })?;
            reads += 1;
            highest = highest.max(value);
            if value > bound && over.len() < 5 {
                over.push(value);
            }
        }
        Ok((reads, highest, over))
    });
    let readings = reader.join().map_err(|_| "the reader panicked".to_string());
    stop.store(true, Ordering::Relaxed);
    let mut writes = Vec::new();
    for writer in writers {
        writes.push(writer.join().map_err(|_| "a writer panicked")??);
    }
    let (reads, highest, over) = readings??;
    println!(
        "  bytes statistic: {reads} readings during {} + {} writes, highest {highest} (bound {bound})",
        writes[0], writes[1]
    );
    ensure!(
        over.is_empty(),
        "the bytes statistic showed {over:?} (bound {bound}) while two CPUs replaced a message"
    );
    ensure!(
        writes.iter().all(|&w| w > 0),
        "a writer never wrote: {writes:?}"
    );
    let settled = stats(minor)?[Statistic::Bytes];
    let last = open_bound(&path, ch)?
        .receive_message()
        .ctx("read the channel")?;
    ensure!(
        settled == others + last.len() as u64,
        "bytes {settled} once the writers stopped, expected {others} + {}",
        last.len()
    );
    Ok(())
}
