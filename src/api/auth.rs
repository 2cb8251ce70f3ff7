//! The operator credential (see `docs/operations.md`, "Operator credential").
//!
//! The operator holds an ECDSA P-256 key. A node learns only the public key, at
//! start (not measured: the operator is trusted for availability only). Every
//! lifecycle call carries a signature over
//!
//! ```text
//! "frostamp/v1/operator" \n METHOD \n PATH \n hex(SHA-256(body)) \n hex(node SPKI SHA-256) \n t \n nonce
//! ```
//!
//! in the header `Frostamp-Operator: v1 t=<unix ms> n=<hex nonce> s=<hex DER signature>`.
//! The node checks the signature, that the request names *its own* TLS key (no
//! replay to another node), that `t` is within ±60 s of its clock and that the
//! nonce was not seen in that window (no replay to the same node). Nothing
//! secret is ever sent, so a network attacker gains nothing by watching, and an
//! unauthenticated client can only read public status and request timestamps.

use p256::ecdsa::{
    signature::Signer as _, signature::Verifier as _, DerSignature, SigningKey, VerifyingKey,
};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header that carries the operator signature.
pub const HEADER: &str = "frostamp-operator";
/// Accepted distance between the request time and the node clock.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Why a lifecycle call is refused (HTTP 401/403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No operator header.
    #[error("missing operator signature (lifecycle calls need the operator credential)")]
    Missing,
    /// Header not in the expected form.
    #[error("malformed operator header: {0}")]
    Malformed(&'static str),
    /// Timestamp outside the window.
    #[error("operator request time is {0} ms from the node clock (window ±60 s)")]
    Stale(u128),
    /// Nonce already used.
    #[error("replayed operator request")]
    Replay,
    /// Signature invalid for this node, method, path and body.
    #[error("operator signature does not verify")]
    BadSignature,
    /// The node was started without an operator key.
    #[error("this node has no operator key configured")]
    NotConfigured,
}

/// Why an operator key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The private key file is not a PKCS#8 P-256 key in PEM.
    #[error("operator key: {0}")]
    Pem(#[source] p256::pkcs8::Error),
    /// The key could not be encoded (PKCS#8 PEM or SPKI DER).
    #[error("operator key encoding: {0}")]
    Encode(String),
    /// The public key given to a node is not hex.
    #[error("operator public key is not hex: {0}")]
    NotHex(#[source] hex::FromHexError),
    /// The public key given to a node is not a P-256 SubjectPublicKeyInfo.
    #[error("operator public key: {0}")]
    Spki(#[source] p256::pkcs8::spki::Error),
}

fn message(
    method: &str,
    path: &str,
    body: &[u8],
    node_spki_sha256: &[u8; 32],
    t: u64,
    nonce: &str,
) -> Vec<u8> {
    format!(
        "frostamp/v1/operator\n{method}\n{path}\n{}\n{}\n{t}\n{nonce}",
        hex::encode(Sha256::digest(body)),
        hex::encode(node_spki_sha256)
    )
    .into_bytes()
}

/// The operator's signing key (CLI side).
pub struct OperatorKey {
    key: SigningKey,
}

impl core::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OperatorKey(<redacted>)")
    }
}

impl OperatorKey {
    /// A new random key.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        Self {
            key: SigningKey::random(rng),
        }
    }
    /// From PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self { key })
            .map_err(KeyError::Pem)
    }
    /// PKCS#8 PEM (secret: the CLI writes it with mode 0600).
    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, KeyError> {
        self.key
            .to_pkcs8_pem(der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }
    /// The public key as hex of its SPKI DER: what a node is started with.
    pub fn public_hex(&self) -> Result<String, KeyError> {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(hex::encode(der.as_bytes()))
    }
    /// The header value authorizing `method path body` on the node whose TLS
    /// SPKI hashes to `node_spki_sha256`.
    pub fn authorize(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        node_spki_sha256: &[u8; 32],
        now: SystemTime,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> String {
        let t = u64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(0);
        let mut n = [0u8; 16];
        rng.fill_bytes(&mut n);
        let nonce = hex::encode(n);
        let sig: DerSignature =
            self.key
                .sign(&message(method, path, body, node_spki_sha256, t, &nonce));
        format!("v1 t={t} n={nonce} s={}", hex::encode(sig.as_bytes()))
    }
}

/// The node's view: the operator public key and a replay cache.
#[derive(Debug)]
pub struct OperatorVerifier {
    key: Option<VerifyingKey>,
    seen: Mutex<HashMap<String, u64>>,
}

impl OperatorVerifier {
    /// From the hex SPKI DER given at start; `None` = no lifecycle calls possible.
    pub fn new(public_hex: Option<&str>) -> Result<Self, KeyError> {
        let key = public_hex
            .map(|h| {
                let der = hex::decode(h.trim()).map_err(KeyError::NotHex)?;
                VerifyingKey::from_public_key_der(&der).map_err(KeyError::Spki)
            })
            .transpose()?;
        Ok(Self {
            key,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Check one request.
    pub fn check(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        own_spki_sha256: &[u8; 32],
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let key = self.key.as_ref().ok_or(AuthError::NotConfigured)?;
        let header = header.ok_or(AuthError::Missing)?;
        let mut parts = header.split(' ');
        if parts.next() != Some("v1") {
            return Err(AuthError::Malformed("version"));
        }
        let mut t = None;
        let mut n = None;
        let mut s = None;
        for p in parts {
            match p.split_once('=') {
                Some(("t", v)) => t = v.parse::<u64>().ok(),
                Some(("n", v)) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    n = Some(v.to_owned())
                }
                Some(("s", v)) => s = hex::decode(v).ok(),
                _ => return Err(AuthError::Malformed("field")),
            }
        }
        let (t, n, s) = match (t, n, s) {
            (Some(t), Some(n), Some(s)) => (t, n, s),
            _ => return Err(AuthError::Malformed("missing t, n or s")),
        };
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let skew = now_ms.abs_diff(u128::from(t));
        if skew > WINDOW.as_millis() {
            return Err(AuthError::Stale(skew));
        }
        let sig =
            DerSignature::from_bytes(&s).map_err(|_| AuthError::Malformed("signature encoding"))?;
        key.verify(&message(method, path, body, own_spki_sha256, t, &n), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        let mut seen = self.seen.lock().map_err(|_| AuthError::Replay)?;
        let horizon = u64::try_from(now_ms.saturating_sub(2 * WINDOW.as_millis())).unwrap_or(0);
        seen.retain(|_, at| *at >= horizon);
        if seen.insert(n, t).is_some() {
            return Err(AuthError::Replay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_once_and_only_for_their_target() {
        let mut rng = rand::thread_rng();
        let op = OperatorKey::generate(&mut rng);
        let v = OperatorVerifier::new(Some(&op.public_hex().unwrap())).unwrap();
        let node = [7u8; 32];
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = op.authorize("POST", "/admin/configure", b"{}", &node, now, &mut rng);
        v.check(Some(&h), "POST", "/admin/configure", b"{}", &node, now)
            .unwrap();
        assert_eq!(
            v.check(Some(&h), "POST", "/admin/configure", b"{}", &node, now),
            Err(AuthError::Replay)
        );
        let h = op.authorize("POST", "/admin/configure", b"{}", &node, now, &mut rng);
        assert_eq!(
            v.check(Some(&h), "POST", "/admin/configure", b"{ }", &node, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.check(Some(&h), "POST", "/admin/other", b"{}", &node, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.check(Some(&h), "POST", "/admin/configure", b"{}", &[8; 32], now),
            Err(AuthError::BadSignature)
        );
        let later = now + Duration::from_secs(120);
        assert!(matches!(
            v.check(Some(&h), "POST", "/admin/configure", b"{}", &node, later),
            Err(AuthError::Stale(_))
        ));
        assert_eq!(
            v.check(None, "POST", "/x", b"", &node, now),
            Err(AuthError::Missing)
        );
        let other = OperatorKey::generate(&mut rng);
        let h = other.authorize("POST", "/admin/configure", b"{}", &node, now, &mut rng);
        assert_eq!(
            v.check(Some(&h), "POST", "/admin/configure", b"{}", &node, now),
            Err(AuthError::BadSignature)
        );
        let none = OperatorVerifier::new(None).unwrap();
        assert_eq!(
            none.check(Some(&h), "POST", "/x", b"", &node, now),
            Err(AuthError::NotConfigured)
        );
    }
}
