//! lua-seri's decoder (skynet.unpack) on arbitrary bytes, through the real Lua C function in
//! one Lua state per process: no panic, only Lua errors for bad streams, and whatever decodes
//! packs back into a stream that decodes to as many values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_lualib::lua::ffi::{self, lua_State};
use skynet_lualib::seri::{packstring, unpack};
use std::ffi::c_char;

/// Values to re-pack at most: packstring takes them as arguments, which needs stack room.
const REPACK_MAX: i32 = 200;

thread_local! {
    /// The fuzzer's Lua state, made once (a fresh state per input would dominate the run time).
    static STATE: *mut lua_State = {
        // SAFETY: luaL_newstate has no precondition; a NULL result is checked below.
        let l = unsafe { ffi::luaL_newstate() };
        assert!(!l.is_null(), "luaL_newstate failed");
        l
    };
}

/// Calls `f` on the `nargs` values on top of the stack in protected mode; returns the number of
/// results, or `None` (with the stack back at its height before the arguments) on a Lua error.
///
/// # Safety
/// `l` is a valid state with `nargs` values on top and room for one more.
unsafe fn pcall(l: *mut lua_State, f: ffi::lua_CFunction, nargs: i32) -> Option<i32> {
    // SAFETY: caller contract; the function goes below its arguments.
    unsafe {
        let base = ffi::lua_gettop(l) - nargs;
        ffi::lua_pushcfunction(l, f);
        ffi::lua_insert(l, base + 1);
        if ffi::lua_pcall(l, nargs, ffi::LUA_MULTRET, 0) != ffi::LUA_OK {
            // The message must be a string (the decoder raises plain messages).
            assert_eq!(ffi::lua_type(l, -1), ffi::LUA_TSTRING);
            ffi::lua_settop(l, base);
            return None;
        }
        Some(ffi::lua_gettop(l) - base)
    }
}

fuzz_target!(|data: &[u8]| {
    STATE.with(|&l| {
        // SAFETY: `l` is this thread's state with an empty stack; every path below resets the
        // stack to empty before returning.
        unsafe {
            ffi::lua_settop(l, 0);
            ffi::lua_pushlstring(l, data.as_ptr().cast::<c_char>(), data.len());
            if let Some(n) = pcall(l, unpack, 1) {
                if n <= REPACK_MAX && ffi::lua_checkstack(l, 8) != 0 {
                    // Re-encode what was decoded; a pack error (e.g. nesting that only the
                    // encoder limits) is allowed, but a packed stream must decode again.
                    if let Some(1) = pcall(l, packstring, n) {
                        assert_eq!(
                            pcall(l, unpack, 1),
                            Some(n),
                            "re-packed stream did not decode"
                        );
                    }
                }
            }
            ffi::lua_settop(l, 0);
        }
    });
});
