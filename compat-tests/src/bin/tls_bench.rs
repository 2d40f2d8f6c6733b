//! Mutual TLS against plain links, in the same run (`make bench`): echo throughput and request
//! rate through a node's socketdriver echo service (`compat-tests/lua/t_sd_echo.lua`), and, with
//! an upstream Lua tree in env `SKYNET_UPSTREAM`, the cluster call rate of upstream's unchanged
//! cluster services between two nodes (`compat-tests/bench/cluster/cluster_bench.lua`).
//! Certificates are made at start. Prints `BENCH <name> <value> <unit>` lines and the overhead
//! of TLS (percent fewer per second than plain).
//!
//! Plain and TLS runs alternate, BENCH_TLS_ROUNDS times each; the best of each is reported
//! (so a busy machine hurts both sides alike).
//!
//! Knobs: BENCH_TLS_SECS [5] BENCH_TLS_CONNS [8] BENCH_TLS_BLOCK [16384] BENCH_THREAD [8]
//!        BENCH_TLS_ROUNDS [2] CLUSTER_BENCH_SMALL [20000] CLUSTER_BENCH_LARGE [200]
//!        BENCH_TLS_ONLY ["echo cluster"]

use compat_tests::pki::{tls_client, Ca, Identity};
use compat_tests::{repo_root, spawn_lua_with, Node, Running};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const START: Duration = Duration::from_secs(30);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Ping-pong of `block`-byte messages on `conns` connections for `secs`: round trips/s.
fn echo_load(
    port: u16,
    tls: Option<(&Ca, Arc<Identity>)>,
    conns: usize,
    block: usize,
    secs: u64,
) -> f64 {
    let stop = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let cfg = tls.as_ref().map(|(ca, id)| ca.client_config(Some(id)));
            thread::spawn(move || {
                let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                sock.set_nodelay(true).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut stream: Box<dyn ReadWrite> = match cfg {
                    Some(cfg) => Box::new(tls_client(cfg, sock)),
                    None => Box::new(sock),
                };
                let out = vec![7u8; block];
                let mut back = vec![0u8; block];
                let mut n = 0u64;
                while Instant::now() < stop {
                    stream.write_all(&out).expect("write");
                    stream.flush().expect("flush");
                    stream.read_exact(&mut back).expect("echo");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    total as f64 / secs as f64
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn overhead(plain: f64, tls: f64) -> f64 {
    if plain > 0.0 {
        (1.0 - tls / plain) * 100.0
    } else {
        0.0
    }
}

fn report(name: &str, plain: f64, tls: f64, unit: &str) {
    println!("BENCH {name}_plain {plain:.0} {unit}");
    println!("BENCH {name}_mtls {tls:.0} {unit}");
    println!("BENCH {name}_mtls_overhead {:.1} %", overhead(plain, tls));
}

fn echo_node(port: u16, tls_lines: &str) -> Running {
    let thread = knob("BENCH_THREAD", 8);
    let node = spawn_lua_with(
        &format!("t_sd_echo 127.0.0.1 {port}"),
        &format!("thread = {thread}\n{tls_lines}"),
    );
    node.wait_for("] LISTEN ", START)
        .expect("the echo node listens");
    node
}

fn echo_bench(ca: &Ca, dir: &Path) {
    let secs = knob("BENCH_TLS_SECS", 5);
    let conns = knob("BENCH_TLS_CONNS", 8) as usize;
    let block = knob("BENCH_TLS_BLOCK", 16384) as usize;
    let me = Arc::new(ca.identity());
    // best (throughput, 64-byte rate) of plain and of TLS
    let mut best = [(0.0f64, 0.0f64); 2];
    for round in 0..2 * knob("BENCH_TLS_ROUNDS", 2) {
        let tls = round % 2 == 1;
        let port = free_port();
        let lines = if tls {
            format!("{}tls_listen = \":{port}\"\n", ca.node_files(dir, "echo"))
        } else {
            String::new()
        };
        let node = echo_node(port, &lines);
        let id = tls.then(|| (ca, me.clone()));
        let big = echo_load(port, id.clone(), conns, block, secs);
        let small = echo_load(port, id, conns, 64, secs);
        drop(node.finish(Duration::ZERO));
        let b = &mut best[usize::from(tls)];
        b.0 = b.0.max(big * block as f64 * 2.0 / 1e6);
        b.1 = b.1.max(small);
    }
    report("tls_echo_throughput", best[0].0, best[1].0, "MB/s");
    report("tls_echo_64b", best[0].1, best[1].1, "req/s");
}

/// The calls/s lines of one cluster bench run between two nodes.
fn cluster_run(root: &Path, ca: Option<&Ca>, dir: &Path) -> Vec<(String, f64)> {
    let (sport, cport) = (free_port(), free_port());
    let here = repo_root().join("compat-tests/bench/cluster");
    let config = |role: &str| {
        let mut c = format!(
            "root = \"{}/\"\nthread = {}\nstart = \"cluster_bench\"\n\
             luaservice = root..\"service/?.lua;{}/?.lua\"\n\
             lualoader = root..\"lualib/loader.lua\"\n\
             lua_path = root..\"lualib/?.lua;\"..root..\"lualib/?/init.lua\"\n\
             bench_role = \"{role}\"\nbench_server_port = \"{sport}\"\n\
             bench_client_port = \"{cport}\"\nbench_small = \"{}\"\nbench_large = \"{}\"\n",
            root.display(),
            knob("BENCH_THREAD", 8),
            here.display(),
            knob("CLUSTER_BENCH_SMALL", 20000),
            knob("CLUSTER_BENCH_LARGE", 200),
        );
        if let Some(ca) = ca {
            c.push_str(&ca.node_files(dir, role));
            c.push_str(&format!(
                "tls_listen = \":{sport} :{cport}\"\n\
                 tls_connect = \"127.0.0.1:{sport} 127.0.0.1:{cport}\"\n"
            ));
        }
        c
    };
    let server = Node::spawn(&config("server"), "snlua bootstrap");
    let client = Node::spawn(&config("client"), "snlua bootstrap");
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(l) = client.wait_for("BENCH", left) else {
            eprintln!("cluster bench: no BENCH_DONE");
            break;
        };
        if l.contains("BENCH_DONE") {
            break;
        }
        // "[:xxxxxxxx] BENCH name value unit"
        let mut w = l.split_whitespace().skip(2);
        if let (Some(name), Some(v), Some("calls/s")) = (w.next(), w.next(), w.next()) {
            lines.push((name.to_owned(), v.parse().unwrap_or(0.0)));
        }
    }
    drop(client.finish(Duration::ZERO));
    drop(server.finish(Duration::ZERO));
    lines
}

fn main() {
    let dir: PathBuf = std::env::temp_dir().join(format!("skynet-tlsbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let ca = Ca::new("bench ca");
    let only = std::env::var("BENCH_TLS_ONLY").unwrap_or_else(|_| "echo cluster".to_owned());
    if only.contains("echo") {
        echo_bench(&ca, &dir);
    }
    match std::env::var_os("SKYNET_UPSTREAM").filter(|r| !r.is_empty() && only.contains("cluster"))
    {
        Some(root) => {
            let root = Path::new(&root)
                .canonicalize()
                .expect("SKYNET_UPSTREAM exists");
            let mut best: Vec<(String, f64, f64)> = Vec::new();
            for round in 0..2 * knob("BENCH_TLS_ROUNDS", 2) {
                let tls = round % 2 == 1;
                let got = cluster_run(&root, tls.then_some(&ca), &dir);
                for (name, v) in got {
                    let i = match best.iter().position(|b| b.0 == name) {
                        Some(i) => i,
                        None => {
                            best.push((name, 0.0, 0.0));
                            best.len() - 1
                        }
                    };
                    let slot = if tls { &mut best[i].2 } else { &mut best[i].1 };
                    *slot = slot.max(v);
                }
            }
            for (name, p, t) in best {
                report(&format!("tls_{name}"), p, t, "calls/s");
            }
        }
        None => println!("tls cluster bench skipped: set SKYNET_UPSTREAM to an upstream tree"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
