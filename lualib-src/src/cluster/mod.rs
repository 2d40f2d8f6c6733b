//! `skynet.cluster.core` (upstream lualib-src/lua-cluster.c): the packets that clusterd,
//! clustersender and clusteragent exchange between nodes. The format lives in [`codec`]; this
//! file is the Lua glue.
//!
//! `packrequest(addr, session, msg, sz)` / `packpush(...)` → first packet, next session
//! [, table of part packets] (frees `msg`); `packtrace(tag)` → packet;
//! `unpackrequest(str | msg, sz)` → what the packet holds (see the functions);
//! `packresponse(session, ok, str | msg, sz)` → packet or table of packets (does not free);
//! `unpackresponse(str)` → session, ok, data [, padding] or nothing;
//! `append(t, msg | nil, sz)`; `concat(t)` → msg, sz or nothing; `isname(s)`; `nodename()`.
//!
//! Differences from upstream, all on inputs where upstream reads out of bounds or aborts:
//! `concat` checks the parts against the announced size before allocating (a multipart header
//! announcing 2 GiB or a negative size gives nothing instead of aborting the node);
//! a NULL or negative-size message given to `unpackrequest`, `packresponse` or `append` is a Lua
//! error; `unpackrequest`'s result buffers are always fresh `malloc` blocks (size 0 included).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod codec;

use crate::cmem;
use crate::lua::lua_function;
use crate::lua::{self, ffi, new_lib, raise_where, CFunction};
use codec::{Addr, Request, Response, MULTI_PART, TEMP_LENGTH};
use ffi::lua_State;
use std::ffi::{c_int, c_void, CStr};

/// The bytes `msg` points at: a message pointer handed over by Lua code (trusted, as upstream).
///
/// # Safety
/// `p` points at `sz` readable bytes (or `sz` is 0).
unsafe fn msg_slice<'a>(p: *const u8, sz: usize) -> &'a [u8] {
    if sz == 0 {
        &[]
    } else {
        // SAFETY: caller contract.
        unsafe { std::slice::from_raw_parts(p, sz) }
    }
}

/// Upstream's name check message shows the name as a C string: up to its first NUL.
fn shown_name(name: &[u8]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// `packrequest` / `packpush`.
///
/// # Safety
/// Called from a Lua C function on its state.
unsafe fn pack_request(l: *mut lua_State, push: bool) -> c_int {
    // SAFETY: running state; `msg` is a raw malloc block (no destructor) freed on every path
    // that does not raise a Lua API error first, as upstream; raises happen with nothing owned.
    unsafe {
        let msg = ffi::lua_touserdata(l, 3).cast::<u8>();
        if msg.is_null() {
            raise_where(l, "Invalid request message".to_string());
        }
        let sz = ffi::luaL_checkinteger(l, 4) as u32 as usize;
        // Upstream keeps the session in a C int.
        let session = ffi::luaL_checkinteger(l, 2) as i32;
        if session <= 0 {
            cmem::free(msg);
            raise_where(l, format!("Invalid request session {session}"));
        }
        let addr = if ffi::lua_type(l, 1) == ffi::LUA_TNUMBER {
            Addr::Id(ffi::lua_tointegerx(l, 1, std::ptr::null_mut()) as u32)
        } else {
            match lua::to_bytes(l, 1) {
                None => {
                    cmem::free(msg);
                    let m = format!("name is not a string, it's a {}", lua::type_name(l, 1));
                    raise_where(l, m);
                }
                Some(name) if name.is_empty() || name.len() > 255 => {
                    cmem::free(msg);
                    let m = format!(
                        "name length is invalid, must be between 1 and 255 characters: {}",
                        shown_name(name)
                    );
                    raise_where(l, m);
                }
                Some(name) => Addr::Name(name),
            }
        };
        let session = session as u32;
        let body = msg_slice(msg, sz);
        let mut buf = [0u8; TEMP_LENGTH];
        let n = codec::request_head(&mut buf, addr, session, body, push);
        lua::push_bytes(l, &buf[..n]);
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(codec::next_session(session)));
        let mut results = 2;
        if codec::is_multipart_request(sz) {
            let parts = codec::part_count(sz);
            ffi::lua_createtable(l, parts as c_int, 0);
            for (i, chunk) in body.chunks(MULTI_PART).enumerate() {
                let n = codec::request_part(&mut buf, session, chunk, i + 1 == parts);
                lua::push_bytes(l, &buf[..n]);
                ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
            }
            results = 3;
        }
        cmem::free(msg);
        results
    }
}

/// `packrequest(addr, session, msg, sz)` → first packet, next session [, part packets].
#[lua_function]
unsafe extern "C-unwind" fn lpackrequest(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua.
    unsafe { pack_request(l, false) }
}

/// `packpush(addr, session, msg, sz)`: as `packrequest`, for a message with no reply.
#[lua_function]
unsafe extern "C-unwind" fn lpackpush(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua.
    unsafe { pack_request(l, true) }
}

/// `packtrace(tag)` → trace packet.
#[lua_function]
unsafe extern "C-unwind" fn lpacktrace(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the tag stays on the stack while we read it.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        let tag = msg_slice(p, len);
        let mut buf = [0u8; TEMP_LENGTH];
        match codec::trace(&mut buf, tag) {
            Ok(n) => lua::push_bytes(l, &buf[..n]),
            Err(e) => raise_where(l, e.to_string()),
        }
    }
    1
}

/// Pushes a fresh malloc'd copy of `data` and its size.
///
/// # Safety
/// Valid state with two free slots.
unsafe fn push_buffer(l: *mut lua_State, data: &[u8]) {
    let p = cmem::malloc_copy(data);
    // SAFETY: valid state; pushing a light userdata and an integer cannot raise.
    unsafe {
        ffi::lua_pushlightuserdata(l, p.cast::<c_void>());
        ffi::lua_pushinteger(l, data.len() as ffi::lua_Integer);
    }
}

/// Pushes a request address: handle or name.
///
/// # Safety
/// Valid state with a free slot.
unsafe fn push_addr(l: *mut lua_State, addr: Addr) {
    // SAFETY: valid state.
    unsafe {
        match addr {
            Addr::Id(id) => ffi::lua_pushinteger(l, ffi::lua_Integer::from(id)),
            Addr::Name(name) => lua::push_bytes(l, name),
        }
    }
}

/// `cluster_strict = true`: a remote request may name only a name registered with
/// `cluster.register` (`@name`; address 0 is the query for such a name). Anything else (a
/// numeric address, a `.localname`) is refused: `unpackrequest` gives `false` for the
/// address, which the cluster agent answers with "Invalid name", as for an unknown name.
fn strict_refuses(addr: &Addr) -> bool {
    let refused = match addr {
        Addr::Id(0) => false,
        Addr::Id(_) => true,
        Addr::Name(name) => name.first() != Some(&b'@'),
    };
    refused && skynet_core::env::env().get_str("cluster_strict").as_deref() == Some("true")
}

/// The peer a cluster request came from: the gate forwards a connection's packets as
/// PTYPE_CLIENT messages whose session is the socket id.
fn request_peer() -> String {
    let Some(d) = crate::skynet_core::dispatching() else {
        return "unknown peer".to_owned();
    };
    if d.ty != skynet_core::ptype::CLIENT {
        return format!("source :{:08x}", d.source);
    }
    let info = skynet_core::try_node()
        .and_then(|n| n.socket())
        .and_then(|s| s.info().into_iter().find(|i| i.id == d.session));
    match info {
        Some(i) => format!("{} (socket {})", i.name, d.session),
        None => format!("socket {}", d.session),
    }
}

/// Logs a refused request and pushes `false` in place of its address.
///
/// # Safety
/// `l` is a running state with room for one value.
unsafe fn push_refused(l: *mut lua_State, addr: Addr) {
    let target = match addr {
        Addr::Id(id) => format!(":{id:08x}"),
        Addr::Name(name) => shown_name(name),
    };
    if let Some(n) = skynet_core::try_node() {
        n.log(
            skynet_core::server::current_handle(),
            format!(
                "cluster_strict: request for {target} from {} refused: not a registered name",
                request_peer()
            ),
        );
    }
    // SAFETY: as the caller promised.
    unsafe { ffi::lua_pushboolean(l, 0) };
}

/// Pushes the address of a request, or `false` if `cluster_strict` refuses it.
///
/// # Safety
/// `l` is a running state with room for one value.
unsafe fn push_target(l: *mut lua_State, addr: Addr) {
    // SAFETY: as the caller promised.
    unsafe {
        if strict_refuses(&addr) {
            push_refused(l, addr);
        } else {
            push_addr(l, addr);
        }
    }
}

/// `unpackrequest(str | msg, sz)` →
/// a whole request: addr, session, msg, sz (and nil, true for a push, i.e. session 0);
/// a multipart header: addr, session, nil, total size, true, is_push;
/// a part: false, session, msg, sz, more parts follow;
/// a trace tag: the tag.
/// `msg` results are malloc blocks for the receiver to free; malformed packets raise.
#[lua_function]
unsafe extern "C-unwind" fn lunpackrequest(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the packet (a string on the stack or the caller's message) stays
    // valid while decoded; raises happen with nothing owned (the error text is dropped by
    // raise_where).
    unsafe {
        let (p, sz) = if ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA {
            // Upstream keeps the size in a C int.
            let sz = ffi::luaL_checkinteger(l, 2) as i32;
            let p = ffi::lua_touserdata(l, 1).cast::<u8>().cast_const();
            if sz < 0 || (p.is_null() && sz > 0) {
                raise_where(l, format!("Invalid cluster message (size={sz})"));
            }
            (p, sz as usize)
        } else {
            let mut len = 0usize;
            let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
            (p, len)
        };
        let packet = msg_slice(p, sz);
        let req = match codec::decode_request(packet) {
            Ok(r) => r,
            Err(e) => raise_where(l, e.to_string()),
        };
        match req {
            Request::Single { addr, session, msg } => {
                push_target(l, addr);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
                push_buffer(l, msg);
                if session == 0 {
                    ffi::lua_pushnil(l);
                    ffi::lua_pushboolean(l, 1);
                    6
                } else {
                    4
                }
            }
            Request::Multi {
                addr,
                session,
                size,
                push,
            } => {
                push_target(l, addr);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
                ffi::lua_pushnil(l);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(size));
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushboolean(l, c_int::from(push));
                6
            }
            Request::Part {
                session,
                data,
                more,
            } => {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
                push_buffer(l, data);
                ffi::lua_pushboolean(l, c_int::from(more));
                5
            }
            Request::Trace(tag) => {
                lua::push_bytes(l, tag);
                1
            }
        }
    }
}

/// `packresponse(session, ok, str | msg, sz)` → packet, or a table of packets for a large
/// successful response. `msg` is not freed (it belongs to the caller).
#[lua_function]
unsafe extern "C-unwind" fn lpackresponse(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the message (a string on the stack, or the caller's block) stays
    // valid while packed; raises happen with nothing owned.
    unsafe {
        let session = ffi::luaL_checkinteger(l, 1) as u32;
        let ok = ffi::lua_toboolean(l, 2) != 0;
        let (p, sz) = if ffi::lua_type(l, 3) == ffi::LUA_TSTRING {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 3, &mut len).cast::<u8>();
            (p, len)
        } else {
            let p = ffi::lua_touserdata(l, 3).cast::<u8>().cast_const();
            let sz = ffi::luaL_checkinteger(l, 4);
            if sz < 0 || (p.is_null() && sz > 0) {
                raise_where(l, "Invalid response message".to_string());
            }
            (p, sz as usize)
        };
        let msg = msg_slice(p, sz);
        let mut buf = [0u8; TEMP_LENGTH];
        if !codec::is_multipart_response(ok, sz) {
            let n = codec::response(&mut buf, session, ok, msg);
            lua::push_bytes(l, &buf[..n]);
            return 1;
        }
        let parts = codec::part_count(sz);
        ffi::lua_createtable(l, (parts + 1) as c_int, 0);
        let n = codec::response_begin(&mut buf, session, sz as u32);
        lua::push_bytes(l, &buf[..n]);
        ffi::lua_rawseti(l, -2, 1);
        for (i, chunk) in msg.chunks(MULTI_PART).enumerate() {
            let n = codec::response_part(&mut buf, session, chunk, i + 1 == parts);
            lua::push_bytes(l, &buf[..n]);
            ffi::lua_rawseti(l, -2, (i + 2) as ffi::lua_Integer);
        }
    }
    1
}

/// `unpackresponse(str)` → session, ok, data [, true if more parts follow]; or
/// session, true, total size, true for the start of a large response; nothing if malformed.
#[lua_function]
unsafe extern "C-unwind" fn lunpackresponse(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the packet string stays on the stack while decoded.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        match codec::decode_response(msg_slice(p, len)) {
            None => 0,
            Some(Response::Begin { session, size }) => {
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(size));
                ffi::lua_pushboolean(l, 1);
                4
            }
            Some(Response::Data {
                session,
                ok,
                data,
                more,
            }) => {
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
                ffi::lua_pushboolean(l, c_int::from(ok));
                lua::push_bytes(l, data);
                if more {
                    ffi::lua_pushboolean(l, 1);
                    4
                } else {
                    3
                }
            }
        }
    }
}

/// `append(t, msg, sz)`: appends msg as a string to `t` and frees msg; with msg nil, appends
/// `sz` itself (the total size of a multipart request comes first).
#[lua_function]
unsafe extern "C-unwind" fn lappend(l: *mut lua_State) -> c_int {
    // SAFETY: running state; `p` is a raw malloc block (no destructor) from unpackrequest.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        let n = ffi::lua_rawlen(l, 1) as ffi::lua_Integer;
        if ffi::lua_type(l, 2) == ffi::LUA_TNIL {
            ffi::lua_settop(l, 3);
            ffi::lua_seti(l, 1, n + 1);
            return 0;
        }
        let p = ffi::lua_touserdata(l, 2).cast::<u8>();
        if p.is_null() {
            raise_where(l, "Need lightuserdata".to_string());
        }
        let sz = ffi::luaL_checkinteger(l, 3) as i32;
        if sz < 0 {
            raise_where(l, format!("Invalid size {sz}"));
        }
        lua::push_bytes(l, msg_slice(p, sz as usize));
        cmem::free(p);
        ffi::lua_seti(l, 1, n + 1);
    }
    0
}

/// `concat(t)` with `t = {size, part1, part2, ...}` → a malloc block of the joined parts and
/// its size, or nothing unless the string parts add up to exactly `size`.
#[lua_function]
unsafe extern "C-unwind" fn lconcat(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the block is allocated only once the parts are known to fit, and
    // is a raw pointer (a raising __index in the second pass could only leak it).
    unsafe {
        if ffi::lua_istable(l, 1) == 0 {
            return 0;
        }
        if ffi::lua_geti(l, 1, 1) != ffi::LUA_TNUMBER {
            return 0;
        }
        // Upstream keeps the size in a C int.
        let sz = ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) as i32;
        ffi::lua_pop(l, 1);
        if sz < 0 {
            return 0;
        }
        let sz = sz as usize;
        let mut total = 0usize;
        let mut idx = 2;
        while ffi::lua_geti(l, 1, idx) == ffi::LUA_TSTRING {
            total += ffi::lua_rawlen(l, -1);
            ffi::lua_pop(l, 1);
            if total > sz {
                return 0;
            }
            idx += 1;
        }
        ffi::lua_pop(l, 1);
        if total != sz {
            return 0;
        }
        let block = cmem::malloc(sz).as_ptr();
        let mut offset = 0usize;
        for i in 2..idx {
            let part = if ffi::lua_geti(l, 1, i) == ffi::LUA_TSTRING {
                lua::to_bytes(l, -1)
            } else {
                None
            };
            match part {
                Some(s) if offset + s.len() <= sz => {
                    std::ptr::copy_nonoverlapping(s.as_ptr(), block.add(offset), s.len());
                    offset += s.len();
                    ffi::lua_pop(l, 1);
                }
                _ => {
                    cmem::free(block);
                    return 0;
                }
            }
        }
        if offset != sz {
            cmem::free(block);
            return 0;
        }
        ffi::lua_pushlightuserdata(l, block.cast::<c_void>());
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
    }
    2
}

/// `isname(addr)` → true if addr is a string starting with `@`, else nothing.
#[lua_function]
unsafe extern "C-unwind" fn lisname(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        if lua::to_bytes(l, 1).and_then(|s| s.first().copied()) == Some(b'@') {
            ffi::lua_pushboolean(l, 1);
            return 1;
        }
    }
    0
}

/// The node name from a host name and process id: bytes that are not printable ASCII (the
/// ones upstream's signed-`char` test catches: ≤ space or ≥ 0x80) become `_`.
pub fn node_name(host: Option<&[u8]>, pid: i32) -> String {
    match host {
        Some(h) => {
            let h: String = h
                .iter()
                .map(|&b| {
                    if b <= b' ' || b >= 0x80 {
                        '_'
                    } else {
                        b as char
                    }
                })
                .collect();
            format!("{h}{pid}")
        }
        None => format!("noname{pid}"),
    }
}

/// `nodename()` → host name followed by the process id.
#[lua_function]
unsafe extern "C-unwind" fn lnodename(l: *mut lua_State) -> c_int {
    let mut host = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let name = if rc == 0 {
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        node_name(Some(&host[..end]), pid)
    } else {
        node_name(None, pid)
    };
    // SAFETY: valid state; pushing a string only raises on memory errors (then the name leaks).
    unsafe { lua::push_bytes(l, name.as_bytes()) };
    1
}

const FUNCS: &[(&CStr, CFunction)] = &[
    (c"packrequest", lpackrequest),
    (c"packpush", lpackpush),
    (c"packtrace", lpacktrace),
    (c"unpackrequest", lunpackrequest),
    (c"packresponse", lpackresponse),
    (c"unpackresponse", lunpackresponse),
    (c"append", lappend),
    (c"concat", lconcat),
    (c"isname", lisname),
    (c"nodename", lnodename),
];

/// `require "skynet.cluster.core"`.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_cluster_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { new_lib(l, FUNCS) };
    1
}

#[cfg(test)]
mod tests;
