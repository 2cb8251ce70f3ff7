//! Installing the TSA certificate on a node: checked as a relying party would
//! check it, against what was fixed when the CSR was made.
//!
//! 1. **Fixed with the CSR** ([`IssuancePin`]): the SHA-256 of the root
//!    certificate of the CA that will issue, and the requested subject. A node
//!    records them once per key epoch (`/admin/csr` on the coordinating node, the
//!    `SignCsr` peer message on every co-signer, `/admin/ca-root` on the others);
//!    a different pin is refused afterwards ([`fix_pin`]).
//! 2. **Checked at install** ([`check_chain`]): the uploaded chain is exactly the
//!    certification path leaf → intermediates → the pinned root, every signature
//!    and name verifies, every issuer is a CA, every certificate is valid at the
//!    node's clock (RFC 5280 §6, via [`crate::x509::chain::build_chain_der`]);
//!    the leaf is not self-signed, names the pinned subject, carries the group key
//!    and this node's launch measurement and has the RFC 3161 EKU profile
//!    ([`super::check_tsa_certificate`]).
//! 3. **Once per epoch**: with a certificate installed, a different upload is
//!    accepted only as a renewal ([`Installed::Renewal`]): it passes every check
//!    above (so: same key, measurement, CA root and subject) and its notAfter is
//!    later than the installed one's. Re-uploading the installed leaf changes
//!    nothing ([`Installed::Unchanged`]).

use super::{check_tsa_certificate, decode_upload, outside_validity, TsaCertError, UploadError};
use crate::x509::chain::{build_chain_der, ChainError, ChainOptions};
use crate::x509::RawSigned;
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::SystemTime;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// What the CSR fixed for the key epoch: the CA root that will issue and the
/// requested subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuancePin {
    /// SHA-256 of the CA root certificate DER.
    #[serde(with = "crate::serde_hex::array32")]
    pub ca_root: [u8; 32],
    /// The requested subject, RFC 4514 as `x509-cert` prints it.
    pub subject: String,
}

impl IssuancePin {
    /// A pin for a parsed CA root ([`check_ca_root`]) and a subject.
    pub fn new(ca_root: &CaRoot, subject: &str) -> Result<Self, CaRootError> {
        Ok(Self {
            ca_root: ca_root.sha256,
            subject: normalize_subject(subject)?,
        })
    }

    /// A pin from the root's hash (as co-signers of the CSR receive it) and a subject.
    pub fn from_hash(ca_root_sha256_hex: &str, subject: &str) -> Result<Self, CaRootError> {
        let ca_root = hex::decode(ca_root_sha256_hex)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or(CaRootError::BadHash)?;
        Ok(Self {
            ca_root,
            subject: normalize_subject(subject)?,
        })
    }
}

/// The subject as `x509-cert` prints a parsed name (so that the pin and a
/// certificate's subject compare as text).
fn normalize_subject(subject: &str) -> Result<String, CaRootError> {
    Name::from_str(subject)
        .map(|n| n.to_string())
        .map_err(|e| CaRootError::Subject(format!("{subject:?}: {e}")))
}

/// Why a CA root (or a subject) cannot be fixed for the CSR.
#[derive(Debug, thiserror::Error)]
pub enum CaRootError {
    /// Not a DER certificate.
    #[error("the CA root is not a certificate: {0}")]
    NotACertificate(String),
    /// Issuer differs from subject, or the signature does not verify with its own key.
    #[error("the CA root '{subject}' is not self-signed: {reason}")]
    NotSelfSigned {
        /// Its subject.
        subject: String,
        /// Which part failed.
        reason: String,
    },
    /// No basicConstraints cA=TRUE.
    #[error("the CA root '{0}' is not a CA certificate (basicConstraints cA is not TRUE)")]
    NotACa(String),
    /// Outside its validity period now.
    #[error("the CA root '{subject}' is not valid now: {reason}")]
    NotValidNow {
        /// Its subject.
        subject: String,
        /// Expired or not yet valid.
        reason: String,
    },
    /// The root hash received from a peer is not 32 hex bytes.
    #[error("the CA root hash is not 32 hex-encoded bytes")]
    BadHash,
    /// The requested subject does not parse.
    #[error("subject {0}")]
    Subject(String),
}

/// A CA root certificate accepted for a CSR.
#[derive(Clone, Debug)]
pub struct CaRoot {
    /// SHA-256 of its DER.
    pub sha256: [u8; 32],
    /// Its subject (RFC 4514).
    pub subject: String,
}

/// Parse the root certificate of the CA that will issue: a DER certificate,
/// self-signed (issuer = subject, signature verifies with its own key), a CA
/// (basicConstraints cA=TRUE), valid at `now`.
pub fn check_ca_root(der_bytes: &[u8], now: SystemTime) -> Result<CaRoot, CaRootError> {
    let cert = Certificate::from_der(der_bytes)
        .map_err(|e| CaRootError::NotACertificate(e.to_string()))?;
    let subject = cert.tbs_certificate.subject.to_string();
    let not_self_signed = |reason: String| CaRootError::NotSelfSigned {
        subject: subject.clone(),
        reason,
    };
    if cert.tbs_certificate.issuer != cert.tbs_certificate.subject {
        return Err(not_self_signed(format!(
            "issued by '{}'",
            cert.tbs_certificate.issuer
        )));
    }
    let tbs = RawSigned::from_der(der_bytes)
        .and_then(|raw| raw.tbs.to_der())
        .map_err(|e| CaRootError::NotACertificate(e.to_string()))?;
    let sig = cert
        .signature
        .as_bytes()
        .ok_or_else(|| not_self_signed("malformed signature".into()))?;
    crate::x509::sig::verify_signature(
        &cert.signature_algorithm,
        None,
        &cert.tbs_certificate.subject_public_key_info,
        &tbs,
        sig,
    )
    .map_err(|e| not_self_signed(format!("signature: {e}")))?;
    let is_ca = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .any(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|bc| bc.ca));
    if !is_ca {
        return Err(CaRootError::NotACa(subject));
    }
    if let Some(reason) = outside_validity(&cert.tbs_certificate.validity, now) {
        return Err(CaRootError::NotValidNow { subject, reason });
    }
    Ok(CaRoot {
        sha256: Sha256::digest(der_bytes).into(),
        subject,
    })
}

/// A second, different pin for the same epoch.
#[derive(Debug, thiserror::Error)]
#[error(
    "this key epoch's CSR already fixed CA root {} and subject '{}'; \
     refusing CA root {} and subject '{}'",
    hex::encode(fixed.ca_root),
    fixed.subject,
    hex::encode(refused.ca_root),
    refused.subject
)]
pub struct PinConflict {
    /// What is recorded.
    pub fixed: IssuancePin,
    /// What was refused.
    pub refused: IssuancePin,
}

/// Record `pin` in `slot` (the epoch's state): once; the same pin again is
/// accepted and changes nothing (`Ok(false)`), a different one is refused.
pub fn fix_pin(slot: &mut Option<IssuancePin>, pin: IssuancePin) -> Result<bool, PinConflict> {
    match slot {
        None => {
            *slot = Some(pin);
            Ok(true)
        }
        Some(fixed) if *fixed == pin => Ok(false),
        Some(fixed) => Err(PinConflict {
            fixed: fixed.clone(),
            refused: pin,
        }),
    }
}

/// Why a node refuses an uploaded chain. [`InstallError::is_conflict`] tells the
/// refusals that depend on the node's state (HTTP 409) from bad chains (422).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The upload is empty or does not decode.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// No CSR fixed the CA root on this node.
    #[error(
        "no CA root is fixed for this key epoch: the CA root is fixed when the CSR is made \
         (/admin/csr on the coordinating node, /admin/ca-root on the others)"
    )]
    NoPin,
    /// The leaf is self-issued.
    #[error(
        "the TSA certificate '{0}' is self-signed (issuer = subject); \
         it must be issued by the CA fixed with the CSR"
    )]
    SelfSigned(String),
    /// Key, measurement or EKU profile of the leaf.
    #[error(transparent)]
    Leaf(#[from] TsaCertError),
    /// The leaf names another subject than the CSR.
    #[error("the TSA certificate names subject '{got}', the CSR requested '{want}'")]
    OtherSubject {
        /// The leaf's subject.
        got: String,
        /// The pinned subject.
        want: String,
    },
    /// The pinned root is not in the upload.
    #[error(
        "the chain does not end at the CA root fixed with the CSR (SHA-256 {want}); \
         its last certificate is '{last}': a chain to another CA"
    )]
    NotToFixedRoot {
        /// Pinned root hash (hex).
        want: String,
        /// Subject of the upload's last certificate.
        last: String,
    },
    /// Path validation to the pinned root failed (signature, name chaining, CA
    /// constraints, validity at the node's clock).
    #[error("the chain does not verify to the CA root fixed with the CSR: {0}")]
    Chain(#[from] ChainError),
    /// The upload holds certificates off the path, or in another order.
    #[error(
        "the chain must be exactly the path leaf → intermediates → CA root, in order; \
         certificate {index} ('{subject}') is not where the path has it"
    )]
    NotThePath {
        /// Position in the upload.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// A certificate is installed and the upload is not a renewal of it.
    #[error(
        "a TSA certificate is already installed for this key epoch (notAfter {installed}); \
         only a renewal with a later notAfter (same key, measurement, CA root and subject) \
         may replace it, and this one's notAfter is {uploaded}"
    )]
    NotARenewal {
        /// The installed leaf's notAfter.
        installed: String,
        /// The uploaded leaf's notAfter.
        uploaded: String,
    },
}

impl InstallError {
    /// A refusal that depends on the node's state rather than on the chain.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::NoPin | Self::NotARenewal { .. })
    }
}

/// What an accepted upload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The epoch's first certificate.
    First,
    /// A renewal: tokens name the new certificate from now on.
    Renewal,
    /// The installed leaf again: nothing changes.
    Unchanged,
}

/// What an upload is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// What the CSR fixed, if anything.
    pub pin: Option<&'a IssuancePin>,
    /// The epoch's group key (of its suite).
    pub group: &'a crate::threshold::suite::GroupPublicKey,
    /// This node's launch measurement.
    pub measurement: &'a [u8; 48],
    /// The node's clock.
    pub now: SystemTime,
    /// The installed leaf (DER), if any.
    pub installed: Option<&'a [u8]>,
}

/// The install checks (module documentation). `chain` is leaf first.
pub fn check_chain(chain: &[Vec<u8>], expect: &Expect<'_>) -> Result<Installed, InstallError> {
    let (leaf_der, certs) = decode_upload(chain)?;
    let pin = expect.pin.ok_or(InstallError::NoPin)?;
    let leaf = certs.first().ok_or(UploadError::Empty)?;
    let tbs = &leaf.tbs_certificate;
    if tbs.issuer == tbs.subject {
        return Err(InstallError::SelfSigned(tbs.subject.to_string()));
    }
    check_tsa_certificate(leaf_der, expect.group, expect.measurement)?;
    let subject = tbs.subject.to_string();
    if subject != pin.subject {
        return Err(InstallError::OtherSubject {
            got: subject,
            want: pin.subject.clone(),
        });
    }
    let Some(root) = chain
        .iter()
        .find(|d| <[u8; 32]>::from(Sha256::digest(d)) == pin.ca_root)
    else {
        return Err(InstallError::NotToFixedRoot {
            want: hex::encode(pin.ca_root),
            last: certs
                .last()
                .map(|c| c.tbs_certificate.subject.to_string())
                .unwrap_or_default(),
        });
    };
    let pool: Vec<&[u8]> = chain.iter().skip(1).map(Vec::as_slice).collect();
    let path = build_chain_der(
        leaf_der,
        &pool,
        &[root.as_slice()],
        &ChainOptions::at(expect.now),
    )?;
    for (index, cert) in certs.iter().enumerate() {
        if path.get(index) != Some(cert) {
            return Err(InstallError::NotThePath {
                index,
                subject: cert.tbs_certificate.subject.to_string(),
            });
        }
    }
    if path.len() != certs.len() {
        // The path is longer than the upload: the pinned root sits in the middle.
        return Err(InstallError::NotThePath {
            index: certs.len().saturating_sub(1),
            subject: certs
                .last()
                .map(|c| c.tbs_certificate.subject.to_string())
                .unwrap_or_default(),
        });
    }
    let Some(installed) = expect.installed else {
        return Ok(Installed::First);
    };
    if installed == leaf_der.as_slice() {
        return Ok(Installed::Unchanged);
    }
    let before = Certificate::from_der(installed)
        .map_err(|e| UploadError::Malformed {
            index: 0,
            reason: format!("installed certificate: {e}"),
        })?
        .tbs_certificate
        .validity
        .not_after;
    let after = tbs.validity.not_after;
    if after.to_system_time() > before.to_system_time() {
        Ok(Installed::Renewal)
    } else {
        Err(InstallError::NotARenewal {
            installed: before.to_string(),
            uploaded: after.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::DevCa;
    use crate::threshold::keys::GroupKey;
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86400);
    const SUBJECT: &str = "CN=frostamp TSA,O=test";

    struct Fixture {
        ca: DevCa,
        group: GroupKey,
        measurement: [u8; 48],
        now: SystemTime,
        pin: IssuancePin,
    }

    fn fixture() -> Fixture {
        let mut rng = rand::thread_rng();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let ca = DevCa::generate("CN=test root", now - DAY, 3650 * DAY, &mut rng).unwrap();
        let group = crate::threshold::keys::dkg_in_process(3, 2, &mut rng)
            .unwrap()
            .1;
        let root = check_ca_root(&ca.certificate_der().unwrap(), now).unwrap();
        let pin = IssuancePin::new(&root, SUBJECT).unwrap();
        Fixture {
            ca,
            group,
            measurement: [0x11; 48],
            now,
            pin,
        }
    }

    impl Fixture {
        fn leaf_from(
            &self,
            ca: &DevCa,
            group: &GroupKey,
            subject: &str,
            not_before: SystemTime,
            lifetime: Duration,
        ) -> Vec<u8> {
            ca.issue_tsa_certificate(
                &group.public(),
                Some(&self.measurement),
                subject,
                not_before,
                lifetime,
                &mut rand::thread_rng(),
            )
            .unwrap()
        }
        fn leaf(&self, lifetime: Duration) -> Vec<u8> {
            self.leaf_from(&self.ca, &self.group, SUBJECT, self.now - DAY, lifetime)
        }
        fn chain(&self, leaf: Vec<u8>) -> Vec<Vec<u8>> {
            vec![leaf, self.ca.certificate_der().unwrap()]
        }
        fn check(
            &self,
            chain: &[Vec<u8>],
            installed: Option<&[u8]>,
        ) -> Result<Installed, InstallError> {
            check_chain(
                chain,
                &Expect {
                    pin: Some(&self.pin),
                    group: &self.group.public(),
                    measurement: &self.measurement,
                    now: self.now,
                    installed,
                },
            )
        }
    }

    #[test]
    fn good_chain_is_accepted_and_its_twins_are_not() {
        let f = fixture();
        let good = f.chain(f.leaf(30 * DAY));
        assert_eq!(f.check(&good, None).unwrap(), Installed::First);
        // Twin: one flipped byte in the leaf's signature.
        let mut flipped = good.clone();
        let leaf = flipped.first_mut().unwrap();
        let last = leaf.len() - 1;
        leaf[last] ^= 1;
        assert!(matches!(
            f.check(&flipped, None),
            Err(InstallError::Chain(ChainError::BadSignature { .. }))
        ));
        // Twin: no CA root fixed on this node.
        let e = check_chain(
            &good,
            &Expect {
                pin: None,
                group: &f.group.public(),
                measurement: &f.measurement,
                now: f.now,
                installed: None,
            },
        )
        .unwrap_err();
        assert!(matches!(e, InstallError::NoPin) && e.is_conflict(), "{e}");
        assert!(e.to_string().contains("fixed when the CSR is made"), "{e}");
        // Twin: the root left out of the upload.
        let e = f.check(&good[..1], None).unwrap_err();
        assert!(matches!(e, InstallError::NotToFixedRoot { .. }), "{e}");
        // Twin: an extra certificate that is not on the path.
        let other =
            DevCa::generate("CN=stray", f.now - DAY, DAY * 10, &mut rand::thread_rng()).unwrap();
        let mut extra = good.clone();
        extra.insert(1, other.certificate_der().unwrap());
        assert!(matches!(
            f.check(&extra, None),
            Err(InstallError::NotThePath { index: 1, .. })
        ));
        assert!(matches!(
            f.check(&[], None),
            Err(InstallError::Upload(UploadError::Empty))
        ));
    }

    #[test]
    fn self_signed_leaf_is_refused() {
        let f = fixture();
        // A "CA" whose own certificate carries the requested subject: its leaf for
        // that subject is self-issued.
        let selfish =
            DevCa::generate(SUBJECT, f.now - DAY, DAY * 10, &mut rand::thread_rng()).unwrap();
        let leaf = f.leaf_from(&selfish, &f.group, SUBJECT, f.now - DAY, DAY);
        let e = f.check(&f.chain(leaf), None).unwrap_err();
        assert!(matches!(e, InstallError::SelfSigned(_)), "{e}");
        assert!(e.to_string().contains("self-signed"), "{e}");
        // Twin: the same subject issued by the pinned CA is fine.
        assert!(f.check(&f.chain(f.leaf(DAY * 2)), None).is_ok());
    }

    #[test]
    fn chain_to_another_ca_is_refused() {
        let f = fixture();
        let other = DevCa::generate(
            "CN=test root",
            f.now - DAY,
            DAY * 10,
            &mut rand::thread_rng(),
        )
        .unwrap();
        let leaf = f.leaf_from(&other, &f.group, SUBJECT, f.now - DAY, DAY * 2);
        // Its own root: not the one fixed with the CSR.
        let e = f
            .check(&[leaf.clone(), other.certificate_der().unwrap()], None)
            .unwrap_err();
        assert!(matches!(e, InstallError::NotToFixedRoot { .. }), "{e}");
        assert!(e.to_string().contains("another CA"), "{e}");
        // With the pinned root appended (same name, other key): no path.
        let e = f
            .check(&[leaf, f.ca.certificate_der().unwrap()], None)
            .unwrap_err();
        assert!(
            matches!(e, InstallError::Chain(ChainError::BadSignature { .. })),
            "{e}"
        );
    }

    #[test]
    fn expired_and_not_yet_valid_are_refused() {
        let f = fixture();
        let expired = f.leaf_from(&f.ca, &f.group, SUBJECT, f.now - DAY * 3, DAY);
        let e = f.check(&f.chain(expired), None).unwrap_err();
        assert!(
            matches!(e, InstallError::Chain(ChainError::Expired { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("expired"), "{e}");
        let future = f.leaf_from(&f.ca, &f.group, SUBJECT, f.now + DAY, DAY);
        let e = f.check(&f.chain(future), None).unwrap_err();
        assert!(
            matches!(e, InstallError::Chain(ChainError::NotYetValid { .. })),
            "{e}"
        );
        // An expired root, too.
        let old_ca = DevCa::generate(
            "CN=old root",
            f.now - DAY * 10,
            DAY,
            &mut rand::thread_rng(),
        )
        .unwrap();
        assert!(matches!(
            check_ca_root(&old_ca.certificate_der().unwrap(), f.now),
            Err(CaRootError::NotValidNow { .. })
        ));
    }

    #[test]
    fn other_subject_and_wrong_key_are_refused() {
        let f = fixture();
        let other_subject = f.leaf_from(&f.ca, &f.group, "CN=someone else", f.now - DAY, DAY * 2);
        let e = f.check(&f.chain(other_subject), None).unwrap_err();
        assert!(matches!(e, InstallError::OtherSubject { .. }), "{e}");
        let other_group = crate::threshold::keys::dkg_in_process(3, 2, &mut rand::thread_rng())
            .unwrap()
            .1;
        let wrong_key = f.leaf_from(&f.ca, &other_group, SUBJECT, f.now - DAY, DAY * 2);
        let e = f.check(&f.chain(wrong_key), None).unwrap_err();
        assert!(
            matches!(e, InstallError::Leaf(TsaCertError::WrongKey)),
            "{e}"
        );
        let wrong_measurement =
            f.ca.issue_tsa_certificate(
                &f.group.public(),
                Some(&[0x22; 48]),
                SUBJECT,
                f.now - DAY,
                DAY * 2,
                &mut rand::thread_rng(),
            )
            .unwrap();
        assert!(matches!(
            f.check(&f.chain(wrong_measurement), None),
            Err(InstallError::Leaf(TsaCertError::WrongMeasurement(_)))
        ));
    }

    #[test]
    fn renewal_is_accepted_and_any_other_second_upload_is_refused() {
        let f = fixture();
        let first = f.leaf(DAY * 30);
        assert_eq!(
            f.check(&f.chain(first.clone()), None).unwrap(),
            Installed::First
        );
        // Renewal: same everything, later notAfter.
        let renewal = f.leaf(DAY * 60);
        assert_eq!(
            f.check(&f.chain(renewal), Some(&first)).unwrap(),
            Installed::Renewal
        );
        // The installed one again: nothing changes.
        assert_eq!(
            f.check(&f.chain(first.clone()), Some(&first)).unwrap(),
            Installed::Unchanged
        );
        // Twin: a fresh certificate with the same notAfter (or earlier) is refused.
        for lifetime in [DAY * 30, DAY * 10] {
            let again = f.leaf(lifetime);
            let e = f.check(&f.chain(again), Some(&first)).unwrap_err();
            assert!(
                matches!(e, InstallError::NotARenewal { .. }) && e.is_conflict(),
                "{e}"
            );
            assert!(e.to_string().contains("already installed"), "{e}");
        }
        // Twin: a later notAfter from another CA, or for another subject, is no renewal.
        let other =
            DevCa::generate("CN=other", f.now - DAY, DAY * 400, &mut rand::thread_rng()).unwrap();
        let from_other = f.leaf_from(&other, &f.group, SUBJECT, f.now - DAY, DAY * 90);
        assert!(matches!(
            f.check(
                &[from_other, other.certificate_der().unwrap()],
                Some(&first)
            ),
            Err(InstallError::NotToFixedRoot { .. })
        ));
        let renamed = f.leaf_from(&f.ca, &f.group, "CN=renamed", f.now - DAY, DAY * 90);
        assert!(matches!(
            f.check(&f.chain(renamed), Some(&first)),
            Err(InstallError::OtherSubject { .. })
        ));
    }

    #[test]
    fn ca_root_must_be_a_self_signed_ca() {
        let f = fixture();
        let root_der = f.ca.certificate_der().unwrap();
        let root = check_ca_root(&root_der, f.now).unwrap();
        assert_eq!(root.sha256, <[u8; 32]>::from(Sha256::digest(&root_der)));
        assert_eq!(root.subject, "CN=test root");
        // Twins: garbage, a TSA leaf (not self-signed, not a CA), a flipped signature.
        assert!(matches!(
            check_ca_root(b"not a certificate", f.now),
            Err(CaRootError::NotACertificate(_))
        ));
        assert!(matches!(
            check_ca_root(&f.leaf(DAY), f.now),
            Err(CaRootError::NotSelfSigned { .. })
        ));
        let mut flipped = root_der.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            check_ca_root(&flipped, f.now),
            Err(CaRootError::NotSelfSigned { .. })
        ));
        assert!(matches!(
            IssuancePin::from_hash("abcd", SUBJECT),
            Err(CaRootError::BadHash)
        ));
        assert_eq!(
            IssuancePin::from_hash(&hex::encode(root.sha256), SUBJECT).unwrap(),
            f.pin
        );
    }

    #[test]
    fn a_pin_is_fixed_once() {
        let f = fixture();
        let mut slot = None;
        assert!(fix_pin(&mut slot, f.pin.clone()).unwrap());
        assert!(!fix_pin(&mut slot, f.pin.clone()).unwrap());
        let mut other = f.pin.clone();
        other.ca_root[0] ^= 1;
        let e = fix_pin(&mut slot, other).unwrap_err();
        assert!(e.to_string().contains("already fixed"), "{e}");
        let mut renamed = f.pin.clone();
        renamed.subject = "CN=x".into();
        assert!(fix_pin(&mut slot, renamed).is_err());
        assert_eq!(slot, Some(f.pin));
        // Pins travel in peer messages.
        let json = serde_json::to_string(&slot).unwrap();
        assert_eq!(
            serde_json::from_str::<Option<IssuancePin>>(&json).unwrap(),
            slot
        );
    }
}
