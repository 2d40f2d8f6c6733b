//! `skynet_socket.h` (with upstream's `socket_buffer.h` and `socket_info.h` in the same
//! header): the socket API of C services and Lua C modules.
//!
//! `ctx` only names the calling service: every event of a socket goes to the service that
//! created or last started it.

use super::skynet::skynet_context;
use super::{context, cstr, guard};
use skynet_core::socket_server::{self as ss, SendData, SocketInfo, SocketServer};
use skynet_core::{try_node, Context, Payload};
use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;

/// Event type: data read (`buffer` = malloc'd bytes, `ud` = size; the receiver frees it).
pub const SKYNET_SOCKET_TYPE_DATA: c_int = 1;
/// Event type: connected / listening / started (inline text; `ud` = port for a listen).
pub const SKYNET_SOCKET_TYPE_CONNECT: c_int = 2;
/// Event type: closed (by the peer or by close).
pub const SKYNET_SOCKET_TYPE_CLOSE: c_int = 3;
/// Event type: a connection accepted on listen socket `id`; `ud` = the new id, text = peer.
pub const SKYNET_SOCKET_TYPE_ACCEPT: c_int = 4;
/// Event type: an error (inline text).
pub const SKYNET_SOCKET_TYPE_ERROR: c_int = 5;
/// Event type: a datagram (`buffer` = data then the sender's address, `ud` = data size).
pub const SKYNET_SOCKET_TYPE_UDP: c_int = 6;
/// Event type: pending send bytes in KiB (`ud`), or 0 once drained.
pub const SKYNET_SOCKET_TYPE_WARNING: c_int = 7;

/// Send buffer: a malloc'd block whose ownership passes to the socket layer.
pub const SOCKET_BUFFER_MEMORY: c_int = 0;
/// Send buffer: a user object (no object interface is registered: refused).
pub const SOCKET_BUFFER_OBJECT: c_int = 1;
/// Send buffer: bytes the caller keeps (copied).
pub const SOCKET_BUFFER_RAWPOINTER: c_int = 2;

/// `socket_info.type`: unknown.
pub const SOCKET_INFO_UNKNOWN: c_int = 0;
/// `socket_info.type`: listening.
pub const SOCKET_INFO_LISTEN: c_int = 1;
/// `socket_info.type`: TCP connection.
pub const SOCKET_INFO_TCP: c_int = 2;
/// `socket_info.type`: UDP socket.
pub const SOCKET_INFO_UDP: c_int = 3;
/// `socket_info.type`: a bound descriptor.
pub const SOCKET_INFO_BIND: c_int = 4;
/// `socket_info.type`: a half-closed TCP connection.
pub const SOCKET_INFO_CLOSING: c_int = 5;

/// The payload of a PTYPE_SOCKET message; inline text (CONNECT, ERROR, ACCEPT) follows it.
#[repr(C)]
pub struct skynet_socket_message {
    pub r#type: c_int,
    pub id: c_int,
    pub ud: c_int,
    pub buffer: *mut c_char,
}

/// What to send, and how its memory is owned (`SOCKET_BUFFER_*`).
#[repr(C)]
pub struct socket_sendbuffer {
    pub id: c_int,
    pub r#type: c_int,
    pub buffer: *const c_void,
    pub sz: usize,
}

/// One entry of the `skynet_socket_info` list (free it with `socket_info_release`).
#[repr(C)]
pub struct socket_info {
    pub id: c_int,
    pub r#type: c_int,
    pub opaque: u64,
    pub read: u64,
    pub write: u64,
    pub rtime: u64,
    pub wtime: u64,
    pub wbuffer: i64,
    pub reading: u8,
    pub writing: u8,
    pub name: [c_char; 128],
    pub next: *mut socket_info,
}

fn server() -> Option<&'static SocketServer> {
    try_node()?.socket()
}

/// The calling service's handle (0 for a NULL context).
///
/// # Safety
/// `ctx` NULL or a live service's context.
unsafe fn owner(ctx: *mut skynet_context) -> u32 {
    // SAFETY: per the contract above.
    unsafe { context(ctx) }.map_or(0, Context::handle)
}

fn log(text: &str) {
    if let Some(n) = try_node() {
        n.log(0, text);
    }
}

/// The bytes of a send buffer, taking over MEMORY blocks; `None` (MEMORY released) for
/// buffers that cannot be sent.
///
/// # Safety
/// `buf` is NULL or a valid `socket_sendbuffer` whose `buffer` holds `sz` bytes (MEMORY: a
/// libc block given up).
unsafe fn send_data<'a>(buf: *const socket_sendbuffer) -> Option<(c_int, SendData<'a>)> {
    // SAFETY: per the contract above.
    let b = unsafe { buf.as_ref() }?;
    match b.r#type {
        SOCKET_BUFFER_MEMORY => {
            // SAFETY: MEMORY gives up a libc block of `sz` bytes (or NULL).
            let p = unsafe { Payload::from_raw(b.buffer as *mut u8, b.sz) };
            if p.is_null() && b.sz != 0 {
                return None;
            }
            Some((b.id, SendData::Owned(p)))
        }
        SOCKET_BUFFER_RAWPOINTER => {
            if b.buffer.is_null() {
                return (b.sz == 0).then_some((b.id, SendData::Borrowed(&[])));
            }
            // SAFETY: the caller's `sz` readable bytes, valid for this call.
            let bytes = unsafe { std::slice::from_raw_parts(b.buffer as *const u8, b.sz) };
            Some((b.id, SendData::Borrowed(bytes)))
        }
        SOCKET_BUFFER_OBJECT => {
            log(&format!(
                "socket-server error: socket {}: SOCKET_BUFFER_OBJECT needs an object \
                 interface, which skynet never registers; not sent",
                b.id
            ));
            None
        }
        t => {
            log(&format!(
                "socket-server error: socket {}: unknown send buffer type {t}; not sent",
                b.id
            ));
            None
        }
    }
}

/// High-priority send: 0, or -1 if the id is invalid or closing (MEMORY is always taken).
///
/// A MEMORY buffer belongs to the socket layer in every outcome; RAWPOINTER bytes are copied.
///
/// # Safety
/// `buffer` a valid `socket_sendbuffer` (see `SOCKET_BUFFER_*` for ownership).
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_sendbuffer(
    ctx: *mut skynet_context,
    buffer: *mut socket_sendbuffer,
) -> c_int {
    let _ = ctx;
    guard("skynet_socket_sendbuffer", -1, || {
        // SAFETY: per the contract above.
        let Some((id, data)) = (unsafe { send_data(buffer) }) else {
            return -1;
        };
        server().map_or(-1, |s| s.send(id, data))
    })
}

/// Low-priority send (after every high-priority buffer): 0, or -1 for an invalid id.
///
/// # Safety
/// As `skynet_socket_sendbuffer`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_sendbuffer_lowpriority(
    ctx: *mut skynet_context,
    buffer: *mut socket_sendbuffer,
) -> c_int {
    let _ = ctx;
    guard("skynet_socket_sendbuffer_lowpriority", -1, || {
        // SAFETY: per the contract above.
        let Some((id, data)) = (unsafe { send_data(buffer) }) else {
            return -1;
        };
        server().map_or(-1, |s| s.send_lowpriority(id, data))
    })
}

/// Listens on `host:port` (NULL or "" = 0.0.0.0; port 0 = any): the id, or -1.
///
/// The caller gets CONNECT with the bound address and `ud` = the port; `skynet_socket_start`
/// starts accepting.
///
/// # Safety
/// `ctx` NULL or live; `host` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_listen(
    ctx: *mut skynet_context,
    host: *const c_char,
    port: c_int,
    backlog: c_int,
) -> c_int {
    guard("skynet_socket_listen", -1, || {
        // SAFETY: per the contract above.
        let (owner, host) = unsafe { (owner(ctx), cstr(host)) };
        server().map_or(-1, |s| s.listen(owner, host.as_deref(), port, backlog))
    })
}

/// Asynchronous connect: the id at once (CONNECT or ERROR follows), or -1.
///
/// -1 if the host name is too long or no socket slot is free.
///
/// # Safety
/// `ctx` NULL or live; `host` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_connect(
    ctx: *mut skynet_context,
    host: *const c_char,
    port: c_int,
) -> c_int {
    guard("skynet_socket_connect", -1, || {
        // SAFETY: per the contract above.
        let (owner, host) = unsafe { (owner(ctx), cstr(host)) };
        let (Some(s), Some(host)) = (server(), host) else {
            return -1;
        };
        s.connect(owner, &host, port)
    })
}

/// Wraps an open descriptor (e.g. 0 = stdin) as a readable socket: the id, or -1.
///
/// CONNECT "binding" follows. Closing the socket never closes `fd`.
///
/// # Safety
/// `ctx` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_bind(ctx: *mut skynet_context, fd: c_int) -> c_int {
    guard("skynet_socket_bind", -1, || {
        // SAFETY: per the contract above.
        let owner = unsafe { owner(ctx) };
        let Some(s) = server() else { return -1 };
        // SAFETY: fcntl only reads the descriptor number; an invalid one fails with EBADF.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return -1;
        }
        // SAFETY: `dup` is a new descriptor nobody else owns.
        s.bind(owner, unsafe { OwnedFd::from_raw_fd(dup) })
    })
}

/// Graceful close: pending data is sent first; CLOSE is raised once.
///
/// # Safety
/// `ctx` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_close(ctx: *mut skynet_context, id: c_int) {
    let _ = ctx;
    guard("skynet_socket_close", (), || {
        if let Some(s) = server() {
            s.close(id);
        }
    })
}

/// Immediate close: pending data is discarded.
///
/// # Safety
/// `ctx` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_shutdown(ctx: *mut skynet_context, id: c_int) {
    let _ = ctx;
    guard("skynet_socket_shutdown", (), || {
        if let Some(s) = server() {
            s.shutdown(id);
        }
    })
}

/// Starts (or resumes) reading and makes the caller the socket's owner.
///
/// # Safety
/// `ctx` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_start(ctx: *mut skynet_context, id: c_int) {
    guard("skynet_socket_start", (), || {
        // SAFETY: per the contract above.
        let owner = unsafe { owner(ctx) };
        if let Some(s) = server() {
            s.start(owner, id);
        }
    })
}

/// Stops reading until the next `skynet_socket_start`.
///
/// # Safety
/// `ctx` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_pause(ctx: *mut skynet_context, id: c_int) {
    let _ = ctx;
    guard("skynet_socket_pause", (), || {
        if let Some(s) = server() {
            s.pause(id);
        }
    })
}

/// Sets TCP_NODELAY.
///
/// # Safety
/// `ctx` unused.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_nodelay(ctx: *mut skynet_context, id: c_int) {
    let _ = ctx;
    guard("skynet_socket_nodelay", (), || {
        if let Some(s) = server() {
            s.nodelay(id);
        }
    })
}

/// A new UDP socket, bound when `addr` or `port` is given: the id, or -1.
///
/// # Safety
/// `ctx` NULL or live; `addr` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp(
    ctx: *mut skynet_context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard("skynet_socket_udp", -1, || {
        // SAFETY: per the contract above.
        let (owner, addr) = unsafe { (owner(ctx), cstr(addr)) };
        server().map_or(-1, |s| s.udp(owner, addr.as_deref(), port))
    })
}

/// Sets the default peer of a UDP socket: 0, or -1.
///
/// # Safety
/// `addr` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_connect(
    ctx: *mut skynet_context,
    id: c_int,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    let _ = ctx;
    guard("skynet_socket_udp_connect", -1, || {
        // SAFETY: per the contract above.
        let (Some(s), Some(addr)) = (server(), unsafe { cstr(addr) }) else {
            return -1;
        };
        s.udp_connect(id, &addr, port)
    })
}

/// A new UDP socket whose default peer is `addr:port`: the id, or -1.
///
/// # Safety
/// `ctx` NULL or live; `addr` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_dial(
    ctx: *mut skynet_context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard("skynet_socket_udp_dial", -1, || {
        // SAFETY: per the contract above.
        let (owner, addr) = unsafe { (owner(ctx), cstr(addr)) };
        let (Some(s), Some(addr)) = (server(), addr) else {
            return -1;
        };
        s.udp_dial(owner, &addr, port)
    })
}

/// A new UDP socket bound to `addr:port` (port must not be 0): the id, or -1.
///
/// # Safety
/// `ctx` NULL or live; `addr` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_listen(
    ctx: *mut skynet_context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard("skynet_socket_udp_listen", -1, || {
        // SAFETY: per the contract above.
        let (owner, addr) = unsafe { (owner(ctx), cstr(addr)) };
        server().map_or(-1, |s| s.udp_listen(owner, addr.as_deref(), port))
    })
}

/// Sends a datagram to an encoded address (7 or 19 bytes): 0, or -1.
///
/// -1 for an invalid id or address; a MEMORY buffer is taken in every outcome.
///
/// # Safety
/// `address` NULL or an encoded UDP address; `buffer` as for `skynet_socket_sendbuffer`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_sendbuffer(
    ctx: *mut skynet_context,
    address: *const c_char,
    buffer: *mut socket_sendbuffer,
) -> c_int {
    let _ = ctx;
    guard("skynet_socket_udp_sendbuffer", -1, || {
        // SAFETY: per the contract above.
        let Some((id, data)) = (unsafe { send_data(buffer) }) else {
            return -1;
        };
        if address.is_null() {
            return -1;
        }
        // SAFETY: a non-NULL address has at least its protocol byte.
        let first = unsafe { *(address as *const u8) };
        let Some(size) = ss::udp_address_size(first) else {
            return -1;
        };
        // SAFETY: an encoded address of this protocol has `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, size) };
        server().map_or(-1, |s| s.udp_send(id, bytes, data))
    })
}

/// The sender's encoded address in a UDP event and its size (7 or 19), or NULL.
///
/// NULL if the message is not a UDP event.
///
/// # Safety
/// `msg` NULL or a socket message as delivered; `addrsz` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_address(
    msg: *mut skynet_socket_message,
    addrsz: *mut c_int,
) -> *const c_char {
    guard("skynet_socket_udp_address", ptr::null(), || {
        // SAFETY: per the contract above.
        let Some(m) = (unsafe { msg.as_ref() }) else {
            return ptr::null();
        };
        if m.r#type != SKYNET_SOCKET_TYPE_UDP || m.buffer.is_null() || m.ud < 0 {
            return ptr::null();
        }
        // SAFETY: a UDP event's buffer holds `ud` data bytes followed by the address.
        let address = unsafe { m.buffer.add(m.ud as usize) };
        // SAFETY: as above, at least the protocol byte follows the data.
        let Some(size) = ss::udp_address_size(unsafe { *(address as *const u8) }) else {
            return ptr::null();
        };
        if !addrsz.is_null() {
            // SAFETY: per the contract above.
            unsafe { *addrsz = size as c_int };
        }
        address as *const c_char
    })
}

/// A new zeroed `socket_info` (malloc'd) in front of `last`.
///
/// # Safety
/// `last` NULL or a list from this API.
#[no_mangle]
pub unsafe extern "C" fn socket_info_create(last: *mut socket_info) -> *mut socket_info {
    // SAFETY: calloc of one zeroed struct (an all-zero socket_info is valid: NULL next).
    let si = unsafe { libc::calloc(1, std::mem::size_of::<socket_info>()) } as *mut socket_info;
    if !si.is_null() {
        // SAFETY: `si` is a fresh, writable socket_info.
        unsafe { (*si).next = last };
    }
    si
}

/// Frees a list from `skynet_socket_info`.
///
/// # Safety
/// `si` NULL or a list from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn socket_info_release(si: *mut socket_info) {
    let mut p = si;
    while !p.is_null() {
        // SAFETY: each node is a live malloc'd socket_info of the list.
        let next = unsafe { (*p).next };
        // SAFETY: as above; freed once.
        unsafe { libc::free(p as *mut c_void) };
        p = next;
    }
}

fn fill(si: &mut socket_info, info: &SocketInfo) {
    si.id = info.id;
    si.r#type = info.kind;
    si.opaque = info.opaque;
    si.read = info.read;
    si.write = info.write;
    si.rtime = info.rtime;
    si.wtime = info.wtime;
    si.wbuffer = info.wbuffer;
    si.reading = u8::from(info.reading);
    si.writing = u8::from(info.writing);
    let name = info.name.as_bytes();
    let n = name.len().min(si.name.len() - 1);
    for (d, s) in si.name.iter_mut().zip(&name[..n]) {
        *d = *s as c_char;
    }
    si.name[n] = 0;
}

/// Every live socket as a malloc'd list (NULL if none); free it with `socket_info_release`.
#[no_mangle]
pub extern "C" fn skynet_socket_info() -> *mut socket_info {
    guard("skynet_socket_info", ptr::null_mut(), || {
        let Some(s) = server() else {
            return ptr::null_mut();
        };
        let mut head: *mut socket_info = ptr::null_mut();
        for info in s.info().iter().rev() {
            // SAFETY: `head` is NULL or the list built so far.
            let si = unsafe { socket_info_create(head) };
            // SAFETY: a fresh zeroed socket_info, exclusively ours.
            let Some(node) = (unsafe { si.as_mut() }) else {
                break;
            };
            fill(node, info);
            head = si;
        }
        head
    })
}
