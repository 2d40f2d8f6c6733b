//! The PTYPE_SOCKET message as Lua modules receive it:
//! `struct skynet_socket_message { int type; int id; int ud; char *buffer; }` (24 bytes on LP64),
//! followed by inline text when `buffer` is NULL (its length is the message size − 24).

use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;

pub const SKYNET_SOCKET_TYPE_DATA: c_int = 1;
pub const SKYNET_SOCKET_TYPE_CONNECT: c_int = 2;
pub const SKYNET_SOCKET_TYPE_CLOSE: c_int = 3;
pub const SKYNET_SOCKET_TYPE_ACCEPT: c_int = 4;
pub const SKYNET_SOCKET_TYPE_ERROR: c_int = 5;
pub const SKYNET_SOCKET_TYPE_UDP: c_int = 6;
pub const SKYNET_SOCKET_TYPE_WARNING: c_int = 7;

/// `struct skynet_socket_message`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SkynetSocketMessage {
    pub ty: c_int,
    pub id: c_int,
    pub ud: c_int,
    pub buffer: *mut c_char,
}

/// Size of the fixed part; inline text starts right after it.
pub const HEADER_SIZE: usize = size_of::<SkynetSocketMessage>();
const _: () = assert!(HEADER_SIZE == 24);

/// UDP address record protocol bytes.
pub const PROTOCOL_UDP: u8 = 1;
pub const PROTOCOL_UDPV6: u8 = 2;

/// Where a message's payload lives.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// `buffer` is NULL: the text after the header (possibly empty).
    Inline(&'a [u8]),
    /// `buffer` is a separate `malloc` block (DATA/UDP: owned by the receiver).
    Heap(*mut u8),
}

/// A decoded socket message.
#[derive(Clone, Copy, Debug)]
pub struct SocketEvent<'a> {
    pub ty: c_int,
    pub id: c_int,
    pub ud: c_int,
    pub payload: Payload<'a>,
}

/// Why a value is not a usable socket message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadMessage {
    /// No pointer (nil, a string, a NULL light userdata...).
    Null,
    /// The size is smaller than the header.
    TooSmall(i64),
}

impl BadMessage {
    /// The error text, prefixed with the calling function's name.
    pub fn describe(self, func: &str) -> String {
        match self {
            BadMessage::Null => format!("{func}: socket message expected"),
            BadMessage::TooSmall(sz) => format!("{func}: invalid socket message size {sz}"),
        }
    }
}

/// Decodes the message at `msg` of `sz` bytes (the PTYPE_SOCKET payload and its size).
///
/// `avail` is the number of bytes known to be readable at `msg` when that is known (a full
/// userdata), `None` for a light userdata whose size the caller vouches for.
///
/// # Safety
/// `msg` is NULL or points to a socket message readable for `avail` bytes (or, when `avail` is
/// `None`, for `sz` bytes); the result borrows that memory.
pub unsafe fn decode<'a>(
    msg: *const c_void,
    sz: i64,
    avail: Option<usize>,
) -> Result<SocketEvent<'a>, BadMessage> {
    if msg.is_null() {
        return Err(BadMessage::Null);
    }
    if avail.is_some_and(|a| a < HEADER_SIZE) {
        return Err(BadMessage::TooSmall(sz));
    }
    // SAFETY: at least HEADER_SIZE bytes are readable (caller contract / checked); the block may
    // not be aligned for the struct, hence read_unaligned.
    let m = unsafe { std::ptr::read_unaligned(msg.cast::<SkynetSocketMessage>()) };
    let payload = if m.buffer.is_null() {
        let len = usize::try_from(sz)
            .ok()
            .and_then(|s| s.checked_sub(HEADER_SIZE))
            .ok_or(BadMessage::TooSmall(sz))?;
        let len = avail.map_or(len, |a| len.min(a - HEADER_SIZE));
        // SAFETY: the inline text is `len` bytes after the header inside the message.
        Payload::Inline(unsafe {
            std::slice::from_raw_parts(msg.cast::<u8>().add(HEADER_SIZE), len)
        })
    } else {
        Payload::Heap(m.buffer.cast())
    };
    Ok(SocketEvent {
        ty: m.ty,
        id: m.id,
        ud: m.ud,
        payload,
    })
}

/// The sender address of a UDP message: the 7 (IPv4) or 19 (IPv6) bytes that follow the
/// `ud`-byte datagram in the heap buffer, or `None` if the record's protocol byte is neither.
///
/// # Safety
/// `ev` is a UDP event from the socket layer: its heap buffer holds the datagram followed by the
/// address record.
pub unsafe fn udp_address<'a>(ev: &SocketEvent<'a>) -> Option<&'a [u8]> {
    if ev.ty != SKYNET_SOCKET_TYPE_UDP {
        return None;
    }
    let Payload::Heap(buf) = ev.payload else {
        return None;
    };
    let off = usize::try_from(ev.ud).ok()?;
    // SAFETY: the address record starts right after the datagram (caller contract).
    let addr = unsafe { buf.add(off) };
    // SAFETY: its first byte is the protocol.
    let n = match unsafe { *addr } {
        PROTOCOL_UDP => 1 + 2 + 4,
        PROTOCOL_UDPV6 => 1 + 2 + 16,
        _ => return None,
    };
    // SAFETY: a record of that protocol is `n` bytes long.
    Some(unsafe { std::slice::from_raw_parts(addr, n) })
}

/// Test helpers: socket messages built the way the socket layer builds them.
#[cfg(test)]
pub mod build {
    use super::*;
    use crate::cmem;

    /// The 24 header bytes (padding zeroed).
    fn header(ty: c_int, id: c_int, ud: c_int, buffer: *mut u8) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[0..4].copy_from_slice(&ty.to_ne_bytes());
        h[4..8].copy_from_slice(&id.to_ne_bytes());
        h[8..12].copy_from_slice(&ud.to_ne_bytes());
        h[16..24].copy_from_slice(&(buffer as usize).to_ne_bytes());
        h
    }

    /// A heap-form message (DATA/UDP/CLOSE/WARNING) as a malloc block, and its size (24).
    pub fn heap(ty: c_int, id: c_int, ud: c_int, buffer: *mut u8) -> (*mut c_void, usize) {
        (
            cmem::malloc_copy(&header(ty, id, ud, buffer)).cast(),
            HEADER_SIZE,
        )
    }

    /// An inline-form message (CONNECT/ACCEPT/ERROR) with `text` after the header.
    pub fn inline(ty: c_int, id: c_int, ud: c_int, text: &[u8]) -> (*mut c_void, usize) {
        let mut v = header(ty, id, ud, std::ptr::null_mut()).to_vec();
        v.extend_from_slice(text);
        (cmem::malloc_copy(&v).cast(), v.len())
    }

    /// A DATA message carrying a malloc'd copy of `data`.
    pub fn data(id: c_int, data: &[u8]) -> (*mut c_void, usize) {
        heap(
            SKYNET_SOCKET_TYPE_DATA,
            id,
            data.len() as c_int,
            cmem::malloc_copy(data),
        )
    }
}
