//! The coordinator's time evidence (issue 12, `docs/time.md`): requests that arrive
//! while a round to the time servers is in flight wait for the next round (at most
//! [`ROUNDS_IN_FLIGHT`] run at once), so one round serves a whole batch. A round builds the batch's Merkle tree, asks every configured
//! Roughtime server with the root as nonce, verifies each reply, keeps the largest set
//! of servers that agree (the rest are named, outvoted) and, with at least q, gives each
//! request its evidence (path + replies) and the genTime/accuracy it implies. Fewer than
//! q: every request of the batch is refused with `timeNotAvailable`.
//!
//! When no request comes for [`PROBE_EVERY`], a round runs for a random leaf so that
//! `/status` and `/metrics` show the servers' state before clients need them.

use crate::time::config::TimeConfig;
use crate::time::evidence::EvidenceError;
use crate::time::evidence::{
    self, Batch, RoughtimeReply, TimeClaim, TimeEvidence, TimePolicy, Vouch, MAX_BATCH,
};
use crate::time::roughtime::{self, ServerSpec};
use der::asn1::OctetString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long one server may take to answer.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// The first q servers of a round may take this long before the others are asked too.
pub(crate) const HEDGE_AFTER: Duration = Duration::from_millis(250);
/// An idle coordinator still asks the servers this often (status, metrics).
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Why a request gets no time evidence.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum TimeError {
    /// Fewer than q servers vouched and agreed.
    #[error("time not available: {0}")]
    NoQuorum(RoundError),
    /// The service is gone (node shutting down).
    #[error("time service stopped")]
    Stopped,
}

/// Why a round gave no time for its batch.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum RoundError {
    /// No leaf, or more than a batch holds.
    #[error("empty or oversized batch")]
    Batch,
    /// The verified replies do not give a time (too few, or they disagree); with what
    /// each server that failed said.
    #[error("{why}{}", failures_in_parentheses(.failures))]
    NoQuorum {
        /// Why the vouches give no time.
        why: EvidenceError,
        /// `server: reason` of each server whose answer was not used.
        failures: Vec<String>,
    },
    /// The evidence for a request could not be encoded.
    #[error("encoding evidence: {0}")]
    Encoding(EvidenceError),
}

/// ` (a; b)`, or nothing for no failures.
fn failures_in_parentheses(failures: &[String]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!(" ({})", failures.join("; "))
    }
}

/// Why one server's answer is not used.
#[derive(Debug, thiserror::Error)]
enum AskError {
    /// Its address does not resolve.
    #[error("address {address}: {why}")]
    Resolve {
        /// The configured address.
        address: String,
        /// The resolver's error.
        why: std::io::Error,
    },
    /// Its address resolves to nothing.
    #[error("address {0}: no IP address")]
    NoAddress(String),
    /// The exchange failed (timeout, I/O, a malformed packet).
    #[error(transparent)]
    Query(#[from] crate::time::roughtime::QueryError),
    /// The reply could not be kept as evidence.
    #[error("encoding the reply: {0}")]
    Encoding(#[from] der::Error),
    /// The reply does not verify for this root.
    #[error(transparent)]
    Reply(#[from] EvidenceError),
}

/// Evidence for one request, and what it gives.
#[derive(Clone, Debug)]
pub(crate) struct Backing {
    /// DER of the [`TimeEvidence`].
    pub evidence_der: Vec<u8>,
    /// genTime and accuracy it gives.
    pub claim: TimeClaim,
}

pub(crate) use crate::api::admin::{TimeServerStatus as ServerState, TimeStatus};

struct Job {
    leaf: [u8; 32],
    reply: oneshot::Sender<Result<Backing, TimeError>>,
}

/// The coordinator's time service.
pub(crate) struct TimeService {
    policy: TimePolicy,
    tx: mpsc::Sender<Job>,
    status: Arc<Mutex<Shared>>,
}

struct Shared {
    servers: Vec<ServerState>,
    quorum_ok: bool,
    last_round: Option<Instant>,
    /// When a round last asked every server.
    last_full: Option<Instant>,
    rounds: u64,
    requests: u64,
    rounds_without_quorum: u64,
}

impl TimeService {
    /// Check `config` (production builds: only the pinned servers and quorum) and start
    /// the service on the current runtime.
    pub(crate) fn start(
        config: &TimeConfig,
        clock: Arc<dyn crate::clock::Clock>,
        rng: crate::entropy::Rng,
    ) -> Result<Arc<Self>, crate::time::config::TimeConfigError> {
        let policy = config.node_policy()?;
        let addresses: Vec<String> = config.servers.iter().map(|s| s.address.clone()).collect();
        let status = Arc::new(Mutex::new(Shared {
            servers: policy
                .servers
                .iter()
                .zip(&addresses)
                .map(|(s, a)| ServerState {
                    name: s.name.clone(),
                    address: a.clone(),
                    ok: false,
                    last_rtt_ms: None,
                    last_offset_ms: None,
                    last_error: Some("not asked yet".into()),
                    replies_used: 0,
                    failures: 0,
                })
                .collect(),
            quorum_ok: false,
            last_round: None,
            last_full: None,
            rounds: 0,
            requests: 0,
            rounds_without_quorum: 0,
        }));
        let (tx, rx) = mpsc::channel(MAX_BATCH);
        let service = Arc::new(Self {
            policy: policy.clone(),
            tx,
            status: status.clone(),
        });
        let servers: Vec<(ServerSpec, String)> =
            policy.servers.iter().cloned().zip(addresses).collect();
        tokio::spawn(run(policy, servers, rx, status, clock, rng));
        Ok(service)
    }

    /// The servers and quorum evidence is checked against (signers use the same).
    pub(crate) fn policy(&self) -> &TimePolicy {
        &self.policy
    }

    /// Evidence for the request with this leaf: waits for the next round.
    pub(crate) async fn back(&self, leaf: [u8; 32]) -> Result<Backing, TimeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { leaf, reply })
            .await
            .map_err(|_| TimeError::Stopped)?;
        rx.await.map_err(|_| TimeError::Stopped)?
    }

    /// For `/status`.
    pub(crate) fn status(&self) -> TimeStatus {
        let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        TimeStatus {
            quorum: self.policy.quorum,
            quorum_ok: s.quorum_ok,
            last_round_age_s: s.last_round.map(|t| t.elapsed().as_secs_f64()),
            rounds: s.rounds,
            requests: s.requests,
            rounds_without_quorum: s.rounds_without_quorum,
            servers: s.servers.clone(),
        }
    }
}

/// Rounds that may be in flight at once; while every slot is busy, arrivals collect into
/// the next batch. One: measured on the 2-vCPU bench machine (`docs/benchmarks.md`), two
/// rounds in flight shortened no wait worth having and halved the batches, so every token
/// cost more time-server queries and more reply verifications (−8 % tokens/s).
pub(crate) const ROUNDS_IN_FLIGHT: usize = 1;

async fn run(
    policy: TimePolicy,
    servers: Vec<(ServerSpec, String)>,
    mut rx: mpsc::Receiver<Job>,
    status: Arc<Mutex<Shared>>,
    clock: Arc<dyn crate::clock::Clock>,
    rng: crate::entropy::Rng,
) {
    let servers = Arc::new(servers);
    let slots = Arc::new(tokio::sync::Semaphore::new(ROUNDS_IN_FLIGHT));
    // The first round runs at once, so /status knows the servers' state from the start.
    let mut wait = Duration::ZERO;
    loop {
        // A free slot first: while every slot is busy, requests queue up for one batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut jobs = Vec::new();
        let waited = tokio::time::timeout(wait, rx.recv()).await;
        wait = PROBE_EVERY;
        match waited {
            Ok(Some(j)) => jobs.push(j),
            Ok(None) => return,
            Err(_) => {} // idle: probe with a random leaf
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (policy, servers, status, clock, mut rng) = (
            policy.clone(),
            servers.clone(),
            status.clone(),
            clock.clone(),
            rng.clone(),
        );
        tokio::spawn(async move {
            serve_batch(&policy, &servers, jobs, &status, clock.as_ref(), &mut rng).await;
            drop(slot);
        });
    }
}

/// One round for `jobs` (none: an idle probe), and each job's answer.
async fn serve_batch(
    policy: &TimePolicy,
    servers: &[(ServerSpec, String)],
    jobs: Vec<Job>,
    status: &Mutex<Shared>,
    clock: &dyn crate::clock::Clock,
    rng: &mut crate::entropy::Rng,
) {
    let leaves: Vec<[u8; 32]> = if jobs.is_empty() {
        let mut l = [0u8; 32];
        rand_core::RngCore::fill_bytes(rng, &mut l);
        vec![l]
    } else {
        jobs.iter().map(|j| j.leaf).collect()
    };
    let outcome = round(policy, servers, &leaves, jobs.is_empty(), status, clock).await;
    {
        let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
        s.rounds += 1;
        s.requests += jobs.len() as u64;
        s.quorum_ok = outcome.is_ok();
        s.last_round = Some(Instant::now());
        if outcome.is_err() {
            s.rounds_without_quorum += 1;
        }
    }
    match outcome {
        Ok((batch, replies, claim)) => {
            for (i, job) in jobs.into_iter().enumerate() {
                let ev = TimeEvidence {
                    version: evidence::EVIDENCE_VERSION,
                    leaf_index: u32::try_from(i).unwrap_or(u32::MAX),
                    path: batch
                        .path(i)
                        .iter()
                        .filter_map(|p| OctetString::new(p.to_vec()).ok())
                        .collect(),
                    replies: replies.clone(),
                };
                let backing = ev
                    .to_der_bytes()
                    .map(|evidence_der| Backing {
                        evidence_der,
                        claim: claim.clone(),
                    })
                    .map_err(|e| TimeError::NoQuorum(RoundError::Encoding(e)));
                let _ = job.reply.send(backing);
            }
        }
        Err(reason) => {
            for job in jobs {
                let _ = job.reply.send(Err(TimeError::NoQuorum(reason.clone())));
            }
        }
    }
}

type RoundResult = Result<(Batch, Vec<RoughtimeReply>, TimeClaim), RoundError>;
type Answer = Result<(RoughtimeReply, Vouch, Duration), AskError>;

/// One round: ask every server for the batch's root, keep what verifies and agrees.
async fn round(
    policy: &TimePolicy,
    servers: &[(ServerSpec, String)],
    leaves: &[[u8; 32]],
    probe: bool,
    status: &Mutex<Shared>,
    clock: &dyn crate::clock::Clock,
) -> RoundResult {
    let batch = Batch::new(leaves).ok_or(RoundError::Batch)?;
    let root = batch.root();
    // With requests waiting, the q servers that answered well and fastest last time are
    // asked first, and the others only if one of them fails, disagrees or is slower than
    // `HEDGE_AFTER`: an honest quorum costs q queries and q verifications per round, and a
    // lying or silent server costs one extra round trip. An idle probe asks every server,
    // so `/status` shows each one.
    let quorum = policy.quorum.max(1);
    let order = preference(status, servers.len());
    // Every PROBE_EVERY, a busy round asks every server too, so one that failed once
    // is tried again and `/status` stays current under load.
    let ask_all = probe || {
        let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
        let due = s.last_full.is_none_or(|t| t.elapsed() >= PROBE_EVERY);
        if due {
            s.last_full = Some(Instant::now());
        }
        due
    };
    let (first, rest) = if ask_all {
        (order, Vec::new())
    } else {
        let mut first = order;
        let rest = first.split_off(quorum.min(first.len()));
        (first, rest)
    };
    let mut set = tokio::task::JoinSet::new();
    let spawn = |set: &mut tokio::task::JoinSet<(usize, Answer)>, i: usize| {
        if let Some((spec, address)) = servers.get(i) {
            let (spec, address, policy) = (spec.clone(), address.clone(), policy.clone());
            set.spawn(async move { (i, ask(&policy, &spec, &address, &root).await) });
        }
    };
    for i in &first {
        spawn(&mut set, *i);
    }
    let mut rest = Some(rest).filter(|r| !r.is_empty());
    let hedge = tokio::time::sleep(HEDGE_AFTER);
    tokio::pin!(hedge);
    // `None`: not asked or not waited for. With requests waiting, the round ends as soon
    // as q verified replies agree (a slower server is not waited for).
    let mut answers: Vec<Option<Answer>> = servers.iter().map(|_| None).collect();
    loop {
        let joined = tokio::select! {
            j = set.join_next() => j,
            () = &mut hedge, if rest.is_some() => {
                for i in rest.take().unwrap_or_default() {
                    spawn(&mut set, i);
                }
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let Ok((i, a)) = joined else { continue };
        let failed = a.is_err();
        if let Some(slot) = answers.get_mut(i) {
            *slot = Some(a);
        }
        if probe {
            continue;
        }
        let so_far: Vec<Vouch> = answers
            .iter()
            .filter_map(|a| {
                a.as_ref()
                    .and_then(|a| a.as_ref().ok())
                    .map(|(_, v, _)| v.clone())
            })
            .collect();
        if evidence::select(policy, &so_far).0.len() >= quorum {
            set.abort_all();
            break;
        }
        // A failure, or every first server answered without an agreeing quorum: ask
        // the rest now.
        if failed || set.is_empty() {
            for i in rest.take().unwrap_or_default() {
                spawn(&mut set, i);
            }
        }
    }
    let answers: Vec<Option<Answer>> = answers;
    let now_ms = clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // Which verified replies agree.
    let verified: Vec<(usize, &RoughtimeReply, &Vouch)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.as_ref()
                .and_then(|a| a.as_ref().ok())
                .map(|(r, v, _)| (i, r, v))
        })
        .collect();
    let vouches: Vec<Vouch> = verified.iter().map(|(_, _, v)| (*v).clone()).collect();
    let (agreeing, outvoted) = evidence::select(policy, &vouches);
    // Of the agreeing servers, the q whose intervals end earliest back the batch: the
    // bound holds for any q of them (genTime is at or after each one's upper end), this
    // choice gives the earliest genTime and tightest accuracy, and every signer then
    // verifies q replies per token, not all.
    let mut chosen = agreeing.clone();
    chosen.sort_by_key(|c| {
        vouches
            .get(*c)
            .map(|v| v.midpoint_secs.saturating_add(v.radius_secs))
    });
    chosen.truncate(policy.quorum.max(1));
    chosen.sort_unstable();
    let chosen_servers: Vec<usize> = chosen
        .iter()
        .filter_map(|c| verified.get(*c).map(|(i, _, _)| *i))
        .collect();
    let agreeing_servers: Vec<usize> = agreeing
        .iter()
        .filter_map(|c| verified.get(*c).map(|(i, _, _)| *i))
        .collect();
    {
        let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
        for (i, answer) in answers.iter().enumerate() {
            let (Some(st), Some(answer)) = (s.servers.get_mut(i), answer) else {
                continue;
            };
            match answer {
                Ok((_, v, rtt)) => {
                    st.last_rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                    st.last_offset_ms = Some(
                        i64::try_from(v.midpoint_secs)
                            .unwrap_or(i64::MAX)
                            .saturating_mul(1000)
                            .saturating_sub(now_ms),
                    );
                    if chosen_servers.contains(&i) {
                        st.ok = true;
                        st.last_error = None;
                        st.replies_used += 1;
                    } else if agreeing_servers.contains(&i) {
                        st.ok = true;
                        st.last_error = None;
                    } else {
                        st.ok = false;
                        st.failures += 1;
                        st.last_error = Some(format!(
                            "outvoted: midpoint {} ± {} s disagrees with the others",
                            v.midpoint_secs, v.radius_secs
                        ));
                    }
                }
                Err(e) => {
                    st.ok = false;
                    st.failures += 1;
                    st.last_error = Some(e.to_string());
                }
            }
        }
    }
    for o in &outvoted {
        if let Some((i, _, v)) = verified.get(*o) {
            let name = servers.get(*i).map(|(s, _)| s.name.as_str()).unwrap_or("?");
            tracing::warn!(
                server = name,
                midpoint = v.midpoint_secs,
                radius = v.radius_secs,
                "time server outvoted: its time disagrees with the quorum"
            );
        }
    }
    let used: Vec<RoughtimeReply> = chosen
        .iter()
        .filter_map(|c| verified.get(*c).map(|(_, r, _)| (*r).clone()))
        .collect();
    let used_vouches: Vec<Vouch> = chosen
        .iter()
        .filter_map(|c| vouches.get(*c).cloned())
        .collect();
    let claim = evidence::derive(policy, used_vouches).map_err(|why| {
        let failures: Vec<String> = answers
            .iter()
            .zip(servers)
            .filter_map(|(a, (s, _))| {
                a.as_ref()
                    .and_then(|a| a.as_ref().err())
                    .map(|e| format!("{}: {e}", s.name))
            })
            .collect();
        RoundError::NoQuorum { why, failures }
    })?;
    Ok((batch, used, claim))
}

/// Servers in the order a round asks them: those that answered well last time first,
/// fastest first; the others after, in list order.
fn preference(status: &Mutex<Shared>, n: usize) -> Vec<usize> {
    let s = status.lock().unwrap_or_else(|p| p.into_inner());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| {
        let key = |i: &usize| {
            s.servers
                .get(*i)
                .map(|st| (!st.ok, st.last_rtt_ms.unwrap_or(f64::MAX)))
                .unwrap_or((true, f64::MAX))
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.partial_cmp(&kb.1).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.cmp(b))
    });
    order
}

/// Ask one server for `root` and verify its reply.
async fn ask(policy: &TimePolicy, spec: &ServerSpec, address: &str, root: &[u8; 32]) -> Answer {
    let addr = tokio::net::lookup_host(address)
        .await
        .map_err(|why| AskError::Resolve {
            address: address.to_string(),
            why,
        })?
        .next()
        .ok_or_else(|| AskError::NoAddress(address.to_string()))?;
    let (response, rtt) = roughtime::query(addr, spec, root, QUERY_TIMEOUT).await?;
    let reply = RoughtimeReply {
        public_key: OctetString::new(spec.public_key.to_vec())?,
        version: spec.version.wire_value(),
        response: OctetString::new(response)?,
    };
    let vouch = evidence::verify_reply(policy, root, &reply)?;
    Ok((reply, vouch, rtt))
}
