//! The key epoch's lifecycle as one value: the phase, the cluster layout, the roster,
//! the key share and the coordinator a certificate makes possible. Every change is a
//! transition method that checks it is allowed from where the node is and says why
//! not otherwise; nothing else writes these fields. No sockets, no clock, no locks:
//! the node keeps an [`Epoch`] inside its state mutex, and the tests below drive it
//! alone.
//!
//! ```text
//!  Booting ──started──▶ AwaitingPeers ──begin_dkg──▶ KeyGeneration
//!                          ▲   │                      │        │
//!                dkg_failed└───┼──────────────────────┘        │dkg_succeeded
//!                              │repaired (no chain)            ▼
//!                              ├─────────────────────▶ AwaitingCertificate
//!                              │repaired (chain)               │install_certificate
//!                              └─────────────────────▶ Serving ◀┘ (renewals stay)
//! ```
//!
//! The roster is set when a DKG starts (cleared if it fails) or a replacement's repair
//! completes, and moves from version v to v + 1 only when a repair order takes effect.

use crate::api::admin::{ClusterConfig, Phase};
use crate::attestation::roster::Roster;

/// Why a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EpochError {
    /// No cluster configuration yet.
    #[error("not configured: call /admin/configure first")]
    NotConfigured,
    /// A key generation is running.
    #[error("a key generation is already running")]
    DkgRunning,
    /// A new configuration while a key share or roster is held.
    #[error("this node holds a key share; restart it to join another cluster")]
    Joined,
    /// A key generation or repair while a key share is held.
    #[error("this node already holds a key share for this cluster")]
    HoldsKey,
    /// No key share to attach a certificate or pin to.
    #[error("no key share: run the key generation first")]
    NoKey,
    /// A DKG result without a DKG running.
    #[error("no key generation is running")]
    NoDkg,
    /// A repair order's roster does not follow the held one.
    #[error("roster v{got} does not follow the held roster ({})", .held.map_or_else(|| "none".to_string(), |v| format!("v{v}")))]
    NotSuccessor {
        /// The offered version.
        got: u32,
        /// The held version.
        held: Option<u32>,
    },
}

/// What [`Epoch::configure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Configured {
    /// The same configuration again: nothing changed.
    Unchanged,
    /// The layout is new (links made under another one must close).
    New,
}

/// The key epoch: `K` is the held key share, `C` the coordinator its certificate
/// makes (the node's are `EpochKey` and `HeldCoordinator`).
#[derive(Debug)]
pub(super) struct Epoch<K, C> {
    phase: Phase,
    cluster: Option<ClusterConfig>,
    roster: Option<Roster>,
    key: Option<K>,
    coordinator: Option<C>,
    dkg_running: bool,
}

impl<K, C> Default for Epoch<K, C> {
    fn default() -> Self {
        Self {
            phase: Phase::Booting,
            cluster: None,
            roster: None,
            key: None,
            coordinator: None,
            dkg_running: false,
        }
    }
}

impl<K, C> Epoch<K, C> {
    /// The phase `/status` reports.
    pub(super) fn phase(&self) -> Phase {
        self.phase
    }
    /// The cluster layout, once configured.
    pub(super) fn cluster(&self) -> Option<&ClusterConfig> {
        self.cluster.as_ref()
    }
    /// The roster, from a DKG's start or a repair on.
    pub(super) fn roster(&self) -> Option<&Roster> {
        self.roster.as_ref()
    }
    /// The key share, once a DKG or a repair completed.
    pub(super) fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }
    /// The key share, to fix its pin or record its chain.
    pub(super) fn key_mut(&mut self) -> Option<&mut K> {
        self.key.as_mut()
    }
    /// The coordinator, once a certificate is installed.
    pub(super) fn coordinator(&self) -> Option<&C> {
        self.coordinator.as_ref()
    }
    /// Whether a key generation is running.
    #[cfg(test)]
    pub(super) fn dkg_running(&self) -> bool {
        self.dkg_running
    }

    /// The node is up and attested: it waits for its operator and its peers.
    pub(super) fn started(&mut self) {
        if matches!(self.phase, Phase::Booting | Phase::Attesting) {
            self.phase = Phase::AwaitingPeers;
        }
    }

    /// The operator's layout. The same one again changes nothing; another is refused
    /// once a key generation runs or a share or roster is held.
    pub(super) fn configure(&mut self, cfg: ClusterConfig) -> Result<Configured, EpochError> {
        if self.cluster.as_ref() == Some(&cfg) {
            return Ok(Configured::Unchanged);
        }
        if self.dkg_running {
            return Err(EpochError::DkgRunning);
        }
        if self.key.is_some() || self.roster.is_some() {
            return Err(EpochError::Joined);
        }
        self.cluster = Some(cfg);
        self.started();
        Ok(Configured::New)
    }

    /// A key generation starts; this node's index in the layout.
    pub(super) fn begin_dkg(&mut self) -> Result<u16, EpochError> {
        let index = self
            .cluster
            .as_ref()
            .ok_or(EpochError::NotConfigured)?
            .index;
        if self.dkg_running {
            return Err(EpochError::DkgRunning);
        }
        if self.key.is_some() {
            return Err(EpochError::HoldsKey);
        }
        self.dkg_running = true;
        self.phase = Phase::KeyGeneration;
        Ok(index)
    }

    /// The key generation produced `key` (and this node's evidence for it).
    pub(super) fn dkg_succeeded(&mut self, key: K) -> Result<(), EpochError> {
        if !self.dkg_running {
            return Err(EpochError::NoDkg);
        }
        self.dkg_running = false;
        self.key = Some(key);
        self.phase = Phase::AwaitingCertificate;
        Ok(())
    }

    /// The key generation aborted (or its evidence failed): back to waiting, with
    /// no roster.
    pub(super) fn dkg_failed(&mut self) {
        self.dkg_running = false;
        self.roster = None;
        self.phase = Phase::AwaitingPeers;
    }

    /// What a replacement needs to ask for its share: its index and the threshold.
    pub(super) fn repair_target(&self) -> Result<(u16, u16), EpochError> {
        let c = self.cluster.as_ref().ok_or(EpochError::NotConfigured)?;
        if self.dkg_running {
            return Err(EpochError::DkgRunning);
        }
        if self.key.is_some() {
            return Err(EpochError::HoldsKey);
        }
        Ok((c.index, c.t))
    }

    /// A replacement's repaired share, with a coordinator if the helpers held a
    /// certificate; the phase it leads to.
    pub(super) fn repaired(&mut self, key: K, coordinator: Option<C>) -> Result<Phase, EpochError> {
        self.repair_target()?;
        self.phase = if coordinator.is_some() {
            Phase::Serving
        } else {
            Phase::AwaitingCertificate
        };
        self.key = Some(key);
        self.coordinator = coordinator;
        Ok(self.phase)
    }

    /// A certificate (first or renewal) is installed for the held key.
    pub(super) fn install_certificate(&mut self, coordinator: C) -> Result<(), EpochError> {
        if self.key.is_none() {
            return Err(EpochError::NoKey);
        }
        self.coordinator = Some(coordinator);
        self.phase = Phase::Serving;
        Ok(())
    }

    /// Take `roster`. A repair order moves it only from version v to v + 1
    /// (`successor`); a DKG or a replacement's first roster replaces whatever was held.
    pub(super) fn adopt_roster(
        &mut self,
        roster: Roster,
        successor: bool,
    ) -> Result<(), EpochError> {
        if successor {
            let held = self.roster.as_ref().map(|r| r.version);
            if held.map(|v| v.saturating_add(1)) != Some(roster.version) {
                return Err(EpochError::NotSuccessor {
                    got: roster.version,
                    held,
                });
            }
        }
        self.roster = Some(roster);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Configured, Epoch, EpochError};
    use crate::api::admin::{ClusterConfig, Phase};
    use crate::attestation::roster::{Member, Roster};

    /// A key share stands in as a string, a coordinator as a number.
    type E = Epoch<&'static str, u8>;

    fn cfg(index: u16) -> ClusterConfig {
        ClusterConfig {
            index,
            t: 3,
            nodes: (1..=5).map(|i| (i, format!("127.0.0.1:{i}"))).collect(),
        }
    }

    fn roster(version: u32) -> Roster {
        Roster {
            version,
            members: (1..=5)
                .map(|index| Member {
                    index,
                    spki_sha256: [u8::try_from(index).unwrap(); 32],
                    chip_id: [0; 64],
                    tcb: "0".into(),
                })
                .collect(),
        }
    }

    fn configured() -> E {
        let mut e = E::default();
        e.started();
        assert_eq!(e.configure(cfg(2)), Ok(Configured::New));
        e
    }

    #[test]
    fn a_node_boots_configures_and_generates_a_key_then_serves() {
        let mut e = E::default();
        assert_eq!(e.phase(), Phase::Booting);
        e.started();
        assert_eq!(e.phase(), Phase::AwaitingPeers);
        assert_eq!(e.configure(cfg(2)), Ok(Configured::New));
        assert_eq!(e.configure(cfg(2)), Ok(Configured::Unchanged));
        assert_eq!(e.begin_dkg(), Ok(2));
        assert_eq!(e.phase(), Phase::KeyGeneration);
        assert_eq!(e.adopt_roster(roster(1), false), Ok(()));
        assert_eq!(e.dkg_succeeded("share"), Ok(()));
        assert_eq!(e.phase(), Phase::AwaitingCertificate);
        assert_eq!(e.key(), Some(&"share"));
        assert!(!e.dkg_running());
        assert_eq!(e.install_certificate(7), Ok(()));
        assert_eq!(e.phase(), Phase::Serving);
        // A renewal replaces the coordinator and stays serving.
        assert_eq!(e.install_certificate(8), Ok(()));
        assert_eq!(e.coordinator(), Some(&8));
    }

    #[test]
    fn what_does_not_fit_the_phase_is_refused_and_changes_nothing() {
        let mut e = E::default();
        assert_eq!(e.begin_dkg(), Err(EpochError::NotConfigured));
        assert_eq!(e.repair_target(), Err(EpochError::NotConfigured));
        assert_eq!(e.install_certificate(1), Err(EpochError::NoKey));
        assert_eq!(e.dkg_succeeded("share"), Err(EpochError::NoDkg));
        assert_eq!(e.key(), None);
        let mut e = configured();
        assert_eq!(e.begin_dkg(), Ok(2));
        assert_eq!(e.begin_dkg(), Err(EpochError::DkgRunning));
        assert_eq!(e.configure(cfg(3)), Err(EpochError::DkgRunning));
        assert_eq!(e.repair_target(), Err(EpochError::DkgRunning));
        assert_eq!(e.repaired("other", None), Err(EpochError::DkgRunning));
        assert_eq!(e.cluster().map(|c| c.index), Some(2));
        e.dkg_succeeded("share").unwrap();
        assert_eq!(e.begin_dkg(), Err(EpochError::HoldsKey));
        assert_eq!(e.configure(cfg(3)), Err(EpochError::Joined));
        assert_eq!(e.repaired("other", Some(1)), Err(EpochError::HoldsKey));
        assert_eq!(e.key(), Some(&"share"));
        assert_eq!(e.phase(), Phase::AwaitingCertificate);
    }

    #[test]
    fn an_aborted_key_generation_forgets_its_roster_and_may_run_again() {
        let mut e = configured();
        e.begin_dkg().unwrap();
        e.adopt_roster(roster(1), false).unwrap();
        e.dkg_failed();
        assert_eq!(e.phase(), Phase::AwaitingPeers);
        assert!(e.roster().is_none());
        assert!(!e.dkg_running());
        // With no roster held, another layout may still be configured.
        assert_eq!(e.configure(cfg(4)), Ok(Configured::New));
        assert_eq!(e.begin_dkg(), Ok(4));
    }

    #[test]
    fn a_held_roster_forbids_another_layout_even_without_a_key() {
        let mut e = configured();
        e.adopt_roster(roster(1), false).unwrap();
        assert_eq!(e.configure(cfg(3)), Err(EpochError::Joined));
    }

    #[test]
    fn a_replacement_is_repaired_to_serving_or_to_awaiting_its_certificate() {
        let mut e = configured();
        assert_eq!(e.repair_target(), Ok((2, 3)));
        assert_eq!(e.repaired("share", Some(5)), Ok(Phase::Serving));
        assert_eq!(e.coordinator(), Some(&5));
        let mut e = configured();
        assert_eq!(e.repaired("share", None), Ok(Phase::AwaitingCertificate));
        assert_eq!(e.coordinator(), None);
        assert_eq!(e.install_certificate(1), Ok(()));
        assert_eq!(e.phase(), Phase::Serving);
    }

    #[test]
    fn a_repair_order_moves_the_roster_one_version_only() {
        let mut e = configured();
        assert_eq!(
            e.adopt_roster(roster(2), true),
            Err(EpochError::NotSuccessor { got: 2, held: None })
        );
        assert_eq!(
            EpochError::NotSuccessor { got: 2, held: None }.to_string(),
            "roster v2 does not follow the held roster (none)"
        );
        e.adopt_roster(roster(1), false).unwrap();
        assert_eq!(
            e.adopt_roster(roster(3), true),
            Err(EpochError::NotSuccessor {
                got: 3,
                held: Some(1)
            })
        );
        assert_eq!(e.adopt_roster(roster(2), true), Ok(()));
        assert_eq!(e.roster().map(|r| r.version), Some(2));
        // The same version again is not a successor (an order takes effect once).
        assert!(e.adopt_roster(roster(2), true).is_err());
        // A DKG's or a replacement's roster replaces whatever was held.
        assert_eq!(e.adopt_roster(roster(1), false), Ok(()));
        assert_eq!(e.roster().map(|r| r.version), Some(1));
    }
}
