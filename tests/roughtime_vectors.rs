//! draft-ietf-ntp-roughtime-11 test vectors (cloudflare/roughtime protocol/testdata) and
//! the ecosystem list.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod roughtime_support;

use frostamp::time::roughtime::*;
use roughtime_support::*;

const FILES: [&str; 3] = [
    "roughtime_ietf_draft11_001.json",
    "roughtime_ietf_draft11_010.json",
    "roughtime_ietf_draft11_100.json",
];

fn spec(v: &Vectors) -> ServerSpec {
    ServerSpec {
        name: "cloudflare-vectors".into(),
        public_key: public_key_from_seed(&v.root_seed),
        version: Version::Draft11,
    }
}

fn nonce_of(request: &[u8]) -> [u8; 32] {
    request[packet_range(request, &[b"NONC"])]
        .try_into()
        .unwrap()
}

#[test]
fn every_reply_verifies_for_its_own_request() {
    for file in FILES {
        let v = load_vectors(file);
        assert_eq!(
            v.info.split_whitespace().next(),
            Some("draft-ietf-ntp-roughtime-11")
        );
        assert_eq!(v.requests.len(), v.replies.len());
        let server = spec(&v);
        let mut first: Option<Verified> = None;
        for (i, (request, reply)) in v.requests.iter().zip(&v.replies).enumerate() {
            let nonce = nonce_of(request);
            let verified = verify_response(&server, &nonce, reply)
                .unwrap_or_else(|e| panic!("{file} reply {i}: {e}"));
            // One batch, one signed SREP: every reply says the same time.
            assert_eq!(*first.get_or_insert(verified), verified, "{file} reply {i}");
            assert_eq!(verified.radius_micros, 5_000_000, "Go test radius is 5 s");
            assert_eq!(
                verified.midpoint_micros % 1_000_000,
                0,
                "seconds on the wire"
            );
        }
        eprintln!(
            "{file}: {} replies verify, midpoint {:?}",
            v.replies.len(),
            first
        );
    }
}

#[test]
fn encode_request_reproduces_the_vector_requests_byte_for_byte() {
    for file in FILES {
        let v = load_vectors(file);
        let server = spec(&v);
        for (i, request) in v.requests.iter().enumerate() {
            assert_eq!(
                &encode_request(&nonce_of(request), &server),
                request,
                "{file} request {i}"
            );
        }
    }
}

#[test]
fn reply_does_not_verify_for_another_requests_nonce() {
    for file in [
        "roughtime_ietf_draft11_010.json",
        "roughtime_ietf_draft11_100.json",
    ] {
        let v = load_vectors(file);
        let server = spec(&v);
        let n = v.requests.len();
        for i in 0..n {
            let other = nonce_of(&v.requests[(i + 1) % n]);
            assert_eq!(
                verify_response(&server, &other, &v.replies[i]),
                Err(RoughtimeError::NonceMismatch)
            );
            // Even with NONC rewritten to the other nonce, the Merkle proof fails.
            let mut forged = v.replies[i].clone();
            let r = packet_range(&forged, &[b"NONC"]);
            forged[r].copy_from_slice(&other);
            assert_eq!(
                verify_response(&server, &other, &forged),
                Err(RoughtimeError::BadMerklePath),
                "{file} reply {i}"
            );
        }
    }
}

#[test]
fn flipped_bytes_in_signed_or_proof_regions_fail() {
    let v = load_vectors("roughtime_ietf_draft11_100.json");
    let server = spec(&v);
    let regions: [(&str, &[&[u8; 4]]); 8] = [
        ("SIG", &[b"SIG\0"]),
        ("CERT/SIG", &[b"CERT", b"SIG\0"]),
        ("CERT/DELE", &[b"CERT", b"DELE"]),
        ("PATH", &[b"PATH"]),
        ("SREP/ROOT", &[b"SREP", b"ROOT"]),
        ("SREP/MIDP", &[b"SREP", b"MIDP"]),
        ("SREP/RADI", &[b"SREP", b"RADI"]),
        ("INDX", &[b"INDX"]),
    ];
    let mut rng = XorShift(0x5eed_0001);
    for (i, (request, reply)) in v.requests.iter().zip(&v.replies).enumerate().step_by(7) {
        let nonce = nonce_of(request);
        for (name, path) in regions {
            let range = packet_range(reply, path);
            assert!(!range.is_empty(), "{name} empty in reply {i}");
            // First, last and a few random bytes of the region, each with a random bit.
            let mut positions = vec![range.start, range.end - 1];
            positions.extend((0..4).map(|_| range.start + rng.below(range.len())));
            for pos in positions {
                let mut tampered = reply.clone();
                tampered[pos] ^= 1 << rng.below(8);
                let result = verify_response(&server, &nonce, &tampered);
                assert!(
                    result.is_err(),
                    "{name} byte {pos} of reply {i} flipped still verifies"
                );
            }
        }
    }
}

#[test]
fn every_single_bit_flip_of_a_reply_fails() {
    // The 001 reply: no byte of it is unchecked (header, signatures, signed values, NONC,
    // the version, INDX with an empty PATH).
    let v = load_vectors("roughtime_ietf_draft11_001.json");
    let server = spec(&v);
    let nonce = nonce_of(&v.requests[0]);
    let reply = &v.replies[0];
    for pos in 0..reply.len() {
        for bit in 0..8 {
            let mut tampered = reply.clone();
            tampered[pos] ^= 1 << bit;
            assert!(
                verify_response(&server, &nonce, &tampered).is_err(),
                "bit {bit} of byte {pos} flipped still verifies"
            );
        }
    }
}

#[test]
fn wrong_key_and_wrong_version_fail() {
    let v = load_vectors("roughtime_ietf_draft11_010.json");
    let nonce = nonce_of(&v.requests[3]);
    let reply = &v.replies[3];
    let mut server = spec(&v);
    server.public_key = public_key_from_seed(&v.online_seed);
    assert_eq!(
        verify_response(&server, &nonce, reply),
        Err(RoughtimeError::BadDelegationSignature)
    );
    for version in [Version::Rfc, Version::Draft12] {
        let server = ServerSpec {
            version,
            ..spec(&v)
        };
        assert!(
            verify_response(&server, &nonce, reply).is_err(),
            "{version:?}"
        );
    }
}

#[test]
fn ecosystem_servers_match_ecosystem_json() {
    let text = std::fs::read_to_string(data_dir().join("ecosystem.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed: Vec<(String, [u8; 32])> = json["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["publicKeyType"], "ed25519");
            assert_eq!(s["version"], "IETF-Roughtime");
            let key = decode_base64(s["publicKey"].as_str().unwrap());
            (
                s["name"].as_str().unwrap().to_string(),
                key.try_into().unwrap(),
            )
        })
        .collect();
    let ours: Vec<(String, [u8; 32])> = ecosystem_servers()
        .into_iter()
        .map(|s| (s.name, s.public_key))
        .collect();
    assert_eq!(ours.len(), 4);
    assert_eq!(ours, listed);
    assert!(ecosystem_servers()
        .iter()
        .all(|s| s.version == Version::Rfc));
}

/// Independent base64 decoder (standard alphabet, padded) so the test does not reuse the
/// module's decoding path.
fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = bits << 6 | ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
