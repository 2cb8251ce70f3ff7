//! Repair of a lost share (DESIGN §2 step 7) with frost's repairable threshold
//! scheme (RTS): a replacement node, booted from the same image and admitted by
//! attestation, asks t helpers to rebuild the share of its index.
//!
//! A helper takes part only when (a) its own operator sent it a repair order
//! (`/admin/repair-order`) naming this epoch, the index and the replacement's attested
//! TLS identity, (b) the roster's holder of that index had been silent for
//! `peers::SILENCE` when the replacement was admitted (the roster then moved to the
//! next version, naming the replacement), and (c) the request arrives on the link of
//! exactly that identity. The replacement receives the new roster with the sigmas.
//!
//! 1. replacement → each helper: `RepairStart { epoch, helpers, participant }`;
//! 2. each helper computes one delta per helper (`repair_share_part1`) and sends
//!    each to its helper only, on their pairwise attested channel;
//! 3. each helper sums the deltas it received (`repair_share_part2`) and sends the
//!    sum (sigma), the public key package, transcript and chain to the replacement;
//! 4. the replacement sums the sigmas (`repair_share_part3`) and **checks the
//!    result against the group's verifying share for its index** before using it,
//!    then checks the chain (the install checks of `certs::install`, against the
//!    CA root and subject the helpers fixed with the CSR) and serves.
//!
//! No helper learns the repaired share; deltas and sigmas travel only on attested
//! channels between the two nodes concerned.

use super::epoch::EpochError;
use super::link::{send, send_on, Inbox, LinkError};
use super::{state::EpochKey, state::Hold, state::Node, state::SuiteKey};
use crate::api::admin::Phase;
use crate::api::peer::PeerMessage;
use crate::attestation::Roster;
use crate::certs::install::IssuancePin;
use crate::threshold::keys::{GroupKey, KeyShare};
use crate::threshold::suite::BySuite;
use frost_core::{keys::repairable, Identifier};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a helper waits for the other helpers' deltas, and the replacement for its
/// helpers' sigmas.
const HELP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a repair did not happen, on either side. A helper sends its reason to the
/// replacement (`RepairRefused`) and keeps it for `/status`; the replacement answers its
/// operator with it ([`super::refusal::AdminError`]).
#[derive(Debug, thiserror::Error)]
pub(super) enum RepairError {
    /// The key epoch's state does not allow it (not configured, a key generation
    /// running, a share already held).
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// A helper holds no share (or no roster) to help with.
    #[error("this node holds no {0}")]
    NothingHeld(&'static str),
    /// The replacement's helper set is too small or names itself.
    #[error("need at least {t} distinct helpers other than this node")]
    TooFewHelpers {
        /// The threshold.
        t: usize,
    },
    /// A helper's view of the helper set does not fit.
    #[error("helper set {helpers:?} must be {t} or more distinct nodes, include this one and not node {participant}")]
    BadHelperSet {
        /// The set asked for.
        helpers: Vec<u16>,
        /// The threshold.
        t: usize,
        /// The index being repaired.
        participant: u16,
    },
    /// Helpers the replacement names are not admitted peers.
    #[error("helpers not admitted: {0:?}")]
    NotAdmitted(Vec<u16>),
    /// A node asked for another index's share than its own.
    #[error("node {from} asked for the share of node {participant}")]
    NotItsOwn {
        /// The asking link's index.
        from: u16,
        /// The index it asked for.
        participant: u16,
    },
    /// The requester's link closed before its request was looked at.
    #[error("the requester's link is gone")]
    RequesterGone,
    /// No order of this node's operator names the requester.
    #[error("no unexpired repair order of this node's operator, in effect, names identity {spki_prefix}… for index {participant}")]
    NoOrder {
        /// The first 8 bytes of the requester's TLS SPKI hash, hex.
        spki_prefix: String,
        /// The index asked for.
        participant: u16,
    },
    /// The order exists but the roster does not name the requester yet.
    #[error("the roster (v{version}) does not yet name the requester for index {participant}")]
    NotYetInRoster {
        /// The held roster's version.
        version: u32,
        /// The index asked for.
        participant: u16,
    },
    /// The request is for another key epoch.
    #[error("epoch {asked} is not this node's ({held})")]
    OtherEpoch {
        /// The epoch asked for.
        asked: String,
        /// The epoch held.
        held: String,
    },
    /// A message did not go out or no answer came.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The replacement's helpers did not all answer in time.
    #[error("timed out waiting for the helpers")]
    HelpersTimedOut,
    /// A helper refused.
    #[error("node {who} refused: {reason}")]
    HelperRefused {
        /// The helper.
        who: u16,
        /// Its reason.
        reason: String,
    },
    /// A helper sent a value that does not parse.
    #[error("node {who} sent a malformed {what}: {why}")]
    Malformed {
        /// The sender.
        who: u16,
        /// `delta` or `sigma`.
        what: &'static str,
        /// The parser's complaint.
        why: String,
    },
    /// A delta of another repair arrived.
    #[error("node {0} sent a delta for another repair")]
    OtherRepair(u16),
    /// Helpers sent different public data.
    #[error("helpers disagree on {0}")]
    HelpersDisagree(&'static str),
    /// The helpers' roster does not hold.
    #[error("roster from helpers: {0}")]
    BadRoster(#[from] crate::attestation::roster::RosterError),
    /// The helpers' roster is not the one the operator expects.
    #[error(
        "the helpers' roster v{version} (hash {got}) is not the one the operator expects ({want})"
    )]
    UnexpectedRoster {
        /// Its version.
        version: u32,
        /// Its hash, hex.
        got: String,
        /// The operator's, hex.
        want: String,
    },
    /// The helpers' roster names another identity for this node's index.
    #[error("the helpers' roster v{version} does not name this node for index {me}")]
    NotNamed {
        /// Its version.
        version: u32,
        /// This node's index.
        me: u16,
    },
    /// A sigma came on a link whose identity the roster does not name.
    #[error("helper {0}'s link identity is not the roster's entry for index {0}")]
    WrongLinkIdentity(u16),
    /// The repaired share is not the group's verifying share for this index.
    #[error("the repaired share does not match the group's verifying share for this index")]
    ShareMismatch,
    /// The helpers' group key is not the operator's.
    #[error("the helpers' group key {got} is not the one the operator expects ({want})")]
    UnexpectedGroupKey {
        /// Theirs, hex.
        got: String,
        /// The operator's, hex.
        want: String,
    },
    /// The chain the helpers hold fails the installation checks.
    #[error("chain from helpers: {0}")]
    Chain(#[from] crate::certs::install::InstallError),
    /// The chain's leaf or the coordinator for it.
    #[error("certificate from helpers: {0}")]
    Certificate(String),
    /// An encoding the helpers sent (hex, transcript hash) is not what it must be.
    #[error("helpers sent a malformed {0}")]
    Encoding(&'static str),
    /// frost refused a step.
    #[error("FROST: {0}")]
    Frost(String),
    /// This node's attestation failed.
    #[error("evidence: {0}")]
    Evidence(#[from] crate::attestation::AttestationError),
}

/// A frost error, whatever the suite.
fn frost(e: impl std::fmt::Display) -> RepairError {
    RepairError::Frost(e.to_string())
}

/// A replacement's `RepairStart`, with the link it came on.
pub(super) struct HelpRequest {
    /// The index of the link the request came on.
    pub from: u16,
    /// That link's generation: the sigma goes back on this link only.
    pub generation: u64,
    pub epoch: String,
    pub helpers: Vec<u16>,
    pub participant: u16,
    pub attempt: u64,
}

/// Helper side of a repair requested by `request.from`.
pub(super) async fn help(node: &Arc<Node>, request: HelpRequest) {
    if let Err(reason) = help_inner(node, &request).await {
        node.refuse(format!(
            "repair of node {}'s share: {reason}",
            request.participant
        ));
        let _ = send_on(
            node,
            request.from,
            request.generation,
            PeerMessage::RepairRefused {
                epoch: request.epoch,
                attempt: request.attempt,
                reason: reason.to_string(),
            },
        )
        .await;
    }
}

async fn help_inner(node: &Arc<Node>, request: &HelpRequest) -> Result<(), RepairError> {
    let HelpRequest {
        from,
        generation,
        ref epoch,
        ref helpers,
        participant,
        attempt: _,
    } = *request;
    if from != participant {
        return Err(RepairError::NotItsOwn { from, participant });
    }
    let link_spki = node
        .peer_links()
        .get(&from)
        .filter(|l| l.generation == generation)
        .map(|l| l.spki_sha256)
        .ok_or(RepairError::RequesterGone)?;
    let (me, t, held, key_epoch, transcript, chain, roster, pin) = {
        let mut s = node.state();
        let order = s.order(participant).cloned();
        let c = s.epoch.cluster().ok_or(EpochError::NotConfigured)?;
        let k = s.epoch.key().ok_or(RepairError::NothingHeld("share"))?;
        let roster = s
            .epoch
            .roster()
            .cloned()
            .ok_or(RepairError::NothingHeld("roster"))?;
        // (a) an unexpired order of this node's operator names exactly this identity
        // for this index (made for the roster it moved from, or re-issued for the
        // roster it produced when a repair is retried);
        let ordered = order.is_some_and(|o| {
            o.epoch == k.epoch
                && (o.roster_version.checked_add(1) == Some(roster.version)
                    || o.roster_version == roster.version)
                && hex::decode(&o.replacement).ok().as_deref() == Some(link_spki.as_slice())
        });
        if !ordered {
            return Err(RepairError::NoOrder {
                spki_prefix: hex::encode(link_spki.get(..8).unwrap_or(&link_spki)),
                participant,
            });
        }
        // (b), (c): the order took effect (the holder was silent when this identity was
        // admitted) and the request comes on that identity's link.
        if roster.get(participant).map(|m| m.spki_sha256) != Some(link_spki) {
            return Err(RepairError::NotYetInRoster {
                version: roster.version,
                participant,
            });
        }
        (
            c.index,
            usize::from(c.t),
            k.held.clone(),
            k.epoch.clone(),
            hex::encode(k.transcript),
            k.chain.clone().unwrap_or_default(),
            roster,
            k.pin.clone(),
        )
    };
    if key_epoch != *epoch {
        return Err(RepairError::OtherEpoch {
            asked: epoch.clone(),
            held: key_epoch,
        });
    }
    let set: BTreeSet<u16> = helpers.iter().copied().collect();
    if set.len() != helpers.len()
        || set.len() < t
        || !set.contains(&me)
        || set.contains(&participant)
    {
        return Err(RepairError::BadHelperSet {
            helpers: helpers.clone(),
            t,
            participant,
        });
    }
    let help = Help {
        me,
        set,
        transcript,
        chain,
        roster,
        pin,
    };
    crate::with_suite!(held, S, key => help_with::<S>(node, request, key, help).await)
}

/// What a helper sends with its sigma, besides the arithmetic.
struct Help {
    me: u16,
    set: BTreeSet<u16>,
    transcript: String,
    chain: Vec<Vec<u8>>,
    roster: Roster,
    pin: Option<IssuancePin>,
}

/// The helper's RTS steps with the epoch's key, of suite `S`.
async fn help_with<S: Hold>(
    node: &Arc<Node>,
    request: &HelpRequest,
    key: SuiteKey<S>,
    help: Help,
) -> Result<(), RepairError> {
    let HelpRequest {
        generation,
        ref epoch,
        ref helpers,
        participant,
        attempt,
        ..
    } = *request;
    let signer = key.signer;
    let public =
        BySuite::new(key.group.package().clone()).ok_or(RepairError::Encoding("ciphersuite"))?;
    let helper_ids: Vec<Identifier<S>> = helpers
        .iter()
        .map(|i| Identifier::try_from(*i).map_err(frost))
        .collect::<Result<_, _>>()?;
    let target = Identifier::try_from(participant).map_err(frost)?;
    let deltas = repairable::repair_share_part1::<S, _>(
        &helper_ids,
        signer.key_package(),
        &mut node.rng(),
        target,
    )
    .map_err(frost)?;
    let mut own = None;
    for (&i, id) in helpers.iter().zip(&helper_ids) {
        let d = *deltas
            .get(id)
            .ok_or(RepairError::Frost("no delta for a helper".into()))?;
        if i == help.me {
            own = Some(d);
        } else {
            send(
                node,
                i,
                PeerMessage::RepairDelta {
                    epoch: epoch.to_string(),
                    participant,
                    attempt,
                    delta: crate::api::peer::SecretScalar::new(d.serialize()),
                },
            )
            .await?;
        }
    }
    let others: BTreeSet<u16> = help.set.iter().copied().filter(|i| *i != help.me).collect();
    let mut inbox = Inbox::open(node, epoch, HELP_TIMEOUT).await;
    let got = inbox
        .collect_where("repair_delta", &others, |m| {
            matches!(m, PeerMessage::RepairDelta { attempt: a, participant: p, .. } if *a == attempt && *p == participant)
        })
        .await
        ?;
    drop(inbox);
    let mut all = vec![own.ok_or(RepairError::Frost("no own delta".into()))?];
    for (who, m) in got {
        match m {
            PeerMessage::RepairDelta {
                participant: p,
                delta,
                ..
            } if p == participant => {
                all.push(delta.delta::<S>().map_err(|e| RepairError::Malformed {
                    who,
                    what: "delta",
                    why: e.to_string(),
                })?)
            }
            _ => return Err(RepairError::OtherRepair(who)),
        }
    }
    let sigma = repairable::repair_share_part2(&all);
    // Only on the link the request came on: if that identity reconnected meanwhile, or
    // the index moved, the replacement asks again.
    send_on(
        node,
        participant,
        generation,
        PeerMessage::RepairSigma {
            epoch: epoch.to_string(),
            attempt,
            sigma: crate::api::peer::SecretScalar::new(sigma.serialize()),
            public,
            transcript: help.transcript,
            chain: help.chain.iter().map(hex::encode).collect(),
            roster: help.roster,
            pin: help.pin,
        },
    )
    .await?;
    tracing::info!(node = %node.name, participant, "helped repair a share");
    Ok(())
}

/// Replacement side: rebuild this node's share for `epoch` with `helpers`.
/// What the operator expects the repair to yield (`/admin/repair`): the replacement
/// holds no roster and admits its helpers first-come, so it takes the group key and the
/// roster naming it from its operator, not from whoever answers.
#[derive(Clone, Debug)]
pub(super) struct Expected {
    /// The group verifying key (RFC 9591 serialization).
    pub group_key: Vec<u8>,
    /// Hash of the roster version in which the operator's order took effect.
    pub roster_hash: [u8; 32],
}

pub(super) async fn repair(
    node: &Arc<Node>,
    epoch: &str,
    helpers: &[u16],
    expected: &Expected,
) -> Result<Phase, RepairError> {
    let (me, t) = node.state().epoch.repair_target()?;
    let t = usize::from(t);
    let set: BTreeSet<u16> = helpers.iter().copied().collect();
    if set.len() < t || set.contains(&me) {
        return Err(RepairError::TooFewHelpers { t });
    }
    if let Err(missing) = node.wait_admitted(&set, Duration::from_secs(30)).await {
        return Err(RepairError::NotAdmitted(missing));
    }
    let mut inbox = Inbox::open(node, epoch, HELP_TIMEOUT).await;
    let attempt = rand_core::RngCore::next_u64(&mut node.rng());
    // The identity on each helper's link when it was asked: a sigma counts only from
    // that link's identity (checked against the roster the helpers send, below).
    let mut asked = BTreeMap::new();
    for h in &set {
        let spki = node
            .peer_links()
            .get(h)
            .map(|l| l.spki_sha256)
            .ok_or(LinkError::NotConnected(*h))?;
        asked.insert(*h, spki);
        send(
            node,
            *h,
            PeerMessage::RepairStart {
                epoch: epoch.to_string(),
                helpers: set.iter().copied().collect(),
                participant: me,
                attempt,
            },
        )
        .await?;
    }
    // Sigmas, or a refusal from any helper.
    let mut sigmas = BTreeMap::new();
    let mut pins = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + HELP_TIMEOUT;
    while sigmas.len() < set.len() {
        let (who, m) = match inbox.next_until(deadline).await {
            Ok(x) => x,
            Err(LinkError::Timeout { .. }) => return Err(RepairError::HelpersTimedOut),
            Err(e) => return Err(e.into()),
        };
        // Only this attempt's helpers, on the links they were asked on, count; anything
        // else (another node's refusal, a leftover of an earlier attempt) is ignored.
        let same_link = node
            .peer_links()
            .get(&who)
            .is_some_and(|l| asked.get(&who) == Some(&l.spki_sha256));
        if !set.contains(&who) || !same_link {
            continue;
        }
        match m {
            PeerMessage::RepairRefused {
                epoch: e,
                attempt: a,
                reason,
            } if e == epoch && a == attempt => {
                return Err(RepairError::HelperRefused { who, reason })
            }
            PeerMessage::RepairSigma {
                epoch: e,
                attempt: a,
                sigma,
                public,
                transcript,
                chain,
                roster,
                pin,
            } if e == epoch && a == attempt => {
                pins.insert(who, pin);
                sigmas.insert(who, (sigma, public, transcript, chain, roster));
            }
            _ => {}
        }
    }
    drop(inbox);
    let first = sigmas.values().next().ok_or(RepairError::HelpersTimedOut)?;
    let (public, transcript, chain, roster) = (
        first.1.clone(),
        first.2.clone(),
        first.3.clone(),
        first.4.clone(),
    );
    if sigmas
        .values()
        .any(|(_, p, tr, c, r)| *p != public || *tr != transcript || *c != chain || *r != roster)
    {
        return Err(RepairError::HelpersDisagree(
            "the group's public data or the roster",
        ));
    }
    roster.validate()?;
    if roster.hash() != expected.roster_hash {
        return Err(RepairError::UnexpectedRoster {
            version: roster.version,
            got: hex::encode(roster.hash()),
            want: hex::encode(expected.roster_hash),
        });
    }
    if roster.get(me).map(|m| m.spki_sha256) != Some(node.identity.spki_sha256()) {
        return Err(RepairError::NotNamed {
            version: roster.version,
            me,
        });
    }
    // Each sigma came on the link of the identity the roster names for its sender.
    for (who, spki) in &asked {
        if roster.get(*who).map(|m| m.spki_sha256) != Some(*spki) {
            return Err(RepairError::WrongLinkIdentity(*who));
        }
    }
    let pin = pins.values().next().cloned().flatten();
    if pins.values().any(|p| *p != pin) {
        return Err(RepairError::HelpersDisagree(
            "the CA root and subject fixed with the CSR",
        ));
    }
    let sigmas: BTreeMap<u16, crate::api::peer::SecretScalar> =
        sigmas.into_iter().map(|(w, v)| (w, v.0)).collect();
    let got = Repaired {
        me,
        t,
        set,
        sigmas,
        transcript,
        chain,
        roster,
        pin,
    };
    // The suite is the helpers' public key package's (the operator's expected group
    // key, checked below, is of that suite or matches nothing).
    crate::with_suite!(public, S, p => finish::<S>(node, epoch, helpers, expected, p, got).await)
}

/// What the replacement received from its helpers, past the checks of the roster.
struct Repaired {
    me: u16,
    t: usize,
    set: BTreeSet<u16>,
    sigmas: BTreeMap<u16, crate::api::peer::SecretScalar>,
    transcript: String,
    chain: Vec<String>,
    roster: Roster,
    pin: Option<IssuancePin>,
}

/// The replacement's RTS step 3 and its checks, in suite `S`.
async fn finish<S: Hold>(
    node: &Arc<Node>,
    epoch: &str,
    helpers: &[u16],
    expected: &Expected,
    public: frost_core::keys::PublicKeyPackage<S>,
    got: Repaired,
) -> Result<Phase, RepairError> {
    let id = Identifier::<S>::try_from(got.me).map_err(frost)?;
    let list: Vec<repairable::Sigma<S>> = got
        .sigmas
        .iter()
        .map(|(who, v)| {
            v.sigma::<S>().map_err(|e| RepairError::Malformed {
                who: *who,
                what: "sigma",
                why: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let kp = repairable::repair_share_part3(&list, id, &public).map_err(frost)?;
    // The check frost leaves to the caller: the repaired share must match the
    // group's verifying share for this identifier.
    if public.verifying_shares().get(&id) != Some(kp.verifying_share()) {
        return Err(RepairError::ShareMismatch);
    }
    let group = GroupKey::new(public);
    let group_sec1 = group
        .key_bytes()
        .map_err(|e| RepairError::Frost(e.to_string()))?;
    if group_sec1 != expected.group_key {
        return Err(RepairError::UnexpectedGroupKey {
            got: hex::encode(&group_sec1),
            want: hex::encode(&expected.group_key),
        });
    }
    let transcript: [u8; 32] = hex::decode(&got.transcript)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(RepairError::Encoding("transcript hash"))?;
    let evidence = node.attester.attest(crate::attestation::evidence_binding(
        &S::SUITE.binding_input(&group_sec1),
        &transcript,
        got.me,
        crate::attestation::roster::N,
        crate::attestation::roster::T,
        &got.roster.hash(),
    ))?;
    let held = node.signer(KeyShare::new(kp), group.clone());
    let chain: Vec<Vec<u8>> = got
        .chain
        .iter()
        .map(hex::decode)
        .collect::<Result<_, _>>()
        .map_err(|_| RepairError::Encoding("certificate chain"))?;
    let mut coordinator = None;
    if let Some(leaf) = chain.first() {
        super::certificate::check_repaired(node, &chain, got.pin.as_ref(), &group.public())?;
        let identity = crate::tsp::token::CertIdentity::from_der(leaf)
            .map_err(|e| RepairError::Certificate(e.to_string()))?;
        let key = EpochKey {
            epoch: epoch.to_string(),
            held: held.clone(),
            transcript,
            evidence: evidence.clone(),
            chain: None,
            pin: None,
        };
        coordinator = Some(
            key.install(
                identity,
                &node.profile,
                u16::try_from(got.t).unwrap_or(u16::MAX),
                node.clock.clone(),
            )
            .map_err(|e| RepairError::Certificate(e.to_string()))?,
        );
    }
    let group_hex = hex::encode(&group_sec1);
    // A key generation that completed meanwhile wins: its key is not overwritten.
    let phase = node.state().epoch.repaired(
        EpochKey {
            epoch: epoch.to_string(),
            held,
            transcript,
            evidence,
            chain: (!chain.is_empty()).then_some(chain),
            pin: got.pin,
        },
        coordinator,
    )?;
    // From now on only the roster's identities are admitted; links to others close.
    node.adopt_roster(got.roster);
    super::serve::prefill(node);
    // Peers learn that this node holds a share again; helpers evidently hold one.
    let peers: Vec<u16> = node.peer_links().keys().copied().collect();
    for p in peers {
        let _ = send(
            node,
            p,
            PeerMessage::HaveShare {
                group_key: group_hex.clone(),
            },
        )
        .await;
    }
    for h in &got.set {
        if let Some(l) = node.peer_links().get_mut(h) {
            l.group_key = Some(group_hex.clone());
        }
    }
    tracing::info!(node = %node.name, helpers = ?helpers, "share repaired and checked against the group's verifying share");
    Ok(phase)
}
