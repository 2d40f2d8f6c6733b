//! Lua-level tests of `lpeg`.

use crate::testlua::check;
use std::ffi::CStr;

const M: &[(&CStr, crate::lua::CFunction)] = &[(c"lpeg", super::luaopen_lpeg)];

#[test]
fn basic() {
    check(
        M,
        &[],
        r#"
        local m = lpeg
        assert(m.match(m.P"abc", "abcd") == 4)
        assert(m.match("abc", "abd") == nil)
    "#,
    );
}

/// Runs the Lua file named by `LPEG_LUA_FILE` (e.g. LPeg's own test suite, kept outside the
/// repository) with `require "lpeg"` available and `LPEG_LUA_PATH` added to `package.path`.
#[test]
#[ignore]
fn external_lua_file() {
    let Ok(file) = std::env::var("LPEG_LUA_FILE") else {
        return;
    };
    let path = std::env::var("LPEG_LUA_PATH").unwrap_or_default();
    let code = format!(
        "package.preload.lpeg = function() return lpeg end\n\
         package.path = {path:?} .. ';' .. package.path\n\
         assert(loadfile({file:?}))()"
    );
    check(M, &[], &code);
}
