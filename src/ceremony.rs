//! The key ceremony as the operator runs it (DESIGN §2 steps 1–5), and the
//! evidence bundle a CA checks before issuing the TSA certificate.
//!
//! 1. **Attest every node** over its public port: a fresh nonce, evidence whose
//!    REPORT_DATA binds the TLS key of that very connection; all measurements
//!    equal (and equal to the accepted one, if given). Each node's TLS key is then
//!    pinned for every later call.
//! 2. **Configure**: index assignment and the peer list (signed lifecycle call).
//! 3. **Peers**: wait until every node has admitted every other one.
//! 4. **DKG** on all nodes at once; every node must report the same group key,
//!    transcript hash and roster, with evidence binding (group key, transcript, index,
//!    n, t, roster hash); the roster must name, for every index, the TLS key pinned in
//!    step 1.
//! 5. **Certificate**: one node coordinates the threshold-signed CSR
//!    ([`request_csr`]); the request names the root certificate of the CA that
//!    will issue, and every node that signs the CSR fixes that root and the
//!    subject for the epoch; [`fix_ca_root`] fixes them on the other nodes. The CA
//!    (`frostamp ca`, or an external one) issues; [`install_chain`] uploads the
//!    chain to every node, which installs it only if it verifies to that root,
//!    names that subject, the group key and its own measurement, and is valid now
//!    (`certs::install`). A node installs one certificate per epoch, then only
//!    renewals.
//! 6. **Public TLS** ([`tls`]): the CA issues each node's public TLS certificate for
//!    its attested identity key with the operator's public names; the node serves it.

pub mod tls;

use crate::api::admin::ClusterConfig;
use crate::api::admin::{CaRootRequest, CertificateUpload, DkgRequest, DkgResult, Status};
use crate::api::auth::{OperatorKey, HEADER};
use crate::api::bundle::EvidenceBundle;
use crate::attestation::roster::{N, T};
use crate::attestation::{evidence_binding, identity_binding, verify_report, Expected, RootSet};
use crate::certs::DevCa;
use crate::clock::Clock;
use crate::net::client::{request, Call, ClientError, Response};
use crate::threshold::suite::{Ciphersuite, GroupPublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What can go wrong in a ceremony; each names the node concerned.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// Network.
    #[error("node {index} ({addr}): {source}")]
    Client {
        /// Node index.
        index: u16,
        /// Address.
        addr: String,
        /// Cause.
        source: ClientError,
    },
    /// The node answered with an error.
    #[error("node {index}: {what}: HTTP {status}: {body}")]
    Refused {
        /// Node index.
        index: u16,
        /// Which step.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// Attestation failed.
    #[error("node {index}: attestation: {reason}")]
    Attestation {
        /// Node index.
        index: u16,
        /// Why.
        reason: String,
    },
    /// Nodes disagree.
    #[error("{0}")]
    Disagreement(String),
    /// The DKG aborted.
    #[error("key generation aborted: {reason}{}", culprit.map(|c| format!(" (culprit: node {c})")).unwrap_or_default())]
    DkgAborted {
        /// Reason reported by the nodes.
        reason: String,
        /// The node named as culprit.
        culprit: Option<u16>,
    },
    /// Timed out waiting.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

/// One node as the operator addresses it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeTarget {
    /// Index to assign (1..=n).
    pub index: u16,
    /// Public HTTPS `host:port`.
    pub public: String,
    /// Peer `host:port` (what the other nodes dial).
    pub peer: String,
}

/// Facts established by [`verify_bundle`].
#[derive(Debug, Clone)]
pub struct BundleFacts {
    /// Group key (RFC 9591 serialization).
    pub group_key: Vec<u8>,
    /// The group key in its suite.
    pub group: GroupPublicKey,
    /// The measurement.
    pub measurement: [u8; 48],
    /// Number of nodes.
    pub n: usize,
}

fn hex48(s: &str) -> Option<[u8; 48]> {
    hex::decode(s).ok().and_then(|v| v.try_into().ok())
}

/// Check an evidence bundle: every report verifies (chain, signature, policy,
/// TCB), binds (group key, transcript, its index), all agree, indices are
/// exactly 1..=n, and the measurement is one of `accepted`.
pub fn verify_bundle(
    bundle: &EvidenceBundle,
    roots: &RootSet,
    accepted: &[[u8; 48]],
    now: std::time::SystemTime,
) -> Result<BundleFacts, CeremonyError> {
    if bundle.version != 2 {
        return Err(CeremonyError::Invalid(format!(
            "unsupported bundle version {}",
            bundle.version
        )));
    }
    let group_key = hex::decode(&bundle.group_key)
        .map_err(|_| CeremonyError::Invalid("group key is not hex".into()))?;
    let transcript: [u8; 32] = hex::decode(&bundle.transcript)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| CeremonyError::Invalid("transcript is not 32 hex bytes".into()))?;
    let measurement = hex48(&bundle.measurement)
        .ok_or_else(|| CeremonyError::Invalid("measurement is not 48 hex bytes".into()))?;
    if !accepted.contains(&measurement) {
        return Err(CeremonyError::Invalid(format!(
            "measurement {} is not one this CA was told to accept",
            bundle.measurement
        )));
    }
    let group = GroupPublicKey::from_bytes(bundle.ciphersuite, &group_key).ok_or_else(|| {
        CeremonyError::Invalid(format!(
            "group key is not a {} group key",
            bundle.ciphersuite.rfc_name()
        ))
    })?;
    let n = bundle.nodes.len();
    let indices: Vec<u16> = bundle.nodes.iter().map(|r| r.index).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    if sorted.iter().copied().ne(1..=u16::try_from(n).unwrap_or(0)) {
        return Err(CeremonyError::Invalid(format!(
            "node indices {indices:?} are not 1..={n}"
        )));
    }
    // n and t are build constants of the node: any other value is not a frostamp key.
    if bundle.t != T || bundle.n != N || n != usize::from(N) {
        return Err(CeremonyError::Invalid(format!(
            "the bundle says t = {}, n = {} with {n} node results; frostamp keys are exactly {T}-of-{N}",
            bundle.t, bundle.n
        )));
    }
    bundle
        .roster
        .validate()
        .map_err(|e| CeremonyError::Invalid(format!("roster: {e}")))?;
    let roster_hash = bundle.roster.hash();
    for r in &bundle.nodes {
        if r.group_key != bundle.group_key
            || r.ciphersuite != bundle.ciphersuite
            || r.transcript != bundle.transcript
            || r.epoch != bundle.epoch
            || r.roster != bundle.roster
        {
            return Err(CeremonyError::Disagreement(format!(
                "node {} reports another group key, ciphersuite, transcript, epoch or roster",
                r.index
            )));
        }
        let ev = &r.evidence;
        let verified = verify_report(
            &ev.report,
            &ev.vcek,
            &ev.chain_refs(),
            roots,
            &Expected::frostamp(
                measurement,
                evidence_binding(
                    &bundle.ciphersuite.binding_input(&group_key),
                    &transcript,
                    r.index,
                    N,
                    T,
                    &roster_hash,
                ),
            ),
            now,
        )
        .map_err(|e| CeremonyError::Attestation {
            index: r.index,
            reason: e.to_string(),
        })?;
        // The roster entry of each index is the machine whose report attests it.
        let member = bundle.roster.get(r.index).ok_or_else(|| {
            CeremonyError::Invalid(format!("the roster has no index {}", r.index))
        })?;
        if member.chip_id != verified.chip_id || member.tcb != verified.reported_tcb.to_string() {
            return Err(CeremonyError::Disagreement(format!(
                "node {}'s report comes from chip {}… with TCB {}, the roster names {member}",
                r.index,
                hex::encode(verified.chip_id.get(..8).unwrap_or(&[])),
                verified.reported_tcb
            )));
        }
    }
    Ok(BundleFacts {
        group_key,
        group,
        measurement,
        n,
    })
}

/// How far before the moment of issuance a certificate's notBefore is set: nodes check
/// validity against their own clocks (a VM's clock can lag its host's by a second or
/// more), so a certificate must not be "not yet valid" for a node a moment behind the CA.
pub const ISSUANCE_BACKDATE: Duration = Duration::from_secs(300);

/// Issue the TSA certificate for a verified bundle with the development CA.
pub fn issue_for_bundle(
    ca: &DevCa,
    bundle: &EvidenceBundle,
    roots: &RootSet,
    accepted: &[[u8; 48]],
    subject: &str,
    now: std::time::SystemTime,
    lifetime: Duration,
) -> Result<Vec<u8>, CeremonyError> {
    let facts = verify_bundle(bundle, roots, accepted, now)?;
    ca.issue_tsa_certificate(
        &facts.group,
        Some(&facts.measurement),
        subject,
        now.checked_sub(ISSUANCE_BACKDATE).unwrap_or(now),
        lifetime,
        &mut rand_core::OsRng,
    )
    .map_err(|e| CeremonyError::Invalid(format!("issuing: {e}")))
}

/// Issue the TSA certificate from a CSR made by `/admin/csr`: the CSR's FROST
/// signature verifies under its own subject key, its evidence bundle verifies
/// ([`verify_bundle`]) and names that same key and the requested measurement.
pub fn issue_for_csr(
    ca: &DevCa,
    csr_der: &[u8],
    roots: &RootSet,
    accepted: &[[u8; 48]],
    now: std::time::SystemTime,
    lifetime: Duration,
) -> Result<Vec<u8>, CeremonyError> {
    let csr = crate::certs::verify_csr(csr_der)
        .map_err(|e| CeremonyError::Invalid(format!("CSR: {e}")))?;
    let bundle: EvidenceBundle = serde_json::from_slice(&csr.evidence)
        .map_err(|e| CeremonyError::Invalid(format!("CSR evidence bundle: {e}")))?;
    let facts = verify_bundle(&bundle, roots, accepted, now)?;
    if facts.group != csr.group {
        return Err(CeremonyError::Disagreement(
            "the CSR key is not the group key its evidence attests".into(),
        ));
    }
    if facts.measurement != csr.measurement {
        return Err(CeremonyError::Disagreement(
            "the CSR requests another measurement than its evidence attests".into(),
        ));
    }
    ca.issue_tsa_certificate(
        &csr.group,
        Some(&csr.measurement),
        &csr.subject,
        now.checked_sub(ISSUANCE_BACKDATE).unwrap_or(now),
        lifetime,
        &mut rand_core::OsRng,
    )
    .map_err(|e| CeremonyError::Invalid(format!("issuing: {e}")))
}

/// Ask a node to coordinate the threshold signature of this epoch's CSR for the
/// CA whose root certificate (DER) is `ca_root`: the node and every co-signer
/// fix that root and `subject` for the epoch.
pub async fn request_csr(
    node: &PinnedNode,
    operator: &OperatorKey,
    clock: &dyn Clock,
    subject: &str,
    bundle: &EvidenceBundle,
    ca_root: &[u8],
) -> Result<Vec<u8>, CeremonyError> {
    let request = crate::api::admin::CsrRequest {
        subject: subject.to_string(),
        bundle: serde_json::to_string(bundle).map_err(|e| CeremonyError::Invalid(e.to_string()))?,
        ca_root: hex::encode(ca_root),
    };
    let r = admin_json(
        node,
        operator,
        clock,
        ("csr", "/admin/csr"),
        &request,
        Duration::from_secs(30),
    )
    .await?;
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| CeremonyError::Invalid(e.to_string()))?;
    v.get("csr")
        .and_then(|c| c.as_str())
        .and_then(|c| hex::decode(c).ok())
        .ok_or_else(|| CeremonyError::Invalid("malformed CSR answer".into()))
}

/// Attest one node over its public port and return (SPKI SHA-256, measurement).
pub async fn attest_node(
    index: u16,
    addr: &str,
    roots: &RootSet,
    expected_measurement: Option<[u8; 48]>,
    clock: &dyn Clock,
) -> Result<([u8; 32], [u8; 48]), CeremonyError> {
    let (member, measurement) =
        attest_member(index, addr, roots, expected_measurement, clock).await?;
    Ok((member.spki_sha256, measurement))
}

/// [`attest_node`], returning the attested identity as a roster [`Member`] (TLS key,
/// chip, TCB) for `index`.
///
/// [`Member`]: crate::attestation::roster::Member
pub async fn attest_member(
    index: u16,
    addr: &str,
    roots: &RootSet,
    expected_measurement: Option<[u8; 48]>,
    clock: &dyn Clock,
) -> Result<(crate::attestation::roster::Member, [u8; 48]), CeremonyError> {
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let path = format!("/attestation?nonce={}", hex::encode(nonce));
    let resp = request(addr, None, Call::get(&path), Duration::from_secs(20))
        .await
        .map_err(|source| CeremonyError::Client {
            index,
            addr: addr.into(),
            source,
        })?;
    if resp.status != 200 {
        return Err(refused(index, "attestation", &resp));
    }
    let ev: crate::attestation::Evidence =
        serde_json::from_slice(&resp.body).map_err(|e| CeremonyError::Attestation {
            index,
            reason: format!("malformed evidence: {e}"),
        })?;
    let expected = Expected {
        measurement: expected_measurement,
        report_data: Some(identity_binding(&resp.server_spki_der, &nonce)),
        ..Expected::default()
    };
    let verified = verify_report(
        &ev.report,
        &ev.vcek,
        &ev.chain_refs(),
        roots,
        &expected,
        clock.now(),
    )
    .map_err(|e| CeremonyError::Attestation {
        index,
        reason: e.to_string(),
    })?;
    Ok((
        crate::attestation::roster::Member {
            index,
            spki_sha256: resp.server_spki_sha256,
            chip_id: verified.chip_id,
            tcb: verified.reported_tcb.to_string(),
        },
        verified.measurement,
    ))
}

fn refused(index: u16, what: &'static str, r: &Response) -> CeremonyError {
    CeremonyError::Refused {
        index,
        what,
        status: r.status,
        body: String::from_utf8_lossy(&r.body).into_owned(),
    }
}

/// A node after attestation: its TLS key is pinned.
#[derive(Debug, Clone)]
pub struct PinnedNode {
    /// Target.
    pub target: NodeTarget,
    /// SPKI SHA-256 of its TLS key.
    pub pin: [u8; 32],
}

/// A signed lifecycle call to a pinned node.
pub async fn admin(
    node: &PinnedNode,
    operator: &OperatorKey,
    clock: &dyn Clock,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, CeremonyError> {
    let auth = operator.authorize(
        "POST",
        path,
        &body,
        &node.pin,
        clock.now(),
        &mut rand_core::OsRng,
    );
    request(
        &node.target.public,
        Some(node.pin),
        Call::post(path, body)
            .header(HEADER, auth)
            .header("content-type", "application/json"),
        timeout,
    )
    .await
    .map_err(|source| CeremonyError::Client {
        index: node.target.index,
        addr: node.target.public.clone(),
        source,
    })
}

/// [`admin`] with `value` as the JSON body: the answer when the node says 200, else
/// the node's refusal of `what`.
pub(crate) async fn admin_json(
    node: &PinnedNode,
    operator: &OperatorKey,
    clock: &dyn Clock,
    (what, path): (&'static str, &str),
    value: &impl Serialize,
    timeout: Duration,
) -> Result<Response, CeremonyError> {
    let body = serde_json::to_vec(value).map_err(|e| CeremonyError::Invalid(e.to_string()))?;
    let r = admin(node, operator, clock, path, body, timeout).await?;
    if r.status != 200 {
        return Err(refused(node.target.index, what, &r));
    }
    Ok(r)
}

/// [`admin_json`] to each of `nodes` in turn (20 s each); the first refusal or failure
/// ends it.
pub(crate) async fn admin_json_each(
    nodes: &[PinnedNode],
    operator: &OperatorKey,
    clock: &dyn Clock,
    what: (&'static str, &str),
    value: &impl Serialize,
) -> Result<(), CeremonyError> {
    for node in nodes {
        admin_json(node, operator, clock, what, value, Duration::from_secs(20)).await?;
    }
    Ok(())
}

/// Public status of a pinned node.
pub async fn status(node: &PinnedNode) -> Result<Status, CeremonyError> {
    let r = request(
        &node.target.public,
        Some(node.pin),
        Call::get("/status"),
        Duration::from_secs(10),
    )
    .await
    .map_err(|source| CeremonyError::Client {
        index: node.target.index,
        addr: node.target.public.clone(),
        source,
    })?;
    if r.status != 200 {
        return Err(refused(node.target.index, "status", &r));
    }
    serde_json::from_slice(&r.body)
        .map_err(|e| CeremonyError::Invalid(format!("node {} status: {e}", node.target.index)))
}

/// Inputs of [`run`].
pub struct CeremonyOptions {
    /// The nodes, indices 1..=n.
    pub nodes: Vec<NodeTarget>,
    /// Threshold.
    pub t: u16,
    /// Epoch name.
    pub epoch: String,
    /// Operator credential.
    pub operator: Arc<OperatorKey>,
    /// Roots node evidence must chain to.
    pub roots: RootSet,
    /// Required measurement (else: whatever all nodes agree on).
    pub measurement: Option<[u8; 48]>,
    /// The FROST ciphersuite of the new epoch.
    pub ciphersuite: Ciphersuite,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

impl core::fmt::Debug for CeremonyOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CeremonyOptions")
            .field("nodes", &self.nodes)
            .field("t", &self.t)
            .field("epoch", &self.epoch)
            .field("ciphersuite", &self.ciphersuite)
            .finish_non_exhaustive()
    }
}

/// Result of steps 1–4.
#[derive(Debug, Clone)]
pub struct CeremonyOutcome {
    /// The pinned nodes.
    pub nodes: Vec<PinnedNode>,
    /// The evidence bundle for the CA.
    pub bundle: EvidenceBundle,
    /// Step timings in milliseconds: attest, configure, peers, dkg.
    pub timings_ms: BTreeMap<String, u128>,
}

/// Steps 1–4. `progress` receives one line per step.
pub async fn run(
    opts: &CeremonyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<CeremonyOutcome, CeremonyError> {
    let n = opts.nodes.len();
    let mut timings = BTreeMap::new();
    let mut indices: Vec<u16> = opts.nodes.iter().map(|t| t.index).collect();
    indices.sort_unstable();
    if indices
        .iter()
        .copied()
        .ne(1..=u16::try_from(n).unwrap_or(0))
    {
        return Err(CeremonyError::Invalid("node indices must be 1..=n".into()));
    }
    // 1. attestation
    let t0 = Instant::now();
    let mut pinned = Vec::new();
    let mut measurement = opts.measurement;
    for target in &opts.nodes {
        let (pin, m) = attest_node(
            target.index,
            &target.public,
            &opts.roots,
            measurement,
            opts.clock.as_ref(),
        )
        .await?;
        if measurement.is_none() {
            measurement = Some(m);
        }
        progress(&format!(
            "node {} at {}: attested, measurement {}…, TLS key pinned",
            target.index,
            target.public,
            &hex::encode(m)[..16]
        ));
        pinned.push(PinnedNode {
            target: target.clone(),
            pin,
        });
    }
    let measurement = measurement.ok_or_else(|| CeremonyError::Invalid("no nodes".into()))?;
    timings.insert("attest".into(), t0.elapsed().as_millis());

    // 2. configuration
    let t1 = Instant::now();
    let layout: BTreeMap<u16, String> = opts
        .nodes
        .iter()
        .map(|t| (t.index, t.peer.clone()))
        .collect();
    for node in &pinned {
        let cfg = ClusterConfig {
            index: node.target.index,
            t: opts.t,
            nodes: layout.clone(),
        };
        admin_json(
            node,
            &opts.operator,
            opts.clock.as_ref(),
            ("configure", "/admin/configure"),
            &cfg,
            Duration::from_secs(20),
        )
        .await?;
    }
    progress(&format!("configured {n} nodes, threshold {}", opts.t));
    timings.insert("configure".into(), t1.elapsed().as_millis());

    // 3. mutual attestation among peers
    let t2 = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = Vec::new();
        let mut refusals = Vec::new();
        for node in &pinned {
            let s = status(node).await?;
            if s.peers.len() + 1 < n {
                missing.push(node.target.index);
                refusals.extend(
                    s.refusals
                        .into_iter()
                        .map(|r| format!("node {}: {r}", node.target.index)),
                );
            }
        }
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(CeremonyError::Timeout(format!(
                "nodes {missing:?} did not admit all peers; recent refusals: {}",
                if refusals.is_empty() {
                    "none".to_string()
                } else {
                    refusals.join("; ")
                }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress(&format!(
        "all {n} nodes admitted each other (mutual attestation, same measurement)"
    ));
    timings.insert("peers".into(), t2.elapsed().as_millis());

    // 4. DKG on every node at once
    let t3 = Instant::now();
    let body = serde_json::to_vec(&DkgRequest {
        epoch: opts.epoch.clone(),
        n: u16::try_from(n).unwrap_or(u16::MAX),
        t: opts.t,
        ciphersuite: opts.ciphersuite,
        pins: pinned
            .iter()
            .map(|p| (p.target.index, hex::encode(p.pin)))
            .collect(),
    })
    .map_err(|e| CeremonyError::Invalid(e.to_string()))?;
    let mut set = tokio::task::JoinSet::new();
    for node in pinned.clone() {
        let op = opts.operator.clone();
        let clock = opts.clock.clone();
        let body = body.clone();
        set.spawn(async move {
            let r = admin(
                &node,
                &op,
                clock.as_ref(),
                "/admin/dkg",
                body,
                Duration::from_secs(180),
            )
            .await;
            (node.target.index, r)
        });
    }
    let mut results = Vec::new();
    let mut abort: Option<CeremonyError> = None;
    while let Some(joined) = set.join_next().await {
        let (index, r) = joined.map_err(|e| CeremonyError::Invalid(e.to_string()))?;
        match r {
            Ok(resp) if resp.status == 200 => {
                let res: DkgResult = serde_json::from_slice(&resp.body)
                    .map_err(|e| CeremonyError::Invalid(format!("node {index} dkg result: {e}")))?;
                results.push(res);
            }
            Ok(resp) => {
                #[derive(Deserialize)]
                struct Abort {
                    error: String,
                    culprit: Option<u16>,
                }
                let e = match serde_json::from_slice::<Abort>(&resp.body) {
                    Ok(a) => CeremonyError::DkgAborted {
                        reason: format!("node {index}: {}", a.error),
                        culprit: a.culprit,
                    },
                    Err(_) => refused(index, "dkg", &resp),
                };
                // Prefer an abort that names a culprit.
                if abort.as_ref().is_none_or(|prev| {
                    !matches!(
                        prev,
                        CeremonyError::DkgAborted {
                            culprit: Some(_),
                            ..
                        }
                    )
                }) {
                    abort = Some(e);
                }
            }
            Err(e) => {
                abort.get_or_insert(e);
            }
        }
    }
    if let Some(e) = abort {
        return Err(e);
    }
    results.sort_by_key(|r| r.index);
    let first = results
        .first()
        .ok_or_else(|| CeremonyError::Invalid("no results".into()))?;
    let bundle = EvidenceBundle {
        version: 2,
        epoch: opts.epoch.clone(),
        n: u16::try_from(n).unwrap_or(u16::MAX),
        t: opts.t,
        roster: first.roster.clone(),
        group_key: first.group_key.clone(),
        ciphersuite: opts.ciphersuite,
        transcript: first.transcript.clone(),
        measurement: hex::encode(measurement),
        nodes: results,
    };
    for r in &bundle.nodes {
        if r.group_key != bundle.group_key
            || r.ciphersuite != bundle.ciphersuite
            || r.transcript != bundle.transcript
            || r.roster != bundle.roster
        {
            return Err(CeremonyError::Disagreement(format!(
                "node {} reports a different group key, transcript or roster",
                r.index
            )));
        }
    }
    // The roster must name, for every index, the machine this operator attested and
    // pinned in step 1 (no other machine took an index in between).
    for p in &pinned {
        let named = bundle.roster.get(p.target.index).map(|m| m.spki_sha256);
        if named != Some(p.pin) {
            return Err(CeremonyError::Disagreement(format!(
                "the roster gives index {} to identity {}, not to the node attested at {} ({})",
                p.target.index,
                named.map(hex::encode).unwrap_or_else(|| "none".into()),
                p.target.public,
                hex::encode(p.pin)
            )));
        }
    }
    progress(&format!(
        "key generation complete: {} group key {}",
        bundle.ciphersuite.rfc_name(),
        bundle.group_key
    ));
    timings.insert("dkg".into(), t3.elapsed().as_millis());
    Ok(CeremonyOutcome {
        nodes: pinned,
        bundle,
        timings_ms: timings,
    })
}

/// Step 5, after [`request_csr`]: fix the CSR's CA root (DER) and subject on
/// every node; the nodes that signed the CSR already hold them (the same pin
/// again is accepted), a node that holds another one refuses.
pub async fn fix_ca_root(
    nodes: &[PinnedNode],
    operator: &OperatorKey,
    clock: &dyn Clock,
    subject: &str,
    ca_root: &[u8],
) -> Result<(), CeremonyError> {
    let request = CaRootRequest {
        ca_root: hex::encode(ca_root),
        subject: subject.to_string(),
    };
    let what = ("ca-root", "/admin/ca-root");
    admin_json_each(nodes, operator, clock, what, &request).await
}

/// Step 5: upload the chain (leaf first, ending with the CA root fixed with the
/// CSR) to every node.
pub async fn install_chain(
    nodes: &[PinnedNode],
    operator: &OperatorKey,
    clock: &dyn Clock,
    chain: &[Vec<u8>],
) -> Result<(), CeremonyError> {
    let what = ("certificate", "/admin/certificate");
    admin_json_each(nodes, operator, clock, what, &CertificateUpload::of(chain)).await
}

/// Deliver this operator's repair order for `index` (replacement identity `pin`) to every
/// node of `holders` that answers; each must accept it (at least t must, or the repair
/// cannot happen). The roster version is read from each node's status.
pub async fn order_repair(
    holders: &[PinnedNode],
    operator: &OperatorKey,
    clock: &dyn Clock,
    epoch: &str,
    index: u16,
    pin: &[u8; 32],
) -> Result<Vec<u16>, CeremonyError> {
    let mut accepted = Vec::new();
    let mut last_err = None;
    for h in holders.iter().filter(|h| h.target.index != index) {
        let version = match status(h).await {
            Ok(s) => match s.roster {
                Some(r) => r.version,
                None => continue,
            },
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let order = crate::api::admin::RepairOrder {
            epoch: epoch.to_string(),
            index,
            replacement: hex::encode(pin),
            roster_version: version,
        };
        let what = ("repair order", "/admin/repair-order");
        admin_json(h, operator, clock, what, &order, Duration::from_secs(10)).await?;
        accepted.push(h.target.index);
    }
    if accepted.len() < usize::from(T) {
        return Err(last_err.unwrap_or_else(|| {
            CeremonyError::Invalid(format!(
                "only nodes {accepted:?} took the repair order; a repair needs t = {T} helpers"
            ))
        }));
    }
    Ok(accepted)
}

/// What a replacement for `member.index` must end up with, and checks before it uses
/// its share (`/admin/repair`): the group key (hex) the holders serve and their roster
/// with `member` at its index (the version in which the repair order takes effect, or
/// the held one if it already did). Every holder asked must agree.
pub async fn repair_expectation(
    holders: &[PinnedNode],
    member: &crate::attestation::roster::Member,
) -> Result<(String, [u8; 32]), CeremonyError> {
    let mut expected: Option<(String, [u8; 32])> = None;
    for h in holders {
        let st = status(h).await?;
        let (Some(roster), Some(group_key)) = (st.roster, st.group_key) else {
            return Err(CeremonyError::Invalid(format!(
                "node {} holds no roster or group key",
                h.target.index
            )));
        };
        let next = if roster.get(member.index).map(|m| m.spki_sha256) == Some(member.spki_sha256) {
            roster
        } else {
            roster
                .replaced(member.clone())
                .map_err(|e| CeremonyError::Invalid(format!("roster: {e}")))?
        };
        let this = (group_key, next.hash());
        match &expected {
            None => expected = Some(this),
            Some(e) if *e == this => {}
            Some(_) => {
                return Err(CeremonyError::Invalid(format!(
                    "holders disagree on the group key or roster (node {})",
                    h.target.index
                )))
            }
        }
    }
    expected.ok_or_else(|| CeremonyError::Invalid("no share holder to ask".into()))
}

/// What a repair needs to know about the cluster.
#[derive(Clone, Copy, Debug)]
pub struct RepairPlan<'a> {
    /// The replacement, on the lost node's addresses.
    pub target: &'a NodeTarget,
    /// The nodes still holding shares, pinned: each gets this operator's repair order.
    pub holders: &'a [PinnedNode],
    /// Its configuration (index and the peer list).
    pub cluster: &'a ClusterConfig,
    /// The key epoch.
    pub epoch: &'a str,
    /// t share holders that compute the repair.
    pub helpers: &'a [u16],
}

/// Give a replacement node the lost share of `target.index` (DESIGN §2.7):
/// attest it (the measurement must be `measurement`), configure it with the
/// cluster's peer list, and ask it to run the repair with `helpers` (t share
/// holders). The node itself checks the repaired share against the group's
/// verifying share before it signs. Returns the replacement, pinned.
pub async fn repair(
    plan: &RepairPlan<'_>,
    roots: &RootSet,
    measurement: [u8; 48],
    operator: &OperatorKey,
    clock: &dyn Clock,
) -> Result<PinnedNode, CeremonyError> {
    let RepairPlan {
        target,
        holders,
        cluster,
        epoch,
        helpers,
    } = *plan;
    let (member, _) = attest_member(
        target.index,
        &target.public,
        roots,
        Some(measurement),
        clock,
    )
    .await?;
    let pin = member.spki_sha256;
    let node = PinnedNode {
        target: target.clone(),
        pin,
    };
    let accepted = order_repair(holders, operator, clock, epoch, target.index, &pin).await?;
    let holding: Vec<PinnedNode> = holders
        .iter()
        .filter(|h| accepted.contains(&h.target.index))
        .cloned()
        .collect();
    let (group_key, roster_hash) = repair_expectation(&holding, &member).await?;
    let steps: [(&'static str, &str, Vec<u8>, Duration); 2] = [
        (
            "configure",
            "/admin/configure",
            serde_json::to_vec(cluster).map_err(|e| CeremonyError::Invalid(e.to_string()))?,
            Duration::from_secs(10),
        ),
        (
            "repair",
            "/admin/repair",
            serde_json::to_vec(&crate::api::admin::RepairRequest {
                epoch: epoch.to_string(),
                helpers: helpers.to_vec(),
                group_key,
                roster_hash: hex::encode(roster_hash),
            })
            .map_err(|e| CeremonyError::Invalid(e.to_string()))?,
            Duration::from_secs(60),
        ),
    ];
    for (what, path, body, timeout) in steps {
        let r = admin(&node, operator, clock, path, body, timeout).await?;
        if r.status != 200 {
            return Err(CeremonyError::Refused {
                index: target.index,
                what,
                status: r.status,
                body: String::from_utf8_lossy(&r.body).into_owned(),
            });
        }
    }
    Ok(node)
}
