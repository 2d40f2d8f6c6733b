//! Metrics in the Prometheus text format (config key `metrics`).
//!
//! [`serve`] runs a small HTTP/1.1 server on its own thread: one connection at a time, a
//! bounded request, read and write timeouts, `GET /metrics` answered with [`render`], 404 for
//! any other path and 405 for any other method. Every figure is read from counters the node
//! keeps anyway or from relaxed atomics bumped off the hot paths (see [`Counters`]); a scrape
//! walks the live services once.
//!
//! Providers outside the core register here: the Lua memory of each service
//! ([`set_lua_memory`], by the Lua library), and TLS handshake failures
//! ([`tls_handshake_failed`], by whatever does TLS).

use crate::server::Node;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How many services get per-service series: the busiest by messages dispatched, and the
/// busiest by queue length, at most this many of each (one series set per service).
pub const TOP_SERVICES: usize = 10;
/// Largest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Read and write timeout of a scrape connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the socket thread's list of sockets.
const SOCKET_INFO_TIMEOUT: Duration = Duration::from_secs(1);

/// Node-wide event counters (relaxed atomics, bumped where the event happens).
#[derive(Default)]
pub struct Counters {
    /// Services whose launch succeeded.
    pub launched: AtomicU64,
    /// Launched services that are gone.
    pub exited: AtomicU64,
    /// Messages dispatched by services that are gone (the live ones count their own).
    pub exited_messages: AtomicU64,
    /// "May overload" warnings.
    pub overload_warnings: AtomicU64,
    /// Endless-loop detections by the monitor.
    pub endless_loops: AtomicU64,
    /// Handlers interrupted for running over `cpu_limit`.
    pub cpu_limit_interrupts: AtomicU64,
    /// Handlers of C services over `cpu_limit` (reported, they cannot be interrupted).
    pub cpu_limit_uninterruptible: AtomicU64,
}

impl Counters {
    #[inline]
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

static TLS_HANDSHAKE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts one failed TLS handshake (`skynet_tls_handshake_failures_total`).
pub fn tls_handshake_failed() {
    TLS_HANDSHAKE_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// TLS handshake failures so far.
pub fn tls_handshake_failures() -> u64 {
    TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed)
}

/// Every (handle, bytes) of the Lua heaps of live services.
pub type LuaMemory = fn() -> Vec<(u32, usize)>;

static LUA_MEMORY: OnceLock<LuaMemory> = OnceLock::new();

/// Registers the provider of per-service Lua memory (the first call wins).
pub fn set_lua_memory(f: LuaMemory) {
    let _ = LUA_MEMORY.set(f);
}

/// One worker's busy clock: the worker notes when it parks and when it wakes, so only the idle
/// path pays (two clock reads per park).
pub struct WorkerClock {
    origin: Instant,
    /// Nanoseconds parked, parks that ended.
    parked: AtomicU64,
    /// Nanoseconds since `origin` + 1 when the current park began; 0 when not parked.
    parked_since: AtomicU64,
}

impl Default for WorkerClock {
    fn default() -> Self {
        WorkerClock {
            origin: Instant::now(),
            parked: AtomicU64::new(0),
            parked_since: AtomicU64::new(0),
        }
    }
}

impl WorkerClock {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Called by the worker before it parks.
    pub fn park_begin(&self) {
        self.parked_since
            .store(self.now_ns() + 1, Ordering::Relaxed);
    }

    /// Called by the worker when it wakes.
    pub fn park_end(&self) {
        let since = self.parked_since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let spent = self.now_ns().saturating_sub(since - 1);
            self.parked.fetch_add(spent, Ordering::Relaxed);
        }
    }

    /// Seconds not parked since the worker started.
    pub fn busy_seconds(&self) -> f64 {
        let now = self.now_ns();
        let mut parked = self.parked.load(Ordering::Relaxed);
        let since = self.parked_since.load(Ordering::Relaxed);
        if since != 0 {
            parked += now.saturating_sub(since - 1);
        }
        now.saturating_sub(parked) as f64 / 1e9
    }
}

/// Starts the metrics thread on `listener` (bound by the caller, so a bad address fails the
/// start). The thread is not joined: it ends with the process.
pub fn serve(
    node: &'static Node,
    listener: TcpListener,
    workers: Arc<[WorkerClock]>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            crate::server::set_current_handle(crate::server::thread_kind::MONITOR);
            for conn in listener.incoming() {
                if node.global.is_quit() {
                    return;
                }
                if let Ok(stream) = conn {
                    // A client that misbehaves only costs its own connection.
                    let _ = answer(node, &workers, stream);
                }
            }
        })
        .map(|_| ())
}

/// Reads one request and answers it; the connection is then closed.
fn answer(node: &Node, workers: &[WorkerClock], mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = match read_head(&mut stream)? {
        Some(h) => h,
        None => {
            respond(&mut stream, "431 Request Header Fields Too Large", "")?;
            return drain(stream);
        }
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return respond(&mut stream, "400 Bad Request", "");
    }
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", &render(node, workers)),
        ("GET", _) => respond(&mut stream, "404 Not Found", "not found\n"),
        _ => respond(&mut stream, "405 Method Not Allowed", "only GET\n"),
    }
}

/// The request head (up to the blank line); `None` if it exceeds [`MAX_REQUEST`].
fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_blank_line(&buf) {
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Closes our side and reads what the client still sends (bounded), so the close does not
/// reset the connection before the client has read the answer.
fn drain(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut chunk = [0u8; 4096];
    let mut left = 16 * MAX_REQUEST;
    while left > 0 {
        match stream.read(&mut chunk)? {
            0 => break,
            n => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    let kind = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Writes one metric family of a single unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One live service as a scrape sees it.
struct Service {
    handle: u32,
    messages: u64,
    queue: usize,
    cpu_us: u64,
}

/// The metrics page.
pub fn render(node: &Node, workers: &[WorkerClock]) -> String {
    let c = &node.counters;
    let mut out = String::with_capacity(4096);
    let services: Vec<Service> = node
        .handles
        .handles()
        .into_iter()
        .filter_map(|h| node.grab(h))
        .map(|ctx| Service {
            handle: ctx.handle(),
            messages: ctx.message_count(),
            queue: ctx.queue().len(),
            cpu_us: ctx.cpu_cost_us(),
        })
        .collect();

    single(
        &mut out,
        "skynet_services",
        "gauge",
        "Services alive.",
        node.total(),
    );
    single(
        &mut out,
        "skynet_services_launched_total",
        "counter",
        "Services launched.",
        c.launched.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "skynet_services_exited_total",
        "counter",
        "Launched services that exited.",
        c.exited.load(Ordering::Relaxed),
    );
    let live: u64 = services.iter().map(|s| s.messages).sum();
    single(
        &mut out,
        "skynet_messages_dispatched_total",
        "counter",
        "Messages dispatched to service callbacks.",
        c.exited_messages.load(Ordering::Relaxed) + live,
    );

    render_services(node, &services, &mut out);

    single(
        &mut out,
        "skynet_overload_warnings_total",
        "counter",
        "Queue overload warnings (\"May overload\").",
        c.overload_warnings.load(Ordering::Relaxed),
    );
    let q = node.queue_counters();
    single(
        &mut out,
        "skynet_queue_requests_refused_total",
        "counter",
        "Requests refused by a full queue (answered with an error).",
        q.requests_refused,
    );
    single(
        &mut out,
        "skynet_queue_oneway_dropped_total",
        "counter",
        "One-way messages dropped by a full queue.",
        q.oneway_dropped,
    );
    single(
        &mut out,
        "skynet_queue_sockets_paused_total",
        "counter",
        "Times a connection stopped being read because its owner's queue was full.",
        q.sockets_paused,
    );
    single(
        &mut out,
        "skynet_endless_loops_total",
        "counter",
        "Endless-loop detections by the monitor.",
        c.endless_loops.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "skynet_cpu_limit_interrupts_total",
        "counter",
        "Handlers interrupted for running over cpu_limit.",
        c.cpu_limit_interrupts.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "skynet_cpu_limit_uninterruptible_total",
        "counter",
        "Handlers of C services reported for running over cpu_limit.",
        c.cpu_limit_uninterruptible.load(Ordering::Relaxed),
    );

    render_sockets(node, &mut out);

    single(
        &mut out,
        "skynet_timers_pending",
        "gauge",
        "Timeouts waiting in the timer wheel.",
        node.timer.pending(),
    );
    if let Some(a) = crate::memory::accounting() {
        single(
            &mut out,
            "skynet_c_memory_bytes",
            "gauge",
            "Bytes of live C blocks of the whole process.",
            a.total(),
        );
    }
    single(
        &mut out,
        "skynet_workers",
        "gauge",
        "Worker threads.",
        workers.len(),
    );
    family(
        &mut out,
        "skynet_worker_busy_seconds_total",
        "counter",
        "Seconds each worker spent not parked (rate() of it is the worker's utilisation).",
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "skynet_worker_busy_seconds_total{{worker=\"{i}\"}} {:.6}",
            w.busy_seconds()
        );
    }
    out
}

/// The per-service families, for the busiest services only (a bounded label set).
fn render_services(node: &Node, services: &[Service], out: &mut String) {
    let mut by_messages: Vec<&Service> = services.iter().collect();
    by_messages.sort_by_key(|s| std::cmp::Reverse(s.messages));
    let mut by_queue: Vec<&Service> = services.iter().filter(|s| s.queue > 0).collect();
    by_queue.sort_by_key(|s| std::cmp::Reverse(s.queue));
    let mut picked: Vec<&Service> = by_messages.into_iter().take(TOP_SERVICES).collect();
    for s in by_queue.into_iter().take(TOP_SERVICES) {
        if !picked.iter().any(|p| p.handle == s.handle) {
            picked.push(s);
        }
    }
    picked.sort_by_key(|s| s.handle);

    let mut names: HashMap<u32, String> = HashMap::new();
    for (name, h) in node.handles.names() {
        names.entry(h).or_insert_with(|| format!(".{name}"));
    }
    let labels: Vec<String> = picked
        .iter()
        .map(|s| {
            format!(
                "service=\":{:08x}\",name=\"{}\"",
                s.handle,
                escape(names.get(&s.handle).map_or("", |n| n.as_str()))
            )
        })
        .collect();
    let mut emit = |name: &str, kind: &str, help: &str, value: &dyn Fn(&Service) -> String| {
        family(out, name, kind, help);
        for (s, l) in picked.iter().zip(&labels) {
            let _ = writeln!(out, "{name}{{{l}}} {}", value(s));
        }
    };
    emit(
        "skynet_service_queue_length",
        "gauge",
        "Messages waiting in the service's queue.",
        &|s| s.queue.to_string(),
    );
    emit(
        "skynet_service_messages_dispatched_total",
        "counter",
        "Messages dispatched to the service.",
        &|s| s.messages.to_string(),
    );
    if node.profile {
        emit(
            "skynet_service_cpu_seconds_total",
            "counter",
            "Thread CPU seconds spent in the service's callbacks (config profile).",
            &|s| format!("{:.6}", s.cpu_us as f64 / 1e6),
        );
    }
    if let Some(f) = LUA_MEMORY.get() {
        let lua: HashMap<u32, usize> = f().into_iter().collect();
        emit(
            "skynet_service_lua_memory_bytes",
            "gauge",
            "Bytes of the service's Lua heap.",
            &|s| lua.get(&s.handle).copied().unwrap_or(0).to_string(),
        );
    }
    if let Some(a) = crate::memory::accounting() {
        let c: HashMap<u32, isize> = a.services().into_iter().collect();
        emit(
            "skynet_service_c_memory_bytes",
            "gauge",
            "Bytes of C blocks charged to the service.",
            &|s| c.get(&s.handle).copied().unwrap_or(0).max(0).to_string(),
        );
    }
}

fn render_sockets(node: &Node, out: &mut String) {
    let (open, kinds, received, sent) = match node.socket() {
        Some(s) => {
            let mut kinds = [0usize; 5];
            let list = s.info_within(SOCKET_INFO_TIMEOUT).unwrap_or_default();
            for i in &list {
                use crate::socket_server::info_type as t;
                let k = match i.kind {
                    t::LISTEN => 0,
                    t::TCP => 1,
                    t::UDP => 2,
                    t::BIND => 3,
                    _ => 4,
                };
                kinds[k] += 1;
            }
            (s.open_sockets(), kinds, s.bytes_received(), s.bytes_sent())
        }
        None => (0, [0; 5], 0, 0),
    };
    family(
        out,
        "skynet_sockets_open",
        "gauge",
        "Sockets open by kind (other: reserved, connecting or not yet accepted).",
    );
    let known: usize = kinds.iter().sum();
    for (kind, n) in ["listen", "tcp", "udp", "bind", "closing"]
        .iter()
        .zip(kinds)
    {
        let _ = writeln!(out, "skynet_sockets_open{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "skynet_sockets_open{{kind=\"other\"}} {}",
        open.saturating_sub(known)
    );
    single(
        out,
        "skynet_socket_received_bytes_total",
        "counter",
        "Bytes read from sockets.",
        received,
    );
    single(
        out,
        "skynet_socket_sent_bytes_total",
        "counter",
        "Bytes written to sockets.",
        sent,
    );
    single(
        out,
        "skynet_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed.",
        tls_handshake_failures(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_request_head_ends_at_the_blank_line() {
        assert_eq!(
            find_blank_line(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"),
            Some(23)
        );
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn a_parked_worker_is_not_busy() {
        let w = WorkerClock::default();
        w.park_begin();
        let before = w.busy_seconds();
        thread::sleep(Duration::from_millis(20));
        // While parked the busy figure stands still.
        assert_eq!(w.busy_seconds(), before);
        w.park_end();
        assert!(w.parked.load(Ordering::Relaxed) >= 20_000_000);
        assert!(w.parked_since.load(Ordering::Relaxed) == 0);
    }
}
