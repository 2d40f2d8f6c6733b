//! `skynet.memory`. In the `skynet` executable the figures are the C memory of the process
//! (every block of the malloc family, charged to the service that allocated it; Lua heaps are
//! apart, counted by their VMs) and the jemalloc calls reach the executable's jemalloc. Without
//! that accounting (a library build, or `SKYNET_MALLOC_STATS=0`) the figures are the Lua heaps
//! of the snlua VMs, and the jemalloc-only calls answer zero / false and say so in the log, as
//! upstream's build without jemalloc does.

use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, CFunction};
use crate::vm::{all_stats, Vm};
use ffi::lua_State;
use skynet_core::memory::accounting;
use std::ffi::{c_int, CStr};
use std::sync::atomic::Ordering;

fn log(text: String) {
    if let Some(n) = skynet_core::try_node() {
        n.log(skynet_core::server::current_handle(), text);
    }
}

#[lua_function]
unsafe extern "C-unwind" fn total(l: *mut lua_State) -> c_int {
    let t: usize = match accounting() {
        Some(a) => a.total(),
        None => all_stats()
            .iter()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum(),
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, t as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn block(l: *mut lua_State) -> c_int {
    let t: usize = match accounting() {
        Some(a) => a.blocks(),
        None => all_stats()
            .iter()
            .map(|s| s.blocks.load(Ordering::Relaxed))
            .sum(),
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, t as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn current(l: *mut lua_State) -> c_int {
    let bytes = match accounting() {
        Some(a) => a.service(skynet_core::server::current_handle()),
        // SAFETY: valid state.
        None => unsafe { Vm::of(l) }.map_or(0, Vm::memory),
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, bytes as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn info(l: *mut lua_State) -> c_int {
    let stats = services();
    // SAFETY: valid state; nothing raises while `stats` is alive except memory errors.
    unsafe {
        ffi::lua_createtable(l, 0, stats.len() as c_int);
        for (handle, bytes) in stats {
            ffi::lua_pushinteger(l, bytes as ffi::lua_Integer);
            ffi::lua_rawseti(l, -2, ffi::lua_Integer::from(handle));
        }
    }
    1
}

/// (handle, bytes) of every service with memory, ordered by handle.
fn services() -> Vec<(u32, isize)> {
    let mut v = match accounting() {
        Some(a) => a.services(),
        None => all_stats()
            .iter()
            .map(|s| {
                (
                    s.handle.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed) as isize,
                )
            })
            .collect(),
    };
    v.sort_unstable();
    v
}

#[lua_function]
unsafe extern "C-unwind" fn dump(_l: *mut lua_State) -> c_int {
    log("dump all service mem:".to_owned());
    let mut total = 0isize;
    for (handle, b) in services() {
        total += b;
        log(format!(":{handle:08x} -> {}kb {}b", b >> 10, b % 1024));
    }
    log(format!("+total: {}kb", total >> 10));
    0
}

#[lua_function]
unsafe extern "C-unwind" fn dumpinfo(l: *mut lua_State) -> c_int {
    let Some(a) = accounting() else {
        log("No jemalloc".to_owned());
        return 0;
    };
    // SAFETY: valid state; the option string stays on the stack during the call.
    unsafe {
        let opts = if ffi::lua_isstring(l, 1) != 0 {
            let p = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
            (!p.is_null()).then(|| CStr::from_ptr(p))
        } else {
            None
        };
        a.stats_print(opts);
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn jestat(l: *mut lua_State) -> c_int {
    const KEYS: [&CStr; 5] = [
        c"stats.allocated",
        c"stats.resident",
        c"stats.retained",
        c"stats.mapped",
        c"stats.active",
    ];
    let a = accounting();
    if let Some(a) = a {
        // a new epoch refreshes jemalloc's statistics
        let _ = a.mallctl_size(c"epoch", Some(1));
    }
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, KEYS.len() as c_int);
        for k in KEYS {
            let v = a.and_then(|a| a.mallctl_size(k, None)).unwrap_or(0);
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
            ffi::lua_setfield(l, -2, k.as_ptr());
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn mallctl(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; luaL_checklstring raises a Lua error for a non-string.
    let name = unsafe { CStr::from_ptr(ffi::luaL_checklstring(l, 1, std::ptr::null_mut())) };
    let v = match accounting() {
        Some(a) => a.mallctl_size(name, None).unwrap_or(0),
        None => {
            log(format!(
                "No jemalloc : mallctl_int64 {}.",
                name.to_string_lossy()
            ));
            0
        }
    };
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, v as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn dumpheap(_l: *mut lua_State) -> c_int {
    match accounting() {
        Some(a) => {
            let _ = a.mallctl_cmd(c"prof.dump");
        }
        None => log("No jemalloc : mallctl_cmd prof.dump.".to_owned()),
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn profactive(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let new =
        unsafe { (ffi::lua_type(l, 1) != ffi::LUA_TNONE).then(|| ffi::lua_toboolean(l, 1) != 0) };
    let active = accounting()
        .and_then(|a| a.mallctl_bool(c"prof.active", new))
        .unwrap_or(false);
    // SAFETY: valid state.
    unsafe { ffi::lua_pushboolean(l, c_int::from(active)) };
    1
}

/// `require "skynet.memory"`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_memory(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 10] = [
        (c"total", total),
        (c"block", block),
        (c"dumpinfo", dumpinfo),
        (c"jestat", jestat),
        (c"mallctl", mallctl),
        (c"dump", dump),
        (c"info", info),
        (c"current", current),
        (c"dumpheap", dumpheap),
        (c"profactive", profactive),
    ];
    // SAFETY: valid state.
    unsafe { new_lib(l, &FUNCS) };
    1
}
