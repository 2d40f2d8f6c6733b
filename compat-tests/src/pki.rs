//! Certificates made at test time for the mutual-TLS tests and benches: a CA, node identities
//! signed by it (valid for 127.0.0.1 and localhost), written as PEM files for a node's
//! `tls_cert` / `tls_key` / `tls_ca`, and rustls client configurations for test clients.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate authority of the test.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A node identity: certificate and key, PEM.
pub struct Identity {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("a CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let pem = p.self_signed(&key).expect("a CA certificate").pem();
        Ca {
            issuer: Issuer::new(p, key),
            pem,
        }
    }

    /// A node identity for 127.0.0.1 / localhost.
    pub fn identity(&self) -> Identity {
        let key = KeyPair::generate().expect("a node key");
        let p = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("node params");
        let cert = p.signed_by(&key, &self.issuer).expect("a node certificate");
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes a fresh identity and this CA into `dir`; the config lines for `tls_cert`,
    /// `tls_key` and `tls_ca`.
    pub fn node_files(&self, dir: &Path, tag: &str) -> String {
        std::fs::create_dir_all(dir).expect("pki dir");
        let id = self.identity();
        let w = |name: String, text: &str| -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write pem");
            p
        };
        let cert = w(format!("{tag}-cert.pem"), &id.cert);
        let key = w(format!("{tag}-key.pem"), &id.key);
        let ca = w(format!("{tag}-ca.pem"), &self.pem);
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\ntls_ca = {:?}\n",
            cert.display().to_string(),
            key.display().to_string(),
            ca.display().to_string()
        )
    }

    /// A rustls client trusting this CA, presenting `identity` (none: no client certificate).
    pub fn client_config(&self, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).expect("CA pem"))
            .expect("CA accepted");
        // ring: the provider this project builds (no aws-lc build).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots);
        Arc::new(match identity {
            Some(id) => b
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(id.cert.as_bytes()).expect("cert pem")],
                    PrivateKeyDer::from_pem_slice(id.key.as_bytes()).expect("key pem"),
                )
                .expect("client identity"),
            None => b.with_no_client_auth(),
        })
    }
}

/// A blocking TLS client stream to 127.0.0.1.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects a TLS client (configured by [`Ca::client_config`]) to `sock`'s peer, verifying the
/// server as 127.0.0.1; the handshake runs on first use.
pub fn tls_client(cfg: Arc<rustls::ClientConfig>, sock: TcpStream) -> TlsStream {
    let conn = rustls::ClientConnection::new(cfg, ServerName::try_from("127.0.0.1").unwrap())
        .expect("a client connection");
    rustls::StreamOwned::new(conn, sock)
}
