//! skynet's small hashes and key-exchange arithmetic (hashkey, hmac64, hmac64_md5, hmac_hash,
//! the 64-bit Diffie-Hellman), plus SHA-1 and HMAC-SHA1 on top of the `sha1` crate.

use sha1::{Digest, Sha1};

/// skynet's 8-byte string hash: a DJB hash (low 4 bytes) and a JS hash (high 4 bytes), both
/// little-endian.
pub fn hashkey(s: &[u8]) -> [u8; 8] {
    let mut djb: u32 = 5381;
    let mut js: u32 = 1_315_423_911;
    for &c in s {
        djb = djb.wrapping_add((djb << 5).wrapping_add(u32::from(c)));
        js ^= (js << 5).wrapping_add(u32::from(c)).wrapping_add(js >> 2);
    }
    let mut out = [0; 8];
    out[..4].copy_from_slice(&djb.to_le_bytes());
    out[4..].copy_from_slice(&js.to_le_bytes());
    out
}

/// The two little-endian 32-bit words of an 8-byte value (low word first).
fn words(v: &[u8; 8]) -> [u32; 2] {
    [
        u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
        u32::from_le_bytes([v[4], v[5], v[6], v[7]]),
    ]
}

fn from_words(w: [u32; 2]) -> [u8; 8] {
    let mut out = [0; 8];
    out[..4].copy_from_slice(&w[0].to_le_bytes());
    out[4..].copy_from_slice(&w[1].to_le_bytes());
    out
}

/// The MD5 initial state (RFC 1321).
const MD5_INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// One MD5 compression of the block `w` from the initial state, returning the working
/// variables without the final feed-forward addition (what skynet's hmac64 mixes).
fn md5_rounds(w: &[u32; 16]) -> [u32; 4] {
    // RFC 1321: per-round shifts and the sine-derived constants.
    const SHIFT: [[u32; 4]; 4] = [
        [7, 12, 17, 22],
        [5, 9, 14, 20],
        [4, 11, 16, 23],
        [6, 10, 15, 21],
    ];
    let [mut a, mut b, mut c, mut d] = MD5_INIT;
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let sum = a
            .wrapping_add(f)
            .wrapping_add(MD5_SINES[i])
            .wrapping_add(w[g]);
        let next_b = b.wrapping_add(sum.rotate_left(SHIFT[i / 16][i % 4]));
        (a, b, c, d) = (d, next_b, b, c);
    }
    [a, b, c, d]
}

/// floor(abs(sin(i + 1)) * 2^32), RFC 1321's table T.
const MD5_SINES: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// skynet's hmac64 core on words: one unpadded MD5 compression of the block made of
/// (x high, x low, y high, y low) four times, folded to 64 bits as (c ^ d, a ^ b).
fn hmac64_words(x: [u32; 2], y: [u32; 2]) -> [u32; 2] {
    let mut w = [0u32; 16];
    for q in w.chunks_exact_mut(4) {
        q.copy_from_slice(&[x[1], x[0], y[1], y[0]]);
    }
    let [a, b, c, d] = md5_rounds(&w);
    [c ^ d, a ^ b]
}

/// `crypt.hmac64(x, y)`.
pub fn hmac64(x: &[u8; 8], y: &[u8; 8]) -> [u8; 8] {
    from_words(hmac64_words(words(x), words(y)))
}

/// `crypt.hmac64_md5(x, y)`: m = MD5((x .. y) x 3); m[0..8] xor m[8..16].
pub fn hmac64_md5(x: &[u8; 8], y: &[u8; 8]) -> [u8; 8] {
    let mut msg = [0u8; 48];
    for part in msg.chunks_exact_mut(16) {
        part[..8].copy_from_slice(x);
        part[8..].copy_from_slice(y);
    }
    let m = md5::compute(msg).0;
    let mut out = [0; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m[i] ^ m[i + 8];
    }
    out
}

/// `crypt.hmac_hash(key, text)`: hmac64 of hashkey(text) with the key.
pub fn hmac_hash(key: &[u8; 8], text: &[u8]) -> [u8; 8] {
    from_words(hmac64_words(words(&hashkey(text)), words(key)))
}

/// The Diffie-Hellman modulus: the largest prime below 2^64 (2^64 - 59).
pub const DH_P: u64 = 0xffff_ffff_ffff_ffc5;

/// The Diffie-Hellman generator.
pub const DH_G: u64 = 5;

fn mul_mod(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(DH_P)) as u64
}

/// a^b mod P as skynet computes it (b > 0). A base above P is reduced first; a base equal to P
/// is not, so `pow_mod(P, 1)` is P itself (skynet returns the base unreduced for exponent 1).
pub fn pow_mod(a: u64, b: u64) -> u64 {
    debug_assert!(b > 0);
    let a = if a > DH_P { a % DH_P } else { a };
    if b == 1 {
        return a;
    }
    let mut result = 1u64;
    let mut base = a;
    let mut e = b;
    while e > 0 {
        if e & 1 == 1 {
            result = mul_mod(result, base);
        }
        base = mul_mod(base, base);
        e >>= 1;
    }
    result
}

/// `crypt.dhexchange(x)`: G^x mod P; `None` for x = 0 (refused).
pub fn dhexchange(x: &[u8; 8]) -> Option<[u8; 8]> {
    let x = u64::from_le_bytes(*x);
    (x != 0).then(|| pow_mod(DH_G, x).to_le_bytes())
}

/// `crypt.dhsecret(x, y)`: x^y mod P; `None` if either is 0 (refused).
pub fn dhsecret(x: &[u8; 8], y: &[u8; 8]) -> Option<[u8; 8]> {
    let x = u64::from_le_bytes(*x);
    let y = u64::from_le_bytes(*y);
    (x != 0 && y != 0).then(|| pow_mod(x, y).to_le_bytes())
}

/// SHA-1 (FIPS 180-4).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// HMAC-SHA1 (RFC 2104); keys longer than the 64-byte block are hashed first.
pub fn hmac_sha1(key: &[u8], text: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| {
        let mut p = k;
        p.iter_mut().for_each(|b| *b ^= x);
        p
    };
    let mut inner = Sha1::new();
    inner.update(pad(0x36));
    inner.update(text);
    let mut outer = Sha1::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `a` xored with `b` repeated (`b` non-empty) into `out[..a.len()]`.
pub fn xor_cyclic_into(a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b.iter().cycle()) {
        *o = x ^ y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// FIPS 180 examples and the million-'a' vector.
    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    /// RFC 2202 section 3 test cases.
    #[test]
    fn hmac_sha1_rfc2202() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                (1..=25).collect(),
                vec![0xcd; 50],
                "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
            ),
            (
                vec![0x0c; 20],
                b"Test With Truncation".to_vec(),
                "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hex(&hmac_sha1(&key, &data)), want);
        }
    }

    #[test]
    fn hmac64_md5_is_folded_md5() {
        let (a, b) = (*b"abcdefgh", *b"12345678");
        let m = md5::compute(b"abcdefgh12345678abcdefgh12345678abcdefgh12345678").0;
        let want: Vec<u8> = (0..8).map(|i| m[i] ^ m[i + 8]).collect();
        assert_eq!(hmac64_md5(&a, &b).to_vec(), want);
    }

    #[test]
    fn diffie_hellman_agrees() {
        let a = 0x0123_4567_89ab_cdefu64.to_le_bytes();
        let b = 0xfedc_ba98_7654_3210u64.to_le_bytes();
        let pa = dhexchange(&a).unwrap();
        let pb = dhexchange(&b).unwrap();
        assert_eq!(dhsecret(&pa, &b), dhsecret(&pb, &a));
        assert_eq!(dhexchange(&[0; 8]), None);
        assert_eq!(dhsecret(&[0; 8], &a), None);
        assert_eq!(pow_mod(DH_P, 1), DH_P);
        assert_eq!(pow_mod(DH_P, 2), 0);
        assert_eq!(pow_mod(u64::MAX, 1), u64::MAX - DH_P);
        assert_eq!(pow_mod(5, 1), 5);
        assert_eq!(pow_mod(5, 3), 125);
        // Fermat: a^(p-1) = 1.
        assert_eq!(pow_mod(12345, DH_P - 1), 1);
    }

    #[test]
    fn hashkey_known() {
        // djb("") = 5381, js("") = 1315423911.
        let k = hashkey(b"");
        assert_eq!(u32::from_le_bytes(k[..4].try_into().unwrap()), 5381);
        assert_eq!(
            u32::from_le_bytes(k[4..].try_into().unwrap()),
            1_315_423_911
        );
    }
}
