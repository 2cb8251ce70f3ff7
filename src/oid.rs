//! Object identifiers.
//!
//! The project arc is `1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104`
//! (the project UUID under Microsoft's GUID arc; every arc fits 32 bits, so Go's
//! `encoding/asn1` and RustCrypto's `const-oid` can hold it). [`Oid`] is an object
//! identifier with arcs of any size, stored as the DER contents octets (X.690
//! §8.19), kept for the fields that may carry an OID from another TSA or the
//! former `2.25.…` arc (TSA policy, signature algorithm, certificate extensions,
//! CSR attributes). `docs/oids.md` lists every OID.

use core::fmt;
use der::{
    asn1::ObjectIdentifier, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer,
};

/// Maximum contents length accepted when decoding untrusted input.
const MAX_OID_LEN: usize = 128;

/// An OBJECT IDENTIFIER with arbitrarily large arcs, held as DER contents octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u8>);

/// Why bytes or text are not an object identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    /// Empty, truncated, or with a non-minimal arc encoding (X.690 §8.19.2).
    #[error("malformed OBJECT IDENTIFIER encoding")]
    Malformed,
    /// Longer than this implementation accepts.
    #[error("OBJECT IDENTIFIER longer than {MAX_OID_LEN} bytes")]
    TooLong,
    /// Dotted text that is not a valid OID.
    #[error("invalid dotted OID text {0:?}")]
    BadText(String),
}

impl Oid {
    /// Validate DER contents octets (no tag, no length).
    pub fn from_der_contents(bytes: &[u8]) -> Result<Self, OidError> {
        if bytes.is_empty() {
            return Err(OidError::Malformed);
        }
        if bytes.len() > MAX_OID_LEN {
            return Err(OidError::TooLong);
        }
        // Each subidentifier: base-128, high bit = "more", no leading 0x80 (X.690 §8.19.2).
        let mut at_start = true;
        for &b in bytes {
            if at_start && b == 0x80 {
                return Err(OidError::Malformed);
            }
            at_start = b & 0x80 == 0;
        }
        if !at_start {
            return Err(OidError::Malformed);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Parse dotted-decimal text such as `2.25.7035553362177209877941980418382415400`
    /// (arcs of any size).
    pub fn from_dotted(text: &str) -> Result<Self, OidError> {
        let bad = || OidError::BadText(text.to_owned());
        let parts: Vec<&str> = text.split('.').collect();
        let [first, second, rest @ ..] = parts.as_slice() else {
            return Err(bad());
        };
        // First two arcs combine into 40*X + Y (X.690 §8.19.4); X ≤ 2, Y < 40 unless X = 2.
        let x: u64 = match *first {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            _ => return Err(bad()),
        };
        decimal_to_base128(second).ok_or_else(bad)?; // validates Y's digits
        if x < 2 && second.parse::<u64>().map_or(true, |y| y >= 40) {
            return Err(bad());
        }
        let head = add_small(second, 40 * x).ok_or_else(bad)?;
        let mut out = decimal_to_base128(&head).ok_or_else(bad)?;
        for arc in rest {
            out.extend(decimal_to_base128(arc).ok_or_else(bad)?);
        }
        Self::from_der_contents(&out)
    }

    /// Like [`Oid::from_dotted`] for compile-time constants known to be valid.
    /// An invalid constant is a programming error caught by this module's tests.
    fn constant(text: &str) -> Self {
        Self::from_dotted(text).unwrap_or_else(|_| Self(vec![0]))
    }

    /// The DER contents octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same OID as a `const-oid` value, when every arc fits in 32 bits.
    pub fn to_const_oid(&self) -> Option<ObjectIdentifier> {
        ObjectIdentifier::from_bytes(&self.0).ok()
    }

    /// Dotted-decimal text of the arcs.
    pub fn to_dotted(&self) -> String {
        let mut arcs: Vec<String> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        for &b in &self.0 {
            current.push(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    // First subidentifier holds 40*X + Y.
                    let v = base128_to_decimal(&current);
                    let (x, y) = split_first(&v);
                    arcs.push(x);
                    arcs.push(y);
                } else {
                    arcs.push(base128_to_decimal(&current));
                }
                current.clear();
            }
        }
        arcs.join(".")
    }
}

impl From<ObjectIdentifier> for Oid {
    fn from(oid: ObjectIdentifier) -> Self {
        Self(oid.as_bytes().to_vec())
    }
}

impl PartialEq<ObjectIdentifier> for Oid {
    fn eq(&self, other: &ObjectIdentifier) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_dotted())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.to_dotted())
    }
}

impl FixedTag for Oid {
    const TAG: Tag = Tag::ObjectIdentifier;
}

impl<'a> DecodeValue<'a> for Oid {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let len = usize::try_from(header.length)?;
        if len > MAX_OID_LEN {
            return Err(der::Error::new(
                der::ErrorKind::Length {
                    tag: Tag::ObjectIdentifier,
                },
                reader.position(),
            ));
        }
        let bytes = reader.read_vec(header.length)?;
        Oid::from_der_contents(&bytes).map_err(|_| Tag::ObjectIdentifier.value_error())
    }
}

impl EncodeValue for Oid {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl der::ValueOrd for Oid {
    fn value_cmp(&self, other: &Self) -> der::Result<core::cmp::Ordering> {
        Ok(self.0.cmp(&other.0))
    }
}

// --- decimal <-> base-128 helpers (arbitrary precision, no dependencies) ---

/// Decimal digits → base-128 subidentifier bytes with continuation bits.
fn decimal_to_base128(dec: &str) -> Option<Vec<u8>> {
    if dec.is_empty()
        || !dec.bytes().all(|b| b.is_ascii_digit())
        || (dec.len() > 1 && dec.starts_with('0'))
    {
        return None;
    }
    // Repeated division of the decimal digit string by 128.
    let mut digits: Vec<u8> = dec.bytes().map(|b| b - b'0').collect();
    let mut groups: Vec<u8> = Vec::new();
    while !(digits.len() == 1 && digits.first() == Some(&0)) {
        let mut rem: u32 = 0;
        let mut quotient = Vec::with_capacity(digits.len());
        for d in &digits {
            let cur = rem * 10 + u32::from(*d);
            let q = cur / 128;
            rem = cur % 128;
            if !(quotient.is_empty() && q == 0) {
                quotient.push(q as u8);
            }
        }
        groups.push(rem as u8);
        digits = if quotient.is_empty() {
            vec![0]
        } else {
            quotient
        };
    }
    if groups.is_empty() {
        groups.push(0);
    }
    groups.reverse();
    let last = groups.len() - 1;
    Some(
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| if i == last { *g } else { g | 0x80 })
            .collect(),
    )
}

/// Base-128 groups (continuation bits already stripped) → decimal text.
fn base128_to_decimal(groups: &[u8]) -> String {
    // Little-endian base 10^9 limbs.
    let mut limbs: Vec<u64> = vec![0];
    for &g in groups {
        let mut carry = u64::from(g);
        for limb in limbs.iter_mut() {
            let v = *limb * 128 + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&limb.to_string());
        } else {
            out.push_str(&format!("{limb:09}"));
        }
    }
    out
}

/// Decimal text + small number.
fn add_small(dec: &str, add: u64) -> Option<String> {
    if dec.is_empty() || !dec.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: Vec<u8> = dec.bytes().rev().map(|b| b - b'0').collect();
    let mut carry = add;
    for d in digits.iter_mut() {
        let v = u64::from(*d) + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.push((carry % 10) as u8);
        carry /= 10;
    }
    Some(digits.iter().rev().map(|d| char::from(b'0' + d)).collect())
}

/// Split the first subidentifier value (decimal) into its two arcs (X.690 §8.19.4).
fn split_first(v: &str) -> (String, String) {
    match v.parse::<u64>() {
        Ok(n) if n < 40 => ("0".into(), n.to_string()),
        Ok(n) if n < 80 => ("1".into(), (n - 40).to_string()),
        _ => ("2".into(), sub_small(v, 80)),
    }
}

/// Decimal text − 80 (the caller guarantees v ≥ 80).
fn sub_small(v: &str, sub: u64) -> String {
    let mut digits: Vec<i64> = v.bytes().rev().map(|b| i64::from(b - b'0')).collect();
    let mut borrow = sub as i64;
    for d in digits.iter_mut() {
        let mut x = *d - (borrow % 10);
        borrow /= 10;
        if x < 0 {
            x += 10;
            borrow += 1;
        }
        *d = x;
        if borrow == 0 {
            break;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits
        .iter()
        .rev()
        .map(|d| char::from(b'0' + *d as u8))
        .collect()
}

/// The project arc: UUID `054aff8f-e77f-4201-9473-1b70f242c628` under Microsoft's
/// registration-free GUID arc `1.2.840.113556.1.8000.2554`, split into seven arcs
/// of 16, 16, 16, 16, 16, 24 and 24 bits (`docs/oids.md`). Every arc fits 32 bits.
pub const PROJECT_ARC: &str =
    "1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104";

/// The arc used before (ITU-T X.667 UUID arc, one 123-bit arc). Nothing is issued
/// under it any more; tests use it to show what large arcs break.
pub const OLD_PROJECT_ARC: &str = "2.25.7035553362177209877941980418382415400";

/// `.1`: frostamp launch-measurement certificate extension (non-critical).
pub fn launch_measurement_ext() -> Oid {
    Oid::constant("1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.1")
}
/// `.2`: FROST(secp256k1, SHA-256) signature algorithm (RFC 9591 §6.5), parameters absent.
pub fn frost_secp256k1_sha256() -> Oid {
    Oid::constant("1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.2")
}
/// `.3`: the default frostamp TSA policy.
pub fn default_tsa_policy() -> Oid {
    Oid::constant("1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.3")
}
/// `.4`: attestation-evidence CSR attribute.
pub fn attestation_evidence_attr() -> Oid {
    Oid::constant("1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.4")
}

/// `.5`: time-evidence signed attribute (Roughtime replies backing genTime,
/// `crate::time::evidence::TimeEvidence`).
pub fn time_evidence_attr() -> Oid {
    Oid::constant("1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.5")
}

/// Standard OIDs (all fit `const-oid`).
pub mod std_oids {
    use der::asn1::ObjectIdentifier as O;

    /// id-sha1 (RFC 3279).
    pub const SHA1: O = O::new_unwrap("1.3.14.3.2.26");
    /// id-md5 (RFC 1321).
    pub const MD5: O = O::new_unwrap("1.2.840.113549.2.5");
    /// id-sha256 (RFC 5754).
    pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha384.
    pub const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// id-sha512.
    pub const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// id-signedData (RFC 5652 §5.1).
    pub const SIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.2");
    /// id-ct-TSTInfo (RFC 3161 §2.4.2).
    pub const CT_TST_INFO: O = O::new_unwrap("1.2.840.113549.1.9.16.1.4");
    /// id-contentType attribute (RFC 5652 §11.1).
    pub const ATTR_CONTENT_TYPE: O = O::new_unwrap("1.2.840.113549.1.9.3");
    /// id-messageDigest attribute (RFC 5652 §11.2).
    pub const ATTR_MESSAGE_DIGEST: O = O::new_unwrap("1.2.840.113549.1.9.4");
    /// id-signingTime attribute (RFC 5652 §11.3).
    pub const ATTR_SIGNING_TIME: O = O::new_unwrap("1.2.840.113549.1.9.5");
    /// id-aa-signingCertificate (RFC 2634 §5.4, ESSCertID over SHA-1).
    pub const ATTR_SIGNING_CERTIFICATE: O = O::new_unwrap("1.2.840.113549.1.9.16.2.12");
    /// id-aa-signingCertificateV2 (RFC 5035 §3, used by RFC 5816).
    pub const ATTR_SIGNING_CERTIFICATE_V2: O = O::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// id-kp-timeStamping (RFC 3161 §2.3).
    pub const KP_TIME_STAMPING: O = O::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// id-ecPublicKey (RFC 5480).
    pub const EC_PUBLIC_KEY: O = O::new_unwrap("1.2.840.10045.2.1");
    /// secp256k1 named curve (SEC 2).
    pub const SECP256K1: O = O::new_unwrap("1.3.132.0.10");
    /// ecdsa-with-SHA256 (RFC 5758).
    pub const ECDSA_WITH_SHA256: O = O::new_unwrap("1.2.840.10045.4.3.2");
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn project_oids_round_trip_and_match_openssl_encoding() {
        // OpenSSL prints the policy OID of our tokens as this text (tests/interop_openssl.rs).
        let o = frost_secp256k1_sha256();
        assert_eq!(
            o.to_dotted(),
            "1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.2"
        );
        let der = o.to_der().unwrap();
        // docs/oids.md: 06 21, then 33 contents octets.
        assert_eq!(
            hex::encode(&der),
            "06212a864886f71401be40937a8a4a83ff0f83ce7f81840182a873ede172828b8c2802"
        );
        let back = Oid::from_der(&der).unwrap();
        assert_eq!(back, o);
        for f in [
            launch_measurement_ext,
            frost_secp256k1_sha256,
            default_tsa_policy,
            attestation_evidence_attr,
            time_evidence_attr,
        ] {
            let oid = f();
            assert!(oid.to_dotted().starts_with(&format!("{PROJECT_ARC}.")));
            let small = oid.to_const_oid().expect("every arc fits const-oid");
            assert_eq!(small.to_string(), oid.to_dotted());
        }
        // The old UUID arc did not fit: that is why it was left.
        let old = Oid::from_dotted(&format!("{OLD_PROJECT_ARC}.2")).unwrap();
        assert!(old.to_const_oid().is_none());
    }

    #[test]
    fn small_oids_agree_with_const_oid() {
        for o in [std_oids::SHA256, std_oids::CT_TST_INFO, std_oids::SECP256K1] {
            let ours = Oid::from_dotted(&o.to_string()).unwrap();
            assert_eq!(ours, o);
            assert_eq!(ours.to_dotted(), o.to_string());
            assert_eq!(ours.to_const_oid(), Some(o));
        }
        assert_eq!(
            Oid::from_dotted("0.9.2342").unwrap().to_dotted(),
            "0.9.2342"
        );
        assert_eq!(Oid::from_dotted("2.999.3").unwrap().to_dotted(), "2.999.3");
    }

    #[test]
    fn rejects_bad_text_and_bytes() {
        for t in ["", "1", "3.1", "1.40", "1.2.", "1..2", "1.02", "a.b"] {
            assert!(Oid::from_dotted(t).is_err(), "{t}");
        }
        assert!(Oid::from_der_contents(&[]).is_err());
        assert!(Oid::from_der_contents(&[0x2a, 0x80, 0x01]).is_err());
        assert!(Oid::from_der_contents(&[0x2a, 0x86]).is_err());
        assert!(Oid::from_der_contents(&[0x2a; 200]).is_err());
    }
}
