//! RFC 3161 (Time-Stamp Protocol), RFC 5816 (ESSCertIDv2) and the CMS parts of
//! RFC 5652 that a timestamp token needs.
//!
//! - [`asn1`]: the wire structures (`der` derive), OID-agnostic.
//! - [`time`]: genTime with fractional seconds.
//! - [`request`]: untrusted `TimeStampReq` bytes → [`request::AcceptedRequest`] or a
//!   [`request::Rejection`] that maps onto PKIFailureInfo.
//! - [`token`]: TSTInfo, signed attributes and SignedData, deterministic from a
//!   structured proposal so that every signer can rebuild what it signs.
//! - [`response`]: `TimeStampResp` for grants and rejections.

pub mod asn1;
pub mod request;
pub mod response;
pub mod time;
pub mod token;

use crate::oid::{self, ObjectIdentifier};
use std::time::Duration;

/// What a TSA promises, fixed at build time (measured into the image, DESIGN §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsaProfile {
    /// The TSA policy OID placed in every TSTInfo.
    pub policy: ObjectIdentifier,
    /// How far a proposed genTime may be from a signer's own clock.
    pub tolerance: Duration,
    /// Largest accepted encoded request, checked before parsing.
    pub max_request_len: usize,
}

impl TsaProfile {
    /// The frostamp profile: default policy, ±1 s tolerance, requests up to 4 KiB.
    pub fn frostamp_default() -> Self {
        Self {
            policy: oid::default_tsa_policy(),
            tolerance: Duration::from_secs(1),
            max_request_len: 4096,
        }
    }

    /// The Accuracy claimed in tokens: the signers' clock tolerance. Every token is
    /// signed by t signers that each checked genTime against their own clock.
    pub fn accuracy(&self) -> x509_tsp::Accuracy {
        let secs = self.tolerance.as_secs();
        let millis = self.tolerance.subsec_millis();
        x509_tsp::Accuracy {
            seconds: (secs > 0).then_some(secs),
            millis: (millis > 0).then(|| i16::try_from(millis).unwrap_or(999)),
            micros: None,
        }
    }
}
