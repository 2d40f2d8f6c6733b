//! The client-side modules of skynet as Lua C modules for a stock Lua 5.4 interpreter.
//!
//! `make luaclib` builds this library once and installs it under each file name Lua's C searcher
//! looks for (`client.so`, `sproto.so`, `lpeg.so`, `md5.so`); each file exports every entry point
//! below, and `require` picks the one it needs (`require "client.socket"` finds
//! `luaopen_client_socket` in `client.so` through the all-in-one searcher).
//!
//! The modules are the ones built into the `skynet` executable (crate `skynet-lualib`); here
//! the Lua C API resolves against the interpreter that loads the library.

use skynet_lualib::lua::ffi::lua_State;
use std::ffi::c_int;

macro_rules! entry {
    ($($name:ident => $open:path),* $(,)?) => {
        $(
            /// Opens the module (called by `require`).
            ///
            /// # Safety
            /// Called by Lua with a valid state.
            #[no_mangle]
            pub unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
                // SAFETY: forwarded from Lua; the opener is itself a guarded Lua C function.
                unsafe { $open(l) }
            }
        )*
    };
}

entry! {
    luaopen_client_socket => skynet_lualib::client_socket::luaopen_client_socket,
    luaopen_sproto_core => skynet_lualib::sproto::luaopen_sproto_core,
    luaopen_client_crypt => skynet_lualib::crypt::luaopen_client_crypt,
    luaopen_md5_core => skynet_lualib::md5core::luaopen_md5_core,
    luaopen_lpeg => skynet_lualib::lpeg::luaopen_lpeg,
}
