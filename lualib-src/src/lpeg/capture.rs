//! Running a match and turning its capture list into Lua values.
//!
//! [`run_match`] (called by `lpeg.match`) owns every buffer in a [`Ctx`] and calls [`inner`]
//! through `lua_pcall`. `inner` runs the machine and evaluates the captures; its frames hold only
//! references into the context, so a Lua error raised by user code (a match-time capture, a
//! function or fold capture, a table's `__index`) can unwind over them. LPeg's own match-time
//! errors are written into the context and raised by `run_match` once `inner` has returned.
//!
//! Inside `inner` the Lua stack is: 1 the context (light userdata), 2 the subject, 3 the
//! pattern's value array, 4.. the extra arguments of `match`; values of match-time captures sit
//! above them while the match runs.

use super::code::{self, Capture, Frame, Host, Program, RuntimeResult};
use super::tree::CapKind;
use crate::lua::{self, ffi, lua_function};
use ffi::lua_State;
use std::ffi::c_int;
use std::rc::Rc;

const SUBJ: c_int = 2;
const VTAB: c_int = 3;
const FIXED: c_int = 3;
/// Deepest nesting of captures evaluated (as LPeg's MAXRECLEVEL).
const MAX_REC: u32 = 200;
/// How far back a capture enclosing a group is searched (LPeg's MAXLOP).
const MAXLOP: usize = 20;

/// Everything a match owns; lives in [`run_match`]'s frame.
pub struct Ctx<'a> {
    prog: Rc<Program>,
    subject: &'a [u8],
    init: usize,
    /// The limit set by `setmaxstack`.
    limit: i64,
    /// Set when `inner` starts (it runs once per context).
    entered: bool,
    caps: Vec<Capture>,
    stack: Vec<Frame>,
    bufs: Vec<Vec<u8>>,
    err: Option<String>,
}

/// Error marker: the message is in `Ctx::err`.
#[derive(Clone, Copy, Debug)]
pub struct Fail;

type R<T> = Result<T, Fail>;

/// Runs a match: `l`'s stack is `match`'s arguments (pattern, subject, init, extra...).
/// Returns the number of results pushed.
///
/// # Safety
/// `l` is valid, called from `lpeg.match`; `subject` stays alive (it is the string argument);
/// nothing with a destructor is alive in the caller. The program is shared for the match.
pub unsafe fn run_match(
    l: *mut lua_State,
    prog: &Rc<Program>,
    subject: &[u8],
    init: usize,
    limit: i64,
) -> c_int {
    // SAFETY: valid state; nothing of ours is alive yet.
    let top = unsafe {
        let top = ffi::lua_gettop(l);
        ffi::luaL_checkstack(l, top + 8, c"too many arguments".as_ptr());
        top
    };
    let mut ctx = Ctx {
        prog: prog.clone(),
        subject,
        init,
        limit,
        entered: false,
        caps: Vec::new(),
        stack: Vec::new(),
        bufs: Vec::new(),
        err: None,
    };
    let ctx_ptr: *mut Ctx = &mut ctx;
    let outer = CURRENT.with(|c| c.replace(ctx_ptr.cast()));
    // SAFETY: valid state with room on the stack (none of these pushes raises); the inner
    // function gets a pointer to ctx, alive across the call.
    let (st, nres) = unsafe {
        ffi::lua_pushcfunction(l, inner);
        ffi::lua_pushlightuserdata(l, ctx_ptr.cast());
        ffi::lua_pushvalue(l, 2);
        ffi::lua_getiuservalue(l, 1, 2);
        for i in (FIXED + 1)..=top {
            ffi::lua_pushvalue(l, i);
        }
        let nargs = 3 + (top - FIXED).max(0);
        let st = ffi::lua_pcall(l, nargs, ffi::LUA_MULTRET, 0);
        (st, ffi::lua_gettop(l) - top)
    };
    CURRENT.with(|c| c.set(outer));
    let err = ctx.err.take();
    drop(ctx);
    if st != ffi::LUA_OK {
        // SAFETY: the error value is on the top; nothing of ours is alive.
        unsafe { ffi::lua_error(l) }
    }
    if let Some(msg) = err {
        // SAFETY: nothing else alive.
        unsafe { lua::raise_where(l, msg) }
    }
    nres
}

thread_local! {
    /// The context of the innermost match running on this thread: `inner` only accepts it
    /// (the debug library can reach `inner` and call it with anything).
    static CURRENT: std::cell::Cell<*mut ()> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

#[lua_function]
unsafe extern "C-unwind" fn inner(l: *mut lua_State) -> c_int {
    // SAFETY: called by run_match through lua_pcall with the context pointer at 1; anything
    // else is refused before the pointer is used.
    unsafe {
        let p = ffi::lua_touserdata(l, 1);
        let ok = !p.is_null()
            && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
            && CURRENT.with(|c| c.get()) == p.cast()
            && !(*p.cast::<Ctx>()).entered;
        if !ok {
            lua::raise_where(l, "lpeg: invalid call of an internal function".to_string());
        }
        let ctx = &mut *p.cast::<Ctx>();
        ctx.entered = true;
        let ptop = ffi::lua_gettop(l);
        // On Err the message is in the context; no results.
        do_match(l, ctx, ptop).unwrap_or_default()
    }
}

/// The machine's host: match-time captures over the Lua stack.
struct LuaHost<'a> {
    l: *mut lua_State,
    subject: &'a [u8],
    ptop: c_int,
    bufs: &'a mut Vec<Vec<u8>>,
    err: &'a mut Option<String>,
    limit: i64,
}

impl Host for LuaHost<'_> {
    type Error = Fail;

    fn runtime(&mut self, caps: &[Capture], open: usize, s: usize) -> R<RuntimeResult> {
        let l = self.l;
        // SAFETY: inside `inner`; only references are alive in these frames.
        unsafe {
            let otop = ffi::lua_gettop(l);
            let id = first_dyn(&caps[open..]);
            ffi::luaL_checkstack(l, 4, c"too many runtime captures".as_ptr());
            let mut cs = CapState {
                l,
                caps,
                cur: open,
                s: self.subject,
                ptop: self.ptop,
                firstcap: 0,
                floor: 0,
                reclevel: 0,
                bufs: self.bufs,
                nbuf: 0,
                err: self.err,
            };
            cs.push_value(caps[open].idx);
            ffi::lua_pushvalue(l, SUBJ);
            ffi::lua_pushinteger(l, s as ffi::lua_Integer + 1);
            let n = cs.push_nested(false)?;
            ffi::lua_call(l, n + 2, ffi::LUA_MULTRET);
            let mut rem = 0;
            if id > 0 {
                for _ in id..=otop {
                    ffi::lua_remove(l, id);
                }
                rem = (otop - id + 1) as usize;
            }
            let fr = otop + 1 - rem as c_int;
            let pos = if ffi::lua_toboolean(l, fr) == 0 {
                ffi::lua_settop(l, fr - 1);
                return Ok(RuntimeResult {
                    pos: None,
                    first_value: 0,
                    nvalues: 0,
                    removed: rem,
                });
            } else if ffi::lua_isboolean(l, fr) != 0 {
                s
            } else {
                let res = ffi::lua_tointegerx(l, fr, std::ptr::null_mut()) - 1;
                if res < s as i64 || res > self.subject.len() as i64 {
                    *self.err = Some("invalid position returned by match-time capture".to_string());
                    return Err(Fail);
                }
                res as usize
            };
            ffi::lua_remove(l, fr);
            let n = ffi::lua_gettop(l) - fr + 1;
            if fr + n >= i16::MAX as c_int {
                *self.err = Some("too many results in match-time capture".to_string());
                return Err(Fail);
            }
            Ok(RuntimeResult {
                pos: Some(pos),
                first_value: fr as u32,
                nvalues: n as usize,
                removed: rem,
            })
        }
    }

    fn drop_dynamic(&mut self, caps: &[Capture]) -> usize {
        let id = first_dyn(caps);
        if id == 0 {
            return 0;
        }
        // SAFETY: inside `inner`; the values are ours, above the fixed arguments.
        unsafe {
            let top = ffi::lua_gettop(self.l);
            if id > top {
                return 0;
            }
            ffi::lua_settop(self.l, id - 1);
            (top - id + 1) as usize
        }
    }

    fn out_of_memory(&mut self) -> Fail {
        *self.err = Some("not enough memory".to_string());
        Fail
    }

    fn overflow(&mut self) -> Fail {
        *self.err = Some(format!(
            "backtrack stack overflow (current limit is {})",
            self.limit
        ));
        Fail
    }
}

/// Stack index of the first match-time value referenced in `caps`, or 0.
fn first_dyn(caps: &[Capture]) -> c_int {
    caps.iter()
        .find(|c| c.kind == CapKind::Runtime)
        .map_or(0, |c| c.idx as c_int)
}

/// # Safety
/// Inside `inner` (see the module doc).
unsafe fn do_match(l: *mut lua_State, ctx: &mut Ctx, ptop: c_int) -> R<c_int> {
    let Ctx {
        prog,
        subject,
        init,
        limit,
        caps,
        stack,
        bufs,
        err,
        ..
    } = ctx;
    let mut host = LuaHost {
        l,
        subject,
        ptop,
        bufs,
        err,
        limit: *limit,
    };
    let max_stack = (*limit).max(super::MAXBACK) as usize;
    let r = code::run(prog, subject, *init, max_stack, caps, stack, &mut host)?;
    let Some(end) = r else {
        // SAFETY: inside `inner`.
        unsafe {
            ffi::lua_settop(l, ptop);
            ffi::lua_pushnil(l);
        }
        return Ok(1);
    };
    // SAFETY: inside `inner`.
    unsafe {
        let mut n = 0;
        let firstcap = ffi::lua_gettop(l) + 1;
        if !caps[0].is_close() {
            let mut cs = CapState {
                l,
                caps: &caps[..],
                cur: 0,
                s: subject,
                ptop,
                firstcap,
                floor: firstcap,
                reclevel: 0,
                bufs: host.bufs,
                nbuf: 0,
                err: host.err,
            };
            while !cs.caps[cs.cur].is_close() {
                n += cs.push_capture()?;
            }
        }
        if n == 0 {
            ffi::lua_pushinteger(l, end as ffi::lua_Integer + 1);
            n = 1;
        }
        Ok(n)
    }
}

/// A cursor over the capture list (LPeg's CapState).
struct CapState<'a, 'b> {
    l: *mut lua_State,
    caps: &'a [Capture],
    cur: usize,
    s: &'a [u8],
    ptop: c_int,
    firstcap: c_int,
    /// Lowest stack slot an accumulator capture may replace: values below belong to an
    /// enclosing capture (a table being filled, the arguments of a pending call).
    floor: c_int,
    reclevel: u32,
    bufs: &'b mut Vec<Vec<u8>>,
    nbuf: usize,
    err: &'b mut Option<String>,
}

impl CapState<'_, '_> {
    fn fail<T>(&mut self, msg: String) -> R<T> {
        *self.err = Some(msg);
        Err(Fail)
    }

    /// Pushes value `idx` of the pattern's value array (0 is nil).
    unsafe fn push_value(&self, idx: u32) {
        // SAFETY: inside `inner`, VTAB holds the value array.
        unsafe {
            if idx == 0 {
                ffi::lua_pushnil(self.l);
            } else {
                ffi::lua_rawgeti(self.l, VTAB, idx as ffi::lua_Integer);
            }
        }
    }

    fn close_size(&self, head: usize) -> usize {
        let h = &self.caps[head];
        if h.is_open() {
            self.caps[self.cur].index - h.index
        } else {
            h.siz as usize - 1
        }
    }

    fn cap_size(&self, cap: usize, close: usize) -> usize {
        let c = &self.caps[cap];
        if c.is_open() {
            self.caps[close].index - c.index
        } else {
            c.siz as usize - 1
        }
    }

    fn inside(&self, head: usize, other: usize) -> bool {
        self.caps[head].contains(&self.caps[other])
    }

    fn skip_close(&mut self, head: usize) {
        if self.caps[head].is_open() {
            self.cur += 1;
        }
    }

    /// Moves past the current capture and everything nested in it.
    fn next_cap(&mut self) {
        let head = self.cur;
        if self.caps[head].is_open() {
            let mut n = 0;
            let mut i = head;
            loop {
                i += 1;
                let c = &self.caps[i];
                if c.is_open() {
                    n += 1;
                } else if c.is_close() {
                    if n == 0 {
                        break;
                    }
                    n -= 1;
                }
            }
            self.cur = i + 1;
        } else {
            let mut i = head + 1;
            while self.inside(head, i) {
                i += 1;
            }
            self.cur = i;
        }
    }

    unsafe fn sub(&self, from: usize, len: usize) {
        // SAFETY: inside `inner`; positions are within the subject.
        unsafe { lua::push_bytes(self.l, &self.s[from..from + len]) }
    }

    /// Pushes the values of the captures nested in the current one (or the whole match if
    /// there are none, or always when `extra`); returns how many.
    unsafe fn push_nested(&mut self, extra: bool) -> R<c_int> {
        let head = self.cur;
        self.cur += 1;
        let mut n = 0;
        let floor = self.floor;
        // SAFETY: inside `inner`.
        self.floor = unsafe { ffi::lua_gettop(self.l) } + 1;
        while self.inside(head, self.cur) {
            // SAFETY: inside `inner`.
            n += unsafe { self.push_capture()? };
        }
        self.floor = floor;
        if extra || n == 0 {
            let len = self.close_size(head);
            // SAFETY: inside `inner`.
            unsafe { self.sub(self.caps[head].index, len) };
            n += 1;
        }
        self.skip_close(head);
        Ok(n)
    }

    unsafe fn push_one_nested(&mut self) -> R<()> {
        // SAFETY: inside `inner`.
        unsafe {
            let n = self.push_nested(false)?;
            if n > 1 {
                ffi::lua_pop(self.l, n - 1);
            }
        }
        Ok(())
    }

    unsafe fn push_capture(&mut self) -> R<c_int> {
        let l = self.l;
        // SAFETY: inside `inner`.
        unsafe {
            ffi::luaL_checkstack(l, 4, c"too many captures".as_ptr());
            if self.reclevel > MAX_REC {
                return self.fail("subcapture nesting too deep".to_string());
            }
            self.reclevel += 1;
            let cap = self.caps[self.cur];
            let res = match cap.kind {
                CapKind::Position => {
                    ffi::lua_pushinteger(l, cap.index as ffi::lua_Integer + 1);
                    self.cur += 1;
                    1
                }
                CapKind::Const => {
                    self.push_value(cap.idx);
                    self.cur += 1;
                    1
                }
                CapKind::Arg => {
                    let arg = cap.idx as c_int;
                    self.cur += 1;
                    if arg + FIXED > self.ptop {
                        return self.fail(format!("reference to absent extra argument #{arg}"));
                    }
                    ffi::lua_pushvalue(l, arg + FIXED);
                    1
                }
                CapKind::Simple => {
                    let k = self.push_nested(true)?;
                    ffi::lua_rotate(l, -k, 1);
                    k
                }
                CapKind::Runtime => {
                    ffi::lua_pushvalue(l, cap.idx as c_int);
                    self.cur += 1;
                    1
                }
                CapKind::String | CapKind::Subst => {
                    let b = self.new_buf();
                    if cap.kind == CapKind::String {
                        self.string_cap(b)?;
                    } else {
                        self.subst_cap(b)?;
                    }
                    lua::push_bytes(l, &self.bufs[b]);
                    self.nbuf -= 1;
                    1
                }
                CapKind::Group => {
                    if cap.idx == 0 {
                        self.push_nested(false)?
                    } else {
                        self.next_cap();
                        0
                    }
                }
                CapKind::Backref => self.backref_cap()?,
                CapKind::Table => self.table_cap()?,
                CapKind::Function => {
                    let top = ffi::lua_gettop(l);
                    self.push_value(cap.idx);
                    let n = self.push_nested(false)?;
                    ffi::lua_call(l, n, ffi::LUA_MULTRET);
                    ffi::lua_gettop(l) - top
                }
                CapKind::Acc => {
                    if ffi::lua_gettop(l) < self.firstcap.max(self.floor) {
                        return self.fail("no previous value for accumulator capture".into());
                    }
                    self.push_value(cap.idx);
                    ffi::lua_rotate(l, -2, 1);
                    let n = self.push_nested(false)?;
                    ffi::lua_call(l, n + 1, 1);
                    0
                }
                CapKind::Num => {
                    let idx = cap.idx as c_int;
                    if idx == 0 {
                        self.next_cap();
                        0
                    } else {
                        let n = self.push_nested(false)?;
                        if n < idx {
                            return self.fail(format!("no capture '{idx}'"));
                        }
                        ffi::lua_pushvalue(l, -(n - idx + 1));
                        ffi::lua_replace(l, -(n + 1));
                        ffi::lua_pop(l, n - 1);
                        1
                    }
                }
                CapKind::Query => {
                    self.push_one_nested()?;
                    self.push_value(cap.idx);
                    ffi::lua_rotate(l, -2, 1);
                    ffi::lua_gettable(l, -2);
                    ffi::lua_remove(l, -2);
                    if ffi::lua_isnil(l, -1) != 0 {
                        ffi::lua_pop(l, 1);
                        0
                    } else {
                        1
                    }
                }
                CapKind::Fold => self.fold_cap()?,
                CapKind::Close => {
                    // Not reached on well-formed lists; never stay in place.
                    self.cur += 1;
                    0
                }
            };
            self.reclevel -= 1;
            Ok(res)
        }
    }

    /// Appends to buffer `b`; a failed allocation is an error, not an abort.
    fn append(&mut self, b: usize, bytes: &[u8]) -> R<()> {
        let buf = &mut self.bufs[b];
        if buf.try_reserve(bytes.len()).is_err() {
            return self.fail("not enough memory".to_string());
        }
        self.bufs[b].extend_from_slice(bytes);
        Ok(())
    }

    fn new_buf(&mut self) -> usize {
        let b = self.nbuf;
        if self.bufs.len() <= b {
            self.bufs.push(Vec::new());
        }
        self.bufs[b].clear();
        self.nbuf += 1;
        b
    }

    unsafe fn table_cap(&mut self) -> R<c_int> {
        let l = self.l;
        // SAFETY: inside `inner`.
        unsafe {
            let head = self.cur;
            self.cur += 1;
            let mut n: ffi::lua_Integer = 0;
            ffi::lua_createtable(l, 0, 0);
            while self.inside(head, self.cur) {
                let c = self.caps[self.cur];
                if c.kind == CapKind::Group && c.idx != 0 {
                    self.push_value(c.idx);
                    self.push_one_nested()?;
                    ffi::lua_settable(l, -3);
                } else {
                    let floor = self.floor;
                    self.floor = ffi::lua_gettop(l) + 1;
                    let k = self.push_capture()?;
                    self.floor = floor;
                    for i in (1..=k).rev() {
                        ffi::lua_rawseti(l, -(i + 1), n + i as ffi::lua_Integer);
                    }
                    n += k as ffi::lua_Integer;
                }
            }
            self.skip_close(head);
        }
        Ok(1)
    }

    unsafe fn fold_cap(&mut self) -> R<c_int> {
        let l = self.l;
        // SAFETY: inside `inner`.
        unsafe {
            let head = self.cur;
            self.cur += 1;
            let idx = self.caps[head].idx;
            let floor = self.floor;
            self.floor = ffi::lua_gettop(l) + 1;
            let n = if self.caps[self.cur].is_close() {
                0
            } else {
                self.push_capture()?
            };
            if n == 0 {
                return self.fail("no initial value for fold capture".into());
            }
            if n > 1 {
                ffi::lua_pop(l, n - 1);
            }
            while self.inside(head, self.cur) {
                self.push_value(idx);
                ffi::lua_rotate(l, -2, 1);
                self.floor = ffi::lua_gettop(l) + 1;
                let n = self.push_capture()?;
                ffi::lua_call(l, n + 1, 1);
            }
            self.floor = floor;
            self.skip_close(head);
        }
        Ok(1)
    }

    /// Is group `grp` visible from `rf` (not hidden inside a full capture not containing `rf`)?
    fn cap_visible(&self, grp: usize, rf: usize) -> bool {
        let mut cap = grp;
        let mut i = MAXLOP;
        while i > 0 && cap > 0 {
            i -= 1;
            cap -= 1;
            let c = &self.caps[cap];
            if c.is_close() || self.caps[grp].index.wrapping_sub(c.index) >= 255 {
                return true;
            } else if self.inside(cap, grp) {
                return self.inside(cap, rf);
            }
        }
        true
    }

    /// Finds the named group (name on the top of the stack) a back reference at `rf` refers
    /// to; pops the name.
    unsafe fn find_back(&mut self, rf: usize) -> R<usize> {
        let l = self.l;
        let mut cap = rf;
        // SAFETY: inside `inner`.
        unsafe {
            while cap > 0 {
                cap -= 1;
                if self.caps[cap].is_close() {
                    cap = find_open(self.caps, cap);
                } else if self.inside(cap, rf) {
                    continue;
                }
                let c = self.caps[cap];
                if c.kind == CapKind::Group && c.idx != 0 && self.cap_visible(cap, rf) {
                    self.push_value(c.idx);
                    if ffi::lua_rawequal(l, -2, -1) != 0 {
                        ffi::lua_pop(l, 2);
                        return Ok(cap);
                    }
                    ffi::lua_pop(l, 1);
                }
            }
            let name = super::val2str(l, -1);
            self.fail(format!("back reference '{name}' not found"))
        }
    }

    unsafe fn backref_cap(&mut self) -> R<c_int> {
        let curr = self.cur;
        // SAFETY: inside `inner`.
        unsafe {
            self.push_value(self.caps[curr].idx);
            self.cur = self.find_back(curr)?;
            let n = self.push_nested(false)?;
            self.cur = curr + 1;
            Ok(n)
        }
    }

    /// `p / "fmt"`: appends the formatted result to buffer `b`.
    unsafe fn string_cap(&mut self, b: usize) -> R<()> {
        const MAXSTRCAPS: usize = 10;
        // Each slot: Ok((start, len)) a piece of the subject, Err(capture index) a value.
        let mut cps: [Result<(usize, usize), usize>; MAXSTRCAPS] = [Ok((0, 0)); MAXSTRCAPS];
        let fmt_idx = self.caps[self.cur].idx;
        let n = self.get_str_caps(&mut cps, 0) - 1;
        // SAFETY: inside `inner`; the format string stays in the value array.
        unsafe {
            self.push_value(fmt_idx);
            let mut len = 0;
            let p = ffi::lua_tolstring(self.l, -1, &mut len);
            ffi::lua_pop(self.l, 1);
            let fmt: &[u8] = if p.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(p.cast(), len)
            };
            let mut i = 0;
            while i < fmt.len() {
                let ch = fmt[i];
                if ch != b'%' {
                    self.append(b, &[ch])?;
                    i += 1;
                    continue;
                }
                i += 1;
                let Some(&d) = fmt.get(i) else {
                    // LPeg reads the terminating NUL here.
                    self.append(b, &[0])?;
                    break;
                };
                i += 1;
                if !d.is_ascii_digit() {
                    self.append(b, &[d])?;
                    continue;
                }
                let k = (d - b'0') as usize;
                if k > n {
                    return self.fail(format!("invalid capture index ({k})"));
                }
                match cps[k] {
                    Ok((from, len)) => {
                        let piece = &self.s[from..from + len];
                        self.append(b, piece)?;
                    }
                    Err(ci) => {
                        let curr = self.cur;
                        self.cur = ci;
                        if !self.add_one_string(b, "capture")? {
                            return self.fail(format!("no values in capture index {k}"));
                        }
                        self.cur = curr;
                    }
                }
            }
        }
        Ok(())
    }

    fn get_str_caps(&mut self, cps: &mut [Result<(usize, usize), usize>], n: usize) -> usize {
        let k = n;
        let mut n = n + 1;
        let head = self.cur;
        self.cur += 1;
        while self.inside(head, self.cur) {
            if n >= cps.len() {
                self.next_cap();
            } else if self.caps[self.cur].kind == CapKind::Simple {
                n = self.get_str_caps(cps, n);
            } else {
                cps[n] = Err(self.cur);
                self.next_cap();
                n += 1;
            }
        }
        cps[k] = Ok((self.caps[head].index, self.close_size(head)));
        self.skip_close(head);
        n
    }

    unsafe fn subst_cap(&mut self, b: usize) -> R<()> {
        let head = self.cur;
        let mut curr = self.caps[head].index;
        self.cur += 1;
        while self.inside(head, self.cur) {
            let cap = self.cur;
            let caps = self.caps[cap].index;
            let piece = &self.s[curr..caps.max(curr)];
            self.append(b, piece)?;
            // SAFETY: inside `inner`.
            if unsafe { self.add_one_string(b, "replacement")? } {
                curr = caps + self.cap_size(cap, self.cur - 1);
            } else {
                curr = caps;
            }
        }
        let end = self.caps[head].index + self.close_size(head);
        if end > curr {
            let piece = &self.s[curr..end];
            self.append(b, piece)?;
        }
        self.skip_close(head);
        Ok(())
    }

    /// Appends the first value of the current capture to buffer `b`; false if it has none.
    unsafe fn add_one_string(&mut self, b: usize, what: &str) -> R<bool> {
        // Nested substitutions recurse here without `push_capture`: count them too.
        if self.reclevel > MAX_REC {
            return self.fail("subcapture nesting too deep".to_string());
        }
        self.reclevel += 1;
        // SAFETY: inside `inner`.
        let r = unsafe { self.add_one_string_aux(b, what) };
        self.reclevel -= 1;
        r
    }

    unsafe fn add_one_string_aux(&mut self, b: usize, what: &str) -> R<bool> {
        let l = self.l;
        match self.caps[self.cur].kind {
            // SAFETY: inside `inner`.
            CapKind::String => unsafe { self.string_cap(b).map(|_| true) },
            // SAFETY: inside `inner`.
            CapKind::Subst => unsafe { self.subst_cap(b).map(|_| true) },
            CapKind::Acc => self.fail("invalid context for an accumulator capture".into()),
            // SAFETY: inside `inner`.
            _ => unsafe {
                let n = self.push_capture()?;
                if n == 0 {
                    return Ok(false);
                }
                if n > 1 {
                    ffi::lua_pop(l, n - 1);
                }
                let t = ffi::lua_type(l, -1);
                if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
                    let tn = lua::type_name(l, -1);
                    return self.fail(format!("invalid {what} value (a {tn})"));
                }
                let mut len = 0;
                let p = ffi::lua_tolstring(l, -1, &mut len);
                let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
                self.append(b, bytes)?;
                ffi::lua_pop(l, 1);
                Ok(true)
            },
        }
    }
}

/// The open capture matching the close capture at `close`.
fn find_open(caps: &[Capture], close: usize) -> usize {
    let mut n = 0;
    let mut i = close;
    loop {
        i -= 1;
        let c = &caps[i];
        if c.is_close() {
            n += 1;
        } else if c.is_open() {
            if n == 0 {
                return i;
            }
            n -= 1;
        }
    }
}
