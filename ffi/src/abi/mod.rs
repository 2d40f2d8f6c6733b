//! The exported C ABI. One file per upstream header; `include/*.h` is generated from them.
#![allow(non_camel_case_types, dead_code)]
//!
//! Every entry point catches panics (none may unwind into C) and logs them.

pub mod env;
pub mod harbor;
pub mod malloc;
pub mod skynet;

use skynet_core::Context;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into a logged error and `default`.
pub(crate) fn guard<R>(what: &str, default: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            let why = skynet_core::server::panic_text(&*e);
            let text = format!("error: panic in {what}: {why}");
            match skynet_core::try_node() {
                Some(n) => n.log(0, text),
                None => eprintln!("{text}"),
            }
            default
        }
    }
}

/// The context behind a C `struct skynet_context *`.
///
/// # Safety
/// `p` must be NULL or a pointer the core handed to a module for a service that is still
/// registered or being dispatched (modules only ever hold their own context).
pub(crate) unsafe fn context<'a>(p: *mut skynet::skynet_context) -> Option<&'a Context> {
    // SAFETY: per the contract the pointer is an `Arc<Context>`'s pointee that outlives the call.
    unsafe { (p as *const Context).as_ref() }
}

/// The C view of a context.
pub(crate) fn context_ptr(ctx: &Context) -> *mut skynet::skynet_context {
    ctx as *const Context as *mut skynet::skynet_context
}

/// A C string argument as text (lossy), `None` for NULL.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated per the contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy())
    }
}
