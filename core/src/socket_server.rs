//! The socket server (upstream `socket_server.c` + `skynet_socket.c`, SURFACE 7).
//!
//! One socket thread owns every socket: it waits on epoll ([`crate::poll`]), handles the
//! requests services queue through [`SocketServer`] (listen, connect, send, close, ...) and
//! turns I/O into events for the socket's owner service (PTYPE_SOCKET messages, see
//! [`SocketEvent`]). Services never touch a socket: they hold ids.
//!
//! - Ids come from an atomic counter (31 bits); slot = id mod 65536; a slot is free again only
//!   once its socket is closed, and ids are not reused until the counter wraps. The slot table
//!   ([`Slots`]) is the only state shared with service threads: the id and state of every slot,
//!   so a send to a closed or closing socket fails at once, as upstream.
//! - Requests travel through a queue plus an eventfd registered in epoll; after each wait the
//!   socket thread handles every queued request before the I/O events of that wait (control
//!   requests first, as upstream's pipe check).
//! - Each socket has a high- and a low-priority send list ([`SendLists`]); pending bytes
//!   trigger the 1 MiB warning (and its "drained" event), and, beyond upstream, a hard
//!   `socket_send_limit` that closes the connection.
//! - `socket_max` caps the open sockets (upstream: the 65536 slots).
//!
//! A high-priority TCP send to an idle connection (connected, nothing pending, none of its
//! sends still queued) is written by the caller's thread at once, as upstream's direct write;
//! the rest goes to the socket thread, which also writes a queued send at once when nothing is
//! pending (upstream waits for the next EPOLLOUT there).

use crate::buffer::Payload;
use crate::mq::Message;
use crate::poll::{PollEvent, Poller, Waker};
use crate::{ptype, server};
use parking_lot::Mutex;
use socket2::{Domain, SockRef, Socket as RawSocket, Type};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
    UdpSocket,
};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

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
/// Beyond upstream: a read buffer stops doubling here (upstream doubles for ever).
const MAX_READ_BUFFER: usize = 1 << 24;
const MAX_EVENT: usize = 64;
const MAX_ACCEPT_PER_EVENT: usize = 64;
const WAKE_TOKEN: u64 = u64::MAX;

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

/// Limits beyond upstream (config keys `socket_max`, `socket_send_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// Most sockets open at once (reserved ones included), 1..=65536.
    pub max_sockets: usize,
    /// Pending send bytes beyond which a connection is closed; 0 = no limit.
    pub send_limit: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            max_sockets: 65535,
            send_limit: 64 << 20,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// UDP addresses (SURFACE 7.8)

/// Encodes a UDP peer as upstream does: protocol byte (1 IPv4, 2 IPv6), port (network order),
/// address bytes: 7 or 19 bytes.
pub fn encode_udp_address(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(protocol::UDP);
            out.extend_from_slice(&addr.port().to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(protocol::UDPV6);
            out.extend_from_slice(&addr.port().to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
    }
    out
}

/// The size of an encoded UDP address with this protocol byte (7 or 19), if valid.
pub fn udp_address_size(protocol_byte: u8) -> Option<usize> {
    match protocol_byte {
        protocol::UDP => Some(7),
        protocol::UDPV6 => Some(19),
        _ => None,
    }
}

/// Decodes an encoded UDP address (extra bytes after it are ignored).
pub fn decode_udp_address(bytes: &[u8]) -> Option<SocketAddr> {
    let size = udp_address_size(*bytes.first()?)?;
    let b = bytes.get(..size)?;
    let port = u16::from_be_bytes([b[1], b[2]]);
    let ip = if size == 7 {
        IpAddr::V4(Ipv4Addr::new(b[3], b[4], b[5], b[6]))
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[3..19]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some(SocketAddr::new(ip, port))
}

fn protocol_of(addr: &SocketAddr) -> u8 {
    if addr.is_ipv4() {
        protocol::UDP
    } else {
        protocol::UDPV6
    }
}

/// `ip:port` as upstream prints it (no brackets around IPv6).
fn addr_name(addr: &SocketAddr) -> String {
    format!("{}:{}", addr.ip(), addr.port())
}

/// `strerror` text of an OS error (std's message without the ` (os error N)` suffix).
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_owned(),
        _ => s,
    }
}

/// The resolver's message for a failed lookup (std prefixes getaddrinfo's text).
fn gai_text(e: &io::Error) -> String {
    let s = strerror(e);
    match s.strip_prefix("failed to lookup address information: ") {
        Some(rest) => rest.to_owned(),
        None => s,
    }
}

/// getaddrinfo-style resolution (`AF_UNSPEC`); `None`/"" means `0.0.0.0` (for binding).
fn resolve(host: Option<&str>, port: i32) -> io::Result<Vec<SocketAddr>> {
    let host = match host {
        None | Some("") => "0.0.0.0",
        Some(h) => h,
    };
    let port = u16::try_from(port)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "Invalid port"))?;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "No address associated with hostname",
        ));
    }
    Ok(addrs)
}

// ---------------------------------------------------------------------------------------------
// Events (SURFACE 7.3)

/// One event for a service: becomes a PTYPE_SOCKET message whose payload is
/// `struct skynet_socket_message` (+ inline text for CONNECT/ERROR/ACCEPT).
#[derive(Debug)]
pub struct SocketEvent {
    /// `SKYNET_SOCKET_TYPE_*` ([`event`]).
    pub ty: i32,
    pub id: i32,
    pub ud: i32,
    /// DATA: the bytes read; UDP: the datagram followed by the sender's encoded address.
    pub data: Option<Payload>,
    /// CONNECT/ERROR/ACCEPT: the inline text (capped at 128 bytes when encoded).
    pub text: Option<String>,
}

impl SocketEvent {
    fn inline(ty: i32, id: i32, ud: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent {
            ty,
            id,
            ud,
            data: None,
            text: Some(text.into()),
        }
    }

    fn plain(ty: i32, id: i32, ud: i32) -> SocketEvent {
        SocketEvent {
            ty,
            id,
            ud,
            data: None,
            text: None,
        }
    }

    fn error(id: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent::inline(event::ERROR, id, 0, text)
    }

    fn connect(id: i32, ud: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent::inline(event::CONNECT, id, ud, text)
    }

    fn close(id: i32) -> SocketEvent {
        SocketEvent::plain(event::CLOSE, id, 0)
    }

    /// The inline text as encoded: at most 128 bytes.
    pub fn inline_text(&self) -> &[u8] {
        let t = self.text.as_deref().unwrap_or("").as_bytes();
        &t[..t.len().min(MAX_INLINE_TEXT)]
    }

    /// The message payload (`struct skynet_socket_message` + inline text, one libc block)
    /// and the separate heap buffer it points to, if any. The buffer must be handed over
    /// (`into_raw`) if the message is delivered, freed otherwise.
    pub fn into_payloads(self) -> (Payload, Option<Payload>) {
        let text = self.inline_text();
        let mut bytes = Vec::with_capacity(SOCKET_MESSAGE_SIZE + text.len());
        bytes.extend_from_slice(&self.ty.to_ne_bytes());
        bytes.extend_from_slice(&self.id.to_ne_bytes());
        bytes.extend_from_slice(&self.ud.to_ne_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let addr = self.data.as_ref().map_or(0, |d| d.as_ptr() as usize);
        bytes.extend_from_slice(&(addr as u64).to_ne_bytes());
        bytes.extend_from_slice(text);
        (Payload::copy_from(&bytes), self.data)
    }
}

/// Where the socket thread sends events, logs and reads the time.
pub trait Sink: Send + Sync {
    /// Delivers `ev` to service `owner`; false if it is gone (the event is then dropped).
    fn deliver(&self, owner: u32, ev: SocketEvent) -> bool;
    /// A log line (upstream `skynet_error(NULL, ...)`).
    fn log(&self, text: &str);
    /// The time for `rtime`/`wtime` (centiseconds).
    fn now(&self) -> u64;
    /// After a batch of events was delivered.
    fn flush(&self) {}
}

/// The node's sink: PTYPE_SOCKET messages from source 0, session 0; logs to the logger.
pub struct NodeSink;

impl Sink for NodeSink {
    fn deliver(&self, owner: u32, ev: SocketEvent) -> bool {
        let Some(node) = server::try_node() else {
            return false;
        };
        let (msg, data) = ev.into_payloads();
        let delivered = node
            .push_socket(
                owner,
                Message::new(0, 0, ptype::SOCKET as u8, msg),
                None,
                false,
            )
            .is_some();
        if delivered {
            // The receiving service owns the buffer now (its callback frees it).
            if let Some(d) = data {
                let _ = d.into_raw();
            }
        }
        delivered
    }

    fn log(&self, text: &str) {
        if let Some(node) = server::try_node() {
            node.log(0, text);
        }
    }

    fn now(&self) -> u64 {
        server::try_node().map_or(0, |n| n.timer.now())
    }

    fn flush(&self) {
        if let Some(node) = server::try_node() {
            node.global.wake_one();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The slot table (shared with service threads)

/// Internal socket states (upstream `SOCKET_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Invalid = 0,
    Reserve = 1,
    PListen = 2,
    Listen = 3,
    Connecting = 4,
    Connected = 5,
    HalfcloseRead = 6,
    HalfcloseWrite = 7,
    PAccept = 8,
    Bind = 9,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Reserve,
            2 => State::PListen,
            3 => State::Listen,
            4 => State::Connecting,
            5 => State::Connected,
            6 => State::HalfcloseRead,
            7 => State::HalfcloseWrite,
            8 => State::PAccept,
            9 => State::Bind,
            _ => State::Invalid,
        }
    }
}

const CLOSING_BIT: u64 = 0x100;

fn pack(id: i32, state: State, closing: bool) -> u64 {
    (u64::from(id as u32) << 32) | state as u64 | if closing { CLOSING_BIT } else { 0 }
}

fn unpack(v: u64) -> (i32, State, bool) {
    (
        (v >> 32) as u32 as i32,
        State::from_u8(v as u8),
        v & CLOSING_BIT != 0,
    )
}

/// The slot of an id.
pub fn slot_of(id: i32) -> usize {
    id as u32 as usize % MAX_SOCKET
}

/// The direct-write side of a slot (upstream's `dw_*` fields and `sending` counter): a caller
/// may write a send itself, under this lock, when the socket is idle (connected, nothing
/// pending, not closing: set by the socket thread) and none of its sends is still queued.
#[derive(Default)]
struct Direct {
    id: i32,
    stream: Option<Arc<TcpStream>>,
    idle: bool,
    /// Sends queued for the socket thread and not yet handled.
    inflight: u32,
    /// Bytes written directly, and when (merged into `socket_info`).
    written: u64,
    wtime: u64,
}

/// Id allocation and the per-slot (id, state, closing) word every thread can read.
pub struct Slots {
    cells: Box<[AtomicU64]>,
    direct: Box<[Mutex<Direct>]>,
    alloc_id: AtomicI32,
    open: AtomicUsize,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            cells: (0..MAX_SOCKET).map(|_| AtomicU64::new(0)).collect(),
            direct: (0..MAX_SOCKET)
                .map(|_| Mutex::new(Direct::default()))
                .collect(),
            alloc_id: AtomicI32::new(0),
            open: AtomicUsize::new(0),
            max: max.clamp(1, MAX_SOCKET),
        }
    }

    /// The next id of the counter: 1, 2, ... 0x7fffffff, then it wraps to small values.
    fn next_id(&self) -> i32 {
        let id = self
            .alloc_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        if id < 0 {
            self.alloc_id.fetch_and(0x7fff_ffff, Ordering::Relaxed) & 0x7fff_ffff
        } else {
            id
        }
    }

    /// Reserves a free slot: its new id, or `None` if `max` sockets are open or no slot is
    /// free.
    pub fn reserve(&self) -> Option<i32> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut tries = 0;
        while tries < MAX_SOCKET {
            let id = self.next_id();
            let cell = &self.cells[slot_of(id)];
            let cur = cell.load(Ordering::Acquire);
            if unpack(cur).1 != State::Invalid {
                tries += 1;
                continue;
            }
            if cell
                .compare_exchange(
                    cur,
                    pack(id, State::Reserve, false),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                // From now on every send to this id is counted (see `Direct`).
                *self.direct[slot_of(id)].lock() = Direct {
                    id,
                    ..Direct::default()
                };
                return Some(id);
            }
            // Someone else took it meanwhile: retry without counting.
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        None
    }

    /// State and closing flag of a live id (`None` if the id is not, or no longer, valid).
    pub fn get(&self, id: i32) -> Option<(State, bool)> {
        let (sid, state, closing) = unpack(self.cells[slot_of(id)].load(Ordering::Acquire));
        (sid == id && state != State::Invalid).then_some((state, closing))
    }

    fn set(&self, id: i32, state: State, closing: bool) {
        self.cells[slot_of(id)].store(pack(id, state, closing), Ordering::Release);
    }

    /// Frees the slot of a reserved or live id.
    fn release(&self, id: i32) {
        // Drop the shared stream first: the descriptor closes with the last reference.
        let old = std::mem::take(&mut *self.direct[slot_of(id)].lock());
        drop(old);
        self.cells[slot_of(id)].store(pack(id, State::Invalid, false), Ordering::Release);
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sockets open or reserved.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------------------------
// Send lists (SURFACE 7.5, 7.6)

/// Which list a send goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
}

struct WriteBuf {
    data: Payload,
    offset: usize,
    /// UDP: where to.
    udp: Option<SocketAddr>,
}

impl WriteBuf {
    fn rest(&self) -> &[u8] {
        &self.data.as_slice()[self.offset..]
    }
}

/// What one write attempt did.
pub enum WriteResult {
    /// Wrote this many bytes.
    Wrote(usize),
    /// Would block: try again when writable.
    Blocked,
    /// Dropped this buffer (UDP errors); stop for now.
    Dropped,
    /// A write error (TCP: the write side is dead).
    Failed(io::Error),
}

/// What a flush left.
pub enum Flush {
    Drained,
    Pending,
    Failed(io::Error),
}

enum ListFlush {
    Done,
    Blocked,
    Failed(io::Error),
}

/// A socket's two send lists and pending-byte accounting.
#[derive(Default)]
pub struct SendLists {
    high: VecDeque<WriteBuf>,
    low: VecDeque<WriteBuf>,
    size: usize,
    warn_size: usize,
}

impl SendLists {
    pub fn is_empty(&self) -> bool {
        self.high.is_empty() && self.low.is_empty()
    }

    /// Pending bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    fn push(&mut self, priority: Priority, buf: WriteBuf) {
        self.size += buf.rest().len();
        match priority {
            Priority::High => self.high.push_back(buf),
            Priority::Low => self.low.push_back(buf),
        }
    }

    /// Queues bytes (TCP).
    pub fn push_bytes(&mut self, priority: Priority, data: Payload) {
        self.push(
            priority,
            WriteBuf {
                data,
                offset: 0,
                udp: None,
            },
        );
    }

    /// After queuing: the WARNING to emit (pending KiB, rounded up), at >= 1, 2, 4, ... MiB.
    pub fn warning(&mut self) -> Option<i32> {
        if self.size >= WARNING_SIZE && self.size >= self.warn_size {
            self.warn_size = if self.warn_size == 0 {
                WARNING_SIZE * 2
            } else {
                self.warn_size * 2
            };
            Some(self.size.div_ceil(1024).min(i32::MAX as usize) as i32)
        } else {
            None
        }
    }

    /// Once drained: true (and reset) if a warning had been issued, so the owner gets the
    /// ud = 0 WARNING.
    pub fn take_drained_warning(&mut self) -> bool {
        if self.is_empty() && self.warn_size > 0 {
            self.warn_size = 0;
            true
        } else {
            false
        }
    }

    fn flush_list(
        list: &mut VecDeque<WriteBuf>,
        size: &mut usize,
        write: &mut impl FnMut(&[u8], Option<SocketAddr>) -> WriteResult,
    ) -> ListFlush {
        while let Some(head) = list.front_mut() {
            let rest = head.rest().len();
            match write(head.rest(), head.udp) {
                WriteResult::Wrote(n) => {
                    let n = n.min(rest);
                    *size -= n;
                    if n < rest {
                        head.offset += n;
                        return ListFlush::Blocked;
                    }
                    list.pop_front();
                }
                WriteResult::Blocked => return ListFlush::Blocked,
                WriteResult::Dropped => {
                    *size -= rest;
                    list.pop_front();
                    return ListFlush::Blocked;
                }
                WriteResult::Failed(e) => return ListFlush::Failed(e),
            }
        }
        ListFlush::Done
    }

    /// Writes as upstream's `send_buffer`: the high list completely, then the low list; a
    /// partly written low-list head moves to the (empty) high list so it completes first.
    pub fn flush(
        &mut self,
        mut write: impl FnMut(&[u8], Option<SocketAddr>) -> WriteResult,
    ) -> Flush {
        match Self::flush_list(&mut self.high, &mut self.size, &mut write) {
            ListFlush::Failed(e) => return Flush::Failed(e),
            ListFlush::Blocked => return Flush::Pending,
            ListFlush::Done => {}
        }
        if !self.low.is_empty() {
            if let ListFlush::Failed(e) =
                Self::flush_list(&mut self.low, &mut self.size, &mut write)
            {
                return Flush::Failed(e);
            }
            if self.low.front().is_some_and(|b| b.offset > 0) {
                if let Some(b) = self.low.pop_front() {
                    self.high.push_back(b);
                }
                return Flush::Pending;
            }
            if !self.low.is_empty() {
                return Flush::Pending;
            }
        }
        Flush::Drained
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and the caller side

/// Bytes to send: a block the socket layer takes over (`SOCKET_BUFFER_MEMORY`) or bytes
/// it copies (`SOCKET_BUFFER_RAWPOINTER`, Lua strings).
pub enum SendData<'a> {
    Owned(Payload),
    Borrowed(&'a [u8]),
}

impl SendData<'_> {
    fn into_payload(self) -> Payload {
        match self {
            SendData::Owned(p) => p,
            SendData::Borrowed(b) => Payload::copy_from(b),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            SendData::Owned(p) => p.as_slice(),
            SendData::Borrowed(b) => b,
        }
    }

    /// What is left after `n` bytes went out: (block, offset into it).
    fn into_rest(self, n: usize) -> (Payload, usize) {
        match self {
            SendData::Owned(p) => (p, n),
            SendData::Borrowed(b) => (Payload::copy_from(&b[n.min(b.len())..]), 0),
        }
    }
}

/// One live socket as `skynet_socket_info` lists it (SURFACE 7.9).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    pub id: i32,
    /// [`info_type`].
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

enum Request {
    Start {
        id: i32,
        owner: u32,
    },
    Pause {
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

struct Queue {
    requests: Vec<Request>,
    /// The waker was signalled since the socket thread last took the queue.
    signaled: bool,
    /// The socket thread is gone: requests are refused.
    closed: bool,
}

/// The socket server: the API services call (from any thread) and [`SocketServer::run`], the
/// socket thread's loop.
pub struct SocketServer {
    slots: Slots,
    queue: Mutex<Queue>,
    waker: Waker,
    poller: Mutex<Option<Poller>>,
    sink: Box<dyn Sink>,
    send_limit: usize,
    running: AtomicBool,
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
            running: AtomicBool::new(false),
        })
    }

    /// Sockets open or reserved.
    pub fn open_sockets(&self) -> usize {
        self.slots.open()
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
        self.reserve_and_submit(|id| Request::Listen {
            id,
            owner,
            listener,
        })
    }

    /// Connects asynchronously: the id at once; CONNECT (peer IP) or ERROR later. -1 if the
    /// host name is too long (as upstream's request limit) or no slot is free.
    pub fn connect(&self, owner: u32, host: &str, port: i32) -> i32 {
        if host.len() + 24 >= 256 {
            self.sink
                .log(&format!("socket-server error: Invalid addr {host}."));
            return -1;
        }
        let host = host.to_owned();
        self.reserve_and_submit(|id| Request::Connect {
            id,
            owner,
            host,
            port,
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

    /// Graceful close: pending data is flushed first (SURFACE 7.7).
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
    /// once, as upstream; what the socket does not take goes to the socket thread.
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
        let (data, offset) = match (&d.stream, priority, udp) {
            (Some(stream), Priority::High, None) if counted && d.idle && d.inflight == 0 => {
                let bytes = data.as_slice();
                let n = loop {
                    match (&**stream).write(bytes) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // Would block, or an error the socket thread will meet and report.
                        Err(_) => break 0,
                    }
                };
                if n > 0 {
                    d.written += n as u64;
                    d.wtime = self.sink.now();
                }
                if n == bytes.len() {
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

    /// Every live socket (BIND, LISTEN, TCP, UDP, closing), as upstream lists them: by
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
        let mut w = Worker {
            env: Env {
                server: self,
                poll,
                out: Vec::new(),
                spare_fd: File::open("/dev/null").ok(),
                udp_buf: vec![0; MAX_UDP_PACKAGE],
            },
            sockets: HashMap::new(),
            events: Vec::with_capacity(MAX_EVENT),
        };
        w.run();
    }
}

/// Marks the server stopped when the socket thread leaves (also by a panic), so requests are
/// refused instead of piling up, and `info` does not wait.
struct StopGuard<'a>(&'a SocketServer);

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

/// Creates a socket bound to `host:port` (first resolved address, SO_REUSEADDR) and its
/// protocol byte.
fn bind_socket(host: Option<&str>, port: i32, ty: Type) -> io::Result<(RawSocket, u8)> {
    let addr = resolve(host, port)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let s = RawSocket::new(Domain::for_address(addr), ty, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    let proto = if ty == Type::STREAM {
        protocol::TCP
    } else {
        protocol_of(&addr)
    };
    Ok((s, proto))
}

// ---------------------------------------------------------------------------------------------
// The socket thread

enum Io {
    Listener(TcpListener),
    /// Shared with the slot table for direct writes from the caller's thread.
    Stream(Arc<TcpStream>),
    Udp(UdpSocket),
    /// A duplicate of a descriptor given to `bind`.
    Bound(File),
}

impl Io {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Io::Listener(s) => s.as_fd(),
            Io::Stream(s) => s.as_fd(),
            Io::Udp(s) => s.as_fd(),
            Io::Bound(f) => f.as_fd(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Stream(s) => (&**s).read(buf),
            Io::Bound(f) => (&*f).read(buf),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
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

    fn shutdown(&self, how: Shutdown) {
        if let Io::Stream(s) = self {
            let _ = s.shutdown(how);
        }
    }

    /// SO_ERROR.
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        SockRef::from(&self.fd()).take_error()
    }
}

struct Socket {
    id: i32,
    owner: u32,
    io: Io,
    state: State,
    protocol: u8,
    reading: bool,
    writing: bool,
    closing: bool,
    lists: SendLists,
    read_size: usize,
    udp_peer: Option<SocketAddr>,
    stat_read: u64,
    stat_write: u64,
    rtime: u64,
    wtime: u64,
}

impl Socket {
    fn new(id: i32, owner: u32, io: Io, protocol: u8, state: State) -> Socket {
        Socket {
            id,
            owner,
            io,
            state,
            protocol,
            reading: false,
            writing: false,
            closing: false,
            lists: SendLists::default(),
            read_size: MIN_READ_BUFFER,
            udp_peer: None,
            stat_read: 0,
            stat_write: 0,
            rtime: 0,
            wtime: 0,
        }
    }

    /// Callers may write directly: a connected TCP stream with nothing pending.
    fn direct_idle(&self) -> bool {
        self.state == State::Connected
            && !self.closing
            && self.lists.is_empty()
            && matches!(self.io, Io::Stream(_))
    }

    fn nomore_sending(&self) -> bool {
        self.lists.is_empty() || self.state == State::HalfcloseWrite
    }

    fn info(&self) -> Option<SocketInfo> {
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
enum After {
    Keep,
    /// Force-close it (the handler queued whatever event goes with that).
    Close,
}

/// How a read turned out (upstream's return types that matter to the caller).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadOutcome {
    Nothing,
    Data,
    Closed,
    Error,
}

/// The socket thread's state other than the socket map.
struct Env<'a> {
    server: &'a SocketServer,
    poll: Poller,
    /// Events of the current step: delivered after the step's socket closes, so an owner
    /// that reacts to CLOSE/ERROR already finds the id invalid (as upstream).
    out: Vec<(u32, SocketEvent)>,
    /// Spare descriptor given up to accept-and-close when out of descriptors (EMFILE).
    spare_fd: Option<File>,
    udp_buf: Vec<u8>,
}

impl Env<'_> {
    fn emit(&mut self, owner: u32, ev: SocketEvent) {
        self.out.push((owner, ev));
    }

    fn log(&self, text: &str) {
        self.server.sink.log(text);
    }

    fn now(&self) -> u64 {
        self.server.sink.now()
    }

    fn sync(&self, s: &Socket) {
        self.server.slots.set(s.id, s.state, s.closing);
    }

    /// Sets epoll interest (upstream `enable_read` / `enable_write`).
    fn interest(&self, s: &mut Socket, read: bool, write: bool) -> io::Result<()> {
        if s.reading == read && s.writing == write {
            return Ok(());
        }
        s.reading = read;
        s.writing = write;
        self.poll
            .modify(s.io.fd(), u64::from(s.id as u32), read, write)
    }

    /// Registers a new socket; on failure the slot is freed and the socket dropped.
    fn register(&self, mut s: Socket, read: bool, write: bool) -> Result<Socket, ()> {
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

    /// Closes a socket for good (upstream `force_close`): no event.
    fn force_close(&self, s: Socket) {
        let _ = self.poll.delete(s.io.fd());
        let id = s.id;
        drop(s);
        self.server.slots.release(id);
    }

    fn close_read(&self, s: &mut Socket) {
        s.state = State::HalfcloseRead;
        let _ = self.interest(s, false, s.writing);
        s.io.shutdown(Shutdown::Read);
        self.sync(s);
    }

    // --- requests ----------------------------------------------------------------------------

    fn start(&mut self, s: Option<&mut Socket>, id: i32, owner: u32) {
        let Some(s) = s else {
            self.emit(owner, SocketEvent::error(id, "invalid socket"));
            return;
        };
        if s.state == State::HalfcloseRead {
            self.emit(owner, SocketEvent::error(id, "socket closed"));
            return;
        }
        if self.interest(s, true, s.writing).is_err() {
            self.emit(owner, SocketEvent::error(id, "enable read failed"));
            return;
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
            }
            State::Connected => {
                s.owner = owner;
                self.emit(owner, SocketEvent::connect(id, 0, "transfer"));
            }
            _ => {}
        }
    }

    fn pause(&mut self, s: &mut Socket) {
        if self.interest(s, false, s.writing).is_err() {
            self.emit(s.owner, SocketEvent::error(s.id, "enable read failed"));
        }
    }

    fn close(&mut self, s: &mut Socket, shutdown: bool) -> After {
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

    fn connect(&mut self, id: i32, owner: u32, host: &str, port: i32) -> Option<Socket> {
        let fail = |env: &mut Self, text: String| {
            env.server.slots.release(id);
            env.emit(owner, SocketEvent::error(id, text));
            None
        };
        let addrs = match resolve(Some(host), port) {
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
            let state = if immediate {
                State::Connected
            } else {
                State::Connecting
            };
            let s = Socket::new(
                id,
                owner,
                Io::Stream(Arc::new(stream)),
                protocol::TCP,
                state,
            );
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

    fn listen(&mut self, id: i32, owner: u32, listener: TcpListener) -> Option<Socket> {
        let s = Socket::new(
            id,
            owner,
            Io::Listener(listener),
            protocol::TCP,
            State::PListen,
        );
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

    fn bind(&mut self, id: i32, owner: u32, fd: OwnedFd) -> Option<Socket> {
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

    fn udp(
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

    fn set_udp(&mut self, s: &mut Socket, peer: SocketAddr) {
        if protocol_of(&peer) != s.protocol {
            self.emit(s.owner, SocketEvent::error(s.id, "protocol mismatch"));
            return;
        }
        s.udp_peer = Some(peer);
    }

    fn send(
        &mut self,
        s: &mut Socket,
        data: Payload,
        offset: usize,
        priority: Priority,
        udp: Option<SocketAddr>,
    ) -> After {
        let id = s.id;
        if matches!(s.state, State::HalfcloseWrite | State::PAccept) || s.closing {
            return After::Keep; // dropped, as upstream
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
                if !s.lists.is_empty()
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

    fn nodelay(&self, s: &Socket) {
        if let Io::Stream(t) = &s.io {
            let _ = t.set_nodelay(true);
        }
    }

    // --- I/O events ------------------------------------------------------------------------

    /// Flushes the send lists (upstream `send_buffer`).
    fn send_buffer(&mut self, s: &mut Socket) -> After {
        let now = self.now();
        let sink = &*self.server.sink;
        let Socket {
            id,
            io,
            lists,
            stat_write,
            wtime,
            protocol: proto,
            ..
        } = s;
        let (id, proto) = (*id, *proto);
        let flushed = lists.flush(|buf, addr| {
            if proto == protocol::TCP {
                return match io.write(buf) {
                    Ok(n) => {
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
            Flush::Pending => After::Keep,
            Flush::Failed(e) => self.close_write(s, &e),
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

    /// A write failed (upstream `close_write`).
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
            let mut buf = Payload::zeroed(sz);
            let n = match s.io.read(buf.as_mut_slice()) {
                Ok(n) => n,
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
                    State::HalfcloseRead => return (got, After::Keep),
                    State::HalfcloseWrite => {
                        self.emit(s.owner, SocketEvent::close(s.id));
                        return (ReadOutcome::Closed, After::Close);
                    }
                    _ => {
                        self.close_read(s);
                        self.emit(s.owner, SocketEvent::close(s.id));
                        return (ReadOutcome::Closed, After::Keep);
                    }
                }
            }
            if s.state == State::HalfcloseRead {
                return (got, After::Keep); // discarded
            }
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

    /// A connecting socket became writable or failed (upstream `report_connect`).
    fn report_connect(&mut self, s: &mut Socket) -> After {
        match s.io.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.emit(s.owner, SocketEvent::error(s.id, strerror(&e)));
                return After::Close;
            }
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

    /// Accepts pending connections on a listening socket (upstream `report_accept`).
    fn accept(&mut self, l: &mut Socket, accepted: &mut Vec<Socket>) {
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
                Err(_) => return, // would block, or ignored as upstream
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
            let s = Socket::new(
                id,
                l.owner,
                Io::Stream(Arc::new(stream)),
                protocol::TCP,
                State::PAccept,
            );
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
    fn on_io(&mut self, s: &mut Socket, ev: &PollEvent) -> After {
        // A pause handled earlier in this round (requests come first) already turned reading
        // off, but the readiness it got from the same epoll_wait is still in the batch.
        if ev.read && s.reading {
            let (got, after) = if s.protocol == protocol::TCP {
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

struct Worker<'a> {
    env: Env<'a>,
    sockets: HashMap<i32, Socket>,
    events: Vec<PollEvent>,
}

impl Worker<'_> {
    fn run(&mut self) {
        loop {
            self.events.clear();
            if let Err(e) = self.env.poll.wait(&mut self.events, None) {
                self.env
                    .log(&format!("socket-server error: {}", strerror(&e)));
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            // Control requests first.
            if !self.handle_requests() {
                break;
            }
            let events = std::mem::take(&mut self.events);
            for ev in &events {
                if ev.token != WAKE_TOKEN {
                    self.on_event(ev);
                }
            }
            self.events = events;
            self.env.server.sink.flush();
        }
        for (_, s) in self.sockets.drain() {
            self.env.force_close(s);
        }
    }

    /// Handles every queued request; false on Exit.
    fn handle_requests(&mut self) -> bool {
        loop {
            self.env.server.waker.reset();
            let batch = {
                let mut q = self.env.server.queue.lock();
                q.signaled = false;
                std::mem::take(&mut q.requests)
            };
            if batch.is_empty() {
                return true;
            }
            let mut requests = batch.into_iter();
            for r in requests.by_ref() {
                if !self.request(r) {
                    return false;
                }
            }
        }
    }

    /// Delivers the step's events.
    fn deliver(&mut self) {
        for (owner, ev) in self.env.out.drain(..) {
            self.env.server.sink.deliver(owner, ev);
        }
    }

    /// Runs `f` on the live socket `id` (if any), then closes it if asked, then delivers.
    fn with_socket(&mut self, id: i32, f: impl FnOnce(&mut Env, &mut Socket) -> After) {
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
    fn refresh_direct(&self, id: i32, handled: bool) {
        let idle = self.sockets.get(&id).is_some_and(Socket::direct_idle);
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
        match r {
            Request::Start { id, owner } => {
                self.env.start(self.sockets.get_mut(&id), id, owner);
                self.refresh_direct(id, false);
                self.deliver();
            }
            Request::Pause { id } => self.with_socket(id, |env, s| {
                env.pause(s);
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
            } => {
                let s = self.env.listen(id, owner, listener);
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
            } => {
                let s = self.env.connect(id, owner, &host, port);
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
            State::Connecting => env.report_connect(s),
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

#[cfg(test)]
mod tests;
