//! The HTTPS client (hyper + rustls) of the CLI, tests and benchmarks: one-shot requests
//! and kept-alive connections.

use crate::net::tls::public_client_config;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body read.
pub const MAX_RESPONSE: usize = 16 << 20;

/// Client-side failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS failed (including a pin mismatch).
    #[error("TLS with {addr}: {source}")]
    Tls {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Setup.
    #[error("TLS setup: {0}")]
    Setup(#[from] crate::net::tls::TlsError),
}

/// A response and the SPKI hash of the server that sent it.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// SHA-256 of the server's TLS SPKI.
    pub server_spki_sha256: [u8; 32],
    /// DER of the server's TLS SubjectPublicKeyInfo.
    pub server_spki_der: Vec<u8>,
}

/// One HTTP request: method, path, headers and body.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target, e.g. `/status`.
    pub path: &'a str,
    /// Headers besides `host`.
    pub headers: Vec<(&'a str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl<'a> Call<'a> {
    /// `GET path`, no body.
    pub fn get(path: &'a str) -> Self {
        Self::post(path, Vec::new()).method("GET")
    }

    /// `POST path` with `body`.
    pub fn post(path: &'a str, body: Vec<u8>) -> Self {
        Self {
            method: "POST",
            path,
            headers: Vec::new(),
            body,
        }
    }

    /// `POST /` of a DER timestamp request (RFC 3161 §3.4).
    pub fn stamp(query_der: Vec<u8>) -> Self {
        Self::post("/", query_der).header("content-type", "application/timestamp-query")
    }

    /// The same with another method.
    pub fn method(self, method: &'a str) -> Self {
        Self { method, ..self }
    }

    /// The same with one more header.
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Send one request to `addr` (`host:port`). With `pin`, the server key must match.
pub async fn request(
    addr: &str,
    pin: Option<[u8; 32]>,
    call: Call<'_>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let exchange = async {
        let mut conn = Connection::open_inner(addr, pin).await?;
        conn.send_inner(call).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// One HTTPS connection kept open for several requests (HTTP/1.1 keep-alive), as a
/// client that stamps many files would use.
pub struct Connection {
    addr: String,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    server_spki_sha256: [u8; 32],
    server_spki_der: Vec<u8>,
}

impl Connection {
    /// Connect to `addr` (`host:port`); with `pin`, the server key must match.
    pub async fn open(
        addr: &str,
        pin: Option<[u8; 32]>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        tokio::time::timeout(timeout, Self::open_inner(addr, pin))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn open_inner(addr: &str, pin: Option<[u8; 32]>) -> Result<Self, ClientError> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(public_client_config(pin)?));
        let name = rustls::pki_types::ServerName::try_from("frostamp-node")
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Tls {
                addr: addr.to_string(),
                source,
            })?;
        let server_spki_der = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| crate::net::identity::spki_of_cert(c).ok())
            .ok_or_else(|| ClientError::Http("server presented no usable certificate".into()))?;
        let server_spki_sha256: [u8; 32] =
            <sha2::Sha256 as sha2::Digest>::digest(&server_spki_der).into();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            addr: addr.to_string(),
            sender,
            server_spki_sha256,
            server_spki_der,
        })
    }

    /// Send one request on this connection and read the whole response.
    pub async fn send(
        &mut self,
        call: Call<'_>,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        tokio::time::timeout(timeout, self.send_inner(call))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn send_inner(&mut self, call: Call<'_>) -> Result<Response, ClientError> {
        self.sender
            .ready()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let mut req = hyper::Request::builder()
            .method(call.method)
            .uri(call.path)
            .header("host", &self.addr);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(call.body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            body,
            server_spki_sha256: self.server_spki_sha256,
            server_spki_der: self.server_spki_der.clone(),
        })
    }
}
