//! The AMD-specific X.509 extensions of a VCEK or VLEK certificate (AMD publication
//! 57230, "VCEK Certificate and KDS Interface Specification", §3 "VCEK Certificate",
//! table "VCEK Certificate Extensions"; VLEK: publication 58369).
//!
//! | OID | name | value (extnValue contents) |
//! |---|---|---|
//! | 1.3.6.1.4.1.3704.1.3.1 | blSPL | DER INTEGER |
//! | 1.3.6.1.4.1.3704.1.3.2 | teeSPL | DER INTEGER |
//! | 1.3.6.1.4.1.3704.1.3.3 | snpSPL | DER INTEGER |
//! | 1.3.6.1.4.1.3704.1.3.8 | ucodeSPL | DER INTEGER |
//! | 1.3.6.1.4.1.3704.1.3.9 | fmcSPL (Turin) | DER INTEGER |
//! | 1.3.6.1.4.1.3704.1.4 | hwID (VCEK only) | the raw chip id: 64 bytes, 8 on Turin (no inner DER) |
//!
//! Other AMD extensions (structVersion `.1.1`, productName `.1.2`, reserved SPLs
//! `.3.4`-`.3.7`, the VLEK's csp_id `.1.5`) are not interpreted. All of them are
//! non-critical, so the generic path validation in `verify::chain` accepts them.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::Certificate;

use super::report::TcbVersion;

/// `blSPL`.
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// `teeSPL`.
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// `snpSPL`.
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// `ucodeSPL`.
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// `fmcSPL` (Turin and later).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// `hwID`: the chip id the VCEK was derived for.
pub const OID_HWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
/// `structVersion`.
pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
/// `productName`.
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");

/// Why the AMD extensions of a VCEK/VLEK cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcekExtensionError {
    /// The certificate does not decode.
    #[error("certificate does not decode: {0}")]
    Malformed(String),
    /// A required extension is absent.
    #[error("VCEK/VLEK has no {0} extension")]
    Missing(&'static str),
    /// An SPL extension is not a DER INTEGER in 0..=255.
    #[error("VCEK/VLEK {0} extension is not an INTEGER in 0..=255")]
    BadSpl(&'static str),
}

/// The TCB and hardware id a VCEK/VLEK certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcekExtensions {
    /// blSPL.
    pub bootloader: u8,
    /// teeSPL.
    pub tee: u8,
    /// snpSPL.
    pub snp: u8,
    /// ucodeSPL.
    pub microcode: u8,
    /// fmcSPL, if present (Turin).
    pub fmc: Option<u8>,
    /// hwID, if present (VCEK; a VLEK has none).
    pub hwid: Option<Vec<u8>>,
}

impl VcekExtensions {
    /// Reads the extensions of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, VcekExtensionError> {
        let cert =
            Certificate::from_der(der).map_err(|e| VcekExtensionError::Malformed(e.to_string()))?;
        Self::from_certificate(&cert)
    }

    /// Reads the extensions of a decoded certificate.
    pub fn from_certificate(cert: &Certificate) -> Result<Self, VcekExtensionError> {
        let find = |oid: ObjectIdentifier| {
            cert.tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == oid)
                .map(|e| e.extn_value.as_bytes())
        };
        let spl = |oid, name: &'static str| -> Result<Option<u8>, VcekExtensionError> {
            match find(oid) {
                None => Ok(None),
                Some(v) => u8::from_der(v)
                    .map(Some)
                    .map_err(|_| VcekExtensionError::BadSpl(name)),
            }
        };
        let required =
            |oid, name: &'static str| spl(oid, name)?.ok_or(VcekExtensionError::Missing(name));
        Ok(Self {
            bootloader: required(OID_BL_SPL, "blSPL")?,
            tee: required(OID_TEE_SPL, "teeSPL")?,
            snp: required(OID_SNP_SPL, "snpSPL")?,
            microcode: required(OID_UCODE_SPL, "ucodeSPL")?,
            fmc: spl(OID_FMC_SPL, "fmcSPL")?,
            hwid: find(OID_HWID).map(<[u8]>::to_vec),
        })
    }

    /// The certified TCB as a [`TcbVersion`].
    pub fn tcb(&self) -> TcbVersion {
        TcbVersion {
            fmc: self.fmc,
            bootloader: self.bootloader,
            tee: self.tee,
            snp: self.snp,
            microcode: self.microcode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spl_integers_decode_including_leading_zero_octet() {
        assert_eq!(u8::from_der(&[0x02, 0x01, 0x73]).unwrap(), 0x73);
        assert_eq!(u8::from_der(&[0x02, 0x02, 0x00, 0xD9]).unwrap(), 0xD9);
        assert!(u8::from_der(&[0x02, 0x02, 0x01, 0x00]).is_err());
        assert!(u8::from_der(&[0x02, 0x01, 0xFF]).is_err()); // negative
        assert!(u8::from_der(&[0x04, 0x01, 0x01]).is_err());
    }
}
