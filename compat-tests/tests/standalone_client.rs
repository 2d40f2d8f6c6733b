//! The client modules built by `make luaclib` (luaclib/client.so, sproto.so, ...) in a stock
//! Lua 5.4 interpreter (Debian's `lua5.4`): a game-client-style script of ours
//! (compat-tests/client/login_client.lua) logs in to one of our services over TCP with a
//! Diffie-Hellman handshake (client.crypt against skynet.crypt), then exchanges a DES-encrypted,
//! 0-packed sproto message (sproto.core on both sides).

use compat_tests::{repo_root, spawn_lua};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `lua5.4 login_client.lua <repo> <port> [mode]` → (status, stdout, stderr), or None when the
/// interpreter or the modules are missing (the test then says so and passes as skipped).
fn client(port: u16, mode: Option<&str>) -> Option<(bool, String, String)> {
    let root = repo_root();
    if !root.join("luaclib/client.so").exists() {
        compat_tests::skip_missing(format_args!("luaclib/client.so not built (`make luaclib`)"));
        return None;
    }
    let script = root.join("compat-tests/client/login_client.lua");
    let mut cmd = Command::new("lua5.4");
    cmd.arg(&script).arg(&root).arg(port.to_string());
    if let Some(m) = mode {
        cmd.arg(m);
    }
    match cmd.output() {
        Ok(o) => Some((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
        Err(e) => {
            compat_tests::skip_missing(format_args!(
                "cannot run lua5.4 ({e}; Debian: apt install lua5.4)"
            ));
            None
        }
    }
}

fn login(mode: Option<&str>) {
    let run = spawn_lua("t_client_login");
    let port = compat_tests::listen_port(&run, TIMEOUT);
    let Some((ok, stdout, stderr)) = client(port, mode) else {
        drop(run);
        return;
    };
    let out = run.finish(TIMEOUT);
    assert!(ok, "client failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let secret = lines
        .iter()
        .find_map(|l| l.strip_prefix("LOCAL "))
        .expect("client printed its secret's hash");
    // Both sides derived the same secret: the server's hash of it is the one the client computed.
    assert!(
        lines.contains(&format!("AUTH 200 {secret}").as_str()),
        "{stdout}"
    );
    out.assert_line_containing(&format!("SECRET {secret}"));
    assert!(
        lines.contains(&"PLAYER HERO 42 items=3 hp=99.5 pos3=3000000000"),
        "{stdout}"
    );
    if mode == Some("badauth") {
        assert_eq!(lines[0], "AUTH 401 Unauthorized", "{stdout}");
        out.assert_line_containing("LOGIN ok=1 refused=1");
    } else {
        out.assert_line_containing("LOGIN ok=1 refused=0");
    }
    out.assert_clean_exit();
}

#[test]
fn stock_lua_client_logs_in_and_exchanges_sproto() {
    login(None);
}

#[test]
fn a_wrong_secret_is_refused_then_the_right_one_accepted() {
    login(Some("badauth"));
}
