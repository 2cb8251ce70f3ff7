//! The peer port: mutual TLS, then mutual attestation of the TLS keys of this
//! very connection, then framed peer messages.
//!
//! Admission protocol on every new connection (both sides run it):
//! 1. each side sends `Hello { index, nonce }` with 32 fresh random bytes;
//! 2. each side attests with REPORT_DATA = identity_binding(own TLS SPKI, peer's nonce)
//!    and sends `Attest { evidence }`;
//! 3. each side verifies the peer's evidence: AMD (or, in development, dev-root)
//!    chain, report signature, policy, TCB floor, MEASUREMENT equal to its own,
//!    REPORT_DATA equal to identity_binding(SPKI the peer presented in TLS, own nonce).
//!
//! A replayed report fails step 3 (the nonce is fresh); a report for another key
//! fails step 3 (the SPKI is taken from the TLS session, not from the message).
//!
//! Which index a peer may claim ([`check_claim`]), before this node attests (the TLS
//! key is known from the handshake) and again, atomically with the link's insertion:
//! - while a roster is held (from the DKG's start on), only the roster's identity for
//!   that index, or the replacement a repair order of this node's operator names, once
//!   the roster's holder has been silent for [`SILENCE`] (the roster then moves to the
//!   next version);
//! - before, the first identity admitted for an index keeps it while its link lives;
//!   a second live claimant is refused, naming both, and counted in `/metrics`.
//!
//! A live link is never replaced by another identity; the same identity reconnecting
//! (its side saw the old connection die) supersedes its old link, which is closed.
//! Every refusal is logged with its reason and kept for `/status`.

use super::{state::Node, state::PeerLink, state::State};
use crate::api::peer::{
    read_frame, read_frame_max, write_frame, write_frames, FrameError, PeerMessage,
    MAX_FRAME_BEFORE_ADMISSION,
};
use crate::attestation::roster::Member;
use crate::attestation::{
    binding::identity_binding, verify_report, AttestationError, Attester, Expected, RootSet,
    VerifiedReport,
};
use crate::net::identity::spki_of_cert;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an incoming peer connection waits for this node's own configuration.
const CONFIG_WAIT: Duration = Duration::from_secs(5);
/// Peer-port connections at once (four peers need one or two each), and from one source.
/// Unidentified connections count against the general permits; a roster identity's
/// connections take a slot of their own (at most two per index: a reconnect may overlap
/// the old link). Sources are counted per network (IPv4 /24, IPv6 /56).
const MAX_PEER_CONNECTIONS: usize = 64;
/// Most queued frames one write of a link carries.
const WRITE_BATCH: usize = 32;
const MAX_PEER_PER_SOURCE: usize = 16;
const MAX_PEER_PER_ROSTER_INDEX: usize = 2;
/// Connections at once from the address of a configured peer, outside the strangers'
/// caps: strangers that share its network cannot crowd a real peer out (issue 13).
const MAX_PEER_PER_KNOWN_ADDRESS: usize = 8;
/// At most one refusal note per this interval for connections shed from a configured
/// peer's address.
const SHED_NOTE_EVERY: Duration = Duration::from_secs(5);
/// A dialer that has failed this many times in a row notes it as a refusal (and again
/// at every multiple), so `/status` shows a peer this node cannot reach.
const DIAL_FAILURES_NOTED: u32 = 5;
/// How long the accept loop waits for an evicted connection's permit.
const EVICT_WAIT: Duration = Duration::from_millis(200);

/// Attest ourselves and verify the result with the same code peers will use.
pub(super) fn self_check(
    identity: &crate::net::identity::Identity,
    attester: &dyn Attester,
    roots: &RootSet,
    measurement: [u8; 48],
    now: std::time::SystemTime,
) -> Result<VerifiedReport, AttestationError> {
    let nonce = [0x5a; 32];
    let binding = identity_binding(identity.spki_der(), &nonce);
    let ev = attester.attest(binding)?;
    verify_report(
        &ev.report,
        &ev.vcek,
        &ev.chain_refs(),
        roots,
        &Expected::frostamp(measurement, binding),
        now,
    )
}

/// What admitting a claim does to the roster.
#[derive(Debug)]
pub(super) enum Claim {
    /// The claimant may hold the index; nothing changes.
    Admit,
    /// A repair order takes effect: the roster moves to this version.
    Adopt(crate::attestation::Roster),
}

/// Why a claimant may not hold the index it claims (kept for `/status`).
#[derive(Debug, thiserror::Error)]
pub(super) enum ClaimError {
    /// Before a roster: another identity holds a live link for the index.
    #[error("second live claimant of index {index}: {who} is refused, the live link is {live}")]
    SecondClaimant {
        /// The index.
        index: u16,
        /// The claimant.
        who: String,
        /// The live link's member.
        live: Box<Member>,
    },
    /// The roster has no such index.
    #[error("index {index} is not in roster v{version}")]
    NotInRoster {
        /// The index.
        index: u16,
        /// The held roster's version.
        version: u32,
    },
    /// The roster gives the index to another identity and no order names this one.
    #[error("{who} claims index {index}, but roster v{version} gives it to {holder}{}; no repair order of this node's operator names this identity", if *.connected { " (connected)" } else { "" })]
    NotOrdered {
        /// The claimant.
        who: String,
        /// The index.
        index: u16,
        /// The held roster's version.
        version: u32,
        /// The roster's holder of the index.
        holder: Box<Member>,
        /// Whether the holder's link is live.
        connected: bool,
    },
    /// An order names the claimant, but the holder is still connected.
    #[error("{who} is named by a repair order for index {index}, but the roster's holder {holder} is still connected")]
    HolderConnected {
        /// The claimant.
        who: String,
        /// The index.
        index: u16,
        /// The holder's live link's member.
        holder: Box<Member>,
    },
    /// An order names the claimant, but the holder was heard too recently.
    #[error("{who} is named by a repair order for index {index}, but its roster holder {holder} was heard {heard_ms} ms ago (a repair needs {} s of silence)", SILENCE.as_secs())]
    HolderNotSilent {
        /// The claimant.
        who: String,
        /// The index.
        index: u16,
        /// The roster's holder.
        holder: Box<Member>,
        /// How long ago it was last heard.
        heard_ms: u128,
    },
    /// The order's successor roster does not hold.
    #[error("repair order for index {index}: {source}")]
    Successor {
        /// The index.
        index: u16,
        /// Why.
        source: crate::attestation::roster::RosterError,
    },
}

/// May the identity `spki` (full `member` once its report is verified) hold `index`?
/// See the module docs. `Err` says why not, naming both identities where two compete.
pub(super) fn check_claim(
    state: &mut State,
    links: &BTreeMap<u16, PeerLink>,
    index: u16,
    spki: &[u8; 32],
    member: Option<&Member>,
) -> Result<Claim, ClaimError> {
    let who = member.map_or_else(
        || format!("identity {}…", hex::encode(spki.get(..8).unwrap_or(spki))),
        |m| m.to_string(),
    );
    let live = links.get(&index);
    let epoch = state.epoch.key().map(|k| k.epoch.clone());
    let order = state.order(index).cloned();
    let Some(roster) = state.epoch.roster() else {
        return match live {
            Some(l) if &l.spki_sha256 != spki => Err(ClaimError::SecondClaimant {
                index,
                who,
                live: Box::new(l.member.clone()),
            }),
            _ => Ok(Claim::Admit),
        };
    };
    let holder = roster.get(index).ok_or(ClaimError::NotInRoster {
        index,
        version: roster.version,
    })?;
    if &holder.spki_sha256 == spki {
        return Ok(Claim::Admit);
    }
    // An unexpired order for this epoch and this roster version: once it took effect
    // the roster is v + 1 and the order cannot take effect again.
    let order = order.filter(|o| {
        Some(&o.epoch) == epoch.as_ref()
            && o.roster_version == roster.version
            && hex::decode(&o.replacement).ok().as_deref() == Some(spki.as_slice())
    });
    let Some(_) = order else {
        return Err(ClaimError::NotOrdered {
            who,
            index,
            version: roster.version,
            holder: Box::new(holder.clone()),
            connected: live.is_some(),
        });
    };
    if let Some(l) = live {
        return Err(ClaimError::HolderConnected {
            who,
            index,
            holder: Box::new(l.member.clone()),
        });
    }
    let last = state
        .silent_since
        .get(&index)
        .copied()
        .unwrap_or(state.roster_since);
    let silent = last.elapsed();
    if silent < SILENCE {
        return Err(ClaimError::HolderNotSilent {
            who,
            index,
            holder: Box::new(holder.clone()),
            heard_ms: silent.as_millis(),
        });
    }
    match member {
        None => Ok(Claim::Admit),
        Some(m) => roster
            .replaced(Member { index, ..m.clone() })
            .map(Claim::Adopt)
            .map_err(|source| ClaimError::Successor { index, source }),
    }
}

/// Accept peer connections forever.
pub(super) async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
    let config = crate::net::tls::peer_server_config(&node.identity);
    let Some(acceptor) = node.acceptor("peer", config) else {
        return;
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_PEER_CONNECTIONS));
    let sources = super::limits::SourceCaps::by_prefix(MAX_PEER_PER_SOURCE);
    let evictable = Arc::new(super::limits::Evictable::default());
    let roster_slots = super::limits::RosterSlots::new(MAX_PEER_PER_ROSTER_INDEX);
    let known = super::limits::SourceCaps::new(MAX_PEER_PER_KNOWN_ADDRESS);
    // Shedding a configured peer's address is kept as a refusal (at most one per
    // SHED_NOTE_EVERY), so that a cluster that cannot form says why in `/status`.
    let mut shed_noted: Option<tokio::time::Instant> = None;
    loop {
        let Ok((tcp, addr)) = listener.accept().await else {
            continue;
        };
        // A configured peer's address has connections of its own; strangers are capped
        // per network and in all.
        let (slot, permit) = if is_peer_address(&node, addr.ip()) {
            let Some(slot) = known.admit(addr.ip()) else {
                node.metrics.shed("peer_known_address");
                if shed_noted.is_none_or(|t| t.elapsed() >= SHED_NOTE_EVERY) {
                    shed_noted = Some(tokio::time::Instant::now());
                    node.refuse_from(
                        Some(addr.ip()),
                        format!("peer connection from {addr} shed: {MAX_PEER_PER_KNOWN_ADDRESS} connections from this peer address are already being admitted or linked"),
                    );
                }
                continue;
            };
            (slot, None)
        } else {
            let Some(slot) = sources.admit(addr.ip()) else {
                node.metrics.shed("peer_per_source");
                continue;
            };
            let permit = match permits.clone().try_acquire_owned() {
                Ok(p) => p,
                // Full: the oldest connection not yet identified makes room.
                Err(_) if evictable.evict_oldest() => {
                    node.metrics.shed("peer_evicted");
                    match tokio::time::timeout(EVICT_WAIT, permits.clone().acquire_owned()).await {
                        Ok(Ok(p)) => p,
                        _ => {
                            node.metrics.shed("peer_total");
                            continue;
                        }
                    }
                }
                Err(_) => {
                    node.metrics.shed("peer_total");
                    continue;
                }
            };
            (slot, Some(permit))
        };
        // Peer frames are small and latency-bound (two round trips per token).
        let _ = tcp.set_nodelay(true);
        let node = node.clone();
        let acceptor = acceptor.clone();
        // Only strangers' connections hold general permits, and only those are evicted.
        let entry = permit
            .as_ref()
            .map(|_| evictable.register(super::limits::prefix_of(addr.ip()), None));
        let roster_slots = roster_slots.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let tls = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        node.refuse_from(
                            Some(addr.ip()),
                            format!("peer connection from {addr}: TLS failed: {e}"),
                        );
                        return;
                    }
                    Err(_) => {
                        node.refuse_from(
                            Some(addr.ip()),
                            format!("peer connection from {addr}: TLS handshake timed out"),
                        );
                        return;
                    }
                },
                () = evicted(entry.as_ref()) => {
                    node.refuse_from(Some(addr.ip()), format!("peer connection from {addr}: evicted during the TLS handshake (peer port full)"));
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            let server_name = tls.get_ref().1.server_name().map(str::to_owned);
            // A roster identity leaves the general permits for a slot of its own.
            let roster_index = cert
                .as_deref()
                .and_then(|c| spki_of_cert(c).ok())
                .map(|spki| -> [u8; 32] { <sha2::Sha256 as sha2::Digest>::digest(&spki).into() })
                .and_then(|h| node.state().epoch.roster().and_then(|r| r.index_of(&h)));
            let reserved = roster_index.and_then(|i| roster_slots.take(i));
            let pending = match reserved {
                Some(_) => {
                    drop((entry, permit, slot));
                    None
                }
                None => Some(Pending {
                    entry,
                    _permit: permit,
                    _source: slot,
                }),
            };
            let _reserved = reserved;
            run_connection(
                node,
                tls,
                cert,
                Side::Accepted { server_name },
                addr.to_string(),
                Some(addr.ip()),
                pending,
            )
            .await;
        });
    }
}

/// What an incoming connection not yet identified holds: a general permit, its
/// source's slot and its place among the evictable. All are given up once it is
/// admitted (or identified as a roster member, which takes a roster slot instead).
pub(super) struct Pending {
    entry: Option<super::limits::EvictEntry>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    _source: super::limits::Slot,
}

/// Resolves when `entry` is evicted; never without one.
async fn evicted(entry: Option<&super::limits::EvictEntry>) {
    match entry {
        Some(e) => e.evicted.notified().await,
        None => std::future::pending().await,
    }
}

/// Whether `ip` is the address of a peer in this node's configuration (an IP literal in
/// its `host:port`).
fn is_peer_address(node: &Node, ip: std::net::IpAddr) -> bool {
    node.state().epoch.cluster().is_some_and(|c| {
        c.nodes.values().any(|a| {
            a.parse::<std::net::SocketAddr>()
                .is_ok_and(|sa| sa.ip() == ip)
        })
    })
}

/// How often a node tells each peer it is alive.
pub(super) const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a peer may stay silent before its link is closed.
pub(super) const SILENCE: Duration = Duration::from_secs(10);

/// Keep a connection to peer `index` at `addr` (dialed by the lower index).
pub(super) async fn dial_loop(node: Arc<Node>, index: u16, addr: String) {
    let connector = match crate::net::tls::peer_client_config(&node.identity) {
        Ok(c) => tokio_rustls::TlsConnector::from(Arc::new(c)),
        Err(e) => {
            tracing::error!(node = %node.name, "peer TLS client setup failed: {e}");
            return;
        }
    };
    // The cluster this dialer works for, named to the peer (see `ClusterConfig::tag`).
    let Some(server_name) = node.state().epoch.cluster().map(|c| c.peer_server_name()) else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    let mut failures: u32 = 0;
    loop {
        if node.peer_links().contains_key(&index) {
            failures = 0;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(server_name.clone())
                .map_err(|e| e.to_string())?;
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
            Ok(Ok(tls)) => {
                backoff = Duration::from_millis(100);
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                run_connection(
                    node.clone(),
                    tls,
                    cert,
                    Side::Dialed { index },
                    addr.clone(),
                    None,
                    None,
                )
                .await;
            }
            Ok(Err(e)) => {
                failures += 1;
                dial_failed(&node, index, &addr, failures, &e);
            }
            Err(_) => {
                failures += 1;
                dial_failed(&node, index, &addr, failures, "timed out");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A dial that did not reach a TLS session: logged, and every
/// [`DIAL_FAILURES_NOTED`] failures in a row kept as a refusal for `/status`.
fn dial_failed(node: &Node, index: u16, addr: &str, failures: u32, why: &str) {
    if failures.is_multiple_of(DIAL_FAILURES_NOTED) {
        node.refuse(format!(
            "cannot reach node {index} at {addr}: {why} ({failures} attempts in a row)"
        ));
    } else {
        tracing::debug!(node = %node.name, "dial {index} at {addr}: {why}");
    }
}

/// Which end of a peer connection this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    /// This node dialed peer `index`.
    Dialed { index: u16 },
    /// This node accepted it; the TLS server name the dialer sent, if any.
    Accepted { server_name: Option<String> },
}

/// Admission handshake, then message pumping until the connection ends.
async fn run_connection<S>(
    node: Arc<Node>,
    stream: S,
    peer_cert: Option<Vec<u8>>,
    side: Side,
    addr: String,
    // The address of an incoming (unauthenticated) connection: its refusals are capped
    // per source so they cannot flush the others'.
    source: Option<std::net::IpAddr>,
    // An incoming connection's general permit and eviction entry, until admitted.
    pending: Option<Pending>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let evicted = evicted(pending.as_ref().and_then(|p| p.entry.as_ref()));
    let admitted = tokio::select! {
        r = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            admit(&node, &mut rd, &mut wr, peer_cert, &side),
        ) => r,
        () = evicted => {
            node.refuse_from(source, format!("refused peer at {addr}: evicted during admission (peer port full)"));
            return;
        }
    };
    // Admitted or not, this connection no longer holds a general permit: an admitted
    // link is one per index, and a refused one ends here.
    drop(pending);
    let (member, peer_group) = match admitted {
        Ok(Ok(v)) => v,
        Ok(Err(reason)) => {
            node.refuse_from(source, format!("refused peer at {addr}: {reason}"));
            return;
        }
        Err(_) => {
            node.refuse_from(
                source,
                format!("refused peer at {addr}: admission timed out"),
            );
            return;
        }
    };
    let index = member.index;
    let spki = member.spki_sha256;
    let generation = node.next_generation.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PeerMessage>(256);
    let origin = super::router::Origin {
        index,
        generation,
        reply: tx.clone(),
    };
    let closer = Arc::new(tokio::sync::Notify::new());
    let last_heard = Arc::new(std::sync::atomic::AtomicU64::new(node.uptime_ms()));
    // The claim is checked again and the link inserted under both locks (state, then
    // links), so two claimants of one index cannot both pass.
    let adopted = {
        let mut state = node.state();
        let mut links = node.peer_links();
        let claim = check_claim(&mut state, &links, index, &spki, Some(&member));
        match claim {
            Err(reason) => {
                drop(links);
                drop(state);
                node.metrics.claim_conflict();
                node.refuse_from(source, format!("refused peer at {addr}: {reason}"));
                return;
            }
            Ok(c) => {
                let old = links.insert(
                    index,
                    PeerLink {
                        spki_sha256: spki,
                        member: member.clone(),
                        closer: closer.clone(),
                        group_key: peer_group,
                        tx,
                        generation,
                    },
                );
                // Only the same identity gets here with a live link: its side saw the
                // old connection die; close ours.
                if let Some(old) = old {
                    old.closer.notify_one();
                }
                // A repair order taking effect moves the roster from v to v + 1 under
                // the same locks as the check, so two orders cannot race.
                match c {
                    Claim::Adopt(r) => {
                        let version = r.version;
                        state.adopt_roster(&links, r, true).map(|()| Some(version))
                    }
                    Claim::Admit => Ok(None),
                }
            }
        }
    };
    match adopted {
        Ok(Some(version)) => {
            tracing::warn!(node = %node.name, peer = index, version, "repair order took effect: index {index} now held by {member}");
        }
        Ok(None) => {}
        Err(reason) => {
            // Cannot happen while the check and the adoption share the locks; if it
            // did, the link just inserted must not stay.
            if let Some(l) = node.peer_links().get(&index) {
                if l.generation == generation {
                    l.closer.notify_one();
                }
            }
            node.refuse(format!("peer {index}: {reason}"));
        }
    }
    super::router::link_up(&node, index);
    node.peers_changed.notify_waiters();
    tracing::info!(node = %node.name, peer = index, %addr, "peer admitted (attested, same measurement)");
    let writer = tokio::spawn(async move {
        // Frames queued while the previous write was under way go out together: one
        // TLS record and one flush for the lot.
        let mut batch = Vec::new();
        while let Some(msg) = rx.recv().await {
            batch.push(msg);
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if write_frames(&mut wr, &batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    });
    let pinger = {
        let tx = origin.reply.clone();
        let node_for_ping = node.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PING_INTERVAL);
            loop {
                tick.tick().await;
                let group_key = node_for_ping.group_key_hex();
                if tx.send(PeerMessage::Ping { group_key }).await.is_err() {
                    break;
                }
            }
        })
    };
    loop {
        // A peer that says nothing, not even its pings, for SILENCE is hung (a
        // frozen VM, a silent partition): close the link so it stops counting
        // as a share holder and is no longer asked to sign.
        let frame = tokio::select! {
            r = tokio::time::timeout(SILENCE, read_frame(&mut rd)) => r,
            () = closer.notified() => {
                tracing::info!(node = %node.name, peer = index, "link superseded or no longer in the roster; closing it");
                break;
            }
        };
        let Ok(frame) = frame else {
            node.refuse(format!(
                "peer {index} silent for {SILENCE:?}; closing the connection"
            ));
            break;
        };
        if frame.is_ok() {
            last_heard.store(node.uptime_ms(), Ordering::Relaxed);
        }
        match frame {
            Ok(msg) => {
                if super::router::route(&node, &origin, msg) == super::router::Routed::Close {
                    break;
                }
            }
            Err(FrameError::Io(_)) => break,
            Err(e) => {
                node.refuse(format!("peer {index}: {e}; closing the connection"));
                break;
            }
        }
    }
    writer.abort();
    pinger.abort();
    super::link::forget_calls_on(&node, index, generation);
    let mut state = node.state();
    let mut links = node.peer_links();
    if links
        .get(&index)
        .is_some_and(|l| l.generation == generation)
    {
        links.remove(&index);
        drop(links);
        // When this index was last heard: a repair order for it waits for SILENCE.
        let quiet_ms = node
            .uptime_ms()
            .saturating_sub(last_heard.load(Ordering::Relaxed));
        let last = std::time::Instant::now()
            .checked_sub(Duration::from_millis(quiet_ms))
            .unwrap_or_else(std::time::Instant::now);
        state.silent_since.insert(index, last);
        drop(state);
        super::router::link_down(&node, index);
    } else {
        drop(links);
        drop(state);
    }
    node.peers_changed.notify_waiters();
    tracing::info!(node = %node.name, peer = index, "peer connection closed");
}

/// Why a connection was not admitted (kept for `/status`, with the peer's address).
#[derive(Debug, thiserror::Error)]
enum AdmitError {
    /// This node has no cluster configuration yet.
    #[error("this node is not configured yet")]
    NotConfigured,
    /// The dialer used another cluster's peer server name.
    #[error("dialed for another cluster (server name {}, this cluster's is {ours}): a node configured with another layout, such as an earlier cluster's at a reused address", .theirs.as_deref().unwrap_or("none"))]
    OtherCluster {
        /// The name the dialer sent.
        theirs: Option<String>,
        /// This cluster's.
        ours: String,
    },
    /// The TLS session carried no certificate.
    #[error("no TLS certificate")]
    NoCertificate,
    /// The TLS certificate's key does not parse.
    #[error("TLS certificate: {0}")]
    Certificate(der::Error),
    /// Reading or writing a handshake frame failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Another message than the handshake's next.
    #[error("expected {want}, got {got}")]
    Unexpected {
        /// The handshake's next message.
        want: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The index is this node's own or not in the cluster.
    #[error("claims index {0}, which is not a peer in this cluster")]
    NotAPeer(u16),
    /// The dialed node claims another index.
    #[error("dialed node {dialed} but it claims index {claims}")]
    WrongIndex {
        /// The index dialed.
        dialed: u16,
        /// The index claimed.
        claims: u16,
    },
    /// The claim is refused.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The hello's nonce is malformed.
    #[error("hello nonce is not 32 hex bytes")]
    BadNonce,
    /// This node's own attestation failed.
    #[error("own attestation failed: {0}")]
    OwnAttestation(String),
    /// The peer's evidence does not verify.
    #[error("node {index}: attestation: {source}")]
    Attestation {
        /// The index it claims.
        index: u16,
        /// Why.
        source: AttestationError,
    },
}

async fn admit<R, W>(
    node: &Node,
    rd: &mut R,
    wr: &mut W,
    peer_cert: Option<Vec<u8>>,
    side: &Side,
) -> Result<(Member, Option<String>), AdmitError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // A peer configured a moment before this node dials it first: wait (bounded) for
    // this node's own configuration instead of refusing and making it redial.
    let deadline = tokio::time::Instant::now() + CONFIG_WAIT;
    let cluster = loop {
        let configured = node.configured.notified();
        if let Some(c) = node.state().epoch.cluster().cloned() {
            break c;
        }
        if tokio::time::timeout_at(deadline, configured).await.is_err() {
            return Err(AdmitError::NotConfigured);
        }
    };
    // A dialer of another cluster (another operator, or an earlier cluster whose peer
    // addresses this one reuses) is refused before anything is spent on it.
    let expected = match side {
        Side::Dialed { index } => Some(*index),
        Side::Accepted { server_name } => {
            let ours = cluster.peer_server_name();
            if server_name.as_deref() != Some(ours.as_str()) {
                return Err(AdmitError::OtherCluster {
                    theirs: server_name.clone(),
                    ours,
                });
            }
            None
        }
    };
    let peer_spki = spki_of_cert(&peer_cert.ok_or(AdmitError::NoCertificate)?)
        .map_err(AdmitError::Certificate)?;
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut node.rng(), &mut nonce);
    write_frame(
        wr,
        &PeerMessage::Hello {
            index: cluster.index,
            nonce: hex::encode(nonce),
            group_key: node.group_key_hex(),
        },
    )
    .await?;
    let (index, their_nonce, their_group) =
        match read_frame_max(rd, MAX_FRAME_BEFORE_ADMISSION).await? {
            PeerMessage::Hello {
                index,
                nonce,
                group_key,
            } => (index, nonce, group_key),
            other => {
                return Err(AdmitError::Unexpected {
                    want: "hello",
                    got: other.kind(),
                })
            }
        };
    if index == cluster.index || !cluster.nodes.contains_key(&index) {
        return Err(AdmitError::NotAPeer(index));
    }
    if let Some(e) = expected {
        if e != index {
            return Err(AdmitError::WrongIndex {
                dialed: e,
                claims: index,
            });
        }
    }
    // The claim, before this node spends an attestation on it (the TLS key is known).
    let spki_sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&peer_spki).into();
    {
        let mut state = node.state();
        let links = node.peer_links();
        if let Err(reason) = check_claim(&mut state, &links, index, &spki_sha256, None) {
            drop(links);
            drop(state);
            node.metrics.claim_conflict();
            return Err(reason.into());
        }
    }
    let their_nonce: [u8; 32] = hex::decode(&their_nonce)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(AdmitError::BadNonce)?;
    // The report is a blocking call to the platform: off the async threads.
    let binding = identity_binding(node.identity.spki_der(), &their_nonce);
    let attester = node.attester.clone();
    let evidence = tokio::task::spawn_blocking(move || attester.attest(binding))
        .await
        .map_err(|e| AdmitError::OwnAttestation(e.to_string()))?
        .map_err(|e| AdmitError::OwnAttestation(e.to_string()))?;
    write_frame(wr, &PeerMessage::Attest { evidence }).await?;
    let ev = match read_frame_max(rd, MAX_FRAME_BEFORE_ADMISSION).await? {
        PeerMessage::Attest { evidence } => evidence,
        other => {
            return Err(AdmitError::Unexpected {
                want: "attest",
                got: other.kind(),
            })
        }
    };
    let verified = verify_report(
        &ev.report,
        &ev.vcek,
        &ev.chain_refs(),
        &node.roots,
        &Expected::frostamp(node.measurement, identity_binding(&peer_spki, &nonce)),
        node.clock.now(),
    )
    .map_err(|source| AdmitError::Attestation { index, source })?;
    Ok((
        Member {
            index,
            spki_sha256,
            chip_id: verified.chip_id,
            tcb: verified.reported_tcb.to_string(),
        },
        their_group,
    ))
}

/// Start dialing every peer with a higher index than ours.
pub(super) fn start_dialing(node: &Arc<Node>, cluster: &crate::api::admin::ClusterConfig) {
    let mut state = node.state();
    for d in state.dialers.drain(..) {
        d.abort();
    }
    for (&idx, addr) in &cluster.nodes {
        if idx > cluster.index {
            state
                .dialers
                .push(tokio::spawn(dial_loop(node.clone(), idx, addr.clone())));
        }
    }
}
