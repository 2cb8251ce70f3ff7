//! The transport the protocol handlers share: sending on an admitted peer's link,
//! request/response correlation for signing calls, and the inbox the DKG and the
//! repair collect their messages from. [`super::peers`] owns the connections (TLS,
//! admission, frames) and hands every decoded message to [`super::router`]; nothing
//! here knows what a message means.

use super::state::Node;
use crate::api::peer::PeerMessage;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why a message did not go out, or no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum LinkError {
    /// No admitted link to that index.
    #[error("node {0} is not connected")]
    NotConnected(u16),
    /// The link closed while the message was queued.
    #[error("connection to node {0} lost")]
    Lost(u16),
    /// A reply is bound to the link its request came on, which has closed or been
    /// superseded: it is not sent to whoever holds the index now.
    #[error("the link node {0} asked on is gone; not answering another")]
    Superseded(u16),
    /// The link of a call closed before its answer came.
    #[error("node {0}: connection closed before it answered")]
    ClosedBeforeAnswer(u16),
    /// A call got no answer in time.
    #[error("node {to} did not answer within {after:?}")]
    NoAnswer {
        /// The peer called.
        to: u16,
        /// How long this node waited.
        after: Duration,
    },
    /// The node's inbox closed (the node is stopping).
    #[error("peer inbox closed")]
    InboxClosed,
    /// Not every expected peer sent the awaited message in time.
    #[error("timed out waiting for {want} from node(s) {missing:?}")]
    Timeout {
        /// The message kind awaited.
        want: &'static str,
        /// Who did not send it.
        missing: Vec<u16>,
    },
    /// A peer aborted the protocol run this inbox collects for.
    #[error("node {by} aborted: {reason}")]
    Aborted {
        /// Who sent the abort.
        by: u16,
        /// Its reason.
        reason: String,
        /// The culprit it named.
        culprit: Option<u16>,
    },
}

impl LinkError {
    /// The node this failure can be pinned on, if exactly one.
    pub(super) fn culprit(&self) -> Option<u16> {
        match self {
            Self::NotConnected(i) | Self::Lost(i) | Self::Superseded(i) => Some(*i),
            Self::Timeout { missing, .. } => match missing.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            Self::Aborted { culprit, .. } => *culprit,
            Self::ClosedBeforeAnswer(_) | Self::NoAnswer { .. } | Self::InboxClosed => None,
        }
    }
}

/// Queue `msg` on the current link of peer `to`.
pub(super) async fn send(node: &Node, to: u16, msg: PeerMessage) -> Result<(), LinkError> {
    let tx = node.peer_links().get(&to).map(|l| l.tx.clone());
    let tx = tx.ok_or(LinkError::NotConnected(to))?;
    tx.send(msg).await.map_err(|_| LinkError::Lost(to))
}

/// Send to `to` only on the link of `generation`: a reply bound to the link its request
/// came on, never to whoever holds the index by the time it is ready.
pub(super) async fn send_on(
    node: &Node,
    to: u16,
    generation: u64,
    msg: PeerMessage,
) -> Result<(), LinkError> {
    let tx = node
        .peer_links()
        .get(&to)
        .filter(|l| l.generation == generation)
        .map(|l| l.tx.clone());
    let tx = tx.ok_or(LinkError::Superseded(to))?;
    tx.send(msg).await.map_err(|_| LinkError::Lost(to))
}

/// [`send`] to each of `peers`, stopping at the first failure.
pub(super) async fn broadcast(
    node: &Node,
    peers: &BTreeSet<u16>,
    msg: &PeerMessage,
) -> Result<(), LinkError> {
    for p in peers {
        send(node, *p, msg.clone()).await?;
    }
    Ok(())
}

/// [`send`] to each of `peers`, whatever fails (an abort: nobody waits for it).
pub(super) async fn tell_all(node: &Node, peers: &BTreeSet<u16>, msg: &PeerMessage) {
    for p in peers {
        let _ = send(node, *p, msg.clone()).await;
    }
}

/// Send `build(req)` to peer `to` and wait up to `within` for the answer
/// [`deliver`] hands over for request id `req`.
pub(super) async fn call(
    node: &Node,
    to: u16,
    within: Duration,
    build: impl FnOnce(u64) -> PeerMessage,
) -> Result<PeerMessage, LinkError> {
    let req = node.next_request.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let link = node
        .peer_links()
        .get(&to)
        .map(|l| (l.tx.clone(), l.generation));
    let (link, generation) = link.ok_or(LinkError::NotConnected(to))?;
    node.pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(req, (to, generation, tx));
    let result = async {
        link.send(build(req))
            .await
            .map_err(|_| LinkError::Lost(to))?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(m)) => Ok(m),
            // The link closed ([`forget_calls_on`]): no answer can come.
            Ok(Err(_)) => Err(LinkError::ClosedBeforeAnswer(to)),
            Err(_) => Err(LinkError::NoAnswer { to, after: within }),
        }
    }
    .await;
    node.pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&req);
    result
}

/// Hand the answer `msg` from peer `from` to whoever waits for request `req`. An
/// answer from another peer than the one called is ignored (and the call keeps
/// waiting); a late answer after a timeout is dropped.
pub(super) fn deliver(node: &Node, from: u16, req: u64, msg: PeerMessage) {
    let mut pending = node.pending.lock().unwrap_or_else(|p| p.into_inner());
    match pending.get(&req) {
        Some((expected, _, _)) if *expected != from => {
            let expected = *expected;
            drop(pending);
            node.refuse(format!(
                "node {from} answered a request addressed to node {expected}; ignored"
            ));
        }
        Some(_) => {
            if let Some((_, _, tx)) = pending.remove(&req) {
                let _ = tx.send(msg);
            }
        }
        None => {}
    }
}

/// Calls that went on link `generation` of peer `index` can get no answer once it has
/// closed: drop their waiters so the caller moves on at once instead of waiting out its
/// timeout.
pub(super) fn forget_calls_on(node: &Node, index: u16, generation: u64) {
    node.pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|_, (to, g, _)| !(*to == index && *g == generation));
}

/// Per-kind collection of the messages the router put in the node's inbox, for one
/// protocol run (a DKG or a repair) of `epoch`. Holding it excludes every other run.
pub(super) struct Inbox<'a> {
    rx: tokio::sync::MutexGuard<'a, tokio::sync::mpsc::Receiver<(u16, PeerMessage)>>,
    stash: Vec<(u16, PeerMessage)>,
    epoch: String,
    /// What the last failed [`Inbox::collect`] had gathered.
    partial: BTreeMap<u16, PeerMessage>,
    /// How long one collection waits.
    patience: Duration,
}

impl<'a> Inbox<'a> {
    /// Take the node's inbox for a run of `epoch`, waiting for a running one to end;
    /// each collection waits at most `patience`.
    pub(super) async fn open(node: &'a Node, epoch: &str, patience: Duration) -> Inbox<'a> {
        Inbox {
            rx: node.inbox.lock().await,
            stash: Vec::new(),
            epoch: epoch.to_string(),
            partial: BTreeMap::new(),
            patience,
        }
    }

    /// What the last failed collection had gathered, taken.
    pub(super) fn take_partial(&mut self) -> BTreeMap<u16, PeerMessage> {
        std::mem::take(&mut self.partial)
    }

    /// Collect one message of kind `want` from each of `from`, for this epoch.
    pub(super) async fn collect(
        &mut self,
        want: &'static str,
        from: &BTreeSet<u16>,
    ) -> Result<BTreeMap<u16, PeerMessage>, LinkError> {
        self.collect_where(want, from, |_| true).await
    }

    /// As [`Self::collect`], but a message of kind `want` for which `fits` is false
    /// (a leftover of an earlier attempt) is dropped instead of taken.
    pub(super) async fn collect_where(
        &mut self,
        want: &'static str,
        from: &BTreeSet<u16>,
        fits: impl Fn(&PeerMessage) -> bool,
    ) -> Result<BTreeMap<u16, PeerMessage>, LinkError> {
        let mut got = BTreeMap::new();
        let mut keep = Vec::new();
        for (who, msg) in self.stash.drain(..) {
            if msg.kind() == want && !fits(&msg) {
                continue;
            }
            if msg.kind() == want && from.contains(&who) && !got.contains_key(&who) {
                got.insert(who, msg);
            } else {
                keep.push((who, msg));
            }
        }
        self.stash = keep;
        let deadline = tokio::time::Instant::now() + self.patience;
        while got.len() < from.len() {
            let next = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let (who, msg) = match next {
                Ok(Some(m)) => m,
                Ok(None) => return Err(LinkError::InboxClosed),
                Err(_) => {
                    self.partial = got.clone();
                    let missing = from
                        .iter()
                        .filter(|i| !got.contains_key(i))
                        .copied()
                        .collect();
                    return Err(LinkError::Timeout { want, missing });
                }
            };
            if let PeerMessage::DkgAbort {
                epoch,
                reason,
                culprit,
            } = &msg
            {
                if *epoch == self.epoch {
                    self.partial = std::mem::take(&mut got);
                    return Err(LinkError::Aborted {
                        by: who,
                        reason: reason.clone(),
                        culprit: *culprit,
                    });
                }
            }
            if msg.epoch() != Some(self.epoch.as_str()) {
                continue; // another epoch's leftovers
            }
            if msg.kind() == want && !fits(&msg) {
                continue; // another attempt's leftovers
            }
            if msg.kind() == want && from.contains(&who) && !got.contains_key(&who) {
                got.insert(who, msg);
            } else {
                self.stash.push((who, msg));
            }
        }
        Ok(got)
    }

    /// After a peer's abort ended a collection of `want` from `from`: what that
    /// collection had, plus the messages of kind `want` still missing that arrive
    /// within `within`. Further aborts are set aside, not obeyed: the run is over
    /// already, and this only looks for proof of who caused it.
    pub(super) async fn gather_after_abort(
        &mut self,
        want: &'static str,
        from: &BTreeSet<u16>,
        within: Duration,
    ) -> BTreeMap<u16, PeerMessage> {
        let mut got = self.take_partial();
        let mut keep = Vec::new();
        for (who, msg) in self.stash.drain(..) {
            if msg.kind() == want && from.contains(&who) && !got.contains_key(&who) {
                got.insert(who, msg);
            } else {
                keep.push((who, msg));
            }
        }
        self.stash = keep;
        let deadline = tokio::time::Instant::now() + within;
        while got.len() < from.len() {
            let Ok(Some((who, msg))) = tokio::time::timeout_at(deadline, self.rx.recv()).await
            else {
                break;
            };
            if msg.epoch() != Some(self.epoch.as_str()) {
                continue; // another epoch's leftovers
            }
            if msg.kind() == want && from.contains(&who) && !got.contains_key(&who) {
                got.insert(who, msg);
            } else {
                self.stash.push((who, msg));
            }
        }
        got
    }

    /// The next message in the inbox, whatever its kind or epoch, until `deadline`.
    pub(super) async fn next_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<(u16, PeerMessage), LinkError> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(LinkError::InboxClosed),
            Err(_) => Err(LinkError::Timeout {
                want: "any message",
                missing: Vec::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Inbox, LinkError};
    use crate::api::peer::PeerMessage;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    fn echo(epoch: &str) -> PeerMessage {
        PeerMessage::DkgEcho {
            epoch: epoch.into(),
            digests: vec![(1, "aa".into())],
            roster: "r".into(),
        }
    }

    fn abort(by: &str) -> PeerMessage {
        PeerMessage::DkgAbort {
            epoch: "e1".into(),
            reason: by.into(),
            culprit: None,
        }
    }

    /// An abort from one node ends the collection of echoes; the echoes still on their
    /// way (the one that proves an equivocation among them) are gathered afterwards, and
    /// later aborts and other epochs' echoes do not stop or fill that.
    #[tokio::test]
    async fn echoes_that_arrive_after_an_abort_are_still_gathered() {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let rx = tokio::sync::Mutex::new(rx);
        let mut inbox = Inbox {
            rx: rx.lock().await,
            stash: Vec::new(),
            epoch: "e1".into(),
            partial: BTreeMap::new(),
            patience: Duration::from_secs(5),
        };
        let from: BTreeSet<u16> = [2, 3, 4].into();
        tx.send((3, echo("e1"))).await.unwrap();
        tx.send((5, abort("node 5 saw a disagreement")))
            .await
            .unwrap();
        tx.send((4, abort("node 4 aborted too"))).await.unwrap();
        tx.send((2, echo("e0"))).await.unwrap();
        tx.send((2, echo("e1"))).await.unwrap();
        let stopped = inbox.collect("dkg_echo", &from).await;
        assert!(matches!(stopped, Err(LinkError::Aborted { by: 5, .. })));
        let seen = inbox
            .gather_after_abort("dkg_echo", &from, Duration::from_secs(1))
            .await;
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert!(
            matches!(seen.get(&2), Some(PeerMessage::DkgEcho { epoch, .. }) if epoch == "e1"),
            "node 2's echo of this epoch, not the leftover of e0"
        );
        // The twin: an echo that never comes ends the wait at its bound, with what came.
        let started = tokio::time::Instant::now();
        let seen = inbox
            .gather_after_abort("dkg_echo", &from, Duration::from_millis(200))
            .await;
        assert!(seen.is_empty(), "the first gathering took them: {seen:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_culprit_is_named_only_when_one_node_is_to_blame() {
        assert_eq!(LinkError::NotConnected(3).culprit(), Some(3));
        assert_eq!(LinkError::Superseded(2).culprit(), Some(2));
        let one = LinkError::Timeout {
            want: "dkg_echo",
            missing: vec![4],
        };
        assert_eq!(one.culprit(), Some(4));
        let two = LinkError::Timeout {
            want: "dkg_echo",
            missing: vec![4, 5],
        };
        assert_eq!(two.culprit(), None);
        assert_eq!(
            two.to_string(),
            "timed out waiting for dkg_echo from node(s) [4, 5]"
        );
        let aborted = LinkError::Aborted {
            by: 1,
            reason: "x".into(),
            culprit: None,
        };
        assert_eq!(aborted.culprit(), None);
        assert_eq!(LinkError::ClosedBeforeAnswer(2).culprit(), None);
    }
}
