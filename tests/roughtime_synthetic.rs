//! RFC and 0x8000000c responses from a test server written here (ring, from seeds), the
//! request encoding, every rejection rule, and malformed input that must never panic.
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

const ROOT_SEED: [u8; 32] = [0x11; 32];
const MIDP: u64 = 1_780_000_000;

fn spec(version: Version) -> ServerSpec {
    ServerSpec {
        name: "test".into(),
        public_key: public_key_from_seed(&ROOT_SEED),
        version,
    }
}

fn nonce(i: u8) -> [u8; 32] {
    let mut n = [0u8; 32];
    n[0] = i;
    n[31] = 0xa5;
    n
}

/// One valid response (batch of one) for `cfg`, and the nonce it answers.
fn one_response(cfg: &ServerConfig, version: Version) -> ([u8; 32], Vec<u8>) {
    let n = nonce(9);
    let responses = respond(cfg, &[encode_request(&n, &spec(version))]);
    (n, responses.into_iter().next().unwrap())
}

/// Decodes a framed response's top level, lets `edit` change the fields, re-encodes.
fn rebuild(packet: &[u8], edit: impl FnOnce(&mut Vec<([u8; 4], Vec<u8>)>)) -> Vec<u8> {
    let body = &packet[12..];
    let mut fields: Vec<([u8; 4], Vec<u8>)> = decode(body)
        .into_iter()
        .map(|(t, r)| (t, body[r].to_vec()))
        .collect();
    edit(&mut fields);
    frame(&encode(&fields))
}

fn set(fields: &mut Vec<([u8; 4], Vec<u8>)>, tag: &[u8; 4], value: Vec<u8>) {
    fields.retain(|(t, _)| t != tag);
    fields.push((*tag, value));
}

#[test]
fn request_encoding_is_canonical() {
    let n = nonce(1);
    for version in [Version::Rfc, Version::Draft12, Version::Draft11] {
        let server = spec(version);
        let request = encode_request(&n, &server);
        assert_eq!(request.len(), 1024, "{version:?}");
        assert_eq!(request, encode_request(&n, &server), "deterministic");
        assert_eq!(&request[..8], b"ROUGHTIM");
        assert_eq!(u32::from_le_bytes(request[8..12].try_into().unwrap()), 1012);
        let fields = decode(&request[12..]);
        let tags: Vec<&[u8; 4]> = fields.iter().map(|(t, _)| t).collect();
        let value = |tag: &[u8; 4]| {
            let (_, r) = fields.iter().find(|(t, _)| t == tag).unwrap();
            request[12 + r.start..12 + r.end].to_vec()
        };
        let keys: Vec<u32> = tags.iter().map(|t| key(t)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending tags");
        assert_eq!(value(b"VER\0"), version.wire_value().to_le_bytes());
        assert_eq!(value(b"NONC"), n);
        assert_eq!(value(b"SRV\0"), h(&[&[0xff], &server.public_key]));
        assert!(value(b"ZZZZ").iter().all(|&b| b == 0));
        if version == Version::Draft11 {
            assert_eq!(tags, [b"VER\0", b"SRV\0", b"NONC", b"ZZZZ"]);
            assert_eq!(value(b"ZZZZ").len(), 912);
        } else {
            assert_eq!(tags, [b"VER\0", b"SRV\0", b"NONC", b"TYPE", b"ZZZZ"]);
            assert_eq!(value(b"TYPE"), [0, 0, 0, 0]);
            assert_eq!(value(b"ZZZZ").len(), 900);
        }
    }
    assert_ne!(
        encode_request(&nonce(1), &spec(Version::Rfc)),
        encode_request(&nonce(2), &spec(Version::Rfc))
    );
    let mut other_key = spec(Version::Rfc);
    other_key.public_key = [3; 32];
    assert_ne!(
        encode_request(&n, &spec(Version::Rfc)),
        encode_request(&n, &other_key)
    );
}

#[test]
fn batches_of_rfc_and_draft12_responses_verify() {
    for (version, cfg) in [
        (Version::Rfc, ServerConfig::rfc(ROOT_SEED, MIDP)),
        (Version::Draft12, ServerConfig::draft12(ROOT_SEED, MIDP)),
    ] {
        for batch in [1usize, 2, 3, 5, 8, 13, 64] {
            let nonces: Vec<[u8; 32]> = (0..batch as u8).map(nonce).collect();
            let requests: Vec<Vec<u8>> = nonces
                .iter()
                .map(|n| encode_request(n, &spec(version)))
                .collect();
            for (i, response) in respond(&cfg, &requests).iter().enumerate() {
                let verified = verify_response(&spec(version), &nonces[i], response)
                    .unwrap_or_else(|e| panic!("{version:?} batch {batch} #{i}: {e}"));
                assert_eq!(
                    verified,
                    Verified {
                        midpoint_micros: MIDP * 1_000_000,
                        radius_micros: 3_000_000
                    }
                );
                // Answer i is not an answer for request i+1.
                let other = nonces[(i + 1) % batch];
                if batch > 1 {
                    assert!(verify_response(&spec(version), &other, response).is_err());
                }
            }
        }
    }
}

#[test]
fn versions_do_not_cross_verify() {
    let (n, rfc) = one_response(&ServerConfig::rfc(ROOT_SEED, MIDP), Version::Rfc);
    let (m, draft) = one_response(&ServerConfig::draft12(ROOT_SEED, MIDP), Version::Draft12);
    assert_eq!(
        verify_response(&spec(Version::Draft12), &n, &rfc),
        Err(RoughtimeError::BadDelegationSignature)
    );
    assert_eq!(
        verify_response(&spec(Version::Rfc), &m, &draft),
        Err(RoughtimeError::BadDelegationSignature)
    );
    assert!(verify_response(&spec(Version::Draft11), &n, &rfc).is_err());
    // RFC contexts but VER says 0x8000000c: the version check catches it.
    let cfg = ServerConfig {
        wire_version: 0x8000_000c,
        vers: vec![1, 0x8000_000c],
        ..ServerConfig::rfc(ROOT_SEED, MIDP)
    };
    let (n, response) = one_response(&cfg, Version::Rfc);
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &response),
        Err(RoughtimeError::VersionMismatch(1, 0x8000_000c))
    );
}

#[test]
fn leaf_is_the_whole_request_packet_in_rfc() {
    // A server hashing the nonce (draft-11 style) instead of the packet is rejected.
    let cfg = ServerConfig::rfc(ROOT_SEED, MIDP);
    let n = nonce(4);
    let request = encode_request(&n, &spec(Version::Rfc));
    let good = respond(&cfg, std::slice::from_ref(&request)).remove(0);
    let (nonce_root, _) = merkle(&[n.to_vec()]);
    let (packet_root, _) = merkle(&[request]);
    assert_ne!(nonce_root, packet_root);
    // Re-sign an SREP whose ROOT is the nonce leaf.
    let srep_range = packet_range(&good, &[b"SREP"]);
    let root_at = packet_range(&good, &[b"SREP", b"ROOT"]).start - srep_range.start;
    let mut srep = good[srep_range].to_vec();
    srep[root_at..root_at + 32].copy_from_slice(&nonce_root);
    let sig = sign(&cfg.online_seed, &cfg.srep_context, &srep);
    let forged = rebuild(&good, |f| {
        set(f, b"SREP", srep);
        set(f, b"SIG\0", sig);
    });
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &forged),
        Err(RoughtimeError::BadMerklePath)
    );
}

#[test]
fn each_rule_has_its_error() {
    use RoughtimeError::*;
    let base = ServerConfig::rfc(ROOT_SEED, MIDP);
    let check = |cfg: ServerConfig, expected: RoughtimeError| {
        let (n, response) = one_response(&cfg, Version::Rfc);
        assert_eq!(
            verify_response(&spec(Version::Rfc), &n, &response),
            Err(expected)
        );
    };
    check(
        ServerConfig {
            response_type: Some(0),
            ..base.clone()
        },
        WrongType(0),
    );
    check(
        ServerConfig {
            response_type: None,
            ..base.clone()
        },
        MissingTag("TYPE"),
    );
    check(
        ServerConfig {
            vers: vec![0x8000_000c],
            ..base.clone()
        },
        BadVersionList("does not contain VER"),
    );
    check(
        ServerConfig {
            vers: vec![0x8000_000c, 1],
            ..base.clone()
        },
        BadVersionList("not strictly ascending"),
    );
    check(
        ServerConfig {
            vers: vec![1, 1],
            ..base.clone()
        },
        BadVersionList("not strictly ascending"),
    );
    check(
        ServerConfig {
            vers: vec![],
            ..base.clone()
        },
        BadVersionList("length is not a positive multiple of four"),
    );
    check(
        ServerConfig {
            vers: (1..=33).collect(),
            ..base.clone()
        },
        BadVersionList("more than 32 versions"),
    );
    check(
        ServerConfig {
            radi: 0,
            ..base.clone()
        },
        ZeroRadius,
    );
    check(
        ServerConfig {
            mint: MIDP + 1,
            ..base.clone()
        },
        MidpointOutsideDelegation(MIDP, MIDP + 1, base.maxt),
    );
    check(
        ServerConfig {
            maxt: MIDP - 1,
            mint: MIDP - 10,
            ..base.clone()
        },
        MidpointOutsideDelegation(MIDP, MIDP - 10, MIDP - 1),
    );
    check(
        ServerConfig {
            mint: MIDP + 5,
            maxt: MIDP - 5,
            ..base.clone()
        },
        InvalidDelegationWindow(MIDP + 5, MIDP - 5),
    );
    check(
        ServerConfig {
            root_seed: [0x22; 32],
            ..base.clone()
        },
        BadDelegationSignature,
    );
    check(
        ServerConfig {
            midp: u64::MAX,
            mint: 0,
            maxt: u64::MAX,
            ..base.clone()
        },
        MidpointOverflow(u64::MAX),
    );
    // The top-level SIG made by a key other than the delegated one.
    let (n, good) = one_response(&base, Version::Rfc);
    let srep = good[packet_range(&good, &[b"SREP"])].to_vec();
    let wrong = rebuild(&good, |f| {
        set(f, b"SIG\0", sign(&[0x33; 32], &base.srep_context, &srep))
    });
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &wrong),
        Err(BadResponseSignature)
    );
    assert_eq!(
        verify_response(&spec(Version::Rfc), &nonce(10), &good),
        Err(NonceMismatch)
    );

    // INDX: a bit beyond an empty PATH; in a batch of two, the sibling's index.
    let one = rebuild(&good, |f| set(f, b"INDX", 1u32.to_le_bytes().to_vec()));
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &one),
        Err(IndexOutOfRange(1, 0))
    );
    let high = rebuild(&good, |f| {
        set(f, b"INDX", (1u32 << 31).to_le_bytes().to_vec())
    });
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &high),
        Err(IndexOutOfRange(1 << 31, 0))
    );
    let pair: Vec<Vec<u8>> = [nonce(1), nonce(2)]
        .iter()
        .map(|n| encode_request(n, &spec(Version::Rfc)))
        .collect();
    let answers = respond(&base, &pair);
    let swapped = rebuild(&answers[0], |f| {
        set(f, b"INDX", 1u32.to_le_bytes().to_vec())
    });
    assert_eq!(
        verify_response(&spec(Version::Rfc), &nonce(1), &swapped),
        Err(BadMerklePath)
    );
    let short = rebuild(&answers[0], |f| set(f, b"PATH", vec![0; 28]));
    assert_eq!(
        verify_response(&spec(Version::Rfc), &nonce(1), &short),
        Err(BadPathLength(28))
    );
    let no_path = rebuild(&answers[0], |f| f.retain(|(t, _)| t != b"PATH"));
    assert_eq!(
        verify_response(&spec(Version::Rfc), &nonce(1), &no_path),
        Err(MissingTag("PATH"))
    );
    let long_sig = rebuild(&good, |f| {
        let mut sig = f.iter().find(|(t, _)| t == b"SIG\0").unwrap().1.clone();
        sig.extend_from_slice(&[0; 4]);
        set(f, b"SIG\0", sig)
    });
    assert_eq!(
        verify_response(&spec(Version::Rfc), &n, &long_sig),
        Err(BadTagLength("SIG", 64, 68))
    );
}

#[test]
fn undefined_tags_are_ignored_but_framing_is_strict() {
    use RoughtimeError::*;
    let base = ServerConfig::rfc(ROOT_SEED, MIDP);
    let (n, good) = one_response(&base, Version::Rfc);
    let server = spec(Version::Rfc);
    // RFC 10049 §7: an undefined tag, top level, still verifies.
    let greased = rebuild(&good, |f| f.push((*b"GREZ", vec![0xaa; 8])));
    assert!(verify_response(&server, &n, &greased).is_ok());
    // ... and inside the signed SREP too (RFC 10049 §9.2 puts new tags there).
    let srep = &good[packet_range(&good, &[b"SREP"])];
    let mut srep_fields: Vec<([u8; 4], Vec<u8>)> = decode(srep)
        .into_iter()
        .map(|(t, r)| (t, srep[r].to_vec()))
        .collect();
    srep_fields.push((*b"GREZ", vec![0xbb; 12]));
    let srep = encode(&srep_fields);
    let sig = sign(&base.online_seed, &base.srep_context, &srep);
    let greased = rebuild(&good, |f| {
        set(f, b"SREP", srep);
        set(f, b"SIG\0", sig);
    });
    assert!(verify_response(&server, &n, &greased).is_ok());

    // Framing.
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 4]);
    assert_eq!(
        verify_response(&server, &n, &trailing),
        Err(FrameLength(good.len() - 12, good.len() - 8))
    );
    let mut short_declared = good.clone();
    short_declared[8..12].copy_from_slice(&((good.len() - 16) as u32).to_le_bytes());
    assert!(matches!(
        verify_response(&server, &n, &short_declared),
        Err(FrameLength(..))
    ));
    let mut magic = good.clone();
    magic[0] = b'r';
    assert_eq!(verify_response(&server, &n, &magic), Err(BadMagic));
    let mut oversize = good.clone();
    oversize.resize(1025, 0);
    assert_eq!(verify_response(&server, &n, &oversize), Err(Oversize(1025)));
    for len in 0..good.len() {
        assert!(
            verify_response(&server, &n, &good[..len]).is_err(),
            "truncated to {len}"
        );
    }

    // Header rules, on a message whose top level is rebuilt in a chosen order.
    let body = &good[12..];
    let fields: Vec<([u8; 4], Vec<u8>)> = decode(body)
        .into_iter()
        .map(|(t, r)| (t, body[r].to_vec()))
        .collect();
    let mut swapped = fields.clone();
    swapped.swap(1, 2);
    assert!(matches!(
        verify_response(&server, &n, &frame(&encode_in_order(&swapped))),
        Err(TagOrder(_))
    ));
    let mut duplicated = fields.clone();
    duplicated.insert(1, duplicated[1].clone());
    assert!(matches!(
        verify_response(&server, &n, &frame(&encode_in_order(&duplicated))),
        Err(DuplicateTag(_))
    ));

    let msg = encode_in_order(&fields);
    let with = |at: usize, value: u32| {
        let mut m = msg.clone();
        m[at..at + 4].copy_from_slice(&value.to_le_bytes());
        frame(&m)
    };
    let first_offset = u32::from_le_bytes(msg[4..8].try_into().unwrap());
    assert_eq!(
        verify_response(&server, &n, &with(4, first_offset + 2)),
        Err(MisalignedOffset(first_offset + 2))
    );
    assert_eq!(
        verify_response(&server, &n, &with(8, first_offset - 4)),
        Err(OffsetOrder(first_offset - 4))
    );
    let values_len = msg.len() - 8 * fields.len();
    assert_eq!(
        verify_response(&server, &n, &with(24, values_len as u32 + 4)),
        Err(OffsetOutOfRange(values_len as u32 + 4))
    );
    assert_eq!(verify_response(&server, &n, &with(0, 0)), Err(EmptyMessage));
    assert_eq!(
        verify_response(&server, &n, &with(0, 17)),
        Err(TooManyTags(17))
    );
    assert_eq!(
        verify_response(&server, &n, &with(0, u32::MAX)),
        Err(TooManyTags(u32::MAX))
    );
    assert!(matches!(
        verify_response(&server, &n, &with(0, 16)),
        Err(Truncated(_)
            | MisalignedOffset(_)
            | OffsetOrder(_)
            | OffsetOutOfRange(_)
            | TagOrder(_)
            | DuplicateTag(_))
    ));
    assert_eq!(
        verify_response(&server, &n, &frame(&msg[..msg.len() - 2])),
        Err(MisalignedMessage(msg.len() - 2))
    );
}

#[test]
fn malformed_input_never_panics() {
    let base = ServerConfig::rfc(ROOT_SEED, MIDP);
    let pair: Vec<[u8; 32]> = vec![nonce(1), nonce(2), nonce(3)];
    let requests: Vec<Vec<u8>> = pair
        .iter()
        .map(|n| encode_request(n, &spec(Version::Rfc)))
        .collect();
    let good = respond(&base, &requests).remove(2);
    let n = pair[2];
    let server = spec(Version::Rfc);
    let draft11 = spec(Version::Draft11);
    let mut rng = XorShift(0x00c0_ffee_d00d_f00d);
    let mut accepted = 0;

    for round in 0..10_000 {
        let input: Vec<u8> = match round % 5 {
            // Pure noise, any length up to a little over the limit.
            0 => (0..rng.below(1100)).map(|_| rng.next_u64() as u8).collect(),
            // Noise behind a valid frame header.
            1 => {
                let len = rng.below(1000) & !3;
                let mut m = b"ROUGHTIM".to_vec();
                m.extend_from_slice(&(len as u32).to_le_bytes());
                m.extend((0..len).map(|_| rng.next_u64() as u8));
                m
            }
            // A valid response with a few bytes replaced.
            2 => {
                let mut m = good.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(m.len());
                    m[at] = rng.next_u64() as u8;
                }
                m
            }
            // A valid response with a huge or odd count/offset somewhere in a header.
            3 => {
                let mut m = good.clone();
                let at = (12 + 4 * rng.below(14)).min(m.len() - 4);
                let value = [u32::MAX, 0x8000_0000, 17, 16, 0, 1, 3, 1 << 20][rng.below(8)];
                m[at..at + 4].copy_from_slice(&value.to_le_bytes());
                m
            }
            // Truncated, zero-filled or extended copies.
            _ => {
                let mut m = good.clone();
                match rng.below(3) {
                    0 => m.truncate(rng.below(m.len())),
                    1 => m.iter_mut().skip(12).for_each(|b| *b = 0),
                    _ => m.extend((0..rng.below(64)).map(|_| rng.next_u64() as u8)),
                }
                m
            }
        };
        if verify_response(&server, &n, &input).is_ok() {
            assert_eq!(input, good, "round {round}: a changed response verified");
            accepted += 1;
        }
        let _ = verify_response(&draft11, &n, &input);
    }
    eprintln!("10000 malformed inputs: none panicked, {accepted} unchanged copies accepted");
}

#[test]
fn malformed_signed_submessages_never_panic() {
    // Random SREP / DELE bytes carrying valid signatures reach the inner parsers.
    let cfg = ServerConfig::rfc(ROOT_SEED, MIDP);
    let (n, good) = one_response(&cfg, Version::Rfc);
    let server = spec(Version::Rfc);
    let mut rng = XorShift(42);
    for round in 0..500 {
        let len = rng.below(160) & !3;
        let mut junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if len >= 4 && round % 2 == 0 {
            junk[..4].copy_from_slice(&(1 + rng.below(6) as u32).to_le_bytes());
        }
        let srep_sig = sign(&cfg.online_seed, &cfg.srep_context, &junk);
        let bad_srep = rebuild(&good, |f| {
            set(f, b"SREP", junk.clone());
            set(f, b"SIG\0", srep_sig);
        });
        assert!(verify_response(&server, &n, &bad_srep).is_err());
        let dele_sig = sign(&ROOT_SEED, &cfg.dele_context, &junk);
        let cert = encode(&[(*b"SIG\0", dele_sig), (*b"DELE", junk.clone())]);
        let bad_dele = rebuild(&good, |f| set(f, b"CERT", cert));
        assert!(verify_response(&server, &n, &bad_dele).is_err());
        let bad_cert = rebuild(&good, |f| set(f, b"CERT", junk.clone()));
        assert!(verify_response(&server, &n, &bad_cert).is_err());
    }
}

/// A UDP server on 127.0.0.1 that answers each datagram with `answer(request)`, from
/// `reply_from` (the listening socket itself when None).
async fn udp_server(
    answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    reply_from: Option<tokio::net::UdpSocket>,
) -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(bytes) = answer(&buf[..n]) {
                let from = reply_from.as_ref().unwrap_or(&socket);
                let _ = from.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn query_exchanges_one_datagram_with_that_address() {
    use std::time::Duration;
    let timeout = Duration::from_millis(300);
    for (version, cfg) in [
        (Version::Rfc, ServerConfig::rfc(ROOT_SEED, MIDP)),
        (Version::Draft12, ServerConfig::draft12(ROOT_SEED, MIDP)),
    ] {
        let addr = udp_server(
            move |req| Some(respond(&cfg, &[req.to_vec()]).remove(0)),
            None,
        )
        .await;
        let n = nonce(77);
        let (bytes, rtt) = query(addr, &spec(version), &n, timeout).await.unwrap();
        assert!(rtt < timeout);
        let verified = verify_response(&spec(version), &n, &bytes).unwrap();
        assert_eq!(verified.midpoint_micros, MIDP * 1_000_000);
    }

    // The server receives exactly the canonical request.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = udp_server(
        move |req| {
            log.lock().unwrap().push(req.to_vec());
            None
        },
        None,
    )
    .await;
    let n = nonce(78);
    assert!(matches!(
        query(addr, &spec(Version::Rfc), &n, timeout).await,
        Err(QueryError::Timeout(_))
    ));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![encode_request(&n, &spec(Version::Rfc))]
    );

    // Too large a datagram.
    let addr = udp_server(|_| Some(vec![0u8; 1100]), None).await;
    assert!(matches!(
        query(addr, &spec(Version::Rfc), &n, timeout).await,
        Err(QueryError::ResponseTooLarge)
    ));

    // An answer from another address is not taken.
    let other = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cfg = ServerConfig::rfc(ROOT_SEED, MIDP);
    let addr = udp_server(
        move |req| Some(respond(&cfg, &[req.to_vec()]).remove(0)),
        Some(other),
    )
    .await;
    assert!(matches!(
        query(addr, &spec(Version::Rfc), &n, timeout).await,
        Err(QueryError::Timeout(_))
    ));
}
