//! `skynet.codecache`: `mode([m])` per VM ("ON", "EXIST", "OFF"; `mode()` answers the mode,
//! `mode(m)` sets it and answers nothing), `clear()`, `loadfile`.
//!
//! The mode is recorded (and answered) per VM; compiled chunks are not shared across VMs yet,
//! so every mode loads from source.

use crate::lua::{ffi, new_lib, CFunction};
use ffi::lua_State;
use std::ffi::{c_int, CStr};

const MODE_KEY: &CStr = c"skynet.codecache.mode";

unsafe extern "C-unwind" fn clear(_l: *mut lua_State) -> c_int {
    0
}

unsafe extern "C-unwind" fn mode(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if ffi::lua_type(l, 1) > ffi::LUA_TNIL {
            const MODES: [*const std::ffi::c_char; 4] = [
                c"OFF".as_ptr(),
                c"EXIST".as_ptr(),
                c"ON".as_ptr(),
                std::ptr::null(),
            ];
            let m = ffi::luaL_checkoption(l, 1, std::ptr::null(), MODES.as_ptr());
            ffi::lua_pushstring(l, MODES[m as usize]);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
            return 0; // setting answers nothing, as upstream
        }
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, MODE_KEY.as_ptr()) != ffi::LUA_TSTRING {
            ffi::lua_pop(l, 1);
            ffi::lua_pushstring(l, c"ON".as_ptr());
        }
    }
    1
}

/// `require "skynet.codecache"` (needs the base library's `loadfile`).
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn luaopen_skynet_codecache(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 2] = [(c"clear", clear), (c"mode", mode)];
    // SAFETY: valid state.
    unsafe {
        new_lib(l, &FUNCS);
        ffi::lua_getglobal(l, c"loadfile".as_ptr());
        ffi::lua_setfield(l, -2, c"loadfile".as_ptr());
    }
    1
}
