//! The slot table: ids, states and the direct-write side, shared with service threads.

use super::MAX_SOCKET;
use parking_lot::Mutex;
use std::net::TcpStream;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Internal socket states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Invalid = 0,
    Reserve = 1,
    PListen = 2,
    Listen = 3,
    Connecting = 4,
    Connected = 5,
    HalfcloseRead = 6,
    HalfcloseWrite = 7,
    PAccept = 8,
    Bind = 9,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Reserve,
            2 => State::PListen,
            3 => State::Listen,
            4 => State::Connecting,
            5 => State::Connected,
            6 => State::HalfcloseRead,
            7 => State::HalfcloseWrite,
            8 => State::PAccept,
            9 => State::Bind,
            _ => State::Invalid,
        }
    }
}

const CLOSING_BIT: u64 = 0x100;

fn pack(id: i32, state: State, closing: bool) -> u64 {
    (u64::from(id as u32) << 32) | state as u64 | if closing { CLOSING_BIT } else { 0 }
}

fn unpack(v: u64) -> (i32, State, bool) {
    (
        (v >> 32) as u32 as i32,
        State::from_u8(v as u8),
        v & CLOSING_BIT != 0,
    )
}

/// The slot of an id.
pub fn slot_of(id: i32) -> usize {
    id as u32 as usize % MAX_SOCKET
}

/// The direct-write side of a slot: a caller
/// may write a send itself, under this lock, when the socket is idle (connected, nothing
/// pending, not closing: set by the socket thread) and none of its sends is still queued.
#[derive(Default)]
pub(super) struct Direct {
    pub(super) id: i32,
    pub(super) stream: Option<Arc<TcpStream>>,
    /// A TLS connection's rustls side: a direct write encrypts under its lock.
    pub(super) tls: Option<Arc<Mutex<rustls::Connection>>>,
    pub(super) idle: bool,
    /// Sends queued for the socket thread and not yet handled.
    pub(super) inflight: u32,
    /// Bytes written directly, and when (merged into `socket_info`).
    pub(super) written: u64,
    pub(super) wtime: u64,
}

/// Id allocation and the per-slot (id, state, closing) word every thread can read.
pub struct Slots {
    cells: Box<[AtomicU64]>,
    pub(super) direct: Box<[Mutex<Direct>]>,
    pub(super) alloc_id: AtomicI32,
    open: AtomicUsize,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            cells: (0..MAX_SOCKET).map(|_| AtomicU64::new(0)).collect(),
            direct: (0..MAX_SOCKET)
                .map(|_| Mutex::new(Direct::default()))
                .collect(),
            alloc_id: AtomicI32::new(0),
            open: AtomicUsize::new(0),
            max: max.clamp(1, MAX_SOCKET),
        }
    }

    /// The next id of the counter: 1, 2, ... 0x7fffffff, then it wraps to small values.
    fn next_id(&self) -> i32 {
        let id = self
            .alloc_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        if id < 0 {
            self.alloc_id.fetch_and(0x7fff_ffff, Ordering::Relaxed) & 0x7fff_ffff
        } else {
            id
        }
    }

    /// Reserves a free slot: its new id, or `None` if `max` sockets are open or no slot is
    /// free.
    pub fn reserve(&self) -> Option<i32> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut tries = 0;
        while tries < MAX_SOCKET {
            let id = self.next_id();
            let cell = &self.cells[slot_of(id)];
            let cur = cell.load(Ordering::Acquire);
            if unpack(cur).1 != State::Invalid {
                tries += 1;
                continue;
            }
            if cell
                .compare_exchange(
                    cur,
                    pack(id, State::Reserve, false),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                // From now on every send to this id is counted (see `Direct`).
                *self.direct[slot_of(id)].lock() = Direct {
                    id,
                    ..Direct::default()
                };
                return Some(id);
            }
            // Someone else took it meanwhile: retry without counting.
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        None
    }

    /// State and closing flag of a live id (`None` if the id is not, or no longer, valid).
    pub fn get(&self, id: i32) -> Option<(State, bool)> {
        let (sid, state, closing) = unpack(self.cells[slot_of(id)].load(Ordering::Acquire));
        (sid == id && state != State::Invalid).then_some((state, closing))
    }

    pub(super) fn set(&self, id: i32, state: State, closing: bool) {
        self.cells[slot_of(id)].store(pack(id, state, closing), Ordering::Release);
    }

    /// Frees the slot of a reserved or live id.
    pub(super) fn release(&self, id: i32) {
        // Drop the shared stream first: the descriptor closes with the last reference.
        let old = std::mem::take(&mut *self.direct[slot_of(id)].lock());
        drop(old);
        self.cells[slot_of(id)].store(pack(id, State::Invalid, false), Ordering::Release);
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sockets open or reserved.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}
