//! skynet's Lua C modules, built into the executable (no `luaclib/*.so` needed), and the glue
//! the `snlua` service needs. Everything here talks to Lua through its C API (`mlua::ffi`):
//! this crate is the Lua-glue edge where `unsafe` lives (see [`lua`] for the error rule).

#[cfg(feature = "embedded")]
pub mod bson;
pub mod client_socket;
#[cfg(feature = "embedded")]
pub mod cluster;
#[cfg(feature = "embedded")]
pub mod cmem;
#[cfg(feature = "embedded")]
pub mod codecache;
pub mod crypt;
#[cfg(feature = "embedded")]
pub mod datasheet;
#[cfg(feature = "embedded")]
pub mod debugchannel;
pub mod lpeg;
#[cfg(feature = "embedded")]
pub mod ltls;
pub mod lua;
pub mod md5core;
#[cfg(feature = "embedded")]
pub mod memory;
#[cfg(feature = "embedded")]
pub mod mongo_driver;
#[cfg(feature = "embedded")]
pub mod multicast;
#[cfg(feature = "embedded")]
pub mod netpack;
#[cfg(feature = "embedded")]
pub mod profile;
#[cfg(feature = "embedded")]
pub mod seri;
#[cfg(feature = "embedded")]
pub mod sharedata;
#[cfg(feature = "embedded")]
pub mod sharetable;
#[cfg(feature = "embedded")]
pub mod skynet_core;
#[cfg(feature = "embedded")]
pub mod socket_message;
#[cfg(feature = "embedded")]
pub mod socketdriver;
pub mod sproto;
#[cfg(feature = "embedded")]
pub mod stm;
#[cfg(all(test, feature = "embedded"))]
mod testlua;
#[cfg(feature = "embedded")]
pub mod vm;

#[cfg(feature = "embedded")]
use lua::{ffi, CFunction};
#[cfg(feature = "embedded")]
use std::ffi::CStr;

/// Every built-in module: `require` name and opener.
#[cfg(feature = "embedded")]
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
    (c"skynet.stm", stm::luaopen_skynet_stm),
    (c"sproto.core", sproto::luaopen_sproto_core),
    (c"skynet.crypt", crypt::luaopen_skynet_crypt),
    (c"client.crypt", crypt::luaopen_client_crypt),
    (c"md5.core", md5core::luaopen_md5_core),
    (c"bson", bson::luaopen_bson),
    (
        c"skynet.mongo.driver",
        mongo_driver::luaopen_skynet_mongo_driver,
    ),
    (c"lpeg", lpeg::luaopen_lpeg),
    (
        c"skynet.multicast.core",
        multicast::luaopen_skynet_multicast_core,
    ),
    (
        c"skynet.debugchannel",
        debugchannel::luaopen_skynet_debugchannel,
    ),
    (
        c"skynet.datasheet.core",
        datasheet::luaopen_skynet_datasheet_core,
    ),
    (
        c"skynet.sharedata.core",
        sharedata::luaopen_skynet_sharedata_core,
    ),
    (
        c"skynet.sharetable.core",
        sharetable::luaopen_skynet_sharetable_core,
    ),
    (c"skynet.cluster.core", cluster::luaopen_skynet_cluster_core),
    (c"ltls.c", ltls::luaopen_ltls_c),
    (c"ltls.init.c", ltls::luaopen_ltls_init_c),
];

#[cfg(feature = "embedded")]
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
