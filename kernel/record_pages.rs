// SPDX-License-Identifier: GPL-2.0

//! A slot's record pages: the zeroed pages its channels' records live in, which user space
//! maps read-only.
//!
//! Records are handed out in creation order: the slot's `k`-th channel gets record `k`, at
//! offset `(k % RECORDS_PER_PAGE) * RECORD_SIZE` of page `k / RECORDS_PER_PAGE`. A page holds
//! records of one slot only, and nothing else: it is zeroed when allocated, its records are
//! `uapi::Record`s (no pointer, no lock word) and the bytes after its last record stay zero.
//! Pages are indexed by number in an [`InsertOnlyXArray`] and freed with the slot (at unload:
//! a mapping holds its file, which holds the module).
//!
//! Records are given out under a mutex ([`RecordPages::lock`]), which is also the slot's
//! channel-creation lock. A page is allocated before it is taken ([`RecordPages::prepare`]),
//! by the creation that needs it: the first record of a page goes to the first channel created
//! after the previous page filled up.

use crate::abstractions::{
    page::page_address,
    xarray::{InsertOnlyXArray, Reservation},
};
use crate::uapi::{Record, RECORD_SIZE};
use core::ptr::NonNull;
use kernel::{
    alloc::Flags,
    bindings,
    page::Page,
    prelude::*,
    sync::{
        lock::{mutex::MutexBackend, Guard},
        Mutex,
    },
};

/// A held `Mutex<T>` (`kernel::sync::MutexGuard` from 7.x on).
type MutexGuard<'a, T> = Guard<'a, T, MutexBackend>;

/// Records in a page.
pub(crate) const RECORDS_PER_PAGE: u32 = (bindings::PAGE_SIZE / RECORD_SIZE) as u32;
const _: () = assert!(RECORDS_PER_PAGE >= 1);

/// A record's offset in its page, in bytes.
#[inline]
pub(crate) fn offset_in_page(index: u32) -> usize {
    (index % RECORDS_PER_PAGE) as usize * RECORD_SIZE
}

/// The pages of a slot's records, and the number of records given out so far.
///
/// # Invariants
///
/// Every page in `pages` is a zeroed (when allocated) order-0 page of the direct map, owned by
/// the map, under its number. Records `0..given` have been given out, each once; the others
/// are all zero. Only the holders of given-out records write to the pages (`uapi::Record`s, at
/// the offsets [`offset_in_page`] gives).
#[pin_data]
pub(crate) struct RecordPages {
    #[pin]
    pages: InsertOnlyXArray<KBox<Page>>,
    /// Records given out: the next one's index. Its lock serialises giving them out.
    #[pin]
    given: Mutex<u32>,
}

/// A page allocated (and its number's place in the index reserved) for the record that starts
/// it, before the records' lock is taken. Dropped unused, it frees both.
pub(crate) struct PreparedPage<'a> {
    number: u32,
    page: KBox<Page>,
    reservation: Reservation<'a, KBox<Page>>,
}

/// The records' lock, held: the right to give out the next record.
pub(crate) struct RecordCursor<'a> {
    pages: &'a RecordPages,
    given: MutexGuard<'a, u32>,
}

impl RecordPages {
    /// No pages, no record given out.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pages <- InsertOnlyXArray::new(),
            given <- kernel::new_mutex!(0, "RecordPages::given"),
        })
    }

    /// What giving out record `index` needs allocated: a zeroed page, allocated with `flags`
    /// (which must not include `__GFP_HIGHMEM`), if `index` is the first record of a page that
    /// does not exist yet; `ENOMEM` if it cannot be allocated. Call it before [`Self::lock`].
    pub(crate) fn prepare(&self, index: u32, flags: Flags) -> Result<Option<PreparedPage<'_>>> {
        let number = index / RECORDS_PER_PAGE;
        if index % RECORDS_PER_PAGE != 0 || self.pages.get(number).is_some() {
            return Ok(None);
        }
        let page = KBox::new(Page::alloc_page(flags | __GFP_ZERO)?, flags)?;
        let reservation = self.pages.reserve(number, flags)?;
        Ok(Some(PreparedPage {
            number,
            page,
            reservation,
        }))
    }

    /// Takes the records' lock (a mutex: may sleep) until the cursor is dropped.
    pub(crate) fn lock(&self) -> RecordCursor<'_> {
        RecordCursor {
            pages: self,
            given: self.given.lock(),
        }
    }
}

impl<'a> RecordCursor<'a> {
    /// The index of the next record to give out.
    #[inline]
    pub(crate) fn next_index(&self) -> u32 {
        *self.given
    }

    /// Gives out the next record: all zero, never given out before, in a page that lives as
    /// long as the [`RecordPages`]. Its page is one that exists, or `prepared`'s if it holds
    /// the page the record starts (which it then takes). `Ok(None)` if the record's page does
    /// not exist and `prepared` does not hold it: drop the cursor, prepare the page for
    /// [`RecordCursor::next_index`] and try again. Allocates nothing.
    ///
    /// Errors: `ENOSPC` once `u32::MAX` records were given out; `ENOMEM` if the page has no
    /// direct-map address (allocated with `__GFP_HIGHMEM`).
    pub(crate) fn give_out(
        &mut self,
        prepared: &mut Option<PreparedPage<'_>>,
    ) -> Result<Option<GivenRecord<'a>>> {
        let index = *self.given;
        let next = index.checked_add(1).ok_or(ENOSPC)?;
        let number = index / RECORDS_PER_PAGE;
        let page = match self.pages.pages.get(number) {
            Some(page) => page,
            None => {
                let (page, reservation) = match prepared.take() {
                    Some(PreparedPage {
                        number: prepared_number,
                        page,
                        reservation,
                    }) if prepared_number == number => (page, reservation),
                    other => {
                        *prepared = other;
                        return Ok(None);
                    }
                };
                // Fails only if the reservation was given back meanwhile, which only another
                // `PreparedPage` of this number does when dropped unused while the place is
                // still empty; pages are inserted with this lock held, by the holder that needs
                // one, so the place is filled now or its page was just prepared again.
                match self.pages.pages.get_or_insert(reservation, page) {
                    Ok((page, _)) => page,
                    Err(_) => return Ok(None),
                }
            }
        };
        let address = page_address(page).ok_or(ENOMEM)?;
        // The record is within the page (`offset_in_page(index) + RECORD_SIZE <= PAGE_SIZE`) and
        // aligned for a `Record` (`RECORD_SIZE` and the page's address are multiples of 8).
        let record = NonNull::new(
            address
                .as_ptr()
                .wrapping_add(offset_in_page(index))
                .cast::<Record>(),
        )
        .ok_or(ENOMEM)?;
        // INVARIANT: Record `index` is given out now, once; the ones after it stay zero.
        *self.given = next;
        // INVARIANT: As just shown, of `self.pages`.
        Ok(Some(GivenRecord {
            pages: self.pages,
            record,
        }))
    }
}

/// A record just given out by [`RecordCursor::give_out`]: for its holder alone to write.
///
/// # Invariants
///
/// `record` is a record of `pages`, all zero, given out once (to this value).
pub(crate) struct GivenRecord<'a> {
    pages: &'a RecordPages,
    record: NonNull<Record>,
}

impl<'a> GivenRecord<'a> {
    /// The records it is one of.
    #[inline]
    pub(crate) fn pages(&self) -> &'a RecordPages {
        self.pages
    }

    /// The record: all zero, in an order-0 page of the direct map that lives as long as
    /// [`GivenRecord::pages`], and given out once, to this value.
    #[inline]
    pub(crate) fn into_raw(self) -> NonNull<Record> {
        self.record
    }
}
