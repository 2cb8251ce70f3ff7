//! Per-source connection caps for the node's two ports (issue 13: no unauthenticated
//! client may take every connection permit). A [`SourceCaps`] counts live connections
//! per peer IP address; [`SourceCaps::admit`] hands out a guard that gives the slot
//! back when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Live holders per key, at most `cap` each; [`Caps::take`] hands out a guard that
/// gives the place back when dropped.
#[derive(Debug)]
pub(crate) struct Caps<K: Eq + std::hash::Hash + Copy> {
    cap: usize,
    live: Mutex<HashMap<K, usize>>,
}

/// One place under a [`Caps`]; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Held<K: Eq + std::hash::Hash + Copy> {
    caps: Arc<Caps<K>>,
    key: K,
}

impl<K: Eq + std::hash::Hash + Copy> Caps<K> {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more holder of `key`, unless it already has `cap`.
    pub(crate) fn take(self: &Arc<Self>, key: K) -> Option<Held<K>> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let n = live.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Held {
            caps: self.clone(),
            key,
        })
    }
}

impl<K: Eq + std::hash::Hash + Copy> Drop for Held<K> {
    fn drop(&mut self) {
        let mut live = self.caps.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = live.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// Live connections per source address (or per network prefix), capped.
#[derive(Debug)]
pub(crate) struct SourceCaps {
    /// Count whole networks (IPv4 /24, IPv6 /56) as one source: someone who rents
    /// addresses usually gets them in blocks.
    by_prefix: bool,
    live: Arc<Caps<IpAddr>>,
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
pub(crate) type Slot = Held<IpAddr>;

impl SourceCaps {
    pub(crate) fn new(per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            by_prefix: false,
            live: Caps::new(per_source),
        })
    }

    /// Caps per network prefix ([`prefix_of`]) rather than per address.
    pub(crate) fn by_prefix(per_prefix: usize) -> Arc<Self> {
        Arc::new(Self {
            by_prefix: true,
            live: Caps::new(per_prefix),
        })
    }

    /// A slot for one more connection from `ip`, unless its source already has
    /// `per_source`.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let ip = if self.by_prefix { prefix_of(ip) } else { ip };
        self.live.take(ip)
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

/// Evictable connections, oldest first, each with its source (an address, or the
/// network it counts under). When a port's permits run out, a new connection makes room
/// by evicting one: on the peer port the oldest not yet identified (TLS handshake,
/// admission); on the public port the oldest of the source that holds the most. An
/// attacker must then keep opening connections faster than a real client completes its
/// request (or a real peer its handshake) to keep it out, rather than just hold them
/// open.
#[derive(Debug, Default)]
pub(crate) struct Evictable {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<std::collections::VecDeque<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    id: u64,
    source: IpAddr,
    since: std::time::Instant,
    evicted: Arc<tokio::sync::Notify>,
    /// The connection's permit, if it gave it to the registry: an eviction hands it
    /// straight to the new connection (no wait behind others for a permit to come back).
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
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
    /// Register a connection from `source`, with the permit it holds if it hands it to
    /// the registry (released when the entry drops, or given to whoever evicts it).
    pub(crate) fn register(
        self: &Arc<Self>,
        source: IpAddr,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> EvictEntry {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = Arc::new(tokio::sync::Notify::new());
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Waiting {
                id,
                source,
                since: std::time::Instant::now(),
                evicted: evicted.clone(),
                permit,
            });
        EvictEntry {
            registry: self.clone(),
            id,
            evicted,
        }
    }

    /// Tell the oldest connection to go. False if there is none.
    pub(crate) fn evict_oldest(&self) -> bool {
        let oldest = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match oldest {
            Some(w) => {
                w.evicted.notify_one();
                true
            }
            None => false,
        }
    }

    /// Make room for a new connection from `source`, if it deserves one: tell the
    /// oldest connection of the source holding the most to go, when `source` holds
    /// fewer than that even after this connection; otherwise the oldest connection of
    /// all, if it is older than `stale` (a request that takes that long is a slow
    /// client's, not a real one's). Returns the evicted connection's permit; `None` if
    /// nothing was evicted: the new connection is then shed before any TLS work, so
    /// attackers that each hold their share cannot churn the node's connections (and
    /// CPU) by evicting one another.
    pub(crate) fn evict_for(
        &self,
        source: IpAddr,
        stale: std::time::Duration,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let mut count: HashMap<IpAddr, usize> = HashMap::new();
        for w in waiting.iter() {
            *count.entry(w.source).or_insert(0) += 1;
        }
        let most = count.values().copied().max()?;
        let mine = count.get(&source).copied().unwrap_or(0);
        let victim = if mine + 1 < most {
            waiting
                .iter()
                .position(|w| count.get(&w.source) == Some(&most))
        } else {
            waiting
                .front()
                .is_some_and(|w| w.since.elapsed() >= stale)
                .then_some(0)
        };
        let mut victim = victim.and_then(|i| waiting.remove(i))?;
        drop(waiting);
        victim.evicted.notify_one();
        victim.permit.take()
    }
}

impl Drop for EvictEntry {
    fn drop(&mut self) {
        self.registry
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|w| w.id != self.id);
    }
}

#[cfg(test)]
mod evict_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_oldest_unidentified_connection_is_evicted_first() {
        let reg = Arc::new(Evictable::default());
        let first = reg.register(ip("127.0.0.2"), None);
        let second = reg.register(ip("127.0.0.3"), None);
        assert!(reg.evict_oldest());
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted.notified())
            .await
            .expect("the oldest is told");
        drop(second); // identified: no longer evictable
        assert!(!reg.evict_oldest(), "nothing left to evict");
    }

    #[tokio::test]
    async fn a_lighter_source_evicts_the_oldest_of_the_heaviest() {
        let permits = Arc::new(tokio::sync::Semaphore::new(5));
        let reg = Arc::new(Evictable::default());
        let entry = |from: &str| {
            let p = permits.clone().try_acquire_owned().unwrap();
            reg.register(ip(from), Some(p))
        };
        let honest = entry("127.0.0.1");
        let a1 = entry("127.0.0.2");
        let a2 = entry("127.0.0.2");
        let a3 = entry("127.0.0.2");
        let b1 = entry("127.0.0.3");
        assert_eq!(permits.available_permits(), 0);
        let told = |e: &EvictEntry| futures_ready(e.evicted.notified());
        let long = std::time::Duration::from_secs(3600);
        // A newcomer from a source holding none (or one) takes from the heaviest, and
        // gets its permit at once.
        let p = reg.evict_for(ip("127.0.0.9"), long);
        assert!(p.is_some(), "a permit handed over");
        assert!(told(&a1), "the oldest of the heaviest source goes");
        assert!(!told(&honest) && !told(&a2) && !told(&a3) && !told(&b1));
        drop(a1);
        assert_eq!(
            permits.available_permits(),
            0,
            "the evicted one's permit moved"
        );
        // The heaviest source itself, or one as heavy after admission: nothing goes
        // while no connection is stale.
        assert!(reg.evict_for(ip("127.0.0.2"), long).is_none());
        assert!(reg.evict_for(ip("127.0.0.3"), long).is_none());
        // The twin: a stale connection goes, the oldest of all.
        let q = reg.evict_for(ip("127.0.0.2"), std::time::Duration::ZERO);
        assert!(q.is_some());
        assert!(told(&honest));
        drop((a2, a3, b1));
        assert_eq!(
            permits.available_permits(),
            3,
            "dropped entries release theirs"
        );
        assert!(reg
            .evict_for(ip("127.0.0.9"), std::time::Duration::ZERO)
            .is_none());
        drop((p, q, honest));
        assert_eq!(permits.available_permits(), 5, "and so do the evictors");
    }

    /// Whether a `notified()` future is ready at once (a stored notification).
    fn futures_ready(n: tokio::sync::futures::Notified<'_>) -> bool {
        let mut n = std::pin::pin!(n);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::future::Future::poll(n.as_mut(), &mut cx).is_ready()
    }
}

/// Peer-port connections of roster identities, at most `per_index` per roster index,
/// outside the general permits (so connections of strangers cannot crowd them out).
/// Each slot is a [`Held`] index; dropping it frees the slot.
pub(crate) type RosterSlots = Caps<u16>;

/// How many timestamp requests a node signs at once (issue 13 item 3). The limit adapts
/// to the latency it gets: while requests finish within [`TOLERANCE`] × the node's
/// unloaded latency (plus [`SLACK`]) and the limit is in use, it grows by one per
/// limit's worth of requests; when one takes longer, it shrinks by a quarter (at most
/// once per [`DECREASE_EVERY`]). Beyond it, a request is shed at once (HTTP 503) instead
/// of queueing: latency stays bounded whatever the load, and the limit settles where
/// the node's capacity is, on whatever hardware, network and time servers it has.
///
/// The unloaded latency is learned from requests that started with nothing else in
/// flight: the lowest such latency, rising by 1/64 of the difference for each slower
/// one, so sustained load cannot inflate it quickly.
#[derive(Debug)]
pub(crate) struct Admission {
    state: Mutex<AdmissionState>,
}

#[derive(Debug)]
struct AdmissionState {
    limit: f64,
    in_flight: usize,
    /// The floor of the latency of requests that ran alone (see the type's docs).
    unloaded: Option<std::time::Duration>,
    last_decrease: Option<std::time::Instant>,
}

/// Accepted requests may take this many times the unloaded latency...
pub(crate) const TOLERANCE: u32 = 3;
/// ... plus this.
pub(crate) const SLACK: std::time::Duration = std::time::Duration::from_millis(2);
/// The limit shrinks at most this often.
const DECREASE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// A node always takes this many at once: its latency also grows with the signing it
/// does for other coordinators, which shedding its own requests cannot reduce, and with
/// fewer a handful of clients on a busy 2-vCPU machine got 503s (`docs/benchmarks.md`).
const MIN_AT_ONCE: f64 = 4.0;
const MAX_AT_ONCE: f64 = 256.0;
const FIRST_LIMIT: f64 = 8.0;

/// One admitted request; [`Admitted::finished`] reports its latency, dropping it
/// without (a refusal, an error) only frees its place.
#[derive(Debug)]
pub(crate) struct Admitted<'a> {
    admission: &'a Admission,
    alone: bool,
    started: std::time::Instant,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            state: Mutex::new(AdmissionState {
                limit: FIRST_LIMIT,
                in_flight: 0,
                unloaded: None,
                last_decrease: None,
            }),
        }
    }
}

impl Admission {
    /// A place for one request, or `None` when the limit is reached.
    pub(crate) fn try_admit(&self) -> Option<Admitted<'_>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.in_flight as f64 >= s.limit.floor() {
            return None;
        }
        s.in_flight += 1;
        Some(Admitted {
            admission: self,
            alone: s.in_flight == 1,
            started: std::time::Instant::now(),
        })
    }

    /// The current limit (for `/metrics`).
    pub(crate) fn limit(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).limit as usize
    }

    fn sample(&self, took: std::time::Duration, alone: bool, now: std::time::Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if alone {
            // Down at once, up slowly: a request that ran alone can still share the CPU
            // with the peers' work for other requests, so only the floor is the node's
            // unloaded latency; it may rise over many such requests (a slower network).
            s.unloaded = Some(match s.unloaded {
                Some(u) if took > u => u + (took - u) / 64,
                _ => took,
            });
        }
        let Some(unloaded) = s.unloaded else {
            return; // nothing to compare with yet: the first limit holds
        };
        if took > unloaded * TOLERANCE + SLACK {
            if s.last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_EVERY)
            {
                s.limit = (s.limit * 0.75).max(MIN_AT_ONCE);
                s.last_decrease = Some(now);
            }
        } else if s.in_flight as f64 + 1.0 >= s.limit.floor() {
            // The limit was in use (this request's place is still counted).
            s.limit = (s.limit + 1.0 / s.limit).min(MAX_AT_ONCE);
        }
    }
}

impl Admitted<'_> {
    /// The request got its answer: its latency teaches the limit.
    pub(crate) fn finished(self) {
        let took = self.started.elapsed();
        self.admission
            .sample(took, self.alone, std::time::Instant::now());
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut s = self
            .admission
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_limit_grows_while_fast_and_shrinks_when_slow() {
        let a = Admission::default();
        let now = Instant::now();
        // Alone: 10 ms is the unloaded latency.
        let first = a.try_admit().unwrap();
        assert!(first.alone);
        drop(first);
        a.sample(Duration::from_millis(10), true, now);
        // Fast while the limit is in use: it grows.
        let held: Vec<_> = (0..8).map(|_| a.try_admit().unwrap()).collect();
        assert!(a.try_admit().is_none(), "the ninth is shed at first");
        a.sample(Duration::from_millis(20), false, now);
        assert!(a.limit() >= 8);
        for _ in 0..20 {
            a.sample(Duration::from_millis(20), false, now);
        }
        assert!(a.limit() > 8, "grew: {}", a.limit());
        let grown = a.limit();
        // Slow (over 2 × 10 ms + 2 ms): it shrinks, at most once per 100 ms.
        a.sample(Duration::from_millis(100), false, now);
        a.sample(Duration::from_millis(100), false, now);
        assert_eq!(a.limit(), (grown as f64 * 0.75) as usize);
        a.sample(Duration::from_millis(100), false, now + DECREASE_EVERY);
        assert!(a.limit() < (grown as f64 * 0.75) as usize);
        for _ in 0..100 {
            a.sample(
                Duration::from_millis(100),
                false,
                now + DECREASE_EVERY * 1000,
            );
        }
        drop(held);
        assert!(a.limit() >= MIN_AT_ONCE as usize, "never below the floor");
    }

    #[test]
    fn load_does_not_teach_the_unloaded_latency() {
        let a = Admission::default();
        let now = Instant::now();
        a.sample(Duration::from_millis(10), true, now);
        // Slow requests that shared the node do not move the baseline: they shrink
        // the limit instead.
        for i in 0..50u32 {
            a.sample(Duration::from_millis(500), false, now + DECREASE_EVERY * i);
        }
        assert_eq!(a.limit(), MIN_AT_ONCE as usize);
        // The twin: without a baseline the first limit holds.
        let b = Admission::default();
        b.sample(Duration::from_secs(5), false, now);
        assert_eq!(b.limit(), FIRST_LIMIT as usize);
        // A slow request that ran alone raises the baseline by 1/64 of the difference
        // only; a faster one lowers it at once.
        let unloaded = |a: &Admission| a.state.lock().unwrap().unloaded.unwrap();
        let c = Admission::default();
        c.sample(Duration::from_millis(10), true, now);
        c.sample(Duration::from_millis(650), true, now);
        assert_eq!(unloaded(&c), Duration::from_millis(20));
        c.sample(Duration::from_millis(5), true, now);
        assert_eq!(unloaded(&c), Duration::from_millis(5));
    }
}

/// A token bucket: at most `per_second` events a second on average, `burst` at once.
#[derive(Debug)]
pub(crate) struct Rate {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, Option<std::time::Instant>)>,
}

impl Rate {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            state: Mutex::new((f64::from(burst), None)),
        }
    }

    /// Whether one more event may happen at `now`.
    pub(crate) fn allow(&self, now: std::time::Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *s;
        if let Some(l) = last {
            let refill = now.saturating_duration_since(*l).as_secs_f64() * self.per_second;
            *tokens = (*tokens + refill).min(self.burst);
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_then_the_rate() {
        let r = Rate::new(10, 3);
        let t = Instant::now();
        assert!(r.allow(t) && r.allow(t) && r.allow(t), "the burst");
        assert!(!r.allow(t), "then none at once");
        assert!(r.allow(t + Duration::from_millis(100)), "one per 100 ms");
        assert!(!r.allow(t + Duration::from_millis(110)));
        assert!(r.allow(t + Duration::from_secs(60)));
        assert!(r.allow(t + Duration::from_secs(60)));
        assert!(r.allow(t + Duration::from_secs(60)));
        assert!(
            !r.allow(t + Duration::from_secs(60)),
            "never more than the burst"
        );
    }
}
