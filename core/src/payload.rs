//! Message payloads: blocks of the process `malloc`.
//!
//! C modules free what they receive with libc `free` and hand the core blocks they got from libc
//! `malloc`, so every payload that can cross the C boundary lives in libc's heap,
//! never in Rust's global allocator. This is the one place in `core/` that touches raw memory.

use std::ptr;

/// An owned message payload: a libc-malloc'd block (or NULL) and its size.
///
/// Invariant: `ptr` is NULL or a block obtained from libc `malloc`/`realloc` that nobody else
/// frees; `len` bytes of it are readable unless `ptr` is NULL. Dropping a `Payload` frees it.
/// `len` may be non-zero with a NULL pointer: upstream passes such (NULL, sz) pairs through
/// untouched, and so do we.
#[derive(Debug)]
pub struct Payload {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the block is exclusively owned (see the invariant) and libc's heap is thread-safe.
unsafe impl Send for Payload {}

impl Payload {
    /// No data.
    pub const fn empty() -> Payload {
        Payload {
            ptr: ptr::null_mut(),
            len: 0,
        }
    }

    /// Copies `bytes` into a new block with one extra NUL byte after them, as upstream's copy
    /// mode does: C services rely on `msg[sz] == 0` to treat text payloads as C strings.
    pub fn copy_from(bytes: &[u8]) -> Payload {
        // SAFETY: malloc of len+1 bytes (never 0); checked for NULL before use.
        let p = unsafe { libc::malloc(bytes.len() + 1) } as *mut u8;
        if p.is_null() {
            alloc_failed(bytes.len() + 1);
        }
        // SAFETY: p has len+1 writable bytes, `bytes` is a valid slice not overlapping p.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            *p.add(bytes.len()) = 0;
        }
        Payload {
            ptr: p,
            len: bytes.len(),
        }
    }

    /// A new zero-filled block of `len` bytes (at least one byte is allocated), e.g. to read
    /// socket data into before handing it to a service.
    pub fn zeroed(len: usize) -> Payload {
        // SAFETY: calloc of max(len, 1) bytes; checked for NULL before use.
        let p = unsafe { libc::calloc(len.max(1), 1) } as *mut u8;
        if p.is_null() {
            alloc_failed(len);
        }
        Payload { ptr: p, len }
    }

    /// Reads once from `fd` into a new block of at most `cap` bytes (allocated, not zeroed: a
    /// socket read of up to 64 KiB would otherwise clear it first). The payload holds the bytes
    /// read; an error, `WouldBlock` included, frees the block.
    pub fn read_from(fd: std::os::fd::BorrowedFd<'_>, cap: usize) -> std::io::Result<Payload> {
        use std::os::fd::AsRawFd;
        // SAFETY: malloc of max(cap, 1) bytes; checked for NULL before use.
        let p = unsafe { libc::malloc(cap.max(1)) } as *mut u8;
        if p.is_null() {
            alloc_failed(cap);
        }
        // From here the block is owned by `block` (freed on every early return).
        let mut block = Payload { ptr: p, len: 0 };
        loop {
            // SAFETY: `p` has `cap` writable bytes; read(2) writes at most that many; the
            // descriptor is borrowed for the call.
            let n = unsafe { libc::read(fd.as_raw_fd(), p.cast(), cap) };
            if n >= 0 {
                block.len = n as usize;
                return Ok(block);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// A text payload (copy mode, NUL terminated).
    pub fn text(s: &str) -> Payload {
        Payload::copy_from(s.as_bytes())
    }

    /// Takes ownership of a raw block.
    ///
    /// # Safety
    /// `ptr` must be NULL or a libc-malloc'd block of at least `len` readable bytes that the
    /// caller gives up (nobody else frees or uses it afterwards).
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Payload {
        Payload { ptr, len }
    }

    /// Gives up ownership: the caller must free the pointer with libc `free` (or pass it on).
    pub fn into_raw(self) -> (*mut u8, usize) {
        let parts = (self.ptr, self.len);
        std::mem::forget(self);
        parts
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, or an empty slice for a NULL block.
    pub fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: by the invariant `len` bytes at `ptr` are readable while we own them.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// The bytes, writable (empty for a NULL block).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.ptr.is_null() {
            &mut []
        } else {
            // SAFETY: by the invariant `len` bytes at `ptr` are ours while we own the block.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
        }
    }

    /// Shortens the payload to `len` bytes (the block keeps its size; `free` needs no size).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// For the per-service log: the bytes a PTYPE_SOCKET message's heap pointer (at offset 16 of
    /// `struct skynet_socket_message`) refers to, `n` of them.
    ///
    /// # Safety
    /// The payload must be a socket message made by the socket server (which owns the pointer
    /// and keeps `n` bytes behind it alive as long as the message): any other payload's bytes
    /// are an arbitrary address. Services cannot send PTYPE_SOCKET (see `server::core_only`),
    /// so a PTYPE_SOCKET message taken from a queue is such a message.
    pub unsafe fn socket_heap_bytes(&self, n: usize) -> Option<&[u8]> {
        let raw = self.as_slice().get(16..24)?;
        let addr = usize::from_ne_bytes(raw.try_into().ok()?);
        if addr == 0 {
            return None;
        }
        // SAFETY: per this function's contract the socket server made this message, and its
        // buffer holds `n` readable bytes while the message is alive.
        Some(unsafe { std::slice::from_raw_parts(addr as *const u8, n) })
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: by the invariant we own a libc block.
            unsafe { libc::free(self.ptr as *mut libc::c_void) }
        }
    }
}

fn alloc_failed(n: usize) -> ! {
    eprintln!("skynet: out of memory allocating {n} bytes");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_adds_nul_and_keeps_len() {
        let p = Payload::copy_from(b"abc");
        assert_eq!(p.len(), 3);
        assert_eq!(p.as_slice(), b"abc");
        let (raw, len) = p.into_raw();
        // SAFETY: copy_from allocated len+1 bytes.
        assert_eq!(unsafe { *raw.add(len) }, 0);
        // SAFETY: the block came from into_raw above and is given back once.
        drop(unsafe { Payload::from_raw(raw, len) });
    }

    #[test]
    fn zeroed_is_writable_and_truncates() {
        let mut p = Payload::zeroed(8);
        assert_eq!(p.as_slice(), &[0; 8]);
        p.as_mut_slice()[..3].copy_from_slice(b"abc");
        p.truncate(3);
        assert_eq!(p.as_slice(), b"abc");
        p.truncate(10);
        assert_eq!(p.len(), 3);
        assert!(!Payload::zeroed(0).is_null());
    }

    #[test]
    fn null_with_size_is_passed_through() {
        // SAFETY: a NULL block owns nothing.
        let p = unsafe { Payload::from_raw(ptr::null_mut(), 7) };
        assert!(p.is_null());
        assert_eq!(p.len(), 7);
        assert!(p.as_slice().is_empty());
    }
}
