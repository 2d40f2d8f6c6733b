//! The `harbor` service (upstream `service_harbor`): routes messages to other nodes.
//!
//! Parameter `"<harbor id> <slave handle>"`; the slave is the Lua service (cslave or, for a
//! standalone node, cdummy) that manages names and links. The core hands every remote message
//! to this service as a `struct remote_message` (PTYPE_SYSTEM); PTYPE_HARBOR text commands
//! register global names (`N <name>`, source = the named service) and attach links to other
//! nodes (`S <fd> <id>`, `A <fd> <id>`).
//!
//! Node-to-node links need the socket server and are not implemented yet: `S`/`A` are refused
//! with a log line, so every other harbor stays down. A standalone node (harbor id 0) works
//! fully: global names resolve to local services, messages to other harbors come back as
//! PTYPE_ERROR.

pub mod wire;

use skynet_core::harbor::{GLOBALNAME_LENGTH, REMOTE_MESSAGE_SIZE};
use skynet_core::module::{Instance, Module};
use skynet_core::{node, ptype, Context, Message, Payload};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

const REMOTE_MAX: usize = 256;

pub struct HarborModule;

impl Module for HarborModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        Some(Box::new(HarborInstance))
    }
}

struct HarborInstance;

/// A message waiting for a name to resolve.
struct Pending {
    source: u32,
    ty: u8,
    session: i32,
    data: Payload,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Wait,
    Down,
}

struct Slave {
    status: Status,
}

#[derive(Default)]
struct Name {
    handle: u32,
    queue: VecDeque<Pending>,
}

struct Harbor {
    id: u32,
    slave: u32,
    slaves: Vec<Slave>,
    names: HashMap<[u8; GLOBALNAME_LENGTH], Name>,
}

/// `"<id> <slave>"` as upstream's `sscanf("%d %u")`.
fn parse_parm(parm: &str) -> Option<(u32, u32)> {
    let mut w = parm.split_ascii_whitespace();
    let id = w.next()?.parse::<i64>().ok()?;
    let slave = w.next()?.parse::<u32>().ok()?;
    (slave != 0 && (0..REMOTE_MAX as i64).contains(&id)).then_some((id as u32, slave))
}

impl Instance for HarborInstance {
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        let Some((id, slave)) = parm.and_then(parse_parm) else {
            ctx.error(format!(
                "error: harbor needs \"<harbor id> <slave handle>\", got {:?}",
                parm.unwrap_or("")
            ));
            return false;
        };
        // Links are not implemented yet, so every harbor is down (upstream does this only for
        // id 0, where there are no links by definition).
        let mut h = Harbor {
            id,
            slave,
            slaves: (0..REMOTE_MAX)
                .map(|_| Slave {
                    status: Status::Wait,
                })
                .collect(),
            names: HashMap::new(),
        };
        for s in &mut h.slaves {
            s.status = Status::Down;
        }
        ctx.set_callback(Some(Box::new(move |ctx: &Context, msg: Message| {
            h.handle(ctx, msg)
        })));
        node().harbor_start(ctx.clone());
        true
    }
}

fn name_key(bytes: &[u8]) -> [u8; GLOBALNAME_LENGTH] {
    let mut key = [0u8; GLOBALNAME_LENGTH];
    let n = bytes.len().min(GLOBALNAME_LENGTH);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

fn name_text(key: &[u8; GLOBALNAME_LENGTH]) -> String {
    let end = key
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(GLOBALNAME_LENGTH);
    String::from_utf8_lossy(&key[..end]).into_owned()
}

impl Harbor {
    fn handle(&mut self, ctx: &Context, msg: Message) {
        match i32::from(msg.ty) {
            ptype::HARBOR => self.command(ctx, msg.source, msg.data.as_slice()),
            ptype::SYSTEM => self.remote(ctx, msg),
            ty => {
                ctx.error(format!(
                    "recv invalid message from {:x},  type = {ty}",
                    msg.source
                ));
                if msg.session != 0 && ty != ptype::ERROR {
                    ctx.send(msg.source, ptype::ERROR, msg.session, Payload::empty());
                }
            }
        }
    }

    fn command(&mut self, ctx: &Context, source: u32, text: &[u8]) {
        let arg = text.get(2..).unwrap_or_default();
        match text.first() {
            Some(b'N') => {
                if arg.is_empty() || arg.len() >= GLOBALNAME_LENGTH {
                    ctx.error(format!(
                        "Invalid global name {}",
                        String::from_utf8_lossy(arg)
                    ));
                    return;
                }
                self.update_name(ctx, name_key(arg), source);
            }
            Some(b'S') | Some(b'A') => ctx.error(format!(
                "error: harbor link {} refused: node-to-node links are not implemented yet",
                String::from_utf8_lossy(text)
            )),
            _ => ctx.error(format!("Unknown command {}", String::from_utf8_lossy(text))),
        }
    }

    /// A PTYPE_SYSTEM message: the core's `struct remote_message`.
    fn remote(&mut self, ctx: &Context, msg: Message) {
        let rm = msg.data.as_slice();
        if rm.len() < REMOTE_MESSAGE_SIZE {
            ctx.error("error: harbor got a malformed remote message");
            return;
        }
        let word = |at: usize| usize::from_ne_bytes(rm[at..at + 8].try_into().unwrap_or([0; 8]));
        let handle = u32::from_ne_bytes(rm[16..20].try_into().unwrap_or([0; 4]));
        let ty = i32::from_ne_bytes(rm[40..44].try_into().unwrap_or([0; 4])) as u8;
        // SAFETY: the core built this struct and handed the inner block (libc, `sz` bytes) to
        // the harbor service, which now owns it.
        let data = unsafe { Payload::from_raw(word(24) as *mut u8, word(32)) };
        let pending = Pending {
            source: msg.source,
            ty,
            session: msg.session,
            data,
        };
        if handle == 0 {
            self.send_name(ctx, name_key(&rm[..GLOBALNAME_LENGTH]), pending);
        } else {
            self.send_handle(ctx, handle, pending);
        }
    }

    fn send_handle(&mut self, ctx: &Context, dest: u32, m: Pending) {
        let harbor_id = dest >> 24;
        if harbor_id == self.id {
            node().send(
                Some(ctx),
                m.source,
                dest,
                i32::from(m.ty),
                m.session,
                m.data,
            );
            return;
        }
        if self.slaves[harbor_id as usize].status == Status::Down {
            // The unreachable destination answers with PTYPE_ERROR.
            node().send(
                Some(ctx),
                dest,
                m.source,
                ptype::ERROR,
                m.session,
                Payload::empty(),
            );
            ctx.error(format!(
                "Drop message to harbor {harbor_id} from {:x} to {dest:x} (session = {}, msgsz = {})",
                m.source,
                m.session,
                m.data.len()
            ));
        }
    }

    fn send_name(&mut self, ctx: &Context, key: [u8; GLOBALNAME_LENGTH], m: Pending) {
        let entry = self.names.entry(key).or_default();
        if entry.handle != 0 {
            let h = entry.handle;
            self.send_handle(ctx, h, m);
            return;
        }
        entry.queue.push_back(m);
        let query = format!("Q {}", name_text(&key));
        ctx.send(
            self.slave,
            ptype::TEXT,
            0,
            Payload::copy_from(query.as_bytes()),
        );
    }

    fn update_name(&mut self, ctx: &Context, key: [u8; GLOBALNAME_LENGTH], handle: u32) {
        let entry = self.names.entry(key).or_default();
        entry.handle = handle;
        let queue = std::mem::take(&mut entry.queue);
        if queue.is_empty() {
            return;
        }
        let harbor_id = handle >> 24;
        if harbor_id == self.id && harbor_id == self.slave >> 24 {
            for m in queue {
                node().send(
                    Some(ctx),
                    m.source,
                    handle,
                    i32::from(m.ty),
                    m.session,
                    m.data,
                );
            }
        } else if self.slaves[harbor_id as usize].status == Status::Down {
            ctx.error(format!(
                "Drop message to {} (in harbor {harbor_id})",
                name_text(&key)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parm_needs_a_slave() {
        assert_eq!(parse_parm("0 4"), Some((0, 4)));
        assert_eq!(parse_parm("3 100"), Some((3, 100)));
        assert_eq!(parse_parm("0 0"), None);
        assert_eq!(parse_parm("1"), None);
        assert_eq!(parse_parm("300 4"), None);
    }

    #[test]
    fn names_are_zero_padded_16_bytes() {
        let k = name_key(b"abc");
        assert_eq!(&k[..4], b"abc\0");
        assert_eq!(name_text(&k), "abc");
        let long = name_key(b"0123456789abcdefXYZ");
        assert_eq!(name_text(&long), "0123456789abcdef");
    }
}
