//! Per-service message queues and the global run queue (upstream `skynet_mq`).
//!
//! Invariants:
//! - A service queue is on the global queue at most once: `in_global` is set when it is
//!   scheduled and cleared only by a pop that finds it empty (the queue then leaves scheduling),
//!   so a worker that holds a queue is the only one dispatching it.
//! - Messages are FIFO per queue.
//! - Idle workers sleep on a condition variable; whoever schedules work wakes one when work is
//!   waiting that the scheduling thread will not take itself (see [`GlobalQueue::push`]).

use crate::buffer::Payload;
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Pending length above which the first overload warning fires; it doubles after each warning.
pub const OVERLOAD_THRESHOLD: usize = 1024;
const INITIAL_CAPACITY: usize = 64;

/// A popped message and the queue's state right after the pop.
pub struct Popped {
    pub message: Message,
    pub remaining: usize,
    pub overload: Option<usize>,
}

/// One message in a service queue. The type is the low 8 bits of what the sender gave.
#[derive(Debug)]
pub struct Message {
    pub source: u32,
    pub session: i32,
    pub ty: u8,
    pub data: Payload,
}

impl Message {
    pub fn new(source: u32, session: i32, ty: u8, data: Payload) -> Message {
        Message {
            source,
            session,
            ty,
            data,
        }
    }
}

struct QueueState {
    messages: VecDeque<Message>,
    in_global: bool,
    /// Set when the owning context is gone: the next worker that pops this queue drains it.
    released: bool,
    /// Recorded length for the next overload warning (0 = none).
    overload: usize,
    threshold: usize,
}

/// A service's message queue.
pub struct MessageQueue {
    handle: u32,
    state: Mutex<QueueState>,
}

impl MessageQueue {
    /// A new queue, flagged as already scheduled: it joins the global queue only when its
    /// service finished init (see [`GlobalQueue::push`]).
    pub fn new(handle: u32) -> Arc<MessageQueue> {
        Arc::new(MessageQueue {
            handle,
            state: Mutex::new(QueueState {
                messages: VecDeque::with_capacity(INITIAL_CAPACITY),
                in_global: true,
                released: false,
                overload: 0,
                threshold: OVERLOAD_THRESHOLD,
            }),
        })
    }

    pub fn handle(&self) -> u32 {
        self.handle
    }

    pub fn len(&self) -> usize {
        self.state.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a message, scheduling the queue if it is idle.
    pub fn push(self: &Arc<Self>, msg: Message, global: &GlobalQueue) {
        let schedule = {
            let mut s = self.state.lock();
            s.messages.push_back(msg);
            !std::mem::replace(&mut s.in_global, true)
        };
        if schedule {
            global.push(self.clone());
        }
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
    pub fn pop_counted(&self) -> Option<Popped> {
        let mut s = self.state.lock();
        match s.messages.pop_front() {
            Some(message) => {
                let remaining = s.messages.len();
                while remaining > s.threshold {
                    s.overload = remaining;
                    s.threshold *= 2;
                }
                let overload = std::mem::take(&mut s.overload);
                Some(Popped {
                    message,
                    remaining,
                    overload: (overload != 0).then_some(overload),
                })
            }
            None => {
                s.threshold = OVERLOAD_THRESHOLD;
                None
            }
        }
    }

    /// Marks the queue released (its context is gone) and schedules it so a worker drains it.
    pub fn mark_release(self: &Arc<Self>, global: &GlobalQueue) {
        let schedule = {
            let mut s = self.state.lock();
            debug_assert!(!s.released);
            s.released = true;
            !s.in_global
        };
        if schedule {
            global.push(self.clone());
        }
    }

    /// For a queue whose handle no longer resolves: if released, drains every message through
    /// `drop` and returns true; otherwise (the context is still referenced somewhere) puts the
    /// queue back on the global queue to look again later and returns false.
    pub fn release(self: &Arc<Self>, global: &GlobalQueue, mut drop: impl FnMut(Message)) -> bool {
        let released = self.state.lock().released;
        if released {
            while let Some(m) = self.pop() {
                drop(m);
            }
            true
        } else {
            global.push(self.clone());
            false
        }
    }
}

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a worker (it looks at the global queue after each turn).
pub fn set_worker_thread() {
    IS_WORKER.with(|w| w.set(true));
}

struct RunQueue {
    queues: VecDeque<Arc<MessageQueue>>,
    /// Workers parked or about to park. Kept under the same lock as `queues`, so a scheduler
    /// either sees a sleeper or the sleeper sees its queue: no fences needed.
    sleeping: usize,
}

/// The global run queue plus the idle-worker parking lot.
///
/// Lock order: `park` before `run` (a parking worker holds `park` while it checks `run`);
/// schedulers take `run`, release it, then take `park` to notify.
pub struct GlobalQueue {
    run: Mutex<RunQueue>,
    park: Mutex<()>,
    wake: Condvar,
    /// Only for threads that sleep until quit (monitor): they must not eat worker wake-ups.
    quit_wait: Condvar,
    quit: AtomicBool,
}

impl Default for GlobalQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl GlobalQueue {
    pub fn new() -> GlobalQueue {
        GlobalQueue {
            run: Mutex::new(RunQueue {
                queues: VecDeque::new(),
                sleeping: 0,
            }),
            park: Mutex::new(()),
            wake: Condvar::new(),
            quit_wait: Condvar::new(),
            quit: AtomicBool::new(false),
        }
    }

    /// Schedules a service queue. Wakes a sleeping worker unless the caller is a worker and this
    /// is the only queue waiting: that worker takes it itself after its current turn, which
    /// keeps ping-pong traffic on one thread without a futex call per message.
    pub fn push(&self, q: Arc<MessageQueue>) {
        let (len, sleeping) = {
            let mut r = self.run.lock();
            r.queues.push_back(q);
            (r.queues.len(), r.sleeping)
        };
        if sleeping > 0 && (len > 1 || !IS_WORKER.with(|w| w.get())) {
            self.notify_one();
        }
    }

    /// After a worker's turn on `q`: if other queues wait, `q` goes to the back and the next
    /// one is returned (one lock for both); otherwise the worker keeps `q` (returned as is).
    /// Wakes a sleeper only if `q` still has work (`has_work`): an emptied queue needs nobody.
    pub fn rotate(&self, q: Arc<MessageQueue>, has_work: bool) -> Arc<MessageQueue> {
        let (next, sleeping) = {
            let mut r = self.run.lock();
            match r.queues.pop_front() {
                Some(next) => {
                    r.queues.push_back(q);
                    (next, r.sleeping)
                }
                None => return q,
            }
        };
        if has_work && sleeping > 0 {
            self.notify_one();
        }
        next
    }

    fn notify_one(&self) {
        let _g = self.park.lock();
        self.wake.notify_one();
    }

    pub fn pop(&self) -> Option<Arc<MessageQueue>> {
        self.run.lock().queues.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.run.lock().queues.is_empty()
    }

    /// Blocks the calling worker until work may be there or the node quits.
    pub fn park(&self) {
        let mut g = self.park.lock();
        {
            let mut r = self.run.lock();
            if !r.queues.is_empty() || self.is_quit() {
                return;
            }
            r.sleeping += 1;
        }
        self.wake.wait(&mut g);
        drop(g);
        self.run.lock().sleeping -= 1;
    }

    /// Wakes one sleeping worker, if any (timer and socket threads use this).
    pub fn wake_one(&self) {
        if self.sleeping() > 0 {
            self.notify_one();
        }
    }

    pub fn sleeping(&self) -> usize {
        self.run.lock().sleeping
    }

    /// Tells every worker to finish.
    pub fn quit(&self) {
        self.quit.store(true, Ordering::Release);
        let _g = self.park.lock();
        self.wake.notify_all();
        self.quit_wait.notify_all();
    }

    /// Sleeps up to `d`, returning early (true) when the node quits.
    pub fn sleep_unless_quit(&self, d: std::time::Duration) -> bool {
        let mut g = self.park.lock();
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
        let q = MessageQueue::new(5);
        q.push(msg(1), &g);
        assert!(g.is_empty(), "a queue in init must not be scheduled");
        assert_eq!(q.pop().unwrap().session, 1);
        assert!(q.pop().is_none());
        q.push(msg(2), &g);
        q.push(msg(3), &g);
        assert_eq!(g.pop().unwrap().handle(), 5);
        assert!(g.pop().is_none(), "scheduled once only");
    }

    #[test]
    fn overload_warns_at_doubling_thresholds() {
        let g = GlobalQueue::new();
        let q = MessageQueue::new(1);
        for i in 0..5000 {
            q.push(msg(i), &g);
        }
        let mut warnings = Vec::new();
        while let Some(p) = q.pop_counted() {
            warnings.extend(p.overload);
        }
        assert_eq!(warnings, vec![4999]);
        // After an empty pop the threshold is back to 1024.
        for i in 0..1100 {
            q.push(msg(i), &g);
        }
        assert_eq!(q.pop_counted().unwrap().overload, Some(1099));
        assert_eq!(q.pop_counted().unwrap().overload, None);
    }

    #[test]
    fn release_drains_only_when_marked() {
        let g = GlobalQueue::new();
        let q = MessageQueue::new(9);
        q.push(msg(1), &g);
        q.push(msg(2), &g);
        let mut seen = Vec::new();
        assert!(!q.release(&g, |m| seen.push(m.session)));
        assert!(seen.is_empty());
        assert!(g.pop().is_some());
        q.mark_release(&g);
        assert!(q.release(&g, |m| seen.push(m.session)));
        assert_eq!(seen, vec![1, 2]);
    }
}
