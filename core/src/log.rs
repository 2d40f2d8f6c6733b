//! Per-service message logs, switched on by LOGON (upstream `skynet_log`).
//!
//! File `<logpath>/<handle %08x>.log`, opened for append. Every message is written before the
//! service's callback sees it: `:<source %08x> <type> <session> <now> <payload hex>`, or for
//! socket messages `[socket] <type> <id> <ud> ` then `[<inline text>]` or the hex of the data.

use crate::mq::Message;
use crate::ptype;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// An open per-service log.
pub struct ServiceLog {
    file: File,
}

impl ServiceLog {
    /// Opens the log of `handle` under `logpath`; the path, for the caller's log line.
    pub fn open(logpath: &str, handle: u32, now: u64, starttime: u32) -> (String, Option<Self>) {
        let path = format!("{logpath}/{handle:08x}.log");
        let file = OpenOptions::new().append(true).create(true).open(&path);
        let log = file.ok().map(|mut file| {
            let when = crate::localtime::localtime(i64::from(starttime) + (now / 100) as i64);
            let _ = write!(file, "open time: {} {}", now as u32, when.ctime());
            ServiceLog { file }
        });
        (path, log)
    }

    pub fn close(mut self, now: u64) {
        let _ = writeln!(self.file, "close time: {}", now as u32);
    }

    /// Writes one message line.
    pub fn output(&mut self, msg: &Message) {
        let line = format_message(msg, crate::server::node().timer.now());
        let _ = self.file.write_all(line.as_bytes());
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn format_message(msg: &Message, now: u64) -> String {
    let data = msg.data.as_slice();
    let mut out = String::with_capacity(48 + data.len() * 2);
    if msg.ty as i32 == ptype::SOCKET && data.len() >= 24 {
        let int = |at: usize| i32::from_ne_bytes(data[at..at + 4].try_into().unwrap_or([0; 4]));
        let (ty, id, ud) = (int(0), int(4), int(8));
        let _ = write!(out, "[socket] {ty} {id} {ud} ");
        // SAFETY: only the socket server produces PTYPE_SOCKET messages (every send path
        // refuses the type), and its data messages carry `ud` bytes behind the pointer.
        match unsafe { msg.data.socket_heap_bytes(ud.max(0) as usize) } {
            Some(bytes) => hex(&mut out, bytes),
            None => {
                let inline = &data[24..];
                let end = inline.iter().position(|&b| b == 0).unwrap_or(inline.len());
                out.push('[');
                out.push_str(&String::from_utf8_lossy(&inline[..end]));
                out.push(']');
            }
        }
    } else {
        let _ = write!(
            out,
            ":{:08x} {} {} {} ",
            msg.source, msg.ty, msg.session, now as u32
        );
        hex(&mut out, data);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn text_message_line() {
        let m = Message::new(0x12, 3, 0, Payload::copy_from(b"hi"));
        assert_eq!(format_message(&m, 77), ":00000012 0 3 77 6869\n");
    }

    #[test]
    fn socket_inline_line() {
        let mut raw = vec![0u8; 24];
        raw[0..4].copy_from_slice(&2i32.to_ne_bytes());
        raw[4..8].copy_from_slice(&5i32.to_ne_bytes());
        raw.extend_from_slice(b"start");
        let m = Message::new(0, 0, ptype::SOCKET as u8, Payload::copy_from(&raw));
        assert_eq!(format_message(&m, 1), "[socket] 2 5 0 [start]\n");
    }
}
