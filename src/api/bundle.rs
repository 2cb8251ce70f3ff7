//! The evidence bundle: what the operator gathers at the ceremony and a CA (and every
//! node asked to sign the epoch's CSR) checks.

use crate::api::admin::DkgResult;
use crate::attestation::Roster;
use crate::threshold::suite::Ciphersuite;
use serde::{Deserialize, Serialize};

/// The evidence a CA checks: every node's DKG result and attestation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// Format version (2: n and the roster).
    pub version: u32,
    /// Key epoch.
    pub epoch: String,
    /// Share holders (the build constant `roster::N`).
    pub n: u16,
    /// Threshold (the build constant `roster::T`).
    pub t: u16,
    /// Which attested machine holds which index (TLS identity, chip, TCB).
    pub roster: Roster,
    /// Group key (hex, RFC 9591 serialization: SEC1 compressed for secp256k1, the
    /// 32-byte RFC 8032 public key for Ed25519).
    pub group_key: String,
    /// The epoch's FROST ciphersuite (`secp256k1` if absent). Every node's report
    /// binds it with the group key (`Ciphersuite::binding_input`).
    #[serde(default)]
    pub ciphersuite: Ciphersuite,
    /// Transcript hash (hex).
    pub transcript: String,
    /// Launch measurement all nodes reported (hex).
    pub measurement: String,
    /// One entry per node.
    pub nodes: Vec<DkgResult>,
}
