//! The audit verifier on any input never panics, and a sealed export with any bytes
//! overwritten never verifies unless the bytes are unchanged: the first input byte
//! chooses between raw input and (offset, value) patches of a valid export.
#![no_main]

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use scim_bridge::audit::{Chain, Exporter, Header, LogId, Seal, SigningKey, Start, verify};

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::ed25519_from_seed(&[5; 32]).expect("key"))
}

/// Six records, sealed after the third and the last.
fn export() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let log = LogId::new("fuzz").expect("log");
        let header = Header {
            log: log.clone(),
            alg: key().algorithm(),
            key: key().id().clone(),
            start: Start::Genesis,
        };
        let mut ex = Exporter::new(Vec::new(), &header).expect("header");
        let mut chain = Chain::genesis(&log);
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single().expect("time");
        for i in 0..6 {
            let body = serde_json::json!({"userName": format!("ü{i}\n"), "n": i, "x": [null, true]});
            let r = chain.append(t, "scim.change", body).expect("append");
            ex.record(&r).expect("record");
            if i == 2 || i == 5 {
                ex.seal(&Seal::sign(key(), &log, r.head(), t).expect("seal")).expect("seal");
            }
        }
        ex.finish().expect("finish")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let _ = verify(rest, key().verifying_key());
        return;
    }
    let original = export();
    let mut file = original.to_vec();
    for patch in rest.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % file.len();
        file[at] = patch[2];
    }
    if let Ok(report) = verify(file.as_slice(), key().verifying_key()) {
        assert_eq!(file, original, "a changed export verified: {report}");
    }
});
