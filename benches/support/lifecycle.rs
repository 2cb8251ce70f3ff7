//! The local cluster's lifecycle as the benches drive it (`benches/recovery.rs`,
//! `benches/soak.rs` include this file with `#[path]`): start and stop a cluster with
//! `frostamp cluster up`/`down`, read `/status`, signal processes, and replace a lost node
//! the way an operator does (a new process on its addresses, attested, configured,
//! admitted, its share repaired by t helpers, until every node reports healthy).
#![allow(dead_code)] // each bench uses a part of these

use frostamp::api::admin::ClusterConfig;
use frostamp::ceremony::{self, NodeTarget, PinnedNode};
use frostamp::cli::ops::{ClusterFile, ClusterNode};
use frostamp::clock::SystemClock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const POLL: Duration = Duration::from_millis(5);
pub(crate) const LIMIT: Duration = Duration::from_secs(120);

pub(crate) struct Bins {
    pub(crate) frostamp: PathBuf,
    pub(crate) node: PathBuf,
}

/// Kills and reaps processes this bench started itself, even on panic.
pub(crate) struct Children(pub(crate) Vec<Child>);
impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stops a cluster (its recorded pids) even on panic.
pub(crate) struct Down<'a>(pub(crate) &'a Bins, pub PathBuf);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.1.join("cluster.json").exists() {
            let _ = Command::new(&self.0.frostamp)
                .args(["cluster", "down", "--dir"])
                .arg(&self.1)
                .output();
        }
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn pin(n: &ClusterNode) -> [u8; 32] {
    hex::decode(n.pin.as_ref().expect("pinned"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

/// The key epochs' FROST ciphersuite: `FROSTAMP_CIPHERSUITE` (`secp256k1`, the
/// default, or `ed25519`; `make stress STRESS_SUITE=ed25519`).
pub(crate) fn ciphersuite() -> String {
    std::env::var("FROSTAMP_CIPHERSUITE").unwrap_or_else(|_| "secp256k1".into())
}

/// `frostamp cluster up --ciphersuite` [`ciphersuite`]: (cluster file, wall time).
pub(crate) fn cluster_up(b: &Bins, d: &Path) -> (ClusterFile, Duration) {
    let t = Instant::now();
    let out = Command::new(&b.frostamp)
        .args([
            "cluster",
            "up",
            "--ciphersuite",
            &ciphersuite(),
            "--node-bin",
        ])
        .arg(&b.node)
        .arg("--dir")
        .arg(d)
        .output()
        .expect("cluster up");
    let took = t.elapsed();
    if !out.status.success() {
        // The nodes are left running: what each says (peers, refusals), before the
        // `Down` guard stops them.
        let status = Command::new(&b.frostamp)
            .args(["cluster", "status", "--json", "--dir"])
            .arg(d)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("cluster status: {e}"));
        let _ = std::fs::write(d.join("status-at-failure.json"), &status);
        panic!(
            "cluster up failed:\n{}\nstatus of every node (also in status-at-failure.json):\n{status}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let file =
        serde_json::from_slice(&std::fs::read(d.join("cluster.json")).expect("cluster.json"))
            .expect("cluster.json parses");
    (file, took)
}

pub(crate) fn cluster_down(b: &Bins, d: &Path) {
    let out = Command::new(&b.frostamp)
        .args(["cluster", "down", "--dir"])
        .arg(d)
        .output()
        .expect("cluster down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// A node's `/status`, pinned, within 2 s.
async fn get_status(
    addr: &str,
    pin: [u8; 32],
) -> Result<frostamp::net::client::Response, frostamp::net::client::ClientError> {
    let call = frostamp::net::client::Call::get("/status");
    frostamp::net::client::request(addr, Some(pin), call, Duration::from_secs(2)).await
}

/// (health, share holders) from a node's `/status`, or None if it does not answer.
pub(crate) async fn health(addr: &str, pin: [u8; 32]) -> Option<(String, u64)> {
    let r = get_status(addr, pin).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    Some((
        v["health"].as_str().unwrap_or("none").to_string(),
        v["share_holders"].as_u64()?,
    ))
}

/// What a node's `/status` says about its peers and refusals (for failure reports).
pub(crate) async fn diagnose(addr: &str, pin: [u8; 32]) -> String {
    match get_status(addr, pin).await {
        Ok(r) => match serde_json::from_slice::<serde_json::Value>(&r.body) {
            Ok(v) => format!(
                "{addr}: phase {}, health {}, holders {}, peers {}, roster v{}, last error {}, refusals:\n    {}",
                v["phase"],
                v["health"],
                v["share_holders"],
                v["peers"],
                v["roster"]["version"],
                v["last_error"],
                v["refusals"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n    "))
                    .unwrap_or_default()
            ),
            Err(e) => format!("{addr}: status does not parse: {e}"),
        },
        Err(e) => format!("{addr}: no status: {e}"),
    }
}

/// Poll until `/status` of `addr` reports (`want`, `holders`); return the instant it did.
pub(crate) async fn until(addr: &str, pin: [u8; 32], want: &str, holders: u64) -> Instant {
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = health(addr, pin).await;
        if let Some((h, n)) = &got {
            if h == want && *n == holders {
                return Instant::now();
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "{addr} never reported ({want}, {holders}) within {LIMIT:?}; last {got:?}\n  {}",
                diagnose(addr, pin).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What a replacement needs from the cluster directory.
pub(crate) struct Ctx {
    pub(crate) nodes: Vec<ClusterNode>,
    pub(crate) t: u16,
    pub(crate) epoch: String,
    pub(crate) operator: frostamp::api::auth::OperatorKey,
    pub(crate) platform: String,
    pub(crate) roots: frostamp::attestation::RootSet,
    pub(crate) measurement: [u8; 48],
    pub(crate) dir: PathBuf,
    /// Current TLS pin of each index (a replacement has a new identity).
    pub(crate) pins: BTreeMap<u16, [u8; 32]>,
}

impl Ctx {
    pub(crate) fn load(d: &Path, file: &ClusterFile) -> Self {
        Self {
            nodes: file.nodes.clone(),
            t: file.t,
            epoch: file.epoch.clone(),
            operator: frostamp::cli::ops::load_operator(&d.join("operator.key")).expect("operator"),
            platform: std::fs::read_to_string(d.join("dev-platform.key")).expect("platform"),
            roots: frostamp::cli::ops::roots(Some(&d.join("dev-ark.pem"))).expect("roots"),
            measurement: hex::decode(file.measurement.as_ref().expect("measurement"))
                .expect("hex")
                .try_into()
                .expect("48"),
            dir: d.to_path_buf(),
            pins: file.nodes.iter().map(|n| (n.index, pin(n))).collect(),
        }
    }
}

/// Milliseconds of each repair step.
pub(crate) struct RepairTimes {
    pub(crate) attested: f64,
    pub(crate) admitted: f64,
    pub(crate) repaired: f64,
    pub(crate) healthy: f64,
    pub(crate) total: f64,
}

/// Boot a replacement for `index` on its old addresses, attest it, configure it,
/// repair its share from `helpers`, and wait until every node reports healthy.
/// Returns the replacement's pinned TLS identity and the step times.
pub(crate) fn replace(
    b: &Bins,
    rt: &tokio::runtime::Runtime,
    ctx: &mut Ctx,
    index: u16,
    helpers: &[u16],
    children: &mut Children,
) -> ([u8; 32], RepairTimes) {
    let me = ctx
        .nodes
        .iter()
        .find(|n| n.index == index)
        .expect("index")
        .clone();
    let log =
        std::fs::File::create(ctx.dir.join(format!("node{index}-replacement.log"))).expect("log");
    let t0 = Instant::now();
    children.0.push(
        Command::new(&b.node)
            .args([
                "--name",
                &format!("node{index}-replacement"),
                "--public",
                &me.public,
                "--peer",
                &me.peer,
            ])
            // The cluster's local time servers (`cluster up` wrote the file).
            .arg("--time-servers")
            .arg(ctx.dir.join(frostamp::cli::ops::TIME_CONFIG_FILE))
            .env(
                "FROSTAMP_OPERATOR_KEY",
                ctx.operator.public_hex().expect("pub"),
            )
            .env("FROSTAMP_INSECURE_DEV_PLATFORM", &ctx.platform)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("replacement"),
    );
    let out = rt.block_on(async {
        let deadline = Instant::now() + LIMIT;
        let member = loop {
            match ceremony::attest_member(
                index,
                &me.public,
                &ctx.roots,
                Some(ctx.measurement),
                &SystemClock,
            )
            .await
            {
                Ok((m, _)) => break m,
                Err(e) => {
                    assert!(Instant::now() < deadline, "replacement never attested: {e}");
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        let pinned = member.spki_sha256;
        let node = PinnedNode {
            target: NodeTarget {
                index,
                public: me.public.clone(),
                peer: me.peer.clone(),
            },
            pin: pinned,
        };
        // The operator's repair order for this identity, to every node still up.
        let holders: Vec<PinnedNode> = ctx
            .nodes
            .iter()
            .filter(|n| n.index != index)
            .map(|n| PinnedNode {
                target: NodeTarget {
                    index: n.index,
                    public: n.public.clone(),
                    peer: n.peer.clone(),
                },
                pin: ctx.pins[&n.index],
            })
            .collect();
        ceremony::order_repair(
            &holders,
            &ctx.operator,
            &SystemClock,
            &ctx.epoch,
            index,
            &pinned,
        )
        .await
        .expect("repair order");
        let attested = Instant::now();
        let cfg = ClusterConfig {
            index,
            t: ctx.t,
            nodes: ctx
                .nodes
                .iter()
                .map(|n| (n.index, n.peer.clone()))
                .collect(),
        };
        let r = ceremony::admin(
            &node,
            &ctx.operator,
            &SystemClock,
            "/admin/configure",
            serde_json::to_vec(&cfg).expect("json"),
            Duration::from_secs(10),
        )
        .await
        .expect("configure");
        assert_eq!(r.status, 200);
        // Mutual admission with every helper (attested peer channels).
        loop {
            let st = ceremony::status(&node).await.expect("status");
            if helpers.iter().all(|h| st.peers.contains_key(h)) {
                break;
            }
            if Instant::now() >= deadline {
                let mut report = vec![diagnose(&node.target.public, pinned).await];
                for h in &holders {
                    report.push(diagnose(&h.target.public, h.pin).await);
                }
                panic!(
                    "replacement {index} not admitted by {helpers:?}:\n  {}",
                    report.join("\n  ")
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let admitted = Instant::now();
        let asked: Vec<PinnedNode> = holders
            .iter()
            .filter(|h| helpers.contains(&h.target.index))
            .cloned()
            .collect();
        let (group_key, roster_hash) = ceremony::repair_expectation(&asked, &member)
            .await
            .expect("what the repair must yield");
        let body = serde_json::json!({
            "epoch": ctx.epoch,
            "helpers": helpers,
            "group_key": group_key,
            "roster_hash": hex::encode(roster_hash),
        });
        let r = ceremony::admin(
            &node,
            &ctx.operator,
            &SystemClock,
            "/admin/repair",
            serde_json::to_vec(&body).expect("json"),
            Duration::from_secs(60),
        )
        .await
        .expect("repair");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let repaired = Instant::now();
        // Healthy once every node that is up reports it (share holders = n only
        // when all n hold shares; with a second node still missing, critical/degraded).
        let mut healthy = repaired;
        let st = ceremony::status(&node).await.expect("status");
        let holders = u64::from(st.share_holders);
        let want = match st.health {
            Some(h) => serde_json::to_value(h)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            None => String::new(),
        };
        if holders == ctx.nodes.len() as u64 {
            for n in &ctx.nodes {
                let p = if n.index == index {
                    pinned
                } else {
                    ctx.pins[&n.index]
                };
                healthy = healthy.max(until(&n.public, p, &want, holders).await);
            }
        }
        (
            pinned,
            RepairTimes {
                attested: ms(attested - t0),
                admitted: ms(admitted - attested),
                repaired: ms(repaired - admitted),
                healthy: ms(healthy - repaired),
                total: ms(healthy - t0),
            },
        )
    });
    ctx.pins.insert(index, out.0);
    out
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The release binaries (`FROSTAMP_BIN_DIR`, default target/release); exits if absent.
pub(crate) fn bins() -> Bins {
    let dir = std::env::var("FROSTAMP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"));
    let b = Bins {
        frostamp: dir.join("frostamp"),
        node: dir.join("frostamp-node"),
    };
    if !b.frostamp.exists() || !b.node.exists() {
        eprintln!("build first: cargo build --release --features insecure-dev-attestation --bins");
        std::process::exit(1);
    }
    b
}

/// The CPU model of this machine (`/proc/cpuinfo`).
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default()
}

/// Wait (at most 5 s) until process `pid` is gone or a zombie (its sockets closed).
pub(crate) fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true);
        if gone {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

/// Copy a run's directory (cluster.json, node logs) to `to` under the crate root;
/// where it went, or "not kept".
pub(crate) fn keep_logs(from: &Path, to: &str) -> String {
    let keep = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(to);
    let _ = std::fs::remove_dir_all(&keep);
    if let Some(parent) = keep.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let kept = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(&keep)
        .status()
        .is_ok_and(|s| s.success());
    if kept {
        keep.display().to_string()
    } else {
        "not kept".into()
    }
}
