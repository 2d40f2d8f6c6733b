//! What the socket thread does for each request.

use super::address::{addr_name, gai_text, protocol_of, strerror};
use super::send_list::{Priority, WriteBuf};
use super::sink::SocketEvent;
use super::slot::State;
use super::socket::{After, Io, Socket};
use super::thread::ThreadState;
use super::tls::TlsState;
use super::{event, protocol};
use crate::payload::Payload;
use rustls::pki_types::ServerName;
use socket2::{Domain, Socket as RawSocket, Type};
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl ThreadState<'_> {
    pub(super) fn start(&mut self, s: Option<&mut Socket>, id: i32, owner: u32) -> After {
        let Some(s) = s else {
            self.emit(owner, SocketEvent::error(id, "invalid socket"));
            return After::Keep;
        };
        if s.state == State::HalfcloseRead {
            self.emit(owner, SocketEvent::error(id, "socket closed"));
            return After::Keep;
        }
        s.held = false;
        if self.interest(s, true, s.writing).is_err() {
            self.emit(owner, SocketEvent::error(id, "enable read failed"));
            return After::Keep;
        }
        match s.state {
            State::PAccept | State::PListen => {
                s.state = if s.state == State::PAccept {
                    State::Connected
                } else {
                    State::Listen
                };
                s.owner = owner;
                self.sync(s);
                self.emit(owner, SocketEvent::connect(id, 0, "start"));
                if s.tls.is_some() {
                    // What arrived with the handshake is already decrypted: no event will
                    // announce it.
                    if self.tls_read(s).1 == After::Close {
                        return After::Close;
                    }
                }
            }
            State::Connected => {
                s.owner = owner;
                self.emit(owner, SocketEvent::connect(id, 0, "transfer"));
            }
            _ => {}
        }
        After::Keep
    }

    pub(super) fn pause(&mut self, s: &mut Socket) {
        s.held = false;
        if self.interest(s, false, s.writing).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable read failed"));
        }
    }

    /// Stops reading a connection whose owner's queue is full (backpressure).
    pub(super) fn hold(&mut self, s: &mut Socket) {
        if !s.reading || s.held {
            return;
        }
        s.held = true;
        if self.interest(s, false, s.writing).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable read failed"));
        }
    }

    /// Reads a held connection again (its owner's queue drained).
    pub(super) fn resume(&mut self, s: &mut Socket) {
        if !std::mem::replace(&mut s.held, false) || s.closing || s.state == State::HalfcloseRead {
            return;
        }
        if self.interest(s, true, s.writing).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable read failed"));
        }
    }

    pub(super) fn close(&mut self, s: &mut Socket, shutdown: bool) -> After {
        let shutdown_read = s.state == State::HalfcloseRead;
        if shutdown || s.nomore_sending() {
            if !shutdown_read {
                self.emit(s.owner, SocketEvent::close(s.id));
            }
            return After::Close;
        }
        s.closing = true;
        self.sync(s);
        if !shutdown_read {
            self.close_read(s);
            self.emit(s.owner, SocketEvent::close(s.id));
        }
        After::Keep
    }

    /// Starts connecting `id` to the first of `addrs` that takes a non-blocking connect; a
    /// failed lookup or connect frees the id and answers ERROR.
    pub(super) fn connect(
        &mut self,
        id: i32,
        owner: u32,
        addrs: io::Result<Vec<SocketAddr>>,
        tls: Option<ServerName<'static>>,
    ) -> Option<Socket> {
        let fail = |env: &mut Self, text: String| {
            env.server.slots.release(id);
            env.emit(owner, SocketEvent::error(id, text));
            None
        };
        let addrs = match addrs {
            Ok(a) => a,
            Err(e) => return fail(self, gai_text(&e)),
        };
        let mut last_err = io::Error::from(io::ErrorKind::AddrNotAvailable);
        for addr in addrs {
            let sock = match RawSocket::new(Domain::for_address(addr), Type::STREAM, None) {
                Ok(s) => s,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            let _ = sock.set_keepalive(true);
            if let Err(e) = sock.set_nonblocking(true) {
                last_err = e;
                continue;
            }
            let immediate = match sock.connect(&addr.into()) {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            let stream = TcpStream::from(sock);
            // A TLS connection is reported once its handshake is done: it always starts as
            // connecting, and its first writable event starts the handshake.
            let tls = match &tls {
                Some(name) => {
                    let server = self.server;
                    let Some(policy) = &server.tls else {
                        return fail(self, "no TLS policy".to_owned());
                    };
                    match policy.client_conn(name.clone()) {
                        Ok(conn) => Some(Box::new(TlsState::new(conn, addr_name(&addr)))),
                        Err(e) => return fail(self, e),
                    }
                }
                None => None,
            };
            let immediate = immediate && tls.is_none();
            let state = if immediate {
                State::Connected
            } else {
                State::Connecting
            };
            let mut s = Socket::new(
                id,
                owner,
                Io::Stream(Arc::new(stream)),
                protocol::TCP,
                state,
            );
            s.tls = tls;
            let Ok(s) = self.register(s, true, !immediate) else {
                self.emit(
                    owner,
                    SocketEvent::error(id, "reach skynet socket number limit"),
                );
                return None;
            };
            if immediate {
                self.emit(owner, SocketEvent::connect(id, 0, addr.ip().to_string()));
            }
            return Some(s);
        }
        fail(self, strerror(&last_err))
    }

    pub(super) fn listen(
        &mut self,
        id: i32,
        owner: u32,
        listener: TcpListener,
        tls: bool,
    ) -> Option<Socket> {
        let mut s = Socket::new(
            id,
            owner,
            Io::Listener(listener),
            protocol::TCP,
            State::PListen,
        );
        s.tls_listener = tls;
        let Ok(s) = self.register(s, false, false) else {
            self.emit(
                owner,
                SocketEvent::error(id, "reach skynet socket number limit"),
            );
            return None;
        };
        let local = match &s.io {
            Io::Listener(l) => l.local_addr(),
            _ => Err(io::ErrorKind::Unsupported.into()),
        };
        match local {
            Ok(a) => self.emit(
                owner,
                SocketEvent::connect(id, i32::from(a.port()), a.ip().to_string()),
            ),
            Err(e) => self.emit(owner, SocketEvent::error(id, strerror(&e))),
        }
        Some(s)
    }

    pub(super) fn bind(&mut self, id: i32, owner: u32, fd: OwnedFd) -> Option<Socket> {
        let file = File::from(fd);
        if let Ok(fl) = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL) {
            let fl = nix::fcntl::OFlag::from_bits_retain(fl) | nix::fcntl::OFlag::O_NONBLOCK;
            let _ = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(fl));
        }
        let s = Socket::new(id, owner, Io::Bound(file), protocol::TCP, State::Bind);
        let Ok(s) = self.register(s, true, false) else {
            self.emit(
                owner,
                SocketEvent::error(id, "reach skynet socket number limit"),
            );
            return None;
        };
        self.emit(owner, SocketEvent::connect(id, 0, "binding"));
        Some(s)
    }

    pub(super) fn udp(
        &mut self,
        id: i32,
        owner: u32,
        socket: UdpSocket,
        protocol: u8,
        peer: Option<SocketAddr>,
    ) -> Option<Socket> {
        let mut s = Socket::new(id, owner, Io::Udp(socket), protocol, State::Connected);
        s.udp_peer = peer;
        self.register(s, true, false).ok()
    }

    pub(super) fn set_udp(&mut self, s: &mut Socket, peer: SocketAddr) {
        if protocol_of(&peer) != s.protocol {
            self.emit(s.owner, SocketEvent::error(s.id, "protocol mismatch"));
            return;
        }
        s.udp_peer = Some(peer);
    }

    pub(super) fn send(
        &mut self,
        s: &mut Socket,
        data: Payload,
        offset: usize,
        priority: Priority,
        udp: Option<SocketAddr>,
    ) -> After {
        let id = s.id;
        if matches!(s.state, State::HalfcloseWrite | State::PAccept) || s.closing {
            return After::Keep; // dropped
        }
        if matches!(s.state, State::PListen | State::Listen) {
            self.log(&format!("socket-server error: write to listen fd {id}."));
            return After::Keep;
        }
        if s.protocol == protocol::TCP {
            let was_empty = s.lists.is_empty();
            // Nothing pending: even a low-priority send goes to the high list.
            let buf = WriteBuf {
                offset: offset.min(data.len()),
                data,
                udp: None,
            };
            s.lists
                .push(if was_empty { Priority::High } else { priority }, buf);
            if was_empty {
                if matches!(
                    s.state,
                    State::Connected | State::HalfcloseRead | State::Bind
                ) && self.send_buffer(s) == After::Close
                {
                    return After::Close;
                }
                if s.has_pending()
                    && s.state != State::HalfcloseWrite
                    && self.interest(s, s.reading, true).is_err()
                {
                    self.emit(s.owner, SocketEvent::error(id, "enable write failed"));
                    return After::Keep;
                }
            }
        } else {
            let Some(peer) = udp.or(s.udp_peer) else {
                self.log(&format!(
                    "socket-server : set udp ({id}) error: address first."
                ));
                return After::Keep;
            };
            if protocol_of(&peer) != s.protocol {
                self.log(&format!(
                    "socket-server: udp socket ({id}) error: type mismatch."
                ));
                return After::Keep;
            }
            let buf = WriteBuf {
                offset: offset.min(data.len()),
                data,
                udp: Some(peer),
            };
            if s.lists.is_empty() {
                let sent = match &s.io {
                    Io::Udp(u) => u.send_to(buf.rest(), peer).ok(),
                    _ => None,
                };
                if sent == Some(buf.rest().len()) {
                    self.server
                        .bytes_out
                        .fetch_add(buf.rest().len() as u64, Ordering::Relaxed);
                    s.stat_write += buf.rest().len() as u64;
                    s.wtime = self.now();
                    return After::Keep;
                }
                s.lists.push(priority, buf);
                if self.interest(s, s.reading, true).is_err() {
                    let owner = s.owner;
                    self.emit(owner, SocketEvent::error(id, "enable write failed"));
                    return After::Keep;
                }
            } else {
                s.lists.push(priority, buf);
            }
        }
        let pending = s.lists.size();
        let limit = self.server.send_limit;
        if limit > 0 && pending > limit {
            self.log(&format!(
                "socket-server error: socket {id} has {pending} bytes to send, more than \
                 socket_send_limit {limit}: closed"
            ));
            self.emit(s.owner, SocketEvent::error(id, "send buffer overflow"));
            return After::Close;
        }
        if let Some(kib) = s.lists.warning() {
            self.emit(s.owner, SocketEvent::plain(event::WARNING, id, kib));
        }
        After::Keep
    }

    pub(super) fn nodelay(&self, s: &Socket) {
        if let Io::Stream(t) = &s.io {
            let _ = t.set_nodelay(true);
        }
    }
}
