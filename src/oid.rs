//! Object identifiers.
//!
//! The project arc is `1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104`
//! (the project UUID under Microsoft's GUID arc, `docs/oids.md`). Every arc is below
//! 2^23, so all OIDs are RustCrypto `const-oid` [`ObjectIdentifier`]s (const-oid 0.9.6
//! holds every arc below 2^28 and at most 39 contents octets; the project OIDs take 33).
//! `docs/oids.md` lists every OID.

pub use der::asn1::ObjectIdentifier;

/// [`PROJECT_ARC`] as a literal, for `concat!`.
macro_rules! project_arc {
    () => {
        "1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104"
    };
}

/// `pub const fn $name() -> ObjectIdentifier`: the OID `PROJECT_ARC.$n`.
macro_rules! project_oid {
    ($(#[$doc:meta])* $name:ident = $n:literal) => {
        $(#[$doc])*
        pub const fn $name() -> ObjectIdentifier {
            const OID: ObjectIdentifier =
                ObjectIdentifier::new_unwrap(concat!(project_arc!(), ".", $n));
            OID
        }
    };
}

/// The project arc: UUID `054aff8f-e77f-4201-9473-1b70f242c628` under Microsoft's
/// registration-free GUID arc `1.2.840.113556.1.8000.2554`, split into seven arcs
/// of 16, 16, 16, 16, 16, 24 and 24 bits (`docs/oids.md`). Every arc fits 32 bits.
pub const PROJECT_ARC: &str = project_arc!();

/// The arc used before (ITU-T X.667 UUID arc, one 123-bit arc). Nothing is issued
/// under it any more; tests use it to show what large arcs break.
pub const OLD_PROJECT_ARC: &str = "2.25.7035553362177209877941980418382415400";

project_oid! {
    /// `.1`: frostamp launch-measurement certificate extension (non-critical).
    launch_measurement_ext = "1"
}
project_oid! {
    /// `.2`: FROST(secp256k1, SHA-256) signature algorithm (RFC 9591 §6.5), parameters absent.
    frost_secp256k1_sha256 = "2"
}
project_oid! {
    /// `.3`: the default frostamp TSA policy.
    default_tsa_policy = "3"
}
project_oid! {
    /// `.4`: attestation-evidence CSR attribute.
    attestation_evidence_attr = "4"
}

project_oid! {
    /// `.5`: time-evidence signed attribute (Roughtime replies backing genTime,
    /// `crate::time::evidence::TimeEvidence`).
    time_evidence_attr = "5"
}

/// Why dotted text is not an OID frostamp can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidTextError {
    /// Not `X.Y[.Z…]` with decimal arcs, each below 2^32.
    #[error("{0:?} is not a dotted OID with arcs below 2^32")]
    Syntax(String),
    /// Well-formed text that `const-oid` 0.9.6 cannot hold: some arcs of 2^28 or
    /// more, a second arc above 39, more than 39 octets.
    #[error("OID {0:?}: {1}")]
    Unsupported(String, const_oid::Error),
}

/// Parse dotted-decimal text (`--policy`). `const-oid` 0.9.6's own text parser is
/// not used on untrusted text: it overflows on an arc of 2^32 or more (a panic in
/// debug builds, a silently different OID in release builds). This one checks every
/// arc as a `u32`, encodes base 128 (X.690 §8.19) and lets `const-oid` validate the
/// octets.
pub fn parse_dotted(text: &str) -> Result<ObjectIdentifier, OidTextError> {
    let syntax = || OidTextError::Syntax(text.to_owned());
    let arcs: Vec<u32> = text
        .split('.')
        .map(|a| {
            if a.is_empty()
                || !a.bytes().all(|b| b.is_ascii_digit())
                || (a.len() > 1 && a.starts_with('0'))
            {
                return Err(syntax());
            }
            a.parse::<u32>().map_err(|_| syntax())
        })
        .collect::<Result<_, _>>()?;
    let [first, second, rest @ ..] = arcs.as_slice() else {
        return Err(syntax());
    };
    if *first > 2 || (*first < 2 && *second >= 40) {
        return Err(syntax());
    }
    let head = u64::from(*first) * 40 + u64::from(*second);
    let mut der = Vec::new();
    for arc in std::iter::once(head).chain(rest.iter().map(|a| u64::from(*a))) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut n = arc >> 7;
        while n > 0 {
            groups.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        der.extend(groups.iter().rev());
    }
    ObjectIdentifier::from_bytes(&der).map_err(|e| OidTextError::Unsupported(text.to_owned(), e))
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
    /// id-Ed25519 (RFC 8410 §3): the key algorithm of an Ed25519 SubjectPublicKeyInfo
    /// and, with absent parameters, the signature algorithm of an Ed25519 CMS
    /// SignerInfo (RFC 8419 §3.1) and certificate or CSR.
    pub const ED25519: O = O::new_unwrap("1.3.101.112");
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
            o.to_string(),
            "1.2.840.113556.1.8000.2554.1354.65423.59263.16897.38003.1798386.4376104.2"
        );
        let der = o.to_der().unwrap();
        // docs/oids.md: 06 21, then 33 contents octets.
        assert_eq!(
            hex::encode(&der),
            "06212a864886f71401be40937a8a4a83ff0f83ce7f81840182a873ede172828b8c2802"
        );
        assert_eq!(ObjectIdentifier::from_der(&der).unwrap(), o);
        for f in [
            launch_measurement_ext,
            frost_secp256k1_sha256,
            default_tsa_policy,
            attestation_evidence_attr,
            time_evidence_attr,
        ] {
            let oid = f();
            assert!(oid.to_string().starts_with(&format!("{PROJECT_ARC}.")));
            assert_eq!(oid.as_bytes().len(), 33);
            assert_eq!(ObjectIdentifier::new(&oid.to_string()), Ok(oid));
        }
        // Room for sub-arcs: ARC.5.127.127.127.127.127 still fits (38 octets).
        assert!(ObjectIdentifier::new(&format!("{PROJECT_ARC}.5.127.127.127.127.127")).is_ok());
        assert!(ObjectIdentifier::new(&format!("{PROJECT_ARC}.5.127.127.127.127.127.1")).is_err());
    }

    #[test]
    fn dotted_text_parses_like_const_oid_and_refuses_what_it_cannot_hold() {
        for o in [
            std_oids::SHA256,
            std_oids::CT_TST_INFO,
            default_tsa_policy(),
        ] {
            assert_eq!(parse_dotted(&o.to_string()), Ok(o));
        }
        // const-oid 0.9 limits the second arc to 39 even under 2 (X.660 allows more).
        assert!(matches!(
            parse_dotted("2.999.3"),
            Err(OidTextError::Unsupported(..))
        ));
        assert_eq!(
            parse_dotted("1.2.128.16384.268435455").unwrap().to_string(),
            "1.2.128.16384.268435455"
        );
        // const-oid 0.9.6 refuses some arcs of 2^28 or more (ArcTooBig).
        assert!(matches!(
            parse_dotted("1.3.3445191359"),
            Err(OidTextError::Unsupported(..))
        ));
        for t in [
            "",
            "1",
            "3.1",
            "1.40",
            "1.2.",
            "1..2",
            "1.02",
            "a.b",
            "1.2.4294967296",
        ] {
            assert!(
                matches!(parse_dotted(t), Err(OidTextError::Syntax(_))),
                "{t}"
            );
        }
    }

    #[test]
    fn the_old_arc_does_not_fit() {
        // Failing twin: the former 2.25 arc is refused as text and as DER.
        assert!(matches!(
            parse_dotted(&format!("{OLD_PROJECT_ARC}.2")),
            Err(OidTextError::Syntax(_))
        ));
        let old_der = hex::decode("0614698acaffe3fcf7fa888394b9c6ee8f928b8c2802").unwrap();
        assert!(ObjectIdentifier::from_der(&old_der).is_err());
    }
}
