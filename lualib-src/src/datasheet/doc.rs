//! Reading a datasheet document (the format `skynet.datasheet.dump` writes), every offset
//! checked against the document's length.
//!
//! ```text
//! document: u32 strtbl, u32 n, u32 index[n], tables, strings (NUL terminated)
//! table:    u32 array, u32 dict, u8 type[array + dict] (padded to 4),
//!           u32 value[array], (u32 key string, u32 value)[dict]
//! ```
//! All integers little endian; `index[i]` is a table's offset from the end of the index
//! (`0xffffffff` = none); string offsets count from `strtbl`.

/// A value of a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Nil,
    Integer(i32),
    Real(f32),
    Boolean(bool),
    /// Index of another table of the document.
    Table(u32),
    /// The bytes before the NUL.
    Str(&'a [u8]),
}

/// A table: where it starts (its identity inside the document) and its sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Table {
    pub offset: usize,
    pub array: u32,
    pub dict: u32,
}

fn u32_at(doc: &[u8], off: usize) -> Result<u32, String> {
    off.checked_add(4)
        .and_then(|end| doc.get(off..end))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("datasheet: truncated document (offset {off})"))
}

/// The number of tables in the document.
pub fn count(doc: &[u8]) -> Result<u32, String> {
    u32_at(doc, 4)
}

/// Table `index` of the document, with its type and value arrays checked to fit.
pub fn table(doc: &[u8], index: u32) -> Result<Table, String> {
    let n = count(doc)?;
    if index >= n {
        return Err(format!("Invalid index {index}"));
    }
    let rel = u32_at(doc, 8 + 4 * index as usize)?;
    if rel == 0xffff_ffff {
        return Err(format!("Invalid index {index}"));
    }
    let offset = 8usize + 4 * n as usize + rel as usize;
    let array = u32_at(doc, offset)?;
    let dict = u32_at(doc, offset + 4)?;
    let t = Table {
        offset,
        array,
        dict,
    };
    let end = values_start(&t)
        .checked_add((array as usize + 2 * dict as usize) * 4)
        .ok_or("datasheet: table too large")?;
    if end > doc.len() {
        return Err(format!("datasheet: table {index} runs past the document"));
    }
    Ok(t)
}

fn values_start(t: &Table) -> usize {
    let types = t.array as usize + t.dict as usize;
    t.offset + 8 + ((types + 3) & !3)
}

fn value<'a>(doc: &'a [u8], ty: u8, at: usize) -> Result<Value<'a>, String> {
    let v = u32_at(doc, at)?;
    Ok(match ty {
        0 => Value::Nil,
        1 => Value::Integer(v as i32),
        2 => Value::Real(f32::from_bits(v)),
        3 => Value::Boolean(v != 0),
        4 => Value::Table(v),
        5 => Value::Str(string(doc, v)?),
        _ => return Err(format!("Invalid type {ty} at offset {at}")),
    })
}

/// The NUL-terminated string at `off` from the string table.
pub fn string(doc: &[u8], off: u32) -> Result<&[u8], String> {
    let start = (u32_at(doc, 0)? as usize)
        .checked_add(off as usize)
        .filter(|&s| s <= doc.len())
        .ok_or_else(|| format!("datasheet: string offset {off} out of the document"))?;
    let rest = &doc[start..];
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| format!("datasheet: unterminated string at offset {off}"))?;
    Ok(&rest[..len])
}

/// Array item `i` (0-based) of `t`.
pub fn array_item<'a>(doc: &'a [u8], t: &Table, i: u32) -> Result<Value<'a>, String> {
    debug_assert!(i < t.array);
    let ty = doc[t.offset + 8 + i as usize];
    value(doc, ty, values_start(t) + 4 * i as usize)
}

/// Dictionary pair `i` (0-based) of `t`: key string and value.
pub fn dict_item<'a>(doc: &'a [u8], t: &Table, i: u32) -> Result<(&'a [u8], Value<'a>), String> {
    debug_assert!(i < t.dict);
    let ty = doc[t.offset + 8 + t.array as usize + i as usize];
    let at = values_start(t) + 4 * (t.array as usize + 2 * i as usize);
    let key = string(doc, u32_at(doc, at)?)?;
    Ok((key, value(doc, ty, at + 4)?))
}

/// Walks every table reachable from table 0 (each table once), checking every value; returns
/// how many values it saw. For tests and fuzzing: memory stays proportional to the input.
pub fn walk(doc: &[u8]) -> Result<usize, String> {
    let n = count(doc)?;
    // A valid index has its entry inside the document, so it is below len / 4.
    let mut seen = vec![false; (n as usize).min(doc.len() / 4 + 1)];
    let mut stack = vec![0u32];
    let mut values = 0;
    while let Some(i) = stack.pop() {
        let t = table(doc, i)?;
        let mut visit = |v: Value| -> Result<(), String> {
            values += 1;
            if let Value::Table(j) = v {
                match seen.get_mut(j as usize) {
                    Some(s) if !*s => {
                        *s = true;
                        stack.push(j);
                    }
                    Some(_) => {}
                    None => {
                        table(doc, j)?;
                    }
                }
            }
            Ok(())
        };
        for k in 0..t.array {
            visit(array_item(doc, &t, k)?)?;
        }
        for k in 0..t.dict {
            visit(dict_item(doc, &t, k)?.1)?;
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{ 10, "x", { true }, k = 1.5 }` as `datasheet.dump` writes it.
    pub fn sample() -> Vec<u8> {
        let mut t0 = Vec::new();
        t0.extend(3u32.to_le_bytes());
        t0.extend(1u32.to_le_bytes());
        t0.extend([1, 5, 4, 2]);
        t0.extend(10i32.to_le_bytes());
        t0.extend(0u32.to_le_bytes()); // "x"
        t0.extend(1u32.to_le_bytes()); // table 1
        t0.extend(2u32.to_le_bytes()); // "k"
        t0.extend(1.5f32.to_le_bytes());
        let mut t1 = Vec::new();
        t1.extend(1u32.to_le_bytes());
        t1.extend(0u32.to_le_bytes());
        t1.extend([3, 0, 0, 0]);
        t1.extend([0, 0, 0, 1]);
        let strings = b"x\0k\0";
        let mut d = Vec::new();
        let strtbl = 8 + 8 + t0.len() + t1.len();
        d.extend((strtbl as u32).to_le_bytes());
        d.extend(2u32.to_le_bytes());
        d.extend(0u32.to_le_bytes());
        d.extend((t0.len() as u32).to_le_bytes());
        d.extend(t0);
        d.extend(t1);
        d.extend(strings);
        d
    }

    #[test]
    fn reads_sample() {
        let d = sample();
        let t = table(&d, 0).unwrap();
        assert_eq!((t.array, t.dict), (3, 1));
        assert_eq!(array_item(&d, &t, 0).unwrap(), Value::Integer(10));
        assert_eq!(array_item(&d, &t, 1).unwrap(), Value::Str(b"x"));
        assert_eq!(array_item(&d, &t, 2).unwrap(), Value::Table(1));
        assert_eq!(dict_item(&d, &t, 0).unwrap(), (&b"k"[..], Value::Real(1.5)));
        let t1 = table(&d, 1).unwrap();
        assert_eq!(array_item(&d, &t1, 0).unwrap(), Value::Boolean(true));
        assert_eq!(walk(&d).unwrap(), 5);
    }

    #[test]
    fn corrupt_documents_are_errors() {
        let d = sample();
        assert!(table(&d, 2).is_err());
        for cut in 0..d.len() {
            let _ = walk(&d[..cut]); // never panics
            assert!(walk(&d[..cut]).is_err() || cut >= d.len() - 1);
        }
        let mut bad = d.clone();
        bad[16] = 0xff; // array count of table 0
        assert!(table(&bad, 0).is_err());
        let mut bad = d.clone();
        bad[24] = 9; // a type
        assert!(walk(&bad).is_err());
        let mut bad = d.clone();
        bad[0] = 0xf0; // string table offset
        assert!(walk(&bad).is_err());
        let mut bad = d.clone();
        let last = bad.len() - 1;
        bad[last] = b'!'; // unterminated string
        assert!(walk(&bad).is_err());
        assert!(walk(&[0xff; 64]).is_err());
        assert!(walk(&[]).is_err());
    }
}
