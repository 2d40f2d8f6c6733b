//! What the socket thread does for I/O readiness: flushing, reading, accepting.

use super::address::{addr_name, encode_udp_address, protocol_of, strerror};
use super::send_list::{Flush, WriteResult};
use super::sink::SocketEvent;
use super::slot::State;
use super::socket::{After, Io, ReadOutcome, Socket};
use super::thread::ThreadState;
use super::tls::TlsState;
use super::{event, protocol, MAX_ACCEPT_PER_EVENT, MAX_READ_BUFFER, MIN_READ_BUFFER};
use crate::payload::Payload;
use crate::poll::PollEvent;
use socket2::SockRef;
use std::fs::File;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl ThreadState<'_> {
    /// Flushes the send lists; a failed write half-closes (see `close_write`).
    pub(super) fn send_buffer(&mut self, s: &mut Socket) -> After {
        let now = self.now();
        let sink = &*self.server.sink;
        let bytes_out = &self.server.bytes_out;
        let Socket {
            id,
            io,
            lists,
            stat_write,
            wtime,
            protocol: proto,
            tls,
            ..
        } = s;
        let (id, proto) = (*id, *proto);
        if let (Some(t), Io::Stream(stream)) = (tls.as_mut(), &*io) {
            // Records rustls already holds go first.
            match t.flush(stream) {
                Ok(true) => {}
                Ok(false) => return self.tls_pending(s),
                Err(e) => return self.close_write(s, &e),
            }
        }
        let flushed = lists.flush(|buf, addr| {
            if let (Some(t), Io::Stream(stream)) = (tls.as_mut(), &*io) {
                if buf.is_empty() {
                    // What a direct write left in rustls: flushed above.
                    return WriteResult::Wrote(0);
                }
                return match t.write(stream, buf) {
                    Ok(0) => WriteResult::Blocked,
                    Ok(n) => {
                        *stat_write += n as u64;
                        *wtime = now;
                        WriteResult::Wrote(n)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => WriteResult::Blocked,
                    Err(e) => WriteResult::Failed(e),
                };
            }
            if proto == protocol::TCP {
                return match io.write(buf) {
                    Ok(n) => {
                        bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                        *stat_write += n as u64;
                        *wtime = now;
                        WriteResult::Wrote(n)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => WriteResult::Blocked,
                    Err(e) => WriteResult::Failed(e),
                };
            }
            let (Io::Udp(u), Some(peer)) = (&*io, addr) else {
                return WriteResult::Dropped;
            };
            if protocol_of(&peer) != proto {
                sink.log(&format!("socket-server : udp ({id}) error: type mismatch."));
                return WriteResult::Dropped;
            }
            match u.send_to(buf, peer) {
                Ok(_) => {
                    bytes_out.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    *stat_write += buf.len() as u64;
                    *wtime = now;
                    WriteResult::Wrote(buf.len())
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    WriteResult::Blocked
                }
                Err(e) => {
                    sink.log(&format!(
                        "socket-server : udp ({id}) sendto error {}.",
                        strerror(&e)
                    ));
                    WriteResult::Dropped
                }
            }
        });
        match flushed {
            Flush::Pending if s.tls.is_some() => self.tls_pending(s),
            Flush::Pending => After::Keep,
            Flush::Failed(e) => self.close_write(s, &e),
            Flush::Drained if s.has_pending() => self.tls_pending(s),
            Flush::Drained => {
                if s.closing {
                    return After::Close; // finished writing
                }
                if self.interest(s, s.reading, false).is_err() {
                    self.emit(s.owner, SocketEvent::error(s.id, "disable write failed"));
                    return After::Keep;
                }
                if s.lists.take_drained_warning() {
                    self.emit(s.owner, SocketEvent::plain(event::WARNING, s.id, 0));
                }
                After::Keep
            }
        }
    }

    /// TLS bytes wait for the socket: keep the writable interest.
    fn tls_pending(&mut self, s: &mut Socket) -> After {
        if self.interest(s, s.reading, true).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable write failed"));
        }
        After::Keep
    }

    /// A write failed: the socket stops writing and its owner gets ERROR, or it closes if
    /// it was closing or no longer reads.
    fn close_write(&mut self, s: &mut Socket, e: &io::Error) -> After {
        if s.closing || s.state == State::HalfcloseRead {
            return After::Close;
        }
        if s.state == State::HalfcloseWrite {
            return After::Keep;
        }
        s.state = State::HalfcloseWrite;
        self.sync(s);
        s.io.shutdown(Shutdown::Write);
        let _ = self.interest(s, s.reading, false);
        self.emit(s.owner, SocketEvent::error(s.id, strerror(e)));
        After::Keep
    }

    /// Reads a TCP (or bound) socket, again while reads fill the buffer.
    fn read_tcp(&mut self, s: &mut Socket) -> (ReadOutcome, After) {
        let mut got = ReadOutcome::Nothing;
        loop {
            let sz = s.read_size;
            let (buf, n) = match s.io.read_payload(sz) {
                Ok(buf) => {
                    let n = buf.len();
                    (buf, n)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return (got, After::Keep)
                }
                Err(e) => {
                    self.emit(s.owner, SocketEvent::error(s.id, strerror(&e)));
                    return (ReadOutcome::Error, After::Keep);
                }
            };
            if n == 0 {
                return self.end_of_stream(s, got);
            }
            if s.state == State::HalfcloseRead {
                return (got, After::Keep); // discarded
            }
            self.emit_data(s, buf, n);
            got = ReadOutcome::Data;
            if n == sz {
                s.read_size = (sz * 2).min(MAX_READ_BUFFER);
                continue; // more to read
            }
            if sz > MIN_READ_BUFFER && n * 2 < sz {
                s.read_size = sz / 2;
            }
            return (got, After::Keep);
        }
    }

    /// The peer closed its side.
    /// Hands `n` bytes read from `s` (plaintext, for TLS) to its owner as a DATA event.
    fn emit_data(&mut self, s: &mut Socket, mut buf: Payload, n: usize) {
        self.server.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        s.stat_read += n as u64;
        s.rtime = self.now();
        buf.truncate(n);
        self.emit(
            s.owner,
            SocketEvent {
                ty: event::DATA,
                id: s.id,
                ud: n as i32,
                data: Some(buf),
                text: None,
            },
        );
    }

    fn end_of_stream(&mut self, s: &mut Socket, got: ReadOutcome) -> (ReadOutcome, After) {
        if s.closing {
            // CLOSE was raised by close(); finish once nothing is left to send.
            let after = if s.nomore_sending() {
                After::Close
            } else {
                After::Keep
            };
            return (got, after);
        }
        match s.state {
            State::HalfcloseRead => (got, After::Keep),
            State::HalfcloseWrite => {
                self.emit(s.owner, SocketEvent::close(s.id));
                (ReadOutcome::Closed, After::Close)
            }
            _ => {
                self.close_read(s);
                self.emit(s.owner, SocketEvent::close(s.id));
                (ReadOutcome::Closed, After::Keep)
            }
        }
    }

    /// Reads a TLS connection: records in, plaintext out as DATA events.
    pub(super) fn tls_read(&mut self, s: &mut Socket) -> (ReadOutcome, After) {
        let (Some(t), Io::Stream(stream)) = (s.tls.as_mut(), &s.io) else {
            return (ReadOutcome::Nothing, After::Keep);
        };
        let (closed, mut ready) = match t.pump_in(stream) {
            Ok(r) => r,
            Err(reason) => {
                let _ = t.flush(stream); // the alert, if any
                let peer = t.peer.clone();
                self.log(&format!(
                    "socket-server: tls error on socket {} with {peer}: {reason}",
                    s.id
                ));
                self.emit(s.owner, SocketEvent::error(s.id, format!("tls: {reason}")));
                return (ReadOutcome::Error, After::Close);
            }
        };
        let mut got = ReadOutcome::Nothing;
        while ready > 0 {
            let mut buf = Payload::zeroed(ready.min(MAX_READ_BUFFER));
            let Some(t) = s.tls.as_mut() else { break };
            let n = match t.read_plain(buf.as_mut_slice()) {
                Ok(Some(n)) if n > 0 => n,
                Ok(_) => break,
                Err(e) => {
                    self.emit(s.owner, SocketEvent::error(s.id, strerror(&e)));
                    return (ReadOutcome::Error, After::Close);
                }
            };
            ready = ready.saturating_sub(n);
            if s.state == State::HalfcloseRead {
                continue; // discarded
            }
            self.emit_data(s, buf, n);
            got = ReadOutcome::Data;
        }
        // Reading may have produced records to send (key updates, alerts).
        if s.tls.as_ref().is_some_and(|t| t.wants_write()) && !s.writing {
            let _ = self.interest(s, s.reading, true);
        }
        if closed {
            return self.end_of_stream(s, got);
        }
        (got, After::Keep)
    }

    /// Drives the handshake of a TLS connection (accepted, or connected at the TCP level).
    /// Success: an accepted one is announced (ACCEPT to its listener's owner), an outgoing one
    /// reports CONNECT. Failure: one log line, and the connection closes (an outgoing one's
    /// owner gets ERROR; no service ever knew an accepted one).
    pub(super) fn tls_handshake(&mut self, s: &mut Socket) -> After {
        let (Some(t), Io::Stream(stream)) = (s.tls.as_mut(), &s.io) else {
            return After::Close;
        };
        let stream = stream.clone();
        let failed = match t.pump_in(&stream) {
            Ok((true, _)) if t.handshaking() => Some("connection closed by the peer".to_owned()),
            Ok(_) => t.flush(&stream).err().map(|e| strerror(&e)),
            Err(reason) => {
                let _ = t.flush(&stream); // the alert
                Some(reason)
            }
        };
        if let Some(reason) = failed {
            self.handshake_failed(&t.peer, &reason);
            if t.accepted_by.is_none() {
                self.emit(
                    s.owner,
                    SocketEvent::error(s.id, format!("tls handshake failed: {reason}")),
                );
            }
            return After::Close;
        }
        let (handshaking, wants_write) = (t.handshaking(), t.wants_write());
        if handshaking {
            if self.interest(s, true, wants_write).is_err() {
                return After::Close;
            }
            return After::Keep;
        }
        if let Some((listener, owner)) = t.accepted_by.take() {
            // Paused until its owner starts it; plaintext that came with the handshake
            // waits in rustls.
            let peer = t.peer.clone();
            if self.interest(s, false, wants_write).is_err() {
                return After::Close;
            }
            self.emit(
                owner,
                SocketEvent::inline(event::ACCEPT, listener, s.id, peer),
            );
            return After::Keep;
        }
        s.state = State::Connected;
        self.sync(s);
        let ip = stream
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        self.emit(s.owner, SocketEvent::connect(s.id, 0, ip));
        if self.interest(s, true, s.has_pending()).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable write failed"));
            return After::Close;
        }
        if !s.lists.is_empty() && self.send_buffer(s) == After::Close {
            return After::Close;
        }
        self.tls_read(s).1
    }

    fn read_udp(&mut self, s: &mut Socket) -> (ReadOutcome, After) {
        let mut got = ReadOutcome::Nothing;
        let Io::Udp(u) = &s.io else {
            return (got, After::Keep);
        };
        loop {
            let (n, from) = match u.recv_from(&mut self.udp_buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return (got, After::Keep)
                }
                Err(e) => {
                    self.out
                        .push((s.owner, SocketEvent::error(s.id, strerror(&e))));
                    return (ReadOutcome::Error, After::Close);
                }
            };
            self.server.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            s.stat_read += n as u64;
            s.rtime = self.server.sink.now();
            if protocol_of(&from) != s.protocol {
                continue;
            }
            let addr = encode_udp_address(&from);
            let mut data = Payload::zeroed(n + addr.len());
            let bytes = data.as_mut_slice();
            bytes[..n].copy_from_slice(&self.udp_buf[..n]);
            bytes[n..].copy_from_slice(&addr);
            self.out.push((
                s.owner,
                SocketEvent {
                    ty: event::UDP,
                    id: s.id,
                    ud: n as i32,
                    data: Some(data),
                    text: None,
                },
            ));
            got = ReadOutcome::Data;
        }
    }

    /// A connecting socket became writable or failed: CONNECT with the peer IP, or ERROR
    /// and close.
    pub(super) fn report_connect(&mut self, s: &mut Socket) -> After {
        match s.io.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.emit(s.owner, SocketEvent::error(s.id, strerror(&e)));
                return After::Close;
            }
        }
        if let Some(t) = s.tls.as_mut() {
            t.tcp_up = true;
            self.arm_handshake(s.id, t);
            return self.tls_handshake(s);
        }
        s.state = State::Connected;
        self.sync(s);
        if s.nomore_sending() && self.interest(s, s.reading, false).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "disable write failed"));
            return After::Close;
        }
        let peer = match &s.io {
            Io::Stream(t) => t
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.emit(s.owner, SocketEvent::connect(s.id, 0, peer));
        After::Keep
    }

    /// Accepts pending connections on a listening socket (at most `MAX_ACCEPT_PER_EVENT`
    /// per event); each one is paused until its owner starts it.
    pub(super) fn accept(&mut self, l: &mut Socket, accepted: &mut Vec<Socket>) {
        for _ in 0..MAX_ACCEPT_PER_EVENT {
            let Io::Listener(listener) = &l.io else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(c) => c,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.emit(l.owner, SocketEvent::error(l.id, strerror(&e)));
                    // Give up the spare descriptor to accept and close the connection, so
                    // the peer is not left waiting in the backlog.
                    if self.spare_fd.take().is_some() {
                        if let Ok((c, _)) = listener.accept() {
                            drop(c);
                        }
                        self.spare_fd = File::open("/dev/null").ok();
                    }
                    return;
                }
                Err(_) => return, // would block, or an error that is ignored
            };
            let Some(id) = self.server.slots.reserve() else {
                drop(stream);
                self.emit(
                    l.owner,
                    SocketEvent::error(l.id, "reach skynet socket number limit"),
                );
                continue;
            };
            let _ = SockRef::from(&stream).set_keepalive(true);
            if stream.set_nonblocking(true).is_err() {
                self.server.slots.release(id);
                continue;
            }
            let mut s = Socket::new(
                id,
                l.owner,
                Io::Stream(Arc::new(stream)),
                protocol::TCP,
                State::PAccept,
            );
            if l.tls_listener {
                let conn = match self.server.tls.as_ref().map(|p| p.server_conn()) {
                    Some(Ok(conn)) => conn,
                    Some(Err(e)) => {
                        self.handshake_failed(&addr_name(&peer), &e);
                        self.server.slots.release(id);
                        continue;
                    }
                    None => {
                        self.server.slots.release(id);
                        continue;
                    }
                };
                let mut t = TlsState::new(conn, addr_name(&peer));
                t.tcp_up = true;
                t.accepted_by = Some((l.id, l.owner));
                self.arm_handshake(id, &mut t);
                s.tls = Some(Box::new(t));
                // Read for the handshake; ACCEPT once it succeeded.
                let Ok(s) = self.register(s, true, false) else {
                    continue;
                };
                l.stat_read += 1;
                l.rtime = self.now();
                accepted.push(s);
                continue;
            }
            let Ok(s) = self.register(s, false, false) else {
                continue;
            };
            l.stat_read += 1;
            l.rtime = self.now();
            accepted.push(s);
            self.emit(
                l.owner,
                SocketEvent::inline(event::ACCEPT, l.id, id, addr_name(&peer)),
            );
        }
    }

    /// Events of a socket that is neither connecting nor listening.
    pub(super) fn on_io(&mut self, s: &mut Socket, ev: &PollEvent) -> After {
        // A pause handled earlier in this round (requests come first) already turned reading
        // off, but the readiness it got from the same epoll_wait is still in the batch.
        if ev.read && s.reading {
            let (got, after) = if s.tls.is_some() {
                self.tls_read(s)
            } else if s.protocol == protocol::TCP {
                self.read_tcp(s)
            } else {
                self.read_udp(s)
            };
            if after == After::Close || matches!(got, ReadOutcome::Closed | ReadOutcome::Error) {
                return after;
            }
            if !ev.write {
                return After::Keep;
            }
        }
        if ev.write {
            return self.send_buffer(s);
        }
        if ev.error {
            let text = match s.io.take_error() {
                Ok(Some(e)) | Err(e) => strerror(&e),
                Ok(None) => "Unknown error".to_owned(),
            };
            self.emit(s.owner, SocketEvent::error(s.id, text));
            return After::Keep;
        }
        if ev.hup {
            if s.state != State::HalfcloseRead {
                self.emit(s.owner, SocketEvent::close(s.id));
            }
            return After::Close;
        }
        After::Keep
    }
}
