//! lua-seri: the `skynet.pack` / `skynet.unpack` / `skynet.packstring` wire format,
//! byte-compatible with upstream skynet in both directions.
//!
//! # Format
//! A stream is a sequence of values with no header, in native byte order. Every value starts with
//! a type byte `type | cookie << 3`:
//!
//! | type | cookie | payload |
//! |---|---|---|
//! | 0 nil | 0 | — |
//! | 1 boolean | 0 / 1 | — |
//! | 2 number | 0 zero, 1 byte, 2 word, 4 dword, 6 qword, 8 real | 0, 1, 2, 4, 8, 8 bytes |
//! | 3 light userdata | 0 | pointer-sized raw bytes |
//! | 4 short string | length 0..=31 | bytes |
//! | 5 long string | 2 / 4 | u16 / u32 length, bytes |
//! | 6 table | array size 0..=30, or 31 + a non-real number value | array items, hash pairs, nil |
//!
//! # Error handling and `longjmp`
//! Lua errors are `longjmp`s that skip every frame between the raise and the protected call. The
//! code here is therefore split in two layers: private inner functions that never raise on their
//! own account and report failures as `Err(Fail)` (a `Copy` enum, nothing to drop), and the
//! exported `extern "C-unwind"` functions that raise the Lua error only after the inner call has
//! returned, i.e. with no Rust value alive that has a destructor. The write buffer is a plain
//! struct without `Drop`; it is freed explicitly before any error is raised.
//!
//! A few Lua API calls made by the inner layer can still raise on their own: memory errors from
//! `lua_pushlstring` / `lua_createtable` / `lua_rawset[i]` / `lua_pushstring`, and `lua_next`'s
//! "invalid key to 'next'" if a `__pairs` metamethod run during packing rehashes a table that is
//! being traversed. Every Rust frame those errors can cross holds only plain data (raw pointers,
//! integers, slices, `Result<_, Fail>`), so skipping them is sound; in that case a partially
//! built heap buffer is leaked, exactly as upstream leaks its block chain.
//!
//! # Differences from upstream (none visible on well-formed data)
//! - Output buffer: packed into 256 bytes of Rust stack first, then one `realloc`'d libc block
//!   (upstream: a chain of 128-byte blocks copied into a fresh `malloc` block). `pack` returns a
//!   libc `malloc` block (non-NULL even for zero values) that the caller frees with `free`.
//! - Unpack bounds nesting: a table may appear at levels 0..=32, the same levels `pack` can
//!   produce; deeper input is an "Invalid serialize stream" error instead of unbounded C
//!   recursion. Forged array sizes never preallocate more slots than there are input bytes, and
//!   a NaN hash key is reported as an invalid stream instead of letting `lua_rawset` raise.
//! - Sizes are not truncated to C `int`: a string longer than `u32::MAX` bytes cannot be packed
//!   ("serialize can't pack too long string"), and unpack sizes are used as 64-bit values.
//! - The "line" in "Invalid serialize stream %d (line:%d)" is a line of this file.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use crate::lua::lua_function;
use std::ffi::{c_char, c_int, c_void};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use mlua::ffi::{self, lua_State};

const TYPE_NIL: u8 = 0;
const TYPE_BOOLEAN: u8 = 1;
const TYPE_NUMBER: u8 = 2;
const TYPE_USERDATA: u8 = 3;
const TYPE_SHORT_STRING: u8 = 4;
const TYPE_LONG_STRING: u8 = 5;
const TYPE_TABLE: u8 = 6;

const NUMBER_ZERO: u8 = 0;
const NUMBER_BYTE: u8 = 1;
const NUMBER_WORD: u8 = 2;
const NUMBER_DWORD: u8 = 4;
const NUMBER_QWORD: u8 = 6;
const NUMBER_REAL: u8 = 8;

/// Strings shorter than this are "short" (length in the cookie); also the table-size escape + 1.
const MAX_COOKIE: u8 = 32;
/// Deepest nesting level at which a value may be packed (top-level arguments are level 0).
const MAX_DEPTH: u32 = 32;
/// Bytes packed on the Rust stack before the buffer moves to the heap.
const STACK_BUF: usize = 256;
const PTR_SIZE: usize = std::mem::size_of::<usize>();

#[inline(always)]
const fn combine(ty: u8, cookie: u8) -> u8 {
    ty | (cookie << 3)
}

/// Why an inner function gave up. Plain data: it is carried out of every Rust frame before the
/// exported function turns it into a Lua error.
#[derive(Clone, Copy, Debug)]
enum Fail {
    /// "serialize can't pack too depth table"
    TooDepth,
    /// "Unsupport type %s to serialize" (the Lua type code).
    Unsupported(c_int),
    /// "out of memory": the write buffer could not grow, or `lua_checkstack` failed in pack.
    NoMemory,
    /// A string longer than the format's u32 length field.
    StringTooLong,
    /// A `__pairs` call failed; its error object is on top of the Lua stack.
    LuaError,
    /// "Invalid serialize stream %d (line:%d)": bytes left unread, source line of the check.
    Invalid { left: usize, line: u32 },
    /// "stack overflow": `lua_checkstack` failed in unpack.
    StackOverflow,
}

/// Raise the Lua error described by `fail`.
///
/// # Safety
/// `l` is the state of the running C function; for `Fail::LuaError` the error object is on top
/// of its stack. The caller must hold no Rust value with a destructor.
unsafe fn raise(l: *mut lua_State, fail: Fail) -> c_int {
    // SAFETY: caller contract; every format string is NUL-terminated and its arguments match
    // Lua's own `%s` (C string) / `%d` (int) conversions.
    unsafe {
        match fail {
            Fail::TooDepth => ffi::luaL_error(l, c"serialize can't pack too depth table".as_ptr()),
            Fail::Unsupported(ty) => ffi::luaL_error(
                l,
                c"Unsupport type %s to serialize".as_ptr(),
                ffi::lua_typename(l, ty),
            ),
            Fail::NoMemory => ffi::luaL_error(l, c"out of memory".as_ptr()),
            Fail::StringTooLong => {
                ffi::luaL_error(l, c"serialize can't pack too long string".as_ptr())
            }
            Fail::LuaError => ffi::lua_error(l),
            Fail::Invalid { left, line } => ffi::luaL_error(
                l,
                c"Invalid serialize stream %d (line:%d)".as_ptr(),
                c_int::try_from(left).unwrap_or(c_int::MAX),
                c_int::try_from(line).unwrap_or(c_int::MAX),
            ),
            Fail::StackOverflow => ffi::luaL_error(l, c"stack overflow".as_ptr()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Write side
// ---------------------------------------------------------------------------------------------

/// Growable output buffer: starts in caller-provided stack storage, moves to a libc `malloc`
/// block when that is full. Deliberately no `Drop`: call [`WriteBuf::release`] or
/// [`WriteBuf::into_malloc`] exactly once.
struct WriteBuf<'a> {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    heap: bool,
    _stack: PhantomData<&'a mut [MaybeUninit<u8>]>,
}

impl<'a> WriteBuf<'a> {
    fn new(stack: &'a mut [MaybeUninit<u8>]) -> Self {
        WriteBuf {
            ptr: stack.as_mut_ptr().cast(),
            len: 0,
            cap: stack.len(),
            heap: false,
            _stack: PhantomData,
        }
    }

    /// Make room for `extra` more bytes.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, extra: usize) -> Result<(), Fail> {
        let need = self.len.checked_add(extra).ok_or(Fail::NoMemory)?;
        let new_cap = need.max(self.cap.saturating_mul(2)).max(STACK_BUF * 4);
        if self.heap {
            // SAFETY: `ptr` is a live malloc block owned by this buffer; on failure realloc
            // leaves it untouched (and still owned by us).
            let p = unsafe { libc::realloc(self.ptr.cast(), new_cap) }.cast::<u8>();
            if p.is_null() {
                return Err(Fail::NoMemory);
            }
            self.ptr = p;
        } else {
            // SAFETY: plain allocation.
            let p = unsafe { libc::malloc(new_cap) }.cast::<u8>();
            if p.is_null() {
                return Err(Fail::NoMemory);
            }
            // SAFETY: the first `len` bytes of the stack storage are initialised, `p` has room
            // for `new_cap >= len` bytes, and the two regions are distinct allocations.
            unsafe { ptr::copy_nonoverlapping(self.ptr, p, self.len) };
            self.ptr = p;
            self.heap = true;
        }
        self.cap = new_cap;
        Ok(())
    }

    #[inline(always)]
    fn reserve(&mut self, extra: usize) -> Result<(), Fail> {
        if self.cap - self.len < extra {
            self.grow(extra)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.reserve(bytes.len())?;
        // SAFETY: `reserve` guarantees `cap - len >= bytes.len()`; `bytes` cannot alias our
        // storage (we never hand out references to it).
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), bytes.len()) };
        self.len += bytes.len();
        Ok(())
    }

    /// A type byte followed by `payload`, with a single capacity check.
    #[inline(always)]
    fn push_tagged(&mut self, tag: u8, payload: &[u8]) -> Result<(), Fail> {
        self.reserve(payload.len() + 1)?;
        // SAFETY: `reserve` guarantees room for `1 + payload.len()` bytes past `len`.
        unsafe {
            let dst = self.ptr.add(self.len);
            dst.write(tag);
            ptr::copy_nonoverlapping(payload.as_ptr(), dst.add(1), payload.len());
        }
        self.len += payload.len() + 1;
        Ok(())
    }

    /// The written bytes (valid until the next mutation).
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes at `ptr` are initialised and owned by this buffer.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Hand the contents over as a libc `malloc` block (never NULL) and its length.
    fn into_malloc(self) -> Result<(*mut u8, usize), Fail> {
        if self.heap {
            return Ok((self.ptr, self.len));
        }
        // SAFETY: plain allocation (at least 1 byte so that an empty pack is not NULL).
        let p = unsafe { libc::malloc(self.len.max(1)) }.cast::<u8>();
        if p.is_null() {
            return Err(Fail::NoMemory);
        }
        // SAFETY: `len` initialised bytes from the stack storage into a fresh block of at
        // least `len` bytes.
        unsafe { ptr::copy_nonoverlapping(self.ptr, p, self.len) };
        Ok((p, self.len))
    }

    /// Free the heap block, if any.
    fn release(self) {
        if self.heap {
            // SAFETY: `ptr` is a malloc block owned by this buffer, freed exactly once here.
            unsafe { libc::free(self.ptr.cast()) };
        }
    }
}

fn write_integer(wb: &mut WriteBuf, v: i64) -> Result<(), Fail> {
    if v == 0 {
        wb.push(&[combine(TYPE_NUMBER, NUMBER_ZERO)])
    } else if v != i64::from(v as i32) {
        wb.push_tagged(combine(TYPE_NUMBER, NUMBER_QWORD), &v.to_ne_bytes())
    } else if v < 0 {
        wb.push_tagged(
            combine(TYPE_NUMBER, NUMBER_DWORD),
            &(v as i32).to_ne_bytes(),
        )
    } else if v < 0x100 {
        wb.push_tagged(combine(TYPE_NUMBER, NUMBER_BYTE), &[v as u8])
    } else if v < 0x10000 {
        wb.push_tagged(combine(TYPE_NUMBER, NUMBER_WORD), &(v as u16).to_ne_bytes())
    } else {
        wb.push_tagged(
            combine(TYPE_NUMBER, NUMBER_DWORD),
            &(v as u32).to_ne_bytes(),
        )
    }
}

fn write_string(wb: &mut WriteBuf, s: &[u8]) -> Result<(), Fail> {
    let len = s.len();
    if len < usize::from(MAX_COOKIE) {
        wb.push_tagged(combine(TYPE_SHORT_STRING, len as u8), s)
    } else {
        if let Ok(n) = u16::try_from(len) {
            wb.push_tagged(combine(TYPE_LONG_STRING, 2), &n.to_ne_bytes())?;
        } else {
            let n = u32::try_from(len).map_err(|_| Fail::StringTooLong)?;
            wb.push_tagged(combine(TYPE_LONG_STRING, 4), &n.to_ne_bytes())?;
        }
        wb.push(s)
    }
}

/// Pack the value at absolute stack index `idx`, found at nesting level `depth`.
///
/// # Safety
/// `l` is the state of the running C function and `idx` a valid absolute index into its stack.
unsafe fn pack_value(
    l: *mut lua_State,
    wb: &mut WriteBuf,
    idx: c_int,
    depth: u32,
) -> Result<(), Fail> {
    if depth > MAX_DEPTH {
        return Err(Fail::TooDepth);
    }
    // SAFETY: valid index (caller contract); lua_type never raises.
    let ty = unsafe { ffi::lua_type(l, idx) };
    match ty {
        ffi::LUA_TNIL => wb.push(&[TYPE_NIL]),
        ffi::LUA_TBOOLEAN => {
            // SAFETY: valid index; non-raising.
            let b = unsafe { ffi::lua_toboolean(l, idx) } != 0;
            wb.push(&[combine(TYPE_BOOLEAN, u8::from(b))])
        }
        ffi::LUA_TNUMBER => {
            // SAFETY: valid index holding a number; these accessors never raise nor convert.
            unsafe {
                if ffi::lua_isinteger(l, idx) != 0 {
                    write_integer(wb, ffi::lua_tointeger(l, idx))
                } else {
                    let n: f64 = ffi::lua_tonumber(l, idx);
                    wb.push_tagged(combine(TYPE_NUMBER, NUMBER_REAL), &n.to_ne_bytes())
                }
            }
        }
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            // SAFETY: the value is a string, so lua_tolstring returns its (non-NULL) bytes
            // without converting anything; they stay valid while the string is on the stack,
            // which outlives this call.
            let s = unsafe {
                let p = ffi::lua_tolstring(l, idx, &mut len);
                std::slice::from_raw_parts(p.cast::<u8>(), len)
            };
            write_string(wb, s)
        }
        ffi::LUA_TLIGHTUSERDATA => {
            // SAFETY: valid index; non-raising.
            let p = unsafe { ffi::lua_touserdata(l, idx) };
            wb.push_tagged(TYPE_USERDATA, &p.expose_provenance().to_ne_bytes())
        }
        // SAFETY: `idx` is a valid absolute index holding a table.
        ffi::LUA_TTABLE => unsafe { pack_table(l, wb, idx, depth + 1) },
        _ => Err(Fail::Unsupported(ty)),
    }
}

/// Pack the table at absolute index `idx`; its contents are at nesting level `depth`.
///
/// # Safety
/// As [`pack_value`], and the value at `idx` is a table.
unsafe fn pack_table(
    l: *mut lua_State,
    wb: &mut WriteBuf,
    idx: c_int,
    depth: u32,
) -> Result<(), Fail> {
    // SAFETY: `l` is valid; lua_checkstack reports failure instead of raising.
    if unsafe { ffi::lua_checkstack(l, ffi::LUA_MINSTACK) } == 0 {
        return Err(Fail::NoMemory);
    }
    // Look up `__pairs` raw in the metatable (what luaL_getmetafield does).
    // SAFETY: `idx` is valid and we just ensured stack room for the two pushes; lua_pushstring
    // can only raise on memory exhaustion (see the module docs); lua_rawget never raises.
    unsafe {
        if ffi::lua_getmetatable(l, idx) != 0 {
            ffi::lua_pushstring(l, c"__pairs".as_ptr());
            if ffi::lua_rawget(l, -2) != ffi::LUA_TNIL {
                ffi::lua_remove(l, -2);
                return pack_metapairs(l, wb, idx, depth);
            }
            ffi::lua_pop(l, 2);
        }
    }

    // SAFETY: `idx` holds a table; raw length never invokes metamethods.
    let n = unsafe { ffi::lua_rawlen(l, idx) };
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    if n >= i64::from(MAX_COOKIE - 1) {
        wb.push(&[combine(TYPE_TABLE, MAX_COOKIE - 1)])?;
        write_integer(wb, n)?;
    } else {
        wb.push(&[combine(TYPE_TABLE, n as u8)])?;
    }
    for i in 1..=n {
        // SAFETY: raw access to a table at a valid index, with stack room reserved above.
        let top = unsafe {
            ffi::lua_rawgeti(l, idx, i);
            ffi::lua_gettop(l)
        };
        // SAFETY: `top` is the value just pushed.
        unsafe { pack_value(l, wb, top, depth)? };
        // SAFETY: pops the value pushed above.
        unsafe { ffi::lua_pop(l, 1) };
    }

    // SAFETY: valid table index, stack room reserved; lua_next only raises for a key that is no
    // longer in the table (see the module docs).
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            if ffi::lua_isinteger(l, -2) != 0 {
                let k = ffi::lua_tointeger(l, -2);
                if k > 0 && k <= n {
                    ffi::lua_pop(l, 1);
                    continue;
                }
            }
            let top = ffi::lua_gettop(l);
            pack_value(l, wb, top - 1, depth)?;
            pack_value(l, wb, top, depth)?;
            ffi::lua_pop(l, 1);
        }
    }
    wb.push(&[TYPE_NIL])
}

/// Pack the table at `idx` through its `__pairs` metamethod, which is on top of the stack:
/// array size 0, then every pair the iterator yields, then nil.
///
/// # Safety
/// As [`pack_table`], with the `__pairs` value on top of the stack and room for 5 more slots.
unsafe fn pack_metapairs(
    l: *mut lua_State,
    wb: &mut WriteBuf,
    idx: c_int,
    depth: u32,
) -> Result<(), Fail> {
    wb.push(&[combine(TYPE_TABLE, 0)])?;
    // SAFETY: stack: [__pairs]; call __pairs(t) protected, keeping 3 results [f, s, ctl].
    unsafe {
        ffi::lua_pushvalue(l, idx);
        if ffi::lua_pcall(l, 1, 3, 0) != ffi::LUA_OK {
            return Err(Fail::LuaError);
        }
    }
    loop {
        // SAFETY: stack: [f, s, ctl] -> [f, s, f, s, ctl] -> protected f(s, ctl) -> [f, s, k, v].
        // Stack room was reserved by pack_table.
        unsafe {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_pushvalue(l, -2);
            ffi::lua_copy(l, -5, -3);
            if ffi::lua_pcall(l, 2, 2, 0) != ffi::LUA_OK {
                return Err(Fail::LuaError);
            }
            if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                ffi::lua_pop(l, 4);
                break;
            }
            let top = ffi::lua_gettop(l);
            pack_value(l, wb, top - 1, depth)?;
            pack_value(l, wb, top, depth)?;
            // [f, s, k, v] -> [f, s, k]: k is the next control value.
            ffi::lua_pop(l, 1);
        }
    }
    wb.push(&[TYPE_NIL])
}

/// Pack every argument of the running C function into `wb`.
///
/// # Safety
/// `l` is the state of the running C function.
unsafe fn pack_args(l: *mut lua_State, wb: &mut WriteBuf) -> Result<(), Fail> {
    // SAFETY: `l` is valid.
    let n = unsafe { ffi::lua_gettop(l) };
    for i in 1..=n {
        // SAFETY: 1..=n are valid absolute indices.
        unsafe { pack_value(l, wb, i, 0)? };
    }
    Ok(())
}

/// `skynet.core.pack(...)` → lightuserdata (libc-malloc'd buffer), integer size.
///
/// The buffer is owned by the caller (skynet frees it with libc `free`, usually after sending).
///
/// # Safety
/// Must only be called by Lua as a C function (`l` is the running state).
#[lua_function]
pub unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    // SAFETY: `l` is the running state (caller contract).
    match unsafe { pack_inner(l) } {
        Ok(n) => n,
        // SAFETY: pack_inner has returned and freed its buffer; nothing with a destructor is
        // alive in this frame.
        Err(fail) => unsafe { raise(l, fail) },
    }
}

/// # Safety
/// `l` is the state of the running C function.
unsafe fn pack_inner(l: *mut lua_State) -> Result<c_int, Fail> {
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_BUF];
    let mut wb = WriteBuf::new(&mut stack);
    // SAFETY: `l` is the running state.
    if let Err(fail) = unsafe { pack_args(l, &mut wb) } {
        wb.release();
        return Err(fail);
    }
    let (p, len) = wb.into_malloc()?;
    // SAFETY: the stack is back at its entry height, and a C function always has LUA_MINSTACK
    // free slots; neither push allocates nor raises.
    unsafe {
        ffi::lua_pushlightuserdata(l, p.cast::<c_void>());
        ffi::lua_pushinteger(l, i64::try_from(len).unwrap_or(i64::MAX));
    }
    Ok(2)
}

/// `skynet.core.packstring(...)` → string.
///
/// # Safety
/// Must only be called by Lua as a C function (`l` is the running state).
#[lua_function]
pub unsafe extern "C-unwind" fn packstring(l: *mut lua_State) -> c_int {
    // SAFETY: `l` is the running state (caller contract).
    match unsafe { packstring_inner(l) } {
        Ok(n) => n,
        // SAFETY: packstring_inner has returned and freed its buffer; nothing with a
        // destructor is alive in this frame.
        Err(fail) => unsafe { raise(l, fail) },
    }
}

/// # Safety
/// `l` is the state of the running C function.
unsafe fn packstring_inner(l: *mut lua_State) -> Result<c_int, Fail> {
    let mut stack = [MaybeUninit::<u8>::uninit(); STACK_BUF];
    let mut wb = WriteBuf::new(&mut stack);
    // SAFETY: `l` is the running state.
    if let Err(fail) = unsafe { pack_args(l, &mut wb) } {
        wb.release();
        return Err(fail);
    }
    let bytes = wb.as_bytes();
    // SAFETY: the stack is back at its entry height (LUA_MINSTACK slots free); lua_pushlstring
    // copies the bytes and can only raise on memory exhaustion (module docs).
    unsafe { ffi::lua_pushlstring(l, bytes.as_ptr().cast::<c_char>(), bytes.len()) };
    wb.release();
    Ok(1)
}

// ---------------------------------------------------------------------------------------------
// Read side
// ---------------------------------------------------------------------------------------------

/// Bounds-checked cursor over the input bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..)?.get(..n)?;
        self.pos += n;
        Some(s)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// `Fail::Invalid` at the current read position and source line.
macro_rules! invalid {
    ($rd:expr) => {
        Fail::Invalid {
            left: $rd.left(),
            line: line!(),
        }
    };
}

fn read_integer(rd: &mut Reader, cookie: u8) -> Result<i64, Fail> {
    let v = match cookie {
        NUMBER_ZERO => Some(0),
        NUMBER_BYTE => rd.byte().map(i64::from),
        NUMBER_WORD => rd.array().map(|b| i64::from(u16::from_ne_bytes(b))),
        NUMBER_DWORD => rd.array().map(|b| i64::from(i32::from_ne_bytes(b))),
        NUMBER_QWORD => rd.array().map(i64::from_ne_bytes),
        _ => None,
    };
    v.ok_or_else(|| invalid!(rd))
}

/// Push the string of `len` bytes that follows.
///
/// # Safety
/// `l` is the running state with a free stack slot.
unsafe fn push_bytes(l: *mut lua_State, rd: &mut Reader, len: usize) -> Result<(), Fail> {
    let s = rd.take(len).ok_or_else(|| invalid!(rd))?;
    // SAFETY: `s` is in bounds of the input; lua_pushlstring copies it (raises only on OOM).
    unsafe { ffi::lua_pushlstring(l, s.as_ptr().cast::<c_char>(), s.len()) };
    Ok(())
}

/// Decode the value whose type byte is `tag` and push it; `depth` is its nesting level.
///
/// # Safety
/// `l` is the running state with at least one free stack slot.
unsafe fn push_value(l: *mut lua_State, rd: &mut Reader, tag: u8, depth: u32) -> Result<(), Fail> {
    let cookie = tag >> 3;
    match tag & 7 {
        // SAFETY: one free slot is guaranteed by the caller (this reasoning covers the arms
        // below); these pushes never raise, except lua_pushlstring on memory exhaustion.
        TYPE_NIL => unsafe { ffi::lua_pushnil(l) },
        // SAFETY: see above.
        TYPE_BOOLEAN => unsafe { ffi::lua_pushboolean(l, c_int::from(cookie != 0)) },
        TYPE_NUMBER => {
            if cookie == NUMBER_REAL {
                let b = rd.array().ok_or_else(|| invalid!(rd))?;
                // SAFETY: see above.
                unsafe { ffi::lua_pushnumber(l, f64::from_ne_bytes(b)) };
            } else {
                let v = read_integer(rd, cookie)?;
                // SAFETY: see above.
                unsafe { ffi::lua_pushinteger(l, v) };
            }
        }
        TYPE_USERDATA => {
            let b = rd.array::<PTR_SIZE>().ok_or_else(|| invalid!(rd))?;
            let p = ptr::with_exposed_provenance_mut::<c_void>(usize::from_ne_bytes(b));
            // SAFETY: see above; the pointer is only stored, never dereferenced here.
            unsafe { ffi::lua_pushlightuserdata(l, p) };
        }
        // SAFETY: see above.
        TYPE_SHORT_STRING => unsafe { push_bytes(l, rd, usize::from(cookie))? },
        TYPE_LONG_STRING => {
            let len = match cookie {
                2 => rd.array().map(|b| usize::from(u16::from_ne_bytes(b))),
                4 => rd.array().map(|b| u32::from_ne_bytes(b) as usize),
                _ => None,
            }
            .ok_or_else(|| invalid!(rd))?;
            // SAFETY: see above.
            unsafe { push_bytes(l, rd, len)? };
        }
        // SAFETY: caller contract forwarded.
        TYPE_TABLE => unsafe { push_table(l, rd, cookie, depth)? },
        _ => return Err(invalid!(rd)),
    }
    Ok(())
}

/// Read one value from the stream and push it.
///
/// # Safety
/// As [`push_value`].
#[inline(always)]
unsafe fn read_value(l: *mut lua_State, rd: &mut Reader, depth: u32) -> Result<(), Fail> {
    let tag = rd.byte().ok_or_else(|| invalid!(rd))?;
    // SAFETY: caller contract forwarded.
    unsafe { push_value(l, rd, tag, depth) }
}

/// Decode a table (its type byte already read, `cookie` = array-size cookie) and push it.
///
/// # Safety
/// `l` is the running state with at least one free stack slot.
unsafe fn push_table(
    l: *mut lua_State,
    rd: &mut Reader,
    cookie: u8,
    depth: u32,
) -> Result<(), Fail> {
    // Mirror of pack: a table may sit at any level pack accepts (0..=MAX_DEPTH). This also
    // bounds our recursion on hostile input.
    if depth > MAX_DEPTH {
        return Err(invalid!(rd));
    }
    let n = if cookie == MAX_COOKIE - 1 {
        let tag = rd.byte().ok_or_else(|| invalid!(rd))?;
        let c = tag >> 3;
        if tag & 7 != TYPE_NUMBER || c == NUMBER_REAL {
            return Err(invalid!(rd));
        }
        read_integer(rd, c)?
    } else {
        i64::from(cookie)
    };
    // SAFETY: `l` is valid; lua_checkstack reports failure instead of raising.
    if unsafe { ffi::lua_checkstack(l, ffi::LUA_MINSTACK) } == 0 {
        return Err(Fail::StackOverflow);
    }
    // Every array item takes at least one input byte: never preallocate more than that, so
    // a forged size cannot make lua_createtable raise.
    let hint = usize::try_from(n).unwrap_or(0).min(rd.left());
    // SAFETY: stack room ensured; may raise only on memory exhaustion.
    unsafe { ffi::lua_createtable(l, c_int::try_from(hint).unwrap_or(c_int::MAX), 0) };
    for i in 1..=n {
        // SAFETY: stack room ensured; the table is at -2 after the push.
        unsafe {
            read_value(l, rd, depth + 1)?;
            ffi::lua_rawseti(l, -2, i);
        }
    }
    loop {
        let tag = rd.byte().ok_or_else(|| invalid!(rd))?;
        if tag & 7 == TYPE_NIL {
            return Ok(());
        }
        // SAFETY: stack room ensured: [t] -> [t, k] -> [t, k, v] -> rawset -> [t].
        unsafe {
            push_value(l, rd, tag, depth + 1)?;
            // A NaN key would make lua_rawset raise; reject it as a bad stream instead.
            if ffi::lua_type(l, -1) == ffi::LUA_TNUMBER
                && ffi::lua_isinteger(l, -1) == 0
                && ffi::lua_tonumber(l, -1).is_nan()
            {
                return Err(invalid!(rd));
            }
            read_value(l, rd, depth + 1)?;
            ffi::lua_rawset(l, -3);
        }
    }
}

/// Decode every value of `data` onto the stack; returns how many were pushed.
///
/// # Safety
/// `l` is the running state, whose stack holds exactly one value (the argument).
unsafe fn unpack_inner(l: *mut lua_State, data: &[u8]) -> Result<c_int, Fail> {
    let mut rd = Reader { data, pos: 0 };
    let mut i = 0u32;
    while let Some(tag) = rd.byte() {
        // A C function starts with LUA_MINSTACK free slots: re-check every 8 values.
        // SAFETY: `l` is valid; lua_checkstack reports failure instead of raising.
        if i % 8 == 7 && unsafe { ffi::lua_checkstack(l, ffi::LUA_MINSTACK) } == 0 {
            return Err(Fail::StackOverflow);
        }
        // SAFETY: stack room ensured above.
        unsafe { push_value(l, &mut rd, tag, 0)? };
        i = i.wrapping_add(1);
    }
    // SAFETY: `l` is valid.
    Ok(unsafe { ffi::lua_gettop(l) } - 1)
}

/// `skynet.core.unpack(lightuserdata, size | string)` → values...
///
/// `nil`/no argument or an empty input give no values; a NULL pointer with a non-zero size is
/// an error ("deserialize null pointer"), and so is a truncated or corrupt stream ("Invalid
/// serialize stream ..."). As upstream, a negative size decodes nothing. The buffer is not
/// freed.
///
/// # Safety
/// Must only be called by Lua as a C function. As in upstream, a lightuserdata argument must
/// point to at least `size` readable bytes (that is the caller's contract with skynet; it
/// cannot be checked).
#[lua_function]
pub unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // Argument handling may raise (luaL_checkinteger): nothing with a destructor is alive.
    // SAFETY: `l` is the running state; index 1/2 are argument slots (possibly none).
    let (p, len): (*const u8, i64) = unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => return 0,
            ffi::LUA_TSTRING => {
                let mut sz = 0usize;
                let p = ffi::lua_tolstring(l, 1, &mut sz);
                (p.cast::<u8>(), i64::try_from(sz).unwrap_or(i64::MAX))
            }
            _ => {
                let p = ffi::lua_touserdata(l, 1);
                (p.cast::<u8>().cast_const(), ffi::luaL_checkinteger(l, 2))
            }
        }
    };
    if len == 0 {
        return 0;
    }
    if p.is_null() {
        // SAFETY: nothing with a destructor is alive.
        return unsafe { ffi::luaL_error(l, c"deserialize null pointer".as_ptr()) };
    }
    // Upstream decodes nothing for a negative size.
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    if len > isize::MAX as usize {
        // SAFETY: nothing with a destructor is alive.
        return unsafe {
            raise(
                l,
                Fail::Invalid {
                    left: len,
                    line: line!(),
                },
            )
        };
    }
    // SAFETY: a string argument: its bytes, kept alive by stack slot 1 for this whole call.
    // A pointer argument: `len` readable bytes by the caller's contract. `len <= isize::MAX`.
    // settop(1) keeps slot 1 and never raises (no to-be-closed slots in a C frame).
    let result = unsafe {
        ffi::lua_settop(l, 1);
        let data = std::slice::from_raw_parts(p, len);
        unpack_inner(l, data)
    };
    match result {
        Ok(n) => n,
        // SAFETY: unpack_inner has returned; `result` holds only plain data.
        Err(fail) => unsafe { raise(l, fail) },
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testlua::{self, State};

    /// `cfree(p)`: libc free of a pack buffer (pack allocates with libc, not `cmem`).
    #[lua_function]
    unsafe extern "C-unwind" fn cfree(l: *mut lua_State) -> c_int {
        // SAFETY: test-only; argument 1 is a pointer returned by `pack`.
        unsafe { libc::free(ffi::lua_touserdata(l, 1)) };
        0
    }

    fn new_state() -> State {
        testlua::new_state(
            &[],
            &[
                (c"pack", pack),
                (c"unpack", unpack),
                (c"packstring", packstring),
                (c"cfree", cfree),
            ],
        )
    }

    /// Runs a chunk after the helper prelude; its error message, if any.
    fn run(st: &State, code: &str) -> Result<(), String> {
        testlua::run(st, &format!("{PRELUDE}\n{code}"))
    }

    fn check(code: &str) {
        let st = new_state();
        if let Err(e) = run(&st, code) {
            panic!("Lua test failed: {e}");
        }
    }

    const PRELUDE: &str = r##"
function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function deq(a, b, seen)
    if type(a) ~= type(b) then return false end
    if type(a) == "number" then
        if math.type(a) ~= math.type(b) then return false end
        if a ~= a then return b ~= b end
        return a == b
    end
    if type(a) ~= "table" then return a == b end
    for k, v in pairs(a) do
        if not deq(v, rawget(b, k)) then return false end
    end
    for k in pairs(b) do
        if rawget(a, k) == nil then return false end
    end
    return true
end

-- unpack through both the malloc'd buffer and the string form; check they agree
function rt(...)
    local s = packstring(...)
    local p, sz = pack(...)
    assert(math.type(sz) == "integer" and sz == #s, "size mismatch")
    local r1 = table.pack(unpack(s))
    local r2 = table.pack(unpack(p, sz))
    cfree(p)
    assert(r1.n == r2.n)
    for i = 1, r1.n do assert(deq(r1[i], r2[i]), "string/pointer unpack disagree") end
    return table.unpack(r1, 1, r1.n)
end

function check_rt(...)
    local n = select("#", ...)
    local r = table.pack(rt(...))
    assert(r.n == n, string.format("count %d ~= %d", r.n, n))
    for i = 1, n do
        local a = select(i, ...)
        assert(deq(a, r[i]), string.format("value %d (%s) differs: %s", i, tostring(a), tostring(r[i])))
    end
end

function expect_error(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert(not ok, "expected an error matching " .. pattern)
    assert(type(err) == "string" and err:find(pattern), "unexpected error: " .. tostring(err))
    return err
end
"##;

    #[test]
    fn harness_reports_failures() {
        let st = new_state();
        let err = run(&st, "assert(hex(packstring(1)) == '0a02', 'wrong bytes')").unwrap_err();
        assert!(err.contains("wrong bytes"), "{err}");
        assert!(run(&st, "assert(hex(packstring(1)) == '0a01')").is_ok());
    }

    #[test]
    fn surface_example_bytes() {
        check(
            r##"
local s = packstring(1, -1, 255, 256, 65536, 1.5, "abc", {1, 2, 3, a = 4}, true, false, nil)
local want = "0a01" .. "22ffffffff" .. "0aff" .. "120001" .. "2200000100" ..
    "42000000000000f83f" .. "1c616263" .. "1e0a010a020a030c610a0400" .. "09" .. "01" .. "00"
assert(hex(s) == want, hex(s))
local p, sz = pack(1, -1, 255, 256, 65536, 1.5, "abc", {1, 2, 3, a = 4}, true, false, nil)
assert(type(p) == "userdata" and sz == #s)
local r = table.pack(unpack(p, sz))
cfree(p)
assert(r.n == 11 and r[1] == 1 and r[2] == -1 and r[6] == 1.5 and r[7] == "abc")
assert(deq(r[8], {1, 2, 3, a = 4}) and r[9] == true and r[10] == false and r[11] == nil)
"##,
        );
    }

    #[test]
    fn scalars_round_trip() {
        check(
            r##"
check_rt()
check_rt(nil)
check_rt(nil, nil, 1, nil)
check_rt(true, false)
local ints = {0, 1, 255, 256, 65535, 65536, 2147483647, 2147483648, -1, -2147483648,
    -2147483649, math.maxinteger, math.mininteger, -255, -256, -65536, 4294967296}
for _, v in ipairs(ints) do
    assert(math.type(v) == "integer")
    check_rt(v)
end
-- encodings at every size boundary
local enc = {
    [0] = "02", [1] = "0a01", [255] = "0aff", [256] = "120001", [65535] = "12ffff",
    [65536] = "2200000100", [2147483647] = "22ffffff7f", [2147483648] = "320000008000000000",
    [-1] = "22ffffffff", [-2147483648] = "2200000080", [-2147483649] = "32ffffff7fffffffff",
    [math.maxinteger] = "32ffffffffffffff7f", [math.mininteger] = "320000000000000080",
}
for v, h in pairs(enc) do assert(hex(packstring(v)) == h, v .. " -> " .. hex(packstring(v))) end
-- floats: always real, even integral ones
for _, v in ipairs({1.5, 2^31, 0.0, -0.0, 1e300, -1e-300, math.huge, -math.huge, 3.0}) do
    assert(math.type(v) == "float")
    check_rt(v)
    assert(packstring(v):byte(1) == 0x42)
end
assert(hex(packstring(2^31)) == "42000000000000e041")
local z = rt(-0.0)
assert(math.type(z) == "float" and 1 / z == -math.huge)
local nan = rt(0/0)
assert(math.type(nan) == "float" and nan ~= nan)
-- light userdata
local p, sz = pack(1)
local q = rt(p)
assert(type(q) == "userdata" and q == p)
assert(#packstring(p) == 1 + string.packsize("j"))
assert(packstring(p):byte(1) == 3)
cfree(p)
check_rt(nullptr)
"##,
        );
    }

    #[test]
    fn strings_round_trip() {
        check(
            r##"
local heads = {[0] = "04", [1] = "0c", [31] = "fc", [32] = "152000", [65535] = "15ffff",
    [65536] = "2500000100"}
for n, h in pairs(heads) do
    local s = string.rep("x", n)
    check_rt(s)
    local p = packstring(s)
    assert(#p == #h // 2 + n, n)
    assert(hex(p:sub(1, #h // 2)) == h, n .. ": " .. hex(p:sub(1, #h // 2)))
end
check_rt("a\0b", "\0", string.rep("\0", 40), string.rep("\0\1\255", 30000))
check_rt(string.rep("long", 300000))
"##,
        );
    }

    #[test]
    fn tables_round_trip() {
        check(
            r##"
check_rt({})
check_rt({1, 2, 3})
check_rt({a = 1, b = "x", [true] = false, [1.5] = 2.5, [-3] = 4, [0] = 0})
check_rt({1, 2, nil, 4, x = {y = {z = {}}}})
local big = {}
for i = 1, 100 do big[i] = i * 3 end
big.name = "big"
big[1000] = "sparse"
check_rt(big)
-- array size >= 31 escapes to a number value
local a = {}
for i = 1, 40 do a[i] = true end
local s = packstring(a)
assert(hex(s:sub(1, 3)) == "fe0a28", hex(s:sub(1, 3)))
local a30 = {}
for i = 1, 30 do a30[i] = 0 end
assert(packstring(a30):byte(1) == 6 | 30 << 3)
local a31 = {}
for i = 1, 31 do a31[i] = 0 end
assert(hex(packstring(a31):sub(1, 3)) == "fe0a1f")
-- table keys and nesting in both parts
check_rt({{3, {4, {5}}}, k = {{}, {}}})
local tk = unpack(packstring({[{1}] = {2}}))
local k, val = next(tk)
assert(deq(k, {1}) and deq(val, {2}) and next(tk, k) == nil)
-- many values on the stack
local many = {}
for i = 1, 5000 do many[i] = i % 7 == 0 and {i} or i end
check_rt(table.unpack(many))
-- metatables without __pairs are ignored
check_rt(setmetatable({1, 2, x = 3}, {__index = function() return 1 end}))
"##,
        );
    }

    #[test]
    fn metapairs() {
        check(
            r##"
local proxy = setmetatable({}, {__pairs = function(t)
    return next, {x = 1, y = {2, 3}}, nil
end})
local s = packstring(proxy)
assert(s:byte(1) == 6, "array size 0")
local r = unpack(s)
assert(deq(r, {x = 1, y = {2, 3}}))
-- array-like content goes through the hash part
local arr = setmetatable({}, {__pairs = function() return ipairs({10, 20, 30}) end})
assert(hex(packstring(arr)) == "060a010a0a0a020a140a030a1e00", hex(packstring(arr)))
assert(deq(unpack(packstring(arr)), {10, 20, 30}))
-- nested and stateful iterators
local function counter(n)
    return setmetatable({}, {__pairs = function()
        return function(_, k) k = (k or 0) + 1; if k <= n then return k, counter(n - 1) end end, nil, nil
    end})
end
local c = unpack(packstring(counter(3)))
assert(#c == 3 and #c[1] == 2 and #c[1][1] == 1 and next(c[1][1][1]) == nil)
-- errors inside __pairs propagate unchanged (including non-string errors)
local bad = setmetatable({}, {__pairs = function() error("boom") end})
expect_error("boom", packstring, bad)
expect_error("boom", pack, 1, {bad})
local badit = setmetatable({}, {__pairs = function() return function() error({code = 7}) end end})
local ok, e = pcall(pack, badit)
assert(not ok and type(e) == "table" and e.code == 7)
-- a non-callable __pairs
expect_error("attempt to call", pack, setmetatable({}, {__pairs = 42}))
"##,
        );
    }

    #[test]
    fn depth_and_type_errors() {
        check(
            r##"
local function nest(n, leaf)
    local t = leaf
    for _ = 1, n do t = {t} end
    return t
end
-- upstream semantics: values may be packed at levels 0..32; 33 nested tables therefore pack
-- when the innermost is empty, and not when it holds a value
check_rt(nest(32, 1))
check_rt(nest(33))
expect_error("^serialize can't pack too depth table$", pack, nest(33, 1))
expect_error("^serialize can't pack too depth table$", packstring, nest(34))
expect_error("serialize can't pack too depth table", pack, 1, "x", nest(100))
local loop = {}
loop[1] = loop
expect_error("serialize can't pack too depth table", pack, loop)
expect_error("^Unsupport type function to serialize$", pack, print)
expect_error("^Unsupport type thread to serialize$", packstring, coroutine.create(print))
expect_error("^Unsupport type userdata to serialize$", pack, {io.stdout})
expect_error("^Unsupport type function to serialize$", pack, {[print] = 1})
-- errors after the buffer moved to the heap free it (checked under valgrind)
expect_error("^Unsupport type function to serialize$", pack, string.rep("x", 5000), print)
expect_error("^Unsupport type function to serialize$", packstring, string.rep("x", 5000), print)
expect_error("serialize can't pack too depth table", pack, string.rep("x", 5000), nest(40))
expect_error("boom", packstring, string.rep("y", 300),
    setmetatable({}, {__pairs = function() error("boom") end}))
"##,
        );
    }

    #[test]
    fn unpack_edge_cases() {
        check(
            r##"
assert(select("#", unpack()) == 0)
assert(select("#", unpack(nil)) == 0)
assert(select("#", unpack("")) == 0)
assert(select("#", unpack(nullptr, 0)) == 0)
expect_error("^deserialize null pointer$", unpack, nullptr, 3)
expect_error("^deserialize null pointer$", unpack, 1, 3)
local p, sz = pack(1, 2, 3)
assert(select("#", unpack(p, -1)) == 0)
assert(select("#", unpack(p, 2)) == 1)
assert(select("#", unpack(p, sz)) == 3)
expect_error("number expected", unpack, p)
cfree(p)
-- 0-argument pack gives a real (non-NULL) empty buffer
local e, esz = pack()
assert(type(e) == "userdata" and e ~= nullptr and esz == 0)
cfree(e)
-- any low-3-bits-zero byte ends a table's hash part; boolean cookie != 0 is true
assert(deq(unpack("\6\248"), {}))
assert(unpack("\9") == true and unpack("\17") == true and unpack("\1") == false)
-- table size prefix: must be a number and not real
assert(#unpack("\254\10\2\2\2\0") == 2)
expect_error("^Invalid serialize stream", unpack, "\254\66\0\0\0\0\0\0\0\64\2\2\0")
expect_error("^Invalid serialize stream", unpack, "\254\4\0")
-- forged huge array size fails cleanly instead of allocating
expect_error("^Invalid serialize stream", unpack, "\254\50\255\255\255\255\255\255\255\127")
expect_error("^Invalid serialize stream", unpack, "\254\34\255\255\255\127\2")
-- negative array size: no array items
assert(deq(unpack("\254\34\255\255\255\255\0"), {}))
-- bad cookies / type 7
for _, s in ipairs({"\7", "\26", "\50\0", "\58", "\13", "\29\0\0\0", "\45"}) do
    expect_error("^Invalid serialize stream", unpack, s)
end
-- NaN keys are rejected (lua_rawset would raise otherwise)
expect_error("^Invalid serialize stream", unpack, "\6\66\0\0\0\0\0\0\248\127\2\0")
-- nesting: 33 levels accepted (what pack can produce), 34 rejected, deep garbage rejected
assert(unpack(string.rep("\14", 32) .. "\6\0" .. string.rep("\0", 32)))
expect_error("^Invalid serialize stream", unpack, string.rep("\14", 33) .. "\6\0" .. string.rep("\0", 33))
expect_error("^Invalid serialize stream", unpack, string.rep("\14", 100000))
expect_error("^Invalid serialize stream", unpack, string.rep("\6\6", 100000))
-- lots of top-level values
local n = select("#", unpack(string.rep("\2", 100000)))
assert(n == 100000)
"##,
        );
    }

    #[test]
    fn truncated_and_garbage_input() {
        check(
            r##"
local v = {1, -1, 255, 256, 65536, 1.5, "abc", string.rep("L", 40), string.rep("M", 70000),
    {x = {y = {1, 2, 3}}, [true] = 1 << 40}, 0.25, false, true, nullptr}
for i = 1, 40 do v[#v + 1] = i end
local s = packstring(v)
-- a single top-level table: every proper prefix is truncated
assert(#s > 70000)
for i = 1, #s - 1 do
    if i < 1000 or i > #s - 1000 or i % 97 == 0 then
        expect_error("^Invalid serialize stream", unpack, s:sub(1, i))
    end
end
assert(deq(unpack(s), v))
-- and through the pointer interface
local p, sz = pack(v)
for i = 1, 200 do
    expect_error("^Invalid serialize stream", unpack, p, i)
end
cfree(p)

-- xorshift64 PRNG
local state = 0x9E3779B97F4A7C15
local function rnd()
    state = state ~ (state << 13)
    state = state ~ (state >> 7)
    state = state ~ (state << 17)
    return state
end
local function check_err(ok, err)
    if not ok then
        assert(type(err) == "string" and (err:find("^Invalid serialize stream") or err == "stack overflow"), err)
    end
end
-- random bytes
for _ = 1, 20000 do
    local n = rnd() % 48 + 1
    local b = {}
    for j = 1, n do b[j] = string.char(rnd() & 0xff) end
    check_err(pcall(unpack, table.concat(b)))
end
-- random bytes biased to valid tags
local tags = {0, 1, 9, 2, 10, 18, 34, 50, 66, 3, 4, 12, 252, 21, 37, 6, 14, 254, 22}
for _ = 1, 20000 do
    local n = rnd() % 64 + 1
    local b = {}
    for j = 1, n do
        if rnd() % 3 == 0 then b[j] = string.char(rnd() & 0xff)
        else b[j] = string.char(tags[rnd() % #tags + 1]) end
    end
    check_err(pcall(unpack, table.concat(b)))
end
-- mutations of a valid stream
local small = packstring(1, "abc", {1, 2, {a = "b", [3.5] = {}}, x = -7}, 2.5, nullptr, string.rep("z", 40))
for _ = 1, 20000 do
    local b = {small:byte(1, -1)}
    for _ = 1, rnd() % 4 + 1 do
        b[rnd() % #b + 1] = rnd() & 0xff
    end
    local cut = rnd() % (#b + 1)
    check_err(pcall(unpack, string.char(table.unpack(b, 1, cut))))
end
"##,
        );
    }

    /// pack+unpack ns per message of a small payload (prints only).
    fn bench_small_payload() {
        let st = new_state();
        for (what, code) in [
            (
                "pack+unpack (\"hello\", 42, {a=1})",
                "local t = {a = 1} for i = 1, N do local p, sz = pack('hello', 42, t) unpack(p, sz) cfree(p) end",
            ),
            (
                "packstring+unpack (\"hello\", 42, {a=1})",
                "local t = {a = 1} for i = 1, N do unpack(packstring('hello', 42, t)) end",
            ),
            (
                "baseline: empty loop with table.pack",
                "local t = {a = 1} for i = 1, N do table.pack('hello', 42, t) end",
            ),
        ] {
            let n = 2_000_000u32;
            let code = format!("local N = {n} {code}");
            let t0 = std::time::Instant::now();
            run(&st, &code).unwrap();
            let ns = t0.elapsed().as_nanos() as f64 / f64::from(n);
            println!("{what}: {ns:.1} ns/msg");
        }
    }

    #[test]
    #[ignore]
    fn bench() {
        bench_small_payload();
    }
}
