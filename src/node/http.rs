//! The public HTTPS port.
//!
//! Unauthenticated: `GET /status`, `GET /attestation?nonce=<64 hex>`.
//! Operator-authenticated (see [`crate::api::auth`]): `POST /admin/configure`,
//! `POST /admin/dkg`, `POST /admin/csr`, `POST /admin/ca-root`,
//! `POST /admin/certificate` (checks: [`crate::certs::install`]),
//! `POST /admin/tls-csr` and `POST /admin/tls-certificate` (the public TLS
//! certificate for this node's identity key: [`crate::certs::tls`]).

use super::epoch::Configured;
use super::refusal::AdminError;
use super::{dkg, peers, state::EpochKey, state::Node};
use crate::api::admin::{
    CertificateUpload, ClusterConfig, CsrRequest, DkgRequest, DkgResult, Phase, RepairOrder,
    RepairRequest, Status, TlsCsrRequest,
};
use crate::attestation::binding::{evidence_binding, identity_binding};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Largest accepted request body on the public port.
pub(super) const MAX_BODY: usize = 256 * 1024;
/// At most this many connections are served at once.
const MAX_CONNECTIONS: usize = 512;
/// At most this many of them from one source address.
const MAX_PER_SOURCE: usize = 64;
/// A request body must arrive within this time (a trickling client is cut off).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attestation reports produced at once for `GET /attestation`; more wait for none.
const ATTESTATIONS_AT_ONCE: usize = 2;
/// ... and per second (a report holds the platform's lock, which peer admission needs).
const ATTESTATIONS_PER_SECOND: u32 = 10;
/// Reports kept for a retry with the same nonce, and for how long.
const ATTESTATIONS_CACHED: usize = 16;
const ATTESTATION_TTL: Duration = Duration::from_secs(10);
/// A connection this old may be evicted by anyone when the port is full.
const STALE: Duration = Duration::from_secs(5);

type Body = Full<Bytes>;

pub(super) async fn serve(node: Arc<Node>, listener: TcpListener) {
    let config = crate::net::tls::public_server_config(node.public_tls.clone());
    let Some(acceptor) = node.acceptor("public", config) else {
        return;
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let sources = super::limits::SourceCaps::new(MAX_PER_SOURCE);
    let evictable = Arc::new(super::limits::Evictable::default());
    let edge = Arc::new(Edge::default());
    loop {
        let Ok((tcp, addr)) = listener.accept().await else {
            continue;
        };
        // One source may not take every permit.
        let Some(slot) = sources.admit(addr.ip()) else {
            node.metrics.shed("public_per_source");
            drop(tcp);
            continue;
        };
        // Small request/response messages: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        // At capacity: a source holding less than the heaviest takes the oldest
        // connection of the heaviest, anyone takes a stale one (`limits::Evictable::evict_for`),
        // so many sources, each under its cap, cannot hold every permit and keep
        // everyone else out. Otherwise the new connection is shed at once rather than
        // the accept loop stopping, so idle or slow clients cannot queue everyone else
        // behind them.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match evictable.evict_for(addr.ip(), STALE) {
                Some(p) => {
                    node.metrics.shed("public_evicted");
                    p
                }
                None => {
                    node.metrics.shed("public_total");
                    drop(tcp);
                    continue;
                }
            },
        };
        let node = node.clone();
        let acceptor = acceptor.clone();
        let (evictable, edge) = (evictable.clone(), edge.clone());
        tokio::spawn(async move {
            let _slot = slot;
            // The registry holds the permit: released when the connection ends, or
            // handed to the connection that evicts this one.
            let entry = evictable.register(addr.ip(), Some(permit));
            let serve = async {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let source = addr.ip();
                let service = hyper::service::service_fn(move |req| {
                    let (node, edge) = (node.clone(), edge.clone());
                    async move {
                        Ok::<_, std::convert::Infallible>(route(node, edge, source, req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            };
            tokio::select! {
                () = serve => {}
                () = entry.evicted.notified() => {}
            }
        });
    }
}

/// What the requests of the public port share.
#[derive(Debug)]
struct Edge {
    /// Timestamp requests being signed now, under an adaptive limit.
    signing: super::limits::Admission,
    /// `GET /attestation` reports made, at most [`ATTESTATIONS_PER_SECOND`].
    attestations: super::limits::Rate,
    /// The last reports made for public nonces, by nonce (a retry with the same nonce
    /// costs no report): at most [`ATTESTATIONS_CACHED`], each for [`ATTESTATION_TTL`].
    attested: std::sync::Mutex<std::collections::VecDeque<([u8; 32], std::time::Instant, Bytes)>>,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            signing: super::limits::Admission::default(),
            attestations: super::limits::Rate::new(
                ATTESTATIONS_PER_SECOND,
                ATTESTATIONS_PER_SECOND,
            ),
            attested: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

/// HTTP 503 with `Retry-After`: the node is over capacity.
fn overloaded() -> Response<Body> {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this node is over capacity; retry after a second, or ask another node",
    );
    r.headers_mut()
        .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
    r
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Response<Body> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// HTTP 200 with a JSON body already encoded.
fn json_ok(body: Bytes) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap_or_default()
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    json(status, &serde_json::json!({ "error": msg.into() }))
}

/// What a lifecycle handler answers: a JSON body, or why the call is refused.
type Answer = Result<serde_json::Value, AdminError>;

/// A handler's JSON answer (`Serialize` values that cannot fail to encode).
fn reply(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// The one place a lifecycle call's outcome becomes an HTTP response: each refusal
/// kind has its status here, and nowhere else.
fn answer(r: Answer) -> Response<Body> {
    let e = match r {
        Ok(v) => return json(StatusCode::OK, &v),
        Err(e) => e,
    };
    let status = match &e {
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Conflict(_) | AdminError::DkgAborted { .. } => StatusCode::CONFLICT,
        AdminError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    match e {
        AdminError::DkgAborted { reason, culprit } => json(
            status,
            &serde_json::json!({ "error": reason, "culprit": culprit }),
        ),
        other => error(status, other.to_string()),
    }
}

async fn route(
    node: Arc<Node>,
    edge: Arc<Edge>,
    source: std::net::IpAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let auth = req
        .headers()
        .get(crate::api::auth::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {MAX_BODY} bytes"),
            )
        }
        Err(_) => {
            node.metrics.shed("body_timeout");
            let mut r = error(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {BODY_TIMEOUT:?}"),
            );
            r.headers_mut().insert(
                "connection",
                hyper::header::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    match (&method, path.as_str()) {
        (&Method::POST, "/") => {
            if content_type.as_deref() != Some("application/timestamp-query") {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send Content-Type: application/timestamp-query",
                );
            }
            node.metrics.request();
            // Beyond what the node signs at once: 503 now, not a queue that grows.
            let Some(admitted) = edge.signing.try_admit() else {
                node.metrics.shed("overload");
                return overloaded();
            };
            let started = std::time::Instant::now();
            let resp = match super::serve::timestamp(&node, &body).await {
                Ok(r) => {
                    node.metrics.token(started.elapsed());
                    admitted.finished();
                    r
                }
                Err(f) => {
                    node.metrics
                        .rejection(f.rejection.failure_info().rfc_name());
                    if let crate::tsp::request::Rejection::SystemFailure(why) = &f.rejection {
                        node.metrics.system_failure(why.label());
                    }
                    for (_, e) in &f.excluded {
                        node.metrics.excluded(e.cause());
                    }
                    tracing::warn!(node = %node.name, "request rejected: {}", f.rejection);
                    f.response
                }
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/timestamp-reply")
                .body(Full::new(Bytes::from(resp)))
                .unwrap_or_default()
        }
        (&Method::GET, "/certchain") => certchain(&node),
        (&Method::GET, "/metrics") => {
            let st = status(&node);
            let phase = serde_json::to_value(st.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(format!(
                    "{}# HELP frostamp_signing_limit Timestamp requests this node signs at once (adaptive; beyond it, HTTP 503).\n# TYPE frostamp_signing_limit gauge\nfrostamp_signing_limit {}\n",
                    node.metrics.render(
                        &phase,
                        st.share_holders,
                        st.n,
                        st.t,
                        &st.commitments_ready,
                        st.time.as_ref(),
                    ),
                    edge.signing.limit()
                ))))
                .unwrap_or_default()
        }
        (&Method::GET, "/status") => json(StatusCode::OK, &status(&node)),
        (&Method::GET, "/attestation") => attestation(&node, &edge, &query).await,
        (&Method::POST, p) if p.starts_with("/admin/") => {
            if let Err(e) = node.operator.check(
                auth.as_deref(),
                method.as_str(),
                p,
                &body,
                &node.identity.spki_sha256(),
                node.clock.now(),
            ) {
                // Anyone can send these: the refusal counts against its source, so it
                // cannot flush the others from /status.
                node.refuse_from(Some(source), format!("lifecycle call {p} refused: {e}"));
                let code = match e {
                    crate::api::auth::AuthError::Missing => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::FORBIDDEN,
                };
                return error(code, e.to_string());
            }
            match p {
                "/admin/configure" => answer(configure(&node, &body)),
                "/admin/dkg" => answer(run_dkg(&node, &body).await),
                "/admin/certificate" => {
                    let r = answer(super::certificate::upload(&node, &body));
                    super::serve::prefill(&node);
                    r
                }
                "/admin/csr" => answer(csr(&node, &body).await),
                "/admin/ca-root" => answer(super::certificate::ca_root(&node, &body)),
                "/admin/repair" => answer(repair(&node, &body).await),
                "/admin/repair-order" => answer(repair_order(&node, &body)),
                "/admin/tls-csr" => answer(tls_csr(&node, &body)),
                "/admin/tls-certificate" => answer(install_tls_certificate(&node, &body)),
                _ => error(StatusCode::NOT_FOUND, format!("no lifecycle call {p}")),
            }
        }
        (_, "/status" | "/attestation" | "/metrics" | "/certchain") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "use GET")
        }
        _ => error(StatusCode::NOT_FOUND, format!("no such resource {path}")),
    }
}

/// The installed chain as PEM, TSA certificate first.
fn certchain(node: &Node) -> Response<Body> {
    let s = node.state();
    let Some(chain) = s.epoch.key().and_then(|k| k.chain.as_ref()) else {
        return error(StatusCode::NOT_FOUND, "no certificate installed yet");
    };
    let pem: String = chain
        .iter()
        .filter_map(|c| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, c).ok())
        .collect();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/pem-certificate-chain")
        .body(Full::new(Bytes::from(pem)))
        .unwrap_or_default()
}

fn status(node: &Node) -> Status {
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

/// Evidence binding this node's TLS key to a client nonce.
async fn attestation(node: &Arc<Node>, edge: &Edge, query: &str) -> Response<Body> {
    let nonce = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nonce="))
        .and_then(|h| hex::decode(h).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok());
    let Some(nonce) = nonce else {
        return error(StatusCode::BAD_REQUEST, "need ?nonce=<64 hex digits>");
    };
    let cached = {
        let mut c = edge.attested.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|(_, at, _)| at.elapsed() < ATTESTATION_TTL);
        c.iter()
            .find(|(n, _, _)| *n == nonce)
            .map(|(_, _, b)| b.clone())
    };
    if let Some(body) = cached {
        return json_ok(body);
    }
    // A report is a blocking call to the platform (an ioctl behind a lock): at most
    // ATTESTATIONS_AT_ONCE at a time, on blocking threads, and ATTESTATIONS_PER_SECOND;
    // more get 503 at once.
    static AT_ONCE: tokio::sync::Semaphore =
        tokio::sync::Semaphore::const_new(ATTESTATIONS_AT_ONCE);
    let permit = AT_ONCE
        .try_acquire()
        .ok()
        .filter(|_| edge.attestations.allow(std::time::Instant::now()));
    let Some(_permit) = permit else {
        node.metrics.shed("attestation_busy");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "attestation busy, retry shortly",
        );
        r.headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        return r;
    };
    let binding = identity_binding(node.identity.spki_der(), &nonce);
    let attester = node.attester.clone();
    match tokio::task::spawn_blocking(move || attester.attest(binding)).await {
        Ok(Ok(ev)) => {
            let body = Bytes::from(serde_json::to_vec_pretty(&ev).unwrap_or_default());
            let mut c = edge.attested.lock().unwrap_or_else(|p| p.into_inner());
            // Expired entries go now too, not only at the next lookup: a report must
            // not stay in memory for the life of the node after its TTL.
            c.retain(|(_, at, _)| at.elapsed() < ATTESTATION_TTL);
            if c.len() >= ATTESTATIONS_CACHED {
                c.pop_front();
            }
            c.push_back((nonce, std::time::Instant::now(), body.clone()));
            drop(c);
            json_ok(body)
        }
        Ok(Err(e)) => {
            tracing::warn!(node = %node.name, "attestation failed: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "attestation failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "attestation failed"),
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
