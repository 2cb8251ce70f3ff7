//! The hardware attester: SEV-SNP reports from `/dev/sev-guest` (SEV-SNP ABI
//! `SNP_GET_EXT_REPORT`) through the `sev` crate, at VMPL 0, with caller-chosen
//! REPORT_DATA.
//!
//! The VCEK (or VLEK) comes from the extended report's certificate table when the
//! host provides it; otherwise the operator supplies it (`FROSTAMP_VCEK`, hex DER)
//! — it is verified against the pinned AMD roots like any other input, so neither
//! the host nor the operator can forge it. There is no fallback to development
//! attestation.

use super::evidence::{Attester, Evidence};
use super::report::Report;
use super::verify::AttestationError;
use sev::firmware::guest::Firmware;
use sev::firmware::host::CertType;
use std::sync::Mutex;

/// Reports from the AMD Secure Processor of the running SEV-SNP guest.
pub struct SnpGuestAttester {
    fw: Mutex<Firmware>,
    measurement: [u8; 48],
    operator_vcek: Option<Vec<u8>>,
}

impl core::fmt::Debug for SnpGuestAttester {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SnpGuestAttester")
            .field("measurement", &hex::encode(self.measurement))
            .finish_non_exhaustive()
    }
}

fn err(what: &str, e: impl core::fmt::Display) -> AttestationError {
    AttestationError::Attester(format!("{what}: {e}"))
}

impl SnpGuestAttester {
    /// Open `/dev/sev-guest` and learn this guest's launch measurement from a first
    /// report. `operator_vcek`: DER of the VCEK/VLEK if the host provides none.
    pub fn open(operator_vcek: Option<Vec<u8>>) -> Result<Self, AttestationError> {
        let mut fw = Firmware::open().map_err(|e| err("cannot open /dev/sev-guest", e))?;
        let raw = fw
            .get_report(None, Some([0u8; 64]), Some(0))
            .map_err(|e| err("SNP_GET_REPORT", e))?;
        let report = Report::parse(&raw).map_err(|e| err("own report", e))?;
        Ok(Self {
            fw: Mutex::new(fw),
            measurement: report.measurement,
            operator_vcek,
        })
    }
}

impl Attester for SnpGuestAttester {
    fn attest(&self, report_data: [u8; 64]) -> Result<Evidence, AttestationError> {
        let mut fw = self
            .fw
            .lock()
            .map_err(|_| err("firmware", "lock poisoned"))?;
        let (report, certs) = fw
            .get_ext_report(None, Some(report_data), Some(0))
            .map_err(|e| err("SNP_GET_EXT_REPORT", e))?;
        let mut vcek = None;
        let mut chain = Vec::new();
        for c in certs.unwrap_or_default() {
            match c.cert_type {
                CertType::VCEK | CertType::VLEK => vcek = Some(c.data),
                CertType::ASK | CertType::ARK => chain.push(c.data),
                _ => {}
            }
        }
        let vcek = vcek.or_else(|| self.operator_vcek.clone()).ok_or_else(|| {
            err(
                "no VCEK",
                "the host provides none; start the node with FROSTAMP_VCEK (hex DER from AMD KDS)",
            )
        })?;
        Ok(Evidence {
            report,
            vcek,
            chain,
        })
    }

    fn measurement(&self) -> [u8; 48] {
        self.measurement
    }

    fn is_insecure_dev(&self) -> bool {
        false
    }
}
