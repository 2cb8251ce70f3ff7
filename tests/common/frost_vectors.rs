//! RFC 9591 signing-vector plumbing for any frostamp ciphersuite, shared by the
//! known-answer tests `tests/frost_vectors.rs` (secp256k1) and
//! `tests/frost_vectors_ed25519.rs` (included there with `#[path]`): reading the vector
//! files (CFRG PoC and ZF formats), and the key packages, nonces, commitments and
//! `sign_share` signature shares built from a vector's fixed values.
#![allow(dead_code)] // each test crate uses a part of these

use frost_core::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_core::round1::{Nonce, SigningCommitments, SigningNonces};
use frost_core::round2::SignatureShare;
use frost_core::{Identifier, SigningKey, VerifyingKey};
use frostamp::threshold::keys::{GroupKey, KeyShare};
use frostamp::threshold::signer::{sign_share, SignerNonces};
use frostamp::threshold::suite::Suite;
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSON file `rel` below the folder `assets` (which ends with `/`).
pub(crate) fn load(assets: &str, rel: &str) -> Value {
    let path = format!("{assets}{rel}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// The bytes of a hex string value.
pub(crate) fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).expect("hex")
}

/// A JSON number or a numeric string ("3") as u16.
pub(crate) fn num(v: &Value) -> u16 {
    match v {
        Value::Number(n) => u16::try_from(n.as_u64().expect("integer")).expect("u16"),
        Value::String(s) => s.parse().expect("numeric string"),
        other => panic!("not a number: {other}"),
    }
}

/// The FROST identifier `n` of the suite `S`.
pub(crate) fn id<S: Suite>(n: u16) -> Identifier<S> {
    Identifier::try_from(n).expect("non-zero identifier")
}

/// A copy of `bytes` with bit 0 of byte `i` flipped.
pub(crate) fn flipped(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[i] ^= 0x01;
    v
}

/// `shares` with participant `n`'s share corrupted (bit 0 of byte `byte` flipped).
pub(crate) fn with_corrupted_share<S: Suite>(
    shares: &BTreeMap<Identifier<S>, SignatureShare<S>>,
    n: u16,
    byte: usize,
) -> BTreeMap<Identifier<S>, SignatureShare<S>> {
    let mut bad = shares.clone();
    let bytes = flipped(&shares[&id(n)].serialize(), byte);
    bad.insert(
        id(n),
        SignatureShare::deserialize(&bytes).expect("still a scalar"),
    );
    bad
}

/// Each round-one output's pair of hex fields `first`, `second`, by identifier.
fn round_one_pairs(
    outputs: &[Value],
    first: &str,
    second: &str,
) -> BTreeMap<u16, (Vec<u8>, Vec<u8>)> {
    outputs
        .iter()
        .map(|o| {
            (
                num(&o["identifier"]),
                (hex_of(&o[first]), hex_of(&o[second])),
            )
        })
        .collect()
}

/// One signing vector file (CFRG PoC format or ZF format) of the suite `S`.
pub(crate) struct SigningVector<S: Suite> {
    pub(crate) name: &'static str,
    pub(crate) min_signers: u16,
    pub(crate) max_signers: u16,
    pub(crate) group_secret: Vec<u8>,
    pub(crate) group_key: Vec<u8>,
    pub(crate) message: Vec<u8>,
    pub(crate) shares: BTreeMap<u16, Vec<u8>>,
    pub(crate) participants: Vec<u16>,
    /// Round one: (hiding, binding) nonces by identifier.
    pub(crate) nonces_hex: BTreeMap<u16, (Vec<u8>, Vec<u8>)>,
    /// Round one: (hiding, binding) nonce commitments by identifier.
    pub(crate) commitments_hex: BTreeMap<u16, (Vec<u8>, Vec<u8>)>,
    pub(crate) sig_shares: BTreeMap<u16, Vec<u8>>,
    pub(crate) sig: Vec<u8>,
    suite: std::marker::PhantomData<S>,
}

impl<S: Suite> SigningVector<S> {
    /// The vector file `rel` below `assets`.
    pub(crate) fn load(assets: &str, rel: &'static str) -> Self {
        let v = load(assets, rel);
        let inputs = &v["inputs"];
        let group_key = if inputs["group_public_key"].is_string() {
            hex_of(&inputs["group_public_key"])
        } else {
            hex_of(&inputs["verifying_key_key"])
        };
        let outputs = v["round_one_outputs"]["outputs"]
            .as_array()
            .expect("round one");
        Self {
            name: rel,
            min_signers: num(&v["config"]["MIN_PARTICIPANTS"]),
            max_signers: num(&v["config"]["MAX_PARTICIPANTS"]),
            group_secret: hex_of(&inputs["group_secret_key"]),
            group_key,
            message: hex_of(&inputs["message"]),
            shares: inputs["participant_shares"]
                .as_array()
                .expect("participant_shares")
                .iter()
                .map(|s| (num(&s["identifier"]), hex_of(&s["participant_share"])))
                .collect(),
            participants: inputs["participant_list"]
                .as_array()
                .expect("participant_list")
                .iter()
                .map(num)
                .collect(),
            nonces_hex: round_one_pairs(outputs, "hiding_nonce", "binding_nonce"),
            commitments_hex: round_one_pairs(
                outputs,
                "hiding_nonce_commitment",
                "binding_nonce_commitment",
            ),
            sig_shares: v["round_two_outputs"]["outputs"]
                .as_array()
                .expect("round two")
                .iter()
                .map(|o| (num(&o["identifier"]), hex_of(&o["sig_share"])))
                .collect(),
            sig: hex_of(&v["final_output"]["sig"]),
            suite: std::marker::PhantomData,
        }
    }

    pub(crate) fn verifying_key(&self) -> VerifyingKey<S> {
        VerifyingKey::deserialize(&self.group_key).expect("group key")
    }

    pub(crate) fn key_package(&self, n: u16) -> KeyPackage<S> {
        let share = SigningShare::deserialize(&self.shares[&n]).expect("signing share");
        KeyPackage::new(
            id(n),
            share,
            VerifyingShare::from(share),
            self.verifying_key(),
            self.min_signers,
        )
    }

    /// Every participant's verifying share (derived from its vector share) and the group key.
    pub(crate) fn public_key_package(&self) -> PublicKeyPackage<S> {
        let shares = self
            .shares
            .iter()
            .map(|(n, s)| {
                let s = SigningShare::deserialize(s).expect("signing share");
                (id(*n), VerifyingShare::from(s))
            })
            .collect();
        PublicKeyPackage::new(shares, self.verifying_key(), Some(self.min_signers))
    }

    /// [`Self::public_key_package`] as the coordinator's group key.
    pub(crate) fn group(&self) -> GroupKey<S> {
        GroupKey::new(self.public_key_package())
    }

    /// The vector's fixed nonces for participant `n`, wrapped as the token signer wraps them.
    pub(crate) fn nonces(&self, n: u16) -> SignerNonces<S> {
        let (h, b) = &self.nonces_hex[&n];
        SignerNonces::new(SigningNonces::from_nonces(
            Nonce::deserialize(h).expect("hiding nonce"),
            Nonce::deserialize(b).expect("binding nonce"),
        ))
    }

    pub(crate) fn commitments(&self) -> BTreeMap<Identifier<S>, SigningCommitments<S>> {
        self.participants
            .iter()
            .map(|n| (id(*n), self.nonces(*n).commitments()))
            .collect()
    }

    /// Shares from `sign_share`, keyed by identifier.
    pub(crate) fn sign_all(&self, message: &[u8]) -> BTreeMap<Identifier<S>, SignatureShare<S>> {
        let commitments = self.commitments();
        self.participants
            .iter()
            .map(|n| {
                let key = KeyShare::new(self.key_package(*n));
                let share = sign_share(&key, self.nonces(*n), commitments.clone(), message)
                    .unwrap_or_else(|e| panic!("{}: signer {n}: {e}", self.name));
                (id(*n), share)
            })
            .collect()
    }

    /// Asserts that the group key is the group secret times G.
    pub(crate) fn assert_group_key_of_secret(&self) {
        let secret = SigningKey::<S>::deserialize(&self.group_secret).expect("group secret");
        assert_eq!(
            VerifyingKey::from(&secret),
            self.verifying_key(),
            "{}: group key",
            self.name
        );
    }

    /// Round one: asserts that the fixed nonces give the vector's commitments.
    pub(crate) fn assert_round_one(&self) {
        let name = self.name;
        for n in &self.participants {
            let c = self.nonces(*n).commitments();
            let (hiding, binding) = &self.commitments_hex[n];
            assert_eq!(
                &c.hiding().serialize().expect("hiding"),
                hiding,
                "{name}: hiding commitment of {n}"
            );
            assert_eq!(
                &c.binding().serialize().expect("binding"),
                binding,
                "{name}: binding commitment of {n}"
            );
        }
    }

    /// Round two through `sign_share` over the vector's message: asserts that each
    /// share equals the vector's; the shares.
    pub(crate) fn sign_and_check_shares(&self) -> BTreeMap<Identifier<S>, SignatureShare<S>> {
        let shares = self.sign_all(&self.message);
        for n in &self.participants {
            assert_eq!(
                shares[&id(*n)].serialize(),
                self.sig_shares[n],
                "{}: sig share of {n}",
                self.name
            );
        }
        shares
    }
}
