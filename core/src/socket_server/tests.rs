//! Unit tests of the socket server: the pure parts (address encoding, send lists, warnings,
//! ids, event layout) and the socket thread on loopback with a recording sink. Every wait is
//! bounded.

use super::resolver::{needs_lookup, Lookup};
use super::socket::Io;
use super::thread::SocketThread;
use super::*;
use crate::payload::Payload;
use std::io::{self, Read, Write};
use std::net::Shutdown as NetShutdown;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex as StdMutex};
use std::thread;
use std::time::{Duration, Instant};

// --- pure parts ----------------------------------------------------------------------------

#[test]
fn udp_address_encoding_is_protocol_port_address() {
    let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let e = encode_udp_address(&v4);
    assert_eq!(e, [1, 0x1f, 0x90, 127, 0, 0, 1]);
    assert_eq!(decode_udp_address(&e), Some(v4));
    let v6: SocketAddr = "[::1]:258".parse().unwrap();
    let e = encode_udp_address(&v6);
    assert_eq!(e.len(), 19);
    assert_eq!(&e[..3], &[2, 1, 2]);
    assert_eq!(e[18], 1);
    assert!(e[3..18].iter().all(|&b| b == 0));
    assert_eq!(decode_udp_address(&e), Some(v6));
    // trailing bytes ignored; unknown protocol or short input refused
    let mut long = encode_udp_address(&v4);
    long.extend_from_slice(b"xyz");
    assert_eq!(decode_udp_address(&long), Some(v4));
    assert_eq!(decode_udp_address(&[0, 1, 2, 3, 4, 5, 6]), None);
    assert_eq!(decode_udp_address(&[3; 19]), None);
    assert_eq!(decode_udp_address(&[1, 0, 80, 127]), None);
    assert_eq!(decode_udp_address(&[]), None);
    assert_eq!(udp_address_size(1), Some(7));
    assert_eq!(udp_address_size(2), Some(19));
    assert_eq!(udp_address_size(0), None);
}

fn bytes(n: usize, fill: u8) -> Payload {
    Payload::copy_from(&vec![fill; n])
}

/// A writer that accepts `budget` bytes in total, recording what it wrote.
fn writer<'a>(
    budget: &'a mut usize,
    log: &'a mut Vec<u8>,
) -> impl FnMut(&[u8], Option<SocketAddr>) -> WriteResult + 'a {
    move |buf, _| {
        if *budget == 0 {
            return WriteResult::Blocked;
        }
        let n = buf.len().min(*budget);
        *budget -= n;
        log.extend_from_slice(&buf[..n]);
        WriteResult::Wrote(n)
    }
}

#[test]
fn send_lists_write_high_before_low_and_finish_a_partial_low_head_first() {
    let mut l = SendLists::default();
    l.push_bytes(Priority::High, bytes(3, b'a'));
    l.push_bytes(Priority::Low, bytes(4, b'x'));
    l.push_bytes(Priority::Low, bytes(2, b'y'));
    l.push_bytes(Priority::High, bytes(2, b'b'));
    assert_eq!(l.size(), 11);
    let mut written = Vec::new();
    // High list completely, then 2 of the 4 low bytes.
    let mut budget = 7;
    assert!(matches!(
        l.flush(writer(&mut budget, &mut written)),
        Flush::Pending
    ));
    assert_eq!(written, b"aaabbxx");
    assert_eq!(l.size(), 4);
    // A new high-priority buffer queues behind the partial low head, which moved to high.
    l.push_bytes(Priority::High, bytes(1, b'c'));
    let mut budget = 100;
    assert!(matches!(
        l.flush(writer(&mut budget, &mut written)),
        Flush::Drained
    ));
    assert_eq!(written, b"aaabbxxxxcyy");
    assert!(l.is_empty());
    assert_eq!(l.size(), 0);
}

#[test]
fn send_lists_report_failures_and_udp_drops() {
    let mut l = SendLists::default();
    l.push_bytes(Priority::High, bytes(3, b'a'));
    l.push_bytes(Priority::High, bytes(3, b'b'));
    let r = l.flush(|_, _| WriteResult::Failed(io::Error::from_raw_os_error(libc::EPIPE)));
    assert!(matches!(r, Flush::Failed(_)));
    assert_eq!(l.size(), 6, "nothing written");
    // A dropped buffer is gone and the flush stops for this round.
    assert!(matches!(
        l.flush(|_, _| WriteResult::Dropped),
        Flush::Pending
    ));
    assert_eq!(l.size(), 3);
}

#[test]
fn warnings_fire_at_1_2_4_mib_and_drained_once() {
    let mut l = SendLists::default();
    let mut fired = Vec::new();
    for _ in 0..(5 * 16) {
        l.push_bytes(Priority::High, bytes(64 * 1024, 0));
        fired.extend(l.warning());
    }
    // 1 MiB = 1024 KiB, then >= 2 MiB, >= 4 MiB.
    assert_eq!(fired, vec![1024, 2048, 4096]);
    assert!(!l.take_drained_warning(), "not drained yet");
    let mut budget = usize::MAX;
    let mut sink = Vec::new();
    assert!(matches!(
        l.flush(writer(&mut budget, &mut sink)),
        Flush::Drained
    ));
    assert!(l.take_drained_warning());
    assert!(!l.take_drained_warning(), "only once");
    // The level restarts at 1 MiB; the KiB figure rounds up.
    l.push_bytes(Priority::High, bytes(WARNING_SIZE + 1, 0));
    assert_eq!(l.warning(), Some(1025));
}

#[test]
fn ids_count_up_map_to_slots_and_wrap_positive() {
    let s = Slots::new(MAX_SOCKET);
    let a = s.reserve().unwrap();
    let b = s.reserve().unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(s.get(a), Some((State::Reserve, false)));
    s.release(a);
    assert_eq!(s.get(a), None);
    // Not reused until the counter wraps.
    assert_eq!(s.reserve(), Some(3));
    assert_eq!(s.open(), 2);
    // Live slots are skipped: ids 65536 + 2 and + 3 map onto slots 2 and 3 (held by ids 2, 3).
    s.alloc_id.store(65536 + 1, Ordering::Relaxed);
    assert_eq!(s.reserve(), Some(65536 + 4));
    assert_eq!(slot_of(65536 + 4), 4);
    // Wrap at 2^31: ids stay positive.
    s.alloc_id.store(i32::MAX - 1, Ordering::Relaxed);
    assert_eq!(s.reserve(), Some(i32::MAX));
    let wrapped = s.reserve().unwrap();
    assert!(wrapped >= 0, "wrapped id {wrapped}");
}

#[test]
fn socket_max_caps_reservations() {
    let s = Slots::new(2);
    let a = s.reserve().unwrap();
    assert!(s.reserve().is_some());
    assert_eq!(s.reserve(), None);
    s.release(a);
    assert!(s.reserve().is_some());
}

#[test]
fn event_payload_layout() {
    let ev = SocketEvent::inline(event::ACCEPT, 7, 9, "127.0.0.1:5");
    let (p, data) = ev.into_payloads();
    assert!(data.is_none());
    let b = p.as_slice();
    assert_eq!(b.len(), 24 + 11);
    assert_eq!(i32::from_ne_bytes(b[0..4].try_into().unwrap()), 4);
    assert_eq!(i32::from_ne_bytes(b[4..8].try_into().unwrap()), 7);
    assert_eq!(i32::from_ne_bytes(b[8..12].try_into().unwrap()), 9);
    assert_eq!(&b[16..24], &[0; 8], "inline: buffer NULL");
    assert_eq!(&b[24..], b"127.0.0.1:5");
    // Text capped at 128 bytes.
    let long = SocketEvent::error(1, "e".repeat(300));
    assert_eq!(long.into_payloads().0.len(), 24 + 128);
    // Heap form: the buffer pointer is the data block.
    let ev = SocketEvent {
        ty: event::DATA,
        id: 3,
        ud: 2,
        data: Some(Payload::copy_from(b"hi")),
        text: None,
    };
    let (p, data) = ev.into_payloads();
    let data = data.unwrap();
    assert_eq!(p.len(), 24);
    let ptr = u64::from_ne_bytes(p.as_slice()[16..24].try_into().unwrap());
    assert_eq!(ptr as usize, data.as_ptr() as usize);
    // CLOSE and WARNING: 24 bytes, NULL buffer.
    let (p, _) = SocketEvent::close(3).into_payloads();
    assert_eq!(p.len(), 24);
}

#[test]
fn strerror_drops_the_os_error_suffix() {
    let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(strerror(&e), "Connection refused");
}

// --- the socket thread on loopback ----------------------------------------------------------

/// A decoded event as a service would see it.
#[derive(Debug, Clone)]
struct Ev {
    owner: u32,
    ty: i32,
    id: i32,
    ud: i32,
    text: String,
    data: Vec<u8>,
}

struct Recorder {
    tx: StdMutex<mpsc::Sender<Ev>>,
    logs: Arc<StdMutex<Vec<String>>>,
}

/// An owner whose queue is always full: its DATA is delivered and the connection held.
const FULL_OWNER: u32 = 77;
/// An owner whose DATA delivery stalls the socket thread until [`STALL_RELEASE`] (at most
/// [`WAIT`]); [`STALLED`] says it is stalled.
const STALL_OWNER: u32 = 78;
static STALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STALL_RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Held by each test that stalls a socket thread (the flags above are shared).
static STALL_TESTS: StdMutex<()> = StdMutex::new(());

impl Sink for Recorder {
    fn deliver(&self, owner: u32, ev: SocketEvent) -> Delivery {
        if owner == 999 {
            return Delivery::Gone; // a service that is gone
        }
        let held = owner == FULL_OWNER && ev.ty == event::DATA;
        if owner == STALL_OWNER && ev.ty == event::DATA {
            STALLED.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + WAIT;
            while !STALL_RELEASE.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            STALLED.store(false, Ordering::SeqCst);
        }
        let text = String::from_utf8_lossy(ev.inline_text()).into_owned();
        let data = ev
            .data
            .as_ref()
            .map(|d| d.as_slice().to_vec())
            .unwrap_or_default();
        let _ = self.tx.lock().unwrap().send(Ev {
            owner,
            ty: ev.ty,
            id: ev.id,
            ud: ev.ud,
            text,
            data,
        });
        if held {
            Delivery::Hold
        } else {
            Delivery::Queued
        }
    }
    fn log(&self, text: &str) {
        self.logs.lock().unwrap().push(text.to_owned());
    }
    fn now(&self) -> u64 {
        42
    }
}

struct Harness {
    srv: Arc<SocketServer>,
    rx: mpsc::Receiver<Ev>,
    logs: Arc<StdMutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

const WAIT: Duration = Duration::from_secs(5);

impl Harness {
    fn new(cfg: SocketConfig) -> Harness {
        Harness::start(cfg, None)
    }

    /// A harness whose `connect` name lookups go through `lookup`.
    fn with_lookup(lookup: Lookup) -> Harness {
        Harness::start(SocketConfig::default(), Some(lookup))
    }

    fn start(cfg: SocketConfig, lookup: Option<Lookup>) -> Harness {
        let (tx, rx) = mpsc::channel();
        let logs = Arc::new(StdMutex::new(Vec::new()));
        let sink = Recorder {
            tx: StdMutex::new(tx),
            logs: logs.clone(),
        };
        let mut srv = SocketServer::new(cfg, Box::new(sink)).unwrap();
        if let Some(lookup) = lookup {
            srv.lookup = lookup;
        }
        let srv = Arc::new(srv);
        let thread = Some(thread::spawn({
            let srv = srv.clone();
            move || srv.run()
        }));
        let deadline = Instant::now() + WAIT;
        while !srv.is_running() {
            assert!(Instant::now() < deadline, "socket thread did not start");
            thread::sleep(Duration::from_millis(1));
        }
        Harness {
            srv,
            rx,
            logs,
            thread,
        }
    }

    fn next(&self) -> Ev {
        self.rx
            .recv_timeout(WAIT)
            .expect("a socket event within 5 s")
    }

    /// The next event of type `ty` for socket `id`, skipping others (DATA is collected by
    /// `read_data`).
    fn expect(&self, ty: i32, id: i32) -> Ev {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no event type {ty} for socket {id}"));
            if ev.ty == ty && ev.id == id {
                return ev;
            }
            assert!(
                ev.ty != event::ERROR,
                "unexpected error while waiting for {ty}: {ev:?}"
            );
        }
    }

    /// Collects DATA of `id` until `n` bytes arrived.
    fn read_data(&self, id: i32, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < n {
            let ev = self.next();
            assert_eq!((ev.ty, ev.id), (event::DATA, id), "{ev:?}");
            assert_eq!(ev.ud as usize, ev.data.len());
            got.extend_from_slice(&ev.data);
        }
        got
    }

    fn quiet(&self, d: Duration) -> Option<Ev> {
        self.rx.recv_timeout(d).ok()
    }

    fn listen(&self, owner: u32, host: &str) -> (i32, u16) {
        let id = self.srv.listen(owner, Some(host), 0, 32);
        assert!(id > 0);
        let ev = self.expect(event::CONNECT, id);
        assert!(ev.ud > 0, "bound port reported: {ev:?}");
        self.srv.start(owner, id);
        assert_eq!(self.expect(event::CONNECT, id).text, "start");
        (id, ev.ud as u16)
    }

    /// A loopback client connected to `port` and the server-side id (started by `owner`).
    fn accept(&self, listen_id: i32, owner: u32, port: u16) -> (TcpStream, i32) {
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let ev = self.expect(event::ACCEPT, listen_id);
        let local = c.local_addr().unwrap();
        assert_eq!(ev.text, format!("127.0.0.1:{}", local.port()));
        self.srv.start(owner, ev.ud);
        let started = self.expect(event::CONNECT, ev.ud);
        assert_eq!(started.text, "start");
        assert_eq!(started.owner, owner);
        c.set_read_timeout(Some(WAIT)).unwrap();
        (c, ev.ud)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.srv.exit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        assert_eq!(self.srv.open_sockets(), 0, "exit closes every socket");
    }
}

fn read_exact(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    c.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn listen_accept_start_echo_close() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(10, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 11, port);
    assert_eq!(h.srv.state(id), Some(State::Connected));
    c.write_all(b"hello").unwrap();
    let got = h.read_data(id, 5);
    assert_eq!(got, b"hello");
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"world")), 0);
    assert_eq!(h.srv.send(id, SendData::Owned(Payload::copy_from(b"!"))), 0);
    assert_eq!(read_exact(&mut c, 6), b"world!");
    // A graceful close with nothing pending: CLOSE at once, the id is invalid.
    h.srv.close(id);
    let ev = h.expect(event::CLOSE, id);
    assert_eq!(ev.owner, 11);
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"x")), -1);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // The listener counts accepts; closing it raises CLOSE.
    h.srv.close(lid);
    h.expect(event::CLOSE, lid);
}

#[test]
fn large_reads_grow_the_buffer_and_arrive_complete() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (c, id) = h.accept(lid, 1, port);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let writer = thread::spawn({
        let data = data.clone();
        let mut c = c.try_clone().unwrap();
        move || c.write_all(&data).unwrap()
    });
    let got = h.read_data(id, data.len());
    writer.join().unwrap();
    assert_eq!(got, data);
    c.shutdown(NetShutdown::Both).unwrap();
}

#[test]
fn connect_reports_peer_ip_and_refused_port_reports_error() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let id = h.srv.connect(2, "127.0.0.1", i32::from(port));
    assert!(id > 0);
    // CONNECT (to the connecting owner) and ACCEPT (to the listener's), in either order.
    let (a, b) = (h.next(), h.next());
    let (conn, acc) = if a.ty == event::CONNECT {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!((conn.ty, conn.id), (event::CONNECT, id));
    assert_eq!((conn.owner, conn.text.as_str()), (2, "127.0.0.1"));
    assert_eq!((acc.ty, acc.id, acc.owner), (event::ACCEPT, lid, 1));
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let id = h.srv.connect(2, "127.0.0.1", i32::from(dead));
    let ev = h.next();
    assert_eq!((ev.ty, ev.id), (event::ERROR, id), "{ev:?}");
    assert_eq!(ev.text, "Connection refused");
    assert_eq!(h.srv.state(id), None);
    // Unresolvable host and a bad port fail through ERROR too.
    let id = h.srv.connect(2, "no-such-host.invalid", 80);
    assert_eq!(h.next().ty, event::ERROR);
    assert_eq!(h.srv.state(id), None);
    let long = "a".repeat(240);
    assert_eq!(h.srv.connect(2, &long, 80), -1);
}

#[test]
fn peer_half_close_then_service_sends_and_closes() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    c.write_all(b"question").unwrap();
    c.shutdown(NetShutdown::Write).unwrap();
    assert_eq!(h.read_data(id, 8), b"question");
    h.expect(event::CLOSE, id);
    assert_eq!(h.srv.state(id), Some(State::HalfcloseRead));
    // Still writable; close then flushes and closes without a second CLOSE.
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"answer")), 0);
    h.srv.close(id);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer");
    assert!(
        h.quiet(Duration::from_millis(100)).is_none(),
        "CLOSE only once"
    );
    assert_eq!(h.srv.state(id), None);
}

#[test]
fn pause_stops_data_until_start() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    h.srv.pause(id);
    // pause has no event; make sure it is processed before the data is written.
    let _ = h.srv.info();
    c.write_all(b"while paused").unwrap();
    assert!(h.quiet(Duration::from_millis(200)).is_none());
    h.srv.start(7, id);
    let ev = h.expect(event::CONNECT, id);
    assert_eq!((ev.owner, ev.text.as_str()), (7, "transfer"));
    let mut got = Vec::new();
    while got.len() < 12 {
        let ev = h.next();
        assert_eq!((ev.ty, ev.owner), (event::DATA, 7));
        got.extend(ev.data);
    }
    assert_eq!(got, b"while paused");
}

#[test]
fn held_connection_is_read_again_when_resumed_or_started() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(FULL_OWNER, "127.0.0.1");
    let (mut c, id) = h.accept(lid, FULL_OWNER, port);
    c.write_all(b"first").unwrap();
    assert_eq!(h.read_data(id, 5), b"first"); // delivered, then held
    c.write_all(b"second").unwrap();
    assert!(h.quiet(Duration::from_millis(200)).is_none(), "held");
    h.srv.resume_read(id);
    // Delivered, then held again.
    assert_eq!(h.read_data(id, 6), b"second");
    // The owner's own pause wins over a later resume; its start reads again.
    h.srv.pause(id);
    h.srv.resume_read(id);
    let _ = h.srv.info();
    c.write_all(b"third").unwrap();
    assert!(h.quiet(Duration::from_millis(200)).is_none(), "paused");
    h.srv.start(FULL_OWNER, id);
    assert_eq!(h.expect(event::CONNECT, id).text, "transfer");
    assert_eq!(h.read_data(id, 5), b"third");
    // Held again after "third"; a resume of another id changes nothing.
    h.srv.resume_read(12345);
    let _ = h.srv.info();
    c.write_all(b"4").unwrap();
    assert!(
        h.quiet(Duration::from_millis(200)).is_none(),
        "held after third"
    );
    h.srv.resume_read(id);
    assert_eq!(h.read_data(id, 1), b"4");
}

#[test]
fn start_of_unknown_id_is_an_error_for_the_caller() {
    let h = Harness::new(SocketConfig::default());
    h.srv.start(5, 12345);
    let ev = h.next();
    assert_eq!(
        (ev.ty, ev.id, ev.owner, ev.text.as_str()),
        (event::ERROR, 12345, 5, "invalid socket")
    );
}

#[test]
fn warning_when_peer_does_not_read_then_drained() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    let chunk = vec![7u8; 256 * 1024];
    let mut sent = 0;
    let ev = loop {
        assert!(sent < 64 << 20, "no warning after {sent} bytes");
        assert_eq!(h.srv.send(id, SendData::Borrowed(&chunk)), 0);
        sent += chunk.len();
        if let Some(ev) = h.quiet(Duration::from_millis(1)) {
            break ev;
        }
    };
    assert_eq!((ev.ty, ev.id), (event::WARNING, id), "{ev:?}");
    assert!(ev.ud >= 1024, "pending KiB {}", ev.ud);
    // The peer reads everything: the drained warning (ud 0) follows.
    let total = sent;
    let reader = thread::spawn(move || read_exact(&mut c, total).len());
    let drained = loop {
        let ev = h.next();
        assert_eq!((ev.ty, ev.id), (event::WARNING, id));
        if ev.ud == 0 {
            break ev;
        }
    };
    assert_eq!(drained.ud, 0);
    assert_eq!(reader.join().unwrap(), total);
}

#[test]
fn send_limit_closes_the_connection() {
    let h = Harness::new(SocketConfig {
        max_sockets: 100,
        send_limit: 4 << 20,
        ..SocketConfig::default()
    });
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (_c, id) = h.accept(lid, 1, port);
    let chunk = vec![1u8; 512 * 1024];
    for _ in 0..64 {
        if h.srv.send(id, SendData::Borrowed(&chunk)) != 0 {
            break;
        }
    }
    let ev = loop {
        let ev = h.next();
        if ev.ty != event::WARNING {
            break ev;
        }
    };
    assert_eq!(
        (ev.ty, ev.id, ev.text.as_str()),
        (event::ERROR, id, "send buffer overflow")
    );
    assert_eq!(h.srv.state(id), None);
    assert!(h
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("socket_send_limit")));
}

#[test]
fn socket_max_refuses_accepts_with_an_error_on_the_listener() {
    let h = Harness::new(SocketConfig {
        max_sockets: 2,
        send_limit: 0,
        ..SocketConfig::default()
    });
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (_c, _id) = h.accept(lid, 1, port);
    assert_eq!(h.srv.open_sockets(), 2);
    let mut c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let ev = h.next();
    assert_eq!(
        (ev.ty, ev.id, ev.text.as_str()),
        (event::ERROR, lid, "reach skynet socket number limit")
    );
    c2.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(c2.read(&mut buf), Ok(0) | Err(_)),
        "closed by the server"
    );
    assert_eq!(h.srv.connect(1, "127.0.0.1", 1), -1);
    assert_eq!(h.srv.udp(1, None, 0), -1);
}

#[test]
fn shutdown_discards_pending_and_close_waits_for_flush() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (c, id) = h.accept(lid, 1, port);
    // Fill the socket buffers so data stays pending, then close gracefully.
    let chunk = vec![3u8; 1 << 20];
    for _ in 0..8 {
        assert_eq!(h.srv.send(id, SendData::Borrowed(&chunk)), 0);
    }
    h.srv.close(id);
    h.expect(event::CLOSE, id);
    // Closing: further sends fail at once, but the socket lives until flushed.
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"late")), -1);
    let reader = thread::spawn({
        let mut c = c.try_clone().unwrap();
        move || {
            let mut all = Vec::new();
            c.read_to_end(&mut all).unwrap();
            all.len()
        }
    });
    assert_eq!(reader.join().unwrap(), 8 << 20);
    // Immediate shutdown of another connection: CLOSE, peer sees EOF.
    let (mut c2, id2) = h.accept(lid, 1, port);
    h.srv.shutdown(id2);
    h.expect(event::CLOSE, id2);
    let mut rest = Vec::new();
    let _ = c2.read_to_end(&mut rest);
}

#[test]
fn udp_v4_and_v6_echo_with_encoded_addresses() {
    let h = Harness::new(SocketConfig::default());
    for host in ["127.0.0.1", "::1"] {
        let id = h.srv.udp(3, Some(host), 0);
        assert!(id > 0);
        let info = h.srv.info();
        let me = info.iter().find(|i| i.id == id).expect("listed");
        assert_eq!(me.kind, info_type::UDP);
        // Find the bound port through a dial: send to ourselves from a std socket.
        let peer = UdpSocket::bind((host, 0)).unwrap();
        peer.set_read_timeout(Some(WAIT)).unwrap();
        {
            // udp_dial: a socket whose default peer serves plain sends.
            let probe = h
                .srv
                .udp_dial(3, host, i32::from(peer.local_addr().unwrap().port()));
            assert!(probe > 0);
            assert_eq!(h.srv.send(probe, SendData::Borrowed(b"probe")), 0);
            let mut buf = [0u8; 64];
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"probe");
            h.srv.close(probe);
            h.expect(event::CLOSE, probe);
            assert_ne!(from.port(), 0);
        }
        // Datagram into the listening socket `id`: bind a listener with a known port.
        let lport = {
            let tmp = UdpSocket::bind((host, 0)).unwrap();
            tmp.local_addr().unwrap().port()
        };
        let lid = h.srv.udp_listen(3, Some(host), i32::from(lport));
        assert!(lid > 0, "udp_listen {host}:{lport}");
        peer.send_to(b"ping", (host, lport)).unwrap();
        let ev = h.expect(event::UDP, lid);
        assert_eq!(ev.ud, 4);
        assert_eq!(&ev.data[..4], b"ping");
        let addr = &ev.data[4..];
        assert_eq!(addr.len(), if host == "::1" { 19 } else { 7 });
        assert_eq!(decode_udp_address(addr), Some(peer.local_addr().unwrap()));
        // Echo back to the encoded address.
        assert_eq!(h.srv.udp_send(lid, addr, SendData::Borrowed(b"pong")), 0);
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(from.port(), lport);
        // Bad protocol byte: refused.
        assert_eq!(h.srv.udp_send(lid, &[9; 19], SendData::Borrowed(b"x")), -1);
        // A default peer set by udp_connect serves plain sends.
        let pport = peer.local_addr().unwrap().port();
        assert_eq!(h.srv.udp_connect(lid, host, i32::from(pport)), 0);
        assert_eq!(h.srv.send(lid, SendData::Borrowed(b"again")), 0);
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"again");
        h.srv.close(lid);
        h.expect(event::CLOSE, lid);
        h.srv.close(id);
        h.expect(event::CLOSE, id);
    }
    assert_eq!(
        h.srv.udp_listen(3, Some("127.0.0.1"), 0),
        -1,
        "port 0 refused"
    );
}

#[test]
fn udp_send_without_peer_logs_address_first() {
    let h = Harness::new(SocketConfig::default());
    let id = h.srv.udp(3, None, 0);
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"x")), 0);
    let _ = h.srv.info(); // processed
    assert!(h
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l == &format!("socket-server : set udp ({id}) error: address first.")));
    // v6 address on a v4 socket: protocol mismatch.
    h.srv.udp_connect(id, "::1", 9);
    let ev = h.next();
    assert_eq!(
        (ev.ty, ev.text.as_str()),
        (event::ERROR, "protocol mismatch")
    );
}

#[test]
fn info_lists_live_sockets() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 2, port);
    c.write_all(b"12345").unwrap();
    h.read_data(id, 5);
    let info = h.srv.info();
    let l = info.iter().find(|i| i.id == lid).unwrap();
    assert_eq!(l.kind, info_type::LISTEN);
    assert_eq!(l.name, format!("127.0.0.1:{port}"));
    assert_eq!(l.read, 1, "one accept");
    assert_eq!(l.opaque, 1);
    let t = info.iter().find(|i| i.id == id).unwrap();
    assert_eq!(t.kind, info_type::TCP);
    assert_eq!(
        t.name,
        format!("127.0.0.1:{}", c.local_addr().unwrap().port())
    );
    assert_eq!((t.read, t.rtime, t.opaque), (5, 42, 2));
    assert!(t.reading && !t.writing);
    // By decreasing slot.
    assert!(info.windows(2).all(|w| slot_of(w[0].id) > slot_of(w[1].id)));
}

#[test]
fn listen_ipv6_and_events_to_a_gone_owner_are_dropped() {
    let h = Harness::new(SocketConfig::default());
    let id = h.srv.listen(1, Some("::1"), 0, 8);
    let ev = h.expect(event::CONNECT, id);
    assert_eq!(ev.text, "::1");
    assert!(ev.ud > 0);
    // Owner 999 is "gone" for the recorder: its events vanish, the socket stays.
    let lid2 = h.srv.listen(999, Some("127.0.0.1"), 0, 8);
    assert!(h.quiet(Duration::from_millis(100)).is_none());
    assert_eq!(h.srv.state(lid2), Some(State::PListen));
    assert_eq!(h.srv.listen(1, Some("256.0.0.1"), 0, 8), -1);
}

#[test]
fn bind_wraps_a_descriptor_without_closing_it() {
    let h = Harness::new(SocketConfig::default());
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let dup = a.as_fd().try_clone_to_owned().unwrap();
    let id = h.srv.bind(4, dup);
    assert_eq!(h.expect(event::CONNECT, id).text, "binding");
    b.write_all(b"typed").unwrap();
    assert_eq!(h.read_data(id, 5), b"typed");
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"out")), 0);
    let mut buf = [0u8; 3];
    b.set_read_timeout(Some(WAIT)).unwrap();
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"out");
    let info = h.srv.info();
    assert_eq!(
        info.iter().find(|i| i.id == id).unwrap().kind,
        info_type::BIND
    );
    h.srv.close(id);
    h.expect(event::CLOSE, id);
    // The original descriptor still works.
    (&a).write_all(b"still open").unwrap();
}

#[test]
fn low_priority_waits_for_high_while_data_is_pending() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    // The peer does not read yet: a big first send stays pending.
    let big = vec![b'H'; 8 << 20];
    assert_eq!(h.srv.send(id, SendData::Borrowed(&big)), 0);
    assert_eq!(h.srv.send_lowpriority(id, SendData::Borrowed(b"low")), 0);
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"high")), 0);
    let _ = h.srv.info(); // all three processed
    let got = read_exact(&mut c, big.len() + 7);
    assert!(got[..big.len()].iter().all(|&b| b == b'H'));
    assert_eq!(&got[big.len()..], b"highlow");
    // With nothing pending, a low-priority send goes out at once.
    assert_eq!(h.srv.send_lowpriority(id, SendData::Borrowed(b"now")), 0);
    assert_eq!(read_exact(&mut c, 3), b"now");
    assert_eq!(h.srv.send_lowpriority(77777, SendData::Borrowed(b"x")), -1);
}

/// Stalls the socket thread in the delivery of one byte written to `stall` (a connection of
/// [`STALL_OWNER`]) until the returned guard is released or dropped.
fn stall_socket_thread(stall: &mut TcpStream) -> StallGuard {
    STALL_RELEASE.store(false, Ordering::SeqCst);
    stall.write_all(b"x").unwrap();
    let deadline = Instant::now() + WAIT;
    while !STALLED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the socket thread did not stall");
        thread::sleep(Duration::from_millis(1));
    }
    StallGuard
}

struct StallGuard;

impl Drop for StallGuard {
    fn drop(&mut self) {
        STALL_RELEASE.store(true, Ordering::SeqCst);
    }
}

/// Sends from this thread as if from a handler whose service has `n` messages waiting, until
/// the guard is dropped (also when an assertion fails: the test thread may be reused).
fn busy_service(n: usize) -> BusyGuard {
    crate::server::set_dispatch_backlog(n);
    BusyGuard
}

struct BusyGuard;

impl Drop for BusyGuard {
    fn drop(&mut self) {
        crate::server::set_dispatch_backlog(0);
    }
}

/// Reads `n` bytes that must come while the socket thread is stalled (written by the caller):
/// within a second, far less than the stall's own deadline.
fn read_during_stall(c: &mut TcpStream, n: usize) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let got = read_exact(c, n);
    c.set_read_timeout(Some(WAIT)).unwrap();
    got
}

/// Asserts that nothing arrives on `c` for a while (`what` says what would be wrong).
fn assert_nothing_arrives(c: &mut TcpStream, what: &str) {
    c.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let mut buf = [0u8; 8];
    let early = c.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
        "{what}: {early:?}"
    );
    c.set_read_timeout(Some(WAIT)).unwrap();
}

/// A send made while the sending service has messages waiting is handed to the socket thread
/// (the worker goes on with the next message, the socket thread writes in parallel); with
/// nothing waiting the caller writes it at once (no hop: the lowest latency).
#[test]
fn the_caller_writes_a_send_itself_only_when_its_service_has_nothing_waiting() {
    let _serial = STALL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    let (mut stall, stall_id) = h.accept(lid, STALL_OWNER, port);
    let stalled = stall_socket_thread(&mut stall);
    // Nothing waiting: written by this thread although the socket thread is stalled.
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"now")), 0);
    assert_eq!(read_during_stall(&mut c, 3), b"now");
    // Messages waiting: queued for the socket thread, written once it runs again.
    let busy = busy_service(3);
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"later")), 0);
    drop(busy);
    assert_nothing_arrives(
        &mut c,
        "a send with messages waiting was written by the caller",
    );
    drop(stalled);
    assert_eq!(read_exact(&mut c, 5), b"later");
    assert_eq!(h.read_data(stall_id, 1), b"x");
}

/// Once the socket thread is behind (pending requests at the hand-off limit), a worker with
/// messages waiting writes its sends itself again, in parallel with the other workers.
#[test]
fn a_busy_service_writes_itself_when_the_socket_thread_is_behind() {
    let _serial = STALL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let h = Harness::new(SocketConfig {
        handoff_limit: 2,
        ..SocketConfig::default()
    });
    let (lid, port) = h.listen(1, "127.0.0.1");
    let mut conns: Vec<_> = (0..3).map(|_| h.accept(lid, 1, port)).collect();
    let (mut stall, stall_id) = h.accept(lid, STALL_OWNER, port);
    let stalled = stall_socket_thread(&mut stall);
    let busy = busy_service(3);
    // Two sends are handed to the stalled thread; the third finds it two requests behind.
    for (i, (_, id)) in conns.iter().enumerate() {
        assert_eq!(
            h.srv.send(*id, SendData::Owned(bytes(4, b'a' + i as u8))),
            0
        );
    }
    drop(busy);
    assert_eq!(read_during_stall(&mut conns[2].0, 4), b"cccc");
    for (c, _) in &mut conns[..2] {
        assert_nothing_arrives(
            c,
            "a send handed to the socket thread arrived during its stall",
        );
    }
    drop(stalled);
    assert_eq!(read_exact(&mut conns[0].0, 4), b"aaaa");
    assert_eq!(read_exact(&mut conns[1].0, 4), b"bbbb");
    assert_eq!(h.read_data(stall_id, 1), b"x");
    assert_eq!(h.srv.pending.load(Ordering::Relaxed), 0);
}

/// `socket_handoff_limit = 0`: upstream's direct write, whatever waits for the service.
#[test]
fn with_no_handoff_limit_a_busy_service_writes_itself() {
    let _serial = STALL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let h = Harness::new(SocketConfig {
        handoff_limit: 0,
        ..SocketConfig::default()
    });
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    let (mut stall, stall_id) = h.accept(lid, STALL_OWNER, port);
    let stalled = stall_socket_thread(&mut stall);
    let busy = busy_service(3);
    assert_eq!(h.srv.send(id, SendData::Borrowed(b"now")), 0);
    drop(busy);
    assert_eq!(read_during_stall(&mut c, 3), b"now");
    drop(stalled);
    assert_eq!(h.read_data(stall_id, 1), b"x");
}

/// Several threads send numbered messages to one connection while the peer reads slowly at
/// first: sends mix direct writes and queued ones, and each thread's messages must arrive
/// whole and in order.
#[test]
fn concurrent_senders_keep_each_senders_order() {
    let h = Harness::new(SocketConfig::default());
    let (lid, port) = h.listen(1, "127.0.0.1");
    let (mut c, id) = h.accept(lid, 1, port);
    const THREADS: usize = 4;
    const MSGS: usize = 3000;
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let srv = h.srv.clone();
            thread::spawn(move || {
                for i in 0..MSGS {
                    // "<t>:<i>;" padded with '.' to a length that varies (up to ~2 KiB).
                    let mut m = format!("{t}:{i}").into_bytes();
                    m.resize(8 + (i * 131 + t * 17) % 2000, b'.');
                    m.push(b';');
                    let r = if i % 2 == 0 {
                        srv.send(id, SendData::Borrowed(&m))
                    } else {
                        srv.send(id, SendData::Owned(Payload::copy_from(&m)))
                    };
                    assert_eq!(r, 0);
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50)); // let data pile up first
    let mut next = [0usize; THREADS];
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(30);
    while next.iter().any(|&n| n < MSGS) {
        assert!(Instant::now() < deadline, "stuck at {next:?}");
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF at {next:?}");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.iter().position(|&b| b == b';') {
            let msg: Vec<u8> = buf.drain(..=end).collect();
            let head = String::from_utf8_lossy(&msg);
            let head = head.trim_end_matches([';', '.']);
            let (t, i) = head.split_once(':').expect("t:i");
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}: message {i} out of order");
            let want = 8 + (i * 131 + t * 17) % 2000 + 1;
            assert_eq!(msg.len(), want, "thread {t} message {i} length");
            next[t] += 1;
        }
    }
    for s in senders {
        s.join().unwrap();
    }
    let info = h.srv.info();
    let me = info.iter().find(|i| i.id == id).unwrap();
    assert!(me.write > 0 && me.wtime == 42);
}

// --- request rounds --------------------------------------------------------------------------

/// A server whose socket thread the test drives round by round, and the events it delivers.
fn unstarted() -> (SocketServer, mpsc::Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    let sink = Recorder {
        tx: StdMutex::new(tx),
        logs: Arc::new(StdMutex::new(Vec::new())),
    };
    (
        SocketServer::new(SocketConfig::default(), Box::new(sink)).unwrap(),
        rx,
    )
}

fn delivered(rx: &mpsc::Receiver<Ev>) -> Vec<(i32, i32)> {
    rx.try_iter().map(|e| (e.ty, e.id)).collect()
}

#[test]
fn a_round_handles_at_most_the_bound_and_the_rest_in_later_rounds() {
    let (srv, rx) = unstarted();
    let poll = srv.poller.lock().take().unwrap();
    let mut t = SocketThread::new(&srv, poll);
    assert_eq!(t.requests_per_round, MAX_REQUESTS_PER_ROUND);
    t.requests_per_round = 3;
    // Starting an unknown id answers ERROR at once: one event per handled request.
    for k in 0..8 {
        srv.start(7, 1000 + k);
    }
    let errors = |ids: &[i32]| ids.iter().map(|&id| (event::ERROR, id)).collect::<Vec<_>>();
    assert_eq!(t.poll_timeout(), None);
    assert!(t.handle_requests());
    assert_eq!(delivered(&rx), errors(&[1000, 1001, 1002]));
    assert_eq!(
        t.poll_timeout(),
        Some(0),
        "requests left: the next wait must not block"
    );
    srv.start(7, 2000); // queued behind the backlog
    assert!(t.handle_requests());
    assert_eq!(delivered(&rx), errors(&[1003, 1004, 1005]));
    // What the wait reports when a submitter made the wake-up descriptor readable: the
    // queue is taken only then.
    t.wake_seen = true;
    assert!(t.handle_requests());
    assert_eq!(delivered(&rx), errors(&[1006, 1007, 2000]));
    assert_eq!(t.poll_timeout(), None);
    assert!(t.handle_requests());
    assert_eq!(delivered(&rx), []);
    // Exit ends the loop even behind other requests, and nothing after it is handled.
    srv.start(7, 3000);
    srv.exit();
    srv.start(7, 3001);
    assert!(
        t.handle_requests(),
        "no wake-up seen: the queue is not looked at"
    );
    assert_eq!(delivered(&rx), []);
    t.wake_seen = true;
    assert!(!t.handle_requests());
    assert_eq!(delivered(&rx), errors(&[3000]));
}

#[test]
fn a_request_flood_does_not_hold_back_the_io_of_the_round() {
    let (srv, rx) = unstarted();
    let poll = srv.poller.lock().take().unwrap();
    let mut t = SocketThread::new(&srv, poll);
    t.requests_per_round = 2;
    let lid = srv.listen(1, Some("127.0.0.1"), 0, 8);
    assert!(t.round());
    let ev = rx.try_recv().unwrap();
    assert_eq!((ev.ty, ev.id), (event::CONNECT, lid));
    let port = ev.ud as u16;
    srv.start(1, lid);
    assert!(t.round());
    assert_eq!(delivered(&rx), [(event::CONNECT, lid)]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(t.round()); // blocks until the listener is readable
    let ev = rx.try_recv().unwrap();
    assert_eq!((ev.ty, ev.id), (event::ACCEPT, lid));
    let cid = ev.ud;
    srv.start(1, cid);
    assert!(t.round());
    assert_eq!(delivered(&rx), [(event::CONNECT, cid)]);

    c.write_all(b"ping").unwrap();
    // Bounded wait until the bytes are readable on the server side, so the next wait
    // reports them together with the queued requests.
    let server_side = match &t.sockets[&cid].io {
        Io::Stream(s) => s.clone(),
        _ => panic!("an accepted socket is a stream"),
    };
    let deadline = Instant::now() + WAIT;
    while server_side.peek(&mut [0; 4]).map_or(true, |n| n < 4) {
        assert!(Instant::now() < deadline, "no data on the accepted socket");
        thread::yield_now();
    }
    for k in 0..5 {
        srv.start(1, 5000 + k);
    }
    assert!(t.round());
    assert_eq!(
        delivered(&rx),
        [
            (event::ERROR, 5000),
            (event::ERROR, 5001),
            (event::DATA, cid)
        ]
    );
    assert_eq!(t.poll_timeout(), Some(0));
    assert!(t.round());
    assert_eq!(delivered(&rx), [(event::ERROR, 5002), (event::ERROR, 5003)]);
    assert!(t.round());
    assert_eq!(delivered(&rx), [(event::ERROR, 5004)]);
    assert_eq!(t.poll_timeout(), None);
    srv.exit();
    t.run();
    assert_eq!(srv.open_sockets(), 0);
}

// --- name lookups ----------------------------------------------------------------------------

#[test]
fn only_host_names_need_a_lookup() {
    assert!(needs_lookup("localhost", 80));
    assert!(needs_lookup("example.invalid", 0));
    assert!(!needs_lookup("127.0.0.1", 80));
    assert!(!needs_lookup("::1", 80));
    assert!(!needs_lookup("", 80));
    // An invalid port fails at once, without a lookup.
    assert!(!needs_lookup("localhost", 70000));
    assert!(!needs_lookup("localhost", -1));
}

/// A lookup that reports each call (host, thread) and answers only when the test says so.
struct GatedLookup {
    calls: mpsc::Receiver<(String, thread::ThreadId)>,
    answers: mpsc::Sender<io::Result<Vec<SocketAddr>>>,
}

fn gated_lookup() -> (Lookup, GatedLookup) {
    let (call_tx, calls) = mpsc::channel();
    let (answers, answer_rx) = mpsc::channel::<io::Result<Vec<SocketAddr>>>();
    let call_tx = StdMutex::new(call_tx);
    let answer_rx = StdMutex::new(answer_rx);
    let lookup: Lookup = Arc::new(move |host: &str, _port: i32| {
        let _ = call_tx
            .lock()
            .unwrap()
            .send((host.to_owned(), thread::current().id()));
        answer_rx
            .lock()
            .unwrap()
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    });
    (lookup, GatedLookup { calls, answers })
}

impl GatedLookup {
    fn called(&self) -> (String, thread::ThreadId) {
        self.calls.recv_timeout(WAIT).expect("a lookup within 5 s")
    }
}

#[test]
fn a_pending_lookup_holds_up_neither_io_nor_requests_on_the_connection() {
    let (lookup, gate) = gated_lookup();
    let h = Harness::with_lookup(lookup);
    let socket_thread = h.thread.as_ref().unwrap().thread().id();
    let (lid, port) = h.listen(1, "127.0.0.1");
    let slow = h.srv.connect(2, "slow.example", i32::from(port));
    assert!(slow > 0);
    let (host, looked_up_on) = gate.called();
    assert_eq!(host, "slow.example");
    assert_ne!(
        looked_up_on, socket_thread,
        "the lookup runs off the socket thread"
    );
    // Sent before the connection exists: handled once it is connecting, in order.
    assert_eq!(h.srv.send(slow, SendData::Borrowed(b"early ")), 0);
    assert_eq!(h.srv.send(slow, SendData::Borrowed(b"bird")), 0);

    // The lookup cannot finish before the test answers it: meanwhile other connections
    // connect, accept and carry data.
    let lit = h.srv.connect(3, "127.0.0.1", i32::from(port));
    let mut got = [h.next(), h.next()];
    got.sort_by_key(|e| e.ty);
    assert_eq!((got[0].ty, got[0].id), (event::CONNECT, lit));
    assert_eq!((got[1].ty, got[1].id), (event::ACCEPT, lid));
    let (mut c, cid) = h.accept(lid, 1, port);
    c.write_all(b"ping").unwrap();
    assert_eq!(h.read_data(cid, 4), b"ping");
    assert_eq!(h.srv.send(cid, SendData::Borrowed(b"pong")), 0);
    assert_eq!(read_exact(&mut c, 4), b"pong");
    assert_eq!(h.srv.state(slow), Some(State::Reserve));
    assert!(h.srv.info().iter().all(|i| i.id != slow));

    // Answered: the connection connects and the early sends follow.
    gate.answers
        .send(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
        .unwrap();
    let mut got = [h.next(), h.next()];
    got.sort_by_key(|e| e.ty);
    assert_eq!((got[0].ty, got[0].id), (event::CONNECT, slow));
    assert_eq!((got[0].owner, got[0].text.as_str()), (2, "127.0.0.1"));
    assert_eq!((got[1].ty, got[1].id), (event::ACCEPT, lid));
    let peer = got[1].ud;
    h.srv.start(1, peer);
    assert_eq!(h.expect(event::CONNECT, peer).text, "start");
    assert_eq!(h.read_data(peer, 10), b"early bird");

    // A lookup still pending at exit: its id is freed (the harness checks no socket is left).
    let never = h.srv.connect(2, "never.example", 80);
    assert!(never > 0);
    assert_eq!(gate.called().0, "never.example");
}

#[test]
fn a_failed_lookup_answers_error_and_frees_the_id_with_its_requests() {
    let (lookup, gate) = gated_lookup();
    let h = Harness::with_lookup(lookup);
    let id = h.srv.connect(2, "nowhere.example", 80);
    assert!(id > 0);
    gate.called();
    // A close made while the lookup is pending waits for it, and then finds no socket.
    h.srv.close(id);
    gate.answers
        .send(Err(io::Error::other(
            "failed to lookup address information: Name or service not known",
        )))
        .unwrap();
    let ev = h.next();
    assert_eq!((ev.ty, ev.id, ev.owner), (event::ERROR, id, 2), "{ev:?}");
    assert_eq!(ev.text, "Name or service not known");
    // The deferred close found no socket: the next event is the answer to a later request.
    h.srv.start(2, id);
    let ev = h.next();
    assert_eq!(
        (ev.ty, ev.id, ev.text.as_str()),
        (event::ERROR, id, "invalid socket")
    );
    assert_eq!(h.srv.state(id), None);
    assert_eq!(h.srv.open_sockets(), 0);
}

#[test]
fn a_close_made_during_the_lookup_closes_after_the_connect() {
    let (lookup, gate) = gated_lookup();
    let h = Harness::with_lookup(lookup);
    let (_, port) = h.listen(1, "127.0.0.1");
    let id = h.srv.connect(2, "slow.example", i32::from(port));
    gate.called();
    h.srv.close(id);
    gate.answers
        .send(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
        .unwrap();
    // As for a literal address: the connect starts, then the close ends it with CLOSE.
    let ev = h.expect(event::CLOSE, id);
    assert_eq!(ev.owner, 2);
    assert_eq!(h.srv.state(id), None);
}

// --- TLS ---------------------------------------------------------------------------------

mod tls {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::path::PathBuf;

    /// A CA of the test: signs node certificates for 127.0.0.1.
    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let pem = p.self_signed(&key).unwrap().pem();
            Ca {
                issuer: Issuer::new(p, key),
                pem,
            }
        }

        /// (certificate PEM, key PEM) of a node named 127.0.0.1 / localhost.
        fn node(&self) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let p = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
            let cert = p.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skynet-tls-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Files of a node identity signed by `ca`, and the policy's file set.
    fn files(ca: &Ca, listen: &str, connect: &str) -> TlsFiles {
        let dir = scratch("node");
        let (cert, key) = ca.node();
        let w = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            Some(p.to_string_lossy().into_owned())
        };
        TlsFiles {
            cert: w("cert.pem", &cert),
            key: w("key.pem", &key),
            ca: w("ca.pem", &ca.pem),
            listen: listen.to_owned(),
            connect: connect.to_owned(),
            handshake_timeout: 0,
        }
    }

    fn harness(files: &TlsFiles) -> Harness {
        let policy = TlsPolicy::load(files).unwrap().expect("a policy");
        Harness::new(SocketConfig {
            tls: Some(Arc::new(policy)),
            ..SocketConfig::default()
        })
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn listen_at(h: &Harness, owner: u32, port: u16) -> i32 {
        let id = h.srv.listen(owner, Some("127.0.0.1"), i32::from(port), 32);
        assert!(id > 0);
        h.expect(event::CONNECT, id);
        h.srv.start(owner, id);
        assert_eq!(h.expect(event::CONNECT, id).text, "start");
        id
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_log(h: &Harness, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = h.logs.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// A loopback relay to `port` that records every byte it forwards (both directions).
    fn relay(port: u16) -> (u16, Arc<StdMutex<Vec<u8>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let rport = l.local_addr().unwrap().port();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let rec = seen.clone();
        thread::spawn(move || {
            let Ok((a, _)) = l.accept() else { return };
            let b = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let pipe = |mut from: TcpStream, mut to: TcpStream, rec: Arc<StdMutex<Vec<u8>>>| {
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        rec.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(NetShutdown::Write);
                })
            };
            pipe(a.try_clone().unwrap(), b.try_clone().unwrap(), rec.clone());
            pipe(b, a, rec);
        });
        (rport, seen)
    }

    #[test]
    fn mutual_tls_link_carries_plaintext_to_services_and_only_ciphertext_on_the_wire() {
        let ca = Ca::new("ca one");
        let port = free_port();
        let (rport, seen) = relay(port);
        let f = files(
            &ca,
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{rport}"),
        );
        let h = harness(&f);
        let lid = listen_at(&h, 1, port);
        let cid = h.srv.connect(2, "127.0.0.1", i32::from(rport));
        // The client reports CONNECT only after the handshake; the server's ACCEPT too.
        let mut accepted = None;
        let mut connected = false;
        while accepted.is_none() || !connected {
            let ev = h.next();
            assert_ne!(ev.ty, event::ERROR, "{ev:?}");
            match (ev.ty, ev.id) {
                (event::ACCEPT, id) if id == lid => accepted = Some(ev.ud),
                (event::CONNECT, id) if id == cid => connected = true,
                _ => panic!("unexpected {ev:?}"),
            }
        }
        let sid = accepted.unwrap();
        // Sent before the server side is started: waits, decrypted, in the server's rustls.
        let secret = b"the-secret-payload-0123456789";
        assert_eq!(h.srv.send(cid, SendData::Borrowed(secret)), 0);
        h.srv.start(3, sid);
        assert_eq!(h.expect(event::CONNECT, sid).text, "start");
        assert_eq!(h.read_data(sid, secret.len()), secret);
        // Large data both ways, in order.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        assert_eq!(h.srv.send(sid, SendData::Borrowed(&big)), 0);
        assert_eq!(h.read_data(cid, big.len()), big);
        let on_wire = seen.lock().unwrap().clone();
        assert!(on_wire.len() > big.len(), "the relay forwarded the traffic");
        assert!(
            !on_wire.windows(secret.len()).any(|w| w == secret),
            "plaintext on the wire"
        );
        assert!(!on_wire.windows(64).any(|w| w == &big[1000..1064]));
        h.srv.close(cid);
        h.expect(event::CLOSE, cid);
        h.expect(event::CLOSE, sid);
    }

    /// A client with its own rustls configuration, talking to `port` from a plain thread.
    fn foreign_client(
        port: u16,
        trust: &Ca,
        identity: Option<&Ca>,
        payload: &[u8],
    ) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(trust.pem.as_bytes()).unwrap())
            .unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match identity {
            Some(ca) => {
                let (cert, key) = ca.node();
                b.with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap()
            }
            None => b.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(
            Arc::new(cfg),
            ServerName::try_from("127.0.0.1").unwrap(),
        )
        .unwrap();
        let sock = TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(WAIT))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(payload)?;
        tls.flush()?;
        Ok(tls)
    }

    /// The server's verdict on a client certificate comes after the client's handshake:
    /// a refused client reads an alert or the end of the stream.
    fn refused(c: io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>) -> bool {
        let Ok(mut c) = c else { return true };
        let mut buf = [0u8; 16];
        matches!(c.read(&mut buf), Ok(0) | Err(_))
    }

    fn wait_open(h: &Harness, n: usize) {
        let deadline = Instant::now() + WAIT;
        while h.srv.open_sockets() != n {
            assert!(
                Instant::now() < deadline,
                "{} sockets open",
                h.srv.open_sockets()
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn clients_without_a_certificate_from_the_ca_and_plaintext_clients_are_refused() {
        let ca = Ca::new("ca one");
        let other = Ca::new("ca two");
        let port = free_port();
        let h = harness(&files(&ca, &format!(":{port}"), ""));
        let lid = listen_at(&h, 1, port);
        // A certificate from another CA.
        assert!(refused(foreign_client(
            port,
            &ca,
            Some(&other),
            b"from another CA"
        )));
        let line = wait_log(&h, "tls handshake with 127.0.0.1:");
        assert!(line.contains("failed"), "{line}");
        // No certificate at all.
        h.logs.lock().unwrap().clear();
        assert!(refused(foreign_client(port, &ca, None, b"no certificate")));
        wait_log(&h, "tls handshake with 127.0.0.1:");
        // A plaintext client.
        h.logs.lock().unwrap().clear();
        let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
        raw.set_read_timeout(Some(WAIT)).unwrap();
        raw.write_all(b"GET / HTTP/1.0\r\n\r\nplaintext request")
            .unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest); // closed (an alert at most)
        assert!(!rest.windows(9).any(|w| w == b"plaintext"));
        let line = wait_log(&h, "tls handshake with 127.0.0.1:");
        assert_eq!(h.logs.lock().unwrap().len(), 1, "one line per failure");
        assert!(line.contains("failed"), "{line}");
        // The service never heard of any of them (ACCEPT would come before these lines'
        // connections were dropped).
        wait_open(&h, 1);
        assert!(h.rx.try_recv().is_err());
        // A client from the CA gets in.
        let _good = foreign_client(port, &ca, Some(&ca), b"hello").unwrap();
        let ev = h.expect(event::ACCEPT, lid);
        h.srv.start(2, ev.ud);
        h.expect(event::CONNECT, ev.ud);
        assert_eq!(h.read_data(ev.ud, 5), b"hello");
    }

    #[test]
    fn an_outgoing_tls_connection_to_a_server_of_another_ca_reports_error() {
        let ca = Ca::new("ca one");
        let other = Ca::new("ca two");
        let port = free_port();
        let server = harness(&files(&other, &format!("127.0.0.1:{port}"), ""));
        listen_at(&server, 1, port);
        let h = harness(&files(&ca, "", &format!("127.0.0.1:{port}")));
        let cid = h.srv.connect(5, "127.0.0.1", i32::from(port));
        let ev = h.next();
        assert_eq!((ev.ty, ev.id, ev.owner), (event::ERROR, cid, 5), "{ev:?}");
        assert!(ev.text.contains("tls handshake failed"), "{ev:?}");
        wait_log(&h, &format!("tls handshake with 127.0.0.1:{port} failed"));
        assert_eq!(h.srv.state(cid), None);
    }

    #[test]
    fn a_silent_client_is_closed_when_its_handshake_times_out() {
        let ca = Ca::new("ca one");
        let port = free_port();
        let h = harness(&TlsFiles {
            handshake_timeout: 1,
            ..files(&ca, &format!(":{port}"), "")
        });
        let lid = listen_at(&h, 1, port);
        let failures = crate::metrics::tls_handshake_failures();
        let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let me = silent.local_addr().unwrap();
        silent.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 16];
        match silent.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the server did not close the silent connection: {other:?}"),
        }
        let line = wait_log(&h, "tls handshake with 127.0.0.1:");
        assert_eq!(
            line,
            format!("socket-server: tls handshake with {me} failed: timed out")
        );
        assert!(crate::metrics::tls_handshake_failures() > failures);
        wait_open(&h, 1);
        assert!(h.rx.try_recv().is_err(), "the service never heard of it");
        // A client that does its handshake gets in.
        let _good = foreign_client(port, &ca, Some(&ca), b"hello").unwrap();
        let ev = h.expect(event::ACCEPT, lid);
        h.srv.start(2, ev.ud);
        h.expect(event::CONNECT, ev.ud);
        assert_eq!(h.read_data(ev.ud, 5), b"hello");
    }

    #[test]
    fn an_outgoing_handshake_to_a_silent_server_reports_error_when_it_times_out() {
        let ca = Ca::new("ca one");
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let h = harness(&TlsFiles {
            handshake_timeout: 1,
            ..files(&ca, "", &format!("127.0.0.1:{port}"))
        });
        let cid = h.srv.connect(5, "127.0.0.1", i32::from(port));
        let ev = h.next();
        assert_eq!((ev.ty, ev.id, ev.owner), (event::ERROR, cid, 5), "{ev:?}");
        assert_eq!(ev.text, "tls handshake failed: timed out");
        wait_log(
            &h,
            &format!("tls handshake with 127.0.0.1:{port} failed: timed out"),
        );
        assert_eq!(h.srv.state(cid), None);
    }

    #[test]
    fn plain_links_stay_plain_next_to_tls_ones() {
        let ca = Ca::new("ca one");
        let tls_port = free_port();
        let h = harness(&files(&ca, &format!(":{tls_port}"), ""));
        let (lid, port) = h.listen(1, "127.0.0.1");
        assert_ne!(port, tls_port);
        let (mut c, id) = h.accept(lid, 2, port);
        c.write_all(b"plain").unwrap();
        assert_eq!(h.read_data(id, 5), b"plain");
        assert_eq!(h.srv.send(id, SendData::Borrowed(b"back")), 0);
        assert_eq!(read_exact(&mut c, 4), b"back");
    }

    #[test]
    fn bad_files_name_the_key_and_the_file() {
        let ca = Ca::new("ca one");
        let mut f = files(&ca, ":1", "");
        let dir = scratch("bad");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a pem file").unwrap();
        let junk = junk.to_string_lossy().into_owned();
        let mut bad = f.clone();
        bad.key = Some(junk.clone());
        let e = TlsPolicy::load(&bad).unwrap_err();
        assert!(e.starts_with("tls_key: ") && e.contains(&junk), "{e}");
        let mut bad = f.clone();
        bad.cert = Some("/nonexistent/cert.pem".to_owned());
        let e = TlsPolicy::load(&bad).unwrap_err();
        assert!(e.starts_with("tls_cert: /nonexistent/cert.pem"), "{e}");
        let mut bad = f.clone();
        bad.ca = Some(junk.clone());
        let e = TlsPolicy::load(&bad).unwrap_err();
        assert!(e.starts_with("tls_ca: ") && e.contains(&junk), "{e}");
        let mut bad = f.clone();
        bad.listen = "nonsense".to_owned();
        assert!(TlsPolicy::load(&bad)
            .unwrap_err()
            .starts_with("tls_listen: "));
        f.ca = None;
        assert!(TlsPolicy::load(&f)
            .unwrap_err()
            .starts_with("tls_ca: missing"));
        assert!(TlsPolicy::load(&TlsFiles::default()).unwrap().is_none());
    }

    #[test]
    fn endpoints_match_host_and_port() {
        let e = Endpoint::parse(":7000").unwrap();
        assert_eq!((e.host.clone(), e.port), (None, 7000));
        let e = Endpoint::parse("127.0.0.1:7000").unwrap();
        assert_eq!(e.host.as_deref(), Some("127.0.0.1"));
        assert!(Endpoint::parse("7000").is_err());
        assert!(Endpoint::parse("h:port").is_err());
        let v6 = Endpoint::parse("[::1]:9").unwrap();
        assert_eq!(v6.host.as_deref(), Some("::1"));
        let ca = Ca::new("ca");
        let p = TlsPolicy::load(&files(&ca, "127.0.0.1:7000 :7001", "10.0.0.2:9 [::1]:9"))
            .unwrap()
            .unwrap();
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(p.listens(Some("127.0.0.1"), at("127.0.0.1:7000")));
        assert!(p.listens(Some("localhost"), at("127.0.0.1:7000")));
        assert!(
            p.listens(None, at("0.0.0.0:7000")),
            "every address includes 127.0.0.1"
        );
        assert!(!p.listens(Some("10.1.1.1"), at("10.1.1.1:7000")));
        assert!(p.listens(Some("10.1.1.1"), at("10.1.1.1:7001")));
        assert!(!p.listens(None, at("0.0.0.0:7002")));
        assert!(p.connects("10.0.0.2", 9).is_some());
        assert!(p.connects("::1", 9).is_some());
        assert!(p.connects("10.0.0.2", 10).is_none());
        assert!(p.connects("10.0.0.3", 9).is_none());
    }
}
