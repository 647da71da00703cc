//! A small, stable 64-bit hasher for fingerprints and seed derivation.
//!
//! `std`'s `DefaultHasher` is not guaranteed stable across releases and `RandomState`
//! is seeded by the OS, so neither may touch a fingerprint. This is an FxHash-style
//! word mixer with a strong finaliser: fast on the hot path, identical on every run.

/// SplitMix64's finaliser: a bijective mix with good avalanche.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A running stable hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StableHasher {
    state: u64,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    pub const fn new() -> Self {
        StableHasher {
            state: 0xcbf2_9ce4_8422_2325,
        }
    }

    pub const fn with_state(state: u64) -> Self {
        StableHasher { state }
    }

    #[inline]
    pub fn write_u64(&mut self, x: u64) {
        self.state = (self.state.rotate_left(5) ^ x).wrapping_mul(K);
    }

    #[inline]
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        // The length keeps "ab" + "" apart from "a" + "b".
        self.write_u64(tail_le(chunks.remainder()) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    pub fn write_str(&mut self, s: &str) {
        self.write_bytes(s.as_bytes());
    }

    /// The hash so far, finalised.
    #[inline]
    pub fn finish(&self) -> u64 {
        mix64(self.state)
    }
}

/// The last 0 to 7 bytes of an input, zero-padded, as a little-endian word: the same
/// value as copying them into a zeroed `[u8; 8]`, read with at most two overlapping loads.
/// A copy of a variable length compiles to a `memcpy` call, and every trace event hashes
/// a few short strings (names, message kinds) whose tails land here.
#[inline(always)]
fn tail_le(rest: &[u8]) -> u64 {
    let n = rest.len();
    debug_assert!(n < 8);
    if n >= 4 {
        let lo = u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        let hi = u64::from(u32::from_le_bytes([
            rest[n - 4],
            rest[n - 3],
            rest[n - 2],
            rest[n - 1],
        ]));
        // The two loads overlap in the middle, where both hold the same bytes.
        lo | (hi << (8 * (n - 4)))
    } else if n > 0 {
        u64::from(rest[0])
            | (u64::from(rest[n / 2]) << (8 * (n / 2)))
            | (u64::from(rest[n - 1]) << (8 * (n - 1)))
    } else {
        0
    }
}

/// Hashes a string with the stable hasher.
pub fn hash_str(s: &str) -> u64 {
    let mut h = StableHasher::new();
    h.write_str(s);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_words_match_a_zero_padded_copy() {
        let bytes: Vec<u8> = (1..=7u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        for n in 0..8 {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(tail_le(&bytes[..n]), u64::from_le_bytes(w), "length {n}");
        }
    }

    #[test]
    fn stable_values_do_not_change() {
        // Pinned: a change here silently invalidates every recorded fingerprint.
        assert_eq!(hash_str(""), 0x4745_ff7b_4dbc_ec03);
        assert_eq!(hash_str("sim-runtime.scheduler"), 0x8ec9_e83f_d33a_939e);
        assert_ne!(hash_str("ab"), hash_str("a"));
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
    }
}
