//! One socket as the socket thread holds it.

use super::address::addr_name;
use super::request::SocketInfo;
use super::send_list::SendLists;
use super::slot::State;
use super::tls::TlsState;
use super::{info_type, protocol, MIN_READ_BUFFER};
use crate::payload::Payload;
use socket2::SockRef;
use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

pub(super) enum Io {
    Listener(TcpListener),
    /// Shared with the slot table for direct writes from the caller's thread.
    Stream(Arc<TcpStream>),
    Udp(UdpSocket),
    /// A duplicate of a descriptor given to `bind`.
    Bound(File),
}

impl Io {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Io::Listener(s) => s.as_fd(),
            Io::Stream(s) => s.as_fd(),
            Io::Udp(s) => s.as_fd(),
            Io::Bound(f) => f.as_fd(),
        }
    }

    /// Reads at most `cap` bytes into a new payload (see [`Payload::read_from`]).
    pub(super) fn read_payload(&self, cap: usize) -> io::Result<Payload> {
        match self {
            Io::Stream(_) | Io::Bound(_) => Payload::read_from(self.fd(), cap),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub(super) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                Io::Stream(s) => (&**s).write(buf),
                Io::Bound(f) => (&*f).write(buf),
                _ => Err(io::ErrorKind::Unsupported.into()),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    pub(super) fn shutdown(&self, how: Shutdown) {
        if let Io::Stream(s) = self {
            let _ = s.shutdown(how);
        }
    }

    /// SO_ERROR.
    pub(super) fn take_error(&self) -> io::Result<Option<io::Error>> {
        SockRef::from(&self.fd()).take_error()
    }
}

pub(super) struct Socket {
    pub(super) id: i32,
    pub(super) owner: u32,
    pub(super) io: Io,
    pub(super) state: State,
    pub(super) protocol: u8,
    pub(super) reading: bool,
    /// Not read because its owner's queue is full, until resumed (or started or paused).
    pub(super) held: bool,
    pub(super) writing: bool,
    pub(super) closing: bool,
    pub(super) lists: SendLists,
    pub(super) read_size: usize,
    pub(super) udp_peer: Option<SocketAddr>,
    pub(super) stat_read: u64,
    pub(super) stat_write: u64,
    pub(super) rtime: u64,
    pub(super) wtime: u64,
    /// A TLS connection's rustls side.
    pub(super) tls: Option<Box<TlsState>>,
    /// A listener whose connections are TLS servers.
    pub(super) tls_listener: bool,
    /// The `idle` the socket thread last wrote to this slot's direct side (which starts
    /// false): an unchanged value is not written again, so a read event takes no lock a
    /// writing worker may hold.
    pub(super) published_idle: bool,
}

impl Socket {
    pub(super) fn new(id: i32, owner: u32, io: Io, protocol: u8, state: State) -> Socket {
        Socket {
            id,
            owner,
            io,
            state,
            protocol,
            reading: false,
            held: false,
            writing: false,
            closing: false,
            lists: SendLists::default(),
            read_size: MIN_READ_BUFFER,
            udp_peer: None,
            stat_read: 0,
            stat_write: 0,
            rtime: 0,
            wtime: 0,
            tls: None,
            tls_listener: false,
            published_idle: false,
        }
    }

    /// Callers may write directly: a connected TCP stream with nothing pending.
    pub(super) fn direct_idle(&self) -> bool {
        self.state == State::Connected
            && !self.closing
            && !self.has_pending()
            && matches!(self.io, Io::Stream(_))
    }

    /// Bytes wait to be written: in the send lists, or TLS records rustls holds (handshake
    /// records of a connection still connecting do not count: closing it drops them).
    pub(super) fn has_pending(&self) -> bool {
        !self.lists.is_empty()
            || (self.state != State::Connecting
                && self.tls.as_ref().is_some_and(|t| t.wants_write()))
    }

    pub(super) fn nomore_sending(&self) -> bool {
        !self.has_pending() || self.state == State::HalfcloseWrite
    }

    pub(super) fn info(&self) -> Option<SocketInfo> {
        let (kind, name) = match self.state {
            State::Bind => (info_type::BIND, String::new()),
            State::Listen => (
                info_type::LISTEN,
                match &self.io {
                    Io::Listener(l) => l.local_addr().map(|a| addr_name(&a)).unwrap_or_default(),
                    _ => String::new(),
                },
            ),
            State::Connected | State::HalfcloseRead | State::HalfcloseWrite => {
                if self.protocol == protocol::TCP {
                    let kind = if self.state == State::Connected {
                        info_type::TCP
                    } else {
                        info_type::CLOSING
                    };
                    let name = match &self.io {
                        Io::Stream(s) => s.peer_addr().map(|a| addr_name(&a)).unwrap_or_default(),
                        _ => String::new(),
                    };
                    (kind, name)
                } else {
                    (
                        info_type::UDP,
                        self.udp_peer.map(|a| addr_name(&a)).unwrap_or_default(),
                    )
                }
            }
            _ => return None,
        };
        Some(SocketInfo {
            id: self.id,
            kind,
            opaque: u64::from(self.owner),
            read: self.stat_read,
            write: self.stat_write,
            rtime: self.rtime,
            wtime: self.wtime,
            wbuffer: self.lists.size() as i64,
            reading: self.reading,
            writing: self.writing,
            name,
        })
    }
}

/// What a handler wants done with its socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum After {
    Keep,
    /// Force-close it (the handler queued whatever event goes with that).
    Close,
}

/// How a read turned out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ReadOutcome {
    Nothing,
    Data,
    Closed,
    Error,
}
