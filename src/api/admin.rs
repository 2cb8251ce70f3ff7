//! The bodies of the node's HTTPS admin and status endpoints (DESIGN §3, §5), shared
//! by the node that answers them and the operator's tools that send them.

use crate::attestation::roster::{N, T};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a node is in the life of a key epoch (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Starting.
    Booting,
    /// Checking that it can attest itself.
    Attesting,
    /// Waiting for configuration and peers.
    AwaitingPeers,
    /// Running the DKG.
    KeyGeneration,
    /// Holding a share, waiting for the TSA certificate.
    AwaitingCertificate,
    /// Holding a share and a certificate.
    Serving,
}

/// Cluster health while serving (DESIGN §3), from the number of share holders
/// this node can reach (itself included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// All n nodes hold shares.
    Healthy,
    /// Fewer than n but more than t: recover before further failures.
    Degraded,
    /// Exactly t: one more loss means key regeneration.
    Critical,
    /// Fewer than t: the key is lost by design; a new DKG is needed.
    Halted,
    /// At least t shares, but fewer than q time servers vouch: every request gets
    /// `timeNotAvailable` until they do (`/status` `health_reason` names them).
    NoTime,
}

impl Health {
    /// Health for `holders` share holders out of `n` with threshold `t`.
    pub fn of(holders: u16, n: u16, t: u16) -> Self {
        if holders >= n {
            Self::Healthy
        } else if holders > t {
            Self::Degraded
        } else if holders == t {
            Self::Critical
        } else {
            Self::Halted
        }
    }
}

/// The cluster layout the operator assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's index (FROST identifier), 1..=n.
    pub index: u16,
    /// Threshold.
    pub t: u16,
    /// Every node: index → peer address (`host:port`), this node included.
    pub nodes: BTreeMap<u16, String>,
}

impl ClusterConfig {
    /// What every node of one cluster shares and a node configured for any other
    /// layout does not: t and every peer address (not the node's own index). A dialer
    /// names it as the TLS server name of the peer port
    /// ([`ClusterConfig::peer_server_name`]); a node refuses a connection meant for
    /// another layout (typically an earlier cluster whose addresses this one reuses, or
    /// a second cluster on the same machine) before it spends anything on it. Who may
    /// hold which index is still decided by attestation, the roster and the operator's
    /// orders: the tag is public and only sorts out misdirected connections.
    pub fn tag(&self) -> [u8; 16] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"frostamp peer cluster tag v1\0");
        h.update(self.t.to_be_bytes());
        for (index, addr) in &self.nodes {
            h.update(index.to_be_bytes());
            h.update((addr.len() as u64).to_be_bytes());
            h.update(addr.as_bytes());
        }
        let d: [u8; 32] = h.finalize().into();
        let mut tag = [0u8; 16];
        for (t, b) in tag.iter_mut().zip(d) {
            *t = b;
        }
        tag
    }

    /// The TLS server name a dialer of this cluster sends to a peer port:
    /// `c<tag in hex>.peer.frostamp`.
    pub fn peer_server_name(&self) -> String {
        format!("c{}.peer.frostamp", hex::encode(self.tag()))
    }

    /// n.
    pub fn n(&self) -> u16 {
        u16::try_from(self.nodes.len()).unwrap_or(u16::MAX)
    }
    pub(crate) fn validate(&self) -> Result<(), LayoutError> {
        let n = self.n();
        // n and t are build constants (part of the measurement), not configuration.
        if n != N || self.t != T {
            return Err(LayoutError::Size { n, t: self.t });
        }
        if self.nodes.keys().copied().ne(1..=n) {
            return Err(LayoutError::Indices);
        }
        if !self.nodes.contains_key(&self.index) {
            return Err(LayoutError::OwnIndex(self.index));
        }
        Ok(())
    }
}

/// Why a cluster layout is not one this build runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// n and t are build constants.
    #[error("this build runs exactly n = {N} nodes with threshold t = {T}; got n = {n}, t = {t}")]
    Size {
        /// The layout's n.
        n: u16,
        /// Its t.
        t: u16,
    },
    /// The indices are not 1..=n.
    #[error("node indices must be exactly 1..=n")]
    Indices,
    /// The node's own index is not listed.
    #[error("own index {0} is not in the node list")]
    OwnIndex(u16),
}

/// Public status (DESIGN §3).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// Node name.
    pub name: String,
    /// Phase.
    pub phase: Phase,
    /// Index, once configured.
    pub index: Option<u16>,
    /// n and t, once configured.
    pub n: Option<u16>,
    /// Threshold.
    pub t: Option<u16>,
    /// Launch measurement (hex).
    pub measurement: String,
    /// SHA-256 of the TLS SPKI (hex).
    pub identity: String,
    /// Development attestation in use.
    pub insecure_dev_attestation: bool,
    /// Nodes known to hold a share of this node's group key (itself included).
    pub share_holders: u16,
    /// Health while serving (DESIGN §3).
    pub health: Option<Health>,
    /// Admitted peers: index → SHA-256 of the TLS SPKI their evidence bound (hex).
    pub peers: std::collections::BTreeMap<u16, String>,
    /// Current key epoch.
    pub epoch: Option<String>,
    /// Who holds which index of the key epoch (from the DKG's start on), and its version.
    #[serde(default)]
    pub roster: Option<crate::attestation::Roster>,
    /// Hash of the roster (hex).
    #[serde(default)]
    pub roster_hash: Option<String>,
    /// Group key (hex, RFC 9591 serialization: SEC1 compressed for secp256k1, the
    /// 32-byte public key for Ed25519).
    pub group_key: Option<String>,
    /// The key epoch's FROST ciphersuite (`secp256k1` or `ed25519`).
    #[serde(default)]
    pub ciphersuite: Option<crate::threshold::suite::Ciphersuite>,
    /// Round-1 transcript hash (hex).
    pub transcript: Option<String>,
    /// SHA-256 of the installed TSA certificate (hex).
    pub certificate: Option<String>,
    /// SHA-256 of the CA-issued public TLS certificate served (hex); `None` while the
    /// public port serves the identity's self-signed certificate.
    #[serde(default)]
    pub tls_certificate: Option<String>,
    /// Last lifecycle error.
    pub last_error: Option<String>,
    /// Recent refusals (peers, lifecycle calls).
    pub refusals: Vec<String>,
    /// Nonce commitments each peer issued to this node ahead of time, unused.
    #[serde(default)]
    pub commitments_ready: std::collections::BTreeMap<u16, usize>,
    /// The time servers and the quorum (every token's genTime is backed by them).
    #[serde(default)]
    pub time: Option<TimeStatus>,
    /// Why health is not `healthy` beyond the share count, if anything (e.g. fewer than
    /// q time servers vouch: requests get `timeNotAvailable`).
    #[serde(default)]
    pub health_reason: Option<String>,
}

/// One time server as `/status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeServerStatus {
    /// Name.
    pub name: String,
    /// Address asked.
    pub address: String,
    /// Whether its last reply verified and agreed with the quorum.
    pub ok: bool,
    /// Last round trip, milliseconds.
    pub last_rtt_ms: Option<f64>,
    /// Its last midpoint minus this node's clock, milliseconds (what this host's clock
    /// is off by if the server is right).
    pub last_offset_ms: Option<i64>,
    /// Why its last answer was not used.
    pub last_error: Option<String>,
    /// Its replies used in evidence.
    pub replies_used: u64,
    /// Rounds it failed (no answer, a reply that does not verify, outvoted).
    pub failures: u64,
}

/// What `/status` shows about time evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeStatus {
    /// q.
    pub quorum: usize,
    /// Whether the last round reached the quorum.
    pub quorum_ok: bool,
    /// Seconds since the last round.
    pub last_round_age_s: Option<f64>,
    /// Rounds run.
    pub rounds: u64,
    /// Requests those rounds served.
    pub requests: u64,
    /// Rounds without quorum (their requests got `timeNotAvailable`).
    pub rounds_without_quorum: u64,
    /// Each server.
    pub servers: Vec<TimeServerStatus>,
}

/// Request body of `/admin/dkg`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkgRequest {
    /// A name for the new key epoch (same on every node).
    pub epoch: String,
    /// Number of share holders: must equal the build constant
    /// [`crate::attestation::roster::N`].
    pub n: u16,
    /// Threshold: must equal the build constant [`crate::attestation::roster::T`].
    pub t: u16,
    /// The FROST ciphersuite of the new epoch (same on every node; secp256k1 if absent).
    #[serde(default)]
    pub ciphersuite: crate::threshold::suite::Ciphersuite,
    /// The TLS identity (SHA-256 of the SPKI, hex) the operator attested and pinned for
    /// every index 1..=n: the node aborts before round 1 if the identities it admitted
    /// are not these (no machine that reached a peer port first takes an index).
    pub pins: std::collections::BTreeMap<u16, String>,
}

/// Response of a successful `/admin/dkg`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkgResult {
    /// Node index.
    pub index: u16,
    /// Epoch.
    pub epoch: String,
    /// Group key, hex (RFC 9591 serialization of the suite's element).
    pub group_key: String,
    /// The epoch's FROST ciphersuite (secp256k1 if absent).
    #[serde(default)]
    pub ciphersuite: crate::threshold::suite::Ciphersuite,
    /// Round-1 transcript hash, hex.
    pub transcript: String,
    /// Evidence with REPORT_DATA = evidence_binding(the suite's binding of the group
    /// key, transcript, index, n, t, roster hash).
    pub evidence: crate::attestation::Evidence,
    /// The roster this node took at the DKG's start (the same on every node).
    pub roster: crate::attestation::Roster,
}

/// Request body of `/admin/repair`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// The key epoch whose share this (replacement) node should receive.
    pub epoch: String,
    /// At least t share holders that help.
    pub helpers: Vec<u16>,
    /// The group verifying key (hex SEC1 compressed), from a holder's `/status`.
    pub group_key: String,
    /// Hash (hex) of the roster in which the operator's order took effect: the held
    /// roster with this replacement's attested identity at its index.
    pub roster_hash: String,
}

/// Body of `POST /admin/repair-order`: this node's operator orders that the share of
/// `index` be rebuilt for the replacement whose TLS identity is `replacement`. The
/// operator header signs it for this node alone (`auth`). It takes effect when that
/// identity connects claiming `index` while the roster is still at `roster_version` and
/// the roster's holder of `index` has been silent for `peers::SILENCE`: the roster then
/// moves to `roster_version + 1`, and this node helps the repair if asked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepairOrder {
    /// The key epoch.
    pub epoch: String,
    /// The index whose share is lost.
    pub index: u16,
    /// SHA-256 of the replacement's TLS SPKI (hex), as the operator attested it.
    pub replacement: String,
    /// The roster version the order applies to (the next one is `+ 1`).
    pub roster_version: u32,
}

/// Request body of `/admin/csr`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    /// Requested subject (RFC 4514), e.g. `CN=frostamp TSA,O=example`.
    pub subject: String,
    /// The evidence bundle from the ceremony (JSON text), embedded in the CSR.
    pub bundle: String,
    /// The root certificate (hex DER) of the CA that will issue: fixed, with the
    /// subject, for this key epoch on every node that signs the CSR.
    pub ca_root: String,
}

/// Request body of `/admin/ca-root`: fix the CA root and subject on a node that
/// did not sign the CSR (before any certificate is installed).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaRootRequest {
    /// The root certificate (hex DER) the CSR named.
    pub ca_root: String,
    /// The subject the CSR requested (RFC 4514).
    pub subject: String,
}

/// Request body of `/admin/certificate`: the chain, leaf first, DER as hex.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateUpload {
    /// Leaf (the TSA certificate) first.
    pub chain: Vec<String>,
}

impl CertificateUpload {
    /// The body for `chain` (DER, leaf first).
    pub fn of(chain: &[Vec<u8>]) -> Self {
        Self {
            chain: chain.iter().map(hex::encode).collect(),
        }
    }
}

/// Request body of `/admin/tls-csr`: the public names of this node.
pub type TlsCsrRequest = crate::certs::tls::PublicNames;
