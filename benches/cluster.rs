//! `make bench` part 2: a running local five-node cluster (release build, development
//! attestation, local Roughtime servers, all on this machine) driven over HTTPS, set
//! against an honest bound measured in the same run (issue 15):
//!
//! - **bound**: raw FROST 3-of-5 (three commitments, three shares, aggregate, which
//!   verifies the group signature: exactly the arithmetic one token needs across all
//!   parties), in process, on one thread and on as many threads as the machine has cores;
//!   then what frost-core's `generator() * k` costs against k256's precomputed tables
//!   (`--generator N` runs only that);
//! - **keep-alive**: closed-loop clients that keep one HTTPS connection open each;
//! - **per-connection**: closed-loop clients that open one TLS connection per request (what
//!   `openssl ts` + `curl` do) — the load of the figures before issue 15;
//! - **open loop** at 25 %, 50 % and 90 % of the keep-alive capacity: requests arrive at a
//!   fixed rate whatever the answers, latency counted from each request's arrival time.
//!
//! For each load it reports the CPU the nodes, the time servers and the load generator
//! itself used (from `/proc`, in cores), so client-side TLS is not charged to the nodes
//! unnoticed.
//!
//! Needs `target/release/frostamp` and `target/release/frostamp-node` built with
//! `--features insecure-dev-attestation` (the Makefile's `bench` target does it).
// Benchmarks may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use frostamp::cli::ops::ClusterFile;
use frostamp::net::client::Connection;
use frostamp::threshold::frost;
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const WARMUP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(10);
const OPEN_RUN: Duration = Duration::from_secs(6);
/// Keep-alive connections the open-loop generator holds (spread over the nodes).
const OPEN_CONNECTIONS: usize = 40;
const TIMEOUT: Duration = Duration::from_secs(30);

type Targets = Arc<Vec<(String, [u8; 32])>>;

/// RFC 9591 3-of-5 signing with a key made in process: the arithmetic of one token
/// across all parties.
struct RawFrost {
    rng: rand::rngs::ThreadRng,
    shares: Vec<frostamp::threshold::keys::KeyShare>,
    group: frostamp::threshold::keys::GroupKey,
}

impl RawFrost {
    fn new() -> Self {
        let mut rng = rand::thread_rng();
        let (shares, group) =
            frostamp::threshold::keys::dkg_in_process(5, 3, &mut rng).expect("dkg");
        RawFrost { rng, shares, group }
    }

    /// One signature: three commitments, three shares, the aggregate (which verifies).
    fn once(&mut self) {
        let msg = [7u8; 100];
        let signers = &self.shares[..3];
        let mut nonces = Vec::new();
        let mut commitments = BTreeMap::new();
        for s in signers {
            let (n, c) = frostamp::threshold::signer::commit(s, &mut self.rng);
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
        // frost-core's aggregate verifies the group signature before returning it.
        frost::aggregate(&pkg, &out, self.group.package()).expect("aggregate");
    }
}

/// Signatures made in `seconds` on this thread, after a 300 ms warm-up.
fn frost_loop(seconds: f64) -> u64 {
    let mut raw = RawFrost::new();
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        raw.once();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        raw.once();
        n += 1;
    }
    n
}

/// Exactly `n` signatures: `--raw-tokens N` runs only this, so that
/// `scripts/callgrind-breakdown.sh` can count the instructions of the arithmetic alone
/// (`--toggle-collect` on this function).
#[inline(never)]
fn raw_tokens(raw: &mut RawFrost, n: u64) {
    for _ in 0..n {
        raw.once();
    }
}

/// `n` multiplications of secp256k1's generator the way frost-core makes nonce
/// commitments and the verification's z·G (`Group::generator() * scalar`: k256's
/// variable-base multiplication, a window table built for each call).
#[inline(never)]
fn generator_variable_base(scalars: &[k256::Scalar]) -> k256::ProjectivePoint {
    let mut acc = k256::ProjectivePoint::IDENTITY;
    for s in scalars {
        acc += k256::ProjectivePoint::GENERATOR * s;
    }
    acc
}

/// The same products with k256's precomputed generator tables (`mul_by_generator`).
#[inline(never)]
fn generator_precomputed(scalars: &[k256::Scalar]) -> k256::ProjectivePoint {
    use k256::elliptic_curve::ops::MulByGenerator;
    let mut acc = k256::ProjectivePoint::IDENTITY;
    for s in scalars {
        acc += k256::ProjectivePoint::mul_by_generator(s);
    }
    acc
}

/// `--generator N`: N products k·G both ways, timed, and checked to agree (issue 15:
/// what frost-core's use of k256 leaves on the table).
fn generator_comparison(n: usize) {
    use k256::elliptic_curve::Field;
    let mut rng = rand::thread_rng();
    let scalars: Vec<k256::Scalar> = (0..n).map(|_| k256::Scalar::random(&mut rng)).collect();
    // Build the lazy tables and warm both paths outside the timing.
    let _ = generator_precomputed(&scalars[..1]);
    let _ = generator_variable_base(&scalars[..1]);
    let t = Instant::now();
    let a = generator_variable_base(&scalars);
    let variable = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    let b = generator_precomputed(&scalars);
    let table = t.elapsed().as_secs_f64() / n as f64;
    assert_eq!(a, b, "both ways give the same points");
    println!("k·G, {n} scalars, one thread:");
    println!(
        "  generator() * k (what frost-core calls) {:>8.1} µs",
        variable * 1e6
    );
    println!(
        "  mul_by_generator(k) (k256's tables)     {:>8.1} µs",
        table * 1e6
    );
    println!(
        "  per token (6 nonce commitments + 1 z·G): {:.1} µs more than with the tables",
        7.0 * (variable - table) * 1e6
    );
}

/// Raw FROST signatures per second on `threads` threads at once.
fn raw_frost_rate(threads: usize) -> f64 {
    const SECONDS: f64 = 3.0;
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(|| frost_loop(SECONDS)))
        .collect();
    let n: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    n as f64 / SECONDS
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ; 100 on Linux).
const TICKS: f64 = 100.0;

/// (utime, stime) of a process, in ticks: time in user space and in the kernel.
fn proc_ticks(pid: &str) -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0, 0);
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return (0, 0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (get(11), get(12))
}

/// utime + stime of a process, in ticks.
fn proc_total(pid: &str) -> u64 {
    let (user, kernel) = proc_ticks(pid);
    user + kernel
}

/// Pids of the processes whose command line mentions `needle` (the time servers' seed
/// files live in the cluster directory).
fn pids_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.chars().all(|c| c.is_ascii_digit()).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Busy and total ticks of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Who used the CPU during a load, in cores.
struct CpuSplit {
    nodes: f64,
    /// The part of `nodes` spent in the kernel (system calls, loopback TCP, scheduling).
    nodes_kernel: f64,
    time_servers: f64,
    generator: f64,
    machine_busy: f64,
}

struct CpuProbe {
    nodes: Vec<String>,
    time_servers: Vec<String>,
}

struct CpuMark {
    nodes: u64,
    nodes_kernel: u64,
    time_servers: u64,
    generator: u64,
    machine: (u64, u64),
    at: Instant,
}

impl CpuProbe {
    fn mark(&self) -> CpuMark {
        CpuMark {
            nodes: self.nodes.iter().map(|p| proc_total(p)).sum(),
            nodes_kernel: self.nodes.iter().map(|p| proc_ticks(p).1).sum(),
            time_servers: self.time_servers.iter().map(|p| proc_total(p)).sum(),
            generator: proc_total("self"),
            machine: machine_ticks(),
            at: Instant::now(),
        }
    }

    fn since(&self, m: &CpuMark) -> CpuSplit {
        let now = self.mark();
        let secs = now.at.duration_since(m.at).as_secs_f64().max(1e-3);
        let cores = |a: u64, b: u64| a.saturating_sub(b) as f64 / TICKS / secs;
        let (busy, total) = (
            now.machine.0.saturating_sub(m.machine.0),
            now.machine.1.saturating_sub(m.machine.1),
        );
        CpuSplit {
            nodes: cores(now.nodes, m.nodes),
            nodes_kernel: cores(now.nodes_kernel, m.nodes_kernel),
            time_servers: cores(now.time_servers, m.time_servers),
            generator: cores(now.generator, m.generator),
            machine_busy: busy as f64 / total.max(1) as f64,
        }
    }
}

fn timestamp_request(tag: &str) -> Vec<u8> {
    let digest = HashAlg::Sha256.digest(tag.as_bytes());
    AcceptedRequest::build_der(HashAlg::Sha256, &digest, Some(&[1, 2, 3, 4]), true)
        .expect("request")
}

fn granted(
    r: &Result<frostamp::net::client::Response, frostamp::net::client::ClientError>,
) -> bool {
    matches!(r, Ok(resp) if resp.status == 200
        && <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&resp.body)
            .map(|t| t.status.status.as_bytes() == [0] && t.time_stamp_token.is_some())
            .unwrap_or(false))
}

fn shed(r: &Result<frostamp::net::client::Response, frostamp::net::client::ClientError>) -> bool {
    matches!(r, Ok(resp) if resp.status == 503)
}

/// What one load gave.
struct Outcome {
    latencies: Vec<Duration>,
    /// Answered HTTP 503 (the node shed the request).
    shed: u64,
    /// Any other failure.
    failed: u64,
    elapsed: Duration,
    cpu: CpuSplit,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn pct_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    }
}

/// `CLIENTS` clients, each sending its next request when the last one is answered.
async fn closed_loop(targets: Targets, keep_alive: bool, probe: &CpuProbe) -> Outcome {
    let warm_end = Instant::now() + WARMUP;
    let end = warm_end + RUN;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let targets = targets.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            let (mut failed, mut shed_n) = (0u64, 0u64);
            let (addr, pin) = targets[c % targets.len()].clone();
            let mut conn: Option<Connection> = None;
            let mut i = c;
            loop {
                let now = Instant::now();
                if now > end {
                    break;
                }
                i += 1;
                let req = timestamp_request(&format!("bench {c} {i}"));
                let t = Instant::now();
                let r = if keep_alive {
                    if conn.is_none() {
                        conn = Connection::open(&addr, Some(pin), TIMEOUT).await.ok();
                    }
                    match conn.as_mut() {
                        Some(k) => {
                            let r = k
                                .send(frostamp::net::client::Call::stamp(req), TIMEOUT)
                                .await;
                            if r.is_err() {
                                conn = None;
                            }
                            r
                        }
                        None => Err(frostamp::net::client::ClientError::Http("connect".into())),
                    }
                } else {
                    // Round-robin over the nodes, one TLS handshake per request.
                    let (addr, pin) = &targets[i % targets.len()];
                    frostamp::net::client::request(
                        addr,
                        Some(*pin),
                        frostamp::net::client::Call::stamp(req),
                        TIMEOUT,
                    )
                    .await
                };
                let took = t.elapsed();
                if now >= warm_end {
                    if granted(&r) {
                        lat.push(took);
                    } else if shed(&r) {
                        shed_n += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            (lat, failed, shed_n)
        });
    }
    tokio::time::sleep_until(warm_end.into()).await;
    let mark = probe.mark();
    let mut latencies = Vec::new();
    let (mut failed, mut shed_n) = (0, 0);
    while let Some(Ok((lat, f, sh))) = set.join_next().await {
        latencies.extend(lat);
        failed += f;
        shed_n += sh;
    }
    let cpu = probe.since(&mark);
    Outcome {
        latencies,
        shed: shed_n,
        failed,
        elapsed: RUN,
        cpu,
    }
}

/// Requests arriving at `rate` per second, whatever the answers; each takes a free
/// kept-alive connection (waiting if none is free) and its latency counts from its
/// arrival time.
async fn open_loop(targets: Targets, rate: f64, probe: &CpuProbe) -> Outcome {
    let (free_tx, free_rx) = tokio::sync::mpsc::unbounded_channel::<Option<Connection>>();
    let free_rx = Arc::new(tokio::sync::Mutex::new(free_rx));
    for _ in 0..OPEN_CONNECTIONS {
        let _ = free_tx.send(None);
    }
    let failed = Arc::new(AtomicU64::new(0));
    let shed_n = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now() + Duration::from_millis(200);
    let mut set = tokio::task::JoinSet::new();
    tokio::time::sleep_until(start.into()).await;
    let mark = probe.mark();
    let mut k = 0u64;
    loop {
        let arrival = start + interval.mul_f64(k as f64);
        if arrival >= start + OPEN_RUN {
            break;
        }
        tokio::time::sleep_until(arrival.into()).await;
        let (targets, free_tx, free_rx, failed, shed_n) = (
            targets.clone(),
            free_tx.clone(),
            free_rx.clone(),
            failed.clone(),
            shed_n.clone(),
        );
        set.spawn(async move {
            let slot = free_rx.lock().await.recv().await.flatten();
            let (addr, pin) = &targets[k as usize % targets.len()];
            let mut conn = match slot {
                Some(c) => Some(c),
                None => Connection::open(addr, Some(*pin), TIMEOUT).await.ok(),
            };
            let req = timestamp_request(&format!("open {k}"));
            let r = match conn.as_mut() {
                Some(c) => {
                    c.send(frostamp::net::client::Call::stamp(req), TIMEOUT)
                        .await
                }
                None => Err(frostamp::net::client::ClientError::Http("connect".into())),
            };
            let took = arrival.elapsed();
            let ok = granted(&r);
            let _ = free_tx.send(if r.is_ok() { conn } else { None });
            if ok {
                Some(took)
            } else {
                if shed(&r) {
                    shed_n.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        });
        k += 1;
    }
    let mut latencies = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(l)) = joined {
            latencies.push(l);
        }
    }
    let elapsed = start.elapsed();
    let cpu = probe.since(&mark);
    Outcome {
        latencies,
        shed: shed_n.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        cpu,
    }
}

fn print_load(name: &str, o: &Outcome, bound: f64, one: f64) {
    println!(
        "{name:<16} {:>7.1} tokens/s = {:>4.2} of bound   p50 {:>6.1} ms  p99 {:>6.1} ms   ({} tokens, {} shed with 503, {} failed)",
        o.rate(),
        o.rate() / bound,
        o.pct_ms(0.50),
        o.pct_ms(0.99),
        o.latencies.len(),
        o.shed,
        o.failed
    );
    println!(
        "{:<16} CPU in cores: nodes {:.2}, time servers {:.2}, load generator {:.2}; machine busy {:.0} %",
        "",
        o.cpu.nodes,
        o.cpu.time_servers,
        o.cpu.generator,
        o.cpu.machine_busy * 100.0
    );
    // The nodes' CPU time per token, against what one thread of raw FROST needs per
    // signature (the arithmetic of one token across all parties).
    let per_token = |cores: f64| cores * 1e3 / o.rate().max(1e-9);
    println!(
        "{:<16} node CPU per token {:.2} ms (user {:.2}, kernel {:.2}); the arithmetic needs {:.2} ms",
        "",
        per_token(o.cpu.nodes),
        per_token(o.cpu.nodes - o.cpu.nodes_kernel),
        per_token(o.cpu.nodes_kernel),
        1e3 / one
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--generator") {
        let n: usize = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .expect("--generator N");
        generator_comparison(n);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--raw-tokens") {
        let n: u64 = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .expect("--raw-tokens N");
        let mut raw = RawFrost::new();
        raw.once(); // lazy initialisation outside the counted function
        raw_tokens(&mut raw, n);
        println!("raw FROST 3-of-5: {n} signatures");
        return;
    }
    let bin = std::env::var("FROSTAMP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"));
    let frostamp = bin.join("frostamp");
    let node = bin.join("frostamp-node");
    if !frostamp.exists() || !node.exists() {
        eprintln!("build first: cargo build --release --features insecure-dev-attestation --bins");
        std::process::exit(1);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    println!("frostamp cluster benchmark (HTTPS, 5 local nodes, t = 3, local Roughtime servers)");
    println!("machine: {cores} CPUs, {cpu}");
    println!();

    // The bound first, on an otherwise idle machine.
    let one = raw_frost_rate(1);
    let bound = raw_frost_rate(cores);
    println!("bound: raw FROST 3-of-5 (commit + sign + aggregate + verify, in process)");
    println!("  1 thread        {one:>7.1} /s");
    println!("  {cores} threads       {bound:>7.1} /s   <- the bound below");
    generator_comparison(2000);
    println!();

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
    let targets: Targets = Arc::new(
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
    let probe = CpuProbe {
        nodes: file
            .nodes
            .iter()
            .filter_map(|n| n.pid.map(|p| p.to_string()))
            .collect(),
        time_servers: {
            let nodes: Vec<String> = file
                .nodes
                .iter()
                .filter_map(|n| n.pid.map(|p| p.to_string()))
                .collect();
            pids_mentioning(&d.join("time"))
                .into_iter()
                .filter(|p| !nodes.contains(p))
                .collect()
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (keep, per_conn, levels) = rt.block_on(async {
        let keep = closed_loop(targets.clone(), true, &probe).await;
        let per_conn = closed_loop(targets.clone(), false, &probe).await;
        let capacity = keep.rate();
        let mut levels = Vec::new();
        for share in [0.25, 0.50, 0.90] {
            let o = open_loop(targets.clone(), capacity * share, &probe).await;
            levels.push((share, capacity * share, o));
        }
        (keep, per_conn, levels)
    });
    let _ = Command::new(&frostamp)
        .args(["cluster", "down", "--dir"])
        .arg(&d)
        .output();

    println!(
        "closed loop: {CLIENTS} clients, {}s after {}s warm-up",
        RUN.as_secs(),
        WARMUP.as_secs()
    );
    print_load("keep-alive", &keep, bound, one);
    print_load("per-connection", &per_conn, bound, one);
    println!();
    println!(
        "open loop on {OPEN_CONNECTIONS} kept-alive connections, {}s per level (share of keep-alive capacity):",
        OPEN_RUN.as_secs()
    );
    for (share, offered, o) in &levels {
        print_load(
            &format!("{:>3.0} % ({offered:.0}/s)", share * 100.0),
            o,
            bound,
            one,
        );
    }
    println!();
    let half = levels
        .iter()
        .find(|(s, _, _)| (*s - 0.5).abs() < 1e-9)
        .map(|(_, _, o)| o.pct_ms(0.5))
        .unwrap_or(f64::NAN);
    let mark = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("goals (issue 15):");
    println!(
        "  keep-alive     ≥ 0.8 of bound: {:.2} {}",
        keep.rate() / bound,
        mark(keep.rate() / bound >= 0.8)
    );
    println!(
        "  per-connection ≥ 0.6 of bound: {:.2} {}",
        per_conn.rate() / bound,
        mark(per_conn.rate() / bound >= 0.6)
    );
    println!(
        "  p50 at 50 % load ≤ 3 ms:       {half:.1} ms {}",
        mark(half <= 3.0)
    );
}
