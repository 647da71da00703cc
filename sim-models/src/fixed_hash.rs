//! The hasher of the models' hash maps: fixed-seeded, so no map holds OS-seeded state,
//! and far cheaper per key than `std`'s SipHash. The maps here are `IndexMap`s, which
//! iterate in insertion order whatever the hasher, so the hasher never decides an order.

use std::hash::{BuildHasherDefault, Hasher};

use sim_runtime::hash::StableHasher;

/// [`StableHasher`] as a `std::hash::Hasher`.
#[derive(Clone, Default)]
pub struct FixedHasher(StableHasher);

impl Hasher for FixedHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_bytes(bytes);
    }
}

/// The `BuildHasher` for maps keyed with [`FixedHasher`].
pub type FixedState = BuildHasherDefault<FixedHasher>;
