//! Small helpers over Lua's C API.
//!
//! Lua raises errors with `longjmp`, which skips Rust frames without running destructors. The
//! rule every C function in this crate follows: call raising API functions only while no Rust
//! value with a destructor is alive in the frames between the Lua call and the raise, and raise
//! our own errors through [`raise`], which frees the message before jumping.

use ffi::lua_State;
pub use mlua::ffi;
use std::ffi::{c_char, c_int, CStr};

/// A C function callable from Lua.
pub type CFunction = unsafe extern "C-unwind" fn(*mut lua_State) -> c_int;

/// Pushes bytes as a Lua string.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: b is a valid slice; Lua copies it.
    unsafe { ffi::lua_pushlstring(l, b.as_ptr() as *const c_char, b.len()) };
}

/// Raises a Lua error with `msg` (freed before the jump).
///
/// # Safety
/// `l` is a valid state inside a protected call; no Rust destructor is pending in the caller's
/// frames (see the module doc).
pub unsafe fn raise(l: *mut lua_State, msg: String) -> ! {
    // SAFETY: valid state; the message is copied into Lua before we drop ours.
    unsafe { push_bytes(l, msg.as_bytes()) };
    drop(msg);
    // SAFETY: an error value is on the stack.
    unsafe { ffi::lua_error(l) }
}

/// Raises a Lua error with `msg` prefixed by the calling Lua code's position (`chunk:line: `),
/// exactly as `luaL_error` does; `msg` is freed before the jump.
///
/// # Safety
/// As [`raise`].
pub unsafe fn raise_where(l: *mut lua_State, msg: String) -> ! {
    // SAFETY: valid state; the message is copied into Lua before we drop ours; luaL_where and
    // lua_concat only raise memory errors, with nothing of ours left alive.
    unsafe {
        push_bytes(l, msg.as_bytes());
        drop(msg);
        ffi::luaL_where(l, 1);
        ffi::lua_rotate(l, -2, 1);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

/// The bytes of the string (or number, converted in place) at `idx`, if it is one.
///
/// # Safety
/// `l` is valid; the slice lives as long as the value stays on the stack.
pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    // SAFETY: valid state and index.
    let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
    if p.is_null() {
        None
    } else {
        // SAFETY: Lua guarantees `len` bytes at p while the value is on the stack.
        Some(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
    }
}

/// The type name of the value at `idx`.
///
/// # Safety
/// `l` is valid.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: valid state; lua_typename returns a static C string.
    unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))) }
        .to_string_lossy()
        .into_owned()
}

/// Registers `funcs` into the table on the top of the stack, each closure sharing the `nup`
/// upvalues below the table (which are popped), like `luaL_setfuncs`.
///
/// # Safety
/// `l` is valid; the stack holds the table and then `nup` values.
pub unsafe fn set_funcs(l: *mut lua_State, funcs: &[(&CStr, CFunction)], nup: c_int) {
    // SAFETY: valid state; the stack layout is as documented.
    unsafe {
        ffi::luaL_checkstack(l, nup, c"too many upvalues".as_ptr());
        for (name, f) in funcs {
            for _ in 0..nup {
                ffi::lua_pushvalue(l, -nup);
            }
            ffi::lua_pushcclosure(l, *f, nup);
            ffi::lua_setfield(l, -(nup + 2), name.as_ptr());
        }
        ffi::lua_pop(l, nup);
    }
}

/// Creates a table holding `funcs` (no upvalues), like `luaL_newlib`.
///
/// # Safety
/// `l` is valid.
pub unsafe fn new_lib(l: *mut lua_State, funcs: &[(&CStr, CFunction)]) {
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, funcs.len() as c_int);
        set_funcs(l, funcs, 0);
    }
}

/// Monotonic nanoseconds.
pub fn monotonic_ns() -> i64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    // Any fixed origin will do: callers only take differences.
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as i64 + 1_000_000_000
}
