//! Compilation of pattern trees into a parsing-machine program, and the machine itself.
//!
//! The machine is the one of "A Parsing Machine for PEGs" (Medeiros, Ierusalimschy): a program
//! counter, a subject position, a backtrack stack of choice points and return addresses, and a
//! flat capture list of open / close / full entries. The stack is an explicit `Vec` bounded by
//! the caller's limit, so no subject or grammar can recurse on the Rust stack. Code generation
//! follows the same first-set / head-fail rules LPeg uses to avoid pushing choice points, so
//! backtrack-stack usage (which users can observe through `setmaxstack`) matches LPeg's.

use super::tree::{
    fixed_len, has_captures, nofail, nullable, to_charset, CapKind, CharSet, Env, Grammar, Key,
    Node, Tree, MAX_BEHIND,
};
use std::collections::HashMap;

/// Most instructions in one program.
const MAX_CODE: usize = 1 << 21;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Any(u32),
    Char(u8),
    Set(u32),
    Utf(u32, u32),
    Span(u32),
    TestAny(usize),
    TestChar(u8, usize),
    TestSet(u32, usize),
    Behind(u32),
    Ret,
    End,
    Choice(usize),
    Jmp(usize),
    Call(usize),
    /// Call of rule n of the grammar being compiled (patched into `Call` / `Jmp`).
    OpenCall(usize),
    Commit(usize),
    PartialCommit(usize),
    BackCommit(usize),
    Fail,
    FailTwice,
    OpenCap(CapKind, u32),
    FullCap(CapKind, u32, u32),
    CloseCap,
    CloseRunTime,
}

/// A compiled pattern. `values[i - 1]` is the key of the Lua value an instruction's index `i`
/// refers to (index 0 is nil).
pub struct Program {
    pub code: Vec<Op>,
    pub sets: Vec<CharSet>,
    pub values: Vec<Key>,
}

#[derive(Debug, PartialEq)]
pub enum CompileError {
    /// `V(key)` outside any grammar.
    OutsideGrammar(Key),
    TooLarge,
}

struct Comp {
    code: Vec<Op>,
    sets: Vec<CharSet>,
    values: Vec<Key>,
    vmap: HashMap<Key, u32>,
}

pub fn compile(p: &Tree) -> Result<Program, CompileError> {
    let mut c = Comp {
        code: Vec::new(),
        sets: Vec::new(),
        values: Vec::new(),
        vmap: HashMap::new(),
    };
    c.gen(p, None, false, &CharSet::FULL)?;
    c.emit(Op::End)?;
    Ok(Program {
        code: c.code,
        sets: c.sets,
        values: c.values,
    })
}

/// First set of `p` given the `follow` set (see LPeg's `getfirst`): bit 1 of the flag means
/// "may match the empty string", bit 2 "contains a match-time capture".
pub fn first(p: &Tree, follow: &CharSet, env: Env) -> (CharSet, u8) {
    let Some(_w) = super::tree::Walk::enter() else {
        return (CharSet::FULL, 1);
    };
    match &p.node {
        Node::Char(_) | Node::Set(_) | Node::False => (to_charset(p).unwrap(), 0),
        Node::Any(_) => (CharSet::FULL, 0),
        Node::Utf { lo, hi, .. } => {
            let mut s = CharSet::EMPTY;
            let (_, f) = super::tree::utf_len(*lo);
            let (_, t) = super::tree::utf_len(*hi);
            for c in f..=t {
                s.add(c);
            }
            (s, 0)
        }
        Node::True => (*follow, 1),
        Node::Choice(v) => {
            let mut s = CharSet::EMPTY;
            let mut e = 0;
            for q in v {
                let (s1, e1) = first(q, follow, env);
                s = s.union(&s1);
                e |= e1;
            }
            (s, e)
        }
        Node::Seq(v) => seq_first(v, follow, env),
        Node::Rep(q) | Node::AtMost(q, _) => {
            let (s, _) = first(q, follow, env);
            (s.union(follow), 1)
        }
        Node::Cap(_, _, q) => first(q, follow, env),
        Node::Grammar(g) => first(&g.rules[0], follow, Some(g)),
        Node::RunTime(_, q) => {
            let (s, e) = first(q, &CharSet::FULL, env);
            (s, if e != 0 { 2 } else { 0 })
        }
        Node::Call(k) => match env.and_then(|g| g.rule_of(*k).map(|r| (g, r))) {
            Some((g, r)) => {
                if let Some(v) = super::tree::memo_first(r, g, follow) {
                    return v;
                }
                let v = first(r, follow, env);
                super::tree::memo_first_set(r, g, follow, v);
                v
            }
            None => (CharSet::FULL, 0),
        },
        Node::And(q) => {
            let (s, e) = first(q, follow, env);
            (s.inter(follow), e)
        }
        Node::Not(q) => {
            if let Some(s) = to_charset(q) {
                return (s.complement(), 1);
            }
            let (_, e) = first(q, follow, env);
            (*follow, e | 1)
        }
        Node::Behind(q, _) => {
            let (_, e) = first(q, follow, env);
            (*follow, e | 1)
        }
    }
}

fn seq_first(v: &[Pat2], follow: &CharSet, env: Env) -> (CharSet, u8) {
    // Find the first non-nullable element; the rest contributes nothing.
    let mut k = v.len();
    for (i, q) in v.iter().enumerate() {
        if !nullable(q, env) {
            k = i;
            break;
        }
    }
    let (mut s, mut e) = if k < v.len() {
        first(&v[k], &CharSet::FULL, env)
    } else {
        (*follow, 1)
    };
    for q in v[..k].iter().rev() {
        let e2 = e;
        let (s1, e1) = first(q, &s, env);
        s = s1;
        e = if e1 == 0 {
            0
        } else if (e1 | e2) & 2 != 0 {
            2
        } else {
            e2
        };
    }
    (s, e)
}

type Pat2 = super::tree::Pat;

/// Can `p` fail only depending on the next byte of the subject?
pub fn headfail(p: &Tree, env: Env) -> bool {
    match &p.node {
        Node::Char(_) | Node::Set(_) | Node::False => true,
        Node::Any(n) => *n == 1,
        Node::True
        | Node::Rep(_)
        | Node::AtMost(..)
        | Node::RunTime(..)
        | Node::Not(_)
        | Node::Behind(..)
        | Node::Utf { .. } => false,
        Node::Cap(_, _, q) | Node::And(q) => headfail(q, env),
        Node::Grammar(g) => headfail(&g.rules[0], Some(g)),
        // Conservative for calls (LPeg follows them; "no" only costs a choice point).
        Node::Call(_) => false,
        Node::Seq(v) => v[1..].iter().all(|q| nofail(q, env)) && headfail(&v[0], env),
        Node::Choice(v) => v.iter().all(|q| headfail(q, env)),
    }
}

fn needfollow(p: &Tree) -> bool {
    match &p.node {
        Node::Choice(_) | Node::Rep(_) | Node::AtMost(..) => true,
        Node::Cap(_, _, q) => needfollow(q),
        Node::Seq(v) => needfollow(v.last().unwrap()),
        _ => false,
    }
}

impl Comp {
    fn here(&self) -> usize {
        self.code.len()
    }

    fn emit(&mut self, op: Op) -> Result<usize, CompileError> {
        if self.code.len() >= MAX_CODE {
            return Err(CompileError::TooLarge);
        }
        self.code.push(op);
        Ok(self.code.len() - 1)
    }

    /// Points the label of instruction `i` at `target`.
    fn patch(&mut self, i: Option<usize>, target: usize) {
        let Some(i) = i else { return };
        self.code[i] = match self.code[i] {
            Op::TestAny(_) => Op::TestAny(target),
            Op::TestChar(c, _) => Op::TestChar(c, target),
            Op::TestSet(s, _) => Op::TestSet(s, target),
            Op::Choice(_) => Op::Choice(target),
            Op::Jmp(_) => Op::Jmp(target),
            Op::Call(_) => Op::Call(target),
            Op::Commit(_) => Op::Commit(target),
            Op::PartialCommit(_) => Op::PartialCommit(target),
            Op::BackCommit(_) => Op::BackCommit(target),
            op => op,
        };
    }

    fn patch_here(&mut self, i: Option<usize>) {
        let h = self.here();
        self.patch(i, h);
    }

    fn set(&mut self, s: &CharSet) -> u32 {
        if let Some(i) = self.sets.iter().position(|x| x == s) {
            return i as u32;
        }
        self.sets.push(*s);
        (self.sets.len() - 1) as u32
    }

    fn value(&mut self, k: Key) -> u32 {
        if k == 0 {
            return 0;
        }
        if let Some(&i) = self.vmap.get(&k) {
            return i;
        }
        self.values.push(k);
        let i = self.values.len() as u32;
        self.vmap.insert(k, i);
        i
    }

    /// A test that jumps (label patched later) when the next byte is not in `s`; `None` when
    /// the pattern may match empty (`e != 0`) and no test is possible.
    fn test(&mut self, s: &CharSet, e: u8) -> Result<Option<usize>, CompileError> {
        if e != 0 {
            return Ok(None);
        }
        let op = if *s == CharSet::EMPTY {
            Op::Jmp(0)
        } else if *s == CharSet::FULL {
            Op::TestAny(0)
        } else if let Some(c) = s.single() {
            Op::TestChar(c, 0)
        } else {
            let i = self.set(s);
            Op::TestSet(i, 0)
        };
        Ok(Some(self.emit(op)?))
    }

    fn charset_op(&mut self, s: &CharSet) -> Op {
        if let Some(c) = s.single() {
            Op::Char(c)
        } else if *s == CharSet::FULL {
            Op::Any(1)
        } else if *s == CharSet::EMPTY {
            Op::Fail
        } else {
            Op::Set(self.set(s))
        }
    }

    fn gen(&mut self, p: &Tree, env: Env, opt: bool, fl: &CharSet) -> Result<(), CompileError> {
        match &p.node {
            Node::Char(c) => {
                self.emit(Op::Char(*c))?;
            }
            Node::Any(n) => {
                self.emit(Op::Any(*n))?;
            }
            Node::Set(s) => {
                let op = self.charset_op(s);
                self.emit(op)?;
            }
            Node::True => {}
            Node::False => {
                self.emit(Op::Fail)?;
            }
            Node::Utf { lo, hi, .. } => {
                self.emit(Op::Utf(*lo, *hi))?;
            }
            Node::Choice(v) => self.gen_choice(v, env, opt, fl)?,
            Node::Rep(q) => self.gen_rep(q, env, opt, fl)?,
            Node::AtMost(q, n) => self.gen_atmost(q, *n, env)?,
            Node::Behind(q, n) => {
                if *n > 0 {
                    self.emit(Op::Behind(*n))?;
                }
                self.gen(q, env, false, &CharSet::FULL)?;
            }
            Node::Not(q) => self.gen_not(q, env)?,
            Node::And(q) => self.gen_and(q, env)?,
            Node::Cap(kind, key, q) => {
                let idx = match kind {
                    CapKind::Arg | CapKind::Num => *key as u32,
                    _ => self.value(*key),
                };
                match fixed_len(q, env) {
                    Some(len) if !has_captures(q, env) => {
                        self.gen(q, env, false, fl)?;
                        self.emit(Op::FullCap(*kind, idx, len))?;
                    }
                    _ => {
                        self.emit(Op::OpenCap(*kind, idx))?;
                        self.gen(q, env, false, fl)?;
                        self.emit(Op::CloseCap)?;
                    }
                }
            }
            Node::RunTime(key, q) => {
                let idx = self.value(*key);
                self.emit(Op::OpenCap(CapKind::Group, idx))?;
                self.gen(q, env, false, &CharSet::FULL)?;
                self.emit(Op::CloseRunTime)?;
            }
            Node::Grammar(g) => self.gen_grammar(g)?,
            Node::Call(k) => match env.and_then(|g| g.calls.get(k)) {
                Some(&i) => {
                    self.emit(Op::OpenCall(i))?;
                }
                None => return Err(CompileError::OutsideGrammar(*k)),
            },
            Node::Seq(v) => {
                // Follow set of each element: the first set of what comes after it.
                let n = v.len();
                let mut follows: Vec<Option<CharSet>> = vec![None; n];
                if v.iter().any(|q| needfollow(q)) {
                    let mut f = *fl;
                    for i in (0..n).rev() {
                        follows[i] = Some(f);
                        f = first(&v[i], &f, env).0;
                    }
                }
                for (i, q) in v.iter().enumerate() {
                    let last = i + 1 == n;
                    let f = if needfollow(q) {
                        follows[i].unwrap_or(CharSet::FULL)
                    } else {
                        CharSet::FULL
                    };
                    let f = if last { *fl } else { f };
                    self.gen(q, env, last && opt, &f)?;
                }
            }
        }
        Ok(())
    }

    fn gen_choice(
        &mut self,
        v: &[Pat2],
        env: Env,
        opt: bool,
        fl: &CharSet,
    ) -> Result<(), CompileError> {
        let n = v.len();
        // First set of each suffix v[i..] as a choice (for the disjointness test).
        let mut suffix: Vec<CharSet> = vec![CharSet::EMPTY; n + 1];
        for i in (0..n).rev() {
            suffix[i] = first(&v[i], fl, env).0.union(&suffix[i + 1]);
        }
        let mut to_end: Vec<usize> = Vec::new();
        for i in 0..n {
            let p1 = &v[i];
            if i + 1 == n {
                self.gen(p1, env, opt, fl)?;
                break;
            }
            let emptyp2 = i + 2 == n && matches!(v[i + 1].node, Node::True);
            let (cs1, e1) = first(p1, &CharSet::FULL, env);
            if headfail(p1, env) || (e1 == 0 && cs1.disjoint(&suffix[i + 1])) {
                let test = self.test(&cs1, 0)?;
                self.gen(p1, env, false, fl)?;
                if !emptyp2 {
                    to_end.push(self.emit(Op::Jmp(0))?);
                }
                self.patch_here(test);
            } else if opt && emptyp2 {
                let pc = self.emit(Op::PartialCommit(0))?;
                self.patch_here(Some(pc));
                self.gen(p1, env, true, &CharSet::FULL)?;
                break;
            } else {
                let test = self.test(&cs1, e1)?;
                let ch = self.emit(Op::Choice(0))?;
                self.gen(p1, env, emptyp2, &CharSet::FULL)?;
                to_end.push(self.emit(Op::Commit(0))?);
                self.patch_here(Some(ch));
                self.patch_here(test);
            }
        }
        for j in to_end {
            self.patch_here(Some(j));
        }
        Ok(())
    }

    fn gen_rep(&mut self, q: &Tree, env: Env, opt: bool, fl: &CharSet) -> Result<(), CompileError> {
        // Loops over single-byte patterns.
        match &q.node {
            Node::False => return Ok(()),
            Node::Any(1) => {
                let t = self.emit(Op::TestAny(0))?;
                self.emit(Op::Any(1))?;
                self.close_loop(t)?;
                return Ok(());
            }
            Node::Char(c) => {
                let t = self.emit(Op::TestChar(*c, 0))?;
                self.emit(Op::Any(1))?;
                self.close_loop(t)?;
                return Ok(());
            }
            Node::Set(s) => {
                let i = self.set(s);
                self.emit(Op::Span(i))?;
                return Ok(());
            }
            _ => {}
        }
        let (st, e1) = first(q, &CharSet::FULL, env);
        if headfail(q, env) || (e1 == 0 && st.disjoint(fl)) {
            let t = self.test(&st, 0)?;
            self.gen(q, env, false, &CharSet::FULL)?;
            self.close_loop(t.unwrap())?;
        } else {
            let t = self.test(&st, e1)?;
            let mut ch = None;
            if opt {
                let pc = self.emit(Op::PartialCommit(0))?;
                self.patch_here(Some(pc));
            } else {
                ch = Some(self.emit(Op::Choice(0))?);
            }
            let l2 = self.here();
            self.gen(q, env, false, &CharSet::FULL)?;
            let c = self.emit(Op::PartialCommit(0))?;
            self.patch(Some(c), l2);
            self.patch_here(ch);
            self.patch_here(t);
        }
        Ok(())
    }

    fn close_loop(&mut self, test: usize) -> Result<(), CompileError> {
        let j = self.emit(Op::Jmp(0))?;
        self.patch_here(Some(test));
        self.patch(Some(j), test);
        Ok(())
    }

    /// `p^-n`: one choice point saved after each successful repetition.
    fn gen_atmost(&mut self, q: &Tree, n: u32, env: Env) -> Result<(), CompileError> {
        if n == 0 {
            return Ok(());
        }
        let ch = self.emit(Op::Choice(0))?;
        for i in 0..n {
            self.gen(q, env, false, &CharSet::FULL)?;
            if i + 1 < n {
                let pc = self.emit(Op::PartialCommit(0))?;
                self.patch_here(Some(pc));
            }
        }
        let c = self.emit(Op::Commit(0))?;
        self.patch_here(Some(c));
        self.patch_here(Some(ch));
        Ok(())
    }

    fn gen_not(&mut self, q: &Tree, env: Env) -> Result<(), CompileError> {
        let (st, e) = first(q, &CharSet::FULL, env);
        let t = self.test(&st, e)?;
        if headfail(q, env) {
            self.emit(Op::Fail)?;
        } else {
            let ch = self.emit(Op::Choice(0))?;
            self.gen(q, env, false, &CharSet::FULL)?;
            self.emit(Op::FailTwice)?;
            self.patch_here(Some(ch));
        }
        self.patch_here(t);
        Ok(())
    }

    fn gen_and(&mut self, q: &Tree, env: Env) -> Result<(), CompileError> {
        match fixed_len(q, env) {
            Some(n) if n <= MAX_BEHIND && !has_captures(q, env) => {
                self.gen(q, env, false, &CharSet::FULL)?;
                if n > 0 {
                    self.emit(Op::Behind(n))?;
                }
            }
            _ => {
                let ch = self.emit(Op::Choice(0))?;
                self.gen(q, env, false, &CharSet::FULL)?;
                let bc = self.emit(Op::BackCommit(0))?;
                self.patch_here(Some(ch));
                self.emit(Op::Fail)?;
                self.patch_here(Some(bc));
            }
        }
        Ok(())
    }

    fn gen_grammar(&mut self, g: &Grammar) -> Result<(), CompileError> {
        let call = self.emit(Op::Call(0))?;
        let jmp = self.emit(Op::Jmp(0))?;
        let start = self.here();
        self.patch_here(Some(call));
        let mut positions = Vec::with_capacity(g.rules.len());
        for r in &g.rules {
            positions.push(self.here());
            self.gen(r, Some(g), false, &CharSet::FULL)?;
            self.emit(Op::Ret)?;
        }
        self.patch_here(Some(jmp));
        let end = self.here();
        for i in start..end {
            if let Op::OpenCall(n) = self.code[i] {
                let target = positions[n];
                self.code[i] = if self.final_target(i + 1) == Op::Ret {
                    Op::Jmp(target)
                } else {
                    Op::Call(target)
                };
            }
        }
        Ok(())
    }

    fn final_target(&self, mut i: usize) -> Op {
        let mut steps = 0;
        while let Some(Op::Jmp(t)) = self.code.get(i) {
            i = *t;
            steps += 1;
            if steps > 100 {
                break;
            }
        }
        self.code.get(i).copied().unwrap_or(Op::End)
    }
}

/// One entry of the capture list.
#[derive(Clone, Copy, Debug)]
pub struct Capture {
    /// Subject position (0-based).
    pub index: usize,
    /// Value index, argument / value number, or Lua stack index (runtime values).
    pub idx: u32,
    pub kind: CapKind,
    /// 0 for an open capture, else the length of a full capture plus one.
    pub siz: u32,
}

impl Capture {
    pub fn is_open(&self) -> bool {
        self.siz == 0
    }
    pub fn is_close(&self) -> bool {
        self.kind == CapKind::Close
    }
    /// Is `other` (a later entry) inside this capture?
    pub fn contains(&self, other: &Capture) -> bool {
        if self.is_open() {
            !other.is_close()
        } else {
            other.index < self.index + self.siz as usize - 1
        }
    }
}

/// What the machine needs from its embedder: match-time captures.
pub trait Host {
    type Error;
    /// Runs the match-time capture whose open group is `caps[open]` (its nested captures in
    /// `caps[open + 1..]`, closed by the last entry at `s`). The host drops the dynamic values
    /// of the nested captures and reports the new position (`None`: fail) and the values made.
    fn runtime(
        &mut self,
        caps: &[Capture],
        open: usize,
        s: usize,
    ) -> Result<RuntimeResult, Self::Error>;
    /// Drops the dynamic values referenced from `caps` (on backtracking); returns how many.
    fn drop_dynamic(&mut self, caps: &[Capture]) -> usize;
    /// The backtrack-stack limit was hit.
    fn overflow(&mut self) -> Self::Error;
    /// The capture list or the backtrack stack could not grow.
    fn out_of_memory(&mut self) -> Self::Error;
}

pub struct RuntimeResult {
    pub pos: Option<usize>,
    pub first_value: u32,
    pub nvalues: usize,
    /// Dynamic values the host dropped (those of the nested captures).
    pub removed: usize,
}

#[derive(Clone, Copy)]
pub struct Frame {
    /// Resume address.
    p: usize,
    /// Subject position, or `usize::MAX` for a return address.
    s: usize,
    caplevel: usize,
}

const CALL: usize = usize::MAX;

/// Runs `prog` over `subject` from `init`. Returns the end position of a match, with the
/// capture list in `caps` (terminated by a close entry). The buffers belong to the caller, so
/// that a host error raised as a Lua error leaves nothing to drop in this frame.
pub fn run<H: Host>(
    prog: &Program,
    subject: &[u8],
    init: usize,
    max_stack: usize,
    caps: &mut Vec<Capture>,
    stack: &mut Vec<Frame>,
    host: &mut H,
) -> Result<Option<usize>, H::Error> {
    let code = &prog.code[..];
    let e = subject.len();
    stack.clear();
    // The give-up entry.
    stack.push(Frame {
        p: usize::MAX,
        s: init,
        caplevel: 0,
    });
    caps.clear();
    let mut s = init;
    let mut pc = 0usize;
    let mut ndyn = 0usize;
    macro_rules! push {
        ($f:expr) => {{
            if stack.len() >= max_stack {
                return Err(host.overflow());
            }
            if stack.len() == stack.capacity() && stack.try_reserve(stack.len().max(32)).is_err() {
                return Err(host.out_of_memory());
            }
            stack.push($f);
        }};
    }
    // Capture entries: room for a few more is checked before each instruction that adds any.
    macro_rules! room {
        ($n:expr) => {{
            if caps.capacity() - caps.len() < $n
                && caps.try_reserve(caps.len().max($n).max(64)).is_err()
            {
                return Err(host.out_of_memory());
            }
        }};
    }
    loop {
        let mut fail = false;
        match code[pc] {
            Op::End => {
                room!(1);
                caps.push(Capture {
                    index: usize::MAX,
                    idx: 0,
                    kind: CapKind::Close,
                    siz: 1,
                });
                return Ok(Some(s));
            }
            Op::Ret => {
                let f = stack.pop().expect("ret without call");
                pc = f.p;
            }
            Op::Any(n) => {
                if e - s >= n as usize {
                    s += n as usize;
                    pc += 1;
                } else {
                    fail = true;
                }
            }
            Op::Char(c) => {
                if s < e && subject[s] == c {
                    s += 1;
                    pc += 1;
                } else {
                    fail = true;
                }
            }
            Op::Set(i) => {
                if s < e && prog.sets[i as usize].has(subject[s]) {
                    s += 1;
                    pc += 1;
                } else {
                    fail = true;
                }
            }
            Op::Utf(lo, hi) => match super::tree::utf8_decode(&subject[s..]) {
                Some((cp, len)) if lo <= cp && cp <= hi => {
                    s += len;
                    pc += 1;
                }
                _ => fail = true,
            },
            Op::Span(i) => {
                let set = &prog.sets[i as usize];
                while s < e && set.has(subject[s]) {
                    s += 1;
                }
                pc += 1;
            }
            Op::TestAny(l) => pc = if s < e { pc + 1 } else { l },
            Op::TestChar(c, l) => pc = if s < e && subject[s] == c { pc + 1 } else { l },
            Op::TestSet(i, l) => {
                pc = if s < e && prog.sets[i as usize].has(subject[s]) {
                    pc + 1
                } else {
                    l
                }
            }
            Op::Behind(n) => {
                if (n as usize) > s {
                    fail = true;
                } else {
                    s -= n as usize;
                    pc += 1;
                }
            }
            Op::Jmp(l) => pc = l,
            Op::Choice(l) => {
                push!(Frame {
                    p: l,
                    s,
                    caplevel: caps.len()
                });
                pc += 1;
            }
            Op::Call(l) => {
                push!(Frame {
                    p: pc + 1,
                    s: CALL,
                    caplevel: 0
                });
                pc = l;
            }
            Op::OpenCall(_) => unreachable!("unresolved call"),
            Op::Commit(l) => {
                stack.pop();
                pc = l;
            }
            Op::PartialCommit(l) => {
                let top = stack.last_mut().expect("partial commit");
                top.s = s;
                top.caplevel = caps.len();
                pc = l;
            }
            Op::BackCommit(l) => {
                let f = stack.pop().expect("back commit");
                s = f.s;
                if ndyn > 0 {
                    ndyn -= host.drop_dynamic(&caps[f.caplevel.min(caps.len())..]);
                }
                caps.truncate(f.caplevel);
                pc = l;
            }
            Op::FailTwice => {
                stack.pop();
                fail = true;
            }
            Op::Fail => fail = true,
            Op::OpenCap(kind, idx) => {
                room!(1);
                caps.push(Capture {
                    index: s,
                    idx,
                    kind,
                    siz: 0,
                });
                pc += 1;
            }
            Op::FullCap(kind, idx, len) => {
                room!(1);
                caps.push(Capture {
                    index: s - len as usize,
                    idx,
                    kind,
                    siz: len + 1,
                });
                pc += 1;
            }
            Op::CloseCap => {
                room!(1);
                caps.push(Capture {
                    index: s,
                    idx: 0,
                    kind: CapKind::Close,
                    siz: 1,
                });
                pc += 1;
            }
            Op::CloseRunTime => {
                // Find the open group of this match-time capture.
                let mut depth = 0usize;
                let mut open = caps.len();
                while open > 0 {
                    open -= 1;
                    let c = &caps[open];
                    if c.is_close() {
                        depth += 1;
                    } else if c.is_open() {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                }
                room!(1);
                caps.push(Capture {
                    index: s,
                    idx: 0,
                    kind: CapKind::Close,
                    siz: 1,
                });
                let r = host.runtime(caps, open, s)?;
                ndyn -= r.removed;
                caps.truncate(open + 1);
                match r.pos {
                    None => fail = true,
                    Some(pos) => {
                        s = pos;
                        if r.nvalues == 0 {
                            caps.truncate(open);
                        } else {
                            room!(r.nvalues + 1);
                            caps[open].idx = 0;
                            for k in 0..r.nvalues {
                                caps.push(Capture {
                                    index: s,
                                    idx: r.first_value + k as u32,
                                    kind: CapKind::Runtime,
                                    siz: 1,
                                });
                            }
                            caps.push(Capture {
                                index: s,
                                idx: 0,
                                kind: CapKind::Close,
                                siz: 1,
                            });
                            ndyn += r.nvalues;
                        }
                        pc += 1;
                    }
                }
            }
        }
        if fail {
            let f = loop {
                let f = stack.pop().expect("give-up entry");
                if f.s != CALL {
                    break f;
                }
            };
            if f.p == usize::MAX {
                return Ok(None);
            }
            s = f.s;
            if ndyn > 0 {
                ndyn -= host.drop_dynamic(&caps[f.caplevel.min(caps.len())..]);
            }
            caps.truncate(f.caplevel);
            pc = f.p;
        }
    }
}
