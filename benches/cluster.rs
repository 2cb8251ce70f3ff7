//! `make bench` part 2: a running local five-node cluster (release build,
//! development attestation, all on this machine) driven over HTTPS by concurrent
//! clients. Prints tokens/s, p50/p99 latency, and the in-process raw FROST 3-of-5
//! sign+aggregate rate measured in the same run, with their ratio.
//!
//! Needs `target/release/frostamp` and `target/release/frostamp-node` built with
//! `--features insecure-dev-attestation` (the Makefile's `bench` target does it).

use frostamp::cli::ops::ClusterFile;
use frostamp::threshold::frost;
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const WARMUP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(10);

fn raw_frost_rate() -> f64 {
    let mut rng = rand::thread_rng();
    let (shares, group) = frostamp::threshold::keys::dkg_in_process(5, 3, &mut rng).expect("dkg");
    let msg = [7u8; 100];
    let signers = &shares[..3];
    let once = |rng: &mut rand::rngs::ThreadRng| {
        let mut nonces = Vec::new();
        let mut commitments = BTreeMap::new();
        for s in signers {
            let (n, c) = frostamp::threshold::signer::commit(s, rng);
            commitments.insert(s.identifier(), c);
            nonces.push(n);
        }
        let mut out = BTreeMap::new();
        for (s, n) in signers.iter().zip(nonces) {
            let share = frostamp::threshold::signer::sign_share(s, n, commitments.clone(), &msg)
                .expect("share");
            out.insert(s.identifier(), share);
        }
        let pkg = frost::SigningPackage::new(commitments, &msg);
        frost::aggregate(&pkg, &out, group.package()).expect("aggregate");
    };
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        once(&mut rng);
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        once(&mut rng);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let bin = std::env::var("FROSTAMP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"));
    let frostamp = bin.join("frostamp");
    let node = bin.join("frostamp-node");
    if !frostamp.exists() || !node.exists() {
        eprintln!("build first: cargo build --release --features insecure-dev-attestation --bins");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("cluster");
    let up = Command::new(&frostamp)
        .args(["cluster", "up", "--node-bin"])
        .arg(&node)
        .arg("--dir")
        .arg(&d)
        .output()
        .expect("cluster up");
    if !up.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&up.stderr));
        std::process::exit(1);
    }
    let file: ClusterFile =
        serde_json::from_slice(&std::fs::read(d.join("cluster.json")).expect("cluster.json"))
            .expect("parse");
    let targets: Arc<Vec<(String, [u8; 32])>> = Arc::new(
        file.nodes
            .iter()
            .map(|n| {
                let pin: [u8; 32] = hex::decode(n.pin.as_ref().expect("pin"))
                    .expect("hex")
                    .try_into()
                    .expect("32");
                (n.public.clone(), pin)
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (latencies, failures, elapsed) = rt.block_on(async {
        let deadline_warm = Instant::now() + WARMUP;
        let mut set = tokio::task::JoinSet::new();
        let start = Arc::new(std::sync::Mutex::new(None::<Instant>));
        for c in 0..CLIENTS {
            let targets = targets.clone();
            set.spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0u64;
                let mut i = c;
                loop {
                    let now = Instant::now();
                    if now > deadline_warm + RUN {
                        break;
                    }
                    let (addr, pin) = &targets[i % targets.len()];
                    i += 1;
                    let digest = HashAlg::Sha256.digest(format!("bench {c} {i}").as_bytes());
                    let req = AcceptedRequest::build_der(HashAlg::Sha256, &digest, Some(&[1, 2, 3, 4]), true).expect("request");
                    let t = Instant::now();
                    let r = frostamp::net::client::request(addr, Some(*pin), "POST", "/", &[("content-type", "application/timestamp-query".into())], req, Duration::from_secs(30)).await;
                    let took = t.elapsed();
                    let ok = matches!(&r, Ok(resp) if resp.status == 200
                        && <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&resp.body)
                            .map(|t| t.status.status.as_bytes() == [0] && t.time_stamp_token.is_some())
                            .unwrap_or(false));
                    if now >= deadline_warm {
                        if ok {
                            lat.push(took);
                        } else {
                            failed += 1;
                        }
                    }
                }
                (lat, failed)
            });
        }
        let _ = start;
        let mut all = Vec::new();
        let mut failed = 0;
        while let Some(Ok((lat, f))) = set.join_next().await {
            all.extend(lat);
            failed += f;
        }
        (all, failed, RUN)
    });
    let _ = Command::new(&frostamp)
        .args(["cluster", "down", "--dir"])
        .arg(&d)
        .output();
    let raw = raw_frost_rate();
    let mut l = latencies.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let rate = l.len() as f64 / elapsed.as_secs_f64();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("frostamp cluster benchmark (HTTPS, 5 local nodes, t = 3)");
    println!(
        "machine: {} CPUs, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("load:    {CLIENTS} concurrent clients, one TLS connection per request, {}s after {}s warm-up", RUN.as_secs(), WARMUP.as_secs());
    println!();
    println!(
        "tokens issued          {:>8}   ({} failed)",
        l.len(),
        failures
    );
    println!("tokens/s over HTTPS    {rate:>8.1}");
    println!(
        "latency p50            {:>8.1} ms",
        pct(0.50).as_secs_f64() * 1e3
    );
    println!(
        "latency p99            {:>8.1} ms",
        pct(0.99).as_secs_f64() * 1e3
    );
    println!("raw FROST 3-of-5 /s    {raw:>8.1}   (in-process commit+sign+aggregate, same run)");
    println!();
    println!(
        "ratio HTTPS tokens / raw FROST = {:.2} (goal ≥ 0.6)",
        rate / raw
    );
}
