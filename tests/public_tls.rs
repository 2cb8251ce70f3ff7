//! Public TLS that ordinary clients verify (issue 14 item 4, DESIGN §5): against a
//! local cluster (`frostamp cluster up`), whose ceremony had the development CA issue
//! each node's public TLS certificate for its attested identity key (SANs `localhost`
//! and `127.0.0.1`):
//! - `curl --cacert ROOT` connects with verification on and stamps a query made by
//!   `openssl ts -query`, which `openssl ts -reply` and `frostamp verify` read;
//!   without `--cacert`, or with another root, curl refuses the connection;
//! - Java's TLS client (JDK from Debian, `tests/interop/java/TlsCheck.java` compiled with
//!   `javac`) connects with a truststore made by `keytool` from ROOT, and refuses with a
//!   truststore of another root;
//! - the node refuses a TLS certificate for another key than its identity, and the key
//!   it serves is still the one its attestation bound (the ceremony's pin);
//! - the development CA was made with `--crl-url` (a tiny HTTP server of this test):
//!   `frostamp verify --fetch-crls` fetches its CRL from the TSA certificate's
//!   cRLDistributionPoints, good before `frostamp ca revoke`, revoked after.
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

use frostamp::ceremony;
use std::path::Path;
use std::process::{Command, Output};

fn curl(args: &[&str], cacert: Option<&Path>) -> Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20"]);
    // The system's own bundle stays in force when no --cacert is given.
    c.env_remove("CURL_CA_BUNDLE").env_remove("SSL_CERT_FILE");
    if let Some(p) = cacert {
        c.arg("--cacert").arg(p);
    }
    c.args(args).output().unwrap()
}

fn truststore(dir: &Path, root: &Path, name: &str) -> std::path::PathBuf {
    let store = dir.join(format!("{name}.p12"));
    let out = Command::new("keytool")
        .args(["-importcert", "-noprompt", "-alias", "frostamp-root"])
        .arg("-file")
        .arg(root)
        .arg("-keystore")
        .arg(&store)
        .args(["-storetype", "PKCS12", "-storepass", "changeit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "keytool: {}", output_text(&out));
    store
}

fn java(classes: &Path, store: &Path, url: &str) -> Output {
    Command::new("java")
        .arg(format!("-Djavax.net.ssl.trustStore={}", store.display()))
        .arg("-Djavax.net.ssl.trustStorePassword=changeit")
        .arg("-cp")
        .arg(classes)
        .arg("TlsCheck")
        .arg(url)
        .output()
        .unwrap()
}

/// A tiny HTTP/1.0 server on loopback that answers every request with the bytes of
/// `file` at that moment (404 while it does not exist). Returns its URL base.
fn serve_file(file: std::path::PathBuf) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            // The whole request head, then the answer (closing with unread bytes
            // would reset the connection).
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(buf.get(..k).unwrap_or_default()),
                }
            }
            let reply = match std::fs::read(&file) {
                Ok(body) => [
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    body,
                ]
                .concat(),
                Err(_) => b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(),
            };
            let _ = s.write_all(&reply);
        }
    });
    format!("http://{addr}")
}

#[test]
fn curl_and_java_verify_the_nodes_with_the_root_and_refuse_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cluster");
    let _down = Down(&d);
    // The development CA publishes its CRL at a local URL; `cluster up` uses this CA.
    let published = dir.path().join("published.crl");
    let crl_url = format!("{}/frostamp.crl", serve_file(published.clone()));
    run_ok(
        Command::new(FROSTAMP)
            .args(["ca", "init", "--crl-url", &crl_url, "--dir"])
            .arg(&d),
        "",
    );
    let file = cluster_up(&d);
    let root = file.root.clone().unwrap();
    // Another root: a second development CA.
    let other = dir.path().join("other-ca");
    run_ok(
        Command::new(FROSTAMP)
            .args(["ca", "init", "--dir"])
            .arg(&other),
        "",
    );
    let other_root = other.join("ca.pem");

    // curl, verification on: every node, by address and by name.
    for n in &file.nodes {
        let port = n.public.rsplit_once(':').unwrap().1;
        for host in ["127.0.0.1", "localhost"] {
            let url = format!("https://{host}:{port}/status");
            let out = curl(&[&url], Some(&root));
            assert!(
                out.status.success(),
                "curl --cacert {url}: {}",
                output_text(&out)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["phase"], "serving");
            assert!(v["tls_certificate"].is_string(), "{v}");
            // The key served is the attested identity the ceremony pinned.
            assert_eq!(v["identity"].as_str(), n.pin.as_deref());
        }
    }
    let n1 = &file.nodes[0];
    let url = format!("{}/status", n1.url);
    // Twins: no --cacert (the system's roots only), another root.
    let out = curl(&[&url], None);
    assert_eq!(out.status.code(), Some(60), "{}", output_text(&out));
    let out = curl(&[&url], Some(&other_root));
    assert_eq!(out.status.code(), Some(60), "{}", output_text(&out));

    // Stamping with openssl ts and curl, verification on.
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"stamped with curl --cacert\n").unwrap();
    let tsq = dir.path().join("q.tsq");
    let tsr = dir.path().join("r.tsr");
    openssl_query(&data, "-sha256", &tsq);
    let out = curl(
        &[
            "--fail",
            "-H",
            "Content-Type: application/timestamp-query",
            "--data-binary",
            &format!("@{}", tsq.display()),
            "-o",
            tsr.to_str().unwrap(),
            &format!("{}/", file.nodes[2].url),
        ],
        Some(&root),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let out = openssl_reply_text(&tsr);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Status: Granted."));
    let time = d.join(frostamp::cli::ops::TIME_CONFIG_FILE);
    let out = verify_time_cmd(&tsr, &data, &root, &time).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));

    // Java's TLS client with a keytool truststore of ROOT; the twin with another root.
    let classes = dir.path().join("classes");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java/TlsCheck.java");
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "javac: {}", output_text(&out));
    let good = truststore(dir.path(), &root, "trust");
    let bad = truststore(dir.path(), &other_root, "other");
    for host in ["127.0.0.1", "localhost"] {
        let port = n1.public.rsplit_once(':').unwrap().1;
        let url = format!("https://{host}:{port}/status");
        let out = java(&classes, &good, &url);
        let t = output_text(&out);
        assert!(out.status.success(), "java {url}: {t}");
        assert!(t.contains("status 200"), "{t}");
        assert!(t.contains("\"phase\": \"serving\""), "{t}");
        let out = java(&classes, &bad, &url);
        let t = output_text(&out);
        assert!(!out.status.success(), "java trusted another root: {t}");
        assert!(t.contains("SSLHandshakeException"), "{t}");
    }

    // The node refuses a TLS certificate for another key (here: node 2's, installed on
    // node 1), and keeps serving its own.
    let operator = frostamp::cli::ops::load_operator(&d.join("operator.key")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = frostamp::cli::ops::ca_load(&d).unwrap();
    let names = frostamp::cli::ops::local_public_names();
    let node2_leaf = rt
        .block_on(ceremony::tls::certify_with_dev_ca(
            &ca,
            &pinned(&file.nodes[1]),
            &names,
            &operator,
            &frostamp::clock::SystemClock,
        ))
        .unwrap();
    let e = rt
        .block_on(ceremony::tls::install_tls_chain(
            &pinned(n1),
            &operator,
            &frostamp::clock::SystemClock,
            &[node2_leaf],
        ))
        .unwrap_err();
    assert!(e.to_string().contains("certifies another key"), "{e}");
    assert!(e.to_string().contains("422"), "{e}");
    let out = curl(&[&url], Some(&root));
    assert!(out.status.success(), "{}", output_text(&out));

    // --fetch-crls: the TSA certificate names the CA's CRL; good, then revoked.
    let verify_fetching = || {
        verify_time_cmd(&tsr, &data, &root, &time)
            .args(["--fetch-crls", "--json"])
            .output()
            .unwrap()
    };
    let issue_crl = || {
        run_ok(
            Command::new(FROSTAMP)
                .args(["ca", "crl", "--dir"])
                .arg(&d)
                .arg("--out")
                .arg(&published),
            "",
        );
    };
    // Twin first: nothing published yet, the fetch fails (a usage error, exit 2).
    let out = verify_fetching();
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    issue_crl();
    let out = verify_fetching();
    assert!(out.status.success(), "{}", output_text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["revocation"]["certificates"][0]["status"], "good", "{j}");
    assert_eq!(j["revocation"]["certificates"][0]["crl"], crl_url.as_str());
    run_ok(
        Command::new(FROSTAMP)
            .args(["ca", "revoke", "--dir"])
            .arg(&d)
            .arg("--cert")
            .arg(file.chain.as_ref().unwrap()),
        "",
    );
    issue_crl();
    let out = verify_fetching();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["revocation"]["certificates"][0]["status"], "revoked",
        "{j}"
    );
    // A CA the operator picks (here OpenSSL's): `ceremony tls` without a development CA
    // writes node 3's request, `openssl x509 -req` issues from it (copying the
    // subjectAltName), `ceremony install-tls` uploads; node 3 then verifies with that root.
    let ext = dir.path().join("external");
    std::fs::create_dir_all(&ext).unwrap();
    let mut plain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("cluster.json")).unwrap()).unwrap();
    plain.as_object_mut().unwrap().remove("ca_dir");
    std::fs::write(ext.join("cluster.json"), plain.to_string()).unwrap();
    run_ok(
        Command::new(FROSTAMP)
            .args(["ceremony", "tls", "--index", "3", "--state-dir"])
            .arg(&ext),
        "",
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&ext)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            output_text(&out)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=external TLS CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls-node3.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-copy_extensions",
        "copyall",
        "-days",
        "1",
        "-out",
        "node3.pem",
    ]);
    let chain = ext.join("node3-chain.pem");
    std::fs::write(
        &chain,
        [
            std::fs::read(ext.join("node3.pem")).unwrap(),
            std::fs::read(ext.join("ca.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let out = run_ok(
        Command::new(FROSTAMP)
            .args(["ceremony", "install-tls", "--state-dir"])
            .arg(&ext)
            .arg(&chain),
        "",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node 3: serves"));
    let url3 = format!("{}/status", file.nodes[2].url);
    let out = curl(&[&url3], Some(&ext.join("ca.pem")));
    assert!(out.status.success(), "{}", output_text(&out));
    // Twin: the development root no longer vouches for node 3.
    let out = curl(&[&url3], Some(&root));
    assert_eq!(out.status.code(), Some(60), "{}", output_text(&out));
}
