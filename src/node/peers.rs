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
//! Every refusal is logged with its reason and kept for `/status`.

use super::messages::{read_frame, write_frame, FrameError, PeerMessage};
use super::{Node, PeerLink};
use crate::attestation::{binding::identity_binding, verify_report, Expected};
use crate::node::identity::spki_of_cert;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Attest ourselves and verify the result with the same code peers will use.
pub(super) fn self_check(node: &Node) -> Result<(), String> {
    let nonce = [0x5a; 32];
    let binding = identity_binding(node.identity.spki_der(), &nonce);
    let ev = node.attester.attest(binding).map_err(|e| e.to_string())?;
    verify_report(
        &ev.report,
        &ev.vcek,
        &ev.chain_refs(),
        &node.roots,
        &Expected::frostamp(node.measurement, binding),
        node.clock.now(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Accept peer connections forever.
pub(super) async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
    let acceptor = match crate::net::tls::peer_server_config(&node.identity) {
        Ok(c) => tokio_rustls::TlsAcceptor::from(Arc::new(c)),
        Err(e) => {
            tracing::error!(node = %node.name, "peer TLS setup failed: {e}");
            return;
        }
    };
    loop {
        let Ok((tcp, addr)) = listener.accept().await else {
            continue;
        };
        // Peer frames are small and latency-bound (two round trips per token).
        let _ = tcp.set_nodelay(true);
        let node = node.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    node.refuse(format!("peer connection from {addr}: TLS failed: {e}"));
                    return;
                }
                Err(_) => {
                    node.refuse(format!(
                        "peer connection from {addr}: TLS handshake timed out"
                    ));
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            run_connection(node, tls, cert, None, addr.to_string()).await;
        });
    }
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
    let mut backoff = Duration::from_millis(100);
    loop {
        if node.peer_links().contains_key(&index) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from("frostamp-peer")
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
                run_connection(node.clone(), tls, cert, Some(index), addr.clone()).await;
            }
            Ok(Err(e)) => tracing::debug!(node = %node.name, "dial {index} at {addr}: {e}"),
            Err(_) => tracing::debug!(node = %node.name, "dial {index} at {addr}: timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Admission handshake, then message pumping until the connection ends.
async fn run_connection<S>(
    node: Arc<Node>,
    stream: S,
    peer_cert: Option<Vec<u8>>,
    expected: Option<u16>,
    addr: String,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let admitted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        admit(&node, &mut rd, &mut wr, peer_cert, expected),
    )
    .await;
    let (index, spki, peer_group) = match admitted {
        Ok(Ok(v)) => v,
        Ok(Err(reason)) => {
            node.refuse(format!("refused peer at {addr}: {reason}"));
            return;
        }
        Err(_) => {
            node.refuse(format!("refused peer at {addr}: admission timed out"));
            return;
        }
    };
    let generation = node.next_generation.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PeerMessage>(256);
    let reply = tx.clone();
    node.peer_links().insert(
        index,
        PeerLink {
            spki_sha256: spki,
            group_key: peer_group,
            tx,
            generation,
        },
    );
    // Whatever this node committed to an earlier link of that peer is void.
    forget_commitments(&node, index);
    super::serve::prefill(&node);
    node.peers_changed.notify_waiters();
    tracing::info!(node = %node.name, peer = index, %addr, "peer admitted (attested, same measurement)");
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write_frame(&mut wr, &msg).await.is_err() {
                break;
            }
        }
    });
    let pinger = {
        let tx = reply.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PING_INTERVAL);
            loop {
                tick.tick().await;
                if tx.send(PeerMessage::Ping {}).await.is_err() {
                    break;
                }
            }
        })
    };
    loop {
        // A peer that says nothing, not even its pings, for SILENCE is hung (a
        // frozen VM, a silent partition): close the link so it stops counting
        // as a share holder and is no longer asked to sign.
        let Ok(frame) = tokio::time::timeout(SILENCE, read_frame(&mut rd)).await else {
            node.refuse(format!(
                "peer {index} silent for {SILENCE:?}; closing the connection"
            ));
            break;
        };
        match frame {
            Ok(msg) => match msg {
                PeerMessage::Ping {} => {}
                PeerMessage::SignCommit { .. }
                | PeerMessage::SignRound2 { .. }
                | PeerMessage::SignCsr { .. } => {
                    let node = node.clone();
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        if let Some(answer) = super::serve::answer_signing(&node, index, msg) {
                            let _ = reply.send(answer).await;
                        }
                    });
                }
                PeerMessage::SignCommitted { req, .. }
                | PeerMessage::SignShare { req, .. }
                | PeerMessage::SignRefused { req, .. } => {
                    super::serve::deliver(&node, index, req, msg);
                }
                PeerMessage::HaveShare { group_key } => {
                    if let Some(l) = node.peer_links().get_mut(&index) {
                        l.group_key = Some(group_key);
                    }
                }
                PeerMessage::RepairStart {
                    epoch,
                    helpers,
                    participant,
                } => {
                    let node = node.clone();
                    tokio::spawn(async move {
                        super::repair::help(&node, index, epoch, helpers, participant).await;
                    });
                }
                other => {
                    if node.inbox_tx.send((index, other)).await.is_err() {
                        break;
                    }
                }
            },
            Err(FrameError::Io(_)) => break,
            Err(e) => {
                node.refuse(format!("peer {index}: {e}; closing the connection"));
                break;
            }
        }
    }
    writer.abort();
    pinger.abort();
    let mut links = node.peer_links();
    if links
        .get(&index)
        .is_some_and(|l| l.generation == generation)
    {
        links.remove(&index);
        drop(links);
        forget_commitments(&node, index);
    } else {
        drop(links);
    }
    node.peers_changed.notify_waiters();
    tracing::info!(node = %node.name, peer = index, "peer connection closed");
}

/// Drop the nonces this node issued to peer `index` and the commitments it
/// holds from that peer: a new link starts with neither.
fn forget_commitments(node: &Node, index: u16) {
    let signer = node.state().key.as_ref().map(|k| k.signer.clone());
    if let Some(s) = signer {
        s.forget(crate::threshold::signer::Owner::Peer(index));
    }
    node.pools.drop_peer(index);
}

async fn admit<R, W>(
    node: &Node,
    rd: &mut R,
    wr: &mut W,
    peer_cert: Option<Vec<u8>>,
    expected: Option<u16>,
) -> Result<(u16, [u8; 32], Option<String>), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let cluster = node
        .state()
        .cluster
        .clone()
        .ok_or("this node is not configured yet")?;
    let peer_spki = spki_of_cert(&peer_cert.ok_or("no TLS certificate")?)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    write_frame(
        wr,
        &PeerMessage::Hello {
            index: cluster.index,
            nonce: hex::encode(nonce),
            group_key: node.group_key_hex(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let (index, their_nonce, their_group) = match read_frame(rd).await.map_err(|e| e.to_string())? {
        PeerMessage::Hello {
            index,
            nonce,
            group_key,
        } => (index, nonce, group_key),
        other => return Err(format!("expected hello, got {}", kind(&other))),
    };
    if index == cluster.index || !cluster.nodes.contains_key(&index) {
        return Err(format!(
            "claims index {index}, which is not a peer in this cluster"
        ));
    }
    if let Some(e) = expected {
        if e != index {
            return Err(format!("dialed node {e} but it claims index {index}"));
        }
    }
    let their_nonce: [u8; 32] = hex::decode(&their_nonce)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("hello nonce is not 32 hex bytes")?;
    let evidence = node
        .attester
        .attest(identity_binding(node.identity.spki_der(), &their_nonce))
        .map_err(|e| format!("own attestation failed: {e}"))?;
    write_frame(wr, &PeerMessage::Attest { evidence })
        .await
        .map_err(|e| e.to_string())?;
    let ev = match read_frame(rd).await.map_err(|e| e.to_string())? {
        PeerMessage::Attest { evidence } => evidence,
        other => return Err(format!("expected attest, got {}", kind(&other))),
    };
    verify_report(
        &ev.report,
        &ev.vcek,
        &ev.chain_refs(),
        &node.roots,
        &Expected::frostamp(node.measurement, identity_binding(&peer_spki, &nonce)),
        node.clock.now(),
    )
    .map_err(|e| format!("node {index}: attestation: {e}"))?;
    let spki_sha256 = <sha2::Sha256 as sha2::Digest>::digest(&peer_spki).into();
    Ok((index, spki_sha256, their_group))
}

pub(super) fn kind(m: &PeerMessage) -> &'static str {
    match m {
        PeerMessage::Hello { .. } => "hello",
        PeerMessage::Attest { .. } => "attest",
        PeerMessage::DkgRound1 { .. } => "dkg_round1",
        PeerMessage::DkgEcho { .. } => "dkg_echo",
        PeerMessage::DkgRound2 { .. } => "dkg_round2",
        PeerMessage::DkgConfirm { .. } => "dkg_confirm",
        PeerMessage::DkgAbort { .. } => "dkg_abort",
        PeerMessage::Ping {} => "ping",
        PeerMessage::SignCommit { .. } => "sign_commit",
        PeerMessage::SignCommitted { .. } => "sign_committed",
        PeerMessage::SignRound2 { .. } => "sign_round2",
        PeerMessage::SignCsr { .. } => "sign_csr",
        PeerMessage::RepairStart { .. } => "repair_start",
        PeerMessage::RepairDelta { .. } => "repair_delta",
        PeerMessage::RepairSigma { .. } => "repair_sigma",
        PeerMessage::RepairRefused { .. } => "repair_refused",
        PeerMessage::HaveShare { .. } => "have_share",
        PeerMessage::SignShare { .. } => "sign_share",
        PeerMessage::SignRefused { .. } => "sign_refused",
    }
}

/// Start dialing every peer with a higher index than ours.
pub(super) fn start_dialing(node: &Arc<Node>, cluster: &super::ClusterConfig) {
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
