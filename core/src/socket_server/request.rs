//! What callers hand to the socket thread: requests, send data and the info reply.

use super::send_list::Priority;
use crate::payload::Payload;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::mpsc;

/// Bytes to send: a block the socket layer takes over (`SOCKET_BUFFER_MEMORY`) or bytes
/// it copies (`SOCKET_BUFFER_RAWPOINTER`, Lua strings).
pub enum SendData<'a> {
    Owned(Payload),
    Borrowed(&'a [u8]),
}

impl SendData<'_> {
    pub(super) fn into_payload(self) -> Payload {
        match self {
            SendData::Owned(p) => p,
            SendData::Borrowed(b) => Payload::copy_from(b),
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            SendData::Owned(p) => p.as_slice(),
            SendData::Borrowed(b) => b,
        }
    }

    /// What is left after `n` bytes went out: (block, offset into it).
    pub(super) fn into_rest(self, n: usize) -> (Payload, usize) {
        match self {
            SendData::Owned(p) => (p, n),
            SendData::Borrowed(b) => (Payload::copy_from(&b[n.min(b.len())..]), 0),
        }
    }
}

/// One live socket as the socket info listing shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    pub id: i32,
    /// [`info_type`](super::info_type).
    pub kind: i32,
    /// Owner handle.
    pub opaque: u64,
    /// Bytes read (LISTEN: connections accepted).
    pub read: u64,
    pub write: u64,
    pub rtime: u64,
    pub wtime: u64,
    /// Pending send bytes.
    pub wbuffer: i64,
    pub reading: bool,
    pub writing: bool,
    /// `ip:port`: peer (TCP), local (LISTEN), default peer (UDP), empty (BIND).
    pub name: String,
}

pub(super) enum Request {
    Start {
        id: i32,
        owner: u32,
    },
    Pause {
        id: i32,
    },
    /// The owner's queue drained: read a held connection again.
    Resume {
        id: i32,
    },
    Bind {
        id: i32,
        owner: u32,
        fd: OwnedFd,
    },
    Listen {
        id: i32,
        owner: u32,
        listener: TcpListener,
        /// Accepted connections are TLS servers.
        tls: bool,
    },
    Close {
        id: i32,
        shutdown: bool,
    },
    Connect {
        id: i32,
        owner: u32,
        host: String,
        port: i32,
        /// A TLS client verifying the server as this name.
        tls: Option<rustls::pki_types::ServerName<'static>>,
    },
    Exit,
    Send {
        id: i32,
        data: Payload,
        /// Bytes of `data` already written (by a direct write).
        offset: usize,
        priority: Priority,
        udp: Option<SocketAddr>,
        /// Counted in the slot's `inflight`.
        counted: bool,
    },
    SetUdp {
        id: i32,
        peer: SocketAddr,
    },
    Udp {
        id: i32,
        owner: u32,
        socket: UdpSocket,
        protocol: u8,
        peer: Option<SocketAddr>,
    },
    Nodelay {
        id: i32,
    },
    Info {
        reply: mpsc::Sender<Vec<SocketInfo>>,
    },
}

impl Request {
    /// The live socket this request acts on (not one it creates).
    pub(super) fn target(&self) -> Option<i32> {
        match self {
            Request::Start { id, .. }
            | Request::Pause { id }
            | Request::Resume { id }
            | Request::Close { id, .. }
            | Request::Send { id, .. }
            | Request::SetUdp { id, .. }
            | Request::Nodelay { id } => Some(*id),
            Request::Bind { .. }
            | Request::Listen { .. }
            | Request::Connect { .. }
            | Request::Udp { .. }
            | Request::Exit
            | Request::Info { .. } => None,
        }
    }
}

pub(super) struct Queue {
    pub(super) requests: Vec<Request>,
    /// The waker was signalled since the socket thread last took the queue.
    pub(super) signaled: bool,
    /// The socket thread is gone: requests are refused.
    pub(super) closed: bool,
}
