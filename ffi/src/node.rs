//! Reading the core keys of the config from the env and running a node: shared by the
//! executable and by `skynet_start` in libskynet.

use crate::cmodule;
use skynet_core::env::env;
use skynet_core::module::{CpathFirst, Modules};
use skynet_core::mq::{QueueLimits, DEFAULT_QUEUE_BYTES_LIMIT, DEFAULT_QUEUE_LIMIT};
use skynet_core::server::{Node, NodeConfig};
use skynet_core::socket_server::{SocketConfig, TlsFiles, TlsPolicy, MAX_SOCKET};
use skynet_core::start::{start, StartConfig};
use std::sync::atomic::{AtomicBool, Ordering};

/// The core keys of the config, defaults written back into the env as upstream does.
pub struct CoreConfig {
    pub start: StartConfig,
    pub harbor: u8,
    pub profile: bool,
    pub queue_limits: QueueLimits,
    pub cpath: String,
    pub cpath_first: CpathFirst,
    pub daemon: Option<String>,
}

struct Keys<'a> {
    file: &'a str,
}

impl Keys<'_> {
    fn string(&self, key: &str, default: Option<&str>) -> Option<String> {
        match env().get_str(key) {
            Some(v) => Some(v),
            None => {
                let d = default?;
                let _ = env().set(key, d);
                Some(d.to_owned())
            }
        }
    }

    fn int(
        &self,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, String> {
        let v = self
            .string(key, Some(&default.to_string()))
            .unwrap_or_default();
        let n = v.trim().parse::<i64>().ok().or_else(|| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        });
        match n {
            Some(n) if range.contains(&n) => Ok(n),
            Some(n) => Err(format!(
                "{}: config key '{key}' = {n} is out of range [{}, {}]",
                self.file,
                range.start(),
                range.end()
            )),
            None => Err(format!(
                "{}: config key '{key}' must be an integer, got '{v}'",
                self.file
            )),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, String> {
        match self
            .string(key, Some(if default { "true" } else { "false" }))
            .as_deref()
        {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            other => Err(format!(
                "{}: config key '{key}' must be a boolean, got '{}'",
                self.file,
                other.unwrap_or("")
            )),
        }
    }
}

pub fn read_core_keys(file: &str) -> Result<CoreConfig, String> {
    let k = Keys { file };
    let thread = k.int("thread", 8, 1..=1024)? as usize;
    let cpath = k
        .string("cpath", Some("./cservice/?.so"))
        .unwrap_or_default();
    Modules::validate_cpath(&cpath).map_err(|e| format!("{file}: {e}"))?;
    let harbor = k.int("harbor", 1, 0..=255)? as u8;
    let bootstrap = k
        .string("bootstrap", Some("snlua bootstrap"))
        .unwrap_or_default();
    let daemon = k.string("daemon", None);
    let logger = k.string("logger", None);
    let logservice = k.string("logservice", Some("logger")).unwrap_or_default();
    let profile = k.boolean("profile", true)?;
    let defaults = SocketConfig::default();
    let socket = SocketConfig {
        max_sockets: k.int(
            "socket_max",
            defaults.max_sockets as i64,
            1..=MAX_SOCKET as i64,
        )? as usize,
        send_limit: k.int("socket_send_limit", defaults.send_limit as i64, 0..=1 << 40)? as usize,
        handoff_limit: k.int(
            "socket_handoff_limit",
            defaults.handoff_limit as i64,
            0..=1 << 20,
        )? as usize,
        // Read once, at start: a bad file stops the node here.
        tls: load_tls(&k)?.map(std::sync::Arc::new),
    };
    let queue_limits = QueueLimits {
        messages: k.int("queue_limit", DEFAULT_QUEUE_LIMIT as i64, 0..=1 << 40)? as usize,
        bytes: k.int(
            "queue_bytes_limit",
            DEFAULT_QUEUE_BYTES_LIMIT as i64,
            0..=1 << 50,
        )? as usize,
    };
    // read by snlua (the default Lua memory limit of every service); checked here
    k.int("memory_limit", 0, 0..=i64::MAX)?;
    let cpath_first = CpathFirst::parse(&env().get_str("cpath_first").unwrap_or_default());
    let cpu_limit = k.int("cpu_limit", 0, 0..=86400)? as u64;
    let metrics = match k.string("metrics", None) {
        Some(addr) => Some(metrics_listener(file, &addr)?),
        None => None,
    };
    Ok(CoreConfig {
        start: StartConfig {
            thread,
            logservice,
            logger,
            bootstrap,
            socket,
            cpu_limit,
            metrics,
        },
        harbor,
        profile,
        queue_limits,
        cpath,
        cpath_first,
        daemon,
    })
}

/// Set by the first [`boot`]: a process runs one node, once.
static BOOTED: AtomicBool = AtomicBool::new(false);

/// The error of a second start.
pub const ALREADY: &str = "skynet_start: this process has started its node already";

/// Whether [`boot`] has run.
pub fn booted() -> bool {
    BOOTED.load(Ordering::Acquire)
}

/// Installs the manifest (when set), daemonizes (when asked), registers the built-in and the
/// statically registered modules, and runs the node until it quits.
pub fn boot(cfg: &CoreConfig) -> Result<(), String> {
    if BOOTED.swap(true, Ordering::AcqRel) {
        return Err(ALREADY.to_owned());
    }
    // Before any module or Lua file is loaded: the node does not start without its manifest.
    if let Some(path) = env().get_str("load_manifest") {
        skynet_core::manifest::install(skynet_core::manifest::Manifest::load(&path)?);
    }
    if let Some(pidfile) = &cfg.daemon {
        skynet_core::daemon::init(pidfile)?;
    }
    let mut modules = Modules::new(&cfg.cpath, cfg.cpath_first.clone());
    skynet_cservice::register(&mut modules);
    cmodule::register_static(&mut modules);
    modules.set_loader(Box::new(cmodule::CLoader));
    let node = Node::init(NodeConfig {
        harbor: cfg.harbor,
        profile: cfg.profile,
        modules,
        queue_limits: cfg.queue_limits,
    });
    let result = start(node, &cfg.start);
    if let Some(pidfile) = &cfg.daemon {
        skynet_core::daemon::exit(pidfile);
    }
    result
}

/// Every core key's type and range check, each on its own (`skynet --check`): one line per
/// key at fault. Defaults are written into the env, as a start would.
#[allow(dead_code)] // the executable's `--check`; not in libskynet
pub fn check_keys(file: &str) -> Vec<String> {
    let k = Keys { file };
    let mut out = Vec::new();
    let ints: [(&str, i64, std::ops::RangeInclusive<i64>); 9] = [
        ("thread", 8, 1..=1024),
        ("harbor", 1, 0..=255),
        (
            "socket_max",
            SocketConfig::default().max_sockets as i64,
            1..=MAX_SOCKET as i64,
        ),
        (
            "socket_send_limit",
            SocketConfig::default().send_limit as i64,
            0..=1 << 40,
        ),
        (
            "socket_handoff_limit",
            SocketConfig::default().handoff_limit as i64,
            0..=1 << 20,
        ),
        ("queue_limit", DEFAULT_QUEUE_LIMIT as i64, 0..=1 << 40),
        (
            "queue_bytes_limit",
            DEFAULT_QUEUE_BYTES_LIMIT as i64,
            0..=1 << 50,
        ),
        ("memory_limit", 0, 0..=i64::MAX),
        ("cpu_limit", 0, 0..=86400),
    ];
    for (key, default, range) in ints {
        if let Err(e) = k.int(key, default, range) {
            out.push(e);
        }
    }
    if let Err(e) = k.boolean("profile", true) {
        out.push(e);
    }
    if let Err(e) = load_tls(&k) {
        out.push(e);
    }
    // Only parsed: binding it here would fail while the node being checked is running.
    if let Some(addr) = k.string("metrics", None) {
        if let Err(e) = metrics_address(file, &addr) {
            out.push(e);
        }
    }
    let cpath = k
        .string("cpath", Some("./cservice/?.so"))
        .unwrap_or_default();
    if let Err(e) = Modules::validate_cpath(&cpath) {
        out.push(format!("{file}: {e}"));
    }
    out
}

/// The `metrics` key as a socket address; the error names the key and the file.
fn metrics_address(file: &str, addr: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| format!("{file}: config key 'metrics' = '{addr}': {why}");
    addr.trim()
        .to_socket_addrs()
        .map_err(|e| bad(format!("not an address host:port ({e})")))?
        .next()
        .ok_or_else(|| bad("the host has no address".to_owned()))
}

/// Binds the `metrics` listener before start, so a bad or busy address stops the node with one
/// line naming the key and the file.
fn metrics_listener(file: &str, addr: &str) -> Result<std::net::TcpListener, String> {
    let target = metrics_address(file, addr)?;
    std::net::TcpListener::bind(target).map_err(|e| {
        format!("{file}: config key 'metrics' = '{addr}': can't listen on {target}: {e}")
    })
}

/// Seconds a TLS handshake may take when `tls_handshake_timeout` is not set.
const DEFAULT_TLS_HANDSHAKE_TIMEOUT: i64 = 10;

/// The TLS policy of the `tls_*` keys (`None` when no file or endpoint key is set); errors
/// name the file and the key.
fn load_tls(k: &Keys) -> Result<Option<TlsPolicy>, String> {
    // Not written into the env when unset (a key upstream does not have).
    let handshake_timeout = match env().get_str("tls_handshake_timeout") {
        Some(_) => k.int(
            "tls_handshake_timeout",
            DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            0..=86400,
        )?,
        None => DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    };
    TlsPolicy::load(&TlsFiles {
        cert: k.string("tls_cert", None),
        key: k.string("tls_key", None),
        ca: k.string("tls_ca", None),
        listen: k.string("tls_listen", None).unwrap_or_default(),
        connect: k.string("tls_connect", None).unwrap_or_default(),
        handshake_timeout: handshake_timeout as u64,
    })
    .map_err(|e| format!("{}: {e}", k.file))
}
