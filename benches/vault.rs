//! Vault costs: unlocking with the default Argon2id parameters, and sealing/opening
//! secrets of typical sizes. `cargo bench --bench vault`; prints figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use scim_bridge::entropy::OsEntropy;
use scim_bridge::vault::{KdfParams, Passphrase, Vault, secret_aad};

fn main() {
    let pass = Passphrase::new("correct horse battery staple ".repeat(4)).expect("passphrase");
    let params = KdfParams::default();
    println!(
        "Argon2id m={} KiB, t={}, p={} (the defaults)",
        params.m_cost_kib, params.t_cost, params.p_cost
    );
    let (header, _) = Vault::init(&pass, params, &OsEntropy).expect("init");
    let mut unlocks = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        black_box(Vault::unlock(&pass, &header).expect("unlock"));
        unlocks.push(started.elapsed());
    }
    unlocks.sort();
    println!(
        "unlock: median {:.0} ms, min {:.0} ms, max {:.0} ms (5 runs; target < 1 s)",
        ms(unlocks[2]),
        ms(unlocks[0]),
        ms(unlocks[4])
    );

    let key = Vault::unlock(&pass, &header).expect("unlock");
    for (what, size) in [("client secret, 48 B", 48), ("token JSON, 2 KiB", 2048)] {
        let plaintext = vec![b'x'; size];
        let aad = secret_aad("oauth.imanage");
        let n = 100_000u32;
        let started = Instant::now();
        let mut sealed = Vec::new();
        for _ in 0..n {
            sealed = black_box(key.seal(&aad, &plaintext, &OsEntropy).expect("seal"));
        }
        let seal = started.elapsed() / n;
        let started = Instant::now();
        for _ in 0..n {
            black_box(key.open(&aad, &sealed).expect("open"));
        }
        let open = started.elapsed() / n;
        println!(
            "{what}: seal {:.2} µs, open {:.2} µs per secret ({n} each; target open < 10 µs)",
            us(seal),
            us(open)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
