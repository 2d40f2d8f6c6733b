//! `sproto.core`: the sproto schema/codec library, wire-compatible with upstream's `sproto.c` /
//! `lsproto.c` (master). The codec itself is pure Rust in [`codec`]; this module is the Lua glue.
//!
//! Handles are light userdata, as upstream: a sproto is a `Box<Proto>` leaked to a raw pointer,
//! and a type is a pointer to one of its [`TypeHandle`]s. Every live sproto is recorded in a
//! process-wide registry, so `deleteproto` refuses unknown pointers and double frees, and a
//! sproto stored by `saveproto` is pinned: it is never freed (other services may be using it,
//! through `loadproto`), which is what upstream does too (it never frees saved ones). A type
//! pointer is trusted as upstream trusts it: it is valid while its sproto lives (`sproto.lua`
//! keeps the sproto object alive as long as it caches its types).
//!
//! Encoding writes into a buffer kept as a full userdata upvalue of the function (as upstream),
//! so a Lua error raised half way (a metamethod, a type error) leaves nothing of Rust behind.
//! The buffer grows by 1.5× when a message does not fit, and the encode is restarted, up to
//! [`codec::MAX_SIZE`]. A busy flag in the buffer makes a re-entrant call (from a metamethod)
//! use a fresh buffer instead of overwriting the outer call's.

pub mod build;
pub mod codec;

use crate::lua::{self, ffi, lua_function};
use codec::{DecodeError, EncodeError, Field, Kind, Scalar, Sproto, Type, Value};
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::io::Write as _;
use std::ptr;

/// Initial size of the encode/pack/unpack buffers (upstream's `ENCODE_BUFFERSIZE`).
const BUFFER_SIZE: usize = 2050;
/// Global slots of `saveproto`/`loadproto`.
const SLOTS: usize = 16;

/// An imported schema and the handles Lua gets for its types.
pub struct Proto {
    sp: Sproto,
    handles: Box<[TypeHandle]>,
}

/// What a type's light userdata points to.
#[repr(C)]
pub struct TypeHandle {
    /// [`TYPE_MAGIC`]: catches a sproto (or another pointer to readable memory) passed where a
    /// type is expected, instead of misreading it.
    magic: u64,
    proto: *const Proto,
    index: usize,
}

const TYPE_MAGIC: u64 = 0x5350_524f_5459_5045;

/// Live sprotos (by address) → pinned by `saveproto`.
static LIVE: Mutex<Option<HashMap<usize, bool>>> = Mutex::new(None);
/// `saveproto` slots (addresses, 0 = empty).
static SAVED: Mutex<[usize; SLOTS]> = Mutex::new([0; SLOTS]);

fn is_live(p: *const c_void) -> bool {
    LIVE.lock()
        .as_ref()
        .is_some_and(|m| m.contains_key(&(p as usize)))
}

/// The live sproto at `idx`, or an argument error.
///
/// # Safety
/// `l` is a state inside a C function.
unsafe fn check_proto<'a>(l: *mut lua_State, idx: c_int, msg: &CStr) -> &'a Proto {
    // SAFETY: valid state.
    let p = unsafe { ffi::lua_touserdata(l, idx) };
    if p.is_null() || !is_live(p) {
        // SAFETY: nothing with a destructor is alive here.
        unsafe { ffi::luaL_argerror(l, idx, msg.as_ptr()) };
        unreachable!()
    }
    // SAFETY: registered addresses are live `Box<Proto>`s, freed only by deleteproto (which
    // unregisters first); immutable after creation.
    unsafe { &*(p as *const Proto) }
}

/// The type behind the light userdata at `idx` (`None` for NULL/nil).
///
/// # Safety
/// A non-NULL pointer there must be a type handle from `querytype`/`protocol` whose sproto is
/// still alive (the same contract as upstream).
unsafe fn to_type<'a>(l: *mut lua_State, idx: c_int) -> Option<(&'a Sproto, &'a Type)> {
    // SAFETY: valid state.
    if unsafe { ffi::lua_type(l, idx) } == ffi::LUA_TUSERDATA {
        // A full userdata is never a type handle (those are light): refuse it.
        // SAFETY: nothing with a destructor is alive.
        unsafe { ffi::luaL_argerror(l, idx, c"Need a sproto_type object".as_ptr()) };
    }
    // SAFETY: valid state.
    let h = unsafe { ffi::lua_touserdata(l, idx) } as *const TypeHandle;
    if h.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let h = unsafe { &*h };
    if h.magic != TYPE_MAGIC {
        // SAFETY: nothing with a destructor is alive.
        unsafe { ffi::luaL_argerror(l, idx, c"Need a sproto_type object".as_ptr()) };
    }
    // SAFETY: handles point to their live owning Proto.
    let p = unsafe { &*h.proto };
    Some((&p.sp, &p.sp.types[h.index]))
}

/// Pushes the light userdata handle of type `index` of `p`.
///
/// # Safety
/// `l` valid with a free slot.
unsafe fn push_type(l: *mut lua_State, p: &Proto, index: usize) {
    // SAFETY: the handle lives as long as `p`.
    unsafe { ffi::lua_pushlightuserdata(l, &p.handles[index] as *const TypeHandle as *mut c_void) };
}

/// `newproto(bin)` → sproto, or nothing if `bin` is not a valid schema bundle.
#[lua_function]
unsafe extern "C-unwind" fn newproto(l: *mut lua_State) -> c_int {
    let mut len = 0;
    // SAFETY: valid state; the string stays on the stack while we read it.
    let bin = unsafe {
        let p = ffi::luaL_checklstring(l, 1, &mut len);
        std::slice::from_raw_parts(p as *const u8, len)
    };
    let Ok(sp) = Sproto::new(bin) else { return 0 };
    let n = sp.types.len();
    let raw = Box::into_raw(Box::new(Proto {
        sp,
        handles: Box::new([]),
    }));
    let handles = (0..n)
        .map(|index| TypeHandle {
            magic: TYPE_MAGIC,
            proto: raw,
            index,
        })
        .collect::<Box<[_]>>();
    // SAFETY: `raw` was just created and is not shared yet.
    unsafe { (*raw).handles = handles };
    LIVE.lock()
        .get_or_insert_with(HashMap::new)
        .insert(raw as usize, false);
    // SAFETY: valid state.
    unsafe { ffi::lua_pushlightuserdata(l, raw as *mut c_void) };
    1
}

/// `deleteproto(sp)`: frees `sp`, unless `saveproto` pinned it.
#[lua_function]
unsafe extern "C-unwind" fn deleteproto(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { ffi::lua_touserdata(l, 1) };
    let found = {
        let mut live = LIVE.lock();
        match live.as_mut().and_then(|m| m.get(&(p as usize)).copied()) {
            None => false,
            Some(true) => true,
            Some(false) => {
                live.as_mut().map(|m| m.remove(&(p as usize)));
                drop(live);
                // SAFETY: registered and unpinned: a Box<Proto> owned by the registry entry
                // we just removed, so it is freed exactly once.
                drop(unsafe { Box::from_raw(p as *mut Proto) });
                true
            }
        }
    };
    if !found {
        // SAFETY: nothing with a destructor is alive.
        unsafe { ffi::luaL_argerror(l, 1, c"Need a sproto object".as_ptr()) };
    }
    0
}

/// `dumpproto(sp)`: prints the schema to stdout.
#[lua_function]
unsafe extern "C-unwind" fn dumpproto(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { check_proto(l, 1, c"Need a sproto_type object") };
    let text = p.sp.dump();
    // SAFETY: flushing every C stream keeps Lua's `print` output in order with ours.
    unsafe { libc::fflush(ptr::null_mut()) };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    0
}

/// `querytype(sp, name)` → type, or nothing.
#[lua_function]
unsafe extern "C-unwind" fn querytype(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the name is a C string on the stack.
    unsafe {
        let p = check_proto(l, 1, c"Need a sproto object");
        let name = CStr::from_ptr(ffi::luaL_checklstring(l, 2, ptr::null_mut()));
        match p.sp.type_by_name(name.to_bytes()) {
            Some(i) => {
                push_type(l, p, i);
                1
            }
            None => 0,
        }
    }
}

/// `protocol(sp, name | tag)` → tag | name, request type | nil, response type | nil (none) |
/// NULL light userdata (`response nil`).
#[lua_function]
unsafe extern "C-unwind" fn protocol(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; values read while on the stack.
    unsafe {
        let p = check_proto(l, 1, c"Need a sproto_type object");
        let proto = if ffi::lua_type(l, 2) == ffi::LUA_TNUMBER {
            let tag = ffi::lua_tointegerx(l, 2, ptr::null_mut());
            let Some(pr) = p.sp.proto_by_tag(tag) else {
                return 0;
            };
            ffi::lua_pushstring(l, pr.name.as_ptr());
            pr
        } else {
            let name = ffi::lua_tolstring(l, 2, ptr::null_mut());
            if name.is_null() {
                return ffi::luaL_argerror(l, 2, c"Should be number or string".as_ptr());
            }
            let Some(tag) = p.sp.proto_tag(CStr::from_ptr(name).to_bytes()) else {
                return 0;
            };
            ffi::lua_pushinteger(l, tag as ffi::lua_Integer);
            match p.sp.proto_by_tag(tag as i64) {
                Some(pr) => pr,
                None => {
                    // Unsorted bundle: the tag search misses, as upstream's does.
                    ffi::lua_pushnil(l);
                    ffi::lua_pushnil(l);
                    return 3;
                }
            }
        };
        match proto.request {
            Some(i) => push_type(l, p, i),
            None => ffi::lua_pushnil(l),
        }
        match proto.response {
            Some(i) => push_type(l, p, i),
            None if proto.confirm => ffi::lua_pushlightuserdata(l, ptr::null_mut()),
            None => ffi::lua_pushnil(l),
        }
        3
    }
}

/// The slot argument at `idx` (default 0), or a Lua error.
///
/// # Safety
/// `l` is a state inside a C function.
unsafe fn slot(l: *mut lua_State, idx: c_int) -> usize {
    // SAFETY: valid state.
    let i = unsafe { ffi::luaL_optinteger(l, idx, 0) };
    if !(0..SLOTS as ffi::lua_Integer).contains(&i) {
        // SAFETY: nothing with a destructor is alive after the message is built.
        unsafe { lua::raise_where(l, format!("Invalid global slot index {i}")) };
    }
    i as usize
}

/// `saveproto(sp, [slot])`: publishes `sp` to every service of the process (and pins it).
#[lua_function]
unsafe extern "C-unwind" fn saveproto(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let i = slot(l, 2);
        let p = ffi::lua_touserdata(l, 1);
        if !p.is_null() {
            let pinned = {
                let mut live = LIVE.lock();
                match live.as_mut().and_then(|m| m.get_mut(&(p as usize))) {
                    Some(pin) => {
                        *pin = true;
                        true
                    }
                    None => false,
                }
            };
            if !pinned {
                return ffi::luaL_argerror(l, 1, c"Need a sproto object".as_ptr());
            }
        }
        SAVED.lock()[i] = p as usize;
    }
    0
}

/// `loadproto([slot])` → the sproto saved there.
#[lua_function]
unsafe extern "C-unwind" fn loadproto(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let i = slot(l, 1);
        let p = SAVED.lock()[i];
        if p == 0 {
            lua::raise_where(l, format!("nil sproto at index {i}"));
        }
        ffi::lua_pushlightuserdata(l, p as *mut c_void);
    }
    1
}

// ---------------------------------------------------------------------------------------------
// Buffers

/// Bytes before a buffer's data: byte 0 is the busy flag.
const BUF_HDR: usize = 8;

/// Data pointer and capacity of the buffer userdata at `idx`.
///
/// # Safety
/// `idx` holds a buffer userdata made by [`new_buffer`].
unsafe fn buffer(l: *mut lua_State, idx: c_int) -> (*mut u8, usize) {
    // SAFETY: per the contract.
    unsafe {
        let p = ffi::lua_touserdata(l, idx) as *mut u8;
        (p.add(BUF_HDR), ffi::lua_rawlen(l, idx) - BUF_HDR)
    }
}

/// Pushes a new buffer userdata with `cap` data bytes, not busy.
///
/// # Safety
/// `l` valid; may raise a memory error (callers hold nothing with a destructor).
unsafe fn new_buffer(l: *mut lua_State, cap: usize) -> *mut u8 {
    // SAFETY: valid state; the header is initialised.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, cap + BUF_HDR, 0) as *mut u8;
        *p = 0;
        p.add(BUF_HDR)
    }
}

/// Sets the busy flag of the buffer whose data starts at `data`.
///
/// # Safety
/// `data` comes from [`buffer`]/[`new_buffer`] and its userdata is alive.
unsafe fn set_busy(data: *mut u8, busy: bool) {
    // SAFETY: the header precedes the data.
    unsafe { *data.sub(BUF_HDR) = busy as u8 };
}

/// Replaces the function's buffer (upvalue 1) by a larger one of at least `need` bytes (1.5×
/// growth, capped at `MAX_SIZE`), anchored at `anchor` too. Errors past `MAX_SIZE`.
///
/// # Safety
/// In a C function created by [`push_with_buffer`]; nothing with a destructor alive.
unsafe fn grow_buffer(
    l: *mut lua_State,
    old: usize,
    need: usize,
    anchor: c_int,
) -> (*mut u8, usize) {
    if need > codec::MAX_SIZE {
        // SAFETY: nothing alive.
        unsafe { lua::raise_where(l, format!("object is too large (>{})", codec::MAX_SIZE)) };
    }
    let mut cap = old + (old >> 1);
    if cap < need {
        cap = need;
    } else if cap > codec::MAX_SIZE {
        cap = codec::MAX_SIZE;
    }
    // SAFETY: valid state.
    unsafe {
        let p = new_buffer(l, cap);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_replace(l, ffi::lua_upvalueindex(1));
        ffi::lua_replace(l, anchor);
        (p, cap)
    }
}

/// Takes the function's buffer, anchored on the stack at the returned index, marked busy. A
/// buffer found busy (a re-entrant call, or one left busy by an error) is replaced.
///
/// # Safety
/// In a C function created by [`push_with_buffer`].
unsafe fn take_buffer(l: *mut lua_State) -> (c_int, *mut u8, usize) {
    // SAFETY: upvalue 1 is a buffer userdata.
    unsafe {
        let (mut p, mut cap) = buffer(l, ffi::lua_upvalueindex(1));
        if *p.sub(BUF_HDR) != 0 {
            cap = BUFFER_SIZE;
            p = new_buffer(l, cap);
            ffi::lua_replace(l, ffi::lua_upvalueindex(1));
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        set_busy(p, true);
        (ffi::lua_gettop(l), p, cap)
    }
}

/// The bytes argument at `idx`: a string, or a (light) userdata with a size at `idx + 1`.
///
/// # Safety
/// `l` is a state inside a C function; the bytes live while the value stays on the stack.
unsafe fn bytes_arg<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: valid state.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => lua::to_bytes(l, idx),
            t @ (ffi::LUA_TUSERDATA | ffi::LUA_TLIGHTUSERDATA) => {
                let p = ffi::lua_touserdata(l, idx) as *const u8;
                let sz = ffi::luaL_checkinteger(l, idx + 1);
                if sz < 0 || (t == ffi::LUA_TUSERDATA && sz as usize > ffi::lua_rawlen(l, idx)) {
                    return None;
                }
                if sz == 0 || p.is_null() {
                    return Some(&[]);
                }
                // SAFETY: as upstream, a light userdata must point to `sz` readable bytes; a
                // full userdata is bounded by its size above.
                Some(std::slice::from_raw_parts(p, sz as usize))
            }
            _ => {
                ffi::luaL_argerror(l, idx, c"Need a string or userdata".as_ptr());
                unreachable!()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// encode

/// Pulls a struct's field values out of the Lua table at `tbl`.
struct LuaSource<'a> {
    l: *mut lua_State,
    sp: &'a Sproto,
    ty: &'a Type,
    tbl: c_int,
    deep: usize,
    /// Stack top when the struct started: array state lives just above.
    base: c_int,
    /// Iteration state of the current array (see `array_begin`).
    pairs: bool,
}

/// Stack layout of an array being encoded, relative to `base`: the array value, the map entry
/// table (or nil), then the `__pairs` iterator function and state (or two nils), and the key.
const ARR: c_int = 1;
const ENTRY: c_int = 2;
const IFUNC: c_int = 3;
const ISTATE: c_int = 4;
const IKEY: c_int = 5;

impl LuaSource<'_> {
    fn err_value(&self, f: &Field, index: usize, what: &str) -> String {
        // SAFETY: the offending value is on the top of the stack.
        let tn = unsafe { lua::type_name(self.l, -1) };
        format!(
            "{}.{}[{index}] is not {what} (Is a {tn})",
            self.ty.name.to_string_lossy(),
            f.name.to_string_lossy()
        )
    }

    fn check_deep(&self) -> Result<(), String> {
        if self.deep >= codec::MAX_DEPTH {
            return Err("The table is too deep".into());
        }
        // SAFETY: valid state; may raise only a stack overflow, with nothing of ours alive.
        unsafe { ffi::luaL_checkstack(self.l, 12, ptr::null()) };
        Ok(())
    }

    /// Pushes field `f` (index 0) or element `index` of the current array; false (and nothing
    /// pushed) if it is nil.
    fn fetch(&mut self, f: &Field, index: usize) -> Result<bool, String> {
        self.check_deep()?;
        let l = self.l;
        // SAFETY: valid state; the slots used were set up by array_begin.
        unsafe {
            if index == 0 {
                ffi::lua_getfield(l, self.tbl, f.name.as_ptr());
            } else if f.key >= 0 {
                let more = if self.pairs {
                    ffi::lua_pushvalue(l, self.base + IFUNC);
                    ffi::lua_pushvalue(l, self.base + ISTATE);
                    ffi::lua_pushvalue(l, self.base + IKEY);
                    ffi::lua_call(l, 2, 2);
                    if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                        ffi::lua_settop(l, -3);
                        false
                    } else {
                        true
                    }
                } else {
                    ffi::lua_pushvalue(l, self.base + IKEY);
                    ffi::lua_next(l, self.base + ARR) != 0
                };
                if !more {
                    ffi::lua_pushnil(l);
                    ffi::lua_replace(l, self.base + IKEY);
                    return Ok(false);
                }
                // key, value on the stack
                if f.map {
                    let st = &self.sp.types[f.st.unwrap_or(0)];
                    ffi::lua_pushvalue(l, -2);
                    ffi::lua_replace(l, self.base + IKEY);
                    ffi::lua_setfield(l, self.base + ENTRY, st.fields[1].name.as_ptr());
                    ffi::lua_setfield(l, self.base + ENTRY, st.fields[0].name.as_ptr());
                    ffi::lua_pushvalue(l, self.base + ENTRY);
                } else {
                    ffi::lua_rotate(l, -2, 1);
                    ffi::lua_replace(l, self.base + IKEY);
                }
            } else {
                ffi::lua_geti(l, self.base + ARR, index as ffi::lua_Integer);
            }
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                ffi::lua_settop(l, -2);
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl codec::Source for LuaSource<'_> {
    type Error = String;

    fn scalar(&mut self, f: &Field, index: usize) -> Result<Option<Scalar>, String> {
        if !self.fetch(f, index)? {
            return Ok(None);
        }
        let l = self.l;
        // SAFETY: the value is on the top of the stack.
        let v = unsafe {
            match f.kind {
                Kind::Integer if f.extra != 0 => {
                    let n = ffi::lua_tonumberx(l, -1, ptr::null_mut());
                    Scalar::Int((n * f.extra as f64).round() as i64)
                }
                Kind::Integer => {
                    let mut isnum = 0;
                    let v = ffi::lua_tointegerx(l, -1, &mut isnum);
                    if isnum == 0 {
                        return Err(self.err_value(f, index, "an integer"));
                    }
                    Scalar::Int(v)
                }
                Kind::Double => Scalar::Double(ffi::lua_tonumberx(l, -1, ptr::null_mut())),
                Kind::Boolean => {
                    if ffi::lua_type(l, -1) != ffi::LUA_TBOOLEAN {
                        return Err(self.err_value(f, index, "a boolean"));
                    }
                    Scalar::Bool(ffi::lua_toboolean(l, -1) != 0)
                }
                Kind::String | Kind::Struct => return Err("Invalid field type".into()),
            }
        };
        // SAFETY: pop the value.
        unsafe { ffi::lua_settop(l, -2) };
        Ok(Some(v))
    }

    fn object(
        &mut self,
        f: &Field,
        index: usize,
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError<String>> {
        if !self.fetch(f, index).map_err(EncodeError::Source)? {
            return Ok(None);
        }
        let l = self.l;
        if f.kind == Kind::String {
            // SAFETY: the value is on the top of the stack.
            let s = unsafe {
                if ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
                    return Err(EncodeError::Source(self.err_value(f, index, "a string")));
                }
                lua::to_bytes(l, -1).unwrap_or_default()
            };
            let dst = out.get_mut(..s.len()).ok_or(EncodeError::Overflow)?;
            dst.copy_from_slice(s);
            // SAFETY: pop the value.
            unsafe { ffi::lua_settop(l, -2) };
            return Ok(Some(s.len()));
        }
        // SAFETY: valid state.
        let top = unsafe { ffi::lua_gettop(l) };
        let mut sub = LuaSource {
            l,
            sp: self.sp,
            ty: &self.sp.types[f.st.unwrap_or(0)],
            tbl: top,
            deep: self.deep + 1,
            base: top,
            pairs: false,
        };
        let r = codec::encode(sub.ty, &mut sub, out);
        // SAFETY: pop the value and whatever the sub-struct left.
        unsafe { ffi::lua_settop(l, top - 1) };
        r.map(Some)
    }

    fn array_begin(&mut self, f: &Field) -> Result<bool, String> {
        self.check_deep()?;
        let l = self.l;
        let b = self.base;
        // SAFETY: valid state; the stack holds at least `base` slots.
        unsafe {
            ffi::lua_settop(l, b);
            ffi::lua_getfield(l, self.tbl, f.name.as_ptr());
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                ffi::lua_settop(l, b);
                return Ok(false);
            }
            if f.map {
                ffi::lua_createtable(l, 0, 2);
            } else {
                ffi::lua_pushnil(l);
            }
            if ffi::luaL_getmetafield(l, b + ARR, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
                ffi::lua_pushvalue(l, b + ARR);
                ffi::lua_call(l, 1, 3);
                self.pairs = true;
            } else if ffi::lua_type(l, b + ARR) != ffi::LUA_TTABLE {
                let tn = lua::type_name(l, b + ARR);
                return Err(format!(
                    "{}.{}(1) should be a table or an userdata with metamethods (Is a {tn})",
                    self.ty.name.to_string_lossy(),
                    f.name.to_string_lossy()
                ));
            } else {
                ffi::lua_pushnil(l);
                ffi::lua_pushnil(l);
                ffi::lua_pushnil(l);
                self.pairs = false;
            }
        }
        Ok(true)
    }
}

/// `encode(type, tbl)` → string. A nil type (no request/response) encodes nil to "".
#[lua_function]
unsafe extern "C-unwind" fn encode(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; see the module doc for the type pointer contract.
    unsafe {
        let Some((sp, ty)) = to_type(l, 1) else {
            ffi::luaL_checktype(l, 2, ffi::LUA_TNIL);
            ffi::lua_pushstring(l, c"".as_ptr());
            return 1;
        };
        ffi::lua_settop(l, 2);
        let (anchor, mut p, mut cap) = take_buffer(l);
        loop {
            ffi::lua_settop(l, anchor);
            let out = std::slice::from_raw_parts_mut(p, cap);
            let mut src = LuaSource {
                l,
                sp,
                ty,
                tbl: 2,
                deep: 0,
                base: anchor,
                pairs: false,
            };
            match codec::encode(ty, &mut src, out) {
                Ok(n) => {
                    ffi::lua_settop(l, anchor);
                    lua::push_bytes(l, &out[..n]);
                    set_busy(p, false);
                    return 1;
                }
                Err(EncodeError::Overflow) => {
                    set_busy(p, false);
                    (p, cap) = grow_buffer(l, cap, cap + 1, anchor);
                    set_busy(p, true);
                }
                Err(EncodeError::Source(msg)) => {
                    set_busy(p, false);
                    lua::raise_where(l, msg);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// decode

/// Stores a struct's decoded fields into the Lua table at `result`.
struct LuaSink<'a> {
    l: *mut lua_State,
    sp: &'a Sproto,
    result: c_int,
    deep: usize,
    /// Stack slot of the array being filled.
    array_index: c_int,
    /// Main index tag of the struct (when it is an element of `*T(key)`), and the slot where
    /// its key value is kept.
    mainindex_tag: i32,
    key_index: c_int,
    /// Reused entry table of a `*T()` map.
    map_entry: c_int,
}

type SinkResult = Result<(), DecodeError<String>>;

impl LuaSink<'_> {
    fn sub(&self, result: c_int) -> Self {
        LuaSink {
            l: self.l,
            sp: self.sp,
            result,
            deep: self.deep + 1,
            array_index: 0,
            mainindex_tag: -1,
            key_index: 0,
            map_entry: 0,
        }
    }

    fn decode_struct(&mut self, f: &Field, data: &[u8]) -> Result<bool, DecodeError<String>> {
        let l = self.l;
        let st = &self.sp.types[f.st.unwrap_or(0)];
        let keyed = f.array && f.key >= 0;
        let map = keyed && f.map;
        let name = || f.name.to_string_lossy().into_owned();
        // SAFETY: valid state; slots are ours.
        unsafe {
            let result = if map {
                if self.map_entry == 0 {
                    ffi::lua_createtable(l, 0, 2);
                    self.map_entry = ffi::lua_gettop(l);
                }
                self.map_entry
            } else {
                ffi::lua_createtable(l, 0, 0);
                ffi::lua_gettop(l)
            };
            let mut sub = self.sub(result);
            if !keyed {
                codec::decode_exact(st, data, &mut sub)?;
                ffi::lua_settop(l, result);
                return Ok(false);
            }
            sub.mainindex_tag = f.key;
            ffi::lua_pushnil(l);
            sub.key_index = ffi::lua_gettop(l);
            codec::decode_exact(st, data, &mut sub)?;
            if map {
                ffi::lua_getfield(l, result, st.fields[0].name.as_ptr());
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    return Err(DecodeError::Sink(format!(
                        "Can't find key field in [{}]",
                        name()
                    )));
                }
                ffi::lua_getfield(l, result, st.fields[1].name.as_ptr());
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    return Err(DecodeError::Sink(format!(
                        "Can't find value field in [{}]",
                        name()
                    )));
                }
                ffi::lua_settable(l, self.array_index);
                ffi::lua_settop(l, result);
            } else {
                ffi::lua_pushvalue(l, sub.key_index);
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    return Err(DecodeError::Sink(format!(
                        "Can't find main index (tag={}) in [{}]",
                        f.key,
                        name()
                    )));
                }
                ffi::lua_pushvalue(l, result);
                ffi::lua_settable(l, self.array_index);
                ffi::lua_settop(l, result - 1);
            }
        }
        Ok(true)
    }
}

impl codec::Sink for LuaSink<'_> {
    type Error = String;

    fn array(&mut self, f: &Field) -> SinkResult {
        if self.deep >= codec::MAX_DEPTH {
            return Err(DecodeError::Sink("The table is too deep".into()));
        }
        let l = self.l;
        // SAFETY: valid state.
        unsafe {
            ffi::luaL_checkstack(l, 12, ptr::null());
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, self.result, f.name.as_ptr());
            if self.array_index != 0 {
                ffi::lua_replace(l, self.array_index);
            } else {
                self.array_index = ffi::lua_gettop(l);
            }
        }
        Ok(())
    }

    fn value(&mut self, f: &Field, index: usize, v: Value<'_>) -> SinkResult {
        if self.deep >= codec::MAX_DEPTH {
            return Err(DecodeError::Sink("The table is too deep".into()));
        }
        let l = self.l;
        // SAFETY: valid state; the stack has room (checked here).
        unsafe {
            ffi::luaL_checkstack(l, 12, ptr::null());
            match v {
                Value::Int(i) if f.extra != 0 => ffi::lua_pushnumber(l, i as f64 / f.extra as f64),
                Value::Int(i) => ffi::lua_pushinteger(l, i),
                Value::Double(d) => ffi::lua_pushnumber(l, d),
                Value::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
                Value::Str(s) => lua::push_bytes(l, s),
                Value::Struct(data) => {
                    if self.decode_struct(f, data)? {
                        return Ok(());
                    }
                }
            }
            if index > 0 {
                ffi::lua_seti(l, self.array_index, index as ffi::lua_Integer);
            } else {
                if self.mainindex_tag == f.tag {
                    ffi::lua_pushvalue(l, -1);
                    ffi::lua_replace(l, self.key_index);
                }
                ffi::lua_setfield(l, self.result, f.name.as_ptr());
            }
        }
        Ok(())
    }
}

/// `decode(type, str | ptr, [sz], [tbl])` → table, bytes used. Nothing for a nil type.
#[lua_function]
unsafe extern "C-unwind" fn decode(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; see the module doc for the type pointer contract.
    unsafe {
        let Some((sp, ty)) = to_type(l, 1) else {
            return 0;
        };
        let data = bytes_arg(l, 2);
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            ffi::lua_createtable(l, 0, 0);
        }
        let result = ffi::lua_gettop(l);
        let r = match data {
            Some(data) => {
                let mut sink = LuaSink {
                    l,
                    sp,
                    result,
                    deep: 0,
                    array_index: 0,
                    mainindex_tag: -1,
                    key_index: 0,
                    map_entry: 0,
                };
                codec::decode(ty, data, &mut sink)
            }
            None => Err(DecodeError::Malformed),
        };
        match r {
            Ok(n) => {
                ffi::lua_settop(l, result);
                ffi::lua_pushinteger(l, n as ffi::lua_Integer);
                2
            }
            Err(DecodeError::Malformed) => lua::raise_where(l, "decode error".into()),
            Err(DecodeError::Sink(msg)) => lua::raise_where(l, msg),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pack / unpack / default

/// `pack(str | ptr, sz)` → 0-packed string.
#[lua_function]
unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the input stays on the stack, the output buffer is anchored.
    unsafe {
        let Some(src) = bytes_arg(l, 1) else {
            lua::raise_where(l, "invalid size".into());
        };
        let need = codec::pack_bound(src.len());
        let (anchor, mut p, mut cap) = take_buffer(l);
        if cap < need {
            set_busy(p, false);
            (p, cap) = grow_buffer(l, cap, need, anchor);
        }
        let out = std::slice::from_raw_parts_mut(p, cap);
        let n = codec::pack(src, out);
        set_busy(p, false);
        lua::push_bytes(l, &out[..n]);
    }
    1
}

/// `unpack(str | ptr, sz)` → string. Errors on a truncated stream.
#[lua_function]
unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the input stays on the stack, the output buffer is anchored.
    unsafe {
        let Some(src) = bytes_arg(l, 1) else {
            lua::raise_where(l, "Invalid unpack stream".into());
        };
        let (anchor, mut p, mut cap) = take_buffer(l);
        let mut r = codec::unpack(src, std::slice::from_raw_parts_mut(p, cap));
        if let Ok(size) = r {
            if size > cap {
                set_busy(p, false);
                (p, cap) = grow_buffer(l, cap, size, anchor);
                r = codec::unpack(src, std::slice::from_raw_parts_mut(p, cap));
            }
        }
        set_busy(p, false);
        match r {
            Ok(n) => lua::push_bytes(l, std::slice::from_raw_parts(p, n)),
            Err(codec::InvalidPack) => lua::raise_where(l, "Invalid unpack stream".into()),
        }
    }
    1
}

/// Pushes the default of a value of `f`'s kind (`in_array`: struct defaults are the type name).
///
/// # Safety
/// `l` valid with a free slot or two.
unsafe fn push_default(l: *mut lua_State, sp: &Sproto, f: &Field, in_array: bool) {
    // SAFETY: valid state.
    unsafe {
        match f.kind {
            Kind::Integer if f.extra != 0 => ffi::lua_pushnumber(l, 0.0),
            Kind::Integer => ffi::lua_pushinteger(l, 0),
            Kind::Double => ffi::lua_pushnumber(l, 0.0),
            Kind::Boolean => ffi::lua_pushboolean(l, 0),
            Kind::String => {
                ffi::lua_pushstring(l, c"".as_ptr());
            }
            Kind::Struct => {
                let name = sp.types[f.st.unwrap_or(0)].name.as_ptr();
                if in_array {
                    ffi::lua_pushstring(l, name);
                } else {
                    ffi::lua_createtable(l, 0, 1);
                    ffi::lua_pushstring(l, name);
                    ffi::lua_setfield(l, -2, c"__type".as_ptr());
                }
            }
        }
    }
}

/// `default(type)` → a table with every field's default: 0, 0.0, false, "", `{__type = name}`
/// for a struct, `{__array = default}` for an array (the type name for struct arrays).
#[lua_function]
unsafe extern "C-unwind" fn default(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; see the module doc for the type pointer contract.
    unsafe {
        let Some((sp, ty)) = to_type(l, 1) else {
            return ffi::luaL_argerror(l, 1, c"Need a sproto_type object".as_ptr());
        };
        ffi::lua_createtable(l, 0, ty.fields.len() as c_int);
        for f in &ty.fields {
            ffi::lua_pushstring(l, f.name.as_ptr());
            if f.array {
                ffi::lua_createtable(l, 0, 1);
                push_default(l, sp, f, true);
                ffi::lua_setfield(l, -2, c"__array".as_ptr());
            } else {
                push_default(l, sp, f, false);
            }
            ffi::lua_rawset(l, -3);
        }
    }
    1
}

/// Registers `f` as field `name` of the table on top, with its own output buffer upvalue.
///
/// # Safety
/// `l` valid with a table on top.
unsafe fn push_with_buffer(l: *mut lua_State, name: &CStr, f: lua::CFunction) {
    // SAFETY: valid state.
    unsafe {
        new_buffer(l, BUFFER_SIZE);
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
}

/// `require "sproto.core"`.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_sproto_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"newproto", newproto),
                (c"deleteproto", deleteproto),
                (c"dumpproto", dumpproto),
                (c"querytype", querytype),
                (c"decode", decode),
                (c"protocol", protocol),
                (c"loadproto", loadproto),
                (c"saveproto", saveproto),
                (c"default", default),
            ],
        );
        push_with_buffer(l, c"encode", encode);
        push_with_buffer(l, c"pack", pack);
        push_with_buffer(l, c"unpack", unpack);
    }
    1
}

#[cfg(test)]
mod tests;
