//! The files and processes a local cluster leaves behind: `cluster.json`
//! ([`ClusterFile`]) with its nodes and time servers, and the checks on the processes it
//! names. Shared by the operator commands and the local time servers.

use crate::certs::tls::PublicNames;
use crate::threshold::suite::Ciphersuite;
use crate::time::config::TimeServer;
use crate::time::roughtime::ServerSpec;
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(super) fn read_to_string(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// What `frostamp ceremony` and `cluster up` leave behind for scripts and tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Format version (1).
    pub version: u32,
    /// Nodes.
    pub nodes: Vec<ClusterNode>,
    /// Threshold.
    pub t: u16,
    /// Key epoch.
    pub epoch: String,
    /// Group key (hex), once generated.
    pub group_key: Option<String>,
    /// The key epoch's FROST ciphersuite (secp256k1 in files written before suites).
    #[serde(default)]
    pub ciphersuite: Ciphersuite,
    /// Launch measurement (hex).
    pub measurement: Option<String>,
    /// PEM file with the root to trust for tokens (the CA).
    pub root: Option<PathBuf>,
    /// PEM chain (TSA certificate first).
    pub chain: Option<PathBuf>,
    /// Development ARK accepted for attestation (local cluster only).
    pub insecure_dev_root: Option<PathBuf>,
    /// Operator key file.
    pub operator_key: PathBuf,
    /// Per-step ceremony timings in ms.
    pub timings_ms: std::collections::BTreeMap<String, u128>,
    /// The local cluster's Roughtime servers (`cluster up`; absent in older files and
    /// for clusters not started by `cluster up`). Their configuration, which every node
    /// got, is `time-servers.json` beside this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_servers: Vec<ClusterTimeServer>,
    /// The development CA directory that issues the nodes' public TLS certificates
    /// (`ceremony run --ca-dir`, `cluster up`); absent: an external CA issues them from
    /// the nodes' requests (`tls-node<i>.csr`, `frostamp ceremony install-tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_dir: Option<PathBuf>,
}

impl ClusterFile {
    /// The configuration (`/admin/configure`, a repair order's cluster) that this
    /// cluster gives node `index`: its threshold and every node's peer address.
    pub fn config_for(&self, index: u16) -> crate::api::admin::ClusterConfig {
        crate::api::admin::ClusterConfig {
            index,
            t: self.t,
            nodes: self
                .nodes
                .iter()
                .map(|n| (n.index, n.peer.clone()))
                .collect(),
        }
    }
}

/// One node in the cluster file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterNode {
    /// Index.
    pub index: u16,
    /// `https://host:port`.
    pub url: String,
    /// Public `host:port`.
    pub public: String,
    /// Peer `host:port`.
    pub peer: String,
    /// SHA-256 of the node's TLS SPKI (hex), pinned after attestation.
    pub pin: Option<String>,
    /// Process id when started by `cluster up`.
    pub pid: Option<u32>,
    /// Log file when started by `cluster up`.
    pub log: Option<PathBuf>,
    /// Phase at the time the file was written.
    pub phase: Option<String>,
    /// The public names and addresses its TLS certificate names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_names: Option<PublicNames>,
}

/// One local time server in `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTimeServer {
    /// 1, 2 or 3.
    pub index: u16,
    /// `local-<index>` (what the time configuration and the evidence name it).
    pub name: String,
    /// Long-term Ed25519 public key, hex (derived from the seed).
    pub public_key: String,
    /// UDP `127.0.0.1:port`.
    pub address: String,
    /// Process id while running; `None` once stopped.
    pub pid: Option<u32>,
    /// The server's `--fixed-offset`: seconds it adds to its clock (0: honest).
    pub offset_secs: i16,
    /// The seed file (removed by `cluster down`).
    pub seed_file: PathBuf,
    /// The server's log (stdout and stderr).
    pub log: PathBuf,
}

impl ClusterTimeServer {
    /// The server as a time configuration lists it (RFC 10049).
    pub fn time_server(&self) -> TimeServer {
        TimeServer {
            name: self.name.clone(),
            public_key: self.public_key.clone(),
            version: "rfc".into(),
            address: self.address.clone(),
        }
    }

    pub(super) fn spec(&self) -> Result<ServerSpec> {
        self.time_server()
            .spec()
            .map_err(|e| anyhow!("cluster.json: {e}"))
    }

    pub(super) fn socket_addr(&self) -> Result<SocketAddr> {
        self.address
            .parse()
            .with_context(|| format!("time server {}: address {:?}", self.name, self.address))
    }

    /// Whether the recorded pid is this server's process: it exists, is no zombie, and
    /// its command line names this server's seed file (a reused pid is not signalled).
    pub fn is_running(&self) -> bool {
        self.pid
            .is_some_and(|pid| runs_with_arg(pid, self.seed_file.as_os_str()))
    }
}

/// Whether process `pid` is alive and one of its arguments is exactly `arg`.
pub(super) fn runs_with_arg(pid: u32, arg: &std::ffi::OsStr) -> bool {
    !is_zombie(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_encoded_bytes()))
}

/// Whether process `pid` is gone (or a zombie) within `limit`.
pub(super) fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
        .unwrap_or(true)
}
