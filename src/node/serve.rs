//! Threshold signing over the attested peer channels (DESIGN §2 step 6).
//!
//! The node that receives a request coordinates: it prepares the proposal
//! (`Coordinator::prepare`), takes fresh commitments of its own and, for t − 1
//! admitted peers, commitments they issued to it ahead of time (`pool`), sends
//! them the proposal — the one peer round trip of a token — and aggregates the
//! shares with cheater detection (`Coordinator::finish`). A peer that does not answer in time
//! or refuses is replaced by the next one; a peer whose share is invalid is named
//! and excluded. Every signer, the coordinator included, re-validates the
//! proposal with its own clock and certificate before it signs
//! (`Signer::sign`), so the key signs only valid, current timestamp tokens.

use super::metrics::Fetch;
use super::{pool, state::Hold, state::Node, state::SuiteKey};
use crate::api::peer::PeerMessage;
use crate::threshold::coordinator::{
    exclusion, failure, no_quorum_reason, Exclusion, Finish, IssueFailure, PeerError,
};
use crate::threshold::signer::{
    CommitmentKey, CsrRefusal, EncodedCommitments, Owner, Refusal, SigningProposal,
};
use crate::threshold::suite::{BySuite, SuiteMismatch};
use crate::tsp::request::{Rejection, SystemFailure};
use frost_core::{round1::SigningCommitments, round2::SignatureShare, Identifier};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// What a client is told when no quorum of time servers vouched for its request.
const TIME_NOT_AVAILABLE: &str = "no quorum of this TSA's time servers vouched for the request";

/// How long a peer may take to answer one signing message.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// A value for a peer message, of suite `S`.
fn wrap<A: 'static, B: 'static, T: 'static>(value: T) -> Result<BySuite<A, B>, Refusal> {
    BySuite::new(value).ok_or_else(|| Refusal::Suite("a ciphersuite frostamp does not run".into()))
}

/// A refusal for a value of another suite than this node's epoch.
fn mismatch(e: SuiteMismatch) -> Refusal {
    Refusal::Suite(e.to_string())
}

/// Signer side: answer a `SignCommit`, `SignRound2` or `SignCsr` from peer `from`.
pub(super) fn answer_signing(node: &Node, from: u16, msg: PeerMessage) -> Option<PeerMessage> {
    let held = node.state().epoch.key().map(|k| k.held.clone());
    match held {
        Some(h) => crate::with_suite!(h, S, k => answer_with::<S>(node, from, k, msg)),
        None => {
            let req = match msg {
                PeerMessage::SignCommit { req, .. }
                | PeerMessage::SignRound2 { req, .. }
                | PeerMessage::SignCsr { req, .. } => req,
                _ => return None,
            };
            Some(PeerMessage::SignRefused {
                req,
                refusal: Refusal::NoKeyShare,
            })
        }
    }
}

/// [`answer_signing`] with the epoch's key, of suite `S`.
fn answer_with<S: Hold>(
    node: &Node,
    from: u16,
    key: SuiteKey<S>,
    msg: PeerMessage,
) -> Option<PeerMessage> {
    let s = key.signer;
    match msg {
        PeerMessage::SignCommit { req, count } => Some({
            let count = usize::from(count);
            match s
                .commit_batch_encoded(Owner::Peer(from), count, &mut node.rng())
                .and_then(wrap)
            {
                Ok(commitments) => PeerMessage::SignCommitted { req, commitments },
                Err(refusal) => PeerMessage::SignRefused { req, refusal },
            }
        }),
        PeerMessage::SignRound2 {
            req,
            suite,
            proposal,
            commitments,
        } => {
            let signed = if suite == S::SUITE {
                s.sign_encoded(Owner::Peer(from), &proposal, &commitments)
            } else {
                Err(mismatch(SuiteMismatch {
                    expected: S::SUITE,
                    got: suite,
                }))
            };
            let signed = signed.map(|share| {
                if byzantine(node) {
                    corrupt(share)
                } else {
                    share
                }
            });
            let answer = match signed.and_then(wrap) {
                Ok(share) => PeerMessage::SignShare { req, share },
                Err(refusal) => {
                    node.refuse(format!(
                        "refused to sign for coordinator node {from}: {refusal}"
                    ));
                    PeerMessage::SignRefused { req, refusal }
                }
            };
            Some(answer)
        }
        PeerMessage::SignCsr {
            req,
            subject,
            bundle,
            ca_root,
            commitments,
        } => {
            let answer = (|| {
                let commitments = commitments
                    .take::<Vec<(u16, SigningCommitments<S>)>>(S::SUITE)
                    .map_err(mismatch)?;
                let message = csr_message(node, &subject, &bundle)?;
                let pin = crate::certs::install::IssuancePin::from_hash(&ca_root, &subject)
                    .map_err(|e| Refusal::Csr(CsrRefusal::Pin(e.to_string())))?;
                super::certificate::fix(node, pin)
                    .map_err(|e| Refusal::Csr(CsrRefusal::Pin(e.to_string())))?;
                let map = commitments
                    .into_iter()
                    .map(|(i, c)| Identifier::try_from(i).map(|id| (id, c)))
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .map_err(|e| Refusal::Frost(e.to_string()))?;
                s.sign_built(Owner::Peer(from), &map, &message)
                    .and_then(wrap)
            })();
            Some(match answer {
                Ok(share) => PeerMessage::SignShare { req, share },
                Err(refusal) => {
                    node.refuse(format!(
                        "refused to sign a CSR for coordinator node {from}: {refusal}"
                    ));
                    PeerMessage::SignRefused { req, refusal }
                }
            })
        }
        _ => None,
    }
}

/// Test-only fault (feature `test-faults`): this signer returns invalid shares.
fn byzantine(node: &Node) -> bool {
    cfg!(feature = "test-faults") && node.fault.as_deref() == Some("bad-signature-share")
}

/// An invalid share: the lowest bit of the scalar flipped (the last byte of a
/// big-endian secp256k1 scalar, the first of a little-endian Ed25519 one).
fn corrupt<S: Hold>(share: SignatureShare<S>) -> SignatureShare<S> {
    let mut bytes = share.serialize();
    let low = match S::SUITE {
        crate::threshold::suite::Ciphersuite::Secp256k1 => bytes.len().saturating_sub(1),
        crate::threshold::suite::Ciphersuite::Ed25519 => 0,
    };
    if let Some(b) = bytes.get_mut(low) {
        *b ^= 1;
    }
    SignatureShare::deserialize(&bytes).unwrap_or(share)
}

/// The CSR info this node is willing to sign: only for its own epoch, group key,
/// transcript and measurement, with the evidence bundle the operator gathered.
pub(super) fn csr_message(
    node: &Node,
    subject: &str,
    bundle_json: &str,
) -> Result<Vec<u8>, Refusal> {
    let bundle: crate::api::bundle::EvidenceBundle = serde_json::from_str(bundle_json)
        .map_err(|e| Refusal::Csr(CsrRefusal::Bundle(e.to_string())))?;
    let s = node.state();
    let key = s.epoch.key().ok_or(Refusal::NoKeyShare)?;
    let group_hex = hex::encode(
        key.group_bytes()
            .ok_or(Refusal::Csr(CsrRefusal::Build("group key encoding".into())))?,
    );
    if bundle.epoch != key.epoch
        || bundle.ciphersuite != key.suite()
        || bundle.group_key != group_hex
        || bundle.transcript != hex::encode(key.transcript)
    {
        return Err(Refusal::Csr(CsrRefusal::OtherEpoch));
    }
    if bundle.n != crate::attestation::roster::N
        || bundle.t != crate::attestation::roster::T
        || s.epoch.roster() != Some(&bundle.roster)
    {
        return Err(Refusal::Csr(CsrRefusal::OtherRoster));
    }
    if bundle.measurement != hex::encode(node.measurement) {
        return Err(Refusal::Csr(CsrRefusal::OtherMeasurement));
    }
    crate::with_suite!(&key.held, S, k => crate::certs::build_csr_info::<S>(
        subject,
        k.group.verifying_key(),
        &node.measurement,
        bundle_json.as_bytes(),
    ))
    .map_err(|e| Refusal::Csr(CsrRefusal::Build(e.to_string())))
}

/// Why this epoch's CSR was not signed.
#[derive(Debug, thiserror::Error)]
pub(super) enum CsrError {
    /// This node holds no key share.
    #[error("no key share")]
    NoKeyShare,
    /// No cluster configuration.
    #[error("not configured")]
    NotConfigured,
    /// This node, as a signer, does not sign it.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The issuance pin cannot be fixed for this epoch.
    #[error("{0}")]
    Pin(#[from] super::certificate::PinError),
    /// Too few co-signers answered with a valid share.
    #[error("only {available} of the {t} required signers are available")]
    TooFewSigners {
        /// Signers that committed.
        available: usize,
        /// The threshold.
        t: usize,
    },
    /// The shares did not aggregate to a valid signature.
    #[error("{0}")]
    Aggregate(Rejection),
    /// The signed request could not be assembled.
    #[error("{0}")]
    Assemble(#[from] crate::certs::CertError),
}

/// Coordinate the threshold signature of this epoch's CSR; returns the CSR DER.
/// `pin` (the issuing CA's root and the subject) is fixed here and on every signer.
pub(super) async fn sign_csr(
    node: &Arc<Node>,
    subject: &str,
    bundle_json: &str,
    pin: &crate::certs::install::IssuancePin,
) -> Result<Vec<u8>, CsrError> {
    let held = node.state().epoch.key().map(|k| k.held.clone());
    let held = held.ok_or(CsrError::NoKeyShare)?;
    crate::with_suite!(held, S, k => sign_csr_with::<S>(node, k, subject, bundle_json, pin).await)
}

/// [`sign_csr`] with the epoch's key, of suite `S`.
async fn sign_csr_with<S: Hold>(
    node: &Arc<Node>,
    key: SuiteKey<S>,
    subject: &str,
    bundle_json: &str,
    pin: &crate::certs::install::IssuancePin,
) -> Result<Vec<u8>, CsrError> {
    let message = csr_message(node, subject, bundle_json)?;
    super::certificate::fix(node, pin.clone())?;
    let ca_root = hex::encode(pin.ca_root);
    let (group, signer) = (key.group, key.signer);
    let (own, t) = {
        let s = node.state();
        let c = s.epoch.cluster().ok_or(CsrError::NotConfigured)?;
        (c.index, usize::from(c.t))
    };
    let candidates = candidates(node, own);
    let mut out = BTreeSet::new();
    loop {
        let round1 =
            gather_commitments::<S>(node, &candidates, own, t, &mut out, &mut Vec::new()).await?;
        if round1.chosen.len() < t {
            return Err(CsrError::TooFewSigners {
                available: round1.chosen.len(),
                t,
            });
        }
        let list = round1.list();
        let values = round1.values();
        let mut shares = BTreeMap::new();
        for (c, id) in &round1.chosen {
            let r = if *c == own {
                signer
                    .sign_built(Owner::Local, &values, &message)
                    .map_err(PeerError::Refused)
            } else {
                let (subject, bundle, ca_root) = (
                    subject.to_string(),
                    bundle_json.to_string(),
                    ca_root.clone(),
                );
                let list = wrap(list.clone())?;
                match call(node, *c, move |req| PeerMessage::SignCsr {
                    req,
                    subject,
                    bundle,
                    ca_root,
                    commitments: list,
                })
                .await
                {
                    Ok(PeerMessage::SignShare { share, .. }) => share
                        .take::<SignatureShare<S>>(S::SUITE)
                        .map_err(|e| PeerError::Refused(mismatch(e))),
                    Ok(PeerMessage::SignRefused { refusal, .. }) => {
                        Err(PeerError::Refused(refusal))
                    }
                    Ok(_) => Err(PeerError::Unavailable("unexpected answer".into())),
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(share) => {
                    shares.insert(*id, share);
                }
                Err(e) => {
                    forget_on_unknown(node, *c, &e);
                    node.refuse(format!("CSR signing: node {c}: {e}"));
                    out.insert(*c);
                }
            }
        }
        // A co-signer whose task ended without an answer (it panicked) is out too:
        // the next attempt must not pick the same set again and again.
        for (c, id) in &round1.chosen {
            if !shares.contains_key(id) {
                out.insert(*c);
            }
        }
        if shares.len() < t {
            continue;
        }
        match crate::threshold::coordinator::aggregate_checked(&group, values, &message, &shares) {
            Ok(bytes) => return Ok(crate::certs::assemble_csr::<S>(&message, &bytes)?),
            Err(Finish::Failed(r)) => return Err(CsrError::Aggregate(r)),
            Err(Finish::Cheaters(culprits)) => {
                round1.exclude(node, culprits, "CSR signature", &mut out);
            }
        }
    }
}

/// Drop the nonces this node issued to peer `index` and the commitments it holds from
/// that peer: a new link starts with neither.
pub(super) fn forget_peer(node: &Node, index: u16) {
    let held = node.state().epoch.key().map(|k| k.held.clone());
    if let Some(h) = held {
        crate::with_suite!(h, S, k => k.signer.forget(Owner::Peer(index)));
    }
    node.pools.drop_peer(index);
}

/// Send `build(req)` to signer `to` and wait for its answer; a signer that does not
/// answer in time is asked last from now on.
async fn call(
    node: &Node,
    to: u16,
    build: impl FnOnce(u64) -> PeerMessage,
) -> Result<PeerMessage, PeerError> {
    super::link::call(node, to, PEER_TIMEOUT, build)
        .await
        .map_err(|e| {
            if let super::link::LinkError::NoAnswer { .. } = e {
                node.suspects.mark(to);
            }
            PeerError::Unavailable(e.to_string())
        })
}

/// One commitment of signer `who` for a signing this node coordinates: its own
/// fresh nonces, or one a peer issued to this node ahead of time (refilling the
/// queue in the background when it runs low; fetched now only if it is empty).
async fn commit<S: Hold>(
    node: &Arc<Node>,
    who: u16,
    own: u16,
) -> Result<EncodedCommitments<S>, PeerError> {
    if who == own {
        let signer = node.signer_of::<S>();
        let signer = signer.ok_or_else(|| PeerError::Unavailable("no key share".into()))?;
        return signer
            .commit_encoded(&mut node.rng())
            .map_err(PeerError::Refused);
    }
    let tag = pool_tag(node, who)?;
    let take = node.pools.take(who, &tag);
    if take.refill {
        spawn_refill::<S>(node, who, tag.clone());
    }
    if let Some(c) = take
        .commitments
        .and_then(|c| c.take::<EncodedCommitments<S>>(S::SUITE).ok())
    {
        return Ok(c);
    }
    node.metrics.commit_fetch(Fetch::OnDemand);
    let mut fresh = fetch_commitments::<S>(node, who, pool::BATCH).await?;
    let first = fresh.pop().ok_or_else(|| {
        PeerError::Unavailable(format!("node {who} sent an empty commitment batch"))
    })?;
    node.pools.put(who, &tag, pool::wrap_all(fresh), false);
    Ok(first)
}

/// Fetch a batch of `who`'s commitments in the background.
fn spawn_refill<S: Hold>(node: &Arc<Node>, who: u16, tag: pool::Tag) {
    let node = node.clone();
    tokio::spawn(async move {
        node.metrics.commit_fetch(Fetch::Refill);
        let fresh = match fetch_commitments::<S>(&node, who, pool::BATCH).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::debug!(node = %node.name, peer = who, "commitment refill failed: {e}");
                Vec::new()
            }
        };
        node.pools.put(who, &tag, pool::wrap_all(fresh), true);
    });
}

/// Fill the commitment queues of every admitted peer that needs it, so the
/// first tokens after the certificate, a repair or a reconnection already cost
/// one round trip. Does nothing before this node serves.
pub(super) fn prefill(node: &Arc<Node>) {
    let suite = node.state().epoch.coordinator().map(|c| c.suite());
    let Some(suite) = suite else {
        return;
    };
    let peers: Vec<u16> = node.peer_links().keys().copied().collect();
    for who in peers {
        if let Ok(tag) = pool_tag(node, who) {
            if node.pools.claim_refill(who, &tag) {
                crate::for_suite!(suite, S => spawn_refill::<S>(node, who, tag));
            }
        }
    }
}

/// The link generation and key epoch that commitments from `who` belong to.
fn pool_tag(node: &Node, who: u16) -> Result<pool::Tag, PeerError> {
    let generation = node.peer_links().get(&who).map(|l| l.generation);
    let epoch = node.state().epoch.key().map(|k| k.epoch.clone());
    match (generation, epoch) {
        (Some(g), Some(e)) => Ok((g, e)),
        (None, _) => Err(PeerError::Unavailable(format!(
            "node {who} is not connected"
        ))),
        (_, None) => Err(PeerError::Unavailable("no key share".into())),
    }
}

/// Ask peer `who` for `count` commitments issued to this node.
async fn fetch_commitments<S: Hold>(
    node: &Node,
    who: u16,
    count: usize,
) -> Result<Vec<EncodedCommitments<S>>, PeerError> {
    let count = u16::try_from(count).unwrap_or(u16::MAX);
    match call(node, who, |req| PeerMessage::SignCommit { req, count }).await? {
        PeerMessage::SignCommitted { commitments, .. } => {
            let commitments = commitments
                .take::<Vec<EncodedCommitments<S>>>(S::SUITE)
                .map_err(|e| PeerError::Refused(mismatch(e)))?;
            if commitments.len() == usize::from(count) {
                Ok(commitments)
            } else {
                Err(PeerError::Unavailable(format!(
                    "node {who} sent {} commitments for {count} asked",
                    commitments.len()
                )))
            }
        }
        PeerMessage::SignRefused { refusal, .. } => Err(PeerError::Refused(refusal)),
        _ => Err(PeerError::Unavailable(format!(
            "node {who}: unexpected answer"
        ))),
    }
}

/// What every signer of one attempt gets: the proposal and the signing set, decoded
/// (for this node's own signer) and encoded (for the peers).
struct Round2Input<S: Hold> {
    proposal: SigningProposal,
    values: BTreeMap<Identifier<S>, SigningCommitments<S>>,
    own: Option<EncodedCommitments<S>>,
    encoded: Vec<(u16, CommitmentKey)>,
}

async fn round2<S: Hold>(
    node: &Arc<Node>,
    who: u16,
    own: u16,
    input: Arc<Round2Input<S>>,
) -> Result<SignatureShare<S>, PeerError> {
    if who == own {
        let signer = node.signer_of::<S>();
        let signer = signer.ok_or_else(|| PeerError::Unavailable("no key share".into()))?;
        let mine = input
            .own
            .as_ref()
            .ok_or_else(|| PeerError::Unavailable("no own commitments".into()))?;
        return signer
            .sign_with_own(Owner::Local, &input.proposal, mine, input.values.clone())
            .map_err(PeerError::Refused);
    }
    match call(node, who, move |r| PeerMessage::SignRound2 {
        req: r,
        suite: S::SUITE,
        proposal: input.proposal.clone(),
        commitments: input.encoded.clone(),
    })
    .await?
    {
        PeerMessage::SignShare { share, .. } => share
            .take::<SignatureShare<S>>(S::SUITE)
            .map_err(|e| PeerError::Refused(mismatch(e))),
        PeerMessage::SignRefused { refusal, .. } => Err(PeerError::Refused(refusal)),
        _ => Err(PeerError::Unavailable(format!(
            "node {who}: unexpected answer"
        ))),
    }
}

/// A peer that no longer knows a commitment it issued (it restarted, or evicted
/// it) has nothing left in this node's queue worth using.
fn forget_on_unknown(node: &Node, peer: u16, e: &PeerError) {
    if matches!(e, PeerError::Refused(Refusal::UnknownCommitment)) {
        node.pools.drop_peer(peer);
    }
}

/// Round 1 of one signing attempt: the signers chosen (node index and FROST
/// identifier, which is the index) and their commitments.
struct Round1<S: Hold> {
    chosen: Vec<(u16, Identifier<S>)>,
    commitments: BTreeMap<Identifier<S>, EncodedCommitments<S>>,
}

impl<S: Hold> Round1<S> {
    /// (index, commitments) as a `SignCsr` carries them.
    fn list(&self) -> Vec<(u16, SigningCommitments<S>)> {
        self.chosen
            .iter()
            .filter_map(|(c, id)| self.commitments.get(id).map(|cm| (*c, *cm.value())))
            .collect()
    }

    /// (index, encoded commitments) as a `SignRound2` carries them.
    fn encoded(&self) -> Vec<(u16, CommitmentKey)> {
        self.chosen
            .iter()
            .filter_map(|(c, id)| self.commitments.get(id).map(|cm| (*c, *cm.bytes())))
            .collect()
    }

    /// The commitments by identifier, as FROST takes them.
    fn values(&self) -> BTreeMap<Identifier<S>, SigningCommitments<S>> {
        self.commitments
            .iter()
            .map(|(id, c)| (*id, *c.value()))
            .collect()
    }

    /// The node index of a FROST identifier in this signing.
    fn index(&self, id: &Identifier<S>) -> Option<u16> {
        self.chosen.iter().find(|(_, i)| i == id).map(|(c, _)| *c)
    }

    /// Leave the signers frost's cheater detection named (RFC 9591 §5.4) out of the
    /// next attempt (`out`), each refusal kept for `/status`; their indices.
    fn exclude(
        &self,
        node: &Node,
        culprits: Vec<Identifier<S>>,
        what: &str,
        out: &mut BTreeSet<u16>,
    ) -> Vec<u16> {
        let cheaters: Vec<u16> = culprits.iter().filter_map(|id| self.index(id)).collect();
        for c in &cheaters {
            node.refuse(format!(
                "node {c} returned an invalid {what} share: excluded"
            ));
            out.insert(*c);
        }
        cheaters
    }
}

/// Commitments from the first t candidates not in `out` (RFC 9591 §5.1); a
/// candidate that gives none is added to `out` and reported in `failed`.
async fn gather_commitments<S: Hold>(
    node: &Arc<Node>,
    candidates: &[u16],
    own: u16,
    t: usize,
    out: &mut BTreeSet<u16>,
    failed: &mut Vec<(u16, PeerError)>,
) -> Result<Round1<S>, Refusal> {
    let mut r = Round1 {
        chosen: Vec::new(),
        commitments: BTreeMap::new(),
    };
    for &c in candidates {
        if r.chosen.len() == t {
            break;
        }
        if out.contains(&c) {
            continue;
        }
        let id = Identifier::try_from(c).map_err(|e| Refusal::Frost(e.to_string()))?;
        match commit::<S>(node, c, own).await {
            Ok(cm) => {
                r.commitments.insert(id, cm);
                r.chosen.push((c, id));
            }
            Err(e) => {
                out.insert(c);
                failed.push((c, e));
            }
        }
    }
    Ok(r)
}

/// This node first, then the admitted peers: those with commitments ready
/// before those without, peers that recently timed out last, otherwise in
/// index order.
fn candidates(node: &Node, own: u16) -> Vec<u16> {
    let ready = node.pools.sizes();
    let mut peers: Vec<(bool, bool, u16)> = node
        .peer_links()
        .keys()
        .copied()
        .filter(|i| *i != own)
        .map(|i| {
            let no_commitments = ready.get(&i).is_none_or(|n| *n == 0);
            (node.suspects.is(i), no_commitments, i)
        })
        .collect();
    peers.sort_unstable();
    std::iter::once(own)
        .chain(peers.into_iter().map(|(_, _, i)| i))
        .collect()
}

/// This node's time service verified the replies of `b` with the policy this node's own
/// signer uses: tell the signer, so it checks only this request's path.
fn own_signer_knows<S: Hold>(node: &Node, leaf: &[u8; 32], b: &super::time::Backing) {
    let signer = node.signer_of::<S>();
    if let (Some(signer), Ok(ev)) = (
        signer,
        crate::time::evidence::TimeEvidence::from_der_bounded(&b.evidence_der),
    ) {
        if let Ok(root) = crate::time::evidence::root_of(leaf, &ev) {
            signer.remember_checked_replies(&root, &ev.replies, &b.claim);
        }
    }
}

/// Coordinate one timestamp: returns the TimeStampResp DER (granted or rejection).
pub(super) async fn timestamp(
    node: &Arc<Node>,
    request_der: &[u8],
) -> Result<Vec<u8>, IssueFailure> {
    let (coordinator, own) = {
        let s = node.state();
        match (s.epoch.key(), s.epoch.coordinator(), s.epoch.cluster()) {
            (Some(_), Some(c), Some(cl)) => (c.clone(), cl.index),
            _ => {
                return Err(failure(
                    Rejection::SystemFailure(SystemFailure::NotServing),
                    Vec::new(),
                ))
            }
        }
    };
    crate::with_suite!(coordinator, S, c => timestamp_with::<S>(node, c, own, request_der).await)
}

/// [`timestamp`] with the epoch's coordinator, of suite `S`.
async fn timestamp_with<S: Hold>(
    node: &Arc<Node>,
    coordinator: Arc<crate::threshold::coordinator::Coordinator<Arc<dyn crate::clock::Clock>, S>>,
    own: u16,
    request_der: &[u8],
) -> Result<Vec<u8>, IssueFailure> {
    let started = std::time::Instant::now();
    // Reject bad requests before involving any signer or time server.
    let accepted = crate::tsp::request::parse(request_der, coordinator.profile())
        .map_err(|r| failure(r, Vec::new()))?;
    let leaf = crate::threshold::signer::time_leaf(&accepted)
        .map_err(|e| failure(SystemFailure::internal(e), Vec::new()))?;
    // genTime comes from time evidence for this request, never from this host's clock.
    // The round to the time servers runs while the first signers' commitments are
    // gathered.
    let time = node.time.clone();
    let mut evidence_task = Some(tokio::spawn(async move { time.back(leaf).await }));
    let mut backing: Option<super::time::Backing> = None;
    let t = coordinator.threshold();
    let candidates = candidates(node, own);
    let mut excluded: Vec<(u16, Exclusion)> = Vec::new();
    let mut out: BTreeSet<u16> = BTreeSet::new();
    loop {
        let mut failed = Vec::new();
        let round1 = gather_commitments::<S>(node, &candidates, own, t, &mut out, &mut failed)
            .await
            .map_err(|e| failure(SystemFailure::internal(e), Vec::new()))?;
        excluded.extend(failed.into_iter().map(|(id, e)| (id, exclusion(e))));
        if round1.chosen.len() < t {
            return Err(failure(
                no_quorum_reason(round1.chosen.len(), t, &excluded),
                excluded,
            ));
        }
        // A fresh proposal (serial) for every attempt, fixed only once the signing
        // set is known; genTime and accuracy are the evidence's.
        if let Some(task) = evidence_task.take() {
            let got = match task.await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(format!("time service task: {e}")),
            };
            match got {
                Ok(b) => {
                    own_signer_knows::<S>(node, &leaf, &b);
                    backing = Some(b);
                }
                Err(e) => {
                    // Which servers failed, and how, is for the log: the client gets a
                    // fixed text.
                    node.metrics.shed("time_not_available");
                    tracing::warn!(node = %node.name, "no time evidence: {e}");
                    return Err(failure(
                        Rejection::TimeNotAvailable(TIME_NOT_AVAILABLE.into()),
                        Vec::new(),
                    ));
                }
            }
        }
        let Some(backing) = backing.as_ref() else {
            return Err(failure(
                crate::tsp::request::Rejection::TimeNotAvailable("no time evidence".into()),
                Vec::new(),
            ));
        };
        let prepared = coordinator.prepare(
            request_der,
            Some(crate::threshold::coordinator::Backed {
                evidence_der: &backing.evidence_der,
                claim: &backing.claim,
            }),
            &mut node.rng(),
        )?;
        let own_id = Identifier::try_from(own).ok();
        let input = Arc::new(Round2Input {
            proposal: prepared.proposal.clone(),
            values: round1.values(),
            own: own_id.and_then(|id| round1.commitments.get(&id).copied()),
            encoded: round1.encoded(),
        });
        let mut set = tokio::task::JoinSet::new();
        for (c, id) in round1.chosen.clone() {
            let node = node.clone();
            let input = input.clone();
            set.spawn(async move { (c, id, round2(&node, c, own, input).await) });
        }
        let mut shares = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            let Ok((c, id, r)) = joined else { continue };
            match r {
                Ok(s) => {
                    shares.insert(id, s);
                }
                Err(e) => {
                    forget_on_unknown(node, c, &e);
                    node.refuse(format!("signer node {c} gave no share: {e}"));
                    out.insert(c);
                    excluded.push((c, exclusion(e)));
                }
            }
        }
        if shares.len() < t {
            continue;
        }
        match coordinator.finish(&prepared, input.values.clone(), &shares) {
            Ok((_token, response)) => {
                for (_, e) in &excluded {
                    node.metrics.excluded(e.cause());
                }
                tracing::info!(
                    node = %node.name,
                    serial = %prepared.serial.to_hex(),
                    signers = ?round1.chosen.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
                    ms = started.elapsed().as_millis() as u64,
                    "token issued"
                );
                return Ok(response);
            }
            Err(Finish::Cheaters(culprits)) => {
                let cheaters = round1.exclude(node, culprits, "signature", &mut out);
                excluded.extend(cheaters.into_iter().map(|c| (c, Exclusion::InvalidShare)));
            }
            Err(Finish::Failed(r)) => return Err(failure(r, excluded)),
        }
    }
}
