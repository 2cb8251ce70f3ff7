//! FROST threshold signing of timestamp tokens (RFC 9591), generic over the key
//! epoch's ciphersuite: FROST(secp256k1, SHA-256) or FROST(Ed25519, SHA-512).
//!
//! - [`suite`]: the two ciphersuites, what certificates and tokens need of each, and
//!   [`suite::BySuite`], the one dispatch between a held epoch and generic code.
//! - [`keys`]: key shares (redacted, zeroized) and the group key; local key
//!   generation for tests, benchmarks and the in-process demo.
//! - [`signer`]: one share holder. It checks what it signs (DESIGN §2.6): it
//!   re-parses the client's request, checks genTime against its own clock and
//!   the certificate against the one it holds, builds the signed attributes
//!   itself and only then produces its signature share (RFC 9591 §5.2).
//! - [`coordinator`]: proposes genTime and serial, gathers commitments and
//!   shares through the transport-neutral [`coordinator::SignerPeer`] trait,
//!   aggregates (RFC 9591 §5.3) with cheater detection, assembles the token.
//!
//! Transport is not here: in-process peers implement `SignerPeer` directly; the
//! network implementation lives with the node.

pub mod coordinator;
pub mod keys;
pub mod signer;
pub mod suite;

/// The default suite's crate (FROST(secp256k1, SHA-256)), for tests and code that is
/// secp256k1-only.
pub use frost_secp256k1 as frost;
