//! `genTime`: GeneralizedTime with fractional seconds (RFC 3161 §2.4.2).
//!
//! `der::asn1::GeneralizedTime` has whole seconds only, but RFC 3161 allows (and
//! frostamp emits) fractions. DER form: `YYYYMMDDhhmmss[.s+]Z`, UTC, the fraction
//! without trailing zeros and omitted when zero (RFC 3161 §2.4.2, X.690 §11.7).

use core::fmt;
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant with nanosecond resolution, encoded as a DER GeneralizedTime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenTime {
    since_epoch: Duration,
}

impl GenTime {
    /// From a system time, truncated to whole milliseconds (frostamp's precision).
    pub fn from_system_time_millis(t: SystemTime) -> Option<Self> {
        let d = t.duration_since(UNIX_EPOCH).ok()?;
        let millis = d.as_millis();
        let d = Duration::from_millis(u64::try_from(millis).ok()?);
        Self::from_unix_duration(d)
    }

    /// From a duration since the Unix epoch (years 1970..=9999 only).
    pub fn from_unix_duration(d: Duration) -> Option<Self> {
        // Upper bound: 9999-12-31T23:59:59.999999999Z.
        if d.as_secs() > 253_402_300_799 {
            return None;
        }
        Some(Self { since_epoch: d })
    }

    /// Duration since the Unix epoch.
    pub fn unix_duration(&self) -> Duration {
        self.since_epoch
    }

    /// As a `SystemTime`.
    pub fn to_system_time(&self) -> SystemTime {
        UNIX_EPOCH + self.since_epoch
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(&self) -> u128 {
        self.since_epoch.as_millis()
    }

    /// RFC 3339 text, e.g. `2026-11-21T08:36:14.123Z`.
    pub fn to_rfc3339(&self) -> String {
        self.text("-", "T", ":")
    }

    fn parts(&self) -> (der::DateTime, Option<String>) {
        let whole = Duration::from_secs(self.since_epoch.as_secs());
        // Range checked at construction, so this cannot fail; fall back to the epoch defensively.
        let date = der::DateTime::from_unix_duration(whole).unwrap_or(der::DateTime::INFINITY);
        let nanos = self.since_epoch.subsec_nanos();
        let frac = (nanos != 0).then(|| {
            let s = format!("{nanos:09}");
            s.trim_end_matches('0').to_owned()
        });
        (date, frac)
    }

    fn der_text(&self) -> String {
        self.text("", "", "")
    }

    /// `YYYY{date}MM{date}DD{mid}hh{time}mm{time}ss[.f]Z`: RFC 3339 with `-`, `T`, `:`,
    /// GeneralizedTime's DER form with none.
    fn text(&self, date_sep: &str, mid: &str, time_sep: &str) -> String {
        let (date, frac) = self.parts();
        format!(
            "{:04}{date_sep}{:02}{date_sep}{:02}{mid}{:02}{time_sep}{:02}{time_sep}{:02}{}Z",
            date.year(),
            date.month(),
            date.day(),
            date.hour(),
            date.minutes(),
            date.seconds(),
            frac.map(|f| format!(".{f}")).unwrap_or_default()
        )
    }

    /// Parse the DER contents octets of a GeneralizedTime.
    pub fn parse_der_text(bytes: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(bytes).ok()?;
        let body = text.strip_suffix('Z')?;
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (body, None),
        };
        if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: core::ops::Range<usize>| whole.get(r)?.parse::<u16>().ok();
        let year = num(0..4)?;
        let month = u8::try_from(num(4..6)?).ok()?;
        let day = u8::try_from(num(6..8)?).ok()?;
        let hour = u8::try_from(num(8..10)?).ok()?;
        let minute = u8::try_from(num(10..12)?).ok()?;
        let second = u8::try_from(num(12..14)?).ok()?;
        let dt = der::DateTime::new(year, month, day, hour, minute, second).ok()?;
        let mut nanos = 0u32;
        if let Some(f) = frac {
            // DER: at least one digit, no trailing zero (X.690 §11.7.3); we keep ≤ 9 digits.
            if f.is_empty()
                || f.len() > 9
                || f.ends_with('0')
                || !f.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let padded = format!("{f:0<9}");
            nanos = padded.parse().ok()?;
        }
        Self::from_unix_duration(dt.unix_duration() + Duration::from_nanos(u64::from(nanos)))
    }
}

impl fmt::Display for GenTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        if usize::try_from(header.length)? > 32 {
            return Err(Tag::GeneralizedTime.value_error());
        }
        let bytes = reader.read_vec(header.length)?;
        Self::parse_der_text(&bytes).ok_or_else(|| Tag::GeneralizedTime.value_error())
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.der_text().len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(self.der_text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn millis_encoding_trims_zeros() {
        let t = GenTime::from_unix_duration(Duration::from_millis(1_700_000_000_120)).unwrap();
        let der = t.to_der().unwrap();
        assert_eq!(&der[2..], b"20231114221320.12Z");
        assert_eq!(GenTime::from_der(&der).unwrap(), t);
        let whole = GenTime::from_unix_duration(Duration::from_secs(1_700_000_000)).unwrap();
        assert_eq!(&whole.to_der().unwrap()[2..], b"20231114221320Z");
        assert_eq!(whole.to_rfc3339(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn rejects_non_der_forms() {
        for bad in [
            &b"20231114221320.120Z"[..],
            b"20231114221320.Z",
            b"20231114221320",
            b"202311142213Z",
            b"20231314221320Z",
            b"20231114221320+0100",
            b"2023111422132a.1Z",
        ] {
            assert!(
                GenTime::parse_der_text(bad).is_none(),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }
}
