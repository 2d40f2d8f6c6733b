//! Time and timeouts (upstream `skynet_timer`).
//!
//! `now()` is in centiseconds: the wall clock's centisecond fraction at start plus monotonic
//! centiseconds since, so `starttime + now/100` tracks wall time. The timer thread calls
//! [`Timer::update`] every 2.5 ms; it runs one wheel tick per elapsed centisecond (catching up
//! in bursts, `now()` advancing with each tick) and delivers each expired timeout as a
//! PTYPE_RESPONSE message from source 0.

pub mod wheel;

use crate::mq::Message;
use crate::payload::Payload;
use crate::ptype;
use crate::server::Node;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wheel::Wheel;

#[derive(Debug, Clone, Copy)]
struct Timeout {
    handle: u32,
    session: i32,
}

pub struct Timer {
    wheel: Mutex<Wheel<Timeout>>,
    starttime: u32,
    /// `skynet_now()`.
    current: AtomicU64,
    origin: Instant,
    /// Monotonic centiseconds since `origin` at the last update (timer thread only).
    point: Mutex<u64>,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    pub fn new() -> Timer {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timer {
            wheel: Mutex::new(Wheel::new()),
            starttime: wall.as_secs() as u32,
            current: AtomicU64::new(u64::from(wall.subsec_millis() / 10)),
            origin: Instant::now(),
            point: Mutex::new(0),
        }
    }

    /// Centiseconds (see the module doc).
    pub fn now(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Unix seconds at start (STARTTIME).
    pub fn starttime(&self) -> u32 {
        self.starttime
    }

    /// Timeouts waiting in the wheel.
    pub fn pending(&self) -> usize {
        self.wheel.lock().len()
    }

    /// Schedules a PTYPE_RESPONSE to `handle` after `time` centiseconds; `time <= 0` delivers
    /// at once (returns -1 if the service is gone).
    pub fn timeout(&self, node: &Node, handle: u32, time: i32, session: i32) -> i32 {
        if time <= 0 {
            if !node.push(handle, response(session)) {
                return -1;
            }
        } else {
            self.wheel
                .lock()
                .add(time as u32, Timeout { handle, session });
        }
        session
    }

    /// Advances time; delivers expired timeouts. Called by the timer thread only.
    pub fn update(&self, node: &Node) {
        self.update_with(|handle, session| {
            node.push(handle, response(session));
        });
    }

    /// [`Timer::update`] with the delivery given: one wheel tick per elapsed centisecond, the
    /// wheel locked for one tick at a time and each tick's timeouts delivered outside the lock,
    /// so a long catch-up (a stalled timer thread, a suspended process) neither blocks
    /// `timeout` callers for the whole burst nor gathers every expired timeout in memory first.
    fn update_with(&self, mut deliver: impl FnMut(u32, i32)) {
        let cp = self.origin.elapsed().as_millis() as u64 / 10;
        let diff = {
            let mut point = self.point.lock();
            let diff = cp.saturating_sub(*point);
            *point = cp;
            diff
        };
        if diff == 0 {
            return;
        }
        // The clock moves one tick at a time with the wheel: in a catch-up burst, the
        // timeouts of each tick reach their services while `now()` is that tick, not the end
        // of the burst (no lateness added by the burst itself), and a timeout set meanwhile is
        // due relative to the tick the wheel is at.
        let mut expired = Vec::new();
        for _ in 0..diff {
            {
                // The clock moves under the wheel's lock, after the wheel: a timeout set from
                // a `now()` reading is never due before that reading plus its delay (it could
                // be, by one tick, if `now()` ran ahead of the wheel).
                let mut wheel = self.wheel.lock();
                wheel.advance(&mut expired);
                self.current.fetch_add(1, Ordering::Relaxed);
            }
            for t in expired.drain(..) {
                deliver(t.handle, t.session);
            }
        }
    }
}

fn response(session: i32) -> Message {
    Message::new(0, session, ptype::RESPONSE as u8, Payload::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_releases_the_wheel_between_ticks() {
        let mut timer = Timer::new();
        // Pretend the timer thread stalled for 200 ticks.
        timer.origin = Instant::now()
            .checked_sub(std::time::Duration::from_secs(2))
            .expect("monotonic clock older than 2 s");
        for i in 1..=50 {
            timer.wheel.lock().add(
                i,
                Timeout {
                    handle: 1,
                    session: i as i32,
                },
            );
        }
        let mut sessions = Vec::new();
        let start = timer.now();
        timer.update_with(|_, session| {
            // The clock is at the tick being delivered, not at the end of the burst.
            if session <= 50 {
                assert_eq!(
                    timer.now() - start,
                    session as u64,
                    "now() during the burst"
                );
            }
            // A `timeout` call from a worker during the burst must not wait for it to end.
            assert!(
                timer.wheel.try_lock().is_some(),
                "wheel locked during delivery"
            );
            if session == 1 {
                // Added while the burst runs: due one tick later, still inside the burst.
                timer.wheel.lock().add(
                    1,
                    Timeout {
                        handle: 2,
                        session: 1000,
                    },
                );
            }
            sessions.push(session);
        });
        // Each tick's timeouts are delivered before the next tick runs.
        assert_eq!(sessions[..3], [1, 2, 1000]);
        sessions.retain(|&s| s != 1000);
        assert_eq!(sessions, (1..=50).collect::<Vec<_>>());
    }
}
