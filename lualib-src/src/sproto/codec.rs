//! The sproto codec in plain safe Rust: schema import (the binary bundle `sprotoparser` emits),
//! struct encoding and decoding driven by caller-supplied value sources and sinks, 0-packing,
//! and the schema dump. Nothing here knows about Lua, so it can be unit-tested and fuzzed alone.
//!
//! Wire format (sproto's README): a struct is a 2-byte field count, one 2-byte record per field
//! (even `v`: inline value `v/2 - 1`; zero: the value is the next data object; odd `v`: skip
//! `v/2 + 1` tags), then the data objects, each a 4-byte little-endian length and its bytes.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;

/// Largest encoded message or unpacked stream (upstream's `ENCODE_MAXSIZE`).
pub const MAX_SIZE: usize = 0x100_0000;

/// Nesting limit of structs in a message (upstream's `ENCODE_DEEPLEVEL`).
pub const MAX_DEPTH: usize = 64;

/// Built-in kind of a field (of each element, for arrays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Boolean,
    String,
    Double,
    Struct,
}

/// One field of a type.
#[derive(Debug)]
pub struct Field {
    /// Name as upstream sees it: a C string (cut at an embedded NUL).
    pub name: CString,
    pub tag: i32,
    pub kind: Kind,
    pub array: bool,
    /// Index of the struct type, for `Kind::Struct`.
    pub st: Option<usize>,
    /// Main index tag of a struct array (`*T(key)`), -1 if none.
    pub key: i32,
    /// Two-field struct array read as a map (`*T()`).
    pub map: bool,
    /// Integer: decimal scale (10^n, 0 = plain integer); string: 1 = binary.
    pub extra: i32,
}

/// A struct type.
#[derive(Debug)]
pub struct Type {
    pub name: CString,
    pub fields: Vec<Field>,
    /// Tag of the first field when tags are contiguous (direct lookup), else -1.
    base: i32,
    /// Header records needed at most: fields plus skip records.
    maxn: usize,
}

/// A protocol: tag, name, request and response types.
#[derive(Debug)]
pub struct Protocol {
    pub name: CString,
    pub tag: i32,
    pub request: Option<usize>,
    pub response: Option<usize>,
    /// `response nil`: a response without content is expected.
    pub confirm: bool,
}

/// An imported schema.
#[derive(Debug)]
pub struct Sproto {
    pub types: Vec<Type>,
    pub protocols: Vec<Protocol>,
}

/// Why a schema bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub &'static str);

fn word(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn dword(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A struct's header records and its data objects, all bounds-checked.
struct RawStruct<'a> {
    records: &'a [u8],
    /// Data objects in order (without their length prefix).
    objects: Vec<&'a [u8]>,
}

impl<'a> RawStruct<'a> {
    fn parse(b: &'a [u8]) -> Option<Self> {
        let n = word(b, 0)? as usize;
        let records = b.get(2..2 + n * 2)?;
        let mut at = 2 + n * 2;
        let mut objects = Vec::new();
        for i in 0..n {
            if word(records, i * 2)? == 0 {
                let len = dword(b, at)? as usize;
                objects.push(b.get(at + 4..(at + 4).checked_add(len)?)?);
                at += 4 + len;
            }
        }
        Some(RawStruct { records, objects })
    }

    fn len(&self) -> usize {
        self.records.len() / 2
    }

    fn record(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.records[i * 2], self.records[i * 2 + 1]])
    }
}

/// Splits an array of data objects (each length-prefixed) into its elements.
fn split_array(b: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let len = dword(b, at)? as usize;
        out.push(b.get(at + 4..(at + 4).checked_add(len)?)?);
        at += 4 + len;
    }
    Some(out)
}

fn cstring(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap_or_default()
}

/// `10^n` with C `int` wrap-around, as upstream computes the decimal scale.
fn pow10(n: i32) -> i32 {
    fn pow(base: i32, n: i32) -> i32 {
        if n == 0 {
            return 1;
        }
        let mut r = pow(base.wrapping_mul(base), n / 2);
        if n & 1 != 0 {
            r = r.wrapping_mul(base);
        }
        r
    }
    pow(10, n)
}

const BAD: SchemaError = SchemaError("invalid sproto schema");

fn import_field(b: &[u8], ntypes: usize) -> Result<Field, SchemaError> {
    let raw = RawStruct::parse(b).ok_or(BAD)?;
    let mut name = None;
    let mut kind: Option<Kind> = None;
    let mut st = None;
    let (mut ftag, mut key, mut map, mut extra, mut array) = (-1, -1, false, 0, false);
    let mut tag: i32 = -1;
    for i in 0..raw.len() {
        tag += 1;
        let v = raw.record(i) as i32;
        if v & 1 != 0 {
            tag += v / 2;
            continue;
        }
        if tag == 0 {
            if v != 0 {
                return Err(BAD);
            }
            name = Some(cstring(raw.objects.first().ok_or(BAD)?));
            continue;
        }
        if v == 0 {
            return Err(BAD);
        }
        let v = v / 2 - 1;
        match tag {
            1 => {
                kind = Some(match v {
                    0 => Kind::Integer,
                    1 => Kind::Boolean,
                    2 => Kind::String,
                    3 => Kind::Double,
                    _ => return Err(BAD),
                })
            }
            2 => match kind {
                Some(Kind::Integer) => extra = pow10(v),
                Some(Kind::String) => extra = v,
                Some(_) => return Err(BAD),
                None => {
                    if v as usize >= ntypes {
                        return Err(BAD);
                    }
                    kind = Some(Kind::Struct);
                    st = Some(v as usize);
                }
            },
            3 => ftag = v,
            4 => array = v != 0,
            5 => key = v,
            6 => map = v != 0,
            _ => return Err(BAD),
        }
    }
    match (name, kind) {
        (Some(name), Some(kind)) if ftag >= 0 => Ok(Field {
            name,
            tag: ftag,
            kind,
            array,
            st,
            key,
            map,
            extra,
        }),
        _ => Err(BAD),
    }
}

fn import_type(b: &[u8], ntypes: usize) -> Result<Type, SchemaError> {
    let raw = RawStruct::parse(b).ok_or(BAD)?;
    let n = raw.len();
    if n == 0 || n > 2 || (0..n).any(|i| raw.record(i) != 0) {
        return Err(BAD);
    }
    let name = cstring(raw.objects[0]);
    let mut fields = Vec::new();
    if n == 2 {
        for fb in split_array(raw.objects[1]).ok_or(BAD)? {
            fields.push(import_field(fb, ntypes)?);
        }
    }
    let mut maxn = fields.len();
    let mut last = -1;
    for f in &fields {
        if f.tag <= last {
            return Err(BAD);
        }
        if f.tag > last + 1 {
            maxn += 1;
        }
        last = f.tag;
    }
    let base = match (fields.first(), fields.last()) {
        (Some(first), Some(lastf)) if (lastf.tag - first.tag + 1) as usize == fields.len() => {
            first.tag
        }
        (None, _) => 0,
        _ => -1,
    };
    Ok(Type {
        name,
        fields,
        base,
        maxn,
    })
}

fn import_protocol(b: &[u8], ntypes: usize) -> Result<Protocol, SchemaError> {
    let raw = RawStruct::parse(b).ok_or(BAD)?;
    let mut p = Protocol {
        name: CString::default(),
        tag: -1,
        request: None,
        response: None,
        confirm: false,
    };
    let mut named = false;
    // Upstream identifies these records by position, not by tag; the parser always writes
    // them in order, with skip records as placeholders.
    for i in 0..raw.len() {
        let v = raw.record(i) as i32;
        if v & 1 != 0 {
            continue;
        }
        let v = v / 2 - 1;
        match i {
            0 => {
                if v != -1 {
                    return Err(BAD);
                }
                p.name = cstring(raw.objects.first().ok_or(BAD)?);
                named = true;
            }
            1 => {
                if v < 0 {
                    return Err(BAD);
                }
                p.tag = v;
            }
            2 | 3 => {
                if v < 0 || v as usize >= ntypes {
                    return Err(BAD);
                }
                *(if i == 2 {
                    &mut p.request
                } else {
                    &mut p.response
                }) = Some(v as usize);
            }
            4 => p.confirm = v != 0,
            _ => return Err(BAD),
        }
    }
    if !named || p.tag < 0 {
        return Err(BAD);
    }
    Ok(p)
}

impl Sproto {
    /// Imports a schema bundle (`.group { type 0 : *type  protocol 1 : *protocol }`).
    pub fn new(bundle: &[u8]) -> Result<Sproto, SchemaError> {
        let raw = RawStruct::parse(bundle).ok_or(BAD)?;
        if raw.len() > 2 || (0..raw.len()).any(|i| raw.record(i) != 0) {
            return Err(BAD);
        }
        let tys = match raw.objects.first() {
            Some(o) => split_array(o).ok_or(BAD)?,
            None => Vec::new(),
        };
        let protos = match raw.objects.get(1) {
            Some(o) => split_array(o).ok_or(BAD)?,
            None => Vec::new(),
        };
        let types = tys
            .iter()
            .map(|b| import_type(b, tys.len()))
            .collect::<Result<Vec<_>, _>>()?;
        let protocols = protos
            .iter()
            .map(|b| import_protocol(b, tys.len()))
            .collect::<Result<Vec<_>, _>>()?;
        // Upstream trusts these and would read out of bounds; refuse them instead.
        for t in &types {
            for f in &t.fields {
                if f.map {
                    match f.st.map(|i| &types[i]) {
                        Some(st) if f.array && f.key >= 0 && st.fields.len() >= 2 => {}
                        _ => return Err(SchemaError("invalid map field in sproto schema")),
                    }
                }
            }
        }
        Ok(Sproto { types, protocols })
    }

    /// Type index by name.
    pub fn type_by_name(&self, name: &[u8]) -> Option<usize> {
        self.types.iter().position(|t| t.name.as_bytes() == name)
    }

    /// Protocol tag by name.
    pub fn proto_tag(&self, name: &[u8]) -> Option<i32> {
        self.protocols
            .iter()
            .find(|p| p.name.as_bytes() == name)
            .map(|p| p.tag)
    }

    /// Protocol by tag (binary search: protocols are sorted by tag in the bundle).
    pub fn proto_by_tag(&self, tag: i64) -> Option<&Protocol> {
        let (mut lo, mut hi) = (0, self.protocols.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let t = self.protocols[mid].tag as i64;
            if t == tag {
                return Some(&self.protocols[mid]);
            }
            if tag > t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        None
    }

    /// The schema listing `sproto_dump` prints.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        let name = |c: &CStr| c.to_string_lossy().into_owned();
        let _ = writeln!(s, "=== {} types ===", self.types.len());
        for t in &self.types {
            let _ = writeln!(s, "{}", name(&t.name));
            for f in &t.fields {
                let tn = match f.kind {
                    Kind::Struct => name(&self.types[f.st.unwrap_or(0)].name),
                    Kind::Integer if f.extra != 0 => "decimal".into(),
                    Kind::Integer => "integer".into(),
                    Kind::Boolean => "boolean".into(),
                    Kind::String if f.extra == 1 => "binary".into(),
                    Kind::String => "string".into(),
                    Kind::Double => "double".into(),
                };
                let star = if f.array { "*" } else { "" };
                let _ = write!(s, "\t{} ({}) {star}{tn}", name(&f.name), f.tag);
                if f.kind == Kind::Integer && f.extra > 0 {
                    let _ = write!(s, "({})", f.extra);
                }
                if f.key >= 0 {
                    let _ = write!(s, " key[{}]", f.key);
                    if f.map {
                        let v = f.st.map_or(0, |i| self.types[i].fields[1].tag);
                        let _ = write!(s, " value[{v}]");
                    }
                }
                s.push('\n');
            }
        }
        let _ = writeln!(s, "=== {} protocol ===", self.protocols.len());
        for p in &self.protocols {
            let req = p
                .request
                .map_or("(null)".into(), |i| name(&self.types[i].name));
            let _ = write!(s, "\t{} ({}) request:{req}", name(&p.name), p.tag);
            if let Some(r) = p.response {
                let _ = write!(s, " response:{}", name(&self.types[r].name));
            } else if p.confirm {
                s.push_str(" response nil");
            }
            s.push('\n');
        }
        s
    }
}

impl Type {
    /// Field by tag.
    pub fn field(&self, tag: i32) -> Option<&Field> {
        if self.base >= 0 {
            let i = tag.checked_sub(self.base)?;
            return usize::try_from(i).ok().and_then(|i| self.fields.get(i));
        }
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// A scalar value handed to the encoder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Int(i64),
    Bool(bool),
    Double(f64),
}

/// Why an encode stopped.
#[derive(Debug)]
pub enum EncodeError<E> {
    /// The output buffer is too small: retry with a larger one.
    Overflow,
    /// The value source failed.
    Source(E),
}

/// Supplies the values of one struct being encoded. `index` is 0 for a plain field and 1, 2, ...
/// for array elements.
pub trait Source {
    type Error;
    /// The integer/boolean/double field `f` (`index` 0) or array element, `None` for nil (for an
    /// element: the end of the array).
    fn scalar(&mut self, f: &Field, index: usize) -> Result<Option<Scalar>, Self::Error>;
    /// Writes the string/struct field or element into `out`: `Some(length)`, or `None` for nil.
    fn object(
        &mut self,
        f: &Field,
        index: usize,
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError<Self::Error>>;
    /// Starts the array field `f`: false if it is absent (nil), and it is then left out.
    fn array_begin(&mut self, f: &Field) -> Result<bool, Self::Error>;
}

fn int_wire(v: i64) -> (u64, usize) {
    let hi = v >> 31;
    if hi == 0 || hi == -1 {
        (v as u32 as u64, 4)
    } else {
        (v as u64, 8)
    }
}

fn scalar_wire(s: Scalar) -> (u64, usize) {
    match s {
        Scalar::Int(v) => int_wire(v),
        Scalar::Bool(b) => (b as u64, 4),
        Scalar::Double(d) => (d.to_bits(), 8),
    }
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), ()> {
    out.get_mut(at..at + bytes.len())
        .ok_or(())?
        .copy_from_slice(bytes);
    Ok(())
}

macro_rules! room {
    ($e:expr) => {
        $e.map_err(|()| EncodeError::Overflow)?
    };
}

/// Encodes an array field's content (after the 4-byte length) into `out`; `None` if absent.
fn encode_array<S: Source>(
    f: &Field,
    src: &mut S,
    out: &mut [u8],
) -> Result<Option<usize>, EncodeError<S::Error>> {
    if !src.array_begin(f).map_err(EncodeError::Source)? {
        return Ok(None);
    }
    let mut len = 0;
    match f.kind {
        Kind::Integer | Kind::Double => {
            // One size byte, then 4-byte elements until one needs 8: then all are widened.
            let mut width = 4;
            let mut index = 1;
            while let Some(s) = src.scalar(f, index).map_err(EncodeError::Source)? {
                let (v, w) = scalar_wire(s);
                if w == 8 && width == 4 {
                    let n = index - 1;
                    if out.len() < 1 + n * 8 {
                        return Err(EncodeError::Overflow);
                    }
                    for i in (0..n).rev() {
                        let mut e = [0u8; 4];
                        e.copy_from_slice(&out[1 + i * 4..1 + i * 4 + 4]);
                        let wide = i32::from_le_bytes(e) as i64 as u64;
                        out[1 + i * 8..1 + i * 8 + 8].copy_from_slice(&wide.to_le_bytes());
                    }
                    width = 8;
                }
                let at = 1 + (index - 1) * width;
                if width == 4 {
                    room!(put(out, at, &(v as u32).to_le_bytes()));
                } else {
                    let v = if w == 4 {
                        v as u32 as i32 as i64 as u64
                    } else {
                        v
                    };
                    room!(put(out, at, &v.to_le_bytes()));
                }
                index += 1;
            }
            if index > 1 {
                room!(put(out, 0, &[width as u8]));
                len = 1 + (index - 1) * width;
            }
        }
        Kind::Boolean => {
            let mut index = 1;
            while let Some(s) = src.scalar(f, index).map_err(EncodeError::Source)? {
                let b = match s {
                    Scalar::Bool(b) => b,
                    Scalar::Int(v) => v != 0,
                    Scalar::Double(d) => d != 0.0,
                };
                room!(put(out, len, &[b as u8]));
                len += 1;
                index += 1;
            }
        }
        Kind::String | Kind::Struct => {
            let mut index = 1;
            loop {
                let body = out.get_mut(len + 4..).ok_or(EncodeError::Overflow)?;
                match src.object(f, index, body)? {
                    None => break,
                    Some(n) => {
                        out[len..len + 4].copy_from_slice(&(n as u32).to_le_bytes());
                        len += 4 + n;
                        index += 1;
                    }
                }
            }
        }
    }
    Ok(Some(len))
}

/// Encodes one struct of type `ty` into `out`, pulling values from `src`; returns its length.
pub fn encode<S: Source>(
    ty: &Type,
    src: &mut S,
    out: &mut [u8],
) -> Result<usize, EncodeError<S::Error>> {
    let header = 2 + ty.maxn * 2;
    if out.len() < header {
        return Err(EncodeError::Overflow);
    }
    let mut data = header;
    let mut records = 0;
    let mut last = -1;
    for f in &ty.fields {
        let mut inline = 0u16;
        if f.array {
            let body = out.get_mut(data + 4..).ok_or(EncodeError::Overflow)?;
            match encode_array(f, src, body)? {
                None => continue,
                Some(n) => {
                    out[data..data + 4].copy_from_slice(&(n as u32).to_le_bytes());
                    data += 4 + n;
                }
            }
        } else {
            match f.kind {
                Kind::Integer | Kind::Boolean | Kind::Double => {
                    let Some(s) = src.scalar(f, 0).map_err(EncodeError::Source)? else {
                        continue;
                    };
                    let (v, w) = scalar_wire(s);
                    if w == 4 && v < 0x7fff {
                        inline = ((v + 1) * 2) as u16;
                    } else {
                        room!(put(out, data, &(w as u32).to_le_bytes()));
                        if w == 4 {
                            room!(put(out, data + 4, &(v as u32).to_le_bytes()));
                        } else {
                            room!(put(out, data + 4, &v.to_le_bytes()));
                        }
                        data += 4 + w;
                    }
                }
                Kind::String | Kind::Struct => {
                    let body = out.get_mut(data + 4..).ok_or(EncodeError::Overflow)?;
                    match src.object(f, 0, body)? {
                        None => continue,
                        Some(n) => {
                            out[data..data + 4].copy_from_slice(&(n as u32).to_le_bytes());
                            data += 4 + n;
                        }
                    }
                }
            }
        }
        let gap = f.tag - last - 1;
        if gap > 0 {
            let skip = (gap - 1) * 2 + 1;
            out[2 + records * 2..4 + records * 2].copy_from_slice(&(skip as u16).to_le_bytes());
            records += 1;
        }
        out[2 + records * 2..4 + records * 2].copy_from_slice(&inline.to_le_bytes());
        records += 1;
        last = f.tag;
    }
    out[..2].copy_from_slice(&(records as u16).to_le_bytes());
    let used = 2 + records * 2;
    if used != header {
        out.copy_within(header..data, used);
    }
    Ok(used + (data - header))
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A decoded value handed to the sink.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Integer (raw: a decimal field's value is still scaled by `extra`).
    Int(i64),
    Bool(bool),
    Double(f64),
    Str(&'a [u8]),
    /// An encoded sub-struct of type `f.st`: the sink decodes it (with [`decode_exact`]).
    Struct(&'a [u8]),
}

/// Why a decode stopped.
#[derive(Debug)]
pub enum DecodeError<E> {
    /// The bytes are not a valid encoding of the type.
    Malformed,
    /// The sink failed.
    Sink(E),
}

/// Receives the fields of one struct being decoded, in tag order.
pub trait Sink {
    type Error;
    /// The array field `f` starts (possibly empty); its elements follow with index 1, 2, ...
    fn array(&mut self, f: &Field) -> Result<(), DecodeError<Self::Error>>;
    /// A plain field (`index` 0) or array element.
    fn value(
        &mut self,
        f: &Field,
        index: usize,
        v: Value<'_>,
    ) -> Result<(), DecodeError<Self::Error>>;
}

fn expand32(v: u32) -> u64 {
    v as i32 as i64 as u64
}

fn decode_array<S: Sink>(f: &Field, b: &[u8], sink: &mut S) -> Result<(), DecodeError<S::Error>> {
    sink.array(f)?;
    if b.is_empty() {
        return Ok(());
    }
    let as_value = |bits: u64| {
        if f.kind == Kind::Double {
            Value::Double(f64::from_bits(bits))
        } else {
            Value::Int(bits as i64)
        }
    };
    match f.kind {
        Kind::Integer | Kind::Double => {
            let body = &b[1..];
            if body.is_empty() {
                return Ok(());
            }
            match b[0] {
                4 if body.len() % 4 == 0 => {
                    for (i, c) in body.chunks_exact(4).enumerate() {
                        let v = expand32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                        sink.value(f, i + 1, as_value(v))?;
                    }
                }
                8 if body.len() % 8 == 0 => {
                    for (i, c) in body.chunks_exact(8).enumerate() {
                        let mut e = [0u8; 8];
                        e.copy_from_slice(c);
                        sink.value(f, i + 1, as_value(u64::from_le_bytes(e)))?;
                    }
                }
                _ => return Err(DecodeError::Malformed),
            }
        }
        Kind::Boolean => {
            for (i, &c) in b.iter().enumerate() {
                sink.value(f, i + 1, Value::Bool(c != 0))?;
            }
        }
        Kind::String | Kind::Struct => {
            let mut at = 0;
            let mut index = 1;
            while at < b.len() {
                let len = dword(b, at).ok_or(DecodeError::Malformed)? as usize;
                let obj = b
                    .get(at + 4..(at + 4).checked_add(len).ok_or(DecodeError::Malformed)?)
                    .ok_or(DecodeError::Malformed)?;
                let v = if f.kind == Kind::String {
                    Value::Str(obj)
                } else {
                    Value::Struct(obj)
                };
                sink.value(f, index, v)?;
                at += 4 + len;
                index += 1;
            }
        }
    }
    Ok(())
}

/// Decodes one struct of type `ty` from the start of `data`, feeding `sink`; returns the number
/// of bytes used (trailing bytes are left alone, as upstream does).
pub fn decode<S: Sink>(
    ty: &Type,
    data: &[u8],
    sink: &mut S,
) -> Result<usize, DecodeError<S::Error>> {
    use DecodeError::Malformed;
    let n = word(data, 0).ok_or(Malformed)? as usize;
    let records = data.get(2..2 + n * 2).ok_or(Malformed)?;
    let mut at = 2 + n * 2;
    let mut tag: i32 = -1;
    for i in 0..n {
        let v = u16::from_le_bytes([records[i * 2], records[i * 2 + 1]]) as i32;
        tag += 1;
        if v & 1 != 0 {
            tag += v / 2;
            continue;
        }
        let v = v / 2 - 1;
        let mut obj: &[u8] = &[];
        if v < 0 {
            let len = dword(data, at).ok_or(Malformed)? as usize;
            obj = data
                .get(at + 4..(at + 4).checked_add(len).ok_or(Malformed)?)
                .ok_or(Malformed)?;
            at += 4 + len;
        }
        let Some(f) = ty.field(tag) else { continue };
        if v < 0 {
            if f.array {
                decode_array(f, obj, sink)?;
                continue;
            }
            match f.kind {
                Kind::Integer | Kind::Double => {
                    let bits = match obj.len() {
                        4 => expand32(u32::from_le_bytes([obj[0], obj[1], obj[2], obj[3]])),
                        8 => {
                            let mut e = [0u8; 8];
                            e.copy_from_slice(obj);
                            u64::from_le_bytes(e)
                        }
                        _ => return Err(Malformed),
                    };
                    let value = if f.kind == Kind::Double {
                        Value::Double(f64::from_bits(bits))
                    } else {
                        Value::Int(bits as i64)
                    };
                    sink.value(f, 0, value)?;
                }
                Kind::String => sink.value(f, 0, Value::Str(obj))?,
                Kind::Struct => sink.value(f, 0, Value::Struct(obj))?,
                Kind::Boolean => return Err(Malformed),
            }
        } else if f.array {
            return Err(Malformed);
        } else {
            match f.kind {
                Kind::Integer => sink.value(f, 0, Value::Int(v as i64))?,
                Kind::Boolean => sink.value(f, 0, Value::Bool(v != 0))?,
                _ => return Err(Malformed),
            }
        }
    }
    Ok(at)
}

/// Decodes a sub-struct that must use all of `data` (as a struct field or element must).
pub fn decode_exact<S: Sink>(
    ty: &Type,
    data: &[u8],
    sink: &mut S,
) -> Result<(), DecodeError<S::Error>> {
    if decode(ty, data, sink)? != data.len() {
        return Err(DecodeError::Malformed);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 0-packing

/// Upper bound of `pack`'s output for `n` input bytes (2 bytes per 2 KiB run, plus 2).
pub fn pack_bound(n: usize) -> usize {
    n.div_ceil(2048) * 2 + n + 2
}

/// 0-packs `src` into `out` (at least [`pack_bound`] bytes long); returns the packed length.
///
/// Each 8-byte word (the last one zero-padded) becomes a bitmap byte and its nonzero bytes;
/// runs of dense words (all 8 bytes nonzero to start one, 6 or more to extend it, at most 256)
/// are stored raw after `0xff` and the run length minus one.
pub fn pack(src: &[u8], out: &mut [u8]) -> usize {
    assert!(out.len() >= pack_bound(src.len()), "pack buffer too small");
    let mut o = 0;
    let mut run_start = 0; // output offset of the current run's 0xff
    let mut run = 0usize; // words in the current run
    for chunk in src.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let nz = w.iter().filter(|&&c| c != 0).count();
        if nz == 8 || (run > 0 && nz >= 6) {
            if run == 0 {
                run_start = o;
                out[o] = 0xff;
                o += 2;
            }
            out[o..o + 8].copy_from_slice(&w);
            o += 8;
            run += 1;
            if run == 256 {
                out[run_start + 1] = 255;
                run = 0;
            }
            continue;
        }
        if run > 0 {
            out[run_start + 1] = (run - 1) as u8;
            run = 0;
        }
        let mut bitmap = 0u8;
        let head = o;
        o += 1;
        for (i, &c) in w.iter().enumerate() {
            if c != 0 {
                bitmap |= 1 << i;
                out[o] = c;
                o += 1;
            }
        }
        out[head] = bitmap;
    }
    if run > 0 {
        out[run_start + 1] = (run - 1) as u8;
    }
    o
}

/// The 0-packed stream is truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPack;

/// Size of `src` once unpacked (validating it), without writing anything.
pub fn unpack_size(src: &[u8]) -> Result<usize, InvalidPack> {
    let mut i = 0;
    let mut size = 0usize;
    while i < src.len() {
        let h = src[i];
        i += 1;
        if h == 0xff {
            let n = (*src.get(i).ok_or(InvalidPack)? as usize + 1) * 8;
            if src.len() - i < n + 1 {
                return Err(InvalidPack);
            }
            i += n + 1;
            size += n;
        } else {
            let nz = h.count_ones() as usize;
            if src.len() - i < nz {
                return Err(InvalidPack);
            }
            i += nz;
            size += 8;
        }
    }
    Ok(size)
}

/// Unpacks `src` into `out` as far as it fits; returns the full unpacked size, which may be
/// larger than `out` (then call again with a buffer that large), as upstream's does.
pub fn unpack(src: &[u8], out: &mut [u8]) -> Result<usize, InvalidPack> {
    let (mut i, mut o) = (0, 0);
    while i < src.len() {
        let h = src[i];
        i += 1;
        if h == 0xff {
            let n = (*src.get(i).ok_or(InvalidPack)? as usize + 1) * 8;
            let run = src.get(i + 1..i + 1 + n).ok_or(InvalidPack)?;
            if let Some(dst) = out.get_mut(o..o + n) {
                dst.copy_from_slice(run);
            }
            i += n + 1;
            o += n;
        } else {
            let nz = h.count_ones() as usize;
            let bytes = src.get(i..i + nz).ok_or(InvalidPack)?;
            if let Some(dst) = out.get_mut(o..o + 8) {
                let mut k = 0;
                for (b, d) in dst.iter_mut().enumerate() {
                    if h & (1 << b) != 0 {
                        *d = bytes[k];
                        k += 1;
                    } else {
                        *d = 0;
                    }
                }
            }
            i += nz;
            o += 8;
        }
    }
    Ok(o)
}

/// [`pack`] into a new vector.
pub fn pack_vec(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0; pack_bound(src.len())];
    let n = pack(src, &mut out);
    out.truncate(n);
    out
}

/// [`unpack`] into a new vector, refusing outputs over `max` bytes.
pub fn unpack_vec(src: &[u8], max: usize) -> Result<Vec<u8>, InvalidPack> {
    let n = unpack_size(src)?;
    if n > max {
        return Err(InvalidPack);
    }
    let mut out = vec![0; n];
    let m = unpack(src, &mut out)?;
    debug_assert_eq!(m, n);
    Ok(out)
}

/// Decodes `data` as `ty` and every nested struct down to [`MAX_DEPTH`], discarding the values;
/// returns the bytes used and the number of values seen. For fuzzing and tests.
pub fn walk(sp: &Sproto, ty: &Type, data: &[u8]) -> Result<(usize, usize), DecodeError<()>> {
    struct Walker<'a> {
        sp: &'a Sproto,
        depth: usize,
        values: usize,
    }
    impl Sink for Walker<'_> {
        type Error = ();
        fn array(&mut self, _: &Field) -> Result<(), DecodeError<()>> {
            Ok(())
        }
        fn value(&mut self, f: &Field, _: usize, v: Value<'_>) -> Result<(), DecodeError<()>> {
            self.values += 1;
            if let Value::Struct(b) = v {
                if self.depth >= MAX_DEPTH {
                    return Err(DecodeError::Sink(()));
                }
                let st =
                    f.st.and_then(|i| self.sp.types.get(i))
                        .ok_or(DecodeError::Malformed)?;
                self.depth += 1;
                decode_exact(st, b, self)?;
                self.depth -= 1;
            }
            Ok(())
        }
    }
    let mut w = Walker {
        sp,
        depth: 0,
        values: 0,
    };
    let n = decode(ty, data, &mut w)?;
    Ok((n, w.values))
}
