//! Interop with trailofbits' `rfc3161-client` (Python, PyPI), installed into
//! `.venv` by `make test` (`make interop-deps`). Its requests parse here; our
//! responses parse there, field for field.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;

use frostamp::tsp::request::parse;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    assert!(
        venv.exists(),
        "{} missing: run `make interop-deps` (make test does it) to install rfc3161-client",
        venv.display()
    );
    venv
}

fn run_py(args: &[&str]) -> serde_json::Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/rfc3161_client_check.py");
    let out = common::run_ok(
        Command::new(python()).arg(script).args(args),
        "python failed:",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn python_requests_parse_and_our_responses_parse_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"interop with rfc3161-client").unwrap();
    let tsa = common::local_tsa();
    for hash in ["sha256", "sha512"] {
        for (nonce, cert_req) in [("1", "1"), ("0", "0"), ("1", "0")] {
            let q = dir.path().join(format!("{hash}-{nonce}-{cert_req}.tsq"));
            let made = run_py(&[
                "request",
                data.to_str().unwrap(),
                q.to_str().unwrap(),
                hash,
                nonce,
                cert_req,
            ]);
            let req = std::fs::read(&q).unwrap();
            let accepted = parse(&req, tsa.coordinator.profile())
                .unwrap_or_else(|e| panic!("{hash}/{nonce}/{cert_req}: {e}"));
            assert_eq!(accepted.cert_req(), cert_req == "1");
            let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
            let r = dir.path().join("resp.tsr");
            std::fs::write(&r, &issued.response).unwrap();
            let got = run_py(&["parse", r.to_str().unwrap()]);
            assert_eq!(got["status"], 0);
            assert_eq!(got["version"], 1);
            assert_eq!(
                got["policy"],
                frostamp::oid::default_tsa_policy().to_string()
            );
            assert_eq!(got["imprint"], hex::encode(accepted.imprint()));
            assert_eq!(got["hash_oid"], accepted.hash_alg().oid().to_string());
            // serial: Python int of the 128-bit positive serial
            assert_eq!(
                got["serial"].as_str().unwrap(),
                u128::from_be_bytes(issued.serial.0).to_string()
            );
            assert_eq!(
                got["gen_time_unix"].as_u64().unwrap(),
                issued.gen_time.unix_duration().as_secs()
            );
            assert_eq!(got["ordering"], false);
            if nonce == "1" {
                assert_eq!(
                    got["nonce"].as_str().unwrap(),
                    made["nonce"].as_str().unwrap()
                );
            } else {
                assert!(got["nonce"].is_null());
            }
            assert_eq!(
                got["signed_data_certs"],
                if cert_req == "1" { 1 } else { 0 }
            );
        }
    }
}

/// An Ed25519 epoch's token parses in rfc3161-client field for field (its twin: the
/// response cut short does not). Measured limitation, kept so that a change is noticed:
/// rfc3161-client's verifier (OpenSSL's PKCS#7 code underneath) cannot verify an
/// Ed25519 SignerInfo ("invalid eddsa instance for attempted operation");
/// docs/relying-parties.md.
#[test]
fn python_parses_an_ed25519_token_but_cannot_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"ed25519 with rfc3161-client").unwrap();
    let tsa = common::local_tsa_for::<frostamp::threshold::suite::Ed25519Sha512>();
    let q = dir.path().join("q.tsq");
    run_py(&[
        "request",
        data.to_str().unwrap(),
        q.to_str().unwrap(),
        "sha256",
        "1",
        "1",
    ]);
    let req = std::fs::read(&q).unwrap();
    let accepted = parse(&req, tsa.coordinator.profile()).unwrap();
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let r = dir.path().join("resp.tsr");
    std::fs::write(&r, &issued.response).unwrap();
    let got = run_py(&["parse", r.to_str().unwrap()]);
    assert_eq!(got["status"], 0);
    assert_eq!(got["imprint"], hex::encode(accepted.imprint()));
    assert_eq!(
        got["serial"].as_str().unwrap(),
        u128::from_be_bytes(issued.serial.0).to_string()
    );
    assert_eq!(got["signed_data_certs"], 1);
    // Twin: a cut response does not parse.
    let cut = dir.path().join("cut.tsr");
    std::fs::write(&cut, &issued.response[..issued.response.len() - 5]).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/rfc3161_client_check.py");
    let out = Command::new(python())
        .arg(&script)
        .args(["parse", cut.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The measured limitation.
    let root = dir.path().join("root.pem");
    std::fs::write(&root, tsa.ca.certificate_pem().unwrap()).unwrap();
    let v = run_py(&[
        "verify",
        r.to_str().unwrap(),
        data.to_str().unwrap(),
        root.to_str().unwrap(),
    ]);
    assert_eq!(
        v["verified"], false,
        "rfc3161-client now verifies Ed25519 tokens: update docs/relying-parties.md"
    );
    eprintln!("rfc3161-client on an Ed25519 token: {}", v["error"]);
}
