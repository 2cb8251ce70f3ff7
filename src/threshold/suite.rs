//! The FROST ciphersuites a key epoch may use, chosen at the ceremony (DESIGN §5):
//!
//! - FROST(secp256k1, SHA-256) (RFC 9591 §6.5), the default: the group key is an
//!   id-ecPublicKey/secp256k1 SubjectPublicKeyInfo, tokens carry the 65-byte FROST
//!   signature under the project's signature-algorithm OID, SHA-256 digests;
//! - FROST(Ed25519, SHA-512) (RFC 9591 §6.1): the group key is an id-Ed25519
//!   SubjectPublicKeyInfo (RFC 8410), and an aggregate signature is a standard
//!   RFC 8032 Ed25519 signature, carried in CMS per RFC 8419 (signatureAlgorithm
//!   id-Ed25519, digestAlgorithm and messageDigest SHA-512).
//!
//! Every piece of the threshold code (keys, signer, coordinator, DKG, repair) is
//! generic over [`Suite`]; a node holds one epoch's key as a [`BySuite`] and
//! dispatches once, at the epoch boundary.

use crate::oid::{std_oids, ObjectIdentifier};
use crate::tsp::token::CmsScheme;
use frost_core::{Signature, VerifyingKey};
use spki::SubjectPublicKeyInfoOwned;
use std::any::Any;

pub use frost_ed25519::Ed25519Sha512;
pub use frost_secp256k1::Secp256K1Sha256;

/// The ciphersuite of a key epoch, as the ceremony, the evidence bundle, `/status` and
/// peer messages name it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Ciphersuite {
    /// FROST(secp256k1, SHA-256).
    #[default]
    Secp256k1,
    /// FROST(Ed25519, SHA-512).
    Ed25519,
}

impl Ciphersuite {
    /// Every suite.
    pub const ALL: [Ciphersuite; 2] = [Ciphersuite::Secp256k1, Ciphersuite::Ed25519];

    /// The short name (`secp256k1`, `ed25519`) used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The RFC 9591 name.
    pub const fn rfc_name(self) -> &'static str {
        match self {
            Self::Secp256k1 => "FROST(secp256k1, SHA-256)",
            Self::Ed25519 => "FROST(Ed25519, SHA-512)",
        }
    }

    /// The byte that names the suite in the binary peer messages.
    pub fn wire(self) -> u8 {
        match self {
            Self::Secp256k1 => 1,
            Self::Ed25519 => 2,
        }
    }

    /// What an attestation report binds for a group key `key` of this suite
    /// (`attestation::binding::evidence_binding`'s key input): the key itself for
    /// secp256k1 (as before suites were chosen), a domain-separated tag and the key for
    /// Ed25519, so a report names the suite it attests.
    pub fn binding_input(self, key: &[u8]) -> Vec<u8> {
        match self {
            Self::Secp256k1 => key.to_vec(),
            Self::Ed25519 => {
                let mut v = b"frostamp/v1/ciphersuite/ed25519\0".to_vec();
                v.extend_from_slice(key);
                v
            }
        }
    }

    /// The suite named by a wire byte.
    pub fn from_wire(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.wire() == b)
    }
}

impl core::fmt::Display for Ciphersuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Text that names no ciphersuite.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown ciphersuite {0:?}: use secp256k1 or ed25519")]
pub struct UnknownSuite(pub String);

impl core::str::FromStr for Ciphersuite {
    type Err = UnknownSuite;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSuite(s.to_string()))
    }
}

/// A value made for one suite used where another is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ciphersuite mismatch: this epoch is {expected}, the value is {got}")]
pub struct SuiteMismatch {
    /// The suite of the epoch.
    pub expected: Ciphersuite,
    /// The suite of the value.
    pub got: Ciphersuite,
}

/// A FROST ciphersuite frostamp can run, with what certificates and tokens need of it.
///
/// Its CMS side (signature and digest algorithms, signature length) is the token
/// layer's [`CmsScheme`], which every suite implements.
pub trait Suite: frost_core::Ciphersuite + CmsScheme + Send + Sync + 'static {
    /// Its name.
    const SUITE: Ciphersuite;
    /// Length of one serialized group element (a nonce commitment).
    const ELEMENT_LEN: usize;
    /// Whether `bytes` is in the one encoding of an element frostamp accepts on the
    /// wire (secp256k1: SEC1 compressed, tag 2 or 3; Ed25519: the 32-byte encoding,
    /// whose canonicity frost's deserializer checks).
    fn canonical_element(bytes: &[u8]) -> bool;

    /// The SubjectPublicKeyInfo of a group key (RFC 5480 id-ecPublicKey/secp256k1 with
    /// the uncompressed point, or RFC 8410 id-Ed25519).
    fn spki(key: &VerifyingKey<Self>) -> Option<SubjectPublicKeyInfoOwned>;

    /// The group key in a SubjectPublicKeyInfo of this suite's key type, if it is one.
    fn verifying_key_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<VerifyingKey<Self>>;

    /// `key` as a [`GroupPublicKey`].
    fn public(key: &VerifyingKey<Self>) -> GroupPublicKey;
}

/// A group verifying key of either suite: what a CSR, an evidence bundle and an
/// install check name.
pub type GroupPublicKey = BySuite<VerifyingKey<Secp256K1Sha256>, VerifyingKey<Ed25519Sha512>>;

impl GroupPublicKey {
    /// From the RFC 9591 serialization of a key of `suite`.
    pub fn from_bytes(suite: Ciphersuite, bytes: &[u8]) -> Option<Self> {
        crate::for_suite!(suite, S => VerifyingKey::<S>::deserialize(bytes).ok().map(|k| S::public(&k)))
    }
    /// The group key in a SubjectPublicKeyInfo of either suite's key type.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Self> {
        Secp256K1Sha256::verifying_key_from_spki(spki)
            .map(Self::Secp256k1)
            .or_else(|| Ed25519Sha512::verifying_key_from_spki(spki).map(Self::Ed25519))
    }
    /// The RFC 9591 serialization (33 or 32 bytes).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        crate::with_suite!(self, S, k => k.serialize().ok())
    }
    /// The SubjectPublicKeyInfo.
    pub fn spki(&self) -> Option<SubjectPublicKeyInfoOwned> {
        crate::with_suite!(self, S, k => S::spki(k))
    }
    /// Whether `spki` holds this key (in its suite's key type).
    pub fn matches_spki(&self, spki: &SubjectPublicKeyInfoOwned) -> bool {
        crate::with_suite!(self, S, k => S::verifying_key_from_spki(spki).as_ref() == Some(k))
    }
    /// Whether `signature` over `message` verifies under this key (RFC 9591).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        crate::with_suite!(self, S, k => verify_frost::<S>(k, message, signature))
    }
}

impl CmsScheme for Secp256K1Sha256 {
    const SCHEME_NAME: &'static str = Ciphersuite::Secp256k1.rfc_name();
    const SIGNATURE_LEN: usize = 65;

    fn signature_algorithm() -> ObjectIdentifier {
        crate::oid::frost_secp256k1_sha256()
    }

    fn digest_algorithm() -> ObjectIdentifier {
        std_oids::SHA256
    }

    fn digest(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }
}

impl Suite for Secp256K1Sha256 {
    const SUITE: Ciphersuite = Ciphersuite::Secp256k1;
    const ELEMENT_LEN: usize = 33;

    fn canonical_element(bytes: &[u8]) -> bool {
        // Only the compressed form, which k256 reads canonically: the SEC1 compact
        // form (tag 5) would be a second encoding of the same point.
        bytes.len() == Self::ELEMENT_LEN && matches!(bytes.first(), Some(2 | 3))
    }

    fn spki(key: &VerifyingKey<Self>) -> Option<SubjectPublicKeyInfoOwned> {
        let compressed = key.serialize().ok()?;
        let pk = k256::PublicKey::from_sec1_bytes(&compressed).ok()?;
        let point = k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&pk, false);
        Some(SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: std_oids::EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&std_oids::SECP256K1)),
            },
            subject_public_key: der::asn1::BitString::from_bytes(point.as_bytes()).ok()?,
        })
    }

    fn verifying_key_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<VerifyingKey<Self>> {
        if !is_secp256k1_spki(spki) {
            return None;
        }
        verifying_key_from_sec1(spki.subject_public_key.raw_bytes())
    }

    fn public(key: &VerifyingKey<Self>) -> GroupPublicKey {
        BySuite::Secp256k1(*key)
    }
}

impl CmsScheme for Ed25519Sha512 {
    const SCHEME_NAME: &'static str = Ciphersuite::Ed25519.rfc_name();
    const SIGNATURE_LEN: usize = 64;

    fn signature_algorithm() -> ObjectIdentifier {
        std_oids::ED25519
    }

    fn digest_algorithm() -> ObjectIdentifier {
        std_oids::SHA512
    }

    fn digest(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha512::digest(data).to_vec()
    }
}

impl Suite for Ed25519Sha512 {
    const SUITE: Ciphersuite = Ciphersuite::Ed25519;
    const ELEMENT_LEN: usize = 32;

    fn canonical_element(bytes: &[u8]) -> bool {
        bytes.len() == Self::ELEMENT_LEN
    }

    fn spki(key: &VerifyingKey<Self>) -> Option<SubjectPublicKeyInfoOwned> {
        let raw = key.serialize().ok()?;
        Some(SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: std_oids::ED25519,
                parameters: None,
            },
            subject_public_key: der::asn1::BitString::from_bytes(&raw).ok()?,
        })
    }

    fn verifying_key_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<VerifyingKey<Self>> {
        // RFC 8410 §3: the parameters MUST be absent.
        if spki.algorithm.oid != std_oids::ED25519 || spki.algorithm.parameters.is_some() {
            return None;
        }
        let raw = spki.subject_public_key.as_bytes()?;
        if raw.len() != 32 {
            return None;
        }
        VerifyingKey::deserialize(raw).ok()
    }

    fn public(key: &VerifyingKey<Self>) -> GroupPublicKey {
        BySuite::Ed25519(*key)
    }
}

/// RFC 9591 verification of a serialized signature (R ‖ z) under `key`: §6.5 for
/// secp256k1, §6.1 (which is RFC 8032 Ed25519 verification) for Ed25519.
/// This is the check every frostamp token's signature gets.
pub fn verify_frost<S: Suite>(key: &VerifyingKey<S>, message: &[u8], signature: &[u8]) -> bool {
    Signature::<S>::deserialize(signature)
        .map(|sig| key.verify(message, &sig).is_ok())
        .unwrap_or(false)
}

/// Whether a SubjectPublicKeyInfo is id-ecPublicKey on the secp256k1 named curve
/// (RFC 5480, SEC 2): the only key type a FROST(secp256k1) certificate may carry.
pub fn is_secp256k1_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> bool {
    spki.algorithm.oid == crate::oid::std_oids::EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
            == Some(crate::oid::std_oids::SECP256K1)
}

/// A verifying key from a SEC1 point (compressed or uncompressed) as found in an
/// id-ecPublicKey/secp256k1 SubjectPublicKeyInfo.
pub fn verifying_key_from_sec1(point: &[u8]) -> Option<VerifyingKey<Secp256K1Sha256>> {
    let pk = k256::PublicKey::from_sec1_bytes(point).ok()?;
    let compressed = k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&pk, true);
    VerifyingKey::deserialize(compressed.as_bytes()).ok()
}

/// One value of either suite: how a node holds an epoch's key, and how peer messages
/// carry suite-specific values. Generic code moves in and out with [`BySuite::new`]
/// and [`BySuite::take`] / [`BySuite::get`], which name a mismatch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BySuite<A, B> {
    /// A FROST(secp256k1, SHA-256) value.
    Secp256k1(A),
    /// A FROST(Ed25519, SHA-512) value.
    Ed25519(B),
}

impl<A: 'static, B: 'static> BySuite<A, B> {
    /// Wrap `value`, which must be `A` or `B` (`None` otherwise: a suite frostamp does
    /// not run).
    pub fn new<T: 'static>(value: T) -> Option<Self> {
        let boxed: Box<dyn Any> = Box::new(value);
        match boxed.downcast::<A>() {
            Ok(a) => Some(Self::Secp256k1(*a)),
            Err(other) => other.downcast::<B>().ok().map(|b| Self::Ed25519(*b)),
        }
    }

    /// The suite of the value.
    pub fn suite(&self) -> Ciphersuite {
        match self {
            Self::Secp256k1(_) => Ciphersuite::Secp256k1,
            Self::Ed25519(_) => Ciphersuite::Ed25519,
        }
    }

    /// The value as `T`, or the mismatch.
    pub fn take<T: 'static>(self, expected: Ciphersuite) -> Result<T, SuiteMismatch> {
        let got = self.suite();
        let boxed: Box<dyn Any> = match self {
            Self::Secp256k1(a) => Box::new(a),
            Self::Ed25519(b) => Box::new(b),
        };
        boxed
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| SuiteMismatch { expected, got })
    }

    /// A reference to the value as `T`, or the mismatch.
    pub fn get<T: 'static>(&self, expected: Ciphersuite) -> Result<&T, SuiteMismatch> {
        let any: &dyn Any = match self {
            Self::Secp256k1(a) => a,
            Self::Ed25519(b) => b,
        };
        any.downcast_ref::<T>().ok_or(SuiteMismatch {
            expected,
            got: self.suite(),
        })
    }
}

/// Run `$body` with `$v` bound to the value inside a [`BySuite`] and the type `$S` set
/// to its suite: the one dispatch between a held epoch and generic code.
#[macro_export]
macro_rules! with_suite {
    ($value:expr, $S:ident, $v:ident => $body:expr) => {
        match $value {
            $crate::threshold::suite::BySuite::Secp256k1($v) => {
                #[allow(dead_code)]
                type $S = $crate::threshold::suite::Secp256K1Sha256;
                $body
            }
            $crate::threshold::suite::BySuite::Ed25519($v) => {
                #[allow(dead_code)]
                type $S = $crate::threshold::suite::Ed25519Sha512;
                $body
            }
        }
    };
}

/// Run `$body` with the type `$S` set to the suite `$suite` names.
#[macro_export]
macro_rules! for_suite {
    ($suite:expr, $S:ident => $body:expr) => {
        match $suite {
            $crate::threshold::suite::Ciphersuite::Secp256k1 => {
                #[allow(dead_code)]
                type $S = $crate::threshold::suite::Secp256K1Sha256;
                $body
            }
            $crate::threshold::suite::Ciphersuite::Ed25519 => {
                #[allow(dead_code)]
                type $S = $crate::threshold::suite::Ed25519Sha512;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for s in Ciphersuite::ALL {
            assert_eq!(s.name().parse::<Ciphersuite>(), Ok(s));
            assert_eq!(Ciphersuite::from_wire(s.wire()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
        assert!("p256".parse::<Ciphersuite>().is_err());
        assert_eq!(Ciphersuite::from_wire(0), None);
        assert_eq!(Ciphersuite::default(), Ciphersuite::Secp256k1);
    }

    #[test]
    fn by_suite_takes_only_its_own_type() {
        let v: BySuite<u8, u16> = BySuite::new(7u16).unwrap();
        assert_eq!(v.suite(), Ciphersuite::Ed25519);
        assert_eq!(v.get::<u16>(Ciphersuite::Ed25519), Ok(&7));
        assert_eq!(
            v.clone().take::<u8>(Ciphersuite::Secp256k1),
            Err(SuiteMismatch {
                expected: Ciphersuite::Secp256k1,
                got: Ciphersuite::Ed25519
            })
        );
        assert!(BySuite::<u8, u16>::new(1u32).is_none());
    }
}
