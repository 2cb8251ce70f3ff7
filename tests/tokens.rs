//! End-to-end: in-process 3-of-5 issuance, then relying-party verification, with
//! a failing twin for every success and a byte flip of every signed part.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;
use common::DevTsa;
use frostamp::threshold::suite::Secp256K1Sha256;

use der::{Decode, Encode};
use frostamp::clock::{Clock, FixedClock, SkewedClock, SystemClock};
use frostamp::local::LocalTsa;
use frostamp::threshold::coordinator::Exclusion;
use frostamp::threshold::signer::Refusal;
use frostamp::threshold::suite::{Ed25519Sha512, Suite};
use frostamp::tsp::request::{AcceptedRequest, FailureInfo, HashAlg};
use frostamp::verify::token::{verify, Expected, VerifyError, VerifyOptions};
use std::sync::Arc;
use std::time::Duration;

fn tsa() -> LocalTsa<SystemClock> {
    common::local_tsa()
}

fn opts<S: Suite>(tsa: &LocalTsa<SystemClock, S>, data: &[u8]) -> VerifyOptions {
    VerifyOptions {
        policy: Some(frostamp::oid::default_tsa_policy()),
        ..opts_for(tsa, data)
    }
}

#[test]
fn issue_and_verify_each_hash() {
    issue_and_verify_each_hash_with(&tsa(), "FROST(secp256k1, SHA-256)");
}

/// An Ed25519 epoch's tokens: the same checks, a plain Ed25519 signature.
#[test]
fn issue_and_verify_each_hash_ed25519() {
    issue_and_verify_each_hash_with(
        &common::local_tsa_for::<Ed25519Sha512>(),
        "Ed25519 (RFC 8032; FROST(Ed25519, SHA-512) or any Ed25519 signer)",
    );
}

fn issue_and_verify_each_hash_with<S: Suite>(tsa: &LocalTsa<SystemClock, S>, alg: &str) {
    for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let data = format!("hello {}", h.name());
        let req = AcceptedRequest::build_der(
            h,
            &h.digest(data.as_bytes()),
            Some(&[0x12, 0x34, 0x56]),
            true,
        )
        .unwrap();
        let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
        assert_eq!(issued.signers.len(), 3);
        let mut o = opts(tsa, data.as_bytes());
        o.nonce = Some(vec![0x12, 0x34, 0x56]);
        let v = verify(&issued.response, &o).unwrap();
        assert_eq!(v.signature_algorithm, alg);
        assert_eq!(v.hash_algorithm, h.name().replace("sha", "SHA-"));
        assert_eq!(v.nonce.as_deref(), Some("123456"));
        assert_eq!(v.chain.len(), 2);
        assert_eq!(
            v.serial,
            hex::encode(issued.serial.to_int().unwrap().as_bytes())
        );
        // bare token verifies too
        verify(&issued.token, &o).unwrap();
        // twins
        let mut wrong = o.clone();
        wrong.expected = Expected::Data(b"other data".to_vec());
        assert!(matches!(
            verify(&issued.response, &wrong),
            Err(VerifyError::ImprintMismatch { .. })
        ));
        let mut wrong = o.clone();
        wrong.nonce = Some(vec![0x12, 0x34, 0x57]);
        assert!(matches!(
            verify(&issued.response, &wrong),
            Err(VerifyError::NonceMismatch { .. })
        ));
        let mut wrong = o.clone();
        wrong.policy = Some(frostamp::oid::ObjectIdentifier::new_unwrap("1.2.3"));
        assert!(matches!(
            verify(&issued.response, &wrong),
            Err(VerifyError::PolicyMismatch { .. })
        ));
    }
}

#[test]
fn certreq_false_needs_the_certificate_supplied() {
    let tsa = tsa();
    let req =
        AcceptedRequest::build_der(HashAlg::Sha256, &HashAlg::Sha256.digest(b"x"), None, false)
            .unwrap();
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let mut o = opts(&tsa, b"x");
    assert!(matches!(
        verify(&issued.response, &o),
        Err(VerifyError::SignerCertificateNotFound(_))
    ));
    o.extra_certs = vec![frostamp::x509::CertDer::from_der(&tsa.tsa_cert).unwrap()];
    verify(&issued.response, &o).unwrap();
}

#[test]
fn wrong_anchor_and_time_fail() {
    let tsa = tsa();
    let other = self::tsa();
    let req = common::sha256_request(b"x");
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let mut o = opts(&tsa, b"x");
    o.anchors = vec![frostamp::x509::CertDer::from_cert(other.ca.certificate()).unwrap()];
    assert!(matches!(
        verify(&issued.response, &o),
        Err(VerifyError::Chain(_))
    ));
    let mut o = opts(&tsa, b"x");
    o.at = Some(SystemClock.now() + Duration::from_secs(2 * 365 * 86400));
    assert!(matches!(
        verify(&issued.response, &o),
        Err(VerifyError::Chain(_))
    ));
    // a token signed by another group under this CA's name fails on the signature
    let issued_other = other.issue(&req, &mut rand::thread_rng()).unwrap();
    let mut o = opts(&tsa, b"x");
    o.anchors
        .push(frostamp::x509::CertDer::from_cert(other.ca.certificate()).unwrap());
    verify(&issued_other.response, &o).unwrap();
}

/// Flip one bit in each byte of the token's signed parts (TSTInfo, signed
/// attributes, signature) and in the embedded certificate: every flip must fail.
#[test]
fn byte_flip_of_every_signed_part_fails() {
    byte_flip_of_every_signed_part_fails_with(&tsa());
}

#[test]
fn byte_flip_of_every_signed_part_of_an_ed25519_token_fails() {
    byte_flip_of_every_signed_part_fails_with(&common::local_tsa_for::<Ed25519Sha512>());
}

fn byte_flip_of_every_signed_part_fails_with<S: Suite>(tsa: &LocalTsa<SystemClock, S>) {
    let data = b"flip me";
    let req = AcceptedRequest::build_der(
        HashAlg::Sha256,
        &HashAlg::Sha256.digest(data),
        Some(&[9; 8]),
        true,
    )
    .unwrap();
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let token = issued.token.clone();
    let o = opts(tsa, data);
    verify(&token, &o).unwrap();
    let parsed = frostamp::verify::token::parse_token(&token).unwrap();
    let find = |needle: &[u8]| -> usize {
        token
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("part present")
    };
    let tst_at = find(&parsed.tst_der);
    let attrs = parsed
        .signer_info
        .signed_attrs
        .as_ref()
        .unwrap()
        .contents()
        .to_vec();
    let attrs_at = find(&attrs);
    let sig = parsed.signer_info.signature.as_bytes().to_vec();
    let sig_at = find(&sig);
    let cert_at = find(&tsa.tsa_cert);
    let mut ranges = vec![
        ("TSTInfo", tst_at..tst_at + parsed.tst_der.len()),
        ("signedAttrs", attrs_at..attrs_at + attrs.len()),
        ("signature", sig_at..sig_at + sig.len()),
        ("certificate", cert_at..cert_at + tsa.tsa_cert.len()),
    ];
    let mut tried = 0;
    for (name, range) in ranges.drain(..) {
        for i in range {
            for bit in [0x01u8, 0x80] {
                let mut t = token.clone();
                t[i] ^= bit;
                tried += 1;
                assert!(
                    verify(&t, &o).is_err(),
                    "flip of {name} byte {i} bit {bit:#x} still verifies"
                );
            }
        }
    }
    assert!(tried > 1000);
}

#[test]
fn skewed_signers_refuse_and_are_replaced() {
    let base = SystemClock;
    let skewed: Arc<dyn Clock> = Arc::new(SkewedClock::ahead(base, Duration::from_secs(5)));
    // signers 1 and 2 are 5 s ahead: the coordinator must use 3, 4, 5.
    let tsa = DevTsa::new()
        .signer_clocks(vec![skewed.clone(), skewed])
        .build::<Secp256K1Sha256>(&mut rand::thread_rng())
        .unwrap();
    let issued = tsa
        .issue(&common::sha256_request(b"t"), &mut rand::thread_rng())
        .unwrap();
    assert_eq!(issued.excluded.len(), 2);
    for (_, why) in &issued.excluded {
        assert!(matches!(
            why,
            Exclusion::Refused(Refusal::GenTimeOutOfTolerance { .. })
        ));
    }
    verify(&issued.response, &opts_for(&tsa, b"t")).unwrap();
}

#[test]
fn no_quorum_on_time_is_time_not_available() {
    let skewed: Arc<dyn Clock> =
        Arc::new(SkewedClock::behind(SystemClock, Duration::from_secs(30)));
    let tsa = DevTsa::new()
        .signer_clocks(vec![skewed.clone(), skewed.clone(), skewed])
        .build::<Secp256K1Sha256>(&mut rand::thread_rng())
        .unwrap();
    let failure = time_not_available(&tsa);
    let err = verify(&failure.response, &opts_for(&tsa, b"t")).unwrap_err();
    assert!(
        matches!(err, VerifyError::Rejected { ref fail_info, .. } if fail_info == &["timeNotAvailable"])
    );
}

#[test]
fn coordinator_with_a_backdated_clock_gets_no_signature() {
    // The coordinator proposes genTime from a clock 1 hour behind; honest signers refuse.
    let past = SystemClock.now() - Duration::from_secs(3600);
    let tsa = DevTsa::new()
        .clock(FixedClock(past))
        .build::<Secp256K1Sha256>(&mut rand::thread_rng())
        .unwrap();
    let failure = time_not_available(&tsa);
    // Three refusals leave two candidates, fewer than t: nobody else is asked.
    assert_eq!(failure.excluded.len(), 3);
    assert!(failure
        .excluded
        .iter()
        .all(|(_, e)| matches!(e, Exclusion::Refused(Refusal::GenTimeOutOfTolerance { .. }))));
}

#[test]
fn bad_requests_get_rejections_not_tokens() {
    let tsa = tsa();
    let failure = tsa
        .issue(b"\x30\x03\x02\x01\x01", &mut rand::thread_rng())
        .unwrap_err();
    assert_eq!(failure.rejection.failure_info(), FailureInfo::BadRequest);
    let resp = frostamp::tsp::asn1::TimeStampResp::from_der(&failure.response).unwrap();
    assert!(resp.time_stamp_token.is_none());
    assert!(resp.status.status_string.unwrap()[0].contains("malformed"));
    let _ = resp.status.fail_info.unwrap().to_der().unwrap();
}

/// Issues a request for the data `t` with `tsa` and asserts that it is refused with
/// timeNotAvailable; the failure.
fn time_not_available<C: Clock>(
    tsa: &LocalTsa<C>,
) -> frostamp::threshold::coordinator::IssueFailure {
    let failure = tsa
        .issue(&common::sha256_request(b"t"), &mut rand::thread_rng())
        .unwrap_err();
    assert_eq!(
        failure.rejection.failure_info(),
        FailureInfo::TimeNotAvailable
    );
    failure
}

/// Verification of a token of `tsa` for `data` against its CA, any policy.
fn opts_for<C: Clock, S: Suite>(tsa: &LocalTsa<C, S>, data: &[u8]) -> VerifyOptions {
    VerifyOptions {
        expected: Expected::Data(data.to_vec()),
        anchors: vec![frostamp::x509::CertDer::from_cert(tsa.ca.certificate()).unwrap()],
        extra_certs: vec![],
        at: None,
        nonce: None,
        policy: None,
        time: None,
    }
}

/// RFC 8419 §3.1 as built and as checked: an Ed25519 token's SignerInfo has
/// signatureAlgorithm id-Ed25519 without parameters, digestAlgorithm id-sha512 and a
/// 64-byte messageDigest; a secp256k1 token keeps SHA-256. The twin: the same Ed25519
/// token relabelled with digestAlgorithm SHA-256 (re-encoded, so only the label
/// changed) is refused.
#[test]
fn ed25519_signer_info_follows_rfc8419() {
    let data = b"rfc 8419";
    let req = common::sha256_request(data);
    let ed = common::local_tsa_for::<Ed25519Sha512>();
    let issued = ed.issue(&req, &mut rand::thread_rng()).unwrap();
    let parsed = frostamp::verify::token::parse_token(&issued.token).unwrap();
    let si = &parsed.signer_info;
    assert_eq!(si.signature_algorithm.oid, frostamp::oid::std_oids::ED25519);
    assert!(si.signature_algorithm.parameters.is_none());
    assert_eq!(si.digest_alg.oid, frostamp::oid::std_oids::SHA512);
    assert_eq!(si.signature.as_bytes().len(), 64);
    let k1 = tsa().issue(&req, &mut rand::thread_rng()).unwrap();
    let k1_si = frostamp::verify::token::parse_token(&k1.token)
        .unwrap()
        .signer_info;
    assert_eq!(k1_si.digest_alg.oid, frostamp::oid::std_oids::SHA256);
    assert_eq!(k1_si.signature.as_bytes().len(), 65);
    verify(&issued.token, &opts(&ed, data)).unwrap();
    // The twin: digestAlgorithm SHA-256 (the 9-byte OID content differs in its last
    // byte only: ...02 01 for SHA-256, ...02 03 for SHA-512).
    let sha512 = frostamp::oid::std_oids::SHA512.to_der().unwrap();
    let sha256 = frostamp::oid::std_oids::SHA256.to_der().unwrap();
    let mut relabelled = issued.token.clone();
    let mut replaced = 0;
    let mut i = 0;
    while i + sha512.len() <= relabelled.len() {
        if relabelled[i..i + sha512.len()] == sha512[..] {
            relabelled[i..i + sha512.len()].copy_from_slice(&sha256);
            replaced += 1;
        }
        i += 1;
    }
    assert_eq!(
        replaced, 2,
        "digestAlgorithms and the SignerInfo's digestAlgorithm"
    );
    assert!(verify(&relabelled, &opts(&ed, data)).is_err());
}
