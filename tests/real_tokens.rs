//! Real RFC 3161 tokens from public TSAs (tests/data/assets/rfc3161, copies of ../shared/assets; see its
//! PROVENANCE.md §4): each gives the result PROVENANCE expects, through the same
//! `verify` that checks frostamp's own tokens.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use frostamp::verify::token::{parse_token, verify, Expected, VerifyError, VerifyOptions};
use frostamp::x509::{parse_certificates, CertDer};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

fn asset(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/assets/rfc3161")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn certs(rel: &str) -> Vec<CertDer> {
    parse_certificates(&asset(rel)).unwrap()
}

fn opts(data: &[u8], anchors: Vec<CertDer>) -> VerifyOptions {
    VerifyOptions {
        expected: Expected::Data(data.to_vec()),
        anchors,
        extra_certs: vec![],
        at: None,
        nonce: None,
        policy: None,
        time: None,
    }
}

/// The last certificate of a PEM chain is its root.
fn root_of(rel: &str) -> Vec<CertDer> {
    vec![certs(rel).pop().unwrap()]
}

#[test]
fn sigstage_responses_verify_against_ts_chain() {
    for (f, alg) in [
        ("response-sha256.tsr", "SHA-256"),
        ("response-sha384.tsr", "SHA-384"),
        ("response-sha512.tsr", "SHA-512"),
    ] {
        let v = verify(
            &asset(&format!("rfc3161-client/sigstage/{f}")),
            &opts(b"hello", root_of("rfc3161-client/sigstage/ts_chain.pem")),
        )
        .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(v.hash_algorithm, alg);
        assert!(v.gen_time.starts_with("2025-05-09"), "{}", v.gen_time);
        // failing twin: other data
        let e = verify(
            &asset(&format!("rfc3161-client/sigstage/{f}")),
            &opts(b"hello!", root_of("rfc3161-client/sigstage/ts_chain.pem")),
        )
        .unwrap_err();
        assert_eq!(e.kind(), "imprint_mismatch");
    }
}

#[test]
fn sigstage_invalid_signature_fails() {
    let e = verify(
        &asset("rfc3161-client/sigstage/response-invalid-signature.tsr"),
        &opts(b"hello", root_of("rfc3161-client/sigstage/ts_chain.pem")),
    )
    .unwrap_err();
    assert!(matches!(e, VerifyError::Signature(_)), "{e}");
}

#[test]
fn sigstage_without_embedded_cert_needs_the_leaf() {
    let tsr = asset("rfc3161-client/sigstage/response-no-embedded-cert.tsr");
    let chain = certs("rfc3161-client/sigstage/ts_chain.pem");
    let e = verify(
        &tsr,
        &opts(b"hello", root_of("rfc3161-client/sigstage/ts_chain.pem")),
    )
    .unwrap_err();
    assert_eq!(e.kind(), "signer_certificate_not_found");
    let mut o = opts(b"hello", root_of("rfc3161-client/sigstage/ts_chain.pem"));
    o.extra_certs = chain;
    verify(&tsr, &o).unwrap();
}

#[test]
fn test_tsa_and_injected_certs_are_attributed_to_the_real_signer() {
    // Root as anchor, the intermediate supplied as an untrusted extra certificate.
    let mut o = opts(b"hello", root_of("rfc3161-client/test_tsa/ts_chain.pem"));
    o.extra_certs = certs("rfc3161-client/test_tsa/ts_chain.pem");
    let real = verify(&asset("rfc3161-client/test_tsa/response.tsr"), &o).unwrap();
    let injected = verify(
        &asset("rfc3161-client/test_tsa/response-injected-certs.tsr"),
        &o,
    )
    .unwrap();
    assert_eq!(injected.signer, real.signer);
    assert!(!injected.signer.contains("Spoofed"), "{}", injected.signer);
    assert!(injected.chain.iter().all(|s| !s.contains("Spoofed")));
    // the spoofed certificate really is in the bag
    let parsed = parse_token(
        &frostamp::verify::token::extract_token(&asset(
            "rfc3161-client/test_tsa/response-injected-certs.tsr",
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(parsed
        .certificates
        .iter()
        .any(|c| c.subject().contains("Spoofed TSA")));
}

#[test]
fn other_response_does_not_chain_to_test_tsa() {
    let mut o = opts(b"hello", root_of("rfc3161-client/test_tsa/ts_chain.pem"));
    o.extra_certs = certs("rfc3161-client/test_tsa/ts_chain.pem");
    let e = verify(&asset("rfc3161-client/test_tsa/other_response.tsr"), &o).unwrap_err();
    assert!(matches!(e, VerifyError::Chain(_)), "{e}");
}

#[test]
fn identrust_verifies_at_gen_time_not_now() {
    let root = vec![CertDer::from_der(&asset("rfc3161-client/identrust/ts_root.der")).unwrap()];
    let tsr = asset("rfc3161-client/identrust/issue-104.tsr");
    let v = verify(&tsr, &opts(b"hello", root.clone())).unwrap();
    assert_eq!(v.gen_time, "2025-03-11T08:52:08Z");
    assert!(
        v.signer.contains("TrustID Timestamp Authority"),
        "{}",
        v.signer
    );
    // twin: checked at the current date (2026-11) the leaf has expired
    let mut o = opts(b"hello", root);
    o.at = Some(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
    let e = verify(&tsr, &o).unwrap_err();
    assert!(matches!(e, VerifyError::Chain(_)), "{e}");
}

#[test]
fn sigstore_mock_expired_certificate_verifies_at_gen_time_only() {
    let payload = asset("rfc3161-client/sigstore.mock/payload");
    let tsr = asset("rfc3161-client/sigstore.mock/response-expired.tsr");
    let chain = root_of("rfc3161-client/sigstore.mock/ts_chain.pem");
    // The token carries no certificates: the leaf comes from ts_chain.pem.
    let mut o = opts(&payload, chain.clone());
    o.extra_certs = certs("rfc3161-client/sigstore.mock/ts_chain.pem");
    let v = verify(&tsr, &o).unwrap();
    assert!(v.gen_time.starts_with("2023-02-01"), "{}", v.gen_time);
    assert!(
        v.serial.starts_with("de") || v.serial.starts_with("ff"),
        "negative serial kept as encoded: {}",
        v.serial
    );
    o.at = Some(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
    assert!(matches!(
        verify(&tsr, &o).unwrap_err(),
        VerifyError::Chain(_)
    ));
}

fn digitorus_certs() -> Vec<CertDer> {
    let tok =
        frostamp::verify::token::extract_token(&asset("derived-digitorus/respNonce.tsr")).unwrap();
    parse_token(&tok).unwrap().certificates
}

#[test]
fn digitorus_globalsign_tokens_verify_with_embedded_certs_as_anchors() {
    let data = asset("derived-digitorus/hashedMessage.bin");
    let anchors = digitorus_certs();
    assert!(!anchors.is_empty());
    for (f, nonce) in [
        ("respNonce.tsr", Some("092ef19ffb5d2ae8")),
        ("respNoNonce.tsr", None),
    ] {
        let mut o = opts(b"", anchors.clone());
        o.expected = Expected::Digest(data.clone());
        o.nonce = nonce.map(|n| hex::decode(n).unwrap());
        let v = verify(&asset(&format!("derived-digitorus/{f}")), &o)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(v.gen_time.starts_with("2017-04-19"), "{}", v.gen_time);
        // twin: wrong nonce
        if nonce.is_some() {
            o.nonce = Some(vec![1, 2, 3]);
            assert_eq!(
                verify(&asset(&format!("derived-digitorus/{f}")), &o)
                    .unwrap_err()
                    .kind(),
                "nonce_mismatch"
            );
        }
    }
    // no certs embedded: supply them
    let mut o = opts(b"", anchors.clone());
    o.expected = Expected::Digest(data.clone());
    o.extra_certs = anchors;
    verify(&asset("derived-digitorus/respNoCert.tsr"), &o).unwrap();
}

#[test]
fn digitorus_bare_token_verifies() {
    let tst = asset("derived-digitorus/timeStampToken.tst");
    let own = parse_token(&tst).unwrap().certificates;
    let mut o = opts(b"", own);
    o.expected = Expected::Digest(
        hex::decode("2da82c1572ff020524e05069219975c9ba90723f1a4dd5b9722aee8ec547a2ff").unwrap(),
    );
    let v = verify(&tst, &o).unwrap();
    assert_eq!(v.status, "token");
    assert!(v.gen_time.starts_with("2017-02-01"));
}

#[test]
fn digitorus_rejection_is_reported_as_rejection() {
    let e = verify(
        &asset("derived-digitorus/respRejection.tsr"),
        &opts(b"", vec![]),
    )
    .unwrap_err();
    match e {
        VerifyError::Rejected {
            status,
            text,
            fail_info,
        } => {
            assert_eq!(status, "rejection");
            assert_eq!(
                text.as_deref(),
                Some("Error during serial number generation.")
            );
            assert_eq!(fail_info, vec!["addInfoNotAvailable".to_string()]);
        }
        other => panic!("expected a rejection, got {other}"),
    }
}

#[test]
fn openssl_and_other_requests_parse() {
    use frostamp::tsp::request::parse;
    use frostamp::tsp::TsaProfile;
    let p = TsaProfile::frostamp_default();
    for f in [
        "rfc3161-client/sigstage/request.der",
        "rfc3161-client/test_tsa/request.der",
        "rfc3161-client/test_tsa/other_request.der",
        "derived-digitorus/reqNonce.tsq",
        "derived-digitorus/reqNoNonce.tsq",
        "derived-digitorus/reqNoCert.tsq",
    ] {
        let r = parse(&asset(f), &p).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!r.imprint().is_empty());
    }
    assert!(!parse(&asset("derived-digitorus/reqNoCert.tsq"), &p)
        .unwrap()
        .cert_req());
}
