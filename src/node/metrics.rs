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

/// One more for `key`.
fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default() += 1;
}

/// Prometheus text being written: metric families and their samples.
struct Text(String);

impl Text {
    /// A family's `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    /// One sample line: `series` is the name with its labels, if any.
    fn sample(&mut self, series: impl std::fmt::Display, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{series} {value}");
    }
    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, value);
    }
    /// A counter family with one sample per key of `map`, labelled `label`.
    fn by_key(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        map: &Mutex<BTreeMap<&'static str, u64>>,
    ) {
        self.family(name, "counter", help);
        for (k, v) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            self.sample(format_args!("{name}{{{label}=\"{k}\"}}"), v);
        }
    }
}

impl Metrics {
    pub(crate) fn commit_fetch(&self, why: Fetch) {
        if let Some(c) = self.commit_fetches.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn shed(&self, why: &'static str) {
        bump(&self.shed, why);
    }

    pub(crate) fn system_failure(&self, why: &'static str) {
        bump(&self.system_failures, why);
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
        bump(&self.rejections, reason);
    }

    pub(crate) fn excluded(&self, why: &'static str) {
        bump(&self.excluded, why);
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
        let mut o = Text(String::new());
        o.single(
            "frostamp_peer_claim_conflicts_total",
            "counter",
            "Peers refused for claiming an index another identity holds.",
            self.claim_conflicts.load(Ordering::Relaxed),
        );
        o.by_key(
            "frostamp_shed_total",
            "Connections and requests shed before any work, by reason.",
            "reason",
            &self.shed,
        );
        o.single(
            "frostamp_requests_total",
            "counter",
            "Timestamp requests received.",
            self.requests.load(Ordering::Relaxed),
        );
        o.single(
            "frostamp_tokens_total",
            "counter",
            "Tokens issued (this node coordinating).",
            self.tokens.load(Ordering::Relaxed),
        );
        o.by_key(
            "frostamp_rejections_total",
            "Rejected requests by PKIFailureInfo.",
            "reason",
            &self.rejections,
        );
        o.by_key(
            "frostamp_system_failures_total",
            "systemFailure rejections by reason (details in the node's log).",
            "reason",
            &self.system_failures,
        );
        o.by_key(
            "frostamp_signers_excluded_total",
            "Signers left out of a signing, by cause.",
            "cause",
            &self.excluded,
        );
        o.family(
            "frostamp_signing_seconds",
            "histogram",
            "Time to issue a token (coordinator view).",
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self
                .latency_buckets
                .get(i)
                .map(|c| c.load(Ordering::Relaxed))
                .unwrap_or(0);
            o.sample(
                format_args!("frostamp_signing_seconds_bucket{{le=\"{b}\"}}"),
                c,
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        o.sample("frostamp_signing_seconds_bucket{le=\"+Inf\"}", count);
        o.sample(
            "frostamp_signing_seconds_sum",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        o.sample("frostamp_signing_seconds_count", count);
        o.family(
            "frostamp_commitment_batches_total",
            "counter",
            "Nonce commitment batches fetched from peers (on_demand: a token waited for one).",
        );
        for (k, why) in [("refill", Fetch::Refill), ("on_demand", Fetch::OnDemand)] {
            let v = self
                .commit_fetches
                .get(why as usize)
                .map(|c| c.load(Ordering::Relaxed))
                .unwrap_or(0);
            o.sample(
                format_args!("frostamp_commitment_batches_total{{kind=\"{k}\"}}"),
                v,
            );
        }
        o.family(
            "frostamp_commitments_ready",
            "gauge",
            "Commitments a peer issued to this node, not used yet.",
        );
        for (peer, ready) in commitments_ready {
            o.sample(
                format_args!("frostamp_commitments_ready{{peer=\"{peer}\"}}"),
                ready,
            );
        }
        o.single(
            "frostamp_share_holders",
            "gauge",
            "Nodes known to hold a share of this node's group key.",
            share_holders,
        );
        if let (Some(n), Some(t)) = (n, t) {
            o.family("frostamp_cluster_size", "gauge", "Configured n and t.");
            o.sample("frostamp_cluster_size{param=\"n\"}", n);
            o.sample("frostamp_cluster_size{param=\"t\"}", t);
        }
        o.family(
            "frostamp_phase",
            "gauge",
            "The node's phase (1 for the current one).",
        );
        for p in [
            "booting",
            "attesting",
            "awaiting_peers",
            "key_generation",
            "awaiting_certificate",
            "serving",
        ] {
            o.sample(
                format_args!("frostamp_phase{{phase=\"{p}\"}}"),
                u8::from(p == phase),
            );
        }
        if let Some(t) = time {
            render_time(&mut o, t);
        }
        o.0
    }
}

/// Time-server series: per server whether it is used, its round trip and offset, its
/// failures; the quorum and whether the last round reached it.
fn render_time(o: &mut Text, t: &crate::api::admin::TimeStatus) {
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
        o.family(name, kind, help);
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
                o.sample(format_args!("{name}{{server=\"{}\"}}", s.name), v);
            }
        }
    }
    o.single(
        "frostamp_time_quorum",
        "gauge",
        "Time servers that must vouch (q).",
        t.quorum,
    );
    o.single(
        "frostamp_time_quorum_ok",
        "gauge",
        "1 if the last round reached the quorum.",
        u8::from(t.quorum_ok),
    );
    o.single(
        "frostamp_time_rounds_total",
        "counter",
        "Rounds to the time servers, and those without quorum.",
        t.rounds,
    );
    o.sample(
        "frostamp_time_rounds_without_quorum_total",
        t.rounds_without_quorum,
    );
    o.single(
        "frostamp_time_requests_total",
        "counter",
        "Requests the rounds served (requests per round: batching).",
        t.requests,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod render_tests {
    use super::*;

    /// Every family with samples in it, as the node renders them.
    fn sample_text() -> String {
        let m = Metrics::default();
        m.request();
        m.request();
        m.token(Duration::from_millis(7));
        m.token(Duration::from_millis(300));
        m.rejection("badAlg");
        m.system_failure("internal");
        m.excluded("timeout");
        m.excluded("timeout");
        m.shed("peer_port_full");
        m.claim_conflict();
        m.commit_fetch(Fetch::OnDemand);
        let ready: BTreeMap<u16, usize> = [(2, 5), (3, 0)].into_iter().collect();
        let time = crate::api::admin::TimeStatus {
            servers: vec![crate::api::admin::TimeServerStatus {
                name: "a".into(),
                address: "127.0.0.1:1".into(),
                ok: true,
                last_rtt_ms: Some(1.5),
                last_offset_ms: Some(-20),
                last_error: None,
                replies_used: 3,
                failures: 1,
            }],
            last_round_age_s: Some(0.5),
            quorum: 2,
            quorum_ok: true,
            rounds: 9,
            rounds_without_quorum: 1,
            requests: 30,
        };
        m.render("serving", 4, Some(5), Some(3), &ready, Some(&time))
    }

    /// The exposition text is an interface (dashboards, alerts, the tests' `metric`
    /// reader): rendered byte for byte as `tests/data/metrics-sample.prom`, which was
    /// made by the renderer before it was restructured.
    #[test]
    fn the_exposition_text_is_unchanged() {
        assert_eq!(
            sample_text(),
            include_str!("../../tests/data/metrics-sample.prom")
        );
    }
}
