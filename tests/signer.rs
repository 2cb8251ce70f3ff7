//! The signer checks what it signs (DESIGN §2.6): a malicious coordinator that
//! sends arbitrary bytes, a foreign policy, a backdated genTime, another
//! certificate, or replays a commitment gets no signature share.

use der::{Decode, Encode};
use frostamp::clock::SystemClock;
use frostamp::local::LocalTsa;
use frostamp::threshold::signer::{Refusal, SignRequest, SigningProposal};
use frostamp::tsp::asn1::TimeStampReq;
use frostamp::tsp::request::{AcceptedRequest, HashAlg, Rejection};
use frostamp::tsp::token::{CertIdentity, Serial};
use frostamp::tsp::TsaProfile;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

fn tsa() -> LocalTsa<SystemClock> {
    LocalTsa::new(
        5,
        3,
        TsaProfile::frostamp_default(),
        SystemClock,
        Arc::new(SystemClock),
        vec![],
        &mut rand::thread_rng(),
    )
    .unwrap()
}

fn now_millis() -> u64 {
    u64::try_from(
        frostamp::clock::Clock::now(&SystemClock)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn good_proposal(tsa: &LocalTsa<SystemClock>) -> SigningProposal {
    SigningProposal {
        request_der: AcceptedRequest::build_der(HashAlg::Sha256, &[7; 32], None, true).unwrap(),
        gen_time_unix_millis: now_millis(),
        serial: Serial::random(&mut rand::thread_rng()),
        cert_sha256: CertIdentity::from_der(&tsa.tsa_cert)
            .unwrap()
            .sha256()
            .to_vec(),
    }
}

/// Ask signers 1..=3 to sign `proposal`; returns signer 1's answer.
fn ask(
    tsa: &LocalTsa<SystemClock>,
    proposal: SigningProposal,
) -> (
    Result<frostamp::threshold::frost::round2::SignatureShare, Refusal>,
    SignRequest,
) {
    let mut commitments = BTreeMap::new();
    for s in &tsa.signers[..3] {
        commitments.insert(s.identifier(), s.commit(&mut rand::thread_rng()).unwrap());
    }
    let req = SignRequest {
        proposal,
        commitments,
    };
    (tsa.signers[0].sign(&req), req)
}

#[test]
fn honest_proposal_is_signed_once_and_replay_is_refused() {
    let tsa = tsa();
    let (first, req) = ask(&tsa, good_proposal(&tsa));
    first.unwrap();
    assert_eq!(
        tsa.signers[0].sign(&req).unwrap_err(),
        Refusal::UnknownCommitment
    );
}

#[test]
fn arbitrary_bytes_are_never_signed() {
    let tsa = tsa();
    let mut p = good_proposal(&tsa);
    p.request_der = b"please sign this arbitrary message".to_vec();
    let (r, _) = ask(&tsa, p);
    assert!(matches!(
        r.unwrap_err(),
        Refusal::Request(Rejection::Malformed(_))
    ));
}

#[test]
fn foreign_policy_is_refused() {
    let tsa = tsa();
    let mut p = good_proposal(&tsa);
    let mut req = TimeStampReq::from_der(&p.request_der).unwrap();
    req.req_policy = Some(frostamp::oid::Oid::from_dotted("1.3.6.1.4.1.99999.1").unwrap());
    p.request_der = req.to_der().unwrap();
    let (r, _) = ask(&tsa, p);
    assert!(matches!(
        r.unwrap_err(),
        Refusal::Request(Rejection::UnacceptedPolicy(_))
    ));
}

#[test]
fn backdated_and_future_gen_time_are_refused() {
    let tsa = tsa();
    for offset in [-5_000i64, 5_000, -3_600_000] {
        let mut p = good_proposal(&tsa);
        p.gen_time_unix_millis = p.gen_time_unix_millis.checked_add_signed(offset).unwrap();
        let (r, _) = ask(&tsa, p);
        assert!(
            matches!(r.unwrap_err(), Refusal::GenTimeOutOfTolerance { .. }),
            "offset {offset}"
        );
    }
    // inside the tolerance is fine
    let mut p = good_proposal(&tsa);
    p.gen_time_unix_millis -= 500;
    ask(&tsa, p).0.unwrap();
}

#[test]
fn another_certificate_is_refused() {
    let tsa = tsa();
    let mut p = good_proposal(&tsa);
    p.cert_sha256 = vec![0; 32];
    assert_eq!(ask(&tsa, p).0.unwrap_err(), Refusal::CertificateMismatch);
}

#[test]
fn a_certificate_for_another_key_cannot_be_installed() {
    let tsa = tsa();
    let other = self::tsa();
    let signer = LocalTsa::new(
        3,
        2,
        TsaProfile::frostamp_default(),
        SystemClock,
        Arc::new(SystemClock),
        vec![],
        &mut rand::thread_rng(),
    )
    .unwrap()
    .signers
    .remove(0);
    let foreign = CertIdentity::from_der(&other.tsa_cert).unwrap();
    assert_eq!(
        signer.install_certificate(foreign).unwrap_err(),
        Refusal::CertificateKeyMismatch
    );
    // the CA certificate (P-256 key) is refused as well
    let ca = CertIdentity::from_der(&tsa.ca.certificate_der().unwrap()).unwrap();
    assert_eq!(
        signer.install_certificate(ca).unwrap_err(),
        Refusal::CertificateKeyMismatch
    );
}

#[test]
fn too_few_commitments_are_refused() {
    let tsa = tsa();
    let s = &tsa.signers[0];
    let mut commitments = BTreeMap::new();
    commitments.insert(s.identifier(), s.commit(&mut rand::thread_rng()).unwrap());
    let req = SignRequest {
        proposal: good_proposal(&tsa),
        commitments,
    };
    assert!(matches!(
        s.sign(&req).unwrap_err(),
        Refusal::TooFewSigners {
            got: 1,
            threshold: 3
        }
    ));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let tsa = tsa();
    let dbg = format!("{:?} {:?}", tsa.signers[0], tsa.ca);
    assert!(dbg.contains("<redacted>"));
    let share = frostamp::threshold::frost::keys::SigningShare::deserialize(&[1u8; 32]).unwrap();
    let (nonces, _) = frostamp::threshold::frost::round1::commit(&share, &mut rand::thread_rng());
    let wrapped = frostamp::threshold::signer::SignerNonces::new(nonces);
    assert_eq!(format!("{wrapped:?}"), "SignerNonces(<redacted>)");
}
