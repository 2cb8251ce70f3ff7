//! Where each message an admitted peer sends goes. [`super::peers`] reads frames and
//! calls [`route`]; the handlers ([`super::serve`] for signing, [`super::repair`] for a
//! helper's part of a repair, the DKG and the replacement through the inbox of
//! [`super::link`]) never see a connection, only the message, who sent it and where an
//! answer goes.

use super::state::Node;
use crate::api::peer::PeerMessage;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The link a message came on.
#[derive(Clone)]
pub(super) struct Origin {
    /// The sender's roster index.
    pub(super) index: u16,
    /// The link's generation: an answer goes back on this link only.
    pub(super) generation: u64,
    /// The link's outgoing queue.
    pub(super) reply: mpsc::Sender<PeerMessage>,
}

/// What the connection does after a message was routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Routed {
    /// Keep reading.
    Continue,
    /// The node is stopping (its inbox closed): close the link.
    Close,
}

/// Hand `msg` from `from` to its handler. Handlers that take time run on their own
/// task, so a link's reads (its pings included) never wait for them.
pub(super) fn route(node: &Arc<Node>, from: &Origin, msg: PeerMessage) -> Routed {
    match msg {
        // Every ping says which key's share the peer holds (after a repair too), so
        // holders are counted right whatever was missed.
        PeerMessage::Ping { group_key } => note_share(node, from, group_key),
        PeerMessage::HaveShare { group_key } => note_share(node, from, Some(group_key)),
        PeerMessage::SignCommit { .. }
        | PeerMessage::SignRound2 { .. }
        | PeerMessage::SignCsr { .. } => {
            let (node, reply, index) = (node.clone(), from.reply.clone(), from.index);
            tokio::spawn(async move {
                if let Some(answer) = super::serve::answer_signing(&node, index, msg) {
                    let _ = reply.send(answer).await;
                }
            });
        }
        PeerMessage::SignCommitted { req, .. }
        | PeerMessage::SignShare { req, .. }
        | PeerMessage::SignRefused { req, .. } => {
            super::link::deliver(node, from.index, req, msg);
        }
        PeerMessage::RepairStart {
            epoch,
            helpers,
            participant,
            attempt,
        } => {
            let node = node.clone();
            let request = super::repair::HelpRequest {
                from: from.index,
                generation: from.generation,
                epoch,
                helpers,
                participant,
                attempt,
            };
            tokio::spawn(async move {
                super::repair::help(&node, request).await;
            });
        }
        other => {
            // A full inbox (nobody collecting: no DKG or repair running) sheds the
            // message rather than stop this link's reads (pings included).
            match node.inbox_tx.try_send((from.index, other)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full((_, m))) => {
                    node.refuse(format!(
                        "peer {}: inbox full, {} message dropped",
                        from.index,
                        m.kind()
                    ));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Routed::Close,
            }
        }
    }
    Routed::Continue
}

/// A link to peer `index` was admitted. Whatever this node committed to an earlier
/// link of that peer is void; commitments are fetched ahead of time again.
pub(super) fn link_up(node: &Arc<Node>, index: u16) {
    super::serve::forget_peer(node, index);
    super::serve::prefill(node);
}

/// The current link to peer `index` closed: the signing state tied to it goes.
pub(super) fn link_down(node: &Node, index: u16) {
    super::serve::forget_peer(node, index);
}

/// Record which group key's share the sender of a ping or `HaveShare` holds, on the
/// link it came on only.
fn note_share(node: &Node, from: &Origin, group_key: Option<String>) {
    if let Some(l) = node.peer_links().get_mut(&from.index) {
        if l.generation == from.generation && l.group_key != group_key {
            l.group_key = group_key;
        }
    }
}
