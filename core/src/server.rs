//! Service contexts, message sending and dispatch (upstream `skynet_server`).
//!
//! The node is one process-wide value ([`node`]), as upstream's globals are: the C ABI reaches it
//! without a context (`skynet_now`, `skynet_getenv`, ...). A context is reference counted
//! (`Arc`); the handle registry holds one reference, dispatch and senders hold short-lived
//! ones, and dropping the last one releases the module instance and hands the queue to a worker
//! to be drained with error replies.

use crate::handle::{HandleStorage, HANDLE_REMOTE_SHIFT};
use crate::log::ServiceLog;
use crate::metrics::Counters;
use crate::module::{Instance, Modules};
use crate::monitor::MonitorSlot;
use crate::mq::{
    Admission, GlobalQueue, LimitEvent, Message, MessageQueue, Overfull, Pushed, QueueLimits,
    Scheduled,
};
use crate::payload::Payload;
use crate::socket_server::{NodeSink, SocketConfig, SocketServer};
use crate::timer::Timer;
use crate::{harbor, ptype};
use parking_lot::{Mutex, MutexGuard};
use std::cell::Cell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Send flag: the core takes the caller's buffer instead of copying it.
pub const PTYPE_TAG_DONTCOPY: i32 = 0x10000;
/// Send flag: allocate a new session from the sending context.
pub const PTYPE_TAG_ALLOCSESSION: i32 = 0x20000;
/// Payload sizes must fit in 56 bits (upstream keeps the type in the top byte of `sz`).
pub const MESSAGE_SIZE_LIMIT: usize = 1 << 56;

/// What `skynet_current_handle` answers on non-worker threads.
pub mod thread_kind {
    pub const MAIN: u32 = -1i32 as u32;
    pub const SOCKET: u32 = -2i32 as u32;
    pub const TIMER: u32 = -3i32 as u32;
    pub const MONITOR: u32 = -4i32 as u32;
}

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
    static BACKLOG: Cell<usize> = const { Cell::new(0) };
}

/// Messages left in the queue of the service whose handler runs on this thread, as of the
/// pop of the message it handles (0 outside a handler and on other threads). The socket
/// server writes a send at once only when nothing else waits for the service (see
/// `SocketServer::send`).
#[inline]
pub fn dispatch_backlog() -> usize {
    BACKLOG.with(|b| b.get())
}

#[cfg(test)]
pub(crate) fn set_dispatch_backlog(n: usize) {
    BACKLOG.with(|b| b.set(n));
}

/// The handle of the service being dispatched on this thread (or the thread kind). It neither
/// allocates nor panics: the malloc family calls it.
#[inline]
pub fn current_handle() -> u32 {
    if NODE.get().is_none() {
        return thread_kind::MAIN;
    }
    CURRENT.with(|c| c.get())
}

pub fn set_current_handle(h: u32) {
    CURRENT.with(|c| c.set(h));
}

/// A message handler. Returning the message to the caller is not needed: a handler that wants
/// to keep the payload just keeps it (C modules do so by returning 1, see the ffi crate).
pub trait Callback: Send {
    /// Handles one message. The message is lent, not moved: a move copies it, and each copy
    /// right after the pop stalled the CPU (a wide load over narrow stores). The callee takes
    /// what it keeps; whatever is left in `msg.data` is freed after the call.
    fn call(&mut self, ctx: &Context, msg: &mut Message);
}

impl<F: FnMut(&Context, Message) + Send> Callback for F {
    fn call(&mut self, ctx: &Context, msg: &mut Message) {
        self(ctx, msg.take())
    }
}

thread_local! {
    /// The address of the context whose dispatch turn this thread runs (0: none), so that a
    /// handler replacing its own callback does not wait for the lock its turn holds.
    static DISPATCHING: Cell<usize> = const { Cell::new(0) };
}

/// A callback replaced from inside its own service's handler, applied by the turn once the
/// handler returns: `None` if there is none; `Some(None)` clears the callback.
type Pending = Option<Option<Box<dyn Callback>>>;

/// A service context (upstream `struct skynet_context`).
pub struct Context {
    handle: u32,
    module_name: Box<str>,
    instance: Option<Box<dyn Instance>>,
    queue: MessageQueue,
    /// Locked for a whole dispatch turn: one lock per turn however many messages it handles;
    /// `set_callback` from another thread waits for the turn to end.
    callback: Mutex<Option<Box<dyn Callback>>>,
    /// `set_callback` from inside this service's handler (see [`DISPATCHING`]).
    pending_callback: Mutex<Pending>,
    /// Mirror of `pending_callback.is_some()`, checked without locking after each message.
    has_pending: AtomicBool,
    session_id: AtomicI32,
    initialized: AtomicBool,
    /// Set when the handle is retired (EXIT, KILL, ABORT): a dispatch turn stops at once, so
    /// the rest of the queue gets error replies instead of reaching a service that has exited.
    retired: AtomicBool,
    endless: AtomicBool,
    profile: bool,
    /// Nanoseconds of thread CPU time spent in callbacks (as [`CpuClock`] charges them).
    cpu_cost: AtomicU64,
    /// The worker's thread CPU time (ns, as [`CpuClock`] estimates it) when the current
    /// callback started.
    cpu_start: AtomicU64,
    message_count: AtomicU64,
    log: Mutex<Option<ServiceLog>>,
    /// Fast check for `log` on the dispatch path.
    log_on: AtomicBool,
    /// The C ABI's per-context command result buffer (valid until the next command).
    pub command_result: Mutex<CString>,
}

impl Context {
    fn new(
        handle: u32,
        name: &str,
        instance: Box<dyn Instance>,
        profile: bool,
        limits: QueueLimits,
    ) -> Context {
        Context {
            handle,
            module_name: name.into(),
            instance: Some(instance),
            queue: MessageQueue::with_limits(limits),
            callback: Mutex::new(None),
            pending_callback: Mutex::new(None),
            has_pending: AtomicBool::new(false),
            session_id: AtomicI32::new(0),
            initialized: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            endless: AtomicBool::new(false),
            profile,
            cpu_cost: AtomicU64::new(0),
            cpu_start: AtomicU64::new(0),
            message_count: AtomicU64::new(0),
            log: Mutex::new(None),
            log_on: AtomicBool::new(false),
            command_result: Mutex::new(CString::default()),
        }
    }

    pub fn handle(&self) -> u32 {
        self.handle
    }

    pub fn module_name(&self) -> &str {
        &self.module_name
    }

    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }

    /// Replaces (or clears) the message handler.
    pub fn set_callback(&self, cb: Option<Box<dyn Callback>>) {
        if DISPATCHING.with(Cell::get) == self as *const Context as usize {
            // From inside this service's handler: its turn holds the lock.
            let old = self.pending_callback.lock().replace(cb);
            self.has_pending.store(true, Ordering::Release);
            drop(old);
            return;
        }
        let old = std::mem::replace(&mut *self.callback.lock(), cb);
        drop(old);
    }

    /// A new session: 1, 2, ... 0x7fffffff, then 1 again.
    pub fn new_session(&self) -> i32 {
        let mut next = 0;
        let _ = self
            .session_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                next = s.wrapping_add(1);
                if next <= 0 {
                    next = 1;
                }
                Some(next)
            });
        next
    }

    pub fn signal(&self, sig: i32) {
        if let Some(i) = &self.instance {
            i.signal(sig);
        }
    }

    /// Interrupts the running handler (see [`Instance::interrupt`]); false if the service's
    /// module cannot.
    pub fn interrupt(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.interrupt())
    }

    /// Whether [`Context::interrupt`] can work for this service.
    pub fn can_interrupt(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.can_interrupt())
    }

    pub fn set_endless(&self) {
        self.endless.store(true, Ordering::Relaxed);
    }

    pub fn take_endless(&self) -> bool {
        self.endless.swap(false, Ordering::Relaxed)
    }

    pub fn cpu_cost_us(&self) -> u64 {
        self.cpu_cost.load(Ordering::Relaxed) / 1_000
    }

    /// CPU time of the message being handled so far, if profiling (asked from its handler,
    /// so on the thread that runs it).
    pub fn current_cpu_us(&self) -> Option<u64> {
        self.profile.then(|| {
            thread_time_ns().saturating_sub(self.cpu_start.load(Ordering::Relaxed)) / 1_000
        })
    }

    pub fn message_count(&self) -> u64 {
        self.message_count.load(Ordering::Relaxed)
    }

    pub fn service_log(&self) -> &Mutex<Option<ServiceLog>> {
        &self.log
    }

    pub fn set_log_on(&self, on: bool) {
        self.log_on.store(on, Ordering::Relaxed);
    }

    /// Handles every queued message on the calling thread (flushing the logger at a failed
    /// start).
    pub fn dispatch_all(&self) {
        let mut held = self.take_callback();
        let mut clock = CpuClock::default();
        while let Some(m) = self.queue.pop() {
            self.dispatch_message(m, &mut held, &mut clock);
        }
        self.put_back_callback(held);
    }

    /// Sends from this context (see [`Node::send`]).
    pub fn send(&self, dest: u32, ty: i32, session: i32, data: Payload) -> i32 {
        node().send(Some(self), 0, dest, ty, session, data)
    }

    /// Logs a line with this context as the source.
    pub fn error(&self, text: impl AsRef<[u8]>) {
        node().log(self.handle, text)
    }

    /// Locks the callback for a dispatch turn (only the worker holding the service dispatches
    /// it; the lock keeps other threads' `set_callback` out until the turn ends).
    fn take_callback(&self) -> HeldCallback<'_> {
        let mut guard = self.callback.lock();
        let outer = DISPATCHING.with(|d| d.replace(self as *const Context as usize));
        self.apply_pending(&mut guard);
        HeldCallback { guard, outer }
    }

    /// Ends a turn: applies a callback set by the last handler and unlocks.
    fn put_back_callback(&self, held: HeldCallback<'_>) {
        let HeldCallback { mut guard, outer } = held;
        self.apply_pending(&mut guard);
        DISPATCHING.with(|d| d.set(outer));
        drop(guard);
    }

    /// Installs a callback set from inside a handler, if any.
    #[inline]
    fn apply_pending(&self, slot: &mut Option<Box<dyn Callback>>) {
        if self.has_pending.load(Ordering::Acquire) {
            self.apply_pending_slow(slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn apply_pending_slow(&self, slot: &mut Option<Box<dyn Callback>>) {
        let new = self.pending_callback.lock().take();
        self.has_pending.store(false, Ordering::Release);
        if let Some(cb) = new {
            // The old one's drop may set a callback again: it lands in `pending_callback`.
            let old = std::mem::replace(slot, cb);
            drop(old);
        }
    }

    /// A handler's panic, logged; out of line so that the dispatch path saves no registers
    /// for it.
    #[cold]
    #[inline(never)]
    fn report_panic(&self, e: Box<dyn std::any::Any + Send>) {
        self.error(format!("error: service panicked: {}", panic_text(&*e)));
    }

    // Inlined so that the message's fields stay where the pop put them: a call takes it by
    // pointer, and the callee's wide reloads of fields just stored one by one stall.
    #[inline(always)]
    fn dispatch_message(
        &self,
        mut msg: Message,
        held: &mut HeldCallback<'_>,
        clock: &mut CpuClock,
    ) {
        set_current_handle(self.handle);
        if self.log_on.load(Ordering::Relaxed) {
            if let Some(log) = self.log.lock().as_mut() {
                log.output(&msg);
            }
        }
        // Counters written only by the dispatching worker: no read-modify-write atomics needed.
        let count = self.message_count.load(Ordering::Relaxed);
        self.message_count.store(count + 1, Ordering::Relaxed);
        self.apply_pending(&mut held.guard);
        let Some(cb) = held.guard.as_mut() else {
            return; // no handler: the message is freed silently
        };
        // A panicking handler must not take the worker thread down with it.
        let mut call = |cb: &mut Box<dyn Callback>| {
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| cb.call(self, &mut msg))) {
                self.report_panic(e);
            }
        };
        if self.profile {
            let start = clock.start();
            self.cpu_start.store(start, Ordering::Relaxed);
            call(cb);
            let spent = clock.finish();
            let cost = self.cpu_cost.load(Ordering::Relaxed);
            self.cpu_cost.store(cost + spent, Ordering::Relaxed);
        } else {
            call(cb);
        }
    }
}

impl Scheduled for Arc<Context> {
    fn queue(&self) -> &MessageQueue {
        &self.queue
    }
}

/// A service's callback, locked for one dispatch turn.
struct HeldCallback<'a> {
    guard: MutexGuard<'a, Option<Box<dyn Callback>>>,
    /// [`DISPATCHING`] before the turn (a turn may run inside another: `dispatch_all`).
    outer: usize,
}

/// A worker's clock for `profile`: what each message's callback costs in thread CPU time.
///
/// Reading the thread CPU clock is a system call (about 0.5 us on a VM, more than a whole
/// C ping-pong message), the monotonic clock is not (vDSO, about 20 ns). So each message is
/// timed on the monotonic clock and converted with the share of wall time this thread was on a
/// CPU, and the thread CPU clock is read once per [`CpuClock::WINDOW`] to close a window: the
/// message that closes it is charged the window's CPU time minus what the window's earlier
/// messages were charged. Invariants: per window, the charges add up to the thread CPU time
/// spent, or to the earlier estimates if they already exceeded it (the thread was off a CPU
/// more than in the window before: the next window's share is lower); a message as long as a
/// window is charged exactly up to the error in its window's earlier estimates; the worker's
/// own work between two messages is charged to the next one. Within a window the charges go
/// by wall time, so a short handler that blocks in a system call is charged like one that
/// computes. A worker calls [`CpuClock::idle`] before it sleeps, so a window never spans a
/// sleep.
pub struct CpuClock {
    /// Monotonic ns at the end of the last message; `None` after idle (recalibrate).
    last: Option<u64>,
    /// Thread CPU ns and monotonic ns when the window opened.
    window_cpu: u64,
    window_wall: u64,
    /// CPU ns charged since the window opened.
    charged: u64,
    /// CPU ns per wall ns of the last window, 16.16 fixed point, at most 1.0.
    on_cpu: u64,
}

impl Default for CpuClock {
    fn default() -> Self {
        CpuClock {
            last: None,
            window_cpu: 0,
            window_wall: 0,
            charged: 0,
            on_cpu: 1 << 16,
        }
    }
}

impl CpuClock {
    /// Wall time after which the thread CPU clock is read again.
    const WINDOW: u64 = 1_000_000;

    /// Starts timing a message; returns the thread CPU time (ns) it starts at, as estimated.
    fn start(&mut self) -> u64 {
        if self.last.is_none() {
            let now = monotonic_ns();
            self.window_cpu = thread_time_ns();
            self.window_wall = now;
            self.charged = 0;
            self.last = Some(now);
        }
        self.window_cpu + self.charged
    }

    /// Ends timing the message begun by [`CpuClock::start`]; returns the CPU ns to charge it.
    fn finish(&mut self) -> u64 {
        let now = monotonic_ns();
        let last = self.last.unwrap_or(now);
        self.last = Some(now);
        let wall = now.saturating_sub(self.window_wall);
        if wall < Self::WINDOW {
            let spent = (now.saturating_sub(last) * self.on_cpu) >> 16;
            self.charged += spent;
            return spent;
        }
        let cpu = thread_time_ns();
        let window = cpu.saturating_sub(self.window_cpu);
        // u128: a window holds as much CPU time as its longest handler ran.
        self.on_cpu = (((window as u128) << 16) / wall.max(1) as u128).min(1 << 16) as u64;
        let spent = window.saturating_sub(self.charged);
        self.window_cpu = cpu;
        self.window_wall = now;
        self.charged = 0;
        spent
    }

    /// The worker is about to sleep: the next message opens a new window.
    pub fn idle(&mut self) {
        self.last = None;
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.log.get_mut().take();
        drop(self.instance.take());
        if let Some(n) = NODE.get() {
            if *self.initialized.get_mut() {
                Counters::bump(&n.counters.exited);
                let messages = *self.message_count.get_mut();
                n.counters
                    .exited_messages
                    .fetch_add(messages, Ordering::Relaxed);
            }
            // Nobody can push any more (a push needs a reference): what is left is answered
            // with errors, as upstream's release of a dead service's queue does.
            while let Some(m) = self.queue.pop() {
                n.drop_message(self.handle, m);
            }
            n.total.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The message of a caught panic.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Thread CPU time in nanoseconds (for `profile`).
fn thread_time_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call): `profile`'s message timing and
/// `skynet.hpc`.
pub fn monotonic_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

fn clock_ns(id: nix::time::ClockId) -> u64 {
    nix::time::clock_gettime(id)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// What the node is started with.
pub struct NodeConfig {
    pub harbor: u8,
    pub profile: bool,
    pub modules: Modules,
    /// Every new service queue's limits (`queue_limit`, `queue_bytes_limit`).
    pub queue_limits: QueueLimits,
}

/// Counts of what full queues did, since the node started (see [`Node::queue_counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Requests (session != 0) refused and answered with PTYPE_ERROR.
    pub requests_refused: u64,
    /// One-way messages (session 0) dropped, UDP datagrams included.
    pub oneway_dropped: u64,
    /// Times a TCP connection stopped being read because its owner's queue was full.
    pub sockets_paused: u64,
}

/// What [`Node::push_socket`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    Queued,
    /// Queued, but the queue is full: the connection must stop being read until resumed.
    Hold,
    /// Not queued (dropped, or refused with an error reply).
    Refused,
}

/// How a message of type `ty` (low 8 bits) is admitted to a queue: replies and error replies
/// are never refused.
fn admission_of(ty: u32) -> Admission {
    match ty as i32 {
        ptype::RESPONSE | ptype::ERROR => Admission::Always,
        _ => Admission::Limited,
    }
}

/// The node: every process-wide piece of the runtime.
pub struct Node {
    pub harbor_id: u8,
    pub handles: HandleStorage<Arc<Context>>,
    /// The run queue schedules contexts, so a dispatch turn needs no handle lookup: a queued
    /// context stays alive until a worker pops it, and a retired one is dropped then.
    pub global: GlobalQueue<Arc<Context>>,
    pub timer: Timer,
    pub modules: Modules,
    pub profile: bool,
    /// Live contexts, not counting the reserved harbor context.
    total: AtomicUsize,
    /// Cached handle of the service named `logger` (0 until found).
    logger: AtomicU32,
    /// Handle told about every service exit (MONITOR), 0 if none.
    pub monitor_exit: AtomicU32,
    pub(crate) harbor: harbor::Harbor,
    /// The socket server, created by [`crate::start::start`] before the first service.
    socket: OnceLock<SocketServer>,
    /// Limits every new service queue starts with.
    pub queue_limits: QueueLimits,
    requests_refused: AtomicU64,
    oneway_dropped: AtomicU64,
    sockets_paused: AtomicU64,
    /// Event counters for the metrics endpoint.
    pub counters: Counters,
    /// Set by ABORT (see [`Node::abort`]).
    abort: Mutex<Option<Abort>>,
}

/// After ABORT, how long services still in a handler get before they are interrupted (SIGNAL 0:
/// a Lua service's running code raises an error).
pub const ABORT_INTERRUPT_AFTER: Duration = Duration::from_secs(1);
/// After ABORT, how long the node waits for handlers to return before it stops anyway: a
/// handler blocked in C code cannot be interrupted, and the process must still end.
pub const ABORT_GIVE_UP_AFTER: Duration = Duration::from_secs(3);

/// An ABORT in progress: when it began and the services alive then.
struct Abort {
    began: Instant,
    services: Vec<Weak<Context>>,
    interrupted: bool,
}

static NODE: OnceLock<Node> = OnceLock::new();

/// The node. Panics if called before [`Node::init`]; use [`try_node`] where that can happen.
pub fn node() -> &'static Node {
    NODE.get().expect("skynet node not initialised")
}

pub fn try_node() -> Option<&'static Node> {
    NODE.get()
}

impl Node {
    /// Creates the process-wide node. Only the first call has an effect.
    pub fn init(config: NodeConfig) -> &'static Node {
        NODE.get_or_init(|| Node {
            harbor_id: config.harbor,
            handles: HandleStorage::new(config.harbor),
            global: GlobalQueue::new(),
            timer: Timer::new(),
            modules: config.modules,
            profile: config.profile,
            total: AtomicUsize::new(0),
            logger: AtomicU32::new(0),
            monitor_exit: AtomicU32::new(0),
            harbor: harbor::Harbor::new(config.harbor),
            socket: OnceLock::new(),
            queue_limits: config.queue_limits,
            requests_refused: AtomicU64::new(0),
            oneway_dropped: AtomicU64::new(0),
            sockets_paused: AtomicU64::new(0),
            counters: Counters::default(),
            abort: Mutex::new(None),
        })
    }

    /// What full queues refused, dropped and paused so far.
    pub fn queue_counters(&self) -> QueueCounters {
        QueueCounters {
            requests_refused: self.requests_refused.load(Ordering::Relaxed),
            oneway_dropped: self.oneway_dropped.load(Ordering::Relaxed),
            sockets_paused: self.sockets_paused.load(Ordering::Relaxed),
        }
    }

    /// Reports a queue back under its limits and resumes the connections it held.
    #[cold]
    fn limit_event(&self, handle: u32, ev: &LimitEvent) {
        if let Some(refused) = ev.recovered {
            self.log(
                0,
                format!("queue of :{handle:08x} is under its limits again ({refused} refused meanwhile)"),
            );
        }
        if let Some(server) = self.socket() {
            for &id in &ev.resume {
                server.resume_read(id);
            }
        }
    }

    /// Puts `msg` on the queue of `handle` as `admission` allows; `None` if the handle is not
    /// live (the message is dropped). A refused request (session != 0) is answered at once with
    /// PTYPE_ERROR from `handle` to the sender, same session; a refused one-way message is
    /// dropped. Both are counted; the first refusal of a crossing is logged. The handle table
    /// is read-locked only for the push itself: the error reply and the log line are sent
    /// after, since they look up handles again.
    ///
    /// The message is built by `msg` where it is queued: built before and moved in, its two
    /// 4-byte fields (source, session) were stored one by one and then loaded as one 8-byte
    /// word by the move, a load the CPU cannot forward from the pending stores (a stall
    /// that was a tenth of the C ping-pong, perf annotate).
    #[inline]
    fn admit(
        &self,
        handle: u32,
        msg: impl FnOnce() -> Message,
        admission: Admission,
    ) -> Option<Admitted> {
        match self
            .handles
            .with(handle, |c| self.global.admit(c, msg(), admission))?
        {
            Ok(()) => Some(Admitted::Queued),
            Err(full) => Some(self.admit_rest(handle, *full)),
        }
    }

    /// [`Self::admit`] when the queue was full.
    #[cold]
    #[inline(never)]
    fn admit_rest(&self, handle: u32, out: Overfull) -> Admitted {
        if let Some((len, bytes)) = out.crossed {
            let what = match out.pushed {
                Pushed::QueuedPause => "pausing the socket",
                _ => "refusing",
            };
            self.log(
                0,
                format!(
                    "error: queue of :{handle:08x} is full ({len} messages, {bytes} bytes): {what}",
                ),
            );
        }
        match out.pushed {
            Pushed::Refused(m) => {
                if m.session != 0 {
                    self.requests_refused.fetch_add(1, Ordering::Relaxed);
                    let Message {
                        source, session, ..
                    } = m;
                    self.send(
                        None,
                        handle,
                        source,
                        ptype::ERROR,
                        session,
                        Payload::empty(),
                    );
                } else {
                    self.oneway_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Admitted::Refused
            }
            Pushed::QueuedPause => {
                self.sockets_paused.fetch_add(1, Ordering::Relaxed);
                Admitted::Hold
            }
        }
    }

    /// The socket server (`None` before the node starts).
    pub fn socket(&self) -> Option<&SocketServer> {
        self.socket.get()
    }

    /// Creates the socket server (the first call only); its thread is started with the others.
    pub fn init_socket(&self, config: SocketConfig) -> std::io::Result<&SocketServer> {
        if let Some(s) = self.socket.get() {
            return Ok(s);
        }
        let server = SocketServer::new(config, Box::new(NodeSink))?;
        Ok(self.socket.get_or_init(|| server))
    }

    /// Live contexts (the node stops when this reaches 0).
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    pub(crate) fn uncount_context(&self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn grab(&self, handle: u32) -> Option<Arc<Context>> {
        self.handles.grab(handle)
    }

    /// Launches a service (upstream `skynet_context_new`); returns its handle.
    pub fn launch(&self, name: &str, parm: Option<&str>) -> Option<u32> {
        let module = match self.modules.query(name) {
            Ok(m) => m,
            Err(e) => {
                self.log_or_stderr(0, &e);
                return None;
            }
        };
        // A module that panics in create or init fails its launch; the panic must not unwind
        // through the launcher (a worker, or the main thread at boot) and leave a registered
        // context behind that never runs.
        let instance = match catch_unwind(AssertUnwindSafe(|| module.create())) {
            Ok(i) => i?,
            Err(e) => {
                self.log_or_stderr(
                    0,
                    &format!("error: launch {name}: create panicked: {}", panic_text(&*e)),
                );
                return None;
            }
        };
        let profile = self.profile;
        let (handle, ctx) = self
            .handles
            .register(|h| Arc::new(Context::new(h, name, instance, profile, self.queue_limits)));
        self.total.fetch_add(1, Ordering::AcqRel);
        let ok = match &ctx.instance {
            Some(i) => match catch_unwind(AssertUnwindSafe(|| i.init(&ctx, parm))) {
                Ok(ok) => ok,
                Err(e) => {
                    self.log(
                        handle,
                        format!("error: {name} init panicked: {}", panic_text(&*e)),
                    );
                    false
                }
            },
            None => false,
        };
        if ok {
            ctx.initialized.store(true, Ordering::Release);
            Counters::bump(&self.counters.launched);
            // Logged before the queue is scheduled: once it is, an idle worker is woken and the
            // service's first message (snlua: its start code) may log before this line would.
            self.log(handle, format!("LAUNCH {} {}", name, parm.unwrap_or("")));
            self.global.push(ctx.clone());
            Some(handle)
        } else {
            self.log(handle, format!("error: launch {name} FAILED"));
            // The last reference answers what was queued meanwhile (see `Drop for Context`).
            drop(ctx);
            drop(self.handles.retire(handle));
            None
        }
    }

    /// Answers a message that can no longer be delivered: PTYPE_ERROR, same session, no data,
    /// from the dead service back to the sender.
    fn drop_message(&self, dead: u32, msg: Message) {
        let Message {
            source, session, ..
        } = msg;
        self.send(None, dead, source, ptype::ERROR, session, Payload::empty());
    }

    /// Logs a refused PTYPE_SOCKET / PTYPE_SYSTEM send (see [`core_only`]).
    fn refuse_core_only(&self, ctx: Option<&Context>, source: u32, dest: &str, ty: i32) {
        let from = ctx.map_or(source, |c| c.handle);
        self.log(
            from,
            format!(
                "error: refused a message of type {} from :{source:08x} to {dest}: only the core sends that type",
                ty & 0xff
            ),
        );
    }

    /// Sends a message (upstream `skynet_send`, after the copy-mode copy). Returns the session,
    /// -1 if the destination is invalid, -2 if the payload is too large. The payload is freed
    /// on failure.
    pub fn send(
        &self,
        ctx: Option<&Context>,
        source: u32,
        dest: u32,
        ty: i32,
        session: i32,
        data: Payload,
    ) -> i32 {
        if core_only(ty) {
            self.refuse_core_only(ctx, source, &format!(":{dest:08x}"), ty);
            return -1;
        }
        if data.len() >= MESSAGE_SIZE_LIMIT {
            self.log(
                ctx.map_or(0, |c| c.handle),
                format!("error: The message to {dest:x} is too large"),
            );
            return -2;
        }
        let session = match (ty & PTYPE_TAG_ALLOCSESSION != 0, ctx) {
            (true, Some(c)) => c.new_session(),
            _ => session,
        };
        let source = match (source, ctx) {
            (0, Some(c)) => c.handle,
            (s, _) => s,
        };
        if dest == 0 {
            if !data.is_null() {
                self.log(source, "error: Destination address can't be 0");
                return -1;
            }
            return session;
        }
        let ty = (ty & 0xff) as u8;
        if self.harbor.is_remote(dest) {
            return self.harbor.send_remote(
                self,
                harbor::Destination::Handle(dest),
                source,
                ty,
                session,
                data,
            );
        }
        let msg = move || Message::new(source, session, ty, data);
        match self.admit(dest, msg, admission_of(ty.into())) {
            Some(_) => session,
            None => -1,
        }
    }

    /// Sends to a name: `:hex`, `.local` or a global name (through the harbor).
    pub fn send_name(
        &self,
        ctx: Option<&Context>,
        source: u32,
        dest: &str,
        ty: i32,
        session: i32,
        data: Payload,
    ) -> i32 {
        let source = match (source, ctx) {
            (0, Some(c)) => c.handle,
            (s, _) => s,
        };
        if core_only(ty) {
            self.refuse_core_only(ctx, source, dest, ty);
            return -1;
        }
        if let Some(hex) = dest.strip_prefix(':') {
            return self.send(ctx, source, parse_hex(hex), ty, session, data);
        }
        if let Some(name) = dest.strip_prefix('.') {
            return match self.handles.find_name(name) {
                Some(h) => self.send(ctx, source, h, ty, session, data),
                None => -1,
            };
        }
        if data.len() >= MESSAGE_SIZE_LIMIT {
            self.log(source, format!("error: The message to {dest} is too large"));
            return -2;
        }
        let session = match (ty & PTYPE_TAG_ALLOCSESSION != 0, ctx) {
            (true, Some(c)) => c.new_session(),
            _ => session,
        };
        let ty = (ty & 0xff) as u8;
        self.harbor.send_remote(
            self,
            harbor::Destination::Name(dest.as_bytes()),
            source,
            ty,
            session,
            data,
        )
    }

    /// Pushes a message straight into a local queue (timer, logger, SIGHUP); false if the
    /// service is gone (the message is dropped). A full queue refuses it as [`Node::send`]
    /// does, unless it is a reply or an error reply (timer wake-ups are replies).
    pub fn push(&self, handle: u32, msg: Message) -> bool {
        let admission = admission_of(msg.ty as u32);
        self.admit(handle, || msg, admission).is_some()
    }

    /// Pushes a PTYPE_SOCKET message from the socket thread; `None` if the service is gone.
    /// `data_of` is the TCP connection whose data this is: it is always queued, and
    /// [`Admitted::Hold`] tells the socket thread to stop reading it until the queue has
    /// drained to half its limits (the popping worker then asks the socket thread to resume
    /// it). A UDP datagram (`udp`) to a full queue is dropped (a connectionless sender cannot
    /// be slowed down); other socket events are always queued.
    pub fn push_socket(
        &self,
        handle: u32,
        msg: Message,
        data_of: Option<i32>,
        udp: bool,
    ) -> Option<Admitted> {
        let admission = match (data_of, udp) {
            (Some(id), _) => Admission::Socket(id),
            (None, true) => Admission::Limited,
            (None, false) => Admission::Always,
        };
        self.admit(handle, || msg, admission)
    }

    /// `skynet_queryname`: `:hex` or `.name`; global names are not resolvable in C.
    pub fn query_name(&self, ctx: Option<&Context>, name: &str) -> u32 {
        if let Some(hex) = name.strip_prefix(':') {
            parse_hex(hex)
        } else if let Some(n) = name.strip_prefix('.') {
            self.handles.find_name(n).unwrap_or(0)
        } else {
            self.log(
                ctx.map_or(0, |c| c.handle),
                format!("error: Don't support query global name {name}"),
            );
            0
        }
    }

    /// `skynet_isremote`.
    pub fn is_remote(&self, handle: u32) -> bool {
        self.harbor.is_remote(handle)
    }

    /// Writes a line to the `logger` service (upstream `skynet_error`). Dropped silently until a
    /// service named `logger` exists; the handle is cached once found.
    pub fn log(&self, source: u32, text: impl AsRef<[u8]>) {
        let logger = self.logger_handle();
        if logger != 0 {
            let msg = Message::new(
                source,
                0,
                ptype::TEXT as u8,
                Payload::copy_from(text.as_ref()),
            );
            self.push(logger, msg);
        }
    }

    /// Like [`Node::log`], but to stderr while there is no logger yet (start-up failures).
    pub fn log_or_stderr(&self, source: u32, text: &str) {
        if self.logger_handle() == 0 {
            eprintln!("[:{source:08x}] {text}");
        } else {
            self.log(source, text);
        }
    }

    fn logger_handle(&self) -> u32 {
        match self.logger.load(Ordering::Relaxed) {
            0 => {
                let h = self.handles.find_name("logger").unwrap_or(0);
                self.logger.store(h, Ordering::Relaxed);
                h
            }
            h => h,
        }
    }

    /// ABORT: retires every service. A service in the middle of a handler lives on until the
    /// handler returns; [`Node::abort_overdue`] deals with the ones that do not.
    pub fn abort(&self) {
        {
            let mut abort = self.abort.lock();
            if abort.is_none() {
                let services = self
                    .handles
                    .handles()
                    .into_iter()
                    .filter_map(|h| self.grab(h))
                    .map(|c| Arc::downgrade(&c))
                    .collect();
                *abort = Some(Abort {
                    began: Instant::now(),
                    services,
                    interrupted: false,
                });
            }
        }
        loop {
            let handles = self.handles.handles();
            if handles.is_empty() {
                break;
            }
            for h in handles {
                self.retire(h);
            }
        }
    }

    /// Whether ABORT was issued.
    pub fn is_aborting(&self) -> bool {
        self.abort.lock().is_some()
    }

    /// Polled by the timer thread while services are alive: after [`ABORT_INTERRUPT_AFTER`]
    /// interrupts the services still running a handler; true once [`ABORT_GIVE_UP_AFTER`] has
    /// passed (the node then stops without them). False when no ABORT was issued.
    pub fn abort_overdue(&self) -> bool {
        let mut busy = Vec::new();
        let overdue = {
            let mut abort = self.abort.lock();
            let Some(a) = abort.as_mut() else {
                return false;
            };
            let elapsed = a.began.elapsed();
            if elapsed >= ABORT_INTERRUPT_AFTER && !a.interrupted {
                a.interrupted = true;
                busy = a.services.iter().filter_map(Weak::upgrade).collect();
            }
            elapsed >= ABORT_GIVE_UP_AFTER
        };
        // The logger is retired too: these lines go to stderr.
        for c in busy {
            eprintln!(
                "skynet: ABORT: :{:08x} ({}) is still in a handler, interrupting it",
                c.handle,
                c.module_name()
            );
            c.signal(0);
        }
        overdue
    }

    /// Retires a service: tells the exit monitor, then removes the handle (EXIT/KILL).
    pub fn exit_service(&self, ctx: &Context, handle: u32) {
        let handle = if handle == 0 {
            ctx.error("KILL self");
            ctx.handle
        } else {
            ctx.error(format!("KILL :{handle:x}"));
            handle
        };
        let monitor = self.monitor_exit.load(Ordering::Relaxed);
        if monitor != 0 {
            self.send(
                Some(ctx),
                handle,
                monitor,
                ptype::CLIENT,
                0,
                Payload::empty(),
            );
        }
        self.retire(handle);
    }

    /// Removes a handle; its context ends when the last reference (a dispatch turn, a sender)
    /// is dropped.
    fn retire(&self, handle: u32) {
        if let Some(c) = self.handles.retire(handle) {
            c.retired.store(true, Ordering::Relaxed);
        }
    }

    /// One dispatch turn of a worker (upstream `skynet_context_message_dispatch`). `ctx` is
    /// the service kept from the previous turn; returns the service for the next turn.
    pub fn dispatch(
        &self,
        slot: &MonitorSlot,
        clock: &mut CpuClock,
        ctx: Option<Arc<Context>>,
        weight: i32,
    ) -> Option<Arc<Context>> {
        let ctx = match ctx {
            Some(c) => c,
            None => self.global.pop()?,
        };
        if ctx.retired.load(Ordering::Relaxed) {
            // Out of scheduling for good (its queue stays flagged as scheduled, so nothing
            // schedules it again); the last reference answers what is queued.
            drop(ctx);
            return self.global.pop();
        }
        let handle = ctx.handle;
        let q = &ctx.queue;
        let mut held = ctx.take_callback();
        let mut n = 1;
        let mut i = 0;
        let mut remaining = 0;
        while i < n {
            let Some(popped) = q.pop_counted() else {
                // The callback goes back before the queue leaves scheduling: once it has left,
                // another worker may schedule and dispatch it at once.
                ctx.put_back_callback(held);
                if q.leave_scheduling() {
                    drop(ctx);
                    return self.global.pop();
                }
                held = ctx.take_callback(); // a message arrived meanwhile: go on
                continue;
            };
            remaining = popped.remaining;
            BACKLOG.with(|b| b.set(remaining));
            if i == 0 && weight >= 0 {
                n = (remaining >> weight).max(1);
            }
            if let Some(len) = popped.overload {
                Counters::bump(&self.counters.overload_warnings);
                ctx.error(format!("error: May overload, message queue length = {len}"));
            }
            if let Some(ev) = popped.limits {
                self.limit_event(handle, &ev);
            }

            let msg = popped.message;
            slot.trigger(msg.source, handle);
            ctx.dispatch_message(msg, &mut held, clock);
            // Only the handler sees it: a release run by a drop below writes at once.
            BACKLOG.with(|b| b.set(0));
            slot.trigger(0, 0);
            i += 1;
            if ctx.retired.load(Ordering::Relaxed) {
                // The rest of the queue is answered with errors once the context is dropped.
                ctx.put_back_callback(held);
                drop(ctx);
                return self.global.pop();
            }
        }
        ctx.put_back_callback(held);
        // `remaining` may be stale (new messages), which only means no wake-up: the service
        // is on the global queue and a worker finds it.
        Some(self.global.rotate(ctx, remaining > 0))
    }

    /// Handle of this node's `harbor id << 24` part.
    pub fn harbor_bits(&self) -> u32 {
        u32::from(self.harbor_id) << HANDLE_REMOTE_SHIFT
    }
}

/// Message types whose payload carries a pointer that only the core produces: PTYPE_SOCKET
/// (the socket server's message points at the read buffer it hands over) and PTYPE_SYSTEM (the
/// harbor's remote message owns a buffer). Their receivers (socket services, the logger's
/// per-service log, the harbor service) read or free through that pointer, so one forged by a
/// service, a C module or a harbor peer would crash the node. The core pushes them straight
/// into queues ([`Node::push`]); every send path refuses them.
pub fn core_only(ty: i32) -> bool {
    matches!(ty & 0xff, ptype::SOCKET | ptype::SYSTEM)
}

/// `strtoul(s, NULL, 16)`: leading hex digits, garbage stops the parse, nothing parses as 0.
pub fn parse_hex(s: &str) -> u32 {
    let s = s.trim_start();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    u64::from_str_radix(&s[..digits.min(16)], 16)
        .map(|v| v as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parses_like_strtoul() {
        assert_eq!(parse_hex("1a"), 0x1a);
        assert_eq!(parse_hex("0000000A"), 10);
        assert_eq!(parse_hex("12zz"), 0x12);
        assert_eq!(parse_hex("zz"), 0);
        assert_eq!(parse_hex(""), 0);
    }

    /// Burns thread CPU time until `ns` more has been spent.
    fn spin_cpu(ns: u64) {
        let t0 = thread_time_ns();
        let mut x = 0u64;
        while thread_time_ns() - t0 < ns {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_message_as_long_as_a_window_is_charged_its_thread_cpu_time() {
        let mut c = CpuClock::default();
        let before = thread_time_ns();
        let start = c.start();
        spin_cpu(3 * CpuClock::WINDOW);
        let spent = c.finish();
        let after = thread_time_ns();
        assert!(start >= before && start <= after);
        assert!(spent >= 3 * CpuClock::WINDOW, "charged {spent} ns");
        assert!(
            spent <= after - before,
            "charged {spent} ns of {} ns",
            after - before
        );
    }

    #[test]
    fn a_window_charges_at_least_its_cpu_time_and_at_most_its_wall_time() {
        let mut c = CpuClock::default();
        let (cpu0, wall0) = (thread_time_ns(), monotonic_ns());
        let mut total = 0;
        // Short messages inside one window, then one that closes it.
        for _ in 0..20 {
            c.start();
            spin_cpu(10_000);
            total += c.finish();
        }
        c.start();
        spin_cpu(CpuClock::WINDOW);
        total += c.finish();
        let (cpu1, wall1) = (thread_time_ns(), monotonic_ns());
        // The window opened after cpu0 and closed before cpu1: its CPU time is at most
        // cpu1 - cpu0, and the spins alone are 1.2 ms of it.
        assert!(total >= 1_200_000, "charged {total} ns");
        assert!(
            total <= (cpu1 - cpu0).max(wall1 - wall0),
            "charged {total} ns"
        );
        assert_eq!(c.charged, 0, "the last message closed the window");
    }

    #[test]
    fn after_idle_the_next_message_starts_from_a_fresh_reading() {
        let mut c = CpuClock::default();
        c.start();
        c.finish();
        // Work between messages while the worker is not idle is charged to the next message
        // (it would start from the last reading, 2 ms back); after idle it is not.
        spin_cpu(2 * CpuClock::WINDOW);
        c.idle();
        let before = thread_time_ns();
        let start = c.start();
        assert!(start >= before, "start {start} < {before}");
    }
}
