//! Queue limits under load (`queue_limit`, `queue_bytes_limit`, `QUEUELIMIT`, socket
//! backpressure) with the C modules `t_qflood` and `t_qsock`. These tests load the machine
//! (ten million messages, hundreds of MiB over loopback), so they have their own test binary
//! and run one at a time: other tests' timing-sensitive shutdowns do not share the CPU with them.

use compat_tests::{require_modules, Node, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Held by each test: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(extra: &str, bootstrap: &str) -> compat_tests::Output {
    Node::run(extra, bootstrap, TIMEOUT)
}

/// The port from the "LISTEN <ip> <port>" line.
fn listen_port(run: &Running) -> u16 {
    compat_tests::listen_port(run, TIMEOUT)
}

fn connect(port: u16) -> TcpStream {
    compat_tests::connect_loopback(port, IO_TIMEOUT)
}

/// Ten million messages to a service blocked in its callback, whose queue limit is 1000
/// (QUEUELIMIT from C): every request is answered (PTYPE_ERROR at once when refused, a reply
/// from the sleeper for the few it had queued), the one-way messages beyond the limit are
/// dropped, the process's peak RSS stays small, and the crossing is logged once each way.
#[test]
fn queue_limit_flood_of_ten_million() {
    if !require_modules(&["t_qflood"]) {
        return;
    }
    let _serial = serial();
    let out = Node::run(
        "queue_limit = 500000\nthread = 2",
        "t_qflood",
        Duration::from_secs(90),
    );
    out.assert_clean_exit();
    out.assert_checks(&[
        "launch_sleeper",
        "queuelimit_set",
        "queuelimit_query",
        "queuelimit_bad",
        "queuelimit_keeps_bytes",
        "queuelimit_bytes_unlimited",
        "every_call_answered",
        "calls_refused",
        "sleeper_answered_its_queued_calls",
        "sleeper_got_at_most_limit",
        "rss_bounded",
    ]);
    out.assert_line_containing("QFLOOD sent=10000000 calls=5000000 ");
    out.assert_count("error: queue of :00000003 is full (1000 messages, ", 1);
    out.assert_count("queue of :00000003 is under its limits again (", 1);
    out.assert_line_containing("error: QUEUELIMIT wants");
}

/// `queue_limit` / `queue_bytes_limit`: a bad value stops the node with a message naming the
/// key and the config file.
#[test]
fn queue_limit_bad_value_names_key_and_file() {
    for (extra, key) in [
        ("queue_limit = -1", "queue_limit"),
        ("queue_bytes_limit = \"lots\"", "queue_bytes_limit"),
    ] {
        let out = run(extra, "t_qflood");
        assert_ne!(out.status, Some(0), "{out}");
        assert!(
            out.stderr.contains(&format!("config key '{key}'")) && out.stderr.contains("config"),
            "{out}"
        );
    }
}

/// The flood stream of `t_qsock`: byte k is k % 251, from byte `from` on, `n` bytes.
fn flood_bytes(from: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|k| ((from + k) % 251) as u8).collect()
}

/// Writes role byte 'F' and `total` flood bytes, then waits for the service's "D".
fn flood(port: u16, total: u64) {
    let mut c = connect(port);
    // The service blocks for a while and holds the connection: writes may wait long.
    c.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(b"F").unwrap();
    const CHUNK: usize = 1 << 20;
    let mut sent = 0u64;
    while sent < total {
        let n = CHUNK.min((total - sent) as usize);
        c.write_all(&flood_bytes(sent, n)).unwrap();
        sent += n as u64;
    }
    let mut done = [0u8; 1];
    c.read_exact(&mut done).unwrap();
    assert_eq!(&done, b"D");
}

fn quit(port: u16) {
    connect(port).write_all(b"Q").unwrap();
}

/// Backpressure: a client floods 256 MiB at a service that blocks its worker (a second at
/// first, then a little per message) and whose queue limit is 64 messages / 1 MiB. The socket
/// server stops reading the connection while the queue is full and resumes it once drained:
/// the service gets every byte in order, and the process's peak RSS stays under 100 MiB
/// (without backpressure the whole flood would sit in the queue).
#[test]
fn full_queue_holds_a_flooding_connection() {
    if !require_modules(&["t_qsock"]) {
        return;
    }
    let _serial = serial();
    const TOTAL: u64 = 256 << 20;
    let run = Node::spawn("", &format!("t_qsock {TOTAL} {}", 100 * 1024));
    let port = listen_port(&run);
    flood(port, TOTAL);
    quit(port);
    let out = run.finish(Duration::from_secs(90));
    out.assert_clean_exit();
    out.assert_checks(&[
        "queuelimit",
        "flood_complete",
        "flood_in_order",
        "rss_bounded",
    ]);
    out.assert_line_containing("error: queue of :00000002 is full (");
    out.assert_line_containing("): pausing the socket");
    out.assert_line_containing("queue of :00000002 is under its limits again (0 refused");
}

/// 5,000 idle connections and a flooding one on a slow service with a small queue limit: a
/// well-behaved client's requests are still answered, each one (its connection is held and
/// resumed like the others, never starved); the flood arrives complete and in order.
#[test]
fn full_queue_does_not_starve_a_well_behaved_connection() {
    if !require_modules(&["t_qsock"]) {
        return;
    }
    let _serial = serial();
    const IDLE: usize = 5000;
    const TOTAL: u64 = 64 << 20;
    const PINGS: usize = 200;
    compat_tests::raise_nofile(3 * IDLE as u64);
    let run = Node::spawn("", &format!("t_qsock {TOTAL} {}", 200 * 1024));
    let port = listen_port(&run);
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(port)).collect();
    let flooder = std::thread::spawn(move || flood(port, TOTAL));
    let mut ping = connect(port);
    ping.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    ping.write_all(b"P").unwrap();
    for i in 0..PINGS {
        let msg = format!("ping {i:05}\n");
        ping.write_all(msg.as_bytes()).unwrap();
        let mut echo = vec![0u8; msg.len()];
        ping.read_exact(&mut echo)
            .unwrap_or_else(|e| panic!("ping {i}: no echo ({e})"));
        assert_eq!(echo, msg.as_bytes(), "ping {i}");
    }
    flooder.join().expect("flood client");
    quit(port);
    let out = run.finish(Duration::from_secs(90));
    drop(idle);
    out.assert_clean_exit();
    out.assert_checks(&[
        "queuelimit",
        "flood_complete",
        "flood_in_order",
        "rss_bounded",
    ]);
    out.assert_line_containing(&format!("QSOCK flood={TOTAL} bad=0 accepted={}", IDLE + 3));
}
