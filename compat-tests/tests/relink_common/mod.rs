//! Shared by tests/relink.rs and tests/install.rs: the program of compat-tests/relink/.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The lines of a run of main.c: the registrations, the module's three lines (its message
/// may be handled before the LAUNCH line is logged), and main's lines after `skynet_start`
/// returned, and after a second `skynet_start`, which is refused.
pub fn assert_static_run(stdout: &str, stderr: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        lines[..3],
        [
            "MAIN register null_init=-1",
            "MAIN register bad_name=-1",
            "MAIN register t_static=0",
        ],
        "{stdout}"
    );
    assert_eq!(
        lines[3],
        "[:00000002] STATIC init parm=[hello world] greeting=[hi]"
    );
    let mut middle = lines[4..6].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        [
            "[:00000002] LAUNCH t_static hello world",
            "[:00000002] STATIC got [ping] count=1",
        ],
        "{stdout}"
    );
    assert_eq!(
        lines[6..],
        ["MAIN after start", "MAIN after second start"],
        "{stdout}"
    );
    assert!(stderr.contains("has started its node already"), "{stderr}");
    assert!(
        stderr.contains("module t_static has no init function"),
        "{stderr}"
    );
    assert!(stderr.contains("is empty or has a blank"), "{stderr}");
}

/// Extra libraries a program linking `libskynet.a` needs (what the Makefile's LIB_LIBS lists).
pub const LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skynet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The config both the relinked program and (in tests/install.rs) the installed node run:
/// the static module is the bootstrap; `cpath` names no real directory.
pub fn write_config(dir: &Path, cpath: &str) -> PathBuf {
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "thread = 2\nharbor = 0\ncpath = {cpath:?}\nbootstrap = \"t_static hello world\"\n\
             greeting = \"hi\"\n"
        ),
    )
    .expect("write config");
    config
}
