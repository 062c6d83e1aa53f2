//! TLS to PostgreSQL. `sslmode=require` (or libpq's `verify-ca` / `verify-full`) in the
//! URL turns it on, and then the server's certificate chain and host name are always
//! verified, against the system trust store or the `sslrootcert=PATH` bundle. Any
//! other mode connects in plain TCP, as before: a TLS connection that does not verify
//! the server would protect the password from nobody in the middle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// A connection URL with the TLS parameters tokio-postgres does not know taken out.
#[derive(Debug)]
pub struct TlsUrl {
    /// What tokio-postgres parses: `sslrootcert` removed, `verify-*` as `require`.
    pub url: String,
    /// `sslrootcert`: the CA bundle to trust instead of the system store.
    pub root_cert: Option<PathBuf>,
}

fn bad(reason: impl Into<String>) -> StoreError {
    StoreError::Open {
        path: "database.url".into(),
        reason: reason.into(),
    }
}

/// Splits the URL's TLS parameters from the rest. Never puts the URL in an error.
pub fn split(url: &str) -> Result<TlsUrl, StoreError> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not URL-shaped (a key=value string): tokio-postgres parses it as it is.
        return Ok(TlsUrl {
            url: url.to_owned(),
            root_cert: None,
        });
    };
    let mut root_cert = None;
    let mut mode = None;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
            "sslmode" => {
                mode = Some(v.to_string());
                let v = if v == "verify-ca" || v == "verify-full" {
                    "require".into()
                } else {
                    v
                };
                rest.push((k.into_owned(), v.into_owned()));
            }
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    let verifying = matches!(
        mode.as_deref(),
        Some("require" | "verify-ca" | "verify-full")
    );
    if root_cert.is_some() && !verifying {
        return Err(bad(
            "sslrootcert is only used with sslmode=require (or verify-full): add it, or remove sslrootcert",
        ));
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok(TlsUrl {
        url: parsed.into(),
        root_cert,
    })
}

/// A rustls connector on ring that verifies the server against `root_cert` (a PEM
/// bundle) or, without one, the system trust store.
pub fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?;
    let config = match root_cert {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(bad(format!(
                    "sslrootcert {}: no PEM certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| bad(format!("TLS trust store: {e}")))?
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// How the pool connects: `NoTls` unless the URL requires TLS.
#[derive(Clone)]
pub enum Connect {
    Plain(NoTls),
    Tls(MakeRustlsConnect),
}

impl Connect {
    /// The connector for a parsed config whose URL came through [`split`].
    pub fn for_config(
        cfg: &tokio_postgres::Config,
        root_cert: Option<&Path>,
    ) -> Result<Connect, StoreError> {
        Ok(match cfg.get_ssl_mode() {
            SslMode::Require => Connect::Tls(connector(root_cert)?),
            _ => Connect::Plain(NoTls),
        })
    }
}

/// One connection outside the pool (the `migrate` copy), with the same TLS rules.
/// Its connection task runs until the client is dropped.
pub async fn connect_once(url: &str) -> Result<Client, StoreError> {
    let tls = split(url)?;
    let cfg: tokio_postgres::Config = tls
        .url
        .parse()
        .map_err(|e| bad(format!("not a PostgreSQL connection URL: {e}")))?;
    let location = super::location(&cfg);
    let open_error = |e: tokio_postgres::Error| StoreError::Open {
        path: location.clone(),
        reason: super::error_text(&e),
    };
    match Connect::for_config(&cfg, tls.root_cert.as_deref())? {
        Connect::Plain(t) => {
            let (client, conn) = cfg.connect(t).await.map_err(open_error)?;
            tokio::spawn(conn);
            Ok(client)
        }
        Connect::Tls(t) => {
            let (client, conn) = cfg.connect(t).await.map_err(open_error)?;
            tokio::spawn(conn);
            Ok(client)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_verify_modes_become_require() {
        let t = split("postgres://u:p@db:5432/scim?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x")
            .unwrap();
        assert_eq!(
            t.url,
            "postgres://u:p@db:5432/scim?sslmode=require&application_name=x"
        );
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let plain = split("postgres://db/scim").unwrap();
        assert_eq!(plain.url, "postgres://db/scim");
        assert!(plain.root_cert.is_none());
    }

    #[test]
    fn a_root_cert_without_a_verifying_mode_is_refused_without_the_url() {
        let e = split("postgres://u:secret@db/scim?sslrootcert=/ca.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=require"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_bundle_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = connector(Some(&dir.path().join("nope.pem"))).err().unwrap();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector(Some(&empty)).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
