//! The HTTPS listener's certificate: read from PEM files, and read again when the files change
//! (certbot and friends replace them every few weeks) without a restart. A renewal that cannot
//! be loaded (half-written, key not matching) keeps the previous certificate serving and says
//! so in the log.

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What identifies one version of the files: both modification times and sizes.
type Stamp = [(Option<SystemTime>, u64); 2];

/// The certificate chain and key files, and the TLS configuration made from them.
pub struct CertificateFiles {
    certificate: PathBuf,
    private_key: PathBuf,
    current: Mutex<(Stamp, Arc<ServerConfig>)>,
}

impl CertificateFiles {
    /// Loads the files now; a failure here stops the server from starting.
    pub fn load(certificate: &Path, private_key: &Path) -> anyhow::Result<CertificateFiles> {
        let stamp = stamp(certificate, private_key);
        let config = server_config(certificate, private_key)?;
        Ok(CertificateFiles {
            certificate: certificate.to_path_buf(),
            private_key: private_key.to_path_buf(),
            current: Mutex::new((stamp, config)),
        })
    }

    /// The configuration for a new connection: reloaded first when the files changed (two
    /// `stat`s per connection, far below the cost of a handshake).
    pub fn config(&self) -> Arc<ServerConfig> {
        let now = stamp(&self.certificate, &self.private_key);
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 != now {
            match server_config(&self.certificate, &self.private_key) {
                Ok(config) => {
                    tracing::info!(certificate = %self.certificate.display(), "TLS certificate reloaded");
                    *current = (now, config);
                }
                Err(error) => {
                    // remember the stamp so that a broken renewal is reported once, not per
                    // connection; the next change of the files is tried again
                    tracing::warn!(
                        certificate = %self.certificate.display(),
                        "TLS certificate changed but cannot be used, keeping the previous one: {error:#}"
                    );
                    current.0 = now;
                }
            }
        }
        current.1.clone()
    }
}

fn stamp(certificate: &Path, private_key: &Path) -> Stamp {
    let of = |path: &Path| match std::fs::metadata(path) {
        Ok(metadata) => (metadata.modified().ok(), metadata.len()),
        Err(_) => (None, 0),
    };
    [of(certificate), of(private_key)]
}

fn server_config(certificate: &Path, private_key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate chain {}", certificate.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", certificate.display());
    let key = PrivateKeyDer::from_pem_file(private_key)
        .with_context(|| format!("reading private key {}", private_key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!("{} does not match {}", private_key.display(), certificate.display())
        })?;
    // phones speak HTTP/1.1; Envoy and modern clients may prefer h2
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
