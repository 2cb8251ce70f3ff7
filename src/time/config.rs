//! Where the time servers are: run-time configuration (addresses are untrusted: a wrong
//! one only denies service). Which keys count and the quorum are build constants in the
//! production build ([`super::evidence::pinned_policy`]); a development build also takes
//! servers made for a test run (local `roughenough` servers with per-run keys).

use super::evidence::{TimePolicy, AGREEMENT};
use super::roughtime::{ServerSpec, Version};
use serde::{Deserialize, Serialize};

/// One time server: name, key, protocol version and address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeServer {
    /// Name (logs, `/status`, what `frostamp verify` prints).
    pub name: String,
    /// Long-term Ed25519 public key, hex.
    pub public_key: String,
    /// `rfc` (RFC 10049, version 1), `draft12` or `draft11`.
    #[serde(default = "rfc")]
    pub version: String,
    /// UDP `host:port`.
    pub address: String,
}

fn rfc() -> String {
    "rfc".into()
}

/// The time servers a node asks, and q.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// The servers.
    pub servers: Vec<TimeServer>,
    /// How many must vouch and agree.
    pub quorum: usize,
}

/// Why a time configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeConfigError {
    /// A field does not parse.
    #[error("time server {name}: {what}")]
    Field {
        /// The server's name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// q out of range.
    #[error("quorum {quorum} with {servers} servers: need 1 <= q <= servers")]
    Quorum {
        /// q.
        quorum: usize,
        /// Number of servers.
        servers: usize,
    },
    /// The production build only asks the pinned servers with the pinned quorum.
    #[error("this build pins its time servers and quorum: {0}")]
    NotPinned(String),
    /// Not JSON of a [`TimeConfig`].
    #[error("time configuration: {0}")]
    Json(String),
}

impl TimeServer {
    /// The server as the protocol code knows it.
    pub fn spec(&self) -> Result<ServerSpec, TimeConfigError> {
        let field = |what: String| TimeConfigError::Field {
            name: self.name.clone(),
            what,
        };
        let public_key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| field("public_key must be 32 hex bytes".into()))?;
        let version = match self.version.as_str() {
            "rfc" => Version::Rfc,
            "draft12" => Version::Draft12,
            "draft11" => Version::Draft11,
            other => return Err(field(format!("unknown version {other:?}"))),
        };
        Ok(ServerSpec {
            name: self.name.clone(),
            public_key,
            version,
        })
    }
}

impl TimeConfig {
    /// The build's pinned servers at their public addresses (from the ecosystem list).
    pub fn pinned() -> Self {
        let policy = super::evidence::pinned_policy();
        Self {
            servers: policy
                .servers
                .iter()
                .map(|s| TimeServer {
                    name: s.name.clone(),
                    public_key: hex::encode(s.public_key),
                    version: match s.version {
                        Version::Rfc => "rfc",
                        Version::Draft12 => "draft12",
                        Version::Draft11 => "draft11",
                    }
                    .into(),
                    address: super::roughtime::ecosystem_address(&s.name)
                        .unwrap_or_default()
                        .into(),
                })
                .collect(),
            quorum: policy.quorum,
        }
    }

    /// Parse JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TimeConfigError> {
        serde_json::from_slice(bytes).map_err(|e| TimeConfigError::Json(e.to_string()))
    }

    /// The servers and q as a policy (keys, versions, quorum), checked.
    pub fn policy(&self) -> Result<TimePolicy, TimeConfigError> {
        let servers: Vec<ServerSpec> = self
            .servers
            .iter()
            .map(TimeServer::spec)
            .collect::<Result<_, _>>()?;
        if self.quorum == 0 || self.quorum > servers.len() {
            return Err(TimeConfigError::Quorum {
                quorum: self.quorum,
                servers: servers.len(),
            });
        }
        Ok(TimePolicy {
            servers,
            quorum: self.quorum,
            agreement: AGREEMENT,
        })
    }

    /// [`Self::policy`], and in a production build (no development attestation) only
    /// the pinned servers with at least the pinned quorum.
    pub fn node_policy(&self) -> Result<TimePolicy, TimeConfigError> {
        let policy = self.policy()?;
        if cfg!(feature = "insecure-dev-attestation") {
            return Ok(policy);
        }
        let pinned = super::evidence::pinned_policy();
        for s in &policy.servers {
            if !pinned.servers.contains(s) {
                return Err(TimeConfigError::NotPinned(format!(
                    "{} (key {}) is not one of the build's servers",
                    s.name,
                    hex::encode(s.public_key)
                )));
            }
        }
        if policy.quorum < pinned.quorum {
            return Err(TimeConfigError::NotPinned(format!(
                "quorum {} is below the build's {}",
                policy.quorum, pinned.quorum
            )));
        }
        Ok(policy)
    }
}
