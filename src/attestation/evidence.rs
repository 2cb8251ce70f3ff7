//! Evidence as it travels between nodes, the CA and the CLI, and the interface of
//! whatever produces it.

use serde::{Deserialize, Serialize};

use super::verify::AttestationError;

/// One attestation: the raw report, the certificate of the key that signed it, and
/// optional further certificates (ASK/ASVK, ARK) as the host or KDS delivered them.
/// Nothing here is trusted: [`crate::attestation::verify_report`] checks it against
/// pinned roots. JSON form: `{"report": hex, "vcek": hex, "chain": [hex, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The 1184-byte ATTESTATION_REPORT.
    #[serde(with = "crate::serde_hex::bytes")]
    pub report: Vec<u8>,
    /// DER of the VCEK or VLEK.
    #[serde(with = "crate::serde_hex::bytes")]
    pub vcek: Vec<u8>,
    /// DER certificates offered as path candidates (may be empty).
    #[serde(with = "crate::serde_hex::list")]
    pub chain: Vec<Vec<u8>>,
}

impl Evidence {
    /// [`Evidence::chain`] as slices, for `verify_report`'s `extra_certs`.
    pub fn chain_refs(&self) -> Vec<&[u8]> {
        self.chain.iter().map(Vec::as_slice).collect()
    }
}

/// Something that can produce attestation evidence for the running guest.
///
/// Implementations: `SnpGuestAttester` (hardware, `/dev/sev-guest`) and `DevAttester`
/// (feature `insecure-dev-attestation`).
pub trait Attester: Send + Sync {
    /// A fresh report whose REPORT_DATA is `report_data`, with its certificates.
    fn attest(&self, report_data: [u8; 64]) -> Result<Evidence, AttestationError>;
    /// The launch measurement of the running guest (what a node admits peers by).
    fn measurement(&self) -> [u8; 48];
    /// True for development attestation (no hardware guarantees).
    fn is_insecure_dev(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_strict_decoding() {
        let e = Evidence {
            report: vec![1, 2, 0xff],
            vcek: vec![0x30, 0x00],
            chain: vec![vec![0xaa], vec![]],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"report":"0102ff","vcek":"3000","chain":["aa",""]}"#
        );
        assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Evidence>(
            r#"{"report":"00","vcek":"00","chain":[],"extra":1}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<Evidence>(r#"{"report":"0g","vcek":"00","chain":[]}"#).is_err()
        );
        assert!(serde_json::from_str::<Evidence>(r#"{"report":"00","vcek":"00"}"#).is_err());
        assert_eq!(e.chain_refs(), vec![&[0xaa][..], &[][..]]);
    }
}
