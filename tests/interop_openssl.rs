//! Interop with OpenSSL (`openssl ts`), a real RFC 3161 peer:
//! - requests made by `openssl ts -query` parse, for every hash, with and without
//!   nonce and certReq;
//! - our responses (grants and rejections) are read by `openssl ts -reply -text`,
//!   field for field;
//! - tokens that OpenSSL's own TSA signs with RSA, ECDSA P-256 and P-384 verify
//!   with `frostamp verify`, and fail with the wrong data.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;

use frostamp::tsp::request::{parse, Rejection};
use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found: run `make deps` (make test does it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Field value after `label` in `openssl ts -reply -text` output.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} missing in:\n{text}"))
        .trim()
        .to_string()
}

/// A hex number without `0x` and leading zeros, lower case.
fn hexnum(s: &str) -> String {
    s.trim_start_matches("0x")
        .trim_start_matches('0')
        .to_lowercase()
}

/// The hex bytes of the "Message data:" dump.
fn message_data(text: &str) -> String {
    let mut out = String::new();
    let mut on = false;
    for l in text.lines() {
        if l.starts_with("Message data:") {
            on = true;
            continue;
        }
        if on {
            let Some((_, rest)) = l.split_once(" - ") else {
                break;
            };
            let hexpart: String = rest.chars().take(48).collect();
            out.extend(hexpart.split([' ', '-']).filter(|s| s.len() == 2));
        }
    }
    out
}

#[test]
fn openssl_queries_parse_and_openssl_reads_our_responses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data.txt"), b"interop with openssl ts\n").unwrap();
    let tsa = common::local_tsa();
    for hash in ["sha256", "sha384", "sha512"] {
        for nonce in [true, false] {
            for cert in [true, false] {
                let mut args = vec!["ts", "-query", "-data", "data.txt", "-out", "q.tsq"];
                let h = format!("-{hash}");
                args.push(&h);
                if !nonce {
                    args.push("-no_nonce");
                }
                if cert {
                    args.push("-cert");
                }
                openssl(&args, d);
                let q = std::fs::read(d.join("q.tsq")).unwrap();
                let accepted = parse(&q, tsa.coordinator.profile())
                    .unwrap_or_else(|e| panic!("{args:?}: {e}"));
                assert_eq!(accepted.cert_req(), cert);
                assert_eq!(accepted.nonce().is_some(), nonce);
                let issued = tsa.issue(&q, &mut rand::thread_rng()).unwrap();
                // RFC 3161 §2.4.2: the TSTInfo imprint is the request's, NULL parameters included.
                let sent =
                    <frostamp::tsp::asn1::TimeStampReq as der::Decode>::from_der(&q).unwrap();
                let tst = frostamp::verify::token::parse_token(&issued.token)
                    .unwrap()
                    .tst;
                assert_eq!(tst.message_imprint, sent.message_imprint);
                std::fs::write(d.join("r.tsr"), &issued.response).unwrap();
                let text = openssl(&["ts", "-reply", "-in", "r.tsr", "-text"], d);
                assert_eq!(field(&text, "Status: "), "Granted.");
                assert_eq!(field(&text, "Version: "), "1");
                assert_eq!(field(&text, "Hash Algorithm: "), hash);
                assert_eq!(message_data(&text), hex::encode(accepted.imprint()));
                assert_eq!(
                    field(&text, "Policy OID: "),
                    frostamp::oid::default_tsa_policy().to_string()
                );
                assert_eq!(
                    hexnum(&field(&text, "Serial number: ")),
                    hexnum(&hex::encode(issued.serial.0))
                );
                assert_eq!(field(&text, "Ordering: "), "no");
                // e.g. "Nov 21 08:44:36.583 2026 GMT"
                let ts = field(&text, "Time stamp: ");
                let secs = issued.gen_time.to_rfc3339();
                let hms = secs.get(11..19).unwrap();
                assert!(ts.contains(hms), "{ts} vs {secs}");
                match accepted.nonce() {
                    Some(n) => assert_eq!(
                        hexnum(&field(&text, "Nonce: ")),
                        hexnum(&hex::encode(n.as_bytes()))
                    ),
                    None => assert_eq!(field(&text, "Nonce: "), "unspecified"),
                }
                assert!(field(&text, "TSA: ").contains("frostamp TSA"));
            }
        }
    }
}

#[test]
fn openssl_reads_our_rejections() {
    let dir = tempfile::tempdir().unwrap();
    for (rej, text) in [
        (
            Rejection::BadAlg("SHA-1".into()),
            "unrecognized or unsupported algorithm identifier",
        ),
        (
            Rejection::Malformed("x".into()),
            "transaction not permitted or supported",
        ),
        (
            Rejection::BadImprintLength {
                alg: "sha256".into(),
                got: 1,
                want: 32,
            },
            "the data submitted has the wrong format",
        ),
        (
            Rejection::UnacceptedPolicy("1.2.3".into()),
            "the requested TSA policy is not supported by the TSA",
        ),
        (
            Rejection::UnacceptedExtension,
            "the requested extension is not supported by the TSA",
        ),
        (
            Rejection::TimeNotAvailable("skew".into()),
            "the TSA's time source is not available",
        ),
        (
            Rejection::SystemFailure(frostamp::tsp::request::SystemFailure::Internal),
            "the request cannot be handled due to system failure",
        ),
    ] {
        std::fs::write(
            dir.path().join("rej.tsr"),
            frostamp::tsp::response::rejected(&rej).unwrap(),
        )
        .unwrap();
        let out = openssl(&["ts", "-reply", "-in", "rej.tsr", "-text"], dir.path());
        assert_eq!(field(&out, "Status: "), "Rejected.");
        assert_eq!(field(&out, "Status description: "), rej.to_string());
        assert_eq!(field(&out, "Failure info: "), text, "{rej:?}");
    }
}

const TSA_CNF: &str = r#"
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = ./serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign
[ tsa_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"#;

/// OpenSSL acts as the TSA with RSA, P-256 and P-384 keys; `frostamp verify`
/// (the CLI binary) must accept its tokens and refuse them for other data.
#[test]
fn openssl_tsa_tokens_verify_with_frostamp_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tsa.cnf"), TSA_CNF).unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    std::fs::write(d.join("data.txt"), b"stamped by openssl\n").unwrap();
    std::fs::write(d.join("other.txt"), b"not stamped\n").unwrap();
    let frostamp = env!("CARGO_BIN_EXE_frostamp");
    for (name, keygen) in [
        (
            "rsa",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
        ),
        (
            "p256",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
        ),
        (
            "p384",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
        ),
    ] {
        let ca_key = format!("{name}-ca.key");
        let tsa_key = format!("{name}-tsa.key");
        let mut a = keygen.clone();
        a.extend(["-out", &ca_key]);
        openssl(&a, d);
        let mut a = keygen.clone();
        a.extend(["-out", &tsa_key]);
        openssl(&a, d);
        let ca = format!("{name}-ca.pem");
        openssl(
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                &ca_key,
                "-subj",
                &format!("/CN=interop {name} root"),
                "-days",
                "30",
                "-config",
                "tsa.cnf",
                "-extensions",
                "ca_ext",
                "-out",
                &ca,
            ],
            d,
        );
        let csr = format!("{name}.csr");
        openssl(
            &[
                "req",
                "-new",
                "-key",
                &tsa_key,
                "-subj",
                &format!("/CN=interop {name} TSA"),
                "-config",
                "tsa.cnf",
                "-out",
                &csr,
            ],
            d,
        );
        let tsa_cert = format!("{name}-tsa.pem");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "tsa.cnf",
                "-extensions",
                "tsa_ext",
                "-out",
                &tsa_cert,
            ],
            d,
        );
        for hash in ["-sha256", "-sha384", "-sha512"] {
            openssl(
                &[
                    "ts", "-query", "-data", "data.txt", hash, "-cert", "-out", "q.tsq",
                ],
                d,
            );
            openssl(
                &[
                    "ts",
                    "-reply",
                    "-config",
                    "tsa.cnf",
                    "-queryfile",
                    "q.tsq",
                    "-inkey",
                    &tsa_key,
                    "-signer",
                    &tsa_cert,
                    "-out",
                    "r.tsr",
                ],
                d,
            );
            let ok = Command::new(frostamp)
                .args([
                    "verify", "r.tsr", "--data", "data.txt", "--roots", &ca, "--json",
                ])
                .current_dir(d)
                .output()
                .unwrap();
            let j: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
            assert!(ok.status.success(), "{name} {hash}: {j}");
            assert_eq!(j["ok"], true);
            assert_eq!(j["policy"], "1.2.3.4.1");
            let bad = Command::new(frostamp)
                .args([
                    "verify",
                    "r.tsr",
                    "--data",
                    "other.txt",
                    "--roots",
                    &ca,
                    "--json",
                ])
                .current_dir(d)
                .output()
                .unwrap();
            assert_eq!(bad.status.code(), Some(1), "{name} {hash} with other data");
            let j: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
            assert_eq!(j["error"], "imprint_mismatch");
        }
    }
}

/// An Ed25519 epoch's token (RFC 8419 SignerInfo) is read by `openssl ts -reply
/// -text` like any other, and `openssl cms -cmsout -print` shows digestAlgorithm
/// SHA-512 and signatureAlgorithm ED25519. Measured limitation, kept here so that a
/// change is noticed: OpenSSL 3.0's `ts -verify` (PKCS#7 code) cannot verify an Ed25519
/// SignerInfo ("operation not supported for this keytype", `Verification: FAILED`), and
/// neither can `cms -verify` ("invalid digest"); docs/relying-parties.md. The twin of
/// the parse: a response cut short is refused by `openssl ts -reply`.
#[test]
fn openssl_reads_an_ed25519_token_but_cannot_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data.txt"), b"ed25519 with openssl\n").unwrap();
    let tsa = common::local_tsa_for::<frostamp::threshold::suite::Ed25519Sha512>();
    openssl(
        &[
            "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "q.tsq",
        ],
        d,
    );
    let q = std::fs::read(d.join("q.tsq")).unwrap();
    let issued = tsa.issue(&q, &mut rand::thread_rng()).unwrap();
    std::fs::write(d.join("r.tsr"), &issued.response).unwrap();
    let text = openssl(&["ts", "-reply", "-in", "r.tsr", "-text"], d);
    assert_eq!(field(&text, "Status: "), "Granted.");
    assert_eq!(field(&text, "Hash Algorithm: "), "sha256");
    assert_eq!(
        hexnum(&field(&text, "Serial number: ")),
        hexnum(&hex::encode(issued.serial.0))
    );
    openssl(
        &[
            "ts",
            "-reply",
            "-in",
            "r.tsr",
            "-token_out",
            "-out",
            "t.der",
        ],
        d,
    );
    let cms = openssl(
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "t.der"],
        d,
    );
    assert!(cms.contains("algorithm: sha512"), "{cms}");
    assert!(cms.contains("algorithm: ED25519"), "{cms}");
    // Twin: a cut response is no TimeStampResp for OpenSSL.
    std::fs::write(
        d.join("cut.tsr"),
        &issued.response[..issued.response.len() - 5],
    )
    .unwrap();
    let cut = Command::new("openssl")
        .args(["ts", "-reply", "-in", "cut.tsr", "-text"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!cut.status.success());
    // The measured limitation.
    std::fs::write(d.join("ca.pem"), tsa.ca.certificate_pem().unwrap()).unwrap();
    let v = Command::new("openssl")
        .args([
            "ts", "-verify", "-data", "data.txt", "-in", "r.tsr", "-CAfile", "ca.pem",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        !v.status.success() && said.contains("Verification: FAILED"),
        "openssl ts -verify now verifies Ed25519 tokens: update docs/relying-parties.md\n{said}"
    );
}
