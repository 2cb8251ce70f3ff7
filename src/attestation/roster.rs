//! The epoch roster: which attested machine holds which share of a key epoch.
//!
//! At the end of the DKG every node records, for every index, the identity it attested
//! (SHA-256 of the TLS SPKI its peer presented, the report's `CHIP_ID` and
//! `REPORTED_TCB`). All nodes must derive the same roster: its hash goes into the DKG
//! transcript, into every node's evidence binding and into the evidence bundle the CA
//! checks, so the CA and relying parties see exactly which attested machines hold the
//! key. While a key is held, a peer is admitted for index `i` only with the roster's
//! identity for `i`; the roster changes only on the operator's repair order (version
//! `v` → `v + 1`, one entry replaced). See `docs/ceremony.md` and `docs/threat-model.md`.
//!
//! ```text
//! roster_hash = SHA-256("frostamp/v1/roster" ‖ 0x00 ‖ version (u32 BE) ‖ count (u16 BE)
//!                       ‖ for each member by index: index (u16 BE) ‖ spki_sha256[32]
//!                         ‖ chip_id[64] ‖ len(tcb) (u16 BE) ‖ tcb (UTF-8))
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Share holders in a key epoch: a build constant, part of the measurement.
pub const N: u16 = 5;
/// Signers needed for a signature (and helpers for a repair): a build constant.
pub const T: u16 = 3;

/// Label of [`Roster::hash`].
pub const ROSTER_LABEL: &[u8] = b"frostamp/v1/roster";

/// One attested share holder.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// FROST identifier (1..=N).
    pub index: u16,
    /// SHA-256 of the TLS SubjectPublicKeyInfo its evidence bound (hex): the identity
    /// of one boot of one VM (the key is made at boot, in memory only).
    #[serde(with = "hex32")]
    pub spki_sha256: [u8; 32],
    /// The report's `CHIP_ID` (hex).
    #[serde(with = "hex64")]
    pub chip_id: [u8; 64],
    /// The report's `REPORTED_TCB`, as `TcbVersion` prints it.
    pub tcb: String,
}

impl core::fmt::Debug for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self}")
    }
}

impl core::fmt::Display for Member {
    /// `node <i> (identity <16 hex>…, chip <16 hex>…, tcb <…>)`: what refusals print.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "node {} (identity {}…, chip {}…, tcb {})",
            self.index,
            short(&self.spki_sha256),
            short(&self.chip_id),
            self.tcb
        )
    }
}

fn short(b: &[u8]) -> String {
    hex::encode(b.get(..8).unwrap_or(b))
}

/// The roster of one key epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// 0 at the DKG; each repair order that takes effect adds one.
    pub version: u32,
    /// Exactly one member per index 1..=N, by index.
    pub members: Vec<Member>,
}

/// Why a roster is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// Indices are not exactly 1..=N.
    #[error("roster indices {0:?} are not exactly 1..={N}")]
    Indices(Vec<u16>),
    /// Two indices name the same TLS identity.
    #[error("roster names identity {0}… for two indices")]
    DuplicateIdentity(String),
}

impl Roster {
    /// Version 0 from one member per index; refused unless indices are exactly 1..=N
    /// and identities are distinct.
    pub fn new(mut members: Vec<Member>) -> Result<Self, RosterError> {
        members.sort_by_key(|m| m.index);
        let r = Self {
            version: 0,
            members,
        };
        r.validate()?;
        Ok(r)
    }

    /// Indices exactly 1..=N, identities distinct.
    pub fn validate(&self) -> Result<(), RosterError> {
        let idx: Vec<u16> = self.members.iter().map(|m| m.index).collect();
        if idx.iter().copied().ne(1..=N) {
            return Err(RosterError::Indices(idx));
        }
        for (i, a) in self.members.iter().enumerate() {
            if self
                .members
                .iter()
                .skip(i + 1)
                .any(|b| b.spki_sha256 == a.spki_sha256)
            {
                return Err(RosterError::DuplicateIdentity(short(&a.spki_sha256)));
            }
        }
        Ok(())
    }

    /// The member holding `index`.
    pub fn get(&self, index: u16) -> Option<&Member> {
        self.members.iter().find(|m| m.index == index)
    }

    /// The index whose holder has TLS identity `spki_sha256`.
    pub fn index_of(&self, spki_sha256: &[u8; 32]) -> Option<u16> {
        self.members
            .iter()
            .find(|m| &m.spki_sha256 == spki_sha256)
            .map(|m| m.index)
    }

    /// The next version, with `member` holding its index (a repair order taking effect).
    pub fn replaced(&self, member: Member) -> Result<Self, RosterError> {
        let mut members: Vec<Member> = self
            .members
            .iter()
            .filter(|m| m.index != member.index)
            .cloned()
            .collect();
        members.push(member);
        members.sort_by_key(|m| m.index);
        let r = Self {
            version: self.version.saturating_add(1),
            members,
        };
        r.validate()?;
        Ok(r)
    }

    /// The domain-separated hash (module docs): what transcripts, evidence bindings and
    /// bundles carry.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(ROSTER_LABEL);
        h.update([0u8]);
        h.update(self.version.to_be_bytes());
        h.update(
            u16::try_from(self.members.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for m in &self.members {
            h.update(m.index.to_be_bytes());
            h.update(m.spki_sha256);
            h.update(m.chip_id);
            let tcb = m.tcb.as_bytes();
            h.update(u16::try_from(tcb.len()).unwrap_or(u16::MAX).to_be_bytes());
            h.update(tcb);
        }
        h.finalize().into()
    }
}

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub(super) fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(v))
            }
            pub(super) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                hex::decode(s)
                    .ok()
                    .and_then(|v| <[u8; $n]>::try_from(v).ok())
                    .ok_or_else(|| serde::de::Error::custom(concat!("expected ", $n, " hex bytes")))
            }
        }
    };
}
hex_array!(hex32, 32);
hex_array!(hex64, 64);

#[cfg(test)]
mod tests {
    use super::*;

    fn member(index: u16, id: u8) -> Member {
        Member {
            index,
            spki_sha256: [id; 32],
            chip_id: [id ^ 0x55; 64],
            tcb: "bl=3 tee=0 snp=8 ucode=115".into(),
        }
    }

    fn five() -> Roster {
        Roster::new((1..=5).rev().map(|i| member(i, i as u8)).collect()).unwrap()
    }

    #[test]
    fn a_roster_has_exactly_one_distinct_member_per_index() {
        let r = five();
        assert_eq!(
            r.members.iter().map(|m| m.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(matches!(
            Roster::new((1..=4).map(|i| member(i, i as u8)).collect()),
            Err(RosterError::Indices(_))
        ));
        assert!(matches!(
            Roster::new((1..=6).map(|i| member(i, i as u8)).collect()),
            Err(RosterError::Indices(_))
        ));
        let mut dup: Vec<Member> = (1..=5).map(|i| member(i, i as u8)).collect();
        dup[4].spki_sha256 = dup[0].spki_sha256;
        assert!(matches!(
            Roster::new(dup),
            Err(RosterError::DuplicateIdentity(_))
        ));
    }

    #[test]
    fn the_hash_covers_version_and_every_field_of_every_member() {
        let r = five();
        let h = r.hash();
        assert_eq!(h, five().hash());
        let mut v = r.clone();
        v.version = 1;
        assert_ne!(v.hash(), h);
        for field in 0..3 {
            let mut m = r.clone();
            match field {
                0 => m.members[2].spki_sha256[0] ^= 1,
                1 => m.members[2].chip_id[63] ^= 1,
                _ => m.members[2].tcb.push('x'),
            }
            assert_ne!(m.hash(), h, "field {field}");
        }
    }

    #[test]
    fn a_replacement_moves_to_the_next_version_and_keeps_the_others() {
        let r = five();
        let next = r.replaced(member(1, 0x61)).unwrap();
        assert_eq!(next.version, 1);
        assert_eq!(next.get(1).unwrap().spki_sha256, [0x61; 32]);
        assert_eq!(next.get(2), r.get(2));
        assert_eq!(next.index_of(&[0x61; 32]), Some(1));
        assert_eq!(next.index_of(&[1; 32]), None);
        // A replacement may not reuse another holder's identity.
        assert!(r.replaced(member(1, 2)).is_err());
    }

    #[test]
    fn json_round_trip_is_strict() {
        let r = five();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Roster>(&j).unwrap(), r);
        let bad = j.replacen("\"index\":1", "\"index\":1,\"x\":0", 1);
        assert!(serde_json::from_str::<Roster>(&bad).is_err());
        let short = j.replacen(&hex::encode([1u8; 32]), "01", 1);
        assert!(serde_json::from_str::<Roster>(&short).is_err());
    }
}
