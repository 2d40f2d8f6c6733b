//! `skynet.stm`: one writer publishes serialized snapshots (a `malloc` block, usually from
//! `skynet.pack`) that readers in other services pick up when it changes. lualib's
//! `skynet.sharemap` is built on it.
//!
//! `new(msg, sz | str)` → writer; `writer(msg, sz | str)` publishes a new snapshot;
//! `copy(writer)` → a light userdata handle for one reader (send it to another service);
//! `newcopy(handle)` → reader; `reader(f, ud)` → `false` when nothing changed since the last
//! read, else `true` followed by what `f(msg, sz, ud)` returns.
//!
//! Ownership: the object is an `Arc` shared by its writer and readers; each snapshot is an `Arc`
//! held by the object (the current one) and by every reader that last read it, so a block is
//! freed exactly once, when the last of them lets go, whatever order the services exit in.
//! Unlike upstream, a handle given to `newcopy` must come from `copy` and be used once: an
//! unknown pointer is a Lua error instead of undefined behaviour.

use crate::cmem::CBlock;
use crate::lua::lua_function;
use crate::lua::{ffi, raise_where, CFunction};
use ffi::lua_State;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

/// One published snapshot: immutable once shared.
struct Snapshot(CBlock);

// SAFETY: the block is plain bytes, never written after it is published; it is freed once, by
// whichever thread drops the last `Arc`.
unsafe impl Send for Snapshot {}
// SAFETY: as above (shared access is read-only).
unsafe impl Sync for Snapshot {}

/// The shared object: the current snapshot (`None` once the writer is gone).
struct Object {
    current: RwLock<Option<Arc<Snapshot>>>,
}

/// Handles made by `copy` and not yet taken by `newcopy`: address → count.
fn grabs() -> &'static Mutex<HashMap<usize, usize>> {
    static GRABS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    GRABS.get_or_init(Default::default)
}

const WRITER: &CStr = c"skynet.stm.writer";
const READER: &CStr = c"skynet.stm.reader";

/// Userdata body of a writer.
struct Writer(Option<Arc<Object>>);

/// Userdata body of a reader.
struct Reader {
    obj: Option<Arc<Object>>,
    last: Option<Arc<Snapshot>>,
}

/// The message at `idx`: a light userdata block plus its size (ownership passes to us), or a
/// string (copied into a new block).
///
/// # Safety
/// `l` is valid; raises on a bad argument before anything is owned.
unsafe fn take_message(l: *mut lua_State, idx: c_int) -> CBlock {
    // SAFETY: valid state and indices.
    unsafe {
        if ffi::lua_isuserdata(l, idx) != 0 {
            let sz = ffi::luaL_checkinteger(l, idx + 1);
            let p = ffi::lua_touserdata(l, idx).cast::<u8>();
            let Some(p) = NonNull::new(p) else {
                raise_where(l, "stm: NULL message".to_string())
            };
            if sz < 0 {
                raise_where(l, format!("stm: invalid message size {sz}"))
            }
            // The caller hands over a malloc block of sz bytes (skynet.pack's contract).
            CBlock::from_raw(p, sz as usize)
        } else {
            let mut len = 0;
            let s = ffi::luaL_checklstring(l, idx, &mut len);
            CBlock::copy_from(std::slice::from_raw_parts(s.cast(), len))
        }
    }
}

/// A new userdata holding `T`, with the metatable registered under `meta`. Allocation happens
/// before `value` is built, so a memory error leaks nothing.
///
/// # Safety
/// `l` is valid; `build` must not raise.
unsafe fn push_box<T>(l: *mut lua_State, meta: &CStr, build: impl FnOnce() -> T) {
    // SAFETY: valid state; the userdata is sized and aligned for T (Lua aligns userdata to at
    // least 8 bytes, enough for these pointer-sized bodies).
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<T>(), 0).cast::<T>();
        p.write(build());
        ffi::luaL_setmetatable(l, meta.as_ptr());
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lnew(l: *mut lua_State) -> c_int {
    // SAFETY: valid state. The userdata exists before the message is taken, so that an
    // argument error or a memory error owns nothing yet.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Writer>(), 0).cast::<Writer>();
        p.write(Writer(None));
        ffi::luaL_setmetatable(l, WRITER.as_ptr());
        let msg = take_message(l, 1);
        (*p).0 = Some(Arc::new(Object {
            current: RwLock::new(Some(Arc::new(Snapshot(msg)))),
        }));
    }
    1
}

/// The writer at index 1 (raises if it is not one, or was collected).
///
/// # Safety
/// `l` is valid.
unsafe fn writer<'a>(l: *mut lua_State) -> &'a Arc<Object> {
    // SAFETY: luaL_checkudata returns a block of our Writer type.
    unsafe {
        let w = &*ffi::luaL_checkudata(l, 1, WRITER.as_ptr()).cast::<Writer>();
        match &w.0 {
            Some(o) => o,
            None => raise_where(l, "stm: the writer is released".to_string()),
        }
    }
}

/// `writer(msg, sz | str)`: publishes a new snapshot.
#[lua_function]
unsafe extern "C-unwind" fn lupdate(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; both raise before anything is owned.
    let (obj, msg) = unsafe { (writer(l), take_message(l, 2)) };
    let old = obj.current.write().replace(Arc::new(Snapshot(msg)));
    drop(old);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn ldeletewriter(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of a writer userdata.
    let w = unsafe { &mut *ffi::luaL_checkudata(l, 1, WRITER.as_ptr()).cast::<Writer>() };
    if let Some(obj) = w.0.take() {
        // The writer's last snapshot goes; readers keep the ones they already read.
        let old = obj.current.write().take();
        drop(old);
    }
    0
}

/// `copy(writer)` → a handle for one `newcopy`.
#[lua_function]
unsafe extern "C-unwind" fn lcopy(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let obj = unsafe { writer(l) };
    let p = Arc::into_raw(Arc::clone(obj));
    *grabs().lock().entry(p as usize).or_insert(0) += 1;
    // SAFETY: valid state.
    unsafe { ffi::lua_pushlightuserdata(l, p as *mut c_void) };
    1
}

/// `newcopy(handle)` → reader.
#[lua_function]
unsafe extern "C-unwind" fn lnewreader(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { ffi::lua_touserdata(l, 1) } as usize;
    // SAFETY: valid state; the userdata exists (with an empty body) before the handle is
    // taken, so a memory error cannot lose the reference.
    unsafe {
        push_box(l, READER, || Reader {
            obj: None,
            last: None,
        })
    };
    let known = {
        let mut g = grabs().lock();
        match g.get_mut(&p) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    g.remove(&p);
                }
                true
            }
            None => false,
        }
    };
    if !known {
        // SAFETY: valid state; nothing owned.
        unsafe { raise_where(l, "stm: not a handle from stm.copy".to_string()) }
    }
    // SAFETY: `p` came from Arc::into_raw in lcopy, and its grab count was just consumed, so
    // this reference is taken exactly once.
    let obj = unsafe { Arc::from_raw(p as *const Object) };
    // SAFETY: the reader userdata is on the top of the stack.
    unsafe { (*ffi::lua_touserdata(l, -1).cast::<Reader>()).obj = Some(obj) };
    1
}

#[lua_function]
unsafe extern "C-unwind" fn ldeletereader(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of a reader userdata.
    let r = unsafe { &mut *ffi::luaL_checkudata(l, 1, READER.as_ptr()).cast::<Reader>() };
    r.last = None;
    r.obj = None;
    0
}

/// `reader(f, ud)`.
#[lua_function]
unsafe extern "C-unwind" fn lread(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the checks raise before anything is owned.
    let r = unsafe {
        let r = &mut *ffi::luaL_checkudata(l, 1, READER.as_ptr()).cast::<Reader>();
        ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);
        r
    };
    let Some(obj) = &r.obj else {
        // SAFETY: nothing owned.
        unsafe { raise_where(l, "stm: the reader is released".to_string()) }
    };
    let current = obj.current.read().clone();
    let same = match (&current, &r.last) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if same {
        drop(current);
        // SAFETY: valid state.
        unsafe { ffi::lua_pushboolean(l, 0) };
        return 1;
    }
    // The reader (index 1, kept on the stack) now holds the snapshot, so the block stays alive
    // while `f` runs even if `f` raises.
    let msg = current
        .as_ref()
        .map(|s| (s.0.as_slice().as_ptr(), s.0.len()));
    r.last = current;
    let Some((ptr, sz)) = msg else {
        // SAFETY: valid state.
        unsafe { ffi::lua_pushboolean(l, 0) };
        return 1;
    };
    // SAFETY: valid state; no Rust value with a destructor is alive across the call.
    unsafe {
        ffi::lua_settop(l, 3);
        ffi::lua_pushvalue(l, 2);
        ffi::lua_pushlightuserdata(l, ptr as *mut c_void);
        ffi::lua_pushinteger(l, sz as ffi::lua_Integer);
        ffi::lua_pushvalue(l, 3);
        ffi::lua_call(l, 3, ffi::LUA_MULTRET);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_insert(l, 4);
        ffi::lua_gettop(l) - 3
    }
}

/// Opens `skynet.stm`.
///
/// # Safety
/// Called by Lua.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_stm(l: *mut lua_State) -> c_int {
    let metas: [(&CStr, CFunction, CFunction); 2] = [
        (WRITER, ldeletewriter, lupdate),
        (READER, ldeletereader, lread),
    ];
    // SAFETY: valid state.
    unsafe {
        for (name, gc, call) in metas {
            ffi::luaL_newmetatable(l, name.as_ptr());
            ffi::lua_pushcfunction(l, gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            ffi::lua_pushcfunction(l, call);
            ffi::lua_setfield(l, -2, c"__call".as_ptr());
            ffi::lua_pop(l, 1);
        }
        crate::lua::new_lib(
            l,
            &[
                (c"new", lnew as CFunction),
                (c"copy", lcopy),
                (c"newcopy", lnewreader),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::luaopen_skynet_stm;
    use crate::testlua::check;

    #[test]
    fn writer_readers_and_release_in_any_order() {
        check(
            &[(c"stm", luaopen_skynet_stm)],
            &[],
            r#"
            local function rd(msg, sz, ud) return peek(msg, sz), ud end
            local w = stm.new("v1")
            local h1, h2 = stm.copy(w), stm.copy(w)
            local r1, r2 = stm.newcopy(h1), stm.newcopy(h2)
            assert(select('#', r1(rd, "u")) == 3)
            local ok, s, u = r1(rd, "u")
            assert(ok == false and s == nil)
            local ok2, s2, u2 = r2(rd, 7)
            assert(ok2 == true and s2 == "v1" and u2 == 7)
            -- a handle is good for one newcopy only; junk is refused
            assert(not pcall(stm.newcopy, h1))
            assert(not pcall(stm.newcopy, nullptr))
            assert(not pcall(stm.copy, {}))
            w("v2")
            local a, b = r1(rd)
            assert(a == true and b == "v2")
            assert(r1(rd) == false)
            -- a malloc'd message with its size passes ownership
            local m = mkbuf("v3!")
            w(m, 2) -- only the first 2 bytes are the message
            assert(select(2, r2(rd)) == "v3")
            -- an error in the reader function propagates; the snapshot counts as read
            w("v4")
            assert(not pcall(r1, function() error("boom") end))
            assert(r1(rd) == false)
            -- the writer goes first: readers keep what they read, then see no update
            w = nil
            collectgarbage() collectgarbage()
            assert(r2(rd) == false) -- no snapshot any more
            assert(r2(rd) == false)
            r1, r2 = nil, nil
            collectgarbage() collectgarbage()
            -- readers first, writer last
            local w2 = stm.new("x")
            local r3 = stm.newcopy(stm.copy(w2))
            assert(select(2, r3(rd)) == "x")
            r3 = nil
            collectgarbage()
            w2("y")
            w2 = nil
            collectgarbage() collectgarbage()
            "#,
        );
    }
}
