// SPDX-License-Identifier: GPL-2.0

//! `message-slot-man OUT_DIR`: writes the manual pages `message_sender.1`, `message_reader.1`
//! and `message_slot_stat.1` into `OUT_DIR`, generated with `clap_mangen` from the tools' own
//! argument definitions (`message_slot_tools::{SenderArgs, reader::ReaderArgs,
//! stat::StatArgs}`), so that the pages say what `--help` says. The sections clap has no
//! field for (EXIT STATUS, FILES, EXAMPLES, SEE ALSO) are added here. The page date is
//! `SOURCE_DATE_EPOCH`'s day when that is set (as in a Debian package build), else empty.
//! `make tools` runs it into build/man; the device's page, message_slot(4), is written by
//! hand (packaging/man/message_slot.4).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use message_slot::Statistic;
use message_slot_tools::reader::{
    ReaderArgs, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT,
};
use message_slot_tools::stat::StatArgs;
use message_slot_tools::SenderArgs;

/// The three tools, for SEE ALSO.
const TOOLS: [&str; 3] = ["message_sender", "message_reader", "message_slot_stat"];

/// A tool's page: its clap command and the sections added after OPTIONS.
struct Page {
    command: clap::Command,
    exit_status: Vec<(String, &'static str)>,
    files: Vec<(&'static str, String)>,
    examples: Vec<(&'static str, &'static str)>,
}

fn pages() -> Vec<Page> {
    vec![
        Page {
            command: SenderArgs::command(),
            exit_status: vec![
                ("0".into(), "The message was stored."),
                (
                    "1".into(),
                    "A usage error, or opening the device, setting the channel or writing \
                     failed (the reason is printed on standard error), e.g. EMSGSIZE for an \
                     empty message or one longer than 128 bytes.",
                ),
            ],
            files: vec![(
                "/dev/message_slot/N",
                "The nodes of the slots the module announces (module parameter nodes); \
                 readable and writable by the group message-slot with the packaged udev rule."
                    .into(),
            )],
            examples: vec![(
                "message_sender /dev/message_slot/0 1 \"Hello, Slot 1\"",
                "Stores Hello, Slot 1 in channel 1 of slot 0, replacing its message.",
            )],
        },
        Page {
            command: ReaderArgs::command(),
            exit_status: vec![
                (EXIT_OK.to_string(), "A message was printed."),
                (
                    EXIT_FAILURE.to_string(),
                    "A usage error, or an operation failed (the reason is printed on \
                     standard error), e.g. EWOULDBLOCK when the channel holds no message and \
                     neither --wait nor --next is given.",
                ),
                (
                    EXIT_TIMEOUT.to_string(),
                    "--timeout passed before a message came; nothing was printed.",
                ),
                (
                    EXIT_INTERRUPTED.to_string(),
                    "SIGINT (Ctrl-C) ended --wait, --next or --follow; every message already \
                     printed is complete.",
                ),
            ],
            files: vec![(
                "/dev/message_slot/N",
                "The nodes of the slots the module announces (module parameter nodes).".into(),
            )],
            examples: vec![
                (
                    "message_reader /dev/message_slot/0 1",
                    "Prints the message of channel 1 of slot 0, without a newline.",
                ),
                (
                    "message_reader --next --timeout 5 /dev/message_slot/0 1",
                    "Waits up to 5 seconds for the next message written to the channel.",
                ),
                (
                    "message_reader --follow --null /dev/message_slot/0 1 | xargs -0 -n1 echo",
                    "Prints every new message of the channel on a line of its own.",
                ),
                (
                    "message_reader --mapped --follow /dev/message_slot/0 1",
                    "The same messages, each read from the channel's mapped record instead of \
                     with read(2).",
                ),
            ],
        },
        Page {
            command: StatArgs::command(),
            exit_status: vec![
                ("0".into(), "The statistics were printed."),
                (
                    "1".into(),
                    "A usage error, or the class directory could not be read (the module is \
                     not loaded, or was loaded with nodes=0).",
                ),
            ],
            files: vec![(
                "/sys/class/message_slot/message_slotN/",
                format!(
                    "The statistics of slot N, one file each: {} (see message_slot(4)).",
                    Statistic::ALL.map(Statistic::as_str).join(", ")
                ),
            )],
            examples: vec![(
                "message_slot_stat --json",
                "Prints a JSON array with one object per slot: slot, device and the \
                 statistics.",
            )],
        },
    ]
}

/// Renders a page: clap_mangen's sections, then ours.
fn render(page: &Page, date: &str) -> std::io::Result<Vec<u8>> {
    let name = page.command.get_name().to_owned();
    let version = page.command.get_version().unwrap_or_default().to_owned();
    let man = Man::new(page.command.clone())
        .section("1")
        .date(date)
        .source(format!("message-slot {version}"))
        .manual("User Commands");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::default();
    let mut tagged = |heading: &str, items: &[(String, String)], tag: fn(String) -> Inline| {
        roff.control("SH", [heading]);
        for (term, text) in items {
            roff.control("TP", []);
            roff.text([tag(term.clone())]);
            roff.text([roman(text.clone())]);
        }
    };
    tagged("EXIT STATUS", &owned(&page.exit_status), bold);
    tagged("FILES", &owned(&page.files), italic);
    tagged("EXAMPLES", &owned(&page.examples), bold);
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<Inline> = Vec::new();
    for other in TOOLS.iter().filter(|t| **t != name) {
        see_also.push(bold(*other));
        see_also.push(roman("(1), "));
    }
    see_also.push(bold("message_slot"));
    see_also.push(roman("(4)"));
    roff.text(see_also);
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// A section's (term, text) pairs as `String`s.
fn owned(items: &[(impl ToString, impl ToString)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(term, text)| (term.to_string(), text.to_string()))
        .collect()
}

/// `SOURCE_DATE_EPOCH` as YYYY-MM-DD, or empty.
fn page_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(civil_date)
        .unwrap_or_default()
}

/// The UTC day of a Unix time as YYYY-MM-DD.
fn civil_date(epoch: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 || args[1].starts_with('-') {
        eprintln!("usage: message-slot-man OUT_DIR");
        return ExitCode::from(2);
    }
    let dir = PathBuf::from(&args[1]);
    let date = page_date();
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        for page in pages() {
            let path = dir.join(format!("{}.1", page.command.get_name()));
            std::fs::write(&path, render(&page, &date)?)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "message-slot-man: cannot write the pages to {}: {error}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_and_operand_is_on_its_page() {
        for page in pages() {
            let text = String::from_utf8(render(&page, "").unwrap()).unwrap();
            for arg in page.command.get_arguments() {
                let shown = match arg.get_long() {
                    Some(long) => format!("\\-\\-{long}"),
                    None => arg.get_id().as_str().to_uppercase(),
                };
                assert!(
                    text.contains(&shown),
                    "{}: {shown} missing",
                    page.command.get_name()
                );
            }
            assert!(text.contains(".SH \"EXIT STATUS\""), "{text}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_764_633_600 + 86_399), "2025-12-02");
    }
}
