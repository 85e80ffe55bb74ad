// SPDX-License-Identifier: GPL-2.0

//! Tests of `kernel/abstractions/uaccess.rs`'s word copies (compiled unchanged over the
//! `kernel` stand-in's `copy_from_user()` and `copy_to_user()`): a message read from user
//! memory into words, exactly its bytes and then zeros, and words copied out, exactly the
//! length asked for; their errors.

use crate::{
    abstractions::uaccess::{copy_words_to_user, read_words_from_user, user_ptr},
    record_tests::{bad_address, pattern},
    uapi::{MAX_MESSAGE_LEN, RECORD_WORDS},
};
use kernel::error::code::{EFAULT, EINVAL};

/// `words`' bytes in memory order.
fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_ne_bytes()).collect()
}

#[test]
fn words_read_from_user_memory_are_the_bytes_then_zeros() {
    // The source goes on past every length with bytes that are not zero: a copy of more than
    // `len` bytes would show.
    let source = pattern(MAX_MESSAGE_LEN + 8, 0x40);
    for len in 1..=MAX_MESSAGE_LEN {
        let words = read_words_from_user::<RECORD_WORDS>(user_ptr(source.as_ptr()), len).unwrap();
        let read = bytes(&words);
        assert_eq!(&read[..len], &source[..len], "length {len}");
        assert!(
            read[len..].iter().all(|&byte| byte == 0),
            "length {len}: not zero after the message: {read:x?}"
        );
    }
}

#[test]
fn a_length_the_words_cannot_hold_is_einval() {
    let source = pattern(MAX_MESSAGE_LEN + 8, 1);
    let at = user_ptr(source.as_ptr());
    assert_eq!(
        read_words_from_user::<RECORD_WORDS>(at, 0).err(),
        Some(EINVAL)
    );
    assert_eq!(
        read_words_from_user::<RECORD_WORDS>(at, MAX_MESSAGE_LEN + 1).err(),
        Some(EINVAL)
    );
    assert_eq!(read_words_from_user::<1>(at, 9).err(), Some(EINVAL));
    assert_eq!(
        bytes(&read_words_from_user::<1>(at, 8).unwrap()),
        &source[..8]
    );
    // Checked before user memory is touched.
    assert_eq!(
        read_words_from_user::<1>(bad_address(), 9).err(),
        Some(EINVAL)
    );
}

#[test]
fn a_bad_source_is_efault() {
    for len in [1, 8, 9, MAX_MESSAGE_LEN] {
        let result = read_words_from_user::<RECORD_WORDS>(bad_address(), len);
        assert_eq!(result.err(), Some(EFAULT), "length {len}");
    }
}

#[test]
fn words_copied_to_user_memory_are_exactly_the_length() {
    let source = pattern(MAX_MESSAGE_LEN, 3);
    let words =
        read_words_from_user::<RECORD_WORDS>(user_ptr(source.as_ptr()), MAX_MESSAGE_LEN).unwrap();
    for len in 0..=MAX_MESSAGE_LEN {
        let mut buffer = vec![0u8; MAX_MESSAGE_LEN + 8];
        copy_words_to_user(user_ptr(buffer.as_mut_ptr()), &words, len).unwrap();
        assert_eq!(&buffer[..len], &source[..len], "length {len}");
        assert!(
            buffer[len..].iter().all(|&byte| byte == 0),
            "length {len}: copied past it"
        );
    }
    let mut buffer = vec![0u8; MAX_MESSAGE_LEN + 8];
    let too_long = copy_words_to_user(user_ptr(buffer.as_mut_ptr()), &words, MAX_MESSAGE_LEN + 1);
    assert_eq!(too_long.err(), Some(EINVAL));
    assert!(
        buffer.iter().all(|&byte| byte == 0),
        "copied although refused"
    );
    assert_eq!(
        copy_words_to_user(bad_address(), &words, 1).err(),
        Some(EFAULT)
    );
}
