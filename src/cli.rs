//! The `frostamp` command line: relying-party verification, request building,
//! the in-process demo, and the operator's ceremony and local cluster.
//! `anyhow` lives only here, at the edge.

pub mod attest;
pub mod measure;
pub mod ops;

use crate::clock::{Clock, SystemClock};
use crate::local::{LocalSetup, LocalTsa};
use crate::threshold::suite::Ciphersuite;
use crate::tsp::request::{AcceptedRequest, HashAlg};
use crate::verify::token::{verify, Expected, VerifyOptions};
use crate::x509::parse_certificates;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
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
    /// Timestamp a file with a frostamp node over HTTPS, save the .tsr, verify it.
    Stamp(StampArgs),
    /// Run an in-process 3-of-5 TSA: key generation, a development CA, a TSA
    /// certificate, stamp FILE and verify the token. No network, nothing kept.
    Demo(DemoArgs),
    /// The operator credential for lifecycle calls.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// A small development CA for operators who run their own.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Run the key ceremony on running nodes.
    #[command(subcommand)]
    Ceremony(CeremonyCmd),
    /// A local cluster of node processes with development attestation.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// AMD SEV-SNP attestation reports.
    #[command(subcommand)]
    Attestation(AttestationCmd),
    /// The expected SEV-SNP launch digest of a boot image (firmware, kernel, initrd,
    /// command line, vCPUs); `--publish` prints the measurements/<version>.json document.
    Measure(measure::MeasureArgs),
}

/// `frostamp attestation ...`.
#[derive(Debug, Subcommand)]
pub enum AttestationCmd {
    /// Print the AMD KDS URL of the VCEK that signs REPORT (chip ID + reported TCB).
    /// Fetch it (`curl -o vcek.der URL`), then start the node with
    /// FROSTAMP_VCEK=$(xxd -p vcek.der | tr -d '\n') if its host provides no certificates.
    VcekUrl {
        /// The report: 1184 raw bytes or hex (e.g. from `GET /attestation`).
        report: PathBuf,
        /// Processor family for v2 reports: milan, genoa or turin.
        #[arg(long)]
        family: Option<String>,
    },
    /// Verify a report against the compiled-in AMD roots (Milan, Genoa, Turin) with
    /// the code nodes and the CA use; print the decoded report and every check.
    /// Exit status: 0 verified, 1 failed, 2 usage error.
    Verify {
        /// The report: 1184 raw bytes or hex.
        report: PathBuf,
        /// The VCEK or VLEK that signed it (DER or PEM).
        #[arg(long)]
        vcek: PathBuf,
        /// Optional ASK/ARK certificates (PEM); untrusted, the roots are pinned.
        #[arg(long)]
        chain: Option<PathBuf>,
        /// Expected launch measurement (96 hex digits).
        #[arg(long)]
        measurement: Option<String>,
        /// Expected REPORT_DATA (128 hex digits).
        #[arg(long)]
        report_data: Option<String>,
        /// Verification time for the certificates: now (default), RFC 3339 or Unix seconds.
        #[arg(long, default_value = "now")]
        at: String,
        /// Accept a debug policy (never for frostamp nodes).
        #[arg(long)]
        allow_debug: bool,
        /// Highest accepted VMPL (frostamp: 0).
        #[arg(long, default_value_t = 0)]
        max_vmpl: u32,
        /// Accept development attestation rooted in this ARK (never in production).
        #[arg(long)]
        allow_insecure_dev_root: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// `frostamp operator ...`.
#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Make an operator key: DIR/operator.key (secret, 0600) and DIR/operator.pub.
    /// Start nodes with `--operator-key $(cat DIR/operator.pub)`.
    Init {
        /// Directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// `frostamp ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Make a root: DIR/ca.key (secret, 0600) and DIR/ca.pem.
    Init {
        /// Directory.
        #[arg(long)]
        dir: PathBuf,
        /// Subject of the root.
        #[arg(long, default_value = "CN=frostamp development CA,O=frostamp")]
        subject: String,
        /// Where this CA publishes its CRL (http://…): named in the cRLDistributionPoints
        /// of every certificate it issues (kept in DIR/ca.json).
        #[arg(long)]
        crl_url: Option<String>,
    },
    /// Revoke a certificate this CA issued (recorded in DIR/ca.json; the next
    /// `ca crl` lists it).
    Revoke {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Serial number, hex.
        #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
        serial: Option<String>,
        /// Or the certificate (PEM or DER; the first one of the file).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Issue a signed CRL (v2, next cRLNumber) listing every revoked certificate.
    Crl {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Output file (DER; PEM with --pem). Publish it at the CA's --crl-url.
        #[arg(long)]
        out: PathBuf,
        /// Days until nextUpdate.
        #[arg(long, default_value_t = 7)]
        days: u64,
        /// PEM instead of DER.
        #[arg(long)]
        pem: bool,
    },
    /// Verify an evidence bundle and issue the TSA certificate.
    Issue {
        /// CA directory (from `ca init`).
        #[arg(long)]
        dir: PathBuf,
        /// evidence.json from `frostamp ceremony` (or use --csr).
        #[arg(long, required_unless_present = "csr", conflicts_with = "csr")]
        bundle: Option<PathBuf>,
        /// request.csr from `frostamp ceremony` (threshold-signed, carries the evidence).
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Which evidence to accept.
        #[command(flatten)]
        trust: TrustArgs,
        /// Subject of the TSA certificate.
        #[arg(long, default_value = "CN=frostamp TSA,O=frostamp")]
        subject: String,
        /// Output chain (PEM, TSA certificate first).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which attestation evidence a command accepts (`ca issue`, `ceremony run`).
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// Accepted launch measurement(s), hex.
    #[arg(long)]
    pub measurement: Vec<String>,
    /// Accepted measurements from published files (measurements/*.json).
    #[arg(long)]
    pub measurements: Vec<PathBuf>,
    /// Accept development attestation rooted in this ARK (never in production).
    #[arg(long)]
    pub allow_insecure_dev_root: Option<PathBuf>,
}

/// `frostamp ceremony ...`.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum CeremonyCmd {
    /// Attest the nodes, assign indices, introduce them, run the DKG, gather the
    /// evidence and (with --ca-dir) issue and install the certificate.
    Run {
        /// A node as INDEX=PUBLIC_HOST:PORT,PEER_HOST:PORT (repeat for each node).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// Threshold.
        #[arg(short, long, default_value_t = 3)]
        t: u16,
        /// Name of the key epoch.
        #[arg(long, default_value = "epoch-1")]
        epoch: String,
        /// FROST ciphersuite of the key epoch: secp256k1 (FROST(secp256k1, SHA-256)) or
        /// ed25519 (FROST(Ed25519, SHA-512): plain Ed25519 tokens, RFC 8419).
        #[arg(long, default_value = "secp256k1")]
        ciphersuite: Ciphersuite,
        /// Operator key.
        #[arg(long)]
        operator_key: PathBuf,
        /// Which evidence to accept (the first measurement is required of the nodes).
        #[command(flatten)]
        trust: TrustArgs,
        /// Development CA directory: issue and install the certificate.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Without --ca-dir: the root certificate (PEM or DER) of the CA that will
        /// issue from the CSR; every node fixes it and accepts only chains to it.
        #[arg(long, conflicts_with = "ca_dir", required_unless_present = "ca_dir")]
        ca_root: Option<PathBuf>,
        /// Where evidence.json, chain.pem and cluster.json go.
        #[arg(long, default_value = ".")]
        state_dir: PathBuf,
        /// A DNS name for the nodes' public TLS certificates, as NAME (every node, e.g.
        /// the balancer's name) or INDEX=NAME (one node); repeatable. Without any
        /// --public-name or --public-ip for a node: the host of its public address.
        #[arg(long = "public-name", value_name = "[INDEX=]NAME")]
        public_names: Vec<String>,
        /// An IP address for the nodes' public TLS certificates, as IP or INDEX=IP; repeatable.
        #[arg(long = "public-ip", value_name = "[INDEX=]IP")]
        public_ips: Vec<String>,
    },
    /// (Re)issue the nodes' public TLS certificates for their attested identity keys:
    /// with the development CA of cluster.json, issued and installed; else the
    /// requests are written to STATE_DIR/tls-node<INDEX>.csr for your CA.
    Tls {
        /// State directory of the ceremony (cluster.json).
        #[arg(long, default_value = ".")]
        state_dir: PathBuf,
        /// Only this node (e.g. after a repair); default: every node.
        #[arg(long)]
        index: Option<u16>,
    },
    /// Upload public TLS chains from your CA (PEM, leaf first); each goes to the node
    /// whose attested identity key its leaf certifies.
    InstallTls {
        /// State directory of the ceremony (cluster.json).
        #[arg(long, default_value = ".")]
        state_dir: PathBuf,
        /// The chains.
        #[arg(required = true)]
        chains: Vec<PathBuf>,
    },
    /// Give a replacement node, booted from the same image on the lost node's
    /// addresses, the lost share: attest it, configure it, and run the repair
    /// with t share holders. The group key and the certificate stay the same.
    Repair {
        /// State directory of the ceremony (cluster.json).
        #[arg(long, default_value = ".")]
        state_dir: PathBuf,
        /// Index of the node that lost its share.
        #[arg(long)]
        index: u16,
        /// Helpers (t share holders), e.g. 3,4,5; default: the first t that serve the key.
        #[arg(long, value_delimiter = ',')]
        helpers: Option<Vec<u16>>,
    },
    /// Upload a chain from an external CA to the nodes of STATE_DIR/cluster.json.
    Install {
        /// State directory of the ceremony.
        #[arg(long, default_value = ".")]
        state_dir: PathBuf,
        /// PEM chain, TSA certificate first.
        #[arg(long)]
        chain: PathBuf,
    },
}

/// `frostamp cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Start n local nodes on 127.0.0.1 and run the ceremony.
    Up {
        /// State directory (cluster.json, logs, keys of the development CA).
        #[arg(long, default_value = "target/cluster")]
        dir: PathBuf,
        /// Number of nodes.
        #[arg(short, long, default_value_t = 5)]
        n: u16,
        /// Threshold.
        #[arg(short, long, default_value_t = 3)]
        t: u16,
        /// The node binary (built with --features insecure-dev-attestation); default: next to this one.
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Seconds each of the three local Roughtime servers adds to its clock
        /// (roughenough `--fixed-offset`, -32768..=32767): lying servers for tests.
        #[arg(long, default_value = "0,0,0", allow_hyphen_values = true)]
        time_offsets: String,
        /// FROST ciphersuite of the key epoch: secp256k1 or ed25519.
        #[arg(long, default_value = "secp256k1")]
        ciphersuite: Ciphersuite,
    },
    /// Stop the nodes and the time servers of a local cluster.
    Down {
        /// State directory.
        #[arg(long, default_value = "target/cluster")]
        dir: PathBuf,
    },
    /// Show every node's status.
    Status {
        /// State directory.
        #[arg(long, default_value = "target/cluster")]
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop one of the local cluster's time servers, or start it again with the same
    /// key and port (the nodes' time configuration stays valid).
    TimeServer {
        /// State directory.
        #[arg(long, default_value = "target/cluster")]
        dir: PathBuf,
        /// Stop time server INDEX (1, 2 or 3).
        #[arg(
            long,
            value_name = "INDEX",
            conflicts_with = "start",
            required_unless_present = "start"
        )]
        stop: Option<u16>,
        /// Start time server INDEX again.
        #[arg(long, value_name = "INDEX")]
        start: Option<u16>,
        /// With --start: the server's new --fixed-offset in seconds (default: as before).
        #[arg(long, requires = "start", allow_negative_numbers = true)]
        offset: Option<i16>,
    },
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
    /// Require the TSA certificate's launch measurement to be one published in these
    /// files (measurements/<version>.json).
    #[arg(long)]
    pub measurements: Vec<PathBuf>,
    /// Check the token's time evidence against these Roughtime servers and quorum
    /// (JSON `{"servers": [{name, public_key, version, address}], "quorum"}`, e.g. a local
    /// cluster's time-servers.json) instead of the build's pinned ones.
    #[arg(long)]
    pub time_servers: Option<PathBuf>,
    /// Check every certificate of the path (but the trust anchor) against this CRL
    /// (PEM or DER; repeatable). A certificate that is listed, or whose issuer has no
    /// CRL here that is valid at the checking time (now, or --at) and signed by it,
    /// fails the verification.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Fetch the CRLs the path's certificates name in their cRLDistributionPoints
    /// (HTTP), and check as with --crl.
    #[arg(long)]
    pub fetch_crls: bool,
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

/// `frostamp stamp`.
#[derive(Debug, clap::Args)]
pub struct StampArgs {
    /// The file to timestamp.
    pub file: PathBuf,
    /// Node address `host:port` (default: node 1 of --cluster).
    #[arg(long)]
    pub url: Option<String>,
    /// A local cluster's state directory (cluster.json): address, TLS pin, roots.
    #[arg(long)]
    pub cluster: Option<PathBuf>,
    /// SHA-256 (hex) of the node's TLS public key, learned from its attestation.
    #[arg(long)]
    pub pin: Option<String>,
    /// Trust anchors for verifying the token (default: the cluster's root).
    #[arg(long)]
    pub roots: Option<PathBuf>,
    /// Hash algorithm: sha256, sha384 or sha512.
    #[arg(long, default_value = "sha256")]
    pub hash: String,
    /// Output (default: FILE.tsr).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Save without verifying.
    #[arg(long)]
    pub no_verify: bool,
    /// Time servers for verifying the token's time evidence (as `verify --time-servers`;
    /// default: the cluster's time-servers.json when there is one, else the build's pins).
    #[arg(long)]
    pub time_servers: Option<PathBuf>,
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
        Command::Stamp(a) => runtime().and_then(|rt| rt.block_on(cmd_stamp(&a))),
        Command::Demo(a) => cmd_demo(&a).map(|()| 0),
        Command::Operator(c) => cmd_operator(c).map(|()| 0),
        Command::Ca(c) => cmd_ca(c).map(|()| 0),
        Command::Ceremony(c) => runtime()
            .and_then(|rt| rt.block_on(cmd_ceremony(c)))
            .map(|()| 0),
        Command::Cluster(c) => runtime()
            .and_then(|rt| rt.block_on(cmd_cluster(c)))
            .map(|()| 0),
        Command::Attestation(c) => cmd_attestation(c),
        Command::Measure(a) => measure::run(&a),
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
            .map(crate::oid::parse_dotted)
            .transpose()
            .context("--policy is not a dotted OID")?,
        time: a
            .time_servers
            .as_deref()
            .map(time_policy_from_file)
            .transpose()?,
    };
    match verify(&token, &opts) {
        Ok(v) => {
            let (extra, files) = (&opts.extra_certs, &a.measurements);
            if let Some(code) = measure::verify_published(&token, extra, &v.signer, files, a.json)?
            {
                return Ok(code);
            }
            let revocation = revocation(a, &v.path)?;
            if let Some(r) = revocation.as_ref().filter(|r| !r.ok) {
                if a.json {
                    let j = serde_json::json!({"ok": false, "error": "revocation",
                        "message": "a certificate of the path is revoked or its revocation status is unknown",
                        "revocation": r});
                    println!("{}", serde_json::to_string_pretty(&j)?);
                } else {
                    eprintln!("Verification: FAILED (revocation)");
                    print_revocation(r, &mut std::io::stderr())?;
                }
                return Ok(1);
            }
            if a.json {
                let mut j = serde_json::to_value(&v)?;
                if let Some(o) = j.as_object_mut() {
                    o.insert("ok".into(), true.into());
                    if let Some(r) = &revocation {
                        o.insert("revocation".into(), serde_json::to_value(r)?);
                    }
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
                if let Some(t) = &v.time_evidence {
                    println!(
                        "  time:       backed by {} time server(s): genTime no earlier than {} s, accuracy {} s",
                        t.vouched.len(),
                        t.gen_time_secs,
                        t.accuracy_secs
                    );
                    for vouch in &t.vouched {
                        println!(
                            "    vouched:  {} at {} ± {} s",
                            vouch.server, vouch.midpoint_secs, vouch.radius_secs
                        );
                    }
                }
                if let Some(r) = &revocation {
                    print_revocation(r, &mut std::io::stdout())?;
                }
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

/// `--crl` and `--fetch-crls`: the revocation report of the verified path, if asked for.
fn revocation(
    a: &VerifyArgs,
    path: &[x509_cert::Certificate],
) -> Result<Option<crate::verify::revocation::Report>> {
    use crate::verify::revocation::{check_path, distribution_points, parse_crls};
    if a.crl.is_empty() && !a.fetch_crls {
        return Ok(None);
    }
    let mut crls = Vec::new();
    for p in &a.crl {
        let source = p.display().to_string();
        crls.extend(parse_crls(&read(p, "CRL")?, &source).with_context(|| source.clone())?);
    }
    if a.fetch_crls {
        let mut urls: Vec<String> = path
            .iter()
            .take(path.len().saturating_sub(1))
            .flat_map(distribution_points)
            .collect();
        urls.dedup();
        for url in urls {
            let body = fetch_http(&url).with_context(|| format!("fetching the CRL {url}"))?;
            crls.extend(parse_crls(&body, &url).with_context(|| url.clone())?);
        }
    }
    let at = match &a.at {
        Some(s) => parse_time(s, &SystemClock)?,
        None => SystemClock.now(),
    };
    Ok(Some(check_path(path, &crls, at)))
}

fn print_revocation(
    r: &crate::verify::revocation::Report,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    use crate::verify::revocation::Status;
    writeln!(out, "  revocation: checked at {}", r.checked_at)?;
    for c in &r.certificates {
        let what = match &c.status {
            Status::Good {
                crl, next_update, ..
            } => format!("good (CRL {crl}, next update {next_update})"),
            Status::Revoked {
                crl,
                revoked_at,
                reason,
            } => format!(
                "REVOKED at {revoked_at}{} (CRL {crl})",
                reason
                    .as_deref()
                    .map(|r| format!(", reason {r}"))
                    .unwrap_or_default()
            ),
            Status::Unknown { why } => format!("UNKNOWN: {}", why.join("; ")),
            Status::Anchor => "trust anchor (not checked)".into(),
        };
        writeln!(out, "    {} [serial {}]: {what}", c.subject, c.serial)?;
    }
    Ok(())
}

/// GET an `http://` URL (HTTP/1.0, 10 s, at most 16 MiB): a CRL distribution point.
fn fetch_http(url: &str) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// distribution points are fetched"))?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let timeout = Duration::from_secs(10);
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or_else(|| anyhow!("{host} does not resolve"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One write: the whole request in one segment.
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: frostamp-verify\r\n\r\n")
            .as_bytes(),
    )?;
    let mut buf = Vec::new();
    s.take(16 << 20).read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    let head = String::from_utf8_lossy(buf.get(..split).unwrap_or_default()).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if status != "200" {
        bail!("HTTP status {status:?}");
    }
    Ok(buf.get(split + 4..).unwrap_or_default().to_vec())
}

/// `--time-servers FILE`: a time configuration (JSON) as the policy tokens are checked by.
pub fn time_policy_from_file(path: &Path) -> Result<crate::time::evidence::TimePolicy> {
    let config = crate::time::config::TimeConfig::from_json(&read(path, "time servers")?)
        .with_context(|| format!("in {}", path.display()))?;
    config
        .policy()
        .with_context(|| format!("in {}", path.display()))
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
    let tsa: LocalTsa<SystemClock> = LocalSetup::new()
        .build(&mut rng)
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
        measurements: Vec::new(),
        time_servers: None,
        crl: Vec::new(),
        fetch_crls: false,
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
    println!("Note: this demo holds all five shares in one process; `make demo` runs the attested five-process cluster (`frostamp cluster up`) and stamps over HTTPS verified with `curl --cacert`.");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn cmd_operator(c: OperatorCmd) -> Result<()> {
    match c {
        OperatorCmd::Init { dir } => {
            let public = ops::operator_init(&dir)?;
            println!(
                "operator key: {} (keep it secret)",
                dir.join("operator.key").display()
            );
            println!("start each node with: --operator-key {public}");
            Ok(())
        }
    }
}

fn cmd_ca(c: CaCmd) -> Result<()> {
    match c {
        CaCmd::Init {
            dir,
            subject,
            crl_url,
        } => {
            ops::ca_init(&dir, &subject)?;
            if let Some(url) = &crl_url {
                ops::ca_set_crl_url(&dir, url)?;
                println!("certificates it issues name the CRL at {url}");
            }
            println!(
                "CA root: {} (key {}, keep it secret)",
                dir.join("ca.pem").display(),
                dir.join("ca.key").display()
            );
            Ok(())
        }
        CaCmd::Revoke {
            dir,
            serial,
            cert,
            reason,
        } => {
            let serial =
                ops::ca_revoke(&dir, serial.as_deref(), cert.as_deref(), reason.as_deref())?;
            println!("serial {serial} revoked; the next `frostamp ca crl` lists it");
            Ok(())
        }
        CaCmd::Crl {
            dir,
            out,
            days,
            pem,
        } => {
            let n = ops::ca_crl(&dir, &out, days, pem)?;
            println!("CRL number {n} written to {}", out.display());
            Ok(())
        }
        CaCmd::Issue {
            dir,
            bundle,
            csr,
            trust,
            subject,
            out,
        } => {
            let accepted = ops::accepted_measurements(&trust.measurement, &trust.measurements)?;
            let roots = ops::roots(trust.allow_insecure_dev_root.as_deref())?;
            let input = match (&bundle, &csr) {
                (Some(b), _) => ops::IssueInput::Bundle(b),
                (None, Some(c)) => ops::IssueInput::Csr(c),
                (None, None) => bail!("give --bundle or --csr"),
            };
            ops::ca_issue(&dir, input, &accepted, &roots, &subject, &out)?;
            println!(
                "every report verified; TSA certificate chain written to {}",
                out.display()
            );
            Ok(())
        }
    }
}

fn parse_node(s: &str) -> Result<crate::ceremony::NodeTarget> {
    let (idx, addrs) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--node {s:?}: expected INDEX=PUBLIC,PEER"))?;
    let (public, peer) = addrs
        .split_once(',')
        .ok_or_else(|| anyhow!("--node {s:?}: expected INDEX=PUBLIC,PEER"))?;
    Ok(crate::ceremony::NodeTarget {
        index: idx
            .parse()
            .with_context(|| format!("--node {s:?}: index"))?,
        public: public.to_string(),
        peer: peer.to_string(),
    })
}

/// Each node's public TLS names from `--public-name` and `--public-ip` (`[INDEX=]VALUE`;
/// without an index for every node); a node given none gets the host of its public address.
fn public_names_of(
    nodes: &[crate::ceremony::NodeTarget],
    names: &[String],
    ips: &[String],
) -> Result<std::collections::BTreeMap<u16, crate::certs::tls::PublicNames>> {
    let split = |s: &str| -> Result<(Option<u16>, String)> {
        match s.split_once('=') {
            Some((i, v)) => Ok((
                Some(i.parse().with_context(|| format!("{s:?}: index"))?),
                v.to_string(),
            )),
            None => Ok((None, s.to_string())),
        }
    };
    let mut out = std::collections::BTreeMap::new();
    for node in nodes {
        let mut n = crate::certs::tls::PublicNames::default();
        for s in names {
            let (i, v) = split(s)?;
            if i.is_none_or(|i| i == node.index) {
                n.dns.push(v);
            }
        }
        for s in ips {
            let (i, v) = split(s)?;
            if i.is_none_or(|i| i == node.index) {
                n.ips.push(
                    v.parse()
                        .with_context(|| format!("--public-ip {s:?}: not an IP address"))?,
                );
            }
        }
        if n.dns.is_empty() && n.ips.is_empty() {
            n = ops::default_public_names(&node.public);
        }
        n.validate()
            .with_context(|| format!("public names of node {}", node.index))?;
        out.insert(node.index, n);
    }
    Ok(out)
}

async fn cmd_ceremony(c: CeremonyCmd) -> Result<()> {
    match c {
        CeremonyCmd::Run {
            nodes,
            t,
            epoch,
            ciphersuite,
            operator_key,
            trust,
            ca_dir,
            ca_root,
            state_dir,
            public_names,
            public_ips,
        } => {
            let nodes = nodes
                .iter()
                .map(|n| parse_node(n))
                .collect::<Result<Vec<_>>>()?;
            let public_names = public_names_of(&nodes, &public_names, &public_ips)?;
            let measurements = if trust.measurement.is_empty() && trust.measurements.is_empty() {
                Vec::new()
            } else {
                ops::accepted_measurements(&trust.measurement, &trust.measurements)?
            };
            ops::run_ceremony(
                ops::CeremonyArgs {
                    nodes,
                    t,
                    epoch,
                    ciphersuite,
                    operator_key: &operator_key,
                    insecure_dev_root: trust.allow_insecure_dev_root.as_deref(),
                    measurements,
                    ca_dir: ca_dir.as_deref(),
                    ca_root: ca_root.as_deref(),
                    state_dir: &state_dir,
                    time_servers: Vec::new(),
                    public_names,
                },
                &[],
            )
            .await?;
            Ok(())
        }
        CeremonyCmd::Install { state_dir, chain } => ops::install(&state_dir, &chain).await,
        CeremonyCmd::Tls { state_dir, index } => ops::renew_tls(&state_dir, index).await,
        CeremonyCmd::InstallTls { state_dir, chains } => {
            ops::install_tls(&state_dir, &chains).await
        }
        CeremonyCmd::Repair {
            state_dir,
            index,
            helpers,
        } => ops::repair(&state_dir, index, helpers).await,
    }
}

async fn cmd_cluster(c: ClusterCmd) -> Result<()> {
    match c {
        ClusterCmd::Up {
            dir,
            n,
            t,
            node_bin,
            time_offsets,
            ciphersuite,
        } => {
            let time_offsets = ops::parse_time_offsets(&time_offsets)?;
            let node_bin = match node_bin {
                Some(p) => p,
                None => std::env::current_exe()?
                    .parent()
                    .ok_or_else(|| anyhow!("cannot locate frostamp-node"))?
                    .join("frostamp-node"),
            };
            ops::cluster_up(&dir, n, t, &node_bin, &time_offsets, ciphersuite).await?;
            println!(
                "stop it with: frostamp cluster down --dir {}",
                dir.display()
            );
            Ok(())
        }
        ClusterCmd::Down { dir } => ops::cluster_down(&dir),
        ClusterCmd::TimeServer {
            dir,
            stop,
            start,
            offset,
        } => match (stop, start) {
            (Some(i), None) => ops::time_server_stop(&dir, i).map(|_| ()),
            (None, Some(i)) => ops::time_server_start(&dir, i, offset).await.map(|_| ()),
            _ => bail!("give --stop INDEX or --start INDEX"),
        },
        ClusterCmd::Status { dir, json } => {
            let all = ops::cluster_status(&dir).await?;
            if json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|(i, r)| match r {
                        Ok(s) => serde_json::json!({"index": i, "status": s}),
                        Err(e) => serde_json::json!({"index": i, "error": e}),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (i, r) in all {
                    match r {
                        Ok(s) => println!(
                            "node {i}: {:?}, peers {:?}, {} group key {}",
                            s.phase,
                            s.peers.keys().collect::<Vec<_>>(),
                            s.ciphersuite.map(|c| c.name()).unwrap_or("-"),
                            s.group_key.as_deref().unwrap_or("-")
                        ),
                        Err(e) => println!("node {i}: unreachable: {e}"),
                    }
                }
            }
            Ok(())
        }
    }
}

async fn cmd_stamp(a: &StampArgs) -> Result<i32> {
    let hash = HashAlg::from_name(&a.hash)
        .ok_or_else(|| anyhow!("unknown hash {:?}: use sha256, sha384 or sha512", a.hash))?;
    let cluster: Option<ops::ClusterFile> = match &a.cluster {
        Some(d) => Some(
            serde_json::from_slice(&read(&d.join("cluster.json"), "cluster description")?)
                .context("cluster.json")?,
        ),
        None => None,
    };
    let first = cluster.as_ref().and_then(|c| c.nodes.first());
    let url = a
        .url
        .clone()
        .or_else(|| first.map(|n| n.public.clone()))
        .ok_or_else(|| anyhow!("give --url HOST:PORT or --cluster DIR"))?;
    let url = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let pin_hex = a.pin.clone().or_else(|| {
        cluster
            .as_ref()
            .and_then(|c| c.nodes.iter().find(|n| n.public == url))
            .and_then(|n| n.pin.clone())
    });
    let pin: [u8; 32] = pin_hex
        .as_deref()
        .and_then(|p| hex::decode(p).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| anyhow!("no TLS pin for {url}: give --pin HEX (from the node's attestation) or --cluster DIR"))?;
    let data = read(&a.file, "file")?;
    let mut nonce = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let req = AcceptedRequest::build_der(hash, &hash.digest(&data), Some(&nonce), true)?;
    let started = std::time::Instant::now();
    let resp = crate::net::client::request(
        &url,
        Some(pin),
        crate::net::client::Call::stamp(req),
        std::time::Duration::from_secs(30),
    )
    .await
    .with_context(|| format!("requesting a timestamp from {url}"))?;
    if resp.status != 200 {
        bail!(
            "{url} answered HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    let out = a.out.clone().unwrap_or_else(|| {
        let mut p = a.file.clone().into_os_string();
        p.push(".tsr");
        PathBuf::from(p)
    });
    std::fs::write(&out, &resp.body).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "response from {url} in {} ms saved to {}",
        started.elapsed().as_millis(),
        out.display()
    );
    if a.no_verify {
        return Ok(0);
    }
    let roots = a
        .roots
        .clone()
        .or_else(|| cluster.as_ref().and_then(|c| c.root.clone()))
        .ok_or_else(|| anyhow!("give --roots PEM to verify (or --no-verify)"))?;
    let time_servers = a.time_servers.clone().or_else(|| {
        a.cluster
            .as_ref()
            .map(|d| d.join(ops::TIME_CONFIG_FILE))
            .filter(|p| p.exists())
    });
    if let Some(p) = &time_servers {
        eprintln!("time evidence checked against {}", p.display());
    }
    cmd_verify(&VerifyArgs {
        token: out,
        data: Some(a.file.clone()),
        digest: None,
        roots,
        certs: None,
        nonce: Some(hex::encode(nonce)),
        policy: None,
        at: None,
        measurements: Vec::new(),
        time_servers,
        crl: Vec::new(),
        fetch_crls: false,
        json: false,
    })
}

fn cmd_attestation(c: AttestationCmd) -> Result<i32> {
    if let AttestationCmd::VcekUrl { report, family } = &c {
        use crate::attestation::ProcessorFamily as F;
        let family = match family.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("milan") => Some(F::Milan),
            Some("genoa") => Some(F::Genoa),
            Some("turin") => Some(F::Turin),
            Some(other) => bail!("unknown family {other:?}: milan, genoa or turin"),
        };
        println!(
            "{}",
            attest::vcek_url(&attest::read_report(report)?, family)?
        );
        return Ok(0);
    }
    let AttestationCmd::Verify {
        report,
        vcek,
        chain,
        measurement,
        report_data,
        at,
        allow_debug,
        max_vmpl,
        allow_insecure_dev_root,
        json,
    } = c
    else {
        return Ok(2);
    };
    let rules = crate::attestation::PolicyRules {
        allow_debug,
        max_vmpl,
        ..crate::attestation::PolicyRules::frostamp_default()
    };
    attest::run(attest::Args {
        report: &report,
        vcek: &vcek,
        chain: chain.as_deref(),
        measurement: measurement.as_deref(),
        report_data: report_data.as_deref(),
        at: parse_time(&at, &SystemClock)?,
        rules,
        roots: ops::roots(allow_insecure_dev_root.as_deref())?,
        json,
    })
}
