//! The endless-loop monitor (upstream `skynet_monitor`).
//!
//! Every worker owns a [`MonitorSlot`]; dispatch bumps its version when a message starts and
//! when it ends. The monitor thread looks at every slot every 5 s: a slot whose version did not
//! move while a message was being handled means one callback ran for 5-10 s.

use crate::server::Node;
use std::sync::atomic::{AtomicU32, Ordering};

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
