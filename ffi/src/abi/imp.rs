//! `skynet_imp.h`: starting a node from a program's own `main` (libskynet).
//!
//! The calling sequence is the classic one: `skynet_globalinit()`, `skynet_env_init()`, the
//! config keys into the env (`skynet_setenv`, or `skynet_config_load` for a config file read
//! exactly as the `skynet` executable reads it), `skynet_start(&config)`, `skynet_globalexit()`.
//! The executable exports these too; there `skynet_start` is of no use (its node runs already).

use super::{cstr, guard};
use std::ffi::{c_char, c_int};

pub const THREAD_WORKER: c_int = 0;
pub const THREAD_MAIN: c_int = 1;
pub const THREAD_SOCKET: c_int = 2;
pub const THREAD_TIMER: c_int = 3;
pub const THREAD_MONITOR: c_int = 4;

/// The start keys in the classic layout (NULL string: the key's default; module_path is cpath).
///
/// The other keys (`socket_max`, `queue_limit`, `cpath_first`, `load_manifest`, ...) are read
/// from the env, as the executable does.
#[repr(C)]
pub struct skynet_config {
    pub thread: c_int,
    pub harbor: c_int,
    pub profile: c_int,
    pub daemon: *const c_char,
    pub module_path: *const c_char,
    pub bootstrap: *const c_char,
    pub logger: *const c_char,
    pub logservice: *const c_char,
}

/// Process-wide setup before anything else; nothing is needed (kept for the calling sequence).
#[no_mangle]
pub extern "C" fn skynet_globalinit() {}

/// Process-wide teardown after `skynet_start` returned; nothing is needed.
#[no_mangle]
pub extern "C" fn skynet_globalexit() {}

/// Reads a config file into the env as the executable does: 0, or -1 with the error on stderr.
///
/// Lua syntax, `include "file"` and `$VAR` work as in the executable's config.
///
/// # Safety
/// `file` NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn skynet_config_load(file: *const c_char) -> c_int {
    guard("skynet_config_load", -1, || {
        // SAFETY: per the contract above.
        let Some(file) = (unsafe { cstr(file) }) else {
            eprintln!("skynet_config_load: no file name");
            return -1;
        };
        let pairs = match crate::config::load(&file) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return -1;
            }
        };
        for (key, value) in pairs {
            if let Err(e) = skynet_core::env::env().set(&key, &value) {
                eprintln!("{e}");
                return -1;
            }
        }
        0
    })
}

/// Runs the node until it quits; a config or bootstrap error exits the process with status 1.
///
/// The reason is printed on stderr. The struct's values win over the env's (and are written
/// into it when the key is unset); a `thread` of 0 or less and NULL strings leave the key to
/// the env (or its default). A second call in the process only prints a line and returns.
///
/// # Safety
/// `config` NULL (every key from the env) or a valid `struct skynet_config`.
#[no_mangle]
pub unsafe extern "C" fn skynet_start(config: *const skynet_config) {
    if crate::node::booted() {
        // A second start (a module of a running node, say) is refused, not fatal.
        eprintln!("{}", crate::node::ALREADY);
        return;
    }
    let result = guard("skynet_start", Err("panic".to_owned()), || {
        // SAFETY: per the contract above.
        let c = unsafe { config.as_ref() };
        start(c)
    });
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn start(c: Option<&skynet_config>) -> Result<(), String> {
    let env = skynet_core::env::env();
    // SAFETY: the pointers are NULL or C strings per `skynet_start`'s contract.
    let strings = c.map(|c| unsafe {
        [
            ("daemon", cstr(c.daemon)),
            ("cpath", cstr(c.module_path)),
            ("bootstrap", cstr(c.bootstrap)),
            ("logger", cstr(c.logger)),
            ("logservice", cstr(c.logservice)),
        ]
    });
    // An unset key takes the struct's value, so services reading the env see it.
    for (key, value) in strings.iter().flatten() {
        if let Some(v) = value {
            if env.get(key).is_none() {
                env.set(key, v)?;
            }
        }
    }
    if let Some(c) = c {
        if env.get("thread").is_none() && c.thread > 0 {
            env.set("thread", &c.thread.to_string())?;
        }
        if env.get("harbor").is_none() {
            env.set("harbor", &c.harbor.to_string())?;
        }
        if env.get("profile").is_none() {
            env.set("profile", if c.profile != 0 { "true" } else { "false" })?;
        }
    }
    let mut cfg = crate::node::read_core_keys("skynet_start")?;
    // The struct wins over the env, as the classic start used only the struct.
    if let (Some(c), Some(strings)) = (c, strings) {
        if c.thread > 0 {
            cfg.start.thread = (c.thread as usize).min(1024);
        }
        cfg.harbor = u8::try_from(c.harbor)
            .map_err(|_| format!("skynet_start: harbor {} is out of range [0, 255]", c.harbor))?;
        cfg.profile = c.profile != 0;
        let [(_, daemon), (_, cpath), (_, bootstrap), (_, logger), (_, logservice)] = strings;
        if let Some(v) = daemon {
            cfg.daemon = Some(v.into_owned());
        }
        if let Some(v) = cpath {
            skynet_core::module::Modules::validate_cpath(&v)
                .map_err(|e| format!("skynet_start: {e}"))?;
            cfg.cpath = v.into_owned();
        }
        if let Some(v) = bootstrap {
            cfg.start.bootstrap = v.into_owned();
        }
        if let Some(v) = logger {
            cfg.start.logger = Some(v.into_owned());
        }
        if let Some(v) = logservice {
            cfg.start.logservice = v.into_owned();
        }
    }
    // SAFETY: SIGPIPE to SIG_IGN: a broken pipe becomes EPIPE on the socket.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    crate::node::boot(&cfg)
}
