// SPDX-License-Identifier: GPL-2.0

//! A channel: the last message written to it, readable without locks.
//!
//! The message lives in a [`MessageCell`]: a write fills a spare buffer straight from user
//! space and swaps it in; a read copies straight from the current buffer to user space and
//! retries if that buffer was refilled meanwhile. Readers therefore never write shared memory
//! (two readers of one channel do not slow each other down), never see a torn message, and
//! each message is copied once on the way in and once on the way out.

use crate::ffi::{MessageCell, SpareBuffer, UserDestination, UserSource};
use crate::uapi::MAX_MESSAGE_LEN;
use kernel::prelude::*;

/// `EMSGSIZE`, which 6.12's `kernel::error::code` does not declare.
fn emsgsize() -> Error {
    Error::from_errno(-(kernel::bindings::EMSGSIZE as i32))
}

/// Checks that `source` holds a message length: `1..=MAX_MESSAGE_LEN` bytes, else `EMSGSIZE`.
pub(crate) fn check_message_len(source: &UserSource) -> Result<usize> {
    match source.len() {
        len @ 1..=MAX_MESSAGE_LEN => Ok(len),
        _ => Err(emsgsize()),
    }
}

/// A channel holding a message.
pub(crate) struct Channel {
    message: MessageCell,
}

impl Channel {
    /// A channel holding the message in `message`.
    pub(crate) fn new(message: MessageCell) -> Self {
        Self { message }
    }

    /// Replaces the message with the one filled into `spare`, which gets the old buffer.
    #[inline]
    pub(crate) fn store(&self, spare: &mut SpareBuffer<'_>) -> Result {
        self.message.replace(spare)
    }

    /// Copies the message to `destination` and returns its length: `ENOSPC` (before touching
    /// user memory) if it is too small, `EFAULT` for a bad buffer.
    #[inline]
    pub(crate) fn load(&self, destination: UserDestination) -> Result<usize> {
        self.message.copy_to_user(destination)
    }
}
