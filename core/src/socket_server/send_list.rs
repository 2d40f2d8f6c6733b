//! A socket's send lists: high- and low-priority queues and pending-byte accounting.

use super::WARNING_SIZE;
use crate::payload::Payload;
use std::collections::VecDeque;
use std::io::{self};
use std::net::SocketAddr;

/// Which list a send goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
}

pub(super) struct WriteBuf {
    pub(super) data: Payload,
    pub(super) offset: usize,
    /// UDP: where to.
    pub(super) udp: Option<SocketAddr>,
}

impl WriteBuf {
    pub(super) fn rest(&self) -> &[u8] {
        &self.data.as_slice()[self.offset..]
    }
}

/// What one write attempt did.
pub enum WriteResult {
    /// Wrote this many bytes.
    Wrote(usize),
    /// Would block: try again when writable.
    Blocked,
    /// Dropped this buffer (UDP errors); stop for now.
    Dropped,
    /// A write error (TCP: the write side is dead).
    Failed(io::Error),
}

/// What a flush left.
pub enum Flush {
    Drained,
    Pending,
    Failed(io::Error),
}

pub(super) enum ListFlush {
    Done,
    Blocked,
    Failed(io::Error),
}

/// A socket's two send lists and pending-byte accounting.
#[derive(Default)]
pub struct SendLists {
    high: VecDeque<WriteBuf>,
    low: VecDeque<WriteBuf>,
    size: usize,
    warn_size: usize,
}

impl SendLists {
    pub fn is_empty(&self) -> bool {
        self.high.is_empty() && self.low.is_empty()
    }

    /// Pending bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    pub(super) fn push(&mut self, priority: Priority, buf: WriteBuf) {
        self.size += buf.rest().len();
        match priority {
            Priority::High => self.high.push_back(buf),
            Priority::Low => self.low.push_back(buf),
        }
    }

    /// Queues bytes (TCP).
    pub fn push_bytes(&mut self, priority: Priority, data: Payload) {
        self.push(
            priority,
            WriteBuf {
                data,
                offset: 0,
                udp: None,
            },
        );
    }

    /// After queuing: the WARNING to emit (pending KiB, rounded up), at >= 1, 2, 4, ... MiB.
    pub fn warning(&mut self) -> Option<i32> {
        if self.size >= WARNING_SIZE && self.size >= self.warn_size {
            self.warn_size = if self.warn_size == 0 {
                WARNING_SIZE * 2
            } else {
                self.warn_size * 2
            };
            Some(self.size.div_ceil(1024).min(i32::MAX as usize) as i32)
        } else {
            None
        }
    }

    /// Once drained: true (and reset) if a warning had been issued, so the owner gets the
    /// ud = 0 WARNING.
    pub fn take_drained_warning(&mut self) -> bool {
        if self.is_empty() && self.warn_size > 0 {
            self.warn_size = 0;
            true
        } else {
            false
        }
    }

    fn flush_list(
        list: &mut VecDeque<WriteBuf>,
        size: &mut usize,
        write: &mut impl FnMut(&[u8], Option<SocketAddr>) -> WriteResult,
    ) -> ListFlush {
        while let Some(head) = list.front_mut() {
            let rest = head.rest().len();
            match write(head.rest(), head.udp) {
                WriteResult::Wrote(n) => {
                    let n = n.min(rest);
                    *size -= n;
                    if n < rest {
                        head.offset += n;
                        return ListFlush::Blocked;
                    }
                    list.pop_front();
                }
                WriteResult::Blocked => return ListFlush::Blocked,
                WriteResult::Dropped => {
                    *size -= rest;
                    list.pop_front();
                    return ListFlush::Blocked;
                }
                WriteResult::Failed(e) => return ListFlush::Failed(e),
            }
        }
        ListFlush::Done
    }

    /// Writes the high list completely, then the low list; a
    /// partly written low-list head moves to the (empty) high list so it completes first.
    pub fn flush(
        &mut self,
        mut write: impl FnMut(&[u8], Option<SocketAddr>) -> WriteResult,
    ) -> Flush {
        match Self::flush_list(&mut self.high, &mut self.size, &mut write) {
            ListFlush::Failed(e) => return Flush::Failed(e),
            ListFlush::Blocked => return Flush::Pending,
            ListFlush::Done => {}
        }
        if !self.low.is_empty() {
            if let ListFlush::Failed(e) =
                Self::flush_list(&mut self.low, &mut self.size, &mut write)
            {
                return Flush::Failed(e);
            }
            if self.low.front().is_some_and(|b| b.offset > 0) {
                if let Some(b) = self.low.pop_front() {
                    self.high.push_back(b);
                }
                return Flush::Pending;
            }
            if !self.low.is_empty() {
                return Flush::Pending;
            }
        }
        Flush::Drained
    }
}
