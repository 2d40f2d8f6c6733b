//! `skynet.netpack`: 2-byte big-endian length framing of socket data, as
//! used by the gate servers.
//!
//! `filter(queue, msg, sz)` takes a PTYPE_SOCKET message and returns the queue (argument 1, or a
//! new queue userdata when one was needed and argument 1 held none) followed by:
//! - `"data", fd, ptr, size`: the message completed exactly one packet (`ptr` is a `malloc`
//!   block the caller frees, e.g. with `tostring`);
//! - `"more"`: it completed several packets (fetch them with `pop`);
//! - nothing more: the data only extended a partial packet;
//! - `"open", newfd, addr` (ACCEPT), `"close", fd`, `"error", fd, text`, `"warning", fd, KiB`,
//!   `"init", id, text, ud` (CONNECT).
//!
//! The DATA buffer is always released. Partial packets are kept per fd and dropped on CLOSE and
//! ERROR. `pop(queue)` → fd, ptr, size (or nothing); `pack(str | ptr, sz)` → a `malloc` block
//! holding the 2-byte header and the bytes, and its size; `clear(queue)` frees everything
//! pending; `tostring(ptr, sz)` → string, freeing `ptr`.
//!
//! # Differences from upstream (none on well-formed use)
//! - Memory held for a partial packet grows with the bytes received instead of being allocated
//!   at the announced size up front, so a peer announcing 64 KiB and sending 2 bytes costs 2.
//! - Pending (completed, not yet popped) packets per queue are bounded by [`DEFAULT_LIMITS`]:
//!   1 Mi packets or 64 MiB of payload. A DATA message that would go over is rejected as a
//!   whole: its fd's partial packet is dropped, `filter` answers `"error", fd, "netpack: too many
//!   pending packets (...)"` (the gate then shuts the connection down) and later DATA for that fd
//!   is ignored until its CLOSE or ERROR arrives (the stream can no longer be framed). Upstream
//!   grows without bound.
//! - Malformed input raises a Lua error instead of crashing: a missing or NULL message, an
//!   inline message shorter than its 24-byte header, a DATA message without a buffer or with a
//!   negative size, a wrong userdata as the queue, a negative or too large `pack` size, a
//!   `pack` pointer that is NULL with a non-zero size or a full userdata smaller than the size,
//!   `tostring` of a full userdata or with a negative size. An empty DATA message is ignored.
//! - The queue userdata has a metatable: it is recognised by type (upstream accepts any
//!   userdata) and its `__gc` frees whatever is still pending (upstream leaks it unless `clear`
//!   is called). It never changes identity (upstream reallocates it when it grows).
//! - When one DATA message holds exactly one packet, that packet is returned in the same
//!   `malloc` block (moved down over the header) instead of a fresh copy.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use crate::cmem::{self, CBlock, GrowBuf};
use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, raise_where, CFunction};
use crate::socket_message::{self as sm, Payload};
use ffi::lua_State;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

/// Largest payload a 2-byte header can announce.
pub const MAX_PACKET: usize = 0xffff;

/// Bounds on what one queue holds between `filter` and `pop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Completed packets waiting to be popped.
    pub max_packets: usize,
    /// Payload bytes of those packets.
    pub max_bytes: usize,
}

/// A queue's pending limits were hit (the fd's data is dropped from then on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsExceeded;

/// The limits every new queue gets. A gate that pops after each `"more"` (as gateserver does)
/// only comes near them when one read delivers a burst that large.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_packets: 1 << 20,
    max_bytes: 64 << 20,
};

/// A completed packet waiting in the queue.
struct Packet {
    fd: c_int,
    data: CBlock,
}

/// An fd's packet in progress.
enum Partial {
    /// Only the high byte of the length has arrived.
    Header(u8),
    /// The length is known; `buf` holds the bytes so far (fewer than `size`).
    Body { size: usize, buf: GrowBuf },
}

/// What feeding bytes to a partial packet produced.
enum Fed {
    Incomplete(Partial),
    Complete(CBlock),
}

impl Partial {
    /// Feeds the start of `bytes`; returns the new state and how many bytes were used.
    fn feed(self, bytes: &[u8]) -> (Fed, usize) {
        let (size, mut buf, mut used) = match self {
            Partial::Header(hi) => match bytes.first() {
                None => return (Fed::Incomplete(Partial::Header(hi)), 0),
                Some(&lo) => (usize::from(hi) << 8 | usize::from(lo), GrowBuf::new(), 1),
            },
            Partial::Body { size, buf } => (size, buf, 0),
        };
        let take = (size - buf.len()).min(bytes.len() - used);
        buf.extend(&bytes[used..used + take], size);
        used += take;
        if buf.len() == size {
            (Fed::Complete(buf.into_block()), used)
        } else {
            (Fed::Incomplete(Partial::Body { size, buf }), used)
        }
    }

    /// The state after receiving `bytes` (fewer than a whole packet) on a packet boundary.
    fn start(bytes: &[u8]) -> Partial {
        match *bytes {
            [hi] => Partial::Header(hi),
            [hi, lo, ref rest @ ..] => {
                let size = usize::from(hi) << 8 | usize::from(lo);
                let mut buf = GrowBuf::new();
                buf.extend(rest, size);
                Partial::Body { size, buf }
            }
            [] => unreachable!("no partial packet in zero bytes"),
        }
    }
}

/// The complete packet at the start of `bytes`: (payload offset, payload length), or `None` if
/// `bytes` holds less than a whole packet.
fn frame(bytes: &[u8]) -> Option<(usize, usize)> {
    let [hi, lo, ..] = *bytes else { return None };
    let len = usize::from(hi) << 8 | usize::from(lo);
    (bytes.len() - 2 >= len).then_some((2, len))
}

/// Number and payload bytes of the complete packets at the start of `bytes`.
fn scan(mut bytes: &[u8]) -> (usize, usize) {
    let (mut n, mut total) = (0, 0);
    while let Some((start, len)) = frame(bytes) {
        n += 1;
        total += len;
        bytes = &bytes[start + len..];
    }
    (n, total)
}

/// Whether `bytes` (a DATA payload for an fd with no partial packet) is empty or exactly one
/// packet, i.e. can be answered without a queue.
fn fits_without_queue(bytes: &[u8]) -> bool {
    bytes.is_empty() || frame(bytes).is_some_and(|(s, len)| s + len == bytes.len())
}

/// The result of filtering one DATA message (plain data: nothing to drop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing to report (data buffered, or ignored).
    Nothing,
    /// Exactly one packet, now owned by the caller.
    Data {
        fd: c_int,
        ptr: *mut u8,
        size: usize,
    },
    /// Packets were queued.
    More,
    /// The pending limits were hit; the fd's data is dropped from now on.
    Overflow { fd: c_int },
}

/// One exactly-complete packet (or nothing) from a DATA payload, reusing its block.
fn single(fd: c_int, data: CBlock) -> Outcome {
    match frame(data.as_slice()) {
        Some((start, len)) if start + len == data.len() => {
            let (ptr, size) = data.keep_range(start, len).into_raw();
            Outcome::Data { fd, ptr, size }
        }
        _ => Outcome::Nothing,
    }
}

/// Per-gate state: completed packets not yet popped, and each fd's partial packet.
pub struct Queue {
    packets: VecDeque<Packet>,
    pending_bytes: usize,
    partial: HashMap<c_int, Partial>,
    /// Fds whose data was rejected by the limits; ignored until CLOSE/ERROR.
    poisoned: HashSet<c_int>,
    limits: Limits,
}

impl Queue {
    pub fn new(limits: Limits) -> Queue {
        Queue {
            packets: VecDeque::new(),
            pending_bytes: 0,
            partial: HashMap::new(),
            poisoned: HashSet::new(),
            limits,
        }
    }

    fn push(&mut self, fd: c_int, data: CBlock) {
        self.pending_bytes += data.len();
        self.packets.push_back(Packet { fd, data });
    }

    fn pop(&mut self) -> Option<Packet> {
        let p = self.packets.pop_front()?;
        self.pending_bytes -= p.data.len();
        Some(p)
    }

    /// Forgets the fd's partial packet (CLOSE / ERROR).
    fn close_fd(&mut self, fd: c_int) {
        self.partial.remove(&fd);
        self.poisoned.remove(&fd);
    }

    /// Frees everything pending.
    fn clear(&mut self) {
        self.packets.clear();
        self.pending_bytes = 0;
        self.partial.clear();
        self.poisoned.clear();
    }

    /// Feeds one DATA payload for `fd` and returns the packets it completed, in order: the
    /// framing without Lua (for the fuzz target and tests). `Err` when the limits are hit.
    pub fn feed(&mut self, fd: c_int, bytes: &[u8]) -> Result<Vec<Vec<u8>>, LimitsExceeded> {
        match self.filter_data(fd, CBlock::copy_from(bytes)) {
            Outcome::Nothing => Ok(Vec::new()),
            Outcome::Overflow { .. } => Err(LimitsExceeded),
            Outcome::Data { ptr, size, .. } => {
                let block = match NonNull::new(ptr) {
                    // SAFETY: the outcome hands us ownership of this libc block of `size` bytes.
                    Some(p) => unsafe { CBlock::from_raw(p, size) },
                    None => return Ok(vec![Vec::new()]),
                };
                Ok(vec![block.as_slice().to_vec()])
            }
            Outcome::More => {
                let mut out = Vec::new();
                while let Some(p) = self.pop() {
                    out.push(p.data.as_slice().to_vec());
                }
                Ok(out)
            }
        }
    }

    /// Handles the payload of a DATA message for `fd` (the block is consumed).
    fn filter_data(&mut self, fd: c_int, data: CBlock) -> Outcome {
        if self.poisoned.contains(&fd) || data.is_empty() {
            return Outcome::Nothing;
        }
        let bytes = data.as_slice();
        // The first completed packet: a new block (a finished partial) or a range of `data`.
        let (first, mut pos) = match self.partial.remove(&fd) {
            Some(p) => match p.feed(bytes) {
                (Fed::Incomplete(p), _) => {
                    self.partial.insert(fd, p);
                    return Outcome::Nothing;
                }
                (Fed::Complete(block), used) => (Ok(block), used),
            },
            None => match frame(bytes) {
                None => {
                    self.partial.insert(fd, Partial::start(bytes));
                    return Outcome::Nothing;
                }
                Some((start, len)) => (Err((start, len)), start + len),
            },
        };
        if pos == bytes.len() {
            let (ptr, size) = match first {
                Ok(block) => block.into_raw(),
                Err((start, len)) => data.keep_range(start, len).into_raw(),
            };
            return Outcome::Data { fd, ptr, size };
        }
        let first_len = match &first {
            Ok(block) => block.len(),
            Err((_, len)) => *len,
        };
        let (n, total) = scan(&bytes[pos..]);
        let packets = self.packets.len() + 1 + n;
        let payload = self.pending_bytes + first_len + total;
        if packets > self.limits.max_packets || payload > self.limits.max_bytes {
            self.poisoned.insert(fd);
            return Outcome::Overflow { fd };
        }
        let first = match first {
            Ok(block) => block,
            Err((start, len)) => CBlock::copy_from(&bytes[start..start + len]),
        };
        self.push(fd, first);
        while let Some((start, len)) = frame(&bytes[pos..]) {
            let block = CBlock::copy_from(&bytes[pos + start..pos + start + len]);
            self.push(fd, block);
            pos += start + len;
        }
        if pos < bytes.len() {
            self.partial.insert(fd, Partial::start(&bytes[pos..]));
        }
        Outcome::More
    }
}

// ---------------------------------------------------------------------------------------------
// Lua glue
// ---------------------------------------------------------------------------------------------

const QUEUE_MT: &CStr = c"skynet.netpack.queue";

// Upvalues of `filter`, in upstream's order.
const UV_DATA: c_int = 1;
const UV_MORE: c_int = 2;
const UV_ERROR: c_int = 3;
const UV_OPEN: c_int = 4;
const UV_CLOSE: c_int = 5;
const UV_WARNING: c_int = 6;
const UV_INIT: c_int = 7;

/// Argument 1 as a queue.
enum QueueArg {
    /// Not a userdata (nil, none, ...): no queue yet.
    Missing,
    Queue(NonNull<Queue>),
    /// A queue already finalized (only possible from another finalizer).
    Collected,
    /// Some other userdata.
    Wrong,
}

/// # Safety
/// `l` is the running state; the queue stays valid while argument `idx` is on the stack and no
/// finalizer runs.
unsafe fn queue_arg(l: *mut lua_State, idx: c_int) -> QueueArg {
    // SAFETY: valid state and index; testudata does not raise.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TUSERDATA => {
                let ud = ffi::luaL_testudata(l, idx, QUEUE_MT.as_ptr()).cast::<*mut Queue>();
                if ud.is_null() {
                    QueueArg::Wrong
                } else {
                    NonNull::new(*ud).map_or(QueueArg::Collected, QueueArg::Queue)
                }
            }
            ffi::LUA_TLIGHTUSERDATA => QueueArg::Wrong,
            _ => QueueArg::Missing,
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn queue_gc(l: *mut lua_State) -> c_int {
    // SAFETY: called as __gc with our userdata; the pointer slot is cleared before the drop so a
    // resurrected queue is seen as collected.
    unsafe {
        let ud = ffi::luaL_testudata(l, 1, QUEUE_MT.as_ptr()).cast::<*mut Queue>();
        if !ud.is_null() {
            let q = std::mem::replace(&mut *ud, std::ptr::null_mut());
            if !q.is_null() {
                drop(Box::from_raw(q));
            }
        }
    }
    0
}

/// Creates a queue userdata and stores it at stack index 1.
///
/// # Safety
/// `l` is the running state with at least one stack slot in use; no Rust value with a
/// destructor is alive in the caller (allocation may raise a memory error).
unsafe fn new_queue(l: *mut lua_State) -> NonNull<Queue> {
    // SAFETY: valid state; the userdata holds one pointer, NULL until the box is stored.
    unsafe {
        let ud =
            ffi::lua_newuserdatauv(l, std::mem::size_of::<*mut Queue>(), 0).cast::<*mut Queue>();
        ud.write(std::ptr::null_mut());
        if ffi::luaL_newmetatable(l, QUEUE_MT.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, queue_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
        let q = NonNull::from(Box::leak(Box::new(Queue::new(DEFAULT_LIMITS))));
        *ud = q.as_ptr();
        ffi::lua_replace(l, 1);
        q
    }
}

/// Raises the error for a bad queue argument.
///
/// # Safety
/// As [`raise_where`].
unsafe fn bad_queue(l: *mut lua_State, func: &str) -> ! {
    let msg = format!("netpack.{func}: bad argument #1 (netpack queue expected)");
    // SAFETY: only the message is alive; raise frees it.
    unsafe { raise_where(l, msg) }
}

/// Pushes the inline text of an event ("" for a heap payload, which these events never have).
///
/// # Safety
/// `l` is the running state with a free slot.
unsafe fn push_text(l: *mut lua_State, payload: Payload<'_>) {
    let text: &[u8] = match payload {
        Payload::Inline(t) => t,
        Payload::Heap(_) => &[],
    };
    // SAFETY: valid state; Lua copies the bytes.
    unsafe { ffi::lua_pushlstring(l, text.as_ptr().cast::<c_char>(), text.len()) };
}

/// `filter(queue, msg, sz)` (see the module doc).
#[lua_function]
unsafe extern "C-unwind" fn lfilter(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; every raising call happens while only plain data is alive.
    unsafe {
        let msg = ffi::lua_touserdata(l, 2);
        let avail = (ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA).then(|| ffi::lua_rawlen(l, 2));
        let sz = ffi::luaL_checkinteger(l, 3);
        let queue = queue_arg(l, 1);
        if matches!(queue, QueueArg::Wrong | QueueArg::Collected) {
            bad_queue(l, "filter");
        }
        let ev = match sm::decode(msg, sz, avail) {
            Ok(ev) => ev,
            Err(e) => raise_where(l, e.describe("netpack.filter")),
        };
        ffi::lua_settop(l, 1);
        let queue = match queue {
            QueueArg::Queue(q) => Some(q),
            _ => None,
        };
        match ev.ty {
            sm::SKYNET_SOCKET_TYPE_DATA => filter_data(l, queue, ev.id, ev.payload, ev.ud),
            sm::SKYNET_SOCKET_TYPE_CONNECT => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_INIT));
                ffi::lua_pushinteger(l, ev.id.into());
                push_text(l, ev.payload);
                ffi::lua_pushinteger(l, ev.ud.into());
                5
            }
            sm::SKYNET_SOCKET_TYPE_CLOSE => {
                if let Some(q) = queue {
                    (*q.as_ptr()).close_fd(ev.id);
                }
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_CLOSE));
                ffi::lua_pushinteger(l, ev.id.into());
                3
            }
            sm::SKYNET_SOCKET_TYPE_ACCEPT => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_OPEN));
                ffi::lua_pushinteger(l, ev.ud.into());
                push_text(l, ev.payload);
                4
            }
            sm::SKYNET_SOCKET_TYPE_ERROR => {
                if let Some(q) = queue {
                    (*q.as_ptr()).close_fd(ev.id);
                }
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_ERROR));
                ffi::lua_pushinteger(l, ev.id.into());
                push_text(l, ev.payload);
                4
            }
            sm::SKYNET_SOCKET_TYPE_WARNING => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_WARNING));
                ffi::lua_pushinteger(l, ev.id.into());
                ffi::lua_pushinteger(l, ev.ud.into());
                4
            }
            // UDP and unknown types: only the queue, as upstream.
            _ => 1,
        }
    }
}

/// The DATA branch of `filter`; the stack holds just the queue slot.
///
/// # Safety
/// `l` is the running state inside `lfilter`; `queue` is the queue at index 1 if any.
unsafe fn filter_data(
    l: *mut lua_State,
    queue: Option<NonNull<Queue>>,
    fd: c_int,
    payload: Payload<'_>,
    ud: c_int,
) -> c_int {
    let Payload::Heap(buf) = payload else {
        // SAFETY: nothing with a destructor is alive.
        unsafe {
            raise_where(
                l,
                "netpack.filter: DATA message without a buffer".to_owned(),
            )
        }
    };
    let Ok(size) = usize::try_from(ud) else {
        // SAFETY: the buffer is ours to release; then only the message is alive.
        unsafe {
            cmem::free(buf);
            raise_where(l, format!("netpack.filter: invalid DATA size {ud}"))
        }
    };
    // SAFETY: a DATA buffer holds `ud` bytes (socket layer contract).
    let bytes = unsafe { std::slice::from_raw_parts(buf, size) };
    let queue = match queue {
        Some(q) => Some(q),
        // SAFETY: only plain data is alive; creating the userdata may raise a memory error.
        None if !fits_without_queue(bytes) => Some(unsafe { new_queue(l) }),
        None => None,
    };
    // From here on the DATA block is owned by Rust (freed on every path).
    // SAFETY: the DATA buffer is a malloc block handed to the receiver, now to us.
    let data = unsafe { CBlock::from_raw(NonNull::new_unchecked(buf), size) };
    let outcome = match queue {
        // SAFETY: the userdata at index 1 keeps the queue alive; no Lua code runs while this
        // exclusive borrow exists.
        Some(q) => unsafe { (*q.as_ptr()).filter_data(fd, data) },
        None => single(fd, data),
    };
    // SAFETY: only plain data is alive from here on; pushvalue/pushinteger/pushlightuserdata do
    // not allocate; pushfstring may raise a memory error with nothing to leak.
    unsafe {
        match outcome {
            Outcome::Nothing => 1,
            Outcome::Data { fd, ptr, size } => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_DATA));
                ffi::lua_pushinteger(l, fd.into());
                ffi::lua_pushlightuserdata(l, ptr.cast::<c_void>());
                ffi::lua_pushinteger(l, size as ffi::lua_Integer);
                5
            }
            Outcome::More => {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_MORE));
                2
            }
            Outcome::Overflow { fd } => {
                let limits = queue.map_or(DEFAULT_LIMITS, |q| (*q.as_ptr()).limits);
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(UV_ERROR));
                ffi::lua_pushinteger(l, fd.into());
                ffi::lua_pushfstring(
                    l,
                    c"netpack: too many pending packets (limit %I packets, %I bytes)".as_ptr(),
                    limits.max_packets as ffi::lua_Integer,
                    limits.max_bytes as ffi::lua_Integer,
                );
                4
            }
        }
    }
}

/// `pop(queue)` → fd, ptr, size, or nothing.
#[lua_function]
unsafe extern "C-unwind" fn lpop(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let q = match unsafe { queue_arg(l, 1) } {
        QueueArg::Queue(q) => q,
        QueueArg::Missing => return 0,
        // SAFETY: nothing with a destructor is alive.
        QueueArg::Wrong | QueueArg::Collected => unsafe { bad_queue(l, "pop") },
    };
    // SAFETY: the userdata at index 1 keeps the queue alive; no Lua code runs meanwhile.
    let Some(p) = (unsafe { (*q.as_ptr()).pop() }) else {
        return 0;
    };
    let fd = p.fd;
    let (ptr, size) = p.data.into_raw();
    // SAFETY: three free slots (a C function has LUA_MINSTACK); these pushes do not allocate.
    unsafe {
        ffi::lua_pushinteger(l, fd.into());
        ffi::lua_pushlightuserdata(l, ptr.cast::<c_void>());
        ffi::lua_pushinteger(l, size as ffi::lua_Integer);
    }
    3
}

/// `clear(queue)`: frees every pending and partial packet.
#[lua_function]
unsafe extern "C-unwind" fn lclear(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    match unsafe { queue_arg(l, 1) } {
        // SAFETY: the userdata at index 1 keeps the queue alive; no Lua code runs meanwhile.
        QueueArg::Queue(q) => unsafe { (*q.as_ptr()).clear() },
        QueueArg::Missing | QueueArg::Collected => {}
        // SAFETY: nothing with a destructor is alive.
        QueueArg::Wrong => unsafe { bad_queue(l, "clear") },
    }
    0
}

/// `pack(str | ptr, sz)` → malloc'd ptr (2-byte big-endian length + bytes), size + 2.
#[lua_function]
unsafe extern "C-unwind" fn lpack(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; checks raise before anything is owned.
    let (ptr, len) = unsafe {
        if ffi::lua_isuserdata(l, 1) != 0 {
            let p = ffi::lua_touserdata(l, 1).cast::<u8>().cast_const();
            let sz = ffi::luaL_checkinteger(l, 2);
            if !(0..=MAX_PACKET as i64).contains(&sz) {
                raise_where(
                    l,
                    format!("Invalid size (too long) of data : {}", sz as c_int),
                );
            }
            let sz = sz as usize;
            if ffi::lua_type(l, 1) == ffi::LUA_TUSERDATA && sz > ffi::lua_rawlen(l, 1) {
                raise_where(l, format!("netpack.pack: size {sz} exceeds the userdata"));
            }
            if p.is_null() && sz > 0 {
                raise_where(l, "netpack.pack: NULL pointer".to_owned());
            }
            (p, sz)
        } else {
            let mut len = 0usize;
            let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
            if len > MAX_PACKET {
                raise_where(
                    l,
                    format!("Invalid size (too long) of data : {}", len as c_int),
                );
            }
            (p, len)
        }
    };
    let out = cmem::malloc(len + 2).as_ptr();
    // SAFETY: `out` has len + 2 bytes; `ptr` has `len` readable bytes (a Lua string, or a
    // pointer and size from Lua code, trusted as upstream does) and is not inside `out`.
    unsafe {
        out.write(((len >> 8) & 0xff) as u8);
        out.add(1).write((len & 0xff) as u8);
        if len > 0 {
            std::ptr::copy_nonoverlapping(ptr, out.add(2), len);
        }
        ffi::lua_pushlightuserdata(l, out.cast::<c_void>());
        ffi::lua_pushinteger(l, (len + 2) as ffi::lua_Integer);
    }
    2
}

/// `tostring(ptr, sz)` → string; frees `ptr` ("" for NULL).
#[lua_function]
unsafe extern "C-unwind" fn ltostring(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; the pointer is a malloc block given up by Lua code (as
    // upstream trusts); pushlstring may raise a memory error, then the block leaks (no UB).
    unsafe {
        let p = ffi::lua_touserdata(l, 1).cast::<u8>();
        let sz = ffi::luaL_checkinteger(l, 2);
        if p.is_null() {
            ffi::lua_pushstring(l, c"".as_ptr());
            return 1;
        }
        if ffi::lua_type(l, 1) != ffi::LUA_TLIGHTUSERDATA {
            raise_where(l, "netpack.tostring: light userdata expected".to_owned());
        }
        let Ok(n) = usize::try_from(sz) else {
            raise_where(l, format!("netpack.tostring: invalid size {sz}"));
        };
        ffi::lua_pushlstring(l, p.cast::<c_char>(), n);
        cmem::free(p);
    }
    1
}

/// `luaopen_skynet_netpack`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_netpack(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 4] = [
        (c"pop", lpop),
        (c"pack", lpack),
        (c"clear", lclear),
        (c"tostring", ltostring),
    ];
    // SAFETY: valid state.
    unsafe {
        new_lib(l, &FUNCS);
        // The order matches the UV_* constants.
        for s in [
            c"data", c"more", c"error", c"open", c"close", c"warning", c"init",
        ] {
            ffi::lua_pushstring(l, s.as_ptr());
        }
        ffi::lua_pushcclosure(l, lfilter, 7);
        ffi::lua_setfield(l, -2, c"filter".as_ptr());
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlua;

    /// `setlimits(queue, packets, bytes)`.
    #[lua_function]
    unsafe extern "C-unwind" fn setlimits(l: *mut lua_State) -> c_int {
        // SAFETY: test helper; argument 1 is a live queue.
        unsafe {
            let QueueArg::Queue(q) = queue_arg(l, 1) else {
                return ffi::luaL_error(l, c"queue expected".as_ptr());
            };
            (*q.as_ptr()).limits = Limits {
                max_packets: ffi::luaL_checkinteger(l, 2) as usize,
                max_bytes: ffi::luaL_checkinteger(l, 3) as usize,
            };
        }
        0
    }

    /// `pending(queue)` → packets, bytes, partial fds.
    #[lua_function]
    unsafe extern "C-unwind" fn pending(l: *mut lua_State) -> c_int {
        // SAFETY: test helper; argument 1 is a live queue.
        unsafe {
            let QueueArg::Queue(q) = queue_arg(l, 1) else {
                return ffi::luaL_error(l, c"queue expected".as_ptr());
            };
            let q = &*q.as_ptr();
            ffi::lua_pushinteger(l, q.packets.len() as ffi::lua_Integer);
            ffi::lua_pushinteger(l, q.pending_bytes as ffi::lua_Integer);
            ffi::lua_pushinteger(l, q.partial.len() as ffi::lua_Integer);
        }
        3
    }

    const PRELUDE: &str = r##"
DATA, CONNECT, CLOSE, ACCEPT, ERROR, UDP, WARNING = 1, 2, 3, 4, 5, 6, 7
function hdr(n) return string.char(n >> 8, n & 0xff) end
function frame(s) return hdr(#s) .. s end
-- feed one DATA message; returns the packed results of filter
function feed(q, fd, s)
    local m, sz = mkdata(fd, s)
    local r = table.pack(netpack.filter(q, m, sz))
    cfree(m)
    return r
end
function event(q, ty, id, ud, text)
    local m, sz = mkinline(ty, id, ud, text)
    local r = table.pack(netpack.filter(q, m, sz))
    cfree(m)
    return r
end
-- the string of a "data" result, freeing it
function take(r)
    assert(r[2] == "data", tostring(r[2]))
    return r[3], netpack.tostring(r[4], r[5])
end
function popall(q)
    local t = {}
    for fd, p, sz in netpack.pop, q do
        t[#t + 1] = fd .. ":" .. netpack.tostring(p, sz)
    end
    return table.concat(t, ",")
end
function expect_err(pat, f, ...)
    local ok, err = pcall(f, ...)
    assert(not ok, "expected an error matching " .. pat)
    assert(tostring(err):find(pat, 1, true), err)
end
"##;

    fn check(code: &str) {
        testlua::check(
            &[(c"netpack", luaopen_skynet_netpack)],
            &[(c"setlimits", setlimits), (c"pending", pending)],
            &format!("{PRELUDE}\n{code}"),
        );
    }

    #[test]
    fn framing_core_unit() {
        assert_eq!(frame(b"\x00\x03abc"), Some((2, 3)));
        assert_eq!(frame(b"\x00\x03ab"), None);
        assert_eq!(frame(b"\x00"), None);
        assert_eq!(scan(b"\x00\x01a\x00\x00\x00\x02b"), (2, 1));
        assert!(fits_without_queue(b""));
        assert!(fits_without_queue(b"\x00\x00"));
        assert!(!fits_without_queue(b"\x00\x00\x00"));
        assert!(!fits_without_queue(b"\x01"));
    }

    #[test]
    fn single_packet_needs_no_queue() {
        check(
            r##"
local r = feed(nil, 5, frame "abc")
assert(r.n == 5 and r[1] == nil)
local fd, s = take(r)
assert(fd == 5 and s == "abc")
-- an empty packet
r = feed(nil, 5, hdr(0))
assert(r.n == 5 and r[1] == nil and r[5] == 0)
assert(select(2, take(r)) == "")
-- empty DATA is ignored
r = feed(nil, 5, "")
assert(r.n == 1 and r[1] == nil)
"##,
        );
    }

    #[test]
    fn packet_split_into_one_byte_reads() {
        check(
            r##"
local msg = frame "hello, world"
local q
for i = 1, #msg - 1 do
    local r = feed(q, 9, msg:sub(i, i))
    assert(r.n == 1, i)
    assert(type(r[1]) == "userdata")
    assert(q == nil or q == r[1], "the queue keeps its identity")
    q = r[1]
    local np, nb, npart = pending(q)
    assert(np == 0 and npart == 1)
end
local r = feed(q, 9, msg:sub(-1))
assert(r.n == 5 and r[1] == q)
local fd, s = take(r)
assert(fd == 9 and s == "hello, world")
assert(select(3, pending(q)) == 0)
"##,
        );
    }

    #[test]
    fn several_packets_in_one_read() {
        check(
            r##"
local r = feed(nil, 3, frame "a" .. frame "bc" .. frame "" .. frame "def")
assert(r.n == 2 and type(r[1]) == "userdata" and r[2] == "more")
local q = r[1]
assert(pending(q) == 4)
assert(popall(q) == "3:a,3:bc,3:,3:def")
assert(netpack.pop(q) == nil)
assert(select("#", netpack.pop(q)) == 0)
-- complete packets followed by a partial one
r = feed(q, 3, frame "x" .. hdr(5) .. "he")
assert(r.n == 2 and r[2] == "more")
assert(popall(q) == "3:x")
local fd, s = take(feed(q, 3, "llo"))
assert(s == "hello")
-- a partial completed plus more packets, ending with half a header
r = feed(q, 3, hdr(3) .. "a")
assert(r.n == 1)
r = feed(q, 3, "bc" .. frame "y" .. "\0")
assert(r[2] == "more")
assert(popall(q) == "3:abc,3:y")
fd, s = take(feed(q, 3, "\2yz"))
assert(s == "yz")
"##,
        );
    }

    #[test]
    fn header_split_and_large_lengths() {
        check(
            r##"
local q = feed(nil, 1, "\0")[1]
assert(type(q) == "userdata")
local fd, s = take(feed(q, 1, "\3abc"))
assert(s == "abc")
-- high byte matters
local body = string.rep("z", 256)
assert(feed(q, 1, "\1").n == 1)
assert(feed(q, 1, "\0" .. body:sub(1, 100)).n == 1)
fd, s = take(feed(q, 1, body:sub(101)))
assert(s == body)
-- header byte alone, then a zero length
assert(feed(q, 1, "\0").n == 1)
fd, s = take(feed(q, 1, "\0"))
assert(s == "")
-- largest packet: in one read and in chunks of 1000
local big = {}
for i = 1, 65535 do big[i] = string.char(i % 251) end
big = table.concat(big)
fd, s = take(feed(q, 1, frame(big)))
assert(s == big)
local msg = frame(big)
for i = 1, #msg, 1000 do
    local r = feed(q, 1, msg:sub(i, i + 999))
    if i + 999 < #msg then assert(r.n == 1) else fd, s = take(r) end
end
assert(s == big and #s == 65535)
-- oversized claims are impossible: 0xffff is the most a header says, extra bytes are the next packet
local r = feed(q, 1, "\255\255" .. big .. "\0\1!")
assert(r[2] == "more")
local t = {}
for fd, p, sz in netpack.pop, q do t[#t + 1] = netpack.tostring(p, sz) end
assert(#t == 2 and t[1] == big and t[2] == "!")
"##,
        );
    }

    #[test]
    fn fds_are_independent() {
        check(
            r##"
local q = feed(nil, 1, hdr(4) .. "ab")[1]
assert(feed(q, 2, hdr(3) .. "x").n == 1)
assert(select(3, pending(q)) == 2)
local fd, s = take(feed(q, 2, "yz"))
assert(fd == 2 and s == "xyz")
fd, s = take(feed(q, 1, "cd"))
assert(fd == 1 and s == "abcd")
"##,
        );
    }

    #[test]
    fn close_and_error_drop_partial_packets() {
        check(
            r##"
local q = feed(nil, 7, hdr(5) .. "he")[1]
local r = event(q, CLOSE, 7, 0)
assert(r.n == 3 and r[1] == q and r[2] == "close" and r[3] == 7)
local fd, s = take(feed(q, 7, frame "ok"))
assert(s == "ok")
assert(feed(q, 7, hdr(5) .. "he").n == 1)
r = event(q, ERROR, 7, 0, "Connection reset by peer")
assert(r.n == 4 and r[2] == "error" and r[3] == 7 and r[4] == "Connection reset by peer")
fd, s = take(feed(q, 7, frame "ok"))
assert(s == "ok")
assert(select(3, pending(q)) == 0)
-- complete packets already queued stay deliverable after close
r = feed(q, 8, frame "a" .. frame "b" .. "\0")
assert(r[2] == "more")
event(q, CLOSE, 8, 0)
assert(popall(q) == "8:a,8:b")
-- without a queue
r = event(nil, CLOSE, 7, 0)
assert(r.n == 3 and r[1] == nil and r[2] == "close")
r = event(nil, ERROR, 7, 0)
assert(r.n == 4 and r[4] == "")
"##,
        );
    }

    #[test]
    fn other_events_pass_through() {
        check(
            r##"
local r = event(nil, ACCEPT, 3, 9, "127.0.0.1:5678")
assert(r.n == 4 and r[1] == nil and r[2] == "open" and r[3] == 9 and r[4] == "127.0.0.1:5678")
r = event(nil, CONNECT, 4, 8888, "0.0.0.0")
assert(r.n == 5 and r[2] == "init" and r[3] == 4 and r[4] == "0.0.0.0" and r[5] == 8888)
r = event(nil, CONNECT, 4, 0, "start")
assert(r[4] == "start" and r[5] == 0)
r = event(nil, WARNING, 5, 64)
assert(r.n == 4 and r[2] == "warning" and r[3] == 5 and r[4] == 64)
r = event(nil, UDP, 5, 0)
assert(r.n == 1 and r[1] == nil)
r = event(nil, 99, 5, 0)
assert(r.n == 1)
-- the queue is passed through too
local q = feed(nil, 1, "\0")[1]
r = event(q, WARNING, 1, 0)
assert(r[1] == q and r[4] == 0)
"##,
        );
    }

    #[test]
    fn pack_and_tostring() {
        check(
            r##"
local p, sz = netpack.pack("abc")
assert(sz == 5 and peek(p, sz) == "\0\3abc")
-- pack from a pointer; the source is not freed
local p2, sz2 = netpack.pack(p, sz)
assert(sz2 == 7 and peek(p2, sz2) == "\0\5\0\3abc")
cfree(p2)
assert(netpack.tostring(p, sz) == "\0\3abc")
p, sz = netpack.pack("")
assert(sz == 2 and netpack.tostring(p, sz) == "\0\0")
p, sz = netpack.pack(nullptr, 0)
assert(netpack.tostring(p, sz) == "\0\0")
local max = string.rep("m", 65535)
p, sz = netpack.pack(max)
assert(sz == 65537 and netpack.tostring(p, sz) == "\255\255" .. max)
expect_err("Invalid size (too long) of data : 65536", netpack.pack, max .. "x")
-- errors carry the calling Lua code's position, as luaL_error's do
local ok, e = pcall(function() netpack.pack(max .. "x") end)
assert(not ok and e:find("^test:%d+: Invalid size %(too long%) of data : 65536$"), e)
expect_err("Invalid size (too long) of data : -1", netpack.pack, nullptr, -1)
expect_err("Invalid size (too long) of data : 65536", netpack.pack, nullptr, 65536)
expect_err("NULL pointer", netpack.pack, nullptr, 3)
expect_err("exceeds the userdata", netpack.pack, io.stdout, 1000)
expect_err("number expected", netpack.pack, nullptr)
assert(netpack.tostring(nullptr, 10) == "")
assert(netpack.tostring("str", 3) == "")
expect_err("light userdata expected", netpack.tostring, io.stdout, 1)
p, sz = netpack.pack("x")
expect_err("invalid size -1", netpack.tostring, p, -1)
assert(netpack.tostring(p, sz) == "\0\1x")
-- pack output frames through filter
p, sz = netpack.pack("hi")
local framed = peek(p, sz)
cfree(p)
assert(select(2, take(feed(nil, 1, framed))) == "hi")
"##,
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_crash() {
        check(
            r##"
expect_err("socket message expected", netpack.filter, nil, nil, 24)
expect_err("socket message expected", netpack.filter, nil, nullptr, 24)
expect_err("socket message expected", netpack.filter, nil, "xx", 24)
local m, sz = mkinline(ERROR, 1, 0, "text")
expect_err("invalid socket message size 10", netpack.filter, nil, m, 10)
expect_err("number expected", netpack.filter, nil, m)
cfree(m)
-- a full userdata too small to be a message
expect_err("invalid socket message size", netpack.filter, nil, io.stdout, 24)
-- DATA without a buffer
m, sz = mkheap(DATA, 1, 10)
expect_err("DATA message without a buffer", netpack.filter, nil, m, sz)
cfree(m)
-- negative DATA size: the buffer is still released
m, sz = mkheap(DATA, 1, -5, "abc")
expect_err("invalid DATA size -5", netpack.filter, nil, m, sz)
cfree(m)
-- a foreign userdata as the queue
m, sz = mkdata(1, frame "x")
expect_err("netpack queue expected", netpack.filter, io.stdout, m, sz)
expect_err("netpack queue expected", netpack.filter, nullptr, m, sz)
local r = table.pack(netpack.filter(false, m, sz))
assert(r[2] == "data")
netpack.tostring(r[4], r[5])
cfree(m)
expect_err("netpack queue expected", netpack.pop, io.stdout)
expect_err("netpack queue expected", netpack.clear, nullptr)
assert(select("#", netpack.pop(nil)) == 0)
assert(select("#", netpack.pop()) == 0)
netpack.clear(nil)
"##,
        );
    }

    #[test]
    fn pending_limits() {
        check(
            r##"
local q = feed(nil, 1, "\0")[1]
take(feed(q, 1, "\0"))
setlimits(q, 3, 1000)
-- 3 packets fit
local r = feed(q, 1, frame "a" .. frame "b" .. frame "c")
assert(r[2] == "more")
assert(pending(q) == 3)
-- a fourth does not: the whole message is rejected, earlier packets stay
r = feed(q, 2, frame "d" .. frame "e" .. hdr(9) .. "partial")
assert(r.n == 4 and r[2] == "error" and r[3] == 2, tostring(r[2]))
assert(r[4] == "netpack: too many pending packets (limit 3 packets, 1000 bytes)", r[4])
assert(pending(q) == 3 and select(3, pending(q)) == 0)
-- later data for fd 2 is ignored until it closes; other fds still work
r = feed(q, 2, frame "f")
assert(r.n == 1)
local fd, s = take(feed(q, 3, frame "g"))
assert(fd == 3 and s == "g")
assert(popall(q) == "1:a,1:b,1:c")
event(q, CLOSE, 2, 0)
fd, s = take(feed(q, 2, frame "h"))
assert(fd == 2 and s == "h")
-- the byte limit; a partial packet that completes counts too
setlimits(q, 100, 10)
assert(feed(q, 4, hdr(6) .. "abc").n == 1)
r = feed(q, 4, "def" .. frame "12345")
assert(r[2] == "error" and r[3] == 4)
assert(select(3, pending(q)) == 0)
event(q, ERROR, 4, 0, "x")
r = feed(q, 4, frame "1234" .. frame "123456")
assert(r[2] == "more")
assert(popall(q) == "4:1234,4:123456")
-- clear frees everything
feed(q, 5, frame "a" .. frame "b" .. "\0\9abc")
netpack.clear(q)
assert(pending(q) == 0 and select(3, pending(q)) == 0)
assert(netpack.pop(q) == nil)
-- pending packets left in a queue are freed when it is collected
feed(q, 6, frame "a" .. frame "b" .. "\0\9abc")
q = nil
collectgarbage()
"##,
        );
    }

    #[test]
    fn random_splits_round_trip() {
        check(
            r##"
local seed = 12345
local function rnd(n) seed = (seed * 1103515245 + 12345) & 0x7fffffff return seed % n end
local q
for round = 1, 40 do
    -- a stream of packets on each of 3 fds, interleaved read by read
    local sent, streams = {}, {}
    for fd = 1, 3 do
        local parts, list = {}, {}
        for i = 1, rnd(30) + 1 do
            local n = ({0, 1, 2, 255, 256, 1000, 65535})[rnd(7) + 1]
            if rnd(3) == 0 then n = rnd(300) end
            local s = string.rep(string.char(65 + rnd(26)), n)
            list[#list + 1] = s
            parts[#parts + 1] = frame(s)
        end
        sent[fd] = list
        streams[fd] = {data = table.concat(parts), pos = 1}
    end
    local got = {{}, {}, {}}
    local function record(fd, s) local t = got[fd] t[#t + 1] = s end
    local live_fds = 3
    while live_fds > 0 do
        local fd = rnd(3) + 1
        local st = streams[fd]
        if st.pos <= #st.data then
            local n = ({1, 2, 3, 64, 4096, 100000})[rnd(6) + 1]
            local chunk = st.data:sub(st.pos, st.pos + n - 1)
            st.pos = st.pos + #chunk
            if st.pos > #st.data then live_fds = live_fds - 1 end
            local r = feed(q, fd, chunk)
            q = r[1] or q
            if r[2] == "data" then
                local f, s = take(r) record(f, s)
            elseif r[2] == "more" then
                for f, p, sz in netpack.pop, q do record(f, netpack.tostring(p, sz)) end
            else
                assert(r.n == 1)
            end
        end
    end
    for fd = 1, 3 do
        assert(#got[fd] == #sent[fd], round)
        for i, s in ipairs(sent[fd]) do assert(got[fd][i] == s) end
    end
end
"##,
        );
    }

    #[test]
    fn random_bytes_never_crash() {
        check(
            r##"
local seed = 777
local function rnd(n) seed = (seed * 1103515245 + 12345) & 0x7fffffff return seed % n end
local q
for i = 1, 3000 do
    local n = rnd(40)
    local b = {}
    for j = 1, n do b[j] = string.char(rnd(256)) end
    local fd = rnd(4)
    local r
    if rnd(10) == 0 then
        r = event(q, ({CLOSE, ERROR})[rnd(2) + 1], fd, 0)
    else
        r = feed(q, fd, table.concat(b))
    end
    q = r[1] or q
    if r[2] == "data" then take(r) elseif r[2] == "more" then popall(q) end
end
"##,
        );
    }
}
