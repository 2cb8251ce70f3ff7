//! Step 6 of the ceremony: each node's public TLS certificate (DESIGN §5,
//! [`crate::certs::tls`]). For every pinned node the operator asks for a PKCS#10
//! request naming the node's public names ([`request_tls_csr`]), checks that its key
//! is the identity the node's attestation bound (the pin of step 1), has the CA issue
//! ([`issue_tls`] with the development CA, or any CA from the request), and uploads
//! the chain ([`install_tls_chain`]); the node serves it on its public port only if it
//! certifies its own key.

use super::{admin_json, admin_json_each, CeremonyError, PinnedNode};
use crate::api::admin::CertificateUpload;
use crate::api::auth::OperatorKey;
use crate::certs::tls::{parse_tls_csr, PublicNames, TlsCsr};
use crate::certs::DevCa;
use crate::clock::Clock;
use std::time::{Duration, SystemTime};

/// Lifetime of a public TLS certificate from the development CA (renew with
/// `frostamp ceremony tls`).
pub const TLS_LIFETIME: Duration = Duration::from_secs(90 * 86400);

/// Ask `node` for a TLS certificate request naming `names`; the request must verify and
/// carry the key pinned for the node (its attested identity).
pub async fn request_tls_csr(
    node: &PinnedNode,
    operator: &OperatorKey,
    clock: &dyn Clock,
    names: &PublicNames,
) -> Result<(Vec<u8>, TlsCsr), CeremonyError> {
    let index = node.target.index;
    let what = ("tls-csr", "/admin/tls-csr");
    let r = admin_json(node, operator, clock, what, names, Duration::from_secs(20)).await?;
    let der = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("csr")?.as_str().and_then(|c| hex::decode(c).ok()))
        .ok_or_else(|| CeremonyError::Invalid(format!("node {index}: malformed TLS CSR answer")))?;
    let csr = parse_tls_csr(&der)
        .map_err(|e| CeremonyError::Invalid(format!("node {index}: TLS CSR: {e}")))?;
    let key = csr
        .spki_sha256()
        .map_err(|e| CeremonyError::Invalid(e.to_string()))?;
    if key != node.pin {
        return Err(CeremonyError::Disagreement(format!(
            "node {index} sent a TLS CSR for key {}, not for its attested identity {}",
            hex::encode(key),
            hex::encode(node.pin)
        )));
    }
    if csr.names != *names {
        return Err(CeremonyError::Disagreement(format!(
            "node {index}'s TLS CSR names {}, not the requested {names}",
            csr.names
        )));
    }
    Ok((der, csr))
}

/// The development CA issues the TLS certificate of a checked request, valid from
/// [`super::ISSUANCE_BACKDATE`] before `now` for [`TLS_LIFETIME`].
pub fn issue_tls(ca: &DevCa, csr: &TlsCsr, now: SystemTime) -> Result<Vec<u8>, CeremonyError> {
    ca.issue_tls_certificate(
        csr,
        now.checked_sub(super::ISSUANCE_BACKDATE).unwrap_or(now),
        TLS_LIFETIME,
        &mut rand_core::OsRng,
    )
    .map_err(|e| CeremonyError::Invalid(format!("issuing the TLS certificate: {e}")))
}

/// Upload a TLS chain (leaf first) to `node`, which serves it if it certifies its key.
pub async fn install_tls_chain(
    node: &PinnedNode,
    operator: &OperatorKey,
    clock: &dyn Clock,
    chain: &[Vec<u8>],
) -> Result<(), CeremonyError> {
    let what = ("tls-certificate", "/admin/tls-certificate");
    let upload = CertificateUpload::of(chain);
    admin_json_each(std::slice::from_ref(node), operator, clock, what, &upload).await
}

/// Request, issue with the development CA and install the TLS certificate of `node`.
pub async fn certify_with_dev_ca(
    ca: &DevCa,
    node: &PinnedNode,
    names: &PublicNames,
    operator: &OperatorKey,
    clock: &dyn Clock,
) -> Result<Vec<u8>, CeremonyError> {
    let (_, csr) = request_tls_csr(node, operator, clock, names).await?;
    let leaf = issue_tls(ca, &csr, clock.now())?;
    install_tls_chain(node, operator, clock, std::slice::from_ref(&leaf)).await?;
    Ok(leaf)
}
