//! Small helpers over Lua's C API.
//!
//! Lua raises errors with `longjmp`, which skips Rust frames without running destructors. The
//! rule every C function in this crate follows: call raising API functions only while no Rust
//! value with a destructor is alive in the frames between the Lua call and the raise, and raise
//! our own errors through [`raise`], which frees the message before jumping.
//!
//! # Panics
//! A Rust panic must never unwind through Lua's C frames: it would skip Lua's own bookkeeping
//! (call info, `nCcalls`, open upvalues) and leave the VM inconsistent while the service keeps
//! running. Every Lua C function of this crate is therefore declared with `#[lua_function]`,
//! which runs its body under [`guard`]: a panic becomes a Lua error ("name: internal error:
//! message", with the caller's position) raised after the payload is dropped. A test checks that
//! no C function in the crate lacks the attribute. Other callbacks Lua makes (hooks, writers)
//! catch panics themselves; the allocator is `extern "C"`, where a panic aborts the process with
//! its message printed.
//!
//! A Lua error raised inside a guarded body `longjmp`s over the guard's `catch_unwind` frame as
//! it does over the body's own frames; that frame owns nothing, so nothing is skipped.

use ffi::lua_State;

/// The Lua C API (mlua's declarations) and the entry points our embedded Lua adds.
pub mod ffi {
    pub use mlua::ffi::*;
    #[cfg(feature = "embedded")]
    use std::ffi::{c_int, c_void};

    unsafe extern "C-unwind" {
        /// Lua 5.4.6+; mlua declares it only for its own vendored build.
        #[cfg(feature = "lua54")]
        pub fn lua_closethread(l: *mut lua_State, from: *mut lua_State) -> c_int;
    }

    // Our extension of the embedded Lua (lualib-src/luapatch/lshare.c).
    #[cfg(feature = "embedded")]
    unsafe extern "C-unwind" {
        /// Makes the prototype of the Lua function at `index` (a relative index) and
        /// everything it owns shared by all states of the process, for good.
        pub fn lua_sharefunction(l: *mut lua_State, index: c_int);
        /// Pushes a new closure of the shared function `fp` (`lua_topointer` of it in its
        /// own state) with fresh upvalues, the first one set to the globals.
        pub fn lua_clonefunction(l: *mut lua_State, fp: *const c_void);
    }
}
pub use skynet_lua_macros::lua_function;
use std::ffi::{c_char, c_int, CStr};

/// A C function callable from Lua.
pub type CFunction = unsafe extern "C-unwind" fn(*mut lua_State) -> c_int;

/// Runs the Lua C function `f` on `l`, turning a panic into a Lua error (see the module doc).
/// Used by `#[lua_function]`, rarely directly. Inlined so that `f` is a direct call: every Lua
/// C function (skynet.core.send among them) goes through here.
///
/// # Safety
/// `l` is the state Lua called the function with; `f` may be called with it.
#[inline(always)]
pub unsafe fn guard(l: *mut lua_State, name: &'static str, f: CFunction) -> c_int {
    // SAFETY: forwarded from the caller.
    match std::panic::catch_unwind(|| unsafe { f(l) }) {
        Ok(n) => n,
        // SAFETY: forwarded from the caller.
        Err(payload) => unsafe { raise_panic(l, name, payload) },
    }
}

/// The panic branch of [`guard`], out of line: the guarded functions (every call of
/// skynet.core.send) then save no registers for it.
///
/// # Safety
/// As [`guard`]; called with nothing of the guarded function alive.
#[cold]
#[inline(never)]
unsafe fn raise_panic(
    l: *mut lua_State,
    name: &'static str,
    payload: Box<dyn std::any::Any + Send>,
) -> ! {
    let msg = format!("{name}: internal error: {}", panic_message(&*payload));
    drop(payload);
    // SAFETY: we are in a Lua C function (so inside a protected call or Lua's own error
    // handler); nothing with a destructor is alive.
    unsafe { raise_where(l, msg) }
}

/// The text of a panic payload (`panic!` with a message gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

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

/// Monotonic nanoseconds (CLOCK_MONOTONIC, as upstream's `skynet.hpc`).
pub fn monotonic_ns() -> i64 {
    skynet_core::server::monotonic_ns() as i64
}

#[cfg(test)]
mod tests {
    use super::{ffi, lua_function, push_bytes, CFunction};
    use crate::testlua::{new_state, run};
    use ffi::lua_State;
    use std::ffi::{c_int, CStr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPPED: AtomicUsize = AtomicUsize::new(0);

    struct CountDrop;
    impl Drop for CountDrop {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `boom(s)`: pushes three values, holds a value with a destructor and a heap buffer, then
    /// panics when `s` is "panic"; otherwise returns `s` reversed.
    #[lua_function]
    unsafe extern "C-unwind" fn boom(l: *mut lua_State) -> c_int {
        // SAFETY: test function called by Lua with one argument.
        unsafe {
            let s = super::to_bytes(l, 1).unwrap_or_default().to_vec();
            ffi::lua_pushinteger(l, 1);
            ffi::lua_pushinteger(l, 2);
            ffi::lua_pushinteger(l, 3);
            let _guard = CountDrop;
            if s == b"panic" {
                panic!("provoked panic with {} bytes held", s.len());
            }
            let r: Vec<u8> = s.iter().rev().copied().collect();
            push_bytes(l, &r);
        }
        1
    }

    const EXTRA: &[(&CStr, CFunction)] = &[(c"boom", boom)];

    #[test]
    fn a_panic_becomes_a_lua_error_and_the_vm_keeps_working() {
        let st = new_state(&[], EXTRA);
        let before = DROPPED.load(Ordering::SeqCst);
        run(
            &st,
            r#"
            local ok, err = pcall(boom, "panic")
            assert(not ok)
            assert(err:find("boom: internal error: provoked panic with 5 bytes held", 1, true), err)
            -- the position of the Lua caller, as luaL_error gives
            local ok1, err1 = pcall(function() return boom("panic") end)
            assert(not ok1 and err1:find("^test:%d+: boom: internal error"), err1)
            assert(boom("abc") == "cba")
            -- many times, from coroutines and nested protected calls
            for i = 1, 200 do
                local co = coroutine.wrap(function()
                    local ok2, e2 = pcall(boom, "panic")
                    coroutine.yield(ok2, e2)
                    return boom("xy")
                end)
                local ok2, e2 = co()
                assert(not ok2 and e2:find("internal error", 1, true))
                assert(co() == "yx")
            end
            -- an error raised through xpcall's handler path still reaches the handler
            local ok3, e3 = xpcall(boom, function(m) return "handled: " .. m end, "panic")
            assert(not ok3 and e3:find("^handled: "), e3)
            collectgarbage()
            assert(select('#', boom("z")) == 1)
            "#,
        )
        .unwrap();
        // The destructors of values alive at the panic ran: 1 + 200 + 1 panics, plus the calls
        // that returned normally.
        assert!(DROPPED.load(Ordering::SeqCst) - before >= 202 + 202);
        // The state's stack is balanced after all of it.
        // SAFETY: valid state.
        assert_eq!(unsafe { ffi::lua_gettop(st.0) }, 0);
    }

    /// Every C function Lua can call in this crate carries `#[lua_function]`.
    #[test]
    fn every_lua_c_function_is_guarded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        let mut checked = 0;
        let mut missing = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    let t = line.trim_start();
                    let is_cfn = t.contains("extern \"C-unwind\" fn ")
                        && t.contains("lua_State) -> c_int")
                        && !t.starts_with("//");
                    if !is_cfn {
                        continue;
                    }
                    checked += 1;
                    if i == 0 || lines[i - 1].trim() != "#[lua_function]" {
                        missing.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
        assert!(checked > 90, "only {checked} C functions found");
        assert!(missing.is_empty(), "unguarded Lua C functions: {missing:?}");
    }
}
