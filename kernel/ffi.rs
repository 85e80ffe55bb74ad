// SPDX-License-Identifier: GPL-2.0

//! The driver's only raw kernel bindings, each behind a safe interface.
//!
//! 6.12's `kernel` crate lacks the file, misc-device, XArray and module-parameter abstractions
//! upstream added later; these modules provide just what the driver needs, in the same style.

mod chrdev;
mod param;
mod xarray;

pub(crate) use chrdev::{CharDevice, OpenFileRef, Registration};
pub(crate) use param::max_channels;
pub(crate) use xarray::InsertOnlyMap;
