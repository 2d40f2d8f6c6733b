//! `skynet.multicast.core`: the packages `skynet.multicast` and `multicastd` pass around to
//! deliver one message to many subscribers without copying it.
//!
//! A publisher wraps its message with `pack(msg, sz)` (or `packremote`, which copies), getting
//! an 8-byte "outer" block that holds the package handle. `multicastd` then `bind`s the package
//! to the number of subscribers (consuming the outer block) and forwards the 8 handle bytes to
//! each of them; every subscriber `unpack`s its copy of those bytes and `close`s the package
//! once, and the last close frees the message. `remote(pp)` instead hands the message itself
//! back (for another node), consuming both the outer block and the package.
//!
//! Unlike upstream, a package handle is not an address but an id that is never reused, looked
//! up in a process-wide table: an unknown or stale handle, a second `bind`, or a `close` too
//! many is a Lua error instead of a use after free, and the message is freed exactly once, by
//! whichever service closes it last. Outer blocks are tracked too, so `bind` and `remote` refuse
//! a pointer they did not make. `unpack` must still read the 8 bytes its caller points to (they
//! arrive in a message buffer), so only the handle found there can be checked.

use crate::cmem::{self, CBlock};
use crate::lua::lua_function;
use crate::lua::{ffi, raise_where, CFunction};
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Bytes of an outer block (upstream's `sizeof(struct mc_package *)`).
const OUTER: usize = 8;

/// A message shared by the subscribers of one publication.
struct Package {
    /// Closes still expected; 0 until the package is bound.
    refs: i64,
    data: CBlock,
}

// SAFETY: the block is plain bytes owned by the package; it is freed once, under the table's
// lock, by whichever thread removes the package.
unsafe impl Send for Package {}

#[derive(Default)]
struct Table {
    packages: HashMap<usize, Package>,
    /// Outer blocks made by `pack`/`packremote` and not yet consumed.
    outers: HashSet<usize>,
    next_id: usize,
}

fn table() -> &'static Mutex<Table> {
    static T: OnceLock<Mutex<Table>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Registers a package for `data` and returns its outer block.
fn new_package(data: CBlock) -> *mut u8 {
    let mut t = table().lock();
    // Ids look like aligned addresses (never NULL) and are never reused.
    t.next_id += 16;
    let id = 0x1000 + t.next_id;
    t.packages.insert(id, Package { refs: 0, data });
    let outer = cmem::malloc(OUTER);
    // SAFETY: the fresh block holds OUTER bytes.
    unsafe {
        outer
            .as_ptr()
            .cast::<[u8; OUTER]>()
            .write((id as u64).to_ne_bytes())
    };
    t.outers.insert(outer.as_ptr() as usize);
    outer.as_ptr()
}

/// The handle stored in an outer block (or a message copy of one).
///
/// # Safety
/// `p` points to at least OUTER readable bytes.
unsafe fn read_id(p: *const u8) -> usize {
    // SAFETY: caller contract; the block may be unaligned.
    u64::from_ne_bytes(unsafe { p.cast::<[u8; OUTER]>().read_unaligned() }) as usize
}

/// `(ptr, sz)` arguments: the pointer and a size that fits 32 bits.
///
/// # Safety
/// `l` is valid.
unsafe fn msg_args(l: *mut lua_State) -> (*mut u8, usize) {
    // SAFETY: valid state.
    unsafe {
        let p = ffi::lua_touserdata(l, 1).cast::<u8>();
        let sz = ffi::luaL_checkinteger(l, 2);
        if !(0..=u32::MAX as ffi::lua_Integer).contains(&sz) {
            raise_where(l, "Size should be 32bit integer".to_string())
        }
        if p.is_null() && sz > 0 {
            raise_where(l, "multicast: NULL message".to_string())
        }
        (p, sz as usize)
    }
}

/// Pushes an outer block as upstream does: the pointer and its size.
///
/// # Safety
/// `l` is valid.
unsafe fn push_outer(l: *mut lua_State, outer: *mut u8) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::lua_pushlightuserdata(l, outer.cast());
        ffi::lua_pushinteger(l, OUTER as ffi::lua_Integer);
    }
    2
}

/// `pack(msg, sz)` → outer block, 8. Takes ownership of `msg` (a malloc block).
#[lua_function]
unsafe extern "C-unwind" fn lpack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; msg_args raises before anything is owned.
    let (p, sz) = unsafe { msg_args(l) };
    let data = match NonNull::new(p) {
        // SAFETY: the caller hands over a malloc block of sz bytes (skynet.pack's contract).
        Some(p) => unsafe { CBlock::from_raw(p, sz) },
        None => CBlock::copy_from(&[]),
    };
    let outer = new_package(data);
    // SAFETY: valid state; the outer block is registered (a memory error here leaks it, as a
    // lost pointer would).
    unsafe { push_outer(l, outer) }
}

/// `packremote(msg, sz)` → outer block, 8, over a copy of the message (not freed).
#[lua_function]
unsafe extern "C-unwind" fn lpackremote(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; msg_args raises before anything is owned.
    let (p, sz) = unsafe { msg_args(l) };
    let data = if sz == 0 {
        CBlock::copy_from(&[])
    } else {
        // SAFETY: the caller's message holds sz readable bytes.
        CBlock::copy_from(unsafe { std::slice::from_raw_parts(p, sz) })
    };
    let outer = new_package(data);
    // SAFETY: valid state.
    unsafe { push_outer(l, outer) }
}

/// `unpack(pp, 8)` → package, message, size (nothing is consumed).
#[lua_function]
unsafe extern "C-unwind" fn lunpack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let (pp, sz) = unsafe {
        (
            ffi::lua_touserdata(l, 1).cast::<u8>(),
            ffi::luaL_checkinteger(l, 2),
        )
    };
    if sz != OUTER as ffi::lua_Integer {
        // SAFETY: nothing owned.
        unsafe { raise_where(l, format!("Invalid multicast package size {sz}")) }
    }
    if pp.is_null() {
        // SAFETY: nothing owned.
        unsafe { raise_where(l, "Invalid multicast package (NULL)".to_string()) }
    }
    // SAFETY: the caller's block holds `sz` = OUTER bytes.
    let id = unsafe { read_id(pp) };
    let found = table()
        .lock()
        .packages
        .get(&id)
        .map(|p| (p.data.as_slice().as_ptr(), p.data.len()));
    let Some((data, len)) = found else {
        // SAFETY: nothing owned.
        unsafe { raise_where(l, format!("Invalid multicast package {id:#x}")) }
    };
    // SAFETY: valid state.
    unsafe {
        ffi::lua_pushlightuserdata(l, id as *mut c_void);
        ffi::lua_pushlightuserdata(l, data as *mut c_void);
        ffi::lua_pushinteger(l, len as ffi::lua_Integer);
    }
    3
}

/// Removes a live outer block from the table and returns the package id it holds.
fn take_outer(t: &mut Table, pp: *mut u8) -> Option<usize> {
    if !t.outers.remove(&(pp as usize)) {
        return None;
    }
    // SAFETY: the block was made by new_package (OUTER bytes) and is still live.
    let id = unsafe { read_id(pp) };
    // SAFETY: the block was malloc'd by new_package; it is forgotten by the table above.
    unsafe { cmem::free(pp) };
    Some(id)
}

/// `bind(pp, refs)` → package: the package now expects `refs` closes; frees the outer block.
#[lua_function]
unsafe extern "C-unwind" fn lbind(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let (pp, refs) = unsafe {
        (
            ffi::lua_touserdata(l, 1).cast::<u8>(),
            ffi::luaL_checkinteger(l, 2),
        )
    };
    let r = {
        let mut t = table().lock();
        if !t.outers.contains(&(pp as usize)) {
            Err("Invalid multicast package pointer (already bound or released?)".to_string())
        } else if refs <= 0 || refs > i32::MAX as ffi::lua_Integer {
            Err(format!("Invalid multicast package reference {refs}"))
        } else {
            let id = take_outer(&mut t, pp).unwrap_or(0);
            match t.packages.get_mut(&id) {
                Some(p) if p.refs == 0 => {
                    p.refs = refs;
                    Ok(id)
                }
                Some(_) => Err("Can't bind a multicast package more than once".to_string()),
                None => Err(format!("Invalid multicast package {id:#x}")),
            }
        }
    };
    match r {
        // SAFETY: valid state.
        Ok(id) => unsafe { ffi::lua_pushlightuserdata(l, id as *mut c_void) },
        // SAFETY: the guard is released; only the message is alive.
        Err(e) => unsafe { raise_where(l, e) },
    }
    1
}

/// `close(package)`: one subscriber is done; the last one frees the message.
#[lua_function]
unsafe extern "C-unwind" fn lclose(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let id = unsafe { ffi::lua_touserdata(l, 1) } as usize;
    let r = {
        let mut t = table().lock();
        match t.packages.get_mut(&id) {
            None => Err(format!("Invalid multicast package {id:#x}")),
            Some(p) if p.refs <= 0 => Err(format!(
                "Invalid multicast package reference {} (not bound)",
                p.refs - 1
            )),
            Some(p) => {
                p.refs -= 1;
                Ok(if p.refs == 0 {
                    t.packages.remove(&id)
                } else {
                    None
                })
            }
        }
    };
    match r {
        // The message (if this was the last close) is freed here, outside the lock.
        Ok(gone) => drop(gone),
        // SAFETY: the guard is released; only the message is alive.
        Err(e) => unsafe { raise_where(l, e) },
    }
    0
}

/// `remote(pp)` → message, size: gives the message back (now the caller's to free) and drops
/// the package and the outer block.
#[lua_function]
unsafe extern "C-unwind" fn lremote(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let pp = unsafe { ffi::lua_touserdata(l, 1) }.cast::<u8>();
    let r = {
        let mut t = table().lock();
        match take_outer(&mut t, pp) {
            None => Err("Invalid multicast package pointer (already bound or released?)"),
            Some(id) => t.packages.remove(&id).ok_or("Invalid multicast package"),
        }
    };
    match r {
        Ok(p) => {
            let (data, len) = p.data.into_raw();
            // SAFETY: valid state; the block is the caller's now (a memory error here leaks it).
            unsafe {
                ffi::lua_pushlightuserdata(l, data.cast());
                ffi::lua_pushinteger(l, len as ffi::lua_Integer);
            }
            2
        }
        // SAFETY: nothing owned.
        Err(e) => unsafe { raise_where(l, e.to_string()) },
    }
}

/// `nextid(id)` → the next channel id of the same harbor: `(id + 256) & 0x7fffffff`.
#[lua_function]
unsafe extern "C-unwind" fn lnextid(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let id = ffi::luaL_checkinteger(l, 1) as u32;
        ffi::lua_pushinteger(l, (id.wrapping_add(256) & 0x7fff_ffff) as ffi::lua_Integer);
    }
    1
}

/// Opens `skynet.multicast.core`.
///
/// # Safety
/// Called by Lua.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_multicast_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        crate::lua::new_lib(
            l,
            &[
                (c"pack", lpack as CFunction),
                (c"unpack", lunpack),
                (c"bind", lbind),
                (c"close", lclose),
                (c"remote", lremote),
                (c"packremote", lpackremote),
                (c"nextid", lnextid),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::luaopen_skynet_multicast_core;
    use crate::testlua::check;

    const MC: &[(&std::ffi::CStr, crate::lua::CFunction)] = &[(
        c"mc",
        luaopen_skynet_multicast_core as crate::lua::CFunction,
    )];

    #[test]
    fn pack_bind_close_frees_once() {
        check(
            MC,
            &[],
            r#"
            local msg, sz = mkbuf("hello")
            local pp, n = mc.pack(msg, sz)
            assert(n == 8 and type(pp) == "userdata")
            local pkg, data, dsz = mc.unpack(pp, n)
            assert(data == msg and dsz == 5 and peek(data, dsz) == "hello")
            -- what multicastd forwards: a copy of the 8 bytes of the outer block
            local wire = peek(pp, 8)
            local p2 = mc.bind(pp, 3)
            assert(p2 == pkg)
            assert(not pcall(mc.bind, pp, 1))     -- outer block already consumed
            assert(not pcall(mc.remote, pp))
            -- three receivers, each with its own copy of the wire bytes
            for i = 1, 3 do
                local b, bl = mkbuf(wire)
                local q, d, s = mc.unpack(b, bl)
                assert(q == pkg and peek(d, s) == "hello")
                cfree(b)
                if i < 3 then assert(live() > 0) end
                mc.close(q)
            end
            -- freed: a stale handle is refused
            assert(not pcall(mc.close, pkg))
            local b, bl = mkbuf(wire)
            assert(not pcall(mc.unpack, b, bl))
            cfree(b)
            "#,
        );
    }

    #[test]
    fn errors_and_remote() {
        check(
            MC,
            &[],
            r#"
            assert(not pcall(mc.pack, nullptr, -1))
            assert(not pcall(mc.pack, nullptr, 1 << 32))
            local ok, e = pcall(mc.pack, nullptr, 1 << 32)
            assert(e:find "Size should be 32bit integer")
            local msg, sz = mkbuf("abc")
            local pp, n = mc.pack(msg, sz)
            ok, e = pcall(mc.unpack, pp, 4)
            assert(not ok and e:find "Invalid multicast package size 4")
            assert(not pcall(mc.unpack, nullptr, 8))
            assert(not pcall(mc.bind, pp, 0))
            assert(not pcall(mc.close, (mc.unpack(pp, 8)))) -- not bound yet
            assert(not pcall(mc.bind, nullptr, 1))
            assert(not pcall(mc.close, nullptr))
            -- remote: the message comes back to the caller, package and outer block go
            local d, s = mc.remote(pp)
            assert(d == msg and s == 3)
            cfree(d)
            assert(not pcall(mc.remote, pp))
            -- packremote copies (the original stays the caller's)
            local m2, s2 = mkbuf("xyz!")
            local rp = mc.packremote(m2, s2)
            cfree(m2)
            local _, d2, l2 = mc.unpack(rp, 8)
            assert(peek(d2, l2) == "xyz!")
            local k = mc.bind(rp, 1)
            mc.close(k)
            -- an empty message
            local e1 = mc.pack(nullptr, 0)
            local _, _, l0 = mc.unpack(e1, 8)
            assert(l0 == 0)
            mc.close(mc.bind(e1, 1))
            -- a dead channel (multicastd binds to 1 and closes at once)
            local m3, s3 = mkbuf("dead")
            mc.close(mc.bind(mc.pack(m3, s3), 1))
            "#,
        );
    }

    #[test]
    fn nextid() {
        check(
            MC,
            &[],
            r#"
            assert(mc.nextid(1) == 257)
            assert(mc.nextid(0x7fffff01) == 1)
            assert(mc.nextid(0xffffff00) == 0)
            assert(mc.nextid(-256) == 0)
            assert(not pcall(mc.nextid, "x"))
            "#,
        );
    }
}
