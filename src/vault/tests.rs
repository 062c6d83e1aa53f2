use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::entropy::{OsEntropy, SeededEntropy};

const AAD: &[u8] = b"secret:imanage.client_secret";
const OTHER_AAD: &[u8] = b"secret:imanage.refresh_token";

fn fast() -> KdfParams {
    KdfParams {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    }
}

fn phrase_text(seed: char) -> String {
    std::iter::repeat_n(seed, Passphrase::MIN_CHARS).collect()
}

fn phrase(seed: char) -> Passphrase {
    Passphrase::new(phrase_text(seed)).unwrap()
}

fn new_vault(seed: u64) -> (VaultHeader, VaultKey, SeededEntropy) {
    let rng = SeededEntropy::new(seed);
    let (header, key) = Vault::init(&phrase('a'), fast(), &rng).unwrap();
    (header, key, rng)
}

#[test]
fn round_trip_and_unlock() {
    let (header, key, rng) = new_vault(1);
    let sealed = key.seal(AAD, b"s3cr3t-client-secret", &rng).unwrap();
    assert_eq!(sealed.len(), SEAL_OVERHEAD + 20);
    assert_eq!(sealed[0], SEAL_VERSION);
    assert_eq!(
        key.open(AAD, &sealed).unwrap().as_slice(),
        b"s3cr3t-client-secret"
    );

    let header = VaultHeader::from_json(&header.to_json().unwrap()).unwrap();
    let again = Vault::unlock(&phrase('a'), &header).unwrap();
    assert_eq!(
        again.open(AAD, &sealed).unwrap().as_slice(),
        b"s3cr3t-client-secret"
    );

    let empty = key.seal(AAD, b"", &rng).unwrap();
    assert!(key.open(AAD, &empty).unwrap().is_empty());
}

#[test]
fn string_helpers() {
    let (_, key, rng) = new_vault(2);
    let token = SecretString::from("ya29.a0Af-ünïcode");
    let sealed = key.seal_str(AAD, &token, &rng).unwrap();
    assert_eq!(
        key.open_string(AAD, &sealed).unwrap().expose_secret(),
        token.expose_secret()
    );
    let binary = key.seal(AAD, &[0xff, 0xfe], &rng).unwrap();
    assert_eq!(
        key.open_string(AAD, &binary).unwrap_err(),
        VaultError::NotUtf8
    );
}

#[test]
fn wrong_passphrase_detected_by_key_check() {
    let (header, _, _) = new_vault(3);
    let err = Vault::unlock(&phrase('b'), &header).unwrap_err();
    assert_eq!(err, VaultError::WrongPassphrase);
    let msg = err.to_string();
    assert!(msg.contains("initialised with") && msg.contains("scim-bridge vault rotate"));
}

#[test]
fn altered_header_is_refused() {
    let (header, _, _) = new_vault(4);

    let mut salted = header.clone();
    salted.salt[0] ^= 1;
    assert_eq!(
        Vault::unlock(&phrase('a'), &salted).unwrap_err(),
        VaultError::WrongPassphrase
    );

    let mut costs = header.clone();
    costs.params.t_cost = 2;
    assert_eq!(
        Vault::unlock(&phrase('a'), &costs).unwrap_err(),
        VaultError::WrongPassphrase
    );

    let mut future = header.clone();
    future.version = 2;
    assert!(matches!(
        Vault::unlock(&phrase('a'), &future),
        Err(VaultError::UnsupportedHeaderVersion { found: 2, .. })
    ));

    let mut chopped = header.clone();
    chopped.key_check.truncate(5);
    assert!(matches!(
        Vault::unlock(&phrase('a'), &chopped),
        Err(VaultError::MalformedHeader(_))
    ));

    let mut huge = header;
    huge.params.m_cost_kib = u32::MAX;
    assert!(matches!(
        Vault::unlock(&phrase('a'), &huge),
        Err(VaultError::InvalidKdfParams {
            name: "m_cost_kib",
            ..
        })
    ));

    assert!(matches!(
        VaultHeader::from_json(
            r#"{"version":1,"salt":"AAAA","params":{"m_cost_kib":1024,"t_cost":1,"p_cost":1},"key_check":""}"#
        ),
        Err(VaultError::MalformedHeader(_))
    ));
}

#[test]
fn header_json_uses_base64() {
    let (header, _, _) = new_vault(5);
    let json = header.to_json().unwrap();
    assert!(json.contains(r#""salt":""#), "{json}");
    assert_eq!(VaultHeader::from_json(&json).unwrap(), header);
}

#[test]
fn every_flipped_bit_and_byte_fails() {
    let (_, key, rng) = new_vault(6);
    let sealed = key.seal(AAD, b"refresh-token-value", &rng).unwrap();
    for pos in 0..sealed.len() {
        for mask in (0..8).map(|b| 1u8 << b).chain([0xff]) {
            let mut bad = sealed.clone();
            bad[pos] ^= mask;
            let err = key.open(AAD, &bad).unwrap_err();
            assert!(
                matches!(err, VaultError::Tampered | VaultError::Corrupt(_)),
                "pos {pos} mask {mask:#x}: {err:?}"
            );
        }
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(key.open(AAD, &longer).unwrap_err(), VaultError::Tampered);
}

#[test]
fn every_truncation_fails() {
    let (_, key, rng) = new_vault(7);
    let sealed = key.seal(AAD, b"refresh-token-value", &rng).unwrap();
    for len in 0..sealed.len() {
        let err = key.open(AAD, &sealed[..len]).unwrap_err();
        let expected = if len < SEAL_OVERHEAD {
            matches!(err, VaultError::Corrupt(_))
        } else {
            err == VaultError::Tampered
        };
        assert!(expected, "len {len}: {err:?}");
    }
}

#[test]
fn aad_binds_secret_to_its_row() {
    let (_, key, rng) = new_vault(8);
    let sealed = key.seal(AAD, b"value", &rng).unwrap();
    assert_eq!(
        key.open(OTHER_AAD, &sealed).unwrap_err(),
        VaultError::Tampered
    );
    assert_eq!(key.open(b"", &sealed).unwrap_err(), VaultError::Tampered);
    // The key check's AAD is reserved and does not open secrets either.
    assert_eq!(
        key.open(KEY_CHECK_AAD, &sealed).unwrap_err(),
        VaultError::Tampered
    );
}

#[test]
fn another_key_cannot_open() {
    let (_, key, rng) = new_vault(9);
    let (_, other, _) = new_vault(10);
    let sealed = key.seal(AAD, b"value", &rng).unwrap();
    assert_eq!(other.open(AAD, &sealed).unwrap_err(), VaultError::Tampered);
}

#[test]
fn passphrase_length_is_counted_in_chars() {
    // The guide: "a passphrase of over 100 characters". Exactly 100 is not over.
    let short: String = std::iter::repeat_n('é', 100).collect(); // 200 bytes
    let err = Passphrase::new(short.clone()).unwrap_err();
    assert_eq!(
        err,
        VaultError::PassphraseTooShort {
            min: 101,
            given: 100
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("over 100 characters") && msg.contains("has 100") && !msg.contains('é'),
        "{msg}"
    );

    assert!(Passphrase::new(format!("{short}é")).is_ok());
    assert!(Passphrase::new("x".repeat(100)).is_err());
    assert!(Passphrase::new("x".repeat(101)).is_ok());
}

#[test]
fn one_trailing_newline_is_trimmed() {
    // 100 chars + newline is still too short: the newline is not part of it.
    assert!(matches!(
        Passphrase::new(format!("{}\n", "x".repeat(100))),
        Err(VaultError::PassphraseTooShort { given: 100, .. })
    ));
    let rng = SeededEntropy::new(11);
    let (header, _) = Vault::init(&phrase('a'), fast(), &rng).unwrap();
    for variant in ["\n", "\r\n"] {
        let from_file = Passphrase::new(format!("{}{variant}", phrase_text('a'))).unwrap();
        assert!(Vault::unlock(&from_file, &header).is_ok(), "{variant:?}");
    }
    // Only one newline goes; a second is part of the passphrase.
    let two = Passphrase::new(format!("{}\n\n", phrase_text('a'))).unwrap();
    assert_eq!(
        Vault::unlock(&two, &header).unwrap_err(),
        VaultError::WrongPassphrase
    );
}

#[test]
fn debug_output_is_redacted() {
    let (_, key, _) = new_vault(12);
    let p = phrase('q');
    assert_eq!(format!("{key:?}"), "VaultKey([redacted])");
    assert_eq!(format!("{p:?}"), "Passphrase([redacted])");
    assert!(!format!("{p:?} {key:#?}").contains("qqq"));
}

#[test]
fn nonces_differ_between_seals() {
    let (_, key, rng) = new_vault(13);
    let a = key.seal(AAD, b"same", &rng).unwrap();
    let b = key.seal(AAD, b"same", &rng).unwrap();
    assert_ne!(a[1..13], b[1..13]);
    assert_ne!(a, b);

    let os = OsEntropy;
    OsEntropy::probe().unwrap();
    let c = key.seal(AAD, b"same", &os).unwrap();
    let d = key.seal(AAD, b"same", &os).unwrap();
    assert_ne!(c[1..13], d[1..13]);
}

#[test]
fn deterministic_with_seeded_entropy() {
    let (h1, k1, r1) = new_vault(14);
    let (h2, k2, r2) = new_vault(14);
    assert_eq!(h1, h2);
    assert_eq!(
        k1.seal(AAD, b"v", &r1).unwrap(),
        k2.seal(AAD, b"v", &r2).unwrap()
    );
    let (h3, _, _) = new_vault(15);
    assert_ne!(h1.salt, h3.salt);
}

#[test]
fn rekey_moves_secret_to_new_key() {
    let rng = SeededEntropy::new(16);
    let (_, old) = Vault::init(&phrase('a'), fast(), &rng).unwrap();
    let (new_header, new) = Vault::init(&phrase('b'), fast(), &rng).unwrap();
    let sealed = old.seal(AAD, b"token", &rng).unwrap();

    let moved = rekey(&old, &new, AAD, &sealed, &rng).unwrap();
    assert_eq!(new.open(AAD, &moved).unwrap().as_slice(), b"token");
    assert_eq!(old.open(AAD, &moved).unwrap_err(), VaultError::Tampered);
    let reopened = Vault::unlock(&phrase('b'), &new_header).unwrap();
    assert_eq!(reopened.open(AAD, &moved).unwrap().as_slice(), b"token");

    // A row that does not open under the old key is reported, not rewritten.
    assert_eq!(
        rekey(&old, &new, OTHER_AAD, &sealed, &rng).unwrap_err(),
        VaultError::Tampered
    );
}

#[test]
fn kdf_params_bounds() {
    assert!(KdfParams::default().validate().is_ok());
    assert!(fast().validate().is_ok());
    let cases = [
        (
            KdfParams {
                m_cost_kib: 1023,
                ..fast()
            },
            "m_cost_kib",
        ),
        (
            KdfParams {
                t_cost: 0,
                ..fast()
            },
            "t_cost",
        ),
        (
            KdfParams {
                t_cost: 65,
                ..fast()
            },
            "t_cost",
        ),
        (
            KdfParams {
                p_cost: 0,
                ..fast()
            },
            "p_cost",
        ),
        (
            KdfParams {
                p_cost: 65,
                ..fast()
            },
            "p_cost",
        ),
    ];
    for (params, field) in cases {
        let err = params.validate().unwrap_err();
        assert!(
            matches!(err, VaultError::InvalidKdfParams { name, .. } if name == field),
            "{err}"
        );
        assert!(matches!(
            Vault::init(&phrase('a'), params, &SeededEntropy::new(0)),
            Err(VaultError::InvalidKdfParams { .. })
        ));
    }
}

#[test]
#[ignore = "timing: run with --release -- --ignored --nocapture"]
fn timing_with_default_params() {
    let rng = OsEntropy;
    let params = KdfParams::default();
    let (header, key) = Vault::init(&phrase('a'), params, &rng).unwrap();

    let start = Instant::now();
    let key2 = Vault::unlock(&phrase('a'), &header).unwrap();
    let unlock = start.elapsed();

    let sealed = key.seal(AAD, &[7u8; 64], &rng).unwrap();
    const N: u32 = 10_000;
    let start = Instant::now();
    for _ in 0..N {
        let plain = key2.open(std::hint::black_box(AAD), std::hint::black_box(&sealed));
        std::hint::black_box(plain.unwrap());
    }
    let per_open = start.elapsed() / N;
    println!(
        "default params {params:?}: unlock {unlock:?}; open (64-byte secret) {per_open:?} per call over {N} calls"
    );
}
