//! The executable's C memory accounting (its malloc family, `skynet_debug_memory`) and the
//! config's `memory_limit` for snlua services.

use compat_tests::{line, repo_root, require_modules, skynet_bin, Node, Output};
use std::time::Duration;

const BOOT: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(20);

/// `snlua <service>` with our Lua test services and `extra` config lines.
fn run_lua_with(service: &str, extra: &str) -> Output {
    let dir = repo_root().join("compat-tests").join("lua");
    let config = format!(
        "lualoader = {:?}\nluaservice = {:?}\n{extra}",
        dir.join("loader.lua").display().to_string(),
        format!("{}/?.lua", dir.display())
    );
    let out = Node::run(&config, &format!("snlua {service}"), TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out
}

#[test]
fn a_service_allocating_without_end_under_memory_limit_fails_alone() {
    let out = run_lua_with("t_memhog", "memory_limit = 8388608");
    out.assert_checks(&[
        "default_limit_applies",
        "handles",
        "echo_answers_1",
        "echo_answers_2",
        "echo_answers_3",
        "hog_failed_alone",
        "hog_heap_within_limit",
        "hog_fails_again",
        "echo_still_answers",
        "own_memlimit_wins",
    ]);
    // the hog's two failures are its own, logged as memory errors of :3 only
    let errors: Vec<&str> = out
        .texts_from(3)
        .into_iter()
        .filter(|t| t.starts_with("lua memory error"))
        .collect();
    assert_eq!(errors.len(), 2, "memory errors of the hog\n{out}");
    out.assert_count("lua memory error", 2);
    out.assert_line(&line(5, "Set memory limit to 64.00 M"));
}

#[test]
fn memory_limit_must_be_a_count_of_bytes() {
    let out = Node::run("memory_limit = \"lots\"", "snlua nothing", TIMEOUT);
    assert_ne!(
        out.status,
        Some(0),
        "started with a bad memory_limit\n{out}"
    );
    assert!(
        out.stderr.contains("memory_limit"),
        "no word on memory_limit\n{out}"
    );
}

/// `[:%08x] <what> <bytes as %p>` lines of `skynet_debug_memory`, bytes 0 for `(nil)`.
fn debug_memory(out: &Output, handle: u32, what: &str) -> usize {
    let prefix = format!("[:{handle:08x}] {what} ");
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no skynet_debug_memory line {prefix:?}\n{out}"));
    match line {
        "(nil)" => 0,
        hex => usize::from_str_radix(hex.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("bad figure {hex:?}\n{out}")),
    }
}

#[test]
fn malloc_family_charges_the_allocating_service() {
    if !require_modules(&["t_malloc"]) {
        return;
    }
    let out = Node::run("", "t_malloc", TIMEOUT);
    out.assert_clean_exit();
    out.assert_checks(&[
        "malloc_zero",
        "malloc_aligned16",
        "usable_size",
        "realloc_keeps",
        "realloc_shrinks",
        "realloc_zero_frees",
        "calloc_zeroed",
        "calloc_overflow",
        "malloc_huge",
        "posix_memalign_ok",
        "posix_memalign_aligned",
        "realloc_keeps_alignment",
        "aligned_usable",
        "posix_memalign_einval",
        "posix_memalign_untouched",
        "aligned_alloc",
        "memalign",
        "memalign_small",
        "valloc",
        "pvalloc",
        "skynet_malloc",
        "strdup",
        "skynet_strdup",
        "lalloc",
        "lalloc_free",
        "peer_launched",
        "malloc_after_double_free",
    ]);
    const BLOCK: usize = 1024 * 1024;
    let before = debug_memory(&out, BOOT, "before");
    let held = debug_memory(&out, BOOT, "held");
    let after = debug_memory(&out, BOOT, "after_peer_free");
    assert!(held >= before + BLOCK, "held {held} before {before}\n{out}");
    // freed by the peer on its own thread, charged back to the bootstrap
    assert!(after + BLOCK <= held, "after {after} held {held}\n{out}");
    // the second free of one block was refused, once, on stderr
    assert_eq!(
        out.stderr.matches("did not hand out").count(),
        1,
        "double free report\n{out}"
    );
}

#[test]
fn malloc_stats_can_be_turned_off() {
    // SKYNET_MALLOC_STATS=0: no per-service figures (the allocator itself is the same)
    if !require_modules(&["t_malloc"]) {
        return;
    }
    let out = Node::spawn_bin_env(
        &skynet_bin(),
        "",
        "t_malloc",
        &[("SKYNET_MALLOC_STATS", "0")],
    )
    .finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_line(&line(BOOT, "CHECK realloc_keeps_alignment ok"));
    out.assert_line(&line(BOOT, "DONE"));
    assert_eq!(debug_memory(&out, BOOT, "held"), 0, "{out}");
}

#[test]
fn killed_services_give_their_lua_heaps_back() {
    // jemalloc's allocated bytes rise by the children's Lua heaps and fall back when they are
    // killed (the VM frees each object with its size)
    let out = run_lua_with("t_heapback", "");
    out.assert_checks(&["heaps_allocated", "heaps_given_back"]);
}
