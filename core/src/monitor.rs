//! The endless-loop monitor (upstream `skynet_monitor`).
//!
//! Every worker owns a [`MonitorSlot`]; dispatch bumps its version when a message starts and
//! when it ends. The monitor thread looks at every slot every 5 s: a slot whose version did not
//! move while a message was being handled means one callback ran for 5-10 s.
//!
//! With `cpu_limit` set, the monitor also looks every [`CPU_TICK`]: a [`CpuWatch`] per slot
//! notes when the slot's version last moved (by the monitor's clock, so the workers pay
//! nothing), and a handler still running `cpu_limit` seconds (plus up to one tick) after its
//! start is interrupted if its service can be (snlua: the Lua code raises `cpu_limit
//! exceeded`), else reported. Interrupts repeat every `cpu_limit` seconds while the same
//! handler keeps running (it may catch the error); a C service is reported once per handler.
//! The interrupt is asynchronous: a handler that ends just as it is sent leaves the error
//! armed for the service's next Lua code, as SIGNAL 0 does.

use crate::metrics::Counters;
use crate::server::Node;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often the monitor looks at the slots when `cpu_limit` is set.
pub const CPU_TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct MonitorSlot {
    version: AtomicU32,
    checked: AtomicU32,
    source: AtomicU32,
    destination: AtomicU32,
}

impl MonitorSlot {
    pub fn new() -> MonitorSlot {
        MonitorSlot::default()
    }

    /// Called by the worker before (source, dest) and after (0, 0) each message.
    pub fn trigger(&self, source: u32, destination: u32) {
        self.source.store(source, Ordering::Relaxed);
        self.destination.store(destination, Ordering::Relaxed);
        // Only this slot's worker writes the version: a plain increment, no locked instruction.
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Release);
    }

    /// Called by the monitor thread; flags and reports a service stuck since the last check.
    pub fn check(&self, node: &Node) {
        let version = self.version.load(Ordering::Acquire);
        if version == self.checked.load(Ordering::Relaxed) {
            let dest = self.destination.load(Ordering::Relaxed);
            if dest != 0 {
                Counters::bump(&node.counters.endless_loops);
                if let Some(ctx) = node.grab(dest) {
                    ctx.set_endless();
                }
                let source = self.source.load(Ordering::Relaxed);
                node.log(
                    0,
                    format!(
                        "error: A message from [ :{source:08x} ] to [ :{dest:08x} ] maybe in an endless loop (version = {version})"
                    ),
                );
            }
        } else {
            self.checked.store(version, Ordering::Relaxed);
        }
    }
}

impl MonitorSlot {
    /// (version, source, destination), consistent: the version did not move while the other
    /// two were read.
    fn snapshot(&self) -> Option<(u32, u32, u32)> {
        let version = self.version.load(Ordering::Acquire);
        let source = self.source.load(Ordering::Relaxed);
        let dest = self.destination.load(Ordering::Relaxed);
        (self.version.load(Ordering::Acquire) == version).then_some((version, source, dest))
    }
}

/// The monitor's `cpu_limit` bookkeeping for one slot (only the monitor thread touches it).
pub struct CpuWatch {
    version: u32,
    since: Instant,
    /// When the running handler was last interrupted or reported.
    acted: Option<Instant>,
}

impl CpuWatch {
    pub fn new(now: Instant) -> CpuWatch {
        CpuWatch {
            version: 0,
            since: now,
            acted: None,
        }
    }

    /// Looks at `slot` at `now`; interrupts or reports a handler over `limit`.
    pub fn check(&mut self, slot: &MonitorSlot, node: &Node, limit: Duration, now: Instant) {
        let Some((version, source, dest)) = slot.snapshot() else {
            return; // moving: looked at again next tick
        };
        if version != self.version {
            self.version = version;
            self.since = now;
            self.acted = None;
            return;
        }
        if dest == 0 || now.duration_since(self.since) < limit {
            return;
        }
        let Some(ctx) = node.grab(dest) else { return };
        let secs = limit.as_secs();
        match self.acted {
            Some(t) if now.duration_since(t) < limit => {}
            // A C service cannot be interrupted: one report per handler.
            Some(_) if !ctx.can_interrupt() => {}
            _ => {
                self.acted = Some(now);
                if ctx.interrupt() {
                    Counters::bump(&node.counters.cpu_limit_interrupts);
                    node.log(
                        dest,
                        format!(
                            "cpu_limit: the handler of a message from [ :{source:08x} ] ran over {secs} s: interrupted"
                        ),
                    );
                } else {
                    Counters::bump(&node.counters.cpu_limit_uninterruptible);
                    node.log(
                        dest,
                        format!(
                            "cpu_limit: C service {} [ :{dest:08x} ]: the handler of a message from [ :{source:08x} ] runs over {secs} s (it cannot be interrupted)",
                            ctx.module_name()
                        ),
                    );
                }
            }
        }
    }
}
