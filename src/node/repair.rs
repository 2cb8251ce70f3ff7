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

use super::dkg::{send, send_on, Inbox};
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
                reason,
            },
        )
        .await;
    }
}

async fn help_inner(node: &Arc<Node>, request: &HelpRequest) -> Result<(), String> {
    let HelpRequest {
        from,
        generation,
        ref epoch,
        ref helpers,
        participant,
        attempt: _,
    } = *request;
    if from != participant {
        return Err(format!(
            "node {from} asked for the share of node {participant}"
        ));
    }
    let link_spki = node
        .peer_links()
        .get(&from)
        .filter(|l| l.generation == generation)
        .map(|l| l.spki_sha256)
        .ok_or("the requester's link is gone")?;
    let (me, t, held, key_epoch, transcript, chain, roster, pin) = {
        let mut s = node.state();
        let order = s.order(participant).cloned();
        let c = s.cluster.as_ref().ok_or("not configured")?;
        let k = s.key.as_ref().ok_or("this node holds no share")?;
        let roster = s.roster.clone().ok_or("this node holds no roster")?;
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
            return Err(format!(
                "no unexpired repair order of this node's operator, in effect, names identity {}… for index {participant}",
                hex::encode(link_spki.get(..8).unwrap_or(&link_spki))
            ));
        }
        // (b), (c): the order took effect (the holder was silent when this identity was
        // admitted) and the request comes on that identity's link.
        if roster.get(participant).map(|m| m.spki_sha256) != Some(link_spki) {
            return Err(format!(
                "the roster (v{}) does not yet name the requester for index {participant}",
                roster.version
            ));
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
        return Err(format!("epoch {epoch} is not this node's ({key_epoch})"));
    }
    let set: BTreeSet<u16> = helpers.iter().copied().collect();
    if set.len() != helpers.len()
        || set.len() < t
        || !set.contains(&me)
        || set.contains(&participant)
    {
        return Err(format!("helper set {helpers:?} must be {t} or more distinct nodes, include this one and not node {participant}"));
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
) -> Result<(), String> {
    let HelpRequest {
        generation,
        ref epoch,
        ref helpers,
        participant,
        attempt,
        ..
    } = *request;
    let Help {
        me,
        set,
        transcript,
        chain,
        roster,
        pin,
    } = help;
    let signer = key.signer;
    let public =
        BySuite::new(key.group.package().clone()).ok_or("a ciphersuite frostamp does not run")?;
    let helper_ids: Vec<Identifier<S>> = helpers
        .iter()
        .map(|i| Identifier::try_from(*i).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let target = Identifier::try_from(participant).map_err(|e| e.to_string())?;
    let deltas = repairable::repair_share_part1::<S, _>(
        &helper_ids,
        signer.key_package(),
        &mut node.rng(),
        target,
    )
    .map_err(|e| e.to_string())?;
    let mut own = None;
    for (&i, id) in helpers.iter().zip(&helper_ids) {
        let d = *deltas.get(id).ok_or("missing delta")?;
        if i == me {
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
            .await
            .map_err(|f| f.reason)?;
        }
    }
    let others: BTreeSet<u16> = set.iter().copied().filter(|i| *i != me).collect();
    let mut inbox = Inbox {
        rx: node.inbox.lock().await,
        stash: Vec::new(),
        epoch: epoch.to_string(),
        partial: BTreeMap::new(),
    };
    let got = inbox
        .collect_where("repair_delta", &others, |m| {
            matches!(m, PeerMessage::RepairDelta { attempt: a, participant: p, .. } if *a == attempt && *p == participant)
        })
        .await
        .map_err(|f| f.reason)?;
    drop(inbox);
    let mut all = vec![own.ok_or("no own delta")?];
    for (who, m) in got {
        match m {
            PeerMessage::RepairDelta {
                participant: p,
                delta,
                ..
            } if p == participant => all.push(
                delta
                    .delta::<S>()
                    .map_err(|e| format!("node {who} sent a malformed delta: {e}"))?,
            ),
            _ => return Err(format!("node {who} sent a delta for another repair")),
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
            transcript,
            chain: chain.iter().map(hex::encode).collect(),
            roster,
            pin,
        },
    )
    .await
    .map_err(|f| f.reason)?;
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
) -> Result<Phase, String> {
    let (me, t) = {
        let s = node.state();
        let c = s
            .cluster
            .as_ref()
            .ok_or("not configured: call /admin/configure first")?;
        if s.key.is_some() {
            return Err("this node already holds a share".into());
        }
        (c.index, usize::from(c.t))
    };
    let set: BTreeSet<u16> = helpers.iter().copied().collect();
    if set.len() < t || set.contains(&me) {
        return Err(format!(
            "need at least {t} distinct helpers other than this node"
        ));
    }
    if let Err(missing) = node.wait_admitted(&set, Duration::from_secs(30)).await {
        return Err(format!("helpers not admitted: {missing:?}"));
    }
    let mut inbox = Inbox {
        rx: node.inbox.lock().await,
        stash: Vec::new(),
        epoch: epoch.to_string(),
        partial: BTreeMap::new(),
    };
    let attempt = rand_core::RngCore::next_u64(&mut node.rng());
    // The identity on each helper's link when it was asked: a sigma counts only from
    // that link's identity (checked against the roster the helpers send, below).
    let mut asked = BTreeMap::new();
    for h in &set {
        let spki = node
            .peer_links()
            .get(h)
            .map(|l| l.spki_sha256)
            .ok_or_else(|| format!("helper {h} is not connected"))?;
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
        .await
        .map_err(|f| f.reason)?;
    }
    // Sigmas, or a refusal from any helper.
    let mut sigmas = BTreeMap::new();
    let mut pins = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sigmas.len() < set.len() {
        let (who, m) = match tokio::time::timeout_at(deadline, inbox.rx.recv()).await {
            Ok(Some(x)) => x,
            Ok(None) => return Err("inbox closed".into()),
            Err(_) => return Err("timed out waiting for the helpers".into()),
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
            } if e == epoch && a == attempt => return Err(format!("node {who} refused: {reason}")),
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
    let first = sigmas.values().next().ok_or("no sigmas")?;
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
        return Err("helpers disagree on the group's public data or the roster".into());
    }
    roster
        .validate()
        .map_err(|e| format!("roster from helpers: {e}"))?;
    if roster.hash() != expected.roster_hash {
        return Err(format!(
            "the helpers' roster v{} (hash {}) is not the one the operator expects ({})",
            roster.version,
            hex::encode(roster.hash()),
            hex::encode(expected.roster_hash)
        ));
    }
    if roster.get(me).map(|m| m.spki_sha256) != Some(node.identity.spki_sha256()) {
        return Err(format!(
            "the helpers' roster v{} does not name this node for index {me}",
            roster.version
        ));
    }
    // Each sigma came on the link of the identity the roster names for its sender.
    for (who, spki) in &asked {
        if roster.get(*who).map(|m| m.spki_sha256) != Some(*spki) {
            return Err(format!(
                "helper {who}'s link identity is not the roster's entry for index {who}"
            ));
        }
    }
    let pin = pins.values().next().cloned().flatten();
    if pins.values().any(|p| *p != pin) {
        return Err("helpers disagree on the CA root and subject fixed with the CSR".into());
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
) -> Result<Phase, String> {
    let Repaired {
        me,
        t,
        set,
        sigmas,
        transcript,
        chain,
        roster,
        pin,
    } = got;
    let id = Identifier::<S>::try_from(me).map_err(|e| e.to_string())?;
    let list: Vec<repairable::Sigma<S>> = sigmas
        .iter()
        .map(|(who, v)| {
            v.sigma::<S>()
                .map_err(|e| format!("node {who} sent a malformed sigma: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let kp = repairable::repair_share_part3(&list, id, &public).map_err(|e| e.to_string())?;
    // The check frost leaves to the caller: the repaired share must match the
    // group's verifying share for this identifier.
    if public.verifying_shares().get(&id) != Some(kp.verifying_share()) {
        return Err(
            "the repaired share does not match the group's verifying share for this index".into(),
        );
    }
    let group = GroupKey::new(public);
    let group_sec1 = group.key_bytes().map_err(|e| e.to_string())?;
    if group_sec1 != expected.group_key {
        return Err(format!(
            "the helpers' group key {} is not the one the operator expects ({})",
            hex::encode(&group_sec1),
            hex::encode(&expected.group_key)
        ));
    }
    let transcript: [u8; 32] = hex::decode(&transcript)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("transcript")?;
    let evidence = node
        .attester
        .attest(crate::attestation::evidence_binding(
            &S::SUITE.binding_input(&group_sec1),
            &transcript,
            me,
            crate::attestation::roster::N,
            crate::attestation::roster::T,
            &roster.hash(),
        ))
        .map_err(|e| e.to_string())?;
    let held = node.signer(KeyShare::new(kp), group.clone());
    let chain: Vec<Vec<u8>> = chain
        .iter()
        .map(hex::decode)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut phase = Phase::AwaitingCertificate;
    let mut coordinator = None;
    if let Some(leaf) = chain.first() {
        super::certificate::check_repaired(node, &chain, pin.as_ref(), &group.public())
            .map_err(|e| format!("chain from helpers: {e}"))?;
        let identity =
            crate::tsp::token::CertIdentity::from_der(leaf).map_err(|e| e.to_string())?;
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
                u16::try_from(t).unwrap_or(u16::MAX),
                node.clock.clone(),
            )
            .map_err(|e| e.to_string())?,
        );
        phase = Phase::Serving;
    }
    let group_hex = hex::encode(&group_sec1);
    {
        let mut s = node.state();
        s.key = Some(EpochKey {
            epoch: epoch.to_string(),
            held,
            transcript,
            evidence,
            chain: (!chain.is_empty()).then_some(chain),
            pin,
        });
        s.coordinator = coordinator;
        s.phase = phase;
    }
    // From now on only the roster's identities are admitted; links to others close.
    node.adopt_roster(roster);
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
    for h in &set {
        if let Some(l) = node.peer_links().get_mut(h) {
            l.group_key = Some(group_hex.clone());
        }
    }
    tracing::info!(node = %node.name, helpers = ?helpers, "share repaired and checked against the group's verifying share");
    Ok(phase)
}
