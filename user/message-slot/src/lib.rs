// SPDX-License-Identifier: GPL-2.0

//! User-space access to the message-slot character device.
//!
//! Every minor of major [`MAJOR_NUM`] is a *slot*. An open file is bound to one channel of its
//! slot with [`Slot::set_channel`]; [`Slot::send`] then replaces that channel's message
//! atomically and [`Slot::receive`] returns the last message without consuming it.
//!
//! ```no_run
//! use message_slot::{ErrorKind, Slot};
//!
//! # fn main() -> Result<(), message_slot::Error> {
//! let slot = Slot::open("/dev/slot0")?;
//! slot.set_channel(7)?;
//! slot.send(b"hello")?;
//! assert_eq!(slot.receive_message()?, b"hello");
//!
//! let other = Slot::open("/dev/slot0")?;
//! other.set_channel(8)?;
//! match other.receive_message() {
//!     Err(e) if e.kind() == ErrorKind::NoMessage => println!("channel 8 is empty"),
//!     result => println!("{:?}", result?),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Reading from memory
//!
//! [`Slot::map_channel`] maps the bound channel's [`Record`] read-only into this process (the
//! kernel stays its only writer, message_slot(4) gives the protocol): a [`MappedChannel`]
//! reads the message without a system call, returning what [`Slot::receive`] would. It makes
//! at most [`MAPPED_READ_ATTEMPTS`] attempts and, if a write overlapped every one, calls
//! `read(2)`, which waits for the writer; it never spins. Every load of the mapping is an
//! atomic load through `&Record`.
//!
//! ```no_run
//! use message_slot::{Slot, Wake};
//!
//! # fn main() -> Result<(), message_slot::Error> {
//! let slot = Slot::open_read_only("/dev/slot0")?;
//! slot.set_channel(7)?;
//! let channel = slot.map_channel()?;
//! let mut buf = [0; message_slot::MAX_MESSAGE_LEN];
//! let len = channel.read(&mut buf)?; // as slot.receive(&mut buf), from memory
//! println!("{:?}", &buf[..len]);
//!
//! // Cheap change detection: one atomic load.
//! let sequence = channel.sequence();
//! if !channel.changed_since(sequence) {
//!     // Or wait for the next write (poll on an edge-triggered epoll registration).
//!     if channel.wait_for_change(sequence, None, None)? == Wake::Message {
//!         println!("{:?}", channel.read_message()?);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{IntegerSetter, Opcode};

#[path = "../../../uapi/uapi.rs"]
mod uapi;

// Only where relaxed 8-byte atomic loads are guaranteed to work on read-only memory (mapped.rs).
#[cfg(target_pointer_width = "64")]
mod mapped;

#[cfg(target_pointer_width = "64")]
pub use mapped::{read_record, MappedChannel};
/// The errno type [`read_record`] answers with (rustix's).
pub use rustix::io::Errno;
pub use uapi::{
    Ioctl, Record, Statistic, CLASS_NAME, DEFAULT_MAX_CHANNELS, DEFAULT_NODES, MAJOR_NUM,
    MAPPED_READ_ATTEMPTS, MAX_MESSAGE_LEN, MSG_SLOT_CHANNEL, MSG_SLOT_RECORD_OFFSET, RECORD_SIZE,
    RECORD_WORDS, SLOT_MINORS, STATISTICS,
};

/// The Linux ioctl request encoders (`_IO`, `_IOR`, `_IOW`, `_IOWR`, `_IOC`), as the device's
/// requests are encoded: for requests the device has ([`Ioctl`]) and for those it refuses.
pub mod ioctl_encoding {
    pub use crate::uapi::{io, ioc, ior, iow, iowr, IOC_NONE, IOC_READ, IOC_WRITE};
}

/// The sysfs directory of the slots' class devices: `/sys/class/` and [`CLASS_NAME`].
pub fn sysfs_class_dir() -> PathBuf {
    Path::new("/sys/class").join(CLASS_NAME.to_string_lossy().as_ref())
}

impl Statistic {
    /// The name of its sysfs attribute as a `&str` (the names are ASCII).
    pub fn as_str(self) -> &'static str {
        self.name().to_str().unwrap_or("?")
    }

    /// The statistic whose sysfs attribute is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|statistic| statistic.as_str() == name)
    }
}

/// One value per [`Statistic`] (a slot's statistics), addressed by the statistic:
/// `statistics[Statistic::Bytes]`; [`Statistics::iter`] lists them in the order of
/// [`Statistic::ALL`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics([u64; Statistic::ALL.len()]);

impl Statistics {
    /// The value of every statistic from `value`, called once per statistic in the order of
    /// [`Statistic::ALL`]; its first error, if any.
    pub fn try_from_fn<E>(
        mut value: impl FnMut(Statistic) -> std::result::Result<u64, E>,
    ) -> std::result::Result<Self, E> {
        let mut values = [0; Statistic::ALL.len()];
        for (slot, statistic) in values.iter_mut().zip(Statistic::ALL) {
            *slot = value(statistic)?;
        }
        Ok(Self(values))
    }

    /// Each statistic and its value, in the order of [`Statistic::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (Statistic, u64)> + '_ {
        Statistic::ALL.into_iter().zip(self.0.iter().copied())
    }
}

impl std::ops::Index<Statistic> for Statistics {
    type Output = u64;

    fn index(&self, statistic: Statistic) -> &u64 {
        &self.0[statistic.index()]
    }
}

/// A `Result` whose error is a message-slot [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The operation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Opening the device file at `path`.
    Open {
        /// The path that could not be opened.
        path: PathBuf,
    },
    /// Binding the file to `channel`.
    SetChannel {
        /// The requested channel id.
        channel: u32,
    },
    /// Writing a message.
    Send,
    /// Reading a message.
    Receive,
    /// Waiting for a message ([`Slot::wait_for_message`], `MappedChannel::wait_for_change`).
    Wait,
    /// Mapping the bound channel's record (`Slot::map_channel`: `mmap`, then
    /// `MSG_SLOT_RECORD_OFFSET`).
    Map,
}

/// What went wrong, classified by the device's documented errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `EINVAL`: no channel is set, the channel id is 0, or the request is unknown.
    InvalidArgument,
    /// `EMSGSIZE`: the message is empty or longer than [`MAX_MESSAGE_LEN`].
    MessageSize,
    /// `EAGAIN`/`EWOULDBLOCK`: the channel holds no message yet.
    NoMessage,
    /// `ENOSPC` from a receive: the buffer is smaller than the channel's message.
    BufferTooSmall,
    /// `ENOSPC` from a send or a map: the message or the mapping would open a new channel in a
    /// slot that already holds the module's `max_channels` (default [`DEFAULT_MAX_CHANNELS`]).
    SlotFull,
    /// `EINTR`: a signal arrived while waiting.
    Interrupted,
    /// Any other system error.
    Other,
}

impl ErrorKind {
    /// Classifies a raw `errno` value returned by `operation`.
    pub fn from_errno(operation: &Operation, errno: i32) -> Self {
        match Errno::from_raw_os_error(errno) {
            Errno::NOSPC if matches!(operation, Operation::Send | Operation::Map) => Self::SlotFull,
            Errno::INVAL => Self::InvalidArgument,
            Errno::MSGSIZE => Self::MessageSize,
            Errno::AGAIN => Self::NoMessage,
            Errno::NOSPC => Self::BufferTooSmall,
            Errno::INTR => Self::Interrupted,
            _ => Self::Other,
        }
    }
}

/// A failed message-slot operation and the system error it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    operation: Operation,
    errno: i32,
}

impl Error {
    /// Creates an error for `operation` failing with the raw `errno`.
    pub fn new(operation: Operation, errno: i32) -> Self {
        Self { operation, errno }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &Operation {
        &self.operation
    }

    /// The raw `errno` value.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The classified error.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_errno(&self.operation, self.errno)
    }

    fn os_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operation {
            Operation::Open { path } => write!(f, "cannot open {}", path.display())?,
            Operation::SetChannel { channel } => write!(f, "cannot set channel {channel}")?,
            Operation::Send => f.write_str("cannot send message")?,
            Operation::Receive => f.write_str("cannot receive message")?,
            Operation::Wait => f.write_str("cannot wait for a message")?,
            Operation::Map => f.write_str("cannot map the channel's record")?,
        }
        write!(f, ": {}", self.os_error())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        error.os_error()
    }
}

/// How [`Slot::wait_for_message_or`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The bound channel holds a message this file has not received.
    Message,
    /// The other file descriptor became readable (or reported an error or hang-up).
    Other,
    /// The timeout passed.
    TimedOut,
}

/// `MSG_SLOT_CHANNEL` as the opcode type of the platform's `ioctl`.
const CHANNEL_OPCODE: Opcode = MSG_SLOT_CHANNEL as Opcode;

/// An open message-slot device file.
#[derive(Debug)]
pub struct Slot {
    fd: OwnedFd,
}

impl Slot {
    /// Opens the device at `path` for reading and writing (`O_RDWR | O_CLOEXEC`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), OFlags::RDWR)
    }

    /// Opens the device at `path` for reading only (`O_RDONLY | O_CLOEXEC`).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), OFlags::RDONLY)
    }

    /// Opens the device at `path` for writing only (`O_WRONLY | O_CLOEXEC`).
    pub fn open_write_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path.as_ref(), OFlags::WRONLY)
    }

    fn open_with(path: &Path, access: OFlags) -> Result<Self> {
        rustix::fs::open(path, access | OFlags::CLOEXEC, Mode::empty())
            .map(Self::from_fd)
            .map_err(|e| {
                Error::new(
                    Operation::Open {
                        path: path.to_path_buf(),
                    },
                    e.raw_os_error(),
                )
            })
    }

    /// Wraps an already open device file.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Returns the underlying file descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Binds this open file to `channel` (`ioctl(fd, MSG_SLOT_CHANNEL, channel)`).
    ///
    /// # Errors
    ///
    /// The device's, as message_slot(4) gives them for `ioctl`:
    /// - `EINVAL` ([`ErrorKind::InvalidArgument`]): `channel` is 0.
    pub fn set_channel(&self, channel: u32) -> Result<()> {
        // SAFETY: MSG_SLOT_CHANNEL takes an integer by value and reads no memory; any `u32`
        // is a valid argument (the device itself rejects 0).
        let request = unsafe { IntegerSetter::<CHANNEL_OPCODE>::new_usize(channel as usize) };
        // SAFETY: `request` carries the opcode with its by-value argument, as checked above.
        unsafe { rustix::ioctl::ioctl(&self.fd, request) }
            .map_err(|e| Error::new(Operation::SetChannel { channel }, e.raw_os_error()))
    }

    /// Replaces the bound channel's message with `msg` (1 to [`MAX_MESSAGE_LEN`] bytes).
    ///
    /// Returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// The device's, as message_slot(4) gives them for `write` (a slice is always a valid
    /// address, so never `EFAULT`); a failed send leaves the channel's message as it was:
    /// - `EINVAL` ([`ErrorKind::InvalidArgument`]): the file is bound to no channel;
    /// - `EMSGSIZE` ([`ErrorKind::MessageSize`]): `msg` is empty or longer than
    ///   [`MAX_MESSAGE_LEN`];
    /// - `ENOSPC` ([`ErrorKind::SlotFull`]): the channel is new and the slot already holds
    ///   `max_channels` channels;
    /// - `ENOMEM` ([`ErrorKind::Other`]): the channel is new and there is no memory for it.
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        rustix::io::write(&self.fd, msg).map_err(|e| Error::new(Operation::Send, e.raw_os_error()))
    }

    /// Copies the bound channel's last message into `buf` without consuming it.
    ///
    /// Returns the message length.
    ///
    /// # Errors
    ///
    /// The device's, as message_slot(4) gives them for `read` (a slice is always a valid
    /// address, so never `EFAULT`):
    /// - `EINVAL` ([`ErrorKind::InvalidArgument`]): the file is bound to no channel;
    /// - `EWOULDBLOCK` ([`ErrorKind::NoMessage`]): the channel holds no message;
    /// - `ENOSPC` ([`ErrorKind::BufferTooSmall`]): `buf` is shorter than the message.
    pub fn receive(&self, buf: &mut [u8]) -> Result<usize> {
        rustix::io::read(&self.fd, buf)
            .map_err(|e| Error::new(Operation::Receive, e.raw_os_error()))
    }

    /// Returns the bound channel's last message without consuming it.
    pub fn receive_message(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0; MAX_MESSAGE_LEN];
        let len = self.receive(&mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Waits until the bound channel holds a message that this open file has not received
    /// yet (one written after its last successful [`receive`](Self::receive) or, if it has
    /// received nothing since [`set_channel`](Self::set_channel), any message), or until
    /// `timeout` passes (`None`: no limit).
    ///
    /// Returns `true` if there is such a message (receive it next), `false` on timeout.
    /// Built on `poll(2)`: the device reports `POLLIN` for an unreceived message and `POLLERR`
    /// for a file bound to no channel, which this returns as [`ErrorKind::InvalidArgument`].
    /// A signal ends the wait with [`ErrorKind::Interrupted`].
    ///
    /// The file descriptor is [`AsFd`], so async runtimes can wait the same way (readable
    /// means an unreceived message), e.g. with tokio's `AsyncFd` (`examples/async_follow.rs`).
    pub fn wait_for_message(&self, timeout: Option<Duration>) -> Result<bool> {
        match self.wait_for_message_or(timeout, None)? {
            Wake::Message => Ok(true),
            Wake::TimedOut | Wake::Other => Ok(false),
        }
    }

    /// Like [`wait_for_message`](Self::wait_for_message), but also ends when `other` becomes
    /// readable (e.g. the read end of a pipe that a signal handler writes to, which makes
    /// waiting for a signal free of races) and says which happened first (a message wins a
    /// tie).
    pub fn wait_for_message_or(
        &self,
        timeout: Option<Duration>,
        other: Option<BorrowedFd<'_>>,
    ) -> Result<Wake> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            let left = deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            let mut fds = vec![PollFd::new(&self.fd, PollFlags::IN)];
            if let Some(other) = &other {
                fds.push(PollFd::new(other, PollFlags::IN));
            }
            let ready = rustix::event::poll(&mut fds, left.as_ref())
                .map_err(|e| Error::new(Operation::Wait, e.raw_os_error()))?;
            let events = fds[0].revents();
            if events.contains(PollFlags::ERR) {
                return Err(Error::new(Operation::Wait, Errno::INVAL.raw_os_error()));
            }
            if events.contains(PollFlags::IN) {
                return Ok(Wake::Message);
            }
            if fds.get(1).is_some_and(|fd| !fd.revents().is_empty()) {
                return Ok(Wake::Other);
            }
            if ready == 0 && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(Wake::TimedOut);
            }
        }
    }
}

impl AsFd for Slot {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// For APIs that take `AsRawFd`, such as tokio's `AsyncFd`.
impl AsRawFd for Slot {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Slot {
    fn from(fd: OwnedFd) -> Self {
        Self::from_fd(fd)
    }
}

impl From<Slot> for OwnedFd {
    fn from(slot: Slot) -> Self {
        slot.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_opcode_matches_iow_encoding() {
        assert_eq!(
            CHANNEL_OPCODE,
            rustix::ioctl::opcode::write::<u32>(MAJOR_NUM as u8, 0)
        );
        assert_eq!(MSG_SLOT_CHANNEL, 0x4004_eb00);
    }

    #[test]
    fn ioctl_encoders_match_rustix_in_every_direction() {
        use rustix::ioctl::opcode;
        let ty = MAJOR_NUM as u8;
        assert_eq!(ioctl_encoding::io(MAJOR_NUM, 1), opcode::none(ty, 1));
        assert_eq!(
            ioctl_encoding::ior(MAJOR_NUM, 2, 8),
            opcode::read::<u64>(ty, 2)
        );
        assert_eq!(
            ioctl_encoding::iow(MAJOR_NUM, 3, 2),
            opcode::write::<u16>(ty, 3)
        );
        assert_eq!(
            ioctl_encoding::iowr(MAJOR_NUM, 4, 4),
            opcode::read_write::<u32>(ty, 4)
        );
    }

    #[test]
    fn every_ioctl_is_found_by_its_request_number() {
        for ioctl in Ioctl::ALL {
            assert_eq!(Ioctl::from_cmd(ioctl.cmd()), Some(ioctl));
        }
        let mut cmds: Vec<u32> = Ioctl::ALL.iter().map(|ioctl| ioctl.cmd()).collect();
        cmds.sort_unstable();
        cmds.dedup();
        assert_eq!(
            cmds.len(),
            Ioctl::ALL.len(),
            "two ioctls share a request number"
        );
        assert_eq!(Ioctl::from_cmd(0), None);
    }

    #[test]
    fn errno_maps_to_kind() {
        let cases = [
            (Errno::INVAL, ErrorKind::InvalidArgument),
            (Errno::MSGSIZE, ErrorKind::MessageSize),
            (Errno::AGAIN, ErrorKind::NoMessage),
            (Errno::WOULDBLOCK, ErrorKind::NoMessage),
            (Errno::NOSPC, ErrorKind::BufferTooSmall),
            (Errno::INTR, ErrorKind::Interrupted),
            (Errno::NOENT, ErrorKind::Other),
            (Errno::FAULT, ErrorKind::Other),
        ];
        for (errno, kind) in cases {
            let error = Error::new(Operation::Receive, errno.raw_os_error());
            assert_eq!(error.kind(), kind, "{errno:?}");
            assert_eq!(error.errno(), errno.raw_os_error());
        }
        let full = Error::new(Operation::Send, Errno::NOSPC.raw_os_error());
        assert_eq!(full.kind(), ErrorKind::SlotFull);
        let full = Error::new(Operation::Map, Errno::NOSPC.raw_os_error());
        assert_eq!(full.kind(), ErrorKind::SlotFull);
    }

    #[test]
    fn display_names_operation_and_system_error() {
        let open = Error::new(
            Operation::Open {
                path: "/dev/slot0".into(),
            },
            Errno::NOENT.raw_os_error(),
        );
        assert_eq!(
            open.to_string(),
            "cannot open /dev/slot0: No such file or directory (os error 2)"
        );
        let channel = Error::new(
            Operation::SetChannel { channel: 0 },
            Errno::INVAL.raw_os_error(),
        );
        assert_eq!(
            channel.to_string(),
            "cannot set channel 0: Invalid argument (os error 22)"
        );
        let receive = Error::new(Operation::Receive, Errno::AGAIN.raw_os_error());
        assert_eq!(
            receive.to_string(),
            "cannot receive message: Resource temporarily unavailable (os error 11)"
        );
    }

    #[test]
    fn converts_to_io_error() {
        let error = io::Error::from(Error::new(Operation::Send, Errno::MSGSIZE.raw_os_error()));
        assert_eq!(error.raw_os_error(), Some(Errno::MSGSIZE.raw_os_error()));
    }

    #[test]
    fn open_missing_device_reports_path() {
        let error = Slot::open("/nonexistent/slot0").unwrap_err();
        assert_eq!(
            error.operation(),
            &Operation::Open {
                path: "/nonexistent/slot0".into()
            }
        );
        assert_eq!(error.errno(), Errno::NOENT.raw_os_error());
        assert_eq!(error.kind(), ErrorKind::Other);
    }

    #[test]
    fn regular_file_is_not_a_slot() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let slot = Slot::from_fd(file.into());
        let error = slot.set_channel(1).unwrap_err();
        assert_eq!(error.operation(), &Operation::SetChannel { channel: 1 });
        assert_eq!(error.errno(), Errno::NOTTY.raw_os_error());
    }
}
