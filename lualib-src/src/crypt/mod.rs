//! `skynet.crypt` (also loadable as `client.crypt`): DES, hex, base64, SHA-1 and the small
//! hashes and 64-bit Diffie-Hellman skynet's login protocol uses.
//!
//! The algorithms are plain safe functions in the submodules; this file is the Lua glue. It
//! keeps upstream's argument order, checks and error texts, and writes results straight into a
//! Lua buffer (no other allocation per call).
//!
//! Upstream quirks kept on purpose (scripts may depend on them; all checked against its build):
//! `hexdecode` refuses uppercase but reads `W`..`` ` `` as 0..9 and `g` as 16; `base64decode`
//! skips foreign characters yet fails on trailing ones (see [`codec::base64_decode_into`]);
//! the padding argument is truncated to a C `int` (2^32 means 0); `dhsecret(x, 1)` returns x
//! unreduced when x is the modulus. `md5.core` lives in [`crate::md5core`].
//!
//! One difference: `randomkey` reads the OS random source (upstream: `random()` seeded from
//! time and pid), and when the 8 bytes xor to 0 it flips the low bit of the first byte, so the
//! xor is really never 0 (upstream sets that bit, which leaves the xor 0 when it was already
//! set; both never return the all-zero key).

pub mod codec;
pub mod des;
pub mod hash;

use crate::lua::{ffi, lua_function, new_lib, push_bytes, raise_where, CFunction};
use ffi::lua_State;
use std::ffi::{c_int, CStr};
use std::mem::MaybeUninit;

/// The argument at `idx` as bytes (a string, or a number converted in place), raising Lua's
/// usual "string expected" argument error otherwise.
///
/// # Safety
/// `l` is the running state; the slice lives while the argument stays on the stack.
pub(crate) unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: valid state; Lua keeps `len` bytes at the pointer while the value is on the stack.
    unsafe {
        let p = ffi::luaL_checklstring(l, idx, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// Pushes a string built in place: `build` gets a `cap`-byte area of a Lua buffer and returns
/// how many bytes it wrote, or an error, in which case nothing is pushed as a result (the
/// buffer's own stack slot may stay; the caller is about to raise).
///
/// # Safety
/// `l` is the running state; `build` owns nothing with a destructor (allocation may raise).
pub(crate) unsafe fn push_built<E>(
    l: *mut lua_State,
    cap: usize,
    build: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<(), E> {
    let mut b = MaybeUninit::<ffi::luaL_Buffer>::uninit();
    // SAFETY: valid state; the buffer struct stays in place until the result is pushed, and
    // Lua hands out `cap` writable bytes.
    unsafe {
        let p = ffi::luaL_buffinitsize(l, b.as_mut_ptr(), cap);
        let area = std::slice::from_raw_parts_mut(p.cast::<u8>(), cap);
        let n = build(area)?;
        ffi::luaL_pushresultsize(b.as_mut_ptr(), n);
    }
    Ok(())
}

/// An 8-byte string argument, or the error `msg` (raised like `luaL_error`).
///
/// # Safety
/// `l` is the running state.
unsafe fn check_u64(l: *mut lua_State, idx: c_int, msg: &CStr) -> [u8; 8] {
    // SAFETY: valid state; nothing with a destructor is alive when luaL_error raises.
    unsafe {
        match check_bytes(l, idx).try_into() {
            Ok(v) => v,
            Err(_) => {
                ffi::luaL_error(l, msg.as_ptr());
                unreachable!("luaL_error returned")
            }
        }
    }
}

/// The 8-byte DES key at argument 1.
///
/// # Safety
/// `l` is the running state.
unsafe fn des_key(l: *mut lua_State) -> [u8; 8] {
    // SAFETY: valid state; only plain data is alive when raising.
    unsafe {
        let key = check_bytes(l, 1);
        match key.try_into() {
            Ok(k) => k,
            Err(_) => raise_where(
                l,
                format!("Invalid key size {}, need 8 bytes", key.len() as c_int),
            ),
        }
    }
}

/// The padding mode at argument 3 (default ISO 7816-4), truncated to a C int as upstream does.
///
/// # Safety
/// `l` is the running state.
unsafe fn padding_arg(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { ffi::luaL_optinteger(l, 3, 0) as c_int }
}

/// The padding for `mode`, raising "Invalid padding mode" otherwise.
///
/// # Safety
/// `l` is the running state.
unsafe fn padding_mode(l: *mut lua_State, mode: c_int) -> des::Padding {
    match des::Padding::from_mode(mode) {
        Some(p) => p,
        // SAFETY: valid state; nothing with a destructor is alive.
        None => unsafe { raise_where(l, format!("Invalid padding mode {mode}")) },
    }
}

/// `hashkey(str)` → 8 bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhashkey(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let k = hash::hashkey(check_bytes(l, 1));
        push_bytes(l, &k);
    }
    1
}

/// `randomkey()` → 8 random bytes whose xor is never 0 (so the key is never all zeros, which
/// `dhexchange` refuses).
#[lua_function]
unsafe extern "C-unwind" fn lrandomkey(l: *mut lua_State) -> c_int {
    let k = random_key();
    // SAFETY: the running state.
    unsafe { push_bytes(l, &k) };
    1
}

/// 8 bytes from the OS random source, adjusted so that their xor is not 0.
pub fn random_key() -> [u8; 8] {
    let mut k = [0u8; 8];
    if getrandom::fill(&mut k).is_err() {
        // No OS source: fall back on std's per-process random hash keys.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(crate::lua::monotonic_ns() as u64);
        k = h.finish().to_le_bytes();
    }
    if k.iter().fold(0, |x, b| x ^ b) == 0 {
        k[0] ^= 1;
    }
    k
}

/// `desencode(key8, text, [padding])` → ciphertext (always at least one padding byte).
#[lua_function]
unsafe extern "C-unwind" fn ldesencode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; raises happen with only plain data alive.
    unsafe {
        let key = des_key(l);
        let text = check_bytes(l, 2);
        let mode = padding_mode(l, padding_arg(l));
        let n = des::encrypted_len(text.len());
        let _ = push_built(l, n, |out| {
            des::encrypt_into(&key, text, mode, out);
            Ok::<_, ()>(n)
        });
    }
    1
}

/// `desdecode(key8, cipher, [padding])` → plaintext.
#[lua_function]
unsafe extern "C-unwind" fn ldesdecode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; raises happen with only plain data alive.
    unsafe {
        let key = des_key(l);
        let text = check_bytes(l, 2);
        if text.is_empty() || text.len() % 8 != 0 {
            raise_where(
                l,
                format!("Invalid des crypt text length {}", text.len() as c_int),
            );
        }
        let mode = padding_mode(l, padding_arg(l));
        if push_built(l, text.len(), |out| {
            des::decrypt_into(&key, text, mode, out)
        })
        .is_err()
        {
            ffi::luaL_error(l, c"Invalid des crypt text".as_ptr());
        }
    }
    1
}

/// `hexencode(str)` → lowercase hex.
#[lua_function]
unsafe extern "C-unwind" fn lhexencode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let s = check_bytes(l, 1);
        let _ = push_built(l, s.len() * 2, |out| {
            codec::hex_encode_into(s, out);
            Ok::<_, ()>(out.len())
        });
    }
    1
}

/// `hexdecode(hex)` → bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhexdecode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state; raises happen with only plain data alive.
    unsafe {
        let s = check_bytes(l, 1);
        match push_built(l, s.len() / 2, |out| codec::hex_decode_into(s, out)) {
            Ok(()) => {}
            Err(codec::HexError::OddLength(n)) => {
                raise_where(l, format!("Invalid hex text size {}", n as c_int))
            }
            Err(codec::HexError::Digit) => {
                ffi::luaL_error(l, c"Invalid hex text".as_ptr());
            }
        }
    }
    1
}

/// Arguments 1 and 2 as 8-byte values, checked in upstream's order.
///
/// # Safety
/// `l` is the running state.
unsafe fn read_pair(l: *mut lua_State) -> ([u8; 8], [u8; 8]) {
    // SAFETY: the running state.
    unsafe {
        let x = check_u64(l, 1, c"Invalid uint64 x");
        let y = check_u64(l, 2, c"Invalid uint64 y");
        (x, y)
    }
}

/// `hmac64(x8, y8)` → 8 bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhmac64(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let (x, y) = read_pair(l);
        push_bytes(l, &hash::hmac64(&x, &y));
    }
    1
}

/// `hmac64_md5(x8, y8)` → 8 bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhmac64_md5(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let (x, y) = read_pair(l);
        push_bytes(l, &hash::hmac64_md5(&x, &y));
    }
    1
}

/// `hmac_hash(key8, text)` → 8 bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhmac_hash(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let key = check_u64(l, 1, c"Invalid uint64 key");
        let text = check_bytes(l, 2);
        push_bytes(l, &hash::hmac_hash(&key, text));
    }
    1
}

/// `dhexchange(x8)` → 5^x mod P (8 bytes).
#[lua_function]
unsafe extern "C-unwind" fn ldhexchange(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let x = check_u64(l, 1, c"Invalid dh uint64 key");
        match hash::dhexchange(&x) {
            Some(r) => push_bytes(l, &r),
            None => {
                ffi::luaL_error(l, c"Can't be 0".as_ptr());
            }
        }
    }
    1
}

/// `dhsecret(x8, y8)` → x^y mod P (8 bytes).
#[lua_function]
unsafe extern "C-unwind" fn ldhsecret(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let (x, y) = read_pair(l);
        match hash::dhsecret(&x, &y) {
            Some(r) => push_bytes(l, &r),
            None => {
                ffi::luaL_error(l, c"Can't be 0".as_ptr());
            }
        }
    }
    1
}

/// `base64encode(str)` → base64 with padding.
#[lua_function]
unsafe extern "C-unwind" fn lbase64encode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let s = check_bytes(l, 1);
        let _ = push_built(l, codec::base64_encoded_len(s.len()), |out| {
            codec::base64_encode_into(s, out);
            Ok::<_, ()>(out.len())
        });
    }
    1
}

/// `base64decode(text)` → bytes (skynet's lenient rules, see [`codec::base64_decode_into`]).
#[lua_function]
unsafe extern "C-unwind" fn lbase64decode(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let s = check_bytes(l, 1);
        let cap = codec::base64_decoded_max(s.len());
        if push_built(l, cap, |out| codec::base64_decode_into(s, out)).is_err() {
            ffi::luaL_error(l, c"Invalid base64 text".as_ptr());
        }
    }
    1
}

/// `sha1(str)` → 20-byte digest.
#[lua_function]
unsafe extern "C-unwind" fn lsha1(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let d = hash::sha1(check_bytes(l, 1));
        push_bytes(l, &d);
    }
    1
}

/// `hmac_sha1(key, text)` → 20 bytes.
#[lua_function]
unsafe extern "C-unwind" fn lhmac_sha1(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let key = check_bytes(l, 1);
        let text = check_bytes(l, 2);
        push_bytes(l, &hash::hmac_sha1(key, text));
    }
    1
}

/// `xor_str(a, b)` → a xored with b repeated.
#[lua_function]
unsafe extern "C-unwind" fn lxor_str(l: *mut lua_State) -> c_int {
    // SAFETY: the running state.
    unsafe {
        let a = check_bytes(l, 1);
        let b = check_bytes(l, 2);
        if b.is_empty() {
            ffi::luaL_error(l, c"Can't xor empty string".as_ptr());
        }
        let _ = push_built(l, a.len(), |out| {
            hash::xor_cyclic_into(a, b, out);
            Ok::<_, ()>(out.len())
        });
    }
    1
}

const FUNCS: [(&CStr, CFunction); 16] = [
    (c"hashkey", lhashkey),
    (c"randomkey", lrandomkey),
    (c"desencode", ldesencode),
    (c"desdecode", ldesdecode),
    (c"hexencode", lhexencode),
    (c"hexdecode", lhexdecode),
    (c"hmac64", lhmac64),
    (c"hmac64_md5", lhmac64_md5),
    (c"dhexchange", ldhexchange),
    (c"dhsecret", ldhsecret),
    (c"base64encode", lbase64encode),
    (c"base64decode", lbase64decode),
    (c"sha1", lsha1),
    (c"hmac_sha1", lhmac_sha1),
    (c"hmac_hash", lhmac_hash),
    (c"xor_str", lxor_str),
];

/// `luaopen_skynet_crypt`: a new table each time (as upstream), with `padding`.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_crypt(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        new_lib(l, &FUNCS);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushinteger(l, 0);
        ffi::lua_setfield(l, -2, c"iso7816_4".as_ptr());
        ffi::lua_pushinteger(l, 1);
        ffi::lua_setfield(l, -2, c"pkcs7".as_ptr());
        ffi::lua_setfield(l, -2, c"padding".as_ptr());
    }
    1
}

/// `luaopen_client_crypt`: the same library (with `padding`) for client-side scripts.
///
/// # Safety
/// Called by Lua as a C function.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_client_crypt(l: *mut lua_State) -> c_int {
    // SAFETY: forwarded.
    unsafe { luaopen_skynet_crypt(l) }
}

#[cfg(test)]
mod tests;
