// SPDX-License-Identifier: GPL-2.0

//! The bottom layer: thin wrappers of kernel APIs that a target kernel's `kernel` crate lacks.
//!
//! Every wrapper has upstream's shape (the caller passes GFP flags, no driver policy inside)
//! and names the upstream abstraction that replaces it, so that it can be deleted once every
//! supported kernel has that abstraction. Nothing here knows about message slots.
//!
//! | file         | stands in for                                                  | in 7.3's `kernel` crate |
//! |--------------|----------------------------------------------------------------|-------------------------|
//! | `alloc.rs`   | `Flags::as_raw` (crate-private in 6.12)                        | to check                |
//! | `class.rs`   | `class_create()`, `device_create()`, `DEVICE_ATTR_RO()` (no Rust class API) | no    |
//! | `chrdev.rs`  | a fixed-major char device (`kernel::miscdevice` serves one misc minor) | no              |
//! | `error.rs`   | `EMSGSIZE` in `kernel::error::code`                            | to check                |
//! | `param.rs`   | module parameters in `module!`                                 | yes                     |
//! | `percpu.rs`  | `alloc_percpu()`, `this_cpu_add()`, `per_cpu_ptr()`              | no                      |
//! | `poll.rs`    | `kernel::sync::poll::{PollTable, PollCondVar}` (since 6.13)      | yes                     |
//! | `rcu.rs`     | `kernel::sync::rcu::{Guard, read_lock}`; `kvfree_call_rcu`      | guard yes               |
//! | `sched.rs`   | `cond_resched()`                                               | to check                |
//! | `uaccess.rs` | `copy_to_user_nofault()`                                       | to check                |
//! | `xarray.rs`  | `kernel::xarray::XArray`                                       | yes                     |
//!
//! `helpers.c` holds the C side of `rcu.rs`, `poll.rs` and `percpu.rs` (`rcu_read_lock()`, `poll_wait()`
//! and `wq_has_sleeper()` are static inline functions, which Rust cannot call; upstream's
//! `rust/helpers/rcu.c` and `rust/helpers/poll.c` do the same for its abstractions).

pub(crate) mod alloc;
pub(crate) mod chrdev;
pub(crate) mod class;
pub(crate) mod error;
pub(crate) mod param;
pub(crate) mod percpu;
pub(crate) mod poll;
pub(crate) mod rcu;
pub(crate) mod sched;
pub(crate) mod uaccess;
pub(crate) mod xarray;
