//! `skynet_malloc.h`: modules allocate with the malloc family directly (the header maps
//! `skynet_malloc` and friends to the libc names, which the executable defines with per-service
//! accounting); the core exports only the helpers below.

use std::ffi::{c_char, c_void};

/// Lua-style allocator, charging no service: `nsize == 0` frees `ptr`, otherwise `realloc`.
///
/// A Lua heap is counted by its VM, not by the per-service C accounting; free these blocks
/// only through this function.
///
/// # Safety
/// `ptr` NULL or a block of this function.
#[no_mangle]
pub unsafe extern "C" fn skynet_lalloc(
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let _ = osize; // ignored, as upstream
    match skynet_core::memory::accounting() {
        // SAFETY: ptr is NULL or a block of this function per the contract (raw while the
        // accounting is installed, which it is for the process's whole life).
        Some(a) if nsize == 0 => unsafe { a.raw_free(ptr) },
        // SAFETY: as above, nsize > 0.
        Some(a) => return unsafe { a.raw_realloc(ptr, nsize) },
        // SAFETY: as above, a libc block without accounting.
        None if nsize == 0 => unsafe { libc::free(ptr) },
        // SAFETY: as above.
        None => return unsafe { libc::realloc(ptr, nsize) },
    }
    std::ptr::null_mut()
}

/// `strdup` with libc malloc (declared by v1.8.0's skynet_malloc.h).
///
/// # Safety
/// `s` a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_strdup(s: *const c_char) -> *mut c_char {
    if s.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: s is a C string per the contract; strdup allocates with malloc.
    unsafe { libc::strdup(s) }
}
