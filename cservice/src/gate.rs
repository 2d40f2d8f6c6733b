//! The `gate` service's logic (upstream `service_gate`): a listening socket whose connections
//! carry length-prefixed packets (`S`: 2-byte, `L`: 4-byte big-endian header), reported to a
//! watchdog or forwarded to per-connection agents or a broker.
//!
//! Parameter: `"<S|L> <watchdog> <[host:]port> <client_tag> <max>"` (watchdog `!` = none;
//! client_tag 0 = PTYPE_CLIENT). Text commands: `kick <id>`, `forward <id> :<agent> :<client>`,
//! `broker <name>`, `start <id>`, `close`. Reports to the watchdog (PTYPE_TEXT):
//! `<id> open <id> <addr>:0`, `<id> close`, `<id> data <bytes>`. PTYPE_CLIENT input is a packet
//! with the connection id in a 4-byte little-endian trailer, written to that connection.
//!
//! The socket calls go through [`GateSocket`], so this logic is testable without a network.

use std::collections::HashMap;

/// Packets of 16 MiB or more close their connection (as upstream).
pub const MAX_PACKET: usize = 0x100_0000;

/// What the gate asks of the socket layer.
pub trait GateSocket {
    /// Listens; the socket id or `None`.
    fn listen(&mut self, host: &str, port: u16) -> Option<i32>;
    fn start(&mut self, id: i32);
    fn close(&mut self, id: i32);
    /// Writes bytes to a connection.
    fn send(&mut self, id: i32, data: Vec<u8>);
}

/// What the gate sends to services.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// A text report to the watchdog.
    Report(String),
    /// A client packet for `dest` from `source` (0 = the gate), session = the connection id.
    Forward {
        source: u32,
        dest: u32,
        session: i32,
        data: Vec<u8>,
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

impl GateConfig {
    pub fn parse(parm: &str) -> Result<GateConfig, String> {
        let w: Vec<&str> = parm.split_ascii_whitespace().collect();
        if w.len() < 4 {
            return Err(format!("Invalid gate parm {parm}"));
        }
        let header = match w[0] {
            "S" => 2,
            "L" => 4,
            _ => return Err("Invalid data header style".to_owned()),
        };
        let max = w.get(4).and_then(|m| m.parse::<i64>().ok()).unwrap_or(0);
        if max <= 0 {
            return Err("Need max connection".to_owned());
        }
        let client_tag = w[3].parse::<i32>().unwrap_or(0);
        let (host, port) = match w[2].rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => ("", w[2]),
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("Invalid gate address {}", w[2])),
        };
        Ok(GateConfig {
            header,
            watchdog: (w[1] != "!").then(|| w[1].to_owned()),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            client_tag: if client_tag == 0 { 3 } else { client_tag },
            max: max as usize,
        })
    }
}

/// Reassembles length-prefixed packets from a byte stream.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Length of the packet being read, once its header is in.
    need: Option<usize>,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete packet; `Err(len)` for a packet of `MAX_PACKET` bytes or more.
    /// Zero-length packets are skipped, as upstream does.
    pub fn next(&mut self, header: usize) -> Option<Result<Vec<u8>, usize>> {
        loop {
            let len = match self.need {
                Some(n) => n,
                None => {
                    if self.buf.len() < header {
                        return None;
                    }
                    let n = self.buf[..header]
                        .iter()
                        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                    self.buf.drain(..header);
                    if n >= MAX_PACKET {
                        return Some(Err(n));
                    }
                    if n == 0 {
                        continue;
                    }
                    self.need = Some(n);
                    n
                }
            };
            if self.buf.len() < len {
                return None;
            }
            self.need = None;
            let rest = self.buf.split_off(len);
            return Some(Ok(std::mem::replace(&mut self.buf, rest)));
        }
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

fn parse_hex_addr(s: &str) -> u32 {
    let s = s.strip_prefix(':').unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    u32::from_str_radix(&s[..digits], 16).unwrap_or(0)
}

fn leading_int(s: &str) -> i32 {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().unwrap_or(0)
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

    fn report(&self, out: &mut Vec<Out>, text: String) {
        if self.watchdog != 0 {
            out.push(Out::Report(text));
        }
    }

    /// A text command from another service. `query` resolves a `.name` (for `broker`).
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
                let id = leading_int(arg);
                if self.conns.contains_key(&id) {
                    sock.close(id);
                }
            }
            "forward" => {
                let mut w = arg.split(' ');
                if let (Some(id), Some(agent), Some(client)) = (w.next(), w.next(), w.next()) {
                    if let Some(c) = self.conns.get_mut(&leading_int(id)) {
                        c.agent = parse_hex_addr(agent);
                        c.client = parse_hex_addr(client);
                    }
                }
            }
            "broker" => self.broker = query(arg),
            "start" => {
                let id = leading_int(arg);
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

    /// A new connection accepted on the listening socket.
    pub fn accept(&mut self, id: i32, addr: &str, sock: &mut dyn GateSocket, out: &mut Vec<Out>) {
        if self.conns.len() >= self.cfg.max {
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
        let addr: String = addr.chars().take(31).collect();
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
        c.framer.push(bytes);
        while let Some(packet) = c.framer.next(self.cfg.header) {
            match packet {
                Err(_) => {
                    c.framer = Framer::default();
                    sock.close(id);
                    out.push(Out::Log("Recv socket message > 16M".to_owned()));
                    return;
                }
                Ok(data) => {
                    if self.broker != 0 {
                        out.push(Out::Forward {
                            source: 0,
                            dest: self.broker,
                            session: id,
                            data,
                        });
                    } else if c.agent != 0 {
                        out.push(Out::Forward {
                            source: c.client,
                            dest: c.agent,
                            session: id,
                            data,
                        });
                    } else if self.watchdog != 0 {
                        let mut text = format!("{id} data ").into_bytes();
                        text.extend_from_slice(&data);
                        out.push(Out::Forward {
                            source: 0,
                            dest: self.watchdog,
                            session: id,
                            data: text,
                        });
                    }
                }
            }
        }
    }

    /// A connection closed or failed.
    pub fn closed(&mut self, id: i32, sock: &mut dyn GateSocket, out: &mut Vec<Out>) {
        if self.conns.remove(&id).is_some() {
            self.report(out, format!("{id} close"));
            sock.close(id);
        }
    }

    /// A CONNECT event: fine for the listener and known connections; others are closed.
    pub fn connected(&mut self, id: i32, sock: &mut dyn GateSocket, out: &mut Vec<Out>) {
        if Some(id) != self.listen_id && !self.conns.contains_key(&id) {
            out.push(Out::Log(format!("Close unknown connection {id}")));
            sock.close(id);
        }
    }

    /// A PTYPE_CLIENT message: packet + 4-byte little-endian connection id. `Err` explains why
    /// it was not sent.
    pub fn client_message(&mut self, msg: &[u8], sock: &mut dyn GateSocket) -> Result<(), String> {
        if msg.len() <= 4 {
            return Err("Invalid client message".to_owned());
        }
        let (data, id) = msg.split_at(msg.len() - 4);
        let id = i32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        if !self.conns.contains_key(&id) {
            return Err(format!("Invalid client id {id}"));
        }
        sock.send(id, data.to_vec());
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
        fn send(&mut self, id: i32, data: Vec<u8>) {
            self.sent.push((id, data));
        }
    }

    fn gate(parm: &str, watchdog: u32) -> (Gate, Mock) {
        let mut m = Mock::default();
        let g = Gate::start(GateConfig::parse(parm).unwrap(), watchdog, &mut m).unwrap();
        (g, m)
    }

    #[test]
    fn parameters_as_upstream() {
        let c = GateConfig::parse("S .watchdog 127.0.0.1:8888 0 64").unwrap();
        assert_eq!((c.header, c.port, c.client_tag, c.max), (2, 8888, 3, 64));
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.watchdog.as_deref(), Some(".watchdog"));
        let c = GateConfig::parse("L ! 9000 77 8").unwrap();
        assert_eq!((c.header, c.watchdog, c.client_tag), (4, None, 77));
        assert!(GateConfig::parse("X ! 9000 0 8").is_err());
        assert!(GateConfig::parse("S ! 9000 0 0")
            .unwrap_err()
            .contains("max"));
        assert!(GateConfig::parse("S ! host:0 0 8")
            .unwrap_err()
            .contains("address"));
        assert!(GateConfig::parse("S !").is_err());
    }

    #[test]
    fn framer_handles_split_and_joined_packets() {
        let mut f = Framer::default();
        let stream = [0u8, 3, b'a', b'b', b'c', 0, 0, 0, 1, b'z'];
        for b in &stream[..4] {
            f.push(std::slice::from_ref(b));
            assert_eq!(f.next(2), None);
        }
        f.push(&stream[4..]);
        assert_eq!(f.next(2), Some(Ok(b"abc".to_vec())));
        assert_eq!(
            f.next(2),
            Some(Ok(b"z".to_vec())),
            "the zero-length packet is skipped"
        );
        assert_eq!(f.next(2), None);
        let mut f = Framer::default();
        f.push(&[1, 0, 0, 0]);
        assert_eq!(f.next(4), Some(Err(0x100_0000)));
    }

    #[test]
    fn watchdog_reports_and_agent_forwarding() {
        let (mut g, mut m) = gate("S .wd 8888 0 2", 9);
        assert_eq!(m.calls, vec!["listen  8888", "start 1"]);
        let mut out = Vec::new();
        g.accept(5, "127.0.0.1:4000", &mut m, &mut out);
        assert_eq!(out[0], Out::Report("5 open 5 127.0.0.1:4000:0".to_owned()));
        out.clear();
        g.data(5, &[0, 2, b'h', b'i'], &mut m, &mut out);
        assert_eq!(
            out,
            vec![Out::Forward {
                source: 0,
                dest: 9,
                session: 5,
                data: b"5 data hi".to_vec()
            }]
        );
        out.clear();
        g.command("forward 5 :a :b", &mut m, |_| 0, &mut out);
        g.data(5, &[0, 1, b'x'], &mut m, &mut out);
        assert_eq!(
            out,
            vec![Out::Forward {
                source: 0xb,
                dest: 0xa,
                session: 5,
                data: b"x".to_vec()
            }]
        );
        out.clear();
        g.command(
            "broker .b",
            &mut m,
            |n| if n == ".b" { 0x77 } else { 0 },
            &mut out,
        );
        g.data(5, &[0, 1, b'y'], &mut m, &mut out);
        assert_eq!(
            out,
            vec![Out::Forward {
                source: 0,
                dest: 0x77,
                session: 5,
                data: b"y".to_vec()
            }]
        );
        // PTYPE_CLIENT: trailer id 5 (little-endian) -> written to the socket.
        assert!(g.client_message(&[b'o', b'k', 5, 0, 0, 0], &mut m).is_ok());
        assert_eq!(m.sent, vec![(5, b"ok".to_vec())]);
        assert!(g.client_message(&[b'o', 6, 0, 0, 0], &mut m).is_err());
        assert!(g.client_message(&[5, 0, 0, 0], &mut m).is_err());
        out.clear();
        g.closed(5, &mut m, &mut out);
        assert_eq!(out, vec![Out::Report("5 close".to_owned())]);
    }

    #[test]
    fn max_connections_oversize_and_commands() {
        let (mut g, mut m) = gate("S ! 8888 0 1", 0);
        let mut out = Vec::new();
        g.accept(5, "a", &mut m, &mut out);
        g.accept(6, "b", &mut m, &mut out);
        assert!(m.calls.contains(&"close 6".to_owned()), "over max: closed");
        g.data(5, &[0xff, 0xff], &mut m, &mut out);
        assert!(
            out.iter().all(|o| !matches!(o, Out::Report(_))),
            "no watchdog, no reports"
        );
        let mut l = Gate::start(GateConfig::parse("L ! 8888 0 1").unwrap(), 0, &mut m).unwrap();
        l.accept(7, "c", &mut m, &mut out);
        l.data(7, &[1, 0, 0, 0], &mut m, &mut out);
        assert!(
            m.calls.contains(&"close 7".to_owned()),
            "16 MiB packet closes the connection"
        );
        g.command("kick 5", &mut m, |_| 0, &mut out);
        assert!(m.calls.contains(&"close 5".to_owned()));
        g.command("start 5", &mut m, |_| 0, &mut out);
        g.command("close", &mut m, |_| 0, &mut out);
        assert_eq!(g.listen_id(), None);
        g.command("bogus x", &mut m, |_| 0, &mut out);
        assert!(out.contains(&Out::Log("[gate] Unknown command : bogus x".to_owned())));
    }
}
