//! The public HTTPS port: connections, limits, routing and the HTTP form of every
//! answer. The lifecycle calls and the status it serves are [`super::admin`]'s.
//!
//! Unauthenticated: `GET /status`, `GET /attestation?nonce=<64 hex>`.
//! Operator-authenticated (see [`crate::api::auth`]): `POST /admin/configure`,
//! `POST /admin/dkg`, `POST /admin/csr`, `POST /admin/ca-root`,
//! `POST /admin/certificate` (checks: [`crate::certs::install`]),
//! `POST /admin/tls-csr` and `POST /admin/tls-certificate` (the public TLS
//! certificate for this node's identity key: [`crate::certs::tls`]).

use super::refusal::AdminError;
use super::state::Node;
use crate::attestation::binding::identity_binding;
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
/// The one place a lifecycle call's outcome becomes an HTTP response: each refusal
/// kind has its status here, and nowhere else.
fn answer(r: super::admin::Answer) -> Response<Body> {
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
            let st = super::admin::status(&node);
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
        (&Method::GET, "/status") => json(StatusCode::OK, &super::admin::status(&node)),
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
            match super::admin::call(&node, p, &body).await {
                Some(a) => answer(a),
                None => error(StatusCode::NOT_FOUND, format!("no lifecycle call {p}")),
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
    let Some(pem) = super::admin::chain_pem(node) else {
        return error(StatusCode::NOT_FOUND, "no certificate installed yet");
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/pem-certificate-chain")
        .body(Full::new(Bytes::from(pem)))
        .unwrap_or_default()
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
