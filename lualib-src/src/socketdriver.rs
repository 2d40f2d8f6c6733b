//! `skynet.socketdriver`: the read buffers of `skynet.socket`, message
//! unpacking and small helpers. This file holds the functions that need neither the service
//! context nor the socket server; [`net`] has the socket-server requests (connect, listen,
//! send, UDP, info, ...), which [`luaopen_skynet_socketdriver`] adds with the context as their
//! upvalue.
//!
//! # Read buffers and the node pool
//! A buffer (`buffer()`) is a queue of received blocks (`malloc`'d DATA buffers whose ownership
//! `push` takes). Queue nodes come from a pool: a Lua table whose `[1]` is a light userdata, the
//! head of the free-node list, and whose `[2]`, `[3]`, ... are userdata chunks of 16, 32, 64, ...,
//! 4096 nodes (then 4096 each); "Too many socket pool (%d)" is logged when a chunk is added
//! beyond the 32nd. `pop`/`readline`/`readall`/`clear` give nodes back to the pool and free their
//! blocks. A chunk's `__gc` frees the blocks still referenced by its nodes.
//!
//! # Differences from upstream (none on well-formed use)
//! - A buffer remembers the pool its nodes came from (in a user value, which also keeps that
//!   pool alive) and refuses another pool while it holds data ("socket buffer used with another
//!   pool"); a buffer's `__gc` gives its nodes back and frees their blocks (upstream leaks them
//!   until the pool dies).
//! - `pool[1]` is checked before a node is taken from it: it must be a free node inside one of
//!   the pool's chunks ("Invalid socket pool" otherwise), so a damaged pool table cannot make
//!   `push` write to arbitrary memory. Removing chunks from the pool table while buffers hold
//!   nodes from them is still unsupported (as upstream, the chunk memory would go away).
//! - Invalid arguments raise errors instead of crashing: a foreign userdata as the buffer, a
//!   full userdata as `push`'s block or to `drop`, a negative `push` size. A `push` of 0 bytes
//!   frees the block without queueing a node. `pop` with a negative count returns nil like 0.
//! - Sizes are 64-bit (upstream: `int`).
//! - Buffers and pool chunks are recognised by a per-process tag in their memory (a buffer's
//!   last word, a chunk's first), not by their metatable: a copy of one is refused as foreign.
//!   A buffer passed whole to `send` sends that tag too.
//! - `unpack` rejects a NULL/absent message and an inline message shorter than its header, and
//!   returns no UDP address when a UDP message has no buffer.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod net;

use crate::cmem;
use crate::lua::lua_function;
use crate::lua::{ffi, raise_where, set_funcs, CFunction};
use crate::socket_message::{self as sm, Payload};
use ffi::lua_State;
use std::ffi::{c_char, c_int, CStr};
use std::mem::{size_of, ManuallyDrop, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

/// log2 of the largest chunk (4096 nodes).
const LARGE_PAGE_NODE: i64 = 12;
/// Chunks beyond this many are reported.
const POOL_SIZE_WARNING: i64 = 32;

const BUFFER_MT: &CStr = c"skynet.socketdriver.buffer";
const POOL_MT: &CStr = c"buffer_pool";

/// One queued block. Free nodes have `msg` NULL; nodes in a buffer never do (until a chunk's
/// finalizer has run).
#[repr(C)]
struct Node {
    msg: *mut u8,
    sz: usize,
    next: *mut Node,
}

/// A read buffer: `size` = bytes of all nodes minus `offset` (already read from `head`).
#[repr(C)]
struct SocketBuffer {
    size: usize,
    offset: usize,
    head: *mut Node,
    tail: *mut Node,
    /// Identity (`lua_topointer`) of the pool in the user value, NULL if none: that pool
    /// cannot be collected (and its address reused) while the user value holds it.
    pool: *const std::ffi::c_void,
    /// [`tag_for`] its own address: see [`tagged`]. Last, so that the bytes of a fresh
    /// buffer (sent whole by `send(id, buffer)`) begin with zeros as upstream's.
    tag: usize,
}

fn log(text: String) {
    if let Some(n) = skynet_core::try_node() {
        // upstream logs with a NULL context: source 0
        n.log(0, text);
    }
}

/// The secret every buffer and chunk carries in its first word, mixed with its own address:
/// how a function tells its own userdata from any other (a foreign userdata of the same size
/// would have to hold this process's random secret at the right place). A metatable check
/// costs several API calls per argument; this is a load and a compare.
fn secret() -> usize {
    static SECRET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SECRET.get_or_init(|| {
        let mut b = [0u8; size_of::<usize>()];
        if getrandom::fill(&mut b).is_err() {
            // No OS random: the address of a static still differs per process (ASLR).
            return &SECRET as *const _ as usize ^ 0x5a5a_a5a5;
        }
        usize::from_ne_bytes(b)
    })
}

/// The tag of the userdata block at `p`.
fn tag_for(p: *const u8) -> usize {
    secret() ^ p as usize
}

/// The header of a pool chunk; its nodes follow.
#[repr(C)]
struct ChunkHead {
    tag: usize,
    _reserved: usize,
}

const CHUNK_HEAD: usize = size_of::<ChunkHead>();

/// The full userdata at `idx` if it is `size` bytes long (any size when `size` is `None`)
/// and tagged as ours, else NULL.
///
/// # Safety
/// `l` is the running state.
unsafe fn tagged(l: *mut lua_State, idx: c_int, size: Option<usize>) -> *mut u8 {
    // SAFETY: valid state; lua_touserdata/lua_rawlen do not raise; a full userdata of at
    // least a word has a readable first word (a light userdata has raw length 0).
    unsafe {
        let p = ffi::lua_touserdata(l, idx).cast::<u8>();
        if p.is_null() {
            return p;
        }
        let len = ffi::lua_rawlen(l, idx);
        // A buffer's tag is its last word, a chunk's its first.
        let at = match size {
            Some(n) if len == n => n - size_of::<usize>(),
            None if len >= CHUNK_HEAD => 0,
            _ => return ptr::null_mut(),
        };
        if p.add(at).cast::<usize>().read_unaligned() == tag_for(p) {
            p
        } else {
            ptr::null_mut()
        }
    }
}

/// Pushes the buffer metatable (made on first use).
///
/// # Safety
/// `l` is a valid state.
unsafe fn push_buffer_metatable(l: *mut lua_State) {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, BUFFER_MT.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, buffer_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
    }
}

/// Pushes the pool chunk metatable (made on first use).
///
/// # Safety
/// `l` is a valid state.
unsafe fn push_pool_metatable(l: *mut lua_State) {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, POOL_MT.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, pool_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
    }
}

/// The buffer at `idx`, or NULL.
///
/// # Safety
/// `l` is the running state.
unsafe fn buffer_arg(l: *mut lua_State, idx: c_int) -> *mut SocketBuffer {
    // SAFETY: valid state; tagged does not raise.
    unsafe { tagged(l, idx, Some(size_of::<SocketBuffer>())).cast() }
}

/// The nodes of the pool chunk at `idx` (its first node and their number), or None.
///
/// # Safety
/// `l` is the running state.
unsafe fn chunk_arg(l: *mut lua_State, idx: c_int) -> Option<(*mut Node, usize)> {
    // SAFETY: valid state; tagged does not raise; a tagged chunk holds its header and then
    // whole nodes (new_chunk made it).
    unsafe {
        let p = tagged(l, idx, None);
        if p.is_null() {
            return None;
        }
        let n = (ffi::lua_rawlen(l, idx) - CHUNK_HEAD) / size_of::<Node>();
        Some((p.add(CHUNK_HEAD).cast::<Node>(), n))
    }
}

/// Raises `msg` (a static text) like `luaL_error`, with the caller's position.
///
/// # Safety
/// As [`raise_where`]: nothing with a destructor alive in the caller.
unsafe fn fail(l: *mut lua_State, msg: &'static CStr) -> ! {
    // SAFETY: caller contract; "%s" takes the C string.
    unsafe {
        ffi::luaL_error(l, c"%s".as_ptr(), msg.as_ptr());
    }
    unreachable!("luaL_error returned")
}

#[lua_function]
unsafe extern "C-unwind" fn lbuffer(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; the userdata is initialised before anything else can see it.
    unsafe {
        let sb = ffi::lua_newuserdatauv(l, size_of::<SocketBuffer>(), 1).cast::<SocketBuffer>();
        sb.write(SocketBuffer {
            size: 0,
            offset: 0,
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            pool: ptr::null(),
            tag: tag_for(sb.cast()),
        });
        push_buffer_metatable(l);
        ffi::lua_setmetatable(l, -2);
    }
    1
}

/// Frees the blocks of the nodes in `[base, base + n)` (a chunk's `__gc`).
#[lua_function]
unsafe extern "C-unwind" fn pool_gc(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of a chunk: a userdata holding whole nodes.
    unsafe {
        let Some((base, n)) = chunk_arg(l, 1) else {
            return 0;
        };
        for i in 0..n {
            let node = base.add(i);
            cmem::free((*node).msg);
            (*node).msg = ptr::null_mut();
        }
    }
    0
}

/// Gives every node back to the buffer's pool and frees the blocks (a buffer's `__gc`).
#[lua_function]
unsafe extern "C-unwind" fn buffer_gc(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc of a buffer; its user value keeps the pool and so its chunks alive.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() || (*sb).head.is_null() {
            return 0;
        }
        if ffi::lua_getiuservalue(l, 1, 1) == ffi::LUA_TTABLE {
            let pool = ffi::lua_gettop(l);
            release_all(l, pool, sb);
        } else {
            // No pool to return to: just free the blocks.
            let mut node = (*sb).head;
            while !node.is_null() {
                cmem::free((*node).msg);
                (*node).msg = ptr::null_mut();
                node = (*node).next;
            }
            *sb = SocketBuffer {
                size: 0,
                offset: 0,
                head: ptr::null_mut(),
                tail: ptr::null_mut(),
                pool: (*sb).pool,
                tag: (*sb).tag,
            };
        }
    }
    0
}

/// Checks (and for an empty buffer, records) that the pool at `pool` is the buffer's pool.
///
/// # Safety
/// `l` is the running state; `buf` and `pool` are absolute indices of the buffer and a table.
unsafe fn bind_pool(l: *mut lua_State, buf: c_int, pool: c_int, sb: *mut SocketBuffer) {
    // SAFETY: valid indices; setiuservalue on our userdata with one user value.
    unsafe {
        let p = ffi::lua_topointer(l, pool);
        if p == (*sb).pool {
            return; // the pool in the user value
        }
        if !(*sb).head.is_null() {
            fail(l, c"socket buffer used with another pool");
        }
        ffi::lua_pushvalue(l, pool);
        ffi::lua_setiuservalue(l, buf, 1);
        (*sb).pool = p;
    }
}

/// Whether `node` is a free node inside one of the chunks of `pool`.
///
/// # Safety
/// `l` is the running state; `pool` is the absolute index of a table.
unsafe fn is_free_node(l: *mut lua_State, pool: c_int, node: *mut Node) -> bool {
    // SAFETY: valid state; each chunk is a userdata of whole nodes; `node` is only dereferenced
    // once it is known to lie on a node boundary inside one.
    unsafe {
        let n = ffi::lua_rawlen(l, pool) as ffi::lua_Integer;
        for i in (2..=n).rev() {
            ffi::lua_rawgeti(l, pool, i);
            let chunk = chunk_arg(l, -1);
            ffi::lua_pop(l, 1);
            let Some((base, n)) = chunk else { continue };
            let off = (node as usize).wrapping_sub(base as usize);
            if off < n * size_of::<Node>() && off % size_of::<Node>() == 0 {
                return (*node).msg.is_null();
            }
        }
        false
    }
}

/// The log line for adding a chunk when the pool table already has `tsz` entries.
fn pool_warning(tsz: i64) -> Option<String> {
    (tsz > POOL_SIZE_WARNING).then(|| format!("Too many socket pool ({tsz})"))
}

/// Adds a chunk of free nodes to `pool`; returns its first node.
///
/// # Safety
/// `l` is the running state; `pool` is the absolute index of a table.
unsafe fn new_chunk(l: *mut lua_State, pool: c_int) -> *mut Node {
    // SAFETY: valid state; the chunk is fully initialised before it is stored.
    unsafe {
        let tsz = (ffi::lua_rawlen(l, pool) as i64).max(1);
        let n = 8usize << tsz.min(LARGE_PAGE_NODE - 3);
        let p = ffi::lua_newuserdatauv(l, CHUNK_HEAD + n * size_of::<Node>(), 0).cast::<u8>();
        p.cast::<ChunkHead>().write(ChunkHead {
            tag: tag_for(p),
            _reserved: 0,
        });
        let base = p.add(CHUNK_HEAD).cast::<Node>();
        for i in 0..n {
            base.add(i).write(Node {
                msg: ptr::null_mut(),
                sz: 0,
                next: if i + 1 < n {
                    base.add(i + 1)
                } else {
                    ptr::null_mut()
                },
            });
        }
        push_pool_metatable(l);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawseti(l, pool, tsz + 1);
        if let Some(text) = pool_warning(tsz) {
            log(text);
        }
        base
    }
}

/// Returns the head node of `sb` to the pool and frees its block.
///
/// # Safety
/// `l` is the running state; `pool` is the absolute index of the buffer's pool table; the
/// buffer is not empty.
unsafe fn release_head(l: *mut lua_State, pool: c_int, sb: *mut SocketBuffer) {
    // SAFETY: the head node lives in a chunk of the pool (kept alive by it).
    unsafe {
        let node = (*sb).head;
        (*sb).head = (*node).next;
        if (*sb).head.is_null() {
            (*sb).tail = ptr::null_mut();
        }
        (*sb).offset = 0;
        cmem::free((*node).msg);
        (*node).msg = ptr::null_mut();
        (*node).sz = 0;
        // A damaged pool[1] is caught when the node is taken again (is_free_node).
        ffi::lua_rawgeti(l, pool, 1);
        (*node).next = if ffi::lua_type(l, -1) == ffi::LUA_TLIGHTUSERDATA {
            ffi::lua_touserdata(l, -1).cast()
        } else {
            ptr::null_mut()
        };
        ffi::lua_pop(l, 1);
        ffi::lua_pushlightuserdata(l, node.cast());
        ffi::lua_rawseti(l, pool, 1);
    }
}

/// Returns every node to the pool.
///
/// # Safety
/// As [`release_head`] (the buffer may be empty).
unsafe fn release_all(l: *mut lua_State, pool: c_int, sb: *mut SocketBuffer) {
    // SAFETY: caller contract.
    unsafe {
        while !(*sb).head.is_null() {
            release_head(l, pool, sb);
        }
        (*sb).size = 0;
    }
}

/// The readable bytes of `node` from `from`, or an error if its block was already released.
///
/// # Safety
/// `node` is a live node of a buffer and `from <= sz`.
unsafe fn node_bytes<'a>(node: *const Node, from: usize) -> Result<&'a [u8], ()> {
    // SAFETY: a node's block holds `sz` bytes while `msg` is not NULL.
    unsafe {
        let msg = (*node).msg;
        if msg.is_null() {
            return Err(());
        }
        Ok(std::slice::from_raw_parts(msg.add(from), (*node).sz - from))
    }
}

/// Pushes the first `n - skip` of the next `n` buffered bytes as a string and consumes `n`
/// bytes (`n <= size`; `skip <= n`). The buffer's size is not updated.
///
/// # Safety
/// `l` is the running state; `pool` is the absolute index of the buffer's pool; no Rust value
/// with a destructor is alive in the caller.
unsafe fn pop_lstring(
    l: *mut lua_State,
    pool: c_int,
    sb: *mut SocketBuffer,
    n: usize,
    skip: usize,
) {
    // SAFETY: the nodes are live (size invariant: `n` bytes are queued); a released block raises
    // before anything is consumed; luaL_Buffer stays in place between init and push.
    unsafe {
        let out = n - skip;
        let head = (*sb).head;
        let Ok(first) = node_bytes(head, (*sb).offset) else {
            fail(l, c"socket buffer released")
        };
        if n <= first.len() {
            ffi::lua_pushlstring(l, first.as_ptr().cast::<c_char>(), out);
            if n < first.len() {
                (*sb).offset += n;
            } else {
                release_head(l, pool, sb);
            }
            return;
        }
        let mut b = MaybeUninit::<ffi::luaL_Buffer>::uninit();
        let dst = ffi::luaL_buffinitsize(l, b.as_mut_ptr(), out).cast::<u8>();
        let (mut node, mut from, mut copied) = (head, (*sb).offset, 0usize);
        while copied < out {
            if node.is_null() {
                fail(l, c"socket buffer corrupted");
            }
            let Ok(bytes) = node_bytes(node, from) else {
                fail(l, c"socket buffer released")
            };
            let k = bytes.len().min(out - copied);
            ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(copied), k);
            copied += k;
            node = (*node).next;
            from = 0;
        }
        ffi::luaL_pushresultsize(b.as_mut_ptr(), out);
        let mut left = n;
        while left > 0 && !(*sb).head.is_null() {
            let avail = (*(*sb).head).sz - (*sb).offset;
            if avail > left {
                (*sb).offset += left;
                break;
            }
            left -= avail;
            release_head(l, pool, sb);
        }
    }
}

/// `push(buffer, pool, ptr, sz)` → bytes buffered. Takes ownership of `ptr`.
#[lua_function]
unsafe extern "C-unwind" fn lpush(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive at every raising call.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() {
            fail(l, c"need buffer object at param 1");
        }
        let msg = ffi::lua_touserdata(l, 3).cast::<u8>();
        if msg.is_null() || ffi::lua_type(l, 3) != ffi::LUA_TLIGHTUSERDATA {
            fail(l, c"need message block at param 3");
        }
        ffi::luaL_checktype(l, 2, ffi::LUA_TTABLE);
        let sz = ffi::luaL_checkinteger(l, 4);
        let Ok(sz) = usize::try_from(sz) else {
            raise_where(l, format!("socketdriver.push: invalid size {sz}"));
        };
        if sz == 0 {
            cmem::free(msg);
            ffi::lua_pushinteger(l, (*sb).size as ffi::lua_Integer);
            return 1;
        }
        ffi::lua_settop(l, 4);
        bind_pool(l, 1, 2, sb);
        ffi::lua_rawgeti(l, 2, 1);
        let is_light = ffi::lua_type(l, -1) == ffi::LUA_TLIGHTUSERDATA;
        let mut node = ffi::lua_touserdata(l, -1).cast::<Node>();
        ffi::lua_pop(l, 1);
        if node.is_null() {
            node = new_chunk(l, 2);
        } else if !is_light || !is_free_node(l, 2, node) {
            fail(l, c"Invalid socket pool");
        }
        ffi::lua_pushlightuserdata(l, (*node).next.cast());
        ffi::lua_rawseti(l, 2, 1);
        *node = Node {
            msg,
            sz,
            next: ptr::null_mut(),
        };
        if (*sb).head.is_null() {
            (*sb).head = node;
        } else {
            (*(*sb).tail).next = node;
        }
        (*sb).tail = node;
        (*sb).size += sz;
        ffi::lua_pushinteger(l, (*sb).size as ffi::lua_Integer);
    }
    1
}

/// `pop(buffer, pool, n)` → string or nil, bytes left.
#[lua_function]
unsafe extern "C-unwind" fn lpop(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive at every raising call.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() {
            fail(l, c"Need buffer object at param 1");
        }
        ffi::luaL_checktype(l, 2, ffi::LUA_TTABLE);
        let n = ffi::luaL_checkinteger(l, 3);
        match usize::try_from(n) {
            Ok(n) if n > 0 && n <= (*sb).size => {
                bind_pool(l, 1, 2, sb);
                pop_lstring(l, 2, sb, n, 0);
                (*sb).size -= n;
            }
            _ => ffi::lua_pushnil(l),
        }
        ffi::lua_pushinteger(l, (*sb).size as ffi::lua_Integer);
    }
    2
}

/// `clear(buffer, pool)`: frees everything buffered (nil buffer: nothing).
#[lua_function]
unsafe extern "C-unwind" fn lclear(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive at every raising call.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() {
            if ffi::lua_type(l, 1) == ffi::LUA_TNIL {
                return 0;
            }
            fail(l, c"Need buffer object at param 1");
        }
        ffi::luaL_checktype(l, 2, ffi::LUA_TTABLE);
        if !(*sb).head.is_null() {
            bind_pool(l, 1, 2, sb);
            release_all(l, 2, sb);
        }
        (*sb).size = 0;
    }
    0
}

/// `readall(buffer, pool)` → every buffered byte as a string.
#[lua_function]
unsafe extern "C-unwind" fn lreadall(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive at every raising call.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() {
            fail(l, c"Need buffer object at param 1");
        }
        ffi::luaL_checktype(l, 2, ffi::LUA_TTABLE);
        let n = (*sb).size;
        if n == 0 {
            ffi::lua_pushstring(l, c"".as_ptr());
            return 1;
        }
        bind_pool(l, 1, 2, sb);
        pop_lstring(l, 2, sb, n, 0);
        // Zero-length nodes cannot exist, so the buffer is empty now.
        (*sb).size = 0;
    }
    1
}

/// Whether `sep` is at `from` in `node` (possibly continuing into the next nodes).
///
/// # Safety
/// `node` is a live buffer node, `from < sz`.
unsafe fn sep_at(mut node: *const Node, mut from: usize, mut sep: &[u8]) -> Result<bool, ()> {
    loop {
        // SAFETY: caller contract; `next` links live nodes.
        let bytes = unsafe { node_bytes(node, from)? };
        if bytes.len() >= sep.len() {
            return Ok(&bytes[..sep.len()] == sep);
        }
        if bytes != &sep[..bytes.len()] {
            return Ok(false);
        }
        sep = &sep[bytes.len()..];
        // SAFETY: live node.
        node = unsafe { (*node).next };
        if node.is_null() {
            return Ok(false);
        }
        from = 0;
    }
}

/// Position (in bytes from the read offset) of the first `sep` in the buffer.
///
/// # Safety
/// `sb` is a live buffer.
unsafe fn find_sep(sb: *const SocketBuffer, sep: &[u8]) -> Result<Option<usize>, ()> {
    // SAFETY: live buffer and nodes.
    unsafe {
        if sep.len() > (*sb).size {
            return Ok(None);
        }
        let Some(&first) = sep.first() else {
            return Ok(Some(0));
        };
        let last = (*sb).size - sep.len();
        let (mut node, mut from, mut pos) = ((*sb).head.cast_const(), (*sb).offset, 0usize);
        while !node.is_null() && pos <= last {
            let bytes = node_bytes(node, from)?;
            for (j, &b) in bytes.iter().enumerate() {
                if pos + j > last {
                    return Ok(None);
                }
                if b == first && sep_at(node, from + j, sep)? {
                    return Ok(Some(pos + j));
                }
            }
            pos += bytes.len();
            node = (*node).next;
            from = 0;
        }
        Ok(None)
    }
}

/// `readline(buffer, pool | nil, sep)` → the line without `sep` (pool given), true (check only),
/// or nothing.
#[lua_function]
unsafe extern "C-unwind" fn lreadline(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive at every raising call.
    unsafe {
        let sb = buffer_arg(l, 1);
        if sb.is_null() {
            fail(l, c"Need buffer object at param 1");
        }
        let check = ffi::lua_istable(l, 2) == 0;
        let mut seplen = 0;
        let sep = ffi::luaL_checklstring(l, 3, &mut seplen).cast::<u8>();
        let sep = std::slice::from_raw_parts(sep, seplen);
        if (*sb).head.is_null() {
            return 0;
        }
        let Ok(found) = find_sep(sb, sep) else {
            fail(l, c"socket buffer released")
        };
        let Some(i) = found else { return 0 };
        if check {
            ffi::lua_pushboolean(l, 1);
        } else {
            bind_pool(l, 1, 2, sb);
            let n = i + seplen;
            pop_lstring(l, 2, sb, n, seplen);
            (*sb).size -= n;
        }
    }
    1
}

/// `drop(ptr, sz)`: frees a message block.
#[lua_function]
unsafe extern "C-unwind" fn ldrop(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; a light userdata given to drop is a malloc block Lua gives up.
    unsafe {
        ffi::luaL_checkinteger(l, 2);
        match ffi::lua_type(l, 1) {
            ffi::LUA_TLIGHTUSERDATA => cmem::free(ffi::lua_touserdata(l, 1).cast()),
            ffi::LUA_TUSERDATA => fail(l, c"socketdriver.drop: light userdata expected"),
            _ => {}
        }
    }
    0
}

/// `str2p(str)` → malloc'd copy (light userdata), size.
#[lua_function]
unsafe extern "C-unwind" fn lstr2p(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; the string stays on the stack while it is copied.
    unsafe {
        let mut len = 0;
        let s = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        let p = cmem::malloc_copy(std::slice::from_raw_parts(s, len));
        ffi::lua_pushlightuserdata(l, p.cast());
        ffi::lua_pushinteger(l, len as ffi::lua_Integer);
    }
    2
}

/// `header(str)` → the 1..4 bytes as a big-endian integer.
#[lua_function]
unsafe extern "C-unwind" fn lheader(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let mut len = 0;
        let s = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        let bytes = std::slice::from_raw_parts(s, len);
        if !(1..=4).contains(&len) {
            // upstream formats the string with %s: up to its first NUL
            let shown = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
            let msg = format!("Invalid read {}", String::from_utf8_lossy(shown));
            raise_where(l, msg);
        }
        let v = bytes.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
        ffi::lua_pushinteger(l, v.into());
    }
    1
}

/// `unpack(msg, sz)` → type, id, ud, string (inline) or light userdata (heap)
/// [, UDP address string].
#[lua_function]
unsafe extern "C-unwind" fn lunpack(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; the message memory belongs to the current dispatch.
    unsafe {
        let msg = ffi::lua_touserdata(l, 1);
        let avail = (ffi::lua_type(l, 1) == ffi::LUA_TUSERDATA).then(|| ffi::lua_rawlen(l, 1));
        let sz = ffi::luaL_checkinteger(l, 2);
        let ev = match sm::decode(msg, sz, avail) {
            Ok(ev) => ev,
            Err(e) => raise_where(l, e.describe("socketdriver.unpack")),
        };
        ffi::lua_pushinteger(l, ev.ty.into());
        ffi::lua_pushinteger(l, ev.id.into());
        ffi::lua_pushinteger(l, ev.ud.into());
        match ev.payload {
            Payload::Inline(t) => {
                ffi::lua_pushlstring(l, t.as_ptr().cast(), t.len());
            }
            Payload::Heap(p) => ffi::lua_pushlightuserdata(l, p.cast()),
        }
        if let Some(addr) = sm::udp_address(&ev) {
            ffi::lua_pushlstring(l, addr.as_ptr().cast(), addr.len());
            return 5;
        }
    }
    4
}

/// `udp_address(addr)` → ip string, port: decodes a 7/19-byte UDP address record (§7.8).
/// It needs no context, but upstream registers it with the context-bound functions.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn ludp_address(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let addr = unsafe {
        let mut len = 0;
        let s = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        std::slice::from_raw_parts(s, len)
    };
    let Some((ip, port)) = udp_address_text(addr) else {
        // SAFETY: nothing with a destructor is alive.
        unsafe { fail(l, c"Invalid udp address") }
    };
    let ip = ManuallyDrop::new(ip);
    // SAFETY: valid state; if the push raises, the text only leaks.
    unsafe {
        ffi::lua_pushlstring(l, ip.as_ptr().cast::<c_char>(), ip.len());
        ffi::lua_pushinteger(l, port.into());
    }
    drop(ManuallyDrop::into_inner(ip));
    2
}

/// The IP text (as glibc's `inet_ntop` writes it) and port of a UDP address record: 7 bytes
/// for IPv4, 19 for IPv6 (the protocol byte is not checked, as upstream).
pub fn udp_address_text(addr: &[u8]) -> Option<(String, u16)> {
    let port = u16::from_be_bytes([*addr.get(1)?, *addr.get(2)?]);
    let ip = match addr.len() {
        7 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&addr[3..]).ok()?)),
        19 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&addr[3..]).ok()?)),
        _ => return None,
    };
    Some((ip_text(ip), port))
}

/// An IP address as glibc's `inet_ntop` writes it.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            // glibc prints IPv4-compatible addresses (::a.b.c.d, but not :: or ::1) with a
            // dotted tail; Rust prints them in hex. IPv4-mapped ones agree already.
            if seg[..6].iter().all(|&s| s == 0) && !(seg[6] == 0 && seg[7] <= 1) {
                let o = v6.octets();
                format!("::{}", Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else {
                v6.to_string()
            }
        }
    }
}

/// Why an address could not be split into host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// "Invalid address %s."
    Address,
    /// "Invalid port in address %s." (master's strict port parsing)
    Port,
}

impl AddressError {
    /// Upstream's error text for `addr`.
    pub fn message(&self, addr: &[u8]) -> String {
        let addr = String::from_utf8_lossy(addr.split(|&b| b == 0).next().unwrap_or(&[]));
        match self {
            AddressError::Address => format!("Invalid address {addr}."),
            AddressError::Port => format!("Invalid port in address {addr}."),
        }
    }
}

/// Splits `addr` into host and port as master's `address_port` does, for the context-bound
/// functions (connect, listen, udp, udp_connect, udp_dial, udp_listen). With `port` given
/// (the Lua argument was not nil) the whole string is the host. Otherwise `"[v6]:port"` or
/// `"host:port"` (split at the first `:`), the port parsed like `strtoul` base 10 with the whole
/// rest consumed and at most 65535.
pub fn address_port(addr: &[u8], port: Option<i64>) -> Result<(&[u8], i64), AddressError> {
    if let Some(p) = port {
        return Ok((addr, p));
    }
    let (host, rest) = if let Some(open) = addr.iter().position(|&b| b == b'[') {
        let close = addr
            .iter()
            .position(|&b| b == b']')
            .ok_or(AddressError::Address)?;
        // upstream copies the bytes between '[' and the first ']' (empty if ']' comes first)
        let host = addr.get(open + 1..close).unwrap_or(&[]);
        let after = &addr[close + 1..];
        let colon = after
            .iter()
            .position(|&b| b == b':')
            .ok_or(AddressError::Address)?;
        (host, &after[colon + 1..])
    } else {
        let colon = addr
            .iter()
            .position(|&b| b == b':')
            .ok_or(AddressError::Address)?;
        (&addr[..colon], &addr[colon + 1..])
    };
    Ok((host, parse_port(rest).ok_or(AddressError::Port)?))
}

/// `strtoul(s, &end, 10)` that must consume all of `s` and give at most 65535.
fn parse_port(s: &[u8]) -> Option<i64> {
    let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
    let t = s.trim_ascii_start();
    let (neg, digits) = match t.first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // strtoul negates in unsigned arithmetic: "-0" is 0, any other negative is huge.
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg && v != 0 {
        return None;
    }
    (v <= 65535).then_some(v as i64)
}

/// The functions that need neither the context nor the socket server.
const BUFFER_FUNCTIONS: [(&CStr, CFunction); 10] = [
    (c"buffer", lbuffer),
    (c"push", lpush),
    (c"pop", lpop),
    (c"drop", ldrop),
    (c"readall", lreadall),
    (c"clear", lclear),
    (c"readline", lreadline),
    (c"str2p", lstr2p),
    (c"header", lheader),
    (c"unpack", lunpack),
];

/// The context-bound function defined here (each gets the context as upvalue 1; the others
/// are [`net::FUNCTIONS`]).
const CONTEXT_FUNCTIONS: [(&CStr, CFunction); 1] = [(c"udp_address", ludp_address)];

/// Registers the context-free functions into the table on top of the stack.
///
/// # Safety
/// `l` is a valid state with a table on top.
pub unsafe fn register_buffer_functions(l: *mut lua_State) {
    // SAFETY: caller contract.
    unsafe {
        set_funcs(l, &BUFFER_FUNCTIONS, 0);
    }
}

/// `luaopen_skynet_socketdriver`: the module table, or "Init skynet context first" when the
/// registry has no `skynet_context`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_socketdriver(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        ffi::lua_createtable(l, 0, 28);
        register_buffer_functions(l);
        // `info` reads the socket list but, as upstream, is registered without the context.
        set_funcs(l, &[(c"info", net::linfo)], 0);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        if ffi::lua_touserdata(l, -1).is_null() {
            return ffi::luaL_error(l, c"Init skynet context first".as_ptr());
        }
        set_funcs(l, &net::FUNCTIONS, 1);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        set_funcs(l, &CONTEXT_FUNCTIONS, 1);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlua;

    /// `chunklen(chunk)` → number of nodes in a pool chunk.
    #[lua_function]
    unsafe extern "C-unwind" fn chunklen(l: *mut lua_State) -> c_int {
        // SAFETY: test helper.
        unsafe {
            ffi::luaL_checkudata(l, 1, POOL_MT.as_ptr());
            let n = chunk_arg(l, 1).expect("a chunk").1;
            ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        }
        1
    }

    /// `nodeptr(chunk, i)` → light userdata of node i (0-based) of a chunk.
    #[lua_function]
    unsafe extern "C-unwind" fn nodeptr(l: *mut lua_State) -> c_int {
        // SAFETY: test helper; only the address is computed.
        unsafe {
            ffi::luaL_checkudata(l, 1, POOL_MT.as_ptr());
            let base = chunk_arg(l, 1).expect("a chunk").0;
            let i = ffi::luaL_checkinteger(l, 2) as usize;
            ffi::lua_pushlightuserdata(l, base.wrapping_add(i).cast());
        }
        1
    }

    /// `copyud(ud)` → a new userdata (no metatable) with the same bytes: a forgery of a
    /// buffer or chunk, tag included.
    #[lua_function]
    unsafe extern "C-unwind" fn copyud(l: *mut lua_State) -> c_int {
        // SAFETY: test helper; copies the whole block of a full userdata.
        unsafe {
            ffi::luaL_checktype(l, 1, ffi::LUA_TUSERDATA);
            let n = ffi::lua_rawlen(l, 1);
            let src = ffi::lua_touserdata(l, 1).cast::<u8>();
            let dst = ffi::lua_newuserdatauv(l, n, 0).cast::<u8>();
            ptr::copy_nonoverlapping(src, dst, n);
        }
        1
    }

    /// Opens the context-free part of the module.
    #[lua_function]
    unsafe extern "C-unwind" fn open_free(l: *mut lua_State) -> c_int {
        // SAFETY: valid state.
        unsafe {
            ffi::lua_createtable(l, 0, 11);
            register_buffer_functions(l);
            ffi::lua_pushcfunction(l, ludp_address);
            ffi::lua_setfield(l, -2, c"udp_address".as_ptr());
        }
        1
    }

    const PRELUDE: &str = r##"
DATA, CONNECT, CLOSE, ACCEPT, ERROR, UDP, WARNING = 1, 2, 3, 4, 5, 6, 7
sd = socketdriver
function push(b, pool, s) local p, sz = sd.str2p(s) return sd.push(b, pool, p, sz) end
function expect_err(pat, f, ...)
    local ok, err = pcall(f, ...)
    assert(not ok, "expected an error matching " .. pat)
    assert(tostring(err):find(pat, 1, true), err)
end
"##;

    fn check(code: &str) {
        testlua::check(
            &[(c"socketdriver", open_free)],
            &[
                (c"chunklen", chunklen),
                (c"nodeptr", nodeptr),
                (c"copyud", copyud),
            ],
            &format!("{PRELUDE}\n{code}"),
        );
    }

    #[test]
    fn push_pop_readall() {
        check(
            r##"
local b, pool = sd.buffer(), {}
assert(push(b, pool, "hello") == 5)
assert(push(b, pool, "world") == 10)
local s, n = sd.pop(b, pool, 3)
assert(s == "hel" and n == 7)
s, n = sd.pop(b, pool, 4)         -- spans two blocks
assert(s == "lowo" and n == 3)
s, n = sd.pop(b, pool, 10)
assert(s == nil and n == 3)
assert(sd.pop(b, pool, 0) == nil)
assert(sd.pop(b, pool, -1) == nil)
assert(sd.readall(b, pool) == "rld")
assert(sd.readall(b, pool) == "")
assert(select(2, sd.pop(b, pool, 1)) == 0)
-- a pop that ends exactly at a block boundary, then one across three blocks
push(b, pool, "ab") push(b, pool, "c") push(b, pool, "def") push(b, pool, "g")
assert(sd.pop(b, pool, 2) == "ab")
s, n = sd.pop(b, pool, 5)
assert(s == "cdefg" and n == 0)
-- a zero-length block is freed, not queued
local p = sd.str2p("")
assert(sd.push(b, pool, p, 0) == 0)
assert(sd.readall(b, pool) == "")
"##,
        );
    }

    #[test]
    fn pool_layout_reuse_and_growth() {
        assert_eq!(pool_warning(32), None);
        assert_eq!(
            pool_warning(33).as_deref(),
            Some("Too many socket pool (33)")
        );
        check(
            r##"
local b, pool = sd.buffer(), {}
push(b, pool, "x")
assert(#pool == 2 and type(pool[1]) == "userdata" and chunklen(pool[2]) == 16)
for i = 2, 16 do push(b, pool, "x") end
assert(#pool == 2 and pool[1] == nullptr, "the free list is empty")
assert(sd.readall(b, pool) == string.rep("x", 16))
assert(pool[1] == nodeptr(pool[2], 15), "the last node returned heads the free list")
-- the 16 nodes came back: no new chunk
for i = 1, 16 do push(b, pool, "y") end
assert(#pool == 2)
push(b, pool, "z")
assert(#pool == 3 and chunklen(pool[3]) == 32)
sd.clear(b, pool)
-- chunk sizes 16, 32, ..., 4096, 4096
local total = 0
for i = 1, 16 + 32 + 64 + 128 + 256 + 512 + 1024 + 2048 + 4096 + 1 do push(b, pool, "n") end
assert(#pool == 11)
for i = 2, 10 do assert(chunklen(pool[i]) == 8 << (i - 1), i) end
assert(chunklen(pool[11]) == 4096)
local s = sd.readall(b, pool)
assert(#s == 16 + 32 + 64 + 128 + 256 + 512 + 1024 + 2048 + 4096 + 1)
"##,
        );
    }

    #[test]
    fn readline() {
        check(
            r##"
local b, pool = sd.buffer(), {}
assert(sd.readline(b, pool, "\n") == nil)
push(b, pool, "line1\r\nli")
push(b, pool, "ne2\r")
push(b, pool, "\nrest")
assert(sd.readline(b, nil, "\r\n") == true)
assert(sd.readline(b, pool, "\r\n") == "line1")
assert(sd.readline(b, pool, "\r\n") == "line2")   -- the separator spans two blocks
assert(select("#", sd.readline(b, pool, "\r\n")) == 0)
assert(sd.readline(b, nil, "\r\n") == nil)
assert(select("#", sd.readline(b, pool, "toolongseparator")) == 0)
assert(sd.readline(b, pool, "") == "")
assert(sd.readline(b, pool, "r") == "")
assert(sd.readall(b, pool) == "est")
-- separator split over single-byte blocks, and a partial separator at the end
for _, c in ipairs {"a", "b", "<", "-", ">", "c", "<", "-"} do push(b, pool, c) end
assert(sd.readline(b, pool, "<->") == "ab")
assert(sd.readline(b, pool, "<->") == nil)
assert(sd.readall(b, pool) == "c<-")
-- a near match that is not one
push(b, pool, "aab") push(b, pool, "aaab")
assert(sd.readline(b, pool, "aaab") == "aab")
assert(#sd.readall(b, pool) == 0)
"##,
        );
    }

    #[test]
    fn random_operations_match_a_string_model() {
        check(
            r##"
local seed = 4242
local function rnd(n) seed = (seed * 1103515245 + 12345) & 0x7fffffff return seed % n end
local b, pool = sd.buffer(), {}
local model = ""
local seps = {"\n", "\r\n", "ab", "aba", "x"}
for i = 1, 20000 do
    local op = rnd(10)
    if op < 4 then
        local t = {}
        for j = 1, rnd(12) + 1 do t[j] = string.char(({97, 98, 10, 13, 120})[rnd(5) + 1]) end
        local s = table.concat(t)
        model = model .. s
        assert(push(b, pool, s) == #model)
    elseif op < 7 then
        local n = rnd(20)
        local s, left = sd.pop(b, pool, n)
        if n == 0 or n > #model then
            assert(s == nil and left == #model)
        else
            assert(s == model:sub(1, n))
            model = model:sub(n + 1)
            assert(left == #model)
        end
    elseif op < 9 then
        local sep = seps[rnd(#seps) + 1]
        local at = model:find(sep, 1, true)
        assert(sd.readline(b, nil, sep) == (at and true or nil))
        local line = sd.readline(b, pool, sep)
        if at then
            assert(line == model:sub(1, at - 1))
            model = model:sub(at + #sep)
        else
            assert(line == nil)
        end
    elseif rnd(20) == 0 then
        assert(sd.readall(b, pool) == model)
        model = ""
    end
end
sd.clear(b, pool)
"##,
        );
    }

    #[test]
    fn clear_binding_and_gc() {
        check(
            r##"
local b, pool = sd.buffer(), {}
for i = 1, 3 do push(b, pool, "abc") end
sd.clear(b, pool)
assert(sd.readall(b, pool) == "")
sd.clear(nil)
expect_err("Need buffer object at param 1", sd.clear, "x", pool)
-- a buffer holding data refuses another pool
local pool2 = {}
push(b, pool, "data")
expect_err("socket buffer used with another pool", sd.pop, b, pool2, 1)
expect_err("socket buffer used with another pool", sd.readline, b, pool2, "a")
expect_err("socket buffer used with another pool", sd.readall, b, pool2)
expect_err("socket buffer used with another pool", sd.clear, b, pool2)
local p, sz = sd.str2p("more")
expect_err("socket buffer used with another pool", sd.push, b, pool2, p, sz)
sd.drop(p, sz)
assert(sd.readall(b, pool) == "data")
-- once empty it may move to another pool
push(b, pool2, "z")
assert(sd.readall(b, pool2) == "z")
-- a collected buffer gives its nodes back to its pool
local b2 = sd.buffer()
for i = 1, 10 do push(b2, pool, "q") end
b2 = nil
collectgarbage() collectgarbage()
local b3 = sd.buffer()
for i = 1, 16 do push(b3, pool, "r") end
assert(#pool == 2, "the 10 nodes were returned")
-- buffers and the pool dying together free every block
local b4, pool4 = sd.buffer(), {}
for i = 1, 20 do push(b4, pool4, "s") end
b4, pool4 = nil, nil
collectgarbage() collectgarbage()
"##,
        );
    }

    #[test]
    fn a_damaged_pool_is_an_error() {
        check(
            r##"
local b, pool = sd.buffer(), {}
push(b, pool, "a")
local chunk = pool[2]
-- an in-use node as the free head
pool[1] = nodeptr(chunk, 0)
local p, sz = sd.str2p("x")
expect_err("Invalid socket pool", sd.push, b, pool, p, sz)
-- a pointer outside the chunks, and one inside but between nodes
pool[1] = p
expect_err("Invalid socket pool", sd.push, b, pool, p, sz)
-- a full userdata
pool[1] = io.stdout
expect_err("Invalid socket pool", sd.push, b, pool, p, sz)
-- a copy of the chunk (its tag included) is not a chunk: its nodes are refused
local copy = copyud(chunk)
pool[2] = copy
pool[1] = nodeptr(chunk, 5)
expect_err("Invalid socket pool", sd.push, b, pool, p, sz)
pool[2] = chunk
-- a free node is fine again
pool[1] = nodeptr(chunk, 5)
assert(sd.push(b, pool, p, sz) == 2)
assert(sd.readall(b, pool) == "ax")
-- not a pointer at all: a new chunk
pool[1] = 42
push(b, pool, "c")
assert(#pool == 3)
sd.clear(b, pool)
"##,
        );
    }

    #[test]
    fn argument_errors() {
        check(
            r##"
local b, pool = sd.buffer(), {}
local p, sz = sd.str2p("abc")
assert(sz == 3)
expect_err("need buffer object at param 1", sd.push, nil, pool, p, sz)
expect_err("need buffer object at param 1", sd.push, io.stdout, pool, p, sz)
-- a copy of a buffer, its tag included, is not a buffer
expect_err("need buffer object at param 1", sd.push, copyud(b), pool, p, sz)
expect_err("need message block at param 3", sd.push, b, pool, nil, sz)
expect_err("need message block at param 3", sd.push, b, pool, io.stdout, sz)
expect_err("table expected", sd.push, b, "pool", p, sz)
expect_err("invalid size -1", sd.push, b, pool, p, -1)
expect_err("number expected", sd.push, b, pool, p)
expect_err("Need buffer object at param 1", sd.pop, io.stdout, pool, 1)
expect_err("table expected", sd.pop, b, nil, 1)
expect_err("Need buffer object at param 1", sd.readall, nil, pool)
expect_err("Need buffer object at param 1", sd.readline, nil, pool, "\n")
expect_err("string expected", sd.readline, b, pool)
expect_err("light userdata expected", sd.drop, io.stdout, 1)
expect_err("number expected", sd.drop, p)
sd.drop(p, sz)
sd.drop(nil, 0)
sd.drop("str", 0)
p, sz = sd.str2p("")
assert(sz == 0 and p ~= nullptr)
sd.drop(p, sz)
-- header
assert(sd.header("\1") == 1)
assert(sd.header("\1\2") == 258)
assert(sd.header("\1\2\3") == 0x10203)
assert(sd.header("\255\255\255\255") == 4294967295)
expect_err("Invalid read ", sd.header, "")
expect_err("Invalid read 12345", sd.header, "12345")
local ok, e = pcall(function() sd.header("") end)
assert(not ok and e:find("^test:%d+: Invalid read $"), e)
ok, e = pcall(function() sd.push(nil) end)
assert(not ok and e:find("^test:%d+: need buffer object at param 1$"), e)
expect_err("string expected", sd.header, {})
"##,
        );
    }

    #[test]
    fn unpack_messages() {
        check(
            r##"
local function unpack_msg(m, sz)
    local r = table.pack(sd.unpack(m, sz))
    cfree(m)
    return r
end
local r = unpack_msg(mkinline(ERROR, 3, 0, "boom"))
assert(r.n == 4 and r[1] == ERROR and r[2] == 3 and r[3] == 0 and r[4] == "boom")
r = unpack_msg(mkinline(ACCEPT, 3, 12, "10.0.0.1:5"))
assert(r[1] == ACCEPT and r[3] == 12 and r[4] == "10.0.0.1:5")
r = unpack_msg(mkinline(CLOSE, 8, 0))
assert(r.n == 4 and r[1] == CLOSE and r[4] == "")
r = unpack_msg(mkdata(7, "xyz"))
assert(r.n == 4 and r[1] == DATA and r[2] == 7 and r[3] == 3 and type(r[4]) == "userdata")
assert(peek(r[4], 3) == "xyz")
sd.drop(r[4], 3)
-- UDP: the datagram, then the sender address record
local v4 = "\1\0\80\127\0\0\1"
r = unpack_msg(mkheap(UDP, 9, 5, "hello" .. v4))
assert(r.n == 5 and r[1] == UDP and r[3] == 5 and peek(r[4], 5) == "hello" and r[5] == v4)
sd.drop(r[4], 5)
local ip, port = sd.udp_address(v4)
assert(ip == "127.0.0.1" and port == 80)
local v6 = "\2\31\144" .. string.rep("\0", 15) .. "\1"
r = unpack_msg(mkheap(UDP, 9, 0, v6))
assert(r.n == 5 and r[5] == v6)
sd.drop(r[4], 0)
ip, port = sd.udp_address(v6)
assert(ip == "::1" and port == 8080)
-- unknown protocol byte, or no buffer: no address
r = unpack_msg(mkheap(UDP, 9, 2, "hi\9\0\0"))
assert(r.n == 4)
sd.drop(r[4], 2)
r = unpack_msg(mkinline(UDP, 9, 0))
assert(r.n == 4 and r[4] == "")
-- malformed
expect_err("socket message expected", sd.unpack, nil, 24)
expect_err("socket message expected", sd.unpack, nullptr, 24)
local m = mkinline(ERROR, 1, 0, "x")
expect_err("invalid socket message size 23", sd.unpack, m, 23)
expect_err("number expected", sd.unpack, m)
cfree(m)
expect_err("invalid socket message size", sd.unpack, io.stdout, 24)
expect_err("Invalid udp address", sd.udp_address, "abc")
expect_err("Invalid udp address", sd.udp_address, "")
"##,
        );
    }

    #[test]
    fn udp_address_text_like_inet_ntop() {
        let rec = |proto: u8, port: u16, ip: &[u8]| {
            let mut v = vec![proto];
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(ip);
            v
        };
        let t = |v: &[u8]| udp_address_text(v).map(|(ip, port)| format!("{ip} {port}"));
        assert_eq!(t(&rec(1, 53, &[8, 8, 4, 4])).as_deref(), Some("8.8.4.4 53"));
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(t(&rec(2, 1, &v6("::"))).as_deref(), Some(":: 1"));
        assert_eq!(t(&rec(2, 1, &v6("::1"))).as_deref(), Some("::1 1"));
        assert_eq!(t(&rec(2, 1, &v6("::2"))).as_deref(), Some("::0.0.0.2 1"));
        assert_eq!(
            t(&rec(2, 1, &v6("::1.2.3.4"))).as_deref(),
            Some("::1.2.3.4 1")
        );
        assert_eq!(
            t(&rec(2, 1, &v6("::ffff:1.2.3.4"))).as_deref(),
            Some("::ffff:1.2.3.4 1")
        );
        assert_eq!(
            t(&rec(2, 65535, &v6("fe80:0:0:0:1:0:0:1"))).as_deref(),
            Some("fe80::1:0:0:1 65535")
        );
        assert_eq!(
            t(&rec(2, 7, &v6("2001:db8:0:1:1:1:1:1"))).as_deref(),
            Some("2001:db8:0:1:1:1:1:1 7")
        );
        assert_eq!(t(b""), None);
        assert_eq!(t(b"\x01\x00\x01\x01\x02\x03"), None);
    }

    #[test]
    fn address_port_like_master() {
        let ok = |a: &str, p: Option<i64>| {
            address_port(a.as_bytes(), p).map(|(h, p)| (String::from_utf8_lossy(h).into_owned(), p))
        };
        let pair = |h: &str, p: i64| Ok((h.to_owned(), p));
        assert_eq!(ok("127.0.0.1:80", None), pair("127.0.0.1", 80));
        assert_eq!(ok("[::1]:8080", None), pair("::1", 8080));
        assert_eq!(ok("host", Some(5)), pair("host", 5));
        assert_eq!(ok("[::1]:8080", Some(0)), pair("[::1]:8080", 0));
        assert_eq!(ok("h:+80", None), pair("h", 80));
        assert_eq!(ok("h: 80", None), pair("h", 80));
        assert_eq!(ok("h:-0", None), pair("h", 0));
        assert_eq!(ok(":0", None), pair("", 0));
        assert_eq!(ok("h:65535", None), pair("h", 65535));
        assert_eq!(ok("host", None), Err(AddressError::Address));
        assert_eq!(ok("[::1]", None), Err(AddressError::Address));
        assert_eq!(ok("[::1", None), Err(AddressError::Address));
        for bad in [
            "h:",
            "h:65536",
            "h:80 ",
            "h:-1",
            "h:x",
            "::1:80",
            "h:99999999999999999999999",
        ] {
            assert_eq!(ok(bad, None), Err(AddressError::Port), "{bad}");
        }
        assert_eq!(
            AddressError::Port.message(b"h:x"),
            "Invalid port in address h:x."
        );
        assert_eq!(AddressError::Address.message(b"h"), "Invalid address h.");
    }

    #[test]
    fn opener_needs_the_context() {
        // SAFETY: a private state; the fake context is never dereferenced by these functions.
        unsafe {
            let l = ffi::luaL_newstate();
            ffi::lua_pushcfunction(l, luaopen_skynet_socketdriver);
            assert_ne!(ffi::lua_pcall(l, 0, 1, 0), ffi::LUA_OK);
            let msg = CStr::from_ptr(ffi::lua_tolstring(l, -1, ptr::null_mut()));
            assert_eq!(msg, c"Init skynet context first");
            ffi::lua_settop(l, 0);
            let mut fake = 0u8;
            ffi::lua_pushlightuserdata(l, (&raw mut fake).cast());
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            ffi::lua_pushcfunction(l, luaopen_skynet_socketdriver);
            assert_eq!(ffi::lua_pcall(l, 0, 1, 0), ffi::LUA_OK);
            let mut n = 0;
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                assert_eq!(ffi::lua_type(l, -1), ffi::LUA_TFUNCTION);
                n += 1;
                ffi::lua_pop(l, 1);
            }
            assert_eq!(
                n,
                BUFFER_FUNCTIONS.len() + 1 + net::FUNCTIONS.len() + CONTEXT_FUNCTIONS.len()
            );
            assert_eq!(n, 28);
            ffi::lua_close(l);
        }
    }
}
