//! `skynet.memory`. There is no jemalloc here: the figures are the Lua heaps of the snlua VMs
//! (bytes and blocks counted by the snlua allocator). The jemalloc-only calls answer zero /
//! false and say so in the log, as upstream's build without jemalloc does.

use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, CFunction};
use crate::vm::{all_stats, Vm};
use ffi::lua_State;
use std::ffi::{c_int, CStr};
use std::sync::atomic::Ordering;

fn log(text: String) {
    if let Some(n) = skynet_core::try_node() {
        n.log(skynet_core::server::current_handle(), text);
    }
}

#[lua_function]
unsafe extern "C-unwind" fn total(l: *mut lua_State) -> c_int {
    let t: usize = all_stats()
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .sum();
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, t as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn block(l: *mut lua_State) -> c_int {
    let t: usize = all_stats()
        .iter()
        .map(|s| s.blocks.load(Ordering::Relaxed))
        .sum();
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, t as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn current(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let bytes = unsafe { Vm::of(l) }.map_or(0, Vm::memory);
    // SAFETY: valid state.
    unsafe { ffi::lua_pushinteger(l, bytes as ffi::lua_Integer) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn info(l: *mut lua_State) -> c_int {
    let stats = all_stats();
    // SAFETY: valid state; nothing raises while `stats` is alive except memory errors.
    unsafe {
        ffi::lua_createtable(l, 0, stats.len() as c_int);
        for s in &stats {
            ffi::lua_pushinteger(l, s.bytes.load(Ordering::Relaxed) as ffi::lua_Integer);
            ffi::lua_rawseti(
                l,
                -2,
                ffi::lua_Integer::from(s.handle.load(Ordering::Relaxed)),
            );
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn dump(_l: *mut lua_State) -> c_int {
    let mut stats = all_stats();
    stats.sort_by_key(|s| s.handle.load(Ordering::Relaxed));
    log("dump all service mem:".to_owned());
    let mut total = 0;
    for s in &stats {
        let b = s.bytes.load(Ordering::Relaxed);
        total += b;
        log(format!(
            ":{:08x} -> {}kb {}b",
            s.handle.load(Ordering::Relaxed),
            b >> 10,
            b % 1024
        ));
    }
    log(format!("+total: {}kb", total >> 10));
    0
}

#[lua_function]
unsafe extern "C-unwind" fn dumpinfo(_l: *mut lua_State) -> c_int {
    log("No jemalloc".to_owned());
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
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, KEYS.len() as c_int);
        for k in KEYS {
            ffi::lua_pushinteger(l, 0);
            ffi::lua_setfield(l, -2, k.as_ptr());
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn mallctl(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let name = crate::lua::to_bytes(l, 1).map(|b| String::from_utf8_lossy(b).into_owned());
        log(format!(
            "No jemalloc : mallctl_int64 {}.",
            name.unwrap_or_default()
        ));
        ffi::lua_pushinteger(l, 0);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn dumpheap(_l: *mut lua_State) -> c_int {
    log("No jemalloc : mallctl_cmd prof.dump.".to_owned());
    0
}

#[lua_function]
unsafe extern "C-unwind" fn profactive(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { ffi::lua_pushboolean(l, 0) };
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
