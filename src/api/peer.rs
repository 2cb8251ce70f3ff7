//! Peer messages, one per length-prefixed frame (4-byte big-endian length, at most
//! [`MAX_FRAME`]). A frame's payload starts with the protocol [`VERSION`] byte and a
//! tag byte. The messages of every token (`SignCommit`, `SignCommitted`, `SignRound2`,
//! `SignShare`) are compact binary with fixed or length-prefixed fields, a byte that
//! names the epoch's ciphersuite and points in that suite's encoding (SEC1 compressed
//! for secp256k1, 32 bytes for Ed25519) ([`binary`]); every other message — handshake, DKG, repair, pings,
//! refusals, a few per minute at most — is a strict serde_json object after
//! [`TAG_JSON`]. Each message has exactly one encoding: the binary ones cannot be
//! written or read as JSON.

use crate::attestation::Evidence;
use crate::threshold::signer::{CommitmentKey, EncodedCommitments, Refusal, SigningProposal};
use crate::threshold::suite::{BySuite, Ciphersuite, Ed25519Sha512, Secp256K1Sha256};
use frost_core::keys::dkg;
use frost_core::round1::SigningCommitments;
use frost_core::round2::SignatureShare;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Protocol version: the first byte of every frame's payload (5: the per-token
/// messages name the ciphersuite, DKG and repair values are tagged with theirs).
pub const VERSION: u8 = 5;

/// A DKG round-1 package of either suite.
pub type Round1Package =
    BySuite<dkg::round1::Package<Secp256K1Sha256>, dkg::round1::Package<Ed25519Sha512>>;
/// A DKG round-2 package of either suite.
pub type Round2Package =
    BySuite<dkg::round2::Package<Secp256K1Sha256>, dkg::round2::Package<Ed25519Sha512>>;
/// A batch of encoded commitments of either suite.
pub type CommitmentBatch =
    BySuite<Vec<EncodedCommitments<Secp256K1Sha256>>, Vec<EncodedCommitments<Ed25519Sha512>>>;
/// A signature share of either suite.
pub type Share = BySuite<SignatureShare<Secp256K1Sha256>, SignatureShare<Ed25519Sha512>>;
/// (index, commitments) of a CSR signing, of either suite.
pub type CsrCommitments = BySuite<
    Vec<(u16, SigningCommitments<Secp256K1Sha256>)>,
    Vec<(u16, SigningCommitments<Ed25519Sha512>)>,
>;
/// A group's public key package of either suite.
pub type PublicPackage = BySuite<
    frost_core::keys::PublicKeyPackage<Secp256K1Sha256>,
    frost_core::keys::PublicKeyPackage<Ed25519Sha512>,
>;
/// Largest frame accepted.
pub const MAX_FRAME: usize = 1 << 20;

/// Tag of a JSON-encoded message (everything but the four per-token messages).
pub const TAG_JSON: u8 = 0;
/// Tag of a binary `SignCommit`.
pub const TAG_SIGN_COMMIT: u8 = 1;
/// Tag of a binary `SignCommitted`.
pub const TAG_SIGN_COMMITTED: u8 = 2;
/// Tag of a binary `SignRound2`.
pub const TAG_SIGN_ROUND2: u8 = 3;
/// Tag of a binary `SignShare`.
pub const TAG_SIGN_SHARE: u8 = 4;

/// Everything peers say to each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerMessage {
    /// First message on a connection: who I am and a fresh nonce for your evidence.
    Hello {
        /// Sender's node index (1..=n).
        index: u16,
        /// 32 random bytes, hex: the receiver must bind its evidence to it.
        nonce: String,
        /// The group key (hex) whose share the sender holds, if any.
        group_key: Option<String>,
    },
    /// Evidence binding the sender's TLS key to its launch measurement.
    Attest {
        /// The report and certificates.
        evidence: Evidence,
    },
    /// DKG round 1 package (broadcast; RFC 9591 has no DKG: frost `keys::dkg::part1`).
    DkgRound1 {
        /// Key epoch being generated.
        epoch: String,
        /// The package, in the epoch's suite.
        package: Round1Package,
    },
    /// Echo broadcast: SHA-256 of the round-1 package this node received from each sender.
    DkgEcho {
        /// Key epoch.
        epoch: String,
        /// (sender index, hex SHA-256 of its round-1 package as received), by index.
        /// A list, not a map: integer map keys do not survive serde's internally
        /// tagged enums.
        digests: Vec<(u16, String)>,
        /// Hash (hex) of the roster the sender took at the DKG's start: every node must
        /// have admitted the same identities before any secret share is sent.
        roster: String,
    },
    /// DKG round 2 package: only on the pairwise channel to its recipient.
    DkgRound2 {
        /// Key epoch.
        epoch: String,
        /// The package (secret: sent to exactly one peer), in the epoch's suite.
        package: Round2Package,
    },
    /// Success confirmation: the group key and transcript hash this node derived.
    DkgConfirm {
        /// Key epoch.
        epoch: String,
        /// SEC1 compressed group key, hex.
        group_key: String,
        /// Round-1 transcript hash, hex.
        transcript: String,
    },
    /// Coordinator → signer: `count` fresh nonce commitments, issued to this
    /// coordinator ahead of the requests they will sign (RFC 9591 §5.1). Binary.
    #[serde(skip)]
    SignCommit {
        /// Request id, echoed in the answer.
        req: u64,
        /// How many (1 to `signer::MAX_COMMIT_BATCH`).
        count: u16,
    },
    /// Signer → coordinator: the commitments. Binary.
    #[serde(skip)]
    SignCommitted {
        /// Request id.
        req: u64,
        /// Commitments to nonces the signer keeps for this coordinator, each single use
        /// (at most `signer::MAX_COMMIT_BATCH`), decoded once on arrival, in the suite
        /// of the signer's epoch.
        commitments: CommitmentBatch,
    },
    /// Coordinator → signer: what to sign (structure, never bytes) and the signing set.
    /// Binary.
    #[serde(skip)]
    SignRound2 {
        /// Request id.
        req: u64,
        /// The suite of the coordinator's epoch (a signer of another refuses).
        suite: Ciphersuite,
        /// The token proposal.
        proposal: SigningProposal,
        /// (index, encoded commitments) of every signer in this signing; the signer
        /// decodes only the others' (`Signer::sign_encoded`).
        commitments: Vec<(u16, CommitmentKey)>,
    },
    /// Coordinator → signer: sign this epoch's CSR, which the signer rebuilds from
    /// the subject and the evidence bundle and checks against its own epoch.
    SignCsr {
        /// Request id.
        req: u64,
        /// Requested subject (RFC 4514).
        subject: String,
        /// The evidence bundle (JSON text) that goes into the CSR.
        bundle: String,
        /// SHA-256 (hex) of the CA root the CSR is for: the signer fixes it, with
        /// the subject, for its epoch (`node::certificate`).
        ca_root: String,
        /// (index, commitments) of every signer in this signing, in the epoch's suite.
        commitments: CsrCommitments,
    },
    /// Signer → coordinator: its signature share (RFC 9591 §5.2). Binary.
    #[serde(skip)]
    SignShare {
        /// Request id.
        req: u64,
        /// The share, in the suite of the signer's epoch.
        share: Share,
    },
    /// Signer → coordinator: no share, and why.
    SignRefused {
        /// Request id.
        req: u64,
        /// The signer's reason.
        refusal: Refusal,
    },
    /// Replacement node → helper: help repair the share of `participant` (frost
    /// repairable shares, RTS) together with `helpers`.
    RepairStart {
        /// Key epoch.
        epoch: String,
        /// The t helpers (indices).
        helpers: Vec<u16>,
        /// The index whose share is being repaired (the sender).
        participant: u16,
        /// This attempt's random id: every delta, sigma and refusal of the attempt
        /// carries it, so leftovers of an earlier attempt cannot spoil this one.
        attempt: u64,
    },
    /// Helper → helper (pairwise): RTS step-1 value for the receiver.
    RepairDelta {
        /// Key epoch.
        epoch: String,
        /// Participant being repaired.
        participant: u16,
        /// The repair attempt (from `RepairStart`).
        attempt: u64,
        /// The delta (secret: sent to exactly one helper).
        delta: SecretScalar,
    },
    /// Helper → replacement node: RTS step-2 sum, with the public key package and chain.
    RepairSigma {
        /// Key epoch.
        epoch: String,
        /// The repair attempt (from `RepairStart`).
        attempt: u64,
        /// The sigma (secret: sent only to the participant).
        sigma: SecretScalar,
        /// The group's public key package (verifying shares), in the epoch's suite.
        public: PublicPackage,
        /// Round-1 transcript hash (hex).
        transcript: String,
        /// Installed certificate chain (hex DER, leaf first), if any.
        chain: Vec<String>,
        /// The roster with the repair order in effect (the receiver holds its index).
        roster: crate::attestation::Roster,
        /// CA root and subject fixed with the CSR, if any: the replacement checks
        /// the chain against it and records it.
        #[serde(default)]
        pin: Option<crate::certs::install::IssuancePin>,
    },
    /// Helper → replacement node: cannot help.
    RepairRefused {
        /// Key epoch.
        epoch: String,
        /// The repair attempt (from `RepairStart`).
        attempt: u64,
        /// Why.
        reason: String,
    },
    /// Liveness: sent every `peers::PING_INTERVAL`; a link silent for
    /// `peers::SILENCE` is closed (a hung peer stops counting as a share holder).
    Ping {
        /// The group key (hex) whose share the sender holds, if any.
        group_key: Option<String>,
    },
    /// The sender now holds a share of `group_key` (after a repair).
    HaveShare {
        /// Group key (hex).
        group_key: String,
    },
    /// The sender aborted the DKG.
    DkgAbort {
        /// Key epoch.
        epoch: String,
        /// Why.
        reason: String,
        /// The node it blames, if any.
        culprit: Option<u16>,
    },
}

/// A secret scalar in a peer message (a repair delta or sigma): its serialized bytes,
/// zeroized on drop, not `Copy`, printed as `<redacted>`, carried as hex. frost's
/// `Delta`/`Sigma` are `Copy` scalars without `Zeroize`, so they are made from these
/// bytes only where the arithmetic needs them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretScalar(zeroize::Zeroizing<Vec<u8>>);

impl core::fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretScalar {
    /// From a serialized scalar (taken by value and zeroized when dropped).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(zeroize::Zeroizing::new(bytes))
    }
    /// The repair delta it carries, a scalar of suite `S`.
    pub fn delta<S: frost_core::Ciphersuite>(
        &self,
    ) -> Result<frost_core::keys::repairable::Delta<S>, frost_core::Error<S>> {
        frost_core::keys::repairable::Delta::deserialize(&self.0)
    }
    /// The repair sigma it carries, a scalar of suite `S`.
    pub fn sigma<S: frost_core::Ciphersuite>(
        &self,
    ) -> Result<frost_core::keys::repairable::Sigma<S>, frost_core::Error<S>> {
        frost_core::keys::repairable::Sigma::deserialize(&self.0)
    }
}

impl Serialize for SecretScalar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = zeroize::Zeroizing::new(hex::encode(&*self.0));
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for SecretScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        if text.len() > 128 {
            return Err(serde::de::Error::custom("secret scalar too long"));
        }
        hex::decode(text.as_bytes())
            .map(Self::new)
            .map_err(serde::de::Error::custom)
    }
}

/// Framing and decoding failures.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Frame over the limit.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not a valid JSON message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Not a valid binary message.
    #[error("malformed binary message: {0}")]
    Binary(#[from] binary::BinaryError),
    /// Unsupported version.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// A payload too short to hold the version and the tag.
    #[error("empty message")]
    Empty,
}

/// Decode one message from a frame's payload (strict). The caller's buffer is its own
/// to zeroize (`read_frame` does).
pub fn decode(bytes: &[u8]) -> Result<PeerMessage, FrameError> {
    let [version, tag, body @ ..] = bytes else {
        return Err(FrameError::Empty);
    };
    if *version != VERSION {
        return Err(FrameError::Version(*version));
    }
    if *tag == TAG_JSON {
        return serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()));
    }
    Ok(binary::decode(*tag, body)?)
}

/// Encode one message as a frame's payload, into a buffer zeroized on drop (frames
/// carry DKG round-2 shares and repair deltas and sigmas). The buffer is allocated at
/// its final size, so no reallocation leaves a copy of a secret behind.
pub fn encode(msg: &PeerMessage) -> Result<zeroize::Zeroizing<Vec<u8>>, FrameError> {
    if let Some(len) = binary::encoded_len(msg) {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(1 + len));
        out.push(VERSION);
        binary::encode(msg, &mut out);
        return Ok(out);
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(2 + counter.0));
    out.extend_from_slice(&[VERSION, TAG_JSON]);
    serde_json::to_writer(&mut *out, msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Counts what is written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PeerMessage {
    /// The message's kind, as logs and refusals name it.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMessage::Hello { .. } => "hello",
            PeerMessage::Attest { .. } => "attest",
            PeerMessage::DkgRound1 { .. } => "dkg_round1",
            PeerMessage::DkgEcho { .. } => "dkg_echo",
            PeerMessage::DkgRound2 { .. } => "dkg_round2",
            PeerMessage::DkgConfirm { .. } => "dkg_confirm",
            PeerMessage::DkgAbort { .. } => "dkg_abort",
            PeerMessage::Ping { .. } => "ping",
            PeerMessage::SignCommit { .. } => "sign_commit",
            PeerMessage::SignCommitted { .. } => "sign_committed",
            PeerMessage::SignRound2 { .. } => "sign_round2",
            PeerMessage::SignCsr { .. } => "sign_csr",
            PeerMessage::RepairStart { .. } => "repair_start",
            PeerMessage::RepairDelta { .. } => "repair_delta",
            PeerMessage::RepairSigma { .. } => "repair_sigma",
            PeerMessage::RepairRefused { .. } => "repair_refused",
            PeerMessage::HaveShare { .. } => "have_share",
            PeerMessage::SignShare { .. } => "sign_share",
            PeerMessage::SignRefused { .. } => "sign_refused",
        }
    }

    /// The key epoch a DKG or repair message belongs to; `None` for the others.
    pub fn epoch(&self) -> Option<&str> {
        match self {
            PeerMessage::RepairDelta { epoch, .. }
            | PeerMessage::RepairSigma { epoch, .. }
            | PeerMessage::RepairRefused { epoch, .. }
            | PeerMessage::DkgRound1 { epoch, .. }
            | PeerMessage::DkgEcho { epoch, .. }
            | PeerMessage::DkgRound2 { epoch, .. }
            | PeerMessage::DkgConfirm { epoch, .. }
            | PeerMessage::DkgAbort { epoch, .. } => Some(epoch),
            _ => None,
        }
    }
}

/// The per-token messages in binary: big-endian integers, byte strings with a length
/// prefix, a suite byte ([`Ciphersuite::wire`]) before anything suite-specific,
/// commitments as their 66 (secp256k1) or 64 (Ed25519) bytes, shares as their 32;
/// nothing may follow the last field.
pub mod binary {
    use super::{
        CommitmentBatch, PeerMessage, Share, SigningProposal, TAG_SIGN_COMMIT, TAG_SIGN_COMMITTED,
        TAG_SIGN_ROUND2, TAG_SIGN_SHARE,
    };
    use crate::threshold::signer::{
        commitments_len, CommitmentKey, EncodedCommitments, COMMITMENTS_LEN, MAX_COMMIT_BATCH,
    };
    use crate::threshold::suite::{BySuite, Ciphersuite, Suite};
    use crate::tsp::token::Serial;

    /// Most (index, commitments) pairs a `SignRound2` may carry.
    pub const MAX_SIGNING_SET: usize = 255;

    /// Why a binary message was refused.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum BinaryError {
        /// A tag no message has.
        #[error("unknown tag {0}")]
        UnknownTag(u8),
        /// The message ends inside a field.
        #[error("truncated: {field} needs {needed} more bytes")]
        Truncated {
            /// The field being read.
            field: &'static str,
            /// Bytes it needed beyond the end.
            needed: usize,
        },
        /// Bytes after the last field.
        #[error("{0} bytes after the last field")]
        Trailing(usize),
        /// More entries than a message of this kind may carry.
        #[error("{field}: {got} entries, at most {max}")]
        TooMany {
            /// The list.
            field: &'static str,
            /// Entries announced.
            got: usize,
            /// The limit.
            max: usize,
        },
        /// A commitment that is not two valid compressed points.
        #[error("commitment {0} is not two valid points")]
        Commitment(usize),
        /// A signature share that is not a scalar.
        #[error("signature share is not a scalar")]
        Share,
        /// A suite byte that names no ciphersuite.
        #[error("unknown ciphersuite byte {0}")]
        Suite(u8),
    }

    /// The wire length of one suite's commitments.
    fn len_of(suite: Ciphersuite) -> usize {
        crate::for_suite!(suite, S => commitments_len::<S>())
    }

    /// Decode `n` commitments of suite `S`.
    fn commitments_of<S: Suite>(
        r: &mut Reader<'_>,
        n: usize,
    ) -> Result<Vec<EncodedCommitments<S>>, BinaryError> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let bytes = r.take(commitments_len::<S>(), "commitment")?;
            out.push(EncodedCommitments::decode(bytes).map_err(|_| BinaryError::Commitment(i))?);
        }
        Ok(out)
    }

    /// The length of `msg` in binary (tag included), if it is one of the binary
    /// messages.
    pub(super) fn encoded_len(msg: &PeerMessage) -> Option<usize> {
        Some(match msg {
            PeerMessage::SignCommit { .. } => 1 + 8 + 2,
            PeerMessage::SignCommitted { commitments, .. } => {
                let (count, len) =
                    crate::with_suite!(commitments, S, c => (c.len(), commitments_len::<S>()));
                1 + 8 + 1 + 2 + count * len
            }
            PeerMessage::SignRound2 {
                suite,
                proposal: p,
                commitments,
                ..
            } => {
                1 + 8
                    + 1
                    + (4 + p.request_der.len())
                    + 8
                    + 16
                    + (4 + p.cert_sha256.len())
                    + (4 + p.time_evidence.len())
                    + 2
                    + commitments.len() * (2 + len_of(*suite))
            }
            PeerMessage::SignShare { .. } => 1 + 8 + 1 + 32,
            _ => return None,
        })
    }

    /// Append `msg` in binary after the version byte, if it is one of the binary
    /// messages; `false` (nothing written) otherwise.
    pub(super) fn encode(msg: &PeerMessage, out: &mut Vec<u8>) -> bool {
        match msg {
            PeerMessage::SignCommit { req, count } => {
                out.push(TAG_SIGN_COMMIT);
                out.extend_from_slice(&req.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
            }
            PeerMessage::SignCommitted { req, commitments } => {
                out.push(TAG_SIGN_COMMITTED);
                out.extend_from_slice(&req.to_be_bytes());
                out.push(commitments.suite().wire());
                crate::with_suite!(commitments, S, list => {
                    put_count(out, list.len());
                    for c in list {
                        out.extend_from_slice(c.encoded());
                    }
                });
            }
            PeerMessage::SignRound2 {
                req,
                suite,
                proposal: p,
                commitments,
            } => {
                out.push(TAG_SIGN_ROUND2);
                out.extend_from_slice(&req.to_be_bytes());
                out.push(suite.wire());
                put_bytes(out, &p.request_der);
                out.extend_from_slice(&p.gen_time_unix_millis.to_be_bytes());
                out.extend_from_slice(&p.serial.0);
                put_bytes(out, &p.cert_sha256);
                put_bytes(out, &p.time_evidence);
                put_count(out, commitments.len());
                let len = len_of(*suite);
                for (index, bytes) in commitments {
                    out.extend_from_slice(&index.to_be_bytes());
                    out.extend_from_slice(bytes.get(..len).unwrap_or(bytes));
                }
            }
            PeerMessage::SignShare { req, share } => {
                out.push(TAG_SIGN_SHARE);
                out.extend_from_slice(&req.to_be_bytes());
                out.push(share.suite().wire());
                out.extend_from_slice(&crate::with_suite!(share, S, s => s.serialize()));
            }
            _ => return false,
        }
        true
    }

    /// A list's length as u16 (the lists are bounded far below; a longer one is cut
    /// off by the decoder's limit, never silently wrapped).
    fn put_count(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
    }

    /// A byte string with a u32 length prefix (frames are at most 1 MiB).
    fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// A cursor over a message's body.
    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], BinaryError> {
            if n > self.0.len() {
                return Err(BinaryError::Truncated {
                    field,
                    needed: n - self.0.len(),
                });
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BinaryError> {
            let mut out = [0u8; N];
            out.copy_from_slice(self.take(N, field)?);
            Ok(out)
        }
        fn suite(&mut self) -> Result<Ciphersuite, BinaryError> {
            let [b] = self.array::<1>("suite")?;
            Ciphersuite::from_wire(b).ok_or(BinaryError::Suite(b))
        }
        fn u16(&mut self, field: &'static str) -> Result<u16, BinaryError> {
            self.array(field).map(u16::from_be_bytes)
        }
        fn u64(&mut self, field: &'static str) -> Result<u64, BinaryError> {
            self.array(field).map(u64::from_be_bytes)
        }
        fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, BinaryError> {
            let len = self.array(field).map(u32::from_be_bytes)?;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            self.take(len, field).map(<[u8]>::to_vec)
        }
        fn count(&mut self, field: &'static str, max: usize) -> Result<usize, BinaryError> {
            let got = usize::from(self.u16(field)?);
            if got > max {
                return Err(BinaryError::TooMany { field, got, max });
            }
            Ok(got)
        }
        fn end(self) -> Result<(), BinaryError> {
            match self.0.len() {
                0 => Ok(()),
                n => Err(BinaryError::Trailing(n)),
            }
        }
    }

    /// Decode the body of the binary message with `tag`.
    pub(super) fn decode(tag: u8, body: &[u8]) -> Result<PeerMessage, BinaryError> {
        let mut r = Reader(body);
        let msg = match tag {
            TAG_SIGN_COMMIT => PeerMessage::SignCommit {
                req: r.u64("req")?,
                count: r.u16("count")?,
            },
            TAG_SIGN_COMMITTED => {
                let req = r.u64("req")?;
                let suite = r.suite()?;
                let n = r.count("commitments", MAX_COMMIT_BATCH)?;
                let commitments: CommitmentBatch = match suite {
                    Ciphersuite::Secp256k1 => BySuite::Secp256k1(commitments_of(&mut r, n)?),
                    Ciphersuite::Ed25519 => BySuite::Ed25519(commitments_of(&mut r, n)?),
                };
                PeerMessage::SignCommitted { req, commitments }
            }
            TAG_SIGN_ROUND2 => {
                let req = r.u64("req")?;
                let suite = r.suite()?;
                let proposal = SigningProposal {
                    request_der: r.bytes("request_der")?,
                    gen_time_unix_millis: r.u64("gen_time")?,
                    serial: Serial(r.array("serial")?),
                    cert_sha256: r.bytes("cert_sha256")?,
                    time_evidence: r.bytes("time_evidence")?,
                };
                let n = r.count("commitments", MAX_SIGNING_SET)?;
                let len = len_of(suite);
                let mut commitments = Vec::with_capacity(n);
                for _ in 0..n {
                    let index = r.u16("index")?;
                    let mut key: CommitmentKey = [0u8; COMMITMENTS_LEN];
                    if let Some(dst) = key.get_mut(..len) {
                        dst.copy_from_slice(r.take(len, "commitment")?);
                    }
                    commitments.push((index, key));
                }
                PeerMessage::SignRound2 {
                    req,
                    suite,
                    proposal,
                    commitments,
                }
            }
            TAG_SIGN_SHARE => {
                let req = r.u64("req")?;
                let suite = r.suite()?;
                let bytes = r.array::<32>("share")?;
                let share: Share = crate::for_suite!(suite, S => {
                    frost_core::round2::SignatureShare::<S>::deserialize(&bytes)
                        .ok()
                        .and_then(BySuite::new)
                        .ok_or(BinaryError::Share)?
                });
                PeerMessage::SignShare { req, share }
            }
            other => return Err(BinaryError::UnknownTag(other)),
        };
        r.end()?;
        Ok(msg)
    }
}

/// A frame's first bytes are read into a buffer of at most this size; a larger frame
/// gets its full buffer only once these have arrived (a peer that sends a length and
/// then nothing costs at most this much memory).
pub const INITIAL_READ: usize = 16 * 1024;

/// Frames before admission (`Hello`, `Attest`: a report and its certificates, a few
/// KiB) are at most this large: an unauthenticated connection cannot make the node
/// hold a 1 MiB buffer.
pub const MAX_FRAME_BEFORE_ADMISSION: usize = 64 * 1024;

/// Read one frame.
pub async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> Result<PeerMessage, FrameError> {
    read_frame_max(r, MAX_FRAME).await
}

/// Read one frame of at most `max` bytes (and at most [`MAX_FRAME`]).
pub async fn read_frame_max<R: AsyncReadExt + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<PeerMessage, FrameError> {
    let len = r.read_u32().await? as usize;
    if len > max.min(MAX_FRAME) {
        return Err(FrameError::TooLarge(len));
    }
    // Zeroized on drop: the frame may carry a secret share, delta or sigma.
    let first = len.min(INITIAL_READ);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; first]);
    r.read_exact(&mut buf).await?;
    if len > first {
        let mut full = zeroize::Zeroizing::new(vec![0u8; len]);
        let (head, rest) = full.split_at_mut(first);
        head.copy_from_slice(&buf);
        r.read_exact(rest).await?;
        buf = full; // the first buffer is zeroized as it drops
    }
    decode(&buf)
}

/// Write one frame.
pub async fn write_frame<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    msg: &PeerMessage,
) -> Result<(), FrameError> {
    write_frames(w, std::slice::from_ref(msg)).await
}

/// Write `msgs` as consecutive frames with one write and one flush: on a TLS stream,
/// one record for all of them instead of two per frame (length, then payload).
pub async fn write_frames<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    msgs: &[PeerMessage],
) -> Result<(), FrameError> {
    let payloads = msgs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
    // Zeroized on drop (the frames may carry secrets), and allocated once.
    let total = payloads.iter().map(|p| 4 + p.len()).sum();
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(total));
    for payload in &payloads {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l as usize <= MAX_FRAME)
            .ok_or(FrameError::TooLarge(payload.len()))?;
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(payload);
    }
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's internally tagged enums buffer values and cannot carry u128 or
    /// integer map keys; every refusal must survive the envelope.
    #[test]
    fn every_refusal_round_trips() {
        use crate::tsp::request::Rejection;
        let refusals = [
            Refusal::Request(Rejection::BadImprintLength {
                alg: "sha256".into(),
                got: 1,
                want: 32,
            }),
            Refusal::GenTimeOutOfTolerance {
                proposed: "x".into(),
                skew_ms: u64::MAX,
                tolerance_ms: 1000,
            },
            Refusal::TooFewSigners {
                got: 1,
                threshold: 3,
            },
            Refusal::UnknownCommitment,
        ];
        for refusal in refusals {
            let msg = PeerMessage::SignRefused {
                req: 7,
                refusal: refusal.clone(),
            };
            match decode(&encode(&msg).unwrap()).unwrap() {
                PeerMessage::SignRefused {
                    req: 7,
                    refusal: back,
                } => assert_eq!(back, refusal),
                other => panic!("{other:?}"),
            }
        }
    }

    /// The frame of a `DkgAbort` whose reason is `size` bytes long.
    async fn abort_frame(size: usize) -> Vec<u8> {
        let msg = PeerMessage::DkgAbort {
            epoch: "e".into(),
            reason: "x".repeat(size),
            culprit: None,
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, &msg).await.unwrap();
        wire
    }

    #[tokio::test]
    async fn frames_small_and_large_round_trip_and_truncation_is_an_error() {
        for size in [10usize, INITIAL_READ - 100, INITIAL_READ * 3] {
            let wire = abort_frame(size).await;
            match read_frame(&mut wire.as_slice()).await.unwrap() {
                PeerMessage::DkgAbort { reason, .. } => assert_eq!(reason.len(), size),
                other => panic!("{other:?}"),
            }
            // The twin: the same frame cut short is an I/O error, never a panic.
            let cut = &wire[..wire.len() - 1];
            assert!(matches!(
                read_frame(&mut &cut[..]).await,
                Err(FrameError::Io(_))
            ));
        }
        // A declared length over the limit is refused before anything is allocated.
        let mut over = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        over.extend_from_slice(&[VERSION, TAG_JSON]);
        assert!(matches!(
            read_frame(&mut over.as_slice()).await,
            Err(FrameError::TooLarge(_))
        ));
        // Before admission the limit is 64 KiB: a frame above it is refused, one below
        // it (the twin) is read.
        let wire = abort_frame(MAX_FRAME_BEFORE_ADMISSION).await;
        assert!(matches!(
            read_frame_max(&mut wire.as_slice(), MAX_FRAME_BEFORE_ADMISSION).await,
            Err(FrameError::TooLarge(_))
        ));
        assert!(read_frame(&mut wire.as_slice()).await.is_ok());
    }

    /// A JSON frame: version, tag, text.
    fn json(text: &str) -> Vec<u8> {
        let mut out = vec![VERSION, TAG_JSON];
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn strict_decoding() {
        let hello = PeerMessage::Hello {
            index: 2,
            nonce: "00".repeat(32),
            group_key: None,
        };
        let bytes = encode(&hello).unwrap();
        assert_eq!(&bytes[..2], &[VERSION, TAG_JSON]);
        assert!(matches!(
            decode(&bytes).unwrap(),
            PeerMessage::Hello { index: 2, .. }
        ));
        assert!(decode(&json(
            r#"{"type":"hello","index":2,"nonce":"00","group_key":null}"#
        ))
        .is_ok());
        assert!(decode(&json(
            r#"{"type":"hello","index":2,"nonce":"00","group_key":null,"extra":1}"#
        ))
        .is_err());
        let mut old = json(r#"{"type":"hello","index":2,"nonce":"00","group_key":null}"#);
        old[0] = 3;
        assert!(matches!(decode(&old), Err(FrameError::Version(3))));
        // A version-3 frame (a JSON envelope) is not taken for anything.
        assert!(decode(br#"{"v":3,"msg":{"type":"ping","group_key":null}}"#).is_err());
        assert!(matches!(decode(&[VERSION]), Err(FrameError::Empty)));
        assert!(decode(b"\xff\xfe").is_err());
        // The per-token messages have one encoding: binary, never JSON.
        assert!(decode(&json(r#"{"type":"sign_commit","req":1,"count":2}"#)).is_err());
        assert!(decode(&json(r#"{"type":"sign_share","req":1,"share":"00"}"#)).is_err());
    }

    /// Real commitments and a real share from a dealer key (3 of 5), of suite `S`.
    fn signing_material_of<S: crate::threshold::suite::Suite>(
    ) -> (Vec<EncodedCommitments<S>>, SignatureShare<S>) {
        let mut rng = rand_core::OsRng;
        let (shares, _) = frost_core::keys::generate_with_dealer::<S, _>(
            5,
            3,
            frost_core::keys::IdentifierList::Default,
            &mut rng,
        )
        .unwrap();
        let packages: Vec<frost_core::keys::KeyPackage<S>> = shares
            .into_values()
            .map(|s| frost_core::keys::KeyPackage::try_from(s).unwrap())
            .collect();
        let mut nonces = Vec::new();
        let mut map = std::collections::BTreeMap::new();
        for k in packages.iter().take(3) {
            let (n, c) = frost_core::round1::commit(k.signing_share(), &mut rng);
            nonces.push(n);
            map.insert(*k.identifier(), c);
        }
        let package = frost_core::SigningPackage::new(map.clone(), b"m");
        let share = frost_core::round2::sign(&package, &nonces[0], &packages[0]).unwrap();
        let encoded = map
            .values()
            .map(|c| EncodedCommitments::encode(*c).unwrap())
            .collect();
        (encoded, share)
    }

    /// [`signing_material_of`] for secp256k1.
    fn signing_material() -> (Vec<EncodedCommitments>, SignatureShare<Secp256K1Sha256>) {
        signing_material_of::<Secp256K1Sha256>()
    }

    fn binary_messages() -> Vec<PeerMessage> {
        let mut all = binary_messages_of::<Secp256K1Sha256>();
        all.extend(binary_messages_of::<Ed25519Sha512>());
        all
    }

    fn binary_messages_of<S: crate::threshold::suite::Suite>() -> Vec<PeerMessage> {
        let (commitments, share) = signing_material_of::<S>();
        vec![
            PeerMessage::SignCommit { req: 1, count: 64 },
            PeerMessage::SignCommitted {
                req: u64::MAX,
                commitments: BySuite::new(commitments.clone()).unwrap(),
            },
            PeerMessage::SignCommitted {
                req: 0,
                commitments: BySuite::new(Vec::<EncodedCommitments<S>>::new()).unwrap(),
            },
            PeerMessage::SignRound2 {
                req: 9,
                suite: S::SUITE,
                proposal: SigningProposal {
                    request_der: vec![0x30, 3, 2, 1, 1],
                    gen_time_unix_millis: 1_767_225_600_123,
                    serial: crate::tsp::token::Serial([7; 16]),
                    cert_sha256: vec![0x5c; 32],
                    time_evidence: vec![1; 700],
                },
                commitments: commitments
                    .iter()
                    .zip(1u16..)
                    .map(|(c, i)| (i, *c.bytes()))
                    .collect(),
            },
            PeerMessage::SignShare {
                req: 3,
                share: BySuite::new(share).unwrap(),
            },
        ]
    }

    /// The canonical bytes, for comparing messages (which have no `PartialEq`).
    fn canonical(m: &PeerMessage) -> Vec<u8> {
        encode(m).unwrap().to_vec()
    }

    #[test]
    fn every_binary_message_round_trips_and_every_cut_is_a_typed_error() {
        for msg in binary_messages() {
            let bytes = encode(&msg).unwrap();
            assert_ne!(bytes[1], TAG_JSON, "{}", msg.kind());
            assert_eq!(bytes.len(), 1 + binary::encoded_len(&msg).unwrap());
            let back = decode(&bytes).unwrap();
            assert_eq!(canonical(&back), bytes.to_vec());
            // The failing twins: every strict prefix, and one byte more.
            for cut in 2..bytes.len() {
                assert!(
                    matches!(
                        decode(&bytes[..cut]),
                        Err(FrameError::Binary(binary::BinaryError::Truncated { .. }))
                    ),
                    "{} cut at {cut}",
                    msg.kind()
                );
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(matches!(
                decode(&longer),
                Err(FrameError::Binary(binary::BinaryError::Trailing(1)))
            ));
        }
    }

    #[test]
    fn binary_decoding_refuses_bad_points_shares_tags_and_counts() {
        let (commitments, share) = signing_material();
        // A commitment whose first point is not on the curve.
        let committed = PeerMessage::SignCommitted {
            req: 1,
            commitments: BySuite::Secp256k1(commitments.clone()),
        };
        let bytes = encode(&committed).unwrap().to_vec();
        let first_point = 1 + 1 + 8 + 1 + 2;
        // The suite byte: an unknown one is refused; Ed25519 reads 64-byte commitments,
        // so the same body is then the wrong length (its twin, secp256k1, decodes).
        let mut unknown = bytes.clone();
        unknown[10] = 9;
        assert!(matches!(
            decode(&unknown),
            Err(FrameError::Binary(binary::BinaryError::Suite(9)))
        ));
        let mut other = bytes.clone();
        other[10] = Ciphersuite::Ed25519.wire();
        assert!(decode(&other).is_err());
        assert!(decode(&bytes).is_ok());
        for (tag, x) in [(0x07, None), (0x05, None), (0x02, Some([0xff; 32]))] {
            // 7: no SEC1 tag; 5: the compact form, a second encoding of a point;
            // x = 2^256 - 1: not a field element.
            let mut bad = bytes.clone();
            bad[first_point] = tag;
            if let Some(x) = x {
                bad[first_point + 1..first_point + 33].copy_from_slice(&x);
            }
            assert!(matches!(
                decode(&bad),
                Err(FrameError::Binary(binary::BinaryError::Commitment(0)))
            ));
        }
        // A share that is not a scalar (all ones is above the group order).
        let mut bytes = encode(&PeerMessage::SignShare {
            req: 1,
            share: BySuite::Secp256k1(share),
        })
        .unwrap()
        .to_vec();
        let len = bytes.len();
        bytes[len - 32..].fill(0xff);
        assert!(matches!(
            decode(&bytes),
            Err(FrameError::Binary(binary::BinaryError::Share))
        ));
        // An unknown tag.
        assert!(matches!(
            decode(&[VERSION, 0x7f, 0, 0]),
            Err(FrameError::Binary(binary::BinaryError::UnknownTag(0x7f)))
        ));
        // More commitments announced than a batch may hold: refused before reading them.
        let mut over = vec![VERSION, TAG_SIGN_COMMITTED];
        over.extend_from_slice(&1u64.to_be_bytes());
        over.push(Ciphersuite::Secp256k1.wire());
        over.extend_from_slice(
            &u16::try_from(crate::threshold::signer::MAX_COMMIT_BATCH + 1)
                .unwrap()
                .to_be_bytes(),
        );
        assert!(matches!(
            decode(&over),
            Err(FrameError::Binary(binary::BinaryError::TooMany { .. }))
        ));
        // A byte string whose length runs past the end.
        let mut long = vec![VERSION, TAG_SIGN_ROUND2];
        long.extend_from_slice(&1u64.to_be_bytes());
        long.push(Ciphersuite::Ed25519.wire());
        long.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode(&long),
            Err(FrameError::Binary(binary::BinaryError::Truncated {
                field: "request_der",
                ..
            }))
        ));
    }

    #[tokio::test]
    async fn frames_written_together_read_back_one_by_one() {
        let mut msgs = binary_messages();
        msgs.push(PeerMessage::Ping { group_key: None });
        let mut wire = Vec::new();
        write_frames(&mut wire, &msgs).await.unwrap();
        let mut r = wire.as_slice();
        for m in &msgs {
            let back = read_frame(&mut r).await.unwrap();
            assert_eq!(canonical(&back), canonical(m));
        }
        assert!(r.is_empty());
    }
}
