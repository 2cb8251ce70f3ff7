//! Multi-process: five `frostamp-node` processes (development attestation),
//! `frostamp cluster up` runs the ceremony; a node running different code is
//! refused by its peers with the reason in its log; `cluster down` stops all.
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
use common::*;

use frostamp::api::admin::ClusterConfig;
use frostamp::api::auth::OperatorKey;
use frostamp::attestation::RootSet;
use frostamp::ceremony::{self, NodeTarget, PinnedNode};
use frostamp::cli::ops::ClusterFile;
use frostamp::clock::SystemClock;
use frostamp::x509::parse_certificates;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn cluster_up_runs_the_ceremony_and_every_node_serves_the_same_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cluster");
    let _down = Down(&d);
    let (stdout, file) = cluster_up_cmd(&d, &[], &[]);
    assert!(
        stdout.contains("certificate installed on all 5 nodes"),
        "{stdout}"
    );
    assert_eq!(file.nodes.len(), 5);

    // Every node: Serving, same group key, same certificate.
    let v = cluster_status_json(&d);
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 5);
    let cert0 = all[0]["status"]["certificate"]
        .as_str()
        .unwrap()
        .to_string();
    for s in all {
        assert_eq!(s["status"]["phase"], "serving", "{s}");
        assert_eq!(s["status"]["group_key"].as_str(), file.group_key.as_deref());
        assert_eq!(s["status"]["certificate"].as_str(), Some(cert0.as_str()));
        assert_eq!(s["status"]["peers"].as_object().unwrap().len(), 4);
    }

    // The certificate: key = group key, measurement = SHA-384 of the running node binary,
    // EKU timeStamping critical, chains to the development CA.
    let chain = parse_certificates(&std::fs::read(file.chain.as_ref().unwrap()).unwrap()).unwrap();
    let leaf = &chain[0];
    let binary_measurement = frostamp::cli::ops::file_measurement(Path::new(NODE)).unwrap();
    assert_eq!(
        frostamp::certs::launch_measurement_of(&leaf.der).unwrap(),
        Some(binary_measurement)
    );
    let root = parse_certificates(&std::fs::read(file.root.as_ref().unwrap()).unwrap()).unwrap();
    let path = frostamp::x509::chain::build_chain_der(
        &leaf.der,
        &[],
        &[root[0].der.as_slice()],
        &frostamp::x509::chain::ChainOptions::at(frostamp::clock::Clock::now(&SystemClock)),
    )
    .unwrap();
    assert_eq!(path.len(), 2);
    frostamp::x509::chain::check_timestamping_leaf(&leaf.cert).unwrap();
    let group = hex::decode(file.group_key.as_ref().unwrap()).unwrap();
    let spki_key = frostamp::threshold::keys::verifying_key_from_sec1(
        leaf.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    assert_eq!(
        spki_key,
        frostamp::threshold::keys::verifying_key_from_sec1(&group).unwrap()
    );

    // Lifecycle calls without the operator credential are refused.
    let (status, _) = http(
        &file.nodes[0],
        "POST",
        "/admin/certificate",
        None,
        b"{\"chain\":[]}".to_vec(),
    );
    assert_eq!(status, 401);

    // cluster down stops every process.
    assert!(cluster_down(&d).status.success());
    std::thread::sleep(Duration::from_millis(300));
    for n in &file.nodes {
        let pid = n.pid.unwrap();
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "node {} (pid {pid}) still running", n.index);
    }
}

/// A node whose binary differs (here: the same program with bytes appended, so
/// its development measurement differs, as a rebuilt image's would) is refused
/// admission by the others, and the reason is in their logs.
#[test]
fn a_node_running_different_code_is_refused_by_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let other = d.join("frostamp-node-modified");
    let mut bytes = std::fs::read(NODE).unwrap();
    bytes.extend_from_slice(b"\nthis binary differs\n");
    std::fs::write(&other, bytes).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&other).unwrap().permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(&other)
        .status()
        .unwrap();

    let mut rng = rand::thread_rng();
    let platform = frostamp::attestation::DevPlatform::generate(&mut rng).unwrap();
    let pem = platform.to_secret_pem().unwrap();
    let operator = frostamp::api::auth::OperatorKey::generate(&mut rng);
    let roots = RootSet::danger_with_insecure_dev_root(platform.ark_der());
    let mut children = Kill(Vec::new());
    let mut targets = Vec::new();
    for i in 1..=5u16 {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (public, peer) = (
            format!("127.0.0.1:{}", port()),
            format!("127.0.0.1:{}", port()),
        );
        let bin = if i == 5 { other.clone() } else { NODE.into() };
        let log = std::fs::File::create(d.join(format!("node{i}.log"))).unwrap();
        children.0.push(
            Command::new(bin)
                .args([
                    "--name",
                    &format!("node{i}"),
                    "--public",
                    &public,
                    "--peer",
                    &peer,
                ])
                .env("FROSTAMP_OPERATOR_KEY", operator.public_hex().unwrap())
                .env("FROSTAMP_INSECURE_DEV_PLATFORM", pem.as_str())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        targets.push(NodeTarget {
            index: i,
            public,
            peer,
        });
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let mut pinned = Vec::new();
        for t in &targets {
            let deadline = Instant::now() + Duration::from_secs(120);
            let pin = loop {
                match ceremony::attest_node(t.index, &t.public, &roots, None, &SystemClock).await {
                    Ok((pin, _)) => break pin,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            pinned.push(PinnedNode {
                target: t.clone(),
                pin,
            });
        }
        let layout = targets.iter().map(|t| (t.index, t.peer.clone())).collect();
        for p in &pinned {
            let cfg = ClusterConfig {
                index: p.target.index,
                t: 3,
                nodes: std::collections::BTreeMap::clone(&layout),
            };
            let r = ceremony::admin(
                p,
                &operator,
                &SystemClock,
                "/admin/configure",
                serde_json::to_vec(&cfg).unwrap(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200);
        }
        // Until nodes 1 to 4 have admitted each other (node 5 keeps being refused).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all = true;
            for p in &pinned[..4] {
                all &= ceremony::status(p).await.unwrap().peers.len() == 3;
            }
            if all || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut statuses = Vec::new();
        for p in &pinned {
            statuses.push(ceremony::status(p).await.unwrap());
        }
        statuses
    });
    drop(children);
    // Nodes 1 to 4 admit each other, never node 5; node 5 admits nobody.
    assert_eq!(
        result[0].peers.keys().copied().collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(
        result[3].peers.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(result[4].peers.is_empty());
    let log1 = std::fs::read_to_string(d.join("node1.log")).unwrap();
    assert!(
        log1.contains("refused peer")
            && log1.contains("node 5")
            && log1.to_lowercase().contains("measurement"),
        "{log1}"
    );
}

/// node keeps serving.
#[test]
fn cluster_serves_tokens_and_survives_two_losses_but_not_three() {
    losses_lifecycle("secp256k1");
}

/// The same for an Ed25519 key epoch (`cluster up --ciphersuite ed25519`).
#[test]
fn an_ed25519_cluster_serves_tokens_and_survives_two_losses_but_not_three() {
    losses_lifecycle("ed25519");
}

fn losses_lifecycle(suite: &str) {
    let c = TestCluster::up(suite);
    let (dir, d, file) = (&c.dir, &c.d, &c.file);
    assert_eq!(file.ciphersuite.name(), suite);
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"stamped by the cluster\n").unwrap();

    // frostamp stamp: request, save, verify.
    let out = stamp_cluster(&data, d);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verification: OK"));

    // openssl ts -query → any node → openssl ts -reply -text and frostamp verify.
    let q = dir.path().join("q.tsq");
    openssl_query(&data, "-sha512", &q);
    let root = file.root.as_ref().unwrap();
    let time = d.join("time-servers.json");
    for node in &file.nodes {
        let (status, body) = post_file(node, &q);
        assert_eq!(status, 200);
        let r = dir.path().join(format!("r{}.tsr", node.index));
        std::fs::write(&r, &body).unwrap();
        let text = openssl_reply_text(&r);
        assert!(String::from_utf8_lossy(&text.stdout).contains("Status: Granted."));
        run_ok(
            &mut verify_time_cmd(&r, &data, root, &time),
            &format!("node {}:", node.index),
        );
    }

    // Nonce commitments come ahead of time: after the certificate, node 5's
    // queues are filled in the background, so its tokens need one peer round
    // trip each (no on-demand commitment fetch), and it holds ready commitments
    // from every peer.
    for _ in 0..30 {
        assert_eq!(post_file(&file.nodes[4], &q).0, 200);
    }
    let metrics = get_text(&file.nodes[4], "/metrics");
    let on_demand = metric(
        &metrics,
        "frostamp_commitment_batches_total{kind=\"on_demand\"}",
    );
    let refills = metric(
        &metrics,
        "frostamp_commitment_batches_total{kind=\"refill\"}",
    );
    assert_eq!(on_demand, 0.0, "{metrics}");
    assert!(refills >= 4.0, "{metrics}");
    assert!(
        metric(&metrics, "frostamp_tokens_total") >= 31.0,
        "{metrics}"
    );
    for peer in 1..=4 {
        assert!(
            metric(
                &metrics,
                &format!("frostamp_commitments_ready{{peer=\"{peer}\"}}")
            ) > 0.0,
            "{metrics}"
        );
    }

    // Bad input at the HTTP edge: wrong content type, garbage, oversize; the node keeps serving.
    let n5 = &file.nodes[4];
    assert_eq!(post(n5, b"x".to_vec(), "text/plain").0, 415);
    let (status, body) = post(n5, b"garbage".to_vec(), "application/timestamp-query");
    assert_eq!(status, 200);
    let resp = <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&body).unwrap();
    assert_eq!(resp.status.status.as_bytes(), [2]);
    assert_eq!(
        post(n5, vec![0u8; 300 * 1024], "application/timestamp-query").0,
        413
    );

    // Health as share holders disappear (DESIGN §3): 5 healthy, 4 degraded, 3 critical, <3 halted.
    assert_eq!(health(&file.nodes[4]), ("healthy".to_string(), 5));
    let p = pids(file);
    kill(p[0]);
    wait_health(&file.nodes[4], "degraded", 4);
    kill(p[1]);
    wait_health(&file.nodes[4], "critical", 3);
    for node in &file.nodes[2..] {
        let (status, body) = post_file(node, &q);
        assert_eq!(status, 200);
        let r = dir.path().join("after2.tsr");
        std::fs::write(&r, &body).unwrap();
        run_ok(
            &mut verify_time_cmd(&r, &data, root, &time),
            &format!("after two losses, node {}:", node.index),
        );
    }

    // Kill node 3: fewer than t share holders; every request is rejected, no token.
    kill(p[2]);
    wait_health(&file.nodes[4], "halted", 2);
    for node in &file.nodes[3..] {
        let (status, body) = post_file(node, &q);
        assert_eq!(status, 200);
        let resp = <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&body).unwrap();
        assert_eq!(
            resp.status.status.as_bytes(),
            [2],
            "node {} must reject",
            node.index
        );
        assert!(resp.time_stamp_token.is_none());
        let text = resp.status.status_string.unwrap().join(" ");
        assert!(text.contains("only 2 of the 3 required signers"), "{text}");
    }

    // /metrics (Prometheus text) on node 5 counts what happened to it.
    let text = get_text(&file.nodes[4], "/metrics");
    for line in [
        "frostamp_rejections_total{reason=\"badRequest\"} 1",
        "frostamp_rejections_total{reason=\"systemFailure\"} 1",
        "frostamp_share_holders 2",
        "frostamp_phase{phase=\"serving\"} 1",
        "frostamp_signing_seconds_count 32", // 1 + 30 above + 1 with two nodes down
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// Node 1 dies (degraded); a replacement process booted from the same binary is
/// attested, configured, and receives a repaired share from three helpers, checked
/// against the group's verifying share; the cluster is healthy again and the new
/// node issues tokens under the same certificate.
#[test]
fn a_replacement_node_gets_a_repaired_share_and_the_cluster_heals() {
    repair_lifecycle("secp256k1");
}

/// The one Ed25519 cluster lifecycle of this file: `cluster up --ciphersuite ed25519`
/// (five processes, DKG, CSR, certificate), `/status` and cluster.json name the suite,
/// a lost node is replaced and repaired, and the cluster issues Ed25519 tokens that
/// `frostamp stamp` verifies.
#[test]
fn an_ed25519_cluster_serves_loses_a_node_and_repairs_it() {
    repair_lifecycle("ed25519");
}

fn repair_lifecycle(suite: &str) {
    let c = TestCluster::up(suite);
    let (dir, d, file) = (&c.dir, &c.d, &c.file);
    assert_eq!(file.ciphersuite.name(), suite);
    let cert_before = {
        let v = cluster_status_json(d);
        for node in v.as_array().unwrap() {
            assert_eq!(
                node["status"]["ciphersuite"].as_str(),
                Some(suite),
                "{node}"
            );
        }
        v[0]["status"]["certificate"].as_str().unwrap().to_string()
    };
    kill(file.nodes[0].pid.unwrap());
    wait_health(&file.nodes[4], "degraded", 4);

    // Boot the replacement on node 1's addresses.
    let n1 = &file.nodes[0];
    let _child = Kill(vec![start_replacement(d, n1)]);
    // Fewer than t helpers: refused before anything is sent.
    let out = Command::new(FROSTAMP)
        .args([
            "ceremony",
            "repair",
            "--index",
            "1",
            "--helpers",
            "2,3",
            "--state-dir",
        ])
        .arg(d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a repair needs t = 3"));
    // The operator's command: attest the replacement (same measurement), configure
    // it, and have three share holders repair its share; cluster.json gets its pin.
    let out = run_ok(
        Command::new(FROSTAMP)
            .args(["ceremony", "repair", "--index", "1", "--state-dir"])
            .arg(d),
        "",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("share repaired by nodes [2, 3, 4]"));
    let after: ClusterFile =
        serde_json::from_slice(&std::fs::read(d.join("cluster.json")).unwrap()).unwrap();
    let replacement = PinnedNode {
        target: NodeTarget {
            index: 1,
            public: n1.public.clone(),
            peer: n1.peer.clone(),
        },
        pin: pin_of(&after.nodes[0]),
    };
    assert_ne!(after.nodes[0].pin, n1.pin, "a new node, a new identity");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut healed = file.nodes[0].clone();
    healed.pin = Some(hex::encode(replacement.pin));
    wait_health(&healed, "healthy", 5);
    wait_health(&file.nodes[4], "healthy", 5);
    // Same certificate, and the replacement coordinates valid tokens.
    let s = rt.block_on(ceremony::status(&replacement)).unwrap();
    assert_eq!(s.certificate.as_deref(), Some(cert_before.as_str()));
    // Its new identity key got a CA-issued public TLS certificate: curl verifies it.
    assert!(s.tls_certificate.is_some(), "{s:?}");
    run_ok(
        Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(file.root.as_ref().unwrap())
            .arg(format!("{}/status", n1.url)),
        "",
    );
    assert_eq!(s.group_key, file.group_key);
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"after repair\n").unwrap();
    let out = run_ok(
        Command::new(FROSTAMP)
            .args(["stamp"])
            .arg(&data)
            .args([
                "--url",
                &n1.public,
                "--pin",
                &hex::encode(replacement.pin),
                "--roots",
            ])
            .arg(file.root.as_ref().unwrap())
            .arg("--time-servers")
            .arg(d.join("time-servers.json")),
        "",
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let want = match suite {
        "ed25519" => "signature:  Ed25519",
        _ => "signature:  FROST(secp256k1, SHA-256)",
    };
    assert!(printed.contains(want), "{printed}");
}

/// Fewer than t share holders: the key is gone by design. Five fresh nodes run a new
/// ceremony (same operator and CA): a new group key and certificate, tokens again,
/// and a token from the old epoch still verifies under its own certificate.
#[test]
fn after_halting_a_new_ceremony_makes_a_new_key_and_old_tokens_still_verify() {
    halt_and_new_ceremony("secp256k1", "secp256k1");
}

/// Across ciphersuites: a halted Ed25519 epoch is followed by a secp256k1 one; the
/// Ed25519 token of the old epoch still verifies, and so does the new one.
#[test]
fn after_an_ed25519_epoch_halts_a_secp256k1_ceremony_follows_and_both_tokens_verify() {
    halt_and_new_ceremony("ed25519", "secp256k1");
}

fn halt_and_new_ceremony(old_suite: &str, new_suite: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cluster");
    let _down = Down(&d);
    let up = |suite: &str| {
        let f = common::cluster_up_with(&d, suite);
        assert_eq!(f.ciphersuite.name(), suite);
        f
    };
    let stamp = |name: &str| {
        let data = dir.path().join(name);
        std::fs::write(&data, name.as_bytes()).unwrap();
        stamp_cluster(&data, &d);
        data
    };
    let old = up(old_suite);
    let old_data = stamp("old.txt");
    // The old epoch's time servers go with `cluster down`; their keys stay published
    // for relying parties (here: a copy of the file).
    let old_time = dir.path().join("old-time-servers.json");
    std::fs::copy(d.join("time-servers.json"), &old_time).unwrap();
    let p = pids(&old);
    for pid in &p[..3] {
        kill(*pid);
    }
    wait_health(&old.nodes[4], "halted", 2);
    assert!(cluster_down(&d).status.success());

    let new = up(new_suite);
    assert_ne!(new.group_key, old.group_key, "a new epoch has a new key");
    assert_ne!(new.epoch, old.epoch);
    let new_data = stamp("new.txt");
    let root = new.root.as_ref().unwrap();
    let new_time = d.join("time-servers.json");
    for (data, time) in [(&old_data, &old_time), (&new_data, &new_time)] {
        let mut tsr = data.clone().into_os_string();
        tsr.push(".tsr");
        let v = verify_time_cmd(Path::new(&tsr), data, root, time)
            .arg("--json")
            .output()
            .unwrap();
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    }
}

/// A Python RFC 3161 client library (rfc3161-client) gets a token from a running
/// node over HTTPS, verified against the cluster's root (twin: refused with the system's
/// roots only), and parses it; `frostamp verify` accepts what it received.
#[test]
fn python_rfc3161_client_gets_and_parses_a_token_from_a_node() {
    let py = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    assert!(py.exists(), "run `make interop-deps` (make test does it)");
    let c = TestCluster::up("secp256k1");
    let (dir, file) = (&c.dir, &c.file);
    let data = dir.path().join("py.txt");
    std::fs::write(&data, b"fetched by python\n").unwrap();
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/rfc3161_client_check.py");
    // TLS verified against the cluster's root (it issued the nodes' TLS certificates).
    let out = run_ok(
        Command::new(&py)
            .arg(&script)
            .arg("fetch")
            .arg(format!("{}/", file.nodes[2].url))
            .arg(&data)
            .arg(file.root.as_ref().unwrap()),
        "",
    );
    // Twin: with the system's roots only, Python refuses the connection.
    let refused = Command::new(&py)
        .arg(&script)
        .arg("fetch")
        .arg(format!("{}/", file.nodes[2].url))
        .arg(&data)
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 0);
    assert_eq!(v["policy"], frostamp::oid::default_tsa_policy().to_string());
    assert_eq!(
        v["imprint"],
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(
            b"fetched by python\n"
        ))
    );
    assert_eq!(v["signed_data_certs"], 1);
    assert!(v["nonce"].is_string());
}

/// Slow and broken clients (idle TCP connections, half-sent TLS, garbage bytes)
/// never stop a node from serving others.
#[test]
fn slow_and_broken_clients_do_not_stop_a_node() {
    use std::io::Write;
    let c = TestCluster::up("secp256k1");
    let (dir, d, file) = (&c.dir, &c.d, &c.file);
    let n1 = &file.nodes[0];
    // The hogs come from another loopback address (127.0.0.2), as an attacker's would:
    // per-source caps tell them apart from the honest client and the peers.
    let from_other_source = |addr: &str| -> std::net::TcpStream {
        let rt = current_thread_runtime();
        rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let s = sock.connect(addr.parse().unwrap()).await.unwrap();
            s.into_std().unwrap()
        })
    };
    let mut hogs = Vec::new();
    for i in 0..200 {
        let mut s = from_other_source(&n1.public);
        s.set_nonblocking(false).unwrap();
        match i % 3 {
            0 => {}                                                      // idle: never speaks
            1 => s.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap(),        // half a TLS record
            _ => s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), // plaintext garbage
        }
        hogs.push(s);
    }
    // Peers' garbage on the peer port, too.
    for _ in 0..20 {
        let mut s = from_other_source(&n1.peer);
        s.set_nonblocking(false).unwrap();
        s.write_all(b"\x00\x00\x00\x05hello").unwrap();
        hogs.push(s);
    }
    let data = dir.path().join("busy.txt");
    std::fs::write(&data, b"served while busy\n").unwrap();
    let started = Instant::now();
    run_ok(
        Command::new(FROSTAMP)
            .arg("stamp")
            .arg(&data)
            .args([
                "--url",
                &n1.public,
                "--pin",
                n1.pin.as_ref().unwrap(),
                "--roots",
            ])
            .arg(file.root.as_ref().unwrap())
            .arg("--time-servers")
            .arg(d.join("time-servers.json")),
        "",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // A body that trickles is cut off: HTTP 408 after the body timeout (10 s), and the
    // node counts it; meanwhile it keeps serving.
    let mut trickle = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &n1.public])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = trickle.stdin.take().unwrap();
    stdin
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\nContent-Length: 262144\r\n\r\nA")
        .unwrap();
    stdin.flush().unwrap();
    let sent = Instant::now();
    let mut stdout = trickle.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut first = vec![0u8; 12];
        std::io::Read::read_exact(&mut stdout, &mut first).map(|_| first)
    });
    wait_health(n1, "healthy", 5);
    let first = reader.join().unwrap().unwrap();
    assert_eq!(
        &first,
        b"HTTP/1.1 408",
        "{}",
        String::from_utf8_lossy(&first)
    );
    assert!(
        sent.elapsed() >= Duration::from_secs(9) && sent.elapsed() < Duration::from_secs(20),
        "cut off after {:?}",
        sent.elapsed()
    );
    drop(stdin);
    let _ = trickle.kill();
    let _ = trickle.wait();
    let m = get_text(n1, "/metrics");
    assert!(metric(&m, "frostamp_shed_total{reason=\"body_timeout\"}") >= 1.0);
    drop(hogs);
    wait_health(n1, "healthy", 5);
}

/// A node that hangs (SIGSTOP: its connections stay open, it answers nothing)
/// costs at most a few slow tokens: the coordinator asks it last after one
/// timeout, and every peer closes the silent link after 10 s (the node stops
/// counting: degraded). Once it runs again it reconnects, is re-admitted by
/// attestation, and the cluster is healthy.
#[test]
fn a_hung_node_is_avoided_then_dropped_and_tokens_keep_coming() {
    use frostamp::tsp::request::{AcceptedRequest, HashAlg};
    let c = TestCluster::up("secp256k1");
    let file = &c.file;
    let n1 = &file.nodes[0];
    let q = AcceptedRequest::build_der(HashAlg::Sha256, &[7; 32], None, true).unwrap();
    let granted = |body: &[u8]| {
        <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(body)
            .unwrap()
            .status
            .status
            .as_bytes()
            == [0]
    };
    let (status, body) = post(n1, q.clone(), "application/timestamp-query");
    assert!(status == 200 && granted(&body));

    let hung = pids(file)[1];
    let _resume = Resume(hung);
    assert!(signal(hung, "-STOP"));
    let mut slow = 0;
    for i in 0..20 {
        let started = Instant::now();
        let (status, body) = post(n1, q.clone(), "application/timestamp-query");
        assert!(
            status == 200 && granted(&body),
            "token {i} with node 2 hung"
        );
        if started.elapsed() > Duration::from_millis(2500) {
            slow += 1;
        }
    }
    assert!(slow <= 2, "{slow} of 20 tokens waited for the hung node");
    wait_health_within(n1, "degraded", 4, Duration::from_secs(20));

    assert!(signal(hung, "-CONT"));
    wait_health_within(n1, "healthy", 5, Duration::from_secs(30));
    let (status, body) = post(n1, q, "application/timestamp-query");
    assert!(status == 200 && granted(&body));
}

/// The `tsa` name (DER of the GeneralName) and the ESSCertIDv2 certificate hash
/// of a fresh token from `node`.
fn token_identity(node: &frostamp::cli::ops::ClusterNode) -> (Vec<u8>, Vec<u8>) {
    use der::Encode;
    use frostamp::tsp::asn1::{Attribute, SigningCertificateV2};
    use frostamp::tsp::request::{AcceptedRequest, HashAlg};
    let q = AcceptedRequest::build_der(HashAlg::Sha256, &[9; 32], None, true).unwrap();
    let (status, body) = post(node, q, "application/timestamp-query");
    assert_eq!(status, 200);
    let token = frostamp::verify::token::extract_token(&body).unwrap();
    let p = frostamp::verify::token::parse_token(&token).unwrap();
    let tsa = p.tst.tsa.unwrap().to_der().unwrap();
    let ess = p
        .signer_info
        .signed_attrs
        .unwrap()
        .elements()
        .unwrap()
        .iter()
        .map(|a| a.decode_as::<Attribute>().unwrap())
        .find(|a| a.oid == frostamp::oid::std_oids::ATTR_SIGNING_CERTIFICATE_V2)
        .unwrap();
    let sc: SigningCertificateV2 = ess.values.elements().unwrap()[0].decode_as().unwrap();
    (tsa, sc.certs[0].cert_hash.as_bytes().to_vec())
}

/// What a token must name for a TSA certificate (DER): its subject as the `tsa`
/// GeneralName and its SHA-256 as the ESSCertIDv2 hash.
fn identity_of(cert_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use der::Encode;
    let cert = <x509_cert::Certificate as der::Decode>::from_der(cert_der).unwrap();
    let name = x509_cert::ext::pkix::name::GeneralName::DirectoryName(
        cert.tbs_certificate.subject.clone(),
    );
    (
        name.to_der().unwrap(),
        <sha2::Sha256 as sha2::Digest>::digest(cert_der).to_vec(),
    )
}

/// `POST /admin/certificate` is checked as a relying party would check the
/// chain: a self-signed leaf, a chain to another CA, an expired certificate,
/// another subject, and a second certificate while serving are refused with a
/// clear message; tokens keep naming the first certificate (tsa name and
/// ESSCertIDv2) until a valid renewal (later notAfter) is installed.
#[test]
fn uploaded_chains_are_checked_and_tokens_keep_the_first_certificate() {
    use frostamp::certs::DevCa;
    use frostamp::clock::Clock;
    let c = TestCluster::up("secp256k1");
    let (d, file) = (&c.d, &c.file);
    let operator = frostamp::cli::ops::load_operator(&d.join("operator.key")).unwrap();
    let ca = frostamp::cli::ops::ca_load(d).unwrap();
    let root = ca.certificate_der().unwrap();
    let first = parse_certificates(&std::fs::read(file.chain.as_ref().unwrap()).unwrap()).unwrap()
        [0]
    .der
    .clone();
    let group = frostamp::threshold::suite::GroupPublicKey::from_bytes(
        file.ciphersuite,
        &hex::decode(file.group_key.as_ref().unwrap()).unwrap(),
    )
    .unwrap();
    let measurement: [u8; 48] = hex::decode(file.measurement.as_ref().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let subject = "CN=frostamp TSA,O=frostamp";
    let now = SystemClock.now();
    let day = Duration::from_secs(86400);
    let issue = |by: &DevCa, subject: &str, not_before, lifetime| {
        by.issue_tsa_certificate(
            &group,
            Some(&measurement),
            subject,
            not_before,
            lifetime,
            &mut rand::thread_rng(),
        )
        .unwrap()
    };
    let pinned: Vec<PinnedNode> = file.nodes.iter().map(pinned).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upload = |chain: &[Vec<u8>]| {
        rt.block_on(ceremony::install_chain(
            &pinned,
            &operator,
            &SystemClock,
            chain,
        ))
    };
    let expected = identity_of(&first);
    assert_eq!(token_identity(&file.nodes[0]), expected);

    // A development CA whose own name is the TSA's: its leaf is self-issued.
    let selfish = DevCa::generate(subject, now - day, day * 30, &mut rand::thread_rng()).unwrap();
    let other = DevCa::generate(
        "CN=frostamp development CA,O=frostamp (development)",
        now - day,
        day * 3650,
        &mut rand::thread_rng(),
    )
    .unwrap();
    let cases: Vec<(&str, Vec<Vec<u8>>, u16, &str)> = vec![
        (
            "self-signed",
            vec![
                issue(&selfish, subject, now - day, day * 400),
                selfish.certificate_der().unwrap(),
            ],
            422,
            "self-signed",
        ),
        (
            "another CA (same name as the real one)",
            vec![
                issue(&other, subject, now - day, day * 400),
                other.certificate_der().unwrap(),
            ],
            422,
            "another CA",
        ),
        (
            "another CA, with the fixed root appended",
            vec![issue(&other, subject, now - day, day * 400), root.clone()],
            422,
            "does not verify",
        ),
        (
            "expired",
            vec![issue(&ca, subject, now - day * 10, day), root.clone()],
            422,
            "expired",
        ),
        (
            "another subject",
            vec![
                issue(&ca, "CN=someone else,O=frostamp", now - day, day * 400),
                root.clone(),
            ],
            422,
            "the CSR requested",
        ),
        (
            "a second certificate while serving (not a renewal)",
            vec![issue(&ca, subject, now - day, day * 300), root.clone()],
            409,
            "already installed",
        ),
    ];
    for (what, chain, status, message) in cases {
        match upload(&chain) {
            Err(ceremony::CeremonyError::Refused {
                status: got, body, ..
            }) => {
                assert_eq!(got, status, "{what}: {body}");
                assert!(body.contains(message), "{what}: {body}");
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    // Tokens still name the first certificate, on every node.
    for node in &file.nodes {
        assert_eq!(token_identity(node), expected, "node {}", node.index);
    }

    // Twin: a renewal (same key, measurement, CA root, subject; later notAfter)
    // is installed on every node, and tokens follow it.
    let renewal = issue(&ca, subject, now - day, day * 400);
    upload(&[renewal.clone(), root.clone()]).unwrap();
    for node in &file.nodes {
        assert_eq!(
            token_identity(node),
            identity_of(&renewal),
            "node {}",
            node.index
        );
    }
    // And the first certificate cannot come back (earlier notAfter).
    match upload(&[first, root]) {
        Err(ceremony::CeremonyError::Refused { status, body, .. }) => {
            assert_eq!(status, 409, "{body}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// (refusals, roster version, peer_claim_conflicts_total) of a node.
fn refusals(node: &frostamp::cli::ops::ClusterNode) -> (Vec<String>, Option<u64>, f64) {
    let v: serde_json::Value = serde_json::from_str(&get_text(node, "/status")).unwrap();
    let r = v["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let conflicts = metric(
        &get_text(node, "/metrics"),
        "frostamp_peer_claim_conflicts_total",
    );
    (r, v["roster"]["version"].as_u64(), conflicts)
}

/// Wait until `node` has a refusal containing every string of `want`.
fn wait_refusal(node: &frostamp::cli::ops::ClusterNode, want: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (r, _, _) = refusals(node);
        if let Some(hit) = r.iter().find(|x| want.iter().all(|w| x.contains(w))) {
            return hit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "node {}: no refusal with {want:?} in {r:#?}",
            node.index
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 11: only the ceremony's own machines hold shares. A sixth process booted from
/// the same binary (same measurement), with its own operator key, configured to claim
/// index 1 of a running cluster: (a) while node 1 is alive every node refuses it, naming
/// both identities; (b) with node 1 gone (frozen) its own `/admin/repair` gets no share:
/// no order from the cluster's operator; (c) with that order it is repaired, the roster
/// moves to v1, and the old node 1 coming back is refused.
#[test]
fn a_sixth_node_claiming_a_live_index_gets_a_share_only_on_the_operators_order() {
    let c = TestCluster::up("secp256k1");
    let (d, file) = (&c.d, &c.file);
    let short = |pin: &str| pin[..16].to_string();
    let pin1 = file.nodes[0].pin.clone().unwrap();
    for n in &file.nodes {
        let (_, version, _) = refusals(n);
        assert_eq!(
            version,
            Some(0),
            "node {}: roster v0 after the ceremony",
            n.index
        );
    }

    // The sixth process: same binary and platform, its own operator.
    let attacker = OperatorKey::generate(&mut rand::thread_rng());
    let (public, peer) = (free_addr(), free_addr());
    let _child = Kill(vec![start_node(
        d,
        "node6",
        &public,
        &peer,
        &attacker.public_hex().unwrap(),
    )]);
    let roots = frostamp::cli::ops::roots(file.insecure_dev_root.as_deref()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = NodeTarget {
        index: 1,
        public: public.clone(),
        peer: peer.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let member6 = loop {
        match rt.block_on(ceremony::attest_member(
            1,
            &public,
            &roots,
            None,
            &SystemClock,
        )) {
            Ok((m, _)) => break m,
            Err(e) => {
                assert!(Instant::now() < deadline, "node6 never answered: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let pin6 = member6.spki_sha256;
    let six = PinnedNode { target, pin: pin6 };
    let layout: std::collections::BTreeMap<u16, String> = file
        .nodes
        .iter()
        .map(|n| (n.index, n.peer.clone()))
        .collect();
    let cfg = ClusterConfig {
        index: 1,
        t: 3,
        nodes: layout,
    };
    let r = rt
        .block_on(ceremony::admin(
            &six,
            &attacker,
            &SystemClock,
            "/admin/configure",
            serde_json::to_vec(&cfg).unwrap(),
            Duration::from_secs(10),
        ))
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // (a) node 1 alive: nodes 2..5 refuse the claimant, naming both identities.
    let x = short(&hex::encode(pin6));
    for n in &file.nodes[1..] {
        let hit = wait_refusal(
            n,
            &["claims index 1", &x, &short(&pin1)],
            Duration::from_secs(30),
        );
        assert!(hit.contains("no repair order"), "{hit}");
        assert!(refusals(n).2 >= 1.0, "node {}: conflict counted", n.index);
    }
    wait_health(&file.nodes[0], "healthy", 5);
    wait_health(&file.nodes[4], "healthy", 5);

    // (b) node 1 frozen (silent, then dropped): the sixth node's own repair call gets
    // nothing without the cluster operator's order.
    assert!(signal(file.nodes[0].pid.unwrap(), "-STOP"));
    wait_health_within(&file.nodes[4], "degraded", 4, Duration::from_secs(30));
    // What the sixth node's own operator can know: the group key and the roster with
    // its machine at index 1 (as the real operator's order would make it).
    let holder2 = pinned(&file.nodes[1]);
    let (group_key, roster_hash) = rt
        .block_on(ceremony::repair_expectation(&[holder2], &member6))
        .unwrap();
    let repair_with = |roster_hash: [u8; 32]| {
        let body = serde_json::to_vec(&serde_json::json!({
            "epoch": file.epoch,
            "helpers": [2, 3, 4],
            "group_key": group_key,
            "roster_hash": hex::encode(roster_hash),
        }))
        .unwrap();
        rt.block_on(ceremony::admin(
            &six,
            &attacker,
            &SystemClock,
            "/admin/repair",
            body,
            Duration::from_secs(90),
        ))
        .unwrap()
    };
    let r = repair_with(roster_hash);
    assert_ne!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = rt.block_on(ceremony::status(&six)).unwrap();
    assert_eq!(s.group_key, None, "no share without the operator's order");
    assert_eq!(s.epoch, None);
    wait_refusal(
        &file.nodes[1],
        &["claims index 1", &x, "no repair order"],
        Duration::from_secs(5),
    );

    // (c) the cluster operator orders the repair for exactly this identity.
    let operator = frostamp::cli::ops::load_operator(&d.join("operator.key")).unwrap();
    let holders: Vec<PinnedNode> = file.nodes[1..].iter().map(pinned).collect();
    let took = rt
        .block_on(ceremony::order_repair(
            &holders,
            &operator,
            &SystemClock,
            &file.epoch,
            1,
            &pin6,
        ))
        .unwrap();
    assert_eq!(took, vec![2, 3, 4, 5]);
    // The replacement checks what its helpers send against its operator's expectation:
    // with another roster hash it keeps no share (its helpers could be anyone it
    // admitted first), and the next attempt is not spoiled by this one's leftovers.
    let r = repair_with([7u8; 32]);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 409, "{body}");
    assert!(body.contains("not the one the operator expects"), "{body}");
    assert_eq!(rt.block_on(ceremony::status(&six)).unwrap().group_key, None);
    let r = repair_with(roster_hash);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = rt.block_on(ceremony::status(&six)).unwrap();
    assert_eq!(s.group_key, file.group_key);
    let roster = s.roster.unwrap();
    assert_eq!(roster.version, 1);
    assert_eq!(roster.get(1).unwrap().spki_sha256, pin6);
    for n in &file.nodes[1..] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while refusals(n).1 != Some(1) {
            assert!(
                Instant::now() < deadline,
                "node {} never moved to roster v1",
                n.index
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut healed = file.nodes[0].clone();
    healed.public = public.clone();
    healed.pin = Some(hex::encode(pin6));
    wait_health_within(&healed, "healthy", 5, Duration::from_secs(30));
    wait_health_within(&file.nodes[4], "healthy", 5, Duration::from_secs(30));

    // The old node 1 comes back: refused by the roster's new version.
    assert!(signal(file.nodes[0].pid.unwrap(), "-CONT"));
    for n in &file.nodes[1..] {
        wait_refusal(
            n,
            &["claims index 1", &short(&pin1), "roster v1", &x],
            Duration::from_secs(30),
        );
    }
    wait_health(&file.nodes[4], "healthy", 5);
    wait_health(&healed, "healthy", 5);
}

#[test]
fn strangers_holding_the_peer_port_cannot_keep_a_roster_peer_out() {
    let c = TestCluster::up("secp256k1");
    let file = &c.file;
    let n5 = &file.nodes[4];
    // 5 networks × 16 idle connections = 80, more than the peer port's 64 general
    // permits; the flood reopens whatever the node closes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sources = (1..=5)
        .map(|p| std::net::Ipv4Addr::new(127, 0, p, 1))
        .collect();
    let flood = flood_peer_port(n5.peer.clone(), sources, 16, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    // Node 1's link to node 5 drops (frozen past the silence limit), then node 1
    // redials: it must get in while the flood goes on.
    assert!(signal(file.nodes[0].pid.unwrap(), "-STOP"));
    wait_health_within(n5, "degraded", 4, Duration::from_secs(30));
    assert!(signal(file.nodes[0].pid.unwrap(), "-CONT"));
    wait_health_within(n5, "healthy", 5, Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.join().unwrap();
    assert!(
        opened > 64,
        "the flood held more than the general permits ({opened})"
    );
    let m = get_text(n5, "/metrics");
    assert!(
        metric(&m, "frostamp_shed_total{reason=\"peer_evicted\"}") >= 1.0
            || metric(&m, "frostamp_shed_total{reason=\"peer_total\"}") >= 1.0,
        "the flood hit the cap:\n{m}"
    );
}
