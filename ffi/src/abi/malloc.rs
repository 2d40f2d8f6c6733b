//! `skynet_malloc.h`: modules allocate with libc directly (the header maps `skynet_malloc` and
//! friends to the libc names); the core exports only the helpers below.

use std::ffi::{c_char, c_void};

/// Lua-style allocator: `nsize == 0` frees `ptr` and returns NULL, otherwise `realloc`.
///
/// # Safety
/// `ptr` NULL or a libc block.
#[no_mangle]
pub unsafe extern "C" fn skynet_lalloc(
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let _ = osize; // ignored, as upstream
    if nsize == 0 {
        // SAFETY: ptr is NULL or a libc block per the contract.
        unsafe { libc::free(ptr) };
        std::ptr::null_mut()
    } else {
        // SAFETY: as above.
        unsafe { libc::realloc(ptr, nsize) }
    }
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
