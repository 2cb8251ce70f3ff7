//! The SEV-SNP `ATTESTATION_REPORT` (AMD SEV Secure Nested Paging Firmware ABI
//! Specification, publication 56860, rev 1.55, §7.3 "Attestation", Table 22
//! "ATTESTATION_REPORT Structure"; later revisions keep the offsets and add fields in
//! reserved space: CPUID at 0x188 from version 3, mitigation vectors at 0x1F8 from version 5).
//!
//! ```text
//! 0x000 VERSION u32            0x004 GUEST_SVN u32        0x008 POLICY u64 (§4.3)
//! 0x010 FAMILY_ID [16]         0x020 IMAGE_ID [16]        0x030 VMPL u32
//! 0x034 SIGNATURE_ALGO u32     0x038 CURRENT_TCB u64      0x040 PLATFORM_INFO u64
//! 0x048 KEY_INFO u32           0x04C reserved             0x050 REPORT_DATA [64]
//! 0x090 MEASUREMENT [48]       0x0C0 HOST_DATA [32]       0x0E0 ID_KEY_DIGEST [48]
//! 0x110 AUTHOR_KEY_DIGEST [48] 0x140 REPORT_ID [32]       0x160 REPORT_ID_MA [32]
//! 0x180 REPORTED_TCB u64       0x188 CPUID_FAM_ID, 0x189 CPUID_MOD_ID, 0x18A CPUID_STEP (v3+)
//! 0x18B reserved               0x1A0 CHIP_ID [64]         0x1E0 COMMITTED_TCB u64
//! 0x1E8 CURRENT_BUILD/MINOR/MAJOR, 0x1EB reserved
//! 0x1EC COMMITTED_BUILD/MINOR/MAJOR, 0x1EF reserved       0x1F0 LAUNCH_TCB u64
//! 0x1F8 LAUNCH_MIT_VECTOR u64 (v5) 0x200 CURRENT_MIT_VECTOR u64 (v5)   0x208 reserved
//! 0x2A0 SIGNATURE [512]: R [72] LE, S [72] LE, reserved (ECDSA P-384 with SHA-384 format)
//! ```
//!
//! All integers are little-endian. The signature covers bytes `0x000..0x2A0`.
//!
//! [`Report::parse`] rejects a wrong length, a version outside 2..=5, a signature
//! algorithm other than 1 (ECDSA P-384 with SHA-384), a reserved `SIGNING_KEY` encoding,
//! and non-zero bytes in the reserved ranges that every version 2..=5 leaves reserved
//! (listed in [`RESERVED_RANGES`]). Every other byte is modelled, so
//! `Report::parse(b)?.to_bytes() == b` for every accepted `b`.

use core::fmt;

/// Size of the report: 1184 bytes (Table 22).
pub const REPORT_LEN: usize = 0x4A0;
/// The report signature covers bytes `0x000..SIGNED_LEN` (Table 22, `SIGNATURE`).
pub const SIGNED_LEN: usize = 0x2A0;
/// Offset of the `SIGNATURE` field.
pub const SIGNATURE_OFFSET: usize = 0x2A0;
/// Length of each of R and S in the signature field (zero-extended little-endian).
pub const SIG_COMPONENT_LEN: usize = 72;

/// Lowest report version accepted (firmware ABI 1.51+).
pub const MIN_VERSION: u32 = 2;
/// Highest report version accepted (ABI 1.57+ emits version 5).
pub const MAX_VERSION: u32 = 5;
/// `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384 (the only algorithm the spec defines).
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

const _: () = assert!(SIGNATURE_OFFSET + 2 * SIG_COMPONENT_LEN <= REPORT_LEN);
const _: () = assert!(SIGNED_LEN == SIGNATURE_OFFSET);

/// Byte ranges that are reserved (must be zero) in every report version 2..=5.
/// `0x188..0x18B` (CPUID) is additionally reserved in version 2.
pub const RESERVED_RANGES: [(usize, usize); 6] = [
    (0x04C, 0x050),
    (0x18B, 0x1A0),
    (0x1EB, 0x1EC),
    (0x1EF, 0x1F0),
    (0x208, 0x2A0),
    (SIGNATURE_OFFSET + 2 * SIG_COMPONENT_LEN, REPORT_LEN),
];

/// Why bytes are not an acceptable attestation report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The report is not exactly [`REPORT_LEN`] bytes.
    #[error("attestation report is {0} bytes, expected 1184")]
    WrongLength(usize),
    /// `VERSION` outside 2..=5.
    #[error("unsupported attestation report version {0} (accepted: 2..=5)")]
    UnsupportedVersion(u32),
    /// `SIGNATURE_ALGO` is not 1 (ECDSA P-384 with SHA-384).
    #[error("unsupported report signature algorithm {0} (expected 1 = ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm(u32),
    /// `KEY_INFO.SIGNING_KEY` holds a reserved encoding (2..=6).
    #[error("reserved SIGNING_KEY encoding {0} in KEY_INFO")]
    ReservedSigningKey(u8),
    /// A byte the specification reserves (must be zero) is not zero.
    #[error("reserved report byte at offset {offset:#x} is {value:#04x}, must be zero")]
    ReservedNonZero {
        /// Offset of the first offending byte.
        offset: usize,
        /// Its value.
        value: u8,
    },
}

/// `GUEST_POLICY` (ABI spec §4.3): restrictions the guest owner set at launch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bits 7:0, the minimum ABI minor version.
    pub fn abi_minor(self) -> u8 {
        (self.0 & 0xff) as u8
    }
    /// Bits 15:8, the minimum ABI major version.
    pub fn abi_major(self) -> u8 {
        ((self.0 >> 8) & 0xff) as u8
    }
    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// Bit 16: the host may use SMT.
    pub fn smt_allowed(self) -> bool {
        self.bit(16)
    }
    /// Bit 17: reserved, must be one (set by every firmware that launched the guest).
    pub fn reserved_bit17(self) -> bool {
        self.bit(17)
    }
    /// Bit 18: association with a migration agent is allowed.
    pub fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    /// Bit 19: debugging is allowed (the hypervisor can read and write guest memory).
    pub fn debug(self) -> bool {
        self.bit(19)
    }
    /// Bit 20: the guest may only be activated on one socket.
    pub fn single_socket(self) -> bool {
        self.bit(20)
    }
    /// Bit 21: CXL may be populated with devices or memory.
    pub fn cxl_allowed(self) -> bool {
        self.bit(21)
    }
    /// Bit 22: AES-256-XTS memory encryption required.
    pub fn mem_aes_256_xts(self) -> bool {
        self.bit(22)
    }
    /// Bit 23: RAPL must be disabled.
    pub fn rapl_disabled(self) -> bool {
        self.bit(23)
    }
    /// Bit 24: ciphertext hiding must be enabled.
    pub fn ciphertext_hiding(self) -> bool {
        self.bit(24)
    }
    /// Bit 25: page swap commands disabled.
    pub fn page_swap_disabled(self) -> bool {
        self.bit(25)
    }
    /// The same policy with bit 19 (DEBUG) set to `on`.
    pub fn with_debug(self, on: bool) -> Self {
        self.with_bit(19, on)
    }
    /// The same policy with bit 18 (MIGRATE_MA) set to `on`.
    pub fn with_migrate_ma(self, on: bool) -> Self {
        self.with_bit(18, on)
    }
    fn with_bit(self, n: u32, on: bool) -> Self {
        if on {
            Self(self.0 | (1 << n))
        } else {
            Self(self.0 & !(1 << n))
        }
    }
}

impl fmt::Debug for GuestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestPolicy")
            .field("raw", &format_args!("{:#x}", self.0))
            .field(
                "abi",
                &format_args!("{}.{}", self.abi_major(), self.abi_minor()),
            )
            .field("smt_allowed", &self.smt_allowed())
            .field("migrate_ma", &self.migrate_ma())
            .field("debug", &self.debug())
            .field("single_socket", &self.single_socket())
            .finish()
    }
}

/// `PLATFORM_INFO` (Table 22): platform state when the report was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// Bit 0: SMT is enabled on the platform.
    pub fn smt_enabled(self) -> bool {
        self.bit(0)
    }
    /// Bit 1: TSME is enabled.
    pub fn tsme_enabled(self) -> bool {
        self.bit(1)
    }
    /// Bit 2: ECC memory is in use.
    pub fn ecc_enabled(self) -> bool {
        self.bit(2)
    }
    /// Bit 3: RAPL is disabled.
    pub fn rapl_disabled(self) -> bool {
        self.bit(3)
    }
    /// Bit 4: ciphertext hiding is enabled.
    pub fn ciphertext_hiding_enabled(self) -> bool {
        self.bit(4)
    }
    /// Bit 5: alias check completed (v3+).
    pub fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
}

/// The key that signed the report (`KEY_INFO.SIGNING_KEY`, bits 4:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportSigner {
    /// 0: the Versioned Chip Endorsement Key.
    Vcek,
    /// 1: the Versioned Loaded Endorsement Key (provisioned by a cloud provider).
    Vlek,
    /// 7: no key; the signature field is zero.
    Unsigned,
}

/// `KEY_INFO` (Table 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyInfo(pub u32);

impl KeyInfo {
    /// Bit 0 `AUTHOR_KEY_EN`: AUTHOR_KEY_DIGEST is present.
    pub fn author_key_en(self) -> bool {
        self.0 & 1 == 1
    }
    /// Bit 1 `MASK_CHIP_KEY`: the firmware wrote zeros instead of a signature.
    pub fn mask_chip_key(self) -> bool {
        (self.0 >> 1) & 1 == 1
    }
    /// Bits 4:2 `SIGNING_KEY`, raw.
    pub fn signing_key_raw(self) -> u8 {
        ((self.0 >> 2) & 0b111) as u8
    }
    /// Bits 4:2 `SIGNING_KEY`, decoded; `None` for a reserved encoding.
    pub fn signer(self) -> Option<ReportSigner> {
        match self.signing_key_raw() {
            0 => Some(ReportSigner::Vcek),
            1 => Some(ReportSigner::Vlek),
            7 => Some(ReportSigner::Unsigned),
            _ => None,
        }
    }
}

/// Layout of a `TCB_VERSION` (ABI spec §2.2, Table 3), which depends on the processor family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcbLayout {
    /// Milan and Genoa: `BOOT_LOADER`, `TEE`, 4 reserved, `SNP`, `MICROCODE`.
    Legacy,
    /// Turin: `FMC`, `BOOT_LOADER`, `TEE`, `SNP`, 3 reserved, `MICROCODE`.
    Turin,
}

/// A `TCB_VERSION` as it appears in the report: 8 bytes whose meaning depends on the
/// processor family (see [`TcbLayout`]). The v2 report carries no family, so decoding
/// waits until the family is known.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RawTcb(pub [u8; 8]);

impl RawTcb {
    /// The little-endian u64 value.
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.0)
    }
    /// Decodes the security version numbers with `layout`.
    pub fn decode(self, layout: TcbLayout) -> TcbVersion {
        let [b0, b1, b2, b3, _, _, b6, b7] = self.0;
        match layout {
            TcbLayout::Legacy => TcbVersion {
                fmc: None,
                bootloader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            },
            TcbLayout::Turin => TcbVersion {
                fmc: Some(b0),
                bootloader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            },
        }
    }
}

impl fmt::Debug for RawTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawTcb({})", hex::encode(self.0))
    }
}

/// Security version numbers of the platform's firmware components (Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcbVersion {
    /// `FMC` SPL (Turin only).
    pub fmc: Option<u8>,
    /// `BOOT_LOADER` SPL.
    pub bootloader: u8,
    /// `TEE` (PSP OS) SPL.
    pub tee: u8,
    /// `SNP` firmware SPL.
    pub snp: u8,
    /// `MICROCODE` SPL (lowest patch level of all cores).
    pub microcode: u8,
}

impl TcbVersion {
    /// Encodes with `layout` (reserved bytes zero). `fmc` is dropped in the legacy layout.
    pub fn encode(self, layout: TcbLayout) -> RawTcb {
        match layout {
            TcbLayout::Legacy => RawTcb([
                self.bootloader,
                self.tee,
                0,
                0,
                0,
                0,
                self.snp,
                self.microcode,
            ]),
            TcbLayout::Turin => RawTcb([
                self.fmc.unwrap_or(0),
                self.bootloader,
                self.tee,
                self.snp,
                0,
                0,
                0,
                self.microcode,
            ]),
        }
    }

    /// The first component (in `fmc, bootloader, tee, snp, microcode` order) that is
    /// below `floor`, as `(name, value, floor value)`. An absent `fmc` counts as 0.
    pub fn first_below(&self, floor: &TcbVersion) -> Option<(&'static str, u8, u8)> {
        let pairs = [
            ("fmc", self.fmc.unwrap_or(0), floor.fmc.unwrap_or(0)),
            ("bootloader", self.bootloader, floor.bootloader),
            ("tee", self.tee, floor.tee),
            ("snp", self.snp, floor.snp),
            ("microcode", self.microcode, floor.microcode),
        ];
        pairs.into_iter().find(|(_, have, min)| have < min)
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// `CPUID_FAM_ID`, `CPUID_MOD_ID`, `CPUID_STEP` (report version 3+): the combined
/// extended+base family and model, and the stepping, of the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpuid {
    /// Family (e.g. 0x19 for Zen 3/4, 0x1A for Zen 5).
    pub family: u8,
    /// Model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A firmware version `major.minor.build` (`CURRENT_*` / `COMMITTED_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FirmwareVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Build.
    pub build: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The report signature as stored: R and S zero-extended to 72 bytes, little-endian.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReportSignature {
    /// R, little-endian.
    pub r: [u8; SIG_COMPONENT_LEN],
    /// S, little-endian.
    pub s: [u8; SIG_COMPONENT_LEN],
}

impl Default for ReportSignature {
    fn default() -> Self {
        Self {
            r: [0; SIG_COMPONENT_LEN],
            s: [0; SIG_COMPONENT_LEN],
        }
    }
}

impl fmt::Debug for ReportSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportSignature")
            .field("r", &hex::encode(self.r))
            .field("s", &hex::encode(self.s))
            .finish()
    }
}

/// A parsed `ATTESTATION_REPORT` (Table 22). Not yet verified: see
/// [`crate::attestation::verify_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `VERSION` (2..=5).
    pub version: u32,
    /// `GUEST_SVN`.
    pub guest_svn: u32,
    /// `POLICY`.
    pub policy: GuestPolicy,
    /// `FAMILY_ID` from the ID block.
    pub family_id: [u8; 16],
    /// `IMAGE_ID` from the ID block.
    pub image_id: [u8; 16],
    /// `VMPL` of the request.
    pub vmpl: u32,
    /// `SIGNATURE_ALGO` (always 1 after parsing).
    pub sig_algo: u32,
    /// `CURRENT_TCB`.
    pub current_tcb: RawTcb,
    /// `PLATFORM_INFO`.
    pub platform_info: PlatformInfo,
    /// `KEY_INFO` (author key, mask chip key, signing key).
    pub key_info: KeyInfo,
    /// `REPORT_DATA`: 64 bytes chosen by the guest.
    pub report_data: [u8; 64],
    /// `MEASUREMENT`: the launch digest.
    pub measurement: [u8; 48],
    /// `HOST_DATA`: 32 bytes chosen by the host at launch.
    pub host_data: [u8; 32],
    /// `ID_KEY_DIGEST`.
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST`.
    pub author_key_digest: [u8; 48],
    /// `REPORT_ID`.
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`.
    pub report_id_ma: [u8; 32],
    /// `REPORTED_TCB`: the TCB the VCEK that signs this report is derived from.
    pub reported_tcb: RawTcb,
    /// Bytes `0x188..0x18B`: `CPUID_FAM_ID`, `CPUID_MOD_ID`, `CPUID_STEP` from
    /// version 3 (zero, reserved, in version 2). Use [`Report::cpuid`].
    pub cpuid_raw: [u8; 3],
    /// `CHIP_ID` (zero if MaskChipId is set; Turin uses the first 8 bytes).
    pub chip_id: [u8; 64],
    /// `COMMITTED_TCB`.
    pub committed_tcb: RawTcb,
    /// `CURRENT_MAJOR/MINOR/BUILD`.
    pub current_version: FirmwareVersion,
    /// `COMMITTED_MAJOR/MINOR/BUILD`.
    pub committed_version: FirmwareVersion,
    /// `LAUNCH_TCB`.
    pub launch_tcb: RawTcb,
    /// Bytes `0x1F8..0x200`: `LAUNCH_MIT_VECTOR` from version 5 (zero before).
    pub launch_mit_vector: u64,
    /// Bytes `0x200..0x208`: `CURRENT_MIT_VECTOR` from version 5 (zero before).
    pub current_mit_vector: u64,
    /// `SIGNATURE`: R and S.
    pub signature: ReportSignature,
}

/// Reads a fixed-size array at `offset`. The callers only use constant offsets inside
/// [`REPORT_LEN`], on a buffer whose length has been checked.
fn arr<const N: usize>(b: &[u8; REPORT_LEN], offset: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(offset..offset + N) {
        out.copy_from_slice(src);
    }
    out
}

fn u32_at(b: &[u8; REPORT_LEN], offset: usize) -> u32 {
    u32::from_le_bytes(arr(b, offset))
}

fn u64_at(b: &[u8; REPORT_LEN], offset: usize) -> u64 {
    u64::from_le_bytes(arr(b, offset))
}

fn put(b: &mut [u8; REPORT_LEN], offset: usize, src: &[u8]) {
    if let Some(dst) = b.get_mut(offset..offset + src.len()) {
        dst.copy_from_slice(src);
    }
}

fn check_zero(b: &[u8; REPORT_LEN], start: usize, end: usize) -> Result<(), ReportError> {
    let range = b.get(start..end).unwrap_or_default();
    match range.iter().position(|&v| v != 0) {
        None => Ok(()),
        Some(i) => Err(ReportError::ReservedNonZero {
            offset: start + i,
            value: range.get(i).copied().unwrap_or(0),
        }),
    }
}

impl Report {
    /// Parses an `ATTESTATION_REPORT` (Table 22). See the module documentation for
    /// what is rejected here; nothing is authenticated yet.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let b: &[u8; REPORT_LEN] = bytes
            .try_into()
            .map_err(|_| ReportError::WrongLength(bytes.len()))?;
        let version = u32_at(b, 0x000);
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(ReportError::UnsupportedVersion(version));
        }
        let sig_algo = u32_at(b, 0x034);
        if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(ReportError::UnsupportedSignatureAlgorithm(sig_algo));
        }
        let key_info = KeyInfo(u32_at(b, 0x048));
        if key_info.signer().is_none() {
            return Err(ReportError::ReservedSigningKey(key_info.signing_key_raw()));
        }
        for (start, end) in RESERVED_RANGES {
            check_zero(b, start, end)?;
        }
        if version == 2 {
            check_zero(b, 0x188, 0x18B)?;
        }
        let version_at = |offset: usize| {
            let [build, minor, major] = arr::<3>(b, offset);
            FirmwareVersion {
                major,
                minor,
                build,
            }
        };
        Ok(Self {
            version,
            guest_svn: u32_at(b, 0x004),
            policy: GuestPolicy(u64_at(b, 0x008)),
            family_id: arr(b, 0x010),
            image_id: arr(b, 0x020),
            vmpl: u32_at(b, 0x030),
            sig_algo,
            current_tcb: RawTcb(arr(b, 0x038)),
            platform_info: PlatformInfo(u64_at(b, 0x040)),
            key_info,
            report_data: arr(b, 0x050),
            measurement: arr(b, 0x090),
            host_data: arr(b, 0x0C0),
            id_key_digest: arr(b, 0x0E0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            report_id_ma: arr(b, 0x160),
            reported_tcb: RawTcb(arr(b, 0x180)),
            cpuid_raw: arr(b, 0x188),
            chip_id: arr(b, 0x1A0),
            committed_tcb: RawTcb(arr(b, 0x1E0)),
            current_version: version_at(0x1E8),
            committed_version: version_at(0x1EC),
            launch_tcb: RawTcb(arr(b, 0x1F0)),
            launch_mit_vector: u64_at(b, 0x1F8),
            current_mit_vector: u64_at(b, 0x200),
            signature: ReportSignature {
                r: arr(b, SIGNATURE_OFFSET),
                s: arr(b, SIGNATURE_OFFSET + SIG_COMPONENT_LEN),
            },
        })
    }

    /// Serializes to the 1184-byte layout (reserved bytes zero). For a parsed report
    /// this returns the parsed bytes exactly.
    pub fn to_bytes(&self) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        put(&mut b, 0x000, &self.version.to_le_bytes());
        put(&mut b, 0x004, &self.guest_svn.to_le_bytes());
        put(&mut b, 0x008, &self.policy.0.to_le_bytes());
        put(&mut b, 0x010, &self.family_id);
        put(&mut b, 0x020, &self.image_id);
        put(&mut b, 0x030, &self.vmpl.to_le_bytes());
        put(&mut b, 0x034, &self.sig_algo.to_le_bytes());
        put(&mut b, 0x038, &self.current_tcb.0);
        put(&mut b, 0x040, &self.platform_info.0.to_le_bytes());
        put(&mut b, 0x048, &self.key_info.0.to_le_bytes());
        put(&mut b, 0x050, &self.report_data);
        put(&mut b, 0x090, &self.measurement);
        put(&mut b, 0x0C0, &self.host_data);
        put(&mut b, 0x0E0, &self.id_key_digest);
        put(&mut b, 0x110, &self.author_key_digest);
        put(&mut b, 0x140, &self.report_id);
        put(&mut b, 0x160, &self.report_id_ma);
        put(&mut b, 0x180, &self.reported_tcb.0);
        put(&mut b, 0x188, &self.cpuid_raw);
        put(&mut b, 0x1A0, &self.chip_id);
        put(&mut b, 0x1E0, &self.committed_tcb.0);
        let v = |v: FirmwareVersion| [v.build, v.minor, v.major];
        put(&mut b, 0x1E8, &v(self.current_version));
        put(&mut b, 0x1EC, &v(self.committed_version));
        put(&mut b, 0x1F0, &self.launch_tcb.0);
        put(&mut b, 0x1F8, &self.launch_mit_vector.to_le_bytes());
        put(&mut b, 0x200, &self.current_mit_vector.to_le_bytes());
        put(&mut b, SIGNATURE_OFFSET, &self.signature.r);
        put(
            &mut b,
            SIGNATURE_OFFSET + SIG_COMPONENT_LEN,
            &self.signature.s,
        );
        b
    }

    /// The signed bytes `0x000..0x2A0` of [`Report::to_bytes`].
    pub fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let all = self.to_bytes();
        let mut out = [0u8; SIGNED_LEN];
        if let Some(src) = all.get(..SIGNED_LEN) {
            out.copy_from_slice(src);
        }
        out
    }

    /// The CPUID fields (version 3 and later); `None` for version 2.
    pub fn cpuid(&self) -> Option<Cpuid> {
        if self.version < 3 {
            return None;
        }
        let [family, model, stepping] = self.cpuid_raw;
        Some(Cpuid {
            family,
            model,
            stepping,
        })
    }

    /// The key that signed the report (`KEY_INFO.SIGNING_KEY`). Parsing guarantees it is
    /// not a reserved encoding.
    pub fn signer(&self) -> ReportSigner {
        self.key_info.signer().unwrap_or(ReportSigner::Unsigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(version: u32) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b
    }

    fn filled(version: u32) -> [u8; REPORT_LEN] {
        // Every modelled byte non-zero and distinct-ish; reserved ranges zero.
        let mut b = [0u8; REPORT_LEN];
        for (i, v) in b.iter_mut().enumerate() {
            *v = (i % 251) as u8 | 1;
        }
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b[0x48..0x4C].copy_from_slice(&(1u32 << 2 | 0b11).to_le_bytes());
        for (s, e) in RESERVED_RANGES {
            b[s..e].fill(0);
        }
        if version == 2 {
            b[0x188..0x18B].fill(0);
        }
        b
    }

    #[test]
    fn sizes_match_table_22() {
        assert_eq!(REPORT_LEN, 1184);
        assert_eq!(SIGNED_LEN, 0x2A0);
        assert_eq!(SIGNATURE_OFFSET + SIG_COMPONENT_LEN, 0x2E8);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for len in [0, 1, 0x2A0, REPORT_LEN - 1, REPORT_LEN + 1, 2 * REPORT_LEN] {
            let v = vec![0u8; len];
            assert_eq!(Report::parse(&v), Err(ReportError::WrongLength(len)));
        }
    }

    #[test]
    fn versions_outside_2_to_5_are_refused() {
        for v in [0u32, 1, 6, 7, 0x100, u32::MAX] {
            assert_eq!(
                Report::parse(&minimal(v)),
                Err(ReportError::UnsupportedVersion(v))
            );
        }
        for v in 2..=5 {
            let r = Report::parse(&minimal(v)).unwrap();
            assert_eq!(r.version, v);
            assert_eq!(r.cpuid().is_some(), v >= 3);
        }
    }

    #[test]
    fn signature_algorithm_and_signing_key_are_checked() {
        let mut b = minimal(3);
        b[0x34] = 2;
        assert_eq!(
            Report::parse(&b),
            Err(ReportError::UnsupportedSignatureAlgorithm(2))
        );
        b[0x34] = 0;
        assert_eq!(
            Report::parse(&b),
            Err(ReportError::UnsupportedSignatureAlgorithm(0))
        );
        for (raw, expected) in [
            (0u32, Some(ReportSigner::Vcek)),
            (1, Some(ReportSigner::Vlek)),
            (7, Some(ReportSigner::Unsigned)),
            (2, None),
            (6, None),
        ] {
            let mut b = minimal(3);
            b[0x48..0x4C].copy_from_slice(&(raw << 2).to_le_bytes());
            match expected {
                Some(s) => assert_eq!(Report::parse(&b).unwrap().signer(), s),
                None => assert_eq!(
                    Report::parse(&b),
                    Err(ReportError::ReservedSigningKey(raw as u8))
                ),
            }
        }
    }

    #[test]
    fn reserved_bytes_must_be_zero() {
        for (s, e) in RESERVED_RANGES {
            for off in [s, e - 1] {
                let mut b = minimal(5);
                b[off] = 0x5a;
                assert_eq!(
                    Report::parse(&b),
                    Err(ReportError::ReservedNonZero {
                        offset: off,
                        value: 0x5a
                    }),
                    "{off:#x}"
                );
            }
        }
        // CPUID bytes are reserved in v2 only.
        let mut b = minimal(2);
        b[0x189] = 0x11;
        assert!(matches!(
            Report::parse(&b),
            Err(ReportError::ReservedNonZero { offset: 0x189, .. })
        ));
        let mut b = minimal(3);
        b[0x188..0x18B].copy_from_slice(&[0x19, 0x11, 0x01]);
        let r = Report::parse(&b).unwrap();
        assert_eq!(
            r.cpuid(),
            Some(Cpuid {
                family: 0x19,
                model: 0x11,
                stepping: 1
            })
        );
    }

    #[test]
    fn round_trip_is_exact_for_every_version() {
        for v in 2..=5 {
            let b = filled(v);
            let r = Report::parse(&b).unwrap();
            assert_eq!(r.to_bytes(), b, "v{v}");
            assert_eq!(&r.signed_bytes()[..], &b[..SIGNED_LEN]);
            assert_eq!(Report::parse(&r.to_bytes()).unwrap(), r);
        }
    }

    #[test]
    fn fields_land_at_table_22_offsets() {
        let mut b = minimal(5);
        b[0x08..0x10].copy_from_slice(&0xb0000u64.to_le_bytes());
        b[0x30] = 1;
        b[0x50] = 0xAA;
        b[0x8F] = 0xAB;
        b[0x90] = 0xBB;
        b[0xBF] = 0xBC;
        b[0x180..0x188].copy_from_slice(&[0, 1, 0, 2, 0, 0, 0, 0x47]);
        b[0x1A0] = 0xCC;
        b[0x1E8..0x1EB].copy_from_slice(&[0x3d, 0x37, 0x01]);
        b[0x2A0] = 0xDD;
        b[0x2E8] = 0xEE;
        let r = Report::parse(&b).unwrap();
        assert!(r.policy.debug() && r.policy.smt_allowed() && !r.policy.migrate_ma());
        assert_eq!(r.vmpl, 1);
        assert_eq!((r.report_data[0], r.report_data[63]), (0xAA, 0xAB));
        assert_eq!((r.measurement[0], r.measurement[47]), (0xBB, 0xBC));
        assert_eq!(r.chip_id[0], 0xCC);
        assert_eq!(r.current_version.to_string(), "1.55.61");
        assert_eq!((r.signature.r[0], r.signature.s[0]), (0xDD, 0xEE));
        assert_eq!(
            r.reported_tcb.decode(TcbLayout::Turin),
            TcbVersion {
                fmc: Some(0),
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 0x47
            }
        );
    }

    #[test]
    fn tcb_layouts_round_trip_and_compare() {
        let legacy = RawTcb([3, 0, 0, 0, 0, 0, 8, 0x73]);
        let t = legacy.decode(TcbLayout::Legacy);
        assert_eq!((t.bootloader, t.tee, t.snp, t.microcode), (3, 0, 8, 0x73));
        assert_eq!(t.fmc, None);
        assert_eq!(t.encode(TcbLayout::Legacy), legacy);
        let turin = RawTcb([0, 1, 0, 2, 0, 0, 0, 0x47]);
        assert_eq!(
            turin.decode(TcbLayout::Turin).encode(TcbLayout::Turin),
            turin
        );
        let floor = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 9,
            microcode: 0,
        };
        assert_eq!(t.first_below(&floor), Some(("snp", 8, 9)));
        assert_eq!(t.first_below(&t), None);
        let fmc_floor = TcbVersion {
            fmc: Some(1),
            ..TcbVersion::default()
        };
        assert_eq!(
            turin.decode(TcbLayout::Turin).first_below(&fmc_floor),
            Some(("fmc", 0, 1))
        );
    }

    #[test]
    fn policy_accessors() {
        let p = GuestPolicy(0x3001f);
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0x1f));
        assert!(p.smt_allowed() && p.reserved_bit17());
        assert!(!p.debug() && !p.migrate_ma() && !p.single_socket());
        assert!(p.with_debug(true).debug());
        assert_eq!(p.with_debug(true).with_debug(false), p);
        assert!(p.with_migrate_ma(true).migrate_ma());
        assert!(GuestPolicy(1 << 20).single_socket());
    }
}
