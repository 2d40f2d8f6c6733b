//! The `skynet` executable: reads the config, boots the node, exports the C ABI.

mod abi;
mod cmodule;
mod config;
mod malloc_hook;

use skynet_core::env::env;
use skynet_core::module::{CpathFirst, Modules};
use skynet_core::mq::{QueueLimits, DEFAULT_QUEUE_BYTES_LIMIT, DEFAULT_QUEUE_LIMIT};
use skynet_core::server::{Node, NodeConfig};
use skynet_core::socket_server::{SocketConfig, TlsFiles, TlsPolicy, MAX_SOCKET};
use skynet_core::start::{start, StartConfig};
use std::process::ExitCode;

/// The core keys of the config, defaults written back into the env as upstream does.
struct CoreConfig {
    start: StartConfig,
    harbor: u8,
    profile: bool,
    queue_limits: QueueLimits,
    cpath: String,
    cpath_first: CpathFirst,
    daemon: Option<String>,
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

fn read_core_keys(file: &str) -> Result<CoreConfig, String> {
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
        // Read once, at start: a bad file stops the node here.
        tls: TlsPolicy::load(&TlsFiles {
            cert: k.string("tls_cert", None),
            key: k.string("tls_key", None),
            ca: k.string("tls_ca", None),
            listen: k.string("tls_listen", None).unwrap_or_default(),
            connect: k.string("tls_connect", None).unwrap_or_default(),
        })
        .map_err(|e| format!("{file}: {e}"))?
        .map(std::sync::Arc::new),
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
    Ok(CoreConfig {
        start: StartConfig {
            thread,
            logservice,
            logger,
            bootstrap,
            socket,
            cpu_limit,
        },
        harbor,
        profile,
        queue_limits,
        cpath,
        cpath_first,
        daemon,
    })
}

fn run() -> Result<(), String> {
    let Some(file) = std::env::args().nth(1) else {
        return Err("Need a config file. usage: skynet configfilename".to_owned());
    };
    // SAFETY: setting SIGPIPE to SIG_IGN before any thread starts; a broken pipe becomes EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    for (key, value) in config::load(&file).map_err(|e| e.to_string())? {
        env().set(&key, &value)?;
    }
    let cfg = read_core_keys(&file)?;
    // Before any module or Lua file is loaded: the node does not start without its manifest.
    if let Some(path) = env().get_str("load_manifest") {
        skynet_core::manifest::install(skynet_core::manifest::Manifest::load(&path)?);
    }
    if let Some(pidfile) = &cfg.daemon {
        skynet_core::daemon::init(pidfile)?;
    }
    let mut modules = Modules::new(&cfg.cpath, cfg.cpath_first.clone());
    skynet_cservice::register(&mut modules);
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

fn main() -> ExitCode {
    malloc_hook::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
