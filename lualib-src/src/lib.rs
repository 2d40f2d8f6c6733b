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
use lua::{ffi, lua_function, CFunction};
#[cfg(feature = "embedded")]
use std::ffi::{c_int, CStr};

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

/// The opener of the built-in module `name`.
#[cfg(feature = "embedded")]
pub fn builtin(name: &[u8]) -> Option<CFunction> {
    MODULES
        .iter()
        .find(|(n, _)| n.to_bytes() == name)
        .map(|&(_, open)| open)
}

/// `__index` of `package.preload`: `preload[name]` answers the opener of a built-in module
/// (nil for any other key).
#[cfg(feature = "embedded")]
#[lua_function]
unsafe extern "C-unwind" fn builtin_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: valid state; the key is argument 2 (only a string key is looked at, so that
    // lua_tolstring converts nothing).
    unsafe {
        let open = if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
            lua::to_bytes(l, 2).and_then(builtin)
        } else {
            None
        };
        match open {
            Some(f) => ffi::lua_pushcfunction(l, f),
            None => ffi::lua_pushnil(l),
        }
    }
    1
}

#[cfg(feature = "embedded")]
/// Makes every built-in module `require`-able in `l` through `package.preload`: a lookup of
/// a built-in name in the preload table (what `require`'s first searcher does) answers its
/// opener. The table itself stays empty and gets a metatable whose `__index` resolves the
/// names on demand, so a VM pays nothing for the modules it never requires (as upstream's VMs,
/// which find them as `luaclib/*.so` on `package.cpath`).
///
/// # Safety
/// `l` is a valid state with the package library open.
pub unsafe fn preload(l: *mut ffi::lua_State) {
    // SAFETY: valid state with `package` loaded.
    unsafe {
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, c"_PRELOAD".as_ptr());
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, builtin_index);
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pop(l, 1);
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use crate::testlua::{new_state, run};

    #[test]
    fn builtin_modules_are_found_through_an_empty_preload_table() {
        let st = new_state(&[], &[]);
        // SAFETY: valid state with the standard libraries open.
        unsafe { super::preload(st.0) };
        run(
            &st,
            r#"
            assert(next(package.preload) == nil, "the preload table holds no entry")
            assert(rawget(package.preload, "lpeg") == nil)
            assert(type(package.preload.lpeg) == "function")
            assert(type(package.preload["skynet.core"]) == "function")
            assert(package.preload["no.such.module"] == nil and package.preload[1] == nil)
            local lpeg, where = require "lpeg"
            assert(lpeg.version == "LPeg 1.1.0" and where == ":preload:", where)
            assert(package.loaded.lpeg == lpeg and require "lpeg" == lpeg)
            assert(require "md5.core" == package.loaded["md5.core"])
            -- an entry of the program's own wins over a built-in of the same name
            package.preload["sproto.core"] = function(name, extra) return { mine = name, extra = extra } end
            local mine = require "sproto.core"
            assert(mine.mine == "sproto.core" and mine.extra == ":preload:")
            package.preload["my.mod"] = function() return "mine" end
            assert(require "my.mod" == "mine")
            local ok, err = pcall(require, "no.such.module")
            assert(not ok and err:find("no field package.preload['no.such.module']", 1, true), err)
            "#,
        )
        .unwrap();
    }

    /// The embedded Lua is built as upstream's: without the Lua 5.3 compatibility layer
    /// (Lua 5.5 has `math.frexp` and `math.ldexp` again as standard functions).
    #[test]
    fn no_lua53_compatibility_functions() {
        let st = new_state(&[], &[]);
        let removed = if cfg!(feature = "lua55") {
            r#""pow", "atan2", "cosh", "sinh", "tanh", "log10""#
        } else {
            r#""pow", "atan2", "cosh", "sinh", "tanh", "log10", "frexp", "ldexp""#
        };
        let code = r#"
            for _, f in ipairs { REMOVED } do
                assert(math[f] == nil, "math." .. f)
            end
            assert(math.sqrt and math.atan and math.ult, "the standard functions stay")
            local mt = { __lt = function() return true end }
            local ok, err = pcall(function() return setmetatable({}, mt) <= setmetatable({}, mt) end)
            assert(not ok and err:find("attempt to compare", 1, true), err)
            "#;
        run(&st, &code.replace("REMOVED", removed)).unwrap();
    }
}
