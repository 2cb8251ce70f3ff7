//! frostamp: a threshold RFC 3161 Time-Stamp Authority whose signing key exists
//! only as FROST shares (FROST(secp256k1, SHA-256), or FROST(Ed25519, SHA-512) for an
//! epoch whose ceremony chose it) in the memory of attested nodes.
//!
//! # Data flow (one token)
//!
//! ```text
//!  client ──TimeStampReq DER──▶ tsp::request::parse ──AcceptedRequest──▶ threshold::Coordinator
//!                                                                            │ proposes genTime + serial
//!                                   ┌────────────── SigningProposal ─────────┘
//!                                   ▼
//!                     threshold::Signer (× t): re-checks policy, hash, genTime vs own clock,
//!                     builds TSTInfo + signed attributes itself, signs (RFC 9591 round 2)
//!                                   │ SignatureShare
//!                                   ▼
//!               Coordinator aggregates, verifies, tsp::token assembles CMS SignedData
//!                                   │
//!                                   ▼
//!                     TimeStampResp DER ──▶ client ──▶ verify::verify_token (relying party)
//! ```
//!
//! # Layout
//!
//! Layers, lowest first; a module imports only from layers below its own, and no two
//! modules import each other (`scripts/module-graph.py`, run by `make lint`, checks
//! both and prints the graph; `docs/architecture.md` walks a token and a repair
//! through it).
//!
//! ```text
//!  7  cli  pid1                          the edges: subcommands; the image's /init
//!  6  node  ceremony  local              the node; the operator's ceremony; in-process TSA
//!  5  net                                TLS identity and configurations, HTTPS client
//!  4  api                                every wire type: admin bodies, bundle, peer messages
//!  3  certs  verify                      certificate profiles, dev CA; relying-party checks
//!  2  threshold                          FROST keys, signer, coordinator (per ciphersuite)
//!  1  tsp  attestation  time  measure    RFC 3161/5652; SEV-SNP; Roughtime; launch digests
//!  0  x509  oid  clock  entropy  serde_hex  certificates, PEM, signatures, paths; OIDs;
//!                                        time and randomness as inputs
//! ```
//!
//! - [`x509`]: certificates with their received bytes, PEM, signature verification by
//!   algorithm identifier ([`x509::sig`]), path building and the TSA leaf profile
//!   ([`x509::chain`]).
//! - [`clock`]: the `Clock` trait. Time is passed in; nothing else reads the wall clock.
//! - [`entropy`]: randomness passed in the same way (`Entropy`; seeded in tests).
//! - [`oid`]: every OID the project uses (see `docs/oids.md`).
//! - [`tsp`]: RFC 3161 / RFC 5816 / RFC 5652 structures: request parsing into a validated
//!   type, TSTInfo and signed-attribute construction, token assembly over any
//!   [`tsp::token::CmsScheme`], responses.
//! - [`attestation`]: SEV-SNP reports, verification against pinned AMD roots, the
//!   hardware attester and (feature `insecure-dev-attestation`) the development one.
//! - [`time`]: Roughtime queries, time evidence and its policy.
//! - [`measure`]: expected SEV-SNP launch digests of the boot image (`frostamp measure`).
//! - [`threshold`]: FROST key material (redacted, zeroized), the signer that checks what it
//!   signs, the coordinator, and the transport-neutral signer interface, all generic over
//!   the epoch's ciphersuite (`threshold::suite`).
//! - [`certs`]: TSA certificate profile, the launch-measurement extension, the
//!   threshold-signed CSR, the nodes' public TLS certificates, CRLs, a small development CA.
//! - [`verify`]: relying-party verification of any RFC 3161 token (FROST, Ed25519, RSA,
//!   ECDSA) and revocation.
//! - [`api`]: every wire type, shared by the side that sends it and the side that
//!   receives it: admin and status bodies, operator authentication, the evidence
//!   bundle, peer messages.
//! - [`net`]: the node's ephemeral TLS identity, rustls configurations, the HTTPS client.
//! - [`node`]: the node `frostamp-node` runs: attested peer admission, DKG, threshold
//!   serving, share repair, HTTPS; its state lives in one place (`node::state`) that
//!   every handler works on.
//! - [`ceremony`]: the operator's side of the key ceremony and the CA's bundle checks.
//! - [`local`]: an in-process TSA for tests, benchmarks and the demo.
//! - [`pid1`]: what `frostamp-node` does as the boot image's `/init`: mounts, RNG,
//!   network, memory locking, fw_cfg configuration, SEV-SNP check, power-off; the
//!   crate's only `unsafe` code.
//! - [`cli`]: the `frostamp` subcommands (thin binaries live in `src/bin/`).
//!
//! Design rationale lives in `docs/`.

// The lints (unsafe code denied, no unwrap/expect/panic/indexing outside tests, the wall
// clock only through `Clock`) are set for every target in Cargo.toml's `[lints]`.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod api;
pub mod attestation;
pub mod ceremony;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod entropy;
pub mod local;
pub mod measure;
pub mod net;
pub mod node;
pub mod oid;
pub mod pid1;
mod serde_hex;
pub mod threshold;
pub mod time;
pub mod tsp;
pub mod verify;
pub mod x509;
