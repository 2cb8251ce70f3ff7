//! The `frostamp` binary as a user runs it: demo, request, verify; exit codes
//! 0 (verified) / 1 (verification failed) / 2 (usage error) and clear messages.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::path::Path;
use std::process::{Command, Output};

fn frostamp(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frostamp"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A temporary directory holding `doc.txt` ("a document\n").
fn doc_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doc.txt"), b"a document\n").unwrap();
    dir
}

/// `frostamp demo doc.txt --out-dir out` in `dir`.
fn demo(dir: &Path) -> Output {
    frostamp(&["demo", "doc.txt", "--out-dir", "out"], dir)
}

/// `frostamp verify out/doc.txt.tsr --digest DIGEST --roots out/root.pem` in `dir`.
fn verify_digest(dir: &Path, digest: &str) -> Output {
    frostamp(
        &[
            "verify",
            "out/doc.txt.tsr",
            "--digest",
            digest,
            "--roots",
            "out/root.pem",
        ],
        dir,
    )
}

/// `frostamp verify TOKEN --data doc.txt --roots ROOTS EXTRA…` in `dir`.
fn verify_doc(dir: &Path, token: &str, roots: &str, extra: &[&str]) -> Output {
    let mut args = vec!["verify", token, "--data", "doc.txt", "--roots", roots];
    args.extend_from_slice(extra);
    frostamp(&args, dir)
}

/// The real SEV-SNP reports and VCEKs of tests/data/assets.
const REPORTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/assets/sev-snp-reports"
);

/// `frostamp attestation verify REPORT --vcek VCEK --at AT EXTRA…` in `dir`, REPORT and
/// VCEK named below [`REPORTS`].
fn attestation_verify(dir: &Path, report: &str, vcek: &str, at: &str, extra: &[&str]) -> Output {
    let (report, vcek) = (format!("{REPORTS}/{report}"), format!("{REPORTS}/{vcek}"));
    let mut args = vec![
        "attestation",
        "verify",
        &report,
        "--vcek",
        &vcek,
        "--at",
        at,
    ];
    args.extend_from_slice(extra);
    frostamp(&args, dir)
}

/// Asserts that `out` exited with `code` and its stderr contains `says`.
fn assert_exit_says(out: &Output, code: i32, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(says), "{err}");
}

#[test]
fn demo_then_verify_by_digest_and_failures() {
    let dir = doc_dir();
    let d = dir.path();
    let out = demo(d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Verification: OK"), "{stdout}");
    assert!(stdout.contains("FROST(secp256k1, SHA-256)"));

    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"a document\n"));
    let ok = verify_digest(d, &digest);
    assert_eq!(ok.status.code(), Some(0));

    // a different digest: verification failure, exit 1, names the check
    let bad = verify_digest(d, &"00".repeat(32));
    assert_exit_says(&bad, 1, "imprint_mismatch");

    // the TSA certificate as root is a valid anchor (leaf == anchor)
    let as_leaf = verify_doc(d, "out/doc.txt.tsr", "out/tsa.pem", &[]);
    assert_eq!(
        as_leaf.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&as_leaf.stderr)
    );

    // checked two years from now the certificate has expired
    let later = verify_doc(
        d,
        "out/doc.txt.tsr",
        "out/root.pem",
        &["--at", "2099-01-01T00:00:00Z", "--json"],
    );
    assert_eq!(later.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&later.stdout).unwrap();
    assert_eq!(j["error"], "chain");

    // usage errors: exit 2 with a message saying what to do
    let missing = verify_doc(d, "out/doc.txt.tsr", "nope.pem", &[]);
    assert_exit_says(&missing, 2, "cannot read roots nope.pem");
    let garbage_at = verify_doc(d, "out/doc.txt.tsr", "out/root.pem", &["--at", "yesterday"]);
    assert_eq!(garbage_at.status.code(), Some(2));
    std::fs::write(d.join("junk.tsr"), b"not a token").unwrap();
    let junk = verify_doc(d, "junk.tsr", "out/root.pem", &[]);
    assert_exit_says(&junk, 1, "malformed");
}

#[test]
fn request_is_readable_by_openssl() {
    let dir = doc_dir();
    let d = dir.path();
    let out = frostamp(
        &[
            "request",
            "doc.txt",
            "--hash",
            "sha384",
            "--nonce",
            "--cert-req",
            "-o",
            "q.tsq",
        ],
        d,
    );
    assert!(out.status.success());
    let text = Command::new("openssl")
        .args(["ts", "-query", "-in", "q.tsq", "-text"])
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Hash Algorithm: sha384"), "{text}");
    assert!(text.contains("Certificate required: yes"), "{text}");
    assert!(!text.contains("Nonce: unspecified"), "{text}");
    let bad = frostamp(&["request", "doc.txt", "--hash", "md5", "-o", "q.tsq"], d);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn attestation_verify_prints_each_check_on_real_reports() {
    let dir = tempfile::tempdir().unwrap();
    let turin = |extra: &[&str]| {
        attestation_verify(
            dir.path(),
            "derived/oak_turin_oc_report.bin",
            "derived/oak_turin_oc_vcek.der",
            "2025-08-01T00:00:00Z",
            extra,
        )
    };
    let go_sev_guest = |extra: &[&str]| {
        attestation_verify(
            dir.path(),
            "go-sev-guest/attestation.bin",
            "go-sev-guest/vcek.der",
            "2025-01-01T00:00:00Z",
            extra,
        )
    };
    // Turin (Oak), at a time inside its VCEK's validity: authentic, but its SNP SPL (2)
    // is below the compiled-in floor (4, AMD-SB-3023), so the CLI refuses it at "tcb".
    let old_tcb = turin(&["--json"]);
    assert_eq!(
        old_tcb.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&old_tcb.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&old_tcb.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().take(6).all(|c| c["result"] == "ok"), "{v}");
    assert_eq!(checks[6]["check"], "tcb");
    assert_eq!(checks[6]["result"], "FAILED");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("turin REPORTED_TCB snp SPL 2 is below the floor 4")
            && error.contains("AMD-SB-3023"),
        "{error}"
    );
    // With a wrong expected measurement too, the first failure is still the TCB and the
    // measurement check is not reached.
    let bad = turin(&["--measurement", &"00".repeat(48), "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let state = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .map(|c| c["result"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(state("tcb"), "FAILED");
    assert_eq!(state("measurement"), "not reached");
    // go-sev-guest's real report was launched with DEBUG: refused at policy; allowing
    // debug does not help, its version 2 report predates the admission policy's minimum.
    let dbg = go_sev_guest(&[]);
    assert_exit_says(&dbg, 1, "FAILED at policy: guest policy allows debugging");
    let allowed = go_sev_guest(&["--allow-debug"]);
    assert_exit_says(
        &allowed,
        1,
        "attestation report version 2 is below the required 3",
    );
    // virtee's hex report (Milan, version 2): read and authenticated, refused at policy.
    let hex_report = attestation_verify(
        dir.path(),
        "virtee-sev/report_milan.hex",
        "virtee-sev/vcek_milan.der",
        "2025-01-01T00:00:00Z",
        &[],
    );
    assert_eq!(
        hex_report.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&hex_report.stderr)
    );
    let out = String::from_utf8_lossy(&hex_report.stdout);
    assert!(out.contains("signature        ok"), "{out}");
    assert!(
        String::from_utf8_lossy(&hex_report.stderr).contains("FAILED at policy"),
        "{}",
        String::from_utf8_lossy(&hex_report.stderr)
    );
}

#[test]
fn a_node_without_sev_snp_refuses_to_start_and_never_falls_back() {
    if std::path::Path::new("/dev/sev-guest").exists() {
        return; // on real SEV-SNP hardware this test does not apply
    }
    let out = Command::new(env!("CARGO_BIN_EXE_frostamp-node"))
        .args(["--public", "127.0.0.1:0", "--peer", "127.0.0.1:0"])
        .env_remove("FROSTAMP_INSECURE_DEV_PLATFORM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no /dev/sev-guest") && err.contains("never falls back"),
        "{err}"
    );
}

#[test]
fn vcek_url_names_the_chip_and_reported_tcb() {
    let a = REPORTS;
    let dir = tempfile::tempdir().unwrap();
    // PROVENANCE: go-sev-guest VCEK chip_id 3ac3fe21…, TCB blSPL=2 teeSPL=0 snpSPL=5 ucodeSPL=68 (v2 report: family given).
    let out = frostamp(
        &[
            "attestation",
            "vcek-url",
            &format!("{a}/go-sev-guest/attestation.bin"),
            "--family",
            "milan",
        ],
        dir.path(),
    );
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(
        url.starts_with("https://kdsintf.amd.com/vcek/v1/Milan/3ac3fe21e13fb099"),
        "{url}"
    );
    assert!(
        url.trim_end()
            .ends_with("?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68"),
        "{url}"
    );
    // PROVENANCE: Turin chip_id is 8 bytes 3b42092f69c656d3, TCB fmc=0 bl=1 tee=0 snp=2 ucode=71.
    let out = frostamp(
        &[
            "attestation",
            "vcek-url",
            &format!("{a}/derived/oak_turin_oc_report.bin"),
        ],
        dir.path(),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=00&blSPL=01&teeSPL=00&snpSPL=02&ucodeSPL=71"
    );
    // A v2 report without --family: a clear usage error.
    let out = frostamp(
        &[
            "attestation",
            "vcek-url",
            &format!("{a}/go-sev-guest/attestation.bin"),
        ],
        dir.path(),
    );
    assert_exit_says(&out, 2, "--family");
}

/// `verify --time-servers FILE` (and `stamp`'s) reads a time configuration; a file that is
/// missing or not a valid configuration is a usage error naming it, before any check.
#[test]
fn verify_time_servers_must_be_a_valid_time_configuration() {
    let dir = doc_dir();
    let d = dir.path();
    let out = demo(d);
    assert!(out.status.success());
    let verify = |servers: &str| {
        verify_doc(
            d,
            "out/doc.txt.tsr",
            "out/root.pem",
            &["--time-servers", servers],
        )
    };
    let missing = verify("absent.json");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read time servers absent.json")
    );
    let key = "11".repeat(32);
    for (name, text, says) in [
        (
            "q0.json",
            format!(
                r#"{{"servers":[{{"name":"a","public_key":"{key}","address":"127.0.0.1:1"}}],"quorum":0}}"#
            ),
            "quorum 0 with 1 servers",
        ),
        (
            "q2.json",
            format!(
                r#"{{"servers":[{{"name":"a","public_key":"{key}","address":"127.0.0.1:1"}}],"quorum":2}}"#
            ),
            "quorum 2 with 1 servers",
        ),
        (
            "key.json",
            r#"{"servers":[{"name":"a","public_key":"abcd","address":"127.0.0.1:1"}],"quorum":1}"#
                .into(),
            "time server a: public_key must be 32 hex bytes",
        ),
        (
            "ver.json",
            format!(
                r#"{{"servers":[{{"name":"a","public_key":"{key}","version":"v9","address":"127.0.0.1:1"}}],"quorum":1}}"#
            ),
            "unknown version",
        ),
        ("junk.json", "not json".into(), "time configuration:"),
    ] {
        std::fs::write(d.join(name), text).unwrap();
        let out = verify(name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    }
    // `cluster time-server`: exactly one of --stop / --start; --offset only with --start.
    for extra in [
        &[][..],
        &["--stop", "1", "--start", "1"],
        &["--stop", "1", "--offset", "5"],
    ] {
        let args = [&["cluster", "time-server", "--dir", "x"][..], extra].concat();
        assert_eq!(frostamp(&args, d).status.code(), Some(2), "{args:?}");
    }
}
