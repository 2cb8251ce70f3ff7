//! FROST DKG among the admitted peers (frost `keys::dkg`, a Pedersen DKG with
//! proofs of knowledge), made safe against equivocation:
//!
//! 1. **Round 1** (`part1`): every node broadcasts its package to every peer.
//! 2. **Echo**: every node sends every peer the SHA-256 of the round-1 package it
//!    received from each sender (its own included). A node that sees, for some
//!    sender S, a digest different from the one it received itself has proof that
//!    S sent different packages to different nodes: it aborts naming S. The
//!    transcript hash is SHA-256 over all n packages in index order.
//! 3. **Round 2** (`part2`): each secret share travels only on the pairwise,
//!    attested channel to its one recipient.
//! 4. **part3**: verifies every share against the sender's commitments; a bad
//!    share names its sender.
//! 5. **Confirm**: every node broadcasts (group key, transcript hash); any
//!    disagreement aborts naming the node that disagrees.
//!
//! Any abort is broadcast (`DkgAbort`) so the whole cluster stops, and reported
//! to the operator with the culprit's index.

use super::link::{broadcast, send, tell_all, Inbox, LinkError};
use super::state::Node;
use crate::api::peer::PeerMessage;
use crate::attestation::roster::Roster;
use crate::threshold::keys::{GroupKey, KeyShare};
use crate::threshold::suite::{BySuite, Ciphersuite};
use frost_core::{keys::dkg, Identifier};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Per-phase timeout.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a node whose echo collection was ended by another node's abort still waits
/// for the missing echoes, which may prove who equivocated.
const PROOF_WAIT: Duration = Duration::from_secs(3);

/// A successful DKG as this node sees it.
pub(super) struct Outcome {
    /// The signer holding this node's share, and the group key, in the epoch's suite.
    pub(super) held: super::state::HeldKey,
    /// The group key's RFC 9591 serialization.
    pub(super) group_key: Vec<u8>,
    pub(super) transcript: [u8; 32],
    pub(super) roster: Roster,
}

/// [`Outcome`] in the suite `S`.
struct SuiteOutcome<S: super::state::Hold> {
    share: KeyShare<S>,
    group: GroupKey<S>,
    transcript: [u8; 32],
    roster: Roster,
}

/// An aborted DKG.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Failure {
    /// What went wrong.
    pub reason: String,
    /// The node held responsible, if one can be named.
    pub culprit: Option<u16>,
}

impl From<LinkError> for Failure {
    fn from(e: LinkError) -> Self {
        fail(e.to_string(), e.culprit())
    }
}

fn fail(reason: impl Into<String>, culprit: Option<u16>) -> Failure {
    Failure {
        reason: reason.into(),
        culprit,
    }
}

/// Test-only misbehaviour (feature `test-faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Send a different (valid) round-1 package to even-indexed peers.
    EquivocateRound1,
    /// Send a corrupted secret share to the lowest-indexed peer.
    BadRound2,
}

fn fault(node: &Node) -> Option<Fault> {
    if !cfg!(feature = "test-faults") {
        return None;
    }
    match node.fault.as_deref() {
        Some("equivocate-round1") => Some(Fault::EquivocateRound1),
        Some("bad-round2") => Some(Fault::BadRound2),
        _ => None,
    }
}

/// Compare every peer's echo with what this node received. A culprit is named only
/// where this node's own view proves it: `who` echoing a package *of its own* other than
/// the one it sent here on the attested channel. For another sender S, either S
/// equivocated or `who` lies about it, and nothing here tells which, so nobody is named
/// (a liar must not frame an honest sender); the node S equivocated to names S. A proven
/// culprit is preferred over an unproven disagreement.
fn check_echoes(
    me: u16,
    digests: &BTreeMap<u16, String>,
    roster_hex: &str,
    echoes: BTreeMap<u16, PeerMessage>,
) -> Result<(), Failure> {
    let mut unproven = None;
    for (who, msg) in echoes {
        let PeerMessage::DkgEcho {
            digests: theirs,
            roster: their_roster,
            ..
        } = msg
        else {
            continue;
        };
        if their_roster != roster_hex {
            // Either side may have admitted another identity somewhere: nothing proves
            // which. No secret share has been sent yet.
            unproven.get_or_insert(fail(
                format!("node {who} took another roster ({their_roster}) than node {me} ({roster_hex}): the nodes admitted different identities"),
                None,
            ));
            continue;
        }
        let theirs: BTreeMap<u16, String> = theirs.into_iter().collect();
        if theirs.keys().ne(digests.keys()) {
            return Err(fail(
                format!("node {who} echoed an incomplete round-1 transcript"),
                Some(who),
            ));
        }
        for (sender, d) in digests {
            if theirs.get(sender) != Some(d) {
                if *sender == who {
                    return Err(fail(
                        format!("equivocation: node {who} sent node {me} another round-1 package than the one it echoes as its own"),
                        Some(who),
                    ));
                }
                unproven.get_or_insert(fail(
                    format!("round-1 digests disagree: node {who} echoes another package of node {sender} than node {me} received (node {sender} equivocated or node {who} lies)"),
                    None,
                ));
            }
        }
    }
    unproven.map_or(Ok(()), Err)
}

fn id<S: super::state::Hold>(index: u16) -> Result<Identifier<S>, Failure> {
    Identifier::try_from(index).map_err(|e| fail(format!("identifier {index}: {e}"), None))
}

fn index_of<S: super::state::Hold>(
    ids: &BTreeMap<Identifier<S>, u16>,
    e: &frost_core::Error<S>,
) -> Option<u16> {
    e.culprits().first().and_then(|c| ids.get(c).copied())
}

/// A suite-specific DKG value out of a peer message from `who`: a value of another
/// suite aborts the DKG naming the sender.
fn of_suite<S: super::state::Hold, T: 'static, A: 'static, B: 'static>(
    value: BySuite<A, B>,
    who: u16,
) -> Result<T, Failure> {
    value
        .take::<T>(S::SUITE)
        .map_err(|e| fail(format!("node {who}: {e}"), Some(who)))
}

/// A suite-specific value for a peer message.
fn for_peers<A: 'static, B: 'static, T: 'static>(value: T) -> Result<BySuite<A, B>, Failure> {
    BySuite::new(value).ok_or_else(|| fail("a ciphersuite frostamp does not run", None))
}

/// Run the DKG for `epoch` in `suite`. On failure, tells every peer.
pub(super) async fn run(
    node: &Node,
    epoch: &str,
    pins: &BTreeMap<u16, [u8; 32]>,
    suite: Ciphersuite,
) -> Result<Outcome, Failure> {
    crate::for_suite!(suite, S => {
        let o = run_suite::<S>(node, epoch, pins).await?;
        let group_key = o.group.key_bytes().map_err(|e| fail(e.to_string(), None))?;
        Ok(Outcome {
            held: node.signer(o.share, o.group),
            group_key,
            transcript: o.transcript,
            roster: o.roster,
        })
    })
}

async fn run_suite<S: super::state::Hold>(
    node: &Node,
    epoch: &str,
    pins: &BTreeMap<u16, [u8; 32]>,
) -> Result<SuiteOutcome<S>, Failure> {
    let cluster = node
        .state()
        .epoch
        .cluster()
        .cloned()
        .ok_or_else(|| fail("not configured", None))?;
    let peers: BTreeSet<u16> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|i| *i != cluster.index)
        .collect();
    if let Err(missing) = node.wait_admitted(&peers, PHASE_TIMEOUT).await {
        return Err(fail(
            format!("peers not admitted: {missing:?} (see /status refusals)"),
            None,
        ));
    }
    // The roster: the identity admitted for every index, this node's own included. From
    // now on a peer is admitted only with its roster identity (no link is replaced).
    let roster = {
        let mut members = vec![node.member(cluster.index)];
        members.extend(node.peer_links().values().map(|l| l.member.clone()));
        Roster::new(members).map_err(|e| fail(format!("roster: {e}"), None))?
    };
    // Only the machines the operator attested: an identity that reached a peer port
    // first (before the real holder) aborts the DKG here, before anything is sent.
    for m in &roster.members {
        if pins.get(&m.index) != Some(&m.spki_sha256) {
            let f = fail(
                format!(
                    "this node admitted {m} for index {}, not the identity the operator pinned ({}…)",
                    m.index,
                    pins.get(&m.index)
                        .map(|p| hex::encode(p.get(..8).unwrap_or(p)))
                        .unwrap_or_default()
                ),
                None,
            );
            let abort = PeerMessage::DkgAbort {
                epoch: epoch.to_string(),
                reason: f.reason.clone(),
                culprit: None,
            };
            tell_all(node, &peers, &abort).await;
            return Err(f);
        }
    }
    node.adopt_roster(roster.clone());
    let mut inbox = Inbox::open(node, epoch, PHASE_TIMEOUT).await;
    let result = run_inner::<S>(node, epoch, &cluster, &peers, &roster, &mut inbox).await;
    if let Err(f) = &result {
        let abort = PeerMessage::DkgAbort {
            epoch: epoch.to_string(),
            reason: f.reason.clone(),
            culprit: f.culprit,
        };
        tell_all(node, &peers, &abort).await;
    }
    result
}

async fn run_inner<S: super::state::Hold>(
    node: &Node,
    epoch: &str,
    cluster: &crate::api::admin::ClusterConfig,
    peers: &BTreeSet<u16>,
    roster: &Roster,
    inbox: &mut Inbox<'_>,
) -> Result<SuiteOutcome<S>, Failure> {
    let roster_hex = hex::encode(roster.hash());
    let n = cluster.n();
    let me = cluster.index;
    let ids: BTreeMap<Identifier<S>, u16> = cluster
        .nodes
        .keys()
        .map(|i| id::<S>(*i).map(|x| (x, *i)))
        .collect::<Result<_, _>>()?;
    let rng = node.rng();
    let injected = fault(node);

    // Round 1.
    let (secret1, package1) = dkg::part1(id::<S>(me)?, n, cluster.t, rng.clone())
        .map_err(|e| fail(format!("part1: {e}"), None))?;
    let alt1 = match injected {
        Some(Fault::EquivocateRound1) => Some(
            dkg::part1(id::<S>(me)?, n, cluster.t, rng.clone())
                .map_err(|e| fail(e.to_string(), None))?
                .1,
        ),
        _ => None,
    };
    for p in peers {
        let pkg = match (&alt1, p % 2 == 0) {
            (Some(alt), true) => alt.clone(),
            _ => package1.clone(),
        };
        send(
            node,
            *p,
            PeerMessage::DkgRound1 {
                epoch: epoch.to_string(),
                package: for_peers(pkg)?,
            },
        )
        .await?;
    }
    let got = inbox.collect("dkg_round1", peers).await?;
    let mut round1: BTreeMap<u16, dkg::round1::Package<S>> = BTreeMap::new();
    for (who, msg) in got {
        if let PeerMessage::DkgRound1 { package, .. } = msg {
            round1.insert(who, of_suite::<S, _, _, _>(package, who)?);
        }
    }
    round1.insert(me, package1.clone());

    // Echo broadcast of what we received.
    let mut digests = BTreeMap::new();
    let mut transcript = Sha256::new();
    // The roster is part of the transcript: the key is bound to who holds it.
    transcript.update(roster.hash());
    for (who, pkg) in &round1 {
        let bytes = pkg
            .serialize()
            .map_err(|e| fail(format!("round-1 package from node {who}: {e}"), Some(*who)))?;
        digests.insert(*who, hex::encode(Sha256::digest(&bytes)));
        transcript.update(who.to_be_bytes());
        transcript.update((bytes.len() as u64).to_be_bytes());
        transcript.update(&bytes);
    }
    let transcript: [u8; 32] = transcript.finalize().into();
    broadcast(
        node,
        peers,
        &PeerMessage::DkgEcho {
            epoch: epoch.to_string(),
            digests: digests.iter().map(|(k, v)| (*k, v.clone())).collect(),
            roster: roster_hex.clone(),
        },
    )
    .await?;
    let echoes = match inbox.collect("dkg_echo", peers).await {
        Ok(m) => m,
        Err(f) => {
            // Another node aborted first. Only the node a sender equivocated to can prove
            // it, and that needs the sender's own echo, which may still be on its way
            // when an abort without proof from a third node arrives: wait a moment for
            // the missing echoes before answering.
            let seen = match &f {
                LinkError::Aborted { .. } => {
                    inbox
                        .gather_after_abort("dkg_echo", peers, PROOF_WAIT)
                        .await
                }
                _ => inbox.take_partial(),
            };
            return Err(check_echoes(me, &digests, &roster_hex, seen)
                .err()
                .filter(|e| e.culprit.is_some())
                .unwrap_or_else(|| f.into()));
        }
    };
    check_echoes(me, &digests, &roster_hex, echoes)?;

    // Round 2: pairwise secret shares.
    let others: BTreeMap<Identifier<S>, dkg::round1::Package<S>> = round1
        .iter()
        .filter(|(w, _)| **w != me)
        .map(|(w, p)| id::<S>(*w).map(|i| (i, p.clone())))
        .collect::<Result<_, _>>()?;
    let (secret2, packages2) = dkg::part2(secret1, &others)
        .map_err(|e| fail(format!("part2: {e}"), index_of(&ids, &e)))?;
    let victim = peers.iter().next().copied();
    for (to_id, pkg) in packages2 {
        let to = ids
            .get(&to_id)
            .copied()
            .ok_or_else(|| fail("unknown recipient", None))?;
        let pkg = if injected == Some(Fault::BadRound2) && Some(to) == victim {
            let junk = frost_core::keys::SigningShare::<S>::deserialize(&[0x42; 32])
                .map_err(|e| fail(e.to_string(), None))?;
            dkg::round2::Package::new(junk)
        } else {
            pkg
        };
        send(
            node,
            to,
            PeerMessage::DkgRound2 {
                epoch: epoch.to_string(),
                package: for_peers(pkg)?,
            },
        )
        .await?;
    }
    let mut round2 = BTreeMap::new();
    for (who, msg) in inbox.collect("dkg_round2", peers).await? {
        if let PeerMessage::DkgRound2 { package, .. } = msg {
            round2.insert(id::<S>(who)?, of_suite::<S, _, _, _>(package, who)?);
        }
    }
    let (key_package, public) = dkg::part3(&secret2, &others, &round2).map_err(|e| {
        let culprit = index_of(&ids, &e);
        fail(
            match culprit {
                Some(c) => format!("part3: node {c} sent an invalid secret share ({e})"),
                None => format!("part3: {e}"),
            },
            culprit,
        )
    })?;
    let group = GroupKey::new(public);
    let group_hex = hex::encode(group.key_bytes().map_err(|e| fail(e.to_string(), None))?);

    // Confirmation from every node.
    broadcast(
        node,
        peers,
        &PeerMessage::DkgConfirm {
            epoch: epoch.to_string(),
            group_key: group_hex.clone(),
            transcript: hex::encode(transcript),
        },
    )
    .await?;
    for (who, msg) in inbox.collect("dkg_confirm", peers).await? {
        if let PeerMessage::DkgConfirm {
            group_key,
            transcript: t,
            ..
        } = msg
        {
            if group_key != group_hex || t != hex::encode(transcript) {
                return Err(fail(
                    format!("node {who} derived a different group key or transcript"),
                    Some(who),
                ));
            }
        }
    }
    Ok(SuiteOutcome {
        share: KeyShare::new(key_package),
        group,
        transcript,
        roster: roster.clone(),
    })
}
