//! Roughtime, client side: canonical requests, strict verification of responses, and one
//! UDP exchange.
//!
//! Three wire versions are spoken. Each request offers exactly one version, the one of the
//! [`ServerSpec`], and a response must answer in that version.
//!
//! | | [`Version::Rfc`] `0x00000001` | [`Version::Draft12`] `0x8000000c` | [`Version::Draft11`] `0x8000000b` |
//! |---|---|---|---|
//! | request tags | VER SRV NONC TYPE ZZZZ | VER SRV NONC TYPE ZZZZ | VER SRV NONC ZZZZ |
//! | response tags | SIG NONC TYPE PATH SREP CERT INDX | same as RFC | SIG VER NONC PATH SREP CERT INDX |
//! | SREP tags | VER RADI MIDP VERS ROOT | same as RFC | RADI MIDP ROOT |
//! | Merkle leaf | the whole request packet, "ROUGHTIM" header included | same as RFC | the 32-byte nonce |
//! | MIDP, RADI, MINT, MAXT | seconds | seconds | seconds |
//! | DELE context | `Roughtime v1 delegation signature\0` | `RoughTime v1 delegation signature\0` | `RoughTime v1 delegation signature--\0` |
//! | SREP context | `Roughtime v1 response signature\0` | `RoughTime v1 response signature\0` | `RoughTime v1 response signature\0` |
//!
//! Version 1 is RFC 10049 (the "Roughtime" context strings are those of roughenough 2.2,
//! checked against its server). `0x8000000c` is the test number the drafts used from
//! draft 12 to draft 19; as roughenough 2.2 implements it (and as here) it differs from
//! version 1 only in the two context strings. `0x8000000b` is draft-ietf-ntp-roughtime-11
//! as Cloudflare's Go implementation speaks it (its test vectors are checked in `tests/`).
//! Section numbers below are those of draft 19, which roughenough 2.2 cites as the RFC's.
//!
//! Common to all three:
//! - §5: a packet is `"ROUGHTIM"`, a uint32 length, then exactly that many bytes of message.
//!   Every request built here is exactly [`REQUEST_LEN`] = 1024 bytes (§5.1), the padding
//!   being the ZZZZ tag filled with zeros. A response is at most [`MAX_RESPONSE_LEN`] bytes:
//!   §5.1 forbids a server to answer with more bytes than the request had.
//! - §4, §4.2: a message is N, N−1 offsets, N tags, then the values. Offsets are multiples
//!   of four, non-decreasing and inside the values section; tags are strictly ascending as
//!   little-endian uint32 (so no duplicates). All integers are little-endian (§4.1).
//! - §5.1.4: SRV = H(0xff ‖ long-term public key); H is SHA-512 truncated to 32 bytes.
//! - §5.2.1, §5.2.6: every signature is Ed25519 over a context string (with its trailing
//!   zero byte) followed by the value of the signed tag, byte for byte as received.
//! - §5.3, §5.3.1: leaf = H(0x00 ‖ leaf data), node = H(0x01 ‖ left ‖ right); the bits of
//!   INDX, least significant first, say on which side each PATH element sits, and any bit
//!   left over when PATH is exhausted is a failure. PATH holds at most 32 hashes (§5.2.4).
//! - §5.4: the delegation is signed by the long-term key, SREP by the delegated key, and
//!   MINT ≤ MIDP ≤ MAXT.
//! - §7: undefined tags are ignored (clients "MUST properly ignore undefined tags"), but
//!   they must still obey the framing rules above; a required tag that is missing, of the
//!   wrong length or with a wrong value is an error.
//!
//! Beyond §5.4 this client also requires: NONC echoes the request's nonce (§5.2.2); TYPE
//! is 1 (§5.2.3; required in versions that define it, checked if present in draft 11);
//! the response's VER is the version requested; VERS is ascending, at most 32 entries
//! and contains VER (§5.2.5); RADI is not zero (§5.2.5).
//!
//! Everything here takes untrusted bytes: no panics, every length bounded, every index
//! checked; the lints below hold that line.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo
)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use ring::signature::{UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha512};

/// Length of a nonce (RFC 10049 §5.1.2).
pub const NONCE_LEN: usize = 32;
/// Length of every request packet built by [`encode_request`], framing included (§5.1).
pub const REQUEST_LEN: usize = 1024;
/// Largest response packet accepted: servers must not answer with more bytes than the
/// request had (§5.1, §9.7).
pub const MAX_RESPONSE_LEN: usize = REQUEST_LEN;

const FRAME_MAGIC: [u8; 8] = *b"ROUGHTIM";
const FRAME_HEADER_LEN: usize = FRAME_MAGIC.len() + 4;
/// More tags than any message of these versions carries (responses have 7).
const MAX_TAGS: usize = 16;
const MAX_PATH_HASHES: usize = 32;
const MAX_VERSIONS: usize = 32;
const HASH_LEN: usize = 32;
const PUBLIC_KEY_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;
const MICROS_PER_SECOND: u64 = 1_000_000;

/// A protocol version, and everything that differs between versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// RFC 10049, version number 1.
    Rfc,
    /// Version number 0x8000000c, used by drafts 12 to 19.
    Draft12,
    /// draft-ietf-ntp-roughtime-11, version number 0x8000000b.
    Draft11,
}

impl Version {
    /// The uint32 version number on the wire (§5.1.1, §12.2).
    pub const fn wire_value(self) -> u32 {
        match self {
            Version::Rfc => 0x0000_0001,
            Version::Draft12 => 0x8000_000c,
            Version::Draft11 => 0x8000_000b,
        }
    }

    /// The version with this wire number, if it is one of the three.
    pub const fn from_wire_value(value: u32) -> Option<Version> {
        match value {
            0x0000_0001 => Some(Version::Rfc),
            0x8000_000c => Some(Version::Draft12),
            0x8000_000b => Some(Version::Draft11),
            _ => None,
        }
    }

    /// Context string of the long-term key's signature over DELE (§5.2.6).
    const fn delegation_context(self) -> &'static [u8] {
        match self {
            Version::Rfc => b"Roughtime v1 delegation signature\0",
            Version::Draft12 => b"RoughTime v1 delegation signature\0",
            Version::Draft11 => b"RoughTime v1 delegation signature--\0",
        }
    }

    /// Context string of the delegated key's signature over SREP (§5.2.1).
    const fn response_context(self) -> &'static [u8] {
        match self {
            Version::Rfc => b"Roughtime v1 response signature\0",
            Version::Draft12 | Version::Draft11 => b"RoughTime v1 response signature\0",
        }
    }

    /// Versions with a TYPE tag, VER/VERS inside SREP, and the request packet as leaf.
    const fn is_rfc_family(self) -> bool {
        matches!(self, Version::Rfc | Version::Draft12)
    }
}

/// A server as the client knows it beforehand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// A name for logs and evidence; not sent on the wire.
    pub name: String,
    /// The long-term Ed25519 public key.
    pub public_key: [u8; 32],
    /// The one version requests offer and responses must use.
    pub version: Version,
}

/// What a verified reply says, in microseconds (the wire says seconds in all three versions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// MIDP: Unix epoch, microseconds.
    pub midpoint_micros: u64,
    /// RADI: microseconds.
    pub radius_micros: u64,
}

/// Why a response was rejected. Tags are shown as their little-endian uint32 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoughtimeError {
    /// More bytes than [`MAX_RESPONSE_LEN`].
    #[error("response of {0} bytes exceeds the limit of {MAX_RESPONSE_LEN} bytes")]
    Oversize(usize),
    /// The packet does not start with "ROUGHTIM".
    #[error("packet does not start with the \"ROUGHTIM\" magic")]
    BadMagic,
    /// The length field (first) disagrees with the bytes that follow (second).
    #[error("packet framing declares {0} message bytes but {1} follow")]
    FrameLength(usize, usize),
    /// Input ends inside the named field.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A message whose length is not a multiple of four.
    #[error("message length {0} is not a multiple of four")]
    MisalignedMessage(usize),
    /// A message with zero tags.
    #[error("message has zero tags")]
    EmptyMessage,
    /// A tag count above the bound.
    #[error("message claims {0} tags, more than the {MAX_TAGS} allowed")]
    TooManyTags(u32),
    /// An offset that is not a multiple of four.
    #[error("offset {0} is not a multiple of four")]
    MisalignedOffset(u32),
    /// An offset smaller than the previous one.
    #[error("offset {0} is smaller than the one before it")]
    OffsetOrder(u32),
    /// An offset past the end of the values section.
    #[error("offset {0} lies beyond the values section")]
    OffsetOutOfRange(u32),
    /// The same tag twice in one header.
    #[error("tag {0:#010x} appears more than once")]
    DuplicateTag(u32),
    /// Tags not in ascending order.
    #[error("tag {0:#010x} is not in ascending order")]
    TagOrder(u32),
    /// A required tag is absent.
    #[error("required tag {0} is missing")]
    MissingTag(&'static str),
    /// A fixed-size tag of another size: (tag, expected, actual).
    #[error("tag {0} has {2} bytes, expected {1}")]
    BadTagLength(&'static str, usize, usize),
    /// TYPE other than 1 (§5.2.3).
    #[error("TYPE is {0}, a response must have 1")]
    WrongType(u32),
    /// NONC is not the request's nonce (§5.2.2).
    #[error("NONC does not echo the request's nonce")]
    NonceMismatch,
    /// VER is not the version requested: (expected, got).
    #[error("response version {1:#010x} is not the requested {0:#010x}")]
    VersionMismatch(u32, u32),
    /// VERS breaks §5.2.5.
    #[error("VERS is malformed: {0}")]
    BadVersionList(&'static str),
    /// CERT's signature over DELE does not verify under the long-term key.
    #[error("delegation signature does not verify under the server's long-term key")]
    BadDelegationSignature,
    /// SIG over SREP does not verify under the delegated key.
    #[error("SREP signature does not verify under the delegated key")]
    BadResponseSignature,
    /// MINT after MAXT: (mint, maxt).
    #[error("delegation window is empty: MINT {0} > MAXT {1}")]
    InvalidDelegationWindow(u64, u64),
    /// MIDP outside [MINT, MAXT]: (midp, mint, maxt).
    #[error("midpoint {0} is outside the delegation window [{1}, {2}]")]
    MidpointOutsideDelegation(u64, u64, u64),
    /// RADI is zero (§5.2.5).
    #[error("RADI is zero")]
    ZeroRadius,
    /// MIDP too large to express in microseconds.
    #[error("midpoint {0} s cannot be expressed in microseconds")]
    MidpointOverflow(u64),
    /// PATH length not a multiple of 32.
    #[error("PATH of {0} bytes is not a multiple of 32")]
    BadPathLength(usize),
    /// PATH of more than 32 hashes (§5.2.4).
    #[error("PATH has {0} hashes, more than 32")]
    PathTooLong(usize),
    /// INDX has a bit set beyond the PATH depth (§5.3.1): (index, depth).
    #[error("INDX {0} has bits beyond the {1}-hash PATH")]
    IndexOutOfRange(u32, usize),
    /// The leaf, PATH and INDX do not hash to ROOT (§5.3.1).
    #[error("Merkle path from this request does not reach ROOT")]
    BadMerklePath,
}

/// Why an exchange produced no response bytes.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No local UDP socket.
    #[error("binding a local UDP socket: {0}")]
    Bind(#[source] std::io::Error),
    /// The socket could not be connected to the server's address.
    #[error("connecting the UDP socket: {0}")]
    Connect(#[source] std::io::Error),
    /// Sending failed.
    #[error("sending the request: {0}")]
    Send(#[source] std::io::Error),
    /// Fewer bytes sent than the request has.
    #[error("sent {0} of {REQUEST_LEN} request bytes")]
    ShortSend(usize),
    /// Receiving failed (e.g. ICMP port unreachable, reported as connection refused).
    #[error("receiving the response: {0}")]
    Recv(#[source] std::io::Error),
    /// Nothing arrived in time.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// A datagram larger than [`MAX_RESPONSE_LEN`].
    #[error("response datagram larger than {MAX_RESPONSE_LEN} bytes")]
    ResponseTooLarge,
}

/// A tag: its four bytes on the wire and a name for errors.
#[derive(Clone, Copy)]
struct Tag {
    wire: [u8; 4],
    name: &'static str,
}

impl Tag {
    /// The uint32 value tags are sorted by: the first byte is least significant (§4.1.3).
    const fn key(self) -> u32 {
        u32::from_le_bytes(self.wire)
    }
}

macro_rules! tags {
    ($($id:ident = $wire:expr;)*) => {
        $(const $id: Tag = Tag { wire: *$wire, name: stringify!($id) };)*
    };
}

tags! {
    SIG = b"SIG\0"; VER = b"VER\0"; SRV = b"SRV\0"; NONC = b"NONC"; TYPE = b"TYPE"; DELE = b"DELE";
    PATH = b"PATH"; RADI = b"RADI"; PUBK = b"PUBK"; MIDP = b"MIDP"; SREP = b"SREP"; VERS = b"VERS";
    MINT = b"MINT"; ROOT = b"ROOT"; CERT = b"CERT"; MAXT = b"MAXT"; INDX = b"INDX"; ZZZZ = b"ZZZZ";
}

/// SRV value committing to a long-term key: H(0xff ‖ public_key) (§5.1.4).
pub fn srv_commitment(public_key: &[u8; 32]) -> [u8; HASH_LEN] {
    hash(&[&[0xff], public_key])
}

/// Canonical request bytes for this nonce and server: exactly [`REQUEST_LEN`] bytes, the
/// tags listed in the module table in ascending order, ZZZZ all zeros. The same input
/// always gives the same bytes, so a verifier can rebuild the Merkle leaf of the RFC
/// versions from (nonce, server) alone.
pub fn encode_request(nonce: &[u8; NONCE_LEN], server: &ServerSpec) -> Vec<u8> {
    let version = server.version.wire_value().to_le_bytes();
    let srv = srv_commitment(&server.public_key);
    let request_type = 0u32.to_le_bytes();
    let mut fields: Vec<(Tag, &[u8])> = vec![(VER, &version), (SRV, &srv), (NONC, nonce)];
    if server.version.is_rfc_family() {
        fields.push((TYPE, &request_type));
    }
    // The ZZZZ tag adds 8 header bytes; what remains of REQUEST_LEN is its value.
    let header_len = 8 * (fields.len() + 1);
    let values_len: usize = fields.iter().map(|(_, value)| value.len()).sum();
    let padding = vec![0u8; REQUEST_LEN.saturating_sub(FRAME_HEADER_LEN + header_len + values_len)];
    fields.push((ZZZZ, &padding));
    frame(&encode_message(&fields))
}

/// Encodes a message whose fields are already in ascending tag order, each value a
/// multiple of four bytes long. Only called with small, fixed request fields.
fn encode_message(fields: &[(Tag, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_LEN);
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    let mut offset = 0usize;
    for (_, value) in fields.iter().take(fields.len().saturating_sub(1)) {
        offset += value.len();
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    for (tag, _) in fields {
        out.extend_from_slice(&tag.wire);
    }
    for (_, value) in fields {
        out.extend_from_slice(value);
    }
    out
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + message.len());
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
    out
}

/// The message inside a response packet, which must fill the packet exactly (§5).
fn unframe(packet: &[u8]) -> Result<&[u8], RoughtimeError> {
    if packet.len() > MAX_RESPONSE_LEN {
        return Err(RoughtimeError::Oversize(packet.len()));
    }
    let (magic, rest) = packet
        .split_at_checked(FRAME_MAGIC.len())
        .ok_or(RoughtimeError::Truncated("packet magic"))?;
    if magic != FRAME_MAGIC {
        return Err(RoughtimeError::BadMagic);
    }
    let declared = read_u32(rest, 0, "packet length")? as usize;
    let message = rest
        .get(4..)
        .ok_or(RoughtimeError::Truncated("packet length"))?;
    if message.len() != declared {
        return Err(RoughtimeError::FrameLength(declared, message.len()));
    }
    Ok(message)
}

fn read_u32(bytes: &[u8], at: usize, what: &'static str) -> Result<u32, RoughtimeError> {
    let end = at.checked_add(4).ok_or(RoughtimeError::Truncated(what))?;
    let field: [u8; 4] = bytes
        .get(at..end)
        .and_then(|b| b.try_into().ok())
        .ok_or(RoughtimeError::Truncated(what))?;
    Ok(u32::from_le_bytes(field))
}

/// A parsed message: (tag key, value) in wire order, values borrowed from the input.
struct Message<'a> {
    entries: Vec<(u32, &'a [u8])>,
}

impl<'a> Message<'a> {
    /// Parses one message (§4), enforcing every header rule of §4.2.
    fn parse(bytes: &'a [u8]) -> Result<Self, RoughtimeError> {
        if !bytes.len().is_multiple_of(4) {
            return Err(RoughtimeError::MisalignedMessage(bytes.len()));
        }
        let count = read_u32(bytes, 0, "tag count")?;
        if count == 0 {
            return Err(RoughtimeError::EmptyMessage);
        }
        let n = count as usize;
        if n > MAX_TAGS {
            return Err(RoughtimeError::TooManyTags(count));
        }
        // N, N-1 offsets, N tags: 8N bytes of header (n <= MAX_TAGS, no overflow).
        let values = bytes
            .get(8 * n..)
            .ok_or(RoughtimeError::Truncated("message header"))?;
        let mut bounds = Vec::with_capacity(n + 1);
        bounds.push(0usize);
        for i in 1..n {
            let offset = read_u32(bytes, 4 * i, "offsets")?;
            if !offset.is_multiple_of(4) {
                return Err(RoughtimeError::MisalignedOffset(offset));
            }
            if (offset as usize) < bounds.last().copied().unwrap_or(0) {
                return Err(RoughtimeError::OffsetOrder(offset));
            }
            if offset as usize > values.len() {
                return Err(RoughtimeError::OffsetOutOfRange(offset));
            }
            bounds.push(offset as usize);
        }
        bounds.push(values.len());

        let mut entries = Vec::with_capacity(n);
        let mut previous: Option<u32> = None;
        for (i, window) in bounds.windows(2).enumerate() {
            let key = read_u32(bytes, 4 * (n + i), "tags")?;
            match previous {
                Some(prev) if key == prev => return Err(RoughtimeError::DuplicateTag(key)),
                Some(prev) if key < prev => return Err(RoughtimeError::TagOrder(key)),
                _ => {}
            }
            previous = Some(key);
            let &[start, end] = window else {
                return Err(RoughtimeError::Truncated("offsets"));
            };
            let value = values
                .get(start..end)
                .ok_or(RoughtimeError::Truncated("value"))?;
            entries.push((key, value));
        }
        Ok(Message { entries })
    }

    fn get(&self, tag: Tag) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|(key, _)| *key == tag.key())
            .map(|&(_, value)| value)
    }

    fn require(&self, tag: Tag) -> Result<&'a [u8], RoughtimeError> {
        self.get(tag).ok_or(RoughtimeError::MissingTag(tag.name))
    }

    fn fixed<const N: usize>(&self, tag: Tag) -> Result<[u8; N], RoughtimeError> {
        let value = self.require(tag)?;
        value
            .try_into()
            .map_err(|_| RoughtimeError::BadTagLength(tag.name, N, value.len()))
    }

    fn u32(&self, tag: Tag) -> Result<u32, RoughtimeError> {
        self.fixed::<4>(tag).map(u32::from_le_bytes)
    }

    fn u64(&self, tag: Tag) -> Result<u64, RoughtimeError> {
        self.fixed::<8>(tag).map(u64::from_le_bytes)
    }
}

/// First 32 bytes of SHA-512 over the concatenated parts (§5.3).
fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; HASH_LEN];
    for (out_byte, digest_byte) in out.iter_mut().zip(hasher.finalize()) {
        *out_byte = digest_byte;
    }
    out
}

fn verify_signature(public_key: &[u8], context: &[u8], value: &[u8], signature: &[u8]) -> bool {
    let mut signed = Vec::with_capacity(context.len() + value.len());
    signed.extend_from_slice(context);
    signed.extend_from_slice(value);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed, signature)
        .is_ok()
}

/// Recomputes ROOT from a leaf's data, INDX and PATH (§5.3.1).
fn check_merkle_path(
    leaf_data: &[u8],
    index: u32,
    path: &[u8],
    root: &[u8; HASH_LEN],
) -> Result<(), RoughtimeError> {
    if !path.len().is_multiple_of(HASH_LEN) {
        return Err(RoughtimeError::BadPathLength(path.len()));
    }
    let depth = path.len() / HASH_LEN;
    if depth > MAX_PATH_HASHES {
        return Err(RoughtimeError::PathTooLong(depth));
    }
    if u64::from(index) >> depth != 0 {
        return Err(RoughtimeError::IndexOutOfRange(index, depth));
    }
    let mut node = hash(&[&[0x00], leaf_data]);
    let mut bits = index;
    for sibling in path.chunks_exact(HASH_LEN) {
        node = if bits & 1 == 0 {
            hash(&[&[0x01], &node, sibling])
        } else {
            hash(&[&[0x01], sibling, &node])
        };
        bits >>= 1;
    }
    if &node == root {
        Ok(())
    } else {
        Err(RoughtimeError::BadMerklePath)
    }
}

/// VERS: 1 to 32 strictly ascending version numbers, one of them VER (§5.2.5).
fn check_version_list(vers: &[u8], ver: u32) -> Result<(), RoughtimeError> {
    if vers.is_empty() || !vers.len().is_multiple_of(4) {
        return Err(RoughtimeError::BadVersionList(
            "length is not a positive multiple of four",
        ));
    }
    if vers.len() / 4 > MAX_VERSIONS {
        return Err(RoughtimeError::BadVersionList("more than 32 versions"));
    }
    let mut previous: Option<u32> = None;
    let mut contains_ver = false;
    for chunk in vers.chunks_exact(4) {
        let value = read_u32(chunk, 0, "VERS")?;
        if previous.is_some_and(|prev| value <= prev) {
            return Err(RoughtimeError::BadVersionList("not strictly ascending"));
        }
        contains_ver |= value == ver;
        previous = Some(value);
    }
    if contains_ver {
        Ok(())
    } else {
        Err(RoughtimeError::BadVersionList("does not contain VER"))
    }
}

/// Fully verifies one response to the request [`encode_request`]`(nonce, server)` builds:
/// framing and every message strictly parsed, TYPE, VER, NONC, the delegation signed by
/// `server.public_key`, SREP signed by the delegated key, MINT ≤ MIDP ≤ MAXT, and the
/// Merkle path from this request's leaf (packet or nonce, per version) reaching ROOT.
pub fn verify_response(
    server: &ServerSpec,
    nonce: &[u8; NONCE_LEN],
    response: &[u8],
) -> Result<Verified, RoughtimeError> {
    let version = server.version;
    let expected_version = version.wire_value();
    let top = Message::parse(unframe(response)?)?;

    match top.get(TYPE) {
        Some(_) => match top.u32(TYPE)? {
            1 => {}
            other => return Err(RoughtimeError::WrongType(other)),
        },
        None if version.is_rfc_family() => return Err(RoughtimeError::MissingTag(TYPE.name)),
        None => {}
    }
    if version == Version::Draft11 {
        let got = top.u32(VER)?;
        if got != expected_version {
            return Err(RoughtimeError::VersionMismatch(expected_version, got));
        }
    }
    if &top.fixed::<NONCE_LEN>(NONC)? != nonce {
        return Err(RoughtimeError::NonceMismatch);
    }

    // CERT: the long-term key signs DELE (§5.2.6).
    let cert = Message::parse(top.require(CERT)?)?;
    let delegation_signature = cert.fixed::<SIGNATURE_LEN>(SIG)?;
    let delegation_bytes = cert.require(DELE)?;
    // A server reuses one delegation for every reply until it rotates its online key
    // (roughenough: daily), so a verified one is remembered (by key, version, signature
    // and bytes) and its signature is not verified again.
    let delegation_id = delegation_digest(
        &server.public_key,
        version,
        &delegation_signature,
        delegation_bytes,
    );
    if !delegation_known(&delegation_id) {
        if !verify_signature(
            &server.public_key,
            version.delegation_context(),
            delegation_bytes,
            &delegation_signature,
        ) {
            return Err(RoughtimeError::BadDelegationSignature);
        }
        remember_delegation(delegation_id);
    }
    let delegation = Message::parse(delegation_bytes)?;
    let online_key = delegation.fixed::<PUBLIC_KEY_LEN>(PUBK)?;
    let mint = delegation.u64(MINT)?;
    let maxt = delegation.u64(MAXT)?;

    // SIG: the delegated key signs SREP (§5.2.1).
    let response_signature = top.fixed::<SIGNATURE_LEN>(SIG)?;
    let srep_bytes = top.require(SREP)?;
    if !verify_signature(
        &online_key,
        version.response_context(),
        srep_bytes,
        &response_signature,
    ) {
        return Err(RoughtimeError::BadResponseSignature);
    }
    let srep = Message::parse(srep_bytes)?;
    if version.is_rfc_family() {
        let got = srep.u32(VER)?;
        if got != expected_version {
            return Err(RoughtimeError::VersionMismatch(expected_version, got));
        }
        check_version_list(srep.require(VERS)?, got)?;
    }
    let radius = srep.u32(RADI)?;
    let midpoint = srep.u64(MIDP)?;
    let root = srep.fixed::<HASH_LEN>(ROOT)?;
    if radius == 0 {
        return Err(RoughtimeError::ZeroRadius);
    }
    if mint > maxt {
        return Err(RoughtimeError::InvalidDelegationWindow(mint, maxt));
    }
    if midpoint < mint || midpoint > maxt {
        return Err(RoughtimeError::MidpointOutsideDelegation(
            midpoint, mint, maxt,
        ));
    }

    // The Merkle proof (§5.3.1) that this request is under the signed ROOT.
    let index = top.u32(INDX)?;
    let path = top.require(PATH)?;
    if version.is_rfc_family() {
        check_merkle_path(&encode_request(nonce, server), index, path, &root)?;
    } else {
        check_merkle_path(nonce, index, path, &root)?;
    }

    Ok(Verified {
        midpoint_micros: midpoint
            .checked_mul(MICROS_PER_SECOND)
            .ok_or(RoughtimeError::MidpointOverflow(midpoint))?,
        radius_micros: u64::from(radius) * MICROS_PER_SECOND,
    })
}

/// One UDP exchange: sends [`encode_request`]`(nonce, server)` to `addr` from a socket
/// connected to it (so only datagrams from `addr` are received), waits up to `timeout`
/// for one datagram, and returns it with the round trip measured on the monotonic clock.
/// The bytes are not verified: call [`verify_response`].
pub async fn query(
    addr: SocketAddr,
    server: &ServerSpec,
    nonce: &[u8; NONCE_LEN],
    timeout: Duration,
) -> Result<(Vec<u8>, Duration), QueryError> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(QueryError::Bind)?;
    socket.connect(addr).await.map_err(QueryError::Connect)?;
    let request = encode_request(nonce, server);

    let started = Instant::now();
    let sent = socket.send(&request).await.map_err(QueryError::Send)?;
    if sent != request.len() {
        return Err(QueryError::ShortSend(sent));
    }
    // One byte more than allowed, to tell a too-large datagram from a full one.
    let mut buffer = vec![0u8; MAX_RESPONSE_LEN + 1];
    let received = tokio::time::timeout(timeout, socket.recv(&mut buffer))
        .await
        .map_err(|_| QueryError::Timeout(timeout))?
        .map_err(QueryError::Recv)?;
    let round_trip = started.elapsed();
    if received > MAX_RESPONSE_LEN {
        return Err(QueryError::ResponseTooLarge);
    }
    buffer.truncate(received);
    Ok((buffer, round_trip))
}

/// The four servers of `ecosystem.json` in cloudflare/roughtime at commit
/// 75645289794cfbd71a08f0e7ecf9bc4f3f87d133 (2026-04-28; frostamp's copy is
/// `shared/assets/roughtime/cloudflare/ecosystem.json`), with its base64 keys. All four are
/// given [`Version::Rfc`]; the file says only "IETF-Roughtime", and the Go server code of
/// that same commit speaks drafts 08 and 11 only, so Cloudflare-Roughtime-2 may answer
/// only [`Version::Draft11`] requests. A key that failed to decode would drop its server;
/// a test checks that all four decode and match the file.
#[rustfmt::skip]
pub fn ecosystem_servers() -> Vec<ServerSpec> {
    const SERVERS: [(&str, &str); 4] = [
        ("Cloudflare-Roughtime-2", "0GD7c3yP8xEc4Zl2zeuN2SlLvDVVocjsPSL8/Rl/7zg="),
        ("int08h-Roughtime", "AW5uAoTSTDfG5NfY1bTh08GUnOqlRb+HVhbJ3ODJvsE="),
        ("roughtime.se", "S3AzfZJ5CjSdkJ21ZJGbxqdYP/SoE8fXKY0+aicsehI="),
        ("time.txryan.com", "iBVjxg/1j7y1+kQUTBYdTabxCppesU/07D4PMDJk2WA="),
    ];
    SERVERS
        .iter()
        .filter_map(|(name, key)| {
            let mut public_key = [0u8; 32];
            let decoded = <Base64 as Encoding>::decode(key, &mut public_key).ok()?;
            (decoded.len() == 32).then(|| ServerSpec {
                name: (*name).to_string(),
                public_key,
                version: Version::Rfc,
            })
        })
        .collect()
}

/// Verified delegations remembered process-wide (a pure memo: a signature that verified
/// once verifies again).
const DELEGATIONS_KEPT: usize = 64;

fn delegations() -> &'static std::sync::Mutex<std::collections::VecDeque<[u8; HASH_LEN]>> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::VecDeque<[u8; HASH_LEN]>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(|| std::sync::Mutex::new(std::collections::VecDeque::new()))
}

fn delegation_digest(
    key: &[u8; PUBLIC_KEY_LEN],
    version: Version,
    signature: &[u8; SIGNATURE_LEN],
    bytes: &[u8],
) -> [u8; HASH_LEN] {
    let mut h = Sha512::new();
    h.update(b"frostamp/v1/roughtime-delegation");
    h.update(key);
    h.update(version.wire_value().to_le_bytes());
    h.update(signature);
    h.update(bytes);
    let full = h.finalize();
    let mut out = [0u8; HASH_LEN];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

fn delegation_known(id: &[u8; HASH_LEN]) -> bool {
    delegations()
        .lock()
        .map(|c| c.iter().any(|k| k == id))
        .unwrap_or(false)
}

fn remember_delegation(id: [u8; HASH_LEN]) {
    if let Ok(mut c) = delegations().lock() {
        if c.len() >= DELEGATIONS_KEPT {
            c.pop_front();
        }
        c.push_back(id);
    }
}

/// The UDP address `ecosystem.json` gives a server of [`ecosystem_servers`].
pub fn ecosystem_address(name: &str) -> Option<&'static str> {
    match name {
        "Cloudflare-Roughtime-2" => Some("roughtime.cloudflare.com:2003"),
        "int08h-Roughtime" => Some("roughtime.int08h.com:2002"),
        "roughtime.se" => Some("roughtime.se:2002"),
        "time.txryan.com" => Some("time.txryan.com:2002"),
        _ => None,
    }
}
