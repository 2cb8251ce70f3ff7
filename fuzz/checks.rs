//! What every fuzz target checks, in one place: the cargo-fuzz targets
//! (`fuzz_targets/*.rs`, one line each) call these functions, and the replay test
//! (`tests/fuzz_corpora.rs` in the main crate, stable Rust) includes this file with
//! `#[path]` and runs every committed corpus file through the same function. A check
//! fails by panicking: a parser that panics, or a broken round trip or invariant. It
//! returns whether the input got through the target's deepest check (named in its
//! documentation); the replay test asserts that some seed of every target does, so
//! that fixtures and seeds cannot silently go stale.
//!
//! Fixtures (keys, certificates, servers) are compiled in from `fixtures/` (written by
//! `write_seeds.rs`), so that seeds built with them pass every check and mutations of
//! them reach the deep paths (signatures, chains, bindings).

use der::Decode;
use frostamp::attestation::report::{TcbLayout, REPORT_LEN};
use frostamp::attestation::vcek::VcekExtensions;
use frostamp::attestation::{
    verify_report, AdmissionPolicy, Expected as ReportExpected, PlatformRules, PolicyRules, Report,
    RootSet, TcbFloor,
};
use frostamp::clock::{Clock, FixedClock};
use frostamp::local::LocalSetup;
use frostamp::tsp::asn1::TimeStampResp;
use frostamp::tsp::response::{decode_failure_info, granted, rejected};
use frostamp::tsp::time::GenTime;
use frostamp::tsp::token::{assemble, build_signed_content, CertIdentity, Serial};
use frostamp::tsp::TsaProfile;
use frostamp::verify::token::{extract_token, parse_token, verify, VerifyError, VerifyOptions};
use frostamp::x509::CertDer;
use rand::SeedableRng;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A target's check: panics on a finding, returns whether the input got through the
/// deepest check.
pub type Check = fn(&[u8]) -> bool;

/// Every target: its name (the directory under `seeds/` and `corpus-min/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("request", request),
    ("token", token),
    ("report", report),
    ("peer_frame", peer_frame),
    ("install", install),
    ("csr", csr),
    ("bundle", bundle),
    ("node_config", node_config),
    ("measurements", measurements),
    ("roughtime", roughtime),
    ("time_evidence", time_evidence),
    ("crl", crl),
    ("tls_csr", tls_csr),
    ("tls_upload", tls_upload),
];

/// The data the token seeds are timestamps of (see write_seeds.rs).
pub const SEED_DATA: &[u8] = b"frostamp fuzz seed";

/// 2027-01-01T00:00:00Z: inside the validity of the install fixture's certificates.
pub const FIXTURE_NOW_SECS: u64 = 1_798_761_600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn amd_roots() -> &'static RootSet {
    static R: OnceLock<RootSet> = OnceLock::new();
    R.get_or_init(RootSet::amd)
}

// ---------------------------------------------------------------------------------
// request: TimeStampReq bytes into tsp::request::parse with the default profile.

struct RequestFixture {
    profile: TsaProfile,
    cert: CertIdentity,
    cert_der: Vec<u8>,
    gen_time: GenTime,
}

fn request_fixture() -> &'static RequestFixture {
    static F: OnceLock<RequestFixture> = OnceLock::new();
    F.get_or_init(|| {
        // Deterministic: fixed clock, seeded RNG.
        let now = at(1_767_225_600); // 2026-01-01T00:00:00Z
        let clock = FixedClock(now);
        let profile = TsaProfile::frostamp_default();
        let tsa = LocalSetup::new()
            .nt(3, 2)
            .profile(profile.clone())
            .clock(clock)
            .default_clock(Arc::new(clock))
            .build::<frostamp::threshold::suite::Secp256K1Sha256>(
                &mut rand::rngs::StdRng::seed_from_u64(0x5eed),
            )
            .expect("local TSA");
        RequestFixture {
            profile,
            cert: CertIdentity::from_der(&tsa.tsa_cert).expect("TSA certificate"),
            cert_der: tsa.tsa_cert.clone(),
            gen_time: GenTime::from_system_time_millis(clock.now()).expect("genTime"),
        }
    })
}

/// `request`: refused input gets a rejection that encodes, decodes with status 2 and
/// exactly its failure bit, and that a relying party sees as a rejection; accepted
/// input re-parses to the same request and goes through the response path (TSTInfo,
/// signed attributes, token with a placeholder signature, granted response, re-parse)
/// carrying the request's imprint and nonce.
pub fn request(data: &[u8]) -> bool {
    use frostamp::tsp::request::parse;
    let f = request_fixture();
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
            false
        }
        Ok(accepted) => {
            assert_eq!(accepted.der(), data);
            assert_eq!(parse(accepted.der(), &f.profile).as_ref(), Ok(&accepted));
            assert_eq!(accepted.imprint().len(), accepted.hash_alg().digest_len());
            let content = build_signed_content::<frostamp::threshold::frost::Secp256K1Sha256>(
                &f.profile,
                &f.cert,
                &accepted,
                f.gen_time,
                &Serial([7; 16]),
                None,
            )
            .expect("signed content");
            let message = content.message().expect("message");
            assert!(!message.is_empty());
            let certs = if accepted.cert_req() {
                vec![f.cert_der.clone()]
            } else {
                Vec::new()
            };
            let token = assemble::<frostamp::threshold::frost::Secp256K1Sha256>(
                &content,
                &f.cert,
                &certs,
                &[0x02; 65],
            )
            .expect("token");
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
            true
        }
    }
}

// ---------------------------------------------------------------------------------
// token: a TimeStampResp or a bare token into verify::token::verify.

fn token_options() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| VerifyOptions {
        expected: frostamp::verify::token::Expected::Data(SEED_DATA.to_vec()),
        anchors: vec![CertDer::from_der(include_bytes!("seeds/anchor.der")).expect("anchor")],
        extra_certs: vec![
            CertDer::from_der(include_bytes!("seeds/tsa-cert.der")).expect("TSA cert")
        ],
        at: None,
        nonce: None,
        policy: Some(frostamp::oid::default_tsa_policy()),
        time: None,
    })
}

/// `token`: `verify` with options that trust the seeds' development CA, plus
/// `parse_token` and `extract_token`; whatever verifies also extracts and parses, and
/// a bare token that parses is accepted by `extract_token`.
pub fn token(data: &[u8]) -> bool {
    let verified = verify(data, token_options());
    let parsed = parse_token(data);
    let extracted = extract_token(data);
    if verified.is_ok() {
        let token = extracted.expect("verified input yields a token");
        parse_token(&token).expect("verified token parses");
    }
    if parsed.is_ok() {
        assert!(extract_token(data).is_ok());
    }
    verified.is_ok()
}

// ---------------------------------------------------------------------------------
// report: SEV-SNP evidence bytes.

/// `report`: the whole input through `Report::parse` (whatever parses re-encodes to
/// exactly the input); the input split into a report (first 1184 bytes) and a VCEK (the
/// rest) through `VcekExtensions::from_der` and `verify_report` with the AMD roots at
/// a fixed time; an accepted report equals its parse.
pub fn report(data: &[u8]) -> bool {
    if let Ok(r) = Report::parse(data) {
        assert_eq!(
            &r.to_bytes()[..],
            data,
            "parse/to_bytes is not the identity"
        );
        assert_eq!(Some(&r.signed_bytes()[..]), data.get(..0x2A0));
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
    let expected = ReportExpected {
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
    match verify_report(report, vcek, &[], amd_roots(), &expected, at(1_756_684_800)) {
        Ok(v) => {
            let parsed = Report::parse(report).expect("verified report parses");
            assert_eq!(v.measurement, parsed.measurement);
            assert_eq!(v.report_data, parsed.report_data);
            assert!(!v.is_insecure_dev());
            true
        }
        Err(e) => {
            let _ = (e.check(), e.to_string());
            false
        }
    }
}

// ---------------------------------------------------------------------------------
// peer_frame: a frame's payload into api::peer::decode.

/// `peer_frame`: `messages::decode`; whatever decodes encodes, the encoding decodes,
/// and encoding is then a fixed point (decode ∘ encode ∘ decode = decode, compared
/// on the canonical encoding since messages have no `PartialEq`).
pub fn peer_frame(data: &[u8]) -> bool {
    use frostamp::api::peer::{decode, encode};
    let Ok(msg) = decode(data) else {
        return false;
    };
    {
        let first = encode(&msg).expect("a decoded message encodes");
        let again = decode(&first).expect("an encoded message decodes");
        let second = encode(&again).expect("it encodes again");
        assert_eq!(
            first.as_slice(),
            second.as_slice(),
            "encode(decode(encode(m))) differs from encode(m)"
        );
    }
    true
}

// ---------------------------------------------------------------------------------
// install: an uploaded certificate chain into the node's install check.

/// Splits fuzz input into certificates: each one a 2-byte big-endian length and that
/// many bytes (the last one takes what is left); at most 8.
pub fn split_chain(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < 8 {
        let Some((len, rest)) = data.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (cert, rest) = rest.split_at(len);
        out.push(cert.to_vec());
        data = rest;
    }
    out
}

/// Joins certificates in the form [`split_chain`] reads.
pub fn join_chain(certs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in certs {
        let len = u16::try_from(c.len()).expect("certificate under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// The install fixture's measurement (the leaf's launch-measurement extension).
pub const INSTALL_MEASUREMENT: [u8; 48] = [0x4d; 48];
/// The install fixture's subject.
pub const INSTALL_SUBJECT: &str = "CN=frostamp fuzz TSA,O=frostamp";

struct InstallFixture {
    root: Vec<u8>,
    leaf: Vec<u8>,
    group: frostamp::threshold::keys::GroupKey,
    pin: frostamp::certs::install::IssuancePin,
}

fn install_fixture() -> &'static InstallFixture {
    static F: OnceLock<InstallFixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = include_bytes!("fixtures/install/root.der").to_vec();
        let leaf = include_bytes!("fixtures/install/leaf.der").to_vec();
        let package = frostamp::threshold::frost::keys::PublicKeyPackage::deserialize(
            include_bytes!("fixtures/install/group.bin"),
        )
        .expect("group key package");
        let ca = frostamp::certs::install::check_ca_root(&root, at(FIXTURE_NOW_SECS))
            .expect("fixture root");
        let pin =
            frostamp::certs::install::IssuancePin::new(&ca, INSTALL_SUBJECT).expect("fixture pin");
        InstallFixture {
            root,
            leaf,
            group: frostamp::threshold::keys::GroupKey::new(package),
            pin,
        }
    })
}

/// `install`: the input as an operator's certificate file (`x509::parse_certificates`,
/// PEM or DER), each split certificate as a CA root (`check_ca_root`), and the split
/// chain through `certs::install::check_chain` against the fixture's pin, group key
/// and measurement, first with no certificate installed and then with the fixture leaf
/// installed. An accepted first install has a leaf that carries the measurement and
/// is not the installed one; `Unchanged` only for the installed leaf itself.
pub fn install(data: &[u8]) -> bool {
    use frostamp::certs::install::{check_ca_root, check_chain, Expect, Installed};
    let f = install_fixture();
    let now = at(FIXTURE_NOW_SECS);
    if let Ok(certs) = frostamp::x509::parse_certificates(data) {
        for c in &certs {
            let _ = frostamp::certs::launch_measurement_of(&c.der);
        }
    }
    let chain = split_chain(data);
    let mut accepted = false;
    for c in &chain {
        if let Ok(root) = check_ca_root(c, now) {
            let _ = frostamp::certs::install::IssuancePin::new(&root, INSTALL_SUBJECT);
        }
    }
    for installed in [None, Some(f.leaf.as_slice())] {
        let group = f.group.public();
        let expect = Expect {
            pin: Some(&f.pin),
            group: &group,
            measurement: &INSTALL_MEASUREMENT,
            now,
            installed,
        };
        match check_chain(&chain, &expect) {
            Ok(kind) => {
                let leaf = chain.first().expect("an accepted chain has a leaf");
                assert_eq!(
                    frostamp::certs::launch_measurement_of(leaf).expect("leaf parses"),
                    Some(INSTALL_MEASUREMENT)
                );
                match (installed, kind) {
                    (None, Installed::First) => {}
                    (Some(i), Installed::Unchanged) => assert_eq!(i, leaf.as_slice()),
                    (Some(i), Installed::Renewal) => assert_ne!(i, leaf.as_slice()),
                    (i, k) => panic!("installed {:?}: {k:?}", i.map(<[u8]>::len)),
                }
                accepted = true;
            }
            Err(e) => {
                let _ = (e.to_string(), e.is_conflict());
            }
        }
        // Without a pin nothing installs.
        let unpinned = Expect {
            pin: None,
            ..expect
        };
        assert!(check_chain(&chain, &unpinned).is_err());
    }
    let _ = &f.root;
    accepted
}

// ---------------------------------------------------------------------------------
// csr and bundle: what `frostamp ca` parses.

struct CsrFixture {
    key: frostamp::threshold::frost::SigningKey,
}

fn csr_fixture() -> &'static CsrFixture {
    static F: OnceLock<CsrFixture> = OnceLock::new();
    F.get_or_init(|| CsrFixture {
        key: frostamp::threshold::frost::SigningKey::deserialize(include_bytes!(
            "fixtures/csr/key.bin"
        ))
        .expect("fixture signing key"),
    })
}

/// `csr`: the input as a CSR (`certs::verify_csr`), and the input as a
/// CertificationRequestInfo that the fixture key signs (`certs::assemble_csr`, then
/// `verify_csr`), so that mutations get past the signature to the extraction of the
/// measurement and the evidence bundle. A CSR that verifies has its bundle checked as
/// the CA does ([`bundle`]'s checks, with the CSR's measurement accepted).
pub fn csr(data: &[u8]) -> bool {
    use frostamp::certs::{assemble_csr, verify_csr};
    let mut verified = false;
    if let Ok(v) = verify_csr(data) {
        check_bundle(&v.evidence, Some(v.measurement));
        verified = true;
    }
    let f = csr_fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc5);
    let Ok(sig) = f.key.sign(&mut rng, data).serialize() else {
        return verified;
    };
    let Ok(sig) = <[u8; 65]>::try_from(sig) else {
        return verified;
    };
    if let Ok(csr) = assemble_csr::<frostamp::threshold::frost::Secp256K1Sha256>(data, &sig) {
        if let Ok(v) = verify_csr(&csr) {
            assert_eq!(
                v.group,
                frostamp::threshold::suite::BySuite::Secp256k1(
                    frostamp::threshold::frost::VerifyingKey::from(&f.key)
                ),
                "a CSR verified under another key than the one that signed it"
            );
            check_bundle(&v.evidence, Some(v.measurement));
            verified = true;
        }
    }
    verified
}

/// `bundle`: the input as the JSON evidence bundle (`api::bundle::EvidenceBundle`): what
/// decodes re-encodes to a fixed point, and goes through `ceremony::verify_bundle`
/// with the AMD roots, accepting the measurement the bundle names.
pub fn bundle(data: &[u8]) -> bool {
    check_bundle(data, None)
}

/// Returns whether the bundle decoded (no committed bundle verifies: their reports are
/// real ones, not bound to the bundle's key).
fn check_bundle(json: &[u8], accept: Option<[u8; 48]>) -> bool {
    use frostamp::api::bundle::EvidenceBundle;
    use frostamp::ceremony::verify_bundle;
    let Ok(b) = serde_json::from_slice::<EvidenceBundle>(json) else {
        return false;
    };
    let first = serde_json::to_string(&b).expect("a decoded bundle encodes");
    let again: EvidenceBundle = serde_json::from_str(&first).expect("its encoding decodes");
    assert_eq!(
        serde_json::to_string(&again).expect("encodes again"),
        first,
        "bundle re-encoding is not a fixed point"
    );
    let named: Option<[u8; 48]> = hex::decode(&b.measurement)
        .ok()
        .and_then(|v| v.try_into().ok());
    let accepted: Vec<[u8; 48]> = accept.or(named).into_iter().collect();
    // 2025-09-01, when the committed reports' VCEKs are valid.
    match verify_bundle(&b, amd_roots(), &accepted, at(1_756_684_800)) {
        Ok(facts) => {
            assert!(accepted.contains(&facts.measurement));
            assert_eq!(facts.n, b.nodes.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    true
}

// ---------------------------------------------------------------------------------
// node_config: PID 1's fw_cfg item.

/// `node_config`: `pid1::config::NodeConfig::parse`; an accepted configuration has a
/// valid name and distinct listen addresses, and its `Debug` prints the development
/// platform secret as `<redacted>`.
pub fn node_config(data: &[u8]) -> bool {
    match frostamp::pid1::config::NodeConfig::parse(data) {
        Ok(c) => {
            assert!(!c.name.is_empty() && c.name.len() <= 64);
            assert_ne!(c.public, c.peer);
            if c.insecure_dev_platform.is_some() {
                assert!(format!("{c:?}").contains("insecure_dev_platform: Some(\"<redacted>\")"));
            }
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

// ---------------------------------------------------------------------------------
// measurements: the measurements file `frostamp ca --measurements FILE` reads.

/// `measurements`: `cli::ops::measurements_in_json` (after the UTF-8 check the CLI's
/// file read makes); the measurements found are the same after a JSON round trip.
pub fn measurements(data: &[u8]) -> bool {
    use frostamp::cli::ops::measurements_in_json;
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(found) = measurements_in_json(text) else {
        return false;
    };
    let v: serde_json::Value = serde_json::from_str(text).expect("it parsed once");
    let again = measurements_in_json(&v.to_string()).expect("re-encoded JSON parses");
    assert_eq!(found, again);
    !found.is_empty()
}

// ---------------------------------------------------------------------------------
// roughtime and time_evidence: time-server replies.

/// One time server of the fixtures: key, version, and the nonce its seed reply answers.
#[derive(serde::Deserialize, serde::Serialize)]
pub struct RoughtimeFixture {
    /// Name.
    pub name: String,
    /// Long-term public key, hex.
    pub public_key: String,
    /// Wire version number.
    pub version: u32,
    /// The nonce (or Merkle root) its seed replies answer, hex.
    pub nonce: String,
}

fn roughtime_fixtures() -> &'static [(frostamp::time::roughtime::ServerSpec, [u8; 32])] {
    use frostamp::time::roughtime::{ServerSpec, Version};
    static F: OnceLock<Vec<(ServerSpec, [u8; 32])>> = OnceLock::new();
    F.get_or_init(|| {
        let list: Vec<RoughtimeFixture> =
            serde_json::from_str(include_str!("fixtures/roughtime.json")).expect("fixture");
        list.into_iter()
            .map(|s| {
                let key = hex::decode(&s.public_key).expect("hex");
                let nonce = hex::decode(&s.nonce).expect("hex");
                (
                    ServerSpec {
                        name: s.name,
                        public_key: key.try_into().expect("32 bytes"),
                        version: Version::from_wire_value(s.version).expect("version"),
                    },
                    nonce.try_into().expect("32 bytes"),
                )
            })
            .collect()
    })
}

/// `roughtime`: the input as a reply to each fixture server's request
/// (`time::roughtime::verify_response`: a draft-11 server from Cloudflare's vectors and
/// RFC 10049 and draft-12 servers of the test suite's kind); a verified reply has an
/// interval that does not overflow.
pub fn roughtime(data: &[u8]) -> bool {
    let mut verified = false;
    for (server, nonce) in roughtime_fixtures() {
        match frostamp::time::roughtime::verify_response(server, nonce, data) {
            Ok(v) => {
                assert!(v.midpoint_micros.checked_add(v.radius_micros).is_some());
                verified = true;
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    verified
}

/// The leaf the time-evidence seeds are for.
pub const TIME_LEAF: [u8; 32] = [0x11; 32];

/// `time_evidence`: `TimeEvidence::from_der_bounded`; what decodes re-encodes to
/// exactly the input (DER), and goes through `time::evidence::check` for the fixture
/// leaf under a policy of the fixture's RFC 10049 server (quorum 1); a claim that
/// checks names at least the quorum of servers.
pub fn time_evidence(data: &[u8]) -> bool {
    use frostamp::time::evidence::{check, root_of, TimeEvidence, TimePolicy};
    use frostamp::time::roughtime::Version;
    static P: OnceLock<TimePolicy> = OnceLock::new();
    let policy = P.get_or_init(|| TimePolicy {
        servers: roughtime_fixtures()
            .iter()
            .filter(|(s, _)| s.version == Version::Rfc)
            .map(|(s, _)| s.clone())
            .collect(),
        quorum: 1,
        agreement: Duration::from_secs(2),
    });
    let Ok(ev) = TimeEvidence::from_der_bounded(data) else {
        return false;
    };
    assert_eq!(
        ev.to_der_bytes().expect("decoded evidence encodes"),
        data,
        "TimeEvidence DER does not re-encode to its input"
    );
    let _ = root_of(&TIME_LEAF, &ev);
    match check(policy, &TIME_LEAF, &ev) {
        Ok(claim) => {
            assert!(claim.vouched.len() >= policy.quorum);
            assert!(claim.vouched.len() <= ev.replies.len());
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

// ---------------------------------------------------------------------------------
// crl, tls_csr and tls_upload: CRLs given to `frostamp verify`, the TLS certificate
// request a node returns to the operator, and the TLS chain uploaded to a node.

/// The public names of the TLS fixture's request and certificate.
pub fn tls_names() -> frostamp::certs::tls::PublicNames {
    frostamp::certs::tls::PublicNames {
        dns: vec!["tsa1.fuzz.example".into(), "localhost".into()],
        ips: vec![
            std::net::IpAddr::from([127, 0, 0, 1]),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ],
    }
}

/// The fixture node's identity (ephemeral in a node; here made from a fixed seed, so
/// that write_seeds.rs and the checks hold the same key).
pub fn tls_identity() -> &'static frostamp::net::identity::Identity {
    static I: OnceLock<frostamp::net::identity::Identity> = OnceLock::new();
    I.get_or_init(|| {
        frostamp::net::identity::Identity::generate(
            "fuzz-node",
            at(FIXTURE_NOW_SECS),
            &mut rand::rngs::StdRng::seed_from_u64(0x7151d),
        )
        .expect("fixture identity")
    })
}

/// Another node's identity (a chain accepted for [`tls_identity`] is refused for it).
pub fn tls_other_identity() -> &'static frostamp::net::identity::Identity {
    static I: OnceLock<frostamp::net::identity::Identity> = OnceLock::new();
    I.get_or_init(|| {
        frostamp::net::identity::Identity::generate(
            "fuzz-other-node",
            at(FIXTURE_NOW_SECS),
            &mut rand::rngs::StdRng::seed_from_u64(0x07e4),
        )
        .expect("other identity")
    })
}

struct TlsFixture {
    /// The development CA (`fixtures/tls/root.pem`, `root-key.pem`).
    ca: frostamp::certs::DevCa,
    root: Vec<u8>,
    /// A TLS certificate it issued for [`tls_identity`] (`fixtures/tls/leaf.der`), then
    /// the root: the path CRLs are checked on.
    path: Vec<x509_cert::Certificate>,
    /// The identity key, to sign CertificationRequestInfo inputs.
    signer: ring::signature::EcdsaKeyPair,
}

fn tls_fixture() -> &'static TlsFixture {
    static F: OnceLock<TlsFixture> = OnceLock::new();
    F.get_or_init(|| {
        let ca = frostamp::certs::DevCa::from_pem(
            include_str!("fixtures/tls/root.pem"),
            include_str!("fixtures/tls/root-key.pem"),
        )
        .expect("fixture CA");
        let root = ca.certificate_der().expect("root DER");
        let leaf = x509_cert::Certificate::from_der(include_bytes!("fixtures/tls/leaf.der"))
            .expect("fixture leaf");
        let pkcs8 = tls_identity().pkcs8_der().expect("identity key");
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .expect("ring reads the identity key");
        TlsFixture {
            path: vec![leaf, ca.certificate().clone()],
            ca,
            root,
            signer,
        }
    })
}

/// Whether `der` (a signed structure) carries an ECDSA P-256 signature of the fixture
/// CA over its exact first element, checked with ring (not the product's verifier).
fn signed_by_tls_root(der: &[u8]) -> bool {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1};
    let Ok(raw) = frostamp::x509::RawSigned::from_der(der) else {
        return false;
    };
    let (Ok(tbs), Some(sig)) = (der::Encode::to_der(&raw.tbs), raw.signature.as_bytes()) else {
        return false;
    };
    let key = tls_fixture().path[1]
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    [&ECDSA_P256_SHA256_ASN1, &ECDSA_P256_SHA384_ASN1]
        .iter()
        .any(|alg| UnparsedPublicKey::new(*alg, key).verify(&tbs, sig).is_ok())
}

/// `crl`: the input as a CRL file of `frostamp verify --crl` (`verify::revocation::
/// parse_crls`, PEM or DER), then `check_path` of the fixture path (a TLS certificate
/// of the fixture CA, then that root) at a fixed time, with all the CRLs and with each
/// one alone. A CRL that decides the leaf (good or revoked) names the leaf's issuer,
/// is signed by the fixture CA (checked with ring), is current, and says revoked
/// exactly when it lists the leaf's serial; with several CRLs the first usable one
/// decides; the anchor is never checked; `ok` means the leaf is good; the report
/// encodes as JSON. Deepest: a CRL was usable and decided the leaf.
pub fn crl(data: &[u8]) -> bool {
    use frostamp::verify::revocation::{check_path, parse_crls, Status};
    let f = tls_fixture();
    let now = at(FIXTURE_NOW_SECS);
    let Ok(crls) = parse_crls(data, "fuzz.crl") else {
        return false;
    };
    let report = check_path(&f.path, &crls, now);
    assert_eq!(report.certificates.len(), f.path.len());
    assert_eq!(report.certificates[1].status, Status::Anchor);
    let decided = &report.certificates[0].status;
    assert_eq!(report.ok, matches!(decided, Status::Good { .. }));
    serde_json::to_string(&report).expect("a revocation report encodes");
    let leaf = &f.path[0].tbs_certificate;
    let mut first_usable = None;
    for c in crls.iter().take(8) {
        let alone = check_path(&f.path, std::slice::from_ref(c), now);
        let status = &alone.certificates[0].status;
        match status {
            Status::Good { .. } | Status::Revoked { .. } => {
                let list = &c.list.tbs_cert_list;
                assert_eq!(list.issuer, leaf.issuer, "a CRL of another issuer was used");
                assert!(
                    signed_by_tls_root(&c.der),
                    "a CRL the fixture CA did not sign was used"
                );
                assert!(list.this_update.to_system_time() <= now);
                let next = list.next_update.expect("a used CRL has a nextUpdate");
                assert!(now <= next.to_system_time());
                let listed = list
                    .revoked_certificates
                    .iter()
                    .flatten()
                    .any(|r| r.serial_number == leaf.serial_number);
                assert_eq!(listed, matches!(status, Status::Revoked { .. }));
                first_usable.get_or_insert_with(|| status.clone());
            }
            Status::Unknown { why } => assert!(!why.is_empty()),
            Status::Anchor => panic!("the leaf was treated as the anchor"),
        }
    }
    if crls.len() <= 8 {
        match &first_usable {
            Some(s) => assert_eq!(s, decided, "the first usable CRL did not decide"),
            None => assert!(matches!(decided, Status::Unknown { .. })),
        }
    }
    first_usable.is_some()
}

/// DER tag-length-value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `SEQUENCE { info, ecdsa-with-SHA256, BIT STRING signature }` (a PKCS#10 request
/// around `info`, taken as is).
pub fn tls_csr_around(info: &[u8], signature: &[u8]) -> Vec<u8> {
    let alg = der_tlv(
        0x30,
        &der_tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let mut bits = vec![0];
    bits.extend_from_slice(signature);
    let mut body = info.to_vec();
    body.extend(alg);
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

/// `tls_csr`: the input as the DER request a node returns from `/admin/tls-csr`
/// (`certs::tls::parse_tls_csr`, as the operator's `ceremony::tls::request_tls_csr`
/// reads it), and the input as a CertificationRequestInfo signed with the fixture
/// identity key, so that mutations get past the proof of possession to the names. A
/// parsed request's names validate, and what the operator does next works: the
/// development CA issues for it (`DevCa::issue_tls_certificate`), the issued leaf
/// carries exactly the requested names, and a node with the requested key accepts it
/// alone and with the root (`check_tls_chain`). Deepest: a request parsed.
pub fn tls_csr(data: &[u8]) -> bool {
    let mut parsed = check_tls_csr(data);
    let f = tls_fixture();
    if let Ok(sig) = f.signer.sign(&ring::rand::SystemRandom::new(), data) {
        parsed |= check_tls_csr(&tls_csr_around(data, sig.as_ref()));
    }
    parsed
}

fn check_tls_csr(der: &[u8]) -> bool {
    use frostamp::certs::tls::{check_tls_chain, parse_tls_csr, PublicNames};
    use x509_cert::ext::pkix::SubjectAltName;
    let csr = match parse_tls_csr(der) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
    };
    csr.names
        .validate()
        .expect("a parsed request's names validate");
    let spki = der::Encode::to_der(&csr.spki).expect("the requested key encodes");
    let pin = csr.spki_sha256().expect("the requested key hashes");
    if pin == tls_identity().spki_sha256() {
        assert_eq!(spki, tls_identity().spki_der());
    }
    let f = tls_fixture();
    let now = at(FIXTURE_NOW_SECS);
    let leaf =
        f.ca.issue_tls_certificate(
            &csr,
            at(FIXTURE_NOW_SECS - 300),
            frostamp::ceremony::tls::TLS_LIFETIME,
            &mut rand::rngs::StdRng::seed_from_u64(0x15e),
        )
        .expect("the development CA issues for a parsed request");
    let cert = x509_cert::Certificate::from_der(&leaf).expect("the issued leaf decodes");
    let san = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == x509_cert::spki::ObjectIdentifier::new_unwrap("2.5.29.17"))
        .expect("the issued leaf has a subjectAltName");
    let san = SubjectAltName::from_der(san.extn_value.as_bytes()).expect("its SAN decodes");
    assert_eq!(
        PublicNames::from_san(&san),
        csr.names,
        "names not carried over"
    );
    check_tls_chain(std::slice::from_ref(&leaf), &spki, now)
        .expect("a node accepts the leaf issued for its request");
    check_tls_chain(&[leaf, f.root.clone()], &spki, now)
        .expect("a node accepts the chain issued for its request");
    true
}

/// `tls_upload`: the input split into a chain ([`split_chain`]) as uploaded to a node's
/// `/admin/tls-certificate`: `certs::tls::check_tls_chain` for the fixture identity's
/// key at a fixed time, then what the node does with an accepted chain
/// (`net::tls::PublicCert::install`, which rustls may still refuse). An accepted chain
/// has a leaf with the node's key, valid at that time, and is refused for another
/// node's key; an installed chain is served with its leaf. Deepest: installed.
pub fn tls_upload(data: &[u8]) -> bool {
    use frostamp::certs::tls::check_tls_chain;
    let chain = split_chain(data);
    let now = at(FIXTURE_NOW_SECS);
    let id = tls_identity();
    let other = check_tls_chain(&chain, tls_other_identity().spki_der(), now);
    if let Err(e) = check_tls_chain(&chain, id.spki_der(), now) {
        let _ = e.to_string();
        return false;
    }
    assert!(other.is_err(), "a chain accepted for two different keys");
    let leaf = x509_cert::Certificate::from_der(&chain[0]).expect("an accepted leaf decodes");
    let tbs = &leaf.tbs_certificate;
    assert_eq!(
        der::Encode::to_der(&tbs.subject_public_key_info).expect("SPKI encodes"),
        id.spki_der()
    );
    assert!(tbs.validity.not_before.to_system_time() <= now);
    assert!(now <= tbs.validity.not_after.to_system_time());
    let served = frostamp::net::tls::PublicCert::new(id).expect("the identity's certificate");
    match served.install(&chain) {
        Ok(()) => {
            assert_eq!(served.leaf().as_deref(), Some(chain[0].as_slice()));
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}
