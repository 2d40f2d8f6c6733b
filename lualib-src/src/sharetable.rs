//! `skynet.sharetable.core`, for lualib's `skynet.sharetable`: `matrix(source, ...)` runs a
//! data file (or Lua source) once and keeps its resulting table; `clone(ptr)` gives it to a
//! reader; `stackvalues(co, t)` and `is_sharedtable(t)` serve `sharetable.update`.
//!
//! Upstream shares the very table between VMs: its patched Lua can mark a table, its strings
//! and its functions as shared and clone a table header into another VM. We embed a stock Lua,
//! where objects of one VM must never be reachable from another, so this module gives COPY
//! semantics behind the same API: `matrix` runs the source in a fresh Lua state, converts the
//! result into an immutable Rust structure (a graph of tables: shared sub-tables and cycles keep
//! their shape; strings as bytes; functions without upvalues as binary chunks; light C
//! functions and light userdata as they are), then closes that state. `clone` builds fresh Lua
//! tables in the caller's VM from it. Differences: every reader holds its own copy (memory per
//! reader, and a clone costs time proportional to the table's size); `clone` of the same
//! pointer twice in one VM gives the same table while that VM keeps it (a weak cache, as
//! upstream gives the same shared table), otherwise a new copy; writes to a clone succeed (upstream's shared tables
//! are read-only) and are seen by that reader only; `box:size()` is an estimate of the stored
//! structure, not a VM's memory. `is_sharedtable(t)` is true for every table a `clone` built in
//! this VM (a weak-keyed set), false otherwise.
//!
//! Lifetime: a matrix is an `Arc` held by its box; `getptr` gives its address and a registry of
//! weak references maps it back, so `clone` of a closed (or unknown) pointer is a Lua error, not
//! a read of freed memory. Unlike upstream, a box that is collected without `close` frees its
//! matrix too.

use crate::lua::lua_function;
use crate::lua::{ffi, push_bytes, raise, raise_where, CFunction};
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// A stored value.
#[derive(Debug, Clone)]
enum SVal {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Box<[u8]>),
    /// Index into `Matrix::tables`.
    Table(u32),
    /// Index into `Matrix::funcs`.
    Func(u32),
    CFunc(CFunction),
    Light(usize),
}

#[derive(Debug, Default)]
struct STable {
    /// Values of keys 1..=n (None: a hole).
    array: Vec<Option<SVal>>,
    hash: Vec<(SVal, SVal)>,
}

/// The frozen result of `matrix`: table 0 is the root.
#[derive(Debug, Default)]
pub struct Matrix {
    tables: Vec<STable>,
    /// Binary chunks of the Lua functions (no upvalues).
    funcs: Vec<Box<[u8]>>,
    size: usize,
    /// Unique per matrix (a freed matrix's address may be reused by a new one).
    id: i64,
}

fn matrices() -> &'static Mutex<HashMap<usize, Weak<Matrix>>> {
    static M: OnceLock<Mutex<HashMap<usize, Weak<Matrix>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

const BOX: &CStr = c"BOXMATRIXSTATE";
const PIN: &CStr = c"skynet.sharetable.pin";
/// Registry key of the weak set of tables made by `clone` (a root maps to its matrix's id,
/// a sub-table to true).
const CLONED: &CStr = c"skynet.sharetable.cloned";
/// Registry key of the weak-valued cache pointer → cloned root, so that querying the same
/// version twice in one VM gives the same table (as upstream, where it is the shared table).
const CACHE: &CStr = c"skynet.sharetable.cache";

/// Userdata body of a box, and of the pin that keeps a matrix alive during a clone.
struct Holder(Option<Arc<Matrix>>);

// ---------------------------------------------------------------------------------------------
// Building a matrix (inside the private state, under lua_pcall).

/// Accumulates the matrix; owned by the Rust frame that runs the private state, so a Lua error
/// in the walk loses nothing.
#[derive(Default)]
struct Walk {
    m: Matrix,
    seen_tables: HashMap<usize, u32>,
    seen_funcs: HashMap<usize, u32>,
    scratch: Vec<u8>,
}

unsafe extern "C-unwind" fn dump_writer(
    _l: *mut lua_State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    if !p.is_null() && sz > 0 {
        // SAFETY: ud is the Vec given to lua_dump; p holds sz bytes.
        unsafe {
            (*ud.cast::<Vec<u8>>()).extend_from_slice(std::slice::from_raw_parts(p.cast(), sz))
        };
    }
    0
}

/// Stack index of the memo table (id → table) in the private state.
const MEMO: c_int = 1;

/// Converts the value at `idx` (registering new tables and functions).
///
/// # Safety
/// `l` is the private state inside `build_matrix`, `w` its walk.
unsafe fn sval(l: *mut lua_State, idx: c_int, w: &mut Walk) -> SVal {
    // SAFETY: valid state; errors raise inside the protected call (w is owned outside).
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        match ffi::lua_type(l, idx) {
            ffi::LUA_TBOOLEAN => SVal::Bool(ffi::lua_toboolean(l, idx) != 0),
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, idx) != 0 {
                    SVal::Int(ffi::lua_tointegerx(l, idx, std::ptr::null_mut()))
                } else {
                    SVal::Num(ffi::lua_tonumberx(l, idx, std::ptr::null_mut()))
                }
            }
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                w.m.size += len + 24;
                SVal::Str(std::slice::from_raw_parts(p.cast::<u8>(), len).into())
            }
            ffi::LUA_TLIGHTUSERDATA => SVal::Light(ffi::lua_touserdata(l, idx) as usize),
            ffi::LUA_TTABLE => SVal::Table(register_table(l, idx, w)),
            ffi::LUA_TFUNCTION => {
                if !ffi::lua_getupvalue(l, idx, 1).is_null() {
                    raise(l, "Invalid function with upvalue".to_string())
                }
                if ffi::lua_iscfunction(l, idx) != 0 {
                    match ffi::lua_tocfunction(l, idx) {
                        Some(f) => SVal::CFunc(f),
                        None => raise(l, "Invalid function".to_string()),
                    }
                } else {
                    let key = ffi::lua_topointer(l, idx) as usize;
                    if let Some(&id) = w.seen_funcs.get(&key) {
                        return SVal::Func(id);
                    }
                    w.scratch.clear();
                    ffi::lua_pushvalue(l, idx);
                    ffi::lua_dump(l, dump_writer, (&mut w.scratch as *mut Vec<u8>).cast(), 0);
                    ffi::lua_pop(l, 1);
                    let id = w.m.funcs.len() as u32;
                    w.m.size += w.scratch.len();
                    w.m.funcs
                        .push(std::mem::take(&mut w.scratch).into_boxed_slice());
                    w.seen_funcs.insert(key, id);
                    SVal::Func(id)
                }
            }
            _ => {
                let name = CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx)));
                raise(l, format!("Invalid type [{}]", name.to_string_lossy()))
            }
        }
    }
}

/// The id of the table at `idx`, registering it (and checking it has no metatable) when new.
///
/// # Safety
/// As [`sval`].
unsafe fn register_table(l: *mut lua_State, idx: c_int, w: &mut Walk) -> u32 {
    // SAFETY: as sval.
    unsafe {
        let key = ffi::lua_topointer(l, idx) as usize;
        if let Some(&id) = w.seen_tables.get(&key) {
            return id;
        }
        if ffi::lua_getmetatable(l, idx) != 0 {
            raise(l, "Can't share metatable".to_string())
        }
        let id = w.m.tables.len() as u32;
        w.m.tables.push(STable::default());
        w.seen_tables.insert(key, id);
        w.m.size += 64;
        ffi::lua_pushvalue(l, idx);
        ffi::lua_rawseti(l, MEMO, ffi::lua_Integer::from(id) + 1);
        id
    }
}

/// Walks every registered table, breadth first (no recursion: depth is unbounded).
///
/// # Safety
/// As [`sval`]; the root table is on the top of the stack.
unsafe fn walk_all(l: *mut lua_State, w: &mut Walk) {
    // SAFETY: as sval.
    unsafe {
        ffi::luaL_checkstack(l, 6, std::ptr::null());
        register_table(l, -1, w);
        let mut i = 0usize;
        while i < w.m.tables.len() {
            ffi::lua_rawgeti(l, MEMO, i as ffi::lua_Integer + 1);
            let t = ffi::lua_gettop(l);
            let n = ffi::lua_rawlen(l, t) as usize;
            w.m.tables[i].array = vec![None; n];
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, t) != 0 {
                let k = sval(l, -2, w);
                let v = sval(l, -1, w);
                w.m.size += 32;
                let tbl = &mut w.m.tables[i];
                match k {
                    SVal::Int(j) if j >= 1 && (j as u64) <= n as u64 => {
                        tbl.array[(j - 1) as usize] = Some(v)
                    }
                    k => tbl.hash.push((k, v)),
                }
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
            i += 1;
        }
    }
}

/// Runs in the private state: stack = walk, source pointer, source length, args...
#[lua_function]
unsafe extern "C-unwind" fn build_matrix(l: *mut lua_State) -> c_int {
    // SAFETY: called by matrix() through lua_pcall with that stack layout; the source string
    // lives on the caller's stack for the whole call.
    unsafe {
        let w = &mut *ffi::lua_touserdata(l, 1).cast::<Walk>();
        let src = ffi::lua_touserdata(l, 2) as *const u8;
        let len = ffi::lua_tointegerx(l, 3, std::ptr::null_mut()) as usize;
        let src = std::slice::from_raw_parts(src, len);
        ffi::lua_rotate(l, 1, -3);
        ffi::lua_pop(l, 3);
        ffi::luaL_openlibs(l);
        let status = if src.first() == Some(&b'@') {
            let mut name = src[1..].to_vec();
            name.push(0);
            let st = ffi::luaL_loadfilex(l, name.as_ptr().cast(), std::ptr::null());
            drop(name);
            st
        } else {
            ffi::luaL_loadbufferx(
                l,
                src.as_ptr().cast(),
                src.len(),
                src.as_ptr().cast(),
                std::ptr::null(),
            )
        };
        if status != ffi::LUA_OK {
            ffi::lua_error(l)
        }
        ffi::lua_rotate(l, 1, 1);
        ffi::lua_call(l, ffi::lua_gettop(l) - 1, 1);
        ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            let name = CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, -1)));
            raise(
                l,
                format!("Not a table, it's a {}.", name.to_string_lossy()),
            )
        }
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_rotate(l, 1, 1); // MEMO at 1, the result on top
        walk_all(l, w);
    }
    0
}

/// Closes a Lua state on drop.
struct PrivateState(*mut lua_State);

impl Drop for PrivateState {
    fn drop(&mut self) {
        // SAFETY: created by luaL_newstate, closed once.
        unsafe { ffi::lua_close(self.0) }
    }
}

/// The outcome of running a source in a private state.
enum Built {
    Ok(Matrix),
    /// An error message (bytes; `None`: the error value was not a string).
    Err(Option<Vec<u8>>),
    BadArg(c_int, &'static CStr),
}

/// Runs `src` with the caller's arguments 2..=top in a private state.
///
/// # Safety
/// `l` is valid; `src` is a string on its stack.
unsafe fn run_private(l: *mut lua_State, src: &[u8], top: c_int) -> Built {
    // SAFETY: luaL_newstate's result is checked; every push into the private state below is a
    // value push that does not allocate (stack space checked first), so nothing raises outside
    // its lua_pcall.
    unsafe {
        let m = ffi::luaL_newstate();
        if m.is_null() {
            return Built::Err(Some(b"luaL_newstate failed".to_vec()));
        }
        let ms = PrivateState(m);
        let mut walk = Walk::default();
        if ffi::lua_checkstack(m, top + 4) == 0 {
            return Built::Err(Some(format!("Too many argument {top}").into_bytes()));
        }
        ffi::lua_pushcfunction(m, build_matrix);
        ffi::lua_pushlightuserdata(m, (&mut walk as *mut Walk).cast());
        ffi::lua_pushlightuserdata(m, src.as_ptr() as *mut c_void);
        ffi::lua_pushinteger(m, src.len() as ffi::lua_Integer);
        for i in 2..=top {
            match ffi::lua_type(l, i) {
                ffi::LUA_TBOOLEAN => ffi::lua_pushboolean(m, ffi::lua_toboolean(l, i)),
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(l, i) != 0 {
                        ffi::lua_pushinteger(m, ffi::lua_tointegerx(l, i, std::ptr::null_mut()))
                    } else {
                        ffi::lua_pushnumber(m, ffi::lua_tonumberx(l, i, std::ptr::null_mut()))
                    }
                }
                ffi::LUA_TLIGHTUSERDATA => ffi::lua_pushlightuserdata(m, ffi::lua_touserdata(l, i)),
                ffi::LUA_TFUNCTION => {
                    let f = if ffi::lua_iscfunction(l, i) != 0 {
                        ffi::lua_tocfunction(l, i)
                    } else {
                        None
                    };
                    let light = f.is_some() && {
                        let has = !ffi::lua_getupvalue(l, i, 1).is_null();
                        if has {
                            ffi::lua_pop(l, 1);
                        }
                        !has
                    };
                    match (f, light) {
                        (Some(f), true) => ffi::lua_pushcfunction(m, f),
                        _ => return Built::BadArg(i, c"Only support light C function"),
                    }
                }
                _ => return Built::BadArg(i, c"Type invalid"),
            }
        }
        if ffi::lua_pcall(m, top + 2, 0, 0) != ffi::LUA_OK {
            let msg = crate::lua::to_bytes(m, -1)
                .filter(|_| ffi::lua_type(m, -1) == ffi::LUA_TSTRING)
                .map(<[u8]>::to_vec);
            drop(ms);
            return Built::Err(msg);
        }
        drop(ms);
        static NEXT_ID: AtomicI64 = AtomicI64::new(1);
        walk.m.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Built::Ok(walk.m)
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lmatrix(l: *mut lua_State) -> c_int {
    // SAFETY: valid state. The box exists (empty) before the matrix is built; every error is
    // raised after what was built is dropped.
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        let src = std::slice::from_raw_parts(p.cast::<u8>(), len);
        let top = ffi::lua_gettop(l);
        let h = ffi::lua_newuserdatauv(l, std::mem::size_of::<Holder>(), 0).cast::<Holder>();
        h.write(Holder(None));
        ffi::luaL_setmetatable(l, BOX.as_ptr());
        match run_private(l, src, top) {
            Built::Ok(m) => {
                let m = Arc::new(m);
                matrices()
                    .lock()
                    .insert(Arc::as_ptr(&m) as usize, Arc::downgrade(&m));
                (*h).0 = Some(m);
                1
            }
            Built::Err(Some(msg)) => {
                push_bytes(l, &msg);
                drop(msg);
                ffi::lua_error(l)
            }
            Built::Err(None) => {
                ffi::lua_pushnil(l);
                ffi::lua_error(l)
            }
            Built::BadArg(i, msg) => ffi::luaL_argerror(l, i, msg.as_ptr()),
        }
    }
}

/// Drops a holder's matrix (and its registry entry).
fn release(h: &mut Holder) {
    if let Some(m) = h.0.take() {
        let key = Arc::as_ptr(&m) as usize;
        drop(m);
        let mut reg = matrices().lock();
        if reg.get(&key).is_some_and(|w| w.strong_count() == 0) {
            reg.remove(&key);
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lclose(l: *mut lua_State) -> c_int {
    // SAFETY: a box (checked).
    let h = unsafe { &mut *ffi::luaL_checkudata(l, 1, BOX.as_ptr()).cast::<Holder>() };
    release(h);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lunpin(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of a pin.
    let h = unsafe { &mut *ffi::luaL_checkudata(l, 1, PIN.as_ptr()).cast::<Holder>() };
    release(h);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lgetptr(l: *mut lua_State) -> c_int {
    // SAFETY: a box (checked).
    unsafe {
        let h = &*ffi::luaL_checkudata(l, 1, BOX.as_ptr()).cast::<Holder>();
        match &h.0 {
            Some(m) => {
                ffi::lua_pushlightuserdata(l, Arc::as_ptr(m) as *mut c_void);
                1
            }
            None => 0,
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lsize(l: *mut lua_State) -> c_int {
    // SAFETY: a box (checked).
    unsafe {
        let h = &*ffi::luaL_checkudata(l, 1, BOX.as_ptr()).cast::<Holder>();
        let sz = h.0.as_ref().map_or(0, |m| m.size);
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
    }
    1
}

/// Pushes the weak table stored in the registry under `key` (created on first use).
///
/// # Safety
/// `l` is valid.
unsafe fn push_weak(l: *mut lua_State, key: &CStr, mode: &CStr) {
    // SAFETY: valid state.
    unsafe {
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, key.as_ptr()) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushstring(l, mode.as_ptr());
            ffi::lua_setfield(l, -2, c"__mode".as_ptr());
            ffi::lua_setmetatable(l, -2);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, key.as_ptr());
        }
    }
}

/// Pushes a stored value; `ids` / `fns` are the stack indices of the id → table and id →
/// function memo tables.
///
/// # Safety
/// `l` is valid with free slots; `m` outlives the call (pinned).
unsafe fn push_sval(l: *mut lua_State, m: &Matrix, v: &SVal, ids: c_int, fns: c_int) {
    // SAFETY: valid state; the chunk bytes are valid for the call.
    unsafe {
        match v {
            SVal::Bool(b) => ffi::lua_pushboolean(l, c_int::from(*b)),
            SVal::Int(i) => ffi::lua_pushinteger(l, *i),
            SVal::Num(n) => ffi::lua_pushnumber(l, *n),
            SVal::Str(s) => push_bytes(l, s),
            SVal::Table(id) => {
                ffi::lua_rawgeti(l, ids, ffi::lua_Integer::from(*id) + 1);
            }
            SVal::Func(id) => {
                if ffi::lua_rawgeti(l, fns, ffi::lua_Integer::from(*id) + 1) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 1);
                    let chunk = &m.funcs[*id as usize];
                    if ffi::luaL_loadbufferx(
                        l,
                        chunk.as_ptr().cast(),
                        chunk.len(),
                        c"=sharetable".as_ptr(),
                        c"b".as_ptr(),
                    ) != ffi::LUA_OK
                    {
                        ffi::lua_error(l);
                    }
                    ffi::lua_pushvalue(l, -1);
                    ffi::lua_rawseti(l, fns, ffi::lua_Integer::from(*id) + 1);
                }
            }
            SVal::CFunc(f) => ffi::lua_pushcfunction(l, *f),
            SVal::Light(p) => ffi::lua_pushlightuserdata(l, *p as *mut c_void),
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lclone(l: *mut lua_State) -> c_int {
    // SAFETY: valid state. The matrix is pinned by a userdata on the stack (its __gc releases
    // it), so nothing of ours is owned by this frame when Lua raises (e.g. a memory error).
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TLIGHTUSERDATA {
            raise_where(l, "Need a sharetable pointer".to_string())
        }
        let key = ffi::lua_touserdata(l, 1) as usize;
        ffi::lua_settop(l, 1);
        ffi::luaL_checkstack(l, 12, std::ptr::null());
        let pin = ffi::lua_newuserdatauv(l, std::mem::size_of::<Holder>(), 0).cast::<Holder>();
        pin.write(Holder(None));
        ffi::luaL_setmetatable(l, PIN.as_ptr());
        let m = matrices().lock().get(&key).and_then(Weak::upgrade);
        if m.is_none() {
            raise_where(l, "Invalid sharetable pointer (closed?)".to_string())
        }
        (*pin).0 = m;
        let m: &Matrix = (*pin).0.as_deref().unwrap_or_else(|| unreachable!());
        push_weak(l, CLONED, c"k"); // 3
        push_weak(l, CACHE, c"v"); // 4
        let (set, cache) = (3, 4);
        // Both bookkeeping tables count as shared, so that sharetable.update's walk over the
        // registry leaves them alone (it would otherwise rewrite their keys and values).
        for t in [set, cache] {
            ffi::lua_pushvalue(l, t);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_rawset(l, set);
        }
        if ffi::lua_rawgetp(l, cache, key as *const c_void) == ffi::LUA_TTABLE {
            ffi::lua_pushvalue(l, -1);
            let same = ffi::lua_rawget(l, set) == ffi::LUA_TNUMBER
                && ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) == m.id;
            ffi::lua_pop(l, 1);
            if same {
                release(&mut *pin);
                return 1;
            }
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, m.tables.len() as c_int, 0); // 5: ids
        ffi::lua_createtable(l, m.funcs.len() as c_int, 0); // 6: fns
        let (ids, fns) = (5, 6);
        for (i, t) in m.tables.iter().enumerate() {
            ffi::lua_createtable(l, t.array.len() as c_int, t.hash.len() as c_int);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_rawset(l, set);
            ffi::lua_rawseti(l, ids, i as ffi::lua_Integer + 1);
        }
        for (i, t) in m.tables.iter().enumerate() {
            ffi::lua_rawgeti(l, ids, i as ffi::lua_Integer + 1);
            for (j, v) in t.array.iter().enumerate() {
                if let Some(v) = v {
                    push_sval(l, m, v, ids, fns);
                    ffi::lua_rawseti(l, -2, j as ffi::lua_Integer + 1);
                }
            }
            for (k, v) in &t.hash {
                push_sval(l, m, k, ids, fns);
                push_sval(l, m, v, ids, fns);
                ffi::lua_rawset(l, -3);
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_rawgeti(l, ids, 1);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushinteger(l, m.id);
        ffi::lua_rawset(l, set);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, cache, key as *const c_void);
        release(&mut *pin);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lis_sharedtable(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let mut b = 0;
        if ffi::lua_type(l, 1) == ffi::LUA_TTABLE
            && ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, CLONED.as_ptr()) == ffi::LUA_TTABLE
        {
            ffi::lua_pushvalue(l, 1);
            ffi::lua_rawget(l, -2);
            b = ffi::lua_toboolean(l, -1);
        }
        ffi::lua_pushboolean(l, b);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lstackvalues(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; co's values are moved over and back.
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            ffi::luaL_argerror(l, 1, c"thread expected".as_ptr());
        }
        let mut n = 0;
        if co != l {
            ffi::luaL_checktype(l, 2, ffi::LUA_TTABLE);
            n = ffi::lua_gettop(co);
            if n > 0 {
                ffi::luaL_checkstack(l, n + 1, std::ptr::null());
                let top = ffi::lua_gettop(l);
                ffi::lua_xmove(co, l, n);
                for i in 1..=n {
                    ffi::lua_pushvalue(l, top + i);
                    ffi::lua_seti(l, 2, ffi::lua_Integer::from(i));
                }
                ffi::lua_xmove(l, co, n);
            }
        }
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(n));
    }
    1
}

/// Opens `skynet.sharetable.core`.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_sharetable_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, BOX.as_ptr()) != 0 {
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            let fs: [(&CStr, CFunction); 4] = [
                (c"close", lclose),
                (c"getptr", lgetptr),
                (c"size", lsize),
                (c"__gc", lclose),
            ];
            for (name, f) in fs {
                ffi::lua_pushcfunction(l, f);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
        }
        ffi::lua_pop(l, 1);
        if ffi::luaL_newmetatable(l, PIN.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, lunpin);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
        crate::lua::new_lib(
            l,
            &[
                (c"clone", lclone as CFunction),
                (c"stackvalues", lstackvalues),
                (c"matrix", lmatrix),
                (c"is_sharedtable", lis_sharedtable),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlua::check;

    const MODS: &[(&CStr, CFunction)] = &[(c"core", luaopen_skynet_sharetable_core)];

    #[test]
    fn matrix_clone_and_box() {
        check(
            MODS,
            &[],
            r#"
            local m = core.matrix([[
                local a, b, c = ...
                local shared = { 7 }
                local t = { a = a, b = b, c = c, 10, 20, nil, 40, s = "x\0y",
                    sub = { shared = shared }, again = shared,
                    f = function(x) return x * 2 end, [2.5] = "half" }
                t.self = t
                t[shared] = "tablekey"
                return t
            ]], 1, true, 2.5)
            assert(getmetatable(m).__index == getmetatable(m))
            local p = m:getptr()
            assert(type(p) == "userdata" and m:getptr() == p)
            assert(m:size() > 0)
            local t = core.clone(p)
            assert(t.a == 1 and t.b == true and t.c == 2.5 and t.s == "x\0y")
            assert(t[1] == 10 and t[2] == 20 and t[3] == nil and t[4] == 40)
            assert(t[2.5] == "half")
            assert(t.self == t and t.sub.shared == t.again)
            assert(t[t.again] == "tablekey")
            assert(t.f(21) == 42)
            assert(core.is_sharedtable(t) and core.is_sharedtable(t.sub))
            assert(not core.is_sharedtable({}) and not core.is_sharedtable(1))
            -- the same version twice in one VM: the same table while it is alive
            assert(core.clone(p) == t)
            t = nil
            collectgarbage()
            local t2 = core.clone(p)
            assert(t2.a == 1 and core.is_sharedtable(t2) and core.clone(p) == t2)
            -- the bookkeeping tables are skipped by sharetable.update's registry walk
            local reg = debug.getregistry()
            assert(core.is_sharedtable(reg["skynet.sharetable.cloned"]))
            assert(core.is_sharedtable(reg["skynet.sharetable.cache"]))
            m:close()
            assert(m:getptr() == nil and m:size() == 0)
            local ok, err = pcall(core.clone, p)
            assert(not ok and err:find("Invalid sharetable pointer"), err)
            -- light C functions pass through
            local m2 = core.matrix("local f = ... return { f = f }", core.clone)
            assert(core.clone(m2:getptr()).f == core.clone)
            m2:close()
            "#,
        );
    }

    #[test]
    fn matrix_errors() {
        check(
            MODS,
            &[],
            r#"
            -- exact messages as upstream's C module gives them (recorded from its build)
            local function e(msg, ...)
                local ok, err = pcall(core.matrix, ...)
                assert(not ok and err == msg, tostring(err))
            end
            e("Not a table, it's a number.", "return 1")
            e("Can't share metatable", "return setmetatable({}, {})")
            e("Invalid function with upvalue", "local x = 1 return { function() return x end }")
            e("Invalid type [thread]", "return { coroutine.create(print) }")
            e([[[string "error 'boom'"]:1: boom]], "error 'boom'")
            -- a non-string error object: nil on Lua 5.4, "<no error object>" on 5.5
            assert(not pcall(core.matrix, "error({})"))
            e("bad argument #2 to '?' (Only support light C function)", "return {}", function() end)
            e("bad argument #2 to '?' (Type invalid)", "return {}", "str")
            e("bad argument #3 to '?' (Type invalid)", "return {}", 1, {})
            e("cannot open /nonexistent/file.lua: No such file or directory",
              "@/nonexistent/file.lua")
            e([[[string "return {"]:1: unexpected symbol near <eof>]], "return {", 1)
            local ok, err = pcall(core.clone, 1)
            assert(not ok and err:find("sharetable pointer"))
            "#,
        );
    }

    #[test]
    fn stackvalues() {
        check(
            MODS,
            &[],
            r#"
            -- co1 is suspended in coroutine.resume: its stack holds that C call's values
            local co1, n, t
            co1 = coroutine.create(function()
                local co2 = coroutine.create(function()
                    t = {}
                    n = core.stackvalues(co1, t)
                end)
                assert(coroutine.resume(co2, "arg"))
            end)
            assert(coroutine.resume(co1))
            assert(n == 1 and type(t[1]) == "thread", n)
            assert(core.stackvalues(coroutine.running(), {}) == 0)
            local ok, err = pcall(core.stackvalues, 1)
            assert(not ok and err:find("thread expected"))
            "#,
        );
    }
}
