//! Why a lifecycle (`/admin/*`) call is refused. Handlers say which kind of refusal;
//! `http::answer` is the one place that maps each kind onto an HTTP status.

/// A refused lifecycle call.
#[derive(Debug, thiserror::Error)]
pub(super) enum AdminError {
    /// The body does not parse, or a field breaks its rule (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The call does not fit what the node holds or is doing: its phase, its key,
    /// its roster, a running key generation, a pin already fixed (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Well formed, but what it carries fails its checks: a certificate, a CA root,
    /// public names (HTTP 422).
    #[error("{0}")]
    Refused(String),
    /// The key generation aborted; `culprit` names the node blamed, if any (HTTP 409,
    /// the culprit in the body).
    #[error("key generation aborted: {reason}")]
    DkgAborted {
        /// What went wrong.
        reason: String,
        /// The index blamed.
        culprit: Option<u16>,
    },
    /// This node could not do its own part (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// The same refusal, its message prefixed with `what: `.
    pub(super) fn context(self, what: &str) -> Self {
        let with = |m: String| format!("{what}: {m}");
        match self {
            Self::BadRequest(m) => Self::BadRequest(with(m)),
            Self::Conflict(m) => Self::Conflict(with(m)),
            Self::Refused(m) => Self::Refused(with(m)),
            Self::DkgAborted { reason, culprit } => Self::DkgAborted {
                reason: with(reason),
                culprit,
            },
            Self::Internal(m) => Self::Internal(with(m)),
        }
    }
}

impl From<super::epoch::EpochError> for AdminError {
    /// A lifecycle call that does not fit the key epoch's state is a 409: the same
    /// call may fit later (or on a restarted node).
    fn from(e: super::epoch::EpochError) -> Self {
        use super::epoch::EpochError as E;
        match e {
            E::NotConfigured
            | E::DkgRunning
            | E::Joined
            | E::HoldsKey
            | E::NoKey
            | E::NoDkg
            | E::NotSuccessor { .. } => Self::Conflict(e.to_string()),
        }
    }
}
