//! `frostamp measure`: the expected SEV-SNP launch digest of a boot image.

use crate::certs::launch_measurement_of;
use crate::cli::ops::accepted_measurements;
use crate::measure::{
    canonical_vcpu_type, image_paths, inspect_firmware, launch_digest, parse_guest_features,
    publish, Cmdline, ImageKind, LaunchParams, DEFAULT_GUEST_FEATURES,
};
use crate::verify::token::{extract_token, parse_token};
use crate::x509::CertDer;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `frostamp measure`.
#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// The image directory (`make image` → target/image/prod): OVMF.fd, bzImage,
    /// initrd.cpio and cmdline inside it. Instead of --ovmf/--kernel/--initrd/--append.
    #[arg(long, conflicts_with_all = ["ovmf", "kernel", "initrd", "append", "append_file"])]
    pub image_dir: Option<PathBuf>,
    /// The firmware (`-bios`): an OVMF AmdSevX64 build for measured direct boot.
    #[arg(long, required_unless_present = "image_dir")]
    pub ovmf: Option<PathBuf>,
    /// The kernel (`-kernel`).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// The initrd (`-initrd`).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// The kernel command line (`-append`), verbatim.
    #[arg(long, conflicts_with = "append_file", allow_hyphen_values = true)]
    pub append: Option<String>,
    /// The kernel command line from a file (trailing newlines dropped).
    #[arg(long)]
    pub append_file: Option<PathBuf>,
    /// Number of vCPUs (`-smp`).
    #[arg(long, required_unless_present = "publish")]
    pub vcpus: Option<u32>,
    /// vCPU type (`-cpu`): EPYC-v4, EPYC-Milan, EPYC-Genoa, EPYC-Turin, ...
    #[arg(long, default_value = "EPYC-v4")]
    pub vcpu_type: String,
    /// Guest features (VMSA SEV_FEATURES), hex 0x.. or decimal.
    #[arg(long, default_value = "0x1")]
    pub guest_features: String,
    /// Print the published measurements document (`prod` or `dev`) for --image-dir:
    /// input hashes, launch parameters, digests for EPYC-Milan/Genoa/v4 × 1, 2, 4 vCPUs.
    #[arg(long, requires = "image_dir", value_parser = ["prod", "dev"])]
    pub publish: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Run `frostamp measure`.
pub fn run(a: &MeasureArgs) -> Result<i32> {
    let features = parse_guest_features(&a.guest_features)?;
    if let Some(kind) = &a.publish {
        let dir = a
            .image_dir
            .as_deref()
            .ok_or_else(|| anyhow!("--publish needs --image-dir"))?;
        let kind = if kind == "prod" {
            ImageKind::Prod
        } else {
            ImageKind::Dev
        };
        if features != DEFAULT_GUEST_FEATURES {
            eprintln!("note: publishing with guest features {features:#x}");
        }
        let doc = publish(dir, kind, features)?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let vcpus = a.vcpus.ok_or_else(|| anyhow!("--vcpus N is required"))?;
    let vcpu_type = canonical_vcpu_type(&a.vcpu_type)?;
    let (ovmf, kernel, initrd, cmdline) = match &a.image_dir {
        Some(dir) => {
            let [ovmf, kernel, initrd, cmdline] = image_paths(dir);
            let text = std::fs::read(&cmdline)
                .with_context(|| format!("cannot read {}", cmdline.display()))?;
            (
                ovmf,
                Some(kernel),
                Some(initrd),
                Some(Cmdline::from_file_bytes(&text)?),
            )
        }
        None => {
            let ovmf = a
                .ovmf
                .clone()
                .ok_or_else(|| anyhow!("--ovmf FILE is required"))?;
            let cmdline = match (&a.append, &a.append_file) {
                (Some(s), None) => Some(Cmdline::new(s)?),
                (None, Some(f)) => Some(Cmdline::from_file_bytes(
                    &std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
                )?),
                (None, None) => None,
                (Some(_), Some(_)) => bail!("give --append or --append-file, not both"),
            };
            (ovmf, a.kernel.clone(), a.initrd.clone(), cmdline)
        }
    };
    let params = LaunchParams {
        kernel: kernel.clone(),
        initrd: initrd.clone(),
        cmdline: cmdline.clone(),
        guest_features: features,
        ..LaunchParams::new(&ovmf, vcpus, &vcpu_type)
    };
    let digest = hex::encode(launch_digest(&params)?);
    if !a.json {
        println!("{digest}");
        return Ok(0);
    }
    let fw_bytes =
        std::fs::read(&ovmf).with_context(|| format!("cannot read {}", ovmf.display()))?;
    let fw = inspect_firmware(&fw_bytes).map_err(|e| anyhow!("{}: {e}", ovmf.display()))?;
    let opt_sha = |p: &Option<PathBuf>| p.as_deref().map(sha256_of).transpose();
    let j = serde_json::json!({
        "launch_digest": digest,
        "mode": "sev-snp",
        "vmm": "qemu",
        "vcpus": vcpus,
        "vcpu_type": vcpu_type,
        "guest_features": format!("{features:#x}"),
        "inputs": {
            "ovmf": {"path": ovmf.display().to_string(), "sha256": hex::encode(Sha256::digest(&fw_bytes))},
            "kernel": kernel.as_ref().map(|p| p.display().to_string()),
            "kernel_sha256": opt_sha(&kernel)?,
            "initrd": initrd.as_ref().map(|p| p.display().to_string()),
            "initrd_sha256": opt_sha(&initrd)?,
            "cmdline": cmdline.as_ref().map(|c| c.as_str().to_string()),
            "cmdline_measured_sha256": cmdline.as_ref().map(|c| hex::encode(c.measured_sha256())),
        },
        "firmware": {
            "size": fw.size,
            "kernel_hashes": fw.has_kernel_hashes(),
            "sev_es_reset_eip": format!("{:#x}", fw.reset_eip),
            "sections": fw.sections,
        },
    });
    println!("{}", serde_json::to_string_pretty(&j)?);
    Ok(0)
}

/// `frostamp verify --measurements FILE...`: after the token verified, require that the
/// TSA certificate that signed it carries a launch measurement published in FILE(s)
/// (`measurements/<version>.json`). Every candidate certificate with the signer's
/// subject (carried in the token or given with --certs) must carry a published
/// measurement, so a look-alike certificate added beside the signer can only make the
/// check fail. Returns `Some(1)` (after printing why) when the check fails, `None` when
/// it passes or was not asked for.
pub fn verify_published(
    response: &[u8],
    extra: &[CertDer],
    signer_subject: &str,
    files: &[PathBuf],
    json: bool,
) -> Result<Option<i32>> {
    if files.is_empty() {
        return Ok(None);
    }
    let accepted = accepted_measurements(&[], files)?;
    let token = extract_token(response)?;
    let carried = parse_token(&token)?.certificates;
    let signers: Vec<&CertDer> = carried
        .iter()
        .chain(extra)
        .filter(|c| c.subject() == signer_subject)
        .collect();
    let mut found = None;
    let mut problem = None;
    for c in &signers {
        match launch_measurement_of(&c.der) {
            Ok(Some(m)) if accepted.contains(&m) => found = Some(m),
            Ok(Some(m)) => {
                problem = Some(format!(
                    "the TSA certificate's launch measurement {} is not published in {}",
                    hex::encode(m),
                    files_list(files)
                ))
            }
            Ok(None) => {
                problem = Some("the TSA certificate carries no launch measurement".to_string())
            }
            Err(e) => problem = Some(format!("launch measurement extension: {e}")),
        }
    }
    match (problem, found) {
        (None, Some(m)) => {
            if !json {
                println!(
                    "Launch measurement: {} (published in {})",
                    hex::encode(m),
                    files_list(files)
                );
            }
            Ok(None)
        }
        (problem, _) => {
            let msg = problem.unwrap_or_else(|| "no signer certificate to check".to_string());
            if json {
                let j =
                    serde_json::json!({"ok": false, "error": "launch_measurement", "message": msg});
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                eprintln!("Verification: FAILED (launch_measurement)");
                eprintln!("  {msg}");
            }
            Ok(Some(1))
        }
    }
}

fn files_list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
