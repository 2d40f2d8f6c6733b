//! A direct PEG interpreter over pattern trees, used as the reference the compiled machine is
//! checked against (unit tests and the `lpeg_machine` fuzz target). It follows the definitions
//! of each operator and none of the compiler's optimisations (first sets, head-fail tests,
//! spans, tail calls, full captures).

use super::code::{self, Capture, Frame, Host, RuntimeResult};
use super::tree::{self, CapKind, CharSet, Grammar, Node, Pat, Tree};
use std::collections::HashMap;

/// The comparison cannot be made (out of fuel, too deep, compile error, stack overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip;

/// Matches `p` at `i`; `Err(())` when `fuel` (steps) runs out or calls nest too deep.
pub fn reference_match(
    p: &Tree,
    env: Option<&Grammar>,
    s: &[u8],
    i: usize,
    fuel: &mut u32,
) -> Result<Option<usize>, Skip> {
    let _w = tree::Walk::enter().ok_or(Skip)?;
    if *fuel == 0 {
        return Err(Skip);
    }
    *fuel -= 1;
    Ok(match &p.node {
        Node::True => Some(i),
        Node::False => None,
        Node::Char(c) => (s.get(i) == Some(c)).then_some(i + 1),
        Node::Set(set) => s.get(i).filter(|&&c| set.has(c)).map(|_| i + 1),
        Node::Any(n) => (s.len() - i >= *n as usize).then_some(i + *n as usize),
        Node::Utf { lo, hi, .. } => match tree::utf8_decode(&s[i..]) {
            Some((cp, len)) if *lo <= cp && cp <= *hi => Some(i + len),
            _ => None,
        },
        Node::Seq(v) => {
            let mut pos = i;
            for q in v {
                match reference_match(q, env, s, pos, fuel)? {
                    Some(e) => pos = e,
                    None => return Ok(None),
                }
            }
            Some(pos)
        }
        Node::Choice(v) => {
            for q in v {
                if let Some(e) = reference_match(q, env, s, i, fuel)? {
                    return Ok(Some(e));
                }
            }
            None
        }
        Node::Rep(q) => {
            let mut pos = i;
            while let Some(e) = reference_match(q, env, s, pos, fuel)? {
                pos = e;
            }
            Some(pos)
        }
        Node::AtMost(q, n) => {
            let mut pos = i;
            for _ in 0..*n {
                match reference_match(q, env, s, pos, fuel)? {
                    Some(e) => pos = e,
                    None => break,
                }
            }
            Some(pos)
        }
        Node::Not(q) => match reference_match(q, env, s, i, fuel)? {
            Some(_) => None,
            None => Some(i),
        },
        Node::And(q) => reference_match(q, env, s, i, fuel)?.map(|_| i),
        Node::Behind(q, n) => {
            let n = *n as usize;
            if n > i {
                None
            } else {
                reference_match(q, env, s, i - n, fuel)?.map(|_| i)
            }
        }
        Node::Cap(_, _, q) | Node::RunTime(_, q) => reference_match(q, env, s, i, fuel)?,
        Node::Grammar(g) => reference_match(&g.rules[0], Some(g), s, i, fuel)?,
        Node::Call(k) => {
            let g = env.ok_or(Skip)?;
            let r = g.rule_of(*k).ok_or(Skip)?;
            reference_match(r, env, s, i, fuel)?
        }
    })
}

/// A host for patterns without match-time captures.
pub struct PlainHost;

impl Host for PlainHost {
    type Error = Skip;
    fn runtime(&mut self, _: &[Capture], _: usize, _: usize) -> Result<RuntimeResult, Skip> {
        Err(Skip)
    }
    fn drop_dynamic(&mut self, _: &[Capture]) -> usize {
        0
    }
    fn overflow(&mut self) -> Skip {
        Skip
    }
    fn out_of_memory(&mut self) -> Skip {
        Skip
    }
}

/// Compiles and runs `p` on `s` from `init` with a large backtrack limit; `Err` on a compile
/// error or stack overflow.
pub fn machine_match(p: &Tree, s: &[u8], init: usize) -> Result<Option<usize>, Skip> {
    let prog = code::compile(p).map_err(|_| Skip)?;
    let mut caps = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let r = code::run(
        &prog,
        s,
        init,
        100_000,
        &mut caps,
        &mut stack,
        &mut PlainHost,
    )?;
    if r.is_some() {
        check_capture_list(&caps);
    }
    Ok(r)
}

/// Opens and closes in a capture list balance, and it ends with the final close.
fn check_capture_list(caps: &[Capture]) {
    let mut depth = 0i64;
    for c in &caps[..caps.len() - 1] {
        if c.is_open() {
            depth += 1;
        } else if c.is_close() {
            depth -= 1;
            assert!(depth >= 0, "close without open");
        }
    }
    assert_eq!(depth, 0, "unbalanced capture list");
    assert!(caps.last().unwrap().is_close());
}

/// Builds a pattern from `data` (a tiny stack language, see the match below); the bytes after
/// the first 0xFF are the subject. `None` if the program is not a valid pattern.
pub fn build(data: &[u8]) -> Option<(Pat, &[u8])> {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let (prog, rest) = data.split_at(split);
    let subject = rest.get(1..).unwrap_or(&[]);
    let mut st: Vec<Pat> = Vec::new();
    let mut i = 0;
    let next = |i: &mut usize| -> u8 {
        let b = prog.get(*i).copied().unwrap_or(0);
        *i += 1;
        b
    };
    while i < prog.len() {
        let op = next(&mut i);
        match op % 17 {
            0 => st.push(tree::leaf(Node::Char(b'a' + next(&mut i) % 4))),
            1 => {
                let a = b'a' + next(&mut i) % 4;
                let b = a + next(&mut i) % 3;
                let mut set = CharSet::EMPTY;
                for c in a..=b {
                    set.add(c);
                }
                st.push(tree::set_node(set));
            }
            2 => st.push(tree::leaf(Node::Any(1 + u32::from(next(&mut i) % 3)))),
            3 => st.push(tree::leaf(Node::True)),
            4 => st.push(tree::leaf(Node::False)),
            5 | 6 | 12 => {
                let b = st.pop()?;
                let a = st.pop()?;
                let r = match op % 17 {
                    5 => tree::seq(&a, &b),
                    6 => tree::choice(&a, &b),
                    _ => tree::sub(&a, &b),
                };
                st.push(r.ok()?);
            }
            7 => {
                let a = st.pop()?;
                let n = i64::from(next(&mut i) % 5) - 2;
                st.push(tree::rep(&a, n).ok()?);
            }
            8 => {
                let a = st.pop()?;
                st.push(tree::mk(Node::Not(a)).ok()?);
            }
            9 => {
                let a = st.pop()?;
                st.push(tree::mk(Node::And(a)).ok()?);
            }
            10 => {
                let a = st.pop()?;
                let n = tree::behind_len(&a).ok()?;
                st.push(tree::mk(Node::Behind(a, n)).ok()?);
            }
            11 => {
                let a = st.pop()?;
                let kind = [
                    CapKind::Simple,
                    CapKind::Group,
                    CapKind::Table,
                    CapKind::Subst,
                ][usize::from(next(&mut i) % 4)];
                st.push(tree::mk(Node::Cap(kind, 0, a)).ok()?);
            }
            13 => {
                let lo = [0x41u32, 0x80, 0x800, 0x10000][usize::from(next(&mut i) % 4)];
                let hi = lo + u32::from(next(&mut i)) * 64;
                let (lolen, _) = tree::utf_len(lo);
                let (hilen, _) = tree::utf_len(hi);
                st.push(tree::leaf(Node::Utf {
                    lo,
                    hi,
                    lolen,
                    hilen,
                }));
            }
            14 => st.push(tree::leaf(Node::Call(u64::from(next(&mut i) % 3) + 1))),
            15 => {
                // Grammar of the top k patterns; rule j is named key j + 1.
                let k = usize::from(next(&mut i) % 3) + 1;
                if st.len() < k {
                    return None;
                }
                let rules: Vec<Pat> = st.split_off(st.len() - k);
                let mut calls = HashMap::new();
                for r in &rules {
                    let mut ok = true;
                    tree::open_calls_each(r, &mut |key| {
                        if (key as usize) <= k {
                            calls.insert(key, key as usize - 1);
                        } else {
                            ok = false;
                        }
                    });
                    if !ok {
                        return None;
                    }
                }
                let g = Grammar {
                    names: (1..=k as u64).collect(),
                    rules,
                    calls,
                };
                let mut done = HashMap::new();
                for r in &g.rules {
                    tree::verify_rule(&g, r, &mut Vec::new(), false, &mut done).ok()?;
                    if tree::has_empty_loop(r, Some(&g)) {
                        return None;
                    }
                }
                st.push(tree::mk(Node::Grammar(Box::new(g))).ok()?);
            }
            _ => {
                let a = st.pop()?;
                st.push(tree::mk(Node::Cap(CapKind::Position, 0, a)).ok()?);
            }
        }
        if st.len() > 64 {
            return None;
        }
    }
    let p = st.pop()?;
    Some((p, subject))
}

/// Builds a pattern from `data` and checks that the machine agrees with the reference at
/// every start position of the subject.
pub fn differential(data: &[u8]) {
    let Some((p, subject)) = build(data) else {
        return;
    };
    let Ok(prog) = code::compile(&p) else {
        return;
    };
    let mut caps = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for init in 0..=subject.len() {
        let mut fuel = 20_000;
        let Ok(expected) = reference_match(&p, None, subject, init, &mut fuel) else {
            return;
        };
        let Ok(got) = code::run(
            &prog,
            subject,
            init,
            100_000,
            &mut caps,
            &mut stack,
            &mut PlainHost,
        ) else {
            return;
        };
        if got.is_some() {
            check_capture_list(&caps);
        }
        assert_eq!(
            got, expected,
            "pattern {data:?} on {subject:?} from {init}: machine {got:?}, reference {expected:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn machine_agrees_with_reference_on_random_patterns() {
        let mut rng = Rng(0x2545F4914F6CDD1D);
        let mut built = 0;
        for _ in 0..300_000 {
            let n = (rng.next() % 40) as usize + 1;
            let mut data: Vec<u8> = (0..n).map(|_| (rng.next() % 255) as u8).collect();
            data.push(0xFF);
            let m = (rng.next() % 10) as usize;
            data.extend((0..m).map(|_| b"abcd\xc3\xa9"[(rng.next() % 6) as usize]));
            if build(&data).is_some() {
                built += 1;
            }
            differential(&data);
        }
        assert!(built > 1000, "only {built} patterns built");
    }

    /// Found by the fuzz target: `p = p^2` repeated doubled the flattened sequence until the
    /// allocation failed; now the size limit stops it.
    #[test]
    fn doubling_repetitions_stop_at_the_size_limit() {
        let mut data = vec![0x26, 0xf2, 0x07, 0x3f, 0xb2, 0xab];
        data.extend([0x6d; 74]);
        data.extend([0x2b, 0x2b]);
        differential(&data);
        let mut p = tree::leaf(Node::Char(b'a'));
        let mut err = None;
        for _ in 0..64 {
            match tree::rep(&p, 2) {
                Ok(q) => p = q,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err, Some(tree::TreeError::TooBig));
    }

    #[test]
    fn known_patterns() {
        let a = tree::leaf(Node::Char(b'a'));
        let b = tree::leaf(Node::Char(b'b'));
        let ab = tree::seq(&a, &b).unwrap();
        let star = tree::rep(&ab, 0).unwrap();
        assert_eq!(machine_match(&star, b"ababa", 0), Ok(Some(4)));
        let alt = tree::choice(&ab, &a).unwrap();
        assert_eq!(machine_match(&alt, b"ac", 0), Ok(Some(1)));
        let not = tree::mk(Node::Not(a.clone())).unwrap();
        assert_eq!(machine_match(&not, b"a", 0), Ok(None));
        assert_eq!(machine_match(&not, b"", 0), Ok(Some(0)));
        let most = tree::rep(&a, -2).unwrap();
        assert_eq!(machine_match(&most, b"aaa", 0), Ok(Some(2)));
        // errors of construction
        assert!(tree::rep(&tree::leaf(Node::True), 0).is_err());
        assert_eq!(
            tree::behind_len(&star),
            Err("pattern may not have fixed length")
        );
        // nesting limit
        let mut p = a.clone();
        let mut err = None;
        for _ in 0..tree::MAX_DEPTH + 5 {
            match tree::mk(Node::And(p.clone())) {
                Ok(q) => p = q,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err, Some(tree::TreeError::TooDeep));
    }

    #[test]
    fn utf8_decoding() {
        assert_eq!(tree::utf8_decode(b"a"), Some((0x61, 1)));
        assert_eq!(tree::utf8_decode("é".as_bytes()), Some((0xe9, 2)));
        assert_eq!(tree::utf8_decode("中".as_bytes()), Some((0x4e2d, 3)));
        assert_eq!(tree::utf8_decode("😀".as_bytes()), Some((0x1f600, 4)));
        assert_eq!(tree::utf8_decode(b"\xc0\x80"), None);
        assert_eq!(tree::utf8_decode(b"\x80"), None);
        assert_eq!(tree::utf8_decode(b"\xe4\xb8"), None);
        assert_eq!(tree::utf8_decode(b"\xf8\x88\x80\x80\x80"), None);
        assert_eq!(tree::utf8_decode(b"\xf4\x90\x80\x80"), None);
        assert_eq!(tree::utf8_decode(b""), None);
    }
}
