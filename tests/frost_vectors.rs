//! RFC 9591 / FROST(secp256k1, SHA-256) known-answer tests, run through the
//! code path that frostamp tokens use.
//!
//! Signature shares are produced by `frostamp::threshold::signer::sign_share`
//! (the only function that produces a share for a token) from `KeyShare`s and
//! `SignerNonces` built from the vectors' fixed shares and nonces; the aggregate
//! is checked with `frostamp::threshold::keys::verify_frost` (the check every
//! token signature gets). Every success has a failing twin.
//!
//! Vector files and their provenance: `tests/data/assets/PROVENANCE.md` §3.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use frost_vectors::{flipped, hex_of, num};

use frost::keys::dkg;
use frost::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifiableSecretSharingCommitment};
use frost::round2::SignatureShare;
use frost::{
    Field, Group, Identifier, Secp256K1Group, Secp256K1ScalarField, Signature, SigningKey,
    SigningPackage, VerifyingKey,
};
use frostamp::threshold::frost;
use frostamp::threshold::keys::{verify_frost, verifying_key_from_sec1, GroupKey, KeyShare};
use frostamp::threshold::signer::{sign_share, SignerNonces};
use std::collections::BTreeMap;

/// One signing vector file of this suite.
type SigningVector = frost_vectors::SigningVector<frost::Secp256K1Sha256>;

const ASSETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/assets/frost-secp256k1/"
);

#[path = "common/frost_vectors.rs"]
mod frost_vectors;

fn id(n: u16) -> Identifier {
    Identifier::try_from(n).expect("non-zero identifier")
}

fn scalar(bytes: &[u8]) -> <Secp256K1ScalarField as Field>::Scalar {
    let arr: [u8; 32] = bytes.try_into().expect("32-byte scalar");
    Secp256K1ScalarField::deserialize(&arr).expect("canonical scalar")
}

fn check_signing_vector(rel: &'static str) {
    let v = SigningVector::load(ASSETS, rel);
    let name = v.name;
    assert_eq!(v.participants.len(), v.nonces_hex.len(), "{name}");
    assert_eq!(v.shares.len(), usize::from(v.max_signers), "{name}");
    assert!(v.participants.len() >= usize::from(v.min_signers), "{name}");

    // Key material: the group key is the group secret times G, and the
    // participants' shares interpolate to the group secret.
    v.assert_group_key_of_secret();
    let signer_packages: Vec<KeyPackage> =
        v.participants.iter().map(|n| v.key_package(*n)).collect();
    let reconstructed = frost::keys::reconstruct(&signer_packages).expect("reconstruct");
    assert_eq!(
        reconstructed.serialize(),
        v.group_secret,
        "{name}: shares interpolate to the group secret"
    );
    // The group key also parses through the certificate-key path.
    assert_eq!(
        verifying_key_from_sec1(&v.group_key).as_ref(),
        Some(&v.verifying_key())
    );

    // Round one: the fixed nonces give the vector's commitments.
    v.assert_round_one();

    // Round two through sign_share: each share equals the vector's.
    let shares = v.sign_and_check_shares();

    // Aggregation, both as frost's default and as the coordinator does it.
    let pubkeys = v.public_key_package();
    let package = SigningPackage::new(v.commitments(), &v.message);
    let sig = frost::aggregate(&package, &shares, &pubkeys).expect("aggregate");
    assert_eq!(
        sig.serialize().expect("sig"),
        v.sig,
        "{name}: final signature"
    );
    let all_cheaters = |shares: &BTreeMap<Identifier, SignatureShare>| {
        frost::aggregate_custom(
            &package,
            shares,
            &pubkeys,
            frost::CheaterDetection::AllCheaters,
        )
    };
    let sig_all = all_cheaters(&shares).expect("aggregate with cheater detection");
    assert_eq!(sig_all, sig);

    // Verification as token verification does it.
    let vk = v.verifying_key();
    assert!(verify_frost(&vk, &v.message, &v.sig), "{name}: verifies");
    assert!(GroupKey::new(pubkeys.clone()).verify(&v.message, &v.sig));

    // Failing twins of the verification: every message byte, and the signature's
    // R and z each.
    for i in 0..v.message.len() {
        assert!(
            !verify_frost(&vk, &flipped(&v.message, i), &v.sig),
            "{name}: flipped message byte {i} still verifies"
        );
    }
    let mut longer = v.message.clone();
    longer.push(0);
    assert!(!verify_frost(&vk, &longer, &v.sig));
    for i in [1, 32, 33, 64] {
        assert!(
            !verify_frost(&vk, &v.message, &flipped(&v.sig, i)),
            "{name}: flipped signature byte {i} still verifies"
        );
    }
    assert!(!verify_frost(&vk, &v.message, &v.sig[..64]));
    let other_key = VerifyingKey::from(&SigningKey::deserialize(&v.shares[&1]).expect("key"));
    assert!(!verify_frost(&other_key, &v.message, &v.sig));

    // Failing twin of aggregation: one corrupted share is named as the culprit,
    // by both cheater-detection modes.
    for n in &v.participants {
        let bad = frost_vectors::with_corrupted_share(&shares, *n, 31);
        for mode in [
            frost::CheaterDetection::FirstCheater,
            frost::CheaterDetection::AllCheaters,
        ] {
            let err = frost::aggregate_custom(&package, &bad, &pubkeys, mode)
                .expect_err("corrupted share must not aggregate");
            assert_eq!(err.culprits(), vec![id(*n)], "{name}: culprit {n}");
        }
    }

    // A share over another message is also caught.
    let other_message = flipped(&v.message, 0);
    let wrong = v.sign_all(&other_message);
    let first = id(v.participants[0]);
    let mut mixed = shares.clone();
    mixed.insert(first, wrong[&first]);
    let err = all_cheaters(&mixed).expect_err("share over another message");
    assert_eq!(err.culprits(), vec![first]);
}

#[test]
fn cfrg_draft_vectors_through_sign_share() {
    check_signing_vector("cfrg-draft/frost-secp256k1-sha256.json");
}

#[test]
fn zcash_foundation_vectors_through_sign_share() {
    check_signing_vector("zcashfoundation/vectors.json");
}

#[test]
fn zcash_foundation_big_identifier_vectors_through_sign_share() {
    check_signing_vector("zcashfoundation/vectors-big-identifier.json");
}

#[test]
fn cfrg_and_zf_vectors_share_keys_but_not_nonces() {
    // PROVENANCE.md §3: same keys and message, different nonce randomness.
    let a = SigningVector::load(ASSETS, "cfrg-draft/frost-secp256k1-sha256.json");
    let b = SigningVector::load(ASSETS, "zcashfoundation/vectors.json");
    assert_eq!(a.group_key, b.group_key);
    assert_eq!(a.shares, b.shares);
    assert_eq!(a.message, b.message);
    assert_ne!(a.sig, b.sig);
    // Both signatures verify: a signature is not unique to (key, message).
    assert!(verify_frost(&a.verifying_key(), &a.message, &b.sig));
    assert!(verify_frost(&b.verifying_key(), &b.message, &a.sig));
}

/// Nonces fixed in round one must be used with the commitments they belong to:
/// `sign_share` refuses a package whose entry for the signer is another
/// signer's commitment.
#[test]
fn sign_share_rejects_mismatched_commitments() {
    let v = SigningVector::load(ASSETS, "zcashfoundation/vectors.json");
    let mut commitments = v.commitments();
    let p0 = id(v.participants[0]);
    let p1 = id(v.participants[1]);
    let c1 = commitments[&p1];
    commitments.insert(p0, c1);
    let key = KeyShare::new(v.key_package(v.participants[0]));
    assert!(sign_share(&key, v.nonces(v.participants[0]), commitments, &v.message).is_err());
}

// ---------------------------------------------------------------------------
// DKG vectors (vectors_dkg.json): replay frost's DKG parts 2 and 3 from the
// vectors' polynomials, commitments and proofs of knowledge.

struct DkgParticipant {
    n: u16,
    coefficients: Vec<Vec<u8>>,
    vss_commitments: Vec<Vec<u8>>,
    proof_of_knowledge: Vec<u8>,
    /// `received[j]` = f_j(n), the share this participant received from j.
    received: BTreeMap<u16, Vec<u8>>,
    signing_share: Vec<u8>,
    verifying_share: Vec<u8>,
}

fn dkg_vector() -> (u16, u16, Vec<u8>, Vec<DkgParticipant>) {
    let v = frost_vectors::load(ASSETS, "zcashfoundation/vectors_dkg.json");
    let min = num(&v["config"]["MIN_PARTICIPANTS"]);
    let max = num(&v["config"]["MAX_PARTICIPANTS"]);
    let inputs = &v["inputs"];
    let group_key = hex_of(&inputs["verifying_key"]);
    let participants = (1..=max)
        .map(|n| {
            let p = &inputs[n.to_string()];
            assert_eq!(num(&p["identifier"]), n);
            DkgParticipant {
                n,
                coefficients: vec![hex_of(&p["signing_key"]), hex_of(&p["coefficient"])],
                vss_commitments: p["vss_commitments"]
                    .as_array()
                    .expect("vss_commitments")
                    .iter()
                    .map(hex_of)
                    .collect(),
                proof_of_knowledge: hex_of(&p["proof_of_knowledge"]),
                received: p["signing_shares"]
                    .as_object()
                    .expect("signing_shares")
                    .iter()
                    .map(|(k, s)| (k.parse().expect("id"), hex_of(s)))
                    .collect(),
                signing_share: hex_of(&p["signing_share"]),
                verifying_share: hex_of(&p["verifying_share"]),
            }
        })
        .collect();
    (min, max, group_key, participants)
}

fn commitment_of(p: &DkgParticipant) -> VerifiableSecretSharingCommitment {
    VerifiableSecretSharingCommitment::deserialize(&p.vss_commitments).expect("vss commitment")
}

fn round1_package(p: &DkgParticipant, pok: &[u8]) -> dkg::round1::Package {
    dkg::round1::Package::new(
        commitment_of(p),
        Signature::deserialize(pok).expect("proof of knowledge"),
    )
}

fn round1_from_others(
    me: u16,
    all: &[DkgParticipant],
) -> BTreeMap<Identifier, dkg::round1::Package> {
    all.iter()
        .filter(|q| q.n != me)
        .map(|q| (id(q.n), round1_package(q, &q.proof_of_knowledge)))
        .collect()
}

fn round1_secret(p: &DkgParticipant, min: u16, max: u16) -> dkg::round1::SecretPackage {
    dkg::round1::SecretPackage::new(
        id(p.n),
        p.coefficients.iter().map(|c| scalar(c)).collect(),
        commitment_of(p),
        min,
        max,
    )
}

#[test]
fn dkg_vectors_replay() {
    let (min, max, group_key_hex, parts) = dkg_vector();
    let group_key = VerifyingKey::deserialize(&group_key_hex).expect("group key");

    // Each commitment is the polynomial's coefficients times G.
    for p in &parts {
        assert_eq!(p.vss_commitments.len(), usize::from(min));
        for (c, committed) in p.coefficients.iter().zip(&p.vss_commitments) {
            let point = Secp256K1Group::generator() * scalar(c);
            let enc = Secp256K1Group::serialize(&point).expect("non-identity");
            assert_eq!(
                enc.as_slice(),
                committed.as_slice(),
                "commitment of {}",
                p.n
            );
        }
    }

    // The group key from the published commitments alone.
    let commitments: Vec<VerifiableSecretSharingCommitment> =
        parts.iter().map(commitment_of).collect();
    let by_id: BTreeMap<Identifier, &VerifiableSecretSharingCommitment> = parts
        .iter()
        .zip(&commitments)
        .map(|(p, c)| (id(p.n), c))
        .collect();
    let from_commitments =
        PublicKeyPackage::from_dkg_commitments(&by_id).expect("from commitments");
    assert_eq!(from_commitments.verifying_key(), &group_key);
    for p in &parts {
        assert_eq!(
            from_commitments.verifying_shares()[&id(p.n)]
                .serialize()
                .expect("share"),
            p.verifying_share,
            "verifying share of {} from commitments",
            p.n
        );
    }

    // Part 2 (checks everyone else's proof of knowledge) and part 3 (checks
    // every received share against its sender's commitment).
    let mut key_packages = BTreeMap::new();
    for p in &parts {
        let (r2_secret, outgoing) =
            dkg::part2(round1_secret(p, min, max), &round1_from_others(p.n, &parts))
                .unwrap_or_else(|e| panic!("part2 for {}: {e}", p.n));
        // What p sends to q is what q's vector says it received from p.
        for q in parts.iter().filter(|q| q.n != p.n) {
            assert_eq!(
                outgoing[&id(q.n)].signing_share().serialize(),
                q.received[&p.n],
                "share from {} to {}",
                p.n,
                q.n
            );
        }
        let incoming: BTreeMap<Identifier, dkg::round2::Package> = p
            .received
            .iter()
            .map(|(from, s)| {
                (
                    id(*from),
                    dkg::round2::Package::new(SigningShare::deserialize(s).expect("share")),
                )
            })
            .collect();
        let (kp, pkp) = dkg::part3(&r2_secret, &round1_from_others(p.n, &parts), &incoming)
            .unwrap_or_else(|e| panic!("part3 for {}: {e}", p.n));
        assert_eq!(kp.signing_share().serialize(), p.signing_share);
        assert_eq!(
            kp.verifying_share().serialize().expect("vs"),
            p.verifying_share
        );
        assert_eq!(kp.verifying_key(), &group_key);
        assert_eq!(pkp, from_commitments);
        key_packages.insert(p.n, kp);
    }

    // The DKG's shares sign through the token path: a t-of-n signature with
    // random nonces verifies under the vector's group key.
    let mut rng = rand::thread_rng();
    let message = b"frostamp dkg vector";
    let signers: Vec<u16> = vec![1, 3];
    let mut nonces = BTreeMap::new();
    let mut commits = BTreeMap::new();
    for n in &signers {
        let (sn, c) = frost::round1::commit(key_packages[n].signing_share(), &mut rng);
        nonces.insert(*n, SignerNonces::new(sn));
        commits.insert(id(*n), c);
    }
    let mut shares = BTreeMap::new();
    for n in &signers {
        let key = KeyShare::new(key_packages[n].clone());
        let nonce = nonces.remove(n).expect("nonce");
        let s = sign_share(&key, nonce, commits.clone(), message).expect("share");
        shares.insert(id(*n), s);
    }
    let package = SigningPackage::new(commits, message);
    let sig = frost::aggregate(&package, &shares, &from_commitments).expect("aggregate");
    let bytes = sig.serialize().expect("sig");
    assert!(verify_frost(&group_key, message, &bytes));
    assert!(!verify_frost(&group_key, b"frostamp dkg vectoR", &bytes));
}

#[test]
fn dkg_vectors_failing_twins() {
    let (min, max, _, parts) = dkg_vector();
    // A corrupted proof of knowledge from participant 2 is caught by 1 in part 2.
    let mut others = round1_from_others(1, &parts);
    let bad_pok = flipped(&parts[1].proof_of_knowledge, 64);
    others.insert(id(2), round1_package(&parts[1], &bad_pok));
    let err = dkg::part2(round1_secret(&parts[0], min, max), &others)
        .expect_err("bad proof of knowledge");
    assert_eq!(err.culprits(), vec![id(2)]);

    // A corrupted share from participant 3 is caught by 1 in part 3.
    let (r2_secret, _) = dkg::part2(
        round1_secret(&parts[0], min, max),
        &round1_from_others(1, &parts),
    )
    .expect("part2");
    let incoming: BTreeMap<Identifier, dkg::round2::Package> = parts[0]
        .received
        .iter()
        .map(|(from, s)| {
            let bytes = if *from == 3 {
                flipped(s, 31)
            } else {
                s.clone()
            };
            (
                id(*from),
                dkg::round2::Package::new(SigningShare::deserialize(&bytes).expect("share")),
            )
        })
        .collect();
    let err =
        dkg::part3(&r2_secret, &round1_from_others(1, &parts), &incoming).expect_err("bad share");
    assert_eq!(err.culprits(), vec![id(3)]);
}

// ---------------------------------------------------------------------------
// Element and serialization samples.

#[test]
fn invalid_element_is_rejected() {
    let v = frost_vectors::load(ASSETS, "zcashfoundation/elements.json");
    let bad = hex_of(&v["elements"]["invalid_element"]);
    assert_eq!(bad.len(), 33);
    assert!(VerifyingKey::deserialize(&bad).is_err());
    assert!(frost::round1::NonceCommitment::deserialize(&bad).is_err());
    assert!(verifying_key_from_sec1(&bad).is_none());
    // As the R of a signature it is rejected too, so verify_frost says no.
    let mut sig = bad.clone();
    sig.extend_from_slice(&[1u8; 32]);
    assert!(Signature::deserialize(&sig).is_err());
    let g = VerifyingKey::from(&SigningKey::deserialize(&[1u8; 32]).expect("key"));
    assert!(!verify_frost(&g, b"test", &sig));
}

#[test]
fn serialization_samples() {
    let v = frost_vectors::load(ASSETS, "zcashfoundation/samples.json");
    assert_eq!(id(42).serialize(), hex_of(&v["identifier"]));
    let g = hex_of(&v["element1"]);
    let g2 = hex_of(&v["element2"]);
    let one = {
        let mut b = [0u8; 32];
        b[31] = 1;
        b
    };
    let two = {
        let mut b = [0u8; 32];
        b[31] = 2;
        b
    };
    let key = |s: &[u8; 32]| {
        VerifyingKey::from(&SigningKey::deserialize(s).expect("key"))
            .serialize()
            .expect("point")
    };
    assert_eq!(key(&one), g, "element1 is G");
    assert_eq!(key(&two), g2, "element2 is 2G");
    let s = hex_of(&v["scalar1"]);
    assert_eq!(
        SigningShare::deserialize(&s).expect("scalar").serialize(),
        s
    );
    let pok = hex_of(&v["proof_of_knowledge"]);
    assert_eq!(
        Signature::deserialize(&pok)
            .expect("pok")
            .serialize()
            .expect("pok"),
        pok
    );
    // The group order itself is not a canonical scalar.
    let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
        .expect("hex");
    assert!(SigningShare::deserialize(&n).is_err());
}
