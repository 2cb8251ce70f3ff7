//! The coordinator of one token (RFC 9591 §5: the Coordinator role).
//!
//! It parses the request, proposes genTime (its clock) and a random serial,
//! asks t signers for commitments, sends them the [`SignRequest`], aggregates
//! their shares with cheater detection (RFC 9591 §5.3, frost's
//! `CheaterDetection::AllCheaters`), verifies the result under the group key
//! and assembles the token. A signer that is unavailable or refuses is replaced
//! by another; a signer that returns an invalid share is named and excluded.

use crate::clock::Clock;
use crate::threshold::keys::GroupKey;
use crate::threshold::signer::{Refusal, SignRequest, Signer, SigningProposal};
use crate::threshold::suite::{Secp256K1Sha256, Suite};
use crate::tsp::request::{self, Rejection, SystemFailure};
use crate::tsp::time::GenTime;
use crate::tsp::token::{self, CertIdentity, Serial};
use crate::tsp::TsaProfile;
use frost_core::round1::SigningCommitments;
use frost_core::round2::SignatureShare;
use frost_core::Identifier;
use std::collections::{BTreeMap, BTreeSet};

/// Why a peer gave no share.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The signer looked at the proposal and refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The signer could not be reached or did not answer in time.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A signer as the coordinator sees it, whatever the transport.
pub trait SignerPeer<S: Suite = Secp256K1Sha256> {
    /// The signer's FROST identifier.
    fn identifier(&self) -> Identifier<S>;
    /// Round 1: fresh commitments.
    fn commit(&self) -> Result<SigningCommitments<S>, PeerError>;
    /// Round 2: a signature share for `req`.
    fn sign(&self, req: &SignRequest<S>) -> Result<SignatureShare<S>, PeerError>;
}

/// An in-process signer (tests, benchmarks, the local demo). Randomness for
/// commitments comes from the operating system.
impl<C: Clock, S: Suite> SignerPeer<S> for Signer<C, S> {
    fn identifier(&self) -> Identifier<S> {
        Signer::identifier(self)
    }
    fn commit(&self) -> Result<SigningCommitments<S>, PeerError> {
        Signer::commit(self, &mut rand_core::OsRng).map_err(PeerError::Refused)
    }
    fn sign(&self, req: &SignRequest<S>) -> Result<SignatureShare<S>, PeerError> {
        Signer::sign(self, req).map_err(PeerError::Refused)
    }
}

/// A token and how it was made.
#[derive(Clone, Debug)]
pub struct Issued<S: Suite = Secp256K1Sha256> {
    /// The token (ContentInfo DER).
    pub token: Vec<u8>,
    /// The granted TimeStampResp DER.
    pub response: Vec<u8>,
    /// genTime in the token.
    pub gen_time: GenTime,
    /// Serial number in the token.
    pub serial: Serial,
    /// The signers whose shares were aggregated.
    pub signers: Vec<Identifier<S>>,
    /// Peers that were skipped, with the reason (for logs and metrics).
    pub excluded: Vec<(Identifier<S>, Exclusion)>,
}

/// Why a peer was left out of a signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// Could not be reached.
    Unavailable(String),
    /// Refused the proposal.
    Refused(Refusal),
    /// Returned a share that failed verification (RFC 9591 §5.4): a cheater.
    InvalidShare,
}

impl Exclusion {
    /// Short label for logs and metrics: `unavailable`, `refused`, `invalid_share`.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Refused(_) => "refused",
            Self::InvalidShare => "invalid_share",
        }
    }
}

/// A request that produced no token.
#[derive(Clone, Debug)]
pub struct IssueFailure {
    /// What the client is told.
    pub rejection: Rejection,
    /// The rejection response DER.
    pub response: Vec<u8>,
    /// Peers left out and why, by node index.
    pub excluded: Vec<(u16, Exclusion)>,
}

/// Issues tokens with t of the given peers.
#[derive(Debug)]
pub struct Coordinator<C, S: Suite = Secp256K1Sha256> {
    profile: TsaProfile,
    group: GroupKey<S>,
    cert: CertIdentity,
    threshold: usize,
    clock: C,
}

impl<C: Clock, S: Suite> Coordinator<C, S> {
    /// A coordinator for `group` with TSA certificate `cert`.
    pub fn new(
        profile: TsaProfile,
        group: GroupKey<S>,
        cert: CertIdentity,
        threshold: u16,
        clock: C,
    ) -> Self {
        Self {
            profile,
            group,
            cert,
            threshold: usize::from(threshold),
            clock,
        }
    }

    /// The TSA profile.
    pub fn profile(&self) -> &TsaProfile {
        &self.profile
    }

    /// Step 1 of a signing: parse the request, propose genTime and serial, build
    /// what will be signed. A rejection here never involves a signer. With `time`
    /// (every node), genTime and accuracy are what the evidence gives and the evidence
    /// goes into the proposal and the token; without (the in-process development TSA),
    /// genTime is this coordinator's clock.
    pub fn prepare(
        &self,
        request_der: &[u8],
        time: Option<Backed<'_>>,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Prepared, IssueFailure> {
        let accepted =
            request::parse(request_der, &self.profile).map_err(|r| failure(r, Vec::new()))?;
        let gen_time = match time {
            Some(b) => {
                GenTime::from_unix_duration(std::time::Duration::from_secs(b.claim.gen_time_secs))
            }
            None => GenTime::from_system_time_millis(self.clock.now()),
        }
        .ok_or_else(|| {
            failure(
                Rejection::TimeNotAvailable("time out of range".into()),
                Vec::new(),
            )
        })?;
        let serial = Serial::random(rng);
        let backing = time.map(|b| token::TimeBacking {
            evidence_der: b.evidence_der,
            accuracy_secs: b.claim.accuracy_secs,
        });
        let content = token::build_signed_content::<S>(
            &self.profile,
            &self.cert,
            &accepted,
            gen_time,
            &serial,
            backing,
        )
        .map_err(|e| failure(SystemFailure::internal(e), Vec::new()))?;
        let message = content
            .message()
            .map_err(|e| failure(SystemFailure::internal(e), Vec::new()))?;
        let proposal = SigningProposal {
            request_der: request_der.to_vec(),
            gen_time_unix_millis: u64::try_from(gen_time.unix_millis()).unwrap_or(u64::MAX),
            serial,
            cert_sha256: self.cert.sha256().to_vec(),
            time_evidence: time.map(|b| b.evidence_der.to_vec()).unwrap_or_default(),
        };
        Ok(Prepared {
            accepted,
            gen_time,
            serial,
            content,
            message,
            proposal,
        })
    }

    /// The threshold t.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Last step: aggregate t shares (RFC 9591 §5.3) with cheater detection, verify
    /// the signature under the group key, assemble token and response.
    pub fn finish(
        &self,
        p: &Prepared,
        commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
        shares: &BTreeMap<Identifier<S>, SignatureShare<S>>,
    ) -> Result<(Vec<u8>, Vec<u8>), Finish<S>> {
        let sig_bytes = aggregate_checked(&self.group, commitments, &p.message, shares)?;
        let certs = if p.accepted.cert_req() {
            vec![self.cert.der().to_vec()]
        } else {
            Vec::new()
        };
        let token = token::assemble::<S>(&p.content, &self.cert, &certs, &sig_bytes)
            .map_err(|e| Finish::Failed(SystemFailure::internal(e)))?;
        let response = crate::tsp::response::granted(&token)
            .map_err(|e| Finish::Failed(SystemFailure::internal(e)))?;
        Ok((token, response))
    }

    /// Answer one request with in-process (synchronous) peers: a granted
    /// response with a token, or a rejection.
    pub fn issue(
        &self,
        request_der: &[u8],
        peers: &[&dyn SignerPeer<S>],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Issued<S>, IssueFailure> {
        let prepared = self.prepare(request_der, None, rng)?;
        let mut excluded: Vec<(Identifier<S>, Exclusion)> = Vec::new();
        let mut out: BTreeSet<Identifier<S>> = BTreeSet::new();
        loop {
            // Round 1: commitments from the first t peers still in play.
            let mut chosen: Vec<&dyn SignerPeer<S>> = Vec::new();
            let mut commitments = BTreeMap::new();
            for p in peers.iter().copied() {
                if chosen.len() == self.threshold {
                    break;
                }
                let id = p.identifier();
                if out.contains(&id) {
                    continue;
                }
                match p.commit() {
                    Ok(c) => {
                        commitments.insert(id, c);
                        chosen.push(p);
                    }
                    Err(e) => {
                        out.insert(id);
                        excluded.push((id, exclusion(e)));
                    }
                }
            }
            if chosen.len() < self.threshold {
                let reason = no_quorum_reason(chosen.len(), self.threshold, &excluded);
                return Err(failure(reason, by_index(excluded)));
            }
            // Round 2: shares.
            let req = SignRequest {
                proposal: prepared.proposal.clone(),
                commitments: commitments.clone(),
            };
            let mut shares = BTreeMap::new();
            for p in &chosen {
                let id = p.identifier();
                match p.sign(&req) {
                    Ok(s) => {
                        shares.insert(id, s);
                    }
                    Err(e) => {
                        out.insert(id);
                        excluded.push((id, exclusion(e)));
                    }
                }
            }
            if shares.len() < self.threshold {
                continue; // replace the missing signers and start over with fresh commitments
            }
            match self.finish(&prepared, commitments, &shares) {
                Ok((token, response)) => {
                    return Ok(Issued {
                        token,
                        response,
                        gen_time: prepared.gen_time,
                        serial: prepared.serial,
                        signers: shares.keys().copied().collect(),
                        excluded,
                    })
                }
                Err(Finish::Cheaters(culprits)) => {
                    for c in culprits {
                        out.insert(c);
                        excluded.push((c, Exclusion::InvalidShare));
                    }
                }
                Err(Finish::Failed(r)) => return Err(failure(r, by_index(excluded))),
            }
        }
    }
}

/// The node index of a FROST identifier made from one (RFC 9591 identifiers are
/// the scalars 1..=n here).
pub fn index_of<S: Suite>(id: &Identifier<S>) -> Option<u16> {
    (1..=u16::MAX).take(255).find(|i| {
        Identifier::<S>::try_from(*i)
            .map(|x| x == *id)
            .unwrap_or(false)
    })
}

/// Exclusions by node index.
pub fn by_index<S: Suite>(excluded: Vec<(Identifier<S>, Exclusion)>) -> Vec<(u16, Exclusion)> {
    excluded
        .into_iter()
        .map(|(id, e)| (index_of(&id).unwrap_or(0), e))
        .collect()
}

/// Time evidence for one request and what it gives (see [`Coordinator::prepare`]).
#[derive(Clone, Copy, Debug)]
pub struct Backed<'a> {
    /// `TimeEvidence` DER.
    pub evidence_der: &'a [u8],
    /// What it gives, as checked.
    pub claim: &'a crate::time::evidence::TimeClaim,
}

/// A prepared signing: what every signer will rebuild and sign.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The validated request.
    pub accepted: crate::tsp::request::AcceptedRequest,
    /// Proposed genTime.
    pub gen_time: GenTime,
    /// Proposed serial.
    pub serial: Serial,
    /// TSTInfo and signed attributes.
    pub content: token::SignedContent,
    /// The message signers sign.
    pub message: Vec<u8>,
    /// What signers receive.
    pub proposal: SigningProposal,
}

/// Why [`Coordinator::finish`] produced no token.
#[derive(Debug, Clone)]
pub enum Finish<S: Suite = Secp256K1Sha256> {
    /// These signers returned invalid shares (RFC 9591 §5.4): exclude and retry.
    Cheaters(Vec<Identifier<S>>),
    /// Anything else.
    Failed(Rejection),
}

/// RFC 9591 §5.3 `aggregate` with cheater detection (§5.4), then verification of
/// the result under the group key: the serialized signature (65 bytes for secp256k1,
/// the 64-byte RFC 8032 signature for Ed25519), or the culprits.
pub fn aggregate_checked<S: Suite>(
    group: &GroupKey<S>,
    commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
    message: &[u8],
    shares: &BTreeMap<Identifier<S>, SignatureShare<S>>,
) -> Result<Vec<u8>, Finish<S>> {
    let package = frost_core::SigningPackage::new(commitments, message);
    let sig = frost_core::aggregate_custom(
        &package,
        shares,
        group.package(),
        frost_core::CheaterDetection::AllCheaters,
    )
    .map_err(|e| {
        let culprits = e.culprits();
        if culprits.is_empty() {
            Finish::Failed(SystemFailure::internal(format_args!("aggregation: {e}")))
        } else {
            Finish::Cheaters(culprits)
        }
    })?;
    // No second verification here: `aggregate_custom` returns a signature only after
    // verifying it under the group key (frost-core 3.0 `aggregate_custom`; a wrong one
    // gives an error, with the culprits), and this check cost one more Schnorr
    // verification per token (`docs/benchmarks.md`). The test
    // `aggregate_checked_verifies_what_it_returns` (tests/signer.rs) holds frost-core to it.
    sig.serialize()
        .ok()
        .filter(|v| v.len() == S::SIGNATURE_LEN)
        .ok_or_else(|| Finish::Failed(SystemFailure::internal("signature encoding")))
}

/// An [`IssueFailure`] with its rejection response.
pub fn failure(rejection: Rejection, excluded: Vec<(u16, Exclusion)>) -> IssueFailure {
    let response = crate::tsp::response::rejected(&rejection).unwrap_or_default();
    IssueFailure {
        rejection,
        response,
        excluded,
    }
}

/// How a peer error is recorded.
pub fn exclusion(e: PeerError) -> Exclusion {
    match e {
        PeerError::Refused(r) => Exclusion::Refused(r),
        PeerError::Unavailable(s) => Exclusion::Unavailable(s),
    }
}

/// The client-facing reason when fewer than t signers would sign: a request
/// every signer refused is the client's fault; disagreement about time is
/// `timeNotAvailable`; anything else is a system failure.
pub fn no_quorum_reason<K>(have: usize, need: usize, excluded: &[(K, Exclusion)]) -> Rejection {
    let refusals: Vec<&Refusal> = excluded
        .iter()
        .filter_map(|(_, e)| match e {
            Exclusion::Refused(r) => Some(r),
            _ => None,
        })
        .collect();
    if let Some(Refusal::Request(r)) = refusals.first() {
        if refusals.iter().all(|x| matches!(x, Refusal::Request(_))) {
            return r.clone();
        }
    }
    if refusals.iter().any(|r| {
        matches!(
            r,
            Refusal::GenTimeOutOfTolerance { .. }
                | Refusal::FutureTime { .. }
                | Refusal::GenTimeNotFromEvidence { .. }
                | Refusal::TimeEvidence(_)
        )
    }) {
        return Rejection::TimeNotAvailable(format!(
            "only {have} of the {need} required signers accept this TSA's time"
        ));
    }
    Rejection::SystemFailure(SystemFailure::TooFewSigners { have, need })
}
