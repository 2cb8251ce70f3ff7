//! Relying-party verification.
//!
//! - [`token`]: RFC 3161 token verification end to end (any TSA, any of the
//!   supported signature algorithms, FROST included).
//! - [`sig`]: signature verification by algorithm identifier (RSA PKCS#1 v1.5,
//!   RSASSA-PSS, ECDSA P-256/P-384/secp256k1) and digests.
//! - [`chain`]: certificate path building to caller-supplied trust anchors at a
//!   caller-supplied time (RFC 5280 subset) and the TSA certificate profile check.
//! - [`revocation`]: CRLs for every certificate of the path (`verify --crl`, `--fetch-crls`).

pub mod chain;
pub mod revocation;
pub mod sig;
pub mod token;
