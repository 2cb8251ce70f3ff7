//! Nonce commitments fetched ahead of time, so a token costs one peer round trip.
//!
//! RFC 9591 §5.1 lets a signer publish commitments before the message is known.
//! A coordinator keeps, per peer, a queue of commitments that peer issued *to
//! it* (`SignCommit { count }` → `SignCommitted`), refilled in the background
//! when it runs low. Signing a token then needs only round 2. Safety rests on
//! the signer, not on this cache: a signer keeps each nonce pair under the
//! coordinator it was issued to and deletes it at first use
//! ([`crate::threshold::signer::Signer::sign_for`]), so a commitment can never
//! sign twice, whether the coordinator restarts, reconnects, or several
//! coordinators work at once. The queue is tagged with the link generation and
//! the key epoch and starts empty when either changes (a reconnected peer has
//! dropped what it issued to the old link).

use crate::threshold::signer::EncodedCommitments;
use crate::threshold::suite::{BySuite, Ed25519Sha512, Secp256K1Sha256};
use std::collections::{HashMap, VecDeque};

/// One peer's commitments, in the suite of the epoch they were issued for (a queue
/// belongs to one epoch, so one suite).
pub(super) type AnyCommitments =
    BySuite<EncodedCommitments<Secp256K1Sha256>, EncodedCommitments<Ed25519Sha512>>;

/// A batch of one suite's commitments as queue entries.
pub(super) fn wrap_all<T: 'static>(batch: Vec<T>) -> Vec<AnyCommitments> {
    batch.into_iter().filter_map(BySuite::new).collect()
}
use std::sync::Mutex;

/// Commitments asked for in one batch.
pub(super) const BATCH: usize = 64;
/// Refill when fewer than this many are left.
const LOW_WATER: usize = 24;

/// Which link and key epoch a queue belongs to.
pub(super) type Tag = (u64, String);

#[derive(Default)]
struct Queue {
    tag: Tag,
    ready: VecDeque<AnyCommitments>,
    refilling: bool,
}

/// Per-peer queues of ready commitments.
#[derive(Default)]
pub(super) struct Pools(Mutex<HashMap<u16, Queue>>);

/// The result of [`Pools::take`].
pub(super) struct Take {
    /// A commitment, if one was ready.
    pub(super) commitments: Option<AnyCommitments>,
    /// The caller should start a background refill.
    pub(super) refill: bool,
}

impl Pools {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Queue>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take one of `peer`'s commitments for `tag`.
    pub(super) fn take(&self, peer: u16, tag: &Tag) -> Take {
        self.with_queue(peer, tag, |q| q.ready.pop_front())
    }

    /// Whether the caller should refill `peer`'s queue now (it is low and no
    /// refill runs); used to fill queues before the first request.
    pub(super) fn claim_refill(&self, peer: u16, tag: &Tag) -> bool {
        self.with_queue(peer, tag, |_| None).refill
    }

    fn with_queue(
        &self,
        peer: u16,
        tag: &Tag,
        f: impl FnOnce(&mut Queue) -> Option<AnyCommitments>,
    ) -> Take {
        let mut all = self.lock();
        let q = all.entry(peer).or_default();
        if &q.tag != tag {
            *q = Queue {
                tag: tag.clone(),
                ..Queue::default()
            };
        }
        let commitments = f(q);
        let refill = q.ready.len() < LOW_WATER && !q.refilling;
        if refill {
            q.refilling = true;
        }
        Take {
            commitments,
            refill,
        }
    }

    /// Add commitments `peer` issued under `tag`; `refilled` ends a refill.
    pub(super) fn put(&self, peer: u16, tag: &Tag, fresh: Vec<AnyCommitments>, refilled: bool) {
        let mut all = self.lock();
        let q = all.entry(peer).or_default();
        if refilled && &q.tag == tag {
            q.refilling = false;
        }
        if &q.tag == tag {
            q.ready.extend(fresh);
        }
    }

    /// Forget `peer`'s queue (it refused one of them, or its link changed).
    pub(super) fn drop_peer(&self, peer: u16) {
        self.lock().remove(&peer);
    }

    /// Ready commitments per peer (for `/status` and tests).
    pub(super) fn sizes(&self) -> std::collections::BTreeMap<u16, usize> {
        self.lock()
            .iter()
            .map(|(p, q)| (*p, q.ready.len()))
            .collect()
    }
}

/// How long a peer that timed out is asked only when no other will do.
pub(super) const SUSPECT_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Peers that recently failed to answer in time.
#[derive(Default)]
pub(super) struct Suspects(Mutex<HashMap<u16, std::time::Instant>>);

impl Suspects {
    /// `peer` did not answer in time.
    pub(super) fn mark(&self, peer: u16) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, std::time::Instant::now());
    }

    /// Whether `peer` timed out within [`SUSPECT_FOR`].
    pub(super) fn is(&self, peer: u16) -> bool {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(&peer) {
            Some(at) if at.elapsed() < SUSPECT_FOR => true,
            Some(_) => {
                all.remove(&peer);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::frost;

    fn commitments(n: usize) -> Vec<AnyCommitments> {
        let (shares, _) = frost::keys::generate_with_dealer(
            3,
            2,
            frost::keys::IdentifierList::Default,
            rand_core::OsRng,
        )
        .expect("dealer");
        let share = shares.values().next().expect("share");
        wrap_all(
            (0..n)
                .map(|_| {
                    let c = frost::round1::commit(share.signing_share(), &mut rand_core::OsRng).1;
                    EncodedCommitments::encode(c).expect("encode")
                })
                .collect(),
        )
    }

    #[test]
    fn a_commitment_is_handed_out_once_and_refill_is_asked_once() {
        let pools = Pools::default();
        let tag: Tag = (1, "e1".into());
        let first = pools.take(2, &tag);
        assert!(first.commitments.is_none());
        assert!(first.refill, "an empty queue asks for a refill");
        assert!(!pools.take(2, &tag).refill, "only one refill at a time");
        let batch = commitments(3);
        pools.put(2, &tag, batch.clone(), true);
        let mut got = Vec::new();
        while let Some(c) = pools.take(2, &tag).commitments {
            got.push(c);
        }
        assert_eq!(got, batch, "each commitment exactly once, in order");
    }

    #[test]
    fn a_new_link_or_epoch_discards_old_commitments() {
        let pools = Pools::default();
        let old: Tag = (1, "e1".into());
        pools.take(2, &old);
        pools.put(2, &old, commitments(2), true);
        let new_link: Tag = (2, "e1".into());
        assert!(pools.take(2, &new_link).commitments.is_none());
        // A late batch for the old link is not mixed in.
        pools.put(2, &old, commitments(2), true);
        assert!(pools.take(2, &new_link).commitments.is_none());
        assert_eq!(pools.sizes().get(&2), Some(&0));
    }
}
