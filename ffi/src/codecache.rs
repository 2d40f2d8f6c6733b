//! `luaL_initcodecache`: the one function of the Lua auxiliary library that a custom `main`
//! written for skynet's patched Lua calls at start (before `skynet_start`). It is not declared
//! in our headers (stock Lua headers do not declare it either); such a `main` declares it as
//! `void luaL_initcodecache(void);`.

/// Sets the code cache up (our Lua keeps one per process). Safe to call any number of times,
/// before or after the node started; the cache also sets itself up at its first load, so the
/// call is optional.
#[no_mangle]
pub extern "C" fn luaL_initcodecache() {
    crate::abi::guard("luaL_initcodecache", (), skynet_lualib::codecache::init);
}
