//! The `harbor` service (upstream `service_harbor`): routes messages to other nodes.
//!
//! Parameter `"<harbor id> <slave handle>"`; the slave is the Lua service (cslave or, for a
//! standalone node, cdummy) that manages names and links. The core hands every remote message
//! to this service as a `struct remote_message` (PTYPE_SYSTEM); PTYPE_HARBOR text commands
//! register global names (`N <name>`, source = the named service) and attach links to other
//! nodes (`S <fd> <id>`: we connected, `A <fd> <id>`: they connected). Links speak the format
//! of [`wire`]; messages for a harbor whose link is not up yet wait in its queue, messages for
//! a harbor that is down come back as PTYPE_ERROR, messages for an unknown global name wait
//! until the name is registered (the slave is asked with `Q <name>`). A link that closes is
//! reported to the slave as `D <id>`.
//!
//! The socket layer is reached through [`HarborSocket`], so the routing is testable alone.

pub mod wire;

use crate::socket_msg::{CoreSockets, SocketMessage};
use skynet_core::harbor::{GLOBALNAME_LENGTH, REMOTE_MESSAGE_SIZE};
use skynet_core::module::{Instance, Module};
use skynet_core::socket_server::event;
use skynet_core::{node, ptype, Context, Message, Payload};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

const REMOTE_MAX: usize = 256;

/// What the harbor asks of the socket layer.
pub trait HarborSocket: Send {
    /// Takes over a connected socket (events come to this service); false if not possible.
    fn start(&mut self, fd: i32) -> bool;
    fn send(&mut self, fd: i32, bytes: Vec<u8>);
    fn close(&mut self, fd: i32);
}

pub struct HarborModule;

impl Module for HarborModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        Some(Box::new(HarborInstance))
    }
}

struct HarborInstance;

/// A message waiting for a link or a name.
struct Pending {
    source: u32,
    /// Full destination handle (0 while waiting for a name).
    dest: u32,
    ty: u8,
    session: i32,
    data: Payload,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    /// No link yet: messages wait.
    Wait,
    /// Link attached, waiting for the peer's handshake byte: messages wait.
    Handshake,
    /// Link up.
    Up,
    /// No link will come: messages bounce.
    Down,
}

struct Slave {
    fd: i32,
    status: Status,
    decoder: wire::Decoder,
    queue: VecDeque<Pending>,
}

#[derive(Default)]
struct Name {
    handle: u32,
    queue: VecDeque<Pending>,
}

/// What the harbor sends to services (separated from the context for testing).
pub trait Outbox {
    /// Sends with an explicit source; -1 if the destination is gone.
    fn send(&mut self, source: u32, dest: u32, ty: i32, session: i32, data: Payload) -> i32;
    fn log(&mut self, text: String);
}

struct ContextOutbox<'a>(&'a Context);

impl Outbox for ContextOutbox<'_> {
    fn send(&mut self, source: u32, dest: u32, ty: i32, session: i32, data: Payload) -> i32 {
        node().send(Some(self.0), source, dest, ty, session, data)
    }
    fn log(&mut self, text: String) {
        self.0.error(text);
    }
}

pub struct Harbor {
    id: u32,
    slave: u32,
    slaves: Vec<Slave>,
    names: HashMap<[u8; GLOBALNAME_LENGTH], Name>,
    sock: Box<dyn HarborSocket>,
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
        let mut h = Harbor::new(id, slave, Box::new(CoreSockets::new(ctx.handle())));
        ctx.set_callback(Some(Box::new(move |ctx: &Context, msg: Message| {
            h.handle(&mut ContextOutbox(ctx), msg)
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
    pub fn new(id: u32, slave: u32, sock: Box<dyn HarborSocket>) -> Harbor {
        // A standalone node (id 0) has no links: every other harbor is down.
        let status = if id == 0 { Status::Down } else { Status::Wait };
        Harbor {
            id,
            slave,
            slaves: (0..REMOTE_MAX)
                .map(|_| Slave {
                    fd: 0,
                    status,
                    decoder: wire::Decoder::new(),
                    queue: VecDeque::new(),
                })
                .collect(),
            names: HashMap::new(),
            sock,
        }
    }

    pub fn handle(&mut self, out: &mut dyn Outbox, msg: Message) {
        match msg.ty as i32 {
            ptype::HARBOR => self.command(out, msg.source, msg.data.as_slice()),
            ptype::SYSTEM => self.remote(out, msg),
            ptype::SOCKET => match SocketMessage::parse(msg) {
                Some(m) => self.socket(out, m),
                None => out.log("error: harbor got a malformed socket message".to_owned()),
            },
            ty => {
                out.log(format!(
                    "recv invalid message from {:x},  type = {ty}",
                    msg.source
                ));
                if msg.session != 0 && ty != ptype::ERROR {
                    out.send(0, msg.source, ptype::ERROR, msg.session, Payload::empty());
                }
            }
        }
    }

    fn command(&mut self, out: &mut dyn Outbox, source: u32, text: &[u8]) {
        let arg = text.get(2..).unwrap_or_default();
        match text.first() {
            Some(b'N') => {
                if arg.is_empty() || arg.len() >= GLOBALNAME_LENGTH {
                    out.log(format!(
                        "Invalid global name {}",
                        String::from_utf8_lossy(arg)
                    ));
                    return;
                }
                self.update_name(out, name_key(arg), source);
            }
            Some(&c @ (b'S' | b'A')) => {
                let arg = String::from_utf8_lossy(arg);
                let mut w = arg.split_ascii_whitespace();
                let fd = w.next().and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
                let id = w.next().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                if fd == 0 || id <= 0 || id >= REMOTE_MAX as i64 {
                    out.log(format!("Invalid command {} {arg}", c as char));
                    return;
                }
                self.attach(out, c == b'S', fd, id as usize);
            }
            _ => out.log(format!("Unknown command {}", String::from_utf8_lossy(text))),
        }
    }

    /// A link to harbor `id` on socket `fd`: `connected` when we made the connection (then the
    /// peer's handshake byte must come first).
    fn attach(&mut self, out: &mut dyn Outbox, connected: bool, fd: i32, id: usize) {
        if self.slaves[id].fd != 0 {
            out.log(format!("Harbor {id} alreay exist"));
            return;
        }
        if !self.sock.start(fd) {
            out.log(format!(
                "error: harbor link to {id} (fd {fd}) refused: no socket server"
            ));
            return;
        }
        self.sock.send(fd, vec![self.id as u8]);
        let s = &mut self.slaves[id];
        s.fd = fd;
        if connected {
            s.status = Status::Handshake;
            s.decoder = wire::Decoder::expecting_handshake(id as u8);
        } else {
            s.status = Status::Up;
            s.decoder = wire::Decoder::new();
            self.flush(out, id);
        }
    }

    /// Sends what waited for harbor `id`'s link.
    fn flush(&mut self, out: &mut dyn Outbox, id: usize) {
        let queue = std::mem::take(&mut self.slaves[id].queue);
        for m in queue {
            self.send_link(out, id, m);
        }
    }

    fn send_link(&mut self, out: &mut dyn Outbox, id: usize, m: Pending) {
        match wire::encode(m.source, m.dest, m.ty, m.session, m.data.as_slice()) {
            Some(frame) => self.sock.send(self.slaves[id].fd, frame),
            None => out.log(format!(
                "remote message from :{:08x} to :{:08x} is too large.",
                m.source, m.dest
            )),
        }
    }

    fn close_link(&mut self, id: usize) {
        let s = &mut self.slaves[id];
        s.status = Status::Down;
        if s.fd != 0 {
            self.sock.close(s.fd);
            s.fd = 0;
        }
        s.queue.clear();
    }

    fn slave_of_fd(&self, fd: i32) -> Option<usize> {
        (1..REMOTE_MAX).find(|&i| self.slaves[i].fd == fd)
    }

    /// A PTYPE_SOCKET event.
    fn socket(&mut self, out: &mut dyn Outbox, m: SocketMessage) {
        let fd = m.id;
        match m.ty {
            event::DATA => {
                let bytes = m.data.as_ref().map_or(&[][..], |d| d.as_slice());
                self.link_data(out, fd, bytes);
            }
            event::CLOSE | event::ERROR => match self.slave_of_fd(fd) {
                Some(id) => {
                    self.close_link(id);
                    self.report_down(out, id);
                }
                None => out.log(format!("Unknown fd ({fd}) closed")),
            },
            event::WARNING => {
                if let Some(id) = self.slave_of_fd(fd) {
                    out.log(format!(
                        "message havn't send to Harbor ({id}) reach {} K",
                        m.ud
                    ));
                }
            }
            event::CONNECT => {}
            ty => out.log(format!("recv invalid socket message type {ty}")),
        }
    }

    /// Tells the slave that harbor `id` is down (`D <id>`).
    fn report_down(&mut self, out: &mut dyn Outbox, id: usize) {
        let text = format!("D {id}");
        out.send(
            0,
            self.slave,
            ptype::TEXT,
            0,
            Payload::copy_from(text.as_bytes()),
        );
    }

    fn link_data(&mut self, out: &mut dyn Outbox, fd: i32, bytes: &[u8]) {
        let Some(id) = self.slave_of_fd(fd) else {
            out.log(format!("Invalid socket fd ({fd}) data"));
            return;
        };
        let was_handshake = self.slaves[id].decoder.in_handshake();
        let mut frames = Vec::new();
        let result = self.slaves[id].decoder.push(bytes, &mut frames);
        if was_handshake && !self.slaves[id].decoder.in_handshake() {
            self.slaves[id].status = Status::Up;
            self.flush(out, id);
        }
        for f in frames {
            self.deliver(out, f);
        }
        if let Err(e) = result {
            out.log(format!("error: harbor {id} link (fd {fd}): {e}; closed"));
            self.close_link(id);
            // Upstream closes without telling the slave, which then believes the link is up.
            self.report_down(out, id);
        }
    }

    /// A message from another node to one of ours.
    fn deliver(&mut self, out: &mut dyn Outbox, f: wire::Frame) {
        let dest = f.handle | (self.id << 24);
        let ty = i32::from(f.ty);
        let data = Payload::copy_from(&f.payload);
        if out.send(f.source, dest, ty, f.session, data) < 0 {
            if ty != ptype::ERROR {
                out.send(dest, f.source, ptype::ERROR, f.session, Payload::empty());
            }
            out.log(format!(
                "Unknown destination :{dest:x} from :{:x} type({ty})",
                f.source
            ));
        }
    }

    /// A PTYPE_SYSTEM message: the core's `struct remote_message`.
    fn remote(&mut self, out: &mut dyn Outbox, msg: Message) {
        let rm = msg.data.as_slice();
        if rm.len() < REMOTE_MESSAGE_SIZE {
            out.log("error: harbor got a malformed remote message".to_owned());
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
            dest: handle,
            ty,
            session: msg.session,
            data,
        };
        if handle == 0 {
            self.send_name(out, name_key(&rm[..GLOBALNAME_LENGTH]), pending);
        } else {
            self.send_handle(out, pending);
        }
    }

    fn send_handle(&mut self, out: &mut dyn Outbox, m: Pending) {
        let harbor_id = (m.dest >> 24) as usize;
        if harbor_id as u32 == self.id {
            out.send(m.source, m.dest, i32::from(m.ty), m.session, m.data);
            return;
        }
        match self.slaves[harbor_id].status {
            Status::Up => self.send_link(out, harbor_id, m),
            Status::Wait | Status::Handshake => self.slaves[harbor_id].queue.push_back(m),
            Status::Down => {
                // The unreachable destination answers with PTYPE_ERROR.
                out.send(m.dest, m.source, ptype::ERROR, m.session, Payload::empty());
                out.log(format!(
                    "Drop message to harbor {harbor_id} from {:x} to {:x} (session = {}, msgsz = {})",
                    m.source,
                    m.dest,
                    m.session,
                    m.data.len()
                ));
            }
        }
    }

    fn send_name(&mut self, out: &mut dyn Outbox, key: [u8; GLOBALNAME_LENGTH], m: Pending) {
        let entry = self.names.entry(key).or_default();
        if entry.handle != 0 {
            let dest = entry.handle;
            self.send_handle(out, Pending { dest, ..m });
            return;
        }
        entry.queue.push_back(m);
        let query = format!("Q {}", name_text(&key));
        out.send(
            0,
            self.slave,
            ptype::TEXT,
            0,
            Payload::copy_from(query.as_bytes()),
        );
    }

    fn update_name(&mut self, out: &mut dyn Outbox, key: [u8; GLOBALNAME_LENGTH], handle: u32) {
        let entry = self.names.entry(key).or_default();
        entry.handle = handle;
        let queue = std::mem::take(&mut entry.queue);
        for m in queue {
            self.send_handle(out, Pending { dest: handle, ..m });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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

    type Sent = Arc<Mutex<Vec<(i32, Vec<u8>)>>>;

    struct FakeSocket(Sent);
    impl HarborSocket for FakeSocket {
        fn start(&mut self, _fd: i32) -> bool {
            true
        }
        fn send(&mut self, fd: i32, bytes: Vec<u8>) {
            self.0.lock().unwrap().push((fd, bytes));
        }
        fn close(&mut self, fd: i32) {
            self.0.lock().unwrap().push((fd, b"CLOSE".to_vec()));
        }
    }

    #[derive(Default)]
    struct Log {
        sent: Vec<(u32, u32, i32, i32, Vec<u8>)>,
        logs: Vec<String>,
        dead: Vec<u32>,
    }
    impl Outbox for Log {
        fn send(&mut self, source: u32, dest: u32, ty: i32, session: i32, data: Payload) -> i32 {
            if self.dead.contains(&dest) {
                return -1;
            }
            self.sent
                .push((source, dest, ty, session, data.as_slice().to_vec()));
            session
        }
        fn log(&mut self, text: String) {
            self.logs.push(text);
        }
    }

    fn remote_message(name: &[u8], handle: u32, ty: u8, data: &[u8]) -> Payload {
        let (ptr, sz) = Payload::copy_from(data).into_raw();
        let mut rm = [0u8; REMOTE_MESSAGE_SIZE];
        rm[..name.len()].copy_from_slice(name);
        rm[16..20].copy_from_slice(&handle.to_ne_bytes());
        rm[24..32].copy_from_slice(&(ptr as usize).to_ne_bytes());
        rm[32..40].copy_from_slice(&sz.to_ne_bytes());
        rm[40..44].copy_from_slice(&i32::from(ty).to_ne_bytes());
        Payload::copy_from(&rm)
    }

    fn text(t: &str) -> Payload {
        Payload::copy_from(t.as_bytes())
    }

    #[test]
    fn queues_until_the_link_then_sends_frames() {
        let sent: Sent = Arc::default();
        let mut h = Harbor::new(1, 0x0100_0004, Box::new(FakeSocket(sent.clone())));
        let mut out = Log::default();
        // A message for harbor 2 before any link: it waits.
        h.handle(
            &mut out,
            Message::new(
                0x0100_0008,
                5,
                4,
                remote_message(b"", 0x0200_0003, 10, b"hi"),
            ),
        );
        assert!(sent.lock().unwrap().is_empty());
        // We connect to harbor 2 on fd 9: our handshake byte goes out, the queue waits for theirs.
        h.handle(&mut out, Message::new(0x0100_0004, 0, 5, text("S 9 2")));
        assert_eq!(sent.lock().unwrap().as_slice(), &[(9, vec![1u8])]);
        // Their handshake (2) then a frame for our :7.
        let mut data = vec![2u8];
        data.extend(wire::encode(0x0200_0011, 7, 10, 3, b"yo").unwrap());
        let (ptr, len) = Payload::copy_from(&data).into_raw();
        let mut ev = Vec::new();
        ev.extend_from_slice(&1i32.to_ne_bytes());
        ev.extend_from_slice(&9i32.to_ne_bytes());
        ev.extend_from_slice(&(len as i32).to_ne_bytes());
        ev.extend_from_slice(&[0; 4]);
        ev.extend_from_slice(&(ptr as usize).to_ne_bytes());
        h.handle(&mut out, Message::new(0, 0, 6, Payload::copy_from(&ev)));
        let frames = sent.lock().unwrap().clone();
        assert_eq!(frames.len(), 2, "handshake, then the queued message");
        let mut d = wire::Decoder::new();
        let mut got = Vec::new();
        d.push(&frames[1].1, &mut got).unwrap();
        assert_eq!(
            (got[0].source, got[0].handle, got[0].ty, got[0].session),
            (0x0100_0008, 3, 10, 5)
        );
        assert_eq!(
            out.sent,
            vec![(0x0200_0011, 0x0100_0007, 10, 3, b"yo".to_vec())]
        );
    }

    fn data_event(fd: i32, bytes: &[u8]) -> Message {
        let (ptr, len) = Payload::copy_from(bytes).into_raw();
        let mut ev = Vec::new();
        ev.extend_from_slice(&1i32.to_ne_bytes());
        ev.extend_from_slice(&fd.to_ne_bytes());
        ev.extend_from_slice(&(len as i32).to_ne_bytes());
        ev.extend_from_slice(&[0; 4]);
        ev.extend_from_slice(&(ptr as usize).to_ne_bytes());
        Message::new(0, 0, 6, Payload::copy_from(&ev))
    }

    #[test]
    fn malformed_link_is_closed_and_reported_others_keep_working() {
        let sent: Sent = Arc::default();
        let mut h = Harbor::new(1, 4, Box::new(FakeSocket(sent.clone())));
        let mut out = Log::default();
        h.handle(&mut out, Message::new(4, 0, 5, text("A 11 2")));
        h.handle(&mut out, Message::new(4, 0, 5, text("A 12 3")));
        // Harbor 2 sends a length whose first byte is not 0.
        h.handle(&mut out, data_event(11, &[1, 0, 0, 0]));
        assert!(sent.lock().unwrap().contains(&(11, b"CLOSE".to_vec())));
        assert_eq!(out.sent, vec![(0, 4, 0, 0, b"D 2".to_vec())]);
        assert!(
            out.logs[0].contains("message is too long"),
            "{:?}",
            out.logs
        );
        // The link's CLOSE event that follows is not reported twice.
        let mut close = Vec::new();
        close.extend_from_slice(&3i32.to_ne_bytes());
        close.extend_from_slice(&11i32.to_ne_bytes());
        close.extend_from_slice(&[0; 16]);
        h.handle(&mut out, Message::new(0, 0, 6, Payload::copy_from(&close)));
        assert_eq!(out.sent.len(), 1);
        // Harbor 2 is down now: its messages bounce; harbor 3's link still carries frames.
        h.handle(
            &mut out,
            Message::new(
                0x0100_0008,
                9,
                4,
                remote_message(b"", 0x0200_0003, 10, b"x"),
            ),
        );
        assert_eq!(out.sent[1], (0x0200_0003, 0x0100_0008, 7, 9, vec![]));
        h.handle(
            &mut out,
            Message::new(
                0x0100_0008,
                10,
                4,
                remote_message(b"", 0x0300_0003, 10, b"y"),
            ),
        );
        assert_eq!(sent.lock().unwrap().last().unwrap().0, 12);
        // A forged socket message (not from the socket thread) is refused, its pointer unread.
        let block = Payload::copy_from(b"zz");
        let mut ev = Vec::new();
        ev.extend_from_slice(&1i32.to_ne_bytes());
        ev.extend_from_slice(&12i32.to_ne_bytes());
        ev.extend_from_slice(&2i32.to_ne_bytes());
        ev.extend_from_slice(&[0; 4]);
        ev.extend_from_slice(&(block.as_ptr() as usize).to_ne_bytes());
        h.handle(
            &mut out,
            Message::new(0x0100_0008, 0, 6, Payload::copy_from(&ev)),
        );
        assert_eq!(block.as_slice(), b"zz", "still ours");
        assert!(out
            .logs
            .last()
            .unwrap()
            .contains("malformed socket message"));
    }

    #[test]
    fn standalone_names_down_harbors_and_unknown_destinations() {
        let sent: Sent = Arc::default();
        let mut h = Harbor::new(0, 4, Box::new(FakeSocket(sent.clone())));
        let mut out = Log::default();
        // A global name not registered yet: queued, the slave is asked.
        h.handle(
            &mut out,
            Message::new(8, 1, 4, remote_message(b"svc", 0, 10, b"a")),
        );
        assert_eq!(out.sent, vec![(0, 4, 0, 0, b"Q svc".to_vec())]);
        // Registered (source = the named service): the queued message is delivered locally.
        h.handle(&mut out, Message::new(9, 0, 5, text("N svc")));
        assert_eq!(out.sent[1], (8, 9, 10, 1, b"a".to_vec()));
        // A remote handle on a standalone node: error reply and a log line.
        h.handle(
            &mut out,
            Message::new(8, 2, 4, remote_message(b"", 0x0300_0001, 10, b"b")),
        );
        assert_eq!(out.sent[2], (0x0300_0001, 8, 7, 2, vec![]));
        assert!(out
            .logs
            .iter()
            .any(|l| l.starts_with("Drop message to harbor 3")));
        // Bad commands are logged.
        h.handle(&mut out, Message::new(9, 0, 5, text("N ")));
        h.handle(&mut out, Message::new(9, 0, 5, text("S 0 2")));
        h.handle(&mut out, Message::new(9, 0, 5, text("X")));
        assert_eq!(out.logs.len(), 4, "{:?}", out.logs);
        // A frame for a local service that does not exist: error back to the remote source.
        let mut h = Harbor::new(1, 4, Box::new(FakeSocket(sent)));
        h.handle(&mut out, Message::new(4, 0, 5, text("A 11 2")));
        let mut out = Log {
            dead: vec![0x0100_0009],
            ..Log::default()
        };
        h.deliver(
            &mut out,
            wire::Frame {
                source: 0x0200_0001,
                handle: 9,
                ty: 10,
                session: 6,
                payload: vec![],
            },
        );
        assert_eq!(out.sent, vec![(0x0100_0009, 0x0200_0001, 7, 6, vec![])]);
        assert!(out.logs[0].starts_with("Unknown destination :1000009"));
    }
}
