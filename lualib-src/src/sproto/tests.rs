//! Tests: known-answer vectors recorded from upstream's C sproto (master; `sproto.c` is the same
//! in v1.8.0) for the schema below, the pure codec's edge cases, and the Lua surface.

use super::build::{schema, ProtoDef, Response, TypeDef};
use super::codec::{self, Sproto};
use crate::lua::{ffi, lua_function, CFunction};
use crate::testlua;
use ffi::lua_State;
use std::ffi::{c_int, CStr};

/// Every field kind: the schema upstream's `sprotoparser` compiled for the vectors below.
const TYPES: &[TypeDef] = &[
    ("Pair", &[("k", 0, "string"), ("v", 1, "integer")]),
    ("Item", &[("id", 0, "integer"), ("name", 1, "string")]),
    ("Empty", &[]),
    (
        "All",
        &[
            ("i", 0, "integer"),
            ("big", 1, "integer"),
            ("neg", 2, "integer"),
            ("dec", 3, "integer(2)"),
            ("b", 4, "boolean"),
            ("s", 5, "string"),
            ("bin", 6, "binary"),
            ("d", 7, "double"),
            ("st", 8, "Item"),
            ("ia", 9, "*integer"),
            ("ia64", 10, "*integer"),
            ("ba", 11, "*boolean"),
            ("sa", 12, "*string"),
            ("da", 13, "*double"),
            ("sta", 14, "*Item"),
            ("idx", 15, "*Item(id)"),
            ("map", 16, "*Pair()"),
            ("deca", 17, "*integer(3)"),
            ("binarr", 18, "*binary"),
            ("far", 30, "integer"),
            ("nested", 31, "All"),
            ("empty", 32, "*integer"),
            ("e", 33, "Empty"),
        ],
    ),
    ("qux.request", &[("a", 0, "integer"), ("b", 2, "string")]),
    ("qux.response", &[("ok", 0, "boolean")]),
];

const PROTOCOLS: &[ProtoDef] = &[
    ("foo", 1, Some("All"), Response::Type("Item")),
    ("bar", 2, Some("Item"), Response::None),
    ("baz", 3, None, Response::Nil),
    ("ping", 4, None, Response::None),
    (
        "qux",
        5,
        Some("qux.request"),
        Response::Type("qux.response"),
    ),
];

const SCHEMA_HEX: &str = "020000000000110300000b02000002000000000003000000416c6cfa0100000f0000000400000002000100020001000000691100000004000000020001000400030000006269671100000004000000020001000600030000006e65671100000004000000020006000800030000006465630f00000004000000040001000a0001000000620f00000004000000060001000c0001000000731100000004000000060004000e000300000062696e0f000000040000000800010010000100000064100000000400000001000600120002000000737412000000050000000200010014000400020000006961140000000500000002000100160004000400000069613634120000000500000004000100180004000200000062611200000005000000060001001a0004000200000073611200000005000000080001001c0004000200000064611300000005000000010006001e00040003000000737461150000000600000001000600200004000200030000006964781700000007000000010008002200040002000400030000006d6170140000000500000002000800240004000400000064656361160000000500000006000400260004000600000062696e6172721100000004000000020001003e00030000006661721400000004000000010002004000060000006e65737465641500000005000000020001004200040005000000656d7074790f0000000400000001000400440001000000650d0000000100000005000000456d7074793c000000020000000000040000004974656d2a00000010000000040000000200010002000200000069641200000004000000060001000400040000006e616d65380000000200000000000400000050616972260000000f00000004000000060001000200010000006b0f0000000400000002000100040001000000763f0000000200000000000b0000007175782e72657175657374260000000f0000000400000002000100020001000000610f0000000400000006000100060001000000622e0000000200000000000c0000007175782e726573706f6e7365140000001000000004000000040001000200020000006f6b66000000110000000400000004000200060003000000666f6f0f000000030000000600060003000000626172130000000500000008000100010004000300000062617a0e000000020000000a000400000070696e6711000000040000000c000a000c0003000000717578";

/// `(kind, message, hex)`: `ENC` = `core.encode("All", msg)` (see `MESSAGES`), `PACK` = its
/// `core.pack`; `qux` and `item` are other types.
const VECTORS: &[(&str, &str, &str)] = &[
    ("ENC", "full", "180004000000000076020400000000000000000000000000000000000000000000000000000000001500000000000000000008000000896745230100000004000000fbffffff0500000068656c6c6f0300000000010208000000000000000000f83f0b00000002001000000001000000781100000004010000000200000003000000ffffffff190000000801000000000000000000000000010000fdffffffffffffff030000000100010f0000000100000061000000000200000062631100000008000000000000e03f00000000000002c01700000004000000010004000b000000020006000000010000006e0f0000000b0000000200160000000100000074100000000c000000020000005600020000006b310900000004ce040000941100000600000002000000ff0004000000a086010008000000030006000500020000000000020000000000"),
    ("PACK", "full", "051804077602040000000115c408896747452301047cfbffffff05fc68656c6c6f03700102080047f83f0b0211100163781104014402037cffffffff190c080100f901fdffffffff8fffffff030146010f0184610238626311020803e03f4702c017045401040b14020631016e0fa20b021688017411100c510256021c6b31096704ce0494112206028aff04a08b860108032a060502080200"),
    ("ENC", "empty", "0000"),
    ("PACK", "empty", "00"),
    ("ENC", "ints1", "0300feff0000000004000000ff7f000004000000ffffffff"),
    ("PACK", "ints1", "0d03feff3104ff7ff104ffffffff"),
    ("ENC", "ints2", "05000000000000003500000004000000ffffff7f08000000000000800000000008000000000000000000008008000000ffffffffffffff7f"),
    ("PACK", "ints2", "01051135041fffffff7f0808800108188008ff00ffffffffffffff7f"),
    ("ENC", "ints3", "0600000000000100000005000000040000000000008008000000ffffff7fffffffff04000000ceffffff080000000000000000000080"),
    ("PACK", "ints3", "410601440504608008fcffffff7fffffc7ffff04ceff07ffff082080"),
    ("ENC", "arr64first", "0300110000000000190000000800000000000100000100000000000000ffffffffffffffff0900000004fffffffffeffffff"),
    ("PACK", "arr64first", "050311111908240101e0ffffff3fffffffffff09fe04fffffffffeff03ffff"),
    ("ENC", "long", "0400090000000b00000043010000616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676878797a1d0000001400000000000000000000000000000000000000000000000100000071"),
    ("PACK", "long", "4504090bcc43016162ff276364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667686162636465666768616263646566676861626364656667687879237a1d14000020010271"),
    ("ENC", "qux", "03000c0001000000010000007a"),
    ("ENC", "item", "020008000000050000007468726565"),
];

/// `(input hex, core.pack(input) hex)`.
const PACKS: &[(&str, &str)] = &[
    ("", ""),
    ("01", "0101"),
    ("0000000000000000", "00"),
    ("0102030405060708", "ff000102030405060708"),
    (
        "010203040506070801020304050600000100030005000000",
        "ff010102030405060708010203040506000015010305",
    ),
    (
        "01020304050607080102030405060700090909",
        "ff010102030405060708010203040506070007090909",
    ),
    (
        "010200000102000001020000010200000102000001020000010200000102000001020000",
        "3301020102330102010233010201023301020102030102",
    ),
];

/// upstream's `core.dumpproto` output for the schema.
const DUMP: &str = "=== 6 types ===\n\
All\n\
\ti (0) integer\n\
\tbig (1) integer\n\
\tneg (2) integer\n\
\tdec (3) decimal(100)\n\
\tb (4) boolean\n\
\ts (5) string\n\
\tbin (6) binary\n\
\td (7) double\n\
\tst (8) Item\n\
\tia (9) *integer\n\
\tia64 (10) *integer\n\
\tba (11) *boolean\n\
\tsa (12) *string\n\
\tda (13) *double\n\
\tsta (14) *Item\n\
\tidx (15) *Item key[0]\n\
\tmap (16) *Pair key[0] value[1]\n\
\tdeca (17) *decimal(1000)\n\
\tbinarr (18) *binary\n\
\tfar (30) integer\n\
\tnested (31) All\n\
\tempty (32) *integer\n\
\te (33) Empty\n\
Empty\n\
Item\n\
\tid (0) integer\n\
\tname (1) string\n\
Pair\n\
\tk (0) string\n\
\tv (1) integer\n\
qux.request\n\
\ta (0) integer\n\
\tb (2) string\n\
qux.response\n\
\tok (0) boolean\n\
=== 5 protocol ===\n\
\tfoo (1) request:All response:Item\n\
\tbar (2) request:Item\n\
\tbaz (3) request:(null) response nil\n\
\tping (4) request:(null)\n\
\tqux (5) request:qux.request response:qux.response\n\
";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn test_schema() -> Vec<u8> {
    schema(TYPES, PROTOCOLS)
}

#[test]
fn schema_builder_matches_upstream_parser() {
    assert_eq!(test_schema(), hex(SCHEMA_HEX));
}

#[test]
fn dump_matches_upstream() {
    let sp = Sproto::new(&test_schema()).unwrap();
    assert_eq!(sp.dump(), DUMP);
}

#[test]
fn pack_vectors() {
    for (input, packed) in PACKS {
        let (input, packed) = (hex(input), hex(packed));
        assert_eq!(codec::pack_vec(&input), packed, "pack {input:02x?}");
        let mut padded = input.clone();
        padded.resize(input.len().div_ceil(8) * 8, 0);
        assert_eq!(codec::unpack_vec(&packed, usize::MAX).unwrap(), padded);
    }
    for (kind, name, h) in VECTORS {
        if *kind == "PACK" {
            let enc = VECTORS
                .iter()
                .find(|v| v.0 == "ENC" && v.1 == *name)
                .unwrap();
            assert_eq!(codec::pack_vec(&hex(enc.2)), hex(h), "pack of {name}");
        }
    }
    // 300 dense words and 3 bytes: a full 256-word run, a 44-word run, a plain word.
    let dense = vec![1u8; 8 * 300 + 3];
    let mut want = vec![0xff, 0xff];
    want.extend_from_slice(&[1; 2048]);
    want.extend_from_slice(&[0xff, 43]);
    want.extend_from_slice(&[1; 352]);
    want.extend_from_slice(&[7, 1, 1, 1]);
    assert_eq!(codec::pack_vec(&dense), want);
    assert!(want.len() <= codec::pack_bound(dense.len()));
}

#[test]
fn pack_round_trips_and_bound_holds() {
    let mut seed = 0x1234_5678u32;
    for len in 0..600 {
        let v: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let r = (seed >> 16) as u8;
                if r % 3 == 0 {
                    0
                } else {
                    r
                }
            })
            .collect();
        let p = codec::pack_vec(&v);
        assert!(p.len() <= codec::pack_bound(v.len()));
        let u = codec::unpack_vec(&p, usize::MAX).unwrap();
        assert_eq!(&u[..len], &v[..]);
        assert!(u[len..].iter().all(|&b| b == 0) && u.len() - len < 8);
    }
}

#[test]
fn unpack_refuses_truncated_streams() {
    for bad in [
        &[0xff][..],
        &[0xff, 0],
        &[0xff, 0, 1, 2, 3, 4, 5, 6, 7],
        &[0x03, 1],
        &[0x00, 0x01],
    ] {
        assert_eq!(
            codec::unpack_size(bad),
            Err(codec::InvalidPack),
            "{bad:02x?}"
        );
    }
    assert_eq!(codec::unpack_vec(&[0, 0, 0], 16), Err(codec::InvalidPack));
    assert_eq!(codec::unpack_vec(&[0, 0], 16).unwrap(), vec![0; 16]);
}

#[test]
fn upstream_encodings_decode() {
    let sp = Sproto::new(&test_schema()).unwrap();
    let all = &sp.types[sp.type_by_name(b"All").unwrap()];
    for (kind, name, h) in VECTORS {
        if *kind == "ENC" && !matches!(*name, "qux" | "item") {
            let b = hex(h);
            let (used, _) = codec::walk(&sp, all, &b).unwrap();
            assert_eq!(used, b.len(), "{name}");
        }
    }
}

#[test]
fn garbage_never_panics() {
    let bin = test_schema();
    let sp = Sproto::new(&bin).unwrap();
    let all = &sp.types[sp.type_by_name(b"All").unwrap()];
    let full = hex(VECTORS[0].2);
    // every truncation and every single-byte corruption of a full message and of the schema
    for n in 0..full.len() {
        let _ = codec::walk(&sp, all, &full[..n]);
        for x in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut m = full.clone();
            m[n] = x;
            let _ = codec::walk(&sp, all, &m);
        }
    }
    for n in 0..bin.len() {
        let _ = Sproto::new(&bin[..n]);
        for x in [0u8, 1, 2, 3, 0x7f, 0xff] {
            let mut m = bin.clone();
            m[n] = x;
            let _ = Sproto::new(&m);
        }
    }
    // a huge length and a deep self-nesting are refused cleanly
    assert!(codec::walk(&sp, all, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    let mut deep = vec![0u8, 0];
    for _ in 0..100 {
        // nested (tag 31): skip 31 tags, then a data record
        let mut m = vec![2, 0, 0x3d, 0, 0, 0];
        m.extend_from_slice(&(deep.len() as u32).to_le_bytes());
        m.extend_from_slice(&deep);
        deep = m;
    }
    assert!(matches!(
        codec::walk(&sp, all, &deep),
        Err(codec::DecodeError::Sink(()))
    ));
}

#[test]
fn bad_schemas_are_refused() {
    assert!(Sproto::new(b"").is_err());
    assert!(Sproto::new(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert_eq!(Sproto::new(&[0, 0]).unwrap().types.len(), 0);
    // a map over a one-field struct
    let mut b = schema(
        &[("A", &[("m", 0, "*B(x)")]), ("B", &[("x", 0, "integer")])],
        &[],
    );
    assert!(Sproto::new(&b).is_ok());
    // set the map flag by hand: the field gets a 7th record
    let pos = b.windows(2).position(|w| w == [6, 0]).unwrap();
    b[pos] = 7;
    assert!(Sproto::new(&b).is_err());
}

// ---------------------------------------------------------------------------------------------
// Lua surface

/// `schema()` → the test schema bundle.
#[lua_function]
unsafe extern "C-unwind" fn lschema(l: *mut lua_State) -> c_int {
    let b = test_schema();
    // SAFETY: valid state.
    unsafe { crate::lua::push_bytes(l, &b) };
    drop(b);
    1
}

const PRELUDE: &str = r##"
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
_G.hex, _G.unhex = hex, unhex
function expect_error(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "no error, expected " .. pat)
  assert(tostring(err):find(pat), "error '" .. tostring(err) .. "' does not match '" .. pat .. "'")
end
function deq(a, b, path)
  path = path or "v"
  if type(a) == "number" and type(b) == "number" then
    assert(math.abs(a - b) < 1e-9 and math.type(a) == math.type(b) or a == b, path .. ": " .. tostring(a) .. " ~= " .. tostring(b))
    return
  end
  assert(type(a) == type(b), path .. ": type " .. type(a) .. " ~= " .. type(b))
  if type(a) ~= "table" then assert(a == b, path .. ": " .. tostring(a) .. " ~= " .. tostring(b)) return end
  for k, v in pairs(a) do deq(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do assert(a[k] ~= nil, path .. "." .. tostring(k) .. " extra") end
end
MESSAGES = {
 full = {i=1, big=0x123456789, neg=-5, dec=3.14, b=true, s="hello", bin="\0\1\2", d=1.5, st={id=7,name="x"}, ia={1,2,3,-1}, ia64={1, 2^40|0, -3}, ba={true,false,true}, sa={"a","","bc"}, da={0.5,-2.25}, sta={{id=1},{id=2,name="n"}}, idx={[10]={id=10,name="t"}}, map={k1=42}, deca={1.23, 4.5}, binarr={"\255\0"}, far=100000, nested={i=2, b=false}, empty={}, e={}},
 empty = {},
 ints1 = {i=0x7ffe, big=0x7fff, neg=-1},
 ints2 = {i=2147483647, big=2147483648, neg=math.mininteger, far=math.maxinteger},
 ints3 = {i=-2147483648, big=-2147483649, dec=-0.5, d=-0.0},
 arr64first = {ia={2^40|0, 1, -1}, ia64={-1,-2}},
 long = {s=string.rep("abcdefgh", 40) .. "xyz", sa={string.rep("\0", 20), "q"}},
}
SP = core.newproto(schema())
assert(SP)
ALL = core.querytype(SP, "All")
"##;

fn check(code: &str) {
    let modules: &[(&CStr, CFunction)] = &[(c"core", super::luaopen_sproto_core)];
    testlua::check(
        modules,
        &[(c"schema", lschema)],
        &format!("{PRELUDE}\n{code}"),
    );
}

fn vectors_lua() -> String {
    let mut s = String::from("VECTORS = {\n");
    for (kind, name, h) in VECTORS {
        s.push_str(&format!("{{ {kind:?}, {name:?}, {h:?} }},\n"));
    }
    s.push_str("}\n");
    s
}

#[test]
fn lua_encodings_match_upstream() {
    check(&format!(
        "{}{}",
        vectors_lua(),
        r##"
local ITEM = core.querytype(SP, "Item")
local QUX = core.querytype(SP, "qux.request")
for _, v in ipairs(VECTORS) do
  local kind, name, h = v[1], v[2], v[3]
  if name == "qux" then
    assert(hex(core.encode(QUX, {a=5, b="z"})) == h)
  elseif name == "item" then
    assert(hex(core.encode(ITEM, {id=3, name="three"})) == h)
  else
    local e = core.encode(ALL, MESSAGES[name])
    if kind == "ENC" then
      assert(hex(e) == h, name .. ": " .. hex(e))
      -- upstream's bytes decode to the message, all of them used
      local t, used = core.decode(ALL, unhex(h))
      assert(used == #h // 2)
      deq(t, MESSAGES[name], name)
      -- also through unpack(pack()) and the pointer form
      local t2, used2 = core.decode(ALL, core.unpack(core.pack(e)))
      assert(used2 == #e)
      deq(t2, MESSAGES[name], name)
    else
      assert(hex(core.pack(e)) == h, name .. " pack")
    end
  end
end
-- decode into a given table; trailing bytes are not used
local into = {}
local t, used = core.decode(ALL, unhex(VECTORS[1][3]) .. "trailing", into)
assert(t == into and used == #VECTORS[1][3] // 2)
-- integer/double edges
local t = core.decode(ALL, core.encode(ALL, MESSAGES.ints3))
assert(math.type(t.i) == "integer" and t.i == -2147483648 and t.big == -2147483649)
assert(t.dec == -0.5 and math.type(t.d) == "float" and 1/t.d < 0)
assert(math.type(core.decode(ALL, core.encode(ALL, {dec=2})).dec) == "float")
"##
    ));
}

#[test]
fn lua_protocol_querytype_default() {
    check(
        r##"
local ITEM = core.querytype(SP, "Item")
assert(type(ITEM) == "userdata" and core.querytype(SP, "Nope") == nil)
local tag, req, resp = core.protocol(SP, "foo")
assert(tag == 1 and req == ALL and resp == ITEM)
local name, req, resp = core.protocol(SP, 1)
assert(name == "foo" and req == ALL and resp == ITEM)
local name, req, resp = core.protocol(SP, 2)
assert(name == "bar" and req == ITEM and resp == nil)
local tag, req, resp = core.protocol(SP, "baz")
assert(tag == 3 and req == nil and resp == nullptr)
local n = select("#", core.protocol(SP, "ping"))
local tag, req, resp = core.protocol(SP, "ping")
assert(n == 3 and tag == 4 and req == nil and resp == nil)
assert(core.protocol(SP, "nope") == nil and core.protocol(SP, 99) == nil)
assert(select("#", core.protocol(SP, 99)) == 0)
local _, qreq, qresp = core.protocol(SP, "qux")
assert(qreq == core.querytype(SP, "qux.request") and qresp == core.querytype(SP, "qux.response"))
expect_error("Should be number or string", core.protocol, SP, nil)
expect_error("Need a sproto", core.querytype, nil, "x")
-- nil type: request/response without content
assert(core.encode(nil, nil) == "" and core.encode(nullptr, nil) == "")
expect_error("nil expected", core.encode, nil, {})
assert(select("#", core.decode(nil, "")) == 0)
-- default
local d = core.default(ALL)
assert(d.i == 0 and math.type(d.i) == "integer" and d.dec == 0.0 and math.type(d.dec) == "float")
assert(d.b == false and d.s == "" and d.bin == "" and d.d == 0.0 and math.type(d.d) == "float")
assert(d.st.__type == "Item" and d.nested.__type == "All" and d.e.__type == "Empty")
assert(d.ia.__array == 0 and d.ba.__array == false and d.sa.__array == "" and d.sta.__array == "Item")
assert(d.deca.__array == 0.0 and d.da.__array == 0.0 and d.map.__array == "Pair")
local n = 0 for _ in pairs(d) do n = n + 1 end
assert(n == 23)
expect_error("Need a sproto_type object", core.default, nil)
-- a sproto where a type is expected, a full userdata
expect_error("Need a sproto_type object", core.encode, SP, {})
expect_error("Need a sproto_type object", core.decode, io.stdout, "")
-- newproto of garbage gives nothing
assert(core.newproto("garbage") == nil and select("#", core.newproto("")) == 0)
-- delete: once; twice is an error, not a double free
local sp2 = core.newproto(schema())
core.deleteproto(sp2)
expect_error("Need a sproto object", core.deleteproto, sp2)
expect_error("Need a sproto object", core.deleteproto, nil)
core.deleteproto(SP)
"##,
    );
}

#[test]
fn lua_saveproto_loadproto() {
    check(
        r##"
local sp = core.newproto(schema())
core.saveproto(sp, 15)
assert(core.loadproto(15) == sp)
-- a saved sproto survives its owner's deleteproto (other services may use it)
core.deleteproto(sp)
local sp2 = core.loadproto(15)
local t = core.decode(core.querytype(sp2, "Item"), core.encode(core.querytype(sp2, "Item"), {id = 5}))
assert(t.id == 5)
expect_error("Invalid global slot index 16", core.saveproto, sp, 16)
expect_error("Invalid global slot index %-1", core.loadproto, -1)
expect_error("nil sproto at index 14", core.loadproto, 14)
expect_error("Need a sproto object", core.saveproto, io.stdout, 13)
"##,
    );
    // another state (service) of the process sees it
    check(
        r##"
local sp = core.loadproto(15)
local _, req = core.protocol(sp, "bar")
assert(core.decode(req, core.encode(req, {name = "z"})).name == "z")
"##,
    );
}

#[test]
fn lua_encode_errors_and_limits() {
    check(
        r##"
expect_error("All%.i%[0%] is not an integer %(Is a string%)", core.encode, ALL, {i = "x"})
expect_error("All%.i%[0%] is not an integer %(Is a number%)", core.encode, ALL, {i = 1.5})
assert(core.decode(ALL, core.encode(ALL, {i = "12"})).i == 12)
assert(core.decode(ALL, core.encode(ALL, {i = 3.0})).i == 3)
expect_error("All%.b%[0%] is not a boolean %(Is a number%)", core.encode, ALL, {b = 1})
expect_error("All%.s%[0%] is not a string %(Is a number%)", core.encode, ALL, {s = 1})
expect_error("All%.ia%[2%] is not an integer %(Is a boolean%)", core.encode, ALL, {ia = {1, true}})
expect_error("Item%.name%[0%] is not a string", core.encode, ALL, {st = {name = false}})
expect_error("All%.ia%(1%) should be a table or an userdata with metamethods %(Is a number%)", core.encode, ALL, {ia = 5})
-- too deep
local t = {}
local cur = t
for i = 1, 70 do cur.nested = {} cur = cur.nested end
expect_error("The table is too deep", core.encode, ALL, t)
local ok = pcall(core.encode, ALL, {i = "bad"})
-- the buffer is usable after errors
assert(core.decode(ALL, core.encode(ALL, MESSAGES.full)).big == 0x123456789)
-- growth: a large string restarts the encode with bigger buffers
local big = string.rep("x", 300000)
local e = core.encode(ALL, {s = big, sa = {big, big}})
local d = core.decode(ALL, e)
assert(d.s == big and d.sa[2] == big)
assert(core.unpack(core.pack(e)):sub(1, #e) == e)
-- beyond 16 MiB
expect_error("object is too large %(>16777216%)", core.encode, ALL, {s = string.rep("y", 0x1000000)})
expect_error("object is too large %(>16777216%)", core.pack, string.rep("y", 0x1000000))
"##,
    );
}

#[test]
fn lua_maps_pairs_and_reentrancy() {
    check(
        r##"
-- main index and map decode back to keyed tables
local m = {idx = {[1] = {id = 1, name = "a"}, [9] = {id = 9}}, map = {x = 1, y = 2, z = 3}}
deq(core.decode(ALL, core.encode(ALL, m)), m)
-- __pairs supplies the array of a main-index field
local proxy = setmetatable({}, {__pairs = function() return next, {{id = 4, name = "p"}}, nil end})
local d = core.decode(ALL, core.encode(ALL, {idx = proxy}))
assert(d.idx[4].name == "p")
-- __index on plain arrays
local arr = setmetatable({}, {__index = function(_, i) if i <= 3 then return i * 10 end end})
deq(core.decode(ALL, core.encode(ALL, {ia = arr})).ia, {10, 20, 30})
-- a metamethod that encodes again (re-entrant use of the buffer)
local inner
local msg = setmetatable({}, {__index = function(_, k)
  if k == "s" then inner = core.encode(ALL, MESSAGES.full) return "outer" end
end})
local e = core.encode(ALL, msg)
assert(core.decode(ALL, e).s == "outer")
deq(core.decode(ALL, inner), MESSAGES.full)
-- a main-index element without its key
local ITEM = core.querytype(SP, "Item")
local noid = core.encode(ITEM, {name = "k"})
local bad = "\2\0\31\0\0\0" -- skip to tag 15 (idx), then data
bad = "\2\0" .. string.pack("<I2I2", 2 * 14 + 1, 0) .. string.pack("<s4", string.pack("<s4", noid))
expect_error("Can't find main index %(tag=0%) in %[idx%]", core.decode, ALL, bad)
"##,
    );
}

#[test]
fn lua_decode_errors() {
    check(
        r##"
local full = core.encode(ALL, MESSAGES.full)
for n = 0, #full - 1 do
  local ok, err = pcall(core.decode, ALL, full:sub(1, n))
  assert(ok or err:find("decode error"), err)
end
expect_error("decode error", core.decode, ALL, "")
expect_error("decode error", core.decode, ALL, "\1\0")
expect_error("Need a string or userdata", core.decode, ALL, true)
expect_error("Invalid unpack stream", core.unpack, "\255")
expect_error("Invalid unpack stream", core.unpack, "\3\1")
assert(core.unpack("") == "" and core.pack("") == "")
-- unpacked output is bounded (each zero byte would give 8)
expect_error("object is too large %(>16777216%)", core.unpack, string.rep("\0", 0x200001))
assert(#core.unpack(string.rep("\0", 0x200000)) == 0x1000000)
-- deep nesting in the bytes: 63 levels decode, 70 do not
local e = core.encode(ALL, {i = 1})
for i = 1, 70 do
  e = "\2\0" .. string.pack("<I2I2", 2 * 30 + 1, 0) .. string.pack("<s4", e)
  if i == 63 then
    local t = core.decode(ALL, e)
    for _ = 1, 63 do t = t.nested end
    assert(t.i == 1)
  end
end
expect_error("The table is too deep", core.decode, ALL, e)
"##,
    );
}
