//! One public endpoint: HAProxy with the shipped `deploy/haproxy.cfg` (its addresses
//! rewritten for loopback) in front of a local five-process cluster. Client tasks stamp
//! through it without pause while node 2 and then node 4 are killed (the cluster goes
//! degraded, then critical) and both are repaired one after the other the way
//! docs/runbook.md §4 says (`frostamp ceremony repair`). Every client request must get
//! a token, and every token must verify (signature, chain to the cluster's root, nonce,
//! imprint, time evidence). The counts, HAProxy's retries and redispatches included,
//! are printed. Last, with the clients stopped, two of the three time servers stop:
//! every node says `no_time` and HAProxy takes them all out (a client gets HTTP 503),
//! and they come back when the servers do.
//!
//! Needs `haproxy` (Debian's package; `make system-deps` installs it) or
//! `$FROSTAMP_HAPROXY`; without it the test says so and passes without running.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
#![cfg(feature = "insecure-dev-attestation")]

mod common;
use common::{
    free_addr, get_text, kill, metric, start_replacement, time_server, wait_health_within, Kill,
    TestCluster, FROSTAMP,
};
use frostamp::cli::ops::{ClusterFile, ClusterNode};
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use frostamp::verify::token::{verify, Expected, VerifyOptions};
use frostamp::x509::parse_certificates;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shipped configuration.
const SHIPPED: &str = include_str!("../deploy/haproxy.cfg");
/// Client tasks stamping at once.
const CLIENTS: usize = 6;

/// The haproxy binary, if one runs: `$FROSTAMP_HAPROXY`, else `haproxy` on `PATH`, else
/// `/usr/sbin/haproxy` (Debian's, not on a non-root user's `PATH`).
fn haproxy() -> Option<String> {
    let candidates = match std::env::var("FROSTAMP_HAPROXY") {
        Ok(b) => vec![b],
        Err(_) => vec!["haproxy".into(), "/usr/sbin/haproxy".into()],
    };
    candidates.into_iter().find(|bin| {
        let Ok(out) = Command::new(bin).arg("-v").output() else {
            return false;
        };
        if out.status.success() {
            let v = String::from_utf8_lossy(&out.stdout);
            eprintln!("{bin}: {}", v.lines().next().unwrap_or(""));
        }
        out.status.success()
    })
}

/// Replace `from` (which must occur exactly once) by `to`.
fn swap(cfg: String, from: &str, to: &str) -> String {
    assert_eq!(
        cfg.matches(from).count(),
        1,
        "deploy/haproxy.cfg should contain {from:?} exactly once"
    );
    cfg.replacen(from, to, 1)
}

/// The shipped file with the lines marked `test:` rewritten for loopback: node
/// addresses, the root the nodes' TLS certificates are verified against (the cluster's
/// root.pem), the public bind and its certificate, the stats socket and page, logs to
/// stdout, and no chroot, user switch or daemon mode (a foreground child process).
fn render(
    nodes: &[ClusterNode],
    root: &Path,
    public: &str,
    pem: &Path,
    socket: &Path,
    stats: &str,
) -> String {
    let kept: Vec<&str> = SHIPPED
        .lines()
        .filter(|l| !l.contains("# test: dropped"))
        .collect();
    assert_eq!(
        SHIPPED.lines().count() - kept.len(),
        4,
        "chroot, user, group, daemon"
    );
    let mut cfg = kept.join("\n") + "\n";
    cfg = swap(cfg, "log /dev/log local0", "log stdout format raw local0");
    cfg = swap(
        cfg,
        "/run/haproxy/admin.sock",
        &socket.display().to_string(),
    );
    cfg = swap(
        cfg,
        "bind :443 ssl crt /etc/haproxy/certs/frostamp.pem",
        &format!("bind {public} ssl crt {}", pem.display()),
    );
    cfg = swap(cfg, "bind 127.0.0.1:8404", &format!("bind {stats}"));
    cfg = swap(
        cfg,
        "ca-file /etc/haproxy/frostamp-root.pem",
        &format!("ca-file {}", root.display()),
    );
    for n in nodes {
        cfg = swap(cfg, &format!("10.0.0.{}:8443", n.index), &n.public);
    }
    cfg
}

/// `show stat` on the stats socket: (proxy, server) → column → value.
fn stats(socket: &Path) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(b"show stat\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let mut out = BTreeMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let v: Vec<&str> = l.split(',').collect();
        let row: BTreeMap<String, String> = header
            .iter()
            .zip(&v)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.insert((v[0].to_string(), v[1].to_string()), row);
    }
    out
}

fn server_status(socket: &Path, name: &str) -> String {
    stats(socket)[&("frostamp".to_string(), name.to_string())]["status"].clone()
}

fn wait_server(socket: &Path, index: u16, want: &str, within: Duration) -> Duration {
    let name = &format!("node{index}");
    let started = Instant::now();
    loop {
        let got = server_status(socket, name);
        if got.starts_with(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "HAProxy: {name} is {got}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `frostamp ceremony repair --index i` (runbook §4).
fn repair(d: &Path, index: u16) {
    let out = common::run_ok(
        Command::new(FROSTAMP)
            .args(["ceremony", "repair", "--index", &index.to_string()])
            .arg("--state-dir")
            .arg(d),
        &format!("repair of node {index}:"),
    );
    eprintln!(
        "  {}",
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', "\n  ")
    );
}

/// The phase a node reports on `GET /status` (no pin: a replacement not attested yet),
/// once it answers.
fn unpinned_phase(public: &str, within: Duration) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + within;
    loop {
        let r = rt.block_on(frostamp::net::client::request(
            public,
            None,
            frostamp::net::client::Call::get("/status"),
            Duration::from_secs(5),
        ));
        if let Ok(r) = r {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            return v["phase"].as_str().unwrap_or("?").to_string();
        }
        assert!(Instant::now() < deadline, "{public} does not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// In a HAProxy log line, the last part of the `nth` field made of five `/`-separated
/// parts (the first such field is the timers TR/Tw/Tc/Tr/Ta, the second the connection
/// counts actconn/feconn/beconn/srv_conn/retries).
fn slashed_field(line: &str, nth: usize) -> Option<&str> {
    line.split_whitespace()
        .filter(|w| w.matches('/').count() == 4)
        .nth(nth)
        .and_then(|w| w.rsplit('/').next())
}

/// [`wait_server`] for every node of `nodes`.
fn wait_servers(socket: &Path, nodes: &[ClusterNode], want: &str, within: Duration) {
    for n in nodes {
        wait_server(socket, n.index, want, within);
    }
}

/// POST a timestamp request to the balancer at `public` (its certificate pinned).
async fn balancer_post(
    public: &str,
    pin: [u8; 32],
    req: Vec<u8>,
) -> Result<frostamp::net::client::Response, frostamp::net::client::ClientError> {
    common::post_query_to(public, Some(pin), req, Duration::from_secs(30)).await
}

/// What one client request got.
struct Outcome {
    digest: [u8; 32],
    nonce: [u8; 8],
    /// The response body (HTTP 200), or why there was none.
    reply: Result<Vec<u8>, String>,
    ms: u128,
    /// The step of the run it started in.
    step: usize,
}

#[test]
fn clients_behind_haproxy_see_no_failure_while_two_nodes_are_killed_and_repaired() {
    let Some(haproxy) = haproxy() else {
        eprintln!(
            "SKIPPED: no `haproxy` binary (install Debian's package: `apt-get install haproxy`, \
             or `make system-deps`; or set FROSTAMP_HAPROXY)"
        );
        return;
    };
    let c = TestCluster::up("secp256k1");
    let (dir, d, file) = (&c.dir, &c.d, &c.file);

    // The balancer's certificate for the public name (a test one).
    let h = dir.path().join("haproxy");
    std::fs::create_dir_all(&h).unwrap();
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=tsa.test", "-keyout"])
        .arg(h.join("key.pem"))
        .arg("-out")
        .arg(h.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl req");
    let cert_pem = std::fs::read(h.join("cert.pem")).unwrap();
    let pem = h.join("tsa.pem");
    std::fs::write(
        &pem,
        [cert_pem.clone(), std::fs::read(h.join("key.pem")).unwrap()].concat(),
    )
    .unwrap();
    let balancer_pin =
        frostamp::net::tls::spki_sha256_of_cert(&parse_certificates(&cert_pem).unwrap()[0].der)
            .unwrap();

    let public = free_addr();
    let stats_addr = free_addr();
    let socket = h.join("admin.sock");
    let cfg = h.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        render(
            &file.nodes,
            file.root.as_ref().unwrap(),
            &public,
            &pem,
            &socket,
            &stats_addr,
        ),
    )
    .unwrap();
    common::run_ok(
        Command::new(&haproxy).args(["-c", "-f"]).arg(&cfg),
        "haproxy -c:",
    );
    let log_path = h.join("haproxy.log");
    let _balancer = Kill(vec![Command::new(&haproxy)
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(std::fs::File::create(h.join("haproxy.stderr")).unwrap())
        .spawn()
        .unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no stats socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_servers(&socket, &file.nodes, "UP", Duration::from_secs(20));
    eprintln!("HAProxy on {public}: all five nodes UP");

    // Clients: each stamps a fresh digest with a fresh nonce, one request after the
    // other, over a new TLS connection to the balancer each time.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let step = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, step, public) = (stop.clone(), step.clone(), public.clone());
            rt.spawn(async move {
                let mut got = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let digest =
                        HashAlg::Sha256.digest(format!("client {c} request {i}").as_bytes());
                    let digest: [u8; 32] = digest.as_slice().try_into().unwrap();
                    let nonce: [u8; 8] = rand::random();
                    let req =
                        AcceptedRequest::build_der(HashAlg::Sha256, &digest, Some(&nonce), true)
                            .unwrap();
                    let at = step.load(Ordering::Relaxed);
                    let started = Instant::now();
                    let r = balancer_post(&public, balancer_pin, req).await;
                    let reply = match r {
                        Ok(r) if r.status == 200 => Ok(r.body),
                        Ok(r) => Err(format!(
                            "HTTP {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body).trim()
                        )),
                        Err(e) => Err(e.to_string()),
                    };
                    got.push(Outcome {
                        digest,
                        nonce,
                        reply,
                        ms: started.elapsed().as_millis(),
                        step: at,
                    });
                    i += 1;
                }
                got
            })
        })
        .collect();

    // The run: each step's name, and when it began.
    let run_started = Instant::now();
    let mut steps: Vec<(String, Duration)> = vec![("5 nodes".into(), Duration::ZERO)];
    let mut mark = |name: String| {
        steps.push((name, run_started.elapsed()));
        step.store(steps.len() - 1, Ordering::Relaxed);
    };
    std::thread::sleep(Duration::from_secs(5));
    let mut replacements = Kill(Vec::new());
    for lost in [2u16, 4] {
        let node = &file.nodes[usize::from(lost - 1)];
        mark(format!("node {lost} killed"));
        kill(node.pid.unwrap());
        let down = wait_server(&socket, lost, "DOWN", Duration::from_secs(20));
        eprintln!("node {lost} killed: HAProxy marked it DOWN after {down:?}");
        std::thread::sleep(Duration::from_secs(5));
    }
    for lost in [2u16, 4] {
        let node = &file.nodes[usize::from(lost - 1)];
        mark(format!("node {lost} replaced and repaired"));
        replacements.0.push(start_replacement(d, node));
        let started = Instant::now();
        // Running but not serving yet (no share): answers /status, stays DOWN.
        let phase = unpinned_phase(&node.public, Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(3));
        let row = &stats(&socket)[&("frostamp".to_string(), format!("node{lost}"))];
        eprintln!(
            "node {lost}: replacement answers /status (phase {phase}); HAProxy 3 s later: {} ({})",
            row["status"], row["last_chk"]
        );
        assert!(row["status"].starts_with("DOWN"), "{row:?}");
        repair(d, lost);
        let up = wait_server(&socket, lost, "UP", Duration::from_secs(30));
        eprintln!(
            "node {lost}: replacement started, repaired, UP in HAProxy after {:?} (UP {up:?} after the repair)",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    let after: ClusterFile =
        serde_json::from_slice(&std::fs::read(d.join("cluster.json")).unwrap()).unwrap();
    for n in &after.nodes {
        wait_health_within(n, "healthy", 5, Duration::from_secs(30));
    }
    mark("5 nodes again".into());
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<Outcome> = clients
        .into_iter()
        .flat_map(|c| rt.block_on(c).unwrap())
        .collect();
    let elapsed = run_started.elapsed();

    // Every token verifies against the cluster's root and time servers.
    let anchors = parse_certificates(&std::fs::read(file.root.as_ref().unwrap()).unwrap()).unwrap();
    let time = frostamp::cli::time_policy_from_file(&d.join(frostamp::cli::ops::TIME_CONFIG_FILE))
        .unwrap();
    let mut failures: Vec<String> = Vec::new();
    let mut per_step = vec![(0usize, 0usize, 0u128); steps.len()];
    let mut serials = std::collections::BTreeSet::new();
    for o in &outcomes {
        let verdict = o.reply.clone().and_then(|body| {
            verify(
                &body,
                &VerifyOptions {
                    expected: Expected::Digest(o.digest.to_vec()),
                    anchors: anchors.clone(),
                    extra_certs: Vec::new(),
                    at: None,
                    nonce: Some(o.nonce.to_vec()),
                    policy: None,
                    time: Some(time.clone()),
                },
            )
            .map_err(|e| e.to_string())
        });
        let s = &mut per_step[o.step];
        s.0 += 1;
        s.2 = s.2.max(o.ms);
        match verdict {
            Ok(v) => {
                assert!(serials.insert(v.serial), "serial numbers are unique");
            }
            Err(e) => {
                s.1 += 1;
                failures.push(format!("[{}] {e}", steps[o.step].0));
            }
        }
    }

    // What HAProxy saw.
    let st = stats(&socket);
    let backend = &st[&("frostamp".to_string(), "BACKEND".to_string())];
    let frontend = &st[&("tsa".to_string(), "FRONTEND".to_string())];
    let log = std::fs::read_to_string(&log_path).unwrap();
    let mut retried = 0;
    let mut redispatched = 0;
    let mut logged = 0;
    let mut slow = Vec::new();
    for l in log.lines().filter(|l| l.contains("\"POST / HTTP/1.1\"")) {
        logged += 1;
        // TR/Tw/Tc/Tr/Ta: requests that took HAProxy over 2 s in total.
        let total = slashed_field(l, 0).and_then(|t| t.parse::<u64>().ok());
        if total.is_some_and(|t| t > 2000) {
            slow.push(l.to_string());
        }
        // actconn/feconn/beconn/srv_conn/retries, "+" when redispatched.
        // (The first field with four slashes is the timers TR/Tw/Tc/Tr/Ta.)
        if let Some(r) = slashed_field(l, 1) {
            if r.starts_with('+') {
                redispatched += 1;
            }
            if r.trim_start_matches('+') != "0" {
                retried += 1;
            }
        }
    }
    let exporter = {
        let mut s = std::net::TcpStream::connect(&stats_addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    assert!(
        exporter.contains("haproxy_backend_retry_warnings_total"),
        "Prometheus exporter of deploy/haproxy.cfg"
    );

    eprintln!(
        "\n{} client requests through HAProxy in {:.1} s ({CLIENTS} clients, {:.1}/s): {} tokens verified, {} failed",
        outcomes.len(),
        elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        outcomes.len() - failures.len(),
        failures.len()
    );
    for (i, (name, at)) in steps.iter().enumerate() {
        let (n, f, max) = per_step[i];
        eprintln!(
            "  from {:>5.1} s  {name:<34} {n:>5} requests, {f} failed, slowest {max} ms",
            at.as_secs_f64()
        );
    }
    eprintln!(
        "HAProxy: frontend {} requests, {} 2xx, {} 5xx; backend {} retries (wretr), {} redispatches (wredis), {} connection errors (econ), {} response errors (eresp); log: {logged} POSTs, {retried} retried, {redispatched} redispatched",
        frontend["req_tot"],
        frontend["hrsp_2xx"],
        frontend["hrsp_5xx"],
        backend["wretr"],
        backend["wredis"],
        backend["econ"],
        backend["eresp"],
    );
    for n in &file.nodes {
        let s = &st[&("frostamp".to_string(), format!("node{}", n.index))];
        eprintln!(
            "  node{}: {} sent, {} went DOWN, down {} s, now {}",
            n.index, s["stot"], s["chkdown"], s["downtime"], s["status"]
        );
    }
    for l in &slow {
        eprintln!("  over 2 s: {l}");
    }
    for f in failures.iter().take(20) {
        eprintln!("  failure: {f}");
    }
    assert!(
        failures.is_empty(),
        "{} client requests failed",
        failures.len()
    );
    assert_eq!(frontend["hrsp_5xx"], "0");
    // Both replacements coordinated tokens for clients of the balancer.
    for i in [2usize, 4] {
        let m = get_text(&after.nodes[i - 1], "/metrics");
        let tokens = metric(&m, "frostamp_tokens_total");
        eprintln!("  replacement node {i}: {tokens} tokens coordinated");
        assert!(tokens > 0.0, "replacement node {i} got no traffic");
    }
    for s in 0..steps.len() {
        assert!(per_step[s].0 > 0, "no request during {}", steps[s].0);
    }

    // No time: with two of the three time servers stopped, an idle node's next probe
    // round (every 5 s) fails, its /status says no_time, and HAProxy takes it out; with
    // every node out, a client gets HTTP 503 from the balancer at once instead of a
    // timeNotAvailable rejection. Started again, the nodes come back by themselves.
    let started = Instant::now();
    time_server(d, "--stop", 1);
    time_server(d, "--stop", 2);
    wait_servers(&socket, &file.nodes, "DOWN", Duration::from_secs(30));
    let down = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&get_text(&after.nodes[0], "/status")).unwrap();
    assert_eq!(v["health"], "no_time", "{v}");
    let req = common::sha256_request(b"no time");
    let r = rt
        .block_on(balancer_post(&public, balancer_pin, req))
        .unwrap();
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let started = Instant::now();
    time_server(d, "--start", 1);
    time_server(d, "--start", 2);
    wait_servers(&socket, &file.nodes, "UP", Duration::from_secs(30));
    eprintln!(
        "time servers 1 and 2 stopped: all five nodes no_time and DOWN in HAProxy after {:.1} s, a client got HTTP 503; started again: all UP after {:.1} s",
        down.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(replacements);
}
