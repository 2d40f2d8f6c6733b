//! `skynet.core`: the Lua face of the core (send, callback, commands, pack/unpack, ...).
//!
//! Functions bound to the service take its context from upvalue 1 (a light userdata set by
//! snlua in the registry as `skynet_context`).

use crate::lua::lua_function;
use crate::lua::{ffi, push_bytes, raise, set_funcs, to_bytes, type_name, CFunction};
use crate::seri;
use crate::vm::Vm;
use ffi::lua_State;
use skynet_core::command::{command, CommandResult};
use skynet_core::server::{Callback, PTYPE_TAG_ALLOCSESSION, PTYPE_TAG_DONTCOPY};
use skynet_core::{node, Context, Message, Payload};
use std::ffi::{c_int, c_void, CStr};

/// The context in upvalue 1.
///
/// # Safety
/// Called from a function registered by [`luaopen_skynet_core`] on a live service's VM.
unsafe fn ctx<'a>(l: *mut lua_State) -> &'a Context {
    // SAFETY: upvalue 1 is the service's context pointer; the VM dies before the context.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Context) }
}

/// Runs a command and returns its result as owned text (so no Rust borrow outlives a raise).
fn run_command(ctx: &Context, cmd: &[u8], parm: Option<&[u8]>) -> Option<Vec<u8>> {
    let cmd = String::from_utf8_lossy(cmd);
    let parm = parm.map(String::from_utf8_lossy);
    command(node(), ctx, &cmd, parm.as_deref()).map(|r| match r {
        CommandResult::Text(t) => t.into_bytes(),
        CommandResult::Env(v) => v.to_bytes().to_vec(),
    })
}

/// Command name and optional parameter (only when exactly 2 arguments are given).
unsafe fn command_args<'a>(l: *mut lua_State) -> (&'a [u8], Option<&'a [u8]>) {
    // SAFETY: valid state; luaL_checklstring raises before anything is allocated.
    unsafe {
        let cmd = check_bytes(l, 1);
        let parm = (ffi::lua_gettop(l) == 2).then(|| check_bytes(l, 2));
        (cmd, parm)
    }
}

/// `luaL_checklstring` as a slice.
unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0;
    // SAFETY: valid state; raises on a non-string (nothing of ours is alive yet).
    let p = unsafe { ffi::luaL_checklstring(l, idx, &mut len) };
    // SAFETY: Lua guarantees len bytes while the value is on the stack.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }
}

#[lua_function]
unsafe extern "C-unwind" fn lcommand(l: *mut lua_State) -> c_int {
    // SAFETY: registered with the context upvalue.
    let (ctx, (cmd, parm)) = unsafe { (ctx(l), command_args(l)) };
    match run_command(ctx, cmd, parm) {
        Some(r) => {
            // SAFETY: valid state.
            unsafe { push_bytes(l, &r) };
            1
        }
        None => 0,
    }
}

#[lua_function]
unsafe extern "C-unwind" fn laddresscommand(l: *mut lua_State) -> c_int {
    // SAFETY: registered with the context upvalue.
    let (ctx, (cmd, parm)) = unsafe { (ctx(l), command_args(l)) };
    let addr = run_command(ctx, cmd, parm).and_then(|r| {
        let hex = r.strip_prefix(b":")?;
        let s = std::str::from_utf8(hex).ok()?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    });
    match addr {
        Some(a) => {
            // SAFETY: valid state.
            unsafe { ffi::lua_pushinteger(l, ffi::lua_Integer::from(a)) };
            1
        }
        None => 0,
    }
}

/// A command result as Lua sees it from `intcommand`: C `strtoll(s, &end, 0)` consuming
/// everything, else `strtod` consuming everything.
enum Number {
    Int(i64),
    Float(f64),
}

fn parse_number(s: &str) -> Option<Number> {
    let t = s.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()
    } else if body.is_empty() && t.is_empty() {
        Some(0) // strtoll("") parses nothing and stops at the terminator
    } else {
        body.parse::<i64>().ok()
    };
    match int {
        Some(v) if body.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(Number::Int(if neg { v.wrapping_neg() } else { v }))
        }
        _ => t.parse::<f64>().ok().map(Number::Float),
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lintcommand(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; checks raise before we own anything.
    let (ctx, cmd, parm) = unsafe {
        let ctx = ctx(l);
        let cmd = check_bytes(l, 1);
        let parm = if ffi::lua_gettop(l) == 2 {
            if ffi::lua_isnumber(l, 2) != 0 {
                let n = ffi::luaL_checkinteger(l, 2) as i32;
                Some(n.to_string().into_bytes())
            } else {
                Some(check_bytes(l, 2).to_vec())
            }
        } else {
            None
        };
        (ctx, cmd, parm)
    };
    let Some(result) = run_command(ctx, cmd, parm.as_deref()) else {
        return 0;
    };
    drop(parm);
    let text = String::from_utf8_lossy(&result).into_owned();
    drop(result);
    let number = parse_number(&text);
    match number {
        // SAFETY: valid state.
        Some(Number::Int(v)) => unsafe { ffi::lua_pushinteger(l, v) },
        // SAFETY: valid state.
        Some(Number::Float(v)) => unsafe { ffi::lua_pushnumber(l, v) },
        None => {
            let msg = format!("Invalid result {text}");
            drop(text);
            // SAFETY: nothing with a destructor is alive but the message, which raise frees.
            unsafe { raise(l, msg) }
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lgenid(l: *mut lua_State) -> c_int {
    // SAFETY: registered with the context upvalue.
    let ctx = unsafe { ctx(l) };
    let session = node().send(Some(ctx), 0, 0, PTYPE_TAG_ALLOCSESSION, 0, Payload::empty());
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, ffi::lua_Integer::from(session)) };
    1
}

enum Dest<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// send / redirect: (dest, [source], type, session|nil, msg, [sz]).
unsafe fn send_message(l: *mut lua_State, source: u32, idx_type: c_int) -> c_int {
    // SAFETY: all the raising checks happen here, before any Rust value owns anything.
    let (ctx, dest, ty, session, data) = unsafe {
        let ctx = ctx(l);
        let handle = ffi::lua_tointegerx(l, 1, std::ptr::null_mut()) as u32;
        let dest = if handle != 0 {
            Dest::Handle(handle)
        } else if ffi::lua_type(l, 1) == ffi::LUA_TNUMBER {
            raise(l, "Invalid service address 0".to_owned())
        } else {
            match to_bytes(l, 1) {
                Some(b) => Dest::Name(b),
                None => raise(
                    l,
                    format!(
                        "dest address type ({}) must be a string or number.",
                        type_name(l, 1)
                    ),
                ),
            }
        };
        let mut ty = ffi::luaL_checkinteger(l, idx_type) as c_int;
        let session = if ffi::lua_type(l, idx_type + 1) <= ffi::LUA_TNIL {
            ty |= PTYPE_TAG_ALLOCSESSION;
            0
        } else {
            ffi::luaL_checkinteger(l, idx_type + 1) as c_int
        };
        let data = match ffi::lua_type(l, idx_type + 2) {
            ffi::LUA_TSTRING => {
                let b = to_bytes(l, idx_type + 2).unwrap_or_default();
                if b.is_empty() {
                    Payload::empty()
                } else {
                    Payload::copy_from(b)
                }
            }
            ffi::LUA_TLIGHTUSERDATA => {
                let p = ffi::lua_touserdata(l, idx_type + 2) as *mut u8;
                // Upstream reads the size as a C int, then passes it on as a size_t: a negative
                // size becomes huge, which the core's send rejects as "too large".
                let sz = ffi::luaL_checkinteger(l, idx_type + 3) as c_int;
                ty |= PTYPE_TAG_DONTCOPY;
                Payload::from_raw(p, sz as isize as usize)
            }
            _ => raise(l, format!("invalid param {}", type_name(l, idx_type + 2))),
        };
        (ctx, dest, ty, session, data)
    };
    // The size limit is the core's to check (and log, with the destination): a local .name
    // is resolved first, so an unknown one fails as an invalid address.
    let session = match dest {
        Dest::Handle(h) => node().send(Some(ctx), source, h, ty, session, data),
        Dest::Name(n) => node().send_name(
            Some(ctx),
            source,
            &String::from_utf8_lossy(n),
            ty,
            session,
            data,
        ),
    };
    // SAFETY: valid state; nothing of ours is alive.
    unsafe {
        match session {
            -2 => ffi::lua_pushboolean(l, 0),
            s if s < 0 => return 0,
            s => ffi::lua_pushinteger(l, ffi::lua_Integer::from(s)),
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lsend(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { send_message(l, 0, 2) }
}

#[lua_function]
unsafe extern "C-unwind" fn lredirect(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let source = ffi::luaL_checkinteger(l, 2) as u32;
        send_message(l, source, 3)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lerror(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the joined text is built on the Lua stack so a raising __tostring
    // leaves nothing of ours behind.
    unsafe {
        let n = ffi::lua_gettop(l).max(1);
        ffi::lua_settop(l, n);
        ffi::luaL_checkstack(l, n * 2, std::ptr::null());
        for i in 1..=n {
            ffi::luaL_tolstring(l, i, std::ptr::null_mut());
            if i < n {
                ffi::lua_pushstring(l, c" ".as_ptr());
            }
        }
        ffi::lua_concat(l, 2 * n - 1);
        let text = to_bytes(l, -1).unwrap_or_default();
        ctx(l).error(text);
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lharbor(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let handle = ffi::luaL_checkinteger(l, 1) as u32;
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(handle >> 24));
        ffi::lua_pushboolean(l, node().is_remote(handle) as c_int);
    }
    2
}

/// Message handler adding a traceback (also used by snlua).
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn traceback(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let msg = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
        if msg.is_null() {
            ffi::lua_pushstring(l, c"(no error message)".as_ptr());
        } else {
            ffi::luaL_traceback(l, l, msg, 1);
        }
    }
    1
}

/// What the message being dispatched on this thread is: (type, session, source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatching {
    pub ty: i32,
    pub session: i32,
    pub source: u32,
}

thread_local! {
    static DISPATCHING: std::cell::Cell<Option<Dispatching>> = const { std::cell::Cell::new(None) };
}

/// The message the Lua dispatcher of this thread is handling (for unpack functions that need
/// to know where their bytes came from), or `None` outside a dispatch.
pub fn dispatching() -> Option<Dispatching> {
    DISPATCHING.with(|d| d.get())
}

/// Clears the dispatching record when the callback returns.
struct DispatchGuard(Option<Dispatching>);

impl Drop for DispatchGuard {
    fn drop(&mut self) {
        DISPATCHING.with(|d| d.set(self.0));
    }
}

/// The service's Lua dispatcher: `func(type, msg, sz, session, source)` on a dedicated thread
/// whose stack holds [traceback, func].
struct LuaCallback {
    thread: *mut lua_State,
    forward: bool,
    first: bool,
}

// SAFETY: the thread belongs to the service's VM, which only the dispatching worker touches.
unsafe impl Send for LuaCallback {}

const CALLBACK_KEY: &CStr = c"callback_context";
const CALLBACK_PREV_KEY: &CStr = c"callback_context_prev";

impl Callback for LuaCallback {
    fn call(&mut self, ctx: &Context, msg: &mut Message) {
        let l = self.thread;
        let (source, session, ty) = (msg.source, msg.session, msg.ty);
        let (p, sz) = msg.take_data().into_raw();
        let _dispatching = DispatchGuard(DISPATCHING.with(|d| {
            d.replace(Some(Dispatching {
                ty: ty as i32,
                session,
                source,
            }))
        }));
        // SAFETY: the VM is this service's; the stack holds [traceback, func]; the call is
        // protected, so no error escapes.
        let r = unsafe {
            // SIGNAL 0 hooks the running coroutine: until the callback resumes one, that is
            // the callback's own thread.
            if let Some(vm) = Vm::of(l) {
                vm.switch_to(l); // the callback's thread, about to run here
            }
            if self.first {
                // The previous dispatcher's thread can go now: it is no longer running.
                self.first = false;
                ffi::lua_pushnil(l);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, CALLBACK_PREV_KEY.as_ptr());
            }
            ffi::lua_pushvalue(l, 2);
            ffi::lua_pushinteger(l, ty as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(l, p as *mut c_void);
            ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(session));
            ffi::lua_pushinteger(l, ffi::lua_Integer::from(source));
            ffi::lua_pcall(l, 5, 0, 1)
        };
        if r != ffi::LUA_OK {
            let me = ctx.handle();
            let text = match r {
                ffi::LUA_ERRMEM => {
                    format!("lua memory error : [{source:x} to :{me:x} : {session}]")
                }
                ffi::LUA_ERRERR => {
                    format!("lua error in error : [{source:x} to :{me:x} : {session}]")
                }
                _ => {
                    // SAFETY: the error object is on the top of the stack.
                    let err = unsafe { to_bytes(l, -1) }.unwrap_or_default();
                    format!(
                        "lua call [{source:x} to :{me:x} : {session} msgsz = {sz}] error : \x1b[31m{}\x1b[0m",
                        String::from_utf8_lossy(err)
                    )
                }
            };
            ctx.error(text);
            // SAFETY: pops the error object.
            unsafe { ffi::lua_pop(l, 1) };
        }
        if !self.forward {
            // SAFETY: not forwarded, so the payload is still ours to free.
            drop(unsafe { Payload::from_raw(p, sz) });
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lcallback(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the checks raise before anything is owned.
    unsafe {
        let ctx = ctx(l);
        let forward = ffi::lua_toboolean(l, 2) != 0;
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        ffi::lua_settop(l, 1);
        let thread = ffi::lua_newthread(l);
        ffi::lua_pushcfunction(thread, traceback);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_xmove(l, thread, 1);
        // Keep the old dispatcher thread alive until the new one first runs: this very call
        // may be running on it.
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, CALLBACK_KEY.as_ptr());
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, CALLBACK_PREV_KEY.as_ptr());
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, CALLBACK_KEY.as_ptr());
        ctx.set_callback(Some(Box::new(LuaCallback {
            thread,
            forward,
            first: true,
        })));
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn ltostring(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the pointer and size come from Lua code, as upstream trusts them.
    unsafe {
        if ffi::lua_type(l, 1) <= ffi::LUA_TNIL {
            return 0;
        }
        let p = ffi::lua_touserdata(l, 1) as *const std::ffi::c_char;
        let sz = ffi::luaL_checkinteger(l, 2);
        if p.is_null() || sz <= 0 {
            ffi::lua_pushstring(l, c"".as_ptr());
        } else {
            ffi::lua_pushlstring(l, p, sz as usize);
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn ltrash(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; a light userdata passed to trash is a libc block given up by Lua.
    unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TSTRING => {}
            ffi::LUA_TLIGHTUSERDATA => {
                let p = ffi::lua_touserdata(l, 1);
                ffi::luaL_checkinteger(l, 2);
                libc::free(p);
            }
            _ => raise(l, format!("skynet.trash invalid param {}", type_name(l, 1))),
        }
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lnow(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, node().timer.now() as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lhpc(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, crate::lua::monotonic_ns()) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn ltrace(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; raising checks first, then only stack walking and logging.
    unsafe {
        let ctx = ctx(l);
        let (tag, user) = (check_bytes(l, 1), check_bytes(l, 2));
        let tag = String::from_utf8_lossy(tag).into_owned();
        let mut line = format!(
            "<TRACE {tag}> {} {}",
            crate::lua::monotonic_ns(),
            String::from_utf8_lossy(user)
        );
        if ffi::lua_type(l, 3) > ffi::LUA_TNIL {
            let (co, level_idx) = if ffi::lua_type(l, 3) == ffi::LUA_TTHREAD {
                (ffi::lua_tothread(l, 3), 4)
            } else {
                (l, 3)
            };
            let mut level = match ffi::lua_type(l, level_idx) {
                t if t <= ffi::LUA_TNIL => 1,
                _ => ffi::lua_tointegerx(l, level_idx, std::ptr::null_mut()) as c_int,
            };
            let mut found = 0;
            let mut first = true;
            while found < 3 {
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                if ffi::lua_getstack(co, level, &mut ar) == 0 {
                    break;
                }
                ffi::lua_getinfo(co, c"Sl".as_ptr(), &mut ar);
                level += 1;
                if ar.currentline >= 0 {
                    let src = CStr::from_ptr(ar.source).to_string_lossy();
                    line.push_str(if first { " : " } else { " " });
                    first = false;
                    line.push_str(&format!("{}:{}", src, ar.currentline));
                    found += 1;
                }
            }
        }
        ctx.error(line);
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lpack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { seri::pack(l) }
}

#[lua_function]
unsafe extern "C-unwind" fn lunpack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { seri::unpack(l) }
}

#[lua_function]
unsafe extern "C-unwind" fn lpackstring(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { seri::packstring(l) }
}

/// `require "skynet.core"`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_core(l: *mut lua_State) -> c_int {
    const WITH_CONTEXT: [(&CStr, CFunction); 10] = [
        (c"send", lsend),
        (c"genid", lgenid),
        (c"redirect", lredirect),
        (c"command", lcommand),
        (c"intcommand", lintcommand),
        (c"addresscommand", laddresscommand),
        (c"error", lerror),
        (c"harbor", lharbor),
        (c"callback", lcallback),
        (c"trace", ltrace),
    ];
    const WITHOUT_CONTEXT: [(&CStr, CFunction); 7] = [
        (c"tostring", ltostring),
        (c"pack", lpack),
        (c"unpack", lunpack),
        (c"packstring", lpackstring),
        (c"trash", ltrash),
        (c"now", lnow),
        (c"hpc", lhpc),
    ];
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, 17);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        if ffi::lua_touserdata(l, -1).is_null() {
            return ffi::luaL_error(l, c"Init skynet context first".as_ptr());
        }
        set_funcs(l, &WITH_CONTEXT, 1);
        set_funcs(l, &WITHOUT_CONTEXT, 0);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(s: &str) -> Option<i64> {
        match parse_number(s) {
            Some(Number::Int(v)) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn intcommand_parses_like_strtoll_then_strtod() {
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("-7"), Some(-7));
        assert_eq!(int(""), Some(0));
        assert_eq!(int("0x10"), Some(16));
        assert!(
            matches!(parse_number("0.000223"), Some(Number::Float(f)) if (f - 0.000223).abs() < 1e-12)
        );
        assert!(parse_number(":3").is_none());
        assert!(parse_number("abc").is_none());
    }
}
