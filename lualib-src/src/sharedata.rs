//! `skynet.sharedata.core`: a Lua table turned into an immutable tree that every service reads
//! in place (lualib's `skynet.sharedata`, `skynet.sharedata.corelib`, service `sharedatad`).
//!
//! Host side (sharedatad): `new(t)` → conf (light userdata of the root), `delete(conf)`,
//! `markdirty`, `getref` / `incref` / `decref`. Reader side: `box(conf)` → a userdata holding a
//! reference, `index`, `nextkey`, `len`, `hashlen`, `isdirty`, `needupdate`, `update`.
//!
//! Ownership: a tree is an `Arc<Table>`. The host's reference lives in a process-wide registry
//! until `delete`; each box holds its own `Arc`. So a tree is freed exactly once, when the last
//! of them lets go, whatever order the services exit in. Host functions and `box` look the conf
//! up in the registry, so a deleted or unknown conf is a Lua error, never a dangling read
//! (upstream's issue #1035 crashed in `box` on a freed tree). The light userdata a reader indexes
//! (the root or a sub-table) stays valid while the box it came through is alive, which
//! corelib.lua guarantees by keeping `__gcobj` next to every `__obj`.
//!
//! Strings are stored as bytes and become Lua strings in the reader's VM on access: nothing of
//! one VM is ever shared with another.
//!
//! Differences from upstream: integer keys are not truncated to 32 bits; a table used as a key
//! is rejected ("Invalid key type table", upstream silently turns it into the key "");
//! `index(conf, nil)` returns nothing (upstream master; v1.8.0 raises); nesting deeper than
//! [`MAX_DEPTH`] (e.g. a cycle) is an error instead of a C stack overflow; `box` accepts only a
//! root made by `new`; `pairs` order is the source table's `next` order (upstream: its own hash
//! layout; neither is specified).

use crate::lua::lua_function;
use crate::lua::{ffi, push_bytes, raise, raise_where, CFunction};
use ffi::lua_State;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

/// Deepest nesting `new` accepts (the C stack limit upstream runs into).
pub const MAX_DEPTH: usize = 200;

/// A key: integer or string bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Int(i64),
    Str(Box<[u8]>),
}

/// A borrowed key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyRef<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Key {
    fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Int(i) => KeyRef::Int(*i),
            Key::Str(s) => KeyRef::Str(s),
        }
    }
}

/// A stored value.
#[derive(Debug)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(Box<[u8]>),
    Table(Box<Table>),
}

/// State shared by every table of one tree: the dirty flag and the reference count the Lua
/// side keeps (boxes and messages in flight; the memory itself is owned by `Arc`s).
#[derive(Debug, Default)]
pub struct Shared {
    dirty: AtomicBool,
    refs: AtomicI64,
}

#[derive(Debug)]
struct Node {
    key: Key,
    value: Value,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// An immutable table: an array part (keys 1..=n) and a chained hash part.
#[derive(Debug)]
pub struct Table {
    shared: Arc<Shared>,
    array: Box<[Value]>,
    nodes: Box<[Node]>,
    heads: Box<[u32]>,
}

fn hash_key(k: KeyRef<'_>) -> u64 {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    match k {
        KeyRef::Int(i) => (i as u64).wrapping_mul(M).rotate_left(29),
        KeyRef::Str(s) => {
            let mut h = (s.len() as u64) ^ 0x5bd1_e995;
            let mut chunks = s.chunks_exact(8);
            for c in &mut chunks {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(M);
            }
            for &b in chunks.remainder() {
                h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(M);
            }
            h ^ (h >> 31)
        }
    }
}

/// Collects the entries of one table before it is frozen.
#[derive(Debug, Default)]
pub struct TableBuilder {
    array: Vec<Value>,
    hash: Vec<(Key, Value)>,
}

impl TableBuilder {
    /// A builder whose array part holds keys `1..=sizearray` (missing ones read as nil).
    pub fn new(sizearray: usize) -> Self {
        let mut array = Vec::new();
        array.resize_with(sizearray, || Value::Nil);
        TableBuilder {
            array,
            hash: Vec::new(),
        }
    }

    /// Sets `key` (a later duplicate of a hash key replaces the earlier value).
    pub fn set(&mut self, key: Key, value: Value) {
        if let Key::Int(i) = key {
            if i >= 1 && (i as u64) <= self.array.len() as u64 {
                self.array[(i - 1) as usize] = value;
                return;
            }
        }
        self.hash.push((key, value));
    }

    /// Freezes the table; every table of one tree gets the same `shared`.
    pub fn finish(self, shared: &Arc<Shared>) -> Table {
        let buckets = self.hash.len().max(1);
        let mut heads = vec![NONE; buckets];
        let mut nodes: Vec<Node> = Vec::with_capacity(self.hash.len());
        for (key, value) in self.hash {
            let b = (hash_key(key.as_ref()) % buckets as u64) as usize;
            let mut at = heads[b];
            let mut found = None;
            while at != NONE {
                if nodes[at as usize].key == key {
                    found = Some(at as usize);
                    break;
                }
                at = nodes[at as usize].next;
            }
            match found {
                Some(i) => nodes[i].value = value,
                None => {
                    nodes.push(Node {
                        key,
                        value,
                        next: heads[b],
                    });
                    heads[b] = (nodes.len() - 1) as u32;
                }
            }
        }
        Table {
            shared: shared.clone(),
            array: self.array.into_boxed_slice(),
            nodes: nodes.into_boxed_slice(),
            heads: heads.into_boxed_slice(),
        }
    }
}

/// What `index` finds.
#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    /// In the array part (possibly a nil hole): one result.
    Array(&'a Value),
    /// In the hash part.
    Hash(&'a Value),
    /// Absent: no result.
    Missing,
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Real(a), Value::Real(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Table(a), Value::Table(b)) => std::ptr::eq(&**a, &**b),
            _ => false,
        }
    }
}

impl Table {
    /// Size of the array part (`len`).
    pub fn len(&self) -> usize {
        self.array.len()
    }

    /// True if the array part is empty.
    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// Number of hash entries (`hashlen`).
    pub fn hashlen(&self) -> usize {
        self.nodes.len()
    }

    fn find(&self, key: KeyRef<'_>) -> Option<usize> {
        if self.nodes.is_empty() {
            return None;
        }
        let b = (hash_key(key) % self.heads.len() as u64) as usize;
        let mut at = self.heads[b];
        while at != NONE {
            let n = &self.nodes[at as usize];
            if n.key.as_ref() == key {
                return Some(at as usize);
            }
            at = n.next;
        }
        None
    }

    /// The value under `key`.
    pub fn get(&self, key: KeyRef<'_>) -> Lookup<'_> {
        if let KeyRef::Int(i) = key {
            if i >= 1 && (i as u64) <= self.array.len() as u64 {
                return Lookup::Array(&self.array[(i - 1) as usize]);
            }
        }
        match self.find(key) {
            Some(i) => Lookup::Hash(&self.nodes[i].value),
            None => Lookup::Missing,
        }
    }

    fn first_hash(&self) -> Option<KeyRef<'_>> {
        self.nodes.first().map(|n| n.key.as_ref())
    }

    /// The key after `key` (`None`: the first): non-nil array slots in order, then the hash
    /// entries. `None` at the end, or when `key` is absent from the hash part.
    pub fn next_key(&self, key: Option<KeyRef<'_>>) -> Option<KeyRef<'_>> {
        let from = match key {
            None => 0,
            Some(KeyRef::Int(i)) if i >= 1 && (i as u64) <= self.array.len() as u64 => i as usize,
            Some(k) => {
                let i = self.find(k)?;
                return self.nodes.get(i + 1).map(|n| n.key.as_ref());
            }
        };
        for (i, v) in self.array.iter().enumerate().skip(from) {
            if !matches!(v, Value::Nil) {
                return Some(KeyRef::Int(i as i64 + 1));
            }
        }
        self.first_hash()
    }

    /// Whether the tree was marked dirty (a newer version is published).
    pub fn is_dirty(&self) -> bool {
        self.shared.dirty.load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion from a Lua table (never raises: errors are returned to the caller, which raises
// after dropping what it built).

enum ConvError {
    Msg(String),
    FloatKey(f64),
}

/// The type name of the value at `idx` (static C string: no allocation, no raise).
///
/// # Safety
/// `l` is valid.
unsafe fn tname(l: *mut lua_State, idx: c_int) -> String {
    // SAFETY: valid state; lua_typename returns a static string.
    unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))) }
        .to_string_lossy()
        .into_owned()
}

/// The string at `idx` (which is a string) as owned bytes.
///
/// # Safety
/// `l` is valid and the value at `idx` is a string (so lua_tolstring converts nothing).
unsafe fn string_bytes(l: *mut lua_State, idx: c_int) -> Box<[u8]> {
    let mut len = 0usize;
    // SAFETY: a string value: no conversion, no allocation; len bytes at p.
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len).into()
    }
}

/// Converts the table at `idx`. Uses only API calls that cannot raise.
///
/// # Safety
/// `l` is valid; the value at `idx` is a table.
unsafe fn convert(
    l: *mut lua_State,
    idx: c_int,
    depth: usize,
    shared: &Arc<Shared>,
) -> Result<Table, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError::Msg(
            "Table nesting too deep (a cycle?)".to_string(),
        ));
    }
    // SAFETY: valid state; idx is a table; lua_next is given keys it produced, the table is not
    // modified during the traversal; lua_checkstack never raises.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            return Err(ConvError::Msg("stack overflow".to_string()));
        }
        let idx = ffi::lua_absindex(l, idx);
        let mut b = TableBuilder::new(ffi::lua_rawlen(l, idx) as usize);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let key = match ffi::lua_type(l, -2) {
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(l, -2) == 0 {
                        return Err(ConvError::FloatKey(ffi::lua_tonumberx(
                            l,
                            -2,
                            std::ptr::null_mut(),
                        )));
                    }
                    Key::Int(ffi::lua_tointegerx(l, -2, std::ptr::null_mut()))
                }
                ffi::LUA_TSTRING => Key::Str(string_bytes(l, -2)),
                _ => return Err(ConvError::Msg(format!("Invalid key type {}", tname(l, -2)))),
            };
            let value = match ffi::lua_type(l, -1) {
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(l, -1) != 0 {
                        Value::Int(ffi::lua_tointegerx(l, -1, std::ptr::null_mut()))
                    } else {
                        Value::Real(ffi::lua_tonumberx(l, -1, std::ptr::null_mut()))
                    }
                }
                ffi::LUA_TSTRING => Value::Str(string_bytes(l, -1)),
                ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, -1) != 0),
                ffi::LUA_TTABLE => Value::Table(Box::new(convert(l, -1, depth + 1, shared)?)),
                _ => {
                    return Err(ConvError::Msg(format!(
                        "Unsupport value type {}",
                        tname(l, -1)
                    )))
                }
            };
            b.set(key, value);
            ffi::lua_pop(l, 1);
        }
        Ok(b.finish(shared))
    }
}

// ---------------------------------------------------------------------------------------------
// Registry of host-owned trees.

fn confs() -> &'static Mutex<HashMap<usize, Arc<Table>>> {
    static CONFS: OnceLock<Mutex<HashMap<usize, Arc<Table>>>> = OnceLock::new();
    CONFS.get_or_init(Default::default)
}

/// Runs `f` on the registered tree whose root is `p`.
fn with_conf<R>(p: usize, f: impl FnOnce(&Arc<Table>) -> R) -> Option<R> {
    confs().lock().get(&p).map(f)
}

const CTRL: &CStr = c"confctrl";

/// Userdata body of a box.
struct Ctrl {
    root: Option<Arc<Table>>,
    /// The newer version announced by `update` (kept alive by the box in uservalue 1).
    update: *const Table,
}

/// The light userdata at 1 (raises "Need a conf object" otherwise).
///
/// # Safety
/// `l` is valid.
unsafe fn conf_ptr(l: *mut lua_State) -> usize {
    // SAFETY: valid state.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TLIGHTUSERDATA {
            raise_where(l, "Need a conf object".to_string())
        }
        ffi::lua_touserdata(l, 1) as usize
    }
}

/// The table a reader indexes (a root or a sub-table handed out by `index`).
///
/// # Safety
/// `l` is valid; the light userdata at 1 came from `new` or `index` and the tree is still
/// referenced (by the host or by a box of this VM), as corelib.lua guarantees.
unsafe fn reader_table<'a>(l: *mut lua_State) -> &'a Table {
    // SAFETY: see the function contract.
    unsafe { &*(conf_ptr(l) as *const Table) }
}

/// Raises the host's error for an unknown conf.
///
/// # Safety
/// As [`raise`].
unsafe fn no_conf(l: *mut lua_State) -> ! {
    // SAFETY: nothing of ours alive.
    unsafe { raise_where(l, "Need a conf object".to_string()) }
}

#[lua_function]
unsafe extern "C-unwind" fn lnew(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the check raises before anything is owned.
    unsafe { ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE) };
    let shared = Arc::new(Shared::default());
    // SAFETY: index 1 is a table.
    let r = unsafe { convert(l, 1, 0, &shared) };
    drop(shared);
    match r {
        Ok(t) => {
            let t = Arc::new(t);
            let p = Arc::as_ptr(&t) as usize;
            confs().lock().insert(p, t);
            // SAFETY: valid state; a light userdata push does not raise.
            unsafe { ffi::lua_pushlightuserdata(l, p as *mut c_void) };
            1
        }
        // SAFETY (both arms): nothing of ours is alive when the error is raised; upstream's
        // messages carry no position (raised inside its private state).
        Err(ConvError::Msg(m)) => unsafe {
            ffi::lua_settop(l, 1);
            raise(l, m)
        },
        // SAFETY: as above: nothing of ours is alive; the pushes and the concat only raise
        // memory errors.
        Err(ConvError::FloatKey(n)) => unsafe {
            ffi::lua_settop(l, 1);
            ffi::lua_pushstring(l, c"Invalid key ".as_ptr());
            ffi::lua_pushnumber(l, n);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        },
    }
}

#[lua_function]
unsafe extern "C-unwind" fn ldelete(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { conf_ptr(l) };
    let t = confs().lock().remove(&p);
    if t.is_none() {
        // SAFETY: nothing alive.
        unsafe { no_conf(l) }
    }
    drop(t);
    0
}

#[lua_function]
unsafe extern "C-unwind" fn lmarkdirty(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { conf_ptr(l) };
    if with_conf(p, |t| t.shared.dirty.store(true, Ordering::Release)).is_none() {
        // SAFETY: nothing alive.
        unsafe { no_conf(l) }
    }
    0
}

/// getref / incref / decref: `delta` applied, the new count pushed.
///
/// # Safety
/// `l` is valid.
unsafe fn refop(l: *mut lua_State, delta: i64) -> c_int {
    // SAFETY: valid state.
    let p = unsafe { conf_ptr(l) };
    match with_conf(p, |t| {
        t.shared.refs.fetch_add(delta, Ordering::AcqRel) + delta
    }) {
        // SAFETY: valid state.
        Some(n) => unsafe { ffi::lua_pushinteger(l, n) },
        // SAFETY: nothing alive.
        None => unsafe { no_conf(l) },
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lgetref(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { refop(l, 0) }
}

#[lua_function]
unsafe extern "C-unwind" fn lincref(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { refop(l, 1) }
}

#[lua_function]
unsafe extern "C-unwind" fn ldecref(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe { refop(l, -1) }
}

#[lua_function]
unsafe extern "C-unwind" fn lbox(l: *mut lua_State) -> c_int {
    // SAFETY: valid state. The userdata (empty) exists before a reference is taken, so a memory
    // error owns nothing.
    unsafe {
        let p = conf_ptr(l);
        let c = ffi::lua_newuserdatauv(l, std::mem::size_of::<Ctrl>(), 1).cast::<Ctrl>();
        c.write(Ctrl {
            root: None,
            update: std::ptr::null(),
        });
        ffi::luaL_setmetatable(l, CTRL.as_ptr());
        let root = with_conf(p, |t| {
            t.shared.refs.fetch_add(1, Ordering::AcqRel);
            t.clone()
        });
        if root.is_none() {
            no_conf(l)
        }
        (*c).root = root;
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lrelease(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of a confctrl userdata.
    let c = unsafe { &mut *ffi::luaL_checkudata(l, 1, CTRL.as_ptr()).cast::<Ctrl>() };
    c.update = std::ptr::null();
    if let Some(t) = c.root.take() {
        t.shared.refs.fetch_sub(1, Ordering::AcqRel);
        drop(t);
    }
    0
}

/// Pushes a stored value (a sub-table as a light userdata).
///
/// # Safety
/// `l` is valid with a free slot.
unsafe fn push_value(l: *mut lua_State, v: &Value) {
    // SAFETY: valid state; push_bytes copies the bytes.
    unsafe {
        match v {
            Value::Nil => ffi::lua_pushnil(l),
            Value::Bool(b) => ffi::lua_pushboolean(l, c_int::from(*b)),
            Value::Int(i) => ffi::lua_pushinteger(l, *i),
            Value::Real(n) => ffi::lua_pushnumber(l, *n),
            Value::Str(s) => push_bytes(l, s),
            Value::Table(t) => ffi::lua_pushlightuserdata(l, &**t as *const Table as *mut c_void),
        }
    }
}

/// Pushes a key.
///
/// # Safety
/// `l` is valid with a free slot.
unsafe fn push_key(l: *mut lua_State, k: KeyRef<'_>) {
    // SAFETY: valid state.
    unsafe {
        match k {
            KeyRef::Int(i) => ffi::lua_pushinteger(l, i),
            KeyRef::Str(s) => push_bytes(l, s),
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lindex(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the table reference has no destructor, the string key stays on the
    // stack while used.
    unsafe {
        let t = reader_table(l);
        let found = match ffi::lua_type(l, 2) {
            ffi::LUA_TNIL => return 0,
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, 2) == 0 {
                    ffi::lua_settop(l, 2);
                    ffi::lua_pushstring(l, c"Invalid key ".as_ptr());
                    ffi::lua_pushvalue(l, 2);
                    ffi::lua_concat(l, 2);
                    ffi::luaL_where(l, 1);
                    ffi::lua_rotate(l, -2, 1);
                    ffi::lua_concat(l, 2);
                    ffi::lua_error(l)
                }
                t.get(KeyRef::Int(ffi::lua_tointegerx(l, 2, std::ptr::null_mut())))
            }
            _ => {
                let mut len = 0;
                let s = ffi::luaL_checklstring(l, 2, &mut len);
                t.get(KeyRef::Str(std::slice::from_raw_parts(s.cast(), len)))
            }
        };
        match found {
            Lookup::Array(v) | Lookup::Hash(v) => {
                push_value(l, v);
                1
            }
            Lookup::Missing => 0,
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lnextkey(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; as lindex.
    unsafe {
        let t = reader_table(l);
        let key = match ffi::lua_type(l, 2) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => None,
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, 2) == 0 {
                    return 0;
                }
                Some(KeyRef::Int(ffi::lua_tointegerx(l, 2, std::ptr::null_mut())))
            }
            _ => {
                let mut len = 0;
                let s = ffi::luaL_checklstring(l, 2, &mut len);
                Some(KeyRef::Str(std::slice::from_raw_parts(s.cast(), len)))
            }
        };
        match t.next_key(key) {
            Some(k) => {
                push_key(l, k);
                1
            }
            None => 0,
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn llen(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let t = reader_table(l);
        ffi::lua_pushinteger(l, t.len() as ffi::lua_Integer);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lhashlen(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let t = reader_table(l);
        ffi::lua_pushinteger(l, t.hashlen() as ffi::lua_Integer);
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lisdirty(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        let t = reader_table(l);
        ffi::lua_pushboolean(l, c_int::from(t.is_dirty()));
    }
    1
}

#[lua_function]
unsafe extern "C-unwind" fn lneedupdate(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; a confctrl userdata.
    unsafe {
        let c = &*ffi::luaL_checkudata(l, 1, CTRL.as_ptr()).cast::<Ctrl>();
        if c.update.is_null() {
            return 0;
        }
        ffi::lua_pushlightuserdata(l, c.update as *mut c_void);
        ffi::lua_getiuservalue(l, 1, 1);
    }
    2
}

#[lua_function]
unsafe extern "C-unwind" fn lupdate(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; checks raise before anything changes.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TUSERDATA);
        ffi::luaL_checktype(l, 2, ffi::LUA_TLIGHTUSERDATA);
        ffi::luaL_checktype(l, 3, ffi::LUA_TTABLE);
        let c = &mut *ffi::luaL_checkudata(l, 1, CTRL.as_ptr()).cast::<Ctrl>();
        let n = ffi::lua_touserdata(l, 2) as *const Table;
        let same = c
            .root
            .as_ref()
            .is_some_and(|r| std::ptr::eq(Arc::as_ptr(r), n));
        if same {
            raise_where(l, "You should update a new object".to_string())
        }
        ffi::lua_settop(l, 3);
        ffi::lua_setiuservalue(l, 1, 1);
        c.update = n;
    }
    0
}

/// Opens `skynet.sharedata.core`.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_sharedata_core(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        if ffi::luaL_newmetatable(l, CTRL.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, lrelease);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_pop(l, 1);
        crate::lua::new_lib(
            l,
            &[
                (c"new", lnew as CFunction),
                (c"delete", ldelete),
                (c"markdirty", lmarkdirty),
                (c"getref", lgetref),
                (c"incref", lincref),
                (c"decref", ldecref),
                (c"box", lbox),
                (c"index", lindex),
                (c"nextkey", lnextkey),
                (c"len", llen),
                (c"hashlen", lhashlen),
                (c"isdirty", lisdirty),
                (c"needupdate", lneedupdate),
                (c"update", lupdate),
            ],
        );
    }
    1
}

/// Input for the fuzz target: decodes bytes into nested builders (bounded depth and size) and
/// checks the invariants of the frozen table.
pub mod fuzzing {
    use super::*;

    struct Reader<'a> {
        data: &'a [u8],
        budget: usize,
    }

    impl Reader<'_> {
        fn byte(&mut self) -> Option<u8> {
            let (&b, rest) = self.data.split_first()?;
            self.data = rest;
            Some(b)
        }
        fn bytes(&mut self, n: usize) -> Option<&[u8]> {
            if self.data.len() < n {
                return None;
            }
            let (a, b) = self.data.split_at(n);
            self.data = b;
            Some(a)
        }
        fn int(&mut self) -> Option<i64> {
            let b = self.bytes(8)?;
            Some(i64::from_le_bytes(b.try_into().ok()?))
        }
    }

    fn key(r: &mut Reader<'_>) -> Option<Key> {
        match r.byte()? % 3 {
            0 => Some(Key::Int(i64::from(r.byte()? % 12) - 2)),
            1 => Some(Key::Int(r.int()?)),
            _ => {
                let n = usize::from(r.byte()? % 16);
                Some(Key::Str(r.bytes(n)?.into()))
            }
        }
    }

    fn table(r: &mut Reader<'_>, depth: usize, shared: &Arc<Shared>) -> Option<Table> {
        let mut b = TableBuilder::new(usize::from(r.byte()? % 8));
        let n = r.byte()? % 32;
        for _ in 0..n {
            if r.budget == 0 {
                break;
            }
            r.budget -= 1;
            let k = key(r)?;
            let v = match r.byte()? % 6 {
                0 => Value::Bool(r.byte()? & 1 == 1),
                1 => Value::Int(r.int()?),
                2 => Value::Real(f64::from_bits(r.int()? as u64)),
                3 => {
                    let n = usize::from(r.byte()? % 16);
                    Value::Str(r.bytes(n)?.into())
                }
                4 if depth < 8 => Value::Table(Box::new(table(r, depth + 1, shared)?)),
                _ => Value::Nil,
            };
            b.set(k, v);
        }
        Some(b.finish(shared))
    }

    /// Builds a tree from `data`; every key `next_key` yields is found again by `get`, each
    /// once, and the walk ends.
    pub fn run(data: &[u8]) {
        let shared = Arc::new(Shared::default());
        let mut r = Reader { data, budget: 512 };
        let Some(t) = table(&mut r, 0, &shared) else {
            return;
        };
        check(&t);
    }

    fn check(t: &Table) {
        let mut seen = 0usize;
        let mut k = t.next_key(None);
        while let Some(key) = k {
            seen += 1;
            assert!(seen <= t.len() + t.hashlen(), "next_key loops");
            match t.get(key) {
                Lookup::Missing => panic!("key {key:?} not found"),
                Lookup::Array(Value::Nil) => panic!("nil array slot yielded"),
                Lookup::Array(v) | Lookup::Hash(v) => {
                    if let Value::Table(sub) = v {
                        check(sub);
                    }
                }
            }
            k = t.next_key(Some(key));
        }
        let non_nil = t.array.iter().filter(|v| !matches!(v, Value::Nil)).count();
        assert_eq!(seen, non_nil + t.hashlen());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlua::check;

    #[test]
    fn builder_lookup_and_iteration() {
        let shared = Arc::new(Shared::default());
        let mut b = TableBuilder::new(3);
        b.set(Key::Int(1), Value::Int(10));
        b.set(Key::Int(3), Value::Int(30));
        b.set(Key::Int(7), Value::Int(70));
        b.set(Key::Str(b"a".as_slice().into()), Value::Bool(true));
        b.set(Key::Str(b"a".as_slice().into()), Value::Bool(false));
        let t = b.finish(&shared);
        assert_eq!(t.len(), 3);
        assert_eq!(t.hashlen(), 2);
        assert_eq!(t.get(KeyRef::Int(2)), Lookup::Array(&Value::Nil));
        assert_eq!(t.get(KeyRef::Int(7)), Lookup::Hash(&Value::Int(70)));
        assert_eq!(t.get(KeyRef::Str(b"a")), Lookup::Hash(&Value::Bool(false)));
        assert_eq!(t.get(KeyRef::Str(b"b")), Lookup::Missing);
        let mut keys = vec![];
        let mut k = t.next_key(None);
        while let Some(x) = k {
            keys.push(format!("{x:?}"));
            k = t.next_key(Some(x));
        }
        assert_eq!(keys, ["Int(1)", "Int(3)", "Int(7)", "Str([97])"]);
        fuzzing::run(&[3, 9, 1, 5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, b'x']);
    }

    const MODS: &[(&CStr, CFunction)] = &[(c"core", luaopen_skynet_sharedata_core)];

    #[test]
    fn host_and_reader_functions() {
        check(
            MODS,
            &[],
            r#"
            local t = { 1, 2, 3, x = "hello", y = { z = 1.5, [10] = false }, [-1] = "neg",
                        s = "a\0b" }
            local conf = core.new(t)
            assert(type(conf) == "userdata")
            assert(core.len(conf) == 3 and core.hashlen(conf) == 4)
            assert(core.index(conf, 1) == 1 and core.index(conf, 3) == 3)
            assert(core.index(conf, "x") == "hello" and core.index(conf, -1) == "neg")
            assert(core.index(conf, "s") == "a\0b")
            assert(select('#', core.index(conf, "nokey")) == 0)
            assert(select('#', core.index(conf, 100)) == 0)
            assert(select('#', core.index(conf, nil)) == 0)
            local y = core.index(conf, "y")
            assert(type(y) == "userdata" and y ~= conf)
            assert(core.index(y, "z") == 1.5 and math.type(core.index(y, "z")) == "float")
            assert(core.index(y, 10) == false)
            assert(core.len(y) == 0 and core.hashlen(y) == 2)
            -- same sub-table pointer each time
            assert(core.index(conf, "y") == y)
            -- nextkey walks array then hash, each key once
            local seen, n = {}, 0
            local k = core.nextkey(conf)
            while k ~= nil do
                assert(not seen[k]); seen[k] = true; n = n + 1
                k = core.nextkey(conf, k)
            end
            assert(n == 7 and seen[1] and seen[2] and seen[3] and seen.x and seen.y and seen[-1])
            assert(core.nextkey(conf, 1) == 2)
            assert(core.nextkey(conf, 1.5) == nil)
            assert(core.nextkey(conf, "missing") == nil)
            assert(select('#', core.nextkey(conf, 1.5)) == 0)
            local ok, err = pcall(core.nextkey, conf, true)
            assert(not ok and err:find("string expected, got boolean", 1, true), err)
            -- errors
            ok, err = pcall(core.index, conf, 1.5)
            assert(not ok and err:find("Invalid key 1.5", 1, true), err)
            ok, err = pcall(core.index, conf, true)
            assert(not ok and err:find("string expected, got boolean", 1, true), err)
            ok, err = pcall(core.len, {})
            assert(not ok and err:find("Need a conf object", 1, true), err)
            -- refs and dirty
            assert(core.getref(conf) == 0)
            assert(core.incref(conf) == 1 and core.incref(conf) == 2)
            assert(core.decref(conf) == 1 and core.getref(conf) == 1)
            assert(core.isdirty(conf) == false and core.isdirty(y) == false)
            local b = core.box(conf)
            assert(core.getref(conf) == 2)
            assert(core.needupdate(b) == nil)
            local conf2 = core.new { x = "new" }
            ok, err = pcall(core.update, b, conf, {})
            assert(not ok and err:find("You should update a new object", 1, true), err)
            local holder = { __gcobj = core.box(conf2) }
            assert(core.getref(conf2) == 1)
            core.update(b, conf2, holder)
            core.markdirty(conf)
            assert(core.isdirty(conf) and core.isdirty(y))
            local nc, nt = core.needupdate(b)
            assert(nc == conf2 and nt == holder)
            b = nil; holder = nil; nt = nil
            collectgarbage(); collectgarbage()
            assert(core.getref(conf) == 1 and core.getref(conf2) == 0)
            -- a reader's box keeps a deleted tree readable
            local b2 = core.box(conf)
            core.decref(conf); core.decref(conf)
            core.delete(conf)
            assert(core.index(y, "z") == 1.5)
            ok, err = pcall(core.box, conf)
            assert(not ok and err:find("Need a conf object", 1, true), err)
            ok, err = pcall(core.getref, conf)
            assert(not ok and err:find("Need a conf object", 1, true), err)
            ok, err = pcall(core.delete, conf)
            assert(not ok and err:find("Need a conf object", 1, true), err)
            b2 = nil
            collectgarbage()
            core.delete(conf2)
            "#,
        );
    }

    #[test]
    fn conversion_errors() {
        check(
            MODS,
            &[],
            r#"
            local function e(t, msg)
                local ok, err = pcall(core.new, t)
                assert(not ok and err == msg, tostring(err))
            end
            e({ f = print }, "Unsupport value type function")
            e({ a = { b = { coroutine.create(print) } } }, "Unsupport value type thread")
            e({ [1.5] = 1 }, "Invalid key 1.5")
            e({ [2^63] = 1 }, "Invalid key " .. tostring(2^63))
            e({ [true] = 1 }, "Invalid key type boolean")
            e({ [{}] = 1 }, "Invalid key type table")
            local c = {}; c.c = c
            local ok, err = pcall(core.new, c)
            assert(not ok and err:find("too deep"), err)
            ok, err = pcall(core.new, 1)
            assert(not ok and err:find("table expected"), err)
            -- metatables are ignored; holes in the array part read as nil
            local t = setmetatable({ 1, nil, 3 }, { __index = function() return 42 end })
            local conf = core.new(t)
            assert(core.len(conf) == rawlen(t) and core.index(conf, 2) == nil)
            if rawlen(t) == 3 then
                assert(select('#', core.index(conf, 2)) == 1)
                assert(core.nextkey(conf, 1) == 3)
            end
            core.delete(conf)
            local big = {}
            for i = 1, 1000 do big["k" .. i] = i; big[i] = -i end
            conf = core.new(big)
            for i = 1, 1000 do
                assert(core.index(conf, "k" .. i) == i and core.index(conf, i) == -i)
            end
            assert(core.len(conf) == 1000 and core.hashlen(conf) == 1000)
            core.delete(conf)
            "#,
        );
    }
}
