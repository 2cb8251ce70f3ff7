//! Regenerates the committed seed corpora in `seeds/`:
//!
//! - `seeds/request/`: valid requests (every accepted hash, with and without
//!   nonce and certReq, with the TSA policy) and a few near-misses (SHA-1,
//!   foreign policy, short imprint, version 2);
//! - `seeds/token/`: granted responses and bare tokens from an in-process 2-of-3
//!   TSA, plus a rejection response;
//! - `seeds/anchor.der`, `seeds/tsa-cert.der`: that TSA's development root and
//!   TSA certificate, which the `token` target trusts.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`
//! (writing new certificates changes what the `token` target trusts; rebuild it).

use der::{Decode, Encode};
use frostamp::certs::CertDer;
use frostamp::clock::SystemClock;
use frostamp::local::LocalTsa;
use frostamp::oid::{default_tsa_policy, Oid};
use frostamp::tsp::asn1::{AlgorithmId, TimeStampReq};
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use frostamp::tsp::TsaProfile;
use frostamp::verify::token::{verify, Expected, VerifyOptions};
use std::path::Path;
use std::sync::Arc;

const SEED_DATA: &[u8] = b"frostamp fuzz seed";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    println!("{:>6} bytes  {}", bytes.len(), dir.join(name).display());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let req_dir = root.join("request");
    let tok_dir = root.join("token");
    let mut rng = rand::thread_rng();

    // Requests.
    let mut requests: Vec<(String, Vec<u8>)> = Vec::new();
    for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let d = h.digest(SEED_DATA);
        requests.push((
            format!("{}-nonce-certreq.der", h.name()),
            AcceptedRequest::build_der(h, &d, Some(&[0x8f, 1, 2, 3, 4, 5, 6, 7]), true)?,
        ));
        requests.push((
            format!("{}-bare.der", h.name()),
            AcceptedRequest::build_der(h, &d, None, false)?,
        ));
    }
    let base = AcceptedRequest::build_der(
        HashAlg::Sha256,
        &HashAlg::Sha256.digest(SEED_DATA),
        Some(&[1]),
        true,
    )?;
    let mut with_policy = TimeStampReq::from_der(&base)?;
    with_policy.req_policy = Some(default_tsa_policy());
    requests.push(("sha256-policy.der".into(), with_policy.to_der()?));
    let mut foreign = with_policy.clone();
    foreign.req_policy = Some(Oid::from_dotted("1.2.3.4.5")?);
    requests.push(("foreign-policy.der".into(), foreign.to_der()?));
    let mut sha1 = TimeStampReq::from_der(&base)?;
    sha1.message_imprint.hash_algorithm = AlgorithmId::new(Oid::from_dotted("1.3.14.3.2.26")?);
    sha1.message_imprint.hashed_message = der::asn1::OctetString::new(vec![0u8; 20])?;
    requests.push(("sha1.der".into(), sha1.to_der()?));
    let mut v2 = TimeStampReq::from_der(&base)?;
    v2.version = der::asn1::Int::new(&[2])?;
    requests.push(("version2.der".into(), v2.to_der()?));
    requests.push((
        "short-imprint.der".into(),
        AcceptedRequest::build_der(HashAlg::Sha256, &[0u8; 31], None, false)?,
    ));
    for (name, der) in &requests {
        write(&req_dir, name, der)?;
    }

    // Tokens from an in-process TSA.
    let tsa = LocalTsa::new(
        3,
        2,
        TsaProfile::frostamp_default(),
        SystemClock,
        Arc::new(SystemClock),
        Vec::new(),
        &mut rng,
    )?;
    write(&root, "anchor.der", &tsa.ca.certificate().to_der()?)?;
    write(&root, "tsa-cert.der", &tsa.tsa_cert)?;
    // The options the `token` target uses.
    let opts = VerifyOptions {
        expected: Expected::Data(SEED_DATA.to_vec()),
        anchors: vec![CertDer::from_cert(tsa.ca.certificate())?],
        extra_certs: vec![CertDer::from_der(&tsa.tsa_cert)?],
        at: None,
        nonce: None,
        policy: Some(default_tsa_policy()),
    };
    for (name, req) in &requests {
        // Refused requests get no token; they are covered by rejection.resp.
        let Ok(issued) = tsa.issue(req, &mut rng) else {
            continue;
        };
        verify(&issued.response, &opts)?;
        verify(&issued.token, &opts)?;
        let stem = name.trim_end_matches(".der");
        write(&tok_dir, &format!("{stem}.resp"), &issued.response)?;
        if name.starts_with("sha256") {
            write(&tok_dir, &format!("{stem}.tst"), &issued.token)?;
        }
    }
    if let Err(failure) = tsa.issue(&requests[requests.len() - 2].1, &mut rng) {
        write(&tok_dir, "rejection.resp", &failure.response)?;
    }
    Ok(())
}
