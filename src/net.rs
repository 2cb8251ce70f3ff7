//! Networking: the node's ephemeral TLS identity, TLS configurations and the small
//! HTTPS client the CLI uses.

pub mod client;
pub mod identity;
pub mod tls;
