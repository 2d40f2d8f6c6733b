//! A user's own Lua C modules, compiled against stock Lua headers, load through
//! `package.cpath` and resolve the Lua API against the `skynet` executable: our module
//! (compat-tests/luaclib/ourmod.c, built by `make` when Debian's liblua5.4-dev is installed)
//! and Debian's lua-cjson.

use compat_tests::{repo_root, Node};
use std::path::Path;
use std::time::Duration;

const CJSON_DIR: &str = "/usr/lib/x86_64-linux-gnu/lua/5.4";

#[test]
fn user_lua_c_modules_load_through_cpath() {
    if std::env::var("SKYNET_LUA").as_deref() == Ok("5.5") {
        eprintln!("SKIP: the module is built against Lua 5.4 headers; this binary embeds Lua 5.5");
        return;
    }
    let root = repo_root();
    let ourmod = root.join("compat-tests/build/luaclib/ourmod.so");
    if !ourmod.exists() {
        let what = format_args!(
            "{} not built (needs liblua5.4-dev; `make` builds it)",
            ourmod.display()
        );
        // The Makefile builds it only when the system's Lua headers are installed: with them
        // (as in CI), a missing module fails a full run; without them it stays a skip.
        if Path::new("/usr/include/lua5.4/lua.h").exists() {
            compat_tests::skip_missing(what);
        } else {
            eprintln!("SKIP: {what}");
        }
        return;
    }
    let with_cjson = Path::new(CJSON_DIR).join("cjson.so").exists();
    if !with_cjson {
        eprintln!("note: lua-cjson is not installed; only our own module is checked");
    }
    let extra = format!(
        "lualoader = {loader:?}\nluaservice = {service:?}\nlua_cpath = {cpath:?}\n",
        loader = root
            .join("compat-tests/lua/loader.lua")
            .display()
            .to_string(),
        service = root.join("compat-tests/lua/?.lua").display().to_string(),
        cpath = format!(
            "{}/?.so;{CJSON_DIR}/?.so",
            ourmod.parent().unwrap().display()
        ),
    );
    let bootstrap = if with_cjson {
        "snlua luaclib_user cjson"
    } else {
        "snlua luaclib_user"
    };
    let out = Node::run(&extra, bootstrap, Duration::from_secs(10));
    out.assert_clean_exit();
    let mut names = vec![
        "require_ourmod",
        "add",
        "join",
        "closure_upvalue",
        "userdata_method",
        "luaL_error",
        "pcall_from_c",
        "pcall_error_from_c",
        "allocf_unsized_freed",
        "version_matches",
    ];
    if with_cjson {
        names.extend(["require_cjson", "cjson_roundtrip", "cjson_error"]);
    }
    out.assert_checks(&names);
}
