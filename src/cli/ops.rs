//! Operator commands: credentials, the development CA, the ceremony, and the
//! local five-process cluster with its local time servers ([`local_time`]).

pub mod files;
pub mod local_time;
use files::{gone_within, read_to_string, runs_with_arg};
pub use files::{ClusterFile, ClusterNode, ClusterTimeServer};
pub use local_time::{
    parse_time_offsets, roughenough_binary, start_local_time_servers, time_server_start,
    time_server_stop, PREVIOUS_TIME_CONFIG_FILE, TIME_CONFIG_FILE,
};

use crate::api::auth::OperatorKey;
use crate::api::bundle::EvidenceBundle;
use crate::attestation::RootSet;
use crate::ceremony::{self, CeremonyOptions, NodeTarget, PinnedNode};
use crate::certs::tls::PublicNames;
use crate::certs::DevCa;
use crate::clock::{Clock, SystemClock};
use crate::threshold::suite::Ciphersuite;
use crate::x509::parse_certificates;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Write a secret file readable by the owner only.
fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

/// `frostamp operator init`.
pub fn operator_init(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let key_path = dir.join("operator.key");
    if key_path.exists() {
        bail!(
            "{} exists; refusing to overwrite an operator key",
            key_path.display()
        );
    }
    let key = OperatorKey::generate(&mut rand_core::OsRng);
    write_secret(&key_path, key.to_pem().map_err(|e| anyhow!(e))?.as_bytes())?;
    let public = key.public_hex().map_err(|e| anyhow!(e))?;
    std::fs::write(dir.join("operator.pub"), format!("{public}\n"))?;
    Ok(public)
}

/// Load the operator key.
pub fn load_operator(path: &Path) -> Result<OperatorKey> {
    OperatorKey::from_pem(&read_to_string(path, "operator key")?).map_err(|e| anyhow!(e))
}

/// `frostamp ca init`.
pub fn ca_init(dir: &Path, subject: &str) -> Result<DevCa> {
    std::fs::create_dir_all(dir)?;
    if dir.join("ca.key").exists() {
        bail!(
            "{} exists; refusing to overwrite a CA key",
            dir.join("ca.key").display()
        );
    }
    let now = SystemClock.now();
    let ca = DevCa::generate(
        subject,
        now - Duration::from_secs(3600),
        Duration::from_secs(10 * 365 * 86400),
        &mut rand_core::OsRng,
    )?;
    write_secret(&dir.join("ca.key"), ca.key_pem()?.as_bytes())?;
    std::fs::write(dir.join("ca.pem"), ca.certificate_pem()?)?;
    Ok(ca)
}

/// Load the development CA from `dir` (with its CRL URL, if `ca.json` names one).
pub fn ca_load(dir: &Path) -> Result<DevCa> {
    let mut ca = DevCa::from_pem(
        &read_to_string(&dir.join("ca.pem"), "CA certificate")?,
        &read_to_string(&dir.join("ca.key"), "CA key")?,
    )?;
    ca.set_crl_url(ca_state(dir)?.crl_url);
    Ok(ca)
}

/// The development CA's revocation state, `DIR/ca.json` (absent: no URL, nothing revoked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaState {
    /// The CRL distribution point named in the certificates it issues.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The cRLNumber of the last CRL issued.
    #[serde(default)]
    pub crl_number: u64,
    /// Revoked certificates.
    #[serde(default)]
    pub revoked: Vec<RevokedEntry>,
}

/// One revoked certificate in `ca.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedEntry {
    /// Serial number (hex of the INTEGER's content octets).
    pub serial: String,
    /// Revocation time (Unix seconds).
    pub revoked_at: u64,
    /// Reason (RFC 5280 name, e.g. keyCompromise), if given.
    pub reason: Option<String>,
}

fn ca_state(dir: &Path) -> Result<CaState> {
    let p = dir.join("ca.json");
    if !p.exists() {
        return Ok(CaState::default());
    }
    serde_json::from_str(&read_to_string(&p, "CA state")?)
        .with_context(|| format!("in {}", p.display()))
}

fn save_ca_state(dir: &Path, st: &CaState) -> Result<()> {
    std::fs::write(dir.join("ca.json"), serde_json::to_vec_pretty(st)?)?;
    Ok(())
}

/// `frostamp ca init --crl-url URL`: record the URL for the certificates it issues.
pub fn ca_set_crl_url(dir: &Path, url: &str) -> Result<()> {
    if !url.starts_with("http://") {
        bail!("--crl-url must be an http:// URL (RFC 5280 §4.2.1.13: CRLs over HTTP)");
    }
    let mut st = ca_state(dir)?;
    st.crl_url = Some(url.to_string());
    save_ca_state(dir, &st)
}

fn crl_reason(name: &str) -> Result<x509_cert::ext::pkix::CrlReason> {
    use x509_cert::ext::pkix::CrlReason as R;
    Ok(match name {
        "unspecified" => R::Unspecified,
        "keyCompromise" => R::KeyCompromise,
        "cACompromise" | "caCompromise" => R::CaCompromise,
        "affiliationChanged" => R::AffiliationChanged,
        "superseded" => R::Superseded,
        "cessationOfOperation" => R::CessationOfOperation,
        other => bail!("unknown reason {other:?}: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded or cessationOfOperation"),
    })
}

/// `frostamp ca revoke`: record a serial (hex), or the serial of a certificate this CA
/// issued, as revoked now.
pub fn ca_revoke(
    dir: &Path,
    serial: Option<&str>,
    cert: Option<&Path>,
    reason: Option<&str>,
) -> Result<String> {
    let ca = ca_load(dir)?;
    let serial = match (serial, cert) {
        (Some(h), None) => {
            let b = hex::decode(h.trim()).context("--serial is not hex")?;
            hex::encode(b)
        }
        (None, Some(p)) => {
            let c = parse_certificates(
                &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{} holds no certificate", p.display()))?;
            if c.cert.tbs_certificate.issuer != ca.certificate().tbs_certificate.subject {
                bail!(
                    "{} was not issued by this CA ('{}')",
                    p.display(),
                    c.cert.tbs_certificate.issuer
                );
            }
            hex::encode(c.cert.tbs_certificate.serial_number.as_bytes())
        }
        _ => bail!("give --serial HEX or --cert FILE"),
    };
    if let Some(r) = reason {
        crl_reason(r)?;
    }
    let mut st = ca_state(dir)?;
    if !st.revoked.iter().any(|r| r.serial == serial) {
        st.revoked.push(RevokedEntry {
            serial: serial.clone(),
            revoked_at: SystemClock
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            reason: reason.map(str::to_string),
        });
    }
    save_ca_state(dir, &st)?;
    Ok(serial)
}

/// `frostamp ca crl`: issue the next CRL (DER, or PEM with `pem`), valid for `days`.
pub fn ca_crl(dir: &Path, out: &Path, days: u64, pem: bool) -> Result<u64> {
    let ca = ca_load(dir)?;
    let mut st = ca_state(dir)?;
    let revoked = st
        .revoked
        .iter()
        .map(|r| {
            Ok(crate::certs::crl::Revoked {
                serial: hex::decode(&r.serial).context("ca.json: serial")?,
                at: std::time::UNIX_EPOCH + Duration::from_secs(r.revoked_at),
                reason: r.reason.as_deref().map(crl_reason).transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    st.crl_number += 1;
    let now = SystemClock.now();
    let this_update = now.checked_sub(ceremony::ISSUANCE_BACKDATE).unwrap_or(now);
    let der = ca.issue_crl(
        &revoked,
        st.crl_number,
        this_update,
        now + Duration::from_secs(days * 86400),
    )?;
    let bytes = if pem {
        der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der)
            .map_err(|e| anyhow!(e))?
            .into_bytes()
    } else {
        der
    };
    std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    save_ca_state(dir, &st)?;
    Ok(st.crl_number)
}

/// The roots node evidence must chain to: AMD, or a development ARK when explicitly allowed.
pub fn roots(allow_insecure_dev_root: Option<&Path>) -> Result<RootSet> {
    match allow_insecure_dev_root {
        None => Ok(RootSet::amd()),
        #[cfg(feature = "insecure-dev-attestation")]
        Some(p) => {
            let certs = parse_certificates(&std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)?;
            let ark = certs.first().ok_or_else(|| anyhow!("{} holds no certificate", p.display()))?;
            eprintln!("warning: accepting INSECURE development attestation rooted in {}", p.display());
            Ok(RootSet::danger_with_insecure_dev_root(&ark.der))
        }
        #[cfg(not(feature = "insecure-dev-attestation"))]
        Some(_) => bail!("this frostamp was built without development attestation support (feature insecure-dev-attestation)"),
    }
}

/// Parse a 48-byte measurement from hex or from a `measurements/*.json` file
/// (any string field named `measurement` or `launch_digest` at any depth).
pub fn accepted_measurements(hexes: &[String], files: &[PathBuf]) -> Result<Vec<[u8; 48]>> {
    let mut out = Vec::new();
    for h in hexes {
        out.push(
            hex::decode(h.trim())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| anyhow!("measurement {h:?} is not 96 hex digits"))?,
        );
    }
    for f in files {
        let found = measurements_in_json(&read_to_string(f, "measurements file")?)?;
        if found.is_empty() {
            bail!("{} names no measurement", f.display());
        }
        out.extend(found);
    }
    if out.is_empty() {
        bail!("tell the CA which measurement to accept: --measurement HEX or --measurements FILE");
    }
    Ok(out)
}

/// The measurements a `measurements/*.json` file names: every string field named
/// `measurement` or `launch_digest`, at any depth, that is 96 hex digits (what the CA
/// reads with `--measurements FILE`; fuzz target `measurements`).
pub fn measurements_in_json(text: &str) -> Result<Vec<[u8; 48]>, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let mut found = Vec::new();
    collect_measurements(&v, &mut found);
    Ok(found)
}

fn collect_measurements(v: &serde_json::Value, out: &mut Vec<[u8; 48]>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "measurement" || k == "launch_digest" {
                    if let Some(b) = x
                        .as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .and_then(|v| v.try_into().ok())
                    {
                        out.push(b);
                    }
                }
                collect_measurements(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_measurements(x, out)),
        _ => {}
    }
}

/// What `frostamp ca issue` works from.
#[derive(Debug)]
pub enum IssueInput<'a> {
    /// An evidence bundle (development CA run by the operator).
    Bundle(&'a Path),
    /// A threshold-signed CSR carrying the bundle (any CA).
    Csr(&'a Path),
}

/// `frostamp ca issue`.
pub fn ca_issue(
    ca_dir: &Path,
    input: IssueInput<'_>,
    accepted: &[[u8; 48]],
    roots: &RootSet,
    subject: &str,
    out: &Path,
) -> Result<()> {
    let ca = ca_load(ca_dir)?;
    let lifetime = Duration::from_secs(365 * 86400);
    let cert = match input {
        IssueInput::Bundle(p) => {
            let bundle: EvidenceBundle =
                serde_json::from_str(&read_to_string(p, "evidence bundle")?)
                    .context("evidence bundle")?;
            ceremony::issue_for_bundle(
                &ca,
                &bundle,
                roots,
                accepted,
                subject,
                SystemClock.now(),
                lifetime,
            )?
        }
        IssueInput::Csr(p) => {
            let text = read_to_string(p, "CSR")?;
            let (label, der) =
                der::pem::decode_vec(text.as_bytes()).map_err(|e| anyhow!("CSR PEM: {e}"))?;
            if label != "CERTIFICATE REQUEST" {
                bail!("{} is a {label}, not a CERTIFICATE REQUEST", p.display());
            }
            ceremony::issue_for_csr(&ca, &der, roots, accepted, SystemClock.now(), lifetime)?
        }
    };
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert)
        .map_err(|e| anyhow!(e))?;
    std::fs::write(out, format!("{pem}{}", ca.certificate_pem()?))?;
    Ok(())
}

/// Options of [`run_ceremony`].
#[derive(Debug)]
pub struct CeremonyArgs<'a> {
    /// Nodes.
    pub nodes: Vec<NodeTarget>,
    /// Threshold.
    pub t: u16,
    /// Epoch name.
    pub epoch: String,
    /// The FROST ciphersuite of the epoch.
    pub ciphersuite: Ciphersuite,
    /// Operator key file.
    pub operator_key: &'a Path,
    /// Dev ARK to accept, if any.
    pub insecure_dev_root: Option<&'a Path>,
    /// Required measurements (the first is enforced on the nodes; the CA accepts any).
    pub measurements: Vec<[u8; 48]>,
    /// Development CA directory (issue and upload the certificate), else write the CSR only.
    pub ca_dir: Option<&'a Path>,
    /// Without `ca_dir`: the root certificate (PEM or DER) of the external CA
    /// that will issue; the CSR fixes it on the nodes.
    pub ca_root: Option<&'a Path>,
    /// Where to write evidence.json, chain.pem and cluster.json.
    pub state_dir: &'a Path,
    /// Local time servers to record in cluster.json (`cluster up`), else empty.
    pub time_servers: Vec<ClusterTimeServer>,
    /// Public names and addresses of each node's TLS certificate, by index.
    pub public_names: BTreeMap<u16, PublicNames>,
}

/// Step 5 with the CA root `root_der`: the first node makes the threshold-signed CSR
/// (TSA subject), then every node fixes that CA root and subject.
async fn csr_fixing_root(
    outcome: &ceremony::CeremonyOutcome,
    operator: &OperatorKey,
    root_der: &[u8],
) -> Result<Vec<u8>> {
    let first = outcome.nodes.first().ok_or_else(|| anyhow!("no nodes"))?;
    let csr = ceremony::request_csr(
        first,
        operator,
        &SystemClock,
        TSA_SUBJECT,
        &outcome.bundle,
        root_der,
    )
    .await?;
    ceremony::fix_ca_root(
        &outcome.nodes,
        operator,
        &SystemClock,
        TSA_SUBJECT,
        root_der,
    )
    .await?;
    Ok(csr)
}

/// Subject of the TSA certificate the ceremony requests.
const TSA_SUBJECT: &str = "CN=frostamp TSA,O=frostamp";

/// `frostamp ceremony`: steps 1–5 with progress and timings; returns the cluster file.
pub async fn run_ceremony(
    a: CeremonyArgs<'_>,
    pids: &[(u16, u32, PathBuf)],
) -> Result<ClusterFile> {
    if a.ca_dir.is_none() && a.ca_root.is_none() {
        bail!("give --ca-dir (development CA) or --ca-root (root certificate of the CA that will issue): the CSR fixes the CA root on the nodes");
    }
    std::fs::create_dir_all(a.state_dir)?;
    let operator = Arc::new(load_operator(a.operator_key)?);
    let roots = roots(a.insecure_dev_root)?;
    let started = Instant::now();
    let opts = CeremonyOptions {
        nodes: a.nodes.clone(),
        t: a.t,
        epoch: a.epoch.clone(),
        operator: operator.clone(),
        roots: roots.clone(),
        measurement: a.measurements.first().copied(),
        ciphersuite: a.ciphersuite,
        clock: Arc::new(SystemClock),
    };
    let step = |l: &str| println!("  [{:>6} ms] {l}", started.elapsed().as_millis());
    let outcome = ceremony::run(&opts, &step).await?;
    let bundle_path = a.state_dir.join("evidence.json");
    std::fs::write(&bundle_path, serde_json::to_vec_pretty(&outcome.bundle)?)?;
    step(&format!(
        "evidence bundle written to {}",
        bundle_path.display()
    ));
    let mut timings = outcome.timings_ms.clone();
    let mut file = ClusterFile {
        version: 1,
        nodes: outcome
            .nodes
            .iter()
            .map(|n| {
                let proc_info = pids.iter().find(|(i, _, _)| *i == n.target.index);
                ClusterNode {
                    index: n.target.index,
                    url: format!("https://{}", n.target.public),
                    public: n.target.public.clone(),
                    peer: n.target.peer.clone(),
                    pin: Some(hex::encode(n.pin)),
                    pid: proc_info.map(|p| p.1),
                    log: proc_info.map(|p| p.2.clone()),
                    phase: Some("awaiting_certificate".into()),
                    tls_names: a.public_names.get(&n.target.index).cloned(),
                }
            })
            .collect(),
        t: a.t,
        epoch: a.epoch.clone(),
        group_key: Some(outcome.bundle.group_key.clone()),
        ciphersuite: outcome.bundle.ciphersuite,
        measurement: Some(outcome.bundle.measurement.clone()),
        root: None,
        chain: None,
        insecure_dev_root: a.insecure_dev_root.map(Path::to_path_buf),
        operator_key: a.operator_key.to_path_buf(),
        timings_ms: timings.clone(),
        time_servers: a.time_servers.clone(),
        ca_dir: a.ca_dir.map(Path::to_path_buf),
    };
    match a.ca_dir {
        Some(ca_dir) => {
            let t = Instant::now();
            let ca = ca_load(ca_dir)?;
            let accepted = if a.measurements.is_empty() {
                bail!("the CA needs the measurement(s) to accept");
            } else {
                a.measurements.clone()
            };
            let root_der = ca.certificate_der()?;
            let csr = csr_fixing_root(&outcome, &operator, &root_der).await?;
            step("threshold-signed CSR made; every node fixed the CA root and subject for this epoch");
            let cert = ceremony::issue_for_csr(
                &ca,
                &csr,
                &roots,
                &accepted,
                SystemClock.now(),
                Duration::from_secs(365 * 86400),
            )?;
            step("CA verified every report and issued the TSA certificate (group key, EKU timeStamping critical, launch measurement)");
            let chain = vec![cert.clone(), root_der];
            ceremony::install_chain(&outcome.nodes, &operator, &SystemClock, &chain).await?;
            step(&format!(
                "certificate installed on all {} nodes (each verified the chain to the fixed CA root, subject, key, measurement, validity)",
                outcome.nodes.len()
            ));
            timings.insert("certificate".into(), t.elapsed().as_millis());
            let chain_pem = a.state_dir.join("chain.pem");
            let leaf = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert)
                .map_err(|e| anyhow!(e))?;
            std::fs::write(&chain_pem, format!("{leaf}{}", ca.certificate_pem()?))?;
            let root = a.state_dir.join("root.pem");
            std::fs::write(&root, ca.certificate_pem()?)?;
            file.root = Some(root);
            file.chain = Some(chain_pem);
            for n in &mut file.nodes {
                n.phase = Some("serving".into());
            }
            let t = Instant::now();
            certify_tls(&file, a.state_dir, &outcome.nodes, &operator, &step).await?;
            timings.insert("tls".into(), t.elapsed().as_millis());
        }
        None => {
            let root_path = a.ca_root.ok_or_else(|| {
                anyhow!("give --ca-dir (development CA) or --ca-root (root certificate of the CA that will issue): the CSR fixes the CA root on the nodes")
            })?;
            let root = parse_certificates(
                &std::fs::read(root_path)
                    .with_context(|| format!("cannot read {}", root_path.display()))?,
            )?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{} holds no certificate", root_path.display()))?;
            let csr = csr_fixing_root(&outcome, &operator, &root.der).await?;
            file.root = Some(root_path.to_path_buf());
            let pem =
                der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &csr)
                    .map_err(|e| anyhow!(e))?;
            let path = a.state_dir.join("request.csr");
            std::fs::write(&path, pem)?;
            step(&format!(
                "threshold-signed CSR (group key, launch measurement, evidence) written to {}; after your CA issues, run `frostamp ceremony install --chain CHAIN.pem`",
                path.display()
            ));
            certify_tls(&file, a.state_dir, &outcome.nodes, &operator, &step).await?;
        }
    }
    timings.insert("total".into(), started.elapsed().as_millis());
    file.timings_ms = timings;
    let path = a.state_dir.join("cluster.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    println!(
        "ceremony complete in {} ms; cluster description: {}",
        started.elapsed().as_millis(),
        path.display()
    );
    Ok(file)
}

/// `frostamp ceremony install`: upload a chain from an external CA to the nodes in `cluster.json`.
pub async fn install(state_dir: &Path, chain: &Path) -> Result<()> {
    let mut file: ClusterFile = serde_json::from_str(&read_to_string(
        &state_dir.join("cluster.json"),
        "cluster description",
    )?)?;
    let operator = load_operator(&file.operator_key)?;
    let certs = parse_certificates(
        &std::fs::read(chain).with_context(|| format!("cannot read {}", chain.display()))?,
    )?;
    if certs.is_empty() {
        bail!("{} holds no certificates", chain.display());
    }
    let mut ders: Vec<Vec<u8>> = certs.iter().map(|c| c.der.clone()).collect();
    // The nodes verify the chain up to the CA root the CSR fixed: append it if
    // the file stops below it.
    if let Some(root) = &file.root {
        let root = parse_certificates(
            &std::fs::read(root).with_context(|| format!("cannot read {}", root.display()))?,
        )?;
        if let Some(r) = root.first() {
            if !ders.contains(&r.der) {
                ders.push(r.der.clone());
            }
        }
    }
    ceremony::install_chain(&pinned(&file)?, &operator, &SystemClock, &ders).await?;
    file.chain = Some(chain.to_path_buf());
    for n in &mut file.nodes {
        n.phase = Some("serving".into());
    }
    std::fs::write(
        state_dir.join("cluster.json"),
        serde_json::to_vec_pretty(&file)?,
    )?;
    println!("certificate installed on {} nodes", file.nodes.len());
    Ok(())
}

/// `frostamp ceremony repair`: a replacement booted on node `index`'s addresses
/// receives the lost share from `helpers` (default: the first t other nodes that
/// serve this epoch's key); cluster.json records its new pin.
pub async fn repair(state_dir: &Path, index: u16, helpers: Option<Vec<u16>>) -> Result<()> {
    let path = state_dir.join("cluster.json");
    let mut file: ClusterFile =
        serde_json::from_str(&read_to_string(&path, "cluster description")?)?;
    let operator = load_operator(&file.operator_key)?;
    let roots = roots(file.insecure_dev_root.as_deref())?;
    let measurement: [u8; 48] = file
        .measurement
        .as_deref()
        .and_then(|m| hex::decode(m).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| anyhow!("cluster.json records no launch measurement"))?;
    let lost = file
        .nodes
        .iter()
        .find(|n| n.index == index)
        .ok_or_else(|| anyhow!("cluster.json has no node {index}"))?;
    let target = NodeTarget {
        index,
        public: lost.public.clone(),
        peer: lost.peer.clone(),
    };
    let helpers = match helpers {
        Some(h) => h,
        None => {
            let mut found = Vec::new();
            for n in pinned(&file)?
                .into_iter()
                .filter(|n| n.target.index != index)
            {
                if found.len() == usize::from(file.t) {
                    break;
                }
                if let Ok(s) = ceremony::status(&n).await {
                    if s.epoch.as_deref() == Some(file.epoch.as_str())
                        && s.group_key == file.group_key
                    {
                        found.push(n.target.index);
                    }
                }
            }
            found
        }
    };
    if helpers.len() < usize::from(file.t) {
        bail!(
            "only {} share holders answer ({helpers:?}); a repair needs t = {}: with fewer the key is lost, run a new ceremony",
            helpers.len(),
            file.t
        );
    }
    let cluster = crate::api::admin::ClusterConfig {
        index,
        t: file.t,
        nodes: file
            .nodes
            .iter()
            .map(|n| (n.index, n.peer.clone()))
            .collect(),
    };
    eprintln!(
        "attesting the replacement for node {index} at {} ...",
        target.public
    );
    let holders: Vec<ceremony::PinnedNode> = pinned(&file)?
        .into_iter()
        .filter(|n| n.target.index != index)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let plan = ceremony::RepairPlan {
            target: &target,
            holders: &holders,
            cluster: &cluster,
            epoch: &file.epoch,
            helpers: &helpers,
        };
        match ceremony::repair(&plan, &roots, measurement, &operator, &SystemClock).await {
            Ok(node) => break node,
            // The replacement may still be booting.
            Err(ceremony::CeremonyError::Client { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(e.into()),
        }
    };
    for n in &mut file.nodes {
        if n.index == index {
            n.pin = Some(hex::encode(node.pin));
            n.pid = None;
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    println!("node {index}: share repaired by nodes {helpers:?}; it serves again under the same certificate");
    certify_tls(&file, state_dir, &[node], &operator, &|l: &str| {
        println!("{l}")
    })
    .await?;
    Ok(())
}

/// The names of a local cluster node's TLS certificate: `localhost` and `127.0.0.1`.
pub fn local_public_names() -> PublicNames {
    PublicNames {
        dns: vec!["localhost".into()],
        ips: vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
    }
}

/// The names of a node's TLS certificate when the operator gives none: the host of
/// the public address the operator reaches it at (an IP address or a DNS name).
pub fn default_public_names(public: &str) -> PublicNames {
    let host = public
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(public)
        .trim_start_matches('[')
        .trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => PublicNames {
            dns: Vec::new(),
            ips: vec![ip],
        },
        Err(_) => PublicNames {
            dns: vec![host.to_string()],
            ips: Vec::new(),
        },
    }
}

/// Step 6, public TLS, for `nodes` of `file`: with the development CA of
/// `file.ca_dir`, each node's request is checked against its pin, issued and
/// installed; without it, the requests are written to STATE_DIR/tls-node<i>.csr for
/// the operator's CA (then `frostamp ceremony install-tls`).
pub async fn certify_tls(
    file: &ClusterFile,
    state_dir: &Path,
    nodes: &[PinnedNode],
    operator: &OperatorKey,
    step: &dyn Fn(&str),
) -> Result<()> {
    let ca = file.ca_dir.as_deref().map(ca_load).transpose()?;
    for node in nodes {
        let index = node.target.index;
        let names = file
            .nodes
            .iter()
            .find(|n| n.index == index)
            .and_then(|n| n.tls_names.clone())
            .unwrap_or_else(|| default_public_names(&node.target.public));
        match &ca {
            Some(ca) => {
                ceremony::tls::certify_with_dev_ca(ca, node, &names, operator, &SystemClock)
                    .await?;
                step(&format!(
                    "node {index}: public TLS certificate for its attested key ({names}) issued by the CA and installed"
                ));
            }
            None => {
                let (der, _) =
                    ceremony::tls::request_tls_csr(node, operator, &SystemClock, &names).await?;
                let pem =
                    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der)
                        .map_err(|e| anyhow!(e))?;
                let path = state_dir.join(format!("tls-node{index}.csr"));
                std::fs::write(&path, pem)?;
                step(&format!(
                    "node {index}: TLS certificate request for its attested key ({names}) written to {}; after your CA issues, run `frostamp ceremony install-tls CHAIN.pem`",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// `frostamp ceremony tls`: (re)issue the public TLS certificates of the nodes of
/// cluster.json (all, or `index`) as [`certify_tls`] does.
pub async fn renew_tls(state_dir: &Path, index: Option<u16>) -> Result<()> {
    let file: ClusterFile = serde_json::from_str(&read_to_string(
        &state_dir.join("cluster.json"),
        "cluster description",
    )?)?;
    let operator = load_operator(&file.operator_key)?;
    let nodes: Vec<PinnedNode> = pinned(&file)?
        .into_iter()
        .filter(|n| index.is_none_or(|i| i == n.target.index))
        .collect();
    if nodes.is_empty() {
        bail!("cluster.json has no node {}", index.unwrap_or_default());
    }
    certify_tls(&file, state_dir, &nodes, &operator, &|l: &str| {
        println!("{l}")
    })
    .await
}

/// `frostamp ceremony install-tls`: upload CA-issued TLS chains (PEM, leaf first); each
/// goes to the node of cluster.json whose pinned identity its leaf certifies.
pub async fn install_tls(state_dir: &Path, chains: &[PathBuf]) -> Result<()> {
    let file: ClusterFile = serde_json::from_str(&read_to_string(
        &state_dir.join("cluster.json"),
        "cluster description",
    )?)?;
    let operator = load_operator(&file.operator_key)?;
    let nodes = pinned(&file)?;
    for path in chains {
        let certs = parse_certificates(
            &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        )?;
        let leaf = certs
            .first()
            .ok_or_else(|| anyhow!("{} holds no certificate", path.display()))?;
        let key = crate::net::tls::spki_sha256_of_cert(&leaf.der)
            .ok_or_else(|| anyhow!("{}: malformed certificate", path.display()))?;
        let node = nodes.iter().find(|n| n.pin == key).ok_or_else(|| {
            anyhow!(
                "{}: its key {} is no node's attested identity in cluster.json",
                path.display(),
                hex::encode(key)
            )
        })?;
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.der.clone()).collect();
        ceremony::tls::install_tls_chain(node, &operator, &SystemClock, &ders).await?;
        println!(
            "node {}: serves the TLS certificate of {}",
            node.target.index,
            path.display()
        );
    }
    Ok(())
}

fn pinned(file: &ClusterFile) -> Result<Vec<PinnedNode>> {
    file.nodes
        .iter()
        .map(|n| {
            let pin: [u8; 32] = n
                .pin
                .as_deref()
                .and_then(|p| hex::decode(p).ok())
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    anyhow!("node {} has no pinned identity in cluster.json", n.index)
                })?;
            Ok(PinnedNode {
                target: NodeTarget {
                    index: n.index,
                    public: n.public.clone(),
                    peer: n.peer.clone(),
                },
                pin,
            })
        })
        .collect()
}

/// SHA-384 of a file: the development measurement of a node binary.
pub fn file_measurement(path: &Path) -> Result<[u8; 48]> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha2::Sha384::digest(&bytes).into())
}

#[cfg(feature = "insecure-dev-attestation")]
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `frostamp cluster up` without development attestation support.
#[cfg(not(feature = "insecure-dev-attestation"))]
pub async fn cluster_up(
    _dir: &Path,
    _n: u16,
    _t: u16,
    _node_bin: &Path,
    _time_offsets: &[i16],
    _ciphersuite: Ciphersuite,
) -> Result<ClusterFile> {
    bail!("the local cluster uses development attestation: build with `--features insecure-dev-attestation` (make demo does)")
}

/// Profiling knob of the local cluster (never read by a node): with
/// `FROSTAMP_NODE_WRAPPER="I:PROGRAM ARGS..."`, node I is started as
/// `PROGRAM ARGS... NODE_BIN NODE_ARGS...` (e.g. under `valgrind --tool=callgrind`,
/// `scripts/callgrind-breakdown.sh`). Words are split on whitespace.
#[cfg(feature = "insecure-dev-attestation")]
fn node_wrapper(index: u16) -> Option<Vec<String>> {
    let spec = std::env::var("FROSTAMP_NODE_WRAPPER").ok()?;
    let (which, command) = spec.split_once(':')?;
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    (which.trim().parse::<u16>().ok()? == index && !words.is_empty()).then_some(words)
}

/// `frostamp cluster up`: three local Roughtime servers (`time_offsets[i]` seconds off,
/// see [`local_time`]), five local node processes with development attestation that ask
/// them (`--time-servers DIR/time-servers.json`), a development CA and operator key, and
/// the full ceremony.
#[cfg(feature = "insecure-dev-attestation")]
pub async fn cluster_up(
    dir: &Path,
    n: u16,
    t: u16,
    node_bin: &Path,
    time_offsets: &[i16],
    ciphersuite: Ciphersuite,
) -> Result<ClusterFile> {
    if dir.join("cluster.json").exists() {
        bail!(
            "{} already describes a cluster; run `frostamp cluster down --dir {}` first",
            dir.join("cluster.json").display(),
            dir.display()
        );
    }
    if !node_bin.exists() {
        bail!("node binary {} not found (build it with `cargo build --release --features insecure-dev-attestation`)", node_bin.display());
    }
    if time_offsets.len() != local_time::LOCAL_TIME_SERVERS {
        bail!(
            "{} time server offsets needed, got {time_offsets:?}",
            local_time::LOCAL_TIME_SERVERS
        );
    }
    // Before anything starts: a missing server binary is a setup error.
    roughenough_binary()?;
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    println!(
        "[1/5] development trust: INSECURE attestation platform, operator key, CA in {}",
        dir.display()
    );
    let platform = crate::attestation::DevPlatform::generate(&mut rand_core::OsRng)
        .map_err(|e| anyhow!(e.to_string()))?;
    let platform_pem = platform
        .to_secret_pem()
        .map_err(|e| anyhow!(e.to_string()))?;
    write_secret(&dir.join("dev-platform.key"), platform_pem.as_bytes())?;
    let ark = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, platform.ark_der())
        .map_err(|e| anyhow!(e))?;
    std::fs::write(dir.join("dev-ark.pem"), ark)?;
    if !dir.join("operator.key").exists() {
        operator_init(&dir)?;
    }
    let operator = load_operator(&dir.join("operator.key"))?;
    if !dir.join("ca.key").exists() {
        ca_init(&dir, "CN=frostamp development CA,O=frostamp (development)")?;
    }
    let measurement = file_measurement(node_bin)?;
    println!(
        "      node binary {} measurement (SHA-384) {}",
        node_bin.display(),
        hex::encode(measurement)
    );

    println!(
        "[2/5] starting {} local Roughtime servers (roughenough)",
        local_time::LOCAL_TIME_SERVERS
    );
    // A configuration left by an earlier cluster in this directory names that epoch's
    // servers; keep it for verifying that epoch's tokens.
    let time_config = dir.join(TIME_CONFIG_FILE);
    if time_config.exists() {
        let previous = dir.join(PREVIOUS_TIME_CONFIG_FILE);
        std::fs::rename(&time_config, &previous)?;
        println!(
            "      the earlier cluster's time configuration is now {}",
            previous.display()
        );
    }
    let time_servers = start_local_time_servers(&dir, time_offsets).await?;

    println!("[3/5] starting {n} nodes");
    let operator_pub = operator.public_hex().map_err(|e| anyhow!(e))?;
    // Ports are picked free and released before the node binds them; another
    // process can win that race, so a node that dies with "Address already in use"
    // is started again on fresh ports.
    let spawn = |i: u16| -> Result<(NodeTarget, u32, PathBuf)> {
        let public = format!("127.0.0.1:{}", free_port()?);
        let peer = format!("127.0.0.1:{}", free_port()?);
        let log = dir.join(format!("node{i}.log"));
        let logf = std::fs::File::create(&log)?;
        let mut command = match node_wrapper(i).as_deref() {
            Some([program, args @ ..]) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(node_bin);
                c
            }
            _ => std::process::Command::new(node_bin),
        };
        let child = command
            .args([
                "--name",
                &format!("node{i}"),
                "--public",
                &public,
                "--peer",
                &peer,
            ])
            .arg("--time-servers")
            .arg(&time_config)
            .env("FROSTAMP_OPERATOR_KEY", &operator_pub)
            .env("FROSTAMP_INSECURE_DEV_PLATFORM", platform_pem.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .with_context(|| format!("cannot start {}", node_bin.display()))?;
        println!(
            "      node {i}: pid {}, https://{public}, peer {peer}, log {}",
            child.id(),
            log.display()
        );
        Ok((
            NodeTarget {
                index: i,
                public,
                peer,
            },
            child.id(),
            log,
        ))
    };
    let record = |targets: &[NodeTarget], pids: &[(u16, u32, PathBuf)]| -> Result<ClusterFile> {
        // Record the processes before anything else can fail, so `cluster down` can stop them.
        let file = ClusterFile {
            version: 1,
            nodes: targets
                .iter()
                .zip(pids)
                .map(|(t, p)| ClusterNode {
                    index: t.index,
                    url: format!("https://{}", t.public),
                    public: t.public.clone(),
                    peer: t.peer.clone(),
                    pin: None,
                    pid: Some(p.1),
                    log: Some(p.2.clone()),
                    phase: Some("booting".into()),
                    tls_names: None,
                })
                .collect(),
            t,
            epoch: String::new(),
            group_key: None,
            ciphersuite,
            measurement: Some(hex::encode(measurement)),
            root: None,
            chain: None,
            insecure_dev_root: Some(dir.join("dev-ark.pem")),
            operator_key: dir.join("operator.key"),
            timings_ms: Default::default(),
            time_servers: time_servers.clone(),
            ca_dir: Some(dir.clone()),
        };
        std::fs::write(dir.join("cluster.json"), serde_json::to_vec_pretty(&file)?)?;
        Ok(file)
    };
    let mut targets = Vec::new();
    let mut pids = Vec::new();
    // Recorded first, so `cluster down` stops the time servers whatever fails next.
    record(&targets, &pids)?;
    for i in 1..=n {
        let (t, pid, log) = spawn(i)?;
        pids.push((i, pid, log));
        targets.push(t);
        record(&targets, &pids)?;
    }
    // Wait until every node answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    for k in 0..targets.len() {
        let mut restarts = 0;
        while let (Some(t), Some((_, pid, log))) = (targets.get(k).cloned(), pids.get(k).cloned()) {
            let ok = get_status(&t.public, None, Duration::from_secs(2)).await;
            if matches!(ok, Ok(ref r) if r.status == 200) {
                break;
            }
            let dead = !Path::new(&format!("/proc/{pid}")).exists() || files::is_zombie(pid);
            let tail = || std::fs::read_to_string(&log).unwrap_or_default();
            if dead && restarts < 5 && tail().contains("Address already in use") {
                restarts += 1;
                let (nt, npid, nlog) = spawn(t.index)?;
                if let (Some(tt), Some(pp)) = (targets.get_mut(k), pids.get_mut(k)) {
                    *tt = nt;
                    *pp = (t.index, npid, nlog);
                }
                record(&targets, &pids)?;
                continue;
            }
            if dead || Instant::now() > deadline {
                let text = tail();
                let last: Vec<&str> = text.lines().rev().take(5).collect();
                bail!(
                    "node {} did not come up; its log ends with:\n{}",
                    t.index,
                    last.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("[4/5] key ceremony");
    let epoch = format!(
        "local-{}",
        SystemClock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    );
    let ceremony = run_ceremony(
        CeremonyArgs {
            nodes: targets,
            t,
            epoch: epoch.clone(),
            ciphersuite,
            operator_key: &dir.join("operator.key"),
            insecure_dev_root: Some(&dir.join("dev-ark.pem")),
            measurements: vec![measurement],
            ca_dir: Some(&dir),
            ca_root: None,
            state_dir: &dir,
            time_servers: time_servers.clone(),
            public_names: (1..=n).map(|i| (i, local_public_names())).collect(),
        },
        &pids,
    )
    .await;
    let file = match ceremony {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ceremony failed; nodes left running for inspection (`frostamp cluster down --dir {}` stops them)", dir.display());
            return Err(e);
        }
    };
    println!("[5/5] cluster ready");
    for node in &file.nodes {
        println!(
            "      node {}: {} ({})",
            node.index,
            node.url,
            node.phase.as_deref().unwrap_or("?")
        );
    }
    if let Some(root) = &file.root {
        println!("      trust anchor for tokens: {}", root.display());
    }
    println!(
        "      time servers for tokens: {} ({})",
        time_config.display(),
        file.time_servers
            .iter()
            .map(|s| format!("{} {} {:+} s", s.name, s.address, s.offset_secs))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(file)
}

/// `frostamp cluster down`: stop the processes of a local cluster.
pub fn cluster_down(dir: &Path) -> Result<()> {
    let path = dir.join("cluster.json");
    let file: ClusterFile = serde_json::from_str(&read_to_string(&path, "cluster description")?)?;
    for n in &file.nodes {
        let Some(pid) = n.pid else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            println!("node {}: pid {pid} already gone", n.index);
            continue;
        }
        // Pids are reused (quickly on a busy machine): signal only the process started
        // with this node's public address.
        if !runs_with_arg(pid, n.public.as_ref()) {
            println!(
                "node {}: pid {pid} already gone (now another process)",
                n.index
            );
            continue;
        }
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            eprintln!("node {}: could not signal pid {pid}", n.index);
            continue;
        }
        // A node that has not gone within 5 s is killed: one left running would keep
        // dialing its old peers' addresses, which the next cluster on this machine may
        // be given.
        if !gone_within(pid, Duration::from_secs(5)) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            if !gone_within(pid, Duration::from_secs(5)) {
                eprintln!(
                    "node {}: pid {pid} is still running after SIGTERM and SIGKILL",
                    n.index
                );
                continue;
            }
            println!(
                "node {}: did not stop within 5 s of SIGTERM; killed (pid {pid})",
                n.index
            );
        }
        println!(
            "node {}: stopped (pid {pid}); its key share is gone with it",
            n.index
        );
    }
    // The time servers after the nodes (which ask them); their seeds go with them, the
    // public configuration (time-servers.json) stays for verifying the tokens.
    let mut time_servers = file.time_servers.clone();
    local_time::stop_all(&mut time_servers, true);
    std::fs::rename(&path, dir.join("cluster.json.down"))?;
    Ok(())
}

/// `GET /status` from the node at `public` (`pin`: SHA-256 of its TLS SPKI, if known).
async fn get_status(
    public: &str,
    pin: Option<[u8; 32]>,
    timeout: Duration,
) -> Result<crate::net::client::Response, crate::net::client::ClientError> {
    crate::net::client::request(public, pin, "GET", "/status", &[], Vec::new(), timeout).await
}

/// `frostamp cluster status`: every node's public status.
pub async fn cluster_status(
    dir: &Path,
) -> Result<Vec<(u16, Result<crate::api::admin::Status, String>)>> {
    let file: ClusterFile = serde_json::from_str(&read_to_string(
        &dir.join("cluster.json"),
        "cluster description",
    )?)?;
    let mut out = Vec::new();
    for n in &file.nodes {
        let pin = n
            .pin
            .as_deref()
            .and_then(|p| hex::decode(p).ok())
            .and_then(|v| v.try_into().ok());
        let r = get_status(&n.public, pin, Duration::from_secs(5)).await;
        out.push((
            n.index,
            r.map_err(|e| e.to_string())
                .and_then(|r| serde_json::from_slice(&r.body).map_err(|e| e.to_string())),
        ));
    }
    Ok(out)
}
