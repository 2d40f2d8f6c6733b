//! `skynet --version` and `skynet --check CONFIG`: the config is read as a start reads it,
//! every problem is one line on stdout and the exit status is 1; a good config prints `ok`.
//! Nothing starts (no service, no log line).

use compat_tests::{skip_missing, skynet_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Option<PathBuf> {
    let bin = skynet_bin();
    if bin.is_file() {
        Some(bin)
    } else {
        skip_missing(format_args!("{} is not built (run `make`)", bin.display()));
        None
    }
}

/// A fresh directory with the usual tree: service/bootstrap.lua, lualib/loader.lua,
/// luaclib/, cservice/.
fn tree(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skynet-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["service", "lualib", "luaclib", "cservice"] {
        std::fs::create_dir_all(dir.join(d)).expect("create tree");
    }
    std::fs::write(dir.join("service/bootstrap.lua"), "-- bootstrap\n").expect("write");
    std::fs::write(dir.join("lualib/loader.lua"), "-- loader\n").expect("write");
    dir.canonicalize().expect("canonical temp dir")
}

/// Runs `skynet --check config` in `dir`: (exit code, stdout lines, stderr).
fn check(bin: &Path, dir: &Path, config: &str) -> (i32, Vec<String>, String) {
    std::fs::write(dir.join("config"), config).expect("write config");
    let out = Command::new(bin)
        .args(["--check", "config"])
        .current_dir(dir)
        .output()
        .expect("run skynet --check");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_names_ours_lua_and_upstream() {
    let Some(bin) = bin() else { return };
    let out = Command::new(&bin).arg("--version").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("skynet-rs 0."), "{text}");
    let lua = std::env::var("SKYNET_LUA").unwrap_or_else(|_| "5.4".to_owned());
    assert!(lines[1].starts_with(&format!("Lua {lua}.")), "{text}");
    assert!(lines[2].starts_with("tracks skynet "), "{text}");
}

#[test]
fn a_good_config_is_ok_and_nothing_starts() {
    let Some(bin) = bin() else { return };
    let dir = tree("good");
    let (code, lines, err) = check(
        &bin,
        &dir,
        "thread = 4\nharbor = 0\nlogpath = \".\"\nbootstrap = \"snlua bootstrap\"\n\
         daemon = \"./skynet.pid\"\ntls_handshake_timeout = 0\n",
    );
    assert_eq!((code, lines), (0, vec!["ok".to_owned()]), "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(!dir.join("skynet.pid").exists(), "--check daemonized");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_problem_is_one_line() {
    let Some(bin) = bin() else { return };
    let dir = tree("bad");
    // The manifest lists the bootstrap script (changed since) and a file that is gone.
    std::fs::write(
        dir.join("manifest"),
        format!(
            "{}  service/bootstrap.lua\n{}  gone.lua\n",
            "0".repeat(64),
            "1".repeat(64)
        ),
    )
    .expect("write manifest");
    let config = r#"
thread = "many"
profile = 3
harbor = 300
tls_handshake_timeout = -1
cpath = "./nocservice/?.so;./cservice/?.so"
lua_path = "./lualib/?.lua;./nolualib/?/init.lua"
lualoader = "./lualib/noloader.lua"
logpath = "./nolog"
daemon = "./norun/skynet.pid"
logger = "./nologdir/skynet.log"
bootstrap = "nosuch x"
preload = "./nopreload.lua"
load_manifest = "manifest"
"#;
    let (code, lines, err) = check(&bin, &dir, config);
    let d = dir.display();
    let expected = [
        "config: config key 'thread' must be an integer, got 'many'".to_owned(),
        "config: config key 'harbor' = 300 is out of range [0, 255]".to_owned(),
        "config: config key 'profile' must be a boolean, got '3'".to_owned(),
        "config: config key 'tls_handshake_timeout' = -1 is out of range [0, 86400]".to_owned(),
        "config: config key 'cpath': directory './nocservice' does not exist".to_owned(),
        "config: config key 'lua_path': directory './nolualib' does not exist".to_owned(),
        "config: config key 'lualoader': file './lualib/noloader.lua' does not exist".to_owned(),
        "config: config key 'preload': file './nopreload.lua' does not exist".to_owned(),
        "config: config key 'logpath': directory './nolog' does not exist".to_owned(),
        "config: config key 'daemon': directory './norun' does not exist".to_owned(),
        "config: config key 'logger': directory './nologdir' does not exist".to_owned(),
        "config: config key 'bootstrap': module 'nosuch' is not built in and not found \
         through cpath './nocservice/?.so;./cservice/?.so'"
            .to_owned(),
        format!(
            "config: load_manifest: {d}/gone.lua listed in manifest cannot be read: No such \
             file or directory (os error 2)"
        ),
        format!(
            "config: load_manifest: {d}/service/bootstrap.lua: its SHA-256 does not match \
             the manifest manifest"
        ),
    ];
    assert_eq!(lines, expected, "stderr: {err}");
    assert_eq!(code, 1);
    assert!(!dir.join("nolog").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lua_services_of_bootstrap_and_logger_must_exist() {
    let Some(bin) = bin() else { return };
    let dir = tree("lua");
    let (code, lines, err) = check(
        &bin,
        &dir,
        "bootstrap = \"snlua nosvc\"\nlogservice = \"snlua\"\nlogger = \"mylog\"\n",
    );
    assert_eq!(
        lines,
        [
            "config: config key 'logservice': Lua service 'mylog' is not found through \
             luaservice './service/?.lua'",
            "config: config key 'bootstrap': Lua service 'nosvc' is not found through \
             luaservice './service/?.lua'",
        ],
        "{err}"
    );
    assert_eq!(code, 1);
    // Once the files are there, the same config is fine.
    std::fs::write(dir.join("service/nosvc.lua"), "").expect("write");
    std::fs::write(dir.join("service/mylog.lua"), "").expect("write");
    let (code, lines, err) = check(
        &bin,
        &dir,
        "bootstrap = \"snlua nosvc\"\nlogservice = \"snlua\"\nlogger = \"mylog\"\n",
    );
    assert_eq!((code, lines), (0, vec!["ok".to_owned()]), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_config_is_one_line() {
    let Some(bin) = bin() else { return };
    let dir = tree("syntax");
    let (code, lines, _) = check(&bin, &dir, "thread = \n");
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("config:2:"), "{lines:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_the_start_loads_must_be_in_the_manifest() {
    let Some(bin) = bin() else { return };
    let dir = tree("manifest");
    let wrong = "0c2bd6ff3fca4e8cfa7e04a0a5ac2a3d6dd6a4e9c04bca3bc3e18d9c8a3e2db0";
    std::fs::write(dir.join("lualib/loader.lua"), "").expect("write");
    // sha256 of the empty file
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    std::fs::write(
        dir.join("manifest"),
        format!("{empty}  lualib/loader.lua\n"),
    )
    .expect("write manifest");
    let (code, lines, err) = check(&bin, &dir, "load_manifest = \"manifest\"\n");
    assert_eq!(
        lines,
        [
            "config: load_manifest: refused Lua file ./service/bootstrap.lua: not listed in the \
          manifest manifest"
        ],
        "{err}"
    );
    assert_eq!(code, 1);
    // Listed with a wrong hash: the mismatch line, once.
    std::fs::write(
        dir.join("manifest"),
        format!("{empty}  lualib/loader.lua\n{wrong}  service/bootstrap.lua\n"),
    )
    .expect("write manifest");
    let (code, lines, err) = check(&bin, &dir, "load_manifest = \"manifest\"\n");
    assert_eq!(
        lines,
        [format!(
            "config: load_manifest: {}/service/bootstrap.lua: its SHA-256 does not match the \
             manifest manifest",
            dir.display()
        )],
        "{err}"
    );
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
