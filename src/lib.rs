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
//! - [`clock`]: the `Clock` trait. Time is passed in; nothing else reads the wall clock.
//! - [`oid`]: arbitrary-arc object identifiers and every OID the project uses
//!   (see `docs/oids.md`).
//! - [`tsp`]: RFC 3161 / RFC 5816 / RFC 5652 structures: request parsing into a validated
//!   type, TSTInfo and signed-attribute construction, token assembly, responses.
//! - [`threshold`]: FROST key material (redacted, zeroized), the signer that checks what it
//!   signs, the coordinator, and the transport-neutral signer interface, all generic over
//!   the epoch's ciphersuite (`threshold::suite`).
//! - [`verify`]: relying-party verification of any RFC 3161 token (FROST, Ed25519, RSA, ECDSA),
//!   certificate path building, signature algorithms.
//! - [`certs`]: TSA certificate profile, the launch-measurement extension, the
//!   threshold-signed CSR, a small development CA.
//! - [`attestation`]: SEV-SNP reports, verification against pinned AMD roots, the
//!   hardware attester and (feature `insecure-dev-attestation`) the development one.
//! - [`node`]: the node `frostamp-node` runs: identity, operator authentication,
//!   attested peer admission, DKG, threshold serving, share repair, HTTPS.
//! - [`net`]: rustls configurations and the HTTPS client.
//! - [`ceremony`]: the operator's side of the key ceremony and the CA's bundle checks.
//! - [`local`]: an in-process TSA for tests, benchmarks and the demo.
//! - [`measure`]: expected SEV-SNP launch digests of the boot image (`frostamp measure`).
//! - [`pid1`]: what `frostamp-node` does as the boot image's `/init`: mounts, RNG,
//!   network, memory locking, fw_cfg configuration, SEV-SNP check, power-off; the
//!   crate's only `unsafe` code.
//! - [`cli`]: the `frostamp` subcommands (thin binaries live in `src/bin/`).
//!
//! Design rationale lives in `docs/`.

// `deny`, not `forbid`: `pid1` alone allows it, one system call per commented block.
#![deny(unsafe_code)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod attestation;
pub mod ceremony;
pub mod certs;
pub mod cli;
pub mod clock;
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
