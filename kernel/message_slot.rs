// SPDX-License-Identifier: GPL-2.0

//! The message-slot IPC device.
//!
//! Char major [`MAJOR_NUM`]; every minor is an independent slot, created on first open. An
//! open file is bound to a channel with the `MSG_SLOT_CHANNEL` ioctl; `write` replaces the
//! channel's message, `read` copies it out and leaves it. Messages live until unload.
//!
//! `ffi` holds all raw kernel bindings behind safe interfaces; the driver logic (this file,
//! `slot`, `channel`) is safe Rust.

use kernel::{
    c_str,
    prelude::*,
    sync::{Arc, Mutex},
};

mod channel;
mod ffi;
mod slot;
// Shared with user space, which uses the items this crate does not.
#[allow(dead_code, unreachable_pub)]
#[path = "../uapi/uapi.rs"]
mod uapi;

use ffi::{CharDevice, OpenFileRef, Registration, UserDestination, UserSource};
use slot::{ChannelId, OpenSlot, Slot};
use uapi::{MAJOR_NUM, MSG_SLOT_CHANNEL, SLOT_MINORS};

module! {
    type: MessageSlotModule,
    name: "message_slot",
    author: "message-slot developers",
    description: "Message slot IPC character device",
    license: "GPL",
}

const _: () = assert!(MSG_SLOT_CHANNEL == kernel::ioctl::_IOW::<u32>(MAJOR_NUM, 0));

/// The device: the lazily created slots of all minors.
#[pin_data]
struct MessageSlotDevice {
    #[pin]
    slots: Mutex<[Option<Arc<Slot>>; SLOT_MINORS as usize]>,
}

impl MessageSlotDevice {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            slots <- kernel::new_mutex!(
                [const { None }; SLOT_MINORS as usize],
                "MessageSlotDevice::slots"
            ),
        })
    }

    /// The slot of `minor`, created on first use.
    fn slot(&self, minor: usize) -> Result<Arc<Slot>> {
        if let Some(slot) = self.slots.lock().get(minor).ok_or(ENXIO)? {
            return Ok(slot.clone());
        }
        // Allocated outside the lock; if another opener created the slot meanwhile, ours is
        // dropped unused after the lock is released.
        let created = Arc::new(Slot::new()?, GFP_KERNEL)?;
        let mut slots = self.slots.lock();
        Ok(slots[minor].get_or_insert_with(|| created.clone()).clone())
    }
}

impl CharDevice for MessageSlotDevice {
    type OpenFile = KBox<OpenSlot>;

    fn open(&self, minor: u32) -> Result<Self::OpenFile> {
        let slot = self.slot(minor as usize)?;
        Ok(KBox::new(OpenSlot::new(slot)?, ffi::user_memory())?)
    }

    #[inline]
    fn read(file: OpenFileRef<'_, Self>, buf: UserDestination) -> Result<usize> {
        file.read(buf)
    }

    #[inline]
    fn write(file: OpenFileRef<'_, Self>, buf: UserSource) -> Result<usize> {
        file.write(buf)
    }

    fn ioctl(file: OpenFileRef<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        if cmd != MSG_SLOT_CHANNEL {
            return Err(EINVAL);
        }
        file.bind(ChannelId::from_ioctl_arg(arg)?);
        Ok(0)
    }
}

struct MessageSlotModule {
    _registration: Pin<KBox<Registration<MessageSlotDevice>>>,
}

impl kernel::Module for MessageSlotModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        if ffi::max_channels() == 0 {
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
