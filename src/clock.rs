//! Time as an input.
//!
//! Signers compare a proposed genTime with *their own* clock (DESIGN §2.6), tests
//! need skewed and frozen clocks, and verifiers take the verification time as an
//! argument. So the wall clock is read in exactly one place, [`SystemClock`];
//! `clippy.toml` bans `SystemTime::now` everywhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always returns the same instant (tests, verification "as of").
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Another clock shifted by a signed offset: models a signer whose clock is skewed.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock<C> {
    inner: C,
    ahead: bool,
    offset: Duration,
}

impl<C: Clock> SkewedClock<C> {
    /// A clock running `offset` ahead of `inner`.
    pub fn ahead(inner: C, offset: Duration) -> Self {
        Self {
            inner,
            ahead: true,
            offset,
        }
    }
    /// A clock running `offset` behind `inner`.
    pub fn behind(inner: C, offset: Duration) -> Self {
        Self {
            inner,
            ahead: false,
            offset,
        }
    }
}

impl<C: Clock> Clock for SkewedClock<C> {
    fn now(&self) -> SystemTime {
        let t = self.inner.now();
        if self.ahead {
            t.checked_add(self.offset).unwrap_or(t)
        } else {
            t.checked_sub(self.offset).unwrap_or(UNIX_EPOCH)
        }
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}
