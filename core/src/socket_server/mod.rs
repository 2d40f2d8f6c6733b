//! The socket server: every network socket of the node, driven by one thread.
//!
//! One socket thread owns every socket: it waits on epoll ([`crate::poll`]), handles the
//! requests services queue through [`SocketServer`] (listen, connect, send, close, ...) and
//! turns I/O into events for the socket's owner service (PTYPE_SOCKET messages, see
//! [`SocketEvent`]). Services never touch a socket: they hold ids.
//!
//! - Ids come from an atomic counter (31 bits); slot = id mod 65536; a slot is free again only
//!   once its socket is closed, and ids are not reused until the counter wraps. The slot table
//!   ([`Slots`]) is the only state shared with service threads: the id and state of every slot,
//!   so a send to a closed or closing socket fails at once in the caller.
//! - Requests travel through a queue plus an eventfd registered in epoll; after each wait the
//!   socket thread handles queued requests, at most 256 of them, before the I/O events of
//!   that wait; while requests are left over the next wait does not block.
//! - `connect` to a host name looks the name up on a resolver thread, so a
//!   slow name server never holds up I/O; requests on that id made meanwhile wait for the
//!   lookup and are handled in order after it. IP literals connect at once.
//! - Each socket has a high- and a low-priority send list ([`SendLists`]); pending bytes
//!   trigger the 1 MiB warning (and its "drained" event), and a hard
//!   `socket_send_limit` that closes the connection.
//! - `socket_max` caps the open sockets (at most the 65536 slots).
//!
//! A high-priority TCP send to an idle connection (connected, nothing pending, none of its
//! sends still queued) is written by the caller's thread at once (a direct write), unless the
//! calling service has more messages waiting and the socket thread is not behind: then the
//! socket thread writes it while the worker goes on. The rest goes to the socket thread too,
//! which writes a queued send at once when nothing is pending, without waiting for the next
//! writable event.
//!
//! A [`TlsPolicy`] makes some listeners and outgoing connections mutual-TLS ones: their
//! handshake runs on the socket thread; after it, a direct write encrypts under the
//! connection's lock (what rustls could not write yet is left to the socket thread); services
//! see plaintext.

mod address;
mod on_io;
mod on_request;
mod request;
mod resolver;
mod send_list;
mod server;
mod sink;
mod slot;
mod socket;
mod thread;
mod tls;

pub use address::{decode_udp_address, encode_udp_address, strerror, udp_address_size};
pub use request::{SendData, SocketInfo};
pub use send_list::{Flush, Priority, SendLists, WriteResult};
pub use server::SocketServer;
pub use sink::{Delivery, NodeSink, Sink, SocketEvent};
pub use slot::{slot_of, Slots, State};
pub use tls::{Endpoint, TlsFiles, TlsPolicy};

/// Slots of the socket table: ids map to `id % MAX_SOCKET`.
pub const MAX_SOCKET: usize = 1 << 16;
/// Pending send bytes at which the first WARNING fires.
pub const WARNING_SIZE: usize = 1024 * 1024;
/// Longest inline text of a CONNECT/ERROR/ACCEPT event.
pub const MAX_INLINE_TEXT: usize = 128;
/// Largest UDP datagram received.
pub const MAX_UDP_PACKAGE: usize = 65535;
/// Size of `struct skynet_socket_message`.
pub const SOCKET_MESSAGE_SIZE: usize = 24;
const MIN_READ_BUFFER: usize = 64;
/// A read buffer that reads fill doubles up to this size, no further.
const MAX_READ_BUFFER: usize = 1 << 24;
const MAX_EVENT: usize = 64;
const MAX_ACCEPT_PER_EVENT: usize = 64;
const WAKE_TOKEN: u64 = u64::MAX;
const RESOLVER_TOKEN: u64 = u64::MAX - 1;
/// Most requests the socket thread handles before it looks at I/O again.
const MAX_REQUESTS_PER_ROUND: usize = 256;

/// `SKYNET_SOCKET_TYPE_*`: the `type` of a socket event.
pub mod event {
    pub const DATA: i32 = 1;
    pub const CONNECT: i32 = 2;
    pub const CLOSE: i32 = 3;
    pub const ACCEPT: i32 = 4;
    pub const ERROR: i32 = 5;
    pub const UDP: i32 = 6;
    pub const WARNING: i32 = 7;
}

/// `SOCKET_INFO_*`: the kind of a [`SocketInfo`].
pub mod info_type {
    pub const UNKNOWN: i32 = 0;
    pub const LISTEN: i32 = 1;
    pub const TCP: i32 = 2;
    pub const UDP: i32 = 3;
    pub const BIND: i32 = 4;
    pub const CLOSING: i32 = 5;
}

/// The protocol byte of an encoded UDP address (TCP is 0 internally).
pub mod protocol {
    pub const TCP: u8 = 0;
    pub const UDP: u8 = 1;
    pub const UDPV6: u8 = 2;
}

/// Limits and TLS policy of the socket server (config keys `socket_max`, `socket_send_limit`,
/// `socket_handoff_limit`, `tls_*`).
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Most sockets open at once (reserved ones included), 1..=65536.
    pub max_sockets: usize,
    /// Pending send bytes beyond which a connection is closed; 0 = no limit.
    pub send_limit: usize,
    /// Requests waiting for the socket thread at which a worker whose service has messages
    /// waiting writes its sends itself again; 0 = it always does (upstream's direct write).
    pub handoff_limit: usize,
    /// Mutual TLS on the listeners and connections it names; `None`: every link is plain.
    pub tls: Option<std::sync::Arc<TlsPolicy>>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            max_sockets: 65535,
            send_limit: 64 << 20,
            // Half of what the socket thread takes in a round.
            handoff_limit: MAX_REQUESTS_PER_ROUND / 2,
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests;
