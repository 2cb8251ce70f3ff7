//! Development attestation (feature `insecure-dev-attestation`): software-signed reports
//! under a development root go through the same `verify_report` as real AMD evidence,
//! are accepted only under `RootSet::danger_with_insecure_dev_root`, and every check
//! still bites.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
#![cfg(feature = "insecure-dev-attestation")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use frostamp::attestation::admission::DEV_NO_FIRMWARE;
use frostamp::attestation::insecure::{DEV_PLATFORM_INFO, DEV_POLICY, DEV_TCB};
use frostamp::attestation::report::{PlatformInfo, RawTcb, TcbLayout, TcbVersion};
use frostamp::attestation::{
    identity_binding, verify_report, AdmissionPolicy, AttestationError, Attester, DevAttester,
    DevPlatform, Evidence, Expected, GuestPolicy, PlatformFlag, PlatformRules, PolicyRules,
    ProcessorFamily, Report, RootSet, SigningKey, TcbFloor,
};
use frostamp::x509::chain::ChainError;
use rand::SeedableRng;

const MEASUREMENT: [u8; 48] = [0x4d; 48];
const DATA: [u8; 64] = [0xda; 64];

fn platform(seed: u64) -> DevPlatform {
    DevPlatform::generate(&mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000) // 2026-09
}

fn dev_roots(p: &DevPlatform) -> RootSet {
    RootSet::danger_with_insecure_dev_root(p.ark_der())
}

fn verify(
    p: &DevPlatform,
    e: &Evidence,
    expected: &Expected,
) -> Result<frostamp::attestation::VerifiedReport, AttestationError> {
    verify_report(
        &e.report,
        &e.vcek,
        &e.chain_refs(),
        &dev_roots(p),
        expected,
        at(),
    )
}

fn expected() -> Expected {
    Expected::frostamp(MEASUREMENT, DATA)
}

/// [`expected`] with the guest policy rules `policy`.
fn with_policy(policy: PolicyRules) -> Expected {
    Expected {
        policy,
        ..expected()
    }
}

/// [`expected`] with an admission policy that allows version 2 reports.
fn v2_allowed() -> Expected {
    expected().with_admission(AdmissionPolicy {
        min_report_version: 2,
        ..AdmissionPolicy::frostamp_default()
    })
}

/// `r` signed by `p`'s VCEK, verified with its ASK under its development root.
fn sign_and_verify(
    p: &DevPlatform,
    r: &mut Report,
    expected: &Expected,
) -> Result<frostamp::attestation::VerifiedReport, AttestationError> {
    let bytes = p.sign(r);
    verify_report(
        &bytes,
        p.vcek_der(),
        &[p.ask_der()],
        &dev_roots(p),
        expected,
        at(),
    )
}

/// Named `attestation` so that `cargo test ... attestation` selects these tests.
mod attestation {
    use super::*;

    #[test]
    fn dev_report_round_trip_verifies_under_the_dev_root() {
        let p = platform(1);
        let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, 0));
        assert_eq!(e.report.len(), 1184);
        let parsed = Report::parse(&e.report).unwrap();
        assert_eq!(parsed.version, 3);
        assert_eq!(parsed.to_bytes().to_vec(), e.report);
        let v = verify(&p, &e, &expected()).unwrap();
        assert_eq!(v.family, ProcessorFamily::InsecureDev);
        assert!(v.is_insecure_dev());
        assert_eq!(v.measurement, MEASUREMENT);
        assert_eq!(v.report_data, DATA);
        assert_eq!(v.reported_tcb, DEV_TCB);
        assert_eq!(v.chip_id, p.chip_id());
        assert_eq!(v.signing_key, SigningKey::Vcek);
        assert_eq!((v.policy, v.vmpl), (DEV_POLICY, 0));
        // Evidence survives its JSON form.
        let json = serde_json::to_string(&e).unwrap();
        let back: Evidence = serde_json::from_str(&json).unwrap();
        assert!(verify(&p, &back, &expected()).is_ok());
        // The verifier does not need the chain from the evidence if it has the ASK.
        let r = verify_report(
            &e.report,
            &e.vcek,
            &[p.ask_der()],
            &dev_roots(&p),
            &expected(),
            at(),
        );
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn dev_report_is_refused_under_the_amd_roots() {
        let p = platform(2);
        let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, 0));
        // Even with the whole development chain offered as "extra" certificates.
        let under_amd = |report: &[u8]| {
            verify_report(
                report,
                &e.vcek,
                &e.chain_refs(),
                &RootSet::amd(),
                &expected(),
                at(),
            )
            .unwrap_err()
        };
        let err = under_amd(&e.report);
        assert_eq!(
            err,
            AttestationError::NoRootForFamily(ProcessorFamily::InsecureDev)
        );
        assert!(err.to_string().contains("not an AMD root"), "{err}");
        assert_eq!(err.check(), "family");

        // Relabelled as a Milan report (CPUID 19h/01h) and re-signed: the certificate's
        // issuer is the development ASK, not SEV-Milan.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.cpuid_raw = [0x19, 0x01, 0x01];
        let bytes = p.sign(&mut r);
        let err = under_amd(&bytes);
        assert_eq!(
            err,
            AttestationError::FamilyMismatch {
                report: ProcessorFamily::Milan,
                certificate: ProcessorFamily::InsecureDev
            }
        );
        // As a version 2 report (no CPUID) the family comes from the issuer: development.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.version = 2;
        r.cpuid_raw = [0; 3];
        let v2 = p.sign(&mut r);
        let err = under_amd(&v2);
        assert_eq!(
            err,
            AttestationError::NoRootForFamily(ProcessorFamily::InsecureDev)
        );
        // Under the development root, the family comes from the issuer; the production
        // admission policy refuses version 2, a policy that allows it accepts the report.
        let run = |exp: &Expected| {
            verify_report(&v2, &e.vcek, &e.chain_refs(), &dev_roots(&p), exp, at())
        };
        assert_eq!(
            run(&expected()).unwrap_err(),
            AttestationError::ReportVersionTooOld { version: 2, min: 3 }
        );
        let v2_allowed = v2_allowed();
        assert_eq!(
            run(&v2_allowed).unwrap().family,
            ProcessorFamily::InsecureDev
        );
    }

    #[test]
    fn another_dev_platforms_root_is_not_this_ones() {
        let (a, b) = (platform(3), platform(4));
        let e = a.attest(a.report(DATA, MEASUREMENT, DEV_POLICY, 0));
        let err = verify(&b, &e, &expected()).unwrap_err();
        assert!(
            matches!(
                &err,
                AttestationError::Chain {
                    family: ProcessorFamily::InsecureDev,
                    source: ChainError::BadSignature { .. } | ChainError::NoPathToAnchor { .. }
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn debug_and_migration_agent_policies_are_refused() {
        let p = platform(5);
        // Evidence under `policy`, refused with `refusal` by the production rules.
        let refused = |policy: GuestPolicy, refusal: AttestationError| {
            let e = p.attest(p.report(DATA, MEASUREMENT, policy, 0));
            assert_eq!(verify(&p, &e, &expected()).unwrap_err(), refusal);
            e
        };
        let debug = DEV_POLICY.with_debug(true);
        let e = refused(debug, AttestationError::DebugAllowed { policy: debug.0 });
        let allow = with_policy(PolicyRules {
            allow_debug: true,
            ..PolicyRules::frostamp_default()
        });
        assert!(verify(&p, &e, &allow).is_ok());

        let ma = DEV_POLICY.with_migrate_ma(true);
        refused(ma, AttestationError::MigrationAgentAllowed { policy: ma.0 });
        let single = with_policy(PolicyRules {
            require_single_socket: true,
            ..PolicyRules::frostamp_default()
        });
        let e = p.attest(p.report(DATA, MEASUREMENT, GuestPolicy(DEV_POLICY.0 | 1 << 20), 0));
        assert!(verify(&p, &e, &single).is_ok());
    }

    #[test]
    fn wrong_vmpl_is_refused() {
        let p = platform(6);
        for vmpl in [1u32, 2, 3] {
            let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, vmpl));
            assert_eq!(
                verify(&p, &e, &expected()).unwrap_err(),
                AttestationError::VmplTooHigh { vmpl, max: 0 }
            );
        }
        let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, 1));
        let vmpl1 = with_policy(PolicyRules {
            max_vmpl: 1,
            ..PolicyRules::frostamp_default()
        });
        assert!(verify(&p, &e, &vmpl1).is_ok());
    }

    #[test]
    fn flipped_bytes_fail() {
        let p = platform(7);
        let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, 0));
        // Signed area (fields that do not change parsing or family) -> signature.
        for pos in [
            0x04usize, 0x10, 0x50, 0x90, 0x140, 0x180, 0x1A0, 0x1E0, 0x1F0,
        ] {
            let mut bad = e.clone();
            bad.report[pos] ^= 0x04;
            assert_eq!(
                verify(&p, &bad, &expected()).unwrap_err(),
                AttestationError::BadReportSignature(SigningKey::Vcek),
                "byte {pos:#x}"
            );
        }
        // Signature.
        for pos in [0x2A0usize, 0x2CF, 0x2E8, 0x317] {
            let mut bad = e.clone();
            bad.report[pos] ^= 0x01;
            let err = verify(&p, &bad, &expected()).unwrap_err();
            assert_eq!(err.check(), "signature", "byte {pos:#x}: {err}");
        }
        // Every other byte: refused, never a panic.
        for pos in (0..e.report.len()).step_by(2) {
            let mut bad = e.clone();
            bad.report[pos] ^= 0x80;
            assert!(verify(&p, &bad, &expected()).is_err(), "byte {pos:#x}");
        }
        // A flipped byte in the VCEK's signed part breaks the chain.
        let mut bad = e.clone();
        let n = bad.vcek.len();
        bad.vcek[n / 2] ^= 0x01;
        let err = verify(&p, &bad, &expected()).unwrap_err();
        assert_eq!(err.check(), "chain", "{err}");
    }

    #[test]
    fn vcek_extensions_must_match_the_report() {
        let p = platform(8);
        let check = |r: &mut Report| sign_and_verify(&p, r, &expected());
        // Another chip id, properly signed by this VCEK.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.chip_id[5] ^= 1;
        assert!(matches!(
            check(&mut r).unwrap_err(),
            AttestationError::ChipIdMismatch { .. }
        ));
        // A reported TCB the certificate does not certify.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        let mut tcb = DEV_TCB;
        tcb.snp += 1;
        r.reported_tcb = tcb.encode(TcbLayout::Legacy);
        assert_eq!(
            check(&mut r).unwrap_err(),
            AttestationError::TcbMismatch {
                component: "snp",
                report: DEV_TCB.snp + 1,
                certificate: DEV_TCB.snp
            }
        );
        // CURRENT_TCB is not what the VCEK certifies: a different current TCB is fine.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.current_tcb = RawTcb([9; 8]);
        assert!(check(&mut r).is_ok());
    }

    #[test]
    fn platform_info_rules_bite_on_development_reports() {
        let p = platform(10);
        let check = |r: &mut Report, exp: &Expected| sign_and_verify(&p, r, exp);
        // Success twin: the development PLATFORM_INFO meets the production rules.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        assert_eq!(r.platform_info, DEV_PLATFORM_INFO);
        assert!(check(&mut r, &expected()).is_ok());
        // ALIAS_CHECK_COMPLETE clear (AMD-SB-3015 not done since reboot): refused.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.platform_info = PlatformInfo(DEV_PLATFORM_INFO.0 & !(1 << 5));
        let err = check(&mut r, &expected()).unwrap_err();
        assert_eq!(
            err,
            AttestationError::PlatformFlagMissing {
                flag: PlatformFlag::AliasCheckComplete,
                platform_info: 0x05
            }
        );
        assert_eq!(err.check(), "policy");
        assert!(err.to_string().contains("ALIAS_CHECK_COMPLETE"), "{err}");
        // ... accepted only by a policy that does not require it.
        let lax = expected().with_admission(AdmissionPolicy {
            platform: PlatformRules::none(),
            ..AdmissionPolicy::frostamp_default()
        });
        assert!(check(&mut r, &lax).is_ok());
        // Bits the ABI does not define are accepted (newer firmware must not lock nodes out).
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.platform_info = PlatformInfo(DEV_PLATFORM_INFO.0 | 1 << 6 | 1 << 40);
        assert!(check(&mut r, &expected()).is_ok());
        // A forbidden bit, set and clear.
        let no_smt = expected().with_admission(AdmissionPolicy {
            platform: PlatformRules {
                required: &[PlatformFlag::AliasCheckComplete],
                forbidden: &[PlatformFlag::SmtEnabled],
            },
            ..AdmissionPolicy::frostamp_default()
        });
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        assert_eq!(
            check(&mut r, &no_smt).unwrap_err(),
            AttestationError::PlatformFlagForbidden {
                flag: PlatformFlag::SmtEnabled,
                platform_info: DEV_PLATFORM_INFO.0
            }
        );
        r.platform_info = PlatformInfo(DEV_PLATFORM_INFO.0 & !1);
        assert!(check(&mut r, &no_smt).is_ok());
    }

    #[test]
    fn report_version_and_the_development_floor() {
        let p = platform(11);
        let check = |r: &mut Report, exp: &Expected| sign_and_verify(&p, r, exp);
        // A version 2 report (no CPUID; the family then comes from the issuer name):
        // refused by the production policy, accepted when version 2 is allowed.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        r.version = 2;
        r.cpuid_raw = [0; 3];
        assert_eq!(
            check(&mut r, &expected()).unwrap_err(),
            AttestationError::ReportVersionTooOld { version: 2, min: 3 }
        );
        let v2 = v2_allowed();
        assert_eq!(
            check(&mut r, &v2).unwrap().family,
            ProcessorFamily::InsecureDev
        );
        // The development family has its own floor (zero by default); raising it refuses
        // the development TCB and the error says there is no firmware behind it.
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        let mut floor = TcbFloor::frostamp_default();
        floor.insecure_dev = TcbVersion {
            snp: DEV_TCB.snp + 1,
            ..TcbVersion::default()
        };
        let raised = expected().with_admission(AdmissionPolicy {
            tcb_floor: floor,
            ..AdmissionPolicy::frostamp_default()
        });
        let err = check(&mut r, &raised).unwrap_err();
        assert!(
            matches!(
                err,
                AttestationError::TcbBelowFloor {
                    family: ProcessorFamily::InsecureDev,
                    component: "snp",
                    reported: 1,
                    floor: 2,
                    ..
                }
            ),
            "{err}"
        );
        // The production hardware floors never apply to the development family.
        assert_eq!(
            TcbFloor::frostamp_default().for_family(ProcessorFamily::InsecureDev),
            TcbVersion::default()
        );
        let mut r = p.report(DATA, MEASUREMENT, DEV_POLICY, 0);
        assert!(check(&mut r, &expected()).is_ok());
        assert!(!DEV_NO_FIRMWARE.is_empty());
    }

    #[test]
    fn measurement_and_binding_are_what_admission_checks() {
        let p = platform(9);
        let me = DevAttester::with_measurement(p, MEASUREMENT);
        let nonce = [0x11; 32];
        let binding = identity_binding(b"peer tls spki", &nonce);
        let e = me.attest(binding).unwrap();
        let roots = dev_roots(me.platform());
        let run =
            |exp: &Expected| verify_report(&e.report, &e.vcek, &e.chain_refs(), &roots, exp, at());
        assert!(run(&Expected::frostamp(me.measurement(), binding)).is_ok());
        // A node built from different code (another measurement) is refused.
        let err = run(&Expected::frostamp([0x4e; 48], binding)).unwrap_err();
        assert!(
            matches!(err, AttestationError::MeasurementMismatch { .. }),
            "{err}"
        );
        // A replayed report (another nonce) or another TLS key is refused.
        let other_nonce = identity_binding(b"peer tls spki", &[0x12; 32]);
        let err = run(&Expected::frostamp(me.measurement(), other_nonce)).unwrap_err();
        assert!(
            matches!(err, AttestationError::ReportDataMismatch { .. }),
            "{err}"
        );
        let other_key = identity_binding(b"other tls spki", &nonce);
        assert!(run(&Expected::frostamp(me.measurement(), other_key)).is_err());
        // Trait object use, as nodes hold it.
        let attester: Box<dyn Attester> = Box::new(me);
        assert!(attester.is_insecure_dev());
    }

    #[test]
    fn dev_certificates_expire_after_2049() {
        let p = platform(10);
        let e = p.attest(p.report(DATA, MEASUREMENT, DEV_POLICY, 0));
        let late = UNIX_EPOCH + Duration::from_secs(2_600_000_000);
        let err = verify_report(
            &e.report,
            &e.vcek,
            &e.chain_refs(),
            &dev_roots(&p),
            &expected(),
            late,
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                AttestationError::Chain {
                    source: ChainError::Expired { .. },
                    ..
                }
            ),
            "{err}"
        );
    }
}
