//! `GET /metrics`: Prometheus text exposition (format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the signing-latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Counters a node keeps.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: AtomicU64,
    tokens: AtomicU64,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    excluded: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// Commitment batches fetched: in the background, or on demand (an empty
    /// queue, which costs a token an extra round trip).
    commit_fetches: [AtomicU64; 2],
    /// Peers refused because another identity holds (or the roster gives) the index
    /// they claimed.
    claim_conflicts: AtomicU64,
    /// Connections or requests shed before any work, by reason.
    shed: Mutex<BTreeMap<&'static str, u64>>,
    /// `systemFailure` rejections by reason (the client sees only a fixed text).
    system_failures: Mutex<BTreeMap<&'static str, u64>>,
}

/// Why commitments were fetched.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fetch {
    /// Background refill of a queue running low.
    Refill = 0,
    /// The queue was empty when a token needed one.
    OnDemand = 1,
}

impl Metrics {
    pub(crate) fn commit_fetch(&self, why: Fetch) {
        if let Some(c) = self.commit_fetches.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn shed(&self, why: &'static str) {
        *self
            .shed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
    }

    pub(crate) fn system_failure(&self, why: &'static str) {
        *self
            .system_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
    }

    pub(crate) fn claim_conflict(&self) {
        self.claim_conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn token(&self, took: Duration) {
        self.tokens.fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                if let Some(c) = self.latency_buckets.get(i) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn rejection(&self, reason: &'static str) {
        *self
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub(crate) fn excluded(&self, why: &'static str) {
        *self
            .excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
    }

    /// Render with the node's gauges.
    pub(crate) fn render(
        &self,
        phase: &str,
        share_holders: u16,
        n: Option<u16>,
        t: Option<u16>,
        commitments_ready: &BTreeMap<u16, usize>,
        time: Option<&crate::api::admin::TimeStatus>,
    ) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP frostamp_peer_claim_conflicts_total Peers refused for claiming an index another identity holds."
        );
        let _ = writeln!(o, "# TYPE frostamp_peer_claim_conflicts_total counter");
        let _ = writeln!(
            o,
            "frostamp_peer_claim_conflicts_total {}",
            self.claim_conflicts.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP frostamp_shed_total Connections and requests shed before any work, by reason."
        );
        let _ = writeln!(o, "# TYPE frostamp_shed_total counter");
        for (k, v) in self.shed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(o, "frostamp_shed_total{{reason=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_requests_total Timestamp requests received."
        );
        let _ = writeln!(o, "# TYPE frostamp_requests_total counter");
        let _ = writeln!(
            o,
            "frostamp_requests_total {}",
            self.requests.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP frostamp_tokens_total Tokens issued (this node coordinating)."
        );
        let _ = writeln!(o, "# TYPE frostamp_tokens_total counter");
        let _ = writeln!(
            o,
            "frostamp_tokens_total {}",
            self.tokens.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP frostamp_rejections_total Rejected requests by PKIFailureInfo."
        );
        let _ = writeln!(o, "# TYPE frostamp_rejections_total counter");
        for (k, v) in self
            .rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(o, "frostamp_rejections_total{{reason=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_system_failures_total systemFailure rejections by reason (details in the node's log)."
        );
        let _ = writeln!(o, "# TYPE frostamp_system_failures_total counter");
        for (k, v) in self
            .system_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(o, "frostamp_system_failures_total{{reason=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_signers_excluded_total Signers left out of a signing, by cause."
        );
        let _ = writeln!(o, "# TYPE frostamp_signers_excluded_total counter");
        for (k, v) in self
            .excluded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(o, "frostamp_signers_excluded_total{{cause=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_signing_seconds Time to issue a token (coordinator view)."
        );
        let _ = writeln!(o, "# TYPE frostamp_signing_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self
                .latency_buckets
                .get(i)
                .map(|c| c.load(Ordering::Relaxed))
                .unwrap_or(0);
            let _ = writeln!(o, "frostamp_signing_seconds_bucket{{le=\"{b}\"}} {c}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(o, "frostamp_signing_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            o,
            "frostamp_signing_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "frostamp_signing_seconds_count {count}");
        let _ = writeln!(
            o,
            "# HELP frostamp_commitment_batches_total Nonce commitment batches fetched from peers (on_demand: a token waited for one)."
        );
        let _ = writeln!(o, "# TYPE frostamp_commitment_batches_total counter");
        for (k, why) in [("refill", Fetch::Refill), ("on_demand", Fetch::OnDemand)] {
            let v = self
                .commit_fetches
                .get(why as usize)
                .map(|c| c.load(Ordering::Relaxed))
                .unwrap_or(0);
            let _ = writeln!(o, "frostamp_commitment_batches_total{{kind=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_commitments_ready Commitments a peer issued to this node, not used yet."
        );
        let _ = writeln!(o, "# TYPE frostamp_commitments_ready gauge");
        for (peer, ready) in commitments_ready {
            let _ = writeln!(o, "frostamp_commitments_ready{{peer=\"{peer}\"}} {ready}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_share_holders Nodes known to hold a share of this node's group key."
        );
        let _ = writeln!(o, "# TYPE frostamp_share_holders gauge");
        let _ = writeln!(o, "frostamp_share_holders {share_holders}");
        if let (Some(n), Some(t)) = (n, t) {
            let _ = writeln!(o, "# HELP frostamp_cluster_size Configured n and t.");
            let _ = writeln!(o, "# TYPE frostamp_cluster_size gauge");
            let _ = writeln!(o, "frostamp_cluster_size{{param=\"n\"}} {n}");
            let _ = writeln!(o, "frostamp_cluster_size{{param=\"t\"}} {t}");
        }
        let _ = writeln!(
            o,
            "# HELP frostamp_phase The node's phase (1 for the current one)."
        );
        let _ = writeln!(o, "# TYPE frostamp_phase gauge");
        for p in [
            "booting",
            "attesting",
            "awaiting_peers",
            "key_generation",
            "awaiting_certificate",
            "serving",
        ] {
            let _ = writeln!(
                o,
                "frostamp_phase{{phase=\"{p}\"}} {}",
                u8::from(p == phase)
            );
        }
        if let Some(t) = time {
            render_time(&mut o, t);
        }
        o
    }
}

/// Time-server series: per server whether it is used, its round trip and offset, its
/// failures; the quorum and whether the last round reached it.
fn render_time(o: &mut String, t: &crate::api::admin::TimeStatus) {
    let series: [(&str, &str, &str); 4] = [
        (
            "frostamp_time_server_up",
            "gauge",
            "1 if the server's last reply verified and agreed with the quorum.",
        ),
        (
            "frostamp_time_server_rtt_seconds",
            "gauge",
            "Last round trip to the time server.",
        ),
        (
            "frostamp_time_server_offset_seconds",
            "gauge",
            "The server's last midpoint minus this node's clock.",
        ),
        (
            "frostamp_time_server_failures_total",
            "counter",
            "Rounds the server failed (no answer, bad reply, outvoted).",
        ),
    ];
    for (name, kind, help) in series {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for s in &t.servers {
            let value = match name {
                "frostamp_time_server_up" => Some(f64::from(u8::from(s.ok))),
                "frostamp_time_server_rtt_seconds" => s.last_rtt_ms.map(|m| m / 1000.0),
                "frostamp_time_server_offset_seconds" => {
                    s.last_offset_ms.map(|m| m as f64 / 1000.0)
                }
                _ => Some(s.failures as f64),
            };
            if let Some(v) = value {
                let _ = writeln!(o, "{name}{{server=\"{}\"}} {v}", s.name);
            }
        }
    }
    let _ = writeln!(
        o,
        "# HELP frostamp_time_quorum Time servers that must vouch (q)."
    );
    let _ = writeln!(o, "# TYPE frostamp_time_quorum gauge");
    let _ = writeln!(o, "frostamp_time_quorum {}", t.quorum);
    let _ = writeln!(
        o,
        "# HELP frostamp_time_quorum_ok 1 if the last round reached the quorum."
    );
    let _ = writeln!(o, "# TYPE frostamp_time_quorum_ok gauge");
    let _ = writeln!(o, "frostamp_time_quorum_ok {}", u8::from(t.quorum_ok));
    let _ = writeln!(
        o,
        "# HELP frostamp_time_rounds_total Rounds to the time servers, and those without quorum."
    );
    let _ = writeln!(o, "# TYPE frostamp_time_rounds_total counter");
    let _ = writeln!(o, "frostamp_time_rounds_total {}", t.rounds);
    let _ = writeln!(
        o,
        "frostamp_time_rounds_without_quorum_total {}",
        t.rounds_without_quorum
    );
    let _ = writeln!(o, "# HELP frostamp_time_requests_total Requests the rounds served (requests per round: batching).");
    let _ = writeln!(o, "# TYPE frostamp_time_requests_total counter");
    let _ = writeln!(o, "frostamp_time_requests_total {}", t.requests);
}
