//! What goes into `REPORT_DATA` (64 bytes, ATTESTATION_REPORT offset 0x50): a
//! domain-separated SHA-512 over fixed-length inputs, so that a report made for one
//! purpose can never be presented as one made for another (DESIGN §2 steps 2 and 4).
//!
//! ```text
//! identity_binding = SHA-512("frostamp/v1/identity"     ‖ 0x00 ‖ SHA-256(tls_spki_der) ‖ nonce[32])
//! evidence_binding = SHA-512("frostamp/v2/dkg-evidence" ‖ 0x00 ‖ SHA-256(group_key_sec1)
//!                                                       ‖ transcript_hash[32] ‖ identifier (u16 BE)
//!                                                       ‖ n (u16 BE) ‖ t (u16 BE) ‖ roster_hash[32])
//! ```
//!
//! The labels contain no 0x00, so the terminator makes the label unambiguous; every
//! field after it has a fixed length, so the encoding is injective.

use sha2::{Digest, Sha256, Sha512};

/// Label of [`identity_binding`].
pub const IDENTITY_LABEL: &[u8] = b"frostamp/v1/identity";
/// Label of [`evidence_binding`].
pub const EVIDENCE_LABEL: &[u8] = b"frostamp/v2/dkg-evidence";

/// REPORT_DATA binding a node's TLS identity key (its DER `SubjectPublicKeyInfo`) and a
/// verifier-chosen 32-byte nonce (freshness), for mutual attestation (DESIGN §2 step 2).
pub fn identity_binding(tls_spki_der: &[u8], nonce: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(IDENTITY_LABEL);
    h.update([0u8]);
    h.update(Sha256::digest(tls_spki_der));
    h.update(nonce);
    h.finalize().into()
}

/// REPORT_DATA binding the DKG result: the group public key (SEC 1 encoding), the hash of
/// the DKG transcript, the node's FROST identifier, the epoch's (n, t) and the hash of the
/// epoch roster (which attested machine holds which index; [`super::roster`]) (DESIGN §2
/// step 4).
pub fn evidence_binding(
    group_key_sec1: &[u8],
    transcript_hash: &[u8; 32],
    identifier: u16,
    n: u16,
    t: u16,
    roster_hash: &[u8; 32],
) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(EVIDENCE_LABEL);
    h.update([0u8]);
    h.update(Sha256::digest(group_key_sec1));
    h.update(transcript_hash);
    h.update(identifier.to_be_bytes());
    h.update(n.to_be_bytes());
    h.update(t.to_be_bytes());
    h.update(roster_hash);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_binding_matches_its_definition() {
        let spki = b"spki bytes";
        let nonce = [7u8; 32];
        let mut input = b"frostamp/v1/identity\x00".to_vec();
        input.extend_from_slice(&Sha256::digest(spki));
        input.extend_from_slice(&nonce);
        let expected: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(identity_binding(spki, &nonce), expected);
    }

    #[test]
    fn evidence_binding_matches_its_definition() {
        let key = [2u8; 33];
        let th = [9u8; 32];
        let roster = [4u8; 32];
        let mut input = b"frostamp/v2/dkg-evidence\x00".to_vec();
        input.extend_from_slice(&Sha256::digest(key));
        input.extend_from_slice(&th);
        input.extend_from_slice(&[0x01, 0x02, 0x00, 0x05, 0x00, 0x03]);
        input.extend_from_slice(&roster);
        let expected: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(evidence_binding(&key, &th, 0x0102, 5, 3, &roster), expected);
    }

    #[test]
    fn different_inputs_give_different_bindings() {
        let base = identity_binding(b"key-a", &[0; 32]);
        assert_ne!(base, identity_binding(b"key-b", &[0; 32]));
        let mut nonce = [0u8; 32];
        nonce[31] = 1;
        assert_ne!(base, identity_binding(b"key-a", &nonce));
        let r = [0u8; 32];
        let ev = evidence_binding(b"key-a", &[0; 32], 1, 5, 3, &r);
        assert_ne!(ev, evidence_binding(b"key-a", &[0; 32], 2, 5, 3, &r));
        assert_ne!(ev, evidence_binding(b"key-a", &[1; 32], 1, 5, 3, &r));
        assert_ne!(ev, evidence_binding(b"key-b", &[0; 32], 1, 5, 3, &r));
        assert_ne!(ev, evidence_binding(b"key-a", &[0; 32], 1, 2, 3, &r));
        assert_ne!(ev, evidence_binding(b"key-a", &[0; 32], 1, 5, 2, &r));
        assert_ne!(ev, evidence_binding(b"key-a", &[0; 32], 1, 5, 3, &[1; 32]));
        // Domain separation: same bytes after the label, different purpose.
        assert_ne!(
            identity_binding(b"key-a", &[0; 32]),
            evidence_binding(b"key-a", &[0; 32], 0, 5, 3, &r)
        );
        assert_eq!(base, identity_binding(b"key-a", &[0; 32]));
    }
}
