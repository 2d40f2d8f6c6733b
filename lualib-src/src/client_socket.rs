//! `client.socket`: the small blocking-connect / non-blocking-read socket
//! library skynet's demo clients use from a plain Lua interpreter.
//!
//! - `connect(ipv4, port)` → fd: blocking connect, then the fd is made non-blocking; error
//!   "Connect %s %d failed".
//! - `recv(fd)` → up to 4096 bytes, `""` when the peer closed, nothing when no data is ready;
//!   error "socket error: %s" otherwise.
//! - `send(fd, str)`: writes everything (waits while the socket buffer is full).
//! - `shutdown(fd, "r" | "w" | "rw")` (prints `SHUTDOWN fd how` as upstream does), `close(fd)`,
//!   `usleep(µs)`.
//! - `readstdin()` → the next line typed on stdin (without its newline), or nothing. Lines are
//!   read by a background thread started by the first call.
//!
//! # Differences from upstream
//! - The address must be a dotted-quad IPv4 address (upstream's `inet_addr` also takes forms
//!   such as `127.1`); a port outside 0..=65535 fails to connect instead of wrapping.
//! - `send` waits with `poll` while the socket is full instead of spinning, and uses
//!   `MSG_NOSIGNAL`: writing to a closed connection is the error "socket error: Broken pipe"
//!   instead of SIGPIPE killing the process.
//! - The stdin thread starts on the first `readstdin` (upstream: when the module is opened), and
//!   one thread serves the whole process. At most 1024 unread lines are kept (the reader waits
//!   for room; upstream exits the process on overflow) and stdin closing stops the reader
//!   (upstream exits the process with status 1). Lines longer than 1023 bytes are returned in
//!   pieces of 1023 bytes, none of them cut short (upstream drops a byte of each piece), and
//!   bytes after a NUL are kept.
//! - `usleep` of a negative, NaN or sub-microsecond time returns at once; times are capped at
//!   `INT_MAX` µs (upstream converts to `int`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use crate::lua::lua_function;
use crate::lua::{ffi, new_lib, raise_where, CFunction};
use ffi::lua_State;
use nix::errno::Errno;
use nix::sys::socket::{self, MsgFlags, Shutdown};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, CStr};
use std::io::{BufRead, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

/// Bytes read by one `recv`.
const CACHE_SIZE: usize = 0x1000;
/// Unread stdin lines kept.
const QUEUE_SIZE: usize = 1024;
/// Longest stdin piece (upstream reads with `fgets` into 1024 bytes).
const MAX_LINE: u64 = 1023;

/// `luaL_checkstring` as bytes up to the first NUL (what the C code sees).
///
/// # Safety
/// `l` is the running state; raises on a non-string.
unsafe fn check_cstr<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    // SAFETY: Lua strings are NUL-terminated and stay alive while on the stack.
    unsafe { CStr::from_ptr(ffi::luaL_checklstring(l, idx, std::ptr::null_mut())) }.to_bytes()
}

/// Connects (blocking) and returns the non-blocking fd.
fn connect(addr: &[u8], port: c_int) -> Option<RawFd> {
    let ip: Ipv4Addr = std::str::from_utf8(addr).ok()?.parse().ok()?;
    let port = u16::try_from(port).ok()?;
    let stream = TcpStream::connect(SocketAddrV4::new(ip, port)).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(stream.into_raw_fd())
}

#[lua_function]
unsafe extern "C-unwind" fn lconnect(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; checks raise before anything is owned.
    let (addr, port) = unsafe { (check_cstr(l, 1), ffi::luaL_checkinteger(l, 2) as c_int) };
    match connect(addr, port) {
        Some(fd) => {
            // SAFETY: valid state.
            unsafe { ffi::lua_pushinteger(l, fd.into()) };
            1
        }
        None => {
            let msg = format!("Connect {} {port} failed", String::from_utf8_lossy(addr));
            // SAFETY: only the message is alive; raise frees it.
            unsafe { raise_where(l, msg) }
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lclose(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let fd = unsafe { ffi::luaL_checkinteger(l, 1) } as RawFd;
    // Errors are ignored, as upstream ignores close's result.
    let _ = nix::unistd::close(fd);
    0
}

/// Raises "socket error: <strerror>".
///
/// # Safety
/// As [`raise_where`].
unsafe fn socket_error(l: *mut lua_State, e: Errno) -> ! {
    let msg = format!("socket error: {}", strerror(e));
    // SAFETY: only the message is alive; raise frees it.
    unsafe { raise_where(l, msg) }
}

/// The C library's `strerror` text for `e`.
fn strerror(e: Errno) -> String {
    let code = e as i32;
    let text = std::io::Error::from_raw_os_error(code).to_string();
    match text.strip_suffix(&format!(" (os error {code})")) {
        Some(t) => t.to_owned(),
        None => text,
    }
}

/// Waits until `fd` is writable (or in error, which the next send reports).
fn wait_writable(fd: RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; poll only reads the descriptor number.
    unsafe { libc::poll(&mut p, 1, -1) };
}

#[lua_function]
unsafe extern "C-unwind" fn lsend(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; the string stays on the stack during the call.
    let (fd, mut data) = unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as RawFd;
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 2, &mut len);
        (fd, std::slice::from_raw_parts(p.cast::<u8>(), len))
    };
    while !data.is_empty() {
        match socket::send(fd, data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait_writable(fd),
            // SAFETY: nothing with a destructor is alive.
            Err(e) => unsafe { socket_error(l, e) },
        }
    }
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lrecv(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let fd = unsafe { ffi::luaL_checkinteger(l, 1) } as RawFd;
    let mut buf = [0u8; CACHE_SIZE];
    match socket::recv(fd, &mut buf, MsgFlags::empty()) {
        // SAFETY: valid state; the bytes are copied by Lua (0 bytes: "" for a closed peer).
        Ok(n) => unsafe {
            ffi::lua_pushlstring(l, buf.as_ptr().cast::<c_char>(), n);
        },
        Err(Errno::EAGAIN | Errno::EINTR) => return 0,
        // SAFETY: nothing with a destructor is alive.
        Err(e) => unsafe { socket_error(l, e) },
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lshutdown(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let (fd, mode) = unsafe { (ffi::luaL_checkinteger(l, 1) as RawFd, check_cstr(l, 2)) };
    let (mut read, mut write) = (false, false);
    for &c in mode {
        match c {
            b'r' => read = true,
            b'w' => write = true,
            // SAFETY: nothing with a destructor is alive; %c takes an int.
            _ => unsafe {
                ffi::luaL_error(l, c"Invalid mode %c".as_ptr(), c_int::from(c));
            },
        }
    }
    let (how, code) = match (read, write) {
        (true, false) => (Shutdown::Read, libc::SHUT_RD),
        (false, true) => (Shutdown::Write, libc::SHUT_WR),
        (true, true) => (Shutdown::Both, libc::SHUT_RDWR),
        // SAFETY: nothing with a destructor is alive.
        (false, false) => unsafe {
            ffi::luaL_error(l, c"mode should be r or/and w".as_ptr());
            return 0;
        },
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "SHUTDOWN {fd} {code}");
        let _ = out.flush();
    }
    let _ = socket::shutdown(fd, how);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lusleep(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    let us = unsafe { ffi::luaL_checknumber(l, 1) };
    if us >= 1.0 {
        std::thread::sleep(Duration::from_micros(us.min(f64::from(i32::MAX)) as u64));
    }
    0
}

/// Reads lines from `input` into `tx` until end of input, a read error, or the receiver is
/// gone. Each line loses its `\n`; lines longer than [`MAX_LINE`] come in pieces.
fn read_lines(mut input: impl BufRead, tx: &SyncSender<Vec<u8>>) {
    loop {
        let mut line = Vec::new();
        match (&mut input).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// The stdin lines, read by a thread started on first use.
fn stdin_lines() -> &'static Mutex<Receiver<Vec<u8>>> {
    static LINES: OnceLock<Mutex<Receiver<Vec<u8>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE_SIZE);
        let spawned = std::thread::Builder::new()
            .name("client.socket stdin".into())
            .spawn(move || read_lines(std::io::stdin().lock(), &tx));
        if let Err(e) = spawned {
            eprintln!("client.socket: can't start the stdin reader: {e}");
        }
        Mutex::new(rx)
    })
}

#[lua_function]
unsafe extern "C-unwind" fn lreadstdin(l: *mut lua_State) -> c_int {
    let line = stdin_lines().lock().try_recv().ok();
    let Some(line) = line else { return 0 };
    // No destructor to skip if the push raises (the line would only leak).
    let line = ManuallyDrop::new(line);
    // SAFETY: valid state; Lua copies the bytes.
    unsafe { ffi::lua_pushlstring(l, line.as_ptr().cast::<c_char>(), line.len()) };
    drop(ManuallyDrop::into_inner(line));
    1
}

/// `luaopen_client_socket`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_client_socket(l: *mut lua_State) -> c_int {
    const FUNCS: [(&CStr, CFunction); 7] = [
        (c"connect", lconnect),
        (c"recv", lrecv),
        (c"send", lsend),
        (c"shutdown", lshutdown),
        (c"close", lclose),
        (c"usleep", lusleep),
        (c"readstdin", lreadstdin),
    ];
    // SAFETY: valid state.
    unsafe { new_lib(l, &FUNCS) };
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlua::{self, State};
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::time::Instant;

    fn state() -> State {
        testlua::new_state(&[(c"socket", luaopen_client_socket)], &[])
    }

    fn run(st: &State, code: &str) {
        if let Err(e) = testlua::run(st, code) {
            panic!("Lua test failed: {e}");
        }
    }

    fn run_err(st: &State, code: &str) -> String {
        testlua::run(st, code).expect_err("expected a Lua error")
    }

    /// Lua: `wait_recv(fd)` polls recv (bounded to ~5 s) until it returns something.
    const WAIT_RECV: &str = r#"
function wait_recv(fd)
    for i = 1, 5000 do
        local s = socket.recv(fd)
        if s then return s end
        socket.usleep(1000)
    end
    error("recv timed out")
end
"#;

    #[test]
    fn talks_to_a_loopback_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = state();
        run(&st, WAIT_RECV);
        run(
            &st,
            &format!("fd = socket.connect('127.0.0.1', {port}) assert(math.type(fd) == 'integer')"),
        );
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // nothing to read yet: nothing returned (the fd is non-blocking)
        run(&st, "assert(select('#', socket.recv(fd)) == 0)");
        peer.write_all(b"hello").unwrap();
        run(&st, "local s = wait_recv(fd) assert(s == 'hello', s)");
        run(&st, "socket.send(fd, 'world')");
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"world");
        // a large send goes through a full socket buffer while the peer reads
        let n = 8 << 20;
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; n];
            peer.read_exact(&mut buf).unwrap();
            assert!(buf.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            peer
        });
        run(
            &st,
            &format!(
                "local t = {{}} for i = 0, 250 do t[#t + 1] = string.char(i) end
                 local block = table.concat(t)
                 local s = string.rep(block, {n} // 251 + 1):sub(1, {n})
                 socket.send(fd, s)"
            ),
        );
        let mut peer = reader.join().unwrap();
        // recv reads at most 4096 bytes at a time
        peer.write_all(&[7u8; 10000]).unwrap();
        run(
            &st,
            "local total = 0
             while total < 10000 do
                 local s = wait_recv(fd)
                 assert(#s <= 4096 and #s > 0 and s == string.rep('\\7', #s))
                 total = total + #s
             end
             assert(total == 10000)",
        );
        // half close from us: the peer sees end of stream
        run(&st, "socket.shutdown(fd, 'w')");
        let mut rest = Vec::new();
        assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
        // the peer closes: recv answers ""
        drop(peer);
        run(&st, "assert(wait_recv(fd) == '')");
        run(&st, "socket.close(fd)");
        // reading a closed fd is a socket error
        let e = run_err(&st, "socket.recv(fd)");
        assert_eq!(e, "test:1: socket error: Bad file descriptor");
    }

    #[test]
    fn send_to_a_closed_peer_is_an_error_not_sigpipe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = state();
        run(&st, &format!("fd = socket.connect('127.0.0.1', {port})"));
        let (peer, _) = listener.accept().unwrap();
        drop(peer);
        let e = run_err(
            &st,
            "for i = 1, 1000 do socket.send(fd, string.rep('x', 65536)) socket.usleep(1000) end",
        );
        assert!(
            e == "test:1: socket error: Broken pipe"
                || e == "test:1: socket error: Connection reset by peer",
            "{e}"
        );
        run(&st, "socket.close(fd)");
    }

    #[test]
    fn connect_failures_and_argument_errors() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let st = state();
        assert_eq!(
            run_err(&st, &format!("socket.connect('127.0.0.1', {port})")),
            format!("test:1: Connect 127.0.0.1 {port} failed")
        );
        assert_eq!(
            run_err(&st, "socket.connect('localhost', 80)"),
            "test:1: Connect localhost 80 failed"
        );
        assert_eq!(
            run_err(&st, "socket.connect('127.0.0.1', 70000)"),
            "test:1: Connect 127.0.0.1 70000 failed"
        );
        assert!(run_err(&st, "socket.connect('127.0.0.1')").contains("number expected"));
        assert_eq!(
            run_err(&st, "socket.shutdown(0, 'x')"),
            "test:1: Invalid mode x"
        );
        assert_eq!(
            run_err(&st, "socket.shutdown(0, 'rwz')"),
            "test:1: Invalid mode z"
        );
        assert_eq!(
            run_err(&st, "socket.shutdown(0, '')"),
            "test:1: mode should be r or/and w"
        );
        assert!(run_err(&st, "socket.send(0)").contains("string expected"));
        assert_eq!(
            run_err(&st, "socket.send(-1, 'x')"),
            "test:1: socket error: Bad file descriptor"
        );
        run(&st, "socket.send(-1, '')"); // nothing to send, nothing checked
    }

    #[test]
    fn usleep_sleeps() {
        let st = state();
        let t = Instant::now();
        run(
            &st,
            "socket.usleep(20000) socket.usleep(-5) socket.usleep(0/0) socket.usleep(0.5)",
        );
        let e = t.elapsed();
        assert!(
            e >= Duration::from_millis(20) && e < Duration::from_secs(2),
            "{e:?}"
        );
    }

    #[test]
    fn readstdin_never_blocks() {
        let st = state();
        // Whatever the test's stdin holds, the call returns at once with a string or nothing.
        run(
            &st,
            "for i = 1, 3 do local n = select('#', socket.readstdin()) assert(n <= 1) end
             local s = socket.readstdin() assert(s == nil or type(s) == 'string')",
        );
    }

    #[test]
    fn stdin_lines_are_split_bounded_and_queued() {
        let long = "y".repeat(2500);
        let input = format!("first\nsecond\r\n\n{long}\nno newline at end");
        let (tx, rx) = sync_channel(QUEUE_SIZE);
        read_lines(Cursor::new(input.into_bytes()), &tx);
        drop(tx);
        let lines: Vec<Vec<u8>> = rx.iter().collect();
        let want: Vec<Vec<u8>> = vec![
            b"first".to_vec(),
            b"second\r".to_vec(),
            b"".to_vec(),
            vec![b'y'; 1023],
            vec![b'y'; 1023],
            vec![b'y'; 454],
            b"no newline at end".to_vec(),
        ];
        assert_eq!(lines, want);

        // the reader waits while the queue is full
        let (tx, rx) = sync_channel(2);
        let reader = std::thread::spawn(move || {
            read_lines(Cursor::new(b"1\n2\n3\n4\n5\n".to_vec()), &tx);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished());
        let got: Vec<Vec<u8>> = rx.iter().collect();
        reader.join().unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4], b"5");
    }
}
