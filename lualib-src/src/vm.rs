//! One snlua Lua VM: its allocator (memory accounting, limit, warnings), the coroutine that is
//! running now, and the trap that lets SIGNAL 0 interrupt a busy VM from another thread.
//!
//! The [`Vm`] is the allocator's `ud`, so any code holding a `lua_State` of the VM finds it with
//! `lua_getallocf` ([`Vm::of`]).

use crate::lua::ffi::{self, lua_Debug, lua_State};
use parking_lot::Mutex;
use skynet_core::memory::Accounting;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// First memory warning at 32 MiB; the threshold doubles after each.
pub const MEMORY_WARNING_REPORT: usize = 32 * 1024 * 1024;

/// Memory figures of one VM, shared with the `skynet.memory` module.
#[derive(Default)]
pub struct MemStat {
    pub handle: AtomicU32,
    /// Bytes in use.
    pub bytes: AtomicUsize,
    /// Live blocks.
    pub blocks: AtomicUsize,
}

/// Every live VM's figures (for `skynet.memory` without the executable's accounting).
pub fn all_stats() -> Vec<Arc<MemStat>> {
    registry().lock().values().cloned().collect()
}

/// Every (handle, bytes) of the live VMs of services (the metrics endpoint's Lua memory).
fn lua_memory() -> Vec<(u32, usize)> {
    all_stats()
        .iter()
        .map(|s| {
            (
                s.handle.load(Ordering::Relaxed),
                s.bytes.load(Ordering::Relaxed),
            )
        })
        .filter(|&(h, _)| h != 0)
        .collect()
}

/// The live VMs' figures, by the address of their [`MemStat`]; a VM removes its own entry
/// when it is dropped.
fn registry() -> &'static Mutex<HashMap<usize, Arc<MemStat>>> {
    static REG: OnceLock<Mutex<HashMap<usize, Arc<MemStat>>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(HashMap::new()))
}

fn registry_key(stat: &Arc<MemStat>) -> usize {
    Arc::as_ptr(stat) as usize
}

pub struct Vm {
    l: *mut lua_State,
    /// Where the Lua heap comes from: the executable's allocator outside its per-service
    /// accounting (the VM counts its heap itself), else libc. Fixed for the VM's life.
    raw: Option<&'static dyn Accounting>,
    pub stat: Arc<MemStat>,
    mem_report: AtomicUsize,
    mem_limit: AtomicUsize,
    /// Bytes of code loaded through the code cache. Upstream shares such code between VMs
    /// outside their heaps; we keep a copy per VM, so it does not count towards the memory
    /// limit and warnings, or a service could fail where upstream's does not.
    code: AtomicUsize,
    /// The coroutine running now (where SIGNAL 0 sets its hook).
    active: AtomicPtr<lua_State>,
    /// 0: none; 1: a signal is setting the hook; -1: hook set, waiting for it to fire.
    trap: AtomicI32,
    /// The [`Interrupt`] of the pending trap (written before the trap is armed).
    reason: AtomicU8,
}

/// Who interrupts a VM (the error message differs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Interrupt {
    /// SIGNAL 0: the error is `signal 0`.
    Signal = 0,
    /// The monitor, for a handler over `cpu_limit`: the error is `cpu_limit exceeded`.
    CpuLimit = 1,
}

// SAFETY: the state is used by one thread at a time (the service's dispatch); the fields other
// threads touch (trap, active, counters) are atomics, and `lua_sethook` is the one call Lua
// documents as safe to make asynchronously.
unsafe impl Send for Vm {}
// SAFETY: as above.
unsafe impl Sync for Vm {}

/// The process-wide string hash seed (Lua 5.5 takes it per state; every VM gets the same).
#[cfg(feature = "lua55")]
fn seed() -> std::ffi::c_uint {
    static SEED: OnceLock<std::ffi::c_uint> = OnceLock::new();
    *SEED.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u32 ^ std::process::id().rotate_left(16)) | 1
    })
}

impl Vm {
    /// A new VM with our allocator. `None` if Lua could not allocate its state.
    pub fn new() -> Option<Box<Vm>> {
        skynet_core::metrics::set_lua_memory(lua_memory);
        let stat = Arc::new(MemStat::default());
        registry().lock().insert(registry_key(&stat), stat.clone());
        let mut vm = Box::new(Vm {
            l: std::ptr::null_mut(),
            raw: skynet_core::memory::accounting(),
            stat,
            mem_report: AtomicUsize::new(MEMORY_WARNING_REPORT),
            mem_limit: AtomicUsize::new(0),
            code: AtomicUsize::new(0),
            active: AtomicPtr::new(std::ptr::null_mut()),
            trap: AtomicI32::new(0),
            reason: AtomicU8::new(0),
        });
        let ud = &mut *vm as *mut Vm as *mut c_void;
        // SAFETY: the Vm is boxed, so `ud` stays valid for the state's whole life (closed in Drop).
        #[cfg(not(feature = "lua55"))]
        let l = unsafe { ffi::lua_newstate(lalloc, ud) };
        // SAFETY: as above.
        #[cfg(feature = "lua55")]
        let l = unsafe { ffi::lua_newstate(lalloc, ud, seed()) };
        if l.is_null() {
            return None;
        }
        vm.l = l;
        vm.active.store(l, Ordering::Relaxed);
        Some(vm)
    }

    pub fn state(&self) -> *mut lua_State {
        self.l
    }

    /// The VM owning `l`, if `l` belongs to an snlua VM.
    ///
    /// # Safety
    /// `l` is a valid state.
    pub unsafe fn of<'a>(l: *mut lua_State) -> Option<&'a Vm> {
        let mut ud = std::ptr::null_mut();
        // SAFETY: valid state.
        let f = unsafe { ffi::lua_getallocf(l, &mut ud) };
        if f as *const () != lalloc as *const () || ud.is_null() {
            return None;
        }
        // SAFETY: our allocator's ud is always the owning Vm.
        Some(unsafe { &*(ud as *const Vm) })
    }

    /// The service's handle (0 before snlua's init set it).
    pub fn handle(&self) -> u32 {
        self.stat.handle.load(Ordering::Relaxed)
    }

    pub fn set_handle(&self, handle: u32) {
        self.stat.handle.store(handle, Ordering::Relaxed);
    }

    pub fn memory(&self) -> usize {
        self.stat.bytes.load(Ordering::Relaxed)
    }

    /// Records `bytes` of cached code (see the `code` field).
    pub fn add_code(&self, bytes: usize) {
        let c = self.code.load(Ordering::Relaxed);
        self.code.store(c + bytes, Ordering::Relaxed);
    }

    pub fn set_limit(&self, limit: usize) {
        self.mem_limit.store(limit, Ordering::Relaxed);
    }

    /// Makes the running coroutine raise an error at its next instruction: `signal 0` for
    /// SIGNAL 0, `cpu_limit exceeded` when the monitor stops a handler over `cpu_limit`.
    pub fn interrupt(&self, why: Interrupt) {
        if self
            .trap
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.reason.store(why as u8, Ordering::Relaxed);
        let active = self.active.load(Ordering::Acquire);
        if !active.is_null() {
            // SAFETY: lua_sethook may be called from another thread (it is async-signal-safe
            // by design); `active` is a live coroutine of this VM.
            unsafe { ffi::lua_sethook(active, Some(signal_hook), ffi::LUA_MASKCOUNT, 1) };
        }
        let _ = self
            .trap
            .compare_exchange(1, -1, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Records `l` as the running coroutine, arming the hook if a signal is pending. The
    /// dispatcher calls it with its own thread before running the Lua callback, so SIGNAL 0
    /// reaches code running right in the callback too.
    ///
    /// # Safety
    /// `l` is a live coroutine (thread) of this VM and the caller is the thread running it.
    pub unsafe fn switch_to(&self, l: *mut lua_State) {
        self.active.store(l, Ordering::Release);
        if self.trap.load(Ordering::Acquire) != 0 {
            // SAFETY: per the contract.
            unsafe { ffi::lua_sethook(l, Some(signal_hook), ffi::LUA_MASKCOUNT, 1) };
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if !self.l.is_null() {
            // SAFETY: the state is ours and no longer used by anyone.
            unsafe { ffi::lua_close(self.l) };
        }
        registry().lock().remove(&registry_key(&self.stat));
    }
}

/// `lua_resume` that keeps track of the running coroutine for SIGNAL 0.
///
/// # Safety
/// As `lua_resume`.
pub unsafe fn resume(
    co: *mut lua_State,
    from: *mut lua_State,
    nargs: c_int,
    nres: *mut c_int,
) -> c_int {
    // SAFETY: valid states per the contract.
    let vm = unsafe { Vm::of(co) };
    if let Some(vm) = vm {
        // SAFETY: co is a coroutine of this VM, about to run on this thread.
        unsafe { vm.switch_to(co) };
    }
    // SAFETY: per the contract.
    let r = unsafe { ffi::lua_resume(co, from, nargs, nres) };
    if let Some(vm) = vm {
        // A signal that is between setting the trap and setting the hook: let it finish.
        while vm.trap.load(Ordering::Acquire) > 0 {
            std::hint::spin_loop();
        }
        // SAFETY: `from` is the VM's thread that resumed `co`, running again on this thread.
        unsafe { vm.switch_to(from) };
    }
    r
}

unsafe extern "C-unwind" fn signal_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    // SAFETY: l is valid while its hook runs.
    unsafe { ffi::lua_sethook(l, None, 0, 0) };
    // The hook touches only atomics; the guard keeps even a broken invariant from unwinding
    // into Lua's C frames.
    // SAFETY: as above.
    let trapped = std::panic::catch_unwind(|| match unsafe { Vm::of(l) } {
        Some(vm) if vm.trap.swap(0, Ordering::AcqRel) != 0 => {
            Some(vm.reason.load(Ordering::Relaxed))
        }
        _ => None,
    })
    .unwrap_or(None);
    let message = match trapped {
        None => return,
        Some(r) if r == Interrupt::CpuLimit as u8 => c"cpu_limit exceeded",
        Some(_) => c"signal 0",
    };
    // SAFETY: raising from a hook is allowed; nothing with a destructor is alive here.
    unsafe { ffi::luaL_error(l, message.as_ptr()) };
}

/// The snlua allocator: counts bytes and blocks, enforces the limit, warns at doubling
/// thresholds, allocates outside the per-service C accounting (or from libc).
///
/// Freeing is the one path kept here, without the others' register saves: closing a VM frees
/// every object of its heap, one call each.
unsafe extern "C" fn lalloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize != 0 {
        // SAFETY: the arguments of this allocator, passed on.
        return unsafe { lalloc_grow(ud, ptr, osize, nsize) };
    }
    if !ptr.is_null() {
        // SAFETY: ud is the owning Vm (set at lua_newstate).
        let vm = unsafe { &*(ud as *const Vm) };
        // Only the thread running the VM allocates, so the counters need no read-modify-write
        // atomics (they are atomics only so that other threads can read them).
        let stat = &vm.stat;
        let bytes = stat.bytes.load(Ordering::Relaxed);
        stat.bytes
            .store(bytes.saturating_sub(osize), Ordering::Relaxed);
        let blocks = stat.blocks.load(Ordering::Relaxed);
        stat.blocks
            .store(blocks.saturating_sub(1), Ordering::Relaxed);
        match vm.raw {
            // SAFETY: ptr came from this allocator, which is fixed for the VM's life, and Lua
            // passes the size it last asked for the block as osize.
            Some(a) => unsafe { a.raw_free_sized(ptr, osize) },
            // SAFETY: as above (libc).
            None => unsafe { libc::free(ptr) },
        }
    }
    std::ptr::null_mut()
}

/// [`lalloc`] with `nsize > 0`: allocation or reallocation.
///
/// # Safety
/// The arguments of a Lua allocator call on the VM `ud`, with `nsize > 0`.
#[inline(never)]
unsafe fn lalloc_grow(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: ud is the owning Vm (set at lua_newstate).
    let vm = unsafe { &*(ud as *const Vm) };
    let stat = &vm.stat;
    let old = if ptr.is_null() { 0 } else { osize };
    let mem = vm.stat.bytes.load(Ordering::Relaxed);
    let new_mem = mem.saturating_sub(old) + nsize;
    let limit = vm.mem_limit.load(Ordering::Relaxed);
    // What the limit and the warnings see: the heap without the cached code.
    let charged = new_mem.saturating_sub(vm.code.load(Ordering::Relaxed));
    if limit != 0 && charged > limit && nsize > old {
        return std::ptr::null_mut();
    }
    let p = match vm.raw {
        // SAFETY: ptr is NULL or a block of this allocator; nsize > 0.
        Some(a) => unsafe { a.raw_realloc(ptr, nsize) },
        // SAFETY: as above (libc).
        None => unsafe { libc::realloc(ptr, nsize) },
    };
    if p.is_null() {
        return p;
    }
    vm.stat.bytes.store(new_mem, Ordering::Relaxed);
    if ptr.is_null() {
        let blocks = stat.blocks.load(Ordering::Relaxed);
        stat.blocks.store(blocks + 1, Ordering::Relaxed);
    }
    let report = vm.mem_report.load(Ordering::Relaxed);
    if charged > report {
        vm.mem_report.store(report * 2, Ordering::Relaxed);
        let handle = vm.stat.handle.load(Ordering::Relaxed);
        if let Some(n) = skynet_core::try_node() {
            n.log(
                handle,
                format!("Memory warning {:.2} M", charged as f64 / (1024.0 * 1024.0)),
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::lua_function;

    /// Sums the finalizers below report (`report(sum)`), and how many did.
    static REPORTED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

    #[lua_function]
    unsafe extern "C-unwind" fn report(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with one integer argument.
        let v = unsafe { ffi::luaL_checkinteger(l, 1) };
        REPORTED.lock().push(v);
        0
    }

    /// Sets the VM's memory limit 64 KiB above what it uses now.
    #[lua_function]
    unsafe extern "C-unwind" fn tight(l: *mut lua_State) -> c_int {
        // SAFETY: `l` is a state of a `Vm`.
        let vm = unsafe { Vm::of(l) }.expect("a Vm's state");
        vm.set_limit(vm.memory() + 64 * 1024);
        0
    }

    /// The VM's memory use (`collectgarbage "count"` answers nothing in a finalizer).
    #[lua_function]
    unsafe extern "C-unwind" fn mem(l: *mut lua_State) -> c_int {
        // SAFETY: `l` is a state of a `Vm`.
        let vm = unsafe { Vm::of(l) }.expect("a Vm's state");
        // SAFETY: as above.
        unsafe { ffi::lua_pushinteger(l, vm.memory() as ffi::lua_Integer) };
        1
    }

    /// lua_close of a VM in generational mode (every service's) leaves that mode without
    /// whitening every object and frees strings without unlinking them (our Lua patch): the
    /// finalizers it runs must still see a whole heap, old objects' young children included,
    /// and find the interned strings, also after writes into old objects (barriers) and the
    /// emergency collection an allocation over the memory limit runs in the middle of a
    /// finalizer (the one collection that can run then: `collectgarbage` is refused in
    /// finalizers).
    #[test]
    fn closing_a_generational_vm_gives_finalizers_a_whole_heap() {
        const CODE: &str = r#"
            collectgarbage("generational")
            local keep = {}
            for i = 1, 2000 do keep[i] = { name = "key" .. i, list = { i, "v" .. i } } end
            local box, up = {}, 0
            local function set(v) up = v end
            local function get() return up end
            collectgarbage() collectgarbage() -- all the above is old (black) now
            -- generational for sure (a run of bad major collections switches to incremental)
            collectgarbage("incremental") collectgarbage("generational")
            collectgarbage("stop") -- no minor collection ages what follows
            for i = 1, #keep do keep[i].fresh = { "f" .. i } end -- young children of old tables
            local garbage = {}
            for k = 1, 5000 do garbage[k] = { string.rep("g", k % 40) .. k } end
            garbage = nil -- for the emergency collections to free
            local fin = 0
            for _ = 1, 10 do
                setmetatable({}, { __gc = function()
                    fin = fin + 1
                    box[fin] = { "b" .. fin } -- barriers on old black objects: a table ...
                    set({ "u" .. fin }) -- ... and an upvalue
                    tight()
                    local before = mem()
                    local junk = {} -- over the limit half-way: an emergency collection
                    for k = 1, 1500 do junk[k] = { string.rep("x", k % 40) .. k } end
                    -- it ran (and freed more than 'junk' holds)
                    if mem() >= before then report(-1) return end
                    if box[fin][1] ~= "b" .. fin or get()[1] ~= "u" .. fin then return end
                    local sum = 0
                    for i = 1, #keep do
                        local e = keep[i]
                        if e.name ~= "key" .. i or e.list[2] ~= "v" .. i
                            or e.fresh[1] ~= "f" .. i then
                            return
                        end
                        sum = sum + e.list[1]
                    end
                    report(sum)
                end })
            end
        "#;
        let vm = Vm::new().expect("a new VM");
        let l = vm.state();
        // SAFETY: a fresh state of this thread; the chunk runs protected.
        unsafe {
            ffi::luaL_openlibs(l);
            ffi::lua_pushcfunction(l, report);
            ffi::lua_setglobal(l, c"report".as_ptr());
            ffi::lua_pushcfunction(l, tight);
            ffi::lua_setglobal(l, c"tight".as_ptr());
            ffi::lua_pushcfunction(l, mem);
            ffi::lua_setglobal(l, c"mem".as_ptr());
            assert_eq!(
                ffi::luaL_loadbufferx(
                    l,
                    CODE.as_ptr().cast(),
                    CODE.len(),
                    c"=t".as_ptr(),
                    std::ptr::null()
                ),
                ffi::LUA_OK
            );
            assert_eq!(ffi::lua_pcall(l, 0, 0, 0), ffi::LUA_OK);
        }
        REPORTED.lock().clear();
        drop(vm);
        assert_eq!(*REPORTED.lock(), vec![2000 * 2001 / 2; 10]);
    }

    #[test]
    fn a_dropped_vm_leaves_the_registry() {
        // The stats are kept alive here, so their addresses (the registry's keys) stay unique
        // while VMs of other tests come and go.
        let mut gone = Vec::new();
        for _ in 0..500 {
            let vm = Vm::new().expect("a new VM");
            let stat = vm.stat.clone();
            assert!(registry().lock().contains_key(&registry_key(&stat)));
            assert!(all_stats().iter().any(|s| Arc::ptr_eq(s, &stat)));
            drop(vm);
            gone.push(stat);
        }
        let reg = registry().lock();
        let left = gone
            .iter()
            .filter(|s| reg.contains_key(&registry_key(s)))
            .count();
        assert_eq!(left, 0, "entries of dropped VMs still registered");
        assert!(gone.iter().all(|s| Arc::strong_count(s) == 1));
    }
}
