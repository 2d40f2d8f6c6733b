//! The Rust side of `ltls.c`: context settings turned into rustls configurations, and one TLS
//! connection driven over memory buffers. Nothing here touches Lua; every failure is a message
//! for the Lua glue to raise.

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme, SupportedCipherSuite,
};
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// OpenSSL's names of the TLS 1.2 suites rustls offers (TLS 1.3 suites go by their IANA name
/// in OpenSSL too).
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The names a suite answers to in `set_ciphers`: rustls's (`TLS13_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), IANA's for TLS 1.3 (`TLS_AES_128_GCM_SHA256`) and
/// OpenSSL's for TLS 1.2 (`ECDHE-RSA-AES128-GCM-SHA256`).
fn suite_matches(suite: &SupportedCipherSuite, name: &str) -> bool {
    let own = format!("{:?}", suite.suite());
    if own.eq_ignore_ascii_case(name) {
        return true;
    }
    if let Some(rest) = own.strip_prefix("TLS13_") {
        if name.eq_ignore_ascii_case(&format!("TLS_{rest}")) {
            return true;
        }
    }
    OPENSSL_NAMES
        .iter()
        .any(|(ossl, iana)| *iana == own && ossl.eq_ignore_ascii_case(name))
}

/// rustls's ring provider (TLS 1.2 and 1.3, the classic key exchanges). rustls marks it
/// deprecated for lacking post-quantum key exchange; its aws-lc-rs provider has that but
/// needs a much heavier native build.
#[allow(deprecated)]
fn base_provider() -> CryptoProvider {
    ring::default_provider()
}

/// The settings of one `newctx()` object, shared by every connection made from it.
#[derive(Default)]
pub struct Ctx {
    state: Mutex<CtxState>,
}

#[derive(Default)]
struct CtxState {
    suites: Option<Vec<SupportedCipherSuite>>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    roots: Option<Arc<RootCertStore>>,
    /// Built on first use, dropped when a setting changes.
    client: Option<Arc<ClientConfig>>,
    server: Option<Arc<ServerConfig>>,
}

impl CtxState {
    fn provider(&self) -> Arc<CryptoProvider> {
        let mut p = base_provider();
        if let Some(s) = &self.suites {
            p.cipher_suites = s.clone();
        }
        Arc::new(p)
    }

    fn changed(&mut self) {
        self.client = None;
        self.server = None;
    }
}

impl Ctx {
    /// `set_ciphers(list)`: keeps only the suites named in `list` (separated by `:`, `,` or
    /// spaces; unknown names are ignored, as OpenSSL does). At least one must be known.
    pub fn set_ciphers(&self, list: &str) -> Result<(), String> {
        let all = base_provider().cipher_suites;
        let names: Vec<&str> = list
            .split([':', ',', ' '])
            .filter(|n| !n.is_empty())
            .collect();
        let chosen: Vec<SupportedCipherSuite> = all
            .into_iter()
            .filter(|s| names.iter().any(|n| suite_matches(s, n)))
            .collect();
        if chosen.is_empty() {
            return Err(format!("set_ciphers: no supported cipher in {list:?}"));
        }
        let mut st = self.state.lock();
        st.suites = Some(chosen);
        st.changed();
        Ok(())
    }

    /// `set_cert(certfile, keyfile)`: the PEM certificate chain (end-entity first) and private
    /// key a server presents. The key must match the certificate.
    pub fn set_cert(&self, certfile: &str, keyfile: &str) -> Result<(), String> {
        let chain = CertificateDer::pem_file_iter(certfile)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("set_cert: cannot load certificate chain {certfile:?}: {e}"))?;
        if chain.is_empty() {
            return Err(format!(
                "set_cert: no certificate in certificate chain file {certfile:?}"
            ));
        }
        let key = PrivateKeyDer::from_pem_file(keyfile)
            .map_err(|e| format!("set_cert: cannot load private key {keyfile:?}: {e}"))?;
        let provider = base_provider();
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
            .map_err(|e| format!("set_cert: the private key does not fit the certificate ({e})"))?;
        let mut st = self.state.lock();
        st.cert = Some((chain, key));
        st.changed();
        Ok(())
    }

    /// `set_ca(cafile)` (not in upstream's API): client connections made from this context
    /// verify the server's certificate chain against the PEM certificates in `cafile`, and its
    /// name against the host name given to `newtls`/`set_ext_host_name`.
    pub fn set_ca(&self, cafile: &str) -> Result<(), String> {
        let certs = CertificateDer::pem_file_iter(cafile)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("set_ca: cannot load {cafile:?}: {e}"))?;
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("set_ca: no usable certificate in {cafile:?}"));
        }
        let mut st = self.state.lock();
        st.roots = Some(Arc::new(roots));
        st.changed();
        Ok(())
    }

    fn client_config(&self) -> Result<(Arc<ClientConfig>, bool), String> {
        let mut st = self.state.lock();
        let verifying = st.roots.is_some();
        if let Some(c) = &st.client {
            return Ok((c.clone(), verifying));
        }
        let provider = st.provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| format!("client context: {e}"))?;
        let config = match &st.roots {
            Some(roots) => {
                let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
                    .build()
                    .map_err(|e| format!("client context: {e}"))?;
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
        };
        let config = Arc::new(config);
        st.client = Some(config.clone());
        Ok((config, verifying))
    }

    fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let mut st = self.state.lock();
        if let Some(c) = &st.server {
            return Ok(c.clone());
        }
        let Some((chain, key)) = &st.cert else {
            return Err("no certificate on the context (call set_cert first)".to_string());
        };
        let config = ServerConfig::builder_with_provider(st.provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(chain.clone(), key.clone_key())
            })
            .map_err(|e| format!("server context: {e}"))?;
        let config = Arc::new(config);
        st.server = Some(config.clone());
        Ok(config)
    }
}

/// The client verifier of a context without `set_ca`: like OpenSSL's `SSL_VERIFY_NONE`, the
/// server's certificate is accepted whatever it is; the handshake signatures are still checked
/// against the key it presents.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// One `newtls()` object: a client or server connection, created at its first use so that a
/// host name set after `newtls` still goes into the ClientHello.
pub struct Session {
    ctx: Arc<Ctx>,
    server: bool,
    host: Option<String>,
    conn: Option<Connection>,
    /// Application data decrypted while handshaking, handed out by the next `read`.
    plain: Vec<u8>,
}

impl Session {
    pub fn new(ctx: Arc<Ctx>, server: bool, host: Option<String>) -> Session {
        Session {
            ctx,
            server,
            host,
            conn: None,
            plain: Vec::new(),
        }
    }

    /// `set_ext_host_name(host)`: the SNI name (and the name verified under `set_ca`); `None`
    /// sends none. Returns false for a name that cannot be sent. No effect once the connection
    /// has started.
    pub fn set_host(&mut self, host: Option<String>) -> bool {
        let ok = host
            .as_deref()
            .is_none_or(|h| ServerName::try_from(h).is_ok());
        if ok {
            self.host = host;
        }
        ok
    }

    fn conn(&mut self) -> Result<&mut Connection, String> {
        if self.conn.is_none() {
            let mut conn: Connection = if self.server {
                ServerConnection::new(self.ctx.server_config()?)
                    .map_err(|e| format!("server connection: {e}"))?
                    .into()
            } else {
                let (config, verifying) = self.ctx.client_config()?;
                let name = match self.host.as_deref() {
                    Some(h) => ServerName::try_from(h.to_owned())
                        .map_err(|e| format!("invalid host name {h:?}: {e}"))?,
                    None if verifying => {
                        return Err(
                            "set_ca: verifying the server needs its host name (newtls's third \
                             argument or set_ext_host_name)"
                                .to_string(),
                        )
                    }
                    // An address is never sent as SNI: this sends no name at all.
                    None => ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into()),
                };
                ClientConnection::new(config, name)
                    .map_err(|e| format!("client connection: {e}"))?
                    .into()
            };
            conn.set_buffer_limit(None);
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// `finished()`: the handshake is complete.
    pub fn finished(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_handshaking())
    }

    /// Feeds received TLS bytes, keeping decrypted application data in `self.plain`.
    fn feed(&mut self, mut data: &[u8], what: &str) -> Result<(), String> {
        // Taken out so that `self.conn` can be borrowed alongside.
        let mut plain = std::mem::take(&mut self.plain);
        let r = (|| {
            let conn = self.conn()?;
            loop {
                if !data.is_empty() {
                    conn.read_tls(&mut data)
                        .map_err(|e| format!("{what} error: {e}"))?;
                }
                conn.process_new_packets()
                    .map_err(|e| format!("{what} error: {e}"))?;
                let mut buf = [0u8; 4096];
                loop {
                    match conn.reader().read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => plain.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(format!("{what} error: {e}")),
                    }
                }
                if data.is_empty() {
                    return Ok(());
                }
            }
        })();
        self.plain = plain;
        r
    }

    /// The TLS bytes waiting to be sent.
    fn take_output(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        if let Some(conn) = self.conn.as_mut() {
            while conn.wants_write() {
                conn.write_tls(&mut out)
                    .map_err(|e| format!("TLS output error: {e}"))?;
            }
        }
        Ok(out)
    }

    /// `handshake(data)`: feeds the peer's handshake bytes (if any) and returns what to send
    /// back (`None` when nothing). An error once the handshake is finished.
    pub fn handshake(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if self.finished() {
            return Err("handshake is finished".to_string());
        }
        self.feed(data, "handshake")?;
        let out = self.take_output()?;
        Ok((!out.is_empty()).then_some(out))
    }

    /// `read(data)`: feeds received TLS bytes and returns the application data they carried
    /// (possibly empty).
    pub fn read(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.feed(data, "read")?;
        Ok(std::mem::take(&mut self.plain))
    }

    /// `write(data)`: encrypts `data` and returns every TLS byte waiting to be sent (an empty
    /// `data` just flushes what the handshake left).
    pub fn write(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let conn = self.conn()?;
        if !data.is_empty() {
            use std::io::Write;
            conn.writer()
                .write_all(data)
                .map_err(|e| format!("write error: {e}"))?;
        }
        self.take_output()
    }
}
