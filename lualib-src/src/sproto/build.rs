//! Builds schema bundles (the binary `sprotoparser.parse` returns) from a Rust description, for
//! tests and fuzzing without a sproto text parser. The bytes equal the parser's for the same
//! schema: types sorted by name (a type's index is its rank), protocols sorted by tag.
//!
//! Field types are written as in sproto text: `integer`, `integer(2)` (decimal), `boolean`,
//! `string`, `binary`, `double`, a type name, each optionally prefixed by `*` (array); struct
//! arrays take `(key)` (main index) or `()` (two-field map).

/// A type: name and fields `(name, tag, type)`.
pub type TypeDef<'a> = (&'a str, &'a [(&'a str, u32, &'a str)]);

/// A protocol's response.
#[derive(Clone, Copy, Debug)]
pub enum Response<'a> {
    /// No response.
    None,
    /// `response nil`: an empty response is expected.
    Nil,
    /// Response of this type.
    Type(&'a str),
}

/// A protocol: name, tag, request type, response.
pub type ProtoDef<'a> = (&'a str, u32, Option<&'a str>, Response<'a>);

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn value(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&(((v + 1) * 2) as u16).to_le_bytes());
}

const SKIP: [u8; 2] = [1, 0];

fn builtin(name: &str) -> Option<u32> {
    Some(match name {
        "integer" => 0,
        "boolean" => 1,
        "string" | "binary" => 2,
        "double" => 3,
        _ => return None,
    })
}

/// The schema bundle for `types` and `protocols`.
///
/// # Panics
/// On an undefined type, a bad main index or map, or a malformed field type (a test bug).
pub fn schema(types: &[TypeDef], protocols: &[ProtoDef]) -> Vec<u8> {
    let mut names: Vec<&str> = types.iter().map(|t| t.0).collect();
    names.sort_unstable();
    let index = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("undefined type {n}"))
    };
    let def = |n: &str| types.iter().find(|t| t.0 == n).expect("type");
    if types.is_empty() {
        assert!(protocols.is_empty());
        return vec![0, 0];
    }
    let mut tt = Vec::new();
    for name in &names {
        let (_, fields) = def(name);
        let mut fields = fields.to_vec();
        fields.sort_by_key(|f| f.1);
        let mut fb = Vec::new();
        for (fname, tag, spec) in fields {
            let (array, spec) = match spec.strip_prefix('*') {
                Some(s) => (true, s),
                None => (false, spec),
            };
            let (tn, arg) = match spec.split_once('(') {
                Some((t, a)) => (t, Some(a.strip_suffix(')').expect("missing )"))),
                None => (spec, None),
            };
            let mut f = Vec::new();
            let (mut key, mut map) = (None, false);
            let (decimal, _) = match (tn, arg) {
                ("integer", Some(d)) => (Some(d.parse::<u32>().expect("decimal")), 0),
                (_, Some(k)) => {
                    let st = def(tn).1;
                    let kf = if k.is_empty() {
                        assert_eq!(st.len(), 2, "map needs two fields");
                        map = true;
                        st.iter().min_by_key(|f| f.1).unwrap()
                    } else {
                        st.iter().find(|f| f.0 == k).expect("main index field")
                    };
                    assert!(builtin(kf.2).is_some(), "main index must be builtin");
                    key = Some(kf.1);
                    (None, 0)
                }
                _ => (None, 0),
            };
            let nrec: u8 = match (array, key, map) {
                (false, _, _) => 4,
                (true, None, _) => 5,
                (true, Some(_), false) => 6,
                (true, Some(_), true) => 7,
            };
            f.extend_from_slice(&[nrec, 0, 0, 0]);
            if let Some(b) = builtin(tn) {
                value(&mut f, b);
                match (tn, decimal) {
                    ("binary", _) => value(&mut f, 1),
                    (_, Some(d)) => value(&mut f, d),
                    _ => f.extend_from_slice(&SKIP),
                }
            } else {
                f.extend_from_slice(&SKIP);
                value(&mut f, index(tn) as u32);
            }
            value(&mut f, tag);
            if array {
                value(&mut f, 1);
                if let Some(k) = key {
                    value(&mut f, k);
                    if map {
                        value(&mut f, 1);
                    }
                }
            }
            bytes(&mut f, fname.as_bytes());
            bytes(&mut fb, &f);
        }
        let mut t = Vec::new();
        if fb.is_empty() {
            t.extend_from_slice(&[1, 0, 0, 0]);
            bytes(&mut t, name.as_bytes());
        } else {
            t.extend_from_slice(&[2, 0, 0, 0, 0, 0]);
            bytes(&mut t, name.as_bytes());
            bytes(&mut t, &fb);
        }
        bytes(&mut tt, &t);
    }
    let mut out = Vec::new();
    if protocols.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0]);
        bytes(&mut out, &tt);
        return out;
    }
    let mut ps = protocols.to_vec();
    ps.sort_by_key(|p| p.1);
    let mut tp = Vec::new();
    for (name, tag, req, resp) in ps {
        let mut p = vec![4, 0, 0, 0];
        value(&mut p, tag);
        if req.is_none() && matches!(resp, Response::None) {
            p[0] = 2;
        } else {
            match req {
                Some(r) => value(&mut p, index(r) as u32),
                None => p.extend_from_slice(&SKIP),
            }
            match resp {
                Response::Type(r) => value(&mut p, index(r) as u32),
                Response::Nil => {
                    p[0] = 5;
                    p.extend_from_slice(&SKIP);
                    value(&mut p, 1);
                }
                Response::None => p[0] = 3,
            }
        }
        bytes(&mut p, name.as_bytes());
        bytes(&mut tp, &p);
    }
    out.extend_from_slice(&[2, 0, 0, 0, 0, 0]);
    bytes(&mut out, &tt);
    bytes(&mut out, &tp);
    out
}
