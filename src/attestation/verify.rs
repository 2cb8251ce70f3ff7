//! Verification of an SEV-SNP attestation report: the one function nodes, the CA and
//! the CLI use ([`verify_report`]).
//!
//! Checks, in this order; the first failure is returned as its own
//! [`AttestationError`] variant ([`AttestationError::check`] names the step):
//!
//! 1. **parse**: [`Report::parse`] (ABI spec 56860 rev 1.55 Table 22); the report must be
//!    signed (`KEY_INFO`: SIGNING_KEY is VCEK or VLEK, MASK_CHIP_KEY clear).
//! 2. **family**: from CPUID (v3+) or the VCEK's issuer name (v2); the CPUID family and a
//!    recognisable issuer must agree; the [`RootSet`] must hold an ARK for it.
//! 3. **chain**: VCEK → ASK (VLEK → ASVK) → ARK with [`build_chain_der`], the family's ARK
//!    as the only anchor, validity at `at`, RSASSA-PSS handled by `verify::sig`; exactly
//!    three certificates; the intermediate's kind (ASK or ASVK) matches `SIGNING_KEY`.
//! 4. **signature**: ECDSA P-384 / SHA-384 over bytes `0x000..0x2A0` with the VCEK/VLEK key.
//! 5. **vcek-extensions**: the certificate's blSPL, teeSPL, snpSPL, ucodeSPL (and fmcSPL on
//!    Turin) equal `REPORTED_TCB`; a VCEK's hwID equals `CHIP_ID` (Turin: first 8 bytes).
//! 6. **policy**: debug and migration agent off (unless allowed), single socket if
//!    required, ABI at least the minimum, `VMPL <= max_vmpl`; then the
//!    [`AdmissionPolicy`]: report `VERSION` at least its minimum, required
//!    `PLATFORM_INFO` bits set and forbidden ones clear.
//! 7. **tcb**: `REPORTED_TCB` at or above the family's floor, component by component,
//!    the microcode floor chosen by the report's CPUID model and stepping; the error
//!    names the AMD bulletin behind the floor.
//! 8. **measurement** and **report-data**: equal to the expected values when given.

use std::time::SystemTime;

use const_oid::db::rfc5912;
use der::Decode;
use p384::ecdsa::signature::Verifier;
use x509_cert::Certificate;

pub use super::admission::{AdmissionPolicy, PlatformFlag, PlatformRules, TcbFloor};
use super::report::{
    GuestPolicy, PlatformInfo, Report, ReportError, ReportSigner, TcbVersion, SIGNED_LEN,
    SIG_COMPONENT_LEN,
};
use super::roots::{common_name, ProcessorFamily, RootSet};
use super::vcek::{VcekExtensionError, VcekExtensions};
use crate::x509::chain::{build_chain_der, ChainError, ChainOptions};

/// Which key signed a verified report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key: derived from the chip's secret and its TCB.
    Vcek,
    /// Versioned Loaded Endorsement Key: provisioned by a cloud provider through AMD.
    Vlek,
}

impl std::fmt::Display for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        })
    }
}

/// Guest-policy and privilege-level rules (ABI spec §4.3 `GUEST_POLICY`, `VMPL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRules {
    /// Accept `POLICY.DEBUG` = 1 (the hypervisor can read guest memory). frostamp: false.
    pub allow_debug: bool,
    /// Accept `POLICY.MIGRATE_MA` = 1. frostamp: false.
    pub allow_migration_agent: bool,
    /// Require `POLICY.SINGLE_SOCKET` = 1. frostamp: false.
    pub require_single_socket: bool,
    /// Highest accepted `VMPL` of the report request. frostamp: 0.
    pub max_vmpl: u32,
    /// Lowest accepted `(ABI_MAJOR, ABI_MINOR)` in the policy. frostamp: (0, 0).
    pub min_abi: (u8, u8),
}

impl PolicyRules {
    /// frostamp's rules: no debug, no migration agent, VMPL 0.
    pub const fn frostamp_default() -> Self {
        Self {
            allow_debug: false,
            allow_migration_agent: false,
            require_single_socket: false,
            max_vmpl: 0,
            min_abi: (0, 0),
        }
    }
}

impl Default for PolicyRules {
    fn default() -> Self {
        Self::frostamp_default()
    }
}

/// What the verifier expects of a report besides authenticity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The launch measurement (a node: its own). `None`: not checked.
    pub measurement: Option<[u8; 48]>,
    /// The REPORT_DATA binding. `None`: not checked.
    pub report_data: Option<[u8; 64]>,
    /// Guest policy and VMPL rules.
    pub policy: PolicyRules,
    /// Report version, `PLATFORM_INFO` and TCB floors the platform must meet.
    pub admission: AdmissionPolicy,
}

impl Expected {
    /// frostamp's expectations: this measurement and binding, default guest-policy rules
    /// and the compiled-in admission policy.
    pub fn frostamp(measurement: [u8; 48], report_data: [u8; 64]) -> Self {
        Self {
            measurement: Some(measurement),
            report_data: Some(report_data),
            policy: PolicyRules::frostamp_default(),
            admission: AdmissionPolicy::frostamp_default(),
        }
    }

    /// The same expectations under another admission policy (tests: the corpus minimum).
    pub fn with_admission(self, admission: AdmissionPolicy) -> Self {
        Self { admission, ..self }
    }
}

impl Default for Expected {
    /// Default policy and admission policy; measurement and REPORT_DATA not checked.
    fn default() -> Self {
        Self {
            measurement: None,
            report_data: None,
            policy: PolicyRules::frostamp_default(),
            admission: AdmissionPolicy::frostamp_default(),
        }
    }
}

/// A report that passed every check of [`verify_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    /// Processor family whose root the chain ends in.
    pub family: ProcessorFamily,
    /// `MEASUREMENT`.
    pub measurement: [u8; 48],
    /// `REPORT_DATA`.
    pub report_data: [u8; 64],
    /// `REPORTED_TCB`, decoded with the family's layout.
    pub reported_tcb: TcbVersion,
    /// `CHIP_ID`.
    pub chip_id: [u8; 64],
    /// `POLICY`.
    pub policy: GuestPolicy,
    /// `VMPL`.
    pub vmpl: u32,
    /// VCEK or VLEK.
    pub signing_key: SigningKey,
}

impl VerifiedReport {
    /// True if this report was accepted under a development root (no hardware behind it).
    pub fn is_insecure_dev(&self) -> bool {
        self.family == ProcessorFamily::InsecureDev
    }
}

/// Why a report was refused. Each variant is one check of [`verify_report`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Step 1: the bytes are not an acceptable ATTESTATION_REPORT.
    #[error("attestation report: {0}")]
    Report(#[from] ReportError),
    /// Step 1: the firmware did not sign the report (SIGNING_KEY none or MASK_CHIP_KEY).
    #[error("attestation report is not signed (KEY_INFO {key_info:#x})")]
    ReportNotSigned {
        /// The raw KEY_INFO.
        key_info: u32,
    },
    /// Step 2: the report's CPUID names no SEV-SNP family this verifier knows.
    #[error("unknown processor: CPUID family {family:#04x} model {model:#04x} is not Milan, Genoa or Turin")]
    UnknownProcessor {
        /// CPUID_FAM_ID.
        family: u8,
        /// CPUID_MOD_ID.
        model: u8,
    },
    /// Step 2: a v2 report (no CPUID) whose VCEK issuer names no known family.
    #[error("cannot tell the processor family of a v2 report: VCEK issuer is {issuer}")]
    FamilyUndetermined {
        /// The VCEK issuer common name, or why it could not be read.
        issuer: String,
    },
    /// Step 2: the report's CPUID family and the VCEK's issuer disagree.
    #[error("report is from a {report} processor but the certificate was issued by the {certificate} ASK/ASVK")]
    FamilyMismatch {
        /// Family from CPUID.
        report: ProcessorFamily,
        /// Family from the certificate's issuer.
        certificate: ProcessorFamily,
    },
    /// Step 2: the root set has no trust anchor for the family.
    #[error("no trusted root for processor family {0}{hint}", hint = if *.0 == ProcessorFamily::InsecureDev { " (development attestation is not an AMD root and is refused by this verifier)" } else { "" })]
    NoRootForFamily(ProcessorFamily),
    /// Step 3: no valid path from the VCEK/VLEK to the family's ARK at the given time.
    #[error("{family} certificate chain: {source}")]
    Chain {
        /// The family whose ARK was the anchor.
        family: ProcessorFamily,
        /// What path validation said.
        #[source]
        source: ChainError,
    },
    /// Step 3: the path is not exactly VCEK/VLEK → ASK/ASVK → ARK.
    #[error("certificate path has {len} certificates, expected VCEK/VLEK, ASK/ASVK, ARK")]
    ChainShape {
        /// Number of certificates in the path.
        len: usize,
    },
    /// Step 3: the report says VCEK but the certificate is a VLEK, or vice versa.
    #[error("report is signed by a {report} but the certificate is a {certificate}")]
    SigningKeyMismatch {
        /// KEY_INFO.SIGNING_KEY.
        report: SigningKey,
        /// Kind of the certificate (from its issuer: ASK or ASVK).
        certificate: SigningKey,
    },
    /// Step 4: the VCEK/VLEK public key is not an ECDSA P-384 key.
    #[error("VCEK/VLEK key is not an ECDSA P-384 public key: {0}")]
    VcekKey(String),
    /// Step 4: R or S is out of range (non-zero high bytes, zero, or not below the order).
    #[error("report signature is malformed: {0}")]
    MalformedReportSignature(&'static str),
    /// Step 4: the signature does not verify with the VCEK/VLEK key.
    #[error("report signature does not verify with the {0} key (report altered or signed by another chip)")]
    BadReportSignature(SigningKey),
    /// Step 5: the AMD extensions of the certificate cannot be read.
    #[error("{0}")]
    VcekExtension(#[from] VcekExtensionError),
    /// Step 5: a certified SPL differs from the report's REPORTED_TCB.
    #[error("REPORTED_TCB {component} is {report} but the certificate certifies {certificate}")]
    TcbMismatch {
        /// Component name (bootloader, tee, snp, microcode, fmc).
        component: &'static str,
        /// Value in the report.
        report: u8,
        /// Value in the certificate.
        certificate: u8,
    },
    /// Step 5: the VCEK's hwID is not the report's CHIP_ID (or has the wrong length).
    #[error("CHIP_ID {report} does not match the VCEK hwID {certificate}")]
    ChipIdMismatch {
        /// CHIP_ID (hex).
        report: String,
        /// hwID (hex).
        certificate: String,
    },
    /// Step 6: POLICY.DEBUG is set.
    #[error("guest policy allows debugging (POLICY {policy:#x}): the host can read guest memory")]
    DebugAllowed {
        /// Raw policy.
        policy: u64,
    },
    /// Step 6: POLICY.MIGRATE_MA is set.
    #[error("guest policy allows a migration agent (POLICY {policy:#x})")]
    MigrationAgentAllowed {
        /// Raw policy.
        policy: u64,
    },
    /// Step 6: single socket required but POLICY.SINGLE_SOCKET is clear.
    #[error("guest policy does not require a single socket (POLICY {policy:#x})")]
    NotSingleSocket {
        /// Raw policy.
        policy: u64,
    },
    /// Step 6: POLICY's ABI version is below the minimum.
    #[error("guest policy ABI {major}.{minor} is below the required {min_major}.{min_minor}")]
    AbiTooOld {
        /// ABI_MAJOR.
        major: u8,
        /// ABI_MINOR.
        minor: u8,
        /// Required major.
        min_major: u8,
        /// Required minor.
        min_minor: u8,
    },
    /// Step 6: the report version is below the admission policy's minimum (the firmware
    /// predates the CPUID fields and every firmware at the TCB floor).
    #[error("attestation report version {version} is below the required {min}: update the platform firmware")]
    ReportVersionTooOld {
        /// `VERSION`.
        version: u32,
        /// Lowest accepted.
        min: u32,
    },
    /// Step 6: a `PLATFORM_INFO` bit the admission policy requires is clear.
    #[error("PLATFORM_INFO {platform_info:#x} lacks {flag}, which the admission policy requires")]
    PlatformFlagMissing {
        /// The required bit.
        flag: PlatformFlag,
        /// Raw `PLATFORM_INFO`.
        platform_info: u64,
    },
    /// Step 6: a `PLATFORM_INFO` bit the admission policy forbids is set.
    #[error("PLATFORM_INFO {platform_info:#x} has {flag} set, which the admission policy forbids")]
    PlatformFlagForbidden {
        /// The forbidden bit.
        flag: PlatformFlag,
        /// Raw `PLATFORM_INFO`.
        platform_info: u64,
    },
    /// Step 6: the report was requested at a VMPL above the maximum.
    #[error("report was requested at VMPL {vmpl}, at most {max} is accepted")]
    VmplTooHigh {
        /// VMPL in the report.
        vmpl: u32,
        /// Highest accepted.
        max: u32,
    },
    /// Step 7: REPORTED_TCB is below the floor for the family (and model line).
    #[error("{family} REPORTED_TCB {component} SPL {reported} is below the floor {floor} ({basis}): update the platform firmware")]
    TcbBelowFloor {
        /// Family.
        family: ProcessorFamily,
        /// Component name.
        component: &'static str,
        /// Reported SPL.
        reported: u8,
        /// Floor SPL.
        floor: u8,
        /// Why the floor has that value: the AMD bulletin, or that none was found.
        basis: &'static str,
    },
    /// Step 8: MEASUREMENT differs from the expected one.
    #[error("MEASUREMENT {actual} differs from the expected {expected}")]
    MeasurementMismatch {
        /// Expected (hex).
        expected: String,
        /// In the report (hex).
        actual: String,
    },
    /// Step 8: REPORT_DATA differs from the expected binding.
    #[error("REPORT_DATA {actual} differs from the expected binding {expected}")]
    ReportDataMismatch {
        /// Expected (hex).
        expected: String,
        /// In the report (hex).
        actual: String,
    },
    /// An attester could not produce evidence.
    #[error("attester: {0}")]
    Attester(String),
}

impl AttestationError {
    /// The name of the check that failed: `parse`, `family`, `chain`, `signature`,
    /// `vcek-extensions`, `policy`, `tcb`, `measurement`, `report-data` or `attester`.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Report(_) | Self::ReportNotSigned { .. } => "parse",
            Self::UnknownProcessor { .. }
            | Self::FamilyUndetermined { .. }
            | Self::FamilyMismatch { .. }
            | Self::NoRootForFamily(_) => "family",
            Self::Chain { .. } | Self::ChainShape { .. } | Self::SigningKeyMismatch { .. } => {
                "chain"
            }
            Self::VcekKey(_) | Self::MalformedReportSignature(_) | Self::BadReportSignature(_) => {
                "signature"
            }
            Self::VcekExtension(_) | Self::TcbMismatch { .. } | Self::ChipIdMismatch { .. } => {
                "vcek-extensions"
            }
            Self::DebugAllowed { .. }
            | Self::MigrationAgentAllowed { .. }
            | Self::NotSingleSocket { .. }
            | Self::AbiTooOld { .. }
            | Self::ReportVersionTooOld { .. }
            | Self::PlatformFlagMissing { .. }
            | Self::PlatformFlagForbidden { .. }
            | Self::VmplTooHigh { .. } => "policy",
            Self::TcbBelowFloor { .. } => "tcb",
            Self::MeasurementMismatch { .. } => "measurement",
            Self::ReportDataMismatch { .. } => "report-data",
            Self::Attester(_) => "attester",
        }
    }
}

/// Verifies an SEV-SNP attestation report; see the module documentation for the checks
/// and their order.
///
/// `vcek_der` is the VCEK or VLEK certificate (untrusted: from the extended report, the
/// host, the operator or AMD's KDS). `extra_certs` are optional further candidates for
/// the path (ASK, ASVK, ARK as delivered with it; untrusted: only `roots` anchors).
/// `at` is the time at which every certificate must be valid.
pub fn verify_report(
    report: &[u8],
    vcek_der: &[u8],
    extra_certs: &[&[u8]],
    roots: &RootSet,
    expected: &Expected,
    at: SystemTime,
) -> Result<VerifiedReport, AttestationError> {
    // 1. parse
    let parsed = Report::parse(report)?;
    let report_key = match (parsed.signer(), parsed.key_info.mask_chip_key()) {
        (ReportSigner::Vcek, false) => SigningKey::Vcek,
        (ReportSigner::Vlek, false) => SigningKey::Vlek,
        _ => {
            return Err(AttestationError::ReportNotSigned {
                key_info: parsed.key_info.0,
            })
        }
    };

    // 2. family
    let family = select_family(&parsed, vcek_der)?;
    let ark = roots
        .ark(family)
        .ok_or(AttestationError::NoRootForFamily(family))?;

    // 3. chain
    let mut pool = roots.intermediates(family);
    pool.extend_from_slice(extra_certs);
    let path = build_chain_der(vcek_der, &pool, &[ark], &ChainOptions::at(at))
        .map_err(|source| AttestationError::Chain { family, source })?;
    let (leaf, intermediate) = match path.as_slice() {
        [leaf, intermediate, _ark] => (leaf, intermediate),
        other => return Err(AttestationError::ChainShape { len: other.len() }),
    };
    let cert_key = match common_name(&intermediate.tbs_certificate.subject) {
        Some(cn) if cn.starts_with("SEV-VLEK") => SigningKey::Vlek,
        _ => SigningKey::Vcek,
    };
    if cert_key != report_key {
        return Err(AttestationError::SigningKeyMismatch {
            report: report_key,
            certificate: cert_key,
        });
    }

    // 4. signature
    verify_signature(report, &parsed, leaf, report_key)?;

    // 5. VCEK extensions
    let reported_tcb = parsed.reported_tcb.decode(family.tcb_layout());
    check_extensions(leaf, &parsed, &reported_tcb, family, report_key)?;

    // 6. policy, VMPL, report version and PLATFORM_INFO
    check_policy(&parsed, &expected.policy)?;
    check_platform(&parsed, &expected.admission)?;

    // 7. TCB floor (family, and microcode per model line)
    let floor = expected
        .admission
        .tcb_floor
        .effective(family, parsed.cpuid());
    if let Some((component, reported, min)) = reported_tcb.first_below(&floor.tcb) {
        return Err(AttestationError::TcbBelowFloor {
            family,
            component,
            reported,
            floor: min,
            basis: TcbFloor::basis(family, component, min, &floor),
        });
    }

    // 8. measurement and REPORT_DATA
    if let Some(m) = expected.measurement {
        if m != parsed.measurement {
            return Err(AttestationError::MeasurementMismatch {
                expected: hex::encode(m),
                actual: hex::encode(parsed.measurement),
            });
        }
    }
    if let Some(d) = expected.report_data {
        if d != parsed.report_data {
            return Err(AttestationError::ReportDataMismatch {
                expected: hex::encode(d),
                actual: hex::encode(parsed.report_data),
            });
        }
    }

    Ok(VerifiedReport {
        family,
        measurement: parsed.measurement,
        report_data: parsed.report_data,
        reported_tcb,
        chip_id: parsed.chip_id,
        policy: parsed.policy,
        vmpl: parsed.vmpl,
        signing_key: report_key,
    })
}

/// Step 2: the family from CPUID (v3+) or the certificate's issuer (v2).
fn select_family(report: &Report, vcek_der: &[u8]) -> Result<ProcessorFamily, AttestationError> {
    let issuer_cn = Certificate::from_der(vcek_der)
        .map_err(|e| format!("<undecodable certificate: {e}>"))
        .and_then(|c| {
            common_name(&c.tbs_certificate.issuer).ok_or_else(|| "<no common name>".to_owned())
        });
    let cert_family = issuer_cn
        .as_ref()
        .ok()
        .and_then(|cn| ProcessorFamily::from_issuer_cn(cn));
    match report.cpuid() {
        Some(cpuid) => {
            let family =
                ProcessorFamily::from_cpuid(cpuid).ok_or(AttestationError::UnknownProcessor {
                    family: cpuid.family,
                    model: cpuid.model,
                })?;
            match cert_family {
                Some(certificate) if certificate != family => {
                    Err(AttestationError::FamilyMismatch {
                        report: family,
                        certificate,
                    })
                }
                _ => Ok(family),
            }
        }
        None => cert_family.ok_or_else(|| AttestationError::FamilyUndetermined {
            issuer: issuer_cn.unwrap_or_else(|e| e),
        }),
    }
}

/// Step 4: ECDSA P-384 with SHA-384 over the exact received bytes `0x000..0x2A0`.
fn verify_signature(
    report: &[u8],
    parsed: &Report,
    leaf: &Certificate,
    key: SigningKey,
) -> Result<(), AttestationError> {
    let spki = &leaf.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return Err(AttestationError::VcekKey(format!(
            "algorithm {}",
            spki.algorithm.oid
        )));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
    if curve != Some(rfc5912::SECP_384_R_1) {
        return Err(AttestationError::VcekKey("curve is not P-384".into()));
    }
    let verifying_key =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
            .map_err(|_| AttestationError::VcekKey("invalid P-384 point".into()))?;
    let r = scalar_be(&parsed.signature.r)?;
    let s = scalar_be(&parsed.signature.s)?;
    let signature = p384::ecdsa::Signature::from_scalars(r, s).map_err(|_| {
        AttestationError::MalformedReportSignature("R or S is zero or not below the group order")
    })?;
    let signed = report
        .get(..SIGNED_LEN)
        .ok_or(AttestationError::MalformedReportSignature(
            "report too short",
        ))?;
    verifying_key
        .verify(signed, &signature)
        .map_err(|_| AttestationError::BadReportSignature(key))
}

/// A 72-byte little-endian signature component as a 48-byte big-endian P-384 scalar.
fn scalar_be(le: &[u8; SIG_COMPONENT_LEN]) -> Result<p384::FieldBytes, AttestationError> {
    let (low, high) = le.split_at(48);
    if high.iter().any(|&b| b != 0) {
        return Err(AttestationError::MalformedReportSignature(
            "R or S has non-zero bytes above 384 bits",
        ));
    }
    let mut be = p384::FieldBytes::default();
    for (dst, src) in be.iter_mut().zip(low.iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

/// Step 5: the certificate certifies exactly the report's TCB and chip.
fn check_extensions(
    leaf: &Certificate,
    report: &Report,
    reported: &TcbVersion,
    family: ProcessorFamily,
    key: SigningKey,
) -> Result<(), AttestationError> {
    let ext = VcekExtensions::from_certificate(leaf)?;
    let mut pairs = vec![
        ("bootloader", reported.bootloader, ext.bootloader),
        ("tee", reported.tee, ext.tee),
        ("snp", reported.snp, ext.snp),
        ("microcode", reported.microcode, ext.microcode),
    ];
    if family.tcb_layout() == super::report::TcbLayout::Turin {
        let fmc = ext.fmc.ok_or(VcekExtensionError::Missing("fmcSPL"))?;
        pairs.push(("fmc", reported.fmc.unwrap_or(0), fmc));
    }
    for (component, report_value, certificate) in pairs {
        if report_value != certificate {
            return Err(AttestationError::TcbMismatch {
                component,
                report: report_value,
                certificate,
            });
        }
    }
    if key == SigningKey::Vcek {
        let hwid = ext.hwid.ok_or(VcekExtensionError::Missing("hwID"))?;
        let len = family.hwid_len();
        let (head, tail) = report.chip_id.split_at(len.min(report.chip_id.len()));
        if hwid.len() != len || hwid.as_slice() != head || tail.iter().any(|&b| b != 0) {
            return Err(AttestationError::ChipIdMismatch {
                report: hex::encode(report.chip_id),
                certificate: hex::encode(&hwid),
            });
        }
    }
    Ok(())
}

/// Step 6: guest policy bits and VMPL.
fn check_policy(report: &Report, rules: &PolicyRules) -> Result<(), AttestationError> {
    let p = report.policy;
    if p.debug() && !rules.allow_debug {
        return Err(AttestationError::DebugAllowed { policy: p.0 });
    }
    if p.migrate_ma() && !rules.allow_migration_agent {
        return Err(AttestationError::MigrationAgentAllowed { policy: p.0 });
    }
    if rules.require_single_socket && !p.single_socket() {
        return Err(AttestationError::NotSingleSocket { policy: p.0 });
    }
    if (p.abi_major(), p.abi_minor()) < rules.min_abi {
        return Err(AttestationError::AbiTooOld {
            major: p.abi_major(),
            minor: p.abi_minor(),
            min_major: rules.min_abi.0,
            min_minor: rules.min_abi.1,
        });
    }
    if report.vmpl > rules.max_vmpl {
        return Err(AttestationError::VmplTooHigh {
            vmpl: report.vmpl,
            max: rules.max_vmpl,
        });
    }
    Ok(())
}

/// Step 6: the admission policy's report version and `PLATFORM_INFO` rules.
fn check_platform(report: &Report, admission: &AdmissionPolicy) -> Result<(), AttestationError> {
    if report.version < admission.min_report_version {
        return Err(AttestationError::ReportVersionTooOld {
            version: report.version,
            min: admission.min_report_version,
        });
    }
    let info: PlatformInfo = report.platform_info;
    if let Some(&flag) = admission.platform.required.iter().find(|f| !f.is_set(info)) {
        return Err(AttestationError::PlatformFlagMissing {
            flag,
            platform_info: info.0,
        });
    }
    if let Some(&flag) = admission.platform.forbidden.iter().find(|f| f.is_set(info)) {
        return Err(AttestationError::PlatformFlagForbidden {
            flag,
            platform_info: info.0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_conversion_reverses_and_checks_high_bytes() {
        let mut le = [0u8; SIG_COMPONENT_LEN];
        le[0] = 0x01;
        le[47] = 0x80;
        let be = scalar_be(&le).unwrap();
        assert_eq!(be[0], 0x80);
        assert_eq!(be[47], 0x01);
        le[48] = 1;
        assert!(matches!(
            scalar_be(&le),
            Err(AttestationError::MalformedReportSignature(_))
        ));
    }

    #[test]
    fn default_floor_orders_components() {
        let floor = TcbFloor::frostamp_default();
        let below = TcbVersion {
            microcode: 67,
            ..floor.milan
        };
        assert_eq!(below.first_below(&floor.milan), Some(("microcode", 67, 68)));
        let below = TcbVersion {
            snp: 0x1A,
            microcode: 0,
            ..floor.genoa
        };
        assert_eq!(below.first_below(&floor.genoa), Some(("snp", 0x1A, 0x1B)));
    }

    #[test]
    fn every_error_names_its_check() {
        let e = AttestationError::NoRootForFamily(ProcessorFamily::InsecureDev);
        assert_eq!(e.check(), "family");
        assert!(e.to_string().contains("not an AMD root"), "{e}");
        assert_eq!(
            AttestationError::DebugAllowed { policy: 0x80000 }.check(),
            "policy"
        );
    }
}
