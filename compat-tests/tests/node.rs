//! Node-level behaviour: the config file's errors, per-service logs (LOGON/LOGOFF), the
//! logger writing to a file, daemon mode with its pid file, and SIGHUP reopening the log.

use compat_tests::{line, module_dir, require_modules, skynet_bin, Node};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skynet-node-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the binary on a config file; returns (exit code, stderr).
fn run_config(dir: &Path, config: &str) -> (Option<i32>, String) {
    let path = dir.join("config");
    fs::write(&path, config).expect("write config");
    let out = Command::new(skynet_bin())
        .arg(&path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run skynet");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn config_errors_name_the_file_and_key() {
    if !skynet_bin().exists() {
        compat_tests::skip_missing(format_args!("no skynet binary (`make` builds it)"));
        return;
    }
    let dir = temp_dir("config");
    let cases: &[(&str, &str)] = &[
        (
            "thread = 'many'",
            "config key 'thread' must be an integer, got 'many'",
        ),
        (
            "thread = 0",
            "config key 'thread' = 0 is out of range [1, 1024]",
        ),
        (
            "harbor = 300",
            "config key 'harbor' = 300 is out of range [0, 255]",
        ),
        (
            "profile = 1",
            "config key 'profile' must be a boolean, got '1'",
        ),
        ("cpath = './x.so'", "template './x.so' in cpath has no '?'"),
        ("bad = {}", "invalid config value for key 'bad'"),
        ("x = = 1", "unexpected symbol"),
        (
            "x = '$SKYNET_SURELY_UNSET_VAR'",
            "os.getenv() failed: SKYNET_SURELY_UNSET_VAR",
        ),
    ];
    for (config, want) in cases {
        let (code, err) = run_config(&dir, &format!("{config}\n"));
        assert_eq!(code, Some(1), "{config}: exit code (stderr: {err})");
        assert!(
            err.contains(want),
            "{config}: stderr {err:?} lacks {want:?}"
        );
        assert!(
            err.contains("config"),
            "{config}: stderr {err:?} does not name the file"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{config}: one line expected: {err:?}"
        );
    }
    let missing = Command::new(skynet_bin())
        .arg(dir.join("nope"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    let usage = Command::new(skynet_bin()).output().expect("run");
    assert_eq!(usage.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn logon_writes_a_per_service_log() {
    if !require_modules(&["t_logon"]) {
        return;
    }
    let dir = temp_dir("logon");
    let extra = format!("logpath = {:?}", dir.display().to_string());
    let out = Node::run(&extra, "t_logon", Duration::from_secs(10));
    out.assert_clean_exit();
    out.assert_checks(&["third_session"]);
    out.assert_line(&line(2, "error: Can't convert bogus to handle"));
    let log_path = dir.join("00000002.log");
    out.assert_line(&line(2, &format!("Open log file {}", log_path.display())));
    out.assert_count("Open log file", 1);
    out.assert_line(&line(2, "Close log file :00000002"));
    out.assert_count("Close log file", 1);
    let text = fs::read_to_string(&log_path).expect("the per-service log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "log file:\n{text}");
    assert!(lines[0].starts_with("open time: "), "{text}");
    let fields = |l: &str| l.split(' ').map(str::to_owned).collect::<Vec<_>>();
    for (l, (session, hex)) in
        lines[1..4]
            .iter()
            .zip([(0, "68656c6c6f"), (0, "776f726c64"), (7, "78")])
    {
        let f = fields(l);
        assert_eq!(f.len(), 5, "{l}");
        assert_eq!(f[0], ":00000002", "{l}");
        assert_eq!(f[1], "0", "{l}");
        assert_eq!(f[2], session.to_string(), "{l}");
        assert!(f[3].parse::<u32>().is_ok(), "{l}");
        assert_eq!(f[4], hex, "{l}");
    }
    assert!(lines[4].starts_with("close time: "), "{text}");
    assert!(
        !text.contains("6166746572"),
        "message after LOGOFF was logged:\n{text}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// `dd/mm/yy HH:MM:SS.cc [:xxxxxxxx] text`
fn is_file_log_line(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 33
        && b[2] == b'/'
        && b[5] == b'/'
        && b[8] == b' '
        && b[11] == b':'
        && b[14] == b':'
        && b[17] == b'.'
        && b[20] == b' '
        && l[21..].starts_with("[:")
}

#[test]
fn daemon_pidfile_logfile_and_sighup() {
    if !require_modules(&["t_tick"]) {
        return;
    }
    let dir = temp_dir("daemon");
    let pidfile = dir.join("skynet.pid");
    let logfile = dir.join("skynet.log");
    let config = format!(
        "thread = 2\nharbor = 0\ncpath = {:?}\nbootstrap = \"t_tick 40 5\"\ndaemon = {:?}\nlogger = {:?}\n",
        format!("{}/?.so", module_dir().display()),
        pidfile.display().to_string(),
        logfile.display().to_string(),
    );
    // The parent returns at once: the node goes on in the background.
    let (code, err) = run_config(&dir, &config);
    assert_eq!(code, Some(0), "daemon start: {err}");
    wait_for("the pid file", Duration::from_secs(5), || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "daemon pid {pid} not alive"
    );

    // A second node on the same pid file refuses to start.
    let (code, err) = run_config(&dir, &config);
    assert_eq!(code, Some(1), "second start: {err}");
    assert!(
        err.contains(&format!("Skynet is already running, pid = {pid}.")),
        "{err}"
    );

    // Log lines go to the file, with the local-time prefix.
    wait_for("TICK 3 in the log file", Duration::from_secs(5), || {
        fs::read_to_string(&logfile).is_ok_and(|s| s.contains("] TICK 3"))
    });
    let first = fs::read_to_string(&logfile).unwrap();
    assert!(
        first.lines().all(is_file_log_line),
        "log file lines:\n{first}"
    );

    // Rotation: rename the file, SIGHUP, and the logger writes a new one.
    let rotated = dir.join("skynet.log.1");
    fs::rename(&logfile, &rotated).expect("rotate");
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_for(
        "a new log file after SIGHUP",
        Duration::from_secs(5),
        || fs::read_to_string(&logfile).is_ok_and(|s| s.contains("] TICK")),
    );

    // The node stops by itself and removes its pid file.
    wait_for("the daemon to exit", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    wait_for("the pid file to go", Duration::from_secs(2), || {
        !pidfile.exists()
    });
    let last = fs::read_to_string(&logfile).unwrap();
    assert!(last.contains("] TICK 40"), "new log file:\n{last}");
    assert!(
        !last.contains("] TICK 1\n"),
        "new log file has old lines:\n{last}"
    );
    let _ = fs::remove_dir_all(&dir);
}
