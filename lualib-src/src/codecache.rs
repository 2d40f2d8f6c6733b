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
//!
//! Under `load_manifest` (see `skynet_core::manifest`) every source this module compiles is
//! read into memory by the loading VM, checked against the manifest and compiled from those
//! bytes (in the cache's state when it is cached); `dofile` is
//! replaced too, and `loadfile()` from stdin is refused. Lua C modules (`package.loadlib` and
//! the C searchers of `require`) are checked before Lua's own loader opens them.

use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, push_bytes, to_bytes, CFunction};
use ffi::lua_State;
use nix::errno::Errno;
use skynet_core::manifest::{self, Manifest, Refusal};
use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

mod shared;
use shared::{clear as clear_cache, load_cached};

/// Sets the process's code cache up now instead of at the first load (what a custom `main`
/// calling `luaL_initcodecache` expects). Calling it again, or after files were cached, does
/// nothing.
pub fn init() {
    shared::init();
}

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
        return unsafe { load_source(l, filename, mode) };
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

/// Compiles `filename` from its source: `luaL_loadfilex`, or under `load_manifest` the file's
/// bytes once they match the manifest. The cache only ever holds chunks compiled here, so a
/// cache hit needs no hashing: each file is hashed once per cache fill (every load in mode OFF,
/// which reads the source every time).
///
/// # Safety
/// `l` is a valid state.
unsafe fn load_source(l: *mut lua_State, filename: &CStr, mode: *const c_char) -> c_int {
    match manifest::current() {
        // SAFETY: valid state and C strings.
        None => unsafe { ffi::luaL_loadfilex(l, filename.as_ptr(), mode) },
        // SAFETY: as above.
        Some(m) => unsafe { load_verified(l, m, filename, mode) },
    }
}

/// `luaL_loadfilex` over the verified bytes of `filename` (see [`read_verified`]).
unsafe fn load_verified(
    l: *mut lua_State,
    m: &Manifest,
    filename: &CStr,
    mode: *const c_char,
) -> c_int {
    // SAFETY: valid state.
    match unsafe { read_verified(l, m, filename) } {
        // SAFETY: valid state.
        Ok(content) => unsafe { load_bytes(l, filename, &content, mode) },
        Err(status) => status,
    }
}

/// The bytes of `filename` once they match the manifest. A file that cannot be opened gives
/// Lua's own "cannot open" error (the loader's template search expects it); one the manifest
/// refuses is logged with the VM's service as the source, and its refusal line is the error.
/// On error the message is pushed and the load status returned.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
unsafe fn read_verified(
    l: *mut lua_State,
    m: &Manifest,
    filename: &CStr,
) -> Result<Vec<u8>, c_int> {
    let path = Path::new(OsStr::from_bytes(filename.to_bytes()));
    let content = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) => {
            let why = e
                .raw_os_error()
                .map_or_else(|| e.to_string(), |n| Errno::from_raw(n).desc().to_owned());
            let msg = format!("cannot open {}: {why}", path.display());
            // SAFETY: valid state.
            unsafe { push_bytes(l, msg.as_bytes()) };
            return Err(ffi::LUA_ERRFILE);
        }
    };
    if let Err(why) = m.check(path, &content) {
        // SAFETY: valid state.
        unsafe { refuse(l, m, "Lua file", path, &why) };
        return Err(ffi::LUA_ERRFILE);
    }
    Ok(content)
}

/// Loads a file's bytes as `luaL_loadfilex` would have read them (BOM and `#` line skipped,
/// chunk name `@filename`).
///
/// # Safety
/// `l` is a valid state.
unsafe fn load_bytes(
    l: *mut lua_State,
    filename: &CStr,
    content: &[u8],
    mode: *const c_char,
) -> c_int {
    let code = skip_prefix(content);
    let mut chunkname = Vec::with_capacity(filename.to_bytes().len() + 2);
    chunkname.push(b'@');
    chunkname.extend_from_slice(filename.to_bytes_with_nul());
    // SAFETY: valid state; `code` and the NUL-terminated chunk name outlive the (protected) call.
    unsafe {
        ffi::luaL_loadbufferx(
            l,
            code.as_ptr() as *const c_char,
            code.len(),
            chunkname.as_ptr() as *const c_char,
            mode,
        )
    }
}

/// Logs the refusal of `path` (with the VM's service as the source) and pushes the line.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
unsafe fn refuse(l: *mut lua_State, m: &Manifest, what: &str, path: &Path, why: &Refusal) {
    let line = m.refusal_line(what, path, why);
    // SAFETY: valid state.
    let handle = unsafe { crate::vm::Vm::of(l) }.map_or(0, |vm| vm.handle());
    if let Some(n) = skynet_core::try_node() {
        n.log(handle, &line);
    }
    // SAFETY: valid state.
    unsafe { push_bytes(l, line.as_bytes()) };
}

/// Checks the Lua C module file `filename` (when it exists: a missing one fails in Lua's own
/// loader as usual). On refusal the line is logged and pushed, and false returned.
///
/// # Safety
/// `l` is a valid state with a free stack slot.
unsafe fn c_module_allowed(l: *mut lua_State, m: &Manifest, filename: &CStr) -> bool {
    let path = Path::new(OsStr::from_bytes(filename.to_bytes()));
    if !path.exists() {
        return true;
    }
    match m.read_checked(path) {
        Ok(_) => true,
        Err(why) => {
            // SAFETY: per the contract.
            unsafe { refuse(l, m, "Lua C module", path, &why) };
            false
        }
    }
}

/// `package.loadlib(path, funcname)` under `load_manifest`: an existing file must match the
/// manifest (else nil, the refusal line, "open", as loadlib fails); upvalue 1 is the original.
#[lua_function]
unsafe extern "C-unwind" fn loadlib_checked(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; nothing of ours is alive when Lua may raise.
    unsafe {
        let path = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        ffi::luaL_checklstring(l, 2, std::ptr::null_mut());
        ffi::lua_settop(l, 2);
        if let Some(m) = manifest::current() {
            if !c_module_allowed(l, m, CStr::from_ptr(path)) {
                ffi::lua_pushnil(l);
                ffi::lua_insert(l, -2);
                ffi::lua_pushstring(l, c"open".as_ptr());
                return 3;
            }
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, 2, ffi::LUA_MULTRET);
        ffi::lua_gettop(l)
    }
}

/// `package.searchers[3]` and `[4]` under `load_manifest`: finds the file the original searcher
/// (upvalue 1) will open on `package.cpath` (upvalue 2 is the package table; upvalue 3 is true
/// for the all-in-one searcher, which looks for the name's first component) and checks it
/// before letting the original load it.
#[lua_function]
unsafe extern "C-unwind" fn search_c_checked(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; raising calls happen while nothing of ours is alive.
    unsafe {
        let name = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        ffi::lua_settop(l, 1);
        let root = ffi::lua_toboolean(l, ffi::lua_upvalueindex(3)) != 0;
        let full = CStr::from_ptr(name).to_bytes();
        let lookup = match (root, full.iter().position(|&b| b == b'.')) {
            (false, _) => full.len(),
            (true, Some(dot)) => dot,
            (true, None) => 0, // the original finds nothing to load either
        };
        if lookup > 0 {
            if let Some(m) = manifest::current() {
                ffi::lua_getfield(l, ffi::lua_upvalueindex(2), c"searchpath".as_ptr());
                ffi::lua_pushlstring(l, name, lookup);
                ffi::lua_getfield(l, ffi::lua_upvalueindex(2), c"cpath".as_ptr());
                ffi::lua_call(l, 2, 1);
                let file = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
                if !file.is_null() && !c_module_allowed(l, m, CStr::from_ptr(file)) {
                    return ffi::luaL_error(
                        l,
                        c"error loading module '%s' from file '%s':\n\t%s".as_ptr(),
                        name,
                        file,
                        ffi::lua_tolstring(l, -1, std::ptr::null_mut()),
                    );
                }
                ffi::lua_settop(l, 1);
            }
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, 1, ffi::LUA_MULTRET);
        ffi::lua_gettop(l)
    }
}

/// What `luaL_loadfilex` skips before compiling: a UTF-8 byte-order mark, and a first line
/// starting with `#` (its newline stays, so line numbers do not move).
fn skip_prefix(content: &[u8]) -> &[u8] {
    let c = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    if c.first() == Some(&b'#') {
        let nl = c.iter().position(|&b| b == b'\n').unwrap_or(c.len());
        &c[nl..]
    } else {
        c
    }
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
            if manifest::current().is_some() {
                ffi::lua_pushstring(
                    l,
                    c"load_manifest: refused loading code from stdin".as_ptr(),
                );
                ffi::LUA_ERRFILE
            } else {
                ffi::luaL_loadfilex(l, fname, mode)
            }
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

/// Replacement for the base library's `dofile([filename])` under `load_manifest`: loads
/// through [`load_file`], so the file is checked too.
#[lua_function]
unsafe extern "C-unwind" fn dofile(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; nothing of ours is alive when Lua may raise.
    unsafe {
        let fname = ffi::luaL_optlstring(l, 1, std::ptr::null(), std::ptr::null_mut());
        ffi::lua_settop(l, 1);
        let status = if fname.is_null() {
            ffi::lua_pushstring(
                l,
                c"load_manifest: refused loading code from stdin".as_ptr(),
            );
            ffi::LUA_ERRFILE
        } else {
            load_file(l, CStr::from_ptr(fname), std::ptr::null())
        };
        if status != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_call(l, 0, ffi::LUA_MULTRET);
        ffi::lua_gettop(l) - 1
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
        if manifest::current().is_some() {
            ffi::lua_pushcfunction(l, dofile);
            ffi::lua_setglobal(l, c"dofile".as_ptr());
            // package.loadlib and the two C searchers check the file first
            ffi::lua_getglobal(l, c"package".as_ptr());
            ffi::lua_getfield(l, -1, c"loadlib".as_ptr());
            ffi::lua_pushcclosure(l, loadlib_checked, 1);
            ffi::lua_setfield(l, -2, c"loadlib".as_ptr());
            ffi::lua_getfield(l, -1, c"searchers".as_ptr());
            for (i, root) in [(3, false), (4, true)] {
                ffi::lua_rawgeti(l, -1, i);
                ffi::lua_pushvalue(l, -3);
                ffi::lua_pushboolean(l, c_int::from(root));
                ffi::lua_pushcclosure(l, search_c_checked, 3);
                ffi::lua_rawseti(l, -2, i);
            }
            ffi::lua_pop(l, 2);
        }
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

#[cfg(test)]
mod tests {
    use super::skip_prefix;

    #[test]
    fn verified_source_skips_what_loadfile_skips() {
        assert_eq!(skip_prefix(b"return 1"), b"return 1");
        assert_eq!(skip_prefix(b"\xEF\xBB\xBFreturn 1"), b"return 1");
        // the first line's newline stays, so line numbers do not move
        assert_eq!(skip_prefix(b"#!/usr/bin/lua\nreturn 1"), b"\nreturn 1");
        assert_eq!(skip_prefix(b"\xEF\xBB\xBF# x\r\nreturn 1"), b"\nreturn 1");
        assert_eq!(skip_prefix(b"# only"), b"");
        assert_eq!(skip_prefix(b" #x\n"), b" #x\n");
    }
}
