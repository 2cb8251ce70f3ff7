//! AMD SEV-SNP attestation: report layout, verification against pinned AMD roots,
//! REPORT_DATA bindings, and (feature `insecure-dev-attestation` only) development
//! attestation.
//!
//! # Layout
//!
//! - [`report`]: the `ATTESTATION_REPORT` (SEV-SNP ABI spec 56860 rev 1.55, Table 22),
//!   parsed into typed fields; `TCB_VERSION` layouts per family.
//! - [`roots`]: AMD ARK/ASK/ASVK of Milan, Genoa and Turin compiled in, [`RootSet`],
//!   [`ProcessorFamily`] selection.
//! - [`vcek`]: the AMD extensions of a VCEK/VLEK (TCB SPLs, hwID).
//! - [`verify`]: [`verify_report`], the single verifier used by nodes, the CA and the CLI;
//!   [`Expected`], [`PolicyRules`], [`AttestationError`].
//! - [`admission`]: [`AdmissionPolicy`]: report version, `PLATFORM_INFO` rules and the
//!   per-family [`TcbFloor`], each floor value tied to the AMD bulletin it comes from.
//! - [`binding`]: domain-separated REPORT_DATA constructors.
//! - [`roster`]: the epoch roster (which attested machine holds which index), n and t.
//! - [`evidence`]: [`Evidence`] (report + certificates, serde) and the [`Attester`] trait.
//! - `insecure` (feature `insecure-dev-attestation`): `DevPlatform`, `DevAttester`,
//!   `own_measurement`: software-signed reports under a development root.
//!
//! - [`snp_guest`]: the hardware attester, `SnpGuestAttester` (`/dev/sev-guest`).
//!
//! Rationale, check order and the TCB floor: `docs/attestation.md`.

pub mod admission;
pub mod binding;
pub mod evidence;
#[cfg(feature = "insecure-dev-attestation")]
pub mod insecure;
pub mod report;
pub mod roots;
pub mod roster;
pub mod snp_guest;
pub mod vcek;
pub mod verify;

pub use admission::{AdmissionPolicy, PlatformFlag, PlatformRules, TcbFloor};
pub use binding::{evidence_binding, identity_binding};
pub use evidence::{Attester, Evidence};
#[cfg(feature = "insecure-dev-attestation")]
pub use insecure::{own_measurement, DevAttester, DevPlatform, DevPlatformError};
pub use report::{GuestPolicy, Report, ReportError, TcbVersion};
pub use roots::{ProcessorFamily, RootSet};
pub use roster::{Member, Roster, RosterError};
pub use verify::{
    verify_report, AttestationError, Expected, PolicyRules, SigningKey, VerifiedReport,
};
