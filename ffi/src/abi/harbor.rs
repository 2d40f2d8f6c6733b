//! `skynet_harbor.h`: the hand-off between the core and the harbor service.

use super::skynet::skynet_context;
use super::{context, guard};
use skynet_core::{try_node, Payload};
use std::ffi::{c_char, c_int, c_void};

/// Bytes of a global name.
pub const GLOBALNAME_LENGTH: usize = 16;
/// Most harbors (nodes) in one network.
pub const REMOTE_MAX: usize = 256;

/// A remote destination: a global name or a handle.
#[repr(C)]
pub struct remote_name {
    pub name: [c_char; GLOBALNAME_LENGTH],
    pub handle: u32,
}

/// What the core hands to the harbor service (as a PTYPE_SYSTEM payload).
#[repr(C)]
pub struct remote_message {
    pub destination: remote_name,
    pub message: *const c_void,
    pub sz: usize,
    pub r#type: c_int,
}

/// Called by the harbor service's init with its own context: it becomes the remote-message sink.
///
/// The service then stays alive until shutdown and no longer counts as a live service.
///
/// # Safety
/// `ctx` is the calling service's own context.
#[no_mangle]
pub unsafe extern "C" fn skynet_harbor_start(ctx: *mut c_void) {
    guard("skynet_harbor_start", (), || {
        // SAFETY: per the contract above.
        let (Some(node), Some(c)) = (try_node(), unsafe { context(ctx as *mut skynet_context) })
        else {
            return;
        };
        if let Some(arc) = node.grab(c.handle()) {
            node.harbor_start(arc);
        }
    })
}

/// Queues a remote message to the harbor service, which takes the struct and its `message`.
///
/// Both are libc blocks: ownership passes to the harbor service.
///
/// # Safety
/// `rmsg` is a libc-malloc'd `remote_message` given up by the caller.
#[no_mangle]
pub unsafe extern "C" fn skynet_harbor_send(
    rmsg: *mut remote_message,
    source: u32,
    session: c_int,
) {
    guard("skynet_harbor_send", (), || {
        let size = std::mem::size_of::<remote_message>();
        // SAFETY: the caller gives up a libc block of `size` bytes.
        let block = unsafe { Payload::from_raw(rmsg as *mut u8, size) };
        match try_node() {
            Some(node) if node.harbor_send(block, source, session) => {}
            Some(node) => node.log(
                source,
                "error: no harbor service for a remote message; dropped",
            ),
            None => {}
        }
    })
}

/// 1 iff the handle belongs to another node.
#[no_mangle]
pub extern "C" fn skynet_harbor_message_isremote(handle: u32) -> c_int {
    try_node().is_some_and(|n| n.is_remote(handle)) as c_int
}

/// Kept for the header: the harbor id is set from the config at start.
#[no_mangle]
pub extern "C" fn skynet_harbor_init(harbor: c_int) {
    let _ = harbor;
}

/// Releases the harbor service (done by the core at shutdown).
#[no_mangle]
pub extern "C" fn skynet_harbor_exit() {
    if let Some(n) = try_node() {
        n.harbor_exit();
    }
}
