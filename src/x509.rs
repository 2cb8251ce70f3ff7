//! The base X.509 layer every other layer builds on: certificates kept with the bytes
//! they arrived as, PEM parsing, signature verification by algorithm identifier
//! ([`sig`]) and certificate path building to caller-supplied anchors ([`chain`]).
//! It imports nothing from the rest of the crate.

pub mod chain;
pub mod sig;

use base64ct::Encoding as _;
use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierRef;
use x509_cert::Certificate;

/// Why certificate text or bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// Not UTF-8 PEM text and not one DER certificate either.
    #[error("no PEM CERTIFICATE block and not DER")]
    NotPemOrDer,
    /// A single DER certificate that does not decode.
    #[error("DER certificate: {0}")]
    Der(#[source] der::Error),
    /// A PEM block without its END line.
    #[error("PEM block {block} has no END line")]
    NoEnd {
        /// 1-based block number.
        block: usize,
    },
    /// A PEM block whose body is not base64.
    #[error("PEM block {block}: base64: {reason}")]
    Base64 {
        /// 1-based block number.
        block: usize,
        /// What the decoder said.
        reason: String,
    },
    /// A PEM block whose content is not a DER certificate.
    #[error("PEM block {block}: {reason}")]
    BlockDer {
        /// 1-based block number.
        block: usize,
        /// What the decoder said.
        #[source]
        reason: der::Error,
    },
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

/// A random 16-octet certificate serial number: positive and at most 20 octets
/// (RFC 5280 §4.1.2.2), with a non-zero leading octet (minimal DER).
pub fn random_serial(
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> der::Result<x509_cert::serial_number::SerialNumber> {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    if let Some(first) = b.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    x509_cert::serial_number::SerialNumber::new(&b)
}

/// Parse certificates from PEM text (one or more `CERTIFICATE` blocks, any line
/// length) or from a single DER certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<CertDer>, PemError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let Ok(text) = core::str::from_utf8(bytes) else {
        return Ok(vec![CertDer::from_der(bytes).map_err(PemError::Der)?]);
    };
    if !text.contains(BEGIN) {
        return Err(PemError::NotPemOrDer);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = after.find(END).ok_or_else(|| PemError::NoEnd {
            block: out.len() + 1,
        })?;
        let b64: String = after
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64ct::Base64::decode_vec(&b64).map_err(|e| PemError::Base64 {
            block: out.len() + 1,
            reason: e.to_string(),
        })?;
        out.push(CertDer::from_der(&der).map_err(|e| PemError::BlockDer {
            block: out.len() + 1,
            reason: e,
        })?);
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    Ok(out)
}

// --- signed structures -------------------------------------------------------

/// `SEQUENCE { tbs, signatureAlgorithm, signature }`: a Certificate (RFC 5280 §4.1)
/// or a CertificationRequest (RFC 2986 §4.2) with the signed part kept as received,
/// so that signatures are checked over the exact signed octets (`der` sorts SET OF
/// values when decoding, so a re-encoding can differ).
#[derive(der::Sequence)]
pub struct RawSigned<'a> {
    /// The signed part (TBSCertificate or CertificationRequestInfo), as received.
    pub tbs: AnyRef<'a>,
    /// The signature algorithm.
    pub algorithm: AlgorithmIdentifierRef<'a>,
    /// The signature.
    pub signature: BitStringRef<'a>,
}
