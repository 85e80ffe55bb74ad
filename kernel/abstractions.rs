// SPDX-License-Identifier: GPL-2.0

//! The bottom layer: thin wrappers of kernel APIs that a target kernel's `kernel` crate lacks.
//!
//! Every wrapper has upstream's shape (the caller passes GFP flags, no driver policy inside)
//! and names the upstream abstraction that replaces it, so that it can be deleted once every
//! supported kernel has that abstraction. Nothing here knows about message slots.
//!
//! Each file says what it stands in for and what 7.x offers; `#[cfg(kernel_6_12)]` (set by
//! `Kbuild` from the target kernel's version) selects the 6.12 code, which can be deleted
//! with 6.12 support. On 7.x:
//!
//! | file         | provides                                         | on 7.x                                        |
//! |--------------|--------------------------------------------------|-----------------------------------------------|
//! | `alloc.rs`   | raw `gfp_t` of `Flags`, `__GFP_RETRY_MAYFAIL`    | ours: `Flags`' raw constructor is crate-private |
//! | `chrdev.rs`  | fixed major, 256 minors, `file_operations`       | ours: `miscdevice` serves one misc minor      |
//! | `class.rs`   | device class, class devices, `u64` sysfs attributes | ours: no class or attribute abstraction    |
//! | `error.rs`   | `EMSGSIZE`                                       | upstream's `kernel::error::code::EMSGSIZE`    |
//! | `init.rs`    | `Opaque::try_ffi_init`, `into_foreign` pointer   | upstream's (6.12: stand-ins)                  |
//! | `param.rs`   | a read-only `uint` parameter shown in sysfs      | ours: `module!` params have permissions 0     |
//! | `percpu.rs`  | per-CPU `u64` counters (x86-64: inline `this_cpu_add`) | ours: no `kernel::percpu`               |
//! | `poll.rs`    | wait queue heads, `poll_wait()`, poll events     | ours: upstream's `PollCondVar` wakes without checking for sleepers and synchronises RCU in every `drop` |
//! | `sched.rs`   | `cond_resched()`                                 | ours: not wrapped upstream                    |
//! | `page.rs`    | `page_address()`, `virt_to_page()`, `BorrowedPage` (6.12) | ours; upstream's `BorrowedPage` (7.x) |
//! | `spinlock.rs`| `spinlock_t` whose unlock can wake pollers       | ours: `SpinLock` keeps its `spinlock_t`       |
//! | `uaccess.rs` | inline `copy_from_user()`/`copy_to_user()`, `UserPtr` conversions | ours: `UserSlice`'s are out of line |
//! | `vma.rs`     | a vma set up by `mmap`, `vm_insert_page()` (6.12), its offset | upstream's `kernel::mm::virt` (7.x) |
//! | `xarray.rs`  | insert-only map with lock-free `xa_load`         | ours: upstream's `XArray` looks up under its lock only |
//!
//! `helpers.c` holds the C side of `page.rs`, `poll.rs`, `percpu.rs`, `sched.rs`,
//! `spinlock.rs` and `xarray.rs`: static inline functions and macros (`page_address()`,
//! `poll_wait()`, `waitqueue_active()`, `this_cpu_add()`, `spin_lock_init()`, `xa_release()`,
//! `cond_resched()`), which Rust cannot call; upstream's `rust/helpers/` does the same for its
//! own abstractions.

pub(crate) mod alloc;
pub(crate) mod chrdev;
pub(crate) mod class;
pub(crate) mod error;
pub(crate) mod init;
pub(crate) mod page;
pub(crate) mod param;
pub(crate) mod percpu;
pub(crate) mod poll;
pub(crate) mod sched;
pub(crate) mod spinlock;
pub(crate) mod uaccess;
pub(crate) mod vma;
pub(crate) mod xarray;
