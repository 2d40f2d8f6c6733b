//! The cluster wire format as plain functions over byte slices, shared by the Lua
//! glue, the tests and the fuzz target.
//!
//! Every packet starts with a 2-byte big-endian length of the rest; integers inside are
//! little-endian u32. Packets are written into a caller-supplied buffer of [`TEMP_LENGTH`] bytes
//! (the glue keeps it on the stack, so nothing with a destructor is alive when Lua may raise).
//! Decoders never read past their input and never allocate: they return borrowed slices.

use std::fmt;

/// Largest message carried in one packet; larger ones are split into parts of this size.
pub const MULTI_PART: usize = 0x8000;
/// Room for the largest single packet: length, type, name (≤ 255), session, one part.
pub const TEMP_LENGTH: usize = 0x8200;

/// Where a request goes: a service handle or a registered name (1..=255 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr<'a> {
    Id(u32),
    Name(&'a [u8]),
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes the 2-byte length of a packet whose body is `body` bytes; returns the packet size.
fn finish(buf: &mut [u8], body: usize) -> usize {
    debug_assert!(body < 0x10000);
    buf[0] = (body >> 8) as u8;
    buf[1] = body as u8;
    body + 2
}

/// Whether a request of `sz` bytes is sent as a header followed by parts.
pub fn is_multipart_request(sz: usize) -> bool {
    sz >= MULTI_PART
}

/// Number of parts a multipart message of `sz` bytes is split into.
pub fn part_count(sz: usize) -> usize {
    sz.div_ceil(MULTI_PART)
}

/// The session after `session`: wraps past `i32::MAX` to 1.
pub fn next_session(session: u32) -> u32 {
    let n = session.wrapping_add(1);
    if n > i32::MAX as u32 {
        1
    } else {
        n
    }
}

/// Writes the first packet of a request (or push) carrying `msg` into `buf`; returns its size.
/// For a small message it is the whole request (session 0 marks a push); for a large one it is
/// the header announcing `msg.len()` bytes (with the real session even for a push), to be
/// followed by [`request_part`] packets. `buf` holds [`TEMP_LENGTH`] bytes; a name is 1..=255
/// bytes (the caller checks).
pub fn request_head(buf: &mut [u8], addr: Addr, session: u32, msg: &[u8], push: bool) -> usize {
    let multi = is_multipart_request(msg.len());
    let small_session = if push { 0 } else { session };
    match addr {
        Addr::Id(id) => {
            put_u32(buf, 3, id);
            if multi {
                buf[2] = if push { 0x41 } else { 1 };
                put_u32(buf, 7, session);
                put_u32(buf, 11, msg.len() as u32);
                finish(buf, 13)
            } else {
                buf[2] = 0;
                put_u32(buf, 7, small_session);
                buf[11..11 + msg.len()].copy_from_slice(msg);
                finish(buf, 9 + msg.len())
            }
        }
        Addr::Name(name) => {
            let n = name.len();
            buf[3] = n as u8;
            buf[4..4 + n].copy_from_slice(name);
            if multi {
                buf[2] = if push { 0xc1 } else { 0x81 };
                put_u32(buf, 4 + n, session);
                put_u32(buf, 8 + n, msg.len() as u32);
                finish(buf, 10 + n)
            } else {
                buf[2] = 0x80;
                put_u32(buf, 4 + n, small_session);
                buf[8 + n..8 + n + msg.len()].copy_from_slice(msg);
                finish(buf, 6 + n + msg.len())
            }
        }
    }
}

/// Writes one part of a multipart request (`chunk` ≤ [`MULTI_PART`] bytes; `last` for the
/// final one) into `buf`; returns its size.
pub fn request_part(buf: &mut [u8], session: u32, chunk: &[u8], last: bool) -> usize {
    buf[2] = if last { 3 } else { 2 };
    put_u32(buf, 3, session);
    buf[7..7 + chunk.len()].copy_from_slice(chunk);
    finish(buf, 5 + chunk.len())
}

/// Why a trace tag cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagTooLong(pub usize);

impl fmt::Display for TagTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace tag is too long : {}", self.0 as i32)
    }
}

/// Writes a trace tag packet into `buf`; returns its size.
pub fn trace(buf: &mut [u8], tag: &[u8]) -> Result<usize, TagTooLong> {
    if tag.len() > MULTI_PART {
        return Err(TagTooLong(tag.len()));
    }
    buf[2] = 4;
    buf[3..3 + tag.len()].copy_from_slice(tag);
    Ok(finish(buf, 1 + tag.len()))
}

/// A decoded request packet (the bytes after the 2-byte length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// A whole request or push (session 0).
    Single {
        addr: Addr<'a>,
        session: u32,
        msg: &'a [u8],
    },
    /// The header of a multipart request or push of `size` bytes.
    Multi {
        addr: Addr<'a>,
        session: u32,
        size: u32,
        push: bool,
    },
    /// One part of a multipart message; `more` unless it is the last.
    Part {
        session: u32,
        data: &'a [u8],
        more: bool,
    },
    /// A trace tag for the next request.
    Trace(&'a [u8]),
}

/// Why a request packet was refused; `Display` gives upstream's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    Empty,
    Size(usize),
    MultiSize(usize),
    Part,
    Type(u8),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sizes and the type byte print as upstream's C `int` / signed `char` do.
        match *self {
            RequestError::Empty => f.write_str("Invalid req package. size == 0"),
            RequestError::Size(n) => write!(f, "Invalid cluster message (size={})", n as i32),
            RequestError::MultiSize(n) => write!(
                f,
                "Invalid cluster message size {} (multi req must be 13)",
                n as i32
            ),
            RequestError::Part => f.write_str("Invalid cluster multi part message"),
            RequestError::Type(t) => write!(f, "Invalid req package type {}", t as i8),
        }
    }
}

/// Splits a name-addressed packet: name, then the bytes after it (at least `need` of them).
fn named(b: &[u8], need: usize) -> Result<(&[u8], &[u8]), RequestError> {
    let n = *b.get(1).ok_or(RequestError::Size(b.len()))? as usize;
    if b.len() < n + 2 + need {
        return Err(RequestError::Size(b.len()));
    }
    Ok((&b[2..2 + n], &b[2 + n..]))
}

/// Decodes a request packet (without its 2-byte length).
pub fn decode_request(b: &[u8]) -> Result<Request<'_>, RequestError> {
    let Some(&ty) = b.first() else {
        return Err(RequestError::Empty);
    };
    match ty {
        0 => {
            if b.len() < 9 {
                return Err(RequestError::Size(b.len()));
            }
            Ok(Request::Single {
                addr: Addr::Id(get_u32(b, 1)),
                session: get_u32(b, 5),
                msg: &b[9..],
            })
        }
        1 | 0x41 => {
            if b.len() != 13 {
                return Err(RequestError::MultiSize(b.len()));
            }
            Ok(Request::Multi {
                addr: Addr::Id(get_u32(b, 1)),
                session: get_u32(b, 5),
                size: get_u32(b, 9),
                push: ty == 0x41,
            })
        }
        2 | 3 => {
            if b.len() < 5 {
                return Err(RequestError::Part);
            }
            Ok(Request::Part {
                session: get_u32(b, 1),
                data: &b[5..],
                more: ty == 2,
            })
        }
        4 => Ok(Request::Trace(&b[1..])),
        0x80 => {
            let (name, rest) = named(b, 4)?;
            Ok(Request::Single {
                addr: Addr::Name(name),
                session: get_u32(rest, 0),
                msg: &rest[4..],
            })
        }
        0x81 | 0xc1 => {
            let (name, rest) = named(b, 8)?;
            Ok(Request::Multi {
                addr: Addr::Name(name),
                session: get_u32(rest, 0),
                size: get_u32(rest, 4),
                push: ty == 0xc1,
            })
        }
        t => Err(RequestError::Type(t)),
    }
}

/// Response types (the byte after the session).
const RESP_ERROR: u8 = 0;
const RESP_OK: u8 = 1;
const RESP_BEGIN: u8 = 2;
const RESP_PART: u8 = 3;
const RESP_END: u8 = 4;

/// Whether a response carrying `sz` bytes is split (only successful ones are; errors are
/// truncated to [`MULTI_PART`] bytes). Note: strictly larger, unlike requests.
pub fn is_multipart_response(ok: bool, sz: usize) -> bool {
    ok && sz > MULTI_PART
}

/// Writes a single-packet response into `buf` (an error message is cut to [`MULTI_PART`]
/// bytes; an ok message must not be multipart); returns its size.
pub fn response(buf: &mut [u8], session: u32, ok: bool, msg: &[u8]) -> usize {
    let msg = &msg[..msg.len().min(MULTI_PART)];
    put_u32(buf, 2, session);
    buf[6] = if ok { RESP_OK } else { RESP_ERROR };
    buf[7..7 + msg.len()].copy_from_slice(msg);
    finish(buf, 5 + msg.len())
}

/// Writes the packet that opens a multipart response of `size` bytes; returns its size.
pub fn response_begin(buf: &mut [u8], session: u32, size: u32) -> usize {
    put_u32(buf, 2, session);
    buf[6] = RESP_BEGIN;
    put_u32(buf, 7, size);
    finish(buf, 9)
}

/// Writes one part of a multipart response (`last` for the final one); returns its size.
pub fn response_part(buf: &mut [u8], session: u32, chunk: &[u8], last: bool) -> usize {
    put_u32(buf, 2, session);
    buf[6] = if last { RESP_END } else { RESP_PART };
    buf[7..7 + chunk.len()].copy_from_slice(chunk);
    finish(buf, 5 + chunk.len())
}

/// A decoded response packet (the bytes after the 2-byte length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// A whole response, an error, or a part (`more` unless it ends the message).
    Data {
        session: u32,
        ok: bool,
        data: &'a [u8],
        more: bool,
    },
    /// The start of a multipart response of `size` bytes.
    Begin { session: u32, size: u32 },
}

/// Decodes a response packet; `None` for anything malformed (upstream returns nothing).
pub fn decode_response(b: &[u8]) -> Option<Response<'_>> {
    if b.len() < 5 {
        return None;
    }
    let session = get_u32(b, 0);
    let data = &b[5..];
    let (ok, more) = match b[4] {
        RESP_ERROR => (false, false),
        RESP_OK | RESP_END => (true, false),
        RESP_PART => (true, true),
        RESP_BEGIN => {
            if b.len() != 9 {
                return None;
            }
            return Some(Response::Begin {
                session,
                size: get_u32(b, 5),
            });
        }
        _ => return None,
    };
    Some(Response::Data {
        session,
        ok,
        data,
        more,
    })
}

/// Every packet of a request or push, first one first (a convenience over [`request_head`] and
/// [`request_part`] for tests and tools).
pub fn pack_request(addr: Addr, session: u32, msg: &[u8], push: bool) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; TEMP_LENGTH];
    let n = request_head(&mut buf, addr, session, msg, push);
    let mut out = vec![buf[..n].to_vec()];
    if is_multipart_request(msg.len()) {
        let parts = part_count(msg.len());
        for (i, chunk) in msg.chunks(MULTI_PART).enumerate() {
            let n = request_part(&mut buf, session, chunk, i + 1 == parts);
            out.push(buf[..n].to_vec());
        }
    }
    out
}

/// Every packet of a response (a convenience over the writers above).
pub fn pack_response(session: u32, ok: bool, msg: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; TEMP_LENGTH];
    if !is_multipart_response(ok, msg.len()) {
        let n = response(&mut buf, session, ok, msg);
        return vec![buf[..n].to_vec()];
    }
    let n = response_begin(&mut buf, session, msg.len() as u32);
    let mut out = vec![buf[..n].to_vec()];
    let parts = part_count(msg.len());
    for (i, chunk) in msg.chunks(MULTI_PART).enumerate() {
        let n = response_part(&mut buf, session, chunk, i + 1 == parts);
        out.push(buf[..n].to_vec());
    }
    out
}

/// Why a reassembled multipart message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reassembly {
    /// A part came for a session with no header, or with a different address.
    Unexpected,
    /// The parts add up to more, or less, than the header announced.
    Size,
}

/// Reassembles a stream of decoded request packets into whole messages, the way clusteragent
/// does, bounded: at most `limit` bytes are ever buffered. Used by tests and the fuzz target.
#[derive(Default)]
pub struct Assembler {
    pending: std::collections::HashMap<u32, (u32, Vec<u8>)>,
    buffered: usize,
}

impl Assembler {
    /// Feeds one decoded packet; returns `(session, message)` when one is complete.
    pub fn feed(
        &mut self,
        req: &Request,
        limit: usize,
    ) -> Result<Option<(u32, Vec<u8>)>, Reassembly> {
        match *req {
            Request::Single { session, msg, .. } => Ok(Some((session, msg.to_vec()))),
            Request::Trace(_) => Ok(None),
            Request::Multi { session, size, .. } => {
                if let Some((_, old)) = self.pending.insert(session, (size, Vec::new())) {
                    self.buffered -= old.len();
                }
                Ok(None)
            }
            Request::Part {
                session,
                data,
                more,
            } => {
                let Some((size, buf)) = self.pending.get_mut(&session) else {
                    return Err(Reassembly::Unexpected);
                };
                if buf.len() + data.len() > *size as usize || self.buffered + data.len() > limit {
                    self.buffered -= buf.len();
                    self.pending.remove(&session);
                    return Err(Reassembly::Size);
                }
                buf.extend_from_slice(data);
                self.buffered += data.len();
                if more {
                    return Ok(None);
                }
                let (size, buf) = self.pending.remove(&session).unwrap_or_default();
                self.buffered -= buf.len();
                if buf.len() != size as usize {
                    return Err(Reassembly::Size);
                }
                Ok(Some((session, buf)))
            }
        }
    }
}
