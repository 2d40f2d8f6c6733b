//! `skynet.profile`: per-coroutine thread-CPU timing, and the `coroutine.resume`/`wrap`
//! replacements snlua installs (they also track the running coroutine for SIGNAL 0).
//!
//! Upvalue 1 maps a coroutine to the CPU time its current run started at, upvalue 2 to the
//! time it accumulated; both tables are weak. Times are seconds with the seconds field kept to
//! 16 bits, as upstream, so long-running processes do not lose precision.

use crate::lua::lua_function;
use crate::lua::{ffi, set_funcs, CFunction};
use crate::vm;
use ffi::lua_State;
use std::ffi::{c_int, CStr};

fn cpu_time() -> f64 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => (t.tv_sec() & 0xffff) as f64 + t.tv_nsec() as f64 / 1e9,
        Err(_) => 0.0,
    }
}

fn since(start: f64) -> f64 {
    let now = cpu_time();
    if now < start {
        now + 65536.0 - start
    } else {
        now - start
    }
}

/// The start time of coroutine `co_idx` if it is being profiled.
unsafe fn started(l: *mut lua_State, co_idx: c_int) -> Option<f64> {
    // SAFETY: valid state; upvalue 1 is the start table.
    unsafe {
        ffi::lua_pushvalue(l, co_idx);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(1));
        let r = (ffi::lua_type(l, -1) != ffi::LUA_TNIL)
            .then(|| ffi::lua_tonumberx(l, -1, std::ptr::null_mut()));
        ffi::lua_pop(l, 1);
        r
    }
}

unsafe fn total(l: *mut lua_State, co_idx: c_int) -> f64 {
    // SAFETY: valid state; upvalue 2 is the total table.
    unsafe {
        ffi::lua_pushvalue(l, co_idx);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(2));
        let t = ffi::lua_tonumberx(l, -1, std::ptr::null_mut());
        ffi::lua_pop(l, 1);
        t
    }
}

unsafe fn set(l: *mut lua_State, upvalue: c_int, co_idx: c_int, v: Option<f64>) {
    // SAFETY: valid state; the upvalue is one of our tables.
    unsafe {
        ffi::lua_pushvalue(l, co_idx);
        match v {
            Some(v) => ffi::lua_pushnumber(l, v),
            None => ffi::lua_pushnil(l),
        }
        ffi::lua_rawset(l, ffi::lua_upvalueindex(upvalue));
    }
}

/// Resumes `co` with `narg` values from `l`; returns the number of results moved to `l`, or
/// -1 with the error message on `l`.
unsafe fn aux_resume(l: *mut lua_State, co: *mut lua_State, narg: c_int) -> c_int {
    // SAFETY: valid states; mirrors the standard library's auxresume.
    unsafe {
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pushstring(l, c"too many arguments to resume".as_ptr());
            return -1;
        }
        ffi::lua_xmove(l, co, narg);
        let mut nres = 0;
        let status = vm::resume(co, l, narg, &mut nres);
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            if ffi::lua_checkstack(l, nres + 1) == 0 {
                ffi::lua_pop(co, nres);
                ffi::lua_pushstring(l, c"too many results to resume".as_ptr());
                return -1;
            }
            ffi::lua_xmove(co, l, nres);
            nres
        } else {
            ffi::lua_xmove(co, l, 1);
            -1
        }
    }
}

unsafe fn timed_resume(l: *mut lua_State, co_idx: c_int, n: c_int) -> c_int {
    // SAFETY: valid state; co_idx holds a thread.
    unsafe {
        let co = ffi::lua_tothread(l, co_idx);
        if started(l, co_idx).is_some() {
            set(l, 1, co_idx, Some(cpu_time()));
        }
        let r = aux_resume(l, co, n);
        if let Some(start) = started(l, co_idx) {
            let t = total(l, co_idx) + since(start);
            set(l, 2, co_idx, Some(t));
        }
        r
    }
}

#[lua_function]
unsafe extern "C-unwind" fn resume(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTHREAD);
        let r = timed_resume(l, 1, ffi::lua_gettop(l) - 1);
        if r < 0 {
            ffi::lua_pushboolean(l, 0);
            ffi::lua_insert(l, -2);
            2
        } else {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_insert(l, -(r + 1));
            r + 1
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn aux_wrap(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; upvalue 3 is the wrapped coroutine.
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(3));
        let r = timed_resume(l, ffi::lua_upvalueindex(3), ffi::lua_gettop(l));
        if r < 0 {
            let status = ffi::lua_status(co);
            if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
                ffi::lua_closethread(co, l);
            }
            if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                ffi::luaL_where(l, 1);
                ffi::lua_insert(l, -2);
                ffi::lua_concat(l, 2);
            }
            ffi::lua_error(l);
        }
        r
    }
}

#[lua_function]
unsafe extern "C-unwind" fn wrap(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        let co = ffi::lua_newthread(l);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_xmove(l, co, 1);
        ffi::lua_pushcclosure(l, aux_wrap, 3);
    }
    1
}

/// Normalises the argument to a coroutine at index 1.
unsafe fn co_arg(l: *mut lua_State) {
    // SAFETY: valid state.
    unsafe {
        if ffi::lua_gettop(l) != 0 {
            ffi::lua_settop(l, 1);
            ffi::luaL_checktype(l, 1, ffi::LUA_TTHREAD);
        } else {
            ffi::lua_pushthread(l);
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn start(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        co_arg(l);
        if started(l, 1).is_some() {
            return ffi::luaL_error(
                l,
                c"Thread %p start profile more than once".as_ptr(),
                ffi::lua_topointer(l, 1),
            );
        }
        set(l, 2, 1, Some(0.0));
        set(l, 1, 1, Some(cpu_time()));
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn stop(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        co_arg(l);
        let Some(start) = started(l, 1) else {
            return ffi::luaL_error(l, c"Call profile.start() before profile.stop()".as_ptr());
        };
        let t = total(l, 1) + since(start);
        set(l, 1, 1, None);
        set(l, 2, 1, None);
        ffi::lua_pushnumber(l, t);
    }
    1
}

/// `require "skynet.profile"`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_profile(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 4] = [
        (c"start", start),
        (c"stop", stop),
        (c"resume", resume),
        (c"wrap", wrap),
    ];
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, FUNCS.len() as c_int);
        ffi::lua_createtable(l, 0, 0); // coroutine -> start time
        ffi::lua_createtable(l, 0, 0); // coroutine -> total time
        ffi::lua_createtable(l, 0, 1); // weak metatable
        ffi::lua_pushstring(l, c"kv".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setmetatable(l, -3);
        ffi::lua_setmetatable(l, -3);
        set_funcs(l, &FUNCS, 2);
    }
    1
}
