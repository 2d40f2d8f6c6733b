//! C-module compatibility tests: each test boots a node whose bootstrap is one of the
//! scenario modules in `compat-tests/cmod/` and asserts on the lines the modules and the core
//! log. Handles are deterministic: logger :1, bootstrap :2, then launch order.

use compat_tests::{cpath, line, require_modules, Node, Output};
use std::time::Duration;

const LOGGER: u32 = 1;
const BOOT: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(10);

fn run(extra: &str, bootstrap: &str) -> Output {
    Node::run(extra, bootstrap, TIMEOUT)
}

/// The bootstrap's own LAUNCH line (empty parameter => trailing space) and no logger LAUNCH.
fn assert_boot(out: &Output, handle: u32, module: &str) {
    out.assert_line(&line(handle, &format!("LAUNCH {module} ")));
    out.assert_no_line_containing("LAUNCH logger");
    assert!(out.texts_from(LOGGER).is_empty(), "logger logged\n{out}");
}

#[test]
fn launch_exit_kill() {
    if !require_modules(&["t_launch", "t_child", "t_badinit", "t_nocreate", "t_noinit"]) {
        return;
    }
    let out = run("", "t_launch");
    out.assert_clean_exit();
    assert_boot(&out, BOOT, "t_launch");
    out.assert_checks(&[
        "launch_args",
        "launch_result_format",
        "launch_noarg",
        "launch_two_spaces",
        "launch_newline",
        "launch_tab",
        "launch_init_fail",
        "launch_missing",
        "launch_null_create",
        "launch_no_init",
        "launch_more",
        "launch_uppercase",
        "child_default_instance",
        "current_handle_in_callback",
        "kill_result",
        "send_to_killed",
        "name_kid",
        "killed_name_gone",
        "send_to_killed_by_name",
        "ping_sent",
        "ping_reply",
        "exit_request",
        "send_to_exited",
        "badinit_error_reply",
    ]);
    // LAUNCH "<mod> <args>": args after the single delimiter, cut at CR/LF; none => NULL.
    out.assert_in_order(&[line(3, "CHILD parm=[a b]"), line(3, "LAUNCH t_child a b")]);
    out.assert_lines(&[
        line(3, "CHILD reg=[:3]"),
        line(4, "CHILD parm=NULL"),
        line(4, "LAUNCH t_child "),
        line(5, "CHILD parm=[ two]"),
        line(5, "LAUNCH t_child  two"),
        line(6, "CHILD parm=[x]"),
        line(6, "LAUNCH t_child x"),
        line(7, "CHILD parm=[z]"),
        line(7, "LAUNCH t_child z"),
    ]);
    // init failure: logged by the failed handle (:8, consumed), release called, queued
    // message answered with PTYPE_ERROR from the dead handle.
    out.assert_in_order(&[
        line(8, "BADINIT init send=77"),
        line(8, "error: launch t_badinit FAILED"),
    ]);
    out.assert_line(&line(0, "BADINIT release"));
    out.assert_count("BADINIT release", 1);
    out.assert_line(&line(
        BOOT,
        "GOT error session=77 from=:00000008 sz=0 null=1",
    ));
    out.assert_no_line_containing("LAUNCH t_badinit");
    // missing module / NULL create / no _init: no handle consumed, no LAUNCH line, init
    // (resp. create) never called; the missing module is reported in the log with the path
    // tried and the loader's reason (upstream prints a shorter line to stderr).
    out.assert_no_line_containing("LAUNCH t_nonexistent");
    out.assert_no_line_containing("LAUNCH t_nocreate");
    out.assert_no_line_containing("NOCREATE");
    out.assert_no_line_containing("LAUNCH t_noinit");
    out.assert_no_line_containing("NOINIT");
    out.assert_line_containing("error: try open t_nonexistent failed : ");
    out.assert_line_containing("t_nonexistent.so: cannot open shared object file");
    out.assert_line_containing("error: C service");
    out.assert_line_containing("has no t_noinit_init function");
    // Handles keep increasing; the slot hash of the handle table makes them skip after the
    // failed :8 (table of 8 slots: :10 lands in slot 0; then the table grows to 16: :18...).
    // The first handle with a hex letter is printed uppercase by LAUNCH (checked in C).
    let more = [0x10, 0x18, 0x19, 0x1a];
    for h in more {
        out.assert_line(&line(h, "LAUNCH t_child more"));
    }
    out.assert_line(&line(0x1a, "CHILD reg=[:1a]"));
    out.assert_count("LAUNCH t_child more", more.len());
    // KILL by handle / by name log the unpadded hex; EXIT logs "KILL self".
    out.assert_lines(&[
        line(BOOT, "KILL :3"),
        line(BOOT, "KILL :4"),
        line(5, "KILL self"),
        line(BOOT, "error: Can't convert bogus to handle"),
        line(BOOT, "KILL :6"),
        line(BOOT, "KILL :7"),
        line(BOOT, "KILL :10"),
        line(BOOT, "KILL :18"),
        line(BOOT, "KILL :19"),
        line(BOOT, "KILL :1a"),
    ]);
    out.assert_count("KILL", 9);
}

#[test]
fn send_sessions_and_ownership() {
    if !require_modules(&["t_send", "t_peer"]) {
        return;
    }
    let out = run("", "t_send");
    out.assert_clean_exit();
    assert_boot(&out, BOOT, "t_send");
    out.assert_checks(&[
        "peer_reg",
        "alloc_session_1",
        "alloc_session_2",
        "alloc_session_3",
        "genid",
        "explicit_session",
        "no_session",
        "type_low_bits",
        "copy_send",
        "copy_source_untouched",
        "dontcopy_send",
        "dontcopy_alloc_session",
        "null_payload",
        "keep_send",
        "checkkept_send",
        "keep_buffer",
        "too_large_copy",
        "too_large_dontcopy",
        "too_large_alloc",
        "too_large_sendname",
        "too_large_unknown_name",
        "session_after_too_large",
        "dest0_copy",
        "dest0_dontcopy",
        "sendname_unknown",
        "sendname_unknown_dontcopy",
        "send_unknown_handle",
        "send_unknown_handle_dontcopy",
        "sendname_hex_session",
        "end_session",
        "peer_current_handle_mismatches",
        "end_reply",
        "no_error_replies",
    ]);
    // What the receiver saw, in send order. nul: msg[sz] == 0; same: the receiver got the
    // sender's own buffer (DONTCOPY) rather than a copy.
    let recv = |session: i32, sz: usize, rest: &str| {
        format!("RECV type=0 session={session} src=:00000002 sz={sz} {rest}")
    };
    let want = vec![
        recv(1, 2, "nul=1 same=-1 text=[s1]"),
        recv(2, 2, "nul=1 same=-1 text=[s2]"),
        recv(3, 2, "nul=1 same=-1 text=[s3]"),
        recv(42, 8, "nul=1 same=-1 text=[explicit]"),
        recv(0, 9, "nul=1 same=-1 text=[nosession]"),
        "RECV type=254 session=0 src=:00000002 sz=7 nul=1 same=-1 text=[lowbits]".to_string(),
        recv(0, 24, "nul=1 same=0 text=[copymod]"),
        recv(0, 24, "nul=0 same=1 text=[dontcpy]"),
        recv(5, 24, "nul=0 same=1 text=[dontcp2]"),
        recv(0, 5, "nul=-1 same=-1 text=NULL"),
        recv(0, 20, "nul=1 same=-1 text=[KEEP-buffer-contents]"),
        recv(0, 9, "nul=1 same=-1 text=[CHECKKEPT]"),
        recv(43, 5, "nul=1 same=-1 text=[byhex]"),
        recv(7, 3, "nul=1 same=-1 text=[END]"),
    ];
    let seen: Vec<&str> = out
        .texts_from(3)
        .into_iter()
        .filter(|t| t.starts_with("RECV "))
        .collect();
    assert_eq!(seen, want, "messages seen by the receiver\n{out}");
    // size limit and dest 0 are logged by the core; unknown names/handles are not.
    out.assert_count("error: The message to 3 is too large", 4);
    out.assert_count(&line(BOOT, "error: The message to 3 is too large"), 4);
    out.assert_count(&line(BOOT, "error: Destination address can't be 0"), 2);
    out.assert_count("error:", 6);
    out.assert_no_line_containing("UNEXPECTED");
}

const NAMES_CHECKS: &[&str] = &[
    "reg_format",
    "reg_empty",
    "reg_name",
    "reg_dup",
    "reg_global",
    "query_name",
    "query_missing",
    "query_nodot",
    "name_set",
    "name_dup",
    "name_query",
    "name_dup_of_reg",
    "name_padded_upper",
    "name_padded_query",
    "name_zero",
    "name_zero_query",
    "name_badaddr",
    "name_badaddr_query",
    "name_global",
    "many_names",
    "queryname_local",
    "queryname_missing",
    "queryname_hex",
    "queryname_hex_padded",
    "queryname_hex_mixed",
    "queryname_global",
    "name_kid",
    "name_kid2",
    "queryname_kid",
    "kid_gone",
    "kid2_gone",
    "queryname_kid_gone",
    "kid_reusable",
    "kid_reused_query",
    "self_harbor_bits",
    "isremote_self",
    "isremote_self_harbor",
    "isremote_local_id",
    "isremote_local_id_harbor",
    "isremote_other",
    "isremote_other_harbor",
    "isremote_null_harbor",
    "isremote_ff",
    "isremote_ff_harbor",
];

fn names_log_lines(boot: u32) -> Vec<String> {
    vec![
        line(boot, &format!("REG=[:{boot:x}]")),
        line(boot, "error: Can't register global name glob in C"),
        line(boot, "error: Can't set global name gname in C"),
        line(boot, "error: Don't support query global name glob"),
        line(boot, &format!("KILL :{:x}", boot + 1)),
        line(boot + 1, "LAUNCH t_child "),
    ]
}

#[test]
fn names_reg_query_isremote() {
    if !require_modules(&["t_names", "t_child"]) {
        return;
    }
    let out = run("", "t_names");
    out.assert_clean_exit();
    assert_boot(&out, BOOT, "t_names");
    out.assert_checks(NAMES_CHECKS);
    out.assert_lines(&names_log_lines(BOOT));
    out.assert_line(&line(BOOT, "REG=[:2]"));
}

#[test]
fn names_with_harbor_id() {
    if !require_modules(&["t_names", "t_child"]) {
        return;
    }
    let out = run("harbor = 3", "t_names");
    out.assert_clean_exit();
    let boot = 0x0300_0002;
    assert_boot(&out, boot, "t_names");
    out.assert_checks(NAMES_CHECKS);
    out.assert_lines(&names_log_lines(boot));
    out.assert_line("[:03000002] REG=[:3000002]");
}

#[test]
fn timeout_sessions_and_order() {
    if !require_modules(&["t_timer"]) {
        return;
    }
    let out = run("", "t_timer");
    out.assert_clean_exit();
    out.assert_checks(&[
        "starttime",
        "now_tracks_wall",
        "timeout_sessions",
        "genid_after_timeouts",
        "timeout_20cs_elapsed",
        "response_shape",
        "not_early",
        "now_monotonic",
    ]);
    // sessions 1..9 had delays 0, -5, 20, 5, 1, 10, 3, 3, 260 cs
    let fired: Vec<&str> = out
        .texts_from(BOOT)
        .into_iter()
        .filter(|t| t.starts_with("FIRE "))
        .collect();
    let want: Vec<String> = [1, 2, 5, 7, 8, 4, 6, 3, 9]
        .iter()
        .map(|s| format!("FIRE session={s}"))
        .collect();
    assert_eq!(fired, want, "timer expiry order\n{out}");
}

#[test]
fn env_getenv_setenv() {
    if !require_modules(&["t_env"]) {
        return;
    }
    let out = run(
        "thread = 2\nmystr = \"hello\"\nmynum = 2.0\nmyint = 7\nmybool = true",
        "t_env",
    );
    out.assert_clean_exit();
    out.assert_checks(&[
        "getenv_c_api",
        "getenv_c_api_missing",
        "setenv_result",
        "setenv_c_api",
        "getenv_c_api_cmd_key",
        "getenv_pointer_stable",
        "getenv_filler",
    ]);
    let env: Vec<&str> = out
        .texts_from(BOOT)
        .into_iter()
        .filter(|t| t.starts_with("ENV "))
        .collect();
    let cpath_line = format!("ENV cpath=[{}]", cpath());
    let want = vec![
        "ENV thread=[2]",
        "ENV harbor=[0]",
        "ENV profile=[true]",
        "ENV logservice=[logger]",
        "ENV bootstrap=[t_env]",
        cpath_line.as_str(),
        "ENV logger=NULL",
        "ENV daemon=NULL",
        "ENV logpath=NULL",
        "ENV mystr=[hello]",
        "ENV mynum=[2.0]",
        "ENV myint=[7]",
        "ENV mybool=[true]",
        "ENV nokey=NULL",
        "ENV newkey=[some value]",
        "ENV nospace=NULL",
        "ENV ckey=[cval]",
    ];
    assert_eq!(env, want, "environment as seen by the module\n{out}");
}

const STAT_CHECKS: &[&str] = &[
    "stat_mqlen_init",
    "stat_message_init",
    "stat_endless_init",
    "stat_cpu_init",
    "stat_unknown",
    "stat_message_1",
    "stat_message_2",
    "stat_message_3",
    "stat_mqlen_1",
    "stat_mqlen_2",
    "stat_mqlen_3",
    "stat_time",
    "stat_cpu",
    "stat_endless",
];

#[test]
fn stat_profile_on() {
    if !require_modules(&["t_stat"]) {
        return;
    }
    let out = run("", "t_stat");
    out.assert_clean_exit();
    out.assert_line(&line(BOOT, "PROFILE 1"));
    out.assert_checks(STAT_CHECKS);
}

#[test]
fn stat_profile_off() {
    if !require_modules(&["t_stat"]) {
        return;
    }
    let out = run("profile = false", "t_stat");
    out.assert_clean_exit();
    out.assert_line(&line(BOOT, "PROFILE 0"));
    out.assert_checks(STAT_CHECKS);
}

#[test]
fn queued_messages_get_error_replies() {
    if !require_modules(&["t_exitq", "t_sink"]) {
        return;
    }
    let out = run(compat_tests::TWO_WORKERS, "t_exitq");
    out.assert_clean_exit();
    out.assert_checks(&[
        "launch_sink",
        "queue_11",
        "queue_12",
        "queue_0",
        "queue_14",
        "queue_13",
        "send_after_kill",
        "sink_saw_queue",
        "sink_saw_kill",
        "error_reply_count",
        "no_unexpected",
    ]);
    out.assert_line(&line(BOOT, "KILL :3"));
    // one PTYPE_ERROR per dropped message, in queue order, from the dead handle, no payload
    let errs: Vec<&str> = out
        .texts_from(BOOT)
        .into_iter()
        .filter(|t| t.starts_with("ERR "))
        .collect();
    let want: Vec<String> = [11, 12, 0, 14, 13]
        .iter()
        .map(|s| format!("ERR session={s} from=:00000003 sz=0 null=1"))
        .collect();
    assert_eq!(errs, want, "error replies for dropped messages\n{out}");
    out.assert_no_line_containing("SINK dispatched");
    out.assert_no_line_containing("UNEXPECTED");
}

#[test]
fn monitor_exit_notifications() {
    if !require_modules(&["t_monitor", "t_child"]) {
        return;
    }
    let out = run("", "t_monitor");
    out.assert_clean_exit();
    out.assert_checks(&[
        "monitor_unset",
        "monitor_unset_null",
        "monitor_set_result",
        "monitor_query",
        "monitor_query_null",
        "monitor_by_name",
        "monitor_cleared",
        "exit_notes",
    ]);
    // the monitor's own view, in order (the child's "KILL self" may interleave anywhere)
    out.assert_in_order(&[
        line(BOOT, "KILL :3"),
        line(BOOT, "EXITNOTE session=0 from=:00000003 sz=0 null=1"),
        line(BOOT, "EXITNOTE session=0 from=:00000004 sz=0 null=1"),
        line(BOOT, "KILL :5"),
    ]);
    out.assert_line(&line(4, "KILL self"));
    out.assert_count("EXITNOTE", 2);
    out.assert_no_line_containing("unexpected_message");
}

#[test]
fn signal_calls_module() {
    if !require_modules(&["t_signal", "t_child"]) {
        return;
    }
    let out = run("", "t_signal");
    out.assert_clean_exit();
    out.assert_checks(&[
        "signal_number",
        "signal_default_zero",
        "signal_base0",
        "signal_negative",
        "signal_by_name",
        "signal_unknown_name",
        "signal_module_without_handler",
        "signal_in_callback",
    ]);
    let sigs: Vec<&str> = out
        .texts_from(0)
        .into_iter()
        .filter(|t| t.starts_with("SIGNAL "))
        .collect();
    assert_eq!(
        sigs,
        [
            "SIGNAL 7",
            "SIGNAL 0",
            "SIGNAL 16",
            "SIGNAL -3",
            "SIGNAL 0",
            "SIGNAL 5"
        ],
        "signals delivered to t_signal_signal\n{out}"
    );
}

/// Slow (5-10 s): the monitor thread flags a callback that does not return.
#[test]
fn endless_loop_flag() {
    if !require_modules(&["t_endless"]) {
        return;
    }
    let out = Node::run("", "t_endless", Duration::from_secs(30));
    out.assert_clean_exit();
    out.assert_checks(&[
        "endless_initially_clear",
        "endless_flagged",
        "endless_read_clears",
    ]);
    let want = "error: A message from [ :00000000 ] to [ :00000002 ] maybe in an endless loop";
    assert!(
        out.texts_from(0).iter().any(|t| t.starts_with(want)),
        "missing endless-loop report from the core\n{out}"
    );
}

#[test]
fn node_exits_when_last_service_exits() {
    if !require_modules(&["t_exit"]) {
        return;
    }
    let out = run("", "t_exit");
    out.assert_clean_exit();
    out.assert_checks(&["logger_named"]);
}

#[test]
fn error_log_and_missing_callback() {
    if !require_modules(&["t_log", "t_nocb"]) {
        return;
    }
    let out = run("", "t_log");
    out.assert_clean_exit();
    out.assert_checks(&[
        "launch_nocb",
        "send_nocb_1",
        "send_nocb_2",
        "nocb_no_replies",
    ]);
    // skynet_error: any length, printf semantics, NULL context => source 0
    out.assert_line(&line(BOOT, &format!("LONG {} END", "x".repeat(1000))));
    out.assert_line(&line(BOOT, "PCT 100% 42!"));
    out.assert_line(&line(0, "NULLCTX"));
    out.assert_in_order(&[line(3, "NOCB init"), line(3, "LAUNCH t_nocb ")]);
    out.assert_line(&line(BOOT, "KILL :3"));
    out.assert_no_line_containing("UNEXPECTED");
}

/// Regression: a worker must hand a service's callback back before the queue leaves
/// scheduling, or a second worker dispatching the queue at once finds no callback and the
/// message is lost (seen as a stalled 8-pair ping-pong). Eight pairs on eight workers, a few
/// runs: every run must finish.
#[test]
fn eight_pairs_on_eight_workers_lose_nothing() {
    let module = compat_tests::repo_root().join("compat-tests/build/bench/bench_pingpong.so");
    if !module.exists() {
        compat_tests::skip_missing(format_args!(
            "{} not built (`make` builds it)",
            module.display()
        ));
        return;
    }
    let cpath = format!("{}/?.so", module.parent().unwrap().display());
    for _ in 0..10 {
        let extra = format!("thread = 8\nprofile = false\ncpath = {cpath:?}");
        let out = Node::run(&extra, "bench_pingpong 8 400000", TIMEOUT);
        out.assert_clean_exit();
        out.assert_line_containing("BENCH c_pingpong_8pairs ");
    }
}

/// The overload warning: a queue growing past 1024, 2048, 4096... pending
/// messages is reported once per threshold, with the pending length, from the service.
#[test]
fn overload_warning_at_doubling_thresholds() {
    let module = compat_tests::repo_root().join("compat-tests/build/bench/bench_flood.so");
    if !module.exists() {
        compat_tests::skip_missing(format_args!(
            "{} not built (`make` builds it)",
            module.display()
        ));
        return;
    }
    let cpath = format!("{}/?.so", module.parent().unwrap().display());
    // One callback floods 10000 messages into the sink before the sink can drain them.
    let extra = format!("thread = 1\ncpath = {cpath:?}");
    let out = Node::run(&extra, "bench_flood 10000 10000", TIMEOUT);
    out.assert_clean_exit();
    let marker = "error: May overload, message queue length = ";
    let lengths: Vec<usize> = out
        .stdout_lines
        .iter()
        .filter_map(|l| l.split_once(marker).map(|(_, n)| n.parse().unwrap()))
        .collect();
    assert!(!lengths.is_empty(), "no overload warning\n{out}");
    let mut threshold = 1024;
    for n in &lengths {
        assert!(
            *n > threshold,
            "warning at {n} <= threshold {threshold}\n{out}"
        );
        while threshold < *n {
            threshold *= 2;
        }
    }
    // With one worker the sink starts with all 10000 queued: warnings for 1024..8192 fold
    // into one (the threshold doubles past the length at once).
    assert_eq!(lengths, vec![9999], "{out}");
}

/// A bootstrap whose name leaves the search paths is refused like any LAUNCH: the node logs
/// why and stops with a bootstrap error, whether the name is a C module's or snlua's.
#[test]
fn bootstrap_name_leaving_the_search_paths_is_refused() {
    if !require_modules(&["t_child"]) {
        return;
    }
    for (bootstrap, name) in [
        ("../build/t_child", "../build/t_child"),
        ("snlua ../lua/t_child", "../lua/t_child"),
    ] {
        let out = run("", bootstrap);
        assert_ne!(out.status, Some(0), "{out}");
        out.assert_line_containing(&format!(
            r#"LAUNCH refused: service name "{name}" has a ".." segment"#
        ));
        out.assert_line_containing("Bootstrap error");
        out.assert_no_line_containing("CHILD");
    }
}
