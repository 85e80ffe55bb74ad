// SPDX-License-Identifier: GPL-2.0

//! The programs users run, in the guest: the command-line tools `message_sender`,
//! `message_reader` (also its `--wait`, `--next`, `--follow` and `--mapped` modes) and
//! `message_slot_stat` (from `PATH`), and the C header check program `/header_user`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use message_slot::Statistic;

use super::nodes::stats;
use crate::util::{
    describe, expect_message, fresh_channel, open_bound, open_minor_bound, run, scaled, send_all,
    show, slot_path, spawn, Context, TestResult, MAX_MESSAGE_LEN,
};

const SENDER: &str = "message_sender";
const READER: &str = "message_reader";
const STAT: &str = "message_slot_stat";
const HEADER_USER: &str = "/header_user";
const TIMEOUT: Duration = Duration::from_secs(30);

fn tool<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Output, String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    run(cmd, &format!("{program} {shown:?}"), TIMEOUT)
}

/// Runs a tool that must succeed and returns its stdout.
fn tool_ok<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Vec<u8>, String> {
    let out = tool(program, args)?;
    ensure!(
        out.status.code() == Some(0),
        "{program} {:?}: expected exit 0: {}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        describe(&out)
    );
    Ok(out.stdout)
}

/// Runs a tool that must fail with exit status 1, nothing on stdout and a message on stderr.
fn tool_fails<S: AsRef<OsStr>>(program: &str, args: &[S], case: &str) -> TestResult {
    let out = tool(program, args)?;
    ensure!(
        out.status.code() == Some(1) && out.stdout.is_empty() && !out.stderr.is_empty(),
        "{program} with {case}: expected exit 1, empty stdout and an error on stderr: {}",
        describe(&out)
    );
    Ok(())
}

/// The example session: send "Hello, Slot 1" on /dev/slot0 channel 1 and read it back.
pub fn tools_example_session() -> TestResult {
    tool_ok(SENDER, &["/dev/slot0", "1", "Hello, Slot 1"])?;
    let out = tool_ok(READER, &["/dev/slot0", "1"])?;
    ensure!(
        out == b"Hello, Slot 1",
        "message_reader printed {:?}, expected exactly \"Hello, Slot 1\" (no newline)",
        String::from_utf8_lossy(&out)
    );
    expect_message(
        &open_minor_bound(0, 1)?,
        b"Hello, Slot 1",
        "library read of the tool's message",
    )
}

/// The reader prints the raw message bytes (NULs, non-UTF-8, newlines) and nothing else;
/// a 128-byte message goes through both tools.
pub fn tools_reader_raw_bytes() -> TestResult {
    let path = slot_path(3)?;
    let dev = path.to_string_lossy().into_owned();
    let ch = fresh_channel();
    let msg = b"a\0b\xffc\n\0";
    send_all(&open_minor_bound(3, ch)?, msg, "library write")?;
    let out = tool_ok(READER, &[dev.as_str(), &ch.to_string()])?;
    ensure!(
        out == msg,
        "message_reader printed {out:?}, expected the raw bytes {msg:?}"
    );

    let long = "x".repeat(MAX_MESSAGE_LEN - 3) + "end";
    tool_ok(SENDER, &[dev.as_str(), &ch.to_string(), &long])?;
    let out = tool_ok(READER, &[dev.as_str(), &ch.to_string()])?;
    ensure!(
        out == long.as_bytes(),
        "128-byte message came back as {} bytes",
        out.len()
    );
    let utf8 = "héllo, wörld ✓";
    tool_ok(SENDER, &[dev.as_str(), &ch.to_string(), utf8])?;
    let out = tool_ok(READER, &[dev.as_str(), &ch.to_string()])?;
    ensure!(out == utf8.as_bytes(), "UTF-8 message came back as {out:?}");
    Ok(())
}

/// The reader fails cleanly: empty channel, bad channel, missing device, wrong arguments.
pub fn tools_reader_errors() -> TestResult {
    let dev = slot_path(3)?.to_string_lossy().into_owned();
    let empty = fresh_channel().to_string();
    let cases: [(&str, Vec<&str>); 9] = [
        ("an empty channel", vec![&dev, &empty]),
        ("channel 0", vec![&dev, "0"]),
        ("channel \"abc\"", vec![&dev, "abc"]),
        ("channel 2^32", vec![&dev, "4294967296"]),
        ("channel -1", vec![&dev, "-1"]),
        ("a missing device", vec!["/dev/slot_does_not_exist", "1"]),
        ("no arguments", vec![]),
        ("one argument", vec![&dev]),
        ("three arguments", vec![&dev, "1", "extra"]),
    ];
    for (case, args) in cases {
        tool_fails(READER, &args, case)?;
    }
    Ok(())
}

/// The sender fails cleanly and leaves the old message: 129 bytes, an empty message, bad
/// channel, missing device, wrong arguments.
pub fn tools_sender_errors() -> TestResult {
    let dev = slot_path(3)?.to_string_lossy().into_owned();
    let ch = fresh_channel();
    let chs = ch.to_string();
    tool_ok(SENDER, &[dev.as_str(), &chs, "old message"])?;
    let too_long = "y".repeat(MAX_MESSAGE_LEN + 1);
    let cases: [(&str, Vec<&str>); 8] = [
        ("a 129-byte message", vec![&dev, &chs, &too_long]),
        ("an empty message", vec![&dev, &chs, ""]),
        ("channel 0", vec![&dev, "0", "zero"]),
        ("channel \"abc\"", vec![&dev, "abc", "abc"]),
        (
            "a missing device",
            vec!["/dev/slot_does_not_exist", &chs, "m"],
        ),
        ("no arguments", vec![]),
        ("two arguments", vec![&dev, &chs]),
        ("four arguments", vec![&dev, &chs, "a", "b"]),
    ];
    for (case, args) in cases {
        tool_fails(SENDER, &args, case)?;
        expect_message(
            &open_minor_bound(3, ch)?,
            b"old message",
            &format!("old message after sender with {case}"),
        )?;
    }
    Ok(())
}

/// `message_reader --wait/--next [--timeout]`: exit 2 with nothing printed when the timeout
/// passes, the message (exit 0) when one comes, the current one at once for `--wait`.
pub fn tools_reader_wait() -> TestResult {
    let path = slot_path(3)?;
    let dev = path.to_string_lossy().into_owned();
    let ch = fresh_channel();
    let chs = ch.to_string();
    let out = tool(READER, &["--wait", "--timeout", "0.3", &dev, &chs])?;
    ensure!(
        out.status.code() == Some(2) && out.stdout.is_empty() && out.stderr.is_empty(),
        "--wait on an empty channel: {}",
        describe(&out)
    );
    // A waiting reader gets the message written while it waits.
    let mut cmd = Command::new(READER);
    cmd.args(["--wait", &dev, &chs]);
    let waiting = spawn(cmd, "message_reader --wait")?;
    thread::sleep(Duration::from_millis(300));
    send_all(&open_bound(&path, ch)?, b"arrived", "write")?;
    let out = waiting.wait(Instant::now() + scaled(TIMEOUT))?;
    ensure!(
        out.status.code() == Some(0) && out.stdout == b"arrived",
        "--wait then a write: {}",
        describe(&out)
    );
    // --wait returns the current message at once; --next waits for a newer one.
    let out = tool(READER, &["--wait", "--timeout", "5", &dev, &chs])?;
    ensure!(
        out.status.code() == Some(0) && out.stdout == b"arrived",
        "--wait with a message: {}",
        describe(&out)
    );
    let out = tool(READER, &["--next", "--timeout", "0.3", &dev, &chs])?;
    ensure!(
        out.status.code() == Some(2) && out.stdout.is_empty(),
        "--next with only an old message: {}",
        describe(&out)
    );
    // Unbound cannot happen from the tool; a bad channel is still an error (exit 1).
    let out = tool(READER, &["--wait", &dev, "0"])?;
    ensure!(
        out.status.code() == Some(1),
        "--wait channel 0: {}",
        describe(&out)
    );
    Ok(())
}

/// `message_reader --mapped` prints what `message_reader` prints, from the channel's mapped
/// record: every length, raw bytes; fails the same on an empty channel; `--wait`, `--next`
/// (exit 2 on timeout, the message written while it waits) through the mapping.
pub fn tools_reader_mapped() -> TestResult {
    let path = slot_path(3)?;
    let dev = path.to_string_lossy().into_owned();
    let ch = fresh_channel();
    let chs = ch.to_string();

    let empty = tool(READER, &["--mapped", &dev, &chs])?;
    let plain = tool(READER, &[dev.as_str(), &chs])?;
    ensure!(
        empty.status.code() == Some(1)
            && empty.stdout.is_empty()
            && empty.stderr == plain.stderr
            && String::from_utf8_lossy(&empty.stderr).contains("temporarily unavailable"),
        "--mapped on an empty channel: {}; without: {}",
        describe(&empty),
        describe(&plain)
    );
    let out = tool(
        READER,
        &["--mapped", "--wait", "--timeout", "0.3", &dev, &chs],
    )?;
    ensure!(
        out.status.code() == Some(2) && out.stdout.is_empty() && out.stderr.is_empty(),
        "--mapped --wait on an empty channel: {}",
        describe(&out)
    );

    let writer = open_bound(&path, ch)?;
    for len in [1, 7, 8, 9, 64, MAX_MESSAGE_LEN] {
        let msg: Vec<u8> = (0..len).map(|i| [0, b'\n', 0xff, b'm'][i % 4]).collect();
        send_all(&writer, &msg, "write")?;
        let mapped = tool_ok(READER, &["--mapped", &dev, &chs])?;
        let plain = tool_ok(READER, &[dev.as_str(), &chs])?;
        ensure!(
            mapped == msg && plain == msg,
            "{len} bytes: --mapped printed {}, without {}, expected {}",
            show(&mapped),
            show(&plain),
            show(&msg)
        );
    }

    // --next through the mapping: nothing for the current message, then the one written.
    let out = tool(
        READER,
        &["--mapped", "--next", "--timeout", "0.3", &dev, &chs],
    )?;
    ensure!(
        out.status.code() == Some(2) && out.stdout.is_empty(),
        "--mapped --next with only an old message: {}",
        describe(&out)
    );
    let mut cmd = Command::new(READER);
    cmd.args(["--mapped", "--next", &dev, &chs]);
    let waiting = spawn(cmd, "message_reader --mapped --next")?;
    // Written again until it exits: a reader that starts after a write skips that one.
    let out = waiting.wait_poking(
        Instant::now() + scaled(TIMEOUT),
        Duration::from_millis(300),
        || send_all(&writer, b"next one", "write"),
    )?;
    ensure!(
        out.status.code() == Some(0) && out.stdout == b"next one",
        "--mapped --next then a write: {}",
        describe(&out)
    );
    Ok(())
}

/// `message_reader --follow` prints the current message and each new one with its separator
/// (newline, `--null`: NUL, `--raw`: nothing), also through the mapping (`--mapped`), and
/// exits 130 on SIGINT with complete output.
pub fn tools_reader_follow() -> TestResult {
    use std::io::Read;
    use std::process::Stdio;

    let path = slot_path(3)?;
    let dev = path.to_string_lossy().into_owned();
    for (flag, sep) in [
        (&[][..], b"\n".as_slice()),
        (&["--null"][..], b"\0"),
        (&["--raw"][..], b""),
        (&["--mapped"][..], b"\n"),
    ] {
        let ch = fresh_channel();
        let writer = open_bound(&path, ch)?;
        send_all(&writer, b"m0 with\nnewline", "first write")?;
        let mut args = vec!["--follow".to_string()];
        args.extend(flag.iter().map(|flag| flag.to_string()));
        args.extend([dev.clone(), ch.to_string()]);
        let mut child = Command::new(READER)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ctx("spawn message_reader --follow")?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let pump = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut got = Vec::new();
        let mut want = Vec::new();
        let result = (|| -> TestResult {
            for i in 0..4 {
                let msg: Vec<u8> = if i == 0 {
                    b"m0 with\nnewline".to_vec()
                } else {
                    let m = format!("message {i}").into_bytes();
                    send_all(&writer, &m, "write")?;
                    m
                };
                want.extend_from_slice(&msg);
                want.extend_from_slice(sep);
                let deadline = Instant::now() + scaled(Duration::from_secs(20));
                while got.len() < want.len() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    got.extend(rx.recv_timeout(left).map_err(|_| {
                        format!(
                            "--follow {flag:?}: message {i} not printed; so far {}",
                            show(&got)
                        )
                    })?);
                }
                ensure!(
                    got == want,
                    "--follow {flag:?}: printed {}, expected {}",
                    show(&got),
                    show(&want)
                );
            }
            Ok(())
        })();
        // SAFETY: plain system call on our child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = child.wait().ctx("wait for message_reader")?;
        let _ = pump.join();
        result?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        ensure!(
            status.code() == Some(130) && err.is_empty(),
            "--follow {flag:?} after SIGINT: {status}, stderr {err:?}"
        );
        ensure!(
            rx.try_iter().flatten().next().is_none(),
            "--follow {flag:?} printed more after the last message"
        );
    }
    Ok(())
}

/// `message_slot_stat` prints the sysfs values as a table and as JSON.
pub fn tools_message_slot_stat() -> TestResult {
    let minor = 1;
    let ch = fresh_channel();
    let f = open_bound(&slot_path(minor)?, ch)?;
    send_all(&f, b"counted", "write")?;
    let values = stats(minor)?;
    let out = tool(STAT, &["--json"])?;
    ensure!(
        out.status.success(),
        "message_slot_stat --json: {}",
        describe(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let object = text
        .split('{')
        .find(|o| o.contains(&format!("\"slot\":{minor},")))
        .ok_or(format!("no slot {minor} in {text}"))?;
    for (statistic, value) in values.iter() {
        let field = statistic.as_str();
        // Nothing touches the slot meanwhile, so every value matches.
        ensure!(
            object.contains(&format!("\"{field}\":{value}")),
            "JSON {object:?} lacks {field} {value}"
        );
    }
    ensure!(
        object.contains(&format!("\"device\":\"/dev/message_slot/{minor}\"")),
        "{object:?}"
    );
    let out = tool::<&str>(STAT, &[])?;
    ensure!(
        out.status.success(),
        "message_slot_stat: {}",
        describe(&out)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let header = table.lines().next().unwrap_or_default();
    ensure!(
        header.split_whitespace().eq(["slot"]
            .into_iter()
            .chain(Statistic::ALL.map(Statistic::as_str))),
        "header {header:?}"
    );
    let row: Vec<String> = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&minor.to_string()))
        .ok_or(format!("no row for slot {minor}: {table}"))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let sysfs: Vec<String> = values.iter().map(|(_, value)| value.to_string()).collect();
    ensure!(row[1..] == sysfs, "row {row:?}, sysfs {values:?}");
    println!(
        "  $ message_slot_stat\n{}",
        table
            .trim_end()
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(f);
    Ok(())
}

/// The C program built against `message_slot.h` passes: the calls, and the header's mapped
/// reader against `read(2)` (tests/c/header_user.c).
pub fn header_user_c() -> TestResult {
    ensure!(
        Path::new(HEADER_USER).exists(),
        "{HEADER_USER} is missing (the rig should build tests/c/header_user.c)"
    );
    let out = run(Command::new(HEADER_USER), HEADER_USER, TIMEOUT)?;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("header_user: ok"),
        "{HEADER_USER}: {}",
        describe(&out)
    );
    Ok(())
}
