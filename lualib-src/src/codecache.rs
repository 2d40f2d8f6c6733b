//! The code cache (`skynet.codecache`): Lua files compiled once per process.
//!
//! The embedded Lua carries our extension (lualib-src/luapatch): a file is compiled once in the
//! cache's own Lua state, its function prototypes are made shared (`lua_sharefunction`), and
//! every VM that loads the file gets a new closure of the shared prototype
//! (`lua_clonefunction`): a VM allocates only closures and upvalues for cached code. The cache
//! serves the loader, `loadfile` and `require` (snlua installs [`install`]).
//!
//! Per-VM mode (`mode([m])`; `mode()` answers the mode, `mode(m)` sets it and answers nothing,
//! as upstream): "ON" (default) uses the cache and fills it, "EXIST" only uses what is there,
//! "OFF" always reads the source. `clear()` empties the cache, so edited files
//! are read again (as upstream's hot-fix flow expects). Shared prototypes are never freed:
//! closures made before a `clear` keep running the old code, and each cleared version of a
//! file stays in memory until the process exits.

use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, to_bytes, CFunction};
use ffi::lua_State;
use std::ffi::{c_char, c_int, CStr};

mod shared;
use shared::{clear as clear_cache, load_cached};

const MODE_KEY: &CStr = c"skynet.codecache.mode";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Exist,
    On,
}

/// The VM's mode (default ON).
unsafe fn mode_of(l: *mut lua_State) -> Mode {
    // SAFETY: valid state.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, MODE_KEY.as_ptr());
        let m = match to_bytes(l, -1) {
            Some(b"OFF") => Mode::Off,
            Some(b"EXIST") => Mode::Exist,
            _ => Mode::On,
        };
        ffi::lua_pop(l, 1);
        m
    }
}

/// `luaL_loadfilex` through the cache: pushes the chunk (or an error message) and returns the
/// load status.
///
/// # Safety
/// `l` is a valid state; `filename` a C string.
pub unsafe fn load_file(l: *mut lua_State, filename: &CStr, mode: *const c_char) -> c_int {
    // SAFETY: valid state.
    let vm_mode = unsafe { mode_of(l) };
    if vm_mode == Mode::Off {
        // SAFETY: valid state and C strings.
        return unsafe { ffi::luaL_loadfilex(l, filename.as_ptr(), mode) };
    }
    // SAFETY: valid state.
    let vm = unsafe { crate::vm::Vm::of(l) };
    let before = vm.map_or(0, |v| v.memory());
    // SAFETY: valid state and C string.
    let status = unsafe { load_cached(l, filename, mode, vm_mode) };
    if let (Some(vm), ffi::LUA_OK) = (vm, status) {
        vm.add_code(vm.memory().saturating_sub(before));
    }
    status
}

/// Replacement for the base library's `loadfile(filename [, mode [, env]])`.
#[lua_function]
unsafe extern "C-unwind" fn loadfile(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the raising checks run before anything is owned.
    unsafe {
        let fname = ffi::luaL_optlstring(l, 1, std::ptr::null(), std::ptr::null_mut());
        let mode = ffi::luaL_optlstring(l, 2, std::ptr::null(), std::ptr::null_mut());
        let env = if ffi::lua_type(l, 3) != ffi::LUA_TNONE {
            3
        } else {
            0
        };
        let status = if fname.is_null() {
            ffi::luaL_loadfilex(l, fname, mode)
        } else {
            load_file(l, CStr::from_ptr(fname), mode)
        };
        if status == ffi::LUA_OK {
            if env != 0 {
                ffi::lua_pushvalue(l, env);
                if ffi::lua_setupvalue(l, -2, 1).is_null() {
                    ffi::lua_pop(l, 1);
                }
            }
            1
        } else {
            ffi::lua_pushnil(l);
            ffi::lua_insert(l, -2);
            2
        }
    }
}

/// `package.searchers[2]` through the cache: finds `name` on `package.path` (upvalue 1 is
/// the package table) and loads it.
#[lua_function]
unsafe extern "C-unwind" fn search_lua(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; raising calls happen while nothing of ours is alive.
    unsafe {
        let name = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"path".as_ptr());
        let path = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
        if path.is_null() {
            return ffi::luaL_error(l, c"'package.path' must be a string".as_ptr());
        }
        ffi::lua_getfield(l, ffi::lua_upvalueindex(1), c"searchpath".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushvalue(l, -3);
        ffi::lua_call(l, 2, 2);
        if ffi::lua_type(l, -2) != ffi::LUA_TSTRING {
            return 1; // the "no file ..." message
        }
        ffi::lua_pop(l, 1);
        let filename = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
        if load_file(l, CStr::from_ptr(filename), std::ptr::null()) == ffi::LUA_OK {
            ffi::lua_pushvalue(l, -2);
            2
        } else {
            ffi::luaL_error(
                l,
                c"error loading module '%s' from file '%s':\n\t%s".as_ptr(),
                name,
                filename,
                ffi::lua_tolstring(l, -1, std::ptr::null_mut()),
            )
        }
    }
}

/// Installs the cached `loadfile` and the cached Lua-file searcher of `require`.
///
/// # Safety
/// `l` is a valid state with the base and package libraries open.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: valid state with `package` loaded.
    unsafe {
        ffi::lua_pushcfunction(l, loadfile);
        ffi::lua_setglobal(l, c"loadfile".as_ptr());
        ffi::lua_getglobal(l, c"package".as_ptr());
        ffi::lua_getfield(l, -1, c"searchers".as_ptr());
        ffi::lua_pushvalue(l, -2);
        ffi::lua_pushcclosure(l, search_lua, 1);
        ffi::lua_rawseti(l, -2, 2);
        ffi::lua_pop(l, 2);
    }
}

#[lua_function]
unsafe extern "C-unwind" fn clear(_l: *mut lua_State) -> c_int {
    clear_cache();
    0
}

#[lua_function]
unsafe extern "C-unwind" fn mode(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if ffi::lua_type(l, 1) > ffi::LUA_TNIL {
            const MODES: [*const c_char; 4] = [
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
        let name = match mode_of(l) {
            Mode::Off => c"OFF",
            Mode::Exist => c"EXIST",
            Mode::On => c"ON",
        };
        ffi::lua_pushstring(l, name.as_ptr());
    }
    1
}

/// `require "skynet.codecache"`: {clear, mode, loadfile}.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_codecache(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 3] =
        [(c"clear", clear), (c"mode", mode), (c"loadfile", loadfile)];
    // SAFETY: valid state.
    unsafe { new_lib(l, &FUNCS) };
    1
}
