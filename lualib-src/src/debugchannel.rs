//! `skynet.debugchannel`: the line channel `debug_console`'s `debug` command opens into a
//! service (lualib's `skynet.remotedebug`), and `sethook`, a `debug.sethook` whose hook may
//! suspend the hooked coroutine.
//!
//! `create()` → writer channel, handle; `connect(handle)` → reader channel (one reader per
//! channel); `release(ch)` lets go of a channel early (its `__gc` does it otherwise). Channel
//! methods: `write(str)` queues a line; `read([timeout])` → the oldest line, or nothing after
//! sleeping `timeout` tenths of a second when the queue is empty.
//!
//! The channel is an `Arc` held by the writer and the reader userdata, so it lives until both
//! are gone. The handle travels between services as a light userdata; `connect` only accepts
//! the handle of a channel that is still alive and has no reader yet (anything else is a Lua
//! error, where upstream would follow the pointer). A released channel refuses `read`/`write`.

use crate::lua::lua_function;
use crate::lua::{ffi, raise_where, CFunction};
use ffi::{lua_Debug, lua_State};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Arc, OnceLock, Weak};

/// A queue of lines from one writer to one reader.
#[derive(Default)]
pub struct Channel {
    queue: Mutex<VecDeque<Vec<u8>>>,
    /// Whether a reader has connected.
    connected: Mutex<bool>,
}

impl Channel {
    pub fn write(&self, s: &[u8]) {
        self.queue.lock().push_back(s.to_vec());
    }

    pub fn read(&self) -> Option<Vec<u8>> {
        self.queue.lock().pop_front()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let key = self as *const Channel as usize;
        channels().lock().remove(&key);
    }
}

/// Live channels by handle, for `connect` to check what it is given.
fn channels() -> &'static Mutex<HashMap<usize, Weak<Channel>>> {
    static C: OnceLock<Mutex<HashMap<usize, Weak<Channel>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// A new channel and its handle.
pub fn create() -> (Arc<Channel>, usize) {
    let c = Arc::new(Channel::default());
    let key = Arc::as_ptr(&c) as usize;
    channels().lock().insert(key, Arc::downgrade(&c));
    (c, key)
}

/// The channel behind `handle`, for its one reader.
pub fn connect(handle: usize) -> Result<Arc<Channel>, &'static str> {
    // Taken out of the table's lock before anything can drop the last reference (whose Drop
    // locks the table).
    let found = channels().lock().get(&handle).and_then(Weak::upgrade);
    let c = found.ok_or("Invalid channel pointer")?;
    let mut connected = c.connected.lock();
    if *connected {
        drop(connected);
        return Err("new channel failed");
    }
    *connected = true;
    drop(connected);
    Ok(c)
}

const META: &CStr = c"debugchannel";

/// Userdata body of a channel end (`None` once released).
struct Box_(Option<Arc<Channel>>);

/// Pushes a userdata for channel end `c`.
///
/// # Safety
/// `l` is valid. On a memory error `c` is leaked (never freed twice).
unsafe fn push_channel(l: *mut lua_State, c: Arc<Channel>) {
    // SAFETY: valid state; the userdata is sized for Box_ (Lua aligns userdata for pointers).
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Box_>(), 0).cast::<Box_>();
        p.write(Box_(Some(c)));
        if ffi::luaL_newmetatable(l, META.as_ptr()) != 0 {
            crate::lua::new_lib(l, &[(c"read", lread as CFunction), (c"write", lwrite)]);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, lrelease);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
}

/// The live channel of the userdata at index 1.
///
/// # Safety
/// `l` is valid. The reference lives while the userdata is on the stack and not released.
unsafe fn check_channel<'a>(l: *mut lua_State) -> &'a Channel {
    // SAFETY: luaL_checkudata returns a block of our type.
    unsafe {
        let b = &*ffi::luaL_checkudata(l, 1, META.as_ptr()).cast::<Box_>();
        match &b.0 {
            Some(c) => c,
            None => raise_where(l, "debugchannel: the channel is released".to_string()),
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lread(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the checks raise before anything is owned.
    let (c, ti) = unsafe { (check_channel(l), ffi::luaL_optnumber(l, 2, 0.0)) };
    match c.read() {
        Some(s) => {
            // SAFETY: valid state. A memory error here would leak the line (no destructor
            // runs), nothing worse.
            unsafe { crate::lua::push_bytes(l, &s) };
            drop(s);
            1
        }
        None => {
            // Upstream sleeps `timeout * 100000` microseconds (tenths of a second).
            let us = (ti * 100_000.0).clamp(0.0, i32::MAX as f64);
            if us >= 1.0 {
                std::thread::sleep(std::time::Duration::from_micros(us as u64));
            }
            0
        }
    }
}

#[lua_function]
unsafe extern "C-unwind" fn lwrite(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; the checks raise before anything is owned.
    let (c, s) = unsafe {
        let c = check_channel(l);
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 2, &mut len);
        (c, std::slice::from_raw_parts(p.cast::<u8>(), len))
    };
    c.write(s);
    0
}

/// `release(ch)` and `__gc`.
#[lua_function]
unsafe extern "C-unwind" fn lrelease(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; only a userdata with our metatable is touched.
    let b = unsafe { ffi::luaL_testudata(l, 1, META.as_ptr()).cast::<Box_>() };
    if !b.is_null() {
        // SAFETY: a live block of our type.
        let c = unsafe { (*b).0.take() };
        drop(c);
    }
    0
}

/// `create()` → writer channel, handle.
#[lua_function]
unsafe extern "C-unwind" fn lcreate(l: *mut lua_State) -> c_int {
    let (c, key) = create();
    // SAFETY: valid state.
    unsafe {
        push_channel(l, c);
        ffi::lua_pushlightuserdata(l, key as *mut c_void);
    }
    2
}

/// `connect(handle)` → reader channel.
#[lua_function]
unsafe extern "C-unwind" fn lconnect(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    let handle = unsafe { ffi::lua_touserdata(l, 1) } as usize;
    match connect(handle) {
        // SAFETY: valid state.
        Ok(c) => unsafe { push_channel(l, c) },
        // SAFETY: nothing owned.
        Err(e) => unsafe { raise_where(l, e.to_string()) },
    }
    1
}

/// Registry key of the table thread → hook function.
static HOOKKEY: u8 = 0;

fn hookkey() -> *const c_void {
    &HOOKKEY as *const u8 as *const c_void
}

/// The C hook: calls the thread's Lua hook with the event name and line; yields the thread when
/// the hook returns true.
unsafe extern "C-unwind" fn hookf(l: *mut lua_State, ar: *mut lua_Debug) {
    const NAMES: [&CStr; 5] = [c"call", c"return", c"line", c"count", c"tail call"];
    // SAFETY: called by Lua with a valid state and activation record; nothing here owns a
    // destructor, so an error raised by the hook may longjmp through.
    unsafe {
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, hookkey());
        ffi::lua_pushthread(l);
        if ffi::lua_rawget(l, -2) == ffi::LUA_TFUNCTION {
            let event = (*ar).event;
            let name = NAMES.get(event as usize).copied().unwrap_or(c"?");
            ffi::lua_pushstring(l, name.as_ptr());
            if (*ar).currentline >= 0 {
                ffi::lua_pushinteger(l, (*ar).currentline as ffi::lua_Integer);
            } else {
                ffi::lua_pushnil(l);
            }
            ffi::lua_call(l, 2, 1);
            let yield_ = ffi::lua_toboolean(l, -1) != 0;
            ffi::lua_pop(l, 2);
            if yield_ {
                // Inside a hook this returns (the yield happens when the hook returns).
                ffi::lua_yield(l, 0);
            }
        } else {
            ffi::lua_pop(l, 2);
        }
    }
}

/// Turns a mask string and count into Lua's hook mask.
fn make_mask(smask: &[u8], count: c_int) -> c_int {
    let mut mask = 0;
    if smask.contains(&b'c') {
        mask |= ffi::LUA_MASKCALL;
    }
    if smask.contains(&b'r') {
        mask |= ffi::LUA_MASKRET;
    }
    if smask.contains(&b'l') {
        mask |= ffi::LUA_MASKLINE;
    }
    if count > 0 {
        mask |= ffi::LUA_MASKCOUNT;
    }
    mask
}

/// `sethook([co], [func, mask, [count]])`: like `debug.sethook`; without `func` the hook is
/// removed.
#[lua_function]
unsafe extern "C-unwind" fn lsethook(l: *mut lua_State) -> c_int {
    // SAFETY: valid state; nothing with a destructor is alive across the raising calls.
    unsafe {
        let (l1, arg) = if ffi::lua_type(l, 1) == ffi::LUA_TTHREAD {
            (ffi::lua_tothread(l, 1), 1)
        } else {
            (l, 0)
        };
        let (func, mask, count): (Option<ffi::lua_Hook>, c_int, c_int);
        if ffi::lua_type(l, arg + 1) <= ffi::LUA_TNIL {
            ffi::lua_settop(l, arg + 1);
            (func, mask, count) = (None, 0, 0);
        } else {
            let mut len = 0;
            let smask = ffi::luaL_checklstring(l, arg + 2, &mut len);
            let smask = std::slice::from_raw_parts(smask.cast::<u8>(), len);
            ffi::luaL_checktype(l, arg + 1, ffi::LUA_TFUNCTION);
            let c = ffi::luaL_optinteger(l, arg + 3, 0) as c_int;
            (func, mask, count) = (Some(hookf as ffi::lua_Hook), make_mask(smask, c), c);
        }
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, hookkey()) == ffi::LUA_TNIL {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, hookkey());
            ffi::lua_pushstring(l, c"k".as_ptr());
            ffi::lua_setfield(l, -2, c"__mode".as_ptr());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setmetatable(l, -2);
        }
        ffi::lua_pushthread(l1);
        ffi::lua_xmove(l1, l, 1);
        ffi::lua_pushvalue(l, arg + 1);
        ffi::lua_rawset(l, -3);
        ffi::lua_sethook(l1, func, mask, count);
    }
    0
}

/// Opens `skynet.debugchannel`.
///
/// # Safety
/// Called by Lua.
#[lua_function]
pub unsafe extern "C-unwind" fn luaopen_skynet_debugchannel(l: *mut lua_State) -> c_int {
    // SAFETY: valid state.
    unsafe {
        crate::lua::new_lib(
            l,
            &[
                (c"create", lcreate as CFunction),
                (c"connect", lconnect),
                (c"release", lrelease),
                (c"sethook", lsethook),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::luaopen_skynet_debugchannel;
    use crate::testlua::check;

    const DC: &[(&std::ffi::CStr, crate::lua::CFunction)] =
        &[(c"dc", luaopen_skynet_debugchannel as crate::lua::CFunction)];

    #[test]
    fn channel_write_read_release() {
        check(
            DC,
            &[],
            r#"
            local w, h = dc.create()
            assert(type(h) == "userdata")
            local r = dc.connect(h)
            local ok, e = pcall(dc.connect, h)
            assert(not ok and e:find "new channel failed")
            assert(not pcall(dc.connect, nullptr))
            assert(r:read() == nil)
            assert(select('#', r:read(0)) == 0)
            w:write("a") w:write("") w:write("b\0c")
            assert(r:read() == "a" and r:read() == "" and r:read(1) == "b\0c")
            assert(r:read() == nil)
            assert(not pcall(w.write, w, {}))
            assert(not pcall(w.read, {}))
            -- the writer goes first: the reader still drains what was written
            w:write("last")
            dc.release(w)
            assert(not pcall(w.write, w, "x"))
            assert(r:read() == "last")
            dc.release(r)
            dc.release(r)
            assert(not pcall(r.read, r))
            -- the channel is gone: its handle is refused
            collectgarbage()
            assert(not pcall(dc.connect, h))
            "#,
        );
    }

    #[test]
    fn channel_across_threads() {
        let (w, h) = super::create();
        let r = super::connect(h).unwrap();
        assert!(super::connect(h).is_err());
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                w.write(&i.to_le_bytes());
            }
        });
        let mut got = 0u32;
        while got < 1000 {
            if let Some(v) = r.read() {
                assert_eq!(v, got.to_le_bytes());
                got += 1;
            } else {
                std::thread::yield_now();
            }
        }
        t.join().unwrap();
        drop(r);
        assert!(super::connect(h).is_err());
    }

    #[test]
    fn sethook_yields_and_counts() {
        check(
            DC,
            &[],
            r#"
            -- a line hook that yields on every line suspends the coroutine line by line
            local lines = {}
            local co = coroutine.create(function(a)
                local x = a + 1
                local y = x * 2
                return y
            end)
            dc.sethook(co, function(ev, line)
                lines[#lines + 1] = ev .. ":" .. tostring(line)
                return ev == "line"
            end, "l")
            local steps, res = 0
            while true do
                local ok, r = coroutine.resume(co, 1)
                assert(ok, r)
                steps = steps + 1
                if coroutine.status(co) == "dead" then res = r break end
            end
            assert(res == 4, res)
            assert(steps == 4, steps)          -- three line stops, then the return
            assert(lines[1]:match "^line:%d+$")
            -- call/return events without yielding, and removal
            local evs = {}
            dc.sethook(function(ev) evs[#evs + 1] = ev end, "cr")
            local function f() return 1 end
            f()
            dc.sethook()
            local n = #evs
            f()
            assert(#evs == n)
            local seen = table.concat(evs, ",")
            assert(seen:find "call" and seen:find "return", seen)
            -- a count hook
            local cnt = 0
            dc.sethook(function(ev) if ev == "count" then cnt = cnt + 1 end end, "", 10)
            for i = 1, 100 do end
            dc.sethook()
            assert(cnt > 0)
            -- an error in the hook propagates
            local co2 = coroutine.create(function() local a = 1 return a end)
            dc.sethook(co2, function() error("hookerr") end, "l")
            local ok, e = coroutine.resume(co2)
            assert(not ok and e:find "hookerr")
            assert(not pcall(dc.sethook, function() end))   -- mask missing
            assert(not pcall(dc.sethook, 1, "l"))
            "#,
        );
    }
}
