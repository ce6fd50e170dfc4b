//! TLS for the ends (feature `tls`): the configurations a server and a
//! client are given, the PEM conveniences, and the handshake that turns a
//! TCP stream into a connection.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::link::connection::Connection;
use crate::link::socket::Wake;
use crate::link::tls;

/// A server's TLS: a rustls configuration, or PEM files to make one from
/// when the server starts.
pub(crate) enum ServerTls {
    Config(Arc<ServerConfig>),
    Pem {
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    },
}

impl ServerTls {
    /// The configuration, loading PEM files now (so that `start()` fails
    /// early on a missing or bad file).
    pub(crate) fn resolve(self) -> Result<Arc<ServerConfig>> {
        match self {
            ServerTls::Config(config) => Ok(config),
            ServerTls::Pem {
                cert,
                key,
                client_ca,
            } => server_config_from_pem(&cert, &key, client_ca.as_deref()),
        }
    }
}

/// A client's TLS: a configuration and the name to verify the server for.
pub(crate) struct ClientTls {
    pub(crate) config: ClientTlsConfig,
    /// None: the host the client connects to.
    pub(crate) server_name: Option<String>,
}

pub(crate) enum ClientTlsConfig {
    Config(Arc<ClientConfig>),
    Pem {
        ca: PathBuf,
        identity: Option<(PathBuf, PathBuf)>,
    },
}

/// What a client needs to start each handshake, resolved once.
pub(crate) struct ClientTlsReady {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl ClientTls {
    /// The configuration and server name, checked before any socket exists.
    pub(crate) fn resolve(self, host: &str) -> Result<ClientTlsReady> {
        let config = match self.config {
            ClientTlsConfig::Config(config) => config,
            ClientTlsConfig::Pem { ca, identity } => client_config_from_pem(
                &ca,
                identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )?,
        };
        let name = self.server_name.unwrap_or_else(|| host.to_owned());
        let name = ServerName::try_from(name.clone())
            .map_err(|e| Error::invalid_argument(format!("TLS server name {name:?}: {e}")))?;
        Ok(ClientTlsReady { config, name })
    }
}

impl ClientTlsReady {
    /// The client's handshake on a connected stream, within `timeout`;
    /// `wake` (the client's close) ends it at once.
    pub(crate) fn connect(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        timeout: Duration,
        wake: Option<&Wake>,
    ) -> Result<Connection> {
        let session = rustls::ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| Error::invalid_argument(format!("TLS client: {e}")))?;
        let deadline = Deadline::after(Some(timeout));
        let tls = tls::handshake(stream, session.into(), deadline, wake, None)
            .map_err(|(e, _)| Error::at_address("complete the TLS handshake with", peer, e))?;
        Ok(Connection::new(tls, peer))
    }
}

/// The server's handshake with an accepted stream, within `timeout`;
/// `wake` ends it at once, and `received` goes up when the client first
/// sends a byte. On failure the error and the stream, for the caller to
/// count and drop.
pub(crate) fn accept(
    config: &Arc<ServerConfig>,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    wake: &Wake,
    received: &AtomicBool,
) -> std::result::Result<Connection, (std::io::Error, TcpStream)> {
    let session = match rustls::ServerConnection::new(config.clone()) {
        Ok(session) => session,
        Err(e) => {
            return Err((
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                stream,
            ))
        }
    };
    let deadline = Deadline::after(Some(timeout));
    let tls = tls::handshake(stream, session.into(), deadline, Some(wake), Some(received))?;
    Ok(Connection::new(tls, peer))
}

/// The ring provider, named: a program may have more than one provider
/// compiled in, and then rustls will not pick one by itself.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid_argument(format!("{what} {}: {e}", path.display()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("cannot read certificates from", path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error("bad certificate in", path, e))?;
    if certs.is_empty() {
        return Err(pem_error("no certificate in", path, "empty"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| pem_error("cannot read a private key from", path, e))
}

fn roots(path: &Path) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error("bad CA certificate in", path, e))?;
    }
    Ok(Arc::new(roots))
}

/// A server configuration from PEM files: its certificate chain and key,
/// and with `client_ca`, client certificates required and verified
/// against that CA (mutual TLS).
///
/// ```no_run
/// # use std::path::Path;
/// let config = ts_tcpip::tls::server_config_from_pem(
///     Path::new("server.pem"),
///     Path::new("server.key"),
///     Some(Path::new("clients-ca.pem")),
/// )?;
/// let server = ts_tcpip::OneClientServer::builder().tls(config).start()?;
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
pub fn server_config_from_pem(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_argument(format!("TLS: {e}")))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                .build()
                .map_err(|e| pem_error("cannot verify clients with", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certificates(cert)?, private_key(key)?)
        .map_err(|e| pem_error("certificate and key do not go together:", cert, e))?;
    Ok(Arc::new(config))
}

/// A client configuration from PEM files: the CA to verify the server
/// against, and with `identity` (certificate chain, key) a client
/// certificate for a server that asks for one.
pub fn client_config_from_pem(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_argument(format!("TLS: {e}")))?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|e| pem_error("client certificate and key do not go together:", cert, e))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
