//! The node's ephemeral identity: an ECDSA P-256 key made at boot, in memory only,
//! and a self-signed certificate for it. The key authenticates TLS on both the
//! public and the peer port; attestation binds it (REPORT_DATA) to the launch
//! measurement, which is what makes a peer trustworthy, not the certificate.

use crate::certs::CertError;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::{Certificate, TbsCertificate, Version};

/// The node's TLS identity. The private key never leaves this struct except as
/// the rustls signing key; `Debug` is redacted; dropped keys are zeroized by p256.
pub struct Identity {
    key: SigningKey,
    cert_der: Vec<u8>,
    spki_der: Vec<u8>,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("spki_sha256", &hex::encode(self.spki_sha256()))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// A fresh identity named `CN=<name>`, certificate valid from `now` − 1 h for 30 days.
    pub fn generate(
        name: &str,
        now: SystemTime,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Self, CertError> {
        let key = SigningKey::random(rng);
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .map_err(|e| CertError::Key(e.to_string()))?;
        let spki_der = spki.to_der()?;
        let subject = Name::from_str(&format!("CN={name},O=frostamp node (ephemeral identity)"))
            .map_err(|e| CertError::Invalid(e.to_string()))?;
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 1;
        let not_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
        let san = x509_cert::ext::pkix::SubjectAltName(vec![
            x509_cert::ext::pkix::name::GeneralName::DnsName(
                der::asn1::Ia5String::new(name).map_err(|e| CertError::Invalid(e.to_string()))?,
            ),
            x509_cert::ext::pkix::name::GeneralName::DnsName(
                der::asn1::Ia5String::new("localhost")
                    .map_err(|e| CertError::Invalid(e.to_string()))?,
            ),
        ]);
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: x509_cert::serial_number::SerialNumber::new(&serial)?,
            signature: alg(),
            issuer: subject.clone(),
            validity: crate::certs::validity(not_before, Duration::from_secs(30 * 86400))?,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![x509_cert::ext::Extension {
                extn_id: <x509_cert::ext::pkix::SubjectAltName as const_oid::AssociatedOid>::OID,
                critical: false,
                extn_value: OctetString::new(san.to_der()?)?,
            }]),
        };
        let sig: DerSignature = signature::Signer::try_sign(&key, &tbs.to_der()?)
            .map_err(|e| CertError::Key(e.to_string()))?;
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: alg(),
            signature: BitString::from_bytes(sig.as_bytes())?,
        };
        Ok(Self {
            key,
            cert_der: cert.to_der()?,
            spki_der,
        })
    }

    /// The self-signed certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// DER of the SubjectPublicKeyInfo: what attestation binds.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the SPKI DER, the node's fingerprint.
    pub fn spki_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// A PKCS#10 request for this identity's public TLS certificate naming `names`
    /// ([`crate::certs::tls::build_tls_csr`]), signed with the identity key.
    pub fn tls_csr(&self, names: &crate::certs::tls::PublicNames) -> Result<Vec<u8>, CertError> {
        crate::certs::tls::build_tls_csr(&self.key, names)
    }

    /// The private key as PKCS#8 DER for rustls (kept in memory only).
    pub fn pkcs8_der(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, CertError> {
        let doc = self
            .key
            .to_pkcs8_der()
            .map_err(|e| CertError::Key(e.to_string()))?;
        Ok(zeroize::Zeroizing::new(doc.as_bytes().to_vec()))
    }
}

fn alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: crate::oid::std_oids::ECDSA_WITH_SHA256,
        parameters: None,
    }
}

/// SPKI DER of a certificate (e.g. the peer's TLS certificate).
pub fn spki_of_cert(cert_der: &[u8]) -> Result<Vec<u8>, der::Error> {
    Certificate::from_der(cert_der)?
        .tbs_certificate
        .subject_public_key_info
        .to_der()
}
