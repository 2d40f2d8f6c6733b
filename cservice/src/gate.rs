//! The `gate` service (upstream `service_gate`): a listening socket whose connections carry
//! length-prefixed packets (`S`: 2-byte, `L`: 4-byte big-endian header), reported to a
//! watchdog or forwarded to per-connection agents or a broker.
//!
//! Parameter: `"<S|L> <watchdog> <[host:]port> <client_tag> <max>"` (watchdog `!` = none, else
//! `:hex` or `.name`; client_tag 0 = PTYPE_CLIENT). Port 0 picks a free port (upstream refuses
//! it): the gate then logs `Listen on <ip>:<port>`, and `skynet_socket_info` lists the listener
//! with the gate as owner.
//!
//! Text commands: `kick <id>`, `forward <id> :<agent> :<client>`, `broker <name>`,
//! `start <id>` (a new connection is read only once started), `close` (stop listening).
//! Reports to the watchdog (PTYPE_TEXT, session 0): `<id> open <id> <addr>:0`, `<id> close`.
//! Packets go, in this order of preference, to the broker (source the gate) or the
//! connection's agent (source its client) as messages of type client_tag, or to the watchdog
//! as PTYPE_TEXT `<id> data <bytes>`; the session is the connection id. A PTYPE_CLIENT message
//! is a packet with the connection id in a 4-byte little-endian trailer: its bytes (without the
//! trailer, no header added) are written to that connection, the block handed to the socket
//! layer without a copy. A packet header announcing 16 MiB or more closes that connection with
//! a log line. When the gate goes away it closes its listener and connections.
//!
//! The socket calls go through [`GateSocket`], so the logic is testable without a network.

use crate::socket_msg::{CoreSockets, SocketMessage};
use skynet_core::module::{Instance, Module};
use skynet_core::socket_server::event;
use skynet_core::{node, ptype, Context, Message, Payload};
use std::collections::HashMap;
use std::sync::Arc;

/// Packets of 16 MiB or more close their connection (as upstream).
pub const MAX_PACKET: usize = 0x100_0000;
/// Listen backlog (upstream `BACKLOG`).
pub const BACKLOG: i32 = 128;

/// What the gate asks of the socket layer.
pub trait GateSocket {
    /// Listens; the socket id or `None`.
    fn listen(&mut self, host: &str, port: u16) -> Option<i32>;
    fn start(&mut self, id: i32);
    fn close(&mut self, id: i32);
    /// Writes a block to a connection (the socket layer takes it over).
    fn send(&mut self, id: i32, data: Payload);
}

/// What the gate sends to services.
#[derive(Debug)]
pub enum Out {
    /// A text report to the watchdog.
    Report(String),
    /// A packet for `dest` from `source` (0 = the gate), session = the connection id.
    Forward {
        source: u32,
        dest: u32,
        ty: i32,
        session: i32,
        data: Payload,
    },
    /// A line for the log.
    Log(String),
}

/// The parsed service parameter.
#[derive(Debug, PartialEq, Eq)]
pub struct GateConfig {
    pub header: usize,
    pub watchdog: Option<String>,
    pub host: String,
    pub port: u16,
    pub client_tag: i32,
    pub max: usize,
}

/// `strtol(s, NULL, 10)`: an optional sign and leading digits; anything else stops the parse.
fn leading_int(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -n
    } else {
        n
    }
}

fn leading_id(s: &str) -> i32 {
    leading_int(s) as i32
}

impl GateConfig {
    /// Parses as upstream (`"%c %s %s %d %d"`), checking in upstream's order: word count, max,
    /// header style, address.
    pub fn parse(parm: &str) -> Result<GateConfig, String> {
        let w: Vec<&str> = parm.split_ascii_whitespace().collect();
        if w.len() < 4 {
            return Err(format!("Invalid gate parm {parm}"));
        }
        let max = w.get(4).map_or(0, |m| leading_int(m));
        if max <= 0 {
            return Err("Need max connection".to_owned());
        }
        let header = match w[0] {
            "S" => 2,
            "L" => 4,
            _ => return Err("Invalid data header style".to_owned()),
        };
        let client_tag = leading_int(w[3]) as i32;
        let (host, port) = match w[2].rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => ("", w[2]),
        };
        // Port 0 (any free port) is accepted; upstream refuses it.
        let port = match u16::try_from(leading_int(port)) {
            Ok(p) if port.trim_start().starts_with(|c: char| c.is_ascii_digit()) => p,
            _ => return Err(format!("Invalid gate address {}", w[2])),
        };
        Ok(GateConfig {
            header,
            watchdog: (!w[1].starts_with('!')).then(|| w[1].to_owned()),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            client_tag: if client_tag == 0 {
                ptype::CLIENT
            } else {
                client_tag
            },
            max: max as usize,
        })
    }
}

/// Reassembles length-prefixed packets from a byte stream.
#[derive(Default)]
pub struct Framer {
    head: [u8; 4],
    head_len: usize,
    /// The packet being read: its length and the bytes so far (grown as they arrive, so a
    /// header announcing a large packet costs nothing until its bytes come).
    body: Option<(usize, Vec<u8>)>,
}

impl Framer {
    /// Feeds bytes; complete packets are appended to `out` (zero-length packets are skipped,
    /// as upstream). `Err(len)` when a header announces `MAX_PACKET` bytes or more: the framer
    /// is reset and the rest of `bytes` ignored (the connection is to be closed).
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        header: usize,
        out: &mut Vec<Payload>,
    ) -> Result<(), usize> {
        while !bytes.is_empty() {
            match &mut self.body {
                None => {
                    let take = (header - self.head_len).min(bytes.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                    self.head_len += take;
                    bytes = &bytes[take..];
                    if self.head_len < header {
                        break;
                    }
                    self.head_len = 0;
                    let n = self.head[..header]
                        .iter()
                        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                    if n >= MAX_PACKET {
                        *self = Framer::default();
                        return Err(n);
                    }
                    if n == 0 {
                        continue;
                    }
                    if bytes.len() >= n {
                        // The whole packet is here: one copy, straight into the message block.
                        out.push(Payload::copy_from(&bytes[..n]));
                        bytes = &bytes[n..];
                    } else {
                        self.body = Some((n, Vec::with_capacity(n.min(64 * 1024))));
                    }
                }
                Some((n, body)) => {
                    let take = (*n - body.len()).min(bytes.len());
                    body.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if body.len() == *n {
                        out.push(Payload::copy_from(body));
                        self.body = None;
                    }
                }
            }
        }
        Ok(())
    }
}

struct Connection {
    agent: u32,
    client: u32,
    framer: Framer,
}

/// The gate's state.
pub struct Gate {
    cfg: GateConfig,
    watchdog: u32,
    broker: u32,
    listen_id: Option<i32>,
    conns: HashMap<i32, Connection>,
}

/// `strtoul(s + 1, NULL, 16)` of a `:hex` address (the first character is skipped, whatever
/// it is, as upstream).
fn parse_hex_addr(s: &str) -> u32 {
    let s = s.get(1..).unwrap_or("");
    let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    u32::from_str_radix(&s[..digits], 16).unwrap_or(0)
}

impl Gate {
    /// A gate reporting to `watchdog` (0 = none); starts listening.
    pub fn start(
        cfg: GateConfig,
        watchdog: u32,
        sock: &mut dyn GateSocket,
    ) -> Result<Gate, String> {
        let listen_id = sock
            .listen(&cfg.host, cfg.port)
            .ok_or_else(|| format!("gate can't listen on {}:{}", cfg.host, cfg.port))?;
        sock.start(listen_id);
        Ok(Gate {
            cfg,
            watchdog,
            broker: 0,
            listen_id: Some(listen_id),
            conns: HashMap::new(),
        })
    }

    pub fn listen_id(&self) -> Option<i32> {
        self.listen_id
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn report(&self, out: &mut Vec<Out>, text: String) {
        if self.watchdog != 0 {
            out.push(Out::Report(text));
        }
    }

    /// A text command from another service. `query` resolves a `.name` or `:hex` (for
    /// `broker`).
    pub fn command(
        &mut self,
        text: &str,
        sock: &mut dyn GateSocket,
        query: impl Fn(&str) -> u32,
        out: &mut Vec<Out>,
    ) {
        let (cmd, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim_start_matches(' ');
        match cmd {
            "" => {}
            "kick" => {
                let id = leading_id(arg);
                if self.conns.contains_key(&id) {
                    sock.close(id);
                }
            }
            "forward" => {
                let mut w = arg.splitn(3, ' ');
                if let (Some(id), Some(agent), Some(client)) = (w.next(), w.next(), w.next()) {
                    if let Some(c) = self.conns.get_mut(&leading_id(id)) {
                        c.agent = parse_hex_addr(agent);
                        c.client = parse_hex_addr(client);
                    }
                }
            }
            "broker" => self.broker = query(arg),
            "start" => {
                let id = leading_id(arg);
                if self.conns.contains_key(&id) {
                    sock.start(id);
                }
            }
            "close" => {
                if let Some(id) = self.listen_id.take() {
                    sock.close(id);
                }
            }
            _ => out.push(Out::Log(format!("[gate] Unknown command : {text}"))),
        }
    }

    /// ACCEPT: connection `id` arrived on listener `listener`. Over `max`, or after `close`,
    /// it is closed at once; otherwise it waits for `start <id>`.
    pub fn accept(
        &mut self,
        listener: i32,
        id: i32,
        addr: &[u8],
        sock: &mut dyn GateSocket,
        out: &mut Vec<Out>,
    ) {
        if Some(listener) != self.listen_id || self.conns.len() >= self.cfg.max {
            sock.close(id);
            return;
        }
        self.conns.insert(
            id,
            Connection {
                agent: 0,
                client: 0,
                framer: Framer::default(),
            },
        );
        // Upstream keeps at most 31 bytes of the peer's name.
        let addr = String::from_utf8_lossy(&addr[..addr.len().min(31)]).into_owned();
        self.report(out, format!("{id} open {id} {addr}:0"));
        out.push(Out::Log(format!("socket open: {id:x}")));
    }

    /// Bytes read from a connection.
    pub fn data(&mut self, id: i32, bytes: &[u8], sock: &mut dyn GateSocket, out: &mut Vec<Out>) {
        let Some(c) = self.conns.get_mut(&id) else {
            out.push(Out::Log(format!("Drop unknown connection {id} message")));
            sock.close(id);
            return;
        };
        let mut packets = Vec::new();
        let result = c.framer.feed(bytes, self.cfg.header, &mut packets);
        let (agent, client) = (c.agent, c.client);
        for data in packets {
            if self.broker != 0 {
                out.push(Out::Forward {
                    source: 0,
                    dest: self.broker,
                    ty: self.cfg.client_tag,
                    session: id,
                    data,
                });
            } else if agent != 0 {
                out.push(Out::Forward {
                    source: client,
                    dest: agent,
                    ty: self.cfg.client_tag,
                    session: id,
                    data,
                });
            } else if self.watchdog != 0 {
                let mut text = format!("{id} data ").into_bytes();
                text.extend_from_slice(data.as_slice());
                out.push(Out::Forward {
                    source: 0,
                    dest: self.watchdog,
                    ty: ptype::TEXT,
                    session: id,
                    data: Payload::copy_from(&text),
                });
            }
        }
        if result.is_err() {
            sock.close(id);
            out.push(Out::Log("Recv socket message > 16M".to_owned()));
        }
    }

    /// CLOSE or ERROR on a connection: reported, and the socket closed (freeing a half-closed
    /// one).
    pub fn closed(&mut self, id: i32, sock: &mut dyn GateSocket, out: &mut Vec<Out>) {
        if self.conns.remove(&id).is_some() {
            self.report(out, format!("{id} close"));
            sock.close(id);
        }
    }

    /// CONNECT: fine for the listener (logged with the port when port 0 was asked for) and
    /// known connections; any other socket is closed.
    pub fn connected(
        &mut self,
        id: i32,
        port: i32,
        text: &[u8],
        sock: &mut dyn GateSocket,
        out: &mut Vec<Out>,
    ) {
        if Some(id) == self.listen_id {
            if self.cfg.port == 0 && port > 0 {
                let ip = String::from_utf8_lossy(text);
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.into_owned()
                };
                out.push(Out::Log(format!("Listen on {ip}:{port}")));
            }
            return;
        }
        if !self.conns.contains_key(&id) {
            out.push(Out::Log(format!("Close unknown connection {id}")));
            sock.close(id);
        }
    }

    /// A PTYPE_CLIENT message: packet + 4-byte little-endian connection id. The packet block
    /// goes to the socket layer as it is (no copy). `Err` says why it was not sent.
    pub fn client_message(
        &mut self,
        mut msg: Payload,
        sock: &mut dyn GateSocket,
    ) -> Result<(), String> {
        // The readable bytes (a NULL block with a size has none).
        let b = msg.as_slice();
        let n = b.len();
        if n <= 4 {
            return Err("Invalid client message".to_owned());
        }
        let id = i32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
        if !self.conns.contains_key(&id) {
            return Err(format!("Invalid client id {id}"));
        }
        msg.truncate(n - 4);
        sock.send(id, msg);
        Ok(())
    }

    /// The type tag forwarded client packets carry.
    pub fn client_tag(&self) -> i32 {
        self.cfg.client_tag
    }

    /// Every open connection and the listener, to close when the gate goes away.
    pub fn sockets(&self) -> Vec<i32> {
        self.conns.keys().copied().chain(self.listen_id).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The service

pub struct GateModule;

impl Module for GateModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        Some(Box::new(GateInstance))
    }
}

struct GateInstance;

/// The gate with its socket layer; closes its sockets when dropped (the service's release).
struct GateService {
    gate: Gate,
    sock: CoreSockets,
}

impl Drop for GateService {
    fn drop(&mut self) {
        for id in self.gate.sockets() {
            GateSocket::close(&mut self.sock, id);
        }
    }
}

impl Instance for GateInstance {
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        let Some(parm) = parm else {
            return false;
        };
        let cfg = match GateConfig::parse(parm) {
            Ok(c) => c,
            Err(e) => {
                ctx.error(e);
                return false;
            }
        };
        let watchdog = match &cfg.watchdog {
            None => 0,
            Some(name) => match node().query_name(Some(ctx), name) {
                0 => {
                    ctx.error(format!("Invalid watchdog {name}"));
                    return false;
                }
                h => h,
            },
        };
        if node().socket().is_none() {
            ctx.error("gate: no socket server");
            return false;
        }
        let mut sock = CoreSockets::new(ctx.handle());
        let gate = match Gate::start(cfg, watchdog, &mut sock) {
            Ok(g) => g,
            Err(e) => {
                ctx.error(e);
                return false;
            }
        };
        let mut svc = GateService { gate, sock };
        ctx.set_callback(Some(Box::new(move |ctx: &Context, msg: Message| {
            svc.handle(ctx, msg)
        })));
        true
    }
}

impl GateService {
    fn handle(&mut self, ctx: &Context, msg: Message) {
        let mut out = Vec::new();
        let sock = &mut self.sock;
        match msg.ty as i32 {
            ptype::TEXT => {
                let text = String::from_utf8_lossy(msg.data.as_slice()).into_owned();
                self.gate.command(
                    &text,
                    sock,
                    |name| node().query_name(Some(ctx), name),
                    &mut out,
                );
            }
            ptype::CLIENT => {
                let source = msg.source;
                if let Err(e) = self.gate.client_message(msg.data, sock) {
                    out.push(Out::Log(format!("{e} from {source:x}")));
                }
            }
            ptype::SOCKET => match SocketMessage::parse(msg) {
                Some(m) => self.socket(m, &mut out),
                None => out.push(Out::Log(
                    "gate: malformed socket message ignored".to_owned(),
                )),
            },
            _ => {}
        }
        for o in out {
            match o {
                Out::Report(text) => {
                    node().send(
                        Some(ctx),
                        0,
                        self.gate.watchdog,
                        ptype::TEXT,
                        0,
                        Payload::copy_from(text.as_bytes()),
                    );
                }
                Out::Forward {
                    source,
                    dest,
                    ty,
                    session,
                    data,
                } => {
                    node().send(Some(ctx), source, dest, ty, session, data);
                }
                Out::Log(text) => ctx.error(text),
            }
        }
    }

    fn socket(&mut self, m: SocketMessage, out: &mut Vec<Out>) {
        let sock = &mut self.sock;
        match m.ty {
            event::DATA => {
                let bytes = m.data.as_ref().map_or(&[][..], |d| d.as_slice());
                self.gate.data(m.id, bytes, sock, out);
            }
            event::CONNECT => self.gate.connected(m.id, m.ud, m.text(), sock, out),
            event::CLOSE | event::ERROR => self.gate.closed(m.id, sock, out),
            event::ACCEPT => self.gate.accept(m.id, m.ud, m.text(), sock, out),
            event::WARNING => out.push(Out::Log(format!("fd ({}) send buffer ({})K", m.id, m.ud))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Mock {
        calls: Vec<String>,
        sent: Vec<(i32, Vec<u8>)>,
    }

    impl GateSocket for Mock {
        fn listen(&mut self, host: &str, port: u16) -> Option<i32> {
            self.calls.push(format!("listen {host} {port}"));
            Some(1)
        }
        fn start(&mut self, id: i32) {
            self.calls.push(format!("start {id}"));
        }
        fn close(&mut self, id: i32) {
            self.calls.push(format!("close {id}"));
        }
        fn send(&mut self, id: i32, data: Payload) {
            self.sent.push((id, data.as_slice().to_vec()));
        }
    }

    fn gate(parm: &str, watchdog: u32) -> (Gate, Mock) {
        let mut m = Mock::default();
        let g = Gate::start(GateConfig::parse(parm).unwrap(), watchdog, &mut m).unwrap();
        (g, m)
    }

    /// (source, dest, ty, session, bytes) of the forwards; other outputs as text.
    fn show(out: &[Out]) -> Vec<String> {
        out.iter()
            .map(|o| match o {
                Out::Report(t) => format!("report {t}"),
                Out::Log(t) => format!("log {t}"),
                Out::Forward {
                    source,
                    dest,
                    ty,
                    session,
                    data,
                } => format!(
                    "forward {source:x}->{dest:x} type {ty} session {session} {}",
                    String::from_utf8_lossy(data.as_slice())
                ),
            })
            .collect()
    }

    #[test]
    fn parameters_as_upstream() {
        let c = GateConfig::parse("S .watchdog 127.0.0.1:8888 0 64").unwrap();
        assert_eq!((c.header, c.port, c.client_tag, c.max), (2, 8888, 3, 64));
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.watchdog.as_deref(), Some(".watchdog"));
        let c = GateConfig::parse("L ! 9000 77 8").unwrap();
        assert_eq!((c.header, c.watchdog, c.client_tag), (4, None, 77));
        assert_eq!(c.host, "");
        let c = GateConfig::parse("S :10 [::1]:0 0 8").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port),
            ("::1", 0),
            "port 0: any free port"
        );
        assert_eq!(
            GateConfig::parse("X ! 9000 0 8").unwrap_err(),
            "Invalid data header style"
        );
        assert_eq!(
            GateConfig::parse("X ! 9000 0 0").unwrap_err(),
            "Need max connection",
            "max is checked before the header style"
        );
        assert_eq!(
            GateConfig::parse("S ! host:x 0 8").unwrap_err(),
            "Invalid gate address host:x"
        );
        assert!(GateConfig::parse("S ! 70000 0 8").is_err());
        assert!(GateConfig::parse("S ! -1 0 8").is_err());
        assert_eq!(
            GateConfig::parse("S !").unwrap_err(),
            "Invalid gate parm S !"
        );
    }

    fn feed_all(f: &mut Framer, bytes: &[u8], header: usize) -> Result<Vec<Vec<u8>>, usize> {
        let mut out = Vec::new();
        f.feed(bytes, header, &mut out)?;
        Ok(out.iter().map(|p| p.as_slice().to_vec()).collect())
    }

    #[test]
    fn framer_handles_split_and_joined_packets() {
        let stream = [0u8, 3, b'a', b'b', b'c', 0, 0, 0, 1, b'z', 0, 2, b'q'];
        // Every split point, byte by byte, and all at once give the same packets.
        for split in 0..stream.len() {
            let mut f = Framer::default();
            let mut got = feed_all(&mut f, &stream[..split], 2).unwrap();
            got.extend(feed_all(&mut f, &stream[split..], 2).unwrap());
            assert_eq!(
                got,
                vec![b"abc".to_vec(), b"z".to_vec()],
                "split at {split}"
            );
        }
        let mut f = Framer::default();
        let mut got = Vec::new();
        for b in &stream {
            got.extend(feed_all(&mut f, std::slice::from_ref(b), 2).unwrap());
        }
        assert_eq!(got, vec![b"abc".to_vec(), b"z".to_vec()]);
        assert_eq!(feed_all(&mut f, b"r", 2).unwrap(), vec![b"qr".to_vec()]);
        // 4-byte headers; the limit.
        let mut f = Framer::default();
        assert_eq!(
            feed_all(&mut f, &[0, 0, 0, 2, b'h', b'i', 0, 0xff, 0xff], 4).unwrap(),
            vec![b"hi".to_vec()]
        );
        assert_eq!(
            feed_all(&mut f, &[0xff, 0, 0, 0, 0, 0, 0, 0], 4)
                .unwrap()
                .len(),
            0
        );
        let mut f = Framer::default();
        assert_eq!(feed_all(&mut f, &[1, 0, 0, 0, 9, 9], 4), Err(0x100_0000));
        // A packet just under the limit is accepted (and costs nothing until its bytes come).
        let mut f = Framer::default();
        assert_eq!(
            feed_all(&mut f, &[0, 0xff, 0xff, 0xff, 1], 4)
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn watchdog_reports_and_agent_forwarding() {
        let (mut g, mut m) = gate("S .wd 8888 0 2", 9);
        assert_eq!(m.calls, vec!["listen  8888", "start 1"]);
        let mut out = Vec::new();
        g.accept(1, 5, b"127.0.0.1:4000", &mut m, &mut out);
        assert_eq!(
            show(&out),
            vec!["report 5 open 5 127.0.0.1:4000:0", "log socket open: 5"]
        );
        out.clear();
        g.data(5, &[0, 2, b'h', b'i', 0], &mut m, &mut out);
        g.data(5, &[1, b'!'], &mut m, &mut out);
        assert_eq!(
            show(&out),
            vec![
                "forward 0->9 type 0 session 5 5 data hi",
                "forward 0->9 type 0 session 5 5 data !"
            ]
        );
        out.clear();
        g.command("forward 5 :a :b", &mut m, |_| 0, &mut out);
        g.data(5, &[0, 1, b'x'], &mut m, &mut out);
        assert_eq!(show(&out), vec!["forward b->a type 3 session 5 x"]);
        out.clear();
        g.command(
            "broker .b",
            &mut m,
            |n| if n == ".b" { 0x77 } else { 0 },
            &mut out,
        );
        g.data(5, &[0, 1, b'y'], &mut m, &mut out);
        assert_eq!(show(&out), vec!["forward 0->77 type 3 session 5 y"]);
        // PTYPE_CLIENT: trailer id 5 (little-endian) -> written to the socket.
        assert!(g
            .client_message(Payload::copy_from(&[b'o', b'k', 5, 0, 0, 0]), &mut m)
            .is_ok());
        assert_eq!(m.sent, vec![(5, b"ok".to_vec())]);
        assert_eq!(
            g.client_message(Payload::copy_from(&[b'o', 6, 0, 0, 0]), &mut m),
            Err("Invalid client id 6".to_owned())
        );
        assert!(g
            .client_message(Payload::copy_from(&[5, 0, 0, 0]), &mut m)
            .is_err());
        out.clear();
        g.closed(5, &mut m, &mut out);
        assert_eq!(show(&out), vec!["report 5 close"]);
        assert_eq!(m.calls.last().unwrap(), "close 5");
        out.clear();
        g.closed(5, &mut m, &mut out);
        assert!(out.is_empty(), "a second CLOSE is not reported");
    }

    #[test]
    fn max_connections_oversize_and_commands() {
        let (mut g, mut m) = gate("S ! 8888 0 1", 0);
        let mut out = Vec::new();
        g.accept(1, 5, b"a", &mut m, &mut out);
        g.accept(1, 6, b"b", &mut m, &mut out);
        assert!(m.calls.contains(&"close 6".to_owned()), "over max: closed");
        g.accept(2, 8, b"c", &mut m, &mut out);
        assert!(
            m.calls.contains(&"close 8".to_owned()),
            "not from our listener: closed"
        );
        g.data(5, &[0, 1, b'a'], &mut m, &mut out);
        assert!(
            out.iter().all(|o| matches!(o, Out::Log(_))),
            "no watchdog: no reports, packets dropped"
        );
        let mut l = Gate::start(GateConfig::parse("L ! 8888 0 1").unwrap(), 0, &mut m).unwrap();
        l.accept(1, 7, b"c", &mut m, &mut out);
        out.clear();
        l.data(7, &[1, 0, 0, 0], &mut m, &mut out);
        assert!(
            m.calls.contains(&"close 7".to_owned()),
            "16 MiB packet closes the connection"
        );
        assert_eq!(show(&out), vec!["log Recv socket message > 16M"]);
        g.command("kick 5", &mut m, |_| 0, &mut out);
        assert!(m.calls.contains(&"close 5".to_owned()));
        g.command("start 5", &mut m, |_| 0, &mut out);
        assert_eq!(m.calls.last().unwrap(), "start 5");
        g.command("start 99", &mut m, |_| 0, &mut out);
        assert_eq!(
            m.calls.last().unwrap(),
            "start 5",
            "unknown ids are ignored"
        );
        assert_eq!(g.sockets().len(), 2);
        g.command("close", &mut m, |_| 0, &mut out);
        assert_eq!(g.listen_id(), None);
        assert_eq!(g.sockets(), vec![5]);
        g.accept(1, 9, b"d", &mut m, &mut out);
        assert!(
            m.calls.contains(&"close 9".to_owned()),
            "accepted after close"
        );
        out.clear();
        g.command("bogus x", &mut m, |_| 0, &mut out);
        assert_eq!(show(&out), vec!["log [gate] Unknown command : bogus x"]);
    }

    #[test]
    fn connect_events() {
        let (mut g, mut m) = gate("S ! 127.0.0.1:0 0 4", 0);
        let mut out = Vec::new();
        g.connected(1, 40000, b"127.0.0.1", &mut m, &mut out);
        g.connected(1, 0, b"start", &mut m, &mut out);
        assert_eq!(show(&out), vec!["log Listen on 127.0.0.1:40000"]);
        out.clear();
        g.connected(3, 0, b"start", &mut m, &mut out);
        assert_eq!(show(&out), vec!["log Close unknown connection 3"]);
        let (mut g, mut m) = gate("S ! 8888 0 4", 0);
        out.clear();
        g.connected(1, 8888, b"0.0.0.0", &mut m, &mut out);
        assert!(out.is_empty(), "a fixed port is not logged");
    }
}
