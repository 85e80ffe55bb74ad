// SPDX-License-Identifier: GPL-2.0

//! `kernel::sync`: `Arc`, a reference-counted, pinned allocation made with GFP flags, and
//! `Mutex`, a sleeping lock around its data (`Lock<T, MutexBackend>` and its `Guard`).

use crate::{
    alloc::{allocation_allowed, with_error, Flags},
    error::{Error, Result},
};
use core::{ops::Deref, pin::Pin};
use pinned_init::{InPlaceInit, PinInit};

pub use lock::mutex::Mutex;

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

/// `kernel::sync::lock`: a lock around its data, its kind (backend) a type parameter.
pub mod lock {
    use core::{
        marker::PhantomData,
        ops::{Deref, DerefMut},
    };
    use pinned_init::PinInit;

    /// A lock of kind `B` around a `T`: on the host a `std::sync::Mutex` whatever `B` is.
    pub struct Lock<T, B> {
        data: std::sync::Mutex<T>,
        _backend: PhantomData<B>,
    }

    impl<T, B> Lock<T, B> {
        /// An unlocked lock around `data` (`name` is lockdep's).
        pub fn new(data: T, _name: &'static str) -> impl PinInit<Self> {
            Self {
                data: std::sync::Mutex::new(data),
                _backend: PhantomData,
            }
        }

        /// Takes the lock until the guard is dropped.
        pub fn lock(&self) -> Guard<'_, T, B> {
            Guard(
                self.data
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                PhantomData,
            )
        }
    }

    /// A held [`Lock`]: its data.
    pub struct Guard<'a, T, B>(std::sync::MutexGuard<'a, T>, PhantomData<B>);

    impl<T, B> Deref for Guard<'_, T, B> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T, B> DerefMut for Guard<'_, T, B> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.0
        }
    }

    /// `kernel::sync::lock::mutex`.
    pub mod mutex {
        /// The kind of a [`Mutex`]: a sleeping lock.
        pub struct MutexBackend;

        /// A mutex (`kernel::sync::Mutex`).
        pub type Mutex<T> = super::Lock<T, MutexBackend>;
    }
}

/// `new_mutex!(data, name)`: an initialiser of a [`Mutex`] around `data`.
#[macro_export]
macro_rules! new_mutex {
    ($data:expr, $name:literal $(,)?) => {
        $crate::sync::Mutex::new($data, $name)
    };
}
