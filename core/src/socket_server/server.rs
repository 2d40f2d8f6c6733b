//! [`SocketServer`]: the API services call from any thread.

use super::address::{bind_socket, decode_udp_address, protocol_of, resolve};
use super::request::{Queue, Request, SendData, SocketInfo};
use super::resolver::Lookup;
use super::send_list::Priority;
use super::sink::Sink;
use super::slot::{slot_of, Slots, State};
use super::thread::SocketThread;
use super::tls::{write_plain, TlsPolicy};
use super::{protocol, SocketConfig, MAX_EVENT, WAKE_TOKEN};
use crate::poll::{Poller, Waker};
use parking_lot::Mutex;
use socket2::{Domain, Socket as RawSocket, Type};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// The socket server: the API services call (from any thread) and [`SocketServer::run`], the
/// socket thread's loop.
pub struct SocketServer {
    pub(super) slots: Slots,
    pub(super) queue: Mutex<Queue>,
    pub(super) waker: Waker,
    pub(super) poller: Mutex<Option<Poller>>,
    pub(super) sink: Box<dyn Sink>,
    pub(super) send_limit: usize,
    pub(super) tls: Option<Arc<TlsPolicy>>,
    /// Name lookups for `connect` (on the resolver thread).
    pub(super) lookup: Lookup,
    running: AtomicBool,
    /// Bytes read from and written to sockets (relaxed, one add per read or write call).
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    /// Requests submitted and not yet taken up by the socket thread (added under the queue
    /// lock, so the thread's subtraction comes after). Meaningful while the thread runs: what
    /// is left at exit is never subtracted (nothing is submitted or written directly then).
    pub(super) pending: AtomicUsize,
    /// Pending requests at which a worker with messages waiting writes its sends itself
    /// again: the socket thread is behind (many busy workers on many cores), and writes
    /// from each worker run in parallel. 0: never hand off.
    pub(super) handoff_limit: usize,
}

impl SocketServer {
    /// Creates the server (epoll and wake-up descriptors); the socket thread then calls
    /// [`SocketServer::run`]. Requests made before that wait in the queue.
    pub fn new(config: SocketConfig, sink: Box<dyn Sink>) -> io::Result<SocketServer> {
        let poller = Poller::new(MAX_EVENT)?;
        let waker = Waker::new()?;
        poller.add(&waker, WAKE_TOKEN, true, false)?;
        Ok(SocketServer {
            slots: Slots::new(config.max_sockets),
            queue: Mutex::new(Queue {
                requests: Vec::new(),
                signaled: false,
                closed: false,
            }),
            waker,
            poller: Mutex::new(Some(poller)),
            sink,
            send_limit: config.send_limit,
            tls: config.tls,
            lookup: Arc::new(|host: &str, port: i32| resolve(Some(host), port)),
            running: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            handoff_limit: config.handoff_limit,
        })
    }

    /// Sockets open or reserved.
    pub fn open_sockets(&self) -> usize {
        self.slots.open()
    }

    /// Bytes read from sockets so far (TCP and UDP payload).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to sockets so far (direct writes included).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// True while the socket thread runs (requests are answered).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The state of a live id (for tests and diagnostics).
    pub fn state(&self, id: i32) -> Option<State> {
        self.slots.get(id).map(|(s, _)| s)
    }

    fn submit(&self, r: Request) -> bool {
        let mut q = self.queue.lock();
        if q.closed {
            drop(q);
            drop(r);
            return false;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        q.requests.push(r);
        let wake = !std::mem::replace(&mut q.signaled, true);
        drop(q);
        if wake {
            self.waker.wake();
        }
        true
    }

    /// Reserves an id and queues the request `make(id)` builds; -1 if no slot is free.
    fn reserve_and_submit(&self, make: impl FnOnce(i32) -> Request) -> i32 {
        let Some(id) = self.slots.reserve() else {
            return -1;
        };
        if self.submit(make(id)) {
            id
        } else {
            self.slots.release(id);
            -1
        }
    }

    /// Binds and listens synchronously (host `None`/"" = 0.0.0.0, port 0 = any); the owner
    /// then gets CONNECT with the bound IP and ud = the bound port. Id, or -1.
    pub fn listen(&self, owner: u32, host: Option<&str>, port: i32, backlog: i32) -> i32 {
        let Ok(listener) = bind_socket(host, port, Type::STREAM).and_then(|(s, _)| {
            s.listen(backlog)?;
            Ok(TcpListener::from(s))
        }) else {
            return -1;
        };
        let tls = match (&self.tls, listener.local_addr()) {
            (Some(policy), Ok(bound)) => policy.listens(host, bound),
            _ => false,
        };
        self.reserve_and_submit(|id| Request::Listen {
            id,
            owner,
            listener,
            tls,
        })
    }

    /// Connects asynchronously: the id at once; CONNECT (peer IP) or ERROR later. A host
    /// name is looked up off the socket thread. -1 if the host name is too long (232 bytes
    /// or more) or no slot is free.
    pub fn connect(&self, owner: u32, host: &str, port: i32) -> i32 {
        if host.len() + 24 >= 256 {
            self.sink
                .log(&format!("socket-server error: Invalid addr {host}."));
            return -1;
        }
        let tls = self.tls.as_ref().and_then(|p| p.connects(host, port));
        let host = host.to_owned();
        self.reserve_and_submit(|id| Request::Connect {
            id,
            owner,
            host,
            port,
            tls,
        })
    }

    /// Wraps an open descriptor (a duplicate: closing the socket never closes the caller's
    /// descriptor) as a readable socket; CONNECT "binding" follows.
    pub fn bind(&self, owner: u32, fd: OwnedFd) -> i32 {
        self.reserve_and_submit(|id| Request::Bind { id, owner, fd })
    }

    /// Starts reading, taking ownership (CONNECT "start" / "transfer").
    pub fn start(&self, owner: u32, id: i32) {
        self.submit(Request::Start { id, owner });
    }

    /// Stops reading.
    pub fn pause(&self, id: i32) {
        self.submit(Request::Pause { id });
    }

    /// Reads again a connection held because its owner's queue was full (no effect on one
    /// that is not held: paused by its owner, closed, or started again meanwhile).
    pub fn resume_read(&self, id: i32) {
        self.submit(Request::Resume { id });
    }

    /// Graceful close: the owner gets CLOSE at once, reading stops and pending data is
    /// flushed before the socket closes.
    pub fn close(&self, id: i32) {
        self.submit(Request::Close {
            id,
            shutdown: false,
        });
    }

    /// Immediate close: pending data is discarded.
    pub fn shutdown(&self, id: i32) {
        self.submit(Request::Close { id, shutdown: true });
    }

    /// TCP_NODELAY.
    pub fn nodelay(&self, id: i32) {
        self.submit(Request::Nodelay { id });
    }

    /// High-priority send: 0, or -1 (data released) if the id is invalid or closing.
    ///
    /// When the connection is idle (nothing pending or queued) the caller's thread writes at
    /// once, unless its service has messages waiting and the socket thread is fewer than
    /// `handoff_limit` requests behind (see `queue_send`); what the socket does not take goes
    /// to the socket thread.
    pub fn send(&self, id: i32, data: SendData<'_>) -> i32 {
        match self.slots.get(id) {
            Some((_, false)) => self.queue_send(id, data, Priority::High, None),
            _ => -1,
        }
    }

    /// Low-priority send: 0, or -1 (data released) only for an invalid id.
    pub fn send_lowpriority(&self, id: i32, data: SendData<'_>) -> i32 {
        match self.slots.get(id) {
            Some(_) => self.queue_send(id, data, Priority::Low, None),
            None => -1,
        }
    }

    fn queue_send(
        &self,
        id: i32,
        data: SendData<'_>,
        priority: Priority,
        udp: Option<SocketAddr>,
    ) -> i32 {
        // The slot lock is held until the request is queued: sends of one id reach the socket
        // thread in the order they were made, and never behind a later direct write.
        let mut d = self.slots.direct[slot_of(id)].lock();
        let counted = d.id == id;
        // A direct write needs the connection idle, and the calling service idle too: with
        // messages waiting for it (a loaded server), the socket thread writes in parallel
        // while the worker goes on (measured on the Lua echo benchmark, 100 connections:
        // about 20% more requests per second at less CPU per request than writing here),
        // unless the socket thread is behind; with none waiting, writing here saves a thread
        // hop (the latency of one connection).
        let hand_off = crate::server::dispatch_backlog() > 0
            && self.pending.load(Ordering::Relaxed) < self.handoff_limit;
        let (data, offset) = match (&d.stream, priority, udp) {
            (Some(stream), Priority::High, None)
                if counted && d.idle && d.inflight == 0 && !hand_off =>
            {
                let bytes = data.as_slice();
                let (n, done) = match &d.tls {
                    // Encrypted here, under the connection's lock; records rustls could not
                    // write yet are left for the socket thread (an empty send wakes it).
                    Some(tls) => {
                        let mut conn = tls.lock();
                        let n = write_plain(&mut conn, stream, bytes).unwrap_or(0);
                        (n, n == bytes.len() && !conn.wants_write())
                    }
                    None => {
                        let n = loop {
                            match (&**stream).write(bytes) {
                                Ok(n) => break n,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                // Would block, or an error the socket thread will meet and
                                // report.
                                Err(_) => break 0,
                            }
                        };
                        (n, n == bytes.len())
                    }
                };
                if n > 0 {
                    self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                    d.written += n as u64;
                    d.wtime = self.sink.now();
                }
                if done {
                    return 0;
                }
                d.idle = false;
                data.into_rest(n)
            }
            _ => (data.into_payload(), 0),
        };
        if counted {
            d.inflight += 1;
        }
        let queued = self.submit(Request::Send {
            id,
            data,
            offset,
            priority,
            udp,
            counted,
        });
        if !queued && counted {
            d.inflight -= 1;
        }
        if queued {
            0
        } else {
            -1
        }
    }

    /// A UDP socket: bound if `addr` or `port` is given (family from the address), else an
    /// unbound IPv4 one. Readable at once. Id or -1.
    pub fn udp(&self, owner: u32, addr: Option<&str>, port: i32) -> i32 {
        let made = if port != 0 || addr.is_some() {
            bind_socket(addr, port, Type::DGRAM)
        } else {
            RawSocket::new(Domain::IPV4, Type::DGRAM, None).map(|s| (s, protocol::UDP))
        };
        self.add_udp(owner, made, None)
    }

    /// A bound UDP socket; the port must not be 0.
    pub fn udp_listen(&self, owner: u32, addr: Option<&str>, port: i32) -> i32 {
        if port == 0 {
            return -1;
        }
        self.add_udp(owner, bind_socket(addr, port, Type::DGRAM), None)
    }

    /// A UDP socket whose default peer is `addr:port`.
    pub fn udp_dial(&self, owner: u32, addr: &str, port: i32) -> i32 {
        let Some(peer) = resolve(Some(addr), port)
            .ok()
            .and_then(|a| a.into_iter().next())
        else {
            return -1;
        };
        let made = RawSocket::new(Domain::for_address(peer), Type::DGRAM, None)
            .map(|s| (s, protocol_of(&peer)));
        self.add_udp(owner, made, Some(peer))
    }

    fn add_udp(
        &self,
        owner: u32,
        made: io::Result<(RawSocket, u8)>,
        peer: Option<SocketAddr>,
    ) -> i32 {
        let Ok((socket, protocol)) = made else {
            return -1;
        };
        if socket.set_nonblocking(true).is_err() {
            return -1;
        }
        let socket = UdpSocket::from(socket);
        self.reserve_and_submit(|id| Request::Udp {
            id,
            owner,
            socket,
            protocol,
            peer,
        })
    }

    /// Sets the default peer of a UDP socket: 0, or -1 (invalid id, unresolvable address).
    pub fn udp_connect(&self, id: i32, addr: &str, port: i32) -> i32 {
        if self.slots.get(id).is_none() {
            return -1;
        }
        match resolve(Some(addr), port).map(|a| a.into_iter().next()) {
            Ok(Some(peer)) if self.submit(Request::SetUdp { id, peer }) => 0,
            _ => -1,
        }
    }

    /// Sends a datagram to an encoded address (7/19 bytes): 0, or -1 (invalid id or protocol
    /// byte; data released).
    pub fn udp_send(&self, id: i32, address: &[u8], data: SendData<'_>) -> i32 {
        if self.slots.get(id).is_none() {
            return -1;
        }
        match decode_udp_address(address) {
            Some(peer) => self.queue_send(id, data, Priority::High, Some(peer)),
            None => -1,
        }
    }

    /// Every live socket (BIND, LISTEN, TCP, UDP, closing), by
    /// decreasing slot. Asks the socket thread; empty if it is not running.
    pub fn info(&self) -> Vec<SocketInfo> {
        if !self.running.load(Ordering::Acquire) {
            return Vec::new();
        }
        let (tx, rx) = mpsc::channel();
        if !self.submit(Request::Info { reply: tx }) {
            return Vec::new();
        }
        rx.recv().unwrap_or_default()
    }

    /// [`SocketServer::info`], waiting at most `timeout` for the socket thread (`None` if it
    /// did not answer in time).
    pub fn info_within(&self, timeout: std::time::Duration) -> Option<Vec<SocketInfo>> {
        if !self.running.load(Ordering::Acquire) {
            return Some(Vec::new());
        }
        let (tx, rx) = mpsc::channel();
        if !self.submit(Request::Info { reply: tx }) {
            return Some(Vec::new());
        }
        rx.recv_timeout(timeout).ok()
    }

    /// Tells the socket thread to finish (it force-closes every socket, without events).
    pub fn exit(&self) {
        self.submit(Request::Exit);
    }

    /// The socket thread's loop; returns after [`SocketServer::exit`]. Only the first call
    /// runs.
    pub fn run(&self) {
        let Some(poll) = self.poller.lock().take() else {
            return;
        };
        let _stop = StopGuard(self);
        self.running.store(true, Ordering::Release);
        SocketThread::new(self, poll).run();
    }
}

/// Marks the server stopped when the socket thread leaves (also by a panic), so requests are
/// refused instead of piling up, and `info` does not wait.
pub(super) struct StopGuard<'a>(&'a SocketServer);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        let pending = {
            let mut q = self.0.queue.lock();
            q.closed = true;
            std::mem::take(&mut q.requests)
        };
        drop(pending);
    }
}
