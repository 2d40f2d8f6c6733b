//! Single DES in ECB mode with skynet's two paddings (ISO/IEC 7816-4 and PKCS#7).
//!
//! The cipher follows FIPS 46-3. For speed the round function uses the usual combined
//! "S-box then P" tables, and the halves are kept rotated left by one bit so that each 6-bit
//! E-expansion chunk sits at a byte boundary (the classic software-DES layout). All tables are
//! derived at compile time from the FIPS tables below, so the only data written out by hand is
//! the standard's.

/// Padding scheme of the last block (the numbers are skynet's `crypt.padding` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// 0x80 then zeros (`crypt.padding.iso7816_4` = 0).
    Iso7816_4,
    /// n bytes of value n (`crypt.padding.pkcs7` = 1).
    Pkcs7,
}

impl Padding {
    /// The mode for skynet's padding number, if valid.
    pub fn from_mode(mode: i32) -> Option<Padding> {
        match mode {
            0 => Some(Padding::Iso7816_4),
            1 => Some(Padding::Pkcs7),
            _ => None,
        }
    }
}

/// Why a ciphertext could not be decrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Empty or not a multiple of 8 bytes (carries the length).
    Length(usize),
    /// The last block does not end with a valid padding.
    Padding,
}

/// FIPS 46-3 S-boxes, row-major (row = outer bits, column = inner four bits).
const SBOX: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// FIPS 46-3 permutation P (1-based source bit of each output bit, MSB first).
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];

/// FIPS 46-3 permuted choice 1 (key bit of each bit of C then D).
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];

/// FIPS 46-3 permuted choice 2 (bit of C||D of each subkey bit).
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// Left rotations of C and D before each round's subkey.
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// `SP[k][chunk]`: P applied to S-box k's output for the 6-bit input `chunk` (E-order bits,
/// first bit most significant), rotated left by one like the halves it is xored into.
const SP: [[u32; 64]; 8] = {
    let mut t = [[0u32; 64]; 8];
    let mut k = 0;
    while k < 8 {
        let mut chunk = 0;
        while chunk < 64 {
            let row = ((chunk >> 4) & 2) | (chunk & 1);
            let col = (chunk >> 1) & 15;
            let s = SBOX[k][row * 16 + col] as u32;
            // S-box k fills bits 4k+1..4k+4 (1-based from the MSB) of the P input.
            let input = s << (28 - 4 * k);
            let mut out = 0u32;
            let mut j = 0;
            while j < 32 {
                if input & (1 << (32 - P[j] as u32)) != 0 {
                    out |= 1 << (31 - j);
                }
                j += 1;
            }
            t[k][chunk] = out.rotate_left(1);
            chunk += 1;
        }
        k += 1;
    }
    t
};

/// `PC1_BYTE[i][b]`: the bits of C||D (56 bits, right-aligned) taken from key byte i = b.
const PC1_BYTE: [[u64; 256]; 8] = {
    let mut t = [[0u64; 256]; 8];
    let mut j = 0;
    while j < 56 {
        let src = PC1[j] as usize - 1; // 0-based key bit, MSB of byte 0 first
        let byte = src / 8;
        let mask = 0x80u32 >> (src % 8);
        let mut b = 0;
        while b < 256 {
            if b as u32 & mask != 0 {
                t[byte][b] |= 1 << (55 - j);
            }
            b += 1;
        }
        j += 1;
    }
    t
};

/// Where subkey bit `n` (0-based, of 48) goes in the round-key pair, as a bit of
/// `(even_boxes << 32) | odd_boxes`: the chunk of S-box m (1-based) is placed at byte
/// `(8 - m) / 2` of the even word (m even) or `(7 - m) / 2` of the odd word (m odd), matching
/// where the round function finds the E-expansion chunk of the rotated half.
const fn subkey_bit(n: usize) -> u64 {
    let m = n / 6 + 1;
    let within = 5 - (n % 6) as u32;
    if m % 2 == 0 {
        1 << (32 + (8 - m as u32) * 4 + within)
    } else {
        1 << ((7 - m as u32) * 4 + within)
    }
}

/// `PC2_CHUNK[i][v]`: the round-key bits produced by the 7-bit chunk i of C||D (chunks 0..3 are
/// C, 4..7 are D, most significant first) having value v.
const PC2_CHUNK: [[u64; 128]; 8] = {
    let mut t = [[0u64; 128]; 8];
    let mut n = 0;
    while n < 48 {
        let src = PC2[n] as usize - 1; // 0-based bit of C||D
        let chunk = src / 7;
        let mask = 0x40u32 >> (src % 7);
        let mut v = 0;
        while v < 128 {
            if v as u32 & mask != 0 {
                t[chunk][v] |= subkey_bit(n);
            }
            v += 1;
        }
        n += 1;
    }
    t
};

/// The 16 round keys, each as (even-box word, odd-box word), in encryption order.
#[derive(Clone)]
pub struct Schedule([(u32, u32); 16]);

impl Schedule {
    /// Expands an 8-byte key (parity bits ignored).
    pub fn new(key: &[u8; 8]) -> Schedule {
        let mut cd = 0u64;
        for (i, &b) in key.iter().enumerate() {
            cd |= PC1_BYTE[i][b as usize];
        }
        let mut c = (cd >> 28) as u32;
        let mut d = (cd & 0x0fff_ffff) as u32;
        let mut ks = [(0u32, 0u32); 16];
        for (round, &s) in SHIFTS.iter().enumerate() {
            c = ((c << s) | (c >> (28 - s))) & 0x0fff_ffff;
            d = ((d << s) | (d >> (28 - s))) & 0x0fff_ffff;
            let mut k = 0u64;
            for i in 0..4 {
                k |= PC2_CHUNK[i][((c >> (21 - 7 * i)) & 0x7f) as usize];
                k |= PC2_CHUNK[4 + i][((d >> (21 - 7 * i)) & 0x7f) as usize];
            }
            ks[round] = ((k >> 32) as u32, k as u32);
        }
        Schedule(ks)
    }

    /// The schedule that decrypts what `self` encrypts (round keys reversed).
    pub fn reversed(&self) -> Schedule {
        let mut ks = self.0;
        ks.reverse();
        Schedule(ks)
    }

    /// Encrypts (or, with a reversed schedule, decrypts) one block.
    #[inline]
    pub fn crypt_block(&self, input: &[u8; 8]) -> [u8; 8] {
        let mut l = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);
        let mut r = u32::from_be_bytes([input[4], input[5], input[6], input[7]]);
        initial_permutation(&mut l, &mut r);
        for pair in self.0.chunks_exact(2) {
            l ^= feistel(r, pair[0]);
            r ^= feistel(l, pair[1]);
        }
        final_permutation(&mut r, &mut l);
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&r.to_be_bytes());
        out[4..].copy_from_slice(&l.to_be_bytes());
        out
    }
}

/// Exchanges the bits of `a >> shift` and `b` selected by `mask`.
#[inline(always)]
fn delta_swap(a: &mut u32, b: &mut u32, shift: u32, mask: u32) {
    let t = ((*a >> shift) ^ *b) & mask;
    *b ^= t;
    *a ^= t << shift;
}

/// IP, leaving both halves rotated left by one bit.
#[inline(always)]
fn initial_permutation(l: &mut u32, r: &mut u32) {
    delta_swap(l, r, 4, 0x0f0f_0f0f);
    delta_swap(l, r, 16, 0x0000_ffff);
    delta_swap(r, l, 2, 0x3333_3333);
    delta_swap(r, l, 8, 0x00ff_00ff);
    *r = r.rotate_left(1);
    delta_swap(l, r, 0, 0xaaaa_aaaa);
    *l = l.rotate_left(1);
}

/// The inverse of [`initial_permutation`] (undoes the rotation too).
#[inline(always)]
fn final_permutation(l: &mut u32, r: &mut u32) {
    *l = l.rotate_right(1);
    delta_swap(l, r, 0, 0xaaaa_aaaa);
    *r = r.rotate_right(1);
    delta_swap(r, l, 8, 0x00ff_00ff);
    delta_swap(r, l, 2, 0x3333_3333);
    delta_swap(l, r, 16, 0x0000_ffff);
    delta_swap(l, r, 4, 0x0f0f_0f0f);
}

/// The round function on a rotated half with one round key.
#[inline(always)]
fn feistel(half: u32, (even, odd): (u32, u32)) -> u32 {
    let t = half ^ even;
    let u = half.rotate_right(4) ^ odd;
    SP[7][(t & 0x3f) as usize]
        ^ SP[5][((t >> 8) & 0x3f) as usize]
        ^ SP[3][((t >> 16) & 0x3f) as usize]
        ^ SP[1][((t >> 24) & 0x3f) as usize]
        ^ SP[6][(u & 0x3f) as usize]
        ^ SP[4][((u >> 8) & 0x3f) as usize]
        ^ SP[2][((u >> 16) & 0x3f) as usize]
        ^ SP[0][((u >> 24) & 0x3f) as usize]
}

/// Ciphertext length for `len` bytes of plaintext (always at least one byte of padding).
pub fn encrypted_len(len: usize) -> usize {
    (len + 8) & !7
}

/// Encrypts `text` with padding into `out[..encrypted_len(text.len())]`.
///
/// # Panics
/// If `out` is shorter than [`encrypted_len`].
pub fn encrypt_into(key: &[u8; 8], text: &[u8], padding: Padding, out: &mut [u8]) {
    let ks = Schedule::new(key);
    let blocks = text.chunks_exact(8);
    let tail = blocks.remainder();
    let n = text.len() - tail.len();
    let out = &mut out[..n + 8];
    for (src, dst) in blocks.zip(out.chunks_exact_mut(8)) {
        let block: &[u8; 8] = src.try_into().expect("8-byte chunk");
        dst.copy_from_slice(&ks.crypt_block(block));
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    match padding {
        Padding::Iso7816_4 => last[tail.len()] = 0x80,
        Padding::Pkcs7 => last[tail.len()..].fill((8 - tail.len()) as u8),
    }
    out[n..].copy_from_slice(&ks.crypt_block(&last));
}

/// Decrypts `cipher` into `out[..cipher.len()]` and returns the plaintext length (the padding
/// removed). On a padding error `out` holds the raw decryption.
///
/// # Panics
/// If `out` is shorter than `cipher`.
pub fn decrypt_into(
    key: &[u8; 8],
    cipher: &[u8],
    padding: Padding,
    out: &mut [u8],
) -> Result<usize, DecodeError> {
    if cipher.is_empty() || cipher.len() % 8 != 0 {
        return Err(DecodeError::Length(cipher.len()));
    }
    let ks = Schedule::new(key).reversed();
    let out = &mut out[..cipher.len()];
    for (src, dst) in cipher.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        let block: &[u8; 8] = src.try_into().expect("8-byte chunk");
        dst.copy_from_slice(&ks.crypt_block(block));
    }
    let last: &[u8; 8] = out[out.len() - 8..].try_into().expect("8-byte block");
    let pad = padding_len(last, padding).ok_or(DecodeError::Padding)?;
    Ok(out.len() - pad)
}

/// The padding length (1..=8) at the end of the last plaintext block, if valid.
fn padding_len(last: &[u8; 8], padding: Padding) -> Option<usize> {
    match padding {
        Padding::Iso7816_4 => {
            // Trailing zeros, then the 0x80 marker, all within the block.
            let zeros = last.iter().rev().take_while(|&&b| b == 0).count();
            (zeros < 8 && last[7 - zeros] == 0x80).then_some(zeros + 1)
        }
        Padding::Pkcs7 => {
            let n = last[7] as usize;
            ((1..=8).contains(&n) && last[8 - n..].iter().all(|&b| b as usize == n)).then_some(n)
        }
    }
}

/// Encrypts into a new vector (tests, tools).
pub fn encrypt(key: &[u8; 8], text: &[u8], padding: Padding) -> Vec<u8> {
    let mut out = vec![0; encrypted_len(text.len())];
    encrypt_into(key, text, padding, &mut out);
    out
}

/// Decrypts into a new vector (tests, fuzzing).
pub fn decrypt(key: &[u8; 8], cipher: &[u8], padding: Padding) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0; cipher.len()];
    let n = decrypt_into(key, cipher, padding, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn block(s: &str) -> [u8; 8] {
        h(s).try_into().unwrap()
    }

    /// Single-block vectors from the DES literature (FIPS 46 worked example; NBS/NIST
    /// validation set entries).
    #[test]
    fn standard_block_vectors() {
        let cases = [
            ("133457799bbcdff1", "0123456789abcdef", "85e813540f0ab405"),
            ("0e329232ea6d0d73", "8787878787878787", "0000000000000000"),
            ("0123456789abcdef", "4e6f772069732074", "3fa40e8a984d4815"),
            ("0101010101010101", "95f8a5e5dd31d900", "8000000000000000"),
            ("8001010101010101", "0000000000000000", "95a8d72813daa94d"),
            ("0101010101010101", "0000000000000000", "8ca64de9c1b123a7"),
        ];
        for (k, p, c) in cases {
            let ks = Schedule::new(&block(k));
            assert_eq!(ks.crypt_block(&block(p)), block(c), "key {k}");
            assert_eq!(ks.reversed().crypt_block(&block(c)), block(p), "key {k}");
        }
    }

    /// skynet's own test (test/testcrypt.lua), in hex instead of base64.
    #[test]
    fn skynet_testcrypt_vectors() {
        let key = b"12345678";
        let enc = |t: &[u8], p| encrypt(key, t, p);
        assert_eq!(
            enc(b"hello world", Padding::Iso7816_4),
            h("28dba02eb5f6dd4706b5c56593dcbe2c")
        );
        let pkcs = [
            "feb959b7d4642fcb",
            "83a02d809ba5eaad",
            "35e7c5a46fa6d4ee",
            "2c388551d7f489ec",
            "4fdbbb77305d8bec",
            "00680a771fd089cf",
            "103e702e0737327c",
            "998a3e058213e353",
            "96d0028878d58c89feb959b7d4642fcb",
        ];
        for (n, c) in pkcs.iter().enumerate() {
            assert_eq!(enc(&b"12345678"[..n], Padding::Pkcs7), h(c), "length {n}");
        }
    }

    #[test]
    fn round_trip_and_padding_checks() {
        let key = *b"\x01\x23\x45\x67\x89\xab\xcd\xef";
        for mode in [Padding::Iso7816_4, Padding::Pkcs7] {
            for len in 0..40 {
                let text: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let c = encrypt(&key, &text, mode);
                assert_eq!(c.len(), encrypted_len(len));
                assert_eq!(decrypt(&key, &c, mode).unwrap(), text);
            }
        }
        assert_eq!(
            decrypt(&key, b"", Padding::Pkcs7),
            Err(DecodeError::Length(0))
        );
        assert_eq!(
            decrypt(&key, b"1234567", Padding::Pkcs7),
            Err(DecodeError::Length(7))
        );
        let enc = Schedule::new(&key);
        let raw = |p: &[u8; 8]| enc.crypt_block(p).to_vec();
        let iso = Padding::Iso7816_4;
        let pk = Padding::Pkcs7;
        assert_eq!(decrypt(&key, &raw(&[0; 8]), iso), Err(DecodeError::Padding));
        assert_eq!(
            decrypt(&key, &raw(&[0x80, 0, 0, 0, 0, 0, 0, 0]), iso),
            Ok(vec![])
        );
        assert_eq!(
            decrypt(&key, &raw(b"1234567\x80"), iso).unwrap(),
            b"1234567"
        );
        assert_eq!(
            decrypt(&key, &raw(b"1234567\x01"), iso),
            Err(DecodeError::Padding)
        );
        assert_eq!(decrypt(&key, &raw(&[8; 8]), pk), Ok(vec![]));
        assert_eq!(decrypt(&key, &raw(&[9; 8]), pk), Err(DecodeError::Padding));
        assert_eq!(
            decrypt(&key, &raw(b"1234567\x00"), pk),
            Err(DecodeError::Padding)
        );
        assert_eq!(
            decrypt(&key, &raw(b"123456\x01\x02"), pk),
            Err(DecodeError::Padding)
        );
        assert_eq!(
            decrypt(&key, &raw(b"123456\x02\x02"), pk).unwrap(),
            b"123456"
        );
    }
}
