//! An in-process TSA: n signers, one coordinator, a development CA, all in one
//! process. Used by the test suite, `make bench` and `frostamp demo`; the
//! networked cluster replaces it in production. Every share passes through this
//! process's memory, so it is never a production deployment.

use crate::certs::{CertError, DevCa};
use crate::clock::{Clock, SystemClock};
use crate::threshold::coordinator::{Coordinator, IssueFailure, Issued, SignerPeer};
use crate::threshold::keys::{dkg_in_process_for, GroupKey, KeyError};
use crate::threshold::signer::{Refusal, Signer, TimeRule};
use crate::threshold::suite::{Secp256K1Sha256, Suite};
use crate::tsp::token::{CertIdentity, TokenError};
use crate::tsp::TsaProfile;
use std::sync::Arc;
use std::time::Duration;

/// Errors while setting up a local TSA.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Key generation.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Certificate issuance.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Token structures.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A signer refused the certificate.
    #[error("signer refused the certificate: {0}")]
    Refused(#[from] Refusal),
}

/// A complete in-process TSA of one ciphersuite (FROST(secp256k1, SHA-256) unless
/// made by [`LocalSetup::build`] for another).
pub struct LocalTsa<C: Clock, S: Suite = Secp256K1Sha256> {
    /// The development root CA.
    pub ca: DevCa,
    /// The TSA certificate DER.
    pub tsa_cert: Vec<u8>,
    /// The group key.
    pub group: GroupKey<S>,
    /// One signer per share, identifiers 1..=n.
    pub signers: Vec<Signer<Arc<dyn Clock>, S>>,
    /// The coordinator.
    pub coordinator: Coordinator<C, S>,
}

impl<C: Clock, S: Suite> core::fmt::Debug for LocalTsa<C, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalTsa")
            .field("signers", &self.signers.len())
            .finish_non_exhaustive()
    }
}

/// How to make a [`LocalTsa`]: [`LocalSetup::new`] is 3-of-5 with the frostamp default
/// profile, the system clock for the coordinator and every signer, no launch measurement
/// and signers on their own clock; the methods change one of these and
/// [`LocalSetup::build`] makes the TSA of a ciphersuite.
pub struct LocalSetup<C: Clock = SystemClock> {
    n: u16,
    t: u16,
    profile: TsaProfile,
    coordinator_clock: C,
    default_clock: Arc<dyn Clock>,
    signer_clocks: Vec<Arc<dyn Clock>>,
    measurement: Option<[u8; 48]>,
    time: TimeRule,
}

impl LocalSetup {
    /// 3-of-5, default profile, system clocks, no measurement, signers on their own clock.
    pub fn new() -> Self {
        Self {
            n: 5,
            t: 3,
            profile: TsaProfile::frostamp_default(),
            coordinator_clock: SystemClock,
            default_clock: Arc::new(SystemClock),
            signer_clocks: Vec::new(),
            measurement: None,
            time: TimeRule::OwnClock,
        }
    }
}

impl Default for LocalSetup {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> LocalSetup<C> {
    /// `n` signers, threshold `t`.
    pub fn nt(self, n: u16, t: u16) -> Self {
        Self { n, t, ..self }
    }

    /// The TSA profile of the coordinator and every signer.
    pub fn profile(self, profile: TsaProfile) -> Self {
        Self { profile, ..self }
    }

    /// The coordinator's clock.
    pub fn clock<D: Clock>(self, coordinator_clock: D) -> LocalSetup<D> {
        let LocalSetup {
            n,
            t,
            profile,
            default_clock,
            signer_clocks,
            measurement,
            time,
            ..
        } = self;
        LocalSetup {
            coordinator_clock,
            n,
            t,
            profile,
            default_clock,
            signer_clocks,
            measurement,
            time,
        }
    }

    /// The clock of every signer not given one by [`LocalSetup::signer_clocks`].
    pub fn default_clock(self, default_clock: Arc<dyn Clock>) -> Self {
        Self {
            default_clock,
            ..self
        }
    }

    /// The clocks of the first signers (index i → signer i+1).
    pub fn signer_clocks(self, signer_clocks: Vec<Arc<dyn Clock>>) -> Self {
        Self {
            signer_clocks,
            ..self
        }
    }

    /// A launch-measurement extension in the TSA certificate.
    pub fn measurement(self, measurement: Option<[u8; 48]>) -> Self {
        Self {
            measurement,
            ..self
        }
    }

    /// The signers' time rule (tests of time evidence drive these signers directly;
    /// [`LocalTsa::issue`] has no evidence).
    pub fn time(self, time: TimeRule) -> Self {
        Self { time, ..self }
    }

    /// DKG, a dev CA, a TSA certificate for the group key of ciphersuite `S`, installed
    /// in every signer.
    pub fn build<S: Suite>(
        self,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<LocalTsa<C, S>, LocalError> {
        let (shares, group) = dkg_in_process_for::<S>(self.n, self.t, rng)?;
        let now = self.coordinator_clock.now();
        let not_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
        let ca = DevCa::generate(
            "CN=frostamp development root,O=frostamp (development)",
            not_before,
            Duration::from_secs(10 * 365 * 86400),
            rng,
        )?;
        let tsa_cert = ca.issue_tsa_certificate(
            &group.public(),
            self.measurement.as_ref(),
            "CN=frostamp TSA (development),O=frostamp",
            not_before,
            Duration::from_secs(365 * 86400),
            rng,
        )?;
        let identity = CertIdentity::from_der(&tsa_cert)?;
        let mut signers = Vec::new();
        for (i, share) in shares.into_iter().enumerate() {
            let clock = self.signer_clocks.get(i).cloned();
            let clock = clock.unwrap_or_else(|| self.default_clock.clone());
            let s = Signer::new(
                share,
                group.clone(),
                self.profile.clone(),
                clock,
                self.time.clone(),
            );
            s.install_certificate(identity.clone())?;
            signers.push(s);
        }
        let coordinator = Coordinator::new(
            self.profile,
            group.clone(),
            identity,
            self.t,
            self.coordinator_clock,
        );
        Ok(LocalTsa {
            ca,
            tsa_cert,
            group,
            signers,
            coordinator,
        })
    }
}

impl<C: Clock, S: Suite> LocalTsa<C, S> {
    /// Issue a token for `request_der` with the signers in order (first t that sign).
    pub fn issue(
        &self,
        request_der: &[u8],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Issued<S>, IssueFailure> {
        let peers: Vec<&dyn SignerPeer<S>> = self
            .signers
            .iter()
            .map(|s| s as &dyn SignerPeer<S>)
            .collect();
        self.coordinator.issue(request_der, &peers, rng)
    }
}
