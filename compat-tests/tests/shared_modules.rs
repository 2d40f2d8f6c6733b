//! Node tests of the modules that share data between services: `skynet.multicast.core`,
//! `skynet.debugchannel`, `skynet.datasheet.core`, driven by our own Lua services
//! (`compat-tests/lua/t_multicast.lua`, `t_debugchannel.lua`, `t_datasheet.lua`).

use compat_tests::Output;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

fn run_lua(service: &str) -> Output {
    let out = compat_tests::run_lua(service, TIMEOUT);
    out.assert_no_line_containing("lua call [");
    out
}

#[test]
fn multicast_packages_shared_by_subscribers() {
    let out = run_lua("t_multicast");
    out.assert_checks(&[
        "handles",
        "ready",
        "alive_after_bind",
        "received",
        "alive_before_last_close",
        "last_closed",
        "gone_after_last_close",
        "close_junk",
        "auto",
        "stress_counts",
        "stress_all_freed",
        "dead_channel_freed",
        "dead_close_again",
        "unrelated_alive",
        "remote_message",
        "remote_gone",
        "remote_twice",
        "bind_after_remote",
        "nextid",
    ]);
    out.assert_line("[:00000003] KILL self");
}

#[test]
fn debugchannel_between_services() {
    let out = compat_tests::run_lua_with("t_debugchannel", compat_tests::TWO_WORKERS, TIMEOUT);
    out.assert_checks(&[
        "handle_type",
        "connected",
        "second_reader",
        "write_needs_string",
        "drained",
        "write_after_release",
        "reader_released",
        "handle_refused_after_release",
    ]);
}

#[test]
fn datasheet_shared_and_updated() {
    let out = run_lua("t_datasheet");
    out.assert_checks(&["v1", "v2", "after_gc", "corrupt", "bad_handle"]);
}
