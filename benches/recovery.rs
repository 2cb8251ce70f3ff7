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
//! `FROSTAMP_RECOVERY_RUNS` sets the number of runs (default 5); `FROSTAMP_CIPHERSUITE`
//! the key epochs' ciphersuite (`secp256k1` by default, or `ed25519`).
//!
//! `FROSTAMP_STRESS=1` (`make stress`) turns it into a stress test of the lifecycle: a
//! failed run does not stop the others; each failure is printed with what every node
//! concerned said (phase, peers, roster, refusals) and its cluster directory (node logs)
//! is kept under `target/stress/`; the exit status is 1 if any run failed.
// Benchmarks may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

#[path = "support/lifecycle.rs"]
mod lifecycle;

use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use lifecycle::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One timestamp request; (granted, time taken).
async fn token(addr: &str, pin: [u8; 32], tag: &str) -> (bool, Duration, Vec<u8>) {
    let digest = HashAlg::Sha256.digest(tag.as_bytes());
    let req = AcceptedRequest::build_der(HashAlg::Sha256, &digest, None, true).expect("request");
    let t = Instant::now();
    let r = frostamp::net::client::request(
        addr,
        Some(pin),
        frostamp::net::client::Call::stamp(req),
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
    let b = bins();
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
    eprintln!("key epochs: FROST({})", ciphersuite());
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
                let msg = panic_message(&*p);
                let kept = keep_logs(dir.path(), &format!("target/stress/run-{}", i + 1));
                eprintln!(
                    "run {}/{runs}: FAILED after {:.0} s: {msg}\n  (logs {kept})",
                    i + 1,
                    t.elapsed().as_secs_f64(),
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

    let cpu = cpu_model();
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
