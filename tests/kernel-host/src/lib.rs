// SPDX-License-Identifier: GPL-2.0

//! Host tests of the module's data structures: the channel (`kernel/channel.rs`: message
//! storage under a seqlock, the pollers' queue) and the channel index
//! (`kernel/channel_index.rs`: the insert-only keyed map and the lookup memo).
//!
//! The module's own files are compiled here unchanged (`#[path]`), against host stand-ins of
//! what is below them: the `kernel` crate (`tests/kernel-host/kernel`) and the module's
//! abstractions layer ([`abstractions`]: an XArray as a locked `BTreeMap`, the kernel's
//! `seqlock_t` as the same protocol on atomics and a mutex, user copies from host memory).
//! So these tests check the data structures' own logic: what is stored where, errors and
//! what a failure leaves, chains of colliding keys, the memo, no torn read under concurrent
//! writers (on the host's threads), and that everything is freed. What the kernel below does
//! (its seqlock, XArray, `copy_to_user`, memory cgroups) is tested in the guest
//! (`tests/guest`) on every rig kernel.
//!
//! Why not KUnit: `#[kunit_tests]` exists from Linux 6.15 on (not in 6.12, our base and debug
//! kernels) and none of the rig's kernels, nor Debian's, enables `CONFIG_KUNIT`; these run in
//! `cargo test`, so in `make test`'s host checks, on every change, in seconds.

#![cfg(test)]

mod abstractions;
#[path = "../../../kernel/channel.rs"]
mod channel;
#[path = "../../../kernel/channel_index.rs"]
mod channel_index;
// The ABI module: the tests use its message limit only.
#[allow(dead_code)]
#[path = "../../../uapi/uapi.rs"]
mod uapi;

mod channel_index_tests;
mod channel_tests;
