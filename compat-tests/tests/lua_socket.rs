//! `skynet.socketdriver` / `skynet.netpack` from Lua: our own services
//! (`compat-tests/lua/t_sd_*.lua`, over skynet.core + socketdriver + netpack directly, as
//! `tests/lua.rs` runs them) serve loopback clients of this test (127.0.0.1 / ::1 only). Every
//! wait is bounded; the services report `CHECK` lines.

use compat_tests::{spawn_lua, Output, Running};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn finish(run: Running) -> Output {
    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out
}

/// The port from the "LISTEN <ip> <port>" line.
fn listen_port(run: &Running) -> u16 {
    compat_tests::listen_port(run, TIMEOUT)
}

fn connect(port: u16) -> TcpStream {
    compat_tests::connect_loopback(port, IO_TIMEOUT)
}

/// A Lua echo server (DATA buffers sent back with their ownership) under 1000 concurrent
/// connections: every connection is open at once, each round writes a message on all of them
/// before reading any echo back.
#[test]
fn lua_echo_server_with_1000_connections() {
    const CLIENTS: usize = 1000;
    const ROUNDS: usize = 3;
    compat_tests::raise_nofile(4 * CLIENTS as u64);
    let run = spawn_lua("t_sd_echo 127.0.0.1");
    let port = listen_port(&run);
    let started = Instant::now();
    let total = compat_tests::echo_rounds(port, CLIENTS, ROUNDS, IO_TIMEOUT, |i, round| {
        let len = 16 + (i * 53 + round * 97) % 4000;
        let mut m = format!("r{round}c{i}:").into_bytes();
        m.resize(len, b'a' + ((i + round) % 26) as u8);
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

/// A 2-byte big-endian length frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// A Lua netpack server (socketdriver + netpack, as a gate): clients send 2-byte-length
/// frames cut at odd boundaries (a header split across writes, several frames in one write,
/// a 60000-byte frame); the server answers every packet, in order.
#[test]
fn lua_netpack_server_frames_split_at_odd_boundaries() {
    const CLIENTS: usize = 12;
    const PACKETS: usize = 60;
    let run = spawn_lua("t_sd_netpack");
    let port = listen_port(&run);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(port)).collect();
    for c in &clients {
        c.set_nodelay(true).unwrap();
    }
    // What each client sends (one byte stream) and expects back (the answers, framed).
    let mut streams = Vec::new();
    let mut answers = Vec::new();
    let mut payload_bytes = 0usize;
    for i in 0..CLIENTS {
        let (mut out, mut back) = (Vec::new(), Vec::new());
        for k in 0..PACKETS {
            let len = match k {
                7 => 60000,
                _ => 1 + (i * 131 + k * 37) % 700,
            };
            let mut p = format!("c{i}p{k}:").into_bytes();
            p.resize(len.max(p.len()), b'0' + ((i + k) % 10) as u8);
            payload_bytes += p.len();
            out.extend(frame(&p));
            let mut r = b"re:".to_vec();
            r.extend_from_slice(&p);
            back.extend(frame(&r));
        }
        streams.push(out);
        answers.push(back);
    }
    // Round-robin over the clients, one chunk each per round; chunk sizes cycle through odd
    // values (1 cuts a header in two). The early rounds pause so the chunks arrive apart.
    const CUTS: [usize; 10] = [1, 2, 3, 1, 5, 7, 11, 129, 1, 1021];
    let mut sent = [0usize; CLIENTS];
    let mut round = 0;
    while sent.iter().zip(&streams).any(|(s, b)| *s < b.len()) {
        for (i, c) in clients.iter_mut().enumerate() {
            let n = CUTS[(round + i) % CUTS.len()].min(streams[i].len() - sent[i]);
            if n > 0 {
                c.write_all(&streams[i][sent[i]..sent[i] + n])
                    .expect("write a chunk");
                sent[i] += n;
            }
        }
        round += 1;
        if round < 40 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut back = vec![0; answers[i].len()];
        c.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("answers for client {i}: {e}"));
        assert!(back == answers[i], "client {i}: wrong answers");
    }
    drop(clients);
    let mut ctl = connect(port);
    ctl.write_all(&frame(b"QUIT")).unwrap();
    let out = finish(run);
    out.assert_line_containing(&format!(
        "NETPACK opened={} closed={CLIENTS} packets={} bytes={payload_bytes} errors=0",
        CLIENTS + 1,
        CLIENTS * PACKETS
    ));
}

/// A free UDP port on `host` (the socket is released at once).
fn free_udp_port(host: &str) -> u16 {
    UdpSocket::bind((host, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// UDP through socketdriver: a bound server echoes the test's datagrams to their sender
/// (udp_send with each data form), udp_dial and udp + udp_connect send to the test, an IPv6
/// round trip inside the node, and the errors ("udp init failed", ...).
#[test]
fn lua_udp_echo() {
    const N: usize = 30;
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind the client socket");
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let cp = client.local_addr().unwrap().port();
    let sp4 = free_udp_port("127.0.0.1");
    let sp6 = free_udp_port("::1");
    let run = spawn_lua(&format!("t_sd_udp {sp4} {cp} {sp6}"));
    run.wait_for("] UDPREADY", TIMEOUT)
        .expect("the service is ready");
    let mut buf = [0u8; 2048];
    let mut got = HashSet::new();
    for _ in 0..2 {
        let (n, _) = client
            .recv_from(&mut buf)
            .expect("a datagram from the node");
        got.insert(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(
        got,
        HashSet::from(["dialed".to_owned(), "connected".to_owned()])
    );
    for i in 0..N {
        let msg = format!("ping {i} {}", "x".repeat(i * 41));
        client.send_to(msg.as_bytes(), ("127.0.0.1", sp4)).unwrap();
        let (n, from) = client.recv_from(&mut buf).expect("the echo");
        assert_eq!(from.port(), sp4, "echo from the server socket");
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("echo:{msg}"),
            "echo {i}"
        );
    }
    client.send_to(b"quit", ("127.0.0.1", sp4)).unwrap();
    let out = finish(run);
    out.assert_line_containing(&format!("UDP echoed={N}"));
    out.assert_checks(&[
        "udp_listen_port0",
        "udp_listen_port0_addr",
        "udp_no_port",
        "udp_init_failed",
        "udp_dial_bad_port",
        "udp_dial_no_port",
        "udp_connect_invalid",
        "udp_connect_v6_unbracketed",
        "udp_send_no_address",
        "udp_bound_id",
        "udp_unbound_id",
        "udp_send_bad_address",
        "udp_send_invalid_id",
        "send_dialed",
        "udp_connect",
        "send_connected",
        "v6_data",
        "v6_addr_size",
        "v6_sender",
        "v6_udp_send",
        "v6_echo",
        "v6_echo_from",
        "v4_addr_size",
        "v4_sender",
    ]);
}

/// Inside one service: address parsing and errors, listen "127.0.0.1:0" reporting its port,
/// connect/accept/start, every send data form, pause, close/half-close/shutdown, a refused
/// connect, bind, resolve, and socketdriver.info() fields for each socket type.
#[test]
fn lua_socketdriver_api_and_info() {
    let run = spawn_lua("t_sd_misc");
    let out = finish(run);
    out.assert_checks(&[
        "listen_no_port",
        "listen_bad_port",
        "listen_big_port",
        "listen_empty_port",
        "listen_v6_unclosed",
        "listen_v6_no_port",
        "listen_port_type",
        "listen_backlog_type",
        "listen_addr_type",
        "listen_error",
        "listen_error_position_parse",
        "connect_port0",
        "connect_port0_arg",
        "connect_no_port",
        "connect_bad_port",
        "connect_port_type",
        "close_id_type",
        "start_id_type",
        "listen_id",
        "listen_ip",
        "listen_port",
        "listen_port_arg",
        "listen6",
        "listen_any",
        "listen_start",
        "connect_id",
        "accept_new_id",
        "accept_peer",
        "connect_peer_ip",
        "accepted_start",
        "connect6_peer_ip",
        "info_listen",
        "info_listen_type",
        "info_listen_address",
        "info_listen_accept",
        "info_listen_sock",
        "info_listen_rtime",
        "info_listen_fields",
        "info_plisten_unlisted",
        "send_string",
        "send_memory",
        "send_userdata_size",
        "send_table",
        "send_empty_table",
        "send_number",
        "lsend_string",
        "lsend_memory",
        "send_after_low",
        "received_in_order",
        "send_userdata",
        "userdata_bytes",
        "send_object_refused",
        "send_negative_refused",
        "send_float_size_refused",
        "send_table_bad",
        "send_userdata_too_long",
        "send_userdata_negative",
        "send_no_data",
        "send_bool",
        "send_invalid_id",
        "send_invalid_id_memory",
        "lsend_invalid_id",
        "nothing_refused_arrived",
        "info_tcp_type",
        "info_tcp_address",
        "info_tcp_peer",
        "info_tcp_write",
        "info_tcp_read",
        "info_tcp_wbuffer",
        "info_tcp_reading",
        "info_tcp_writing",
        "info_tcp_times",
        "info_tcp_no_listen_fields",
        "info_accepted_peer",
        "info_accepted_read",
        "info_accepted_write",
        "info_paused",
        "no_data_while_paused",
        "info_resumed",
        "restart_transfer",
        "data_after_start",
        "reply",
        "info_closed_gone",
        "info_closing",
        "send_closed",
        "info_half_closed_gone",
        "close_once",
        "shutdown_close",
        "refused_id",
        "connect_refused",
        "info_udp_type",
        "info_udp_no_peer",
        "info_udp_peer",
        "bind_id",
        "bind_event",
        "info_bind_type",
        "info_bind_no_peer",
        "bind_bad_fd",
        "bind_closed_fd",
        "resolve_v4",
        "resolve_v6",
        "resolve_error",
        "info_empty_at_end",
    ]);
    // the refused light userdata forms are logged, not sent
    out.assert_count("a light userdata needs its size", 3);
}
