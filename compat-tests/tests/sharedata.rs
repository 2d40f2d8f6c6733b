//! skynet.sharedata.core and skynet.sharetable.core inside a running node: data published by
//! one service and read by others (our own services, compat-tests/lua/t_sharedata.lua and
//! t_sharetable.lua with their helpers), including both exit orders.

use compat_tests::{line, Output};
use std::time::Duration;

const BOOT: u32 = 2;

fn run_lua(service: &str) -> Output {
    compat_tests::run_lua(service, Duration::from_secs(20))
}

#[test]
fn sharedata_publish_update_and_exit_orders() {
    let out = run_lua("t_sharedata");
    let mut checks = vec![];
    for i in 1..=3 {
        checks.push(format!("attach_{i}"));
    }
    checks.push("refs_v1".into());
    for i in 1..=3 {
        checks.push(format!("read_v1_{i}"));
    }
    for i in 1..=3 {
        checks.push(format!("update_{i}"));
    }
    checks.push("refs_v2".into());
    for i in 1..=3 {
        checks.push(format!("read_v2_{i}"));
    }
    for c in [
        "refs_v1_released",
        "deleted_is_gone",
        "refs_after_exits",
        "read_after_delete",
        "host_refs_after_attach",
        "read_after_host_exit",
        "read_again",
    ] {
        checks.push(c.into());
    }
    let checks: Vec<&str> = checks.iter().map(String::as_str).collect();
    out.assert_checks(&checks);
    out.assert_line(&line(BOOT, "DONE"));
}

#[test]
fn sharetable_loadfile_loadstring_loadtable_query_update() {
    let out = run_lua("t_sharetable");
    out.assert_checks(&[
        "size",
        "query_file",
        "query_string",
        "loadtable",
        "query_table",
        "query_new_version",
        "query_closed_version",
        "bad_source",
    ]);
    out.assert_line(&line(BOOT, "DONE"));
}
