//! Relying-party verification.
//!
//! - [`token`]: RFC 3161 token verification end to end (any TSA, any of the
//!   supported signature algorithms, FROST included).
//!
//! Signatures by algorithm identifier and path building are the base layer's
//! ([`crate::x509::sig`], [`crate::x509::chain`]), shared with the node and attestation.
//! - [`revocation`]: CRLs for every certificate of the path (`verify --crl`, `--fetch-crls`).

pub mod revocation;
pub mod token;
