//! The metrics endpoint (config key `metrics`): a node serving `GET /metrics`, checked with
//! Prometheus's own `promtool check metrics`, and (ignored by default) scraped by a real
//! Prometheus server.

use compat_tests::{connect_loopback, listen_port, skip_missing, spawn_lua_with, Node};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// More than the endpoint reads of a request head.
const MAX_HEAD: usize = 9 * 1024;

/// One HTTP request to the metrics port: (status code, body). Retries the connect for a few
/// seconds (the node may still be starting).
fn http(port: u16, request: &str) -> (u16, String) {
    let deadline = Instant::now() + TIMEOUT;
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("connect to the metrics port {port}: {e}"),
        }
    };
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (code, body.to_owned())
}

fn scrape(port: u16) -> String {
    let (code, body) = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of the sample line `series` (name with labels, exactly), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on `body`: None if promtool is missing, else (success, output).
fn promtool(body: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return None,
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// A node with `metrics` on and an echo server with one client connection: the page has
/// every family with figures that match what the node did, promtool accepts it, and other
/// paths and methods are refused.
#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let mport = compat_tests::free_port();
    let run = spawn_lua_with(
        "t_sd_echo 127.0.0.1",
        // two workers: the test reads worker 1's figures
        &format!(
            "{}metrics = \"127.0.0.1:{mport}\"",
            compat_tests::TWO_WORKERS
        ),
    );
    let port = listen_port(&run, TIMEOUT);
    let mut client = connect_loopback(port, IO_TIMEOUT);
    client.write_all(b"hello metrics").unwrap();
    let mut back = [0u8; 13];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello metrics");

    let body = scrape(mport);
    let has =
        |series: &str| sample(&body, series).unwrap_or_else(|| panic!("no {series}:\n{body}"));
    assert!(has("skynet_services") >= 2.0, "{body}");
    assert!(has("skynet_services_launched_total") >= 2.0, "{body}");
    assert!(has("skynet_messages_dispatched_total") >= 3.0, "{body}");
    assert_eq!(has("skynet_sockets_open{kind=\"listen\"}"), 1.0, "{body}");
    assert_eq!(has("skynet_sockets_open{kind=\"tcp\"}"), 1.0, "{body}");
    assert!(has("skynet_socket_received_bytes_total") >= 13.0, "{body}");
    assert!(has("skynet_socket_sent_bytes_total") >= 13.0, "{body}");
    assert_eq!(has("skynet_tls_handshake_failures_total"), 0.0, "{body}");
    assert_eq!(has("skynet_endless_loops_total"), 0.0, "{body}");
    assert_eq!(has("skynet_workers"), 2.0, "{body}");
    has("skynet_timers_pending");
    has("skynet_worker_busy_seconds_total{worker=\"1\"}");
    has("skynet_queue_requests_refused_total");
    has("skynet_overload_warnings_total");
    has("skynet_cpu_limit_interrupts_total");
    // The logger is named; the echo service runs Lua.
    has("skynet_service_messages_dispatched_total{service=\":00000001\",name=\".logger\"}");
    assert!(
        has("skynet_service_lua_memory_bytes{service=\":00000002\",name=\"\"}") > 0.0,
        "{body}"
    );
    has("skynet_service_c_memory_bytes{service=\":00000002\",name=\"\"}");
    has("skynet_service_cpu_seconds_total{service=\":00000002\",name=\"\"}");

    match promtool(&body) {
        Some((ok, text)) => assert!(ok, "promtool check metrics failed:\n{text}\n{body}"),
        None => skip_missing(format_args!(
            "promtool is not installed (Debian package prometheus)"
        )),
    }

    assert_eq!(http(mport, "GET / HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(mport, "GET /metricsx HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(mport, "POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_HEAD)
    );
    assert_eq!(http(mport, &huge).0, 431);
    // Still serving after those.
    assert!(scrape(mport).contains("skynet_services "));

    client.write_all(b"QUIT").unwrap();
    drop(client);
    let out = run.finish(TIMEOUT);
    out.assert_clean_exit();
}

/// The event counters follow what the node did: a launch, a kill, a `cpu_limit` interrupt, a
/// pending timeout and a named service (`t_metrics`).
#[test]
fn metrics_count_launches_exits_interrupts_and_timers() {
    let mport = compat_tests::free_port();
    let run = spawn_lua_with(
        "t_metrics",
        // two workers: a loop is interrupted while the other worker serves
        &format!(
            "{}cpu_limit = 1\nmetrics = \"127.0.0.1:{mport}\"",
            compat_tests::TWO_WORKERS
        ),
    );
    if run.wait_for("METRICS_READY", TIMEOUT).is_none() {
        panic!("no METRICS_READY:\n{}", run.finish(Duration::ZERO));
    }
    let body = scrape(mport);
    let has =
        |series: &str| sample(&body, series).unwrap_or_else(|| panic!("no {series}:\n{body}"));
    // logger, t_metrics, t_loop (killed), t_cpuloop
    assert_eq!(has("skynet_services_launched_total"), 4.0, "{body}");
    assert_eq!(has("skynet_services_exited_total"), 1.0, "{body}");
    assert_eq!(has("skynet_services"), 3.0, "{body}");
    assert_eq!(has("skynet_cpu_limit_interrupts_total"), 1.0, "{body}");
    assert_eq!(has("skynet_cpu_limit_uninterruptible_total"), 0.0, "{body}");
    assert!(has("skynet_timers_pending") >= 1.0, "{body}");
    assert!(
        has("skynet_service_messages_dispatched_total{service=\":00000002\",name=\".probe\"}")
            >= 2.0,
        "{body}"
    );
    // Each worker has a busy-seconds figure.
    for w in ["0", "1"] {
        let busy = has(&format!(
            "skynet_worker_busy_seconds_total{{worker=\"{w}\"}}"
        ));
        assert!(busy >= 0.0 && busy.is_finite(), "{body}");
    }
    let out = run.finish(Duration::ZERO);
    // Killed once scraped: the checks made so far all passed.
    for check in ["reg_name", "child", "looper", "looper_interrupted"] {
        out.assert_line_containing(&format!("CHECK {check} ok"));
    }
    out.assert_no_line_containing(" FAIL");
}

/// A service stuck in an endless loop is counted once the monitor has seen the same message
/// on two checks (5 s apart): `skynet_endless_loops_total` goes from 0 to at least 1.
#[test]
fn metrics_count_endless_loops() {
    let mport = compat_tests::free_port();
    let run = spawn_lua_with(
        "t_metrics_loop",
        // two workers: one is held by the loop, the other serves the bootstrap
        &format!(
            "{}metrics = \"127.0.0.1:{mport}\"",
            compat_tests::TWO_WORKERS
        ),
    );
    if run.wait_for("LOOPING", TIMEOUT).is_none() {
        panic!("no LOOPING:\n{}", run.finish(Duration::ZERO));
    }
    let first = sample(&scrape(mport), "skynet_endless_loops_total");
    assert_eq!(first, Some(0.0), "not detected before the first check");
    // Detection takes two monitor checks (up to 10 s); give it 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline {
        let body = scrape(mport);
        let n = sample(&body, "skynet_endless_loops_total");
        if n.is_some_and(|n| n >= 1.0) {
            seen = n;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = run.finish(Duration::ZERO);
    assert!(seen.is_some(), "no endless loop counted within 20 s\n{out}");
    out.assert_line_containing("CHECK loop_ready ok");
    out.assert_line_containing("maybe in an endless loop");
}

/// A bad `metrics` value, or an address that cannot be bound, stops the node with one line
/// naming the key and the file.
#[test]
fn metrics_bad_address_stops_the_node() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = format!("metrics = \"{}\"", taken.local_addr().unwrap());
    for extra in [
        "metrics = \"nonsense\"",
        "metrics = \"127.0.0.1:99999\"",
        &in_use,
    ] {
        let out = Node::run(extra, "snlua bootstrap", TIMEOUT);
        assert_ne!(out.status, Some(0), "{out}");
        assert!(!out.timed_out, "{out}");
        let err = out.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "{out}");
        assert!(
            err.contains("config key 'metrics'") && err.contains("/config:"),
            "{out}"
        );
    }
}

/// A real Prometheus server on loopback scrapes a node and answers a query about it.
///
/// Run it by hand (needs the `prometheus` executable, Debian package `prometheus`):
/// `make && cargo test --release -p compat-tests --test metrics -- --ignored`
#[test]
#[ignore = "starts a Prometheus server; run with --ignored"]
fn prometheus_server_scrapes_a_node() {
    let mport = compat_tests::free_port();
    let run = spawn_lua_with(
        "t_sd_echo 127.0.0.1",
        // two workers: the test reads worker 1's figures
        &format!(
            "{}metrics = \"127.0.0.1:{mport}\"",
            compat_tests::TWO_WORKERS
        ),
    );
    let port = listen_port(&run, TIMEOUT);
    let dir = std::env::temp_dir().join(format!("skynet-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: skynet\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )
    .unwrap();
    let pport = compat_tests::free_port();
    let mut prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus (Debian package prometheus)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let (code, body) = http(
            pport,
            "GET /api/v1/query?query=skynet_sockets_open%7Bkind%3D%22listen%22%7D HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        if code == 200 && body.contains("\"value\"") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no answer from prometheus: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(answer.contains("\"job\":\"skynet\""), "{answer}");
    assert!(answer.contains(",\"1\"]"), "one listening socket: {answer}");

    let mut client = connect_loopback(port, IO_TIMEOUT);
    client.write_all(b"QUIT").unwrap();
    drop(client);
    run.finish(TIMEOUT).assert_clean_exit();
}
