//! The handle registry and local names (upstream `skynet_handle`).
//!
//! A handle is 32 bits: the harbor (node) id in bits 31..24 and a local id 1..=0xFFFFFF below.
//! Local ids come from a cursor that only moves forward, so ids are not reused until the 24-bit
//! space wraps; the slot of an id is `id & (size - 1)` in a power-of-two table that doubles when
//! a full scan finds no free slot.
//!
//! Local names (`.name`, stored without the dot) live in a sorted vector searched by binary
//! search; one handle may carry many names, a name maps to one handle.

use parking_lot::RwLock;

/// Bits 23..0 of a handle.
pub const HANDLE_MASK: u32 = 0x00ff_ffff;
/// Bits 31..24 hold the harbor id.
pub const HANDLE_REMOTE_SHIFT: u32 = 24;

const INITIAL_SLOTS: usize = 4;

struct Inner<T> {
    /// `harbor id << 24`, or'ed into every handle.
    harbor: u32,
    /// Next local id to try.
    cursor: u32,
    /// `slots.len()` is a power of two; a slot holds (handle, value).
    slots: Vec<Option<(u32, T)>>,
    /// Sorted by name.
    names: Vec<(Box<str>, u32)>,
}

/// The registry, generic over the stored value so it can be tested alone.
pub struct HandleStorage<T> {
    inner: RwLock<Inner<T>>,
}

impl<T: Clone> HandleStorage<T> {
    pub fn new(harbor: u8) -> Self {
        HandleStorage {
            inner: RwLock::new(Inner {
                harbor: u32::from(harbor) << HANDLE_REMOTE_SHIFT,
                cursor: 1,
                slots: (0..INITIAL_SLOTS).map(|_| None).collect(),
                names: Vec::new(),
            }),
        }
    }

    /// Registers a value built from its new handle (built under the lock, so the handle is
    /// visible to others only once the value exists).
    pub fn register(&self, make: impl FnOnce(u32) -> T) -> (u32, T) {
        let mut s = self.inner.write();
        loop {
            let size = s.slots.len();
            let mut id = s.cursor;
            for _ in 0..size {
                if id > HANDLE_MASK {
                    id = 1;
                }
                let slot = id as usize & (size - 1);
                if s.slots[slot].is_none() {
                    let handle = id | s.harbor;
                    let value = make(handle);
                    s.slots[slot] = Some((handle, value.clone()));
                    s.cursor = id + 1;
                    return (handle, value);
                }
                id += 1;
            }
            assert!(size <= HANDLE_MASK as usize, "handle space exhausted");
            let mut grown: Vec<Option<(u32, T)>> = (0..size * 2).map(|_| None).collect();
            for entry in s.slots.drain(..).flatten() {
                let at = (entry.0 & HANDLE_MASK) as usize & (size * 2 - 1);
                grown[at] = Some(entry);
            }
            s.slots = grown;
        }
    }

    /// The value of a live handle.
    pub fn grab(&self, handle: u32) -> Option<T> {
        let s = self.inner.read();
        let slot = (handle & HANDLE_MASK) as usize & (s.slots.len() - 1);
        match &s.slots[slot] {
            Some((h, v)) if *h == handle => Some(v.clone()),
            _ => None,
        }
    }

    /// Runs `f` on the value of a live handle under the read lock (no reference count traffic;
    /// `f` must not register or retire handles). Inlined so that what `f` captures stays in
    /// registers instead of being stored and reloaded as a closure (see `Node::admit`).
    #[inline(always)]
    pub fn with<R>(&self, handle: u32, f: impl FnOnce(&T) -> R) -> Option<R> {
        let s = self.inner.read();
        let slot = (handle & HANDLE_MASK) as usize & (s.slots.len() - 1);
        match &s.slots[slot] {
            Some((h, v)) if *h == handle => Some(f(v)),
            _ => None,
        }
    }

    /// Removes a handle and all its names; returns the value so the caller drops it outside
    /// the lock (dropping the last reference may run a module's release).
    pub fn retire(&self, handle: u32) -> Option<T> {
        let mut s = self.inner.write();
        let slot = (handle & HANDLE_MASK) as usize & (s.slots.len() - 1);
        match &s.slots[slot] {
            Some((h, _)) if *h == handle => {}
            _ => return None,
        }
        let (_, value) = s.slots[slot].take()?;
        s.names.retain(|(_, h)| *h != handle);
        Some(value)
    }

    /// Every live handle, in slot order.
    pub fn handles(&self) -> Vec<u32> {
        let s = self.inner.read();
        s.slots.iter().flatten().map(|(h, _)| *h).collect()
    }

    /// Every (local name, handle), by name.
    pub fn names(&self) -> Vec<(String, u32)> {
        let s = self.inner.read();
        s.names.iter().map(|(n, h)| (n.to_string(), *h)).collect()
    }

    /// Retires every handle, sweeping again until none is left (retiring may launch more).
    pub fn retire_all(&self) {
        loop {
            let handles = self.handles();
            if handles.is_empty() {
                return;
            }
            for h in handles {
                drop(self.retire(h));
            }
        }
    }

    /// Looks up a local name (without the dot).
    pub fn find_name(&self, name: &str) -> Option<u32> {
        let s = self.inner.read();
        s.names
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| s.names[i].1)
    }

    /// Binds a local name to a handle. Fails if the name is taken or the handle is not live.
    pub fn bind_name(&self, name: &str, handle: u32) -> bool {
        let mut s = self.inner.write();
        let slot = (handle & HANDLE_MASK) as usize & (s.slots.len() - 1);
        if !matches!(&s.slots[slot], Some((h, _)) if *h == handle) {
            return false;
        }
        match s.names.binary_search_by(|(n, _)| (**n).cmp(name)) {
            Ok(_) => false,
            Err(at) => {
                s.names.insert(at, (name.into(), handle));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_harbor() {
        let h = HandleStorage::<u32>::new(3);
        let (a, _) = h.register(|h| h);
        let (b, _) = h.register(|h| h);
        assert_eq!(a, 0x0300_0001);
        assert_eq!(b, 0x0300_0002);
        assert_eq!(h.grab(a), Some(a));
        assert_eq!(h.grab(0x0400_0001), None);
    }

    #[test]
    fn ids_are_not_reused_before_wrap_and_table_grows() {
        let h = HandleStorage::<u32>::new(0);
        let mut live = Vec::new();
        for i in 1..=100u32 {
            let (x, _) = h.register(|h| h);
            assert_eq!(x, i);
            live.push(x);
        }
        for x in &live[..50] {
            assert!(h.retire(*x).is_some());
            assert!(h.retire(*x).is_none());
        }
        let (next, _) = h.register(|h| h);
        assert_eq!(next, 101);
        for x in &live[50..] {
            assert_eq!(h.grab(*x), Some(*x));
        }
    }

    #[test]
    fn cursor_wraps_to_one() {
        let h = HandleStorage::<u32>::new(0);
        h.inner.write().cursor = HANDLE_MASK;
        let (a, _) = h.register(|h| h);
        let (b, _) = h.register(|h| h);
        assert_eq!(a, HANDLE_MASK);
        assert_eq!(b, 1);
    }

    #[test]
    fn names_are_unique_sorted_and_die_with_handle() {
        let h = HandleStorage::<u32>::new(0);
        let (a, _) = h.register(|h| h);
        let (b, _) = h.register(|h| h);
        assert!(h.bind_name("zeta", a));
        assert!(h.bind_name("alpha", a));
        assert!(h.bind_name("mid", b));
        assert!(!h.bind_name("mid", a));
        assert!(!h.bind_name("ghost", 77));
        assert_eq!(h.find_name("alpha"), Some(a));
        assert_eq!(h.find_name("mid"), Some(b));
        assert_eq!(h.find_name("Mid"), None);
        h.retire(a);
        assert_eq!(h.find_name("alpha"), None);
        assert_eq!(h.find_name("zeta"), None);
        assert_eq!(h.find_name("mid"), Some(b));
    }

    #[test]
    fn retire_all_empties() {
        let h = HandleStorage::<u32>::new(0);
        for _ in 0..10 {
            h.register(|h| h);
        }
        h.retire_all();
        assert!(h.handles().is_empty());
    }
}
