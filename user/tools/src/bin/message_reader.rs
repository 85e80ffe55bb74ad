// SPDX-License-Identifier: GPL-2.0

//! `message_reader [--mapped] [--wait|--next [--timeout SECS]|--follow [--null|--raw]] <device>
//! <channel>`: prints the message of a message-slot channel, optionally waiting for one or
//! following the channel, with read(2) or (`--mapped`) from the channel's mapped record (see
//! `message_slot_tools::reader` for the options and exit codes).

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use message_slot::{ErrorKind, MappedChannel, Slot, Wake, MAX_MESSAGE_LEN};
use message_slot_tools::reader::{Mode, ReaderArgs, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT};
use message_slot_tools::Failure;

/// The read end of a socket that SIGINT's handler writes a byte to: waiting on it with the
/// slot has no window in which a Ctrl-C could be missed.
struct Interrupt(UnixStream);

impl Interrupt {
    fn install() -> Result<Self, Failure> {
        let (reader, writer) = UnixStream::pair().map_err(Failure::Signal)?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, writer)
            .map_err(Failure::Signal)?;
        Ok(Self(reader))
    }
}

/// Waits for a message the file has not read, for the interrupt or for `deadline`.
fn wait(slot: &Slot, deadline: Option<Instant>, interrupt: &Interrupt) -> Result<Wake, Failure> {
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match slot.wait_for_message_or(left, Some(interrupt.0.as_fd())) {
            // The handler has written to the socket: the next wait reports it.
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            result => return Ok(result?),
        }
    }
}

/// Waits until the mapped channel's sequence is no longer `sequence`, for the interrupt or for
/// `deadline`.
fn wait_for_change(
    mapped: &MappedChannel<'_>,
    sequence: u32,
    deadline: Option<Instant>,
    interrupt: &Interrupt,
) -> Result<Wake, Failure> {
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match mapped.wait_for_change(sequence, left, Some(interrupt.0.as_fd())) {
            // The handler has written to the socket: the next wait reports it.
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            result => return Ok(result?),
        }
    }
}

/// What the mapped modes print: `--wait` (one message, `skip_current: false`), `--next` (one
/// message written later) or `--follow` (every new one, each followed by `separator`).
struct MappedWatch {
    skip_current: bool,
    only_one: bool,
    separator: &'static [u8],
    deadline: Option<Instant>,
}

/// The mapped modes: prints each message whose sequence it has not printed (nor, with
/// `skip_current`, found at the start), waiting for writes in between. A reader never spins
/// on a writer: after overlapped attempts it waits for an odd sequence to change.
fn watch_mapped(
    mapped: &MappedChannel<'_>,
    watch: &MappedWatch,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let interrupt = Interrupt::install()?;
    let mut buf = [0; MAX_MESSAGE_LEN];
    let mut seen = None;
    let mut first = true;
    loop {
        let wait_from = match mapped.try_read_with_sequence(&mut buf) {
            Some((Ok(len), sequence)) => {
                if first && watch.skip_current {
                    seen = Some(sequence);
                } else if seen != Some(sequence) {
                    print(out, &buf[..len], watch.separator)?;
                    if watch.only_one {
                        return Ok(EXIT_OK);
                    }
                    seen = Some(sequence);
                }
                sequence
            }
            Some((Err(error), sequence)) if error.kind() == ErrorKind::NoMessage => sequence,
            Some((Err(error), _)) => return Err(error.into()),
            None => match mapped.sequence() {
                // Writes overlapped every attempt, the last one over: read again.
                sequence if sequence % 2 == 0 => continue,
                // A write in progress: its end wakes the wait.
                sequence => sequence,
            },
        };
        first = false;
        match wait_for_change(mapped, wait_from, watch.deadline, &interrupt)? {
            Wake::Message => {}
            Wake::TimedOut => return Ok(EXIT_TIMEOUT),
            Wake::Other => return Ok(EXIT_INTERRUPTED),
        }
    }
}

/// `--mapped`: the modes, reading the channel's mapped record.
fn read_mapped(slot: &Slot, mode: Mode, out: &mut impl Write) -> Result<u8, Failure> {
    let mapped = slot.map_channel()?;
    let watch = match mode {
        Mode::Once => {
            let mut buf = [0; MAX_MESSAGE_LEN];
            let len = mapped.read(&mut buf)?;
            print(out, &buf[..len], b"")?;
            return Ok(EXIT_OK);
        }
        Mode::Wait {
            skip_current,
            timeout,
        } => MappedWatch {
            skip_current,
            only_one: true,
            separator: b"",
            deadline: timeout.map(|t| Instant::now() + t),
        },
        Mode::Follow { separator } => MappedWatch {
            skip_current: false,
            only_one: false,
            separator,
            deadline: None,
        },
    };
    watch_mapped(&mapped, &watch, out)
}

fn print(out: &mut impl Write, message: &[u8], separator: &[u8]) -> Result<(), Failure> {
    out.write_all(message)
        .and_then(|()| out.write_all(separator))
        .and_then(|()| out.flush())
        .map_err(Failure::Stdout)
}

fn read(args: ReaderArgs) -> Result<u8, Failure> {
    let slot = Slot::open_read_only(&args.device)?;
    slot.set_channel(args.channel)?;
    let mut buf = [0; MAX_MESSAGE_LEN];
    let mut stdout = io::stdout().lock();
    if args.mapped {
        return read_mapped(&slot, args.mode(), &mut stdout);
    }
    match args.mode() {
        Mode::Once => {
            let len = slot.receive(&mut buf)?;
            print(&mut stdout, &buf[..len], b"")?;
            Ok(EXIT_OK)
        }
        Mode::Wait {
            skip_current,
            timeout,
        } => {
            let interrupt = Interrupt::install()?;
            let deadline = timeout.map(|t| Instant::now() + t);
            if skip_current {
                // Reading the current message marks it as seen by this file.
                match slot.receive(&mut buf) {
                    Err(error) if error.kind() != ErrorKind::NoMessage => return Err(error.into()),
                    _ => {}
                }
            }
            match wait(&slot, deadline, &interrupt)? {
                Wake::Message => {
                    let len = slot.receive(&mut buf)?;
                    print(&mut stdout, &buf[..len], b"")?;
                    Ok(EXIT_OK)
                }
                Wake::TimedOut => Ok(EXIT_TIMEOUT),
                Wake::Other => Ok(EXIT_INTERRUPTED),
            }
        }
        Mode::Follow { separator } => {
            let interrupt = Interrupt::install()?;
            loop {
                match wait(&slot, None, &interrupt)? {
                    Wake::Message => {
                        let len = slot.receive(&mut buf)?;
                        print(&mut stdout, &buf[..len], separator)?;
                    }
                    Wake::Other => return Ok(EXIT_INTERRUPTED),
                    // No deadline: cannot happen; wait again.
                    Wake::TimedOut => std::thread::sleep(Duration::ZERO),
                }
            }
        }
    }
}

fn main() -> ExitCode {
    message_slot_tools::run(read)
}
