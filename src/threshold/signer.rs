//! A share holder that checks what it signs (DESIGN §2.6, RFC 9591 §5.1–5.2).
//!
//! The signer never receives bytes to sign. It receives a [`SigningProposal`]:
//! the client's original `TimeStampReq` DER, the proposed genTime and serial, and
//! the hash of the certificate the token will name. It re-parses the request with
//! its own profile, checks genTime (against the proposal's time evidence under
//! [`TimeRule::Evidence`], with its own clock only as a guard against future-dated
//! proposals; against its own clock under [`TimeRule::OwnClock`], the in-process
//! development TSA), compares the certificate with the one it holds, builds TSTInfo
//! and signed attributes itself, and only then computes its signature share over that
//! message.

use crate::clock::Clock;
use crate::threshold::keys::{GroupKey, KeyShare};
use crate::threshold::suite::{Secp256K1Sha256, Suite};
use crate::time::evidence::{self, TimeEvidence, TimePolicy};
use crate::tsp::request::{self, Rejection};
use crate::tsp::time::GenTime;
use crate::tsp::token::{self, CertIdentity, Serial, TimeBacking};
use crate::tsp::TsaProfile;
use core::fmt;
use frost_core::round1::SigningCommitments;
use frost_core::round2::SignatureShare;
use frost_core::Identifier;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

/// Most outstanding (committed, unused) nonce pairs a signer keeps for one
/// coordinator; beyond it the oldest are dropped (which only makes their
/// commitments unusable).
pub const MAX_OUTSTANDING_NONCES: usize = 1024;

/// Most commitments one batch may ask for.
pub const MAX_COMMIT_BATCH: usize = 256;

/// Whom a nonce pair was committed to: a peer coordinator's node index, or
/// [`Owner::Local`] for this signer's own node (and in-process use). A
/// commitment can be used only by the coordinator it was issued to, and only
/// once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The signer's own node.
    Local,
    /// The peer with this node index.
    Peer(u16),
}

/// Length of the longest [`EncodedCommitments`]: two SEC1-compressed secp256k1 points
/// (66 bytes). Two Ed25519 points take 64; in a [`CommitmentKey`] they are followed
/// by two zero bytes, which never go on the wire.
pub const COMMITMENTS_LEN: usize = 66;

/// Encoded commitments in a fixed-size array (the nonce store's key): the suite's
/// `2 × ELEMENT_LEN` bytes, then zeros.
pub type CommitmentKey = [u8; COMMITMENTS_LEN];

/// The wire length of one suite's encoded commitments.
pub fn commitments_len<S: Suite>() -> usize {
    2 * S::ELEMENT_LEN
}

/// A signer's nonce commitments together with their encoding, hiding ‖ binding, each
/// in RFC 9591 §4.1's `SerializeElement` (secp256k1: SEC1 compressed; Ed25519: 32
/// bytes), computed or parsed once: every compressed secp256k1 point costs k256 a
/// field inversion to write and a square root to read, so the node keeps the bytes
/// next to the value instead of encoding again for each peer and for its nonce store
/// (issue 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedCommitments<S: Suite = Secp256K1Sha256> {
    bytes: CommitmentKey,
    value: SigningCommitments<S>,
}

impl<S: Suite> EncodedCommitments<S> {
    /// Encode `value` (two point serializations).
    pub fn encode(value: SigningCommitments<S>) -> Result<Self, frost_core::Error<S>> {
        let mut bytes = [0u8; COMMITMENTS_LEN];
        let (hiding, rest) = bytes.split_at_mut(S::ELEMENT_LEN);
        let binding = rest
            .get_mut(..S::ELEMENT_LEN)
            .ok_or(frost_core::Error::SerializationError)?;
        copy_exact::<S>(hiding, &value.hiding().serialize()?)?;
        copy_exact::<S>(binding, &value.binding().serialize()?)?;
        Ok(Self { bytes, value })
    }

    /// Parse the suite's `2 × ELEMENT_LEN` bytes (two point decodings; anything but two
    /// valid points in the suite's one accepted encoding is refused).
    pub fn decode(bytes: &[u8]) -> Result<Self, frost_core::Error<S>> {
        let n = S::ELEMENT_LEN;
        if bytes.len() != 2 * n {
            return Err(frost_core::Error::SerializationError);
        }
        let (hiding, binding) = bytes.split_at(n);
        if !S::canonical_element(hiding) || !S::canonical_element(binding) {
            return Err(frost_core::GroupError::MalformedElement.into());
        }
        let value = SigningCommitments::new(
            frost_core::round1::NonceCommitment::deserialize(hiding)?,
            frost_core::round1::NonceCommitment::deserialize(binding)?,
        );
        let mut key = [0u8; COMMITMENTS_LEN];
        copy_exact::<S>(
            key.get_mut(..2 * n)
                .ok_or(frost_core::Error::SerializationError)?,
            bytes,
        )?;
        Ok(Self { bytes: key, value })
    }

    /// Parse a [`CommitmentKey`] (its padding must be zero).
    pub fn decode_key(key: &CommitmentKey) -> Result<Self, frost_core::Error<S>> {
        let (used, pad) = key.split_at(2 * S::ELEMENT_LEN);
        if pad.iter().any(|b| *b != 0) {
            return Err(frost_core::Error::SerializationError);
        }
        Self::decode(used)
    }

    /// The encoding as the wire carries it (`2 × ELEMENT_LEN` bytes).
    pub fn encoded(&self) -> &[u8] {
        self.bytes.get(..2 * S::ELEMENT_LEN).unwrap_or(&self.bytes)
    }

    /// The encoding in a fixed-size array (zero padded).
    pub fn bytes(&self) -> &CommitmentKey {
        &self.bytes
    }

    /// The commitments.
    pub fn value(&self) -> &SigningCommitments<S> {
        &self.value
    }
}

/// `src` into `dst`, which must be exactly as long.
fn copy_exact<S: Suite>(dst: &mut [u8], src: &[u8]) -> Result<(), frost_core::Error<S>> {
    if dst.len() != src.len() {
        return Err(frost_core::Error::SerializationError);
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// Outstanding nonces of one owner, oldest first, under the encoding of their
/// commitments.
///
/// Each `SignerNonces` lives in its own box, zeroized in place when it is dropped:
/// the map only ever moves pointers when it grows or shrinks, so no rehash leaves a
/// copy of a secret nonce behind in freed memory.
struct OwnerNonces<S: Suite> {
    order: VecDeque<CommitmentKey>,
    live: HashMap<CommitmentKey, Box<SignerNonces<S>>>,
}

impl<S: Suite> Default for OwnerNonces<S> {
    fn default() -> Self {
        Self {
            order: VecDeque::new(),
            live: HashMap::new(),
        }
    }
}

impl<S: Suite> OwnerNonces<S> {
    fn insert(&mut self, key: CommitmentKey, nonces: SignerNonces<S>) {
        // Keys already used leave the front first: coordinators use commitments about
        // in the order they were issued, so `order` stays close to `live` in length.
        while self
            .order
            .front()
            .is_some_and(|k| !self.live.contains_key(k))
        {
            self.order.pop_front();
        }
        while self.live.len() >= MAX_OUTSTANDING_NONCES {
            match self.order.pop_front() {
                Some(old) => {
                    self.live.remove(&old);
                }
                None => break,
            }
        }
        // Used keys further back: compact when they dominate.
        if self.order.len() > 2 * self.live.len() + COMPACT_SLACK {
            let live = &self.live;
            self.order.retain(|k| live.contains_key(k));
        }
        self.order.push_back(key);
        self.live.insert(key, Box::new(nonces));
    }

    /// Remove the nonces under `key`; give memory back once the store has drained
    /// to a quarter of what it held (a burst of commitments must not pin its peak).
    fn take(&mut self, key: &CommitmentKey) -> Option<Box<SignerNonces<S>>> {
        let taken = self.live.remove(key)?;
        let len = self.live.len();
        if self.live.capacity() > 4 * len.max(COMPACT_SLACK) {
            self.live.shrink_to(2 * len);
            let live = &self.live;
            self.order.retain(|k| live.contains_key(k));
            self.order.shrink_to(2 * len);
        }
        Some(taken)
    }
}

/// Used keys tolerated in an owner's `order` beyond twice its live nonces, and the
/// size below which its store is not shrunk.
const COMPACT_SLACK: usize = 64;

/// What a coordinator asks signers to sign: structure, never bytes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningProposal {
    /// The client's TimeStampReq, exactly as received.
    #[serde(with = "crate::serde_hex::bytes")]
    pub request_der: Vec<u8>,
    /// Proposed genTime, milliseconds since the Unix epoch.
    pub gen_time_unix_millis: u64,
    /// Proposed serial number.
    pub serial: Serial,
    /// SHA-256 of the TSA certificate the token will reference.
    #[serde(with = "crate::serde_hex::bytes")]
    pub cert_sha256: Vec<u8>,
    /// `TimeEvidence` DER backing genTime (empty under [`TimeRule::OwnClock`]).
    #[serde(with = "crate::serde_hex::bytes")]
    pub time_evidence: Vec<u8>,
}

/// What genTime must follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeRule {
    /// Time evidence from these servers (every node): genTime and accuracy are what the
    /// evidence gives; the signer's own clock only refuses proposals wholly in its future.
    Evidence(TimePolicy),
    /// The signer's own clock within the profile's tolerance: the in-process
    /// development TSA only ([`crate::local`]); never a node.
    OwnClock,
}

/// The leaf of a request for time evidence: its MessageImprint and nonce, as a TSTInfo
/// will carry them.
pub fn time_leaf(accepted: &request::AcceptedRequest) -> Result<[u8; 32], der::Error> {
    use der::Encode;
    let imprint = accepted.message_imprint()?.to_der()?;
    let nonce = accepted.nonce().map(|n| n.to_der()).transpose()?;
    Ok(evidence::leaf(&imprint, nonce.as_deref()))
}

impl SigningProposal {
    /// The proposed genTime.
    pub fn gen_time(&self) -> Option<GenTime> {
        GenTime::from_unix_duration(Duration::from_millis(self.gen_time_unix_millis))
    }
}

/// A proposal plus the commitments of the chosen signers (the SigningPackage
/// minus the message, which each signer builds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignRequest<S: Suite = Secp256K1Sha256> {
    /// What to sign.
    pub proposal: SigningProposal,
    /// Commitments of every participant in this signing (including the recipient).
    pub commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
}

/// Why a signer refused to produce a share. Every variant is logged by the
/// coordinator with the signer's identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The client request fails this signer's own checks.
    #[error("request refused: {0}")]
    Request(Rejection),
    /// genTime differs from this signer's clock by more than the tolerance.
    #[error(
        "genTime {proposed} is {skew_ms} ms from this signer's clock (tolerance {tolerance_ms} ms)"
    )]
    GenTimeOutOfTolerance {
        /// Proposed genTime.
        proposed: String,
        /// |proposed − own clock| in milliseconds.
        skew_ms: u64,
        /// Allowed skew.
        tolerance_ms: u64,
    },
    /// genTime not representable.
    #[error("genTime out of range")]
    BadGenTime,
    /// No certificate installed yet, so no token may be signed.
    #[error("no TSA certificate installed")]
    NoCertificate,
    /// The proposal names another certificate than the one this signer holds.
    #[error("proposal names a different TSA certificate")]
    CertificateMismatch,
    /// The commitment for this signer was never issued or was already used.
    #[error("unknown or already used nonce commitment")]
    UnknownCommitment,
    /// This signer is not among the commitments.
    #[error("signer is not part of this signing")]
    NotSelected,
    /// Fewer commitments than the threshold.
    #[error("{got} commitments, threshold is {threshold}")]
    TooFewSigners {
        /// Commitments received.
        got: usize,
        /// t.
        threshold: u16,
    },
    /// Certificate key is not the group key.
    #[error("certificate key is not the group key")]
    CertificateKeyMismatch,
    /// A FROST operation failed.
    #[error("FROST: {0}")]
    Frost(String),
    /// The time evidence does not hold (malformed, a server not pinned, a reply that
    /// does not verify for this request, too few servers, disagreement).
    #[error("time evidence refused: {0}")]
    TimeEvidence(String),
    /// genTime is not what the evidence gives (earlier would be a backdated token).
    #[error("genTime {proposed_ms} ms is not the {evidence_ms} ms the time evidence gives")]
    GenTimeNotFromEvidence {
        /// Proposed genTime, Unix milliseconds.
        proposed_ms: u64,
        /// What the evidence gives.
        evidence_ms: u64,
    },
    /// The whole interval the evidence gives lies in this signer's future.
    #[error("the evidence's time interval starts {ahead_ms} ms after this signer's clock (tolerance {tolerance_ms} ms)")]
    FutureTime {
        /// Earliest time the evidence allows − own clock.
        ahead_ms: u64,
        /// Allowed.
        tolerance_ms: u64,
    },
    /// The coordinator's signing is for another ciphersuite than this signer's epoch.
    #[error("{0}")]
    Suite(String),
    /// This node holds no key share (no epoch yet, or it is a replacement awaiting
    /// repair).
    #[error("this node holds no key share")]
    NoKeyShare,
    /// A lock of this signer was poisoned by a panic elsewhere.
    #[error("signer state unavailable (a lock was poisoned)")]
    Poisoned,
    /// A commitment batch outside `1..=max`.
    #[error("a commitment batch holds 1 to {max}, not {count}")]
    BatchSize {
        /// Asked for.
        count: usize,
        /// [`MAX_COMMIT_BATCH`].
        max: usize,
    },
    /// The token content could not be built from a proposal that passed the checks.
    #[error("token content: {0}")]
    Content(String),
    /// The CSR is not one this signer's epoch signs.
    #[error("CSR refused: {0}")]
    Csr(CsrRefusal),
}

/// Why a signer does not sign a certificate request for its epoch's group key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CsrRefusal {
    /// The evidence bundle does not parse.
    #[error("evidence bundle: {0}")]
    Bundle(String),
    /// Another epoch, ciphersuite, group key or transcript than this signer's.
    #[error("the CSR is not for this node's key epoch")]
    OtherEpoch,
    /// Another n, t or roster than this signer's epoch.
    #[error("the CSR's bundle names another n, t or roster than this node's epoch")]
    OtherRoster,
    /// Another launch measurement than this signer's.
    #[error("the CSR names another launch measurement")]
    OtherMeasurement,
    /// The CA root and subject of the request (its issuance pin) do not hold, or
    /// another pin is fixed for this epoch.
    #[error("issuance pin: {0}")]
    Pin(String),
    /// The request info could not be built.
    #[error("CSR: {0}")]
    Build(String),
}

/// Single-use signing nonces (RFC 9591 §5.1). Not `Clone`, not serializable;
/// consumed by value when signing; zeroized on drop (frost's `SigningNonces`).
pub struct SignerNonces<S: Suite = Secp256K1Sha256>(frost_core::round1::SigningNonces<S>);

impl<S: Suite> SignerNonces<S> {
    /// Wrap frost nonces (from `round1::commit`, or fixed test-vector nonces).
    pub fn new(inner: frost_core::round1::SigningNonces<S>) -> Self {
        Self(inner)
    }
    /// The public commitments to these nonces.
    pub fn commitments(&self) -> SigningCommitments<S> {
        *self.0.commitments()
    }
}

impl<S: Suite> fmt::Debug for SignerNonces<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignerNonces(<redacted>)")
    }
}

/// RFC 9591 §5.1 `commit`: fresh single-use nonces for `share` and their public commitments.
pub fn commit<S: Suite>(
    share: &KeyShare<S>,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> (SignerNonces<S>, SigningCommitments<S>) {
    let (nonces, commitments) = frost_core::round1::commit(share.package().signing_share(), rng);
    (SignerNonces::new(nonces), commitments)
}

/// RFC 9591 §5.2 `sign`: a signature share over `message` with `nonces`, which are
/// consumed. The single code path for every share frostamp produces.
pub fn sign_share<S: Suite>(
    share: &KeyShare<S>,
    nonces: impl std::borrow::Borrow<SignerNonces<S>>,
    commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
    message: &[u8],
) -> Result<SignatureShare<S>, frost_core::Error<S>> {
    let package = frost_core::SigningPackage::new(commitments, message);
    frost_core::round2::sign(&package, &nonces.borrow().0, share.package())
}

/// One share holder.
pub struct Signer<C, S: Suite = Secp256K1Sha256> {
    share: KeyShare<S>,
    group: GroupKey<S>,
    profile: TsaProfile,
    cert: std::sync::RwLock<Option<CertIdentity>>,
    clock: C,
    time: TimeRule,
    /// Replies already checked, by (root, replies) digest: every request of a batch
    /// carries the same replies, so each signer verifies their signatures once per batch.
    checked_replies: Mutex<VecDeque<([u8; 32], evidence::TimeClaim)>>,
    nonces: Mutex<HashMap<Owner, OwnerNonces<S>>>,
}

/// How many batches' checked replies a signer remembers.
const CHECKED_REPLIES_KEPT: usize = 64;

impl<C, S: Suite> fmt::Debug for Signer<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl<C: Clock, S: Suite> Signer<C, S> {
    /// A signer for `share` of `group`, checking proposals against `profile`, the
    /// time rule and `clock`.
    pub fn new(
        share: KeyShare<S>,
        group: GroupKey<S>,
        profile: TsaProfile,
        clock: C,
        time: TimeRule,
    ) -> Self {
        Self {
            share,
            group,
            profile,
            cert: std::sync::RwLock::new(None),
            clock,
            time,
            checked_replies: Mutex::new(VecDeque::new()),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The key package, for share repair (RTS step 1) inside this crate only.
    pub(crate) fn key_package(&self) -> &frost_core::keys::KeyPackage<S> {
        self.share.package()
    }

    /// This signer's identifier.
    pub fn identifier(&self) -> Identifier<S> {
        self.share.identifier()
    }

    /// The group key.
    pub fn group(&self) -> &GroupKey<S> {
        &self.group
    }

    /// Install the TSA certificate after checking that its key is the group key, in
    /// this suite's key type.
    pub fn install_certificate(&self, cert: CertIdentity) -> Result<(), Refusal> {
        let spki = &cert.certificate().tbs_certificate.subject_public_key_info;
        match S::verifying_key_from_spki(spki) {
            Some(k) if &k == self.group.verifying_key() => {}
            _ => return Err(Refusal::CertificateKeyMismatch),
        }
        *self.cert.write().map_err(|_| Refusal::Poisoned)? = Some(cert);
        Ok(())
    }

    /// RFC 9591 §5.1 `commit`: fresh nonces for this signer's own node, kept
    /// here until used once.
    pub fn commit(
        &self,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<SigningCommitments<S>, Refusal> {
        self.commit_encoded(rng).map(|c| c.value)
    }

    /// [`Signer::commit`], with the commitments' encoding.
    pub fn commit_encoded(
        &self,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<EncodedCommitments<S>, Refusal> {
        let mut batch = self.commit_batch_encoded(Owner::Local, 1, rng)?;
        batch.pop().ok_or(Refusal::BatchSize {
            count: 0,
            max: MAX_COMMIT_BATCH,
        })
    }

    /// `count` fresh nonce pairs committed to `owner` (generated ahead of the
    /// requests they will sign); each usable once, by `owner` only.
    pub fn commit_batch(
        &self,
        owner: Owner,
        count: usize,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<SigningCommitments<S>>, Refusal> {
        self.commit_batch_encoded(owner, count, rng)
            .map(|b| b.into_iter().map(|c| c.value).collect())
    }

    /// [`Signer::commit_batch`], with the commitments' encoding (which is also the key
    /// of their nonces in this signer's store: each commitment is encoded once).
    pub fn commit_batch_encoded(
        &self,
        owner: Owner,
        count: usize,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Vec<EncodedCommitments<S>>, Refusal> {
        if count == 0 || count > MAX_COMMIT_BATCH {
            return Err(Refusal::BatchSize {
                count,
                max: MAX_COMMIT_BATCH,
            });
        }
        let mut fresh = Vec::with_capacity(count);
        for _ in 0..count {
            let (nonces, commitments) = commit(&self.share, rng);
            let encoded = EncodedCommitments::encode(commitments)
                .map_err(|e| Refusal::Frost(e.to_string()))?;
            fresh.push((nonces, encoded));
        }
        let mut store = self.nonces.lock().map_err(|_| Refusal::Poisoned)?;
        let mine = store.entry(owner).or_default();
        Ok(fresh
            .into_iter()
            .map(|(nonces, encoded)| {
                mine.insert(encoded.bytes, nonces);
                encoded
            })
            .collect())
    }

    /// Drop every nonce committed to `owner` (its connection ended: a new
    /// incarnation of that node starts with nothing it could replay).
    pub fn forget(&self, owner: Owner) {
        if let Ok(mut store) = self.nonces.lock() {
            store.remove(&owner);
        }
    }

    /// Take the nonces behind this signer's commitment in `commitments`, if they
    /// were issued to `owner` and not used yet.
    fn take_nonces(
        &self,
        owner: Owner,
        commitments: &BTreeMap<Identifier<S>, SigningCommitments<S>>,
    ) -> Result<Box<SignerNonces<S>>, Refusal> {
        let own = commitments
            .get(&self.identifier())
            .ok_or(Refusal::NotSelected)?;
        let key = EncodedCommitments::encode(*own).map_err(|e| Refusal::Frost(e.to_string()))?;
        self.take_nonces_by_key(owner, key.bytes())
    }

    /// Take the nonces whose commitments encode to `key`, if they were issued to
    /// `owner` and not used yet.
    fn take_nonces_by_key(
        &self,
        owner: Owner,
        key: &CommitmentKey,
    ) -> Result<Box<SignerNonces<S>>, Refusal> {
        self.nonces
            .lock()
            .map_err(|_| Refusal::Poisoned)?
            .get_mut(&owner)
            .and_then(|o| o.take(key))
            .ok_or(Refusal::UnknownCommitment)
    }

    /// [`Signer::sign_for`] with the signing set as it travels between nodes: (node
    /// index, encoded commitments) of every participant. This signer's own entry is
    /// looked up by its bytes and never decoded (its nonces carry the commitments);
    /// the others are decoded once. An index listed twice is refused.
    pub fn sign_encoded(
        &self,
        owner: Owner,
        proposal: &SigningProposal,
        list: &[(u16, CommitmentKey)],
    ) -> Result<SignatureShare<S>, Refusal> {
        let me = self.identifier();
        let mut own = None;
        let mut others = Vec::with_capacity(list.len());
        for (index, bytes) in list {
            let id = Identifier::try_from(*index).map_err(|e| Refusal::Frost(e.to_string()))?;
            if id == me {
                if own.replace(bytes).is_some() {
                    return Err(Refusal::Frost(format!("index {index} listed twice")));
                }
            } else {
                others.push((id, bytes));
            }
        }
        let own = own.ok_or(Refusal::NotSelected)?;
        let nonces = self.take_nonces_by_key(owner, own)?;
        let mut commitments = BTreeMap::new();
        commitments.insert(me, nonces.commitments());
        for (id, bytes) in others {
            let c = EncodedCommitments::<S>::decode_key(bytes)
                .map_err(|e| Refusal::Frost(e.to_string()))?;
            if commitments.insert(id, c.value).is_some() {
                return Err(Refusal::Frost("an index listed twice".into()));
            }
        }
        self.sign_with_nonces(nonces, proposal, commitments)
    }

    /// [`Signer::sign_for`] for a coordinator that holds its own commitments encoded
    /// (its node: `own` is this signer's entry of `commitments`, issued to `owner`).
    pub fn sign_with_own(
        &self,
        owner: Owner,
        proposal: &SigningProposal,
        own: &EncodedCommitments<S>,
        commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
    ) -> Result<SignatureShare<S>, Refusal> {
        if commitments.get(&self.identifier()) != Some(own.value()) {
            return Err(Refusal::NotSelected);
        }
        let nonces = self.take_nonces_by_key(owner, own.bytes())?;
        self.sign_with_nonces(nonces, proposal, commitments)
    }

    fn sign_with_nonces(
        &self,
        nonces: Box<SignerNonces<S>>,
        proposal: &SigningProposal,
        commitments: BTreeMap<Identifier<S>, SigningCommitments<S>>,
    ) -> Result<SignatureShare<S>, Refusal> {
        self.check_threshold(&commitments)?;
        let message = self.check_and_build(proposal)?;
        sign_share(&self.share, nonces, commitments, &message)
            .map_err(|e| Refusal::Frost(e.to_string()))
    }

    /// Validate `req` and, if everything holds, produce this signer's share,
    /// with nonces committed to its own node ([`Owner::Local`]).
    pub fn sign(&self, req: &SignRequest<S>) -> Result<SignatureShare<S>, Refusal> {
        self.sign_for(Owner::Local, req)
    }

    /// Validate `req` from coordinator `owner` and, if everything holds, produce
    /// this signer's share.
    ///
    /// The nonces for this signer's commitment are removed first, so a
    /// commitment is used at most once even if validation fails or the
    /// coordinator replays the request.
    pub fn sign_for(
        &self,
        owner: Owner,
        req: &SignRequest<S>,
    ) -> Result<SignatureShare<S>, Refusal> {
        let nonces = self.take_nonces(owner, &req.commitments)?;
        self.sign_with_nonces(nonces, &req.proposal, req.commitments.clone())
    }

    fn check_threshold(
        &self,
        commitments: &BTreeMap<Identifier<S>, SigningCommitments<S>>,
    ) -> Result<(), Refusal> {
        let threshold = self.share.min_signers();
        if commitments.len() < usize::from(threshold) {
            return Err(Refusal::TooFewSigners {
                got: commitments.len(),
                threshold,
            });
        }
        Ok(())
    }

    /// Round 2 over a message the *caller built itself* from structured, checked
    /// inputs (the epoch's CSR: `node::serve`). Crate-private on purpose: nothing
    /// outside this crate can make a signer sign bytes.
    pub(crate) fn sign_built(
        &self,
        owner: Owner,
        commitments: &BTreeMap<Identifier<S>, SigningCommitments<S>>,
        message: &[u8],
    ) -> Result<SignatureShare<S>, Refusal> {
        let nonces = self.take_nonces(owner, commitments)?;
        self.check_threshold(commitments)?;
        sign_share(&self.share, nonces, commitments.clone(), message)
            .map_err(|e| Refusal::Frost(e.to_string()))
    }

    /// The checks of DESIGN §2.6, then the message this signer will sign.
    pub fn check_and_build(&self, p: &SigningProposal) -> Result<Vec<u8>, Refusal> {
        let guard = self.cert.read().map_err(|_| Refusal::Poisoned)?;
        let cert = guard.as_ref().ok_or(Refusal::NoCertificate)?;
        if p.cert_sha256 != cert.sha256() {
            return Err(Refusal::CertificateMismatch);
        }
        let accepted = request::parse(&p.request_der, &self.profile).map_err(Refusal::Request)?;
        let gen_time = p.gen_time().ok_or(Refusal::BadGenTime)?;
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let tolerance_ms = u64::try_from(self.profile.tolerance.as_millis()).unwrap_or(u64::MAX);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut backing = None;
        match &self.time {
            TimeRule::OwnClock => {
                let proposed = gen_time.unix_duration();
                let skew = proposed.abs_diff(now);
                if skew > self.profile.tolerance {
                    return Err(Refusal::GenTimeOutOfTolerance {
                        proposed: gen_time.to_rfc3339(),
                        skew_ms: ms(skew),
                        tolerance_ms,
                    });
                }
            }
            TimeRule::Evidence(policy) => {
                let ev = TimeEvidence::from_der_bounded(&p.time_evidence)
                    .map_err(|e| Refusal::TimeEvidence(e.to_string()))?;
                let leaf = time_leaf(&accepted).map_err(|e| Refusal::Content(e.to_string()))?;
                let claim = self
                    .check_evidence(policy, &leaf, &ev)
                    .map_err(|e| Refusal::TimeEvidence(e.to_string()))?;
                let evidence_ms = claim.gen_time_secs.saturating_mul(1000);
                if p.gen_time_unix_millis != evidence_ms {
                    return Err(Refusal::GenTimeNotFromEvidence {
                        proposed_ms: p.gen_time_unix_millis,
                        evidence_ms,
                    });
                }
                // The own clock: only a guard against a proposal wholly in the future.
                let earliest_ms = claim
                    .gen_time_secs
                    .saturating_sub(claim.accuracy_secs)
                    .saturating_mul(1000);
                let ahead_ms = earliest_ms.saturating_sub(ms(now));
                if ahead_ms > tolerance_ms {
                    return Err(Refusal::FutureTime {
                        ahead_ms,
                        tolerance_ms,
                    });
                }
                backing = Some(TimeBacking {
                    evidence_der: &p.time_evidence,
                    accuracy_secs: claim.accuracy_secs,
                });
            }
        }
        let content = token::build_signed_content::<S>(
            &self.profile,
            cert,
            &accepted,
            gen_time,
            &p.serial,
            backing,
        )
        .map_err(|e| Refusal::Content(e.to_string()))?;
        content
            .message()
            .map_err(|e| Refusal::Content(e.to_string()))
    }

    /// Remember replies this node's own time service verified for `root` with the same
    /// policy (crate-internal: only the node that owns this signer calls it).
    pub(crate) fn remember_checked_replies(
        &self,
        root: &[u8; 32],
        replies: &[evidence::RoughtimeReply],
        claim: &evidence::TimeClaim,
    ) {
        let key = evidence::replies_key(root, replies);
        if let Ok(mut cache) = self.checked_replies.lock() {
            if cache.iter().any(|(k, _)| *k == key) {
                return;
            }
            if cache.len() >= CHECKED_REPLIES_KEPT {
                cache.pop_front();
            }
            cache.push_back((key, claim.clone()));
        }
    }

    /// [`evidence::check`], remembering checked replies per batch.
    fn check_evidence(
        &self,
        policy: &TimePolicy,
        leaf: &[u8; 32],
        ev: &TimeEvidence,
    ) -> Result<evidence::TimeClaim, evidence::EvidenceError> {
        let root = evidence::root_of(leaf, ev)?;
        let key = evidence::replies_key(&root, &ev.replies);
        if let Ok(cache) = self.checked_replies.lock() {
            if let Some((_, claim)) = cache.iter().find(|(k, _)| *k == key) {
                return Ok(claim.clone());
            }
        }
        let claim = evidence::check_replies(policy, &root, &ev.replies)?;
        if let Ok(mut cache) = self.checked_replies.lock() {
            if cache.len() >= CHECKED_REPLIES_KEPT {
                cache.pop_front();
            }
            cache.push_back((key, claim.clone()));
        }
        Ok(claim)
    }

    /// Number of outstanding nonce pairs (for metrics and tests).
    pub fn outstanding_nonces(&self) -> usize {
        self.nonces
            .lock()
            .map(|s| s.values().map(|o| o.live.len()).sum())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n fresh nonces of one share, under their encoded commitments.
    fn fresh(n: usize) -> Vec<([u8; COMMITMENTS_LEN], SignerNonces)> {
        let mut rng = rand::thread_rng();
        let (shares, _) = crate::threshold::keys::dkg_in_process(3, 2, &mut rng).unwrap();
        (0..n)
            .map(|_| {
                let (nonces, c) = commit(&shares[0], &mut rng);
                (EncodedCommitments::encode(c).unwrap().bytes, nonces)
            })
            .collect()
    }

    /// Randomness is an input: the same seeded source gives the same key shares and
    /// nonce commitments, so a signing run can be replayed; another seed differs.
    #[test]
    fn a_seeded_entropy_source_replays_key_generation_and_commitments() {
        use crate::entropy::{Rng, SeededEntropy};
        let run = |seed: u64| {
            let mut rng = Rng::new(std::sync::Arc::new(SeededEntropy::new(seed)));
            let (shares, group) = crate::threshold::keys::dkg_in_process(3, 2, &mut rng).unwrap();
            let (_, c) = commit(&shares[0], &mut rng);
            (
                group.key_bytes().unwrap(),
                EncodedCommitments::encode(c).unwrap().bytes,
            )
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn used_nonces_do_not_pile_up_in_the_order() {
        // One coordinator using each commitment soon after it was issued, the way a
        // node serves tokens: the store holds what is outstanding, not its history.
        let mut store = OwnerNonces::default();
        let batch = fresh(3 * MAX_OUTSTANDING_NONCES);
        let keys: Vec<_> = batch.iter().map(|(k, _)| *k).collect();
        for (i, (k, n)) in batch.into_iter().enumerate() {
            store.insert(k, n);
            if i >= 8 {
                assert!(store.take(&keys[i - 8]).is_some());
            }
            assert!(store.order.len() <= store.live.len() + 1, "at {i}");
        }
        assert_eq!(store.live.len(), 8);
        // A used key is gone for good.
        assert!(store.take(&keys[0]).is_none());
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let mut store = OwnerNonces::default();
        let batch = fresh(MAX_OUTSTANDING_NONCES);
        let keys: Vec<_> = batch.iter().map(|(k, _)| *k).collect();
        for (k, n) in batch {
            store.insert(k, n);
        }
        let peak = store.live.capacity();
        assert!(peak >= MAX_OUTSTANDING_NONCES);
        for k in &keys {
            assert!(store.take(k).is_some());
        }
        assert!(store.live.is_empty());
        assert!(
            store.live.capacity() <= 4 * COMPACT_SLACK
                && store.order.capacity() <= 8 * COMPACT_SLACK,
            "capacities {} and {} after draining a peak of {peak}",
            store.live.capacity(),
            store.order.capacity()
        );
        // The store still evicts the oldest beyond its bound.
        let more = fresh(MAX_OUTSTANDING_NONCES + 5);
        let first = more[0].0;
        for (k, n) in more {
            store.insert(k, n);
        }
        assert_eq!(store.live.len(), MAX_OUTSTANDING_NONCES);
        assert!(store.take(&first).is_none());
    }
}
