// SPDX-License-Identifier: GPL-2.0

//! The message-slot ABI: the single source of truth shared by the kernel module (through
//! `#[path]`), the Rust user crates and, checked by a test, the C header `message_slot.h`.
//!
//! Dependency-free on purpose: it compiles both in the kernel crate and in user space.

/// Character-device major number of every message slot.
pub const MAJOR_NUM: u32 = 235;

/// Number of minors (slots) the driver serves: `0..SLOT_MINORS`.
pub const SLOT_MINORS: u32 = 256;

/// Largest message in bytes; messages are `1..=MAX_MESSAGE_LEN` arbitrary bytes.
pub const MAX_MESSAGE_LEN: usize = 128;

/// Channels per slot the device must support (ids themselves may be any non-zero `u32`).
pub const CHANNELS_PER_SLOT: usize = 1 << 20;

/// Minors that get class devices (nodes `/dev/message_slot/MINOR`, statistics) unless the
/// module parameter `nodes` says otherwise: `0..DEFAULT_NODES`, as many as the example's
/// `/dev/slot0`..`/dev/slot3` (kernel/DESIGN.md, "Device nodes and statistics", says why).
pub const DEFAULT_NODES: u32 = 4;

/// The device class of the slots that have class devices (module parameter `nodes`):
/// `/sys/class/message_slot/message_slotMINOR/`, nodes `/dev/message_slot/MINOR`.
pub const CLASS_NAME: &core::ffi::CStr = c"message_slot";

/// A slot's statistics: its class device's sysfs attributes (each one decimal `u64` and a
/// newline, mode 0440).
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
    /// Every statistic, in the order user space lists them (and the module creates them).
    pub const ALL: [Self; 6] = [
        Self::Channels,
        Self::Bytes,
        Self::Writes,
        Self::Reads,
        Self::OpenFiles,
        Self::MaxChannels,
    ];

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

/// The device's ioctls: every request it answers (any other request fails with `EINVAL`).
/// Adding one is a variant here, its arms in [`Ioctl::cmd`] and [`Ioctl::c_name`], its
/// `#define` in `message_slot.h` (a test checks them against each other) and its arm in the
/// module's dispatch (`kernel/device.rs`, an exhaustive `match`); the tests that send unknown
/// requests take the known ones from [`Ioctl::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl {
    /// [`MSG_SLOT_CHANNEL`]: binds the open file to a channel.
    Channel,
}

impl Ioctl {
    /// Every ioctl of the device.
    pub const ALL: [Self; 1] = [Self::Channel];

    /// Its request number.
    pub const fn cmd(self) -> u32 {
        match self {
            Self::Channel => MSG_SLOT_CHANNEL,
        }
    }

    /// The name of its request number in `message_slot.h`.
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Channel => "MSG_SLOT_CHANNEL",
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
