//! Is this an SEV-SNP guest? A production node refuses to start otherwise.
//!
//! What each signal is worth:
//!
//! - **CPUID `0x8000001f`** (EAX bit 1 SEV, bit 3 SEV-ES, bit 4 SEV-SNP) says what the
//!   (virtual) CPU *supports*, and the hypervisor chooses what CPUID returns (for SNP
//!   guests within limits the PSP enforces on the CPUID page). It is logged, never
//!   decisive.
//! - **`/dev/sev-guest`** exists only if the kernel found SNP *active*: the sev-guest
//!   platform device is registered only when `cc_platform_has(CC_ATTR_GUEST_SEV_SNP)`,
//!   which the kernel derives from the `SEV_STATUS` MSR (`0xc0010131`, not readable
//!   from user space and not interceptable by the hypervisor in an SEV-ES/SNP guest).
//!   This is the check made here: robust, no `dmesg` parsing, no MSR access needed.
//! - **A report from the PSP**: the hardware attester then asks for a first report
//!   (`SNP_GET_REPORT`) to learn its own measurement, so a device node without a
//!   working PSP behind it fails right there.
//! - **Peers' verification** is what security rests on: every peer checks the report's
//!   VCEK signature up to the pinned AMD roots and requires its own measurement. The
//!   checks above only make a misconfigured launch fail fast and visibly.

use std::os::unix::fs::FileTypeExt;

/// The SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevStatus {
    /// CPUID reports SEV.
    pub cpuid_sev: bool,
    /// CPUID reports SEV-ES.
    pub cpuid_sev_es: bool,
    /// CPUID reports SEV-SNP.
    pub cpuid_snp: bool,
    /// `/dev/sev-guest` exists and is a character device.
    pub guest_device: bool,
}

impl SevStatus {
    /// SNP is active as far as this guest can tell by itself.
    pub fn snp_active(&self) -> bool {
        self.guest_device
    }
}

fn cpuid_bits() -> (bool, bool, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        if __cpuid(0x8000_0000).eax < 0x8000_001f {
            return (false, false, false);
        }
        let eax = __cpuid(0x8000_001f).eax;
        (
            eax & (1 << 1) != 0,
            eax & (1 << 3) != 0,
            eax & (1 << 4) != 0,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        (false, false, false)
    }
}

/// Probe CPUID and the guest device.
pub fn probe() -> SevStatus {
    let (cpuid_sev, cpuid_sev_es, cpuid_snp) = cpuid_bits();
    let guest_device = std::fs::metadata(SEV_GUEST_DEVICE)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false);
    SevStatus {
        cpuid_sev,
        cpuid_sev_es,
        cpuid_snp,
        guest_device,
    }
}

/// Probe and log; `Err` unless SNP is active.
pub fn require_snp() -> Result<SevStatus, super::Pid1Error> {
    let s = probe();
    tracing::info!(
        step = "sev",
        cpuid_sev = s.cpuid_sev,
        cpuid_sev_es = s.cpuid_sev_es,
        cpuid_snp = s.cpuid_snp,
        sev_guest_device = s.guest_device,
        "SEV-SNP probe"
    );
    if s.snp_active() {
        Ok(s)
    } else {
        Err(super::Pid1Error::NoSevSnp(
            "no /dev/sev-guest character device: the kernel did not find SEV-SNP active (launch the image as an SNP guest)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_consistent_here() {
        // The test machine is not an SNP guest (or, if it is, has the device):
        // either way the probe agrees with the filesystem.
        let s = probe();
        assert_eq!(
            s.guest_device,
            std::path::Path::new(SEV_GUEST_DEVICE).exists()
        );
        assert_eq!(require_snp().is_ok(), s.guest_device);
    }
}
