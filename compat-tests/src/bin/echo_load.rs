//! `echo_load`: the load generator of the socket echo benchmarks (compat-tests/bench/socket).
//!
//! Opens `--conns` TCP connections to an echo server on `--host:--port` and keeps exactly one
//! request of `--size` bytes in flight on each: as soon as a connection's echo is complete (and
//! checked) its next request goes out. One thread, epoll, non-blocking sockets, TCP_NODELAY.
//! After `--warmup` seconds it measures for `--secs` seconds: completed requests, their
//! round-trip latency, and (with `--pid`) the CPU time the server process used in that window
//! (utime + stime from /proc/<pid>/stat). Prints one line:
//!
//! `LOAD conns=<n> size=<n> secs=<s> reqs=<n> rps=<n> mean_us=<n> p50_us=<n> p99_us=<n>
//!  max_us=<n> cpu_s=<s|-> errors=0`
//!
//! Everything is bounded: connecting, the run, and the final drain (2 s) have deadlines; a
//! wrong echo, an EOF or an I/O error stops it with exit status 1.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Options {
    host: String,
    port: u16,
    conns: usize,
    secs: f64,
    warmup: f64,
    size: usize,
    pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: echo_load --port <port> [--host 127.0.0.1] [--conns 100] [--secs 10] \
         [--warmup 1] [--size 64] [--pid <server pid>]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        host: "127.0.0.1".to_owned(),
        port: 0,
        conns: 100,
        secs: 10.0,
        warmup: 1.0,
        size: 64,
        pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        let bad = || -> ! {
            eprintln!("echo_load: bad value {v:?} for {flag}");
            usage()
        };
        match flag.as_str() {
            "--host" => o.host = v.clone(),
            "--port" => o.port = v.parse().unwrap_or_else(|_| bad()),
            "--conns" => o.conns = v.parse().unwrap_or_else(|_| bad()),
            "--secs" => o.secs = v.parse().unwrap_or_else(|_| bad()),
            "--warmup" => o.warmup = v.parse().unwrap_or_else(|_| bad()),
            "--size" => o.size = v.parse().unwrap_or_else(|_| bad()),
            "--pid" => o.pid = Some(v.parse().unwrap_or_else(|_| bad())),
            _ => usage(),
        }
    }
    let valid = o.port != 0
        && (1..=60000).contains(&o.conns)
        && o.secs > 0.0
        && o.secs <= 3600.0
        && (0.0..=600.0).contains(&o.warmup)
        && (8..=1 << 20).contains(&o.size);
    if !valid {
        usage();
    }
    o
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

struct Conn {
    stream: TcpStream,
    /// The request in flight (its first 8 bytes: a sequence number).
    req: Vec<u8>,
    /// Bytes of `req` written so far.
    written: usize,
    /// Bytes of the echo received so far.
    got: Vec<u8>,
    seq: u64,
    sent_at: Instant,
    /// Waiting for EPOLLOUT too.
    want_write: bool,
}

impl Conn {
    fn next_request(&mut self, size: usize, id: usize) {
        self.seq += 1;
        self.req.clear();
        self.req.extend_from_slice(&self.seq.to_le_bytes());
        self.req
            .extend((8..size).map(|i| b'a' + ((i + id + self.seq as usize) % 26) as u8));
        self.written = 0;
        self.got.clear();
        self.sent_at = Instant::now();
    }

    /// Writes what it can of the request: true when all of it went out.
    fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.req.len() {
            match self.stream.write(&self.req[self.written..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write 0")),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Asks for EPOLLOUT too while a request is only partly written.
fn set_write(epoll: &Epoll, c: &mut Conn, i: usize, on: bool) -> io::Result<()> {
    if c.want_write != on {
        c.want_write = on;
        let flags = if on {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN
        };
        epoll.modify(&c.stream, &mut EpollEvent::new(flags, i as u64))?;
    }
    Ok(())
}

fn fail(msg: String) -> ExitCode {
    eprintln!("echo_load: {msg}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let o = parse_args();
    let Some(addr) = (o.host.as_str(), o.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return fail(format!("cannot resolve {}", o.host));
    };
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
        Ok(e) => e,
        Err(e) => return fail(format!("epoll: {e}")),
    };
    let mut conns = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(e) => return fail(format!("connection {i} to {addr}: {e}")),
        };
        if let Err(e) = stream
            .set_nodelay(true)
            .and_then(|_| stream.set_nonblocking(true))
        {
            return fail(format!("socket options: {e}"));
        }
        if let Err(e) = epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64)) {
            return fail(format!("epoll add: {e}"));
        }
        conns.push(Conn {
            stream,
            req: Vec::with_capacity(o.size),
            written: 0,
            got: Vec::with_capacity(o.size),
            seq: 0,
            sent_at: Instant::now(),
            want_write: false,
        });
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let measure_to = measure_from + Duration::from_secs_f64(o.secs);
    let drain_until = measure_to + Duration::from_secs(2);
    let mut cpu_start = None;
    let mut cpu_end = None;
    let mut measuring = false;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut in_flight = 0usize;

    for (i, c) in conns.iter_mut().enumerate() {
        c.next_request(o.size, i);
        match c.flush() {
            Ok(done) => {
                if let Err(e) = set_write(&epoll, c, i, !done) {
                    return fail(format!("epoll modify: {e}"));
                }
            }
            Err(e) => return fail(format!("connection {i}: write: {e}")),
        }
        in_flight += 1;
    }

    let mut events = vec![EpollEvent::empty(); 256];
    let mut buf = vec![0u8; o.size.max(4096)];
    loop {
        let now = Instant::now();
        if !measuring && now >= measure_from && now < measure_to {
            measuring = true;
            latencies.clear();
            cpu_start = o.pid.and_then(cpu_seconds);
        }
        if now >= measure_to && cpu_end.is_none() {
            measuring = false;
            cpu_end = Some(o.pid.and_then(cpu_seconds));
        }
        if now >= measure_to && in_flight == 0 {
            break;
        }
        if now >= drain_until {
            return fail(format!(
                "{in_flight} echoes still missing 2 s after the run"
            ));
        }
        let n = match epoll.wait(&mut events, 50u16) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return fail(format!("epoll wait: {e}")),
        };
        for ev in &events[..n] {
            let i = ev.data() as usize;
            let c = &mut conns[i];
            if ev.events().contains(EpollFlags::EPOLLOUT) && c.written < c.req.len() {
                match c.flush() {
                    Ok(done) => {
                        if let Err(e) = set_write(&epoll, c, i, !done) {
                            return fail(format!("epoll modify: {e}"));
                        }
                    }
                    Err(e) => return fail(format!("connection {i}: write: {e}")),
                }
            }
            if !ev
                .events()
                .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
            {
                continue;
            }
            loop {
                let want = c.req.len() - c.got.len();
                if want == 0 {
                    break;
                }
                match c.stream.read(&mut buf[..want]) {
                    Ok(0) => return fail(format!("connection {i}: closed by the server")),
                    Ok(k) => c.got.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return fail(format!("connection {i}: read: {e}")),
                }
            }
            if c.got.len() < c.req.len() {
                continue;
            }
            if c.got != c.req {
                return fail(format!("connection {i}: wrong echo for request {}", c.seq));
            }
            let done_at = Instant::now();
            if measuring && c.sent_at >= measure_from && done_at <= measure_to {
                let us = done_at.duration_since(c.sent_at).as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            in_flight -= 1;
            if done_at < measure_to {
                c.next_request(o.size, i);
                match c.flush() {
                    Ok(done) => {
                        if let Err(e) = set_write(&epoll, c, i, !done) {
                            return fail(format!("epoll modify: {e}"));
                        }
                    }
                    Err(e) => return fail(format!("connection {i}: write: {e}")),
                }
                in_flight += 1;
            }
        }
    }

    let reqs = latencies.len();
    if reqs == 0 {
        return fail("no request completed in the measured window".to_owned());
    }
    let mean = latencies.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / reqs as f64;
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((reqs as f64 * p) as usize).min(reqs - 1)];
    let cpu = match (cpu_start, cpu_end.flatten()) {
        (Some(a), Some(b)) => format!("{:.2}", b - a),
        _ => "-".to_owned(),
    };
    println!(
        "LOAD conns={} size={} secs={:.3} reqs={reqs} rps={:.0} mean_us={:.1} p50_us={} \
         p99_us={} max_us={} cpu_s={cpu} errors=0",
        o.conns,
        o.size,
        o.secs,
        reqs as f64 / o.secs,
        mean,
        pct(0.50),
        pct(0.99),
        latencies[reqs - 1],
    );
    ExitCode::SUCCESS
}
