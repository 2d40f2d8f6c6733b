//! Files are compiled in the cache's own state and their prototypes shared by every VM of the
//! process (our Lua extension, lualib-src/luapatch/lshare.c).

use super::Mode;
use crate::lua::{ffi, lua_function};
use ffi::lua_State;
use parking_lot::Mutex;
use skynet_core::manifest;
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

/// Creates the compiler state now rather than at the first cached load; later calls do nothing.
pub(super) fn init() {
    compiler();
}

pub(super) fn clear() {
    // The compiled functions stay anchored in the compiler state (see `compile`): a VM may
    // be cloning one of them right now.
    compiler().lock().functions.clear();
}

/// Run protected in the compiler state: loads file (light userdata 1, a C string) with mode
/// (light userdata 2, may be null), from its verified bytes when light userdata 3 is not null
/// (a `&[u8]`), shares the function's prototypes, anchors the function for good in the
/// registry and answers its pointer (light userdata).
#[lua_function]
unsafe extern "C-unwind" fn compile(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the arguments are what `lookup` pushed, alive during the call.
    unsafe {
        let filename = ffi::lua_touserdata(l, 1) as *const c_char;
        let mode = ffi::lua_touserdata(l, 2) as *const c_char;
        let source = ffi::lua_touserdata(l, 3) as *const &[u8];
        let status = if source.is_null() {
            ffi::luaL_loadfilex(l, filename, mode)
        } else {
            super::load_bytes(l, CStr::from_ptr(filename), *source, mode)
        };
        if status != ffi::LUA_OK {
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

/// The shared function of `filename`, if cached.
fn cached(filename: &CStr) -> Option<usize> {
    compiler()
        .lock()
        .functions
        .get(filename.to_bytes())
        .copied()
}

/// Compiles `filename` (from `source`, its verified bytes, when given) and caches it, unless
/// another VM did meanwhile. `None` when it does not compile: the error is reported by the
/// caller's own load of the file.
fn fill(filename: &CStr, mode: *const c_char, source: Option<&[u8]>) -> Option<usize> {
    let mut c = compiler().lock();
    if let Some(&fp) = c.functions.get(filename.to_bytes()) {
        return Some(fp);
    }
    let l = c.state;
    // SAFETY: the compiler state is used under the lock; `compile` runs protected, so its
    // errors (syntax, I/O, memory) come back as a status.
    let fp = unsafe {
        let top = ffi::lua_gettop(l);
        ffi::lua_pushcfunction(l, compile);
        ffi::lua_pushlightuserdata(l, filename.as_ptr() as *mut c_void);
        ffi::lua_pushlightuserdata(l, mode as *mut c_void);
        let source = source.as_ref();
        ffi::lua_pushlightuserdata(
            l,
            source.map_or(std::ptr::null_mut(), |s| s as *const &[u8] as *mut c_void),
        );
        let fp = if ffi::lua_pcall(l, 3, 1, 0) == ffi::LUA_OK {
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
    let fp = match cached(filename) {
        Some(fp) => Some(fp),
        None if vm_mode != Mode::On => None,
        // Under load_manifest the loading VM reads and checks the bytes (a refusal names its
        // service), and the cache compiles those same bytes.
        None => match manifest::current() {
            None => fill(filename, mode, None),
            // SAFETY: valid state.
            Some(m) => match unsafe { super::read_verified(l, m, filename) } {
                Ok(bytes) => fill(filename, mode, Some(&bytes)),
                Err(status) => return status,
            },
        },
    };
    match fp {
        // SAFETY: valid state; `clone` runs protected (an out-of-memory error comes back as
        // the status, with the message on the stack, as a failed load's).
        Some(fp) => unsafe {
            ffi::lua_pushcfunction(l, clone);
            ffi::lua_pushlightuserdata(l, fp as *mut c_void);
            ffi::lua_pcall(l, 1, 1, 0)
        },
        // Not cached (mode EXIST) or not compilable: the VM's own load gives the error.
        // SAFETY: valid state and C strings.
        None => unsafe { super::load_source(l, filename, mode) },
    }
}

#[cfg(test)]
mod tests {
    use super::clone;
    use crate::lua::ffi;
    use crate::testlua::{new_state, run, State};
    use std::ffi::c_void;

    /// Shared code mixing its constants with strings each state builds at run time.
    const MODULE: &str = r#"
        local M = {}
        local mt = { __index = function(_, k) return "idx:" .. k end,
                     __eq = function() return true end, __name = "shared.thing" }
        local function rt(a, b) return table.concat({ a, b }) end
        function M.round(i)
            local t = { alpha = i, [rt("be", "ta")] = -i }
            assert(t[rt("al", "pha")] == i and t.beta == -i, "keys both ways")
            assert(rawequal(rt("al", "pha"), "alpha"), "rawequal")
            assert(next({ gamma = 1 }, rt("gam", "ma")) == nil, "next from a runtime key")
            local n = 0
            for _ in pairs(t) do n = n + 1 end
            assert(n == 2, "two keys")
            local o = setmetatable({}, mt)
            assert(o.zeta == "idx:zeta" and o[rt("ze", "ta")] == "idx:zeta", "__index")
            assert(o == setmetatable({}, mt), "__eq")
            local ok, err = pcall(string.rep, o)
            assert(not ok and err:find("shared.thing", 1, true), "__name")
            assert(string.format("%s=%d", rt("k", "ey"), i) == "key=" .. i, "format")
            local co = coroutine.wrap(function(x) local y = coroutine.yield(x + 1) return y .. "!" end)
            assert(co(i) == i + 1 and co("done") == "done!", "coroutine")
            local junk = {}
            for j = 1, 20 do junk[rt("junk", j)] = { "alpha", rt("x", j) } end
            collectgarbage("step", 0)
        end
        function M.run(n)
            for i = 1, n do
                M.round(i)
                if i % 10 == 0 then
                    collectgarbage(i % 20 == 0 and "generational" or "incremental")
                    collectgarbage()
                end
            end
            return "ok"
        end
        return M
    "#;

    /// Sets global `module` of `st` to a new instance of the shared chunk `fp`.
    fn instantiate(st: &State, fp: usize) {
        // SAFETY: valid state; `clone` runs protected; fp is a shared function kept alive by
        // the compiler state for the whole test.
        unsafe {
            ffi::lua_pushcfunction(st.0, clone);
            ffi::lua_pushlightuserdata(st.0, fp as *mut c_void);
            assert_eq!(ffi::lua_pcall(st.0, 1, 1, 0), ffi::LUA_OK);
            assert_eq!(ffi::lua_pcall(st.0, 0, 1, 0), ffi::LUA_OK);
            ffi::lua_setglobal(st.0, c"module".as_ptr());
        }
    }

    #[test]
    fn states_on_many_threads_share_prototypes_under_gc_stress() {
        let compiler = new_state(&[], &[]);
        // SAFETY: valid state; the chunk is on the stack when shared, and stays there (with
        // its prototypes) until `compiler` is closed at the end of the test.
        let fp = unsafe {
            let l = compiler.0;
            assert_eq!(
                ffi::luaL_loadbufferx(
                    l,
                    MODULE.as_ptr().cast(),
                    MODULE.len(),
                    c"=shared".as_ptr(),
                    std::ptr::null(),
                ),
                ffi::LUA_OK
            );
            ffi::lua_sharefunction(l, -1);
            ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
            ffi::lua_topointer(l, -1) as usize
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut states = Vec::new();
                    for k in 0..6 {
                        let st = new_state(&[], &[]);
                        instantiate(&st, fp);
                        run(&st, "assert(module.run(30) == 'ok')").unwrap();
                        states.push(st);
                        if k % 2 == 1 {
                            states.remove(0); // closing a state leaves the shared code alone
                        }
                    }
                    for st in &states {
                        run(st, "assert(module.run(20) == 'ok')").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a state failed");
        }
        // the compiler state's own collector leaves the shared prototypes alone too
        // SAFETY: valid state.
        unsafe { ffi::lua_gc(compiler.0, ffi::LUA_GCCOLLECT, 0) };
        run(&compiler, "collectgarbage()").unwrap();
        let late = new_state(&[], &[]);
        instantiate(&late, fp);
        run(&late, "assert(module.run(20) == 'ok')").unwrap();
        // closing the state that shared the code frees none of it (its fixed strings such as
        // the metamethod names, constants of the shared code, included)
        drop(compiler);
        run(&late, "assert(module.run(20) == 'ok')").unwrap();
    }
}
