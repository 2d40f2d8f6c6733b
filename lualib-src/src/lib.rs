//! skynet's Lua C modules, built into the executable (no `luaclib/*.so` needed), and the glue
//! the `snlua` service needs. Everything here talks to Lua through its C API (`mlua::ffi`):
//! this crate is the Lua-glue edge where `unsafe` lives (see [`lua`] for the error rule).

pub mod client_socket;
pub mod cmem;
pub mod codecache;
pub mod lpeg;
pub mod lua;
pub mod memory;
pub mod netpack;
pub mod profile;
pub mod seri;
pub mod skynet_core;
pub mod socket_message;
pub mod socketdriver;
#[cfg(test)]
mod testlua;
pub mod vm;

use lua::{ffi, CFunction};
use std::ffi::CStr;

/// Every built-in module: `require` name and opener.
pub const MODULES: &[(&CStr, CFunction)] = &[
    (c"skynet.core", skynet_core::luaopen_skynet_core),
    (c"skynet.profile", profile::luaopen_skynet_profile),
    (c"skynet.memory", memory::luaopen_skynet_memory),
    (c"skynet.codecache", codecache::luaopen_skynet_codecache),
    (c"skynet.netpack", netpack::luaopen_skynet_netpack),
    (
        c"skynet.socketdriver",
        socketdriver::luaopen_skynet_socketdriver,
    ),
    (c"client.socket", client_socket::luaopen_client_socket),
    (c"lpeg", lpeg::luaopen_lpeg),
];

/// Makes every built-in module `require`-able in `l` through `package.preload`.
///
/// # Safety
/// `l` is a valid state with the package library open.
pub unsafe fn preload(l: *mut ffi::lua_State) {
    // SAFETY: valid state with `package` loaded.
    unsafe {
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, c"_PRELOAD".as_ptr());
        for (name, open) in MODULES {
            ffi::lua_pushcfunction(l, *open);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_pop(l, 1);
    }
}
