//! The process's C memory accounting, as the executable provides it.
//!
//! The `skynet` executable replaces the malloc family with one that charges every block to the
//! service that allocated it (see the ffi crate). It installs itself here at start, so library
//! code (`skynet.memory`, snlua's Lua allocator) reaches it without linking the executable.
//! Without an installed accounting (unit tests, a library build), [`accounting`] is `None`.

use std::ffi::{c_void, CStr};
use std::sync::OnceLock;

/// What the executable's allocator answers.
pub trait Accounting: Sync {
    /// Bytes of live blocks of the whole process (requested sizes).
    fn total(&self) -> usize;
    /// Live blocks of the whole process.
    fn blocks(&self) -> usize;
    /// Bytes charged to `handle` (0 if it owns no slot of the table).
    fn service(&self, handle: u32) -> usize;
    /// Every (handle, bytes) of the table with nonzero bytes.
    fn services(&self) -> Vec<(u32, isize)>;
    /// jemalloc's `mallctl` of a `size_t` value, writing `new` if given; the old value, `None`
    /// if the name is unknown or not of that type.
    fn mallctl_size(&self, name: &CStr, new: Option<usize>) -> Option<usize>;
    /// jemalloc's `mallctl` of a `bool` value, writing `new` if given; the old value.
    fn mallctl_bool(&self, name: &CStr, new: Option<bool>) -> Option<bool>;
    /// jemalloc's `mallctl` command without value (`prof.dump`); its error code.
    fn mallctl_cmd(&self, name: &CStr) -> i32;
    /// jemalloc's statistics report to stderr.
    fn stats_print(&self, opts: Option<&CStr>);
    /// Allocation outside the per-service accounting (Lua heaps, which snlua counts itself):
    /// `realloc` semantics with `new > 0`.
    ///
    /// # Safety
    /// `ptr` is NULL or a block of this function.
    unsafe fn raw_realloc(&self, ptr: *mut c_void, new: usize) -> *mut c_void;
    /// Frees a block of [`Accounting::raw_realloc`].
    ///
    /// # Safety
    /// `ptr` is NULL or a live block of [`Accounting::raw_realloc`].
    unsafe fn raw_free(&self, ptr: *mut c_void);
    /// Frees a block of [`Accounting::raw_realloc`] whose size the caller knows (a Lua heap's
    /// `osize`), which lets the allocator skip looking the size up.
    ///
    /// # Safety
    /// `ptr` is NULL or a live block of [`Accounting::raw_realloc`], last requested with
    /// `size` bytes, or `size` is 0 (unknown).
    unsafe fn raw_free_sized(&self, ptr: *mut c_void, size: usize) {
        let _ = size;
        // SAFETY: the contract of raw_free is part of this one.
        unsafe { self.raw_free(ptr) }
    }
}

static ACCOUNTING: OnceLock<&'static dyn Accounting> = OnceLock::new();

/// Installs the process's accounting (once, before any service starts). `false` if one was
/// installed already.
pub fn install(a: &'static dyn Accounting) -> bool {
    ACCOUNTING.set(a).is_ok()
}

/// The installed accounting, if any.
#[inline]
pub fn accounting() -> Option<&'static dyn Accounting> {
    ACCOUNTING.get().copied()
}
