// SPDX-License-Identifier: GPL-2.0

//! Checks that the C header `uapi/message_slot.h` agrees with the Rust constants of
//! `uapi/uapi.rs`: one table of (C name, value), every ioctl of [`Ioctl::ALL`] among them. A C
//! program generated from the table prints each name's value; the header defines nothing else.

use std::path::Path;
use std::process::Command;

use message_slot::Ioctl;

/// Every constant the header defines, by its C name, with the value uapi.rs gives it.
fn constants() -> Vec<(&'static str, u64)> {
    let mut constants = vec![
        ("MAJOR_NUM", u64::from(message_slot::MAJOR_NUM)),
        ("MSG_SLOT_MAX_MESSAGE", message_slot::MAX_MESSAGE_LEN as u64),
        (
            "MSG_SLOT_CHANNELS_PER_SLOT",
            message_slot::CHANNELS_PER_SLOT as u64,
        ),
    ];
    constants.extend(
        Ioctl::ALL
            .iter()
            .map(|ioctl| (ioctl.c_name(), u64::from(ioctl.cmd()))),
    );
    constants
}

/// A C program printing `NAME VALUE` for every constant.
fn program(constants: &[(&str, u64)]) -> String {
    let mut program =
        String::from("#include <stdio.h>\n#include \"message_slot.h\"\n\nint main(void)\n{\n");
    for (name, _) in constants {
        program.push_str(&format!(
            "\tprintf(\"%s %lu\\n\", \"{name}\", (unsigned long)({name}));\n"
        ));
    }
    program.push_str("\treturn 0;\n}\n");
    program
}

#[test]
fn c_header_matches_rust_constants() {
    let uapi = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../uapi");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_header");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("print_uapi.c");
    let binary = dir.join("print_uapi");
    let constants = constants();
    std::fs::write(&source, program(&constants)).unwrap();

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
    let values: Vec<(String, u64)> = printed
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect();
    let expected: Vec<(String, u64)> = constants
        .iter()
        .map(|&(name, value)| (name.to_owned(), value))
        .collect();
    assert_eq!(values, expected, "message_slot.h disagrees with uapi.rs");
}

/// The header defines the constants of the table and nothing else (besides its include
/// guard), so an ioctl or constant added to one side only fails here.
#[test]
fn c_header_defines_only_the_table() {
    let header = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../uapi/message_slot.h"),
    )
    .unwrap();
    let mut defined: Vec<&str> = header
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("#define "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|&name| name != "MESSAGE_SLOT_H")
        .collect();
    let mut expected: Vec<&str> = constants().iter().map(|&(name, _)| name).collect();
    defined.sort_unstable();
    expected.sort_unstable();
    assert_eq!(defined, expected, "message_slot.h's #defines");
}
