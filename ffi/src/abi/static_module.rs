//! `skynet_static.h`: C service modules linked into the program itself (libskynet).
//!
//! A module normally lives in a `.so` found through `cpath`; a program that links its modules
//! statically registers each one, before `skynet_start`, with the same four functions the
//! `.so` would export. LAUNCH then finds it by name like a built-in (before `cpath`, unless
//! `cpath_first` names it); a name of ours (`snlua`, `logger`, `gate`, `harbor`) is replaced.

use super::{cstr, guard};
use crate::cmodule::{self, Api};
use std::ffi::{c_char, c_int, c_void};

/// `NAME_create`: makes the instance (NULL refuses the launch).
pub type skynet_dl_create = Option<unsafe extern "C" fn() -> *mut c_void>;
/// `NAME_init`: 0 on success.
pub type skynet_dl_init = Option<
    unsafe extern "C" fn(
        inst: *mut c_void,
        ctx: *mut super::skynet::skynet_context,
        parm: *const c_char,
    ) -> c_int,
>;
/// `NAME_release`: frees the instance.
pub type skynet_dl_release = Option<unsafe extern "C" fn(inst: *mut c_void)>;
/// `NAME_signal`: must be thread-safe.
pub type skynet_dl_signal = Option<unsafe extern "C" fn(inst: *mut c_void, signal: c_int)>;

/// Registers module `name` before skynet_start (init required, others may be NULL): 0 or -1.
///
/// -1 (with a line on stderr) for a NULL or invalid name, a NULL `init`, or a call after the
/// node started. Registering a name again replaces the earlier functions.
///
/// # Safety
/// `name` NULL or a C string; the functions follow the module contract of `skynet.h`.
#[no_mangle]
pub unsafe extern "C" fn skynet_module_register_static(
    name: *const c_char,
    create: skynet_dl_create,
    init: skynet_dl_init,
    release: skynet_dl_release,
    signal: skynet_dl_signal,
) -> c_int {
    guard("skynet_module_register_static", -1, || {
        // SAFETY: per the contract above.
        let Some(name) = (unsafe { cstr(name) }) else {
            eprintln!("skynet_module_register_static: NULL name");
            return -1;
        };
        let Some(init) = init else {
            eprintln!("skynet_module_register_static: module {name} has no init function");
            return -1;
        };
        let api = Api {
            create,
            init,
            release,
            signal,
        };
        match cmodule::add_static(&name, api) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("skynet_module_register_static: {e}");
                -1
            }
        }
    })
}
