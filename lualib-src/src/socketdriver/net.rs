//! The socket-server half of `skynet.socketdriver`: connect, listen, send,
//! UDP, ... over [`SocketServer`], as master's lua-socket does. Every function but `info` gets
//! the service's context (a light userdata) as upvalue 1; the socket's events go to that
//! service.
//!
//! Each function first reads and checks its arguments (raising upstream's errors while no Rust
//! value with a destructor is alive), then talks to the socket server, then pushes plain
//! results.
//!
//! # Send data (`send`, `lsend`, `udp_send`)
//! - string (or number) ⇒ copied if it cannot be written at once (`SOCKET_BUFFER_RAWPOINTER`);
//! - light userdata + size ⇒ a `malloc` block whose ownership passes to the socket layer, which
//!   frees it whatever happens (`SOCKET_BUFFER_MEMORY`);
//! - full userdata [+ size] ⇒ its bytes, copied if needed;
//! - table of strings ⇒ their concatenation.
//!
//! # Differences from upstream (none on well-formed use)
//! - A light userdata without a size or with a negative one is `SOCKET_BUFFER_OBJECT` upstream,
//!   which crashes the node (skynet registers no object interface): here it is logged and the
//!   send returns false; the block is left to the caller.
//! - A full userdata with a size beyond its length (or a negative one) raises
//!   "socketdriver: invalid size %d for a userdata of %d bytes" instead of reading past it.
//! - A table is concatenated in one pass (upstream counts, then copies, and raises
//!   "Invalid strings table" if the table changed in between, which cannot happen here).
//! - `bind` wraps a duplicate of the descriptor (closing the socket never closes the caller's
//!   descriptor, as upstream) and returns -1 for a descriptor that is not open.
//! - Without a socket server (not possible in a running node) every request fails.

use super::{address_port, fail, ip_text};
use crate::lua::lua_function;
use crate::lua::{ffi, raise_where, to_bytes, CFunction};
use ffi::lua_State;
use skynet_core::socket_server::{info_type, SendData, SocketInfo, SocketServer};
use skynet_core::{try_node, Context, Payload};
use std::ffi::{c_char, c_int, CStr};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd};

/// `listen`'s default backlog.
const BACKLOG: ffi::lua_Integer = 32;

fn server() -> Option<&'static SocketServer> {
    try_node()?.socket()
}

fn log(text: String) {
    if let Some(n) = try_node() {
        n.log(0, text);
    }
}

/// The calling service's handle, from the context in upvalue 1.
///
/// # Safety
/// Called from a function registered with the context upvalue on a live service's VM.
unsafe fn owner(l: *mut lua_State) -> u32 {
    // SAFETY: upvalue 1 is the service's context pointer; the VM dies before the context.
    unsafe {
        let ctx = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)).cast::<Context>();
        ctx.as_ref().map_or(0, Context::handle)
    }
}

/// `luaL_checkinteger` narrowed like C's `(int)` cast.
///
/// # Safety
/// `l` is the running state; raises on a non-integer.
unsafe fn check_int(l: *mut lua_State, idx: c_int) -> c_int {
    // SAFETY: caller contract.
    unsafe { ffi::luaL_checkinteger(l, idx) as c_int }
}

/// `luaL_checklstring` as a slice (valid while the value stays on the stack).
///
/// # Safety
/// `l` is the running state; raises on a non-string.
unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0;
    // SAFETY: caller contract; Lua guarantees `len` bytes while the value is on the stack.
    unsafe {
        let p = ffi::luaL_checklstring(l, idx, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// Host and port as master's `address_port` gives them: with the port argument at `port_idx`
/// absent or nil, `addr` is "host:port" or "[v6]:port"; otherwise `addr` is the host and the
/// argument the port. Raises "Invalid address %s." / "Invalid port in address %s.".
///
/// # Safety
/// `l` is the running state; `addr` lives on its stack; nothing with a destructor is alive in
/// the caller.
unsafe fn host_port(l: *mut lua_State, addr: &[u8], port_idx: c_int) -> (&[u8], c_int) {
    // SAFETY: caller contract; the error text is freed by raise_where before the jump.
    unsafe {
        let port = if ffi::lua_isnoneornil(l, port_idx) != 0 {
            None
        } else {
            Some(ffi::luaL_checkinteger(l, port_idx))
        };
        match address_port(addr, port) {
            Ok((host, port)) => (host, port as c_int),
            Err(e) => raise_where(l, e.message(addr)),
        }
    }
}

/// A host as the C code sees it: the bytes up to the first NUL.
fn host_text(host: &[u8]) -> String {
    let host = host.split(|&b| b == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(host).into_owned()
}

/// `connect(addr, [port])` → id (-1 on failure). Port 0 raises "Invalid port".
#[lua_function]
unsafe extern "C-unwind" fn lconnect(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (owner, host, port) = unsafe {
        let addr = check_bytes(l, 1);
        let (host, port) = host_port(l, addr, 2);
        if port == 0 {
            fail(l, c"Invalid port");
        }
        (owner(l), host, port)
    };
    let host = host_text(host);
    let id = server().map_or(-1, |s| s.connect(owner, &host, port));
    drop(host);
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// `close(id)`: graceful close.
#[lua_function]
unsafe extern "C-unwind" fn lclose(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let id = unsafe { check_int(l, 1) };
    if let Some(s) = server() {
        s.close(id);
    }
    0
}

/// `shutdown(id)`: immediate close, pending data discarded.
#[lua_function]
unsafe extern "C-unwind" fn lshutdown(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let id = unsafe { check_int(l, 1) };
    if let Some(s) = server() {
        s.shutdown(id);
    }
    0
}

/// `listen(addr, [port], [backlog = 32])` → id; raises "Listen error". Port 0 picks a free
/// port, which the CONNECT event reports (ud).
#[lua_function]
unsafe extern "C-unwind" fn llisten(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (owner, host, port, backlog) = unsafe {
        let addr = check_bytes(l, 1);
        let (host, port) = host_port(l, addr, 2);
        let backlog = ffi::luaL_optinteger(l, 3, BACKLOG) as c_int;
        (owner(l), host, port, backlog)
    };
    let host = host_text(host);
    let id = server().map_or(-1, |s| s.listen(owner, Some(&host), port, backlog));
    drop(host);
    if id < 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"Listen error") };
    }
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// The data argument at `idx` of a send, as lua-socket's `get_buffer` reads it.
enum Data<'a> {
    /// Bytes that stay on the Lua stack during the call.
    Bytes(&'a [u8]),
    /// A block given up by Lua: pointer and size.
    Memory(*mut u8, usize),
    /// A light userdata without a (non-negative) size: upstream's unusable OBJECT buffer.
    Object,
}

/// Reads the data argument at `idx` (an absolute index). A table is concatenated into a new
/// string pushed on the stack (which must then stay as it is until the data is sent).
///
/// # Safety
/// `l` is the running state; nothing with a destructor is alive in the caller (this raises
/// upstream's argument errors).
unsafe fn data_arg<'a>(l: *mut lua_State, idx: c_int) -> Data<'a> {
    // SAFETY: caller contract; the slices point into values on the stack.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TUSERDATA => {
                let p = ffi::lua_touserdata(l, idx).cast::<u8>();
                let len = ffi::lua_rawlen(l, idx);
                let sz = if ffi::lua_isinteger(l, idx + 1) != 0 {
                    let sz = ffi::lua_tointegerx(l, idx + 1, std::ptr::null_mut());
                    match usize::try_from(sz) {
                        Ok(sz) if sz <= len => sz,
                        _ => raise_where(
                            l,
                            format!(
                                "socketdriver: invalid size {sz} for a userdata of {len} bytes"
                            ),
                        ),
                    }
                } else {
                    len
                };
                Data::Bytes(std::slice::from_raw_parts(p, sz))
            }
            ffi::LUA_TLIGHTUSERDATA => {
                let mut sz: c_int = -1;
                if ffi::lua_isinteger(l, idx + 1) != 0 {
                    sz = ffi::lua_tointegerx(l, idx + 1, std::ptr::null_mut()) as c_int;
                }
                let p = ffi::lua_touserdata(l, idx).cast::<u8>();
                match usize::try_from(sz) {
                    Ok(sz) => Data::Memory(p, sz),
                    Err(_) => Data::Object,
                }
            }
            ffi::LUA_TTABLE => {
                let mut b = MaybeUninit::<ffi::luaL_Buffer>::uninit();
                ffi::luaL_buffinit(l, b.as_mut_ptr());
                let mut i = 1;
                while ffi::lua_geti(l, idx, i) != ffi::LUA_TNIL {
                    let mut len = 0;
                    ffi::luaL_checklstring(l, -1, &mut len);
                    ffi::luaL_addvalue(b.as_mut_ptr());
                    i += 1;
                }
                ffi::lua_pop(l, 1);
                ffi::luaL_pushresult(b.as_mut_ptr());
                Data::Bytes(to_bytes(l, -1).unwrap_or_default())
            }
            _ => Data::Bytes(check_bytes(l, idx)),
        }
    }
}

/// Turns the data into what the socket server takes; `None` (a MEMORY block released, an
/// OBJECT logged) when it cannot be sent.
///
/// # Safety
/// A `Memory` block is a live `malloc` block of at least its size that Lua gave up.
unsafe fn send_data(id: c_int, data: Data<'_>) -> Option<SendData<'_>> {
    match data {
        Data::Bytes(b) => Some(SendData::Borrowed(b)),
        Data::Memory(p, sz) => {
            // SAFETY: caller contract: ownership of the block passes here.
            let p = unsafe { Payload::from_raw(p, sz) };
            (!p.is_null() || sz == 0).then_some(SendData::Owned(p))
        }
        Data::Object => {
            log(format!(
                "socketdriver: socket {id}: a light userdata needs its size (upstream's \
                 SOCKET_BUFFER_OBJECT, which skynet cannot send); not sent"
            ));
            None
        }
    }
}

/// `send`/`lsend(id, data, [size])` → true if queued or sent.
///
/// # Safety
/// `l` is the running state.
unsafe fn send(l: *mut lua_State, low: bool) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (id, data) = unsafe {
        let id = check_int(l, 1);
        (id, data_arg(l, 2))
    };
    // SAFETY: a light userdata with a size is a block Lua gives up (lua-socket's contract).
    let ok = match unsafe { send_data(id, data) } {
        Some(data) => server().is_some_and(|s| {
            if low {
                s.send_lowpriority(id, data) == 0
            } else {
                s.send(id, data) == 0
            }
        }),
        None => false,
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushboolean(l, c_int::from(ok)) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lsend(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe { send(l, false) }
}

#[lua_function]
unsafe extern "C-unwind" fn lsendlow(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe { send(l, true) }
}

/// `bind(fd)` → id: the descriptor as a readable socket (CONNECT "binding" follows).
#[lua_function]
unsafe extern "C-unwind" fn lbind(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let (owner, fd) = unsafe { (owner(l), check_int(l, 1)) };
    // SAFETY: fcntl only reads the descriptor number; one that is not open fails with EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    let id = match server() {
        Some(s) if dup >= 0 => {
            // SAFETY: `dup` is a new descriptor nobody else owns.
            s.bind(owner, unsafe { OwnedFd::from_raw_fd(dup) })
        }
        _ => {
            if dup >= 0 {
                // SAFETY: our own duplicate, not used afterwards.
                unsafe { libc::close(dup) };
            }
            -1
        }
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// `start(id)`: starts (or resumes) reading; the caller becomes the owner.
#[lua_function]
unsafe extern "C-unwind" fn lstart(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let (owner, id) = unsafe { (owner(l), check_int(l, 1)) };
    if let Some(s) = server() {
        s.start(owner, id);
    }
    0
}

/// `pause(id)`: stops reading.
#[lua_function]
unsafe extern "C-unwind" fn lpause(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let id = unsafe { check_int(l, 1) };
    if let Some(s) = server() {
        s.pause(id);
    }
    0
}

/// `nodelay(id)`: TCP_NODELAY.
#[lua_function]
unsafe extern "C-unwind" fn lnodelay(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let id = unsafe { check_int(l, 1) };
    if let Some(s) = server() {
        s.nodelay(id);
    }
    0
}

/// `udp([addr], [port])` → id; raises "udp init failed". Bound when an address is given.
#[lua_function]
unsafe extern "C-unwind" fn ludp(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (owner, host, port) = unsafe {
        let (host, port) = match to_bytes(l, 1) {
            Some(addr) => {
                let (h, p) = host_port(l, addr, 2);
                (Some(h), p)
            }
            None => (None, 0),
        };
        (owner(l), host, port)
    };
    let host = host.map(host_text);
    let id = server().map_or(-1, |s| s.udp(owner, host.as_deref(), port));
    drop(host);
    if id < 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"udp init failed") };
    }
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// `udp_connect(id, addr, [port])`: sets the default peer; raises "udp connect failed".
#[lua_function]
unsafe extern "C-unwind" fn ludp_connect(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (id, host, port) = unsafe {
        let id = check_int(l, 1);
        let addr = check_bytes(l, 2);
        let (host, port) = host_port(l, addr, 3);
        (id, host, port)
    };
    let host = host_text(host);
    let r = server().map_or(-1, |s| s.udp_connect(id, &host, port));
    drop(host);
    if r != 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"udp connect failed") };
    }
    0
}

/// `udp_dial(addr, [port])` → id of a new UDP socket with that default peer; raises
/// "udp dial host failed".
#[lua_function]
unsafe extern "C-unwind" fn ludp_dial(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (owner, host, port) = unsafe {
        let addr = check_bytes(l, 1);
        let (host, port) = host_port(l, addr, 2);
        (owner(l), host, port)
    };
    let host = host_text(host);
    let id = server().map_or(-1, |s| s.udp_dial(owner, &host, port));
    drop(host);
    if id < 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"udp dial host failed") };
    }
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// `udp_listen(addr, [port])` → id of a UDP socket bound there (port not 0); raises
/// "udp listen host failed".
#[lua_function]
unsafe extern "C-unwind" fn ludp_listen(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (owner, host, port) = unsafe {
        let addr = check_bytes(l, 1);
        let (host, port) = host_port(l, addr, 2);
        (owner(l), host, port)
    };
    let host = host_text(host);
    let id = server().map_or(-1, |s| s.udp_listen(owner, Some(&host), port));
    drop(host);
    if id < 0 {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"udp listen host failed") };
    }
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, id.into()) };
    1
}

/// `udp_send(id, address, data, [size])` → true if queued. `address` is a 7/19-byte record
/// (a UDP event's fifth value).
#[lua_function]
unsafe extern "C-unwind" fn ludp_send(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raise happens before anything is owned.
    let (id, address, data) = unsafe {
        let id = check_int(l, 1);
        let address = check_bytes(l, 2);
        (id, address, data_arg(l, 3))
    };
    // SAFETY: a light userdata with a size is a block Lua gives up (lua-socket's contract).
    let ok = match unsafe { send_data(id, data) } {
        Some(data) => server().is_some_and(|s| s.udp_send(id, address, data) == 0),
        None => false,
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushboolean(l, c_int::from(ok)) };
    1
}

/// Every address `getaddrinfo(host, NULL)` gives with zeroed hints (so each address once per
/// socket type, as upstream), or its error text.
fn getaddrinfo(host: &[u8]) -> Result<Vec<IpAddr>, &'static CStr> {
    let mut name = host.split(|&b| b == 0).next().unwrap_or(&[]).to_vec();
    name.push(0);
    // SAFETY: all-zero hints are valid (no flags, any family and type).
    let hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name, valid hints and out pointer.
    let status =
        unsafe { libc::getaddrinfo(name.as_ptr().cast(), std::ptr::null(), &hints, &mut list) };
    if status != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        return Err(unsafe { CStr::from_ptr(libc::gai_strerror(status)) });
    }
    let mut out = Vec::new();
    let mut p = list;
    // SAFETY: walks the list getaddrinfo returned; each ai_addr is a sockaddr of ai_family.
    unsafe {
        while let Some(ai) = p.as_ref() {
            match ai.ai_family {
                libc::AF_INET if !ai.ai_addr.is_null() => {
                    let sa = &*ai.ai_addr.cast::<libc::sockaddr_in>();
                    out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                }
                libc::AF_INET6 if !ai.ai_addr.is_null() => {
                    let sa = &*ai.ai_addr.cast::<libc::sockaddr_in6>();
                    out.push(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                }
                _ => {}
            }
            p = ai.ai_next;
        }
        libc::freeaddrinfo(list);
    }
    Ok(out)
}

/// `resolve(host)` → array of IP strings; raises the resolver's error text.
#[lua_function]
unsafe extern "C-unwind" fn lresolve(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let host = unsafe { check_bytes(l, 1) };
    let texts = match getaddrinfo(host) {
        Ok(ips) => ManuallyDrop::new(ips.into_iter().map(ip_text).collect::<Vec<String>>()),
        // SAFETY: nothing with a destructor is alive; the text is static.
        Err(e) => unsafe {
            ffi::luaL_error(l, c"%s".as_ptr(), e.as_ptr());
            unreachable!("luaL_error returned")
        },
    };
    // SAFETY: valid state; if a push raises (out of memory), the texts only leak.
    unsafe {
        ffi::lua_createtable(l, texts.len() as c_int, 0);
        for (i, t) in texts.iter().enumerate() {
            ffi::lua_pushlstring(l, t.as_ptr().cast::<c_char>(), t.len());
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
    }
    drop(ManuallyDrop::into_inner(texts));
    1
}

/// Sets `t[name] = v` for the table on top.
///
/// # Safety
/// `l` is valid with a table on top.
unsafe fn set_int(l: *mut lua_State, name: &CStr, v: ffi::lua_Integer) {
    // SAFETY: caller contract.
    unsafe {
        ffi::lua_pushinteger(l, v);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
}

/// Sets `t[name] = s` for the table on top.
///
/// # Safety
/// `l` is valid with a table on top.
unsafe fn set_str(l: *mut lua_State, name: &CStr, s: &[u8]) {
    // SAFETY: caller contract.
    unsafe {
        ffi::lua_pushlstring(l, s.as_ptr().cast::<c_char>(), s.len());
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
}

/// Pushes the table `info()` gives for one socket (lua-socket's `getinfo`).
///
/// # Safety
/// `l` is valid.
unsafe fn push_info(l: *mut lua_State, si: &SocketInfo) {
    let kind: &CStr = match si.kind {
        info_type::LISTEN => c"LISTEN",
        info_type::TCP => c"TCP",
        info_type::UDP => c"UDP",
        info_type::BIND => c"BIND",
        info_type::CLOSING => c"CLOSING",
        _ => c"UNKNOWN",
    };
    // SAFETY: caller contract; the counters are reinterpreted as Lua integers as C does.
    unsafe {
        ffi::lua_createtable(l, 0, 12);
        set_int(l, c"id", si.id.into());
        set_int(l, c"address", si.opaque as ffi::lua_Integer);
        set_str(l, c"type", kind.to_bytes());
        match si.kind {
            info_type::LISTEN => {
                set_int(l, c"accept", si.read as ffi::lua_Integer);
                set_int(l, c"rtime", si.rtime as ffi::lua_Integer);
                if !si.name.is_empty() {
                    set_str(l, c"sock", si.name.as_bytes());
                }
            }
            info_type::TCP | info_type::UDP | info_type::BIND | info_type::CLOSING => {
                set_int(l, c"read", si.read as ffi::lua_Integer);
                set_int(l, c"write", si.write as ffi::lua_Integer);
                set_int(l, c"wbuffer", si.wbuffer);
                set_int(l, c"rtime", si.rtime as ffi::lua_Integer);
                set_int(l, c"wtime", si.wtime as ffi::lua_Integer);
                ffi::lua_pushboolean(l, c_int::from(si.reading));
                ffi::lua_setfield(l, -2, c"reading".as_ptr());
                ffi::lua_pushboolean(l, c_int::from(si.writing));
                ffi::lua_setfield(l, -2, c"writing".as_ptr());
                if !si.name.is_empty() {
                    set_str(l, c"peer", si.name.as_bytes());
                }
            }
            _ => {}
        }
    }
}

/// `info()` → an array with one table per live socket: id, address (owner), type ("LISTEN",
/// "TCP", "UDP", "BIND", "CLOSING", "UNKNOWN"), then accept, rtime, sock (LISTEN) or read,
/// write, wbuffer, rtime, wtime, reading, writing, peer (the others).
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn linfo(l: *mut lua_State) -> c_int {
    let infos = ManuallyDrop::new(server().map(SocketServer::info).unwrap_or_default());
    // SAFETY: valid state; if a push raises (out of memory), the list only leaks.
    unsafe {
        ffi::lua_createtable(l, infos.len() as c_int, 0);
        for (i, si) in infos.iter().enumerate() {
            push_info(l, si);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
    }
    drop(ManuallyDrop::into_inner(infos));
    1
}

/// The functions bound to the service's context (upvalue 1), besides `udp_address`.
pub const FUNCTIONS: [(&CStr, CFunction); 16] = [
    (c"connect", lconnect),
    (c"close", lclose),
    (c"shutdown", lshutdown),
    (c"listen", llisten),
    (c"send", lsend),
    (c"lsend", lsendlow),
    (c"bind", lbind),
    (c"start", lstart),
    (c"pause", lpause),
    (c"nodelay", lnodelay),
    (c"udp", ludp),
    (c"udp_connect", ludp_connect),
    (c"udp_dial", ludp_dial),
    (c"udp_listen", ludp_listen),
    (c"udp_send", ludp_send),
    (c"resolve", lresolve),
];
