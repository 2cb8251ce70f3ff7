//! Time nobody can move (issue 12, `docs/time.md`): Roughtime replies bound to each
//! request back genTime, and every signer and relying party checks them.
//!
//! - [`roughtime`]: the wire protocol, strict verification of replies, one UDP exchange;
//! - [`evidence`]: leaves, batches, the evidence a token carries, the bound it gives.

pub mod config;
pub mod evidence;
pub mod roughtime;
