//! The release `skynet` executable must export, in its dynamic symbol table, every function the
//! public headers (`include/*.h`) declare: modules are `dlopen`ed with `RTLD_NOW` and resolve
//! those against the executable. It must also be linked to libm, so that modules
//! importing e.g. `round` (sproto.so) load.
//!
//! This test builds nothing: it inspects the binary named by `SKYNET_BIN`, else `<repo>/skynet`,
//! else `<repo>/target/release/skynet`, else the one cargo built for this test run, with binutils
//! (`nm`, `readelf`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The executable to inspect, or `None` (the test is then skipped, unless
/// `SKYNET_REQUIRE_ALL=1`).
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKYNET_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SKYNET_BIN={} is not a file", p.display());
        return Some(p);
    }
    let candidates = [
        Some(repo().join("skynet")),
        Some(repo().join("target/release/skynet")),
        option_env!("CARGO_BIN_EXE_skynet").map(PathBuf::from),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    // `make test` sets SKYNET_REQUIRE_ALL=1: there a missing binary is a failure, not a skip.
    if found.is_none() && std::env::var("SKYNET_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("SKYNET_REQUIRE_ALL=1 but no skynet binary (set SKYNET_BIN or run `make`)");
    }
    found
}

/// Runs a binutils tool and returns its stdout.
fn tool(name: &str, args: &[&str], bin: &Path) -> String {
    let out = Command::new(name)
        .args(args)
        .arg(bin)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{name}` (binutils): {e}"));
    assert!(
        out.status.success(),
        "`{name} {} {}` failed: {}",
        args.join(" "),
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names defined in the dynamic symbol table (`nm -D --defined-only`), without version suffixes.
fn exported(bin: &Path) -> BTreeSet<String> {
    tool("nm", &["-D", "--defined-only"], bin)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The text without `/* */` and `//` comments (headers hold no string literals with slashes).
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
            out.push(' ');
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The identifier just before the first `(` of a declaration (`void *f(...)` gives `f`).
fn declared_name(decl: &str) -> Option<String> {
    let head = decl[..decl.find('(')?].trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &head[start..];
    is_ident(name).then(|| name.to_string())
}

/// What one header declares.
#[derive(Default)]
struct Header {
    /// Names of the functions it declares (prototypes, not `static inline` definitions).
    functions: Vec<String>,
    /// `#define a b` where `b` is an identifier: `skynet_malloc` -> `malloc`.
    aliases: BTreeMap<String, String>,
}

fn parse_header(src: &str) -> Header {
    let mut h = Header::default();
    let mut code = String::new();
    for line in strip_comments(src).lines() {
        let t = line.trim_start();
        if let Some(directive) = t.strip_prefix('#') {
            let mut words = directive.split_whitespace();
            if let (Some("define"), Some(a), Some(b), None) =
                (words.next(), words.next(), words.next(), words.next())
            {
                if is_ident(a) && is_ident(b) {
                    h.aliases.insert(a.to_string(), b.to_string());
                }
            }
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }
    // Split the code into top-level declarations at `;`, skipping brace bodies: a body that
    // follows `)` is a function definition (header-only, nothing to export) and ends the item.
    let mut current = String::new();
    let mut depth = 0usize;
    for c in code.chars() {
        match c {
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                current.push(c);
                if depth == 0 {
                    let head = current[..current.find('{').unwrap_or(0)].trim_end();
                    if head.ends_with(')') {
                        current.clear();
                    }
                }
            }
            ';' if depth == 0 => {
                let decl = current.split_whitespace().collect::<Vec<_>>().join(" ");
                current.clear();
                let first = decl.split_whitespace().next().unwrap_or("");
                if decl.contains('{') || matches!(first, "typedef" | "static") {
                    continue;
                }
                if let Some(name) = declared_name(&decl) {
                    h.functions.push(name);
                }
            }
            _ => current.push(c),
        }
    }
    h
}

#[test]
fn parser_reads_prototypes() {
    let h = parse_header(
        "#define A_H\n#define skynet_f f\n/* c */ struct s { int (*cb)(int); };\n\
         typedef int (*cb_t)(int);\nvoid *skynet_f(size_t n); // c\n\
         static inline int g(void) { return 0; }\nconst char * h (int a,\n int b);\n\
         void e(struct s *, const char *, ...);\nstruct s;\n",
    );
    assert_eq!(h.functions, ["skynet_f", "h", "e"]);
    assert_eq!(h.aliases.get("skynet_f").map(String::as_str), Some("f"));
    assert!(!h.aliases.contains_key("A_H"));
}

#[test]
fn headers_functions_are_exported() {
    let Some(bin) = binary() else {
        eprintln!(
            "SKIPPED abi_symbols: no skynet binary (set SKYNET_BIN, or run `make` / \
             `cargo build --release -p skynet-ffi` first; `make test` does)"
        );
        return;
    };
    eprintln!("checking {}", bin.display());
    let exported = exported(&bin);

    let mut headers: Vec<PathBuf> = std::fs::read_dir(repo().join("include"))
        .expect("include/")
        .map(|e| e.expect("include/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    headers.sort();
    assert!(!headers.is_empty(), "no headers in include/");

    let parsed: Vec<(String, Header)> = headers
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let src = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, parse_header(&src))
        })
        .collect();
    // Macros of any header apply to all (skynet.h includes skynet_malloc.h).
    let aliases: BTreeMap<&str, &str> = parsed
        .iter()
        .flat_map(|(_, h)| h.aliases.iter())
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();

    let mut required = BTreeSet::from(["skynet_error".to_string()]);
    let mut missing = Vec::new();
    for (name, h) in &parsed {
        for f in &h.functions {
            // `skynet_malloc` & co. are macros for the libc functions: modules import those
            // from libc, the executable need not define them.
            if let Some(target) = aliases.get(f.as_str()) {
                eprintln!("{name}: {f} is a macro for {target} (libc), not an export");
                continue;
            }
            required.insert(f.clone());
        }
        let own = h
            .functions
            .iter()
            .filter(|f| !aliases.contains_key(f.as_str()));
        assert!(
            own.count() > 0,
            "{name}: no exported function found; is the prototype parser broken?"
        );
    }
    for f in &required {
        if exported.contains(f) {
            continue;
        }
        let from = parsed
            .iter()
            .find(|(_, h)| h.functions.contains(f))
            .map_or("(required)", |(n, _)| n.as_str());
        missing.push(format!("{f} (declared in {from})"));
    }
    assert!(
        missing.is_empty(),
        "{} does not export:\n  {}\n(see ffi/build.rs: -Wl,--export-dynamic)",
        bin.display(),
        missing.join("\n  ")
    );
    eprintln!("{} header functions exported", required.len());
}

/// The executable defines the whole malloc family (per-service accounting): libc, the Rust
/// runtime and every module must bind to it, never to libc's own allocator.
#[test]
fn defines_the_malloc_family() {
    let Some(bin) = binary() else {
        eprintln!("SKIPPED defines_the_malloc_family: no skynet binary");
        return;
    };
    let exported = exported(&bin);
    let family = [
        "malloc",
        "calloc",
        "realloc",
        "free",
        "memalign",
        "aligned_alloc",
        "posix_memalign",
        "valloc",
        "pvalloc",
        "reallocarray",
        "malloc_usable_size",
    ];
    let missing: Vec<&str> = family
        .into_iter()
        .filter(|f| !exported.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "{} does not define {missing:?}",
        bin.display()
    );
}

#[test]
fn links_libm() {
    let Some(bin) = binary() else {
        eprintln!("SKIPPED abi_symbols: no skynet binary (see headers_functions_are_exported)");
        return;
    };
    let dynamic = tool("readelf", &["-d", "-W"], &bin);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']')))
        .collect();
    assert!(
        needed.iter().any(|n| n.starts_with("libm.so")),
        "{} is not linked to libm (NEEDED: {needed:?}); modules importing `round` would not \
         load (see ffi/build.rs: -lm)",
        bin.display()
    );
}

/// The whole Lua C API of the embedded Lua is exported, so a user's Lua C module loaded
/// through `package.cpath` resolves against the executable. The list is the one
/// ffi/csrc/lua_exports.c keeps linked (the entries shared by Lua 5.4 and 5.5, plus the
/// version-specific block of the binary under test), and `luaL_initcodecache`.
#[test]
fn lua_c_api_is_exported() {
    let Some(bin) = binary() else {
        eprintln!("SKIP: no skynet binary built");
        return;
    };
    let src =
        std::fs::read_to_string(repo().join("ffi/csrc/lua_exports.c")).expect("lua_exports.c");
    let table = &src[src.find("skynet_lua_api[]").expect("the API table")..];
    let lua55 = std::env::var("SKYNET_LUA").as_deref() == Ok("5.5");
    let mut wanted = Vec::new();
    let mut section = "common";
    for line in table.lines() {
        match line.trim() {
            "#ifdef SKYNET_LUA55" => section = "55",
            "#else" => section = "54",
            "#endif" => section = "common",
            l => {
                let applies = section == "common" || (section == "55") == lua55;
                if applies {
                    wanted.extend(
                        l.split("(void *)&")
                            .skip(1)
                            .map(|s| s.trim_end_matches([',', ' ']).to_owned()),
                    );
                }
            }
        }
    }
    assert!(
        wanted.len() > 140,
        "parsed only {} Lua API names",
        wanted.len()
    );
    let have = exported(&bin);
    let missing: Vec<&String> = wanted.iter().filter(|n| !have.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "Lua API not exported by {}: {missing:?}",
        bin.display()
    );
    // Not in the table (it is ours, not Lua's), but a main written for skynet's patched Lua
    // calls it, so the executable exports it like libskynet does.
    assert!(
        have.contains("luaL_initcodecache"),
        "{} does not export luaL_initcodecache",
        bin.display()
    );
}
