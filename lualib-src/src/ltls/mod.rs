//! `ltls.c` and `ltls.init.c`: TLS over memory buffers, on rustls (ring provider), for lualib's
//! `http.tlshelper` (HTTPS in `http.httpc`, `wss://` in `http.websocket`). The Lua code moves
//! the bytes over the socket itself; a connection only turns them into plaintext and back.
//!
//! `ltls.init.c`: `constructor()` enables the library (bootstrap calls it in a service of its
//! own when the config says `enablessl = "true"`), `destructor()` disables it again. Until
//! then `require "ltls.c"` fails with "ltls need init, Put enablessl = true in you config
//! file.", as upstream's does.
//!
//! `ltls.c`:
//! - `newctx()` → context, with `ctx:set_cert(certfile, keyfile)` (PEM chain and key for a
//!   server; the key must match), `ctx:set_ciphers(list)` (keeps the named suites: rustls,
//!   IANA or OpenSSL names, separated by `:`), and, beyond upstream, `ctx:set_ca(cafile)`.
//! - `newtls("client" | "server", ctx [, hostname])` → connection, with `finished()`,
//!   `handshake([data])` (returns the bytes to send, or nothing), `read([data])` (returns the
//!   application data, possibly ""), `write([data])` (returns the TLS bytes to send, possibly
//!   ""), `set_ext_host_name(host)` (SNI; returns 1, or 0 for a name that cannot be sent) and
//!   `close()` (also its `__gc`; any later method call fails with "context is closed").
//!
//! Server verification: a client connection accepts any server certificate by default, as
//! upstream's does (OpenSSL with `SSL_VERIFY_NONE`); only the handshake signatures are checked.
//! After `ctx:set_ca(cafile)`, the connections of that context verify the server's chain
//! against the PEM certificates in `cafile` and its name against the host name (which is then
//! required). Server contexts never ask for client certificates.
//!
//! Protocols: TLS 1.2 and 1.3. `handshake` returns any pending output, also with the message
//! that completes the handshake, where upstream's leaves that one for the next `write`.

mod session;
#[cfg(test)]
mod tests;

use crate::lua::{ffi, lua_function, new_lib, push_bytes, raise_where, to_bytes, CFunction};
use ffi::lua_State;
use session::{Ctx, Session};
use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set by `ltls.init.c`'s constructor: the whole process may use TLS.
static READY: AtomicBool = AtomicBool::new(false);

const CTX_META: &CStr = c"_TLS_SSLCTX_METATABLE_";
const TLS_META: &CStr = c"_TLS_CONTEXT_METATABLE_";

/// Userdata body of a context (`None` once collected).
struct CtxUd(Option<Arc<Ctx>>);

/// Userdata body of a connection (`None` once closed).
struct TlsUd(Option<Box<Session>>);

/// The context at `idx`.
///
/// # Safety
/// `l` is valid; raises if the value is not a live context.
unsafe fn check_ctx<'a>(l: *mut lua_State, idx: c_int) -> &'a Arc<Ctx> {
    // SAFETY: luaL_testudata returns our CtxUd block or NULL.
    unsafe {
        let p = ffi::luaL_testudata(l, idx, CTX_META.as_ptr()).cast::<CtxUd>();
        match p.as_ref().and_then(|c| c.0.as_ref()) {
            Some(c) => c,
            None => raise_where(l, "need sslctx".to_string()),
        }
    }
}

/// The open connection at index 1.
///
/// # Safety
/// `l` is valid; raises if the value is not a connection, or a closed one.
unsafe fn check_tls<'a>(l: *mut lua_State) -> &'a mut Session {
    // SAFETY: luaL_testudata returns our TlsUd block or NULL; Lua code of one service runs
    // on one thread at a time, and no two borrows of the block are alive at once here.
    unsafe {
        let p = ffi::luaL_testudata(l, 1, TLS_META.as_ptr()).cast::<TlsUd>();
        let Some(ud) = p.as_mut() else {
            raise_where(l, "need tls context".to_string())
        };
        match ud.0.as_deref_mut() {
            Some(s) => s,
            None => raise_where(l, "context is closed".to_string()),
        }
    }
}

/// The string argument at `idx` as UTF-8 text, if it is a string (or a number).
///
/// # Safety
/// `l` is valid.
unsafe fn opt_text(l: *mut lua_State, idx: c_int) -> Option<String> {
    // SAFETY: valid state.
    unsafe { to_bytes(l, idx) }.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Pushes `r`'s bytes, or raises its message.
///
/// # Safety
/// `l` is valid; the caller holds nothing with a destructor.
unsafe fn push_result(l: *mut lua_State, r: Result<Vec<u8>, String>) -> c_int {
    match r {
        Ok(bytes) => {
            // SAFETY: valid state; an out-of-memory error here would leak `bytes` only.
            unsafe { push_bytes(l, &bytes) };
            1
        }
        // SAFETY: valid state; the message is the only value we own.
        Err(msg) => unsafe { raise_where(l, msg) },
    }
}

/// `ctx:set_cert(certfile, keyfile)`.
#[lua_function]
unsafe extern "C-unwind" fn lctx_cert(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; each raise happens with nothing of ours alive.
    unsafe {
        let ctx = check_ctx(l, 1);
        let Some(cert) = opt_text(l, 2) else {
            raise_where(l, "need certfile".to_string())
        };
        let Some(key) = opt_text(l, 3) else {
            drop(cert);
            raise_where(l, "need private key".to_string())
        };
        let r = ctx.set_cert(&cert, &key);
        drop((cert, key));
        if let Err(msg) = r {
            raise_where(l, msg)
        }
    }
    0
}

/// `ctx:set_ciphers(list)`.
#[lua_function]
unsafe extern "C-unwind" fn lctx_ciphers(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; each raise happens with nothing of ours alive.
    unsafe {
        let ctx = check_ctx(l, 1);
        let Some(list) = opt_text(l, 2) else {
            raise_where(l, "need cipher list".to_string())
        };
        let r = ctx.set_ciphers(&list);
        drop(list);
        if let Err(msg) = r {
            raise_where(l, msg)
        }
    }
    0
}

/// `ctx:set_ca(cafile)`: verify servers against these roots (see the module doc).
#[lua_function]
unsafe extern "C-unwind" fn lctx_ca(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; each raise happens with nothing of ours alive.
    unsafe {
        let ctx = check_ctx(l, 1);
        let Some(file) = opt_text(l, 2) else {
            raise_where(l, "need cafile".to_string())
        };
        let r = ctx.set_ca(&file);
        drop(file);
        if let Err(msg) = r {
            raise_where(l, msg)
        }
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lctx_gc(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of our own metatable: the block is a CtxUd.
    unsafe {
        let p = ffi::luaL_testudata(l, 1, CTX_META.as_ptr()).cast::<CtxUd>();
        if let Some(ud) = p.as_mut() {
            ud.0 = None;
        }
    }
    0
}

/// `newctx()`.
#[lua_function]
unsafe extern "C-unwind" fn lnewctx(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the block is initialized before anything can raise.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<CtxUd>(), 0).cast::<CtxUd>();
        p.write(CtxUd(Some(Arc::new(Ctx::default()))));
        ffi::luaL_setmetatable(l, CTX_META.as_ptr());
    }
    1
}

/// `newtls(method, ctx [, hostname])`.
#[lua_function]
unsafe extern "C-unwind" fn lnewtls(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; argument errors are raised before anything is owned, and the
    // userdata block is initialized right after its allocation.
    unsafe {
        ffi::lua_settop(l, 3);
        let method = to_bytes(l, 1).unwrap_or(b"nil");
        let server = match method {
            b"client" => false,
            b"server" => true,
            other => raise_where(
                l,
                format!(
                    "invalid method:{} e.g[server, client]",
                    String::from_utf8_lossy(other)
                ),
            ),
        };
        let ctx = check_ctx(l, 2).clone();
        // The Arc is moved into the userdata block at once: no raise while it is loose.
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<TlsUd>(), 0).cast::<TlsUd>();
        p.write(TlsUd(Some(Box::new(Session::new(ctx, server, None)))));
        ffi::luaL_setmetatable(l, TLS_META.as_ptr());
        if !server && ffi::lua_isnoneornil(l, 3) == 0 {
            ffi::luaL_checklstring(l, 3, std::ptr::null_mut());
            let host = opt_text(l, 3);
            if let Some(s) = (*p).0.as_deref_mut() {
                s.set_host(host);
            }
        }
    }
    1
}

/// `tls:close()` (and its `__gc`).
#[lua_function]
unsafe extern "C-unwind" fn ltls_close(l: *mut lua_State) -> c_int {
    // SAFETY: the block is a TlsUd when the metatable is ours.
    unsafe {
        let p = ffi::luaL_testudata(l, 1, TLS_META.as_ptr()).cast::<TlsUd>();
        match p.as_mut() {
            Some(ud) => ud.0 = None,
            None => raise_where(l, "need tls context".to_string()),
        }
    }
    0
}

/// `tls:finished()`.
#[lua_function]
unsafe extern "C-unwind" fn ltls_finished(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let done = check_tls(l).finished();
        ffi::lua_pushboolean(l, c_int::from(done));
    }
    1
}

/// `tls:handshake([data])`.
#[lua_function]
unsafe extern "C-unwind" fn ltls_handshake(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the input slice stays on the stack during the call.
    unsafe {
        let s = check_tls(l);
        let data = to_bytes(l, 2).unwrap_or_default();
        match s.handshake(data) {
            Ok(Some(out)) => push_result(l, Ok(out)),
            Ok(None) => 0,
            Err(msg) => raise_where(l, msg),
        }
    }
}

/// `tls:read([data])`.
#[lua_function]
unsafe extern "C-unwind" fn ltls_read(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the input slice stays on the stack during the call.
    unsafe {
        let s = check_tls(l);
        let data = to_bytes(l, 2).unwrap_or_default();
        let r = s.read(data);
        push_result(l, r)
    }
}

/// `tls:write([data])`.
#[lua_function]
unsafe extern "C-unwind" fn ltls_write(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the input slice stays on the stack during the call.
    unsafe {
        let s = check_tls(l);
        let data = to_bytes(l, 2).unwrap_or_default();
        let r = s.write(data);
        push_result(l, r)
    }
}

/// `tls:set_ext_host_name(host)`.
#[lua_function]
unsafe extern "C-unwind" fn ltls_host(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let s = check_tls(l);
        let host = opt_text(l, 2);
        let ok = s.set_host(host);
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(ok));
    }
    1
}

const CTX_METHODS: [(&CStr, CFunction); 3] = [
    (c"set_ciphers", lctx_ciphers),
    (c"set_cert", lctx_cert),
    (c"set_ca", lctx_ca),
];

const TLS_METHODS: [(&CStr, CFunction); 6] = [
    (c"close", ltls_close),
    (c"finished", ltls_finished),
    (c"handshake", ltls_handshake),
    (c"read", ltls_read),
    (c"write", ltls_write),
    (c"set_ext_host_name", ltls_host),
];

/// Creates the metatable `name` (methods as `__index`, `gc` as `__gc`) if it does not exist.
///
/// # Safety
/// `l` is valid.
unsafe fn metatable(l: *mut lua_State, name: &CStr, methods: &[(&CStr, CFunction)], gc: CFunction) {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, name.as_ptr()) != 0 {
            new_lib(l, methods);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
    }
}

/// `luaopen_ltls_c`: the module table (`newctx`, `newtls`); fails until `ltls.init.c`'s
/// constructor has run.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_ltls_c(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if !READY.load(Ordering::Acquire) {
            raise_where(
                l,
                "ltls need init, Put enablessl = true in you config file.".to_string(),
            );
        }
        metatable(l, CTX_META, &CTX_METHODS, lctx_gc);
        metatable(l, TLS_META, &TLS_METHODS, ltls_close);
        new_lib(l, &[(c"newctx", lnewctx), (c"newtls", lnewtls)]);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn linit_constructor(_l: *mut lua_State) -> c_int {
    READY.store(true, Ordering::Release);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn linit_destructor(_l: *mut lua_State) -> c_int {
    READY.store(false, Ordering::Release);
    0
}

/// `luaopen_ltls_init_c`: `constructor()` / `destructor()` enable and disable `ltls.c`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_ltls_init_c(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        new_lib(
            l,
            &[
                (c"constructor", linit_constructor),
                (c"destructor", linit_destructor),
            ],
        );
    }
    1
}
