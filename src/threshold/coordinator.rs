//! The coordinator of one token (RFC 9591 §5: the Coordinator role).
//!
//! It parses the request, proposes genTime (its clock) and a random serial,
//! asks t signers for commitments, sends them the [`SignRequest`], aggregates
//! their shares with cheater detection (RFC 9591 §5.3, frost's
//! `CheaterDetection::AllCheaters`), verifies the result under the group key
//! and assembles the token. A signer that is unavailable or refuses is replaced
//! by another; a signer that returns an invalid share is named and excluded.

use crate::clock::Clock;
use crate::threshold::frost;
use crate::threshold::keys::GroupKey;
use crate::threshold::signer::{Refusal, SignRequest, Signer, SigningProposal};
use crate::tsp::request::{self, Rejection};
use crate::tsp::time::GenTime;
use crate::tsp::token::{self, CertIdentity, Serial, FROST_SIGNATURE_LEN};
use crate::tsp::TsaProfile;
use frost::round1::SigningCommitments;
use frost::round2::SignatureShare;
use frost::Identifier;
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
pub trait SignerPeer {
    /// The signer's FROST identifier.
    fn identifier(&self) -> Identifier;
    /// Round 1: fresh commitments.
    fn commit(&self) -> Result<SigningCommitments, PeerError>;
    /// Round 2: a signature share for `req`.
    fn sign(&self, req: &SignRequest) -> Result<SignatureShare, PeerError>;
}

/// An in-process signer (tests, benchmarks, the local demo). Randomness for
/// commitments comes from the operating system.
impl<C: Clock> SignerPeer for Signer<C> {
    fn identifier(&self) -> Identifier {
        Signer::identifier(self)
    }
    fn commit(&self) -> Result<SigningCommitments, PeerError> {
        Signer::commit(self, &mut rand_core::OsRng).map_err(PeerError::Refused)
    }
    fn sign(&self, req: &SignRequest) -> Result<SignatureShare, PeerError> {
        Signer::sign(self, req).map_err(PeerError::Refused)
    }
}

/// A token and how it was made.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token (ContentInfo DER).
    pub token: Vec<u8>,
    /// The granted TimeStampResp DER.
    pub response: Vec<u8>,
    /// genTime in the token.
    pub gen_time: GenTime,
    /// Serial number in the token.
    pub serial: Serial,
    /// The signers whose shares were aggregated.
    pub signers: Vec<Identifier>,
    /// Peers that were skipped, with the reason (for logs and metrics).
    pub excluded: Vec<(Identifier, Exclusion)>,
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

/// A request that produced no token.
#[derive(Clone, Debug)]
pub struct IssueFailure {
    /// What the client is told.
    pub rejection: Rejection,
    /// The rejection response DER.
    pub response: Vec<u8>,
    /// Peers left out and why.
    pub excluded: Vec<(Identifier, Exclusion)>,
}

/// Issues tokens with t of the given peers.
#[derive(Debug)]
pub struct Coordinator<C> {
    profile: TsaProfile,
    group: GroupKey,
    cert: CertIdentity,
    threshold: usize,
    clock: C,
}

impl<C: Clock> Coordinator<C> {
    /// A coordinator for `group` with TSA certificate `cert`.
    pub fn new(
        profile: TsaProfile,
        group: GroupKey,
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

    /// Answer one request: a granted response with a token, or a rejection.
    pub fn issue(
        &self,
        request_der: &[u8],
        peers: &[&dyn SignerPeer],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Issued, IssueFailure> {
        let mut excluded: Vec<(Identifier, Exclusion)> = Vec::new();
        let fail = |rejection: Rejection, excluded: Vec<(Identifier, Exclusion)>| {
            let response = crate::tsp::response::rejected(&rejection).unwrap_or_default();
            IssueFailure {
                rejection,
                response,
                excluded,
            }
        };
        let accepted = match request::parse(request_der, &self.profile) {
            Ok(a) => a,
            Err(r) => return Err(fail(r, excluded)),
        };
        let Some(gen_time) = GenTime::from_system_time_millis(self.clock.now()) else {
            return Err(fail(
                Rejection::TimeNotAvailable("clock out of range".into()),
                excluded,
            ));
        };
        let serial = Serial::random(rng);
        let content = match token::build_signed_content(
            &self.profile,
            &self.cert,
            &accepted,
            gen_time,
            &serial,
        ) {
            Ok(c) => c,
            Err(e) => return Err(fail(Rejection::SystemFailure(e.to_string()), excluded)),
        };
        let message = match content.message() {
            Ok(m) => m,
            Err(e) => return Err(fail(Rejection::SystemFailure(e.to_string()), excluded)),
        };
        let proposal = SigningProposal {
            request_der: request_der.to_vec(),
            gen_time_unix_millis: u64::try_from(gen_time.unix_millis()).unwrap_or(u64::MAX),
            serial,
            cert_sha256: self.cert.sha256().to_vec(),
        };

        let mut out: BTreeSet<Identifier> = BTreeSet::new();
        loop {
            // Round 1: commitments from the first t peers still in play.
            let mut chosen: Vec<&dyn SignerPeer> = Vec::new();
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
                return Err(fail(reason, excluded));
            }
            // Round 2: shares.
            let req = SignRequest {
                proposal: proposal.clone(),
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
            let package = frost::SigningPackage::new(commitments, &message);
            match frost::aggregate_custom(
                &package,
                &shares,
                self.group.package(),
                frost::CheaterDetection::AllCheaters,
            ) {
                Ok(sig) => {
                    let sig_bytes: [u8; FROST_SIGNATURE_LEN] =
                        match sig.serialize().ok().and_then(|v| v.try_into().ok()) {
                            Some(b) => b,
                            None => {
                                return Err(fail(
                                    Rejection::SystemFailure("signature encoding".into()),
                                    excluded,
                                ))
                            }
                        };
                    if !self.group.verify(&message, &sig_bytes) {
                        return Err(fail(
                            Rejection::SystemFailure("aggregate signature does not verify".into()),
                            excluded,
                        ));
                    }
                    let certs = if accepted.cert_req() {
                        vec![self.cert.der().to_vec()]
                    } else {
                        Vec::new()
                    };
                    let built = token::assemble(&content, &self.cert, &certs, &sig_bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|t| {
                            crate::tsp::response::granted(&t)
                                .map(|r| (t, r))
                                .map_err(|e| e.to_string())
                        });
                    return match built {
                        Ok((token, response)) => Ok(Issued {
                            token,
                            response,
                            gen_time,
                            serial,
                            signers: shares.keys().copied().collect(),
                            excluded,
                        }),
                        Err(e) => Err(fail(Rejection::SystemFailure(e), excluded)),
                    };
                }
                Err(e) => {
                    let culprits = e.culprits();
                    if culprits.is_empty() {
                        return Err(fail(
                            Rejection::SystemFailure(format!("aggregation: {e}")),
                            excluded,
                        ));
                    }
                    for c in culprits {
                        out.insert(c);
                        excluded.push((c, Exclusion::InvalidShare));
                    }
                }
            }
        }
    }
}

fn exclusion(e: PeerError) -> Exclusion {
    match e {
        PeerError::Refused(r) => Exclusion::Refused(r),
        PeerError::Unavailable(s) => Exclusion::Unavailable(s),
    }
}

/// The client-facing reason when fewer than t signers would sign: a request
/// every signer refused is the client's fault; disagreement about time is
/// `timeNotAvailable`; anything else is a system failure.
fn no_quorum_reason(have: usize, need: usize, excluded: &[(Identifier, Exclusion)]) -> Rejection {
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
    if refusals
        .iter()
        .any(|r| matches!(r, Refusal::GenTimeOutOfTolerance { .. }))
    {
        return Rejection::TimeNotAvailable(format!(
            "only {have} of the {need} required signers accept this TSA's time"
        ));
    }
    Rejection::SystemFailure(format!(
        "only {have} of the {need} required signers are available"
    ))
}
