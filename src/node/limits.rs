//! Per-source connection caps for the node's two ports (issue 13: no unauthenticated
//! client may take every connection permit). A [`SourceCaps`] counts live connections
//! per peer IP address; [`SourceCaps::admit`] hands out a guard that gives the slot
//! back when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Live connections per source address (or per network prefix), capped.
#[derive(Debug)]
pub(crate) struct SourceCaps {
    per_source: usize,
    /// Count whole networks (IPv4 /24, IPv6 /56) as one source: someone who rents
    /// addresses usually gets them in blocks.
    by_prefix: bool,
    live: Mutex<HashMap<IpAddr, usize>>,
}

/// The network an address counts under when sources are capped by prefix.
pub(crate) fn prefix_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            for b in o.iter_mut().skip(7) {
                *b = 0;
            }
            IpAddr::V6(std::net::Ipv6Addr::from(o))
        }
    }
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub(crate) struct Slot {
    caps: Arc<SourceCaps>,
    ip: IpAddr,
}

impl SourceCaps {
    pub(crate) fn new(per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            per_source,
            by_prefix: false,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// Caps per network prefix ([`prefix_of`]) rather than per address.
    pub(crate) fn by_prefix(per_prefix: usize) -> Arc<Self> {
        Arc::new(Self {
            per_source: per_prefix,
            by_prefix: true,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, unless its source already has
    /// `per_source`.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = if self.by_prefix { prefix_of(ip) } else { ip };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let n = live.entry(ip).or_insert(0);
        if *n >= self.per_source {
            return None;
        }
        *n += 1;
        Some(Slot {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut live = self.caps.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = live.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_is_capped_and_slots_come_back() {
        let caps = SourceCaps::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = caps.admit(a).unwrap();
        let _s2 = caps.admit(a).unwrap();
        assert!(caps.admit(a).is_none(), "third from one source refused");
        let _other = caps.admit(b).expect("another source is not affected");
        drop(s1);
        assert!(caps.admit(a).is_some(), "a freed slot is usable again");
    }

    #[test]
    fn prefix_caps_count_a_network_as_one_source() {
        let caps = SourceCaps::by_prefix(2);
        let _a = caps.admit("203.0.113.1".parse().unwrap()).unwrap();
        let _b = caps.admit("203.0.113.200".parse().unwrap()).unwrap();
        assert!(caps.admit("203.0.113.7".parse().unwrap()).is_none());
        assert!(caps.admit("203.0.114.7".parse().unwrap()).is_some());
        let _c = caps.admit("2001:db8:0:1::1".parse().unwrap()).unwrap();
        let _d = caps.admit("2001:db8:0:ff::2".parse().unwrap()).unwrap();
        assert!(
            caps.admit("2001:db8:0:aa::3".parse().unwrap()).is_none(),
            "one /56"
        );
        assert!(caps.admit("2001:db8:0:100::3".parse().unwrap()).is_some());
    }
}

/// Connections not yet identified (TLS handshake, admission), oldest first: when the
/// peer port's permits run out, the oldest is evicted to make room, so an attacker must
/// keep opening connections faster than a real peer completes its handshake to keep it
/// out, rather than just hold them open.
#[derive(Debug, Default)]
pub(crate) struct Evictable {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>>,
}

/// One evictable connection; dropping it (admitted, identified or gone) unregisters it.
#[derive(Debug)]
pub(crate) struct EvictEntry {
    registry: Arc<Evictable>,
    id: u64,
    /// Notified when this connection is evicted.
    pub(crate) evicted: Arc<tokio::sync::Notify>,
}

impl Evictable {
    pub(crate) fn register(self: &Arc<Self>) -> EvictEntry {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = Arc::new(tokio::sync::Notify::new());
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((id, evicted.clone()));
        EvictEntry {
            registry: self.clone(),
            id,
            evicted,
        }
    }

    /// Tell the oldest unidentified connection to go. False if there is none.
    pub(crate) fn evict_oldest(&self) -> bool {
        let oldest = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match oldest {
            Some((_, n)) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for EvictEntry {
    fn drop(&mut self) {
        self.registry
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod evict_tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_unidentified_connection_is_evicted_first() {
        let reg = Arc::new(Evictable::default());
        let first = reg.register();
        let second = reg.register();
        assert!(reg.evict_oldest());
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted.notified())
            .await
            .expect("the oldest is told");
        drop(second); // identified: no longer evictable
        assert!(!reg.evict_oldest(), "nothing left to evict");
    }
}

/// Peer-port connections of roster identities, at most `per_index` per roster index,
/// outside the general permits (so connections of strangers cannot crowd them out).
#[derive(Debug)]
pub(crate) struct RosterSlots {
    per_index: usize,
    live: Mutex<HashMap<u16, usize>>,
}

/// One roster identity's connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct RosterSlot {
    slots: Arc<RosterSlots>,
    index: u16,
}

impl RosterSlots {
    pub(crate) fn new(per_index: usize) -> Arc<Self> {
        Arc::new(Self {
            per_index,
            live: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn take(self: &Arc<Self>, index: u16) -> Option<RosterSlot> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let n = live.entry(index).or_insert(0);
        if *n >= self.per_index {
            return None;
        }
        *n += 1;
        Some(RosterSlot {
            slots: self.clone(),
            index,
        })
    }
}

impl Drop for RosterSlot {
    fn drop(&mut self) {
        let mut live = self.slots.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = live.get_mut(&self.index) {
            *n = n.saturating_sub(1);
        }
    }
}
