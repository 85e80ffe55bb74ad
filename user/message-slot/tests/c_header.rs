// SPDX-License-Identifier: GPL-2.0

//! Checks that the C header `uapi/message_slot.h` agrees with the Rust constants of
//! `uapi/uapi.rs`: one table of (C name, value), every ioctl of [`Ioctl::ALL`] among them, and
//! one of the record's layout (its size, alignment and field offsets against
//! [`message_slot::Record`]'s). A C program generated from the tables prints each value; the
//! header defines nothing else; and it compiles warning-free as C99, C11 and C++11.

use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use message_slot::{Ioctl, Record};

/// Every constant the header defines, by its C name, with the value uapi.rs gives it.
fn constants() -> Vec<(&'static str, u64)> {
    let mut constants = vec![
        ("MAJOR_NUM", u64::from(message_slot::MAJOR_NUM)),
        ("MSG_SLOT_MAX_MESSAGE", message_slot::MAX_MESSAGE_LEN as u64),
        (
            "MSG_SLOT_DEFAULT_MAX_CHANNELS",
            message_slot::DEFAULT_MAX_CHANNELS as u64,
        ),
        // The former name of MSG_SLOT_DEFAULT_MAX_CHANNELS, kept as an alias.
        (
            "MSG_SLOT_CHANNELS_PER_SLOT",
            message_slot::DEFAULT_MAX_CHANNELS as u64,
        ),
        (
            "MSG_SLOT_MAPPED_READ_ATTEMPTS",
            u64::from(message_slot::MAPPED_READ_ATTEMPTS),
        ),
    ];
    constants.extend(
        Ioctl::ALL
            .iter()
            .map(|ioctl| (ioctl.c_name(), u64::from(ioctl.cmd()))),
    );
    constants
}

/// `struct message_slot_record`'s layout, as C expressions, with the values of `Record`'s.
fn layout() -> Vec<(&'static str, u64)> {
    assert_eq!(size_of::<Record>(), message_slot::RECORD_SIZE);
    [
        ("sizeof(struct message_slot_record)", size_of::<Record>()),
        ("_Alignof(struct message_slot_record)", align_of::<Record>()),
        (
            "offsetof(struct message_slot_record, sequence)",
            offset_of!(Record, sequence),
        ),
        (
            "offsetof(struct message_slot_record, length)",
            offset_of!(Record, length),
        ),
        (
            "offsetof(struct message_slot_record, message)",
            offset_of!(Record, message),
        ),
        (
            "sizeof(((struct message_slot_record *)0)->message)",
            size_of::<[u64; message_slot::RECORD_WORDS]>(),
        ),
    ]
    .into_iter()
    .map(|(expression, value)| (expression, value as u64))
    .collect()
}

/// A C program printing `NAME VALUE` for every constant (or expression).
fn program(constants: &[(&str, u64)]) -> String {
    let mut program = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"message_slot.h\"\n\nint main(void)\n{\n",
    );
    for (name, _) in constants {
        program.push_str(&format!(
            "\tprintf(\"%s %lu\\n\", \"{name}\", (unsigned long)({name}));\n"
        ));
    }
    program.push_str("\treturn 0;\n}\n");
    program
}

fn uapi_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../uapi")
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_header");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `source` with `compiler` (`$CC`/`$CXX` or `default`) and `flags`, warnings as
/// errors, into `output`.
fn compile(compiler: (&str, &str), flags: &[&str], source: &Path, output: &Path) {
    let (variable, default) = compiler;
    let cc = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    let status = Command::new(&cc)
        .args(flags)
        .args(["-Wall", "-Wextra", "-Werror", "-I"])
        .arg(uapi_dir())
        .arg("-o")
        .arg(output)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run compiler {cc}: {e}"));
    assert!(
        status.success(),
        "{cc} {flags:?} failed on message_slot.h: {status}"
    );
}

#[test]
fn c_header_matches_rust_constants() {
    let dir = work_dir();
    let source = dir.join("print_uapi.c");
    let binary = dir.join("print_uapi");
    let mut constants = constants();
    constants.extend(layout());
    std::fs::write(&source, program(&constants)).unwrap();
    compile(("CC", "cc"), &["-std=c11"], &source, &binary);

    let output = Command::new(&binary).output().unwrap();
    assert!(output.status.success(), "{}", output.status);
    let printed = String::from_utf8(output.stdout).unwrap();
    let values: Vec<(String, u64)> = printed
        .lines()
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect();
    let expected: Vec<(String, u64)> = constants
        .iter()
        .map(|&(name, value)| (name.to_owned(), value))
        .collect();
    assert_eq!(values, expected, "message_slot.h disagrees with uapi.rs");
}

/// Every function of the header, called from C99 and C++11 (and C11 above), warning-free.
#[test]
fn c_header_compiles_as_c99_and_cxx11() {
    let program = "#include \"message_slot.h\"\n\
        int main(void)\n{\n\
        \tstruct message_slot_mapping mapping;\n\
        \tchar buffer[MSG_SLOT_MAX_MESSAGE];\n\
        \tssize_t n = -1;\n\
        \tif (message_slot_map(0, &mapping) == 0) {\n\
        \t\tn = message_slot_read_mapped(mapping.record, 0, buffer, sizeof(buffer));\n\
        \t\tmessage_slot_unmap(&mapping);\n\
        \t}\n\
        \treturn n < 0;\n}\n";
    let dir = work_dir();
    for (name, compiler, flags) in [
        ("c99.c", ("CC", "cc"), "-std=c99"),
        ("cxx11.cc", ("CXX", "c++"), "-std=c++11"),
    ] {
        let source = dir.join(name);
        std::fs::write(&source, program).unwrap();
        compile(
            compiler,
            &[flags],
            &source,
            &dir.join(format!("{name}.out")),
        );
    }
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
