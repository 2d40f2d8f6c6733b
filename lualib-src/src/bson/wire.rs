//! The BSON byte format as skynet's `bson` module reads and writes it, in plain safe Rust:
//! the string check used on keys and strings, the bounds-checked document walker (shared by
//! `bson.decode`, the fuzz target and the tests) and the field-offset walk behind `makeindex`.
//!
//! The walker reports every element to a [`Sink`]; the Lua glue pushes Lua values, a test sink
//! builds a [`Node`] tree. Every length read from the input is checked against the bytes that
//! are really there before it is used, nesting is bounded by [`MAX_DECODE_DEPTH`], and nothing
//! is allocated from a declared size.

use std::fmt;

pub const REAL: u8 = 1;
pub const STRING: u8 = 2;
pub const DOCUMENT: u8 = 3;
pub const ARRAY: u8 = 4;
pub const BINARY: u8 = 5;
pub const OBJECTID: u8 = 7;
pub const BOOLEAN: u8 = 8;
pub const DATE: u8 = 9;
pub const NULL: u8 = 10;
pub const REGEX: u8 = 11;
pub const DBPOINTER: u8 = 12;
pub const JSCODE: u8 = 13;
pub const SYMBOL: u8 = 14;
pub const CODEWS: u8 = 15;
pub const INT32: u8 = 16;
pub const TIMESTAMP: u8 = 17;
pub const INT64: u8 = 18;
pub const MINKEY: u8 = 255;
pub const MAXKEY: u8 = 127;

/// Deepest table nesting `encode` accepts below the top-level document (upstream's limit).
pub const MAX_ENCODE_DEPTH: u32 = 128;
/// Deepest document nesting `decode` accepts (the top-level document is level 0). Upstream has
/// no limit (it recurses on the C stack); this one is far above anything `encode` or MongoDB
/// (100 levels) produces.
pub const MAX_DECODE_DEPTH: u32 = 1024;

/// Whether `s` is accepted as a BSON string: UTF-8 sequences of 1 to 4 bytes, no overlong
/// forms, nothing above U+10FFFF. Surrogate code points and NUL bytes pass, as upstream.
pub fn utf8_ok(s: &[u8]) -> bool {
    if s.is_ascii() {
        return true;
    }
    // Strict UTF-8 is a subset of what we accept; only the rest needs the slow walk.
    if std::str::from_utf8(s).is_ok() {
        return true;
    }
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            i += 1;
            continue;
        }
        let (count, min, init) = match c {
            0xC0..=0xDF => (1, 0x80, u32::from(c & 0x1F)),
            0xE0..=0xEF => (2, 0x800, u32::from(c & 0x0F)),
            0xF0..=0xF7 => (3, 0x10000, u32::from(c & 0x07)),
            _ => return false,
        };
        let Some(tail) = s.get(i + 1..i + 1 + count) else {
            return false;
        };
        let mut cp = init;
        for &b in tail {
            if b & 0xC0 != 0x80 {
                return false;
            }
            cp = (cp << 6) | u32::from(b & 0x3F);
        }
        if cp < min || cp > 0x10FFFF {
            return false;
        }
        i += 1 + count;
    }
    true
}

/// Why a document could not be decoded; `Display` gives upstream's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// "Invalid bson block (have:need)": a length runs past the bytes available.
    Block { have: i64, need: i64 },
    /// A key or regex without its terminating NUL.
    Cstring,
    /// A document whose last byte is not NUL.
    DocumentEnd,
    /// A string whose length field is not positive.
    StringLength(i32),
    /// An element type this module does not read.
    Type(u8),
    /// Nested deeper than [`MAX_DECODE_DEPTH`].
    TooDeep,
    /// The sink could not grow (Lua stack exhausted).
    StackOverflow,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Block { have, need } => write!(f, "Invalid bson block ({have}:{need})"),
            DecodeError::Cstring => f.write_str("Invalid bson block : cstring"),
            DecodeError::DocumentEnd => f.write_str("Invalid document end"),
            DecodeError::StringLength(n) => write!(f, "Invalid bson string , length = {n}"),
            DecodeError::Type(t) => write!(f, "Invalid bson type : {t}"),
            DecodeError::TooDeep => f.write_str("Too depth while decoding bson"),
            DecodeError::StackOverflow => f.write_str("stack overflow"),
        }
    }
}

/// Bounds-checked cursor; `pos` is an offset into the whole input (makeindex needs it).
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn left(&self) -> usize {
        self.end - self.pos
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    #[inline(always)]
    fn short(&self, need: i64) -> DecodeError {
        DecodeError::Block {
            have: self.left() as i64,
            need,
        }
    }

    /// The next `n` bytes; `n` comes from the input, so negative or oversized is an error.
    #[inline(always)]
    fn take(&mut self, n: i64) -> Result<&'a [u8], DecodeError> {
        match usize::try_from(n) {
            Ok(k) if k <= self.left() => {
                let s = &self.data[self.pos..self.pos + k];
                self.pos += k;
                Ok(s)
            }
            _ => Err(self.short(n)),
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N as i64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline(always)]
    fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_le_bytes)
    }

    #[inline(always)]
    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    /// Bytes up to (not including) the next NUL, which is consumed.
    #[inline(always)]
    fn cstring(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..self.end];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Cstring)?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
}

/// A key of a decoded element: documents give names, arrays give 1-based indices.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    Name(&'a [u8]),
    Index(i64),
}

/// A scalar element. Everything but numbers, booleans and plain strings becomes, in Lua, a
/// tagged string `"\0" .. tag .. payload` (see [`Value::tagged`]).
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Double(f64),
    Str(&'a [u8]),
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Binary {
        subtype: u8,
        data: &'a [u8],
    },
    ObjectId(&'a [u8]),
    /// Seconds (milliseconds / 1000, truncated to 32 bits as upstream does).
    Date(u32),
    /// The 8 raw bytes: increment then time.
    Timestamp(&'a [u8]),
    Regex {
        pattern: &'a [u8],
        options: &'a [u8],
    },
    /// null, minkey, maxkey: the tag alone.
    Marker(u8),
    /// dbpointer, JS code, symbol, code with scope: their raw bytes, length fields included.
    Raw {
        tag: u8,
        bytes: &'a [u8],
    },
}

impl<'a> Value<'a> {
    /// For tagged values: the tag and the payload pieces after `"\0" .. tag`.
    pub fn tagged(&self, scratch: &'a mut [u8; 4]) -> Option<(u8, [&'a [u8]; 4])> {
        const E: &[u8] = &[];
        const Z: &[u8] = &[0];
        Some(match *self {
            Value::Binary { subtype, data } => {
                scratch[0] = subtype;
                (BINARY, [&scratch[..1], data, E, E])
            }
            Value::ObjectId(b) => (OBJECTID, [b, E, E, E]),
            Value::Date(d) => {
                *scratch = d.to_le_bytes();
                (DATE, [&scratch[..], E, E, E])
            }
            Value::Timestamp(b) => (TIMESTAMP, [b, E, E, E]),
            Value::Regex { pattern, options } => (REGEX, [pattern, Z, options, Z]),
            Value::Marker(t) => (t, [E, E, E, E]),
            Value::Raw { tag, bytes } => (tag, [bytes, E, E, E]),
            _ => return None,
        })
    }
}

/// Receives a decoded document. For each element the walker calls `key`, then either `value`
/// or (for a nested document) `open` and the nested elements, then `set`.
pub trait Sink {
    /// Starts a (nested or top-level) document.
    fn open(&mut self) -> Result<(), DecodeError>;
    fn key(&mut self, key: Key<'_>);
    fn value(&mut self, value: Value<'_>);
    /// Stores the last key and value (or finished document) into the open document.
    fn set(&mut self);
}

/// `strtol(key, NULL, 10) + 1`, truncated to a C `int`: the 1-based index of an array element.
fn array_index(key: &[u8]) -> i64 {
    let mut i = 0;
    while i < key.len() && matches!(key[i], b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < key.len() && (key[i] == b'+' || key[i] == b'-') {
        neg = key[i] == b'-';
        i += 1;
    }
    let mut v: i64 = 0;
    while i < key.len() && key[i].is_ascii_digit() {
        let d = i64::from(key[i] - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    i64::from(v.wrapping_add(1) as i32)
}

/// Decodes the document at the start of `doc` (whose length field must describe exactly the
/// bytes given, or fewer) into `sink`.
pub fn decode<S: Sink>(doc: &[u8], sink: &mut S) -> Result<(), DecodeError> {
    let mut r = Reader {
        data: doc,
        pos: 0,
        end: doc.len(),
    };
    document(&mut r, false, 0, sink)
}

/// Reads one document (length, elements, NUL) from `r` into `sink`.
fn document<S: Sink>(
    r: &mut Reader<'_>,
    array: bool,
    depth: u32,
    sink: &mut S,
) -> Result<(), DecodeError> {
    if depth > MAX_DECODE_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let sz = i64::from(r.i32()?);
    if sz < 5 {
        // Upstream walks backwards here; report what its first failing check prints.
        return Err(DecodeError::Block {
            have: sz - 5,
            need: 1,
        });
    }
    let body = r.take(sz - 5)?;
    let start = r.pos - body.len();
    if r.byte()? != 0 {
        return Err(DecodeError::DocumentEnd);
    }
    let mut t = Reader {
        data: r.data,
        pos: start,
        end: start + body.len(),
    };
    sink.open()?;
    while !t.is_empty() {
        let bt = t.byte()?;
        let key = t.cstring()?;
        sink.key(if array {
            Key::Index(array_index(key))
        } else {
            Key::Name(key)
        });
        let v = match bt {
            REAL => Value::Double(f64::from_bits(t.i64()? as u64)),
            BOOLEAN => Value::Bool(t.byte()? != 0),
            STRING => {
                let n = t.i32()?;
                if n <= 0 {
                    return Err(DecodeError::StringLength(n));
                }
                let s = t.take(i64::from(n))?;
                Value::Str(&s[..s.len() - 1])
            }
            DOCUMENT | ARRAY => {
                document(&mut t, bt == ARRAY, depth + 1, sink)?;
                sink.set();
                continue;
            }
            BINARY => {
                let n = t.i32()?;
                let subtype = t.byte()?;
                let data = t.take(i64::from(n))?;
                Value::Binary { subtype, data }
            }
            OBJECTID => Value::ObjectId(t.take(12)?),
            DATE => Value::Date((t.i64()? / 1000) as u32),
            NULL | MINKEY | MAXKEY => Value::Marker(bt),
            REGEX => {
                let pattern = t.cstring()?;
                let options = t.cstring()?;
                Value::Regex { pattern, options }
            }
            INT32 => Value::Int32(t.i32()?),
            TIMESTAMP => Value::Timestamp(t.take(8)?),
            INT64 => Value::Int64(t.i64()?),
            DBPOINTER | JSCODE | SYMBOL | CODEWS => {
                let from = t.pos;
                let n = i64::from(t.i32()?);
                let rest = match bt {
                    DBPOINTER => n + 12,
                    CODEWS => n - 4,
                    _ => n,
                };
                t.take(rest)?;
                Value::Raw {
                    tag: bt,
                    bytes: &t.data[from..t.pos],
                }
            }
            _ => return Err(DecodeError::Type(bt)),
        };
        sink.value(v);
        sink.set();
    }
    Ok(())
}

/// Width of the fixed-size fields `makeindex` records (and `__newindex` may overwrite).
pub fn field_width(tag: u8) -> Option<usize> {
    match tag {
        INT64 | TIMESTAMP | DATE | REAL => Some(8),
        BOOLEAN => Some(1),
        OBJECTID => Some(12),
        INT32 => Some(4),
        _ => None,
    }
}

/// Walks the top-level elements of `doc` and calls `found(key, tag, offset)` for each
/// fixed-size field, `offset` being where its value starts in `doc`.
pub fn index_fields(
    doc: &[u8],
    mut found: impl FnMut(&[u8], u8, usize),
) -> Result<(), DecodeError> {
    let declared = doc
        .get(..4)
        .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let end = usize::try_from(i64::from(declared) - 1).unwrap_or(0);
    let end = end.clamp(4.min(doc.len()), doc.len());
    let mut r = Reader {
        data: doc,
        pos: 4.min(end),
        end,
    };
    while !r.is_empty() {
        let bt = r.byte()?;
        let key = r.cstring()?;
        let skip = match bt {
            JSCODE | SYMBOL | STRING => i64::from(r.i32()?),
            CODEWS | ARRAY | DOCUMENT => i64::from(r.i32()?) - 4,
            BINARY => i64::from(r.i32()?) + 1,
            DBPOINTER => i64::from(r.i32()?) + 12,
            REGEX => {
                r.cstring()?;
                r.cstring()?;
                0
            }
            MINKEY | MAXKEY | NULL => 0,
            _ => match field_width(bt) {
                Some(w) => {
                    let at = r.pos;
                    r.take(w as i64)?;
                    found(key, bt, at);
                    continue;
                }
                None => return Err(DecodeError::Type(bt)),
            },
        };
        r.take(skip)?;
    }
    Ok(())
}

/// A decoded value as a Rust tree (tests and the fuzz target).
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Double(f64),
    Int(i64),
    Bool(bool),
    /// A plain string or a tagged one (`"\0" .. tag .. payload`), as Lua would see it.
    Bytes(Vec<u8>),
    /// Entries in document order.
    Doc(Vec<(NodeKey, Node)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKey {
    Name(Vec<u8>),
    Index(i64),
}

/// The entries of a document being built.
type Entries = Vec<(NodeKey, Node)>;

/// A [`Sink`] building [`Node`]s.
#[derive(Default)]
pub struct TreeSink {
    /// Open documents, innermost last, each with the key it will be stored under.
    stack: Vec<(Option<NodeKey>, Entries)>,
    key: Option<NodeKey>,
    value: Option<Node>,
    done: Option<Node>,
}

impl TreeSink {
    /// The decoded top-level document.
    pub fn finish(mut self) -> Option<Node> {
        if let Some((_, entries)) = self.stack.pop() {
            if self.stack.is_empty() {
                return Some(Node::Doc(entries));
            }
        }
        self.done
    }
}

impl Sink for TreeSink {
    fn open(&mut self) -> Result<(), DecodeError> {
        self.stack.push((self.key.take(), Vec::new()));
        Ok(())
    }
    fn key(&mut self, key: Key<'_>) {
        self.key = Some(match key {
            Key::Name(n) => NodeKey::Name(n.to_vec()),
            Key::Index(i) => NodeKey::Index(i),
        });
    }
    fn value(&mut self, value: Value<'_>) {
        let mut scratch = [0u8; 4];
        self.value = Some(match value {
            Value::Double(d) => Node::Double(d),
            Value::Str(s) => Node::Bytes(s.to_vec()),
            Value::Bool(b) => Node::Bool(b),
            Value::Int32(i) => Node::Int(i64::from(i)),
            Value::Int64(i) => Node::Int(i),
            other => {
                let (tag, parts) = other.tagged(&mut scratch).expect("tagged value");
                let mut b = vec![0, tag];
                for p in parts {
                    b.extend_from_slice(p);
                }
                Node::Bytes(b)
            }
        });
    }
    fn set(&mut self) {
        let (key, node) = match self.value.take() {
            Some(v) => (self.key.take(), v),
            None => match self.stack.pop() {
                Some((k, entries)) => (k, Node::Doc(entries)),
                None => return,
            },
        };
        match (self.stack.last_mut(), key) {
            (Some((_, entries)), Some(k)) => entries.push((k, node)),
            _ => self.done = Some(node),
        }
    }
}

/// Decodes `doc` into a [`Node`] tree.
pub fn decode_tree(doc: &[u8]) -> Result<Node, DecodeError> {
    let mut sink = TreeSink::default();
    decode(doc, &mut sink)?;
    Ok(sink.finish().unwrap_or(Node::Doc(Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &[u8]) -> Vec<u8> {
        let mut d = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        d.extend_from_slice(body);
        d.push(0);
        d
    }

    #[test]
    fn utf8_rules_match_upstream() {
        assert!(utf8_ok(b"plain"));
        assert!(utf8_ok("h\u{e9}llo \u{4e2d} \u{1F600}".as_bytes()));
        assert!(utf8_ok(b"\xed\xa0\x80")); // surrogate: accepted
        assert!(utf8_ok(b"a\0b"));
        for bad in [
            &b"\xc0\x80"[..],
            b"\x80",
            b"\xf5\x80\x80\x80",
            b"\xe4\xb8",
            b"\xfe",
            b"\xff",
            b"\xf8\x88\x80\x80\x80",
            b"\xe0\x80\x80",
            b"\xf0\x80\x80\x80",
            b"\xc3",
            b"\xc3\x28",
        ] {
            assert!(!utf8_ok(bad), "{bad:x?}");
        }
        assert!(utf8_ok(b"\xf4\x8f\xbf\xbf"));
        assert!(!utf8_ok(b"\xf4\x90\x80\x80"));
    }

    #[test]
    fn array_keys_follow_strtol() {
        assert_eq!(array_index(b"0"), 1);
        assert_eq!(array_index(b"x"), 1);
        assert_eq!(array_index(b""), 1);
        assert_eq!(array_index(b" 5"), 6);
        assert_eq!(array_index(b"-3"), -2);
        assert_eq!(array_index(b"7z"), 8);
        assert_eq!(array_index(b"+8"), 9);
        assert_eq!(array_index(b"99999999999"), 1215752192);
        assert_eq!(array_index(b"2147483647"), -2147483648);
        // strtol saturates at LONG_MAX; the + 1 wraps.
        assert_eq!(array_index(b"99999999999999999999999"), 0);
    }

    #[test]
    fn decodes_a_tree() {
        let mut body = vec![INT32, b'a', 0, 1, 0, 0, 0];
        let inner = doc(&[STRING, b'0', 0, 2, 0, 0, 0, b'x', 0]);
        body.extend_from_slice(&[ARRAY, b'b', 0]);
        body.extend_from_slice(&inner);
        body.extend_from_slice(&[NULL, b'c', 0]);
        let t = decode_tree(&doc(&body)).unwrap();
        assert_eq!(
            t,
            Node::Doc(vec![
                (NodeKey::Name(b"a".to_vec()), Node::Int(1)),
                (
                    NodeKey::Name(b"b".to_vec()),
                    Node::Doc(vec![(NodeKey::Index(1), Node::Bytes(b"x".to_vec()))])
                ),
                (NodeKey::Name(b"c".to_vec()), Node::Bytes(vec![0, NULL])),
            ])
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        use DecodeError::*;
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", Block { have: 0, need: 4 }),
            (b"\x05\x00\x00", Block { have: 3, need: 4 }),
            (b"\x04\x00\x00\x00", Block { have: -1, need: 1 }),
            (b"\x00\x00\x00\x00", Block { have: -5, need: 1 }),
            (b"\x06\x00\x00\x00\x00", Block { have: 0, need: 1 }),
            (b"\x05\x00\x00\x00\x01", DocumentEnd),
            (
                b"\x09\x00\x00\x00\x10a\x00\x01\x00",
                Block { have: 1, need: 4 },
            ),
            (b"\x08\x00\x00\x00\x10aa\x00", Cstring),
            (b"\x08\x00\x00\x00\x06a\x00\x00", Type(6)),
            (b"\x08\x00\x00\x00\x13a\x00\x00", Type(19)),
            (
                b"\x0c\x00\x00\x00\x02a\x00\xff\xff\xff\xff\x00",
                StringLength(-1),
            ),
            (
                b"\x0d\x00\x00\x00\x05a\x00\xff\xff\xff\xff\x00\x00",
                Block { have: 0, need: -1 },
            ),
            (
                b"\x0c\x00\x00\x00\x0fa\x00\x02\x00\x00\x00\x00",
                Block { have: 0, need: -2 },
            ),
            (
                b"\x0c\x00\x00\x00\x0ca\x00\x00\x00\x00\x80\x00",
                Block {
                    have: 0,
                    need: i64::from(i32::MIN) + 12,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode_tree(bytes), Err(*want), "{bytes:x?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut d = doc(&[]);
        for _ in 0..MAX_DECODE_DEPTH {
            let mut body = vec![DOCUMENT, b'a', 0];
            body.extend_from_slice(&d);
            d = doc(&body);
        }
        assert!(decode_tree(&d).is_ok());
        let mut body = vec![ARRAY, b'a', 0];
        body.extend_from_slice(&d);
        assert_eq!(decode_tree(&doc(&body)), Err(DecodeError::TooDeep));
    }

    #[test]
    fn index_fields_reports_fixed_fields() {
        let mut body = vec![INT32, b'a', 0, 1, 0, 0, 0];
        body.extend_from_slice(&[STRING, b's', 0, 2, 0, 0, 0, b'x', 0]);
        body.extend_from_slice(&[BOOLEAN, b'b', 0, 1]);
        let d = doc(&body);
        let mut got = Vec::new();
        index_fields(&d, |k, t, at| got.push((k.to_vec(), t, at))).unwrap();
        assert_eq!(
            got,
            vec![(b"a".to_vec(), INT32, 7), (b"b".to_vec(), BOOLEAN, 23)]
        );
        // Truncated input never reads past the slice.
        for n in 0..d.len() {
            let _ = index_fields(&d[..n], |_, _, _| {});
        }
    }
}
