//! Certification path building and validation: the subset of RFC 5280 §6 that a
//! relying party of an RFC 3161 Time-Stamp Authority needs.
//!
//! What is checked, for every certificate of the returned path:
//!
//! * name chaining: the issuer's `subject` is byte-equal (DER) to the child's `issuer`
//!   (RFC 5280 §6.1.3 (a)(4); the §7.1 case-insensitive comparison is deliberately not done);
//! * the child's signature verifies over the exact `TBSCertificate` bytes with the issuer's
//!   key (§6.1.3 (a)(1)), via [`crate::x509::sig::verify_signature`];
//! * `tbsCertificate.signature` equals `signatureAlgorithm` (§4.1.1.2);
//! * validity at [`ChainOptions::at`]: `notBefore <= at <= notAfter` (§4.1.2.5, §6.1.3 (a)(2));
//! * every issuing certificate has basicConstraints `cA = TRUE` (§4.2.1.9, §6.1.4 (k)),
//!   `keyCertSign` if keyUsage is present (§4.2.1.3, §6.1.4 (n)) and a satisfied
//!   `pathLenConstraint` (§6.1.4 (l)-(m)). A trust anchor without any extensions (e.g. X.509 v1)
//!   is tolerated, since its trust comes from configuration (§6.1.1 (d));
//! * no critical extension other than basicConstraints, keyUsage, extKeyUsage and
//!   subjectAltName (§4.2: "MUST reject the certificate if it encounters a critical extension
//!   it does not recognize"); nameConstraints and the policy extensions are therefore
//!   rejected when critical; no extension appears twice (§4.2).
//!
//! Not done: revocation (CRL/OCSP), policy processing, name constraints, AKI/SKI matching.
//!
//! Path building (RFC 4158 in spirit) is a depth-first search over every candidate whose
//! subject matches, anchors first, so that injected certificates with a matching name but
//! the wrong key cannot prevent finding the real path. Signature results are cached and the
//! search has a fixed work budget so junk in the pool cannot make it exponential.
//!
//! When no path exists, the error reported is the one from the attempt that got furthest
//! (most certificates verified); at equal depth an issuer rejected *after* its signature
//! verified (expired, not a CA, ...) beats a [`ChainError::BadSignature`] (probably junk),
//! which beats [`ChainError::NoPathToAnchor`]. So a sole expired issuer is reported as
//! [`ChainError::Expired`], not as a missing path.

use std::collections::HashMap;
use std::time::SystemTime;

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::x509::sig::{verify_signature, SignatureError};
use crate::x509::RawSigned;

/// Default for [`ChainOptions::max_depth`]: leaf, up to 6 intermediates, anchor.
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// Upper bound on candidate issuers examined in one [`build_chain`] call.
const SEARCH_BUDGET: usize = 4096;

/// Parameters of a path validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainOptions {
    /// The time at which every certificate must be valid (RFC 5280 §6.1.1 (b)). For a
    /// time-stamp token this is normally the token's `genTime`, never the wall clock read here.
    pub at: SystemTime,
    /// Maximum number of certificates in a path, leaf and anchor included.
    pub max_depth: usize,
}

impl ChainOptions {
    /// Options validating at `at` with [`DEFAULT_MAX_DEPTH`].
    pub fn at(at: SystemTime) -> Self {
        Self {
            at,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why no acceptable certification path was found. Subjects are RFC 4514 strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No chain of matching names and verifying signatures reaches a trust anchor.
    #[error("no certification path from '{leaf_subject}' to a trust anchor")]
    NoPathToAnchor {
        /// Subject of the leaf certificate.
        leaf_subject: String,
    },
    /// `at` is after the certificate's notAfter (RFC 5280 §4.1.2.5).
    #[error("certificate '{subject}' expired at {not_after}")]
    Expired {
        /// Subject of the offending certificate.
        subject: String,
        /// Its notAfter.
        not_after: der::DateTime,
    },
    /// `at` is before the certificate's notBefore (RFC 5280 §4.1.2.5).
    #[error("certificate '{subject}' is not valid before {not_before}")]
    NotYetValid {
        /// Subject of the offending certificate.
        subject: String,
        /// Its notBefore.
        not_before: der::DateTime,
    },
    /// The certificate's signature does not verify with its (name-matching) issuer's key.
    #[error("signature on certificate '{subject}' does not verify with the key of '{issuer}'")]
    BadSignature {
        /// Subject of the certificate whose signature failed.
        subject: String,
        /// Subject of the issuer candidate whose key was tried.
        issuer: String,
        /// What the signature check said.
        #[source]
        source: SignatureError,
    },
    /// An issuing certificate lacks basicConstraints cA=TRUE or keyUsage keyCertSign.
    #[error("certificate '{subject}' is not a CA: {reason}")]
    NotACa {
        /// Subject of the offending certificate.
        subject: String,
        /// Which requirement failed.
        reason: &'static str,
    },
    /// An issuing certificate's pathLenConstraint is exceeded (RFC 5280 §4.2.1.9).
    #[error("certificate '{subject}' allows at most {max} intermediate certificate(s) below it")]
    PathLenExceeded {
        /// Subject of the constraining CA certificate.
        subject: String,
        /// Its pathLenConstraint.
        max: u8,
    },
    /// RFC 3161 §2.3: the TSA certificate has no extendedKeyUsage with id-kp-timeStamping.
    #[error("certificate '{subject}' has no extendedKeyUsage id-kp-timeStamping")]
    MissingTimestampingEku {
        /// Subject of the certificate.
        subject: String,
    },
    /// RFC 3161 §2.3: the extendedKeyUsage extension "MUST be critical".
    #[error("certificate '{subject}' has a non-critical extendedKeyUsage")]
    EkuNotCritical {
        /// Subject of the certificate.
        subject: String,
    },
    /// RFC 3161 §2.3: id-kp-timeStamping must be the only key purpose.
    #[error("certificate '{subject}' has key purposes besides id-kp-timeStamping: {extra:?}")]
    EkuNotExclusive {
        /// Subject of the certificate.
        subject: String,
        /// The other purposes, as dotted OIDs.
        extra: Vec<String>,
    },
    /// RFC 5280 §4.2: a critical extension this validator does not process.
    #[error("certificate '{subject}' has unhandled critical extension {oid}")]
    UnhandledCriticalExtension {
        /// Subject of the certificate.
        subject: String,
        /// Dotted OID of the extension.
        oid: String,
    },
    /// A certificate or extension that cannot be decoded or is internally inconsistent.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// No path within `max_depth` certificates (or within the search budget).
    #[error("no certification path from '{leaf_subject}' within {max_depth} certificates or the search budget")]
    TooDeep {
        /// Subject of the leaf certificate.
        leaf_subject: String,
        /// The depth limit in force.
        max_depth: usize,
    },
}

/// The extensions this module interprets, parsed once per certificate.
#[derive(Debug, Clone, Default)]
struct ExtInfo {
    has_extensions: bool,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
}

/// A certificate prepared for path building.
struct Node {
    cert: Certificate,
    der: Vec<u8>,
    tbs: Vec<u8>,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject: String,
    is_anchor: bool,
    /// Checks that do not depend on the path: decodable extensions, no unhandled critical
    /// extension, consistent signature algorithm.
    static_check: Result<ExtInfo, ChainError>,
}

impl Node {
    fn from_der(der: &[u8], is_anchor: bool) -> Result<Self, ChainError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| ChainError::Malformed(format!("certificate does not decode: {e}")))?;
        Self::new(cert, der.to_vec(), is_anchor)
    }

    fn from_cert(cert: &Certificate, is_anchor: bool) -> Result<Self, ChainError> {
        let der = cert.to_der().map_err(|e| {
            ChainError::Malformed(format!(
                "certificate '{}' does not encode: {e}",
                cert.tbs_certificate.subject
            ))
        })?;
        Self::new(cert.clone(), der, is_anchor)
    }

    fn new(cert: Certificate, der: Vec<u8>, is_anchor: bool) -> Result<Self, ChainError> {
        let subject = cert.tbs_certificate.subject.to_string();
        let malformed = |what: &str, e: der::Error| {
            ChainError::Malformed(format!("certificate '{subject}': {what}: {e}"))
        };
        let raw = RawSigned::from_der(&der).map_err(|e| malformed("raw structure", e))?;
        let tbs = raw
            .tbs
            .to_der()
            .map_err(|e| malformed("tbsCertificate", e))?;
        let subject_der = cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| malformed("subject", e))?;
        let issuer_der = cert
            .tbs_certificate
            .issuer
            .to_der()
            .map_err(|e| malformed("issuer", e))?;
        let static_check = static_check(&cert, &subject);
        Ok(Self {
            cert,
            der,
            tbs,
            subject_der,
            issuer_der,
            subject,
            is_anchor,
            static_check,
        })
    }

    fn self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }
}

/// Path-independent checks (RFC 5280 §4.1.1.2, §4.2).
fn static_check(cert: &Certificate, subject: &str) -> Result<ExtInfo, ChainError> {
    let tbs = &cert.tbs_certificate;
    if tbs.signature != cert.signature_algorithm {
        return Err(ChainError::Malformed(format!(
            "certificate '{subject}': tbsCertificate.signature differs from signatureAlgorithm (RFC 5280 §4.1.1.2)"
        )));
    }
    let mut info = ExtInfo::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for ext in tbs.extensions.iter().flatten() {
        info.has_extensions = true;
        if seen.contains(&ext.extn_id) {
            return Err(ChainError::Malformed(format!(
                "certificate '{subject}': extension {} appears twice (RFC 5280 §4.2)",
                ext.extn_id
            )));
        }
        seen.push(ext.extn_id);
        let value = ext.extn_value.as_bytes();
        let bad = |name: &str, e: der::Error| {
            ChainError::Malformed(format!("certificate '{subject}': {name}: {e}"))
        };
        match ext.extn_id {
            rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                info.basic_constraints = Some(
                    BasicConstraints::from_der(value).map_err(|e| bad("basicConstraints", e))?,
                );
            }
            rfc5280::ID_CE_KEY_USAGE => {
                info.key_usage = Some(KeyUsage::from_der(value).map_err(|e| bad("keyUsage", e))?);
            }
            rfc5280::ID_CE_EXT_KEY_USAGE => {
                ExtendedKeyUsage::from_der(value).map_err(|e| bad("extKeyUsage", e))?;
            }
            // Handled in the sense of RFC 5280 §4.2.1.6: we never match on names other than
            // the subject DN, so a critical SAN (used when the subject is empty) is harmless.
            rfc5280::ID_CE_SUBJECT_ALT_NAME => {}
            other if ext.critical => {
                return Err(ChainError::UnhandledCriticalExtension {
                    subject: subject.to_owned(),
                    oid: other.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(info)
}

/// RFC 5280 §4.1.2.5 / §6.1.3 (a)(2): `notBefore <= at <= notAfter`.
fn check_validity(node: &Node, at: SystemTime) -> Result<(), ChainError> {
    let validity = &node.cert.tbs_certificate.validity;
    if at < validity.not_before.to_system_time() {
        return Err(ChainError::NotYetValid {
            subject: node.subject.clone(),
            not_before: validity.not_before.to_date_time(),
        });
    }
    if at > validity.not_after.to_system_time() {
        return Err(ChainError::Expired {
            subject: node.subject.clone(),
            not_after: validity.not_after.to_date_time(),
        });
    }
    Ok(())
}

/// Builds and validates a certification path from `leaf` to one of `anchors`.
///
/// Returns the path leaf first, anchor last (just `[leaf]` if the leaf is itself an
/// anchor). `pool` holds untrusted candidate intermediates in any order; duplicates,
/// junk and spoofed certificates are tolerated. Certificates are re-encoded with
/// `to_der()` to obtain the signed bytes; this equals the received encoding for any
/// certificate that was DER (the `der` crate refuses BER). Use [`build_chain_der`] to
/// verify over the exact received bytes. See the module documentation for the checks.
pub fn build_chain(
    leaf: &Certificate,
    pool: &[Certificate],
    anchors: &[Certificate],
    opts: &ChainOptions,
) -> Result<Vec<Certificate>, ChainError> {
    search(leaf, pool, anchors, Node::from_cert, opts)
}

/// [`build_chain`] over DER encodings, verifying signatures over the exact received
/// `TBSCertificate` octets. Undecodable pool entries are skipped; an undecodable leaf or
/// anchor is [`ChainError::Malformed`].
pub fn build_chain_der(
    leaf: &[u8],
    pool: &[&[u8]],
    anchors: &[&[u8]],
    opts: &ChainOptions,
) -> Result<Vec<Certificate>, ChainError> {
    search(
        &leaf,
        pool,
        anchors,
        |d: &&[u8], is_anchor| Node::from_der(d, is_anchor),
        opts,
    )
}

/// What [`build_chain`] and [`build_chain_der`] share: `node` reads one certificate
/// (`true`: as an anchor); undecodable pool entries are skipped, an undecodable leaf
/// or anchor is an error.
fn search<T>(
    leaf: &T,
    pool: &[T],
    anchors: &[T],
    node: impl Fn(&T, bool) -> Result<Node, ChainError>,
    opts: &ChainOptions,
) -> Result<Vec<Certificate>, ChainError> {
    let leaf = node(leaf, false)?;
    let pool = pool.iter().filter_map(|c| node(c, false).ok()).collect();
    let anchors = anchors
        .iter()
        .map(|c| node(c, true))
        .collect::<Result<Vec<_>, _>>()?;
    Search::new(leaf, pool, anchors, opts).run()
}

/// A recorded failure: (verified depth, specificity class, error).
type Failure = (usize, u8, ChainError);

/// Failure classes, least to most specific.
const CLASS_NO_PATH: u8 = 0;
const CLASS_BAD_SIGNATURE: u8 = 1;
const CLASS_ISSUER_REJECTED: u8 = 2;

struct Search {
    /// Index 0 is the leaf, then anchors, then pool certificates.
    nodes: Vec<Node>,
    at: SystemTime,
    max_depth: usize,
    budget: usize,
    sig_cache: HashMap<(usize, usize), Result<(), SignatureError>>,
    best: Option<Failure>,
}

impl Search {
    fn new(mut leaf: Node, pool: Vec<Node>, anchors: Vec<Node>, opts: &ChainOptions) -> Self {
        leaf.is_anchor = anchors.iter().any(|a| a.der == leaf.der);
        let mut nodes: Vec<Node> = vec![leaf];
        for node in anchors.into_iter().chain(pool) {
            // Drop byte-identical duplicates; a pool copy of an anchor is the anchor
            // (anchors come first), and a pool copy of the leaf is the leaf.
            if !nodes.iter().any(|n| n.der == node.der) {
                nodes.push(node);
            }
        }
        Self {
            nodes,
            at: opts.at,
            max_depth: opts.max_depth,
            budget: SEARCH_BUDGET,
            sig_cache: HashMap::new(),
            best: None,
        }
    }

    fn node(&self, i: usize) -> Result<&Node, ChainError> {
        self.nodes
            .get(i)
            .ok_or_else(|| ChainError::Malformed("internal: node index out of range".to_owned()))
    }

    fn leaf_subject(&self) -> String {
        self.nodes
            .first()
            .map(|n| n.subject.clone())
            .unwrap_or_default()
    }

    fn too_deep(&self) -> ChainError {
        ChainError::TooDeep {
            leaf_subject: self.leaf_subject(),
            max_depth: self.max_depth,
        }
    }

    fn run(mut self) -> Result<Vec<Certificate>, ChainError> {
        if self.max_depth == 0 {
            return Err(self.too_deep());
        }
        let leaf = self.node(0)?;
        leaf.static_check.clone()?;
        check_validity(leaf, self.at)?;
        if leaf.is_anchor {
            return Ok(vec![leaf.cert.clone()]);
        }
        let mut path = vec![0usize];
        if self.extend(&mut path)? {
            return path
                .iter()
                .map(|&i| self.node(i).map(|n| n.cert.clone()))
                .collect();
        }
        Err(match self.best.take() {
            Some((_, _, err)) => err,
            None => ChainError::NoPathToAnchor {
                leaf_subject: self.leaf_subject(),
            },
        })
    }

    fn record(&mut self, depth: usize, class: u8, err: ChainError) {
        let better = match &self.best {
            None => true,
            Some((d, c, _)) => (depth, class) > (*d, *c),
        };
        if better {
            self.best = Some((depth, class, err));
        }
    }

    /// Tries to extend `path` (whose last element is validated and not an anchor) to an
    /// anchor. On success `path` holds the full path.
    fn extend(&mut self, path: &mut Vec<usize>) -> Result<bool, ChainError> {
        let cur = *path.last().ok_or_else(|| self.too_deep())?;
        let depth = path.len();
        let candidates: Vec<usize> = (1..self.nodes.len())
            .filter(|i| !path.contains(i))
            .filter(|&i| match (self.nodes.get(i), self.nodes.get(cur)) {
                (Some(c), Some(n)) => c.subject_der == n.issuer_der,
                _ => false,
            })
            .collect();
        if candidates.is_empty() {
            self.record(
                depth,
                CLASS_NO_PATH,
                ChainError::NoPathToAnchor {
                    leaf_subject: self.leaf_subject(),
                },
            );
            return Ok(false);
        }
        if depth >= self.max_depth {
            self.record(depth + 1, CLASS_NO_PATH, self.too_deep());
            return Ok(false);
        }
        for cand in candidates {
            if self.budget == 0 {
                self.record(usize::MAX, CLASS_NO_PATH, self.too_deep());
                return Ok(false);
            }
            self.budget -= 1;
            if let Err(source) = self.verify_edge(cur, cand)? {
                let err = ChainError::BadSignature {
                    subject: self.node(cur)?.subject.clone(),
                    issuer: self.node(cand)?.subject.clone(),
                    source,
                };
                self.record(depth, CLASS_BAD_SIGNATURE, err);
                continue;
            }
            if let Err(err) = self.check_issuer(cand, path) {
                self.record(depth + 1, CLASS_ISSUER_REJECTED, err);
                continue;
            }
            path.push(cand);
            if self.node(cand)?.is_anchor || self.extend(path)? {
                return Ok(true);
            }
            path.pop();
        }
        Ok(false)
    }

    /// Verifies `child`'s signature with `issuer`'s key (RFC 5280 §6.1.3 (a)(1)), cached.
    fn verify_edge(
        &mut self,
        child: usize,
        issuer: usize,
    ) -> Result<Result<(), SignatureError>, ChainError> {
        if let Some(r) = self.sig_cache.get(&(child, issuer)) {
            return Ok(r.clone());
        }
        let c = self.node(child)?;
        let i = self.node(issuer)?;
        let result = match c.cert.signature.as_bytes() {
            None => Err(SignatureError::MalformedSignature),
            Some(sig) => verify_signature(
                &c.cert.signature_algorithm,
                None,
                &i.cert.tbs_certificate.subject_public_key_info,
                &c.tbs,
                sig,
            ),
        };
        self.sig_cache.insert((child, issuer), result.clone());
        Ok(result)
    }

    /// Checks that `cand` may issue certificates at its position above `path`
    /// (RFC 5280 §6.1.4 (k), (l), (m), (n)) and is itself acceptable.
    fn check_issuer(&self, cand: usize, path: &[usize]) -> Result<(), ChainError> {
        let node = self.node(cand)?;
        let info = node.static_check.clone()?;
        check_validity(node, self.at)?;
        match &info.basic_constraints {
            Some(bc) if bc.ca => {}
            Some(_) => {
                return Err(ChainError::NotACa {
                    subject: node.subject.clone(),
                    reason: "basicConstraints cA is FALSE",
                })
            }
            None if node.is_anchor && !info.has_extensions => {}
            None => {
                return Err(ChainError::NotACa {
                    subject: node.subject.clone(),
                    reason: "no basicConstraints extension",
                })
            }
        }
        if let Some(ku) = &info.key_usage {
            if !ku.0.contains(KeyUsages::KeyCertSign) {
                return Err(ChainError::NotACa {
                    subject: node.subject.clone(),
                    reason: "keyUsage lacks keyCertSign",
                });
            }
        }
        if let Some(max) = info.basic_constraints.and_then(|bc| bc.path_len_constraint) {
            // Non-self-issued intermediates already below `cand` (the leaf does not count).
            let mut below = 0usize;
            for &i in path.iter().skip(1) {
                if !self.node(i)?.self_issued() {
                    below += 1;
                }
            }
            if below > usize::from(max) {
                return Err(ChainError::PathLenExceeded {
                    subject: node.subject.clone(),
                    max,
                });
            }
        }
        Ok(())
    }
}

/// `id-kp-timeStamping` (RFC 3161 §2.3, RFC 5280 §4.2.1.12).
pub const ID_KP_TIME_STAMPING: ObjectIdentifier = rfc5280::ID_KP_TIME_STAMPING;

/// RFC 3161 §2.3: "The corresponding certificate MUST contain only one instance of the
/// extended key usage field extension ... with KeyPurposeID having value id-kp-timeStamping.
/// This extension MUST be critical."
///
/// Errors, in order of checking: [`ChainError::MissingTimestampingEku`] (no EKU or no
/// id-kp-timeStamping in it), [`ChainError::EkuNotCritical`], [`ChainError::EkuNotExclusive`];
/// a duplicated or undecodable EKU is [`ChainError::Malformed`].
pub fn check_timestamping_leaf(cert: &Certificate) -> Result<(), ChainError> {
    let subject = cert.tbs_certificate.subject.to_string();
    let mut ekus = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE);
    let ext = ekus
        .next()
        .ok_or_else(|| ChainError::MissingTimestampingEku {
            subject: subject.clone(),
        })?;
    if ekus.next().is_some() {
        return Err(ChainError::Malformed(format!(
            "certificate '{subject}': more than one extendedKeyUsage extension"
        )));
    }
    let eku = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .map_err(|e| ChainError::Malformed(format!("certificate '{subject}': extKeyUsage: {e}")))?;
    if !eku.0.contains(&ID_KP_TIME_STAMPING) {
        return Err(ChainError::MissingTimestampingEku { subject });
    }
    if !ext.critical {
        return Err(ChainError::EkuNotCritical { subject });
    }
    let extra: Vec<String> = eku
        .0
        .iter()
        .filter(|o| **o != ID_KP_TIME_STAMPING)
        .map(ToString::to_string)
        .collect();
    if !extra.is_empty() {
        return Err(ChainError::EkuNotExclusive { subject, extra });
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cloned_ref_to_slice_refs
)]
mod tests {
    use super::*;
    use der::asn1::{AnyRef, BitString, BitStringRef, OctetString, UtcTime};
    use der::DateTime;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer;
    use spki::AlgorithmIdentifierRef;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use std::str::FromStr;
    use x509_cert::certificate::{TbsCertificate, Version};
    use x509_cert::ext::Extension;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn time(year: u16) -> Time {
        Time::UtcTime(UtcTime::from_date_time(DateTime::new(year, 1, 1, 0, 0, 0).unwrap()).unwrap())
    }

    fn at(year: u16) -> ChainOptions {
        ChainOptions::at(DateTime::new(year, 6, 1, 0, 0, 0).unwrap().to_system_time())
    }

    fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Extension {
        Extension {
            extn_id: oid,
            critical,
            extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
        }
    }

    fn bc(ca: bool, path_len: Option<u8>) -> Extension {
        let v = BasicConstraints {
            ca,
            path_len_constraint: path_len,
        };
        ext(rfc5280::ID_CE_BASIC_CONSTRAINTS, true, &v)
    }

    fn ku(usage: KeyUsage) -> Extension {
        ext(rfc5280::ID_CE_KEY_USAGE, true, &usage)
    }

    fn eku(critical: bool, purposes: &[ObjectIdentifier]) -> Extension {
        let v = ExtendedKeyUsage(purposes.to_vec());
        ext(rfc5280::ID_CE_EXT_KEY_USAGE, critical, &v)
    }

    fn ca_exts() -> Vec<Extension> {
        vec![
            bc(true, None),
            ku(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
        ]
    }

    fn tsa_exts() -> Vec<Extension> {
        vec![
            eku(true, &[ID_KP_TIME_STAMPING]),
            ku(KeyUsage(KeyUsages::DigitalSignature.into())),
        ]
    }

    /// The usual end-entity: a TSA certificate `CN=Leaf` issued by `CN=Int`.
    fn tsa_leaf() -> Certificate {
        Spec::new("CN=Leaf", "CN=Int", 3, 2)
            .exts(tsa_exts())
            .build()
    }

    struct Spec<'a> {
        subject: &'a str,
        issuer: &'a str,
        key: u8,
        issuer_key: u8,
        years: (u16, u16),
        exts: Option<Vec<Extension>>,
        serial: u8,
    }

    impl<'a> Spec<'a> {
        fn new(subject: &'a str, issuer: &'a str, key: u8, issuer_key: u8) -> Self {
            Self {
                subject,
                issuer,
                key,
                issuer_key,
                years: (2020, 2030),
                exts: Some(ca_exts()),
                serial: 1,
            }
        }
        fn exts(mut self, exts: Vec<Extension>) -> Self {
            self.exts = Some(exts);
            self
        }
        fn v1(mut self) -> Self {
            self.exts = None;
            self
        }
        fn years(mut self, from: u16, to: u16) -> Self {
            self.years = (from, to);
            self
        }
        fn serial(mut self, serial: u8) -> Self {
            self.serial = serial;
            self
        }
        fn build(self) -> Certificate {
            let sig_alg = AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            };
            let spki_der = key(self.key).verifying_key().to_public_key_der().unwrap();
            let tbs = TbsCertificate {
                version: if self.exts.is_some() {
                    Version::V3
                } else {
                    Version::V1
                },
                serial_number: SerialNumber::new(&[self.serial]).unwrap(),
                signature: sig_alg.clone(),
                issuer: Name::from_str(self.issuer).unwrap(),
                validity: Validity {
                    not_before: time(self.years.0),
                    not_after: time(self.years.1),
                },
                subject: Name::from_str(self.subject).unwrap(),
                subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())
                    .unwrap(),
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions: self.exts,
            };
            let sig: DerSignature = key(self.issuer_key).sign(&tbs.to_der().unwrap());
            Certificate {
                tbs_certificate: tbs,
                signature_algorithm: sig_alg,
                signature: BitString::from_bytes(sig.as_bytes()).unwrap(),
            }
        }
    }

    /// root(1) -> intermediate(2) -> leaf(3)
    fn three() -> (Certificate, Certificate, Certificate) {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let int = Spec::new("CN=Int", "CN=Root", 2, 1).build();
        let leaf = tsa_leaf();
        (root, int, leaf)
    }

    fn subjects(chain: &[Certificate]) -> Vec<String> {
        chain
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect()
    }

    #[test]
    fn builds_through_unordered_duplicated_pool() {
        let (root, int, leaf) = three();
        let pool = vec![root.clone(), leaf.clone(), int.clone(), int.clone()];
        let chain = build_chain(&leaf, &pool, &[root], &at(2025)).unwrap();
        assert_eq!(subjects(&chain), ["CN=Leaf", "CN=Int", "CN=Root"]);
    }

    #[test]
    fn leaf_that_is_an_anchor_is_its_own_chain() {
        let (root, _, leaf) = three();
        let chain = build_chain(&leaf, &[], &[root, leaf.clone()], &at(2025)).unwrap();
        assert_eq!(chain, vec![leaf]);
    }

    #[test]
    fn anchor_can_issue_the_leaf_directly() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let leaf = Spec::new("CN=Leaf", "CN=Root", 3, 1)
            .exts(tsa_exts())
            .build();
        let chain = build_chain(&leaf, &[], &[root], &at(2025)).unwrap();
        assert_eq!(subjects(&chain), ["CN=Leaf", "CN=Root"]);
    }

    #[test]
    fn spoofed_issuer_with_right_name_wrong_key_is_skipped() {
        let (root, int, leaf) = three();
        let spoof = Spec::new("CN=Int", "CN=Root", 9, 9).build(); // self-made, key 9
        let chain = build_chain(&leaf, &[spoof.clone(), int], &[root.clone()], &at(2025)).unwrap();
        assert_eq!(subjects(&chain), ["CN=Leaf", "CN=Int", "CN=Root"]);
        // Only the spoof available: the leaf's signature does not verify with its key.
        let err = build_chain(&leaf, &[spoof], &[root], &at(2025)).unwrap_err();
        assert!(
            matches!(&err, ChainError::BadSignature { subject, issuer, source: SignatureError::Invalid }
                if subject == "CN=Leaf" && issuer == "CN=Int"),
            "{err}"
        );
    }

    #[test]
    fn expired_only_candidate_reports_expired_not_no_path() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let old_int = Spec::new("CN=Int", "CN=Root", 2, 1)
            .years(2010, 2020)
            .build();
        let leaf = tsa_leaf();
        let spoof = Spec::new("CN=Int", "CN=Root", 9, 9).build();
        let err = build_chain(&leaf, &[spoof, old_int], &[root], &at(2025)).unwrap_err();
        match err {
            ChainError::Expired { subject, not_after } => {
                assert_eq!(subject, "CN=Int");
                assert_eq!(not_after.year(), 2020);
            }
            other => panic!("expected Expired, got {other}"),
        }
    }

    #[test]
    fn leaf_and_anchor_validity_are_checked() {
        let (root, int, leaf) = three();
        let err = build_chain(&leaf, &[int.clone()], &[root.clone()], &at(2031)).unwrap_err();
        assert!(
            matches!(err, ChainError::Expired { ref subject, .. } if subject == "CN=Leaf"),
            "{err}"
        );
        let err = build_chain(&leaf, &[int.clone()], &[root], &at(2019)).unwrap_err();
        assert!(
            matches!(err, ChainError::NotYetValid { ref subject, .. } if subject == "CN=Leaf"),
            "{err}"
        );
        let short_root = Spec::new("CN=Root", "CN=Root", 1, 1)
            .years(2020, 2024)
            .build();
        let err = build_chain(&leaf, &[int], &[short_root], &at(2025)).unwrap_err();
        assert!(
            matches!(err, ChainError::Expired { ref subject, .. } if subject == "CN=Root"),
            "{err}"
        );
    }

    #[test]
    fn issuers_must_be_cas() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let leaf = tsa_leaf();
        let cases: Vec<(Vec<Extension>, &str)> = vec![
            (vec![], "no basicConstraints"),
            (vec![bc(false, None)], "cA is FALSE"),
            (
                vec![
                    bc(true, None),
                    ku(KeyUsage(KeyUsages::DigitalSignature.into())),
                ],
                "keyCertSign",
            ),
        ];
        for (exts, why) in cases {
            let int = Spec::new("CN=Int", "CN=Root", 2, 1).exts(exts).build();
            let err = build_chain(&leaf, &[int], &[root.clone()], &at(2025)).unwrap_err();
            assert!(
                matches!(&err, ChainError::NotACa { subject, reason } if subject == "CN=Int" && reason.contains(why)),
                "{why}: {err}"
            );
        }
        // An intermediate without any extensions (v1) is not a CA either.
        let v1_int = Spec::new("CN=Int", "CN=Root", 2, 1).v1().build();
        let err = build_chain(&leaf, &[v1_int], &[root], &at(2025)).unwrap_err();
        assert!(matches!(err, ChainError::NotACa { .. }), "{err}");
    }

    #[test]
    fn v1_anchor_without_extensions_is_tolerated() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).v1().build();
        let int = Spec::new("CN=Int", "CN=Root", 2, 1).build();
        let leaf = tsa_leaf();
        let chain = build_chain(&leaf, &[int], &[root], &at(2025)).unwrap();
        assert_eq!(chain.len(), 3);
        // But a v3 anchor with extensions and no basicConstraints is not.
        let bad_root = Spec::new("CN=Root", "CN=Root", 1, 1)
            .exts(vec![ku(KeyUsage(KeyUsages::KeyCertSign.into()))])
            .build();
        let int = Spec::new("CN=Int", "CN=Root", 2, 1).build();
        let err = build_chain(&leaf, &[int], &[bad_root], &at(2025)).unwrap_err();
        assert!(
            matches!(err, ChainError::NotACa { ref subject, .. } if subject == "CN=Root"),
            "{err}"
        );
    }

    #[test]
    fn critical_extension_rules() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let leaf = tsa_leaf();
        let private = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
        let name_constraints = rfc5280::ID_CE_NAME_CONSTRAINTS;
        for oid in [
            private,
            name_constraints,
            rfc5280::ID_CE_CERTIFICATE_POLICIES,
        ] {
            let mut exts = ca_exts();
            exts.push(ext(oid, true, &der::asn1::Null));
            let int = Spec::new("CN=Int", "CN=Root", 2, 1).exts(exts).build();
            let err = build_chain(&leaf, &[int], &[root.clone()], &at(2025)).unwrap_err();
            assert_eq!(
                err,
                ChainError::UnhandledCriticalExtension {
                    subject: "CN=Int".into(),
                    oid: oid.to_string()
                }
            );
        }
        // Non-critical unknown extensions are fine.
        let mut exts = ca_exts();
        exts.push(ext(private, false, &der::asn1::Null));
        let int = Spec::new("CN=Int", "CN=Root", 2, 1).exts(exts).build();
        assert!(build_chain(&leaf, &[int.clone()], &[root.clone()], &at(2025)).is_ok());
        // A critical unknown extension on the leaf is rejected too.
        let mut exts = tsa_exts();
        exts.push(ext(private, true, &der::asn1::Null));
        let bad_leaf = Spec::new("CN=Leaf", "CN=Int", 3, 2).exts(exts).build();
        assert!(matches!(
            build_chain(&bad_leaf, &[int], &[root], &at(2025)),
            Err(ChainError::UnhandledCriticalExtension { .. })
        ));
    }

    #[test]
    fn duplicate_extension_and_algorithm_mismatch_are_malformed() {
        let (root, int, _) = three();
        let mut exts = tsa_exts();
        exts.push(eku(true, &[ID_KP_TIME_STAMPING]));
        let dup = Spec::new("CN=Leaf", "CN=Int", 3, 2).exts(exts).build();
        assert!(matches!(
            build_chain(&dup, &[int.clone()], &[root.clone()], &at(2025)),
            Err(ChainError::Malformed(_))
        ));
        assert!(matches!(
            check_timestamping_leaf(&dup),
            Err(ChainError::Malformed(_))
        ));
        let mut leaf = tsa_leaf();
        leaf.signature_algorithm.oid = const_oid::db::rfc5912::ECDSA_WITH_SHA_384;
        assert!(matches!(
            build_chain(&leaf, &[int], &[root], &at(2025)),
            Err(ChainError::Malformed(_))
        ));
    }

    #[test]
    fn path_len_constraint_is_enforced() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1)
            .exts(vec![
                bc(true, Some(0)),
                ku(KeyUsage(KeyUsages::KeyCertSign.into())),
            ])
            .build();
        let (_, int, leaf) = three();
        let err = build_chain(&leaf, &[int], &[root.clone()], &at(2025)).unwrap_err();
        assert_eq!(
            err,
            ChainError::PathLenExceeded {
                subject: "CN=Root".into(),
                max: 0
            }
        );
        // pathLen 0 still allows issuing the leaf directly.
        let direct = Spec::new("CN=Leaf", "CN=Root", 3, 1)
            .exts(tsa_exts())
            .build();
        assert!(build_chain(&direct, &[], &[root], &at(2025)).is_ok());
    }

    #[test]
    fn cross_signed_loop_terminates_with_no_path() {
        // A and B issue each other; the leaf is issued by A; the anchor is unrelated.
        let a = Spec::new("CN=A", "CN=B", 4, 5).build();
        let b = Spec::new("CN=B", "CN=A", 5, 4).build();
        let leaf = Spec::new("CN=Leaf", "CN=A", 3, 4).exts(tsa_exts()).build();
        let other_root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let err = build_chain(&leaf, &[a, b], &[other_root], &at(2025)).unwrap_err();
        assert_eq!(
            err,
            ChainError::NoPathToAnchor {
                leaf_subject: "CN=Leaf".into()
            }
        );
    }

    #[test]
    fn max_depth_limits_path_length() {
        let root = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let i1 = Spec::new("CN=I1", "CN=Root", 2, 1).build();
        let i2 = Spec::new("CN=I2", "CN=I1", 4, 2).build();
        let leaf = Spec::new("CN=Leaf", "CN=I2", 3, 4).exts(tsa_exts()).build();
        let pool = [i1, i2];
        let mut opts = at(2025);
        opts.max_depth = 4;
        assert_eq!(
            build_chain(&leaf, &pool, &[root.clone()], &opts)
                .unwrap()
                .len(),
            4
        );
        opts.max_depth = 3;
        assert!(matches!(
            build_chain(&leaf, &pool, &[root.clone()], &opts),
            Err(ChainError::TooDeep { max_depth: 3, .. })
        ));
        opts.max_depth = 0;
        assert!(matches!(
            build_chain(&leaf, &pool, &[root], &opts),
            Err(ChainError::TooDeep { .. })
        ));
    }

    #[test]
    fn exponential_pool_is_cut_by_the_search_budget() {
        // 5 levels x 6 certificates; every certificate of level l verifies under every
        // certificate of level l+1 (same name, same key): 6^5 paths, none anchored.
        let mut pool = Vec::new();
        for level in 0..5u8 {
            for copy in 0..6u8 {
                let subject = format!("CN=L{level}");
                let issuer = format!("CN=L{}", level + 1);
                pool.push(
                    Spec::new(&subject, &issuer, 10 + level, 11 + level)
                        .serial(copy + 1)
                        .build(),
                );
            }
        }
        let leaf = Spec::new("CN=Leaf", "CN=L0", 3, 10)
            .exts(tsa_exts())
            .build();
        let anchor = Spec::new("CN=Root", "CN=Root", 1, 1).build();
        let mut opts = at(2025);
        opts.max_depth = 16;
        let err = build_chain(&leaf, &pool, &[anchor], &opts).unwrap_err();
        assert!(matches!(err, ChainError::TooDeep { .. }), "{err}");
    }

    #[test]
    fn der_entry_point_matches_and_skips_junk() {
        let (root, int, leaf) = three();
        let int_der = int.to_der().unwrap();
        let junk: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];
        let chain = build_chain_der(
            &leaf.to_der().unwrap(),
            &[junk, &int_der],
            &[&root.to_der().unwrap()],
            &at(2025),
        )
        .unwrap();
        assert_eq!(chain, vec![leaf, int, root]);
        assert!(matches!(
            build_chain_der(junk, &[], &[], &at(2025)),
            Err(ChainError::Malformed(_))
        ));
    }

    #[test]
    fn der_entry_point_verifies_the_exact_received_tbs_bytes() {
        // A leaf whose subject has a multi-valued RDN with its SET OF members in non-DER
        // order. `der` sorts SET OF on decode, so re-encoding changes the signed bytes.
        let (root, int, _) = three();
        let leaf = Spec::new("CN=Leaf+O=Org", "CN=Int", 3, 2)
            .exts(tsa_exts())
            .build();
        let mut tbs = leaf.tbs_certificate.to_der().unwrap();
        let rdn = &leaf.tbs_certificate.subject.0[0].0;
        let a = rdn.get(0).unwrap().to_der().unwrap();
        let b = rdn.get(1).unwrap().to_der().unwrap();
        let sorted = [a.clone(), b.clone()].concat();
        let pos = tbs.windows(sorted.len()).position(|w| w == sorted).unwrap();
        tbs.splice(pos..pos + sorted.len(), [b, a].concat());
        let sig: DerSignature = key(2).sign(&tbs);
        let raw = RawSigned {
            tbs: AnyRef::from_der(&tbs).unwrap(),
            algorithm: AlgorithmIdentifierRef {
                oid: leaf.signature_algorithm.oid,
                parameters: None,
            },
            signature: BitStringRef::from_bytes(sig.as_bytes()).unwrap(),
        };
        let leaf_der = raw.to_der().unwrap();
        let (int_der, root_der) = (int.to_der().unwrap(), root.to_der().unwrap());
        let chain = build_chain_der(&leaf_der, &[&int_der], &[&root_der], &at(2025)).unwrap();
        assert_eq!(chain.len(), 3);
        // The decoded-certificate entry point can only re-encode, and fails.
        let decoded = Certificate::from_der(&leaf_der).unwrap();
        assert_ne!(decoded.to_der().unwrap(), leaf_der);
        assert!(matches!(
            build_chain(&decoded, &[int], &[root], &at(2025)),
            Err(ChainError::BadSignature { .. })
        ));
    }

    #[test]
    fn timestamping_eku_rules() {
        let mk = |exts: Vec<Extension>| Spec::new("CN=TSA", "CN=Int", 3, 2).exts(exts).build();
        assert_eq!(check_timestamping_leaf(&mk(tsa_exts())), Ok(()));
        let subject = || "CN=TSA".to_string();
        assert_eq!(
            check_timestamping_leaf(&mk(vec![ku(KeyUsage(KeyUsages::DigitalSignature.into()))])),
            Err(ChainError::MissingTimestampingEku { subject: subject() })
        );
        let code_signing = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
        assert_eq!(
            check_timestamping_leaf(&mk(vec![eku(true, &[code_signing])])),
            Err(ChainError::MissingTimestampingEku { subject: subject() })
        );
        assert_eq!(
            check_timestamping_leaf(&mk(vec![eku(false, &[ID_KP_TIME_STAMPING])])),
            Err(ChainError::EkuNotCritical { subject: subject() })
        );
        assert_eq!(
            check_timestamping_leaf(&mk(vec![eku(true, &[ID_KP_TIME_STAMPING, code_signing])])),
            Err(ChainError::EkuNotExclusive {
                subject: subject(),
                extra: vec!["1.3.6.1.5.5.7.3.3".into()]
            })
        );
        let v1 = Spec::new("CN=TSA", "CN=Int", 3, 2).v1().build();
        assert!(matches!(
            check_timestamping_leaf(&v1),
            Err(ChainError::MissingTimestampingEku { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_certificate() {
        let e = ChainError::Expired {
            subject: "CN=X".into(),
            not_after: DateTime::new(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "certificate 'CN=X' expired at 2024-01-01T00:00:00Z"
        );
    }
}
