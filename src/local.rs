//! An in-process TSA: n signers, one coordinator, a development CA, all in one
//! process. Used by the test suite, `make bench` and `frostamp demo`; the
//! networked cluster replaces it in production. Every share passes through this
//! process's memory, so it is never a production deployment.

use crate::certs::{CertError, DevCa};
use crate::clock::Clock;
use crate::threshold::coordinator::{Coordinator, IssueFailure, Issued, SignerPeer};
use crate::threshold::keys::{dkg_in_process_for, GroupKey, KeyError};
use crate::threshold::signer::{Refusal, Signer};
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
/// made with [`LocalTsa::for_suite`]).
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

impl<C: Clock> LocalTsa<C, Secp256K1Sha256> {
    /// DKG among `n` with threshold `t`, a dev CA, a TSA certificate for the group
    /// key, installed in every signer. `signer_clocks` gives each signer its own
    /// clock (index i → signer i+1); missing entries use `default_clock`.
    pub fn new(
        n: u16,
        t: u16,
        profile: TsaProfile,
        coordinator_clock: C,
        default_clock: Arc<dyn Clock>,
        signer_clocks: Vec<Arc<dyn Clock>>,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Self, LocalError> {
        Self::for_suite(
            n,
            t,
            profile,
            coordinator_clock,
            default_clock,
            signer_clocks,
            None,
            crate::threshold::signer::TimeRule::OwnClock,
            rng,
        )
    }
}

impl<C: Clock, S: Suite> LocalTsa<C, S> {
    /// Like [`LocalTsa::new`], for the ciphersuite `S`, with a launch-measurement
    /// extension in the TSA certificate if `measurement` is given, and signers that
    /// follow `time` (tests of time evidence drive these signers directly;
    /// [`LocalTsa::issue`] has no evidence).
    #[allow(clippy::too_many_arguments)]
    pub fn for_suite(
        n: u16,
        t: u16,
        profile: TsaProfile,
        coordinator_clock: C,
        default_clock: Arc<dyn Clock>,
        signer_clocks: Vec<Arc<dyn Clock>>,
        measurement: Option<[u8; 48]>,
        time: crate::threshold::signer::TimeRule,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Self, LocalError> {
        let (shares, group) = dkg_in_process_for::<S>(n, t, rng)?;
        let now = coordinator_clock.now();
        let not_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
        let ca = DevCa::generate(
            "CN=frostamp development root,O=frostamp (development)",
            not_before,
            Duration::from_secs(10 * 365 * 86400),
            rng,
        )?;
        let tsa_cert = ca.issue_tsa_certificate(
            &group.public(),
            measurement.as_ref(),
            "CN=frostamp TSA (development),O=frostamp",
            not_before,
            Duration::from_secs(365 * 86400),
            rng,
        )?;
        let identity = CertIdentity::from_der(&tsa_cert)?;
        let mut signers = Vec::new();
        for (i, share) in shares.into_iter().enumerate() {
            let clock = signer_clocks
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_clock.clone());
            let s = Signer::new(share, group.clone(), profile.clone(), clock, time.clone());
            s.install_certificate(identity.clone())?;
            signers.push(s);
        }
        let coordinator = Coordinator::new(profile, group.clone(), identity, t, coordinator_clock);
        Ok(Self {
            ca,
            tsa_cert,
            group,
            signers,
            coordinator,
        })
    }

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
