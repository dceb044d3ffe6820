//! TLS for the gRPC and HTTP check listeners (rustls): a server certificate, and
//! optionally client certificates verified against a CA (mTLS, so that only the mesh,
//! Envoy or the forward-auth proxy can ask).
//! The files are polled and, when any changes (cert-manager rotating a Secret), a new
//! server configuration is built and used for every connection accepted after that; a
//! broken set of files is refused and the previous one keeps serving.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use futures_util::{Stream, StreamExt};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, ServerConfig, server::WebPkiClientVerifier},
    server::TlsStream,
};
use tokio_stream::wrappers::ReceiverStream;

use super::connection::Guarded;
use crate::config::TlsFiles;

/// A TLS connection over a guarded TCP connection.
pub type TlsConnection = TlsStream<Guarded<TcpStream>>;

/// Why a TLS configuration could not be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The application protocol a TLS listener speaks (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    H2,
    /// The HTTP check listener: HTTP/1.1, or HTTP/2 where the proxy offers it.
    Http,
}

/// Builds the server configuration for `alpn`, client certificates required and verified
/// when a client CA is given.
pub fn server_config(files: &TlsFiles, alpn: Alpn) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|e| file_error(&files.cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert_file, e))?;
    if certs.is_empty() {
        return Err(file_error(
            &files.cert_file,
            "no PEM certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| file_error(&files.key_file, e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match &files.client_ca_file {
        None => builder.with_no_client_auth().with_single_cert(certs, key)?,
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca_file).map_err(|e| file_error(ca_file, e))?
            {
                roots
                    .add(cert.map_err(|e| file_error(ca_file, e))?)
                    .map_err(|e| file_error(ca_file, e))?;
            }
            if roots.is_empty() {
                return Err(file_error(ca_file, "no PEM certificate in the file"));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)?
        }
    };
    config.alpn_protocols = match alpn {
        Alpn::H2 => vec![b"h2".to_vec()],
        Alpn::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(Arc::new(config))
}

/// The current TLS configuration, replaced when the files change.
pub struct TlsState {
    files: TlsFiles,
    alpn: Alpn,
    current: ArcSwap<ServerConfig>,
}

impl TlsState {
    pub fn new(files: TlsFiles, alpn: Alpn) -> Result<Arc<TlsState>, TlsError> {
        let current = ArcSwap::new(server_config(&files, alpn)?);
        Ok(Arc::new(TlsState {
            files,
            alpn,
            current,
        }))
    }

    /// Yields each connection of `tcp` once its TLS handshake (with the configuration
    /// current when it arrived) has succeeded within `handshake_timeout`; handshakes run
    /// side by side, so a slow one never holds the others. Failed handshakes are logged
    /// and dropped; they never stop the listener.
    pub fn incoming(
        self: &Arc<Self>,
        tcp: impl Stream<Item = io::Result<Guarded<TcpStream>>> + Send + 'static,
        handshake_timeout: Duration,
    ) -> ReceiverStream<io::Result<TlsConnection>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let state = self.clone();
        tokio::spawn(async move {
            let mut tcp = std::pin::pin!(tcp);
            while let Some(accepted) = tcp.next().await {
                let Ok(connection) = accepted else { continue };
                if tx.is_closed() {
                    return;
                }
                let peer = connection.get_ref().peer_addr().ok();
                let acceptor = TlsAcceptor::from(state.current.load_full());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(connection)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::info!(?peer, error = %error, "TLS handshake failed")
                        }
                        Err(_) => tracing::info!(?peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }

    /// Polls the certificate files every `interval`; on a change, rebuilds and swaps the
    /// configuration (or keeps the old one when the new files do not work).
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut last = self.fingerprint();
        loop {
            tokio::time::sleep(interval).await;
            let now = self.fingerprint();
            if now == last {
                continue;
            }
            last = now;
            match server_config(&self.files, self.alpn) {
                Ok(config) => {
                    self.current.store(config);
                    tracing::info!("TLS certificates reloaded");
                }
                Err(error) => tracing::error!(
                    error = %error,
                    "TLS certificates changed but cannot be used; the previous ones keep serving"
                ),
            }
        }
    }

    /// The files' contents: a change in any (even one a symlink swap hides from mtimes)
    /// triggers a reload.
    fn fingerprint(&self) -> Vec<Option<Vec<u8>>> {
        let files: [Option<&PathBuf>; 3] = [
            Some(&self.files.cert_file),
            Some(&self.files.key_file),
            self.files.client_ca_file.as_ref(),
        ];
        files
            .iter()
            .map(|f| f.and_then(|path| std::fs::read(path).ok()))
            .collect()
    }
}
