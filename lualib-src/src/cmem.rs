//! libc `malloc` blocks owned by Rust until they are handed to Lua or C.
//!
//! Buffers that cross to C or Lua (packets returned as light userdata, socket message data) must
//! be process `malloc` blocks that the receiver releases with `free`. These two
//! small owners keep such a block safe to hold in Rust: they free it on drop unless it was given
//! away with `into_raw`. Allocation failure aborts the process, as upstream's `skynet_malloc`
//! does.

use std::ptr::NonNull;

fn alloc_failed(n: usize) -> ! {
    eprintln!("skynet: out of memory allocating {n} bytes");
    std::process::abort()
}

#[cfg(test)]
thread_local! {
    /// Blocks allocated minus blocks freed through this module on this thread (tests use it
    /// to check that every buffer is released exactly once).
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
pub fn live_blocks() -> isize {
    LIVE.with(|c| c.get())
}

#[inline(always)]
fn count(_delta: isize) {
    #[cfg(test)]
    LIVE.with(|c| c.set(c.get() + _delta));
}

/// `malloc(n)` (at least one byte, so the result is never NULL).
pub fn malloc(n: usize) -> NonNull<u8> {
    // SAFETY: plain allocation; checked for NULL below.
    let p = unsafe { libc::malloc(n.max(1)) }.cast::<u8>();
    count(1);
    NonNull::new(p).unwrap_or_else(|| alloc_failed(n))
}

/// `free(p)` of a block given up by its owner (NULL is ignored).
///
/// # Safety
/// `p` is NULL or a live libc `malloc` block that nobody uses any more.
pub unsafe fn free(p: *mut u8) {
    if !p.is_null() {
        count(-1);
        // SAFETY: caller contract.
        unsafe { libc::free(p.cast()) };
    }
}

/// A fresh `malloc` block holding a copy of `bytes`, as a raw pointer the caller now owns.
pub fn malloc_copy(bytes: &[u8]) -> *mut u8 {
    CBlock::copy_from(bytes).into_raw().0
}

/// An owned `malloc` block of `len` meaningful bytes.
pub struct CBlock {
    ptr: NonNull<u8>,
    len: usize,
}

impl CBlock {
    /// A new block holding a copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> CBlock {
        let ptr = malloc(bytes.len());
        // SAFETY: the fresh block has room for `bytes.len()` bytes and cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), bytes.len()) };
        CBlock {
            ptr,
            len: bytes.len(),
        }
    }

    /// Takes ownership of a `malloc` block.
    ///
    /// # Safety
    /// `ptr` is a live libc `malloc` block of at least `len` readable bytes that nobody else
    /// will use or free.
    pub unsafe fn from_raw(ptr: NonNull<u8>, len: usize) -> CBlock {
        CBlock { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: by the invariant `len` bytes at `ptr` are readable while we own the block.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Keeps only `len` bytes starting at `start`, moved to the front of the same block (no new
    /// allocation). Panics if the range is out of bounds.
    pub fn keep_range(mut self, start: usize, len: usize) -> CBlock {
        assert!(start <= self.len && len <= self.len - start);
        // SAFETY: both ranges lie inside the block (checked above); `copy` allows overlap.
        unsafe { std::ptr::copy(self.ptr.as_ptr().add(start), self.ptr.as_ptr(), len) };
        self.len = len;
        self
    }

    /// Gives the block away: the caller (usually Lua code, later `free`) owns it now.
    pub fn into_raw(self) -> (*mut u8, usize) {
        let r = (self.ptr.as_ptr(), self.len);
        std::mem::forget(self);
        r
    }
}

impl Drop for CBlock {
    fn drop(&mut self) {
        // SAFETY: by the invariant we own a live libc block.
        unsafe { free(self.ptr.as_ptr()) };
    }
}

/// A `malloc` block that grows (by `realloc`) as bytes are appended, up to a final size known in
/// advance. Memory held stays proportional to the bytes received, not to the size announced.
pub struct GrowBuf {
    ptr: Option<NonNull<u8>>,
    len: usize,
    cap: usize,
}

impl GrowBuf {
    pub const fn new() -> GrowBuf {
        GrowBuf {
            ptr: None,
            len: 0,
            cap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes`; `limit` is the final size the buffer will reach (growth never allocates
    /// beyond it).
    pub fn extend(&mut self, bytes: &[u8], limit: usize) {
        let need = self.len + bytes.len();
        if need > self.cap {
            let cap = need.max(self.cap.saturating_mul(2).max(64).min(limit));
            let old: *mut libc::c_void =
                self.ptr.map_or(std::ptr::null_mut(), |p| p.as_ptr().cast());
            if old.is_null() {
                count(1);
            }
            // SAFETY: `old` is NULL or our live block; on failure it stays valid (we abort).
            let p = unsafe { libc::realloc(old, cap) }.cast::<u8>();
            self.ptr = Some(NonNull::new(p).unwrap_or_else(|| alloc_failed(cap)));
            self.cap = cap;
        }
        if let Some(p) = self.ptr {
            // SAFETY: the block has room for `need` bytes; `bytes` is not inside our block
            // (we never lend out a mutable view of it).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(self.len), bytes.len())
            };
        }
        self.len = need;
    }

    /// The bytes as an owned block.
    pub fn into_block(self) -> CBlock {
        let this = std::mem::ManuallyDrop::new(self);
        match this.ptr {
            // SAFETY: our live block with `len` initialized bytes, ownership moves out.
            Some(p) => unsafe { CBlock::from_raw(p, this.len) },
            None => CBlock::copy_from(&[]),
        }
    }
}

impl Default for GrowBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for GrowBuf {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: our live libc block.
            unsafe { free(p.as_ptr()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_growth() {
        let b = CBlock::copy_from(b"\x00\x03abc");
        assert_eq!(b.as_slice(), b"\x00\x03abc");
        let b = b.keep_range(2, 3);
        assert_eq!(b.as_slice(), b"abc");
        let (p, n) = b.into_raw();
        // SAFETY: `p` is the malloc block we just took over.
        let b = unsafe { CBlock::from_raw(NonNull::new(p).unwrap(), n) };
        assert_eq!(b.len(), 3);

        let mut g = GrowBuf::new();
        for i in 0..1000u32 {
            g.extend(&[i as u8], 1000);
            assert!(g.cap <= 1000);
        }
        let blk = g.into_block();
        assert_eq!(blk.len(), 1000);
        assert!(blk
            .as_slice()
            .iter()
            .enumerate()
            .all(|(i, &b)| b == i as u8));
        assert!(GrowBuf::new().into_block().is_empty());
        drop(blk);
        assert_eq!(live_blocks(), 1);
        drop(b);
        assert_eq!(live_blocks(), 0);
    }
}
