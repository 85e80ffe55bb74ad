// SPDX-License-Identifier: GPL-2.0

//! What the in-guest test suite (`tests/guest`) and the fuzzer (`tests/fuzz`) share:
//!
//! - [`message_codec`]: the self-checking message codec (writer, sequence, channel, minor,
//!   run nonce, checksum), so that every read can be verified whole;
//! - [`sys`]: raw system calls that return the `errno` (for the invalid arguments the
//!   library's [`message_slot::Slot`] cannot express), guard pages, device nodes and
//!   memory shared with forked children;
//! - [`requests`]: the ioctl requests the device does not have, derived from its list of
//!   ioctls.

pub mod message_codec;
pub mod requests;
pub mod sys;
