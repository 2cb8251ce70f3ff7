//! `frostamp-node`: the boot image's `/init` and the local cluster's node process.
//! Thin: parse arguments, pick the attester, call `frostamp::node::run`.

use clap::Parser;
use frostamp::attestation::{Attester, RootSet};
use frostamp::clock::SystemClock;
use frostamp::tsp::TsaProfile;
use std::sync::Arc;

/// A frostamp node: attested peer channels, distributed key generation, TSA.
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
}

fn attester_and_roots() -> Result<(Arc<dyn Attester>, RootSet), String> {
    #[cfg(feature = "insecure-dev-attestation")]
    {
        if let Ok(pem) = std::env::var("FROSTAMP_INSECURE_DEV_PLATFORM") {
            let platform = frostamp::attestation::DevPlatform::from_secret_pem(&pem)
                .map_err(|e| e.to_string())?;
            let roots = RootSet::danger_with_insecure_dev_root(platform.ark_der());
            let attester = frostamp::attestation::DevAttester::new(platform)
                .map_err(|e| format!("own measurement: {e}"))?;
            tracing::warn!("INSECURE development attestation: no hardware guarantees");
            return Ok((Arc::new(attester), roots));
        }
    }
    if !std::path::Path::new("/dev/sev-guest").exists() {
        return Err("no /dev/sev-guest: this node needs an AMD SEV-SNP guest (it never falls back to development attestation)".into());
    }
    // The VCEK comes from the host's extended report, or from the operator
    // (verified against the pinned AMD roots either way).
    let operator_vcek = match std::env::var("FROSTAMP_VCEK") {
        Ok(h) => Some(hex::decode(h.trim()).map_err(|e| format!("FROSTAMP_VCEK is not hex: {e}"))?),
        Err(_) => None,
    };
    let attester = frostamp::attestation::snp_guest::SnpGuestAttester::open(operator_vcek)
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(attester), RootSet::amd()))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let code = match run(args).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("frostamp-node: {e}");
            2
        }
    };
    std::process::exit(code);
}

async fn run(args: Args) -> Result<(), String> {
    let (attester, roots) = attester_and_roots()?;
    let public = tokio::net::TcpListener::bind(&args.public)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.public))?;
    let peer = tokio::net::TcpListener::bind(&args.peer)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.peer))?;
    let fault = if cfg!(feature = "test-faults") {
        std::env::var("FROSTAMP_TEST_FAULT").ok()
    } else {
        None
    };
    let opts = frostamp::node::NodeOptions {
        name: args.name,
        public,
        peer,
        operator_pubkey: args.operator_key,
        attester,
        roots,
        profile: TsaProfile::frostamp_default(),
        clock: Arc::new(SystemClock),
        fault,
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
