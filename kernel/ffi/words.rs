// SPDX-License-Identifier: GPL-2.0

//! Stack buffers of 8-byte words that are filled without being zeroed first.
//!
//! Zeroing a whole message buffer on every call costs a `rep stos` per read and per write;
//! these buffers only track how many leading words hold data and hand out just those.

use core::{mem::MaybeUninit, slice};
use kernel::{prelude::*, uaccess::UserSliceReader};

/// Bytes per word.
pub(crate) const WORD: usize = 8;

/// One word, as bytes in memory order.
pub(crate) type Word = [u8; WORD];

/// Space for up to `N` words, of which a prefix holds data.
///
/// # Invariants
///
/// `filled <= N` and `words[..filled]` are initialised.
pub(crate) struct WordBuffer<const N: usize> {
    words: [MaybeUninit<Word>; N],
    filled: usize,
}

impl<const N: usize> WordBuffer<N> {
    /// An empty buffer.
    pub(crate) const fn new() -> Self {
        // INVARIANT: No word is filled.
        Self {
            words: [const { MaybeUninit::uninit() }; N],
            filled: 0,
        }
    }

    /// The filled words.
    #[inline]
    pub(crate) fn words(&self) -> &[Word] {
        // SAFETY: `words[..filled]` are initialised (type invariant), `filled <= N` keeps the
        // range in bounds, and `MaybeUninit<Word>` has the layout of `Word`.
        unsafe { slice::from_raw_parts(self.words.as_ptr().cast::<Word>(), self.filled) }
    }

    /// Replaces the contents with `n` words (at most `N`), word `i` being `word(i)`.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize, mut word: impl FnMut(usize) -> Word) {
        let n = n.min(N);
        for (i, slot) in self.words[..n].iter_mut().enumerate() {
            slot.write(word(i));
        }
        // INVARIANT: `n <= N` and the first `n` words were just written.
        self.filled = n;
    }

    /// Replaces the contents with `len` bytes read from `reader`, as `len.div_ceil(WORD)`
    /// words, the last one padded with zeroes. User memory is read once.
    ///
    /// `EINVAL` if `len` does not fit, `EFAULT` if `reader` holds fewer than `len` bytes or
    /// they cannot be read; either way the buffer is left empty.
    #[inline]
    pub(crate) fn read_user(&mut self, reader: &mut UserSliceReader, len: usize) -> Result {
        // INVARIANT: Nothing counts as filled until the copy succeeded.
        self.filled = 0;
        let n = len.div_ceil(WORD);
        let words = self.words.get_mut(..n).ok_or(EINVAL)?;
        if let Some(last) = words.last_mut() {
            last.write([0; WORD]);
        }
        // SAFETY: `words` is `n` exclusively borrowed `MaybeUninit<Word>`s, which have the
        // layout of `n * WORD` `MaybeUninit<u8>`s; the borrow of `words` ends with `bytes`'s.
        let bytes = unsafe {
            slice::from_raw_parts_mut(words.as_mut_ptr().cast::<MaybeUninit<u8>>(), n * WORD)
        };
        // `n * WORD >= len`: the check only keeps a panic path out of the code.
        reader.read_raw(bytes.get_mut(..len).ok_or(EINVAL)?)?;
        // INVARIANT: `read_raw` succeeded, so it wrote all of `bytes[..len]`, and the rest of
        // the last word was zeroed: the first `n <= N` words are initialised.
        self.filled = n;
        Ok(())
    }
}
