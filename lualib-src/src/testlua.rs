//! Test support: a raw Lua state with helper C functions for building socket messages and
//! inspecting `malloc` blocks.

use crate::cmem;
use crate::lua::lua_function;
use crate::lua::{ffi, CFunction};
use crate::socket_message::build;
use ffi::lua_State;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

/// Owns a raw Lua state for a test.
pub struct State(pub *mut lua_State);

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: the state was created by luaL_newstate and is closed once.
        unsafe { ffi::lua_close(self.0) };
    }
}

/// `mkdata(fd, str)` → DATA message (a malloc'd copy of str as its buffer), 24.
#[lua_function]
unsafe extern "C-unwind" fn mkdata(l: *mut lua_State) -> c_int {
    // SAFETY: test helper called by Lua.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 2, &mut len);
        let (m, sz) = build::data(fd, std::slice::from_raw_parts(p.cast(), len));
        ffi::lua_pushlightuserdata(l, m);
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
    }
    2
}

/// `mkinline(type, id, ud, [text])` → inline message, size (24 + #text).
#[lua_function]
unsafe extern "C-unwind" fn mkinline(l: *mut lua_State) -> c_int {
    // SAFETY: test helper called by Lua.
    unsafe {
        let ty = ffi::luaL_checkinteger(l, 1) as c_int;
        let id = ffi::luaL_checkinteger(l, 2) as c_int;
        let ud = ffi::luaL_checkinteger(l, 3) as c_int;
        let mut len = 0;
        let p = ffi::luaL_optlstring(l, 4, c"".as_ptr(), &mut len);
        let (m, sz) = build::inline(ty, id, ud, std::slice::from_raw_parts(p.cast(), len));
        ffi::lua_pushlightuserdata(l, m);
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
    }
    2
}

/// `mkheap(type, id, ud, [bytes])` → heap message whose buffer is a malloc'd copy of bytes (NULL
/// if absent), 24.
#[lua_function]
unsafe extern "C-unwind" fn mkheap(l: *mut lua_State) -> c_int {
    // SAFETY: test helper called by Lua.
    unsafe {
        let ty = ffi::luaL_checkinteger(l, 1) as c_int;
        let id = ffi::luaL_checkinteger(l, 2) as c_int;
        let ud = ffi::luaL_checkinteger(l, 3) as c_int;
        let buf = if ffi::lua_isnoneornil(l, 4) != 0 {
            std::ptr::null_mut()
        } else {
            let mut len = 0;
            let p = ffi::luaL_checklstring(l, 4, &mut len);
            cmem::malloc_copy(std::slice::from_raw_parts(p.cast(), len))
        };
        let (m, sz) = build::heap(ty, id, ud, buf);
        ffi::lua_pushlightuserdata(l, m);
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
    }
    2
}

/// `cfree(ptr)`: frees a malloc block (message or buffer).
#[lua_function]
unsafe extern "C-unwind" fn cfree(l: *mut lua_State) -> c_int {
    // SAFETY: test helper; argument 1 is a block from the helpers or the module under test.
    unsafe { cmem::free(ffi::lua_touserdata(l, 1).cast()) };
    0
}

/// `mkbuf(str)` → a malloc'd copy of str (light userdata), its length.
#[lua_function]
unsafe extern "C-unwind" fn mkbuf(l: *mut lua_State) -> c_int {
    // SAFETY: test helper called by Lua.
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        let b = cmem::malloc_copy(std::slice::from_raw_parts(p.cast(), len));
        ffi::lua_pushlightuserdata(l, b.cast());
        ffi::lua_pushinteger(l, len as ffi::lua_Integer);
    }
    2
}

/// `peek(ptr, sz)` → the bytes as a string (not freed).
#[lua_function]
unsafe extern "C-unwind" fn peek(l: *mut lua_State) -> c_int {
    // SAFETY: test helper; the pointer holds sz bytes.
    unsafe {
        let p = ffi::lua_touserdata(l, 1);
        let n = ffi::luaL_checkinteger(l, 2) as usize;
        ffi::lua_pushlstring(l, p.cast::<c_char>(), n);
    }
    1
}

/// `live()` → malloc blocks alive on this thread (allocated through `cmem`).
#[lua_function]
unsafe extern "C-unwind" fn live(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, cmem::live_blocks() as ffi::lua_Integer) };
    1
}

/// A fresh state with the standard libraries, the helpers above, and `extra` globals; each
/// `(name, opener)` in `modules` is opened into a global of that name.
pub fn new_state(modules: &[(&CStr, CFunction)], extra: &[(&CStr, CFunction)]) -> State {
    // SAFETY: fresh state; globals registered with valid C functions and names.
    unsafe {
        let l = ffi::luaL_newstate();
        assert!(!l.is_null());
        ffi::luaL_openlibs(l);
        let helpers: [(&CStr, CFunction); 7] = [
            (c"mkbuf", mkbuf),
            (c"mkdata", mkdata),
            (c"mkinline", mkinline),
            (c"mkheap", mkheap),
            (c"cfree", cfree),
            (c"peek", peek),
            (c"live", live),
        ];
        for (name, f) in helpers.iter().chain(extra) {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setglobal(l, name.as_ptr());
        }
        for (name, open) in modules {
            ffi::lua_pushcfunction(l, *open);
            assert_eq!(ffi::lua_pcall(l, 0, 1, 0), ffi::LUA_OK);
            ffi::lua_setglobal(l, name.as_ptr());
        }
        ffi::lua_pushlightuserdata(l, std::ptr::null_mut::<c_void>());
        ffi::lua_setglobal(l, c"nullptr".as_ptr());
        State(l)
    }
}

/// Runs a chunk; returns its error message, if any.
pub fn run(st: &State, code: &str) -> Result<(), String> {
    let name = CString::new("=test").unwrap();
    // SAFETY: valid state; the buffer outlives the load; the call is protected.
    unsafe {
        let l = st.0;
        let base = ffi::lua_gettop(l);
        let mut rc = ffi::luaL_loadbufferx(
            l,
            code.as_ptr().cast(),
            code.len(),
            name.as_ptr(),
            std::ptr::null(),
        );
        if rc == ffi::LUA_OK {
            rc = ffi::lua_pcall(l, 0, 0, 0);
        }
        let res = if rc == ffi::LUA_OK {
            Ok(())
        } else {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            Err(if p.is_null() {
                "(non-string error)".to_string()
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len)).into_owned()
            })
        };
        ffi::lua_settop(l, base);
        res
    }
}

/// Runs `code` in a fresh state and panics with the Lua error if it fails; then checks that
/// every `malloc` block made on this thread was freed once the state is closed.
pub fn check(modules: &[(&CStr, CFunction)], extra: &[(&CStr, CFunction)], code: &str) {
    let before = cmem::live_blocks();
    let st = new_state(modules, extra);
    if let Err(e) = run(&st, code) {
        panic!("Lua test failed: {e}");
    }
    drop(st);
    assert_eq!(
        cmem::live_blocks(),
        before,
        "malloc blocks leaked or double freed"
    );
}
