//! AMD root certificates compiled into the binary, and processor-family selection.
//!
//! For each family AMD operates a root key (ARK) that signs two intermediates: the ASK,
//! which signs VCEKs, and the ASVK, which signs VLEKs (AMD publication 57230,
//! "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification",
//! and 58369 for the VLEK). The DER files under `src/attestation/amd/` were converted
//! (`openssl x509 -outform der`) from `../shared/assets/amd-root-certs/` (virtee/sev for
//! ARK and ASK, go-sev-guest for the ASVK); their SHA-256 digests equal the ones in
//! that directory's `PROVENANCE.md` §1, where three independent copies agree. The unit
//! tests below assert them. Only the ARK is a trust anchor; the ASK/ASVK are offered to
//! the path builder as candidates like any untrusted certificate.
//!
//! The family only decides which ARK to try. It comes from the report's CPUID fields
//! (version 3+) or, for version 2 reports, from the VCEK's issuer name; neither is
//! trusted: a wrong guess just fails the chain check.

use std::fmt;

use const_oid::db::rfc4519;
use x509_cert::name::Name;

use super::report::{Cpuid, TcbLayout};

/// The SEV-SNP processor families whose AMD roots are pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessorFamily {
    /// EPYC 7003 (Zen 3): CPUID family 19h, models 00h-0Fh.
    Milan,
    /// EPYC 9004/8004 (Zen 4, including Bergamo and Siena): family 19h, models 10h-1Fh
    /// and A0h-AFh.
    Genoa,
    /// EPYC 9005 (Zen 5): family 1Ah, models 00h-1Fh.
    Turin,
    /// Development attestation (software-signed, see `attestation::insecure`). Reports
    /// mark it with [`DEV_CPUID_FAMILY`]; no AMD root exists for it, so only a root set
    /// built with `RootSet::danger_with_insecure_dev_root` can accept it.
    InsecureDev,
}

/// CPUID family byte that development reports carry. No x86 processor reports it
/// (real families fit in 0x0F + 0xFF only through the extended family field, and SEV-SNP
/// exists only for 19h and 1Ah).
pub const DEV_CPUID_FAMILY: u8 = 0xFF;

impl ProcessorFamily {
    /// Lower-case name (`milan`, `genoa`, `turin`, `insecure-dev`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Milan => "milan",
            Self::Genoa => "genoa",
            Self::Turin => "turin",
            Self::InsecureDev => "insecure-dev",
        }
    }

    /// The `TCB_VERSION` layout of this family.
    pub fn tcb_layout(self) -> TcbLayout {
        match self {
            Self::Turin => TcbLayout::Turin,
            Self::Milan | Self::Genoa | Self::InsecureDev => TcbLayout::Legacy,
        }
    }

    /// Family from the report's CPUID fields; `None` if unknown.
    pub fn from_cpuid(cpuid: Cpuid) -> Option<Self> {
        match (cpuid.family, cpuid.model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x1F) => Some(Self::Turin),
            (DEV_CPUID_FAMILY, _) => Some(Self::InsecureDev),
            _ => None,
        }
    }

    /// Family from the common name of a VCEK's or VLEK's issuer (`SEV-Milan`,
    /// `SEV-VLEK-Genoa`, the development ASK, ...); `None` if unknown.
    pub fn from_issuer_cn(cn: &str) -> Option<Self> {
        match cn {
            "SEV-Milan" | "SEV-VLEK-Milan" => Some(Self::Milan),
            "SEV-Genoa" | "SEV-VLEK-Genoa" => Some(Self::Genoa),
            "SEV-Turin" | "SEV-VLEK-Turin" => Some(Self::Turin),
            DEV_ASK_CN => Some(Self::InsecureDev),
            _ => None,
        }
    }

    /// Length of the VCEK `hwID` extension for this family (Turin uses 8 bytes).
    pub fn hwid_len(self) -> usize {
        match self {
            Self::Turin => 8,
            Self::Milan | Self::Genoa | Self::InsecureDev => 64,
        }
    }
}

impl fmt::Display for ProcessorFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Common name of the development ARK.
pub const DEV_ARK_CN: &str = "ARK-INSECURE-DEV";
/// Common name of the development ASK.
pub const DEV_ASK_CN: &str = "ASK-INSECURE-DEV";
/// Common name of the development VCEK.
pub const DEV_VCEK_CN: &str = "VCEK-INSECURE-DEV";
/// Organization of every development certificate.
pub const DEV_ORG: &str = "frostamp INSECURE development attestation";

/// The first common name (RFC 4519 `cn`) in `name`, if it is a UTF-8/printable string.
pub fn common_name(name: &Name) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find_map(|atv| {
        if atv.oid != rfc4519::CN {
            return None;
        }
        if let Ok(s) = atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
            return Some(s.as_str().to_owned());
        }
        if let Ok(s) = atv.value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
            return Some(s.as_str().to_owned());
        }
        None
    })
}

/// SHA-256 of the DER of each pinned AMD ARK (what a relying party must pin; equal to
/// `PROVENANCE.md` §1 and asserted by the unit tests).
pub const AMD_ARK_SHA256: [(ProcessorFamily, &str); 3] = [
    (
        ProcessorFamily::Milan,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        ProcessorFamily::Genoa,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        ProcessorFamily::Turin,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
];

const MILAN_ARK: &[u8] = include_bytes!("amd/milan/ark.der");
const MILAN_ASK: &[u8] = include_bytes!("amd/milan/ask.der");
const MILAN_ASVK: &[u8] = include_bytes!("amd/milan/asvk.der");
const GENOA_ARK: &[u8] = include_bytes!("amd/genoa/ark.der");
const GENOA_ASK: &[u8] = include_bytes!("amd/genoa/ask.der");
const GENOA_ASVK: &[u8] = include_bytes!("amd/genoa/asvk.der");
const TURIN_ARK: &[u8] = include_bytes!("amd/turin/ark.der");
const TURIN_ASK: &[u8] = include_bytes!("amd/turin/ask.der");
const TURIN_ASVK: &[u8] = include_bytes!("amd/turin/asvk.der");

/// Trust anchor and known intermediates of one family.
#[derive(Clone, PartialEq, Eq)]
struct FamilyRoots {
    family: ProcessorFamily,
    /// The only trust anchor.
    ark: Vec<u8>,
    /// Intermediates offered to the path builder (not trusted by themselves).
    intermediates: Vec<Vec<u8>>,
}

/// The roots a verifier trusts, per processor family.
#[derive(Clone, PartialEq, Eq)]
pub struct RootSet {
    families: Vec<FamilyRoots>,
}

impl fmt::Debug for RootSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.families.iter().map(|r| r.family.name()).collect();
        f.debug_struct("RootSet").field("families", &names).finish()
    }
}

impl RootSet {
    /// The AMD ARKs of Milan, Genoa and Turin (with their ASKs and ASVKs as path
    /// candidates), compiled into the binary. This is the only root set of production.
    pub fn amd() -> Self {
        let fam = |family, ark: &[u8], ask: &[u8], asvk: &[u8]| FamilyRoots {
            family,
            ark: ark.to_vec(),
            intermediates: vec![ask.to_vec(), asvk.to_vec()],
        };
        Self {
            families: vec![
                fam(ProcessorFamily::Milan, MILAN_ARK, MILAN_ASK, MILAN_ASVK),
                fam(ProcessorFamily::Genoa, GENOA_ARK, GENOA_ASK, GENOA_ASVK),
                fam(ProcessorFamily::Turin, TURIN_ARK, TURIN_ASK, TURIN_ASVK),
            ],
        }
    }

    /// **Danger**: a root set that trusts only `ark_der`, a development ARK made by
    /// `DevPlatform`, for [`ProcessorFamily::InsecureDev`] reports. Reports verified under
    /// it prove nothing about hardware: anyone holding the development keys (every node of
    /// a local cluster, the launcher) can sign any report. AMD roots are *not* included,
    /// so a verifier in development mode accepts development evidence only. Exists only
    /// with the `insecure-dev-attestation` feature, which the production image leaves out.
    #[cfg(feature = "insecure-dev-attestation")]
    pub fn danger_with_insecure_dev_root(ark_der: &[u8]) -> Self {
        Self {
            families: vec![FamilyRoots {
                family: ProcessorFamily::InsecureDev,
                ark: ark_der.to_vec(),
                intermediates: Vec::new(),
            }],
        }
    }

    fn get(&self, family: ProcessorFamily) -> Option<&FamilyRoots> {
        self.families.iter().find(|r| r.family == family)
    }

    /// The trust anchor (ARK DER) for `family`, if this set trusts that family.
    pub fn ark(&self, family: ProcessorFamily) -> Option<&[u8]> {
        self.get(family).map(|r| r.ark.as_slice())
    }

    /// The pinned intermediates (ASK, ASVK) for `family`; empty if none.
    pub fn intermediates(&self, family: ProcessorFamily) -> Vec<&[u8]> {
        self.get(family)
            .map(|r| r.intermediates.iter().map(Vec::as_slice).collect())
            .unwrap_or_default()
    }

    /// True if any family of this set is [`ProcessorFamily::InsecureDev`].
    pub fn trusts_insecure_dev(&self) -> bool {
        self.get(ProcessorFamily::InsecureDev).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use sha2::{Digest, Sha256};
    use x509_cert::Certificate;

    fn sha256_hex(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn compiled_in_roots_match_provenance_hashes() {
        // PROVENANCE.md §1 "AMD root/intermediate certificates".
        let expected = [
            (
                MILAN_ARK,
                "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            ),
            (
                GENOA_ARK,
                "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            ),
            (
                TURIN_ARK,
                "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
            ),
            (
                MILAN_ASK,
                "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
            ),
            (
                GENOA_ASK,
                "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
            ),
            (
                TURIN_ASK,
                "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
            ),
            (
                MILAN_ASVK,
                "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
            ),
            (
                GENOA_ASVK,
                "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
            ),
            (
                TURIN_ASVK,
                "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
            ),
        ];
        for (der, hash) in expected {
            assert_eq!(sha256_hex(der), hash);
        }
        let set = RootSet::amd();
        for (family, hash) in AMD_ARK_SHA256 {
            assert_eq!(sha256_hex(set.ark(family).unwrap()), hash, "{family}");
            assert_eq!(set.intermediates(family).len(), 2);
        }
        assert!(set.ark(ProcessorFamily::InsecureDev).is_none());
        assert!(!set.trusts_insecure_dev());
    }

    #[test]
    fn compiled_in_roots_have_the_expected_names() {
        let set = RootSet::amd();
        for (family, title) in [
            (ProcessorFamily::Milan, "Milan"),
            (ProcessorFamily::Genoa, "Genoa"),
            (ProcessorFamily::Turin, "Turin"),
        ] {
            let ark = Certificate::from_der(set.ark(family).unwrap()).unwrap();
            assert_eq!(
                common_name(&ark.tbs_certificate.subject).unwrap(),
                format!("ARK-{title}")
            );
            let cns: Vec<String> = set
                .intermediates(family)
                .iter()
                .map(|d| {
                    let c = Certificate::from_der(d).unwrap();
                    assert_eq!(c.tbs_certificate.issuer, ark.tbs_certificate.subject);
                    common_name(&c.tbs_certificate.subject).unwrap()
                })
                .collect();
            assert_eq!(cns, [format!("SEV-{title}"), format!("SEV-VLEK-{title}")]);
            for cn in &cns {
                assert_eq!(ProcessorFamily::from_issuer_cn(cn), Some(family));
            }
        }
    }

    #[test]
    fn family_from_cpuid() {
        let f = |family, model| {
            ProcessorFamily::from_cpuid(Cpuid {
                family,
                model,
                stepping: 1,
            })
        };
        assert_eq!(f(0x19, 0x01), Some(ProcessorFamily::Milan));
        assert_eq!(f(0x19, 0x0F), Some(ProcessorFamily::Milan));
        assert_eq!(f(0x19, 0x11), Some(ProcessorFamily::Genoa));
        assert_eq!(f(0x19, 0xA0), Some(ProcessorFamily::Genoa));
        assert_eq!(f(0x1A, 0x02), Some(ProcessorFamily::Turin));
        assert_eq!(f(0x1A, 0x11), Some(ProcessorFamily::Turin));
        assert_eq!(f(DEV_CPUID_FAMILY, 0), Some(ProcessorFamily::InsecureDev));
        assert_eq!(f(0x19, 0x21), None); // Zen 3 client
        assert_eq!(f(0x1A, 0x50), None); // not a Turin model
        assert_eq!(f(0x17, 0x31), None); // Rome: SEV-ES only
        assert_eq!(f(0, 0), None);
        assert_eq!(ProcessorFamily::from_issuer_cn("SEV-Rome"), None);
    }
}
