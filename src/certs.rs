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

use crate::oid::std_oids;
use crate::threshold::keys::GroupKey;
use base64ct::Encoding as _;
use const_oid::AssociatedOid;
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::{DerSignature, SigningKey};
use sha1::{Digest as _, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
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
}

/// A development certificate authority with an in-memory ECDSA P-256 key.
pub struct DevCa {
    key: SigningKey,
    cert: Certificate,
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

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Result<OctetString, CertError> {
    Ok(OctetString::new(
        Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec(),
    )?)
}

fn random_serial(
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<SerialNumber, CertError> {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    if let Some(first) = b.first_mut() {
        *first &= 0x7f; // positive, ≤ 20 octets (RFC 5280 §4.1.2.2)
        *first |= 0x01; // non-zero leading octet: minimal DER
    }
    Ok(SerialNumber::new(&b)?)
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

fn validity(not_before: SystemTime, lifetime: Duration) -> Result<Validity, CertError> {
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
            serial_number: random_serial(rng)?,
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
        Ok(Self { key, cert })
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

    /// Issue a TSA certificate whose subject key is the FROST group key.
    pub fn issue_tsa_certificate(
        &self,
        group: &GroupKey,
        subject: &str,
        not_before: SystemTime,
        lifetime: Duration,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<u8>, CertError> {
        let point = group
            .to_sec1_uncompressed()
            .map_err(|e| CertError::Key(e.to_string()))?;
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: std_oids::EC_PUBLIC_KEY,
                parameters: Some(der::Any::from_der(&std_oids::SECP256K1.to_der()?)?),
            },
            subject_public_key: BitString::from_bytes(&point)?,
        };
        let name = Name::from_str(subject)
            .map_err(|e| CertError::Invalid(format!("subject {subject:?}: {e}")))?;
        let ca_spki = &self.cert.tbs_certificate.subject_public_key_info;
        let extensions = vec![
            ext(
                BasicConstraints::OID,
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
            )?,
            ext(
                KeyUsage::OID,
                true,
                &KeyUsage(KeyUsages::DigitalSignature.into()),
            )?,
            // RFC 3161 §2.3: the only purpose, and critical.
            ext(
                ExtendedKeyUsage::OID,
                true,
                &ExtendedKeyUsage(vec![std_oids::KP_TIME_STAMPING]),
            )?,
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
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial(rng)?,
            signature: ecdsa_p256_sha256(),
            issuer: self.cert.tbs_certificate.subject.clone(),
            validity: validity(not_before, lifetime)?,
            subject: name,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        Ok(sign_tbs(&self.key, tbs)?.to_der()?)
    }
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

/// A certificate together with the exact bytes it arrived as.
///
/// `der` sorts SET OF values when decoding, so re-encoding a decoded certificate
/// can differ from the original; hashes (ESSCertID) and signatures (over the
/// TBSCertificate) must use the received bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertDer {
    /// The received DER.
    pub der: Vec<u8>,
    /// Its decoding.
    pub cert: Certificate,
}

impl CertDer {
    /// Decode, keeping the bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, der::Error> {
        Ok(Self {
            cert: Certificate::from_der(der)?,
            der: der.to_vec(),
        })
    }
    /// From a certificate built here (its encoding is canonical).
    pub fn from_cert(cert: &Certificate) -> Result<Self, der::Error> {
        Ok(Self {
            der: cert.to_der()?,
            cert: cert.clone(),
        })
    }
    /// Subject as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }
}

/// Parse certificates from PEM text (one or more `CERTIFICATE` blocks, any line
/// length) or from a single DER certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<CertDer>, CertError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let Ok(text) = core::str::from_utf8(bytes) else {
        return Ok(vec![CertDer::from_der(bytes).map_err(|e| {
            CertError::Invalid(format!("DER certificate: {e}"))
        })?]);
    };
    if !text.contains(BEGIN) {
        return Err(CertError::Invalid(
            "no PEM CERTIFICATE block and not DER".into(),
        ));
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = after.find(END).ok_or_else(|| {
            CertError::Invalid(format!("PEM block {} has no END line", out.len() + 1))
        })?;
        let b64: String = after
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64ct::Base64::decode_vec(&b64)
            .map_err(|e| CertError::Invalid(format!("PEM block {}: base64: {e}", out.len() + 1)))?;
        out.push(
            CertDer::from_der(&der)
                .map_err(|e| CertError::Invalid(format!("PEM block {}: {e}", out.len() + 1)))?,
        );
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    Ok(out)
}
