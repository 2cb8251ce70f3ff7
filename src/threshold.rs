//! threshold (in progress)
