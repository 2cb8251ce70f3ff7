//! Path building and signature verification against real certificates from
//! `tests/data/assets` (copies of `../shared/assets`; see its `PROVENANCE.md` sections 1 and 4).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, SystemTime};

mod common;

use cms::cert::CertificateChoices;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{DateTime, Decode, Encode};
use frostamp::x509::chain::{
    build_chain, build_chain_der, check_timestamping_leaf, ChainError, ChainOptions,
};
use frostamp::x509::sig::{verify_signature, SignatureError};
use x509_cert::Certificate;

const ASSETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/assets");

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{ASSETS}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Loads a PEM bundle. The body lines are re-wrapped at 64 columns first:
/// `sigstore.mock/ts_chain.pem` has each certificate on one long line, which the strict
/// RFC 7468 parser in `der`/`pem-rfc7468` refuses.
fn pem_chain(rel: &str) -> Vec<Certificate> {
    let text = String::from_utf8(read(rel)).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----") || line.len() <= 64 {
            out.push_str(line);
            out.push('\n');
        } else {
            for chunk in line.as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(chunk).unwrap());
                out.push('\n');
            }
        }
    }
    Certificate::load_pem_chain(out.as_bytes()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn der_cert(rel: &str) -> Certificate {
    Certificate::from_der(&read(rel)).unwrap()
}

fn utc(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> SystemTime {
    DateTime::new(y, mo, d, h, mi, s).unwrap().to_system_time()
}

fn opts(at: SystemTime) -> ChainOptions {
    ChainOptions::at(at)
}

fn subject(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

fn midpoint(c: &Certificate) -> SystemTime {
    let v = &c.tbs_certificate.validity;
    let nb = v.not_before.to_system_time();
    let na = v.not_after.to_system_time();
    nb + na.duration_since(nb).unwrap() / 2
}

fn after_not_after(c: &Certificate) -> SystemTime {
    c.tbs_certificate.validity.not_after.to_system_time() + Duration::from_secs(1)
}

/// Flips the last byte of the DER, i.e. the last byte of the signature value.
fn flip_signature(c: &Certificate) -> Certificate {
    let mut der = c.to_der().unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    Certificate::from_der(&der).unwrap()
}

/// The three RFC 3161 PEM chains (leaf first, root last) with a time inside their validity
/// (the genTime of the corresponding fixture token).
fn tsa_chains() -> Vec<(&'static str, Vec<Certificate>, SystemTime)> {
    vec![
        (
            "sigstage",
            pem_chain("rfc3161/rfc3161-client/sigstage/ts_chain.pem"),
            utc(2025, 5, 9, 11, 58, 55),
        ),
        (
            "test_tsa",
            pem_chain("rfc3161/rfc3161-client/test_tsa/ts_chain.pem"),
            utc(2024, 10, 8, 12, 0, 0),
        ),
        (
            "sigstore.mock",
            pem_chain("rfc3161/rfc3161-client/sigstore.mock/ts_chain.pem"),
            utc(2023, 2, 1, 0, 0, 0),
        ),
    ]
}

/// Certificates and the signer's certificate (found by SignerInfo.sid, RFC 5652 §5.3)
/// from a TimeStampResp (RFC 3161 §2.4.2).
fn token_certs(rel: &str) -> (Vec<Certificate>, Certificate) {
    let bytes = read(rel);
    let resp = x509_tsp::TimeStampResp::from_der(&bytes).unwrap();
    let token = resp.time_stamp_token.unwrap();
    let sd: SignedData = token.content.decode_as().unwrap();
    let certs: Vec<Certificate> = sd
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.clone()),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let si = sd.signer_infos.0.iter().next().unwrap();
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        panic!("{rel}: expected issuerAndSerialNumber sid");
    };
    let signer = certs
        .iter()
        .find(|c| {
            c.tbs_certificate.issuer == ias.issuer
                && c.tbs_certificate.serial_number == ias.serial_number
        })
        .cloned()
        .unwrap();
    (certs, signer)
}

#[test]
fn tsa_chains_build_at_token_time() {
    for (name, certs, at) in tsa_chains() {
        let leaf = &certs[0];
        let root = certs.last().unwrap();
        let chain = build_chain(leaf, &certs[1..], std::slice::from_ref(root), &opts(at))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(chain, certs, "{name}: path = the PEM order");
        // Same result through the exact-bytes entry point, with the pool reversed.
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
        let pool: Vec<&[u8]> = ders[1..].iter().rev().map(Vec::as_slice).collect();
        let chain_der =
            build_chain_der(&ders[0], &pool, &[ders.last().unwrap()], &opts(at)).unwrap();
        assert_eq!(chain_der, certs, "{name}");
    }
}

#[test]
fn tsa_chains_expire_after_not_after() {
    for (name, certs, _) in tsa_chains() {
        let leaf = &certs[0];
        let root = certs.last().unwrap();
        let at = after_not_after(leaf);
        let err =
            build_chain(leaf, &certs[1..], std::slice::from_ref(root), &opts(at)).unwrap_err();
        match err {
            ChainError::Expired {
                subject: s,
                not_after,
            } => {
                assert_eq!(s, subject(leaf), "{name}");
                assert_eq!(
                    not_after,
                    leaf.tbs_certificate.validity.not_after.to_date_time()
                );
            }
            other => panic!("{name}: expected Expired, got {other}"),
        }
        let before =
            leaf.tbs_certificate.validity.not_before.to_system_time() - Duration::from_secs(1);
        assert!(
            matches!(
                build_chain(leaf, &certs[1..], std::slice::from_ref(root), &opts(before)),
                Err(ChainError::NotYetValid { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn tsa_chains_with_flipped_signature_byte_fail() {
    for (name, certs, at) in tsa_chains() {
        let root = certs.last().unwrap();
        let bad_leaf = flip_signature(&certs[0]);
        let err = build_chain(
            &bad_leaf,
            &certs[1..],
            std::slice::from_ref(root),
            &opts(at),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ChainError::BadSignature { subject: s, source: SignatureError::Invalid, .. }
                if *s == subject(&certs[0])),
            "{name}: {err}"
        );
    }
    // A tampered intermediate (test_tsa has one) is blamed by name.
    let certs = pem_chain("rfc3161/rfc3161-client/test_tsa/ts_chain.pem");
    let bad_int = flip_signature(&certs[1]);
    let err = build_chain(
        &certs[0],
        &[bad_int],
        &[certs[2].clone()],
        &opts(utc(2024, 10, 8, 0, 0, 0)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ChainError::BadSignature { subject: s, .. } if s == "CN=Test TSA Intermediate,O=local"),
        "{err}"
    );
}

#[test]
fn tsa_chains_with_foreign_anchor_have_no_path() {
    let chains = tsa_chains();
    for (i, (name, certs, at)) in chains.iter().enumerate() {
        let (other_name, other, _) = &chains[(i + 1) % chains.len()];
        let foreign_root = other.last().unwrap();
        let err = build_chain(
            &certs[0],
            &certs[1..],
            std::slice::from_ref(foreign_root),
            &opts(*at),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ChainError::NoPathToAnchor {
                leaf_subject: subject(&certs[0])
            },
            "{name} anchored at {other_name}"
        );
    }
}

#[test]
fn tsa_leaves_pass_the_rfc3161_eku_check_and_cas_do_not() {
    for (name, certs, _) in tsa_chains() {
        check_timestamping_leaf(&certs[0]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let sigstage = pem_chain("rfc3161/rfc3161-client/sigstage/ts_chain.pem");
    assert!(matches!(
        check_timestamping_leaf(&sigstage[1]),
        Err(ChainError::MissingTimestampingEku { .. })
    ));
    // The test TSA intermediate carries id-kp-timeStamping, but not critical.
    let test_tsa = pem_chain("rfc3161/rfc3161-client/test_tsa/ts_chain.pem");
    assert_eq!(
        check_timestamping_leaf(&test_tsa[1]),
        Err(ChainError::EkuNotCritical {
            subject: "CN=Test TSA Intermediate,O=local".into()
        })
    );
    assert!(matches!(
        check_timestamping_leaf(&test_tsa[2]),
        Err(ChainError::MissingTimestampingEku { .. })
    ));
    let mock = pem_chain("rfc3161/rfc3161-client/sigstore.mock/ts_chain.pem");
    assert!(matches!(
        check_timestamping_leaf(&mock[1]),
        Err(ChainError::MissingTimestampingEku { .. })
    ));
    let vcek = der_cert("sev-snp-reports/virtee-sev/vcek_milan.der");
    assert!(matches!(
        check_timestamping_leaf(&vcek),
        Err(ChainError::MissingTimestampingEku { .. })
    ));
    let freetsa = pem_chain("rfc3161/rfc3161ng-certs/freetsa.crt").remove(0);
    assert_eq!(check_timestamping_leaf(&freetsa), Ok(()));
}

#[test]
fn injected_certificates_do_not_break_or_fake_a_path() {
    let (bag, signer) = token_certs("rfc3161/rfc3161-client/test_tsa/response-injected-certs.tsr");
    let chain_pem = pem_chain("rfc3161/rfc3161-client/test_tsa/ts_chain.pem");
    assert_eq!(signer, chain_pem[0], "sid identifies the real leaf");
    let at = opts(utc(2024, 10, 8, 12, 0, 0));
    let root = &chain_pem[2];
    let mut pool = bag.clone();
    pool.push(chain_pem[1].clone());
    let chain = build_chain(&signer, &pool, std::slice::from_ref(root), &at).unwrap();
    assert_eq!(chain, chain_pem);
    // The injected look-alikes never chain to the root: "CN=Spoofed TSA" has no issuer
    // at all; the self-issued fake "Test TSA Timestamping" finds the real leaf as the only
    // name-matching issuer, whose key does not verify it.
    let fakes: Vec<&Certificate> = bag.iter().filter(|c| **c != signer).collect();
    assert_eq!(fakes.len(), 2);
    for fake in fakes {
        let err = build_chain(fake, &pool, std::slice::from_ref(root), &at).unwrap_err();
        if subject(fake) == "CN=Spoofed TSA" {
            assert!(matches!(err, ChainError::NoPathToAnchor { .. }), "{err}");
        } else {
            assert!(
                matches!(
                    err,
                    ChainError::BadSignature {
                        source: SignatureError::Invalid,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}

#[test]
fn identrust_token_chain_is_valid_at_gentime_and_expired_later() {
    let (bag, signer) = token_certs("rfc3161/rfc3161-client/identrust/issue-104.tsr");
    assert_eq!(
        subject(&signer),
        "CN=TrustID Timestamp Authority,O=IdenTrust,C=US"
    );
    // (The bag is not in path order on the wire; `der` re-sorts SET OF on decode anyway.)
    assert_eq!(bag.len(), 2);
    let root = der_cert("rfc3161/rfc3161-client/identrust/ts_root.der");
    let chain_at = |at| build_chain(&signer, &bag, std::slice::from_ref(&root), &opts(at));
    let chain = chain_at(utc(2025, 3, 11, 8, 52, 8)).unwrap();
    assert_eq!(
        chain.iter().map(subject).collect::<Vec<_>>(),
        [
            "CN=TrustID Timestamp Authority,O=IdenTrust,C=US",
            "CN=TrustID Timestamping CA 3,O=IdenTrust,C=US",
            "CN=IdenTrust Commercial Root CA 1,O=IdenTrust,C=US"
        ]
    );
    check_timestamping_leaf(&signer).unwrap();
    let err = chain_at(utc(2026, 2, 1, 0, 0, 0)).unwrap_err();
    assert!(
        matches!(err, ChainError::Expired { ref subject, .. } if subject.starts_with("CN=TrustID Timestamp Authority")),
        "{err}"
    );
    // The root alone is its own chain, and its self-signature (RSA PKCS#1 v1.5 SHA-256) verifies.
    assert_eq!(
        build_chain(
            &root,
            &[],
            std::slice::from_ref(&root),
            &opts(utc(2025, 1, 1, 0, 0, 0))
        )
        .unwrap(),
        vec![root.clone()]
    );
    let tbs = root.tbs_certificate.to_der().unwrap();
    let spki = &root.tbs_certificate.subject_public_key_info;
    let sig = root.signature.as_bytes().unwrap();
    assert_eq!(
        verify_signature(&root.signature_algorithm, None, spki, &tbs, sig),
        Ok(())
    );
    assert_eq!(
        verify_signature(&root.signature_algorithm, None, spki, &tbs[1..], sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn freetsa_rsa_sha512_chain() {
    let leaf = pem_chain("rfc3161/rfc3161ng-certs/freetsa.crt").remove(0);
    let root = pem_chain("rfc3161/rfc3161ng-certs/freetsa_cacert.pem").remove(0);
    let chain = build_chain(
        &leaf,
        &[],
        std::slice::from_ref(&root),
        &opts(utc(2020, 1, 1, 0, 0, 0)),
    )
    .unwrap();
    assert_eq!(chain, vec![leaf.clone(), root.clone()]);
    assert!(matches!(
        build_chain(&leaf, &[], &[root], &opts(after_not_after(&leaf))),
        Err(ChainError::Expired { .. })
    ));
}

const GENERATIONS: [&str; 3] = ["milan", "genoa", "turin"];

fn ark_ask(gen: &str) -> (Certificate, Certificate) {
    let ark = pem_chain(&format!("amd-root-certs/virtee-sev/{gen}/ark.pem")).remove(0);
    let ask = pem_chain(&format!("amd-root-certs/virtee-sev/{gen}/ask.pem")).remove(0);
    (ark, ask)
}

#[test]
fn amd_ask_chains_to_ark_with_rsa_pss_sha384() {
    for gen in GENERATIONS {
        let (ark, ask) = ark_ask(gen);
        let chain = build_chain(&ask, &[], std::slice::from_ref(&ark), &opts(midpoint(&ask)))
            .unwrap_or_else(|e| panic!("{gen}: {e}"));
        assert_eq!(chain, vec![ask.clone(), ark.clone()], "{gen}");
        // The ARK's self-signature verifies too (RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48).
        let tbs = ark.tbs_certificate.to_der().unwrap();
        let sig = ark.signature.as_bytes().unwrap();
        let spki = &ark.tbs_certificate.subject_public_key_info;
        assert_eq!(
            verify_signature(&ark.signature_algorithm, None, spki, &tbs, sig),
            Ok(()),
            "{gen}"
        );
        // A Milan ASK does not chain to another generation's ARK.
        let (other_ark, _) = ark_ask(if gen == "milan" { "genoa" } else { "milan" });
        assert!(matches!(
            build_chain(&ask, &[], &[other_ark], &opts(midpoint(&ask))),
            Err(ChainError::NoPathToAnchor { .. })
        ));
    }
}

#[test]
fn amd_vceks_chain_via_ask_to_ark() {
    let cases = [
        ("milan", "sev-snp-reports/virtee-sev/vcek_milan.der"),
        ("milan", "sev-snp-reports/go-sev-guest/vcek.der"),
        ("milan", "sev-snp-reports/trustee/snp/test-vcek.der"),
        (
            "milan",
            "sev-snp-reports/derived/oak_milan_oc_release_vcek.der",
        ),
        ("genoa", "sev-snp-reports/derived/oak_genoa_oc_vcek.der"),
        (
            "genoa",
            "sev-snp-reports/derived/trustee_e2e_genoa_vcek.der",
        ),
        ("turin", "sev-snp-reports/virtee-sev/vcek_turin.der"),
        ("turin", "sev-snp-reports/derived/oak_turin_oc_vcek.der"),
    ];
    for (gen, path) in cases {
        let (ark, ask) = ark_ask(gen);
        let vcek = der_cert(path);
        let at = opts(midpoint(&vcek));
        // Pool in "wrong" order, with the ARK duplicated into it.
        let chain = build_chain(
            &vcek,
            &[ark.clone(), ask.clone()],
            std::slice::from_ref(&ark),
            &at,
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(chain, vec![vcek, ask, ark], "{path}");
    }
}

#[test]
fn amd_vlek_chain_is_time_aware() {
    let asvk_ark = pem_chain("sev-snp-reports/go-sev-guest/milan_asvk_ark.pem");
    let vlek = der_cert("sev-snp-reports/trustee/snp/test-vlek.der");
    let anchors = [asvk_ark[1].clone()];
    let chain = build_chain(&vlek, &asvk_ark, &anchors, &opts(utc(2025, 6, 1, 0, 0, 0))).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(
        subject(&chain[1]).split(',').next(),
        Some("CN=SEV-VLEK-Milan")
    );
    let err = build_chain(&vlek, &asvk_ark, &anchors, &opts(utc(2026, 1, 1, 0, 0, 0))).unwrap_err();
    assert!(
        matches!(err, ChainError::Expired { ref subject, .. } if subject.starts_with("CN=SEV-VLEK,")),
        "{err}"
    );
    // A VCEK does not chain through the ASVK (different issuer name).
    let vcek = der_cert("sev-snp-reports/virtee-sev/vcek_milan.der");
    assert!(matches!(
        build_chain(&vcek, &asvk_ark, &anchors, &opts(utc(2025, 6, 1, 0, 0, 0))),
        Err(ChainError::NoPathToAnchor { .. })
    ));
}

#[test]
fn amd_altered_vceks_fail() {
    let (ark, ask) = ark_ask("milan");
    let ask_der = ask.to_der().unwrap();
    let ark_der = ark.to_der().unwrap();
    let at = opts(utc(2025, 6, 1, 0, 0, 0));
    // virtee/sev `milan_chain_invalid`: DER byte 40 ^= 0xff.
    let mut der = read("sev-snp-reports/virtee-sev/vcek_milan.der");
    der[40] ^= 0xff;
    // It lands in the SHA-384 OID of tbsCertificate.signature (RSASSA-PSS params), so the
    // RFC 5280 §4.1.1.2 consistency check reports it before any signature is tried.
    let err = build_chain_der(&der, &[&ask_der], &[&ark_der], &at).unwrap_err();
    assert!(
        matches!(&err, ChainError::Malformed(m) if m.contains("4.1.1.2")),
        "{err}"
    );
    // trustee's deliberately altered VCEKs parse but their signatures do not verify.
    for path in [
        "sev-snp-reports/trustee/snp/test-vcek-invalid-legacy.der",
        "sev-snp-reports/trustee/snp/test-vcek-invalid-new.der",
    ] {
        let der = read(path);
        let err = build_chain_der(&der, &[&ask_der], &[&ark_der], &at).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::BadSignature {
                    source: SignatureError::Invalid,
                    ..
                }
            ),
            "{path}: {err}"
        );
    }
}

#[test]
fn real_certificates_reencode_byte_exactly() {
    // build_chain() re-encodes decoded certificates to get the signed TBS bytes; that is
    // only sound if decode -> encode is the identity, which holds for every real fixture.
    let mut ders: Vec<Vec<u8>> = Vec::new();
    for rel in [
        "rfc3161/rfc3161-client/identrust/ts_root.der",
        "sev-snp-reports/virtee-sev/vcek_milan.der",
        "sev-snp-reports/virtee-sev/vcek_turin.der",
        "sev-snp-reports/trustee/snp/test-vlek.der",
    ] {
        ders.push(read(rel));
    }
    for gen in GENERATIONS {
        for which in ["ark", "ask"] {
            let pem = read(&format!("amd-root-certs/virtee-sev/{gen}/{which}.pem"));
            let (label, der) = der::pem::decode_vec(&pem).unwrap();
            assert_eq!(label, "CERTIFICATE");
            ders.push(der);
        }
    }
    assert_eq!(ders.len(), 10);
    for der in ders {
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(cert.to_der().unwrap(), der, "{}", subject(&cert));
    }
}

#[test]
fn every_single_byte_corruption_of_a_real_leaf_is_rejected_without_panic() {
    let certs = pem_chain("rfc3161/rfc3161-client/sigstore.mock/ts_chain.pem");
    let leaf = certs[0].to_der().unwrap();
    let root = certs[1].to_der().unwrap();
    let at = opts(utc(2023, 2, 1, 0, 0, 0));
    assert!(build_chain_der(&leaf, &[], &[&root], &at).is_ok());
    for pos in 0..leaf.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = leaf.clone();
            bad[pos] ^= mask;
            // The TBS (signed), the outer algorithm (must equal the signed copy) and the
            // signature value are all covered, so no flip may be accepted.
            assert!(
                build_chain_der(&bad, &[], &[&root], &at).is_err(),
                "byte {pos} ^ {mask:#x} accepted"
            );
        }
    }
}

/// An Ed25519 epoch's TSA certificate (subject key id-Ed25519, RFC 8410; issued by the
/// development CA) chains to the CA and passes the RFC 3161 leaf profile; the twins: a
/// flipped signature byte and a foreign anchor give no path.
#[test]
fn ed25519_epoch_tsa_certificate_chains_and_its_twins_do_not() {
    let tsa = common::DevTsa::new()
        .measurement(Some([0x42; 48]))
        .build::<frostamp::threshold::suite::Ed25519Sha512>(&mut rand::thread_rng())
        .unwrap();
    let leaf = Certificate::from_der(&tsa.tsa_cert).unwrap();
    assert_eq!(
        leaf.tbs_certificate.subject_public_key_info.algorithm.oid,
        frostamp::oid::std_oids::ED25519
    );
    assert!(leaf
        .tbs_certificate
        .subject_public_key_info
        .algorithm
        .parameters
        .is_none());
    let root = tsa.ca.certificate().clone();
    let at = midpoint(&leaf);
    let path = build_chain(&leaf, &[], std::slice::from_ref(&root), &opts(at)).unwrap();
    assert_eq!(path.len(), 2);
    check_timestamping_leaf(&leaf).unwrap();
    assert!(build_chain(
        &flip_signature(&leaf),
        &[],
        std::slice::from_ref(&root),
        &opts(at)
    )
    .is_err());
    let other = common::dev_ca("CN=other root", at - Duration::from_secs(3600));
    assert!(build_chain(&leaf, &[], &[other.certificate().clone()], &opts(at)).is_err());
}
