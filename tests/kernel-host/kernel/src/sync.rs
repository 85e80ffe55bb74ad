// SPDX-License-Identifier: GPL-2.0

//! `kernel::sync::Arc`: a reference-counted, pinned allocation, made with GFP flags.

use crate::{
    alloc::{allocation_allowed, with_error, Flags},
    error::{Error, Result},
};
use core::{ops::Deref, pin::Pin};
use pinned_init::{InPlaceInit, PinInit};

/// A pinned `std::sync::Arc` (the kernel's `Arc` is always pinned).
pub struct Arc<T>(Pin<std::sync::Arc<T>>);

impl<T> Arc<T> {
    /// Allocates and pin-initialises a `T` (`Arc::pin_init`).
    pub fn pin_init<E>(init: impl PinInit<T, E>, _flags: Flags) -> Result<Self>
    where
        Error: From<E>,
    {
        allocation_allowed()?;
        Ok(Self(<std::sync::Arc<T> as InPlaceInit<T>>::try_pin_init(
            with_error(init),
        )?))
    }
}

impl<T> Clone for Arc<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
