//! Fuzz target `token`: untrusted bytes (a `TimeStampResp` or a bare token) into
//! `verify::token::verify` with fixed options, and into `parse_token`.
//!
//! The options trust the development CA that issued the committed seeds
//! (`seeds/anchor.der`), so mutations of the seed tokens reach the signature,
//! ESS and chain checks instead of stopping at the first structure check.
#![no_main]

use frostamp::certs::CertDer;
use frostamp::verify::token::{extract_token, parse_token, verify, Expected, VerifyOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The data the token seeds are timestamps of (see write_seeds.rs).
const SEED_DATA: &[u8] = b"frostamp fuzz seed";

fn options() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| VerifyOptions {
        expected: Expected::Data(SEED_DATA.to_vec()),
        anchors: vec![CertDer::from_der(include_bytes!("../seeds/anchor.der")).expect("anchor")],
        extra_certs: vec![
            CertDer::from_der(include_bytes!("../seeds/tsa-cert.der")).expect("TSA cert")
        ],
        at: None,
        nonce: None,
        policy: Some(frostamp::oid::default_tsa_policy()),
    })
}

fuzz_target!(|data: &[u8]| {
    let verified = verify(data, options());
    let parsed = parse_token(data);
    let extracted = extract_token(data);
    if verified.is_ok() {
        // Whatever verifies is a well-formed response or token.
        let token = extracted.expect("verified input yields a token");
        parse_token(&token).expect("verified token parses");
    }
    if parsed.is_ok() {
        // A bare token that parses is accepted as a token by extract_token.
        assert!(extract_token(data).is_ok());
    }
});
