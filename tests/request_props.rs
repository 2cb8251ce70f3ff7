//! Property tests of the untrusted-input boundaries: `TimeStampReq` parsing,
//! rejection responses, and relying-party token verification.
//!
//! - arbitrary bytes into `tsp::request::parse` never panic and are refused
//!   with a PKIFailureInfo;
//! - truncations, bit flips and appended bytes of valid requests never panic,
//!   and whatever is accepted re-parses to the same request;
//! - every rejection encodes as a `TimeStampResp` with status 2 and exactly
//!   its one failure bit;
//! - arbitrary bytes, and mutations of real responses and tokens, into
//!   `verify::token::verify` with arbitrary options never panic.
//!
//! Case counts keep the file well under 20 s in a debug build.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;

use der::{Decode, Encode};
use frostamp::tsp::asn1::{TimeStampReq, TimeStampResp};
use frostamp::tsp::request::{
    parse, AcceptedRequest, FailureInfo, HashAlg, Rejection, SystemFailure,
};
use frostamp::tsp::response::{decode_failure_info, rejected, PkiStatus};
use frostamp::tsp::TsaProfile;
use frostamp::verify::token::{parse_token, verify, Expected, VerifyOptions};
use frostamp::x509::CertDer;
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

fn profile() -> TsaProfile {
    TsaProfile::frostamp_default()
}

/// (c): `rejected(r)` decodes back with status rejection, exactly r's failure
/// bit, the reason as statusString and no token.
fn check_rejection_response(r: &Rejection) -> Result<(), TestCaseError> {
    let der = rejected(r).map_err(|e| TestCaseError::fail(format!("encode {r:?}: {e}")))?;
    let resp =
        TimeStampResp::from_der(&der).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(resp.status.status.as_bytes(), &[2u8][..]);
    prop_assert_eq!(
        PkiStatus::from_int(&resp.status.status),
        Some(PkiStatus::Rejection)
    );
    prop_assert!(resp.time_stamp_token.is_none());
    let bits = resp
        .status
        .fail_info
        .as_ref()
        .ok_or_else(|| TestCaseError::fail("no failInfo"))?;
    let (known, unknown) = decode_failure_info(bits);
    prop_assert_eq!(known, vec![r.failure_info()]);
    prop_assert!(unknown.is_empty());
    // Exactly one bit set, and it is the named one.
    let set: Vec<usize> = bits
        .bits()
        .enumerate()
        .filter(|(_, b)| *b)
        .map(|(i, _)| i)
        .collect();
    prop_assert_eq!(set, vec![usize::from(r.failure_info().bit())]);
    prop_assert_eq!(resp.status.status_string, Some(vec![r.to_string()]));
    // DER is canonical: re-encoding the decoded response gives the same bytes.
    prop_assert_eq!(resp_to_der(&der)?, der);
    Ok(())
}

fn resp_to_der(der: &[u8]) -> Result<Vec<u8>, TestCaseError> {
    TimeStampResp::from_der(der)
        .and_then(|r| r.to_der())
        .map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))
}

/// If `bytes` are accepted, the accepted request is a fixed point of parsing
/// and internally consistent.
fn check_accepted(bytes: &[u8], a: &AcceptedRequest) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.der(), bytes);
    prop_assert_eq!(a.imprint().len(), a.hash_alg().digest_len());
    let again = parse(a.der(), &profile());
    prop_assert_eq!(again.as_ref(), Ok(a));
    // Accepted input is DER: it re-encodes to itself.
    let req = TimeStampReq::from_der(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        req.to_der()
            .map_err(|e| TestCaseError::fail(e.to_string()))?,
        bytes.to_vec()
    );
    if let Some(n) = a.nonce() {
        prop_assert!(n.as_bytes().first().is_none_or(|b| b & 0x80 == 0));
    }
    Ok(())
}

fn hash_alg() -> impl Strategy<Value = HashAlg> {
    prop_oneof![
        Just(HashAlg::Sha256),
        Just(HashAlg::Sha384),
        Just(HashAlg::Sha512)
    ]
}

/// A valid request: any accepted algorithm, a digest of the right length, an
/// optional nonce of 0..=20 bytes, either certReq.
fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        hash_alg(),
        prop::collection::vec(any::<u8>(), 64),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..=20)),
        any::<bool>(),
    )
        .prop_map(|(h, digest, nonce, cert_req)| {
            AcceptedRequest::build_der(h, &digest[..h.digest_len()], nonce.as_deref(), cert_req)
                .expect("build request")
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Keep the first `index` bytes (index taken modulo the length).
    Truncate(usize),
    /// XOR byte `index` (modulo the length) with a non-zero mask.
    Flip(usize, u8),
    /// Append one byte.
    Append(u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        any::<u8>().prop_map(Mutation::Append),
    ]
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut v = bytes.to_vec();
    match *m {
        Mutation::Truncate(i) => v.truncate(i % bytes.len().max(1)),
        Mutation::Flip(i, mask) => {
            if !v.is_empty() {
                let i = i % v.len();
                v[i] ^= mask;
            }
        }
        Mutation::Append(b) => v.push(b),
    }
    v
}

/// Every `Rejection` variant, with arbitrary text (any Unicode) where it has any.
fn rejection() -> impl Strategy<Value = Rejection> {
    let text = ".{0,40}";
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(len, max)| Rejection::TooLarge { len, max }),
        text.prop_map(Rejection::Malformed),
        Just(Rejection::BadVersion),
        text.prop_map(Rejection::BadAlg),
        Just(Rejection::BadAlgParameters),
        (hash_alg(), any::<usize>()).prop_map(|(h, got)| Rejection::BadImprintLength {
            alg: h.name().to_string(),
            got,
            want: h.digest_len(),
        }),
        text.prop_map(Rejection::UnacceptedPolicy),
        Just(Rejection::UnacceptedExtension),
        text.prop_map(Rejection::TimeNotAvailable),
        Just(Rejection::SystemFailure(SystemFailure::NotServing)),
        Just(Rejection::SystemFailure(SystemFailure::Internal)),
        (any::<usize>(), any::<usize>()).prop_map(|(have, need)| Rejection::SystemFailure(
            SystemFailure::TooFewSigners { have, need }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// (a) + (c): arbitrary bytes are refused, and the refusal encodes.
    #[test]
    fn arbitrary_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        match parse(&bytes, &profile()) {
            Ok(a) => prop_assert!(false, "random bytes accepted: {a:?}"),
            Err(r) => {
                prop_assert!(FailureInfo::ALL.contains(&r.failure_info()));
                check_rejection_response(&r)?;
            }
        }
    }

    /// (a) with a DER-looking prefix, so that parsing gets past the outer SEQUENCE.
    #[test]
    fn der_prefixed_bytes_are_rejected(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![0x30];
        let len = u8::try_from(body.len()).expect("under 256");
        if len >= 0x80 {
            bytes.push(0x81);
        }
        bytes.push(len);
        bytes.extend_from_slice(&body);
        match parse(&bytes, &profile()) {
            Ok(a) => check_accepted(&bytes, &a)?,
            Err(r) => check_rejection_response(&r)?,
        }
    }

    /// (b) + (c): mutated valid requests never panic; accepted ones are stable,
    /// refused ones encode.
    #[test]
    fn mutated_requests(req in valid_request(), muts in prop::collection::vec(mutation(), 1..4)) {
        let original = parse(&req, &profile());
        prop_assert!(original.is_ok(), "unmutated request refused: {:?}", original);
        let mut bytes = req.clone();
        for m in &muts {
            bytes = apply(&bytes, m);
        }
        match parse(&bytes, &profile()) {
            Ok(a) => check_accepted(&bytes, &a)?,
            Err(r) => check_rejection_response(&r)?,
        }
        // Single mutations with a known outcome.
        for m in &muts {
            let one = apply(&req, m);
            match m {
                // A strict prefix of a DER value is never a complete one.
                Mutation::Truncate(_) => prop_assert!(parse(&one, &profile()).is_err()),
                // Trailing data after the TimeStampReq is refused.
                Mutation::Append(_) => prop_assert_eq!(
                    parse(&one, &profile()).map_err(|r| r.failure_info()),
                    Err(FailureInfo::BadRequest)
                ),
                Mutation::Flip(..) => {
                    if let Ok(a) = parse(&one, &profile()) {
                        check_accepted(&one, &a)?;
                    }
                }
            }
        }
    }

    /// (c) for every rejection variant, not only the ones parsing produces.
    #[test]
    fn every_rejection_encodes(r in rejection()) {
        check_rejection_response(&r)?;
    }
}

// ---------------------------------------------------------------------------
// (d) verification of untrusted bytes.

struct Fixture {
    anchor: CertDer,
    tsa_cert: CertDer,
    response: Vec<u8>,
    token: Vec<u8>,
    rejection: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let tsa = common::DevTsa::new()
            .nt(3, 2)
            .profile(profile())
            .build::<frostamp::threshold::suite::Secp256K1Sha256>(&mut rand::thread_rng())
            .unwrap();
        let req = AcceptedRequest::build_der(
            HashAlg::Sha256,
            &HashAlg::Sha256.digest(b"props"),
            Some(&[0x42; 8]),
            true,
        )
        .expect("request");
        let issued = tsa.issue(&req, &mut rng).expect("issue");
        let failure = tsa.issue(b"\x30\x00", &mut rng).expect_err("rejected");
        Fixture {
            anchor: CertDer::from_cert(tsa.ca.certificate()).expect("anchor"),
            tsa_cert: CertDer::from_der(&tsa.tsa_cert).expect("tsa cert"),
            response: issued.response,
            token: issued.token,
            rejection: failure.response,
        }
    })
}

fn options() -> impl Strategy<Value = VerifyOptions> {
    (
        prop_oneof![
            Just(Expected::Data(b"props".to_vec())),
            prop::collection::vec(any::<u8>(), 0..80).prop_map(Expected::Data),
            prop::collection::vec(any::<u8>(), 0..80).prop_map(Expected::Digest),
        ],
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0u64..(1u64 << 40)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..12)),
        prop::option::of(prop_oneof![
            Just(frostamp::oid::default_tsa_policy()),
            prop::collection::vec(0u32..(1 << 28), 1..6).prop_map(|arcs| {
                let dotted = std::iter::once("1.3".to_string())
                    .chain(arcs.iter().map(u32::to_string))
                    .collect::<Vec<_>>()
                    .join(".");
                frostamp::oid::parse_dotted(&dotted).expect("oid")
            }),
        ]),
    )
        .prop_map(|(expected, with_anchor, with_extra, at, nonce, policy)| {
            let f = fixture();
            VerifyOptions {
                expected,
                anchors: if with_anchor {
                    vec![f.anchor.clone()]
                } else {
                    vec![]
                },
                extra_certs: if with_extra {
                    vec![f.tsa_cert.clone()]
                } else {
                    vec![]
                },
                at: at.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                nonce,
                policy,
                time: None,
            }
        })
}

#[test]
fn fixture_verifies() {
    let f = fixture();
    let opts = VerifyOptions {
        expected: Expected::Data(b"props".to_vec()),
        anchors: vec![f.anchor.clone()],
        extra_certs: vec![],
        at: None,
        nonce: Some(vec![0x42; 8]),
        policy: Some(frostamp::oid::default_tsa_policy()),
        time: None,
    };
    verify(&f.response, &opts).expect("response verifies");
    verify(&f.token, &opts).expect("token verifies");
    assert!(verify(&f.rejection, &opts).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// (d) arbitrary bytes with arbitrary options: an error, never a panic.
    #[test]
    fn verify_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        opts in options(),
    ) {
        prop_assert!(verify(&bytes, &opts).is_err());
        let _ = parse_token(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (d) mutated real responses, tokens and rejections with arbitrary options:
    /// any result, never a panic.
    #[test]
    fn verify_mutated_tokens(
        which in 0usize..3,
        muts in prop::collection::vec(mutation(), 1..3),
        opts in options(),
    ) {
        let f = fixture();
        let base = match which {
            0 => &f.response,
            1 => &f.token,
            _ => &f.rejection,
        };
        let mut bytes = base.clone();
        for m in &muts {
            bytes = apply(&bytes, m);
        }
        let _ = verify(&bytes, &opts);
        let _ = parse_token(&bytes);
    }
}
