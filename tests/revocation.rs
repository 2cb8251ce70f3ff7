//! Revocation in `frostamp verify` (issue 14 item 5): a token of the in-process
//! development TSA, whose CA is saved as a `frostamp ca` directory, checked with
//! `--crl FILE` from `frostamp ca crl`: good before `frostamp ca revoke`, revoked after;
//! a CRL whose signature has a flipped byte, an expired CRL and no CRL for the issuer
//! are each reported and fail (fail closed), and `--json` carries the result.
//! `--fetch-crls` against a local HTTP server: `tests/public_tls.rs`.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

struct Fixture {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    tsr: std::path::PathBuf,
    data: std::path::PathBuf,
    tsa_pem: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tsa = local_tsa();
    let ca = dir.path().join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(ca.join("ca.pem"), tsa.ca.certificate_pem().unwrap()).unwrap();
    std::fs::write(ca.join("ca.key"), tsa.ca.key_pem().unwrap().as_bytes()).unwrap();
    let tsa_pem = dir.path().join("tsa.pem");
    std::fs::write(
        &tsa_pem,
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &tsa.tsa_cert).unwrap(),
    )
    .unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"revocation").unwrap();
    let req = common::sha256_request(b"revocation");
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    let tsr = dir.path().join("data.tsr");
    std::fs::write(&tsr, &issued.response).unwrap();
    Fixture {
        _dir: dir,
        ca,
        tsr,
        data,
        tsa_pem,
    }
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(FROSTAMP).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Fixture {
    fn crl(&self, name: &str, extra: &[&str]) -> std::path::PathBuf {
        let out = self.ca.join(name);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "ca".as_ref(),
            "crl".as_ref(),
            "--dir".as_ref(),
            self.ca.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        let o = run(&args);
        assert!(o.status.success(), "{}", text(&o));
        out
    }
    fn verify(&self, crls: &[&Path], json: bool) -> Output {
        let mut c = Command::new(FROSTAMP);
        c.arg("verify")
            .arg(&self.tsr)
            .arg("--data")
            .arg(&self.data)
            .arg("--roots")
            .arg(self.ca.join("ca.pem"));
        for p in crls {
            c.arg("--crl").arg(p);
        }
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    }
}

#[test]
fn a_good_then_revoked_tsa_certificate() {
    let f = fixture();
    // Good: a fresh CRL (PEM) of the issuer that does not list it.
    let good = f.crl("good.crl", &["--pem"]);
    let o = f.verify(&[&good], false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("good (CRL"), "{}", text(&o));
    let o = f.verify(&[&good], true);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["revocation"]["ok"], true);
    assert_eq!(j["revocation"]["certificates"][0]["status"], "good");
    assert_eq!(j["revocation"]["certificates"][1]["status"], "anchor");

    // Revoke the TSA certificate; the next CRL (DER) lists it.
    let o = run(&[
        "ca".as_ref(),
        "revoke".as_ref(),
        "--dir".as_ref(),
        f.ca.as_os_str(),
        "--cert".as_ref(),
        f.tsa_pem.as_os_str(),
        "--reason".as_ref(),
        "keyCompromise".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let revoked = f.crl("revoked.crl", &[]);
    let o = f.verify(&[&revoked], false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("REVOKED at"), "{}", text(&o));
    assert!(text(&o).contains("KeyCompromise"), "{}", text(&o));
    let o = f.verify(&[&revoked], true);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"], "revocation");
    assert_eq!(j["revocation"]["certificates"][0]["status"], "revoked");
    // OpenSSL reads the CRL the CA wrote and finds the serial in it.
    let o = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&revoked)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let serial = frostamp::x509::parse_certificates(&std::fs::read(&f.tsa_pem).unwrap()).unwrap()
        [0]
    .cert
    .tbs_certificate
    .serial_number
    .as_bytes()
    .to_vec();
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .to_uppercase()
            .contains(&hex::encode_upper(&serial)),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_expired_and_missing_crls_fail_closed() {
    let f = fixture();
    // No revocation options: verification as before.
    assert!(f.verify(&[], false).status.success());
    // A flipped byte in the CRL's signature.
    let good = f.crl("good.crl", &[]);
    let mut bytes = std::fs::read(&good).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let bad = f.ca.join("bad.crl");
    std::fs::write(&bad, bytes).unwrap();
    let o = f.verify(&[&bad], false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("signature does not verify"),
        "{}",
        text(&o)
    );
    // Its twin, the same CRL intact, passes.
    assert!(f.verify(&[&good], false).status.success());
    // An expired CRL (nextUpdate = the moment it was issued).
    let expired = f.crl("expired.crl", &["--days", "0"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = f.verify(&[&expired], false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("expired: its nextUpdate"), "{}", text(&o));
    // A CRL of another CA only: the issuer has no CRL, the status is unknown.
    let other = tempfile::tempdir().unwrap();
    let o = run(&[
        "ca".as_ref(),
        "init".as_ref(),
        "--dir".as_ref(),
        other.path().as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let foreign = other.path().join("other.crl");
    let o = run(&[
        "ca".as_ref(),
        "crl".as_ref(),
        "--dir".as_ref(),
        other.path().as_os_str(),
        "--out".as_ref(),
        foreign.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = f.verify(&[&foreign], true);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["revocation"]["certificates"][0]["status"], "unknown");
    assert!(
        j["revocation"]["certificates"][0]["why"][0]
            .as_str()
            .unwrap()
            .contains("no CRL given is issued by"),
        "{j}"
    );
    // Not a CRL at all: a usage error.
    let o = f.verify(&[&f.tsa_pem], false);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
