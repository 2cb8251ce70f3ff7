//! The key ceremony with five nodes in one process (real TLS, real sockets,
//! development attestation): fast coverage of admission, DKG and certificate
//! installation. `tests/cluster.rs` runs the same with five processes.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
#![cfg(feature = "insecure-dev-attestation")]

use frostamp::api::admin::Phase;
use frostamp::api::auth::OperatorKey;
use frostamp::attestation::{DevAttester, DevPlatform, RootSet};
use frostamp::ceremony::{self, CeremonyError, CeremonyOptions, NodeTarget};
use frostamp::certs::DevCa;
use frostamp::clock::{Clock, SystemClock};
use frostamp::node::NodeOptions;
use frostamp::threshold::suite::{Ciphersuite, GroupPublicKey};
use frostamp::tsp::TsaProfile;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::dev_ca;

struct Cluster {
    targets: Vec<NodeTarget>,
    roots: RootSet,
    operator: Arc<OperatorKey>,
    measurement: [u8; 48],
    /// The ciphersuite the ceremony asks for (secp256k1 unless a test says otherwise).
    ciphersuite: Ciphersuite,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
    _time: TimeServers,
}

/// Three local Roughtime servers (real `roughenough`, keys made per run) backing the
/// nodes' genTime; stopped when dropped.
struct TimeServers {
    servers: Vec<frostamp::cli::ops::ClusterTimeServer>,
    _dir: tempfile::TempDir,
}
impl Drop for TimeServers {
    fn drop(&mut self) {
        frostamp::cli::ops::local_time::stop_all(&mut self.servers, true);
    }
}

impl Cluster {
    /// Each node's index and peer address.
    fn layout(&self) -> std::collections::BTreeMap<u16, String> {
        self.targets
            .iter()
            .map(|t| (t.index, t.peer.clone()))
            .collect()
    }

    /// `target` attested under this cluster's roots, with the identity it attested.
    async fn attest(&self, target: &NodeTarget) -> ceremony::PinnedNode {
        let (pin, _) = ceremony::attest_node(
            target.index,
            &target.public,
            &self.roots,
            None,
            &SystemClock,
        )
        .await
        .unwrap();
        ceremony::PinnedNode {
            target: target.clone(),
            pin,
        }
    }

    /// The servers and quorum a relying party checks this cluster's tokens against.
    #[cfg_attr(not(feature = "test-faults"), allow(dead_code))] // the byzantine test's
    fn time_policy(&self) -> frostamp::time::evidence::TimePolicy {
        frostamp::cli::ops::local_time::time_config(&self._time.servers)
            .policy()
            .unwrap()
    }
}

/// Start `n` nodes; node i gets `measurements[i]` if given (a "different image").
async fn start(n: u16, measurements: &[(u16, [u8; 48])]) -> Cluster {
    start_with_faults(n, measurements, &[]).await
}

/// Like [`start`], node i misbehaving as `faults[i]` says (feature `test-faults`).
async fn start_with_faults(
    n: u16,
    measurements: &[(u16, [u8; 48])],
    faults: &[(u16, &str)],
) -> Cluster {
    start_full(n, measurements, faults, &[]).await
}

/// Like [`start`], with per-node faults and clocks.
async fn start_full(
    n: u16,
    measurements: &[(u16, [u8; 48])],
    faults: &[(u16, &str)],
    clocks: &[(u16, Arc<dyn Clock>)],
) -> Cluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut rng = rand::thread_rng();
    let platform = DevPlatform::generate(&mut rng).unwrap();
    let pem = platform.to_secret_pem().unwrap();
    let roots = RootSet::danger_with_insecure_dev_root(platform.ark_der());
    let operator = Arc::new(OperatorKey::generate(&mut rng));
    let measurement = [0x11u8; 48];
    let time_dir = tempfile::tempdir().unwrap();
    let time = TimeServers {
        servers: frostamp::cli::ops::start_local_time_servers(time_dir.path(), &[0, 0, 0])
            .await
            .expect("local Roughtime servers (make roughtime-deps)"),
        _dir: time_dir,
    };
    let time_config = frostamp::cli::ops::local_time::time_config(&time.servers);
    let mut targets = Vec::new();
    let mut stop = Vec::new();
    for i in 1..=n {
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        targets.push(NodeTarget {
            index: i,
            public: public.local_addr().unwrap().to_string(),
            peer: peer.local_addr().unwrap().to_string(),
        });
        let m = measurements
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, m)| *m)
            .unwrap_or(measurement);
        let attester =
            DevAttester::with_measurement(DevPlatform::from_secret_pem(&pem).unwrap(), m);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stop.push(tx);
        let opts = NodeOptions {
            name: format!("node{i}"),
            public,
            peer,
            operator_pubkey: Some(operator.public_hex().unwrap()),
            attester: Arc::new(attester),
            roots: roots.clone(),
            profile: TsaProfile::frostamp_default(),
            clock: clocks
                .iter()
                .find(|(j, _)| *j == i)
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| Arc::new(SystemClock)),
            // Seeded per node: its identity key, nonces and challenges replay.
            entropy: Arc::new(frostamp::entropy::SeededEntropy::new(u64::from(i))),
            fault: faults
                .iter()
                .find(|(j, _)| *j == i)
                .map(|(_, f)| f.to_string()),
            time: time_config.clone(),
        };
        tokio::spawn(async move {
            frostamp::node::run(opts, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
    }
    Cluster {
        targets,
        roots,
        operator,
        measurement,
        ciphersuite: Ciphersuite::Secp256k1,
        _stop: stop,
        _time: time,
    }
}

/// `POST /admin/configure` with this cluster's operator key.
async fn configure(
    c: &Cluster,
    node: &ceremony::PinnedNode,
    cfg: &frostamp::api::admin::ClusterConfig,
) -> frostamp::net::client::Response {
    ceremony::admin(
        node,
        &c.operator,
        &SystemClock,
        "/admin/configure",
        serde_json::to_vec(cfg).unwrap(),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

/// Fix `ca`'s root and `subject` on every node (what a CSR does on its signers).
async fn fix_root(nodes: &[ceremony::PinnedNode], c: &Cluster, subject: &str, ca: &DevCa) {
    ceremony::fix_ca_root(
        nodes,
        &c.operator,
        &SystemClock,
        subject,
        &ca.certificate_der().unwrap(),
    )
    .await
    .unwrap();
}

/// `ceremony::install_chain` of `chain` on `nodes` with the cluster's operator key.
async fn install(
    nodes: &[ceremony::PinnedNode],
    c: &Cluster,
    chain: &[Vec<u8>],
) -> Result<(), CeremonyError> {
    ceremony::install_chain(nodes, &c.operator, &SystemClock, chain).await
}

/// `ceremony::issue_for_bundle` by `ca` with the cluster's attestation roots.
fn issue(
    ca: &DevCa,
    bundle: &frostamp::api::bundle::EvidenceBundle,
    c: &Cluster,
    measurements: &[[u8; 48]],
    subject: &str,
    from: std::time::SystemTime,
    validity: Duration,
) -> Result<Vec<u8>, CeremonyError> {
    ceremony::issue_for_bundle(ca, bundle, &c.roots, measurements, subject, from, validity)
}

/// The development-CA path after a ceremony: `ca` issues the TSA certificate `CN=tsa`
/// (valid `validity` from `from`) for the outcome's bundle, every node gets `ca`'s root
/// fixed and then the chain installed.
async fn certify(
    outcome: &ceremony::CeremonyOutcome,
    c: &Cluster,
    ca: &DevCa,
    from: std::time::SystemTime,
    validity: Duration,
) {
    let cert = issue(
        ca,
        &outcome.bundle,
        c,
        &[c.measurement],
        "CN=tsa",
        from,
        validity,
    )
    .unwrap();
    fix_root(&outcome.nodes, c, "CN=tsa", ca).await;
    install(&outcome.nodes, c, &[cert, ca.certificate_der().unwrap()])
        .await
        .unwrap();
}

fn options(c: &Cluster) -> CeremonyOptions {
    CeremonyOptions {
        nodes: c.targets.clone(),
        t: 3,
        epoch: "epoch-1".into(),
        operator: c.operator.clone(),
        roots: c.roots.clone(),
        measurement: Some(c.measurement),
        ciphersuite: c.ciphersuite,
        clock: Arc::new(SystemClock),
    }
}

/// Another group key of `suite` than the cluster's.
fn other_group_key(suite: Ciphersuite) -> GroupPublicKey {
    let mut rng = rand::thread_rng();
    match suite {
        Ciphersuite::Secp256k1 => frostamp::threshold::keys::dkg_in_process(3, 2, &mut rng)
            .unwrap()
            .1
            .public(),
        Ciphersuite::Ed25519 => frostamp::threshold::keys::dkg_in_process_for::<
            frostamp::threshold::suite::Ed25519Sha512,
        >(3, 2, &mut rng)
        .unwrap()
        .1
        .public(),
    }
}

/// The bundle's group key.
fn bundle_key(b: &frostamp::api::bundle::EvidenceBundle) -> GroupPublicKey {
    GroupPublicKey::from_bytes(b.ciphersuite, &hex::decode(&b.group_key).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_generate_a_key_and_install_a_measurement_bound_certificate() {
    ceremony_and_certificate(Ciphersuite::Secp256k1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_generate_an_ed25519_key_and_install_its_certificate() {
    ceremony_and_certificate(Ciphersuite::Ed25519).await;
}

async fn ceremony_and_certificate(suite: Ciphersuite) {
    let mut c = start(5, &[]).await;
    c.ciphersuite = suite;
    let outcome = ceremony::run(&options(&c), &|l| eprintln!("{l}"))
        .await
        .unwrap();
    assert_eq!(outcome.bundle.nodes.len(), 5);
    assert_eq!(outcome.bundle.ciphersuite, suite);
    for node in &outcome.nodes {
        let s = ceremony::status(node).await.unwrap();
        assert_eq!(s.phase, Phase::AwaitingCertificate);
        assert_eq!(s.ciphersuite, Some(suite));
        assert_eq!(
            s.group_key.as_deref(),
            Some(outcome.bundle.group_key.as_str())
        );
        assert_eq!(s.peers.len(), 4);
    }
    let now = SystemClock.now();
    let ca = dev_ca("CN=test CA", now - Duration::from_secs(60));
    // The CA refuses a bundle whose measurement it was not told to accept.
    let e = issue(
        &ca,
        &outcome.bundle,
        &c,
        &[[0x22; 48]],
        "CN=tsa",
        now,
        Duration::from_secs(3600),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not one this CA was told to accept"),
        "{e}"
    );
    // A tampered bundle (another group key) fails the evidence binding.
    let mut forged = outcome.bundle.clone();
    let other = other_group_key(suite);
    forged.group_key = hex::encode(other.to_bytes().unwrap());
    for n in &mut forged.nodes {
        n.group_key = forged.group_key.clone();
    }
    assert!(matches!(
        ceremony::verify_bundle(&forged, &c.roots, &[c.measurement], now),
        Err(CeremonyError::Attestation { .. })
    ));
    // The reports bind the suite: the same key relabelled with the other suite is
    // not a key of it, or fails the binding.
    let mut relabelled = outcome.bundle.clone();
    relabelled.ciphersuite = match suite {
        Ciphersuite::Secp256k1 => Ciphersuite::Ed25519,
        Ciphersuite::Ed25519 => Ciphersuite::Secp256k1,
    };
    for n in &mut relabelled.nodes {
        n.ciphersuite = relabelled.ciphersuite;
    }
    assert!(ceremony::verify_bundle(&relabelled, &c.roots, &[c.measurement], now).is_err());
    // The roster names the machines the operator pinned, one per index.
    let roster = &outcome.bundle.roster;
    assert_eq!(roster.version, 0);
    for node in &outcome.nodes {
        assert_eq!(roster.get(node.target.index).unwrap().spki_sha256, node.pin);
    }
    // n and t are build constants: a bundle claiming another t is refused, even
    // before its evidence (which binds n, t and the roster) is looked at.
    for (t, n) in [(2u16, 5u16), (3, 4), (5, 5)] {
        let mut bad_nt = outcome.bundle.clone();
        bad_nt.t = t;
        bad_nt.n = n;
        let e = issue(
            &ca,
            &bad_nt,
            &c,
            &[c.measurement],
            "CN=tsa",
            now,
            Duration::from_secs(3600),
        )
        .unwrap_err();
        assert!(e.to_string().contains("exactly 3-of-5"), "{e}");
    }
    // A roster naming another machine for an index fails every node's evidence binding.
    let mut swapped = outcome.bundle.clone();
    swapped.roster.members[0].spki_sha256 = [0x11; 32];
    for n in &mut swapped.nodes {
        n.roster = swapped.roster.clone();
    }
    assert!(matches!(
        ceremony::verify_bundle(&swapped, &c.roots, &[c.measurement], now),
        Err(CeremonyError::Attestation { .. })
    ));

    // No CA root fixed yet (no CSR, no /admin/ca-root): every upload is refused.
    let issue_tsa = || {
        issue(
            &ca,
            &outcome.bundle,
            &c,
            &[c.measurement],
            "CN=frostamp TSA,O=test",
            now,
            Duration::from_secs(3600),
        )
    };
    let early = issue_tsa().unwrap();
    let e = install(&outcome.nodes, &c, &[early, ca.certificate_der().unwrap()])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CeremonyError::Refused { status: 409, body, .. } if body.contains("no CA root is fixed")),
        "{e}"
    );
    ceremony::fix_ca_root(
        &outcome.nodes,
        &c.operator,
        &SystemClock,
        "CN=frostamp TSA,O=test",
        &ca.certificate_der().unwrap(),
    )
    .await
    .unwrap();

    // Wrong certificates are refused by every node.
    let wrong_measurement = ca
        .issue_tsa_certificate(
            &bundle_key(&outcome.bundle),
            Some(&[0x22; 48]),
            "CN=tsa",
            now,
            Duration::from_secs(3600),
            &mut rand::thread_rng(),
        )
        .unwrap();
    let wrong_key = ca
        .issue_tsa_certificate(
            &other,
            Some(&c.measurement),
            "CN=tsa",
            now,
            Duration::from_secs(3600),
            &mut rand::thread_rng(),
        )
        .unwrap();
    for bad in [wrong_measurement, wrong_key] {
        for node in &outcome.nodes {
            let e = install(std::slice::from_ref(node), &c, std::slice::from_ref(&bad))
                .await
                .unwrap_err();
            assert!(
                matches!(e, CeremonyError::Refused { status: 422, .. }),
                "{e}"
            );
        }
    }

    let cert = issue_tsa().unwrap();
    assert_eq!(
        frostamp::certs::launch_measurement_of(&cert).unwrap(),
        Some(c.measurement)
    );
    install(
        &outcome.nodes,
        &c,
        &[cert.clone(), ca.certificate_der().unwrap()],
    )
    .await
    .unwrap();
    for node in &outcome.nodes {
        let s = ceremony::status(node).await.unwrap();
        assert_eq!(s.phase, Phase::Serving);
    }
    // The CA root can no longer change once a certificate is installed.
    let other_ca = dev_ca("CN=other CA", now - Duration::from_secs(60));
    let e = ceremony::fix_ca_root(
        &outcome.nodes[..1],
        &c.operator,
        &SystemClock,
        "CN=frostamp TSA,O=test",
        &other_ca.certificate_der().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, CeremonyError::Refused { status: 409, body, .. } if body.contains("already installed")),
        "{e}"
    );
    // The certificate chains to the CA with standard tools (OpenSSL ignores the non-critical extension).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsa.der"), &cert).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.certificate_pem().unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "x509", "-inform", "DER", "-in", "tsa.der", "-out", "tsa.pem",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    common::run_ok(
        std::process::Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                "timestampsign",
                "-CAfile",
                "ca.pem",
                "tsa.pem",
            ])
            .current_dir(dir.path()),
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_another_measurement_is_refused_admission() {
    let c = start(5, &[(3, [0x99u8; 48])]).await;
    let mut o = options(&c);
    // The operator would refuse node 3 already; skip that check to see the peers refuse it.
    o.measurement = None;
    let e = ceremony::run(&o, &|_| {}).await.unwrap_err();
    // Either the operator's own attestation check (measurements differ) or the peers' refusal.
    let msg = e.to_string();
    assert!(
        msg.contains("measurement") || msg.contains("MEASUREMENT"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_calls_need_the_operator_credential() {
    let c = start(2, &[]).await;
    let target = &c.targets[0];
    let node = c.attest(target).await;
    let pin = node.pin;
    // no header
    let r = frostamp::net::client::request(
        &target.public,
        Some(pin),
        frostamp::net::client::Call::post("/admin/configure", b"{}".to_vec()),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    // a different operator
    let intruder = OperatorKey::generate(&mut rand::thread_rng());
    let r = ceremony::admin(
        &node,
        &intruder,
        &SystemClock,
        "/admin/configure",
        b"{}".to_vec(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
    let s = ceremony::status(&node).await.unwrap();
    assert!(
        s.refusals
            .iter()
            .any(|r| r.contains("operator signature does not verify")),
        "{:?}",
        s.refusals
    );
    // public endpoints stay open
    assert_eq!(s.phase, Phase::AwaitingPeers);
}

#[cfg(feature = "test-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn equivocation_in_round_one_aborts_and_names_the_sender() {
    let c = start_with_faults(5, &[], &[(2, "equivocate-round1")]).await;
    match ceremony::run(&options(&c), &|_| {}).await.unwrap_err() {
        CeremonyError::DkgAborted { culprit, reason } => {
            assert_eq!(culprit, Some(2), "{reason}");
            assert!(
                reason.contains("equivocation") || reason.contains("aborted"),
                "{reason}"
            );
        }
        other => panic!("expected an aborted DKG, got {other}"),
    }
}

#[cfg(feature = "test-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_round_two_share_aborts_and_names_the_sender() {
    let c = start_with_faults(5, &[], &[(3, "bad-round2")]).await;
    match ceremony::run(&options(&c), &|_| {}).await.unwrap_err() {
        CeremonyError::DkgAborted { culprit, reason } => {
            assert_eq!(culprit, Some(3), "{reason}");
        }
        other => panic!("expected an aborted DKG, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn external_ca_path_threshold_signed_csr() {
    external_ca_csr(Ciphersuite::Secp256k1).await;
}

/// The same with an Ed25519 epoch: the CSR is signed id-Ed25519, which OpenSSL verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn external_ca_path_threshold_signed_ed25519_csr() {
    external_ca_csr(Ciphersuite::Ed25519).await;
}

async fn external_ca_csr(suite: Ciphersuite) {
    let mut c = start(5, &[]).await;
    c.ciphersuite = suite;
    let outcome = ceremony::run(&options(&c), &|_| {}).await.unwrap();
    let node = &outcome.nodes[1];
    let now = SystemClock.now();
    let ca = dev_ca("CN=external CA", now - Duration::from_secs(60));
    let root = ca.certificate_der().unwrap();
    let subject = "CN=frostamp TSA,O=external CA test";
    // Twin: the CSR must name a self-signed CA root.
    let tsa_like = ca
        .issue_tsa_certificate(
            &bundle_key(&outcome.bundle),
            Some(&c.measurement),
            subject,
            now,
            Duration::from_secs(3600),
            &mut rand::thread_rng(),
        )
        .unwrap();
    let e = ceremony::request_csr(
        node,
        &c.operator,
        &SystemClock,
        subject,
        &outcome.bundle,
        &tsa_like,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, CeremonyError::Refused { status: 422, body, .. } if body.contains("not self-signed")),
        "{e}"
    );
    let csr = ceremony::request_csr(
        node,
        &c.operator,
        &SystemClock,
        subject,
        &outcome.bundle,
        &root,
    )
    .await
    .unwrap();
    let v = frostamp::certs::verify_csr(&csr).unwrap();
    assert_eq!(v.measurement, c.measurement);
    assert_eq!(
        hex::encode(v.group.to_bytes().unwrap()),
        outcome.bundle.group_key
    );
    assert_eq!(v.group.suite(), suite);
    assert!(v.subject.contains("external CA test"));

    // OpenSSL reads it as a PKCS#10 request (it cannot check the FROST signature).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("req.der"), &csr).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["req", "-inform", "DER", "-in", "req.der", "-noout", "-text"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("external CA test"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&frostamp::oid::launch_measurement_ext().to_string()),
        "{text}"
    );
    // An Ed25519 CSR is an ordinary one: OpenSSL checks its signature (its twin, a
    // flipped signature byte, fails below with frostamp's own check and OpenSSL's).
    if suite == Ciphersuite::Ed25519 {
        let out = std::process::Command::new("openssl")
            .args([
                "req", "-inform", "DER", "-in", "req.der", "-noout", "-verify",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        // OpenSSL 3.0 reports the outcome on stderr ("verify OK" or "... verify
        // failure"); its exit status is 0 either way.
        let said = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        assert!(
            out.status.success() && said(&out).contains("verify OK"),
            "{}",
            said(&out)
        );
        let mut bad = csr.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(dir.path().join("bad.der"), &bad).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "req", "-inform", "DER", "-in", "bad.der", "-noout", "-verify",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!said(&out).contains("verify OK"), "{}", said(&out));
        assert!(said(&out).contains("verify failure"), "{}", said(&out));
    }

    // Twin: a flipped signature byte fails verification.
    let mut bad = csr.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(frostamp::certs::verify_csr(&bad).is_err());

    // Twin: signers refuse a CSR for another epoch.
    let mut foreign = outcome.bundle.clone();
    foreign.epoch = "another-epoch".into();
    let e = ceremony::request_csr(node, &c.operator, &SystemClock, "CN=x", &foreign, &root)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not for this node's key epoch"),
        "{e}"
    );
    // Twin: a second CSR for another CA (or another subject) is refused: the
    // root was fixed with the first one.
    let other_ca = dev_ca("CN=another CA", now - Duration::from_secs(60));
    let other_root = other_ca.certificate_der().unwrap();
    for (subj, r) in [(subject, &other_root), ("CN=renamed", &root)] {
        let e = ceremony::request_csr(node, &c.operator, &SystemClock, subj, &outcome.bundle, r)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already fixed"), "{e}");
    }

    // The CA issues from the CSR alone; every node installs the chain.
    let cert = ceremony::issue_for_csr(
        &ca,
        &csr,
        &c.roots,
        &[c.measurement],
        now,
        Duration::from_secs(3600),
    )
    .unwrap();
    assert!(ceremony::issue_for_csr(
        &ca,
        &csr,
        &c.roots,
        &[[0u8; 48]],
        now,
        Duration::from_secs(3600)
    )
    .is_err());
    let chain = [cert, root.clone()];
    // Nodes that did not sign the CSR hold no CA root yet and refuse the chain.
    let mut refused = 0;
    for n in &outcome.nodes {
        match install(std::slice::from_ref(n), &c, &chain).await {
            Ok(()) => {}
            Err(CeremonyError::Refused {
                status: 409, body, ..
            }) if body.contains("no CA root is fixed") => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // t = 3 of the 5 signed the CSR (more only if a signer failed and was replaced).
    assert!((1..=2).contains(&refused), "{refused}");
    // The coordinator holds the CSR's root and refuses another one on /admin/ca-root.
    let e = ceremony::fix_ca_root(
        std::slice::from_ref(node),
        &c.operator,
        &SystemClock,
        subject,
        &other_root,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("already"), "{e}");
    ceremony::fix_ca_root(&outcome.nodes, &c.operator, &SystemClock, subject, &root)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    install(&outcome.nodes, &c, &chain).await.unwrap();
    for n in &outcome.nodes {
        assert_eq!(ceremony::status(n).await.unwrap().phase, Phase::Serving);
    }
}

#[cfg(feature = "test-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_signer_is_named_and_excluded_and_clients_still_get_tokens() {
    byzantine_signer(Ciphersuite::Secp256k1).await;
}

#[cfg(feature = "test-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_ed25519_signer_is_named_and_excluded_and_clients_still_get_tokens() {
    byzantine_signer(Ciphersuite::Ed25519).await;
}

#[cfg(feature = "test-faults")]
async fn byzantine_signer(suite: Ciphersuite) {
    let mut c = start_with_faults(5, &[], &[(2, "bad-signature-share")]).await;
    c.ciphersuite = suite;
    let outcome = ceremony::run(&options(&c), &|_| {}).await.unwrap();
    let now = SystemClock.now();
    let ca = dev_ca("CN=test CA", now - Duration::from_secs(60));
    certify(&outcome, &c, &ca, now, Duration::from_secs(3600)).await;
    // Node 1 coordinates with itself and nodes 2, 3: node 2's share is invalid.
    let node1 = &outcome.nodes[0];
    let r = post_query(node1, b"byzantine").await;
    let opts = frostamp::verify::token::VerifyOptions {
        expected: frostamp::verify::token::Expected::Data(b"byzantine".to_vec()),
        anchors: vec![frostamp::x509::CertDer::from_cert(ca.certificate()).unwrap()],
        extra_certs: vec![],
        at: None,
        nonce: None,
        policy: None,
        time: Some(c.time_policy()),
    };
    let verified = frostamp::verify::token::verify(&r.body, &opts).unwrap();
    if suite == Ciphersuite::Ed25519 {
        assert!(
            verified.signature_algorithm.starts_with("Ed25519"),
            "{verified:?}"
        );
    }
    let s = ceremony::status(node1).await.unwrap();
    assert!(
        s.refusals
            .iter()
            .any(|r| r.contains("node 2 returned an invalid signature share")),
        "{:?}",
        s.refusals
    );
    let m = frostamp::net::client::request(
        &node1.target.public,
        Some(node1.pin),
        frostamp::net::client::Call::get("/metrics"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains("frostamp_signers_excluded_total{cause=\"invalid_share\"} 1"),
        "{text}"
    );
}

/// Serve a timestamp request to `node` and return the parsed response.
async fn ask(node: &ceremony::PinnedNode, data: &[u8]) -> frostamp::tsp::asn1::TimeStampResp {
    let r = post_query(node, data).await;
    <frostamp::tsp::asn1::TimeStampResp as der::Decode>::from_der(&r.body).unwrap()
}

/// POST a SHA-256 timestamp request (no nonce, certificate wanted) for `data` to `node`.
async fn post_query(node: &ceremony::PinnedNode, data: &[u8]) -> frostamp::net::client::Response {
    let req = common::sha256_request(data);
    common::post_query_to(
        &node.target.public,
        Some(node.pin),
        req,
        Duration::from_secs(20),
    )
    .await
    .unwrap()
}

async fn serving(c: &Cluster) -> Vec<ceremony::PinnedNode> {
    let outcome = ceremony::run(&options(c), &|_| {}).await.unwrap();
    let now = SystemClock.now();
    let ca = dev_ca("CN=test CA", now - Duration::from_secs(3600));
    certify(
        &outcome,
        c,
        &ca,
        now - Duration::from_secs(3600),
        Duration::from_secs(86400),
    )
    .await;
    outcome.nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skewed_signers_refuse_and_are_replaced_over_the_network() {
    use frostamp::clock::SkewedClock;
    // 30 s behind: the time evidence lies in their future (their clock only guards
    // against future-dated proposals).
    let behind: Arc<dyn Clock> =
        Arc::new(SkewedClock::behind(SystemClock, Duration::from_secs(30)));
    let c = start_full(5, &[], &[], &[(2, behind.clone()), (3, behind)]).await;
    let nodes = serving(&c).await;
    // Node 1 asks 2 and 3 first; both refuse the evidence's time; 4 and 5 sign.
    let resp = ask(&nodes[0], b"skew").await;
    let s = ceremony::status(&nodes[0]).await.unwrap();
    assert_eq!(
        resp.status.status.as_bytes(),
        [0],
        "{:?} {:?}",
        resp.status.status_string,
        s.refusals
    );
    assert!(
        s.refusals
            .iter()
            .any(|r| r.contains("signer node 2 gave no share") && r.contains("signer's clock")),
        "{:?}",
        s.refusals
    );
    let s2 = ceremony::status(&nodes[1]).await.unwrap();
    assert!(
        s2.refusals
            .iter()
            .any(|r| r.contains("refused to sign") && r.contains("signer's clock")),
        "{:?}",
        s2.refusals
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backdating_coordinator_clock_does_not_move_gen_time() {
    use frostamp::clock::SkewedClock;
    // The coordinator's host clock 30 s behind (inside the operator-auth window of
    // ±60 s): genTime comes from the time evidence, so the token carries the true time.
    let behind: Arc<dyn Clock> =
        Arc::new(SkewedClock::behind(SystemClock, Duration::from_secs(30)));
    let c = start_full(5, &[], &[], &[(1, behind)]).await;
    let nodes = serving(&c).await;
    let before = SystemClock.now();
    let resp = ask(&nodes[0], b"backdated").await;
    assert_eq!(resp.status.status.as_bytes(), [0], "{:?}", resp.status);
    let token = der::Encode::to_der(&resp.time_stamp_token.unwrap()).unwrap();
    let parsed = frostamp::verify::token::parse_token(&token).unwrap();
    let gen = parsed.tst.gen_time.unix_duration();
    let now = before.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(
        gen + Duration::from_secs(2) >= now,
        "genTime {gen:?} is not behind the true time {now:?}"
    );
    assert!(
        gen <= now + Duration::from_secs(20),
        "genTime {gen:?} vs {now:?}"
    );
}

/// n = 5 and t = 3 are build constants (part of the measurement): a configuration or a
/// DKG request with any other n or t is refused by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_configuration_or_dkg_with_another_n_or_t_is_refused_by_every_node() {
    let c = start(5, &[]).await;
    let layout = c.layout();
    let mut four = layout.clone();
    four.remove(&5);
    let mut six = layout.clone();
    six.insert(6, "127.0.0.1:9".into());
    for target in &c.targets {
        let node = c.attest(target).await;
        for (t, nodes) in [
            (2u16, layout.clone()),
            (5, layout.clone()),
            (3, four.clone()),
            (3, six.clone()),
        ] {
            let r = configure(
                &c,
                &node,
                &frostamp::api::admin::ClusterConfig {
                    index: target.index,
                    t,
                    nodes,
                },
            )
            .await;
            let text = String::from_utf8_lossy(&r.body);
            assert_eq!(r.status, 400, "{text}");
            assert!(
                text.contains("exactly n = 5 nodes with threshold t = 3"),
                "{text}"
            );
        }
        for (n, t) in [(5u16, 2u16), (4, 3), (7, 4)] {
            let body = serde_json::to_vec(&frostamp::api::admin::DkgRequest {
                epoch: "e".into(),
                n,
                t,
                ciphersuite: Ciphersuite::Secp256k1,
                pins: std::collections::BTreeMap::new(),
            })
            .unwrap();
            let r = ceremony::admin(
                &node,
                &c.operator,
                &SystemClock,
                "/admin/dkg",
                body,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            let text = String::from_utf8_lossy(&r.body);
            assert_eq!(r.status, 400, "{text}");
            assert!(text.contains("exactly n = 5 with t = 3"), "{text}");
        }
    }
    // The twin: the same nodes take n = 5, t = 3 and make a key.
    ceremony::run(&options(&c), &|_| {}).await.unwrap();
}

/// The DKG runs only among the machines the operator attested: a node whose admitted
/// identities are not the operator's pins aborts before round 1 (here the operator's
/// pins of indices 1 and 2 are swapped), and the same nodes then make a key with the
/// right pins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dkg_runs_only_among_the_identities_the_operator_pinned() {
    let c = start(5, &[]).await;
    let layout = c.layout();
    let mut pinned = Vec::new();
    for target in &c.targets {
        let node = c.attest(target).await;
        let r = configure(
            &c,
            &node,
            &frostamp::api::admin::ClusterConfig {
                index: target.index,
                t: 3,
                nodes: layout.clone(),
            },
        )
        .await;
        assert_eq!(r.status, 200);
        pinned.push(node);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for node in &pinned {
        while ceremony::status(node).await.unwrap().peers.len() < 4 {
            assert!(std::time::Instant::now() < deadline, "peers not admitted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut pins: std::collections::BTreeMap<u16, String> = pinned
        .iter()
        .map(|p| (p.target.index, hex::encode(p.pin)))
        .collect();
    let (p1, p2) = (pins[&1].clone(), pins[&2].clone());
    pins.insert(1, p2);
    pins.insert(2, p1);
    let body = serde_json::to_vec(&frostamp::api::admin::DkgRequest {
        epoch: "swapped".into(),
        n: 5,
        t: 3,
        ciphersuite: Ciphersuite::Secp256k1,
        pins,
    })
    .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for node in pinned.clone() {
        let (op, body) = (c.operator.clone(), body.clone());
        set.spawn(async move {
            ceremony::admin(
                &node,
                &op,
                &SystemClock,
                "/admin/dkg",
                body,
                Duration::from_secs(120),
            )
            .await
            .unwrap()
        });
    }
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 409, "{text}");
        assert!(
            text.contains("not the identity the operator pinned") || text.contains("aborted"),
            "{text}"
        );
    }
    for node in &pinned {
        let s = ceremony::status(node).await.unwrap();
        assert_eq!(s.group_key, None);
        assert_eq!(s.roster, None);
    }
    // The twin: the right pins (the ceremony sends them) make a key.
    ceremony::run(&options(&c), &|_| {}).await.unwrap();
}
