// SPDX-License-Identifier: GPL-2.0

//! Command-line behaviour of `message_sender` and `message_reader` that needs no device.

use std::process::{Command, Output};

const SENDER: &str = env!("CARGO_BIN_EXE_message_sender");
const READER: &str = env!("CARGO_BIN_EXE_message_reader");
const MISSING: &str = "/nonexistent/message-slot/slot0";

fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit status 1, nothing on stdout and every one of `needles` on stderr.
fn assert_fails(tool: &str, args: &[&str], needles: &[&str]) {
    let output = run(tool, args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{tool} {args:?}: {err}");
    assert!(output.stdout.is_empty(), "{tool} {args:?} wrote to stdout");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{tool} {args:?}: {err:?} lacks {needle:?}"
        );
    }
}

#[test]
fn wrong_argument_count_fails() {
    assert_fails(SENDER, &[], &["required", "<DEVICE>", "Usage:"]);
    assert_fails(SENDER, &[MISSING, "1"], &["required", "<MESSAGE>"]);
    assert_fails(
        SENDER,
        &[MISSING, "1", "a", "b"],
        &["unexpected argument 'b'"],
    );
    assert_fails(READER, &[], &["required", "<DEVICE>", "Usage:"]);
    assert_fails(READER, &[MISSING], &["required", "<CHANNEL>"]);
    assert_fails(READER, &[MISSING, "1", "a"], &["unexpected argument 'a'"]);
}

#[test]
fn bad_channel_fails() {
    for channel in ["abc", "0", "-1", "4294967296", "", "1x"] {
        let needle = format!("invalid value '{channel}' for '<CHANNEL>'");
        assert_fails(SENDER, &[MISSING, channel, "hi"], &[&needle]);
        assert_fails(READER, &[MISSING, channel], &[&needle]);
    }
}

#[test]
fn missing_device_fails() {
    let needle = format!("cannot open {MISSING}: No such file or directory (os error 2)");
    assert_fails(
        SENDER,
        &[MISSING, "7", "hi"],
        &["message_sender: ", &needle],
    );
    assert_fails(READER, &[MISSING, "7"], &["message_reader: ", &needle]);
}

#[test]
fn non_slot_device_fails_at_set_channel() {
    let needle = "cannot set channel 7: Inappropriate ioctl for device (os error 25)";
    assert_fails(
        SENDER,
        &["/dev/null", "7", "hi"],
        &["message_sender: ", needle],
    );
    assert_fails(READER, &["/dev/null", "7"], &["message_reader: ", needle]);
}

#[test]
fn message_is_taken_literally() {
    for message in ["-h", "--help", "--version", "--"] {
        assert_fails(SENDER, &[MISSING, "7", message], &["cannot open"]);
    }
}

#[test]
fn help_and_version_succeed() {
    for tool in [SENDER, READER] {
        for flag in ["--help", "-h"] {
            let output = run(tool, &[flag]);
            assert_eq!(output.status.code(), Some(0), "{tool} {flag}");
            assert!(String::from_utf8_lossy(&output.stdout).contains("Usage:"));
        }
        let output = run(tool, &["--version"]);
        assert_eq!(output.status.code(), Some(0), "{tool} --version");
        assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}
