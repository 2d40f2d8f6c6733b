//! Pattern trees: what the constructors build and the compiler reads.
//!
//! Trees are immutable and shared (`Rc`), so combining patterns never copies them. Lua values a
//! pattern refers to (constants, functions, rule names) are not stored here: a node holds a key
//! id, unique per constructor call, and each pattern object keeps an id → value table on the Lua
//! side. Sequences and choices are n-ary and flattened, so a long chain built in a loop stays
//! shallow; other nesting is bounded by [`MAX_DEPTH`] at construction, which bounds every
//! recursive walk below.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting a pattern tree may have.
pub const MAX_DEPTH: u32 = 900;
/// Largest pattern tree (as if no subtree were shared): bounds every walk and every flattened
/// list. Programs are bounded further by the compiler.
pub const MAX_SIZE: u32 = 1 << 21;
/// Most rules in one grammar (as upstream).
pub const MAX_RULES: usize = 1000;
/// Longest pattern `B` may look behind.
pub const MAX_BEHIND: u32 = 255;

/// A set of bytes as a bitmap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CharSet(pub [u8; 32]);

impl CharSet {
    pub const EMPTY: CharSet = CharSet([0; 32]);
    pub const FULL: CharSet = CharSet([0xff; 32]);
    pub fn has(&self, c: u8) -> bool {
        self.0[(c >> 3) as usize] & (1 << (c & 7)) != 0
    }
    pub fn add(&mut self, c: u8) {
        self.0[(c >> 3) as usize] |= 1 << (c & 7);
    }
    pub fn union(&self, o: &CharSet) -> CharSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0.iter()) {
            *a |= b;
        }
        r
    }
    pub fn inter(&self, o: &CharSet) -> CharSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0.iter()) {
            *a &= b;
        }
        r
    }
    pub fn minus(&self, o: &CharSet) -> CharSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0.iter()) {
            *a &= !b;
        }
        r
    }
    pub fn complement(&self) -> CharSet {
        let mut r = *self;
        for a in r.0.iter_mut() {
            *a = !*a;
        }
        r
    }
    pub fn disjoint(&self, o: &CharSet) -> bool {
        self.0.iter().zip(o.0.iter()).all(|(a, b)| a & b == 0)
    }
    pub fn count(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }
    /// The only member, if there is exactly one.
    pub fn single(&self) -> Option<u8> {
        if self.count() == 1 {
            (0..=255u8).find(|&c| self.has(c))
        } else {
            None
        }
    }
}

/// Kinds of captures (values stored in the capture list as `u8`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum CapKind {
    Close = 0,
    Position,
    Const,
    Backref,
    Arg,
    Simple,
    Table,
    Function,
    Acc,
    Query,
    String,
    Num,
    Subst,
    Fold,
    Runtime,
    Group,
}

impl CapKind {
    pub fn from_u8(v: u8) -> CapKind {
        use CapKind::*;
        match v {
            1 => Position,
            2 => Const,
            3 => Backref,
            4 => Arg,
            5 => Simple,
            6 => Table,
            7 => Function,
            8 => Acc,
            9 => Query,
            10 => String,
            11 => Num,
            12 => Subst,
            13 => Fold,
            14 => Runtime,
            15 => Group,
            _ => Close,
        }
    }
    pub fn name(self) -> &'static str {
        use CapKind::*;
        match self {
            Close => "close",
            Position => "position",
            Const => "constant",
            Backref => "backref",
            Arg => "argument",
            Simple => "simple",
            Table => "table",
            Function => "function",
            Acc => "accumulator",
            Query => "query",
            String => "string",
            Num => "num",
            Subst => "substitution",
            Fold => "fold",
            Runtime => "runtime",
            Group => "group",
        }
    }
}

/// A shared pattern tree.
pub type Pat = Rc<Tree>;

/// A node with its nesting depth and size (nodes, counting shared subtrees once per use).
pub struct Tree {
    pub node: Node,
    pub depth: u32,
    pub size: u32,
}

/// Key id of a Lua value in a pattern's value table; 0 means nil / none.
pub type Key = u64;

pub enum Node {
    True,
    False,
    Char(u8),
    Set(CharSet),
    /// `n >= 1` arbitrary bytes.
    Any(u32),
    /// One UTF-8 encoded code point in `lo..=hi`; `lolen`/`hilen` are their encoded lengths.
    Utf {
        lo: u32,
        hi: u32,
        lolen: u8,
        hilen: u8,
    },
    Seq(Vec<Pat>),
    Choice(Vec<Pat>),
    /// `p^0`.
    Rep(Pat),
    /// `p^-n`: at most n times.
    AtMost(Pat, u32),
    Not(Pat),
    And(Pat),
    Behind(Pat, u32),
    /// Capture of `kind`; `key` is a value key, or a number for `Arg` / `Num`.
    Cap(CapKind, Key, Pat),
    /// Match-time capture: function key.
    RunTime(Key, Pat),
    /// `V(name)`: key of the rule name.
    Call(Key),
    Grammar(Box<Grammar>),
}

pub struct Grammar {
    pub rules: Vec<Pat>,
    /// Key of each rule's name.
    pub names: Vec<Key>,
    /// `Call` key → rule index, for the calls inside this grammar's rules.
    pub calls: HashMap<Key, usize>,
}

impl Grammar {
    pub fn rule_of(&self, key: Key) -> Option<&Pat> {
        self.calls.get(&key).map(|&i| &self.rules[i])
    }
}

/// Total nesting of the analyses that follow grammar calls (each call can enter a whole rule).
const MAX_WALK: u32 = 3000;

thread_local! {
    static WALK_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One level of a recursive analysis; `None` once [`MAX_WALK`] levels are active, and the
/// analysis then gives its conservative answer.
pub struct Walk(());

impl Walk {
    pub fn enter() -> Option<Walk> {
        WALK_DEPTH.with(|d| {
            let v = d.get();
            if v == 0 {
                // A new top-level analysis: results about rules are only valid within one.
                MEMO.with(|m| m.borrow_mut().clear());
            }
            if v >= MAX_WALK {
                None
            } else {
                d.set(v + 1);
                Some(Walk(()))
            }
        })
    }
}

/// Results of analyses through grammar calls, keyed by (rule, grammar, question), so that
/// grammars whose rules call each other from several places are not walked exponentially
/// often. Cleared at the start of every top-level analysis, while the trees are borrowed.
#[derive(Default)]
pub struct Memo {
    check: HashMap<(usize, usize, bool), bool>,
    first: HashMap<(usize, usize, [u8; 32]), (CharSet, u8)>,
}

impl Memo {
    fn clear(&mut self) {
        // Dropped rather than cleared: clearing costs the capacity, and most analyses never
        // follow a call.
        if !self.check.is_empty() || !self.first.is_empty() {
            *self = Memo::default();
        }
    }
}

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
}

/// The remembered first set of `rule` in `g` for `follow`, if any.
pub fn memo_first(rule: &Tree, g: &Grammar, follow: &CharSet) -> Option<(CharSet, u8)> {
    let key = (
        rule as *const Tree as usize,
        g as *const Grammar as usize,
        follow.0,
    );
    MEMO.with(|m| m.borrow().first.get(&key).copied())
}

pub fn memo_first_set(rule: &Tree, g: &Grammar, follow: &CharSet, v: (CharSet, u8)) {
    let key = (
        rule as *const Tree as usize,
        g as *const Grammar as usize,
        follow.0,
    );
    MEMO.with(|m| m.borrow_mut().first.insert(key, v));
}

impl Drop for Walk {
    fn drop(&mut self) {
        WALK_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// A construction error (the message LPeg gives).
#[derive(Debug, Clone, PartialEq)]
pub enum TreeError {
    TooDeep,
    TooBig,
    Msg(String),
}

pub fn mk(node: Node) -> Result<Pat, TreeError> {
    let kids: &[Pat] = match &node {
        Node::Seq(v) | Node::Choice(v) => v,
        Node::Rep(p)
        | Node::AtMost(p, _)
        | Node::Not(p)
        | Node::And(p)
        | Node::Behind(p, _)
        | Node::Cap(_, _, p)
        | Node::RunTime(_, p) => std::slice::from_ref(p),
        Node::Grammar(g) => &g.rules,
        _ => &[],
    };
    let d = kids.iter().map(|p| p.depth).max().unwrap_or(0) + 1;
    let size = kids.iter().fold(1u64, |acc, p| acc + u64::from(p.size));
    if d > MAX_DEPTH {
        return Err(TreeError::TooDeep);
    }
    if size > u64::from(MAX_SIZE) {
        return Err(TreeError::TooBig);
    }
    Ok(Rc::new(Tree {
        node,
        depth: d,
        size: size as u32,
    }))
}

/// Fails with `TooBig` unless a node over parts of total size `total` fits.
fn fits(total: u64) -> Result<(), TreeError> {
    if total + 1 > u64::from(MAX_SIZE) {
        Err(TreeError::TooBig)
    } else {
        Ok(())
    }
}

pub fn leaf(node: Node) -> Pat {
    Rc::new(Tree {
        node,
        depth: 1,
        size: 1,
    })
}

/// The bytes a single-byte pattern accepts.
pub fn to_charset(p: &Tree) -> Option<CharSet> {
    match &p.node {
        Node::Char(c) => {
            let mut s = CharSet::EMPTY;
            s.add(*c);
            Some(s)
        }
        Node::Set(s) => Some(*s),
        Node::Any(1) => Some(CharSet::FULL),
        Node::False => Some(CharSet::EMPTY),
        _ => None,
    }
}

/// A set as the smallest node: a single byte becomes `Char`, all bytes `Any(1)`.
pub fn set_node(s: CharSet) -> Pat {
    if let Some(c) = s.single() {
        leaf(Node::Char(c))
    } else if s == CharSet::FULL {
        leaf(Node::Any(1))
    } else {
        leaf(Node::Set(s))
    }
}

/// `p1 * p2`, with LPeg's simplifications.
pub fn seq(a: &Pat, b: &Pat) -> Result<Pat, TreeError> {
    if matches!(a.node, Node::False) || matches!(b.node, Node::True) {
        return Ok(a.clone());
    }
    if matches!(a.node, Node::True) {
        return Ok(b.clone());
    }
    fits(u64::from(a.size) + u64::from(b.size))?;
    let mut v = Vec::new();
    push_flat(&mut v, a, true);
    push_flat(&mut v, b, true);
    mk(Node::Seq(v))
}

fn push_flat(v: &mut Vec<Pat>, p: &Pat, is_seq: bool) {
    match (&p.node, is_seq) {
        (Node::Seq(items), true) | (Node::Choice(items), false) => v.extend(items.iter().cloned()),
        _ => v.push(p.clone()),
    }
}

/// `p1 + p2`, with LPeg's simplifications.
pub fn choice(a: &Pat, b: &Pat) -> Result<Pat, TreeError> {
    if let (Some(s1), Some(s2)) = (to_charset(a), to_charset(b)) {
        return Ok(set_node(s1.union(&s2)));
    }
    if nofail(a, None) || matches!(b.node, Node::False) {
        return Ok(a.clone());
    }
    if matches!(a.node, Node::False) {
        return Ok(b.clone());
    }
    fits(u64::from(a.size) + u64::from(b.size))?;
    let mut v = Vec::new();
    push_flat(&mut v, a, false);
    push_flat(&mut v, b, false);
    mk(Node::Choice(v))
}

/// `p1 - p2`.
pub fn sub(a: &Pat, b: &Pat) -> Result<Pat, TreeError> {
    if let (Some(s1), Some(s2)) = (to_charset(a), to_charset(b)) {
        return Ok(set_node(s1.minus(&s2)));
    }
    fits(u64::from(a.size) + u64::from(b.size) + 1)?;
    let n = mk(Node::Not(b.clone()))?;
    let mut v = vec![n];
    push_flat(&mut v, a, true);
    mk(Node::Seq(v))
}

/// `p^n`.
pub fn rep(p: &Pat, n: i64) -> Result<Pat, TreeError> {
    if n >= 0 {
        if nullable(p, None) {
            return Err(TreeError::Msg("loop body may accept empty string".into()));
        }
        let r = mk(Node::Rep(p.clone()))?;
        if n == 0 {
            return Ok(r);
        }
        fits(
            (n as u64)
                .saturating_add(1)
                .saturating_mul(u64::from(p.size)),
        )?;
        let mut v = Vec::with_capacity(n as usize + 1);
        for _ in 0..n {
            push_flat(&mut v, p, true);
        }
        v.push(r);
        mk(Node::Seq(v))
    } else {
        let n = n.unsigned_abs().min(u32::MAX as u64) as u32;
        mk(Node::AtMost(p.clone(), n))
    }
}

/// Resolution scope for `Call` nodes: the innermost grammar, if any.
pub type Env<'a> = Option<&'a Grammar>;

/// Can the pattern succeed without consuming input? (`Call`s outside a grammar: no.)
pub fn nullable(p: &Tree, env: Env) -> bool {
    check(p, env, false, &mut Vec::new())
}

/// Can the pattern never fail?
pub fn nofail(p: &Tree, env: Env) -> bool {
    check(p, env, true, &mut Vec::new())
}

/// `nullable` (nofail = false) or `nofail` (nofail = true); `visiting` guards recursive rules.
fn check(p: &Tree, env: Env, nf: bool, visiting: &mut Vec<*const Tree>) -> bool {
    let Some(_w) = Walk::enter() else {
        return false;
    };
    match &p.node {
        Node::Char(_) | Node::Set(_) | Node::Any(_) | Node::Utf { .. } | Node::False => false,
        Node::Rep(_) | Node::AtMost(..) | Node::True => true,
        Node::Not(_) | Node::Behind(..) => !nf,
        Node::And(q) => !nf || check(q, env, nf, visiting),
        Node::RunTime(_, q) => !nf && check(q, env, nf, visiting),
        Node::Seq(v) => v.iter().all(|q| check(q, env, nf, visiting)),
        Node::Choice(v) => v.iter().any(|q| check(q, env, nf, visiting)),
        Node::Cap(_, _, q) => check(q, env, nf, visiting),
        Node::Grammar(g) => check(&g.rules[0], Some(g), nf, visiting),
        Node::Call(k) => match env.and_then(|g| g.rule_of(*k).map(|r| (g, r))) {
            Some((g, r)) => {
                let ptr = Rc::as_ptr(r);
                let key = (ptr as usize, g as *const Grammar as usize, nf);
                if let Some(v) = MEMO.with(|m| m.borrow().check.get(&key).copied()) {
                    return v;
                }
                if visiting.contains(&ptr) {
                    // A rule reached again without consuming (left recursion): the grammar's
                    // verification rejects it before this matters.
                    return false;
                }
                visiting.push(ptr);
                let res = check(r, env, nf, visiting);
                visiting.pop();
                MEMO.with(|m| m.borrow_mut().check.insert(key, res));
                res
            }
            None => false,
        },
    }
}

/// Fixed length of the pattern's matches, if any.
pub fn fixed_len(p: &Tree, env: Env) -> Option<u32> {
    fixed_aux(p, env, &mut Vec::new())
}

fn fixed_aux(p: &Tree, env: Env, visiting: &mut Vec<*const Tree>) -> Option<u32> {
    let _w = Walk::enter()?;
    match &p.node {
        Node::Char(_) | Node::Set(_) => Some(1),
        Node::Any(n) => Some(*n),
        Node::Utf { lolen, hilen, .. } => (lolen == hilen).then_some(*lolen as u32),
        Node::False | Node::True | Node::Not(_) | Node::And(_) | Node::Behind(..) => Some(0),
        Node::Rep(_) | Node::AtMost(..) | Node::RunTime(..) => None,
        Node::Cap(_, _, q) => fixed_aux(q, env, visiting),
        Node::Grammar(g) => fixed_aux(&g.rules[0], Some(g), visiting),
        Node::Call(k) => {
            let r = env.and_then(|g| g.rule_of(*k))?;
            let ptr = Rc::as_ptr(r);
            if visiting.contains(&ptr) {
                return None;
            }
            visiting.push(ptr);
            let res = fixed_aux(r, env, visiting);
            visiting.pop();
            res
        }
        Node::Seq(v) => {
            let mut total: u32 = 0;
            for q in v {
                total = total.checked_add(fixed_aux(q, env, visiting)?)?;
            }
            Some(total)
        }
        Node::Choice(v) => {
            let first = fixed_aux(&v[0], env, visiting)?;
            for q in &v[1..] {
                if fixed_aux(q, env, visiting)? != first {
                    return None;
                }
            }
            Some(first)
        }
    }
}

/// Does the pattern produce captures?
pub fn has_captures(p: &Tree, env: Env) -> bool {
    caps_aux(p, env, &mut Vec::new())
}

fn caps_aux(p: &Tree, env: Env, visiting: &mut Vec<*const Tree>) -> bool {
    let Some(_w) = Walk::enter() else {
        return true;
    };
    match &p.node {
        Node::Cap(..) | Node::RunTime(..) => true,
        Node::Rep(q) | Node::AtMost(q, _) | Node::Not(q) | Node::And(q) | Node::Behind(q, _) => {
            caps_aux(q, env, visiting)
        }
        Node::Seq(v) | Node::Choice(v) => v.iter().any(|q| caps_aux(q, env, visiting)),
        Node::Grammar(g) => g.rules.iter().any(|r| caps_aux(r, Some(g), visiting)),
        Node::Call(k) => match env.and_then(|g| g.rule_of(*k)) {
            Some(r) => {
                let ptr = Rc::as_ptr(r);
                if visiting.contains(&ptr) {
                    return false;
                }
                visiting.push(ptr);
                let res = caps_aux(r, env, visiting);
                visiting.pop();
                res
            }
            None => false,
        },
        _ => false,
    }
}

/// Calls `f` with every `Call` key in `p` not inside a nested grammar. Holds nothing with a
/// destructor, so `f` may raise a Lua error.
pub fn open_calls_each(p: &Tree, f: &mut dyn FnMut(Key)) {
    match &p.node {
        Node::Call(k) => f(*k),
        Node::Rep(q)
        | Node::AtMost(q, _)
        | Node::Not(q)
        | Node::And(q)
        | Node::Behind(q, _)
        | Node::Cap(_, _, q)
        | Node::RunTime(_, q) => open_calls_each(q, f),
        Node::Seq(v) | Node::Choice(v) => {
            for q in v {
                open_calls_each(q, f)
            }
        }
        _ => {}
    }
}

/// Does `p` contain a loop whose body may match the empty string?
pub fn has_empty_loop(p: &Tree, env: Env) -> bool {
    match &p.node {
        Node::Rep(q) | Node::AtMost(q, _) => {
            (matches!(p.node, Node::Rep(_)) && nullable(q, env)) || has_empty_loop(q, env)
        }
        Node::Not(q)
        | Node::And(q)
        | Node::Behind(q, _)
        | Node::Cap(_, _, q)
        | Node::RunTime(_, q) => has_empty_loop(q, env),
        Node::Seq(v) | Node::Choice(v) => v.iter().any(|q| has_empty_loop(q, env)),
        _ => false,
    }
}

/// Left-recursion check of one rule (as LPeg's verification): walks every path through which a
/// rule can be re-entered without consuming input. `Err(Some(rule))` names the left-recursive
/// rule; `Err(None)` means too many nested left calls. Returns whether `p` is nullable, or `nb`.
/// `done` remembers rules verified without error (per `nb`): any left recursion through such a
/// rule was already found from the rule itself, so they need not be walked again.
pub fn verify_rule(
    g: &Grammar,
    p: &Tree,
    passed: &mut Vec<usize>,
    nb: bool,
    done: &mut HashMap<(usize, bool), bool>,
) -> Result<bool, Option<usize>> {
    let Some(_w) = Walk::enter() else {
        return Err(None);
    };
    match &p.node {
        Node::Char(_) | Node::Set(_) | Node::Any(_) | Node::False | Node::Utf { .. } => Ok(nb),
        Node::True | Node::Behind(..) => Ok(true),
        Node::Not(q) | Node::And(q) | Node::Rep(q) | Node::AtMost(q, _) => {
            verify_rule(g, q, passed, true, done)
        }
        Node::Cap(_, _, q) | Node::RunTime(_, q) => verify_rule(g, q, passed, nb, done),
        Node::Seq(v) => {
            for q in v {
                if !verify_rule(g, q, passed, false, done)? {
                    return Ok(nb);
                }
            }
            Ok(true)
        }
        Node::Choice(v) => {
            let mut r = nb;
            for q in v {
                r = verify_rule(g, q, passed, r, done)?;
            }
            Ok(r)
        }
        Node::Call(k) => {
            let Some(&i) = g.calls.get(k) else {
                return Ok(nb);
            };
            if let Some(j) = passed.iter().position(|&r| r == i) {
                // LPeg walks the cycle until its path holds MAX_RULES rules and names the last
                // one: the same rule, found without walking.
                let period = passed.len() - j;
                return Err(Some(passed[j + (MAX_RULES - 1 - j) % period]));
            }
            if passed.len() >= MAX_RULES {
                return Err(None);
            }
            if let Some(&r) = done.get(&(i, nb)) {
                return Ok(r);
            }
            passed.push(i);
            let r = verify_rule(g, &g.rules[i], passed, nb, done);
            passed.pop();
            if let Ok(v) = r {
                done.insert((i, nb), v);
            }
            r
        }
        Node::Grammar(inner) => Ok(nullable(&inner.rules[0], Some(inner))),
    }
}

/// Is `p` a valid `B` argument? Returns the length, or LPeg's message.
pub fn behind_len(p: &Tree) -> Result<u32, &'static str> {
    let n = fixed_len(p, None).ok_or("pattern may not have fixed length")?;
    if has_captures(p, None) {
        return Err("pattern have captures");
    }
    if n > MAX_BEHIND {
        return Err("pattern too long to look behind");
    }
    Ok(n)
}

/// Encoded UTF-8 length and first byte of a code point.
pub fn utf_len(cp: u32) -> (u8, u8) {
    if cp <= 0x7f {
        (1, cp as u8)
    } else if cp <= 0x7ff {
        (2, (0xC0 | (cp >> 6)) as u8)
    } else if cp <= 0xffff {
        (3, (0xE0 | (cp >> 12)) as u8)
    } else {
        (4, (0xF0 | (cp >> 18)) as u8)
    }
}

/// Decodes one UTF-8 sequence at the start of `s` as LPeg does (no overlongs, at most
/// U+10FFFF); returns the code point and its length.
pub fn utf8_decode(s: &[u8]) -> Option<(u32, usize)> {
    const LIMITS: [u32; 4] = [0xFF, 0x7F, 0x7FF, 0xFFFF];
    let mut c = *s.first()? as u32;
    if c < 0x80 {
        return Some((c, 1));
    }
    let mut res: u32 = 0;
    let mut count = 0usize;
    while c & 0x40 != 0 {
        count += 1;
        if count > 3 {
            return None;
        }
        let cc = *s.get(count)? as u32;
        if cc & 0xC0 != 0x80 {
            return None;
        }
        res = (res << 6) | (cc & 0x3F);
        c <<= 1;
    }
    res |= (c & 0x7F) << (count * 5);
    if count > 3 || res > 0x10FFFF || res <= LIMITS[count] {
        return None;
    }
    Some((res, count + 1))
}
