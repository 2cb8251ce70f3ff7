//! The `frostamp` command line: relying-party verification, request building and
//! the in-process demo. `anyhow` lives only here, at the edge.

use crate::certs::parse_certificates;
use crate::clock::{Clock, SystemClock};
use crate::local::LocalTsa;
use crate::oid::Oid;
use crate::tsp::request::{AcceptedRequest, HashAlg};
use crate::tsp::TsaProfile;
use crate::verify::token::{verify, Expected, VerifyOptions};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// frostamp: a threshold RFC 3161 Time-Stamp Authority and its verifier.
#[derive(Debug, Parser)]
#[command(name = "frostamp", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify an RFC 3161 response (.tsr) or token against data and trust anchors.
    ///
    /// Works for frostamp's FROST(secp256k1) tokens and for RSA / ECDSA tokens from
    /// other TSAs. Exit status: 0 verified, 1 verification failed, 2 usage error.
    Verify(VerifyArgs),
    /// Build a TimeStampReq (.tsq) for a file, like `openssl ts -query`.
    Request(RequestArgs),
    /// Run an in-process 3-of-5 TSA: key generation, a development CA, a TSA
    /// certificate, stamp FILE and verify the token. No network, nothing kept.
    Demo(DemoArgs),
}

/// `frostamp verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The TimeStampResp (.tsr) or bare token (.tst), DER.
    pub token: PathBuf,
    /// The data that was timestamped.
    #[arg(long, conflicts_with = "digest", required_unless_present = "digest")]
    pub data: Option<PathBuf>,
    /// The digest that was timestamped, hex (instead of --data).
    #[arg(long)]
    pub digest: Option<String>,
    /// Trust anchors, PEM (one or more certificates) or DER.
    #[arg(long)]
    pub roots: PathBuf,
    /// Untrusted extra certificates: intermediates, or the TSA certificate when
    /// the token does not carry it.
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Require this nonce (hex) in the token.
    #[arg(long)]
    pub nonce: Option<String>,
    /// Require this policy OID.
    #[arg(long)]
    pub policy: Option<String>,
    /// Check certificate validity at this time instead of genTime: `now`,
    /// RFC 3339 (`2025-01-31T12:00:00Z`) or Unix seconds.
    #[arg(long)]
    pub at: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `frostamp request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The file to timestamp.
    pub file: PathBuf,
    /// Hash algorithm: sha256, sha384 or sha512.
    #[arg(long, default_value = "sha256")]
    pub hash: String,
    /// Include a random 64-bit nonce (printed on stderr).
    #[arg(long)]
    pub nonce: bool,
    /// Ask for the TSA certificate in the token.
    #[arg(long)]
    pub cert_req: bool,
    /// Output file.
    #[arg(short, long)]
    pub out: PathBuf,
}

/// `frostamp demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The file to stamp.
    pub file: PathBuf,
    /// Where to write the token, the root certificate and the TSA certificate.
    #[arg(long, default_value = "frostamp-demo")]
    pub out_dir: PathBuf,
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Verify(a) => cmd_verify(&a),
        Command::Request(a) => cmd_request(&a).map(|()| 0),
        Command::Demo(a) => cmd_demo(&a).map(|()| 0),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Parse `now`, RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff]Z`) or Unix seconds.
pub fn parse_time(s: &str, clock: &dyn Clock) -> Result<SystemTime> {
    if s == "now" {
        return Ok(clock.now());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | 'T'))
        .collect();
    let t = crate::tsp::time::GenTime::parse_der_text(compact.as_bytes())
        .ok_or_else(|| anyhow!("cannot parse time {s:?}: use `now`, RFC 3339 like 2025-01-31T12:00:00Z, or Unix seconds"))?;
    Ok(t.to_system_time())
}

fn cmd_verify(a: &VerifyArgs) -> Result<i32> {
    let token = read(&a.token, "token")?;
    let expected = match (&a.data, &a.digest) {
        (Some(p), None) => Expected::Data(read(p, "data file")?),
        (None, Some(h)) => Expected::Digest(hex::decode(h.trim()).context("--digest is not hex")?),
        _ => bail!("give exactly one of --data FILE or --digest HEX"),
    };
    let anchors = parse_certificates(&read(&a.roots, "roots")?)
        .with_context(|| format!("in {}", a.roots.display()))?;
    if anchors.is_empty() {
        bail!("{} holds no certificates", a.roots.display());
    }
    let extra_certs = match &a.certs {
        Some(p) => parse_certificates(&read(p, "certificates")?)
            .with_context(|| format!("in {}", p.display()))?,
        None => Vec::new(),
    };
    let opts = VerifyOptions {
        expected,
        anchors,
        extra_certs,
        at: a
            .at
            .as_deref()
            .map(|s| parse_time(s, &SystemClock))
            .transpose()?,
        nonce: a
            .nonce
            .as_deref()
            .map(|n| hex::decode(n.trim()))
            .transpose()
            .context("--nonce is not hex")?,
        policy: a
            .policy
            .as_deref()
            .map(Oid::from_dotted)
            .transpose()
            .context("--policy is not a dotted OID")?,
    };
    match verify(&token, &opts) {
        Ok(v) => {
            if a.json {
                let mut j = serde_json::to_value(&v)?;
                if let Some(o) = j.as_object_mut() {
                    o.insert("ok".into(), true.into());
                }
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                println!("Verification: OK");
                println!("  genTime:    {}", v.gen_time);
                if let Some(acc) = &v.accuracy {
                    println!("  accuracy:   {acc}");
                }
                println!("  imprint:    {} {}", v.hash_algorithm, v.imprint);
                println!("  serial:     {}", v.serial);
                println!("  policy:     {}", v.policy);
                if let Some(n) = &v.nonce {
                    println!("  nonce:      {n}");
                }
                println!("  signature:  {}", v.signature_algorithm);
                println!("  signer:     {}", v.signer);
                println!("  chain:      {}", v.chain.join("  <-  "));
                println!("  checked at: {}", v.checked_at);
                for w in &v.warnings {
                    println!("  warning:    {w}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            if a.json {
                let j =
                    serde_json::json!({"ok": false, "error": e.kind(), "message": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                eprintln!("Verification: FAILED ({})", e.kind());
                eprintln!("  {e}");
            }
            Ok(1)
        }
    }
}

fn cmd_request(a: &RequestArgs) -> Result<()> {
    let hash = HashAlg::from_name(&a.hash)
        .ok_or_else(|| anyhow!("unknown hash {:?}: use sha256, sha384 or sha512", a.hash))?;
    let data = read(&a.file, "file")?;
    let nonce = a.nonce.then(|| {
        let mut n = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut n);
        n
    });
    let der = AcceptedRequest::build_der(
        hash,
        &hash.digest(&data),
        nonce.as_ref().map(|n| n.as_slice()),
        a.cert_req,
    )?;
    std::fs::write(&a.out, der).with_context(|| format!("cannot write {}", a.out.display()))?;
    if let Some(n) = nonce {
        eprintln!("nonce: {}", hex::encode(n));
    }
    Ok(())
}

fn cmd_demo(a: &DemoArgs) -> Result<()> {
    let data = read(&a.file, "file")?;
    let mut rng = rand_core::OsRng;
    let t0 = std::time::Instant::now();
    println!("[1/4] key generation: FROST DKG among 5 in-process signers, threshold 3");
    let tsa = LocalTsa::new(
        5,
        3,
        TsaProfile::frostamp_default(),
        SystemClock,
        Arc::new(SystemClock),
        Vec::new(),
        &mut rng,
    )
    .context("setting up the in-process TSA")?;
    println!(
        "      group key {} ({} ms)",
        hex::encode(tsa.group.to_sec1_compressed()?),
        t0.elapsed().as_millis()
    );
    println!("[2/4] development CA issued the TSA certificate for the group key (EKU timeStamping, critical)");
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let root = a.out_dir.join("root.pem");
    let tsa_pem = a.out_dir.join("tsa.pem");
    std::fs::write(&root, tsa.ca.certificate_pem()?)?;
    let tsa_cert = <x509_cert::Certificate as der::Decode>::from_der(&tsa.tsa_cert)?;
    std::fs::write(
        &tsa_pem,
        der::EncodePem::to_pem(&tsa_cert, der::pem::LineEnding::LF)?,
    )?;

    println!(
        "[3/4] stamping {} (SHA-256, certReq, nonce)",
        a.file.display()
    );
    let mut nonce = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rng, &mut nonce);
    let req = AcceptedRequest::build_der(
        HashAlg::Sha256,
        &HashAlg::Sha256.digest(&data),
        Some(&nonce),
        true,
    )?;
    let t1 = std::time::Instant::now();
    let issued = tsa
        .issue(&req, &mut rng)
        .map_err(|f| anyhow!("the TSA refused: {}", f.rejection))?;
    let signers: Vec<String> = issued
        .signers
        .iter()
        .map(|i| {
            hex::encode(i.serialize())
                .trim_start_matches('0')
                .to_string()
        })
        .collect();
    println!(
        "      genTime {} serial {} signed by signers {} ({} ms)",
        issued.gen_time,
        issued.serial.to_hex(),
        signers.join(","),
        t1.elapsed().as_millis()
    );
    let tsr = a.out_dir.join(format!(
        "{}.tsr",
        a.file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("data")
    ));
    std::fs::write(&tsr, &issued.response)?;

    println!("[4/4] verifying the token as a relying party");
    let code = cmd_verify(&VerifyArgs {
        token: tsr.clone(),
        data: Some(a.file.clone()),
        digest: None,
        roots: root.clone(),
        certs: None,
        nonce: Some(hex::encode(nonce)),
        policy: None,
        at: None,
        json: false,
    })?;
    if code != 0 {
        bail!("the demo token did not verify");
    }
    println!();
    println!(
        "Wrote {} (response), {} (trust anchor), {} (TSA certificate).",
        tsr.display(),
        root.display(),
        tsa_pem.display()
    );
    println!(
        "Inspect it with:   openssl ts -reply -in {} -text",
        tsr.display()
    );
    let me = std::env::args().next().unwrap_or_else(|| "frostamp".into());
    println!(
        "Verify it with:    {me} verify {} --data {} --roots {}",
        tsr.display(),
        a.file.display(),
        root.display()
    );
    println!("Note: this demo holds all five shares in one process. The networked cluster of attested nodes is not built yet (see README, Status).");
    Ok(())
}
