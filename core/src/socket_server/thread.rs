//! The socket thread: its state, its loop and how it dispatches requests and events.

use super::address::{resolve, strerror};
use super::request::{Request, SocketInfo};
use super::resolver::{needs_lookup, Resolved, Resolver};
use super::server::SocketServer;
use super::sink::{Delivery, SocketEvent};
use super::slot::{slot_of, State};
use super::socket::{After, Io, Socket};
use super::tls::TlsState;
use super::{MAX_EVENT, MAX_REQUESTS_PER_ROUND, MAX_UDP_PACKAGE, RESOLVER_TOKEN, WAKE_TOKEN};
use crate::poll::{PollEvent, Poller};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

/// The socket thread's state other than the socket map.
pub(super) struct ThreadState<'a> {
    pub(super) server: &'a SocketServer,
    poll: Poller,
    /// Events of the current step: delivered after the step's socket closes, so an owner
    /// that reacts to CLOSE/ERROR already finds the id invalid.
    pub(super) out: Vec<(u32, SocketEvent)>,
    /// Spare descriptor given up to accept-and-close when out of descriptors (EMFILE).
    pub(super) spare_fd: Option<File>,
    pub(super) udp_buf: Vec<u8>,
    /// TLS handshakes under a time limit, (deadline, socket id), oldest first: the limit is
    /// the same for all, so deadlines come in the order handshakes start.
    pub(super) handshakes: VecDeque<(Instant, i32)>,
}

impl ThreadState<'_> {
    pub(super) fn emit(&mut self, owner: u32, ev: SocketEvent) {
        self.out.push((owner, ev));
    }

    pub(super) fn log(&self, text: &str) {
        self.server.sink.log(text);
    }

    pub(super) fn now(&self) -> u64 {
        self.server.sink.now()
    }

    /// One failed TLS handshake: its log line and the failure count.
    pub(super) fn handshake_failed(&self, peer: &str, reason: &str) {
        self.log(&format!(
            "socket-server: tls handshake with {peer} failed: {reason}"
        ));
        crate::metrics::tls_handshake_failed();
    }

    /// Starts the clock on a TLS handshake, if the policy limits it.
    pub(super) fn arm_handshake(&mut self, id: i32, t: &mut TlsState) {
        let limit = self.server.tls.as_ref().and_then(|p| p.handshake_timeout());
        if let Some(limit) = limit {
            let deadline = Instant::now() + limit;
            t.deadline = Some(deadline);
            self.handshakes.push_back((deadline, id));
        }
    }

    pub(super) fn sync(&self, s: &Socket) {
        self.server.slots.set(s.id, s.state, s.closing);
    }

    /// Sets epoll interest in reading and writing.
    pub(super) fn interest(&self, s: &mut Socket, read: bool, write: bool) -> io::Result<()> {
        if s.reading == read && s.writing == write {
            return Ok(());
        }
        s.reading = read;
        s.writing = write;
        self.poll
            .modify(s.io.fd(), u64::from(s.id as u32), read, write)
    }

    /// Registers a new socket; on failure the slot is freed and the socket dropped.
    pub(super) fn register(&self, mut s: Socket, read: bool, write: bool) -> Result<Socket, ()> {
        s.reading = read;
        s.writing = write;
        match self
            .poll
            .add(s.io.fd(), u64::from(s.id as u32), read, write)
        {
            Ok(()) => {
                self.sync(&s);
                if let Io::Stream(stream) = &s.io {
                    let mut d = self.server.slots.direct[slot_of(s.id)].lock();
                    if d.id == s.id {
                        d.stream = Some(stream.clone());
                        d.tls = s.tls.as_ref().map(|t| t.conn.clone());
                    }
                }
                Ok(s)
            }
            Err(_) => {
                self.server.slots.release(s.id);
                Err(())
            }
        }
    }

    /// Closes a socket for good and frees its slot: no event.
    fn force_close(&self, s: Socket) {
        let _ = self.poll.delete(s.io.fd());
        let id = s.id;
        drop(s);
        self.server.slots.release(id);
    }

    pub(super) fn close_read(&self, s: &mut Socket) {
        s.state = State::HalfcloseRead;
        let _ = self.interest(s, false, s.writing);
        s.io.shutdown(Shutdown::Read);
        self.sync(s);
    }
}

pub(super) struct SocketThread<'a> {
    env: ThreadState<'a>,
    pub(super) sockets: HashMap<i32, Socket>,
    events: Vec<PollEvent>,
    /// Requests taken from the queue and not yet handled (beyond a round's bound).
    backlog: VecDeque<Request>,
    /// Most requests handled in one round, before the I/O events of that round.
    pub(super) requests_per_round: usize,
    /// Host-name lookups for `connect` (`None`: no waker could be made; lookups then run
    /// on this thread).
    resolver: Option<Resolver>,
    /// Connections whose host name is being looked up.
    resolving: HashMap<i32, PendingConnect>,
    /// The wake-up descriptor may be readable (it was reported by the last wait): reset it
    /// before the queue is taken. Otherwise the reset, a read(2) that would fail, is skipped.
    pub(super) wake_seen: bool,
}

/// A connection waiting for its lookup, and the requests made on it meanwhile (handled, in
/// order, once it is connecting).
struct PendingConnect {
    owner: u32,
    tls: Option<rustls::pki_types::ServerName<'static>>,
    deferred: Vec<Request>,
}

impl<'a> SocketThread<'a> {
    pub(super) fn new(server: &'a SocketServer, poll: Poller) -> SocketThread<'a> {
        let resolver = Resolver::new(server.lookup.clone(), &poll, RESOLVER_TOKEN).ok();
        SocketThread {
            env: ThreadState {
                server,
                poll,
                out: Vec::new(),
                spare_fd: File::open("/dev/null").ok(),
                udp_buf: vec![0; MAX_UDP_PACKAGE],
                handshakes: VecDeque::new(),
            },
            sockets: HashMap::default(),
            events: Vec::with_capacity(MAX_EVENT),
            backlog: VecDeque::new(),
            requests_per_round: MAX_REQUESTS_PER_ROUND,
            resolver,
            resolving: HashMap::default(),
            wake_seen: true,
        }
    }

    pub(super) fn run(&mut self) {
        while self.round() {}
        for (_, s) in self.sockets.drain() {
            self.env.force_close(s);
        }
        for (id, _) in self.resolving.drain() {
            self.env.server.slots.release(id);
        }
    }

    /// One round: waits for I/O (not at all while requests are left over), handles at most
    /// `requests_per_round` requests, then the I/O events of the wait. False on Exit.
    pub(super) fn round(&mut self) -> bool {
        self.events.clear();
        let timeout = self.poll_timeout();
        if let Err(e) = self.env.poll.wait(&mut self.events, timeout) {
            self.env
                .log(&format!("socket-server error: {}", strerror(&e)));
            std::thread::sleep(std::time::Duration::from_millis(10));
            return true;
        }
        if self.events.iter().any(|ev| ev.token == WAKE_TOKEN) {
            self.wake_seen = true;
        }
        // Requests first.
        if !self.handle_requests() {
            return false;
        }
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            match ev.token {
                WAKE_TOKEN => {}
                RESOLVER_TOKEN => self.finish_lookups(),
                _ => self.on_event(ev),
            }
        }
        self.events = events;
        if !self.env.handshakes.is_empty() {
            self.expire_handshakes();
        }
        self.env.server.sink.flush();
        true
    }

    /// How long the next wait may block, in ms: not at all while requests are left over from
    /// the last round, until the next handshake deadline, or for ever.
    pub(super) fn poll_timeout(&self) -> Option<u16> {
        if !self.backlog.is_empty() {
            return Some(0);
        }
        let (deadline, _) = self.env.handshakes.front()?;
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up: a wake-up before the deadline would find nothing to do.
        let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
        Some(u16::try_from(ms).unwrap_or(u16::MAX))
    }

    /// Closes the connections whose TLS handshake outlived its deadline: one log line each,
    /// counted as a failed handshake; an outgoing one's owner gets ERROR.
    fn expire_handshakes(&mut self) {
        let now = Instant::now();
        while let Some(&(deadline, id)) = self.env.handshakes.front() {
            if deadline > now {
                break;
            }
            self.env.handshakes.pop_front();
            // The socket may have finished its handshake, closed, or its id gone to another
            // connection (whose deadline is another one).
            let live = self.sockets.get(&id).is_some_and(|s| {
                s.tls
                    .as_ref()
                    .is_some_and(|t| t.deadline == Some(deadline) && t.handshaking())
            });
            if !live {
                continue;
            }
            self.with_socket(id, |env, s| {
                if let Some(t) = s.tls.as_ref() {
                    env.handshake_failed(&t.peer, "timed out");
                    if t.accepted_by.is_none() {
                        env.emit(
                            s.owner,
                            SocketEvent::error(s.id, "tls handshake failed: timed out"),
                        );
                    }
                }
                After::Close
            });
        }
    }

    /// Handles queued requests in order, at most `requests_per_round` of them: the rest stay
    /// in the backlog for the next rounds, so a flood of requests cannot starve I/O. The queue
    /// is taken only once the backlog is empty. False on Exit.
    pub(super) fn handle_requests(&mut self) -> bool {
        for _ in 0..self.requests_per_round {
            if self.backlog.is_empty() {
                // Requests queued since the last take made the descriptor readable (the first
                // of them found `signaled` false and wrote it; the descriptor stays readable
                // until reset here): no wake-up seen, nothing to take, no lock.
                if !std::mem::take(&mut self.wake_seen) {
                    return true;
                }
                // A submitter sets `signaled` before it makes the descriptor readable, so a
                // wake-up that comes after this reset is seen by the next wait.
                self.env.server.waker.reset();
                let mut q = self.env.server.queue.lock();
                q.signaled = false;
                // Moved, not swapped: both buffers keep their capacity.
                self.backlog.extend(q.requests.drain(..));
            }
            let Some(r) = self.backlog.pop_front() else {
                return true;
            };
            self.env
                .server
                .pending
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if !self.request(r) {
                return false;
            }
        }
        true
    }

    /// Delivers the step's events, then holds the connections whose owner's queue is full
    /// (their data was delivered: socket data is never dropped).
    fn deliver(&mut self) {
        let mut hold = Vec::new();
        for (owner, ev) in self.env.out.drain(..) {
            let id = ev.id;
            if self.env.server.sink.deliver(owner, ev) == Delivery::Hold {
                hold.push(id);
            }
        }
        for id in hold {
            if let Some(s) = self.sockets.get_mut(&id) {
                self.env.hold(s);
            }
        }
    }

    /// Runs `f` on the live socket `id` (if any), then closes it if asked, then delivers.
    fn with_socket(&mut self, id: i32, f: impl FnOnce(&mut ThreadState, &mut Socket) -> After) {
        if let Some(s) = self.sockets.get_mut(&id) {
            if f(&mut self.env, s) == After::Close {
                if let Some(s) = self.sockets.remove(&id) {
                    self.env.force_close(s);
                }
            }
        }
        self.refresh_direct(id, false);
        self.deliver();
    }

    /// Publishes whether callers may write to `id` directly; `handled` also counts down one
    /// queued send (after it was handled, so no direct write overtakes it).
    fn refresh_direct(&mut self, id: i32, handled: bool) {
        let socket = self.sockets.get_mut(&id);
        let idle = socket.as_ref().is_some_and(|s| s.direct_idle());
        if let Some(s) = socket {
            // A worker only ever turns `idle` off together with queueing a send, which comes
            // back here with `handled`: an unchanged value needs no write.
            if !handled && s.published_idle == idle {
                return;
            }
            s.published_idle = idle;
        }
        let mut d = self.env.server.slots.direct[slot_of(id)].lock();
        if d.id == id {
            d.idle = idle;
            if handled {
                d.inflight = d.inflight.saturating_sub(1);
            }
        }
    }

    fn add(&mut self, s: Option<Socket>) {
        if let Some(s) = s {
            self.sockets.insert(s.id, s);
        }
        self.deliver();
    }

    fn request(&mut self, r: Request) -> bool {
        if let Some(pending) = r.target().and_then(|id| self.resolving.get_mut(&id)) {
            pending.deferred.push(r);
            return true;
        }
        match r {
            Request::Start { id, owner } => {
                if self.env.start(self.sockets.get_mut(&id), id, owner) == After::Close {
                    if let Some(s) = self.sockets.remove(&id) {
                        self.env.force_close(s);
                    }
                }
                self.refresh_direct(id, false);
                self.deliver();
            }
            Request::Pause { id } => self.with_socket(id, |env, s| {
                env.pause(s);
                After::Keep
            }),
            Request::Resume { id } => self.with_socket(id, |env, s| {
                env.resume(s);
                After::Keep
            }),
            Request::Bind { id, owner, fd } => {
                let s = self.env.bind(id, owner, fd);
                self.add(s);
            }
            Request::Listen {
                id,
                owner,
                listener,
                tls,
            } => {
                let s = self.env.listen(id, owner, listener, tls);
                self.add(s);
            }
            Request::Close { id, shutdown } => {
                self.with_socket(id, |env, s| env.close(s, shutdown))
            }
            Request::Connect {
                id,
                owner,
                host,
                port,
                tls,
            } => {
                let addrs = if needs_lookup(&host, port) {
                    match &mut self.resolver {
                        Some(resolver) => {
                            self.resolving.insert(
                                id,
                                PendingConnect {
                                    owner,
                                    tls,
                                    deferred: Vec::new(),
                                },
                            );
                            resolver.start(id, host, port);
                            return true;
                        }
                        None => (self.env.server.lookup)(&host, port),
                    }
                } else {
                    // An IP literal (or an invalid port): no lookup, nothing blocks.
                    resolve(Some(&host), port)
                };
                let s = self.env.connect(id, owner, addrs, tls);
                self.add(s);
            }
            Request::Exit => return false,
            Request::Send {
                id,
                data,
                offset,
                priority,
                udp,
                counted,
            } => {
                self.with_socket(id, |env, s| env.send(s, data, offset, priority, udp));
                if counted {
                    self.refresh_direct(id, true);
                }
            }
            Request::SetUdp { id, peer } => self.with_socket(id, |env, s| {
                env.set_udp(s, peer);
                After::Keep
            }),
            Request::Udp {
                id,
                owner,
                socket,
                protocol,
                peer,
            } => {
                let s = self.env.udp(id, owner, socket, protocol, peer);
                self.add(s);
            }
            Request::Nodelay { id } => self.with_socket(id, |env, s| {
                env.nodelay(s);
                After::Keep
            }),
            Request::Info { reply } => {
                let _ = reply.send(self.info());
            }
        }
        true
    }

    /// Connects the connections whose lookup finished, then handles the requests made on
    /// them meanwhile.
    fn finish_lookups(&mut self) {
        let Some(resolver) = &self.resolver else {
            return;
        };
        for Resolved { id, addrs } in resolver.take() {
            let Some(pending) = self.resolving.remove(&id) else {
                continue;
            };
            let s = self.env.connect(id, pending.owner, addrs, pending.tls);
            self.add(s);
            for r in pending.deferred {
                self.request(r);
            }
        }
    }

    fn info(&self) -> Vec<SocketInfo> {
        let mut list: Vec<SocketInfo> = self
            .sockets
            .values()
            .filter_map(|s| {
                let mut info = s.info()?;
                let d = self.env.server.slots.direct[slot_of(s.id)].lock();
                if d.id == s.id {
                    info.write += d.written;
                    info.wtime = info.wtime.max(d.wtime);
                }
                Some(info)
            })
            .collect();
        list.sort_by_key(|i| std::cmp::Reverse(slot_of(i.id)));
        list
    }

    fn on_event(&mut self, ev: &PollEvent) {
        let id = ev.token as u32 as i32;
        let mut accepted = Vec::new();
        self.with_socket(id, |env, s| match s.state {
            State::Connecting if s.tls.as_ref().is_some_and(|t| t.tcp_up) => env.tls_handshake(s),
            State::Connecting => env.report_connect(s),
            State::PAccept if s.tls.as_ref().is_some_and(|t| t.handshaking()) => {
                env.tls_handshake(s)
            }
            State::Listen => {
                env.accept(s, &mut accepted);
                After::Keep
            }
            _ => env.on_io(s, ev),
        });
        for s in accepted {
            self.sockets.insert(s.id, s);
        }
    }
}
