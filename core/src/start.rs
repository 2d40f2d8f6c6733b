//! Boot and thread orchestration (upstream `skynet_start`).
//!
//! Threads: `thread` workers, a timer thread (time, SIGHUP, termination), a monitor thread
//! (endless loops), the socket thread, and with `metrics` the metrics thread (not joined). The node ends when no live service is left: the timer
//! thread notices, tells the socket thread, the workers and the monitor to stop, and `start`
//! returns after joining them (the socket thread force-closes every socket as it leaves).

use crate::command::split_launch;
use crate::metrics::{self, WorkerClock};
use crate::monitor::{CpuWatch, MonitorSlot, CPU_TICK};
use crate::mq::{set_worker_thread, Message};
use crate::payload::Payload;
use crate::ptype;
use crate::server::{panic_text, set_current_handle, thread_kind, CpuClock, Node};
use crate::socket_server::SocketConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What `start` needs from the config.
pub struct StartConfig {
    pub thread: usize,
    pub logservice: String,
    pub logger: Option<String>,
    pub bootstrap: String,
    /// `socket_max`, `socket_send_limit`.
    pub socket: SocketConfig,
    /// `cpu_limit`: seconds one handler may run before the monitor interrupts it (0: off).
    pub cpu_limit: u64,
    /// `metrics`: the bound listener of the metrics endpoint (see [`crate::metrics`]), if on.
    pub metrics: Option<std::net::TcpListener>,
}

/// Scheduling weight of worker `i`: how much of its queue a turn takes.
pub fn worker_weight(i: usize) -> i32 {
    match i {
        0..=3 => -1,
        4..=7 => 0,
        8..=15 => 1,
        16..=23 => 2,
        24..=31 => 3,
        _ => 0,
    }
}

/// Launches the log service and bootstrap, then runs the node until no service is left.
pub fn start(node: &'static Node, cfg: &StartConfig) -> Result<(), String> {
    set_current_handle(thread_kind::MAIN);
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("can't install the SIGHUP handler: {e}"))?;
    // Before the first service: a service's init may already open sockets (upstream
    // `skynet_socket_init`); the requests wait for the socket thread.
    node.init_socket(cfg.socket.clone())
        .map_err(|e| format!("socket-server error: can't create the socket server: {e}"))?;

    let logger = node
        .launch(&cfg.logservice, cfg.logger.as_deref())
        .ok_or_else(|| format!("Can't launch {} service", cfg.logservice))?;
    node.handles.bind_name("logger", logger);

    let (module, args) = split_launch(cfg.bootstrap.trim_start());
    let args = args.map(str::trim_start).unwrap_or("");
    if node.launch(module, Some(args)).is_none() {
        node.log(0, format!("Bootstrap error : {}\n", cfg.bootstrap));
        if let Some(l) = node.grab(logger) {
            l.dispatch_all();
        }
        return Err(format!("Bootstrap error : {}", cfg.bootstrap));
    }

    let slots: Arc<Vec<MonitorSlot>> =
        Arc::new((0..cfg.thread).map(|_| MonitorSlot::new()).collect());
    let clocks: Arc<[WorkerClock]> = (0..cfg.thread).map(|_| WorkerClock::default()).collect();
    if let Some(listener) = &cfg.metrics {
        let listener = listener
            .try_clone()
            .map_err(|e| format!("metrics: can't use the listener: {e}"))?;
        metrics::serve(node, listener, clocks.clone())
            .map_err(|e| format!("metrics: can't start the metrics thread: {e}"))?;
    }
    let threads = [
        spawn("monitor", {
            let slots = slots.clone();
            let cpu_limit = cfg.cpu_limit;
            move || monitor_thread(node, &slots, cpu_limit)
        }),
        spawn("timer", move || timer_thread(node, &hup)),
        spawn("socket", move || socket_thread(node)),
    ];
    let workers: Vec<_> = (0..cfg.thread)
        .map(|i| {
            let slots = slots.clone();
            let clocks = clocks.clone();
            spawn(&format!("worker{i}"), move || {
                worker_thread(node, &slots[i], &clocks[i], worker_weight(i))
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    join_workers(node, workers);
    node.harbor_exit();
    Ok(())
}

/// Joins the workers once the node has quit. After an ABORT that had to give up on a handler
/// (blocked in C code, say), that worker never returns: the others are joined and the node
/// ends without it (returning from `start` ends the process).
fn join_workers(node: &Node, workers: Vec<thread::JoinHandle<()>>) {
    if !node.is_aborting() {
        for w in workers {
            let _ = w.join();
        }
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut left = workers;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        let (done, busy): (Vec<_>, Vec<_>) = left.into_iter().partition(|w| w.is_finished());
        for w in done {
            let _ = w.join();
        }
        left = busy;
        thread::sleep(Duration::from_millis(10));
    }
    if !left.is_empty() {
        eprintln!(
            "skynet: ABORT: {} worker(s) still in a handler; exiting without them",
            left.len()
        );
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .expect("spawn a skynet thread")
}

fn worker_thread(node: &Node, slot: &MonitorSlot, clock_busy: &WorkerClock, weight: i32) {
    set_worker_thread();
    node.global.add_worker();
    set_current_handle(0);
    let mut q = None;
    let mut clock = CpuClock::default();
    while !node.global.is_quit() {
        q = node.dispatch(slot, &mut clock, q, weight);
        if q.is_none() {
            clock.idle();
            clock_busy.park_begin();
            node.global.park();
            clock_busy.park_end();
        }
    }
}

fn timer_thread(node: &Node, hup: &AtomicBool) {
    set_current_handle(thread_kind::TIMER);
    let mut last_taken = 0;
    loop {
        node.timer.update(node);
        if node.total() == 0 || node.abort_overdue() {
            break;
        }
        // A queue that got a message while it sat on the global queue (a push that scheduled
        // nothing, so woke nobody) would otherwise be stranded while the awake workers are
        // held up, e.g. in an endless loop.
        node.global.wake_if_stalled(&mut last_taken);
        thread::sleep(Duration::from_micros(2500));
        if hup.swap(false, Ordering::Relaxed) {
            reopen_logger(node);
        }
    }
    if let Some(s) = node.socket() {
        s.exit();
    }
    node.global.quit();
}

fn socket_thread(node: &Node) {
    set_current_handle(thread_kind::SOCKET);
    let Some(server) = node.socket() else { return };
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.run())) {
        node.log(
            0,
            format!(
                "socket-server error: the socket thread panicked: {}",
                panic_text(&*e)
            ),
        );
    }
}

/// SIGHUP: tell the `logger` service to reopen its file.
fn reopen_logger(node: &Node) {
    if let Some(h) = node.handles.find_name("logger") {
        node.push(h, Message::new(0, 0, ptype::SYSTEM as u8, Payload::empty()));
    }
}

/// The endless-loop check every 5 s; with `cpu_limit` (seconds, 0: off) also the handler time
/// check every [`CPU_TICK`].
fn monitor_thread(node: &Node, slots: &[MonitorSlot], cpu_limit: u64) {
    set_current_handle(thread_kind::MONITOR);
    const ENDLESS_EVERY: Duration = Duration::from_secs(5);
    if cpu_limit == 0 {
        loop {
            for s in slots {
                s.check(node);
            }
            if node.global.sleep_unless_quit(ENDLESS_EVERY) {
                return;
            }
        }
    }
    let limit = Duration::from_secs(cpu_limit);
    let start = Instant::now();
    let mut watches: Vec<CpuWatch> = slots.iter().map(|_| CpuWatch::new(start)).collect();
    let mut next_endless = start;
    loop {
        let now = Instant::now();
        if now >= next_endless {
            for s in slots {
                s.check(node);
            }
            next_endless = now + ENDLESS_EVERY;
        }
        for (s, w) in slots.iter().zip(&mut watches) {
            w.check(s, node, limit, now);
        }
        if node.global.sleep_unless_quit(CPU_TICK) {
            return;
        }
    }
}
