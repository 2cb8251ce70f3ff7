//! Non-negotiable 1: the node never writes anything anywhere but memory. Every
//! module `frostamp-node` runs is checked for file-writing and file-creating APIs;
//! only the operator/client CLI (`src/cli*`) may write files.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 9] = [
    "fs::write",
    "File::create",
    "OpenOptions",
    "create_dir",
    "fs::rename",
    "fs::copy",
    "set_permissions",
    "remove_file",
    "tempfile",
];

/// The only exceptions, each one (file, API, why it is not persistence).
const ALLOWED: [(&str, &str, &str); 1] = [(
    "src/pid1/mod.rs",
    "create_dir",
    "PID 1 creates the mount points /proc, /sys and /dev in the initramfs: the kernel's \
     rootfs, which lives in RAM and vanishes at power-off (the image has no block device)",
)];

fn allowed(file: &Path, api: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(f, a, _)| file.ends_with(f) && *a == api)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn node_code_has_no_file_writes() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![
        src.join("bin/frostamp-node.rs"),
        src.join("node.rs"),
        src.join("net.rs"),
        src.join("attestation.rs"),
        src.join("threshold.rs"),
    ];
    for d in [
        "node",
        "net",
        "attestation",
        "threshold",
        "tsp",
        "verify",
        "pid1",
    ] {
        rust_files(&src.join(d), &mut files);
    }
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests inside a module may use temporary files; only the code above them counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for bad in FORBIDDEN {
            if allowed(f, bad) {
                continue;
            }
            assert!(
                !code.contains(bad),
                "{} uses {bad}: the node must not persist anything",
                f.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 25, "only {checked} files checked");
}

#[test]
fn allow_list_entries_are_used() {
    // An exception that no longer matches anything must be removed, not kept "just in case".
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (file, api, _) in ALLOWED {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.contains(api),
            "{file} no longer uses {api}: drop the exception"
        );
    }
}
