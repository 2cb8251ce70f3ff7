//! `frostamp measure`: every vector of `tests/data/assets/snp-measurement/measurement_vectors.json`
//! (see `tests/data/assets/PROVENANCE.md` §2) that the `sev` crate supports, the ones it
//! does not support named with the reason, failing twins, typed refusals of bad firmware,
//! the published `measurements/` files, and a cross-check with PyPI's `sev-snp-measure`
//! (installed into `.venv` by `make interop-deps`).
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod common;

use frostamp::measure::{
    inspect_firmware, launch_digest, ovmf_hash, publish, Cmdline, FirmwareProblem, ImageKind,
    LaunchParams, MeasureError, Published, Vmm, PUBLISHED_VCPU_COUNTS, PUBLISHED_VCPU_TYPES,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/data/assets/snp-measurement/sev-snp-measure")
}

fn amdsev() -> PathBuf {
    fixtures().join("ovmf_AmdSev_suffix.bin")
}

fn ovmfx64() -> PathBuf {
    fixtures().join("ovmf_OvmfX64_suffix.bin")
}

fn vectors() -> serde_json::Value {
    let p = root().join("tests/data/assets/snp-measurement/measurement_vectors.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// One vector's CLI arguments as `--flag value` pairs.
fn arg_map(args: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let k = k.strip_prefix("--").unwrap().to_string();
        m.insert(k, it.next().unwrap().clone());
    }
    m
}

fn fixture_path(name: &str) -> PathBuf {
    if name == "/dev/null" {
        // "/dev/null means an EMPTY file" (the vectors' note).
        PathBuf::from("/dev/null")
    } else {
        fixtures().join(name)
    }
}

/// What the sev crate can compute for a vector.
enum Plan {
    OvmfHash(PathBuf),
    Launch(Box<LaunchParams>),
}

/// Why a vector cannot be computed with the `sev` crate as frostamp builds it
/// (`default-features = false, features = ["snp", "crypto_nossl"]`).
const SEV_SEVES: &str =
    "SEV / SEV-ES launch digest: the sev crate 8 computes it only with its `openssl` \
     feature (measurement::sev), which frostamp does not enable (no OpenSSL in the image); \
     frostamp launches SEV-SNP only";
const GCE: &str = "VMM type gce: the sev crate 8 knows only QEMU, EC2 and KRUN VMSAs";
const EC2: &str =
    "VMM type ec2: the sev crate 8 builds the EC2 VMSA as sev-snp-measure <= 0.0.12 did \
     (rdx = 0); 0.0.13 changed it (rdx = 0x600, commit 4a02bf0). The crate's own EC2 values \
     are reproduced in `ec2_vectors_of_the_sev_crate`";
const SVSM: &str = "snp:svsm mode (Coconut SVSM + OVMF variable store): not in the sev crate 8";

fn plan(args: &[String]) -> Result<Plan, &'static str> {
    let m = arg_map(args);
    let mode = m.get("mode").map(String::as_str).unwrap_or("snp");
    match mode {
        "snp:ovmf-hash" => return Ok(Plan::OvmfHash(fixture_path(&m["ovmf"]))),
        "snp:svsm" => return Err(SVSM),
        "sev" | "seves" => return Err(SEV_SEVES),
        "snp" => {}
        other => panic!("unknown mode {other}"),
    }
    match m.get("vmm-type").map(String::as_str) {
        None | Some("qemu") => {}
        Some("gce") => return Err(GCE),
        Some("ec2") => return Err(EC2),
        Some(other) => panic!("unknown vmm type {other}"),
    }
    let mut p = LaunchParams::new(
        fixture_path(&m["ovmf"]),
        m["vcpus"].parse().unwrap(),
        &m["vcpu-type"],
    );
    p.kernel = m.get("kernel").map(|k| fixture_path(k));
    p.initrd = m.get("initrd").map(|k| fixture_path(k));
    p.cmdline = m.get("append").map(|a| Cmdline::new(a).unwrap());
    p.guest_features = frostamp::measure::parse_guest_features(&m["guest-features"]).unwrap();
    p.ovmf_hash = m
        .get("snp-ovmf-hash")
        .map(|h| hex::decode(h).unwrap().try_into().unwrap());
    Ok(Plan::Launch(Box::new(p)))
}

fn compute(plan: &Plan) -> Result<[u8; 48], MeasureError> {
    match plan {
        Plan::OvmfHash(p) => ovmf_hash(p),
        Plan::Launch(p) => launch_digest(p),
    }
}

fn cases() -> Vec<(String, Vec<String>, String)> {
    vectors()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let args = c["sev_snp_measure_cli_args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            (
                c["name"].as_str().unwrap().to_string(),
                args,
                c["expected_hex"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_supported_vector_reproduces() {
    let mut reproduced = Vec::new();
    for (name, args, expected) in cases() {
        if let Ok(plan) = plan(&args) {
            let got = hex::encode(compute(&plan).unwrap_or_else(|e| panic!("{name}: {e}")));
            assert_eq!(got, expected, "{name}");
            reproduced.push(name);
        }
    }
    eprintln!("reproduced {} vectors:", reproduced.len());
    for n in &reproduced {
        eprintln!("  {n}");
    }
    // snp:ovmf-hash; kernel/initrd/append with gf 0x21/0x1 (with and without a
    // precomputed OVMF hash); no kernel; 4 vCPUs; OvmfX64 without kernel.
    assert_eq!(reproduced.len(), 11);
}

/// The vectors the `sev` crate cannot compute, each with the reason. The list is
/// exact: a new vector, or one that becomes supported, fails this test.
#[test]
fn unsupported_vectors_are_named_with_the_reason() {
    let expected: BTreeMap<&str, &str> = [
        (
            "snp ec2 vcpus=1 EPYC-v4 AmdSev kernel/initrd=/dev/null append=\"\" gf=0x21",
            EC2,
        ),
        (
            "snp ec2 vcpus=1 EPYC-v4 AmdSev kernel/initrd=/dev/null append=\"\" gf=0x1",
            EC2,
        ),
        (
            "snp gce vcpus=1 AmdSev kernel/initrd=/dev/null append=\"\" gf=0x1",
            GCE,
        ),
        (
            "snp gce vcpus=4 AmdSev kernel/initrd=/dev/null append=\"\" gf=0x1",
            GCE,
        ),
        (
            "seves vcpus=1 EPYC-v4 AmdSev kernel/initrd=/dev/null append=\"\"",
            SEV_SEVES,
        ),
        (
            "seves vcpus=4 EPYC-v4 AmdSev kernel/initrd=/dev/null append=\"\"",
            SEV_SEVES,
        ),
        ("sev AmdSev kernel/initrd=/dev/null append=C", SEV_SEVES),
        ("sev AmdSev kernel=/dev/null no initrd no append", SEV_SEVES),
        ("sev OvmfX64 no kernel", SEV_SEVES),
        (
            "snp:svsm vcpus=4 EPYC-v4 svsm_ovmf.fd svsm.bin vars-size=540672 gf=0x21",
            SVSM,
        ),
        (
            "snp:svsm vcpus=2 EPYC-v4 svsm_ovmf.fd svsm.bin vars-size=540672 gf=0x21",
            SVSM,
        ),
    ]
    .into_iter()
    .collect();
    let mut unsupported = BTreeMap::new();
    for (name, args, _) in cases() {
        if let Err(why) = plan(&args) {
            eprintln!("unsupported: {name}\n    {why}");
            unsupported.insert(name, why);
        }
    }
    let unsupported: BTreeMap<&str, &str> =
        unsupported.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(unsupported, expected);
    // The ID-block vectors (virtee/sev and sev-snp-measure): the crate's
    // measurement::idblock needs its `openssl` feature too.
    assert_eq!(vectors()["id_block_vectors"].as_array().unwrap().len(), 2);
    eprintln!(
        "unsupported: 2 id_block_vectors (sev crate measurement::idblock needs its `openssl` feature; \
         frostamp signs no ID block)"
    );
}

/// virtee/sev's own EC2 expectations (the pre-0.0.13 EC2 VMSA), append=None.
#[test]
fn ec2_vectors_of_the_sev_crate() {
    let v = vectors();
    let crate_only = v["virtee_sev_crate_only_cases"].as_array().unwrap();
    assert_eq!(crate_only.len(), 2);
    for c in crate_only {
        let name = c["name"].as_str().unwrap();
        let gf = if name.contains("gf=0x21") { 0x21 } else { 0x1 };
        let p = LaunchParams {
            kernel: Some("/dev/null".into()),
            initrd: Some("/dev/null".into()),
            guest_features: gf,
            vmm: Vmm::Ec2,
            ..LaunchParams::new(amdsev(), 1, "EPYC-v4")
        };
        assert_eq!(
            hex::encode(launch_digest(&p).unwrap()),
            c["expected_hex"].as_str().unwrap(),
            "{name}"
        );
    }
}

/// The vectors' error case: a kernel with a firmware that has no SNP_KERNEL_HASHES.
#[test]
fn firmware_without_kernel_hashes_is_refused() {
    let v = vectors();
    assert!(v["error_cases"][0]["expected_error"]
        .as_str()
        .unwrap()
        .contains("SNP_KERNEL_HASHES"));
    let p = LaunchParams {
        kernel: Some("/dev/null".into()),
        initrd: Some("/dev/null".into()),
        cmdline: Some(Cmdline::new("").unwrap()),
        guest_features: 0x21,
        ..LaunchParams::new(ovmfx64(), 1, "EPYC-v4")
    };
    let e = launch_digest(&p).unwrap_err();
    assert!(matches!(e, MeasureError::NoKernelHashes(_)), "{e}");
    assert!(e.to_string().contains("SNP_KERNEL_HASHES"), "{e}");
    let info = inspect_firmware(&std::fs::read(ovmfx64()).unwrap()).unwrap();
    assert!(!info.has_kernel_hashes());
    assert!(inspect_firmware(&std::fs::read(amdsev()).unwrap())
        .unwrap()
        .has_kernel_hashes());
}

struct Image {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// An image directory with the asset firmware and made-up kernel and initrd.
fn fake_image(cmdline: &str) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::copy(amdsev(), path.join("OVMF.fd")).unwrap();
    let kernel: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(path.join("bzImage"), &kernel).unwrap();
    std::fs::write(path.join("initrd.cpio"), b"070701 not really a cpio").unwrap();
    std::fs::write(path.join("cmdline"), format!("{cmdline}\n")).unwrap();
    Image { _dir: dir, path }
}

fn image_params(dir: &Path, vcpus: u32, vcpu_type: &str) -> LaunchParams {
    let text = std::fs::read(dir.join("cmdline")).unwrap();
    LaunchParams {
        kernel: Some(dir.join("bzImage")),
        initrd: Some(dir.join("initrd.cpio")),
        cmdline: Some(Cmdline::from_file_bytes(&text).unwrap()),
        ..LaunchParams::new(dir.join("OVMF.fd"), vcpus, vcpu_type)
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// One changed byte in kernel, initrd or command line, or another vCPU count or
/// type or guest features, gives another digest.
#[test]
fn failing_twins() {
    let img = fake_image("console=ttyS0 ip=dhcp");
    let base = launch_digest(&image_params(&img.path, 2, "EPYC-Milan")).unwrap();

    let mut other = vec![
        launch_digest(&image_params(&img.path, 1, "EPYC-Milan")).unwrap(),
        launch_digest(&image_params(&img.path, 4, "EPYC-Milan")).unwrap(),
        launch_digest(&image_params(&img.path, 2, "EPYC-Genoa")).unwrap(),
        launch_digest(&LaunchParams {
            guest_features: 0x21,
            ..image_params(&img.path, 2, "EPYC-Milan")
        })
        .unwrap(),
        launch_digest(&LaunchParams {
            cmdline: Some(Cmdline::new("console=ttyS0 ip=dhcq").unwrap()),
            ..image_params(&img.path, 2, "EPYC-Milan")
        })
        .unwrap(),
    ];
    for (file, at) in [("bzImage", 12_345), ("initrd.cpio", 3)] {
        let twin = fake_image("console=ttyS0 ip=dhcp");
        flip(&twin.path.join(file), at);
        other.push(launch_digest(&image_params(&twin.path, 2, "EPYC-Milan")).unwrap());
    }
    for (i, d) in other.iter().enumerate() {
        assert_ne!(d, &base, "twin {i} has the same digest");
    }
    // And the same inputs give the same digest.
    let again = fake_image("console=ttyS0 ip=dhcp");
    assert_eq!(
        launch_digest(&image_params(&again.path, 2, "EPYC-Milan")).unwrap(),
        base
    );
}

fn firmware_error(bytes: &[u8]) -> MeasureError {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("OVMF.fd");
    std::fs::write(&f, bytes).unwrap();
    let p = LaunchParams {
        kernel: Some("/dev/null".into()),
        ..LaunchParams::new(&f, 1, "EPYC-v4")
    };
    launch_digest(&p).unwrap_err()
}

fn problem(e: MeasureError) -> FirmwareProblem {
    match e {
        MeasureError::Firmware { problem, .. } => problem,
        other => panic!("not a firmware error: {other}"),
    }
}

/// Missing or garbled firmware: typed errors, no panic.
#[test]
fn garbled_firmware_is_refused_with_a_typed_error() {
    let good = std::fs::read(amdsev()).unwrap();
    let n = good.len();
    // Missing file.
    let e = launch_digest(&LaunchParams::new("/nonexistent/OVMF.fd", 1, "EPYC-v4")).unwrap_err();
    assert!(matches!(e, MeasureError::Read { .. }), "{e}");
    // Empty, odd-sized.
    assert_eq!(problem(firmware_error(&[])), FirmwareProblem::Size(0));
    assert_eq!(
        problem(firmware_error(&good[..n - 1])),
        FirmwareProblem::Size(n - 1)
    );
    // A firmware-sized file of zeros: no footer table.
    assert_eq!(
        problem(firmware_error(&vec![0; 8192])),
        FirmwareProblem::NoFooterTable
    );
    // Footer GUID damaged.
    let mut b = good.clone();
    b[n - 32 - 18 + 5] ^= 0xff;
    assert_eq!(problem(firmware_error(&b)), FirmwareProblem::NoFooterTable);
    // Footer table size larger than the image.
    let mut b = good.clone();
    b[n - 50] = 0xff;
    b[n - 49] = 0xff;
    assert!(matches!(
        problem(firmware_error(&b)),
        FirmwareProblem::BadFooterTable(_)
    ));
    // "ASEV" signature damaged.
    let asev = good.windows(4).position(|w| w == b"ASEV").unwrap();
    let mut b = good.clone();
    b[asev] = b'X';
    assert!(matches!(
        problem(firmware_error(&b)),
        FirmwareProblem::BadSevMetadata(_)
    ));
    // Section count far beyond the metadata.
    let mut b = good.clone();
    b[asev + 12..asev + 16].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        problem(firmware_error(&b)),
        FirmwareProblem::BadSevMetadata(_)
    ));
    // SNP_KERNEL_HASHES section of the wrong size (the crate would assert).
    let info = inspect_firmware(&good).unwrap();
    let idx = info
        .sections
        .iter()
        .position(|s| s.kind == frostamp::measure::SectionKind::SnpKernelHashes)
        .unwrap();
    let mut b = good.clone();
    let size_at = asev + 16 + idx * 12 + 4;
    b[size_at..size_at + 4].copy_from_slice(&8192u32.to_le_bytes());
    assert!(matches!(
        problem(firmware_error(&b)),
        FirmwareProblem::BadSevMetadata(_)
    ));
    // A firmware with no SEV metadata entry: rename its GUID in the footer table.
    let meta_guid = [0x66, 0x65, 0x88, 0xdc, 0x4a, 0x98, 0x98, 0x47];
    let at = good.windows(8).position(|w| w == meta_guid).unwrap();
    let mut b = good.clone();
    b[at] ^= 0xff;
    assert_eq!(problem(firmware_error(&b)), FirmwareProblem::NoSevMetadata);
    // The OvmfX64 suffix has the metadata but no hashes table: see
    // firmware_without_kernel_hashes_is_refused.
}

/// Random damage to the firmware never panics (the crate indexes and asserts; the
/// checks in `frostamp::measure` stand in front of it).
#[test]
fn random_firmware_damage_never_panics() {
    use rand::{Rng, SeedableRng};
    let good = std::fs::read(amdsev()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("OVMF.fd");
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..400 {
        let mut b = good.clone();
        for _ in 0..rng.gen_range(1..6) {
            // Mostly the tail, where the footer table and metadata live.
            let at = if rng.gen_bool(0.8) {
                rng.gen_range(good.len() - 512..good.len())
            } else {
                rng.gen_range(0..good.len())
            };
            b[at] = rng.gen();
        }
        std::fs::write(&f, &b).unwrap();
        let p = LaunchParams {
            kernel: Some("/dev/null".into()),
            ..LaunchParams::new(&f, 2, "EPYC-Genoa")
        };
        match launch_digest(&p) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("damaged firmware: {ok} measured, {refused} refused");
    assert!(refused > 0);
}

#[test]
fn bad_parameters_are_refused() {
    let p = LaunchParams::new(amdsev(), 0, "EPYC-v4");
    assert!(matches!(launch_digest(&p), Err(MeasureError::Vcpus(0))));
    let p = LaunchParams::new(amdsev(), 1, "EPYC-v9");
    assert!(matches!(launch_digest(&p), Err(MeasureError::VcpuType(_))));
    let p = LaunchParams {
        guest_features: 0x20,
        ..LaunchParams::new(amdsev(), 1, "EPYC-v4")
    };
    assert!(matches!(launch_digest(&p), Err(MeasureError::NotSnp(0x20))));
    let p = LaunchParams {
        initrd: Some("/dev/null".into()),
        ..LaunchParams::new(amdsev(), 1, "EPYC-v4")
    };
    assert!(matches!(launch_digest(&p), Err(MeasureError::NeedsKernel)));
    let p = LaunchParams {
        kernel: Some("/nonexistent/bzImage".into()),
        ..LaunchParams::new(amdsev(), 1, "EPYC-v4")
    };
    assert!(matches!(launch_digest(&p), Err(MeasureError::Read { .. })));
    assert!(matches!(
        Cmdline::new("console=ttyS0 "),
        Err(MeasureError::Cmdline(_))
    ));
}

fn frostamp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::FROSTAMP)
        .arg("measure")
        .args(args)
        .output()
        .unwrap();
    common::code_out_err(&out)
}

#[test]
fn cli_prints_the_digest_and_refuses_bad_firmware() {
    let (a, x) = (amdsev(), ovmfx64());
    let (a, x) = (a.to_str().unwrap(), x.to_str().unwrap());
    let (code, out, err) = frostamp(&[
        "--ovmf",
        a,
        "--kernel",
        "/dev/null",
        "--initrd",
        "/dev/null",
        "--append",
        "console=ttyS0 loglevel=7",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--guest-features",
        "0x21",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"
    );
    let (code, _, err) = frostamp(&["--ovmf", x, "--kernel", "/dev/null", "--vcpus", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("SNP_KERNEL_HASHES"), "{err}");
    let readme = fixtures().join("README.md");
    let (code, _, err) = frostamp(&["--ovmf", readme.to_str().unwrap(), "--vcpus", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a positive multiple of 4096"), "{err}");
    let (code, _, err) = frostamp(&["--ovmf", a, "--vcpus", "1", "--vcpu-type", "Pentium"]);
    assert_eq!(code, 2);
    assert!(err.contains("EPYC-Milan"), "{err}");

    // --image-dir, --append-file and --json agree with the library.
    let img = fake_image("console=ttyS0 quiet");
    let want = hex::encode(launch_digest(&image_params(&img.path, 4, "EPYC-Genoa")).unwrap());
    let dir = img.path.to_str().unwrap();
    let (code, out, err) = frostamp(&[
        "--image-dir",
        dir,
        "--vcpus",
        "4",
        "--vcpu-type",
        "epyc-genoa",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), want);
    let p = |f: &str| img.path.join(f).to_str().unwrap().to_string();
    let (code, out, err) = frostamp(&[
        "--ovmf",
        &p("OVMF.fd"),
        "--kernel",
        &p("bzImage"),
        "--initrd",
        &p("initrd.cpio"),
        "--append-file",
        &p("cmdline"),
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Genoa",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["launch_digest"], want.as_str());
    assert_eq!(j["vcpu_type"], "EPYC-Genoa");
    assert_eq!(j["inputs"]["cmdline"], "console=ttyS0 quiet");
    assert_eq!(j["firmware"]["kernel_hashes"], true);
}

#[test]
fn published_document_covers_the_matrix() {
    let img = fake_image("console=ttyS0");
    let doc = publish(&img.path, ImageKind::Prod, 0x1).unwrap();
    assert!(doc.production);
    assert_eq!(doc.frostamp_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(doc.digests.len(), 9);
    for t in PUBLISHED_VCPU_TYPES {
        for n in PUBLISHED_VCPU_COUNTS {
            let d = doc
                .digests
                .iter()
                .find(|d| d.vcpu_type == t && d.vcpus == n)
                .unwrap();
            assert_eq!(
                d.launch_digest,
                hex::encode(launch_digest(&image_params(&img.path, n, t)).unwrap())
            );
        }
    }
    assert_eq!(doc.launch.cmdline, "console=ttyS0");
    assert_eq!(doc.launch.guest_features, "0x1");
    assert_eq!(doc.inputs.len(), 4);
    let dev = publish(&img.path, ImageKind::Dev, 0x1).unwrap();
    assert!(!dev.production);
    assert!(dev.about.starts_with("NOT FOR PRODUCTION"));
    // The CLI prints the same document.
    let (code, out, err) = frostamp(&[
        "--image-dir",
        img.path.to_str().unwrap(),
        "--publish",
        "prod",
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: Published = serde_json::from_str(&out).unwrap();
    assert_eq!(printed, doc);
}

fn published_file(suffix: &str) -> Option<(PathBuf, Published)> {
    let p = root().join(format!(
        "measurements/{}{suffix}.json",
        env!("CARGO_PKG_VERSION")
    ));
    let bytes = std::fs::read(&p).ok()?;
    Some((p, serde_json::from_slice(&bytes).unwrap()))
}

/// The committed `measurements/<version>.json` (and `-dev.json`) are well formed; that
/// they match a fresh `make image` is `scripts/measurements.sh check` (in `make test`).
#[test]
fn committed_measurements_are_well_formed() {
    let Some((path, doc)) = published_file("") else {
        eprintln!(
            "measurements/{}.json not yet generated (make measurements)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    };
    assert!(doc.production, "{}", path.display());
    assert_eq!(doc.image, "prod");
    assert_eq!(doc.digests.len(), 9);
    let mut all: Vec<&str> = doc
        .digests
        .iter()
        .map(|d| d.launch_digest.as_str())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 9, "digests must differ per vCPU type and count");
    // What `--measurements FILE` (ca issue, ceremony run, verify) reads from it: exactly these.
    let accepted = frostamp::cli::ops::accepted_measurements(&[], &[path]).unwrap();
    let mut accepted: Vec<String> = accepted.iter().map(hex::encode).collect();
    accepted.sort();
    accepted.dedup();
    assert_eq!(
        accepted,
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    if let Some((_, dev)) = published_file("-dev") {
        assert!(!dev.production);
        assert_eq!(dev.image, "dev");
        for d in &dev.digests {
            assert!(
                !all.contains(&d.launch_digest.as_str()),
                "dev digest in prod file"
            );
        }
    }
}

// --- cross-check with PyPI's sev-snp-measure -------------------------------------------

fn sev_snp_measure() -> Option<PathBuf> {
    let p = root().join(".venv/bin/sev-snp-measure");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} missing in CI: make interop-deps installs it",
        p.display()
    );
    eprintln!(
        "{} missing (make interop-deps): cross-check skipped",
        p.display()
    );
    None
}

fn python_digest(tool: &Path, args: &[String]) -> String {
    let out = Command::new(tool)
        .args(args)
        .args(["--output-format", "hex"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sev-snp-measure {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn python_args(p: &LaunchParams) -> Vec<String> {
    let mut a = vec![
        "--mode".to_string(),
        "snp".into(),
        "--vcpus".into(),
        p.vcpus.to_string(),
        "--vcpu-type".into(),
        p.vcpu_type.clone(),
        "--ovmf".into(),
        p.ovmf.display().to_string(),
        "--guest-features".into(),
        format!("{:#x}", p.guest_features),
    ];
    if let Some(k) = &p.kernel {
        a.extend(["--kernel".into(), k.display().to_string()]);
    }
    if let Some(i) = &p.initrd {
        a.extend(["--initrd".into(), i.display().to_string()]);
    }
    if let Some(c) = &p.cmdline {
        a.extend(["--append".into(), c.as_str().to_string()]);
    }
    a
}

/// sev-snp-measure agrees on every vector we compute, on a made-up image over the
/// published matrix, and (when `make image` has run) on our own production image.
#[test]
fn agrees_with_sev_snp_measure() {
    let Some(tool) = sev_snp_measure() else {
        return;
    };
    let mut compared = 0;
    for (name, args, _) in cases() {
        if let Ok(Plan::Launch(p)) = plan(&args) {
            assert_eq!(
                python_digest(&tool, &python_args(&p)),
                hex::encode(launch_digest(&p).unwrap()),
                "{name}"
            );
            compared += 1;
        }
    }
    let img = fake_image("console=ttyS0 ip=dhcp");
    let mut images = vec![("made-up image".to_string(), img.path.clone())];
    let prod = root().join("target/image/prod");
    if prod.join("manifest.json").exists() {
        images.push(("target/image/prod".into(), prod));
    } else {
        eprintln!("target/image/prod not built (make image): own image not cross-checked here");
    }
    for (what, dir) in images {
        for t in PUBLISHED_VCPU_TYPES {
            for n in PUBLISHED_VCPU_COUNTS {
                let p = image_params(&dir, n, t);
                assert_eq!(
                    python_digest(&tool, &python_args(&p)),
                    hex::encode(launch_digest(&p).unwrap()),
                    "{what} {t} x{n}"
                );
                compared += 1;
            }
        }
        eprintln!(
            "{what}: sev-snp-measure agrees on {t} types x {n} counts",
            t = PUBLISHED_VCPU_TYPES.len(),
            n = PUBLISHED_VCPU_COUNTS.len()
        );
    }
    eprintln!("sev-snp-measure agrees on {compared} launches");
}

// --- frostamp verify --measurements ------------------------------------------------------

/// A token whose TSA certificate carries `measurement`; returns (tsr, data, root.pem).
fn token_with_measurement(
    dir: &Path,
    measurement: Option<[u8; 48]>,
) -> (PathBuf, PathBuf, PathBuf) {
    let tsa = common::DevTsa::new()
        .nt(3, 2)
        .measurement(measurement)
        .build::<frostamp::threshold::suite::Secp256K1Sha256>(&mut rand::thread_rng())
        .unwrap();
    let data = dir.join("data.txt");
    std::fs::write(&data, b"measured").unwrap();
    let req = common::sha256_request(b"measured");
    let issued = tsa.issue(&req, &mut rand::thread_rng()).unwrap();
    if let Some(m) = measurement {
        // The extension value as docs/attestation.md shows it: 30 35 02 01 01 04 30 <48 bytes>.
        let mut ext = vec![0x30, 0x35, 0x02, 0x01, 0x01, 0x04, 0x30];
        ext.extend_from_slice(&m);
        assert!(tsa.tsa_cert.windows(ext.len()).any(|w| w == ext));
    }
    let tsr = dir.join("token.tsr");
    std::fs::write(&tsr, &issued.response).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, tsa.ca.certificate_pem().unwrap()).unwrap();
    (tsr, data, root)
}

fn verify_cli(tsr: &Path, data: &Path, root: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = common::verify_cmd(tsr, data, root)
        .args(extra)
        .output()
        .unwrap();
    common::code_out_err(&out)
}

/// `frostamp verify --measurements measurements/<v>.json` accepts a token whose TSA
/// certificate carries a published digest and refuses one with another digest or none.
#[test]
fn verify_checks_the_certificate_measurement_against_published_files() {
    let img = fake_image("console=ttyS0");
    let doc = publish(&img.path, ImageKind::Prod, 0x1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let published = dir.path().join("published.json");
    std::fs::write(&published, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let pubs = published.to_str().unwrap();
    let good: [u8; 48] = hex::decode(&doc.digests[4].launch_digest)
        .unwrap()
        .try_into()
        .unwrap();

    let ok_dir = tempfile::tempdir().unwrap();
    let (tsr, data, root) = token_with_measurement(ok_dir.path(), Some(good));
    let (code, out, err) = verify_cli(&tsr, &data, &root, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = verify_cli(&tsr, &data, &root, &["--measurements", pubs]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&hex::encode(good)), "{out}");
    let (code, out, _) = verify_cli(&tsr, &data, &root, &["--measurements", pubs, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["ok"],
        true
    );

    // Failing twin: one bit of the measurement differs.
    let mut bad = good;
    bad[47] ^= 1;
    let bad_dir = tempfile::tempdir().unwrap();
    let (tsr, data, root) = token_with_measurement(bad_dir.path(), Some(bad));
    let (code, _, err) = verify_cli(&tsr, &data, &root, &["--measurements", pubs]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not published"), "{err}");
    let (code, out, _) = verify_cli(&tsr, &data, &root, &["--measurements", pubs, "--json"]);
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["error"], "launch_measurement");

    // No measurement extension at all.
    let none_dir = tempfile::tempdir().unwrap();
    let (tsr, data, root) = token_with_measurement(none_dir.path(), None);
    let (code, _, err) = verify_cli(&tsr, &data, &root, &["--measurements", pubs]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no launch measurement"), "{err}");

    // A dev-image file does not vouch for the production digest.
    let dev = publish(&fake_image("console=ttyS0 dev").path, ImageKind::Dev, 0x1).unwrap();
    let dev_file = dir.path().join("dev.json");
    std::fs::write(&dev_file, serde_json::to_string(&dev).unwrap()).unwrap();
    let (tsr, data, root) = token_with_measurement(ok_dir.path(), Some(good));
    let (code, _, err) = verify_cli(
        &tsr,
        &data,
        &root,
        &["--measurements", dev_file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
}
