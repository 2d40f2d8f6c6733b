//! Files are compiled in the cache's own state and their prototypes shared by every VM of the
//! process (our Lua extension, lualib-src/luapatch/lshare.c).

use super::Mode;
use crate::lua::{ffi, lua_function};
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// The state that compiles cached files, and file name -> the shared function
/// (`lua_topointer` of it in that state).
struct Compiler {
    state: *mut lua_State,
    functions: HashMap<Vec<u8>, usize>,
}

// SAFETY: the state is only used under the mutex, by one thread at a time.
unsafe impl Send for Compiler {}

fn compiler() -> &'static Mutex<Compiler> {
    static COMPILER: OnceLock<Mutex<Compiler>> = OnceLock::new();
    COMPILER.get_or_init(|| {
        // SAFETY: a new state with the default allocator; it is never closed (the shared
        // prototypes it compiled live until the process exits).
        let state = unsafe { ffi::luaL_newstate() };
        assert!(!state.is_null(), "code cache: cannot create its Lua state");
        Mutex::new(Compiler {
            state,
            functions: HashMap::new(),
        })
    })
}

pub(super) fn clear() {
    // The compiled functions stay anchored in the compiler state (see `compile`): a VM may
    // be cloning one of them right now.
    compiler().lock().functions.clear();
}

/// Run protected in the compiler state: loads file (light userdata 1, a C string) with mode
/// (light userdata 2, may be null), shares the function's prototypes, anchors the function
/// for good in the registry and answers its pointer (light userdata).
#[lua_function]
unsafe extern "C-unwind" fn compile(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the arguments are the C strings `compile_shared` pushed.
    unsafe {
        let filename = ffi::lua_touserdata(l, 1) as *const c_char;
        let mode = ffi::lua_touserdata(l, 2) as *const c_char;
        if ffi::luaL_loadfilex(l, filename, mode) != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_sharefunction(l, -1);
        let fp = ffi::lua_topointer(l, -1);
        ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        ffi::lua_pushlightuserdata(l, fp as *mut c_void);
    }
    1
}

/// Run protected in a VM: pushes a new closure of the shared function (light userdata 1).
#[lua_function]
unsafe extern "C-unwind" fn clone(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the argument is a function shared by `compile` and anchored for
    // good in the compiler state.
    unsafe { ffi::lua_clonefunction(l, ffi::lua_touserdata(l, 1)) };
    1
}

/// The shared function of `filename`, compiling it when `fill` and it is not cached yet.
/// `None` when not cached (and not compiled: a compile error is reported by the caller's own
/// load of the file).
fn lookup(filename: &CStr, mode: *const c_char, fill: bool) -> Option<usize> {
    let mut c = compiler().lock();
    if let Some(&fp) = c.functions.get(filename.to_bytes()) {
        return Some(fp);
    }
    if !fill {
        return None;
    }
    let l = c.state;
    // SAFETY: the compiler state is used under the lock; `compile` runs protected, so its
    // errors (syntax, I/O, memory) come back as a status.
    let fp = unsafe {
        let top = ffi::lua_gettop(l);
        ffi::lua_pushcfunction(l, compile);
        ffi::lua_pushlightuserdata(l, filename.as_ptr() as *mut c_void);
        ffi::lua_pushlightuserdata(l, mode as *mut c_void);
        let fp = if ffi::lua_pcall(l, 2, 1, 0) == ffi::LUA_OK {
            Some(ffi::lua_touserdata(l, -1) as usize)
        } else {
            None
        };
        ffi::lua_settop(l, top);
        fp
    }?;
    c.functions.insert(filename.to_bytes().to_vec(), fp);
    Some(fp)
}

/// The cache lookup and fill behind `load_file` (mode ON or EXIST).
///
/// # Safety
/// `l` is a valid state; `filename` and `mode` C strings (`mode` may be null).
pub(super) unsafe fn load_cached(
    l: *mut lua_State,
    filename: &CStr,
    mode: *const c_char,
    vm_mode: Mode,
) -> c_int {
    match lookup(filename, mode, vm_mode == Mode::On) {
        // SAFETY: valid state; `clone` runs protected (an out-of-memory error comes back as
        // the status, with the message on the stack, as a failed load's).
        Some(fp) => unsafe {
            ffi::lua_pushcfunction(l, clone);
            ffi::lua_pushlightuserdata(l, fp as *mut c_void);
            ffi::lua_pcall(l, 1, 1, 0)
        },
        // SAFETY: valid state and C strings.
        None => unsafe { ffi::luaL_loadfilex(l, filename.as_ptr(), mode) },
    }
}
