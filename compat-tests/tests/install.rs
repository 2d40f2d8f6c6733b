//! `make install PREFIX=...` lays out bin/skynet, include/skynet/*.h, lib/libskynet.{a,so} and
//! lib/pkgconfig/skynet.pc; from that tree alone, with pkg-config, a C service module builds
//! (`cc -shared -fPIC $(pkg-config --cflags skynet)`) and runs on the installed node, and a
//! program with its own main links against the installed libskynet.so.

mod relink_common;

use compat_tests::{repo_root, skip_missing};
use relink_common::{assert_static_run, scratch, write_config};
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn installed_tree_builds_a_module_with_pkg_config() {
    let root = repo_root();
    for built in ["skynet", "libskynet.a", "libskynet.so"] {
        if !root.join(built).is_file() {
            skip_missing(format_args!("{built} is not built (run `make`)"));
            return;
        }
    }
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_missing(format_args!("pkg-config is not installed"));
        return;
    }
    let dir = scratch("install");
    let prefix = dir.join("prefix");
    run(Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&root)
        .arg("install-files")
        .arg(format!("PREFIX={}", prefix.display())));
    let mut headers: Vec<String> = std::fs::read_dir(root.join("include"))
        .expect("include/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".h"))
        .collect();
    headers.sort();
    assert!(headers.iter().any(|h| h == "skynet_imp.h"), "{headers:?}");
    let mut files: Vec<String> = headers
        .iter()
        .map(|h| format!("include/skynet/{h}"))
        .collect();
    files.extend(
        [
            "bin/skynet",
            "lib/libskynet.a",
            "lib/libskynet.so",
            "lib/pkgconfig/skynet.pc",
        ]
        .map(str::to_owned),
    );
    for f in &files {
        assert!(prefix.join(f).is_file(), "{f} is not installed");
    }

    // From here on only the installed tree: pkg-config finds it through PKG_CONFIG_PATH.
    let pc_path = prefix.join("lib/pkgconfig");
    let pkg = |args: &[&str]| {
        words(&run(Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", &pc_path)
            .args(args)
            .arg("skynet")))
    };
    let cflags = pkg(&["--cflags"]);
    assert_eq!(
        cflags,
        [format!("-I{}", prefix.join("include/skynet").display())]
    );
    let src = root.join("compat-tests/relink");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mods = dir.join("mods");
    std::fs::create_dir_all(&mods).expect("mods dir");
    run(Command::new(&cc)
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(mods.join("t_static.so"))
        .arg(src.join("t_static.c"))
        .args(&cflags));

    // The module, as a .so found through cpath, on the installed node.
    let node_dir = dir.join("node");
    std::fs::create_dir_all(&node_dir).expect("node dir");
    let cpath = format!("{}/?.so", mods.display());
    let config = write_config(&node_dir, &cpath);
    let out = Command::new(prefix.join("bin/skynet"))
        .arg(&config)
        .current_dir(&node_dir)
        .output()
        .expect("run the installed skynet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "[:00000002] STATIC init parm=[hello world] greeting=[hi]",
        "[:00000002] LAUNCH t_static hello world",
        "[:00000002] STATIC got [ping] count=1",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in\n{stdout}"
        );
    }

    // A program with its own main, linked against the installed libskynet.so.
    let exe = dir.join("relinked-dyn");
    run(Command::new(&cc)
        .arg("-o")
        .arg(&exe)
        .args(&cflags)
        .arg(src.join("main.c"))
        .arg(src.join("t_static.c"))
        .args(pkg(&["--libs"])));
    let out = Command::new(&exe)
        .arg(&config)
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .current_dir(&node_dir)
        .output()
        .expect("run the program linked to libskynet.so");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_static_run(&stdout, &stderr);
    assert_libskynet_is_dynamic(&exe);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The program really uses the shared library (NEEDED entry).
fn assert_libskynet_is_dynamic(exe: &Path) {
    let out = run(Command::new("readelf").arg("-d").arg(exe));
    assert!(out.contains("[libskynet.so]"), "{out}");
}
