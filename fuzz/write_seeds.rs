//! Regenerates the committed seeds (`seeds/`) and fixtures (`fixtures/`); with
//! arguments, only those groups (request-token, report, peer_frame, install,
//! csr-bundle, node_config, measurements, time, tls):
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
use frostamp::clock::SystemClock;
use frostamp::local::{LocalSetup, LocalTsa};
use frostamp::oid::{default_tsa_policy, ObjectIdentifier};
use frostamp::tsp::asn1::{algorithm, TimeStampReq};
use frostamp::tsp::request::{AcceptedRequest, HashAlg};
use frostamp::verify::token::{verify, Expected, VerifyOptions};
use frostamp::x509::CertDer;
use std::path::Path;

const SEED_DATA: &[u8] = b"frostamp fuzz seed";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    println!("{:>6} bytes  {}", bytes.len(), dir.join(name).display());
    Ok(())
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.is_empty();
    let want = |g: &str| all || args.iter().any(|a| a == g);
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    if want("request-token") {
        requests_and_tokens(&fuzz.join("seeds"))?;
    }
    if want("report") {
        report(fuzz)?;
    }
    if want("peer_frame") {
        peer_frame(fuzz)?;
    }
    if want("install") {
        install(fuzz)?;
    }
    if want("csr-bundle") {
        csr_and_bundle(fuzz)?;
    }
    if want("node_config") {
        node_config(fuzz)?;
    }
    if want("measurements") {
        measurements(fuzz)?;
    }
    if want("time") {
        time(fuzz)?;
    }
    if want("tls") {
        tls(fuzz)?;
    }
    Ok(())
}

/// `seeds/request/`, `seeds/token/`, `seeds/anchor.der`, `seeds/tsa-cert.der`.
fn requests_and_tokens(root: &Path) -> Result {
    let root = root.to_path_buf();
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
    foreign.req_policy = Some(ObjectIdentifier::new_unwrap("1.2.3.4.5"));
    requests.push(("foreign-policy.der".into(), foreign.to_der()?));
    let mut sha1 = TimeStampReq::from_der(&base)?;
    sha1.message_imprint.hash_algorithm = algorithm(ObjectIdentifier::new_unwrap("1.3.14.3.2.26"));
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
    let tsa: LocalTsa<SystemClock> = LocalSetup::new().nt(3, 2).build(&mut rng)?;
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
        time: None,
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

#[path = "../tests/roughtime_support/mod.rs"]
mod roughtime_support;

use frostamp::tsp::token::Serial;
use frostamp_fuzz as checks;
use rand::SeedableRng;
use std::time::{Duration, UNIX_EPOCH};

use frostamp::threshold::frost;
use std::collections::BTreeMap;

fn asset(rel: &str) -> Result<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/assets")
        .join(rel);
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()).into())
}

/// Real SEV-SNP reports with their VCEKs (the five with a VCEK in tests/data).
const REPORTS: [&str; 5] = [
    "oak_genoa_oc",
    "oak_milan_oc_release",
    "oak_milan_rk_release",
    "oak_turin_oc",
    "trustee_e2e_genoa",
];

fn report_and_vcek(name: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        asset(&format!("sev-snp-reports/derived/{name}_report.bin"))?,
        asset(&format!("sev-snp-reports/derived/{name}_vcek.der"))?,
    ))
}

/// `seeds/report/`: real reports followed by their VCEKs, and two reports alone.
fn report(fuzz: &Path) -> Result {
    let dir = fuzz.join("seeds/report");
    for name in REPORTS {
        let (mut r, v) = report_and_vcek(name)?;
        r.extend_from_slice(&v);
        write(&dir, &format!("{name}.bin"), &r)?;
    }
    for name in ["trustee_az_genoa", "trustee_az_hcl_milan"] {
        let r = asset(&format!("sev-snp-reports/derived/{name}_report.bin"))?;
        write(&dir, &format!("{name}.bin"), &r)?;
    }
    Ok(())
}

fn evidence(name: &str) -> Result<frostamp::attestation::Evidence> {
    let (report, vcek) = report_and_vcek(name)?;
    Ok(frostamp::attestation::Evidence {
        report,
        vcek,
        chain: Vec::new(),
    })
}

/// A roster of the five real reports' chips (identities made up).
fn roster() -> Result<frostamp::attestation::Roster> {
    use frostamp::attestation::roster::Member;
    let mut members = Vec::new();
    for (i, name) in REPORTS.iter().enumerate() {
        let (report, _) = report_and_vcek(name)?;
        let r = frostamp::attestation::Report::parse(&report)?;
        let index = u16::try_from(i + 1)?;
        members.push(Member {
            index,
            spki_sha256: [u8::try_from(i)?; 32],
            chip_id: r.chip_id,
            tcb: format!("{:?}", r.reported_tcb),
        });
    }
    Ok(frostamp::attestation::Roster::new(members)?)
}

/// `seeds/peer_frame/`: one frame payload per `PeerMessage` variant, with real FROST
/// packages (dealer keys and an in-process DKG) and real SNP evidence.
fn peer_frame(fuzz: &Path) -> Result {
    use frostamp::api::peer::{encode, PeerMessage, SecretScalar};
    use frostamp::threshold::signer::{Refusal, SigningProposal};
    use frostamp::threshold::suite::BySuite;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xf4a3e);
    let dir = fuzz.join("seeds/peer_frame");
    let (shares, public) =
        frost::keys::generate_with_dealer(5, 3, frost::keys::IdentifierList::Default, &mut rng)?;
    let packages: Vec<frost::keys::KeyPackage> = shares
        .into_values()
        .map(frost::keys::KeyPackage::try_from)
        .collect::<std::result::Result<_, _>>()?;
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for k in packages.iter().take(3) {
        let (n, c) = frost::round1::commit(k.signing_share(), &mut rng);
        nonces.insert(*k.identifier(), n);
        commitments.insert(*k.identifier(), c);
    }
    let signing = frost::SigningPackage::new(commitments.clone(), b"fuzz");
    let k1 = packages.first().ok_or("no share")?;
    let share = frost::round2::sign(&signing, &nonces[k1.identifier()], k1)?;
    let pairs: Vec<(u16, frost::round1::SigningCommitments)> = commitments
        .values()
        .enumerate()
        .map(|(i, c)| (i as u16 + 1, *c))
        .collect();
    let one_commitment = *commitments.values().next().ok_or("no commitment")?;
    let encoded = frostamp::threshold::signer::EncodedCommitments::encode(one_commitment)?;
    let encoded_pairs: Vec<(u16, [u8; 66])> = commitments
        .values()
        .enumerate()
        .map(|(i, c)| {
            frostamp::threshold::signer::EncodedCommitments::encode(*c)
                .map(|e| (i as u16 + 1, *e.bytes()))
        })
        .collect::<std::result::Result<_, _>>()?;
    let id = |i: u16| frost::Identifier::try_from(i);
    let (r1_secret, r1_package) = frost::keys::dkg::part1(id(1)?, 5, 3, &mut rng)?;
    let (_, r1_package_2) = frost::keys::dkg::part1(id(2)?, 5, 3, &mut rng)?;
    let mut others = BTreeMap::new();
    others.insert(id(2)?, r1_package_2);
    // part2 needs n-1 round-1 packages; make the other three.
    for i in 3..=5 {
        others.insert(id(i)?, frost::keys::dkg::part1(id(i)?, 5, 3, &mut rng)?.1);
    }
    let (_, r2) = frost::keys::dkg::part2(r1_secret, &others)?;
    let r2_package = r2.into_values().next().ok_or("no round-2 package")?;
    let group_key = hex::encode(public.verifying_key().serialize()?);
    let epoch = "epoch-1".to_string();
    let hex32 = hex::encode([0x5c; 32]);
    let request_der = std::fs::read(fuzz.join("seeds/request/sha256-nonce-certreq.der"))?;
    let pin = frostamp::certs::install::IssuancePin::from_hash(&hex32, checks::INSTALL_SUBJECT)?;
    let messages = vec![
        (
            "hello",
            PeerMessage::Hello {
                index: 2,
                nonce: hex32.clone(),
                group_key: Some(group_key.clone()),
            },
        ),
        (
            "attest",
            PeerMessage::Attest {
                evidence: evidence("oak_milan_oc_release")?,
            },
        ),
        (
            "dkg_round1",
            PeerMessage::DkgRound1 {
                epoch: epoch.clone(),
                package: BySuite::Secp256k1(r1_package),
            },
        ),
        (
            "dkg_echo",
            PeerMessage::DkgEcho {
                epoch: epoch.clone(),
                digests: (1..=5).map(|i| (i, hex32.clone())).collect(),
                roster: hex32.clone(),
            },
        ),
        (
            "dkg_round2",
            PeerMessage::DkgRound2 {
                epoch: epoch.clone(),
                package: BySuite::Secp256k1(r2_package),
            },
        ),
        (
            "dkg_confirm",
            PeerMessage::DkgConfirm {
                epoch: epoch.clone(),
                group_key: group_key.clone(),
                transcript: hex32.clone(),
            },
        ),
        ("sign_commit", PeerMessage::SignCommit { req: 7, count: 4 }),
        (
            "sign_committed",
            PeerMessage::SignCommitted {
                req: 7,
                commitments: BySuite::Secp256k1(vec![encoded, encoded]),
            },
        ),
        (
            "sign_round2",
            PeerMessage::SignRound2 {
                req: 8,
                proposal: SigningProposal {
                    request_der,
                    gen_time_unix_millis: 1_767_225_600_123,
                    serial: Serial([9; 16]),
                    cert_sha256: vec![0x5c; 32],
                    time_evidence: Vec::new(),
                },
                suite: frostamp::threshold::suite::Ciphersuite::Secp256k1,
                commitments: encoded_pairs,
            },
        ),
        (
            "sign_csr",
            PeerMessage::SignCsr {
                req: 9,
                subject: checks::INSTALL_SUBJECT.into(),
                bundle: "{}".into(),
                ca_root: hex32.clone(),
                commitments: BySuite::Secp256k1(pairs),
            },
        ),
        (
            "sign_share",
            PeerMessage::SignShare {
                req: 8,
                share: BySuite::Secp256k1(share),
            },
        ),
        (
            "sign_refused",
            PeerMessage::SignRefused {
                req: 8,
                refusal: Refusal::GenTimeOutOfTolerance {
                    proposed: "20260101000000Z".into(),
                    skew_ms: 1500,
                    tolerance_ms: 1000,
                },
            },
        ),
        (
            "repair_start",
            PeerMessage::RepairStart {
                epoch: epoch.clone(),
                helpers: vec![1, 2, 3],
                participant: 4,
                attempt: 0x1234_5678,
            },
        ),
        (
            "repair_delta",
            PeerMessage::RepairDelta {
                epoch: epoch.clone(),
                participant: 4,
                attempt: 0x1234_5678,
                delta: SecretScalar::new(k1.signing_share().serialize()),
            },
        ),
        (
            "repair_sigma",
            PeerMessage::RepairSigma {
                epoch: epoch.clone(),
                attempt: 0x1234_5678,
                sigma: SecretScalar::new(k1.signing_share().serialize()),
                public: BySuite::Secp256k1(public.clone()),
                transcript: hex32.clone(),
                chain: vec![hex::encode(std::fs::read(fuzz.join("seeds/tsa-cert.der"))?)],
                roster: roster()?,
                pin: Some(pin),
            },
        ),
        (
            "repair_refused",
            PeerMessage::RepairRefused {
                epoch: epoch.clone(),
                attempt: 1,
                reason: "no share".into(),
            },
        ),
        (
            "ping",
            PeerMessage::Ping {
                group_key: Some(group_key.clone()),
            },
        ),
        (
            "have_share",
            PeerMessage::HaveShare {
                group_key: group_key.clone(),
            },
        ),
        (
            "dkg_abort",
            PeerMessage::DkgAbort {
                epoch,
                reason: "bad share".into(),
                culprit: Some(3),
            },
        ),
    ];
    for (name, msg) in &messages {
        let bytes = encode(msg)?;
        frostamp::api::peer::decode(&bytes)?;
        checks::peer_frame(&bytes);
        // Version byte, tag byte, then JSON (tag 0) or the binary per-token encoding.
        let ext = if bytes.get(1) == Some(&frostamp::api::peer::TAG_JSON) {
            "json"
        } else {
            "bin"
        };
        write(&dir, &format!("{name}.{ext}"), &bytes)?;
    }
    Ok(())
}

/// `fixtures/install/` (a development CA root, a TSA leaf it issued for a group key with
/// the fixture measurement and subject, the group's public key package) and
/// `seeds/install/` (chains in `checks::join_chain` form, and PEM).
fn install(fuzz: &Path) -> Result {
    use frostamp::certs::DevCa;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1257a11);
    let fix = fuzz.join("fixtures/install");
    let dir = fuzz.join("seeds/install");
    let (_, public) =
        frost::keys::generate_with_dealer(3, 2, frost::keys::IdentifierList::Default, &mut rng)?;
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    let year = Duration::from_secs(365 * 86_400);
    let ca = DevCa::generate(
        "CN=frostamp fuzz root,O=frostamp",
        start,
        20 * year,
        &mut rng,
    )?;
    let root = ca.certificate_der()?;
    let issue = |lifetime: Duration, rng: &mut rand::rngs::StdRng| {
        ca.issue_tsa_certificate(
            &frostamp::threshold::suite::BySuite::Secp256k1(*public.verifying_key()),
            Some(&checks::INSTALL_MEASUREMENT),
            checks::INSTALL_SUBJECT,
            start,
            lifetime,
            rng,
        )
    };
    let leaf = issue(5 * year, &mut rng)?;
    let renewal = issue(6 * year, &mut rng)?;
    write(&fix, "root.der", &root)?;
    write(&fix, "leaf.der", &leaf)?;
    write(&fix, "group.bin", &public.serialize()?)?;
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("leaf-root.chain", checks::join_chain(&[&leaf, &root])),
        ("renewal-root.chain", checks::join_chain(&[&renewal, &root])),
        ("leaf.chain", checks::join_chain(&[&leaf])),
        ("root.chain", checks::join_chain(&[&root])),
        (
            "leaf-root-root.chain",
            checks::join_chain(&[&leaf, &root, &root]),
        ),
        (
            "leaf-root.pem",
            format!(
                "{}{}",
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &leaf)
                    .map_err(|e| e.to_string())?,
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &root)
                    .map_err(|e| e.to_string())?
            )
            .into_bytes(),
        ),
    ];
    for (name, bytes) in &seeds {
        write(&dir, name, bytes)?;
    }
    Ok(())
}

/// `fixtures/csr/key.bin` (a FROST group signing key standing in for the threshold
/// signature), `seeds/csr/` (a signed CSR and its CertificationRequestInfo, whose
/// bundle is the `bundle` seed) and `seeds/bundle/` (an evidence bundle of the five
/// real SNP reports: structurally complete, so checks run up to the report binding).
fn csr_and_bundle(fuzz: &Path) -> Result {
    use frostamp::api::admin::DkgResult;
    use frostamp::api::bundle::EvidenceBundle;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc5a);
    let key = frost::SigningKey::new(&mut rng);
    let vk = frost::VerifyingKey::from(&key);
    write(&fuzz.join("fixtures/csr"), "key.bin", &key.serialize())?;
    let (first, _) = report_and_vcek(REPORTS[0])?;
    let measurement = frostamp::attestation::Report::parse(&first)?.measurement;
    let roster = roster()?;
    let group_key = hex::encode(vk.serialize()?);
    let transcript = hex::encode([0x7a; 32]);
    let nodes = REPORTS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Ok(DkgResult {
                index: u16::try_from(i + 1)?,
                epoch: "epoch-1".into(),
                group_key: group_key.clone(),
                ciphersuite: frostamp::threshold::suite::Ciphersuite::Secp256k1,
                transcript: transcript.clone(),
                evidence: evidence(name)?,
                roster: roster.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bundle = EvidenceBundle {
        version: 2,
        epoch: "epoch-1".into(),
        n: 5,
        t: 3,
        roster,
        group_key,
        ciphersuite: frostamp::threshold::suite::Ciphersuite::Secp256k1,
        transcript,
        measurement: hex::encode(measurement),
        nodes,
    };
    let json = serde_json::to_vec(&bundle)?;
    write(&fuzz.join("seeds/bundle"), "five-real-reports.json", &json)?;
    let info = frostamp::certs::build_csr_info(checks::INSTALL_SUBJECT, &vk, &measurement, &json)?;
    let sig: [u8; 65] = key
        .sign(&mut rng, &info)
        .serialize()?
        .try_into()
        .map_err(|_| "signature length")?;
    let csr = frostamp::certs::assemble_csr::<frost::Secp256K1Sha256>(&info, &sig)?;
    let verified = frostamp::certs::verify_csr(&csr)?;
    assert_eq!(verified.evidence, json);
    let dir = fuzz.join("seeds/csr");
    write(&dir, "signed.der", &csr)?;
    write(&dir, "info.der", &info)?;
    Ok(())
}

/// `seeds/node_config/`: a minimal and a full fw_cfg configuration, and near-misses.
fn node_config(fuzz: &Path) -> Result {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc0f);
    let operator = frostamp::api::auth::OperatorKey::generate(&mut rng).public_hex()?;
    let (_, vcek) = report_and_vcek(REPORTS[1])?;
    // The build's pinned time servers, at local addresses.
    let pinned = frostamp::time::evidence::pinned_policy();
    let servers: Vec<serde_json::Value> = pinned
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let version = match s.version {
                frostamp::time::roughtime::Version::Rfc => "rfc",
                frostamp::time::roughtime::Version::Draft12 => "draft12",
                frostamp::time::roughtime::Version::Draft11 => "draft11",
            };
            serde_json::json!({
                "name": s.name,
                "public_key": hex::encode(s.public_key),
                "version": version,
                "address": format!("127.0.0.1:{}", 2002 + i),
            })
        })
        .collect();
    let full = serde_json::json!({
        "version": 1,
        "name": "node-3",
        "public": "0.0.0.0:8443",
        "peer": "0.0.0.0:9443",
        "operator_key": operator,
        "vcek": hex::encode(vcek),
        "insecure_dev_platform": "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        "test_fault": "bad-share",
        "time": {
            "servers": servers,
            "quorum": pinned.quorum,
        }
    });
    let dir = fuzz.join("seeds/node_config");
    let minimal = format!(r#"{{"version":1,"operator_key":"{operator}"}}"#);
    assert!(frostamp::pid1::config::NodeConfig::parse(minimal.as_bytes()).is_ok());
    let full = serde_json::to_vec_pretty(&full)?;
    frostamp::pid1::config::NodeConfig::parse(&full)?;
    write(&dir, "minimal.json", minimal.as_bytes())?;
    write(&dir, "full.json", &full)?;
    write(
        &dir,
        "same-addresses.json",
        format!(r#"{{"version":1,"operator_key":"{operator}","public":"[::]:1","peer":"[::]:1"}}"#)
            .as_bytes(),
    )?;
    Ok(())
}

/// `seeds/measurements/`: the repository's published measurement files.
fn measurements(fuzz: &Path) -> Result {
    let dir = fuzz.join("seeds/measurements");
    for name in ["0.1.0.json", "0.1.0-dev.json"] {
        let bytes = std::fs::read(fuzz.join("../measurements").join(name))?;
        assert!(
            !frostamp::cli::ops::measurements_in_json(std::str::from_utf8(&bytes)?)?.is_empty()
        );
        write(&dir, name, &bytes)?;
    }
    Ok(())
}

/// `fixtures/roughtime.json` (three servers: Cloudflare's draft-11 vector server, and
/// RFC 10049 and draft-12 test servers), `seeds/roughtime/` (replies of each to the
/// fixture nonce) and `seeds/time_evidence/` (evidence for `checks::TIME_LEAF` with a
/// reply of the RFC server, which `checks::time_evidence` accepts).
fn time(fuzz: &Path) -> Result {
    use frostamp::time::evidence::{root_from_path, RoughtimeReply, TimeEvidence};
    use frostamp::time::roughtime::{encode_request, ServerSpec, Version};
    use roughtime_support::{public_key_from_seed, respond, ServerConfig};
    let rt = fuzz.join("seeds/roughtime");
    let mut fixtures = Vec::new();
    // Cloudflare's draft-11 vectors: the first request's nonce and its reply.
    let v: serde_json::Value = serde_json::from_slice(&asset(
        "roughtime/cloudflare/roughtime_ietf_draft11_001.json",
    )?)?;
    let field = |k: &str, i: Option<usize>| -> Result<Vec<u8>> {
        let x = match i {
            Some(i) => &v[k][i],
            None => &v[k],
        };
        Ok(hex::decode(x.as_str().ok_or("vector field")?)?)
    };
    let root_seed: [u8; 32] = field("root_key", None)?
        .try_into()
        .map_err(|_| "root key length")?;
    let request = &field("request", Some(0))?;
    let reply = &field("replies", Some(0))?;
    // NONC is the last tag of the draft-11 request (VER, SRV, NONC, ZZZZ sorted: NONC at
    // the offset its header gives); find it by value in the reply instead.
    let vector_spec = ServerSpec {
        name: "cloudflare-vectors".into(),
        public_key: public_key_from_seed(&root_seed),
        version: Version::Draft11,
    };
    let nonce = request
        .windows(32)
        .map(|w| <[u8; 32]>::try_from(w).map_err(|_| "window"))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .find(|n| frostamp::time::roughtime::verify_response(&vector_spec, n, reply).is_ok())
        .ok_or("no nonce of the vector request verifies its reply")?;
    write(&rt, "draft11-cloudflare-vector.bin", reply)?;
    fixtures.push(checks::RoughtimeFixture {
        name: vector_spec.name.clone(),
        public_key: hex::encode(vector_spec.public_key),
        version: Version::Draft11.wire_value(),
        nonce: hex::encode(nonce),
    });
    // Test servers (tests/roughtime_support), answering the nonce 7e…7e.
    let nonce = [0x7e; 32];
    let midp = 1_767_225_600;
    let mut rfc_spec = None;
    for (name, cfg, version) in [
        ("rfc", ServerConfig::rfc([0x5a; 32], midp), Version::Rfc),
        (
            "draft12",
            ServerConfig::draft12([0x6b; 32], midp),
            Version::Draft12,
        ),
    ] {
        let spec = ServerSpec {
            name: format!("test-{name}"),
            public_key: public_key_from_seed(&cfg.root_seed),
            version,
        };
        let replies = respond(&cfg, &[encode_request(&nonce, &spec)]);
        let reply = replies.first().ok_or("no reply")?;
        frostamp::time::roughtime::verify_response(&spec, &nonce, reply)?;
        write(&rt, &format!("{name}-test-server.bin"), reply)?;
        fixtures.push(checks::RoughtimeFixture {
            name: spec.name.clone(),
            public_key: hex::encode(spec.public_key),
            version: version.wire_value(),
            nonce: hex::encode(nonce),
        });
        if version == Version::Rfc {
            rfc_spec = Some((spec, cfg));
        }
    }
    std::fs::create_dir_all(fuzz.join("fixtures"))?;
    write(
        &fuzz.join("fixtures"),
        "roughtime.json",
        serde_json::to_string_pretty(&fixtures)?.as_bytes(),
    )?;
    // Time evidence: the fixture leaf at index 1 under two siblings.
    let (spec, cfg) = rfc_spec.ok_or("no RFC server")?;
    let dir = fuzz.join("seeds/time_evidence");
    for (name, index, path) in [
        ("leaf1-path2", 1u32, vec![[0x22u8; 32], [0x33; 32]]),
        ("single", 0, Vec::new()),
    ] {
        let root = root_from_path(&checks::TIME_LEAF, index, &path);
        let replies = respond(&cfg, &[encode_request(&root, &spec)]);
        let reply = replies.first().ok_or("no reply")?;
        let ev = TimeEvidence {
            version: 1,
            leaf_index: index,
            path: path
                .iter()
                .map(|p| der::asn1::OctetString::new(p.to_vec()))
                .collect::<std::result::Result<_, _>>()?,
            replies: vec![RoughtimeReply {
                public_key: der::asn1::OctetString::new(spec.public_key.to_vec())?,
                version: Version::Rfc.wire_value(),
                response: der::asn1::OctetString::new(reply.clone())?,
            }],
        };
        write(&dir, &format!("{name}.der"), &ev.to_der()?)?;
    }
    Ok(())
}

/// Replaces every occurrence of `from` in `bytes` by `to` (same length).
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
            n += 1;
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "nothing to patch");
    out
}

/// `fixtures/tls/` (a development CA with a CRL URL, its key, and the TLS certificate
/// it issued, as `ceremony::tls::issue_tls` does, for the request of the fixture
/// identity `checks::tls_identity`), `seeds/crl/` (CRLs of that CA: one that does not
/// list the leaf, one that revokes it, PEM and DER, an expired one before a current
/// one; twins that fail: expired, not yet valid, signed by another CA of the same
/// name, a flipped signature, truncated), `seeds/tls_csr/` (requests the node code
/// builds, a CertificationRequestInfo; twins: a flipped signature, a request without
/// subjectAltName, a bad DNS name) and `seeds/tls_upload/` (the leaf alone and with
/// its root; twins: the root, another node's leaf, an expired leaf, a chain to another
/// root, a root too many). Deterministic (seeded): a rerun writes the same bytes.
fn tls(fuzz: &Path) -> Result {
    use frostamp::certs::crl::Revoked;
    use frostamp::certs::tls::{parse_tls_csr, PublicNames};
    use frostamp::certs::DevCa;
    use x509_cert::ext::pkix::CrlReason;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7150);
    let fix = fuzz.join("fixtures/tls");
    let now = UNIX_EPOCH + Duration::from_secs(checks::FIXTURE_NOW_SECS);
    let day = Duration::from_secs(86_400);
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    let subject = "CN=frostamp fuzz TLS root,O=frostamp";
    let mut ca = DevCa::generate(subject, start, 20 * 365 * day, &mut rng)?;
    ca.set_crl_url(Some("http://crl.fuzz.example/root.crl".into()));
    let root = ca.certificate_der()?;
    let id = checks::tls_identity();
    let names = checks::tls_names();
    let csr_der = id.tls_csr(&names)?;
    let csr = parse_tls_csr(&csr_der)?;
    let backdate = frostamp::ceremony::ISSUANCE_BACKDATE;
    let lifetime = frostamp::ceremony::tls::TLS_LIFETIME;
    let leaf = ca.issue_tls_certificate(&csr, now - backdate, lifetime, &mut rng)?;
    write(&fix, "root.pem", ca.certificate_pem()?.as_bytes())?;
    write(&fix, "root-key.pem", ca.key_pem()?.as_bytes())?;
    write(&fix, "leaf.der", &leaf)?;

    // CRLs.
    let dir = fuzz.join("seeds/crl");
    let leaf_serial = x509_cert::Certificate::from_der(&leaf)?
        .tbs_certificate
        .serial_number
        .as_bytes()
        .to_vec();
    let other = Revoked {
        serial: vec![0x42, 0x42],
        at: now - 10 * day,
        reason: Some(CrlReason::Superseded),
    };
    let revoked_leaf = Revoked {
        serial: leaf_serial,
        at: now - 2 * day,
        reason: Some(CrlReason::KeyCompromise),
    };
    let good = ca.issue_crl(std::slice::from_ref(&other), 7, now - day, now + 30 * day)?;
    let revoked = ca.issue_crl(&[other.clone(), revoked_leaf], 8, now - day, now + 30 * day)?;
    let empty = ca.issue_crl(&[], 6, now - day, now + 7 * day)?;
    let expired = ca.issue_crl(&[], 5, now - 60 * day, now - 30 * day)?;
    let future = ca.issue_crl(&[], 9, now + day, now + 30 * day)?;
    let stranger = DevCa::generate(subject, start, 20 * 365 * day, &mut rng)?;
    let forged = stranger.issue_crl(&[], 10, now - day, now + 30 * day)?;
    let pem = |der: &[u8]| {
        der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, der)
            .map_err(|e| e.to_string())
    };
    let mut flipped = revoked.clone();
    *flipped.last_mut().ok_or("empty CRL")? ^= 1;
    let crls: Vec<(&str, Vec<u8>)> = vec![
        ("good.der", good.clone()),
        ("revoked.der", revoked.clone()),
        ("empty.der", empty),
        ("revoked.pem", pem(&revoked)?.into_bytes()),
        (
            "expired-then-good.pem",
            format!("{}{}", pem(&expired)?, pem(&good)?).into_bytes(),
        ),
        ("expired.der", expired),
        ("not-yet-valid.der", future),
        ("other-ca-same-name.der", forged),
        ("flipped-signature.der", flipped),
        ("truncated.der", revoked[..revoked.len() - 10].to_vec()),
    ];
    for (name, bytes) in &crls {
        write(&dir, name, bytes)?;
    }

    // The node's TLS certificate requests.
    let dir = fuzz.join("seeds/tls_csr");
    let info = frostamp::x509::RawSigned::from_der(&csr_der)?
        .tbs
        .to_der()?;
    let mut flipped = csr_der.clone();
    *flipped.last_mut().ok_or("empty CSR")? ^= 1;
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("node.csr", csr_der.clone()),
        ("node-info.der", info.clone()),
        (
            "wildcard.csr",
            id.tls_csr(&PublicNames {
                dns: vec!["*.fuzz.example".into()],
                ips: vec![],
            })?,
        ),
        (
            "address.csr",
            id.tls_csr(&PublicNames {
                dns: vec![],
                ips: vec![std::net::IpAddr::from([10, 0, 0, 1])],
            })?,
        ),
        (
            "other-node.csr",
            checks::tls_other_identity().tls_csr(&names)?,
        ),
        ("flipped-signature.csr", flipped),
        // subjectAltName (2.5.29.17) requested as issuerAltName (2.5.29.18).
        (
            "no-san-info.der",
            patch(
                &info,
                &[0x06, 0x03, 0x55, 0x1d, 0x11],
                &[0x06, 0x03, 0x55, 0x1d, 0x12],
            ),
        ),
        (
            "bad-name-info.der",
            patch(&info, b"localhost", b"loc..host"),
        ),
    ];
    for (name, bytes) in &requests {
        write(&dir, name, bytes)?;
    }

    // Chains uploaded to /admin/tls-certificate.
    let dir = fuzz.join("seeds/tls_upload");
    let other_csr = parse_tls_csr(&checks::tls_other_identity().tls_csr(&names)?)?;
    let other_leaf = ca.issue_tls_certificate(&other_csr, now - backdate, lifetime, &mut rng)?;
    let expired_leaf = ca.issue_tls_certificate(&csr, now - 200 * day, lifetime, &mut rng)?;
    let stranger_root = stranger.certificate_der()?;
    let chains: Vec<(&str, Vec<u8>)> = vec![
        ("leaf.chain", checks::join_chain(&[&leaf])),
        ("leaf-root.chain", checks::join_chain(&[&leaf, &root])),
        ("root.chain", checks::join_chain(&[&root])),
        (
            "other-node-leaf.chain",
            checks::join_chain(&[&other_leaf, &root]),
        ),
        (
            "expired-leaf.chain",
            checks::join_chain(&[&expired_leaf, &root]),
        ),
        (
            "leaf-other-root.chain",
            checks::join_chain(&[&leaf, &stranger_root]),
        ),
        (
            "leaf-root-root.chain",
            checks::join_chain(&[&leaf, &root, &root]),
        ),
    ];
    for (name, bytes) in &chains {
        write(&dir, name, bytes)?;
    }
    Ok(())
}
