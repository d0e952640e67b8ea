//! TLS for IMAP: none, STARTTLS (RFC 9051 §6.2.1) or implicit TLS on its own port (RFC 8314),
//! with rustls on the ring provider that the host already links for wasi-http.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::ImapError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text: only for loopback or a trusted network.
    None,
    /// Plain connect, then STARTTLS before LOGIN (port 143).
    StartTls,
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
}

#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// PEM file of the CAs to trust instead of the public web roots (a private CA), or of the
    /// server's own self-signed certificate (then pinned: exactly that certificate is accepted).
    pub ca_file: Option<PathBuf>,
    /// The name to verify the certificate against, when it differs from the host to connect to
    /// (e.g. connecting by IP address).
    pub server_name: Option<String>,
}

/// What a session needs to start TLS; built once per endpoint, since loading the roots costs
/// more than a handshake.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsClient {
    pub fn new(settings: &TlsSettings, host: &str) -> Result<Self, ImapError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| ImapError::Tls(error.to_string()))?;
        let config = match &settings.ca_file {
            Some(path) => {
                let certificates = read_pem_certificates(path)?;
                let mut roots = rustls::RootCertStore::empty();
                for certificate in &certificates {
                    roots.add(certificate.clone()).map_err(|error| {
                        ImapError::Tls(format!("CA file {}: {error}", path.display()))
                    })?;
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|error| {
                        ImapError::Tls(format!("CA file {}: {error}", path.display()))
                    })?;
                let verifier = PinnedOrCaVerifier { pinned: certificates, webpki };
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
            }
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                builder.with_root_certificates(roots)
            }
        }
        .with_no_client_auth();
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|error| ImapError::Tls(format!("server name {name:?}: {error}")))?;
        Ok(Self { connector: TlsConnector::from(Arc::new(config)), server_name })
    }

    pub async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ImapError> {
        self.connector.connect(self.server_name.clone(), tcp).await.map_err(|error| {
            // a certificate or protocol problem is a configuration matter; a dropped
            // connection during the handshake is the server being unavailable
            let is_tls_error = error
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if is_tls_error {
                ImapError::Tls(format!("handshake: {error}"))
            } else {
                ImapError::io("TLS handshake", &error)
            }
        })
    }
}

fn read_pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, ImapError> {
    let bad = |error: &dyn std::fmt::Display| {
        ImapError::Tls(format!("reading CA file {}: {error}", path.display()))
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| bad(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad(&error))?;
    if certificates.is_empty() {
        return Err(bad(&"no certificate in it"));
    }
    Ok(certificates)
}

/// Trusts the configured file's certificates as CAs, and also as exact server certificates:
/// small servers run self-signed certificates that carry `CA:TRUE` (openssl's default), which
/// WebPKI refuses as a server certificate (`CaUsedAsEndEntity`). Presenting exactly the
/// configured certificate is pinning, at least as strong as a CA check; handshake signatures
/// are verified either way.
#[derive(Debug)]
struct PinnedOrCaVerifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for PinnedOrCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.iter().any(|pinned| pinned.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
