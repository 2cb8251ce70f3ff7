//! Fuzz target `request`: untrusted `TimeStampReq` bytes into
//! `tsp::request::parse` with the default profile.
//!
//! - refused input: the rejection response encodes, decodes with status 2 and
//!   exactly the rejection's failure bit, and a relying party sees a rejection;
//! - accepted input: parsing is stable, and the response path runs on it
//!   (TSTInfo + signed attributes, token assembly with a placeholder signature,
//!   granted response, token re-parse) and carries the request's imprint and nonce.
#![no_main]

use der::Decode;
use frostamp::clock::{Clock, FixedClock};
use frostamp::local::LocalTsa;
use frostamp::tsp::asn1::TimeStampResp;
use frostamp::tsp::request::parse;
use frostamp::tsp::response::{decode_failure_info, granted, rejected};
use frostamp::tsp::time::GenTime;
use frostamp::tsp::token::{assemble, build_signed_content, CertIdentity, Serial};
use frostamp::tsp::TsaProfile;
use frostamp::verify::token::{extract_token, parse_token, VerifyError};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

struct Fixture {
    profile: TsaProfile,
    cert: CertIdentity,
    cert_der: Vec<u8>,
    gen_time: GenTime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Deterministic: fixed clock, seeded RNG.
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
        let clock = FixedClock(now);
        let profile = TsaProfile::frostamp_default();
        let tsa = LocalTsa::new(
            3,
            2,
            profile.clone(),
            clock,
            Arc::new(clock),
            Vec::new(),
            &mut rand::rngs::StdRng::seed_from_u64(0x5eed),
        )
        .expect("local TSA");
        Fixture {
            profile,
            cert: CertIdentity::from_der(&tsa.tsa_cert).expect("TSA certificate"),
            cert_der: tsa.tsa_cert.clone(),
            gen_time: GenTime::from_system_time_millis(clock.now()).expect("genTime"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match parse(data, &f.profile) {
        Err(r) => {
            let der = rejected(&r).expect("rejection encodes");
            let resp = TimeStampResp::from_der(&der).expect("rejection decodes");
            assert_eq!(resp.status.status.as_bytes(), [2]);
            assert!(resp.time_stamp_token.is_none());
            let bits = resp.status.fail_info.as_ref().expect("failInfo present");
            let (known, unknown) = decode_failure_info(bits);
            assert_eq!(known, vec![r.failure_info()]);
            assert!(unknown.is_empty());
            assert!(matches!(
                extract_token(&der),
                Err(VerifyError::Rejected { .. })
            ));
        }
        Ok(accepted) => {
            assert_eq!(accepted.der(), data);
            assert_eq!(parse(accepted.der(), &f.profile).as_ref(), Ok(&accepted));
            assert_eq!(accepted.imprint().len(), accepted.hash_alg().digest_len());
            let content =
                build_signed_content(&f.profile, &f.cert, &accepted, f.gen_time, &Serial([7; 16]))
                    .expect("signed content");
            let message = content.message().expect("message");
            assert!(!message.is_empty());
            let certs = if accepted.cert_req() {
                vec![f.cert_der.clone()]
            } else {
                Vec::new()
            };
            let token = assemble(&content, &f.cert, &certs, &[0x02; 65]).expect("token");
            let response = granted(&token).expect("granted response");
            assert_eq!(extract_token(&response).expect("extract"), token);
            let parsed = parse_token(&token).expect("token parses");
            assert_eq!(parsed.tst_der, content.tst_info_der);
            assert_eq!(
                parsed.tst.message_imprint.hashed_message.as_bytes(),
                accepted.imprint()
            );
            assert_eq!(parsed.tst.nonce.as_ref(), accepted.nonce());
            assert_eq!(parsed.certificates.len(), certs.len());
        }
    }
});
