//! Fuzz target `report`: untrusted SEV-SNP evidence bytes.
//!
//! - the whole input through `Report::parse`; whatever parses re-encodes to exactly the
//!   input (`to_bytes`), and its accessors run;
//! - the input split into a report (first 1184 bytes) and a VCEK (the rest) through
//!   `VcekExtensions::from_der` and `verify_report` with the compiled-in AMD roots at a
//!   fixed time and no expectations; an accepted report must equal its parse.
//!
//! Good seeds: a real report followed by its VCEK DER (e.g.
//! `cat ../tests/data/assets/sev-snp-reports/derived/oak_turin_oc_{report.bin,vcek.der}`),
//! which makes the full path (chain, signature, extensions, policy) reachable.
#![no_main]

use frostamp::attestation::report::{TcbLayout, REPORT_LEN};
use frostamp::attestation::vcek::VcekExtensions;
use frostamp::attestation::{
    verify_report, AdmissionPolicy, Expected, PlatformRules, PolicyRules, Report, RootSet,
    TcbFloor,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

fn roots() -> &'static RootSet {
    static R: OnceLock<RootSet> = OnceLock::new();
    R.get_or_init(RootSet::amd)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Report::parse(data) {
        assert_eq!(
            &r.to_bytes()[..],
            data,
            "parse/to_bytes is not the identity"
        );
        assert_eq!(&r.signed_bytes()[..], &data[..0x2A0]);
        let _ = (
            r.cpuid(),
            r.signer(),
            r.policy.debug(),
            r.key_info.mask_chip_key(),
        );
        let _ = (
            r.reported_tcb.decode(TcbLayout::Legacy),
            r.reported_tcb.decode(TcbLayout::Turin),
        );
    }

    let (report, vcek) = data.split_at(data.len().min(REPORT_LEN));
    let _ = VcekExtensions::from_der(vcek);
    // Permissive rules so that valid seeds reach every step.
    let expected = Expected {
        measurement: None,
        report_data: None,
        policy: PolicyRules {
            allow_debug: true,
            allow_migration_agent: true,
            require_single_socket: false,
            max_vmpl: 3,
            min_abi: (0, 0),
        },
        admission: AdmissionPolicy {
            min_report_version: 2,
            platform: PlatformRules::none(),
            tcb_floor: TcbFloor::none(),
        },
    };
    let at = UNIX_EPOCH + Duration::from_secs(1_756_684_800); // 2025-09-01
    match verify_report(report, vcek, &[], roots(), &expected, at) {
        Ok(v) => {
            let parsed = Report::parse(report).expect("verified report parses");
            assert_eq!(v.measurement, parsed.measurement);
            assert_eq!(v.report_data, parsed.report_data);
            assert!(!v.is_insecure_dev());
        }
        Err(e) => {
            let _ = (e.check(), e.to_string());
        }
    }
});
