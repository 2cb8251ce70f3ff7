//! RFC 9591 §6.1 FROST(Ed25519, SHA-512) known-answer tests, run through the code
//! path that frostamp's Ed25519 tokens use (the same generic code as secp256k1's,
//! `tests/frost_vectors.rs`).
//!
//! Signature shares come from `frostamp::threshold::signer::sign_share` (the only
//! function that produces a share for a token), built from `KeyShare`s and
//! `SignerNonces` holding the vectors' fixed shares and nonces; they are aggregated by
//! `frostamp::threshold::coordinator::aggregate_checked` (what the coordinator of a
//! token calls), and the result is checked with `verify_frost` (the check every token
//! signature gets) and, as an RFC 8032 signature, by `ring` through
//! `frostamp::x509::sig::verify_signature` with an RFC 8410 SubjectPublicKeyInfo (what
//! `frostamp verify` does with an Ed25519 token). Every success has a failing twin.
//!
//! Vector files and their provenance: `tests/data/assets/frost-ed25519/PROVENANCE.md`.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use frost_vectors::{flipped, hex_of, id};

use frost_core::{SigningKey, VerifyingKey};
use frostamp::threshold::coordinator::{aggregate_checked, Finish};
use frostamp::threshold::keys::verify_frost;
use frostamp::threshold::suite::Ed25519Sha512;
use frostamp::tsp::token::CmsScheme;
use frostamp::x509::sig::{verify_signature, SignatureError, ED25519};

type E = Ed25519Sha512;
/// One signing vector file of this suite.
type Vector = frost_vectors::SigningVector<E>;

const ASSETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/assets/frost-ed25519/zcashfoundation/"
);

#[path = "common/frost_vectors.rs"]
mod frost_vectors;

/// The RFC 8410 SubjectPublicKeyInfo of a 32-byte Ed25519 key.
fn spki(key: &[u8]) -> spki::SubjectPublicKeyInfoOwned {
    spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: ED25519,
            parameters: None,
        },
        subject_public_key: der::asn1::BitString::from_bytes(key).expect("bits"),
    }
}

/// Plain RFC 8032 verification as `frostamp verify` does it for an Ed25519 token.
fn ed25519_verify(key: &[u8], message: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    let alg = spki::AlgorithmIdentifierOwned {
        oid: ED25519,
        parameters: None,
    };
    verify_signature(&alg, None, &spki(key), message, sig)
}

fn check(name: &'static str) {
    let v = Vector::load(ASSETS, name);
    // The group key is the group secret times G.
    v.assert_group_key_of_secret();
    // Round one: the fixed nonces give the vector's commitments.
    v.assert_round_one();
    // Round two through sign_share.
    let shares = v.sign_and_check_shares();
    // Aggregation as the coordinator does it: the vector's signature, 64 bytes.
    let group = v.group();
    let sig = aggregate_checked(&group, v.commitments(), &v.message, &shares)
        .unwrap_or_else(|_| panic!("{name}: aggregate"));
    assert_eq!(sig, v.sig, "{name}: final signature");
    assert_eq!(sig.len(), <E as CmsScheme>::SIGNATURE_LEN);
    // Verification: FROST's, and plain RFC 8032 Ed25519 under the group key.
    assert!(verify_frost(&v.verifying_key(), &v.message, &sig));
    assert_eq!(ed25519_verify(&v.group_key, &v.message, &sig), Ok(()));
    // Failing twins: a flipped message byte, R or S byte, another key.
    for i in 0..v.message.len() {
        let m = flipped(&v.message, i);
        assert!(!verify_frost(&v.verifying_key(), &m, &sig), "{name}");
        assert_eq!(
            ed25519_verify(&v.group_key, &m, &sig),
            Err(SignatureError::Invalid)
        );
    }
    for i in [0, 31, 32, 63] {
        let bad = flipped(&sig, i);
        assert!(
            !verify_frost(&v.verifying_key(), &v.message, &bad),
            "{name}: byte {i}"
        );
        assert!(
            ed25519_verify(&v.group_key, &v.message, &bad).is_err(),
            "{name}: byte {i}"
        );
    }
    let other = VerifyingKey::from(&SigningKey::<E>::deserialize(&v.shares[&1]).expect("key"))
        .serialize()
        .expect("key");
    assert_eq!(
        ed25519_verify(&other, &v.message, &sig),
        Err(SignatureError::Invalid)
    );
    // Failing twin of aggregation: a corrupted share is named as the culprit.
    for n in &v.participants {
        let bad = frost_vectors::with_corrupted_share(&shares, *n, 0);
        match aggregate_checked(&group, v.commitments(), &v.message, &bad) {
            Err(Finish::Cheaters(c)) => assert_eq!(c, vec![id(*n)], "{name}"),
            other => panic!("{name}: corrupted share of {n} gave {:?}", other.is_ok()),
        }
    }
}

#[test]
fn rfc9591_ed25519_vectors_through_the_token_path() {
    check("vectors.json");
}

#[test]
fn rfc9591_ed25519_big_identifier_vectors_through_the_token_path() {
    check("vectors-big-identifier.json");
}

/// The repairable-threshold-scheme vector: frost-core's RTS step 2 (what a helper
/// sends, `node::repair`) sums the sigmas to the vector's sum; a changed sigma does not.
#[test]
fn repair_share_vector_sums() {
    use frost_core::keys::repairable::{repair_share_part2, Delta, Sigma};
    let v = frost_vectors::load(ASSETS, "repair-share.json");
    let g = &v["sigma_generation"];
    let deltas: Vec<Delta<E>> = (1..=4)
        .map(|i| Delta::deserialize(&hex_of(&g[format!("sigma_{i}")])).expect("scalar"))
        .collect();
    let sum: Sigma<E> = repair_share_part2(&deltas);
    assert_eq!(sum.serialize(), hex_of(&g["sigma_sum"]));
    let mut changed = deltas.clone();
    changed[0] = Delta::deserialize(&hex_of(&g["sigma_2"])).expect("scalar");
    assert_ne!(
        repair_share_part2(&changed).serialize(),
        hex_of(&g["sigma_sum"])
    );
}

/// The invalid element of the vectors is refused as a key, a commitment and an R.
#[test]
fn invalid_element_is_rejected() {
    let v = frost_vectors::load(ASSETS, "elements.json");
    let bad = hex_of(&v["elements"]["invalid_element"]);
    assert!(VerifyingKey::<E>::deserialize(&bad).is_err());
    assert!(frost_core::round1::NonceCommitment::<E>::deserialize(&bad).is_err());
    let mut sig = bad.clone();
    sig.extend_from_slice(&[1u8; 32]);
    let g = VerifyingKey::from(&SigningKey::<E>::deserialize(&[1u8; 32]).expect("key"));
    assert!(!verify_frost(&g, b"test", &sig));
    // The twin: the base point itself (a valid element) is accepted.
    let gen = hex_of(&frost_vectors::load(ASSETS, "samples.json")["element1"]);
    assert!(VerifyingKey::<E>::deserialize(&gen).is_ok());
}
