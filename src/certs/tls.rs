//! The public TLS certificate of a node (DESIGN §5): issued by a CA for the node's
//! ephemeral identity key, with the public names and addresses the operator gives, so
//! that ordinary clients (curl, Java, browsers, rfc3161-client) verify the connection
//! with a root they are given.
//!
//! 1. The operator asks the node for a PKCS#10 request (`POST /admin/tls-csr`,
//!    [`build_tls_csr`]): subject `CN=<first name>`, the names as a subjectAltName
//!    extension request, signed with the node's identity key (proof of possession).
//! 2. The CA checks that the request's key is the one the node's attestation bound
//!    (the operator's pin, SHA-256 of the SPKI) and issues ([`DevCa::issue_tls_certificate`]
//!    for the development CA; any CA that copies the requested subjectAltName otherwise).
//! 3. The node installs the chain (`POST /admin/tls-certificate`) only if its leaf
//!    carries the node's own identity key ([`check_tls_chain`]) and serves it on the
//!    public port from then on. The peer port keeps the self-signed identity
//!    certificate: peers admit each other by attestation, not by a CA.
//!
//! The key is the same one attestation binds: a relying party can still fetch
//! `/attestation?nonce=` over a verified connection and check that REPORT_DATA binds
//! the SPKI of the certificate the CA issued.

use super::{decode_upload, ext, outside_validity, CertError, DevCa, UploadError};
use crate::oid::std_oids;
use crate::x509::RawSigned;
use const_oid::AssociatedOid;
use der::asn1::{Ia5String, OctetString, SetOfVec};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};

/// id-kp-serverAuth (RFC 5280 §4.2.1.12).
pub const KP_SERVER_AUTH: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");

/// At most this many names in one certificate.
pub const MAX_NAMES: usize = 32;

/// The public names of a node: DNS names and IP addresses (subjectAltName).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicNames {
    /// DNS names (e.g. `tsa1.example.org`, `localhost`).
    #[serde(default)]
    pub dns: Vec<String>,
    /// IP addresses (e.g. `127.0.0.1`).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

impl PublicNames {
    /// Check the names: 1..=[`MAX_NAMES`] in all, DNS names are LDH labels
    /// (a leading `*.` wildcard allowed), at most 253 characters, not IP addresses.
    pub fn validate(&self) -> Result<(), CertError> {
        let count = self.dns.len() + self.ips.len();
        if count == 0 || count > MAX_NAMES {
            return Err(CertError::Invalid(format!(
                "a TLS certificate needs 1 to {MAX_NAMES} public names or addresses, got {count}"
            )));
        }
        for name in &self.dns {
            let bad = || CertError::Invalid(format!("{name:?} is not a DNS name"));
            if name.is_empty() || name.len() > 253 || name.parse::<IpAddr>().is_ok() {
                return Err(bad());
            }
            let rest = name.strip_prefix("*.").unwrap_or(name);
            for label in rest.split('.') {
                if label.is_empty()
                    || label.len() > 63
                    || label.starts_with('-')
                    || label.ends_with('-')
                    || !label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(bad());
                }
            }
        }
        Ok(())
    }

    /// The subject common name: the first DNS name, else the first address.
    fn common_name(&self) -> String {
        self.dns
            .first()
            .cloned()
            .or_else(|| self.ips.first().map(IpAddr::to_string))
            .unwrap_or_default()
    }

    fn subject_alt_name(&self) -> Result<SubjectAltName, CertError> {
        let mut out = Vec::new();
        for d in &self.dns {
            out.push(GeneralName::DnsName(
                Ia5String::new(d).map_err(|e| CertError::Invalid(format!("{d:?}: {e}")))?,
            ));
        }
        for ip in &self.ips {
            let bytes = match ip {
                IpAddr::V4(v) => v.octets().to_vec(),
                IpAddr::V6(v) => v.octets().to_vec(),
            };
            out.push(GeneralName::IpAddress(OctetString::new(bytes)?));
        }
        Ok(SubjectAltName(out))
    }

    /// The names a subjectAltName carries (DNS names and IP addresses; others ignored).
    pub fn from_san(san: &SubjectAltName) -> Self {
        let mut names = Self::default();
        for g in &san.0 {
            match g {
                GeneralName::DnsName(d) => names.dns.push(d.to_string()),
                GeneralName::IpAddress(o) => match o.as_bytes().len() {
                    4 => {
                        let b: [u8; 4] = o.as_bytes().try_into().unwrap_or_default();
                        names.ips.push(IpAddr::from(b));
                    }
                    16 => {
                        let b: [u8; 16] = o.as_bytes().try_into().unwrap_or_default();
                        names.ips.push(IpAddr::from(b));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        names
    }
}

impl core::fmt::Display for PublicNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let all: Vec<String> = self
            .dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect();
        f.write_str(&all.join(", "))
    }
}

fn ecdsa_p256_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: std_oids::ECDSA_WITH_SHA256,
        parameters: None,
    }
}

/// A PKCS#10 request for `key`'s TLS certificate naming `names` (RFC 2986; the
/// names as an extensionRequest for subjectAltName, RFC 2985 §5.4.2).
pub fn build_tls_csr(
    key: &p256::ecdsa::SigningKey,
    names: &PublicNames,
) -> Result<Vec<u8>, CertError> {
    names.validate()?;
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
        .map_err(|e| CertError::Key(e.to_string()))?;
    let cn = names.common_name();
    let subject = Name::from_str(&format!("CN={cn},O=frostamp node"))
        .map_err(|e| CertError::Invalid(format!("subject for {cn:?}: {e}")))?;
    let ext_req = Attribute::try_from(ExtensionReq(vec![ext(
        SubjectAltName::OID,
        false,
        &names.subject_alt_name()?,
    )?]))?;
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key: spki,
        attributes: SetOfVec::try_from(vec![ext_req])?,
    };
    let info_der = info.to_der()?;
    let sig: p256::ecdsa::DerSignature =
        signature::Signer::try_sign(key, &info_der).map_err(|e| CertError::Key(e.to_string()))?;
    Ok(CertReq {
        info,
        algorithm: ecdsa_p256_sha256(),
        signature: der::asn1::BitString::from_bytes(sig.as_bytes())?,
    }
    .to_der()?)
}

/// A TLS certificate request whose signature verifies under its own key.
#[derive(Debug, Clone)]
pub struct TlsCsr {
    /// The requested subject.
    pub subject: Name,
    /// The key to certify.
    pub spki: SubjectPublicKeyInfoOwned,
    /// The requested names.
    pub names: PublicNames,
}

impl TlsCsr {
    /// SHA-256 of the requested key's SPKI DER (what attestation binds and the operator pins).
    pub fn spki_sha256(&self) -> Result<[u8; 32], CertError> {
        use sha2::Digest;
        Ok(sha2::Sha256::digest(self.spki.to_der()?).into())
    }
}

/// Parse a TLS certificate request: its signature verifies under its own key
/// (proof of possession), it requests a subjectAltName with valid names.
pub fn parse_tls_csr(csr_der: &[u8]) -> Result<TlsCsr, CertError> {
    let csr = CertReq::from_der(csr_der)?;
    let info_der = RawSigned::from_der(csr_der)?.tbs.to_der()?;
    let sig = csr
        .signature
        .as_bytes()
        .ok_or_else(|| CertError::Invalid("CSR signature bit string".into()))?;
    crate::x509::sig::verify_signature(&csr.algorithm, None, &csr.info.public_key, &info_der, sig)
        .map_err(|e| CertError::Invalid(format!("CSR signature: {e}")))?;
    let mut names = None;
    for attr in csr.info.attributes.iter() {
        if attr.oid != ExtensionReq::OID {
            continue;
        }
        for value in attr.values.iter() {
            for e in value.decode_as::<ExtensionReq>()?.0 {
                if e.extn_id == SubjectAltName::OID {
                    names = Some(PublicNames::from_san(&SubjectAltName::from_der(
                        e.extn_value.as_bytes(),
                    )?));
                }
            }
        }
    }
    let names =
        names.ok_or_else(|| CertError::Invalid("the CSR requests no subjectAltName".into()))?;
    names.validate()?;
    Ok(TlsCsr {
        subject: csr.info.subject,
        spki: csr.info.public_key,
        names,
    })
}

impl DevCa {
    /// Issue a node's public TLS certificate from its request ([`parse_tls_csr`]):
    /// the request's subject, key and subjectAltName; keyUsage digitalSignature
    /// (critical), extendedKeyUsage id-kp-serverAuth, cA=FALSE, SKI/AKI, and the
    /// CRL distribution point if the CA has one. The caller checks that the key is
    /// the node's attested one.
    pub fn issue_tls_certificate(
        &self,
        csr: &TlsCsr,
        not_before: SystemTime,
        lifetime: Duration,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<u8>, CertError> {
        self.issue_end_entity(
            csr.subject.clone(),
            csr.spki.clone(),
            (&ExtendedKeyUsage(vec![KP_SERVER_AUTH]), false),
            vec![ext(
                SubjectAltName::OID,
                false,
                &csr.names.subject_alt_name()?,
            )?],
            (not_before, lifetime),
            rng,
        )
    }
}

/// Why a node refuses a public TLS certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsCertError {
    /// The upload is empty or does not decode.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The leaf certifies another key than this node's identity.
    #[error(
        "the TLS certificate '{subject}' certifies another key than this node's identity \
         (SPKI SHA-256 {got}, this node's is {want})"
    )]
    WrongKey {
        /// The leaf's subject.
        subject: String,
        /// Its key (hex SHA-256 of the SPKI).
        got: String,
        /// This node's key.
        want: String,
    },
    /// Outside its validity period at the node's clock.
    #[error("the TLS certificate '{subject}' is not valid now: {reason}")]
    NotValidNow {
        /// The leaf's subject.
        subject: String,
        /// Expired or not yet valid.
        reason: String,
    },
    /// Profile: a CA certificate, no subjectAltName, or an EKU without serverAuth.
    #[error("the TLS certificate '{subject}' cannot serve TLS: {reason}")]
    Profile {
        /// The leaf's subject.
        subject: String,
        /// What is missing.
        reason: String,
    },
    /// The certificates after the leaf do not certify it, in order.
    #[error("the chain does not verify: {0}")]
    Chain(#[from] crate::x509::chain::ChainError),
}

/// What a node checks before it serves `chain` (leaf first) on its public port:
/// the leaf carries `own_spki` (this node's identity key), is valid at `now`, is not
/// a CA, names at least one DNS name or address, and allows serverAuth if it limits
/// key purposes; further certificates, if any, form its certification path in order.
pub fn check_tls_chain(
    chain: &[Vec<u8>],
    own_spki: &[u8],
    now: SystemTime,
) -> Result<(), TlsCertError> {
    let (leaf_der, certs) = decode_upload(chain)?;
    let leaf = certs.first().ok_or(UploadError::Empty)?;
    let tbs = &leaf.tbs_certificate;
    let subject = tbs.subject.to_string();
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| UploadError::Malformed {
            index: 0,
            reason: e.to_string(),
        })?;
    if spki != own_spki {
        use sha2::Digest;
        return Err(TlsCertError::WrongKey {
            subject,
            got: hex::encode(sha2::Sha256::digest(&spki)),
            want: hex::encode(sha2::Sha256::digest(own_spki)),
        });
    }
    if let Some(reason) = outside_validity(&tbs.validity, now) {
        return Err(TlsCertError::NotValidNow { subject, reason });
    }
    let profile = |reason: &str| TlsCertError::Profile {
        subject: subject.clone(),
        reason: reason.into(),
    };
    let mut has_names = false;
    for e in tbs.extensions.iter().flatten() {
        let value = e.extn_value.as_bytes();
        if e.extn_id == BasicConstraints::OID
            && BasicConstraints::from_der(value).is_ok_and(|b| b.ca)
        {
            return Err(profile("it is a CA certificate (basicConstraints cA=TRUE)"));
        }
        if e.extn_id == ExtendedKeyUsage::OID {
            let eku = ExtendedKeyUsage::from_der(value)
                .map_err(|_| profile("malformed extendedKeyUsage"))?;
            if !eku.0.contains(&KP_SERVER_AUTH) {
                return Err(profile("its extendedKeyUsage does not allow serverAuth"));
            }
        }
        if e.extn_id == SubjectAltName::OID {
            let san =
                SubjectAltName::from_der(value).map_err(|_| profile("malformed subjectAltName"))?;
            let names = PublicNames::from_san(&san);
            has_names = !names.dns.is_empty() || !names.ips.is_empty();
        }
    }
    if !has_names {
        return Err(profile(
            "it names no DNS name or IP address (subjectAltName)",
        ));
    }
    if let [_, middle @ .., last] = chain {
        let pool: Vec<&[u8]> = middle.iter().map(Vec::as_slice).collect();
        let path = crate::x509::chain::build_chain_der(
            leaf_der,
            &pool,
            &[last.as_slice()],
            &crate::x509::chain::ChainOptions::at(now),
        )?;
        if path.len() != certs.len() {
            return Err(profile(
                "the certificates after the leaf are not its path, in order",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn names() -> PublicNames {
        PublicNames {
            dns: vec!["localhost".into(), "tsa1.example.org".into()],
            ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        }
    }

    #[test]
    fn a_csr_round_trips_and_the_ca_issues_for_its_key_only() {
        let mut rng = rand::thread_rng();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let ca = DevCa::generate("CN=test root", now - DAY, 10 * DAY, &mut rng).unwrap();
        let key = p256::ecdsa::SigningKey::random(&mut rng);
        let own_spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .unwrap()
            .to_der()
            .unwrap();
        let csr_der = build_tls_csr(&key, &names()).unwrap();
        let csr = parse_tls_csr(&csr_der).unwrap();
        assert_eq!(csr.names, names());
        assert_eq!(csr.subject.to_string(), "CN=localhost,O=frostamp node");
        let leaf = ca
            .issue_tls_certificate(&csr, now - DAY, DAY * 2, &mut rng)
            .unwrap();
        check_tls_chain(std::slice::from_ref(&leaf), &own_spki, now).unwrap();
        check_tls_chain(
            &[leaf.clone(), ca.certificate_der().unwrap()],
            &own_spki,
            now,
        )
        .unwrap();
        // Twin: another node's key.
        let other = p256::ecdsa::SigningKey::random(&mut rng);
        let other_spki = SubjectPublicKeyInfoOwned::from_key(*other.verifying_key())
            .unwrap()
            .to_der()
            .unwrap();
        assert!(matches!(
            check_tls_chain(std::slice::from_ref(&leaf), &other_spki, now),
            Err(TlsCertError::WrongKey { .. })
        ));
        // Twin: expired, or a chain ending at another root.
        assert!(matches!(
            check_tls_chain(std::slice::from_ref(&leaf), &own_spki, now + DAY * 3),
            Err(TlsCertError::NotValidNow { .. })
        ));
        let stranger = DevCa::generate("CN=test root", now - DAY, 10 * DAY, &mut rng).unwrap();
        assert!(matches!(
            check_tls_chain(&[leaf, stranger.certificate_der().unwrap()], &own_spki, now),
            Err(TlsCertError::Chain(_))
        ));
        // Twin: a CA certificate is no TLS leaf (and its key is not ours anyway).
        assert!(check_tls_chain(&[ca.certificate_der().unwrap()], &own_spki, now).is_err());
        // Twin: a flipped byte in the CSR's signature.
        let mut bad = csr_der.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(parse_tls_csr(&bad).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(names().validate().is_ok());
        for bad in ["", "-a.example", "a..b", "1.2.3.4", "a b", "x.-y"] {
            let n = PublicNames {
                dns: vec![bad.into()],
                ips: vec![],
            };
            assert!(n.validate().is_err(), "{bad:?}");
        }
        assert!(PublicNames::default().validate().is_err());
        let wildcard = PublicNames {
            dns: vec!["*.tsa.example.org".into()],
            ips: vec![],
        };
        assert!(wildcard.validate().is_ok());
    }
}
