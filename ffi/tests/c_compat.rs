//! The committed headers must serve C modules written for upstream's: `ffi/tests/c/compat_module.c`
//! uses every declaration the way upstream's services do, checks the constants with `#if` and the
//! struct layouts with `_Static_assert`. It is compiled here with `cc` from
//! PATH, warnings as errors, as a shared object like a cservice module.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/compat_module.c")
}

/// Compiles the module with upstream's dialect plus `extra`; panics with the compiler output.
fn compile(extra: &[&str]) {
    let include = repo().join("include");
    let out = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&include)
        .args(extra)
        .arg(source())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cc` (a C compiler on PATH is required): {e}"));
    assert!(
        out.status.success(),
        "the headers in {} do not compile for C modules (cc {}):\n{}{}",
        include.display(),
        extra.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_compat");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// Built as a module is (upstream builds with `-std=gnu99`, `-fPIC -shared`); its imports are
/// the skynet functions and, for the `skynet_malloc` family, the libc names.
#[test]
fn module_builds_against_headers() {
    let so = tmp("compat_module.so");
    let so_arg = so.to_str().expect("UTF-8 path");
    compile(&["-std=gnu99", "-O2", "-fPIC", "-shared", "-o", so_arg]);

    let out = Command::new("nm")
        .args(["-u", "-D"])
        .arg(&so)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `nm` (binutils): {e}"));
    assert!(out.status.success(), "nm -u -D {so_arg} failed");
    let imports: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    assert!(
        !imports
            .iter()
            .any(|i| i == "skynet_socket_send" || i == "sendbuffer_init_"),
        "the legacy socket helpers are static inline in skynet_socket.h, not imports"
    );
    for libc in ["malloc", "calloc", "realloc", "free", "posix_memalign"] {
        assert!(
            imports.iter().any(|i| i == libc),
            "the module should import libc `{libc}` (skynet_malloc.h macros); imports: {imports:?}"
        );
        let ours = format!("skynet_{libc}");
        assert!(
            !imports.contains(&ours),
            "`{ours}` must be a macro for `{libc}`, not a function the core exports"
        );
    }
    for f in [
        "skynet_error",
        "skynet_send",
        "skynet_harbor_send",
        "skynet_lalloc",
        "skynet_socket_sendbuffer",
        "skynet_socket_udp_sendbuffer",
        "skynet_socket_info",
        "socket_info_release",
    ] {
        assert!(
            imports.iter().any(|i| i == f),
            "{f} not imported: {imports:?}"
        );
    }
}

/// Modules that include the system headers first (`<stdlib.h>`, `<malloc.h>`, `<string.h>`)
/// must not meet conflicting declarations either.
#[test]
fn system_headers_first() {
    compile(&["-std=gnu99", "-DSYSTEM_HEADERS_FIRST", "-fsyntax-only"]);
}

/// The headers are plain ISO C11 (no extensions needed).
#[test]
fn strict_c11() {
    compile(&["-std=c11", "-Wpedantic", "-fsyntax-only"]);
    compile(&[
        "-std=c11",
        "-Wpedantic",
        "-DSYSTEM_HEADERS_FIRST",
        "-fsyntax-only",
    ]);
}
