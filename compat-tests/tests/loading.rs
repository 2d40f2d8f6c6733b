//! `cpu_limit` (the monitor interrupts an snlua handler that runs too long, reports a C one)
//! and `load_manifest` (verified loading of Lua files and C modules). Handles: logger :1,
//! bootstrap :2, then launch order.

use compat_tests::{line, module_dir, repo_root, require_modules, Node, Output};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Config lines for our Lua test services in `dir` (loader, service path, `require` path).
fn lua_config(dir: &Path) -> String {
    format!(
        "lualoader = {:?}\nluaservice = {:?}\nlua_path = {:?}\n",
        dir.join("loader.lua").display().to_string(),
        format!("{}/?.lua", dir.display()),
        format!("{}/?.lua", dir.display()),
    )
}

#[test]
fn cpu_limit_interrupts_an_endless_lua_handler() {
    let lua = repo_root().join("compat-tests").join("lua");
    let extra = format!(
        "{}cpu_limit = 1\n{}",
        lua_config(&lua),
        compat_tests::TWO_WORKERS
    );
    let out = Node::run(&extra, "snlua t_cpulimit", TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out.assert_checks(&[
        "handles",
        "looper_ready",
        "other_answers_1",
        "other_answers_2",
        "other_answers_3",
        "caller_gets_error",
        "looper_serves_after",
        "other_serves_after_loop",
    ]);
    // the monitor's line, and the Lua error the handler raised (both services)
    for h in [3, 4] {
        out.assert_line(&line(
            h,
            "cpu_limit: the handler of a message from [ :00000002 ] ran over 1 s: interrupted",
        ));
    }
    out.assert_line_containing("] handler error: cpu_limit exceeded");
    assert_eq!(
        out.texts_from(4)
            .iter()
            .filter(|t| t.contains("cpu_limit exceeded"))
            .count(),
        1,
        "the dispatcher's error line\n{out}"
    );
    // A loose sanity bound (not a timing test): interrupted well before 5 s.
    let cs: Vec<u64> = out
        .texts_from(2)
        .iter()
        .filter_map(|t| t.strip_prefix("INTERRUPTED_AFTER_CS "))
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        cs.len() == 1 && cs[0] < 500,
        "interrupted after {cs:?} cs\n{out}"
    );
}

#[test]
fn cpu_limit_reports_a_c_service() {
    if !require_modules(&["t_busy"]) {
        return;
    }
    let out = Node::run("cpu_limit = 1", "t_busy", TIMEOUT);
    out.assert_clean_exit();
    out.assert_line(&line(2, "DONE"));
    // reported once (the handler runs 2.5 s), not interrupted
    out.assert_count(
        "cpu_limit: C service t_busy [ :00000002 ]: the handler of a message from [ :00000000 ] runs over 1 s (it cannot be interrupted)",
        1,
    );
}

/// A fresh directory for one manifest scenario.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("skynet-loading-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// `sha256sum FILES > manifest`, run in `dir` (relative names, as a deployment would).
fn write_manifest(dir: &Path, files: &[&str]) {
    let out = Command::new("sha256sum")
        .args(files)
        .current_dir(dir)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum failed: {out:?}");
    fs::write(dir.join("manifest"), out.stdout).unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    let mut b = fs::read(path).unwrap();
    b.extend_from_slice(bytes);
    fs::write(path, b).unwrap();
}

/// Lines that are a refusal (not ones quoting it, such as the loader's error).
fn refusals(out: &Output) -> Vec<&str> {
    out.stdout_lines
        .iter()
        .filter_map(|l| l.split_once("] ").map(|(_, text)| text))
        .filter(|t| t.starts_with("load_manifest: refused "))
        .collect()
}

fn assert_refused(out: &Output, what: &str, path: &Path, why: &str, n: usize) {
    let want = format!("load_manifest: refused {what} {}: {why}", path.display());
    let got = refusals(out).iter().filter(|t| **t == want).count();
    assert_eq!(got, n, "{want}\n{out}");
}

#[test]
fn manifest_refuses_changed_and_unlisted_files() {
    if !require_modules(&["t_child"]) {
        return;
    }
    let d = scratch("manifest");
    let src = repo_root().join("compat-tests").join("lua");
    let copy = |from: &Path, to: &str| {
        fs::copy(from, d.join(to)).unwrap();
    };
    copy(&src.join("loader.lua"), "loader.lua");
    copy(&src.join("t.lua"), "t.lua");
    for f in ["t_manifest.lua", "t_mchild.lua", "t_mmod.lua"] {
        copy(&src.join("manifest").join(f), f);
    }
    copy(&src.join("manifest/t_mchild.lua"), "t_mchanged.lua");
    copy(&src.join("manifest/t_mchild.lua"), "t_munlisted.lua");
    copy(&src.join("manifest/t_mmod.lua"), "t_mmodchanged.lua");
    let so = module_dir().join("t_child.so");
    copy(&so, "t_child.so");
    copy(&so, "x.t_child.so");
    copy(&so, "y.t_child.so");
    fs::write(d.join("fakelib.so"), "not a library").unwrap();
    write_manifest(
        &d,
        &[
            "loader.lua",
            "t.lua",
            "t_manifest.lua",
            "t_mchild.lua",
            "t_mchanged.lua",
            "t_mmod.lua",
            "./t_mmodchanged.lua",
            "t_child.so",
            "x.t_child.so",
        ],
    );
    // changed after the manifest was written (the .so still loads without a manifest)
    append(&d.join("t_mchanged.lua"), b"\n-- changed\n");
    append(&d.join("t_mmodchanged.lua"), b"\n-- changed\n");
    append(&d.join("x.t_child.so"), b"\0");

    let extra = format!(
        "{}cpath = {:?}\nlua_cpath = cpath\nload_manifest = {:?}\n",
        lua_config(&d),
        format!("{}/?.so", d.display()),
        d.join("manifest").display().to_string(),
    );
    let out = Node::run(&extra, "snlua t_manifest", TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out.assert_checks(&[
        "listed_service_runs",
        "unlisted_service_refused",
        "changed_service_refused",
        "listed_module_required",
        "changed_module_refused",
        "loadfile_refused",
        "listed_loadfile",
        "dofile_refused",
        "listed_cmodule_runs",
        "changed_cmodule_refused",
        "unlisted_cmodule_refused",
        "unlisted_luaclib_refused",
        "listed_luaclib_checked",
        "listed_loadlib",
        "changed_loadlib_refused",
    ]);
    let manifest = d.join("manifest");
    let m = manifest.display();
    let mismatch = format!("its SHA-256 does not match the manifest {m}");
    let unlisted = format!("not listed in the manifest {m}");
    // the service launch and dofile; the launch; require and loadfile
    assert_refused(&out, "Lua file", &d.join("t_munlisted.lua"), &unlisted, 2);
    assert_refused(&out, "Lua file", &d.join("t_mchanged.lua"), &mismatch, 1);
    assert_refused(&out, "Lua file", &d.join("t_mmodchanged.lua"), &mismatch, 2);
    assert_refused(&out, "C module", &d.join("x.t_child.so"), &mismatch, 1);
    assert_refused(&out, "C module", &d.join("y.t_child.so"), &unlisted, 1);
    assert_refused(&out, "Lua C module", &d.join("fakelib.so"), &unlisted, 1);
    assert_refused(&out, "Lua C module", &d.join("x.t_child.so"), &mismatch, 1);
    assert_eq!(refusals(&out).len(), 9, "{out}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn unreadable_manifest_stops_the_node() {
    let d = scratch("nomanifest");
    let missing = d.join("missing-manifest");
    let lua = repo_root().join("compat-tests").join("lua");
    let extra = format!(
        "{}load_manifest = {:?}\n",
        lua_config(&lua),
        missing.display().to_string()
    );
    let out = Node::run(&extra, "snlua t_cpulimit", TIMEOUT);
    assert_eq!(out.status, Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "load_manifest: cannot read the manifest '{}': No such file or directory",
            missing.display()
        )),
        "{out}"
    );
    assert!(out.stdout_lines.is_empty(), "{out}");
    let _ = fs::remove_dir_all(&d);
}

/// With upstream's skynet.lua (a checkout in env `SKYNET_UPSTREAM`; skipped without it): the
/// caller of the interrupted request gets an error (`skynet.call` fails), the callee serves on.
#[test]
fn cpu_limit_with_upstream_skynet_lua() {
    let Some(root) = std::env::var_os("SKYNET_UPSTREAM") else {
        eprintln!("SKIP: set SKYNET_UPSTREAM to a skynet checkout");
        return;
    };
    let root = Path::new(&root)
        .canonicalize()
        .expect("SKYNET_UPSTREAM exists");
    let ours = repo_root().join("compat-tests/lua/upstream");
    let extra = format!(
        "root = {:?}\nharbor = 0\nstart = \"t_cpu_main\"\n\
         lualoader = root..\"lualib/loader.lua\"\n\
         lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
         lua_cpath = root..\"luaclib/?.so\"\n\
         luaservice = root..\"service/?.lua;{}/?.lua\"\n\
         cpu_limit = 1\n",
        format!("{}/", root.display()),
        ours.display()
    );
    let out = Node::run(&extra, "snlua bootstrap", TIMEOUT);
    assert!(!out.timed_out, "{out}");
    out.assert_line_containing("ran over 1 s: interrupted");
    out.assert_line_containing("cpu_limit exceeded");
    out.assert_line_containing("SPIN_CALL ok=false err=");
    out.assert_line_containing("] AFTER pong");
}
