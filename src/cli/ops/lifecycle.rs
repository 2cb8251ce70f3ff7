//! The ceremony and the lifecycle after it: install a chain, repair a node, the public
//! TLS certificates.

use super::files::read_to_string;
use super::files::{ClusterFile, ClusterNode, ClusterTimeServer};
use super::*;
use crate::api::auth::OperatorKey;
use crate::ceremony::{self, CeremonyOptions, NodeTarget, PinnedNode};
use crate::certs::tls::PublicNames;
use crate::clock::{Clock, SystemClock};
use crate::threshold::suite::Ciphersuite;
use crate::x509::parse_certificates;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let cluster = file.config_for(index);
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
