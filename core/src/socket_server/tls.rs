//! The TLS policy: which listeners accept mutual-TLS connections, which outgoing connections
//! are TLS clients, and the identity and CA both sides use (TLS 1.3 only, via rustls).
//!
//! Services never see TLS: the socket thread runs the handshake and the record layer with
//! rustls's non-blocking calls and delivers plaintext. An accepted TLS connection is announced
//! (ACCEPT) only once its handshake succeeded; a failed handshake closes it with one log line.
//! An outgoing TLS connection reports CONNECT once its handshake succeeded, ERROR otherwise.

use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `host:port` or `:port` entry of `tls_listen` / `tls_connect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `None`: any host.
    pub host: Option<String>,
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port`, `:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text}: expected host:port or :port"))?;
        let port: u16 = port.parse().map_err(|_| format!("{text}: invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Endpoint {
            host: (!host.is_empty()).then(|| host.to_owned()),
            port,
        })
    }

    fn parse_list(text: &str) -> Result<Vec<Endpoint>, String> {
        text.split_whitespace().map(Endpoint::parse).collect()
    }

    /// True if `host` (as given, or the IP it names) and `port` are this entry's.
    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        if self.port != port {
            return false;
        }
        let Some(mine) = &self.host else {
            return true;
        };
        if mine.eq_ignore_ascii_case(host) {
            return true;
        }
        match (mine.parse::<IpAddr>(), ip.or_else(|| host.parse().ok())) {
            (Ok(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// Where the policy's files are and which endpoints it covers (config keys `tls_cert`,
/// `tls_key`, `tls_ca`, `tls_listen`, `tls_connect`), and how long a handshake may take
/// (`tls_handshake_timeout`).
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub ca: Option<String>,
    pub listen: String,
    pub connect: String,
    /// Seconds a handshake may take before the connection is closed; 0: no limit.
    pub handshake_timeout: u64,
}

/// The loaded policy: rustls configurations for both sides and the endpoints they cover.
pub struct TlsPolicy {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    listen: Vec<Endpoint>,
    connect: Vec<Endpoint>,
    handshake_timeout: Option<Duration>,
}

impl std::fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPolicy")
            .field("listen", &self.listen)
            .field("connect", &self.connect)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

fn read_certs(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key}: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: {path}: no certificate in the file"));
    }
    Ok(certs)
}

impl TlsPolicy {
    /// Reads the files: `None` when no key is set; an error (naming the config key and the
    /// file) for a missing key, an unreadable file or one rustls refuses.
    pub fn load(files: &TlsFiles) -> Result<Option<TlsPolicy>, String> {
        let any_endpoint = !files.listen.trim().is_empty() || !files.connect.trim().is_empty();
        if !any_endpoint && files.cert.is_none() && files.key.is_none() && files.ca.is_none() {
            return Ok(None);
        }
        let need = |key: &str, v: &Option<String>| {
            v.clone()
                .ok_or_else(|| format!("{key}: missing (needed by the TLS policy)"))
        };
        let cert_path = need("tls_cert", &files.cert)?;
        let key_path = need("tls_key", &files.key)?;
        let ca_path = need("tls_ca", &files.ca)?;
        let listen = Endpoint::parse_list(&files.listen).map_err(|e| format!("tls_listen: {e}"))?;
        let connect =
            Endpoint::parse_list(&files.connect).map_err(|e| format!("tls_connect: {e}"))?;
        let certs = read_certs("tls_cert", &cert_path)?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| format!("tls_key: {key_path}: {e}"))?;
        let mut roots = RootCertStore::empty();
        for ca in read_certs("tls_ca", &ca_path)? {
            roots
                .add(ca)
                .map_err(|e| format!("tls_ca: {ca_path}: {e}"))?;
        }
        let roots = Arc::new(roots);
        // ring: no C/cmake build of aws-lc needed. Its provider lacks the post-quantum key
        // exchange (X25519MLKEM768), which is why rustls marks it deprecated.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("tls_ca: {ca_path}: {e}"))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("tls_cert: {cert_path}: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("tls_key: {key_path}: {e}"))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("tls_cert: {cert_path}: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("tls_key: {key_path}: {e}"))?;
        Ok(Some(TlsPolicy {
            server: Arc::new(server),
            client: Arc::new(client),
            listen,
            connect,
            handshake_timeout: (files.handshake_timeout > 0)
                .then(|| Duration::from_secs(files.handshake_timeout)),
        }))
    }

    /// How long a handshake may take (`None`: for ever).
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// Whether a listener asked for as `host:port` and bound to `bound` accepts TLS: an entry
    /// of its port whose host is unset, names the host or the bound IP, or any host when the
    /// listener is bound to every address (it takes connections to that host too).
    pub fn listens(&self, host: Option<&str>, bound: SocketAddr) -> bool {
        let host = host.unwrap_or("");
        self.listen.iter().any(|e| {
            e.port == bound.port()
                && (e.host.is_none()
                    || bound.ip().is_unspecified()
                    || e.matches(host, Some(bound.ip()), bound.port()))
        })
    }

    /// The name to verify the server against if a connection to `host:port` is a TLS one.
    pub fn connects(&self, host: &str, port: i32) -> Option<ServerName<'static>> {
        let port = u16::try_from(port).ok()?;
        if !self.connect.iter().any(|e| e.matches(host, None, port)) {
            return None;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).ok()
    }

    pub(super) fn server_conn(&self) -> Result<Connection, String> {
        rustls::ServerConnection::new(self.server.clone())
            .map(Connection::Server)
            .map_err(|e| e.to_string())
    }

    pub(super) fn client_conn(&self, name: ServerName<'static>) -> Result<Connection, String> {
        ClientConnection::new(self.client.clone(), name)
            .map(Connection::Client)
            .map_err(|e| e.to_string())
    }
}

/// The room rustls gives each socket read (at least).
const TLS_READ_SIZE: usize = 4096;

/// A connection's TLS side, held by its socket. The rustls connection is shared with the
/// slot table: a caller's thread may encrypt and write a send at once (the direct write),
/// under its lock, while the socket is idle; every record leaves under that lock, in order.
pub(super) struct TlsState {
    pub(super) conn: Arc<Mutex<Connection>>,
    /// `ip:port` of the peer, for log lines.
    pub(super) peer: String,
    /// Outgoing: the TCP connection is up (the handshake runs).
    pub(super) tcp_up: bool,
    /// Accepted: the listener (id, owner) to tell once the handshake succeeded.
    pub(super) accepted_by: Option<(i32, u32)>,
    /// When the handshake times out (set once it runs, if the policy limits it).
    pub(super) deadline: Option<Instant>,
}

/// Writes the records `conn` holds: Ok(true) once all are out, Ok(false) if the socket would
/// block.
pub(super) fn flush_records(conn: &mut Connection, stream: &TcpStream) -> io::Result<bool> {
    let mut wr = stream;
    while conn.wants_write() {
        match conn.write_tls(&mut wr) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Hands plaintext to rustls and writes what it can: how many bytes rustls took (0 while
/// older records wait for the socket).
pub(super) fn write_plain(
    conn: &mut Connection,
    stream: &TcpStream,
    buf: &[u8],
) -> io::Result<usize> {
    if buf.is_empty() || !flush_records(conn, stream)? {
        return Ok(0);
    }
    let n = conn.writer().write(buf)?;
    flush_records(conn, stream)?;
    Ok(n)
}

impl TlsState {
    pub(super) fn new(conn: Connection, peer: String) -> TlsState {
        TlsState {
            conn: Arc::new(Mutex::new(conn)),
            peer,
            tcp_up: false,
            accepted_by: None,
            deadline: None,
        }
    }

    pub(super) fn handshaking(&self) -> bool {
        self.conn.lock().is_handshaking()
    }

    /// Records wait to be written.
    pub(super) fn wants_write(&self) -> bool {
        self.conn.lock().wants_write()
    }

    /// Reads what the peer sent and lets rustls process it: whether the peer closed (end of
    /// stream or close_notify) and how many decrypted bytes are ready; Err with the reason on a
    /// TLS or I/O failure.
    pub(super) fn pump_in(&mut self, stream: &TcpStream) -> Result<(bool, usize), String> {
        let mut rd = stream;
        let mut conn = self.conn.lock();
        let mut eof = false;
        // Bounded: level-triggered polling brings us back for the rest.
        for _ in 0..16 {
            if !conn.wants_read() {
                break;
            }
            match conn.read_tls(&mut rd) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    conn.process_new_packets().map_err(|e| e.to_string())?;
                    // rustls offers at least this much room: a shorter read emptied the
                    // socket (no need for a read that would block).
                    if n < TLS_READ_SIZE {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(super::address::strerror(&e)),
            }
        }
        let st = conn.process_new_packets().map_err(|e| e.to_string())?;
        Ok((eof || st.peer_has_closed(), st.plaintext_bytes_to_read()))
    }

    /// See [`flush_records`].
    pub(super) fn flush(&mut self, stream: &TcpStream) -> io::Result<bool> {
        flush_records(&mut self.conn.lock(), stream)
    }

    /// See [`write_plain`].
    pub(super) fn write(&mut self, stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
        write_plain(&mut self.conn.lock(), stream, buf)
    }

    /// Decrypted bytes into `buf`: `Ok(None)` when none are ready, `Ok(Some(0))` at the
    /// peer's end of stream.
    pub(super) fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.lock().reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }
}
