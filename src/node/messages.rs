//! Peer messages: versioned serde_json envelopes, strictly decoded, one per
//! length-prefixed frame (4-byte big-endian length, at most [`MAX_FRAME`]).

use crate::attestation::Evidence;
use crate::threshold::frost::keys::dkg;
use crate::threshold::frost::round1::SigningCommitments;
use crate::threshold::frost::round2::SignatureShare;
use crate::threshold::signer::{Refusal, SigningProposal};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Protocol version carried in every envelope.
pub const VERSION: u32 = 3;
/// Largest frame accepted.
pub const MAX_FRAME: usize = 1 << 20;

/// The envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Must equal [`VERSION`].
    pub v: u32,
    /// The message.
    pub msg: PeerMessage,
}

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
        /// The package.
        package: dkg::round1::Package,
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
        /// The package (secret: sent to exactly one peer).
        package: dkg::round2::Package,
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
    /// coordinator ahead of the requests they will sign (RFC 9591 §5.1).
    SignCommit {
        /// Request id, echoed in the answer.
        req: u64,
        /// How many (1 to `signer::MAX_COMMIT_BATCH`).
        count: u16,
    },
    /// Signer → coordinator: the commitments.
    SignCommitted {
        /// Request id.
        req: u64,
        /// Commitments to nonces the signer keeps for this coordinator, each single use.
        commitments: Vec<SigningCommitments>,
    },
    /// Coordinator → signer: what to sign (structure, never bytes) and the signing set.
    SignRound2 {
        /// Request id.
        req: u64,
        /// The token proposal.
        proposal: SigningProposal,
        /// (index, commitments) of every signer in this signing.
        commitments: Vec<(u16, SigningCommitments)>,
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
        /// (index, commitments) of every signer in this signing.
        commitments: Vec<(u16, SigningCommitments)>,
    },
    /// Signer → coordinator: its signature share (RFC 9591 §5.2).
    SignShare {
        /// Request id.
        req: u64,
        /// The share.
        share: SignatureShare,
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
        /// The group's public key package (verifying shares).
        public: crate::threshold::frost::keys::PublicKeyPackage,
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
    /// The repair delta it carries.
    pub fn delta(
        &self,
    ) -> Result<crate::threshold::frost::keys::repairable::Delta, crate::threshold::frost::Error>
    {
        crate::threshold::frost::keys::repairable::Delta::deserialize(&self.0)
    }
    /// The repair sigma it carries.
    pub fn sigma(
        &self,
    ) -> Result<crate::threshold::frost::keys::repairable::Sigma, crate::threshold::frost::Error>
    {
        crate::threshold::frost::keys::repairable::Sigma::deserialize(&self.0)
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

/// The envelope as it is encoded, borrowing the message (no copy of its secrets).
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    v: u32,
    msg: &'a PeerMessage,
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
    /// Not a valid envelope.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Unsupported version.
    #[error("unsupported protocol version {0}")]
    Version(u32),
}

/// Decode one envelope from bytes (strict). The caller's buffer is its own to zeroize
/// (`read_frame` does).
pub fn decode(bytes: &[u8]) -> Result<PeerMessage, FrameError> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if env.v != VERSION {
        return Err(FrameError::Version(env.v));
    }
    Ok(env.msg)
}

/// Encode one envelope, into a buffer zeroized on drop (frames carry DKG round-2
/// shares and repair deltas and sigmas).
pub fn encode(msg: &PeerMessage) -> Result<zeroize::Zeroizing<Vec<u8>>, FrameError> {
    serde_json::to_vec(&EnvelopeRef { v: VERSION, msg })
        .map(zeroize::Zeroizing::new)
        .map_err(|e| FrameError::Malformed(e.to_string()))
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
    let bytes = encode(msg)?;
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge(bytes.len()))?;
    w.write_u32(len).await?;
    w.write_all(&bytes).await?;
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

    #[tokio::test]
    async fn frames_small_and_large_round_trip_and_truncation_is_an_error() {
        for size in [10usize, INITIAL_READ - 100, INITIAL_READ * 3] {
            let msg = PeerMessage::DkgAbort {
                epoch: "e".into(),
                reason: "x".repeat(size),
                culprit: None,
            };
            let mut wire = Vec::new();
            write_frame(&mut wire, &msg).await.unwrap();
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
        over.extend_from_slice(b"{}");
        assert!(matches!(
            read_frame(&mut over.as_slice()).await,
            Err(FrameError::TooLarge(_))
        ));
        // Before admission the limit is 64 KiB: a frame above it is refused, one below
        // it (the twin) is read.
        let big = PeerMessage::DkgAbort {
            epoch: "e".into(),
            reason: "x".repeat(MAX_FRAME_BEFORE_ADMISSION),
            culprit: None,
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, &big).await.unwrap();
        assert!(matches!(
            read_frame_max(&mut wire.as_slice(), MAX_FRAME_BEFORE_ADMISSION).await,
            Err(FrameError::TooLarge(_))
        ));
        assert!(read_frame(&mut wire.as_slice()).await.is_ok());
    }

    #[test]
    fn strict_decoding() {
        let hello = PeerMessage::Hello {
            index: 2,
            nonce: "00".repeat(32),
            group_key: None,
        };
        let bytes = encode(&hello).unwrap();
        assert!(matches!(
            decode(&bytes).unwrap(),
            PeerMessage::Hello { index: 2, .. }
        ));
        assert!(decode(
            br#"{"v":2,"msg":{"type":"hello","index":2,"nonce":"00","group_key":null,"extra":1}}"#
        )
        .is_err());
        assert!(decode(
            br#"{"v":2,"msg":{"type":"hello","index":2,"nonce":"00","group_key":null},"x":0}"#
        )
        .is_err());
        assert!(matches!(
            decode(br#"{"v":1,"msg":{"type":"hello","index":2,"nonce":"00","group_key":null}}"#),
            Err(FrameError::Version(1))
        ));
        assert!(decode(b"\xff\xfe").is_err());
    }
}
