//! The operator's credentials and the development CA: the operator key, issuing,
//! revoking and CRLs; the attestation roots and accepted measurements a verifier takes.

use super::files::read_to_string;
use crate::api::auth::OperatorKey;
use crate::api::bundle::EvidenceBundle;
use crate::attestation::RootSet;
use crate::ceremony::{self};
use crate::certs::DevCa;
use crate::clock::{Clock, SystemClock};
use crate::x509::parse_certificates;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write a secret file readable by the owner only.
pub(super) fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

/// `frostamp operator init`.
pub fn operator_init(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let key_path = dir.join("operator.key");
    if key_path.exists() {
        bail!(
            "{} exists; refusing to overwrite an operator key",
            key_path.display()
        );
    }
    let key = OperatorKey::generate(&mut rand_core::OsRng);
    write_secret(&key_path, key.to_pem().map_err(|e| anyhow!(e))?.as_bytes())?;
    let public = key.public_hex().map_err(|e| anyhow!(e))?;
    std::fs::write(dir.join("operator.pub"), format!("{public}\n"))?;
    Ok(public)
}

/// Load the operator key.
pub fn load_operator(path: &Path) -> Result<OperatorKey> {
    OperatorKey::from_pem(&read_to_string(path, "operator key")?).map_err(|e| anyhow!(e))
}

/// `frostamp ca init`.
pub fn ca_init(dir: &Path, subject: &str) -> Result<DevCa> {
    std::fs::create_dir_all(dir)?;
    if dir.join("ca.key").exists() {
        bail!(
            "{} exists; refusing to overwrite a CA key",
            dir.join("ca.key").display()
        );
    }
    let now = SystemClock.now();
    let ca = DevCa::generate(
        subject,
        now - Duration::from_secs(3600),
        Duration::from_secs(10 * 365 * 86400),
        &mut rand_core::OsRng,
    )?;
    write_secret(&dir.join("ca.key"), ca.key_pem()?.as_bytes())?;
    std::fs::write(dir.join("ca.pem"), ca.certificate_pem()?)?;
    Ok(ca)
}

/// Load the development CA from `dir` (with its CRL URL, if `ca.json` names one).
pub fn ca_load(dir: &Path) -> Result<DevCa> {
    let mut ca = DevCa::from_pem(
        &read_to_string(&dir.join("ca.pem"), "CA certificate")?,
        &read_to_string(&dir.join("ca.key"), "CA key")?,
    )?;
    ca.set_crl_url(ca_state(dir)?.crl_url);
    Ok(ca)
}

/// The development CA's revocation state, `DIR/ca.json` (absent: no URL, nothing revoked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaState {
    /// The CRL distribution point named in the certificates it issues.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The cRLNumber of the last CRL issued.
    #[serde(default)]
    pub crl_number: u64,
    /// Revoked certificates.
    #[serde(default)]
    pub revoked: Vec<RevokedEntry>,
}

/// One revoked certificate in `ca.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedEntry {
    /// Serial number (hex of the INTEGER's content octets).
    pub serial: String,
    /// Revocation time (Unix seconds).
    pub revoked_at: u64,
    /// Reason (RFC 5280 name, e.g. keyCompromise), if given.
    pub reason: Option<String>,
}

fn ca_state(dir: &Path) -> Result<CaState> {
    let p = dir.join("ca.json");
    if !p.exists() {
        return Ok(CaState::default());
    }
    serde_json::from_str(&read_to_string(&p, "CA state")?)
        .with_context(|| format!("in {}", p.display()))
}

fn save_ca_state(dir: &Path, st: &CaState) -> Result<()> {
    std::fs::write(dir.join("ca.json"), serde_json::to_vec_pretty(st)?)?;
    Ok(())
}

/// `frostamp ca init --crl-url URL`: record the URL for the certificates it issues.
pub fn ca_set_crl_url(dir: &Path, url: &str) -> Result<()> {
    if !url.starts_with("http://") {
        bail!("--crl-url must be an http:// URL (RFC 5280 §4.2.1.13: CRLs over HTTP)");
    }
    let mut st = ca_state(dir)?;
    st.crl_url = Some(url.to_string());
    save_ca_state(dir, &st)
}

fn crl_reason(name: &str) -> Result<x509_cert::ext::pkix::CrlReason> {
    use x509_cert::ext::pkix::CrlReason as R;
    Ok(match name {
        "unspecified" => R::Unspecified,
        "keyCompromise" => R::KeyCompromise,
        "cACompromise" | "caCompromise" => R::CaCompromise,
        "affiliationChanged" => R::AffiliationChanged,
        "superseded" => R::Superseded,
        "cessationOfOperation" => R::CessationOfOperation,
        other => bail!("unknown reason {other:?}: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded or cessationOfOperation"),
    })
}

/// `frostamp ca revoke`: record a serial (hex), or the serial of a certificate this CA
/// issued, as revoked now.
pub fn ca_revoke(
    dir: &Path,
    serial: Option<&str>,
    cert: Option<&Path>,
    reason: Option<&str>,
) -> Result<String> {
    let ca = ca_load(dir)?;
    let serial = match (serial, cert) {
        (Some(h), None) => {
            let b = hex::decode(h.trim()).context("--serial is not hex")?;
            hex::encode(b)
        }
        (None, Some(p)) => {
            let c = parse_certificates(
                &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{} holds no certificate", p.display()))?;
            if c.cert.tbs_certificate.issuer != ca.certificate().tbs_certificate.subject {
                bail!(
                    "{} was not issued by this CA ('{}')",
                    p.display(),
                    c.cert.tbs_certificate.issuer
                );
            }
            hex::encode(c.cert.tbs_certificate.serial_number.as_bytes())
        }
        _ => bail!("give --serial HEX or --cert FILE"),
    };
    if let Some(r) = reason {
        crl_reason(r)?;
    }
    let mut st = ca_state(dir)?;
    if !st.revoked.iter().any(|r| r.serial == serial) {
        st.revoked.push(RevokedEntry {
            serial: serial.clone(),
            revoked_at: SystemClock
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            reason: reason.map(str::to_string),
        });
    }
    save_ca_state(dir, &st)?;
    Ok(serial)
}

/// `frostamp ca crl`: issue the next CRL (DER, or PEM with `pem`), valid for `days`.
pub fn ca_crl(dir: &Path, out: &Path, days: u64, pem: bool) -> Result<u64> {
    let ca = ca_load(dir)?;
    let mut st = ca_state(dir)?;
    let revoked = st
        .revoked
        .iter()
        .map(|r| {
            Ok(crate::certs::crl::Revoked {
                serial: hex::decode(&r.serial).context("ca.json: serial")?,
                at: std::time::UNIX_EPOCH + Duration::from_secs(r.revoked_at),
                reason: r.reason.as_deref().map(crl_reason).transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    st.crl_number += 1;
    let now = SystemClock.now();
    let this_update = now.checked_sub(ceremony::ISSUANCE_BACKDATE).unwrap_or(now);
    let der = ca.issue_crl(
        &revoked,
        st.crl_number,
        this_update,
        now + Duration::from_secs(days * 86400),
    )?;
    let bytes = if pem {
        der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der)
            .map_err(|e| anyhow!(e))?
            .into_bytes()
    } else {
        der
    };
    std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    save_ca_state(dir, &st)?;
    Ok(st.crl_number)
}

/// The roots node evidence must chain to: AMD, or a development ARK when explicitly allowed.
pub fn roots(allow_insecure_dev_root: Option<&Path>) -> Result<RootSet> {
    match allow_insecure_dev_root {
        None => Ok(RootSet::amd()),
        #[cfg(feature = "insecure-dev-attestation")]
        Some(p) => {
            let certs = parse_certificates(&std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)?;
            let ark = certs.first().ok_or_else(|| anyhow!("{} holds no certificate", p.display()))?;
            eprintln!("warning: accepting INSECURE development attestation rooted in {}", p.display());
            Ok(RootSet::danger_with_insecure_dev_root(&ark.der))
        }
        #[cfg(not(feature = "insecure-dev-attestation"))]
        Some(_) => bail!("this frostamp was built without development attestation support (feature insecure-dev-attestation)"),
    }
}

/// Parse a 48-byte measurement from hex or from a `measurements/*.json` file
/// (any string field named `measurement` or `launch_digest` at any depth).
pub fn accepted_measurements(hexes: &[String], files: &[PathBuf]) -> Result<Vec<[u8; 48]>> {
    let mut out = Vec::new();
    for h in hexes {
        out.push(
            hex::decode(h.trim())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| anyhow!("measurement {h:?} is not 96 hex digits"))?,
        );
    }
    for f in files {
        let found = measurements_in_json(&read_to_string(f, "measurements file")?)?;
        if found.is_empty() {
            bail!("{} names no measurement", f.display());
        }
        out.extend(found);
    }
    if out.is_empty() {
        bail!("tell the CA which measurement to accept: --measurement HEX or --measurements FILE");
    }
    Ok(out)
}

/// The measurements a `measurements/*.json` file names: every string field named
/// `measurement` or `launch_digest`, at any depth, that is 96 hex digits (what the CA
/// reads with `--measurements FILE`; fuzz target `measurements`).
pub fn measurements_in_json(text: &str) -> Result<Vec<[u8; 48]>, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let mut found = Vec::new();
    collect_measurements(&v, &mut found);
    Ok(found)
}

fn collect_measurements(v: &serde_json::Value, out: &mut Vec<[u8; 48]>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "measurement" || k == "launch_digest" {
                    if let Some(b) = x
                        .as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .and_then(|v| v.try_into().ok())
                    {
                        out.push(b);
                    }
                }
                collect_measurements(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_measurements(x, out)),
        _ => {}
    }
}

/// What `frostamp ca issue` works from.
#[derive(Debug)]
pub enum IssueInput<'a> {
    /// An evidence bundle (development CA run by the operator).
    Bundle(&'a Path),
    /// A threshold-signed CSR carrying the bundle (any CA).
    Csr(&'a Path),
}

/// `frostamp ca issue`.
pub fn ca_issue(
    ca_dir: &Path,
    input: IssueInput<'_>,
    accepted: &[[u8; 48]],
    roots: &RootSet,
    subject: &str,
    out: &Path,
) -> Result<()> {
    let ca = ca_load(ca_dir)?;
    let lifetime = Duration::from_secs(365 * 86400);
    let cert = match input {
        IssueInput::Bundle(p) => {
            let bundle: EvidenceBundle =
                serde_json::from_str(&read_to_string(p, "evidence bundle")?)
                    .context("evidence bundle")?;
            ceremony::issue_for_bundle(
                &ca,
                &bundle,
                roots,
                accepted,
                subject,
                SystemClock.now(),
                lifetime,
            )?
        }
        IssueInput::Csr(p) => {
            let text = read_to_string(p, "CSR")?;
            let (label, der) =
                der::pem::decode_vec(text.as_bytes()).map_err(|e| anyhow!("CSR PEM: {e}"))?;
            if label != "CERTIFICATE REQUEST" {
                bail!("{} is a {label}, not a CERTIFICATE REQUEST", p.display());
            }
            ceremony::issue_for_csr(&ca, &der, roots, accepted, SystemClock.now(), lifetime)?
        }
    };
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert)
        .map_err(|e| anyhow!(e))?;
    std::fs::write(out, format!("{pem}{}", ca.certificate_pem()?))?;
    Ok(())
}
