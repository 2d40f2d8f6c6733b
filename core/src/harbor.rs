//! The core side of multi-node messaging (upstream `skynet_harbor`).
//!
//! A remote message is handed to the one harbor service as a PTYPE_SYSTEM message whose
//! payload is a C `struct remote_message` (48 bytes); the harbor service owns the
//! inner buffer from then on. The harbor service registers itself with `skynet_harbor_start`,
//! which keeps its context alive until shutdown and stops counting it as a live service.

use crate::handle::HANDLE_MASK;
use crate::mq::Message;
use crate::payload::Payload;
use crate::ptype;
use crate::server::{Context, Node};
use parking_lot::Mutex;
use std::sync::Arc;

/// `GLOBALNAME_LENGTH`: bytes of a global name carried in a remote message.
pub const GLOBALNAME_LENGTH: usize = 16;
/// `sizeof(struct remote_message)` on LP64.
pub const REMOTE_MESSAGE_SIZE: usize = 48;

/// Where a remote message goes.
pub enum Destination<'a> {
    Handle(u32),
    /// A global name; only its first 16 bytes travel, zero padded.
    Name(&'a [u8]),
}

pub(crate) struct Harbor {
    bits: u32,
    service: Mutex<Option<Arc<Context>>>,
}

impl Harbor {
    pub(crate) fn new(harbor_id: u8) -> Harbor {
        Harbor {
            bits: u32::from(harbor_id) << 24,
            service: Mutex::new(None),
        }
    }

    /// True iff the handle's harbor byte is set and is not ours.
    pub(crate) fn is_remote(&self, handle: u32) -> bool {
        let h = handle & !HANDLE_MASK;
        h != 0 && h != self.bits
    }

    /// Builds the C `struct remote_message` and queues it to the harbor service.
    pub(crate) fn send_remote(
        &self,
        node: &Node,
        dest: Destination<'_>,
        source: u32,
        ty: u8,
        session: i32,
        data: Payload,
    ) -> i32 {
        let service = self.service.lock().clone();
        let Some(service) = service else {
            node.log(
                source,
                format!(
                    "error: no harbor service for a remote message from :{source:08x}; dropped"
                ),
            );
            return -1;
        };
        if i32::from(ty) == ptype::SYSTEM || i32::from(ty) == ptype::HARBOR {
            node.log(
                source,
                format!("error: message type {ty} can't be sent to a remote node; dropped"),
            );
            return -1;
        }
        let (ptr, sz) = data.into_raw();
        let mut rm = [0u8; REMOTE_MESSAGE_SIZE];
        match dest {
            Destination::Handle(h) => rm[16..20].copy_from_slice(&h.to_ne_bytes()),
            Destination::Name(n) => {
                let n = &n[..n.len().min(GLOBALNAME_LENGTH)];
                rm[..n.len()].copy_from_slice(n);
            }
        }
        rm[24..32].copy_from_slice(&(ptr as usize).to_ne_bytes());
        rm[32..40].copy_from_slice(&sz.to_ne_bytes());
        rm[40..44].copy_from_slice(&i32::from(ty).to_ne_bytes());
        let msg = Message::new(
            source,
            session,
            ptype::SYSTEM as u8,
            Payload::copy_from(&rm),
        );
        node.global.push_message(&service, msg);
        session
    }

    /// Queues an already built `struct remote_message` block to the harbor service.
    pub(crate) fn push_remote_message(
        &self,
        node: &Node,
        rm: Payload,
        source: u32,
        session: i32,
    ) -> bool {
        let service = self.service.lock().clone();
        match service {
            Some(s) => {
                let msg = Message::new(source, session, ptype::SYSTEM as u8, rm);
                node.global.push_message(&s, msg);
                true
            }
            None => false,
        }
    }

    /// `skynet_harbor_start`: remember the harbor service and stop counting it as live.
    pub(crate) fn start(&self, node: &Node, ctx: Arc<Context>) {
        *self.service.lock() = Some(ctx);
        node.uncount_context();
    }

    /// Releases the harbor service at shutdown.
    pub(crate) fn exit(&self) -> Option<Arc<Context>> {
        self.service.lock().take()
    }
}

impl Node {
    /// `skynet_harbor_start`.
    pub fn harbor_start(&self, ctx: Arc<Context>) {
        self.harbor.start(self, ctx)
    }

    /// `skynet_harbor_send`: hands a `struct remote_message` block (48 bytes, libc heap) to the
    /// harbor service; false (block freed) if there is none.
    pub fn harbor_send(&self, rm: Payload, source: u32, session: i32) -> bool {
        self.harbor.push_remote_message(self, rm, source, session)
    }

    /// Drops the reserved harbor context (shutdown).
    pub fn harbor_exit(&self) {
        drop(self.harbor.exit());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_test_ignores_zero_and_own_harbor() {
        let h = Harbor::new(2);
        assert!(!h.is_remote(0x0000_0005));
        assert!(!h.is_remote(0x0200_0005));
        assert!(h.is_remote(0x0300_0005));
        let h0 = Harbor::new(0);
        assert!(h0.is_remote(0x0100_0001));
    }
}
