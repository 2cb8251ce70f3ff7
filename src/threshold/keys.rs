//! Key material. Secrets are `ZeroizeOnDrop` (through frost's `KeyPackage`) and
//! print as `<redacted>`; nothing here implements `Serialize` for secret parts.
//!
//! Every type is generic over the epoch's [`Suite`], FROST(secp256k1, SHA-256) by
//! default.

pub use crate::threshold::suite::{is_secp256k1_spki, verify_frost, verifying_key_from_sec1};
use crate::threshold::suite::{Secp256K1Sha256, Suite};
use core::fmt;
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{Identifier, VerifyingKey};
use std::collections::BTreeMap;

/// Errors from key generation and key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A FROST operation failed.
    #[error("FROST: {0}")]
    Frost(String),
    /// Parameters out of range.
    #[error("invalid parameters: {0}")]
    Parameters(String),
}

impl<C: frost_core::Ciphersuite> From<frost_core::Error<C>> for KeyError {
    fn from(e: frost_core::Error<C>) -> Self {
        Self::Frost(e.to_string())
    }
}

/// One participant's signing share and the public data needed to sign with it.
/// Lives only in memory; zeroized on drop; never serialized.
pub struct KeyShare<S: Suite = Secp256K1Sha256> {
    inner: KeyPackage<S>,
}

impl<S: Suite> KeyShare<S> {
    /// Wrap a frost key package (from DKG part 3, repair, or a test dealer).
    pub fn new(inner: KeyPackage<S>) -> Self {
        Self { inner }
    }
    /// This share's identifier.
    pub fn identifier(&self) -> Identifier<S> {
        *self.inner.identifier()
    }
    /// The FROST key package (crate-internal: signing only).
    pub(crate) fn package(&self) -> &KeyPackage<S> {
        &self.inner
    }
    /// The threshold t.
    pub fn min_signers(&self) -> u16 {
        *self.inner.min_signers()
    }
}

impl<S: Suite> fmt::Debug for KeyShare<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("suite", &S::SUITE)
            .field("identifier", &hex::encode(self.identifier().serialize()))
            .field("signing_share", &"<redacted>")
            .finish()
    }
}

/// The group's public key package: group verifying key and every participant's
/// verifying share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupKey<S: Suite = Secp256K1Sha256> {
    inner: PublicKeyPackage<S>,
}

impl<S: Suite> GroupKey<S> {
    /// Wrap a frost public key package.
    pub fn new(inner: PublicKeyPackage<S>) -> Self {
        Self { inner }
    }
    /// The frost public key package.
    pub fn package(&self) -> &PublicKeyPackage<S> {
        &self.inner
    }
    /// The group verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<S> {
        self.inner.verifying_key()
    }
    /// The group key in its RFC 9591 serialization (`SerializeElement`: secp256k1 SEC1
    /// compressed, 33 bytes; Ed25519 the 32-byte RFC 8032 public key): how peer
    /// messages, `/status` and the evidence bundle name it.
    pub fn key_bytes(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.inner.verifying_key().serialize()?)
    }
    /// The SubjectPublicKeyInfo of the group key, as the TSA certificate carries it.
    pub fn spki(&self) -> Result<spki::SubjectPublicKeyInfoOwned, KeyError> {
        S::spki(self.verifying_key())
            .ok_or_else(|| KeyError::Parameters("group key has no SubjectPublicKeyInfo".into()))
    }
    /// The group verifying key, tagged with its suite.
    pub fn public(&self) -> crate::threshold::suite::GroupPublicKey {
        S::public(self.verifying_key())
    }
    /// Verify a serialized FROST signature over `message` under the group key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_frost(self.verifying_key(), message, signature)
    }
}

impl GroupKey<Secp256K1Sha256> {
    /// The group key as a SEC1 compressed point (33 bytes).
    pub fn to_sec1_compressed(&self) -> Result<Vec<u8>, KeyError> {
        self.key_bytes()
    }
    /// The group key as an uncompressed SEC1 point (65 bytes), the form used in
    /// the TSA certificate's SubjectPublicKeyInfo.
    pub fn to_sec1_uncompressed(&self) -> Result<Vec<u8>, KeyError> {
        let compressed = self.to_sec1_compressed()?;
        let pk = k256::PublicKey::from_sec1_bytes(&compressed).map_err(|e| {
            KeyError::Parameters(format!("group key is not a secp256k1 point: {e}"))
        })?;
        Ok(
            k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&pk, false)
                .as_bytes()
                .to_vec(),
        )
    }
}

/// Run the FROST DKG (RFC 9591 has none; frost's `keys::dkg`, a Pedersen DKG
/// with proofs of knowledge) among `n` participants *inside one process*.
///
/// For tests, benchmarks and the local demo only: every share passes through
/// this process's memory, which the distributed ceremony avoids.
pub fn dkg_in_process(
    n: u16,
    t: u16,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<(Vec<KeyShare>, GroupKey), KeyError> {
    dkg_in_process_for::<Secp256K1Sha256>(n, t, rng)
}

/// [`dkg_in_process`] for the ciphersuite `S`.
pub fn dkg_in_process_for<S: Suite>(
    n: u16,
    t: u16,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<(Vec<KeyShare<S>>, GroupKey<S>), KeyError> {
    use frost_core::keys::dkg;
    if t < 2 || t > n {
        return Err(KeyError::Parameters(format!(
            "need 2 <= t <= n, got t={t} n={n}"
        )));
    }
    let ids: Vec<Identifier<S>> = (1..=n)
        .map(Identifier::try_from)
        .collect::<Result<_, _>>()?;
    let mut r1_secret = BTreeMap::new();
    let mut r1_public = BTreeMap::new();
    for id in &ids {
        let (s, p) = dkg::part1(*id, n, t, &mut *rng)?;
        r1_secret.insert(*id, s);
        r1_public.insert(*id, p);
    }
    // Every round-1 package but `id`'s own.
    let others_of = |id: &Identifier<S>| -> BTreeMap<_, _> {
        r1_public
            .iter()
            .filter(|(k, _)| *k != id)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    };
    let mut r2_secret = BTreeMap::new();
    let mut r2_out: BTreeMap<Identifier<S>, BTreeMap<Identifier<S>, dkg::round2::Package<S>>> =
        BTreeMap::new();
    for id in &ids {
        let others = others_of(id);
        let secret = r1_secret
            .remove(id)
            .ok_or_else(|| KeyError::Parameters("missing round-1 secret".into()))?;
        let (s2, packages) = dkg::part2(secret, &others)?;
        r2_secret.insert(*id, s2);
        for (to, pkg) in packages {
            r2_out.entry(to).or_default().insert(*id, pkg);
        }
    }
    let mut shares = Vec::new();
    let mut group = None;
    for id in &ids {
        let others = others_of(id);
        let received = r2_out.remove(id).unwrap_or_default();
        let secret = r2_secret
            .get(id)
            .ok_or_else(|| KeyError::Parameters("missing round-2 secret".into()))?;
        let (kp, pkp) = dkg::part3(secret, &others, &received)?;
        if let Some(g) = &group {
            if *g != pkp {
                return Err(KeyError::Parameters(
                    "participants disagree on the group key".into(),
                ));
            }
        }
        group = Some(pkp);
        shares.push(KeyShare::new(kp));
    }
    let group = group.ok_or_else(|| KeyError::Parameters("no participants".into()))?;
    Ok((shares, GroupKey::new(group)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::suite::Ed25519Sha512;

    #[test]
    fn debug_of_share_holds_no_key_bytes() {
        let (shares, _) = dkg_in_process(3, 2, &mut rand::thread_rng()).unwrap();
        for s in &shares {
            let secret_hex = hex::encode(s.package().signing_share().serialize());
            let dbg = format!("{s:?}");
            assert!(dbg.contains("<redacted>"));
            assert!(!dbg.contains(&secret_hex), "Debug leaks the share");
        }
    }

    /// FROST rounds 1 and 2 among `signers` over `msg`, aggregated with the group's
    /// public key package: the serialized group signature.
    fn threshold_sign<S: Suite>(
        signers: &[KeyShare<S>],
        group: &GroupKey<S>,
        msg: &[u8],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Vec<u8> {
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for s in signers {
            let (n, c) = frost_core::round1::commit(s.package().signing_share(), rng);
            nonces.insert(s.identifier(), n);
            commitments.insert(s.identifier(), c);
        }
        let pkg = frost_core::SigningPackage::new(commitments, msg);
        let mut sig_shares = BTreeMap::new();
        for s in signers {
            sig_shares.insert(
                s.identifier(),
                frost_core::round2::sign(&pkg, &nonces[&s.identifier()], s.package()).unwrap(),
            );
        }
        let sig = frost_core::aggregate(&pkg, &sig_shares, group.package()).unwrap();
        sig.serialize().unwrap()
    }

    #[test]
    fn dkg_group_key_verifies_threshold_signature() {
        let mut rng = rand::thread_rng();
        let (shares, group) = dkg_in_process(5, 3, &mut rng).unwrap();
        let bytes = threshold_sign(&shares[..3], &group, b"msg", &mut rng);
        assert_eq!(bytes.len(), 65);
        assert!(group.verify(b"msg", &bytes));
        assert!(!group.verify(b"msh", &bytes));
        assert_eq!(group.to_sec1_uncompressed().unwrap().len(), 65);
        let vk = verifying_key_from_sec1(&group.to_sec1_uncompressed().unwrap()).unwrap();
        assert_eq!(&vk, group.verifying_key());
        assert!(dkg_in_process(5, 6, &mut rng).is_err());
    }

    /// The same generic code for FROST(Ed25519, SHA-512): the aggregate is a 64-byte
    /// RFC 8032 signature that `ring` (an independent Ed25519) verifies.
    #[test]
    fn ed25519_dkg_group_key_signs_plain_ed25519() {
        let mut rng = rand::thread_rng();
        let (shares, group) = dkg_in_process_for::<Ed25519Sha512>(5, 3, &mut rng).unwrap();
        let bytes = threshold_sign(&shares[1..4], &group, b"msg", &mut rng);
        assert_eq!(bytes.len(), 64);
        assert!(group.verify(b"msg", &bytes));
        let pk = group.key_bytes().unwrap();
        let ring_key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &pk);
        assert!(ring_key.verify(b"msg", &bytes).is_ok());
        assert!(ring_key.verify(b"msh", &bytes).is_err());
        let spki = group.spki().unwrap();
        assert_eq!(spki.algorithm.oid, crate::oid::std_oids::ED25519);
        assert_eq!(
            Ed25519Sha512::verifying_key_from_spki(&spki).as_ref(),
            Some(group.verifying_key())
        );
        assert!(Secp256K1Sha256::verifying_key_from_spki(&spki).is_none());
    }
}
