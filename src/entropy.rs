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
    hyphenated(&b)
}

/// Request ids in the version-4 UUID layout, unique within this process and
/// unpredictable from one start to the next, without asking the operating system
/// for randomness on every request: a `getrandom` system call per request was 1.4%
/// of a filtered GET's samples, and the rule is no per-request system call
/// that is not needed. They are not secret (they are echoed in responses and logs)
/// and nothing grants anything by one; what they must be is distinct, so each ties
/// one request's log lines and change events together.
///
/// Distinct by construction: the `n`th id's first 64 free bits are a bijection of
/// `n` (a random offset, then SplitMix64's finaliser, which is invertible), so no two
/// ids of one process repeat before 2^64 requests. The other 58 bits hash those
/// with a second key. Another process, or this one restarted, starts from fresh keys.
pub struct RequestIds {
    offset: u64,
    tail_key: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A sequence keyed from `entropy`.
    pub fn new(entropy: &dyn Entropy) -> Self {
        let mut b = [0u8; 16];
        entropy.fill(&mut b);
        let [offset, tail_key] =
            [&b[..8], &b[8..]].map(|half| u64::from_le_bytes(half.try_into().unwrap_or_default()));
        RequestIds {
            offset,
            tail_key,
            next: AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let head = mix(n.wrapping_add(self.offset));
        let tail = mix(head ^ self.tail_key);
        let mut b = [0u8; 16];
        // The head's 64 bits fill the places the version and variant leave free
        // in the first nine bytes: 48 + 4 + 8 + 4. The tail's 58 follow: two bits
        // of its last byte beside the variant, then its first seven bytes.
        b[..6].copy_from_slice(&head.to_be_bytes()[..6]);
        b[6] = 0x40 | ((head >> 12) & 0x0f) as u8;
        b[7] = (head >> 4) as u8;
        b[8] = 0x80 | ((tail as u8) & 0x30) | (head & 0x0f) as u8;
        b[9..].copy_from_slice(&tail.to_be_bytes()[..7]);
        hyphenated(&b)
    }
}

/// SplitMix64's finaliser: a bijection on `u64` that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `b` in the 8-4-4-4-12 hexadecimal form of a UUID, built in one allocation.
fn hyphenated(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
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
    hyphenated(&b)
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

    /// The 16 bytes of a UUID in its text form, checking where the hyphens are.
    fn bytes(id: &str) -> Vec<u8> {
        assert_eq!(id.len(), 36, "{id}");
        for (i, c) in id.char_indices() {
            assert_eq!(c == '-', matches!(i, 8 | 13 | 18 | 23), "{id}");
        }
        hex::decode(id.replace('-', "")).unwrap()
    }

    #[test]
    fn hyphenated_is_the_uuid_text_form() {
        let b: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(hyphenated(&b), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn request_ids_are_version_4_uuids_and_never_repeat() {
        let ids = RequestIds::new(&SeededEntropy::new(3));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let id = ids.next();
            assert_eq!(bytes(&id).len(), 16, "{id}");
            assert_eq!(&id[14..15], "4", "version: {id}");
            assert!(
                matches!(&id[19..20], "8" | "9" | "a" | "b"),
                "variant: {id}"
            );
            assert!(seen.insert(id));
        }
        // Another key gives another sequence.
        let other = RequestIds::new(&SeededEntropy::new(4));
        assert!(!seen.contains(&other.next()));
    }

    proptest::proptest! {
        /// The head's 64 bits can be read back out of the id: whatever the offset,
        /// two counters never give the same id.
        #[test]
        fn the_head_survives_the_layout(offset: u64, tail_key: u64, n: u64) {
            let ids = RequestIds { offset, tail_key, next: AtomicU64::new(n) };
            let b = bytes(&ids.next());
            let mut head = [0u8; 8];
            head[..6].copy_from_slice(&b[..6]);
            let low16 = (u16::from(b[6] & 0x0f) << 12) | (u16::from(b[7]) << 4) | u16::from(b[8] & 0x0f);
            head[6..].copy_from_slice(&low16.to_be_bytes());
            proptest::prop_assert_eq!(u64::from_be_bytes(head), mix(n.wrapping_add(offset)));
        }
    }
}
