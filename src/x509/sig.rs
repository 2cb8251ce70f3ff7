//! Signature verification selected by an `AlgorithmIdentifier`.
//!
//! One entry point, [`verify_signature`], serves both X.509 certificate signatures
//! (RFC 5280 §4.1.1.2 `signatureAlgorithm`) and CMS `SignerInfo` signatures
//! (RFC 5652 §5.3 `signatureAlgorithm` + `digestAlgorithm`). Supported schemes:
//!
//! | scheme | identifiers | specification |
//! |---|---|---|
//! | RSASSA-PKCS1-v1_5 | `sha{1,256,384,512}WithRSAEncryption`, or `rsaEncryption` + digest | RFC 8017 §8.2, RFC 4055 §5, RFC 3370 §3.2 |
//! | RSASSA-PSS | `id-RSASSA-PSS` with `RSASSA-PSS-params` (SHA-256/384/512, MGF1 with the same hash) | RFC 8017 §8.1, RFC 4055 §3.1 |
//! | ECDSA | `ecdsa-with-SHA{256,384,512}`, or `id-ecPublicKey` + digest | RFC 5758 §3.2, RFC 5480 §2.1.1, RFC 5753 §2.1.1 |
//! | Ed25519 (pure) | `id-Ed25519`, parameters absent, key `id-Ed25519` | RFC 8032 §5.1.7, RFC 8410 §3, RFC 8419 §3.1 |
//!
//! ECDSA curves: P-256, P-384 and secp256k1, taken from the key's `namedCurve`
//! (RFC 5480 §2.1.1.1). The message hash is taken from the *signature* algorithm and may
//! differ from the curve's "natural" hash (e.g. P-256 with SHA-384); the digest is then
//! truncated or left-padded to the curve order as SEC 1 §4.1.4 / FIPS 186-5 §6.4.2 require.
//!
//! # SHA-1 policy
//!
//! SHA-1 is accepted **only** for RSASSA-PKCS1-v1_5 (`sha1WithRSAEncryption`, or
//! `rsaEncryption` with a SHA-1 digest algorithm), because long-lived RFC 3161 TSAs and
//! their CA certificates still carry such signatures. SHA-1 with ECDSA (`ecdsa-with-SHA1`,
//! or `id-ecPublicKey` + SHA-1) and RSASSA-PSS with SHA-1 (including PSS with absent
//! parameters, whose RFC 4055 §3.1 defaults are SHA-1) are refused with
//! [`SignatureError::Sha1Refused`]: no legitimate signer needs them and SHA-1 collision
//! attacks (SHAttered, 2017) make them a liability.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Tagged};
use rsa::pkcs1::{DecodeRsaPublicKey, RsaPssParams};
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};

/// `secp256k1` (SEC 2 §2.4.1; RFC 5480 does not list it, SEC 2 / RFC 8812 do).
pub const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// `id-Ed25519` (RFC 8410 §3): key and signature algorithm.
pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// `ecdsa-with-SHA1` (RFC 3279 §2.2.3), recognised only to be refused.
const ECDSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature algorithm (or, for bare key-type identifiers, the digest
    /// algorithm) is not one this module implements. Carries the dotted OID.
    #[error("unsupported signature or digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The key's elliptic curve is not P-256, P-384 or secp256k1, or is given by
    /// explicit parameters instead of a `namedCurve` (RFC 5480 §2.1.1 forbids those).
    #[error("unsupported elliptic curve {0}")]
    UnsupportedCurve(String),
    /// The SubjectPublicKeyInfo does not contain a decodable key.
    #[error("malformed public key")]
    MalformedKey,
    /// The key type does not match the signature algorithm (e.g. an EC key with
    /// `sha256WithRSAEncryption`).
    #[error("signature algorithm {algorithm} cannot be used with a {key} key")]
    KeyAlgorithmMismatch {
        /// Dotted OID of the signature algorithm.
        algorithm: String,
        /// Dotted OID of the SubjectPublicKeyInfo algorithm.
        key: String,
    },
    /// The signature value cannot be decoded (e.g. not a DER `ECDSA-Sig-Value`).
    #[error("malformed signature value")]
    MalformedSignature,
    /// The algorithm parameters are absent, undecodable or not allowed.
    #[error("bad algorithm parameters: {0}")]
    BadParameters(&'static str),
    /// SHA-1 was requested with a scheme for which it is refused (see the module docs).
    #[error("SHA-1 is refused with {0} (only RSASSA-PKCS1-v1_5 accepts SHA-1)")]
    Sha1Refused(&'static str),
    /// Everything decoded but the signature does not verify.
    #[error("signature does not verify")]
    Invalid,
}

/// The hash functions this module knows (FIPS 180-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            rfc5912::ID_SHA_1 => Some(Self::Sha1),
            rfc5912::ID_SHA_256 => Some(Self::Sha256),
            rfc5912::ID_SHA_384 => Some(Self::Sha384),
            rfc5912::ID_SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Hashes `data` with the digest algorithm `oid` (id-sha1, id-sha256, id-sha384,
/// id-sha512; RFC 5912 / RFC 3370 §2 / RFC 5754 §2). `None` for any other OID.
pub fn digest(oid: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    Hash::from_oid(oid).map(|h| h.digest(data))
}

/// Human-readable name ("SHA-256", ...) of a digest algorithm OID supported by [`digest`].
pub fn digest_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    Hash::from_oid(oid).map(Hash::name)
}

/// A fully resolved signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    RsaPkcs1(Hash),
    RsaPss {
        hash: Hash,
        salt_len: usize,
    },
    Ecdsa(Hash),
    /// PureEdDSA over the message itself (no pre-hash; in CMS the message is the DER
    /// of the signed attributes, RFC 8419 §3.1).
    Ed25519,
}

/// Verifies `signature` over `message` with the public key `spki`.
///
/// `algorithm` is an X.509 `signatureAlgorithm` (RFC 5280 §4.1.1.2) or a CMS
/// `SignerInfo.signatureAlgorithm` (RFC 5652 §5.3). When it names only the key type
/// (`rsaEncryption`, RFC 3370 §3.2; `id-ecPublicKey`, accepted as in RFC 5753 §2.1.1),
/// the hash is taken from `digest_hint` (the CMS `SignerInfo.digestAlgorithm`);
/// otherwise `digest_hint` is ignored. `message` is the data that was signed (the
/// TBSCertificate DER, or the DER of the CMS signed attributes); it is hashed here.
pub fn verify_signature(
    algorithm: &AlgorithmIdentifierOwned,
    digest_hint: Option<&ObjectIdentifier>,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    match resolve_scheme(algorithm, digest_hint)? {
        Scheme::RsaPkcs1(hash) => {
            let key = rsa_key(algorithm, spki, false)?;
            verify_rsa_pkcs1(&key, hash, message, signature)
        }
        Scheme::RsaPss { hash, salt_len } => {
            let key = rsa_key(algorithm, spki, true)?;
            check_pss_key_params(spki, hash, salt_len)?;
            verify_rsa_pss(&key, hash, salt_len, message, signature)
        }
        Scheme::Ecdsa(hash) => verify_ecdsa(algorithm, spki, hash, message, signature),
        Scheme::Ed25519 => verify_ed25519(algorithm, spki, message, signature),
    }
}

/// RFC 8032 §5.1.7 verification (ring, which refuses non-canonical S) with an RFC 8410
/// key: algorithm id-Ed25519 with absent parameters, 32 bytes.
fn verify_ed25519(
    algorithm: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if spki.algorithm.oid != ED25519 {
        return Err(mismatch(algorithm, spki));
    }
    if spki.algorithm.parameters.is_some() {
        return Err(SignatureError::BadParameters(
            "an id-Ed25519 key takes no parameters (RFC 8410 §3)",
        ));
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .filter(|k| k.len() == 32)
        .ok_or(SignatureError::MalformedKey)?;
    if signature.len() != 64 {
        return Err(SignatureError::MalformedSignature);
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// True if the parameters are absent or an ASN.1 NULL.
fn absent_or_null(params: Option<&der::asn1::Any>) -> bool {
    params.is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty())
}

/// Maps a signature algorithm identifier (plus the CMS digest algorithm) to a scheme.
fn resolve_scheme(
    algorithm: &AlgorithmIdentifierOwned,
    digest_hint: Option<&ObjectIdentifier>,
) -> Result<Scheme, SignatureError> {
    let params = algorithm.parameters.as_ref();
    let hint = || -> Result<Hash, SignatureError> {
        let oid = digest_hint.ok_or(SignatureError::BadParameters(
            "a key-type signature algorithm needs a digest algorithm",
        ))?;
        Hash::from_oid(oid).ok_or_else(|| SignatureError::UnsupportedAlgorithm(oid.to_string()))
    };
    // RFC 4055 §5 / RFC 3279 §2.2.1: PKCS#1 v1.5 identifiers carry NULL parameters
    // (absent is tolerated, as many encoders omit it).
    let pkcs1 = |hash: Hash| {
        if absent_or_null(params) {
            Ok(Scheme::RsaPkcs1(hash))
        } else {
            Err(SignatureError::BadParameters(
                "RSASSA-PKCS1-v1_5 parameters must be NULL",
            ))
        }
    };
    // RFC 5758 §3.2: ecdsa-with-SHA2 parameters MUST be absent (NULL tolerated).
    let ecdsa = |hash: Hash| {
        if hash == Hash::Sha1 {
            Err(SignatureError::Sha1Refused("ECDSA"))
        } else if absent_or_null(params) {
            Ok(Scheme::Ecdsa(hash))
        } else {
            Err(SignatureError::BadParameters(
                "ECDSA signature algorithm parameters must be absent",
            ))
        }
    };
    match algorithm.oid {
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => pkcs1(Hash::Sha1),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => pkcs1(Hash::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => pkcs1(Hash::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => pkcs1(Hash::Sha512),
        rfc5912::RSA_ENCRYPTION => pkcs1(hint()?),
        rfc5912::ID_RSASSA_PSS => {
            let (hash, salt_len) = pss_params(params)?;
            Ok(Scheme::RsaPss { hash, salt_len })
        }
        ECDSA_WITH_SHA1 => Err(SignatureError::Sha1Refused("ECDSA")),
        rfc5912::ECDSA_WITH_SHA_256 => ecdsa(Hash::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => ecdsa(Hash::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => ecdsa(Hash::Sha512),
        rfc5912::ID_EC_PUBLIC_KEY => ecdsa(hint()?),
        // RFC 8410 §3: the parameters MUST be absent.
        ED25519 if params.is_none() => Ok(Scheme::Ed25519),
        ED25519 => Err(SignatureError::BadParameters(
            "id-Ed25519 parameters must be absent (RFC 8410 §3)",
        )),
        other => Err(SignatureError::UnsupportedAlgorithm(other.to_string())),
    }
}

/// Decodes `RSASSA-PSS-params` (RFC 4055 §3.1 / RFC 8017 Appendix A.2.3) and returns
/// the hash and salt length. MGF1 must use the message hash (the `rsa` crate, and every
/// profile in RFC 4055 §3.1, tie the two); the trailer field must be 1 (`trailerFieldBC`).
fn pss_params(params: Option<&der::asn1::Any>) -> Result<(Hash, usize), SignatureError> {
    // Absent parameters mean "all defaults" = SHA-1, MGF1-SHA-1, salt 20 (RFC 4055 §3.1).
    let params = params.ok_or(SignatureError::Sha1Refused(
        "RSASSA-PSS (default parameters)",
    ))?;
    let bytes = params
        .to_der()
        .map_err(|_| SignatureError::BadParameters("undecodable RSASSA-PSS-params"))?;
    let p = RsaPssParams::from_der(&bytes)
        .map_err(|_| SignatureError::BadParameters("undecodable RSASSA-PSS-params"))?;
    let hash = Hash::from_oid(&p.hash.oid)
        .ok_or_else(|| SignatureError::UnsupportedAlgorithm(p.hash.oid.to_string()))?;
    if hash == Hash::Sha1 {
        return Err(SignatureError::Sha1Refused("RSASSA-PSS"));
    }
    if !hash_params_ok(p.hash.parameters) {
        return Err(SignatureError::BadParameters(
            "RSASSA-PSS hash parameters must be absent or NULL",
        ));
    }
    if p.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(SignatureError::UnsupportedAlgorithm(
            p.mask_gen.oid.to_string(),
        ));
    }
    let mgf_hash = p.mask_gen.parameters.ok_or(SignatureError::BadParameters(
        "MGF1 without a hash algorithm",
    ))?;
    if mgf_hash.oid != hash.oid() || !hash_params_ok(mgf_hash.parameters) {
        return Err(SignatureError::BadParameters(
            "MGF1 hash differs from the message hash",
        ));
    }
    // `trailer_field` only decodes for trailerFieldBC (1); anything else failed above.
    Ok((hash, usize::from(p.salt_len)))
}

fn hash_params_ok(params: Option<AnyRef<'_>>) -> bool {
    params.is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty())
}

/// RFC 4055 §3.3 / RFC 8017 §8.1: if the key itself is an `id-RSASSA-PSS` key with
/// parameters, the signature must use the same hash and at least its salt length.
fn check_pss_key_params(
    spki: &SubjectPublicKeyInfoOwned,
    hash: Hash,
    salt_len: usize,
) -> Result<(), SignatureError> {
    if spki.algorithm.oid != rfc5912::ID_RSASSA_PSS || spki.algorithm.parameters.is_none() {
        return Ok(());
    }
    let (key_hash, key_salt) = pss_params(spki.algorithm.parameters.as_ref())?;
    if key_hash != hash || salt_len < key_salt {
        return Err(SignatureError::BadParameters(
            "RSASSA-PSS parameters violate the key's restrictions",
        ));
    }
    Ok(())
}

fn mismatch(
    algorithm: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
) -> SignatureError {
    SignatureError::KeyAlgorithmMismatch {
        algorithm: algorithm.oid.to_string(),
        key: spki.algorithm.oid.to_string(),
    }
}

/// Decodes an RSA public key (RFC 8017 Appendix A.1.1 `RSAPublicKey` inside an
/// `rsaEncryption` SPKI, RFC 3279 §2.3.1; or an `id-RSASSA-PSS` SPKI for PSS, RFC 4055 §1.2).
fn rsa_key(
    algorithm: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    pss: bool,
) -> Result<RsaPublicKey, SignatureError> {
    let key_oid = spki.algorithm.oid;
    let ok = key_oid == rfc5912::RSA_ENCRYPTION || (pss && key_oid == rfc5912::ID_RSASSA_PSS);
    if !ok {
        return Err(mismatch(algorithm, spki));
    }
    let bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or(SignatureError::MalformedKey)?;
    RsaPublicKey::from_pkcs1_der(bytes).map_err(|_| SignatureError::MalformedKey)
}

/// The DER `DigestInfo` (RFC 8017 §9.2 step 2) prefix that precedes the hash value.
fn digest_info_prefix(hash: Hash) -> Result<Vec<u8>, SignatureError> {
    #[derive(der::Sequence)]
    struct DigestInfo<'a> {
        algorithm: AlgorithmIdentifierRef<'a>,
        digest: OctetStringRef<'a>,
    }
    let len = hash.output_len();
    let zeros = vec![0u8; len];
    let info = DigestInfo {
        algorithm: AlgorithmIdentifierRef {
            oid: hash.oid(),
            parameters: Some(AnyRef::NULL),
        },
        digest: OctetStringRef::new(&zeros)
            .map_err(|_| SignatureError::BadParameters("digest too long"))?,
    };
    let mut der = info
        .to_der()
        .map_err(|_| SignatureError::BadParameters("cannot encode DigestInfo"))?;
    der.truncate(der.len().saturating_sub(len));
    Ok(der)
}

/// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2).
fn verify_rsa_pkcs1(
    key: &RsaPublicKey,
    hash: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let hashed = hash.digest(message);
    let scheme = Pkcs1v15Sign {
        hash_len: Some(hashed.len()),
        prefix: digest_info_prefix(hash)?.into_boxed_slice(),
    };
    key.verify(scheme, &hashed, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2) with MGF1
/// over the message hash and the salt length from the parameters.
fn verify_rsa_pss(
    key: &RsaPublicKey,
    hash: Hash,
    salt_len: usize,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let hashed = hash.digest(message);
    let scheme = match hash {
        Hash::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt_len),
        Hash::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt_len),
        Hash::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt_len),
        Hash::Sha1 => return Err(SignatureError::Sha1Refused("RSASSA-PSS")),
    };
    key.verify(scheme, &hashed, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// ECDSA verification (SEC 1 §4.1.4; RFC 5480 keys, RFC 5758 §3.2 / RFC 3279 §2.2.3
/// DER `ECDSA-Sig-Value` signatures) with the hash chosen by the algorithm.
///
/// secp256k1 signatures with a high `s` are normalised before verification: the `k256`
/// crate insists on low-S (a Bitcoin malleability rule), which X.509 and CMS do not impose.
fn verify_ecdsa(
    algorithm: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    hash: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if spki.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return Err(mismatch(algorithm, spki));
    }
    let curve_params = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or(SignatureError::MalformedKey)?;
    let curve: ObjectIdentifier = curve_params.decode_as().map_err(|_| {
        SignatureError::UnsupportedCurve("explicit or implicit curve parameters".to_owned())
    })?;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or(SignatureError::MalformedKey)?;
    let prehash = hash.digest(message);
    // The same steps on each curve's crate; `$low_s` (secp256k1): normalise `s` first.
    macro_rules! verify_on {
        ($curve:ident $(, $low_s:ident)?) => {{
            let key = $curve::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| SignatureError::MalformedKey)?;
            let sig = $curve::ecdsa::Signature::from_der(signature)
                .map_err(|_| SignatureError::MalformedSignature)?;
            $(let sig = sig.$low_s().unwrap_or(sig);)?
            key.verify_prehash(&prehash, &sig)
                .map_err(|_| SignatureError::Invalid)
        }};
    }
    match curve {
        rfc5912::SECP_256_R_1 => verify_on!(p256),
        rfc5912::SECP_384_R_1 => verify_on!(p384),
        SECP256K1 => verify_on!(k256, normalize_s),
        other => Err(SignatureError::UnsupportedCurve(other.to_string())),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use der::asn1::Any;
    use rsa::pkcs8::EncodePublicKey as _;
    use rsa::RsaPrivateKey;
    use signature::hazmat::PrehashSigner;
    use signature::Signer;
    use std::sync::OnceLock;

    const MSG: &[u8] = b"frostamp test message";

    fn alg(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }

    fn spki_from_der(der: &[u8]) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_der(der).unwrap()
    }

    fn p256_key() -> (p256::ecdsa::SigningKey, SubjectPublicKeyInfoOwned) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        (sk, spki_from_der(der.as_bytes()))
    }

    fn p384_key() -> (p384::ecdsa::SigningKey, SubjectPublicKeyInfoOwned) {
        let sk = p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        (sk, spki_from_der(der.as_bytes()))
    }

    fn k256_key() -> (k256::ecdsa::SigningKey, SubjectPublicKeyInfoOwned) {
        let sk = k256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        (sk, spki_from_der(der.as_bytes()))
    }

    /// One 1024-bit key for all RSA tests (key generation is slow in debug builds).
    fn rsa_key_pair() -> &'static (RsaPrivateKey, SubjectPublicKeyInfoOwned) {
        static KEY: OnceLock<(RsaPrivateKey, SubjectPublicKeyInfoOwned)> = OnceLock::new();
        KEY.get_or_init(|| {
            let sk = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
            let der = sk.to_public_key().to_public_key_der().unwrap();
            (sk, spki_from_der(der.as_bytes()))
        })
    }

    fn pss_alg(
        hash: ObjectIdentifier,
        mgf_hash: ObjectIdentifier,
        salt: u8,
    ) -> AlgorithmIdentifierOwned {
        let params = RsaPssParams {
            hash: AlgorithmIdentifierRef {
                oid: hash,
                parameters: Some(AnyRef::NULL),
            },
            mask_gen: spki::AlgorithmIdentifier {
                oid: rfc5912::ID_MGF_1,
                parameters: Some(AlgorithmIdentifierRef {
                    oid: mgf_hash,
                    parameters: Some(AnyRef::NULL),
                }),
            },
            salt_len: salt,
            trailer_field: Default::default(),
        };
        let der = params.to_der().unwrap();
        AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::from_der(&der).unwrap()),
        }
    }

    #[test]
    fn digest_known_answers_and_names() {
        // FIPS 180-2 Appendix B.1 / C.1 "abc" vectors.
        let sha1 = digest(&rfc5912::ID_SHA_1, b"abc").unwrap();
        assert_eq!(
            hex::encode(sha1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let sha256 = digest(&rfc5912::ID_SHA_256, b"abc").unwrap();
        assert_eq!(
            hex::encode(sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest(&rfc5912::ID_SHA_384, b"abc").unwrap().len(), 48);
        assert_eq!(digest(&rfc5912::ID_SHA_512, b"abc").unwrap().len(), 64);
        assert_eq!(digest(&rfc5912::ID_SHA_224, b"abc"), None);
        assert_eq!(digest_name(&rfc5912::ID_SHA_384), Some("SHA-384"));
        assert_eq!(digest_name(&rfc5912::ECDSA_WITH_SHA_256), None);
    }

    #[test]
    fn digest_info_prefixes_match_rfc8017_note1() {
        // RFC 8017 §9.2, Note 1.
        let expect = [
            (Hash::Sha1, "3021300906052b0e03021a05000414"),
            (Hash::Sha256, "3031300d060960864801650304020105000420"),
            (Hash::Sha384, "3041300d060960864801650304020205000430"),
            (Hash::Sha512, "3051300d060960864801650304020305000440"),
        ];
        for (hash, hex_prefix) in expect {
            assert_eq!(hex::encode(digest_info_prefix(hash).unwrap()), hex_prefix);
        }
    }

    #[test]
    fn ecdsa_p256_and_p384_verify_and_wrong_message_is_invalid() {
        let (sk256, spki256) = p256_key();
        let sig256: p256::ecdsa::DerSignature = sk256.sign(MSG);
        let (sk384, spki384) = p384_key();
        let sig384: p384::ecdsa::DerSignature = sk384.sign(MSG);
        for (oid, spki, sig) in [
            (rfc5912::ECDSA_WITH_SHA_256, &spki256, sig256.as_bytes()),
            (rfc5912::ECDSA_WITH_SHA_384, &spki384, sig384.as_bytes()),
        ] {
            let a = alg(oid);
            assert_eq!(verify_signature(&a, None, spki, MSG, sig), Ok(()), "{oid}");
            assert_eq!(
                verify_signature(&a, None, spki, b"other message", sig),
                Err(SignatureError::Invalid),
                "{oid}"
            );
        }
    }

    #[test]
    fn ecdsa_hash_may_differ_from_curve_hash() {
        // P-256 with SHA-384 and SHA-512 (truncated), P-384 with SHA-256 (left-padded).
        let (sk, spki) = p256_key();
        for (oid, hash) in [
            (rfc5912::ECDSA_WITH_SHA_384, Hash::Sha384),
            (rfc5912::ECDSA_WITH_SHA_512, Hash::Sha512),
        ] {
            let sig: p256::ecdsa::Signature = sk.sign_prehash(&hash.digest(MSG)).unwrap();
            let der = sig.to_der();
            assert_eq!(
                verify_signature(&alg(oid), None, &spki, MSG, der.as_bytes()),
                Ok(())
            );
            // The same signature must not verify under the curve's natural hash.
            assert_eq!(
                verify_signature(
                    &alg(rfc5912::ECDSA_WITH_SHA_256),
                    None,
                    &spki,
                    MSG,
                    der.as_bytes()
                ),
                Err(SignatureError::Invalid)
            );
        }
        let (sk, spki) = p384_key();
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Hash::Sha256.digest(MSG)).unwrap();
        let der = sig.to_der();
        let a = alg(rfc5912::ECDSA_WITH_SHA_256);
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, der.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn bare_ec_public_key_uses_digest_hint() {
        let (sk, spki) = p384_key();
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Hash::Sha512.digest(MSG)).unwrap();
        let der = sig.to_der();
        let a = alg(rfc5912::ID_EC_PUBLIC_KEY);
        assert_eq!(
            verify_signature(&a, Some(&rfc5912::ID_SHA_512), &spki, MSG, der.as_bytes()),
            Ok(())
        );
        assert_eq!(
            verify_signature(&a, Some(&rfc5912::ID_SHA_256), &spki, MSG, der.as_bytes()),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify_signature(&a, None, &spki, MSG, der.as_bytes()),
            Err(SignatureError::BadParameters(_))
        ));
        assert_eq!(
            verify_signature(&a, Some(&rfc5912::ID_SHA_224), &spki, MSG, der.as_bytes()),
            Err(SignatureError::UnsupportedAlgorithm(
                "2.16.840.1.101.3.4.2.4".into()
            ))
        );
    }

    #[test]
    fn secp256k1_verifies_including_high_s() {
        let (sk, spki) = k256_key();
        let sig: k256::ecdsa::Signature = sk.sign(MSG); // SHA-256, low-S
        let a = alg(rfc5912::ECDSA_WITH_SHA_256);
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, sig.to_der().as_bytes()),
            Ok(())
        );
        // (r, n - s) is an equally valid ECDSA signature.
        let high = k256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, high.to_der().as_bytes()),
            Ok(())
        );
        let hint = alg(rfc5912::ID_EC_PUBLIC_KEY);
        assert_eq!(
            verify_signature(
                &hint,
                Some(&rfc5912::ID_SHA_256),
                &spki,
                MSG,
                sig.to_der().as_bytes()
            ),
            Ok(())
        );
        assert_eq!(
            verify_signature(&a, None, &spki, b"y", sig.to_der().as_bytes()),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn ecdsa_rejections_are_typed() {
        let (sk, spki) = p256_key();
        let sig: p256::ecdsa::DerSignature = sk.sign(MSG);
        let sig = sig.as_bytes();
        assert_eq!(
            verify_signature(&alg(ECDSA_WITH_SHA1), None, &spki, MSG, sig),
            Err(SignatureError::Sha1Refused("ECDSA"))
        );
        assert_eq!(
            verify_signature(
                &alg(rfc5912::ID_EC_PUBLIC_KEY),
                Some(&rfc5912::ID_SHA_1),
                &spki,
                MSG,
                sig
            ),
            Err(SignatureError::Sha1Refused("ECDSA"))
        );
        let a = alg(rfc5912::ECDSA_WITH_SHA_256);
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, &sig[..sig.len() - 1]),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, &[]),
            Err(SignatureError::MalformedSignature)
        );
        // Raw r||s instead of DER.
        let raw: p256::ecdsa::Signature = sk.sign(MSG);
        assert_eq!(
            verify_signature(&a, None, &spki, MSG, &raw.to_bytes()),
            Err(SignatureError::MalformedSignature)
        );
        // Parameters on ecdsa-with-SHA256 other than NULL.
        let mut with_params = a.clone();
        with_params.parameters = Some(Any::from(rfc5912::ID_SHA_256));
        assert!(matches!(
            verify_signature(&with_params, None, &spki, MSG, sig),
            Err(SignatureError::BadParameters(_))
        ));
        // Unsupported curve (P-521) and broken point.
        let mut p521 = spki.clone();
        p521.algorithm.parameters = Some(Any::from(rfc5912::SECP_521_R_1));
        assert_eq!(
            verify_signature(&a, None, &p521, MSG, sig),
            Err(SignatureError::UnsupportedCurve("1.3.132.0.35".into()))
        );
        let mut bad_point = spki.clone();
        let mut bytes = bad_point.subject_public_key.raw_bytes().to_vec();
        bytes.truncate(20);
        bad_point.subject_public_key = der::asn1::BitString::from_bytes(&bytes).unwrap();
        assert_eq!(
            verify_signature(&a, None, &bad_point, MSG, sig),
            Err(SignatureError::MalformedKey)
        );
        // RSA algorithm with an EC key.
        assert!(matches!(
            verify_signature(
                &alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
                None,
                &spki,
                MSG,
                sig
            ),
            Err(SignatureError::KeyAlgorithmMismatch { .. })
        ));
        // Ed25519 with an ECDSA key.
        assert!(matches!(
            verify_signature(&alg(ED25519), None, &spki, MSG, sig),
            Err(SignatureError::KeyAlgorithmMismatch { .. })
        ));
        // Unknown algorithm (Ed448).
        assert_eq!(
            verify_signature(
                &alg(ObjectIdentifier::new_unwrap("1.3.101.113")),
                None,
                &spki,
                MSG,
                sig
            ),
            Err(SignatureError::UnsupportedAlgorithm("1.3.101.113".into()))
        );
    }

    /// RFC 8032 §7.1 TEST 2 (one-byte message 0x72), through the SPKI of RFC 8410:
    /// it verifies, and with one bit flipped, another message or parameters it does not.
    #[test]
    fn ed25519_rfc8032_vector_verifies_and_its_twins_do_not() {
        let pk = hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
            .unwrap();
        let sig = hex::decode(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ))
        .unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: alg(ED25519),
            subject_public_key: der::asn1::BitString::from_bytes(&pk).unwrap(),
        };
        assert_eq!(
            verify_signature(&alg(ED25519), None, &spki, &[0x72], &sig),
            Ok(())
        );
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert_eq!(
            verify_signature(&alg(ED25519), None, &spki, &[0x72], &flipped),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_signature(&alg(ED25519), None, &spki, &[0x73], &sig),
            Err(SignatureError::Invalid)
        );
        let with_params = AlgorithmIdentifierOwned {
            oid: ED25519,
            parameters: Some(der::Any::null()),
        };
        assert!(matches!(
            verify_signature(&with_params, None, &spki, &[0x72], &sig),
            Err(SignatureError::BadParameters(_))
        ));
        assert_eq!(
            verify_signature(&alg(ED25519), None, &spki, &[0x72], &sig[..63]),
            Err(SignatureError::MalformedSignature)
        );
    }

    #[test]
    fn rsa_pkcs1_all_hashes_and_bare_rsa_encryption() {
        let (sk, spki) = rsa_key_pair();
        let cases = [
            (rfc5912::SHA_1_WITH_RSA_ENCRYPTION, Hash::Sha1),
            (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Hash::Sha256),
            (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, Hash::Sha384),
            (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, Hash::Sha512),
        ];
        for (oid, hash) in cases {
            // Sign with the RFC 8017 §9.2 Note 1 prefix, independent of our encoder.
            let prefix = match hash {
                Hash::Sha1 => "3021300906052b0e03021a05000414",
                Hash::Sha256 => "3031300d060960864801650304020105000420",
                Hash::Sha384 => "3041300d060960864801650304020205000430",
                Hash::Sha512 => "3051300d060960864801650304020305000440",
            };
            let scheme = Pkcs1v15Sign {
                hash_len: Some(hash.output_len()),
                prefix: hex::decode(prefix).unwrap().into_boxed_slice(),
            };
            let sig = sk.sign(scheme, &hash.digest(MSG)).unwrap();
            let a = AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Any::null()),
            };
            assert_eq!(verify_signature(&a, None, spki, MSG, &sig), Ok(()), "{oid}");
            assert_eq!(
                verify_signature(&alg(oid), None, spki, MSG, &sig),
                Ok(()),
                "absent params"
            );
            assert_eq!(
                verify_signature(&a, None, spki, b"tampered", &sig),
                Err(SignatureError::Invalid)
            );
            let bare = alg(rfc5912::RSA_ENCRYPTION);
            assert_eq!(
                verify_signature(&bare, Some(&hash.oid()), spki, MSG, &sig),
                Ok(())
            );
        }
        let sig = sk
            .sign(
                Pkcs1v15Sign::new::<sha2::Sha256>(),
                &Hash::Sha256.digest(MSG),
            )
            .unwrap();
        let bare = alg(rfc5912::RSA_ENCRYPTION);
        assert!(matches!(
            verify_signature(&bare, None, spki, MSG, &sig),
            Err(SignatureError::BadParameters(_))
        ));
        // A wrong digest hint is simply a non-verifying signature.
        assert_eq!(
            verify_signature(&bare, Some(&rfc5912::ID_SHA_384), spki, MSG, &sig),
            Err(SignatureError::Invalid)
        );
        // Truncated signature.
        let a = alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION);
        assert_eq!(
            verify_signature(&a, None, spki, MSG, &sig[1..]),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn rsa_pss_with_parameters() {
        let (sk, spki) = rsa_key_pair();
        let mut rng = rand::thread_rng();
        let hashed = Hash::Sha384.digest(MSG);
        let sig = sk
            .sign_with_rng(&mut rng, Pss::new_with_salt::<sha2::Sha384>(48), &hashed)
            .unwrap();
        let a = pss_alg(rfc5912::ID_SHA_384, rfc5912::ID_SHA_384, 48);
        assert_eq!(verify_signature(&a, None, spki, MSG, &sig), Ok(()));
        assert_eq!(
            verify_signature(&a, None, spki, b"other", &sig),
            Err(SignatureError::Invalid)
        );
        // Wrong salt length or hash in the parameters.
        let wrong_salt = pss_alg(rfc5912::ID_SHA_384, rfc5912::ID_SHA_384, 32);
        assert_eq!(
            verify_signature(&wrong_salt, None, spki, MSG, &sig),
            Err(SignatureError::Invalid)
        );
        let wrong_hash = pss_alg(rfc5912::ID_SHA_256, rfc5912::ID_SHA_256, 48);
        assert_eq!(
            verify_signature(&wrong_hash, None, spki, MSG, &sig),
            Err(SignatureError::Invalid)
        );
        // MGF1 hash differing from the message hash is refused.
        let mixed = pss_alg(rfc5912::ID_SHA_384, rfc5912::ID_SHA_256, 48);
        assert!(matches!(
            verify_signature(&mixed, None, spki, MSG, &sig),
            Err(SignatureError::BadParameters(_))
        ));
        // SHA-1 PSS, explicit or by default parameters, is refused.
        let sha1 = pss_alg(rfc5912::ID_SHA_1, rfc5912::ID_SHA_1, 20);
        assert!(matches!(
            verify_signature(&sha1, None, spki, MSG, &sig),
            Err(SignatureError::Sha1Refused(_))
        ));
        assert!(matches!(
            verify_signature(&alg(rfc5912::ID_RSASSA_PSS), None, spki, MSG, &sig),
            Err(SignatureError::Sha1Refused(_))
        ));
        // Garbage parameters.
        let garbage = AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::from(rfc5912::ID_SHA_256)),
        };
        assert!(matches!(
            verify_signature(&garbage, None, spki, MSG, &sig),
            Err(SignatureError::BadParameters(_))
        ));
        // SHA-256 and SHA-512 variants.
        for (oid, salt) in [(rfc5912::ID_SHA_256, 32u8), (rfc5912::ID_SHA_512, 20)] {
            let hash = Hash::from_oid(&oid).unwrap();
            let scheme = match hash {
                Hash::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt.into()),
                _ => Pss::new_with_salt::<sha2::Sha512>(salt.into()),
            };
            let sig = sk
                .sign_with_rng(&mut rng, scheme, &hash.digest(MSG))
                .unwrap();
            let a = pss_alg(oid, oid, salt);
            assert_eq!(verify_signature(&a, None, spki, MSG, &sig), Ok(()));
        }
    }

    #[test]
    fn degenerate_rsa_keys_fail_without_panicking() {
        let pss_params = RsaPssParams::new::<sha2::Sha256>(32).to_der().unwrap();
        let algs = [
            alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
            AlgorithmIdentifierOwned {
                oid: rfc5912::ID_RSASSA_PSS,
                parameters: Some(Any::from_der(&pss_params).unwrap()),
            },
        ];
        for n in [&[0u8][..], &[1], &[3], &[0x01, 0x01], &[0x7f; 9]] {
            for e in [&[1u8][..], &[3], &[1, 0, 1]] {
                let key = rsa::pkcs1::RsaPublicKey {
                    modulus: der::asn1::UintRef::new(n).unwrap(),
                    public_exponent: der::asn1::UintRef::new(e).unwrap(),
                };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: rfc5912::RSA_ENCRYPTION,
                        parameters: Some(Any::null()),
                    },
                    subject_public_key: der::asn1::BitString::from_bytes(&key.to_der().unwrap())
                        .unwrap(),
                };
                for len in 0..12 {
                    for a in &algs {
                        let r = verify_signature(a, None, &spki, MSG, &vec![1u8; len]);
                        assert!(
                            matches!(
                                r,
                                Err(SignatureError::MalformedKey | SignatureError::Invalid)
                            ),
                            "{r:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rsa_rejections_are_typed() {
        let (_, spki) = rsa_key_pair();
        let a = alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION);
        let mut broken = spki.clone();
        broken.subject_public_key =
            der::asn1::BitString::from_bytes(&[0x30, 0x03, 0x02, 0x01]).unwrap();
        assert_eq!(
            verify_signature(&a, None, &broken, MSG, &[0u8; 128]),
            Err(SignatureError::MalformedKey)
        );
        let with_oid_params = AlgorithmIdentifierOwned {
            oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::from(rfc5912::ID_SHA_256)),
        };
        assert!(matches!(
            verify_signature(&with_oid_params, None, spki, MSG, &[0u8; 128]),
            Err(SignatureError::BadParameters(_))
        ));
        // ECDSA algorithm with an RSA key.
        assert!(matches!(
            verify_signature(
                &alg(rfc5912::ECDSA_WITH_SHA_256),
                None,
                spki,
                MSG,
                &[0u8; 8]
            ),
            Err(SignatureError::KeyAlgorithmMismatch { .. })
        ));
    }
}
