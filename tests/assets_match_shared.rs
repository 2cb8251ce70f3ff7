//! The test assets under `tests/data/assets/` are byte-exact copies of
//! `../shared/assets/` (see `tests/data/assets/README.md`). Where that directory is
//! beside the checkout (CI), every copy must be identical to its original.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn copies_are_identical_to_shared_assets() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let copies = root.join("tests/data/assets");
    let shared = root.join("../shared/assets");
    if !shared.exists() {
        eprintln!("../shared/assets not present: nothing to compare against");
        return;
    }
    let mut all = Vec::new();
    files(&copies, &mut all);
    let mut compared = 0;
    for copy in all {
        let rel = copy.strip_prefix(&copies).unwrap();
        if rel == Path::new("README.md") {
            continue;
        }
        let original =
            std::fs::read(shared.join(rel)).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        assert!(
            std::fs::read(&copy).unwrap() == original,
            "{} differs from ../shared/assets",
            rel.display()
        );
        compared += 1;
    }
    assert!(compared > 80, "only {compared} files compared");
}
