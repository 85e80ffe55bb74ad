// SPDX-License-Identifier: GPL-2.0

//! Checks the copies of the device's names that load the module on first use (docs/autoload.md)
//! against uapi.rs, their single source of truth: the module's aliases (string literals in
//! `module!`, which takes no constants), the static node's tmpfiles.d line and the udev rule's
//! `static_node`, whose group and mode must be those the udev rule gives the class's nodes.

mod common;

use common::read;
use message_slot::{CLASS_NAME, MAJOR_NUM};

/// The static node: the class's node of minor 0, relative to /dev.
fn static_node() -> String {
    format!("{}/0", CLASS_NAME.to_str().unwrap())
}

/// The value of `KEY="VALUE"` in a udev rule line.
fn udev_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    line[start..].split('"').next()
}

#[test]
fn module_aliases_derive_from_uapi() {
    let source = read("kernel/message_slot_main.rs");
    let expected = format!(
        "alias: [\"char-major-{MAJOR_NUM}-*\", \"char-major-{MAJOR_NUM}-0\", \"devname:{}\"],",
        static_node()
    );
    let aliases: Vec<&str> = source
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("alias:"))
        .collect();
    // One `module!` for 6.12, one for 7.x.
    assert_eq!(
        aliases,
        [expected.as_str(); 2],
        "kernel/message_slot_main.rs"
    );
}

#[test]
fn static_node_permissions_match_the_udev_rule() {
    let rules = read("packaging/udev/60-message-slot.rules");
    let rule = rules
        .lines()
        .find(|line| line.contains("MODE="))
        .expect("the udev rule sets the nodes' mode");
    let static_option = format!("OPTIONS+=\"static_node={}\"", static_node());
    assert!(rule.contains(&static_option), "{rule}: no {static_option}");
    let (group, mode) = (
        udev_value(rule, "GROUP").unwrap(),
        udev_value(rule, "MODE").unwrap(),
    );

    let tmpfiles = read("packaging/tmpfiles.d/message-slot.conf");
    let lines: Vec<&str> = tmpfiles
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    let expected = format!("z /dev/{} {mode} root {group} -", static_node());
    assert_eq!(
        lines,
        [expected.as_str()],
        "packaging/tmpfiles.d/message-slot.conf"
    );
}
