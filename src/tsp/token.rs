//! Token construction: TSTInfo (RFC 3161 §2.4.2), signed attributes (RFC 5652
//! §5.3, RFC 5816) and the CMS SignedData around them (RFC 5652 §5).
//!
//! [`build_signed_content`] is a pure function of (profile, certificate identity,
//! accepted request, genTime, serial). Coordinator and signers call it with the
//! same inputs and get the same bytes; a signer never signs bytes it did not
//! build itself (DESIGN §2.6).
//!
//! Both are generic over the token's [`CmsScheme`] (each FROST ciphersuite of
//! `threshold::suite` is one): FROST(secp256k1, SHA-256) tokens carry
//! digestAlgorithm SHA-256 and the project's FROST signature algorithm; FROST(Ed25519,
//! SHA-512) tokens follow RFC 8419 §3.1 (digestAlgorithm id-sha512, the messageDigest
//! attribute computed with SHA-512, signatureAlgorithm id-Ed25519 with absent
//! parameters, the signature the 64-byte RFC 8032 one over the DER of the signed
//! attributes). signingCertificateV2 names the certificate by SHA-256 in both.

use crate::oid::{self, std_oids};
use crate::tsp::asn1::{
    algorithm, Attribute, ContentInfo, EncapsulatedContentInfo, EssCertIdV2, IssuerSerial,
    RawSetOf, SignedData, SignerInfo, SigningCertificateV2, TstInfo,
};
use crate::tsp::request::{positive_int, AcceptedRequest};
use crate::tsp::time::GenTime;
use crate::tsp::TsaProfile;
use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

/// How a token's SignerInfo is signed: the algorithms CMS names and the digest of the
/// signed attributes. Each FROST ciphersuite the threshold layer runs is one scheme;
/// this layer needs nothing else of it.
pub trait CmsScheme {
    /// Its name in errors (the RFC 9591 ciphersuite name).
    const SCHEME_NAME: &'static str;
    /// Length of a serialized signature.
    const SIGNATURE_LEN: usize;
    /// The SignerInfo signatureAlgorithm (also what a CSR names).
    fn signature_algorithm() -> ObjectIdentifier;
    /// The SignerInfo digestAlgorithm, which also computes the messageDigest attribute.
    fn digest_algorithm() -> ObjectIdentifier;
    /// That digest of `data`.
    fn digest(data: &[u8]) -> Vec<u8>;
}

/// Length of a FROST(secp256k1, SHA-256) signature: compressed R (33) ‖ z (32).
pub const FROST_SIGNATURE_LEN: usize = 65;

/// Errors while building a token (all are internal: inputs were validated).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// DER encoding failed.
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    /// The certificate cannot be used as a TSA certificate.
    #[error("unusable TSA certificate: {0}")]
    Certificate(String),
}

/// A 128-bit random positive serial number (RFC 3161 §2.4.2: unique per token,
/// up to 160 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Serial(pub [u8; 16]);

impl Serial {
    /// A fresh random serial (never zero).
    pub fn random(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        loop {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            if b != [0u8; 16] {
                return Self(b);
            }
        }
    }
    /// As a positive INTEGER.
    pub fn to_int(&self) -> der::Result<Int> {
        positive_int(&self.0)
    }
    /// Hex text.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The TSA certificate as the token refers to it: the DER, its SHA-256 for
/// ESSCertIDv2, and the issuer/serial for the SignerInfo sid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdentity {
    cert: Certificate,
    der: Vec<u8>,
    sha256: [u8; 32],
}

impl CertIdentity {
    /// From a certificate's DER.
    pub fn from_der(der: &[u8]) -> Result<Self, TokenError> {
        let cert =
            Certificate::from_der(der).map_err(|e| TokenError::Certificate(e.to_string()))?;
        Ok(Self {
            cert,
            der: der.to_vec(),
            sha256: Sha256::digest(der).into(),
        })
    }
    /// The certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
    /// The certificate DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// SHA-256 of the certificate DER (the ESSCertIDv2 certHash).
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }
    /// The subjectPublicKey bits of the certificate.
    pub fn public_key_bytes(&self) -> &[u8] {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }
}

/// What a token's signature covers, plus the TSTInfo it commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedContent {
    /// DER of the TSTInfo (the eContent).
    pub tst_info_der: Vec<u8>,
    /// The signed attributes as they go into the SignerInfo.
    pub signed_attrs: RawSetOf,
}

impl SignedContent {
    /// The exact message the signature is computed over: the DER of the
    /// SignedAttributes with the EXPLICIT SET OF tag (RFC 5652 §5.4).
    pub fn message(&self) -> der::Result<Vec<u8>> {
        self.signed_attrs.to_der()
    }
}

/// Build the TSTInfo and signed attributes for a token. Deterministic.
/// What backs genTime when time evidence does (`crate::time::evidence`): the evidence's
/// DER, carried as a signed attribute, and the accuracy it gives.
#[derive(Clone, Copy, Debug)]
pub struct TimeBacking<'a> {
    /// `TimeEvidence` DER.
    pub evidence_der: &'a [u8],
    /// The accuracy the evidence gives, whole seconds.
    pub accuracy_secs: u64,
}

/// TSTInfo and signed attributes for one token. With `time`, the accuracy is the
/// evidence's and the evidence is a signed attribute; without, the profile's tolerance.
pub fn build_signed_content<S: CmsScheme>(
    profile: &TsaProfile,
    cert: &CertIdentity,
    request: &AcceptedRequest,
    gen_time: GenTime,
    serial: &Serial,
    time: Option<TimeBacking<'_>>,
) -> Result<SignedContent, TokenError> {
    let subject = cert.cert.tbs_certificate.subject.clone();
    let tsa_name = Any::from_der(&GeneralName::DirectoryName(subject).to_der()?)?;
    let tst = TstInfo {
        version: Int::new(&[1])?,
        policy: profile.policy,
        message_imprint: request.message_imprint()?,
        serial_number: serial.to_int()?,
        gen_time,
        accuracy: Some(match time {
            Some(t) => x509_tsp::Accuracy {
                seconds: Some(t.accuracy_secs),
                millis: None,
                micros: None,
            },
            None => profile.accuracy(),
        }),
        ordering: false,
        nonce: request.nonce().cloned(),
        tsa: Some(tsa_name),
        extensions: None,
    };
    let tst_info_der = tst.to_der()?;
    let signed_attrs = signed_attributes::<S>(&tst_info_der, cert, time.map(|t| t.evidence_der))?;
    Ok(SignedContent {
        tst_info_der,
        signed_attrs,
    })
}

/// contentType, messageDigest (the suite's digest of the TSTInfo DER: SHA-256, or
/// SHA-512 for Ed25519) and signingCertificateV2 with one ESSCertIDv2 (SHA-256, with
/// issuerSerial).
fn signed_attributes<S: CmsScheme>(
    tst_info_der: &[u8],
    cert: &CertIdentity,
    time_evidence_der: Option<&[u8]>,
) -> Result<RawSetOf, TokenError> {
    let tbs = &cert.cert.tbs_certificate;
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None, // DEFAULT id-sha256
            cert_hash: OctetString::new(cert.sha256.to_vec())?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                serial_number: Int::new(tbs.serial_number.as_bytes())?,
            }),
        }],
        policies: None,
    };
    let mut attrs = vec![
        attribute(std_oids::ATTR_CONTENT_TYPE, &std_oids::CT_TST_INFO)?,
        attribute(
            std_oids::ATTR_MESSAGE_DIGEST,
            &OctetString::new(S::digest(tst_info_der))?,
        )?,
        attribute(std_oids::ATTR_SIGNING_CERTIFICATE_V2, &ess)?,
    ];
    if let Some(der) = time_evidence_der {
        attrs.push(Attribute {
            oid: oid::time_evidence_attr(),
            values: RawSetOf::from_elements(&[Any::from_der(der)?])?,
        });
    }
    Ok(RawSetOf::from_elements(&attrs)?)
}

fn attribute(oid: der::asn1::ObjectIdentifier, value: &impl Encode) -> der::Result<Attribute> {
    Ok(Attribute {
        oid,
        values: RawSetOf::from_elements(&[Any::from_der(&value.to_der()?)?])?,
    })
}

/// Assemble the token: `ContentInfo { id-signedData, SignedData }` (RFC 3161 §2.4.2).
///
/// `certificates` (DER) are included in the CertificateSet when non-empty; pass
/// the TSA certificate when the request had certReq.
pub fn assemble<S: CmsScheme>(
    content: &SignedContent,
    cert: &CertIdentity,
    certificates: &[Vec<u8>],
    signature: &[u8],
) -> Result<Vec<u8>, TokenError> {
    if signature.len() != S::SIGNATURE_LEN {
        return Err(TokenError::Certificate(format!(
            "a {} signature is {} bytes, not {}",
            S::SCHEME_NAME,
            S::SIGNATURE_LEN,
            signature.len()
        )));
    }
    let tbs = &cert.cert.tbs_certificate;
    let digest_alg = algorithm(S::digest_algorithm());
    let signer_info = SignerInfo {
        version: Int::new(&[1])?,
        sid: cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(
            cms::cert::IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            },
        ),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(content.signed_attrs.clone()),
        signature_algorithm: algorithm(S::signature_algorithm()),
        signature: OctetString::new(signature.to_vec())?,
        unsigned_attrs: None,
    };
    let certs: Vec<Any> = certificates
        .iter()
        .map(|c| Any::from_der(c))
        .collect::<Result<_, _>>()?;
    let signed_data = SignedData {
        version: Int::new(&[3])?,
        digest_algorithms: RawSetOf::from_elements(&[digest_alg])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: std_oids::CT_TST_INFO,
            econtent: Some(Any::encode_from(&OctetString::new(
                content.tst_info_der.clone(),
            )?)?),
        },
        certificates: (!certs.is_empty())
            .then(|| RawSetOf::from_elements(&certs))
            .transpose()?,
        crls: None,
        signer_infos: RawSetOf::from_elements(&[signer_info])?,
    };
    let ci = ContentInfo {
        content_type: std_oids::SIGNED_DATA,
        content: Any::from_der(&signed_data.to_der()?)?,
    };
    Ok(ci.to_der()?)
}
