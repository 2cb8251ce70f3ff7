//! Test helpers, written independently of the module under test: a naive Roughtime message
//! encoder/decoder, a test server that signs with ring from seeds, vector loading, and a
//! deterministic xorshift generator.
#![allow(dead_code)]

use std::ops::Range;
use std::path::PathBuf;

use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha512};

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/assets/roughtime/cloudflare")
}

pub(crate) fn public_key_from_seed(seed: &[u8; 32]) -> [u8; 32] {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("seed");
    pair.public_key().as_ref().try_into().expect("32-byte key")
}

pub(crate) fn sign(seed: &[u8; 32], context: &[u8], value: &[u8]) -> Vec<u8> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("seed");
    let mut msg = context.to_vec();
    msg.extend_from_slice(value);
    pair.sign(&msg).as_ref().to_vec()
}

pub(crate) fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha512::new();
    for p in parts {
        hasher.update(p);
    }
    hasher.finalize()[..32].try_into().unwrap()
}

/// A vector file of cloudflare/roughtime protocol/testdata.
pub(crate) struct Vectors {
    pub(crate) info: String,
    pub(crate) root_seed: [u8; 32],
    pub(crate) online_seed: [u8; 32],
    pub(crate) requests: Vec<Vec<u8>>,
    pub(crate) replies: Vec<Vec<u8>>,
}

pub(crate) fn load_vectors(name: &str) -> Vectors {
    let text = std::fs::read_to_string(data_dir().join(name)).expect("vector file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let hex_field = |k: &str| hex::decode(json[k].as_str().expect(k)).expect("hex");
    let hex_list = |k: &str| -> Vec<Vec<u8>> {
        json[k]
            .as_array()
            .expect(k)
            .iter()
            .map(|v| hex::decode(v.as_str().expect("str")).expect("hex"))
            .collect()
    };
    Vectors {
        info: json["info"].as_str().unwrap_or_default().to_string(),
        root_seed: hex_field("root_key").try_into().expect("32"),
        online_seed: hex_field("online_key").try_into().expect("32"),
        requests: hex_list("request"),
        replies: hex_list("replies"),
    }
}

/// Tag key as sorted on the wire: first byte least significant.
pub(crate) fn key(tag: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*tag)
}

/// Naive decoder (test side): (tag, value range inside `msg`) pairs. Panics on bad input;
/// only used on known-good messages.
pub(crate) fn decode(msg: &[u8]) -> Vec<([u8; 4], Range<usize>)> {
    let u = |at: usize| u32::from_le_bytes(msg[at..at + 4].try_into().unwrap()) as usize;
    let n = u(0);
    let values_start = 8 * n;
    let mut out = Vec::new();
    for i in 0..n {
        let start = if i == 0 { 0 } else { u(4 * i) };
        let end = if i + 1 == n {
            msg.len() - values_start
        } else {
            u(4 * (i + 1))
        };
        let tag: [u8; 4] = msg[4 * (n + i)..4 * (n + i) + 4].try_into().unwrap();
        out.push((tag, values_start + start..values_start + end));
    }
    out
}

/// Byte range, inside a framed packet, of the value reached by descending `path`.
pub(crate) fn packet_range(packet: &[u8], path: &[&[u8; 4]]) -> Range<usize> {
    let mut range = 12..packet.len();
    for tag in path {
        let inner = decode(&packet[range.clone()]);
        let (_, r) = inner.iter().find(|(t, _)| t == *tag).expect("tag present");
        range = range.start + r.start..range.start + r.end;
    }
    range
}

/// Naive encoder (test side): sorts fields by tag key, writes N, offsets, tags, values.
pub(crate) fn encode(fields: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut fields = fields.to_vec();
    fields.sort_by_key(|(t, _)| key(t));
    encode_in_order(&fields)
}

/// Encoder that keeps the given order (to build malformed messages).
pub(crate) fn encode_in_order(fields: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = (fields.len() as u32).to_le_bytes().to_vec();
    let mut offset = 0u32;
    for (_, v) in &fields[..fields.len().saturating_sub(1)] {
        offset += v.len() as u32;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for (t, _) in fields {
        out.extend_from_slice(t);
    }
    for (_, v) in fields {
        out.extend_from_slice(v);
    }
    out
}

pub(crate) fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = b"ROUGHTIM".to_vec();
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
    out
}

/// Knobs for the test server's responses; defaults give a valid RFC response.
#[derive(Clone)]
pub(crate) struct ServerConfig {
    pub(crate) root_seed: [u8; 32],
    pub(crate) online_seed: [u8; 32],
    pub(crate) wire_version: u32,
    pub(crate) dele_context: Vec<u8>,
    pub(crate) srep_context: Vec<u8>,
    pub(crate) midp: u64,
    pub(crate) radi: u32,
    pub(crate) mint: u64,
    pub(crate) maxt: u64,
    pub(crate) vers: Vec<u32>,
    pub(crate) response_type: Option<u32>,
}

impl ServerConfig {
    pub(crate) fn rfc(root_seed: [u8; 32], midp: u64) -> Self {
        ServerConfig {
            root_seed,
            online_seed: [0x42; 32],
            wire_version: 1,
            dele_context: b"Roughtime v1 delegation signature\0".to_vec(),
            srep_context: b"Roughtime v1 response signature\0".to_vec(),
            midp,
            radi: 3,
            mint: midp - 3600,
            maxt: midp + 3600,
            vers: vec![1],
            response_type: Some(1),
        }
    }

    pub(crate) fn draft12(root_seed: [u8; 32], midp: u64) -> Self {
        ServerConfig {
            wire_version: 0x8000_000c,
            dele_context: b"RoughTime v1 delegation signature\0".to_vec(),
            srep_context: b"RoughTime v1 response signature\0".to_vec(),
            vers: vec![1, 0x8000_000c],
            ..Self::rfc(root_seed, midp)
        }
    }
}

/// Merkle tree over the given leaf data (RFC shape: odd levels padded with a zero hash,
/// as roughenough does); returns (root, path per leaf).
pub(crate) fn merkle(leaves: &[Vec<u8>]) -> ([u8; 32], Vec<Vec<u8>>) {
    let mut level: Vec<[u8; 32]> = leaves.iter().map(|l| h(&[&[0], l])).collect();
    let mut index: Vec<usize> = (0..leaves.len()).collect();
    let mut paths = vec![Vec::new(); leaves.len()];
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push([0; 32]);
        }
        for (leaf, idx) in index.iter_mut().enumerate() {
            paths[leaf].extend_from_slice(&level[*idx ^ 1]);
            *idx /= 2;
        }
        level = level.chunks(2).map(|p| h(&[&[1], &p[0], &p[1]])).collect();
    }
    (level[0], paths)
}

/// Responses to a batch of RFC-family request packets (leaf = packet).
pub(crate) fn respond(cfg: &ServerConfig, requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (root, paths) = merkle(requests);
    let online_pk = public_key_from_seed(&cfg.online_seed);
    let dele = encode(&[
        (*b"PUBK", online_pk.to_vec()),
        (*b"MINT", cfg.mint.to_le_bytes().to_vec()),
        (*b"MAXT", cfg.maxt.to_le_bytes().to_vec()),
    ]);
    let cert = encode(&[
        (*b"SIG\0", sign(&cfg.root_seed, &cfg.dele_context, &dele)),
        (*b"DELE", dele),
    ]);
    let vers: Vec<u8> = cfg.vers.iter().flat_map(|v| v.to_le_bytes()).collect();
    let srep = encode(&[
        (*b"VER\0", cfg.wire_version.to_le_bytes().to_vec()),
        (*b"RADI", cfg.radi.to_le_bytes().to_vec()),
        (*b"MIDP", cfg.midp.to_le_bytes().to_vec()),
        (*b"VERS", vers),
        (*b"ROOT", root.to_vec()),
    ]);
    let sig = sign(&cfg.online_seed, &cfg.srep_context, &srep);
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let body = &request[12..];
            let (_, nonce) = decode(body)
                .into_iter()
                .find(|(t, _)| t == b"NONC")
                .unwrap();
            let mut fields = vec![
                (*b"SIG\0", sig.clone()),
                (*b"NONC", body[nonce].to_vec()),
                (*b"PATH", paths[i].clone()),
                (*b"SREP", srep.clone()),
                (*b"CERT", cert.clone()),
                (*b"INDX", (i as u32).to_le_bytes().to_vec()),
            ];
            if let Some(t) = cfg.response_type {
                fields.push((*b"TYPE", t.to_le_bytes().to_vec()));
            }
            frame(&encode(&fields))
        })
        .collect()
}

/// Deterministic xorshift64* generator.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.next_u64() as u8;
        }
        out
    }
}
