//! Parsing untrusted `TimeStampReq` bytes (RFC 3161 §2.4.1) into a validated
//! [`AcceptedRequest`]. Everything past this module sees only accepted requests.

use crate::oid::{std_oids, ObjectIdentifier};
use crate::tsp::asn1::{algorithm, MessageImprint, TimeStampReq};
use crate::tsp::TsaProfile;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use sha2::Digest;

/// The imprint hash algorithms frostamp accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HashAlg {
    /// SHA-256 (RFC 5754).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The algorithm's OID.
    pub fn oid(self) -> der::asn1::ObjectIdentifier {
        match self {
            Self::Sha256 => std_oids::SHA256,
            Self::Sha384 => std_oids::SHA384,
            Self::Sha512 => std_oids::SHA512,
        }
    }
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
    /// The accepted algorithm for an OID, if any.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| *oid == h.oid())
    }
    /// Parse `sha256` / `sha384` / `sha512`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }
}

/// PKIFailureInfo bits (RFC 3161 §2.4.2) that frostamp emits or reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureInfo {
    /// Unrecognized or unsupported algorithm identifier (bit 0).
    BadAlg,
    /// Transaction not permitted or supported (bit 2).
    BadRequest,
    /// The data submitted has the wrong format (bit 5).
    BadDataFormat,
    /// The TSA's time source is not available (bit 14).
    TimeNotAvailable,
    /// The requested TSA policy is not supported (bit 15).
    UnacceptedPolicy,
    /// The requested extension is not supported (bit 16).
    UnacceptedExtension,
    /// The additional information requested could not be understood or is not available (bit 17).
    AddInfoNotAvailable,
    /// The request cannot be handled due to system failure (bit 25).
    SystemFailure,
}

impl FailureInfo {
    /// Bit number in the PKIFailureInfo named BIT STRING.
    pub fn bit(self) -> u8 {
        match self {
            Self::BadAlg => 0,
            Self::BadRequest => 2,
            Self::BadDataFormat => 5,
            Self::TimeNotAvailable => 14,
            Self::UnacceptedPolicy => 15,
            Self::UnacceptedExtension => 16,
            Self::AddInfoNotAvailable => 17,
            Self::SystemFailure => 25,
        }
    }
    /// All known values.
    pub const ALL: [Self; 8] = [
        Self::BadAlg,
        Self::BadRequest,
        Self::BadDataFormat,
        Self::TimeNotAvailable,
        Self::UnacceptedPolicy,
        Self::UnacceptedExtension,
        Self::AddInfoNotAvailable,
        Self::SystemFailure,
    ];
    /// RFC name, e.g. `badAlg`.
    pub fn rfc_name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadRequest => "badRequest",
            Self::BadDataFormat => "badDataFormat",
            Self::TimeNotAvailable => "timeNotAvailable",
            Self::UnacceptedPolicy => "unacceptedPolicy",
            Self::UnacceptedExtension => "unacceptedExtension",
            Self::AddInfoNotAvailable => "addInfoNotAvailable",
            Self::SystemFailure => "systemFailure",
        }
    }
}

/// Why a request is refused. Each maps to exactly one PKIFailureInfo bit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Rejection {
    /// Request bigger than the profile allows; refused before parsing.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Received length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Not a DER TimeStampReq.
    #[error("malformed TimeStampReq: {0}")]
    Malformed(String),
    /// Version other than 1.
    #[error("unsupported TimeStampReq version")]
    BadVersion,
    /// Hash algorithm not accepted (SHA-1, MD5, unknown).
    #[error("hash algorithm {0} is not accepted (use SHA-256, SHA-384 or SHA-512)")]
    BadAlg(String),
    /// Hash algorithm parameters other than absent or NULL.
    #[error("hash algorithm parameters must be absent or NULL")]
    BadAlgParameters,
    /// Imprint length does not match the algorithm.
    #[error("message imprint is {got} bytes, {alg} needs {want}")]
    BadImprintLength {
        /// Algorithm.
        alg: String,
        /// Received length.
        got: usize,
        /// Required length.
        want: usize,
    },
    /// reqPolicy present and not ours.
    #[error("requested policy {0} is not this TSA's policy")]
    UnacceptedPolicy(String),
    /// Any request extension.
    #[error("request extensions are not supported")]
    UnacceptedExtension,
    /// The TSA could not agree on a time (signers refused the proposed genTime).
    #[error("time not available: {0}")]
    TimeNotAvailable(String),
    /// The TSA could not serve a valid request; the reason has a fixed public text.
    #[error("system failure: {0}")]
    SystemFailure(SystemFailure),
}

/// Why a valid request got no token, as the client is told (RFC 3161 `systemFailure`).
/// Each reason has a fixed text: what went wrong inside (an encoding error, which peer
/// failed and how) stays in the node's log and metrics and never reaches a client,
/// who is not authenticated.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SystemFailure {
    /// This node holds no key share, certificate or configuration yet, or no longer.
    #[error("this node is not serving")]
    NotServing,
    /// Fewer than t signers could sign (n and t are public).
    #[error("only {have} of the {need} required signers are available")]
    TooFewSigners {
        /// Signers that could sign.
        have: usize,
        /// The threshold t.
        need: usize,
    },
    /// Anything else (encoding, aggregation, a task that failed); the detail is logged.
    #[error("internal error")]
    Internal,
}

impl SystemFailure {
    /// The failure inside, logged where it happened; what the client is told is
    /// [`SystemFailure::Internal`]'s fixed text.
    pub fn internal(detail: impl core::fmt::Display) -> Rejection {
        tracing::error!("internal error while answering a timestamp request: {detail}");
        Rejection::SystemFailure(Self::Internal)
    }

    /// A label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotServing => "not_serving",
            Self::TooFewSigners { .. } => "too_few_signers",
            Self::Internal => "internal",
        }
    }
}

impl Rejection {
    /// The PKIFailureInfo bit for this rejection.
    pub fn failure_info(&self) -> FailureInfo {
        match self {
            Self::TooLarge { .. } | Self::Malformed(_) | Self::BadVersion => {
                FailureInfo::BadRequest
            }
            Self::BadAlg(_) | Self::BadAlgParameters => FailureInfo::BadAlg,
            Self::BadImprintLength { .. } => FailureInfo::BadDataFormat,
            Self::UnacceptedPolicy(_) => FailureInfo::UnacceptedPolicy,
            Self::UnacceptedExtension => FailureInfo::UnacceptedExtension,
            Self::TimeNotAvailable(_) => FailureInfo::TimeNotAvailable,
            Self::SystemFailure(_) => FailureInfo::SystemFailure,
        }
    }
}

/// A request that passed every check against a [`TsaProfile`].
///
/// Constructed only by [`parse`]; holds the original DER so that signers can
/// re-run the same checks on the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRequest {
    der: Vec<u8>,
    hash_alg: HashAlg,
    imprint: Vec<u8>,
    message_imprint: MessageImprint,
    nonce: Option<Int>,
    cert_req: bool,
}

impl AcceptedRequest {
    /// The request as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Imprint hash algorithm.
    pub fn hash_alg(&self) -> HashAlg {
        self.hash_alg
    }
    /// The hashed message.
    pub fn imprint(&self) -> &[u8] {
        &self.imprint
    }
    /// The nonce to echo, if any.
    pub fn nonce(&self) -> Option<&Int> {
        self.nonce.as_ref()
    }
    /// Whether the token must carry the TSA certificate.
    pub fn cert_req(&self) -> bool {
        self.cert_req
    }
    /// The imprint as it goes into the TSTInfo: exactly the request's, including
    /// absent or NULL hash parameters (RFC 3161 §2.4.2: "MUST have the same value
    /// as the similar field in TimeStampReq").
    pub fn message_imprint(&self) -> der::Result<MessageImprint> {
        Ok(self.message_imprint.clone())
    }

    /// Build a request for `digest` (client side: `frostamp stamp`, tests).
    pub fn build_der(
        hash_alg: HashAlg,
        digest: &[u8],
        nonce: Option<&[u8]>,
        cert_req: bool,
    ) -> der::Result<Vec<u8>> {
        let req = TimeStampReq {
            version: Int::new(&[1])?,
            message_imprint: MessageImprint {
                hash_algorithm: algorithm(hash_alg.oid()),
                hashed_message: OctetString::new(digest)?,
            },
            req_policy: None,
            nonce: nonce.map(positive_int).transpose()?,
            cert_req,
            extensions: None,
        };
        req.to_der()
    }
}

/// A positive INTEGER from big-endian unsigned bytes (adds a 0x00 when the high bit is set).
pub fn positive_int(bytes: &[u8]) -> der::Result<Int> {
    let trimmed: &[u8] = {
        let first_nonzero = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        bytes.get(first_nonzero..).unwrap_or(&[0])
    };
    let trimmed = if trimmed.is_empty() {
        &[0u8][..]
    } else {
        trimmed
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = Vec::with_capacity(trimmed.len() + 1);
        v.push(0);
        v.extend_from_slice(trimmed);
        Int::new(&v)
    } else {
        Int::new(trimmed)
    }
}

/// Parse and validate a DER `TimeStampReq` against `profile`.
///
/// Order of checks: size (before any parsing), structure, version, extensions,
/// policy, hash algorithm and parameters, imprint length.
pub fn parse(bytes: &[u8], profile: &TsaProfile) -> Result<AcceptedRequest, Rejection> {
    if bytes.len() > profile.max_request_len {
        return Err(Rejection::TooLarge {
            len: bytes.len(),
            max: profile.max_request_len,
        });
    }
    let req = TimeStampReq::from_der(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
    // DER only: the decoder accepts a few non-canonical forms (e.g. certReq FALSE
    // encoded explicitly, X.690 §11.5); the canonical re-encoding must be the input.
    if req.to_der().ok().as_deref() != Some(bytes) {
        return Err(Rejection::Malformed(
            "not DER (non-canonical encoding)".into(),
        ));
    }
    if req.version.as_bytes() != [1] {
        return Err(Rejection::BadVersion);
    }
    if let Some(ext) = &req.extensions {
        // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1).
        if ext.is_empty() {
            return Err(Rejection::Malformed("empty extensions".into()));
        }
        return Err(Rejection::UnacceptedExtension);
    }
    if let Some(policy) = &req.req_policy {
        if *policy != profile.policy {
            return Err(Rejection::UnacceptedPolicy(policy.to_string()));
        }
    }
    let alg = &req.message_imprint.hash_algorithm;
    let hash_alg = HashAlg::from_oid(&alg.oid)
        .ok_or_else(|| Rejection::BadAlg(describe_hash_oid(&alg.oid)))?;
    if let Some(params) = &alg.parameters {
        if der::Tagged::tag(params) != der::Tag::Null || !params.value().is_empty() {
            return Err(Rejection::BadAlgParameters);
        }
    }
    let imprint = req.message_imprint.hashed_message.as_bytes().to_vec();
    if imprint.len() != hash_alg.digest_len() {
        return Err(Rejection::BadImprintLength {
            alg: hash_alg.name().to_string(),
            got: imprint.len(),
            want: hash_alg.digest_len(),
        });
    }
    if let Some(n) = &req.nonce {
        // A negative nonce is legal ASN.1 but meaningless; RFC 3161 calls it "a large random number".
        if n.as_bytes().first().is_some_and(|b| b & 0x80 != 0) {
            return Err(Rejection::Malformed("negative nonce".into()));
        }
    }
    Ok(AcceptedRequest {
        der: bytes.to_vec(),
        hash_alg,
        imprint,
        message_imprint: req.message_imprint,
        nonce: req.nonce,
        cert_req: req.cert_req,
    })
}

fn describe_hash_oid(oid: &ObjectIdentifier) -> String {
    if *oid == std_oids::SHA1 {
        "SHA-1 (1.3.14.3.2.26)".into()
    } else if *oid == std_oids::MD5 {
        "MD5 (1.2.840.113549.2.5)".into()
    } else {
        oid.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> TsaProfile {
        TsaProfile::frostamp_default()
    }

    #[test]
    fn accepts_each_sha2() {
        for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let d = h.digest(b"hello");
            let der = AcceptedRequest::build_der(h, &d, Some(&[0x92, 1, 2]), true).unwrap();
            let r = parse(&der, &profile()).unwrap();
            assert_eq!(r.hash_alg(), h);
            assert_eq!(r.imprint(), d.as_slice());
            assert!(r.cert_req());
            assert_eq!(r.nonce().unwrap().as_bytes(), [0, 0x92, 1, 2]);
        }
    }

    #[test]
    fn rejections_map_to_failure_bits() {
        let p = profile();
        let big = vec![0u8; p.max_request_len + 1];
        assert_eq!(
            parse(&big, &p).unwrap_err().failure_info(),
            FailureInfo::BadRequest
        );
        assert_eq!(
            parse(b"garbage", &p).unwrap_err().failure_info(),
            FailureInfo::BadRequest
        );
        let short = AcceptedRequest::build_der(HashAlg::Sha256, &[0u8; 31], None, false).unwrap();
        assert_eq!(
            parse(&short, &p).unwrap_err().failure_info(),
            FailureInfo::BadDataFormat
        );
        // SHA-1 imprint
        let mut req = TimeStampReq::from_der(
            &AcceptedRequest::build_der(HashAlg::Sha256, &[0u8; 32], None, false).unwrap(),
        )
        .unwrap();
        req.message_imprint.hash_algorithm = algorithm(std_oids::SHA1);
        req.message_imprint.hashed_message = OctetString::new(vec![0u8; 20]).unwrap();
        let e = parse(&req.to_der().unwrap(), &p).unwrap_err();
        assert_eq!(e.failure_info(), FailureInfo::BadAlg);
        assert!(e.to_string().contains("SHA-1"));
        // foreign policy
        let mut req2 = TimeStampReq::from_der(
            &AcceptedRequest::build_der(HashAlg::Sha256, &[0u8; 32], None, false).unwrap(),
        )
        .unwrap();
        req2.req_policy = Some(ObjectIdentifier::new_unwrap("1.2.3.4"));
        assert_eq!(
            parse(&req2.to_der().unwrap(), &p)
                .unwrap_err()
                .failure_info(),
            FailureInfo::UnacceptedPolicy
        );
        // our policy is fine
        req2.req_policy = Some(p.policy);
        assert!(parse(&req2.to_der().unwrap(), &p).is_ok());
        // version 2
        req2.version = Int::new(&[2]).unwrap();
        assert_eq!(
            parse(&req2.to_der().unwrap(), &p).unwrap_err(),
            Rejection::BadVersion
        );
    }

    #[test]
    fn extensions_are_unaccepted() {
        let base = AcceptedRequest::build_der(HashAlg::Sha256, &[1u8; 32], None, false).unwrap();
        let mut req = TimeStampReq::from_der(&base).unwrap();
        let ext = x509_cert::ext::Extension {
            extn_id: der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4"),
            critical: false,
            extn_value: OctetString::new(vec![5, 0]).unwrap(),
        };
        req.extensions = Some(crate::tsp::asn1::RawSequenceOf::from_elements(&[ext]).unwrap());
        let e = parse(&req.to_der().unwrap(), &profile()).unwrap_err();
        assert_eq!(e, Rejection::UnacceptedExtension);
        assert_eq!(e.failure_info(), FailureInfo::UnacceptedExtension);
        req.extensions = Some(crate::tsp::asn1::RawSequenceOf::default());
        assert_eq!(
            parse(&req.to_der().unwrap(), &profile())
                .unwrap_err()
                .failure_info(),
            FailureInfo::BadRequest
        );
    }

    #[test]
    fn explicit_default_cert_req_is_not_der() {
        let der = AcceptedRequest::build_der(HashAlg::Sha256, &[3u8; 32], None, false).unwrap();
        // Re-encode with certReq FALSE present: 01 01 00 appended inside the SEQUENCE.
        let mut body = der[2..].to_vec();
        body.extend_from_slice(&[0x01, 0x01, 0x00]);
        let mut bad = vec![0x30, u8::try_from(body.len()).unwrap()];
        bad.extend(body);
        let e = parse(&bad, &profile()).unwrap_err();
        assert_eq!(e.failure_info(), FailureInfo::BadRequest);
        assert!(e.to_string().contains("not DER"));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut der = AcceptedRequest::build_der(HashAlg::Sha256, &[7u8; 32], None, false).unwrap();
        der.push(0);
        assert_eq!(
            parse(&der, &profile()).unwrap_err().failure_info(),
            FailureInfo::BadRequest
        );
    }

    #[test]
    fn positive_int_encoding() {
        assert_eq!(positive_int(&[0x80]).unwrap().as_bytes(), [0, 0x80]);
        assert_eq!(positive_int(&[0, 0, 5]).unwrap().as_bytes(), [5]);
        assert_eq!(positive_int(&[]).unwrap().as_bytes(), [0]);
    }
}
