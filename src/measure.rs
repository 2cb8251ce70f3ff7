//! Expected SEV-SNP launch digests: what the AMD Secure Processor will report as
//! `MEASUREMENT` for a guest launched by QEMU with measured direct boot
//! (`-object sev-snp-guest,...,kernel-hashes=on` plus `-bios OVMF.fd -kernel -initrd -append`).
//!
//! The digest is computed by the `sev` crate (`sev::measurement::snp::snp_calc_launch_digest`):
//! the firmware pages, the SEV metadata sections (secrets, CPUID, zero pages and the
//! `SNP_KERNEL_HASHES` page holding SHA-256 of kernel, initrd and command line), then one
//! VMSA page per vCPU, each chained into a SHA-384 launch digest (SEV-SNP ABI §8.17.2).
//!
//! This module adds what the crate leaves to its callers: the firmware is parsed and
//! checked here first, with checked arithmetic, so that a missing or garbled firmware
//! (no GUIDed footer table, no SEV metadata, no `SNP_KERNEL_HASHES` section, sizes that
//! point outside the file) is a typed [`MeasureError`] and never reaches the indexing and
//! `assert!` inside the crate. The command line is checked too: QEMU hashes it verbatim
//! while the crate trims it, so leading or trailing whitespace is refused rather than
//! measured wrongly.
//!
//! [`publish`] builds the document published as `measurements/<version>.json`.

use serde::{Deserialize, Serialize};
use sev::measurement::snp::{calc_snp_ovmf_hash, snp_calc_launch_digest, SnpMeasurementArgs};
use sev::measurement::vcpu_types::CpuType;
use sev::measurement::vmsa::{GuestFeatures, VMMType};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Length of a launch digest (SHA-384).
pub const DIGEST_LEN: usize = 48;

/// The vCPU types every published measurements file covers.
pub const PUBLISHED_VCPU_TYPES: [&str; 3] = ["EPYC-Milan", "EPYC-Genoa", "EPYC-v4"];
/// The vCPU counts every published measurements file covers.
pub const PUBLISHED_VCPU_COUNTS: [u32; 3] = [1, 2, 4];
/// Guest features (VMSA `SEV_FEATURES`) of frostamp's launch: SNPActive only.
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;
/// Guest policy of frostamp's launch (not part of the digest; checked in the report):
/// bit 17 (reserved, must be 1) and bit 16 (SMT allowed); no debug, no migration agent.
pub const GUEST_POLICY: u64 = 0x30000;
/// File names inside an image directory (`make image` → `target/image/prod/`).
pub const IMAGE_FILES: [&str; 4] = ["OVMF.fd", "bzImage", "initrd.cpio", "cmdline"];

/// Largest firmware accepted (OVMF builds are 2–4 MiB; the volume ends at 4 GiB).
const MAX_FIRMWARE: usize = 64 << 20;
/// Largest vCPU count accepted (QEMU's SNP maximum is far below).
pub const MAX_VCPUS: u32 = 512;
const PAGE: usize = 4096;
/// `OvmfFooterTableEntry`: u16 size + 16-byte GUID.
const ENTRY_HEADER: usize = 18;
/// `OvmfSevMetadataHeader`: "ASEV", size, version, num_items.
const METADATA_HEADER: usize = 16;
/// One `OvmfSevMetadataSectionDesc` as edk2 lays it out (three UINT32).
const METADATA_DESC: usize = 12;

// GUIDs of the OVMF footer table (little-endian byte order, as stored).
const FOOTER_GUID: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
const SEV_HASH_TABLE_RV_GUID: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
const SEV_ES_RESET_BLOCK_GUID: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
const SEV_METADATA_GUID: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";

/// Why no digest could be computed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// An input file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which input.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The firmware is not an OVMF image the digest can be computed for.
    #[error("firmware {path}: {problem}")]
    Firmware {
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        problem: FirmwareProblem,
    },
    /// A kernel is given but the firmware cannot measure it.
    #[error(
        "firmware {0}: kernel specified but the OVMF SEV metadata has no SNP_KERNEL_HASHES section \
         (measured direct boot needs an OvmfPkg/AmdSev/AmdSevX64.dsc build)"
    )]
    NoKernelHashes(PathBuf),
    /// Unknown vCPU type name.
    #[error("unknown vCPU type {0:?}; known: {known}", known = known_vcpu_types().join(", "))]
    VcpuType(String),
    /// vCPU count outside 1..=MAX_VCPUS.
    #[error("vCPU count {0} is outside 1..={MAX_VCPUS}")]
    Vcpus(u32),
    /// Guest features not a number.
    #[error("guest features {0:?} is not a number (hex 0x.. or decimal)")]
    GuestFeatures(String),
    /// Guest features without SNPActive (bit 0): not an SNP guest.
    #[error("guest features {0:#x} lack SNPActive (bit 0): not an SEV-SNP launch")]
    NotSnp(u64),
    /// The kernel command line cannot be measured as QEMU measures it.
    #[error("kernel command line: {0}")]
    Cmdline(String),
    /// initrd or command line without a kernel.
    #[error("--initrd and --append need --kernel (they are measured only with a kernel)")]
    NeedsKernel,
    /// The `sev` crate refused the inputs.
    #[error("sev crate: {0}")]
    Sev(String),
}

/// What is wrong with a firmware image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareProblem {
    /// Size 0, not a multiple of 4 KiB, or too large.
    #[error("size {0} bytes is not a positive multiple of 4096 up to 64 MiB")]
    Size(usize),
    /// No OVMF GUIDed footer table at the end of the image.
    #[error(
        "no OVMF footer table (GUID {FOOTER_GUID}) 50 bytes before the end: not an OVMF image"
    )]
    NoFooterTable,
    /// The footer table or one of its entries has an impossible size.
    #[error("OVMF footer table is garbled: {0}")]
    BadFooterTable(String),
    /// No SEV metadata entry: the firmware does not support SEV-SNP.
    #[error("no SEV metadata (GUID {SEV_METADATA_GUID}) in the footer table: built without SEV-SNP support")]
    NoSevMetadata,
    /// The SEV metadata is garbled.
    #[error("SEV metadata is garbled: {0}")]
    BadSevMetadata(String),
    /// No SEV-ES reset block: the VMSA cannot be built.
    #[error("no SEV-ES reset block (GUID {SEV_ES_RESET_BLOCK_GUID}) in the footer table")]
    NoResetBlock,
}

/// Which VMM builds the VMSAs. frostamp launches with QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vmm {
    /// QEMU (and so KVM): what frostamp uses.
    #[default]
    Qemu,
    /// AWS EC2 as the `sev` crate 8 models it (VMSA rdx = 0): sev-snp-measure ≥ 0.0.13
    /// changed its EC2 VMSA (rdx = 0x600), so these digests are the crate's, not EC2's today.
    Ec2,
}

/// Section types in the OVMF SEV metadata (edk2 `OvmfSevMetadata.asm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// SNP secure memory (zero pages).
    SnpSecMemory,
    /// The secrets page.
    SnpSecrets,
    /// The CPUID page.
    Cpuid,
    /// The SVSM calling area.
    SvsmCaa,
    /// The page where QEMU places the kernel/initrd/cmdline hashes.
    SnpKernelHashes,
}

/// One section of the SEV metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Guest physical address.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// Kind.
    pub kind: SectionKind,
}

/// What the digest depends on in an OVMF image, checked.
#[derive(Debug, Clone)]
pub struct FirmwareInfo {
    /// Image size in bytes.
    pub size: usize,
    /// SEV metadata sections.
    pub sections: Vec<Section>,
    /// SEV-ES reset vector (AP entry).
    pub reset_eip: u32,
    /// GPA of the SEV hashes table (QEMU writes kernel hashes there), if any.
    pub hashes_table_gpa: Option<u32>,
}

impl FirmwareInfo {
    /// Whether measured direct boot (kernel hashes) is possible.
    pub fn has_kernel_hashes(&self) -> bool {
        self.hashes_table_gpa.is_some()
            && self
                .sections
                .iter()
                .any(|s| s.kind == SectionKind::SnpKernelHashes)
    }
}

fn guid_le(guid: &str) -> [u8; 16] {
    // Fixed, well-formed constants; a parse failure would give all-zero bytes, which
    // never matches a real table and so fails closed.
    uuid_bytes(guid).unwrap_or([0u8; 16])
}

/// RFC 4122 text to the mixed-endian byte order EFI GUIDs are stored in.
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let b: [u8; 16] = hex::decode(hex).ok()?.try_into().ok()?;
    let mut out = b;
    out.get_mut(0..4)?.reverse();
    out.get_mut(4..6)?.reverse();
    out.get_mut(6..8)?.reverse();
    Some(out)
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Parse and check an OVMF image the way the `sev` crate will read it.
pub fn inspect_firmware(data: &[u8]) -> Result<FirmwareInfo, FirmwareProblem> {
    use FirmwareProblem as P;
    let size = data.len();
    if size == 0 || !size.is_multiple_of(PAGE) || size > MAX_FIRMWARE {
        return Err(P::Size(size));
    }
    // The footer entry sits 32 bytes before the end (after it: the reset vector).
    let footer_at = size - 32 - ENTRY_HEADER;
    let footer_guid = data.get(footer_at + 2..footer_at + ENTRY_HEADER);
    if footer_guid != Some(&guid_le(FOOTER_GUID)[..]) {
        return Err(P::NoFooterTable);
    }
    let footer_size = usize::from(u16_at(data, footer_at).ok_or(P::NoFooterTable)?);
    let table_size = footer_size
        .checked_sub(ENTRY_HEADER)
        .ok_or_else(|| P::BadFooterTable(format!("footer size {footer_size}")))?;
    let table_start = footer_at
        .checked_sub(table_size)
        .ok_or_else(|| P::BadFooterTable(format!("table size {table_size} exceeds the image")))?;
    let table = data
        .get(table_start..footer_at)
        .ok_or_else(|| P::BadFooterTable("table outside the image".into()))?;
    // Entries are laid out back to front, each ending in its (size, GUID) header.
    let mut entries: HashMap<[u8; 16], &[u8]> = HashMap::new();
    let mut offset = table_size;
    while offset >= ENTRY_HEADER {
        let head = offset - ENTRY_HEADER;
        let entry_size = usize::from(u16_at(table, head).ok_or(P::NoFooterTable)?);
        if entry_size < ENTRY_HEADER {
            return Err(P::BadFooterTable(format!("entry size {entry_size}")));
        }
        if offset < entry_size {
            break; // as the sev crate and sev-snp-measure do
        }
        let guid: [u8; 16] = table
            .get(head + 2..offset)
            .and_then(|g| g.try_into().ok())
            .ok_or(P::NoFooterTable)?;
        let body = table
            .get(offset - entry_size..head)
            .ok_or_else(|| P::BadFooterTable("entry outside the table".into()))?;
        entries.insert(guid, body);
        offset -= entry_size;
    }

    let reset_eip = entries
        .get(&guid_le(SEV_ES_RESET_BLOCK_GUID))
        .and_then(|e| u32_at(e, 0))
        .ok_or(P::NoResetBlock)?;
    let hashes_table_gpa = entries
        .get(&guid_le(SEV_HASH_TABLE_RV_GUID))
        .and_then(|e| u32_at(e, 0))
        .filter(|gpa| *gpa != 0);

    let meta = entries
        .get(&guid_le(SEV_METADATA_GUID))
        .ok_or(P::NoSevMetadata)?;
    let from_end = u32_at(meta, 0)
        .ok_or_else(|| P::BadSevMetadata("metadata entry shorter than 4 bytes".into()))?;
    let from_end = usize::try_from(from_end)
        .ok()
        .filter(|v| *v <= size && i32::try_from(*v).is_ok())
        .ok_or_else(|| P::BadSevMetadata(format!("offset {from_end} from the end")))?;
    let header_at = size - from_end;
    let header = data
        .get(header_at..header_at.saturating_add(METADATA_HEADER))
        .ok_or_else(|| P::BadSevMetadata("header outside the image".into()))?;
    if header.get(0..4) != Some(&b"ASEV"[..]) {
        return Err(P::BadSevMetadata("no ASEV signature".into()));
    }
    let meta_size = u32_at(header, 4).unwrap_or(0) as usize;
    let version = u32_at(header, 8).unwrap_or(0);
    let num_items = u32_at(header, 12).unwrap_or(0) as usize;
    if version != 1 {
        return Err(P::BadSevMetadata(format!("version {version}")));
    }
    let items = meta_size
        .checked_sub(METADATA_HEADER)
        .and_then(|len| data.get(header_at + METADATA_HEADER..header_at + METADATA_HEADER + len))
        .ok_or_else(|| P::BadSevMetadata(format!("size {meta_size}")))?;
    if num_items.saturating_mul(METADATA_DESC) > items.len() {
        return Err(P::BadSevMetadata(format!(
            "{num_items} sections do not fit in {} bytes",
            items.len()
        )));
    }
    let mut sections = Vec::with_capacity(num_items);
    for i in 0..num_items {
        let at = i * METADATA_DESC;
        let (gpa, sz, kind) = (u32_at(items, at), u32_at(items, at + 4), items.get(at + 8));
        let (Some(gpa), Some(sz), Some(kind)) = (gpa, sz, kind) else {
            return Err(P::BadSevMetadata(format!("section {i} truncated")));
        };
        let kind = match kind {
            1 => SectionKind::SnpSecMemory,
            2 => SectionKind::SnpSecrets,
            3 => SectionKind::Cpuid,
            4 => SectionKind::SvsmCaa,
            0x10 => SectionKind::SnpKernelHashes,
            k => {
                return Err(P::BadSevMetadata(format!(
                    "section {i} has unknown type {k:#x}"
                )))
            }
        };
        let zero_filled = matches!(kind, SectionKind::SnpSecMemory | SectionKind::SvsmCaa);
        if (zero_filled && (sz == 0 || !(sz as usize).is_multiple_of(PAGE)))
            || (kind == SectionKind::SnpKernelHashes && sz as usize != PAGE)
            || !(gpa as usize).is_multiple_of(PAGE)
        {
            return Err(P::BadSevMetadata(format!(
                "section {i} ({kind:?}) at {gpa:#x} has size {sz:#x}"
            )));
        }
        sections.push(Section {
            gpa,
            size: sz,
            kind,
        });
    }
    Ok(FirmwareInfo {
        size,
        sections,
        reset_eip,
        hashes_table_gpa,
    })
}

/// The kernel command line, as given to QEMU's `-append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline(String);

impl Cmdline {
    /// A command line exactly as QEMU will hash it (plus its terminating NUL).
    /// Refused: NUL bytes, and leading or trailing whitespace (QEMU hashes it, the `sev`
    /// crate trims it: the digest would be wrong).
    pub fn new(text: &str) -> Result<Self, MeasureError> {
        if text.contains('\0') {
            return Err(MeasureError::Cmdline("contains a NUL byte".into()));
        }
        if text.trim() != text {
            return Err(MeasureError::Cmdline(format!(
                "{text:?} has leading or trailing whitespace, which QEMU measures and the sev crate trims"
            )));
        }
        Ok(Self(text.to_string()))
    }

    /// From a file such as `target/image/prod/cmdline`: trailing newlines are dropped
    /// (as `-append "$(cat FILE)"` does); the rest is taken as is.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, MeasureError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| MeasureError::Cmdline("file is not UTF-8".into()))?;
        Self::new(text.trim_end_matches('\n'))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of what QEMU measures (text + NUL).
    pub fn measured_sha256(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.0.as_bytes());
        h.update([0u8]);
        h.finalize().into()
    }
}

/// Inputs of one launch.
#[derive(Debug, Clone)]
pub struct LaunchParams {
    /// The OVMF image (`-bios`).
    pub ovmf: PathBuf,
    /// Kernel (`-kernel`); without it nothing is measured directly.
    pub kernel: Option<PathBuf>,
    /// initrd (`-initrd`).
    pub initrd: Option<PathBuf>,
    /// Kernel command line (`-append`).
    pub cmdline: Option<Cmdline>,
    /// Number of vCPUs (`-smp`).
    pub vcpus: u32,
    /// vCPU type name as QEMU's `-cpu` (EPYC-v4, EPYC-Milan, EPYC-Genoa, ...).
    pub vcpu_type: String,
    /// VMSA `SEV_FEATURES` (0x1: SNPActive).
    pub guest_features: u64,
    /// VMM.
    pub vmm: Vmm,
    /// A precomputed OVMF hash ([`ovmf_hash`]) to start from instead of the image's pages.
    pub ovmf_hash: Option<[u8; DIGEST_LEN]>,
}

impl LaunchParams {
    /// QEMU launch with defaults: EPYC-v4, guest features 0x1, no kernel.
    pub fn new(ovmf: impl Into<PathBuf>, vcpus: u32, vcpu_type: &str) -> Self {
        Self {
            ovmf: ovmf.into(),
            kernel: None,
            initrd: None,
            cmdline: None,
            vcpus,
            vcpu_type: vcpu_type.to_string(),
            guest_features: DEFAULT_GUEST_FEATURES,
            vmm: Vmm::Qemu,
            ovmf_hash: None,
        }
    }
}

/// Every vCPU type name the `sev` crate knows (QEMU `-cpu` names).
pub fn known_vcpu_types() -> Vec<String> {
    (0u8..=255)
        .map_while(|i| match CpuType::try_from(i) {
            Ok(t) => Some(Some(t.to_string())),
            Err(_) if i == 2 => Some(None), // the crate skips 2 in its numbering
            Err(_) => None,
        })
        .flatten()
        .collect()
}

/// Parse a vCPU type name (case-insensitive) into its canonical QEMU spelling.
pub fn canonical_vcpu_type(name: &str) -> Result<String, MeasureError> {
    CpuType::try_from(name)
        .map(|t| t.to_string())
        .map_err(|_| MeasureError::VcpuType(name.to_string()))
}

/// Parse guest features: `0x..` hex or decimal.
pub fn parse_guest_features(s: &str) -> Result<u64, MeasureError> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    v.map_err(|_| MeasureError::GuestFeatures(s.to_string()))
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, MeasureError> {
    std::fs::read(path).map_err(|source| MeasureError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn checked_firmware(path: &Path) -> Result<FirmwareInfo, MeasureError> {
    let data = read_file("firmware", path)?;
    inspect_firmware(&data).map_err(|problem| MeasureError::Firmware {
        path: path.to_path_buf(),
        problem,
    })
}

/// The OVMF hash: the launch digest after the firmware pages alone (sev-snp-measure's
/// `snp:ovmf-hash` mode); a starting point for [`LaunchParams::ovmf_hash`].
pub fn ovmf_hash(ovmf: &Path) -> Result<[u8; DIGEST_LEN], MeasureError> {
    checked_firmware(ovmf)?;
    let ld =
        calc_snp_ovmf_hash(ovmf.to_path_buf()).map_err(|e| MeasureError::Sev(e.to_string()))?;
    digest_bytes(&ld.get_hex_ld())
}

fn digest_bytes(hex_ld: &str) -> Result<[u8; DIGEST_LEN], MeasureError> {
    hex::decode(hex_ld)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| MeasureError::Sev(format!("launch digest {hex_ld:?} is not 48 bytes")))
}

/// The expected SEV-SNP launch digest of `p`.
pub fn launch_digest(p: &LaunchParams) -> Result<[u8; DIGEST_LEN], MeasureError> {
    if p.vcpus == 0 || p.vcpus > MAX_VCPUS {
        return Err(MeasureError::Vcpus(p.vcpus));
    }
    if p.guest_features & 1 == 0 {
        return Err(MeasureError::NotSnp(p.guest_features));
    }
    let vcpu_type = CpuType::try_from(p.vcpu_type.as_str())
        .map_err(|_| MeasureError::VcpuType(p.vcpu_type.clone()))?;
    if p.kernel.is_none() && (p.initrd.is_some() || p.cmdline.is_some()) {
        return Err(MeasureError::NeedsKernel);
    }
    let fw = checked_firmware(&p.ovmf)?;
    if let Some(k) = &p.kernel {
        if !fw.has_kernel_hashes() {
            return Err(MeasureError::NoKernelHashes(p.ovmf.clone()));
        }
        // Readable now, so the crate's own read names no unknown file.
        read_file("kernel", k)?;
        if let Some(i) = &p.initrd {
            read_file("initrd", i)?;
        }
    }
    let ovmf_hash_hex = p.ovmf_hash.map(hex::encode);
    let args = SnpMeasurementArgs {
        vcpus: p.vcpus,
        vcpu_type,
        ovmf_file: p.ovmf.clone(),
        guest_features: GuestFeatures(p.guest_features),
        kernel_file: p.kernel.clone(),
        initrd_file: p.initrd.clone(),
        append: p.cmdline.as_ref().map(Cmdline::as_str),
        ovmf_hash_str: ovmf_hash_hex.as_deref(),
        vmm_type: Some(match p.vmm {
            Vmm::Qemu => VMMType::QEMU,
            Vmm::Ec2 => VMMType::EC2,
        }),
    };
    let ld = snp_calc_launch_digest(args).map_err(|e| MeasureError::Sev(e.to_string()))?;
    digest_bytes(&ld.get_hex_ld())
}

/// SHA-256 and size of one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The launch parameters a published digest assumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedLaunch {
    /// Always "sev-snp".
    pub mode: String,
    /// Always "qemu".
    pub vmm: String,
    /// Measured direct boot: QEMU `kernel-hashes=on`.
    pub kernel_hashes: bool,
    /// VMSA SEV_FEATURES, hex.
    pub guest_features: String,
    /// Guest policy, hex (not part of the digest; the report carries it and nodes check it).
    pub guest_policy: String,
    /// The kernel command line, verbatim.
    pub cmdline: String,
}

/// One published digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDigest {
    /// QEMU `-cpu`.
    pub vcpu_type: String,
    /// QEMU `-smp`.
    pub vcpus: u32,
    /// Expected MEASUREMENT, hex (48 bytes).
    pub launch_digest: String,
}

/// The document published as `measurements/<version>.json` (production) or
/// `measurements/<version>-dev.json` (development image, never for production).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// What this file is.
    pub about: String,
    /// Format tag.
    pub format: String,
    /// frostamp package version of the image.
    pub frostamp_version: String,
    /// "prod" or "dev".
    pub image: String,
    /// Whether a relying party may accept these digests (false for the dev image).
    pub production: bool,
    /// The command that regenerates this file.
    pub regenerate: String,
    /// The command that checks it against a fresh build.
    pub check: String,
    /// How the digests were computed.
    pub computed_with: String,
    /// Input artifacts by file name (OVMF.fd, bzImage, initrd.cpio, cmdline).
    pub inputs: std::collections::BTreeMap<String, Artifact>,
    /// Launch parameters.
    pub launch: PublishedLaunch,
    /// Digests per vCPU type and count.
    pub digests: Vec<PublishedDigest>,
}

/// Label of a published image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `make image`: the production node.
    Prod,
    /// `make image-dev`: development attestation, for boot tests only.
    Dev,
}

/// The paths of an image directory's four inputs.
pub fn image_paths(dir: &Path) -> [PathBuf; 4] {
    IMAGE_FILES.map(|f| dir.join(f))
}

/// Compute the published document for the image in `dir`.
pub fn publish(
    dir: &Path,
    kind: ImageKind,
    guest_features: u64,
) -> Result<Published, MeasureError> {
    let [ovmf, kernel, initrd, cmdline_path] = image_paths(dir);
    let cmdline = Cmdline::from_file_bytes(&read_file("cmdline", &cmdline_path)?)?;
    let mut inputs = std::collections::BTreeMap::new();
    for (name, path) in IMAGE_FILES.iter().zip(image_paths(dir).iter()) {
        let bytes = read_file("image file", path)?;
        inputs.insert(
            (*name).to_string(),
            Artifact {
                sha256: hex::encode(Sha256::digest(&bytes)),
                size: bytes.len() as u64,
            },
        );
    }
    let mut digests = Vec::new();
    for t in PUBLISHED_VCPU_TYPES {
        for n in PUBLISHED_VCPU_COUNTS {
            let p = LaunchParams {
                kernel: Some(kernel.clone()),
                initrd: Some(initrd.clone()),
                cmdline: Some(cmdline.clone()),
                guest_features,
                ..LaunchParams::new(&ovmf, n, t)
            };
            digests.push(PublishedDigest {
                vcpu_type: t.to_string(),
                vcpus: n,
                launch_digest: hex::encode(launch_digest(&p)?),
            });
        }
    }
    let (image, production, about) = match kind {
        ImageKind::Prod => (
            "prod",
            true,
            "Expected SEV-SNP launch measurements of the frostamp production image. A TSA \
             certificate's launch-measurement extension must equal one of these digests.",
        ),
        ImageKind::Dev => (
            "dev",
            false,
            "NOT FOR PRODUCTION: launch measurements of the development image (development \
             attestation compiled in, for boot tests). Never accept these in a relying party.",
        ),
    };
    Ok(Published {
        about: about.to_string(),
        format: "frostamp-measurements/1".to_string(),
        frostamp_version: env!("CARGO_PKG_VERSION").to_string(),
        image: image.to_string(),
        production,
        regenerate: format!("make measurements   # scripts/measurements.sh generate {image}"),
        check: format!("make measurements-check   # scripts/measurements.sh check {image}"),
        computed_with: format!(
            "frostamp measure --image-dir target/image/{image} --publish {image} \
             (sev crate snp_calc_launch_digest; cross-checked with sev-snp-measure)"
        ),
        inputs,
        launch: PublishedLaunch {
            mode: "sev-snp".to_string(),
            vmm: "qemu".to_string(),
            kernel_hashes: true,
            guest_features: format!("{guest_features:#x}"),
            guest_policy: format!("{GUEST_POLICY:#x}"),
            cmdline: cmdline.as_str().to_string(),
        },
        digests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_bytes_are_efi_order() {
        let b = uuid_bytes(FOOTER_GUID).unwrap();
        assert_eq!(hex::encode(b), "de82b596b21ff745baeaa366c55a082d");
    }

    #[test]
    fn tiny_or_odd_images_are_refused() {
        assert_eq!(inspect_firmware(&[]).unwrap_err(), FirmwareProblem::Size(0));
        assert_eq!(
            inspect_firmware(&[0; 100]).unwrap_err(),
            FirmwareProblem::Size(100)
        );
        assert_eq!(
            inspect_firmware(&[0; 4096]).unwrap_err(),
            FirmwareProblem::NoFooterTable
        );
    }

    #[test]
    fn cmdline_whitespace_and_nul_refused() {
        assert!(Cmdline::new(" console=ttyS0").is_err());
        assert!(Cmdline::new("console=ttyS0 ").is_err());
        assert!(Cmdline::new("a\0b").is_err());
        assert_eq!(
            Cmdline::from_file_bytes(b"console=ttyS0\n")
                .unwrap()
                .as_str(),
            "console=ttyS0"
        );
        assert_eq!(Cmdline::new("").unwrap().measured_sha256(), {
            let d: [u8; 32] = Sha256::digest([0u8]).into();
            d
        });
    }

    #[test]
    fn vcpu_types_and_features_parse() {
        assert_eq!(canonical_vcpu_type("epyc-milan").unwrap(), "EPYC-Milan");
        assert!(canonical_vcpu_type("Pentium").is_err());
        assert!(known_vcpu_types().contains(&"EPYC-Genoa".to_string()));
        assert!(known_vcpu_types().contains(&"EPYC-Turin-v2".to_string()));
        assert_eq!(parse_guest_features("0x21").unwrap(), 0x21);
        assert_eq!(parse_guest_features("1").unwrap(), 1);
        assert!(parse_guest_features("zz").is_err());
    }
}
