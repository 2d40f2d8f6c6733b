//! PTYPE_SOCKET messages as the built-in services receive them: `struct skynet_socket_message`
//! (`int type, id, ud; char *buffer`, 24 bytes on LP64) followed by inline text for CONNECT,
//! ERROR and ACCEPT. A DATA or UDP event's `buffer` is a separate libc block the
//! receiver owns.
//!
//! [`CoreSockets`] is the node's socket server as the gate and the harbor see it.

use crate::gate::{GateSocket, BACKLOG};
use crate::harbor::HarborSocket;
use skynet_core::socket_server::SocketServer;
use skynet_core::socket_server::{event, SendData, SOCKET_MESSAGE_SIZE};
use skynet_core::{try_node, Message, Payload};

/// One socket event, its heap buffer taken over.
#[derive(Debug)]
pub struct SocketMessage {
    /// `SKYNET_SOCKET_TYPE_*`.
    pub ty: i32,
    pub id: i32,
    pub ud: i32,
    /// DATA: the bytes read (`ud` of them); UDP: the datagram and the sender's address.
    pub data: Option<Payload>,
    /// The whole message, for the inline text.
    raw: Payload,
}

impl SocketMessage {
    /// Takes a PTYPE_SOCKET message apart. `None` if it is not one the socket thread sent:
    /// too short, or from a service (events come from source 0, and a service can never send
    /// with source 0), whose `buffer` pointer must not be trusted.
    pub fn parse(msg: Message) -> Option<SocketMessage> {
        let raw = msg.data;
        let b = raw.as_slice();
        if msg.source != 0 || b.len() < SOCKET_MESSAGE_SIZE {
            return None;
        }
        let int = |at: usize| i32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (ty, id, ud) = (int(0), int(4), int(8));
        let mut ptr = [0u8; 8];
        ptr.copy_from_slice(&b[16..24]);
        let ptr = usize::from_ne_bytes(ptr) as *mut u8;
        let data = match ty {
            event::DATA | event::UDP if !ptr.is_null() && ud >= 0 => {
                let len = ud as usize
                    + if ty == event::UDP {
                        udp_address_len(ptr, ud as usize)
                    } else {
                        0
                    };
                // SAFETY: only the socket thread produces PTYPE_SOCKET messages (every send path
                // refuses the type, see `skynet_core::server::core_only`; source 0 is a second
                // check); it hands the receiver a libc block of `ud` bytes (UDP: followed by the
                // sender's address) that nobody else frees; this message is consumed here, so
                // the block is taken over once.
                Some(unsafe { Payload::from_raw(ptr, len) })
            }
            _ => None,
        };
        Some(SocketMessage {
            ty,
            id,
            ud,
            data,
            raw,
        })
    }

    /// The inline text (CONNECT, ERROR, ACCEPT), not NUL terminated.
    pub fn text(&self) -> &[u8] {
        match self.ty {
            event::CONNECT | event::ERROR | event::ACCEPT => {
                &self.raw.as_slice()[SOCKET_MESSAGE_SIZE..]
            }
            _ => &[],
        }
    }

    /// The inline text, lossily decoded.
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.text()).into_owned()
    }
}

/// The node's socket server, used by service `owner` (events for the sockets it starts or
/// listens on come to it). Without a socket server (unit tests) every call does nothing.
pub struct CoreSockets {
    owner: u32,
}

impl CoreSockets {
    pub fn new(owner: u32) -> CoreSockets {
        CoreSockets { owner }
    }
}

fn server() -> Option<&'static SocketServer> {
    try_node()?.socket()
}

impl GateSocket for CoreSockets {
    fn listen(&mut self, host: &str, port: u16) -> Option<i32> {
        let id = server()?.listen(self.owner, Some(host), i32::from(port), BACKLOG);
        (id >= 0).then_some(id)
    }

    fn start(&mut self, id: i32) {
        if let Some(s) = server() {
            s.start(self.owner, id);
        }
    }

    fn close(&mut self, id: i32) {
        if let Some(s) = server() {
            s.close(id);
        }
    }

    fn send(&mut self, id: i32, data: Payload) {
        if let Some(s) = server() {
            s.send(id, SendData::Owned(data));
        }
    }
}

impl HarborSocket for CoreSockets {
    fn start(&mut self, fd: i32) -> bool {
        match server() {
            Some(s) => {
                s.start(self.owner, fd);
                true
            }
            None => false,
        }
    }

    fn send(&mut self, fd: i32, bytes: Vec<u8>) {
        if let Some(s) = server() {
            s.send(fd, SendData::Borrowed(&bytes));
        }
    }

    fn close(&mut self, fd: i32) {
        if let Some(s) = server() {
            s.close(fd);
        }
    }
}

/// Size of the address record after a UDP datagram of `n` bytes at `ptr` (7 or 19, 0 if the
/// protocol byte is unknown).
fn udp_address_len(ptr: *mut u8, n: usize) -> usize {
    // SAFETY: a UDP event's block holds the datagram followed by at least the protocol byte of
    // the sender's address.
    let proto = unsafe { *ptr.add(n) };
    skynet_core::socket_server::udp_address_size(proto).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skynet_core::ptype;

    fn event(ty: i32, id: i32, ud: i32, buffer: Option<Payload>, text: &[u8]) -> Message {
        let mut b = Vec::new();
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&id.to_ne_bytes());
        b.extend_from_slice(&ud.to_ne_bytes());
        b.extend_from_slice(&[0; 4]);
        let ptr = buffer.map_or(0, |p| p.into_raw().0 as usize);
        b.extend_from_slice(&(ptr as u64).to_ne_bytes());
        b.extend_from_slice(text);
        Message::new(0, 0, ptype::SOCKET as u8, Payload::copy_from(&b))
    }

    #[test]
    fn data_buffer_is_taken_over_and_text_read() {
        let m = SocketMessage::parse(event(
            event::DATA,
            7,
            3,
            Some(Payload::copy_from(b"abc")),
            b"",
        ))
        .unwrap();
        assert_eq!((m.ty, m.id, m.ud), (event::DATA, 7, 3));
        assert_eq!(m.data.as_ref().unwrap().as_slice(), b"abc");
        assert!(m.text().is_empty());
        let m = SocketMessage::parse(event(event::ACCEPT, 1, 9, None, b"127.0.0.1:80")).unwrap();
        assert_eq!(m.text(), b"127.0.0.1:80");
        assert!(m.data.is_none());
    }

    #[test]
    fn forged_and_short_messages_are_refused() {
        let mut forged = event(event::CLOSE, 1, 0, None, b"");
        forged.source = 5;
        assert!(SocketMessage::parse(forged).is_none());
        let short = Message::new(0, 0, ptype::SOCKET as u8, Payload::copy_from(&[0; 20]));
        assert!(SocketMessage::parse(short).is_none());
    }
}
