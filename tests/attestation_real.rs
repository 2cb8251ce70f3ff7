//! Real SEV-SNP evidence from Milan, Genoa and Turin hardware
//! (`tests/data/assets/sev-snp-reports/`, copies of `../shared/assets`; see PROVENANCE.md §1 and `reports_summary.json`)
//! through `attestation::verify_report` with the compiled-in AMD roots, and a failing
//! twin for every check.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::time::{Duration, SystemTime};

use der::Decode;
use frostamp::attestation::admission::{
    NO_BULLETIN_VALUE, SB_3019_MILAN_B1, SB_3023_MILAN_GENOA, SB_3023_TURIN,
};
use frostamp::attestation::report::{TcbLayout, TcbVersion};
use frostamp::attestation::vcek::VcekExtensionError;
use frostamp::attestation::{
    verify_report, AdmissionPolicy, AttestationError, Expected, PlatformFlag, PlatformRules,
    PolicyRules, ProcessorFamily, Report, ReportError, RootSet, SigningKey, TcbFloor,
    VerifiedReport,
};
use frostamp::x509::chain::ChainError;
use frostamp::x509::parse_certificates;
use frostamp::x509::sig::SignatureError;
use x509_cert::Certificate;

const REPORTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/assets/sev-snp-reports"
);

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{REPORTS}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn utc(y: u16, mo: u8, d: u8) -> SystemTime {
    der::DateTime::new(y, mo, d, 0, 0, 0)
        .unwrap()
        .to_system_time()
}

/// Inside the validity of every certificate in the corpus (the VLEK included), for tests
/// that pair one report with another report's certificate.
fn common_time() -> SystemTime {
    utc(2025, 9, 1)
}

fn summary() -> Vec<serde_json::Value> {
    serde_json::from_slice(&read("reports_summary.json")).unwrap()
}

fn hex_arr<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// One real report with everything needed to verify it.
struct Case {
    name: String,
    report: Vec<u8>,
    vcek: Vec<u8>,
    extra: Vec<Vec<u8>>,
    at: SystemTime,
    expected: Expected,
    family: ProcessorFamily,
    signing_key: SigningKey,
    vmpl: u32,
    chip_id: [u8; 64],
    reported_tcb_raw: [u8; 8],
}

impl Case {
    fn extra(&self) -> Vec<&[u8]> {
        self.extra.iter().map(Vec::as_slice).collect()
    }

    fn verify(&self) -> Result<VerifiedReport, AttestationError> {
        verify_report(
            &self.report,
            &self.vcek,
            &self.extra(),
            &RootSet::amd(),
            &self.expected,
            self.at,
        )
    }

    /// The refusal of this report with `vcek` in place of its own, at a time inside
    /// every VCEK's validity.
    fn refused_with_vcek(&self, vcek: &[u8]) -> AttestationError {
        self.verify_with(&self.report, vcek, &self.expected, common_time())
            .unwrap_err()
    }

    /// The refusal of this report under `expected` in place of its own.
    fn refused_under(&self, expected: &Expected) -> AttestationError {
        self.verify_with(&self.report, &self.vcek, expected, self.at)
            .unwrap_err()
    }

    /// Its expectations with the guest policy rules `policy`.
    fn with_policy(&self, policy: PolicyRules) -> Expected {
        Expected {
            policy,
            ..self.expected.clone()
        }
    }

    fn verify_with(
        &self,
        report: &[u8],
        vcek: &[u8],
        expected: &Expected,
        at: SystemTime,
    ) -> Result<VerifiedReport, AttestationError> {
        verify_report(report, vcek, &self.extra(), &RootSet::amd(), expected, at)
    }
}

/// **Test only, weaker than production.** The admission policy every real report of the
/// corpus meets: report version 2, no `PLATFORM_INFO` requirement, and the component-wise
/// minimum of the corpus's REPORTED_TCBs (the pre-2026 floor, below AMD-SB-3019/3023).
/// It lives in this test file, not in the library, so no build of the node can use it.
fn corpus_minimum() -> AdmissionPolicy {
    let t = |fmc, bootloader, tee, snp, microcode| TcbVersion {
        fmc,
        bootloader,
        tee,
        snp,
        microcode,
    };
    AdmissionPolicy {
        min_report_version: 2,
        platform: PlatformRules::none(),
        tcb_floor: TcbFloor {
            milan: t(None, 2, 0, 5, 68),
            genoa: t(None, 10, 0, 23, 25),
            turin: t(Some(0), 1, 0, 2, 71),
            insecure_dev: TcbVersion::default(),
            microcode_lines: &[],
        },
    }
}

/// The policy rules each real report satisfies, stated per case.
fn rules_for(report: &str) -> PolicyRules {
    match report {
        // POLICY 0xb0000: DEBUG (bit 19) is set on go-sev-guest's test guest.
        "go-sev-guest/attestation.bin" => PolicyRules {
            allow_debug: true,
            ..PolicyRules::frostamp_default()
        },
        // Requested at VMPL 1 (under an SVSM/paravisor).
        "trustee/snp/test-vlek-report.bin" => PolicyRules {
            max_vmpl: 1,
            ..PolicyRules::frostamp_default()
        },
        _ => PolicyRules::frostamp_default(),
    }
}

fn cases() -> Vec<Case> {
    summary()
        .iter()
        .map(|s| {
            let name = s["report"].as_str().unwrap().to_owned();
            let raw = read(&name);
            let report = if name.ends_with(".hex") {
                hex::decode(String::from_utf8(raw).unwrap().trim()).unwrap()
            } else {
                raw
            };
            // Azure's vcek.pem holds VCEK, ASK, ARK: the rest goes in as untrusted extras.
            let mut certs: Vec<Vec<u8>> =
                parse_certificates(&read(s["signer_cert"].as_str().unwrap()))
                    .unwrap()
                    .into_iter()
                    .map(|c| c.der)
                    .collect();
            let vcek = certs.remove(0);
            let not_before = Certificate::from_der(&vcek)
                .unwrap()
                .tbs_certificate
                .validity
                .not_before
                .to_system_time();
            let family = match s["generation"].as_str().unwrap() {
                "milan" => ProcessorFamily::Milan,
                "genoa" => ProcessorFamily::Genoa,
                "turin" => ProcessorFamily::Turin,
                other => panic!("{other}"),
            };
            Case {
                expected: Expected {
                    measurement: Some(hex_arr(s["measurement"].as_str().unwrap())),
                    report_data: Some(hex_arr(s["report_data"].as_str().unwrap())),
                    policy: rules_for(&name),
                    admission: corpus_minimum(),
                },
                name,
                report,
                vcek,
                extra: certs,
                at: not_before + Duration::from_secs(86_400),
                family,
                signing_key: match s["signer"].as_str().unwrap() {
                    "VCEK" => SigningKey::Vcek,
                    _ => SigningKey::Vlek,
                },
                vmpl: s["vmpl"].as_u64().unwrap() as u32,
                chip_id: hex_arr(s["chip_id"].as_str().unwrap()),
                reported_tcb_raw: hex_arr(s["reported_tcb_raw_le"].as_str().unwrap()),
            }
        })
        .collect()
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap()
}

/// Named `attestation` so that `cargo test ... attestation` selects these tests.
mod attestation {
    use super::*;

    #[test]
    fn every_real_report_verifies_with_compiled_in_roots() {
        let all = cases();
        assert_eq!(all.len(), 11);
        let mut families = std::collections::HashSet::new();
        for c in &all {
            let v = c
                .verify()
                .unwrap_or_else(|e| panic!("{}: [{}] {e}", c.name, e.check()));
            assert_eq!(v.family, c.family, "{}", c.name);
            assert_eq!(v.signing_key, c.signing_key, "{}", c.name);
            assert_eq!(v.vmpl, c.vmpl, "{}", c.name);
            assert_eq!(v.chip_id, c.chip_id, "{}", c.name);
            assert_eq!(Some(v.measurement), c.expected.measurement);
            assert_eq!(Some(v.report_data), c.expected.report_data);
            assert_eq!(
                v.reported_tcb.encode(c.family.tcb_layout()).0,
                c.reported_tcb_raw,
                "{}",
                c.name
            );
            assert!(!v.is_insecure_dev());
            // Parsing is exact: re-encoding gives the received bytes.
            assert_eq!(
                Report::parse(&c.report).unwrap().to_bytes().to_vec(),
                c.report
            );
            families.insert(c.family);
        }
        assert_eq!(families.len(), 3, "Milan, Genoa and Turin all covered");
    }

    #[test]
    fn turin_report_uses_the_turin_tcb_layout_and_8_byte_hwid() {
        let v = case("derived/oak_turin_oc_report.bin").verify().unwrap();
        assert_eq!(
            v.reported_tcb,
            TcbVersion {
                fmc: Some(0),
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 71
            }
        );
        assert!(v.chip_id[8..].iter().all(|&b| b == 0));
        // The same bytes read with the Milan/Genoa layout would say snp=0: the layout matters.
        let legacy = Report::parse(&case("derived/oak_turin_oc_report.bin").report)
            .unwrap()
            .reported_tcb
            .decode(TcbLayout::Legacy);
        assert_eq!((legacy.bootloader, legacy.snp), (0, 0));
    }

    #[test]
    fn extra_certificates_are_optional_and_junk_is_ignored() {
        for c in cases() {
            let junk: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];
            let r = verify_report(&c.report, &c.vcek, &[], &RootSet::amd(), &c.expected, c.at);
            assert!(r.is_ok(), "{}: {r:?}", c.name);
            let r = verify_report(
                &c.report,
                &c.vcek,
                &[junk],
                &RootSet::amd(),
                &c.expected,
                c.at,
            );
            assert!(r.is_ok(), "{}: {r:?}", c.name);
        }
    }

    #[test]
    fn flipped_bit_in_the_signed_area_fails_the_signature() {
        // 0x15: family_id (virtee/sev's `milan_report_invalid` flips byte 21); 0x2A: image_id
        // (trustee flips byte 42); 0x50 REPORT_DATA; 0x90 MEASUREMENT; 0x180 REPORTED_TCB
        // (trustee's byte 384); 0x1A0 CHIP_ID; 0x1F0 LAUNCH_TCB; 0x08 POLICY.
        for c in cases() {
            for pos in [0x15usize, 0x2A, 0x50, 0x90, 0xBF, 0x180, 0x1A0, 0x1F0, 0x08] {
                let mut bad = c.report.clone();
                bad[pos] ^= 0x80;
                let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
                assert_eq!(
                    err,
                    AttestationError::BadReportSignature(c.signing_key),
                    "{} byte {pos:#x}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn flipped_bit_in_the_signature_fails() {
        for c in cases() {
            for pos in [0x2A0usize, 0x2A0 + 47, 0x2E8, 0x2E8 + 20] {
                let mut bad = c.report.clone();
                bad[pos] ^= 0x01;
                let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
                assert!(
                    matches!(
                        err,
                        AttestationError::BadReportSignature(_)
                            | AttestationError::MalformedReportSignature(_)
                    ),
                    "{} byte {pos:#x}: {err}",
                    c.name
                );
                assert_eq!(err.check(), "signature");
            }
            // Bytes 48..72 of R/S must be zero (P-384 scalars are 48 bytes).
            let mut bad = c.report.clone();
            bad[0x2A0 + 50] = 1;
            let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
            assert!(
                matches!(err, AttestationError::MalformedReportSignature(_)),
                "{err}"
            );
            // The reserved rest of the signature field is not signed but must be zero.
            let mut bad = c.report.clone();
            bad[0x2A0 + 144] = 1;
            let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
            assert!(
                matches!(
                    err,
                    AttestationError::Report(ReportError::ReservedNonZero { offset: 0x330, .. })
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn every_byte_flip_of_a_report_is_refused_without_panic() {
        let c = case("derived/oak_genoa_oc_report.bin");
        for pos in (0..c.report.len()).step_by(3) {
            let mut bad = c.report.clone();
            bad[pos] ^= 0x01;
            assert!(
                c.verify_with(&bad, &c.vcek, &c.expected, c.at).is_err(),
                "byte {pos:#x} flip accepted"
            );
        }
    }

    #[test]
    fn deliberately_altered_vceks_fail_the_chain() {
        let c = case("trustee/snp/test-report.bin");
        for path in [
            "trustee/snp/test-vcek-invalid-legacy.der",
            "trustee/snp/test-vcek-invalid-new.der",
        ] {
            let err = c.refused_with_vcek(&read(path));
            assert!(
                matches!(
                    &err,
                    AttestationError::Chain {
                        family: ProcessorFamily::Milan,
                        source: ChainError::BadSignature {
                            source: SignatureError::Invalid,
                            ..
                        }
                    }
                ),
                "{path}: {err}"
            );
        }
        // virtee/sev `milan_chain_invalid`: VCEK DER byte 40 ^= 0xff (inside the signed
        // RSASSA-PSS parameters, so the tbs/outer algorithm consistency check catches it).
        let c = case("virtee-sev/report_milan.hex");
        let mut vcek = c.vcek.clone();
        vcek[40] ^= 0xff;
        let err = c
            .verify_with(&c.report, &vcek, &c.expected, c.at)
            .unwrap_err();
        assert!(
            matches!(
                &err,
                AttestationError::Chain {
                    source: ChainError::Malformed(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_vcek_from_another_chip_fails_the_report_signature() {
        // Same family and TCB, so only the chip differs: the chain is valid, the key is not
        // the one that signed the report.
        for (report, other) in [
            (
                "derived/oak_milan_oc_release_report.bin",
                "derived/oak_milan_rk_release_report.bin",
            ),
            ("trustee/snp/test-report.bin", "virtee-sev/report_milan.hex"),
            (
                "derived/trustee_az_genoa_report.bin",
                "derived/oak_genoa_oc_report.bin",
            ),
        ] {
            let c = case(report);
            let foreign = case(other).vcek;
            let err = c.refused_with_vcek(&foreign);
            assert_eq!(
                err,
                AttestationError::BadReportSignature(SigningKey::Vcek),
                "{report}"
            );
        }
    }

    #[test]
    fn the_vlek_is_expired_now_and_valid_at_report_time() {
        let c = case("trustee/snp/test-vlek-report.bin");
        assert_eq!(c.verify().unwrap().signing_key, SigningKey::Vlek);
        let err = c
            .verify_with(&c.report, &c.vcek, &c.expected, utc(2026, 11, 21))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                AttestationError::Chain { source: ChainError::Expired { subject, .. }, .. }
                    if subject.contains("CN=SEV-VLEK")
            ),
            "{err}"
        );
        assert_eq!(err.check(), "chain");
        // And not yet valid before its notBefore.
        let err = c
            .verify_with(&c.report, &c.vcek, &c.expected, utc(2024, 1, 1))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                AttestationError::Chain {
                    source: ChainError::NotYetValid { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn vlek_and_vcek_cannot_stand_in_for_each_other() {
        // A VLEK-signed report with a (valid, same-family) VCEK: the path goes through the
        // ASK, which is the wrong kind of intermediate for SIGNING_KEY = VLEK.
        let vlek = case("trustee/snp/test-vlek-report.bin");
        let milan_vcek = case("derived/oak_milan_oc_release_report.bin").vcek;
        let err = vlek.refused_with_vcek(&milan_vcek);
        assert_eq!(
            err,
            AttestationError::SigningKeyMismatch {
                report: SigningKey::Vlek,
                certificate: SigningKey::Vcek
            }
        );
        // And a VCEK-signed report presented with the VLEK.
        let vcek = case("trustee/snp/test-report.bin");
        let err = vcek.refused_with_vcek(&vlek.vcek);
        assert_eq!(
            err,
            AttestationError::SigningKeyMismatch {
                report: SigningKey::Vcek,
                certificate: SigningKey::Vlek
            }
        );
    }

    #[test]
    fn family_is_checked_before_the_chain() {
        // A Genoa (CPUID 19h/11h) report with a Milan VCEK.
        let c = case("derived/oak_genoa_oc_report.bin");
        let milan = case("derived/oak_milan_oc_release_report.bin").vcek;
        let err = c.refused_with_vcek(&milan);
        assert_eq!(
            err,
            AttestationError::FamilyMismatch {
                report: ProcessorFamily::Genoa,
                certificate: ProcessorFamily::Milan
            }
        );
        // A v2 report (no CPUID) takes the family from its certificate; a Genoa VCEK then
        // chains fine to the Genoa ARK and the signature check refuses it.
        let v2 = case("virtee-sev/report_milan.hex");
        let genoa = case("derived/oak_genoa_oc_report.bin");
        let err = v2.refused_with_vcek(&genoa.vcek);
        assert_eq!(err, AttestationError::BadReportSignature(SigningKey::Vcek));
        // A v2 report with something that is not a certificate at all.
        let err = v2
            .verify_with(&v2.report, b"junk", &v2.expected, v2.at)
            .unwrap_err();
        assert!(
            matches!(err, AttestationError::FamilyUndetermined { .. }),
            "{err}"
        );
    }

    #[test]
    fn wrong_expected_measurement_and_report_data_are_refused() {
        for c in cases() {
            let mut e = c.expected.clone();
            let mut m = e.measurement.unwrap();
            m[47] ^= 1;
            e.measurement = Some(m);
            let err = c.refused_under(&e);
            assert!(
                matches!(err, AttestationError::MeasurementMismatch { .. }),
                "{}: {err}",
                c.name
            );

            let mut e = c.expected.clone();
            let mut d = e.report_data.unwrap();
            d[0] ^= 1;
            e.report_data = Some(d);
            let err = c.refused_under(&e);
            assert!(
                matches!(err, AttestationError::ReportDataMismatch { .. }),
                "{}: {err}",
                c.name
            );
        }
    }

    #[test]
    fn real_debug_policy_and_vmpl_are_refused_by_frostamp_rules() {
        // go-sev-guest's test guest was launched with DEBUG allowed.
        let c = case("go-sev-guest/attestation.bin");
        let strict = c.with_policy(PolicyRules::frostamp_default());
        let err = c.refused_under(&strict);
        assert_eq!(err, AttestationError::DebugAllowed { policy: 0xb0000 });
        assert_eq!(err.check(), "policy");
        // The VLEK report was requested at VMPL 1.
        let c = case("trustee/snp/test-vlek-report.bin");
        let strict = c.with_policy(PolicyRules::frostamp_default());
        let err = c.refused_under(&strict);
        assert_eq!(err, AttestationError::VmplTooHigh { vmpl: 1, max: 0 });
        // Other rules: single socket required, minimum ABI.
        let c = case("derived/oak_turin_oc_report.bin");
        let e = c.with_policy(PolicyRules {
            require_single_socket: true,
            ..PolicyRules::frostamp_default()
        });
        let err = c.refused_under(&e);
        assert!(
            matches!(err, AttestationError::NotSingleSocket { .. }),
            "{err}"
        );
        let e = c.with_policy(PolicyRules {
            min_abi: (1, 51),
            ..PolicyRules::frostamp_default()
        });
        let err = c.refused_under(&e);
        assert!(
            matches!(
                err,
                AttestationError::AbiTooOld {
                    major: 0,
                    minor: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tcb_below_the_floor_is_refused() {
        for c in cases() {
            let reported = Report::parse(&c.report)
                .unwrap()
                .reported_tcb
                .decode(c.family.tcb_layout());
            // One above the report in each component, in turn.
            for component in ["bootloader", "tee", "snp", "microcode"] {
                let mut floor = TcbVersion::default();
                match component {
                    "bootloader" => floor.bootloader = reported.bootloader + 1,
                    "tee" => floor.tee = reported.tee + 1,
                    "snp" => floor.snp = reported.snp + 1,
                    _ => floor.microcode = reported.microcode + 1,
                }
                let mut tcb_floor = TcbFloor::none();
                match c.family {
                    ProcessorFamily::Milan => tcb_floor.milan = floor,
                    ProcessorFamily::Genoa => tcb_floor.genoa = floor,
                    _ => tcb_floor.turin = floor,
                }
                let e = c.expected.clone().with_admission(AdmissionPolicy {
                    tcb_floor,
                    ..corpus_minimum()
                });
                let err = c.refused_under(&e);
                assert!(
                    matches!(&err, AttestationError::TcbBelowFloor { family, component: got, .. }
                    if *family == c.family && *got == component),
                    "{} {component}: {err}",
                    c.name
                );
                assert_eq!(err.check(), "tcb");
            }
            // A floor for another family does not apply.
            let mut other = TcbFloor::none();
            let high = TcbVersion {
                fmc: Some(255),
                bootloader: 255,
                tee: 255,
                snp: 255,
                microcode: 255,
            };
            match c.family {
                ProcessorFamily::Milan => other.genoa = high,
                _ => other.milan = high,
            }
            let e = c.expected.clone().with_admission(AdmissionPolicy {
                tcb_floor: other,
                ..corpus_minimum()
            });
            assert!(
                c.verify_with(&c.report, &c.vcek, &e, c.at).is_ok(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn corpus_minimum_is_at_or_below_every_real_report_and_below_production() {
        let weak = corpus_minimum().tcb_floor;
        let prod = TcbFloor::frostamp_default();
        for c in cases() {
            let parsed = Report::parse(&c.report).unwrap();
            let reported = parsed.reported_tcb.decode(c.family.tcb_layout());
            assert_eq!(
                reported.first_below(&weak.for_family(c.family)),
                None,
                "{}",
                c.name
            );
            // The test policy is weaker than production in every component.
            let strong = prod.effective(c.family, parsed.cpuid()).tcb;
            assert_eq!(strong.first_below(&weak.for_family(c.family)), None);
        }
        // The corpus floor is tight: each value is some report's value.
        assert_eq!(weak.milan.microcode, 68); // go-sev-guest (2022)
        assert_eq!(weak.genoa.microcode, 25); // Siena/Bergamo (model A0h) ucode numbering
    }

    #[test]
    fn production_policy_refuses_every_real_report_that_the_test_policy_accepts() {
        for c in cases() {
            // The weak test policy: accepted (the success twin).
            assert!(c.verify().is_ok(), "{}", c.name);
            let prod = c
                .expected
                .clone()
                .with_admission(AdmissionPolicy::frostamp_default());
            let err = c.refused_under(&prod);
            let parsed = Report::parse(&c.report).unwrap();
            if parsed.version < 3 {
                // v2: firmware older than ABI 1.55, no CPUID for the microcode line.
                assert_eq!(
                    err,
                    AttestationError::ReportVersionTooOld { version: 2, min: 3 },
                    "{}",
                    c.name
                );
                assert_eq!(err.check(), "policy");
                continue;
            }
            // Every v3+ report of the corpus predates AMD-SB-3023's SNP SPL.
            let reported = parsed.reported_tcb.decode(c.family.tcb_layout());
            let (floor, basis) = match c.family {
                ProcessorFamily::Turin => (4, SB_3023_TURIN),
                _ => (0x1B, SB_3023_MILAN_GENOA),
            };
            assert_eq!(
                err,
                AttestationError::TcbBelowFloor {
                    family: c.family,
                    component: "snp",
                    reported: reported.snp,
                    floor,
                    basis,
                },
                "{}",
                c.name
            );
            assert_eq!(err.check(), "tcb");
            let msg = err.to_string();
            assert!(
                msg.contains("snp")
                    && msg.contains(&format!("floor {floor}"))
                    && msg.contains("AMD-SB-3023"),
                "{msg}"
            );
        }
    }

    #[test]
    fn microcode_floor_follows_the_model_line_and_names_amd_sb_3019() {
        // Oak's Milan report: CPUID 19h/01h stepping 1 (B1), ucode 0xDB = the SB-3019
        // floor of that line. With only the SNP floor lowered to the report's value
        // (a custom floor), it passes; the VLEK Milan report (ucode 0xD9) does not.
        let lowered_snp = |snp: u8| {
            let mut f = TcbFloor::frostamp_default();
            f.milan.snp = snp;
            AdmissionPolicy {
                tcb_floor: f,
                ..AdmissionPolicy::frostamp_default()
            }
        };
        let ok = case("derived/oak_milan_oc_release_report.bin");
        let e = ok.expected.clone().with_admission(lowered_snp(0x18));
        let v = ok.verify_with(&ok.report, &ok.vcek, &e, ok.at).unwrap();
        assert_eq!(v.reported_tcb.microcode, 0xDB);
        let vlek = case("trustee/snp/test-vlek-report.bin");
        let e = vlek.expected.clone().with_admission(lowered_snp(0x18));
        let err = vlek.refused_under(&e);
        assert_eq!(
            err,
            AttestationError::TcbBelowFloor {
                family: ProcessorFamily::Milan,
                component: "microcode",
                reported: 0xD9,
                floor: 0xDB,
                basis: SB_3019_MILAN_B1,
            }
        );
        // A Siena report (19h/A0h stepping 2) has no sourced line: family floor 25 applies,
        // and a floor raised above it names no bulletin.
        let siena = case("derived/trustee_e2e_genoa_report.bin");
        let mut f = TcbFloor::frostamp_default();
        f.genoa.snp = 0x17;
        let e = siena.expected.clone().with_admission(AdmissionPolicy {
            tcb_floor: f,
            ..AdmissionPolicy::frostamp_default()
        });
        assert!(siena
            .verify_with(&siena.report, &siena.vcek, &e, siena.at)
            .is_ok());
        f.genoa.bootloader = 11;
        let e = siena.expected.clone().with_admission(AdmissionPolicy {
            tcb_floor: f,
            ..AdmissionPolicy::frostamp_default()
        });
        let err = siena.refused_under(&e);
        assert!(
            matches!(err, AttestationError::TcbBelowFloor { component: "bootloader", floor: 11, basis, .. } if basis != NO_BULLETIN_VALUE),
            "{err}"
        );
    }

    #[test]
    fn platform_info_rules_on_real_reports() {
        let only_platform = |platform| AdmissionPolicy {
            platform,
            ..corpus_minimum()
        };
        // ALIAS_CHECK_COMPLETE (AMD-SB-3015): set on every v3+ report, undefined (clear)
        // on the v2 reports of older firmware.
        for c in cases() {
            let e = c
                .expected
                .clone()
                .with_admission(only_platform(PlatformRules::frostamp_default()));
            let r = c.verify_with(&c.report, &c.vcek, &e, c.at);
            let info = Report::parse(&c.report).unwrap().platform_info;
            if info.alias_check_complete() {
                assert!(r.is_ok(), "{}: {r:?}", c.name);
            } else {
                assert_eq!(
                    r.unwrap_err(),
                    AttestationError::PlatformFlagMissing {
                        flag: PlatformFlag::AliasCheckComplete,
                        platform_info: info.0
                    },
                    "{}",
                    c.name
                );
            }
        }
        // A forbidden bit: Turin (PLATFORM_INFO 0x67) has SMT on, Azure's Genoa (0x24) off.
        let no_smt = only_platform(PlatformRules {
            required: &[],
            forbidden: &[PlatformFlag::SmtEnabled],
        });
        let turin = case("derived/oak_turin_oc_report.bin");
        let err = turin
            .verify_with(
                &turin.report,
                &turin.vcek,
                &turin.expected.clone().with_admission(no_smt),
                turin.at,
            )
            .unwrap_err();
        assert_eq!(
            err,
            AttestationError::PlatformFlagForbidden {
                flag: PlatformFlag::SmtEnabled,
                platform_info: 0x67
            }
        );
        assert_eq!(err.check(), "policy");
        let az = case("derived/trustee_az_genoa_report.bin");
        assert!(az
            .verify_with(
                &az.report,
                &az.vcek,
                &az.expected.clone().with_admission(no_smt),
                az.at
            )
            .is_ok());
        // A required bit that Azure's Genoa lacks.
        let tsme = only_platform(PlatformRules {
            required: &[PlatformFlag::TsmeEnabled],
            forbidden: &[],
        });
        let err = az
            .verify_with(
                &az.report,
                &az.vcek,
                &az.expected.clone().with_admission(tsme),
                az.at,
            )
            .unwrap_err();
        assert!(err.to_string().contains("TSME_EN (bit 1)"), "{err}");
    }

    #[test]
    fn malformed_inputs_fail_at_parse_with_typed_errors() {
        let c = case("derived/oak_milan_oc_release_report.bin");
        let err = c
            .verify_with(&c.report[..1183], &c.vcek, &c.expected, c.at)
            .unwrap_err();
        assert_eq!(
            err,
            AttestationError::Report(ReportError::WrongLength(1183))
        );
        let mut bad = c.report.clone();
        bad[0] = 6;
        let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
        assert_eq!(
            err,
            AttestationError::Report(ReportError::UnsupportedVersion(6))
        );
        // KEY_INFO with SIGNING_KEY = 7 (none).
        let mut bad = c.report.clone();
        bad[0x48] = 7 << 2;
        let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
        assert!(
            matches!(err, AttestationError::ReportNotSigned { .. }),
            "{err}"
        );
        // An unknown CPUID (e.g. family 1Ah model 50h, not Turin).
        let mut bad = c.report.clone();
        bad[0x188] = 0x1A;
        bad[0x189] = 0x50;
        let err = c.verify_with(&bad, &c.vcek, &c.expected, c.at).unwrap_err();
        assert_eq!(
            err,
            AttestationError::UnknownProcessor {
                family: 0x1A,
                model: 0x50
            }
        );
        // The ARK itself presented as the "VCEK": a path of one certificate.
        let ark = RootSet::amd().ark(ProcessorFamily::Milan).unwrap().to_vec();
        let err = c
            .verify_with(&c.report, &ark, &c.expected, c.at)
            .unwrap_err();
        assert_eq!(err, AttestationError::ChainShape { len: 1 });
    }

    #[test]
    fn vcek_extension_errors_are_typed() {
        // The ASK has no AMD TCB extensions.
        let ask = RootSet::amd().intermediates(ProcessorFamily::Milan)[0].to_vec();
        assert_eq!(
            frostamp::attestation::vcek::VcekExtensions::from_der(&ask),
            Err(VcekExtensionError::Missing("blSPL"))
        );
        let c = case("derived/oak_turin_oc_report.bin");
        let ext = frostamp::attestation::vcek::VcekExtensions::from_der(&c.vcek).unwrap();
        assert_eq!(ext.fmc, Some(0));
        assert_eq!(ext.hwid.as_deref(), Some(&c.chip_id[..8]));
        let vlek = frostamp::attestation::vcek::VcekExtensions::from_der(
            &case("trustee/snp/test-vlek-report.bin").vcek,
        )
        .unwrap();
        assert_eq!(vlek.hwid, None);
        assert_eq!(vlek.microcode, 0xD9);
    }
}
