//! Per-service message queues and the global run queue (upstream `skynet_mq`).
//!
//! The global queue schedules the queues' owners (the node schedules service contexts, see
//! [`Scheduled`]), so a worker that pops one holds the service itself.
//!
//! Invariants:
//! - A service queue's owner is on the global queue at most once: `in_global` is set when it
//!   is scheduled and cleared only by a pop that finds it empty (the queue then leaves
//!   scheduling), so a worker that holds an owner is the only one dispatching its queue.
//! - Messages are FIFO per queue.
//! - Idle workers park, each on its own flag, listed under the run queue's lock; a wake-up
//!   takes one off the list there and unparks it after. A worker wakes one only for a backlog
//!   ([`BACKLOG_WAKE`] services waiting beyond the one it takes next, whether it schedules them
//!   or finds them when it takes its next service) or when the service it rotates out still
//!   has work: what it schedules otherwise it takes itself after its turn (upstream wakes
//!   workers only from the timer and socket threads). Other threads wake one for queues
//!   beyond the awake workers. The timer thread wakes one once per tick only if the workers
//!   took fewer queues during the tick than are waiting now (they are held up in long turns,
//!   or stuck), or if every worker sleeps (upstream wakes one on every tick, which moves a
//!   hand-off chain to another core 400 times a second and wakes an idle node as often).
//! - A queue counts its messages and the payload bytes they hold (for a socket message, the
//!   data it points to as well). With [`Admission::Limited`] a push to a queue at or over its
//!   [`QueueLimits`] is refused; the first refusal of a crossing is reported once, and the pop
//!   that brings the queue under its limits again reports that once too.

use crate::payload::Payload;
use crate::ptype;
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Pending length above which the first overload warning fires; it doubles after each warning.
pub const OVERLOAD_THRESHOLD: usize = 1024;
/// Services left waiting on the run queue, once a worker has taken its next one, at which it
/// wakes a sleeping worker. Lower wakes a sleeper for every short hand-off chain (a spawn
/// goes caller -> launcher -> new service -> launcher -> caller, two or three services
/// queued at once): measured on 2 cores, the former rule (a worker woke a sleeper as soon as
/// a second service waited) took 7,300 context switches for 2,000 spawns and kills against
/// upstream's 3,100 and spawned 20% slower, and a backlog of 1 or 2 spawned as slowly. A
/// broadcast to many services still wakes help at once.
pub const BACKLOG_WAKE: usize = 3;
/// Slots a new queue starts with (it doubles as needed and keeps what it reached): most
/// services never hold more than a few messages at once, and each slot costs every service.
const INITIAL_CAPACITY: usize = 8;

/// Default `queue_limit`: messages one service queue may hold.
pub const DEFAULT_QUEUE_LIMIT: usize = 1_000_000;
/// Default `queue_bytes_limit`: payload bytes one service queue may hold (1 GiB).
pub const DEFAULT_QUEUE_BYTES_LIMIT: usize = 1 << 30;

/// What one queue may hold; 0 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    pub messages: usize,
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            messages: DEFAULT_QUEUE_LIMIT,
            bytes: DEFAULT_QUEUE_BYTES_LIMIT,
        }
    }
}

impl QueueLimits {
    pub const UNLIMITED: QueueLimits = QueueLimits {
        messages: 0,
        bytes: 0,
    };

    /// At or over a limit: a limited push is refused.
    fn reached(&self, len: usize, bytes: usize) -> bool {
        (self.messages != 0 && len >= self.messages) || (self.bytes != 0 && bytes >= self.bytes)
    }

    /// At or under half of every limit: paused sockets may read again.
    fn below_half(&self, len: usize, bytes: usize) -> bool {
        (self.messages == 0 || len <= self.messages / 2)
            && (self.bytes == 0 || bytes <= self.bytes / 2)
    }
}

/// How a push treats a queue's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Never refused (replies, error replies, timer wake-ups, the core's own messages).
    Always,
    /// Refused when the queue is at or over a limit.
    Limited,
    /// Never refused; if the queue is at or over a limit, socket `id` is recorded to be
    /// resumed once the queue has drained to half its limits (the caller stops reading it).
    Socket(i32),
}

/// What a push to a queue at or over its limits did.
#[derive(Debug)]
pub enum Pushed {
    /// Queued at or over a limit: the socket given with [`Admission::Socket`] must pause.
    QueuedPause,
    /// Not queued: the message is handed back.
    Refused(Message),
}

/// A push that found the queue full: what it did, and, on the first such push since the
/// queue was last under its limits, the queue's length and bytes at that moment (for the one
/// log line).
#[derive(Debug)]
pub struct Overfull {
    pub pushed: Pushed,
    pub crossed: Option<(usize, usize)>,
    /// The queue was idle: its owner is scheduled.
    schedule: bool,
}

/// A popped message and the queue's state right after the pop.
pub struct Popped {
    pub message: Message,
    pub remaining: usize,
    pub overload: Option<usize>,
    /// What this pop changed about a full queue, if anything (rare: boxed, to keep the common
    /// pop small).
    pub limits: Option<Box<LimitEvent>>,
}

/// A pop that brought a full queue back under its limits, or drained it to half of them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LimitEvent {
    /// The queue went back under its limits after a crossing: the number of pushes refused
    /// meanwhile.
    pub recovered: Option<u64>,
    /// Sockets paused by this queue, to be resumed (the queue drained to half its limits).
    pub resume: Vec<i32>,
}

/// The pop side of a queue that is full or has paused sockets: see [`LimitEvent`].
#[cold]
#[inline(never)]
fn limit_event(s: &mut QueueState, remaining: usize) -> Option<Box<LimitEvent>> {
    let mut ev = LimitEvent::default();
    if s.full && !s.limits.reached(remaining, s.bytes) {
        s.full = false;
        ev.recovered = Some(std::mem::take(&mut s.refused_in_crossing));
    }
    if !s.paused.is_empty() && s.limits.below_half(remaining, s.bytes) {
        ev.resume = std::mem::take(&mut s.paused);
    }
    (ev != LimitEvent::default()).then(|| Box::new(ev))
}

/// Payload bytes a message holds: its payload, and for socket data the buffer it points to
/// (whose size is the `ud` field of the socket message).
pub fn message_bytes(ty: u32, data: &Payload) -> usize {
    let mut n = data.len();
    if ty as i32 == ptype::SOCKET {
        if let Some(head) = data.as_slice().get(..12) {
            let field =
                |i: usize| i32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            // DATA (1) and UDP (6) carry a buffer of `ud` bytes.
            if matches!(field(0), 1 | 6) {
                n += usize::try_from(field(8)).unwrap_or(0);
            }
        }
    }
    n
}

/// One message in a service queue. The type is the low 8 bits of what the sender gave.
///
/// `ty` is a whole word although it holds 8 bits, so that the message has no padding: a
/// move copies padding together with the field next to it as one wide load, and a wide load
/// over a narrower store just made (the field, written alone when the message was built)
/// cannot be forwarded from the store buffer; the CPU stalls until the store retires. As a
/// `u8`, then as a `u32`, that stall at every move of every message was the largest single
/// cost of a dispatch turn and of a send (perf annotate, C ping-pong).
#[derive(Debug)]
#[repr(C)]
pub struct Message {
    pub data: Payload,
    pub source: u32,
    pub session: i32,
    pub ty: u64,
}

impl Message {
    /// Moves the message out, leaving one with no data in its place.
    pub fn take(&mut self) -> Message {
        std::mem::replace(self, Message::new(0, 0, 0, Payload::empty()))
    }

    /// Takes the payload, leaving none (what a handler that owns the data from now on does).
    pub fn take_data(&mut self) -> Payload {
        std::mem::replace(&mut self.data, Payload::empty())
    }

    pub fn new(source: u32, session: i32, ty: u8, data: Payload) -> Message {
        Message {
            source,
            session,
            ty: ty.into(),
            data,
        }
    }
}

struct QueueState {
    messages: VecDeque<Message>,
    in_global: bool,
    /// Recorded length for the next overload warning (0 = none).
    overload: usize,
    threshold: usize,
    /// Payload bytes held (see [`message_bytes`]).
    bytes: usize,
    limits: QueueLimits,
    /// Set by the first push that found the queue full; cleared by the pop that brings it
    /// under its limits again.
    full: bool,
    /// Pushes refused since `full` was set.
    refused_in_crossing: u64,
    /// Pushes refused over the queue's life.
    refused: u64,
    /// Sockets paused because of this queue, resumed once it drained to half its limits.
    paused: Vec<i32>,
}

/// A service's message queue.
pub struct MessageQueue {
    state: Mutex<QueueState>,
}

impl Default for MessageQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageQueue {
    /// A new queue, flagged as already scheduled: its owner joins the global queue only when
    /// its service finished init (see [`GlobalQueue::push`]).
    pub fn new() -> MessageQueue {
        MessageQueue {
            state: Mutex::new(QueueState {
                messages: VecDeque::with_capacity(INITIAL_CAPACITY),
                in_global: true,
                overload: 0,
                threshold: OVERLOAD_THRESHOLD,
                bytes: 0,
                limits: QueueLimits::UNLIMITED,
                full: false,
                refused_in_crossing: 0,
                refused: 0,
                paused: Vec::new(),
            }),
        }
    }

    /// A new queue with `limits` (see [`Self::new`]).
    pub fn with_limits(limits: QueueLimits) -> MessageQueue {
        let q = Self::new();
        q.set_limits(limits);
        q
    }

    pub fn limits(&self) -> QueueLimits {
        self.state.lock().limits
    }

    /// Changes the limits; the crossing state is re-evaluated at the next push or pop.
    pub fn set_limits(&self, limits: QueueLimits) {
        self.state.lock().limits = limits;
    }

    /// Payload bytes held (see [`message_bytes`]).
    pub fn bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Pushes refused over the queue's life.
    pub fn refused(&self) -> u64 {
        self.state.lock().refused
    }

    pub fn len(&self) -> usize {
        self.state.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a message as `admission` allows. `Ok(true)`: queued, and the queue was idle, so
    /// the caller must schedule its owner (see [`GlobalQueue::admit`]). A push to a full queue
    /// answers `Err` (rare: boxed, so that the common answer fits in a register).
    #[inline(always)]
    fn enqueue(&self, msg: Message, admission: Admission) -> Result<bool, Box<Overfull>> {
        let weight = message_bytes(msg.ty as u32, &msg.data);
        let mut s = self.state.lock();
        if admission != Admission::Always && s.limits.reached(s.messages.len(), s.bytes) {
            return Self::enqueue_full(s, msg, admission, weight);
        }
        s.messages.push_back(msg);
        s.bytes += weight;
        Ok(!std::mem::replace(&mut s.in_global, true))
    }

    /// [`Self::enqueue`] to a queue at or over a limit (`s` is its locked state).
    #[cold]
    #[inline(never)]
    fn enqueue_full(
        mut s: parking_lot::MutexGuard<'_, QueueState>,
        msg: Message,
        admission: Admission,
        weight: usize,
    ) -> Result<bool, Box<Overfull>> {
        let mut crossed = None;
        if !std::mem::replace(&mut s.full, true) {
            s.refused_in_crossing = 0;
            crossed = Some((s.messages.len(), s.bytes));
        }
        let Admission::Socket(id) = admission else {
            s.refused_in_crossing += 1;
            s.refused += 1;
            return Err(Box::new(Overfull {
                pushed: Pushed::Refused(msg),
                crossed,
                schedule: false,
            }));
        };
        if !s.paused.contains(&id) {
            s.paused.push(id);
        }
        s.messages.push_back(msg);
        s.bytes += weight;
        let schedule = !std::mem::replace(&mut s.in_global, true);
        Err(Box::new(Overfull {
            pushed: Pushed::QueuedPause,
            crossed,
            schedule,
        }))
    }

    /// Pops the head message. An empty pop takes the queue out of scheduling and resets the
    /// overload threshold.
    pub fn pop(&self) -> Option<Message> {
        match self.pop_counted() {
            Some(p) => Some(p.message),
            None => {
                self.leave_scheduling();
                None
            }
        }
    }

    /// Takes an empty queue out of scheduling; false if a message arrived meanwhile (then the
    /// caller still owns the queue and must go on dispatching it).
    pub fn leave_scheduling(&self) -> bool {
        let mut s = self.state.lock();
        if s.messages.is_empty() {
            s.in_global = false;
            true
        } else {
            false
        }
    }

    /// Pops the head message with what dispatch needs to know in the same lock: how many
    /// remain, and the overload length to warn about (read and cleared). An empty pop resets
    /// the overload threshold but leaves the queue scheduled: see [`Self::leave_scheduling`].
    #[inline]
    pub fn pop_counted(&self) -> Option<Popped> {
        let mut s = self.state.lock();
        match s.messages.pop_front() {
            Some(message) => {
                let remaining = s.messages.len();
                s.bytes = s
                    .bytes
                    .saturating_sub(message_bytes(message.ty as u32, &message.data));
                while remaining > s.threshold {
                    s.overload = remaining;
                    s.threshold *= 2;
                }
                let overload = std::mem::take(&mut s.overload);
                let limits = if s.full || !s.paused.is_empty() {
                    limit_event(&mut s, remaining)
                } else {
                    None
                };
                Some(Popped {
                    message,
                    remaining,
                    overload: (overload != 0).then_some(overload),
                    limits,
                })
            }
            None => {
                s.threshold = OVERLOAD_THRESHOLD;
                None
            }
        }
    }
}

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    /// The calling thread's parker, made at its first park.
    static PARKER: Arc<Parker> = Arc::new(Parker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
}

/// Wakes the sleeper a scheduler took off the list, if any (after releasing the run lock).
fn wake(sleeper: Option<Arc<Parker>>) {
    if let Some(s) = sleeper {
        s.wake();
    }
}

/// Marks the calling thread as a worker (it looks at the global queue after each turn).
pub fn set_worker_thread() {
    IS_WORKER.with(|w| w.set(true));
}

/// What the run queue schedules: a handle on something that owns a message queue (the node
/// schedules its service contexts, so a worker that pops one holds the service itself and
/// needs no handle lookup; the unit tests schedule bare queues).
pub trait Scheduled: Clone {
    fn queue(&self) -> &MessageQueue;
}

impl Scheduled for Arc<MessageQueue> {
    fn queue(&self) -> &MessageQueue {
        self
    }
}

struct RunQueue<T> {
    queues: VecDeque<T>,
    /// Workers parked or about to park and not yet woken. Kept under the same lock as
    /// `queues`, so a scheduler either sees a sleeper or the sleeper sees its queue; a
    /// scheduler that wakes one takes it off this list under that lock, so no other wakes it
    /// again and the rules below count only workers still asleep.
    sleepers: Vec<Arc<Parker>>,
    /// Worker threads registered with [`GlobalQueue::add_worker`] (0: unknown).
    workers: usize,
    /// Queues taken by workers so far (wrapping): the timer thread's sign of progress.
    taken: u64,
}

impl<T> RunQueue<T> {
    fn sleeping(&self) -> usize {
        self.sleepers.len()
    }

    /// Takes the sleeper to wake if `wake` (the most recent one: its cache is the warmest).
    fn take_sleeper(&mut self, wake: bool) -> Option<Arc<Parker>> {
        if wake {
            self.sleepers.pop()
        } else {
            None
        }
    }

    /// Whether a non-worker thread (socket thread) should wake a sleeper for the waiting
    /// queues: only if there are more of them than workers that are awake (an awake worker
    /// looks at the run queue before it parks). Without registered workers: any sleeper.
    fn needs_wake(&self) -> bool {
        let sleeping = self.sleeping();
        sleeping > 0
            && (self.workers == 0 || self.queues.len() > self.workers.saturating_sub(sleeping))
    }

    /// Whether the timer thread should wake a sleeper for the waiting queues, given the
    /// queues taken during the last tick: fewer than are waiting now (at that pace the awake
    /// workers would not reach the last of them within a tick), or every worker sleeps.
    fn stalled_needs_wake(&self, taken_in_tick: u64) -> bool {
        let waiting = self.queues.len() as u64;
        let sleeping = self.sleeping();
        sleeping > 0 && waiting > 0 && (taken_in_tick < waiting || sleeping >= self.workers)
    }

    /// Whether a worker should wake a sleeper for what waits beyond the service it takes
    /// next: a backlog of [`BACKLOG_WAKE`] or more. `next_taken`: it has taken that one
    /// already (pop, rotate); otherwise it is still on the run queue (a push: the worker
    /// takes the first waiting one after its turn).
    fn backlog_needs_wake(&self, next_taken: bool) -> bool {
        let beyond_next = self.queues.len().saturating_sub(usize::from(!next_taken));
        self.sleeping() > 0 && beyond_next >= BACKLOG_WAKE
    }
}

/// How a parked worker is woken: its own flag and thread, so a scheduler wakes one sleeper
/// with an atomic store and an unpark (a futex wake only if it really sleeps), holding no lock.
/// A shared mutex and condition variable made every wake-up contend with the sleepers going
/// to sleep and coming back (the socket thread spun on that lock for a third of its wake-ups
/// under the echo load).
struct Parker {
    thread: std::thread::Thread,
    /// Set by the scheduler that took this parker off the sleepers; cleared (under the run
    /// lock) when the worker parks again. `park` returns only once it is set, so a spurious
    /// or stale unpark only costs one more loop.
    woken: AtomicBool,
}

impl Parker {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// The global run queue plus the idle-worker parking lot (the sleepers, under the same lock).
pub struct GlobalQueue<T = Arc<MessageQueue>> {
    run: Mutex<RunQueue<T>>,
    /// Only for threads that sleep until quit (monitor), with `quit_wait`.
    quit_lock: Mutex<()>,
    quit_wait: Condvar,
    quit: AtomicBool,
}

impl<T: Scheduled> Default for GlobalQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scheduled> GlobalQueue<T> {
    pub fn new() -> GlobalQueue<T> {
        GlobalQueue {
            run: Mutex::new(RunQueue {
                queues: VecDeque::new(),
                sleepers: Vec::new(),
                workers: 0,
                taken: 0,
            }),
            quit_lock: Mutex::new(()),
            quit_wait: Condvar::new(),
            quit: AtomicBool::new(false),
        }
    }

    /// Registers a worker thread (counted for the wake-up rule of non-worker threads).
    pub fn add_worker(&self) {
        self.run.lock().workers += 1;
    }

    /// Appends a message to `owner`'s queue as `admission` allows, scheduling `owner` if its
    /// queue was idle. `Err` for a queue at or over its limits: the message was refused (and is
    /// handed back) or, for socket data, queued all the same (see [`Pushed`]).
    // Inlined (as `enqueue`): a message passed by pointer is reloaded with wide loads over
    // the narrow stores that just built it, which stalls (see `Message`).
    #[inline(always)]
    pub fn admit(
        &self,
        owner: &T,
        msg: Message,
        admission: Admission,
    ) -> Result<(), Box<Overfull>> {
        let pushed = owner.queue().enqueue(msg, admission);
        let schedule = match &pushed {
            Ok(idle) => *idle,
            Err(full) => full.schedule,
        };
        if schedule {
            self.push(owner.clone());
        }
        pushed.map(|_| ())
    }

    /// Appends a message to `owner`'s queue whatever its limits, scheduling `owner` if idle.
    pub fn push_message(&self, owner: &T, msg: Message) {
        let _always_queued = self.admit(owner, msg, Admission::Always);
    }

    /// Schedules a service queue. A worker wakes a sleeper only for a backlog beyond the queue
    /// it will take itself after its turn: that keeps ping-pong traffic and hand-off chains on
    /// one thread without a futex call per message, and a broadcast gets help at once.
    /// Another thread wakes one when the waiting queues outnumber the awake workers.
    pub fn push(&self, q: T) {
        let is_worker = IS_WORKER.with(|w| w.get());
        let sleeper = {
            let mut r = self.run.lock();
            r.queues.push_back(q);
            let wake = if is_worker {
                r.backlog_needs_wake(false)
            } else {
                r.needs_wake()
            };
            r.take_sleeper(wake)
        };
        wake(sleeper);
    }

    /// After a worker's turn on `q`: if other queues wait, `q` goes to the back and the next
    /// one is returned (one lock for both); otherwise the worker keeps `q` (returned as is).
    /// Wakes a sleeper if `q` still has work (`has_work`: two services now want a worker) or
    /// a backlog is left.
    pub fn rotate(&self, q: T, has_work: bool) -> T {
        let (next, sleeper) = {
            let mut r = self.run.lock();
            match r.queues.pop_front() {
                Some(next) => {
                    r.taken = r.taken.wrapping_add(1);
                    let wake = r.backlog_needs_wake(true) || (has_work && r.sleeping() > 0);
                    r.queues.push_back(q);
                    (next, r.take_sleeper(wake))
                }
                None => return q,
            }
        };
        wake(sleeper);
        next
    }

    /// Takes the next scheduled owner (a worker looking for work); wakes a sleeper if a
    /// backlog is left behind.
    pub fn pop(&self) -> Option<T> {
        let (q, sleeper) = {
            let mut r = self.run.lock();
            let q = r.queues.pop_front();
            r.taken = r.taken.wrapping_add(u64::from(q.is_some()));
            let wake = r.backlog_needs_wake(true);
            (q, r.take_sleeper(wake))
        };
        wake(sleeper);
        q
    }

    pub fn is_empty(&self) -> bool {
        self.run.lock().queues.is_empty()
    }

    /// Blocks the calling worker until a scheduler wakes it (work may be there) or the node
    /// quits.
    pub fn park(&self) {
        let me = PARKER.with(Arc::clone);
        {
            let mut r = self.run.lock();
            if !r.queues.is_empty() || self.is_quit() {
                return;
            }
            // Not on the list (a woken parker was taken off it): nobody can set the flag
            // between this store and the push.
            me.woken.store(false, Ordering::Relaxed);
            r.sleepers.push(me.clone());
        }
        // quit() wakes every sleeper, so the flag covers it too.
        while !me.woken.load(Ordering::Acquire) {
            std::thread::park();
        }
    }

    /// After a batch of pushes from a non-worker thread (the socket thread): wakes one sleeping
    /// worker if the waiting queues outnumber the awake workers.
    pub fn wake_for_queued(&self) {
        let sleeper = {
            let mut r = self.run.lock();
            let wake = r.needs_wake();
            r.take_sleeper(wake)
        };
        wake(sleeper);
    }

    /// The timer thread's check, once per tick (`last_taken` is its own record between
    /// ticks): wakes a sleeping worker if the workers took fewer queues since the previous
    /// tick than are waiting now (the awake ones are held up in long turns, or stuck), or if
    /// every worker sleeps. Workers that keep taking queues faster get to the waiting ones in
    /// turn: waking another one then would only move the work to another core (upstream
    /// wakes one on every tick).
    pub fn wake_if_stalled(&self, last_taken: &mut u64) {
        let sleeper = {
            let mut r = self.run.lock();
            let taken_in_tick = r.taken.wrapping_sub(*last_taken);
            *last_taken = r.taken;
            let wake = r.stalled_needs_wake(taken_in_tick);
            r.take_sleeper(wake)
        };
        wake(sleeper);
    }

    pub fn sleeping(&self) -> usize {
        self.run.lock().sleeping()
    }

    /// Tells every worker to finish.
    pub fn quit(&self) {
        self.quit.store(true, Ordering::Release);
        // A worker that saw no quit under the run lock is on the list by now.
        let sleepers = std::mem::take(&mut self.run.lock().sleepers);
        for s in sleepers {
            s.wake();
        }
        let _g = self.quit_lock.lock();
        self.quit_wait.notify_all();
    }

    /// Sleeps up to `d`, returning early (true) when the node quits.
    pub fn sleep_unless_quit(&self, d: std::time::Duration) -> bool {
        let mut g = self.quit_lock.lock();
        if !self.is_quit() {
            self.quit_wait.wait_for(&mut g, d);
        }
        self.is_quit()
    }

    pub fn is_quit(&self) -> bool {
        self.quit.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: i32) -> Message {
        Message::new(1, i, 0, Payload::empty())
    }

    #[test]
    fn new_queue_is_not_scheduled_until_popped_empty() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::new());
        g.push_message(&q, msg(1));
        assert!(g.is_empty(), "a queue in init must not be scheduled");
        assert_eq!(q.pop().unwrap().session, 1);
        assert!(q.pop().is_none());
        g.push_message(&q, msg(2));
        g.push_message(&q, msg(3));
        assert!(Arc::ptr_eq(&g.pop().unwrap(), &q));
        assert!(g.pop().is_none(), "scheduled once only");
    }

    /// A run queue with `queues` empty service queues waiting.
    fn run_queue(queues: usize, sleeping: usize, workers: usize) -> RunQueue<Arc<MessageQueue>> {
        RunQueue {
            queues: (0..queues).map(|_| Arc::new(MessageQueue::new())).collect(),
            sleepers: (0..sleeping).map(|_| PARKER.with(Arc::clone)).collect(),
            workers,
            taken: 0,
        }
    }

    /// A global queue with two registered workers, one of them parked (its thread ends when
    /// it is woken).
    fn one_of_two_workers_parked() -> (
        Arc<GlobalQueue<Arc<MessageQueue>>>,
        std::thread::JoinHandle<()>,
    ) {
        let g = Arc::new(GlobalQueue::<Arc<MessageQueue>>::new());
        g.add_worker();
        g.add_worker();
        let sleeper = {
            let g = g.clone();
            std::thread::spawn(move || {
                set_worker_thread();
                g.park();
            })
        };
        while g.sleeping() == 0 {
            std::thread::yield_now();
        }
        (g, sleeper)
    }

    #[test]
    fn non_workers_wake_a_sleeper_only_for_queues_beyond_the_awake_workers() {
        let r = run_queue;
        // Nobody sleeps: nobody to wake.
        assert!(!r(3, 0, 2).needs_wake());
        // Every worker sleeps: one queue is enough.
        assert!(r(1, 2, 2).needs_wake());
        // One worker awake takes one waiting queue after its turn; a second queue needs help.
        assert!(!r(1, 1, 2).needs_wake());
        assert!(r(2, 1, 2).needs_wake());
        // Nothing waiting.
        assert!(!r(0, 2, 2).needs_wake());
        // Workers not registered (unit tests, embedders): any sleeper is woken.
        assert!(r(1, 1, 0).needs_wake());
    }

    #[test]
    fn workers_wake_a_sleeper_for_a_backlog_only() {
        let r = |queues, sleeping| run_queue(queues, sleeping, 2);
        // A hand-off chain leaves one or two services behind: the worker takes them itself.
        assert!(!r(BACKLOG_WAKE - 1, 1).backlog_needs_wake(true));
        assert!(r(BACKLOG_WAKE, 1).backlog_needs_wake(true));
        // At a push the first waiting one is the worker's own next: one more is needed.
        assert!(!r(BACKLOG_WAKE, 1).backlog_needs_wake(false));
        assert!(r(BACKLOG_WAKE + 1, 1).backlog_needs_wake(false));
        assert!(
            !r(BACKLOG_WAKE + 5, 0).backlog_needs_wake(true),
            "nobody to wake"
        );
    }

    #[test]
    fn the_timer_wakes_a_sleeper_only_for_queues_the_workers_are_too_slow_for() {
        let r = |queues, sleeping| run_queue(queues, sleeping, 2);
        // The awake worker took as many queues during the tick as wait now (a ping-pong takes
        // thousands): it gets to them in turn.
        assert!(!r(1, 1).stalled_needs_wake(1));
        assert!(!r(3, 1).stalled_needs_wake(5000));
        // Fewer taken than waiting (long turns), or none (stuck): wake one.
        assert!(r(3, 1).stalled_needs_wake(2));
        assert!(r(1, 1).stalled_needs_wake(0));
        // Every worker sleeps: wake one whatever happened during the tick.
        assert!(r(1, 2).stalled_needs_wake(5000));
        // Nothing waits, or nobody sleeps: nothing to do (an idle node stays asleep).
        assert!(!r(0, 2).stalled_needs_wake(0));
        assert!(!r(2, 0).stalled_needs_wake(0));
    }

    #[test]
    fn a_queue_left_waiting_for_a_whole_tick_wakes_a_sleeper() {
        let (g, sleeper) = one_of_two_workers_parked();
        let asleep_after_a_while = |g: &GlobalQueue<Arc<MessageQueue>>| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            g.sleeping() == 1
        };
        let as_worker = |f: Box<dyn FnOnce() + Send>| {
            std::thread::spawn(move || {
                set_worker_thread();
                f();
            })
            .join()
            .unwrap();
        };
        let mut last = 0;
        // The awake worker takes a queue and schedules another one: no wake-up at the push,
        // and none at the tick, since it took as many as wait now.
        let held = Arc::new(MessageQueue::new());
        {
            let (g, held) = (g.clone(), held.clone());
            as_worker(Box::new(move || {
                g.push(held);
                assert!(g.pop().is_some());
                g.push(Arc::new(MessageQueue::new()));
            }));
        }
        g.wake_if_stalled(&mut last);
        assert!(
            asleep_after_a_while(&g),
            "a tick with progress woke a sleeper"
        );
        // A rotation takes the waiting queue and leaves the held one waiting (a ping-pong):
        // progress again.
        {
            let g = g.clone();
            as_worker(Box::new(move || {
                g.rotate(held, false);
            }));
        }
        g.wake_if_stalled(&mut last);
        assert!(
            asleep_after_a_while(&g),
            "a tick after a rotation woke a sleeper"
        );
        // The next tick finds a queue still waiting and nothing taken since: it wakes one.
        g.wake_if_stalled(&mut last);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while g.sleeping() != 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(g.sleeping(), 0, "a stalled tick left the sleeper asleep");
        sleeper.join().unwrap();
    }

    #[test]
    fn a_worker_push_wakes_nobody_until_a_backlog_and_a_backlog_pop_does() {
        let (g, sleeper) = one_of_two_workers_parked();
        // As many as the worker takes next plus a backlog short of one.
        let queues: Vec<_> = (0..BACKLOG_WAKE)
            .map(|_| Arc::new(MessageQueue::new()))
            .collect();
        let pusher = {
            let (g, queues) = (g.clone(), queues.clone());
            std::thread::spawn(move || {
                set_worker_thread();
                for q in queues {
                    g.push(q);
                }
            })
        };
        pusher.join().unwrap();
        // The sleeper stays asleep: nothing woke it (it rechecks only when notified).
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(g.sleeping(), 1, "a worker's pushes woke a sleeper");
        // Taking one leaves BACKLOG_WAKE - 1: still nobody to wake.
        assert!(g.pop().is_some());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(g.sleeping(), 1, "a pop woke a sleeper short of a backlog");
        // Two more pushes from a worker: BACKLOG_WAKE + 1 waiting, one for the pusher and a
        // backlog beyond it: the sleeper is woken.
        let pusher = {
            let g = g.clone();
            std::thread::spawn(move || {
                set_worker_thread();
                g.push(Arc::new(MessageQueue::new()));
                g.push(Arc::new(MessageQueue::new()));
            })
        };
        pusher.join().unwrap();
        sleeper.join().unwrap();
        assert_eq!(g.sleeping(), 0);
        // A pop that leaves a backlog wakes a sleeper too (queued here without any wake-up).
        while g.pop().is_some() {}
        let sleeper = {
            let g = g.clone();
            std::thread::spawn(move || g.park())
        };
        while g.sleeping() == 0 {
            std::thread::yield_now();
        }
        for _ in 0..=BACKLOG_WAKE {
            g.run.lock().queues.push_back(Arc::new(MessageQueue::new()));
        }
        assert!(g.pop().is_some());
        sleeper.join().unwrap();
    }

    #[test]
    fn no_wake_up_is_lost_between_parking_workers_and_a_pushing_thread() {
        use std::sync::atomic::AtomicUsize;
        use std::time::{Duration, Instant};
        let g = Arc::new(GlobalQueue::<Arc<MessageQueue>>::new());
        let taken = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                g.add_worker();
                let (g, taken) = (g.clone(), taken.clone());
                std::thread::spawn(move || {
                    set_worker_thread();
                    while !g.is_quit() {
                        match g.pop() {
                            Some(_) => {
                                taken.fetch_add(1, Ordering::Relaxed);
                            }
                            None => g.park(),
                        }
                    }
                })
            })
            .collect();
        // One queue at a time from a non-worker thread, each taken before the next: the
        // workers go to sleep between pushes, so every push races a worker parking.
        for i in 0..20_000 {
            g.push(Arc::new(MessageQueue::new()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while taken.load(Ordering::Relaxed) <= i {
                assert!(
                    Instant::now() < deadline,
                    "queue {i} was never taken: a wake-up was lost"
                );
                std::thread::yield_now();
            }
        }
        g.quit();
        for w in workers {
            w.join().unwrap();
        }
    }

    #[test]
    fn quit_wakes_every_parked_worker_and_later_parks_return_at_once() {
        let g = Arc::new(GlobalQueue::<Arc<MessageQueue>>::new());
        let sleepers: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || g.park())
            })
            .collect();
        while g.sleeping() < 4 {
            std::thread::yield_now();
        }
        g.quit();
        assert_eq!(g.sleeping(), 0, "quit left sleepers on the list");
        for s in sleepers {
            s.join().unwrap();
        }
        g.park();
    }

    #[test]
    fn registered_workers_are_counted() {
        let g = GlobalQueue::new();
        g.add_worker();
        g.add_worker();
        assert_eq!(g.run.lock().workers, 2);
        let q = Arc::new(MessageQueue::new());
        g.push(q.clone());
        // No sleeper: push notifies nobody, the queue waits for a worker's next look.
        assert_eq!(g.sleeping(), 0);
        assert!(Arc::ptr_eq(&g.pop().unwrap(), &q));
    }

    #[test]
    fn overload_warns_at_doubling_thresholds() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::new());
        for i in 0..5000 {
            g.push_message(&q, msg(i));
        }
        let mut warnings = Vec::new();
        while let Some(p) = q.pop_counted() {
            warnings.extend(p.overload);
        }
        assert_eq!(warnings, vec![4999]);
        // After an empty pop the threshold is back to 1024.
        for i in 0..1100 {
            g.push_message(&q, msg(i));
        }
        assert_eq!(q.pop_counted().unwrap().overload, Some(1099));
        assert_eq!(q.pop_counted().unwrap().overload, None);
    }

    fn recovered(q: &MessageQueue) -> Option<u64> {
        q.pop_counted().unwrap().limits.and_then(|l| l.recovered)
    }

    /// What a push did, as the tests look at it (`pushed: None`: queued under the limits).
    struct Out {
        pushed: Option<Pushed>,
        crossed: Option<(usize, usize)>,
    }

    fn out(r: Result<(), Box<Overfull>>) -> Out {
        match r {
            Ok(()) => Out {
                pushed: None,
                crossed: None,
            },
            Err(f) => Out {
                pushed: Some(f.pushed),
                crossed: f.crossed,
            },
        }
    }

    fn limited(q: &Arc<MessageQueue>, g: &GlobalQueue, m: Message) -> Out {
        out(g.admit(q, m, Admission::Limited))
    }

    #[test]
    fn limited_push_is_refused_at_the_message_limit_once_per_crossing() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::with_limits(QueueLimits {
            messages: 4,
            bytes: 0,
        }));
        for i in 0..4 {
            let out = limited(&q, &g, msg(i));
            assert!(out.pushed.is_none() && out.crossed.is_none());
        }
        let first = limited(&q, &g, msg(4));
        assert!(matches!(first.pushed, Some(Pushed::Refused(ref m)) if m.session == 4));
        assert_eq!(first.crossed, Some((4, 0)));
        for i in 5..10 {
            let out = limited(&q, &g, msg(i));
            assert!(matches!(out.pushed, Some(Pushed::Refused(_))));
            assert!(out.crossed.is_none(), "one report per crossing");
        }
        // Replies are never refused.
        g.push_message(&q, msg(100));
        assert_eq!(q.len(), 5);
        assert_eq!(q.refused(), 6);
        // Still at the limit after one pop (5 -> 4): no recovery yet; the next pop recovers.
        assert_eq!(recovered(&q), None);
        assert_eq!(recovered(&q), Some(6));
        assert_eq!(recovered(&q), None);
        // A new crossing is reported again.
        limited(&q, &g, msg(11));
        limited(&q, &g, msg(12));
        assert_eq!(limited(&q, &g, msg(13)).crossed, Some((4, 0)));
    }

    #[test]
    fn byte_limit_counts_payload_and_socket_data() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::with_limits(QueueLimits {
            messages: 0,
            bytes: 100,
        }));
        let big = Message::new(1, 0, 0, Payload::zeroed(60));
        assert!(limited(&q, &g, big).pushed.is_none());
        // A socket DATA message of 50 bytes (type 1, id 7, ud 50, pointer unused).
        let mut head = Vec::new();
        for v in [1i32, 7, 50, 0, 0, 0] {
            head.extend_from_slice(&v.to_ne_bytes());
        }
        let sock = Message::new(0, 0, ptype::SOCKET as u8, Payload::copy_from(&head));
        assert_eq!(message_bytes(sock.ty as u32, &sock.data), 24 + 50);
        assert!(limited(&q, &g, sock).pushed.is_none());
        assert_eq!(q.bytes(), 60 + 74);
        assert!(matches!(
            limited(&q, &g, msg(1)).pushed,
            Some(Pushed::Refused(_))
        ));
        q.pop_counted().unwrap();
        assert_eq!(q.bytes(), 74);
        assert!(limited(&q, &g, msg(2)).pushed.is_none());
        q.pop_counted().unwrap();
        q.pop_counted().unwrap();
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn socket_data_is_queued_over_the_limit_and_resumed_at_half() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::with_limits(QueueLimits {
            messages: 4,
            bytes: 0,
        }));
        for i in 0..4 {
            let out = out(g.admit(&q, msg(i), Admission::Socket(9)));
            assert!(out.pushed.is_none());
        }
        for i in 4..6 {
            let out = out(g.admit(&q, msg(i), Admission::Socket(9)));
            assert!(matches!(out.pushed, Some(Pushed::QueuedPause)));
        }
        assert!(matches!(
            out(g.admit(&q, msg(6), Admission::Socket(10))).pushed,
            Some(Pushed::QueuedPause)
        ));
        assert_eq!(q.len(), 7, "socket data is never dropped");
        let mut resumed = Vec::new();
        let mut at = Vec::new();
        while let Some(p) = q.pop_counted() {
            if let Some(l) = p.limits.filter(|l| !l.resume.is_empty()) {
                at.push(p.remaining);
                resumed.extend(l.resume);
            }
        }
        assert_eq!(resumed, vec![9, 10], "each paused socket once");
        assert_eq!(at, vec![2], "resumed at half the limit");
    }

    #[test]
    fn unlimited_queue_never_refuses_and_limits_can_change() {
        let g = GlobalQueue::new();
        let q = Arc::new(MessageQueue::new());
        for i in 0..10_000 {
            assert!(limited(&q, &g, msg(i)).pushed.is_none());
        }
        q.set_limits(QueueLimits {
            messages: 10,
            bytes: 0,
        });
        assert!(matches!(
            limited(&q, &g, msg(0)).pushed,
            Some(Pushed::Refused(_))
        ));
        q.set_limits(QueueLimits::UNLIMITED);
        assert!(limited(&q, &g, msg(0)).pushed.is_none());
        assert_eq!(recovered(&q), Some(1));
    }
}
