//! skynet.cluster.core between two of our nodes on 127.0.0.1: each runs
//! `compat-tests/lua/t_cluster.lua` (cluster packets over skynet.socketdriver + netpack, no
//! upstream Lua), calls the other by handle and by name, with 40 KiB and 1 MiB payloads both
//! ways (multipart requests and responses), trace tags, pushes (small and multipart), a session
//! wrap, a large request whose parts do not add up, and garbage packets. Every wait is bounded.

use compat_tests::{listen_port, spawn_lua, Output};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

const CHECKS: &[&str] = &[
    "call_handle",
    "call_name",
    "call_40k",
    "call_1m",
    "call_traced",
    "stats",
    "call_unknown",
    "session_top",
    "session_wrapped_1m",
    "bad_large_req",
    "after_garbage",
];

fn check(out: &Output) {
    out.assert_clean_exit();
    out.assert_checks(CHECKS);
    out.assert_no_line_containing("UNEXPECTED");
    out.assert_no_line_containing("SEND FAILED");
    out.assert_no_line_containing("BAD RESPONSE");
    // The three garbage packets the peer sent, each a Lua error for that packet only.
    out.assert_line_containing("BAD PACKET Invalid req package type -1");
    out.assert_line_containing("BAD PACKET Invalid cluster message (size=2)");
    out.assert_line_containing("BAD PACKET Invalid cluster message size 3 (multi req must be 13)");
    out.assert_line_containing("STATS pushes=2 bad=3");
}

#[test]
fn two_nodes_call_push_and_multipart_both_ways() {
    let first = spawn_lua("t_cluster");
    let port = listen_port(&first, TIMEOUT);
    let second = spawn_lua(&format!("t_cluster {port}"));
    let out2 = second.finish(TIMEOUT);
    let out1 = first.finish(TIMEOUT);
    check(&out1);
    check(&out2);
}
