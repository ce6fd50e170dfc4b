//! Certificates made at test time (rcgen): a CA, servers and clients it
//! issues, and the rustls configurations that use them. No key file is
//! kept in the repository. And what a client that TLS turns away sees.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use ts_tcpip::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ts_tcpip::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use ts_tcpip::Error;

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
}

/// A certificate the CA issued, with its key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Identity {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("root");
        Arc::new(roots)
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration; with `clients`, client certificates from that
/// CA are required.
pub fn server_config(id: &Identity, clients: Option<&Ca>) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match clients {
        Some(ca) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(ca.roots(), provider())
                .build()
                .expect("verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    Arc::new(
        builder
            .with_single_cert(id.chain.clone(), id.key.clone_key())
            .expect("server config"),
    )
}

/// A client configuration trusting `ca`; with `id`, a client certificate.
pub fn client_config(ca: &Ca, id: Option<&Identity>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(ca.roots());
    Arc::new(match id {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .expect("client config"),
        None => builder.with_no_client_auth(),
    })
}

/// A directory of its own under the system's temporary directory, removed
/// on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("ts-tcpip-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory; returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `err` and every error under it, as one line: the reason of a failed
/// handshake is in a source, under the crate's error.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text += &format!(": {e}");
        source = e.source();
    }
    text
}

/// `err` is a client's handshake that failed on its own verdict: an I/O
/// error of kind InvalidData (what rustls's errors become) whose chain
/// holds `reason`.
#[track_caller]
pub fn assert_handshake_failed(err: &Error, reason: &str) {
    match err {
        Error::Io(e) if e.kind() == ErrorKind::InvalidData => {}
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    let text = chain(err);
    assert!(
        text.contains("TLS handshake") && text.contains(reason),
        "{text}"
    );
}

/// `err` is what a client sees, from its connect or its first read or
/// write, when a server asking for a client certificate turns it away.
/// With TLS 1.3 the client's side of the handshake can end before the
/// server's verdict, so the refusal comes as the server's alert
/// (InvalidData) or its close (a reset, an end of file) during the
/// client's handshake or at its first read, or as NotConnected once the
/// client's monitor has seen the close. Never a timeout.
#[track_caller]
pub fn assert_refused_by_mutual_tls(err: &Error) {
    let refusal = |kind: ErrorKind| {
        matches!(
            kind,
            ErrorKind::InvalidData | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        )
    };
    match err {
        Error::Io(e) if refusal(e.kind()) => assert!(chain(err).contains("TLS handshake"), "{err}"),
        Error::ConnectionLost(e) if refusal(e.kind()) => {}
        Error::IncompleteRead(e) if e.partial.is_empty() => {}
        Error::NotConnected => {}
        other => panic!("expected the server to refuse the client, got {other:?}"),
    }
}
