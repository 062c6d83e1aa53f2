//! Randomness as a parameter, so tests can make it deterministic.
/// A source of random bytes.
pub trait Entropy: Send + Sync {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

use std::sync::Arc;
use std::sync::Mutex;
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

/// Bytes drawn from another source a page at a time, for values made on every
/// request that are not secrets (request ids): one `getrandom` call per request cost
/// more than making the rest of the id. Keys, nonces and tokens take their bytes
/// straight from the source.
pub struct Buffered {
    inner: Arc<dyn Entropy>,
    /// Bytes not handed out yet, from `.1` on.
    page: Mutex<([u8; PAGE], usize)>,
}

const PAGE: usize = 1024;

impl Buffered {
    /// Draws from `inner`; the first page on first use.
    pub fn new(inner: Arc<dyn Entropy>) -> Self {
        Buffered {
            inner,
            page: Mutex::new(([0; PAGE], PAGE)),
        }
    }
}

impl Entropy for Buffered {
    fn fill(&self, buf: &mut [u8]) {
        let Ok(mut page) = self.page.lock() else {
            // A poisoned lock cannot be trusted to hold unused bytes.
            self.inner.fill(buf);
            return;
        };
        let (bytes, at) = &mut *page;
        if buf.len() > PAGE {
            self.inner.fill(buf);
            return;
        }
        if PAGE - *at < buf.len() {
            self.inner.fill(bytes);
            *at = 0;
        }
        buf.copy_from_slice(&bytes[*at..*at + buf.len()]);
        // Handed-out bytes do not stay behind to be read again.
        bytes[*at..*at + buf.len()].fill(0);
        *at += buf.len();
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
    fn buffered_hands_out_the_source_stream_in_order_a_page_per_draw() {
        struct Counting(SeededEntropy, AtomicU64);
        impl Entropy for Counting {
            fn fill(&self, buf: &mut [u8]) {
                self.1.fetch_add(1, Ordering::Relaxed);
                self.0.fill(buf);
            }
        }
        let source = Arc::new(Counting(SeededEntropy::new(3), AtomicU64::new(0)));
        let buffered = Buffered::new(Arc::clone(&source) as Arc<dyn Entropy>);
        let mut expected = vec![0u8; PAGE];
        SeededEntropy::new(3).fill(&mut expected);
        let mut got = Vec::new();
        for _ in 0..PAGE / 16 {
            let mut id = [0u8; 16];
            buffered.fill(&mut id);
            got.extend_from_slice(&id);
        }
        assert_eq!(got, expected);
        assert_eq!(
            source.1.load(Ordering::Relaxed),
            1,
            "one draw for a page of ids"
        );
        let mut next = [0u8; 16];
        buffered.fill(&mut next);
        assert_eq!(source.1.load(Ordering::Relaxed), 2);
        assert_ne!(next, [0u8; 16]);
    }

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
