//! The `bson` Lua module (upstream lualib-src/lua-bson.c, master's API on both Lua versions):
//! `encode`, `encode_order`, `decode`, `to_lightuserdata`, the tagged-string constructors
//! (`date`, `timestamp`, `regex`, `binary`, `objectid`, `int64`), `type`, the constants `null`,
//! `minkey`, `maxkey`, and the methods of encoded documents (`decode`, `makeindex`, `__len`,
//! `__tostring`, `__newindex`). Encoded bytes are identical to upstream's.
//!
//! # Encoding and `longjmp`
//! Encoding runs Lua code (`__len`, `__pairs`, `__index` metamethods) that may raise. As
//! upstream, the exported functions own the output buffer (a `Vec`) and run the traversal in a
//! protected call of an inner C function that only borrows it; the inner frames hold nothing
//! with a destructor, so a raise anywhere inside merely returns to the `lua_pcall`, after which
//! the buffer is dropped and the error re-raised. Errors detected by the traversal itself come
//! back as [`EncErr`] and are raised by the inner function, without a position prefix (as
//! upstream's `luaL_error` from a C function called by C).
//!
//! # Decoding
//! [`wire::decode`] walks the bytes with every length checked and pushes Lua values through
//! [`LuaSink`]; errors are raised after it returns.
//!
//! # Differences from upstream (none on well-formed data)
//! - Malformed documents give "Invalid bson block (have:need)" where upstream would walk
//!   outside the buffer or fail with an allocation error; nesting deeper than
//!   [`wire::MAX_DECODE_DEPTH`] is "Too depth while decoding bson".
//! - Embedding a full userdata checks its length field against its size ("Invalid bson
//!   document" instead of copying past its end); a NULL light userdata is the same error. A
//!   light userdata is trusted as upstream (it must point to a whole document).
//! - Strings that upstream would read out of bounds (`"\0\11"` with no NUL inside as a regex,
//!   `"\0\5"` given to `bson.type`) are "Invalid regex" / "Invalid binary".
//! - `__newindex` checks the recorded offset against the document size.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod wire;

use crate::lua::{self, ffi, lua_function, new_lib, CFunction};
use ffi::lua_State;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use wire::*;

const META: &CStr = c"bson";
/// Bits of a `makeindex` entry holding the element type (the rest is the value offset).
const TYPE_SHIFT: u32 = 5;
/// Output buffers up to this capacity are kept for the next encode on the thread.
const KEEP_BUFFER: usize = 64 * 1024;

thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// An output buffer, reusing the thread's spare one when it is free.
fn take_buffer() -> Vec<u8> {
    let mut b = SPARE.with(Cell::take);
    b.clear();
    if b.capacity() == 0 {
        b.reserve(256);
    }
    b
}

fn give_back(b: Vec<u8>) {
    if b.capacity() <= KEEP_BUFFER {
        SPARE.with(|s| s.set(b));
    }
}

/// An encoding failure found by the traversal (raised by the inner C function).
enum EncErr {
    Msg(&'static str),
    Subtype(u8),
    ObjectId(Vec<u8>),
    ValueType(c_int),
    KeyType(c_int),
    Argument(c_int),
}

impl EncErr {
    /// The message, as upstream words it.
    ///
    /// # Safety
    /// `l` is a valid state (for type names).
    unsafe fn message(self, l: *mut lua_State) -> String {
        // SAFETY: valid state; lua_typename returns a static string for any type code.
        let tn = |t: c_int| unsafe { CStr::from_ptr(ffi::lua_typename(l, t)) }.to_string_lossy();
        match self {
            EncErr::Msg(m) => m.to_string(),
            EncErr::Subtype(t) => format!("Invalid subtype {t}"),
            EncErr::ObjectId(b) => format!("Invalid object id {}", String::from_utf8_lossy(&b)),
            EncErr::ValueType(t) => format!("Invalid value type : {}", tn(t)),
            EncErr::KeyType(t) => format!("Invalid key type : {}", tn(t)),
            EncErr::Argument(i) => format!("Argument {i} need a string"),
        }
    }
}

type EncResult = Result<(), EncErr>;

// ---------------------------------------------------------------------------------------------
// Byte writers (plain Rust)
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn put_cstr(buf: &mut Vec<u8>, s: &[u8]) -> EncResult {
    if !utf8_ok(s) {
        return Err(EncErr::Msg("Invalid utf8 string"));
    }
    buf.reserve(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    Ok(())
}

#[inline(always)]
fn put_key(buf: &mut Vec<u8>, tag: u8, key: &[u8]) -> EncResult {
    buf.push(tag);
    put_cstr(buf, key)
}

/// Reserves a length field; returns where it is.
#[inline(always)]
fn open_len(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

/// Ends the document whose length field is at `at`.
#[inline(always)]
fn close_doc(buf: &mut Vec<u8>, at: usize) -> EncResult {
    buf.push(0);
    let n = i32::try_from(buf.len() - at).map_err(|_| EncErr::Msg("bson document too large"))?;
    buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Writes a tagged string (`"\0" .. tag .. payload`, len > 1) as the element `key`.
fn put_tagged(buf: &mut Vec<u8>, key: &[u8], s: &[u8]) -> EncResult {
    let tag = s[1];
    let p = &s[2..];
    put_key(buf, tag, key)?;
    match tag {
        BINARY => {
            // The length excludes the subtype byte that starts the payload.
            buf.extend_from_slice(&(p.len() as i32).wrapping_sub(1).to_le_bytes());
            buf.extend_from_slice(p);
        }
        OBJECTID => {
            if p.len() != 12 {
                let shown = p.split(|&b| b == 0).next().unwrap_or_default();
                return Err(EncErr::ObjectId(shown.to_vec()));
            }
            buf.extend_from_slice(p);
        }
        JSCODE | DBPOINTER | SYMBOL | CODEWS => buf.extend_from_slice(p),
        DATE => {
            let b: [u8; 4] = p.try_into().map_err(|_| EncErr::Msg("Invalid date"))?;
            let ms = i64::from(u32::from_ne_bytes(b)) * 1000;
            buf.extend_from_slice(&ms.to_le_bytes());
        }
        TIMESTAMP => {
            if p.len() != 8 {
                return Err(EncErr::Msg("Invalid timestamp"));
            }
            for half in p.chunks_exact(4) {
                let v = u32::from_ne_bytes([half[0], half[1], half[2], half[3]]);
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        REGEX => {
            // pattern NUL options NUL: split at the last NUL before the final byte.
            let body = p.get(..p.len().wrapping_sub(1)).unwrap_or_default();
            let cut = body
                .iter()
                .rposition(|&b| b == 0)
                .filter(|_| !p.is_empty())
                .ok_or(EncErr::Msg("Invalid regex"))?;
            put_cstr(buf, &body[..cut])?;
            put_cstr(buf, &body[cut + 1..])?;
        }
        MINKEY | MAXKEY | NULL => {}
        INT64 => {
            let b: [u8; 8] = p.try_into().map_err(|_| EncErr::Msg("Invalid int64"))?;
            buf.extend_from_slice(&i64::from_ne_bytes(b).to_le_bytes());
        }
        t => return Err(EncErr::Subtype(t)),
    }
    Ok(())
}

/// Decimal digits of `n` into `tmp`.
#[inline(always)]
fn itoa(mut n: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &tmp[i..];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding traversal (runs inside the protected inner call)
// ---------------------------------------------------------------------------------------------

/// The bytes of a document held by the (light or full) userdata at `idx`.
///
/// # Safety
/// `l` is valid and `idx` holds a userdata; a light userdata must point to a whole document.
unsafe fn userdata_doc<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a [u8], EncErr> {
    const BAD: EncErr = EncErr::Msg("Invalid bson document");
    // SAFETY: valid index; non-raising accessors.
    let (p, full, size) = unsafe {
        (
            ffi::lua_touserdata(l, idx).cast::<u8>().cast_const(),
            ffi::lua_type(l, idx) == ffi::LUA_TUSERDATA,
            ffi::lua_rawlen(l, idx),
        )
    };
    if p.is_null() || (full && size < 4) {
        return Err(BAD);
    }
    // SAFETY: at least 4 readable bytes (checked for a full userdata, the caller's contract
    // for a light one).
    let n = i32::from_le_bytes(unsafe { p.cast::<[u8; 4]>().read_unaligned() });
    let n = usize::try_from(n).map_err(|_| BAD)?;
    if n < 5 || (full && n > size) {
        return Err(BAD);
    }
    // SAFETY: n bytes are readable (checked against the userdata size, or trusted as above);
    // the value stays on the stack while the slice is used.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Appends the value on top of the stack as element `key`.
///
/// # Safety
/// `l` is the running state with the value at -1; `key` stays valid during the call.
unsafe fn append_value(l: *mut lua_State, buf: &mut Vec<u8>, key: &[u8], depth: u32) -> EncResult {
    // SAFETY: valid state; every call below follows the stack discipline noted.
    unsafe {
        match ffi::lua_type(l, -1) {
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, -1) != 0 {
                    let i = ffi::lua_tointeger(l, -1);
                    if let Ok(v) = i32::try_from(i) {
                        put_key(buf, INT32, key)?;
                        buf.extend_from_slice(&v.to_le_bytes());
                    } else {
                        put_key(buf, INT64, key)?;
                        buf.extend_from_slice(&i.to_le_bytes());
                    }
                } else {
                    put_key(buf, REAL, key)?;
                    buf.extend_from_slice(&ffi::lua_tonumber(l, -1).to_le_bytes());
                }
            }
            ffi::LUA_TSTRING => {
                let s = lua::to_bytes(l, -1).unwrap_or_default();
                if s.len() > 1 && s[0] == 0 {
                    put_tagged(buf, key, s)?;
                } else {
                    put_key(buf, STRING, key)?;
                    let n = i32::try_from(s.len() + 1)
                        .map_err(|_| EncErr::Msg("bson string too large"))?;
                    buf.extend_from_slice(&n.to_le_bytes());
                    put_cstr(buf, s)?;
                }
            }
            ffi::LUA_TTABLE => append_table(l, buf, key, depth + 1)?,
            ffi::LUA_TBOOLEAN => {
                put_key(buf, BOOLEAN, key)?;
                buf.push(u8::from(ffi::lua_toboolean(l, -1) != 0));
            }
            ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => {
                put_key(buf, DOCUMENT, key)?;
                buf.extend_from_slice(userdata_doc(l, -1)?);
            }
            ffi::LUA_TNIL => {
                return Err(EncErr::Msg(
                    "Bson array has a hole (nil), Use bson.null instead",
                ))
            }
            t => return Err(EncErr::ValueType(t)),
        }
    }
    Ok(())
}

/// Appends the table on top of the stack as element `key`: an array if it has `__len` or
/// looks like a sequence, else a document (through `__pairs` if it has one).
///
/// # Safety
/// As [`append_value`], with a table at -1.
unsafe fn append_table(l: *mut lua_State, buf: &mut Vec<u8>, key: &[u8], depth: u32) -> EncResult {
    if depth > MAX_ENCODE_DEPTH {
        return Err(EncErr::Msg("Too depth while encoding bson"));
    }
    // SAFETY: valid state; metamethod calls may raise (nothing here has a destructor).
    unsafe {
        if ffi::lua_checkstack(l, 16) == 0 {
            return Err(EncErr::Msg("stack overflow"));
        }
        if ffi::luaL_getmetafield(l, -1, c"__len".as_ptr()) != ffi::LUA_TNIL {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_call(l, 1, 1);
            if ffi::lua_isinteger(l, -1) == 0 {
                return Err(EncErr::Msg("__len should return integer"));
            }
            let n = ffi::lua_tointeger(l, -1) as u64;
            ffi::lua_pop(l, 1);
            put_key(buf, ARRAY, key)?;
            pack_array(l, buf, depth, n)
        } else if ffi::luaL_getmetafield(l, -1, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
            put_key(buf, DOCUMENT, key)?;
            pack_meta_dict(l, buf, depth)
        } else if is_rawarray(l) {
            put_key(buf, ARRAY, key)?;
            pack_array(l, buf, depth, ffi::lua_rawlen(l, -1) as u64)
        } else {
            put_key(buf, DOCUMENT, key)?;
            pack_simple_dict(l, buf, depth)
        }
    }
}

/// Whether the table at -1 is encoded as an array: its first key (in `next` order) is 1, or an
/// integer within its border.
///
/// # Safety
/// `l` is valid with a table at -1 and two free slots.
unsafe fn is_rawarray(l: *mut lua_State) -> bool {
    // SAFETY: as documented; lua_next on a fresh traversal cannot raise.
    unsafe {
        ffi::lua_pushnil(l);
        if ffi::lua_next(l, -2) == 0 {
            return false;
        }
        let first = if ffi::lua_isinteger(l, -2) != 0 {
            ffi::lua_tointeger(l, -2)
        } else {
            0
        };
        ffi::lua_pop(l, 2);
        if first <= 1 {
            return first > 0;
        }
        first as u64 <= ffi::lua_rawlen(l, -1) as u64
    }
}

/// Array body of the table at -1: items 1..=n (read with `__index`), keys "0", "1", ...
///
/// # Safety
/// As [`append_table`].
unsafe fn pack_array(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32, n: u64) -> EncResult {
    let at = open_len(buf);
    let mut tmp = [0u8; 20];
    for i in 1..=n {
        // SAFETY: stack room reserved by append_table; lua_geti may run __index.
        unsafe {
            ffi::lua_geti(l, -1, i as ffi::lua_Integer);
            append_value(l, buf, itoa(i - 1, &mut tmp), depth)?;
            ffi::lua_pop(l, 1);
        }
    }
    close_doc(buf, at)
}

/// Stores the value at -1 under the key at -2 (a `next`-style pair), then pops the value.
///
/// # Safety
/// As [`append_value`], with a key at -2.
#[inline(always)]
unsafe fn pack_pair(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> EncResult {
    // SAFETY: valid state with key and value on top.
    unsafe {
        match ffi::lua_type(l, -2) {
            ffi::LUA_TSTRING => {
                // A string key is not converted, so the traversal stays valid.
                let key = lua::to_bytes(l, -2).unwrap_or_default();
                append_value(l, buf, key, depth)?;
                ffi::lua_pop(l, 1);
                Ok(())
            }
            ffi::LUA_TNUMBER => Err(EncErr::Msg("Bson dictionary's key can't be number")),
            t => Err(EncErr::KeyType(t)),
        }
    }
}

/// Document body of the table at -1, in `next` order.
///
/// # Safety
/// As [`append_table`].
unsafe fn pack_simple_dict(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> EncResult {
    let at = open_len(buf);
    // SAFETY: stack room reserved; lua_next raises only if the table changed under us.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            pack_pair(l, buf, depth)?;
        }
    }
    close_doc(buf, at)
}

/// Document body of the table at -2 through its `__pairs` metamethod, which is at -1.
///
/// # Safety
/// As [`append_table`], with the table at -2 and `__pairs` at -1.
unsafe fn pack_meta_dict(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> EncResult {
    let at = open_len(buf);
    // SAFETY: stack room reserved; the calls run Lua code that may raise.
    unsafe {
        // [t, __pairs] -> [t, f, s, k]
        ffi::lua_pushvalue(l, -2);
        ffi::lua_call(l, 1, 3);
        loop {
            // [t, f, s, k] -> [t, f, s, f, s, k] -> [t, f, s, k', v']
            ffi::lua_pushvalue(l, -2);
            ffi::lua_pushvalue(l, -2);
            ffi::lua_copy(l, -5, -3);
            ffi::lua_call(l, 2, 2);
            if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                ffi::lua_pop(l, 4);
                break;
            }
            pack_pair(l, buf, depth)?;
        }
    }
    close_doc(buf, at)
}

/// Makes the finished document the result: a full userdata with one user value (for
/// `makeindex`).
///
/// # Safety
/// `l` is the running state with a free slot.
unsafe fn push_document(l: *mut lua_State, bytes: &[u8]) {
    // SAFETY: valid state; the block has room for the bytes.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, bytes.len(), 1);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
    }
}

/// The buffer lent to an inner function through the light userdata at `idx`.
///
/// # Safety
/// The value at `idx` is the pointer the outer function pushed, to a `Vec` it keeps alive and
/// does not touch during the protected call.
unsafe fn lent_buffer<'a>(l: *mut lua_State, idx: c_int) -> &'a mut Vec<u8> {
    // SAFETY: per contract.
    unsafe { &mut *ffi::lua_touserdata(l, idx).cast::<Vec<u8>>() }
}

/// Raises an encoding error with no position prefix.
///
/// # Safety
/// Nothing with a destructor is alive in the caller besides `e`, consumed here.
unsafe fn raise_enc(l: *mut lua_State, e: EncErr) -> ! {
    // SAFETY: valid state; the message is freed by lua::raise before jumping.
    unsafe {
        let msg = e.message(l);
        lua::raise(l, msg)
    }
}

/// Inner half of `encode`: (table, buffer) → document userdata.
#[lua_function]
unsafe extern "C-unwind" fn encode_inner(l: *mut lua_State) -> c_int {
    // SAFETY: called only by `lencode` with its table and lent buffer.
    let r = unsafe {
        let buf = lent_buffer(l, 2);
        ffi::lua_settop(l, 1);
        let r = if ffi::luaL_getmetafield(l, 1, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
            pack_meta_dict(l, buf, 0)
        } else {
            pack_simple_dict(l, buf, 0)
        };
        if r.is_ok() {
            push_document(l, buf);
        }
        r
    };
    match r {
        Ok(()) => 1,
        // SAFETY: only the error is alive.
        Err(e) => unsafe { raise_enc(l, e) },
    }
}

/// Inner half of `encode_order`: (buffer, k1, v1, ...) → document userdata.
#[lua_function]
unsafe extern "C-unwind" fn encode_order_inner(l: *mut lua_State) -> c_int {
    // SAFETY: called only by `lencode_order` with its lent buffer and the pairs.
    let r = unsafe {
        let buf = lent_buffer(l, 1);
        let n = ffi::lua_gettop(l) - 1;
        let at = open_len(buf);
        let mut r = Ok(());
        let mut i = 0;
        while i < n {
            let kidx = i + 2;
            if ffi::lua_isstring(l, kidx) == 0 {
                r = Err(EncErr::Argument(i + 1));
                break;
            }
            // A number key is converted in place, in this function's own frame.
            let key = lua::to_bytes(l, kidx).unwrap_or_default();
            ffi::lua_pushvalue(l, kidx + 1);
            r = append_value(l, buf, key, 0);
            if r.is_err() {
                break;
            }
            ffi::lua_pop(l, 1);
            i += 2;
        }
        let r = r.and_then(|()| close_doc(buf, at));
        if r.is_ok() {
            ffi::lua_settop(l, 0);
            push_document(l, buf);
        }
        r
    };
    match r {
        Ok(()) => 1,
        // SAFETY: only the error is alive.
        Err(e) => unsafe { raise_enc(l, e) },
    }
}

/// Runs `inner` protected with the buffer lent as its argument `buf_at` (already in place on
/// the stack as a placeholder at that index), then gives the document its metatable.
///
/// # Safety
/// `l` is the running state; the stack is `[inner, args...]` with a `nil` placeholder at
/// absolute index `buf_at + 1`; `nargs` counts the arguments.
unsafe fn run_encoder(l: *mut lua_State, buf_at: c_int, nargs: c_int) -> c_int {
    let mut buf = take_buffer();
    // SAFETY: no push here can raise (a light userdata into an existing slot); lua_pcall
    // returns instead of jumping, so `buf` is dropped on every path before a raise.
    let rc = unsafe {
        ffi::lua_pushlightuserdata(l, (&mut buf as *mut Vec<u8>).cast::<c_void>());
        ffi::lua_replace(l, buf_at + 1);
        ffi::lua_pcall(l, nargs, 1, 0)
    };
    give_back(buf);
    // SAFETY: nothing with a destructor is alive; luaL_newmetatable / lua_error may raise.
    unsafe {
        if rc != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        set_meta(l);
    }
    1
}

/// `bson.encode(table)` → document.
#[lua_function]
unsafe extern "C-unwind" fn lencode(l: *mut lua_State) -> c_int {
    // SAFETY: running state; luaL_checktype may raise before anything is owned.
    unsafe {
        ffi::lua_settop(l, 1);
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        // [t] -> [inner, t, placeholder]
        ffi::lua_pushcfunction(l, encode_inner);
        ffi::lua_rotate(l, 1, 1);
        ffi::lua_pushnil(l);
        run_encoder(l, 2, 2)
    }
}

/// `bson.encode_order(k1, v1, ...)` → document with the keys in argument order.
#[lua_function]
unsafe extern "C-unwind" fn lencode_order(l: *mut lua_State) -> c_int {
    // SAFETY: running state; the raising calls happen before anything is owned.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n % 2 != 0 {
            return ffi::luaL_error(l, c"Invalid ordered dict".as_ptr());
        }
        ffi::luaL_checkstack(l, 2, std::ptr::null());
        // [k1, v1, ...] -> [inner, placeholder, k1, v1, ...]
        ffi::lua_pushcfunction(l, encode_order_inner);
        ffi::lua_rotate(l, 1, 1);
        ffi::lua_pushnil(l);
        ffi::lua_rotate(l, 2, 1);
        run_encoder(l, 1, n + 1)
    }
}

/// Gives the value on top the "bson" metatable (created on first use).
///
/// # Safety
/// `l` is valid with room for two values.
unsafe fn set_meta(l: *mut lua_State) {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, META.as_ptr()) != 0 {
            const METHODS: [(&CStr, CFunction); 2] =
                [(c"decode", ldecode), (c"makeindex", lmakeindex)];
            new_lib(l, &METHODS);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, ltostring);
            ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
            ffi::lua_pushcfunction(l, llen);
            ffi::lua_setfield(l, -2, c"__len".as_ptr());
            ffi::lua_pushcfunction(l, lreplace);
            ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Pushes decoded values as Lua tables, integers, floats and (tagged) strings.
struct LuaSink {
    l: *mut lua_State,
}

impl LuaSink {
    /// Pushes `"\0" .. tag .. parts`.
    fn push_tagged(&mut self, tag: u8, parts: &[&[u8]; 4]) {
        let total = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut small = [0u8; 64];
        if total <= small.len() {
            small[1] = tag;
            let mut at = 2;
            for p in parts {
                small[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            // SAFETY: the sink's state is the running one (see `decode_into`).
            unsafe { lua::push_bytes(self.l, &small[..total]) };
        } else {
            // SAFETY: as above; at most 5 pieces, room ensured by `open`.
            unsafe {
                lua::push_bytes(self.l, &[0, tag]);
                let mut n = 1;
                for p in parts.iter().filter(|p| !p.is_empty()) {
                    lua::push_bytes(self.l, p);
                    n += 1;
                }
                ffi::lua_concat(self.l, n);
            }
        }
    }
}

impl Sink for LuaSink {
    fn open(&mut self) -> Result<(), DecodeError> {
        // SAFETY: the sink's state is the running one (see `decode_into`).
        unsafe {
            if ffi::lua_checkstack(self.l, 16) == 0 {
                return Err(DecodeError::StackOverflow);
            }
            ffi::lua_createtable(self.l, 0, 0);
        }
        Ok(())
    }

    #[inline(always)]
    fn key(&mut self, key: Key<'_>) {
        // SAFETY: as in `open`; room ensured there.
        unsafe {
            match key {
                Key::Name(n) => lua::push_bytes(self.l, n),
                Key::Index(i) => ffi::lua_pushinteger(self.l, i),
            }
        }
    }

    #[inline(always)]
    fn value(&mut self, value: Value<'_>) {
        let l = self.l;
        // SAFETY: as in `open`; room ensured there.
        unsafe {
            match value {
                Value::Double(d) => ffi::lua_pushnumber(l, d),
                Value::Str(s) => lua::push_bytes(l, s),
                Value::Bool(b) => ffi::lua_pushboolean(l, c_int::from(b)),
                Value::Int32(i) => ffi::lua_pushinteger(l, ffi::lua_Integer::from(i)),
                Value::Int64(i) => ffi::lua_pushinteger(l, i),
                other => {
                    let mut scratch = [0u8; 4];
                    if let Some((tag, parts)) = other.tagged(&mut scratch) {
                        self.push_tagged(tag, &parts);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn set(&mut self) {
        // SAFETY: [doc, key, value] on top (the walker's contract).
        unsafe { ffi::lua_rawset(self.l, -3) };
    }
}

/// Decodes `doc` and pushes the table; raises on malformed input.
///
/// # Safety
/// `l` is the running state.
unsafe fn decode_into(l: *mut lua_State, doc: &[u8]) -> c_int {
    let mut sink = LuaSink { l };
    match wire::decode(doc, &mut sink) {
        Ok(()) => 1,
        // SAFETY: nothing with a destructor is alive; the message is freed before the jump.
        Err(e) => unsafe { lua::raise_where(l, e.to_string()) },
    }
}

/// The document bytes behind the argument of `decode`: a full userdata is bounded by its
/// size, a light one is trusted (as upstream) to point to its declared length.
///
/// # Safety
/// `l` is valid; a light userdata at `idx` must point to a document.
unsafe fn document_arg<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: valid index; non-raising accessors.
    let (p, ty, size) = unsafe {
        (
            ffi::lua_touserdata(l, idx).cast::<u8>().cast_const(),
            ffi::lua_type(l, idx),
            ffi::lua_rawlen(l, idx),
        )
    };
    if p.is_null() {
        return None;
    }
    let len = if ty == ffi::LUA_TUSERDATA {
        if size < 4 {
            size
        } else {
            // SAFETY: 4 bytes inside the block.
            let n = i32::from_le_bytes(unsafe { p.cast::<[u8; 4]>().read_unaligned() });
            usize::try_from(n).unwrap_or(0).min(size).max(4)
        }
    } else {
        // SAFETY: trusted light userdata (caller contract).
        let n = i32::from_le_bytes(unsafe { p.cast::<[u8; 4]>().read_unaligned() });
        usize::try_from(n).unwrap_or(4).max(4)
    };
    // SAFETY: `len` bytes are inside the block (or trusted, see above).
    Some(unsafe { std::slice::from_raw_parts(p, len) })
}

/// `bson.decode(doc)` / `doc:decode()` → table (nothing for a non-userdata).
#[lua_function]
unsafe extern "C-unwind" fn ldecode(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        match document_arg(l, 1) {
            Some(doc) => decode_into(l, doc),
            None => 0,
        }
    }
}

/// `bson.to_lightuserdata(ud)` → the same block as a light userdata.
#[lua_function]
unsafe extern "C-unwind" fn lto_lightuserdata(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        let p = ffi::lua_touserdata(l, 1);
        ffi::lua_pushlightuserdata(l, p);
    }
    1
}

/// `__tostring`: the document bytes.
#[lua_function]
unsafe extern "C-unwind" fn ltostring(l: *mut lua_State) -> c_int {
    // SAFETY: running state; a full userdata holds rawlen bytes.
    unsafe {
        let p = ffi::lua_touserdata(l, 1);
        let n = if ffi::lua_type(l, 1) == ffi::LUA_TUSERDATA {
            ffi::lua_rawlen(l, 1)
        } else {
            0
        };
        if n == 0 {
            lua::push_bytes(l, b"");
        } else {
            ffi::lua_pushlstring(l, p.cast::<c_char>(), n);
        }
    }
    1
}

/// `__len`: the document size.
#[lua_function]
unsafe extern "C-unwind" fn llen(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe { ffi::lua_pushinteger(l, ffi::lua_rawlen(l, 1) as ffi::lua_Integer) };
    1
}

/// `doc:makeindex()` → doc: records where each fixed-size top-level field is, so that
/// `doc.key = value` can overwrite it in place.
#[lua_function]
unsafe extern "C-unwind" fn lmakeindex(l: *mut lua_State) -> c_int {
    // SAFETY: running state; luaL_checkudata raises before anything is owned; the closure
    // pushes and stores into the new table (raising only on memory errors, with nothing
    // owned).
    unsafe {
        let p = ffi::luaL_checkudata(l, 1, META.as_ptr()).cast::<u8>();
        let doc = std::slice::from_raw_parts(p, ffi::lua_rawlen(l, 1));
        ffi::lua_createtable(l, 0, 0);
        let r = index_fields(doc, |key, tag, at| {
            lua::push_bytes(l, key);
            ffi::lua_pushinteger(
                l,
                ffi::lua_Integer::from(tag) | (at as ffi::lua_Integer) << TYPE_SHIFT,
            );
            ffi::lua_rawset(l, -3);
        });
        if let Err(e) = r {
            lua::raise_where(l, e.to_string());
        }
        ffi::lua_setiuservalue(l, 1, 1);
        ffi::lua_settop(l, 1);
    }
    1
}

/// Raises with upstream's `%f` rendering of the number at `idx` (Lua's float format).
///
/// # Safety
/// `l` is the running state; nothing with a destructor is alive.
unsafe fn raise_not_integer(l: *mut lua_State, idx: c_int, bits: c_int) -> ! {
    // SAFETY: valid state; luaL_error formats with Lua's own number format.
    unsafe {
        let n = ffi::lua_tonumber(l, idx);
        if bits == 32 {
            ffi::luaL_error(l, c"%f must be a 32bit integer ".as_ptr(), n);
        } else {
            ffi::luaL_error(l, c"%f must be a 64bit integer ".as_ptr(), n);
        }
        unreachable!()
    }
}

/// The bytes a tagged-object replacement writes (objectid, date, timestamp).
///
/// # Safety
/// `l` is the running state with the new value at 3; raises on a mismatch.
unsafe fn replacement_bytes(l: *mut lua_State, tag: u8, out: &mut [u8; 12]) -> usize {
    // SAFETY: valid state; luaL_checklstring / luaL_error raise with nothing owned.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 3, &mut len).cast::<u8>();
        let s = std::slice::from_raw_parts(p, len);
        if len < 6 || s[0] != 0 || s[1] != tag {
            ffi::luaL_error(
                l,
                c"Type mismatch, need bson type %d".as_ptr(),
                c_int::from(tag),
            );
        }
        let p = &s[2..];
        match tag {
            OBJECTID if p.len() == 12 => {
                out.copy_from_slice(p);
                12
            }
            OBJECTID => lua::raise_where(l, "Invalid object id".into()),
            DATE if p.len() == 4 => {
                let ms = i64::from(u32::from_ne_bytes([p[0], p[1], p[2], p[3]])) * 1000;
                out[..8].copy_from_slice(&ms.to_le_bytes());
                8
            }
            DATE => lua::raise_where(l, "Invalid date".into()),
            _ if p.len() == 8 => {
                for (i, half) in p.chunks_exact(4).enumerate() {
                    let v = u32::from_ne_bytes([half[0], half[1], half[2], half[3]]);
                    out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                8
            }
            _ => lua::raise_where(l, "Invalid timestamp".into()),
        }
    }
}

/// `__newindex(doc, key, value)`: overwrites an indexed fixed-size field in place.
#[lua_function]
unsafe extern "C-unwind" fn lreplace(l: *mut lua_State) -> c_int {
    // SAFETY: running state; every raise happens with nothing owned.
    unsafe {
        ffi::lua_getiuservalue(l, 1, 1);
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            return ffi::luaL_error(l, c"call makeindex first".as_ptr());
        }
        ffi::lua_pushvalue(l, 2);
        if ffi::lua_rawget(l, -2) != ffi::LUA_TNUMBER {
            return ffi::luaL_error(
                l,
                c"Can't replace key : %s".as_ptr(),
                ffi::lua_tolstring(l, 2, std::ptr::null_mut()),
            );
        }
        let id = ffi::lua_tointeger(l, -1);
        let tag = (id & ((1 << TYPE_SHIFT) - 1)) as u8;
        let offset = usize::try_from(id >> TYPE_SHIFT).unwrap_or(usize::MAX);
        let size = ffi::lua_rawlen(l, 1);
        let base = ffi::lua_touserdata(l, 1).cast::<u8>();
        let mut tmp = [0u8; 12];
        let bytes: &[u8] = match tag {
            REAL => {
                tmp[..8].copy_from_slice(&ffi::luaL_checknumber(l, 3).to_le_bytes());
                &tmp[..8]
            }
            BOOLEAN => {
                tmp[0] = u8::from(ffi::lua_toboolean(l, 3) != 0);
                &tmp[..1]
            }
            OBJECTID | DATE | TIMESTAMP => {
                let n = replacement_bytes(l, tag, &mut tmp);
                &tmp[..n]
            }
            INT32 => {
                if ffi::lua_isinteger(l, 3) == 0 {
                    raise_not_integer(l, 3, 32);
                }
                tmp[..4].copy_from_slice(&(ffi::lua_tointeger(l, 3) as i32).to_le_bytes());
                &tmp[..4]
            }
            INT64 => {
                if ffi::lua_isinteger(l, 3) == 0 {
                    raise_not_integer(l, 3, 64);
                }
                tmp[..8].copy_from_slice(&ffi::lua_tointeger(l, 3).to_le_bytes());
                &tmp[..8]
            }
            t => return ffi::luaL_error(l, c"Can't replace type %d".as_ptr(), c_int::from(t)),
        };
        if base.is_null() || offset.checked_add(bytes.len()).is_none_or(|end| end > size) {
            return ffi::luaL_error(l, c"Invalid index for key : %s".as_ptr(), {
                ffi::lua_tolstring(l, 2, std::ptr::null_mut())
            });
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(offset), bytes.len());
    }
    0
}

// ---------------------------------------------------------------------------------------------
// Tagged-string constructors and `type`
// ---------------------------------------------------------------------------------------------

/// Pushes `"\0" .. tag .. payload`.
///
/// # Safety
/// `l` is valid with a free slot.
unsafe fn push_tagged(l: *mut lua_State, tag: u8, payload: &[u8]) {
    let mut b = [0u8; 16];
    b[1] = tag;
    b[2..2 + payload.len()].copy_from_slice(payload);
    // SAFETY: valid state.
    unsafe { lua::push_bytes(l, &b[..2 + payload.len()]) };
}

/// `bson.date(seconds)` (truncated to 32 bits).
#[lua_function]
unsafe extern "C-unwind" fn ldate(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1) as i32;
        push_tagged(l, DATE, &d.to_ne_bytes());
    }
    1
}

/// `bson.int64(n)`.
#[lua_function]
unsafe extern "C-unwind" fn lint64(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1);
        push_tagged(l, INT64, &d.to_ne_bytes());
    }
    1
}

/// Increment used by `bson.timestamp(t)` without an explicit one (process-wide).
static TIMESTAMP_INC: AtomicU32 = AtomicU32::new(0);

/// `bson.timestamp(t, [inc])`: `inc` absent is 0, `nil` takes the next value of a
/// process-wide counter (what upstream does, see below).
#[lua_function]
unsafe extern "C-unwind" fn ltimestamp(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1) as i32;
        // Upstream tests argument 2 after its string buffer has pushed a placeholder there:
        // with no second argument the increment is 0; only an explicit nil takes the counter.
        let inc = match ffi::lua_type(l, 2) {
            ffi::LUA_TNONE => 0,
            ffi::LUA_TNIL => TIMESTAMP_INC.fetch_add(1, Ordering::Relaxed),
            _ => ffi::lua_tointeger(l, 2) as u32,
        };
        let mut p = [0u8; 8];
        p[..4].copy_from_slice(&inc.to_ne_bytes());
        p[4..].copy_from_slice(&d.to_ne_bytes());
        push_tagged(l, TIMESTAMP, &p);
    }
    1
}

/// `bson.regex(pattern, [options])`.
#[lua_function]
unsafe extern "C-unwind" fn lregex(l: *mut lua_State) -> c_int {
    // SAFETY: running state; pushes may raise only on memory errors.
    unsafe {
        ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        let opts = if ffi::lua_gettop(l) < 2 {
            &[][..]
        } else {
            lua::to_bytes(l, 2).unwrap_or_default()
        };
        let pat = lua::to_bytes(l, 1).unwrap_or_default();
        lua::push_bytes(l, &[0, REGEX]);
        lua::push_bytes(l, pat);
        lua::push_bytes(l, &[0]);
        lua::push_bytes(l, opts);
        lua::push_bytes(l, &[0]);
        ffi::lua_concat(l, 5);
    }
    1
}

/// `bson.binary(str)` (subtype 0).
#[lua_function]
unsafe extern "C-unwind" fn lbinary(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        ffi::lua_settop(l, 1);
        let s = lua::to_bytes(l, 1).unwrap_or_default();
        lua::push_bytes(l, &[0, BINARY, 0]);
        lua::push_bytes(l, s);
        ffi::lua_concat(l, 2);
    }
    1
}

/// Per-process part of generated object ids: 3 bytes of hostname hash, 2 of pid; and the
/// counter, seeded from the hash, the time and an address.
struct OidState {
    header: [u8; 5],
    counter: AtomicU64,
}

fn oid_state() -> &'static OidState {
    static STATE: OnceLock<OidState> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut name = [0 as c_char; 256];
        let mut h: u32 = 0;
        // SAFETY: the buffer is writable for its length.
        if unsafe { libc::gethostname(name.as_mut_ptr(), name.len()) } == 0 {
            let mut i = 0u32;
            for &c in name.iter().take_while(|&&c| c != 0) {
                // `char` is signed in upstream's hash.
                let c = c as u8 as i8 as i32 as u32;
                h ^= (h << 5).wrapping_add(h >> 2).wrapping_add(c);
                i += 1;
            }
            h ^= i;
        }
        let pid = std::process::id();
        let now = now_secs();
        let here = &h as *const u32 as usize as u64;
        let seed = u64::from(h) ^ now ^ here;
        OidState {
            header: [
                h as u8,
                (h >> 8) as u8,
                (h >> 16) as u8,
                pid as u8,
                (pid >> 8) as u8,
            ],
            counter: AtomicU64::new(if seed == 0 { 1 } else { seed }),
        }
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new object id: big-endian seconds, the 5-byte process header, a 3-byte counter.
pub fn new_objectid() -> [u8; 12] {
    let st = oid_state();
    let id = st.counter.fetch_add(1, Ordering::Relaxed) as u32;
    let t = now_secs() as u32;
    let mut o = [0u8; 12];
    o[..4].copy_from_slice(&t.to_be_bytes());
    o[4..9].copy_from_slice(&st.header);
    o[9..].copy_from_slice(&id.to_be_bytes()[1..]);
    o
}

/// Parses 24 hex digits as upstream does (letters beyond f still count, from 10 upwards;
/// other characters count as 0).
pub fn objectid_from_hex(s: &[u8; 24]) -> [u8; 12] {
    fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => 0,
        }
    }
    let mut o = [0u8; 12];
    for (i, b) in o.iter_mut().enumerate() {
        *b = (digit(s[2 * i]) << 4) | digit(s[2 * i + 1]);
    }
    o
}

/// `bson.objectid([hex24])`.
#[lua_function]
unsafe extern "C-unwind" fn lobjectid(l: *mut lua_State) -> c_int {
    // SAFETY: running state; luaL_error raises with nothing owned.
    unsafe {
        let oid = if ffi::lua_isstring(l, 1) != 0 {
            let s = lua::to_bytes(l, 1).unwrap_or_default();
            let Ok(hex) = <&[u8; 24]>::try_from(s) else {
                return ffi::luaL_error(
                    l,
                    c"Invalid objectid %s".as_ptr(),
                    ffi::lua_tolstring(l, 1, std::ptr::null_mut()),
                );
            };
            objectid_from_hex(hex)
        } else {
            new_objectid()
        };
        push_tagged(l, OBJECTID, &oid);
    }
    1
}

/// Names `bson.type` returns, in upvalue order.
const TYPE_NAMES: [&CStr; 14] = [
    c"number",
    c"boolean",
    c"table",
    c"nil",
    c"string",
    c"binary",
    c"objectid",
    c"timestamp",
    c"date",
    c"regex",
    c"minkey",
    c"maxkey",
    c"int64",
    c"unsupported",
];

/// Upvalue index of a type name (1-based, as in [`TYPE_NAMES`]).
fn type_up(n: c_int) -> c_int {
    ffi::lua_upvalueindex(n)
}

/// `bson.type(v)` for a tagged string: its type name and decoded fields.
///
/// # Safety
/// `l` is the running `type` closure; raises on malformed strings with nothing owned.
unsafe fn subtype_info(l: *mut lua_State, tag: u8, p: &[u8]) -> c_int {
    // SAFETY: valid state; the raises below happen with nothing owned.
    unsafe {
        match tag {
            BINARY => {
                let Some((&sub, data)) = p.split_first() else {
                    return ffi::luaL_error(l, c"Invalid binary".as_ptr());
                };
                ffi::lua_pushvalue(l, type_up(6));
                lua::push_bytes(l, data);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(sub));
                3
            }
            OBJECTID => {
                if p.len() != 12 {
                    return ffi::luaL_error(l, c"Invalid object id".as_ptr());
                }
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = [0u8; 24];
                for (i, b) in p.iter().enumerate() {
                    s[2 * i] = HEX[usize::from(b >> 4)];
                    s[2 * i + 1] = HEX[usize::from(b & 15)];
                }
                ffi::lua_pushvalue(l, type_up(7));
                lua::push_bytes(l, &s);
                2
            }
            DATE => {
                let Ok(b) = <[u8; 4]>::try_from(p) else {
                    return ffi::luaL_error(l, c"Invalid date".as_ptr());
                };
                ffi::lua_pushvalue(l, type_up(9));
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(i32::from_ne_bytes(b)));
                2
            }
            TIMESTAMP => {
                if p.len() != 8 {
                    return ffi::luaL_error(l, c"Invalid timestamp".as_ptr());
                }
                let inc = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
                let t = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
                ffi::lua_pushvalue(l, type_up(8));
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(t));
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(inc));
                3
            }
            REGEX => {
                let body = p.get(..p.len().wrapping_sub(1)).unwrap_or_default();
                let Some(cut) = body.iter().rposition(|&b| b == 0).filter(|_| !p.is_empty()) else {
                    return ffi::luaL_error(l, c"Invalid regex".as_ptr());
                };
                ffi::lua_pushvalue(l, type_up(10));
                lua::push_bytes(l, &body[..cut]);
                lua::push_bytes(l, &body[cut + 1..]);
                3
            }
            MINKEY => {
                ffi::lua_pushvalue(l, type_up(11));
                1
            }
            MAXKEY => {
                ffi::lua_pushvalue(l, type_up(12));
                1
            }
            NULL => {
                ffi::lua_pushvalue(l, type_up(4));
                1
            }
            JSCODE | DBPOINTER | SYMBOL | CODEWS => {
                ffi::lua_pushvalue(l, type_up(14));
                lua::push_bytes(l, p);
                2
            }
            INT64 => {
                let Ok(b) = <[u8; 8]>::try_from(p) else {
                    return ffi::luaL_error(l, c"Invalid int64".as_ptr());
                };
                ffi::lua_pushvalue(l, type_up(13));
                ffi::lua_pushinteger(l, i64::from_ne_bytes(b));
                2
            }
            t => ffi::luaL_error(l, c"Invalid subtype %d".as_ptr(), c_int::from(t)),
        }
    }
}

/// `bson.type(v)` → type name, value(s).
#[lua_function]
unsafe extern "C-unwind" fn ltype(l: *mut lua_State) -> c_int {
    // SAFETY: running closure with the 14 name upvalues.
    unsafe {
        let t = ffi::lua_type(l, 1);
        let up = match t {
            ffi::LUA_TNUMBER => 1,
            ffi::LUA_TBOOLEAN => 2,
            ffi::LUA_TTABLE => 3,
            ffi::LUA_TNIL => {
                ffi::lua_pushvalue(l, type_up(4));
                return 1;
            }
            ffi::LUA_TSTRING => {
                let s = lua::to_bytes(l, 1).unwrap_or_default();
                if s.len() >= 2 && s[0] == 0 {
                    return subtype_info(l, s[1], &s[2..]);
                }
                5
            }
            _ => {
                return ffi::luaL_error(l, c"Invalid type %s".as_ptr(), ffi::lua_typename(l, t));
            }
        };
        ffi::lua_pushvalue(l, type_up(up));
        ffi::lua_pushvalue(l, 1);
    }
    2
}

/// `require "bson"`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_bson(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 10] = [
        (c"encode", lencode),
        (c"encode_order", lencode_order),
        (c"date", ldate),
        (c"timestamp", ltimestamp),
        (c"regex", lregex),
        (c"binary", lbinary),
        (c"objectid", lobjectid),
        (c"int64", lint64),
        (c"decode", ldecode),
        (c"to_lightuserdata", lto_lightuserdata),
    ];
    // SAFETY: valid state.
    unsafe {
        new_lib(l, &FUNCS);
        ffi::luaL_checkstack(l, TYPE_NAMES.len() as c_int + 2, std::ptr::null());
        for name in TYPE_NAMES {
            ffi::lua_pushstring(l, name.as_ptr());
        }
        ffi::lua_pushcclosure(l, ltype, TYPE_NAMES.len() as c_int);
        ffi::lua_setfield(l, -2, c"type".as_ptr());
        for (name, tag) in [(c"null", NULL), (c"minkey", MINKEY), (c"maxkey", MAXKEY)] {
            lua::push_bytes(l, &[0, tag]);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    oid_state();
    1
}

#[cfg(test)]
mod tests;
