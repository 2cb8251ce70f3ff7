//! **Insecure** development attestation (DESIGN §4): SNP-format reports signed in
//! software, for tests and the local demo. Compiled only with the
//! `insecure-dev-attestation` feature, which the production image build leaves out.
//!
//! A [`DevPlatform`] is an in-memory ARK → ASK → VCEK chain, every certificate ECDSA
//! P-384 with SHA-384 (fast to generate), every subject marked
//! `O=frostamp INSECURE development attestation` with common names `ARK-INSECURE-DEV`,
//! `ASK-INSECURE-DEV`, `VCEK-INSECURE-DEV`. The VCEK carries the same AMD TCB and hwID
//! extensions as a real one, and its reports are real 1184-byte version 3 reports, so
//! [`crate::attestation::verify_report`] runs every check on them; only the trust
//! anchor differs.
//!
//! Reports carry CPUID family [`DEV_CPUID_FAMILY`] (0xFF), which maps to
//! [`crate::attestation::ProcessorFamily::InsecureDev`]. `RootSet::amd()` has no root for that family, so
//! AMD-only verifiers refuse development reports with
//! `AttestationError::NoRootForFamily(InsecureDev)` before looking at any signature; a
//! development report relabelled with a real family fails the chain (no path to an AMD
//! ARK). Only `RootSet::danger_with_insecure_dev_root(platform.ark_der())` accepts them.
//! (Alternative considered: reuse the Milan family with a development root. Rejected
//! because a verified report would then say "Milan", and a verifier holding both roots
//! could not tell hardware from software evidence.)

use std::io::Read;
use std::str::FromStr;
use std::time::Duration;

use const_oid::db::rfc5912;
use const_oid::AssociatedOid;
use der::asn1::{AnyRef, BitString, Ia5String, OctetString, OctetStringRef};
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256, Sha384};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};
use zeroize::Zeroizing;

use super::evidence::{Attester, Evidence};
use super::report::{
    FirmwareVersion, GuestPolicy, KeyInfo, PlatformInfo, RawTcb, Report, ReportSignature,
    TcbLayout, TcbVersion, SIG_ALGO_ECDSA_P384_SHA384,
};
use super::roots::{DEV_ARK_CN, DEV_ASK_CN, DEV_CPUID_FAMILY, DEV_ORG, DEV_VCEK_CN};
use super::vcek::{
    VcekExtensions, OID_BL_SPL, OID_HWID, OID_PRODUCT_NAME, OID_SNP_SPL, OID_STRUCT_VERSION,
    OID_TEE_SPL, OID_UCODE_SPL,
};
use super::verify::AttestationError;
use crate::x509::chain::{build_chain_der, ChainOptions};

/// The TCB a development VCEK certifies and its reports carry.
pub const DEV_TCB: TcbVersion = TcbVersion {
    fmc: None,
    bootloader: 1,
    tee: 1,
    snp: 1,
    microcode: 1,
};

/// The guest policy [`DevAttester`] reports: SMT allowed, reserved bit 17 set; debug and
/// migration agent off (what a real frostamp launch uses).
pub const DEV_POLICY: GuestPolicy = GuestPolicy(0x30000);

/// The `PLATFORM_INFO` of development reports: SMT, ECC and ALIAS_CHECK_COMPLETE, as on
/// the real Milan and Genoa reports of the corpus, so that the production
/// `PlatformRules` (which require ALIAS_CHECK_COMPLETE) apply to development evidence too.
pub const DEV_PLATFORM_INFO: PlatformInfo = PlatformInfo(0x25);

/// Development certificates are valid from 2020-01-01T00:00:00Z ...
const DEV_NOT_BEFORE_UNIX: u64 = 1_577_836_800;
/// ... to 2049-12-31T23:59:59Z (last UTCTime instant, RFC 5280 §4.1.2.5.1).
const DEV_NOT_AFTER_UNIX: u64 = 2_524_607_999;

/// PEM label of [`DevPlatform::to_secret_pem`].
pub const SECRET_PEM_LABEL: &str = "FROSTAMP INSECURE DEV ATTESTATION PLATFORM";

/// Why a development platform could not be built or imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("insecure development attestation platform: {0}")]
pub struct DevPlatformError(String);

fn err(what: &str, e: impl std::fmt::Display) -> DevPlatformError {
    DevPlatformError(format!("{what}: {e}"))
}

/// An in-memory development ARK → ASK → VCEK chain that signs SNP-format reports.
///
/// Only the VCEK private key is kept (the ARK and ASK keys are dropped after the chain is
/// made). It is a development secret: whoever holds it can produce reports for any
/// measurement. `Debug` prints no key material.
pub struct DevPlatform {
    vcek_key: SigningKey,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    vcek_der: Vec<u8>,
    chip_id: [u8; 64],
}

impl std::fmt::Debug for DevPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPlatform")
            .field("ark_sha256", &hex::encode(Sha256::digest(&self.ark_der)))
            .field("vcek_key", &"<redacted>")
            .finish()
    }
}

fn dev_name(cn: &str) -> Result<Name, DevPlatformError> {
    Name::from_str(&format!("CN={cn},O={DEV_ORG}")).map_err(|e| err("name", e))
}

fn ext(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, DevPlatformError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(|e| err("extension", e))?,
    })
}

fn der_of(value: &impl Encode) -> Result<Vec<u8>, DevPlatformError> {
    value.to_der().map_err(|e| err("DER", e))
}

fn dev_validity() -> Result<Validity, DevPlatformError> {
    let t = |secs| {
        der::asn1::UtcTime::from_unix_duration(Duration::from_secs(secs))
            .map(Time::UtcTime)
            .map_err(|e| err("validity", e))
    };
    Ok(Validity {
        not_before: t(DEV_NOT_BEFORE_UNIX)?,
        not_after: t(DEV_NOT_AFTER_UNIX)?,
    })
}

fn ecdsa_with_sha384() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::ECDSA_WITH_SHA_384,
        parameters: None,
    }
}

/// One party of a development certificate: its name and its key.
type Party<'a> = (&'a Name, &'a SigningKey);

/// Builds one certificate of `subject`, signed by `issuer`.
fn issue(
    (subject, subject_key): Party<'_>,
    (issuer, issuer_key): Party<'_>,
    extensions: Vec<Extension>,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<Vec<u8>, DevPlatformError> {
    let spki = SubjectPublicKeyInfoOwned::from_key(*subject_key.verifying_key())
        .map_err(|e| err("public key", e))?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: crate::x509::random_serial(rng).map_err(|e| err("serial", e))?,
        signature: ecdsa_with_sha384(),
        issuer: issuer.clone(),
        validity: dev_validity()?,
        subject: subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig: DerSignature = issuer_key.sign(&der_of(&tbs)?);
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_with_sha384(),
        signature: BitString::from_bytes(sig.as_bytes()).map_err(|e| err("signature", e))?,
    };
    der_of(&cert)
}

fn ca_extensions(path_len: Option<u8>) -> Result<Vec<Extension>, DevPlatformError> {
    Ok(vec![
        ext(
            BasicConstraints::OID,
            true,
            der_of(&BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            })?,
        )?,
        ext(
            KeyUsage::OID,
            true,
            der_of(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        )?,
    ])
}

/// The AMD extensions of a VCEK (see `attestation::vcek`), for the development VCEK.
fn vcek_extensions(
    tcb: &TcbVersion,
    chip_id: &[u8; 64],
) -> Result<Vec<Extension>, DevPlatformError> {
    let product = Ia5String::new("INSECURE-DEV").map_err(|e| err("productName", e))?;
    Ok(vec![
        ext(OID_STRUCT_VERSION, false, der_of(&1u8)?)?,
        ext(OID_PRODUCT_NAME, false, der_of(&product)?)?,
        ext(OID_BL_SPL, false, der_of(&tcb.bootloader)?)?,
        ext(OID_TEE_SPL, false, der_of(&tcb.tee)?)?,
        ext(OID_SNP_SPL, false, der_of(&tcb.snp)?)?,
        ext(OID_UCODE_SPL, false, der_of(&tcb.microcode)?)?,
        ext(OID_HWID, false, chip_id.to_vec())?,
    ])
}

/// `DevPlatformSecret ::= SEQUENCE { version INTEGER (1), vcekKey OCTET STRING (48-byte
/// P-384 scalar), ark Certificate, ask Certificate, vcek Certificate }`
#[derive(der::Sequence)]
struct SecretFile<'a> {
    version: u8,
    vcek_key: OctetStringRef<'a>,
    ark: AnyRef<'a>,
    ask: AnyRef<'a>,
    vcek: AnyRef<'a>,
}

impl DevPlatform {
    /// Makes a fresh development chain with random keys and a random chip id.
    pub fn generate(
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<Self, DevPlatformError> {
        let ark_key = SigningKey::random(rng);
        let ask_key = SigningKey::random(rng);
        let vcek_key = SigningKey::random(rng);
        let mut chip_id = [0u8; 64];
        rng.fill_bytes(&mut chip_id);
        let (ark_name, ask_name) = (dev_name(DEV_ARK_CN)?, dev_name(DEV_ASK_CN)?);
        let vcek_name = dev_name(DEV_VCEK_CN)?;
        let (ark, ask) = ((&ark_name, &ark_key), (&ask_name, &ask_key));
        let vcek_extensions = vcek_extensions(&DEV_TCB, &chip_id)?;
        // Fields are evaluated in the order written: ARK, ASK, VCEK.
        Ok(Self {
            ark_der: issue(ark, ark, ca_extensions(Some(1))?, rng)?,
            ask_der: issue(ask, ark, ca_extensions(Some(0))?, rng)?,
            vcek_der: issue((&vcek_name, &vcek_key), ask, vcek_extensions, rng)?,
            vcek_key,
            chip_id,
        })
    }

    /// DER of the development ARK: the root to give
    /// `RootSet::danger_with_insecure_dev_root`.
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// DER of the development ASK.
    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }

    /// DER of the development VCEK.
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek_der
    }

    /// The chip id in the VCEK's hwID and in every report.
    pub fn chip_id(&self) -> [u8; 64] {
        self.chip_id
    }

    /// An unsigned version 3 report of this platform (CPUID family 0xFF, VCEK signer).
    /// Tests may alter it and sign it with [`DevPlatform::sign`].
    pub fn report(
        &self,
        report_data: [u8; 64],
        measurement: [u8; 48],
        policy: GuestPolicy,
        vmpl: u32,
    ) -> Report {
        let tcb: RawTcb = DEV_TCB.encode(TcbLayout::Legacy);
        let mut report_id = [0u8; 32];
        let id = Sha256::new()
            .chain_update(b"frostamp insecure dev report_id")
            .chain_update(&self.vcek_der)
            .chain_update(measurement)
            .finalize();
        report_id.copy_from_slice(&id);
        let firmware = FirmwareVersion {
            major: 1,
            minor: 55,
            build: 0,
        };
        Report {
            version: 3,
            guest_svn: 0,
            policy,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl,
            sig_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: tcb,
            platform_info: DEV_PLATFORM_INFO,
            key_info: KeyInfo(0),
            report_data,
            measurement,
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id,
            report_id_ma: [0xff; 32],
            reported_tcb: tcb,
            cpuid_raw: [DEV_CPUID_FAMILY, 0, 0],
            chip_id: self.chip_id,
            committed_tcb: tcb,
            current_version: firmware,
            committed_version: firmware,
            launch_tcb: tcb,
            launch_mit_vector: 0,
            current_mit_vector: 0,
            signature: ReportSignature::default(),
        }
    }

    /// Signs `report` (ECDSA P-384/SHA-384 over bytes 0x000..0x2A0) with the VCEK key and
    /// returns its 1184 bytes.
    pub fn sign(&self, report: &mut Report) -> Vec<u8> {
        let sig: p384::ecdsa::Signature = self.vcek_key.sign(&report.signed_bytes());
        let (r, s) = sig.split_bytes();
        let le = |be: &[u8]| {
            let mut out = [0u8; 72];
            for (dst, src) in out.iter_mut().zip(be.iter().rev()) {
                *dst = *src;
            }
            out
        };
        report.signature = ReportSignature {
            r: le(&r),
            s: le(&s),
        };
        report.to_bytes().to_vec()
    }

    /// `report` (from [`DevPlatform::report`], altered or not) signed, with the VCEK and
    /// the ASK and ARK as `chain` (the same shape as evidence from real hardware).
    pub fn attest(&self, mut report: Report) -> Evidence {
        Evidence {
            report: self.sign(&mut report),
            vcek: self.vcek_der.clone(),
            chain: vec![self.ask_der.clone(), self.ark_der.clone()],
        }
    }

    /// Exports the platform (VCEK private key and the three certificates) as one PEM block
    /// labelled [`SECRET_PEM_LABEL`], so a launcher can hand the same development chain to
    /// several node processes. **Development secret**: anyone holding it can forge
    /// development reports for any measurement.
    pub fn to_secret_pem(&self) -> Result<Zeroizing<String>, DevPlatformError> {
        let key = Zeroizing::new(self.vcek_key.to_bytes());
        let file = SecretFile {
            version: 1,
            vcek_key: OctetStringRef::new(&key).map_err(|e| err("key", e))?,
            ark: AnyRef::from_der(&self.ark_der).map_err(|e| err("ARK", e))?,
            ask: AnyRef::from_der(&self.ask_der).map_err(|e| err("ASK", e))?,
            vcek: AnyRef::from_der(&self.vcek_der).map_err(|e| err("VCEK", e))?,
        };
        let der = Zeroizing::new(file.to_der().map_err(|e| err("encode", e))?);
        der::pem::encode_string(SECRET_PEM_LABEL, der::pem::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|e| err("PEM", e))
    }

    /// Imports [`DevPlatform::to_secret_pem`] output. Checks the label, the version, that
    /// the certificates chain ARK → ASK → VCEK, and that the key is the VCEK's.
    pub fn from_secret_pem(pem: &str) -> Result<Self, DevPlatformError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes()).map_err(|e| err("PEM", e))?;
        let der = Zeroizing::new(der);
        if label != SECRET_PEM_LABEL {
            return Err(DevPlatformError(format!(
                "PEM label is {label:?}, expected {SECRET_PEM_LABEL:?}"
            )));
        }
        let file = SecretFile::from_der(&der).map_err(|e| err("decode", e))?;
        if file.version != 1 {
            return Err(DevPlatformError(format!(
                "unsupported version {}",
                file.version
            )));
        }
        let vcek_key =
            SigningKey::from_slice(file.vcek_key.as_bytes()).map_err(|e| err("key", e))?;
        let ark_der = der_of(&file.ark)?;
        let ask_der = der_of(&file.ask)?;
        let vcek_der = der_of(&file.vcek)?;
        let at = std::time::UNIX_EPOCH + Duration::from_secs(DEV_NOT_BEFORE_UNIX + 1);
        build_chain_der(&vcek_der, &[&ask_der], &[&ark_der], &ChainOptions::at(at))
            .map_err(|e| err("certificate chain", e))?;
        let vcek = Certificate::from_der(&vcek_der).map_err(|e| err("VCEK", e))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*vcek_key.verifying_key())
            .map_err(|e| err("public key", e))?;
        if spki != vcek.tbs_certificate.subject_public_key_info {
            return Err(DevPlatformError("key does not belong to the VCEK".into()));
        }
        let ext = VcekExtensions::from_certificate(&vcek).map_err(|e| err("VCEK", e))?;
        let chip_id: [u8; 64] = ext
            .hwid
            .as_deref()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| DevPlatformError("VCEK hwID is not 64 bytes".into()))?;
        if ext.tcb() != DEV_TCB {
            return Err(DevPlatformError(
                "VCEK TCB is not the development TCB".into(),
            ));
        }
        Ok(Self {
            vcek_key,
            ark_der,
            ask_der,
            vcek_der,
            chip_id,
        })
    }
}

/// SHA-384 of the running executable (`/proc/self/exe`): the development stand-in for
/// the launch measurement. Two processes of the same binary agree; a rebuilt binary
/// with different code does not.
pub fn own_measurement() -> std::io::Result<[u8; 48]> {
    let mut file = std::fs::File::open("/proc/self/exe")?;
    let mut hasher = Sha384::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

/// The development [`Attester`]: a [`DevPlatform`] and a measurement (by default the
/// running binary's, [`own_measurement`]), reporting [`DEV_POLICY`] at VMPL 0.
#[derive(Debug)]
pub struct DevAttester {
    platform: DevPlatform,
    measurement: [u8; 48],
}

impl DevAttester {
    /// An attester whose measurement is SHA-384 of the running binary.
    pub fn new(platform: DevPlatform) -> std::io::Result<Self> {
        Ok(Self::with_measurement(platform, own_measurement()?))
    }

    /// An attester reporting `measurement` (tests: simulate a different image).
    pub fn with_measurement(platform: DevPlatform, measurement: [u8; 48]) -> Self {
        Self {
            platform,
            measurement,
        }
    }

    /// The platform (for its ARK).
    pub fn platform(&self) -> &DevPlatform {
        &self.platform
    }
}

impl Attester for DevAttester {
    fn attest(&self, report_data: [u8; 64]) -> Result<Evidence, AttestationError> {
        let p = &self.platform;
        Ok(p.attest(p.report(report_data, self.measurement, DEV_POLICY, 0)))
    }

    fn measurement(&self) -> [u8; 48] {
        self.measurement
    }

    fn is_insecure_dev(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::{verify_report, Expected, RootSet};
    use rand::SeedableRng;

    fn platform() -> DevPlatform {
        DevPlatform::generate(&mut rand::rngs::StdRng::seed_from_u64(7)).unwrap()
    }

    #[test]
    fn generated_chain_is_marked_and_verifies() {
        let p = platform();
        for der in [p.ark_der(), p.ask_der(), p.vcek_der()] {
            let c = Certificate::from_der(der).unwrap();
            let s = c.tbs_certificate.subject.to_string();
            assert!(s.contains("INSECURE-DEV") && s.contains(DEV_ORG), "{s}");
        }
        let e = p.attest(p.report([1; 64], [2; 48], DEV_POLICY, 0));
        assert_eq!(e.report.len(), 1184);
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let roots = RootSet::danger_with_insecure_dev_root(p.ark_der());
        let v = verify_report(
            &e.report,
            &e.vcek,
            &e.chain_refs(),
            &roots,
            &Expected::frostamp([2; 48], [1; 64]),
            at,
        )
        .unwrap();
        assert!(v.is_insecure_dev());
        assert_eq!(v.reported_tcb, DEV_TCB);
        assert_eq!(v.chip_id, p.chip_id());
    }

    #[test]
    fn secret_pem_round_trip_and_debug_redaction() {
        let p = platform();
        let pem = p.to_secret_pem().unwrap();
        assert!(pem.starts_with(&format!("-----BEGIN {SECRET_PEM_LABEL}-----")));
        let q = DevPlatform::from_secret_pem(&pem).unwrap();
        assert_eq!(q.ark_der(), p.ark_der());
        assert_eq!(q.vcek_der(), p.vcek_der());
        assert_eq!(q.chip_id(), p.chip_id());
        // Same key: same deterministic (RFC 6979) signature.
        let a = p.attest(p.report([3; 64], [4; 48], DEV_POLICY, 0));
        let b = q.attest(q.report([3; 64], [4; 48], DEV_POLICY, 0));
        assert_eq!(a, b);
        let key_hex = hex::encode(p.vcek_key.to_bytes());
        let dbg = format!("{p:?} {:?}", DevAttester::with_measurement(q, [0; 48]));
        assert!(dbg.contains("<redacted>"), "{dbg}");
        assert!(!dbg.contains(&key_hex), "{dbg}");
        // Wrong label, garbage, another platform's key.
        let other = DevPlatform::generate(&mut rand::rngs::StdRng::seed_from_u64(8)).unwrap();
        assert!(DevPlatform::from_secret_pem(&pem.replace("PLATFORM", "THING")).is_err());
        assert!(DevPlatform::from_secret_pem("not pem").is_err());
        let mixed = SecretFile {
            version: 1,
            vcek_key: OctetStringRef::new(&other.vcek_key.to_bytes()).unwrap(),
            ark: AnyRef::from_der(p.ark_der()).unwrap(),
            ask: AnyRef::from_der(p.ask_der()).unwrap(),
            vcek: AnyRef::from_der(p.vcek_der()).unwrap(),
        }
        .to_der()
        .unwrap();
        let mixed =
            der::pem::encode_string(SECRET_PEM_LABEL, der::pem::LineEnding::LF, &mixed).unwrap();
        let e = DevPlatform::from_secret_pem(&mixed).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
    }

    #[test]
    fn own_measurement_is_stable() {
        let a = own_measurement().unwrap();
        assert_eq!(a, own_measurement().unwrap());
        assert_ne!(a, [0; 48]);
        let att = DevAttester::new(platform()).unwrap();
        assert_eq!(att.measurement(), a);
        assert!(att.is_insecure_dev());
    }
}
