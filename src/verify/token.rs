//! Verification of any RFC 3161 timestamp token by a relying party.
//!
//! Order of checks (each failure is a distinct [`VerifyError`] variant):
//! 1. structure: `TimeStampResp` (status must be granted) or a bare token;
//!    ContentInfo → SignedData → id-ct-TSTInfo → TSTInfo (RFC 3161 §2.4.2);
//! 2. the imprint equals the hash of the caller's data (or the given digest),
//!    the nonce and policy equal the expected ones when given;
//! 3. exactly one SignerInfo with signed attributes: contentType = id-ct-TSTInfo,
//!    messageDigest = hash of the eContent (RFC 5652 §5.4, §11);
//! 4. the signer certificate is the one named by the SignerInfo `sid` (never by
//!    a CN), from the token's certificates or those supplied;
//! 5. signingCertificateV2 (RFC 5816) or signingCertificate (RFC 2634) names that
//!    same certificate by hash (and issuer/serial when present);
//! 6. the signature over the DER of the signed attributes verifies with the
//!    certificate's key: FROST(secp256k1, SHA-256), RSA or ECDSA;
//! 7. the certificate chains to a trust anchor, every certificate valid at the
//!    verification time (genTime unless told otherwise), and the leaf carries
//!    exactly one extendedKeyUsage extension, critical, whose only purpose is
//!    id-kp-timeStamping (RFC 3161 §2.3).

use crate::oid::{self, std_oids, ObjectIdentifier};
use crate::threshold::keys::{verify_frost, verifying_key_from_sec1};
use crate::tsp::asn1::{
    Attribute, ContentInfo, SignedData, SignerInfo, SigningCertificate, SigningCertificateV2,
    TimeStampResp, TstInfo,
};
use crate::tsp::response::{decode_failure_info, PkiStatus};
use crate::x509::chain::{self, ChainError, ChainOptions};
use crate::x509::sig::{self, SignatureError};
use crate::x509::CertDer;
use der::asn1::Int;
use der::{Decode, Encode};
use std::time::SystemTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

/// What the token must be a timestamp of.
#[derive(Clone, Debug)]
pub enum Expected {
    /// The data itself; hashed with the token's imprint algorithm.
    Data(Vec<u8>),
    /// A precomputed digest, compared byte for byte with the imprint.
    Digest(Vec<u8>),
}

/// Inputs of a verification.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// What was timestamped.
    pub expected: Expected,
    /// Trust anchors.
    pub anchors: Vec<CertDer>,
    /// Additional untrusted certificates (intermediates, or the TSA certificate
    /// for tokens issued without certReq).
    pub extra_certs: Vec<CertDer>,
    /// Verification time for certificate validity; `None` = the token's genTime.
    pub at: Option<SystemTime>,
    /// The nonce the client sent, if it wants it checked (unsigned big-endian).
    pub nonce: Option<Vec<u8>>,
    /// The policy the token must carry, if any.
    pub policy: Option<ObjectIdentifier>,
    /// The time servers and quorum a token's time evidence is checked against;
    /// `None`: the build's pinned ones (`crate::time::evidence::pinned_policy`).
    pub time: Option<crate::time::evidence::TimePolicy>,
}

/// One failure class per variant; the CLI prints the message and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Neither a TimeStampResp nor a timestamp token.
    #[error("not an RFC 3161 response or token: {0}")]
    Malformed(String),
    /// The TSA refused the request.
    #[error("the TSA rejected the request: status {status}{}{}", text.as_ref().map(|t| format!(", \"{t}\"")).unwrap_or_default(), if fail_info.is_empty() { String::new() } else { format!(", failInfo {}", fail_info.join(",")) })]
    Rejected {
        /// PKIStatus name.
        status: String,
        /// statusString, joined.
        text: Option<String>,
        /// PKIFailureInfo names.
        fail_info: Vec<String>,
    },
    /// The token is structurally wrong.
    #[error("malformed token: {0}")]
    Structure(String),
    /// The imprint does not match the data.
    #[error(
        "message imprint does not match the data: token has {token_alg} {got}, expected {expected}"
    )]
    ImprintMismatch {
        /// Imprint algorithm in the token.
        token_alg: String,
        /// Imprint in the token (hex).
        got: String,
        /// Expected imprint (hex).
        expected: String,
    },
    /// Imprint algorithm unknown.
    #[error("unsupported imprint hash algorithm {0}")]
    UnsupportedImprintAlg(String),
    /// The nonce differs from the one sent.
    #[error("nonce mismatch: token has {got}, expected {expected}")]
    NonceMismatch {
        /// Token nonce (hex) or "none".
        got: String,
        /// Expected nonce (hex).
        expected: String,
    },
    /// Policy differs.
    #[error("policy mismatch: token has {got}, expected {expected}")]
    PolicyMismatch {
        /// Token policy.
        got: String,
        /// Expected policy.
        expected: String,
    },
    /// Signed attributes are missing or wrong.
    #[error("signed attributes: {0}")]
    SignedAttributes(String),
    /// messageDigest does not match the TSTInfo.
    #[error("messageDigest attribute does not match the TSTInfo (content altered)")]
    MessageDigestMismatch,
    /// No certificate matches the SignerInfo sid.
    #[error("signer certificate not found: the token names {0}; supply it with --certs")]
    SignerCertificateNotFound(String),
    /// ESSCertID(v2) does not identify the signer certificate.
    #[error("signing certificate attribute: {0}")]
    SigningCertificate(String),
    /// The signature does not verify.
    #[error("signature: {0}")]
    Signature(#[source] SignatureError),
    /// No trusted path, expired certificate, …
    #[error("certificate chain: {0}")]
    Chain(#[source] ChainError),
    /// The signer certificate is not a timestamping certificate.
    #[error("TSA certificate: {0}")]
    TsaCertificate(#[source] ChainError),
    /// The token's time evidence does not hold (any byte changed, a server not
    /// trusted, too few servers, disagreement, another request's evidence).
    #[error("time evidence: {0}")]
    TimeEvidence(#[source] crate::time::evidence::EvidenceError),
    /// genTime is earlier than the token's own evidence allows: backdated.
    #[error("genTime {gen_time} is earlier than its time evidence allows ({floor})")]
    Backdated {
        /// The token's genTime.
        gen_time: String,
        /// The earliest genTime the evidence allows.
        floor: String,
    },
}

impl VerifyError {
    /// A stable machine-readable name for the failure class.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Rejected { .. } => "rejected",
            Self::Structure(_) => "structure",
            Self::ImprintMismatch { .. } => "imprint_mismatch",
            Self::UnsupportedImprintAlg(_) => "unsupported_imprint_alg",
            Self::NonceMismatch { .. } => "nonce_mismatch",
            Self::PolicyMismatch { .. } => "policy_mismatch",
            Self::SignedAttributes(_) => "signed_attributes",
            Self::MessageDigestMismatch => "message_digest_mismatch",
            Self::SignerCertificateNotFound(_) => "signer_certificate_not_found",
            Self::SigningCertificate(_) => "signing_certificate",
            Self::Signature(_) => "signature",
            Self::Chain(_) => "chain",
            Self::TsaCertificate(_) => "tsa_certificate",
            Self::TimeEvidence(_) => "time_evidence",
            Self::Backdated { .. } => "backdated",
        }
    }
}

/// The facts of a verified token.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verified {
    /// "granted", "grantedWithMods", or "token" for a bare token.
    pub status: String,
    /// TSA policy OID.
    pub policy: String,
    /// Imprint algorithm name.
    pub hash_algorithm: String,
    /// Imprint (hex).
    pub imprint: String,
    /// Serial number (hex, two's complement as encoded).
    pub serial: String,
    /// genTime, RFC 3339.
    pub gen_time: String,
    /// Accuracy, human readable.
    pub accuracy: Option<String>,
    /// Nonce (hex), if present.
    pub nonce: Option<String>,
    /// The `tsa` field, if present.
    pub tsa: Option<String>,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Signer certificate subject.
    pub signer: String,
    /// Subjects from the signer to the anchor.
    pub chain: Vec<String>,
    /// Time at which certificate validity was checked (RFC 3339).
    pub checked_at: String,
    /// Non-fatal observations (e.g. SHA-1 imprint, legacy ESSCertID).
    pub warnings: Vec<String>,
    /// The time evidence the token carries, checked: who vouched and the bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_evidence: Option<crate::time::evidence::TimeClaim>,
    /// The certification path, signer first, anchor last (for revocation checks).
    #[serde(skip)]
    pub path: Vec<x509_cert::Certificate>,
}

/// Parse an input that is a TimeStampResp or a bare token into the token DER.
pub fn extract_token(bytes: &[u8]) -> Result<Vec<u8>, VerifyError> {
    match TimeStampResp::from_der(bytes) {
        Ok(resp) => {
            let status = PkiStatus::from_int(&resp.status.status)
                .ok_or_else(|| VerifyError::Malformed("unknown PKIStatus value".into()))?;
            if !status.is_granted() {
                let (known, unknown) = resp
                    .status
                    .fail_info
                    .as_ref()
                    .map(decode_failure_info)
                    .unwrap_or_default();
                let mut fail_info: Vec<String> =
                    known.iter().map(|f| f.rfc_name().to_string()).collect();
                fail_info.extend(unknown.iter().map(|b| format!("bit{b}")));
                return Err(VerifyError::Rejected {
                    status: serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    text: resp.status.status_string.map(|v| v.join("; ")),
                    fail_info,
                });
            }
            let token = resp
                .time_stamp_token
                .ok_or_else(|| VerifyError::Structure("granted response without a token".into()))?;
            token
                .to_der()
                .map_err(|e| VerifyError::Structure(e.to_string()))
        }
        Err(resp_err) => match ContentInfo::from_der(bytes) {
            Ok(_) => Ok(bytes.to_vec()),
            Err(_) => Err(VerifyError::Malformed(format!(
                "as TimeStampResp: {resp_err}"
            ))),
        },
    }
}

/// A token decoded into its parts, before any cryptographic check.
#[derive(Debug)]
pub struct ParsedToken {
    /// The TSTInfo.
    pub tst: TstInfo,
    /// DER of the TSTInfo (eContent).
    pub tst_der: Vec<u8>,
    /// The single SignerInfo.
    pub signer_info: SignerInfo,
    /// Certificates carried in the token, with their received bytes.
    pub certificates: Vec<CertDer>,
}

/// Decode a token (ContentInfo DER) into its parts.
pub fn parse_token(token: &[u8]) -> Result<ParsedToken, VerifyError> {
    let s = |m: &str| VerifyError::Structure(m.to_string());
    let ci = ContentInfo::from_der(token)
        .map_err(|e| VerifyError::Structure(format!("ContentInfo: {e}")))?;
    if ci.content_type != std_oids::SIGNED_DATA {
        return Err(s("content type is not id-signedData"));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| VerifyError::Structure(format!("SignedData: {e}")))?;
    if sd.encap_content_info.econtent_type != std_oids::CT_TST_INFO {
        return Err(s("eContentType is not id-ct-TSTInfo"));
    }
    let tst_der = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| s("no eContent"))?
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| VerifyError::Structure(format!("eContent: {e}")))?
        .into_bytes();
    let tst =
        TstInfo::from_der(&tst_der).map_err(|e| VerifyError::Structure(format!("TSTInfo: {e}")))?;
    if tst.version.as_bytes() != [1] {
        return Err(s("TSTInfo version is not 1"));
    }
    let infos = sd
        .signer_infos
        .elements()
        .map_err(|e| VerifyError::Structure(format!("SignerInfos: {e}")))?;
    let [info] = infos.as_slice() else {
        return Err(VerifyError::Structure(format!(
            "expected exactly one SignerInfo, found {}",
            infos.len()
        )));
    };
    let signer_info: SignerInfo = info
        .decode_as()
        .map_err(|e| VerifyError::Structure(format!("SignerInfo: {e}")))?;
    let mut certificates = Vec::new();
    if let Some(set) = &sd.certificates {
        for any in set
            .elements()
            .map_err(|e| VerifyError::Structure(format!("certificates: {e}")))?
        {
            // CertificateChoices: only plain X.509 certificates are used; other
            // choices (attribute certificates, [n]-tagged) and undecodable entries are skipped.
            if let Some(c) = any.to_der().ok().and_then(|d| CertDer::from_der(&d).ok()) {
                certificates.push(c);
            }
        }
    }
    Ok(ParsedToken {
        tst,
        tst_der,
        signer_info,
        certificates,
    })
}

/// Verify a TimeStampResp or bare token against `opts`.
pub fn verify(bytes: &[u8], opts: &VerifyOptions) -> Result<Verified, VerifyError> {
    let token = extract_token(bytes)?;
    let status = match TimeStampResp::from_der(bytes) {
        Ok(r) => match PkiStatus::from_int(&r.status.status) {
            Some(PkiStatus::GrantedWithMods) => "grantedWithMods",
            _ => "granted",
        },
        Err(_) => "token",
    };
    let p = parse_token(&token)?;
    let mut warnings = Vec::new();

    // 2. imprint, nonce, policy
    let imprint_oid = p.tst.message_imprint.hash_algorithm.oid;
    let hash_name = sig::digest_name(&imprint_oid)
        .ok_or_else(|| VerifyError::UnsupportedImprintAlg(imprint_oid.to_string()))?;
    if imprint_oid == std_oids::SHA1 {
        warnings.push("imprint uses SHA-1, which is not collision resistant".to_string());
    }
    let imprint = p.tst.message_imprint.hashed_message.as_bytes();
    let expected = match &opts.expected {
        Expected::Data(d) => sig::digest(&imprint_oid, d)
            .ok_or_else(|| VerifyError::UnsupportedImprintAlg(imprint_oid.to_string()))?,
        Expected::Digest(d) => d.clone(),
    };
    if imprint != expected.as_slice() {
        return Err(VerifyError::ImprintMismatch {
            token_alg: hash_name.to_string(),
            got: hex::encode(imprint),
            expected: hex::encode(&expected),
        });
    }
    if let Some(n) = &opts.nonce {
        let got = p.tst.nonce.as_ref().map(int_magnitude);
        if got.as_deref() != Some(strip_zeros(n)) {
            return Err(VerifyError::NonceMismatch {
                got: got.map(hex::encode).unwrap_or_else(|| "none".into()),
                expected: hex::encode(strip_zeros(n)),
            });
        }
    }
    if let Some(policy) = &opts.policy {
        if &p.tst.policy != policy {
            return Err(VerifyError::PolicyMismatch {
                got: p.tst.policy.to_string(),
                expected: policy.to_string(),
            });
        }
    }

    // 3. signed attributes
    let si = &p.signer_info;
    let signed_attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| VerifyError::SignedAttributes("absent (RFC 3161 requires them)".into()))?;
    let attrs: Vec<Attribute> = signed_attrs
        .elements()
        .and_then(|els| els.iter().map(|a| a.decode_as::<Attribute>()).collect())
        .map_err(|e| VerifyError::SignedAttributes(format!("malformed: {e}")))?;
    let single = |oid: ObjectIdentifier, name: &str| -> Result<Option<der::Any>, VerifyError> {
        let found: Vec<&Attribute> = attrs.iter().filter(|a| a.oid == oid).collect();
        match found.as_slice() {
            [] => Ok(None),
            [a] => {
                let vals = a
                    .values
                    .elements()
                    .map_err(|e| VerifyError::SignedAttributes(e.to_string()))?;
                match vals.as_slice() {
                    [v] => Ok(Some(v.clone())),
                    _ => Err(VerifyError::SignedAttributes(format!(
                        "{name} must have exactly one value"
                    ))),
                }
            }
            _ => Err(VerifyError::SignedAttributes(format!(
                "{name} appears more than once"
            ))),
        }
    };
    let content_type = single(std_oids::ATTR_CONTENT_TYPE, "contentType")?
        .ok_or_else(|| VerifyError::SignedAttributes("contentType missing".into()))?;
    let ct: ObjectIdentifier = content_type
        .decode_as()
        .map_err(|e| VerifyError::SignedAttributes(format!("contentType: {e}")))?;
    if ct != std_oids::CT_TST_INFO {
        return Err(VerifyError::SignedAttributes(format!(
            "contentType is {ct}, not id-ct-TSTInfo"
        )));
    }
    let md = single(std_oids::ATTR_MESSAGE_DIGEST, "messageDigest")?
        .ok_or_else(|| VerifyError::SignedAttributes("messageDigest missing".into()))?;
    let md: der::asn1::OctetString = md
        .decode_as()
        .map_err(|e| VerifyError::SignedAttributes(format!("messageDigest: {e}")))?;
    let digest_oid = si.digest_alg.oid;
    let content_digest = sig::digest(&digest_oid, &p.tst_der).ok_or_else(|| {
        VerifyError::SignedAttributes(format!("unsupported digest algorithm {digest_oid}"))
    })?;
    if md.as_bytes() != content_digest.as_slice() {
        return Err(VerifyError::MessageDigestMismatch);
    }

    // 4. signer certificate by sid
    let candidates: Vec<&CertDer> = p
        .certificates
        .iter()
        .chain(opts.extra_certs.iter())
        .chain(opts.anchors.iter())
        .collect();
    let signer_entry = find_signer(&si.sid, &candidates)
        .ok_or_else(|| VerifyError::SignerCertificateNotFound(describe_sid(&si.sid)))?;
    let signer = &signer_entry.cert;
    let signer_der = signer_entry.der.clone();

    // 5. ESSCertIDv2 / ESSCertID
    if let Some(v2) = single(
        std_oids::ATTR_SIGNING_CERTIFICATE_V2,
        "signingCertificateV2",
    )? {
        let sc: SigningCertificateV2 = v2.decode_as().map_err(|e| {
            VerifyError::SigningCertificate(format!("malformed signingCertificateV2: {e}"))
        })?;
        let first = first_cert_id(&sc.certs, "signingCertificateV2")?;
        let alg = match &first.hash_algorithm {
            None => std_oids::SHA256,
            Some(a) => a.oid,
        };
        let h = sig::digest(&alg, &signer_der)
            .ok_or_else(|| VerifyError::SigningCertificate(format!("unsupported hash {alg}")))?;
        let issuer_serial = first.issuer_serial.as_ref();
        check_cert_id("ESSCertIDv2", &first.cert_hash, &h, issuer_serial, signer)?;
    } else if let Some(v1) = single(std_oids::ATTR_SIGNING_CERTIFICATE, "signingCertificate")? {
        let sc: SigningCertificate = v1.decode_as().map_err(|e| {
            VerifyError::SigningCertificate(format!("malformed signingCertificate: {e}"))
        })?;
        let first = first_cert_id(&sc.certs, "signingCertificate")?;
        let h = sig::digest(&std_oids::SHA1, &signer_der).unwrap_or_default();
        let issuer_serial = first.issuer_serial.as_ref();
        check_cert_id("ESSCertID", &first.cert_hash, &h, issuer_serial, signer)?;
        warnings.push(
            "legacy signingCertificate (ESSCertID, SHA-1) instead of RFC 5816 signingCertificateV2"
                .into(),
        );
    } else {
        return Err(VerifyError::SigningCertificate(
            "neither signingCertificateV2 nor signingCertificate is present".into(),
        ));
    }

    // 6. signature over DER(SignedAttributes) with the SET OF tag
    let message = signed_attrs
        .to_der()
        .map_err(|e| VerifyError::Structure(e.to_string()))?;
    let signature = si.signature.as_bytes();
    let spki = &signer.tbs_certificate.subject_public_key_info;
    let sig_alg_name = if si.signature_algorithm.oid == oid::frost_secp256k1_sha256() {
        if si.signature_algorithm.parameters.is_some() {
            return Err(VerifyError::Signature(SignatureError::BadParameters(
                "FROST(secp256k1, SHA-256) takes no parameters",
            )));
        }
        if !crate::threshold::keys::is_secp256k1_spki(spki) {
            return Err(VerifyError::Signature(SignatureError::UnsupportedCurve(
                "FROST(secp256k1, SHA-256) needs a secp256k1 certificate key".into(),
            )));
        }
        let vk = verifying_key_from_sec1(spki.subject_public_key.raw_bytes())
            .ok_or(VerifyError::Signature(SignatureError::MalformedKey))?;
        if signature.len() != crate::tsp::token::FROST_SIGNATURE_LEN {
            return Err(VerifyError::Signature(SignatureError::MalformedSignature));
        }
        if !verify_frost(&vk, &message, signature) {
            return Err(VerifyError::Signature(SignatureError::Invalid));
        }
        "FROST(secp256k1, SHA-256)".to_string()
    } else {
        // RFC 8419 §3.1: with Ed25519 the digestAlgorithm (which also computed the
        // messageDigest attribute) MUST be id-sha512.
        if si.signature_algorithm.oid == std_oids::ED25519 && digest_oid != std_oids::SHA512 {
            return Err(VerifyError::Signature(SignatureError::BadParameters(
                "Ed25519 in CMS needs digestAlgorithm SHA-512 (RFC 8419 §3.1)",
            )));
        }
        let alg = spki::AlgorithmIdentifierOwned {
            oid: si.signature_algorithm.oid,
            parameters: si.signature_algorithm.parameters.clone(),
        };
        sig::verify_signature(&alg, Some(&digest_oid), spki, &message, signature)
            .map_err(VerifyError::Signature)?;
        if alg.oid == std_oids::ED25519 {
            "Ed25519 (RFC 8032; FROST(Ed25519, SHA-512) or any Ed25519 signer)".to_string()
        } else {
            alg.oid.to_string()
        }
    };

    // 7. chain and TSA certificate profile
    let at = opts.at.unwrap_or_else(|| p.tst.gen_time.to_system_time());
    let pool: Vec<&[u8]> = p
        .certificates
        .iter()
        .chain(opts.extra_certs.iter())
        .map(|c| c.der.as_slice())
        .collect();
    let anchors: Vec<&[u8]> = opts.anchors.iter().map(|c| c.der.as_slice()).collect();
    let path = chain::build_chain_der(&signer_der, &pool, &anchors, &ChainOptions::at(at))
        .map_err(VerifyError::Chain)?;
    chain::check_timestamping_leaf(signer).map_err(VerifyError::TsaCertificate)?;

    // 8. time evidence (frostamp tokens): genTime backed by Roughtime replies bound to
    // this request's imprint and nonce.
    let time_evidence = check_time_evidence(&p, &attrs, opts)?;
    if time_evidence.is_none()
        && (si.signature_algorithm.oid == crate::oid::frost_secp256k1_sha256()
            || si.signature_algorithm.oid == std_oids::ED25519)
    {
        warnings.push(
            "no time evidence: genTime rests on the signers' clocks only (an in-process development TSA)".to_string(),
        );
    }

    let checked_at = crate::tsp::time::GenTime::from_unix_duration(
        at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
    )
    .map(|t| t.to_rfc3339())
    .unwrap_or_default();
    Ok(Verified {
        status: status.to_string(),
        policy: p.tst.policy.to_string(),
        hash_algorithm: hash_name.to_string(),
        imprint: hex::encode(imprint),
        serial: hex::encode(p.tst.serial_number.as_bytes()),
        gen_time: p.tst.gen_time.to_rfc3339(),
        accuracy: p.tst.accuracy.as_ref().map(describe_accuracy),
        nonce: p.tst.nonce.as_ref().map(|n| hex::encode(int_magnitude(n))),
        tsa: p.tst.tsa.as_ref().map(describe_general_name),
        signature_algorithm: sig_alg_name,
        signer: signer.tbs_certificate.subject.to_string(),
        chain: path
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect(),
        checked_at,
        warnings,
        time_evidence,
        path,
    })
}

/// The time-evidence attribute, if present, checked against `opts.time` (or the build's
/// pinned servers): the leaf from the TSTInfo's imprint and nonce, the path, every
/// reply; genTime must not be earlier than the evidence allows.
fn check_time_evidence(
    p: &ParsedToken,
    attrs: &[Attribute],
    opts: &VerifyOptions,
) -> Result<Option<crate::time::evidence::TimeClaim>, VerifyError> {
    use crate::time::evidence::{self, TimeEvidence};
    let found: Vec<&Attribute> = attrs
        .iter()
        .filter(|a| a.oid == crate::oid::time_evidence_attr())
        .collect();
    let attr = match found.as_slice() {
        [] => return Ok(None),
        [a] => a,
        _ => {
            return Err(VerifyError::SignedAttributes(
                "time evidence appears more than once".into(),
            ))
        }
    };
    let values = attr
        .values
        .elements()
        .map_err(|e| VerifyError::SignedAttributes(e.to_string()))?;
    let [value] = values.as_slice() else {
        return Err(VerifyError::SignedAttributes(
            "time evidence must have exactly one value".into(),
        ));
    };
    let der = value
        .to_der()
        .map_err(|e| VerifyError::SignedAttributes(e.to_string()))?;
    let ev = TimeEvidence::from_der_bounded(&der).map_err(VerifyError::TimeEvidence)?;
    let imprint = p
        .tst
        .message_imprint
        .to_der()
        .map_err(|e| VerifyError::Structure(e.to_string()))?;
    let nonce = p
        .tst
        .nonce
        .as_ref()
        .map(|n| n.to_der())
        .transpose()
        .map_err(|e| VerifyError::Structure(e.to_string()))?;
    let leaf = evidence::leaf(&imprint, nonce.as_deref());
    let pinned;
    let policy = match &opts.time {
        Some(p) => p,
        None => {
            pinned = evidence::pinned_policy();
            &pinned
        }
    };
    let claim = evidence::check(policy, &leaf, &ev).map_err(VerifyError::TimeEvidence)?;
    let gen_time = p.tst.gen_time.unix_duration();
    let floor = std::time::Duration::from_secs(claim.gen_time_secs);
    if gen_time < floor {
        return Err(VerifyError::Backdated {
            gen_time: p.tst.gen_time.to_rfc3339(),
            floor: crate::tsp::time::GenTime::from_unix_duration(floor)
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| format!("{} s", claim.gen_time_secs)),
        });
    }
    Ok(Some(claim))
}

fn find_signer<'a>(
    sid: &cms::signed_data::SignerIdentifier,
    candidates: &[&'a CertDer],
) -> Option<&'a CertDer> {
    use cms::signed_data::SignerIdentifier as Sid;
    candidates.iter().copied().find(|entry| {
        let c = &entry.cert;
        match sid {
            Sid::IssuerAndSerialNumber(ias) => {
                c.tbs_certificate.serial_number == ias.serial_number
                    && c.tbs_certificate.issuer.to_der().ok() == ias.issuer.to_der().ok()
            }
            Sid::SubjectKeyIdentifier(ski) => {
                subject_key_id(c).as_deref() == Some(ski.0.as_bytes())
            }
        }
    })
}

fn subject_key_id(c: &Certificate) -> Option<Vec<u8>> {
    use const_oid::AssociatedOid;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let exts = c.tbs_certificate.extensions.as_ref()?;
    let e = exts
        .iter()
        .find(|e| e.extn_id == SubjectKeyIdentifier::OID)?;
    let ski = SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok()?;
    Some(ski.0.as_bytes().to_vec())
}

fn describe_sid(sid: &cms::signed_data::SignerIdentifier) -> String {
    use cms::signed_data::SignerIdentifier as Sid;
    match sid {
        Sid::IssuerAndSerialNumber(ias) => format!(
            "issuer \"{}\" serial {}",
            ias.issuer,
            hex::encode(ias.serial_number.as_bytes())
        ),
        Sid::SubjectKeyIdentifier(ski) => {
            format!("subjectKeyIdentifier {}", hex::encode(ski.0.as_bytes()))
        }
    }
}

/// The first certificate ID of the `name` attribute: the one that names the signer.
fn first_cert_id<'c, T>(certs: &'c [T], name: &str) -> Result<&'c T, VerifyError> {
    certs
        .first()
        .ok_or_else(|| VerifyError::SigningCertificate(format!("empty {name}")))
}

/// The certificate ID `what` names `signer`: its hash is `hash` (of the signer's DER)
/// and its issuerSerial, if present, is the signer's.
fn check_cert_id(
    what: &str,
    cert_hash: &der::asn1::OctetString,
    hash: &[u8],
    issuer_serial: Option<&crate::tsp::asn1::IssuerSerial>,
    signer: &Certificate,
) -> Result<(), VerifyError> {
    if cert_hash.as_bytes() != hash {
        return Err(VerifyError::SigningCertificate(format!(
            "{what} hash does not match the certificate named by the SignerInfo"
        )));
    }
    check_issuer_serial(issuer_serial, signer)
}

fn check_issuer_serial(
    is: Option<&crate::tsp::asn1::IssuerSerial>,
    cert: &Certificate,
) -> Result<(), VerifyError> {
    let Some(is) = is else { return Ok(()) };
    if strip_zeros(is.serial_number.as_bytes())
        != strip_zeros(cert.tbs_certificate.serial_number.as_bytes())
    {
        return Err(VerifyError::SigningCertificate(
            "issuerSerial serial number differs from the signer certificate".into(),
        ));
    }
    let issuer_der = cert.tbs_certificate.issuer.to_der().ok();
    let named = is
        .issuer
        .iter()
        .any(|g| matches!(g, GeneralName::DirectoryName(n) if n.to_der().ok() == issuer_der));
    if !named {
        return Err(VerifyError::SigningCertificate(
            "issuerSerial issuer differs from the signer certificate".into(),
        ));
    }
    Ok(())
}

fn int_magnitude(i: &Int) -> Vec<u8> {
    strip_zeros(i.as_bytes()).to_vec()
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

fn describe_accuracy(a: &x509_tsp::Accuracy) -> String {
    let mut parts = Vec::new();
    if let Some(s) = a.seconds {
        parts.push(format!("{s} s"));
    }
    if let Some(m) = a.millis {
        parts.push(format!("{m} ms"));
    }
    if let Some(u) = a.micros {
        parts.push(format!("{u} µs"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        format!("±{}", parts.join(" "))
    }
}

fn describe_general_name(any: &der::Any) -> String {
    match any.to_der().and_then(|d| GeneralName::from_der(&d)) {
        Ok(GeneralName::DirectoryName(n)) => n.to_string(),
        Ok(GeneralName::DnsName(d)) => d.to_string(),
        Ok(GeneralName::UniformResourceIdentifier(u)) => u.to_string(),
        Ok(GeneralName::Rfc822Name(e)) => e.to_string(),
        _ => "(unrecognized GeneralName)".into(),
    }
}
