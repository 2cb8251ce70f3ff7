//! The TSA certificate on a node: the CA root and subject fixed when the CSR
//! is made, then the install checks of [`crate::certs::install`].
//!
//! Who records the pin (SHA-256 of the CA root, requested subject), once per
//! key epoch:
//! - the node that receives `POST /admin/csr` (the request names the root);
//! - every node that co-signs that CSR (the `SignCsr` peer message carries the
//!   root's hash; a signer refuses to sign for another pin than its own);
//! - any other node through `POST /admin/ca-root`, accepted only while no
//!   certificate is installed; the same pin again is a no-op, another is refused.
//!
//! A node without a pin refuses every upload. After the first install, only a
//! renewal ([`crate::certs::install::Installed::Renewal`]) replaces the
//! certificate; tokens then name the renewal.

use super::refusal::AdminError;
use super::state::Node;
use crate::api::admin::{CaRootRequest, CertificateUpload};
use crate::certs::install::{self, Expect, Installed, IssuancePin};

/// Why a pin could not be fixed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PinError {
    /// No key epoch to fix it for.
    #[error("no key share: run the key generation first")]
    NoKey,
    /// Another pin is fixed for this epoch.
    #[error(transparent)]
    Conflict(#[from] install::PinConflict),
}

/// Record `pin` for this node's epoch (see the module documentation).
pub(super) fn fix(node: &Node, pin: IssuancePin) -> Result<(), PinError> {
    let mut s = node.state();
    let key = s.epoch.key_mut().ok_or(PinError::NoKey)?;
    let (root, subject) = (hex::encode(pin.ca_root), pin.subject.clone());
    match install::fix_pin(&mut key.pin, pin) {
        Ok(true) => {
            drop(s);
            tracing::info!(node = %node.name, ca_root = %root, subject = %subject, "CA root and subject fixed for this key epoch");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pin a `/admin/csr` request names: its CA root (hex DER) must be a
/// self-signed CA certificate valid now.
pub(super) fn csr_pin(
    node: &Node,
    ca_root_hex: &str,
    subject: &str,
) -> Result<IssuancePin, AdminError> {
    let der = hex::decode(ca_root_hex)
        .map_err(|e| AdminError::BadRequest(format!("ca_root is not hex DER: {e}")))?;
    let root = install::check_ca_root(&der, node.clock.now())
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    IssuancePin::new(&root, subject).map_err(|e| AdminError::Refused(e.to_string()))
}

/// `POST /admin/ca-root`: fix the CA root and subject on a node that did not
/// sign the CSR; only before a certificate is installed (afterwards only the
/// pin already fixed is accepted, as a no-op).
pub(super) fn ca_root(node: &Node, body: &[u8]) -> Result<serde_json::Value, AdminError> {
    let req: CaRootRequest = serde_json::from_slice(body)
        .map_err(|e| AdminError::BadRequest(format!("ca-root request: {e}")))?;
    let pin = csr_pin(node, &req.ca_root, &req.subject)?;
    // Once a certificate is installed nothing can be set; the same pin again is
    // a harmless confirmation (operator retries).
    if node
        .state()
        .epoch
        .key()
        .is_some_and(|k| k.chain.is_some() && k.pin.as_ref() != Some(&pin))
    {
        return Err(AdminError::Conflict(
            "a TSA certificate is already installed for this key epoch: its CA root can no longer be set"
                .into(),
        ));
    }
    fix(node, pin.clone()).map_err(|e| AdminError::Conflict(e.to_string()))?;
    Ok(serde_json::json!({
        "ok": true,
        "ca_root": hex::encode(pin.ca_root),
        "subject": pin.subject,
    }))
}

/// `POST /admin/certificate`: check the chain ([`install::check_chain`]) and
/// install it: the first one of the epoch, or a renewal.
pub(super) fn upload(node: &Node, body: &[u8]) -> Result<serde_json::Value, AdminError> {
    let up: CertificateUpload = serde_json::from_slice(body)
        .map_err(|e| AdminError::BadRequest(format!("certificate upload: {e}")))?;
    let chain: Vec<Vec<u8>> = up
        .chain
        .iter()
        .map(hex::decode)
        .collect::<Result<_, _>>()
        .map_err(|e| AdminError::BadRequest(format!("chain is not hex: {e}")))?;
    let mut s = node.state();
    let t = s.epoch.cluster().map(|c| c.t).unwrap_or(u16::MAX);
    let Some(key) = s.epoch.key_mut() else {
        return Err(AdminError::Conflict(
            "no key share: run the key generation first".into(),
        ));
    };
    let checked = install::check_chain(
        &chain,
        &Expect {
            pin: key.pin.as_ref(),
            group: &key.group_public(),
            measurement: &node.measurement,
            now: node.clock.now(),
            installed: key
                .chain
                .as_ref()
                .and_then(|c| c.first())
                .map(Vec::as_slice),
        },
    );
    let kind = match checked {
        Ok(Installed::Unchanged) => {
            return Ok(serde_json::json!({ "ok": true, "installed": "unchanged" }))
        }
        Ok(kind) => kind,
        Err(e) => {
            drop(s);
            node.refuse(format!("TSA certificate refused: {e}"));
            let msg = format!("certificate refused: {e}");
            return Err(if e.is_conflict() {
                AdminError::Conflict(msg)
            } else {
                AdminError::Refused(msg)
            });
        }
    };
    let refused = |e: String| AdminError::Refused(format!("certificate refused: {e}"));
    let leaf = chain.first().ok_or_else(|| refused("empty chain".into()))?;
    let identity =
        crate::tsp::token::CertIdentity::from_der(leaf).map_err(|e| refused(e.to_string()))?;
    let coordinator = key
        .install(identity, &node.profile, t, node.clock.clone())
        .map_err(|e| refused(e.to_string()))?;
    key.chain = Some(chain);
    s.epoch.install_certificate(coordinator)?;
    drop(s);
    let kind = match kind {
        Installed::Renewal => "renewal",
        _ => "first",
    };
    tracing::info!(node = %node.name, kind, "TSA certificate installed");
    Ok(serde_json::json!({ "ok": true, "installed": kind }))
}

/// Repair: the chain the helpers hold passes the same checks, against the pin
/// they sent, before the replacement installs it.
pub(super) fn check_repaired(
    node: &Node,
    chain: &[Vec<u8>],
    pin: Option<&IssuancePin>,
    group: &crate::threshold::suite::GroupPublicKey,
) -> Result<(), install::InstallError> {
    install::check_chain(
        chain,
        &Expect {
            pin,
            group,
            measurement: &node.measurement,
            now: node.clock.now(),
            installed: None,
        },
    )
    .map(|_| ())
}
