// SPDX-License-Identifier: GPL-2.0

//! The fuzzer's random numbers: `fastrand` seeded per worker, so that the same `--seed` gives
//! the same operation sequence in every worker and a failure can be replayed.

/// A seeded generator for one worker (or fork child).
#[derive(Clone)]
pub struct Rng(fastrand::Rng);

impl Rng {
    /// A generator for `seed` mixed with a stream number (worker, fork child ...).
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng(fastrand::Rng::with_seed(
            seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.0.usize(lo..=hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(42, 7), Rng::new(42, 7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(3, 9);
            assert!((3..=9).contains(&x));
            b.range(3, 9);
        }
        assert_ne!(Rng::new(42, 7).next_u64(), Rng::new(42, 8).next_u64());
    }
}
