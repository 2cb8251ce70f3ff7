//! Signed time evidence (issue 12, `docs/time.md`): genTime backed by Roughtime replies
//! bound to the request, checkable by every signer and by relying parties.
//!
//! 1. Each request gives a **leaf** computable from the token alone ([`leaf`]): SHA-256
//!    over a label, the DER of the request's `MessageImprint` and the DER of its nonce
//!    (absent: nothing). A TSTInfo copies both, so a relying party recomputes it.
//! 2. The coordinator batches leaves into a **Merkle tree** ([`Batch`]): SHA-256,
//!    `0x00 ‖ leaf` for leaves, `0x01 ‖ left ‖ right` for inner nodes, padded to a power of
//!    two with the constant `SHA-256(0x02)`; the bits of the leaf index, least significant
//!    first, say on which side each path element sits.
//! 3. The tree's **root is the Roughtime nonce** sent to every server of the
//!    [`TimePolicy`]; each verified reply proves that the server signed its time after
//!    the root existed, so after every request of the batch existed.
//! 4. The **bound** ([`derive`]): for the replies used, with each server's interval
//!    `[MIDP − RADI, MIDP + RADI]`, genTime = the latest upper end and accuracy = genTime −
//!    the earliest lower end. An honest server saw the root at a true time inside its
//!    interval, so genTime is never earlier than the moment any honest server among those
//!    used saw the request: backdating needs every server used (at least q) to lie.
//!    Liars can only push genTime later, and every signer's own clock refuses a
//!    proposal that lies wholly in its future.
//!
//! The evidence travels in the token as a signed attribute ([`TimeEvidence`], DER):
//!
//! ```text
//! TimeEvidence ::= SEQUENCE {
//!     version    INTEGER (1),
//!     leafIndex  INTEGER (0..4095),
//!     path       SEQUENCE SIZE (0..12) OF OCTET STRING (SIZE (32)),
//!     replies    SEQUENCE SIZE (1..16) OF RoughtimeReply }
//! RoughtimeReply ::= SEQUENCE {
//!     publicKey  OCTET STRING (SIZE (32)),   -- the server's long-term Ed25519 key
//!     version    INTEGER,                    -- Roughtime version number (1: RFC 10049)
//!     response   OCTET STRING (SIZE (..1024)) } -- the response packet as received
//! ```

use super::roughtime::{self, RoughtimeError, ServerSpec, Verified, Version};
use der::asn1::OctetString;
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Label of [`leaf`].
pub const LEAF_LABEL: &[u8] = b"frostamp/v1/time-leaf";
/// Largest batch: 2^12 leaves, so a path has at most 12 elements.
pub const MAX_BATCH: usize = 1 << MAX_PATH;
const MAX_PATH: usize = 12;
/// Most replies one piece of evidence may carry.
pub const MAX_REPLIES: usize = 16;
/// The `version` of [`TimeEvidence`].
pub const EVIDENCE_VERSION: u8 = 1;

/// Which time servers count, how many must vouch, and how far their intervals may miss
/// each other and still agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimePolicy {
    /// The pinned servers (long-term keys, versions, names).
    pub servers: Vec<ServerSpec>,
    /// q: replies needed, from distinct servers that agree.
    pub quorum: usize,
    /// Servers agree when the latest lower end of their intervals is at most this much
    /// after the earliest upper end.
    pub agreement: Duration,
}

/// The build's server list and quorum (part of the measurement): public servers of the
/// Roughtime ecosystem (`tests/data/assets/roughtime/cloudflare/ecosystem.json`,
/// cloudflare/roughtime at 75645289, 2026-04-28) that speak RFC 10049. Cloudflare's
/// server is left out: its entry says it speaks draft 08, which this client does not.
pub fn pinned_policy() -> TimePolicy {
    let servers = roughtime::ecosystem_servers()
        .into_iter()
        .filter(|s| s.name != "Cloudflare-Roughtime-2")
        .collect();
    TimePolicy {
        servers,
        quorum: PINNED_QUORUM,
        agreement: AGREEMENT,
    }
}

/// q of the pinned list: 2 of 3.
pub const PINNED_QUORUM: usize = 2;
/// How far agreeing intervals may miss each other.
pub const AGREEMENT: Duration = Duration::from_secs(2);

/// Why evidence is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// Not DER of a [`TimeEvidence`], or out of its bounds.
    #[error("malformed time evidence: {0}")]
    Malformed(String),
    /// A version other than [`EVIDENCE_VERSION`].
    #[error("time evidence version {0} is not supported")]
    Version(u8),
    /// The path does not take this request's leaf to the root the servers signed.
    #[error("the Merkle path does not lead from this request's leaf to the signed root")]
    Path,
    /// A reply from a key that is not in the policy.
    #[error("reply from a time server that is not pinned (key {0}…)")]
    UnknownServer(String),
    /// Two replies from one server.
    #[error("two replies from time server {0}")]
    DuplicateServer(String),
    /// A reply whose version is not the one pinned for its server.
    #[error("reply from {0} in another protocol version than pinned")]
    WrongVersion(String),
    /// A reply that does not verify for the root.
    #[error("reply from {server} does not verify: {error}")]
    Reply {
        /// Its server.
        server: String,
        /// Why.
        error: RoughtimeError,
    },
    /// Fewer agreeing servers than the quorum.
    #[error("{got} time server(s) vouch, the quorum is {quorum}")]
    TooFew {
        /// Distinct verified servers.
        got: usize,
        /// q.
        quorum: usize,
    },
    /// The servers' intervals do not agree.
    #[error("the time servers disagree: their intervals miss each other by {gap_secs} s (allowed {allowed_secs} s)")]
    Disagree {
        /// Latest lower end − earliest upper end.
        gap_secs: u64,
        /// [`TimePolicy::agreement`].
        allowed_secs: u64,
    },
}

/// One Roughtime reply as the evidence carries it.
#[derive(Clone, Debug, PartialEq, Eq, der::Sequence)]
pub struct RoughtimeReply {
    /// The server's long-term public key (32 bytes).
    pub public_key: OctetString,
    /// The Roughtime version number of the exchange.
    pub version: u32,
    /// The response packet, byte for byte.
    pub response: OctetString,
}

/// The evidence for one request (module docs).
#[derive(Clone, Debug, PartialEq, Eq, der::Sequence)]
pub struct TimeEvidence {
    /// [`EVIDENCE_VERSION`].
    pub version: u8,
    /// The request's position in its batch.
    pub leaf_index: u32,
    /// Sibling hashes from the leaf up.
    pub path: Vec<OctetString>,
    /// The replies used (at least q, distinct pinned servers).
    pub replies: Vec<RoughtimeReply>,
}

impl TimeEvidence {
    /// Strict DER decoding with the bounds of the module docs.
    pub fn from_der_bounded(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let ev = Self::from_der(bytes).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
        if ev.version != EVIDENCE_VERSION {
            return Err(EvidenceError::Version(ev.version));
        }
        if ev.path.len() > MAX_PATH || ev.path.iter().any(|p| p.as_bytes().len() != 32) {
            return Err(EvidenceError::Malformed(
                "path: at most 12 hashes of 32 bytes".into(),
            ));
        }
        if usize::try_from(ev.leaf_index).map_or(true, |i| i >= (1usize << ev.path.len())) {
            return Err(EvidenceError::Malformed(
                "leaf index beyond the path's tree".into(),
            ));
        }
        if ev.replies.is_empty() || ev.replies.len() > MAX_REPLIES {
            return Err(EvidenceError::Malformed(format!(
                "between 1 and {MAX_REPLIES} replies"
            )));
        }
        for r in &ev.replies {
            if r.public_key.as_bytes().len() != 32
                || r.response.as_bytes().len() > roughtime::MAX_RESPONSE_LEN
            {
                return Err(EvidenceError::Malformed(
                    "reply: 32-byte key, response of at most 1024 bytes".into(),
                ));
            }
        }
        Ok(ev)
    }

    /// DER.
    pub fn to_der_bytes(&self) -> Result<Vec<u8>, EvidenceError> {
        self.to_der()
            .map_err(|e| EvidenceError::Malformed(e.to_string()))
    }
}

/// The leaf of a request: from its `MessageImprint` DER and its nonce's INTEGER DER.
pub fn leaf(message_imprint_der: &[u8], nonce_der: Option<&[u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LEAF_LABEL);
    h.update([0u8]);
    h.update(
        u64::try_from(message_imprint_der.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    h.update(message_imprint_der);
    match nonce_der {
        Some(n) => {
            h.update([1u8]);
            h.update(n);
        }
        None => h.update([0u8]),
    }
    h.finalize().into()
}

fn leaf_node(leaf: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

fn inner(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn padding() -> [u8; 32] {
    Sha256::digest([2u8]).into()
}

/// A batch of leaves and its tree.
#[derive(Clone, Debug)]
pub struct Batch {
    /// levels[0] are the (padded) leaf nodes; the last level is the root alone.
    levels: Vec<Vec<[u8; 32]>>,
    len: usize,
}

impl Batch {
    /// The tree over `leaves` (1 to [`MAX_BATCH`]).
    pub fn new(leaves: &[[u8; 32]]) -> Option<Self> {
        if leaves.is_empty() || leaves.len() > MAX_BATCH {
            return None;
        }
        let width = leaves.len().next_power_of_two();
        let mut level: Vec<[u8; 32]> = leaves.iter().map(leaf_node).collect();
        level.resize(width, padding());
        let mut levels = vec![level];
        while let Some(prev) = levels.last().filter(|l| l.len() > 1) {
            let next = prev.chunks(2).map(|p| match p {
                [l, r] => inner(l, r),
                [one] => *one,
                _ => padding(),
            });
            let next: Vec<[u8; 32]> = next.collect();
            levels.push(next);
        }
        Some(Self {
            levels,
            len: leaves.len(),
        })
    }

    /// Number of real leaves.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true ([`Batch::new`] refuses an empty batch).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root: the Roughtime nonce.
    pub fn root(&self) -> [u8; 32] {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_else(padding)
    }

    /// The path of leaf `index`, from the leaf up.
    pub fn path(&self, index: usize) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        let mut i = index;
        for level in self.levels.iter().take(self.levels.len().saturating_sub(1)) {
            if let Some(sibling) = level.get(i ^ 1) {
                out.push(*sibling);
            }
            i >>= 1;
        }
        out
    }
}

/// The root that `leaf` at `index` with `path` leads to.
pub fn root_from_path(leaf: &[u8; 32], index: u32, path: &[[u8; 32]]) -> [u8; 32] {
    let mut node = leaf_node(leaf);
    let mut i = index;
    for sibling in path {
        node = if i & 1 == 0 {
            inner(&node, sibling)
        } else {
            inner(sibling, &node)
        };
        i >>= 1;
    }
    node
}

/// One server's verified word, named.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Vouch {
    /// The server's name in the policy.
    pub server: String,
    /// MIDP, Unix seconds.
    pub midpoint_secs: u64,
    /// RADI, seconds.
    pub radius_secs: u64,
}

impl Vouch {
    fn from_verified(server: &ServerSpec, v: &Verified) -> Self {
        Self {
            server: server.name.clone(),
            midpoint_secs: v.midpoint_micros / 1_000_000,
            radius_secs: v.radius_micros.div_ceil(1_000_000),
        }
    }

    fn lower(&self) -> u64 {
        self.midpoint_secs.saturating_sub(self.radius_secs)
    }

    fn upper(&self) -> u64 {
        self.midpoint_secs.saturating_add(self.radius_secs)
    }
}

/// What checked evidence establishes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimeClaim {
    /// genTime it gives, Unix seconds (the latest upper end).
    pub gen_time_secs: u64,
    /// Accuracy it gives, seconds (genTime − the earliest lower end).
    pub accuracy_secs: u64,
    /// Who vouched, in the evidence's order.
    pub vouched: Vec<Vouch>,
}

/// genTime and accuracy from the vouches used (module docs, item 4), after checking the
/// quorum and agreement.
pub fn derive(policy: &TimePolicy, vouched: Vec<Vouch>) -> Result<TimeClaim, EvidenceError> {
    if vouched.len() < policy.quorum.max(1) {
        return Err(EvidenceError::TooFew {
            got: vouched.len(),
            quorum: policy.quorum,
        });
    }
    let latest_lower = vouched.iter().map(Vouch::lower).max().unwrap_or(0);
    let earliest_upper = vouched.iter().map(Vouch::upper).min().unwrap_or(0);
    let gap = latest_lower.saturating_sub(earliest_upper);
    if gap > policy.agreement.as_secs() {
        return Err(EvidenceError::Disagree {
            gap_secs: gap,
            allowed_secs: policy.agreement.as_secs(),
        });
    }
    let gen_time_secs = vouched.iter().map(Vouch::upper).max().unwrap_or(0);
    let earliest_lower = vouched.iter().map(Vouch::lower).min().unwrap_or(0);
    Ok(TimeClaim {
        gen_time_secs,
        accuracy_secs: gen_time_secs.saturating_sub(earliest_lower),
        vouched,
    })
}

/// Verify one reply for `root` against the policy: its server and what it vouches.
pub fn verify_reply(
    policy: &TimePolicy,
    root: &[u8; 32],
    reply: &RoughtimeReply,
) -> Result<Vouch, EvidenceError> {
    let key = reply.public_key.as_bytes();
    let server = policy
        .servers
        .iter()
        .find(|s| s.public_key.as_slice() == key)
        .ok_or_else(|| EvidenceError::UnknownServer(hex::encode(key.get(..8).unwrap_or(key))))?;
    if Version::from_wire_value(reply.version) != Some(server.version) {
        return Err(EvidenceError::WrongVersion(server.name.clone()));
    }
    let v =
        roughtime::verify_response(server, root, reply.response.as_bytes()).map_err(|error| {
            EvidenceError::Reply {
                server: server.name.clone(),
                error,
            }
        })?;
    Ok(Vouch::from_verified(server, &v))
}

/// Everything a signer or a relying party checks: the path from this request's `leaf` to
/// the root, every reply (pinned server, at most one each, verifies for that root), the
/// quorum and agreement; returns the genTime and accuracy they give.
pub fn check(
    policy: &TimePolicy,
    leaf: &[u8; 32],
    evidence: &TimeEvidence,
) -> Result<TimeClaim, EvidenceError> {
    let root = root_of(leaf, evidence)?;
    check_replies(policy, &root, &evidence.replies)
}

/// The root the evidence's path leads to from `leaf` (what its replies must have signed).
pub fn root_of(leaf: &[u8; 32], evidence: &TimeEvidence) -> Result<[u8; 32], EvidenceError> {
    let path: Vec<[u8; 32]> = evidence
        .path
        .iter()
        .map(|p| <[u8; 32]>::try_from(p.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| EvidenceError::Malformed("path element of another length".into()))?;
    Ok(root_from_path(leaf, evidence.leaf_index, &path))
}

/// The replies' part of [`check`]: every reply verifies for `root`, from distinct pinned
/// servers, at least q that agree. The same for every request of a batch, so a signer
/// may remember the result per (root, replies) ([`replies_key`]).
pub fn check_replies(
    policy: &TimePolicy,
    root: &[u8; 32],
    replies: &[RoughtimeReply],
) -> Result<TimeClaim, EvidenceError> {
    let mut vouched: Vec<Vouch> = Vec::with_capacity(replies.len());
    for reply in replies {
        let v = verify_reply(policy, root, reply)?;
        if vouched.iter().any(|o| o.server == v.server) {
            return Err(EvidenceError::DuplicateServer(v.server));
        }
        vouched.push(v);
    }
    derive(policy, vouched)
}

/// A digest of (root, replies) under which a checked [`check_replies`] result can be
/// remembered.
pub fn replies_key(root: &[u8; 32], replies: &[RoughtimeReply]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"frostamp/v1/time-replies");
    h.update(root);
    for r in replies {
        h.update(r.public_key.as_bytes());
        h.update(r.version.to_be_bytes());
        h.update(
            u64::try_from(r.response.as_bytes().len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        h.update(r.response.as_bytes());
    }
    h.finalize().into()
}

/// The largest subset of `vouched` that agrees (ties: the earliest in order), and the
/// rest (outvoted). At most 16 servers are considered.
pub fn select(policy: &TimePolicy, vouched: &[Vouch]) -> (Vec<usize>, Vec<usize>) {
    let n = vouched.len().min(MAX_REPLIES);
    let mut best: Vec<usize> = Vec::new();
    for mask in 1u32..(1u32 << n) {
        if (mask.count_ones() as usize) <= best.len() {
            continue;
        }
        let chosen: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        let subset: Vec<Vouch> = chosen
            .iter()
            .filter_map(|i| vouched.get(*i).cloned())
            .collect();
        let probe = TimePolicy {
            quorum: 1,
            ..policy.clone()
        };
        if derive(&probe, subset).is_ok() {
            best = chosen;
        }
    }
    let rest = (0..vouched.len()).filter(|i| !best.contains(i)).collect();
    (best, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_batch_size_reaches_the_root() {
        for n in [1usize, 2, 3, 5, 8, 13, 64, 100] {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| [i as u8; 32]).collect();
            let b = Batch::new(&leaves).unwrap();
            for (i, l) in leaves.iter().enumerate() {
                let path = b.path(i);
                assert_eq!(root_from_path(l, i as u32, &path), b.root(), "n={n} i={i}");
                // Another index (where the tree has two), or another leaf, does not.
                if n > 1 {
                    assert_ne!(root_from_path(l, (i as u32) ^ 1, &path), b.root());
                }
                assert_ne!(root_from_path(&[0xee; 32], i as u32, &path), b.root());
            }
        }
        assert!(Batch::new(&[]).is_none());
    }

    fn vouch(name: &str, mid: u64, rad: u64) -> Vouch {
        Vouch {
            server: name.into(),
            midpoint_secs: mid,
            radius_secs: rad,
        }
    }

    fn policy(q: usize) -> TimePolicy {
        TimePolicy {
            servers: Vec::new(),
            quorum: q,
            agreement: Duration::from_secs(2),
        }
    }

    #[test]
    fn gen_time_is_the_latest_upper_end_and_accuracy_covers_every_interval() {
        let c = derive(&policy(2), vec![vouch("a", 1000, 5), vouch("b", 1002, 1)]).unwrap();
        assert_eq!(c.gen_time_secs, 1005);
        assert_eq!(c.accuracy_secs, 1005 - 995);
        // One server an hour off: no agreement.
        let e = derive(&policy(2), vec![vouch("a", 1000, 5), vouch("b", 4600, 5)]).unwrap_err();
        assert!(matches!(e, EvidenceError::Disagree { .. }), "{e}");
        // Below the quorum.
        let e = derive(&policy(2), vec![vouch("a", 1000, 5)]).unwrap_err();
        assert_eq!(e, EvidenceError::TooFew { got: 1, quorum: 2 });
    }

    #[test]
    fn the_liar_is_outvoted() {
        let v = vec![
            vouch("a", 10_000, 2),
            vouch("liar", 10_000 - 3600, 2),
            vouch("c", 10_001, 2),
        ];
        let (chosen, rest) = select(&policy(2), &v);
        assert_eq!(chosen, vec![0, 2]);
        assert_eq!(rest, vec![1]);
    }

    #[test]
    fn the_leaf_binds_imprint_and_nonce() {
        let a = leaf(b"imprint", Some(b"\x02\x01\x05"));
        assert_ne!(a, leaf(b"imprint", None));
        assert_ne!(a, leaf(b"imprint", Some(b"\x02\x01\x06")));
        assert_ne!(a, leaf(b"imprinT", Some(b"\x02\x01\x05")));
    }
}
