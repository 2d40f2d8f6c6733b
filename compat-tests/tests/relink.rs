//! A program with its own `main` (compat-tests/relink/main.c) and a C service module linked in
//! statically (compat-tests/relink/t_static.c) relinks against `libskynet.a` (built by `make`):
//! it reads its config with `skynet_config_load`, registers the module with
//! `skynet_module_register_static`, starts the node with `skynet_start` and gets control back
//! when the node ends. Its `main` also calls `luaL_initcodecache` (twice) and `lua_version`,
//! which must answer the Lua of the archive: `SKYNET_LIBSKYNET` names another `libskynet.a`
//! (`make test-lua55` passes the Lua 5.5 build with `SKYNET_LUA=5.5`).

mod relink_common;

use compat_tests::{repo_root, skip_missing};
use relink_common::{assert_static_run, scratch, write_config, LIBS};
use std::process::Command;

#[test]
fn own_main_with_a_static_module_relinks_against_libskynet_a() {
    let lib = match std::env::var_os("SKYNET_LIBSKYNET") {
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            assert!(
                p.is_file(),
                "SKYNET_LIBSKYNET={} is not a file",
                p.display()
            );
            p
        }
        None => repo_root().join("libskynet.a"),
    };
    if !lib.is_file() {
        skip_missing(format_args!("{} is not built (run `make`)", lib.display()));
        return;
    }
    let dir = scratch("relink");
    let src = repo_root().join("compat-tests/relink");
    let exe = dir.join("relinked");
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .args([
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-parameter",
            "-I",
        ])
        .arg(repo_root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(src.join("main.c"))
        .arg(src.join("t_static.c"))
        .arg(&lib)
        .args(LIBS)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "linking against libskynet.a failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = write_config(&dir, "/nonexistent-skynet-dir/?.so");
    let out = Command::new(&exe)
        .arg(&config)
        .current_dir(&dir)
        .output()
        .expect("run the relinked program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert_static_run(&stdout, &stderr);
    let lua = match std::env::var("SKYNET_LUA").as_deref() {
        Ok("5.5") => 505,
        _ => 504,
    };
    assert!(
        stderr.contains(&format!("MAIN lua_version={lua}\n")),
        "{} does not hold Lua {lua}:\n{stderr}",
        lib.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
