//! `make bench` part 3: how long recovery takes on the local multi-process cluster
//! (release build, development attestation, five node processes on this machine).
//!
//! Each run walks the seed's decision tree with real processes and times every step
//! with a wall clock, polling `GET /status` every 5 ms:
//!
//! 1. **ceremony**: `frostamp cluster up` (5 processes, attestation, admission, DKG,
//!    CA issuance, certificate on every node): its wall time and the ceremony's own
//!    `timings_ms.total` from `cluster.json`;
//! 2. **detect**: SIGKILL node 1; time until node 5's `/status` says `degraded`, 4;
//! 3. **repair**: a replacement process from the same binary on node 1's addresses:
//!    started → attested by the operator → configured and admitted by its helpers →
//!    `POST /admin/repair` returns (share rebuilt, checked, chain installed) → every
//!    node's `/status` says `healthy`, 5;
//! 4. **two lost**: SIGKILL the replacement and node 2; time until node 5 says
//!    `critical`, 3; then two replacements repaired one after the other → `healthy`;
//! 5. **halt**: SIGKILL nodes 1, 2 (the replacements) and 3 back to back; time until
//!    nodes 4 and 5 say `halted`, 2;
//! 6. **re-ceremony**: `cluster down`, then `cluster up` again in the same directory
//!    (same operator key and CA): new key, new certificate; then the first granted
//!    token, and a token from the old epoch still verifies under the same root.
//!
//! A separate scenario freezes node 2 (SIGSTOP: its sockets stay open, as with a
//! hung VM or a silent network partition) and records how long tokens take, one at a
//! time and in a burst of 100 that uses up the commitments node 2 issued ahead of
//! time, what `/status` says, how long until the peers drop the silent node
//! (`degraded`), and how long until it is back (`healthy`) after SIGCONT.
//!
//! Needs `target/release/frostamp` and `target/release/frostamp-node` built with
//! `--features insecure-dev-attestation` (the Makefile's `bench` target does it).
//! `FROSTAMP_RECOVERY_RUNS` sets the number of runs (default 5).
//!
//! `FROSTAMP_STRESS=1` (`make stress`) turns it into a stress test of the lifecycle: a
//! failed run does not stop the others; each failure is printed with what every node
//! concerned said (phase, peers, roster, refusals) and its cluster directory (node logs)
//! is kept under `target/stress/`; the exit status is 1 if any run failed.

use frostamp::ceremony::{self, NodeTarget, PinnedNode};
use frostamp::cli::ops::{ClusterFile, ClusterNode};
use frostamp::clock::SystemClock;
use frostamp::node::ClusterConfig;
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(5);
const LIMIT: Duration = Duration::from_secs(120);

struct Bins {
    frostamp: PathBuf,
    node: PathBuf,
}

/// Kills and reaps processes this bench started itself, even on panic.
struct Children(Vec<Child>);
impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Stops a cluster (its recorded pids) even on panic.
struct Down<'a>(&'a Bins, PathBuf);
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pin(n: &ClusterNode) -> [u8; 32] {
    hex::decode(n.pin.as_ref().expect("pinned"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

/// `frostamp cluster up`: (cluster file, wall time).
fn cluster_up(b: &Bins, d: &Path) -> (ClusterFile, Duration) {
    let t = Instant::now();
    let out = Command::new(&b.frostamp)
        .args(["cluster", "up", "--node-bin"])
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

fn cluster_down(b: &Bins, d: &Path) {
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

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// (health, share holders) from a node's `/status`, or None if it does not answer.
async fn health(addr: &str, pin: [u8; 32]) -> Option<(String, u64)> {
    let r = frostamp::net::client::request(
        addr,
        Some(pin),
        "GET",
        "/status",
        &[],
        Vec::new(),
        Duration::from_secs(2),
    )
    .await
    .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    Some((
        v["health"].as_str().unwrap_or("none").to_string(),
        v["share_holders"].as_u64()?,
    ))
}

/// What a node's `/status` says about its peers and refusals (for failure reports).
async fn diagnose(addr: &str, pin: [u8; 32]) -> String {
    match frostamp::net::client::request(
        addr,
        Some(pin),
        "GET",
        "/status",
        &[],
        Vec::new(),
        Duration::from_secs(2),
    )
    .await
    {
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
async fn until(addr: &str, pin: [u8; 32], want: &str, holders: u64) -> Instant {
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

/// One timestamp request; (granted, time taken).
async fn token(addr: &str, pin: [u8; 32], tag: &str) -> (bool, Duration, Vec<u8>) {
    let digest = HashAlg::Sha256.digest(tag.as_bytes());
    let req = AcceptedRequest::build_der(HashAlg::Sha256, &digest, None, true).expect("request");
    let t = Instant::now();
    let r = frostamp::net::client::request(
        addr,
        Some(pin),
        "POST",
        "/",
        &[("content-type", "application/timestamp-query".into())],
        req,
        Duration::from_secs(60),
    )
    .await;
    let took = t.elapsed();
    let body = r.map(|r| r.body).unwrap_or_default();
    let ok = <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&body)
        .map(|t| t.status.status.as_bytes() == [0] && t.time_stamp_token.is_some())
        .unwrap_or(false);
    (ok, took, body)
}

#[derive(Default)]
struct Samples(BTreeMap<&'static str, Vec<f64>>);
impl Samples {
    fn add(&mut self, k: &'static str, v: f64) {
        self.0.entry(k).or_default().push(v);
    }
}

/// What a replacement needs from the cluster directory.
struct Ctx {
    nodes: Vec<ClusterNode>,
    t: u16,
    epoch: String,
    operator: frostamp::node::auth::OperatorKey,
    platform: String,
    roots: frostamp::attestation::RootSet,
    measurement: [u8; 48],
    dir: PathBuf,
    /// Current TLS pin of each index (a replacement has a new identity).
    pins: BTreeMap<u16, [u8; 32]>,
}

impl Ctx {
    fn load(d: &Path, file: &ClusterFile) -> Self {
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
struct RepairTimes {
    attested: f64,
    admitted: f64,
    repaired: f64,
    healthy: f64,
    total: f64,
}

/// Boot a replacement for `index` on its old addresses, attest it, configure it,
/// repair its share from `helpers`, and wait until every node reports healthy.
/// Returns the replacement's pinned TLS identity and the step times.
fn replace(
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

/// One walk through the decision tree, in `dir`.
fn run(b: &Bins, rt: &tokio::runtime::Runtime, s: &mut Samples, dir: &Path) {
    let d = dir.join("cluster");
    let _down = Down(b, d.clone());

    // 1. Ceremony.
    let (file, wall) = cluster_up(b, &d);
    s.add(
        "ceremony: cluster up, wall (5 processes + ceremony)",
        ms(wall),
    );
    s.add(
        "ceremony: timings_ms.total (attest..certificate)",
        *file.timings_ms.get("total").expect("total") as f64,
    );
    let nodes = file.nodes.clone();
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid.expect("pid")).collect();
    let (n4, n5) = (&nodes[3], &nodes[4]);
    let old_token = rt.block_on(token(&n5.public, pin(n5), "epoch one"));
    assert!(old_token.0, "first epoch issues tokens");

    // 2. Detection of a killed node.
    let t0 = Instant::now();
    signal(pids[0], "-KILL");
    let seen = rt.block_on(until(&n5.public, pin(n5), "degraded", 4));
    s.add(
        "detect: node 1 killed -> node 5 reports degraded",
        ms(seen - t0),
    );

    // 3. Repair to a replacement booted from the same binary.
    let mut ctx = Ctx::load(&d, &file);
    let mut children = Children(Vec::new());
    let (rep1, t) = replace(b, rt, &mut ctx, 1, &[3, 4, 5], &mut children);
    s.add("repair: replacement started -> attested", t.attested);
    s.add(
        "repair: attested -> configured, admitted by helpers",
        t.admitted,
    );
    s.add(
        "repair: POST /admin/repair (3 helpers, checked, chain)",
        t.repaired,
    );
    s.add("repair: repaired -> all 5 nodes report healthy", t.healthy);
    s.add(
        "repair: replacement started -> all 5 healthy (total)",
        t.total,
    );
    let (ok, _, _) = rt.block_on(token(&ctx.nodes[0].public, rep1, "after repair"));
    assert!(ok, "the replacement coordinates tokens");

    // 4. Two lost (critical): two replacements repaired one after the other.
    let t0 = Instant::now();
    for c in &mut children.0 {
        let _ = c.kill();
        let _ = c.wait();
    }
    children.0.clear();
    signal(pids[1], "-KILL");
    let seen = rt.block_on(until(&n5.public, pin(n5), "critical", 3));
    s.add(
        "two lost: nodes 1, 2 killed -> node 5 reports critical",
        ms(seen - t0),
    );
    let t0 = Instant::now();
    let (_, t1) = replace(b, rt, &mut ctx, 1, &[3, 4, 5], &mut children);
    let (_, t2) = replace(b, rt, &mut ctx, 2, &[3, 4, 5], &mut children);
    assert!(t1.total > 0.0 && t2.total > 0.0);
    s.add(
        "two lost: 2 replacements, one after the other -> healthy",
        ms(t0.elapsed()),
    );

    // 5. Three killed: halted.
    let t0 = Instant::now();
    for c in &mut children.0 {
        let _ = c.kill();
    }
    signal(pids[2], "-KILL");
    let (a, b4) = rt.block_on(async {
        (
            until(&n4.public, pin(n4), "halted", 2).await,
            until(&n5.public, pin(n5), "halted", 2).await,
        )
    });
    s.add(
        "halt: 3 killed -> nodes 4 and 5 report halted",
        ms(a.max(b4) - t0),
    );
    let (ok, _, _) = rt.block_on(token(&n5.public, pin(n5), "halted"));
    assert!(!ok, "a halted cluster issues no token");
    drop(children);

    // 6. Re-ceremony after the halt (complete-outage recovery on this machine).
    cluster_down(b, &d);
    let t0 = Instant::now();
    let (new, wall) = cluster_up(b, &d);
    let n = &new.nodes[0];
    let (ok, _, _) = rt.block_on(token(&n.public, pin(n), "epoch two"));
    let first = t0.elapsed();
    assert!(ok, "the new epoch issues tokens");
    assert_ne!(new.group_key, file.group_key, "a new epoch has a new key");
    s.add("re-ceremony: cluster up after halt, wall", ms(wall));
    s.add(
        "re-ceremony: timings_ms.total",
        *new.timings_ms.get("total").expect("total") as f64,
    );
    s.add("re-ceremony: cluster up -> first new token", ms(first));
    // The old epoch's token still verifies (same CA root, old certificate in the token;
    // its time evidence under the old epoch's time servers, whose configuration the new
    // `cluster up` kept as time-servers.previous.json).
    let tsr = dir.join("old.tsr");
    std::fs::write(&tsr, &old_token.2).expect("write");
    let v = Command::new(&b.frostamp)
        .arg("verify")
        .arg(&tsr)
        .args([
            "--digest",
            &hex::encode(HashAlg::Sha256.digest(b"epoch one")),
            "--roots",
        ])
        .arg(new.root.as_ref().expect("root"))
        .arg("--time-servers")
        .arg(d.join(frostamp::cli::ops::PREVIOUS_TIME_CONFIG_FILE))
        .output()
        .expect("verify");
    assert!(
        v.status.success(),
        "old token: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    cluster_down(b, &d);
}

/// "granted", or the rejection's status text.
fn reason(ok: bool, body: &[u8]) -> String {
    if ok {
        return "granted".into();
    }
    <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(body)
        .ok()
        .and_then(|r| r.status.status_string)
        .map(|s| format!("rejected: {}", s.join(" ")))
        .unwrap_or_else(|| "no response".into())
}

/// Requests sent at once in the frozen-node scenario (more than one batch of
/// commitments a peer issues ahead of time).
const BURST: usize = 100;

/// A frozen node (SIGSTOP): its connections stay open.
fn frozen(b: &Bins, rt: &tokio::runtime::Runtime) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("cluster");
    let _down = Down(b, d.clone());
    let (file, _) = cluster_up(b, &d);
    let (n1, n2, n5) = (&file.nodes[0], &file.nodes[1], &file.nodes[4]);
    let mut out = Vec::new();
    let (_, before, _) = rt.block_on(token(&n1.public, pin(n1), "warm"));
    out.push(format!(
        "token via node 1, all nodes up          {:>8.1} ms",
        ms(before)
    ));
    let p2 = n2.pid.expect("pid");
    let stopped = Instant::now();
    signal(p2, "-STOP");
    for (i, n) in [n1, n1, &file.nodes[3]].into_iter().enumerate() {
        let (ok, took, body) = rt.block_on(token(&n.public, pin(n), &format!("frozen {i}")));
        let why = reason(ok, &body);
        out.push(format!(
            "token via node {}, node 2 frozen (#{})  {:>8.1} ms   {why}",
            n.index,
            i + 1,
            ms(took)
        ));
    }
    // Many requests at once: enough to use up every commitment node 2 issued to
    // node 1 ahead of time, then three more one by one.
    let burst: Vec<(bool, Duration)> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..BURST {
            let (addr, p) = (n1.public.clone(), pin(n1));
            set.spawn(async move {
                let (ok, took, _) = token(&addr, p, &format!("burst {i}")).await;
                (ok, took)
            });
        }
        let mut all = Vec::new();
        while let Some(Ok(r)) = set.join_next().await {
            all.push(r);
        }
        all
    });
    let granted = burst.iter().filter(|(ok, _)| *ok).count();
    let slowest = burst.iter().map(|(_, d)| *d).max().unwrap_or_default();
    out.push(format!(
        "{BURST} concurrent tokens via node 1, node 2 frozen: {granted} granted, slowest {:.1} ms",
        ms(slowest)
    ));
    for i in 0..3 {
        let (ok, took, body) = rt.block_on(token(&n1.public, pin(n1), &format!("after {i}")));
        out.push(format!(
            "token via node 1 after the burst (#{})   {:>8.1} ms   {}",
            i + 1,
            ms(took),
            reason(ok, &body)
        ));
    }
    let h = rt.block_on(health(&n5.public, pin(n5)));
    out.push(format!(
        "node 5 /status {:.1} s after the freeze: {h:?}",
        stopped.elapsed().as_secs_f64()
    ));
    // Does the cluster notice by itself? Wait up to 60 s for `degraded`, 4.
    let noticed = rt.block_on(async {
        let deadline = stopped + Duration::from_secs(60);
        while Instant::now() < deadline {
            if health(&n5.public, pin(n5)).await == Some(("degraded".into(), 4)) {
                return Some(stopped.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    });
    match noticed {
        Some(d) => out.push(format!(
            "node 2 frozen -> node 5 reports degraded      {:>8.1} ms",
            ms(d)
        )),
        None => out.push("node 2 frozen -> node 5 still not degraded after 60 s".into()),
    }
    let (ok, took, body) = rt.block_on(token(&n1.public, pin(n1), "while dropped"));
    out.push(format!(
        "token via node 1, node 2 dropped          {:>8.1} ms   {}",
        ms(took),
        reason(ok, &body)
    ));
    let resumed = Instant::now();
    signal(p2, "-CONT");
    let healthy = rt.block_on(async {
        let deadline = resumed + Duration::from_secs(60);
        while Instant::now() < deadline {
            if health(&n5.public, pin(n5)).await == Some(("healthy".into(), 5)) {
                return Some(resumed.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        None
    });
    match healthy {
        Some(d) => out.push(format!(
            "node 2 resumed -> node 5 reports healthy      {:>8.1} ms",
            ms(d)
        )),
        None => out.push("node 2 resumed -> node 5 not healthy after 60 s".into()),
    }
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    (s[0], med, s[s.len() - 1])
}

fn main() {
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
    let runs: usize = std::env::var("FROSTAMP_RECOVERY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let load_before = loadavg();
    let stress = std::env::var("FROSTAMP_STRESS").is_ok_and(|v| v == "1");
    let mut s = Samples::default();
    let mut failures = Vec::new();
    let started = Instant::now();
    for i in 0..runs {
        eprintln!("run {}/{runs}", i + 1);
        let dir = tempfile::tempdir().expect("tempdir");
        if !stress {
            run(&b, &rt, &mut s, dir.path());
            continue;
        }
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&b, &rt, &mut s, dir.path())
        }));
        match outcome {
            Ok(()) => eprintln!(
                "run {}/{runs}: ok ({:.0} s)",
                i + 1,
                t.elapsed().as_secs_f64()
            ),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|m| m.to_string()))
                    .unwrap_or_default();
                let keep = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target/stress")
                    .join(format!("run-{}", i + 1));
                let _ = std::fs::remove_dir_all(&keep);
                let _ = std::fs::create_dir_all(keep.parent().unwrap_or(Path::new(".")));
                let kept = Command::new("cp")
                    .arg("-a")
                    .arg(dir.path())
                    .arg(&keep)
                    .status()
                    .is_ok_and(|s| s.success());
                eprintln!(
                    "run {}/{runs}: FAILED after {:.0} s: {msg}\n  (logs {})",
                    i + 1,
                    t.elapsed().as_secs_f64(),
                    if kept {
                        keep.display().to_string()
                    } else {
                        "not kept".into()
                    }
                );
                failures.push((i + 1, msg));
            }
        }
    }
    if stress {
        println!(
            "stress: {} lifecycles (ceremony, kill, repair, two lost, halt, re-ceremony) in {:.0} s: {} failed",
            runs,
            started.elapsed().as_secs_f64(),
            failures.len()
        );
        for (i, m) in &failures {
            println!("  run {i}: {}", m.lines().next().unwrap_or(""));
        }
    }
    let frozen = if stress { Vec::new() } else { frozen(&b, &rt) };
    let load_after = loadavg();

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "frostamp recovery benchmark (5 local node processes, t = 3, development attestation)"
    );
    println!(
        "machine: {} CPUs, {cpu}; {runs} runs; /status polled every {} ms",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        POLL.as_millis()
    );
    println!("load average (1, 5, 15 min) before: {load_before}; after: {load_after}");
    println!();
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "step (ms)", "min", "median", "max"
    );
    println!("{}", "-".repeat(88));
    let order = [
        "ceremony: cluster up, wall (5 processes + ceremony)",
        "ceremony: timings_ms.total (attest..certificate)",
        "detect: node 1 killed -> node 5 reports degraded",
        "repair: replacement started -> attested",
        "repair: attested -> configured, admitted by helpers",
        "repair: POST /admin/repair (3 helpers, checked, chain)",
        "repair: repaired -> all 5 nodes report healthy",
        "repair: replacement started -> all 5 healthy (total)",
        "two lost: nodes 1, 2 killed -> node 5 reports critical",
        "two lost: 2 replacements, one after the other -> healthy",
        "halt: 3 killed -> nodes 4 and 5 report halted",
        "re-ceremony: cluster up after halt, wall",
        "re-ceremony: timings_ms.total",
        "re-ceremony: cluster up -> first new token",
    ];
    for k in order {
        if let Some(v) = s.0.get(k) {
            let (lo, med, hi) = summary(v);
            println!("{k:<58} {lo:>9.1} {med:>9.1} {hi:>9.1}");
        }
    }
    if stress {
        std::process::exit(i32::from(!failures.is_empty()));
    }
    println!();
    println!("frozen node (SIGSTOP node 2; its TCP connections stay open):");
    for l in frozen {
        println!("  {l}");
    }
}
