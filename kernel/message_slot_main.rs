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
//! - the driver's data structures, with their unsafe code and its proofs: [`message`] (a
//!   channel's message, read under RCU) and [`channel_index`] (channels by id);
//! - [`compat`]: thin wrappers of kernel APIs the target kernel's `kernel` crate lacks.

use kernel::{c_str, prelude::*};

mod channel_index;
mod compat;
mod device;
mod message;
mod slot;
// Shared with user space, which uses the items this crate does not.
#[allow(dead_code, unreachable_pub)]
#[path = "../uapi/uapi.rs"]
mod uapi;

use compat::{chrdev::Registration, param::uint_param};
use core::sync::atomic::Ordering;
use device::MessageSlotDevice;
use uapi::{CHANNELS_PER_SLOT, MAJOR_NUM, MSG_SLOT_CHANNEL, SLOT_MINORS};

#[cfg(kernel_6_12)]
module! {
    type: MessageSlotModule,
    name: "message_slot",
    author: "message-slot developers",
    description: "Message slot IPC character device",
    license: "GPL",
}

// 7.x's `module!` takes a list of authors. Its `params` are not used: they are not shown in
// sysfs (permissions 0), and `max_channels` is (see `compat::param`).
#[cfg(not(kernel_6_12))]
module! {
    type: MessageSlotModule,
    name: "message_slot",
    authors: ["message-slot developers"],
    description: "Message slot IPC character device",
    license: "GPL",
}

// Declared here: a parameter's statics live in linker sections, which `#![forbid(unsafe_code)]`
// in the driver logic rejects.
uint_param!(
    MAX_CHANNELS,
    "max_channels",
    CHANNELS_PER_SLOT as u32,
    "most channels per slot (at least 1)"
);

/// The most channels a slot may hold (the `max_channels` module parameter).
fn max_channels() -> u32 {
    MAX_CHANNELS.load(Ordering::Relaxed)
}

const _: () = assert!(MSG_SLOT_CHANNEL == kernel::ioctl::_IOW::<u32>(MAJOR_NUM, 0));

struct MessageSlotModule {
    _registration: Pin<KBox<Registration<MessageSlotDevice>>>,
}

impl kernel::Module for MessageSlotModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        if max_channels() == 0 {
            pr_err!("max_channels must be at least 1\n");
            return Err(EINVAL);
        }
        let registration = KBox::pin_init(
            Registration::new(
                c_str!("message_slot"),
                MAJOR_NUM,
                SLOT_MINORS,
                module,
                MessageSlotDevice::new(),
            ),
            GFP_KERNEL,
        )?;
        pr_info!("registered char major {MAJOR_NUM}, minors 0..{SLOT_MINORS}\n");
        Ok(Self {
            _registration: registration,
        })
    }
}
