//! `lpeg`: Parsing Expression Grammars for Lua, compatible with LPeg 1.1 (the manual's
//! semantics and error messages), written in Rust.
//!
//! - [`tree`]: pattern trees, built by the constructors and shared between patterns.
//! - [`code`]: compilation into a parsing-machine program (once per pattern object, at its
//!   first match) and the machine, with an explicit backtrack stack bounded by `setmaxstack`.
//! - [`capture`]: evaluation of the capture list into Lua values.
//!
//! # Lua values and patterns
//! A pattern is a full userdata (metatable "lpeg-pattern") holding a [`Pattern`]. Its first user
//! value is a table from key ids (unique per constructor call) to the Lua values the tree refers
//! to; combining patterns merges those tables. Its second user value, made at compilation, is
//! the array of the values the program uses.
//!
//! # Errors and `longjmp`
//! Constructors raise only while no Rust value with a destructor is alive: arguments are
//! converted first, the result userdata is created next, and the tree is computed and moved into
//! it last. `match` keeps all its buffers in a context owned by its own frame and runs the
//! machine and the capture evaluation in a function called through `lua_pcall`, whose frames hold
//! only references: an error raised by a match-time or function capture unwinds to that
//! `lua_pcall`, the context is dropped, and the error value is raised again unchanged. LPeg's own
//! errors found during the match are reported back as messages and raised by `match` itself.
//!
//! # Differences from LPeg
//! Checked by running LPeg's own test suite (all of it passes) and by comparing the results of
//! random patterns with captures against LPeg 1.1 itself. Differences are limited to cases LPeg
//! leaves undefined or cannot survive:
//! - Trees nest at most [`tree::MAX_DEPTH`] levels (sequences and choices are flat, so chains
//!   built in loops do not count); deeper patterns raise "pattern nesting too deep". Trees hold
//!   at most [`tree::MAX_SIZE`] nodes ("pattern too big", where LPeg runs out of memory), and
//!   programs at most 2^21 instructions ("pattern code too large"), e.g. `p^-n` for a huge n.
//! - Analyses that follow grammar calls nest at most a few thousand levels and then answer
//!   conservatively (or "too many left calls in grammar").
//! - Nested substitution captures count towards the capture nesting limit ("subcapture
//!   nesting too deep"), so deep `Cs` nesting raises instead of overflowing the C stack.
//! - An accumulator capture (`p % f`) only replaces a value of its own list; where LPeg would
//!   take a table being filled or a pending function (and may corrupt its stack) this raises
//!   "no previous value for accumulator capture". A fold's first value must come from inside
//!   the fold ("no initial value for fold capture"; LPeg may take the next sibling capture).
//! - Explicit `__gc` calls cannot free a program under a running match; a collected pattern
//!   raises an error when used again.
//! - `V()` without an argument raises "non-nil value expected" (LPeg accepts it by accident).
//! - `ptree` / `pcode` print their own formats (LPeg's only work in its debug builds).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod capture;
pub mod code;
pub mod reference;
pub mod tree;

use crate::lua::{self, ffi, lua_function, CFunction};
use code::{CompileError, Program};
use ffi::lua_State;
use std::ffi::{c_int, CStr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use tree::{CapKind, CharSet, Key, Node, Pat, TreeError};

const PATTERN_T: &CStr = c"lpeg-pattern";
const MAXSTACK_KEY: &CStr = c"lpeg-maxstack";
/// Default (and initial) backtrack stack size, as LPeg's MAXBACK.
const MAXBACK: i64 = 400;
/// Most Lua values one pattern may refer to.
const MAX_VALUES: u64 = u16::MAX as u64;
const SHRT_MAX: i64 = i16::MAX as i64;

/// A pattern object's Rust side.
pub struct Pattern {
    tree: Option<Pat>,
    /// Shared with running matches, so that an explicit `__gc` call from a match-time capture
    /// cannot free the program under the machine.
    prog: Option<Rc<Program>>,
    /// Number of entries of its value table.
    nvalues: u64,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn new_key() -> Key {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

fn tree_error_msg(e: &TreeError) -> String {
    match e {
        TreeError::TooDeep => "pattern nesting too deep".to_string(),
        TreeError::TooBig => "pattern too big".to_string(),
        TreeError::Msg(m) => m.clone(),
    }
}

/// The pattern at `idx`, if it is one.
///
/// # Safety
/// `l` is valid.
unsafe fn test_pattern(l: *mut lua_State, idx: c_int) -> *mut Pattern {
    // SAFETY: valid state; a userdata with our metatable holds a Pattern.
    unsafe { ffi::luaL_testudata(l, idx, PATTERN_T.as_ptr()).cast() }
}

/// The tree of the pattern at `idx` (which must be a pattern with a tree).
///
/// # Safety
/// `idx` holds a pattern; the reference lives while it stays on the stack.
unsafe fn tree_at<'a>(l: *mut lua_State, idx: c_int) -> &'a Pat {
    // SAFETY: per the contract.
    unsafe {
        let p = test_pattern(l, idx);
        (*p).tree.as_ref().expect("pattern without tree")
    }
}

/// Pushes user value `n` of the pattern at `idx` (its value table, or the compiled value array),
/// which must be a table: only `debug.setuservalue` could have made it anything else.
///
/// # Safety
/// `l` is valid, `idx` holds a pattern; nothing with a destructor is alive in the caller.
unsafe fn get_values(l: *mut lua_State, idx: c_int, n: c_int) {
    // SAFETY: valid state and index.
    unsafe {
        if ffi::lua_getiuservalue(l, idx, n) != ffi::LUA_TTABLE {
            lua::raise_where(
                l,
                "invalid pattern (its value table was replaced)".to_string(),
            );
        }
    }
}

/// Pushes a new, empty pattern userdata (no tree yet) with `ktable` (at `kidx`, or a new empty
/// table if 0) as its value table; returns its Rust side.
///
/// # Safety
/// `l` is valid; nothing with a destructor is alive in the caller.
unsafe fn new_pattern(l: *mut lua_State, kidx: c_int, nvalues: u64) -> *mut Pattern {
    // SAFETY: valid state; the userdata is initialised before anything else can run.
    unsafe {
        let kidx = if kidx != 0 {
            ffi::lua_absindex(l, kidx)
        } else {
            0
        };
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Pattern>(), 2).cast::<Pattern>();
        std::ptr::write(
            p,
            Pattern {
                tree: None,
                prog: None,
                nvalues,
            },
        );
        ffi::luaL_setmetatable(l, PATTERN_T.as_ptr());
        if kidx != 0 {
            ffi::lua_pushvalue(l, kidx);
        } else {
            ffi::lua_createtable(l, 0, 0);
        }
        ffi::lua_setiuservalue(l, -2, 1);
        p
    }
}

/// Stores `res` into the pattern `p` just pushed, or raises its error.
///
/// # Safety
/// As [`new_pattern`]; `p` is the pattern on the top of the stack.
unsafe fn finish(l: *mut lua_State, p: *mut Pattern, res: Result<Pat, TreeError>) -> c_int {
    match res {
        // SAFETY: p is live (on the stack).
        Ok(t) => unsafe { (*p).tree = Some(t) },
        Err(e) => {
            let msg = tree_error_msg(&e);
            drop(e);
            // SAFETY: nothing else is alive.
            unsafe { lua::raise_where(l, msg) }
        }
    }
    1
}

/// Pushes a new value table holding the values at the given stack indices (nil gives key 0);
/// returns their keys.
///
/// # Safety
/// `l` is valid.
unsafe fn new_ktable(l: *mut lua_State, idxs: &[c_int], keys: &mut [Key]) {
    // SAFETY: valid state and indices.
    unsafe {
        let top = ffi::lua_gettop(l);
        ffi::lua_createtable(l, 0, idxs.len() as c_int);
        for (i, &idx) in idxs.iter().enumerate() {
            let idx = if idx < 0 { top + 1 + idx } else { idx };
            if ffi::lua_isnil(l, idx) != 0 {
                keys[i] = 0;
            } else {
                let k = new_key();
                keys[i] = k;
                ffi::lua_pushvalue(l, idx);
                ffi::lua_rawseti(l, -2, k as ffi::lua_Integer);
            }
        }
    }
}

/// Pushes the union of the value tables of the patterns at `i1` and `i2` (and `extra`, the
/// index of one more table, or 0); returns its size. Raises LPeg's error past the limit.
///
/// # Safety
/// `l` is valid; `i1`, `i2` hold patterns.
unsafe fn merge_ktables(l: *mut lua_State, i1: c_int, i2: c_int) -> u64 {
    // SAFETY: valid state; both are patterns.
    unsafe {
        let i1 = ffi::lua_absindex(l, i1);
        let i2 = ffi::lua_absindex(l, i2);
        let n1 = (*test_pattern(l, i1)).nvalues;
        let n2 = (*test_pattern(l, i2)).nvalues;
        get_values(l, i1, 1);
        get_values(l, i2, 1);
        if ffi::lua_rawequal(l, -1, -2) != 0 || n2 == 0 {
            ffi::lua_pop(l, 1);
            return n1;
        }
        if n1 == 0 {
            ffi::lua_remove(l, -2);
            return n2;
        }
        let n = n1 + n2;
        if n > MAX_VALUES {
            lua::raise_where(l, "too many Lua values in pattern".to_string());
        }
        ffi::lua_createtable(l, 0, n as c_int);
        for src in [-3, -2] {
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, src - 1) != 0 {
                ffi::lua_pushvalue(l, -2);
                ffi::lua_insert(l, -2);
                ffi::lua_rawset(l, -4);
            }
        }
        ffi::lua_rotate(l, -3, 1);
        ffi::lua_pop(l, 2);
        n
    }
}

/// Pushes a copy of the value table of the pattern at `pidx` with the values at `vals` added;
/// writes their keys; returns the new size.
///
/// # Safety
/// `l` is valid; `pidx` holds a pattern.
unsafe fn ktable_plus(l: *mut lua_State, pidx: c_int, vals: &[c_int], keys: &mut [Key]) -> u64 {
    // SAFETY: valid state and indices.
    unsafe {
        let pidx = ffi::lua_absindex(l, pidx);
        let n1 = (*test_pattern(l, pidx)).nvalues;
        let added = vals.iter().filter(|&&i| ffi::lua_isnil(l, i) == 0).count() as u64;
        if n1 + added > MAX_VALUES {
            lua::raise_where(l, "too many Lua values in pattern".to_string());
        }
        new_ktable(l, vals, keys);
        if n1 > 0 {
            get_values(l, pidx, 1);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                ffi::lua_pushvalue(l, -2);
                ffi::lua_insert(l, -2);
                ffi::lua_rawset(l, -5);
            }
            ffi::lua_pop(l, 1);
        }
        n1 + added
    }
}

/// Converts the value at `idx` into a pattern in place (LPeg's `getpatt`).
///
/// # Safety
/// `l` is valid; nothing with a destructor is alive in the caller.
unsafe fn to_patt(l: *mut lua_State, idx: c_int) {
    // SAFETY: valid state; every branch pushes one pattern and moves it into `idx`.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => {
                let p = new_pattern(l, 0, 0);
                let s = lua::to_bytes(l, idx).unwrap_or_default();
                if s.len() >= tree::MAX_SIZE as usize {
                    lua::raise_where(l, tree_error_msg(&TreeError::TooBig));
                }
                let t = match s.len() {
                    0 => Ok(tree::leaf(Node::True)),
                    1 => Ok(tree::leaf(Node::Char(s[0]))),
                    _ => tree::mk(Node::Seq(
                        s.iter().map(|&c| tree::leaf(Node::Char(c))).collect(),
                    )),
                };
                finish(l, p, t);
            }
            ffi::LUA_TNUMBER => {
                let n = ffi::lua_tointegerx(l, idx, std::ptr::null_mut());
                let p = new_pattern(l, 0, 0);
                finish(l, p, num_tree(n));
            }
            ffi::LUA_TBOOLEAN => {
                let b = ffi::lua_toboolean(l, idx) != 0;
                let p = new_pattern(l, 0, 0);
                finish(
                    l,
                    p,
                    Ok(tree::leaf(if b { Node::True } else { Node::False })),
                );
            }
            ffi::LUA_TTABLE => new_grammar(l, idx),
            ffi::LUA_TFUNCTION => {
                let mut k = [0];
                new_ktable(l, &[idx], &mut k);
                let p = new_pattern(l, -1, 1);
                ffi::lua_remove(l, -2);
                finish(l, p, tree::mk(Node::RunTime(k[0], tree::leaf(Node::True))));
            }
            _ => {
                ffi::luaL_checkudata(l, idx, PATTERN_T.as_ptr());
                return;
            }
        }
        ffi::lua_replace(l, idx);
    }
}

fn num_tree(n: i64) -> Result<Pat, TreeError> {
    if n == 0 {
        Ok(tree::leaf(Node::True))
    } else if n > 0 {
        Ok(tree::leaf(Node::Any(n.min(u32::MAX as i64) as u32)))
    } else {
        let m = n.unsigned_abs().min(u32::MAX as u64) as u32;
        tree::mk(Node::Not(tree::leaf(Node::Any(m))))
    }
}

/// A readable name for the value at `idx` (LPeg's `val2str`).
///
/// # Safety
/// `l` is valid.
unsafe fn val2str(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: valid state.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                ffi::lua_pushvalue(l, idx);
                let s =
                    String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or_default()).into_owned();
                ffi::lua_pop(l, 1);
                s
            }
            _ => format!("(a {})", lua::type_name(l, idx)),
        }
    }
}

/// Raises `fmt` with `%s` replaced by the name of the value `key` in the value table at `kidx`.
///
/// # Safety
/// `l` is valid; nothing with a destructor is alive in the caller.
unsafe fn raise_key(l: *mut lua_State, kidx: c_int, key: Key, fmt: &str) -> ! {
    // SAFETY: valid state.
    unsafe {
        let kidx = ffi::lua_absindex(l, kidx);
        ffi::lua_rawgeti(l, kidx, key as ffi::lua_Integer);
        let msg = fmt.replace("%s", &val2str(l, -1));
        lua::raise_where(l, msg)
    }
}

/// `P{...}`: pushes a grammar pattern made from the table at `t`.
///
/// # Safety
/// `l` is valid; nothing with a destructor is alive in the caller.
unsafe fn new_grammar(l: *mut lua_State, t: c_int) {
    // SAFETY: valid state; the steps follow the module's raising discipline (see its doc).
    unsafe {
        ffi::luaL_checkstack(l, 16, c"grammar too complex".as_ptr());
        let base = ffi::lua_gettop(l);
        // base+1: value table K, base+2: position table (name -> rule index),
        // base+3: rules (array of patterns), base+4: rule name keys (array of key ids).
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 0);
        let (kt, pos, rules, names) = (base + 1, base + 2, base + 3, base + 4);
        let mut nvalues: u64 = 0;
        let mut nrules: i64 = 0;
        // Initial rule.
        ffi::lua_rawgeti(l, t, 1);
        if ffi::lua_type(l, -1) == ffi::LUA_TSTRING || ffi::lua_type(l, -1) == ffi::LUA_TNUMBER {
            ffi::lua_pushvalue(l, -1);
            ffi::lua_gettable(l, t);
        } else {
            ffi::lua_pushinteger(l, 1);
            ffi::lua_insert(l, -2);
        }
        // stack: ... name rule
        if test_pattern(l, -1).is_null() {
            if ffi::lua_isnil(l, -1) != 0 {
                lua::raise_where(l, "grammar has no initial rule".to_string());
            }
            let name = val2str(l, -2);
            lua::raise_where(l, format!("initial rule '{name}' is not a pattern"));
        }
        let first_name = base + 5;
        ffi::lua_pushvalue(l, base + 5);
        ffi::lua_pushvalue(l, base + 6);
        add_rule(l, kt, pos, rules, names, &mut nrules, &mut nvalues);
        // Other rules.
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            let is_first = (ffi::lua_type(l, -2) == ffi::LUA_TNUMBER
                && ffi::lua_tonumberx(l, -2, std::ptr::null_mut()) == 1.0)
                || ffi::lua_rawequal(l, -2, first_name) != 0;
            if is_first {
                ffi::lua_pop(l, 1);
                continue;
            }
            if test_pattern(l, -1).is_null() {
                let name = val2str(l, -2);
                lua::raise_where(l, format!("rule '{name}' is not a pattern"));
            }
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            // stack: ... key key rule
            add_rule(l, kt, pos, rules, names, &mut nrules, &mut nvalues);
            // stack: ... key
        }
        ffi::lua_settop(l, base + 4);
        if nrules as usize > tree::MAX_RULES {
            ffi::luaL_argerror(l, t, c"grammar has too many rules".as_ptr());
        }
        // Resolve the calls of every rule: call key -> rule index, in a Lua table.
        ffi::lua_createtable(l, 0, 0);
        let calls = base + 5;
        for i in 1..=nrules {
            ffi::lua_rawgeti(l, rules, i);
            let rt = tree_at(l, -1);
            let mut fail_key: Key = 0;
            tree::open_calls_each(rt, &mut |k| {
                if fail_key != 0 {
                    return;
                }
                ffi::lua_rawgeti(l, kt, k as ffi::lua_Integer);
                ffi::lua_rawget(l, pos);
                if ffi::lua_isnil(l, -1) != 0 {
                    fail_key = k;
                } else {
                    ffi::lua_rawseti(l, calls, k as ffi::lua_Integer);
                    return;
                }
                ffi::lua_pop(l, 1);
            });
            if fail_key != 0 {
                raise_key(l, kt, fail_key, "rule '%s' undefined in given grammar");
            }
            ffi::lua_pop(l, 1);
        }
        // The result pattern; from here on Rust values are built and moved into it.
        let p = new_pattern(l, kt, nvalues);
        let res = build_grammar(l, rules, names, calls, nrules as usize);
        match res {
            Ok(t) => (*p).tree = Some(t),
            Err(GrammarError::LeftRecursive(k)) => {
                raise_key(l, kt, k, "rule '%s' may be left recursive")
            }
            Err(GrammarError::EmptyLoop(k)) => raise_key(l, kt, k, "empty loop in rule '%s'"),
            Err(GrammarError::TooManyLeftCalls) => {
                lua::raise_where(l, "too many left calls in grammar".to_string())
            }
            Err(GrammarError::Tree(e)) => {
                let msg = tree_error_msg(&e);
                drop(e);
                lua::raise_where(l, msg)
            }
        }
        ffi::lua_replace(l, base + 1);
        ffi::lua_settop(l, base + 1);
    }
}

/// Adds the rule on the top of the stack (name below it) to the grammar tables; pops both.
///
/// # Safety
/// As [`new_grammar`].
unsafe fn add_rule(
    l: *mut lua_State,
    kt: c_int,
    pos: c_int,
    rules: c_int,
    names: c_int,
    nrules: &mut i64,
    nvalues: &mut u64,
) {
    // SAFETY: valid state; the stack holds name, rule.
    unsafe {
        ffi::luaL_checkstack(l, 8, c"grammar has too many rules".as_ptr());
        let pat = test_pattern(l, -1);
        *nrules += 1;
        // Merge its values.
        *nvalues += (*pat).nvalues;
        if *nvalues > MAX_VALUES {
            lua::raise_where(l, "too many Lua values in pattern".to_string());
        }
        get_values(l, -1, 1);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, kt);
        }
        ffi::lua_pop(l, 1);
        ffi::lua_rawseti(l, rules, *nrules);
        // Name: position table and value table.
        let k = new_key();
        *nvalues += 1;
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawseti(l, kt, k as ffi::lua_Integer);
        ffi::lua_pushinteger(l, k as ffi::lua_Integer);
        ffi::lua_rawseti(l, names, *nrules);
        ffi::lua_pushinteger(l, *nrules - 1);
        ffi::lua_rawset(l, pos);
    }
}

enum GrammarError {
    LeftRecursive(Key),
    EmptyLoop(Key),
    TooManyLeftCalls,
    Tree(TreeError),
}

/// Builds and verifies the grammar node from the Lua tables of [`new_grammar`].
///
/// # Safety
/// As [`new_grammar`]; the tables are well formed. Only non-raising Lua calls are made.
unsafe fn build_grammar(
    l: *mut lua_State,
    rules_t: c_int,
    names_t: c_int,
    calls_t: c_int,
    n: usize,
) -> Result<Pat, GrammarError> {
    // SAFETY: valid state and tables built by new_grammar; rawgeti/next on them do not raise.
    unsafe {
        let mut rules = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        for i in 1..=n as ffi::lua_Integer {
            ffi::lua_rawgeti(l, rules_t, i);
            rules.push(tree_at(l, -1).clone());
            ffi::lua_pop(l, 1);
            ffi::lua_rawgeti(l, names_t, i);
            names.push(ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) as Key);
            ffi::lua_pop(l, 1);
        }
        let mut calls = std::collections::HashMap::new();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, calls_t) != 0 {
            let k = ffi::lua_tointegerx(l, -2, std::ptr::null_mut()) as Key;
            let v = ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) as usize;
            calls.insert(k, v);
            ffi::lua_pop(l, 1);
        }
        let g = tree::Grammar {
            rules,
            names,
            calls,
        };
        // Rules in use: the first one and every called one.
        let mut used = vec![false; n];
        used[0] = true;
        for &i in g.calls.values() {
            used[i] = true;
        }
        let mut done = std::collections::HashMap::new();
        for (i, r) in g.rules.iter().enumerate() {
            if !used[i] {
                continue;
            }
            let mut passed = Vec::new();
            match tree::verify_rule(&g, r, &mut passed, false, &mut done) {
                Ok(_) => {}
                Err(Some(j)) => return Err(GrammarError::LeftRecursive(g.names[j])),
                Err(None) => return Err(GrammarError::TooManyLeftCalls),
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            if used[i] && tree::has_empty_loop(r, Some(&g)) {
                return Err(GrammarError::EmptyLoop(g.names[i]));
            }
        }
        tree::mk(Node::Grammar(Box::new(g))).map_err(GrammarError::Tree)
    }
}

/// Pushes a pattern made of the pattern at 1 (converted) wrapped by `f`, sharing its values.
///
/// # Safety
/// `l` is valid; nothing with a destructor is alive in the caller.
unsafe fn unary(l: *mut lua_State, f: impl FnOnce(&Pat) -> Result<Pat, TreeError>) -> c_int {
    // SAFETY: valid state; argument 1 becomes a pattern.
    unsafe {
        to_patt(l, 1);
        let n = (*test_pattern(l, 1)).nvalues;
        get_values(l, 1, 1);
        let p = new_pattern(l, -1, n);
        let res = f(tree_at(l, 1));
        finish(l, p, res)
    }
}

/// Pushes a pattern combining the patterns at 1 and 2 (converted) by `f`.
///
/// # Safety
/// As [`unary`].
unsafe fn binary(l: *mut lua_State, f: impl FnOnce(&Pat, &Pat) -> Result<Pat, TreeError>) -> c_int {
    // SAFETY: valid state; arguments 1 and 2 become patterns.
    unsafe {
        to_patt(l, 1);
        to_patt(l, 2);
        let n = merge_ktables(l, 1, 2);
        let p = new_pattern(l, -1, n);
        let res = f(tree_at(l, 1), tree_at(l, 2));
        finish(l, p, res)
    }
}

/// Pushes a capture of `kind` over the pattern at 1, with the value at `vidx` (0: none).
///
/// # Safety
/// As [`unary`].
unsafe fn capture_aux(l: *mut lua_State, kind: CapKind, vidx: c_int) -> c_int {
    // SAFETY: valid state; argument 1 becomes a pattern.
    unsafe {
        to_patt(l, 1);
        let mut key = [0];
        let n = if vidx != 0 {
            ktable_plus(l, 1, &[vidx], &mut key)
        } else {
            get_values(l, 1, 1);
            (*test_pattern(l, 1)).nvalues
        };
        let p = new_pattern(l, -1, n);
        let res = tree::mk(Node::Cap(kind, key[0], tree_at(l, 1).clone()));
        finish(l, p, res)
    }
}

/// Pushes a capture of `kind` over the empty pattern, with `num` as its key.
///
/// # Safety
/// As [`unary`].
unsafe fn empty_cap(l: *mut lua_State, kind: CapKind, key: Key, kidx: c_int, n: u64) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let p = new_pattern(l, kidx, n);
        finish(l, p, tree::mk(Node::Cap(kind, key, tree::leaf(Node::True))))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_p(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        ffi::luaL_checkany(l, 1);
        to_patt(l, 1);
        ffi::lua_settop(l, 1);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lp_seq(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { binary(l, tree::seq) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_choice(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { binary(l, tree::choice) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_sub(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { binary(l, tree::sub) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_star(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let n = ffi::luaL_checkinteger(l, 2);
        unary(l, |p| tree::rep(p, n))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_and(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { unary(l, |p| tree::mk(Node::And(p.clone()))) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_not(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { unary(l, |p| tree::mk(Node::Not(p.clone()))) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_behind(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        to_patt(l, 1);
        let n = match tree::behind_len(tree_at(l, 1)) {
            Ok(n) => n,
            Err(m) => {
                ffi::lua_pushlstring(l, m.as_ptr().cast(), m.len());
                let msg = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
                ffi::luaL_argerror(l, 1, msg);
                return 0;
            }
        };
        unary(l, |p| tree::mk(Node::Behind(p.clone(), n)))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_set(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let mut len = 0;
        let s = ffi::luaL_checklstring(l, 1, &mut len);
        let bytes = std::slice::from_raw_parts(s.cast::<u8>(), len);
        let mut set = CharSet::EMPTY;
        for &c in bytes {
            set.add(c);
        }
        let p = new_pattern(l, 0, 0);
        finish(l, p, Ok(tree::set_node(set)))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_range(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let top = ffi::lua_gettop(l);
        let mut set = CharSet::EMPTY;
        for arg in 1..=top {
            let mut len = 0;
            let s = ffi::luaL_checklstring(l, arg, &mut len);
            if len != 2 {
                ffi::luaL_argerror(l, arg, c"range must have two characters".as_ptr());
            }
            let r = std::slice::from_raw_parts(s.cast::<u8>(), 2);
            for c in r[0]..=r[1] {
                set.add(c);
            }
        }
        let p = new_pattern(l, 0, 0);
        finish(l, p, Ok(tree::set_node(set)))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_utfr(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let from = ffi::luaL_checkinteger(l, 1) as u64;
        let to = ffi::luaL_checkinteger(l, 2) as u64;
        if from > to {
            ffi::luaL_argerror(l, 2, c"empty range".as_ptr());
        }
        if to <= 0x7f {
            let mut set = CharSet::EMPTY;
            for c in from..=to {
                set.add(c as u8);
            }
            let p = new_pattern(l, 0, 0);
            return finish(l, p, Ok(tree::set_node(set)));
        }
        if from > 0x10ffff {
            ffi::luaL_argerror(l, 1, c"invalid code point".as_ptr());
        }
        if to > 0x10ffff {
            ffi::luaL_argerror(l, 2, c"invalid code point".as_ptr());
        }
        let (lolen, _) = tree::utf_len(from as u32);
        let (hilen, _) = tree::utf_len(to as u32);
        let p = new_pattern(l, 0, 0);
        finish(
            l,
            p,
            Ok(tree::leaf(Node::Utf {
                lo: from as u32,
                hi: to as u32,
                lolen,
                hilen,
            })),
        )
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_v(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            ffi::luaL_argerror(l, 1, c"non-nil value expected".as_ptr());
        }
        let mut k = [0];
        new_ktable(l, &[1], &mut k);
        let p = new_pattern(l, -1, 1);
        finish(l, p, Ok(tree::leaf(Node::Call(k[0]))))
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_simplecapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { capture_aux(l, CapKind::Simple, 0) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_substcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { capture_aux(l, CapKind::Subst, 0) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_tablecapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { capture_aux(l, CapKind::Table, 0) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_groupcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        if ffi::lua_isnoneornil(l, 2) != 0 {
            capture_aux(l, CapKind::Group, 0)
        } else {
            capture_aux(l, CapKind::Group, 2)
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_foldcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);
        capture_aux(l, CapKind::Fold, 2)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_acccapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe { capture_aux(l, CapKind::Acc, 2) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_matchtime(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);
        to_patt(l, 1);
        let mut key = [0];
        let n = ktable_plus(l, 1, &[2], &mut key);
        let p = new_pattern(l, -1, n);
        let res = tree::mk(Node::RunTime(key[0], tree_at(l, 1).clone()));
        finish(l, p, res)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_divcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        match ffi::lua_type(l, 2) {
            ffi::LUA_TFUNCTION => capture_aux(l, CapKind::Function, 2),
            ffi::LUA_TTABLE => capture_aux(l, CapKind::Query, 2),
            ffi::LUA_TSTRING => capture_aux(l, CapKind::String, 2),
            ffi::LUA_TNUMBER => {
                let n = ffi::lua_tointegerx(l, 2, std::ptr::null_mut());
                to_patt(l, 1);
                if !(0..=SHRT_MAX).contains(&n) {
                    ffi::luaL_argerror(l, 1, c"invalid number".as_ptr());
                }
                let nv = (*test_pattern(l, 1)).nvalues;
                get_values(l, 1, 1);
                let p = new_pattern(l, -1, nv);
                let res = tree::mk(Node::Cap(CapKind::Num, n as Key, tree_at(l, 1).clone()));
                finish(l, p, res)
            }
            _ => {
                let t = lua::type_name(l, 2);
                lua::raise_where(l, format!("unexpected {t} as 2nd operand to LPeg '/'"))
            }
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_poscapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this.
    unsafe { empty_cap(l, CapKind::Position, 0, 0, 0) }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_argcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let n = ffi::luaL_checkinteger(l, 1);
        if !(0 < n && n <= SHRT_MAX) {
            ffi::luaL_argerror(l, 1, c"invalid argument index".as_ptr());
        }
        empty_cap(l, CapKind::Arg, n as Key, 0, 0)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_backref(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        ffi::luaL_checkany(l, 1);
        let mut k = [0];
        new_ktable(l, &[1], &mut k);
        let n = u64::from(k[0] != 0);
        empty_cap(l, CapKind::Backref, k[0], -1, n)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_constcapture(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n == 0 {
            let p = new_pattern(l, 0, 0);
            return finish(l, p, Ok(tree::leaf(Node::True)));
        }
        ffi::luaL_checkstack(l, 4, c"too many values".as_ptr());
        // A block of consecutive keys, one per value (0 for nil).
        let base = NEXT_KEY.fetch_add(n as u64, Ordering::Relaxed);
        ffi::lua_createtable(l, 0, n);
        let mut nv = 0u64;
        for i in 1..=n {
            if ffi::lua_isnil(l, i) == 0 {
                ffi::lua_pushvalue(l, i);
                ffi::lua_rawseti(l, -2, (base + i as u64 - 1) as ffi::lua_Integer);
                nv += 1;
            }
        }
        let p = new_pattern(l, -1, nv);
        let key = |i: c_int| -> Key {
            // SAFETY: i is a valid argument index.
            if ffi::lua_isnil(l, i) != 0 {
                0
            } else {
                base + i as u64 - 1
            }
        };
        let res = if n == 1 {
            tree::mk(Node::Cap(CapKind::Const, key(1), tree::leaf(Node::True)))
        } else {
            let items: Result<Vec<Pat>, TreeError> = (1..=n)
                .map(|i| tree::mk(Node::Cap(CapKind::Const, key(i), tree::leaf(Node::True))))
                .collect();
            items.and_then(|v| tree::mk(Node::Cap(CapKind::Group, 0, tree::mk(Node::Seq(v))?)))
        };
        finish(l, p, res)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_gc(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of our userdata: drop the Rust side once.
    unsafe {
        let p = test_pattern(l, 1);
        if !p.is_null() {
            std::ptr::drop_in_place(p);
            std::ptr::write(
                p,
                Pattern {
                    tree: None,
                    prog: None,
                    nvalues: 0,
                },
            );
        }
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lp_type(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        if !test_pattern(l, 1).is_null() {
            ffi::lua_pushstring(l, c"pattern".as_ptr());
        } else {
            ffi::lua_pushnil(l);
        }
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lp_setmax(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        let lim = ffi::luaL_checkinteger(l, 1);
        if !(0 < lim && lim <= i32::MAX as i64 / 16) {
            ffi::luaL_argerror(l, 1, c"out of range".as_ptr());
        }
        ffi::lua_settop(l, 1);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, MAXSTACK_KEY.as_ptr());
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lp_locale(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            ffi::lua_settop(l, 0);
            ffi::lua_createtable(l, 0, 12);
        } else {
            ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
            ffi::lua_settop(l, 1);
        }
        type Class = unsafe extern "C" fn(c_int) -> c_int;
        let classes: [(&CStr, Class); 11] = [
            (c"alnum", libc::isalnum),
            (c"alpha", libc::isalpha),
            (c"cntrl", libc::iscntrl),
            (c"digit", libc::isdigit),
            (c"graph", libc::isgraph),
            (c"lower", libc::islower),
            (c"print", libc::isprint),
            (c"punct", libc::ispunct),
            (c"space", libc::isspace),
            (c"upper", libc::isupper),
            (c"xdigit", libc::isxdigit),
        ];
        for (name, f) in classes {
            let mut set = CharSet::EMPTY;
            for c in 0..=255u8 {
                if f(c as c_int) != 0 {
                    set.add(c);
                }
            }
            let p = new_pattern(l, 0, 0);
            finish(l, p, Ok(tree::set_node(set)));
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

/// Compiles the pattern at 1 if needed; sets its program and value array.
///
/// # Safety
/// `l` is valid, 1 holds a pattern; nothing with a destructor is alive in the caller.
unsafe fn ensure_compiled(l: *mut lua_State) {
    // SAFETY: valid state; the program is moved into the userdata before any raise.
    unsafe {
        let p = test_pattern(l, 1);
        if (*p).prog.is_some() {
            return;
        }
        let res = code::compile((*p).tree.as_ref().expect("pattern without tree"));
        match res {
            Ok(prog) => (*p).prog = Some(Rc::new(prog)),
            Err(CompileError::OutsideGrammar(k)) => {
                get_values(l, 1, 1);
                raise_key(l, -1, k, "rule '%s' used outside a grammar")
            }
            Err(CompileError::TooLarge) => {
                lua::raise_where(l, "pattern code too large".to_string())
            }
        }
        let prog = (*p).prog.as_ref().unwrap();
        let nv = prog.values.len();
        ffi::luaL_checkstack(l, 4, c"too many values".as_ptr());
        ffi::lua_createtable(l, nv as c_int, 0);
        get_values(l, 1, 1);
        for i in 0..nv {
            let k = (*p).prog.as_ref().unwrap().values[i];
            ffi::lua_rawgeti(l, -1, k as ffi::lua_Integer);
            ffi::lua_rawseti(l, -3, i as ffi::lua_Integer + 1);
        }
        ffi::lua_pop(l, 1);
        ffi::lua_setiuservalue(l, 1, 2);
    }
}

/// The subject start for `init` (LPeg's `initposition`).
fn init_position(ii: i64, len: usize) -> usize {
    if ii > 0 {
        if (ii as u64) <= len as u64 {
            ii as usize - 1
        } else {
            len
        }
    } else if ii.unsigned_abs() <= len as u64 {
        len - ii.unsigned_abs() as usize
    } else {
        0
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_match(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments; see `capture::run_match` for the protocol.
    unsafe {
        to_patt(l, 1);
        ensure_compiled(l);
        get_values(l, 1, 2);
        ffi::lua_pop(l, 1);
        let mut len = 0;
        let s = ffi::luaL_checklstring(l, 2, &mut len);
        let ii = ffi::luaL_optinteger(l, 3, 1);
        let init = init_position(ii, len);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, MAXSTACK_KEY.as_ptr());
        // The stack starts with MAXBACK entries and grows up to the limit, so a smaller
        // limit acts as MAXBACK (as LPeg), while the message names the limit set.
        let limit = ffi::lua_tointegerx(l, -1, std::ptr::null_mut());
        ffi::lua_pop(l, 1);
        let subject = std::slice::from_raw_parts(s.cast::<u8>(), len);
        let prog: *const Rc<Program> = (*test_pattern(l, 1)).prog.as_ref().unwrap();
        capture::run_match(l, &*prog, subject, init, limit)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lp_printtree(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        to_patt(l, 1);
        let mut out = String::new();
        dump_tree(tree_at(l, 1), 0, &mut out);
        write_stdout(&out);
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lp_printcode(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with its arguments.
    unsafe {
        to_patt(l, 1);
        ensure_compiled(l);
        let prog = (*test_pattern(l, 1)).prog.as_ref().unwrap();
        let mut out = String::new();
        for (i, op) in prog.code.iter().enumerate() {
            out.push_str(&format!("{i:4}: {op:?}\n"));
        }
        write_stdout(&out);
    }
    0
}

/// Prints a dump as LPeg's debug printers do (to stdout); a closed stdout is ignored.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn dump_tree(p: &tree::Tree, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent * 2);
    let kids: Vec<&Pat> = match &p.node {
        Node::True => {
            out.push_str(&format!("{pad}true\n"));
            vec![]
        }
        Node::False => {
            out.push_str(&format!("{pad}false\n"));
            vec![]
        }
        Node::Char(c) => {
            out.push_str(&format!("{pad}char '{}'\n", (*c as char).escape_default()));
            vec![]
        }
        Node::Set(s) => {
            out.push_str(&format!("{pad}set ["));
            let mut c = 0u32;
            while c < 256 {
                if s.has(c as u8) {
                    let start = c;
                    while c + 1 < 256 && s.has((c + 1) as u8) {
                        c += 1;
                    }
                    out.push_str(&format!("({:02x}-{:02x})", start, c));
                }
                c += 1;
            }
            out.push_str("]\n");
            vec![]
        }
        Node::Any(n) => {
            out.push_str(&format!("{pad}any {n}\n"));
            vec![]
        }
        Node::Utf { lo, hi, .. } => {
            out.push_str(&format!("{pad}utf8.range {lo:x} - {hi:x}\n"));
            vec![]
        }
        Node::Seq(v) => {
            out.push_str(&format!("{pad}seq\n"));
            v.iter().collect()
        }
        Node::Choice(v) => {
            out.push_str(&format!("{pad}choice\n"));
            v.iter().collect()
        }
        Node::Rep(q) => {
            out.push_str(&format!("{pad}rep\n"));
            vec![q]
        }
        Node::AtMost(q, n) => {
            out.push_str(&format!("{pad}atmost {n}\n"));
            vec![q]
        }
        Node::Not(q) => {
            out.push_str(&format!("{pad}not\n"));
            vec![q]
        }
        Node::And(q) => {
            out.push_str(&format!("{pad}and\n"));
            vec![q]
        }
        Node::Behind(q, n) => {
            out.push_str(&format!("{pad}behind {n}\n"));
            vec![q]
        }
        Node::Cap(k, key, q) => {
            out.push_str(&format!("{pad}capture {} key: {key}\n", k.name()));
            vec![q]
        }
        Node::RunTime(key, q) => {
            out.push_str(&format!("{pad}run-time key: {key}\n"));
            vec![q]
        }
        Node::Call(key) => {
            out.push_str(&format!("{pad}call key: {key}\n"));
            vec![]
        }
        Node::Grammar(g) => {
            out.push_str(&format!("{pad}grammar {}\n", g.rules.len()));
            g.rules.iter().collect()
        }
    };
    for k in kids {
        dump_tree(k, indent + 1, out);
    }
}

const FUNCS: &[(&CStr, CFunction)] = &[
    (c"ptree", lp_printtree),
    (c"pcode", lp_printcode),
    (c"match", lp_match),
    (c"B", lp_behind),
    (c"V", lp_v),
    (c"C", lp_simplecapture),
    (c"Cc", lp_constcapture),
    (c"Cmt", lp_matchtime),
    (c"Cb", lp_backref),
    (c"Carg", lp_argcapture),
    (c"Cp", lp_poscapture),
    (c"Cs", lp_substcapture),
    (c"Ct", lp_tablecapture),
    (c"Cf", lp_foldcapture),
    (c"Cg", lp_groupcapture),
    (c"P", lp_p),
    (c"S", lp_set),
    (c"R", lp_range),
    (c"utfR", lp_utfr),
    (c"locale", lp_locale),
    (c"setmaxstack", lp_setmax),
    (c"type", lp_type),
];

const META: &[(&CStr, CFunction)] = &[
    (c"__mul", lp_seq),
    (c"__add", lp_choice),
    (c"__pow", lp_star),
    (c"__gc", lp_gc),
    (c"__len", lp_and),
    (c"__div", lp_divcapture),
    (c"__mod", lp_acccapture),
    (c"__unm", lp_not),
    (c"__sub", lp_sub),
];

/// `require "lpeg"`.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_lpeg(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::luaL_newmetatable(l, PATTERN_T.as_ptr());
        ffi::lua_pushinteger(l, MAXBACK);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, MAXSTACK_KEY.as_ptr());
        lua::set_funcs(l, META, 0);
        lua::new_lib(l, FUNCS);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, -3, c"__index".as_ptr());
        ffi::lua_pushstring(l, c"LPeg 1.1.0".as_ptr());
        ffi::lua_setfield(l, -2, c"version".as_ptr());
    }
    1
}

#[cfg(test)]
mod tests;
