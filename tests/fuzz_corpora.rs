//! Replays the committed fuzz corpora (`fuzz/seeds/<target>/` and
//! `fuzz/corpus-min/<target>/`) through exactly the checks the cargo-fuzz targets run
//! (`fuzz/checks.rs`, included here), on stable Rust: a corpus file that panics, or
//! breaks a round trip or an invariant, fails this test and names the file.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

// `join_chain` is for write_seeds.rs.
#[path = "../fuzz/checks.rs"]
#[allow(dead_code, unreachable_pub)] // `pub` for the fuzz crate, which links it as a library
mod checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(target: &str) -> usize {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of fuzz/checks.rs");
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    let mut deep = 0;
    for dir in ["seeds", "corpus-min"] {
        for file in files(&fuzz.join(dir).join(target)) {
            let data = std::fs::read(&file).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            let Ok(through) = outcome else {
                panic!("fuzz target {target}: {} fails its checks", file.display());
            };
            n += 1;
            deep += usize::from(through);
        }
    }
    eprintln!("{target}: {n} corpus files replayed, {deep} through the deepest check");
    assert!(n > 0, "fuzz target {target} has no committed corpus");
    assert!(
        deep > 0,
        "no committed input of fuzz target {target} gets through its deepest check: \
         stale seeds or fixtures (cargo run --manifest-path fuzz/Cargo.toml --example write_seeds)"
    );
    n
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(n, _)| *n).collect();
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut targets: Vec<String> = files(&fuzz)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    targets.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(targets, sorted, "fuzz_targets/ and checks::TARGETS differ");
    let this = include_str!("fuzz_corpora.rs");
    for name in names {
        assert!(
            this.contains(&format!("fn {name}() {{")),
            "no replay test for {name}"
        );
    }
}

#[test]
fn request() {
    replay("request");
}

#[test]
fn token() {
    replay("token");
}

#[test]
fn report() {
    replay("report");
}

#[test]
fn peer_frame() {
    replay("peer_frame");
}

#[test]
fn install() {
    replay("install");
}

#[test]
fn csr() {
    replay("csr");
}

#[test]
fn bundle() {
    replay("bundle");
}

#[test]
fn node_config() {
    replay("node_config");
}

#[test]
fn measurements() {
    replay("measurements");
}

#[test]
fn roughtime() {
    replay("roughtime");
}

#[test]
fn time_evidence() {
    replay("time_evidence");
}

#[test]
fn crl() {
    replay("crl");
}

#[test]
fn tls_csr() {
    replay("tls_csr");
}

#[test]
fn tls_upload() {
    replay("tls_upload");
}
