//! Events for services and the sink that delivers them.

use super::{event, MAX_INLINE_TEXT, SOCKET_MESSAGE_SIZE};
use crate::mq::Message;
use crate::payload::Payload;
use crate::server::Admitted;
use crate::{ptype, server};

/// One event for a service: becomes a PTYPE_SOCKET message whose payload is
/// `struct skynet_socket_message` (+ inline text for CONNECT/ERROR/ACCEPT).
#[derive(Debug)]
pub struct SocketEvent {
    /// `SKYNET_SOCKET_TYPE_*` ([`event`]).
    pub ty: i32,
    pub id: i32,
    pub ud: i32,
    /// DATA: the bytes read; UDP: the datagram followed by the sender's encoded address.
    pub data: Option<Payload>,
    /// CONNECT/ERROR/ACCEPT: the inline text (capped at 128 bytes when encoded).
    pub text: Option<String>,
}

impl SocketEvent {
    pub(super) fn inline(ty: i32, id: i32, ud: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent {
            ty,
            id,
            ud,
            data: None,
            text: Some(text.into()),
        }
    }

    pub(super) fn plain(ty: i32, id: i32, ud: i32) -> SocketEvent {
        SocketEvent {
            ty,
            id,
            ud,
            data: None,
            text: None,
        }
    }

    pub(super) fn error(id: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent::inline(event::ERROR, id, 0, text)
    }

    pub(super) fn connect(id: i32, ud: i32, text: impl Into<String>) -> SocketEvent {
        SocketEvent::inline(event::CONNECT, id, ud, text)
    }

    pub(super) fn close(id: i32) -> SocketEvent {
        SocketEvent::plain(event::CLOSE, id, 0)
    }

    /// The inline text as encoded: at most 128 bytes.
    pub fn inline_text(&self) -> &[u8] {
        let t = self.text.as_deref().unwrap_or("").as_bytes();
        &t[..t.len().min(MAX_INLINE_TEXT)]
    }

    /// The message payload (`struct skynet_socket_message` + inline text, one libc block)
    /// and the separate heap buffer it points to, if any. The buffer must be handed over
    /// (`into_raw`) if the message is delivered, freed otherwise.
    pub fn into_payloads(self) -> (Payload, Option<Payload>) {
        let text = self.inline_text();
        // Written in place (one allocation, no staging copy): DATA goes through here once
        // per read.
        let mut msg = Payload::zeroed(SOCKET_MESSAGE_SIZE + text.len());
        let bytes = msg.as_mut_slice();
        bytes[0..4].copy_from_slice(&self.ty.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.id.to_ne_bytes());
        bytes[8..12].copy_from_slice(&self.ud.to_ne_bytes());
        let addr = self.data.as_ref().map_or(0, |d| d.as_ptr() as usize);
        bytes[16..24].copy_from_slice(&(addr as u64).to_ne_bytes());
        bytes[SOCKET_MESSAGE_SIZE..].copy_from_slice(text);
        (msg, self.data)
    }
}

/// What became of a delivered event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The owner is gone: the event is dropped.
    Gone,
    Queued,
    /// The owner's queue is full and the event (a UDP datagram) was dropped.
    Dropped,
    /// Queued (DATA of a connection), but the owner's queue is full: stop reading the
    /// connection until [`super::SocketServer::resume_read`].
    Hold,
}

/// Where the socket thread sends events, logs and reads the time.
pub trait Sink: Send + Sync {
    /// Delivers `ev` to service `owner`.
    fn deliver(&self, owner: u32, ev: SocketEvent) -> Delivery;
    /// A log line from the socket layer (source 0).
    fn log(&self, text: &str);
    /// The time for `rtime`/`wtime` (centiseconds).
    fn now(&self) -> u64;
    /// After a batch of events was delivered.
    fn flush(&self) {}
}

/// The node's sink: PTYPE_SOCKET messages from source 0, session 0; logs to the logger.
/// A connection's DATA is always queued (the connection is held when the queue is full); a
/// UDP datagram to a full queue is dropped; other events are always queued.
pub struct NodeSink;

impl Sink for NodeSink {
    fn deliver(&self, owner: u32, ev: SocketEvent) -> Delivery {
        let Some(node) = server::try_node() else {
            return Delivery::Gone;
        };
        let data_of = (ev.ty == event::DATA).then_some(ev.id);
        let udp = ev.ty == event::UDP;
        let (msg, data) = ev.into_payloads();
        let msg = Message::new(0, 0, ptype::SOCKET as u8, msg);
        let delivery = match node.push_socket(owner, msg, data_of, udp) {
            None => return Delivery::Gone,
            Some(Admitted::Refused) => return Delivery::Dropped,
            Some(Admitted::Queued) => Delivery::Queued,
            Some(Admitted::Hold) => Delivery::Hold,
        };
        // The receiving service owns the buffer now (its callback frees it).
        if let Some(d) = data {
            let _ = d.into_raw();
        }
        delivery
    }

    fn log(&self, text: &str) {
        if let Some(node) = server::try_node() {
            node.log(0, text);
        }
    }

    fn now(&self) -> u64 {
        server::try_node().map_or(0, |n| n.timer.now())
    }

    fn flush(&self) {
        if let Some(node) = server::try_node() {
            node.global.wake_for_queued();
        }
    }
}
