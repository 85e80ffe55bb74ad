// SPDX-License-Identifier: GPL-2.0

//! The device's contract is written in one place, message_slot(4)
//! (`packaging/man/message_slot.4.in`). Everything that restates part of it is checked
//! against it here: README's call table (the errors of each call, the ioctls, the poll
//! events), the library's `# Errors` sections (`Slot::set_channel`, `send`, `receive`,
//! `map_channel`, `MappedChannel::read`) and
//! the constants of `uapi/uapi.rs` (the ioctls, the message size, the statistics, the
//! parameters' defaults and limits, also in the module's parameter descriptions).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::read;
use message_slot::{
    Ioctl, Statistic, DEFAULT_MAX_CHANNELS, DEFAULT_NODES, MAX_MESSAGE_LEN, SLOT_MINORS,
};

/// The man page's source.
fn man_page() -> String {
    read("packaging/man/message_slot.4.in")
}

/// The lines of the man page's section (`.SH NAME`) or subsection (`.SS NAME`) `name`, up to
/// the next one of either.
fn man_section(page: &str, heading: &str) -> Vec<String> {
    let mut lines = page.lines().skip_while(|line| *line != heading);
    assert!(lines.next().is_some(), "message_slot(4) has no {heading}");
    lines
        .take_while(|line| !line.starts_with(".SH") && !line.starts_with(".SS"))
        .map(str::to_owned)
        .collect()
}

/// The errno names (`EINVAL`...) written in `text`; `EAGAIN` is `EWOULDBLOCK`.
fn errnos(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| {
            word.len() > 3
                && word.starts_with('E')
                && word.chars().all(|c| c.is_ascii_uppercase())
                && !word.starts_with("EPOLL")
        })
        .map(|word| {
            if word == "EAGAIN" {
                "EWOULDBLOCK"
            } else {
                word
            }
            .to_owned()
        })
        .collect()
}

/// Words of `text` that start with `prefix` and are upper case (`POLLIN`...).
fn upper_words(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| {
            word.starts_with(prefix) && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The calls whose errors the contract lists (`MSG_SLOT_RECORD_OFFSET`: the ioctl's errors
/// that `MSG_SLOT_CHANNEL` does not have).
const CALLS: [&str; 6] = [
    "ioctl",
    "read",
    "write",
    "mmap",
    "mprotect",
    "MSG_SLOT_RECORD_OFFSET",
];

/// The calls of README's call table (its `mmap` row also has `mprotect`'s and
/// `MSG_SLOT_RECORD_OFFSET`'s errors).
const README_CALLS: [&str; 4] = ["ioctl", "read", "write", "mmap"];

/// Per call, the errnos of message_slot(4)'s ERRORS section: each entry is `.TP`, `.B
/// ERRNO`, then text naming the calls that fail so (`.B write`).
fn man_errors() -> BTreeMap<String, BTreeSet<String>> {
    let errors = man_section(&man_page(), ".SH ERRORS");
    let mut by_call: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in errors
        .split(|line| line == ".TP")
        .filter(|entry| !entry.is_empty())
    {
        let errno = entry[0]
            .strip_prefix(".B ")
            .unwrap_or_else(|| panic!("an ERRORS entry starts with {:?}", entry[0]));
        let mut named = 0;
        for line in &entry[1..] {
            let word = line
                .strip_prefix(".BR ")
                .or_else(|| line.strip_prefix(".B "))
                .and_then(|rest| rest.split_whitespace().next());
            if let Some(call) = word.filter(|word| CALLS.contains(word)) {
                by_call
                    .entry(call.to_owned())
                    .or_default()
                    .insert(errno.to_owned());
                named += 1;
            }
        }
        assert!(named > 0, "ERRORS: {errno} names no call");
    }
    by_call
}

/// README's call table: its rows, by the call they start with.
fn readme_rows() -> BTreeMap<String, String> {
    read("README.md")
        .lines()
        .filter_map(|line| {
            let call = line.strip_prefix("| `")?;
            let name: String = call.chars().take_while(char::is_ascii_alphabetic).collect();
            Some((name, line.to_owned()))
        })
        .collect()
}

#[test]
fn readme_call_table_has_the_errors_of_the_man_page() {
    let man = man_errors();
    let rows = readme_rows();
    for call in README_CALLS {
        let row = rows
            .get(call)
            .unwrap_or_else(|| panic!("README's call table has no row for {call}"));
        let mut expected = man[call].clone();
        if call == "mmap" {
            expected.extend(man["mprotect"].iter().cloned());
            expected.extend(man["MSG_SLOT_RECORD_OFFSET"].iter().cloned());
        }
        assert_eq!(
            errnos(row),
            expected,
            "README's {call} row and message_slot(4)'s ERRORS"
        );
    }
}

#[test]
fn readme_and_man_page_poll_events_agree() {
    let readme = readme_rows();
    let man = man_section(&man_page(), ".SS poll, select, epoll").join("\n");
    let events = upper_words(&man, "POLL");
    assert!(
        events.contains("POLLIN") && events.contains("POLLERR"),
        "{events:?}"
    );
    assert_eq!(upper_words(&readme["poll"], "POLL"), events);
}

/// The library's `# Errors` section of `pub fn NAME` (names are unique across its files).
fn library_errors(name: &str) -> BTreeSet<String> {
    let source = read("user/message-slot/src/lib.rs") + &read("user/message-slot/src/mapped.rs");
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.trim_start().starts_with(&format!("pub fn {name}(")))
        .unwrap_or_else(|| panic!("lib.rs has no pub fn {name}"));
    let docs: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .take_while(|line| line.trim_start().starts_with("///"))
        .copied()
        .collect();
    let section: Vec<&str> = docs
        .into_iter()
        .rev()
        .skip_while(|line| line.trim() != "/// # Errors")
        .filter(|line| line.trim_start().starts_with("/// - "))
        .collect();
    assert!(!section.is_empty(), "Slot::{name} has no # Errors list");
    section.iter().flat_map(|line| errnos(line)).collect()
}

#[test]
fn library_errors_are_the_man_pages() {
    let man = man_errors();
    // A slice is always a valid address: the library cannot get EFAULT.
    let without_efault = |call: &str| {
        let mut errors = man[call].clone();
        errors.remove("EFAULT");
        errors
    };
    assert_eq!(library_errors("set_channel"), without_efault("ioctl"));
    assert_eq!(library_errors("send"), without_efault("write"));
    assert_eq!(library_errors("receive"), without_efault("read"));
    // The library maps PROT_READ only: never EPERM.
    let mut map = man["mmap"].clone();
    map.extend(man["MSG_SLOT_RECORD_OFFSET"].iter().cloned());
    map.remove("EPERM");
    assert_eq!(library_errors("map_channel"), map);
    // A mapped slot is bound, and a binding never goes: never EINVAL.
    let mut mapped_read = without_efault("read");
    mapped_read.remove("EINVAL");
    assert_eq!(library_errors("read"), mapped_read);
}

#[test]
fn ioctls_are_uapis() {
    let page = man_page();
    let man = man_section(&page, ".SS ioctl").join("\n");
    let header_list = man_section(&page, ".SH FILES").join("\n");
    for ioctl in Ioctl::ALL {
        assert!(
            man.contains(ioctl.c_name()),
            "message_slot(4) lacks {}",
            ioctl.c_name()
        );
        assert!(
            header_list.contains(ioctl.c_name()),
            "message_slot(4)'s FILES (the header) lacks {}",
            ioctl.c_name()
        );
    }
    // Every ioctl request README or the man page call shows is one of uapi's.
    let known: BTreeSet<String> = Ioctl::ALL.iter().map(|i| i.c_name().to_owned()).collect();
    for text in [man.as_str(), readme_rows()["ioctl"].as_str()] {
        let shown = upper_words(text, "MSG_SLOT_");
        assert!(
            !shown.is_empty() && shown.is_subset(&known),
            "{shown:?} not all in {known:?}"
        );
    }
}

#[test]
fn message_size_is_uapis() {
    let page = man_page();
    let size = MAX_MESSAGE_LEN.to_string();
    assert!(page.contains(&format!("1 to {size} bytes")));
    let errors = man_section(&page, ".SH ERRORS").join(" ");
    assert!(errors.contains(&format!("of 0 bytes or of more than {size}")));
    let write = &readme_rows()["write"];
    assert!(
        write.contains(&format!("`n` in 1..={size}")) && write.contains(&format!("`n > {size}`"))
    );
}

#[test]
fn statistics_are_uapis() {
    let files = man_section(&man_page(), ".SH FILES");
    let named: BTreeSet<&str> = files
        .iter()
        .filter_map(|line| {
            line.strip_prefix(".BR ")
                .or_else(|| line.strip_prefix(".B "))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    for statistic in Statistic::ALL.map(Statistic::as_str) {
        assert!(
            named.contains(statistic),
            "message_slot(4)'s FILES lacks {statistic}"
        );
    }
}

#[test]
fn parameters_are_uapis() {
    let page = man_page();
    let parameters = man_section(&page, ".SH \"MODULE PARAMETERS\"").join(" ");
    let max_channels = parameters
        .split(".BI nodes=")
        .next()
        .expect("max_channels, then nodes");
    assert!(max_channels.contains(&format!("(default {DEFAULT_MAX_CHANNELS},")));
    let nodes = parameters.split(".BI nodes=").nth(1).expect("nodes");
    let nodes_limits = format!("default {DEFAULT_NODES}, at most {SLOT_MINORS}, 0 for none");
    assert!(
        nodes.contains(&nodes_limits),
        "message_slot(4) nodes: {nodes_limits}"
    );
    // The module's own description of the parameter (modinfo) says the same.
    let main = read("kernel/message_slot_main.rs");
    assert!(
        main.contains(&format!("({nodes_limits})")),
        "kernel/message_slot_main.rs nodes"
    );
}
