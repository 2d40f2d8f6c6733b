//! Builds the embedded Lua (feature `embedded`): the sources of the `lua-src` crate pinned in
//! Cargo.lock, copied to OUT_DIR, extended by our patch (shared prototypes, see
//! `luapatch/lshare.c`, and the edits below), compiled into a static library that is linked whole (every API symbol stays in
//! the executable, which exports them to C modules). mlua links nothing itself (`external`).
//!
//! `SKYNET_LUA_SRC_DIR` may name a directory holding `lua-5.4.x/` and `lua-5.5.x/` (for
//! instance a vendored copy of the `lua-src` crate) when the crate is not in the cargo registry.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// One textual edit of a Lua source file: `find` must occur exactly once.
struct Edit {
    file: &'static str,
    find: &'static str,
    replace: &'static str,
}

/// Our changes to Lua's own files (both versions): shared prototypes (the new code lives in
/// `luapatch/lshare.c`) and a cheaper `lua_close` (a killed service frees its whole heap).
const EDITS: &[Edit] = &[
    Edit {
        file: "lgc.h",
        find: "#define isold(o)\t(getage(o) > G_SURVIVAL)\n",
        replace: "#define isold(o)\t(getage(o) > G_SURVIVAL)\n\
\n\
/* skynet: an object shared by all states of the process (a prototype of the code cache and\n\
** its strings) has this age and no color: no collector marks, barriers or frees it */\n\
#define G_SHARED\t7\n\
#define isshared(o)\t(getage(o) == G_SHARED)\n",
    },
    // lua_close (a killed service): every object is freed, so the string table is emptied at
    // once instead of unlinking each short string from its hash chain.
    Edit {
        file: "lgc.h",
        find: "#define GCSTPCLS\t4  /* bit true when closing Lua state */\n",
        replace: "#define GCSTPCLS\t4  /* bit true when closing Lua state */\n\
/* skynet: lua_close is freeing every object and has emptied the string table */\n\
#define GCSTPFREE\t8\n",
    },
    Edit {
        file: "lgc.c",
        find: "      luaS_remove(L, ts);  /* remove it from hash table */\n",
        replace: concat!(
            "      if (!(G(L)->gcstp & GCSTPFREE))  /* skynet: the table is already empty */\n",
            "        luaS_remove(L, ts);  /* remove it from hash table */\n",
        ),
    },
    // The list walk misses the cache at each object (a killed service's objects were last
    // touched long ago): fetch the next object while this one is freed.
    Edit {
        file: "lgc.c",
        find: "    GCObject *next = p->next;\n    freeobj(L, p);\n",
        replace: "    GCObject *next = p->next;\n    __builtin_prefetch(next);  /* skynet */\n    freeobj(L, p);\n",
    },
    Edit {
        file: "lgc.c",
        find: "  callallpendingfinalizers(L);\n  deletelist(L, g->allgc, ",
        replace: concat!(
            "  callallpendingfinalizers(L);\n",
            "  /* skynet: no code runs from here on; every string goes */\n",
            "  if (g->strt.hash != NULL)  /* NULL if lua_newstate failed half-way */\n",
            "    memset(g->strt.hash, 0, g->strt.size * sizeof(TString *));\n",
            "  g->strt.nuse = 0;\n",
            "  g->gcstp |= GCSTPFREE;\n",
            "  deletelist(L, g->allgc, ",
        ),
    },
    Edit {
        file: "lstring.h",
        find: "#define eqshrstr(a,b)\tcheck_exp((a)->tt == LUA_VSHRSTR, (a) == (b))\n",
        replace:
            "/* skynet: a shared string and a state's own string (or a string shared by another\n\
** state) with the same contents are distinct objects; they are equal (all states hash with\n\
** the process-wide seed). Two strings of one state are equal only if identical. */\n\
#define eqshrstr(a,b)\tcheck_exp((a)->tt == LUA_VSHRSTR, (a) == (b) || \\\n\
\t((isshared(a) || isshared(b)) && (a)->hash == (b)->hash && luaS_eqshrcontents(a, b)))\n\
static inline int luaS_eqshrcontents (TString *a, TString *b) {\n\
  const char *x = getshrstr(a), *y = getshrstr(b);\n\
  int n = a->shrlen;\n\
  if (n != b->shrlen) return 0;\n\
  while (n-- > 0) if (x[n] != y[n]) return 0;\n\
  return 1;\n\
}\n\
LUAI_FUNC unsigned int luaS_processseed (unsigned int candidate);\n",
    },
];

/// Lua 5.4 only.
const EDITS_54: &[Edit] = &[
    // lua_close of a state in generational mode (every snlua service): leave that mode as Lua
    // 5.5 does, by entering the sweep phase, not by whitening every object as enterinc does (a
    // walk over all of them right before deletelist walks them again to free them). Old
    // objects stay black and keep their ages: a barrier in the sweep phase whitens, and the one
    // collection that can still run (an emergency one, on an allocation failure in a
    // finalizer; finalizers cannot call `collectgarbage`) finishes the sweep, which whitens
    // them all, before it marks. Lua's internal assertions (LUAI_ASSERT, never defined here)
    // would object to old ages in incremental mode, as 5.4's barrier asserts; 5.5 dropped
    // that assertion for its own way out of generational mode.
    Edit {
        file: "lgc.c",
        find: "  luaC_changemode(L, KGC_INC);\n  separatetobefnz(g, 1);",
        replace: concat!(
            "  if (g->gckind == KGC_GEN) {  /* skynet: as Lua 5.5's minor2inc */\n",
            "    g->reallyold = g->old1 = g->survival = NULL;\n",
            "    g->finobjrold = g->finobjold1 = g->finobjsur = NULL;\n",
            "    g->gckind = KGC_INC;\n",
            "    g->lastatomic = 0;\n",
            "    entersweep(L);\n",
            "  }\n",
            "  separatetobefnz(g, 1);",
        ),
    },
    Edit {
        file: "ltable.c",
        find: "    case ctb(LUA_VLNGSTR):\n      return luaS_eqlngstr(tsvalue(k1), keystrval(n2));\n",
        replace: "    case ctb(LUA_VSHRSTR):  /* skynet: not only identity (shared strings) */\n      return eqshrstr(tsvalue(k1), keystrval(n2));\n    case ctb(LUA_VLNGSTR):\n      return luaS_eqlngstr(tsvalue(k1), keystrval(n2));\n",
    },
    Edit {
        file: "lstate.c",
        find: "  g->seed = luai_makeseed(L);\n",
        replace: "  g->seed = luaS_processseed(luai_makeseed(L));  /* skynet: one seed per process */\n",
    },
];

/// Lua 5.5 only.
const EDITS_55: &[Edit] = &[
    Edit {
        file: "ltable.c",
        find: "      case ctb(LUA_VLNGSTR):\n        return luaS_eqstr(tsvalue(k1), keystrval(n2));\n",
        replace: "      case ctb(LUA_VSHRSTR):  /* skynet: not only identity (shared strings) */\n        return eqshrstr(tsvalue(k1), keystrval(n2));\n      case ctb(LUA_VLNGSTR):\n        return luaS_eqstr(tsvalue(k1), keystrval(n2));\n",
    },
    Edit {
        file: "lstate.c",
        find: "  g->seed = seed;\n",
        replace: "  g->seed = luaS_processseed(seed);  /* skynet: one seed per process */\n",
    },
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=luapatch");
    println!("cargo:rerun-if-env-changed=SKYNET_LUA_SRC_DIR");
    if env::var_os("CARGO_FEATURE_EMBEDDED").is_none() {
        return; // a module for a host interpreter: Lua comes from the host
    }
    let lua55 = env::var_os("CARGO_FEATURE_LUA55").is_some();
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let crate_dir = lua_src_dir(&manifest);
    let prefix = if lua55 { "lua-5.5." } else { "lua-5.4." };
    let src = fs::read_dir(&crate_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", crate_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix}* directory in {}", crate_dir.display()));
    let dst = out.join("lua");
    let _ = fs::remove_dir_all(&dst);
    fs::create_dir_all(&dst).expect("create OUT_DIR/lua");
    let mut sources = Vec::new();
    for entry in fs::read_dir(&src).expect("read Lua sources") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".c") || name.ends_with(".h")) {
            continue;
        }
        fs::copy(&path, dst.join(&name)).expect("copy Lua source");
        if name.ends_with(".c") && name != "lua.c" && name != "luac.c" && name != "onelua.c" {
            sources.push(dst.join(&name));
        }
    }
    let own_edits = if lua55 { EDITS_55 } else { EDITS_54 };
    for edit in EDITS.iter().chain(own_edits) {
        apply(&dst, edit);
    }
    fs::copy(manifest.join("luapatch/lshare.c"), dst.join("lshare.c"))
        .expect("copy luapatch/lshare.c");
    sources.push(dst.join("lshare.c"));
    sources.sort();

    let mut build = cc::Build::new();
    build
        .files(&sources)
        .include(&dst)
        .warnings(false)
        .flag_if_supported("-fno-common")
        // No frame pointers: cc keeps them whenever the profile has debug info, which costs
        // every Lua API call a frame setup.
        .force_frame_pointer(false)
        .cargo_metadata(false);
    let target = env::var("TARGET").unwrap_or_default();
    if target.contains("linux") || target.ends_with("bsd") {
        build.define("LUA_USE_LINUX", None);
    } else if target.contains("apple") {
        build.define("LUA_USE_MACOSX", None);
    } else {
        build.define("LUA_USE_POSIX", None);
    }
    // No LUA_COMPAT_5_3 (the `lua-src` crate's own build defines it for 5.4): as upstream's
    // Lua, so the VMs have no `math.pow` & co. nor the `__le` emulation through `__lt`, and
    // every VM's math table has 27 fields instead of 35 (a hash part of 32 nodes, not 64).
    if env::var("PROFILE").as_deref() == Ok("debug") {
        build.define("LUA_USE_APICHECK", None);
    } else {
        // -O2, as Lua's own makefile: without frame pointers it runs as few instructions in
        // the VM as -O3 (callgrind on skynet.send/call) with smaller code.
        build.opt_level(2);
    }
    build.compile("skynet_lua");
    println!("cargo:rustc-link-search=native={}", out.display());
    // whole-archive: the executable exports the complete Lua C API to C modules, and mlua's
    // references (later on the link line) must resolve.
    println!("cargo:rustc-link-lib=static:+whole-archive=skynet_lua");
}

fn apply(dir: &Path, edit: &Edit) {
    let path = dir.join(edit.file);
    let text = fs::read_to_string(&path).expect("read Lua source to patch");
    let n = text.matches(edit.find).count();
    assert!(
        n == 1,
        "Lua patch: expected exactly one occurrence in {} of {:?}, found {n} \
         (the Lua sources changed; update lualib-src/build.rs)",
        edit.file,
        edit.find
    );
    fs::write(&path, text.replacen(edit.find, edit.replace, 1)).expect("write patched source");
}

/// The `lua-src` crate's directory: `SKYNET_LUA_SRC_DIR`, else the version in Cargo.lock
/// extracted in the cargo registry.
fn lua_src_dir(manifest: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("SKYNET_LUA_SRC_DIR") {
        return PathBuf::from(dir);
    }
    let version = manifest
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .filter_map(|lock| fs::read_to_string(lock).ok())
        .find_map(|text| locked_version(&text, "lua-src"))
        .unwrap_or_else(|| {
            panic!(
                "cannot find the `lua-src` crate in a Cargo.lock above {}; set SKYNET_LUA_SRC_DIR \
                 to a directory holding lua-5.4.x/ and lua-5.5.x/",
                manifest.display()
            )
        });
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let registry = cargo_home.join("registry/src");
    let name = format!("lua-src-{version}");
    fs::read_dir(&registry)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(&name))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "the sources of {name} are not in {} (run `cargo fetch`, or set \
                 SKYNET_LUA_SRC_DIR)",
                registry.display()
            )
        })
}

/// The version of package `name` in a Cargo.lock text.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim();
            return Some(
                v.strip_prefix("version = \"")?
                    .strip_suffix('"')?
                    .to_owned(),
            );
        }
    }
    None
}
