//! AMD SEV-SNP attestation (in progress).
