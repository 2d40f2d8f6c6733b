//! The exported C ABI. One file per upstream header; `include/*.h` is generated from them.
#![allow(non_camel_case_types, dead_code)]
//!
//! Every entry point catches panics (none may unwind into C) and logs them.

pub mod env;
pub mod harbor;
pub mod imp;
pub mod malloc;
pub mod skynet;
pub mod socket;
pub mod static_module;

use skynet_core::Context;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

// The header constants are literals (cbindgen cannot evaluate paths); they must agree with the
// core's and with upstream's layouts.
const _: () = {
    use skynet_core::{ptype, server};
    use std::mem::{offset_of, size_of};
    assert!(skynet::PTYPE_TEXT == ptype::TEXT);
    assert!(skynet::PTYPE_RESPONSE == ptype::RESPONSE);
    assert!(skynet::PTYPE_MULTICAST == ptype::MULTICAST);
    assert!(skynet::PTYPE_CLIENT == ptype::CLIENT);
    assert!(skynet::PTYPE_SYSTEM == ptype::SYSTEM);
    assert!(skynet::PTYPE_HARBOR == ptype::HARBOR);
    assert!(skynet::PTYPE_SOCKET == ptype::SOCKET);
    assert!(skynet::PTYPE_ERROR == ptype::ERROR);
    assert!(skynet::PTYPE_RESERVED_QUEUE == ptype::RESERVED_QUEUE);
    assert!(skynet::PTYPE_RESERVED_DEBUG == ptype::RESERVED_DEBUG);
    assert!(skynet::PTYPE_RESERVED_LUA == ptype::RESERVED_LUA);
    assert!(skynet::PTYPE_RESERVED_SNAX == ptype::RESERVED_SNAX);
    assert!(skynet::PTYPE_TAG_DONTCOPY == server::PTYPE_TAG_DONTCOPY);
    assert!(skynet::PTYPE_TAG_ALLOCSESSION == server::PTYPE_TAG_ALLOCSESSION);
    assert!(harbor::GLOBALNAME_LENGTH == skynet_core::harbor::GLOBALNAME_LENGTH);
    {
        use skynet_core::socket_server::{event, info_type, SOCKET_MESSAGE_SIZE};
        assert!(socket::SKYNET_SOCKET_TYPE_DATA == event::DATA);
        assert!(socket::SKYNET_SOCKET_TYPE_CONNECT == event::CONNECT);
        assert!(socket::SKYNET_SOCKET_TYPE_CLOSE == event::CLOSE);
        assert!(socket::SKYNET_SOCKET_TYPE_ACCEPT == event::ACCEPT);
        assert!(socket::SKYNET_SOCKET_TYPE_ERROR == event::ERROR);
        assert!(socket::SKYNET_SOCKET_TYPE_UDP == event::UDP);
        assert!(socket::SKYNET_SOCKET_TYPE_WARNING == event::WARNING);
        assert!(socket::SOCKET_INFO_UNKNOWN == info_type::UNKNOWN);
        assert!(socket::SOCKET_INFO_LISTEN == info_type::LISTEN);
        assert!(socket::SOCKET_INFO_TCP == info_type::TCP);
        assert!(socket::SOCKET_INFO_UDP == info_type::UDP);
        assert!(socket::SOCKET_INFO_BIND == info_type::BIND);
        assert!(socket::SOCKET_INFO_CLOSING == info_type::CLOSING);
        #[cfg(target_pointer_width = "64")]
        assert!(size_of::<socket::skynet_socket_message>() == SOCKET_MESSAGE_SIZE);
    }
    #[cfg(target_pointer_width = "64")]
    {
        assert!(offset_of!(socket::skynet_socket_message, ud) == 8);
        assert!(offset_of!(socket::skynet_socket_message, buffer) == 16);
        assert!(size_of::<socket::socket_sendbuffer>() == 24);
        assert!(offset_of!(socket::socket_sendbuffer, buffer) == 8);
        assert!(offset_of!(socket::socket_sendbuffer, sz) == 16);
        assert!(size_of::<socket::socket_info>() == 200);
        assert!(offset_of!(socket::socket_info, opaque) == 8);
        assert!(offset_of!(socket::socket_info, wbuffer) == 48);
        assert!(offset_of!(socket::socket_info, reading) == 56);
        assert!(offset_of!(socket::socket_info, writing) == 57);
        assert!(offset_of!(socket::socket_info, name) == 58);
        assert!(offset_of!(socket::socket_info, next) == 192);
        assert!(size_of::<imp::skynet_config>() == 56);
        assert!(offset_of!(imp::skynet_config, daemon) == 16);
        assert!(offset_of!(imp::skynet_config, logservice) == 48);
        assert!(size_of::<harbor::remote_name>() == 20);
        assert!(offset_of!(harbor::remote_name, handle) == 16);
        assert!(size_of::<harbor::remote_message>() == 48);
        assert!(offset_of!(harbor::remote_message, message) == 24);
        assert!(offset_of!(harbor::remote_message, sz) == 32);
        assert!(offset_of!(harbor::remote_message, r#type) == 40);
    }
};

/// Runs `f`, turning a panic into a logged error and `default`.
#[inline]
pub(crate) fn guard<R>(what: &str, default: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            report_panic(what, e);
            default
        }
    }
}

/// [`guard`]'s panic branch, out of line: the guarded call saves no registers for it.
#[cold]
#[inline(never)]
fn report_panic(what: &str, e: Box<dyn std::any::Any + Send>) {
    let why = skynet_core::server::panic_text(&*e);
    let text = format!("error: panic in {what}: {why}");
    match skynet_core::try_node() {
        Some(n) => n.log(0, text),
        None => eprintln!("{text}"),
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
