// SPDX-License-Identifier: GPL-2.0

//! Checks that the C header `uapi/message_slot.h` agrees with the Rust constants.

use std::path::Path;
use std::process::Command;

const PROGRAM: &str = r#"#include <stdio.h>
#include "message_slot.h"

int main(void)
{
	printf("%lu %lu %lu %lu\n",
	       (unsigned long)MAJOR_NUM,
	       (unsigned long)MSG_SLOT_CHANNEL,
	       (unsigned long)MSG_SLOT_MAX_MESSAGE,
	       (unsigned long)MSG_SLOT_CHANNELS_PER_SLOT);
	return 0;
}
"#;

#[test]
fn c_header_matches_rust_constants() {
    let uapi = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../uapi");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_header");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("print_uapi.c");
    let binary = dir.join("print_uapi");
    std::fs::write(&source, PROGRAM).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&uapi)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run C compiler {cc}: {e}"));
    assert!(status.success(), "{cc} failed on message_slot.h: {status}");

    let output = Command::new(&binary).output().unwrap();
    assert!(output.status.success(), "{}", output.status);
    let printed = String::from_utf8(output.stdout).unwrap();
    let values: Vec<u64> = printed
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();

    assert_eq!(
        values,
        [
            u64::from(message_slot::MAJOR_NUM),
            u64::from(message_slot::MSG_SLOT_CHANNEL),
            message_slot::MAX_MESSAGE_LEN as u64,
            message_slot::CHANNELS_PER_SLOT as u64,
        ],
        "message_slot.h (MAJOR_NUM, MSG_SLOT_CHANNEL, MSG_SLOT_MAX_MESSAGE, \
         MSG_SLOT_CHANNELS_PER_SLOT) disagrees with uapi.rs"
    );
}
