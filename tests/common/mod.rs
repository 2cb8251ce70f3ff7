//! Helpers shared by the multi-process tests (`tests/cluster.rs`, `tests/abuse.rs`):
//! start a local cluster through `frostamp cluster up`, talk to its nodes over pinned
//! TLS, read their health and metrics, signal their processes; and the in-process
//! development TSA of the token tests (`tests/tokens.rs`, `tests/interop_go.rs`).
#![allow(dead_code)] // each test crate uses a part of these

use frostamp::cli::ops::ClusterFile;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) const FROSTAMP: &str = env!("CARGO_BIN_EXE_frostamp");
pub(crate) const NODE: &str = env!("CARGO_BIN_EXE_frostamp-node");

/// How to make an in-process development TSA: the library's own builder, under the
/// name the tests use.
pub(crate) use frostamp::local::LocalSetup as DevTsa;

/// An in-process 3-of-5 development TSA on the system clock.
pub(crate) fn local_tsa() -> frostamp::local::LocalTsa<frostamp::clock::SystemClock> {
    DevTsa::new().build(&mut rand::thread_rng()).unwrap()
}

/// [`local_tsa`] for the ciphersuite `S`.
#[allow(dead_code)]
pub(crate) fn local_tsa_for<S: frostamp::threshold::suite::Suite>(
) -> frostamp::local::LocalTsa<frostamp::clock::SystemClock, S> {
    DevTsa::new().build(&mut rand::thread_rng()).unwrap()
}

/// A DER timestamp request for the SHA-256 digest of `data`, no nonce, certificate
/// wanted.
pub(crate) fn sha256_request(data: &[u8]) -> Vec<u8> {
    use frostamp::tsp::request::{AcceptedRequest, HashAlg};
    AcceptedRequest::build_der(HashAlg::Sha256, &HashAlg::Sha256.digest(data), None, true).unwrap()
}

/// Kills child processes even when the test panics.
pub(crate) struct Kill(pub(crate) Vec<std::process::Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `frostamp cluster up --dir d` with the test's node binary; its cluster.json.
pub(crate) fn cluster_up(d: &Path) -> ClusterFile {
    cluster_up_with(d, "secp256k1")
}

/// [`cluster_up`] with `--ciphersuite SUITE`.
#[allow(dead_code)]
pub(crate) fn cluster_up_with(d: &Path, suite: &str) -> ClusterFile {
    cluster_up_cmd(d, &["--ciphersuite", suite], &[]).1
}

/// `frostamp cluster up --node-bin NODE --dir d EXTRA…` with the environment variables
/// `envs` (inherited by the node processes); asserts that it succeeded. Its stdout and
/// the cluster.json it wrote.
pub(crate) fn cluster_up_cmd(
    d: &Path,
    extra: &[&str],
    envs: &[(&str, &Path)],
) -> (String, ClusterFile) {
    let mut cmd = Command::new(FROSTAMP);
    cmd.args(["cluster", "up", "--node-bin", NODE, "--dir"])
        .arg(d)
        .args(extra);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = run_ok(&mut cmd, "cluster up failed:");
    let file = serde_json::from_slice(&std::fs::read(d.join("cluster.json")).unwrap()).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), file)
}

/// `frostamp cluster status --json --dir d`: every node's status.
pub(crate) fn cluster_status_json(d: &Path) -> serde_json::Value {
    let out = Command::new(FROSTAMP)
        .args(["cluster", "status", "--json", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `frostamp cluster down --dir d`, run; its output (callers check the status).
pub(crate) fn cluster_down(d: &Path) -> Output {
    Command::new(FROSTAMP)
        .args(["cluster", "down", "--dir"])
        .arg(d)
        .output()
        .unwrap()
}

/// A node of cluster.json as the ceremony's client addresses it (pinned identity).
pub(crate) fn pinned(n: &frostamp::cli::ops::ClusterNode) -> frostamp::ceremony::PinnedNode {
    frostamp::ceremony::PinnedNode {
        target: frostamp::ceremony::NodeTarget {
            index: n.index,
            public: n.public.clone(),
            peer: n.peer.clone(),
        },
        pin: pin_of(n),
    }
}

/// `frostamp cluster time-server --dir d WHAT INDEX` (WHAT: `--stop` or `--start`),
/// asserting that it succeeded.
pub(crate) fn time_server(d: &Path, what: &str, index: u16) {
    run_ok(
        Command::new(FROSTAMP)
            .args(["cluster", "time-server", "--dir"])
            .arg(d)
            .arg(what)
            .arg(index.to_string()),
        &format!("time-server {what} {index}:"),
    );
}

/// A development CA `subject` valid for a day from `not_before`.
pub(crate) fn dev_ca(subject: &str, not_before: std::time::SystemTime) -> frostamp::certs::DevCa {
    frostamp::certs::DevCa::generate(
        subject,
        not_before,
        Duration::from_secs(86400),
        &mut rand::thread_rng(),
    )
    .unwrap()
}

/// A free loopback `host:port` (bound, then released).
pub(crate) fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A replacement node process (`node<i>-replacement`, log in `d`) from the test's
/// binary on `node`'s addresses, with the cluster's operator key, development platform
/// and time servers.
pub(crate) fn start_replacement(
    d: &Path,
    node: &frostamp::cli::ops::ClusterNode,
) -> std::process::Child {
    let operator = frostamp::cli::ops::load_operator(&d.join("operator.key")).unwrap();
    start_node(
        d,
        &format!("node{}-replacement", node.index),
        &node.public,
        &node.peer,
        &operator.public_hex().unwrap(),
    )
}

/// A node process `name` (log `d/<name>.log`) from the test's binary on the addresses
/// `public` and `peer`, configured by the operator key `operator` (public, hex), with the
/// cluster's development platform and time servers.
pub(crate) fn start_node(
    d: &Path,
    name: &str,
    public: &str,
    peer: &str,
    operator: &str,
) -> std::process::Child {
    let platform = std::fs::read_to_string(d.join("dev-platform.key")).unwrap();
    let log = std::fs::File::create(d.join(format!("{name}.log"))).unwrap();
    Command::new(NODE)
        .args(["--name", name, "--public", public, "--peer", peer])
        .arg("--time-servers")
        .arg(d.join(frostamp::cli::ops::TIME_CONFIG_FILE))
        .env("FROSTAMP_OPERATOR_KEY", operator)
        .env("FROSTAMP_INSECURE_DEV_PLATFORM", platform)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A finished command's stdout and then its stderr, as text (for assertion messages).
pub(crate) fn output_text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A finished command's exit code (-1 if a signal ended it), stdout and stderr.
pub(crate) fn code_out_err(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `cmd` and asserts that it exited with 0 (the message: `what`, then its stdout
/// and stderr); its output.
pub(crate) fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{what}\n{}", output_text(&out));
    out
}

/// `frostamp verify TSR --data DATA --roots ROOTS`, not yet run: callers add
/// `--time-servers`, `--json`, … and run it.
pub(crate) fn verify_cmd(tsr: &Path, data: &Path, roots: &Path) -> Command {
    let mut c = Command::new(FROSTAMP);
    c.arg("verify")
        .arg(tsr)
        .arg("--data")
        .arg(data)
        .arg("--roots")
        .arg(roots);
    c
}

/// [`verify_cmd`] with `--time-servers TIME` (a cluster's time-servers.json).
pub(crate) fn verify_time_cmd(tsr: &Path, data: &Path, roots: &Path, time: &Path) -> Command {
    let mut c = verify_cmd(tsr, data, roots);
    c.arg("--time-servers").arg(time);
    c
}

/// `frostamp stamp DATA --cluster D`, asserting that it succeeded; its output.
pub(crate) fn stamp_cluster(data: &Path, d: &Path) -> Output {
    run_ok(
        Command::new(FROSTAMP)
            .arg("stamp")
            .arg(data)
            .arg("--cluster")
            .arg(d),
        "frostamp stamp failed:",
    )
}

/// `openssl ts -query -data DATA HASH -cert -out OUT` (HASH e.g. `-sha256`), asserting
/// that it succeeded.
pub(crate) fn openssl_query(data: &Path, hash: &str, out: &Path) {
    run_ok(
        Command::new("openssl")
            .args(["ts", "-query", "-data"])
            .arg(data)
            .args([hash, "-cert", "-out"])
            .arg(out),
        "openssl ts -query failed:",
    );
}

/// `openssl ts -reply -in R -text`, run; its output (callers check the status).
pub(crate) fn openssl_reply_text(r: &Path) -> Output {
    Command::new("openssl")
        .args(["ts", "-reply", "-in"])
        .arg(r)
        .arg("-text")
        .output()
        .unwrap()
}

/// A local cluster (`frostamp cluster up`) in a fresh temporary directory `dir`: its
/// state in `d` (`dir/cluster`), its cluster.json in `file`. Brought down (`frostamp
/// cluster down`) when dropped, before the directory is removed, and when `cluster up`
/// fails.
pub(crate) struct TestCluster {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) d: std::path::PathBuf,
    pub(crate) file: ClusterFile,
}

impl TestCluster {
    /// [`cluster_up_with`] `suite`.
    pub(crate) fn up(suite: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cluster");
        let down = Down(&d);
        let file = cluster_up_with(&d, suite);
        std::mem::forget(down);
        Self { dir, d, file }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        drop(Down(&self.d));
    }
}

/// A node's pinned TLS identity from cluster.json.
pub(crate) fn pin_of(node: &frostamp::cli::ops::ClusterNode) -> [u8; 32] {
    hex::decode(node.pin.as_ref().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

pub(crate) struct Down<'a>(pub(crate) &'a Path);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("cluster.json").exists() {
            let _ = cluster_down(self.0);
        }
    }
}
/// (health, share holders) from a node's /status.
pub(crate) fn health(node: &frostamp::cli::ops::ClusterNode) -> (String, u64) {
    let v: serde_json::Value = serde_json::from_str(&get_text(node, "/status")).unwrap();
    (
        v["health"].as_str().unwrap_or("none").to_string(),
        v["share_holders"].as_u64().unwrap(),
    )
}

pub(crate) fn wait_health(node: &frostamp::cli::ops::ClusterNode, want: &str, holders: u64) {
    wait_health_within(node, want, holders, Duration::from_secs(30))
}

pub(crate) fn wait_health_within(
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

pub(crate) fn pids(file: &ClusterFile) -> Vec<u32> {
    file.nodes.iter().map(|n| n.pid.unwrap()).collect()
}

/// `kill SIG PID`; whether it succeeded.
pub(crate) fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn kill(pid: u32) {
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
pub(crate) fn get_text(node: &frostamp::cli::ops::ClusterNode, path: &str) -> String {
    let (status, body) = http(node, "GET", path, None, Vec::new());
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// The value of one Prometheus sample (`name{labels}` exactly as written), 0 if the
/// text has no such sample (a counter not yet incremented).
pub(crate) fn metric_or_zero(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// A single-threaded tokio runtime with IO and timers.
pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The value of one Prometheus sample (`name{labels}` exactly as written).
pub(crate) fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// POST a DER timestamp request to `addr` over TLS (its key pinned if `pin` is given),
/// waiting at most `timeout`.
pub(crate) async fn post_query_to(
    addr: &str,
    pin: Option<[u8; 32]>,
    req: Vec<u8>,
    timeout: Duration,
) -> Result<frostamp::net::client::Response, frostamp::net::client::ClientError> {
    frostamp::net::client::request(addr, pin, frostamp::net::client::Call::stamp(req), timeout)
        .await
}

/// One HTTPS call to a node's public port (pinned TLS): status and body.
pub(crate) fn http(
    node: &frostamp::cli::ops::ClusterNode,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let pin: [u8; 32] = pin_of(node);
    let headers = content_type
        .map(|c| ("content-type", c.to_string()))
        .into_iter()
        .collect();
    let call = frostamp::net::client::Call {
        method,
        path,
        headers,
        body,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt
        .block_on(frostamp::net::client::request(
            &node.public,
            Some(pin),
            call,
            Duration::from_secs(20),
        ))
        .unwrap();
    (r.status, r.body)
}

/// POST a DER request to a node (pinned TLS) and return the HTTP status and body.
pub(crate) fn post(
    node: &frostamp::cli::ops::ClusterNode,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Vec<u8>) {
    http(node, "POST", "/", Some(content_type), body)
}

/// POST the DER request in the file `q` to a node (pinned TLS): status and body.
pub(crate) fn post_file(node: &frostamp::cli::ops::ClusterNode, q: &Path) -> (u16, Vec<u8>) {
    post(
        node,
        std::fs::read(q).unwrap(),
        "application/timestamp-query",
    )
}

/// The serving half of the seed's decision tree, with real processes: 5 up → tokens
/// (CLI, openssl-made requests); 2 killed → tokens still; 3 killed → every request
/// rejected with a clear reason and no token. Bad input gets HTTP errors and the
/// Sends SIGCONT on drop, so a test that fails while a node is stopped leaves
/// nothing frozen behind.
pub(crate) struct Resume(pub(crate) u32);
impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

/// Opens `per_source` idle TCP connections from each of the loopback addresses `sources`
/// to `addr`, and reopens any the node closes, until `stop` is set; how many it opened.
pub(crate) fn flood_peer_port(
    addr: String,
    sources: Vec<std::net::Ipv4Addr>,
    per_source: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let rt = current_thread_runtime();
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
