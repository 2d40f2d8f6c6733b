//! The process's malloc family, with per-service accounting on top of jemalloc.
//!
//! Every `malloc`, `calloc`, `realloc`, `free`, `memalign`, `aligned_alloc`, `posix_memalign`,
//! `valloc`, `pvalloc`, `reallocarray` and `malloc_usable_size` of the process (libc, the Rust
//! runtime through its system allocator, dlopened C modules) lands here, because the executable
//! defines them and exports them. Each block gets a 16-byte cookie right before the pointer
//! handed out:
//!
//! ```text
//! raw (from jemalloc)      user - 16                         user
//! |  padding (aligned only) | size: usize | handle: u32 | tag: u16 | lg_off: u8 | 0: u8 | data ...
//! ```
//!
//! `size` is the requested size, `handle` the service that was running when the block was made
//! (`skynet_current_handle`), `tag` marks a live block of ours, and `1 << lg_off` is the
//! distance from jemalloc's block to the user pointer (16, or the alignment when it is larger).
//! `free` charges the bytes back to the handle in the cookie, whichever thread frees.
//!
//! Counters: a fixed table of 65536 slots (handle, bytes), indexed by the handle's low 16 bits;
//! a handle that finds its slot taken by another one with bytes still charged goes uncounted
//! per service (it is still in the totals). A slot whose bytes fall to zero or below is taken
//! over by the next handle that maps to it. Totals live in per-thread counters (one cache line
//! per thread, written without read-modify-write; threads past the 63rd share one more), so
//! the hot path does one atomic addition, the slot's. No locks anywhere.
//!
//! A pointer whose cookie lacks the tag (never handed out here, or freed already) is not given
//! to jemalloc: it is left alone, and the first one is reported
//! on stderr (once per process). `SKYNET_MALLOC_STATS=0` in the environment turns the counters off (the cookies
//! stay, so blocks made before and after mix freely).

use skynet_core::memory::Accounting;
use skynet_core::server::current_handle;
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU32, AtomicUsize, Ordering::Relaxed};
use tikv_jemalloc_sys as je;

const SLOTS: usize = 0x10000;
const COOKIE: usize = 16;
const LG_COOKIE: u8 = 4;
const TAG_LIVE: u16 = 0x5c3b;
const TAG_FREED: u16 = 0xf4ee;
const STRIPES: usize = 63;

#[repr(C)]
#[derive(Clone, Copy)]
struct Cookie {
    size: usize,
    handle: u32,
    tag: u16,
    lg_off: u8,
    zero: u8,
}

const _: () = assert!(std::mem::size_of::<Cookie>() == COOKIE);

struct Slot {
    handle: AtomicU32,
    bytes: AtomicIsize,
}

#[repr(align(64))]
struct Stripe {
    bytes: AtomicIsize,
    blocks: AtomicIsize,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        handle: AtomicU32::new(0),
        bytes: AtomicIsize::new(0),
    }
}; SLOTS];
static TOTALS: [Stripe; STRIPES + 1] = [const {
    Stripe {
        bytes: AtomicIsize::new(0),
        blocks: AtomicIsize::new(0),
    }
}; STRIPES + 1];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(true);
static FOREIGN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // const-initialised, no destructor: a plain TLS slot, usable inside malloc.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Adds to this thread's totals. The first `STRIPES` threads own a stripe each, written
/// with plain loads and stores (only its thread writes it, any thread may read it); later
/// threads share the last one, with atomic additions.
#[inline]
fn add_totals(bytes: isize, blocks: isize) {
    let i = STRIPE.with(|s| {
        let i = s.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT_STRIPE.fetch_add(1, Relaxed).min(STRIPES);
        s.set(i);
        i
    });
    let t = &TOTALS[i];
    if i < STRIPES {
        t.bytes.store(t.bytes.load(Relaxed) + bytes, Relaxed);
        t.blocks.store(t.blocks.load(Relaxed) + blocks, Relaxed);
    } else {
        t.bytes.fetch_add(bytes, Relaxed);
        t.blocks.fetch_add(blocks, Relaxed);
    }
}

/// The slot counting `handle`, if it holds it (or could take it over).
#[inline]
fn slot(handle: u32) -> Option<&'static AtomicIsize> {
    let s = &TABLE[handle as usize & (SLOTS - 1)];
    let old_handle = s.handle.load(Relaxed);
    let old_bytes = s.bytes.load(Relaxed);
    // A slot already ours with nothing to clamp needs no compare-exchange: a service whose
    // blocks are all freed (a message sent and handled) sits at 0 and would otherwise pay
    // one at every allocation.
    if old_handle == handle && old_bytes >= 0 {
        return Some(&s.bytes);
    }
    if old_handle == 0 || old_bytes <= 0 {
        // Free blocks charged before the slot was taken can leave it below zero.
        if s.handle
            .compare_exchange(old_handle, handle, Relaxed, Relaxed)
            .is_err()
        {
            return None;
        }
        if old_bytes < 0 {
            let _ = s.bytes.compare_exchange(old_bytes, 0, Relaxed, Relaxed);
        }
    }
    (s.handle.load(Relaxed) == handle).then_some(&s.bytes)
}

#[inline]
fn count(handle: u32, bytes: isize, blocks: isize) {
    if !COUNTING.load(Relaxed) {
        return;
    }
    add_totals(bytes, blocks);
    if let Some(s) = slot(handle) {
        s.fetch_add(bytes, Relaxed);
    }
}

fn set_errno(e: c_int) {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
}

/// jemalloc flags for a block whose user pointer is `1 << lg_off` past jemalloc's.
#[inline]
fn flags(lg_off: u8) -> c_int {
    if lg_off > LG_COOKIE {
        je::MALLOCX_LG_ALIGN(lg_off as usize)
    } else {
        0
    }
}

/// Writes the cookie of a new block of `size` bytes at `raw` and returns the user pointer.
///
/// # Safety
/// `raw` is a jemalloc block of `size + (1 << lg_off)` bytes aligned to `1 << lg_off`.
#[inline]
unsafe fn fill(raw: *mut c_void, size: usize, lg_off: u8) -> *mut c_void {
    let handle = current_handle();
    // SAFETY: the block has `1 << lg_off >= 16` bytes before the user pointer.
    let user = unsafe { (raw as *mut u8).add(1 << lg_off) };
    // SAFETY: as above; the cookie is 8-aligned (user is 16-aligned).
    unsafe {
        (user.sub(COOKIE) as *mut Cookie).write(Cookie {
            size,
            handle,
            tag: TAG_LIVE,
            lg_off,
            zero: 0,
        })
    };
    count(handle, size as isize, 1);
    user as *mut c_void
}

/// The cookie of a live block of ours, `None` for any other pointer.
///
/// # Safety
/// `ptr` is a non-NULL pointer handed to the malloc family.
#[inline]
unsafe fn cookie(ptr: *mut c_void) -> Option<Cookie> {
    // SAFETY: every block of ours has its cookie right before it; a foreign pointer is
    // at least the start of some heap block with its allocator's header before it.
    let c = unsafe { ((ptr as *const u8).sub(COOKIE) as *const Cookie).read() };
    (c.tag == TAG_LIVE && c.lg_off >= LG_COOKIE && c.lg_off < 64 && c.zero == 0).then_some(c)
}

#[cold]
fn foreign(ptr: *mut c_void) {
    if FOREIGN.fetch_add(1, Relaxed) == 0 {
        let msg = b"skynet: free of a block this allocator did not hand out (or freed twice); left alone\n";
        // SAFETY: writing a static buffer to stderr; no allocation.
        unsafe { libc::write(2, msg.as_ptr() as *const c_void, msg.len()) };
    }
    let _ = ptr;
}

/// `1 << lg` bytes at least `align` and the cookie: the offset for an aligned block.
fn lg_offset(align: usize) -> u8 {
    (align.max(COOKIE).trailing_zeros()) as u8
}

#[inline]
unsafe fn alloc(size: usize, lg_off: u8, zero: bool) -> *mut c_void {
    let Some(total) = size.checked_add(1 << lg_off) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // jemalloc's malloc has a fast path that mallocx lacks: the common case takes it.
    let raw = if lg_off == LG_COOKIE && !zero {
        // SAFETY: total > 0; 16-byte aligned as every jemalloc block of 16 bytes or more.
        unsafe { je::malloc(total) }
    } else {
        let f = flags(lg_off) | if zero { je::MALLOCX_ZERO } else { 0 };
        // SAFETY: total > 0.
        unsafe { je::mallocx(total, f) }
    };
    if raw.is_null() {
        set_errno(libc::ENOMEM);
        return raw;
    }
    // SAFETY: raw has total bytes, aligned as flags asked.
    unsafe { fill(raw, size, lg_off) }
}

/// # Safety
/// C's `malloc`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: plain allocation.
    unsafe { alloc(size, LG_COOKIE, false) }
}

/// # Safety
/// C's `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: plain allocation.
        Some(total) => unsafe { alloc(total, LG_COOKIE, true) },
        None => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// C's `free`.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: a pointer handed to free.
    let Some(c) = (unsafe { cookie(ptr) }) else {
        return foreign(ptr);
    };
    // SAFETY: a live block of ours: mark it freed (a second free then finds no tag).
    unsafe { (*((ptr as *mut u8).sub(COOKIE) as *mut Cookie)).tag = TAG_FREED };
    count(c.handle, -(c.size as isize), -1);
    let off = 1usize << c.lg_off;
    // SAFETY: jemalloc's block, with the size and alignment it was made with.
    unsafe {
        je::sdallocx(
            (ptr as *mut u8).sub(off) as *mut c_void,
            c.size + off,
            flags(c.lg_off),
        )
    };
}

/// # Safety
/// C's `realloc` (glibc's: size 0 frees and answers NULL).
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: plain allocation.
        return unsafe { malloc(size) };
    }
    if size == 0 {
        // SAFETY: a pointer handed to realloc.
        unsafe { free(ptr) };
        return std::ptr::null_mut();
    }
    // SAFETY: a pointer handed to realloc.
    let Some(c) = (unsafe { cookie(ptr) }) else {
        foreign(ptr);
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    let off = 1usize << c.lg_off;
    let Some(total) = size.checked_add(off) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: jemalloc's block of ours; rallocx keeps the alignment the flags name.
    let raw = unsafe {
        je::rallocx(
            (ptr as *mut u8).sub(off) as *mut c_void,
            total,
            flags(c.lg_off),
        )
    };
    if raw.is_null() {
        set_errno(libc::ENOMEM);
        return raw;
    }
    count(c.handle, -(c.size as isize), -1);
    // SAFETY: raw has total bytes with the same offset.
    unsafe { fill(raw, size, c.lg_off) }
}

/// # Safety
/// glibc's `reallocarray`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: as realloc.
        Some(total) => unsafe { realloc(ptr, total) },
        None => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// glibc's `memalign` (an alignment that is no power of two is rounded up to one).
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(align) = align.checked_next_power_of_two() else {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    };
    // SAFETY: aligned allocation.
    unsafe { alloc(size, lg_offset(align), false) }
}

/// # Safety
/// C's `aligned_alloc` (the alignment must be a power of two).
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: aligned allocation.
    unsafe { alloc(size, lg_offset(align), false) }
}

/// # Safety
/// POSIX `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align % std::mem::size_of::<*mut c_void>() != 0 {
        return libc::EINVAL;
    }
    // SAFETY: errno is this thread's.
    let e = unsafe { *libc::__errno_location() };
    // SAFETY: aligned allocation.
    let p = unsafe { alloc(size, lg_offset(align), false) };
    // posix_memalign reports through its result, errno stays as it was.
    set_errno(e);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: out is valid per the contract.
    unsafe { *out = p };
    0
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// # Safety
/// glibc's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: aligned allocation.
    unsafe { alloc(size, lg_offset(page()), false) }
}

/// # Safety
/// glibc's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let p = page();
    let Some(rounded) = size.max(1).checked_next_multiple_of(p) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: aligned allocation.
    unsafe { alloc(rounded, lg_offset(p), false) }
}

/// # Safety
/// glibc's `malloc_usable_size`.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: a pointer handed to the malloc family.
    let Some(c) = (unsafe { cookie(ptr) }) else {
        return 0;
    };
    let off = 1usize << c.lg_off;
    // SAFETY: jemalloc's block of ours.
    let usable =
        unsafe { je::sallocx((ptr as *mut u8).sub(off) as *const c_void, flags(c.lg_off)) };
    usable.saturating_sub(off)
}

/// # Safety
/// C23's `free_sized`.
#[no_mangle]
pub unsafe extern "C" fn free_sized(ptr: *mut c_void, _size: usize) {
    // SAFETY: as free.
    unsafe { free(ptr) }
}

/// # Safety
/// C23's `free_aligned_sized`.
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(ptr: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: as free.
    unsafe { free(ptr) }
}

/// Bytes charged to `handle`, as upstream's `malloc_current_memory` answers.
pub fn service_bytes(handle: u32) -> usize {
    let s = &TABLE[handle as usize & (SLOTS - 1)];
    if s.handle.load(Relaxed) == handle {
        s.bytes.load(Relaxed).max(0) as usize
    } else {
        0
    }
}

struct Jemalloc;

static JEMALLOC: Jemalloc = Jemalloc;

fn mallctl<T: Copy + Default>(name: &CStr, new: Option<T>) -> Option<T> {
    let mut old = T::default();
    let mut len = std::mem::size_of::<T>();
    let mut newv = new.unwrap_or_default();
    let (np, nl) = match new {
        Some(_) => (&mut newv as *mut T as *mut c_void, std::mem::size_of::<T>()),
        None => (std::ptr::null_mut(), 0),
    };
    // SAFETY: old/new point to values of the size given; jemalloc checks the name's type by
    // its length.
    let r = unsafe {
        je::mallctl(
            name.as_ptr(),
            &mut old as *mut T as *mut c_void,
            &mut len,
            np,
            nl,
        )
    };
    (r == 0).then_some(old)
}

impl Accounting for Jemalloc {
    fn total(&self) -> usize {
        TOTALS
            .iter()
            .map(|s| s.bytes.load(Relaxed))
            .sum::<isize>()
            .max(0) as usize
    }

    fn blocks(&self) -> usize {
        TOTALS
            .iter()
            .map(|s| s.blocks.load(Relaxed))
            .sum::<isize>()
            .max(0) as usize
    }

    fn service(&self, handle: u32) -> usize {
        service_bytes(handle)
    }

    fn services(&self) -> Vec<(u32, isize)> {
        TABLE
            .iter()
            .filter_map(|s| {
                let h = s.handle.load(Relaxed);
                let b = s.bytes.load(Relaxed);
                (h != 0 && b != 0).then_some((h, b))
            })
            .collect()
    }

    fn mallctl_size(&self, name: &CStr, new: Option<usize>) -> Option<usize> {
        mallctl(name, new)
    }

    fn mallctl_bool(&self, name: &CStr, new: Option<bool>) -> Option<bool> {
        mallctl(name, new)
    }

    fn mallctl_cmd(&self, name: &CStr) -> i32 {
        // SAFETY: a command takes no values.
        unsafe {
            je::mallctl(
                name.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        }
    }

    fn stats_print(&self, opts: Option<&CStr>) {
        // SAFETY: no callback: jemalloc writes to stderr; opts NULL or a C string.
        unsafe {
            je::malloc_stats_print(
                None,
                std::ptr::null_mut(),
                opts.map_or(std::ptr::null(), CStr::as_ptr),
            )
        };
    }

    unsafe fn raw_realloc(&self, ptr: *mut c_void, new: usize) -> *mut c_void {
        // The malloc/free entry points, not mallocx/dallocx: only they take jemalloc's fast
        // path (thread cache, no option parsing), which a Lua heap hits for every object.
        if ptr.is_null() {
            // SAFETY: new > 0 per the contract.
            unsafe { je::malloc(new) }
        } else {
            // SAFETY: ptr is a raw block per the contract.
            unsafe { je::rallocx(ptr, new, 0) }
        }
    }

    unsafe fn raw_free(&self, ptr: *mut c_void) {
        // SAFETY: ptr is NULL or a raw block per the contract (free takes NULL).
        unsafe { je::free(ptr) }
    }

    unsafe fn raw_free_sized(&self, ptr: *mut c_void, size: usize) {
        if ptr.is_null() {
            return;
        }
        if size == 0 {
            // Lua itself always passes the block's size; a C module freeing through
            // `lua_getallocf` with osize 0 has not, and gets the unsized free.
            // SAFETY: ptr is a raw block per the contract.
            return unsafe { je::free(ptr) };
        }
        // SAFETY: ptr is a raw block last requested with `size` bytes per the contract,
        // which is what sized deallocation asks (it then needs no size-class lookup).
        unsafe { je::sdallocx(ptr, size, 0) }
    }
}

/// Installs the accounting for the library code, unless `SKYNET_MALLOC_STATS=0` turned the
/// counters off (then `skynet.memory` reports the Lua heaps, as without this allocator).
pub fn init() {
    if std::env::var_os("SKYNET_MALLOC_STATS").is_some_and(|v| v == "0") {
        COUNTING.store(false, Relaxed);
        return;
    }
    skynet_core::memory::install(&JEMALLOC);
}
