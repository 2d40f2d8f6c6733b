//! Lua-level tests of `lpeg`.

use crate::testlua::check;
use std::ffi::CStr;

const M: &[(&CStr, crate::lua::CFunction)] = &[(c"lpeg", super::luaopen_lpeg)];

// The Lua files are written to run unchanged against LPeg 1.1 itself (with a global `lpeg`),
// which is how their expectations were checked.

#[test]
fn basic_patterns() {
    check(M, &[], include_str!("basic.lua"));
}

#[test]
fn captures() {
    check(M, &[], include_str!("captures.lua"));
}

#[test]
fn grammars() {
    check(M, &[], include_str!("grammar.lua"));
}

#[test]
fn error_messages() {
    check(M, &[], include_str!("errors.lua"));
}

/// Deep subjects, patterns and captures, on a thread with a small (1 MiB) stack: every limit
/// raises a Lua error long before the Rust stack runs out; also the cases LPeg leaves undefined
/// (accumulators without a value of their own list, explicit `__gc`). Not checked against LPeg,
/// which has no limit on pattern nesting and crashes on some of these.
#[test]
fn limits_on_a_small_stack() {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| check(M, &[], include_str!("limits.lua")))
        .unwrap()
        .join()
        .unwrap();
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
