//! Revocation of the certificates of a token's path by CRLs (RFC 5280 §5, §6.3, in
//! the subset a relying party of a TSA needs): `frostamp verify --crl FILE` and
//! `--fetch-crls`.
//!
//! For every certificate of the path except the trust anchor (its trust comes from
//! configuration, RFC 5280 §6.1.1 (d)), a CRL is **usable** when
//! - its issuer (DER) equals the certificate's issuer, and its signature verifies over
//!   the exact received TBSCertList with the key of the certificate's issuer in the path;
//! - `thisUpdate <= at <= nextUpdate` (a CRL without nextUpdate is not usable: RFC 5280
//!   §5.1.2.5 requires it);
//! - it is a complete CRL: no critical CRL extension (e.g. issuingDistributionPoint,
//!   deltaCRLIndicator) and no critical entry extension this module does not read.
//!
//! The certificate is **revoked** if a usable CRL lists its serial number, **good** if a
//! usable CRL does not, and **unknown** if no CRL given is usable for it; each unusable
//! CRL says why (signature, expired, not yet valid, another issuer). Unknown is an
//! error, like revoked: a relying party that asks for revocation checking and cannot get
//! an answer for a certificate does not accept the token (fail closed). The CLI turns
//! every certificate's result into the verification's outcome and its `--json` output.
//!
//! A revoked TSA certificate fails the token whatever the revocation date: whether a
//! token made before a revocation for another reason than keyCompromise may stand
//! (RFC 3161 §4.1) is a policy decision left to the relying party, who sees the date
//! and the reason in the output.

use crate::x509::RawSigned;
use der::{Decode, Encode};
use serde::Serialize;
use std::time::SystemTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, CrlReason};
use x509_cert::Certificate;

/// A CRL that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// Neither a PEM `X509 CRL` block nor a DER CertificateList.
    #[error("not a CRL (PEM X509 CRL or DER): {0}")]
    Malformed(String),
}

/// A CRL as received, decoded.
#[derive(Debug, Clone)]
pub struct Crl {
    /// Where it came from (file name or URL), for messages.
    pub source: String,
    /// The received DER.
    pub der: Vec<u8>,
    /// Its decoding.
    pub list: CertificateList,
}

/// Parse CRLs from PEM (one or more `X509 CRL` blocks) or one DER CertificateList.
pub fn parse_crls(bytes: &[u8], source: &str) -> Result<Vec<Crl>, CrlError> {
    let mut ders = Vec::new();
    match core::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let mut rest = text;
            while let Some(start) = rest.find("-----BEGIN X509 CRL-----") {
                let block = rest.get(start..).unwrap_or_default();
                let end = block
                    .find("-----END X509 CRL-----")
                    .ok_or_else(|| CrlError::Malformed("PEM block without END line".into()))?
                    + "-----END X509 CRL-----".len();
                let (label, der) =
                    der::pem::decode_vec(block.get(..end).unwrap_or_default().as_bytes())
                        .map_err(|e| CrlError::Malformed(format!("PEM: {e}")))?;
                if label != "X509 CRL" {
                    return Err(CrlError::Malformed(format!("PEM label {label}")));
                }
                ders.push(der);
                rest = block.get(end..).unwrap_or_default();
            }
            if ders.is_empty() {
                return Err(CrlError::Malformed("no PEM X509 CRL block".into()));
            }
        }
        _ => ders.push(bytes.to_vec()),
    }
    ders.into_iter()
        .map(|der| {
            let list =
                CertificateList::from_der(&der).map_err(|e| CrlError::Malformed(e.to_string()))?;
            Ok(Crl {
                source: source.to_string(),
                der,
                list,
            })
        })
        .collect()
}

/// The revocation state of one certificate of the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// A usable CRL of its issuer does not list it.
    Good {
        /// The CRL that said so.
        crl: String,
        /// Its thisUpdate and nextUpdate.
        this_update: String,
        /// nextUpdate.
        next_update: String,
    },
    /// A usable CRL of its issuer lists it.
    Revoked {
        /// The CRL that said so.
        crl: String,
        /// The revocation date.
        revoked_at: String,
        /// The reason code, if the entry carries one.
        reason: Option<String>,
    },
    /// No CRL given is usable for it; why each candidate was not.
    Unknown {
        /// One line per CRL that names its issuer, or a note that none does.
        why: Vec<String>,
    },
    /// The trust anchor: not checked (its trust is configured).
    Anchor,
}

/// One certificate's result.
#[derive(Debug, Clone, Serialize)]
pub struct CertStatus {
    /// Subject.
    pub subject: String,
    /// Serial number (hex).
    pub serial: String,
    /// Result.
    #[serde(flatten)]
    pub status: Status,
}

/// Every certificate's result, leaf first.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The time CRLs were checked at (RFC 3339).
    pub checked_at: String,
    /// Whether every certificate but the anchor is good.
    pub ok: bool,
    /// Leaf first.
    pub certificates: Vec<CertStatus>,
}

fn time_text(t: &x509_cert::time::Time) -> String {
    t.to_string()
}

/// Check `path` (leaf first, trust anchor last) against `crls` at `at`.
pub fn check_path(path: &[Certificate], crls: &[Crl], at: SystemTime) -> Report {
    let mut certificates = Vec::new();
    for (i, cert) in path.iter().enumerate() {
        let tbs = &cert.tbs_certificate;
        let status = match path.get(i + 1) {
            None => Status::Anchor,
            Some(issuer) => status_of(cert, issuer, crls, at),
        };
        certificates.push(CertStatus {
            subject: tbs.subject.to_string(),
            serial: hex::encode(tbs.serial_number.as_bytes()),
            status,
        });
    }
    let ok = certificates
        .iter()
        .all(|c| matches!(c.status, Status::Good { .. } | Status::Anchor));
    Report {
        checked_at: crate::tsp::time::GenTime::from_unix_duration(
            at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
        )
        .map(|t| t.to_rfc3339())
        .unwrap_or_default(),
        ok,
        certificates,
    }
}

fn status_of(cert: &Certificate, issuer: &Certificate, crls: &[Crl], at: SystemTime) -> Status {
    let tbs = &cert.tbs_certificate;
    let mut why = Vec::new();
    for crl in crls {
        let list = &crl.list.tbs_cert_list;
        if list.issuer != tbs.issuer {
            continue;
        }
        match usable(crl, issuer, at) {
            Err(reason) => why.push(format!("{}: {reason}", crl.source)),
            Ok(next_update) => {
                let entry = list
                    .revoked_certificates
                    .iter()
                    .flatten()
                    .find(|r| r.serial_number == tbs.serial_number);
                return match entry {
                    Some(r) => Status::Revoked {
                        crl: crl.source.clone(),
                        revoked_at: time_text(&r.revocation_date),
                        reason: r
                            .crl_entry_extensions
                            .iter()
                            .flatten()
                            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS)
                            .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok())
                            .map(|r| format!("{r:?}")),
                    },
                    None => Status::Good {
                        crl: crl.source.clone(),
                        this_update: time_text(&list.this_update),
                        next_update,
                    },
                };
            }
        }
    }
    if why.is_empty() {
        why.push(format!("no CRL given is issued by '{}'", tbs.issuer));
    }
    Status::Unknown { why }
}

/// Why a CRL is not used for a certificate (reported with its source).
#[derive(Debug, thiserror::Error)]
enum Unusable {
    /// Its DER does not parse.
    #[error("malformed: {0}")]
    Malformed(der::Error),
    /// The inner and outer signature algorithms differ.
    #[error("tbsCertList.signature differs from signatureAlgorithm")]
    AlgorithmMismatch,
    /// The signature is not a whole number of bytes.
    #[error("malformed signature bit string")]
    SignatureBits,
    /// The issuer's key does not verify it.
    #[error("signature does not verify with the key of '{issuer}': {why}")]
    Signature {
        /// The issuer's subject.
        issuer: String,
        /// Why.
        why: crate::x509::sig::SignatureError,
    },
    /// `at` is before its thisUpdate.
    #[error("not valid before its thisUpdate {0}")]
    NotYetValid(String),
    /// It has no nextUpdate.
    #[error("no nextUpdate (RFC 5280 §5.1.2.5)")]
    NoNextUpdate,
    /// `at` is after its nextUpdate.
    #[error("expired: its nextUpdate was {0}")]
    Expired(String),
    /// A critical CRL extension this verifier does not read.
    #[error("critical CRL extension {0} (not a complete CRL this verifier reads)")]
    CriticalExtension(const_oid::ObjectIdentifier),
    /// A critical entry extension this verifier does not read.
    #[error("critical entry extension {0}")]
    CriticalEntryExtension(const_oid::ObjectIdentifier),
}

/// Whether `crl` is usable for certificates of `issuer` at `at`; its nextUpdate if so.
fn usable(crl: &Crl, issuer: &Certificate, at: SystemTime) -> Result<String, Unusable> {
    let list = &crl.list.tbs_cert_list;
    let tbs = RawSigned::from_der(&crl.der)
        .and_then(|raw| raw.tbs.to_der())
        .map_err(Unusable::Malformed)?;
    if list.signature != crl.list.signature_algorithm {
        return Err(Unusable::AlgorithmMismatch);
    }
    let sig = crl
        .list
        .signature
        .as_bytes()
        .ok_or(Unusable::SignatureBits)?;
    crate::x509::sig::verify_signature(
        &crl.list.signature_algorithm,
        None,
        &issuer.tbs_certificate.subject_public_key_info,
        &tbs,
        sig,
    )
    .map_err(|why| Unusable::Signature {
        issuer: issuer.tbs_certificate.subject.to_string(),
        why,
    })?;
    if at < list.this_update.to_system_time() {
        return Err(Unusable::NotYetValid(list.this_update.to_string()));
    }
    let next = list.next_update.as_ref().ok_or(Unusable::NoNextUpdate)?;
    if at > next.to_system_time() {
        return Err(Unusable::Expired(next.to_string()));
    }
    use const_oid::db::rfc5280::{ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS};
    if let Some(oid) = critical_other_than(list.crl_extensions.as_deref(), ID_CE_CRL_NUMBER) {
        return Err(Unusable::CriticalExtension(oid));
    }
    for r in list.revoked_certificates.iter().flatten() {
        if let Some(oid) = critical_other_than(r.crl_entry_extensions.as_deref(), ID_CE_CRL_REASONS)
        {
            return Err(Unusable::CriticalEntryExtension(oid));
        }
    }
    Ok(time_text(next))
}

/// The first critical extension in `extensions` other than `known`.
fn critical_other_than(
    extensions: Option<&[x509_cert::ext::Extension]>,
    known: const_oid::ObjectIdentifier,
) -> Option<const_oid::ObjectIdentifier> {
    extensions
        .unwrap_or_default()
        .iter()
        .find(|e| e.critical && e.extn_id != known)
        .map(|e| e.extn_id)
}

/// The HTTP URLs of a certificate's cRLDistributionPoints (RFC 5280 §4.2.1.13).
pub fn distribution_points(cert: &Certificate) -> Vec<String> {
    let mut out = Vec::new();
    for e in cert.tbs_certificate.extensions.iter().flatten() {
        if e.extn_id != const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS {
            continue;
        }
        let Ok(dps) = CrlDistributionPoints::from_der(e.extn_value.as_bytes()) else {
            continue;
        };
        for DistributionPoint {
            distribution_point, ..
        } in dps.0
        {
            if let Some(DistributionPointName::FullName(names)) = distribution_point {
                for n in names {
                    if let GeneralName::UniformResourceIdentifier(u) = n {
                        let u = u.to_string();
                        if u.starts_with("http://") {
                            out.push(u);
                        }
                    }
                }
            }
        }
    }
    out
}
