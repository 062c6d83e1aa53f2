//! Randomness as a parameter, so tests can make it deterministic.
/// A source of random bytes.
pub trait Entropy: Send + Sync {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

use std::sync::atomic::{AtomicU64, Ordering};

/// The operating system's CSPRNG (`getrandom`); the only source for production.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl OsEntropy {
    /// Check once, at startup, that the OS generator works, so a broken one is a clean error.
    pub fn probe() -> Result<(), getrandom::Error> {
        getrandom::fill(&mut [0u8; 16])
    }
}

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // `Entropy::fill` cannot report failure, and returning with `buf` unfilled
        // would hand out predictable salts and repeated AES-GCM nonces (nonce reuse
        // leaks the GHASH key and lets an attacker forge ciphertexts). A panic could be
        // caught and the process carry on, so the only safe exit is to stop at once.
        // On Linux this cannot happen after `OsEntropy::probe` has succeeded.
        if let Err(err) = getrandom::fill(buf) {
            eprintln!("fatal: the operating system random generator failed ({err}); aborting");
            std::process::abort();
        }
    }
}

/// Deterministic SplitMix64 stream for tests. NOT random: never use it in production.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
}

impl SeededEntropy {
    /// A stream fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// A random version-4 UUID string from `entropy`.
pub fn uuid_v4(entropy: &dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A version-7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits.
/// Ids created close together sort together, so inserting them touches the same
/// index pages instead of a random page per row.
pub fn uuid_v7(unix_ms: u64, entropy: &dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b[6..]);
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_version_and_variant_and_v7_sorts_by_time() {
        let e = SeededEntropy::new(7);
        let v4 = uuid_v4(&e);
        assert_eq!(&v4[14..15], "4");
        let a = uuid_v7(1_700_000_000_000, &e);
        let b = uuid_v7(1_700_000_000_001, &e);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(a < b);
        assert_eq!(a.len(), 36);
    }
}
