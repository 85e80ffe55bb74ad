// SPDX-License-Identifier: GPL-2.0

//! The message-slot IPC device.
//!
//! Char major [`MAJOR_NUM`]; every minor is an independent slot, created on first open. An
//! open file is bound to a channel with the `MSG_SLOT_CHANNEL` ioctl; `write` replaces the
//! channel's message, `read` copies it out and leaves it. Messages live until unload.
//!
//! The crate is layered (see `DESIGN.md`):
//! - driver logic, safe Rust enforced by `#![forbid(unsafe_code)]`: [`device`] (the minors and
//!   the file operations) and [`slot`] (channels of a slot, the per-file binding);
//! - the driver's data structures, with their unsafe code and its proofs: [`channel`] (a
//!   channel's message, stored inline under a seqlock) and [`channel_index`] (channels by id);
//! - [`abstractions`]: thin wrappers of kernel APIs the target kernel's `kernel` crate lacks.

use kernel::{c_str, prelude::*, sync::Arc};

mod abstractions;
mod channel;
mod channel_index;
mod device;
mod record;
mod record_pages;
mod slot;
// Shared with user space, which uses the items this crate does not.
#[allow(dead_code, unreachable_pub)]
#[path = "../uapi/uapi.rs"]
mod uapi;

use abstractions::{
    chrdev::Registration,
    class::{AttributeGroup, AttributeGroups, AttributePointers, Class, U64Attribute},
    param::uint_param,
};
use core::sync::atomic::Ordering;
use device::MessageSlotDevice;
use uapi::{
    Statistic, CLASS_NAME, DEFAULT_MAX_CHANNELS, DEFAULT_NODES, MAJOR_NUM, MSG_SLOT_CHANNEL,
    SLOT_MINORS, STATISTICS,
};

// The aliases make the module load on first use, as distributions' fixed-major drivers do
// (fuse: `char-major-10-229`, `devname:fuse`):
// - `char-major-235-*`: opening any node of major `MAJOR_NUM` (a `mknod` one too) while no
//   driver has the major makes the kernel run `modprobe char-major-235-MINOR`;
// - `devname:message_slot/0` with `char-major-235-0`: depmod writes the pair to
//   `modules.devname`, and at boot `kmod static-nodes` (kmod-static-nodes.service, then
//   systemd-tmpfiles) creates `/dev/message_slot/0` (`CLASS_NAME`, minor 0) before the module
//   is loaded. depmod takes one devname per module (the first with a `char-major-MAJ-MIN`),
//   so minors 1.. get their nodes when the module loads.
// `module!` takes string literals only: user/message-slot/tests/autoload.rs checks them
// against `MAJOR_NUM` and `CLASS_NAME`.
#[cfg(kernel_6_12)]
module! {
    type: MessageSlotModule,
    name: "message_slot",
    author: "message-slot developers",
    description: "Message slot IPC character device",
    license: "GPL",
    alias: ["char-major-235-*", "char-major-235-0", "devname:message_slot/0"],
}

// 7.x's `module!` takes a list of authors. Its `params` are not used: they are not shown in
// sysfs (permissions 0), and `max_channels` is (see `abstractions::param`).
#[cfg(not(kernel_6_12))]
module! {
    type: MessageSlotModule,
    name: "message_slot",
    authors: ["message-slot developers"],
    description: "Message slot IPC character device",
    license: "GPL",
    alias: ["char-major-235-*", "char-major-235-0", "devname:message_slot/0"],
}

// Declared here: a parameter's statics live in linker sections, which `#![forbid(unsafe_code)]`
// in the driver logic rejects.
uint_param!(
    MAX_CHANNELS,
    "max_channels",
    DEFAULT_MAX_CHANNELS as u32,
    "most channels per slot (at least 1)"
);

uint_param!(
    NODES,
    "nodes",
    DEFAULT_NODES,
    "minors 0..N get a device in class message_slot: node /dev/message_slot/MINOR and statistics in /sys/class/message_slot/message_slotMINOR (default 4, at most 256, 0 for none)"
);

/// The sysfs attributes of every class device: a slot's statistics, and the tables sysfs
/// reads them through (built at compile time, never written).
static STATISTIC_ATTRIBUTES: [U64Attribute<MessageSlotDevice>; STATISTICS.len()] =
    U64Attribute::list(Statistic::ALL, STATISTICS);
static STATISTIC_POINTERS: AttributePointers<MessageSlotDevice, { STATISTICS.len() + 1 }> =
    AttributePointers::new(&STATISTIC_ATTRIBUTES);
static STATISTIC_GROUP: AttributeGroup<MessageSlotDevice> =
    AttributeGroup::new(&STATISTIC_POINTERS);
static STATISTIC_GROUPS: AttributeGroups<MessageSlotDevice> =
    AttributeGroups::new(&STATISTIC_GROUP);

// uapi's request encoders are the kernel's, in every direction.
const _: () = {
    assert!(MSG_SLOT_CHANNEL == kernel::ioctl::_IOW::<u32>(MAJOR_NUM, 0));
    assert!(uapi::io(MAJOR_NUM, 1) == kernel::ioctl::_IO(MAJOR_NUM, 1));
    assert!(uapi::ior(MAJOR_NUM, 2, 8) == kernel::ioctl::_IOR::<u64>(MAJOR_NUM, 2));
    assert!(uapi::iow(MAJOR_NUM, 3, 2) == kernel::ioctl::_IOW::<u16>(MAJOR_NUM, 3));
    assert!(uapi::iowr(MAJOR_NUM, 4, 4) == kernel::ioctl::_IOWR::<u32>(MAJOR_NUM, 4));
};

struct MessageSlotModule {
    // Dropped first: no file can be opened after it is (and none is open: each holds a
    // module reference). Nothing depends on the drop order for soundness: the class and the
    // registration each hold a reference to the device.
    _registration: Pin<KBox<Registration<MessageSlotDevice>>>,
    _nodes: Option<Class<MessageSlotDevice>>,
}

impl kernel::Module for MessageSlotModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let max_channels = MAX_CHANNELS.load(Ordering::Relaxed);
        if max_channels == 0 {
            pr_err!("max_channels must be at least 1\n");
            return Err(EINVAL);
        }
        let nodes = NODES.load(Ordering::Relaxed);
        if nodes > SLOT_MINORS {
            pr_err!("nodes must be at most {SLOT_MINORS}\n");
            return Err(EINVAL);
        }
        let device = Arc::pin_init(MessageSlotDevice::new(max_channels), GFP_KERNEL)?;
        let nodes = if nodes == 0 {
            None
        } else {
            let mut class = Class::new(CLASS_NAME, MAJOR_NUM, &STATISTIC_GROUPS, device.clone())?;
            for _ in 0..nodes {
                class.add_next()?;
            }
            Some(class)
        };
        // Last: the device is live once registered, so nothing after this may fail (a failed
        // init would free the module under an open file).
        let registration = KBox::pin_init(
            Registration::new(
                c_str!("message_slot"),
                MAJOR_NUM,
                SLOT_MINORS,
                module,
                device,
            ),
            GFP_KERNEL,
        )?;
        pr_info!("registered char major {MAJOR_NUM}, minors 0..{SLOT_MINORS}\n");
        Ok(Self {
            _registration: registration,
            _nodes: nodes,
        })
    }
}
