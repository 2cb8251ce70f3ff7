//! The node: what `frostamp-node` runs (DESIGN §2 steps 1–5).
//!
//! - `state`: what the node holds (`state::Node`): the key epoch, roster, repair
//!   orders, peer links, pending calls. Handlers work on it; it calls no handler.
//! - `peers`: the peer port: mutual TLS, then mutual attestation binding the TLS
//!   key of that very connection; only admitted peers exchange DKG messages.
//! - `dkg`: FROST DKG with echo broadcast of round 1, pairwise round 2, success
//!   confirmation, named culprits.
//! - `certificate`: the CA root and subject fixed with the CSR, and the checked
//!   install of the TSA certificate (first, then renewals only).
//! - `http`: the public HTTPS port: `/status`, `/attestation`, and the
//!   operator-authenticated `/admin/*` lifecycle calls, among them the CA-issued
//!   public TLS certificate (`/admin/tls-csr`, `/admin/tls-certificate`,
//!   [`crate::certs::tls`]).
//! - `serve`, `repair`: threshold signing (coordinator and signer sides) and share
//!   repair; `time`, `pool`, `limits`, `metrics`: time evidence, nonce commitment
//!   pools, per-source limits, `/metrics`.
//!
//! This file only starts a node: it builds the state and spawns the two ports.
//! The node's identity ([`crate::net::identity`]), the operator's credential
//! ([`crate::api::auth`]) and the peer messages ([`crate::api::peer`]) live below.
//!
//! Nothing is read from or written to disk: configuration arrives in admin
//! calls, key material lives in this process's memory only.

mod admin;
mod certificate;
mod dkg;
mod epoch;
mod http;
mod limits;
mod link;
mod metrics;
mod peers;
mod pool;
mod refusal;
mod repair;
mod router;
mod serve;
mod state;
mod time;

use crate::attestation::roster::Member;
use state::{Node, State};
pub use state::{NodeError, NodeOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Run a node until `shutdown` resolves.
pub async fn run(
    opts: NodeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let mut rng = crate::entropy::Rng::new(opts.entropy.clone());
    let identity =
        crate::net::identity::Identity::generate(&opts.name, opts.clock.now(), &mut rng)?;
    let public_tls = Arc::new(crate::net::tls::PublicCert::new(&identity)?);
    let operator = crate::api::auth::OperatorVerifier::new(opts.operator_pubkey.as_deref())?;
    let measurement = opts.attester.measurement();
    // Attesting: prove to ourselves that evidence can be produced and verifies; the
    // verified report gives this node's roster identity (chip, TCB).
    let own = peers::self_check(
        &identity,
        opts.attester.as_ref(),
        &opts.roots,
        measurement,
        opts.clock.now(),
    )?;
    let me = Member {
        index: 0,
        spki_sha256: identity.spki_sha256(),
        chip_id: own.chip_id,
        tcb: own.reported_tcb.to_string(),
    };
    let time = time::TimeService::start(&opts.time, opts.clock.clone(), rng.clone())?;
    let (inbox_tx, inbox_rx) = mpsc::channel(1024);
    let node = Arc::new(Node {
        time,
        name: opts.name.clone(),
        identity,
        public_tls,
        clock: opts.clock,
        entropy: opts.entropy,
        operator,
        attester: opts.attester,
        roots: opts.roots,
        profile: opts.profile,
        measurement,
        me,
        started: std::time::Instant::now(),
        fault: opts.fault,
        state: Mutex::new(State::new()),
        peers: Mutex::new(BTreeMap::new()),
        inbox_tx,
        inbox: tokio::sync::Mutex::new(inbox_rx),
        peers_changed: Notify::new(),
        configured: Notify::new(),
        next_generation: std::sync::atomic::AtomicU64::new(1),
        pending: Mutex::new(std::collections::HashMap::new()),
        next_request: std::sync::atomic::AtomicU64::new(1),
        pools: pool::Pools::default(),
        suspects: pool::Suspects::default(),
        metrics: metrics::Metrics::default(),
    });
    node.state().epoch.started();
    tracing::info!(
        node = %node.name,
        measurement = %hex::encode(node.measurement),
        identity = %hex::encode(node.identity.spki_sha256()),
        public = %opts.public.local_addr()?,
        peer = %opts.peer.local_addr()?,
        insecure_dev_attestation = node.attester.is_insecure_dev(),
        "node up"
    );
    let public = tokio::spawn(http::serve(node.clone(), opts.public));
    let peer = tokio::spawn(peers::accept_loop(node.clone(), opts.peer));
    shutdown.await;
    public.abort();
    peer.abort();
    for d in node.state().dialers.drain(..) {
        d.abort();
    }
    tracing::info!(node = %node.name, "node stopped; all key material dropped");
    Ok(())
}
