//! `cargo bench --bench issuance`: what a full threshold token issuance costs
//! compared with the bare FROST protocol it is built on.
//!
//! (a) raw FROST(secp256k1, SHA-256) 3-of-5: round-1 commit ×3, round-2 sign ×3
//!     (through `threshold::signer::sign_share`, the token signer's code path),
//!     aggregate, over a 100-byte message, with keys from `dkg_in_process`;
//! (b) full in-process issuance, `LocalTsa::issue` (3-of-5): parse the request,
//!     coordinator and each of the three signers build TSTInfo and signed
//!     attributes, commit, sign, aggregate with cheater detection, verify,
//!     assemble, respond;
//! (c) relying-party `verify::token::verify` of one of those responses
//!     (structure, imprint, ESS, FROST signature, chain to the dev root).
//!
//! Each is timed for about 3 s of wall time after a warm-up. A plain `main`
//! (harness = false); no benchmarking framework.
// Benchmarks may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use frostamp::clock::SystemClock;
use frostamp::local::{LocalSetup, LocalTsa};
use frostamp::threshold::frost;
use frostamp::threshold::keys::{dkg_in_process, GroupKey, KeyShare};
use frostamp::threshold::signer::{sign_share, SignerNonces};
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use frostamp::verify::token::{verify, Expected, VerifyOptions};
use frostamp::x509::CertDer;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);

struct Measurement {
    name: &'static str,
    iterations: u64,
    elapsed: Duration,
}

impl Measurement {
    fn ops_per_sec(&self) -> f64 {
        self.iterations as f64 / self.elapsed.as_secs_f64()
    }
    fn mean_us(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.iterations as f64
    }
}

/// Run `f` for `WARMUP`, then count how often it runs in about `MEASURE`.
fn measure(name: &'static str, mut f: impl FnMut()) -> Measurement {
    let start = Instant::now();
    while start.elapsed() < WARMUP {
        f();
    }
    let start = Instant::now();
    let mut iterations = 0u64;
    loop {
        f();
        iterations += 1;
        let elapsed = start.elapsed();
        if elapsed >= MEASURE {
            return Measurement {
                name,
                iterations,
                elapsed,
            };
        }
    }
}

/// Round-1 nonce material for one signer.
///
/// `KeyShare` keeps its frost `KeyPackage` crate-private, so code outside the
/// crate cannot hand the real signing share to `round1::commit`. RFC 9591
/// §4.1 `nonce_generate` only hashes the secret together with 32 fresh random
/// bytes, so committing with a per-signer stand-in secret costs exactly the same
/// and yields equally valid nonces (the aggregate is verified below).
struct Round1Seed(frost::keys::SigningShare);

impl Round1Seed {
    fn new(rng: &mut impl rand::RngCore) -> Self {
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            if let Ok(s) = frost::keys::SigningShare::deserialize(&bytes) {
                return Self(s);
            }
        }
    }
}

/// One raw FROST signing: commit ×t, sign ×t, aggregate. Returns the signature.
fn frost_sign_aggregate(
    signers: &[(&KeyShare, Round1Seed)],
    group: &GroupKey,
    message: &[u8],
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> frost::Signature {
    let mut nonces = Vec::with_capacity(signers.len());
    let mut commitments = BTreeMap::new();
    for (share, seed) in signers {
        let (n, c) = frost::round1::commit(&seed.0, rng);
        nonces.push(SignerNonces::new(n));
        commitments.insert(share.identifier(), c);
    }
    let mut shares = BTreeMap::new();
    for ((share, _), n) in signers.iter().zip(nonces) {
        let s = sign_share(share, n, commitments.clone(), message).expect("signature share");
        shares.insert(share.identifier(), s);
    }
    let package = frost::SigningPackage::new(commitments, message);
    frost::aggregate(&package, &shares, group.package()).expect("aggregate")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore harness arguments.
    let mut rng = rand::thread_rng();
    let profile = if cfg!(debug_assertions) {
        "debug (debug_assertions on): numbers are not representative"
    } else {
        "optimised (bench/release settings, debug_assertions off)"
    };
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("frostamp issuance benchmark");
    println!("machine: {nproc} CPUs, {}", cpu_model());
    println!("build:   {profile}");
    println!("timing:  {WARMUP:?} warm-up, then ~{MEASURE:?} per operation, single thread");
    println!();

    // (a) raw FROST 3-of-5.
    let (shares, group) = dkg_in_process(5, 3, &mut rng).expect("dkg");
    let signers: Vec<(&KeyShare, Round1Seed)> = shares
        .iter()
        .take(3)
        .map(|s| (s, Round1Seed::new(&mut rng)))
        .collect();
    let message: Vec<u8> = (0..100u8).collect();
    let sig = frost_sign_aggregate(&signers, &group, &message, &mut rng);
    assert!(
        group.verify(&message, &sig.serialize().expect("signature")),
        "raw FROST signature must verify"
    );
    let raw = measure("raw FROST 3-of-5 commit+sign+aggregate", || {
        black_box(frost_sign_aggregate(
            &signers,
            &group,
            black_box(&message),
            &mut rng,
        ));
    });

    // (b) full issuance.
    let tsa: LocalTsa<SystemClock> = LocalSetup::new().build(&mut rng).expect("local TSA");
    let data = b"frostamp issuance benchmark";
    let request = AcceptedRequest::build_der(
        HashAlg::Sha256,
        &HashAlg::Sha256.digest(data),
        Some(&[0x5a; 8]),
        true,
    )
    .expect("request");
    let issued = tsa.issue(&request, &mut rng).expect("issue");
    assert_eq!(issued.signers.len(), 3);
    let full = measure("LocalTsa::issue 3-of-5 (full token)", || {
        black_box(tsa.issue(black_box(&request), &mut rng).expect("issue"));
    });

    // (c) verification.
    let opts = VerifyOptions {
        expected: Expected::Data(data.to_vec()),
        anchors: vec![CertDer::from_cert(tsa.ca.certificate()).expect("anchor")],
        extra_certs: Vec::new(),
        at: None,
        nonce: Some(vec![0x5a; 8]),
        policy: Some(frostamp::oid::default_tsa_policy()),
        time: None,
    };
    verify(&issued.response, &opts).expect("token verifies");
    let verified = measure("verify::token::verify (response)", || {
        black_box(verify(black_box(&issued.response), &opts).expect("verify"));
    });

    let rows = [&raw, &full, &verified];
    println!(
        "{:<42} {:>10} {:>12} {:>12}",
        "operation", "iterations", "ops/s", "mean µs"
    );
    println!("{}", "-".repeat(79));
    for m in rows {
        println!(
            "{:<42} {:>10} {:>12.1} {:>12.1}",
            m.name,
            m.iterations,
            m.ops_per_sec(),
            m.mean_us()
        );
    }
    println!();
    let pct = 100.0 * full.ops_per_sec() / raw.ops_per_sec();
    println!(
        "Full issuance runs at {pct:.1}% of the raw FROST sign+aggregate rate \
         ({:.1} vs {:.1} per second; {:.0} µs of TSA work per token on top of FROST).",
        full.ops_per_sec(),
        raw.ops_per_sec(),
        full.mean_us() - raw.mean_us()
    );
}
