//! Lua 5.5: the cache holds each file's compiled chunk (bytecode) and loads undump it.

use super::Mode;
use crate::lua::ffi;
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, OnceLock};

/// File name -> bytecode.
type Cache = Mutex<HashMap<Vec<u8>, Arc<Vec<u8>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(super) fn clear() {
    cache().lock().clear();
}

unsafe extern "C-unwind" fn write_chunk(
    _l: *mut lua_State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    // A panic (out of memory while growing) must not unwind into lua_dump: report a write
    // error instead, which makes the dump fail cleanly.
    std::panic::catch_unwind(|| {
        // SAFETY: ud is the Vec passed by `load_file`; p has sz bytes.
        unsafe {
            let out = &mut *(ud as *mut Vec<u8>);
            out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, sz));
        }
    })
    .map_or(1, |()| 0)
}

/// The cache lookup and fill behind [`load_file`] (mode ON or EXIST).
pub(super) unsafe fn load_cached(
    l: *mut lua_State,
    filename: &CStr,
    mode: *const c_char,
    vm_mode: Mode,
) -> c_int {
    let key = filename.to_bytes();
    let hit = cache().lock().get(key).cloned();
    if let Some(code) = hit {
        // SAFETY: the bytecode was produced by lua_dump of this same Lua build.
        let status = unsafe {
            ffi::luaL_loadbufferx(
                l,
                code.as_ptr() as *const c_char,
                code.len(),
                filename.as_ptr(),
                c"b".as_ptr(),
            )
        };
        if status == ffi::LUA_OK {
            return status;
        }
        // SAFETY: pop the error and fall back to the source.
        unsafe { ffi::lua_pop(l, 1) };
    }
    // SAFETY: valid state and C strings.
    let status = unsafe { ffi::luaL_loadfilex(l, filename.as_ptr(), mode) };
    if status == ffi::LUA_OK && vm_mode == Mode::On {
        let mut code = Vec::new();
        // SAFETY: the chunk is on the top of the stack; the writer appends to `code`.
        let dumped =
            unsafe { ffi::lua_dump(l, write_chunk, &mut code as *mut Vec<u8> as *mut c_void, 0) };
        if dumped == 0 && !code.is_empty() {
            cache().lock().insert(key.to_vec(), Arc::new(code));
        }
    }
    status
}
