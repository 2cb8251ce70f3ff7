//! ASN.1 structures of RFC 3161, RFC 5652 and RFC 5035, on RustCrypto's `der`.
//!
//! RustCrypto's types are used where they fit: `ContentInfo` and
//! `EncapsulatedContentInfo` (`cms`),
//! `MessageImprint` (`x509-tsp`), `AlgorithmIdentifier` (`spki`), certificates and
//! CSRs (`x509-cert`). What is defined here, and why (`docs/oids.md` lists the same):
//!
//! - [`TstInfo`]: `x509-tsp` holds genTime as a `der` `GeneralizedTime`, which has
//!   whole seconds only; frostamp's genTime carries milliseconds ([`GenTime`]).
//! - [`TimeStampReq`]: `x509-tsp`'s version is an enum with the single value v1, so a
//!   request with another version fails to decode at all; frostamp answers it with
//!   its own rejection (`Rejection::BadVersion`) and keeps extensions as received.
//! - [`PkiStatusInfo`], [`TimeStampResp`]: `x509-tsp` uses `cmpv2` 0.2's
//!   PKIFailureInfo, which encodes the wrong bits (`docs/oids.md`, cost 2).
//! - [`SignedData`], [`SignerInfo`], [`Attribute`]: SET OF
//!   fields whose elements are only inspected (certificates, CRLs, signer infos,
//!   attributes) are kept as [`RawSetOf`], the exact received bytes: the signature
//!   covers the signed attributes as received, and `cms`'s `SetOfVec` sorts when it
//!   decodes, so a token from another TSA with an unsorted set would no longer verify.
//! - [`EssCertIdV2`], [`SigningCertificateV2`], [`EssCertId`], [`SigningCertificate`],
//!   [`IssuerSerial`]: `cms` 0.2 does not define the RFC 2634/5035 ESS types.

use crate::oid::ObjectIdentifier;
use crate::tsp::time::GenTime;
use der::{
    asn1::{BitString, Int, OctetString},
    Any, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence,
    SliceReader, Tag, Writer,
};

pub use cms::content_info::ContentInfo;
pub use cms::signed_data::EncapsulatedContentInfo;
pub use spki::AlgorithmIdentifierOwned as AlgorithmId;
pub use x509_tsp::MessageImprint;

/// An AlgorithmIdentifier with absent parameters.
pub fn algorithm(oid: ObjectIdentifier) -> AlgorithmId {
    AlgorithmId {
        oid,
        parameters: None,
    }
}

/// ```text
/// TimeStampReq ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    messageImprint               MessageImprint,
///    reqPolicy             TSAPolicyId              OPTIONAL,
///    nonce                 INTEGER                  OPTIONAL,
///    certReq               BOOLEAN                  DEFAULT FALSE,
///    extensions            [0] IMPLICIT Extensions  OPTIONAL  }   -- RFC 3161 §2.4.1
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampReq {
    /// Must be 1.
    pub version: Int,
    /// What is being timestamped.
    pub message_imprint: MessageImprint,
    /// Requested TSA policy.
    #[asn1(optional = "true")]
    pub req_policy: Option<ObjectIdentifier>,
    /// Client nonce, echoed in the TSTInfo.
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    /// Whether the TSA certificate must be included in the token.
    #[asn1(default = "Default::default")]
    pub cert_req: bool,
    /// Request extensions (none are supported).
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub extensions: Option<RawSequenceOf>,
}

/// ```text
/// TSTInfo ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    policy                       TSAPolicyId,
///    messageImprint               MessageImprint,
///    serialNumber                 INTEGER,
///    genTime                      GeneralizedTime,
///    accuracy                     Accuracy                 OPTIONAL,
///    ordering                     BOOLEAN             DEFAULT FALSE,
///    nonce                        INTEGER                  OPTIONAL,
///    tsa                          [0] GeneralName          OPTIONAL,
///    extensions                   [1] IMPLICIT Extensions   OPTIONAL  }  -- RFC 3161 §2.4.2
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TstInfo {
    /// Must be 1.
    pub version: Int,
    /// The TSA policy under which the token was issued.
    pub policy: ObjectIdentifier,
    /// Copied from the request.
    pub message_imprint: MessageImprint,
    /// Unique per token.
    pub serial_number: Int,
    /// The time the token was created.
    pub gen_time: GenTime,
    /// Accuracy of `gen_time`.
    #[asn1(optional = "true")]
    pub accuracy: Option<x509_tsp::Accuracy>,
    /// Always false for frostamp.
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    /// The request nonce, if any.
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    /// The TSA's name (a GeneralName, kept as its DER).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<Any>,
    /// Extensions.
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub extensions: Option<RawSequenceOf>,
}

/// ```text
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }                    -- RFC 5652 §5.1
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SignedData {
    /// CMSVersion (3 when eContentType is not id-data).
    pub version: Int,
    /// SET OF AlgorithmIdentifier.
    pub digest_algorithms: RawSetOf,
    /// The TSTInfo.
    pub encap_content_info: EncapsulatedContentInfo,
    /// SET OF CertificateChoices.
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub certificates: Option<RawSetOf>,
    /// SET OF RevocationInfoChoice.
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub crls: Option<RawSetOf>,
    /// SET OF SignerInfo.
    pub signer_infos: RawSetOf,
}

/// ```text
/// SignerInfo ::= SEQUENCE {
///   version CMSVersion,
///   sid SignerIdentifier,
///   digestAlgorithm DigestAlgorithmIdentifier,
///   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
///   signatureAlgorithm SignatureAlgorithmIdentifier,
///   signature SignatureValue,
///   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }   -- RFC 5652 §5.3
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SignerInfo {
    /// 1 for IssuerAndSerialNumber, 3 for SubjectKeyIdentifier.
    pub version: Int,
    /// Which certificate signed.
    pub sid: cms::signed_data::SignerIdentifier,
    /// Digest algorithm for messageDigest.
    pub digest_alg: AlgorithmId,
    /// SET OF Attribute, exactly as received (the signature covers its DER with a SET tag).
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub signed_attrs: Option<RawSetOf>,
    /// Signature algorithm.
    pub signature_algorithm: AlgorithmId,
    /// The signature.
    pub signature: OctetString,
    /// SET OF Attribute.
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub unsigned_attrs: Option<RawSetOf>,
}

/// ```text
/// Attribute ::= SEQUENCE {
///   attrType OBJECT IDENTIFIER,
///   attrValues SET OF AttributeValue }          -- RFC 5652 §5.3
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Attribute {
    /// Attribute type.
    pub oid: ObjectIdentifier,
    /// Values.
    pub values: RawSetOf,
}

/// ```text
/// PKIStatusInfo ::= SEQUENCE {
///    status        PKIStatus,
///    statusString  PKIFreeText     OPTIONAL,
///    failInfo      PKIFailureInfo  OPTIONAL  }    -- RFC 3161 §2.4.2
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    /// 0 granted, 1 grantedWithMods, 2 rejection, 3 waiting, 4 revocationWarning, 5 revocationNotification.
    pub status: Int,
    /// PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String.
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    /// Named bit string of failure reasons.
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// ```text
/// TimeStampResp ::= SEQUENCE  {
///    status                  PKIStatusInfo,
///    timeStampToken          TimeStampToken     OPTIONAL  }   -- RFC 3161 §2.4.2
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampResp {
    /// The status.
    pub status: PkiStatusInfo,
    /// The token (a ContentInfo), present when granted.
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<Any>,
}

/// ```text
/// ESSCertIDv2 ::= SEQUENCE {
///   hashAlgorithm AlgorithmIdentifier DEFAULT {algorithm id-sha256},
///   certHash Hash,
///   issuerSerial IssuerSerial OPTIONAL }      -- RFC 5035 §4
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    /// Absent means SHA-256 (DER omits the default).
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmId>,
    /// Hash of the whole certificate DER.
    pub cert_hash: OctetString,
    /// Issuer and serial number of the certificate.
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ```text
/// SigningCertificateV2 ::= SEQUENCE {
///   certs SEQUENCE OF ESSCertIDv2,
///   policies SEQUENCE OF PolicyInformation OPTIONAL }   -- RFC 5035 §3
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    /// The first entry identifies the signing certificate.
    pub certs: Vec<EssCertIdV2>,
    /// Not used by frostamp.
    #[asn1(optional = "true")]
    pub policies: Option<Any>,
}

/// ```text
/// ESSCertID ::= SEQUENCE {
///   certHash Hash,                       -- SHA-1
///   issuerSerial IssuerSerial OPTIONAL } -- RFC 2634 §5.4.1
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertId {
    /// SHA-1 of the certificate DER.
    pub cert_hash: OctetString,
    /// Issuer and serial number of the certificate.
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ```text
/// SigningCertificate ::= SEQUENCE {
///   certs SEQUENCE OF ESSCertID,
///   policies SEQUENCE OF PolicyInformation OPTIONAL }  -- RFC 2634 §5.4
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificate {
    /// The first entry identifies the signing certificate.
    pub certs: Vec<EssCertId>,
    /// Not used.
    #[asn1(optional = "true")]
    pub policies: Option<Any>,
}

/// ```text
/// IssuerSerial ::= SEQUENCE {
///   issuer GeneralNames,
///   serialNumber CertificateSerialNumber }   -- RFC 5035 §4
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    /// GeneralNames holding the issuer's directoryName.
    pub issuer: x509_cert::ext::pkix::name::GeneralNames,
    /// The certificate serial number.
    pub serial_number: Int,
}

macro_rules! raw_collection {
    ($name:ident, $tag:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Holds the contents octets exactly as received; [`Self::elements`] splits them
        /// into TLVs. Built with [`Self::from_elements`], which sorts for DER when it
        /// is a SET OF (X.690 §11.6).
        #[derive(Clone, Debug, Eq, PartialEq, Default)]
        pub struct $name {
            contents: Vec<u8>,
        }

        impl $name {
            /// The elements, each as a complete TLV.
            pub fn elements(&self) -> der::Result<Vec<Any>> {
                let mut reader = SliceReader::new(&self.contents)?;
                let mut out = Vec::new();
                while !reader.is_finished() {
                    out.push(Any::decode(&mut reader)?);
                }
                Ok(out)
            }

            /// Number of elements.
            pub fn len(&self) -> der::Result<usize> {
                Ok(self.elements()?.len())
            }

            /// Whether there are no elements.
            pub fn is_empty(&self) -> bool {
                self.contents.is_empty()
            }

            /// The contents octets (concatenated element TLVs).
            pub fn contents(&self) -> &[u8] {
                &self.contents
            }
        }

        impl FixedTag for $name {
            const TAG: Tag = $tag;
        }

        impl<'a> DecodeValue<'a> for $name {
            fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
                let contents = reader.read_vec(header.length)?;
                let this = Self { contents };
                this.elements()?; // must be a well-formed concatenation of TLVs
                Ok(this)
            }
        }

        impl EncodeValue for $name {
            fn value_len(&self) -> der::Result<Length> {
                Length::try_from(self.contents.len())
            }
            fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
                writer.write(&self.contents)
            }
        }
    };
}

raw_collection!(RawSetOf, Tag::Set, "A `SET OF` anything.");
raw_collection!(RawSequenceOf, Tag::Sequence, "A `SEQUENCE OF` anything.");

impl RawSetOf {
    /// A DER SET OF from encoded elements: sorted by their encodings (X.690 §11.6).
    pub fn from_elements<T: Encode>(items: &[T]) -> der::Result<Self> {
        let mut encoded: Vec<Vec<u8>> =
            items.iter().map(|i| i.to_der()).collect::<Result<_, _>>()?;
        encoded.sort();
        Ok(Self {
            contents: encoded.concat(),
        })
    }
}

impl RawSequenceOf {
    /// A SEQUENCE OF from encoded elements, in order.
    pub fn from_elements<T: Encode>(items: &[T]) -> der::Result<Self> {
        let encoded: Vec<Vec<u8>> = items.iter().map(|i| i.to_der()).collect::<Result<_, _>>()?;
        Ok(Self {
            contents: encoded.concat(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_set_sorts_and_round_trips() {
        let a = OctetString::new(vec![2u8]).unwrap();
        let b = OctetString::new(vec![1u8, 1]).unwrap();
        let set = RawSetOf::from_elements(&[a, b]).unwrap();
        let der = set.to_der().unwrap();
        assert_eq!(der, [0x31, 7, 0x04, 1, 2, 0x04, 2, 1, 1]);
        let back = RawSetOf::from_der(&der).unwrap();
        assert_eq!(back.len().unwrap(), 2);
        // truncated element inside the set is rejected
        assert!(RawSetOf::from_der(&[0x31, 3, 0x04, 5, 1]).is_err());
    }
}
