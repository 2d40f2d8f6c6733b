//! The built-in `gate` service, driven by a watchdog and an agent written in C
//! (`compat-tests/cmod/t_gate.c`) with loopback clients of this test: framing across odd TCP
//! boundaries, watchdog reports, forwarding to an agent and PTYPE_CLIENT replies, broker,
//! kick, a 16 MiB+ header (that connection only), and the gate closing its sockets when it is
//! killed. Every wait is bounded.

use compat_tests::{require_modules, Node, Watch};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(port: u16) -> TcpStream {
    let c = compat_tests::connect_loopback(port, IO_TIMEOUT);
    c.set_nodelay(true).unwrap();
    c
}

/// `data` with a 2-byte (S) or 4-byte (L) big-endian length header.
fn frame(data: &[u8], header: usize) -> Vec<u8> {
    let len = (data.len() as u64).to_be_bytes();
    let mut f = len[8 - header..].to_vec();
    f.extend_from_slice(data);
    f
}

/// Writes `bytes` in pieces of 1, 2, 3, ... bytes with short pauses, so the gate reads them
/// split at odd places.
fn write_split(c: &mut TcpStream, bytes: &[u8]) {
    let mut at = 0;
    let mut piece = 1;
    while at < bytes.len() {
        let end = (at + piece).min(bytes.len());
        c.write_all(&bytes[at..end]).unwrap();
        at = end;
        piece = piece % 5 + 1;
        thread::sleep(Duration::from_millis(2));
    }
}

fn read_exactly(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    c.read_exact(&mut buf).expect("read the reply");
    buf
}

/// The peer closed: EOF (or a reset).
fn assert_closed(c: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected the gate to close the connection, got {other:?}"),
    }
}

/// The connection id from "OPEN <g> <id> 127.0.0.1:<port>", checking the peer address.
fn opened(w: &mut Watch, gate: &str, client: &TcpStream) -> i32 {
    let port = client.local_addr().unwrap().port();
    let line = w.expect(&format!("127.0.0.1:{port}"), TIMEOUT);
    let rest = line
        .split(&format!("] OPEN {gate} "))
        .nth(1)
        .unwrap_or_else(|| panic!("not an OPEN {gate} line: {line:?}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn gate_with_watchdog_agent_and_broker() {
    if !require_modules(&["t_gate"]) {
        return;
    }
    let run = Node::spawn("", "t_gate watchdog");
    let mut w = run.watch();
    let port_s: u16 = w.expect_after("] LISTEN S ", TIMEOUT).parse().unwrap();
    let port_l: u16 = w.expect_after("] LISTEN L ", TIMEOUT).parse().unwrap();
    // The gates log the ports they got (port 0 was asked for).
    w.expect(&format!("Listen on 127.0.0.1:{port_s}"), TIMEOUT);
    w.expect(&format!("Listen on 127.0.0.1:{port_l}"), TIMEOUT);

    // Packets split at odd boundaries reach the watchdog whole, in order.
    let mut a = connect(port_s);
    let ida = opened(&mut w, "S", &a);
    let mut stream = frame(b"hello", 2);
    stream.extend(frame(b"", 2)); // zero-length packets are skipped
    stream.extend(frame(b"world, in pieces", 2));
    write_split(&mut a, &stream);
    w.expect(&format!("] DATA S {ida} hello"), TIMEOUT);
    w.expect(&format!("] DATA S {ida} world, in pieces"), TIMEOUT);

    let mut b = connect(port_s);
    let idb = opened(&mut w, "S", &b);
    assert_ne!(ida, idb);
    b.write_all(&frame(b"from b", 2)).unwrap();
    w.expect(&format!("] DATA S {idb} from b"), TIMEOUT);

    // forward: A's packets go to the agent (source = the client named in the command);
    // the agent's PTYPE_CLIENT replies are written to A as they are.
    a.write_all(&frame(b"forward", 2)).unwrap();
    w.expect(&format!("] FORWARDED S {ida}"), TIMEOUT);
    write_split(&mut a, &frame(b"ping", 2));
    assert_eq!(read_exactly(&mut a, 9), b"echo:ping");
    w.expect(&format!("] AGENT S {ida} ping"), TIMEOUT);
    let big: Vec<u8> = (0..60_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    a.write_all(&frame(&big, 2)).unwrap();
    let back = read_exactly(&mut a, 5 + big.len());
    assert!(
        back[..5] == *b"echo:" && back[5..] == big[..],
        "the 60000-byte packet echoed"
    );
    w.expect(&format!("] AGENT S {ida} len=60000"), TIMEOUT);
    // B still reports to the watchdog.
    b.write_all(&frame(b"b again", 2)).unwrap();
    w.expect(&format!("] DATA S {idb} b again"), TIMEOUT);

    // kick
    b.write_all(&frame(b"kick", 2)).unwrap();
    assert_closed(&mut b, "kick");
    w.expect(&format!("] CLOSE S {idb}"), TIMEOUT);

    // The L gate: a 16 MiB header closes that connection only.
    let mut c = connect(port_l);
    let idc = opened(&mut w, "L", &c);
    let mut d = connect(port_l);
    let idd = opened(&mut w, "L", &d);
    d.write_all(&frame(b"before", 4)).unwrap();
    w.expect(&format!("] DATA L {idd} before"), TIMEOUT);
    c.write_all(&frame(b"last good one", 4)).unwrap();
    c.write_all(&[0x01, 0, 0, 0, b'x', b'y']).unwrap();
    assert_closed(&mut c, "a 16 MiB header");
    w.expect(&format!("] DATA L {idc} last good one"), TIMEOUT);
    w.expect("Recv socket message > 16M", TIMEOUT);
    w.expect(&format!("] CLOSE L {idc}"), TIMEOUT);
    write_split(&mut d, &frame(b"still here", 4));
    w.expect(&format!("] DATA L {idd} still here"), TIMEOUT);
    a.write_all(&frame(b"again", 2)).unwrap();
    assert_eq!(read_exactly(&mut a, 10), b"echo:again");

    // A closes: reported.
    drop(a);
    w.expect(&format!("] CLOSE S {ida}"), TIMEOUT);

    // Killing the S gate closes its connections and its listener.
    let mut e = connect(port_s);
    let ide = opened(&mut w, "S", &e);
    e.write_all(&frame(b"release", 2)).unwrap();
    w.expect(&format!("] DATA S {ide} release"), TIMEOUT);
    w.expect("] RELEASED S", TIMEOUT);
    assert_closed(&mut e, "the gate was killed");
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match TcpStream::connect(("127.0.0.1", port_s)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            other => panic!("the killed gate's listener still accepts: {other:?}"),
        }
    }

    // broker: every packet of the L gate goes to the agent, from the gate.
    d.write_all(&frame(b"broker", 4)).unwrap();
    w.expect("] BROKER L", TIMEOUT);
    d.write_all(&frame(b"via broker", 4)).unwrap();
    assert_eq!(read_exactly(&mut d, 15), b"echo:via broker");
    w.expect(&format!("] AGENT L {idd} via broker"), TIMEOUT);
    d.write_all(&frame(b"quit", 4)).unwrap();

    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_checks(&[
        "launch_gates",
        "gate_bad_header",
        "gate_bad_watchdog",
        "gate_no_max",
        "launch_agent",
        "open_format",
        "data_session",
        "agent_source",
    ]);
    // The agent's bad PTYPE_CLIENT messages were refused with a log line each.
    out.assert_line_containing("Invalid client id 999999 from ");
    out.assert_line_containing("Invalid client message from ");
    out.assert_line_containing("Invalid data header style");
    out.assert_line_containing("Invalid watchdog .nobody");
    out.assert_line_containing("Need max connection");
}
