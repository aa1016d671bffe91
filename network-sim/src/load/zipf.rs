//! Seeded randomness for the load generator: a ChaCha8 stream with its own small, fixed
//! reductions, and a Zipf sampler for card popularity.
//!
//! Only the ChaCha8 key stream of `rand_chacha` is used; ranges, weighted choices and the
//! Zipf draw are computed here with integer arithmetic, so a seed names the same traffic
//! whatever `rand`'s own sampling algorithms become in later versions.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded random stream with integer-only helpers.
#[derive(Debug, Clone)]
pub struct Dice {
    rng: ChaCha8Rng,
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// An independent stream for one purpose (population, traffic ...), so adding a draw in
    /// one place does not shift every draw in the others.
    pub fn derived(seed: u64, purpose: u64) -> Dice {
        // SplitMix64's finaliser spreads nearby (seed, purpose) pairs over the key space.
        let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Dice::new(z ^ (z >> 31))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `0..n` (`0` when `n` is 0), by a widening multiply: the bias is below
    /// `n / 2^64`, far under anything a load test could notice.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`; `low` when the range is empty.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.below(high - low + 1)
    }

    /// Uniform index into a slice of `len` items; 0 for an empty slice.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// An index drawn in proportion to `weights`; `None` when they are all zero.
    pub fn weighted(&mut self, weights: &[u32]) -> Option<usize> {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return None;
        }
        let mut left = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if left < u64::from(w) {
                return Some(i);
            }
            left -= u64::from(w);
        }
        None
    }

    /// Fisher-Yates, driven by this stream.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// The most items a [`Zipf`] sampler ranks: its table takes 8 bytes per item.
pub const ZIPF_ITEMS_MAX: usize = 10_000_000;
/// Weight of rank 1; rank k weighs about `ZIPF_SCALE / k^s`. With 2^40 even the last of ten
/// million items keeps a weight of tens of thousands, so rounding never empties a rank.
const ZIPF_SCALE: f64 = (1u64 << 40) as f64;

/// Zipf's law over ranks `0..n`: rank `k` (0-based) is drawn with probability proportional
/// to `1 / (k + 1)^s`. Built once (a cumulative table), then each draw is one binary search.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// `cumulative[k]` = sum of the weights of ranks `0..=k`.
    cumulative: Vec<u64>,
}

/// Why a sampler could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZipfError {
    #[error("a Zipf sampler needs 1 to {ZIPF_ITEMS_MAX} items, got {0}")]
    Items(usize),
    #[error("the Zipf exponent must be a finite number from 0 to 5, got {0}")]
    Exponent(f64),
}

impl Zipf {
    /// `exponent` 0 is uniform; 1 is the classic law; larger is more skewed. Weights come
    /// from floating point, but once the table is built every draw is integer arithmetic.
    pub fn new(items: usize, exponent: f64) -> Result<Zipf, ZipfError> {
        if items == 0 || items > ZIPF_ITEMS_MAX {
            return Err(ZipfError::Items(items));
        }
        if !exponent.is_finite() || !(0.0..=5.0).contains(&exponent) {
            return Err(ZipfError::Exponent(exponent));
        }
        let mut cumulative = Vec::with_capacity(items);
        let mut total = 0u64;
        for rank in 1..=items {
            let weight = (ZIPF_SCALE / (rank as f64).powf(exponent)).max(1.0) as u64;
            total += weight;
            cumulative.push(total);
        }
        Ok(Zipf { cumulative })
    }

    pub fn items(&self) -> usize {
        self.cumulative.len()
    }

    /// A rank in `0..items`, rank 0 the most likely.
    pub fn sample(&self, dice: &mut Dice) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let point = dice.below(total);
        // The first rank whose cumulative weight passes the point.
        self.cumulative.partition_point(|&c| c <= point)
    }

    /// The probability of `rank`, for tests and reports.
    pub fn probability(&self, rank: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1) as f64;
        let before = if rank == 0 {
            0
        } else {
            self.cumulative[rank - 1]
        };
        (self.cumulative[rank] - before) as f64 / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let a: Vec<u64> = (0..8).map(|_| Dice::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Dice::derived(7, 1);
        let mut y = Dice::derived(7, 2);
        assert_ne!(x.next_u64(), y.next_u64());
        let mut again = Dice::derived(7, 1);
        let mut x = Dice::derived(7, 1);
        assert_eq!(x.next_u64(), again.next_u64());
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut d = Dice::new(1);
        for n in [1u64, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(d.below(n) < n);
            }
        }
        assert_eq!(d.below(0), 0);
        assert_eq!(d.between(5, 5), 5);
        assert_eq!(d.between(9, 3), 9);
        let seen: std::collections::BTreeSet<u64> = (0..500).map(|_| d.between(3, 6)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    }

    #[test]
    fn weighted_follows_weights_and_skips_zeros() {
        let mut d = Dice::new(3);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[d.weighted(&[1, 0, 3]).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        // Expected 7500 and 22500; a 5% band is many standard deviations wide.
        assert!((7_100..7_900).contains(&counts[0]), "{counts:?}");
        assert_eq!(d.weighted(&[0, 0]), None);
        assert_eq!(d.weighted(&[]), None);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        Dice::new(9).shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn zipf_frequencies_follow_the_law() {
        let zipf = Zipf::new(100, 1.0).unwrap();
        let mut d = Dice::new(11);
        let draws = 200_000;
        let mut counts = vec![0u32; 100];
        for _ in 0..draws {
            counts[zipf.sample(&mut d)] += 1;
        }
        // H(100) = 5.187: rank 0 has p = 0.1928, rank 1 half that, rank 9 a tenth.
        let p0 = f64::from(counts[0]) / f64::from(draws);
        assert!((p0 - 0.1928).abs() < 0.005, "p0 = {p0}");
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((ratio - 2.0).abs() < 0.1, "rank 0 / rank 1 = {ratio}");
        let ratio = f64::from(counts[0]) / f64::from(counts[9]);
        assert!((ratio - 10.0).abs() < 1.0, "rank 0 / rank 9 = {ratio}");
        assert!((zipf.probability(0) - 0.1928).abs() < 0.0005);
        assert!(counts.iter().all(|&c| c > 0), "every rank is drawn");
    }

    #[test]
    fn zipf_edge_cases() {
        let one = Zipf::new(1, 1.0).unwrap();
        let mut d = Dice::new(0);
        assert!((0..100).all(|_| one.sample(&mut d) == 0));
        let uniform = Zipf::new(4, 0.0).unwrap();
        assert!((uniform.probability(3) - 0.25).abs() < 1e-12);
        assert_eq!(Zipf::new(0, 1.0).unwrap_err(), ZipfError::Items(0));
        assert!(matches!(
            Zipf::new(10, f64::NAN),
            Err(ZipfError::Exponent(_))
        ));
        assert!(Zipf::new(10, -1.0).is_err());
        assert!(Zipf::new(ZIPF_ITEMS_MAX + 1, 1.0).is_err());
    }
}
