//! `skynet.mongo.driver` (upstream lualib-src/lua-mongo.c): the OP_MSG framing used by
//! `skynet.db.mongo`. `reply(str)` checks a server reply and points at its single document,
//! `length(4 bytes)` reads a message length, `op_msg(id, flags, doc)` builds a request.
//!
//! Differences from upstream: a reply shorter than its header plus a document length (21
//! bytes) is reported as "Unsupported OP_MSG reply: >1 section" instead of reading past the
//! string; `length` of fewer than 4 bytes reads the missing ones as 0; `op_msg` checks the
//! length of a full-userdata document against its size.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use crate::lua::{self, ffi, lua_function, new_lib, CFunction};
use ffi::lua_State;
use std::ffi::{c_int, CStr};
use std::fmt;

pub const OP_MSG: i32 = 2013;
const CHECKSUM_PRESENT: i32 = 1;
const MORE_TO_COME: i32 = 1 << 1;
/// Request header (length, request id, response to, opcode) plus the OP_MSG flags.
const HEADER: usize = 20;
/// Offset of the single section's document in a reply as `reply` receives it (without the
/// length field): header, flags, payload-type byte.
pub const REPLY_DOC: usize = 17;

/// Why a reply was refused; `Display` gives upstream's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    Opcode(i32),
    Checksum,
    Flags(i32),
    Payload(u8),
    Sections,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReplyError::Opcode(o) => write!(f, "Unsupported opcode:{o}"),
            ReplyError::Checksum => f.write_str("Unsupported OP_MSG flag checksumPresent"),
            ReplyError::Flags(x) => write!(f, "Unsupported OP_MSG flag:{x}"),
            ReplyError::Payload(p) => write!(f, "Unsupported OP_MSG payload type: {p}"),
            ReplyError::Sections => f.write_str("Unsupported OP_MSG reply: >1 section"),
        }
    }
}

fn le32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks a reply (the message without its 4-byte length): `Ok(None)` if shorter than the
/// header, else the request it answers; its one document starts at [`REPLY_DOC`] and spans
/// the rest of `data`.
pub fn parse_reply(data: &[u8]) -> Result<Option<i32>, ReplyError> {
    // `data` starts at the request id: header fields at 0, 4, 8, flags at 12.
    if data.len() < 16 {
        return Ok(None);
    }
    let opcode = le32(data, 8);
    if opcode != OP_MSG {
        return Err(ReplyError::Opcode(opcode));
    }
    let id = le32(data, 4);
    let flags = le32(data, 12);
    if flags != 0 {
        if flags & CHECKSUM_PRESENT != 0 {
            return Err(ReplyError::Checksum);
        }
        if flags ^ MORE_TO_COME != 0 {
            return Err(ReplyError::Flags(flags));
        }
    }
    // Upstream reads the byte after the header even when the string ends there (its NUL).
    let payload = data.get(16).copied().unwrap_or(0);
    if payload != 0 {
        return Err(ReplyError::Payload(payload));
    }
    let doc = data.get(REPLY_DOC..).unwrap_or_default();
    if doc.len() < 4 || i64::from(le32(doc, 0)) != doc.len() as i64 {
        return Err(ReplyError::Sections);
    }
    Ok(Some(id))
}

/// The 21 bytes that precede the command document in an OP_MSG request.
pub fn op_msg_header(request_id: i32, flags: i32, doc_len: i32) -> [u8; 21] {
    let mut h = [0u8; 21];
    let total = (HEADER as i32 + 1).wrapping_add(doc_len);
    h[0..4].copy_from_slice(&total.to_le_bytes());
    h[4..8].copy_from_slice(&request_id.to_le_bytes());
    h[12..16].copy_from_slice(&OP_MSG.to_le_bytes());
    h[16..20].copy_from_slice(&flags.to_le_bytes());
    h
}

/// `reply(str)` → false | true, response_to, document (light userdata into `str`).
#[lua_function]
unsafe extern "C-unwind" fn lreply(l: *mut lua_State) -> c_int {
    // SAFETY: running state; errors are raised with nothing owned.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        let data = std::slice::from_raw_parts(p, len);
        match parse_reply(data) {
            Ok(None) => {
                ffi::lua_pushboolean(l, 0);
                1
            }
            Ok(Some(id)) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushinteger(l, ffi::lua_Integer::from(id));
                ffi::lua_pushlightuserdata(l, p.add(REPLY_DOC).cast_mut().cast());
                3
            }
            Err(e) => lua::raise_where(l, e.to_string()),
        }
    }
}

/// `length(str)` → the little-endian int32 in its first 4 bytes, minus 4.
#[lua_function]
unsafe extern "C-unwind" fn llength(l: *mut lua_State) -> c_int {
    // SAFETY: running state.
    unsafe {
        ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        let s = lua::to_bytes(l, 1).unwrap_or_default();
        let mut b = [0u8; 4];
        let n = s.len().min(4);
        b[..n].copy_from_slice(&s[..n]);
        let v = i32::from_le_bytes(b).wrapping_sub(4);
        ffi::lua_pushinteger(l, ffi::lua_Integer::from(v));
    }
    1
}

/// `op_msg(request_id, flags, doc)` → the request bytes.
#[lua_function]
unsafe extern "C-unwind" fn lop_msg(l: *mut lua_State) -> c_int {
    // SAFETY: running state; raises happen with nothing owned; the document bytes are
    // bounded by a full userdata's size, or trusted for a light one (as upstream).
    unsafe {
        let id = ffi::luaL_checkinteger(l, 1) as i32;
        let flags = ffi::luaL_checkinteger(l, 2) as i32;
        let p = ffi::lua_touserdata(l, 3).cast::<u8>().cast_const();
        if p.is_null() {
            return ffi::luaL_error(l, c"opmsg require cmd document".as_ptr());
        }
        let full = ffi::lua_type(l, 3) == ffi::LUA_TUSERDATA;
        let size = ffi::lua_rawlen(l, 3);
        if full && size < 4 {
            return ffi::luaL_error(l, c"opmsg require cmd document".as_ptr());
        }
        let doc_len = i32::from_le_bytes(p.cast::<[u8; 4]>().read_unaligned());
        let n = usize::try_from(doc_len).unwrap_or(usize::MAX);
        if n == usize::MAX || (full && n > size) {
            return ffi::luaL_error(l, c"opmsg require cmd document".as_ptr());
        }
        let doc = std::slice::from_raw_parts(p, n);
        lua::push_bytes(l, &op_msg_header(id, flags, doc_len));
        lua::push_bytes(l, doc);
        ffi::lua_concat(l, 2);
    }
    1
}

/// `require "skynet.mongo.driver"`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_mongo_driver(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 3] = [
        (c"reply", lreply),
        (c"length", llength),
        (c"op_msg", lop_msg),
    ];
    // SAFETY: valid state.
    unsafe { new_lib(l, &FUNCS) };
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: i32, to: i32, op: i32, flags: i32, rest: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [id, to, op, flags] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn reply_checks() {
        let doc = b"\x0d\x00\x00\x00\x10ok\x00\x01\x00\x00\x00\x00";
        let mut sec = vec![0u8];
        sec.extend_from_slice(doc);
        assert_eq!(parse_reply(&reply(5, 42, OP_MSG, 0, &sec)), Ok(Some(42)));
        assert_eq!(parse_reply(&reply(5, -3, OP_MSG, 2, &sec)), Ok(Some(-3)));
        assert_eq!(parse_reply(b"abc"), Ok(None));
        assert_eq!(parse_reply(&[0; 15]), Ok(None));
        assert_eq!(
            parse_reply(&reply(0, 0, OP_MSG, 0, &[])),
            Err(ReplyError::Sections)
        );
        assert_eq!(
            parse_reply(&reply(0, 0, OP_MSG, 0, &[1])),
            Err(ReplyError::Payload(1))
        );
        assert_eq!(
            parse_reply(&reply(5, 42, 1, 0, &sec)),
            Err(ReplyError::Opcode(1))
        );
        assert_eq!(
            parse_reply(&reply(5, 42, OP_MSG, 1, &sec)),
            Err(ReplyError::Checksum)
        );
        assert_eq!(
            parse_reply(&reply(5, 42, OP_MSG, 6, &sec)),
            Err(ReplyError::Flags(6))
        );
        let mut two = sec.clone();
        two.push(0);
        assert_eq!(
            parse_reply(&reply(5, 42, OP_MSG, 0, &two)),
            Err(ReplyError::Sections)
        );
        for n in 0..sec.len() + 16 {
            let _ = parse_reply(&reply(5, 42, OP_MSG, 0, &sec)[..n]);
        }
        assert_eq!(
            ReplyError::Flags(4).to_string(),
            "Unsupported OP_MSG flag:4"
        );
    }

    #[test]
    fn op_msg_header_layout() {
        // Recorded from upstream: op_msg(7, 0, encode_order("ping", 1)).
        let h = op_msg_header(7, 0, 15);
        assert_eq!(
            h.to_vec(),
            b"\x24\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00"
                .to_vec()
        );
    }
}
