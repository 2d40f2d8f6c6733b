//! Mutual TLS between nodes (config keys `tls_cert`, `tls_key`, `tls_ca`, `tls_listen`,
//! `tls_connect`) with certificates made at test time, and `cluster_strict`. Every wait is
//! bounded; loopback only.
//!
//! With a skynet checkout in env `SKYNET_UPSTREAM` the ignored tests run upstream's unchanged
//! cluster example (cluster1/cluster2) and harbor test (cmaster/cslave, testharborlink) over
//! mutual TLS between two of our nodes:
//! `SKYNET_UPSTREAM=path cargo test --release -p compat-tests --test tls_links -- --ignored`.

use compat_tests::pki::{tls_client, Ca};
use compat_tests::{spawn_lua_with, Node, Output};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skynet-tls-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback relay to `port` recording every byte it forwards, both ways, of every
/// connection it accepts.
fn relay(port: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let rport = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    thread::spawn(move || {
        for a in l.incoming() {
            let Ok(a) = a else { return };
            let Ok(b) = TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
                let rec = rec.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        rec.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (rport, seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn cluster_ok(out: &Output) {
    out.assert_clean_exit();
    out.assert_checks(compat_tests::CLUSTER_CHECKS);
    out.assert_no_line_containing("UNEXPECTED");
    out.assert_no_line_containing("tls handshake");
    out.assert_line_containing("STATS pushes=2 bad=3");
}

/// Two nodes run the cluster protocol (skynet.cluster.core packets over socketdriver, our
/// `t_cluster`) over mutual TLS, node 2 reaching node 1 through a recording relay: every
/// check passes, and the relay saw only ciphertext.
#[test]
fn cluster_calls_over_mutual_tls_carry_no_plaintext_on_the_wire() {
    let dir = scratch("cluster");
    let ca = Ca::new("test ca");
    let (p1, p2) = (compat_tests::free_port(), compat_tests::free_port());
    let (r, seen) = relay(p1);
    let n1 = spawn_lua_with(
        &format!("t_cluster - {p1}"),
        &format!(
            "{}tls_listen = \":{p1}\"\ntls_connect = \"127.0.0.1:{p2}\"\n",
            ca.node_files(&dir, "n1")
        ),
    );
    let mut w1 = n1.watch();
    w1.expect("] LISTEN ", TIMEOUT);
    let n2 = spawn_lua_with(
        &format!("t_cluster {r} {p2}"),
        &format!(
            "{}tls_listen = \":{p2}\"\ntls_connect = \"127.0.0.1:{r}\"\n",
            ca.node_files(&dir, "n2")
        ),
    );
    drop(w1);
    let out2 = n2.finish(TIMEOUT);
    let out1 = n1.finish(TIMEOUT);
    cluster_ok(&out1);
    cluster_ok(&out2);
    let wire = seen.lock().unwrap().clone();
    assert!(
        wire.len() > 1 << 20,
        "the 1 MiB calls went through the relay"
    );
    // Payloads node 2 sent to node 1: the 40 KiB string's lines and the small texts.
    for plain in [
        &b"m00000000000123\n"[..],
        b"h00000000004242\n",
        b"still here",
        b"by name",
    ] {
        assert!(
            !contains(&wire, plain),
            "plaintext {:?} on the wire",
            String::from_utf8_lossy(plain)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TLS listener of a node (our echo service over socketdriver): clients with a certificate
/// from another CA, without a certificate, or speaking plaintext are refused with one log line
/// each and never reach the service; a client of the CA is echoed.
#[test]
fn clients_outside_the_ca_and_plaintext_clients_never_reach_the_service() {
    let dir = scratch("refuse");
    let ca = Ca::new("test ca");
    let other = Ca::new("other ca");
    let port = compat_tests::free_port();
    let node = spawn_lua_with(
        &format!("t_sd_echo 127.0.0.1 {port}"),
        &format!("{}tls_listen = \":{port}\"\n", ca.node_files(&dir, "n")),
    );
    let mut w = node.watch();
    w.expect("] LISTEN ", TIMEOUT);
    let connect = || {
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        c
    };
    // Refused TLS clients: the verdict on their certificate ends the connection.
    let stranger = other.identity();
    for cfg in [ca.client_config(Some(&stranger)), ca.client_config(None)] {
        let mut c = tls_client(cfg, connect());
        let _ = c.write_all(b"QUIT");
        let _ = c.flush();
        let mut buf = [0u8; 8];
        assert!(
            matches!(c.read(&mut buf), Ok(0) | Err(_)),
            "a refused client reads nothing"
        );
        let line = w.expect("tls handshake with 127.0.0.1:", TIMEOUT);
        assert!(line.contains("failed"), "{line}");
    }
    // A plaintext client.
    let mut raw = connect();
    raw.write_all(b"QUIT").unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(!contains(&rest, b"QUIT"), "nothing echoed");
    w.expect("tls handshake with 127.0.0.1:", TIMEOUT);
    // A client of the CA: echoed; then QUIT makes the service report what reached it.
    let mine = ca.identity();
    let mut c = tls_client(ca.client_config(Some(&mine)), connect());
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    c.write_all(b"QUIT").unwrap();
    c.flush().unwrap();
    w.expect("] ECHO accepted=1 closed=0 bytes=5 errors=0", TIMEOUT);
    drop(w);
    let out = node.finish(TIMEOUT);
    out.assert_clean_exit();
    assert_eq!(
        out.stdout_lines
            .iter()
            .filter(|l| l.contains("tls handshake with"))
            .count(),
        3,
        "one line per refused client\n{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The failed-handshake count the node's metrics endpoint reports.
fn handshake_failures(metrics: u16) -> f64 {
    let mut c = compat_tests::connect_loopback(metrics, IO_TIMEOUT);
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).expect("the metrics answer");
    text.lines()
        .find_map(|l| l.strip_prefix("skynet_tls_handshake_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no failure count in {text}"))
}

/// `tls_handshake_timeout = 1`: a client that connects to a TLS listener and says nothing is
/// closed once its second is up, with one log line naming it, and counted as a failed
/// handshake; the service never hears of it and a client of the CA still gets in.
#[test]
fn a_silent_client_is_closed_when_its_handshake_times_out() {
    let dir = scratch("timeout");
    let ca = Ca::new("test ca");
    let (port, metrics) = (compat_tests::free_port(), compat_tests::free_port());
    let node = spawn_lua_with(
        &format!("t_sd_echo 127.0.0.1 {port}"),
        &format!(
            "{}tls_listen = \":{port}\"\ntls_handshake_timeout = 1\n\
             metrics = \"127.0.0.1:{metrics}\"\n",
            ca.node_files(&dir, "n")
        ),
    );
    let mut w = node.watch();
    w.expect("] LISTEN ", TIMEOUT);
    assert_eq!(handshake_failures(metrics), 0.0);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let me = silent.local_addr().unwrap();
    silent.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the node did not close the silent connection: {other:?}"),
    }
    let line = w.expect(&format!("tls handshake with {me} failed"), TIMEOUT);
    assert!(
        line.ends_with(&format!(
            "socket-server: tls handshake with {me} failed: timed out"
        )),
        "{line}"
    );
    assert_eq!(handshake_failures(metrics), 1.0);
    // A client of the CA after it: echoed.
    let mine = ca.identity();
    let mut c = tls_client(
        ca.client_config(Some(&mine)),
        compat_tests::connect_loopback(port, IO_TIMEOUT),
    );
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    c.write_all(b"QUIT").unwrap();
    c.flush().unwrap();
    // The silent client never reached the service.
    w.expect("] ECHO accepted=1 closed=0 bytes=5 errors=0", TIMEOUT);
    drop(w);
    let out = node.finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_count("tls handshake with", 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cluster_strict = true` on node 1: node 2's requests by handle, by `.localname` and a
/// multipart one by handle get "Invalid name" and node 1 logs each with the peer; `@name`
/// requests are served.
#[test]
fn cluster_strict_refuses_handles_and_local_names() {
    let n1 = spawn_lua_with("t_cluster", "cluster_strict = true\n");
    let port = compat_tests::listen_port(&n1, TIMEOUT);
    let n2 = spawn_lua_with(
        &format!("t_cluster {port}"),
        "t_cluster_strict_peer = \"true\"\n",
    );
    let out2 = n2.finish(TIMEOUT);
    let out1 = n1.finish(TIMEOUT);
    out2.assert_clean_exit();
    out2.assert_checks(&[
        "strict_handle",
        "strict_localname",
        "strict_multipart",
        "strict_name",
    ]);
    out1.assert_clean_exit();
    out1.assert_checks(compat_tests::CLUSTER_CHECKS);
    for target in [":00000007", ".echo"] {
        out1.assert_line_containing(&format!("cluster_strict: request for {target} from"));
    }
    assert_eq!(
        out1.stdout_lines
            .iter()
            .filter(|l| l.contains("cluster_strict: request for"))
            .count(),
        3,
        "one line per refused request (a multipart one logged once)\n{out1}"
    );
    // Node 2 is not strict: node 1's calls by handle were served.
    out2.assert_no_line_containing("cluster_strict");
}

/// A bad key file stops the node with one line naming the key and the file.
#[test]
fn a_bad_key_file_stops_the_node() {
    let dir = scratch("badkey");
    let ca = Ca::new("test ca");
    let files = ca.node_files(&dir, "n");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let out = spawn_lua_with(
        "t_cluster",
        &format!(
            "{files}tls_key = {:?}\ntls_listen = \":1\"\n",
            junk.display().to_string()
        ),
    )
    .finish(TIMEOUT);
    assert_ne!(out.status, Some(0), "{out}");
    let text = format!("{}\n{}", out.stdout_lines.join("\n"), out.stderr);
    assert!(
        text.contains("tls_key: ") && text.contains(&junk.display().to_string()),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new node's announcement to the harbor master (our t_harbor's, as upstream's master
/// reads it): 2-byte big-endian length, 'H', the harbor id, the link address.
fn announcement(id: u8, address: &str) -> Vec<u8> {
    let mut p = ((address.len() + 2) as u16).to_be_bytes().to_vec();
    p.push(b'H');
    p.push(id);
    p.extend_from_slice(address.as_bytes());
    p
}

/// A read's result says the peer closed the connection (end of stream, a reset, or a TLS
/// alert), as opposed to a read timeout.
fn closed_by_peer(r: std::io::Result<usize>, what: &str) {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    match r {
        Ok(0) => {}
        Err(e) if !matches!(e.kind(), WouldBlock | TimedOut) => {}
        other => panic!("{what}: expected the node to close the connection, got {other:?}"),
    }
}

/// Two of our nodes linked by the built-in harbor (our t_harbor slave/master), the master
/// and both link ports in `tls_listen`: a raw client announcing itself to the master as
/// harbor 2, in plaintext or with a certificate from another CA, is refused with one log line
/// naming it, and the master never connects to the address it announced. Node 2 then
/// announces itself over mutual TLS: node 1 connects its link there, and names and messages
/// go both ways.
#[test]
fn harbor_master_over_mutual_tls_refuses_a_raw_node() {
    if !compat_tests::require_modules(&["t_harbor"]) {
        return;
    }
    let dir = scratch("harbor");
    let ca = Ca::new("test ca");
    let other = Ca::new("other ca");
    let (master, link1, link2) = (
        compat_tests::free_port(),
        compat_tests::free_port(),
        compat_tests::free_port(),
    );
    let node1 = Node::spawn(
        &format!(
            "harbor = 1\n{}tls_listen = \":{link1} :{master}\"\n\
             tls_connect = \"127.0.0.1:{link2}\"\n",
            ca.node_files(&dir, "h1")
        ),
        &format!("t_harbor slave 1 listen 0 {link1} {master}"),
    );
    let mut w1 = node1.watch();
    w1.expect(&format!("] LISTEN link={link1} master={master}"), TIMEOUT);

    // Where a raw node says its link listens: the master must never connect there.
    let bait = TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let bait_addr = bait.local_addr().unwrap().to_string();
    let hello = announcement(2, &bait_addr);

    // In plaintext.
    let mut raw = compat_tests::connect_loopback(master, IO_TIMEOUT);
    let me = raw.local_addr().unwrap();
    raw.write_all(&hello).unwrap();
    // An alert at most, then the end of the stream.
    let mut rest = Vec::new();
    closed_by_peer(
        raw.read_to_end(&mut rest).map(|_| 0),
        "plaintext announcement",
    );
    assert!(rest.len() < 16, "{rest:?}");
    let line = w1.expect(&format!("tls handshake with {me} failed"), TIMEOUT);
    assert!(line.contains("socket-server: "), "{line}");
    // With a certificate from another CA (it trusts our CA, so its side of the handshake
    // completes and the announcement is sent encrypted).
    let stranger = other.identity();
    let mut c = tls_client(
        ca.client_config(Some(&stranger)),
        compat_tests::connect_loopback(master, IO_TIMEOUT),
    );
    let me = c.get_ref().local_addr().unwrap();
    let _ = c.write_all(&hello);
    let _ = c.flush();
    closed_by_peer(c.read(&mut [0u8; 64]), "announcement from another CA");
    w1.expect(&format!("tls handshake with {me} failed"), TIMEOUT);

    // Node 2 announces itself over mutual TLS; node 1's client has been waiting for "echo".
    let node2 = Node::spawn(
        &format!(
            "harbor = 2\n{}tls_listen = \":{link2}\"\ntls_connect = \"127.0.0.1:{master}\"\n",
            ca.node_files(&dir, "h2")
        ),
        &format!("t_harbor slave 2 announce {master} {link2}"),
    );
    w1.expect(&format!("] MASTER ANNOUNCE 2 127.0.0.1:{link2}"), TIMEOUT);
    w1.expect("] HARBOR CONNECT 2", TIMEOUT);
    w1.expect("] REGISTER echo :02", TIMEOUT);
    w1.expect("] SENT BYE", TIMEOUT);
    let out2 = node2.finish(TIMEOUT);
    w1.expect("] HARBOR DOWN 2", TIMEOUT);
    w1.expect("] DONE", TIMEOUT);
    drop(w1);
    let out1 = node1.finish(TIMEOUT);

    // All of node 1's work happened after the raw announcements: had the master acted on
    // one, it would have connected to the bait long before.
    match bait.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the master connected to the raw node's address: {other:?}"),
    }
    out2.assert_clean_exit();
    out2.assert_checks(&[
        "launch_harbor",
        "launch_echo",
        "echo_from_node1",
        "link_first_read",
    ]);
    out2.assert_line_containing("] MASTER ANNOUNCED");
    out2.assert_line_containing("] HARBOR ACCEPT 1");
    out2.assert_line_containing("ECHO type=0 session=1 hello-name");
    out2.assert_line_containing("ECHO type=10 session=5 len=100000");
    out2.assert_line_containing("ECHO type=0 session=2 hello-handle");
    out2.assert_no_line_containing("tls handshake");
    out1.assert_clean_exit();
    out1.assert_checks(&[
        "launch_harbor",
        "launch_client",
        "by_name",
        "reply_from_node2",
        "big_by_name",
        "by_handle",
        "unknown_destination_error",
        "down_error_by_handle",
        "down_error_by_name",
    ]);
    out1.assert_count("MASTER ANNOUNCE ", 1);
    out1.assert_no_line_containing(&bait_addr);
    out1.assert_no_line_containing("HARBOR ACCEPT");
    out1.assert_count("tls handshake with", 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- upstream's Lua tree (ignored without SKYNET_UPSTREAM) -----------------------------------

fn upstream_root() -> Option<PathBuf> {
    let Some(root) = std::env::var_os("SKYNET_UPSTREAM") else {
        eprintln!("SKIP: set SKYNET_UPSTREAM to a skynet checkout");
        return None;
    };
    Some(
        Path::new(&root)
            .canonicalize()
            .expect("SKYNET_UPSTREAM exists"),
    )
}

fn upstream_lines(root: &Path, dirs: &str) -> String {
    format!(
        "root = \"{}/\"\n\
         luaservice = {dirs}\n\
         lualoader = root..\"lualib/loader.lua\"\n\
         lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
         snax = root..\"test/?.lua\"\n",
        root.display()
    )
}

/// Upstream's cluster example unchanged: cluster1 (nodes db and db2 on ports 2528 and 2529,
/// as the example's node list has them) and cluster2 calling them, every link mutual TLS.
#[test]
#[ignore = "needs a skynet checkout in SKYNET_UPSTREAM"]
fn upstream_cluster_example_over_mutual_tls() {
    let Some(root) = upstream_root() else {
        return;
    };
    let dir = scratch("up-cluster");
    let ca = Ca::new("test ca");
    let dirs = "root..\"service/?.lua;\"..root..\"test/?.lua;\"..root..\"examples/?.lua\"";
    let tls = "tls_listen = \":2528 :2529\"\ntls_connect = \"127.0.0.1:2528 127.0.0.1:2529\"\n";
    let base = upstream_lines(&root, dirs);
    let c1 = Node::spawn(
        &format!(
            "{base}{}{tls}harbor = 0\nstart = \"cluster1\"\n",
            ca.node_files(&dir, "c1")
        ),
        "snlua bootstrap",
    );
    let mut w1 = c1.watch();
    // cluster1 opens both ports before cluster2 may call.
    w1.expect("2529", TIMEOUT);
    // The cluster port is a TLS one: a plaintext peer is refused.
    let mut raw = TcpStream::connect(("127.0.0.1", 2528)).unwrap();
    raw.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    raw.write_all(b"\x00\x05plain").unwrap();
    let _ = raw.read_to_end(&mut Vec::new());
    w1.expect("tls handshake with 127.0.0.1:", TIMEOUT);
    let c2 = Node::spawn(
        &format!(
            "{base}{}{tls}harbor = 0\nstart = \"cluster2\"\n\
             cluster = root..\"examples/clustername.lua\"\n",
            ca.node_files(&dir, "c2")
        ),
        "snlua bootstrap",
    );
    let mut w2 = c2.watch();
    // cluster2's results: the GETs through both nodes, the snax ping.
    w2.expect("foobar2", TIMEOUT);
    w2.expect("hello", TIMEOUT);
    w1.expect("proxy", TIMEOUT);
    drop(w1);
    drop(w2);
    let out2 = c2.finish(Duration::ZERO);
    let out1 = c1.finish(Duration::ZERO);
    for out in [&out1, &out2] {
        out.assert_no_line_containing("stack traceback");
    }
    out2.assert_no_line_containing("tls handshake");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Upstream's harbor test unchanged over mutual TLS: node 1 runs cmaster + cslave and
/// testharborlink, node 2 cslave and main_log; a raw client announcing itself to the master
/// as a new node is refused.
#[test]
#[ignore = "needs a skynet checkout in SKYNET_UPSTREAM"]
fn upstream_harbor_over_mutual_tls_refuses_a_raw_node() {
    let Some(root) = upstream_root() else {
        return;
    };
    let dir = scratch("up-harbor");
    let ca = Ca::new("test ca");
    let (master, a1, a2) = (
        compat_tests::free_port(),
        compat_tests::free_port(),
        compat_tests::free_port(),
    );
    let dirs = "root..\"service/?.lua;\"..root..\"test/?.lua;\"..root..\"examples/?.lua\"";
    let tls = format!(
        "tls_listen = \":{master} :{a1} :{a2}\"\n\
         tls_connect = \"127.0.0.1:{master} 127.0.0.1:{a1} 127.0.0.1:{a2}\"\n"
    );
    let config = |harbor: u32, address: u16, start: &str, standalone: bool, tag: &str| {
        format!(
            "{}{}{tls}lua_cpath = root..\"luaclib/?.so\"\nharbor = {harbor}\n\
             address = \"127.0.0.1:{address}\"\nmaster = \"127.0.0.1:{master}\"\n{}\
             start = \"{start}\"\n",
            upstream_lines(&root, dirs),
            ca.node_files(&dir, tag),
            if standalone {
                format!("standalone = \"127.0.0.1:{master}\"\n")
            } else {
                String::new()
            }
        )
    };
    let node1 = Node::spawn(
        &config(1, a1, "testharborlink", true, "h1"),
        "snlua bootstrap",
    );
    let mut w1 = node1.watch();
    w1.expect("wait for harbor 2", TIMEOUT);
    // A raw client announcing itself as harbor 9 (the master's handshake: a packed 'H'
    // command with its id and address).
    let mut raw = TcpStream::connect(("127.0.0.1", master)).unwrap();
    raw.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let hello = b"\x00\x14H\x09127.0.0.1:9999\x00\x00\x00\x00";
    raw.write_all(hello).unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    w1.expect("tls handshake with 127.0.0.1:", TIMEOUT);
    let node2 = Node::spawn(&config(2, a2, "main_log", false, "h2"), "snlua bootstrap");
    let mut w2 = node2.watch();
    w2.expect("Log server start", TIMEOUT);
    w1.expect("harbor 2 connected", TIMEOUT);
    let log = w1.expect("LOG =", TIMEOUT);
    assert!(log.contains(":02"), "LOG lives on node 2: {log:?}");
    drop(w2);
    let out2 = node2.finish(Duration::ZERO);
    w1.expect("disconnected", TIMEOUT);
    drop(w1);
    let out1 = node1.finish(Duration::ZERO);
    for out in [&out1, &out2] {
        out.assert_no_line_containing("stack traceback");
    }
    out1.assert_no_line_containing("harbor 9");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cluster_strict` with upstream's unchanged cluster services: node a (strict) serves its
/// registered name; node b's calls by the handle `cluster.query` gave and by `.localname` fail
/// exactly as a call to an unknown name does (the agent replies "Invalid name"), and node a
/// logs each with the peer.
#[test]
#[ignore = "needs a skynet checkout in SKYNET_UPSTREAM"]
fn upstream_cluster_strict_refuses_handles_and_local_names() {
    let Some(root) = upstream_root() else {
        return;
    };
    let ours = compat_tests::repo_root().join("compat-tests").join("lua");
    let dirs = format!("root..\"service/?.lua;{}/?.lua\"", ours.display());
    let (pa, pb) = (compat_tests::free_port(), compat_tests::free_port());
    let config = |role: &str, strict: bool| {
        format!(
            "{}harbor = 0\nstart = \"t_strict_up\"\nstrict_role = \"{role}\"\n\
             strict_port_a = \"{pa}\"\nstrict_port_b = \"{pb}\"\ncluster_strict = {strict}\n",
            upstream_lines(&root, &dirs)
        )
    };
    let a = Node::spawn(&config("a", true), "snlua bootstrap");
    let mut wa = a.watch();
    wa.expect("STRICT READY", TIMEOUT);
    let b = Node::spawn(&config("b", false), "snlua bootstrap");
    let mut wb = b.watch();
    let by_name = wb.expect("STRICT by_name", TIMEOUT);
    let unknown = wb.expect("STRICT unknown", TIMEOUT);
    let by_handle = wb.expect("STRICT by_handle", TIMEOUT);
    let by_local = wb.expect("STRICT by_localname", TIMEOUT);
    let after = wb.expect("STRICT after", TIMEOUT);
    wb.expect("STRICT DONE", TIMEOUT);
    let refused = wa.expect("cluster_strict: request for :", TIMEOUT);
    let refused_local = wa.expect(
        "cluster_strict: request for .localecho from 127.0.0.1:",
        TIMEOUT,
    );
    drop(wa);
    drop(wb);
    drop(b.finish(Duration::ZERO));
    drop(a.finish(Duration::ZERO));
    assert!(by_name.ends_with("by_name true echo:by_name"), "{by_name}");
    assert!(after.ends_with("after true echo:after"), "{after}");
    // The caller sees what a call to an unknown name gives it (upstream's sender turns the
    // "Invalid name" reply into a failed call).
    let failure = |line: &str, what: &str| {
        let at = line.find(what).map_or(0, |i| i + what.len());
        line[at..].to_owned()
    };
    let unknown = failure(&unknown, "unknown");
    assert!(unknown.starts_with(" false "), "{unknown}");
    assert_eq!(failure(&by_handle, "by_handle"), unknown);
    assert_eq!(failure(&by_local, "by_localname"), unknown);
    assert!(refused.contains("from 127.0.0.1:"), "{refused}");
    assert!(refused_local.contains("refused"), "{refused_local}");
}
