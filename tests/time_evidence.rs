//! Time evidence (issue 12): signers sign only the genTime their evidence gives, whatever
//! their own clock says (it only guards against the future); relying parties check the
//! evidence a token carries. Roughtime replies here come from the test server of
//! `roughtime_support` (real Ed25519 signatures, RFC 10049 framing); the multi-process
//! tests in `tests/cluster.rs` use real `roughenough` servers.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod roughtime_support;

mod common;

use der::Encode;
use frostamp::clock::{Clock, SkewedClock, SystemClock};
use frostamp::local::LocalTsa;
use frostamp::threshold::coordinator::{aggregate_checked, Backed};
use frostamp::threshold::frost;
use frostamp::threshold::keys::GroupKey;
use frostamp::threshold::signer::{time_leaf, Refusal, SignRequest, SigningProposal, TimeRule};
use frostamp::time::evidence::{
    self, Batch, EvidenceError, RoughtimeReply, TimeClaim, TimeEvidence, TimePolicy,
};
use frostamp::time::roughtime::{encode_request, ServerSpec, Version};
use frostamp::tsp::request::{self, AcceptedRequest, HashAlg};
use frostamp::tsp::token::{self, CertIdentity, Serial, TimeBacking};
use frostamp::tsp::TsaProfile;
use frostamp::verify::token::{verify, Expected, VerifyError, VerifyOptions};
use roughtime_support::{public_key_from_seed, respond, ServerConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const SEEDS: [[u8; 32]; 3] = [[0x11; 32], [0x22; 32], [0x33; 32]];

fn specs() -> Vec<ServerSpec> {
    SEEDS
        .iter()
        .enumerate()
        .map(|(i, seed)| ServerSpec {
            name: format!("local-{}", i + 1),
            public_key: public_key_from_seed(seed),
            version: Version::Rfc,
        })
        .collect()
}

fn policy() -> TimePolicy {
    TimePolicy {
        servers: specs(),
        quorum: 2,
        agreement: evidence::AGREEMENT,
    }
}

fn now_secs() -> u64 {
    SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn tsa(signer_clock: Arc<dyn Clock>) -> LocalTsa<SystemClock> {
    common::DevTsa::new()
        .default_clock(signer_clock)
        .time(TimeRule::Evidence(policy()))
        .build(&mut rand::thread_rng())
        .unwrap()
}

fn request(imprint: u8) -> Vec<u8> {
    AcceptedRequest::build_der(HashAlg::Sha256, &[imprint; 32], Some(&[imprint, 1]), true).unwrap()
}

fn leaf_of(request_der: &[u8]) -> [u8; 32] {
    let accepted = request::parse(request_der, &TsaProfile::frostamp_default()).unwrap();
    time_leaf(&accepted).unwrap()
}

/// Evidence for each request of one batch, from the servers at `midpoints` (`None`:
/// that server does not answer).
fn batch_evidence(requests: &[Vec<u8>], midpoints: [Option<u64>; 3]) -> Vec<TimeEvidence> {
    let leaves: Vec<[u8; 32]> = requests.iter().map(|r| leaf_of(r)).collect();
    let batch = Batch::new(&leaves).unwrap();
    let root = batch.root();
    let replies: Vec<RoughtimeReply> = specs()
        .iter()
        .zip(SEEDS)
        .zip(midpoints)
        .filter_map(|((spec, seed), midp)| {
            let midp = midp?;
            let packet = encode_request(&root, spec);
            let response = respond(&ServerConfig::rfc(seed, midp), &[packet]).remove(0);
            Some(RoughtimeReply {
                public_key: der::asn1::OctetString::new(spec.public_key.to_vec()).unwrap(),
                version: 1,
                response: der::asn1::OctetString::new(response).unwrap(),
            })
        })
        .collect();
    (0..requests.len())
        .map(|i| TimeEvidence {
            version: evidence::EVIDENCE_VERSION,
            leaf_index: i as u32,
            path: batch
                .path(i)
                .iter()
                .map(|p| der::asn1::OctetString::new(p.to_vec()).unwrap())
                .collect(),
            replies: replies.clone(),
        })
        .collect()
}

fn claim_of(request_der: &[u8], ev: &TimeEvidence) -> TimeClaim {
    evidence::check(&policy(), &leaf_of(request_der), ev).unwrap()
}

fn proposal(
    tsa: &LocalTsa<SystemClock>,
    request_der: &[u8],
    gen_time_secs: u64,
    ev: &TimeEvidence,
) -> SigningProposal {
    SigningProposal {
        request_der: request_der.to_vec(),
        gen_time_unix_millis: gen_time_secs * 1000,
        serial: Serial::random(&mut rand::thread_rng()),
        cert_sha256: CertIdentity::from_der(&tsa.tsa_cert)
            .unwrap()
            .sha256()
            .to_vec(),
        time_evidence: ev.to_der().unwrap(),
    }
}

/// Signers 1..=3 asked to sign; signer 1's answer.
fn ask(
    tsa: &LocalTsa<SystemClock>,
    p: SigningProposal,
) -> Result<frost::round2::SignatureShare, Refusal> {
    let mut commitments = BTreeMap::new();
    for s in &tsa.signers[..3] {
        commitments.insert(s.identifier(), s.commit(&mut rand::thread_rng()).unwrap());
    }
    tsa.signers[0].sign(&SignRequest {
        proposal: p,
        commitments,
    })
}

#[test]
fn the_evidence_gives_gen_time_and_an_honest_proposal_is_signed() {
    let tsa = tsa(Arc::new(SystemClock));
    let now = now_secs();
    let reqs = [request(1), request(2), request(3)];
    let evs = batch_evidence(&reqs, [Some(now), Some(now + 1), Some(now)]);
    for (r, ev) in reqs.iter().zip(&evs) {
        let c = claim_of(r, ev);
        assert_eq!(
            c.gen_time_secs,
            now + 1 + 3,
            "the latest upper end (radius 3 s)"
        );
        assert_eq!(c.accuracy_secs, 3 + 1 + 3);
        assert_eq!(c.vouched.len(), 3);
        ask(&tsa, proposal(&tsa, r, c.gen_time_secs, ev)).expect("signed");
    }
}

#[test]
fn a_proposal_earlier_than_the_evidence_allows_is_refused() {
    let tsa = tsa(Arc::new(SystemClock));
    let now = now_secs();
    let r = request(4);
    let ev = batch_evidence(std::slice::from_ref(&r), [Some(now); 3]).remove(0);
    let c = claim_of(&r, &ev);
    for earlier in [1, 3600] {
        let e = ask(&tsa, proposal(&tsa, &r, c.gen_time_secs - earlier, &ev)).unwrap_err();
        assert!(matches!(e, Refusal::GenTimeNotFromEvidence { .. }), "{e}");
    }
    // Later than the evidence gives is refused too: genTime is exactly what it gives.
    let e = ask(&tsa, proposal(&tsa, &r, c.gen_time_secs + 1, &ev)).unwrap_err();
    assert!(matches!(e, Refusal::GenTimeNotFromEvidence { .. }), "{e}");
}

#[test]
fn evidence_of_an_earlier_batch_or_without_its_path_is_refused() {
    let tsa = tsa(Arc::new(SystemClock));
    let now = now_secs();
    let earlier = [request(5), request(6)];
    let old = batch_evidence(&earlier, [Some(now - 60); 3]);
    // A new request with the evidence of an earlier batch (its leaf is not in it).
    let fresh = request(7);
    for ev in &old {
        let e = ask(&tsa, proposal(&tsa, &fresh, now - 57, ev)).unwrap_err();
        assert!(matches!(e, Refusal::TimeEvidence(_)), "{e}");
    }
    // A request of the batch whose path was dropped.
    let mut no_path = old[0].clone();
    no_path.path.clear();
    no_path.leaf_index = 0;
    let e = ask(&tsa, proposal(&tsa, &earlier[0], now - 57, &no_path)).unwrap_err();
    assert!(matches!(e, Refusal::TimeEvidence(_)), "{e}");
    // Another request's path within the same batch.
    let mut swapped = old[1].clone();
    swapped.leaf_index = 0;
    let e = ask(&tsa, proposal(&tsa, &earlier[1], now - 57, &swapped)).unwrap_err();
    assert!(matches!(e, Refusal::TimeEvidence(_)), "{e}");
}

#[test]
fn too_few_servers_or_a_liar_without_a_quorum_is_refused_and_a_liar_is_outvoted() {
    let tsa = tsa(Arc::new(SystemClock));
    let now = now_secs();
    let r = request(8);
    // One server only (q = 2).
    let ev = batch_evidence(std::slice::from_ref(&r), [Some(now), None, None]).remove(0);
    assert!(matches!(
        evidence::check(&policy(), &leaf_of(&r), &ev),
        Err(EvidenceError::TooFew { got: 1, quorum: 2 })
    ));
    let e = ask(&tsa, proposal(&tsa, &r, now + 3, &ev)).unwrap_err();
    assert!(matches!(e, Refusal::TimeEvidence(_)), "{e}");
    // Two honest and one an hour behind, all three used: they disagree.
    let ev = batch_evidence(
        std::slice::from_ref(&r),
        [Some(now), Some(now), Some(now - 3600)],
    )
    .remove(0);
    assert!(matches!(
        evidence::check(&policy(), &leaf_of(&r), &ev),
        Err(EvidenceError::Disagree { .. })
    ));
    // The coordinator's selection outvotes the liar, and the rest is signed.
    let vouches: Vec<_> = ev
        .replies
        .iter()
        .map(|reply| {
            let root = evidence::root_from_path(&leaf_of(&r), 0, &[]);
            evidence::verify_reply(&policy(), &root, reply).unwrap()
        })
        .collect();
    let (chosen, outvoted) = evidence::select(&policy(), &vouches);
    assert_eq!(outvoted, vec![2], "local-3 is named");
    let mut honest = ev.clone();
    honest.replies = chosen.iter().map(|i| ev.replies[*i].clone()).collect();
    let c = claim_of(&r, &honest);
    ask(&tsa, proposal(&tsa, &r, c.gen_time_secs, &honest)).expect("signed");
    // A reply with a bad signature is refused by name.
    let mut bad = honest.clone();
    let mut bytes = bad.replies[0].response.as_bytes().to_vec();
    bytes[20] ^= 1; // inside SIG
    bad.replies[0].response = der::asn1::OctetString::new(bytes).unwrap();
    match evidence::check(&policy(), &leaf_of(&r), &bad) {
        Err(EvidenceError::Reply { server, .. }) => assert_eq!(server, "local-1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_signer_clock_an_hour_behind_refuses_an_hour_ahead_signs_the_evidence_time() {
    let now = now_secs();
    let r = request(9);
    let ev = batch_evidence(std::slice::from_ref(&r), [Some(now); 3]).remove(0);
    let c = claim_of(&r, &ev);
    // Every signer's host clock an hour behind: the evidence looks like the future.
    let behind = tsa(Arc::new(SkewedClock::behind(
        SystemClock,
        Duration::from_secs(3600),
    )));
    let e = ask(&behind, proposal(&behind, &r, c.gen_time_secs, &ev)).unwrap_err();
    assert!(matches!(e, Refusal::FutureTime { .. }), "{e}");
    // An hour ahead: the host clock does not move genTime; the evidence's time is signed.
    let ahead = tsa(Arc::new(SkewedClock::ahead(
        SystemClock,
        Duration::from_secs(3600),
    )));
    ask(&ahead, proposal(&ahead, &r, c.gen_time_secs, &ev)).expect("signed");
    let e = ask(&ahead, proposal(&ahead, &r, now + 3600, &ev)).unwrap_err();
    assert!(matches!(e, Refusal::GenTimeNotFromEvidence { .. }), "{e}");
}

/// A whole token: coordinator and three signers, then the relying party's verifier.
fn issue(tsa: &LocalTsa<SystemClock>, r: &[u8], ev: &TimeEvidence) -> Vec<u8> {
    let c = claim_of(r, ev);
    let der = ev.to_der().unwrap();
    let prepared = tsa
        .coordinator
        .prepare(
            r,
            Some(Backed {
                evidence_der: &der,
                claim: &c,
            }),
            &mut rand::thread_rng(),
        )
        .unwrap();
    let mut commitments = BTreeMap::new();
    for s in &tsa.signers[..3] {
        commitments.insert(s.identifier(), s.commit(&mut rand::thread_rng()).unwrap());
    }
    let req = SignRequest {
        proposal: prepared.proposal.clone(),
        commitments: commitments.clone(),
    };
    let shares: BTreeMap<_, _> = tsa.signers[..3]
        .iter()
        .map(|s| (s.identifier(), s.sign(&req).unwrap()))
        .collect();
    tsa.coordinator
        .finish(&prepared, commitments, &shares)
        .unwrap()
        .0
}

fn verify_opts(tsa: &LocalTsa<SystemClock>, r: &[u8]) -> VerifyOptions {
    let accepted = request::parse(r, &TsaProfile::frostamp_default()).unwrap();
    VerifyOptions {
        expected: Expected::Digest(
            accepted
                .message_imprint()
                .unwrap()
                .hashed_message
                .as_bytes()
                .to_vec(),
        ),
        anchors: vec![frostamp::x509::CertDer::from_cert(tsa.ca.certificate()).unwrap()],
        extra_certs: vec![],
        at: None,
        nonce: None,
        policy: None,
        time: Some(policy()),
    }
}

#[test]
fn a_token_carries_its_evidence_and_the_verifier_checks_every_byte_of_it() {
    let tsa = tsa(Arc::new(SystemClock));
    let now = now_secs();
    let r = request(10);
    let ev = batch_evidence(std::slice::from_ref(&r), [Some(now), Some(now), None]).remove(0);
    let tok = issue(&tsa, &r, &ev);
    let v = verify(&tok, &verify_opts(&tsa, &r)).expect("verifies");
    let t = v.time_evidence.expect("evidence reported");
    assert_eq!(t.vouched.len(), 2);
    assert_eq!(t.gen_time_secs, now + 3);
    assert_eq!(v.accuracy.as_deref(), Some("±6 s"), "{:?}", v.accuracy);
    // Without the servers' keys (the build's pinned list), the evidence is refused.
    let mut pinned = verify_opts(&tsa, &r);
    pinned.time = None;
    assert!(matches!(
        verify(&tok, &pinned),
        Err(VerifyError::TimeEvidence(EvidenceError::UnknownServer(_)))
    ));
    // Every byte of the evidence matters, inside the token (the signature breaks) and
    // on its own (the evidence check breaks).
    let der = ev.to_der().unwrap();
    let at = tok
        .windows(der.len())
        .position(|w| w == der.as_slice())
        .expect("the evidence is in the token");
    let leaf = leaf_of(&r);
    for i in 0..der.len() {
        let mut t2 = tok.clone();
        t2[at + i] ^= 0x01;
        assert!(
            verify(&t2, &verify_opts(&tsa, &r)).is_err(),
            "token byte {i}"
        );
        let mut d2 = der.clone();
        d2[i] ^= 0x01;
        let ok = TimeEvidence::from_der_bounded(&d2)
            .and_then(|e| evidence::check(&policy(), &leaf, &e))
            .is_ok();
        assert!(!ok, "evidence byte {i} flipped still checks");
    }
}

#[test]
fn the_verifier_refuses_a_token_dated_before_its_evidence() {
    // A rogue key (not a frostamp cluster: it signs whatever it is given) dates a token
    // an hour before its evidence; the verifier must say so.
    let mut rng = rand::thread_rng();
    let (secret_shares, public) =
        frost::keys::generate_with_dealer(5, 3, frost::keys::IdentifierList::Default, &mut rng)
            .unwrap();
    let group = GroupKey::new(public);
    let tsa = tsa(Arc::new(SystemClock)); // for its CA
    let now = SystemClock.now() - Duration::from_secs(7200);
    let cert = tsa
        .ca
        .issue_tsa_certificate(
            &group.public(),
            None,
            "CN=rogue TSA,O=test",
            now,
            Duration::from_secs(86400),
            &mut rng,
        )
        .unwrap();
    let identity = CertIdentity::from_der(&cert).unwrap();
    let r = request(11);
    let ev = batch_evidence(std::slice::from_ref(&r), [Some(now_secs()); 3]).remove(0);
    let c = claim_of(&r, &ev);
    let der = ev.to_der().unwrap();
    let accepted = request::parse(&r, &TsaProfile::frostamp_default()).unwrap();
    let backdated = frostamp::tsp::time::GenTime::from_unix_duration(Duration::from_secs(
        c.gen_time_secs - 3600,
    ))
    .unwrap();
    let content = token::build_signed_content::<frost::Secp256K1Sha256>(
        &TsaProfile::frostamp_default(),
        &identity,
        &accepted,
        backdated,
        &Serial::random(&mut rng),
        Some(TimeBacking {
            evidence_der: &der,
            accuracy_secs: c.accuracy_secs,
        }),
    )
    .unwrap();
    let message = content.message().unwrap();
    let kps: Vec<frost::keys::KeyPackage> = secret_shares
        .into_values()
        .take(3)
        .map(|s| frost::keys::KeyPackage::try_from(s).unwrap())
        .collect();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for kp in &kps {
        let (n, cm) = frost::round1::commit(kp.signing_share(), &mut rng);
        nonces.insert(*kp.identifier(), n);
        commitments.insert(*kp.identifier(), cm);
    }
    let package = frost::SigningPackage::new(commitments.clone(), &message);
    let shares: BTreeMap<_, _> = kps
        .iter()
        .map(|kp| {
            let n = &nonces[kp.identifier()];
            (
                *kp.identifier(),
                frost::round2::sign(&package, n, kp).unwrap(),
            )
        })
        .collect();
    let sig = aggregate_checked(&group, commitments, &message, &shares).unwrap();
    let tok = token::assemble::<frost::Secp256K1Sha256>(
        &content,
        &identity,
        std::slice::from_ref(&cert),
        &sig,
    )
    .unwrap();
    let mut opts = verify_opts(&tsa, &r);
    opts.extra_certs = vec![frostamp::x509::CertDer::from_der(&cert).unwrap()];
    match verify(&tok, &opts) {
        Err(VerifyError::Backdated { .. }) => {}
        other => panic!("expected Backdated, got {other:?}"),
    }
}
