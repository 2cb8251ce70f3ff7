//! The node's state: the key epoch it holds (signer, coordinator, group key, roster,
//! repair orders), its admitted peer links and pending calls, and what it was started
//! with. Every protocol handler (`http`, `peers`, `dkg`, `serve`, `repair`,
//! `certificate`) works on [`Node`]; nothing here calls a handler.

use crate::api::peer::PeerMessage;
use crate::attestation::roster::{Member, Roster};
use crate::attestation::{Attester, Evidence, RootSet};
use crate::clock::Clock;
use crate::threshold::keys::{GroupKey, KeyShare};
use crate::threshold::suite::{BySuite, Ciphersuite, Ed25519Sha512, Secp256K1Sha256, Suite};
use crate::tsp::TsaProfile;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's TLS identity could not be made.
    #[error("identity: {0}")]
    Identity(#[from] crate::certs::CertError),
    /// The public port's TLS configuration could not be made.
    #[error("public TLS: {0}")]
    PublicTls(#[from] crate::net::tls::TlsError),
    /// The operator's public key does not parse.
    #[error("{0}")]
    Operator(#[from] crate::api::auth::KeyError),
    /// Own evidence could not be produced or does not verify.
    #[error("self-attestation failed: {0}")]
    SelfAttestation(#[from] crate::attestation::AttestationError),
    /// The time servers or quorum are not acceptable.
    #[error("time servers: {0}")]
    TimeServers(#[from] crate::time::config::TimeConfigError),
    /// I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything a node needs at start. Nothing here is secret except inside the attester.
pub struct NodeOptions {
    /// Name for logs and the TLS certificate.
    pub name: String,
    /// Bound public HTTPS listener.
    pub public: TcpListener,
    /// Bound peer (mutual TLS) listener.
    pub peer: TcpListener,
    /// Operator public key (hex SPKI DER); `None` disables lifecycle calls.
    pub operator_pubkey: Option<String>,
    /// Produces this node's evidence.
    pub attester: Arc<dyn Attester>,
    /// Roots peers' evidence must chain to.
    pub roots: RootSet,
    /// TSA profile (measured).
    pub profile: TsaProfile,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Where every random value the node makes comes from (the OS in production).
    pub entropy: Arc<dyn crate::entropy::Entropy>,
    /// Test-only fault injection (DKG misbehaviour), see `dkg::Fault`.
    pub fault: Option<String>,
    /// The time servers whose replies back every genTime (`crate::time`).
    pub time: crate::time::config::TimeConfig,
}

impl core::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The signer and group key of one epoch in its ciphersuite `S`.
pub(crate) struct SuiteKey<S: Suite> {
    /// This node's share, inside the signer that checks what it signs.
    pub(super) signer: Arc<crate::threshold::signer::Signer<Arc<dyn Clock>, S>>,
    pub(super) group: GroupKey<S>,
}

impl<S: Suite> Clone for SuiteKey<S> {
    fn clone(&self) -> Self {
        Self {
            signer: self.signer.clone(),
            group: self.group.clone(),
        }
    }
}

/// An epoch's key in whichever suite the ceremony chose: the one place the node
/// dispatches on the suite (`with_suite!`); everything below is generic.
pub(super) type HeldKey = BySuite<SuiteKey<Secp256K1Sha256>, SuiteKey<Ed25519Sha512>>;

/// The coordinator of an epoch, in its suite.
pub(super) type HeldCoordinator = BySuite<
    Arc<crate::threshold::coordinator::Coordinator<Arc<dyn Clock>, Secp256K1Sha256>>,
    Arc<crate::threshold::coordinator::Coordinator<Arc<dyn Clock>, Ed25519Sha512>>,
>;

/// The key of one epoch as this node holds it.
pub(super) struct EpochKey {
    pub(super) epoch: String,
    /// The signer (holding this node's share) and the group key.
    pub(super) held: HeldKey,
    pub(super) transcript: [u8; 32],
    #[allow(dead_code)] // served to relying parties with the chain (issue 4)
    pub(super) evidence: Evidence,
    pub(super) chain: Option<Vec<Vec<u8>>>,
    /// CA root and subject fixed when the CSR was made (`certificate`).
    pub(super) pin: Option<crate::certs::install::IssuancePin>,
}

/// Mutable node state.
pub(super) struct State {
    /// Phase, layout, roster, key share and coordinator: changed only through the
    /// transitions of [`super::epoch::Epoch`].
    pub(super) epoch: super::epoch::Epoch<EpochKey, HeldCoordinator>,
    /// When the roster was adopted: an index never heard from since counts as silent
    /// from then.
    pub(super) roster_since: std::time::Instant,
    /// When the link of each roster index last closed (the last frame heard on it).
    pub(super) silent_since: BTreeMap<u16, std::time::Instant>,
    /// Repair orders from this node's operator, by the index they replace, with when
    /// each arrived (an order expires after [`ORDER_TTL`]).
    pub(super) orders: BTreeMap<u16, (crate::api::admin::RepairOrder, std::time::Instant)>,
    pub(super) last_error: Option<String>,
    /// Recent refusals, with the source address of an unauthenticated connection that
    /// caused them (see [`Node::refuse_from`]).
    pub(super) refusals: VecDeque<(Option<std::net::IpAddr>, String)>,
    pub(super) dialers: Vec<tokio::task::JoinHandle<()>>,
}

/// How long an operator's repair order stays valid: long enough for the replacement to
/// boot, be attested and run the repair; after that a new order is needed.
pub(crate) const ORDER_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Node {
    /// A signer for a share held by this node: it checks every proposal's time evidence
    /// against this node's time servers and quorum.
    pub(super) fn signer<S: Hold>(&self, share: KeyShare<S>, group: GroupKey<S>) -> HeldKey {
        let signer = Arc::new(crate::threshold::signer::Signer::new(
            share,
            group.clone(),
            self.profile.clone(),
            self.clock.clone(),
            crate::threshold::signer::TimeRule::Evidence(self.time.policy().clone()),
        ));
        S::hold(SuiteKey { signer, group })
    }

    /// The held epoch's key if it is of suite `S`.
    pub(super) fn suite_key<S: Suite>(&self) -> Option<SuiteKey<S>> {
        self.state()
            .epoch
            .key()
            .and_then(|k| k.held.get::<SuiteKey<S>>(S::SUITE).ok().cloned())
    }

    /// The held epoch's signer if it is of suite `S`.
    pub(super) fn signer_of<S: Suite>(
        &self,
    ) -> Option<Arc<crate::threshold::signer::Signer<Arc<dyn Clock>, S>>> {
        self.suite_key::<S>().map(|k| k.signer)
    }
}

/// Wrapping a suite's key for the node (the other direction is `BySuite::get`).
pub(super) trait Hold: Suite {
    fn hold(key: SuiteKey<Self>) -> HeldKey;
    fn hold_coordinator(
        c: Arc<crate::threshold::coordinator::Coordinator<Arc<dyn Clock>, Self>>,
    ) -> HeldCoordinator;
}

/// `Hold` for a suite whose values go in the `BySuite` variant `$variant`.
macro_rules! hold_as {
    ($suite:ty, $variant:ident) => {
        impl Hold for $suite {
            fn hold(key: SuiteKey<Self>) -> HeldKey {
                BySuite::$variant(key)
            }
            fn hold_coordinator(
                c: Arc<crate::threshold::coordinator::Coordinator<Arc<dyn Clock>, Self>>,
            ) -> HeldCoordinator {
                BySuite::$variant(c)
            }
        }
    };
}
hold_as!(Secp256K1Sha256, Secp256k1);
hold_as!(Ed25519Sha512, Ed25519);

impl EpochKey {
    /// The epoch's ciphersuite.
    pub(super) fn suite(&self) -> Ciphersuite {
        self.held.suite()
    }
    /// The group key's RFC 9591 serialization.
    pub(super) fn group_bytes(&self) -> Option<Vec<u8>> {
        crate::with_suite!(&self.held, S, k => k.group.key_bytes().ok())
    }
    /// The group key, tagged with its suite.
    pub(super) fn group_public(&self) -> crate::threshold::suite::GroupPublicKey {
        crate::with_suite!(&self.held, S, k => k.group.public())
    }
    /// Install the TSA certificate in this node's signer; the coordinator for it.
    pub(super) fn install(
        &self,
        identity: crate::tsp::token::CertIdentity,
        profile: &TsaProfile,
        t: u16,
        clock: Arc<dyn Clock>,
    ) -> Result<HeldCoordinator, crate::threshold::signer::Refusal> {
        crate::with_suite!(&self.held, S, k => {
            k.signer.install_certificate(identity.clone())?;
            Ok(S::hold_coordinator(Arc::new(
                crate::threshold::coordinator::Coordinator::new(
                    profile.clone(),
                    k.group.clone(),
                    identity,
                    t,
                    clock,
                ),
            )))
        })
    }
}

impl State {
    pub(super) fn new() -> Self {
        Self {
            epoch: super::epoch::Epoch::default(),
            roster_since: std::time::Instant::now(),
            silent_since: BTreeMap::new(),
            orders: BTreeMap::new(),
            last_error: None,
            refusals: VecDeque::new(),
            dialers: Vec::new(),
        }
    }

    /// The operator's unexpired order for `index`, if any (expired ones are forgotten).
    pub(super) fn order(&mut self, index: u16) -> Option<&crate::api::admin::RepairOrder> {
        if self
            .orders
            .get(&index)
            .is_some_and(|(_, at)| at.elapsed() >= ORDER_TTL)
        {
            self.orders.remove(&index);
        }
        self.orders.get(&index).map(|(o, _)| o)
    }

    /// Adopt `roster` while the caller holds both locks (state, then links), so two
    /// adoptions cannot interleave (see [`super::epoch::Epoch::adopt_roster`]). Every
    /// link whose identity the new roster does not name for that index is closed.
    pub(super) fn adopt_roster(
        &mut self,
        links: &BTreeMap<u16, PeerLink>,
        roster: Roster,
        successor: bool,
    ) -> Result<(), super::epoch::EpochError> {
        self.epoch.adopt_roster(roster, successor)?;
        if let Some(roster) = self.epoch.roster() {
            for (i, l) in links {
                if roster.get(*i).map(|m| m.spki_sha256) != Some(l.spki_sha256) {
                    l.closer.notify_one();
                }
            }
        }
        self.roster_since = std::time::Instant::now();
        Ok(())
    }
}

/// An admitted peer.
/// A call awaiting a peer's answer: the peer, the generation of the link the call went
/// on, and the waiter.
pub(super) type PendingCall = (u16, u64, tokio::sync::oneshot::Sender<PeerMessage>);

pub(super) struct PeerLink {
    pub(super) spki_sha256: [u8; 32],
    /// The attested identity (index, TLS key, chip, TCB) admitted on this link.
    pub(super) member: Member,
    /// Notified to close this link (a new link of the same identity supersedes it, or
    /// the roster no longer names it).
    pub(super) closer: Arc<Notify>,
    /// Group key (hex) of the share the peer holds, as it announced or confirmed.
    pub(super) group_key: Option<String>,
    pub(super) tx: mpsc::Sender<PeerMessage>,
    pub(super) generation: u64,
}

/// Shared node internals.
pub(crate) struct Node {
    /// Time evidence for the tokens this node coordinates; its policy is what this
    /// node's signer checks every proposal's evidence against.
    pub(super) time: Arc<super::time::TimeService>,
    pub(super) name: String,
    pub(super) identity: crate::net::identity::Identity,
    /// What the public port serves: the identity key with its self-signed certificate,
    /// then the CA-issued chain the operator installed (`/admin/tls-certificate`).
    pub(super) public_tls: Arc<crate::net::tls::PublicCert>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) entropy: Arc<dyn crate::entropy::Entropy>,
    pub(super) operator: crate::api::auth::OperatorVerifier,
    pub(super) attester: Arc<dyn Attester>,
    pub(super) roots: RootSet,
    pub(super) profile: TsaProfile,
    pub(super) measurement: [u8; 48],
    /// This node's own attested identity (index 0 until configured: see `member`).
    pub(super) me: Member,
    pub(super) started: std::time::Instant,
    pub(super) fault: Option<String>,
    pub(super) state: Mutex<State>,
    pub(super) peers: Mutex<BTreeMap<u16, PeerLink>>,
    pub(super) inbox_tx: mpsc::Sender<(u16, PeerMessage)>,
    pub(super) inbox: tokio::sync::Mutex<mpsc::Receiver<(u16, PeerMessage)>>,
    pub(super) peers_changed: Notify,
    /// Notified when an operator configures this node (peers waiting to be admitted).
    pub(super) configured: Notify,
    pub(super) next_generation: std::sync::atomic::AtomicU64,
    /// Signing calls awaiting a peer's answer: request id → (peer, generation of the
    /// link the call went on, waiter). When that link closes its calls fail at once.
    pub(super) pending: Mutex<std::collections::HashMap<u64, PendingCall>>,
    pub(super) next_request: std::sync::atomic::AtomicU64,
    /// Commitments peers issued to this node ahead of time.
    pub(super) pools: super::pool::Pools,
    /// Peers that recently timed out: asked last.
    pub(super) suspects: super::pool::Suspects,
    pub(super) metrics: super::metrics::Metrics,
}

impl Node {
    /// The TLS acceptor of the `port` ("public", "peer") for `config`; `None`, logged,
    /// if it could not be made (the port then does not serve).
    pub(super) fn acceptor(
        &self,
        port: &str,
        config: Result<rustls::ServerConfig, crate::net::tls::TlsError>,
    ) -> Option<tokio_rustls::TlsAcceptor> {
        match config {
            Ok(c) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(c))),
            Err(e) => {
                tracing::error!(node = %self.name, "{port} TLS setup failed: {e}");
                None
            }
        }
    }

    /// A generator drawing from the node's entropy source.
    pub(super) fn rng(&self) -> crate::entropy::Rng {
        crate::entropy::Rng::new(self.entropy.clone())
    }
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the state itself stays consistent
        // because every critical section is a few assignments.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn peer_links(&self) -> MutexGuard<'_, BTreeMap<u16, PeerLink>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Own group key (hex), if this node holds a share.
    pub(super) fn group_key_hex(&self) -> Option<String> {
        self.state()
            .epoch
            .key()
            .and_then(|k| k.group_bytes())
            .map(hex::encode)
    }

    /// Nodes (this one included) known to hold a share of this node's group key.
    pub(super) fn share_holders(&self) -> u16 {
        let Some(own) = self.group_key_hex() else {
            return 0;
        };
        let peers = self
            .peer_links()
            .values()
            .filter(|l| l.group_key.as_deref() == Some(own.as_str()))
            .count();
        u16::try_from(peers + 1).unwrap_or(u16::MAX)
    }

    /// Wait until every node in `want` is an admitted peer; on timeout, the missing ones.
    pub(super) async fn wait_admitted(
        &self,
        want: &std::collections::BTreeSet<u16>,
        timeout: std::time::Duration,
    ) -> Result<(), Vec<u16>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.peers_changed.notified();
            let missing: Vec<u16> = {
                let links = self.peer_links();
                want.iter()
                    .filter(|p| !links.contains_key(p))
                    .copied()
                    .collect()
            };
            if missing.is_empty() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(missing);
            }
        }
    }

    /// This node's roster entry for `index`.
    pub(super) fn member(&self, index: u16) -> Member {
        Member {
            index,
            ..self.me.clone()
        }
    }

    /// Milliseconds since this node started (link liveness clocks).
    pub(super) fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Adopt `roster` (DKG start, a replacement's repaired share), taking both locks.
    pub(super) fn adopt_roster(&self, roster: Roster) {
        let (version, hash) = (roster.version, hex::encode(roster.hash()));
        let mut s = self.state();
        let links = self.peer_links();
        // Not a successor: this replaces whatever roster was held.
        let _ = s.adopt_roster(&links, roster, false);
        drop(links);
        drop(s);
        tracing::info!(node = %self.name, version, %hash, "roster adopted");
    }

    pub(super) fn refuse(&self, what: String) {
        self.refuse_from(None, what);
    }

    /// Keep a refusal for `/status`. Refusals of unauthenticated connections (with their
    /// `source` address) have a share of their own, [`STRANGERS_KEPT`], and one network
    /// (IPv4 /24, IPv6 /56) at most [`REFUSALS_PER_SOURCE`] of it: its newest replaces
    /// its own oldest. Whoever opens connections, from one address or from many, cannot
    /// flush the refusals that concern peers and the operator ([`REFUSALS_KEPT`]).
    pub(super) fn refuse_from(&self, source: Option<std::net::IpAddr>, what: String) {
        tracing::warn!(node = %self.name, "{what}");
        let mut s = self.state();
        push_refusal(&mut s.refusals, source, what);
    }
}

/// Refusals without a source address (peers admitted, lifecycle calls the operator
/// signed, the node's own decisions) that `/status` keeps.
pub(super) const REFUSALS_KEPT: usize = 32;
/// Refusals of unauthenticated connections `/status` keeps, besides those.
pub(super) const STRANGERS_KEPT: usize = 16;
/// Refusals one network of unauthenticated sources may occupy.
pub(super) const REFUSALS_PER_SOURCE: usize = 4;

pub(super) fn push_refusal(
    list: &mut VecDeque<(Option<std::net::IpAddr>, String)>,
    source: Option<std::net::IpAddr>,
    what: String,
) {
    use std::net::IpAddr;
    let net = source.map(super::limits::prefix_of);
    let in_net = move |s: Option<IpAddr>| net.is_some() && s.map(super::limits::prefix_of) == net;
    let count = |of: &dyn Fn(Option<IpAddr>) -> bool| list.iter().filter(|(s, _)| of(*s)).count();
    // The entries the new one competes with, and how many of them may stay.
    let (rivals, max): (&dyn Fn(Option<IpAddr>) -> bool, usize) = match net {
        None => (&|s: Option<IpAddr>| s.is_none(), REFUSALS_KEPT),
        Some(_) if count(&in_net) >= REFUSALS_PER_SOURCE => (&in_net, REFUSALS_PER_SOURCE),
        Some(_) => (&|s: Option<IpAddr>| s.is_some(), STRANGERS_KEPT),
    };
    if count(rivals) >= max {
        if let Some(i) = list.iter().position(|(s, _)| rivals(*s)) {
            list.remove(i);
        }
    }
    list.push_back((source, what));
}

#[cfg(test)]
mod refusal_tests {
    use super::*;
    use crate::api::admin::ClusterConfig;

    #[test]
    fn the_cluster_tag_is_shared_by_one_cluster_only() {
        let layout = |port: u16| ClusterConfig {
            index: 1,
            t: 3,
            nodes: (1..=5)
                .map(|i| (i, format!("10.0.0.{i}:{}", port + i)))
                .collect(),
        };
        let a = layout(7000);
        let mut b = a.clone();
        b.index = 4;
        // Every node of one cluster (whatever its own index) names the same tag.
        assert_eq!(a.tag(), b.tag());
        assert!(a.peer_server_name().starts_with('c'));
        assert!(a.peer_server_name().ends_with(".peer.frostamp"));
        assert!(rustls::pki_types::ServerName::try_from(a.peer_server_name()).is_ok());
        // Another layout, another threshold: another cluster.
        assert_ne!(a.tag(), layout(7001).tag());
        let mut c = a.clone();
        c.t = 2;
        assert_ne!(a.tag(), c.tag());
        let mut d = a.clone();
        d.nodes.insert(5, "10.0.0.9:7005".into());
        assert_ne!(a.tag(), d.tag());
    }

    fn member(index: u16, id: u8) -> Member {
        Member {
            index,
            spki_sha256: [id; 32],
            chip_id: [id; 64],
            tcb: "tcb".into(),
        }
    }

    fn roster() -> Roster {
        Roster::new((1..=5).map(|i| member(i, i as u8)).collect()).unwrap()
    }

    #[test]
    fn a_repair_order_moves_the_roster_only_to_its_successor() {
        let mut s = State::new();
        let links = BTreeMap::new();
        s.adopt_roster(&links, roster(), false).unwrap();
        let v0 = s.epoch.roster().cloned().unwrap();
        let next = v0.replaced(member(1, 9)).unwrap();
        // A second order computed against the same v0 (racing the first) is refused once
        // the first took effect: it is not v1's successor.
        let rival = v0.replaced(member(1, 8)).unwrap();
        s.adopt_roster(&links, next.clone(), true).unwrap();
        assert_eq!(s.epoch.roster().unwrap().version, v0.version + 1);
        let err = s.adopt_roster(&links, rival, true).unwrap_err();
        assert!(err.to_string().contains("does not follow"), "{err}");
        assert_eq!(
            s.epoch.roster(),
            Some(&next),
            "the first order's roster stays"
        );
        // Skipping a version is refused too.
        let skip = next
            .replaced(member(2, 7))
            .unwrap()
            .replaced(member(3, 6))
            .unwrap();
        assert!(s.adopt_roster(&links, skip, true).is_err());
    }

    #[test]
    fn a_repair_order_expires() {
        let mut s = State::new();
        let order = crate::api::admin::RepairOrder {
            epoch: "e".into(),
            index: 1,
            replacement: hex::encode([9u8; 32]),
            roster_version: 0,
        };
        s.orders
            .insert(1, (order.clone(), std::time::Instant::now()));
        assert_eq!(s.order(1).map(|o| o.index), Some(1));
        let Some(old) = std::time::Instant::now().checked_sub(ORDER_TTL) else {
            return; // the machine booted less than ORDER_TTL ago; nothing to show
        };
        s.orders.insert(1, (order, old));
        assert!(
            s.order(1).is_none(),
            "an order older than ORDER_TTL is void"
        );
        assert!(s.orders.is_empty(), "and forgotten");
    }

    #[test]
    fn one_source_cannot_flush_the_others_refusals() {
        let mut list = VecDeque::new();
        push_refusal(&mut list, None, "real refusal".into());
        let peer: std::net::IpAddr = "127.0.1.1".parse().unwrap();
        push_refusal(&mut list, Some(peer), "peer refusal".into());
        for i in 0..1000 {
            // One network, many addresses.
            let attacker = std::net::IpAddr::from([127, 0, 0, (i % 250) as u8 + 2]);
            push_refusal(&mut list, Some(attacker), format!("noise {i}"));
        }
        let texts: Vec<&str> = list.iter().map(|(_, t)| t.as_str()).collect();
        assert!(texts.contains(&"real refusal") && texts.contains(&"peer refusal"));
        assert_eq!(texts.len(), 2 + REFUSALS_PER_SOURCE);
        assert!(texts.contains(&"noise 999"), "the newest noise is kept");
        // The twin: refusals without a source still rotate after REFUSALS_KEPT.
        for i in 0..100 {
            push_refusal(&mut list, None, format!("r{i}"));
        }
        assert_eq!(
            list.iter().filter(|(s, _)| s.is_none()).count(),
            REFUSALS_KEPT
        );
        assert!(!list.iter().any(|(_, t)| t == "real refusal"));
    }

    #[test]
    fn strangers_from_many_networks_cannot_flush_the_known_refusals() {
        let mut list = VecDeque::new();
        push_refusal(&mut list, None, "operator's refusal".into());
        for i in 0..5000u32 {
            let [_, _, b, c] = i.to_be_bytes();
            let stranger = std::net::IpAddr::from([10, b, c, 1]);
            push_refusal(&mut list, Some(stranger), format!("noise {i}"));
        }
        let texts: Vec<&str> = list.iter().map(|(_, t)| t.as_str()).collect();
        assert!(texts.contains(&"operator's refusal"), "{texts:?}");
        assert_eq!(texts.len(), 1 + STRANGERS_KEPT);
        assert!(texts.contains(&"noise 4999"), "the newest noise is kept");
        // The twin: the known refusals rotate among themselves.
        for i in 0..REFUSALS_KEPT {
            push_refusal(&mut list, None, format!("r{i}"));
        }
        assert!(!list.iter().any(|(_, t)| t == "operator's refusal"));
        assert_eq!(list.len(), REFUSALS_KEPT + STRANGERS_KEPT);
    }
}
