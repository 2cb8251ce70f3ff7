//! Helpers shared by the multi-process tests (`tests/cluster.rs`, `tests/abuse.rs`):
//! start a local cluster through `frostamp cluster up`, talk to its nodes over pinned
//! TLS, read their health and metrics, signal their processes; and the in-process
//! development TSA of the token tests (`tests/tokens.rs`, `tests/interop_go.rs`).
#![allow(dead_code)] // each test crate uses a part of these

use frostamp::cli::ops::ClusterFile;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const FROSTAMP: &str = env!("CARGO_BIN_EXE_frostamp");
pub const NODE: &str = env!("CARGO_BIN_EXE_frostamp-node");

/// An in-process 3-of-5 development TSA on the system clock.
pub fn local_tsa() -> frostamp::local::LocalTsa<frostamp::clock::SystemClock> {
    use frostamp::clock::SystemClock;
    frostamp::local::LocalTsa::new(
        5,
        3,
        frostamp::tsp::TsaProfile::frostamp_default(),
        SystemClock,
        std::sync::Arc::new(SystemClock),
        Vec::new(),
        &mut rand::thread_rng(),
    )
    .unwrap()
}

/// [`local_tsa`] for the ciphersuite `S`.
#[allow(dead_code)]
pub fn local_tsa_for<S: frostamp::threshold::suite::Suite>(
) -> frostamp::local::LocalTsa<frostamp::clock::SystemClock, S> {
    use frostamp::clock::SystemClock;
    frostamp::local::LocalTsa::for_suite(
        5,
        3,
        frostamp::tsp::TsaProfile::frostamp_default(),
        SystemClock,
        std::sync::Arc::new(SystemClock),
        Vec::new(),
        None,
        frostamp::threshold::signer::TimeRule::OwnClock,
        &mut rand::thread_rng(),
    )
    .unwrap()
}

/// Kills child processes even when the test panics.
pub struct Kill(pub Vec<std::process::Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `frostamp cluster up --dir d` with the test's node binary; its cluster.json.
pub fn cluster_up(d: &Path) -> ClusterFile {
    cluster_up_with(d, "secp256k1")
}

/// [`cluster_up`] with `--ciphersuite SUITE`.
#[allow(dead_code)]
pub fn cluster_up_with(d: &Path, suite: &str) -> ClusterFile {
    let out = Command::new(FROSTAMP)
        .args([
            "cluster",
            "up",
            "--ciphersuite",
            suite,
            "--node-bin",
            NODE,
            "--dir",
        ])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(d.join("cluster.json")).unwrap()).unwrap()
}

/// A node's pinned TLS identity from cluster.json.
pub fn pin_of(node: &frostamp::cli::ops::ClusterNode) -> [u8; 32] {
    hex::decode(node.pin.as_ref().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

pub struct Down<'a>(pub &'a Path);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("cluster.json").exists() {
            let _ = Command::new(FROSTAMP)
                .args(["cluster", "down", "--dir"])
                .arg(self.0)
                .output();
        }
    }
}
/// (health, share holders) from a node's /status.
pub fn health(node: &frostamp::cli::ops::ClusterNode) -> (String, u64) {
    let v: serde_json::Value = serde_json::from_str(&get_text(node, "/status")).unwrap();
    (
        v["health"].as_str().unwrap_or("none").to_string(),
        v["share_holders"].as_u64().unwrap(),
    )
}

pub fn wait_health(node: &frostamp::cli::ops::ClusterNode, want: &str, holders: u64) {
    wait_health_within(node, want, holders, Duration::from_secs(30))
}

pub fn wait_health_within(
    node: &frostamp::cli::ops::ClusterNode,
    want: &str,
    holders: u64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = health(node);
        if got == (want.to_string(), holders) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {}: health {got:?}, want ({want}, {holders})",
            node.index
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn pids(file: &ClusterFile) -> Vec<u32> {
    file.nodes.iter().map(|n| n.pid.unwrap()).collect()
}

/// `kill SIG PID`; whether it succeeded.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn kill(pid: u32) {
    signal(pid, "-KILL");
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

/// GET a text resource from a node (pinned TLS).
pub fn get_text(node: &frostamp::cli::ops::ClusterNode, path: &str) -> String {
    let (status, body) = http(node, "GET", path, None, Vec::new());
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// The value of one Prometheus sample (`name{labels}` exactly as written).
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// One HTTPS call to a node's public port (pinned TLS): status and body.
pub fn http(
    node: &frostamp::cli::ops::ClusterNode,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let pin: [u8; 32] = pin_of(node);
    let headers: Vec<(&str, String)> = content_type
        .map(|c| ("content-type", c.to_string()))
        .into_iter()
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt
        .block_on(frostamp::net::client::request(
            &node.public,
            Some(pin),
            method,
            path,
            &headers,
            body,
            Duration::from_secs(20),
        ))
        .unwrap();
    (r.status, r.body)
}

/// POST a DER request to a node (pinned TLS) and return the HTTP status and body.
pub fn post(
    node: &frostamp::cli::ops::ClusterNode,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Vec<u8>) {
    http(node, "POST", "/", Some(content_type), body)
}

/// The serving half of the seed's decision tree, with real processes: 5 up → tokens
/// (CLI, openssl-made requests); 2 killed → tokens still; 3 killed → every request
/// rejected with a clear reason and no token. Bad input gets HTTP errors and the
/// Sends SIGCONT on drop, so a test that fails while a node is stopped leaves
/// nothing frozen behind.
pub struct Resume(pub u32);
impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

/// Opens `per_source` idle TCP connections from each of the loopback addresses `sources`
/// to `addr`, and reopens any the node closes, until `stop` is set; how many it opened.
pub fn flood_peer_port(
    addr: String,
    sources: Vec<std::net::Ipv4Addr>,
    per_source: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let target: std::net::SocketAddr = addr.parse().unwrap();
            let mut opened = 0usize;
            let mut live: Vec<(std::net::Ipv4Addr, tokio::net::TcpStream)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Drop the ones the node closed (a read of 0 bytes or an error).
                let mut per_ip = std::collections::HashMap::<std::net::Ipv4Addr, usize>::new();
                let mut kept = Vec::new();
                for (ip, s) in live.drain(..) {
                    let mut b = [0u8; 1];
                    match s.try_read(&mut b) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            *per_ip.entry(ip).or_default() += 1;
                            kept.push((ip, s));
                        }
                        _ => {} // closed by the node (EOF or reset)
                    }
                }
                live = kept;
                for &ip in &sources {
                    let from_here = per_ip.get(&ip).copied().unwrap_or(0);
                    for _ in from_here..per_source {
                        let sock = tokio::net::TcpSocket::new_v4().unwrap();
                        sock.bind(std::net::SocketAddr::new(ip.into(), 0)).unwrap();
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(Duration::from_millis(500), sock.connect(target))
                                .await
                        {
                            opened += 1;
                            live.push((ip, s));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened
        })
    })
}
