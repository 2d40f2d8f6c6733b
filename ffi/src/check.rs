//! `skynet --version` and `skynet --check CONFIG`.
//!
//! The check reads the config as a start does (same loader, same defaults) and reports, one
//! line each: key types and ranges; every path the node would use that is missing (search
//! templates by their directory part: the text before the first `?`, up to its last `/`);
//! a bootstrap or logger module that cannot be found (built in, or a file through `cpath`),
//! with the Lua service it names when it is `snlua`; and, under `load_manifest`, a manifest
//! that cannot be read, or a listed file, or a file the start loads, that does not match it.
//! Nothing is started and no module is loaded.

use crate::{config, node};
use skynet_core::env::env;
use skynet_core::manifest::{Manifest, Refusal};
use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};

/// The skynet release whose Lua API and behaviour this build follows.
#[cfg(not(feature = "lua55"))]
const UPSTREAM: &str = "skynet v1.8.0";
#[cfg(feature = "lua55")]
const UPSTREAM: &str = "skynet master (Lua 5.5)";

/// The modules built into the executable.
const BUILTINS: &[&str] = &["snlua", "logger", "gate", "harbor"];

extern "C" {
    /// The embedded Lua's identification string (`$LuaVersion: Lua 5.x.y  Copyright ...`).
    static lua_ident: c_char;
}

/// The embedded Lua's release, e.g. `Lua 5.4.9`.
fn lua_release() -> String {
    // SAFETY: `lua_ident` is a NUL-terminated constant array defined by the embedded Lua.
    let ident = unsafe { CStr::from_ptr(&raw const lua_ident) }.to_string_lossy();
    let v = ident.strip_prefix("$LuaVersion: ").unwrap_or(&ident);
    v.split("  ").next().unwrap_or(v).trim().to_owned()
}

/// Three lines: ours, the embedded Lua, the upstream version we track.
pub fn version() -> String {
    format!(
        "skynet-rs {}\n{}\ntracks {UPSTREAM}",
        env!("CARGO_PKG_VERSION"),
        lua_release()
    )
}

/// The directory part of a search template (`./service/?.lua` -> `./service`), or `None`
/// when it names no directory (`?.lua`).
fn template_dir(template: &str) -> Option<&str> {
    let head = template.split('?').next().unwrap_or(template);
    match head.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&head[..i]),
        None => None,
    }
}

/// The first file the templates give for `name`.
fn find(templates: &str, name: &str) -> Option<PathBuf> {
    templates
        .split(';')
        .filter(|t| !t.is_empty())
        .map(|t| PathBuf::from(t.replace('?', name)))
        .find(|p| p.is_file())
}

fn setting(key: &str, default: Option<&str>) -> Option<String> {
    env().get_str(key).or_else(|| default.map(str::to_owned))
}

/// Every problem with the config `file`, one line each; empty when it is fine.
pub fn check(file: &str) -> Vec<String> {
    let pairs = match config::load(file) {
        Ok(p) => p,
        Err(e) => return vec![e.to_string()],
    };
    let mut out = Vec::new();
    for (key, value) in pairs {
        if let Err(e) = env().set(&key, &value) {
            out.push(format!("{file}: {e}"));
        }
    }
    out.extend(node::check_keys(file));
    let missing = |key: &str, what: &str, path: &str| {
        format!("{file}: config key '{key}': {what} '{path}' does not exist")
    };

    // Search templates: their directories must exist.
    let templates = [
        ("cpath", Some("./cservice/?.so")),
        ("luaservice", Some("./service/?.lua")),
        ("lua_path", Some("./lualib/?.lua;./lualib/?/init.lua")),
        ("lua_cpath", Some("./luaclib/?.so")),
        ("snax", None),
    ];
    for (key, default) in templates {
        let Some(value) = setting(key, default) else {
            continue;
        };
        for t in value.split(';').filter(|t| !t.is_empty()) {
            if let Some(dir) = template_dir(t) {
                if !Path::new(dir).is_dir() {
                    out.push(missing(key, "directory", dir));
                }
            }
        }
    }
    // Files and directories.
    let mut loaded: Vec<(&str, PathBuf)> = Vec::new();
    let lualoader = setting("lualoader", Some("./lualib/loader.lua")).unwrap_or_default();
    if Path::new(&lualoader).is_file() {
        loaded.push(("Lua file", lualoader.into()));
    } else {
        out.push(missing("lualoader", "file", &lualoader));
    }
    if let Some(preload) = setting("preload", None) {
        if Path::new(&preload).is_file() {
            loaded.push(("Lua file", preload.into()));
        } else {
            out.push(missing("preload", "file", &preload));
        }
    }
    if let Some(logpath) = setting("logpath", None) {
        if !Path::new(&logpath).is_dir() {
            out.push(missing("logpath", "directory", &logpath));
        }
    }
    if let Some(pidfile) = setting("daemon", None) {
        check_parent(&mut out, file, "daemon", &pidfile);
    }

    // The bootstrap and logger modules.
    let cpath = setting("cpath", Some("./cservice/?.so")).unwrap_or_default();
    let luaservice = setting("luaservice", Some("./service/?.lua")).unwrap_or_default();
    let logservice = setting("logservice", Some("logger")).unwrap_or_default();
    let logger = setting("logger", None);
    let bootstrap = setting("bootstrap", Some("snlua bootstrap")).unwrap_or_default();
    let cpath_first = setting("cpath_first", None).unwrap_or_default();
    let prefer_so = |m: &str| {
        cpath_first
            .split([';', ',', ' ', '\t'])
            .any(|n| n == "*" || n == m)
    };
    let mut words = bootstrap.split_whitespace();
    let boot_module = words.next().unwrap_or("");
    let boot_arg = words.next();
    for (key, module, arg) in [
        ("logservice", logservice.as_str(), logger.as_deref()),
        ("bootstrap", boot_module, boot_arg),
    ] {
        let builtin = BUILTINS.contains(&module) && !prefer_so(module);
        match find(&cpath, module) {
            _ if builtin => {}
            Some(p) => loaded.push(("C module", p)),
            None if BUILTINS.contains(&module) => {}
            None => out.push(format!(
                "{file}: config key '{key}': module '{module}' is not built in and not found \
                 through cpath '{cpath}'"
            )),
        }
        match (module, arg) {
            ("snlua", Some(service)) => match find(&luaservice, service) {
                Some(p) => loaded.push(("Lua file", p)),
                None => out.push(format!(
                    "{file}: config key '{key}': Lua service '{service}' is not found through \
                     luaservice '{luaservice}'"
                )),
            },
            ("snlua", None) => out.push(format!(
                "{file}: config key '{key}': snlua needs the name of a Lua service"
            )),
            ("logger", Some(path)) if key == "logservice" => {
                check_parent(&mut out, file, "logger", path);
            }
            _ => {}
        }
    }

    // The manifest.
    if let Some(path) = setting("load_manifest", None) {
        match Manifest::load(&path) {
            Err(e) => out.push(format!("{file}: {e}")),
            Ok(m) => {
                out.extend(m.verify_all().into_iter().map(|l| format!("{file}: {l}")));
                // A listed file that does not match is reported above already.
                for (what, p) in &loaded {
                    match m.read_checked(p) {
                        Ok(_) | Err(Refusal::Mismatch) => {}
                        Err(why) => out.push(format!("{file}: {}", m.refusal_line(what, p, &why))),
                    }
                }
            }
        }
    }
    out.dedup();
    out
}

/// A file the node creates (pid file, log file): its directory must exist.
fn check_parent(out: &mut Vec<String>, file: &str, key: &str, path: &str) {
    let dir = match Path::new(path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        out.push(format!(
            "{file}: config key '{key}': directory '{}' does not exist",
            dir.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::template_dir;

    #[test]
    fn template_directories() {
        assert_eq!(template_dir("./service/?.lua"), Some("./service"));
        assert_eq!(template_dir("./lualib/?/init.lua"), Some("./lualib"));
        assert_eq!(template_dir("/x/?.so"), Some("/x"));
        assert_eq!(template_dir("/?.so"), Some("/"));
        assert_eq!(template_dir("?.lua"), None);
    }
}
