// SPDX-License-Identifier: GPL-2.0

//! The command-line tools `message_sender` / `message_reader` (from `PATH`) and the C
//! header check program `/header_user`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{
    describe, expect_message, fresh_channel, open_minor_bound, run, send_all, slot_path,
    TestResult, MAX_MSG,
};

const SENDER: &str = "message_sender";
const READER: &str = "message_reader";
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

    let long = "x".repeat(MAX_MSG - 3) + "end";
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
    let too_long = "y".repeat(MAX_MSG + 1);
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

/// The C program built against `message_slot.h` passes.
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
