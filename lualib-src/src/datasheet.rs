//! `skynet.datasheet.core`: read-only proxies over a datasheet document (the binary form
//! `skynet.datasheet.dump` makes of a table) shared between services.
//!
//! The builder service turns a document string into a handle with `stringpointer(str)`; other
//! services get the handle through the `datasheet` service and call `new(handle)` → a proxy for
//! the root table. A proxy is an empty table whose `__index`/`__pairs`/`__len` fill it from the
//! document on first use (then drop the metatable); sub-tables become proxies of their own,
//! cached per table so that the same sub-table gives the same Lua table. `update(proxy,
//! handle)` moves every proxy of the proxy's document to the new document, emptying them so
//! that they refill on next use.
//!
//! Differences from upstream, for safety: `stringpointer` registers a copy of the bytes under
//! the string's address (the handle is still that address), and `new`/`update` accept only a
//! registered handle. Proxies share that copy (an `Arc`), so the bytes stay alive as long as a
//! proxy uses them, whatever the builder does with its string (upstream relies on the builder
//! keeping the string until the `datasheet` service reports it collected). A registered copy
//! is dropped when its address is registered again, or when the Lua state that registered it
//! closes. Every offset read from a document is checked ([`doc`]): a corrupt document is a Lua
//! error. `update` returns nothing.

pub mod doc;

use crate::lua::lua_function;
use crate::lua::{ffi, push_bytes, raise_where, CFunction};
use doc::Value;
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Arc, OnceLock};

/// Registered documents: handle (the builder's string address) → bytes.
fn documents() -> &'static Mutex<HashMap<usize, Arc<[u8]>>> {
    static D: OnceLock<Mutex<HashMap<usize, Arc<[u8]>>>> = OnceLock::new();
    D.get_or_init(Default::default)
}

/// Registry field: table address (light userdata) → proxy table (weak keys and values).
const NODECACHE: &CStr = c"_ctable";
/// Registry field: proxy table → `Proxy` userdata (weak keys).
const PROXYCACHE: &CStr = c"_proxy";
const PROXY_META: &CStr = c"skynet.datasheet.proxy";
const OWNER_META: &CStr = c"skynet.datasheet.owner";

/// Userdata body behind a proxy table: its document and table index.
struct Proxy {
    doc: Option<Arc<[u8]>>,
    index: u32,
}

/// Userdata body (one per Lua state) listing the documents this state registered.
struct Owner(Vec<(usize, Arc<[u8]>)>);

/// Pushes a new `Proxy` userdata (empty, then filled by the caller).
///
/// # Safety
/// `l` is valid; the proxy metatable exists.
unsafe fn push_proxy_ud<'a>(l: *mut lua_State, index: u32) -> &'a mut Proxy {
    // SAFETY: valid state; the block is sized for Proxy (userdata is pointer-aligned).
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Proxy>(), 0).cast::<Proxy>();
        p.write(Proxy { doc: None, index });
        ffi::luaL_setmetatable(l, PROXY_META.as_ptr());
        &mut *p
    }
}

/// Pushes the proxy table of table `index` of `doc` (from the cache, or new).
///
/// # Safety
/// `l` is valid, inside a function whose upvalue 1 is the proxy metatable; `doc` is owned by a
/// value that stays on the stack.
unsafe fn push_proxy(l: *mut lua_State, doc: &Arc<[u8]>, index: u32) {
    let t = match doc::table(doc, index) {
        Ok(t) => t,
        // SAFETY: only the message is alive.
        Err(e) => unsafe { raise_where(l, e) },
    };
    let key = doc.as_ptr().wrapping_add(t.offset) as *const c_void;
    // SAFETY: valid state; only borrowed values are alive across the raising calls.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        if ffi::lua_rawgetp(l, -1, key) == ffi::LUA_TTABLE {
            ffi::lua_replace(l, -2);
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_newtable(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, -3, key);
        // NODECACHE, table
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        ffi::lua_pushvalue(l, -2);
        let p = push_proxy_ud(l, index);
        p.doc = Some(Arc::clone(doc));
        ffi::lua_rawset(l, -3);
        ffi::lua_pop(l, 1);
        ffi::lua_replace(l, -2);
    }
}

/// The `Proxy` of the proxy table at `idx`, pushed on the stack (raises if it is not one).
///
/// # Safety
/// `l` is valid.
unsafe fn proxy_of<'a>(l: *mut lua_State, idx: c_int) -> &'a mut Proxy {
    // SAFETY: valid state; luaL_testudata checks the userdata is ours.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        ffi::lua_pushvalue(l, idx);
        ffi::lua_rawget(l, -2);
        let p = ffi::luaL_testudata(l, -1, PROXY_META.as_ptr()).cast::<Proxy>();
        if p.is_null() {
            raise_where(
                l,
                format!("Invalid proxy table {:p}", ffi::lua_topointer(l, idx)),
            )
        }
        ffi::lua_remove(l, -2);
        &mut *p
    }
}

/// The registered document for the light userdata at `idx`, pushed as a holder userdata.
///
/// # Safety
/// `l` is valid; the proxy metatable exists.
unsafe fn push_document<'a>(l: *mut lua_State, idx: c_int) -> &'a Arc<[u8]> {
    // SAFETY: valid state.
    unsafe {
        ffi::luaL_checktype(l, idx, ffi::LUA_TLIGHTUSERDATA);
        let handle = ffi::lua_touserdata(l, idx) as usize;
        let holder = push_proxy_ud(l, u32::MAX);
        let found = documents().lock().get(&handle).cloned();
        match found {
            Some(d) => holder.doc.insert(d),
            None => raise_where(l, format!("Invalid datasheet pointer {handle:#x}")),
        }
    }
}

/// Pushes one document value.
///
/// # Safety
/// As [`push_proxy`].
unsafe fn push_value(l: *mut lua_State, doc: &Arc<[u8]>, v: Value) {
    // SAFETY: valid state.
    unsafe {
        match v {
            Value::Nil => ffi::lua_pushnil(l),
            Value::Integer(i) => ffi::lua_pushinteger(l, i as ffi::lua_Integer),
            Value::Real(f) => ffi::lua_pushnumber(l, f as ffi::lua_Number),
            Value::Boolean(b) => ffi::lua_pushboolean(l, b as c_int),
            Value::Table(i) => push_proxy(l, doc, i),
            Value::Str(s) => push_bytes(l, s),
        }
    }
}

/// Fills the proxy table at index 1 from its document and removes its metatable.
///
/// # Safety
/// As [`push_proxy`]; index 1 is the table.
unsafe fn fill(l: *mut lua_State) {
    // SAFETY: valid state; the proxy userdata stays on the stack while `doc` is borrowed, and
    // nothing owned is alive across the raising calls.
    unsafe {
        let p = proxy_of(l, 1);
        let index = p.index;
        let Some(doc) = &p.doc else {
            raise_where(l, "Invalid proxy (no document)".to_string())
        };
        let t = match doc::table(doc, index) {
            Ok(t) => t,
            Err(e) => raise_where(l, format!("Invalid proxy (index = {index}): {e}")),
        };
        for i in 0..t.array {
            match doc::array_item(doc, &t, i) {
                Ok(v) => push_value(l, doc, v),
                Err(e) => raise_where(l, e),
            }
            ffi::lua_rawseti(l, 1, i as ffi::lua_Integer + 1);
        }
        for i in 0..t.dict {
            match doc::dict_item(doc, &t, i) {
                Ok((k, v)) => {
                    push_bytes(l, k);
                    push_value(l, doc, v);
                }
                Err(e) => raise_where(l, e),
            }
            ffi::lua_rawset(l, 1);
        }
        ffi::lua_pop(l, 1);
        ffi::lua_pushnil(l);
        ffi::lua_setmetatable(l, 1);
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lindex(l: *mut lua_State) -> c_int {
    // SAFETY: called as __index(t, k).
    unsafe {
        ffi::lua_settop(l, 2);
        fill(l);
        ffi::lua_rawget(l, 1);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lnext(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(l, 2);
        if ffi::lua_next(l, 1) != 0 {
            2
        } else {
            ffi::lua_pushnil(l);
            1
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lpairs(l: *mut lua_State) -> c_int {
    // SAFETY: called as __pairs(t).
    unsafe {
        ffi::lua_settop(l, 1);
        fill(l);
        ffi::lua_pushcfunction(l, lnext);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushnil(l);
    }
    3
}

#[lua_function]
unsafe extern "C-unwind" fn llen(l: *mut lua_State) -> c_int {
    // SAFETY: called as __len(t).
    unsafe {
        ffi::lua_settop(l, 1);
        fill(l);
        ffi::lua_pushinteger(l, ffi::lua_rawlen(l, 1) as ffi::lua_Integer);
    }
    1
}

/// `new(handle)` → proxy of the document's root table.
#[lua_function]
unsafe extern "C-unwind" fn lnew(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the holder userdata keeps the document while we use it.
    unsafe {
        let doc = push_document(l, 1);
        push_proxy(l, doc, 0);
    }
    1
}

/// `update(proxy, handle)`: every proxy of `proxy`'s document moves to the new document.
#[lua_function]
unsafe extern "C-unwind" fn lupdate(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the userdata on the stack keep both documents alive; no owned Rust
    // value is alive across a raising call.
    unsafe {
        ffi::lua_settop(l, 2);
        let old = match &proxy_of(l, 1).doc {
            Some(d) => Arc::as_ptr(d) as *const u8 as usize,
            None => 0,
        };
        let new = push_document(l, 2);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        let t = ffi::lua_gettop(l);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        let pt = t + 1;
        ffi::lua_newtable(l);
        let nt = t + 2;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            // key, table
            ffi::lua_pushvalue(l, -1);
            let p = if ffi::lua_rawget(l, pt) == ffi::LUA_TUSERDATA {
                ffi::luaL_testudata(l, -1, PROXY_META.as_ptr()).cast::<Proxy>()
            } else {
                std::ptr::null_mut()
            };
            let same = !p.is_null()
                && (*p)
                    .doc
                    .as_ref()
                    .map(|d| Arc::as_ptr(d) as *const u8 as usize)
                    == Some(old);
            if !same {
                ffi::lua_pop(l, 2);
                continue;
            }
            (*p).doc = Some(Arc::clone(new));
            let newkey = doc::table(new, (*p).index)
                .ok()
                .map(|nt| new.as_ptr().wrapping_add(nt.offset) as *const c_void);
            ffi::lua_pop(l, 1);
            // key, table: empty it and give it its metatable back
            let tbl = ffi::lua_gettop(l);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, tbl) != 0 {
                ffi::lua_pop(l, 1);
                ffi::lua_pushvalue(l, -1);
                ffi::lua_pushnil(l);
                ffi::lua_rawset(l, tbl);
            }
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
            ffi::lua_setmetatable(l, tbl);
            match newkey {
                Some(k) => ffi::lua_rawsetp(l, nt, k),
                None => ffi::lua_pop(l, 1),
            }
            // key
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, t);
        }
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, nt) != 0 {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, t);
        }
    }
    0
}

/// `stringpointer(str)` → the string's address as a handle, with a copy of its bytes
/// registered for `new`/`update`. Upvalue 1: this state's `Owner`.
#[lua_function]
unsafe extern "C-unwind" fn lstringpointer(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the string stays on the stack while borrowed.
    let (ptr, bytes, owner) = unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        let owner = &mut *ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)).cast::<Owner>();
        (p, std::slice::from_raw_parts(p.cast::<u8>(), len), owner)
    };
    let handle = ptr as usize;
    {
        let mut docs = documents().lock();
        let doc = match docs.get(&handle) {
            Some(d) if **d == *bytes => Arc::clone(d),
            _ => {
                let d: Arc<[u8]> = Arc::from(bytes);
                docs.insert(handle, Arc::clone(&d));
                d
            }
        };
        owner.0.retain(|(h, _)| *h != handle);
        owner.0.push((handle, doc));
    }
    // SAFETY: valid state.
    unsafe { ffi::lua_pushlightuserdata(l, ptr as *mut c_void) };
    1
}

/// `__gc` of a proxy userdata.
#[lua_function]
unsafe extern "C-unwind" fn lproxygc(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of our userdata.
    let p = unsafe { ffi::luaL_testudata(l, 1, PROXY_META.as_ptr()).cast::<Proxy>() };
    if !p.is_null() {
        // SAFETY: a live block of our type.
        let d = unsafe { (*p).doc.take() };
        drop(d);
    }
    0
}

/// `__gc` of the state's `Owner`: unregisters what this state registered.
#[lua_function]
unsafe extern "C-unwind" fn lownergc(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of our userdata.
    let o = unsafe { ffi::luaL_testudata(l, 1, OWNER_META.as_ptr()).cast::<Owner>() };
    if o.is_null() {
        return 0;
    }
    // SAFETY: a live block of our type.
    let owned = std::mem::take(unsafe { &mut (*o).0 });
    let mut docs = documents().lock();
    for (h, d) in &owned {
        if docs.get(h).is_some_and(|cur| Arc::ptr_eq(cur, d)) {
            docs.remove(h);
        }
    }
    drop(docs);
    drop(owned);
    0
}

fn new_weak_table(l: *mut lua_State, mode: &CStr) {
    // SAFETY: valid state (callers are Lua functions).
    unsafe {
        ffi::lua_newtable(l);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, mode.as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
}

/// Opens `skynet.datasheet.core`.
///
/// # Safety
/// Called by Lua.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_datasheet_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, PROXY_META.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, lproxygc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
        if ffi::luaL_newmetatable(l, OWNER_META.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, lownergc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
        new_weak_table(l, c"kv");
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        new_weak_table(l, c"k");
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());

        ffi::lua_createtable(l, 0, 3); // module
        ffi::lua_createtable(l, 0, 3); // proxy metatable
        ffi::lua_pushvalue(l, -1);
        crate::lua::set_funcs(
            l,
            &[
                (c"__index", lindex as CFunction),
                (c"__pairs", lpairs),
                (c"__len", llen),
            ],
            1,
        );
        // module, metatable
        crate::lua::set_funcs(l, &[(c"new", lnew as CFunction), (c"update", lupdate)], 1);
        let o = ffi::lua_newuserdatauv(l, std::mem::size_of::<Owner>(), 0).cast::<Owner>();
        o.write(Owner(Vec::new()));
        ffi::luaL_setmetatable(l, OWNER_META.as_ptr());
        // Anchored in the registry so that it lives as long as the state.
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, OWNER_META.as_ptr());
        ffi::lua_pushcclosure(l, lstringpointer, 1);
        ffi::lua_setfield(l, -2, c"stringpointer".as_ptr());
    }
    1
}

#[cfg(test)]
mod tests {
    use super::luaopen_skynet_datasheet_core;
    use crate::testlua::check;

    const DS: &[(&std::ffi::CStr, crate::lua::CFunction)] = &[(
        c"core",
        luaopen_skynet_datasheet_core as crate::lua::CFunction,
    )];

    /// A Lua port of the dump format, enough to build documents in tests.
    const DUMP: &str = r#"
    local function dump(root)
        local tables, strings, soff, sidx = {}, {}, 0, {}
        local function str(s)
            if not sidx[s] then sidx[s] = soff; soff = soff + #s + 1; strings[#strings+1] = s end
            return string.pack("<I4", sidx[s])
        end
        local function tbl(t)
            local idx = #tables + 1
            tables[idx] = false
            local types, vals, kvs, n = {}, {}, {}, 0
            local function enc(v)
                local ty = type(v)
                if ty == "table" then return "\4", string.pack("<i4", tbl(v) - 1)
                elseif ty == "number" then
                    if math.tointeger(v) and v <= 0x7fffffff and v >= -0x80000000 then
                        return "\1", string.pack("<i4", v)
                    end
                    return "\2", string.pack("<f", v)
                elseif ty == "boolean" then return "\3", v and "\0\0\0\1" or "\0\0\0\0"
                else return "\5", str(v) end
            end
            for i, v in ipairs(t) do types[i], vals[i] = enc(v); n = i end
            local keys = {}
            for k in pairs(t) do if type(k) == "string" then keys[#keys+1] = k end end
            table.sort(keys)
            for _, k in ipairs(keys) do
                local kk = str(k)
                local ty, ev = enc(t[k])
                types[#types+1] = ty; kvs[#kvs+1] = kk .. ev
            end
            local ts = table.concat(types)
            tables[idx] = string.pack("<i4i4", n, #kvs) .. ts .. string.rep("\0", (4 - #ts & 3) & 3)
                .. table.concat(vals) .. table.concat(kvs)
            return idx
        end
        tbl(root)
        local index, off = {}, 0
        for i, v in ipairs(tables) do index[i] = string.pack("<I4", off); off = off + #v end
        return string.pack("<I4I4", 8 + 4 * #tables + off, #tables) .. table.concat(index)
            .. table.concat(tables) .. table.concat(strings, "\0") .. "\0"
    end
    "#;

    fn run(code: &str) {
        check(DS, &[], &format!("{DUMP}\n{code}"));
    }

    #[test]
    fn proxies_read_the_document() {
        run(r#"
            local s = dump { 1, "two", 3.5, true, false, { x = "y", 7 }, name = "sheet", n = -5,
                sub = { deep = { 42 } } }
            local p = core.stringpointer(s)
            assert(type(p) == "userdata")
            assert(core.stringpointer(s) == p)
            local t = core.new(p)
            assert(#t == 6)
            assert(t[1] == 1 and math.type(t[1]) == "integer" and t[2] == "two" and t[3] == 3.5)
            assert(t[4] == true and t[5] == false)
            assert(t[6].x == "y" and t[6][1] == 7)
            assert(t.name == "sheet" and t.n == -5)
            assert(t.sub.deep[1] == 42)
            assert(t.sub == t.sub)
            local keys = {}
            for k, v in pairs(t.sub) do keys[#keys+1] = k end
            assert(#keys == 1 and keys[1] == "deep")
            local t2 = core.new(p)
            assert(t2 == t)  -- same root table from the cache
            assert(not pcall(core.new, nullptr))
            assert(not pcall(core.new, "x"))
            assert(not pcall(core.stringpointer, {}))
            local ok, e = pcall(core.update, {}, p)
            assert(not ok and e:find "Invalid proxy table")
            "#);
    }

    #[test]
    fn update_rebinds_every_proxy() {
        run(r#"
            local p1 = core.stringpointer(dump { a = 1, sub = { 1, 2 }, keep = { v = "old" } })
            local t = core.new(p1)
            local sub, keep = t.sub, t.keep
            assert(#sub == 2 and keep.v == "old")
            local p2 = core.stringpointer(dump { a = 2, sub = { 5, 6, 7 }, keep = { v = "new" } })
            assert(core.update(t, p2) == nil)
            assert(t.a == 2)
            assert(#sub == 3 and sub[3] == 7)
            assert(keep.v == "new")
            -- tables of the new document missing in the old one work as well
            local p3 = core.stringpointer(dump { a = 3 })
            core.update(t, p3)
            assert(t.a == 3 and t.sub == nil)
            assert(not pcall(core.update, t, nullptr))
            "#);
    }

    #[test]
    fn corrupt_documents_are_lua_errors() {
        run(r#"
            local good = dump { 1, "s", { 2 }, k = "v" }
            local function try(doc)
                local t = core.new(core.stringpointer(doc))
                local n = 0
                for k, v in pairs(t) do n = n + 1; if type(v) == "table" then local _ = #v end end
                return n
            end
            assert(try(good) == 4)
            for cut = 0, #good - 1 do
                assert(not pcall(try, good:sub(1, cut)), cut)
            end
            -- random bytes everywhere: never a crash
            for i = 1, #good do
                for _, b in ipairs { 0, 0x7f, 0xff } do
                    pcall(try, good:sub(1, i - 1) .. string.char(b) .. good:sub(i + 1))
                end
            end
            local ok, e = pcall(try, string.pack("<I4I4I4", 0, 5, 0xffffffff))
            assert(not ok and e:find "Invalid index", e)
            "#);
    }

    #[test]
    fn documents_outlive_the_string_and_are_unregistered() {
        run(r#"
            local t
            do
                local s = dump { v = { "kept" } } .. ""
                t = core.new(core.stringpointer(s))
                s = nil
            end
            collectgarbage() collectgarbage()
            assert(t.v[1] == "kept")
            "#);
    }
}
