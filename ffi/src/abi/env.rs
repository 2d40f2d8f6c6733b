//! `skynet_env.h`: the node environment (config keys and SETENV values).

use super::{cstr, guard};
use std::ffi::c_char;
use std::ptr;

/// The value of `key`, or NULL. The pointer stays valid for the life of the process.
///
/// # Safety
/// `key` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_getenv(key: *const c_char) -> *const c_char {
    guard("skynet_getenv", ptr::null(), || {
        // SAFETY: per the contract above.
        match unsafe { cstr(key) } {
            Some(k) => skynet_core::env::env()
                .get(&k)
                .map_or(ptr::null(), |v| v.as_ptr()),
            None => ptr::null(),
        }
    })
}

/// Sets a new key. Setting an existing key is refused with a log line (upstream aborts).
///
/// # Safety
/// `key` and `value` NULL or C strings.
#[no_mangle]
pub unsafe extern "C" fn skynet_setenv(key: *const c_char, value: *const c_char) {
    guard("skynet_setenv", (), || {
        // SAFETY: per the contract above.
        let (Some(k), Some(v)) = (unsafe { cstr(key) }, unsafe { cstr(value) }) else {
            return;
        };
        if let Err(e) = skynet_core::env::env().set(&k, &v) {
            match skynet_core::try_node() {
                Some(n) => n.log(0, e),
                None => eprintln!("{e}"),
            }
        }
    })
}

/// Kept for the header: the environment needs no initialisation.
#[no_mangle]
pub extern "C" fn skynet_env_init() {}
