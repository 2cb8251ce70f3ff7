//! `TimeStampResp` (RFC 3161 §2.4.2) for grants and rejections.

use crate::tsp::asn1::{PkiStatusInfo, TimeStampResp};
use crate::tsp::request::{FailureInfo, Rejection};
use der::asn1::{BitString, Int};
use der::{Any, Decode, Encode};

/// PKIStatus values (RFC 3161 §2.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PkiStatus {
    /// 0: a token is present.
    Granted,
    /// 1: a token is present, with modifications.
    GrantedWithMods,
    /// 2: refused.
    Rejection,
    /// 3: not yet processed.
    Waiting,
    /// 4: a revocation is imminent.
    RevocationWarning,
    /// 5: a revocation has occurred.
    RevocationNotification,
}

impl PkiStatus {
    /// From the INTEGER value.
    pub fn from_int(i: &Int) -> Option<Self> {
        match i.as_bytes() {
            [0] => Some(Self::Granted),
            [1] => Some(Self::GrantedWithMods),
            [2] => Some(Self::Rejection),
            [3] => Some(Self::Waiting),
            [4] => Some(Self::RevocationWarning),
            [5] => Some(Self::RevocationNotification),
            _ => None,
        }
    }
    fn value(self) -> u8 {
        match self {
            Self::Granted => 0,
            Self::GrantedWithMods => 1,
            Self::Rejection => 2,
            Self::Waiting => 3,
            Self::RevocationWarning => 4,
            Self::RevocationNotification => 5,
        }
    }
    /// Whether a token accompanies this status.
    pub fn is_granted(self) -> bool {
        matches!(self, Self::Granted | Self::GrantedWithMods)
    }
}

/// Encode failure bits as a DER named BIT STRING (X.690 §11.2.2: no trailing zero bits).
pub fn encode_failure_info(bits: &[FailureInfo]) -> der::Result<BitString> {
    let Some(max) = bits.iter().map(|b| b.bit()).max() else {
        return BitString::new(0, Vec::new());
    };
    let nbytes = usize::from(max / 8) + 1;
    let mut bytes = vec![0u8; nbytes];
    for b in bits {
        if let Some(byte) = bytes.get_mut(usize::from(b.bit() / 8)) {
            *byte |= 0x80 >> (b.bit() % 8);
        }
    }
    BitString::new(7 - (max % 8), bytes)
}

/// Decode the named bits of a PKIFailureInfo; unknown bits are returned by number.
pub fn decode_failure_info(bits: &BitString) -> (Vec<FailureInfo>, Vec<usize>) {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for (i, set) in bits.bits().enumerate() {
        if !set {
            continue;
        }
        match FailureInfo::ALL.iter().find(|f| usize::from(f.bit()) == i) {
            Some(f) => known.push(*f),
            None => unknown.push(i),
        }
    }
    (known, unknown)
}

/// A granted response carrying `token` (a ContentInfo DER).
pub fn granted(token: &[u8]) -> der::Result<Vec<u8>> {
    TimeStampResp {
        status: PkiStatusInfo {
            status: Int::new(&[PkiStatus::Granted.value()])?,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(Any::from_der(token)?),
    }
    .to_der()
}

/// A rejection with the reason as statusString and its PKIFailureInfo bit.
pub fn rejected(rejection: &Rejection) -> der::Result<Vec<u8>> {
    TimeStampResp {
        status: PkiStatusInfo {
            status: Int::new(&[PkiStatus::Rejection.value()])?,
            status_string: Some(vec![rejection.to_string()]),
            fail_info: Some(encode_failure_info(&[rejection.failure_info()])?),
        },
        time_stamp_token: None,
    }
    .to_der()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_bits_are_minimal_der() {
        let b = encode_failure_info(&[FailureInfo::BadAlg]).unwrap();
        assert_eq!(b.to_der().unwrap(), [0x03, 0x02, 0x07, 0x80]);
        let b = encode_failure_info(&[FailureInfo::SystemFailure]).unwrap();
        assert_eq!(b.to_der().unwrap(), [0x03, 0x05, 0x06, 0, 0, 0, 0x40]);
        for f in FailureInfo::ALL {
            let (known, unknown) = decode_failure_info(&encode_failure_info(&[f]).unwrap());
            assert_eq!(known, vec![f]);
            assert!(unknown.is_empty());
        }
    }

    #[test]
    fn rejection_round_trips() {
        let der = rejected(&Rejection::UnacceptedExtension).unwrap();
        let resp = TimeStampResp::from_der(&der).unwrap();
        assert_eq!(
            PkiStatus::from_int(&resp.status.status),
            Some(PkiStatus::Rejection)
        );
        assert!(resp.time_stamp_token.is_none());
        let (known, _) = decode_failure_info(resp.status.fail_info.as_ref().unwrap());
        assert_eq!(known, vec![FailureInfo::UnacceptedExtension]);
    }
}
