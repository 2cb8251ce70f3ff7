//! The local five-process cluster: `cluster up`, `down`, `status`.

use super::files::ClusterFile;
use super::files::{gone_within, read_to_string, runs_with_arg};
use super::*;
use crate::threshold::suite::Ciphersuite;
use anyhow::{bail, Context, Result};
use sha2::Digest;
use std::path::Path;
use std::time::Duration;
// What only the development build's `cluster up` uses.
#[cfg(feature = "insecure-dev-attestation")]
use {
    super::files::ClusterNode,
    crate::ceremony::NodeTarget,
    crate::clock::{Clock, SystemClock},
    anyhow::anyhow,
    std::path::PathBuf,
    std::time::Instant,
};

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
/// `scripts/callgrind-breakdown.sh`); `I,J,...:` names several nodes and `*:` every
/// node (`scripts/callgrind-concurrency.sh`). Words are split on whitespace.
#[cfg(feature = "insecure-dev-attestation")]
fn node_wrapper(index: u16) -> Option<Vec<String>> {
    let spec = std::env::var("FROSTAMP_NODE_WRAPPER").ok()?;
    wrapper_for(&spec, index)
}

/// [`node_wrapper`]'s reading of the knob's value, for node `index`.
#[cfg(feature = "insecure-dev-attestation")]
fn wrapper_for(spec: &str, index: u16) -> Option<Vec<String>> {
    let (which, command) = spec.split_once(':')?;
    let which = which.trim();
    let named = which == "*"
        || which
            .split(',')
            .any(|w| w.trim().parse::<u16>().ok() == Some(index));
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    (named && !words.is_empty()).then_some(words)
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
    // This cluster's nodes are named `node<i>-<tag>`: a node of another cluster that
    // holds a port this one picked answers `/status` with another name.
    let tag = hex::encode(
        sha2::Sha256::digest(platform.ark_der())
            .get(..3)
            .unwrap_or_default(),
    );
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
    // process can win that race, so a node that dies with "Address already in use",
    // or whose port answers with another node's name, is started again on fresh ports.
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
                &format!("node{i}-{tag}"),
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
            let name = ok
                .as_ref()
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| serde_json::from_slice::<crate::api::admin::Status>(&r.body).ok())
                .map(|st| st.name);
            let ours = format!("node{}-{tag}", t.index);
            if name.as_deref() == Some(ours.as_str()) {
                break;
            }
            let dead = !Path::new(&format!("/proc/{pid}")).exists() || files::is_zombie(pid);
            let tail = || std::fs::read_to_string(&log).unwrap_or_default();
            let taken = name.is_some() || (dead && tail().contains("Address already in use"));
            if taken && restarts < 5 {
                if !dead {
                    // Ours is alive but another node answers on its port: it cannot
                    // have bound it, and is started again with the rest.
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
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
    crate::net::client::request(
        public,
        pin,
        crate::net::client::Call::get("/status"),
        timeout,
    )
    .await
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

#[cfg(all(test, feature = "insecure-dev-attestation"))]
mod tests {
    use super::wrapper_for;

    #[test]
    fn the_wrapper_knob_names_one_several_or_every_node() {
        let words = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cg = ["valgrind", "--tool=callgrind"];
        assert_eq!(wrapper_for("2:valgrind --tool=callgrind", 2), words(&cg));
        assert_eq!(wrapper_for("1, 3:valgrind --tool=callgrind", 3), words(&cg));
        assert_eq!(wrapper_for("*:valgrind --tool=callgrind", 5), words(&cg));
        // The twins: a node not named, a value without a command or without a colon.
        assert_eq!(wrapper_for("2:valgrind --tool=callgrind", 1), None);
        assert_eq!(wrapper_for("1,3:valgrind", 2), None);
        assert_eq!(wrapper_for("*:   ", 1), None);
        assert_eq!(wrapper_for("valgrind", 1), None);
        assert_eq!(wrapper_for("x:valgrind", 1), None);
    }
}
