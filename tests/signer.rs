//! The signer checks what it signs (DESIGN §2.6): a malicious coordinator that
//! sends arbitrary bytes, a foreign policy, a backdated genTime, another
//! certificate, or replays a commitment gets no signature share.
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
use frostamp::clock::SystemClock;
use frostamp::local::LocalTsa;
use frostamp::threshold::signer::{
    EncodedCommitments, Owner, Refusal, SignRequest, SigningProposal, COMMITMENTS_LEN,
    MAX_COMMIT_BATCH, MAX_OUTSTANDING_NONCES,
};
use frostamp::threshold::suite::{Ciphersuite, Ed25519Sha512, Secp256K1Sha256, Suite};
use frostamp::tsp::asn1::TimeStampReq;
use frostamp::tsp::request::{AcceptedRequest, HashAlg, Rejection};
use frostamp::tsp::token::{CertIdentity, Serial};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

fn tsa() -> LocalTsa<SystemClock> {
    common::local_tsa()
}

/// The in-process TSA of ciphersuite `S`.
fn tsa_of<S: Suite>() -> LocalTsa<SystemClock, S> {
    common::local_tsa_for()
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

fn good_proposal<S: Suite>(tsa: &LocalTsa<SystemClock, S>) -> SigningProposal {
    SigningProposal {
        request_der: AcceptedRequest::build_der(HashAlg::Sha256, &[7; 32], None, true).unwrap(),
        gen_time_unix_millis: now_millis(),
        serial: Serial::random(&mut rand::thread_rng()),
        cert_sha256: CertIdentity::from_der(&tsa.tsa_cert)
            .unwrap()
            .sha256()
            .to_vec(),
        time_evidence: Vec::new(),
    }
}

/// Ask signers 1..=3 to sign `proposal`; returns signer 1's answer.
fn ask<S: Suite>(
    tsa: &LocalTsa<SystemClock, S>,
    proposal: SigningProposal,
) -> (
    Result<frost_core::round2::SignatureShare<S>, Refusal>,
    SignRequest<S>,
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

/// Signer 1's refusal of [`good_proposal`] changed by `edit` (see [`ask`]).
fn refusal_of(tsa: &LocalTsa<SystemClock>, edit: impl FnOnce(&mut SigningProposal)) -> Refusal {
    let mut p = good_proposal(tsa);
    edit(&mut p);
    ask(tsa, p).0.unwrap_err()
}

#[test]
fn honest_proposal_is_signed_once_and_replay_is_refused() {
    honest_proposal_is_signed_once_and_replay_is_refused_with(&tsa());
}

#[test]
fn honest_ed25519_proposal_is_signed_once_and_replay_is_refused() {
    honest_proposal_is_signed_once_and_replay_is_refused_with(&tsa_of::<Ed25519Sha512>());
}

fn honest_proposal_is_signed_once_and_replay_is_refused_with<S: Suite>(
    tsa: &LocalTsa<SystemClock, S>,
) {
    let (first, req) = ask(tsa, good_proposal(tsa));
    first.unwrap();
    assert_eq!(
        tsa.signers[0].sign(&req).unwrap_err(),
        Refusal::UnknownCommitment
    );
}

#[test]
fn arbitrary_bytes_are_never_signed() {
    let r = refusal_of(&tsa(), |p| {
        p.request_der = b"please sign this arbitrary message".to_vec();
    });
    assert!(matches!(r, Refusal::Request(Rejection::Malformed(_))));
}

#[test]
fn foreign_policy_is_refused() {
    let r = refusal_of(&tsa(), |p| {
        let mut req = TimeStampReq::from_der(&p.request_der).unwrap();
        req.req_policy = Some(frostamp::oid::ObjectIdentifier::new_unwrap(
            "1.3.6.1.4.1.99999.1",
        ));
        p.request_der = req.to_der().unwrap();
    });
    assert!(matches!(
        r,
        Refusal::Request(Rejection::UnacceptedPolicy(_))
    ));
}

#[test]
fn backdated_and_future_gen_time_are_refused() {
    let tsa = tsa();
    for offset in [-5_000i64, 5_000, -3_600_000] {
        let r = refusal_of(&tsa, |p| {
            p.gen_time_unix_millis = p.gen_time_unix_millis.checked_add_signed(offset).unwrap();
        });
        assert!(
            matches!(r, Refusal::GenTimeOutOfTolerance { .. }),
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
    let r = refusal_of(&tsa(), |p| p.cert_sha256 = vec![0; 32]);
    assert_eq!(r, Refusal::CertificateMismatch);
}

#[test]
fn a_certificate_for_another_key_cannot_be_installed() {
    let tsa = tsa();
    let other = self::tsa();
    let signer = common::DevTsa::new()
        .nt(3, 2)
        .build::<frostamp::threshold::suite::Secp256K1Sha256>(&mut rand::thread_rng())
        .unwrap()
        .signers
        .remove(0);
    let foreign = CertIdentity::from_der(&other.tsa_cert).unwrap();
    // the CA certificate (P-256 key) is refused as well
    let ca = CertIdentity::from_der(&tsa.ca.certificate_der().unwrap()).unwrap();
    for cert in [foreign, ca] {
        assert_eq!(
            signer.install_certificate(cert).unwrap_err(),
            Refusal::CertificateKeyMismatch
        );
    }
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

/// A signing request whose signer-1 commitment was issued to `owner` (the other
/// two signers' commitments are their own, local ones).
fn request_with(
    tsa: &LocalTsa<SystemClock>,
    own: frostamp::threshold::frost::round1::SigningCommitments,
) -> SignRequest {
    let mut commitments = BTreeMap::new();
    commitments.insert(tsa.signers[0].identifier(), own);
    for s in &tsa.signers[1..3] {
        commitments.insert(s.identifier(), s.commit(&mut rand::thread_rng()).unwrap());
    }
    SignRequest {
        proposal: good_proposal(tsa),
        commitments,
    }
}

#[test]
fn pre_generated_commitments_serve_only_the_coordinator_they_were_issued_to() {
    let tsa = tsa();
    let s = &tsa.signers[0];
    let batch = s
        .commit_batch(Owner::Peer(2), 8, &mut rand::thread_rng())
        .unwrap();
    assert_eq!(batch.len(), 8);
    assert_eq!(s.outstanding_nonces(), 8);
    // Another coordinator (node 3, or the signer's own node) cannot use them.
    let req = request_with(&tsa, batch[0]);
    assert_eq!(
        s.sign_for(Owner::Peer(3), &req).unwrap_err(),
        Refusal::UnknownCommitment
    );
    assert_eq!(s.sign(&req).unwrap_err(), Refusal::UnknownCommitment);
    // The coordinator they were issued to can, once.
    s.sign_for(Owner::Peer(2), &req).unwrap();
    assert_eq!(
        s.sign_for(Owner::Peer(2), &req).unwrap_err(),
        Refusal::UnknownCommitment
    );
    assert_eq!(s.outstanding_nonces(), 7);
}

#[test]
fn a_reconnecting_coordinator_finds_its_old_commitments_void() {
    let tsa = tsa();
    let s = &tsa.signers[0];
    let batch = s
        .commit_batch(Owner::Peer(2), 4, &mut rand::thread_rng())
        .unwrap();
    // Node 2 restarts: its link closes, the signer forgets what it issued to it.
    s.forget(Owner::Peer(2));
    assert_eq!(s.outstanding_nonces(), 0);
    for c in batch {
        assert_eq!(
            s.sign_for(Owner::Peer(2), &request_with(&tsa, c))
                .unwrap_err(),
            Refusal::UnknownCommitment
        );
    }
}

#[test]
fn concurrent_coordinators_racing_for_one_commitment_get_one_share() {
    let tsa = Arc::new(tsa());
    let c = tsa.signers[0]
        .commit_batch(Owner::Peer(2), 1, &mut rand::thread_rng())
        .unwrap()[0];
    let req = Arc::new(request_with(&tsa, c));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (tsa, req) = (tsa.clone(), req.clone());
            // Half claim to be node 2, half another coordinator.
            let owner = if i % 2 == 0 {
                Owner::Peer(2)
            } else {
                Owner::Peer(4)
            };
            std::thread::spawn(move || tsa.signers[0].sign_for(owner, &req).is_ok())
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, 1, "a commitment signs exactly once");
}

#[test]
fn commitment_batches_are_bounded() {
    let tsa = tsa();
    let s = &tsa.signers[0];
    let mut rng = rand::thread_rng();
    assert!(s.commit_batch(Owner::Peer(2), 0, &mut rng).is_err());
    assert!(s
        .commit_batch(Owner::Peer(2), MAX_COMMIT_BATCH + 1, &mut rng)
        .is_err());
    // A coordinator that hoards commitments only evicts its own oldest ones.
    let other = s.commit_batch(Owner::Peer(3), 1, &mut rng).unwrap()[0];
    let first = s.commit_batch(Owner::Peer(2), 1, &mut rng).unwrap()[0];
    for _ in 0..MAX_OUTSTANDING_NONCES / MAX_COMMIT_BATCH {
        s.commit_batch(Owner::Peer(2), MAX_COMMIT_BATCH, &mut rng)
            .unwrap();
    }
    assert_eq!(s.outstanding_nonces(), MAX_OUTSTANDING_NONCES + 1);
    assert_eq!(
        s.sign_for(Owner::Peer(2), &request_with(&tsa, first))
            .unwrap_err(),
        Refusal::UnknownCommitment,
        "the oldest was evicted"
    );
    s.sign_for(Owner::Peer(3), &request_with(&tsa, other))
        .unwrap();
}

/// `aggregate_checked` no longer verifies the aggregate a second time: it relies on
/// frost-core's `aggregate_custom` verifying it under the group key. This holds the
/// crate to that: what comes back verifies, and one wrong share gives no signature but
/// its sender as the culprit.
#[test]
fn aggregate_checked_verifies_what_it_returns() {
    aggregate_checked_verifies_what_it_returns_with::<Secp256K1Sha256>();
}

#[test]
fn aggregate_checked_verifies_what_it_returns_ed25519() {
    aggregate_checked_verifies_what_it_returns_with::<Ed25519Sha512>();
}

fn aggregate_checked_verifies_what_it_returns_with<S: Suite>() {
    use frostamp::threshold::coordinator::{aggregate_checked, Finish};
    use frostamp::threshold::signer::{commit, sign_share};
    let mut rng = rand::thread_rng();
    let (shares, group) =
        frostamp::threshold::keys::dkg_in_process_for::<S>(5, 3, &mut rng).unwrap();
    let signers = &shares[..3];
    let message = b"aggregate_checked".to_vec();
    let mut nonces = Vec::new();
    let mut commitments = BTreeMap::new();
    for s in signers {
        let (n, c) = commit(s, &mut rng);
        commitments.insert(s.identifier(), c);
        nonces.push(n);
    }
    let mut out = BTreeMap::new();
    for (s, n) in signers.iter().zip(nonces) {
        let share = sign_share(s, n, commitments.clone(), &message).unwrap();
        out.insert(s.identifier(), share);
    }
    let sig = aggregate_checked(&group, commitments.clone(), &message, &out).unwrap();
    assert_eq!(sig.len(), S::SIGNATURE_LEN);
    assert!(group.verify(&message, &sig));
    assert!(!group.verify(b"another message", &sig));

    // The twin: the first signer's share replaced by the second's.
    let ids: Vec<_> = out.keys().copied().collect();
    let mut bad = out.clone();
    let second = bad[&ids[1]];
    bad.insert(ids[0], second);
    match aggregate_checked(&group, commitments, &message, &bad) {
        Err(Finish::Cheaters(c)) => assert_eq!(c, vec![ids[0]]),
        Err(Finish::Failed(r)) => panic!("expected the culprit, got {r:?}"),
        Ok(_) => panic!("a wrong share gave a signature"),
    }
}

/// The signing set as a peer receives it: (index, encoded commitments), signer 1's
/// issued to node 2 ahead of time, signers 2 and 3 with fresh local ones.
fn encoded_set<S: Suite>(tsa: &LocalTsa<SystemClock, S>) -> Vec<(u16, [u8; COMMITMENTS_LEN])> {
    let own = tsa.signers[0]
        .commit_batch_encoded(Owner::Peer(2), 1, &mut rand::thread_rng())
        .unwrap()[0];
    let mut list = vec![(1u16, *own.bytes())];
    for (i, s) in (2u16..).zip(&tsa.signers[1..3]) {
        let c = s.commit_encoded(&mut rand::thread_rng()).unwrap();
        assert_eq!(EncodedCommitments::decode(c.encoded()).unwrap(), c);
        assert_eq!(EncodedCommitments::decode_key(c.bytes()).unwrap(), c);
        // The twin: the padded key is no wire encoding (secp256k1's has no padding).
        assert_eq!(
            EncodedCommitments::<S>::decode(c.bytes()).is_ok(),
            c.encoded().len() == COMMITMENTS_LEN
        );
        list.push((i, *c.bytes()));
    }
    list
}

#[test]
fn encoded_signing_sets_sign_once_for_their_coordinator_and_bad_sets_are_refused() {
    encoded_signing_sets_with(&tsa());
}

#[test]
fn encoded_ed25519_signing_sets_sign_once_and_bad_sets_are_refused() {
    encoded_signing_sets_with(&tsa_of::<Ed25519Sha512>());
}

fn encoded_signing_sets_with<S: Suite>(tsa: &LocalTsa<SystemClock, S>) {
    let s = &tsa.signers[0];
    let proposal = good_proposal(tsa);
    // The coordinator it was issued to gets a share, once.
    let list = encoded_set(tsa);
    assert_eq!(
        s.sign_encoded(Owner::Peer(3), &proposal, &list)
            .unwrap_err(),
        Refusal::UnknownCommitment
    );
    s.sign_encoded(Owner::Peer(2), &proposal, &list).unwrap();
    assert_eq!(
        s.sign_encoded(Owner::Peer(2), &proposal, &list)
            .unwrap_err(),
        Refusal::UnknownCommitment
    );
    // Without this signer's entry: not selected.
    let list = encoded_set(tsa);
    assert_eq!(
        s.sign_encoded(Owner::Peer(2), &proposal, &list[1..])
            .unwrap_err(),
        Refusal::NotSelected
    );
    // Another signer's commitment that is not two points: refused.
    let mut bad = encoded_set(tsa);
    match S::SUITE {
        // No SEC1 tag.
        Ciphersuite::Secp256k1 => bad[1].1[0] = 0x07,
        // The identity (y = 1), which is no nonce commitment.
        Ciphersuite::Ed25519 => {
            bad[1].1[..32].fill(0);
            bad[1].1[0] = 1;
        }
    }
    assert!(matches!(
        s.sign_encoded(Owner::Peer(2), &proposal, &bad),
        Err(Refusal::Frost(_))
    ));
    // An index listed twice: refused.
    let mut twice = encoded_set(tsa);
    twice[2].0 = 2;
    assert!(matches!(
        s.sign_encoded(Owner::Peer(2), &proposal, &twice),
        Err(Refusal::Frost(_))
    ));
    // Below the threshold: refused.
    let short = encoded_set(tsa);
    assert!(matches!(
        s.sign_encoded(Owner::Peer(2), &proposal, &short[..2]),
        Err(Refusal::TooFewSigners { got: 2, .. })
    ));
}
