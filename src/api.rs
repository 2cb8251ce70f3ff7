//! Every wire type in one place, above the layers whose values they carry and below
//! the node, the ceremony and the CLI that send and receive them:
//!
//! - [`admin`]: the bodies of the node's HTTPS admin and status endpoints;
//! - [`auth`]: the operator's signature on admin calls and the node's check of it;
//! - [`bundle`]: the ceremony's evidence bundle;
//! - [`peer`]: the messages nodes exchange on the attested peer port.

pub mod admin;
pub mod auth;
pub mod bundle;
pub mod peer;
