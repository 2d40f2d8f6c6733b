//! `md5.core` (the keplerproject lua-md5 library skynet ships): `sum`, `exor`, and the MD5
//! cipher-feedback stream cipher `crypt` / `decrypt`. skynet's `lualib/md5.lua` adds `sumhexa`
//! and `hmacmd5` in Lua on top.
//!
//! The cipher: a block of 16 bytes of seed (zero-padded) followed by the key; each 16-byte
//! chunk of text is xored with MD5(block), and the resulting ciphertext chunk replaces the
//! start of the seed area before the next chunk. `crypt` output is
//! `[seed length][seed][ciphertext]`.

use crate::crypt::{check_bytes, push_built};
use crate::lua::{ffi, lua_function, new_lib, push_bytes, raise_where, CFunction};
use ffi::lua_State;
use std::ffi::{c_int, CStr};

/// Longest seed `crypt` accepts.
pub const MAX_SEED: usize = 16;
/// Longest key `crypt` / `decrypt` accept.
pub const MAX_KEY: usize = 256;

/// The MD5 digest (RFC 1321).
pub fn sum(data: &[u8]) -> [u8; 16] {
    md5::compute(data).0
}

/// The keystream state: seed area then key.
struct Block {
    buf: [u8; MAX_SEED + MAX_KEY],
    len: usize,
}

impl Block {
    /// `seed` ≤ 16 bytes, `key` ≤ 256 bytes (checked by the callers).
    fn new(seed: &[u8], key: &[u8]) -> Block {
        let mut buf = [0u8; MAX_SEED + MAX_KEY];
        buf[..seed.len()].copy_from_slice(seed);
        buf[MAX_SEED..MAX_SEED + key.len()].copy_from_slice(key);
        Block {
            buf,
            len: MAX_SEED + key.len(),
        }
    }

    fn pad(&self) -> [u8; 16] {
        sum(&self.buf[..self.len])
    }
}

/// Encrypts `msg` into `out[..msg.len()]` (no header).
pub fn cfb_encrypt(seed: &[u8], key: &[u8], msg: &[u8], out: &mut [u8]) {
    let mut block = Block::new(seed, key);
    for (chunk, dst) in msg.chunks(16).zip(out.chunks_mut(16)) {
        let pad = block.pad();
        for ((d, &m), &p) in dst.iter_mut().zip(chunk).zip(&pad) {
            *d = m ^ p;
        }
        block.buf[..chunk.len()].copy_from_slice(&dst[..chunk.len()]);
    }
}

/// Decrypts `cipher` into `out[..cipher.len()]` (no header).
pub fn cfb_decrypt(seed: &[u8], key: &[u8], cipher: &[u8], out: &mut [u8]) {
    let mut block = Block::new(seed, key);
    for (chunk, dst) in cipher.chunks(16).zip(out.chunks_mut(16)) {
        let pad = block.pad();
        for ((d, &c), &p) in dst.iter_mut().zip(chunk).zip(&pad) {
            *d = c ^ p;
        }
        block.buf[..chunk.len()].copy_from_slice(chunk);
    }
}

/// Splits `crypt` output into (seed, ciphertext), if its header is valid. The header byte is
/// read as a C `char` (signed), so 0x80 and above are never a valid length.
pub fn split_cipher(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = text.first().copied().unwrap_or(0) as usize;
    (n <= MAX_SEED && text.len() > n).then(|| (&text[1..=n], &text[n + 1..]))
}

/// `sum(str)` → 16-byte MD5.
#[lua_function]
unsafe extern "C-unwind" fn lsum(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let d = sum(check_bytes(l, 1));
        push_bytes(l, &d);
    }
    1
}

/// `exor(a, b)` → a xor b (same lengths).
#[lua_function]
unsafe extern "C-unwind" fn lexor(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive when raising.
    unsafe {
        let a = check_bytes(l, 1);
        let b = check_bytes(l, 2);
        if a.len() != b.len() {
            ffi::luaL_argerror(l, 2, c"lengths must be equal".as_ptr());
        }
        let _ = push_built(l, a.len(), |out| {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = x ^ y;
            }
            Ok::<_, ()>(out.len())
        });
    }
    1
}

/// The key at argument 2, at most [`MAX_KEY`] bytes.
///
/// # Safety
/// `l` is the running state.
unsafe fn key_arg<'a>(l: *mut lua_State) -> &'a [u8] {
    // SAFETY: the running state; only plain data is alive when raising.
    unsafe {
        let key = check_bytes(l, 2);
        if key.len() > MAX_KEY {
            raise_where(l, format!("key too long (> {MAX_KEY})"));
        }
        key
    }
}

/// `crypt(msg, key, [seed])` → `[#seed][seed][ciphertext]`; the default seed is the current
/// `time_t` in native byte order.
#[lua_function]
unsafe extern "C-unwind" fn lcrypt(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive when raising.
    unsafe {
        let msg = check_bytes(l, 1);
        if ffi::lua_type(l, 3) == ffi::LUA_TNONE {
            // Pushed on top, which is argument 3 only when exactly two were given; with one,
            // argument 3 stays missing and is reported as such below, as upstream does.
            let now = libc::time(std::ptr::null_mut());
            push_bytes(l, &now.to_ne_bytes());
        }
        let seed = check_bytes(l, 3);
        if seed.len() > MAX_SEED {
            raise_where(l, format!("seed too long (> {MAX_SEED})"));
        }
        let key = key_arg(l);
        let _ = push_built(l, 1 + seed.len() + msg.len(), |out| {
            out[0] = seed.len() as u8;
            out[1..=seed.len()].copy_from_slice(seed);
            cfb_encrypt(seed, key, msg, &mut out[1 + seed.len()..]);
            Ok::<_, ()>(out.len())
        });
    }
    1
}

/// `decrypt(cipher, key)` → plaintext.
#[lua_function]
unsafe extern "C-unwind" fn ldecrypt(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; only plain data is alive when raising.
    unsafe {
        let text = check_bytes(l, 1);
        let Some((seed, cipher)) = split_cipher(text) else {
            ffi::luaL_argerror(l, 1, c"invalid cyphered string".as_ptr());
            unreachable!("luaL_argerror returned");
        };
        let key = key_arg(l);
        let _ = push_built(l, cipher.len(), |out| {
            cfb_decrypt(seed, key, cipher, out);
            Ok::<_, ()>(out.len())
        });
    }
    1
}

const FUNCS: [(&CStr, CFunction); 4] = [
    (c"sum", lsum),
    (c"exor", lexor),
    (c"crypt", lcrypt),
    (c"decrypt", ldecrypt),
];

/// `luaopen_md5_core`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_md5_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        new_lib(l, &FUNCS);
        for (k, v) in [
            (c"_COPYRIGHT", c"Copyright (C) 2003-2013 PUC-Rio"),
            (c"_DESCRIPTION", c"Basic cryptographic facilities"),
            (c"_VERSION", c"MD5 1.2"),
        ] {
            ffi::lua_pushstring(l, v.as_ptr());
            ffi::lua_setfield(l, -2, k.as_ptr());
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// RFC 1321 appendix A.5 test suite.
    #[test]
    fn rfc1321_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (m, want) in cases {
            assert_eq!(hex(&sum(m)), want);
        }
    }

    #[test]
    fn cfb_round_trip_and_header() {
        for len in 0..50 {
            let msg: Vec<u8> = (0..len as u8).collect();
            let mut c = vec![0; len];
            cfb_encrypt(b"seed", b"key", &msg, &mut c);
            let mut p = vec![0; len];
            cfb_decrypt(b"seed", b"key", &c, &mut p);
            assert_eq!(p, msg);
        }
        assert_eq!(split_cipher(b""), None);
        assert_eq!(split_cipher(b"\x00"), Some((&b""[..], &b""[..])));
        assert_eq!(split_cipher(b"\x02ab"), Some((&b"ab"[..], &b""[..])));
        assert_eq!(split_cipher(b"\x03ab"), None);
        assert_eq!(split_cipher(b"\x11aaaaaaaaaaaaaaaaaaaa"), None);
        assert_eq!(split_cipher(&[0x80; 300]), None);
    }

    /// The first keystream chunk is MD5(seed padded to 16 || key).
    #[test]
    fn cfb_first_chunk_is_md5_of_block() {
        let mut block = [0u8; 19];
        block[..2].copy_from_slice(b"ab");
        block[16..].copy_from_slice(b"key");
        let pad = sum(&block);
        let mut c = [0u8; 16];
        cfb_encrypt(b"ab", b"key", &[0; 16], &mut c);
        assert_eq!(c, pad);
    }
}
