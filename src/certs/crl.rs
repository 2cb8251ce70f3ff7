//! The development CA's certificate revocation list (RFC 5280 §5): `frostamp ca revoke`
//! records a serial, `frostamp ca crl` issues a signed CRL v2 (cRLNumber, reason codes),
//! and a CA configured with a URL (`frostamp ca init --crl-url`) names it in the
//! cRLDistributionPoints extension of every certificate it issues, so relying parties
//! fetch it (`frostamp verify --fetch-crls`, [`crate::verify::revocation`]).

use super::{cert_time, ecdsa_p256_sha256, ext, CertError, DevCa};
use const_oid::AssociatedOid;
use der::asn1::{BitString, Ia5String};
use der::Encode;
use std::time::SystemTime;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, CrlNumber, CrlReason};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Its serial number (the DER INTEGER's content octets).
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub at: SystemTime,
    /// Why, if said.
    pub reason: Option<CrlReason>,
}

/// The cRLDistributionPoints extension naming `url` (one fullName URI).
pub fn distribution_point_extension(url: &str) -> Result<Extension, CertError> {
    let uri =
        Ia5String::new(url).map_err(|e| CertError::Invalid(format!("CRL URL {url:?}: {e}")))?;
    ext(
        CrlDistributionPoints::OID,
        false,
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![
                GeneralName::UniformResourceIdentifier(uri),
            ])),
            reasons: None,
            crl_issuer: None,
        }]),
    )
}

impl DevCa {
    /// The URL certificates issued from now on name as their CRL distribution point.
    pub fn set_crl_url(&mut self, url: Option<String>) {
        self.crl_url = url;
    }

    /// The cRLDistributionPoints extension for certificates this CA issues, if it has a URL.
    pub(crate) fn crl_extension(&self) -> Result<Option<Extension>, CertError> {
        self.crl_url
            .as_deref()
            .map(distribution_point_extension)
            .transpose()
    }

    /// A signed CRL v2 listing `revoked`, with cRLNumber `number`, valid from
    /// `this_update` to `next_update`.
    pub fn issue_crl(
        &self,
        revoked: &[Revoked],
        number: u64,
        this_update: SystemTime,
        next_update: SystemTime,
    ) -> Result<Vec<u8>, CertError> {
        let entries = revoked
            .iter()
            .map(|r| {
                Ok(RevokedCert {
                    serial_number: SerialNumber::new(&r.serial)?,
                    revocation_date: cert_time(r.at)?,
                    crl_entry_extensions: r
                        .reason
                        .map(|reason| ext(CrlReason::OID, false, &reason).map(|e| vec![e]))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, CertError>>()?;
        let number = CrlNumber(der::asn1::Uint::new(&number.to_be_bytes())?);
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: ecdsa_p256_sha256(),
            issuer: self.cert.tbs_certificate.subject.clone(),
            this_update: cert_time(this_update)?,
            next_update: Some(cert_time(next_update)?),
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: Some(vec![ext(CrlNumber::OID, false, &number)?]),
        };
        use signature::Signer as _;
        let sig: p256::ecdsa::DerSignature = self
            .key
            .try_sign(&tbs.to_der()?)
            .map_err(|e| CertError::Key(e.to_string()))?;
        Ok(CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: ecdsa_p256_sha256(),
            signature: BitString::from_bytes(sig.as_bytes())?,
        }
        .to_der()?)
    }
}
