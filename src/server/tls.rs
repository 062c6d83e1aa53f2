//! The optional HTTPS listener's certificate: read from files or systemd credentials,
//! served through a resolver whose certificate can be replaced while connections run,
//! so a renewed certificate is picked up without a restart (on SIGHUP, or when the
//! files change) and a broken renewal leaves the working one in place.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{Environment, SecretRef, TlsConfig, credential_path};

/// Why a certificate could not be loaded. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls.{which}: {cause}")]
    Read { which: &'static str, cause: String },
    #[error(
        "server.tls.certificate: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)"
    )]
    NoCertificate,
    #[error("server.tls.private_key: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("server.tls.private_key: {0}")]
    BadKey(String),
    #[error("server.tls: the private key does not belong to the certificate")]
    Mismatch,
    #[error("server.tls: {0}")]
    Config(String),
}

/// The certificate the TLS listener serves, replaceable while it runs.
pub struct CertStore {
    certificate: SecretRef,
    private_key: SecretRef,
    env: Environment,
    /// The files behind the two references, watched for a renewal.
    paths: Vec<PathBuf>,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times of the files last loaded, to notice a renewal.
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

impl CertStore {
    /// Loads the configured certificate and key; fails when they cannot be used.
    pub fn load(cfg: &TlsConfig, env: &Environment) -> Result<Arc<Self>, TlsError> {
        let paths = watched_paths(&[&cfg.certificate, &cfg.private_key], env);
        // Stamped before reading, as in `reload`: a renewal landing in between is
        // then seen as a change and read again.
        let stamps = stamps_of(&paths);
        let pair = read_pair(&cfg.certificate, &cfg.private_key, env)?;
        Ok(Arc::new(CertStore {
            certificate: cfg.certificate.clone(),
            private_key: cfg.private_key.clone(),
            env: env.clone(),
            paths,
            current: RwLock::new(Arc::new(pair)),
            stamps: RwLock::new(stamps),
        }))
    }

    /// Reads the files again and serves them from the next handshake on; on failure
    /// the certificate in use stays and the error is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = self.stamps_now();
        let pair = read_pair(&self.certificate, &self.private_key, &self.env)?;
        if let Ok(mut c) = self.current.write() {
            *c = Arc::new(pair);
        }
        if let Ok(mut s) = self.stamps.write() {
            *s = stamps;
        }
        Ok(())
    }

    /// Whether the certificate or key file changed since it was last loaded.
    pub fn changed_on_disk(&self) -> bool {
        let now = self.stamps_now();
        self.stamps.read().map(|s| *s != now).unwrap_or(false)
    }

    /// The rustls configuration of the listener: TLS 1.3 and 1.2 with rustls's
    /// default (modern) cipher suites, HTTP/1.1 by ALPN, no client certificates.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn stamps_now(&self) -> Vec<Option<SystemTime>> {
        stamps_of(&self.paths)
    }
}

/// The files behind file and credential references (environment values have none).
fn watched_paths(refs: &[&SecretRef], env: &Environment) -> Vec<PathBuf> {
    refs.iter()
        .filter_map(|r| match r {
            SecretRef::File(p) => Some(p.clone()),
            SecretRef::Credential(name) => credential_path(name, env).ok(),
            SecretRef::Env(_) | SecretRef::Vault(_) => None,
        })
        .collect()
}

fn stamps_of(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: only where it comes from.
        f.debug_struct("CertStore")
            .field("certificate", &self.certificate)
            .field("private_key", &self.private_key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

fn read_pair(
    certificate: &SecretRef,
    private_key: &SecretRef,
    env: &Environment,
) -> Result<CertifiedKey, TlsError> {
    let read = |which: &'static str, r: &SecretRef| {
        r.resolve(env).map_err(|e| TlsError::Read {
            which,
            cause: e.to_string(),
        })
    };
    let cert_pem = read("certificate", certificate)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.expose().as_bytes())
            .filter_map(Result::ok)
            .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key_pem = read("private_key", private_key)?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.expose().as_bytes()).map_err(|_| TlsError::NoKey)?;
    let signer = any_supported_type(&key).map_err(|e| TlsError::BadKey(e.to_string()))?;
    let pair = CertifiedKey::new(chain, signer);
    // A renewal that swapped only one of the two files must not be served.
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch),
        // The key type cannot say (no public key to compare): trust the pair.
        Err(_) => Ok(pair),
    }
}
