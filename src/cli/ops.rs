//! Operator commands, by concern: credentials, the development CA and what a
//! verifier trusts ([`ca`]); the ceremony, installs, repairs and public TLS
//! ([`lifecycle`]); the local five-process cluster ([`cluster`]) with its time
//! servers ([`local_time`]) and its file ([`files`]). Everything is re-exported here.

pub mod ca;
pub mod cluster;
pub mod files;
pub mod lifecycle;
pub mod local_time;
pub use ca::*;
pub use cluster::*;
pub use files::{ClusterFile, ClusterNode, ClusterTimeServer};
pub use lifecycle::*;
pub use local_time::{
    parse_time_offsets, roughenough_binary, start_local_time_servers, time_server_start,
    time_server_stop, PREVIOUS_TIME_CONFIG_FILE, TIME_CONFIG_FILE,
};
