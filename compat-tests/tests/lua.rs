//! Lua service tests: each test boots a node whose bootstrap is `snlua <service>`, with our own
//! loader (`compat-tests/lua/loader.lua`) and services (`compat-tests/lua/*.lua`, helper
//! `t.lua`), and asserts on the CHECK lines the services log and on the core's own lines.
//! The services use `skynet.core` directly (there is no skynet.lua here). Handles are
//! deterministic: logger :1, bootstrap :2, then launch order.

use compat_tests::{line, Output};
use std::time::Duration;

const BOOT: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(20);

/// Boots `snlua <service>` with our loader and service path.
fn run_lua(service: &str) -> Output {
    let out = compat_tests::run_lua(service, TIMEOUT);
    out.assert_line(&line(BOOT, &format!("LAUNCH snlua {service}")));
    out
}

/// As [`run_lua`] for scenarios that need two workers at once (see `TWO_WORKERS`).
fn run_lua_two_workers(service: &str) -> Output {
    let out = compat_tests::run_lua_with(service, compat_tests::TWO_WORKERS, TIMEOUT);
    out.assert_line(&line(BOOT, &format!("LAUNCH snlua {service}")));
    out
}

/// Lines logged by `handle` whose text starts with `prefix` (texts without the log prefix).
fn texts_starting<'a>(out: &'a Output, handle: u32, prefix: &str) -> Vec<&'a str> {
    out.texts_from(handle)
        .into_iter()
        .filter(|t| t.starts_with(prefix))
        .collect()
}

/// Index of the first log line that starts with `start` and contains `needle`.
fn find_line(out: &Output, start: &str, needle: &str) -> usize {
    out.stdout_lines
        .iter()
        .position(|l| l.starts_with(start) && l.contains(needle))
        .unwrap_or_else(|| {
            panic!("no log line starts with {start:?} and contains {needle:?}\n{out}")
        })
}

/// Index of the log line `want`.
fn index_of(out: &Output, want: &str) -> usize {
    out.stdout_lines
        .iter()
        .position(|l| l == want)
        .unwrap_or_else(|| panic!("missing log line {want:?}\n{out}"))
}

#[test]
fn lua_send_sessions_redirect_errors() {
    let out = run_lua("t_send");
    let mut checks = vec![
        "echo_handle",
        "sink_handle",
        "alloc_session_1",
        "alloc_session_2",
        "alloc_session_3",
        "genid",
        "explicit_session",
        "no_session",
        "empty_string",
        "embedded_nul",
        "type_low_bits",
        "dest_float_integral",
        "dest_numeric_string",
        "forged_socket_refused",
        "forged_system_refused",
        "forged_socket_redirect_refused",
        "forged_socket_by_name_refused",
        "response_1",
        "response_2",
        "response_3",
        "response_42",
        "redirect_session",
        "redirect_alloc",
        "redirect_by_name",
        "send_unknown_handle",
        "unknown_handle_consumed_session",
        "send_unknown_name",
        "unknown_name_kept_session",
        "send_unknown_hex",
        "redirect_unknown",
        "null_payload_size",
        "too_large",
        "too_large_alloc",
        "too_large_kept_session",
        "name_echo",
        "too_large_by_name",
        "too_large_unknown_name",
        "null_payload_send",
        "msg_table",
        "msg_number",
        "msg_boolean",
        "msg_nil",
        "msg_none",
        "dest_zero",
        "dest_fraction",
        "dest_table",
        "dest_boolean",
        "redirect_dest_zero",
        "session_after_errors",
        "echo_end",
        "sink_end",
    ];
    checks.sort_unstable();
    out.assert_checks(&checks);
    let refused = texts_starting(&out, BOOT, "error: refused a message of type ");
    assert_eq!(refused.len(), 4, "one line per refused forged send\n{out}");

    // What echo (:3) received, in send order: sessions, sources (redirect: the sink), sizes,
    // bytes (NUL shown as \0), the type's low 8 bits only.
    let echo = |session: i32, src: u32, text: &str| {
        format!(
            "ECHO type=0 session={session} src=:{src:08x} sz={} text=[{text}]",
            text.replace("\\0", "\0").len()
        )
    };
    let want = vec![
        echo(1, 2, "one"),
        echo(2, 2, "two"),
        echo(3, 2, "three"),
        echo(42, 2, "explicit"),
        echo(0, 2, "nosession"),
        echo(0, 2, ""),
        echo(0, 2, "a\\0b\\0"),
        "ECHO type=254 session=0 src=:00000002 sz=7 text=[lowbits]".to_owned(),
        echo(0, 2, "float3"),
        echo(0, 2, "string3"),
        echo(77, 4, "redirected"),
        echo(5, 4, "redir2"),
        echo(78, 4, "redir3"),
        echo(0, 2, ""), // the NULL light userdata with size 0
        echo(12, 2, "end"),
    ];
    assert_eq!(
        texts_starting(&out, 3, "ECHO "),
        want,
        "messages seen by echo\n{out}"
    );
    // The sink (:4) got echo's replies to the redirected requests, then our "end".
    let want_sink = vec![
        "ECHO type=1 session=77 src=:00000003 sz=15 text=[echo:redirected]".to_owned(),
        "ECHO type=1 session=5 src=:00000003 sz=11 text=[echo:redir2]".to_owned(),
        "ECHO type=1 session=78 src=:00000003 sz=11 text=[echo:redir3]".to_owned(),
        echo(13, 2, "end"),
    ];
    assert_eq!(
        texts_starting(&out, 4, "ECHO "),
        want_sink,
        "messages seen by the sink\n{out}"
    );
    // The size check is the core's (skynet_send): logged with the destination; an unknown
    // .name fails before it (nothing logged, nothing returned).
    out.assert_count(&line(BOOT, "error: The message to 3 is too large"), 3);
    out.assert_count("too large", 3);
    out.assert_count("error:", 3 + refused.len());
    out.assert_no_line_containing("lua call");
}

#[test]
fn lua_timeout_sessions_and_order() {
    let out = run_lua("t_timer");
    out.assert_checks(&[
        "mqlen_before",
        "timeout0_session",
        "timeout0_queued_at_once",
        "timeout0_response",
        "timeout_sessions",
        "timeout_string_param",
        "timeout_command_text",
        "genid_after_timeouts",
        "responses_shape_and_not_early",
        "all_fired_once",
        "elapsed_at_least_30cs",
    ]);
    // sessions 2..10 had delays 30, 10, 0, 20, -5, 10, 1, 15, 25 cs: the immediate ones in
    // order first, then by delay, equal delays in order.
    let fired = texts_starting(&out, BOOT, "FIRE ");
    let want: Vec<String> = [4, 6, 8, 3, 7, 9, 5, 10, 2]
        .iter()
        .map(|s| format!("FIRE session={s}"))
        .collect();
    assert_eq!(fired, want, "timer expiry order\n{out}");
}

#[test]
fn lua_names_and_commands() {
    let out = run_lua_two_workers("t_names");
    out.assert_checks(&[
        "reg_self_addr",
        "reg_self_text",
        "reg_empty",
        "reg_name",
        "reg_dup",
        "reg_second_name",
        "reg_global",
        "query_name",
        "query_name_addr",
        "query_missing",
        "query_missing_addr",
        "query_global",
        "addresscommand_not_address",
        "intcommand_not_number",
        "echo_handle",
        "name_set",
        "name_dup",
        "name_lowercase_addr",
        "name_query",
        "name_query_text",
        "name_global",
        "send_by_name_session",
        "send_by_name_reply",
        "send_to_own_name",
        "own_name_received",
        "kill_by_name",
        "killed_name_gone",
        "killed_second_name_gone",
        "send_to_killed_name",
        "send_to_killed_handle",
        "name_reusable",
        "name_reused_query",
        "getenv",
        "getenv_luaservice_set",
        "getenv_missing",
        "starttime",
        "stat_unknown_is_zero",
        "stat_mqlen",
        "stat_message",
        "stat_cpu_float",
        "unknown_command",
        "intcommand_fraction",
    ]);
    out.assert_lines(&[
        line(BOOT, "error: Can't register global name glob in C"),
        line(BOOT, "error: Can't set global name gname in C"),
        line(BOOT, "KILL :3"),
        line(3, "LAUNCH snlua t_echo"),
        line(3, "ECHO type=0 session=1 src=:00000002 sz=6 text=[byname]"),
    ]);
    // nothing reached the killed service
    assert_eq!(out.texts_from(3).len(), 2, "lines of :3\n{out}");
    out.assert_count("error:", 2);
}

#[test]
fn lua_launch_exit_kill_and_failed_starts() {
    let out = run_lua("t_launch");
    out.assert_checks(&[
        "reg_launcher",
        "monitor_set",
        "monitor_query",
        "launch_text",
        "launch_addr",
        "launch_noargs",
        "launch_missing_module",
        "launch_missing_file",
        "launch_bad_main",
        "missing_file_error_text",
        "bad_main_error_text",
        "send_to_failed",
        "child3_answers",
        "child4_alive",
        "launch_more_8",
        "launch_uppercase",
        "launch_more_f",
        "kill_result",
        "send_to_killed",
        "kill_bad_syntax",
        "exit_request",
        "send_to_exited",
        "all_exits_seen",
    ]);
    // the children got their arguments (split on blanks by the loader) through `...`
    let child = |h: u32, n: usize, args: &str| {
        line(
            h,
            &format!("CHILD name=t_child n={n} args=[{args}] self=:{h:08x}"),
        )
    };
    out.assert_lines(&[
        line(3, "LAUNCH snlua t_child a b c"),
        child(3, 3, "a,b,c"),
        line(4, "LAUNCH snlua t_child  x   y"),
        child(4, 2, "x,y"),
        line(5, "LAUNCH snlua t_child"),
        child(5, 0, ""),
        line(8, "LAUNCH snlua t_child more"),
        child(8, 1, "more"),
        line(0xe, "LAUNCH snlua t_child more"),
        child(0xe, 1, "more"),
        line(0xf, "LAUNCH snlua t_child more"),
        child(0xf, 1, "more"),
    ]);
    out.assert_no_line_containing("LAUNCH nosuchmodule");
    // failed Lua starts: LAUNCH logged, the loader error (with traceback), "ERROR" to
    // .launcher, then EXIT
    for (h, name, what) in [
        (6, "t_nosuch", "t_nosuch.lua"),
        (7, "t_bad", "boom in main chunk"),
    ] {
        // (the LAUNCH line races with the child's own lines, as upstream: the queue is
        // scheduled before LAUNCH is logged)
        out.assert_line(&line(h, &format!("LAUNCH snlua {name}")));
        let err = find_line(&out, &line(h, "lua loader error : "), what);
        let kill = index_of(&out, &line(h, "KILL self"));
        assert!(err < kill, "order of the failed start of :{h:x}\n{out}");
        out.assert_line(&line(
            BOOT,
            &format!("LAUNCHER got [ERROR] session=0 from :{h:08x}"),
        ));
        assert!(
            !out.has_line(&child(h, 0, "")),
            "a failed start ran no main chunk\n{out}"
        );
    }
    out.assert_line_containing("stack traceback:");
    out.assert_count("lua loader error", 2);
    out.assert_count("LAUNCHER got", 2);
    // KILL by handle logs the unpadded hex; EXIT logs "KILL self"; the monitor (us) hears of
    // every exit, from the exiting handle.
    out.assert_lines(&[
        line(BOOT, "KILL :4"),
        line(3, "KILL self"),
        line(BOOT, "error: Can't convert bogus to handle"),
        line(BOOT, "KILL :5"),
        line(BOOT, "KILL :8"),
        line(BOOT, "KILL :e"),
        line(BOOT, "KILL :f"),
    ]);
    out.assert_count("] KILL ", 8);
    for h in [6, 7, 4, 3, 5, 8, 0xe, 0xf] {
        out.assert_line(&line(BOOT, &format!("EXITED :{h:08x} session=0 sz=0")));
    }
    out.assert_count("EXITED", 8);
    out.assert_no_line_containing("lua call");
}

#[test]
fn lua_error_replies_for_queued_messages() {
    let out = run_lua("t_exitq");
    out.assert_checks(&[
        "handles",
        "queued_session",
        "queued_session0",
        "queued_explicit",
        "exit_error_reply",
        "exit_error_reply_explicit",
        "exit_error_reply_session0",
        "send_after_exit",
        "kill_error_reply",
        "bad_handle",
        "failed_start_error_reply",
        "other_errors",
    ]);
    out.assert_in_order(&[
        line(
            3,
            "ECHO type=0 session=0 src=:00000002 sz=8 text=[busy 100]",
        ),
        line(3, "ECHO type=0 session=0 src=:00000002 sz=4 text=[exit]"),
        line(3, "KILL self"),
    ]);
    out.assert_line(&line(BOOT, "KILL :4"));
    out.assert_line(&line(BOOT, "GOT ERROR session=0 from=:00000003 sz=0"));
    // the queued requests were never dispatched
    out.assert_no_line_containing("text=[queued");
    out.assert_no_line_containing("text=[late]");
    find_line(&out, &line(7, "lua loader error : "), "boom in main chunk");
    out.assert_line(&line(7, "KILL self"));
}

#[test]
fn lua_pack_unpack() {
    let out = run_lua("t_seri");
    let mut checks = vec![
        "int_zero",
        "int_byte",
        "int_word",
        "int_dword",
        "int_qword",
        "bytes_zero",
        "bytes_byte",
        "bytes_word",
        "bytes_dword",
        "bytes_dword_min",
        "bytes_qword",
        "bytes_maxinteger",
        "float_values",
        "float_inf",
        "float_nan",
        "float_negative_zero",
        "bytes_real",
        "bytes_real_integral",
        "string_short",
        "string_long16",
        "string_long32",
        "string_binary",
        "bytes_short_string",
        "bytes_empty_string",
        "bytes_string31",
        "bytes_string32",
        "bytes_string65535",
        "bytes_string65536",
        "booleans",
        "nil_holes",
        "nil_only",
        "nil_trailing",
        "nil_leading",
        "bytes_bool_nil",
        "unpack_pack_nil_hole_count",
        "pack_nothing_size",
        "unpack_nothing",
        "packstring_nothing",
        "unpack_empty_string",
        "unpack_nil",
        "unpack_none",
        "many_values",
        "table_empty",
        "table_array",
        "table_mixed",
        "table_keys",
        "table_float_values",
        "table_nested",
        "table_holes",
        "table_array30",
        "table_array31",
        "table_array1000",
        "table_big_hash",
        "bytes_table_empty",
        "bytes_table_array30",
        "bytes_table_array31",
        "bytes_table_hash",
        "bytes_surface_example",
        "table_meta_index_ignored",
        "table_pairs_metamethod",
        "bytes_table_pairs",
        "table_pairs_error",
        "lightuserdata_roundtrip",
        "bytes_lightuserdata",
        "pack_buffer_is_packstring",
        "depth_33_tables",
        "depth_value_at_33",
        "depth_34_tables",
        "depth_packstring",
        "depth_cycle",
        "depth_in_key",
        "unsupported_function",
        "unsupported_thread",
        "unsupported_userdata",
        "unsupported_nested",
        "unpack_null_pointer",
        "unpack_null_zero_size",
        "unpack_truncated_buffer",
        "unpack_boolean_cookie",
        "message_unpacked",
    ];
    let garbage = [
        "bad_type",
        "bad_number_cookie",
        "short_byte",
        "short_dword",
        "short_real",
        "short_string",
        "short_long_len",
        "bad_long_cookie",
        "short_long_body",
        "short_pointer",
        "table_unterminated",
        "table_missing_value",
        "table_size_real",
        "table_size_not_number",
        "valid_then_garbage",
    ];
    let garbage: Vec<String> = garbage.iter().map(|g| format!("unpack_{g}")).collect();
    checks.extend(garbage.iter().map(String::as_str));
    out.assert_checks(&checks);
    out.assert_no_line_containing("lua call");
}

#[test]
fn lua_bson_and_mongo_driver() {
    let out = run_lua("t_bson");
    out.assert_checks(&[
        "bytes_int32",
        "bytes_int64",
        "bytes_double",
        "bytes_array",
        "bytes_nested",
        "bytes_tagged",
        "bytes_date",
        "bytes_objectid",
        "bytes_metaarray",
        "encode_order_decode",
        "document_roundtrip",
        "len_tostring",
        "type_objectid",
        "type_timestamp",
        "type_regex",
        "type_binary",
        "type_null",
        "type_number",
        "replace_in_place",
        "replace_wrong_type",
        "replace_unknown_key",
        "error_hole",
        "error_utf8",
        "error_function",
        "error_numkey",
        "error_depth",
        "error_odd",
        "op_msg_length",
        "op_msg_body",
        "reply_decode",
        "reply_bad_opcode",
        "reply_short",
        "lightuserdata_embed",
        "message_document",
    ]);
}

#[test]
fn lua_memory_limit_and_warning() {
    let out = run_lua("t_memlimit");
    out.assert_checks(&[
        "memlimit_in_registry",
        "memlimit_cleared",
        "alloc_beyond_limit",
        "table_growth_beyond_limit",
        "alloc_below_limit",
        "current_below_limit",
        "oom_handler_stopped",
        "memwarn_handle",
        "memwarn_allocated",
        "memwarn_freed",
    ]);
    // the limit is applied (and logged) when the loader returns
    out.assert_in_order(&[
        line(BOOT, "CHECK memlimit_in_registry ok"),
        line(BOOT, "Set memory limit to 16.00 M"),
        line(BOOT, "CHECK memlimit_cleared ok"),
    ]);
    // an out-of-memory error escaping the dispatcher (a message from ourselves, session 0)
    out.assert_line(&line(BOOT, "lua memory error : [2 to :2 : 0]"));
    out.assert_count("lua memory error", 1);
    out.assert_no_line_containing("lua call");
    // :3 (no limit) crossed 32 MiB: "Memory warning %.2f M", then the threshold doubles
    let warnings = texts_starting(&out, 3, "Memory warning ");
    assert!(!warnings.is_empty(), "no memory warning from :3\n{out}");
    let mut last = 0.0;
    for (i, w) in warnings.iter().enumerate() {
        let m = w
            .strip_prefix("Memory warning ")
            .and_then(|s| s.strip_suffix(" M"))
            .filter(|s| s.split_once('.').is_some_and(|(_, d)| d.len() == 2))
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("bad warning line {w:?}\n{out}"));
        let threshold = 32.0 * f64::from(1u32 << i);
        // printed with two decimals: just past the threshold shows as the threshold
        assert!(
            m >= threshold && m > last && m < 200.0,
            "warning {i}: {m} M (threshold {threshold} M)\n{out}"
        );
        last = m;
    }
    assert!(
        texts_starting(&out, BOOT, "Memory warning").is_empty(),
        "the limited service warned\n{out}"
    );
}

#[test]
fn lua_signal_breaks_endless_loops() {
    let out = run_lua_two_workers("t_endless");
    out.assert_checks(&[
        "loop_handle",
        "loop_ready",
        "signal_result",
        "alive_after_loop",
        "pcallloop_interrupted",
        "alive_after_pcallloop",
        "coloop_interrupted",
        "alive_after_coloop",
        "wraploop_interrupted",
        "alive_after_wraploop",
        "alive_after_loop2",
        "alive_after_signal1",
    ]);
    out.assert_count(&line(3, "recv a signal 0"), 5);
    out.assert_count("recv a signal", 6);
    out.assert_line(&line(3, "recv a signal 1"));
    let mem = texts_starting(&out, 3, "Current Memory ");
    assert!(
        mem.len() == 1
            && mem[0]
                .strip_prefix("Current Memory ")
                .and_then(|s| s.strip_suffix('K'))
                .and_then(|s| s.parse::<f64>().ok())
                .is_some_and(|k| k > 0.0),
        "SIGNAL 1 memory line {mem:?}\n{out}"
    );
    // the loops right in the dispatcher: the error escapes to it and is logged
    let errors: Vec<&String> = out
        .stdout_lines
        .iter()
        .filter(|l| l.contains("lua call"))
        .collect();
    assert_eq!(errors.len(), 2, "dispatcher errors\n{out}");
    for e in errors {
        assert!(
            e.starts_with(&line(
                3,
                "lua call [2 to :3 : 0 msgsz = 4] error : \x1b[31m"
            )) && e.ends_with("signal 0"),
            "dispatcher error line {e:?}\n{out}"
        );
    }
}

#[test]
fn lua_misc_error_trace_clock_profile_coroutine_memory_codecache() {
    let out = run_lua("t_misc");
    out.assert_checks(&[
        "profile_preinstalled",
        "codecache_preinstalled",
        "registry_noenv",
        "registry_context",
        "service_name",
        "service_path",
        "lua_path_cleared",
        "lua_service_global",
        "error_bad_tostring",
        "trace_needs_strings",
        "now_integer",
        "hpc_integer",
        "hpc_increases",
        "now_advances",
        "hpc_advances",
        "now_tracks_wall",
        "harbor_self",
        "harbor_remote",
        "harbor_local_id",
        "profile_same_module",
        "profile_elapsed",
        "profile_start_twice",
        "profile_stop_without_start",
        "profile_coroutine",
        "profile_stop_twice",
        "resume_replaced",
        "wrap_replaced",
        "resume_first",
        "status_suspended",
        "resume_second",
        "status_dead",
        "resume_dead",
        "resume_error",
        "resume_error_object",
        "resume_running",
        "resume_not_thread",
        "resume_many_results",
        "yield_across_pcall_1",
        "yield_across_pcall_2",
        "nested_1",
        "nested_2",
        "running_in_coroutine",
        "isyieldable",
        "wrap_first",
        "wrap_second",
        "wrap_dead",
        "wrap_error",
        "wrap_error_object",
        "wrap_not_function",
        "wrap_generator",
        "close_suspended",
        "status_closed",
        "memory_current",
        "memory_total",
        "memory_block",
        "memory_current_grows",
        "memory_info_self",
        "memory_current_freed",
        "memory_block_counts",
        "memory_lua_heap_apart",
        "memory_jestat",
        "memory_mallctl_page",
        "memory_mallctl_unknown",
        "memory_profactive",
        "codecache_same_module",
        "codecache_default",
        "codecache_set_returns_nothing",
        "codecache_off",
        "codecache_exist",
        "codecache_bad_mode",
        "codecache_clear",
        "codecache_loadfile",
    ]);
    // skynet.error: every argument through tostring, joined by single spaces
    let long = format!("MISC long {}", "0123456789".repeat(100));
    out.assert_in_order(&[
        line(BOOT, "MISC 1 2.5 nil true 2.0 0"),
        line(BOOT, "nil"),
        line(BOOT, "MISC single"),
        line(BOOT, "42"),
        line(BOOT, "MISC tostring x"),
        line(BOOT, "MISC two"),
        "lines".to_owned(),
        line(BOOT, &long),
        line(BOOT, "MISC "),
        line(BOOT, "1 MISC number tostring"),
    ]);
    // trace: "<TRACE tag> <ns> user" [" : " source:line ...]
    let trace = |tag: &str, user: &str, levels: usize| {
        let head = format!("<TRACE {tag}> ");
        let texts = texts_starting(&out, BOOT, &head);
        assert_eq!(texts.len(), 1, "trace {tag}\n{out}");
        let rest = &texts[0][head.len()..];
        let (ns, rest) = rest.split_once(' ').expect("trace time");
        assert!(
            ns.parse::<i64>().is_ok_and(|n| n > 0),
            "trace {tag} time {ns:?}\n{out}"
        );
        let (u, locations) = match rest.split_once(" : ") {
            Some((u, l)) => (u, l.split(' ').collect::<Vec<_>>()),
            None => (rest, vec![]),
        };
        assert_eq!(u, user, "trace {tag} user text\n{out}");
        assert_eq!(
            locations.len(),
            levels,
            "trace {tag} levels {locations:?}\n{out}"
        );
        for l in locations {
            let (src, n) = l.rsplit_once(':').expect("source:line");
            assert!(
                src.starts_with('@') && src.ends_with("/compat-tests/lua/t_misc.lua"),
                "trace {tag} source {src:?}\n{out}"
            );
            assert!(n.parse::<u32>().is_ok(), "trace {tag} line {n:?}\n{out}");
        }
    };
    trace("plain", "MISC trace", 0);
    trace("lvl", "MISC trace level", 2);
    trace("co", "MISC trace co", 1);
    out.assert_no_line_containing("lua call");
}

#[test]
fn lua_sproto_shared_between_services() {
    let out = run_lua("t_sproto");
    out.assert_checks(&[
        "newproto",
        "encode_item",
        "pack_item",
        "loadproto_same",
        "child_protocol",
        "child_encode",
        "child_decode",
        "child_answer",
        "loadproto_empty_slot",
    ]);
}

#[test]
fn lua_crypt_login_handshake() {
    let out = run_lua("t_crypt");
    out.assert_checks(&[
        "server_handle",
        "client_crypt_padding",
        "skynet_crypt_padding",
        "md5_sum",
        "md5_decrypt",
        "challenge_size",
        "secret_size",
        "auth_ok_and_secrets_agree",
        "token_accepted",
        "second_token_accepted",
        "wrong_secret_refused",
        "token_refused_without_auth",
        "reauth_ok",
        "new_secret",
        "old_token_rejected",
        "short_token_rejected",
    ]);
    // The server's verdicts, in order.
    let verdicts = texts_starting(&out, 3, "SERVER ");
    let want = [
        "SERVER 200 for challenge",
        "SERVER 200 for key",
        "SERVER 200 for auth",
        "SERVER 200 for token",
        "SERVER 200 for token",
        "SERVER 200 for challenge",
        "SERVER 200 for key",
        "SERVER 401 for auth",
        "SERVER 401 for token",
        "SERVER 200 for challenge",
        "SERVER 200 for key",
        "SERVER 200 for auth",
        "SERVER ? for token", // the old token under the new secret: garbage, almost always 403
        "SERVER 403 for token",
    ];
    assert_eq!(verdicts.len(), want.len(), "server verdicts\n{out}");
    for (got, want) in verdicts.iter().zip(want) {
        if want.contains('?') {
            assert!(got.ends_with(" for token"), "{got}\n{out}");
        } else {
            assert_eq!(*got, want, "server verdicts\n{out}");
        }
    }
}

#[test]
fn lua_lpeg() {
    let out = run_lua("t_lpeg");
    out.assert_checks(&[
        "require",
        "schema",
        "schema_syntax_error",
        "calc",
        "cmt_error",
        "after_error",
        "backtrack_limit",
    ]);
    out.assert_line(&line(BOOT, "DONE"));
}

#[test]
fn lua_launch_refuses_names_leaving_the_search_paths() {
    let out = run_lua("t_confine");
    out.assert_checks(&[
        "snlua_dotdot",
        "snlua_dotdot_real",
        "snlua_absolute",
        "snlua_long",
        "snlua_nul",
        "snlua_dotdot_addr",
        "cmod_dotdot",
        "cmod_absolute",
        "cmod_long",
        "cmod_nul",
        "plain_launched",
        "slash_launched",
        "plain_answers",
        "slash_answers",
    ]);
    let refused = |name: &str, why: &str| format!("LAUNCH refused: service name {name} {why}");
    let dotdot = r#"has a ".." segment"#;
    let long = format!("\"{}...\"", "a".repeat(64));
    for (name, why, n) in [
        (r#""../x""#, dotdot, 1),
        (r#""../lua/t_child""#, dotdot, 1),
        (r#""a/../../x""#, dotdot, 1),
        (r#""/tmp/x""#, "is an absolute path", 2),
        (&long, "is longer than 255 bytes", 2),
        (r#""t_child\0x""#, "has a NUL byte", 2),
        (r#""../build/t_child""#, dotdot, 1),
    ] {
        out.assert_count(&refused(name, why), n);
    }
    // nothing was loaded from outside the templates' directories: the only children are the two
    // ordinary ones
    out.assert_count("CHILD name=", 2);
    out.assert_line_containing("CHILD name=t_child n=1 args=[plain]");
    out.assert_line_containing("CHILD name=./t_child n=1 args=[slash]");
    out.assert_count("error: launch snlua FAILED", 6);
}

/// Queue limits from Lua: the config keys set every queue's limits, `QUEUELIMIT` through
/// `skynet.core.command` lowers one service's; a request to its full queue is answered at once
/// with PTYPE_ERROR, a one-way message is dropped; the crossing is logged once each way.
#[test]
fn lua_queue_limit_refuses_calls() {
    let run = compat_tests::spawn_lua_with(
        "t_qlimit",
        "queue_limit = 77\nqueue_bytes_limit = 12345\nthread = 2",
    );
    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
    out.assert_no_line_containing("UNEXPECTED");
    out.assert_checks(&[
        "config_limits",
        "busy_handle",
        "busy_queuelimit",
        "busy_spinning",
        "call_to_full_queue_gets_error",
        "busy_saw_three",
    ]);
    out.assert_count("error: queue of :00000003 is full (3 messages, ", 1);
    out.assert_count("queue of :00000003 is under its limits again (", 1);
}

/// ABORT ends the process even while a service is stuck in a handler: a Lua loop is
/// interrupted after a second and the node ends normally; a handler blocked in C code is
/// abandoned after three seconds.
#[test]
fn abort_ends_the_node_while_a_handler_is_stuck() {
    for (request, stderr_says) in [
        ("loop", "is still in a handler, interrupting it"),
        ("block", "still in a handler; exiting without them"),
    ] {
        let out = run_lua_two_workers(&format!("t_abort {request}"));
        out.assert_checks(&["loop_ready"]);
        out.assert_line(&line(BOOT, "ABORTING"));
        assert!(
            out.stderr.contains(stderr_says),
            "{request}: stderr lacks {stderr_says:?}\n{out}"
        );
    }
}

/// Code-cache prototypes shared by every VM (our extension of the embedded Lua):
/// shared constants, field and metamethod names against each VM's own strings under collector
/// stress, in five VMs running at once on the node's threads; the heap cost of a cached load;
/// codecache.clear, modes and compile errors with files edited on disk.
#[test]
fn lua_codecache_shared_prototypes() {
    let out = run_lua("t_shproto");
    let checks = [
        "local_exercise",
        "worker_1",
        "worker_2",
        "worker_3",
        "worker_4",
        "exercise_after_workers",
        "cached_load_is_cheap",
        "cached_chunk_is_a_new_instance",
        "cached_chunk_runs",
        "error_position",
        "getinfo_source",
        "dump_of_shared_function",
        "cached_before_clear",
        "reloaded_after_clear",
        "old_version_alive",
        "exist_uses_cache",
        "exist_reads_disk",
        "exist_does_not_fill",
        "on_fills",
        "on_uses_cache",
        "env_of_clone",
        "other_clone_keeps_globals",
        "env_of_second_clone",
        "syntax_error",
        "syntax_error_not_cached",
        "worker_after_clear",
        "exercise_after_clear",
    ];
    out.assert_checks(&checks);
}
