//! The lifecycle calls (`POST /admin/*`, operator-authenticated by [`super::http`]
//! before they get here) and what `/status`, `/metrics` and `/certchain` report. Each
//! call takes the node and the request body and answers a JSON value or an
//! [`AdminError`]; the mapping of other modules' errors onto the refusal kinds is
//! here, variant by variant, and `http::answer` alone turns a kind into an HTTP status.

use super::epoch::Configured;
use super::refusal::AdminError;
use super::{dkg, peers, state::EpochKey, state::Node};
use crate::api::admin::{
    CertificateUpload, ClusterConfig, CsrRequest, DkgRequest, DkgResult, Phase, RepairOrder,
    RepairRequest, Status, TlsCsrRequest,
};
use crate::attestation::binding::evidence_binding;
use serde::Serialize;
use std::sync::Arc;

/// A lifecycle call's outcome.
pub(super) type Answer = Result<serde_json::Value, AdminError>;

/// A handler's JSON answer (`Serialize` values that cannot fail to encode).
fn reply(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Run the lifecycle call at `path`; `None` if there is no such call.
pub(super) async fn call(node: &Arc<Node>, path: &str, body: &[u8]) -> Option<Answer> {
    Some(match path {
        "/admin/configure" => configure(node, body),
        "/admin/dkg" => run_dkg(node, body).await,
        "/admin/certificate" => {
            let r = super::certificate::upload(node, body);
            super::serve::prefill(node);
            r
        }
        "/admin/csr" => csr(node, body).await,
        "/admin/ca-root" => super::certificate::ca_root(node, body),
        "/admin/repair" => repair(node, body).await,
        "/admin/repair-order" => repair_order(node, body),
        "/admin/tls-csr" => tls_csr(node, body),
        "/admin/tls-certificate" => install_tls_certificate(node, body),
        _ => return None,
    })
}

/// The installed chain as PEM, TSA certificate first.
pub(super) fn chain_pem(node: &Node) -> Option<String> {
    let s = node.state();
    let chain = s.epoch.key().and_then(|k| k.chain.as_ref())?;
    Some(
        chain
            .iter()
            .filter_map(|c| {
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, c).ok()
            })
            .collect(),
    )
}

/// What `/status` shows.
pub(super) fn status(node: &Node) -> Status {
    let peers = node
        .peer_links()
        .iter()
        .map(|(i, l)| (*i, hex::encode(l.spki_sha256)))
        .collect();
    let share_holders = node.share_holders();
    let time = node.time.status();
    let s = node.state();
    let mut health_reason = None;
    let health = match (s.epoch.cluster(), s.epoch.phase()) {
        (Some(c), Phase::Serving) => {
            let h = crate::api::admin::Health::of(share_holders, c.n(), c.t);
            if time.rounds > 0 && !time.quorum_ok && h != crate::api::admin::Health::Halted {
                let failing: Vec<String> = time
                    .servers
                    .iter()
                    .filter(|v| !v.ok)
                    .map(|v| {
                        format!(
                            "{}: {}",
                            v.name,
                            v.last_error.as_deref().unwrap_or("not used")
                        )
                    })
                    .collect();
                health_reason = Some(format!(
                    "fewer than {} time servers vouch; requests get timeNotAvailable ({})",
                    time.quorum,
                    failing.join("; ")
                ));
                Some(crate::api::admin::Health::NoTime)
            } else {
                Some(h)
            }
        }
        _ => None,
    };
    Status {
        share_holders,
        health,
        health_reason,
        time: Some(time),
        name: node.name.clone(),
        phase: s.epoch.phase(),
        index: s.epoch.cluster().map(|c| c.index),
        n: s.epoch.cluster().map(|c| c.n()),
        t: s.epoch.cluster().map(|c| c.t),
        measurement: hex::encode(node.measurement),
        identity: hex::encode(node.identity.spki_sha256()),
        insecure_dev_attestation: node.attester.is_insecure_dev(),
        peers,
        epoch: s.epoch.key().map(|k| k.epoch.clone()),
        roster: s.epoch.roster().cloned(),
        roster_hash: s.epoch.roster().map(|r| hex::encode(r.hash())),
        group_key: s.epoch.key().and_then(|k| k.group_bytes()).map(hex::encode),
        ciphersuite: s.epoch.key().map(|k| k.suite()),
        transcript: s.epoch.key().map(|k| hex::encode(k.transcript)),
        certificate: s
            .epoch
            .key()
            .and_then(|k| k.chain.as_ref())
            .and_then(|c| c.first())
            .map(|c| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(c))),
        tls_certificate: node
            .public_tls
            .leaf()
            .filter(|leaf| leaf.as_slice() != node.identity.cert_der())
            .map(|c| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(c))),
        last_error: s.last_error.clone(),
        refusals: s.refusals.iter().map(|(_, r)| r.clone()).collect(),
        commitments_ready: node.pools.sizes(),
    }
}

fn configure(node: &Arc<Node>, body: &[u8]) -> Answer {
    let cfg: ClusterConfig = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return Err(AdminError::BadRequest(format!("configuration: {e}"))),
    };
    if let Err(e) = cfg.validate() {
        return Err(AdminError::BadRequest(e.to_string()));
    }
    // The same configuration again (an operator retrying): nothing changes, no link
    // is dropped.
    if node.state().epoch.configure(cfg.clone())? == Configured::Unchanged {
        return Ok(reply(
            serde_json::json!({ "ok": true, "index": cfg.index, "unchanged": true }),
        ));
    }
    // Links made under another layout close (their loops end and deregister).
    for l in node.peer_links().values() {
        l.closer.notify_one();
    }
    node.configured.notify_waiters();
    peers::start_dialing(node, &cfg);
    tracing::info!(node = %node.name, index = cfg.index, n = cfg.n(), t = cfg.t, "configured");
    Ok(reply(serde_json::json!({ "ok": true, "index": cfg.index })))
}

async fn run_dkg(node: &Arc<Node>, body: &[u8]) -> Answer {
    let req: DkgRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Err(AdminError::BadRequest(format!("dkg request: {e}"))),
    };
    if req.epoch.is_empty()
        || req.epoch.len() > 64
        || !req
            .epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AdminError::BadRequest(
            "epoch must be 1..64 of [A-Za-z0-9_-]".into(),
        ));
    }
    {
        use crate::attestation::roster::{N, T};
        if req.n != N || req.t != T {
            return Err(AdminError::BadRequest(format!(
                "this build runs exactly n = {N} with t = {T}; the request asks n = {}, t = {}",
                req.n, req.t
            )));
        }
    }
    let mut pins = std::collections::BTreeMap::new();
    for (i, p) in &req.pins {
        match hex::decode(p)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
        {
            Some(b) => {
                pins.insert(*i, b);
            }
            None => {
                return Err(AdminError::BadRequest(format!(
                    "pin of index {i} is not 32 hex bytes"
                )))
            }
        }
    }
    if pins.keys().copied().ne(1..=crate::attestation::roster::N) {
        return Err(AdminError::BadRequest(
            "pins must name the operator's attested TLS identity of every index 1..=n".into(),
        ));
    }
    let index = node.state().epoch.begin_dkg()?;
    let started = std::time::Instant::now();
    let outcome = dkg::run(node, &req.epoch, &pins, req.ciphersuite).await;
    let mut s = node.state();
    match outcome {
        Ok(o) => {
            let group_sec1 = o.group_key.clone();
            let evidence = match node.attester.attest(evidence_binding(
                &req.ciphersuite.binding_input(&group_sec1),
                &o.transcript,
                index,
                crate::attestation::roster::N,
                crate::attestation::roster::T,
                &o.roster.hash(),
            )) {
                Ok(e) => e,
                Err(e) => {
                    s.epoch.dkg_failed();
                    return Err(AdminError::Internal(format!("evidence: {e}")));
                }
            };
            let result = DkgResult {
                index,
                epoch: req.epoch.clone(),
                group_key: hex::encode(&group_sec1),
                ciphersuite: req.ciphersuite,
                transcript: hex::encode(o.transcript),
                evidence: evidence.clone(),
                roster: o.roster.clone(),
            };
            s.epoch.dkg_succeeded(EpochKey {
                epoch: req.epoch,
                held: o.held,
                transcript: o.transcript,
                evidence,
                chain: None,
                pin: None,
            })?;
            s.last_error = None;
            drop(s);
            // Every peer confirmed the same group key: they hold shares of it.
            for link in node.peer_links().values_mut() {
                link.group_key = Some(result.group_key.clone());
            }
            tracing::info!(node = %node.name, group_key = %result.group_key, ms = started.elapsed().as_millis() as u64, "key generation complete");
            Ok(reply(result))
        }
        Err(f) => {
            s.epoch.dkg_failed();
            s.last_error = Some(match f.culprit {
                Some(c) => format!("key generation aborted: {} (culprit: node {c})", f.reason),
                None => format!("key generation aborted: {}", f.reason),
            });
            tracing::error!(node = %node.name, culprit = ?f.culprit, "key generation aborted: {}", f.reason);
            Err(AdminError::DkgAborted {
                reason: f.reason,
                culprit: f.culprit,
            })
        }
    }
}

async fn repair(node: &Arc<Node>, body: &[u8]) -> Answer {
    let req: RepairRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Err(AdminError::BadRequest(format!("repair request: {e}"))),
    };
    let (Ok(group_key), Some(roster_hash)) = (
        hex::decode(&req.group_key),
        hex::decode(&req.roster_hash)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok()),
    ) else {
        return Err(AdminError::BadRequest(
            "repair request: group_key must be hex and roster_hash 32 hex bytes".into(),
        ));
    };
    let expected = super::repair::Expected {
        group_key,
        roster_hash,
    };
    match super::repair::repair(node, &req.epoch, &req.helpers, &expected).await {
        Ok(phase) => Ok(reply(serde_json::json!({ "ok": true, "phase": phase }))),
        Err(e) => {
            node.state().last_error = Some(format!("repair failed: {e}"));
            Err(e.into())
        }
    }
}

fn repair_order(node: &Node, body: &[u8]) -> Answer {
    let order: RepairOrder = match serde_json::from_slice(body) {
        Ok(o) => o,
        Err(e) => return Err(AdminError::BadRequest(format!("repair order: {e}"))),
    };
    let spki: Option<[u8; 32]> = hex::decode(&order.replacement)
        .ok()
        .and_then(|v| v.try_into().ok());
    let Some(spki) = spki else {
        return Err(AdminError::BadRequest(
            "replacement must be 32 hex bytes (SHA-256 of its TLS SPKI)".into(),
        ));
    };
    let mut s = node.state();
    let own = s.epoch.cluster().map(|c| c.index);
    let (Some(key), Some(roster)) = (s.epoch.key(), s.epoch.roster()) else {
        return Err(AdminError::Conflict("this node holds no key share".into()));
    };
    let refusal = if key.epoch != order.epoch {
        Some(format!(
            "the order is for epoch {}, this node holds {}",
            order.epoch, key.epoch
        ))
    } else if roster.version != order.roster_version {
        Some(format!(
            "the order applies to roster v{}, this node's roster is v{}",
            order.roster_version, roster.version
        ))
    } else if Some(order.index) == own {
        Some(format!("index {} is this node's own", order.index))
    } else if roster.get(order.index).is_none() {
        Some(format!("index {} is not in the roster", order.index))
    } else if roster.index_of(&spki).is_some() {
        Some("the replacement's identity already holds an index".to_string())
    } else {
        None
    };
    if let Some(r) = refusal {
        drop(s);
        node.refuse(format!("repair order refused: {r}"));
        return Err(AdminError::Conflict(format!("repair order refused: {r}")));
    }
    tracing::warn!(node = %node.name, index = order.index, replacement = %order.replacement, roster_version = order.roster_version, "repair order accepted (takes effect when the replacement connects after the holder's silence)");
    s.orders
        .insert(order.index, (order.clone(), std::time::Instant::now()));
    Ok(reply(serde_json::json!({ "ok": true, "order": order })))
}

async fn csr(node: &Arc<Node>, body: &[u8]) -> Answer {
    let req: CsrRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Err(AdminError::BadRequest(format!("csr request: {e}"))),
    };
    let pin = match super::certificate::csr_pin(node, &req.ca_root, &req.subject) {
        Ok(p) => p,
        Err(e) => return Err(e.context("CSR not signed")),
    };
    match super::serve::sign_csr(node, &req.subject, &req.bundle, &pin).await {
        Ok(der) => Ok(reply(serde_json::json!({ "csr": hex::encode(der) }))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/tls-csr`: a PKCS#10 request for this node's identity key naming the
/// operator's public names and addresses (hex DER in `csr`).
fn tls_csr(node: &Node, body: &[u8]) -> Answer {
    let names: TlsCsrRequest = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => return Err(AdminError::BadRequest(format!("tls-csr request: {e}"))),
    };
    match node.identity.tls_csr(&names) {
        Ok(der) => Ok(reply(serde_json::json!({ "csr": hex::encode(der) }))),
        Err(e) => Err(AdminError::Refused(format!("TLS CSR: {e}"))),
    }
}

/// `POST /admin/tls-certificate` (body as `/admin/certificate`: the chain, leaf first,
/// hex DER): serve it on the public port if its leaf carries this node's identity key
/// ([`crate::certs::tls::check_tls_chain`]).
fn install_tls_certificate(node: &Node, body: &[u8]) -> Answer {
    let up: CertificateUpload = match serde_json::from_slice(body) {
        Ok(u) => u,
        Err(e) => {
            return Err(AdminError::BadRequest(format!(
                "TLS certificate upload: {e}"
            )))
        }
    };
    let chain: Vec<Vec<u8>> = match up.chain.iter().map(hex::decode).collect() {
        Ok(c) => c,
        Err(e) => return Err(AdminError::BadRequest(format!("chain is not hex: {e}"))),
    };
    if let Err(e) =
        crate::certs::tls::check_tls_chain(&chain, node.identity.spki_der(), node.clock.now())
    {
        node.refuse(format!("TLS certificate refused: {e}"));
        return Err(AdminError::Refused(format!("TLS certificate refused: {e}")));
    }
    if let Err(e) = node.public_tls.install(&chain) {
        return Err(AdminError::Refused(format!("TLS certificate refused: {e}")));
    }
    tracing::info!(node = %node.name, "public TLS certificate installed");
    Ok(reply(serde_json::json!({ "ok": true })))
}

impl From<super::repair::RepairError> for AdminError {
    /// A replacement's repair that did not happen. Every kind is a 409 (the node's
    /// state, its helpers or its links do not allow it now) except a failure of this
    /// node's own attestation.
    fn from(e: super::repair::RepairError) -> Self {
        use super::repair::RepairError as E;
        let m = format!("repair failed: {e}");
        match e {
            E::Evidence(_) => Self::Internal(m),
            E::Epoch(_)
            | E::NothingHeld(_)
            | E::TooFewHelpers { .. }
            | E::BadHelperSet { .. }
            | E::NotAdmitted(_)
            | E::NotItsOwn { .. }
            | E::RequesterGone
            | E::NoOrder { .. }
            | E::NotYetInRoster { .. }
            | E::OtherEpoch { .. }
            | E::Link(_)
            | E::HelpersTimedOut
            | E::HelperRefused { .. }
            | E::Malformed { .. }
            | E::OtherRepair(_)
            | E::HelpersDisagree(_)
            | E::BadRoster(_)
            | E::UnexpectedRoster { .. }
            | E::NotNamed { .. }
            | E::WrongLinkIdentity(_)
            | E::ShareMismatch
            | E::UnexpectedGroupKey { .. }
            | E::Chain(_)
            | E::Certificate(_)
            | E::Encoding(_)
            | E::Frost(_) => Self::Conflict(m),
        }
    }
}

impl From<super::serve::CsrError> for AdminError {
    /// A CSR this node could not get signed: its epoch, its pin or its co-signers do
    /// not allow it now (409); assembling what the signers signed is this node's own
    /// part (500).
    fn from(e: super::serve::CsrError) -> Self {
        use super::serve::CsrError as E;
        let m = format!("CSR not signed: {e}");
        match e {
            E::Assemble(_) => Self::Internal(m),
            E::NoKeyShare
            | E::NotConfigured
            | E::Refused(_)
            | E::Pin(_)
            | E::TooFewSigners { .. }
            | E::Aggregate(_) => Self::Conflict(m),
        }
    }
}
