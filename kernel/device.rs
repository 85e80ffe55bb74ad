// SPDX-License-Identifier: GPL-2.0

//! The message-slot device: minors `0..SLOT_MINORS` of char major `MAJOR_NUM`, each a lazily
//! created [`Slot`], and the file operations that route to it. Safe Rust only.
#![forbid(unsafe_code)]

use crate::abstractions::{
    chrdev::{CharDevice, OpenFileRef},
    class::U64Attributes,
    poll::{PollEvents, PollTable},
    vma::VmaNew,
};
use crate::slot::{user_allocation_flags, ChannelId, OpenSlot, Slot};
use crate::uapi::{Ioctl, Statistic, SLOT_MINORS};
use kernel::{
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::UserPtr,
};

/// The device: the lazily created slots of all minors.
#[pin_data]
pub(crate) struct MessageSlotDevice {
    #[pin]
    slots: Mutex<[Option<Arc<Slot>>; SLOT_MINORS as usize]>,
    /// The most channels a slot may hold (at least 1).
    max_channels: u32,
}

impl MessageSlotDevice {
    /// A device with no slots yet, whose slots may hold up to `max_channels` channels each.
    pub(crate) fn new(max_channels: u32) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            slots <- kernel::new_mutex!(
                [const { None }; SLOT_MINORS as usize],
                "MessageSlotDevice::slots"
            ),
            max_channels,
        })
    }

    /// The slot of `minor`, created on first use.
    fn slot(&self, minor: usize) -> Result<Arc<Slot>> {
        if let Some(slot) = self.slots.lock().get(minor).ok_or(ENXIO)? {
            return Ok(slot.clone());
        }
        // Allocated outside the lock; if another opener created the slot meanwhile, ours is
        // dropped unused after the lock is released.
        let created = Arc::pin_init(Slot::new(self.max_channels), GFP_KERNEL)?;
        let mut slots = self.slots.lock();
        let slot = slots.get_mut(minor).ok_or(ENXIO)?;
        Ok(slot.get_or_insert_with(|| created.clone()).clone())
    }
}

impl U64Attributes for MessageSlotDevice {
    type Key = Statistic;

    /// `statistic` of the slot of `minor` ([`Slot::statistic`]). Reads per-CPU counters and
    /// atomics: writes nothing shared except the device mutex's lock word, taken to find the
    /// slot.
    fn value(&self, minor: u32, statistic: Statistic) -> u64 {
        let slot = self
            .slots
            .lock()
            .get(minor as usize)
            .and_then(|slot| slot.clone());
        Slot::statistic(slot.as_deref(), self.max_channels, statistic)
    }
}

impl CharDevice for MessageSlotDevice {
    type OpenFile = KBox<OpenSlot>;

    fn open(&self, minor: u32) -> Result<Self::OpenFile> {
        let slot = self.slot(minor as usize)?;
        Ok(KBox::new(OpenSlot::new(slot), user_allocation_flags())?)
    }

    #[inline]
    fn read(file: OpenFileRef<'_, Self>, buf: UserPtr, len: usize) -> Result<usize> {
        file.read(buf, len)
    }

    #[inline]
    fn write(file: OpenFileRef<'_, Self>, buf: UserPtr, len: usize) -> Result<usize> {
        file.write(buf, len)
    }

    fn ioctl(file: OpenFileRef<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        // Upstream drivers answer an unknown command with `ENOTTY`; this device's contract
        // (message_slot(4), which programs written against it test for) is `EINVAL`.
        match Ioctl::from_cmd(cmd) {
            Some(Ioctl::Channel) => {
                file.bind(ChannelId::from_ioctl_arg(arg)?);
                Ok(0)
            }
            // Less than a page: fits an `isize`.
            Some(Ioctl::RecordOffset) => Ok(file.record_offset()? as isize),
            None => Err(EINVAL),
        }
    }

    fn poll<'a>(file: OpenFileRef<'a, Self>, table: PollTable<'a>) -> PollEvents {
        file.poll(table)
    }

    fn mmap(file: OpenFileRef<'_, Self>, vma: &VmaNew) -> Result {
        file.mmap(vma)
    }
}
