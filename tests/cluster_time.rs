//! Time evidence on a running cluster (issue 12): five node processes and three real
//! local Roughtime servers (`roughenough`, keys made per run) started by `frostamp cluster
//! up`. Tokens carry the servers' replies; a lying server is named and outvoted; two
//! stopped servers give `timeNotAvailable`; moving every host's clock never moves genTime.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;
use common::{cluster_up_cmd, pinned, run_ok, time_server, verify_time_cmd, Down, FROSTAMP};

use frostamp::cli::ops::{ClusterFile, ClusterNode};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn up(d: &Path, offsets: &str, clock_file: Option<&Path>) -> ClusterFile {
    // The clock offset file is inherited by every node process (development builds only).
    let envs: Vec<(&str, &Path)> = clock_file
        .map(|f| ("FROSTAMP_INSECURE_CLOCK_OFFSET_FILE", f))
        .into_iter()
        .collect();
    cluster_up_cmd(d, &["--time-offsets", offsets], &envs).1
}

fn status(n: &ClusterNode) -> frostamp::api::admin::Status {
    let rt = common::current_thread_runtime();
    rt.block_on(frostamp::ceremony::status(&pinned(n))).unwrap()
}

/// `frostamp stamp` through the cluster: (success, stdout + stderr).
fn stamp(d: &Path, data: &Path, out: &Path) -> (bool, String) {
    let o = Command::new(FROSTAMP)
        .arg("stamp")
        .arg(data)
        .arg("--cluster")
        .arg(d)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `frostamp verify --json` with the cluster's time servers.
fn verify_json(d: &Path, file: &ClusterFile, tsr: &Path, data: &Path) -> serde_json::Value {
    let time = d.join("time-servers.json");
    let o = run_ok(
        verify_time_cmd(tsr, data, file.root.as_ref().unwrap(), &time).arg("--json"),
        "verify failed:",
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn vouched(v: &serde_json::Value) -> Vec<String> {
    v["time_evidence"]["vouched"]
        .as_array()
        .expect("time evidence reported")
        .iter()
        .map(|x| x["server"].as_str().unwrap().to_string())
        .collect()
}

fn wait_health(n: &ClusterNode, want: &str, within: Duration) -> frostamp::api::admin::Status {
    let deadline = Instant::now() + within;
    loop {
        let s = status(n);
        let h = serde_json::to_value(s.health).unwrap();
        if h.as_str() == Some(want) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never reported {want}: health {h}, reason {:?}, time {:?}",
            n.index,
            s.health_reason,
            s.time
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn time_servers_lying_or_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cluster");
    let _down = Down(&d);
    // local-3 runs an hour ahead.
    let file = up(&d, "0,0,3600", None);
    let data = dir.path().join("a.txt");
    std::fs::write(&data, b"stamped while a time server lies\n").unwrap();
    let tsr = dir.path().join("a.tsr");
    let (ok, text) = stamp(&d, &data, &tsr);
    assert!(ok, "{text}");
    let v = verify_json(&d, &file, &tsr, &data);
    assert_eq!(
        vouched(&v),
        vec!["local-1", "local-2"],
        "the liar is outvoted"
    );
    // Named in /status and /metrics.
    let s = status(&file.nodes[0]);
    let t = s.time.unwrap();
    let liar = t.servers.iter().find(|x| x.name == "local-3").unwrap();
    assert!(!liar.ok);
    assert!(
        liar.last_error
            .as_deref()
            .unwrap_or("")
            .contains("outvoted"),
        "{liar:?}"
    );
    let off = liar.last_offset_ms.unwrap();
    assert!((3_590_000..=3_610_000).contains(&off), "offset {off} ms");

    // Two honest servers stopped: only the liar answers, no quorum.
    time_server(&d, "--stop", 1);
    time_server(&d, "--stop", 2);
    let s = wait_health(&file.nodes[0], "no_time", Duration::from_secs(30));
    assert!(
        s.health_reason.as_deref().unwrap_or("").contains("local-1"),
        "{:?}",
        s.health_reason
    );
    let (ok, text) = stamp(&d, &data, &dir.path().join("b.tsr"));
    assert!(!ok, "no token without evidence:\n{text}");
    assert!(text.contains("timeNotAvailable"), "{text}");

    // Back: tokens again.
    time_server(&d, "--start", 1);
    time_server(&d, "--start", 2);
    wait_health(&file.nodes[0], "healthy", Duration::from_secs(30));
    let (ok, text) = stamp(&d, &data, &dir.path().join("c.tsr"));
    assert!(ok, "{text}");
}

#[test]
fn every_host_clock_an_hour_off_never_moves_gen_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cluster");
    let clock = dir.path().join("clock-offset");
    std::fs::write(&clock, "0").unwrap();
    let _down = Down(&d);
    let file = up(&d, "0,0,0", Some(&clock));
    let data = dir.path().join("a.txt");
    std::fs::write(&data, b"stamped while every host's clock is off\n").unwrap();

    // Every node's clock an hour ahead: the token carries the true time.
    std::fs::write(&clock, "3600").unwrap();
    let tsr = dir.path().join("ahead.tsr");
    let before = now_secs();
    let (ok, text) = stamp(&d, &data, &tsr);
    let after = now_secs();
    assert!(ok, "{text}");
    let v = verify_json(&d, &file, &tsr, &data);
    let claim = &v["time_evidence"];
    let gen = claim["gen_time_secs"].as_u64().unwrap();
    let acc = claim["accuracy_secs"].as_u64().unwrap();
    assert!(
        gen >= before && gen <= after + acc,
        "genTime {gen} is the true time ({before}..{after}, accuracy {acc}), not the hosts' (+3600)"
    );
    assert_eq!(vouched(&v).len(), 2, "q replies back each token");

    // Every node's clock an hour behind: the evidence is in every signer's future; no
    // token, and never one dated an hour back.
    std::fs::write(&clock, "-3600").unwrap();
    let tsr = dir.path().join("behind.tsr");
    let (ok, text) = stamp(&d, &data, &tsr);
    assert!(!ok, "no token:\n{text}");
    assert!(text.contains("timeNotAvailable"), "{text}");
    let refusals = status(&file.nodes[0]).refusals.join("\n");
    assert!(
        refusals.contains("after this signer's clock"),
        "signers name the future-dated evidence:\n{refusals}"
    );

    // Clocks right again: tokens again.
    std::fs::write(&clock, "0").unwrap();
    let (ok, text) = stamp(&d, &data, &dir.path().join("ok.tsr"));
    assert!(ok, "{text}");
}
