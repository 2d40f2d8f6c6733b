//! `ltls.c` (TLS on rustls) in a running node: our Lua service `t_tls` serves HTTPS over
//! skynet.socketdriver the way lualib's `http.tlshelper` drives the TLS objects, and requests
//! itself (with and without server verification). This test adds clients of its own over
//! 127.0.0.1: a rustls client with its own socket, and `curl` (OpenSSL; skipped where it is not
//! installed, except under `make test`).
//! Certificates are made here with rcgen for each run.
//!
//! With upstream's Lua tree in env `SKYNET_UPSTREAM` (skipped without it), lualib's own
//! `http.httpc` (https://), `http.httpd` behind `http.tlshelper`, and `http.websocket` with
//! `wss://`, in one node started by upstream's bootstrap with `enablessl = true`.

use compat_tests::{repo_root, spawn_lua_with, Node, Running};
use rustls::pki_types::pem::PemObject;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A CA, and a certificate for "localhost" (and 127.0.0.1) signed by it, as PEM files in a
/// fresh directory.
struct Certs {
    dir: PathBuf,
    ca_der: Vec<u8>,
}

impl Certs {
    fn new(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("skynet-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = compat_tests::pki::Ca::new("skynet-rs test CA");
        let id = ca.identity();
        std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.join("cert.pem"), &id.cert).unwrap();
        std::fs::write(dir.join("key.pem"), &id.key).unwrap();
        let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes())
            .unwrap()
            .to_vec();
        Certs { dir, ca_der }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Config lines naming the files (keys certfile, keyfile as lualib reads them; cafile).
    fn config(&self) -> String {
        format!(
            "certfile = {:?}\nkeyfile = {:?}\ncafile = {:?}\n",
            self.file("cert.pem"),
            self.file("key.pem"),
            self.file("ca.pem")
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTPS GET to 127.0.0.1:`port` with a rustls client that verifies the server against
/// `ca_der` for "localhost"; returns the whole response.
fn rustls_get(port: u16, ca_der: &[u8], path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    #[allow(deprecated)] // the ring provider, as the node uses
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = compat_tests::connect_loopback(port, Duration::from_secs(10));
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = Vec::new();
    // The server closes without close_notify: an unexpected EOF ends the response too.
    match stream.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the response of {path}: {e}"),
    }
    String::from_utf8(out).unwrap()
}

fn finish(run: Running) -> compat_tests::Output {
    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out
}

#[test]
fn https_server_and_client_over_socketdriver() {
    let certs = Certs::new("lua");
    let run = spawn_lua_with("t_tls", &certs.config());
    let port = compat_tests::listen_port(&run, TIMEOUT);
    let mut w = run.watch();
    w.expect("] SELF DONE", TIMEOUT);

    let resp = rustls_get(port, &certs.ca_der, "/rust");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nhello /rust"), "{resp}");

    // OpenSSL's side of the wire, where curl is installed.
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(certs.file("ca.pem"))
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(format!("https://localhost:{port}/curl"))
        .output();
    match curl {
        Ok(o) => {
            let body = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success() && body == "hello /curl",
                "curl: {} {body:?} {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Err(e) => compat_tests::skip_missing(format_args!("the curl part needs curl ({e})")),
    }

    // Not TLS at all: the server's handshake fails, it logs it and serves on.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    w.expect("] TLS_ERROR ", TIMEOUT);
    drop(raw);

    let resp = rustls_get(port, &certs.ca_der, "/quit");
    assert!(resp.ends_with("\r\n\r\nbye"), "{resp}");
    drop(w);
    let out = finish(run);
    out.assert_checks(&[
        "https_get_status",
        "https_get_body",
        "https_verified_status",
        "https_verified_big_body",
        "https_verify_wrong_name",
        "https_after_failure",
    ]);
}

/// An `openssl s_server -www` on 127.0.0.1 (killed on drop), and its stdout (kept open: it
/// writes there after each connection).
struct OpensslServer {
    child: std::process::Child,
    _stdout: ChildOut,
}

type ChildOut = std::io::Lines<BufReader<std::process::ChildStdout>>;

impl OpensslServer {
    /// Started with `args` on a free port, or None (a skip) where the `openssl` command is
    /// missing. A port found free can be taken by another test before openssl binds it: then
    /// openssl exits without listening, and a few other ports are tried.
    fn start(certs: &Certs, args: &[&str]) -> Option<(OpensslServer, u16)> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = compat_tests::free_port();
            // Its errors go to a file: a pipe nobody reads could fill up and stall it.
            let err_path = certs.file(&format!("s_server-{port}.err"));
            let err_file = std::fs::File::create(&err_path).expect("create the stderr file");
            let child = Command::new("openssl")
                .args(["s_server", "-www", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(certs.file("cert.pem"))
                .arg("-key")
                .arg(certs.file("key.pem"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(err_file)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => {
                    compat_tests::skip_missing(format_args!("this test needs openssl ({e})"));
                    return None;
                }
            };
            // It prints ACCEPT once it listens; its stdout ends if it exits instead.
            let out = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(out).lines();
            let ready = lines.any(|l| l.is_ok_and(|l| l.contains("ACCEPT")));
            if ready {
                let server = OpensslServer {
                    child,
                    _stdout: lines,
                };
                return Some((server, port));
            }
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            last_error = format!("port {port}: {}", err.trim());
        }
        panic!("openssl s_server did not start ({last_error})");
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ltls.c's client against OpenSSL's server (TLS 1.3 and TLS 1.2), verifying it with
/// `set_ca`: our `t_tls` GETs "/" from `openssl s_server -www` before its own checks end.
#[test]
fn https_client_against_openssl_server() {
    let certs = Certs::new("openssl");
    let Some((_s13, p13)) = OpensslServer::start(&certs, &["-tls1_3"]) else {
        return;
    };
    let Some((_s12, p12)) = OpensslServer::start(&certs, &["-tls1_2"]) else {
        return;
    };
    let config = format!("{}tls_peer_ports = \"{p13},{p12}\"\n", certs.config());
    let run = spawn_lua_with("t_tls", &config);
    let port = compat_tests::listen_port(&run, TIMEOUT);
    run.watch().expect("] SELF DONE", TIMEOUT);
    let resp = rustls_get(port, &certs.ca_der, "/quit");
    assert!(resp.ends_with("\r\n\r\nbye"), "{resp}");
    let out = finish(run);
    out.assert_checks(&["https_get_body", "peer_server_1", "peer_server_2"]);
}

/// Upstream's Lua tree from env `SKYNET_UPSTREAM`, or None (the test is skipped).
fn upstream_tree() -> Option<PathBuf> {
    let Some(root) = std::env::var_os("SKYNET_UPSTREAM") else {
        eprintln!("SKIP: set SKYNET_UPSTREAM to a skynet checkout (its Lua tree)");
        return None;
    };
    Some(
        Path::new(&root)
            .canonicalize()
            .expect("SKYNET_UPSTREAM exists"),
    )
}

/// lualib's HTTPS and WSS stacks unchanged (our service `t_https_main` in
/// compat-tests/lua/upstream drives them): `http.httpc.get("https://...")` against an
/// `http.httpd` server behind `http.tlshelper`, by address and by name, and a `wss://`
/// echo through `http.websocket`.
#[test]
fn upstream_httpc_https_and_websocket_wss() {
    let Some(root) = upstream_tree() else { return };
    let certs = Certs::new("upstream");
    let ours = repo_root().join("compat-tests/lua/upstream");
    let extra = format!(
        "root = {:?}\nstart = \"t_https_main\"\nenablessl = \"true\"\n{}\
         lualoader = root..\"lualib/loader.lua\"\n\
         lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
         lua_cpath = root..\"luaclib/?.so\"\n\
         luaservice = root..\"service/?.lua;{}/?.lua\"\n",
        format!("{}/", root.display()),
        certs.config(),
        ours.display()
    );
    let out = Node::run(&extra, "snlua bootstrap", TIMEOUT);
    assert!(!out.timed_out, "{out}");
    out.assert_checks(&[
        "httpc_https_by_address",
        "httpc_https_by_name",
        "httpc_https_post",
        "wss_echo",
        "wss_close",
    ]);
}
