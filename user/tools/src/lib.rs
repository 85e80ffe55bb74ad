// SPDX-License-Identifier: GPL-2.0

//! Command-line plumbing shared by `message_sender` and `message_reader`: channel parsing,
//! argument handling and error reporting with exit status 1. The tools' argument definitions
//! live here ([`SenderArgs`], [`reader::ReaderArgs`], [`stat::StatArgs`]) so that
//! `message-slot-man` generates the manual pages from the very definitions `--help` prints.

pub mod reader;
pub mod stat;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Store a message in a message-slot channel.
///
/// Replaces the message of CHANNEL on the message-slot device DEVICE with MESSAGE: the
/// argument's bytes, without a trailing NUL. A channel keeps only its last message; every
/// reader of the channel reads it until the next message replaces it. When exactly three
/// operands are given they are taken literally, so that a message such as -h or -- is stored.
#[derive(Parser)]
#[command(name = "message_sender", version)]
pub struct SenderArgs {
    /// Message-slot device file, e.g. /dev/slot0.
    pub device: PathBuf,
    /// Channel id, a decimal number from 1 to 4294967295.
    #[arg(value_parser = parse_channel, allow_hyphen_values = true)]
    pub channel: u32,
    /// Message to store: the argument's bytes, without a trailing NUL (1 to 128 bytes).
    #[arg(allow_hyphen_values = true)]
    pub message: OsString,
}

/// Why a channel argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// Not a plain decimal number (empty, signed or with other characters).
    NotDecimal,
    /// Larger than `u32::MAX`.
    TooLarge,
    /// Zero, which the device reserves.
    Zero,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = match self {
            Self::NotDecimal => "not a decimal number",
            Self::TooLarge => "too large",
            Self::Zero => "zero is not a channel",
        };
        write!(
            f,
            "{problem}; a channel id is an integer from 1 to {}",
            u32::MAX
        )
    }
}

impl std::error::Error for ChannelError {}

/// Parses a channel id: a decimal number from 1 to `u32::MAX`.
pub fn parse_channel(arg: &str) -> Result<u32, ChannelError> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChannelError::NotDecimal);
    }
    match arg.parse::<u32>() {
        Ok(0) => Err(ChannelError::Zero),
        Ok(channel) => Ok(channel),
        Err(_) => Err(ChannelError::TooLarge),
    }
}

/// Why a tool failed. Each variant says what failed and the system error; a device
/// operation's [`message_slot::Error`] already names the operation (and the device path for
/// `open`), so it is shown as it is.
#[derive(Debug)]
pub enum Failure {
    /// Opening the device, setting the channel, sending or receiving failed.
    Slot(message_slot::Error),
    /// The device took only `written` of the message's `len` bytes.
    ShortWrite {
        /// Bytes the device accepted.
        written: usize,
        /// Bytes of the message.
        len: usize,
    },
    /// Writing the message to stdout failed.
    Stdout(io::Error),
    /// Setting up the SIGINT handler failed.
    Signal(io::Error),
    /// Reading the statistics under a sysfs directory failed.
    Sysfs(std::path::PathBuf, io::Error),
}

impl From<message_slot::Error> for Failure {
    fn from(error: message_slot::Error) -> Self {
        Self::Slot(error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Slot(error) => error.fmt(f),
            Self::ShortWrite { written, len } => {
                write!(
                    f,
                    "cannot send message: wrote only {written} of {len} bytes"
                )
            }
            Self::Stdout(error) => write!(f, "cannot write to stdout: {error}"),
            Self::Signal(error) => write!(f, "cannot handle SIGINT: {error}"),
            Self::Sysfs(dir, error) => write!(f, "cannot read {}: {error}", dir.display()),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Slot(error) => Some(error),
            Self::ShortWrite { .. } => None,
            Self::Stdout(error) | Self::Signal(error) | Self::Sysfs(_, error) => Some(error),
        }
    }
}

/// Parses `argv` (program name first) as `A`.
///
/// When exactly as many operands are given as `A` has positional arguments, they are taken
/// literally, so that a message such as `-h` or `--` is sent rather than interpreted.
pub fn parse_args<A: Parser>(argv: impl IntoIterator<Item = OsString>) -> Result<A, clap::Error> {
    let mut argv: Vec<OsString> = argv.into_iter().collect();
    if argv.len() == A::command().get_positionals().count() + 1 {
        argv.insert(1, "--".into());
    }
    A::try_parse_from(argv)
}

/// Parses the process arguments as `A` and runs `tool`, reporting any error on stderr.
///
/// `--help` and `--version` exit 0; usage errors and failures of `tool` print a message
/// and exit 1, failures of `tool` prefixed with the program name; otherwise the exit status
/// is what `tool` returns.
pub fn run<A: Parser>(tool: impl FnOnce(A) -> Result<u8, Failure>) -> ExitCode {
    let args = match parse_args::<A>(std::env::args_os()) {
        Ok(args) => args,
        Err(error) => {
            // Printing can only fail if stdout/stderr is gone; nothing is left to report to.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match tool(args) {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            let name = A::command().get_name().to_owned();
            let _ = writeln!(io::stderr().lock(), "{name}: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug, PartialEq)]
    #[command(name = "tool", version)]
    struct Args {
        #[arg(value_parser = parse_channel, allow_hyphen_values = true)]
        channel: u32,
        #[arg(allow_hyphen_values = true)]
        message: OsString,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        parse_args(argv.iter().map(OsString::from))
    }

    #[test]
    fn exact_operands_are_literal() {
        for message in ["-h", "--help", "-V", "--", "-x", "hello"] {
            let args = parse(&["tool", "5", message]).unwrap();
            assert_eq!(args.channel, 5);
            assert_eq!(args.message, message);
        }
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for flag in ["-h", "--help", "-V", "--version"] {
            let error = parse(&["tool", flag]).unwrap_err();
            assert!(!error.use_stderr(), "{flag}");
        }
    }

    #[test]
    fn usage_errors_go_to_stderr() {
        for argv in [
            &["tool"][..],
            &["tool", "5"],
            &["tool", "5", "a", "b"],
            &["tool", "-1", "a"],
            &["tool", "abc", "a"],
        ] {
            let error = parse(argv).unwrap_err();
            assert!(error.use_stderr(), "{argv:?}");
        }
    }

    #[test]
    fn accepts_decimal_channels() {
        assert_eq!(parse_channel("1"), Ok(1));
        assert_eq!(parse_channel("7"), Ok(7));
        assert_eq!(parse_channel("007"), Ok(7));
        assert_eq!(parse_channel("4294967295"), Ok(u32::MAX));
    }

    #[test]
    fn rejects_non_decimal_channels() {
        for arg in ["", "abc", "-1", "+1", " 1", "1 ", "0x10", "1.0", "１"] {
            assert_eq!(parse_channel(arg), Err(ChannelError::NotDecimal), "{arg:?}");
        }
    }

    #[test]
    fn rejects_zero_and_overflow() {
        assert_eq!(parse_channel("0"), Err(ChannelError::Zero));
        assert_eq!(parse_channel("000"), Err(ChannelError::Zero));
        assert_eq!(parse_channel("4294967296"), Err(ChannelError::TooLarge));
        assert_eq!(
            parse_channel("99999999999999999999999"),
            Err(ChannelError::TooLarge)
        );
    }

    #[test]
    fn channel_error_explains_range() {
        assert_eq!(
            ChannelError::Zero.to_string(),
            "zero is not a channel; a channel id is an integer from 1 to 4294967295"
        );
    }

    #[test]
    fn failure_names_step_and_system_error() {
        use message_slot::{Error, Operation};

        let receive = Failure::from(Error::new(Operation::Receive, 11));
        assert_eq!(
            receive.to_string(),
            "cannot receive message: Resource temporarily unavailable (os error 11)"
        );
        let short = Failure::ShortWrite { written: 3, len: 5 };
        assert_eq!(
            short.to_string(),
            "cannot send message: wrote only 3 of 5 bytes"
        );
        let stdout = Failure::Stdout(io::Error::from_raw_os_error(32));
        assert_eq!(
            stdout.to_string(),
            "cannot write to stdout: Broken pipe (os error 32)"
        );
    }
}
