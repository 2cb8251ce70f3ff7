//! `frostamp-node`: the boot image's `/init` and the local cluster's node process.
//! Thin: as PID 1, do the PID 1 duties (`frostamp::pid1`) and read the settings from
//! fw_cfg; otherwise parse arguments and the environment as a local process. Then pick
//! the attester and call `frostamp::node::run`.

#![forbid(unsafe_code)]

use clap::Parser;
use frostamp::attestation::{Attester, RootSet};
use frostamp::clock::SystemClock;
use frostamp::pid1;
use frostamp::tsp::TsaProfile;
use std::net::SocketAddr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A frostamp node: attested peer channels, distributed key generation, TSA.
///
/// As the image's `/init` (PID 1) it ignores arguments and the environment and reads
/// its settings from QEMU fw_cfg `opt/frostamp/config` (see `frostamp::pid1::config`).
#[derive(Debug, Parser)]
#[command(name = "frostamp-node", version)]
struct Args {
    /// Name used in logs and the TLS certificate.
    #[arg(long, default_value = "frostamp-node")]
    name: String,
    /// Public HTTPS address.
    #[arg(long, default_value = "0.0.0.0:8443")]
    public: String,
    /// Peer (mutual TLS) address.
    #[arg(long, default_value = "0.0.0.0:9443")]
    peer: String,
    /// Operator public key (hex SPKI DER, from `frostamp operator init`). Without it,
    /// lifecycle calls are refused.
    #[arg(long, env = "FROSTAMP_OPERATOR_KEY")]
    operator_key: Option<String>,
    /// Time servers (JSON `{"servers": [{name, public_key, version, address}], "quorum"}`).
    /// Without it, the build's pinned servers at their public addresses.
    #[arg(long, env = "FROSTAMP_TIME_SERVERS")]
    time_servers: Option<std::path::PathBuf>,
}

/// Everything `run` needs, from the command line or from fw_cfg.
struct Settings {
    name: String,
    public: String,
    peer: String,
    operator_key: Option<String>,
    /// Development attestation platform (secret PEM).
    dev_platform: Option<Zeroizing<String>>,
    /// Operator-supplied VCEK (DER).
    vcek: Option<Vec<u8>>,
    fault: Option<String>,
    time: frostamp::time::config::TimeConfig,
}

fn attester_and_roots(s: &Settings) -> Result<(Arc<dyn Attester>, RootSet), String> {
    if let Some(pem) = &s.dev_platform {
        #[cfg(feature = "insecure-dev-attestation")]
        {
            let platform = frostamp::attestation::DevPlatform::from_secret_pem(pem)
                .map_err(|e| e.to_string())?;
            let roots = RootSet::danger_with_insecure_dev_root(platform.ark_der());
            let attester = frostamp::attestation::DevAttester::new(platform)
                .map_err(|e| format!("own measurement: {e}"))?;
            tracing::warn!("INSECURE development attestation: no hardware guarantees");
            return Ok((Arc::new(attester), roots));
        }
        #[cfg(not(feature = "insecure-dev-attestation"))]
        {
            let _ = pem;
            return Err("the configuration carries a development attestation platform, but this is a production node (no development attestation is compiled in)".into());
        }
    }
    if !std::path::Path::new("/dev/sev-guest").exists() {
        return Err("no /dev/sev-guest: this node needs an AMD SEV-SNP guest (it never falls back to development attestation)".into());
    }
    // The VCEK comes from the host's extended report, or from the operator
    // (verified against the pinned AMD roots either way).
    let attester = frostamp::attestation::snp_guest::SnpGuestAttester::open(s.vcek.clone())
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(attester), RootSet::amd()))
}

/// The local cluster hands the development platform over in the environment.
#[cfg(feature = "insecure-dev-attestation")]
fn dev_platform_from_env() -> Option<Zeroizing<String>> {
    std::env::var("FROSTAMP_INSECURE_DEV_PLATFORM")
        .ok()
        .map(Zeroizing::new)
}

#[cfg(not(feature = "insecure-dev-attestation"))]
fn dev_platform_from_env() -> Option<Zeroizing<String>> {
    None
}

fn init_tracing(console: bool) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(!console && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

fn main() {
    if pid1::is_pid1() {
        init_tracing(true);
        pid1::install_panic_hook();
        let reason = match as_pid1() {
            Ok(()) => "the node stopped".to_string(),
            Err(e) => e,
        };
        pid1::power_off(&reason);
    }
    init_tracing(false);
    let args = Args::parse();
    let settings = Settings {
        name: args.name,
        public: args.public,
        peer: args.peer,
        operator_key: args.operator_key,
        dev_platform: dev_platform_from_env(),
        vcek: match std::env::var("FROSTAMP_VCEK") {
            Ok(h) => match hex::decode(h.trim()) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("frostamp-node: FROSTAMP_VCEK is not hex: {e}");
                    std::process::exit(2);
                }
            },
            Err(_) => None,
        },
        fault: if cfg!(feature = "test-faults") {
            std::env::var("FROSTAMP_TEST_FAULT").ok()
        } else {
            None
        },
        time: match &args.time_servers {
            None => frostamp::time::config::TimeConfig::pinned(),
            Some(path) => match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    frostamp::time::config::TimeConfig::from_json(&b).map_err(|e| e.to_string())
                }) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("frostamp-node: --time-servers {}: {e}", path.display());
                    std::process::exit(2);
                }
            },
        },
    };
    let code = match runtime().and_then(|rt| rt.block_on(run(settings))) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("frostamp-node: {e}");
            2
        }
    };
    std::process::exit(code);
}

/// The node's clock: the system clock; in a development build, shifted by the signed
/// number of seconds in the file `FROSTAMP_INSECURE_CLOCK_OFFSET_FILE` names (read at
/// every use; absent or empty: no shift), so a test can move every host's clock while
/// the cluster runs and show that genTime follows the time evidence, not the host.
fn clock() -> Arc<dyn frostamp::clock::Clock> {
    #[cfg(feature = "insecure-dev-attestation")]
    if let Some(path) = std::env::var_os("FROSTAMP_INSECURE_CLOCK_OFFSET_FILE") {
        tracing::warn!(file = ?path, "development build: this node's clock follows an offset file");
        return Arc::new(OffsetFileClock(path.into()));
    }
    Arc::new(SystemClock)
}

/// See [`clock`].
#[cfg(feature = "insecure-dev-attestation")]
struct OffsetFileClock(std::path::PathBuf);

#[cfg(feature = "insecure-dev-attestation")]
impl frostamp::clock::Clock for OffsetFileClock {
    fn now(&self) -> std::time::SystemTime {
        let offset: i64 = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let real = frostamp::clock::Clock::now(&SystemClock);
        let by = std::time::Duration::from_secs(offset.unsigned_abs());
        if offset < 0 {
            real.checked_sub(by).unwrap_or(real)
        } else {
            real.checked_add(by).unwrap_or(real)
        }
    }
}

/// The image's `/init`: PID 1 duties, fw_cfg settings, SEV-SNP check (production), node.
fn as_pid1() -> Result<(), String> {
    let booted = pid1::boot().map_err(|e| e.to_string())?;
    if !cfg!(feature = "insecure-dev-attestation") {
        pid1::sev::require_snp().map_err(|e| e.to_string())?;
    }
    let c = booted.config;
    let addr = |a: SocketAddr| a.to_string();
    let settings = Settings {
        name: c.name,
        public: addr(c.public),
        peer: addr(c.peer),
        operator_key: Some(c.operator_key),
        dev_platform: c.insecure_dev_platform,
        vcek: c.vcek,
        fault: if cfg!(feature = "test-faults") {
            c.test_fault
        } else {
            None
        },
        time: c
            .time
            .unwrap_or_else(frostamp::time::config::TimeConfig::pinned),
    };
    runtime()?.block_on(run(settings))
}

async fn run(s: Settings) -> Result<(), String> {
    let (attester, roots) = attester_and_roots(&s)?;
    let public = tokio::net::TcpListener::bind(&s.public)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", s.public))?;
    let peer = tokio::net::TcpListener::bind(&s.peer)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", s.peer))?;
    tracing::info!(
        step = "listen",
        public = s.public.as_str(),
        peer = s.peer.as_str(),
        uptime_s = pid1::uptime_secs().unwrap_or(-1.0),
        "node listening"
    );
    let opts = frostamp::node::NodeOptions {
        name: s.name,
        public,
        peer,
        operator_pubkey: s.operator_key,
        attester,
        roots,
        profile: TsaProfile::frostamp_default(),
        clock: clock(),
        entropy: std::sync::Arc::new(frostamp::entropy::OsEntropy),
        fault: s.fault,
        time: s.time,
    };
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    frostamp::node::run(opts, shutdown)
        .await
        .map_err(|e| e.to_string())
}
