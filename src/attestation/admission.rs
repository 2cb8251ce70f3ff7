//! The admission policy: what the *platform* under an authenticated report must show
//! before a peer is admitted (report version, `PLATFORM_INFO`, `REPORTED_TCB` floors).
//! Guest-chosen settings (`POLICY`, `VMPL`) are [`super::PolicyRules`].
//!
//! [`AdmissionPolicy::frostamp_default`] is compiled in, hence part of the measurement
//! (DESIGN §4): raising it is a new image, a new measurement and a new key epoch. Every
//! floor value names its basis (an AMD security bulletin, or "no bulletin value found");
//! `docs/attestation.md` "Admission policy" lists them with their sources. A refusal
//! ([`super::AttestationError::TcbBelowFloor`]) carries that basis, so an operator
//! reads which bulletin their firmware misses.
//!
//! There is deliberately no weaker constructor here: the corpus-minimum policy that lets
//! the pre-2026 real reports of the test corpus through lives in `tests/` only, so no
//! build of the node can reach it.

use std::fmt;

use super::report::{Cpuid, PlatformInfo, TcbVersion};
use super::roots::ProcessorFamily;

/// Basis of the SNP floor of Milan and Genoa.
pub const SB_3023_MILAN_GENOA: &str =
    "AMD-SB-3023 (CVE-2025-48514): SNP SPL 0x1B on Milan and Genoa";
/// Basis of the SNP floor of Turin.
pub const SB_3023_TURIN: &str = "AMD-SB-3023 (CVE-2025-48514): SNP SPL 0x04 on Turin";
/// Basis of the Milan B1 microcode floor.
pub const SB_3019_MILAN_B1: &str =
    "AMD-SB-3019 (CVE-2024-56161, EntrySign): Milan B1 microcode 0x0A0011DB";
/// Basis of the Genoa B1 microcode floor.
pub const SB_3019_GENOA_B1: &str =
    "AMD-SB-3019 (CVE-2024-56161, EntrySign): Genoa B1 microcode 0x0A101154";
/// Basis of the Genoa-X B2 microcode floor.
pub const SB_3019_GENOA_X_B2: &str =
    "AMD-SB-3019 (CVE-2024-56161, EntrySign): Genoa-X B2 microcode 0x0A10124F";
/// Basis of a component for which no bulletin value was found: the pre-2026 floor is kept.
pub const NO_BULLETIN_VALUE: &str =
    "no AMD bulletin value found for this component: pre-2026 floor kept";
/// Basis of the development family's floor.
pub const DEV_NO_FIRMWARE: &str = "development attestation: no firmware to version";
/// Basis reported when a floor differs from the compiled-in one.
pub const CUSTOM_FLOOR: &str = "not the compiled-in floor";

/// The microcode floor of one CPU model line. AMD numbers microcode patch levels per
/// model and stepping (Genoa `0x0A1011xx`, Genoa-X `0x0A1012xx`), so one microcode floor
/// per family would be too strict for one line or too lax for another. The line is read
/// from the report's authenticated `CPUID_MOD_ID`/`CPUID_STEP` (version 3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicrocodeLine {
    /// Family the line belongs to.
    pub family: ProcessorFamily,
    /// `CPUID_MOD_ID`.
    pub model: u8,
    /// `CPUID_STEP`.
    pub stepping: u8,
    /// Marketing name, for messages.
    pub name: &'static str,
    /// Lowest accepted `MICROCODE` SPL (the low byte of the patch level).
    pub min: u8,
    /// Why (bulletin and patch level).
    pub basis: &'static str,
}

/// The compiled-in microcode lines (docs/attestation.md "Admission policy").
pub const FROSTAMP_MICROCODE_LINES: &[MicrocodeLine] = &[
    MicrocodeLine {
        family: ProcessorFamily::Milan,
        model: 0x01,
        stepping: 0x01,
        name: "Milan B1",
        min: 0xDB,
        basis: SB_3019_MILAN_B1,
    },
    MicrocodeLine {
        family: ProcessorFamily::Genoa,
        model: 0x11,
        stepping: 0x01,
        name: "Genoa B1",
        min: 0x54,
        basis: SB_3019_GENOA_B1,
    },
    MicrocodeLine {
        family: ProcessorFamily::Genoa,
        model: 0x11,
        stepping: 0x02,
        name: "Genoa-X B2",
        min: 0x4F,
        basis: SB_3019_GENOA_X_B2,
    },
];

/// Minimum `REPORTED_TCB` per processor family, plus per-model-line microcode floors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcbFloor {
    /// Milan (legacy layout; `fmc` ignored). `microcode` applies to lines not listed in
    /// `microcode_lines`.
    pub milan: TcbVersion,
    /// Genoa, Bergamo, Siena (legacy layout; `fmc` ignored).
    pub genoa: TcbVersion,
    /// Turin (with `fmc`).
    pub turin: TcbVersion,
    /// Development attestation: kept apart from the hardware families.
    pub insecure_dev: TcbVersion,
    /// Microcode floors of specific model lines; they replace the family's microcode
    /// floor for a report whose CPUID names the line.
    pub microcode_lines: &'static [MicrocodeLine],
}

const fn tcb(fmc: Option<u8>, bootloader: u8, tee: u8, snp: u8, microcode: u8) -> TcbVersion {
    TcbVersion {
        fmc,
        bootloader,
        tee,
        snp,
        microcode,
    }
}

/// The floor a report is held to, with the basis of each component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveFloor {
    /// The floor, component by component.
    pub tcb: TcbVersion,
    /// The microcode line that set `tcb.microcode`, if any.
    pub line: Option<MicrocodeLine>,
}

impl TcbFloor {
    /// The floor compiled into frostamp (2026): AMD-SB-3023's SNP SPLs for every family
    /// and AMD-SB-3019's microcode for the model lines whose value could be sourced;
    /// every other component keeps the pre-2026 value (the component-wise minimum of
    /// the real reports, which predates the bulletins). See docs/attestation.md.
    pub const fn frostamp_default() -> Self {
        Self {
            milan: tcb(None, 2, 0, 0x1B, 68),
            genoa: tcb(None, 10, 0, 0x1B, 25),
            turin: tcb(Some(0), 1, 0, 0x04, 71),
            insecure_dev: tcb(None, 0, 0, 0, 0),
            microcode_lines: FROSTAMP_MICROCODE_LINES,
        }
    }

    /// No floor at all (every component 0, no microcode lines).
    pub const fn none() -> Self {
        let zero = tcb(None, 0, 0, 0, 0);
        Self {
            milan: zero,
            genoa: zero,
            turin: zero,
            insecure_dev: zero,
            microcode_lines: &[],
        }
    }

    /// The family floor for `family`, without microcode lines.
    pub fn for_family(&self, family: ProcessorFamily) -> TcbVersion {
        match family {
            ProcessorFamily::Milan => self.milan,
            ProcessorFamily::Genoa => self.genoa,
            ProcessorFamily::Turin => self.turin,
            ProcessorFamily::InsecureDev => self.insecure_dev,
        }
    }

    /// The floor for a report of `family` with `cpuid` (version 3+): the family floor
    /// with the microcode of the matching model line, if one is listed.
    pub fn effective(&self, family: ProcessorFamily, cpuid: Option<Cpuid>) -> EffectiveFloor {
        let mut tcb = self.for_family(family);
        let line = cpuid.and_then(|c| {
            self.microcode_lines
                .iter()
                .find(|l| l.family == family && l.model == c.model && l.stepping == c.stepping)
                .copied()
        });
        if let Some(l) = line {
            tcb.microcode = l.min;
        }
        EffectiveFloor { tcb, line }
    }

    /// Why `component` of `family` has the floor `value` in `effective`: the bulletin of
    /// the compiled-in floor if `value` is the compiled-in value, else [`CUSTOM_FLOOR`].
    pub fn basis(
        family: ProcessorFamily,
        component: &str,
        value: u8,
        effective: &EffectiveFloor,
    ) -> &'static str {
        if component == "microcode" {
            if let Some(l) = effective.line {
                let compiled = FROSTAMP_MICROCODE_LINES.contains(&l) && l.min == value;
                return if compiled { l.basis } else { CUSTOM_FLOOR };
            }
        }
        let compiled = Self::frostamp_default().for_family(family);
        let compiled_value = match component {
            "fmc" => compiled.fmc.unwrap_or(0),
            "bootloader" => compiled.bootloader,
            "tee" => compiled.tee,
            "snp" => compiled.snp,
            _ => compiled.microcode,
        };
        if compiled_value != value {
            return CUSTOM_FLOOR;
        }
        match (family, component) {
            (ProcessorFamily::InsecureDev, _) => DEV_NO_FIRMWARE,
            (ProcessorFamily::Milan | ProcessorFamily::Genoa, "snp") => SB_3023_MILAN_GENOA,
            (ProcessorFamily::Turin, "snp") => SB_3023_TURIN,
            _ => NO_BULLETIN_VALUE,
        }
    }
}

impl Default for TcbFloor {
    fn default() -> Self {
        Self::frostamp_default()
    }
}

/// A `PLATFORM_INFO` bit defined by the SEV-SNP ABI (AMD 56860, ATTESTATION_REPORT
/// table, field `PLATFORM_INFO` at 0x40; rev 1.55 defines bits 0-4, later revisions
/// bit 5 `ALIAS_CHECK_COMPLETE` and bit 7 `TIO_EN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformFlag {
    /// Bit 0 `SMT_EN`: simultaneous multithreading is enabled on the platform.
    SmtEnabled,
    /// Bit 1 `TSME_EN`: transparent SME is enabled.
    TsmeEnabled,
    /// Bit 2 `ECC_EN`: the platform uses ECC memory.
    EccEnabled,
    /// Bit 3 `RAPL_DIS`: RAPL is disabled.
    RaplDisabled,
    /// Bit 4 `CIPHERTEXT_HIDING_EN`: ciphertext hiding is enabled for DRAM.
    CiphertextHidingEnabled,
    /// Bit 5 `ALIAS_CHECK_COMPLETE`: the firmware's memory alias check (AMD-SB-3015,
    /// CVE-2024-21944, "BadRAM") completed since the last reboot.
    AliasCheckComplete,
    /// Bit 7 `TIO_EN`: SEV-TIO is enabled.
    TioEnabled,
}

impl PlatformFlag {
    /// Bit position in `PLATFORM_INFO`.
    pub const fn bit(self) -> u32 {
        match self {
            Self::SmtEnabled => 0,
            Self::TsmeEnabled => 1,
            Self::EccEnabled => 2,
            Self::RaplDisabled => 3,
            Self::CiphertextHidingEnabled => 4,
            Self::AliasCheckComplete => 5,
            Self::TioEnabled => 7,
        }
    }

    /// The ABI name of the bit.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SmtEnabled => "SMT_EN",
            Self::TsmeEnabled => "TSME_EN",
            Self::EccEnabled => "ECC_EN",
            Self::RaplDisabled => "RAPL_DIS",
            Self::CiphertextHidingEnabled => "CIPHERTEXT_HIDING_EN",
            Self::AliasCheckComplete => "ALIAS_CHECK_COMPLETE",
            Self::TioEnabled => "TIO_EN",
        }
    }

    /// Whether `info` has this bit set.
    pub fn is_set(self, info: PlatformInfo) -> bool {
        (info.0 >> self.bit()) & 1 == 1
    }
}

impl fmt::Display for PlatformFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (bit {})", self.name(), self.bit())
    }
}

/// Which `PLATFORM_INFO` bits must be set and which must be clear. Bits in neither list,
/// and bits the ABI does not define, are accepted (docs/attestation.md explains each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformRules {
    /// Bits that must be set.
    pub required: &'static [PlatformFlag],
    /// Bits that must be clear.
    pub forbidden: &'static [PlatformFlag],
}

impl PlatformRules {
    /// frostamp's rules: `ALIAS_CHECK_COMPLETE` required (AMD-SB-3015); SMT, TSME, ECC,
    /// RAPL, ciphertext hiding and TIO accepted either way.
    pub const fn frostamp_default() -> Self {
        Self {
            required: &[PlatformFlag::AliasCheckComplete],
            forbidden: &[],
        }
    }

    /// No requirement on `PLATFORM_INFO`.
    pub const fn none() -> Self {
        Self {
            required: &[],
            forbidden: &[],
        }
    }
}

impl Default for PlatformRules {
    fn default() -> Self {
        Self::frostamp_default()
    }
}

/// Lowest report `VERSION` the production policy accepts: version 3 (ABI 1.55) adds the
/// CPUID fields the microcode floor needs; firmware at the SNP floor is newer than every
/// 1.55.x firmware of the corpus, all of which already emit version 3 or 5.
pub const FROSTAMP_MIN_REPORT_VERSION: u32 = 3;

/// Everything the verifier requires of the platform under an authenticated report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// Lowest accepted report `VERSION` (parsing accepts 2..=5).
    pub min_report_version: u32,
    /// `PLATFORM_INFO` requirements.
    pub platform: PlatformRules,
    /// `REPORTED_TCB` floors.
    pub tcb_floor: TcbFloor,
}

impl AdmissionPolicy {
    /// The compiled-in production policy.
    pub const fn frostamp_default() -> Self {
        Self {
            min_report_version: FROSTAMP_MIN_REPORT_VERSION,
            platform: PlatformRules::frostamp_default(),
            tcb_floor: TcbFloor::frostamp_default(),
        }
    }
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        Self::frostamp_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpuid(model: u8, stepping: u8) -> Option<Cpuid> {
        Some(Cpuid {
            family: 0x19,
            model,
            stepping,
        })
    }

    #[test]
    fn microcode_lines_override_the_family_floor() {
        let f = TcbFloor::frostamp_default();
        let b1 = f.effective(ProcessorFamily::Milan, cpuid(0x01, 0x01));
        assert_eq!(b1.tcb.microcode, 0xDB);
        assert_eq!(b1.tcb.snp, 0x1B);
        // Milan-X (stepping 2) and v2 reports (no CPUID) keep the family floor.
        assert_eq!(
            f.effective(ProcessorFamily::Milan, cpuid(0x01, 0x02))
                .tcb
                .microcode,
            68
        );
        assert_eq!(f.effective(ProcessorFamily::Milan, None).tcb.microcode, 68);
        assert_eq!(
            f.effective(ProcessorFamily::Genoa, cpuid(0x11, 0x02))
                .tcb
                .microcode,
            0x4F
        );
        // A Genoa line listed under Milan does not apply to Genoa and vice versa.
        assert_eq!(
            f.effective(ProcessorFamily::Genoa, cpuid(0x01, 0x01))
                .tcb
                .microcode,
            25
        );
        assert_eq!(
            f.for_family(ProcessorFamily::InsecureDev),
            TcbVersion::default()
        );
        assert_eq!(f.for_family(ProcessorFamily::Turin).fmc, Some(0));
    }

    #[test]
    fn every_compiled_in_floor_names_its_basis() {
        let f = TcbFloor::frostamp_default();
        let e = f.effective(ProcessorFamily::Genoa, cpuid(0x11, 0x01));
        for (family, field, value, want) in [
            (ProcessorFamily::Genoa, "microcode", 0x54, SB_3019_GENOA_B1),
            (ProcessorFamily::Genoa, "snp", 0x1B, SB_3023_MILAN_GENOA),
            (ProcessorFamily::Turin, "snp", 4, SB_3023_TURIN),
            (ProcessorFamily::Genoa, "bootloader", 10, NO_BULLETIN_VALUE),
            (ProcessorFamily::Genoa, "snp", 0x1C, CUSTOM_FLOOR),
            (ProcessorFamily::InsecureDev, "snp", 0, DEV_NO_FIRMWARE),
        ] {
            assert_eq!(
                TcbFloor::basis(family, field, value, &e),
                want,
                "{family:?} {field} {value:#x}"
            );
        }
    }

    #[test]
    fn platform_flags_sit_at_their_abi_bits() {
        let info = PlatformInfo(0x25);
        assert!(PlatformFlag::SmtEnabled.is_set(info));
        assert!(!PlatformFlag::TsmeEnabled.is_set(info));
        assert!(PlatformFlag::EccEnabled.is_set(info));
        assert!(PlatformFlag::AliasCheckComplete.is_set(info));
        assert!(PlatformFlag::TioEnabled.is_set(PlatformInfo(0x80)));
        assert_eq!(
            PlatformFlag::AliasCheckComplete.to_string(),
            "ALIAS_CHECK_COMPLETE (bit 5)"
        );
        assert_eq!(
            AdmissionPolicy::default().platform.required,
            &[PlatformFlag::AliasCheckComplete]
        );
    }
}
