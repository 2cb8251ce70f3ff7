//! Randomness as an input, like time ([`crate::clock`]).
//!
//! The node draws every secret it makes (nonces, DKG and repair randomness, the TLS
//! identity key, attestation challenges) from the [`Entropy`] it was started with: the
//! operating system's ([`OsEntropy`]) in production, a seeded generator
//! ([`SeededEntropy`]) in a test that wants a reproducible run. [`Rng`] is the
//! `rand_core` view of it that FROST and the key generators take.

use rand_core::{CryptoRng, RngCore, SeedableRng};
use std::sync::{Arc, Mutex};

/// A source of random bytes.
pub trait Entropy: Send + Sync {
    /// Fill `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);
}

/// The operating system's generator (`getrandom`): what a node runs with.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, dest: &mut [u8]) {
        rand_core::OsRng.fill_bytes(dest);
    }
}

/// A ChaCha generator from a fixed seed: the same seed gives the same bytes, so a
/// test can replay a run exactly. Never for production: the seed is the secret.
pub struct SeededEntropy(Mutex<rand::rngs::StdRng>);

impl SeededEntropy {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl core::fmt::Debug for SeededEntropy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SeededEntropy(<redacted>)")
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, dest: &mut [u8]) {
        match self.0.lock() {
            Ok(mut g) => g.fill_bytes(dest),
            Err(poisoned) => poisoned.into_inner().fill_bytes(dest),
        }
    }
}

/// An [`Entropy`] as a `rand_core` generator (cheap to clone: it shares the source).
#[derive(Clone)]
pub struct Rng(Arc<dyn Entropy>);

impl Rng {
    /// A generator drawing from `source`.
    pub fn new(source: Arc<dyn Entropy>) -> Self {
        Self(source)
    }
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rng")
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

// Both sources are cryptographically secure (getrandom; ChaCha12 from a seed).
impl CryptoRng for Rng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_another_seed_does_not() {
        let draw = |seed| {
            let mut r = Rng::new(Arc::new(SeededEntropy::new(seed)));
            let mut b = [0u8; 32];
            r.fill_bytes(&mut b);
            (b, r.next_u64())
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn the_os_source_gives_different_bytes_each_time() {
        let mut r = Rng::new(Arc::new(OsEntropy));
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        r.fill_bytes(&mut a);
        r.fill_bytes(&mut b);
        assert_ne!(a, b);
    }
}
