//! The `snlua` service (upstream `service_snlua`): one Lua VM per service.
//!
//! init sends the launch arguments to the service itself as its first message, so the Lua
//! start-up runs on a worker after LAUNCH has returned. That message opens the libraries,
//! installs `skynet.profile` (and its `coroutine.resume`/`wrap`), `skynet.codecache` and the
//! built-in modules, sets the globals `LUA_PATH`, `LUA_CPATH`, `LUA_SERVICE` and `LUA_PRELOAD`
//! from the config and runs `lualoader` with the arguments.
//! The Lua code then installs its dispatcher with `skynet.core.callback`.

use skynet_core::env::env;
use skynet_core::module::{check_name, Instance, Module};
use skynet_core::{node, ptype, Context, Message, Payload};
use skynet_lualib::lua::{ffi, push_bytes, to_bytes};
use skynet_lualib::vm::{Interrupt, Vm};
use skynet_lualib::{codecache, preload, profile, skynet_core::traceback};
use std::ffi::{c_void, CString};
use std::sync::Arc;

pub struct SnluaModule;

impl Module for SnluaModule {
    fn create(&self) -> Option<Box<dyn Instance>> {
        let vm = Vm::new()?;
        vm.set_limit(default_memory_limit());
        Some(Box::new(Snlua { vm }))
    }
}

/// The config's `memory_limit` (bytes, 0 = none): every VM's limit until the service sets its
/// own with `skynet.memlimit`. Read once: the executable has set the key (default 0) before any
/// service starts, so `skynet.setenv` cannot change it afterwards.
fn default_memory_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        env()
            .get_str("memory_limit")
            .and_then(|v| {
                let v = v.trim();
                v.parse::<usize>().ok().or_else(|| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as usize)
                })
            })
            .unwrap_or(0)
    })
}

struct Snlua {
    vm: Box<Vm>,
}

/// The launch callback's handle on the VM (which outlives every callback of the service).
struct LaunchCallback {
    vm: *const Vm,
}

// SAFETY: the Vm is only used by the thread dispatching the service.
unsafe impl Send for LaunchCallback {}

impl Instance for Snlua {
    fn init(&self, ctx: &Arc<Context>, parm: Option<&str>) -> bool {
        // The loader (Lua, possibly the deployment's own) puts the first word into the
        // `luaservice` templates; refuse a name that would leave their directories before any
        // Lua runs, so that LAUNCH itself fails.
        if let Err(e) = check_name(service_name(parm.unwrap_or(""))) {
            node().log(ctx.handle(), e);
            return false;
        }
        self.vm.set_handle(ctx.handle());
        ctx.set_callback(Some(Box::new(LaunchCallback {
            vm: &*self.vm as *const Vm,
        })));
        // The first message: the arguments, to ourselves.
        let args = Payload::copy_from(parm.unwrap_or("").as_bytes());
        ctx.send(ctx.handle(), ptype::TEXT, 0, args) >= 0
    }

    fn signal(&self, sig: i32) {
        let handle = self
            .vm
            .stat
            .handle
            .load(std::sync::atomic::Ordering::Relaxed);
        node().log(handle, format!("recv a signal {sig}"));
        match sig {
            0 => self.vm.interrupt(Interrupt::Signal),
            1 => node().log(
                handle,
                format!("Current Memory {:.3}K", self.vm.memory() as f64 / 1024.0),
            ),
            _ => {}
        }
    }

    fn interrupt(&self) -> bool {
        self.vm.interrupt(Interrupt::CpuLimit);
        true
    }

    fn can_interrupt(&self) -> bool {
        true
    }
}

impl skynet_core::server::Callback for LaunchCallback {
    fn call(&mut self, ctx: &Context, msg: &mut Message) {
        ctx.set_callback(None);
        // SAFETY: the Vm outlives the service's callbacks (it is dropped with the instance).
        let vm = unsafe { &*self.vm };
        if let Err(e) = start_lua(vm, ctx, msg.data.as_slice()) {
            ctx.error(e);
            node().send_name(
                Some(ctx),
                0,
                ".launcher",
                ptype::TEXT,
                0,
                Payload::copy_from(b"ERROR"),
            );
            node().exit_service(ctx, 0);
        }
    }
}

/// The service name in snlua's arguments: the first word, split as the loader's `%S+` does.
fn service_name(parm: &str) -> &str {
    parm.split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .find(|w| !w.is_empty())
        .unwrap_or("")
}

fn setting(key: &str, default: Option<&str>) -> Option<CString> {
    env()
        .get(key)
        .map(|v| v.to_owned())
        .or_else(|| default.and_then(|d| CString::new(d).ok()))
}

/// Runs the Lua start-up (upstream `init_cb`). The error is the line to log.
fn start_lua(vm: &Vm, ctx: &Context, args: &[u8]) -> Result<(), String> {
    let l = vm.state();
    let loader = setting("lualoader", Some("./lualib/loader.lua")).unwrap_or_default();
    let globals = [
        (
            c"LUA_PATH",
            setting("lua_path", Some("./lualib/?.lua;./lualib/?/init.lua")),
        ),
        (c"LUA_CPATH", setting("lua_cpath", Some("./luaclib/?.so"))),
        (
            c"LUA_SERVICE",
            setting("luaservice", Some("./service/?.lua")),
        ),
        (c"LUA_PRELOAD", setting("preload", None)),
    ];
    // SAFETY: the VM is this service's and runs on this thread only. The calls before the
    // protected loader call only fail on memory exhaustion at start-up, as upstream's do.
    unsafe {
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
        ffi::lua_pushboolean(l, 1); // libraries ignore LUA_PATH & co from the environment
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
        ffi::luaL_openlibs(l);
        preload(l);
        codecache::install(l);
        ffi::luaL_requiref(
            l,
            c"skynet.profile".as_ptr(),
            profile::luaopen_skynet_profile,
            0,
        );
        let profile_lib = ffi::lua_gettop(l);
        ffi::lua_getglobal(l, c"coroutine".as_ptr());
        ffi::lua_getfield(l, profile_lib, c"resume".as_ptr());
        ffi::lua_setfield(l, -2, c"resume".as_ptr());
        ffi::lua_getfield(l, profile_lib, c"wrap".as_ptr());
        ffi::lua_setfield(l, -2, c"wrap".as_ptr());
        ffi::lua_settop(l, profile_lib - 1);
        ffi::lua_pushlightuserdata(l, ctx as *const Context as *mut c_void);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        ffi::luaL_requiref(
            l,
            c"skynet.codecache".as_ptr(),
            codecache::luaopen_skynet_codecache,
            0,
        );
        ffi::lua_pop(l, 1);
        ffi::lua_gc(l, ffi::LUA_GCGEN, 0, 0);
        for (name, value) in &globals {
            match value {
                Some(v) => {
                    ffi::lua_pushstring(l, v.as_ptr());
                }
                None => ffi::lua_pushnil(l),
            }
            ffi::lua_setglobal(l, name.as_ptr());
        }
        ffi::lua_pushcfunction(l, traceback);
        let loaded = codecache::load_file(l, &loader, std::ptr::null());
        if loaded != ffi::LUA_OK {
            let err = error_text(l);
            ffi::lua_settop(l, 0);
            return Err(format!("Can't load {} : {err}", loader.to_string_lossy()));
        }
        push_bytes(l, args);
        if ffi::lua_pcall(l, 1, 0, 1) != ffi::LUA_OK {
            let err = error_text(l);
            ffi::lua_settop(l, 0);
            return Err(format!("lua loader error : {err}"));
        }
        ffi::lua_settop(l, 0);
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"memlimit".as_ptr()) == ffi::LUA_TNUMBER {
            let limit = ffi::lua_tointegerx(l, -1, std::ptr::null_mut()).max(0) as usize;
            vm.set_limit(limit);
            ctx.error(format!(
                "Set memory limit to {:.2} M",
                limit as f64 / (1024.0 * 1024.0)
            ));
            ffi::lua_pushnil(l);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"memlimit".as_ptr());
        }
        ffi::lua_pop(l, 1);
        ffi::lua_gc(l, ffi::LUA_GCRESTART, 0);
    }
    Ok(())
}

/// The error object on the top of the stack, as text.
///
/// # Safety
/// `l` is valid with a value on the stack.
unsafe fn error_text(l: *mut ffi::lua_State) -> String {
    // SAFETY: per the contract.
    match unsafe { to_bytes(l, -1) } {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "(no error message)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::service_name;

    #[test]
    fn service_name_is_the_first_word() {
        assert_eq!(service_name("t_child a b"), "t_child");
        assert_eq!(service_name(" \t\x0b\x0c../x\ny"), "../x");
        assert_eq!(service_name("a\0b c"), "a\0b");
        assert_eq!(service_name(""), "");
        assert_eq!(service_name("  "), "");
    }
}
