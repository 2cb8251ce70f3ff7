//! Per-source connection caps for the node's two ports (issue 13: no unauthenticated
//! client may take every connection permit). A [`SourceCaps`] counts live connections
//! per peer IP address; [`SourceCaps::admit`] hands out a guard that gives the slot
//! back when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Live connections per source address, capped.
#[derive(Debug)]
pub(crate) struct SourceCaps {
    per_source: usize,
    live: Mutex<HashMap<IpAddr, usize>>,
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
            live: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, unless it already has `per_source`.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
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
}
