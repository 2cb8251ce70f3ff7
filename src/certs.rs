//! Certificates: the TSA certificate profile and a small development CA.
//!
//! TSA certificate profile (RFC 3161 §2.3, RFC 5280):
//! - subject key: id-ecPublicKey on secp256k1, the FROST group key (uncompressed point);
//! - extendedKeyUsage = id-kp-timeStamping only, **critical**;
//! - keyUsage = digitalSignature (critical); basicConstraints cA=FALSE;
//! - subjectKeyIdentifier / authorityKeyIdentifier (RFC 5280 §4.2.1.1–2, SHA-1 method 1).
//!
//! The development CA signs with ECDSA P-256 / SHA-256 so that standard X.509
//! stacks (OpenSSL, browsers, Java) can check the chain.
//!
//! [`install`]: what a node checks before it installs an uploaded chain (the CA
//! root and subject fixed with the CSR, path validation, one install per epoch).
//! [`tls`]: the node's public TLS certificate (CA-issued for its identity key).

pub mod crl;
pub mod install;
pub mod tls;

use crate::oid::std_oids;
use crate::threshold::suite::{Ciphersuite, Ed25519Sha512, GroupPublicKey, Secp256K1Sha256, Suite};
use crate::tsp::token::CmsScheme;
use crate::x509::{parse_certificates, RawSigned};
use const_oid::AssociatedOid;
use der::asn1::{AnyRef, BitString, BitStringRef, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode};
use p256::ecdsa::{DerSignature, SigningKey};
use sha1::{Digest as _, Sha1};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate, Version};

/// Errors building certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// DER encoding.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// Key handling.
    #[error("key: {0}")]
    Key(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Certificate text or bytes that do not parse.
    #[error(transparent)]
    Pem(#[from] crate::x509::PemError),
}

/// A development certificate authority with an in-memory ECDSA P-256 key.
pub struct DevCa {
    key: SigningKey,
    cert: Certificate,
    /// Named in the cRLDistributionPoints of what it issues ([`crl`]).
    crl_url: Option<String>,
}

impl core::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DevCa")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .field("key", &"<redacted>")
            .finish()
    }
}

fn ext(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// keyUsage digitalSignature, critical: the one use of every end-entity key here.
fn digital_signature_only() -> Result<Extension, CertError> {
    ext(
        KeyUsage::OID,
        true,
        &KeyUsage(KeyUsages::DigitalSignature.into()),
    )
}

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString, CertError> {
    Ok(OctetString::new(
        Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec(),
    )?)
}

/// Why an uploaded certificate chain (the TSA's, [`install`], or the public TLS
/// one, [`tls`]) does not decode.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Nothing uploaded.
    #[error("empty chain")]
    Empty,
    /// A certificate does not decode.
    #[error("certificate {index} of the chain is malformed: {reason}")]
    Malformed {
        /// 0 = leaf.
        index: usize,
        /// Decoder message.
        reason: String,
    },
}

/// Decode an uploaded chain (leaf first): the leaf's DER and every certificate, in order.
fn decode_upload(chain: &[Vec<u8>]) -> Result<(&Vec<u8>, Vec<Certificate>), UploadError> {
    let leaf_der = chain.first().ok_or(UploadError::Empty)?;
    let certs = chain
        .iter()
        .enumerate()
        .map(|(index, d)| {
            Certificate::from_der(d).map_err(|e| UploadError::Malformed {
                index,
                reason: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((leaf_der, certs))
}

/// Why `validity` does not cover `now` (`not valid before …`, `expired at …`), if it
/// does not.
fn outside_validity(validity: &Validity, now: SystemTime) -> Option<String> {
    if now < validity.not_before.to_system_time() {
        return Some(format!("not valid before {}", validity.not_before));
    }
    if now > validity.not_after.to_system_time() {
        return Some(format!("expired at {}", validity.not_after));
    }
    None
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
fn cert_time(t: SystemTime) -> Result<x509_cert::time::Time, CertError> {
    let bad = |e: der::Error| CertError::Invalid(format!("certificate time: {e}"));
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| CertError::Invalid("certificate time before 1970".into()))?;
    let whole = Duration::from_secs(d.as_secs());
    match der::asn1::UtcTime::from_unix_duration(whole) {
        Ok(u) => Ok(x509_cert::time::Time::UtcTime(u)),
        Err(_) => Ok(x509_cert::time::Time::GeneralTime(
            der::asn1::GeneralizedTime::from_unix_duration(whole).map_err(bad)?,
        )),
    }
}

pub(crate) fn validity(not_before: SystemTime, lifetime: Duration) -> Result<Validity, CertError> {
    let nb = cert_time(not_before)?;
    let na = cert_time(not_before + lifetime)?;
    Ok(Validity {
        not_before: nb,
        not_after: na,
    })
}

fn ecdsa_p256_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: std_oids::ECDSA_WITH_SHA256,
        parameters: None,
    }
}

impl DevCa {
    /// A new self-signed root named `subject` (e.g. `CN=frostamp dev root`).
    pub fn generate(
        subject: &str,
        not_before: SystemTime,
        lifetime: Duration,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Self, CertError> {
        let key = SigningKey::random(rng);
        let name = Name::from_str(subject)
            .map_err(|e| CertError::Invalid(format!("subject {subject:?}: {e}")))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .map_err(|e| CertError::Key(e.to_string()))?;
        let ski = key_id(&spki)?;
        let extensions = vec![
            ext(
                BasicConstraints::OID,
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: Some(0),
                },
            )?,
            ext(
                KeyUsage::OID,
                true,
                &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            )?,
            ext(SubjectKeyIdentifier::OID, false, &SubjectKeyIdentifier(ski))?,
        ];
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: crate::x509::random_serial(rng)?,
            signature: ecdsa_p256_sha256(),
            issuer: name.clone(),
            validity: validity(not_before, lifetime)?,
            subject: name,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let cert = sign_tbs(&key, tbs)?;
        Ok(Self {
            key,
            cert,
            crl_url: None,
        })
    }

    /// The CA private key as PKCS#8 PEM (a secret: written with mode 0600 by the CLI).
    pub fn key_pem(&self) -> Result<zeroize::Zeroizing<String>, CertError> {
        use p256::pkcs8::EncodePrivateKey;
        self.key
            .to_pkcs8_pem(der::pem::LineEnding::LF)
            .map_err(|e| CertError::Key(e.to_string()))
    }

    /// Load a CA from its certificate PEM and PKCS#8 key PEM; the key must match.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        use p256::pkcs8::DecodePrivateKey;
        let key = SigningKey::from_pkcs8_pem(key_pem).map_err(|e| CertError::Key(e.to_string()))?;
        let cert = parse_certificates(cert_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| CertError::Invalid("no CA certificate".into()))?
            .cert;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .map_err(|e| CertError::Key(e.to_string()))?;
        if spki != cert.tbs_certificate.subject_public_key_info {
            return Err(CertError::Invalid(
                "CA key does not match the CA certificate".into(),
            ));
        }
        Ok(Self {
            key,
            cert,
            crl_url: None,
        })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The CA certificate DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>, CertError> {
        Ok(self.cert.to_der()?)
    }

    /// The CA certificate as PEM.
    pub fn certificate_pem(&self) -> Result<String, CertError> {
        Ok(der::EncodePem::to_pem(
            &self.cert,
            der::pem::LineEnding::LF,
        )?)
    }

    /// Issue a TSA certificate whose subject key is the FROST group key (id-ecPublicKey
    /// on secp256k1, or id-Ed25519 per RFC 8410, as the epoch's suite): the tagged group
    /// verifying key of a `GroupKey` (`.public()`) or of an evidence bundle.
    pub fn issue_tsa_certificate(
        &self,
        group: &GroupPublicKey,
        measurement: Option<&[u8; 48]>,
        subject: &str,
        not_before: SystemTime,
        lifetime: Duration,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<u8>, CertError> {
        let spki = group
            .spki()
            .ok_or_else(|| CertError::Key("group key has no SubjectPublicKeyInfo".into()))?;
        let name = Name::from_str(subject)
            .map_err(|e| CertError::Invalid(format!("subject {subject:?}: {e}")))?;
        // RFC 3161 §2.3: timeStamping is the only purpose, and critical.
        let eku = ExtendedKeyUsage(vec![std_oids::KP_TIME_STAMPING]);
        let extra = match measurement {
            Some(m) => vec![launch_measurement_extension(m)?],
            None => Vec::new(),
        };
        self.issue_end_entity(name, spki, (&eku, true), extra, (not_before, lifetime), rng)
    }

    /// An end-entity certificate for `spki` named `subject`: cA=FALSE and keyUsage
    /// digitalSignature (both critical), the extendedKeyUsage `eku` (critical or not),
    /// SKI/AKI, then `extra`, then the CRL distribution point if the CA has one;
    /// valid from `validity.0` for `validity.1`, a random serial, signed by the CA.
    pub(crate) fn issue_end_entity(
        &self,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        eku: (&ExtendedKeyUsage, bool),
        extra: Vec<Extension>,
        validity_from: (SystemTime, Duration),
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<u8>, CertError> {
        let ca_spki = &self.cert.tbs_certificate.subject_public_key_info;
        let mut extensions = vec![
            ext(
                BasicConstraints::OID,
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
            )?,
            digital_signature_only()?,
            ext(ExtendedKeyUsage::OID, eku.1, eku.0)?,
            ext(
                SubjectKeyIdentifier::OID,
                false,
                &SubjectKeyIdentifier(key_id(&spki)?),
            )?,
            ext(
                AuthorityKeyIdentifier::OID,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(key_id(ca_spki)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
        ];
        extensions.extend(extra);
        extensions.extend(self.crl_extension()?);
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: crate::x509::random_serial(rng)?,
            signature: ecdsa_p256_sha256(),
            issuer: self.cert.tbs_certificate.subject.clone(),
            validity: validity(validity_from.0, validity_from.1)?,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        Ok(sign_tbs(&self.key, tbs)?.to_der()?)
    }
}

/// The non-critical launch-measurement extension (`ARC.1`) naming `m`.
fn launch_measurement_extension(m: &[u8; 48]) -> Result<Extension, CertError> {
    ext(
        crate::oid::launch_measurement_ext(),
        false,
        &LaunchMeasurement {
            version: 1,
            measurement: OctetString::new(m.to_vec())?,
        },
    )
}

fn sign_tbs(key: &SigningKey, tbs: TbsCertificate) -> Result<Certificate, CertError> {
    use signature::Signer as _;
    let msg = tbs.to_der()?;
    let sig: DerSignature = key
        .try_sign(&msg)
        .map_err(|e| CertError::Key(e.to_string()))?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_p256_sha256(),
        signature: BitString::from_bytes(sig.as_bytes())?,
    })
}

/// ```text
/// FrostampLaunchMeasurement ::= SEQUENCE {
///      version      INTEGER (1),
///      measurement  OCTET STRING (SIZE (48)) }  -- SEV-SNP MEASUREMENT of the image
/// ```
/// The value of the non-critical extension `ARC.1` ([`crate::oid::launch_measurement_ext`]).
#[derive(Clone, Debug, PartialEq, Eq, der::Sequence)]
pub struct LaunchMeasurement {
    /// 1.
    pub version: u8,
    /// The 48-byte launch measurement.
    pub measurement: OctetString,
}

/// The extensions of a certificate (none when the field is absent).
fn extensions(cert: &Certificate) -> &[Extension] {
    cert.tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
}

/// The launch measurement carried by a certificate, if any.
pub fn launch_measurement_of(der_bytes: &[u8]) -> Result<Option<[u8; 48]>, CertError> {
    launch_measurement_in(&Certificate::from_der(der_bytes)?)
}

/// [`launch_measurement_of`] for a decoded certificate.
pub fn launch_measurement_in(cert: &Certificate) -> Result<Option<[u8; 48]>, CertError> {
    let oid = crate::oid::launch_measurement_ext();
    let found: Vec<&Extension> = extensions(cert)
        .iter()
        .filter(|e| e.extn_id == oid)
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [e] => {
            let v = LaunchMeasurement::from_der(e.extn_value.as_bytes())?;
            if v.version != 1 {
                return Err(CertError::Invalid(format!(
                    "launch measurement extension version {}",
                    v.version
                )));
            }
            let m: [u8; 48] = v
                .measurement
                .as_bytes()
                .try_into()
                .map_err(|_| CertError::Invalid("launch measurement is not 48 bytes".into()))?;
            Ok(Some(m))
        }
        _ => Err(CertError::Invalid(
            "launch measurement extension appears twice".into(),
        )),
    }
}

/// Why a node refuses a TSA certificate (DESIGN §2 step 5).
#[derive(Debug, thiserror::Error)]
pub enum TsaCertError {
    /// Not a certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Subject key is not the group key.
    #[error("the certificate's key is not this cluster's group key")]
    WrongKey,
    /// No launch measurement extension.
    #[error("the certificate carries no launch-measurement extension")]
    NoMeasurement,
    /// Measurement differs from this node's own.
    #[error("the certificate names measurement {0}, not this node's")]
    WrongMeasurement(String),
    /// The measurement extension must be non-critical.
    #[error("the launch-measurement extension must be non-critical")]
    CriticalMeasurement,
    /// EKU profile.
    #[error("not a timestamping certificate: {0}")]
    Profile(String),
}

/// The checks a node makes before installing a TSA certificate: key = group key,
/// measurement = its own, RFC 3161 EKU profile.
pub fn check_tsa_certificate(
    leaf: &[u8],
    group: &GroupPublicKey,
    own_measurement: &[u8; 48],
) -> Result<(), TsaCertError> {
    let cert = Certificate::from_der(leaf).map_err(|e| TsaCertError::Malformed(e.to_string()))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if !group.matches_spki(spki) {
        return Err(TsaCertError::WrongKey);
    }
    let oid = crate::oid::launch_measurement_ext();
    if extensions(&cert)
        .iter()
        .any(|e| e.extn_id == oid && e.critical)
    {
        return Err(TsaCertError::CriticalMeasurement);
    }
    match launch_measurement_in(&cert).map_err(|e| TsaCertError::Malformed(e.to_string()))? {
        None => return Err(TsaCertError::NoMeasurement),
        Some(m) if &m != own_measurement => {
            return Err(TsaCertError::WrongMeasurement(hex::encode(m)))
        }
        Some(_) => {}
    }
    crate::x509::chain::check_timestamping_leaf(&cert)
        .map_err(|e| TsaCertError::Profile(e.to_string()))
}

// --- PKCS#10 certification request for an external CA (RFC 2986) ---------------

fn group_spki<S: Suite>(
    group: &frost_core::VerifyingKey<S>,
) -> Result<SubjectPublicKeyInfoOwned, CertError> {
    S::spki(group).ok_or_else(|| CertError::Key("group key has no SubjectPublicKeyInfo".into()))
}

/// The CertificationRequestInfo of a key epoch, built deterministically from
/// structured inputs: every signer builds it itself and signs only that
/// (DESIGN §2.6: the group key signs tokens and its own epoch's CSR, nothing else).
/// Requested extensions: EKU id-kp-timeStamping (critical), keyUsage
/// digitalSignature (critical), the launch measurement (non-critical). The
/// evidence attribute carries the evidence bundle (JSON) the CA must check.
pub fn build_csr_info<S: Suite>(
    subject: &str,
    group: &frost_core::VerifyingKey<S>,
    measurement: &[u8; 48],
    evidence_bundle_json: &[u8],
) -> Result<Vec<u8>, CertError> {
    let subject = Name::from_str(subject)
        .map_err(|e| CertError::Invalid(format!("subject {subject:?}: {e}")))?;
    let extensions = vec![
        ext(
            ExtendedKeyUsage::OID,
            true,
            &ExtendedKeyUsage(vec![std_oids::KP_TIME_STAMPING]),
        )?,
        digital_signature_only()?,
        launch_measurement_extension(measurement)?,
    ];
    let ext_req = Attribute::try_from(ExtensionReq(extensions))?;
    let evidence = Attribute {
        oid: crate::oid::attestation_evidence_attr(),
        values: SetOfVec::try_from(vec![der::Any::encode_from(&OctetString::new(
            evidence_bundle_json.to_vec(),
        )?)?])?,
    };
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key: group_spki(group)?,
        attributes: SetOfVec::try_from(vec![ext_req, evidence])?,
    };
    Ok(info.to_der()?)
}

/// Assemble a CSR from its info DER and the FROST signature (signatureAlgorithm the
/// project's FROST(secp256k1) OID, or id-Ed25519 for an Ed25519 epoch).
pub fn assemble_csr<S: Suite>(info_der: &[u8], signature: &[u8]) -> Result<Vec<u8>, CertError> {
    CertReqInfo::from_der(info_der)?;
    if signature.len() != S::SIGNATURE_LEN {
        return Err(CertError::Invalid("CSR signature length".into()));
    }
    Ok(RawSigned {
        tbs: AnyRef::from_der(info_der)?,
        algorithm: AlgorithmIdentifierRef {
            oid: S::signature_algorithm(),
            parameters: None,
        },
        signature: BitStringRef::from_bytes(signature)?,
    }
    .to_der()?)
}

/// A CSR whose FROST signature verifies under its own subject key.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// Requested subject (RFC 4514 text).
    pub subject: String,
    /// Group key (its suite is the CSR's).
    pub group: GroupPublicKey,
    /// Requested launch measurement.
    pub measurement: [u8; 48],
    /// The evidence bundle (JSON bytes).
    pub evidence: Vec<u8>,
}

/// Parse a CSR, verify its FROST signature with its subject key, and extract
/// the measurement and the evidence bundle.
pub fn verify_csr(csr_der: &[u8]) -> Result<VerifiedCsr, CertError> {
    let csr = CertReq::from_der(csr_der)?;
    let suite = if csr.algorithm.oid == Secp256K1Sha256::signature_algorithm() {
        Ciphersuite::Secp256k1
    } else if csr.algorithm.oid == Ed25519Sha512::signature_algorithm() {
        Ciphersuite::Ed25519
    } else {
        return Err(CertError::Invalid(
            "CSR is not signed with FROST(secp256k1, SHA-256) or Ed25519".into(),
        ));
    };
    if csr.algorithm.parameters.is_some() {
        return Err(CertError::Invalid(
            "CSR signature algorithm with parameters".into(),
        ));
    }
    let info_der = RawSigned::from_der(csr_der)?.tbs.to_der()?;
    let group = GroupPublicKey::from_spki(&csr.info.public_key)
        .filter(|g| g.suite() == suite)
        .ok_or_else(|| {
            CertError::Invalid(format!("CSR key is not a {} group key", suite.rfc_name()))
        })?;
    let sig = csr
        .signature
        .as_bytes()
        .ok_or_else(|| CertError::Invalid("CSR signature bit string".into()))?;
    if !group.verify(&info_der, sig) {
        return Err(CertError::Invalid(
            "CSR signature does not verify under its subject key".into(),
        ));
    }
    let mut measurement = None;
    let mut evidence = None;
    for attr in csr.info.attributes.iter() {
        let [value] = attr.values.as_slice() else {
            return Err(CertError::Invalid(
                "CSR attribute with other than one value".into(),
            ));
        };
        if attr.oid == ExtensionReq::OID {
            for e in value.decode_as::<ExtensionReq>()?.0 {
                if e.extn_id == crate::oid::launch_measurement_ext() {
                    let m = LaunchMeasurement::from_der(e.extn_value.as_bytes())?;
                    measurement = Some(
                        <[u8; 48]>::try_from(m.measurement.as_bytes())
                            .map_err(|_| CertError::Invalid("measurement length".into()))?,
                    );
                }
            }
        } else if attr.oid == crate::oid::attestation_evidence_attr() {
            evidence = Some(value.decode_as::<OctetString>()?.as_bytes().to_vec());
        }
    }
    Ok(VerifiedCsr {
        subject: csr.info.subject.to_string(),
        group,
        measurement: measurement
            .ok_or_else(|| CertError::Invalid("CSR requests no launch measurement".into()))?,
        evidence: evidence
            .ok_or_else(|| CertError::Invalid("CSR carries no evidence attribute".into()))?,
    })
}
