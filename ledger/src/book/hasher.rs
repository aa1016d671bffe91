//! A fast hasher for the book's integer keys (`TxnId`, `BalanceId`, `ProfileId`,
//! `CardToken`).
//!
//! The standard SipHash costs ~15-20 ns per lookup, and one hold plus its capture does about
//! eight lookups: it would eat most of the 100 ns budget on its own. The keys are ids that
//! the engine allocates (sequential numbers, random UUIDs), not strings chosen by an outside
//! party, so the flooding attack that SipHash defends against does not apply here. The mix
//! is a rotate-xor-multiply per word (as in rustc's FxHash); `finish` rotates so that the
//! well-mixed high bits of the product land in the low bits that pick a bucket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by an id, with [`IdHasher`]. Exported so the engine's own id-keyed
/// maps get the same speed; keys must be engine-allocated ids, as above.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An odd 64-bit constant with well-spread bits (the one FxHash uses).
const MIX: u64 = 0x517c_c1b7_2722_0a95;

/// The hasher behind [`IdMap`]: a rotate-xor-multiply mix, several times faster than
/// SipHash, and safe only for keys an outside party cannot choose (engine-allocated ids).
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher {
    state: u64,
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.state.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(value: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(value)
    }

    #[test]
    fn sequential_ids_spread_over_buckets() {
        // The low 10 bits pick the bucket in a table of 1024: sequential ids must not pile up.
        let mut buckets = [0u32; 1024];
        for id in 0..8192u64 {
            buckets[(hash_of(id) & 1023) as usize] += 1;
        }
        let fullest = buckets.iter().max().copied().unwrap_or(0);
        assert!(
            fullest <= 24,
            "fullest bucket holds {fullest} of 8 on average"
        );
        assert_ne!(hash_of(1u128 << 64), hash_of(1u128));
    }
}
