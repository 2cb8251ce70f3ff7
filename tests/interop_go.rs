//! Interop with Go's standard library (issue 14, "Go parses everything it can").
//!
//! `tests/interop/go/main.go` (Debian's `golang-go`, standard library only, no
//! network) parses a token with `encoding/asn1`: ContentInfo → SignedData → the
//! encapsulated TSTInfo and each SignerInfo's signed attributes, and prints what it
//! found as JSON. The tokens come from the in-process TSA (`LocalTsa`), as in the
//! other interop tests; this test compares Go's fields with what frostamp knows.
//! Failing twin: the same token re-encoded with the project's former `2.25.…` arc
//! fails in Go with "base 128 integer too large" (`docs/oids.md`).
//!
//! Both ciphersuites' tokens are parsed; with `-cert`, the program parses the Ed25519
//! epoch's TSA certificate with `x509.ParseCertificate` (Go has no secp256k1, so the
//! secp256k1 epoch's certificate is refused there: that is the failing twin).
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;

use frostamp::oid::std_oids;
use frostamp::threshold::suite::Ed25519Sha512;
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use frostamp::verify::token::{parse_token, verify, Expected, VerifyOptions};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Contents octets of the project arc (`oid::PROJECT_ARC`) and of the former UUID arc
/// `2.25.7035553362177209877941980418382415400` (`docs/oids.md`).
const ARC_HEX: &str = "2a864886f71401be40937a8a4a83ff0f83ce7f81840182a873ede172828b8c28";
const OLD_ARC_HEX: &str = "698acaffe3fcf7fa888394b9c6ee8f928b8c28";

/// Builds the Go program once per test binary, into Cargo's per-target temp dir.
fn tstparse() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-go");
        let bin = tmp.join("tstparse");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go");
        let out = Command::new("go")
            .args(["build", "-buildvcs=false", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&src)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", tmp.join("cache"))
            .env("GOPATH", tmp.join("gopath"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `go` ({e}): run `make system-deps` to install golang-go")
            });
        assert!(
            out.status.success(),
            "go build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

fn run_go(dir: &Path, name: &str, der: &[u8]) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, der).unwrap();
    Command::new(tstparse()).arg(&file).output().unwrap()
}

fn run_go_cert(dir: &Path, name: &str, der: &[u8]) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, der).unwrap();
    Command::new(tstparse())
        .arg("-cert")
        .arg(&file)
        .output()
        .unwrap()
}

/// Go's `x509.ParseCertificate` takes the Ed25519 epoch's TSA certificate (key
/// id-Ed25519, EKU timeStamping critical) and reads the group key; the twin: the secp256k1 epoch's certificate is refused ("unsupported
/// elliptic curve": Go has no secp256k1), as is the Ed25519 one cut short.
#[test]
fn go_x509_parses_the_ed25519_epoch_tsa_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ed = common::local_tsa_for::<Ed25519Sha512>();
    let out = run_go_cert(dir.path(), "ed.der", &ed.tsa_cert);
    assert!(
        out.status.success(),
        "Go refused the Ed25519 TSA certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(go["public_key_algorithm"], "Ed25519");
    assert_eq!(
        go["ed25519_key_hex"],
        hex::encode(ed.group.key_bytes().unwrap())
    );
    assert_eq!(go["ext_key_usage_time_stamping"], true);
    assert_eq!(go["is_ca"], false);
    let k1 = common::local_tsa();
    let out = run_go_cert(dir.path(), "k1.der", &k1.tsa_cert);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported elliptic curve"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cut = &ed.tsa_cert[..ed.tsa_cert.len() - 1];
    assert!(!run_go_cert(dir.path(), "cut.der", cut).status.success());
}

/// An Ed25519 token through Go's `encoding/asn1`: SignedData with digestAlgorithm
/// SHA-512, SignerInfo with id-Ed25519 and a 64-byte signature, messageDigest the
/// SHA-512 of the TSTInfo; the twin: the same token cut short is refused.
#[test]
fn go_encoding_asn1_parses_an_ed25519_token() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = common::local_tsa_for::<Ed25519Sha512>();
    let digest = HashAlg::Sha256.digest(b"go ed25519");
    let req = AcceptedRequest::build_der(HashAlg::Sha256, &digest, None, true).unwrap();
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let parsed = parse_token(&issued.token).unwrap();
    let out = run_go(dir.path(), "ed.tsr", &issued.response);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        go["digest_algorithms"],
        serde_json::json!([std_oids::SHA512.to_string()])
    );
    assert_eq!(go["tst_info"]["imprint_hex"], hex::encode(&digest));
    let s = &go["signers"][0];
    assert_eq!(s["digest_algorithm"], std_oids::SHA512.to_string());
    assert_eq!(s["signature_algorithm"], std_oids::ED25519.to_string());
    assert_eq!(s["signature_len"], 64);
    assert_eq!(
        s["message_digest_hex"],
        hex::encode(sha2::Sha512::digest(&parsed.tst_der))
    );
    let cut = &issued.response[..issued.response.len() - 3];
    assert!(!run_go(dir.path(), "cut.tsr", cut).status.success());
}

#[test]
fn the_arc_constants_here_are_the_library_s() {
    let policy = der::Encode::to_der(&frostamp::oid::default_tsa_policy()).unwrap();
    // 06 len ARC 03
    assert_eq!(hex::encode(&policy[2..policy.len() - 1]), ARC_HEX);
    assert_eq!(policy.last(), Some(&3));
}

#[test]
fn go_encoding_asn1_parses_our_tokens_field_for_field() {
    let tsa = common::local_tsa();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (HashAlg::Sha256, Some(&[0x92, 0x01, 0x02, 0x03][..]), true),
        (HashAlg::Sha384, None, false),
        (HashAlg::Sha512, Some(&[0x7f][..]), false),
    ];
    for (i, (hash, nonce, cert_req)) in cases.into_iter().enumerate() {
        let data = format!("go interop {i}");
        let digest = hash.digest(data.as_bytes());
        let req = AcceptedRequest::build_der(hash, &digest, nonce, cert_req).unwrap();
        let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
        // What frostamp itself makes of the token.
        let options = VerifyOptions {
            expected: Expected::Data(data.clone().into_bytes()),
            anchors: vec![frostamp::x509::CertDer::from_cert(tsa.ca.certificate()).unwrap()],
            extra_certs: vec![frostamp::x509::CertDer::from_der(&tsa.tsa_cert).unwrap()],
            at: None,
            nonce: nonce.map(<[u8]>::to_vec),
            policy: Some(frostamp::oid::default_tsa_policy()),
            time: None,
        };
        let ours = verify(&issued.response, &options).unwrap();
        let parsed = parse_token(&issued.token).unwrap();

        for (name, der) in [("resp.tsr", &issued.response), ("token.der", &issued.token)] {
            let out = run_go(dir.path(), name, der);
            assert!(
                out.status.success(),
                "case {i} {name}: Go failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let go: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let tst = &go["tst_info"];
            assert_eq!(
                go["status"],
                if name == "resp.tsr" {
                    0.into()
                } else {
                    serde_json::Value::Null
                }
            );
            assert_eq!(go["content_type"], std_oids::SIGNED_DATA.to_string());
            assert_eq!(go["signed_data_version"], 3);
            assert_eq!(
                go["digest_algorithms"],
                serde_json::json!([std_oids::SHA256.to_string()])
            );
            assert_eq!(go["econtent_type"], std_oids::CT_TST_INFO.to_string());
            assert_eq!(go["certificates"], u64::from(cert_req));
            assert_eq!(tst["version"], 1);
            assert_eq!(tst["policy"], ours.policy);
            assert_eq!(
                tst["policy"],
                frostamp::oid::default_tsa_policy().to_string()
            );
            assert_eq!(tst["hash_oid"], hash.oid().to_string());
            assert_eq!(tst["imprint_hex"], hex::encode(&digest));
            assert_eq!(tst["imprint_hex"], ours.imprint);
            assert_eq!(
                tst["serial_hex"],
                format!("{:x}", u128::from_be_bytes(issued.serial.0))
            );
            assert_eq!(
                tst["gen_time_unix_nanos"].as_u64().map(u128::from),
                Some(issued.gen_time.unix_duration().as_nanos())
            );
            assert_eq!(tst["accuracy_seconds"], 1);
            assert_eq!(tst["ordering"], false);
            assert_eq!(
                tst["nonce_hex"].as_str(),
                ours.nonce.as_deref().map(|n| n.trim_start_matches("00"))
            );
            assert_eq!(tst["has_tsa"], true);

            let signers = go["signers"].as_array().unwrap();
            assert_eq!(signers.len(), 1);
            let s = &signers[0];
            assert_eq!(s["version"], 1);
            assert_eq!(s["digest_algorithm"], std_oids::SHA256.to_string());
            assert_eq!(
                s["signature_algorithm"],
                frostamp::oid::frost_secp256k1_sha256().to_string()
            );
            assert_eq!(ours.signature_algorithm, "FROST(secp256k1, SHA-256)");
            assert_eq!(s["signature_len"], 65);
            assert_eq!(s["content_type_attr"], std_oids::CT_TST_INFO.to_string());
            assert_eq!(
                s["message_digest_hex"],
                hex::encode(sha2::Sha256::digest(&parsed.tst_der))
            );
            let mut types: Vec<&str> = s["signed_attrs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["type"].as_str().unwrap())
                .collect();
            types.sort_unstable();
            let mut want = vec![
                std_oids::ATTR_CONTENT_TYPE.to_string(),
                std_oids::ATTR_MESSAGE_DIGEST.to_string(),
                std_oids::ATTR_SIGNING_CERTIFICATE_V2.to_string(),
            ];
            want.sort_unstable();
            assert_eq!(types, want, "case {i} {name}");
        }
    }
}

#[test]
fn go_refuses_the_same_token_under_the_old_arc() {
    let tsa = common::local_tsa();
    let dir = tempfile::tempdir().unwrap();
    let digest = HashAlg::Sha256.digest(b"old arc");
    let req = AcceptedRequest::build_der(HashAlg::Sha256, &digest, Some(&[1, 2]), true).unwrap();
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let from = hex::decode(ARC_HEX).unwrap();
    let to = hex::decode(OLD_ARC_HEX).unwrap();

    // Control: the token parses as issued.
    assert!(run_go(dir.path(), "new.tsr", &issued.response)
        .status
        .success());

    let (old, replaced) = rewrite_arc(&issued.response, &from, &to, Scope::Everywhere).unwrap();
    // The policy (in the TSTInfo, inside eContent) and the signature algorithm.
    assert_eq!(replaced, 2);
    let out = run_go(dir.path(), "old.tsr", &old);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("base 128 integer too large"), "{err}");

    // Only the TSTInfo's policy under the old arc (what a deployment's own policy
    // OID would change): Go now gets through SignedData and refuses the TSTInfo.
    let (old_policy, replaced) =
        rewrite_arc(&issued.response, &from, &to, Scope::InsideOctetStrings).unwrap();
    assert_eq!(replaced, 1);
    let out = run_go(dir.path(), "old-policy.tsr", &old_policy);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("TSTInfo:") && err.contains("base 128 integer too large"),
        "{err}"
    );

    // The rewriter changes nothing when there is nothing to replace.
    let (same, replaced) = rewrite_arc(&issued.response, &to, &from, Scope::Everywhere).unwrap();
    assert_eq!((same, replaced), (issued.response.clone(), 0));
}

/// Where [`rewrite_arc`] replaces OIDs.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Everywhere,
    /// Only inside OCTET STRINGs that hold DER (the eContent: the TSTInfo).
    InsideOctetStrings,
}

/// Re-encodes a concatenation of DER TLVs (low tag numbers, lengths below 2^16),
/// replacing the arc prefix `from` of OBJECT IDENTIFIERs by `to`, also inside OCTET
/// STRINGs whose contents are DER, and fixing every enclosing length. Returns the
/// bytes and how many OIDs it replaced; `None` if the input is not such DER.
fn rewrite_arc(der: &[u8], from: &[u8], to: &[u8], scope: Scope) -> Option<(Vec<u8>, usize)> {
    rewrite(der, from, to, scope, false)
}

fn rewrite(
    mut der: &[u8],
    from: &[u8],
    to: &[u8],
    scope: Scope,
    in_octets: bool,
) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut replaced = 0;
    while let Some(&tag) = der.first() {
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (len, header) = match *der.get(1)? {
            l if l < 0x80 => (usize::from(l), 2),
            0x81 => (usize::from(*der.get(2)?), 3),
            0x82 => (
                usize::from(u16::from_be_bytes([*der.get(2)?, *der.get(3)?])),
                4,
            ),
            _ => return None,
        };
        let content = der.get(header..header + len)?;
        der = &der[header + len..];
        let (new, k) = if tag & 0x20 != 0 {
            rewrite(content, from, to, scope, in_octets)?
        } else if tag == 0x06
            && content.starts_with(from)
            && (in_octets || scope == Scope::Everywhere)
        {
            ([to, &content[from.len()..]].concat(), 1)
        } else if tag == 0x04 {
            match rewrite(content, from, to, scope, true) {
                Some((c, k)) if k > 0 => (c, k),
                _ => (content.to_vec(), 0),
            }
        } else {
            (content.to_vec(), 0)
        };
        out.push(tag);
        match new.len() {
            l if l < 0x80 => out.push(l as u8),
            l if l < 0x100 => out.extend([0x81, l as u8]),
            l => out.extend([0x82, (l >> 8) as u8, l as u8]),
        }
        out.extend(new);
        replaced += k;
    }
    Some((out, replaced))
}
