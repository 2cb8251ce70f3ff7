//! `frostamp attestation verify`: check an SEV-SNP report with the same code the
//! nodes and the CA use, and print the decoded report and each check's result.

use crate::attestation::{verify_report, Expected, PolicyRules, Report, RootSet};
use crate::x509::parse_certificates;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::time::SystemTime;

/// The checks of `verify_report`, in order.
pub const CHECKS: [&str; 9] = [
    "parse",
    "family",
    "chain",
    "signature",
    "vcek-extensions",
    "policy",
    "tcb",
    "measurement",
    "report-data",
];

/// Read a report: raw 1184 bytes, or ASCII hex (whitespace ignored).
pub fn read_report(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read report {}", path.display()))?;
    if bytes.len() == crate::attestation::report::REPORT_LEN {
        return Ok(bytes);
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(&text).map_err(|_| {
        anyhow!(
            "{} is neither a {}-byte report nor hex",
            path.display(),
            crate::attestation::report::REPORT_LEN
        )
    })
}

/// Inputs of [`run`].
#[derive(Debug)]
pub struct Args<'a> {
    /// Report file.
    pub report: &'a Path,
    /// VCEK or VLEK (DER or PEM).
    pub vcek: &'a Path,
    /// Optional ASK/ARK (PEM), untrusted.
    pub chain: Option<&'a Path>,
    /// Expected measurement (hex).
    pub measurement: Option<&'a str>,
    /// Expected REPORT_DATA (hex).
    pub report_data: Option<&'a str>,
    /// Verification time.
    pub at: SystemTime,
    /// Policy rules.
    pub rules: PolicyRules,
    /// Roots.
    pub roots: RootSet,
    /// JSON output.
    pub json: bool,
}

/// Verify and print; returns the exit code (0 verified, 1 failed).
pub fn run(a: Args<'_>) -> Result<i32> {
    let report = read_report(a.report)?;
    let vcek = parse_certificates(
        &std::fs::read(a.vcek).with_context(|| format!("cannot read {}", a.vcek.display()))?,
    )?
    .into_iter()
    .next()
    .ok_or_else(|| anyhow!("{} holds no certificate", a.vcek.display()))?;
    let chain: Vec<Vec<u8>> = match a.chain {
        Some(p) => parse_certificates(
            &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?
        .into_iter()
        .map(|c| c.der)
        .collect(),
        None => Vec::new(),
    };
    let hexn = |s: Option<&str>, n: usize, what: &str| -> Result<Option<Vec<u8>>> {
        s.map(|h| {
            let v = hex::decode(h.trim()).map_err(|_| anyhow!("{what} is not hex"))?;
            if v.len() != n {
                return Err(anyhow!("{what} must be {n} bytes, got {}", v.len()));
            }
            Ok(v)
        })
        .transpose()
    };
    let measurement =
        hexn(a.measurement, 48, "--measurement")?.and_then(|v| <[u8; 48]>::try_from(v).ok());
    let report_data =
        hexn(a.report_data, 64, "--report-data")?.and_then(|v| <[u8; 64]>::try_from(v).ok());
    let expected = Expected {
        measurement,
        report_data,
        policy: a.rules,
        ..Expected::default()
    };
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let result = verify_report(&report, &vcek.der, &refs, &a.roots, &expected, a.at);
    let parsed = Report::parse(&report).ok();
    let failed_at = result.as_ref().err().map(|e| e.check());
    let mut checks = Vec::new();
    let mut reached = true;
    for c in CHECKS {
        let skipped = (c == "measurement" && measurement.is_none())
            || (c == "report-data" && report_data.is_none());
        let state = if !reached {
            "not reached"
        } else if Some(c) == failed_at {
            reached = false;
            "FAILED"
        } else if skipped {
            "not requested"
        } else {
            "ok"
        };
        checks.push((c, state));
    }
    let decoded = parsed.as_ref().map(|r| {
        serde_json::json!({
            "version": r.version,
            "vmpl": r.vmpl,
            "policy": format!("{:#x}", r.policy.0),
            "debug": r.policy.debug(),
            "migration_agent": r.policy.migrate_ma(),
            "smt_allowed": r.policy.smt_allowed(),
            "measurement": hex::encode(r.measurement),
            "report_data": hex::encode(r.report_data),
            "chip_id": hex::encode(r.chip_id),
            "reported_tcb": format!("{:?}", r.reported_tcb),
            "cpuid": r.cpuid().map(|c| format!("{c:?}")),
            "signer": format!("{:?}", r.signer()),
        })
    });
    if a.json {
        let v = serde_json::json!({
            "ok": result.is_ok(),
            "report": decoded,
            "family": result.as_ref().ok().map(|v| format!("{:?}", v.family)),
            "checks": checks.iter().map(|(c, s)| serde_json::json!({"check": c, "result": s})).collect::<Vec<_>>(),
            "error": result.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Some(d) = &decoded {
            println!("Report:");
            if let Some(o) = d.as_object() {
                for (k, v) in o {
                    println!(
                        "  {k:<16} {}",
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    );
                }
            }
        }
        println!("Checks:");
        for (c, s) in &checks {
            println!("  {c:<16} {s}");
        }
        match &result {
            Ok(v) => println!("Attestation: OK ({:?}, {:?})", v.family, v.signing_key),
            Err(e) => eprintln!("Attestation: FAILED at {}: {e}", e.check()),
        }
    }
    Ok(if result.is_ok() { 0 } else { 1 })
}

/// The AMD Key Distribution Service URL of the VCEK that signs `report`
/// (AMD KDS interface spec, "VCEK certificate"): the chip's hardware ID and the
/// report's reported TCB. `family` is required for v2 reports (no CPUID fields).
pub fn vcek_url(
    report: &[u8],
    family: Option<crate::attestation::ProcessorFamily>,
) -> Result<String> {
    use crate::attestation::ProcessorFamily as F;
    let r = Report::parse(report).map_err(|e| anyhow!("report: {e}"))?;
    let family = match (family, r.cpuid().and_then(F::from_cpuid)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => {
            return Err(anyhow!(
                "this v{} report names no CPU family: give --family milan|genoa|turin",
                r.version
            ))
        }
    };
    if family == F::InsecureDev {
        return Err(anyhow!("development reports have no AMD VCEK"));
    }
    let tcb = r.reported_tcb.decode(family.tcb_layout());
    let (hwid, query) = match family {
        F::Turin => (
            hex::encode(r.chip_id.get(..8).unwrap_or_default()),
            format!(
                "fmcSPL={:02}&blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
                tcb.fmc.unwrap_or(0),
                tcb.bootloader,
                tcb.tee,
                tcb.snp,
                tcb.microcode
            ),
        ),
        _ => (
            hex::encode(r.chip_id),
            format!(
                "blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
                tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
            ),
        ),
    };
    let product = match family {
        F::Milan => "Milan",
        F::Genoa => "Genoa",
        _ => "Turin",
    };
    Ok(format!(
        "https://kdsintf.amd.com/vcek/v1/{product}/{hwid}?{query}"
    ))
}
