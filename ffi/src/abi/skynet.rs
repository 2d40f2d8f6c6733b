//! `skynet.h`: send, command, callback, names, time.

use super::{context, context_ptr, cstr, guard};
use skynet_core::server::current_handle;
use skynet_core::{command, try_node, Context, Message, Payload};
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;

/// Plain text (`skynet_error` lines to the logger).
pub const PTYPE_TEXT: c_int = 0;
/// A reply (also timer expiries).
pub const PTYPE_RESPONSE: c_int = 1;
/// Multicast (Lua).
pub const PTYPE_MULTICAST: c_int = 2;
/// Client data (gate), exit notices to the monitor service.
pub const PTYPE_CLIENT: c_int = 3;
/// System messages (remote messages to the harbor service, SIGHUP to the logger).
pub const PTYPE_SYSTEM: c_int = 4;
/// Harbor text commands.
pub const PTYPE_HARBOR: c_int = 5;
/// Socket events.
pub const PTYPE_SOCKET: c_int = 6;
/// Error reply (see lualib/skynet.lua).
pub const PTYPE_ERROR: c_int = 7;
/// Reserved for Lua (see lualib/skynet.lua, lualib/snax.lua).
pub const PTYPE_RESERVED_QUEUE: c_int = 8;
/// Reserved for Lua.
pub const PTYPE_RESERVED_DEBUG: c_int = 9;
/// Reserved for Lua.
pub const PTYPE_RESERVED_LUA: c_int = 10;
/// Reserved for Lua.
pub const PTYPE_RESERVED_SNAX: c_int = 11;

/// Send flag (0x10000): the core takes the caller's libc-malloc'd buffer instead of copying it.
pub const PTYPE_TAG_DONTCOPY: c_int = 0x10000;
/// Send flag (0x20000): allocate a new session (the session argument must be 0).
pub const PTYPE_TAG_ALLOCSESSION: c_int = 0x20000;

/// Opaque service context (declared by hand in the header, next to `skynet_error`).
///
/// cbindgen:no-export
#[repr(C)]
pub struct skynet_context {
    _private: [u8; 0],
}

/// A service's message handler; returning non-zero keeps `msg` (the callee frees it).
pub type skynet_cb = Option<
    unsafe extern "C" fn(
        context: *mut skynet_context,
        ud: *mut c_void,
        r#type: c_int,
        session: c_int,
        source: u32,
        msg: *const c_void,
        sz: usize,
    ) -> c_int,
>;

/// Entry point of the C `skynet_error` shim: logs `len` bytes from `text`.
///
/// Internal: not part of any header.
///
/// cbindgen:ignore
///
/// # Safety
/// `ctx` as for every entry point; `text` is NULL or has `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn skynet_rs_error_text(
    ctx: *mut skynet_context,
    text: *const c_char,
    len: usize,
) {
    guard("skynet_error", (), || {
        let Some(node) = try_node() else { return };
        // SAFETY: per the entry-point contract.
        let source = unsafe { context(ctx) }.map_or(0, Context::handle);
        let bytes = if text.is_null() {
            &[][..]
        } else {
            // SAFETY: the shim passes `len` valid bytes.
            unsafe { std::slice::from_raw_parts(text as *const u8, len) }
        };
        node.log(source, bytes);
    })
}

/// Runs a text command; NULL for no result, failure or an unknown command.
///
/// The result stays valid until the next command on the same context (env values: for ever).
///
/// # Safety
/// `context` must be a live service's context; `cmd` a C string; `parm` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_command(
    context: *mut skynet_context,
    cmd: *const c_char,
    parm: *const c_char,
) -> *const c_char {
    guard("skynet_command", ptr::null(), || {
        // SAFETY: per the contract above.
        let (Some(node), Some(ctx), Some(cmd)) =
            (try_node(), unsafe { super::context(context) }, unsafe {
                cstr(cmd)
            })
        else {
            return ptr::null();
        };
        // SAFETY: per the contract above.
        let parm = unsafe { cstr(parm) };
        match command::command(node, ctx, &cmd, parm.as_deref()) {
            None => ptr::null(),
            Some(command::CommandResult::Env(v)) => v.as_ptr(),
            Some(command::CommandResult::Text(t)) => {
                let mut slot = ctx.command_result.lock();
                *slot = CString::new(t).unwrap_or_default();
                slot.as_ptr()
            }
        }
    })
}

/// `:hex` or `.name` to a handle; 0 if unknown.
///
/// # Safety
/// `context` NULL or live; `name` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_queryname(
    context: *mut skynet_context,
    name: *const c_char,
) -> u32 {
    guard("skynet_queryname", 0, || {
        // SAFETY: per the contract above.
        let (Some(node), Some(name)) = (try_node(), unsafe { cstr(name) }) else {
            return 0;
        };
        // SAFETY: per the contract above.
        node.query_name(unsafe { super::context(context) }, &name)
    })
}

/// Takes or copies the caller's buffer per the send flags; `Err` is the return code when the
/// size is out of range (the buffer is then freed if it was ours to free).
///
/// # Safety
/// `msg` is NULL or `sz` readable bytes; with DONTCOPY a libc-malloc'd block given up.
unsafe fn take_payload(ty: c_int, msg: *mut c_void, sz: usize) -> Result<Payload, ()> {
    let dontcopy = ty & PTYPE_TAG_DONTCOPY != 0;
    if sz >= skynet_core::server::MESSAGE_SIZE_LIMIT {
        if dontcopy {
            // SAFETY: we own a DONTCOPY buffer in every outcome.
            drop(unsafe { Payload::from_raw(msg as *mut u8, sz) });
        }
        return Err(());
    }
    Ok(if dontcopy || msg.is_null() {
        // SAFETY: DONTCOPY hands us the block; NULL owns nothing.
        unsafe { Payload::from_raw(msg as *mut u8, sz) }
    } else {
        // SAFETY: the caller's buffer has `sz` readable bytes.
        Payload::copy_from(unsafe { std::slice::from_raw_parts(msg as *const u8, sz) })
    })
}

/// Sends a message; returns the session, -1 for a bad destination, -2 if too large.
///
/// # Safety
/// `context` NULL or live; `msg` as in upstream's contract.
#[no_mangle]
pub unsafe extern "C" fn skynet_send(
    context: *mut skynet_context,
    source: u32,
    destination: u32,
    r#type: c_int,
    session: c_int,
    msg: *mut c_void,
    sz: usize,
) -> c_int {
    guard("skynet_send", -1, || {
        // SAFETY: per the contract above.
        unsafe {
            send(
                context,
                source,
                Dest::Handle(destination),
                r#type,
                session,
                msg,
                sz,
            )
        }
    })
}

enum Dest<'a> {
    Handle(u32),
    Global(&'a str),
}

/// The common path of skynet_send and skynet_sendname once the destination is known.
///
/// # Safety
/// As `skynet_send`.
unsafe fn send(
    context: *mut skynet_context,
    source: u32,
    dest: Dest<'_>,
    r#type: c_int,
    session: c_int,
    msg: *mut c_void,
    sz: usize,
) -> c_int {
    let Some(node) = try_node() else { return -1 };
    // SAFETY: per the contract.
    let ctx = unsafe { super::context(context) };
    // SAFETY: per the contract.
    let Ok(data) = (unsafe { take_payload(r#type, msg, sz) }) else {
        let to = match dest {
            Dest::Handle(h) => format!("{h:x}"),
            Dest::Global(name) => name.to_owned(),
        };
        node.log(
            ctx.map_or(0, Context::handle),
            format!("error: The message to {to} is too large"),
        );
        return -2;
    };
    let session = check_session(ctx, r#type, session);
    match dest {
        Dest::Handle(h) => node.send(ctx, source, h, r#type, session, data),
        Dest::Global(name) => node.send_name(ctx, source, name, r#type, session, data),
    }
}

/// Upstream asserts that ALLOCSESSION comes with session 0; we log and allocate anyway.
fn check_session(ctx: Option<&Context>, ty: c_int, session: c_int) -> c_int {
    if ty & PTYPE_TAG_ALLOCSESSION != 0 && session != 0 {
        if let Some(c) = ctx {
            c.error(format!(
                "error: PTYPE_TAG_ALLOCSESSION with session {session}: the session is ignored"
            ));
        }
        return 0;
    }
    session
}

/// Sends to `:hex`, `.name` or a global name. A `.name` that does not resolve gives -1.
///
/// # Safety
/// As `skynet_send`; `destination` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_sendname(
    context: *mut skynet_context,
    source: u32,
    destination: *const c_char,
    r#type: c_int,
    session: c_int,
    msg: *mut c_void,
    sz: usize,
) -> c_int {
    guard("skynet_sendname", -1, || {
        let Some(node) = try_node() else { return -1 };
        // SAFETY: per the contract above.
        let name = unsafe { cstr(destination) }.unwrap_or_default();
        let dest = if let Some(hex) = name.strip_prefix(':') {
            Dest::Handle(skynet_core::server::parse_hex(hex))
        } else if let Some(local) = name.strip_prefix('.') {
            match node.handles.find_name(local) {
                Some(h) => Dest::Handle(h),
                None => {
                    if r#type & PTYPE_TAG_DONTCOPY != 0 {
                        // SAFETY: a DONTCOPY buffer is ours in every outcome.
                        drop(unsafe { Payload::from_raw(msg as *mut u8, sz) });
                    }
                    return -1;
                }
            }
        } else {
            Dest::Global(&name)
        };
        // SAFETY: per the contract above.
        unsafe { send(context, source, dest, r#type, session, msg, sz) }
    })
}

/// 1 iff `handle` lives on another node; stores its harbor id in `*harbor` if non-NULL.
///
/// # Safety
/// `harbor` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn skynet_isremote(
    context: *mut skynet_context,
    handle: u32,
    harbor: *mut c_int,
) -> c_int {
    let _ = context; // unused, as upstream
    guard("skynet_isremote", 0, || {
        if !harbor.is_null() {
            // SAFETY: non-NULL, writable per the contract.
            unsafe { *harbor = (handle >> 24) as c_int };
        }
        try_node().is_some_and(|n| n.is_remote(handle)) as c_int
    })
}

/// A C callback bound to its `ud`.
struct CCallback {
    cb: unsafe extern "C" fn(
        *mut skynet_context,
        *mut c_void,
        c_int,
        c_int,
        u32,
        *const c_void,
        usize,
    ) -> c_int,
    ud: *mut c_void,
}

// SAFETY: `ud` belongs to the module instance, which upstream's contract lets any worker
// thread use (never two at once for one service, which dispatch guarantees).
unsafe impl Send for CCallback {}

impl skynet_core::server::Callback for CCallback {
    fn call(&mut self, ctx: &Context, msg: &mut Message) {
        let (source, session, ty) = (msg.source, msg.session, msg.ty);
        let (p, sz) = msg.take_data().into_raw();
        // SAFETY: a C function the module registered, called with its own ud and context.
        let keep = unsafe {
            (self.cb)(
                context_ptr(ctx),
                self.ud,
                ty as c_int,
                session,
                source,
                p as *const c_void,
                sz,
            )
        };
        if keep == 0 {
            // SAFETY: the callback returned 0, so the payload is still ours.
            drop(unsafe { Payload::from_raw(p, sz) });
        }
    }
}

/// Sets (or with a NULL `cb` clears) the service's message handler.
///
/// # Safety
/// `context` live; `cb` NULL or a function valid for the life of the service.
#[no_mangle]
pub unsafe extern "C" fn skynet_callback(
    context: *mut skynet_context,
    ud: *mut c_void,
    cb: skynet_cb,
) {
    guard("skynet_callback", (), || {
        // SAFETY: per the contract above.
        let Some(ctx) = (unsafe { super::context(context) }) else {
            return;
        };
        let cb =
            cb.map(|cb| Box::new(CCallback { cb, ud }) as Box<dyn skynet_core::server::Callback>);
        ctx.set_callback(cb);
    })
}

/// The handle of the service being dispatched on this thread.
#[no_mangle]
pub extern "C" fn skynet_current_handle() -> u32 {
    current_handle()
}

/// Centiseconds since start plus the start's wall-clock fraction.
#[no_mangle]
pub extern "C" fn skynet_now() -> u64 {
    try_node().map_or(0, |n| n.timer.now())
}

/// Prints the C memory charged to the current service to stderr (`(nil)` for none).
///
/// # Safety
/// `info` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_debug_memory(info: *const c_char) {
    guard("skynet_debug_memory", (), || {
        // SAFETY: per the contract above.
        let info = unsafe { cstr(info) }.unwrap_or_default();
        let handle = current_handle();
        let bytes = skynet_core::memory::accounting().map_or(0, |a| a.service(handle));
        if bytes == 0 {
            eprintln!("[:{handle:08x}] {info} (nil)");
        } else {
            eprintln!("[:{handle:08x}] {info} {bytes:#x}");
        }
    })
}
