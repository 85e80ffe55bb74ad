// SPDX-License-Identifier: GPL-2.0

//! Host tests of the module's data structures: the record (`kernel/record.rs`: a message as
//! a channel's record holds it, and the sequence protocol it is written and read with), the
//! record pages (`kernel/record_pages.rs`: the pages of a slot's records, given out in
//! creation order), the channel (`kernel/channel.rs`: its record written under its writers'
//! lock and read onto the stack, the pollers' queue) and the channel index
//! (`kernel/channel_index.rs`: the insert-only keyed map with its context, and the lookup
//! memo).
//!
//! The module's own files are compiled here unchanged (`#[path]`), with its user copies
//! (`kernel/abstractions/uaccess.rs`), against host stand-ins of what is below them: the
//! `kernel` crate (`tests/kernel-host/kernel`: boxes and pages that are counted while they live
//! and whose allocation can be made to fail, pages filled with garbage unless zeroed, a
//! `Mutex`, `copy_from_user()`/`copy_to_user()` that fault on the first page) and the rest of
//! the module's abstractions layer ([`abstractions`]: an XArray as a locked `BTreeMap`, the
//! writers' `spinlock_t` as a host mutex that panics on a re-lock and can stop a thread for a
//! test, pages' addresses). So these tests check the data structures' own logic: what is
//! stored where, errors and what a failure leaves, chains of colliding keys, the memo, the
//! record's protocol and no torn read under concurrent writers (on the host's threads), and
//! that everything is freed. What the kernel below does (its spinlock, XArray, pages and
//! mappings, user copies, memory cgroups) and what user space sees of a mapped record are
//! tested in the guest (`tests/guest`) on every rig kernel.
//!
//! They also run under Miri (`cargo +nightly miri test -p message-slot-kernel-host-tests`,
//! not part of `make test`), which checks the unsafe code of the stand-ins and of the
//! module's files, and the record's protocol under its weak-memory emulation, with a shorter
//! race; the tests of thousands of entries are too slow there (`--skip colliding --skip
//! long_chains --skip racing_inserts --skip racing_creations`).
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
#[path = "../../../kernel/record.rs"]
mod record;
// The module builds with rustc 1.85 (trixie's, for Debian's kernels), which has no
// `u32::is_multiple_of` (1.87): its `%` is what it can write.
#[allow(clippy::manual_is_multiple_of)]
#[path = "../../../kernel/record_pages.rs"]
mod record_pages;
// The ABI module: the tests use its message limit and record layout only.
#[allow(dead_code)]
#[path = "../../../uapi/uapi.rs"]
mod uapi;

mod channel_index_tests;
mod channel_tests;
mod record_pages_tests;
mod record_tests;
mod uaccess_tests;
