//! Harness for the C-module compatibility tests.
//!
//! [`Node::run`] writes a config file into a fresh temporary directory, runs the `skynet`
//! executable on it (env `SKYNET_BIN`, default `<repo>/skynet`) and returns its [`Output`].
//! The test C services live in `compat-tests/cmod/*.c` and are built by `make cmods` into
//! `compat-tests/build/*.so`; they report through `skynet_error`, which the built-in logger
//! prints to stdout as `[:%08x] <text>`.
//!
//! Module reporting convention: `CHECK <what> ok` / `CHECK <what> FAIL <details>` lines and a
//! final `DONE`. The Lua test services (`compat-tests/lua/t_*.lua`, run by `tests/lua.rs`
//! through our `loader.lua`) follow it too, with the helper module `compat-tests/lua/t.lua`.
//!
//! [`Node::spawn`] starts a node without waiting, so a test can watch its log (e.g. for the port
//! a module listens on) and talk to it over loopback before collecting the output.
//!
//! Env `COMPAT_CPATH_EXTRA` (optional) is appended to the generated `cpath` (after a `;`), e.g.
//! to find a `logger.so` when running the tests against a reference binary.

pub mod pki;

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Root of the repository (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compat-tests has a parent directory")
        .to_path_buf()
}

/// Directory holding the built test modules.
pub fn module_dir() -> PathBuf {
    repo_root().join("compat-tests").join("build")
}

/// The `skynet` executable under test: env `SKYNET_BIN` (a relative path is taken relative to
/// the repository root), default `<repo>/skynet`.
pub fn skynet_bin() -> PathBuf {
    match std::env::var_os("SKYNET_BIN") {
        Some(p) => repo_root().join(p),
        None => repo_root().join("skynet"),
    }
}

/// The `cpath` value written into every generated config.
pub fn cpath() -> String {
    let mut cpath = format!("{}/?.so", module_dir().display());
    if let Ok(extra) = std::env::var("COMPAT_CPATH_EXTRA") {
        if !extra.is_empty() {
            cpath.push(';');
            cpath.push_str(&extra);
        }
    }
    cpath
}

/// Reports that something a test needs and `make` builds is missing: a SKIP line, or, when
/// env `SKYNET_REQUIRE_ALL=1` (set by `make test`), a panic with the same message, so that a
/// full test run cannot pass with parts left out.
pub fn skip_missing(what: std::fmt::Arguments) {
    if std::env::var("SKYNET_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("SKYNET_REQUIRE_ALL=1 but {what}");
    }
    eprintln!("SKIP: {what}");
}

/// True if every listed module is built; otherwise prints a SKIP message and returns false.
/// Tests call this first and return early (skip) when it is false.
pub fn require_modules(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !module_dir().join(format!("{n}.so")).is_file())
        .collect();
    if missing.is_empty() {
        true
    } else {
        skip_missing(format_args!(
            "test module(s) {} not built in {} (run `make cmods`)",
            missing.join(", "),
            module_dir().display()
        ));
        false
    }
}

/// What a finished (or killed) node produced.
pub struct Output {
    /// Exit code; `None` if killed by a signal (including the harness timeout).
    pub status: Option<i32>,
    /// True if the harness had to kill the node.
    pub timed_out: bool,
    pub stdout_lines: Vec<String>,
    pub stderr: String,
    /// The generated config text (for diagnostics).
    pub config: String,
}

/// Namespace for running a node.
pub struct Node;

static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn read_all<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Starts `snlua <service args>` with our Lua test services (`compat-tests/lua/`, our loader).
pub fn spawn_lua(service: &str) -> Running {
    spawn_lua_with(service, "")
}

/// As [`spawn_lua`], with more config lines (`config_extra`, after the loader's).
pub fn spawn_lua_with(service: &str, config_extra: &str) -> Running {
    let dir = repo_root().join("compat-tests").join("lua");
    let extra = format!(
        "lualoader = {:?}\nluaservice = {:?}\n{config_extra}",
        dir.join("loader.lua").display().to_string(),
        format!("{}/?.lua", dir.display())
    );
    Node::spawn(&extra, &format!("snlua {service}"))
}

/// Config line for tests whose scenario needs two workers running at once (a service stuck in
/// a loop while another answers, the env value they check): they pin it against
/// `$SKYNET_TEST_THREADS`.
pub const TWO_WORKERS: &str = "thread = 2\n";

/// Runs `snlua <service args>` as [`spawn_lua`] does until the node ends (or `timeout`), and
/// checks that it exited cleanly and that no service logged "UNEXPECTED".
pub fn run_lua(service: &str, timeout: Duration) -> Output {
    run_lua_with(service, "", timeout)
}

/// As [`run_lua`], with more config lines.
pub fn run_lua_with(service: &str, config_extra: &str, timeout: Duration) -> Output {
    let out = spawn_lua_with(service, config_extra).finish(timeout);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out
}

/// A node started by [`Node::spawn`]: its stdout can be watched while it runs (to learn a
/// port it listens on, say) before [`Running::finish`] collects the [`Output`].
pub struct Running {
    child: Child,
    dir: PathBuf,
    config: String,
    lines: mpsc::Receiver<String>,
    out: thread::JoinHandle<Vec<String>>,
    err: thread::JoinHandle<Vec<u8>>,
}

impl Node {
    /// Runs `skynet` with a generated config: `thread = 2` (or `$SKYNET_TEST_THREADS`), `harbor = 0`, `cpath`, `bootstrap`,
    /// then `config_extra` (later assignments override earlier ones). Kills it after `timeout`.
    pub fn run(config_extra: &str, bootstrap: &str, timeout: Duration) -> Output {
        Node::spawn(config_extra, bootstrap).finish(timeout)
    }

    /// Starts `skynet` as [`Node::run`] does, without waiting.
    pub fn spawn(config_extra: &str, bootstrap: &str) -> Running {
        Node::spawn_bin(&skynet_bin(), config_extra, bootstrap)
    }

    /// As [`Node::spawn`], with another executable (upstream's, for mixed-node tests).
    pub fn spawn_bin(bin: &Path, config_extra: &str, bootstrap: &str) -> Running {
        Node::spawn_bin_env(bin, config_extra, bootstrap, &[])
    }

    /// As [`Node::spawn_bin`], with more environment variables for the node.
    pub fn spawn_bin_env(
        bin: &Path,
        config_extra: &str,
        bootstrap: &str,
        envs: &[(&str, &str)],
    ) -> Running {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "skynet-compat-{}-{}-{}",
            std::process::id(),
            n,
            bootstrap.split_whitespace().next().unwrap_or("node")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        // SKYNET_TEST_THREADS reruns the suites under other worker counts (1, 16, ...).
        let threads = std::env::var("SKYNET_TEST_THREADS").unwrap_or_else(|_| "2".to_owned());
        let config = format!(
            "thread = {threads}\nharbor = 0\ncpath = {:?}\nbootstrap = {:?}\n{}\n",
            cpath(),
            bootstrap,
            config_extra
        );
        let config_path = dir.join("config");
        std::fs::write(&config_path, &config).expect("write config");

        let mut child = Command::new(bin)
            .envs(envs.iter().copied())
            .arg(&config_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); build it with `make` or set SKYNET_BIN",
                    bin.display()
                )
            });
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let out = thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = tx.send(line.clone());
                all.push(line);
            }
            all
        });
        let err = read_all(child.stderr.take().expect("stderr"));
        Running {
            child,
            dir,
            config,
            lines,
            out,
            err,
        }
    }
}

impl Running {
    /// Waits up to `timeout` for a new stdout line containing `needle`; lines read before are
    /// not looked at again.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// A [`Watch`] over this node's log: waits for lines in any order.
    pub fn watch(&self) -> Watch<'_> {
        Watch {
            run: self,
            unmatched: Vec::new(),
        }
    }

    /// Waits for the node to exit by itself (killing it after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait().expect("wait for skynet") {
                Some(st) => break st,
                None if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().expect("wait for killed skynet");
                }
                None => thread::sleep(Duration::from_millis(10)),
            }
        };
        let stdout_lines = self.out.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&self.err.join().unwrap_or_default()).into_owned();
        let _ = std::fs::remove_dir_all(&self.dir);
        Output {
            status: status.code(),
            timed_out,
            stdout_lines,
            stderr,
            config: self.config,
        }
    }
}

/// Waits for log lines of a [`Running`] node in any order: lines read while looking for one
/// are kept for later calls.
pub struct Watch<'a> {
    run: &'a Running,
    unmatched: Vec<String>,
}

impl Watch<'_> {
    /// The first line (seen before or arriving within `timeout`) containing `needle`; it is
    /// consumed. Panics on timeout, showing the lines seen.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(i) = self.unmatched.iter().position(|l| l.contains(needle)) {
            return self.unmatched.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.run.wait_for("", left) {
                Some(l) if l.contains(needle) => return l,
                Some(l) => self.unmatched.push(l),
                None => panic!(
                    "no log line containing {needle:?} within {timeout:?}; lines seen:\n{}",
                    self.unmatched.join("\n")
                ),
            }
        }
    }

    /// The text after `needle` in the line [`Watch::expect`] finds.
    pub fn expect_after(&mut self, needle: &str, timeout: Duration) -> String {
        let line = self.expect(needle, timeout);
        let at = line.find(needle).map_or(0, |i| i + needle.len());
        line[at..].to_owned()
    }
}

/// `[:%08x] ` prefix used by the logger for `handle`.
pub fn prefix(handle: u32) -> String {
    format!("[:{handle:08x}] ")
}

/// A full log line `[:%08x] text`.
pub fn line(handle: u32, text: &str) -> String {
    format!("{}{}", prefix(handle), text)
}

impl Output {
    /// Texts (without prefix) of the lines logged with source `handle`, in order.
    pub fn texts_from(&self, handle: u32) -> Vec<&str> {
        let p = prefix(handle);
        self.stdout_lines
            .iter()
            .filter_map(|l| l.strip_prefix(p.as_str()))
            .collect()
    }

    pub fn has_line(&self, line: &str) -> bool {
        self.stdout_lines.iter().any(|l| l == line)
    }

    pub fn count_containing(&self, needle: &str) -> usize {
        self.stdout_lines
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Panics (with the whole output) unless the node exited by itself with status 0.
    pub fn assert_clean_exit(&self) {
        assert!(!self.timed_out, "node did not terminate in time\n{self}");
        assert_eq!(self.status, Some(0), "node exit status\n{self}");
    }

    pub fn assert_line(&self, line: &str) {
        assert!(self.has_line(line), "missing log line {line:?}\n{self}");
    }

    pub fn assert_lines(&self, lines: &[String]) {
        for l in lines {
            self.assert_line(l);
        }
    }

    pub fn assert_line_containing(&self, needle: &str) {
        assert!(
            self.count_containing(needle) > 0,
            "no log line contains {needle:?}\n{self}"
        );
    }

    pub fn assert_no_line_containing(&self, needle: &str) {
        let hits: Vec<&String> = self
            .stdout_lines
            .iter()
            .filter(|l| l.contains(needle))
            .collect();
        assert!(
            hits.is_empty(),
            "unexpected log line(s) containing {needle:?}: {hits:?}\n{self}"
        );
    }

    pub fn assert_count(&self, needle: &str, n: usize) {
        assert_eq!(
            self.count_containing(needle),
            n,
            "number of log lines containing {needle:?}\n{self}"
        );
    }

    /// `lines` must appear in this relative order (other lines may be interleaved).
    pub fn assert_in_order(&self, lines: &[String]) {
        let mut it = self.stdout_lines.iter();
        for want in lines {
            assert!(
                it.any(|l| l == want),
                "log line {want:?} missing or out of order (expected order: {lines:#?})\n{self}"
            );
        }
    }

    /// Every `CHECK <name> ok` is present, no CHECK line reports FAIL, and `DONE` was logged.
    pub fn assert_checks(&self, names: &[&str]) {
        let fails: Vec<&String> = self
            .stdout_lines
            .iter()
            .filter(|l| l.contains("] CHECK ") && !l.ends_with(" ok"))
            .collect();
        assert!(fails.is_empty(), "failed checks: {fails:#?}\n{self}");
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| {
                let want = format!("] CHECK {n} ok");
                !self.stdout_lines.iter().any(|l| l.ends_with(&want))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "checks not reported: {missing:?}\n{self}"
        );
        assert!(
            self.stdout_lines.iter().any(|l| l.ends_with("] DONE")),
            "module did not report DONE\n{self}"
        );
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "--- status {:?}{} ---",
            self.status,
            if self.timed_out {
                " (killed: timeout)"
            } else {
                ""
            }
        )?;
        writeln!(f, "--- config ---\n{}", self.config.trim_end())?;
        writeln!(f, "--- stdout ---")?;
        for l in &self.stdout_lines {
            writeln!(f, "{l}")?;
        }
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// The port from a running node's `LISTEN <ip> <port>` log line.
pub fn listen_port(run: &Running, timeout: Duration) -> u16 {
    let line = run
        .wait_for("] LISTEN ", timeout)
        .expect("the service logs LISTEN <ip> <port>");
    line.rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// A client connection to 127.0.0.1:`port` with read and write timeouts.
pub fn connect_loopback(port: u16, io_timeout: Duration) -> std::net::TcpStream {
    let c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the node");
    c.set_read_timeout(Some(io_timeout)).unwrap();
    c.set_write_timeout(Some(io_timeout)).unwrap();
    c
}

/// Enough descriptors for `n` connections in this process and in the nodes it starts (which
/// inherit the limit).
pub fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, exclusively borrowed struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Drives an echo server on 127.0.0.1:`port` with `clients` connections open at once: each
/// round writes `msg(client, round)` on every connection before reading any echo back, and
/// checks every echo. Returns the bytes echoed.
pub fn echo_rounds(
    port: u16,
    clients: usize,
    rounds: usize,
    io_timeout: Duration,
    msg: impl Fn(usize, usize) -> Vec<u8>,
) -> usize {
    use std::io::Write;
    let mut conns: Vec<std::net::TcpStream> = (0..clients)
        .map(|_| connect_loopback(port, io_timeout))
        .collect();
    let mut total = 0;
    for round in 0..rounds {
        let msgs: Vec<Vec<u8>> = (0..clients).map(|i| msg(i, round)).collect();
        for (c, m) in conns.iter_mut().zip(&msgs) {
            c.write_all(m).expect("write to the echo server");
        }
        for (i, (c, m)) in conns.iter_mut().zip(&msgs).enumerate() {
            let mut back = vec![0; m.len()];
            c.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("echo for client {i} round {round}: {e}"));
            assert!(back == *m, "client {i} round {round}: wrong echo");
            total += m.len();
        }
    }
    total
}

/// A free loopback port (released at once: whoever binds it next, a node a moment later, gets it
/// unless another process takes it first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The checks our cluster test service (`t_cluster`) reports when a run went through.
pub const CLUSTER_CHECKS: &[&str] = &[
    "call_handle",
    "call_name",
    "call_40k",
    "call_1m",
    "call_traced",
    "stats",
    "call_unknown",
    "session_top",
    "session_wrapped_1m",
    "bad_large_req",
    "after_garbage",
];
