// SPDX-License-Identifier: GPL-2.0

//! `message_reader`'s command line and what it asks for.
//!
//! ```text
//! message_reader <device> <channel>                          print the message (the original)
//! message_reader --wait [--timeout SECS] <device> <channel>  ... waiting for one if there is none
//! message_reader --next [--timeout SECS] <device> <channel>  wait for a message written later
//! message_reader --follow [--null | --raw] <device> <channel>  print every new message
//! message_reader --mapped [any of the above] <device> <channel>  the same, read from memory
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::parse_channel;

/// Exit status: a message was printed (or `--help`/`--version`).
pub const EXIT_OK: u8 = 0;
/// Exit status: a usage error or a failed operation (message on stderr).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: `--timeout` passed before a message came; nothing printed.
pub const EXIT_TIMEOUT: u8 = 2;
/// Exit status: SIGINT (Ctrl-C) ended `--wait`, `--next` or `--follow`; every message already
/// printed is complete (128 + SIGINT, as a shell reports a process killed by it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Print the message of a message-slot channel.
///
/// Writes the message of CHANNEL on the message-slot device DEVICE to stdout, exactly as
/// stored (nothing is added); optionally waits for one, or follows the channel.
///
/// Exit status: 0 message printed, 1 error, 2 --timeout passed, 130 interrupted by Ctrl-C
/// (SIGINT) while waiting or following.
#[derive(Parser, Debug, PartialEq)]
#[command(name = "message_reader", version)]
#[command(group(ArgGroup::new("mode").args(["wait", "next", "follow"])))]
#[command(group(ArgGroup::new("waits").args(["wait", "next"])))]
#[command(group(ArgGroup::new("follows").args(["follow"])))]
pub struct ReaderArgs {
    /// If this reader has no message to read yet (the channel is empty), wait for one.
    #[arg(long)]
    pub wait: bool,
    /// Wait for a message written after the reader started (the current one is skipped).
    #[arg(long)]
    pub next: bool,
    /// With --wait or --next: give up after SECS seconds (decimal, e.g. 0.5) and exit 2.
    #[arg(long, value_name = "SECS", requires = "waits", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Print the current message, if any, then every new message as it arrives, each
    /// followed by a newline (until Ctrl-C). A message replaced before the reader woke up is
    /// not seen: a channel keeps only its last message.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: end each message with a NUL byte instead of a newline (for messages that
    /// hold newlines).
    #[arg(long, requires = "follows", conflicts_with = "raw")]
    pub null: bool,
    /// With --follow: add nothing after each message.
    #[arg(long, requires = "follows")]
    pub raw: bool,
    /// Read the message from the channel's record mapped read-only into memory (mmap, see
    /// message_slot(4)) instead of with read(2); what is printed is the same. With --wait,
    /// --next or --follow, wait for writes with poll(2) and read each message from memory.
    #[arg(long)]
    pub mapped: bool,
    /// Message-slot device file, e.g. /dev/slot0.
    pub device: PathBuf,
    /// Channel id, a decimal number from 1 to 4294967295.
    #[arg(value_parser = parse_channel, allow_hyphen_values = true)]
    pub channel: u32,
}

/// What the reader does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print the current message (`EWOULDBLOCK` is an error): the original behaviour.
    Once,
    /// Print a message this reader has not read, waiting for one; `skip_current` for `--next`.
    Wait {
        /// Skip the message the channel holds now.
        skip_current: bool,
        /// Give up after this long.
        timeout: Option<Duration>,
    },
    /// Print every new message followed by `separator`.
    Follow {
        /// Bytes written after each message.
        separator: &'static [u8],
    },
}

impl ReaderArgs {
    /// The mode the options select.
    pub fn mode(&self) -> Mode {
        if self.follow {
            let separator: &'static [u8] = if self.raw {
                b""
            } else if self.null {
                b"\0"
            } else {
                b"\n"
            };
            Mode::Follow { separator }
        } else if self.wait || self.next {
            Mode::Wait {
                skip_current: self.next,
                timeout: self.timeout,
            }
        } else {
            Mode::Once
        }
    }
}

/// Parses `--timeout`: non-negative decimal seconds.
pub fn parse_timeout(arg: &str) -> Result<Duration, String> {
    let seconds: f64 = arg
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    Duration::try_from_secs_f64(seconds).map_err(|_| "not a non-negative number of seconds".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(argv: &[&str]) -> Result<ReaderArgs, clap::Error> {
        crate::parse_args(argv.iter().map(OsString::from))
    }

    #[test]
    fn plain_reader_is_unchanged() {
        let args = parse(&["message_reader", "/dev/slot0", "1"]).unwrap();
        assert_eq!(args.mode(), Mode::Once);
        assert_eq!(args.channel, 1);
        // Exactly two operands are still taken literally.
        let args = parse(&["message_reader", "--wait", "7"]).unwrap();
        assert_eq!(args.device, PathBuf::from("--wait"));
        assert_eq!(args.mode(), Mode::Once);
    }

    #[test]
    fn wait_and_next_with_timeout() {
        let args = parse(&["message_reader", "--wait", "/dev/slot0", "3"]).unwrap();
        assert_eq!(
            args.mode(),
            Mode::Wait {
                skip_current: false,
                timeout: None
            }
        );
        let args = parse(&["message_reader", "--next", "--timeout", "1.5", "/d", "3"]).unwrap();
        assert_eq!(
            args.mode(),
            Mode::Wait {
                skip_current: true,
                timeout: Some(Duration::from_millis(1500))
            }
        );
        let args = parse(&["message_reader", "/d", "3", "--wait", "--timeout", "0"]).unwrap();
        assert_eq!(
            args.mode(),
            Mode::Wait {
                skip_current: false,
                timeout: Some(Duration::ZERO)
            }
        );
    }

    #[test]
    fn follow_separators() {
        let sep = |extra: &[&str]| {
            let mut argv = vec!["message_reader", "--follow"];
            argv.extend_from_slice(extra);
            argv.extend_from_slice(&["/dev/slot0", "9"]);
            match parse(&argv).unwrap().mode() {
                Mode::Follow { separator } => separator,
                mode => panic!("{mode:?}"),
            }
        };
        assert_eq!(sep(&[]), b"\n");
        assert_eq!(sep(&["--null"]), b"\0");
        assert_eq!(sep(&["--raw"]), b"");
    }

    #[test]
    fn mapped_goes_with_every_mode() {
        for (extra, mode) in [
            (&[][..], Mode::Once),
            (
                &["--next"][..],
                Mode::Wait {
                    skip_current: true,
                    timeout: None,
                },
            ),
            (&["--follow", "--raw"][..], Mode::Follow { separator: b"" }),
        ] {
            let mut argv = vec!["message_reader", "--mapped"];
            argv.extend_from_slice(extra);
            argv.extend_from_slice(&["/dev/slot0", "9"]);
            let args = parse(&argv).unwrap();
            assert!(args.mapped, "{argv:?}");
            assert_eq!(args.mode(), mode, "{argv:?}");
        }
        assert!(
            !parse(&["message_reader", "--wait", "/d", "1"])
                .unwrap()
                .mapped
        );
    }

    #[test]
    fn rejects_bad_combinations() {
        for argv in [
            &["message_reader", "--timeout", "1", "/d", "1"][..],
            &["message_reader", "--wait", "--follow", "/d", "1"],
            &["message_reader", "--wait", "--next", "/d", "1"],
            &["message_reader", "--null", "/d", "1", "--wait"],
            &["message_reader", "--follow", "--null", "--raw", "/d", "1"],
            &["message_reader", "--wait", "--timeout", "-1", "/d", "1"],
            &["message_reader", "--wait", "--timeout", "soon", "/d", "1"],
            &["message_reader", "--follow", "--timeout", "1", "/d", "1"],
            &["message_reader", "--follow", "/d", "0"],
        ] {
            let error = parse(argv).unwrap_err();
            assert!(error.use_stderr(), "{argv:?}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_timeout("-0.5").is_err());
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("").is_err());
    }
}
