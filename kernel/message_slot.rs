// SPDX-License-Identifier: GPL-2.0

//! The message-slot IPC device.
//!
//! Char major [`MAJOR_NUM`]; every minor is an independent slot, created on first open. An
//! open file is bound to a channel with the `MSG_SLOT_CHANNEL` ioctl; `write` replaces the
//! channel's message, `read` copies it out and leaves it. Messages live until unload.

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    c_str,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
};

mod chrdev;
mod slot;
// Shared with user space, which uses the items this crate does not.
#[allow(dead_code, unreachable_pub)]
#[path = "../uapi/uapi.rs"]
mod uapi;

use chrdev::{CharDevice, Registration};
use slot::{ChannelId, Message, Slot};
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
            slots <- kernel::new_mutex!([const { None }; SLOT_MINORS as usize], "MessageSlotDevice::slots"),
        })
    }

    /// The slot of `minor`, created on first use.
    fn slot(&self, minor: usize) -> Result<Arc<Slot>> {
        if let Some(slot) = self.slots.lock().get(minor).ok_or(ENXIO)? {
            return Ok(slot.clone());
        }
        // Allocate outside the lock; if another opener won the race, ours is dropped unused
        // after the lock is released.
        let created = Arc::pin_init(Slot::new(), GFP_KERNEL)?;
        let mut slots = self.slots.lock();
        let slot = slots[minor].get_or_insert_with(|| created.clone()).clone();
        drop(slots);
        Ok(slot)
    }
}

/// One open file: its slot and the channel it is bound to (0 while unbound).
struct OpenSlot {
    slot: Arc<Slot>,
    channel: AtomicU32,
}

impl OpenSlot {
    /// The bound channel; `EINVAL` if the file is not bound yet.
    fn channel(&self) -> Result<ChannelId> {
        ChannelId::from_raw(self.channel.load(Ordering::Relaxed)).ok_or(EINVAL)
    }
}

impl CharDevice for MessageSlotDevice {
    type OpenFile = KBox<OpenSlot>;

    fn open(&self, minor: u32) -> Result<KBox<OpenSlot>> {
        let slot = self.slot(minor as usize)?;
        Ok(KBox::new(
            OpenSlot {
                slot,
                channel: AtomicU32::new(0),
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn read(file: &OpenSlot, buf: UserSliceWriter) -> Result<usize> {
        let channel = file.channel()?;
        file.slot.load(channel)?.to_user(buf)
    }

    fn write(file: &OpenSlot, buf: UserSliceReader) -> Result<usize> {
        let channel = file.channel()?;
        let message = Message::from_user(buf)?;
        let len = message.as_bytes().len();
        file.slot.store(channel, message)?;
        Ok(len)
    }

    fn ioctl(file: &OpenSlot, cmd: u32, arg: usize) -> Result<isize> {
        if cmd != MSG_SLOT_CHANNEL {
            return Err(EINVAL);
        }
        let channel = ChannelId::from_ioctl_arg(arg)?;
        file.channel.store(channel.get(), Ordering::Relaxed);
        Ok(0)
    }
}

struct MessageSlotModule {
    _registration: Pin<KBox<Registration<MessageSlotDevice>>>,
}

impl kernel::Module for MessageSlotModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
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
        pr_info!(
            "registered char major {}, minors 0..{}\n",
            MAJOR_NUM,
            SLOT_MINORS
        );
        Ok(Self {
            _registration: registration,
        })
    }
}
