// SPDX-License-Identifier: GPL-2.0

//! The message-slot ABI: the single source of truth shared by the kernel module (through
//! `#[path]`), the Rust user crates and, checked by a test, the C header `message_slot.h`.
//!
//! Dependency-free on purpose: it compiles both in the kernel crate and in user space.

use core::sync::atomic::{AtomicU32, AtomicU64};

/// Character-device major number of every message slot.
pub const MAJOR_NUM: u32 = 235;

/// Number of minors (slots) the driver serves: `0..SLOT_MINORS`.
pub const SLOT_MINORS: u32 = 256;

/// Largest message in bytes; messages are `1..=MAX_MESSAGE_LEN` arbitrary bytes.
pub const MAX_MESSAGE_LEN: usize = 128;

/// The default of the module parameter `max_channels`: the channels per slot the device
/// supports unless loaded with another limit (ids themselves may be any non-zero `u32`).
pub const DEFAULT_MAX_CHANNELS: usize = 1 << 20;

/// Minors that get class devices (nodes `/dev/message_slot/MINOR`, statistics) unless the
/// module parameter `nodes` says otherwise: `0..DEFAULT_NODES`, as many as the example's
/// `/dev/slot0`..`/dev/slot3` (kernel/DESIGN.md, "Device nodes and statistics", says why).
pub const DEFAULT_NODES: u32 = 4;

/// The device class of the slots that have class devices (module parameter `nodes`):
/// `/sys/class/message_slot/message_slotMINOR/`, nodes `/dev/message_slot/MINOR`.
pub const CLASS_NAME: &core::ffi::CStr = c"message_slot";

/// A slot's statistics: its class device's sysfs attributes (each one decimal `u64` and a
/// newline, mode 0440). Adding one is a variant here, its entries in [`Statistic::ALL`] and
/// [`Statistic::name`], its arm in `Slot::statistic` (`kernel/slot.rs`, the one exhaustive
/// `match` that says what each counts) and its line in message_slot(4)'s FILES (a test checks
/// that every name is there); the module, `message_slot_stat` and the tests take them all
/// from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// Channels in use (created by a write or a poll).
    Channels,
    /// Bytes of the channels' current messages.
    Bytes,
    /// Successful writes since the slot was first opened.
    Writes,
    /// Successful reads since the slot was first opened.
    Reads,
    /// Open files of the slot.
    OpenFiles,
    /// The `max_channels` module parameter.
    MaxChannels,
}

impl Statistic {
    /// Every statistic, in the order of their declaration (a check below), which is the order
    /// user space lists them in (and the module creates them).
    pub const ALL: [Self; 6] = [
        Self::Channels,
        Self::Bytes,
        Self::Writes,
        Self::Reads,
        Self::OpenFiles,
        Self::MaxChannels,
    ];

    /// Its position in [`Statistic::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name of its sysfs attribute.
    pub const fn name(self) -> &'static core::ffi::CStr {
        match self {
            Self::Channels => c"channels",
            Self::Bytes => c"bytes",
            Self::Writes => c"writes",
            Self::Reads => c"reads",
            Self::OpenFiles => c"open_files",
            Self::MaxChannels => c"max_channels",
        }
    }
}

// `Statistic::ALL` is in the order of declaration, so that `Statistic::index` is a position in it.
const _: () = {
    let mut index = 0;
    while index < Statistic::ALL.len() {
        assert!(Statistic::ALL[index].index() == index);
        index += 1;
    }
};

/// The names of the statistics' sysfs attributes, in the order of [`Statistic::ALL`].
pub const STATISTICS: [&core::ffi::CStr; Statistic::ALL.len()] = {
    let mut names = [c""; Statistic::ALL.len()];
    let mut index = 0;
    while index < names.len() {
        names[index] = Statistic::ALL[index].name();
        index += 1;
    }
    names
};

/// `_IOW(MAJOR_NUM, 0, unsigned int)`: binds the open file to the channel id passed by value.
pub const MSG_SLOT_CHANNEL: u32 = iow(MAJOR_NUM, 0, core::mem::size_of::<u32>() as u32);

/// `_IO(MAJOR_NUM, 1)`: returns (as the ioctl's value) the byte offset of the bound channel's
/// [`Record`] within a mapping of it, creating the channel (without a message) if it does not
/// exist yet, as `mmap` does.
pub const MSG_SLOT_RECORD_OFFSET: u32 = io(MAJOR_NUM, 1);

/// Words of a record's message: [`MAX_MESSAGE_LEN`] bytes as native-endian `u64`s.
pub const RECORD_WORDS: usize = MAX_MESSAGE_LEN / core::mem::size_of::<u64>();

/// A channel's record: what a file bound to the channel maps read-only (`mmap` of one page at
/// offset 0, `PROT_READ`, `MAP_SHARED`) and what the kernel updates in place on every write.
///
/// The kernel is its only writer, under the channel's writer lock: it makes `sequence` odd,
/// stores all of `message` (the new message's bytes in memory order, then zeros to the end)
/// and `length`, then makes `sequence` even again (the next even number: every write adds 2).
/// A reader loads `sequence` (acquire), then `length` and the words it needs (each an atomic
/// load, relaxed), then, after an acquire fence, `sequence` again: if both loads gave the
/// same even value, what it loaded is one message, whole. `length` 0 means the channel has
/// no message yet (a channel created by a poll, a mapping or [`MSG_SLOT_RECORD_OFFSET`]);
/// once a message is stored it is never 0 again. A reader retries at most
/// [`MAPPED_READ_ATTEMPTS`] times and then calls `read(2)`: the kernel's read takes the
/// writer's lock instead of spinning, so a preempted writer never makes a reader spin.
///
/// A page holds records of one slot only, at offsets `0, RECORD_SIZE, 2 * RECORD_SIZE, ...`;
/// the rest of the page, and records no channel uses yet, are zero.
#[repr(C)]
pub struct Record {
    /// Even when stable; odd while the kernel writes the record; changes with every write.
    pub sequence: AtomicU32,
    /// The message's length in bytes (0: no message yet).
    pub length: AtomicU32,
    /// The message's bytes in memory order, then zeros.
    pub message: [AtomicU64; RECORD_WORDS],
}

/// Bytes of a [`Record`]: a sequence, a length, [`MAX_MESSAGE_LEN`] bytes.
pub const RECORD_SIZE: usize = core::mem::size_of::<Record>();
const _: () = assert!(RECORD_SIZE == 8 + MAX_MESSAGE_LEN);
const _: () = assert!(core::mem::align_of::<Record>() == 8);

/// Attempts a mapped reader makes (each two loads of the sequence around the message's) before
/// it gives up on the mapping for one `read(2)`.
pub const MAPPED_READ_ATTEMPTS: u32 = 4;

/// The device's ioctls: every request it answers (any other request fails with `EINVAL`).
/// Adding one is a variant here, its arms in [`Ioctl::cmd`] and [`Ioctl::c_name`], its
/// `#define` in `message_slot.h` (a test checks them against each other) and its arm in the
/// module's dispatch (`kernel/device.rs`, an exhaustive `match`); the tests that send unknown
/// requests take the known ones from [`Ioctl::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl {
    /// [`MSG_SLOT_CHANNEL`]: binds the open file to a channel.
    Channel,
    /// [`MSG_SLOT_RECORD_OFFSET`]: where the bound channel's record is in a mapping of it.
    RecordOffset,
}

impl Ioctl {
    /// Every ioctl of the device.
    pub const ALL: [Self; 2] = [Self::Channel, Self::RecordOffset];

    /// Its request number.
    pub const fn cmd(self) -> u32 {
        match self {
            Self::Channel => MSG_SLOT_CHANNEL,
            Self::RecordOffset => MSG_SLOT_RECORD_OFFSET,
        }
    }

    /// The name of its request number in `message_slot.h`.
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Channel => "MSG_SLOT_CHANNEL",
            Self::RecordOffset => "MSG_SLOT_RECORD_OFFSET",
        }
    }

    /// The ioctl whose request number is `cmd`, if the device has one.
    pub const fn from_cmd(cmd: u32) -> Option<Self> {
        let mut index = 0;
        while index < Self::ALL.len() {
            if Self::ALL[index].cmd() == cmd {
                return Some(Self::ALL[index]);
            }
            index += 1;
        }
        None
    }
}

/// The Linux ioctl request encoding (asm-generic layout, as on x86 and arm64): `dir` (2 bits:
/// [`IOC_NONE`], [`IOC_WRITE`], [`IOC_READ`] or both), `size` (14 bits), `ty` (8 bits), `nr`
/// (8 bits). The kernel's `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: u32) -> u32 {
    const NRSHIFT: u32 = 0;
    const TYPESHIFT: u32 = 8;
    const SIZESHIFT: u32 = 16;
    const DIRSHIFT: u32 = 30;
    (dir << DIRSHIFT) | (size << SIZESHIFT) | (ty << TYPESHIFT) | (nr << NRSHIFT)
}

/// `_IOC_NONE`: the request transfers no data.
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`: user space writes, the driver reads the argument.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the driver writes, user space reads the argument.
pub const IOC_READ: u32 = 2;

/// `_IO(ty, nr)`: a request without an argument.
pub const fn io(ty: u32, nr: u32) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(ty, nr, size)`: a request whose argument the driver writes.
pub const fn ior(ty: u32, nr: u32, size: u32) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOW(ty, nr, size)`: a request whose argument the driver reads.
pub const fn iow(ty: u32, nr: u32, size: u32) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOWR(ty, nr, size)`: a request whose argument the driver reads and writes.
pub const fn iowr(ty: u32, nr: u32, size: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}
