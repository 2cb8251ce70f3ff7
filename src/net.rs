//! Networking: TLS configurations and the small HTTPS client the CLI uses.

pub mod client;
pub mod tls;
