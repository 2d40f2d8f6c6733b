//! Hex and base64 as skynet's `crypt` module does them, including its exact leniency on
//! malformed input (which callers may rely on).

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Lowercase hex of `src` into `out[..2 * src.len()]`.
pub fn hex_encode_into(src: &[u8], out: &mut [u8]) {
    for (&b, pair) in src.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[(b >> 4) as usize];
        pair[1] = HEX_DIGITS[(b & 15) as usize];
    }
}

/// Why hex text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// Odd number of characters (carries the length).
    OddLength(usize),
    /// A character that is not a digit.
    Digit,
}

/// The value of one hex digit as skynet reads it: `0-9` and `a-f`, and also the characters it
/// accepts by accident of its arithmetic (`W` to `` ` `` read as 0..9, `g` as 16). Uppercase
/// letters are refused.
#[inline]
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'W'..=b'g' => Some(c - (b'a' - 10)),
        _ => None,
    }
}

/// Decodes hex into `out[..src.len() / 2]`, returning that length. A pair whose high digit is
/// the out-of-range 16 loses that bit (the byte is taken modulo 256), as skynet does.
pub fn hex_decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, HexError> {
    if src.len() % 2 != 0 {
        return Err(HexError::OddLength(src.len()));
    }
    for (pair, o) in src.chunks_exact(2).zip(out.iter_mut()) {
        let hi = hex_value(pair[0]).ok_or(HexError::Digit)?;
        let lo = hex_value(pair[1]).ok_or(HexError::Digit)?;
        *o = (hi << 4) | lo; // hi = 16 shifts out of the byte
    }
    Ok(src.len() / 2)
}

/// Decodes hex into a new vector (tests, fuzzing).
pub fn hex_decode(src: &[u8]) -> Result<Vec<u8>, HexError> {
    let mut out = vec![0; src.len() / 2];
    hex_decode_into(src, &mut out)?;
    Ok(out)
}

/// Base64 length (with `=` padding) of `len` bytes.
pub fn base64_encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Standard base64 with `=` padding into `out[..base64_encoded_len(src.len())]`.
pub fn base64_encode_into(src: &[u8], out: &mut [u8]) {
    let sym = |v: u32| B64_ALPHABET[(v & 63) as usize];
    let groups = src.chunks_exact(3);
    let tail = groups.remainder();
    let mut o = 0;
    for g in groups {
        let v = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        out[o..o + 4].copy_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
        o += 4;
    }
    match *tail {
        [a] => {
            let v = u32::from(a);
            out[o..o + 4].copy_from_slice(&[sym(v >> 2), sym(v << 4), b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 8 | u32::from(b);
            out[o..o + 4].copy_from_slice(&[sym(v >> 10), sym(v >> 4), sym(v << 2), b'=']);
        }
        _ => {}
    }
}

/// Base64 text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base64Error;

/// Upper bound of the decoded length of `len` characters (the output buffer size).
pub fn base64_decoded_max(len: usize) -> usize {
    len.div_ceil(4) * 3
}

/// A base64 symbol's class: its 6-bit value, padding, or a character to skip.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sym {
    Value(u8),
    Pad,
    Skip,
}

#[inline]
fn b64_class(c: u8) -> Sym {
    match c {
        b'A'..=b'Z' => Sym::Value(c - b'A'),
        b'a'..=b'z' => Sym::Value(c - b'a' + 26),
        b'0'..=b'9' => Sym::Value(c - b'0' + 52),
        b'+' => Sym::Value(62),
        b'/' => Sym::Value(63),
        b'=' => Sym::Pad,
        _ => Sym::Skip,
    }
}

/// Decodes base64 into `out` (at least [`base64_decoded_max`] bytes), returning the decoded
/// length. skynet's rules, reproduced exactly:
/// - characters outside the alphabet and `=` (whitespace included) are skipped;
/// - input is read in quads of symbols; a quad cut short by the end of the text is completed
///   with `=`, so missing padding is accepted, but a trailing run of skipped characters after
///   the last full quad starts an all-padding quad, which is an error;
/// - a quad has at most two `=`, only at its end, and the unused low bits before the padding
///   must be zero;
/// - decoding goes on after a padded quad (`"QQ==QQ=="` is two bytes).
pub fn base64_decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    let mut i = 0;
    let mut o = 0;
    while i < src.len() {
        let mut quad = [Sym::Pad; 4];
        let mut pads = 0;
        let mut j = 0;
        while j < 4 {
            let s = if i < src.len() {
                b64_class(src[i])
            } else {
                Sym::Pad
            };
            i += 1;
            if s == Sym::Skip {
                continue;
            }
            if s == Sym::Pad {
                pads += 1;
            }
            quad[j] = s;
            j += 1;
        }
        let v = |k: usize| match quad[k] {
            Sym::Value(v) => u32::from(v),
            _ => 0,
        };
        match (pads, quad[2], quad[3]) {
            (0, _, _) => {
                let n = v(0) << 18 | v(1) << 12 | v(2) << 6 | v(3);
                out[o..o + 3].copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
                o += 3;
            }
            (1, Sym::Value(c), Sym::Pad) if c & 3 == 0 => {
                let n = v(0) << 10 | v(1) << 4 | v(2) >> 2;
                out[o..o + 2].copy_from_slice(&[(n >> 8) as u8, n as u8]);
                o += 2;
            }
            (2, Sym::Pad, Sym::Pad) if v(1) & 15 == 0 => {
                out[o] = (v(0) << 2 | v(1) >> 4) as u8;
                o += 1;
            }
            _ => return Err(Base64Error),
        }
    }
    Ok(o)
}

/// Decodes base64 into a new vector (tests, fuzzing).
pub fn base64_decode(src: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = vec![0; base64_decoded_max(src.len())];
    let n = base64_decode_into(src, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Base64 of `src` as a new vector.
pub fn base64_encode(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0; base64_encoded_len(src.len())];
    base64_encode_into(src, &mut out);
    out
}

/// Hex of `src` as a new vector.
pub fn hex_encode(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0; src.len() * 2];
    hex_encode_into(src, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 section 10 test vectors.
    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64_encode(plain), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain);
        }
    }

    #[test]
    fn base64_leniency_matches_skynet() {
        let ok = |s: &[u8], want: &[u8]| assert_eq!(base64_decode(s).unwrap(), want, "{s:?}");
        let bad = |s: &[u8]| assert_eq!(base64_decode(s), Err(Base64Error), "{s:?}");
        ok(b"QQ", b"A");
        ok(b"QUI", b"AB");
        ok(b"QQ=", b"A");
        ok(b"QU JD", b"ABC");
        ok(b" QUJD", b"ABC");
        ok(b"QQ==QQ==", b"AA");
        ok(b"Q\x00Q==", b"A");
        ok(b"\xffQQ==", b"A");
        bad(b"QUJD\n"); // trailing skipped characters start an all-padding quad
        bad(b" ");
        bad(b"Q");
        bad(b"Q===");
        bad(b"====");
        bad(b"QR=="); // non-zero unused bits
        bad(b"QUJ=");
        bad(b"A=A=");
        bad(b"=AAA");
    }

    #[test]
    fn hex_matches_skynet() {
        assert_eq!(hex_encode(b"\x00\x01\xab\xff"), b"0001abff");
        assert_eq!(hex_decode(b"0001abff").unwrap(), b"\x00\x01\xab\xff");
        assert_eq!(hex_decode(b"abc"), Err(HexError::OddLength(3)));
        assert_eq!(hex_decode(b"FF"), Err(HexError::Digit));
        assert_eq!(hex_decode(b"0:"), Err(HexError::Digit));
        // The accidental digits.
        assert_eq!(hex_decode(b"WX`a").unwrap(), b"\x01\x9a");
        assert_eq!(hex_decode(b"0gg0gg").unwrap(), b"\x10\x00\x10");
    }
}
