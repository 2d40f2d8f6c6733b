//! Socket server tests with C service modules (`compat-tests/cmod/t_sock_*.c`): the modules
//! use `skynet_socket.h` as upstream's gate and lua-socket do; peers are loopback sockets of
//! this test (127.0.0.1 / ::1 only). Every wait is bounded; modules report `CHECK` lines.

use compat_tests::{require_modules, Node, Output, Running};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The port from the "LISTEN <ip> <port>" line.
fn listen_port(run: &Running) -> u16 {
    compat_tests::listen_port(run, TIMEOUT)
}

fn connect(port: u16) -> TcpStream {
    compat_tests::connect_loopback(port, IO_TIMEOUT)
}

fn finish(run: Running) -> Output {
    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
    out
}

/// A gate-like C echo server under 1000 concurrent connections: every connection is open at
/// once, each round writes a message on all of them before reading any echo back.
#[test]
fn echo_server_with_1000_connections() {
    if !require_modules(&["t_sock_echo"]) {
        return;
    }
    const CLIENTS: usize = 1000;
    const ROUNDS: usize = 3;
    compat_tests::raise_nofile(4 * CLIENTS as u64);
    let run = Node::spawn("", "t_sock_echo 127.0.0.1");
    let port = listen_port(&run);
    let started = Instant::now();
    let total = compat_tests::echo_rounds(port, CLIENTS, ROUNDS, IO_TIMEOUT, |i, round| {
        let len = 16 + (i * 37 + round * 101) % 3000;
        let mut m = format!("r{round}c{i}:").into_bytes();
        m.resize(len, b'a' + (i % 26) as u8);
        m
    });
    assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
    let mut ctl = connect(port);
    ctl.write_all(b"QUIT").unwrap();
    let out = finish(run);
    out.assert_line_containing(&format!(
        "ECHO accepted={} closed={CLIENTS} bytes={total} errors=0",
        CLIENTS + 1
    ));
}

/// The peer shuts down its write side: the service gets CLOSE, can still send, then closes;
/// CLOSE is not raised twice.
#[test]
fn half_close_by_peer() {
    if !require_modules(&["t_sock_half"]) {
        return;
    }
    let run = Node::spawn("", "t_sock_half");
    let mut c = connect(listen_port(&run));
    c.write_all(b"question").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("read until the service closes");
    assert_eq!(String::from_utf8_lossy(&got), "answer:question");
    let out = finish(run);
    out.assert_checks(&[
        "data_before_close",
        "send_after_peer_close",
        "close_event_once",
        "no_error_after_half_close",
        "closed_socket_gone_from_info",
    ]);
}

/// No DATA while paused; the data arrives after start (with CONNECT "transfer").
#[test]
fn pause_and_resume() {
    if !require_modules(&["t_sock_pause"]) {
        return;
    }
    let run = Node::spawn("", "t_sock_pause");
    let mut c = connect(listen_port(&run));
    c.write_all(b"hello").unwrap();
    let mut ack = [0u8; 6];
    c.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"paused");
    c.write_all(b"more data").unwrap();
    let out = finish(run);
    out.assert_checks(&[
        "first_data",
        "no_data_while_paused",
        "data_after_start",
        "transfer_event_before_data",
    ]);
}

/// A peer that does not read: WARNING with the pending KiB once 1 MiB is pending, then the
/// ud = 0 WARNING when the peer has read everything.
#[test]
fn send_buffer_warning_and_drained() {
    if !require_modules(&["t_sock_warn"]) {
        return;
    }
    let run = Node::spawn("", "t_sock_warn");
    let mut c = connect(listen_port(&run));
    let line = run
        .wait_for("] WARNED ", TIMEOUT)
        .expect("a WARNING while the peer does not read");
    let sent: usize = line
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {line:?}"));
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0;
    while read < sent {
        let n = c.read(&mut buf).expect("read the pending data");
        assert!(n > 0, "EOF after {read} of {sent} bytes");
        let expect = b'a' + ((read / (64 * 1024)) % 26) as u8;
        assert_eq!(buf[0], expect, "data in order at byte {read}");
        read += n;
    }
    let out = finish(run);
    out.assert_checks(&["warning_id", "warning_kib", "drained_warning"]);
}

/// A free UDP port on `host` (the socket is released at once).
fn free_udp_port(host: &str) -> u16 {
    UdpSocket::bind((host, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// UDP echo over IPv4 and IPv6 with upstream's 7/19-byte addresses (all inside the node).
#[test]
fn udp_echo_v4_and_v6() {
    if !require_modules(&["t_sock_udp"]) {
        return;
    }
    let p4 = free_udp_port("127.0.0.1");
    let p6 = free_udp_port("::1");
    let out = Node::run("", &format!("t_sock_udp {p4} {p6}"), TIMEOUT);
    out.assert_clean_exit();
    out.assert_checks(&[
        "udp_listen",
        "udp_listen_port0",
        "udp_connect",
        "udp_connect_invalid",
        "send4",
        "send6",
        "sendc",
        "udp_send_bad_address",
        "server4_addrsz",
        "server4_protocol",
        "server6_addrsz",
        "server6_protocol",
        "dial4_echo",
        "dial4_from_server_port",
        "dial6_echo",
        "dial6_from_server_port",
        "conn4_echo",
        "conn4_from_server_port",
        "echoes",
    ]);
}

/// Listen on port 0 reports the port; connect/accept events; a closed port gives ERROR;
/// socket_info lists the live sockets.
#[test]
fn listen_connect_refused_and_info() {
    if !require_modules(&["t_sock_connect"]) {
        return;
    }
    let out = Node::run("", "t_sock_connect", TIMEOUT);
    out.assert_clean_exit();
    out.assert_checks(&[
        "listen_ids",
        "listen_bad_host",
        "connect_long_host",
        "start_invalid",
        "listen_ip",
        "listen6_ip",
        "connect_id",
        "connect_peer_ip",
        "accept_on_listener",
        "accept_name",
        "accepted_start",
        "connect_dead_id",
        "connect_refused",
        "info_owner",
        "info_listen_type",
        "info_listen_name",
        "info_listen_accepts",
        "info_listen6_name",
        "info_client_type",
        "info_client_name",
        "info_client_reading",
        "info_accepted_type",
        "info_accepted_name",
        "info_entries",
        "info_seen",
    ]);
    out.assert_line_containing("socket-server error: Invalid addr aaaa");
}

/// Config keys: `socket_max` caps open sockets (an accept beyond it is closed with an ERROR on
/// the listener); a bad value stops the node naming the key and the file.
#[test]
fn socket_config_keys() {
    if !require_modules(&["t_sock_echo"]) {
        return;
    }
    // The listener is socket 1 of 2: one connection is served, the next one refused.
    let run = Node::spawn("socket_max = 2", "t_sock_echo 127.0.0.1");
    let port = listen_port(&run);
    let mut a = connect(port);
    a.write_all(b"ok").unwrap();
    let mut back = [0u8; 2];
    a.read_exact(&mut back).unwrap();
    let mut b = connect(port);
    let line = run
        .wait_for("reach skynet socket number limit", TIMEOUT)
        .expect("an ERROR on the listener");
    assert!(line.contains("ERROR 1 "), "{line}");
    let mut byte = [0u8; 1];
    assert!(
        matches!(b.read(&mut byte), Ok(0) | Err(_)),
        "refused connection closed"
    );
    drop(a);
    // The slot frees once the service has seen CLOSE and closed the socket: retry QUIT until a
    // connection gets through (a refused one is closed by the server).
    let mut ctl = Vec::new();
    let quit = (0..20).any(|_| {
        let mut c = connect(port);
        let _ = c.write_all(b"QUIT");
        ctl.push(c);
        run.wait_for("] ECHO ", Duration::from_millis(500))
            .is_some()
    });
    assert!(quit, "QUIT never got through");
    let out = finish(run);
    out.assert_line_containing("ECHO accepted=2 closed=1 bytes=2 errors=");
}

/// Config errors name the key and the file.
#[test]
fn socket_config_errors() {
    if !require_modules(&["t_sock_echo"]) {
        return;
    }
    for (extra, key) in [
        ("socket_max = 0", "socket_max"),
        ("socket_send_limit = -1", "socket_send_limit"),
        ("socket_handoff_limit = -1", "socket_handoff_limit"),
        ("socket_max = \"many\"", "socket_max"),
    ] {
        let out = Node::run(extra, "t_sock_echo", TIMEOUT);
        assert_eq!(out.status, Some(1), "{extra}\n{out}");
        assert!(
            out.stderr.contains(&format!("/config: config key '{key}'")),
            "{extra}: {}",
            out.stderr
        );
    }
}
