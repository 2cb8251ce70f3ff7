//! rustls configurations (ring provider).
//!
//! On the peer port certificates carry no trust: node identities are ephemeral
//! self-signed keys whose meaning comes from attestation (REPORT_DATA binds the SPKI).
//! The public port serves the same key, with a CA-issued certificate once the
//! operator installed one ([`PublicCert`]), so ordinary clients can verify it.
//! So verifiers check the TLS handshake signature with the presented key and
//! either pin that key's SPKI hash (after attestation) or accept it for the
//! sole purpose of *then* attesting it. The names say `danger` where no pin is set.

use crate::net::identity::Identity;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// TLS setup errors.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// Key or certificate handling.
    #[error("identity: {0}")]
    Identity(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of the SubjectPublicKeyInfo of a DER certificate.
pub fn spki_sha256_of_cert(cert: &[u8]) -> Option<[u8; 32]> {
    crate::net::identity::spki_of_cert(cert)
        .ok()
        .map(|spki| Sha256::digest(spki).into())
}

fn key_and_chain(
    id: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let key = id
        .pkcs8_der()
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    Ok((
        vec![CertificateDer::from(id.cert_der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
    ))
}

/// What the public port serves: the identity's self-signed certificate until the
/// operator installs a CA-issued chain for the same key ([`PublicCert::install`];
/// `crate::certs::tls`), then that chain. The key never changes.
#[derive(Debug)]
pub struct PublicCert {
    key: Arc<dyn rustls::sign::SigningKey>,
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl PublicCert {
    /// The identity's key with its self-signed certificate.
    pub fn new(id: &Identity) -> Result<Self, TlsError> {
        let (chain, key) = key_and_chain(id)?;
        let key = provider().key_provider.load_private_key(key)?;
        let current = Arc::new(rustls::sign::CertifiedKey::new(chain, key.clone()));
        current.keys_match()?;
        Ok(Self {
            key,
            current: std::sync::RwLock::new(current),
        })
    }

    /// Serve `chain` (DER, leaf first) from the next handshake on. rustls refuses a
    /// leaf whose key is not the identity key (the node checks that first, with
    /// `crate::certs::tls::check_tls_chain`, to say why).
    pub fn install(&self, chain: &[Vec<u8>]) -> Result<(), TlsError> {
        let chain: Vec<CertificateDer<'static>> = chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let next = Arc::new(rustls::sign::CertifiedKey::new(chain, self.key.clone()));
        next.keys_match()?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// The leaf served now (DER).
    pub fn leaf(&self) -> Option<Vec<u8>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .cert
            .first()
            .map(|c| c.to_vec())
    }
}

impl rustls::server::ResolvesServerCert for PublicCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Public HTTPS: server authentication only, with the certificate of `cert`.
pub fn public_server_config(cert: Arc<PublicCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Peer port: mutual TLS. Any client key is accepted at the TLS layer (its
/// handshake signature is verified); admission happens by attestation of that key.
pub fn peer_server_config(id: &Identity) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = key_and_chain(id)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AttestLaterClientVerifier(provider())))
        .with_single_cert(chain, key)?;
    // Every link is attested afresh: no session is ever resumed, so none is stored
    // (rustls would otherwise keep up to 256, each with the peer's certificate).
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(cfg)
}

/// Client to a peer port: presents our identity; accepts the server key for attestation.
pub fn peer_client_config(id: &Identity) -> Result<rustls::ClientConfig, TlsError> {
    let (chain, key) = key_and_chain(id)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier {
            pin: None,
            provider: provider(),
        }))
        .with_client_auth_cert(chain, key)
        .map(|mut cfg| {
            cfg.resumption = rustls::client::Resumption::disabled();
            cfg
        })?)
}

/// Client to a public port. `pin`: the SHA-256 of the server SPKI learned from a
/// verified attestation; `None` only to fetch that attestation (danger).
pub fn public_client_config(pin: Option<[u8; 32]>) -> Result<rustls::ClientConfig, TlsError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier {
            pin,
            provider: provider(),
        }))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The handshake-signature methods both verifiers share: rustls' own checks with the
/// provider's algorithms (`$provider`: the field holding the `Arc<CryptoProvider>`).
/// Only the certificate decisions differ between the two.
macro_rules! handshake_signatures_with {
    ($provider:tt) => {
        // Each method calls rustls' free function of the same name.
        handshake_signatures_with!(@verify $provider, verify_tls12_signature, verify_tls13_signature);
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.$provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
    (@verify $provider:tt, $($method:ident),+) => {
        $(
            fn $method(
                &self,
                message: &[u8],
                cert: &CertificateDer<'_>,
                dss: &DigitallySignedStruct,
            ) -> Result<HandshakeSignatureValid, rustls::Error> {
                let algorithms = &self.$provider.signature_verification_algorithms;
                $method(message, cert, dss, algorithms)
            }
        )+
    };
}

#[derive(Debug)]
struct PinnedServerVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = spki_sha256_of_cert(end_entity).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        match self.pin {
            Some(pin) if pin != got => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }
    handshake_signatures_with!(provider);
}

#[derive(Debug)]
struct AttestLaterClientVerifier(Arc<CryptoProvider>);

impl ClientCertVerifier for AttestLaterClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        spki_sha256_of_cert(end_entity).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        Ok(ClientCertVerified::assertion())
    }
    handshake_signatures_with!(0);
}
